/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_objstore_s3.c: the S3 backend (and the retry layer over it) against radosgw through
 * the shaping proxy: PUT/HEAD/GET/LIST, ranges, If-Match, paging, odd keys, auth and
 * connection failures, and proxy-injected faults that must be retried without corruption.
 * Exits 77 (skip) when no test S3 server is described by $TIERFS_S3_ENV.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/util.h"
#include "objstore/objstore.h"
#include "tests/integration/s3env.h"

static struct s3env env;

/* A store on @endpoint (NULL = the proxy) with @secret (NULL = the right one). */
static struct objstore *store_new(const char *endpoint, const char *secret, bool retry)
{
    struct objstore_creds *creds;
    assert_int_equal(
        objstore_creds_static(env.access_key, secret ? secret : env.secret_key, NULL, &creds), 0);
    struct objstore_s3_conf conf = {
        .bucket = env.bucket,
        .endpoint = endpoint ? endpoint : env.endpoint,
        .region = env.region,
        .path_style = true,
        .creds = creds,
        .connect_timeout_ms = 1000,
        .max_connections = 32,
    };
    struct objstore *os;
    assert_int_equal(objstore_s3_create(&conf, &os), 0);
    if (retry) {
        struct objstore_retry_conf rc = {
            .max_attempts = 5, .base_delay_ms = 10, .max_delay_ms = 100};
        assert_int_equal(objstore_retry_create(os, &rc, &os), 0);
    }
    return os;
}

static void fill_pattern(unsigned char *p, size_t n, unsigned seed)
{
    uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(cmn_rand64(&s) >> 56);
}

static struct s3env_counters counters(void)
{
    struct s3env_counters c;
    assert_int_equal(s3env_counters(&env, &c), 0);
    return c;
}

static int setup(void **state)
{
    s3env_proxy_reset(&env);
    s3env_counters_reset(&env);
    return 0;
}

/* ---- basic object operations ---- */

static void test_put_head_get_ranges(void **state)
{
    struct objstore *os = store_new(NULL, NULL, false);
    const size_t size = 1 << 20;
    unsigned char *data = malloc(size), *buf = malloc(size + 16);
    fill_pattern(data, size, 1);
    struct objstore_object_info put_info, info;
    char err[OBJSTORE_ERRMSG_MAX];
    assert_int_equal(objstore_put(os, "basic/obj", data, size, &put_info, err, sizeof(err)), 0);
    assert_true(put_info.etag[0] == '"');

    assert_int_equal(objstore_head(os, "basic/obj", &info, err, sizeof(err)), 0);
    assert_int_equal(info.size, size);
    assert_string_equal(info.etag, put_info.etag);
    assert_true(info.mtime_sec > 1600000000);

    s3env_counters_reset(&env);
    memset(buf, 0, size);
    assert_int_equal(
        objstore_get(os, "basic/obj", 0, 0, NULL, buf, size + 16, 0, &info, err, sizeof(err)),
        (ssize_t)size);
    assert_memory_equal(buf, data, size);
    assert_int_equal(info.size, size);
    assert_string_equal(info.etag, put_info.etag);
    struct s3env_counters c = counters();
    assert_int_equal(c.get, 1); /* one request per get, no retries, no HEAD first */
    assert_int_equal(c.head, 0);

    /* first byte, last byte, a middle range */
    assert_int_equal(objstore_get(os, "basic/obj", 0, 1, NULL, buf, 1, 0, &info, err, sizeof(err)),
                     1);
    assert_int_equal(buf[0], data[0]);
    assert_int_equal(info.size, size); /* from Content-Range */
    assert_int_equal(
        objstore_get(os, "basic/obj", size - 1, 1, NULL, buf, 1, 0, &info, err, sizeof(err)), 1);
    assert_int_equal(buf[0], data[size - 1]);
    assert_int_equal(
        objstore_get(os, "basic/obj", 12345, 65536, NULL, buf, 65536, 0, NULL, err, sizeof(err)),
        65536);
    assert_memory_equal(buf, data + 12345, 65536);
    /* a range running past the end gets what is there */
    assert_int_equal(
        objstore_get(os, "basic/obj", size - 10, 100, NULL, buf, 100, 0, NULL, err, sizeof(err)),
        10);
    assert_memory_equal(buf, data + size - 10, 10);
    /* open-ended from an offset */
    assert_int_equal(
        objstore_get(os, "basic/obj", size - 5000, 0, NULL, buf, size, 0, NULL, err, sizeof(err)),
        5000);
    assert_memory_equal(buf, data + size - 5000, 5000);
    /* a range wholly past the end */
    assert_int_equal(
        objstore_get(os, "basic/obj", size, 10, NULL, buf, 10, 0, NULL, err, sizeof(err)), -EINVAL);
    assert_int_equal(objstore_get(os, "basic/obj", size + 100, 10, NULL, buf, 10,
                                  OBJSTORE_GET_EOF_OK, &info, err, sizeof(err)),
                     0);
    assert_true(info.size == 0 || info.size == size); /* radosgw sends no size with a 416 */
    /* a buffer too small for the whole object: an error, not a partial read */
    assert_int_equal(
        objstore_get(os, "basic/obj", 0, 0, NULL, buf, 1000, 0, NULL, err, sizeof(err)), -EIO);
    assert_non_null(strstr(err, "longer than the buffer"));

    /* empty object */
    assert_int_equal(objstore_put(os, "basic/empty", "", 0, NULL, err, sizeof(err)), 0);
    assert_int_equal(objstore_head(os, "basic/empty", &info, err, sizeof(err)), 0);
    assert_int_equal(info.size, 0);
    assert_int_equal(
        objstore_get(os, "basic/empty", 0, 0, NULL, buf, 10, 0, &info, err, sizeof(err)), 0);
    assert_int_equal(info.size, 0);

    /* missing keys */
    assert_int_equal(objstore_head(os, "basic/missing", &info, err, sizeof(err)), -ENOENT);
    assert_int_equal(
        objstore_get(os, "basic/missing", 0, 0, NULL, buf, 10, 0, NULL, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, "NoSuchKey"));
    assert_non_null(strstr(err, "basic/missing"));

    struct objstore_stats st;
    objstore_get_stats(os, &st);
    assert_true(st.ranged_gets >= 6);
    assert_true(st.status_2xx > 0 && st.status_4xx >= 3);
    assert_int_equal(st.inflight, 0);
    objstore_destroy(os);
    free(data);
    free(buf);
}

static void test_if_match(void **state)
{
    struct objstore *os = store_new(NULL, NULL, true);
    unsigned char data[5000], buf[5000];
    fill_pattern(data, sizeof(data), 2);
    struct objstore_object_info info;
    char err[OBJSTORE_ERRMSG_MAX];
    assert_int_equal(objstore_put(os, "ifmatch/obj", data, sizeof(data), &info, err, sizeof(err)),
                     0);
    assert_int_equal(
        objstore_get(os, "ifmatch/obj", 100, 200, info.etag, buf, 200, 0, NULL, err, sizeof(err)),
        200);
    assert_memory_equal(buf, data + 100, 200);
    assert_int_equal(objstore_get(os, "ifmatch/obj", 100, 200,
                                  "\"0123456789abcdef0123456789abcdef\"", buf, 200, 0, NULL, err,
                                  sizeof(err)),
                     -ESTALE);
    assert_non_null(strstr(err, "412"));
    /* Overwritten: the old ETag no longer matches. */
    data[0] ^= 0xff;
    struct objstore_object_info info2;
    assert_int_equal(objstore_put(os, "ifmatch/obj", data, sizeof(data), &info2, err, sizeof(err)),
                     0);
    assert_string_not_equal(info.etag, info2.etag);
    assert_int_equal(
        objstore_get(os, "ifmatch/obj", 0, 10, info.etag, buf, 10, 0, NULL, err, sizeof(err)),
        -ESTALE);
    objstore_destroy(os);
}

/* ---- async PUTs and paged listing ---- */

struct put_window {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    unsigned inflight;
    unsigned failed;
};

static void put_done(struct objstore_req *req)
{
    struct put_window *w = req->arg;
    pthread_mutex_lock(&w->lock);
    if (req->result < 0)
        w->failed++;
    w->inflight--;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

/* PUT @n small objects named by @fmt with up to @window in flight. */
static void put_many(struct objstore *os, const char *fmt, unsigned n, unsigned window)
{
    struct put_window w = {.inflight = 0};
    pthread_mutex_init(&w.lock, NULL);
    pthread_cond_init(&w.cond, NULL);
    struct objstore_req *reqs = calloc(n, sizeof(*reqs));
    char(*keys)[64] = calloc(n, sizeof(*keys));
    for (unsigned i = 0; i < n; i++) {
        snprintf(keys[i], sizeof(keys[i]), fmt, i);
        pthread_mutex_lock(&w.lock);
        while (w.inflight >= window)
            pthread_cond_wait(&w.cond, &w.lock);
        w.inflight++;
        pthread_mutex_unlock(&w.lock);
        reqs[i] = (struct objstore_req){.op = OBJSTORE_OP_PUT,
                                        .key = keys[i],
                                        .buf = keys[i],
                                        .len = strlen(keys[i]),
                                        .done = put_done,
                                        .arg = &w};
        assert_int_equal(objstore_submit(os, &reqs[i]), 0);
    }
    pthread_mutex_lock(&w.lock);
    while (w.inflight)
        pthread_cond_wait(&w.cond, &w.lock);
    pthread_mutex_unlock(&w.lock);
    assert_int_equal(w.failed, 0);
    free(reqs);
    free(keys);
}

static void test_list_2500_paged(void **state)
{
    struct objstore *os = store_new(NULL, NULL, true);
    put_many(os, "list/k%05u", 2500, 64);
    struct s3env_counters c = counters();
    assert_int_equal(c.put, 2500);
    assert_true(c.max_concurrent > 8);   /* really asynchronous ... */
    assert_true(c.max_concurrent <= 32); /* ... within max_connections */

    s3env_counters_reset(&env);
    char token[1024] = "";
    unsigned seen = 0, pages = 0;
    char err[OBJSTORE_ERRMSG_MAX];
    for (;;) {
        struct objstore_list_args a = {
            .prefix = "list/", .max_keys = 1000, .continuation_token = token[0] ? token : NULL};
        struct objstore_list_result r;
        assert_int_equal(objstore_list(os, &a, &r, err, sizeof(err)), 0);
        pages++;
        assert_int_equal(r.n_entries, pages < 3 ? 1000 : 500);
        for (size_t i = 0; i < r.n_entries; i++) {
            char want[32];
            snprintf(want, sizeof(want), "list/k%05u", seen);
            assert_string_equal(r.entries[i].key, want);
            assert_int_equal(r.entries[i].size, strlen(want));
            assert_true(r.entries[i].etag[0] == '"');
            assert_true(r.entries[i].mtime_sec > 1600000000);
            seen++;
        }
        bool more = r.truncated;
        if (more)
            snprintf(token, sizeof(token), "%s", r.next_token);
        objstore_list_result_free(&r);
        if (!more)
            break;
    }
    assert_int_equal(seen, 2500);
    assert_int_equal(pages, 3);
    assert_int_equal(counters().list, 3);

    /* start-after and a delimiter listing */
    struct objstore_list_args a = {.prefix = "list/", .start_after = "list/k02497"};
    struct objstore_list_result r;
    assert_int_equal(objstore_list(os, &a, &r, err, sizeof(err)), 0);
    assert_int_equal(r.n_entries, 2);
    assert_string_equal(r.entries[0].key, "list/k02498");
    objstore_list_result_free(&r);
    struct objstore_list_args d = {.delimiter = "/"};
    assert_int_equal(objstore_list(os, &d, &r, err, sizeof(err)), 0);
    bool found = false;
    for (size_t i = 0; i < r.n_prefixes; i++)
        found |= strcmp(r.prefixes[i], "list/") == 0;
    assert_true(found);
    for (size_t i = 0; i < r.n_entries; i++)
        assert_null(strchr(r.entries[i].key, '/'));
    objstore_list_result_free(&r);
    objstore_destroy(os);
}

/*
 * Virtual-hosted addressing (the AWS default): the bucket goes into the Host name.
 * radosgw is started with "rgw dns name = localhost" and curl resolves *.localhost to
 * loopback, so http://localhost:PORT becomes http://BUCKET.localhost:PORT/KEY.
 */
static void test_virtual_hosted(void **state)
{
    const char *port = strrchr(env.endpoint, ':');
    assert_non_null(port);
    char endpoint[128];
    snprintf(endpoint, sizeof(endpoint), "http://localhost%s", port);
    struct objstore_creds *creds;
    assert_int_equal(objstore_creds_static(env.access_key, env.secret_key, NULL, &creds), 0);
    struct objstore_s3_conf conf = {
        .bucket = env.bucket,
        .endpoint = endpoint,
        .region = env.region,
        .path_style = false,
        .creds = creds,
        .connect_timeout_ms = 1000,
    };
    struct objstore *os;
    assert_int_equal(objstore_s3_create(&conf, &os), 0);
    char err[OBJSTORE_ERRMSG_MAX], buf[64];
    const char *key = "vhost/dir/obj with space";
    assert_int_equal(objstore_put(os, key, "virtual", 7, NULL, err, sizeof(err)), 0);
    assert_int_equal(objstore_get(os, key, 0, 0, NULL, buf, sizeof(buf), 0, NULL, err, sizeof(err)),
                     7);
    assert_memory_equal(buf, "virtual", 7);
    struct objstore_list_args la = {.prefix = "vhost/", .delimiter = "/"};
    struct objstore_list_result res;
    assert_int_equal(objstore_list(os, &la, &res, err, sizeof(err)), 0);
    assert_int_equal(res.n_prefixes, 1);
    assert_string_equal(res.prefixes[0], "vhost/dir/");
    objstore_list_result_free(&res);
    struct s3env_counters c = counters();
    assert_int_equal(c.put, 1);
    assert_int_equal(c.get, 1);
    assert_int_equal(c.list, 1);
    objstore_destroy(os);
}

static void test_special_keys(void **state)
{
    static const char *const keys[] = {
        "special/a b/with space",
        "special/plus+sign",
        "special/per%cent%20",
        "special/eq=and&amp",
        "special/\xc3\xbc"
        "n\xc3\xaf"
        "c\xc3\xb6"
        "d\xc3\xa9 \xe2\x9c\x93",
        "special/tilde~dot.-_",
        "special/q?mark#hash",
        "special/a//double/./dot/../x",
        "special/star*paren()'!",
        "special/colon:semi;,$@",
    };
    const size_t n = CMN_ARRAY_SIZE(keys);
    struct objstore *os = store_new(NULL, NULL, true);
    char err[OBJSTORE_ERRMSG_MAX], buf[256];
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(
            objstore_put(os, keys[i], keys[i], strlen(keys[i]), NULL, err, sizeof(err)), 0);
        struct objstore_object_info info;
        assert_int_equal(objstore_head(os, keys[i], &info, err, sizeof(err)), 0);
        assert_int_equal(info.size, strlen(keys[i]));
        ssize_t got =
            objstore_get(os, keys[i], 0, 0, NULL, buf, sizeof(buf), 0, NULL, err, sizeof(err));
        assert_int_equal(got, (ssize_t)strlen(keys[i]));
        assert_memory_equal(buf, keys[i], (size_t)got);
    }
    struct objstore_list_args a = {.prefix = "special/"};
    struct objstore_list_result r;
    assert_int_equal(objstore_list(os, &a, &r, err, sizeof(err)), 0);
    assert_int_equal(r.n_entries, n);
    for (size_t i = 0; i < n; i++) {
        bool found = false;
        for (size_t j = 0; j < r.n_entries; j++)
            found |= strcmp(r.entries[j].key, keys[i]) == 0;
        if (!found)
            fail_msg("key '%s' not listed", keys[i]);
    }
    objstore_list_result_free(&r);
    /* The prefix and delimiter are encoded too. */
    struct objstore_list_args p = {.prefix = "special/a b/", .delimiter = "/"};
    assert_int_equal(objstore_list(os, &p, &r, err, sizeof(err)), 0);
    assert_int_equal(r.n_entries, 1);
    assert_string_equal(r.entries[0].key, keys[0]);
    objstore_list_result_free(&r);
    objstore_destroy(os);
}

/* ---- failures ---- */

static void test_wrong_secret(void **state)
{
    struct objstore *os = store_new(NULL, "not-the-secret", true);
    char err[OBJSTORE_ERRMSG_MAX], buf[16];
    s3env_counters_reset(&env);
    assert_int_equal(
        objstore_get(os, "basic/obj", 0, 10, NULL, buf, sizeof(buf), 0, NULL, err, sizeof(err)),
        -EACCES);
    assert_non_null(strstr(err, "SignatureDoesNotMatch"));
    assert_non_null(strstr(err, "HTTP 403"));
    assert_non_null(strstr(err, env.bucket));
    assert_int_equal(counters().get, 1); /* a 403 is never retried */
    struct objstore_list_result r;
    assert_int_equal(objstore_list(os, NULL, &r, err, sizeof(err)), -EACCES);
    objstore_destroy(os);
}

static void test_server_down(void **state)
{
    /* A port that nothing listens on: bind one, note it, close it. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    close(fd);
    char ep[64];
    snprintf(ep, sizeof(ep), "http://127.0.0.1:%u", ntohs(sa.sin_port));

    for (int retry = 0; retry < 2; retry++) {
        struct objstore *os = store_new(ep, NULL, retry);
        char err[OBJSTORE_ERRMSG_MAX], buf[16];
        uint64_t t0 = cmn_now_ms();
        assert_int_equal(
            objstore_get(os, "x", 0, 10, NULL, buf, sizeof(buf), 0, NULL, err, sizeof(err)),
            -ECONNREFUSED);
        assert_true(cmn_now_ms() - t0 < 1000);
        assert_non_null(strstr(err, "GET"));
        objstore_destroy(os);
    }

    /* The proxy's "down" knob: refused, then back. */
    struct objstore *os = store_new(NULL, NULL, true);
    struct objstore_object_info info;
    char err[OBJSTORE_ERRMSG_MAX];
    assert_int_equal(s3env_proxy_config(&env, "{\"down\":true}"), 0);
    assert_int_equal(objstore_head(os, "basic/obj", &info, err, sizeof(err)), -ECONNREFUSED);
    assert_int_equal(s3env_proxy_config(&env, "{\"down\":false}"), 0);
    assert_int_equal(objstore_head(os, "basic/obj", &info, err, sizeof(err)), 0);
    objstore_destroy(os);
}

/* PUT a 4 MiB object for the fault tests (directly, unaffected by knobs). @return data. */
static unsigned char *fault_object(struct objstore *os, size_t size, const char *key)
{
    unsigned char *data = malloc(size);
    fill_pattern(data, size, 3);
    char err[OBJSTORE_ERRMSG_MAX];
    assert_int_equal(objstore_put(os, key, data, size, NULL, err, sizeof(err)), 0);
    return data;
}

static void test_proxy_503_retried(void **state)
{
    struct objstore *os = store_new(NULL, NULL, true);
    const size_t size = 1 << 20;
    unsigned char *data = fault_object(os, size, "fault/obj503"), *buf = malloc(size);
    assert_int_equal(s3env_proxy_config(&env,
                                        "{\"fault\":{\"kind\":\"503\",\"every_nth\":1,\"count\":3,"
                                        "\"match\":\"GET\"}}"),
                     0);
    s3env_counters_reset(&env);
    char err[OBJSTORE_ERRMSG_MAX];
    assert_int_equal(
        objstore_get(os, "fault/obj503", 0, 0, NULL, buf, size, 0, NULL, err, sizeof(err)),
        (ssize_t)size);
    assert_memory_equal(buf, data, size);
    struct s3env_counters c = counters();
    assert_int_equal(c.faults, 3);
    assert_int_equal(c.get, 4);
    struct objstore_stats st;
    objstore_get_stats(os, &st);
    assert_int_equal(st.retries, 3);
    assert_int_equal(st.status_5xx, 3);

    /* Always 503: gives up after max_attempts with EIO and the S3 code in the message. */
    assert_int_equal(s3env_proxy_config(&env, "{\"fault\":{\"kind\":\"503\",\"match\":\"GET\"}}"),
                     0);
    s3env_counters_reset(&env);
    assert_int_equal(
        objstore_get(os, "fault/obj503", 0, 0, NULL, buf, size, 0, NULL, err, sizeof(err)), -EIO);
    assert_non_null(strstr(err, "SlowDown"));
    assert_int_equal(counters().get, 5);
    objstore_destroy(os);
    free(data);
    free(buf);
}

static void check_fault_kind(const char *kind)
{
    struct objstore *os = store_new(NULL, NULL, true);
    const size_t size = 4 << 20;
    char key[64], cfg[256], err[OBJSTORE_ERRMSG_MAX];
    snprintf(key, sizeof(key), "fault/obj-%s", kind);
    unsigned char *data = fault_object(os, size, key), *buf = malloc(size);
    snprintf(cfg, sizeof(cfg),
             "{\"fault\":{\"kind\":\"%s\",\"every_nth\":1,\"count\":2,\"match\":\"GET\"}}", kind);
    assert_int_equal(s3env_proxy_config(&env, cfg), 0);
    s3env_counters_reset(&env);
    memset(buf, 0, size);
    assert_int_equal(objstore_get(os, key, 0, 0, NULL, buf, size, 0, NULL, err, sizeof(err)),
                     (ssize_t)size);
    assert_memory_equal(buf, data, size); /* never corrupted */
    struct s3env_counters c = counters();
    assert_int_equal(c.faults, 2);
    assert_int_equal(c.get, 3);
    /* Attempts 2 and 3 resumed where the cut happened (Range + If-Match). */
    assert_int_equal(c.ranged_get, 2);

    /* Every attempt cut: an error, never the partial body. */
    snprintf(cfg, sizeof(cfg),
             "{\"fault\":{\"kind\":\"%s\",\"match\":\"GET\",\"after_bytes\":1000}}", kind);
    assert_int_equal(s3env_proxy_config(&env, cfg), 0);
    struct objstore_object_info info;
    ssize_t n = objstore_get(os, key, 0, 0, NULL, buf, size, 0, &info, err, sizeof(err));
    assert_int_equal(n, -EIO);
    objstore_destroy(os);
    free(data);
    free(buf);
}

static void test_proxy_reset_retried(void **state)
{
    check_fault_kind("reset");
}

static void test_proxy_short_retried(void **state)
{
    check_fault_kind("short");
}

/* A store on the proxy with these timeouts and 3 attempts. */
static struct objstore *timeout_store(unsigned request_timeout_ms, unsigned stall_timeout_ms)
{
    struct objstore_creds *creds;
    assert_int_equal(objstore_creds_static(env.access_key, env.secret_key, NULL, &creds), 0);
    struct objstore_s3_conf conf = {.bucket = env.bucket,
                                    .endpoint = env.endpoint,
                                    .region = env.region,
                                    .path_style = true,
                                    .creds = creds,
                                    .request_timeout_ms = request_timeout_ms,
                                    .stall_timeout_ms = stall_timeout_ms};
    struct objstore *os;
    assert_int_equal(objstore_s3_create(&conf, &os), 0);
    struct objstore_retry_conf rc = {.max_attempts = 3, .base_delay_ms = 10};
    assert_int_equal(objstore_retry_create(os, &rc, &os), 0);
    return os;
}

static void test_proxy_stall_timeout(void **state)
{
    struct objstore *os = timeout_store(700, 0);
    const size_t size = 1 << 20;
    unsigned char *data = fault_object(os, size, "fault/stall"), *buf = malloc(size);
    assert_int_equal(
        s3env_proxy_config(&env, "{\"fault\":{\"kind\":\"stall\",\"stall_ms\":3000,\"count\":1,"
                                 "\"match\":\"GET\"}}"),
        0);
    char err[OBJSTORE_ERRMSG_MAX];
    uint64_t t0 = cmn_now_ms();
    assert_int_equal(
        objstore_get(os, "fault/stall", 0, 0, NULL, buf, size, 0, NULL, err, sizeof(err)),
        (ssize_t)size);
    assert_true(cmn_now_ms() - t0 < 2500); /* the stalled attempt was cut by the timeout */
    assert_memory_equal(buf, data, size);
    struct objstore_stats st;
    objstore_get_stats(os, &st);
    assert_int_equal(st.retries, 1);
    objstore_destroy(os);
    free(data);
    free(buf);
}

/* stall_timeout_ms: a body that stops is cut after it (and resumed by the retry layer);
 * a slow body that keeps moving is not, however long it takes. */
static void test_proxy_stall_check(void **state)
{
    struct objstore *os = timeout_store(0, 500);
    const size_t size = 256 << 10;
    unsigned char *data = fault_object(os, size, "fault/stall-check"), *buf = malloc(size);
    char err[OBJSTORE_ERRMSG_MAX];
    struct objstore_stats st;

    assert_int_equal(
        s3env_proxy_config(&env, "{\"fault\":{\"kind\":\"stall\",\"stall_ms\":5000,\"count\":1,"
                                 "\"match\":\"GET\"}}"),
        0);
    s3env_counters_reset(&env);
    uint64_t t0 = cmn_now_ms();
    assert_int_equal(
        objstore_get(os, "fault/stall-check", 0, 0, NULL, buf, size, 0, NULL, err, sizeof(err)),
        (ssize_t)size);
    uint64_t ms = cmn_now_ms() - t0;
    assert_true(ms >= 450 && ms < 2000); /* 500 ms without a byte, seen within 125 ms */
    assert_memory_equal(buf, data, size);
    struct s3env_counters c = counters();
    assert_int_equal(c.faults, 1);
    assert_int_equal(c.ranged_get, 1); /* the second attempt resumed where the stall began */
    objstore_get_stats(os, &st);
    assert_int_equal(st.retries, 1);

    /* 100 KB/s: ~2.6 s for the body, far over the stall timeout, but never 500 ms idle */
    assert_int_equal(s3env_proxy_config(&env, "{\"fault\":null,\"bandwidth\":100000}"), 0);
    memset(buf, 0, size);
    t0 = cmn_now_ms();
    assert_int_equal(
        objstore_get(os, "fault/stall-check", 0, 0, NULL, buf, size, 0, NULL, err, sizeof(err)),
        (ssize_t)size);
    assert_true(cmn_now_ms() - t0 >= 2000);
    assert_memory_equal(buf, data, size);
    objstore_get_stats(os, &st);
    assert_int_equal(st.retries, 1); /* no new retry */
    objstore_destroy(os);
    free(data);
    free(buf);
}

int main(void)
{
    if (s3env_load(&env) < 0) {
        fprintf(stderr, "no test S3 server ($TIERFS_S3_ENV): skipped\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_put_head_get_ranges, setup),
        cmocka_unit_test_setup(test_if_match, setup),
        cmocka_unit_test_setup(test_list_2500_paged, setup),
        cmocka_unit_test_setup(test_special_keys, setup),
        cmocka_unit_test_setup(test_virtual_hosted, setup),
        cmocka_unit_test_setup(test_wrong_secret, setup),
        cmocka_unit_test_setup(test_server_down, setup),
        cmocka_unit_test_setup(test_proxy_503_retried, setup),
        cmocka_unit_test_setup(test_proxy_reset_retried, setup),
        cmocka_unit_test_setup(test_proxy_short_retried, setup),
        cmocka_unit_test_setup(test_proxy_stall_timeout, setup),
        cmocka_unit_test_setup(test_proxy_stall_check, setup),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    s3env_proxy_reset(&env);
    return rc;
}
