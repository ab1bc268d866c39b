/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_hybridcache.c: the cooperator (hybridcache.h): conf checks, single-flight under
 * many threads (one fetcher call, every waiter gets the bytes or the error, a later fetch
 * retries), the memory bound under a stream of fetches with a slow asynchronous origin,
 * insert/remove/NO_ORIGIN/prefetch; with a disk tier: promotion of disk hits,
 * write-on-evict, admission drops on a slow device, remount recovery, EIO -> origin, a
 * working set that fits memory staying there beside the disk's buffers.
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
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/log.h"
#include "common/util.h"
#include "hybridcache/hc_i.h"
#include "ioengine/ioengine.h"

#define KB 1024u
#define BS (64u * KB)

/* ---- a test origin: completes inline, or later from its own thread ---- */

struct origin;
struct oreq {
    struct origin *o;
    unsigned id;           /* bytes are pattern(id) */
    struct hc_flight *ctx; /* set while queued */
    void *buf;
    size_t cap;
    struct oreq *next;
    void *user; /* the caller's (stream tests) */
};

struct origin {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct oreq *head, *tail; /* protected by lock */
    bool stop;
    pthread_t thread;
    bool async;
    unsigned delay_us;                  /* per request, async only */
    int fail;                           /* complete with this -errno */
    size_t len;                         /* bytes per value (0 = cap) */
    struct hc_cache *wait_merges_cache; /* async: hold the first request until... */
    uint64_t wait_merges;               /* ...stats.merges reaches this */
    _Atomic unsigned calls;
};

static unsigned char pattern(unsigned id)
{
    return (unsigned char)((id * 131u) ^ 0x5a);
}

static void origin_serve(struct origin *o, struct oreq *r)
{
    size_t len = o->len ? o->len : r->cap;

    if (o->fail) {
        hc_fetch_complete(r->ctx, o->fail);
        return;
    }
    memset(r->buf, pattern(r->id), CMN_MIN(len, r->cap)); /* over-long len: tested below */
    hc_fetch_complete(r->ctx, (ssize_t)len);
}

static void *origin_thread(void *p)
{
    struct origin *o = p;

    pthread_mutex_lock(&o->lock);
    for (;;) {
        struct oreq *r = o->head;
        if (!r) {
            if (o->stop)
                break;
            pthread_cond_wait(&o->cond, &o->lock);
            continue;
        }
        o->head = r->next;
        if (!o->head)
            o->tail = NULL;
        pthread_mutex_unlock(&o->lock);
        if (o->wait_merges_cache) {
            struct hc_stats st;
            for (int i = 0; i < 5000; i++) {
                hc_get_stats(o->wait_merges_cache, &st);
                if (st.merges >= o->wait_merges)
                    break;
                usleep(1000);
            }
        }
        if (o->delay_us)
            usleep(o->delay_us);
        origin_serve(o, r);
        pthread_mutex_lock(&o->lock);
    }
    pthread_mutex_unlock(&o->lock);
    return NULL;
}

static void fetcher(struct hc_flight *ctx, void *buf, size_t cap, void *arg)
{
    struct oreq *r = arg;
    struct origin *o = r->o;

    assert_int_equal(cap, BS);
    assert_int_equal((uintptr_t)buf % IOENG_BUF_ALIGN, 0);
    atomic_fetch_add(&o->calls, 1);
    r->ctx = ctx;
    r->buf = buf;
    r->cap = cap;
    if (!o->async) {
        origin_serve(o, r);
        return;
    }
    pthread_mutex_lock(&o->lock);
    r->next = NULL;
    if (o->tail)
        o->tail->next = r;
    else
        o->head = r;
    o->tail = r;
    pthread_cond_signal(&o->cond);
    pthread_mutex_unlock(&o->lock);
}

static void origin_start(struct origin *o, bool async)
{
    memset(o, 0, sizeof(*o));
    pthread_mutex_init(&o->lock, NULL);
    pthread_cond_init(&o->cond, NULL);
    o->async = async;
    if (async)
        assert_int_equal(pthread_create(&o->thread, NULL, origin_thread, o), 0);
}

static void origin_stop(struct origin *o)
{
    if (o->async) {
        pthread_mutex_lock(&o->lock);
        o->stop = true;
        pthread_cond_signal(&o->cond);
        pthread_mutex_unlock(&o->lock);
        pthread_join(o->thread, NULL);
    }
    pthread_cond_destroy(&o->cond);
    pthread_mutex_destroy(&o->lock);
}

static int key_of(unsigned id, char *key)
{
    return snprintf(key, 32, "obj/%u", id);
}

static bool bytes_are(const struct hc_entry *e, unsigned id, size_t len)
{
    const unsigned char *d = hc_entry_data(e);

    if (hc_entry_len(e) != len)
        return false;
    for (size_t i = 0; i < len; i++)
        if (d[i] != pattern(id))
            return false;
    return true;
}

/* Synchronous fetch of @id. @return the result; *src and (on success) checks bytes. */
static int fetch_id(struct hc_cache *c, struct origin *o, unsigned id, unsigned flags,
                    enum hc_source *src, size_t expect_len)
{
    char key[32];
    int klen = key_of(id, key);
    struct oreq r = {.o = o, .id = id};
    struct hc_entry *e;
    enum hc_source s;
    int rc = hc_fetch_sync(c, key, (size_t)klen, flags, fetcher, &r, &e, &s);

    if (src)
        *src = s;
    if (rc == 0) {
        assert_non_null(e);
        assert_true(bytes_are(e, id, expect_len));
        hc_entry_put(e);
    } else {
        assert_null(e);
    }
    return rc;
}

static struct hc_cache *mem_cache(uint64_t mem, const char *policy)
{
    struct hc_conf conf = {.block_size = BS, .mem_capacity = mem, .mem_policy = policy};
    struct hc_cache *c;

    assert_int_equal(hc_create(&conf, &c), 0);
    return c;
}

/* ---- conf ---- */

static void test_conf(void **state)
{
    struct hc_conf conf = {.block_size = BS, .mem_capacity = 16u << 20};
    struct hc_cache *c;
    const char *const *names = hc_policy_names();
    int n = 0;

    conf.block_size = 32 * KB;
    assert_int_equal(hc_create(&conf, &c), -EINVAL);
    conf.block_size = 32u << 20;
    assert_int_equal(hc_create(&conf, &c), -EINVAL);
    conf.block_size = 64 * KB + 512;
    assert_int_equal(hc_create(&conf, &c), -EINVAL);
    conf.block_size = 68 * KB; /* a multiple of 4 KiB is fine */
    assert_int_equal(hc_create(&conf, &c), 0);
    assert_int_equal(hc_block_size(c), 68 * KB);
    hc_destroy(c);
    conf.block_size = BS;
    conf.mem_policy = "arc";
    assert_int_equal(hc_create(&conf, &c), -EINVAL);
    conf.mem_policy = "tinylfu";
    conf.mem_shards = 6;
    assert_int_equal(hc_create(&conf, &c), -EINVAL);
    conf.mem_shards = 0;
    conf.mem_capacity = BS; /* not even two blocks */
    assert_int_equal(hc_create(&conf, &c), -EINVAL);
    conf.mem_capacity = 0;
    assert_int_equal(hc_create(&conf, &c), -EINVAL);
    conf.mem_capacity = 16u << 20;
    conf.write_mode = (enum hc_write_mode)7;
    assert_int_equal(hc_create(&conf, &c), -EINVAL);
    conf.write_mode = HC_WRITE_ON_INSERT;
    assert_int_equal(hc_create(NULL, &c), -EINVAL);
    conf.block_size = 0; /* default 1 MiB */
    assert_int_equal(hc_create(&conf, &c), 0);
    assert_int_equal(hc_block_size(c), HC_BLOCK_SIZE_DEFAULT);
    hc_destroy(c);
    hc_destroy(NULL);
    for (; names[n]; n++)
        assert_non_null(hc_policy_find(names[n]));
    assert_int_equal(n, 4);
}

/* ---- single flight ---- */

#define NTHREADS 32

struct sf_arg {
    struct hc_cache *c;
    struct origin *o;
    pthread_barrier_t *bar;
    unsigned id;
    int rc;
    enum hc_source src;
    const void *data;
};

static void *sf_thread(void *p)
{
    struct sf_arg *a = p;
    char key[32];
    int klen = key_of(a->id, key);
    struct oreq r = {.o = a->o, .id = a->id};
    struct hc_entry *e = NULL;

    pthread_barrier_wait(a->bar);
    a->rc = hc_fetch_sync(a->c, key, (size_t)klen, 0, fetcher, &r, &e, &a->src);
    if (e) {
        a->data = hc_entry_data(e);
        if (!bytes_are(e, a->id, BS))
            a->rc = -EBADMSG;
        hc_entry_put(e);
    }
    return NULL;
}

/* 32 threads miss one key at once; the origin holds the request until all have joined. */
static void run_single_flight_src(struct hc_cache *c, struct origin *o, unsigned id, int expect_rc,
                                  uint64_t merges_before, enum hc_source src, bool all_merge)
{
    pthread_barrier_t bar;
    pthread_t th[NTHREADS];
    struct sf_arg args[NTHREADS];
    unsigned origin_src = 0, merged = 0;

    o->wait_merges_cache = all_merge ? c : NULL;
    o->wait_merges = merges_before + NTHREADS - 1;
    pthread_barrier_init(&bar, NULL, NTHREADS);
    for (int i = 0; i < NTHREADS; i++) {
        args[i] = (struct sf_arg){.c = c, .o = o, .bar = &bar, .id = id};
        assert_int_equal(pthread_create(&th[i], NULL, sf_thread, &args[i]), 0);
    }
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&bar);
    for (int i = 0; i < NTHREADS; i++) {
        assert_int_equal(args[i].rc, expect_rc);
        origin_src += args[i].src == src;
        merged += args[i].src == HC_SRC_MERGED;
        if (expect_rc == 0)
            assert_ptr_equal(args[i].data, args[0].data); /* one buffer, no copies */
        if (!all_merge) /* the rest came after the flight, from memory */
            assert_true(args[i].src == src || args[i].src == HC_SRC_MERGED ||
                        args[i].src == HC_SRC_MEMORY);
    }
    assert_int_equal(origin_src, 1);
    if (all_merge)
        assert_int_equal(merged, NTHREADS - 1);
    o->wait_merges_cache = NULL;
}

static void run_single_flight(struct hc_cache *c, struct origin *o, unsigned id, int expect_rc,
                              uint64_t merges_before)
{
    run_single_flight_src(c, o, id, expect_rc, merges_before, HC_SRC_ORIGIN, true);
}

static void test_single_flight(void **state)
{
    struct hc_cache *c = mem_cache(16u << 20, NULL);
    struct origin o;
    struct hc_stats st;
    enum hc_source src;

    origin_start(&o, true);
    run_single_flight(c, &o, 7, 0, 0);
    assert_int_equal(atomic_load(&o.calls), 1);
    hc_get_stats(c, &st);
    assert_int_equal(st.origin_fetches, 1);
    assert_int_equal(st.origin_bytes, BS);
    assert_int_equal(st.merges, NTHREADS - 1);
    /* Now it is in memory: no origin call. */
    assert_int_equal(fetch_id(c, &o, 7, 0, &src, BS), 0);
    assert_int_equal(src, HC_SRC_MEMORY);
    assert_int_equal(atomic_load(&o.calls), 1);

    /* Errors reach every waiter, and nothing is cached: the next fetch retries. */
    o.fail = -EIO;
    run_single_flight(c, &o, 8, -EIO, NTHREADS - 1);
    assert_int_equal(atomic_load(&o.calls), 2);
    hc_get_stats(c, &st);
    assert_int_equal(st.origin_errors, 1);
    o.fail = 0;
    assert_int_equal(fetch_id(c, &o, 8, 0, &src, BS), 0);
    assert_int_equal(src, HC_SRC_ORIGIN);
    assert_int_equal(atomic_load(&o.calls), 3);
    origin_stop(&o);
    hc_destroy(c);
}

/* ---- memory bound ---- */

struct stream {
    struct hc_cache *c;
    struct origin *o;
    struct oreq *reqs;
    unsigned first, n;
    bool pin; /* keep every entry (readers pin the budget) */
    pthread_mutex_t lock;
    unsigned done, bad;
    struct hc_entry **pinned;
};

static void stream_done(int result, struct hc_entry *e, enum hc_source src, void *arg)
{
    struct oreq *r = arg;
    struct stream *s = r->user;

    pthread_mutex_lock(&s->lock);
    if (result != 0 || !bytes_are(e, r->id, BS))
        s->bad++;
    if (s->pin && e)
        s->pinned[s->done] = e;
    else
        hc_entry_put(e);
    s->done++;
    pthread_mutex_unlock(&s->lock);
}

struct issuer {
    struct stream *s;
    unsigned from, to;
};

static void *issue_thread(void *p)
{
    struct issuer *is = p;
    struct stream *s = is->s;

    for (unsigned i = is->from; i < is->to; i++) {
        char key[32];
        int klen = key_of(s->first + i, key);
        /* One oreq for the fetcher, one for done (which needs the id and the stream). */
        struct oreq *r = &s->reqs[i];
        *r = (struct oreq){.o = s->o, .id = s->first + i};
        struct oreq *d = &s->reqs[s->n + i];
        *d = (struct oreq){.o = s->o, .id = s->first + i, .user = s};
        assert_int_equal(hc_fetch(s->c, key, (size_t)klen, 0, fetcher, r, stream_done, d), 0);
    }
    return NULL;
}

struct monitor {
    struct hc_cache *c;
    _Atomic bool stop;
    uint64_t max_used;
};

static void *monitor_thread(void *p)
{
    struct monitor *m = p;
    struct hc_stats st;

    while (!atomic_load(&m->stop)) {
        hc_get_stats(m->c, &st);
        m->max_used = CMN_MAX(m->max_used, st.mem_used);
        usleep(200);
    }
    return NULL;
}

/* 4 threads issue @n fetches of distinct keys without waiting; the origin answers slowly
 * from one thread. @return max mem_used seen. */
static uint64_t run_stream(struct hc_cache *c, struct origin *o, unsigned first, unsigned n,
                           bool pin, struct stream *s)
{
    struct monitor mon = {.c = c};
    pthread_t th[4], mt;
    struct issuer is[4];

    *s = (struct stream){.c = c, .o = o, .first = first, .n = n, .pin = pin};
    pthread_mutex_init(&s->lock, NULL);
    s->reqs = calloc(2 * n, sizeof(*s->reqs));
    s->pinned = calloc(n, sizeof(*s->pinned));
    assert_non_null(s->reqs);
    assert_non_null(s->pinned);
    assert_int_equal(pthread_create(&mt, NULL, monitor_thread, &mon), 0);
    for (unsigned t = 0; t < 4; t++) {
        is[t] = (struct issuer){.s = s, .from = n * t / 4, .to = n * (t + 1) / 4};
        assert_int_equal(pthread_create(&th[t], NULL, issue_thread, &is[t]), 0);
    }
    for (unsigned t = 0; t < 4; t++)
        pthread_join(th[t], NULL);
    for (int i = 0; i < 20000; i++) {
        pthread_mutex_lock(&s->lock);
        bool all = s->done == n;
        pthread_mutex_unlock(&s->lock);
        if (all)
            break;
        usleep(1000);
    }
    atomic_store(&mon.stop, true);
    pthread_join(mt, NULL);
    assert_int_equal(s->done, n);
    assert_int_equal(s->bad, 0);
    return mon.max_used;
}

static void stream_free(struct stream *s)
{
    for (unsigned i = 0; s->pin && i < s->done; i++)
        hc_entry_put(s->pinned[i]);
    free(s->pinned);
    free(s->reqs);
    pthread_mutex_destroy(&s->lock);
}

static void test_memory_bound(void **state)
{
    const uint64_t mem = 4u << 20;
    /* The documented slack: 4 flights that always run plus one block per racing thread
     * (4 issuers, the origin thread). */
    const uint64_t slack = (4 + 5) * (uint64_t)BS;
    struct hc_cache *c = mem_cache(mem, "lru");
    struct origin o;
    struct stream s;
    struct hc_stats st;
    uint64_t max_used;

    origin_start(&o, true);
    o.delay_us = 100;
    max_used = run_stream(c, &o, 0, 1500, false, &s);
    stream_free(&s);
    hc_get_stats(c, &st);
    assert_int_equal(st.origin_fetches, 1500);
    assert_int_equal(atomic_load(&o.calls), 1500);
    assert_true(max_used <= mem + slack);
    assert_true(max_used > mem / 2); /* the budget was actually used */
    assert_true(st.mem_used <= mem);
    assert_int_equal(st.inflight_bytes, 0);
    assert_int_equal(st.mem_limit, mem);
    assert_int_equal(st.mem_overcommits, 0);

    /* Readers pin every block: the cache still completes every fetch (a few flights
     * always run) and counts the starts it made over budget. */
    max_used = run_stream(c, &o, 10000, 200, true, &s);
    hc_get_stats(c, &st);
    assert_true(st.mem_overcommits > 0);
    stream_free(&s);
    hc_get_stats(c, &st);
    assert_true(st.mem_used <= mem);
    origin_stop(&o);
    hc_destroy(c);
}

/* ---- insert, remove, NO_ORIGIN, prefetch, short values ---- */

static void test_insert_remove_no_origin(void **state)
{
    struct hc_cache *c = mem_cache(4u << 20, "sieve");
    struct origin o;
    enum hc_source src;
    struct hc_entry *e;
    struct hc_stats st;
    char key[32], *big;
    int klen;
    unsigned char data[5000];

    origin_start(&o, false);
    klen = key_of(1, key);
    memset(data, pattern(1), sizeof(data));
    assert_int_equal(hc_insert(c, key, (size_t)klen, data, sizeof(data), 0), 0);
    e = hc_get(c, key, (size_t)klen);
    assert_non_null(e);
    assert_true(bytes_are(e, 1, sizeof(data)));
    hc_entry_put(e);
    assert_int_equal(fetch_id(c, &o, 1, HC_FETCH_NO_ORIGIN, &src, sizeof(data)), 0);
    assert_int_equal(src, HC_SRC_MEMORY);
    /* Absent and NO_ORIGIN: -ENOENT, the origin is never asked. */
    assert_int_equal(fetch_id(c, &o, 2, HC_FETCH_NO_ORIGIN, &src, 0), -ENOENT);
    assert_int_equal(atomic_load(&o.calls), 0);
    assert_int_equal(hc_remove(c, key, (size_t)klen), 0);
    assert_int_equal(hc_remove(c, key, (size_t)klen), -ENOENT);
    assert_null(hc_get(c, key, (size_t)klen));
    assert_int_equal(fetch_id(c, &o, 1, HC_FETCH_NO_ORIGIN, &src, 0), -ENOENT);

    big = calloc(1, BS + 1);
    assert_non_null(big);
    assert_int_equal(hc_insert(c, key, (size_t)klen, big, BS + 1, 0), -E2BIG);
    free(big);
    assert_int_equal(hc_insert(c, key, 0, data, 1, 0), -EINVAL);
    assert_int_equal(hc_fetch(c, key, (size_t)klen, 0, NULL, NULL, NULL, NULL), -EINVAL);
    assert_null(hc_get(c, key, 0));

    /* DISK_ONLY without a disk lands in memory (low priority). */
    assert_int_equal(hc_insert(c, key, (size_t)klen, data, sizeof(data), HC_INSERT_DISK_ONLY), 0);
    e = hc_get(c, key, (size_t)klen);
    assert_non_null(e);
    hc_entry_put(e);

    /* A prefetch in memory-only mode is cached (low priority); a read then hits. */
    assert_int_equal(fetch_id(c, &o, 3, HC_FETCH_PREFETCH, &src, BS), 0);
    assert_int_equal(src, HC_SRC_ORIGIN);
    assert_int_equal(fetch_id(c, &o, 3, 0, &src, BS), 0);
    assert_int_equal(src, HC_SRC_MEMORY);

    /* A short value (an object's tail) is kept in a small buffer, not a whole block. */
    hc_get_stats(c, &st);
    uint64_t before = st.mem_used;
    o.len = 1000;
    assert_int_equal(fetch_id(c, &o, 4, 0, &src, 1000), 0);
    hc_get_stats(c, &st);
    assert_int_equal(st.mem_used - before, 4096);
    /* A fetcher that claims more than the block: -EIO, not a buffer overrun. */
    o.len = BS + 1;
    assert_int_equal(fetch_id(c, &o, 5, 0, &src, 0), -EIO);
    o.len = 0;
    hc_get_stats(c, &st);
    assert_int_equal(st.origin_errors, 1);
    assert_int_equal(st.origin_fetches, 3);
    origin_stop(&o);
    hc_destroy(c);
}

/* ---- with a disk tier ---- */

static void t_path(char *path, size_t cap, const char *name)
{
    const char *dir = getenv("TIERFS_TEST_TMPDIR");

    snprintf(path, cap, "%s/hccoop-%d-%s.dev", dir ? dir : "/tmp", (int)getpid(), name);
    unlink(path);
}

#define DISK_BYTES (32u << 20)
#define REGION (1u << 20)

static struct hc_conf disk_conf(const char *path, enum hc_write_mode wm, uint64_t mem)
{
    return (struct hc_conf){.block_size = BS,
                            .mem_capacity = mem,
                            .mem_policy = "lru",
                            .disk_path = path,
                            .disk_capacity = DISK_BYTES,
                            .direct_io = true,
                            .io_engine = "psync",
                            .io_depth = 4,
                            .region_size = REGION,
                            .write_mode = wm,
                            .identity = "test"};
}

/* O_DIRECT where the filesystem has it. */
static struct hc_cache *disk_cache_conf(struct hc_conf *conf)
{
    struct hc_cache *c;

    if (hc_create(conf, &c) < 0) {
        conf->direct_io = false;
        assert_int_equal(hc_create(conf, &c), 0);
    }
    return c;
}

static struct hc_cache *disk_cache(const char *path, enum hc_write_mode wm, uint64_t mem)
{
    struct hc_conf conf = disk_conf(path, wm, mem);

    return disk_cache_conf(&conf);
}

static struct dev *t_dev(const char *path)
{
    struct dev_conf dc = {.path = path, .size = DISK_BYTES, .direct_io = true, .create = true};
    struct dev *dev = NULL;

    if (dev_open(&dc, &dev) < 0) {
        dc.direct_io = false;
        assert_int_equal(dev_open(&dc, &dev), 0);
    }
    return dev;
}

static void test_disk_promote_remount(void **state)
{
    char path[512];
    struct hc_cache *c;
    struct origin o;
    struct hc_stats st;
    enum hc_source src;
    char key[32];
    int klen;

    t_path(path, sizeof(path), "promote");
    origin_start(&o, false);
    c = disk_cache(path, HC_WRITE_ON_INSERT, 8u << 20);
    for (unsigned id = 0; id < 10; id++)
        assert_int_equal(fetch_id(c, &o, id, 0, &src, BS), 0);
    hc_get_stats(c, &st);
    assert_int_equal(st.disk_inserts, 10);
    assert_true(st.mem_limit == 8u << 20 && st.disk_capacity > 0);
    /* A prefetch goes to the disk and, as low priority, to memory (its reader hits). */
    assert_int_equal(fetch_id(c, &o, 20, HC_FETCH_PREFETCH, &src, BS), 0);
    klen = key_of(20, key);
    struct hc_entry *pe = hc_get(c, key, (size_t)klen);
    assert_non_null(pe);
    hc_entry_put(pe);
    hc_get_stats(c, &st);
    assert_int_equal(st.disk_inserts, 11);
    assert_int_equal(hc_flush(c), 0);
    hc_destroy(c);
    assert_int_equal(atomic_load(&o.calls), 11);

    /* Remount: memory is empty, the disk tier recovered its index. */
    c = disk_cache(path, HC_WRITE_ON_INSERT, 8u << 20);
    hc_get_stats(c, &st);
    assert_int_equal(st.disk_entries, 11);
    assert_int_equal(fetch_id(c, &o, 3, 0, &src, BS), 0);
    assert_int_equal(src, HC_SRC_DISK);
    assert_int_equal(fetch_id(c, &o, 3, 0, &src, BS), 0);
    assert_int_equal(src, HC_SRC_MEMORY); /* promoted */
    assert_int_equal(fetch_id(c, &o, 20, HC_FETCH_NO_ORIGIN, &src, BS), 0);
    assert_int_equal(src, HC_SRC_DISK);
    assert_int_equal(fetch_id(c, &o, 99, HC_FETCH_NO_ORIGIN, &src, 0), -ENOENT);
    klen = key_of(5, key);
    assert_int_equal(hc_remove(c, key, (size_t)klen), 0);
    assert_int_equal(fetch_id(c, &o, 5, HC_FETCH_NO_ORIGIN, &src, 0), -ENOENT);
    assert_int_equal(atomic_load(&o.calls), 11);
    /* 32 threads miss memory on a disk-resident key: one disk read serves them all. */
    hc_get_stats(c, &st);
    uint64_t hits = st.disk_hits;
    run_single_flight_src(c, &o, 6, 0, st.merges, HC_SRC_DISK, false);
    hc_get_stats(c, &st);
    assert_int_equal(st.disk_hits, hits + 1);
    assert_int_equal(atomic_load(&o.calls), 11);
    origin_stop(&o);
    hc_destroy(c);
    unlink(path);
}

static void test_disk_write_on_evict(void **state)
{
    char path[512];
    struct hc_cache *c;
    struct origin o;
    struct hc_stats st;
    enum hc_source src;
    unsigned on_disk = 0;

    t_path(path, sizeof(path), "evict");
    origin_start(&o, false);
    /* 4 MiB: 1 MiB kept for the write queue (one region) and 328 KiB for 4 disk reads;
     * 41 blocks of memory tier. */
    c = disk_cache(path, HC_WRITE_ON_EVICT, 4u << 20);
    for (unsigned id = 0; id < 10; id++)
        assert_int_equal(fetch_id(c, &o, id, 0, &src, BS), 0);
    hc_get_stats(c, &st);
    assert_int_equal(st.disk_inserts, 0); /* nothing evicted, nothing written */
    for (unsigned id = 10; id < 100; id++)
        assert_int_equal(fetch_id(c, &o, id, 0, &src, BS), 0);
    hc_get_stats(c, &st);
    assert_true(st.mem_evictions >= 40);
    assert_true(st.disk_inserts > 0);
    assert_int_equal(st.disk_inserts + st.admission_drops, st.mem_evictions);
    assert_true(st.mem_used <= 4u << 20);
    for (unsigned id = 0; id < 20; id++) {
        if (fetch_id(c, &o, id, HC_FETCH_NO_ORIGIN, &src, BS) == 0) {
            assert_true(src == HC_SRC_DISK || src == HC_SRC_MEMORY);
            on_disk += src == HC_SRC_DISK;
        }
    }
    assert_true(on_disk > 0);
    /* Disk hits promoted blocks into a full tier: the evicted entries' buffers wait in the
     * pool, which is bounded by 16 blocks and 1/16 of the tier (less than the budget). */
    hc_get_stats(c, &st);
    assert_true(st.pool_bytes > 0);
    assert_true(st.pool_bytes <= 64ull * BS && st.pool_bytes <= st.mem_limit / 16);
    assert_int_equal(st.pool_bytes % BS, 0);
    assert_int_equal(atomic_load(&o.calls), 100);
    origin_stop(&o);
    hc_destroy(c);
    unlink(path);
}

/* Collects the messages logged (as much as fits). */
struct log_cap {
    char msg[4096];
    size_t len;
};

static void log_cap_sink(int level, const char *msg, void *arg)
{
    struct log_cap *l = arg;
    int n = snprintf(l->msg + l->len, sizeof(l->msg) - l->len, "%s\n", msg);

    (void)level;
    if (n > 0)
        l->len = CMN_MIN(l->len + (size_t)n, sizeof(l->msg) - 1);
}

/* Write-on-evict: blocks that never left memory reach the disk at hc_flush and at
 * hc_destroy, so a remount finds all of them there. 30 blocks: more than the write queue
 * (one 1 MiB region, 15 blocks), so the pass has to wait for it to drain. */
static void test_disk_write_on_evict_close(void **state)
{
    enum { N = 30 };
    char path[512];
    struct hc_cache *c;
    struct origin o;
    struct hc_stats st;
    enum hc_source src;

    t_path(path, sizeof(path), "evclose");
    origin_start(&o, false);
    c = disk_cache(path, HC_WRITE_ON_EVICT, 4u << 20); /* 41 blocks of memory tier */
    for (unsigned id = 0; id < N / 2; id++)
        assert_int_equal(fetch_id(c, &o, id, 0, &src, BS), 0);
    assert_int_equal(hc_flush(c), 0);
    hc_get_stats(c, &st);
    assert_int_equal(st.mem_evictions, 0);
    assert_int_equal(st.disk_inserts, N / 2);
    assert_int_equal(hc_flush(c), 0); /* nothing new: nothing written twice */
    hc_get_stats(c, &st);
    assert_int_equal(st.disk_inserts, N / 2);
    for (unsigned id = N / 2; id < N; id++)
        assert_int_equal(fetch_id(c, &o, id, 0, &src, BS), 0);
    int level = tlog_get_level();
    struct log_cap *cap = calloc(1, sizeof(*cap));
    assert_non_null(cap);
    tlog_set_sink(log_cap_sink, cap);
    tlog_set_level(TLOG_INFO);
    hc_destroy(c);
    tlog_set_sink(NULL, NULL);
    tlog_set_level(level);
    assert_non_null(strstr(cap->msg, "closing: 15 memory-only blocks ("));
    free(cap);

    c = disk_cache(path, HC_WRITE_ON_EVICT, 4u << 20);
    hc_get_stats(c, &st);
    assert_int_equal(st.disk_entries, N);
    for (unsigned id = 0; id < N; id++) {
        assert_int_equal(fetch_id(c, &o, id, HC_FETCH_NO_ORIGIN, &src, BS), 0);
        assert_int_equal(src, HC_SRC_DISK);
    }
    hc_get_stats(c, &st);
    assert_int_equal(st.disk_hits, N);
    assert_int_equal(atomic_load(&o.calls), N);
    origin_stop(&o);
    hc_destroy(c);
    unlink(path);
}

/* ... and a disk whose writes fail does not hold up hc_destroy (nor hc_flush): the pass
 * stops at the first failed region write. */
static void test_disk_write_on_evict_close_eio(void **state)
{
    enum { N = 40 };
    char path[512];
    struct hc_conf conf;
    struct hc_cache *c;
    struct dev *fdev;
    unsigned char *data = malloc(BS);
    uint64_t t0;
    char key[32];

    assert_non_null(data);
    memset(data, 0x5a, BS);
    t_path(path, sizeof(path), "evclose-eio");
    assert_int_equal(dev_fault_wrap(t_dev(path), &fdev), 0);
    conf = disk_conf(NULL, HC_WRITE_ON_EVICT, 4u << 20);
    conf.disk_dev = fdev;
    assert_int_equal(hc_create(&conf, &c), 0);
    for (unsigned id = 0; id < N; id++) {
        int klen = key_of(id, key);
        assert_int_equal(hc_insert(c, key, (size_t)klen, data, BS, 0), 0);
    }
    dev_fault_set(fdev, &(struct dev_fault_conf){
                            .kind = DEV_FAULT_EIO_WRITE, .countdown = 1, .repeat = UINT32_MAX});
    t0 = cmn_now_ms();
    assert_int_equal(hc_flush(c), -EIO);
    hc_destroy(c);
    assert_true(cmn_now_ms() - t0 < 5000);
    free(data);
    unlink(path);
}

/* A device whose writes take @delay_us: the disk falls behind. */
struct slow_dev {
    struct dev base;
    struct dev *inner;
    unsigned delay_us;
};

static ssize_t slow_pread(struct dev *d, void *buf, size_t len, uint64_t off)
{
    struct slow_dev *s = (struct slow_dev *)d;
    return s->inner->ops->pread(s->inner, buf, len, off);
}

static ssize_t slow_pwrite(struct dev *d, const void *buf, size_t len, uint64_t off)
{
    struct slow_dev *s = (struct slow_dev *)d;
    usleep(s->delay_us);
    return s->inner->ops->pwrite(s->inner, buf, len, off);
}

static int slow_flush(struct dev *d)
{
    return dev_flush(((struct slow_dev *)d)->inner);
}

static int slow_fd(struct dev *d)
{
    return -1;
}

static void slow_destroy(struct dev *d)
{
    dev_close(((struct slow_dev *)d)->inner);
    free(d);
}

static const struct dev_ops slow_ops = {
    .version = 1,
    .name = "slow",
    .pread = slow_pread,
    .pwrite = slow_pwrite,
    .flush = slow_flush,
    .fd = slow_fd,
    .destroy = slow_destroy,
};

/* A write-on-insert cache on a file at @path behind a device slowed by @delay_us per IO,
 * with a write queue of one region: the disk falls behind and writes are dropped. */
static struct hc_cache *slow_cache(const char *path, unsigned delay_us)
{
    struct slow_dev *sd = calloc(1, sizeof(*sd));
    struct hc_conf conf;
    struct hc_cache *c;

    assert_non_null(sd);
    sd->inner = t_dev(path);
    sd->base = *sd->inner;
    sd->base.ops = &slow_ops;
    sd->delay_us = delay_us;
    conf = disk_conf(NULL, HC_WRITE_ON_INSERT, 8u << 20);
    conf.disk_dev = &sd->base;
    conf.write_queue_bytes = REGION;
    assert_int_equal(hc_create(&conf, &c), 0);
    return c;
}

static void test_disk_admission_drops(void **state)
{
    char path[512];
    struct hc_cache *c;
    struct hc_stats st;
    unsigned char *data = malloc(BS);
    uint64_t t0, elapsed;
    char key[32];

    assert_non_null(data);
    t_path(path, sizeof(path), "slow");
    c = slow_cache(path, 100000);
    memset(data, 0xab, BS);
    /* 300 blocks = 19 regions; waiting for the device would take 1.9 s or more. */
    t0 = cmn_now_ms();
    for (unsigned id = 0; id < 300; id++) {
        int klen = key_of(id, key);
        assert_int_equal(hc_insert(c, key, (size_t)klen, data, BS, HC_INSERT_DISK_ONLY), 0);
    }
    elapsed = cmn_now_ms() - t0;
    hc_get_stats(c, &st);
    assert_true(st.admission_drops > 0);
    assert_true(st.disk_inserts > 0);
    assert_int_equal(st.disk_inserts + st.admission_drops, 300);
    assert_true(elapsed < 1000);
    assert_true(st.mem_used <= 8u << 20);
    hc_destroy(c);
    free(data);
    unlink(path);
}

/* Write-on-insert on a disk that falls behind: blocks whose write was dropped live only in
 * memory; hc_destroy writes them, so the next mount finds every block on the disk. */
static void test_disk_dropped_writes_spilled_at_close(void **state)
{
    enum { N = 60 };
    char path[512];
    struct hc_cache *c;
    struct hc_stats st;
    struct origin o;
    enum hc_source src;
    unsigned char *data = malloc(BS);
    char key[32];

    assert_non_null(data);
    t_path(path, sizeof(path), "dropspill");
    c = slow_cache(path, 50000); /* 8 MiB of memory: the N blocks fit */
    for (unsigned id = 0; id < N; id++) {
        int klen = key_of(id, key);
        memset(data, pattern(id), BS);
        assert_int_equal(hc_insert(c, key, (size_t)klen, data, BS, 0), 0);
    }
    hc_get_stats(c, &st);
    assert_true(st.admission_drops > 0); /* the case under test happened */
    assert_int_equal(st.mem_evictions, 0);
    hc_destroy(c);

    origin_start(&o, false);
    c = disk_cache(path, HC_WRITE_ON_INSERT, 8u << 20);
    hc_get_stats(c, &st);
    assert_int_equal(st.disk_entries, N);
    for (unsigned id = 0; id < N; id++) {
        assert_int_equal(fetch_id(c, &o, id, HC_FETCH_NO_ORIGIN, &src, BS), 0);
        assert_int_equal(src, HC_SRC_DISK);
    }
    assert_int_equal(atomic_load(&o.calls), 0);
    origin_stop(&o);
    hc_destroy(c);
    free(data);
    unlink(path);
}

static void test_disk_eio_goes_to_origin(void **state)
{
    char path[512];
    struct hc_conf conf;
    struct hc_cache *c;
    struct dev *fdev;
    struct origin o;
    struct hc_stats st;
    enum hc_source src;

    t_path(path, sizeof(path), "eio");
    origin_start(&o, false);
    c = disk_cache(path, HC_WRITE_ON_INSERT, 8u << 20);
    for (unsigned id = 0; id < 4; id++)
        assert_int_equal(fetch_id(c, &o, id, 0, &src, BS), 0);
    assert_int_equal(hc_flush(c), 0);
    hc_destroy(c);

    assert_int_equal(dev_fault_wrap(t_dev(path), &fdev), 0);
    conf = disk_conf(NULL, HC_WRITE_ON_INSERT, 8u << 20);
    conf.disk_dev = fdev;
    assert_int_equal(hc_create(&conf, &c), 0);
    hc_get_stats(c, &st);
    assert_int_equal(st.disk_entries, 4);
    dev_fault_set(fdev, &(struct dev_fault_conf){
                            .kind = DEV_FAULT_EIO_READ, .countdown = 1, .repeat = UINT32_MAX});
    assert_int_equal(fetch_id(c, &o, 1, 0, &src, BS), 0);
    assert_int_equal(src, HC_SRC_ORIGIN); /* the read failed: a miss, then the origin */
    assert_int_equal(atomic_load(&o.calls), 5);
    assert_int_equal(fetch_id(c, &o, 2, HC_FETCH_NO_ORIGIN, &src, 0), -ENOENT);
    hc_get_stats(c, &st);
    assert_true(st.disk_read_errors >= 1);
    dev_fault_set(fdev, &(struct dev_fault_conf){.kind = DEV_FAULT_NONE});
    assert_int_equal(fetch_id(c, &o, 3, 0, &src, BS), 0);
    assert_int_equal(src, HC_SRC_DISK);
    origin_stop(&o);
    hc_destroy(c);
    unlink(path);
}

/* The same bound with a disk tier: region buffers of the write queue are in the budget. */
static void test_disk_memory_bound(void **state)
{
    const uint64_t mem = 4u << 20;
    /* As in memory-only mode: a written region's charge is returned before its
     * write-queue slot (disk.c), so no region is ever charged beyond the queue. */
    const uint64_t slack = (4 + 5) * (uint64_t)BS;
    char path[512];
    struct hc_cache *c;
    struct origin o;
    struct stream s;
    struct hc_stats st;
    uint64_t max_used;

    t_path(path, sizeof(path), "bound");
    c = disk_cache(path, HC_WRITE_ON_INSERT, mem);
    origin_start(&o, true);
    o.delay_us = 100;
    max_used = run_stream(c, &o, 0, 600, false, &s);
    stream_free(&s);
    hc_get_stats(c, &st);
    assert_int_equal(st.origin_fetches, 600);
    assert_true(st.disk_inserts > 0);
    assert_true(max_used <= mem + slack);
    assert_true(st.mem_used <= mem);
    origin_stop(&o);
    hc_destroy(c);
    unlink(path);
}

/* A working set that fits the memory tier stays in memory with a disk tier too: the disk's
 * region and read buffers come out of its own reserve, counted once (they used to be
 * charged on top of the reserve, so an open region squeezed the tier to a few blocks). */
static void test_disk_working_set_fits(void **state)
{
    /* 3 MiB: one 1 MiB region and 4 reads of ~75 KiB for the disk, ~1.7 MiB (26 blocks)
     * for the tier; 16 blocks fit, however full the open region is. */
    const uint64_t mem = 3u << 20;
    const unsigned nkeys = 16;
    char path[512];
    struct hc_cache *c;
    struct origin o;
    struct hc_stats st;
    enum hc_source src;

    t_path(path, sizeof(path), "fits");
    origin_start(&o, false);
    c = disk_cache(path, HC_WRITE_ON_INSERT, mem);
    for (unsigned id = 0; id < nkeys; id++) {
        assert_int_equal(fetch_id(c, &o, id, 0, &src, BS), 0);
        assert_int_equal(src, HC_SRC_ORIGIN);
        if (id % 8 == 7) /* a write queue of one region: let none be dropped */
            assert_int_equal(hc_flush(c), 0);
    }
    /* One more block straight to the disk opens a region: its buffer stays charged. */
    unsigned char *data = malloc(BS);
    char key[32];
    int klen = key_of(1000, key);
    assert_non_null(data);
    memset(data, pattern(1000), BS);
    assert_int_equal(hc_insert(c, key, (size_t)klen, data, BS, HC_INSERT_DISK_ONLY), 0);
    free(data);
    hc_get_stats(c, &st);
    assert_int_equal(st.disk_inserts, nkeys + 1);
    assert_true(st.write_queue_bytes >= REGION);
    assert_true(hc_mem_budget(c) + REGION <= mem);
    for (unsigned pass = 0; pass < 3; pass++) {
        for (unsigned id = 0; id < nkeys; id++) {
            assert_int_equal(fetch_id(c, &o, id, 0, &src, BS), 0);
            assert_int_equal(src, HC_SRC_MEMORY);
        }
    }
    hc_get_stats(c, &st);
    assert_int_equal(st.mem_hits, 3 * nkeys);
    assert_int_equal(st.mem_evictions, 0);
    assert_int_equal(st.mem_overcommits, 0);
    assert_int_equal(st.mem_limit, mem);
    assert_true(st.mem_used >= (uint64_t)nkeys * BS + REGION); /* the region buffer counts */
    assert_true(st.mem_used <= mem);
    assert_int_equal(atomic_load(&o.calls), nkeys);
    origin_stop(&o);
    hc_destroy(c);
    unlink(path);
}

/* A sequential reader (HC_FETCH_STREAM) re-reading each block it fetched, as the kernel's
 * split read-ahead does: its hits do not make the blocks ordinary, so a scan much smaller
 * than the tier is held to the unread quota (the tier does not grow by the scan) while
 * the same reads without the flag keep every block; a touching hit still promotes. */
static void test_stream_scan(void **state)
{
    unsigned held = 0;
    char key[32], path[512];
    enum hc_source src;
    struct hc_stats st;
    struct origin o;

    t_path(path, sizeof(path), "stream");
    origin_start(&o, false);
    struct hc_cache *c = disk_cache(path, HC_WRITE_ON_INSERT, 16u << 20);
    /* One block read by a touching fetch first: ordinary from then on. */
    assert_int_equal(fetch_id(c, &o, 1000, HC_FETCH_STREAM, &src, BS), 0);
    assert_int_equal(src, HC_SRC_ORIGIN);
    assert_int_equal(fetch_id(c, &o, 1000, 0, &src, BS), 0);
    assert_int_equal(src, HC_SRC_MEMORY);
    for (unsigned id = 0; id < 100; id++) { /* 6.25 MiB, well under the tier */
        assert_int_equal(fetch_id(c, &o, id, HC_FETCH_STREAM, &src, BS), 0);
        assert_int_equal(src, HC_SRC_ORIGIN);
        assert_int_equal(fetch_id(c, &o, id, HC_FETCH_STREAM, &src, BS), 0);
        assert_int_equal(src, HC_SRC_MEMORY); /* the second read hits, once fetched */
        if (id % 8 == 7)
            assert_int_equal(hc_flush(c), 0); /* let no disk write be dropped */
    }
    assert_int_equal(atomic_load(&o.calls), 101);
    hc_get_stats(c, &st);
    assert_true(st.mem_evictions >= 50);
    uint64_t ev = st.mem_evictions;
    for (unsigned id = 0; id < 100; id++) {
        struct hc_entry *e = hc_get(c, key, (size_t)key_of(id, key));
        held += e != NULL;
        hc_entry_put(e);
    }
    assert_true(held <= 40); /* an eighth of the tier, a few blocks of slack per shard */
    struct hc_entry *hot = hc_get(c, key, (size_t)key_of(1000, key));
    assert_non_null(hot); /* the scan did not push the touched block out */
    hc_entry_put(hot);
    /* What left memory is on the disk: a stream re-read costs no GET. */
    assert_int_equal(fetch_id(c, &o, 0, HC_FETCH_STREAM, &src, BS), 0);
    assert_int_equal(src, HC_SRC_DISK);
    /* The same reads without the flag: every block stays, nothing is evicted. */
    for (unsigned id = 200; id < 300; id++) {
        assert_int_equal(fetch_id(c, &o, id, 0, &src, BS), 0);
        assert_int_equal(fetch_id(c, &o, id, 0, &src, BS), 0);
        assert_int_equal(src, HC_SRC_MEMORY);
        if (id % 8 == 7)
            assert_int_equal(hc_flush(c), 0);
    }
    hc_get_stats(c, &st);
    assert_true(st.mem_evictions - ev <= 24); /* only unread prefetches go, if any */
    for (unsigned id = 200; id < 300; id++) {
        struct hc_entry *e = hc_get(c, key, (size_t)key_of(id, key));
        assert_non_null(e);
        hc_entry_put(e);
    }
    assert_int_equal(atomic_load(&o.calls), 201);
    origin_stop(&o);
    hc_destroy(c);
    unlink(path);
}

struct hc_count_box {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int n;
};

static void stream_done_box(int result, struct hc_entry *e, enum hc_source src, void *arg)
{
    struct hc_count_box *b = arg;

    assert_int_equal(result, 0);
    hc_entry_put(e);
    pthread_mutex_lock(&b->lock);
    b->n++;
    pthread_cond_signal(&b->cond);
    pthread_mutex_unlock(&b->lock);
}

/* Consecutive reads of a disk-resident block (a 1 MiB block read by 8 FUSE reads of
 * 128 KiB): one disk read, the rest hit memory (promoted), with the default policy. */
static void test_disk_hit_promoted_once(void **state)
{
    char path[512];
    struct hc_cache *c;
    struct hc_conf conf;
    struct origin o;
    struct hc_stats st;
    enum hc_source src;

    t_path(path, sizeof(path), "promote1");
    origin_start(&o, false);
    c = disk_cache(path, HC_WRITE_ON_INSERT, 8u << 20);
    for (unsigned id = 0; id < 40; id++) {
        assert_int_equal(fetch_id(c, &o, id, 0, &src, BS), 0);
        if (id % 8 == 7) /* the write queue (2 regions) must not drop any */
            assert_int_equal(hc_flush(c), 0);
    }
    assert_int_equal(hc_flush(c), 0);
    hc_get_stats(c, &st);
    assert_int_equal(st.disk_inserts, 40);
    hc_destroy(c);

    conf = disk_conf(path, HC_WRITE_ON_INSERT, 8u << 20);
    conf.mem_policy = NULL; /* the default (s3fifo), as the fs uses it */
    c = disk_cache_conf(&conf);
    for (unsigned id = 0; id < 40; id++) {
        for (unsigned i = 0; i < 8; i++) { /* a 1 MiB block read as 8 x 128 KiB */
            assert_int_equal(fetch_id(c, &o, id, 0, &src, BS), 0);
            assert_int_equal(src, i == 0 ? HC_SRC_DISK : HC_SRC_MEMORY);
        }
    }
    hc_get_stats(c, &st);
    assert_int_equal(st.disk_hits, 40);
    assert_int_equal(st.disk_bytes_read >= 40ull * BS && st.disk_bytes_read < 80ull * BS, 1);
    /* (32 threads at once on one disk-resident key: test_disk_promote_remount.) */
    assert_int_equal(atomic_load(&o.calls), 40);
    origin_stop(&o);
    hc_destroy(c);
    unlink(path);
}

/* ---- hc_fetch_range ---- */

/* Synchronous hc_fetch_range of @id's [@off, @off + @len); checks the bytes it got cover
 * the range. @return the result, *src, *eoff / *elen (the entry's offset and length). */
static int range_id(struct hc_cache *c, struct origin *o, unsigned id, unsigned flags, uint64_t off,
                    size_t len, enum hc_source *src, size_t *eoff, size_t *elen)
{
    struct oreq r = {.o = o, .id = id};
    struct hc_entry *e;
    char key[32];
    int klen = key_of(id, key);
    int rc = hc_fetch_range_sync(c, key, (size_t)klen, flags, off, len, fetcher, &r, &e, src);

    if (rc == 0) {
        const unsigned char *d = hc_entry_data(e);
        *eoff = hc_entry_off(e);
        *elen = hc_entry_len(e);
        assert_true(*eoff <= off && *eoff + *elen >= CMN_MIN(off + len, o->len ? o->len : BS));
        for (size_t i = 0; i < *elen; i++)
            assert_int_equal(d[i], pattern(id));
        hc_entry_put(e);
    } else {
        assert_null(e);
    }
    return rc;
}

/* Small ranges of disk-resident blocks read only their chunks and stay off the memory
 * tier; big ranges, memory hits, misses and compressed blocks give whole blocks. */
static void test_fetch_range(void **state)
{
    char path[512];
    struct hc_cache *c;
    struct hc_conf conf;
    struct origin o;
    struct hc_stats st;
    enum hc_source src;
    size_t eoff, elen;
    char key[32];

    t_path(path, sizeof(path), "range");
    origin_start(&o, false);
    o.len = BS - 1000; /* a tail shorter than the block */
    c = disk_cache(path, HC_WRITE_ON_INSERT, 8u << 20);
    for (unsigned id = 0; id < 4; id++)
        assert_int_equal(fetch_id(c, &o, id, 0, &src, BS - 1000), 0);
    assert_int_equal(hc_flush(c), 0);
    /* A memory hit: the whole block. */
    assert_int_equal(range_id(c, &o, 0, 0, 5000, 100, &src, &eoff, &elen), 0);
    assert_true(src == HC_SRC_MEMORY && eoff == 0 && elen == BS - 1000);
    hc_destroy(c);

    c = disk_cache(path, HC_WRITE_ON_INSERT, 8u << 20);
    for (int pass = 0; pass < 2; pass++) {
        assert_int_equal(range_id(c, &o, 1, 0, 5000, 100, &src, &eoff, &elen), 0);
        assert_true(src == HC_SRC_DISK && eoff == 4096 && elen == 4096);
        /* straddling two chunks; then the block's tail */
        assert_int_equal(range_id(c, &o, 1, 0, 8000, 300, &src, &eoff, &elen), 0);
        assert_true(src == HC_SRC_DISK && eoff == 4096 && elen == 8192);
        assert_int_equal(range_id(c, &o, 1, 0, BS - 1500, 4000, &src, &eoff, &elen), 0);
        assert_true(src == HC_SRC_DISK && eoff == BS - 4096 && elen == 4096 - 1000);
    }
    key_of(1, key);
    assert_null(hc_get(c, key, strlen(key))); /* never promoted */
    hc_get_stats(c, &st);
    assert_int_equal(st.disk_partial_hits, 6);
    assert_int_equal(st.disk_hits, 6);
    assert_int_equal(st.disk_partial_bytes, 4 * 4096 + 4 * 4096 - 2000);
    assert_int_equal(st.mem_misses, 7);                  /* and hc_get above */
    assert_int_equal(st.mem_used, st.write_queue_bytes); /* nothing held */

    /* More than a quarter of the block: the whole block, promoted. */
    assert_int_equal(range_id(c, &o, 2, 0, 0, BS / 4 + 1, &src, &eoff, &elen), 0);
    assert_true(src == HC_SRC_DISK && eoff == 0 && elen == BS - 1000);
    assert_int_equal(range_id(c, &o, 2, 0, 100, 10, &src, &eoff, &elen), 0);
    assert_true(src == HC_SRC_MEMORY && eoff == 0);
    /* A miss: the origin, the whole block; NO_ORIGIN misses. */
    assert_int_equal(range_id(c, &o, 9, 0, 100, 10, &src, &eoff, &elen), 0);
    assert_true(src == HC_SRC_ORIGIN && eoff == 0 && elen == BS - 1000);
    assert_int_equal(range_id(c, &o, 10, HC_FETCH_NO_ORIGIN, 100, 10, &src, &eoff, &elen), -ENOENT);
    hc_get_stats(c, &st);
    assert_int_equal(st.disk_partial_hits, 6);
    assert_int_equal(st.origin_fetches, 1); /* since the remount */
    hc_destroy(c);

    /* Compressed on the device (the test pattern compresses): a whole read, promoted. */
    unlink(path);
    conf = disk_conf(path, HC_WRITE_ON_INSERT, 8u << 20);
    conf.compression = true;
    c = disk_cache_conf(&conf);
    assert_int_equal(fetch_id(c, &o, 3, 0, &src, BS - 1000), 0);
    assert_int_equal(hc_flush(c), 0);
    hc_destroy(c);
    c = disk_cache_conf(&conf);
    assert_int_equal(range_id(c, &o, 3, 0, 5000, 100, &src, &eoff, &elen), 0);
    assert_true(src == HC_SRC_DISK && eoff == 0 && elen == BS - 1000);
    assert_int_equal(range_id(c, &o, 3, 0, 5000, 100, &src, &eoff, &elen), 0);
    assert_true(src == HC_SRC_MEMORY);
    hc_get_stats(c, &st);
    assert_int_equal(st.disk_partial_hits, 0);
    assert_int_equal(st.compressed_blocks, 0); /* (counted by the process that wrote it) */
    origin_stop(&o);
    hc_destroy(c);
    unlink(path);
}

/* HC_FETCH_IF_ABSENT: -EEXIST without a read when the key is in memory, on the disk or in
 * flight; otherwise an ordinary (prefetch) fetch. */
static void test_if_absent(void **state)
{
    char path[512];
    struct hc_cache *c;
    struct origin o;
    struct hc_stats st0, st;
    enum hc_source src;
    const unsigned pf = HC_FETCH_PREFETCH | HC_FETCH_IF_ABSENT;

    t_path(path, sizeof(path), "ifabsent");
    origin_start(&o, false);
    c = disk_cache(path, HC_WRITE_ON_INSERT, 8u << 20);
    assert_int_equal(fetch_id(c, &o, 1, pf, &src, BS), 0); /* nowhere: fetched */
    assert_int_equal(src, HC_SRC_ORIGIN);
    assert_int_equal(atomic_load(&o.calls), 1);
    hc_get_stats(c, &st0);
    assert_int_equal(fetch_id(c, &o, 1, pf, &src, 0), -EEXIST); /* in memory */
    assert_int_equal(hc_flush(c), 0);
    hc_destroy(c);
    c = disk_cache(path, HC_WRITE_ON_INSERT, 8u << 20);
    hc_get_stats(c, &st0);
    assert_int_equal(fetch_id(c, &o, 1, pf, &src, 0), -EEXIST); /* on the disk only */
    hc_get_stats(c, &st);
    assert_int_equal(st.disk_hits + st.disk_misses, st0.disk_hits + st0.disk_misses);
    assert_int_equal(st.disk_bytes_read, st0.disk_bytes_read);
    assert_int_equal(st.mem_hits, st0.mem_hits);
    assert_int_equal(atomic_load(&o.calls), 1);
    origin_stop(&o);

    /* In flight: a slow origin holds the first fetch; IF_ABSENT does not join it. */
    origin_start(&o, true);
    o.delay_us = 200000;
    char key[32];
    int klen = key_of(2, key);
    struct oreq r = {.o = &o, .id = 2};
    struct hc_count_box box = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
    struct hc_entry *e;
    assert_int_equal(hc_fetch(c, key, (size_t)klen, 0, fetcher, &r, stream_done_box, &box), 0);
    assert_int_equal(hc_fetch(c, key, (size_t)klen, pf, fetcher, &r, stream_done_box, &box),
                     -EEXIST);
    pthread_mutex_lock(&box.lock);
    while (box.n < 1)
        pthread_cond_wait(&box.cond, &box.lock);
    pthread_mutex_unlock(&box.lock);
    assert_int_equal(atomic_load(&o.calls), 1); /* this origin's first call */
    e = hc_get(c, key, (size_t)klen);
    assert_non_null(e);
    hc_entry_put(e);
    origin_stop(&o);
    hc_destroy(c);
    unlink(path);
}

/* HC_FETCH_NOT_IN_MEM (the fs's read-ahead from the disk tier): -EEXIST without a hit
 * for a key in memory; a disk-resident key is read and returned, not promoted when only
 * a prefetch asked; a key that is nowhere is -ENOENT with NO_ORIGIN. */
static void test_not_in_mem(void **state)
{
    char path[512];
    struct hc_cache *c;
    struct origin o;
    struct hc_stats st0, st;
    enum hc_source src;
    const unsigned ra = HC_FETCH_NO_ORIGIN | HC_FETCH_PREFETCH | HC_FETCH_NOT_IN_MEM;
    char key[32];
    int klen = key_of(1, key);

    t_path(path, sizeof(path), "notinmem");
    origin_start(&o, false);
    c = disk_cache(path, HC_WRITE_ON_INSERT, 8u << 20);
    assert_int_equal(fetch_id(c, &o, 1, 0, &src, BS), 0);
    hc_get_stats(c, &st0);
    assert_int_equal(fetch_id(c, &o, 1, ra, &src, 0), -EEXIST); /* in memory */
    hc_get_stats(c, &st);
    assert_int_equal(st.mem_hits, st0.mem_hits);
    assert_int_equal(hc_flush(c), 0);
    hc_destroy(c);

    c = disk_cache(path, HC_WRITE_ON_INSERT, 8u << 20);
    hc_get_stats(c, &st0);
    assert_int_equal(fetch_id(c, &o, 1, ra, &src, BS), 0); /* on the disk only: read */
    assert_int_equal(src, HC_SRC_DISK);
    hc_get_stats(c, &st);
    assert_int_equal(st.disk_hits, st0.disk_hits + 1);
    assert_null(hc_get(c, key, (size_t)klen)); /* a prefetch's disk hit: not promoted */
    assert_int_equal(fetch_id(c, &o, 3, ra, &src, 0), -ENOENT); /* nowhere */
    assert_int_equal(atomic_load(&o.calls), 1);
    origin_stop(&o);
    hc_destroy(c);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conf),
        cmocka_unit_test(test_single_flight),
        cmocka_unit_test(test_memory_bound),
        cmocka_unit_test(test_insert_remove_no_origin),
        cmocka_unit_test(test_disk_promote_remount),
        cmocka_unit_test(test_disk_write_on_evict),
        cmocka_unit_test(test_disk_write_on_evict_close),
        cmocka_unit_test(test_disk_write_on_evict_close_eio),
        cmocka_unit_test(test_disk_admission_drops),
        cmocka_unit_test(test_disk_dropped_writes_spilled_at_close),
        cmocka_unit_test(test_disk_eio_goes_to_origin),
        cmocka_unit_test(test_disk_memory_bound),
        cmocka_unit_test(test_disk_working_set_fits),
        cmocka_unit_test(test_disk_hit_promoted_once),
        cmocka_unit_test(test_stream_scan),
        cmocka_unit_test(test_if_absent),
        cmocka_unit_test(test_fetch_range),
        cmocka_unit_test(test_not_in_mem),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
