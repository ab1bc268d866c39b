/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_hc_fleet_lease.c: the lease logic of hybridcache/fleet.c over an in-process
 * backend that two fleets share (two mounts): a hit, a miss that waits for another
 * mount's copy, a holder that stalls (the waiter fetches after one lease period), a
 * holder that gives up (the waiter takes the lease over), failed looks while waiting, a
 * sick backend (no waiting, no hang), bad values, a full store queue, waiters answered at
 * destroy, batches.
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
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/util.h"
#include "hybridcache/fleet_i.h"

static void t_block(uint8_t *b, size_t len, unsigned seed)
{
    for (size_t i = 0; i < len; i++)
        b[i] = (uint8_t)(i * 131 + seed * 7 + (i >> 9));
}

/* ---- a backend in this process: a locked table of values, shared by two fleets ---- */

struct t_val {
    char key[HC_FLEET_KEY_MAX];
    size_t klen;
    uint8_t *v;
    size_t len;
};

struct t_store {
    pthread_mutex_t lock;
    struct t_val vals[512];
    unsigned n;
    int down;       /* every call fails with -ECONNREFUSED */
    int mget_fails; /* the next multi-gets fail with -ETIMEDOUT (after their values) */
    int refs;
};

struct t_backend {
    struct hc_fleet_backend base;
    struct t_store *st;
};

struct hc_fleet_conn {
    struct t_store *st;
};

static struct t_val *t_find(struct t_store *s, const char *k, size_t kl)
{
    for (unsigned i = 0; i < s->n; i++)
        if (s->vals[i].klen == kl && memcmp(s->vals[i].key, k, kl) == 0)
            return &s->vals[i];
    return NULL;
}

static int t_open(struct hc_fleet_backend *b, unsigned ms, struct hc_fleet_conn **out)
{
    (void)ms;
    *out = malloc(sizeof(**out));
    (*out)->st = ((struct t_backend *)b)->st;
    return 0;
}

static void t_close(struct hc_fleet_conn *c)
{
    free(c);
}

static int t_mget(struct hc_fleet_conn *c, const char *const *keys, const size_t *klens, unsigned n,
                  hc_fleet_found_fn found, void *arg)
{
    pthread_mutex_lock(&c->st->lock);
    if (__atomic_load_n(&c->st->down, __ATOMIC_RELAXED)) {
        pthread_mutex_unlock(&c->st->lock);
        return -ECONNREFUSED;
    }
    for (unsigned i = 0; i < n; i++) {
        struct t_val *v = t_find(c->st, keys[i], klens[i]);
        if (v)
            found(arg, i, v->v, v->len);
    }
    int rc = 0;
    if (c->st->mget_fails > 0) { /* like memcached's: the servers that answered did */
        c->st->mget_fails--;
        rc = -ETIMEDOUT;
    }
    pthread_mutex_unlock(&c->st->lock);
    return rc;
}

static int t_put(struct hc_fleet_conn *c, const char *k, size_t kl, const void *v, size_t len,
                 bool only_new)
{
    struct t_store *s = c->st;
    int rc = 0;

    pthread_mutex_lock(&s->lock);
    struct t_val *x = t_find(s, k, kl);
    if (__atomic_load_n(&s->down, __ATOMIC_RELAXED))
        rc = -ECONNREFUSED;
    else if (x && only_new)
        rc = -EEXIST;
    else if (!x && s->n == CMN_ARRAY_SIZE(s->vals))
        rc = -ENOSPC;
    if (rc == 0) {
        if (!x) {
            x = &s->vals[s->n++];
            memcpy(x->key, k, kl);
            x->klen = kl;
        } else {
            free(x->v);
        }
        x->v = malloc(len ? len : 1);
        memcpy(x->v, v, len);
        x->len = len;
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static int t_add(struct hc_fleet_conn *c, const char *k, size_t kl, const void *v, size_t len,
                 uint32_t ttl)
{
    (void)ttl;
    return t_put(c, k, kl, v, len, true);
}

static int t_set(struct hc_fleet_conn *c, const char *k, size_t kl, const void *v, size_t len,
                 uint32_t ttl)
{
    (void)ttl;
    return t_put(c, k, kl, v, len, false);
}

static int t_del(struct hc_fleet_conn *c, const char *k, size_t kl)
{
    struct t_store *s = c->st;
    int rc = -ENOENT;

    pthread_mutex_lock(&s->lock);
    struct t_val *x = t_find(s, k, kl);
    if (__atomic_load_n(&s->down, __ATOMIC_RELAXED)) {
        rc = -ECONNREFUSED;
    } else if (x) {
        free(x->v);
        *x = s->vals[--s->n];
        rc = 0;
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static void t_store_unref(struct t_store *s)
{
    if (__atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL))
        return;
    for (unsigned i = 0; i < s->n; i++)
        free(s->vals[i].v);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

static void t_destroy(struct hc_fleet_backend *b)
{
    t_store_unref(((struct t_backend *)b)->st);
    free(b);
}

static const struct hc_fleet_backend_ops t_ops = {
    .version = HC_FLEET_BACKEND_V1,
    .name = "test",
    .open = t_open,
    .close = t_close,
    .mget = t_mget,
    .add = t_add,
    .set = t_set,
    .del = t_del,
    .destroy = t_destroy,
};

static struct hc_fleet_backend *t_backend(struct t_store *s)
{
    struct t_backend *b = calloc(1, sizeof(*b));
    b->base.ops = &t_ops;
    b->base.nservers = 1;
    b->st = s;
    __atomic_add_fetch(&s->refs, 1, __ATOMIC_RELAXED);
    return &b->base;
}

static struct t_store *t_store_new(void)
{
    struct t_store *s = calloc(1, sizeof(*s));
    pthread_mutex_init(&s->lock, NULL);
    s->refs = 1;
    return s;
}

/* ---- a request and its answer ---- */

struct t_req {
    struct hc_fleet_req r;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int answers;
    enum hc_fleet_result res;
    uint64_t at_ns;
    struct hc_fleet_req *one[1]; /* the batch array: it must outlive the lookup */
    uint8_t buf[100000];
};

static void t_done(struct hc_fleet_req *r, enum hc_fleet_result res)
{
    struct t_req *t = r->arg;
    pthread_mutex_lock(&t->lock);
    t->answers++;
    t->res = res;
    t->at_ns = cmn_now_ns();
    pthread_cond_broadcast(&t->cond);
    pthread_mutex_unlock(&t->lock);
}

static struct t_req *t_req_new(struct hc_fleet *f, const char *id, size_t len)
{
    struct t_req *t = calloc(1, sizeof(*t));
    pthread_mutex_init(&t->lock, NULL);
    pthread_cond_init(&t->cond, NULL);
    t->r = (struct hc_fleet_req){
        .id = id, .idlen = strlen(id), .buf = t->buf, .len = len, .done = t_done, .arg = t};
    assert_int_equal(hc_fleet_prepare(f, &t->r), 0);
    return t;
}

static void t_req_free(struct t_req *t)
{
    pthread_cond_destroy(&t->cond);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

/* Wait up to @ms for @t's answer. @return true when it came. */
static bool t_wait(struct t_req *t, unsigned ms)
{
    uint64_t end = cmn_now_ns() + (uint64_t)ms * 1000000;
    pthread_mutex_lock(&t->lock);
    while (!t->answers && cmn_now_ns() < end) {
        pthread_mutex_unlock(&t->lock);
        usleep(1000);
        pthread_mutex_lock(&t->lock);
    }
    bool got = t->answers > 0;
    pthread_mutex_unlock(&t->lock);
    return got;
}

/* @t's answers so far (under its lock: the fleet's threads write them). */
static int t_answers(struct t_req *t)
{
    pthread_mutex_lock(&t->lock);
    int n = t->answers;
    pthread_mutex_unlock(&t->lock);
    return n;
}

static void t_lookup(struct hc_fleet *f, struct t_req *t)
{
    t->one[0] = &t->r;
    t->answers = 0;
    assert_int_equal(hc_fleet_lookup(f, t->one, 1, NULL, NULL), 0);
}

#define T_LEASE_MS 300
static struct hc_fleet *t_fleet(struct t_store *s, uint64_t queue)
{
    struct hc_fleet_conf c = {
        .piece_size = 16 << 10, .lease_ms = T_LEASE_MS, .poll_ms = 2, .store_queue = queue};
    struct hc_fleet *f;
    assert_int_equal(hc_fleet_create(&c, t_backend(s), &f), 0);
    return f;
}

static void t_wait_stored(struct hc_fleet *f)
{
    struct hc_fleet_stats st;
    for (int i = 0; i < 2000; i++) {
        hc_fleet_get_stats(f, &st);
        if (st.store_queue_bytes == 0 && st.stores + st.store_errors + st.store_drops > 0)
            return;
        usleep(1000);
    }
    fail_msg("the store queue did not drain");
}

/* Two mounts over one store (a's store queue @a_queue bytes, b's 1 MiB) and a request of
 * @len bytes for block @id on each. */
static void t_two(const char *id, size_t len, uint64_t a_queue, struct t_store **s,
                  struct hc_fleet **a, struct hc_fleet **b, struct t_req **ra, struct t_req **rb)
{
    *s = t_store_new();
    *a = t_fleet(*s, a_queue);
    *b = t_fleet(*s, 1 << 20);
    *ra = t_req_new(*a, id, len);
    *rb = t_req_new(*b, id, len);
}

static void t_two_free(struct t_store *s, struct hc_fleet *a, struct hc_fleet *b, struct t_req *ra,
                       struct t_req *rb)
{
    hc_fleet_destroy(a);
    hc_fleet_destroy(b);
    t_req_free(ra);
    t_req_free(rb);
    t_store_unref(s);
}

/* @t's lookup on @f: a miss that takes the block's lease. */
static void t_take(struct hc_fleet *f, struct t_req *t)
{
    t_lookup(f, t);
    assert_true(t_wait(t, 2000));
    assert_int_equal(t->res, HC_FLEET_FETCH);
    assert_true(t->r.leased);
}

/* A miss takes the lease; a second mount waits; the first stores; the second gets it. */
static void test_lease_wait_hit(void **state)
{
    (void)state;
    const size_t len = 50000;
    struct t_store *s;
    struct hc_fleet *a, *b;
    struct t_req *ra, *rb;
    t_two("blk-1", len, 1 << 20, &s, &a, &b, &ra, &rb);
    uint8_t data[50000];
    struct hc_fleet_stats st;

    t_block(data, len, 9);
    t_take(a, ra);
    t_lookup(b, rb);
    usleep(50 * 1000);
    assert_int_equal(rb->answers, 0); /* waiting for a's copy, not fetching */
    hc_fleet_store(a, &ra->r, data, len, NULL, NULL);
    assert_true(t_wait(rb, T_LEASE_MS));
    assert_int_equal(rb->res, HC_FLEET_HIT);
    assert_memory_equal(rb->buf, data, len);
    hc_fleet_get_stats(b, &st);
    assert_int_equal(st.lease_waits, 1);
    assert_int_equal(st.lease_wait_hits, 1);
    assert_int_equal(st.lease_timeouts, 0);
    /* a third look is a plain hit, and the lease was released */
    t_lookup(b, rb);
    assert_true(t_wait(rb, 2000));
    assert_int_equal(rb->res, HC_FLEET_HIT);
    hc_fleet_get_stats(b, &st);
    assert_int_equal(st.hits, 1);
    t_two_free(s, a, b, ra, rb);
}

/* The holder stalls (never stores): the waiter fetches itself after one lease period. */
static void test_lease_stalled_holder(void **state)
{
    (void)state;
    struct t_store *s;
    struct hc_fleet *a, *b;
    struct t_req *ra, *rb;
    t_two("blk-2", 1000, 1 << 20, &s, &a, &b, &ra, &rb);
    struct hc_fleet_stats st;

    t_take(a, ra);
    uint64_t t0 = cmn_now_ns();
    t_lookup(b, rb);
    assert_true(t_wait(rb, 3 * T_LEASE_MS));
    uint64_t waited_ms = (rb->at_ns - t0) / 1000000;
    assert_int_equal(rb->res, HC_FLEET_FETCH);
    assert_false(rb->r.leased);
    assert_true(waited_ms >= T_LEASE_MS - 20);
    assert_true(waited_ms < 2 * T_LEASE_MS);
    hc_fleet_get_stats(b, &st);
    assert_int_equal(st.lease_timeouts, 1);
    hc_fleet_abandon(a, &ra->r);
    t_two_free(s, a, b, ra, rb);
}

static int t_released;
static void t_release(void *arg)
{
    (void)arg;
    __atomic_add_fetch(&t_released, 1, __ATOMIC_RELAXED);
}

/* A holder whose fetch keeps moving (hc_fleet_progress) keeps its waiters past one lease
 * period; its lent bytes are stored without a copy and given back once. */
static void test_lease_progress_extends(void **state)
{
    (void)state;
    const size_t len = 40000;
    struct t_store *s;
    struct hc_fleet *a, *b;
    struct t_req *ra, *rb;
    t_two("blk-p", len, 1 << 20, &s, &a, &b, &ra, &rb);
    uint8_t *data = malloc(len);
    struct hc_fleet_stats st;

    t_block(data, len, 11);
    t_take(a, ra);
    t_lookup(b, rb);
    /* three lease periods of a slow GET: bytes every 20 ms */
    for (int i = 0; i < 3 * T_LEASE_MS / 20; i++) {
        hc_fleet_progress(a, &ra->r);
        usleep(20 * 1000);
    }
    assert_int_equal(t_answers(rb), 0); /* still waiting: the holder is alive */
    t_released = 0;
    hc_fleet_store(a, &ra->r, data, len, t_release, NULL);
    assert_true(t_wait(rb, T_LEASE_MS));
    assert_int_equal(rb->res, HC_FLEET_HIT);
    assert_memory_equal(rb->buf, data, len);
    t_wait_stored(a);
    assert_int_equal(__atomic_load_n(&t_released, __ATOMIC_RELAXED), 1);
    hc_fleet_get_stats(b, &st);
    assert_int_equal(st.lease_timeouts, 0);
    assert_true(st.lease_extends >= 2);
    /* a lent block that cannot be queued is given back at once, its lease released */
    struct hc_fleet *tiny = t_fleet(s, 1000);
    struct t_req *rt = t_req_new(tiny, "blk-q", 5000);
    t_take(tiny, rt);
    hc_fleet_store(tiny, &rt->r, data, 5000, t_release, NULL);
    assert_int_equal(__atomic_load_n(&t_released, __ATOMIC_RELAXED), 2);
    assert_false(rt->r.leased);
    hc_fleet_destroy(tiny);
    t_req_free(rt);
    free(data);
    t_two_free(s, a, b, ra, rb);
}

/* A holder that shows progress forever still frees its waiters after
 * HC_FLEET_WAIT_PERIODS lease periods. */
static void test_lease_progress_capped(void **state)
{
    (void)state;
    struct t_store *s;
    struct hc_fleet *a, *b;
    struct t_req *ra, *rb;
    t_two("blk-c", 1000, 1 << 20, &s, &a, &b, &ra, &rb);
    struct hc_fleet_stats st;

    t_lookup(a, ra);
    assert_true(t_wait(ra, 2000));
    uint64_t t0 = cmn_now_ns();
    t_lookup(b, rb);
    while (!t_answers(rb) && cmn_now_ns() - t0 < 3000000000ull * HC_FLEET_WAIT_PERIODS / 2) {
        hc_fleet_progress(a, &ra->r);
        usleep(20 * 1000);
    }
    assert_int_equal(t_answers(rb), 1);
    uint64_t waited_ms = (rb->at_ns - t0) / 1000000;
    assert_int_equal(rb->res, HC_FLEET_FETCH);
    assert_true(waited_ms >= (HC_FLEET_WAIT_PERIODS - 1) * T_LEASE_MS);
    assert_true(waited_ms < (HC_FLEET_WAIT_PERIODS + 1) * T_LEASE_MS);
    hc_fleet_get_stats(b, &st);
    assert_int_equal(st.lease_timeouts, 1);
    hc_fleet_abandon(a, &ra->r);
    t_two_free(s, a, b, ra, rb);
}

/* The holder's fetch failed (it lets the lease go): the waiter takes it over at once. */
static void test_lease_abandoned(void **state)
{
    (void)state;
    struct t_store *s;
    struct hc_fleet *a, *b;
    struct t_req *ra, *rb;
    t_two("blk-3", 1000, 1 << 20, &s, &a, &b, &ra, &rb);

    t_take(a, ra);
    uint64_t t0 = cmn_now_ns();
    t_lookup(b, rb);
    usleep(20 * 1000);
    hc_fleet_abandon(a, &ra->r);
    assert_true(t_wait(rb, T_LEASE_MS));
    assert_int_equal(rb->res, HC_FLEET_FETCH);
    assert_true(rb->r.leased); /* the lease is b's now */
    assert_true((rb->at_ns - t0) / 1000000 < T_LEASE_MS - 50);
    hc_fleet_abandon(b, &rb->r);
    t_two_free(s, a, b, ra, rb);
}

static void t_mget_fails(struct t_store *s, int n)
{
    pthread_mutex_lock(&s->lock);
    s->mget_fails = n;
    pthread_mutex_unlock(&s->lock);
}

/* A waiter's failed looks: fewer than HC_FLEET_POLL_ERRORS in a row (a late answer on a
 * loaded host) keep it waiting for the holder's copy; that many in a row send it to the
 * origin without a lease, long before the lease period. */
static void test_lease_wait_failed_looks(void **state)
{
    (void)state;
    const size_t len = 40000;
    struct t_store *s;
    struct hc_fleet *a, *b;
    struct t_req *ra, *rb;
    t_two("blk-f", len, 1 << 20, &s, &a, &b, &ra, &rb);
    uint8_t data[40000];
    struct hc_fleet_stats st;

    t_block(data, len, 4);
    t_take(a, ra);
    t_lookup(b, rb);
    usleep(20 * 1000);
    t_mget_fails(s, HC_FLEET_POLL_ERRORS - 1);
    usleep(50 * 1000); /* the poller looks every 2 ms: all of them failed by now */
    assert_int_equal(t_answers(rb), 0);
    hc_fleet_store(a, &ra->r, data, len, NULL, NULL);
    assert_true(t_wait(rb, T_LEASE_MS));
    assert_int_equal(rb->res, HC_FLEET_HIT);
    assert_memory_equal(rb->buf, data, len);
    hc_fleet_get_stats(b, &st);
    assert_int_equal(st.lease_wait_hits, 1);
    assert_true(st.errors >= HC_FLEET_POLL_ERRORS - 1);

    /* a second block: its looks keep failing */
    struct t_req *ra2 = t_req_new(a, "blk-g", len), *rb2 = t_req_new(b, "blk-g", len);
    t_take(a, ra2);
    t_lookup(b, rb2);
    usleep(20 * 1000);
    assert_int_equal(t_answers(rb2), 0);
    uint64_t t0 = cmn_now_ns();
    t_mget_fails(s, 1000000);
    assert_true(t_wait(rb2, T_LEASE_MS));
    assert_int_equal(rb2->res, HC_FLEET_FETCH);
    assert_false(rb2->r.leased);
    assert_true((rb2->at_ns - t0) / 1000000 < T_LEASE_MS / 2);
    hc_fleet_get_stats(b, &st);
    assert_int_equal(st.lease_timeouts, 0);
    t_mget_fails(s, 0);
    hc_fleet_abandon(a, &ra2->r);
    t_req_free(ra2);
    t_req_free(rb2);
    t_two_free(s, a, b, ra, rb);
}

/* A sick backend: every lookup goes to the origin at once, no lease, no wait. */
static void test_backend_down(void **state)
{
    (void)state;
    struct t_store *s = t_store_new();
    struct hc_fleet *a = t_fleet(s, 1 << 20);
    struct t_req *ra = t_req_new(a, "blk-4", 1000);
    struct hc_fleet_stats st;

    s->down = 1;
    uint64_t t0 = cmn_now_ns();
    t_lookup(a, ra);
    assert_true(t_wait(ra, 1000));
    assert_int_equal(ra->res, HC_FLEET_FETCH);
    assert_false(ra->r.leased);
    assert_true((ra->at_ns - t0) / 1000000 < 100);
    hc_fleet_store(a, &ra->r, ra->buf, 1000, NULL, NULL); /* fails in the background, counted */
    t_wait_stored(a);
    hc_fleet_get_stats(a, &st);
    assert_true(st.errors >= 2);
    assert_int_equal(st.store_errors, 1);
    hc_fleet_destroy(a);
    t_req_free(ra);
    t_store_unref(s);
}

/* A bad value under the block's key is a miss, counted, and the fetch stores a good one. */
static void test_bad_value_is_miss(void **state)
{
    (void)state;
    struct t_store *s = t_store_new();
    struct hc_fleet *a = t_fleet(s, 1 << 20);
    struct t_req *ra = t_req_new(a, "blk-5", 1000);
    struct hc_fleet_conn *c;
    char key[HC_FLEET_KEY_MAX];
    struct hc_fleet_stats st;
    uint8_t data[1000];

    t_block(data, sizeof(data), 5);
    c = malloc(sizeof(*c));
    c->st = s;
    size_t kl = hc_fleet_key(ra->r.hash, 0, key);
    assert_int_equal(t_set(c, key, kl,
                           "garbage that is long enough for a header, but wrong ..."
                           "................",
                           72, 0),
                     0);
    t_lookup(a, ra);
    assert_true(t_wait(ra, 2000));
    assert_int_equal(ra->res, HC_FLEET_FETCH);
    hc_fleet_get_stats(a, &st);
    assert_int_equal(st.bad_values, 1);
    assert_int_equal(st.hits, 0);
    hc_fleet_store(a, &ra->r, data, sizeof(data), NULL, NULL);
    t_wait_stored(a);
    t_lookup(a, ra);
    assert_true(t_wait(ra, 2000));
    assert_int_equal(ra->res, HC_FLEET_HIT);
    assert_memory_equal(ra->buf, data, sizeof(data));
    free(c);
    hc_fleet_destroy(a);
    t_req_free(ra);
    t_store_unref(s);
}

/* A block larger than the store queue is dropped (counted) and its lease released. */
static void test_store_queue_full(void **state)
{
    (void)state;
    struct t_store *s;
    struct hc_fleet *a, *b;
    struct t_req *ra, *rb;
    t_two("blk-6", 5000, 1000, &s, &a, &b, &ra, &rb);
    struct hc_fleet_stats st;

    t_take(a, ra);
    hc_fleet_store(a, &ra->r, ra->buf, 5000, NULL, NULL);
    hc_fleet_get_stats(a, &st);
    assert_int_equal(st.store_drops, 1);
    t_wait_stored(a);
    /* the lease went with the drop: b takes it at once, it does not wait */
    t_lookup(b, rb);
    assert_true(t_wait(rb, T_LEASE_MS / 2));
    assert_int_equal(rb->res, HC_FLEET_FETCH);
    assert_true(rb->r.leased);
    hc_fleet_abandon(b, &rb->r);
    t_two_free(s, a, b, ra, rb);
}

/* A fleet destroyed while a request waits answers it (the origin), no hang. */
static void test_destroy_answers_waiters(void **state)
{
    (void)state;
    struct t_store *s;
    struct hc_fleet *a, *b;
    struct t_req *ra, *rb;
    t_two("blk-7", 100, 1 << 20, &s, &a, &b, &ra, &rb);

    t_lookup(a, ra);
    assert_true(t_wait(ra, 2000));
    t_lookup(b, rb);
    usleep(20 * 1000);
    hc_fleet_destroy(b);
    assert_int_equal(rb->answers, 1);
    assert_int_equal(rb->res, HC_FLEET_FETCH);
    hc_fleet_abandon(a, &ra->r);
    hc_fleet_destroy(a);
    t_req_free(ra);
    t_req_free(rb);
    t_store_unref(s);
}

/* A batch: every first answer, then batch_done once. */
static int t_batches;
static void t_batch_done(void *arg)
{
    (void)arg;
    __atomic_add_fetch(&t_batches, 1, __ATOMIC_RELAXED);
}

static void test_batch(void **state)
{
    (void)state;
    struct t_store *s = t_store_new();
    struct hc_fleet *a = t_fleet(s, 1 << 20);
    struct t_req *r[5];
    struct hc_fleet_req *rp[5];
    char ids[5][8];
    uint8_t data[20000];

    t_block(data, sizeof(data), 1);
    for (int i = 0; i < 5; i++) {
        snprintf(ids[i], sizeof(ids[i]), "b%d", i);
        r[i] = t_req_new(a, ids[i], sizeof(data));
        rp[i] = &r[i]->r;
    }
    assert_int_equal(hc_fleet_lookup(a, rp, 5, t_batch_done, NULL), 0);
    for (int i = 0; i < 5; i++) {
        assert_true(t_wait(r[i], 2000));
        assert_int_equal(r[i]->res, HC_FLEET_FETCH);
        if (i % 2 == 0)
            hc_fleet_store(a, rp[i], data, sizeof(data), NULL, NULL);
        else
            hc_fleet_abandon(a, rp[i]);
    }
    for (int i = 0; i < 2000 && __atomic_load_n(&t_batches, __ATOMIC_RELAXED) < 1; i++)
        usleep(1000);
    assert_int_equal(t_batches, 1);
    t_wait_stored(a);
    usleep(20 * 1000);
    for (int i = 0; i < 5; i++)
        r[i]->answers = 0;
    assert_int_equal(hc_fleet_lookup(a, rp, 5, t_batch_done, NULL), 0);
    for (int i = 0; i < 5; i++) {
        assert_true(t_wait(r[i], 2000));
        assert_int_equal(r[i]->res, i % 2 == 0 ? HC_FLEET_HIT : HC_FLEET_FETCH);
        if (i % 2)
            hc_fleet_abandon(a, rp[i]);
    }
    hc_fleet_destroy(a);
    for (int i = 0; i < 5; i++)
        t_req_free(r[i]);
    t_store_unref(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lease_wait_hit),
        cmocka_unit_test(test_lease_stalled_holder),
        cmocka_unit_test(test_lease_progress_extends),
        cmocka_unit_test(test_lease_progress_capped),
        cmocka_unit_test(test_lease_abandoned),
        cmocka_unit_test(test_lease_wait_failed_looks),
        cmocka_unit_test(test_backend_down),
        cmocka_unit_test(test_bad_value_is_miss),
        cmocka_unit_test(test_store_queue_full),
        cmocka_unit_test(test_destroy_answers_waiters),
        cmocka_unit_test(test_batch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
