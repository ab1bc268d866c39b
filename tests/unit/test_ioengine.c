/* SPDX-License-Identifier: Apache-2.0 */
/* test_ioengine.c: ioengine/: the engine registry, devices (create, reopen, direct IO, open
 * errors), alignment, many requests in flight, callbacks that resubmit, lifecycle; each
 * device/engine test on psync and uring. Short transfers, errors, the psync fallback and raw block
 * devices: test_ioengine_fault.c. */
#include <sys/resource.h>

#include "tests/unit/ioengine_testlib.h"

/* ---- engine registry ---- */
static void test_names_unknown(void **state)
{
    const char *const *names = ioeng_names();
    struct dev *d;
    struct ioeng *e = (struct ioeng *)&e;
    bool psync = false, uring = false;
    struct fx *f = *state;

    for (; *names; names++) {
        psync |= strcmp(*names, "psync") == 0;
        uring |= strcmp(*names, "uring") == 0;
    }
    assert_true(psync);
    assert_true(uring);
    d = open_dev(f->path, MIB, true);
    assert_int_equal(ioeng_create("nosuch", d, NULL, &e), -EINVAL);
    assert_null(e);
    assert_int_equal(ioeng_create(NULL, d, NULL, &e), -EINVAL);
    ioeng_destroy(NULL);
    dev_close(d);
    dev_close(NULL);
}

static void test_buf_alloc(void **state)
{
    for (size_t sz = 1; sz <= 4 * MIB; sz *= 7) {
        unsigned char *p = ioeng_buf_alloc(sz);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % IOENG_BUF_ALIGN, 0);
        memset(p, 0xab, sz);
        ioeng_buf_free(p);
    }
    ioeng_buf_free(NULL);
}

/* ---- devices ---- */
/* A prefaulted buffer takes (almost) no page fault when it is filled: one madvise did
 * them (16 MiB region buffers were 4,096 faults each in a cold scan's memcpy). */
static void test_buf_prefault(void **state)
{
    const size_t len = 8u << 20;
    struct rusage r0, r1, r2;
    char *b = ioeng_buf_alloc(len);

    assert_non_null(b);
    getrusage(RUSAGE_THREAD, &r0);
    assert_int_equal(ioeng_buf_prefault(b, len), 0);
    getrusage(RUSAGE_THREAD, &r1);
    memset(b, 0x5a, len);
    getrusage(RUSAGE_THREAD, &r2);
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
    /* 2,048 pages: without the prefault the memset takes one fault each. (Not under a
     * sanitizer: its memset touches the buffer's shadow memory, which faults on its own.) */
    assert_true(r2.ru_minflt - r1.ru_minflt < 64);
#endif
    assert_true(b[len - 1] == 0x5a);
    ioeng_buf_free(b);
    assert_int_equal(ioeng_buf_prefault(NULL, len), -EINVAL);
}

static void test_create_size(void **state)
{
    struct fx *f = fx_get(state);
    const uint64_t size = MIB + 3 * 4096;
    struct dev_conf conf = {.path = f->path, .direct_io = true, .create = true};
    struct dev *d = NULL;
    struct ioeng *e;
    struct stat st;
    uint64_t seed = 1;
    char *w = ioeng_buf_alloc(8192), *r = ioeng_buf_alloc(8192);

    /* Absent file: without create, or without a size, nothing is made. */
    conf.create = false;
    conf.size = size;
    assert_int_equal(dev_open(&conf, &d), -ENOENT);
    conf.create = true;
    conf.size = 0;
    assert_int_equal(dev_open(&conf, &d), -EINVAL);
    assert_int_equal(stat(f->path, &st), -1);

    d = open_dev(f->path, size, true);
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(st.st_size, size);
    assert_true((uint64_t)st.st_blocks * 512 >= size); /* fallocated, not sparse */
    assert_int_equal(dev_size(d), size);
    assert_true(CMN_IS_POW2(dev_align(d)));
    assert_true(dev_align(d) >= 512 && dev_align(d) <= IOENG_BUF_ALIGN);
    assert_false(d->is_blockdev);
    assert_true(d->direct_io);

    e = make_eng(f, d, 0, false);
    fill_rand(w, 8192, &seed);
    assert_int_equal(ioeng_rw_sync(e, IOENG_WRITE, w, 8192, size - 8192), 8192);
    assert_int_equal(ioeng_rw_sync(e, IOENG_READ, r, 8192, size - 8192), 8192);
    assert_memory_equal(w, r, 8192);
    assert_int_equal(dev_flush(d), 0);
    ioeng_destroy(e);
    dev_close(d);
    ioeng_buf_free(w);
    ioeng_buf_free(r);
}

static void test_reopen(void **state)
{
    struct fx *f = fx_get(state);
    struct dev *d;
    struct ioeng *e;
    struct stat st;
    uint64_t seed = 2;
    char *w = ioeng_buf_alloc(64 * KIB), *r = ioeng_buf_alloc(64 * KIB);

    fill_rand(w, 64 * KIB, &seed);
    d = open_dev(f->path, MIB, true);
    e = make_eng(f, d, 0, false);
    assert_int_equal(ioeng_rw_sync(e, IOENG_WRITE, w, 64 * KIB, 128 * KIB), 64 * KIB);
    ioeng_destroy(e);
    dev_close(d);

    /* Existing file, size 0: the file's size is used and the data is still there. */
    d = open_dev(f->path, 0, true);
    assert_int_equal(dev_size(d), MIB);
    e = make_eng(f, d, 0, false);
    assert_int_equal(ioeng_rw_sync(e, IOENG_READ, r, 64 * KIB, 128 * KIB), 64 * KIB);
    assert_memory_equal(w, r, 64 * KIB);
    ioeng_destroy(e);
    dev_close(d);

    /* Larger size: extended, data kept. */
    d = open_dev(f->path, 2 * MIB, true);
    assert_int_equal(dev_size(d), 2 * MIB);
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(st.st_size, 2 * MIB);
    e = make_eng(f, d, 0, false);
    memset(r, 0, 64 * KIB);
    assert_int_equal(ioeng_rw_sync(e, IOENG_READ, r, 64 * KIB, 128 * KIB), 64 * KIB);
    assert_memory_equal(w, r, 64 * KIB);
    assert_int_equal(ioeng_rw_sync(e, IOENG_WRITE, w, 64 * KIB, 2 * MIB - 64 * KIB), 64 * KIB);
    ioeng_destroy(e);
    dev_close(d);

    /* Smaller size: only that much is used, the file is not shrunk. */
    d = open_dev(f->path, 512 * KIB, true);
    assert_int_equal(dev_size(d), 512 * KIB);
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(st.st_size, 2 * MIB);
    e = make_eng(f, d, 0, false);
    assert_int_equal(ioeng_rw_sync(e, IOENG_READ, r, 64 * KIB, 512 * KIB), -EINVAL);
    ioeng_destroy(e);
    dev_close(d);
    ioeng_buf_free(w);
    ioeng_buf_free(r);
}

static void test_direct_io(void **state)
{
    struct fx *f = fx_get(state);
    uint64_t seed = 3;
    char *w = ioeng_buf_alloc(16 * KIB), *r = ioeng_buf_alloc(16 * KIB);

    for (int direct = 1; direct >= 0; direct--) {
        struct dev *d = open_dev(f->path, MIB, direct);
        struct ioeng *e = make_eng(f, d, 0, false);
        int fl = fcntl(d->ops->fd(d), F_GETFL);

        assert_true(fl >= 0);
        assert_int_equal(!!(fl & O_DIRECT), direct);
        assert_int_equal(d->direct_io, direct);
        fill_rand(w, 16 * KIB, &seed);
        assert_int_equal(ioeng_rw_sync(e, IOENG_WRITE, w, 16 * KIB, 64 * KIB), 16 * KIB);
        memset(r, 0, 16 * KIB);
        assert_int_equal(ioeng_rw_sync(e, IOENG_READ, r, 16 * KIB, 64 * KIB), 16 * KIB);
        assert_memory_equal(w, r, 16 * KIB);
        ioeng_destroy(e);
        dev_close(d);
    }
    ioeng_buf_free(w);
    ioeng_buf_free(r);
}

static void test_open_errors(void **state)
{
    struct fx *f = *state;
    struct dev_conf conf = {.path = f->dir, .size = MIB, .direct_io = true, .create = true};
    struct dev *d = (struct dev *)&d;
    char path[PATH_MAX + 32];
    int fd, flags;

    assert_int_equal(dev_open(&conf, &d), -EISDIR);
    assert_null(d);
    snprintf(path, sizeof(path), "%s/nosuchdir/cache.img", f->dir);
    conf.path = path;
    assert_int_equal(dev_open(&conf, &d), -ENOENT);
    conf.path = "";
    assert_int_equal(dev_open(&conf, &d), -EINVAL);
    assert_int_equal(dev_open(NULL, &d), -EINVAL);
    conf.path = "/dev/null"; /* a character device is no cache */
    assert_int_equal(dev_open(&conf, &d), -EINVAL);

    /* Not writable: an immutable file refuses O_RDWR even to root. */
    snprintf(path, sizeof(path), "%s/ro.img", f->dir);
    conf.path = path;
    fd = open(path, O_CREAT | O_RDWR, 0400);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, MIB), 0);
    flags = FS_IMMUTABLE_FL;
    if (geteuid() == 0 && ioctl(fd, FS_IOC_SETFLAGS, &flags) == 0) {
        assert_int_equal(dev_open(&conf, &d), -EPERM);
        flags = 0;
        assert_int_equal(ioctl(fd, FS_IOC_SETFLAGS, &flags), 0);
    } else if (geteuid() != 0) {
        assert_int_equal(dev_open(&conf, &d), -EACCES);
    }
    close(fd);
    /* A file that exists is opened even without create. */
    conf.create = false;
    assert_int_equal(dev_open(&conf, &d), 0);
    assert_int_equal(dev_size(d), MIB);
    dev_close(d);
}

/* ---- alignment ---- */
static void test_alignment(void **state)
{
    struct fx *f = fx_get(state);
    struct dev *d = open_dev(f->path, MIB, true);
    struct ioeng *e = make_eng(f, d, 0, false);
    uint32_t a = dev_align(d);
    char *buf = ioeng_buf_alloc(4 * a);
    struct {
        char *buf;
        size_t len;
        uint64_t off;
    } bad[] = {
        {buf, a, a / 2},       /* offset */
        {buf, a + a / 2, 0},   /* length */
        {buf, a / 2, 0},       /* length below one block */
        {buf + a / 2, a, 0},   /* buffer address */
        {buf + 8, a, a},       /* buffer address, small skew */
        {buf, 0, 0},           /* empty */
        {buf, a, MIB},         /* past the end */
        {buf, 2 * a, MIB - a}, /* straddles the end */
    };
    struct batch b;
    struct treq t;
    struct ioeng_stats st;

    batch_init(&b, 1);
    for (size_t i = 0; i < CMN_ARRAY_SIZE(bad); i++) {
        for (int op = IOENG_READ; op <= IOENG_WRITE; op++) {
            treq_set(&t, &b, op, bad[i].buf, bad[i].len, bad[i].off);
            assert_int_equal(ioeng_submit(e, &t.r), -EINVAL);
            assert_int_equal(t.calls, 0);
            assert_int_equal(ioeng_rw_sync(e, op, bad[i].buf, bad[i].len, bad[i].off), -EINVAL);
        }
        assert_int_equal(dev_pread(d, bad[i].buf, bad[i].len, bad[i].off), -EINVAL);
        assert_int_equal(dev_pwrite(d, bad[i].buf, bad[i].len, bad[i].off), -EINVAL);
    }
    /* No callback. */
    treq_set(&t, &b, IOENG_READ, buf, a, 0);
    t.r.done = NULL;
    assert_int_equal(ioeng_submit(e, &t.r), -EINVAL);
    /* The aligned neighbours of the bad ones work. */
    assert_int_equal(dev_pwrite(d, buf, a, MIB - a), a);
    assert_int_equal(dev_pread(d, buf, a, MIB - a), a);
    assert_int_equal(ioeng_rw_sync(e, IOENG_READ, buf, 2 * a, MIB - 2 * a), 2 * a);
    ioeng_get_stats(e, &st);
    assert_int_equal(st.inflight, 0);
    assert_int_equal(st.reads, 1);
    ioeng_destroy(e);
    dev_close(d);
    ioeng_buf_free(buf);
    pthread_cond_destroy(&b.cv);
    pthread_mutex_destroy(&b.lock);
}

/* ---- many requests in flight ---- */
#define RT_SLOT (64 * KIB)

#define RT_NREQ 400

#define RT_THREADS 4

struct rt_job {
    struct ioeng *e;
    struct treq *reqs;
    unsigned from, to;
};

static void *rt_submitter(void *arg)
{
    struct rt_job *j = arg;
    for (unsigned i = j->from; i < j->to; i++)
        if (ioeng_submit(j->e, &j->reqs[i].r) != 0)
            return (void *)1;
    return NULL;
}

static void test_many_inflight(void **state)
{
    struct fx *f = fx_get(state);
    /* 512 slots for 400 requests: offsets are a random permutation, lengths random. */
    struct dev *d = open_dev(f->path, 512 * RT_SLOT, true);
    /* Depth 8 against hundreds of requests drives uring's pending list and psync's bound. */
    struct ioeng *e = make_eng(f, d, 8, true);
    struct treq *w = calloc(RT_NREQ, sizeof(*w)), *r = calloc(RT_NREQ, sizeof(*r));
    char *wbuf = ioeng_buf_alloc((size_t)RT_NREQ * RT_SLOT);
    char *rbuf = ioeng_buf_alloc((size_t)RT_NREQ * RT_SLOT);
    unsigned slot[512];
    pthread_t th[RT_THREADS];
    struct rt_job jobs[RT_THREADS];
    struct ioeng_stats st;
    uint64_t seed = 4, bytes = 0;
    struct batch b;

    assert_non_null(w);
    assert_non_null(r);
    assert_non_null(wbuf);
    assert_non_null(rbuf);
    for (unsigned i = 0; i < 512; i++)
        slot[i] = i;
    for (unsigned i = 511; i > 0; i--) {
        unsigned j = cmn_rand64(&seed) % (i + 1), t = slot[i];
        slot[i] = slot[j];
        slot[j] = t;
    }
    fill_rand(wbuf, (size_t)RT_NREQ * RT_SLOT, &seed);
    memset(rbuf, 0, (size_t)RT_NREQ * RT_SLOT);

    /* Writes from several threads at once. */
    batch_init(&b, RT_NREQ);
    for (unsigned i = 0; i < RT_NREQ; i++) {
        size_t len = (1 + cmn_rand64(&seed) % 16) * 4096;
        treq_set(&w[i], &b, IOENG_WRITE, wbuf + (size_t)i * RT_SLOT, len,
                 (uint64_t)slot[i] * RT_SLOT);
        bytes += len;
    }
    for (unsigned t = 0; t < RT_THREADS; t++) {
        jobs[t] = (struct rt_job){e, w, t * RT_NREQ / RT_THREADS, (t + 1) * RT_NREQ / RT_THREADS};
        assert_int_equal(pthread_create(&th[t], NULL, rt_submitter, &jobs[t]), 0);
    }
    for (unsigned t = 0; t < RT_THREADS; t++) {
        void *ret;
        assert_int_equal(pthread_join(th[t], &ret), 0);
        assert_null(ret);
    }
    batch_wait(&b);
    for (unsigned i = 0; i < RT_NREQ; i++) {
        assert_int_equal(__atomic_load_n(&w[i].calls, __ATOMIC_RELAXED), 1);
        assert_int_equal(w[i].r.result, (ssize_t)w[i].r.len);
    }

    /* Reads, all submitted at once from this thread. */
    batch_init(&b, RT_NREQ);
    for (unsigned i = 0; i < RT_NREQ; i++) {
        treq_set(&r[i], &b, IOENG_READ, rbuf + (size_t)i * RT_SLOT, w[i].r.len, w[i].r.off);
        assert_int_equal(ioeng_submit(e, &r[i].r), 0);
    }
    batch_wait(&b);
    for (unsigned i = 0; i < RT_NREQ; i++) {
        assert_int_equal(__atomic_load_n(&r[i].calls, __ATOMIC_RELAXED), 1);
        assert_int_equal(r[i].r.result, (ssize_t)r[i].r.len);
        assert_memory_equal(r[i].r.buf, w[i].r.buf, r[i].r.len);
    }
    ioeng_get_stats(e, &st);
    assert_int_equal(st.writes, RT_NREQ);
    assert_int_equal(st.reads, RT_NREQ);
    assert_int_equal(st.bytes_written, bytes);
    assert_int_equal(st.bytes_read, bytes);
    assert_int_equal(st.errors, 0);
    assert_int_equal(st.inflight, 0);
    ioeng_destroy(e);
    dev_close(d);
    ioeng_buf_free(wbuf);
    ioeng_buf_free(rbuf);
    free(w);
    free(r);
}

/* Completion callbacks may submit again (a chain per request) without deadlocking. */
#define CH_CHAINS 48

#define CH_STEPS 20

struct chain {
    struct treq t;
    struct ioeng *e;
    int steps;       /* touched only by the chain's own callbacks, which are serial */
    int submit_fail; /* atomic */
};

static void chain_done(struct ioeng_req *r)
{
    struct chain *c = (struct chain *)r;
    __atomic_fetch_add(&c->t.calls, 1, __ATOMIC_RELAXED);
    if (r->result == (ssize_t)r->len && ++c->steps < CH_STEPS) {
        r->off = (r->off + r->len) % (CH_CHAINS * 16 * KIB);
        if (ioeng_submit(c->e, r) == 0)
            return;
        __atomic_fetch_add(&c->submit_fail, 1, __ATOMIC_RELAXED);
    }
    batch_one_done(c->t.b);
}

/*
 * Start CH_CHAINS chains of CH_STEPS reads each. With @destroy_at_once the engine is
 * destroyed right after the first submissions: work the callbacks chain on is in flight
 * too, so every chain must still run to its end before destroy returns.
 */
static void run_chains(void **state, bool destroy_at_once)
{
    struct fx *f = fx_get(state);
    struct dev *d = open_dev(f->path, CH_CHAINS * 16 * KIB, true);
    struct ioeng *e = make_eng(f, d, 2, false);
    struct chain *c = calloc(CH_CHAINS, sizeof(*c));
    char *buf = ioeng_buf_alloc(CH_CHAINS * 4 * KIB);
    struct batch b;

    batch_init(&b, CH_CHAINS);
    for (unsigned i = 0; i < CH_CHAINS; i++) {
        treq_set(&c[i].t, &b, IOENG_READ, buf + i * 4 * KIB, 4 * KIB, i * 16 * KIB);
        c[i].t.r.done = chain_done;
        c[i].e = e;
        assert_int_equal(ioeng_submit(e, &c[i].t.r), 0);
    }
    if (destroy_at_once) {
        ioeng_destroy(e);
        e = NULL;
    }
    batch_wait(&b);
    for (unsigned i = 0; i < CH_CHAINS; i++) {
        assert_int_equal(c[i].steps, CH_STEPS);
        assert_int_equal(__atomic_load_n(&c[i].t.calls, __ATOMIC_RELAXED), CH_STEPS);
        assert_int_equal(c[i].submit_fail, 0);
        assert_int_equal(c[i].t.r.result, 4 * KIB);
    }
    ioeng_destroy(e);
    dev_close(d);
    ioeng_buf_free(buf);
    free(c);
}

static void test_callback_resubmit(void **state)
{
    run_chains(state, false);
}

static void test_destroy_chains(void **state)
{
    run_chains(state, true);
}

/* ---- lifecycle ---- */
static void test_destroy_waits(void **state)
{
    struct fx *f = fx_get(state);
    enum { N = 300 };
    struct dev *d = open_dev(f->path, N * 16 * KIB, true);
    struct ioeng *e = make_eng(f, d, 8, false);
    struct treq *t = calloc(N, sizeof(*t));
    char *buf = ioeng_buf_alloc(N * 16 * KIB);
    struct batch b;

    memset(buf, 0x77, N * 16 * KIB);
    batch_init(&b, N);
    for (unsigned i = 0; i < N; i++) {
        treq_set(&t[i], &b, i % 2 ? IOENG_READ : IOENG_WRITE, buf + i * 16 * KIB, 16 * KIB,
                 (uint64_t)i * 16 * KIB);
        assert_int_equal(ioeng_submit(e, &t[i].r), 0);
    }
    ioeng_destroy(e); /* must not return before every callback did */
    for (unsigned i = 0; i < N; i++) {
        assert_int_equal(__atomic_load_n(&t[i].calls, __ATOMIC_RELAXED), 1);
        assert_int_equal(t[i].r.result, 16 * KIB);
    }
    pthread_mutex_lock(&b.lock);
    assert_int_equal(b.remaining, 0);
    pthread_mutex_unlock(&b.lock);
    batch_wait(&b);
    dev_close(d);
    ioeng_buf_free(buf);
    free(t);
}

static uint64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void test_idle_no_spin(void **state)
{
    struct fx *f = fx_get(state);
    struct dev *d = open_dev(f->path, MIB, true);
    struct ioeng *e = make_eng(f, d, 0, false);
    char *buf = ioeng_buf_alloc(4 * KIB);
    struct timespec nap = {.tv_sec = 0, .tv_nsec = 300 * 1000 * 1000};
    uint64_t t0, t1;

    memset(buf, 0, 4 * KIB);
    assert_int_equal(ioeng_rw_sync(e, IOENG_WRITE, buf, 4 * KIB, 0), 4 * KIB);
    t0 = cpu_ns();
    nanosleep(&nap, NULL);
    t1 = cpu_ns();
    /* A spinning completion thread would burn ~300 ms here; allow sanitizer noise. */
    assert_true(t1 - t0 < 30u * 1000 * 1000);
    ioeng_destroy(e);
    dev_close(d);
    ioeng_buf_free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate_setup_teardown(test_names_unknown, fx_setup, fx_teardown, NULL),
        cmocka_unit_test(test_buf_alloc),
        cmocka_unit_test(test_buf_prefault),
        cmocka_unit_test_prestate_setup_teardown(test_open_errors, fx_setup, fx_teardown, NULL),
        BOTH(test_create_size),
        BOTH(test_reopen),
        BOTH(test_direct_io),
        BOTH(test_alignment),
        BOTH(test_many_inflight),
        BOTH(test_callback_resubmit),
        BOTH(test_destroy_chains),
        BOTH(test_destroy_waits),
        BOTH(test_idle_no_spin),
    };

    uring_ok = probe_uring();
    if (!uring_ok)
        fprintf(stderr, "io_uring unavailable here: the uring variants skip\n");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
