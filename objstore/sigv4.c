/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sigv4.c: S3 URI encoding and AWS Signature Version 4 (canonical request, string to
 * sign, Authorization header) over OpenSSL.
 *
 * DESIGN
 * Signing is three pure string transformations followed by an HMAC chain:
 *   canonical request = METHOD \n URI \n QUERY \n HEADERS \n SIGNED-HEADERS \n PAYLOAD-HASH
 *   string to sign    = "AWS4-HMAC-SHA256" \n DATE-TIME \n SCOPE \n hex(SHA256(creq))
 *   signature         = hex(HMAC(kSigning, sts)), kSigning derived from the secret by
 *                       HMAC("AWS4"+secret, date) -> region -> service -> "aws4_request".
 * The derived signing key only changes once a day (or when the keys rotate), so the last
 * few are kept in a small cache keyed by (date, region, service, SHA-256 of the secret);
 * the secret itself is not copied into it.
 *
 * Session tokens are not special here: the caller adds an "x-amz-security-token" header
 * to the headers it signs (S3 requires it to be signed), and sends the same header.
 *
 * The canonical URI is taken as given: S3 does not normalise paths (no "." / ".."
 * removal, no double encoding), so callers pass os3_uri_encode(key, true) prefixed
 * with '/'.
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "common/log.h"
#include "common/util.h"
#include "objstore/objstore_i.h"

#define OS3_SIGV4_ALGO "AWS4-HMAC-SHA256"

static const char os3_hex_upper[] = "0123456789ABCDEF";
static const char os3_hex_lower[] = "0123456789abcdef";

/* ---- URI encoding ---- */

static bool os3_uri_unreserved(unsigned char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '_' || ch == '.' || ch == '~';
}

char *os3_uri_encode(const char *in, bool keep_slash)
{
    if (!in)
        return NULL;
    size_t len = strlen(in);
    char *out = malloc(len * 3 + 1); /* worst case: every byte becomes %XX */
    if (!out)
        return NULL;
    char *p = out;
    for (const unsigned char *s = (const unsigned char *)in; *s; s++) {
        if (os3_uri_unreserved(*s) || (keep_slash && *s == '/')) {
            *p++ = (char)*s;
        } else {
            *p++ = '%';
            *p++ = os3_hex_upper[*s >> 4];
            *p++ = os3_hex_upper[*s & 0xf];
        }
    }
    *p = '\0';
    return out;
}

static int os3_hex_val(unsigned char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/*
 * A truncated or non-hex escape is an error rather than passed through: a listing that
 * decodes to a different key than S3 holds would make every later GET of it fail in a
 * confusing way. "%00" is refused too, because the result is a C string.
 * @return malloc'd string, or NULL with errno EINVAL (bad escape) or ENOMEM.
 */
char *os3_uri_decode(const char *in)
{
    if (!in) {
        errno = EINVAL;
        return NULL;
    }
    char *out = malloc(strlen(in) + 1);
    if (!out) {
        errno = ENOMEM;
        return NULL;
    }
    char *p = out;
    for (const unsigned char *s = (const unsigned char *)in; *s; s++) {
        if (*s != '%') {
            *p++ = (char)*s;
            continue;
        }
        int hi = os3_hex_val(s[1]);
        int lo = hi < 0 ? -1 : os3_hex_val(s[2]);
        if (lo < 0 || (hi == 0 && lo == 0)) {
            free(out);
            errno = EINVAL;
            return NULL;
        }
        *p++ = (char)(hi << 4 | lo);
        s += 2;
    }
    *p = '\0';
    return out;
}

/* ---- hashing ---- */

static void os3_to_hex(const unsigned char *bin, size_t len, char *hex)
{
    for (size_t i = 0; i < len; i++) {
        hex[2 * i] = os3_hex_lower[bin[i] >> 4];
        hex[2 * i + 1] = os3_hex_lower[bin[i] & 0xf];
    }
    hex[2 * len] = '\0';
}

void os3_sha256_hex(const void *data, size_t len, char hex[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    /* EVP_Digest only fails on allocation failure inside OpenSSL; an all-zero hash then
     * yields a signature S3 rejects (403), which is the honest outcome. */
    if (!EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
        memset(md, 0, 32);
    os3_to_hex(md, 32, hex);
}

void os3_md5_base64(const void *data, size_t len, char out[32])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;

    if (!EVP_Digest(data, len, md, &n, EVP_md5(), NULL))
        n = 0; /* no MD5 (FIPS): an empty value, which S3 refuses loudly */
    EVP_EncodeBlock((unsigned char *)out, md, (int)n);
}

/* The HTTP method of @op. */
const char *os3_method(enum objstore_op op)
{
    static const char *const m[OBJSTORE_OP_COUNT] = {"HEAD",   "GET",  "GET", "PUT",
                                                     "DELETE", "POST", "PUT", "POST"};
    return (unsigned)op < OBJSTORE_OP_COUNT ? m[op] : "GET";
}

void os3_amz_date(int64_t t, char out[17])
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm) || strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm) != 16)
        snprintf(out, 17, "19700101T000000Z");
}

/* ---- a growable string, for building the canonical request ---- */

struct os3_buf {
    char *s;
    size_t len, cap;
    bool oom;
};

static void os3_buf_add(struct os3_buf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (b->len + n + 1 > cap)
            cap *= 2;
        char *ns = realloc(b->s, cap);
        if (!ns) {
            b->oom = true;
            return;
        }
        b->s = ns;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void os3_buf_str(struct os3_buf *b, const char *s)
{
    os3_buf_add(b, s, strlen(s));
}

/* ---- canonical query string ---- */

struct os3_qparam {
    char *name; /* URI-encoded, '/' encoded too */
    char *value;
};

static int os3_qparam_cmp(const void *a, const void *b)
{
    const struct os3_qparam *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->value, y->value);
}

/* Append the canonical query string. @return 0 or -ENOMEM. */
static int os3_canonical_query(const struct os3_sign_input *in, struct os3_buf *b)
{
    if (in->n_query == 0)
        return 0;
    struct os3_qparam *q = calloc(in->n_query, sizeof(*q));
    if (!q)
        return -ENOMEM;
    int rc = 0;
    for (size_t i = 0; i < in->n_query; i++) {
        q[i].name = os3_uri_encode(in->query[i].name ? in->query[i].name : "", false);
        q[i].value = os3_uri_encode(in->query[i].value ? in->query[i].value : "", false);
        if (!q[i].name || !q[i].value) {
            rc = -ENOMEM;
            goto free_params;
        }
    }
    /* Sorting happens on the encoded forms: that is the byte order AWS compares. */
    qsort(q, in->n_query, sizeof(*q), os3_qparam_cmp);
    for (size_t i = 0; i < in->n_query; i++) {
        if (i)
            os3_buf_add(b, "&", 1);
        os3_buf_str(b, q[i].name);
        os3_buf_add(b, "=", 1); /* "name=" even for an empty value */
        os3_buf_str(b, q[i].value);
    }
free_params:
    for (size_t i = 0; i < in->n_query; i++) {
        free(q[i].name);
        free(q[i].value);
    }
    free(q);
    return rc;
}

/* ---- canonical headers ---- */

struct os3_hdr {
    char *name;  /* lower-case */
    char *value; /* trimmed, runs of spaces collapsed */
    size_t idx;  /* position in the input: keeps repeated headers in the order given */
};

static int os3_hdr_cmp(const void *a, const void *b)
{
    const struct os3_hdr *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c)
        return c;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static char *os3_lower_dup(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++)
        out[i] = (char)tolower((unsigned char)s[i]);
    out[n] = '\0';
    return out;
}

/* Trim, and collapse each run of blanks (folded lines included) into one space. */
static char *os3_trim_value(const char *s)
{
    char *out = malloc(strlen(s) + 1);
    if (!out)
        return NULL;
    char *p = out;
    bool blank = false;
    for (; *s; s++) {
        if (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n') {
            blank = true;
            continue;
        }
        if (blank && p != out)
            *p++ = ' ';
        blank = false;
        *p++ = *s;
    }
    *p = '\0';
    return out;
}

/* Append canonical headers and the blank line; put the signed-headers list in @sh. */
static int os3_canonical_headers(const struct os3_sign_input *in, struct os3_buf *b,
                                 struct os3_buf *sh)
{
    if (in->n_headers == 0)
        return -EINVAL; /* SigV4 always signs at least host */
    struct os3_hdr *h = calloc(in->n_headers, sizeof(*h));
    if (!h)
        return -ENOMEM;
    int rc = 0;
    for (size_t i = 0; i < in->n_headers; i++) {
        if (!in->headers[i].name) {
            rc = -EINVAL;
            goto free_headers;
        }
        h[i].name = os3_lower_dup(in->headers[i].name);
        h[i].value = os3_trim_value(in->headers[i].value ? in->headers[i].value : "");
        h[i].idx = i;
        if (!h[i].name || !h[i].value) {
            rc = -ENOMEM;
            goto free_headers;
        }
    }
    qsort(h, in->n_headers, sizeof(*h), os3_hdr_cmp);
    for (size_t i = 0; i < in->n_headers; i++) {
        bool repeat = i > 0 && strcmp(h[i].name, h[i - 1].name) == 0;
        if (repeat) {
            /* A repeated header is one canonical line, values joined by commas. */
            os3_buf_add(b, ",", 1);
        } else {
            if (i) {
                os3_buf_add(b, "\n", 1);
                os3_buf_add(sh, ";", 1);
            }
            os3_buf_str(b, h[i].name);
            os3_buf_add(b, ":", 1);
            os3_buf_str(sh, h[i].name);
        }
        os3_buf_str(b, h[i].value);
    }
    os3_buf_add(b, "\n\n", 2); /* end of the last header line, then the blank separator */
free_headers:
    for (size_t i = 0; i < in->n_headers; i++) {
        free(h[i].name);
        free(h[i].value);
    }
    free(h);
    return rc;
}

static bool os3_sign_input_ok(const struct os3_sign_input *in)
{
    return in && in->method && in->canonical_uri && in->payload_hash && in->amz_date &&
           strlen(in->amz_date) == 16 && in->region && in->service &&
           (in->n_query == 0 || in->query) && (in->n_headers == 0 || in->headers);
}

/*
 * Build the canonical request into *@out (malloc'd) and, if @signed_headers_out, the
 * signed-headers list. @return 0, -EINVAL for bad input (no headers, a NULL header name,
 * a malformed date) or -ENOMEM; on failure nothing is allocated.
 */
static int os3_canonical_request(const struct os3_sign_input *in, char **out,
                                 char **signed_headers_out)
{
    int rc;

    *out = NULL;
    if (signed_headers_out)
        *signed_headers_out = NULL;
    if (!os3_sign_input_ok(in))
        return -EINVAL;
    struct os3_buf b = {0}, sh = {0};
    os3_buf_str(&b, in->method);
    os3_buf_add(&b, "\n", 1);
    os3_buf_str(&b, in->canonical_uri[0] ? in->canonical_uri : "/");
    os3_buf_add(&b, "\n", 1);
    if ((rc = os3_canonical_query(in, &b)) < 0)
        goto fail;
    os3_buf_add(&b, "\n", 1);
    if ((rc = os3_canonical_headers(in, &b, &sh)) < 0)
        goto fail;
    os3_buf_str(&b, sh.s ? sh.s : "");
    os3_buf_add(&b, "\n", 1);
    os3_buf_str(&b, in->payload_hash);
    if (b.oom || sh.oom) {
        rc = -ENOMEM;
        goto fail;
    }
    if (signed_headers_out)
        *signed_headers_out = sh.s;
    else
        free(sh.s);
    *out = b.s;
    return 0;
fail:
    free(b.s);
    free(sh.s);
    return rc;
}

char *os3_sigv4_canonical_request(const struct os3_sign_input *in, char **signed_headers_out)
{
    char *creq;
    int rc = os3_canonical_request(in, &creq, signed_headers_out);
    if (rc < 0)
        errno = -rc;
    return creq;
}

char *os3_sigv4_string_to_sign(const struct os3_sign_input *in, const char *canonical_request)
{
    if (!os3_sign_input_ok(in) || !canonical_request)
        return NULL;
    char hash[65];
    os3_sha256_hex(canonical_request, strlen(canonical_request), hash);
    struct os3_buf b = {0};
    os3_buf_str(&b, OS3_SIGV4_ALGO "\n");
    os3_buf_str(&b, in->amz_date);
    os3_buf_add(&b, "\n", 1);
    os3_buf_add(&b, in->amz_date, 8); /* YYYYMMDD */
    os3_buf_add(&b, "/", 1);
    os3_buf_str(&b, in->region);
    os3_buf_add(&b, "/", 1);
    os3_buf_str(&b, in->service);
    os3_buf_str(&b, "/aws4_request\n");
    os3_buf_str(&b, hash);
    if (b.oom) {
        free(b.s);
        return NULL;
    }
    return b.s;
}

/* ---- signing key derivation and its cache ---- */

static int os3_hmac(const void *key, size_t keylen, const void *msg, size_t msglen,
                    unsigned char out[32])
{
    unsigned int outlen = 0;
    if (!HMAC(EVP_sha256(), key, (int)keylen, msg, msglen, out, &outlen) || outlen != 32)
        return -EIO;
    return 0;
}

#define OS3_SIGNKEY_CACHE 4
#define OS3_SCOPE_MAX 128

struct os3_signkey_entry {
    bool valid;
    char scope[OS3_SCOPE_MAX];   /* "date/region/service" */
    unsigned char secret_id[32]; /* SHA-256 of the secret: identifies it without storing it */
    unsigned char key[32];
    uint64_t used; /* LRU stamp */
};

/* The cache is process-wide: all stores usually share keys, region and date. */
static pthread_mutex_t os3_signkey_lock = PTHREAD_MUTEX_INITIALIZER;
static struct os3_signkey_entry os3_signkey_cache[OS3_SIGNKEY_CACHE]; /* by os3_signkey_lock */
static uint64_t os3_signkey_clock;                                    /* by os3_signkey_lock */

static int os3_derive_key(const char *secret, const char *date8, const char *region,
                          const char *service, unsigned char key[32])
{
    char k0[4 + 128 + 1];
    int n = snprintf(k0, sizeof(k0), "AWS4%s", secret);
    if (n < 0 || (size_t)n >= sizeof(k0))
        return -EINVAL;
    unsigned char k1[32], k2[32], k3[32];
    int rc = os3_hmac(k0, (size_t)n, date8, 8, k1);
    if (!rc)
        rc = os3_hmac(k1, 32, region, strlen(region), k2);
    if (!rc)
        rc = os3_hmac(k2, 32, service, strlen(service), k3);
    if (!rc)
        rc = os3_hmac(k3, 32, "aws4_request", 12, key);
    OPENSSL_cleanse(k0, sizeof(k0));
    OPENSSL_cleanse(k1, sizeof(k1));
    OPENSSL_cleanse(k2, sizeof(k2));
    OPENSSL_cleanse(k3, sizeof(k3));
    return rc;
}

/* Signing key for (date, region, service, secret), from the cache or derived. */
static int os3_signing_key(const char *secret, const char *date8, const char *region,
                           const char *service, unsigned char key[32])
{
    char scope[OS3_SCOPE_MAX];
    int n = snprintf(scope, sizeof(scope), "%.8s/%s/%s", date8, region, service);
    if (n < 0 || (size_t)n >= sizeof(scope))
        return os3_derive_key(secret, date8, region, service, key); /* too odd to cache */
    unsigned char id[32];
    unsigned int idlen = 0;
    if (!EVP_Digest(secret, strlen(secret), id, &idlen, EVP_sha256(), NULL))
        return -EIO;

    pthread_mutex_lock(&os3_signkey_lock);
    struct os3_signkey_entry *victim = &os3_signkey_cache[0];
    for (int i = 0; i < OS3_SIGNKEY_CACHE; i++) {
        struct os3_signkey_entry *e = &os3_signkey_cache[i];
        if (e->valid && strcmp(e->scope, scope) == 0 && memcmp(e->secret_id, id, 32) == 0) {
            memcpy(key, e->key, 32);
            e->used = ++os3_signkey_clock;
            pthread_mutex_unlock(&os3_signkey_lock);
            return 0;
        }
        if (!e->valid || (victim->valid && e->used < victim->used))
            victim = e;
    }
    pthread_mutex_unlock(&os3_signkey_lock);

    /* Derive outside the lock; two threads racing here both store the same value. */
    int rc = os3_derive_key(secret, date8, region, service, key);
    if (rc)
        return rc;
    pthread_mutex_lock(&os3_signkey_lock);
    victim->valid = true;
    memcpy(victim->scope, scope, (size_t)n + 1);
    memcpy(victim->secret_id, id, 32);
    memcpy(victim->key, key, 32);
    victim->used = ++os3_signkey_clock;
    pthread_mutex_unlock(&os3_signkey_lock);
    return 0;
}

int os3_sigv4_authorization(const struct os3_sign_input *in, const struct objstore_credentials *cr,
                            char *out, size_t cap)
{
    if (!os3_sign_input_ok(in) || !cr || !cr->access_key[0] || !cr->secret_key[0] || !out)
        return -EINVAL;
    int rc;
    char *signed_headers = NULL, *sts = NULL;
    char *creq = NULL;
    rc = os3_canonical_request(in, &creq, &signed_headers);
    if (rc < 0)
        goto out; /* -EINVAL (bad input) or -ENOMEM */
    sts = os3_sigv4_string_to_sign(in, creq);
    if (!sts) {
        rc = -ENOMEM;
        goto free_creq;
    }
    unsigned char key[32], sig[32];
    rc = os3_signing_key(cr->secret_key, in->amz_date, in->region, in->service, key);
    if (rc)
        goto free_sts;
    rc = os3_hmac(key, 32, sts, strlen(sts), sig);
    OPENSSL_cleanse(key, sizeof(key));
    if (rc)
        goto free_sts;
    char sighex[65];
    os3_to_hex(sig, 32, sighex);
    int n = snprintf(out, cap,
                     OS3_SIGV4_ALGO " Credential=%s/%.8s/%s/%s/aws4_request, SignedHeaders=%s, "
                                    "Signature=%s",
                     cr->access_key, in->amz_date, in->region, in->service, signed_headers, sighex);
    rc = (n < 0 || (size_t)n >= cap) ? -ENOSPC : 0;
free_sts:
    free(sts);
free_creq:
    free(creq);
    free(signed_headers);
out:
    return rc;
}
