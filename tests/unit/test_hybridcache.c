/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_hybridcache.c: the cooperator (hybridcache.h): conf checks, single-flight under
 * many threads (one fetcher call, every waiter gets the bytes or the error, a later fetch
 * retries), the memory bound under a stream of fetches with a slow asynchronous origin,
 * insert/remove/NO_ORIGIN/prefetch, ranged fetches, IF_ABSENT and NOT_IN_MEM, sized
 * fetches (hc_fetch_sized: the pieces tierfs caches) and hc_contains. With a
 * disk tier: test_hc_coop_disk.c; the helpers both use: hc_testlib.c.
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
#include "tests/unit/hc_testlib.h"

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

/* ---- hc_fetch_sized and hc_contains ---- */

#define PIECE (64 * KB)

/* A piece fetcher: checks the buffer is the piece's size, fills it with @arg's byte, or
 * parks the flight in *held (completed by the test) when @arg's byte is 0. */
struct piece_req {
    unsigned char fill;
    size_t len; /* bytes to return */
    struct hc_flight *held;
    void *buf; /* the held flight's buffer */
    int calls;
};

static void piece_fetcher(struct hc_flight *ctx, void *buf, size_t cap, void *arg)
{
    struct piece_req *r = arg;

    assert_int_equal(cap, PIECE);
    __atomic_add_fetch(&r->calls, 1, __ATOMIC_SEQ_CST);
    if (!r->fill) {
        r->buf = buf;
        __atomic_store_n(&r->held, ctx, __ATOMIC_SEQ_CST);
        return;
    }
    memset(buf, r->fill, cap);
    hc_fetch_complete(ctx, (ssize_t)r->len);
}

static void piece_done(int result, struct hc_entry *e, enum hc_source src, void *arg)
{
    struct hc_count_box *box = arg;
    (void)src;
    if (result == 0 && e && hc_entry_len(e) == PIECE &&
        ((const unsigned char *)hc_entry_data(e))[0])
        pthread_mutex_lock(&box->lock), box->n++, pthread_mutex_unlock(&box->lock);
    else
        pthread_mutex_lock(&box->lock), box->n += 1000, pthread_mutex_unlock(&box->lock);
    hc_entry_put(e);
}

/* A sized fetch charges its own size, not a block, in flight and in memory; a fetcher
 * returning more than that is an error; hc_contains sees memory, flights and the disk. */
static void test_fetch_sized(void **state)
{
    char path[512];
    struct hc_cache *c = mem_cache(16u << 20, NULL);
    struct piece_req r = {.fill = 0x5a, .len = PIECE};
    struct hc_count_box box = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
    struct hc_stats st0, st;
    (void)state;

    assert_int_equal(hc_fetch_sized(c, "p1", 2, 0, 0, piece_fetcher, &r, piece_done, &box),
                     -EINVAL);
    assert_int_equal(hc_fetch_sized(c, "p1", 2, 0, BS + 4096, piece_fetcher, &r, piece_done, &box),
                     -EINVAL);
    assert_false(hc_contains(c, "p1", 2));
    hc_get_stats(c, &st0);
    assert_int_equal(hc_fetch_sized(c, "p1", 2, 0, PIECE, piece_fetcher, &r, piece_done, &box), 0);
    assert_int_equal(box.n, 1);
    assert_true(hc_contains(c, "p1", 2));
    hc_get_stats(c, &st);
    assert_int_equal(st.mem_used - st0.mem_used, PIECE); /* not a whole block */
    assert_int_equal(st.origin_bytes - st0.origin_bytes, PIECE);
    /* A memory hit: no fetcher call. */
    assert_int_equal(hc_fetch_sized(c, "p1", 2, 0, PIECE, piece_fetcher, &r, piece_done, &box), 0);
    assert_int_equal(box.n, 2);
    assert_int_equal(r.calls, 1);
    /* Too many bytes for the buffer: an error, nothing cached. */
    struct piece_req big = {.fill = 1, .len = PIECE + 1};
    assert_int_equal(hc_fetch_sized(c, "p2", 2, 0, PIECE, piece_fetcher, &big, piece_done, &box),
                     0);
    assert_int_equal(box.n, 1002);
    assert_false(hc_contains(c, "p2", 2));
    /* In flight: contained, and charged the piece's size while it runs. */
    struct piece_req slow = {.fill = 0, .len = PIECE};
    hc_get_stats(c, &st0);
    assert_int_equal(hc_fetch_sized(c, "p3", 2, 0, PIECE, piece_fetcher, &slow, piece_done, &box),
                     0);
    assert_non_null(slow.held);
    assert_true(hc_contains(c, "p3", 2));
    hc_get_stats(c, &st);
    assert_int_equal(st.inflight_bytes - st0.inflight_bytes, PIECE);
    hc_fetch_complete(slow.held, -EIO);
    assert_false(hc_contains(c, "p3", 2));
    assert_int_equal(box.n, 2002);
    hc_destroy(c);

    /* On the disk tier: the piece survives a reopen and is read into a piece-sized buffer. */
    t_path(path, sizeof(path), "sized");
    c = disk_cache(path, HC_WRITE_ON_INSERT, 8u << 20);
    box.n = 0;
    r.fill = 0x6b;
    assert_int_equal(hc_fetch_sized(c, "p4", 2, 0, PIECE, piece_fetcher, &r, piece_done, &box), 0);
    wait_defer(c);
    assert_int_equal(hc_flush(c), 0);
    hc_destroy(c);
    c = disk_cache(path, HC_WRITE_ON_INSERT, 8u << 20);
    assert_true(hc_contains(c, "p4", 2));
    struct hc_entry *e = NULL;
    enum hc_source src;
    assert_int_equal(
        hc_fetch_range_sync(c, "p4", 2, HC_FETCH_NO_ORIGIN, 0, PIECE, NULL, NULL, &e, &src), 0);
    assert_int_equal(src, HC_SRC_DISK);
    assert_int_equal(hc_entry_len(e) + hc_entry_off(e) >= PIECE, 1);
    assert_int_equal(((const unsigned char *)hc_entry_data(e))[0], 0x6b);
    hc_entry_put(e);
    int calls = r.calls;
    assert_int_equal(hc_fetch_sized(c, "p4", 2, 0, PIECE, piece_fetcher, &r, piece_done, &box), 0);
    assert_int_equal(r.calls, calls); /* from the disk */
    assert_int_equal(box.n, 2);
    hc_destroy(c);
    unlink(path);
}

/* Wait up to 5 s for @r's fetcher to be called. */
static bool piece_called(struct piece_req *r)
{
    for (int i = 0; i < 5000 && !__atomic_load_n(&r->held, __ATOMIC_SEQ_CST); i++)
        usleep(1000);
    return __atomic_load_n(&r->held, __ATOMIC_SEQ_CST) != NULL;
}

/* HC_FETCH_JOIN: a lookup that must not go to the origin itself waits for a flight that
 * does (tierfs assembling a block from pieces another reader is fetching); plain
 * NO_ORIGIN does not wait; a flight still queued for memory is a miss, so a flight that
 * holds memory never waits on one waiting for memory; nothing in flight is a miss. */
static void test_fetch_join(void **state)
{
    enum { NQ = 40 };
    const unsigned join = HC_FETCH_NO_ORIGIN | HC_FETCH_JOIN | HC_FETCH_PREFETCH;
    struct hc_cache *c = mem_cache(1u << 20, NULL);
    struct hc_count_box box = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
    struct hc_count_box plain = box, joined = box, none = box, queued = box;
    struct piece_req r[NQ];
    char key[16];
    (void)state;

    memset(r, 0, sizeof(r));
    assert_int_equal(hc_fetch_sized(c, "j0", 2, 0, PIECE, piece_fetcher, &r[0], piece_done, &box),
                     0);
    assert_true(piece_called(&r[0])); /* at the origin now */
    assert_int_equal(
        hc_fetch_sized(c, "j0", 2, HC_FETCH_NO_ORIGIN, PIECE, NULL, NULL, piece_done, &plain), 0);
    assert_int_equal(plain.n, 1000); /* -ENOENT at once */
    assert_int_equal(hc_fetch_sized(c, "j0", 2, join, PIECE, NULL, NULL, piece_done, &joined), 0);
    assert_int_equal(joined.n, 0); /* waits */
    assert_int_equal(hc_fetch_sized(c, "jx", 2, join, PIECE, NULL, NULL, piece_done, &none), 0);
    for (int i = 0; i < 5000 && !__atomic_load_n(&none.n, __ATOMIC_SEQ_CST); i++)
        usleep(1000);               /* a flight that looks at the disk tier first (there is none) */
    assert_int_equal(none.n, 1000); /* nowhere: a miss, no flight to the origin */
    memset(r[0].buf, 0x77, PIECE);
    hc_fetch_complete(r[0].held, PIECE);
    assert_int_equal(box.n, 1);
    assert_int_equal(joined.n, 1); /* the flight's bytes */
    assert_int_equal(r[0].calls, 1);

    /* 40 pieces held at the origin against a 1 MiB budget: the last ones queue. */
    for (int i = 1; i < NQ; i++) {
        snprintf(key, sizeof(key), "q%02d", i);
        assert_int_equal(
            hc_fetch_sized(c, key, 3, 0, PIECE, piece_fetcher, &r[i], piece_done, &box), 0);
    }
    assert_int_equal(__atomic_load_n(&r[NQ - 1].calls, __ATOMIC_SEQ_CST), 0);
    assert_int_equal(hc_fetch_sized(c, "q39", 3, join, PIECE, NULL, NULL, piece_done, &queued), 0);
    assert_int_equal(queued.n, 1000); /* queued for memory: a miss */
    for (int i = 1; i < NQ; i++) {    /* completing them admits the queued ones */
        assert_true(piece_called(&r[i]));
        memset(r[i].buf, 0x42, PIECE);
        hc_fetch_complete(r[i].held, PIECE);
    }
    assert_int_equal(box.n, NQ);
    hc_destroy(c);
}

/* A memory-only tier and a sequential reader whose bytes the kernel keeps (HC_FETCH_STREAM,
 * with its prefetches): the tier holds an eighth of itself of the scan, recycling block
 * buffers instead of growing by it; the same fetches as plain prefetches (a dense reader's)
 * all stay, each being another GET to replace. */
static void test_stream_memory_only(void **state)
{
    enum hc_source src;
    struct origin o;
    unsigned held = 0;
    (void)state;

    origin_start(&o, false);
    struct hc_cache *c = mem_cache(16u << 20, "s3fifo");
    for (unsigned id = 0; id < 100; id++) { /* 6.25 MiB of BS blocks, well under the tier */
        assert_int_equal(fetch_id(c, &o, id, HC_FETCH_PREFETCH | HC_FETCH_STREAM, &src, BS), 0);
        assert_int_equal(fetch_id(c, &o, id, HC_FETCH_STREAM, &src, BS), 0);
        assert_int_equal(src, HC_SRC_MEMORY);
    }
    held = held_ids(c, 0, 100);
    assert_true(held <= 40); /* an eighth of the tier, a few blocks of slack per shard */
    assert_true(held >= 8);
    for (unsigned id = 200; id < 300; id++)
        assert_int_equal(fetch_id(c, &o, id, HC_FETCH_PREFETCH, &src, BS), 0);
    assert_int_equal(held_ids(c, 200, 300), 100);
    assert_int_equal(atomic_load(&o.calls), 200);
    origin_stop(&o);
    hc_destroy(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conf),         cmocka_unit_test(test_single_flight),
        cmocka_unit_test(test_memory_bound), cmocka_unit_test(test_insert_remove_no_origin),
        cmocka_unit_test(test_if_absent),    cmocka_unit_test(test_fetch_range),
        cmocka_unit_test(test_not_in_mem),   cmocka_unit_test(test_fetch_sized),
        cmocka_unit_test(test_fetch_join),   cmocka_unit_test(test_stream_memory_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
