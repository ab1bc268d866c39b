/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_s3server.c: the local S3 server and its shaping proxy do what tests rely on:
 * signed round trips through the proxy, request counters by class, time to first byte,
 * the bandwidth cap, each fault kind, fault selection, "down", concurrency.
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

#include <cmocka.h>

#include "tests/integration/s3env.h"

#define TS3_OBJ "s3server-test/obj"
#define TS3_OBJ_LEN (4u << 20)

static struct s3env ts3_env;
static unsigned char *ts3_data; /* contents of TS3_OBJ */

static void ts3_fill(unsigned char *p, size_t len, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 1;

    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (unsigned char)x;
    }
}

/* Every test starts with default knobs and zero counters. */
static int ts3_setup(void **state)
{
    (void)state;
    if (s3env_proxy_reset(&ts3_env) < 0 || s3env_counters_reset(&ts3_env) < 0)
        return -1;
    return 0;
}

static int ts3_teardown(void **state)
{
    (void)state;
    return s3env_proxy_reset(&ts3_env) < 0 ? -1 : 0;
}

/* GET TS3_OBJ through the proxy. */
static int ts3_get(struct s3env_http *r, const char *range)
{
    return s3env_request(&ts3_env, ts3_env.endpoint, "GET", TS3_OBJ, NULL, range, NULL, 0, r);
}

static void ts3_config(const char *json)
{
    assert_int_equal(s3env_proxy_config(&ts3_env, json), 0);
}

static void ts3_counters(struct s3env_counters *c)
{
    assert_int_equal(s3env_counters(&ts3_env, c), 0);
}

static void test_roundtrip_through_proxy(void **state)
{
    const size_t len = (1u << 20) + 17;
    unsigned char *buf = malloc(len);
    struct s3env_http r;
    struct s3env_counters c;

    (void)state;
    assert_non_null(buf);
    ts3_fill(buf, len, 7);
    assert_int_equal(s3env_request(&ts3_env, ts3_env.endpoint, "PUT", "s3server-test/rt", NULL,
                                   NULL, buf, len, &r),
                     0);
    assert_int_equal(r.status, 200);
    s3env_http_free(&r);
    assert_int_equal(s3env_request(&ts3_env, ts3_env.endpoint, "GET", "s3server-test/rt", NULL,
                                   NULL, NULL, 0, &r),
                     0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, len);
    assert_memory_equal(r.body, buf, len);
    s3env_http_free(&r);
    ts3_counters(&c);
    assert_int_equal(c.put, 1);
    assert_int_equal(c.get, 1);
    assert_int_equal(c.requests, 2);
    assert_true(c.bytes_sent >= len);
    assert_true(c.bytes_received >= len);
    assert_int_equal(s3env_delete(&ts3_env, "s3server-test/rt"), 0);
    free(buf);
}

static void test_unsigned_is_refused(void **state)
{
    struct s3env_http r;
    struct s3env bad = ts3_env;

    (void)state;
    snprintf(bad.secret_key, sizeof(bad.secret_key), "wrong");
    assert_int_equal(s3env_request(&bad, bad.endpoint, "GET", TS3_OBJ, NULL, NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 403);
    s3env_http_free(&r);
}

static void test_counters_by_class(void **state)
{
    struct s3env_http r;
    struct s3env_counters c;

    (void)state;
    assert_int_equal(
        s3env_request(&ts3_env, ts3_env.endpoint, "HEAD", TS3_OBJ, NULL, NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.content_length, TS3_OBJ_LEN);
    s3env_http_free(&r);

    assert_int_equal(ts3_get(&r, NULL), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, TS3_OBJ_LEN);
    assert_memory_equal(r.body, ts3_data, TS3_OBJ_LEN);
    s3env_http_free(&r);

    assert_int_equal(ts3_get(&r, "bytes=1000-1099"), 0);
    assert_int_equal(r.status, 206);
    assert_int_equal(r.body_len, 100);
    assert_memory_equal(r.body, ts3_data + 1000, 100);
    s3env_http_free(&r);

    assert_int_equal(s3env_request(&ts3_env, ts3_env.endpoint, "GET", NULL,
                                   "list-type=2&prefix=s3server-test%2F", NULL, NULL, 0, &r),
                     0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "<Key>" TS3_OBJ "</Key>"));
    s3env_http_free(&r);
    assert_int_equal(
        s3env_request(&ts3_env, ts3_env.endpoint, "GET", NULL, NULL, NULL, NULL, 0, &r),
        0); /* ListObjects v1 */
    assert_int_equal(r.status, 200);
    s3env_http_free(&r);

    assert_int_equal(s3env_request(&ts3_env, ts3_env.endpoint, "PUT", "s3server-test/tmp", NULL,
                                   NULL, "x", 1, &r),
                     0);
    assert_int_equal(r.status, 200);
    s3env_http_free(&r);
    assert_int_equal(s3env_request(&ts3_env, ts3_env.endpoint, "DELETE", "s3server-test/tmp", NULL,
                                   NULL, NULL, 0, &r),
                     0);
    assert_int_equal(r.status, 204);
    s3env_http_free(&r);

    ts3_counters(&c);
    assert_int_equal(c.head, 1);
    assert_int_equal(c.get, 2);        /* all object GETs */
    assert_int_equal(c.ranged_get, 1); /* the subset with Range */
    assert_int_equal(c.list, 2);
    assert_int_equal(c.put, 1);
    assert_int_equal(c.other, 1);
    assert_int_equal(c.requests, 7);
    assert_int_equal(c.faults, 0);
    assert_int_equal(c.concurrent, 0);
    assert_int_equal(c.max_concurrent, 1);
    assert_true(c.bytes_sent >= TS3_OBJ_LEN + 100);

    assert_int_equal(s3env_counters_reset(&ts3_env), 0);
    ts3_counters(&c);
    assert_int_equal(c.requests, 0);
    assert_int_equal(c.bytes_sent, 0);
}

static void test_ttfb(void **state)
{
    struct s3env_http r;

    (void)state;
    ts3_config("{\"ttfb_ms\":300}");
    assert_int_equal(
        s3env_request(&ts3_env, ts3_env.endpoint, "HEAD", TS3_OBJ, NULL, NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    assert_true(r.ttfb_s >= 0.29);
    s3env_http_free(&r);
    assert_int_equal(ts3_get(&r, "bytes=0-9"), 0);
    assert_true(r.ttfb_s >= 0.29);
    s3env_http_free(&r);
    /* Direct to radosgw: no delay. */
    assert_int_equal(
        s3env_request(&ts3_env, ts3_env.direct_endpoint, "HEAD", TS3_OBJ, NULL, NULL, NULL, 0, &r),
        0);
    assert_true(r.ttfb_s < 0.25);
    s3env_http_free(&r);
    ts3_config("{}");
    assert_int_equal(
        s3env_request(&ts3_env, ts3_env.endpoint, "HEAD", TS3_OBJ, NULL, NULL, NULL, 0, &r), 0);
    assert_true(r.ttfb_s < 0.25);
    s3env_http_free(&r);
}

static void test_bandwidth(void **state)
{
    struct s3env_http r;

    (void)state;
    ts3_config("{\"bandwidth\":8388608}"); /* 8 MiB/s: 4 MiB take ~0.5 s */
    assert_int_equal(ts3_get(&r, NULL), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, TS3_OBJ_LEN);
    assert_memory_equal(r.body, ts3_data, TS3_OBJ_LEN);
    print_message("bandwidth 8 MiB/s: 4 MiB in %.3f s\n", r.total_s);
    assert_true(r.total_s >= 0.45);
    assert_true(r.total_s <= 2.0);
    s3env_http_free(&r);
    ts3_config("{\"bandwidth\":0}");
    assert_int_equal(ts3_get(&r, NULL), 0);
    assert_true(r.total_s < 0.4);
    s3env_http_free(&r);
}

static void test_fault_status(void **state)
{
    struct s3env_http r;
    struct s3env_counters c;

    (void)state;
    ts3_config("{\"fault\":{\"kind\":\"500\"}}");
    assert_int_equal(ts3_get(&r, NULL), 0);
    assert_int_equal(r.status, 500);
    assert_non_null(strstr(r.body, "<Code>InternalError</Code>"));
    s3env_http_free(&r);
    ts3_config("{\"fault\":{\"kind\":\"503\"}}");
    assert_int_equal(ts3_get(&r, NULL), 0);
    assert_int_equal(r.status, 503);
    assert_non_null(strstr(r.body, "<Code>SlowDown</Code>"));
    s3env_http_free(&r);
    /* PUT bodies are swallowed, and the object is not written. */
    assert_int_equal(s3env_request(&ts3_env, ts3_env.endpoint, "PUT", "s3server-test/nope", NULL,
                                   NULL, ts3_data, 300000, &r),
                     0);
    assert_int_equal(r.status, 503);
    s3env_http_free(&r);
    ts3_config("{\"fault\":null}");
    assert_int_equal(s3env_request(&ts3_env, ts3_env.endpoint, "HEAD", "s3server-test/nope", NULL,
                                   NULL, NULL, 0, &r),
                     0);
    assert_int_equal(r.status, 404);
    s3env_http_free(&r);
    ts3_counters(&c);
    assert_int_equal(c.faults, 3);
}

static void test_fault_reset(void **state)
{
    struct s3env_http r;

    (void)state;
    ts3_config("{\"fault\":{\"kind\":\"reset\"}}");
    assert_int_equal(ts3_get(&r, NULL), -EIO);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.content_length, TS3_OBJ_LEN);
    assert_true(r.body_len < TS3_OBJ_LEN);
    print_message("reset: curl rc %d after %zu bytes\n", r.curl_rc, r.body_len);
    assert_true(r.curl_rc == 56 /* RECV_ERROR */ || r.curl_rc == 18 /* PARTIAL_FILE */);
    s3env_http_free(&r);
    /* after_bytes places the cut. */
    ts3_config("{\"fault\":{\"kind\":\"reset\",\"after_bytes\":1000}}");
    assert_int_equal(ts3_get(&r, NULL), -EIO);
    assert_int_equal(r.body_len, 1000);
    assert_memory_equal(r.body, ts3_data, 1000);
    s3env_http_free(&r);
}

static void test_fault_short(void **state)
{
    struct s3env_http r;

    (void)state;
    ts3_config("{\"fault\":{\"kind\":\"short\"}}");
    assert_int_equal(ts3_get(&r, NULL), -EIO);
    assert_int_equal(r.curl_rc, 18); /* CURLE_PARTIAL_FILE: clean close before Content-Length */
    assert_int_equal(r.status, 200);
    assert_int_equal(r.content_length, TS3_OBJ_LEN);
    assert_int_equal(r.body_len, TS3_OBJ_LEN / 2);
    assert_memory_equal(r.body, ts3_data, TS3_OBJ_LEN / 2);
    s3env_http_free(&r);
    /* Ranged GETs are cut too. */
    assert_int_equal(ts3_get(&r, "bytes=0-9999"), -EIO);
    assert_int_equal(r.status, 206);
    assert_int_equal(r.body_len, 5000);
    s3env_http_free(&r);
}

static void test_fault_stall(void **state)
{
    struct s3env_http r;

    (void)state;
    ts3_config("{\"fault\":{\"kind\":\"stall\",\"stall_ms\":600}}");
    assert_int_equal(ts3_get(&r, NULL), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, TS3_OBJ_LEN);
    assert_memory_equal(r.body, ts3_data, TS3_OBJ_LEN);
    assert_true(r.ttfb_s < 0.3); /* the head came at once, the body stalled */
    assert_true(r.total_s >= 0.58);
    s3env_http_free(&r);
}

static void test_fault_selection(void **state)
{
    static const long want[] = {206, 500, 206, 500, 206, 206};
    struct s3env_http r;
    struct s3env_counters c;

    (void)state;
    ts3_config("{\"fault\":{\"kind\":\"503\",\"match\":\"HEAD\"}}");
    assert_int_equal(ts3_get(&r, NULL), 0);
    assert_int_equal(r.status, 200);
    s3env_http_free(&r);
    assert_int_equal(
        s3env_request(&ts3_env, ts3_env.endpoint, "HEAD", TS3_OBJ, NULL, NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 503);
    s3env_http_free(&r);

    /* Matching "RANGED_GET" leaves whole-object GETs alone. */
    ts3_config("{\"fault\":{\"kind\":\"500\",\"match\":\"RANGED_GET\"}}");
    assert_int_equal(ts3_get(&r, NULL), 0);
    assert_int_equal(r.status, 200);
    s3env_http_free(&r);
    assert_int_equal(ts3_get(&r, "bytes=0-1"), 0);
    assert_int_equal(r.status, 500);
    s3env_http_free(&r);

    /* Every 2nd request, at most 2 faults. */
    ts3_config("{\"fault\":{\"kind\":\"500\",\"every_nth\":2,\"count\":2}}");
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        assert_int_equal(ts3_get(&r, "bytes=0-1"), 0);
        assert_int_equal(r.status, want[i]);
        s3env_http_free(&r);
    }
    /* rate 0 never fires. */
    ts3_config("{\"fault\":{\"kind\":\"500\",\"rate\":0}}");
    assert_int_equal(ts3_get(&r, "bytes=0-1"), 0);
    assert_int_equal(r.status, 206);
    s3env_http_free(&r);

    ts3_counters(&c);
    assert_int_equal(c.faults, 4);
    /* A bad knob is refused. */
    assert_int_equal(s3env_proxy_config(&ts3_env, "{\"fault\":{\"kind\":\"boom\"}}"), -EINVAL);
    assert_int_equal(s3env_proxy_config(&ts3_env, "{\"no_such_knob\":1}"), -EINVAL);
}

static void test_down(void **state)
{
    struct s3env_http r;
    struct s3env_counters c;

    (void)state;
    ts3_config("{\"down\":true}");
    assert_int_equal(ts3_get(&r, NULL), -EIO);
    assert_int_equal(r.curl_rc, 7); /* CURLE_COULDNT_CONNECT */
    assert_int_equal(r.status, 0);
    s3env_http_free(&r);
    ts3_counters(&c); /* the control port stays up */
    ts3_config("{\"down\":false}");
    if (ts3_get(&r, NULL) < 0)
        print_message("after down:false: curl rc %d, status %ld\n", r.curl_rc, r.status);
    assert_int_equal(r.curl_rc, 0);
    assert_int_equal(r.status, 200);
    s3env_http_free(&r);
}

#define TS3_THREADS 8

static void *ts3_thread(void *arg)
{
    struct s3env_http *r = arg;

    ts3_get(r, "bytes=0-4095");
    return NULL;
}

static void test_concurrency(void **state)
{
    pthread_t th[TS3_THREADS];
    struct s3env_http r[TS3_THREADS];
    struct s3env_counters c;

    (void)state;
    ts3_config("{\"ttfb_ms\":400}");
    for (int i = 0; i < TS3_THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, ts3_thread, &r[i]), 0);
    for (int i = 0; i < TS3_THREADS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(r[i].status, 206);
        assert_int_equal(r[i].body_len, 4096);
        s3env_http_free(&r[i]);
    }
    ts3_counters(&c);
    assert_int_equal(c.ranged_get, TS3_THREADS);
    assert_int_equal(c.max_concurrent, TS3_THREADS);
    assert_int_equal(c.concurrent, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_roundtrip_through_proxy, ts3_setup, ts3_teardown),
        cmocka_unit_test_setup_teardown(test_unsigned_is_refused, ts3_setup, ts3_teardown),
        cmocka_unit_test_setup_teardown(test_counters_by_class, ts3_setup, ts3_teardown),
        cmocka_unit_test_setup_teardown(test_ttfb, ts3_setup, ts3_teardown),
        cmocka_unit_test_setup_teardown(test_bandwidth, ts3_setup, ts3_teardown),
        cmocka_unit_test_setup_teardown(test_fault_status, ts3_setup, ts3_teardown),
        cmocka_unit_test_setup_teardown(test_fault_reset, ts3_setup, ts3_teardown),
        cmocka_unit_test_setup_teardown(test_fault_short, ts3_setup, ts3_teardown),
        cmocka_unit_test_setup_teardown(test_fault_stall, ts3_setup, ts3_teardown),
        cmocka_unit_test_setup_teardown(test_fault_selection, ts3_setup, ts3_teardown),
        cmocka_unit_test_setup_teardown(test_down, ts3_setup, ts3_teardown),
        cmocka_unit_test_setup_teardown(test_concurrency, ts3_setup, ts3_teardown),
    };
    int rc;

    if (s3env_load(&ts3_env) < 0) {
        fprintf(stderr, "test_s3server: no S3 server ($TIERFS_S3_ENV unset or missing): skip\n");
        return 77;
    }
    ts3_data = malloc(TS3_OBJ_LEN);
    if (ts3_data == NULL)
        return 1;
    ts3_fill(ts3_data, TS3_OBJ_LEN, 1);
    if (s3env_put(&ts3_env, TS3_OBJ, ts3_data, TS3_OBJ_LEN) < 0) {
        fprintf(stderr, "test_s3server: cannot upload %s directly to radosgw\n", TS3_OBJ);
        return 1;
    }
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    s3env_delete(&ts3_env, TS3_OBJ);
    s3env_proxy_reset(&ts3_env);
    free(ts3_data);
    return rc;
}
