/* SPDX-License-Identifier: Apache-2.0 */
/* hc_disk_testlib.c: the helpers of hc_disk_testlib.h. */
#include "tests/unit/hc_disk_testlib.h"
#include "tests/unit/t_strict.h"

void t_path(struct t_env *e, const char *name)
{
    const char *dir = getenv("TIERFS_TEST_TMPDIR");
    static int seq;
    snprintf(e->path, sizeof(e->path), "%s/hcdisk-%d-%d-%s-%s.dev", dir ? dir : "/tmp",
             (int)getpid(), seq++, name, e->engine);
    unlink(e->path);
}

/* Open the device file, O_DIRECT where the filesystem has it. */
struct dev *t_dev(const char *path, uint64_t size)
{
    struct dev_conf dc = {.path = path, .size = size, .direct_io = true, .create = true};
    struct dev *dev = NULL;
    if (dev_open(&dc, &dev) < 0) {
        dc.direct_io = false;
        assert_int_equal(dev_open(&dc, &dev), 0);
    }
    return dev;
}

struct hc_disk *t_open(const struct t_env *e, const struct t_opts *o)
{
    struct hc_disk_conf c = {
        .dev = o->dev ? o->dev : t_dev(e->path, o->size),
        .io_engine = e->engine,
        .io_depth = 8,
        .block_size = o->block ? o->block : T_BLOCK,
        .region_size = o->region ? o->region : T_REGION,
        .compression = o->compression,
        .identity = o->identity ? o->identity : "test-bucket",
        .write_queue_bytes = o->wq,
        .acct = o->acct,
    };
    struct hc_disk *d = NULL;
    assert_int_equal(hc_disk_open(&c, &d), 0);
    assert_non_null(d);
    return d;
}

uint64_t t_hash(const char *key)
{
    return cmn_hash64(key, strlen(key), 0);
}

void t_key(char *buf, size_t cap, int i)
{
    snprintf(buf, cap, "s3://bucket/object-%d@etag-%08x", i, (unsigned)(i * 2654435761u));
}

/* Deterministic content for key @i: compressible text or random bytes. */
void t_fill(uint8_t *buf, size_t len, int i, bool compressible)
{
    uint64_t st = (uint64_t)i * 0x9E3779B97F4A7C15ull + 1;
    if (compressible) {
        for (size_t k = 0; k < len; k++)
            buf[k] = (uint8_t)("tierfs block cache "[k % 19] + (i & 7));
        return;
    }
    for (size_t k = 0; k < len; k += 8) {
        uint64_t v = cmn_rand64(&st);
        memcpy(buf + k, &v, CMN_MIN((size_t)8, len - k));
    }
}

void t_done(ssize_t result, void *arg)
{
    struct t_wait *w = arg;
    pthread_mutex_lock(&w->lock);
    w->result = result;
    w->done = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

/* Synchronous lookup. @return bytes, -ENOENT or -errno. */
ssize_t t_lookup(struct hc_disk *d, const char *key, void *buf, size_t cap)
{
    struct t_wait w = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    int rc = hc_disk_lookup(d, t_hash(key), key, strlen(key), buf, cap, t_done, &w);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&w.lock);
    while (!w.done)
        pthread_cond_wait(&w.cond, &w.lock);
    pthread_mutex_unlock(&w.lock);
    return w.result;
}

/* Insert, retrying while the disk is behind (-EAGAIN) for up to 10 s. */
int t_insert(struct hc_disk *d, const char *key, const void *data, size_t len)
{
    for (int tries = 0; tries < 10000; tries++) {
        int rc = hc_disk_insert(d, t_hash(key), key, strlen(key), data, len);
        if (rc != -EAGAIN)
            return rc;
        usleep(1000);
    }
    return -EAGAIN;
}

/* Insert key @i with t_fill content of @len bytes. */
void t_put(struct hc_disk *d, int i, size_t len, bool compressible)
{
    char key[96];
    uint8_t *buf = malloc(len ? len : 1);
    assert_non_null(buf);
    t_key(key, sizeof(key), i);
    t_fill(buf, len, i, compressible);
    assert_int_equal(t_insert(d, key, buf, len), 0);
    free(buf);
}

/* @return 1 when key @i is served with the right content, 0 on a miss; fails the test on
 * wrong bytes (the one thing the disk tier must never do). */
int t_check(struct hc_disk *d, int i, size_t len, bool compressible)
{
    char key[96];
    uint8_t *want = malloc(len ? len : 1), *got = malloc(T_BLOCK);
    assert_true(want && got);
    t_key(key, sizeof(key), i);
    t_fill(want, len, i, compressible);
    ssize_t n = t_lookup(d, key, got, T_BLOCK);
    int ok = 0;
    if (n >= 0) {
        assert_int_equal(n, len);
        assert_memory_equal(got, want, len);
        ok = 1;
    } else {
        assert_true(n == -ENOENT || n == -EIO);
    }
    free(want);
    free(got);
    return ok;
}

struct hc_disk_stats t_stats(struct hc_disk *d)
{
    struct hc_disk_stats st;
    hc_disk_get_stats(d, &st);
#ifdef TIERFS_DEBUG
    hc_disk_check_invariants(d);
#endif
    return st;
}

/* Overwrite @len bytes at @off of the device file behind the cache's back. */
void t_scribble(const char *path, uint64_t off, size_t len, int byte)
{
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    uint8_t *buf = malloc(len);
    memset(buf, byte, len);
    assert_int_equal(pwrite(fd, buf, len, (off_t)off), (ssize_t)len);
    fsync(fd);
    close(fd);
    free(buf);
}

/* ---- partial reads (chunk checksums) ---- */
/* Synchronous hc_disk_lookup_range. @return bytes (from hc_disk_range_off(off)) or -errno. */
ssize_t t_lookup_range(struct hc_disk *d, const char *key, uint32_t off, uint32_t len, void *buf,
                       size_t cap)
{
    struct t_wait w = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    int rc = hc_disk_lookup_range(d, t_hash(key), key, strlen(key), off, len, buf, cap, t_done, &w);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&w.lock);
    while (!w.done)
        pthread_cond_wait(&w.cond, &w.lock);
    pthread_mutex_unlock(&w.lock);
    return w.result;
}

/* ---- main: every test on each available engine ---- */
bool t_uring_available(void)
{
    struct t_env e = {.engine = "probe"};
    struct ioeng *eng = NULL;
    bool ok = false;
    t_path(&e, "probe");
    struct dev *dev = t_dev(e.path, 1u << 20);
    tlog_set_level(TLOG_ERR); /* the fallback notice is expected here */
    if (ioeng_create("uring", dev, NULL, &eng) == 0) {
        ok = strcmp(ioeng_name(eng), "uring") == 0;
        ioeng_destroy(eng);
    }
    tlog_set_level(TLOG_NOTICE);
    dev_close(dev);
    unlink(e.path);
    return ok;
}

int t_run_cases(const struct t_case *cases, size_t n)
{
    const char *engines[2] = {"psync", "uring"};
    struct CMUnitTest *run = calloc(2 * n, sizeof(*run));
    size_t nrun = 0;
    int nengines = t_uring_available() ? 2 : 1;
    int rc = 1;

    if (!run)
        return 1;
    if (nengines == 1 && t_strict()) {
        printf("TIERFS_STRICT: io_uring cannot be set up on this machine: the uring variants "
               "cannot run\n");
        free(run);
        return 1;
    }
    if (nengines == 1)
        printf("io_uring unavailable here: uring variants skipped\n");
    tlog_set_level(TLOG_NOTICE);
    for (int k = 0; k < nengines; k++) {
        for (size_t i = 0; i < n; i++) {
            char *name = NULL;
            if (asprintf(&name, "%s/%s", cases[i].name, engines[k]) < 0)
                goto out;
            run[nrun++] = (struct CMUnitTest){
                .name = name, .test_func = cases[i].fn, .initial_state = (void *)engines[k]};
        }
    }
    rc = _cmocka_run_group_tests("hc_disk", run, nrun, NULL, NULL);
out:
    for (size_t i = 0; i < nrun; i++)
        free((char *)run[i].name);
    free(run);
    return rc;
}
