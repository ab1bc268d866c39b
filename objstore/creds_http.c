/* SPDX-License-Identifier: Apache-2.0 */
/*
 * creds_http.c: what the credential providers (creds.c) need to talk to metadata endpoints:
 * one bounded HTTP request (a libcurl easy handle, ~1 s timeouts, no proxy, no redirects),
 * a careful reader of the flat JSON objects they answer with, and their ISO 8601 times.
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "common/log.h"
#include "common/util.h"
#include "objstore/objstore_i.h"

#define OS3_CREDS_HTTP_TIMEOUT_MS 1000
/* STS is a remote service: connect within 5 s, answer within 15 s (it must not hang a
 * refresh for long, but a slow link is not a machine without metadata). */
#define OS3_CREDS_REMOTE_TIMEOUT_MS 5000

/* ---- a careful little JSON reader (flat objects of the metadata endpoints) ---- */

static void os3_json_ws(const char **p)
{
    while (**p == ' ' || **p == '\t' || **p == '\n' || **p == '\r')
        (*p)++;
}

static int os3_json_hex4(const char *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int c = (unsigned char)p[i], d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return -EINVAL;
        v = v << 4 | (unsigned)d;
    }
    *out = v;
    return 0;
}

/* Append code point @cp as UTF-8 (or note overflow). */
static void os3_json_put(char *out, size_t cap, size_t *len, bool *overflow, unsigned cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xc0 | cp >> 6);
        u[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | cp >> 12);
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        u[0] = (char)(0xf0 | cp >> 18);
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    if (!out || *len + n >= cap) {
        *overflow = true;
        return;
    }
    memcpy(out + *len, u, n);
    *len += n;
    out[*len] = '\0';
}

/*
 * Parse the string at *p (which points at the opening quote) into @out (NULL: skip).
 * The whole string is consumed even when it does not fit.
 * @return 0, -EINVAL (malformed), -ENAMETOOLONG (did not fit @cap).
 */
static int os3_json_string(const char **p, char *out, size_t cap)
{
    const char *s = *p;
    size_t len = 0;
    bool overflow = false;
    if (*s++ != '"')
        return -EINVAL;
    if (out && cap)
        out[0] = '\0';
    for (;;) {
        unsigned char c = (unsigned char)*s;
        if (c == '"')
            break;
        if (c < 0x20)
            return -EINVAL; /* NUL (truncated input) or an unescaped control */
        if (c != '\\') {
            /* raw bytes (UTF-8 included) are copied as they are */
            if (out && len + 1 < cap) {
                out[len++] = (char)c;
                out[len] = '\0';
            } else {
                overflow = true;
            }
            s++;
            continue;
        }
        unsigned cp;
        switch (s[1]) {
        case '"':
            cp = '"';
            break;
        case '\\':
            cp = '\\';
            break;
        case '/':
            cp = '/';
            break;
        case 'b':
            cp = '\b';
            break;
        case 'f':
            cp = '\f';
            break;
        case 'n':
            cp = '\n';
            break;
        case 'r':
            cp = '\r';
            break;
        case 't':
            cp = '\t';
            break;
        case 'u':
            if (os3_json_hex4(s + 2, &cp) < 0)
                return -EINVAL;
            if (cp >= 0xd800 && cp <= 0xdbff) {
                unsigned lo;
                if (s[6] != '\\' || s[7] != 'u' || os3_json_hex4(s + 8, &lo) < 0 || lo < 0xdc00 ||
                    lo > 0xdfff)
                    return -EINVAL;
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                s += 6;
            } else if (cp >= 0xdc00 && cp <= 0xdfff) {
                return -EINVAL;
            }
            s += 4;
            break;
        default:
            return -EINVAL;
        }
        if (cp == 0)
            return -EINVAL; /* would truncate a C string */
        os3_json_put(out, cap, &len, &overflow, cp);
        s += 2;
    }
    *p = s + 1;
    return overflow && out ? -ENAMETOOLONG : 0;
}

/* Skip any JSON value at *p. @return 0 or -EINVAL. */
static int os3_json_skip(const char **p, int depth)
{
    const char *s = *p;
    if (depth > 32)
        return -EINVAL;
    if (*s == '"')
        return os3_json_string(p, NULL, 0);
    if (*s == '{' || *s == '[') {
        char close = *s == '{' ? '}' : ']';
        s++;
        os3_json_ws(&s);
        if (*s == close) {
            *p = s + 1;
            return 0;
        }
        for (;;) {
            if (close == '}') {
                if (os3_json_string(&s, NULL, 0) < 0)
                    return -EINVAL;
                os3_json_ws(&s);
                if (*s++ != ':')
                    return -EINVAL;
                os3_json_ws(&s);
            }
            if (os3_json_skip(&s, depth + 1) < 0)
                return -EINVAL;
            os3_json_ws(&s);
            if (*s == ',') {
                s++;
                os3_json_ws(&s);
                continue;
            }
            if (*s != close)
                return -EINVAL;
            *p = s + 1;
            return 0;
        }
    }
    /* number, true, false, null */
    const char *start = s;
    while (*s && (isalnum((unsigned char)*s) || *s == '-' || *s == '+' || *s == '.'))
        s++;
    if (s == start)
        return -EINVAL;
    *p = s;
    return 0;
}

/*
 * Find the top-level member @key of the JSON object @json and copy its string value.
 * @return 0, -ENOENT (absent or not a string), -EINVAL (malformed document),
 * -ENAMETOOLONG (value longer than @cap - 1).
 */
/* Point *@val at the value of top-level member @key of @json. @return 0, -ENOENT, -EINVAL. */
static int os3_json_find(const char *json, const char *key, const char **val)
{
    const char *s = json;
    char name[64];
    os3_json_ws(&s);
    if (*s++ != '{')
        return -EINVAL;
    os3_json_ws(&s);
    if (*s == '}')
        return -ENOENT;
    for (;;) {
        int rc = os3_json_string(&s, name, sizeof(name));
        if (rc == -EINVAL)
            return rc;
        bool match = rc == 0 && strcmp(name, key) == 0;
        os3_json_ws(&s);
        if (*s++ != ':')
            return -EINVAL;
        os3_json_ws(&s);
        if (match) {
            *val = s;
            return 0;
        }
        if (os3_json_skip(&s, 0) < 0)
            return -EINVAL;
        os3_json_ws(&s);
        if (*s == '}')
            return -ENOENT;
        if (*s++ != ',')
            return -EINVAL;
        os3_json_ws(&s);
    }
}

int os3_json_get(const char *json, const char *key, char *out, size_t cap)
{
    const char *s;
    int rc = os3_json_find(json, key, &s);
    if (rc)
        return rc;
    return *s == '"' ? os3_json_string(&s, out, cap) : -ENOENT;
}

int os3_json_get_int(const char *json, const char *key, long long *out)
{
    const char *s;
    char digits[24];
    int rc = os3_json_find(json, key, &s);
    if (rc)
        return rc;
    if (*s == '"') { /* some tools quote it */
        rc = os3_json_string(&s, digits, sizeof(digits));
        if (rc)
            return -EINVAL;
        s = digits;
    }
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || errno || (*end && !strchr(" \t\r\n,}", *end)))
        return -EINVAL;
    *out = v;
    return 0;
}

/* Parse "2024-05-01T12:00:00Z" (fraction and +HH:MM offsets accepted). @return 0/-EINVAL. */
int os3_parse_iso8601(const char *s, int64_t *out)
{
    int y, mo, d, h, mi, se, n = 0;
    if (!isdigit((unsigned char)s[0]) ||
        sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &se, &n) != 6 || n == 0)
        return -EINVAL;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60 || y < 1970 || h < 0 ||
        mi < 0 || se < 0)
        return -EINVAL;
    const char *p = s + n;
    if (*p == '.') {
        p++;
        while (isdigit((unsigned char)*p))
            p++;
    }
    int64_t offset = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om = 0;
        if (!isdigit((unsigned char)p[1]) || !isdigit((unsigned char)p[2]))
            return -EINVAL;
        oh = (p[1] - '0') * 10 + (p[2] - '0');
        const char *q = p + 3;
        if (*q == ':')
            q++;
        if (isdigit((unsigned char)q[0]) && isdigit((unsigned char)q[1])) {
            om = (q[0] - '0') * 10 + (q[1] - '0');
            q += 2;
        }
        offset = (int64_t)(oh * 3600 + om * 60) * (*p == '+' ? 1 : -1);
        p = q;
    }
    if (*p)
        return -EINVAL;
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = se};
    *out = (int64_t)timegm(&tm) - offset;
    return 0;
}

/* ---- HTTP ---- */

static pthread_once_t os3_creds_curl_once = PTHREAD_ONCE_INIT;

static void os3_creds_curl_init(void)
{
    /* Refcounted in libcurl, so the S3 backend's own init does not conflict. */
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

struct os3_creds_http_body {
    char *buf;
    size_t len, cap;
};

static size_t os3_creds_http_write(char *ptr, size_t size, size_t nmemb, void *arg)
{
    struct os3_creds_http_body *b = arg;
    size_t n = size * nmemb;
    if (b->len + n >= b->cap)
        return 0; /* larger than any credentials document: abort (CURLE_WRITE_ERROR) */
    memcpy(b->buf + b->len, ptr, n);
    b->len += n;
    b->buf[b->len] = '\0';
    return n;
}

/* -o ca_bundle for the remote requests: set before any provider runs, read-only after. */
static char *os3_creds_ca;

void objstore_creds_set_ca_bundle(const char *path)
{
    free(os3_creds_ca);
    os3_creds_ca = path ? strdup(path) : NULL;
}

/* One request (os3_creds_http, os3_creds_http_remote): @remote: through the environment's
 * proxy, with the remote timeouts, verified against -o ca_bundle when given; @send: a
 * body to send, or NULL. */
static int os3_creds_http_do(const char *method, const char *url, const char *const *headers,
                             const char *send, bool remote, char *body, size_t cap, long *status)
{
    long tmo = remote ? OS3_CREDS_REMOTE_TIMEOUT_MS : OS3_CREDS_HTTP_TIMEOUT_MS;

    pthread_once(&os3_creds_curl_once, os3_creds_curl_init);
    struct os3_creds_http_body b = {.buf = body, .cap = cap};
    body[0] = '\0';
    *status = 0;
    int rc = -ENOMEM;
    struct curl_slist *hl = NULL;
    CURL *h = curl_easy_init();
    if (!h)
        goto out;
    for (const char *const *hp = headers; hp && *hp; hp++) {
        struct curl_slist *nl = curl_slist_append(hl, *hp);
        if (!nl)
            goto free_handle;
        hl = nl;
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    if (!remote)
        curl_easy_setopt(h, CURLOPT_PROXY, ""); /* never via $http_proxy: link-local/loopback */
    else if (os3_creds_ca) /* as the S3 requests: the option, never the environment */
        curl_easy_setopt(h, CURLOPT_CAINFO, os3_creds_ca);
    if (send) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, send);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(send));
    }
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, tmo);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, tmo * (remote ? 3 : 2));
    curl_easy_setopt(h, CURLOPT_USERAGENT, "tierfs");
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, os3_creds_http_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    CURLcode cc = curl_easy_perform(h);
    if (cc != CURLE_OK) {
        /* a remote service (STS) failing says why: a certificate is worth a word */
        if (remote)
            TLOG_E("credentials: %s %s: %s%s", method, url, curl_easy_strerror(cc),
                   cc == CURLE_PEER_FAILED_VERIFICATION || cc == CURLE_SSL_CACERT_BADFILE
                       ? " (-o ca_bundle names the CA certificates to trust)"
                       : "");
        else
            TLOG_D("credentials: %s %s: %s", method, url, curl_easy_strerror(cc));
        rc = objstore_map_curl_error((int)cc);
        if (rc == 0 || rc == -ECONNRESET)
            rc = -EIO;
        goto free_handle;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    rc = 0;
free_handle:
    curl_slist_free_all(hl);
    curl_easy_cleanup(h);
out:
    return rc;
}

int os3_creds_http(const char *method, const char *url, const char *const *headers, char *body,
                   size_t cap, long *status)
{
    return os3_creds_http_do(method, url, headers, NULL, false, body, cap, status);
}

int os3_creds_http_remote(const char *method, const char *url, const char *const *headers,
                          const char *send, char *body, size_t cap, long *status)
{
    return os3_creds_http_do(method, url, headers, send, true, body, cap, status);
}
