/* SPDX-License-Identifier: Apache-2.0 */
/* hc_testlib.c: the helpers of hc_testlib.h. */
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
#include "tests/unit/hc_testlib.h"

unsigned char pattern(unsigned id)
{
    return (unsigned char)((id * 131u) ^ 0x5a);
}

void origin_serve(struct origin *o, struct oreq *r)
{
    size_t len = o->len ? o->len : r->cap;

    if (o->fail) {
        hc_fetch_complete(r->ctx, o->fail);
        return;
    }
    memset(r->buf, pattern(r->id), CMN_MIN(len, r->cap)); /* over-long len: tested below */
    hc_fetch_complete(r->ctx, (ssize_t)len);
}

void *origin_thread(void *p)
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

void fetcher(struct hc_flight *ctx, void *buf, size_t cap, void *arg)
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

void origin_start(struct origin *o, bool async)
{
    memset(o, 0, sizeof(*o));
    pthread_mutex_init(&o->lock, NULL);
    pthread_cond_init(&o->cond, NULL);
    o->async = async;
    if (async)
        assert_int_equal(pthread_create(&o->thread, NULL, origin_thread, o), 0);
}

void origin_stop(struct origin *o)
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

int key_of(unsigned id, char *key)
{
    return snprintf(key, 32, "obj/%u", id);
}

bool bytes_are(const struct hc_entry *e, unsigned id, size_t len)
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
int fetch_id(struct hc_cache *c, struct origin *o, unsigned id, unsigned flags, enum hc_source *src,
             size_t expect_len)
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

unsigned held_ids(struct hc_cache *c, unsigned from, unsigned to)
{
    char key[32];
    unsigned held = 0;

    for (unsigned id = from; id < to; id++) {
        struct hc_entry *e = hc_get(c, key, (size_t)key_of(id, key));
        held += e != NULL;
        hc_entry_put(e);
    }
    return held;
}

struct hc_cache *mem_cache(uint64_t mem, const char *policy)
{
    struct hc_conf conf = {.block_size = BS, .mem_capacity = mem, .mem_policy = policy};
    struct hc_cache *c;

    assert_int_equal(hc_create(&conf, &c), 0);
    return c;
}

void *sf_thread(void *p)
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
void run_single_flight_src(struct hc_cache *c, struct origin *o, unsigned id, int expect_rc,
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

void run_single_flight(struct hc_cache *c, struct origin *o, unsigned id, int expect_rc,
                       uint64_t merges_before)
{
    run_single_flight_src(c, o, id, expect_rc, merges_before, HC_SRC_ORIGIN, true);
}

void stream_done(int result, struct hc_entry *e, enum hc_source src, void *arg)
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

void *issue_thread(void *p)
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

void *monitor_thread(void *p)
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
uint64_t run_stream(struct hc_cache *c, struct origin *o, unsigned first, unsigned n, bool pin,
                    struct stream *s)
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

void stream_free(struct stream *s)
{
    for (unsigned i = 0; s->pin && i < s->done; i++)
        hc_entry_put(s->pinned[i]);
    free(s->pinned);
    free(s->reqs);
    pthread_mutex_destroy(&s->lock);
}

void t_path(char *path, size_t cap, const char *name)
{
    const char *dir = getenv("TIERFS_TEST_TMPDIR");

    snprintf(path, cap, "%s/hccoop-%d-%s.dev", dir ? dir : "/tmp", (int)getpid(), name);
    unlink(path);
}

struct hc_conf disk_conf(const char *path, enum hc_write_mode wm, uint64_t mem)
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
struct hc_cache *disk_cache_conf(struct hc_conf *conf)
{
    struct hc_cache *c;

    if (hc_create(conf, &c) < 0) {
        conf->direct_io = false;
        assert_int_equal(hc_create(conf, &c), 0);
    }
    return c;
}

struct hc_cache *disk_cache(const char *path, enum hc_write_mode wm, uint64_t mem)
{
    struct hc_conf conf = disk_conf(path, wm, mem);

    return disk_cache_conf(&conf);
}

uint64_t wait_defer(struct hc_cache *c)
{
    struct hc_stats st;

    for (unsigned i = 0; i < 10000; i++) {
        hc_get_stats(c, &st);
        if (!st.disk_defer_pending)
            return st.disk_deferred;
        usleep(1000);
    }
    fail_msg("the deferred disk writer still holds %llu blocks after 10 s",
             (unsigned long long)st.disk_defer_pending);
    return 0;
}

struct dev *t_dev(const char *path)
{
    struct dev_conf dc = {.path = path, .size = DISK_BYTES, .direct_io = true, .create = true};
    struct dev *dev = NULL;

    if (dev_open(&dc, &dev) < 0) {
        dc.direct_io = false;
        assert_int_equal(dev_open(&dc, &dev), 0);
    }
    return dev;
}

void stream_done_box(int result, struct hc_entry *e, enum hc_source src, void *arg)
{
    struct hc_count_box *b = arg;

    assert_int_equal(result, 0);
    hc_entry_put(e);
    pthread_mutex_lock(&b->lock);
    b->n++;
    pthread_cond_signal(&b->cond);
    pthread_mutex_unlock(&b->lock);
}
