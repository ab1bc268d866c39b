/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_objstore.c: unit tests of objstore without a network: ListObjectsV2/error XML
 * parsing, the errno table, and the retry policy driven through the fault wrapper over an
 * in-memory fake store.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/util.h"
#include "objstore/objstore_i.h"

/* ================= XML ================= */

static const char list_page[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
    "<Name>b</Name><Prefix></Prefix><KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys>"
    "<IsTruncated>false</IsTruncated>"
    "<Contents><Key>a.txt</Key><LastModified>2009-10-12T17:50:30.000Z</LastModified>"
    "<ETag>&quot;fba9dede5f27731c9771645a39863328&quot;</ETag><Size>434234</Size>"
    "<StorageClass>STANDARD</StorageClass></Contents>"
    "<Contents><Key>dir/b &amp; c</Key><LastModified>1970-01-01T00:00:01.000Z</LastModified>"
    "<ETag>\"x\"</ETag><Size>0</Size></Contents>"
    "</ListBucketResult>";

static void test_xml_list_normal(void **state)
{
    struct objstore_list_result r;
    assert_int_equal(os3_xml_parse_list(list_page, strlen(list_page), &r), 0);
    assert_int_equal(r.n_entries, 2);
    assert_int_equal(r.n_prefixes, 0);
    assert_false(r.truncated);
    assert_null(r.next_token);
    assert_string_equal(r.entries[0].key, "a.txt");
    assert_int_equal(r.entries[0].size, 434234);
    assert_string_equal(r.entries[0].etag, "\"fba9dede5f27731c9771645a39863328\"");
    assert_int_equal(r.entries[0].mtime_sec, 1255369830);
    assert_string_equal(r.entries[1].key, "dir/b & c"); /* not url-encoded: kept as is */
    assert_int_equal(r.entries[1].size, 0);
    assert_int_equal(r.entries[1].mtime_sec, 1);
    objstore_list_result_free(&r);
    assert_null(r.entries);
}

static void test_xml_list_prefixes(void **state)
{
    static const char page[] =
        "<ListBucketResult><EncodingType>url</EncodingType><IsTruncated>false</IsTruncated>"
        "<Delimiter>/</Delimiter>"
        "<Contents><Key>top%20file</Key><Size>5</Size></Contents>"
        "<CommonPrefixes><Prefix>photos/</Prefix></CommonPrefixes>"
        "<CommonPrefixes><Prefix>a%2Bb%25/</Prefix></CommonPrefixes>"
        "</ListBucketResult>";
    struct objstore_list_result r;
    assert_int_equal(os3_xml_parse_list(page, strlen(page), &r), 0);
    assert_int_equal(r.n_entries, 1);
    assert_string_equal(r.entries[0].key, "top file");
    assert_int_equal(r.entries[0].mtime_sec, 0);
    assert_int_equal(r.n_prefixes, 2);
    assert_string_equal(r.prefixes[0], "photos/");
    assert_string_equal(r.prefixes[1], "a+b%/");
    objstore_list_result_free(&r);
}

static void test_xml_list_malformed(void **state)
{
    static const char *const bad[] = {
        "",
        "not xml at all",
        /* truncated mid-element, as after a connection reset */
        "<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>a</Key><Si",
        "<Error><Code>x</Code></Error>",                                            /* wrong root */
        "<ListBucketResult><Contents><Size>1</Size></Contents></ListBucketResult>", /* no Key */
        "<ListBucketResult><Contents><Key>a</Key><Size>-1</Size></Contents></ListBucketResult>",
        "<ListBucketResult><Contents><Key>a</Key><Size>12x</Size></Contents></ListBucketResult>",
        "<ListBucketResult><Contents><Key>a</Key><Size>1</Size><LastModified>yesterday"
        "</LastModified></Contents></ListBucketResult>",
        "<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>", /* no token */
        /* a DTD with an entity: refused outright */
        "<?xml version=\"1.0\"?><!DOCTYPE l [<!ENTITY e \"boom\">]>"
        "<ListBucketResult><Contents><Key>&e;</Key><Size>1</Size></Contents></ListBucketResult>",
        /* an external entity must never be fetched */
        "<?xml version=\"1.0\"?><!DOCTYPE l [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>"
        "<ListBucketResult><Contents><Key>&e;</Key><Size>1</Size></Contents></ListBucketResult>",
        /* bad percent-encoding in an url-encoded listing */
        "<ListBucketResult><EncodingType>url</EncodingType><Contents><Key>%zz</Key><Size>1</Size>"
        "</Contents></ListBucketResult>",
    };
    for (size_t i = 0; i < CMN_ARRAY_SIZE(bad); i++) {
        struct objstore_list_result r;
        memset(&r, 0x5a, sizeof(r));
        assert_int_equal(os3_xml_parse_list(bad[i], strlen(bad[i]), &r), -EIO);
        assert_int_equal(r.n_entries, 0); /* left empty */
        assert_null(r.entries);
    }
    /* Every proper prefix of a valid page is a truncated body and must fail. */
    for (size_t n = 1; n < strlen(list_page) - 1; n += 7) {
        struct objstore_list_result r;
        assert_int_equal(os3_xml_parse_list(list_page, n, &r), -EIO);
    }
}

static void test_xml_list_generated_1000(void **state)
{
    size_t cap = 1 << 20, len = 0;
    char *xml = malloc(cap);
    assert_non_null(xml);
    len += (size_t)snprintf(xml + len, cap - len,
                            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult "
                            "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>b</Name>"
                            "<Prefix>d%%2F</Prefix><KeyCount>1000</KeyCount><MaxKeys>1000</MaxKeys>"
                            "<IsTruncated>true</IsTruncated><EncodingType>url</EncodingType>"
                            "<NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM="
                            "</NextContinuationToken>");
    for (int i = 0; i < 1000; i++)
        len += (size_t)snprintf(xml + len, cap - len,
                                "<Contents><Key>d/k%%20%04d%%2B%%25%%3D%%26%%C3%%A9</Key>"
                                "<LastModified>2024-02-29T23:59:59.123Z</LastModified>"
                                "<ETag>&quot;%032d&quot;</ETag><Size>%d</Size></Contents>",
                                i, i, i * 1000);
    len += (size_t)snprintf(xml + len, cap - len, "</ListBucketResult>");
    assert_true(len < cap);

    struct objstore_list_result r;
    assert_int_equal(os3_xml_parse_list(xml, len, &r), 0);
    assert_int_equal(r.n_entries, 1000);
    assert_true(r.truncated);
    assert_string_equal(r.next_token, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");
    for (int i = 0; i < 1000; i++) {
        char want[64];
        snprintf(want, sizeof(want), "d/k %04d+%%=&\xc3\xa9", i);
        assert_string_equal(r.entries[i].key, want);
        assert_int_equal(r.entries[i].size, (uint64_t)i * 1000);
        assert_int_equal(r.entries[i].mtime_sec, 1709251199);
    }
    objstore_list_result_free(&r);
    free(xml);
}

static void test_xml_error(void **state)
{
    static const char body[] =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchKey"
        "</Code><Message>The resource you requested does not exist</Message>"
        "<Resource>/mybucket/myfoto.jpg</Resource><RequestId>4442587FB7D0A2F9"
        "</RequestId></Error>";
    char code[64], msg[128];
    assert_int_equal(os3_xml_parse_error(body, strlen(body), code, sizeof(code), msg, sizeof(msg)),
                     0);
    assert_string_equal(code, "NoSuchKey");
    assert_string_equal(msg, "The resource you requested does not exist");
    /* Small buffers truncate, never overflow. */
    char c4[4];
    assert_int_equal(os3_xml_parse_error(body, strlen(body), c4, sizeof(c4), msg, sizeof(msg)), 0);
    assert_string_equal(c4, "NoS");
    static const char nomsg[] = "<Error><Code>SlowDown</Code></Error>";
    assert_int_equal(
        os3_xml_parse_error(nomsg, strlen(nomsg), code, sizeof(code), msg, sizeof(msg)), 0);
    assert_string_equal(code, "SlowDown");
    assert_string_equal(msg, "");
    assert_int_equal(
        os3_xml_parse_error("<Error><Code>x", 14, code, sizeof(code), msg, sizeof(msg)), -EIO);
    assert_string_equal(code, "");
    assert_int_equal(
        os3_xml_parse_error("<html>502</html>", 16, code, sizeof(code), msg, sizeof(msg)), -EIO);
}

/* ================= errno table ================= */

static void test_errmap_table(void **state)
{
    static const struct {
        int status;
        const char *code;
        int want;
    } cases[] = {
        {200, NULL, 0},
        {206, NULL, 0},
        {404, "NoSuchKey", -ENOENT},
        {404, "NoSuchBucket", -ENOENT},
        {404, NULL, -ENOENT}, /* HEAD: no body, no code */
        {403, "AccessDenied", -EACCES},
        {403, "SignatureDoesNotMatch", -EACCES},
        {403, "InvalidAccessKeyId", -EACCES},
        {403, NULL, -EACCES},
        {400, "ExpiredToken", -EACCES}, /* the code wins over the status */
        {412, "PreconditionFailed", -ESTALE},
        {412, NULL, -ESTALE},
        {416, "InvalidRange", -EINVAL},
        {416, NULL, -EINVAL},
        {400, "InvalidArgument", -EINVAL},
        {503, "SlowDown", -EIO},
        {500, "InternalError", -EIO},
        {502, NULL, -EIO},
        {504, "", -EIO},
        {409, "SomethingNew", -EIO},
        {301, "PermanentRedirect", -EIO},
    };
    for (size_t i = 0; i < CMN_ARRAY_SIZE(cases); i++)
        assert_int_equal(objstore_map_error(cases[i].status, cases[i].code), cases[i].want);

    assert_int_equal(objstore_map_curl_error(0), 0);
    assert_int_equal(objstore_map_curl_error(7 /* COULDNT_CONNECT */), -ECONNREFUSED);
    assert_int_equal(objstore_map_curl_error(6 /* COULDNT_RESOLVE_HOST */), -EHOSTUNREACH);
    assert_int_equal(objstore_map_curl_error(28 /* OPERATION_TIMEDOUT */), -ETIMEDOUT);
    assert_int_equal(objstore_map_curl_error(56 /* RECV_ERROR */), -ECONNRESET);
    assert_int_equal(objstore_map_curl_error(52 /* GOT_NOTHING */), -ECONNRESET);
    assert_int_equal(objstore_map_curl_error(18 /* PARTIAL_FILE */), -EIO);
    assert_int_equal(objstore_map_curl_error(60 /* PEER_FAILED_VERIFICATION */), -EPROTO);

    /* The retry policy: 5xx, resets, timeouts and short bodies yes; 4xx and refusals no. */
    assert_true(objstore_is_retryable(-EIO, 503));
    assert_true(objstore_is_retryable(-EIO, 500));
    assert_true(objstore_is_retryable(-ECONNRESET, 0));
    assert_true(objstore_is_retryable(-ETIMEDOUT, 0));
    assert_true(objstore_is_retryable(-EIO, 206)); /* short body */
    assert_true(objstore_is_retryable(-EIO, 200));
    assert_false(objstore_is_retryable(0, 200));
    assert_false(objstore_is_retryable(-EACCES, 403));
    assert_false(objstore_is_retryable(-ENOENT, 404));
    assert_false(objstore_is_retryable(-ESTALE, 412));
    assert_false(objstore_is_retryable(-EIO, 429));
    assert_false(objstore_is_retryable(-ECONNREFUSED, 0));
    assert_false(objstore_is_retryable(-EHOSTUNREACH, 0));
    assert_false(objstore_is_retryable(-EPROTO, 0));

    assert_string_equal(objstore_strerror(-ENOENT), "no such key or bucket");
    assert_string_not_equal(objstore_strerror(-EACCES), objstore_strerror(-ESTALE));
    assert_non_null(objstore_strerror(-12345));
}

static void test_backoff_bounds(void **state)
{
    uint64_t rng = 42;
    for (unsigned retry = 0; retry < 8; retry++) {
        uint64_t cap = CMN_MIN(50ull << retry, 2000ull);
        uint64_t lo = UINT64_MAX, hi = 0, sum = 0;
        for (int i = 0; i < 2000; i++) {
            uint64_t d = objstore_backoff_ms(retry, 50, 2000, &rng);
            assert_true(d <= cap);
            lo = CMN_MIN(lo, d);
            hi = CMN_MAX(hi, d);
            sum += d;
        }
        /* Full jitter: the whole [0, cap] range is used, the mean sits near cap/2. */
        assert_true(lo <= cap / 10);
        assert_true(hi >= cap - cap / 10);
        uint64_t mean = sum / 2000;
        assert_true(mean > cap * 4 / 10 && mean < cap * 6 / 10);
    }
    assert_true(objstore_backoff_ms(40, 50, 2000, &rng) <= 2000); /* no overflow for big retries */
}

/* ================= fake store ================= */

#define FAKE_MAX_LOG 64

struct fake_store {
    struct objstore base;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t thread;
    struct objstore_req *queue[256]; /* protected by lock */
    size_t q_head, q_tail;
    bool stop;
    unsigned inflight;
    /* the one object "obj" */
    unsigned char *data;
    size_t size;
    char etag[OBJSTORE_ETAG_MAX]; /* written by the fake's thread only once running */
    bool bump_etag;               /* set before a request: new version after the next GET */
    /* what it was asked, protected by lock */
    unsigned calls[OBJSTORE_OP_COUNT];
    uint64_t log_off[FAKE_MAX_LOG];
    bool log_if_match[FAKE_MAX_LOG];
    unsigned n_log;
};

/* Put @len body bytes at body position @pos: into req->buf, or scattered over req->iov. */
static void fake_body(struct objstore_req *req, size_t pos, const unsigned char *src, size_t len)
{
    if (!req->iov) {
        memcpy((char *)req->buf + pos, src, len);
        return;
    }
    for (unsigned i = 0; i < req->iovcnt && len > 0; i++) {
        size_t seg = req->iov[i].iov_len;
        if (pos >= seg) {
            pos -= seg;
            continue;
        }
        size_t k = seg - pos < len ? seg - pos : len;
        memcpy((char *)req->iov[i].iov_base + pos, src, k);
        src += k;
        len -= k;
        pos = 0;
    }
}

static void fake_answer(struct fake_store *f, struct objstore_req *req)
{
    req->attempts = 1;
    if (req->op == OBJSTORE_OP_LIST) {
        struct objstore_list_result *r = &req->list_result;
        r->entries = calloc(1, sizeof(*r->entries));
        r->entries[0].key = strdup("obj");
        r->entries[0].size = f->size;
        r->n_entries = 1;
        req->http_status = 200;
        return;
    }
    if (strcmp(req->key, "obj") != 0) {
        req->http_status = 404;
        req->result = -ENOENT;
        snprintf(req->errmsg, sizeof(req->errmsg), "GET %s: NoSuchKey (HTTP 404)", req->key);
        return;
    }
    req->info.size = f->size;
    memcpy(req->info.etag, f->etag, sizeof(f->etag));
    if (req->op != OBJSTORE_OP_GET) {
        req->http_status = 200;
        return;
    }
    if (req->if_match && strcmp(req->if_match, f->etag) != 0) {
        req->http_status = 412;
        req->result = -ESTALE;
        return;
    }
    if (req->off >= f->size) {
        req->http_status = 416;
        req->result = (req->flags & OBJSTORE_GET_EOF_OK) ? 0 : -EINVAL;
        return;
    }
    size_t n = f->size - req->off;
    if (req->len && req->len < n)
        n = req->len;
    if (n > req->buf_cap) {
        req->result = -EIO;
        return;
    }
    /* Land the body in two chunks, like a network would. */
    size_t half = n / 2;
    fake_body(req, 0, f->data + req->off, half);
    if (req->progress && half)
        req->progress(req, half);
    fake_body(req, half, f->data + req->off + half, n - half);
    if (req->progress)
        req->progress(req, n);
    req->got = n;
    req->http_status = (req->off || req->len) ? 206 : 200;
    if (f->bump_etag) {
        f->bump_etag = false;
        strcpy(f->etag, "\"v2\"");
    }
}

static void *fake_main(void *arg)
{
    struct fake_store *f = arg;
    pthread_mutex_lock(&f->lock);
    for (;;) {
        if (f->q_head == f->q_tail) {
            if (f->stop)
                break;
            pthread_cond_wait(&f->cond, &f->lock);
            continue;
        }
        struct objstore_req *req = f->queue[f->q_head++ % 256];
        pthread_mutex_unlock(&f->lock);
        fake_answer(f, req);
        req->done(req);
        pthread_mutex_lock(&f->lock);
        f->inflight--;
        pthread_cond_broadcast(&f->cond);
    }
    pthread_mutex_unlock(&f->lock);
    return NULL;
}

static int fake_submit(struct objstore *os, struct objstore_req *req)
{
    struct fake_store *f = (struct fake_store *)os;
    pthread_mutex_lock(&f->lock);
    f->calls[req->op]++;
    if (req->op == OBJSTORE_OP_GET && f->n_log < FAKE_MAX_LOG) {
        f->log_off[f->n_log] = req->off;
        f->log_if_match[f->n_log] = req->if_match != NULL;
        f->n_log++;
    }
    f->queue[f->q_tail++ % 256] = req;
    f->inflight++;
    pthread_cond_broadcast(&f->cond);
    pthread_mutex_unlock(&f->lock);
    return 0;
}

static void fake_get_stats(struct objstore *os, struct objstore_stats *st)
{
    struct fake_store *f = (struct fake_store *)os;
    pthread_mutex_lock(&f->lock);
    for (int i = 0; i < OBJSTORE_OP_COUNT; i++)
        st->requests[i] = f->calls[i];
    st->inflight = f->inflight;
    pthread_mutex_unlock(&f->lock);
}

static void fake_destroy(struct objstore *os)
{
    struct fake_store *f = (struct fake_store *)os;
    pthread_mutex_lock(&f->lock);
    f->stop = true;
    pthread_cond_broadcast(&f->cond);
    pthread_mutex_unlock(&f->lock);
    pthread_join(f->thread, NULL);
    pthread_cond_destroy(&f->cond);
    pthread_mutex_destroy(&f->lock);
    free(f->data);
    free(f);
}

static const struct objstore_ops fake_ops = {
    .version = OBJSTORE_OPS_VERSION,
    .name = "fake",
    .submit = fake_submit,
    .get_stats = fake_get_stats,
    .destroy = fake_destroy,
};

static struct fake_store *fake_create(size_t size)
{
    struct fake_store *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->base.ops = &fake_ops;
    f->size = size;
    f->data = malloc(size ? size : 1);
    for (size_t i = 0; i < size; i++)
        f->data[i] = (unsigned char)(i * 7 + i / 251);
    strcpy(f->etag, "\"v1\"");
    pthread_mutex_init(&f->lock, NULL);
    pthread_cond_init(&f->cond, NULL);
    assert_int_equal(pthread_create(&f->thread, NULL, fake_main, f), 0);
    return f;
}

/* The stack tests use: retry over fault over the fake. */
struct stack {
    struct fake_store *fake;
    struct objstore *fault;
    struct objstore *top;
};

static void stack_make(struct stack *s, size_t size, const struct objstore_fault_conf *fc,
                       unsigned max_attempts)
{
    s->fake = fake_create(size);
    assert_int_equal(objstore_fault_create(&s->fake->base, fc, &s->fault), 0);
    struct objstore_retry_conf rc = {
        .max_attempts = max_attempts, .base_delay_ms = 1, .max_delay_ms = 4};
    assert_int_equal(objstore_retry_create(s->fault, &rc, &s->top), 0);
}

static unsigned fake_calls(struct fake_store *f, enum objstore_op op)
{
    pthread_mutex_lock(&f->lock);
    unsigned n = f->calls[op];
    pthread_mutex_unlock(&f->lock);
    return n;
}

/* ================= retry through the fault wrapper ================= */

static void test_retry_503_then_success(void **state)
{
    struct objstore_fault_conf fc = {
        .kind = OBJSTORE_FAULT_HTTP_503, .every_nth = 1, .max_faults = 3};
    struct stack s;
    stack_make(&s, 10000, &fc, 5);
    unsigned char *buf = malloc(10000);
    struct objstore_object_info info;
    char err[OBJSTORE_ERRMSG_MAX];
    ssize_t n = objstore_get(s.top, "obj", 0, 0, NULL, buf, 10000, 0, &info, err, sizeof(err));
    assert_int_equal(n, 10000);
    assert_memory_equal(buf, s.fake->data, 10000);
    assert_int_equal(info.size, 10000);
    assert_string_equal(info.etag, "\"v1\"");
    assert_int_equal(fake_calls(s.fake, OBJSTORE_OP_GET), 1); /* the 3 faults never got there */

    struct objstore_stats st;
    objstore_get_stats(s.top, &st);
    assert_int_equal(st.retries, 3);
    assert_int_equal(st.faults_injected, 3);
    assert_int_equal(st.requests[OBJSTORE_OP_GET], 4);
    assert_int_equal(st.errors[OBJSTORE_OP_GET], 0);
    assert_int_equal(st.inflight, 0);

    /* The plan is spent: the next request goes straight through. */
    assert_int_equal(objstore_head(s.top, "obj", &info, err, sizeof(err)), 0);
    assert_int_equal(info.size, 10000);
    objstore_destroy(s.top);
    free(buf);
}

static void test_retry_4xx_not_retried(void **state)
{
    struct objstore_fault_conf fc = {.kind = OBJSTORE_FAULT_HTTP_403, .every_nth = 1};
    struct stack s;
    stack_make(&s, 100, &fc, 5);
    char buf[100], err[OBJSTORE_ERRMSG_MAX];
    assert_int_equal(
        objstore_get(s.top, "obj", 0, 0, NULL, buf, sizeof(buf), 0, NULL, err, sizeof(err)),
        -EACCES);
    assert_non_null(strstr(err, "AccessDenied"));
    assert_non_null(strstr(err, "HTTP 403"));
    struct objstore_stats st;
    objstore_get_stats(s.top, &st);
    assert_int_equal(st.retries, 0);
    assert_int_equal(st.errors[OBJSTORE_OP_GET], 1);

    fc.kind = OBJSTORE_FAULT_HTTP_404;
    objstore_fault_set(s.fault, &fc);
    struct objstore_object_info info;
    assert_int_equal(objstore_head(s.top, "obj", &info, err, sizeof(err)), -ENOENT);
    objstore_get_stats(s.top, &st);
    assert_int_equal(st.retries, 0);

    /* A real 404 and a 412 from below are final too. */
    objstore_fault_set(s.fault, NULL);
    assert_int_equal(objstore_head(s.top, "missing", &info, err, sizeof(err)), -ENOENT);
    assert_int_equal(
        objstore_get(s.top, "obj", 0, 10, "\"v0\"", buf, sizeof(buf), 0, NULL, err, sizeof(err)),
        -ESTALE);
    assert_int_equal(
        objstore_get(s.top, "obj", 100, 10, NULL, buf, sizeof(buf), 0, NULL, err, sizeof(err)),
        -EINVAL);
    assert_int_equal(objstore_get(s.top, "obj", 100, 10, NULL, buf, sizeof(buf),
                                  OBJSTORE_GET_EOF_OK, NULL, err, sizeof(err)),
                     0);
    objstore_get_stats(s.top, &st);
    assert_int_equal(st.retries, 0);
    assert_int_equal(fake_calls(s.fake, OBJSTORE_OP_GET), 3);
    assert_int_equal(fake_calls(s.fake, OBJSTORE_OP_HEAD), 1);
    objstore_destroy(s.top);
}

static void test_retry_max_attempts(void **state)
{
    static const struct {
        enum objstore_fault_kind kind;
        int want;
    } cases[] = {
        {OBJSTORE_FAULT_HTTP_500, -EIO},
        {OBJSTORE_FAULT_HTTP_503, -EIO},
        {OBJSTORE_FAULT_RESET, -EIO}, /* a reset is attempt-level; the caller sees EIO */
        {OBJSTORE_FAULT_TIMEOUT, -ETIMEDOUT},
    };
    for (size_t i = 0; i < CMN_ARRAY_SIZE(cases); i++) {
        struct objstore_fault_conf fc = {.kind = cases[i].kind, .every_nth = 1};
        struct stack s;
        stack_make(&s, 100, &fc, 3);
        char buf[100], err[OBJSTORE_ERRMSG_MAX];
        assert_int_equal(
            objstore_get(s.top, "obj", 0, 0, NULL, buf, sizeof(buf), 0, NULL, err, sizeof(err)),
            cases[i].want);
        assert_non_null(strstr(err, "after 3 attempts"));
        struct objstore_stats st;
        objstore_get_stats(s.top, &st);
        assert_int_equal(st.retries, 2);
        assert_int_equal(st.faults_injected, 3);
        assert_int_equal(st.requests[OBJSTORE_OP_GET], 3);
        assert_int_equal(fake_calls(s.fake, OBJSTORE_OP_GET), 0);
        objstore_destroy(s.top);
    }
}

struct progress_track {
    size_t last;
    unsigned calls;
    bool backwards;
};

static void track_progress(struct objstore_req *req, size_t valid)
{
    struct progress_track *t = req->arg;
    if (valid < t->last)
        t->backwards = true;
    t->last = valid;
    t->calls++;
}

struct async_wait {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done;
    struct progress_track prog;
};

static void async_done(struct objstore_req *req)
{
    struct async_wait *w =
        (struct async_wait *)((char *)req->arg - offsetof(struct async_wait, prog));
    pthread_mutex_lock(&w->lock);
    w->done = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

/* Submit @req with progress tracking and wait. */
static void run_tracked(struct objstore *os, struct objstore_req *req, struct async_wait *w)
{
    memset(w, 0, sizeof(*w));
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    req->progress = track_progress;
    req->done = async_done;
    req->arg = &w->prog;
    assert_int_equal(objstore_submit(os, req), 0);
    pthread_mutex_lock(&w->lock);
    while (!w->done)
        pthread_cond_wait(&w->cond, &w->lock);
    pthread_mutex_unlock(&w->lock);
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->lock);
}

static void test_retry_short_body_resumes(void **state)
{
    /* Two short bodies, then success: the result is whole and byte-exact. */
    const size_t size = 100000;
    struct objstore_fault_conf fc = {
        .kind = OBJSTORE_FAULT_SHORT_BODY, .every_nth = 1, .max_faults = 2};
    struct stack s;
    stack_make(&s, size, &fc, 5);
    unsigned char *buf = calloc(1, size);
    struct objstore_req req = {.op = OBJSTORE_OP_GET,
                               .key = "obj",
                               .off = 1000,
                               .len = 60000,
                               .buf = buf,
                               .buf_cap = size};
    struct async_wait w;
    run_tracked(s.top, &req, &w);
    assert_int_equal(req.result, 0);
    assert_int_equal(req.got, 60000);
    assert_int_equal(req.attempts, 3);
    assert_memory_equal(buf, s.fake->data + 1000, 60000);
    assert_false(w.prog.backwards);
    assert_int_equal(w.prog.last, 60000);

    /* Attempt 2 resumed at 1000 + 30000 (half of attempt 1), attempt 3 at + 15000 more,
     * each pinned to the ETag the first attempt saw. */
    pthread_mutex_lock(&s.fake->lock);
    assert_int_equal(s.fake->n_log, 3);
    assert_int_equal(s.fake->log_off[0], 1000);
    assert_false(s.fake->log_if_match[0]);
    assert_int_equal(s.fake->log_off[1], 31000);
    assert_true(s.fake->log_if_match[1]);
    assert_int_equal(s.fake->log_off[2], 46000);
    assert_true(s.fake->log_if_match[2]);
    pthread_mutex_unlock(&s.fake->lock);

    /* The object changes between attempts: the resume must not splice two versions. */
    fc.max_faults = 1;
    objstore_fault_set(s.fault, &fc);
    s.fake->bump_etag = true; /* after answering the next GET */
    struct objstore_req req2 = {.op = OBJSTORE_OP_GET, .key = "obj", .buf = buf, .buf_cap = size};
    run_tracked(s.top, &req2, &w);
    assert_int_equal(req2.result, -ESTALE);
    assert_int_equal(req2.got, 0);
    assert_int_equal(req2.attempts, 2);
    objstore_destroy(s.top);
    free(buf);
}

static void test_retry_short_body_resumes_iov(void **state)
{
    /* A scattered GET (req.iov, as the prefetcher reads a group of blocks) cut short
     * twice: each attempt resumes inside the right segment, every byte lands in place. */
    const size_t size = 100000, seg[3] = {7000, 33000, 20000};
    struct objstore_fault_conf fc = {
        .kind = OBJSTORE_FAULT_SHORT_BODY, .every_nth = 1, .max_faults = 2};
    struct stack s;
    stack_make(&s, size, &fc, 5);
    unsigned char *part[3];
    struct iovec iov[3];
    for (int i = 0; i < 3; i++) {
        part[i] = calloc(1, seg[i]);
        iov[i] = (struct iovec){.iov_base = part[i], .iov_len = seg[i]};
    }
    struct objstore_req req = {.op = OBJSTORE_OP_GET,
                               .key = "obj",
                               .off = 1000,
                               .len = 60000,
                               .iov = iov,
                               .iovcnt = 3,
                               .buf_cap = 60000};
    struct async_wait w;
    run_tracked(s.top, &req, &w);
    assert_int_equal(req.result, 0);
    assert_int_equal(req.got, 60000);
    assert_int_equal(req.attempts, 3);
    assert_memory_equal(part[0], s.fake->data + 1000, seg[0]);
    assert_memory_equal(part[1], s.fake->data + 1000 + seg[0], seg[1]);
    assert_memory_equal(part[2], s.fake->data + 1000 + seg[0] + seg[1], seg[2]);
    assert_false(w.prog.backwards);
    assert_int_equal(w.prog.last, 60000);
    pthread_mutex_lock(&s.fake->lock);
    assert_int_equal(s.fake->n_log, 3);
    assert_int_equal(s.fake->log_off[1], 31000); /* inside the second segment */
    assert_int_equal(s.fake->log_off[2], 46000);
    pthread_mutex_unlock(&s.fake->lock);

    /* Malformed: iov with buf, or a buf_cap that is not the sum of the segments. */
    struct objstore_req bad = {.op = OBJSTORE_OP_GET,
                               .key = "obj",
                               .iov = iov,
                               .iovcnt = 3,
                               .buf = part[0],
                               .buf_cap = 60000,
                               .done = async_done};
    assert_int_equal(objstore_submit(s.top, &bad), -EINVAL);
    bad.buf = NULL;
    bad.buf_cap = 59999;
    assert_int_equal(objstore_submit(s.top, &bad), -EINVAL);
    objstore_destroy(s.top);
    for (int i = 0; i < 3; i++)
        free(part[i]);
}

static void test_retry_short_body_never_partial(void **state)
{
    struct objstore_fault_conf fc = {.kind = OBJSTORE_FAULT_SHORT_BODY, .every_nth = 1};
    struct stack s;
    stack_make(&s, 4096, &fc, 4);
    unsigned char buf[4096];
    char err[OBJSTORE_ERRMSG_MAX];
    ssize_t n = objstore_get(s.top, "obj", 0, 0, NULL, buf, sizeof(buf), 0, NULL, err, sizeof(err));
    assert_int_equal(n, -EIO);
    assert_non_null(strstr(err, "short"));
    struct objstore_req req = {
        .op = OBJSTORE_OP_GET, .key = "obj", .buf = buf, .buf_cap = sizeof(buf)};
    struct async_wait w;
    run_tracked(s.top, &req, &w);
    assert_int_equal(req.result, -EIO);
    assert_int_equal(req.got, 0); /* never partial data */
    assert_int_equal(req.attempts, 4);

    /* Without the retry layer the fault alone shows the raw short body: -EIO, got < size. */
    struct objstore_req raw = {
        .op = OBJSTORE_OP_GET, .key = "obj", .buf = buf, .buf_cap = sizeof(buf)};
    run_tracked(s.fault, &raw, &w);
    assert_int_equal(raw.result, -EIO);
    assert_int_equal(raw.http_status, 200);
    assert_true(raw.got < sizeof(buf));
    objstore_destroy(s.top);
}

static void test_retry_list_and_backoff_time(void **state)
{
    struct objstore_fault_conf fc = {
        .kind = OBJSTORE_FAULT_HTTP_503, .every_nth = 1, .max_faults = 4};
    struct fake_store *fake = fake_create(10);
    struct objstore *fault, *top;
    assert_int_equal(objstore_fault_create(&fake->base, &fc, &fault), 0);
    struct objstore_retry_conf rc = {.max_attempts = 5, .base_delay_ms = 20, .max_delay_ms = 40};
    assert_int_equal(objstore_retry_create(fault, &rc, &top), 0);
    struct objstore_list_result res;
    char err[OBJSTORE_ERRMSG_MAX];
    uint64_t t0 = cmn_now_ms();
    assert_int_equal(objstore_list(top, NULL, &res, err, sizeof(err)), 0);
    uint64_t dt = cmn_now_ms() - t0;
    /* Four waits of at most 20, 40, 40, 40 ms. */
    assert_true(dt <= 140 + 200);
    assert_int_equal(res.n_entries, 1);
    assert_string_equal(res.entries[0].key, "obj");
    objstore_list_result_free(&res);
    objstore_destroy(top);
}

static void test_fault_probability(void **state)
{
    struct objstore_fault_conf fc = {
        .kind = OBJSTORE_FAULT_HTTP_404, .probability = 0.5, .seed = 7};
    struct fake_store *fake = fake_create(10);
    struct objstore *fault;
    assert_int_equal(objstore_fault_create(&fake->base, &fc, &fault), 0);
    int enoent = 0;
    for (int i = 0; i < 200; i++) {
        struct objstore_object_info info;
        int r = objstore_head(fault, "obj", &info, NULL, 0);
        assert_true(r == 0 || r == -ENOENT);
        enoent += r == -ENOENT;
    }
    assert_true(enoent > 60 && enoent < 140);
    struct objstore_stats st;
    objstore_get_stats(fault, &st);
    assert_int_equal(st.faults_injected, (uint64_t)enoent);
    assert_int_equal(fake_calls(fake, OBJSTORE_OP_HEAD), 200 - enoent);

    fc.probability = 0;
    objstore_fault_set(fault, &fc);
    struct objstore_object_info info;
    for (int i = 0; i < 20; i++)
        assert_int_equal(objstore_head(fault, "obj", &info, NULL, 0), 0);
    objstore_destroy(fault);
}

static void never_called(struct objstore_req *req)
{
    fail_msg("done called for a rejected request");
}

static void test_submit_checks(void **state)
{
    struct fake_store *fake = fake_create(10);
    struct objstore *top;
    assert_int_equal(objstore_retry_create(&fake->base, NULL, &top), 0);
    char buf[16];
    struct objstore_req req = {.op = OBJSTORE_OP_GET,
                               .key = "obj",
                               .buf = buf,
                               .buf_cap = 8,
                               .len = 16,
                               .done = never_called};
    assert_int_equal(objstore_submit(top, &req), -EINVAL); /* len > buf_cap */
    req.len = 0;
    req.key = "";
    assert_int_equal(objstore_submit(top, &req), -EINVAL);
    req.key = "obj";
    req.done = NULL;
    assert_int_equal(objstore_submit(top, &req), -EINVAL);
    assert_int_equal(objstore_submit(NULL, &req), -EINVAL);
    req.op = OBJSTORE_OP_COUNT;
    req.done = never_called;
    assert_int_equal(objstore_submit(top, &req), -EINVAL);
    objstore_destroy(NULL);
    objstore_list_result_free(NULL);
    struct objstore_stats st;
    objstore_get_stats(NULL, &st);
    assert_int_equal(st.inflight, 0);
    objstore_destroy(top);
}

/* ================= the stats layer ================= */

struct stats_wait {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done;
    int progress_calls; /* progress saw the caller's own arg */
    void *seen_arg;
};

static void stats_progress(struct objstore_req *req, size_t valid)
{
    struct stats_wait *w = req->arg; /* the caller's cookie, not the layer's */
    assert_ptr_equal(w, w->seen_arg);
    w->progress_calls++;
}

static void stats_done(struct objstore_req *req)
{
    struct stats_wait *w = req->arg;
    assert_null(req->stats_layer); /* the request is the caller's again */
    pthread_mutex_lock(&w->lock);
    w->done = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

/* Counts by op and status class after retries, errors, latency; arg and progress stay the
 * caller's; a submit the inner store rejects leaves the request as it was. */
static void test_stats_layer(void **state)
{
    struct objstore_fault_conf fc = {
        .kind = OBJSTORE_FAULT_HTTP_503, .every_nth = 1, .max_faults = 2};
    struct stack s;
    struct objstore *top;
    struct objstore_object_info info;
    struct objstore_stats st;
    char buf[1000];

    stack_make(&s, 1000, &fc, 5);
    assert_int_equal(objstore_stats_create(s.top, &top), 0);
    /* a GET that takes three attempts: one request, 2xx, timed once */
    struct stats_wait w = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    w.seen_arg = &w;
    struct objstore_req req = {.op = OBJSTORE_OP_GET,
                               .key = "obj",
                               .buf = buf,
                               .buf_cap = sizeof(buf),
                               .progress = stats_progress,
                               .done = stats_done,
                               .arg = &w};
    assert_int_equal(objstore_submit(top, &req), 0);
    pthread_mutex_lock(&w.lock);
    while (!w.done)
        pthread_cond_wait(&w.cond, &w.lock);
    pthread_mutex_unlock(&w.lock);
    assert_int_equal(req.result, 0);
    assert_true(w.progress_calls >= 1);
    assert_true(req.done == stats_done);
    /* a missing key: 4xx and an error; two HEADs */
    assert_int_equal(objstore_head(top, "nope", &info, NULL, 0), -ENOENT);
    assert_int_equal(objstore_head(top, "obj", &info, NULL, 0), 0);
    objstore_get_stats(top, &st);
    assert_int_equal(st.done[OBJSTORE_OP_GET][OBJSTORE_STATUS_2XX], 1);
    assert_int_equal(st.done[OBJSTORE_OP_GET][OBJSTORE_STATUS_5XX], 0);
    assert_int_equal(st.done_errors[OBJSTORE_OP_GET], 0);
    assert_int_equal(st.done[OBJSTORE_OP_HEAD][OBJSTORE_STATUS_4XX], 1);
    assert_int_equal(st.done[OBJSTORE_OP_HEAD][OBJSTORE_STATUS_2XX], 1);
    assert_int_equal(st.done_errors[OBJSTORE_OP_HEAD], 1);
    assert_int_equal(st.latency[OBJSTORE_OP_GET].count, 1);
    assert_int_equal(st.latency[OBJSTORE_OP_HEAD].count, 2);
    uint64_t sum = 0;
    for (int i = 0; i <= CMN_HIST_NB; i++)
        sum += st.latency[OBJSTORE_OP_HEAD].b[i];
    assert_int_equal(sum, 2);
    assert_true(st.latency[OBJSTORE_OP_GET].sum_ns > 0);
    /* the inner layers' counters come through */
    assert_int_equal(st.retries, 2);
    /* rejected by the inner store: no done, nothing counted, the request untouched */
    struct objstore_req bad = {
        .op = OBJSTORE_OP_GET, .key = "", .buf = buf, .buf_cap = 8, .done = never_called};
    assert_int_equal(objstore_submit(top, &bad), -EINVAL);
    assert_true(bad.done == never_called);
    assert_null(bad.stats_layer);
    objstore_get_stats(top, &st);
    assert_int_equal(st.done[OBJSTORE_OP_GET][OBJSTORE_STATUS_2XX] +
                         st.done[OBJSTORE_OP_GET][OBJSTORE_STATUS_NONE],
                     1);
    assert_string_equal(objstore_op_label(OBJSTORE_OP_LIST), "list");
    assert_string_equal(objstore_status_label(OBJSTORE_STATUS_NONE), "none");
    objstore_destroy(top);
}

static void test_s3_create_args(void **state)
{
    /* Configuration errors are caught at creation, before any request. */
    struct objstore *os = NULL;
    struct objstore_s3_conf conf = {.bucket = "b", .anonymous = true, .endpoint = "ftp://h"};
    assert_int_equal(objstore_s3_create(&conf, &os), -EINVAL);
    conf.endpoint = "http://h:9000/some/path";
    assert_int_equal(objstore_s3_create(&conf, &os), -EINVAL);
    conf.endpoint = "not a url";
    assert_int_equal(objstore_s3_create(&conf, &os), -EINVAL);
    conf.endpoint = "http://h:9000/";
    conf.bucket = "";
    assert_int_equal(objstore_s3_create(&conf, &os), -EINVAL);
    conf.bucket = "a/b";
    assert_int_equal(objstore_s3_create(&conf, &os), -EINVAL);
    assert_null(os);
    assert_int_equal(objstore_s3_create(NULL, &os), -EINVAL);

    /* Good ones: nothing is contacted until a request is sent. */
    conf.bucket = "b";
    assert_int_equal(objstore_s3_create(&conf, &os), 0);
    struct objstore_stats st;
    objstore_get_stats(os, &st);
    assert_int_equal(st.requests[OBJSTORE_OP_GET], 0);
    objstore_destroy(os);
    setenv("AWS_REGION", "eu-west-3", 1);
    conf.endpoint = NULL; /* https://b.s3.eu-west-3.amazonaws.com */
    assert_int_equal(objstore_s3_create(&conf, &os), 0);
    objstore_destroy(os);
    unsetenv("AWS_REGION");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_xml_list_normal),
        cmocka_unit_test(test_xml_list_prefixes),
        cmocka_unit_test(test_xml_list_malformed),
        cmocka_unit_test(test_xml_list_generated_1000),
        cmocka_unit_test(test_xml_error),
        cmocka_unit_test(test_errmap_table),
        cmocka_unit_test(test_backoff_bounds),
        cmocka_unit_test(test_retry_503_then_success),
        cmocka_unit_test(test_retry_4xx_not_retried),
        cmocka_unit_test(test_retry_max_attempts),
        cmocka_unit_test(test_retry_short_body_resumes),
        cmocka_unit_test(test_retry_short_body_resumes_iov),
        cmocka_unit_test(test_retry_short_body_never_partial),
        cmocka_unit_test(test_retry_list_and_backoff_time),
        cmocka_unit_test(test_fault_probability),
        cmocka_unit_test(test_submit_checks),
        cmocka_unit_test(test_s3_create_args),
        cmocka_unit_test(test_stats_layer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
