/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_fs_fill.c: the page-cache fill queue (fs/fill.c) against an in-test sink: every job
 * is stored in order and released exactly once; a full queue drops (never blocks the
 * submitter) while the sink is stuck, and so do jobs past the byte bound; jobs still
 * queued at destroy are released unstored; a sink that refuses counts as failed.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "fs/fill.h"

#define NJOBS 64

struct sink {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool stuck;   /* store waits while set */
    bool entered; /* store was called while stuck */
    int result;   /* what store returns */
    unsigned stored;
    uint64_t offs[NJOBS * 2]; /* j->off of each store, in order */
};

static int released[NJOBS * 2];

static int sink_store(void *ctx, const struct fs_fill_job *j)
{
    struct sink *s = ctx;
    pthread_mutex_lock(&s->lock);
    s->entered = true;
    pthread_cond_broadcast(&s->cond);
    while (s->stuck)
        pthread_cond_wait(&s->cond, &s->lock);
    /* The data stays valid until release: the bytes are what the submitter put there. */
    assert_int_equal(((const unsigned char *)j->data)[0], (unsigned char)(j->off & 0xff));
    s->offs[s->stored++] = j->off;
    int rc = s->result;
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static void job_release(void *arg)
{
    __atomic_add_fetch(&released[(uintptr_t)arg], 1, __ATOMIC_RELAXED);
}

static unsigned char bytes[NJOBS * 2];

static struct fs_fill_job job(unsigned i)
{
    bytes[i] = (unsigned char)i;
    return (struct fs_fill_job){.nodeid = 2,
                                .off = i,
                                .data = &bytes[i],
                                .len = 1,
                                .release = job_release,
                                .arg = (void *)(uintptr_t)i};
}

static void sink_init(struct sink *s)
{
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    memset(released, 0, sizeof(released));
}

/* Until the stuck sink has a job in hand. */
static void sink_wait_entered(struct sink *s)
{
    pthread_mutex_lock(&s->lock);
    while (!s->entered)
        pthread_cond_wait(&s->cond, &s->lock);
    pthread_mutex_unlock(&s->lock);
}

static void sink_unstick(struct sink *s)
{
    pthread_mutex_lock(&s->lock);
    s->stuck = false;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

/* A fill on a stuck sink, job 0 in the sink's hands (the queue itself is empty). */
static struct fs_fill *start_stuck(struct sink *s, unsigned cap, size_t max_bytes)
{
    struct fs_fill *f;
    sink_init(s);
    s->stuck = true;
    struct fs_fill_sink sink = {.store = sink_store, .ctx = s};
    assert_int_equal(fs_fill_create(cap, max_bytes, &sink, &f), 0);
    struct fs_fill_job j0 = job(0);
    assert_true(fs_fill_submit(f, &j0));
    sink_wait_entered(s);
    return f;
}

/* The counters move after the store returns: wait until stored + failed reach @done. */
static struct fs_fill_stats wait_done(struct fs_fill *f, uint64_t done)
{
    struct fs_fill_stats st;
    for (int i = 0; i < 5000; i++) {
        fs_fill_get_stats(f, &st);
        if (st.stored + st.failed >= done)
            break;
        usleep(1000);
    }
    return st;
}

static void wait_stored(struct sink *s, unsigned n)
{
    for (int i = 0; i < 5000; i++) {
        pthread_mutex_lock(&s->lock);
        unsigned got = s->stored;
        pthread_mutex_unlock(&s->lock);
        if (got >= n)
            return;
        usleep(1000);
    }
    fail_msg("the sink stored fewer than %u jobs", n);
}

static void test_fill_stores_in_order(void **state)
{
    (void)state;
    struct sink s;
    struct fs_fill *f;
    sink_init(&s);
    struct fs_fill_sink sink = {.store = sink_store, .ctx = &s};

    assert_int_equal(fs_fill_create(NJOBS, 1u << 20, &sink, &f), 0);
    for (unsigned i = 0; i < NJOBS; i++) {
        struct fs_fill_job j = job(i);
        assert_true(fs_fill_submit(f, &j));
    }
    wait_stored(&s, NJOBS);
    fs_fill_destroy(f); /* joins: the last job's release ran before */
    for (unsigned i = 0; i < NJOBS; i++) {
        assert_int_equal(s.offs[i], i);
        assert_int_equal(released[i], 1);
    }
    assert_int_equal(s.stored, NJOBS);
}

static void test_fill_full_queue_drops(void **state)
{
    (void)state;
    struct sink s;
    struct fs_fill_stats st;
    struct fs_fill *f = start_stuck(&s, 4, 1u << 20);
    for (unsigned i = 1; i <= 4; i++) {
        struct fs_fill_job j = job(i);
        assert_true(fs_fill_submit(f, &j));
    }
    for (unsigned i = 5; i < 8; i++) { /* full: refused at once, still the caller's */
        struct fs_fill_job j = job(i);
        assert_false(fs_fill_submit(f, &j));
        assert_int_equal(released[i], 0);
    }
    fs_fill_get_stats(f, &st);
    assert_int_equal(st.dropped, 3);
    assert_int_equal(st.stored, 0);

    /* Destroy while stuck: unstick from another thread once destroy is waiting. */
    sink_unstick(&s);
    fs_fill_destroy(f);
    /* Job 0 was stored; 1..4 were stored or released unstored; each released once. */
    for (unsigned i = 0; i <= 4; i++)
        assert_int_equal(released[i], 1);
    assert_true(s.stored >= 1 && s.stored <= 5);
    assert_int_equal(s.offs[0], 0);
}

static void test_fill_byte_bound(void **state)
{
    (void)state;
    struct sink s;
    struct fs_fill_stats st;
    /* Room for 8 jobs but 3 bytes: the job being stored counts until it is released. */
    struct fs_fill *f = start_stuck(&s, 8, 3);
    struct fs_fill_job j1 = job(1), j2 = job(2), j3 = job(3);
    assert_true(fs_fill_submit(f, &j1));
    assert_true(fs_fill_submit(f, &j2));
    assert_false(fs_fill_submit(f, &j3)); /* 4 bytes > 3 */
    fs_fill_get_stats(f, &st);
    assert_int_equal(st.dropped, 1);
    sink_unstick(&s);
    wait_stored(&s, 3);
    st = wait_done(f, 3); /* the bytes come back after the last release */
    assert_int_equal(st.stored, 3);
    assert_true(fs_fill_submit(f, &j3)); /* room again */
    wait_stored(&s, 4);
    fs_fill_destroy(f);
    for (unsigned i = 0; i < 4; i++)
        assert_int_equal(released[i], 1);
}

/* A range a queued or running job covers is not queued again (counted as a duplicate,
 * still the caller's); a wider range, another file, or a range after the job finished is. */
static void test_fill_merges_covered(void **state)
{
    (void)state;
    struct sink s;
    struct fs_fill_stats st;
    struct fs_fill *f = start_stuck(&s, 8, 1u << 20); /* job 0 (off 0, len 1) being stored */
    struct fs_fill_job j0 = job(0), j1 = job(1), j1b = job(1), j3 = job(3);

    assert_false(fs_fill_submit(f, &j0)); /* the running job covers it */
    assert_true(fs_fill_submit(f, &j1));
    assert_false(fs_fill_submit(f, &j1b)); /* a queued job covers it */
    j3.len = 2;                            /* off 3..4: queued; 4..4 is then covered */
    assert_true(fs_fill_submit(f, &j3));
    struct fs_fill_job j4 = job(4);
    assert_false(fs_fill_submit(f, &j4));
    struct fs_fill_job j2 = job(2);
    j2.len = 3; /* off 2..4: wider than any job, so queued */
    assert_true(fs_fill_submit(f, &j2));
    struct fs_fill_job other = job(5);
    other.nodeid = 3;
    other.off = 1; /* another file's offset 1 */
    bytes[1] = 1;
    other.data = &bytes[1];
    assert_true(fs_fill_submit(f, &other));
    fs_fill_get_stats(f, &st);
    assert_int_equal(st.duplicates, 3);
    assert_int_equal(st.dropped, 0);
    assert_int_equal(released[4], 0); /* merged ones stay the caller's */
    sink_unstick(&s);
    wait_stored(&s, 5);
    wait_done(f, 5);
    assert_true(fs_fill_submit(f, &j0)); /* done: a new fill of the range is queued */
    wait_stored(&s, 6);
    fs_fill_destroy(f);
    assert_int_equal(released[0], 2);
}

static void test_fill_refused_counts_failed(void **state)
{
    (void)state;
    struct sink s;
    struct fs_fill *f;
    struct fs_fill_stats st;
    sink_init(&s);
    s.result = -ESTALE;
    struct fs_fill_sink sink = {.store = sink_store, .ctx = &s};

    assert_int_equal(fs_fill_create(8, 1u << 20, &sink, &f), 0);
    for (unsigned i = 0; i < 5; i++) {
        struct fs_fill_job j = job(i);
        assert_true(fs_fill_submit(f, &j));
    }
    wait_stored(&s, 5);
    st = wait_done(f, 5);
    assert_int_equal(st.failed, 5);
    assert_int_equal(st.stored, 0);
    assert_int_equal(st.stored_bytes, 0);
    pthread_mutex_lock(&s.lock);
    s.result = 0;
    pthread_mutex_unlock(&s.lock);
    struct fs_fill_job j = job(5);
    assert_true(fs_fill_submit(f, &j));
    wait_stored(&s, 6);
    st = wait_done(f, 6);
    assert_int_equal(st.stored, 1);
    assert_int_equal(st.stored_bytes, 1);
    fs_fill_destroy(f);
    for (unsigned i = 0; i < 6; i++)
        assert_int_equal(released[i], 1);
}

static void test_fill_bad_args(void **state)
{
    (void)state;
    struct fs_fill *f = NULL;
    struct fs_fill_sink none = {0};
    struct sink s;
    sink_init(&s);
    struct fs_fill_sink sink = {.store = sink_store, .ctx = &s};

    assert_int_equal(fs_fill_create(0, 1u << 20, &sink, &f), -EINVAL);
    assert_int_equal(fs_fill_create(4, 1u << 20, &none, &f), -EINVAL);
    assert_null(f);
    fs_fill_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fill_stores_in_order),
        cmocka_unit_test(test_fill_full_queue_drops),
        cmocka_unit_test(test_fill_byte_bound),
        cmocka_unit_test(test_fill_merges_covered),
        cmocka_unit_test(test_fill_refused_counts_failed),
        cmocka_unit_test(test_fill_bad_args),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
