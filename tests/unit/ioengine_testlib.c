/* SPDX-License-Identifier: Apache-2.0 */
/* ioengine_testlib.c: the helpers of ioengine_testlib.h. */
#include "tests/unit/ioengine_testlib.h"
#include "tests/unit/t_strict.h"

bool uring_ok;

int fx_rm(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(p);
}

int fx_setup(void **state)
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

int fx_teardown(void **state)
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
struct fx *fx_get(void **state)
{
    struct fx *f = *state;
    if (f->engine && strcmp(f->engine, "uring") == 0 && !uring_ok)
        T_SKIP("io_uring cannot be set up on this machine");
    return f;
}

struct dev *open_dev(const char *path, uint64_t size, bool direct)
{
    struct dev_conf conf = {.path = path, .size = size, .direct_io = direct, .create = true};
    struct dev *d = NULL;
    assert_int_equal(dev_open(&conf, &d), 0);
    assert_non_null(d);
    return d;
}

/* An engine of the fixture's kind; on a device with an fd, uring must really be uring. */
struct ioeng *make_eng(struct fx *f, struct dev *d, unsigned qd, bool reg)
{
    struct ioeng_conf conf = {.queue_depth = qd, .register_files = reg};
    struct ioeng *e = NULL;
    assert_int_equal(ioeng_create(f->engine, d, &conf, &e), 0);
    assert_non_null(e);
    if (d->ops->fd(d) >= 0)
        assert_string_equal(ioeng_name(e), f->engine);
    return e;
}

void fill_rand(void *buf, size_t len, uint64_t *seed)
{
    uint64_t *p = buf;
    for (size_t i = 0; i < len / 8; i++)
        p[i] = cmn_rand64(seed);
}

void batch_init(struct batch *b, unsigned n)
{
    pthread_mutex_init(&b->lock, NULL);
    pthread_cond_init(&b->cv, NULL);
    b->remaining = n;
}

void batch_wait(struct batch *b)
{
    pthread_mutex_lock(&b->lock);
    while (b->remaining > 0)
        pthread_cond_wait(&b->cv, &b->lock);
    pthread_mutex_unlock(&b->lock);
    pthread_cond_destroy(&b->cv);
    pthread_mutex_destroy(&b->lock);
}

void batch_one_done(struct batch *b)
{
    pthread_mutex_lock(&b->lock);
    b->remaining--;
    if (b->remaining == 0)
        pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->lock);
}

void treq_done(struct ioeng_req *r)
{
    struct treq *t = (struct treq *)r;
    __atomic_fetch_add(&t->calls, 1, __ATOMIC_RELAXED);
    batch_one_done(t->b);
}

void treq_set(struct treq *t, struct batch *b, enum ioeng_op op, void *buf, size_t len,
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

/* ---- main ---- */
bool probe_uring(void)
{
    struct io_uring ring;
    if (io_uring_queue_init(4, &ring, 0) != 0)
        return false;
    io_uring_queue_exit(&ring);
    return true;
}
