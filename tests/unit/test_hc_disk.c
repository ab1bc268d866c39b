/* SPDX-License-Identifier: Apache-2.0 */
/* test_hc_disk.c: the region disk tier's live path (hc_disk_*): inserts and lookups, the index,
 * FIFO reclaim, device errors, admission drops, concurrency, buffer reuse, allocation failures;
 * each on psync and uring. Recovery and format: test_hc_disk_format.c; partial reads:
 * test_hc_disk_read.c. */
#include "tests/unit/hc_disk_testlib.h"

/* ---- allocation failures (linked with -Wl,--wrap=calloc,--wrap=malloc,--wrap=free) ----
 * Armed on one thread only (the test's, around one call), so engine threads and the
 * test's own allocations are never touched: the next calloc of exactly t_fail_calloc
 * bytes returns NULL, and t_seen_malloc / t_seen_freed say whether a malloc of
 * t_track_malloc bytes was made and its pointer freed again. */
void *__real_calloc(size_t n, size_t size);

void *__real_malloc(size_t size);

void __real_free(void *p);

static _Thread_local size_t t_fail_calloc, t_track_malloc;

static _Thread_local void *t_seen_malloc;

static _Thread_local bool t_seen_freed;

void *__wrap_calloc(size_t n, size_t size)
{
    if (t_fail_calloc && n * size == t_fail_calloc) {
        t_fail_calloc = 0;
        errno = ENOMEM;
        return NULL;
    }
    return __real_calloc(n, size);
}

void *__wrap_malloc(size_t size)
{
    void *p = __real_malloc(size);
    if (t_track_malloc && size == t_track_malloc && !t_seen_malloc)
        t_seen_malloc = p;
    return p;
}

void __wrap_free(void *p)
{
    if (p && p == t_seen_malloc)
        t_seen_freed = true;
    __real_free(p);
}

/* ---- tests ---- */
static void test_roundtrip(void **state)
{
    struct t_env e = {.engine = *state};
    static const size_t sizes[] = {1, 100, 511, 512, 4096, 50000, T_BLOCK - 1, T_BLOCK};
    const size_t ns = CMN_ARRAY_SIZE(sizes);

    for (int comp = 0; comp < 2; comp++) {
        t_path(&e, comp ? "rt-lz4" : "rt");
        struct hc_disk *d =
            t_open(&e, &(struct t_opts){.size = T_HDR + 8 * T_REGION, .compression = comp});
        for (size_t k = 0; k < ns; k++) {
            t_put(d, (int)k, sizes[k], true);
            t_put(d, (int)(100 + k), sizes[k], false);
        }
        /* Served from the region buffer, then from the device after a flush. */
        for (int pass = 0; pass < 2; pass++) {
            for (size_t k = 0; k < ns; k++) {
                assert_int_equal(t_check(d, (int)k, sizes[k], true), 1);
                assert_int_equal(t_check(d, (int)(100 + k), sizes[k], false), 1);
            }
            assert_int_equal(hc_disk_flush(d), 0);
        }
        struct hc_disk_stats st = t_stats(d);
        assert_int_equal(st.inserts, 2 * ns);
        assert_int_equal(st.hits, 4 * ns);
        assert_int_equal(st.entries, 2 * ns);
        assert_int_equal(st.checksum_failures, 0);
        assert_true(st.bytes_written >= 2 * T_BLOCK);
        if (comp) {
            /* Text compresses (the larger sizes), random bytes never do. */
            assert_true(st.compressed_blocks >= 4 && st.compressed_blocks <= ns);
            assert_true(st.compressed_saved_bytes > T_BLOCK);
        } else {
            assert_int_equal(st.compressed_blocks, 0);
        }

        /* Misses and bad arguments. */
        uint8_t big[T_BLOCK + 1] = {0};
        assert_int_equal(t_check(d, 9999, 10, true), 0);
        assert_int_equal(hc_disk_insert(d, 1, "k", 1, big, sizeof(big)), -E2BIG);
        assert_true(hc_disk_may_contain(d, t_hash("s3://bucket/object-0@etag-00000000")));
        assert_false(hc_disk_may_contain(d, 12345));
        hc_disk_close(d);
        unlink(e.path);
    }
}

static void test_index_bytes_per_entry(void **state)
{
    struct t_env e = {.engine = *state};
    struct {
        uint32_t block, region, len;
        uint64_t size;
    } cases[] = {
        {4096, 1u << 20, 4096, T_HDR + 32ull * (1u << 20)}, /* block-sized values */
        {T_BLOCK, T_REGION, 100, T_HDR + 16ull * T_REGION}, /* tiny values: the table grows */
    };

    for (size_t c = 0; c < CMN_ARRAY_SIZE(cases); c++) {
        t_path(&e, "ixb");
        struct hc_disk *d = t_open(&e, &(struct t_opts){.size = cases[c].size,
                                                        .block = cases[c].block,
                                                        .region = cases[c].region});
        struct hc_disk_stats st = t_stats(d);
        uint8_t *buf = calloc(1, cases[c].len);
        /* Fill past capacity so the table holds what a full cache holds. */
        uint64_t n = cases[c].size / cases[c].len * 3 / 2;
        for (uint64_t i = 0; i < n; i++) {
            char key[64];
            snprintf(key, sizeof(key), "k%llu", (unsigned long long)i);
            memcpy(buf, &i, CMN_MIN(sizeof(i), (size_t)cases[c].len));
            assert_int_equal(t_insert(d, key, buf, cases[c].len), 0);
        }
        st = t_stats(d);
        double per = (double)st.index_bytes / (double)st.entries;
        printf("index: %llu entries, %llu bytes, %.1f bytes/entry (value %u B)\n",
               (unsigned long long)st.entries, (unsigned long long)st.index_bytes, per,
               cases[c].len);
        /* Entries take header + key + value rounded to 512 bytes. */
        uint64_t fit = st.capacity / CMN_ALIGN_UP(cases[c].len + 56 + 16, 512u);
        assert_true(st.entries > fit / 2 && st.entries <= fit);
        assert_true(per <= 32.0);
        free(buf);
        hc_disk_close(d);
        unlink(e.path);
    }
}

/* Wait until the reclaimer has caught up (inserts no longer bounce): until it would wait
 * itself (hc_disk_reclaimer's condition) with no region half reclaimed. A fixed 20 ms
 * sleep here failed once under load. */
static void t_settle(struct hc_disk *d)
{
    assert_int_equal(hc_disk_flush(d), 0);
    for (int i = 0; i < 5000; i++) {
        pthread_mutex_lock(&d->lock);
        bool idle = d->nfree >= HC_DISK_CLEAN_TARGET || d->fifo_len == 0 ||
                    d->regions[d->fifo[d->fifo_head]].state != HC_DISK_R_CLEAN;
        for (uint32_t r = 0; idle && r < d->region_count; r++)
            idle = d->regions[r].state != HC_DISK_R_RECLAIMING;
        pthread_mutex_unlock(&d->lock);
        if (idle)
            return;
        usleep(1000);
    }
    fail_msg("the disk tier's reclaimer did not settle in 5 s");
}

static void test_fifo_reclaim(void **state)
{
    struct t_env e = {.engine = *state};
    const size_t len = 60u << 10; /* 4 entries per 256 KiB region */
    const int n = 80;

    t_path(&e, "fifo");
    struct hc_disk *d = t_open(&e, &(struct t_opts){.size = T_HDR + 8 * T_REGION});
    for (int i = 0; i < 4; i++)
        t_put(d, i, len, false);
    t_settle(d);
    for (int i = 4; i < n; i++) {
        /* Keep key 0 hot: hit while on the device, so reclaim writes it again. */
        if (i % 8 == 0) {
            t_settle(d);
            assert_int_equal(t_check(d, 0, len, false), 1);
        }
        t_put(d, i, len, false);
    }
    t_settle(d);

    struct hc_disk_stats st = t_stats(d);
    assert_true(st.evictions > 0);
    assert_true(st.reinserts > 0);
    assert_true(st.entries <= 8 * 4);
    assert_true(st.used <= st.capacity);
    assert_int_equal(t_check(d, 0, len, false), 1); /* hot: reinserted */
    for (int i = 1; i < 20; i++)
        assert_int_equal(t_check(d, i, len, false), 0); /* old and cold: gone */
    for (int i = n - 12; i < n; i++)
        assert_int_equal(t_check(d, i, len, false), 1); /* recent */
    assert_int_equal(t_stats(d).checksum_failures, 0);
    hc_disk_close(d);
    unlink(e.path);
}

static void test_device_errors(void **state)
{
    struct t_env e = {.engine = *state};
    const size_t len = 20000;
    struct dev *fdev;

    t_path(&e, "fault");
    assert_int_equal(dev_fault_wrap(t_dev(e.path, T_HDR + 8 * T_REGION), &fdev), 0);
    struct hc_disk *d = t_open(&e, &(struct t_opts){.dev = fdev});
    for (int i = 0; i < 4; i++)
        t_put(d, i, len, true);
    assert_int_equal(hc_disk_flush(d), 0);

    /* EIO on read: a miss (reported as -EIO), counted, entry dropped. */
    dev_fault_set(fdev, &(struct dev_fault_conf){.kind = DEV_FAULT_EIO_READ, .countdown = 1});
    char key[96];
    uint8_t *buf = malloc(T_BLOCK);
    t_key(key, sizeof(key), 1);
    assert_true(t_lookup(d, key, buf, T_BLOCK) < 0);
    assert_int_equal(t_stats(d).read_errors, 1);
    assert_int_equal(t_lookup(d, key, buf, T_BLOCK), -ENOENT);
    assert_int_equal(t_check(d, 0, len, true), 1);

    /* EIO, then ENOSPC on write: that region's entries are dropped, the cache goes on. */
    enum dev_fault_kind kinds[] = {DEV_FAULT_EIO_WRITE, DEV_FAULT_ENOSPC_WRITE};
    for (int k = 0; k < 2; k++) {
        uint64_t errs = t_stats(d).write_errors;
        dev_fault_set(
            fdev, &(struct dev_fault_conf){.kind = kinds[k], .countdown = 1, .repeat = UINT32_MAX});
        for (int i = 10; i < 13; i++)
            t_put(d, i + 10 * k, len, true);
        assert_int_equal(hc_disk_flush(d), -EIO);
        assert_true(t_stats(d).write_errors > errs);
        for (int i = 10; i < 13; i++)
            assert_int_equal(t_check(d, i + 10 * k, len, true), 0);
        dev_fault_set(fdev, &(struct dev_fault_conf){.kind = DEV_FAULT_NONE});
        t_put(d, 40 + k, len, true);
        assert_int_equal(hc_disk_flush(d), 0);
        assert_int_equal(t_check(d, 40 + k, len, true), 1);
        assert_int_equal(t_check(d, 0, len, true), 1);
    }
    free(buf);
    hc_disk_close(d);
    unlink(e.path);
}

/* A device whose writes take 200 ms (fd -1: engines use these ops synchronously). */
struct t_slow_dev {
    struct dev base;
    struct dev *inner;
};

static ssize_t t_slow_pread(struct dev *d, void *buf, size_t len, uint64_t off)
{
    return dev_pread(((struct t_slow_dev *)d)->inner, buf, len, off);
}

static ssize_t t_slow_pwrite(struct dev *d, const void *buf, size_t len, uint64_t off)
{
    usleep(200000);
    return dev_pwrite(((struct t_slow_dev *)d)->inner, buf, len, off);
}

static int t_slow_flush(struct dev *d)
{
    return dev_flush(((struct t_slow_dev *)d)->inner);
}

static int t_slow_fd(struct dev *d)
{
    return -1;
}

static void t_slow_destroy(struct dev *d)
{
    dev_close(((struct t_slow_dev *)d)->inner);
    free(d);
}

static const struct dev_ops t_slow_ops = {
    .version = 1,
    .name = "slow",
    .pread = t_slow_pread,
    .pwrite = t_slow_pwrite,
    .flush = t_slow_flush,
    .fd = t_slow_fd,
    .destroy = t_slow_destroy,
};

static void test_admission(void **state)
{
    struct t_env e = {.engine = *state};
    struct t_slow_dev *sd = calloc(1, sizeof(*sd));
    const size_t len = 60u << 10;
    int drops = 0, ok = 0;
    uint64_t worst = 0;

    t_path(&e, "slow");
    sd->inner = t_dev(e.path, T_HDR + 8 * T_REGION);
    sd->base = *sd->inner;
    sd->base.ops = &t_slow_ops;
    struct hc_disk *d = t_open(&e, &(struct t_opts){.dev = &sd->base, .wq = T_REGION});
    uint8_t *buf = malloc(len);
    for (int i = 0; i < 40; i++) {
        char key[96];
        t_key(key, sizeof(key), i);
        t_fill(buf, len, i, false);
        uint64_t t0 = cmn_now_ns();
        int rc = hc_disk_insert(d, t_hash(key), key, strlen(key), buf, len);
        worst = CMN_MAX(worst, cmn_now_ns() - t0);
        assert_true(rc == 0 || rc == -EAGAIN);
        drops += rc == -EAGAIN;
        ok += rc == 0;
    }
    struct hc_disk_stats st = t_stats(d);
    printf("admission: %d accepted, %d dropped, slowest insert %.2f ms\n", ok, drops, worst / 1e6);
    assert_true(drops > 0 && ok >= 4);
    assert_int_equal(st.admission_drops, drops);
    assert_true(worst < 100000000ull); /* never waits for the 200 ms write */
    /* Accepted entries stay readable. */
    assert_int_equal(t_check(d, 0, len, false), 1);
    free(buf);
    hc_disk_close(d);
    unlink(e.path);
}

struct t_conc {
    struct hc_disk *d;
    int id;
    int hits, wrong;
};

static void *t_conc_thread(void *arg)
{
    struct t_conc *c = arg;
    uint64_t st = (uint64_t)c->id * 7919 + 1;
    uint8_t *buf = malloc(T_BLOCK), *want = malloc(T_BLOCK);

    for (int op = 0; op < 300; op++) {
        int k = (int)(cmn_rand64(&st) % 64);
        size_t len = 1000 + (size_t)k * 700;
        char key[96];
        t_key(key, sizeof(key), k);
        if (cmn_rand64(&st) % 3 == 0) {
            t_fill(want, len, k, k % 2);
            int rc = hc_disk_insert(c->d, t_hash(key), key, strlen(key), want, len);
            if (rc != 0 && rc != -EAGAIN)
                c->wrong++;
            continue;
        }
        ssize_t n = t_lookup(c->d, key, buf, T_BLOCK);
        if (n >= 0) {
            t_fill(want, len, k, k % 2);
            c->hits++;
            if ((size_t)n != len || memcmp(buf, want, len) != 0)
                c->wrong++;
        }
        /* A partial read races reclaim and reinsertion the same way: the right chunks or
         * a miss (compressed and small values: -EOPNOTSUPP). */
        uint32_t off = (uint32_t)(cmn_rand64(&st) % len), start = hc_disk_range_off(off);
        n = t_lookup_range(c->d, key, off, 3000, buf, T_BLOCK);
        if (n >= 0) {
            t_fill(want, len, k, k % 2);
            c->hits++;
            if ((size_t)n != CMN_MIN(CMN_ALIGN_UP(off + 3000u, 4096u), (uint32_t)len) - start ||
                memcmp(buf, want + start, (size_t)n) != 0)
                c->wrong++;
        } else if (n != -ENOENT && n != -EOPNOTSUPP) {
            c->wrong++;
        }
        if (op % 50 == 0)
            hc_disk_flush(c->d);
    }
    free(buf);
    free(want);
    return NULL;
}

static void test_concurrent(void **state)
{
    struct t_env e = {.engine = *state};
    struct t_conc c[4];
    pthread_t th[4];
    struct hc_accounting acct = {.limit = 64u << 20};

    t_path(&e, "conc");
    /* Small enough that reclaim runs under the readers. */
    struct hc_disk *d = t_open(
        &e, &(struct t_opts){.size = T_HDR + 6 * T_REGION, .compression = true, .acct = &acct});
    for (int i = 0; i < 4; i++) {
        c[i] = (struct t_conc){.d = d, .id = i};
        assert_int_equal(pthread_create(&th[i], NULL, t_conc_thread, &c[i]), 0);
    }
    int hits = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(c[i].wrong, 0);
        hits += c[i].hits;
    }
    struct hc_disk_stats st = t_stats(d);
    assert_true(hits > 0);
    assert_true(st.inserts > 0);
    assert_true(st.partial_hits > 0);
    assert_int_equal(st.checksum_failures, 0);
    /* Region and read buffers are charged while they exist (idle ones included), and
     * never beyond the bound the cooperator reserves for them. */
    assert_true(atomic_load(&acct.used) <= hc_disk_mem_max(d));
    assert_true(atomic_load(&acct.used) <= 4ull * T_REGION + 8ull * (T_BLOCK + 8192));
    hc_disk_close(d);
    assert_int_equal(atomic_load(&acct.used), 0);
    unlink(e.path);
}

/* Read and region buffers are reused, not allocated per read or per region: one lookup
 * at a time keeps one read buffer however many reads it makes, and every buffer stays
 * charged until close, within hc_disk_mem_max(). */
static void test_buffer_reuse(void **state)
{
    struct t_env e = {.engine = *state};
    struct hc_accounting acct = {.limit = 64u << 20};

    t_path(&e, "reuse");
    struct hc_disk *d =
        t_open(&e, &(struct t_opts){.size = T_HDR + 8 * T_REGION, .wq = T_REGION, .acct = &acct});
    for (int i = 0; i < 3; i++)
        t_put(d, i, T_BLOCK, false);
    assert_int_equal(hc_disk_flush(d), 0);
    /* The one region buffer is idle now, still charged. */
    assert_int_equal(atomic_load(&acct.used), T_REGION);
    for (int i = 3; i < 30; i++) { /* ~9 regions through one buffer (reclaim reuses regions) */
        t_put(d, i, T_BLOCK, false);
        if (i % 3 == 2)
            assert_int_equal(hc_disk_flush(d), 0);
    }
    assert_int_equal(hc_disk_flush(d), 0);
    assert_int_equal(atomic_load(&acct.used), T_REGION);
    int hits = 0;
    for (int pass = 0; pass < 10; pass++)
        for (int i = 0; i < 30; i++)
            hits += t_check(d, i, T_BLOCK, false);
    assert_true(hits >= 100);
    uint64_t rbuf = atomic_load(&acct.used) - T_REGION;
    /* At least one read buffer (of the largest aligned entry read) and never more than
     * the io_depth buffers hc_disk_mem_max() allows, although 300 reads were made: they
     * are reused. How many are taken at once depends on timing (done runs before a read
     * gives its slot back, so the next lookup may start while the previous buffer is still
     * taken; under sanitizers and load more overlap), so only the bounds are asserted. */
    assert_true(rbuf >= T_BLOCK);
    assert_true(rbuf < (uint64_t)hits * T_BLOCK);
    assert_true(atomic_load(&acct.used) <= hc_disk_mem_max(d));
    assert_int_equal(t_stats(d).checksum_failures, 0);
    hc_disk_close(d);
    assert_int_equal(atomic_load(&acct.used), 0);
    unlink(e.path);
}

/* An insert whose chunk table cannot be allocated fails with -ENOMEM and leaves nothing
 * behind: not the compression attempt's buffer (random bytes do not compress, so the
 * table is needed after it), not an entry; the next insert works. */
static void test_insert_nomem(void **state)
{
    struct t_env e = {.engine = *state};
    t_path(&e, "nomem");
    struct hc_disk *d =
        t_open(&e, &(struct t_opts){.size = T_HDR + 8 * T_REGION, .compression = true});
    uint8_t *buf = malloc(T_BLOCK);
    char key[96];
    assert_non_null(buf);
    t_fill(buf, T_BLOCK, 7, false);
    t_key(key, sizeof(key), 7);

    t_fail_calloc = hc_disk_table_bytes(T_BLOCK);
    t_track_malloc = T_BLOCK; /* the compression buffer: malloc(len) */
    t_seen_malloc = NULL;
    t_seen_freed = false;
    int rc = hc_disk_insert(d, t_hash(key), key, strlen(key), buf, T_BLOCK);
    t_track_malloc = 0;
    assert_int_equal(t_fail_calloc, 0); /* the table's calloc was the one that failed */
    assert_int_equal(rc, -ENOMEM);
    assert_non_null(t_seen_malloc);
    assert_true(t_seen_freed);
    t_seen_malloc = NULL;
    assert_int_equal(t_check(d, 7, T_BLOCK, false), 0);
    assert_int_equal(t_stats(d).entries, 0);

    t_put(d, 7, T_BLOCK, false);
    assert_int_equal(t_check(d, 7, T_BLOCK, false), 1);
    free(buf);
    hc_disk_close(d);
    unlink(e.path);
}

int main(void)
{
    static const struct t_case cases[] = {
        {"roundtrip", test_roundtrip},       {"index_bytes_per_entry", test_index_bytes_per_entry},
        {"fifo_reclaim", test_fifo_reclaim}, {"device_errors", test_device_errors},
        {"admission", test_admission},       {"concurrent", test_concurrent},
        {"buffer_reuse", test_buffer_reuse}, {"insert_nomem", test_insert_nomem},
    };
    return t_run_cases(cases, CMN_ARRAY_SIZE(cases));
}
