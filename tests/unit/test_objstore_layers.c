/* SPDX-License-Identifier: Apache-2.0 */
/* test_objstore_layers.c: the objstore wrapper layers over an in-memory fake store: the retry
 * policy driven through the fault wrapper (5xx, 4xx, attempts, short bodies resumed and never
 * partial, backoff time), fault probabilities, submit checks, the stats layer. */
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
    /* a missing key: 4xx, "not found" (an answer, as a lookup expects), not an error */
    assert_int_equal(objstore_head(top, "nope", &info, NULL, 0), -ENOENT);
    assert_int_equal(objstore_head(top, "obj", &info, NULL, 0), 0);
    objstore_get_stats(top, &st);
    assert_int_equal(st.done[OBJSTORE_OP_GET][OBJSTORE_STATUS_2XX], 1);
    assert_int_equal(st.done[OBJSTORE_OP_GET][OBJSTORE_STATUS_5XX], 0);
    assert_int_equal(st.done_errors[OBJSTORE_OP_GET], 0);
    assert_int_equal(st.done[OBJSTORE_OP_HEAD][OBJSTORE_STATUS_4XX], 1);
    assert_int_equal(st.done[OBJSTORE_OP_HEAD][OBJSTORE_STATUS_2XX], 1);
    assert_int_equal(st.done_errors[OBJSTORE_OP_HEAD], 0);
    assert_int_equal(st.done_not_found[OBJSTORE_OP_HEAD], 1);
    assert_int_equal(st.done_not_found[OBJSTORE_OP_GET], 0);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retry_503_then_success),
        cmocka_unit_test(test_retry_4xx_not_retried),
        cmocka_unit_test(test_retry_max_attempts),
        cmocka_unit_test(test_retry_short_body_resumes),
        cmocka_unit_test(test_retry_short_body_resumes_iov),
        cmocka_unit_test(test_retry_short_body_never_partial),
        cmocka_unit_test(test_retry_list_and_backoff_time),
        cmocka_unit_test(test_fault_probability),
        cmocka_unit_test(test_submit_checks),
        cmocka_unit_test(test_stats_layer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
