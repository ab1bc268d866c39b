/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_sigv4.c: SigV4 canonical request, string to sign and Authorization on arbitrary
 * request pieces, signed with static credentials.
 *
 * Input: byte 0 = number of query parameters (mod 9), byte 1 = number of headers (mod 9),
 * byte 2 = permutation seed, then NUL-separated pieces: method, canonical URI, region,
 * service, payload hash, amz date, the query names and values, the header names and
 * values (missing pieces are "").
 * Checks: never crash; the canonical request and signed headers are the same for any
 * order of the query parameters and of the headers (repeated headers keep their relative
 * order: their values are joined in the order given); signed headers are the sorted,
 * lower-cased, trimmed distinct names; the string to sign ends in the canonical request's
 * hash; the Authorization value carries the signed headers and a 64-hex signature, and
 * does not depend on the order either.
 */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "objstore/objstore_i.h"
#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_KV 8
#define FUZZ_PIECES (6 + 4 * FUZZ_MAX_KV)

/* What os3_canonical_headers() does to a name: trim blanks, ASCII lower case. */
static char *fuzz_canon_name(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    char *out = malloc(n + 1);
    FUZZ_CHECK(out != NULL);
    for (size_t i = 0; i < n; i++)
        out[i] = (char)tolower((unsigned char)s[i]);
    out[n] = '\0';
    return out;
}

static int fuzz_strcmp_p(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Expected SignedHeaders: the distinct canonical names, sorted, joined by ';'. */
static char *fuzz_expect_signed(char **names, size_t n, size_t *distinct)
{
    char **v = malloc((n ? n : 1) * sizeof(*v));
    size_t len = 1;
    FUZZ_CHECK(v != NULL);
    memcpy(v, names, n * sizeof(*v));
    qsort(v, n, sizeof(*v), fuzz_strcmp_p);
    for (size_t i = 0; i < n; i++)
        len += strlen(v[i]) + 1;
    char *out = malloc(len), *p = out;
    FUZZ_CHECK(out != NULL);
    *distinct = 0;
    for (size_t i = 0; i < n; i++) {
        if (i && strcmp(v[i], v[i - 1]) == 0)
            continue;
        if (*distinct)
            *p++ = ';';
        p += sprintf(p, "%s", v[i]);
        (*distinct)++;
    }
    *p = '\0';
    free(v);
    return out;
}

/* A permutation of 0..n-1 from @seed (Fisher-Yates with a small LCG). */
static void fuzz_perm(size_t *perm, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++)
        perm[i] = i;
    for (size_t i = n; i > 1; i--) {
        seed = seed * 1103515245u + 12345u;
        size_t j = (seed >> 16) % i;
        size_t t = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = t;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct objstore_credentials cr = {
        .access_key = "AKIDEXAMPLE",
        .secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    };
    const char *piece[FUZZ_PIECES];
    char *buf;
    size_t n_query, n_headers, np = 0;
    uint8_t seed;

    fuzz_quiet_logs();
    if (size < 3)
        return 0;
    n_query = data[0] % (FUZZ_MAX_KV + 1);
    n_headers = data[1] % (FUZZ_MAX_KV + 1);
    seed = data[2];
    buf = malloc(size - 3 + 1);
    FUZZ_CHECK(buf != NULL);
    memcpy(buf, data + 3, size - 3);
    buf[size - 3] = '\0';
    for (char *p = buf, *end = buf + (size - 3); np < FUZZ_PIECES;) {
        piece[np++] = p;
        if (p >= end)
            p = end; /* the rest are "" */
        else
            p += strlen(p) + 1;
        if (p > end)
            p = end;
    }

    struct os3_kv query[FUZZ_MAX_KV], headers[FUZZ_MAX_KV];
    for (size_t i = 0; i < n_query; i++)
        query[i] = (struct os3_kv){piece[6 + 2 * i], piece[7 + 2 * i]};
    for (size_t i = 0; i < n_headers; i++)
        headers[i] =
            (struct os3_kv){piece[6 + 2 * FUZZ_MAX_KV + 2 * i], piece[7 + 2 * FUZZ_MAX_KV + 2 * i]};
    struct os3_sign_input in = {
        .method = piece[0],
        .canonical_uri = piece[1],
        .region = piece[2],
        .service = piece[3],
        .payload_hash = piece[4],
        .amz_date = piece[5],
        .query = query,
        .n_query = n_query,
        .headers = headers,
        .n_headers = n_headers,
    };
    bool input_ok = strlen(in.amz_date) == 16 && n_headers > 0;

    char *sh = NULL;
    char *creq = os3_sigv4_canonical_request(&in, &sh);
    char auth[4096], auth2[4096], tiny[48];
    int arc = os3_sigv4_authorization(&in, &cr, auth, sizeof(auth));
    FUZZ_CHECK(arc == 0 || arc == -ENOSPC || arc == -EINVAL || arc == -ENOMEM);
    if (!input_ok) {
        /* Known quirk: with no headers the canonical request fails inside authorization,
         * which cannot tell that from allocation failure and says -ENOMEM. */
        FUZZ_CHECK(creq == NULL && sh == NULL &&
                   (arc == -EINVAL || (arc == -ENOMEM && n_headers == 0)));
        free(buf);
        return 0;
    }
    FUZZ_CHECK(creq != NULL && sh != NULL);

    /* Signed headers and the shape of the canonical request. */
    char *names[FUZZ_MAX_KV];
    for (size_t i = 0; i < n_headers; i++)
        names[i] = fuzz_canon_name(headers[i].name);
    size_t distinct;
    char *want_sh = fuzz_expect_signed(names, n_headers, &distinct);
    FUZZ_CHECK(strcmp(sh, want_sh) == 0);
    bool no_nl = !strchr(in.method, '\n') && !strchr(in.canonical_uri, '\n') &&
                 !strchr(in.payload_hash, '\n');
    for (size_t i = 0; i < n_headers; i++)
        no_nl = no_nl && !strchr(names[i], '\n');
    if (no_nl) {
        size_t nl = 0;
        for (const char *p = creq; *p; p++)
            nl += *p == '\n';
        FUZZ_CHECK(nl == 5 + distinct);
        /* the canonical URI is taken as given; "" means "/" */
        const char *uri = creq + strlen(in.method) + 1;
        const char *want_uri = in.canonical_uri[0] ? in.canonical_uri : "/";
        FUZZ_CHECK(strncmp(creq, in.method, strlen(in.method)) == 0);
        FUZZ_CHECK(strncmp(uri, want_uri, strlen(want_uri)) == 0 && uri[strlen(want_uri)] == '\n');
    }

    /* The same request in another order: identical canonical request. */
    size_t qp[FUZZ_MAX_KV], hp[FUZZ_MAX_KV];
    fuzz_perm(qp, n_query, seed * 2654435761u + 1);
    fuzz_perm(hp, n_headers, seed * 40503u + 7);
    /* Members of a group of same-named headers take the group's slots in input order. */
    bool used[FUZZ_MAX_KV] = {false};
    size_t hp2[FUZZ_MAX_KV];
    for (size_t k = 0; k < n_headers; k++) {
        size_t j = 0;
        while (used[j] || strcmp(names[j], names[hp[k]]) != 0)
            j++;
        used[j] = true;
        hp2[k] = j;
    }
    struct os3_kv query2[FUZZ_MAX_KV], headers2[FUZZ_MAX_KV];
    for (size_t i = 0; i < n_query; i++)
        query2[i] = query[qp[i]];
    for (size_t i = 0; i < n_headers; i++)
        headers2[i] = headers[hp2[i]];
    struct os3_sign_input in2 = in;
    in2.query = query2;
    in2.headers = headers2;
    char *sh2 = NULL;
    char *creq2 = os3_sigv4_canonical_request(&in2, &sh2);
    FUZZ_CHECK(creq2 != NULL && sh2 != NULL);
    FUZZ_CHECK(strcmp(creq, creq2) == 0);
    FUZZ_CHECK(strcmp(sh, sh2) == 0);

    /* String to sign: fixed shape, ends with the hash of the canonical request. */
    char *sts = os3_sigv4_string_to_sign(&in, creq);
    FUZZ_CHECK(sts != NULL);
    char hash[65], head[512];
    os3_sha256_hex(creq, strlen(creq), hash);
    int hn = snprintf(head, sizeof(head), "AWS4-HMAC-SHA256\n%s\n%.8s/%s/%s/aws4_request\n",
                      in.amz_date, in.amz_date, in.region, in.service);
    if (hn > 0 && (size_t)hn < sizeof(head))
        FUZZ_CHECK(strncmp(sts, head, (size_t)hn) == 0);
    FUZZ_CHECK(strlen(sts) > 64 && strcmp(sts + strlen(sts) - 64, hash) == 0);

    /* Authorization: same value for the permuted request; a small buffer is -ENOSPC. */
    int arc2 = os3_sigv4_authorization(&in2, &cr, auth2, sizeof(auth2));
    FUZZ_CHECK(arc == arc2);
    if (arc == 0) {
        FUZZ_CHECK(strcmp(auth, auth2) == 0);
        size_t alen = strlen(auth);
        FUZZ_CHECK(alen > 76 && strncmp(auth, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/", 40) == 0);
        FUZZ_CHECK(strncmp(auth + alen - 76, ", Signature=", 12) == 0);
        for (size_t i = alen - 64; i < alen; i++)
            FUZZ_CHECK(isxdigit((unsigned char)auth[i]) && !isupper((unsigned char)auth[i]));
        char want[1024];
        int wn = snprintf(want, sizeof(want), "SignedHeaders=%s, Signature=", sh);
        if (wn > 0 && (size_t)wn < sizeof(want))
            FUZZ_CHECK(strstr(auth, want) != NULL);
    } else {
        FUZZ_CHECK(arc == -ENOSPC);
    }
    FUZZ_CHECK(os3_sigv4_authorization(&in, &cr, tiny, sizeof(tiny)) == -ENOSPC);

    free(sts);
    free(creq2);
    free(sh2);
    free(want_sh);
    for (size_t i = 0; i < n_headers; i++)
        free(names[i]);
    free(creq);
    free(sh);
    free(buf);
    return 0;
}
