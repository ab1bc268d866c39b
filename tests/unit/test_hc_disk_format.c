/* SPDX-License-Identifier: Apache-2.0 */
/* test_hc_disk_format.c: the disk tier's on-device format and recovery: clean and crashed recovery,
 * corruption, duplicate sequences, identity mismatch, recovery time, other format versions; each on
 * psync and uring. */
#include "tests/unit/hc_disk_testlib.h"

static void test_recover_clean(void **state)
{
    struct t_env e = {.engine = *state};
    struct t_opts o = {.size = T_HDR + 16 * T_REGION, .compression = true};

    t_path(&e, "clean");
    struct hc_disk *d = t_open(&e, &o);
    for (int i = 0; i < 30; i++)
        t_put(d, i, 1000 + (size_t)i * 2000, i % 2);
    char key[96];
    t_key(key, sizeof(key), 7);
    assert_int_equal(hc_disk_remove(d, t_hash(key), key, strlen(key)), 0);
    assert_int_equal(hc_disk_remove(d, t_hash(key), key, strlen(key)), -ENOENT);
    hc_disk_close(d);

    d = t_open(&e, &o);
    struct hc_disk_stats st = t_stats(d);
    assert_int_equal(st.recovered_entries, 29);
    assert_int_equal(st.entries, 29);
    assert_true(st.recovery_ns > 0);
    for (int i = 0; i < 30; i++)
        assert_int_equal(t_check(d, i, 1000 + (size_t)i * 2000, i % 2), i != 7);
    /* Close again without inserting: still everything. */
    hc_disk_close(d);
    d = t_open(&e, &o);
    assert_int_equal(t_stats(d).entries, 29);
    hc_disk_close(d);
    unlink(e.path);
}

/* Child of the crash test: write durable and non-durable data, report where, die. */
static void t_crash_child(const struct t_env *e, const struct t_opts *o, int fd)
{
    struct hc_disk *d = t_open(e, o);
    const size_t len = 60u << 10;
    uint64_t offs[4];
    uint32_t l;

    for (int i = 0; i < 10; i++) /* A: durable */
        t_put(d, i, len, false);
    assert_int_equal(hc_disk_flush(d), 0);
    for (int i = 10; i < 14; i++) /* B: exactly one region, then durable */
        t_put(d, i, len, false);
    assert_int_equal(hc_disk_flush(d), 0);
    for (int i = 0; i < 4; i++) {
        char key[96];
        t_key(key, sizeof(key), 10 + i);
        assert_int_equal(hc_disk_debug_locate(d, t_hash(key), &offs[i], &l), 0);
    }
    for (int i = 14; i < 17; i++) /* C: still in memory when the process dies */
        t_put(d, i, len, false);
    assert_int_equal(write(fd, offs, sizeof(offs)), (ssize_t)sizeof(offs));
    _exit(0); /* no close: kill -9 equivalent */
}

static void test_recover_crash(void **state)
{
    struct t_env e = {.engine = *state};
    struct t_opts o = {.size = T_HDR + 12 * T_REGION};
    const size_t len = 60u << 10;
    uint64_t offs[4];
    int pfd[2];

    t_path(&e, "crash");
    assert_int_equal(pipe(pfd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(pfd[0]);
        t_crash_child(&e, &o, pfd[1]);
    }
    close(pfd[1]);
    assert_int_equal(read(pfd[0], offs, sizeof(offs)), (ssize_t)sizeof(offs));
    close(pfd[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    /* Region B was half written when the process died: its second half and footer never
     * reached the device. */
    assert_true(offs[0] < offs[1] && offs[1] < offs[2] && offs[3] < offs[0] + T_REGION);
    t_scribble(e.path, offs[2], offs[0] + T_REGION - offs[2], 0);

    struct hc_disk *d = t_open(&e, &o);
    struct hc_disk_stats st = t_stats(d);
    int served = 0;
    for (int i = 0; i < 10; i++)
        assert_int_equal(t_check(d, i, len, false), 1); /* durable before the crash */
    assert_int_equal(t_check(d, 10, len, false), 1);    /* the half that landed */
    assert_int_equal(t_check(d, 11, len, false), 1);
    for (int i = 12; i < 17; i++)
        served += t_check(d, i, len, false); /* lost, never corrupt */
    assert_int_equal(served, 0);
    assert_int_equal(st.recovered_entries, 12);
    /* The cache keeps working: new inserts survive a clean restart. */
    t_put(d, 12, len, false);
    hc_disk_close(d);
    d = t_open(&e, &o);
    assert_int_equal(t_check(d, 12, len, false), 1);
    assert_int_equal(t_check(d, 0, len, false), 1);
    hc_disk_close(d);
    unlink(e.path);
}

static void test_corruption(void **state)
{
    struct t_env e = {.engine = *state};
    struct t_opts o = {.size = T_HDR + 8 * T_REGION};
    const size_t len = 30000;
    char key[96];
    uint64_t off;
    uint32_t l;

    t_path(&e, "corrupt");
    struct hc_disk *d = t_open(&e, &o);
    for (int i = 0; i < 6; i++)
        t_put(d, i, len, false);
    assert_int_equal(hc_disk_flush(d), 0);

    /* Garbage in the value of key 2, in the header of key 4. */
    t_key(key, sizeof(key), 2);
    assert_int_equal(hc_disk_debug_locate(d, t_hash(key), &off, &l), 0);
    t_scribble(e.path, off + 10000, 16, 0xA5);
    t_key(key, sizeof(key), 4);
    assert_int_equal(hc_disk_debug_locate(d, t_hash(key), &off, &l), 0);
    t_scribble(e.path, off + 20, 4, 0x5A);

    assert_int_equal(t_check(d, 2, len, false), 0);
    assert_int_equal(t_check(d, 4, len, false), 0);
    for (int i = 0; i < 6; i++)
        if (i != 2 && i != 4)
            assert_int_equal(t_check(d, i, len, false), 1);
    struct hc_disk_stats st = t_stats(d);
    assert_int_equal(st.checksum_failures, 2);
    assert_false(hc_disk_may_contain(d, t_hash(key))); /* dropped from the index */

    /* A fresh insert of the same key works, from memory and from the device. */
    t_put(d, 2, len, false);
    assert_int_equal(t_check(d, 2, len, false), 1);
    assert_int_equal(hc_disk_flush(d), 0);
    assert_int_equal(t_check(d, 2, len, false), 1);

    /* Corruption found at recovery time is caught on read as well. */
    t_key(key, sizeof(key), 5);
    assert_int_equal(hc_disk_debug_locate(d, t_hash(key), &off, &l), 0);
    hc_disk_close(d);
    t_scribble(e.path, off + 100, 1, 0xFF);
    d = t_open(&e, &o);
    assert_int_equal(t_check(d, 5, len, false), 0);
    assert_int_equal(t_stats(d).checksum_failures, 1);
    assert_int_equal(t_check(d, 0, len, false), 1);
    hc_disk_close(d);
    unlink(e.path);
}

/* Copy @len bytes at @from to @to in the device file behind the cache's back. */
static void t_copy(const char *path, uint64_t from, uint64_t to, size_t len)
{
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t *buf = malloc(len);
    assert_non_null(buf);
    assert_int_equal(pread(fd, buf, len, (off_t)from), (ssize_t)len);
    assert_int_equal(pwrite(fd, buf, len, (off_t)to), (ssize_t)len);
    fsync(fd);
    close(fd);
    free(buf);
}

/*
 * Fuzz finding: a misdirected write put copies of region 0's entries at the start of
 * region 2, whose footer is garbage. The header scan of region 2 then claims region 0's
 * fill sequence; recovery must keep one region per sequence (the one whose footer
 * verified) or the reclaim FIFO holds a duplicate and the index points into a copy.
 */
static void test_recover_dup_seq(void **state)
{
    struct t_env e = {.engine = *state};
    struct t_opts o = {.size = T_HDR + 6 * T_REGION};
    const size_t len = 50000;
    char key[96];
    uint64_t r0, off;
    uint32_t l;

    t_path(&e, "dupseq");
    struct hc_disk *d = t_open(&e, &o);
    for (int i = 0; i < 3; i++)
        t_put(d, i, len, false);
    assert_int_equal(hc_disk_flush(d), 0);
    t_key(key, sizeof(key), 0);
    assert_int_equal(hc_disk_debug_locate(d, t_hash(key), &r0, &l), 0); /* region 0, offset 0 */
    hc_disk_close(d);

    /* Region 0's entries (not its tail) into region 2; region 2's tail is garbage. */
    t_copy(e.path, r0, r0 + 2 * T_REGION, 3 * (len + 4096));
    t_scribble(e.path, r0 + 3 * T_REGION - 8192, 8192, 0xA5);

    struct hc_disk_info info;
    struct dev *dev = t_dev(e.path, o.size);
    assert_int_equal(hc_disk_inspect(dev, e.engine, &info), 0);
    dev_close(dev);
    assert_int_equal(info.kind, HC_DISK_KIND_CACHE);
    assert_int_equal(info.regions_used, 1); /* region 2's copy is not a second fill */
    assert_int_equal(info.entries, 3);

    d = t_open(&e, &o);
    struct hc_disk_stats st = t_stats(d); /* invariants, in debug builds */
    assert_int_equal(st.recovered_entries, 3);
    for (int i = 0; i < 3; i++) {
        t_key(key, sizeof(key), i);
        assert_int_equal(hc_disk_debug_locate(d, t_hash(key), &off, &l), 0);
        assert_true(off >= r0 && off < r0 + T_REGION); /* the original, not the copy */
        assert_int_equal(t_check(d, i, len, false), 1);
    }
    /* Fill every region several times over: reclaim walks a FIFO of distinct fills. */
    for (int i = 100; i < 100 + 40; i++)
        t_put(d, i, len, false);
    assert_int_equal(hc_disk_flush(d), 0);
    t_stats(d);
    int served = 0;
    for (int i = 100; i < 100 + 40; i++)
        served += t_check(d, i, len, false);
    assert_true(served > 0);
    hc_disk_close(d);
    d = t_open(&e, &o);
    t_stats(d);
    for (int i = 0; i < 140; i++)
        t_check(d, i, len, false); /* hits or misses, never wrong bytes */
    hc_disk_close(d);
    unlink(e.path);
}

struct t_log {
    int formats, lines;
    char last[512];
};

static void t_sink(int level, const char *msg, void *arg)
{
    struct t_log *l = arg;
    l->lines++;
    if (strstr(msg, "formatting"))
        l->formats++;
    snprintf(l->last, sizeof(l->last), "%s", msg);
}

static void test_identity_mismatch(void **state)
{
    struct t_env e = {.engine = *state};
    struct t_opts o = {.size = T_HDR + 8 * T_REGION, .identity = "https://s3.a/bucket-a"};
    struct t_log log;

    t_path(&e, "ident");
    tlog_set_sink(t_sink, &log);
    memset(&log, 0, sizeof(log));
    struct hc_disk *d = t_open(&e, &o); /* empty device: formatted once */
    assert_int_equal(log.formats, 1);
    for (int i = 0; i < 5; i++)
        t_put(d, i, 1000, true);
    hc_disk_close(d);

    memset(&log, 0, sizeof(log));
    d = t_open(&e, &o); /* same cache: recovered, not wiped */
    assert_int_equal(log.formats, 0);
    assert_int_equal(t_stats(d).entries, 5);
    hc_disk_close(d);

    struct {
        const char *identity;
        uint32_t block;
        bool garbage;
        const char *why;
    } cases[] = {
        {"https://s3.b/bucket-b", 0, false, "identity"},
        {"https://s3.b/bucket-b", 128u << 10, false, "block size"},
        {"https://s3.b/bucket-b", 128u << 10, true, "unknown data"},
    };
    for (size_t c = 0; c < CMN_ARRAY_SIZE(cases); c++) {
        struct t_opts o2 = o;
        o2.identity = cases[c].identity;
        o2.block = cases[c].block;
        if (cases[c].garbage)
            t_scribble(e.path, 0, 4096, 0x42);
        memset(&log, 0, sizeof(log));
        d = t_open(&e, &o2);
        assert_int_equal(log.formats, 1);
        assert_int_equal(log.lines, 1); /* one line, naming the cause */
        assert_non_null(strstr(log.last, cases[c].why));
        struct hc_disk_stats st = t_stats(d);
        assert_int_equal(st.entries, 0);
        assert_int_equal(st.recovered_entries, 0);
        assert_int_equal(t_check(d, 1, 1000, true), 0);
        t_put(d, 1, 1000, true);
        hc_disk_close(d);
    }
    tlog_set_sink(NULL, NULL);
    unlink(e.path);
}

/* Recovery reads summaries only: time it. 64 MiB always; 4 GiB of 1 MiB blocks with
 * TIERFS_DISK_RECOVERY_BENCH=1 (writes 4 GiB, about 5 s per engine here). */
static void test_recovery_time(void **state)
{
    struct t_env e = {.engine = *state};
    const char *bench = getenv("TIERFS_DISK_RECOVERY_BENCH");
    const uint64_t n = (bench && *bench == '1') ? 4096 : 64; /* 1 MiB blocks */
    const uint32_t block = 1u << 20, region = 16u << 20;
    /* At least 14 blocks fit a 16 MiB region; 3 spare regions keep reclaim idle. */
    struct t_opts o = {
        .size = 4096 + ((n + 13) / 14 + 3) * region, .block = block, .region = region};

    t_path(&e, "rtime");
    struct hc_disk *d = t_open(&e, &o);
    uint8_t *buf = malloc(block);
    t_fill(buf, block, 1, false);
    for (uint64_t i = 0; i < n; i++) {
        char key[64];
        snprintf(key, sizeof(key), "bench/%llu", (unsigned long long)i);
        memcpy(buf, &i, sizeof(i));
        assert_int_equal(t_insert(d, key, buf, block), 0);
    }
    hc_disk_close(d);
    d = t_open(&e, &o);
    struct hc_disk_stats st = t_stats(d);
    double per = (double)st.index_bytes / (double)(st.entries ? st.entries : 1);
    printf("recovery: %llu entries (%llu MiB) in %.1f ms, %.1f index bytes/entry\n",
           (unsigned long long)st.recovered_entries,
           (unsigned long long)(st.recovered_entries * block >> 20), st.recovery_ns / 1e6, per);
    assert_int_equal(st.recovered_entries, n);
    assert_true(st.recovery_ns < 2000000000ull);
    if (n >= 4096)
        assert_true(per <= 32.0);
    assert_int_equal(t_lookup(d, "bench/3", buf, block), block);
    uint64_t id;
    memcpy(&id, buf, sizeof(id));
    assert_int_equal(id, 3);
    free(buf);
    hc_disk_close(d);
    unlink(e.path);
}

/* A cache of another format version (here: the version before chunk checksums) is wiped. */
static void test_format_version(void **state)
{
    struct t_env e = {.engine = *state};
    struct t_opts o = {.size = T_HDR + 8 * T_REGION};
    struct hc_disk_info info;
    struct hc_disk_hdr h;

    t_path(&e, "version");
    struct hc_disk *d = t_open(&e, &o);
    for (int i = 0; i < 4; i++)
        t_put(d, i, T_BLOCK, false);
    hc_disk_close(d);

    int fd = open(e.path, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, &h, sizeof(h), 0), (ssize_t)sizeof(h));
    assert_int_equal(h.version, HC_DISK_FORMAT_VERSION);
    h.version = 1;
    h.hdr_crc = 0;
    h.hdr_crc = cmn_crc32c(0, &h, sizeof(h));
    assert_int_equal(pwrite(fd, &h, sizeof(h), 0), (ssize_t)sizeof(h));
    close(fd);

    struct dev *dev = t_dev(e.path, 0);
    assert_int_equal(hc_disk_inspect(dev, e.engine, &info), 0);
    assert_int_equal(info.kind, HC_DISK_KIND_VERSION);
    assert_int_equal(info.version, 1);
    dev_close(dev);

    d = t_open(&e, &o);
    struct hc_disk_stats st = t_stats(d);
    assert_int_equal(st.entries, 0);
    assert_int_equal(t_check(d, 0, T_BLOCK, false), 0);
    t_put(d, 0, T_BLOCK, false);
    hc_disk_close(d);
    dev = t_dev(e.path, 0);
    assert_int_equal(hc_disk_inspect(dev, e.engine, &info), 0);
    assert_int_equal(info.kind, HC_DISK_KIND_CACHE);
    assert_int_equal(info.version, HC_DISK_FORMAT_VERSION);
    assert_int_equal(info.entries, 1);
    dev_close(dev);
    unlink(e.path);
}

int main(void)
{
    static const struct t_case cases[] = {
        {"recover_clean", test_recover_clean},         {"recover_crash", test_recover_crash},
        {"recover_dup_seq", test_recover_dup_seq},     {"corruption", test_corruption},
        {"identity_mismatch", test_identity_mismatch}, {"recovery_time", test_recovery_time},
        {"format_version", test_format_version},
    };
    return t_run_cases(cases, CMN_ARRAY_SIZE(cases));
}
