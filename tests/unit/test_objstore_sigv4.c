/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_objstore_sigv4.c: unit tests for objstore/sigv4.c: S3 URI encoding, SHA-256, the
 * S3 documentation's signing examples, AWS's SigV4 test suite (from npm, when present),
 * and the signing-key cache under threads.
 *
 * The AWS suite is laid out by the ctest fixture objstore_sigv4_suite (see
 * fixtures/sigv4/fetch_suite.cmake) in $TIERFS_SIGV4_SUITE_DIR; without it the suite test
 * is reported as skipped and the built-in vectors still run.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include "tests/unit/t_strict.h"

#include "objstore/objstore_i.h"

#define EXAMPLE_AK "AKIAIOSFODNN7EXAMPLE"
#define EXAMPLE_SK "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

static void set_creds(struct objstore_credentials *cr, const char *ak, const char *sk)
{
    memset(cr, 0, sizeof(*cr));
    snprintf(cr->access_key, sizeof(cr->access_key), "%s", ak);
    snprintf(cr->secret_key, sizeof(cr->secret_key), "%s", sk);
}

static void check_encode(const char *in, bool keep_slash, const char *want)
{
    char *got = os3_uri_encode(in, keep_slash);
    assert_non_null(got);
    assert_string_equal(got, want);
    char *back = os3_uri_decode(got);
    assert_non_null(back);
    assert_string_equal(back, in); /* every encoding decodes to what went in */
    free(back);
    free(got);
}

static void test_uri_encode(void **state)
{
    check_encode("", true, "");
    check_encode("AZaz09-_.~", false, "AZaz09-_.~");
    check_encode("my key.txt", true, "my%20key.txt");
    check_encode("a+b", true, "a%2Bb");
    check_encode("100%", true, "100%25");
    check_encode("x=1&y=2", false, "x%3D1%26y%3D2");
    check_encode("~user/file", true, "~user/file");
    check_encode("dir/sub dir/f", true, "dir/sub%20dir/f");
    check_encode("dir/sub dir/f", false, "dir%2Fsub%20dir%2Ff");
    check_encode("caf\xc3\xa9/\xe1\x88\xb4", true, "caf%C3%A9/%E1%88%B4");
    check_encode("!*'();:@$,?#[]", true, "%21%2A%27%28%29%3B%3A%40%24%2C%3F%23%5B%5D");
    check_encode("\x7f\x01\xff", false, "%7F%01%FF");
    assert_null(os3_uri_encode(NULL, true));
}

static void test_uri_decode(void **state)
{
    char *s = os3_uri_decode("a%2fb%2Fc+d%7e");
    assert_non_null(s);
    assert_string_equal(s, "a/b/c+d~"); /* lower-case hex accepted, '+' is not a space */
    free(s);

    const char *bad[] = {"%", "%2", "abc%", "%G0", "%0G", "%%41", "x%zz", "%00"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        errno = 0;
        assert_null(os3_uri_decode(bad[i]));
        assert_int_equal(errno, EINVAL);
    }
    errno = 0;
    assert_null(os3_uri_decode(NULL));
    assert_int_equal(errno, EINVAL);
}

static void test_sha256_and_date(void **state)
{
    char hex[65];
    os3_sha256_hex("", 0, hex);
    assert_string_equal(hex, OS3_EMPTY_SHA256);
    os3_sha256_hex("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");

    char d[17];
    os3_amz_date(0, d);
    assert_string_equal(d, "19700101T000000Z");
    os3_amz_date(1369353600, d); /* the S3 examples' 2013-05-24 */
    assert_string_equal(d, "20130524T000000Z");
    os3_amz_date(1440938160, d);
    assert_string_equal(d, "20150830T123600Z");
}

/* The S3 SigV4 documentation examples all share these headers. */
static const struct os3_kv s3_doc_headers[] = {
    {"Host", "examplebucket.s3.amazonaws.com"},
    {"x-amz-date", "20130524T000000Z"},
    {"x-amz-content-sha256", OS3_EMPTY_SHA256},
};

static void s3_doc_input(struct os3_sign_input *in)
{
    memset(in, 0, sizeof(*in));
    in->method = "GET";
    in->canonical_uri = "/";
    in->headers = s3_doc_headers;
    in->n_headers = 3;
    in->payload_hash = OS3_EMPTY_SHA256;
    in->amz_date = "20130524T000000Z";
    in->region = "us-east-1";
    in->service = "s3";
}

/* GET /test.txt with a Range header: the "GET Object" example of the S3 docs. */
static void test_s3_doc_get_object(void **state)
{
    const struct os3_kv headers[] = {
        {"x-amz-date", "20130524T000000Z"},
        {"Range", "bytes=0-9"},
        {"x-amz-content-sha256", OS3_EMPTY_SHA256},
        {"Host", "examplebucket.s3.amazonaws.com"},
    };
    struct os3_sign_input in;
    s3_doc_input(&in);
    in.canonical_uri = "/test.txt";
    in.headers = headers;
    in.n_headers = 4;

    char *sh = NULL;
    char *creq = os3_sigv4_canonical_request(&in, &sh);
    assert_non_null(creq);
    assert_string_equal(creq, "GET\n/test.txt\n\n"
                              "host:examplebucket.s3.amazonaws.com\n"
                              "range:bytes=0-9\n"
                              "x-amz-content-sha256:" OS3_EMPTY_SHA256 "\n"
                              "x-amz-date:20130524T000000Z\n\n"
                              "host;range;x-amz-content-sha256;x-amz-date\n" OS3_EMPTY_SHA256);
    assert_string_equal(sh, "host;range;x-amz-content-sha256;x-amz-date");

    char *sts = os3_sigv4_string_to_sign(&in, creq);
    assert_non_null(sts);
    assert_string_equal(sts, "AWS4-HMAC-SHA256\n20130524T000000Z\n"
                             "20130524/us-east-1/s3/aws4_request\n"
                             "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");

    struct objstore_credentials cr;
    set_creds(&cr, EXAMPLE_AK, EXAMPLE_SK);
    char authz[512];
    assert_int_equal(os3_sigv4_authorization(&in, &cr, authz, sizeof(authz)), 0);
    assert_string_equal(authz, "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/"
                               "us-east-1/s3/aws4_request, SignedHeaders=host;range;"
                               "x-amz-content-sha256;x-amz-date, Signature="
                               "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
    free(sts);
    free(creq);
    free(sh);
}

/* The ListObjects and GET ?lifecycle examples: query strings, sorting, "name=". */
static void test_s3_doc_query_examples(void **state)
{
    struct objstore_credentials cr;
    set_creds(&cr, EXAMPLE_AK, EXAMPLE_SK);
    struct os3_sign_input in;
    char authz[512];

    const struct os3_kv list_q[] = {{"prefix", "J"}, {"max-keys", "2"}};
    s3_doc_input(&in);
    in.query = list_q;
    in.n_query = 2;
    char *creq = os3_sigv4_canonical_request(&in, NULL);
    assert_non_null(creq);
    assert_non_null(strstr(creq, "\nmax-keys=2&prefix=J\n"));
    free(creq);
    assert_int_equal(os3_sigv4_authorization(&in, &cr, authz, sizeof(authz)), 0);
    assert_non_null(strstr(authz, "SignedHeaders=host;x-amz-content-sha256;x-amz-date, "
                                  "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed"
                                  "5711ef69dc6f7"));

    const struct os3_kv lifecycle_q[] = {{"lifecycle", NULL}};
    in.query = lifecycle_q;
    in.n_query = 1;
    creq = os3_sigv4_canonical_request(&in, NULL);
    assert_non_null(creq);
    assert_non_null(strstr(creq, "\nlifecycle=\n"));
    free(creq);
    assert_int_equal(os3_sigv4_authorization(&in, &cr, authz, sizeof(authz)), 0);
    assert_non_null(strstr(authz, "Signature=fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a20"
                                  "0a0136783543"));
}

/* Query values are encoded with '/' encoded, sorted on the encoded form. */
static void test_canonical_query_encoding(void **state)
{
    const struct os3_kv q[] = {
        {"prefix", "dir/a b+c"},
        {"continuation-token", "1/x=="},
        {"delimiter", "/"},
        {"list-type", "2"},
        {"a~", ""},
        {"A", "z"},
    };
    struct os3_sign_input in;
    s3_doc_input(&in);
    in.query = q;
    in.n_query = 6;
    char *creq = os3_sigv4_canonical_request(&in, NULL);
    assert_non_null(creq);
    assert_non_null(strstr(creq, "\nA=z&a~=&continuation-token=1%2Fx%3D%3D&delimiter=%2F&"
                                 "list-type=2&prefix=dir%2Fa%20b%2Bc\n"));
    free(creq);
}

/* Header names fold case, values trim and collapse, repeats keep their order. */
static void test_canonical_headers(void **state)
{
    const struct os3_kv h[] = {
        {"X-Amz-Meta-B", "  two   words  "},   {"HOST", "h.example"},    {"x-amz-meta-a", "first"},
        {"X-AMZ-META-A", "second\n   folded"}, {"x-amz-meta-empty", ""},
    };
    struct os3_sign_input in;
    s3_doc_input(&in);
    in.headers = h;
    in.n_headers = 5;
    char *sh = NULL;
    char *creq = os3_sigv4_canonical_request(&in, &sh);
    assert_non_null(creq);
    assert_string_equal(creq, "GET\n/\n\n"
                              "host:h.example\n"
                              "x-amz-meta-a:first,second folded\n"
                              "x-amz-meta-b:two words\n"
                              "x-amz-meta-empty:\n\n"
                              "host;x-amz-meta-a;x-amz-meta-b;x-amz-meta-empty\n" OS3_EMPTY_SHA256);
    assert_string_equal(sh, "host;x-amz-meta-a;x-amz-meta-b;x-amz-meta-empty");
    free(creq);
    free(sh);
}

/* A session token is signed like any header when the caller includes it. */
static void test_session_token_signed(void **state)
{
    const struct os3_kv h[] = {
        {"Host", "examplebucket.s3.amazonaws.com"},
        {"x-amz-date", "20130524T000000Z"},
        {"x-amz-content-sha256", OS3_EMPTY_SHA256},
        {"x-amz-security-token", "FQoGZXIvYXdzE//token+value=="},
    };
    struct os3_sign_input in;
    s3_doc_input(&in);
    struct objstore_credentials cr;
    set_creds(&cr, EXAMPLE_AK, EXAMPLE_SK);
    char a1[512], a2[512];
    assert_int_equal(os3_sigv4_authorization(&in, &cr, a1, sizeof(a1)), 0);
    in.headers = h;
    in.n_headers = 4;
    assert_int_equal(os3_sigv4_authorization(&in, &cr, a2, sizeof(a2)), 0);
    assert_non_null(
        strstr(a2, "SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token,"));
    assert_string_not_equal(a1, a2);
}

static void test_sign_errors(void **state)
{
    struct os3_sign_input in;
    struct objstore_credentials cr;
    char authz[512];
    set_creds(&cr, EXAMPLE_AK, EXAMPLE_SK);
    s3_doc_input(&in);
    assert_int_equal(os3_sigv4_authorization(&in, &cr, authz, 40), -ENOSPC);
    in.amz_date = "20130524";
    assert_int_equal(os3_sigv4_authorization(&in, &cr, authz, sizeof(authz)), -EINVAL);
    assert_null(os3_sigv4_canonical_request(&in, NULL));
    s3_doc_input(&in);
    in.n_headers = 0;
    errno = 0;
    assert_null(os3_sigv4_canonical_request(&in, NULL));
    assert_int_equal(errno, EINVAL);
    /* Bad input is -EINVAL, not -ENOMEM: no headers (host is always signed)... */
    assert_int_equal(os3_sigv4_authorization(&in, &cr, authz, sizeof(authz)), -EINVAL);
    /* ...a header without a name, or a header count with no array. */
    struct os3_kv bad[2] = {{.name = "host", .value = "examplebucket.s3.amazonaws.com"},
                            {.name = NULL, .value = "x"}};
    s3_doc_input(&in);
    in.headers = bad;
    in.n_headers = 2;
    assert_int_equal(os3_sigv4_authorization(&in, &cr, authz, sizeof(authz)), -EINVAL);
    in.headers = NULL;
    in.n_headers = 1;
    assert_int_equal(os3_sigv4_authorization(&in, &cr, authz, sizeof(authz)), -EINVAL);
    s3_doc_input(&in);
    assert_int_equal(os3_sigv4_authorization(&in, NULL, authz, sizeof(authz)), -EINVAL);
    assert_int_equal(os3_sigv4_authorization(&in, &cr, NULL, sizeof(authz)), -EINVAL);
    set_creds(&cr, EXAMPLE_AK, "");
    assert_int_equal(os3_sigv4_authorization(&in, &cr, authz, sizeof(authz)), -EINVAL);
    assert_int_equal(os3_sigv4_authorization(NULL, &cr, authz, sizeof(authz)), -EINVAL);
}

/*
 * The signing-key cache must never hand one secret's key to another: sign the same
 * request with many (secret, date) pairs, more than the cache holds, from several threads,
 * and compare each result with the one computed alone first.
 */
#define CACHE_VARIANTS 12
#define CACHE_THREADS 4
static char cache_expected[CACHE_VARIANTS][512];

static void cache_variant(int v, struct os3_sign_input *in, struct objstore_credentials *cr,
                          char date[17])
{
    s3_doc_input(in);
    snprintf(date, 17, "201305%02dT000000Z", 10 + v % 3);
    in->amz_date = date;
    in->region = (v % 2) ? "eu-west-1" : "us-east-1";
    char sk[64];
    snprintf(sk, sizeof(sk), "secret-number-%d", v % 4);
    set_creds(cr, EXAMPLE_AK, sk);
}

static void *cache_thread(void *arg)
{
    intptr_t bad = 0;
    for (int round = 0; round < 200; round++) {
        int v = (int)(((uintptr_t)arg + (uintptr_t)round * 7) % CACHE_VARIANTS);
        struct os3_sign_input in;
        struct objstore_credentials cr;
        char date[17], authz[512];
        cache_variant(v, &in, &cr, date);
        if (os3_sigv4_authorization(&in, &cr, authz, sizeof(authz)) != 0 ||
            strcmp(authz, cache_expected[v]) != 0)
            bad++;
    }
    return (void *)bad;
}

static void test_signing_key_cache(void **state)
{
    for (int v = 0; v < CACHE_VARIANTS; v++) {
        struct os3_sign_input in;
        struct objstore_credentials cr;
        char date[17];
        cache_variant(v, &in, &cr, date);
        assert_int_equal(
            os3_sigv4_authorization(&in, &cr, cache_expected[v], sizeof(cache_expected[v])), 0);
        for (int u = 0; u < v; u++)
            assert_string_not_equal(cache_expected[u], cache_expected[v]);
    }
    pthread_t th[CACHE_THREADS];
    for (intptr_t i = 0; i < CACHE_THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, cache_thread, (void *)i), 0);
    for (int i = 0; i < CACHE_THREADS; i++) {
        void *bad;
        assert_int_equal(pthread_join(th[i], &bad), 0);
        assert_int_equal((intptr_t)bad, 0);
    }
    /* And the S3 example still signs right after all that churn. */
    test_s3_doc_get_object(state);
}

/* ---- AWS SigV4 test suite ---- */

static char *read_file(const char *dir, const char *name, const char *ext)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s%s", dir, name, ext);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t len = 0, cap = 0, n;
    char chunk[4096];
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (len + n + 1 > cap) {
            cap = (len + n + 1) * 2;
            char *nb = realloc(buf, cap);
            assert_non_null(nb);
            buf = nb;
        }
        memcpy(buf + len, chunk, n);
        len += n;
    }
    fclose(f);
    if (!buf)
        buf = calloc(1, 1);
    else
        buf[len] = '\0';
    return buf;
}

#define SUITE_MAX_ITEMS 64

/* A .req file parsed into the signing input: request line, headers, blank line, body. */
struct parsed_req {
    char *text; /* the .req, cut in place */
    char method[16];
    char uri[2048];
    struct os3_kv query[SUITE_MAX_ITEMS];
    char *qbuf[SUITE_MAX_ITEMS];
    size_t n_query;
    struct os3_kv headers[SUITE_MAX_ITEMS];
    char *folded[SUITE_MAX_ITEMS]; /* values made from continuation lines */
    size_t n_headers;
    const char *body;
};

static void parsed_req_free(struct parsed_req *r)
{
    for (size_t i = 0; i < r->n_query; i++)
        free(r->qbuf[i]);
    for (size_t i = 0; i < r->n_headers; i++)
        free(r->folded[i]);
    free(r->text);
}

/* Split "a=b&c" into decoded name/value pairs (raw, as the signer wants them). */
static void parse_query(struct parsed_req *r, char *qs)
{
    for (char *tok = strtok(qs, "&"); tok; tok = strtok(NULL, "&")) {
        assert_true(r->n_query < SUITE_MAX_ITEMS);
        char *eq = strchr(tok, '=');
        if (eq)
            *eq = '\0';
        size_t i = r->n_query++;
        char *name = os3_uri_decode(tok);
        char *value = os3_uri_decode(eq ? eq + 1 : "");
        assert_non_null(name);
        assert_non_null(value);
        /* one allocation per pair keeps cleanup simple */
        r->qbuf[i] = malloc(strlen(name) + strlen(value) + 2);
        assert_non_null(r->qbuf[i]);
        strcpy(r->qbuf[i], name);
        strcpy(r->qbuf[i] + strlen(name) + 1, value);
        r->query[i].name = r->qbuf[i];
        r->query[i].value = r->qbuf[i] + strlen(name) + 1;
        free(name);
        free(value);
    }
}

static void parse_req(char *text, struct parsed_req *r)
{
    memset(r, 0, sizeof(*r));
    r->text = text;
    char *line = text, *next;
    /* request line: METHOD SP URI SP HTTP/1.1 (the URI may hold spaces) */
    next = strchr(line, '\n');
    if (next)
        *next++ = '\0';
    char *sp = strchr(line, ' ');
    char *proto = strstr(line, " HTTP/");
    assert_non_null(sp);
    assert_non_null(proto);
    snprintf(r->method, sizeof(r->method), "%.*s", (int)(sp - line), line);
    snprintf(r->uri, sizeof(r->uri), "%.*s", (int)(proto - sp - 1), sp + 1);

    char *q = strchr(r->uri, '?');
    if (q) {
        *q = '\0';
        char qs[2048];
        snprintf(qs, sizeof(qs), "%s", q + 1);
        parse_query(r, qs);
    }
    r->body = "";
    for (line = next; line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        size_t len = strlen(line);
        if (len && line[len - 1] == '\r')
            line[--len] = '\0';
        if (len == 0) {
            r->body = next ? next : "";
            break;
        }
        if ((line[0] == ' ' || line[0] == '\t') && r->n_headers) {
            /* continuation of the previous header's value */
            size_t i = r->n_headers - 1;
            const char *prev = r->headers[i].value;
            char *joined = malloc(strlen(prev) + len + 2);
            assert_non_null(joined);
            sprintf(joined, "%s\n%s", prev, line);
            free(r->folded[i]);
            r->folded[i] = joined;
            r->headers[i].value = joined;
            continue;
        }
        char *colon = strchr(line, ':');
        assert_non_null(colon);
        assert_true(r->n_headers < SUITE_MAX_ITEMS);
        *colon = '\0';
        r->headers[r->n_headers].name = line;
        r->headers[r->n_headers].value = colon + 1;
        r->n_headers++;
    }
}

/* True when the path has segments only a normalising signer would rewrite. */
static bool needs_path_normalization(const char *p)
{
    return strstr(p, "//") || strstr(p, "/./") || strstr(p, "/../") ||
           (strlen(p) >= 2 && strcmp(p + strlen(p) - 2, "/.") == 0) ||
           (strlen(p) >= 3 && strcmp(p + strlen(p) - 3, "/..") == 0);
}

static void chomp(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
}

/* Check vector @name (of @group) of the suite in @dir against our signer, with region and
 * service from @cfg. @return true when it matched (counting what was special about it). */
static bool aws_check_vector(const char *dir, const char *group, const char *name, char **cfg,
                             const struct objstore_credentials *cr, int *prenormalized,
                             int *creq_only)
{
    char *req = read_file(dir, name, ".req");
    char *want_creq = read_file(dir, name, ".creq");
    char *want_sts = read_file(dir, name, ".sts");
    char *want_authz = read_file(dir, name, ".authz");
    assert_non_null(req);
    assert_non_null(want_creq);
    assert_non_null(want_sts);
    assert_non_null(want_authz);
    chomp(want_authz);

    struct parsed_req r;
    parse_req(req, &r);
    const char *date = NULL;
    for (size_t i = 0; i < r.n_headers; i++)
        if (strcasecmp(r.headers[i].name, "x-amz-date") == 0)
            date = r.headers[i].value;
    assert_non_null(date);
    char payload_hash[65];
    os3_sha256_hex(r.body, strlen(r.body), payload_hash);

    /*
     * S3 signs the path exactly as sent, so os3 takes the canonical URI as given and
     * does not remove "." / ".." / empty segments. For the vectors of that feature,
     * sign with the normalised path from the .creq (what a normalising caller would
     * pass) and check everything else.
     */
    char uri[2048];
    snprintf(uri, sizeof(uri), "%s", r.uri);
    if (needs_path_normalization(r.uri)) {
        const char *p = strchr(want_creq, '\n');
        assert_non_null(p);
        const char *e = strchr(p + 1, '\n');
        assert_non_null(e);
        snprintf(uri, sizeof(uri), "%.*s", (int)(e - p - 1), p + 1);
        printf("[  NOTE    ] %s (%s): path '%s' normalised by the test to '%s' "
               "(os3 signs S3 paths as given)\n",
               name, group, r.uri, uri);
        (*prenormalized)++;
    }

    struct os3_sign_input in = {
        .method = r.method,
        .canonical_uri = uri,
        .query = r.query,
        .n_query = r.n_query,
        .headers = r.headers,
        .n_headers = r.n_headers,
        .payload_hash = payload_hash,
        .amz_date = date,
        .region = cfg[2],
        .service = cfg[3],
    };
    char *creq = os3_sigv4_canonical_request(&in, NULL);
    char *sts = creq ? os3_sigv4_string_to_sign(&in, creq) : NULL;
    char authz[1024] = "";
    int rc = os3_sigv4_authorization(&in, cr, authz, sizeof(authz));

    /*
     * A few vectors in the package are stale upstream: their .sts does not hold the
     * hash of their own .creq. No signer can match both, so those are checked up to
     * the canonical request and counted separately.
     */
    char creq_hash[65];
    os3_sha256_hex(want_creq, strlen(want_creq), creq_hash);
    const char *nl = strrchr(want_sts, '\n');
    bool consistent = strcmp(nl ? nl + 1 : want_sts, creq_hash) == 0;
    bool ok = creq && sts && rc == 0 && strcmp(creq, want_creq) == 0;
    if (consistent)
        ok = ok && strcmp(sts, want_sts) == 0 && strcmp(authz, want_authz) == 0;
    else {
        (*creq_only)++;
        printf("[  NOTE    ] %s: canonical request checked; .sts/.authz skipped because the "
               "vector's .sts is not the SHA-256 of its own .creq\n",
               name);
    }
    if (!ok) {
        printf("[  FAILED  ] %s:\n--- creq want\n%s\n--- creq got\n%s\n--- sts want\n%s\n"
               "--- sts got\n%s\n--- authz want\n%s\n--- authz got (%d)\n%s\n",
               name, want_creq, creq ? creq : "(null)", want_sts, sts ? sts : "(null)", want_authz,
               rc, authz);
    }
    free(creq);
    free(sts);
    free(want_creq);
    free(want_sts);
    free(want_authz);
    parsed_req_free(&r);
    return ok;
}

static void test_aws_suite(void **state)
{
    const char *dir = getenv("TIERFS_SIGV4_SUITE_DIR");
    char *index = dir ? read_file(dir, "index", ".txt") : NULL;
    char *config = dir ? read_file(dir, "config", ".txt") : NULL;
    if (!index || !config) {
        printf("[  SKIPPED ] AWS SigV4 suite: not available (%s); built-in vectors only\n",
               dir ? dir : "TIERFS_SIGV4_SUITE_DIR unset");
        free(index);
        free(config);
        T_SKIP("the AWS SigV4 suite was not fetched (npm)");
    }
    char *cfg[4] = {0};
    char *save = NULL;
    cfg[0] = strtok_r(config, "\n", &save);
    for (int i = 1; i < 4; i++)
        cfg[i] = strtok_r(NULL, "\n", &save);
    for (int i = 0; i < 4; i++)
        assert_non_null(cfg[i]);
    struct objstore_credentials cr;
    set_creds(&cr, cfg[0], cfg[1]);

    int checked = 0, prenormalized = 0, creq_only = 0, failed = 0;
    char *isave = NULL;
    for (char *line = strtok_r(index, "\n", &isave); line; line = strtok_r(NULL, "\n", &isave)) {
        char group[64], name[256];
        assert_int_equal(sscanf(line, "%63s %255s", group, name), 2);
        if (!aws_check_vector(dir, group, name, cfg, &cr, &prenormalized, &creq_only))
            failed++;
        checked++;
    }
    printf("[  INFO    ] AWS SigV4 suite: %d vectors checked (%d with a pre-normalised path, "
           "%d inconsistent upstream so canonical request only), %d failed, 0 skipped\n",
           checked, prenormalized, creq_only, failed);
    free(index);
    free(config);
    assert_true(checked > 0);
    assert_int_equal(failed, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uri_encode),
        cmocka_unit_test(test_uri_decode),
        cmocka_unit_test(test_sha256_and_date),
        cmocka_unit_test(test_s3_doc_get_object),
        cmocka_unit_test(test_s3_doc_query_examples),
        cmocka_unit_test(test_canonical_query_encoding),
        cmocka_unit_test(test_canonical_headers),
        cmocka_unit_test(test_session_token_signed),
        cmocka_unit_test(test_sign_errors),
        cmocka_unit_test(test_signing_key_cache),
        cmocka_unit_test(test_aws_suite),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
