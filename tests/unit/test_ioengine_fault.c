/* SPDX-License-Identifier: Apache-2.0 */
/* test_ioengine_fault.c: ioengine/ under faults: short transfers, injected errors and bit flips
 * (the fault device), the fallback to psync without io_uring, a raw block device; each
 * device/engine test on psync and uring. */
#include "tests/unit/ioengine_testlib.h"
#include "tests/unit/t_strict.h"

/* ---- short transfers ---- */
static struct dev *open_fault_dev(struct fx *f, uint64_t size)
{
    struct dev *inner = open_dev(f->path, size, true), *d = NULL;
    assert_int_equal(dev_fault_wrap(inner, &d), 0);
    assert_int_equal(dev_size(d), size);
    assert_int_equal(dev_align(d), dev_align(inner));
    return d;
}

static void set_fault(struct dev *d, enum dev_fault_kind kind, unsigned countdown, unsigned repeat)
{
    struct dev_fault_conf fc = {.kind = kind, .countdown = countdown, .repeat = repeat};
    dev_fault_set(d, &fc);
}

static void test_short_fault(void **state)
{
    struct fx *f = fx_get(state);
    struct dev *d = open_fault_dev(f, MIB);
    struct ioeng *e = make_eng(f, d, 0, false);
    uint32_t a = dev_align(d);
    char *w = ioeng_buf_alloc(64 * KIB), *r = ioeng_buf_alloc(64 * KIB);
    struct ioeng_stats st;
    uint64_t seed = 5;
    struct batch b;
    struct treq t;

    fill_rand(w, 64 * KIB, &seed);
    /* One short write: the engine writes the rest, the data is all there. */
    set_fault(d, DEV_FAULT_SHORT_WRITE, 1, 0);
    assert_int_equal(ioeng_rw_sync(e, IOENG_WRITE, w, 64 * KIB, 256 * KIB), 64 * KIB);
    ioeng_get_stats(e, &st);
    assert_true(st.short_resubmits >= 1);
    assert_int_equal(ioeng_rw_sync(e, IOENG_READ, r, 64 * KIB, 256 * KIB), 64 * KIB);
    assert_memory_equal(w, r, 64 * KIB);

    /* Several short reads in a row: finished piece by piece, still complete and correct. */
    set_fault(d, DEV_FAULT_SHORT_READ, 1, 2);
    memset(r, 0, 64 * KIB);
    assert_int_equal(ioeng_rw_sync(e, IOENG_READ, r, 64 * KIB, 256 * KIB), 64 * KIB);
    assert_memory_equal(w, r, 64 * KIB);
    ioeng_get_stats(e, &st);
    assert_true(st.short_resubmits >= 4);

    /* Always short: shrinks to a partial block, which fails; never a short success. */
    set_fault(d, DEV_FAULT_SHORT_READ, 1, UINT32_MAX);
    assert_int_equal(ioeng_rw_sync(e, IOENG_READ, r, 64 * KIB, 256 * KIB), -EIO);
    assert_int_equal(ioeng_rw_sync(e, IOENG_READ, r, a, 0), -EIO);
    set_fault(d, DEV_FAULT_SHORT_WRITE, 1, UINT32_MAX);
    batch_init(&b, 1);
    treq_set(&t, &b, IOENG_WRITE, w, 64 * KIB, 0);
    assert_int_equal(ioeng_submit(e, &t.r), 0);
    batch_wait(&b);
    assert_int_equal(t.calls, 1);
    assert_int_equal(t.r.result, -EIO);
    dev_fault_set(d, NULL);
    assert_int_equal(ioeng_rw_sync(e, IOENG_WRITE, w, 64 * KIB, 0), 64 * KIB);
    ioeng_get_stats(e, &st);
    assert_int_equal(st.errors, 3);
    ioeng_destroy(e);
    dev_close(d);
    ioeng_buf_free(w);
    ioeng_buf_free(r);
}

/* A real short read: the file shrinks under the device, a read crosses the new EOF. */
static void test_short_eof(void **state)
{
    struct fx *f = fx_get(state);
    struct dev *d = open_dev(f->path, MIB, true);
    struct ioeng *e = make_eng(f, d, 4, false);
    char *buf = ioeng_buf_alloc(64 * KIB);
    struct ioeng_stats st;
    struct batch b;
    struct treq t;

    memset(buf, 0x33, 64 * KIB);
    assert_int_equal(ioeng_rw_sync(e, IOENG_WRITE, buf, 64 * KIB, MIB - 64 * KIB), 64 * KIB);
    assert_int_equal(truncate(f->path, MIB - 8 * KIB), 0);

    /* Before the new EOF: still fine. */
    assert_int_equal(ioeng_rw_sync(e, IOENG_READ, buf, 32 * KIB, MIB - 64 * KIB), 32 * KIB);
    /* Across it: the first attempt gets 56 KiB, the rest hits EOF, the request fails. */
    batch_init(&b, 1);
    treq_set(&t, &b, IOENG_READ, buf, 64 * KIB, MIB - 64 * KIB);
    assert_int_equal(ioeng_submit(e, &t.r), 0);
    batch_wait(&b);
    assert_int_equal(t.calls, 1);
    assert_int_equal(t.r.result, -EIO);
    ioeng_get_stats(e, &st);
    assert_int_equal(st.short_resubmits, 1);
    assert_int_equal(st.errors, 1);
    /* Wholly past EOF: 0 bytes, no progress, -EIO. */
    assert_int_equal(ioeng_rw_sync(e, IOENG_READ, buf, 8 * KIB, MIB - 8 * KIB), -EIO);
    ioeng_destroy(e);
    dev_close(d);
    ioeng_buf_free(buf);
}

/* ---- errors ---- */
static void test_fault_errors(void **state)
{
    struct fx *f = fx_get(state);
    struct dev *d = open_fault_dev(f, MIB);
    struct ioeng *e = make_eng(f, d, 0, false);
    char *buf = ioeng_buf_alloc(16 * KIB);
    struct ioeng_stats st;
    struct batch b;
    struct treq t;

    memset(buf, 0x11, 16 * KIB);
    set_fault(d, DEV_FAULT_EIO_READ, 1, 0);
    assert_int_equal(ioeng_rw_sync(e, IOENG_WRITE, buf, 16 * KIB, 0), 16 * KIB); /* reads only */
    batch_init(&b, 1);
    treq_set(&t, &b, IOENG_READ, buf, 16 * KIB, 0);
    assert_int_equal(ioeng_submit(e, &t.r), 0);
    batch_wait(&b);
    assert_int_equal(t.calls, 1);
    assert_int_equal(t.r.result, -EIO);
    assert_int_equal(ioeng_rw_sync(e, IOENG_READ, buf, 16 * KIB, 0), 16 * KIB); /* once only */

    set_fault(d, DEV_FAULT_EIO_WRITE, 1, 0);
    assert_int_equal(ioeng_rw_sync(e, IOENG_READ, buf, 16 * KIB, 0), 16 * KIB);
    assert_int_equal(ioeng_rw_sync(e, IOENG_WRITE, buf, 16 * KIB, 0), -EIO);
    assert_int_equal(ioeng_rw_sync(e, IOENG_WRITE, buf, 16 * KIB, 0), 16 * KIB);

    set_fault(d, DEV_FAULT_ENOSPC_WRITE, 1, 0);
    assert_int_equal(ioeng_rw_sync(e, IOENG_WRITE, buf, 16 * KIB, 0), -ENOSPC);

    /* Countdown 3, repeat 1: the 3rd and 4th writes fail, the rest pass. */
    set_fault(d, DEV_FAULT_ENOSPC_WRITE, 3, 1);
    assert_int_equal(ioeng_rw_sync(e, IOENG_WRITE, buf, 16 * KIB, 0), 16 * KIB);
    assert_int_equal(ioeng_rw_sync(e, IOENG_WRITE, buf, 16 * KIB, 0), 16 * KIB);
    assert_int_equal(ioeng_rw_sync(e, IOENG_WRITE, buf, 16 * KIB, 0), -ENOSPC);
    assert_int_equal(ioeng_rw_sync(e, IOENG_WRITE, buf, 16 * KIB, 0), -ENOSPC);
    assert_int_equal(ioeng_rw_sync(e, IOENG_WRITE, buf, 16 * KIB, 0), 16 * KIB);

    /* The wrapper's own sync ops inject too. */
    set_fault(d, DEV_FAULT_EIO_READ, 1, 0);
    assert_int_equal(dev_pread(d, buf, 16 * KIB, 0), -EIO);
    assert_int_equal(dev_pread(d, buf, 16 * KIB, 0), 16 * KIB);
    assert_int_equal(dev_flush(d), 0);

    ioeng_get_stats(e, &st);
    assert_int_equal(st.errors, 5);
    assert_int_equal(st.inflight, 0);
    ioeng_destroy(e);
    dev_close(d);
    ioeng_buf_free(buf);
}

static void test_fault_flip(void **state)
{
    struct fx *f = fx_get(state);
    struct dev *d = open_fault_dev(f, MIB);
    struct ioeng *e = make_eng(f, d, 0, false);
    char *w = ioeng_buf_alloc(32 * KIB), *r = ioeng_buf_alloc(32 * KIB);
    uint64_t seed = 6;
    size_t diff = 0;

    fill_rand(w, 32 * KIB, &seed);
    assert_int_equal(ioeng_rw_sync(e, IOENG_WRITE, w, 32 * KIB, 96 * KIB), 32 * KIB);
    set_fault(d, DEV_FAULT_FLIP_READ, 1, 0);
    assert_int_equal(ioeng_rw_sync(e, IOENG_READ, r, 32 * KIB, 96 * KIB), 32 * KIB);
    for (size_t i = 0; i < 32 * KIB; i++)
        diff += w[i] != r[i];
    assert_int_equal(diff, 1);
    /* The device itself was never corrupted. */
    assert_int_equal(ioeng_rw_sync(e, IOENG_READ, r, 32 * KIB, 96 * KIB), 32 * KIB);
    assert_memory_equal(w, r, 32 * KIB);
    ioeng_destroy(e);
    dev_close(d);
    ioeng_buf_free(w);
    ioeng_buf_free(r);
}

/* ---- no io_uring: fallback to psync ---- */
static int log_unavailable; /* the child's count of "not available" lines */

static void count_sink(int level, const char *msg, void *arg)
{
    if (strstr(msg, "io_uring is not available"))
        log_unavailable++;
}

/* In a child: io_uring_setup fails with @err, as under a seccomp policy or an old kernel. */
static int fallback_child(const char *path, int err)
{
    struct sock_filter filt[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (unsigned)err),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = CMN_ARRAY_SIZE(filt), .filter = filt};
    struct dev_conf conf = {.path = path, .size = MIB, .direct_io = true, .create = true};
    struct ioeng *e[2];
    struct dev *d;
    char *buf;

    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog))
        return 10;
    tlog_set_sink(count_sink, NULL);
    if (dev_open(&conf, &d) != 0)
        return 11;
    buf = ioeng_buf_alloc(4 * KIB);
    memset(buf, 0x5c, 4 * KIB);
    for (int i = 0; i < 2; i++) {
        if (ioeng_create("uring", d, NULL, &e[i]) != 0)
            return 12;
        if (strcmp(ioeng_name(e[i]), "psync") != 0)
            return 13;
        if (ioeng_rw_sync(e[i], IOENG_WRITE, buf, 4 * KIB, 0) != 4 * KIB)
            return 14;
    }
    ioeng_destroy(e[0]);
    ioeng_destroy(e[1]);
    dev_close(d);
    ioeng_buf_free(buf);
    return log_unavailable == 1 ? 0 : 15; /* one line, not one per engine */
}

static void test_uring_fallback(void **state)
{
    struct fx *f = *state;
    const int errs[] = {ENOSYS, EPERM};

    for (size_t i = 0; i < CMN_ARRAY_SIZE(errs); i++) {
        int status;
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
            _exit(fallback_child(f->path, errs[i]));
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
        assert_int_equal(unlink(f->path), 0);
    }
}

/* ---- raw block device ---- */
static void test_blockdev(void **state)
{
    struct fx *f = fx_get(state);
    char cmd[PATH_MAX + 64], *nl;
    struct dev_conf conf = {.direct_io = true};
    struct dev *d;
    struct ioeng *e;
    char *w = ioeng_buf_alloc(64 * KIB), *r = ioeng_buf_alloc(64 * KIB);
    uint64_t seed = 7;
    FILE *p;
    int fd;

    fd = open(f->path, O_CREAT | O_RDWR, 0600);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, 8 * MIB), 0);
    close(fd);
    snprintf(cmd, sizeof(cmd), "losetup -f --show %s 2>/dev/null", f->path);
    p = geteuid() == 0 ? popen(cmd, "r") : NULL;
    if (!p || !fgets(f->loopdev, sizeof(f->loopdev), p) || strncmp(f->loopdev, "/dev/", 5)) {
        f->loopdev[0] = '\0';
        if (p)
            pclose(p);
        ioeng_buf_free(w);
        ioeng_buf_free(r);
        T_SKIP("no loop device (no losetup, not root, or none in this container)");
    }
    pclose(p);
    nl = strchr(f->loopdev, '\n');
    if (nl)
        *nl = '\0';

    conf.path = f->loopdev;
    assert_int_equal(dev_open(&conf, &d), 0);
    assert_true(d->is_blockdev);
    assert_int_equal(dev_size(d), 8 * MIB);
    assert_true(dev_align(d) >= 512 && CMN_IS_POW2(dev_align(d)));
    e = make_eng(f, d, 0, true);
    fill_rand(w, 64 * KIB, &seed);
    assert_int_equal(ioeng_rw_sync(e, IOENG_WRITE, w, 64 * KIB, 8 * MIB - 64 * KIB), 64 * KIB);
    assert_int_equal(ioeng_rw_sync(e, IOENG_READ, r, 64 * KIB, 8 * MIB - 64 * KIB), 64 * KIB);
    assert_memory_equal(w, r, 64 * KIB);
    assert_int_equal(ioeng_rw_sync(e, IOENG_READ, r, 64 * KIB, 8 * MIB), -EINVAL);
    assert_int_equal(dev_flush(d), 0);
    ioeng_destroy(e);
    dev_close(d);

    /* A size below the device's limits the usable part. */
    conf.size = 2 * MIB;
    assert_int_equal(dev_open(&conf, &d), 0);
    assert_int_equal(dev_size(d), 2 * MIB);
    dev_close(d);
    ioeng_buf_free(w);
    ioeng_buf_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        BOTH(test_short_fault),
        BOTH(test_short_eof),
        BOTH(test_fault_errors),
        BOTH(test_fault_flip),
        BOTH(test_blockdev),
        cmocka_unit_test_prestate_setup_teardown(test_uring_fallback, fx_setup, fx_teardown, NULL),
    };

    uring_ok = probe_uring();
    if (!uring_ok)
        fprintf(stderr, "io_uring unavailable here: the uring variants skip\n");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
