/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_hc_mem.c: the memory tier (hc_mem_*) and entries: insert/lookup/replace/remove,
 * references that outlive eviction, the byte capacity under every policy, on_evict,
 * sharding and conf checks, hc_mem_make_room on a shared budget, the entry buffer pool,
 * and a multi-threaded run (labelled tsan, with a pool) that checks data and invariants.
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

#include "common/util.h"
#include "hybridcache/hc_i.h"

#define KB 1024u

static void check_invariants(struct hc_mem *m)
{
#ifdef TIERFS_DEBUG
    hc_mem_check_invariants(m);
#else
    (void)m;
#endif
}

/* An entry under "k<id>" whose bytes are all (id & 0xff). */
static struct hc_entry *mk(struct hc_accounting *a, unsigned id, size_t cap)
{
    char key[32];
    int klen = snprintf(key, sizeof(key), "k%u", id);
    struct hc_entry *e = hc_entry_alloc(key, (size_t)klen, cap, a);

    assert_non_null(e);
    memset(e->data, (int)(id & 0xff), cap);
    e->len = (uint32_t)cap;
    return e;
}

static struct hc_entry *get(struct hc_mem *m, unsigned id)
{
    char key[32];
    int klen = snprintf(key, sizeof(key), "k%u", id);

    return hc_mem_lookup(m, hc_key_hash(key, (size_t)klen), key, (size_t)klen, true);
}

/* A lookup that does not touch (a streaming reader's, HC_FETCH_STREAM). */
static struct hc_entry *peek(struct hc_mem *m, unsigned id)
{
    char key[32];
    int klen = snprintf(key, sizeof(key), "k%u", id);

    return hc_mem_lookup(m, hc_key_hash(key, (size_t)klen), key, (size_t)klen, false);
}

static int del(struct hc_mem *m, unsigned id)
{
    char key[32];
    int klen = snprintf(key, sizeof(key), "k%u", id);

    return hc_mem_remove(m, hc_key_hash(key, (size_t)klen), key, (size_t)klen);
}

static bool data_is(const struct hc_entry *e, unsigned id)
{
    const unsigned char *d = hc_entry_data(e);

    for (size_t i = 0; i < hc_entry_len(e); i++)
        if (d[i] != (unsigned char)(id & 0xff))
            return false;
    return true;
}

/* Insert @e and drop the caller's reference (the index keeps its own). */
static void put_in(struct hc_mem *m, struct hc_entry *e)
{
    assert_int_equal(hc_mem_insert(m, e), 0);
    hc_entry_put(e);
}

static void test_entry_refs(void **state)
{
    struct hc_accounting a = {.limit = 1 << 20};
    struct hc_entry *e = hc_entry_alloc("abc", 3, 8 * KB, &a);

    assert_non_null(e);
    assert_int_equal(((uintptr_t)e->data) % 4096, 0); /* direct-IO ready */
    assert_int_equal(atomic_load(&a.used), 8 * KB);
    assert_int_equal(e->hash, hc_key_hash("abc", 3));
    assert_int_not_equal(hc_key_hash("abc", 3), hc_key_hash("abd", 3));
    assert_memory_equal(e->key, "abc", 3);
    assert_int_equal(hc_entry_len(e), 0);
    hc_entry_ref(e);
    hc_entry_put(e);
    assert_int_equal(atomic_load(&a.used), 8 * KB);
    hc_entry_put(e);
    assert_int_equal(atomic_load(&a.used), 0);
    hc_entry_put(NULL);
    e = hc_entry_alloc("x", 1, 4096, NULL); /* no budget to charge */
    assert_non_null(e);
    hc_entry_put(e);
    assert_null(hc_entry_alloc("x", HC_KEY_MAX + 1, 4096, &a));
    assert_int_equal(atomic_load(&a.used), 0);
}

/* Buffers of the pool's size are reused (uncharged while pooled), others are not, and
 * the pool keeps at most its bound and at most the budget's free room. */
static void test_buf_pool(void **state)
{
    struct hc_accounting a = {.limit = 1 << 20};
    struct hc_entry *e, *f, *many[6];
    struct hc_buf_pool *p;
    void *d;

    assert_int_equal(hc_buf_pool_create(16 * KB, 0, &p), 0);
    assert_null(p); /* no pool */
    assert_int_equal(hc_buf_pool_bytes(NULL), 0);
    hc_buf_pool_destroy(NULL);
    assert_int_equal(hc_buf_pool_create(0, 4, &p), -EINVAL);
    assert_int_equal(hc_buf_pool_create(16 * KB, 4, &p), 0);
    assert_non_null(p);
    assert_int_equal(hc_buf_pool_max(p), 4);
    a.pool = p;

    e = mk(&a, 1, 16 * KB);
    d = e->data;
    assert_int_equal(atomic_load(&a.used), 16 * KB);
    hc_entry_put(e);
    assert_int_equal(atomic_load(&a.used), 0); /* pooled bytes are not charged */
    assert_int_equal(hc_buf_pool_bytes(p), 16 * KB);
    e = hc_entry_alloc("k2", 2, 16 * KB, &a);
    assert_non_null(e);
    assert_ptr_equal(e->data, d); /* reused */
    assert_int_equal(((uintptr_t)e->data) % 4096, 0);
    assert_int_equal(hc_buf_pool_bytes(p), 0);
    assert_int_equal(atomic_load(&a.used), 16 * KB);
    memset(e->data, 0x5a, 16 * KB); /* all of it is writable */

    f = mk(&a, 3, 8 * KB); /* another size: not pooled */
    hc_entry_put(f);
    assert_int_equal(hc_buf_pool_bytes(p), 0);
    e->acct = NULL; /* no accounting: no pool either */
    hc_entry_put(e);
    assert_int_equal(hc_buf_pool_bytes(p), 0);
    atomic_store(&a.used, 0);

    for (unsigned i = 0; i < 6; i++)
        many[i] = mk(&a, 10 + i, 16 * KB);
    for (unsigned i = 0; i < 6; i++)
        hc_entry_put(many[i]);
    assert_int_equal(hc_buf_pool_bytes(p), 4 * 16 * KB); /* bounded */
    assert_int_equal(atomic_load(&a.used), 0);
    hc_buf_pool_destroy(p); /* frees the pooled buffers */

    /* The pool keeps a buffer only while charged + pooled stays within the limit: with
     * 40 KiB, of three 16 KiB entries put in turn the first is freed (32 KiB still
     * charged), the next two are kept (16 + 16, then 0 + 32). */
    assert_int_equal(hc_buf_pool_create(16 * KB, 8, &p), 0);
    a = (struct hc_accounting){.limit = 40 * KB, .pool = p};
    for (unsigned i = 0; i < 3; i++)
        many[i] = mk(&a, 20 + i, 16 * KB);
    hc_entry_put(many[0]);
    assert_int_equal(hc_buf_pool_bytes(p), 0);
    hc_entry_put(many[1]);
    assert_int_equal(hc_buf_pool_bytes(p), 16 * KB);
    hc_entry_put(many[2]);
    assert_int_equal(hc_buf_pool_bytes(p), 32 * KB);
    assert_int_equal(atomic_load(&a.used), 0);
    hc_buf_pool_destroy(p);
}

static void test_basic(void **state)
{
    const char *const *pol;

    for (pol = hc_policy_names(); *pol; pol++) {
        struct hc_mem_conf conf = {.capacity = 1 << 20, .policy = *pol, .shards = 1};
        struct hc_mem *m;
        struct hc_mem_stats st;
        struct hc_entry *e, *old;

        assert_int_equal(hc_mem_create(&conf, &m), 0);
        assert_null(get(m, 1));
        put_in(m, mk(NULL, 1, 4 * KB));
        e = get(m, 1);
        assert_non_null(e);
        assert_true(data_is(e, 1));
        assert_int_equal(hc_mem_insert(m, e), -EEXIST); /* already indexed */
        /* Replace: the reader of the old value keeps it. */
        old = e;
        e = mk(NULL, 1, 8 * KB);
        memset(e->data, 0x77, 8 * KB);
        put_in(m, e);
        e = get(m, 1);
        assert_ptr_not_equal(e, old);
        assert_int_equal(hc_entry_len(e), 8 * KB);
        assert_true(data_is(old, 1));
        hc_entry_put(old);
        hc_entry_put(e);
        hc_mem_get_stats(m, &st);
        assert_int_equal(st.hits, 2);
        assert_int_equal(st.misses, 1);
        assert_int_equal(st.inserts, 2);
        assert_int_equal(st.entries, 1);
        assert_int_equal(st.bytes, 8 * KB);
        assert_int_equal(del(m, 1), 0);
        assert_int_equal(del(m, 1), -ENOENT);
        assert_null(get(m, 1));
        hc_mem_get_stats(m, &st);
        assert_int_equal(st.entries, 0);
        assert_int_equal(st.bytes, 0);
        assert_int_equal(st.evictions, 0); /* a remove is not an eviction */
        check_invariants(m);
        hc_mem_destroy(m);
    }
    hc_mem_destroy(NULL);
}

struct evict_log {
    pthread_mutex_t lock;
    unsigned calls;
    uint64_t bytes;
    bool keep_last; /* hold the last evicted entry instead of putting it */
    struct hc_entry *last;
};

static void on_evict(struct hc_entry *e, void *arg)
{
    struct evict_log *l = arg;

    assert_false(e->in_index);
    pthread_mutex_lock(&l->lock);
    l->calls++;
    l->bytes += e->cap;
    if (l->keep_last) {
        hc_entry_put(l->last);
        l->last = e;
        e = NULL;
    }
    pthread_mutex_unlock(&l->lock);
    hc_entry_put(e);
}

static void test_refs_outlive_eviction(void **state)
{
    struct hc_accounting a = {.limit = 1 << 30};
    struct evict_log log = {.lock = PTHREAD_MUTEX_INITIALIZER};
    struct hc_mem_conf conf = {.capacity = 64 * KB,
                               .policy = "lru",
                               .shards = 1,
                               .acct = &a,
                               .on_evict = on_evict,
                               .on_evict_arg = &log};
    struct hc_mem *m;
    struct hc_entry *held;
    unsigned i;

    assert_int_equal(hc_mem_create(&conf, &m), 0);
    put_in(m, mk(&a, 0, 16 * KB));
    held = get(m, 0);
    assert_non_null(held);
    for (i = 1; i <= 8; i++)
        put_in(m, mk(&a, i, 16 * KB));
    assert_null(get(m, 0));         /* gone from the index ... */
    assert_true(data_is(held, 0));  /* ... but the reader still has its bytes */
    assert_int_equal(log.calls, 5); /* 9 entries of 16 KiB in 64 KiB */
    assert_int_equal(log.bytes, 5 * 16 * KB);
    /* The budget counts the tier (4 entries) and the held one. */
    assert_int_equal(atomic_load(&a.used), 5 * 16 * KB);
    hc_entry_put(held);
    assert_int_equal(atomic_load(&a.used), 4 * 16 * KB);
    check_invariants(m);
    hc_mem_destroy(m);
    assert_int_equal(atomic_load(&a.used), 0);
}

static void test_capacity_all_policies(void **state)
{
    const char *const *pol;

    for (pol = hc_policy_names(); *pol; pol++) {
        struct hc_accounting a = {.limit = 1 << 30};
        struct evict_log log = {.lock = PTHREAD_MUTEX_INITIALIZER};
        struct hc_mem_conf conf = {.capacity = 1 << 20,
                                   .policy = *pol,
                                   .shards = 4,
                                   .acct = &a,
                                   .on_evict = on_evict,
                                   .on_evict_arg = &log};
        struct hc_mem *m;
        struct hc_mem_stats st;
        uint64_t rng = 42, inserted = 0;

        assert_int_equal(hc_mem_create(&conf, &m), 0);
        for (unsigned i = 0; i < 3000; i++) {
            uint64_t r = cmn_rand64(&rng);
            unsigned id = (unsigned)(r % 500);
            struct hc_entry *e = get(m, id);
            if (e) {
                assert_true(data_is(e, id));
                hc_entry_put(e);
                continue;
            }
            size_t cap = (4 * KB) << ((r >> 16) % 5); /* 4..64 KiB */
            put_in(m, mk(&a, id, cap));
            inserted += cap;
            hc_mem_get_stats(m, &st);
            assert_true(st.bytes <= conf.capacity);
            assert_int_equal(atomic_load(&a.used), st.bytes);
            if (i % 100 == 0)
                check_invariants(m);
        }
        hc_mem_get_stats(m, &st);
        assert_true(st.evictions > 100);
        assert_int_equal(st.evictions, log.calls);
        /* Every byte inserted is in the tier, was evicted, or was replaced/removed. */
        assert_true(st.bytes + log.bytes <= inserted);
        assert_true(st.bytes > conf.capacity / 2);
        check_invariants(m);
        hc_mem_destroy(m);
        assert_int_equal(atomic_load(&a.used), 0);
    }
}

/* A scenario on a 1 MiB one-shard tier whose unread prefetches may hold 256 KiB. */
typedef void (*unread_case_fn)(struct hc_mem *m, struct hc_accounting *a, struct evict_log *log);

/* Past the quota the oldest unread prefetch goes, even while there is room; a hit makes
 * one ordinary. */
static void unread_plain(struct hc_mem *m, struct hc_accounting *a, struct evict_log *log)
{
    struct hc_mem_stats st;
    struct hc_entry *e;

    for (unsigned i = 0; i < 4; i++) { /* 256 KiB of ordinary entries */
        put_in(m, mk(a, 100 + i, 64 * KB));
    }
    for (unsigned i = 0; i < 10; i++) { /* 640 KiB of prefetches: only 4 fit */
        e = mk(a, i, 64 * KB);
        e->low_priority = 1;
        put_in(m, e);
        check_invariants(m);
    }
    hc_mem_get_stats(m, &st);
    assert_int_equal(st.bytes, 8 * 64 * KB); /* the room was not the limit */
    assert_int_equal(log->calls, 6);
    for (unsigned i = 0; i < 6; i++) /* oldest first */
        assert_null(get(m, i));
    for (unsigned i = 6; i < 10; i++) {
        assert_non_null(e = get(m, i)); /* a hit: ordinary from now on */
        hc_entry_put(e);
    }
    for (unsigned i = 100; i < 104; i++) {
        assert_non_null(e = get(m, i));
        hc_entry_put(e);
    }
    for (unsigned i = 20; i < 24; i++) { /* the read ones stay: the quota is free again */
        e = mk(a, i, 64 * KB);
        e->low_priority = 1;
        put_in(m, e);
    }
    assert_int_equal(log->calls, 6);
    for (unsigned i = 6; i < 10; i++) {
        assert_non_null(e = get(m, i));
        hc_entry_put(e);
    }
    assert_int_equal(del(m, 21), 0); /* removal leaves the list too */
    check_invariants(m);
    for (unsigned i = 200; i < 203; i++) /* ordinary entries take more room: 14 x 64K */
        put_in(m, mk(a, i, 64 * KB));
    hc_mem_get_stats(m, &st);
    assert_int_equal(st.bytes, 14 * 64 * KB);
    assert_int_equal(log->calls, 6);
}

/* Hits that do not touch (a sequential reader's) leave a prefetched entry unread: it still
 * goes when the quota needs room, oldest first, for every policy; an ordinary entry hit
 * that way keeps its place too. */
static void unread_stream_hits(struct hc_mem *m, struct hc_accounting *a, struct evict_log *log)
{
    struct hc_mem_stats st;
    struct hc_entry *e;

    for (unsigned i = 0; i < 4; i++) { /* the quota, full */
        e = mk(a, i, 64 * KB);
        e->low_priority = 1;
        put_in(m, e);
    }
    for (unsigned i = 0; i < 4; i++) { /* streamed through: hits, still unread */
        assert_non_null(e = peek(m, i));
        assert_int_equal(((const uint8_t *)e->data)[0], i);
        hc_entry_put(e);
    }
    hc_mem_get_stats(m, &st);
    assert_int_equal(st.hits, 4);
    check_invariants(m);
    for (unsigned i = 4; i < 8; i++) { /* the next prefetches push them out, in order */
        e = mk(a, i, 64 * KB);
        e->low_priority = 1;
        put_in(m, e);
        check_invariants(m);
        assert_int_equal(log->calls, i - 3);
        assert_null(peek(m, i - 4));
    }
    hc_mem_get_stats(m, &st);
    assert_int_equal(st.bytes, 4 * 64 * KB); /* the tier did not grow by the scan */
    assert_non_null(e = get(m, 4));          /* a touching hit: ordinary, out of the quota */
    hc_entry_put(e);
    for (unsigned i = 8; i < 12; i++) {
        e = mk(a, i, 64 * KB);
        e->low_priority = 1;
        put_in(m, e);
    }
    assert_non_null(e = peek(m, 4));
    hc_entry_put(e);
    for (unsigned i = 5; i < 8; i++)
        assert_null(peek(m, i));
    assert_int_equal(log->calls, 7);
}

/* unread_stream_only (a tier without a disk): only streamed entries (the kernel's page
 * cache holds their bytes) count in the quota; other prefetches (a dense reader's, one
 * whose reads bypass the page cache) fill the room as before, each one GET to replace. */
static void unread_stream_only(struct hc_mem *m, struct hc_accounting *a, struct evict_log *log)
{
    struct hc_mem_stats st;
    struct hc_entry *e;

    for (unsigned i = 0; i < 8; i++) { /* 512 KiB of plain prefetches: all stay */
        e = mk(a, i, 64 * KB);
        e->low_priority = 1;
        put_in(m, e);
        check_invariants(m);
    }
    assert_int_equal(log->calls, 0);
    for (unsigned i = 10; i < 18; i++) { /* 512 KiB streamed: the quota holds 4 */
        e = mk(a, i, 64 * KB);
        e->low_priority = 1;
        e->stream = 1;
        put_in(m, e);
        check_invariants(m);
    }
    hc_mem_get_stats(m, &st);
    assert_int_equal(log->calls, 4);
    assert_int_equal(st.bytes, 12 * 64 * KB);
    for (unsigned i = 0; i < 8; i++) {
        assert_non_null(e = peek(m, i));
        hc_entry_put(e);
    }
    for (unsigned i = 10; i < 14; i++) /* oldest streamed first */
        assert_null(peek(m, i));
    for (unsigned i = 14; i < 18; i++) {
        assert_non_null(e = peek(m, i));
        hc_entry_put(e);
    }
}

/* unread_share: prefetched (low-priority) entries nobody has hit yet hold at most
 * capacity / share even while the tier has room; the oldest goes first; a hit makes an
 * entry ordinary; ordinary entries still fill the room. Every policy, a streaming
 * reader's hits (no touch) in between, and a memory-only tier's quota of streamed entries. */
static void test_unread_share(void **state)
{
    /* the cases, and whether each runs with unread_stream_only */
    const unread_case_fn cases[] = {unread_plain, unread_stream_hits, unread_stream_only};
    const bool stream_only[] = {false, false, true};

    (void)state;
    for (const char *const *pol = hc_policy_names(); *pol; pol++) {
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
            struct hc_accounting a = {.limit = 1 << 30};
            struct evict_log log = {.lock = PTHREAD_MUTEX_INITIALIZER};
            struct hc_mem_conf conf = {.capacity = 1 << 20,
                                       .policy = *pol,
                                       .shards = 1,
                                       .acct = &a,
                                       .on_evict = on_evict,
                                       .on_evict_arg = &log,
                                       .unread_share = 4,
                                       .unread_stream_only = stream_only[i]};
            struct hc_mem *m;

            assert_int_equal(hc_mem_create(&conf, &m), 0);
            cases[i](m, &a, &log);
            check_invariants(m);
            hc_mem_destroy(m);
            assert_int_equal(atomic_load(&a.used), 0);
        }
    }
}

static void test_conf_and_shards(void **state)
{
    struct hc_mem_conf conf = {.capacity = 256 * KB, .policy = "sieve", .shards = 4};
    struct hc_mem *m;
    struct hc_mem_stats st;
    struct hc_entry *big;
    unsigned i, found = 0;

    conf.shards = 3;
    assert_int_equal(hc_mem_create(&conf, &m), -EINVAL);
    conf.shards = 4;
    conf.policy = "clock";
    assert_int_equal(hc_mem_create(&conf, &m), -EINVAL);
    conf.policy = NULL; /* default s3fifo */
    conf.capacity = 0;
    assert_int_equal(hc_mem_create(&conf, &m), -EINVAL);
    conf.capacity = 256 * KB;
    assert_int_equal(hc_mem_create(&conf, &m), 0);
    /* A shard holds 64 KiB: a larger entry does not fit anywhere. */
    big = mk(NULL, 1000, 128 * KB);
    assert_int_equal(hc_mem_insert(m, big), -E2BIG);
    hc_entry_put(big);
    /* Keys spread over the shards: 200 tiny entries, the table grows past 64 buckets. */
    for (i = 0; i < 200; i++)
        put_in(m, mk(NULL, i, 1 * KB));
    hc_mem_get_stats(m, &st);
    assert_true(st.entries > 150); /* 256 fit if evenly spread; a shard may overflow */
    assert_true(st.bytes <= 256 * KB);
    for (i = 0; i < 200; i++) {
        struct hc_entry *e = get(m, i);
        if (e) {
            assert_true(data_is(e, i));
            found++;
        }
        hc_entry_put(e);
    }
    assert_int_equal(found, st.entries);
    check_invariants(m);
    hc_mem_destroy(m);

    conf.shards = 0; /* automatic: small capacities get one shard */
    assert_int_equal(hc_mem_create(&conf, &m), 0);
    put_in(m, mk(NULL, 1, 256 * KB)); /* one shard holds the whole capacity */
    hc_mem_destroy(m);
}

static void test_make_room(void **state)
{
    struct hc_accounting a = {.limit = 256 * KB};
    struct evict_log log = {.lock = PTHREAD_MUTEX_INITIALIZER};
    /* The tier could hold more than the shared budget: the budget is what binds. */
    struct hc_mem_conf conf = {.capacity = 512 * KB,
                               .policy = "s3fifo",
                               .shards = 4,
                               .acct = &a,
                               .on_evict = on_evict,
                               .on_evict_arg = &log};
    struct hc_mem *m;
    struct hc_entry *pin[64];
    unsigned pin_id[64], i, n = 0;

    assert_int_equal(hc_mem_create(&conf, &m), 0);
    for (i = 0; i < 64; i++)
        put_in(m, mk(&a, i, 4 * KB));
    assert_int_equal(atomic_load(&a.used), 256 * KB); /* 64 x 4 KiB fill the budget */
    /* Room for an in-flight 64 KiB buffer: evict until it fits, no further. */
    hc_mem_make_room(m, 64 * KB);
    assert_true(atomic_load(&a.used) + 64 * KB <= a.limit);
    assert_true(atomic_load(&a.used) + 64 * KB > a.limit - 4 * KB);
    hc_mem_make_room(m, 0);
    assert_true(log.calls >= 16);

    /* Everything pinned by readers: make_room empties the tier and gives up. */
    for (i = 0; i < 64; i++) {
        struct hc_entry *e = get(m, i);
        if (e) {
            pin_id[n] = i;
            pin[n++] = e;
        }
    }
    assert_true(n > 0);
    for (i = 100; i < 100 + 16; i++)
        put_in(m, mk(&a, i, 4 * KB));
    hc_mem_make_room(m, 256 * KB);
    for (i = 0; i < 64; i++)
        assert_null(get(m, i));
    for (i = 100; i < 100 + 16; i++)
        assert_null(get(m, i));
    assert_int_equal(atomic_load(&a.used), n * 4 * KB);
    for (i = 0; i < n; i++) {
        assert_true(data_is(pin[i], pin_id[i]));
        hc_entry_put(pin[i]);
    }
    assert_int_equal(atomic_load(&a.used), 0);
    check_invariants(m);
    hc_mem_destroy(m);
}

/* ---- threads: readers check bytes, writers insert/replace/remove, evictions race ---- */

struct mt_arg {
    struct hc_mem *m;
    struct hc_accounting *a;
    unsigned seed;
    unsigned bad;
};

static void *mt_worker(void *p)
{
    struct mt_arg *arg = p;
    uint64_t rng = arg->seed;

    for (unsigned i = 0; i < 20000; i++) {
        uint64_t r = cmn_rand64(&rng);
        unsigned id = (unsigned)(r % 256);
        unsigned op = (unsigned)((r >> 20) % 10);
        if (op < 7) {
            struct hc_entry *e = get(arg->m, id);
            if (e && !data_is(e, id))
                arg->bad++;
            hc_entry_put(e);
        } else if (op < 9) {
            struct hc_entry *e = mk(arg->a, id, (4 * KB) << ((r >> 30) % 3));
            if (hc_mem_insert(arg->m, e) != 0)
                arg->bad++;
            hc_entry_put(e);
        } else {
            (void)del(arg->m, id);
        }
    }
    return NULL;
}

static void test_threads(void **state)
{
    const char *const *pol;

    for (pol = hc_policy_names(); *pol; pol++) {
        struct hc_accounting a = {.limit = 512 * KB};
        struct hc_buf_pool *pool;
        struct evict_log log = {.lock = PTHREAD_MUTEX_INITIALIZER, .keep_last = true};
        struct hc_mem_conf conf = {.capacity = 512 * KB,
                                   .policy = *pol,
                                   .shards = 4,
                                   .acct = &a,
                                   .on_evict = on_evict,
                                   .on_evict_arg = &log};
        struct hc_mem *m;
        struct hc_mem_stats st;
        struct mt_arg args[4];
        pthread_t th[4];

        /* The 8 KiB entries (a third of them) recycle their buffers through a pool. */
        assert_int_equal(hc_buf_pool_create(8 * KB, 4, &pool), 0);
        a.pool = pool;
        assert_int_equal(hc_mem_create(&conf, &m), 0);
        for (int t = 0; t < 4; t++) {
            args[t] = (struct mt_arg){.m = m, .a = &a, .seed = 1000u + (unsigned)t};
            assert_int_equal(pthread_create(&th[t], NULL, mt_worker, &args[t]), 0);
        }
        for (int t = 0; t < 4; t++) {
            assert_int_equal(pthread_join(th[t], NULL), 0);
            assert_int_equal(args[t].bad, 0);
        }
        check_invariants(m);
        hc_mem_get_stats(m, &st);
        assert_true(st.bytes <= conf.capacity);
        assert_true(st.evictions > 0);
        assert_int_equal(st.evictions, log.calls);
        /* The last evicted entry is held by the log: the budget counts it too. */
        assert_int_equal(atomic_load(&a.used), st.bytes + (log.last ? log.last->cap : 0));
        hc_entry_put(log.last);
        hc_mem_destroy(m);
        assert_int_equal(atomic_load(&a.used), 0);
        assert_true(hc_buf_pool_bytes(pool) <= 4 * 8 * KB);
        hc_buf_pool_destroy(pool);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_entry_refs),
        cmocka_unit_test(test_buf_pool),
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_refs_outlive_eviction),
        cmocka_unit_test(test_capacity_all_policies),
        cmocka_unit_test(test_unread_share),
        cmocka_unit_test(test_conf_and_shards),
        cmocka_unit_test(test_make_room),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
