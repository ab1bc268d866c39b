/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_hc_coop_disk.c: the cooperator with a disk tier: promotion of disk hits, remount
 * recovery, write-on-evict and its spill at close, admission drops on a slow device, EIO
 * going to the origin, the memory bound with the disk's buffers, a working set that fits
 * memory staying there, a scan kept out of the memory tier, one disk read per block.
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

/* ---- with a disk tier ---- */

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
    (void)wait_defer(c); /* evictions that found the write queue full wait there */
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
    /* Freed entries' buffers wait in the pool, which holds at most what the budget has
     * free: the newest blocks, in memory, removed. */
    (void)wait_defer(c);
    for (unsigned id = 0; id < 20; id++) {
        char key[32];
        int klen = key_of(id, key);
        if (fetch_id(c, &o, id, HC_FETCH_NO_ORIGIN, &src, BS) == 0)
            (void)hc_remove(c, key, (size_t)klen); /* in memory now: its buffer is free */
    }
    hc_get_stats(c, &st);
    assert_true(st.pool_bytes > 0);
    assert_true(st.pool_bytes <= hc_mem_budget(c)); /* the budget's free room at most */
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
    _Atomic unsigned write_delay_us; /* writes only, when set (a disk that stalls) */
};

static struct slow_dev *last_slow; /* the device of the last slow_cache_defer() */

static ssize_t slow_pread(struct dev *d, void *buf, size_t len, uint64_t off)
{
    struct slow_dev *s = (struct slow_dev *)d;
    return s->inner->ops->pread(s->inner, buf, len, off);
}

static ssize_t slow_pwrite(struct dev *d, const void *buf, size_t len, uint64_t off)
{
    struct slow_dev *s = (struct slow_dev *)d;
    unsigned wd = atomic_load(&s->write_delay_us);
    usleep(wd ? wd : s->delay_us);
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
static struct hc_cache *slow_cache_defer(const char *path, unsigned delay_us, unsigned defer)
{
    struct slow_dev *sd = calloc(1, sizeof(*sd));
    struct hc_conf conf;
    struct hc_cache *c;

    assert_non_null(sd);
    sd->inner = t_dev(path);
    sd->base = *sd->inner;
    sd->base.ops = &slow_ops;
    sd->delay_us = delay_us;
    last_slow = sd;
    conf = disk_conf(NULL, HC_WRITE_ON_INSERT, 8u << 20);
    conf.disk_dev = &sd->base;
    conf.write_queue_bytes = REGION;
    conf.defer_blocks = defer;
    assert_int_equal(hc_create(&conf, &c), 0);
    return c;
}

static struct hc_cache *slow_cache(const char *path, unsigned delay_us)
{
    return slow_cache_defer(path, delay_us, 0);
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
    /* 8 MiB of memory: the N blocks fit; 2 may wait for the write queue, the rest drop */
    c = slow_cache_defer(path, 50000, 2);
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

/* A disk slower than the fetches (100 ms an IO, a write queue of one region): a block that
 * finds the write queue full waits in the deferred writer instead of being dropped, new
 * fetches are held back while too many wait, memory stays bounded, and every block is on
 * the disk afterwards (issue #17: a 64M mount used to drop 188 of 1,024 blocks). */
static void test_disk_deferred_writes(void **state)
{
    const uint64_t mem = 8u << 20, slack = (4 + 5) * (uint64_t)BS;
    const unsigned n = 300;
    char path[512];
    struct hc_cache *c;
    struct origin o;
    struct stream s;
    struct hc_stats st;
    enum hc_source src;
    uint64_t max_used;

    t_path(path, sizeof(path), "defer");
    c = slow_cache(path, 100000);
    origin_start(&o, true);
    max_used = run_stream(c, &o, 0, n, false, &s);
    stream_free(&s);
    assert_true(wait_defer(c) > 0); /* the case under test happened */
    hc_get_stats(c, &st);
    assert_int_equal(st.admission_drops, 0);
    assert_int_equal(st.disk_inserts, n);
    assert_int_equal(st.origin_fetches, n);
    assert_true(max_used <= mem + slack);
    origin_stop(&o);
    hc_destroy(c);

    origin_start(&o, false);
    c = disk_cache(path, HC_WRITE_ON_INSERT, mem);
    hc_get_stats(c, &st);
    assert_int_equal(st.disk_entries, n);
    for (unsigned id = 0; id < n; id += 7)
        assert_int_equal(fetch_id(c, &o, id, HC_FETCH_NO_ORIGIN, &src, BS), 0);
    assert_int_equal(atomic_load(&o.calls), 0);
    origin_stop(&o);
    hc_destroy(c);
    unlink(path);

    /* A short queue (4 blocks) fills: new fetches are held back until it has room. */
    t_path(path, sizeof(path), "defer4");
    c = slow_cache_defer(path, 100000, 4);
    origin_start(&o, true);
    max_used = run_stream(c, &o, 0, n, false, &s);
    stream_free(&s);
    (void)wait_defer(c);
    hc_get_stats(c, &st);
    assert_true(st.disk_defer_holds > 0);
    assert_int_equal(st.disk_inserts + st.admission_drops, n);
    assert_true(max_used <= mem + slack);
    origin_stop(&o);
    hc_destroy(c);
    unlink(path);
}

/* A disk that stalls (a region write takes 2.3 s): the deferred writer waits 2 s for the
 * first block, then drops the rest at once (counted) until the disk takes one again; the
 * readers never wait for the disk, and no wrong byte. */
static void test_disk_stalled_drops(void **state)
{
    const unsigned n = 60;
    char path[512];
    struct hc_cache *c;
    struct origin o;
    struct stream s;
    struct hc_stats st;

    t_path(path, sizeof(path), "stall");
    c = slow_cache(path, 0);
    atomic_store(&last_slow->write_delay_us, 2300000);
    origin_start(&o, true);
    (void)run_stream(c, &o, 0, n, false, &s); /* all n, right bytes (asserted there) */
    stream_free(&s);
    (void)wait_defer(c); /* within its 10 s: not a 2 s wait per block */
    hc_get_stats(c, &st);
    assert_true(st.admission_drops > 0);
    assert_true(st.disk_deferred > 0);
    assert_int_equal(st.disk_inserts + st.admission_drops, n);
    atomic_store(&last_slow->write_delay_us, 0);
    origin_stop(&o);
    hc_destroy(c);
    unlink(path);
}

/* 1 MiB blocks in 16 MiB of memory with a disk tier: the cache opens (regions of two
 * blocks, a write queue of one), keeps its blocks, and a mount with 64 MiB (which would
 * make regions of 7) keeps the cache it finds instead of wiping it; and the other way. */
static void test_disk_small_memory(void **state)
{
    const uint32_t bs = 1u << 20;
    const uint64_t mems[2][2] = {{16u << 20, 64u << 20}, {64u << 20, 16u << 20}};
    unsigned char *data = malloc(bs);
    char path[512], key[32];
    struct hc_cache *c;
    struct hc_stats st;

    assert_non_null(data);
    t_path(path, sizeof(path), "smallmem");
    for (unsigned round = 0; round < 2; round++) {
        struct hc_conf conf = disk_conf(path, HC_WRITE_ON_INSERT, mems[round][0]);
        conf.block_size = bs;
        conf.region_size = 0;
        conf.io_depth = 0;
        unlink(path);
        c = disk_cache_conf(&conf);
        hc_get_stats(c, &st);
        /* 16M: regions of 2 blocks (one in the write queue); 64M: of 7 (two) */
        const uint64_t rs = hc_disk_region_for(bs, round == 0 ? 2 : 7);
        assert_int_equal(st.disk_region_size, rs);
        assert_true(st.mem_limit == mems[round][0]);
        for (unsigned id = 0; id < 6; id++) {
            int klen = key_of(id, key);
            memset(data, pattern(id), bs);
            assert_int_equal(hc_insert(c, key, (size_t)klen, data, bs, 0), 0);
        }
        (void)wait_defer(c);
        assert_int_equal(hc_flush(c), 0);
        hc_get_stats(c, &st);
        assert_int_equal(st.admission_drops, 0);
        assert_int_equal(st.disk_inserts, 6);
        hc_destroy(c);

        conf.mem_capacity = mems[round][1];
        c = disk_cache_conf(&conf);
        hc_get_stats(c, &st);
        assert_int_equal(st.disk_region_size, rs);
        assert_int_equal(st.disk_entries, 6); /* not wiped */
        for (unsigned id = 0; id < 6; id++) {
            struct hc_entry *e = NULL;
            enum hc_source src;
            int klen = key_of(id, key);
            assert_int_equal(
                hc_fetch_sync(c, key, (size_t)klen, HC_FETCH_NO_ORIGIN, NULL, NULL, &e, &src), 0);
            assert_int_equal(src, HC_SRC_DISK);
            assert_true(bytes_are(e, id, bs));
            hc_entry_put(e);
        }
        hc_destroy(c);
    }
    unlink(path);
    free(data);
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
    assert_int_equal(held_ids(c, 200, 300), 100);
    assert_int_equal(atomic_load(&o.calls), 201);
    origin_stop(&o);
    hc_destroy(c);
    unlink(path);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_disk_promote_remount),
        cmocka_unit_test(test_disk_write_on_evict),
        cmocka_unit_test(test_disk_write_on_evict_close),
        cmocka_unit_test(test_disk_write_on_evict_close_eio),
        cmocka_unit_test(test_disk_admission_drops),
        cmocka_unit_test(test_disk_dropped_writes_spilled_at_close),
        cmocka_unit_test(test_disk_eio_goes_to_origin),
        cmocka_unit_test(test_disk_memory_bound),
        cmocka_unit_test(test_disk_deferred_writes),
        cmocka_unit_test(test_disk_stalled_drops),
        cmocka_unit_test(test_disk_small_memory),
        cmocka_unit_test(test_disk_working_set_fits),
        cmocka_unit_test(test_disk_hit_promoted_once),
        cmocka_unit_test(test_stream_scan),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
