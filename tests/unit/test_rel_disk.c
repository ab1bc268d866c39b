/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_rel_disk.c: device faults under a concurrent read workload through the cooperator
 * (hc_create with disk_dev = dev_fault_wrap(...)). For each fault kind (EIO on read and
 * write, ENOSPC, flipped bytes on read, short reads and writes), 8 threads fetch random
 * keys of a key space larger than both tiers while the main thread arms the fault again
 * and again at random countdowns: every fetch succeeds with exactly the origin's bytes
 * (a device failure costs an origin fetch, never data), the stats count the failures, and
 * the cache recovered from the file afterwards still gives right bytes. Also: a device
 * holding data that is no tierfs cache is refused with refuse_unknown and left untouched.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/log.h"
#include "hybridcache/hybridcache.h"
#include "ioengine/ioengine.h"

#define REL_BS (64u * 1024)
#define REL_IDS 1500u /* ~94 MiB of values: more than the memory and disk tiers */
#define REL_THREADS 8
#define REL_FETCHES 1500 /* per thread and fault kind */
#define REL_DISK (48ull << 20)
#define REL_MEM (8ull << 20)

static uint64_t rel_rng(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* The origin's value of @id: its length, and the bytes written to @buf (cap >= length). */
static size_t rel_value(unsigned id, unsigned char *buf)
{
    size_t len = id % 7 == 0 ? 1000 + id : REL_BS;
    uint64_t s = 0x9E3779B97F4A7C15ull * (id + 1);
    for (size_t i = 0; i < len; i += 8) {
        uint64_t v = rel_rng(&s);
        memcpy(buf + i, &v, len - i < 8 ? len - i : 8);
    }
    return len;
}

static _Atomic unsigned rel_origin_calls;

static void rel_fetcher(struct hc_flight *ctx, void *buf, size_t cap, void *arg)
{
    unsigned id = *(const unsigned *)arg;
    assert_true(cap >= REL_BS);
    rel_origin_calls++;
    hc_fetch_complete(ctx, (ssize_t)rel_value(id, buf));
}

/* Fetch @id and compare with the origin's bytes. @return 0, 1 wrong bytes, or -errno. */
static int rel_fetch_check(struct hc_cache *c, unsigned id, unsigned char *want,
                           enum hc_source *src)
{
    char key[32];
    int klen = snprintf(key, sizeof(key), "rel/%u", id);
    struct hc_entry *e = NULL;
    int rc = hc_fetch_sync(c, key, (size_t)klen, 0, rel_fetcher, &id, &e, src);
    if (rc < 0)
        return rc;
    size_t len = rel_value(id, want);
    int wrong = hc_entry_len(e) != len || memcmp(hc_entry_data(e), want, len) != 0;
    hc_entry_put(e);
    return wrong;
}

struct rel_worker {
    pthread_t t;
    struct hc_cache *c;
    unsigned idx;
    unsigned fetches, errors, wrong, disk, origin;
};

static void *rel_worker_main(void *p)
{
    struct rel_worker *w = p;
    unsigned char *want = malloc(REL_BS);
    uint64_t s = 12345 + w->idx;

    for (unsigned i = 0; i < REL_FETCHES; i++) {
        /* a skewed key choice: half the fetches go to the first fifth of the keys, so
         * the disk tier sees hits as well as misses */
        unsigned id = (unsigned)(rel_rng(&s) % REL_IDS);
        if (rel_rng(&s) & 1)
            id %= REL_IDS / 5;
        enum hc_source src;
        int rc = rel_fetch_check(w->c, id, want, &src);
        w->fetches++;
        if (rc < 0)
            w->errors++;
        else if (rc > 0)
            w->wrong++;
        else if (src == HC_SRC_DISK)
            w->disk++;
        else if (src == HC_SRC_ORIGIN)
            w->origin++;
    }
    free(want);
    return NULL;
}

static void rel_path(char *buf, size_t cap, const char *name)
{
    const char *dir = getenv("TIERFS_TEST_TMPDIR");
    snprintf(buf, cap, "%s/test_rel_disk.%d.%s", dir ? dir : "/tmp", (int)getpid(), name);
}

static struct dev *rel_dev(const char *path)
{
    struct dev_conf dc = {.path = path, .size = REL_DISK, .direct_io = true, .create = true};
    struct dev *d = NULL;
    if (dev_open(&dc, &d) == -EINVAL) { /* no O_DIRECT on this file system (tmpfs) */
        dc.direct_io = false;
        assert_int_equal(dev_open(&dc, &d), 0);
    }
    assert_non_null(d);
    return d;
}

static struct hc_conf rel_conf(struct dev *d)
{
    struct hc_conf conf = {
        .block_size = REL_BS,
        .mem_capacity = REL_MEM,
        .disk_dev = d,
        .io_engine = "psync",
        .region_size = 1u << 20,
        .write_mode = HC_WRITE_ON_INSERT,
        .identity = "test_rel_disk",
    };
    return conf;
}

static const struct {
    enum dev_fault_kind kind;
    const char *name;
    int counted; /* 1: disk_read_errors + checksum_failures, 2: disk_write_errors, 0: the
                    engine resubmits the rest of a short transfer, nothing to count */
} rel_kinds[] = {
    {DEV_FAULT_EIO_READ, "EIO on read", 1},
    {DEV_FAULT_FLIP_READ, "flipped byte on read", 1},
    {DEV_FAULT_SHORT_READ, "short read", 0},
    {DEV_FAULT_EIO_WRITE, "EIO on write", 2},
    {DEV_FAULT_ENOSPC_WRITE, "ENOSPC on write", 2},
    {DEV_FAULT_SHORT_WRITE, "short write", 0},
};

static void rel_one_kind(size_t k)
{
    char path[512];
    struct dev *fdev;
    struct hc_cache *c;
    struct hc_stats st;
    struct rel_worker w[REL_THREADS];
    uint64_t s = 777 + k;
    unsigned armed = 0;

    rel_path(path, sizeof(path), "faults");
    unlink(path);
    assert_int_equal(dev_fault_wrap(rel_dev(path), &fdev), 0);
    struct hc_conf conf = rel_conf(fdev);
    assert_int_equal(hc_create(&conf, &c), 0);
    rel_origin_calls = 0;

    /* warm the disk tier without faults: reads then hit it */
    unsigned char *want = malloc(REL_BS);
    enum hc_source src;
    for (unsigned id = 0; id < REL_IDS / 5; id++)
        assert_int_equal(rel_fetch_check(c, id, want, &src), 0);
    assert_int_equal(hc_flush(c), 0);

    memset(w, 0, sizeof(w));
    for (unsigned i = 0; i < REL_THREADS; i++) {
        w[i].c = c;
        w[i].idx = i;
        assert_int_equal(pthread_create(&w[i].t, NULL, rel_worker_main, &w[i]), 0);
    }
    /* Arm the fault again and again while the workers run: bursts of 1..4 faults after
     * 1..8 matching calls. */
    for (unsigned round = 0; round < 400; round++) {
        struct dev_fault_conf fc = {
            .kind = rel_kinds[k].kind,
            .countdown = 1 + (unsigned)(rel_rng(&s) % 8),
            .repeat = (unsigned)(rel_rng(&s) % 4),
        };
        dev_fault_set(fdev, &fc);
        armed++;
        usleep(2000);
    }
    unsigned fetches = 0, errors = 0, wrong = 0, disk = 0, origin = 0;
    for (unsigned i = 0; i < REL_THREADS; i++) {
        pthread_join(w[i].t, NULL);
        fetches += w[i].fetches;
        errors += w[i].errors;
        wrong += w[i].wrong;
        disk += w[i].disk;
        origin += w[i].origin;
    }
    dev_fault_set(fdev, &(struct dev_fault_conf){.kind = DEV_FAULT_NONE});
    hc_get_stats(c, &st);
    printf("# %-22s fetches %u (disk %u, origin %u), errors %u, wrong %u; disk read errors %llu, "
           "write errors %llu, checksum failures %llu\n",
           rel_kinds[k].name, fetches, disk, origin, errors, wrong,
           (unsigned long long)st.disk_read_errors, (unsigned long long)st.disk_write_errors,
           (unsigned long long)st.checksum_failures);
    assert_int_equal(wrong, 0);
    assert_int_equal(errors, 0); /* the origin never fails: a device fault is only a miss */
    assert_true(disk > 0);
    if (rel_kinds[k].counted == 1)
        assert_true(st.disk_read_errors + st.checksum_failures > 0);
    else if (rel_kinds[k].counted == 2)
        assert_true(st.disk_write_errors > 0);

    /* every key right after the faults stopped, then after a recovery from the file */
    for (unsigned id = 0; id < REL_IDS; id += 3)
        assert_int_equal(rel_fetch_check(c, id, want, &src), 0);
    hc_destroy(c);
    conf = rel_conf(rel_dev(path));
    assert_int_equal(hc_create(&conf, &c), 0);
    hc_get_stats(c, &st);
    unsigned hits = 0;
    for (unsigned id = 0; id < REL_IDS; id++) {
        assert_int_equal(rel_fetch_check(c, id, want, &src), 0);
        hits += src == HC_SRC_DISK;
    }
    printf("# %-22s recovered %llu entries, %u disk hits on a full pass, all right\n",
           rel_kinds[k].name, (unsigned long long)st.recovered_entries, hits);
    assert_true(hits > 0);
    hc_destroy(c);
    free(want);
    unlink(path);
}

static void test_faults_under_load(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof(rel_kinds) / sizeof(rel_kinds[0]); k++)
        rel_one_kind(k);
}

/* A device with someone else's data: refused and untouched with refuse_unknown. */
static void test_refuse_unknown(void **state)
{
    char path[512];
    struct hc_cache *c = NULL;
    const size_t n = 64 * 1024;
    unsigned char *junk = malloc(n), *back = malloc(n);
    uint64_t s = 99;

    (void)state;
    rel_path(path, sizeof(path), "foreign");
    for (size_t i = 0; i < n; i++)
        junk[i] = (unsigned char)rel_rng(&s);
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, junk, n), (ssize_t)n);
    assert_int_equal(ftruncate(fd, (off_t)REL_DISK), 0);
    close(fd);

    struct hc_conf conf = rel_conf(rel_dev(path));
    conf.refuse_unknown = true;
    assert_int_equal(hc_create(&conf, &c), -EEXIST);
    assert_null(c);
    fd = open(path, O_RDONLY);
    assert_int_equal(read(fd, back, n), (ssize_t)n);
    close(fd);
    assert_memory_equal(junk, back, n);

    conf = rel_conf(rel_dev(path)); /* refuse_unknown off: formatted */
    assert_int_equal(hc_create(&conf, &c), 0);
    hc_destroy(c);
    conf = rel_conf(rel_dev(path)); /* now a tierfs cache: accepted with refuse_unknown */
    conf.refuse_unknown = true;
    assert_int_equal(hc_create(&conf, &c), 0);
    hc_destroy(c);
    free(junk);
    free(back);
    unlink(path);
}

/* By path: a shorter file of someone else's data is neither extended nor changed by a
 * larger disk_capacity; a file the open created and could not use is removed again. */
static void test_refuse_unknown_path(void **state)
{
    char path[512], small[512];
    struct hc_cache *c = NULL;
    unsigned char junk[5000], back[sizeof(junk)];
    struct stat st;
    uint64_t s = 7;

    (void)state;
    rel_path(path, sizeof(path), "foreign-short");
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (unsigned char)rel_rng(&s);
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
    close(fd);

    struct hc_conf conf = rel_conf(NULL);
    conf.disk_path = path;
    conf.disk_capacity = REL_DISK;
    conf.refuse_unknown = true;
    assert_int_equal(hc_create(&conf, &c), -EEXIST);
    assert_null(c);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, (off_t)sizeof(junk)); /* not extended */
    fd = open(path, O_RDONLY);
    assert_int_equal(read(fd, back, sizeof(back)), (ssize_t)sizeof(back));
    close(fd);
    assert_memory_equal(junk, back, sizeof(junk));
    conf.refuse_unknown = false; /* told to: extended and formatted */
    assert_int_equal(hc_create(&conf, &c), 0);
    hc_destroy(c);
    c = NULL;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, (off_t)REL_DISK);
    unlink(path);

    /* too small for three regions: -ERANGE, and the file it made is gone */
    rel_path(small, sizeof(small), "too-small");
    unlink(small);
    conf = rel_conf(NULL);
    conf.region_size = 0; /* the default regions (16 MiB), and the memory they need */
    conf.mem_capacity = 128ull << 20;
    conf.disk_path = small;
    conf.disk_capacity = hc_disk_min_capacity(REL_BS) - 4096;
    assert_int_equal(hc_create(&conf, &c), -ERANGE);
    assert_null(c);
    assert_int_equal(stat(small, &st), -1);
    assert_int_equal(errno, ENOENT);
    conf.disk_capacity = hc_disk_min_capacity(REL_BS); /* the floor itself works */
    assert_int_equal(hc_create(&conf, &c), 0);
    hc_destroy(c);
    unlink(small);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refuse_unknown),
        cmocka_unit_test(test_refuse_unknown_path),
        cmocka_unit_test(test_faults_under_load),
    };
    tlog_set_level(LOG_CRIT); /* the injected faults log errors by design */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
