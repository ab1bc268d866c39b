/* SPDX-License-Identifier: Apache-2.0 */
/* test_ioengine.c: unit tests for ioengine/ (devices, fault wrapper, psync and uring engines). */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <liburing.h>
#include <limits.h>
#include <linux/filter.h>
#include <linux/fs.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/log.h"
#include "common/util.h"
#include "ioengine/ioengine.h"

/*
 * Every device/engine test is registered twice, with the engine name as its prestate:
 * once for "psync" and once for "uring". Where io_uring cannot be set up (old kernel,
 * seccomp) the uring variants skip; psync always runs, so the program never has only
 * skips and never exits 77.
 */

#define KIB 1024u
#define MIB (1024u * 1024u)

static bool uring_ok;

struct fx {
    const char *engine;
    char dir[PATH_MAX];
    char path[PATH_MAX + 16];
    char loopdev[64]; /* set when a test attached a loop device */
};

static int fx_rm(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(p);
}

static int fx_setup(void **state)
{
    const char *base = getenv("TIERFS_TEST_TMPDIR");
    struct fx *f = calloc(1, sizeof(*f));

    if (!f)
        return -1;
    f->engine = *state;
    snprintf(f->dir, sizeof(f->dir), "%s/ioeng-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof(f->path), "%s/cache.img", f->dir);
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;
    char cmd[128];

    if (f->loopdev[0]) {
        snprintf(cmd, sizeof(cmd), "losetup -d %s 2>/dev/null", f->loopdev);
        if (system(cmd) != 0)
            fprintf(stderr, "warning: could not detach %s\n", f->loopdev);
    }
    nftw(f->dir, fx_rm, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

/* The engine under test; skips the uring variant where io_uring cannot run. */
static struct fx *fx_get(void **state)
{
    struct fx *f = *state;
    if (f->engine && strcmp(f->engine, "uring") == 0 && !uring_ok)
        skip();
    return f;
}

static struct dev *open_dev(const char *path, uint64_t size, bool direct)
{
    struct dev_conf conf = {.path = path, .size = size, .direct_io = direct, .create = true};
    struct dev *d = NULL;
    assert_int_equal(dev_open(&conf, &d), 0);
    assert_non_null(d);
    return d;
}

/* An engine of the fixture's kind; on a device with an fd, uring must really be uring. */
static struct ioeng *make_eng(struct fx *f, struct dev *d, unsigned qd, bool reg)
{
    struct ioeng_conf conf = {.queue_depth = qd, .register_files = reg};
    struct ioeng *e = NULL;
    assert_int_equal(ioeng_create(f->engine, d, &conf, &e), 0);
    assert_non_null(e);
    if (d->ops->fd(d) >= 0)
        assert_string_equal(ioeng_name(e), f->engine);
    return e;
}

static void fill_rand(void *buf, size_t len, uint64_t *seed)
{
    uint64_t *p = buf;
    for (size_t i = 0; i < len / 8; i++)
        p[i] = cmn_rand64(seed);
}

/* ---- asynchronous batches ---- */

struct batch {
    pthread_mutex_t lock;
    pthread_cond_t cv;
    unsigned remaining; /* protected by lock */
};

struct treq {
    struct ioeng_req r; /* first: the callback gets &r */
    struct batch *b;
    int calls; /* atomic: how often done ran */
};

static void batch_init(struct batch *b, unsigned n)
{
    pthread_mutex_init(&b->lock, NULL);
    pthread_cond_init(&b->cv, NULL);
    b->remaining = n;
}

static void batch_wait(struct batch *b)
{
    pthread_mutex_lock(&b->lock);
    while (b->remaining > 0)
        pthread_cond_wait(&b->cv, &b->lock);
    pthread_mutex_unlock(&b->lock);
    pthread_cond_destroy(&b->cv);
    pthread_mutex_destroy(&b->lock);
}

static void batch_one_done(struct batch *b)
{
    pthread_mutex_lock(&b->lock);
    b->remaining--;
    if (b->remaining == 0)
        pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->lock);
}

static void treq_done(struct ioeng_req *r)
{
    struct treq *t = (struct treq *)r;
    __atomic_fetch_add(&t->calls, 1, __ATOMIC_RELAXED);
    batch_one_done(t->b);
}

static void treq_set(struct treq *t, struct batch *b, enum ioeng_op op, void *buf, size_t len,
                     uint64_t off)
{
    memset(t, 0, sizeof(*t));
    t->r.op = op;
    t->r.buf = buf;
    t->r.len = len;
    t->r.off = off;
    t->r.done = treq_done;
    t->b = b;
}

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
        skip(); /* no losetup, not root, or no loop devices in this container */
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

/* ---- main ---- */

static bool probe_uring(void)
{
    struct io_uring ring;
    if (io_uring_queue_init(4, &ring, 0) != 0)
        return false;
    io_uring_queue_exit(&ring);
    return true;
}

/* Both variants of a device/engine test, named "<test>/psync" and "<test>/uring". */
/* clang-format off */
#define BOTH(fn)                                                        \
    {#fn "/psync", fn, fx_setup, fx_teardown, (void *)"psync"},         \
    {#fn "/uring", fn, fx_setup, fx_teardown, (void *)"uring"}
/* clang-format on */

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate_setup_teardown(test_names_unknown, fx_setup, fx_teardown, NULL),
        cmocka_unit_test(test_buf_alloc),
        cmocka_unit_test_prestate_setup_teardown(test_open_errors, fx_setup, fx_teardown, NULL),
        BOTH(test_create_size),
        BOTH(test_reopen),
        BOTH(test_direct_io),
        BOTH(test_alignment),
        BOTH(test_many_inflight),
        BOTH(test_callback_resubmit),
        BOTH(test_destroy_chains),
        BOTH(test_short_fault),
        BOTH(test_short_eof),
        BOTH(test_fault_errors),
        BOTH(test_fault_flip),
        BOTH(test_destroy_waits),
        BOTH(test_idle_no_spin),
        BOTH(test_blockdev),
        cmocka_unit_test_prestate_setup_teardown(test_uring_fallback, fx_setup, fx_teardown, NULL),
    };

    uring_ok = probe_uring();
    if (!uring_ok)
        fprintf(stderr, "io_uring unavailable here: the uring variants skip\n");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
