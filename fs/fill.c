/* SPDX-License-Identifier: Apache-2.0 */
/* fill.c: the page-cache fill queue and its thread (see fill.h). */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "fs/fill.h"

struct fs_fill {
    pthread_mutex_t lock;
    pthread_cond_t cond; /* a job was queued, or stop */
    pthread_t thread;
    struct fs_fill_sink sink;
    bool stop;                 /* protected by lock */
    unsigned cap, head, count; /* ring of jobs; protected by lock */
    size_t max_bytes, held;    /* bytes of jobs queued or being stored; protected by lock */
    struct fs_fill_stats st;   /* protected by lock */
    struct fs_fill_job cur;    /* the job being stored (len 0: none); protected by lock */
    struct fs_fill_job jobs[];
};

static void *fs_fill_main(void *arg)
{
    struct fs_fill *f = arg;

    pthread_mutex_lock(&f->lock);
    for (;;) {
        while (!f->stop && f->count == 0)
            pthread_cond_wait(&f->cond, &f->lock);
        if (f->stop)
            break;
        struct fs_fill_job j = f->jobs[f->head];
        f->head = (f->head + 1) % f->cap;
        f->count--;
        f->cur = j;
        pthread_mutex_unlock(&f->lock);
        int rc = f->sink.store(f->sink.ctx, &j);
        j.release(j.arg);
        pthread_mutex_lock(&f->lock);
        f->cur.len = 0;
        f->held -= j.len;
        if (rc < 0) {
            f->st.failed++;
        } else {
            f->st.stored++;
            f->st.stored_bytes += j.len;
        }
    }
    pthread_mutex_unlock(&f->lock);
    return NULL;
}

int fs_fill_create(unsigned cap, size_t max_bytes, const struct fs_fill_sink *sink,
                   struct fs_fill **out)
{
    struct fs_fill *f;
    int rc;

    if (cap == 0 || !sink || !sink->store)
        return -EINVAL;
    f = calloc(1, sizeof(*f) + (size_t)cap * sizeof(f->jobs[0]));
    if (!f)
        return -ENOMEM;
    f->cap = cap;
    f->max_bytes = max_bytes;
    f->sink = *sink;
    pthread_mutex_init(&f->lock, NULL);
    pthread_cond_init(&f->cond, NULL);
    if ((rc = pthread_create(&f->thread, NULL, fs_fill_main, f)) != 0) {
        pthread_cond_destroy(&f->cond);
        pthread_mutex_destroy(&f->lock);
        free(f);
        return -rc;
    }
    *out = f;
    return 0;
}

static bool fs_fill_covers(const struct fs_fill_job *a, const struct fs_fill_job *j)
{
    return a->len && a->nodeid == j->nodeid && a->off <= j->off &&
           a->off + a->len >= j->off + j->len;
}

/* Is @j's range already queued or being stored? Many readers that miss the same block
 * before its fill lands would otherwise queue it again each, and the copies crowd out
 * fills of other blocks (the queue is small). Called with the lock held. */
static bool fs_fill_pending(const struct fs_fill *f, const struct fs_fill_job *j)
{
    if (fs_fill_covers(&f->cur, j))
        return true;
    for (unsigned i = 0; i < f->count; i++)
        if (fs_fill_covers(&f->jobs[(f->head + i) % f->cap], j))
            return true;
    return false;
}

bool fs_fill_submit(struct fs_fill *f, const struct fs_fill_job *j)
{
    bool queued = false;

    pthread_mutex_lock(&f->lock);
    if (!f->stop && fs_fill_pending(f, j)) {
        f->st.duplicates++;
    } else if (!f->stop && f->count < f->cap && j->len <= f->max_bytes - f->held) {
        f->jobs[(f->head + f->count) % f->cap] = *j;
        f->count++;
        f->held += j->len;
        queued = true;
        pthread_cond_signal(&f->cond);
    } else {
        f->st.dropped++;
    }
    pthread_mutex_unlock(&f->lock);
    return queued;
}

void fs_fill_destroy(struct fs_fill *f)
{
    if (!f)
        return;
    pthread_mutex_lock(&f->lock);
    f->stop = true;
    pthread_cond_signal(&f->cond);
    pthread_mutex_unlock(&f->lock);
    pthread_join(f->thread, NULL);
    /* The thread is gone: what is left was never stored. */
    for (; f->count; f->count--, f->head = (f->head + 1) % f->cap)
        f->jobs[f->head].release(f->jobs[f->head].arg);
    pthread_cond_destroy(&f->cond);
    pthread_mutex_destroy(&f->lock);
    free(f);
}

void fs_fill_get_stats(struct fs_fill *f, struct fs_fill_stats *st)
{
    pthread_mutex_lock(&f->lock);
    *st = f->st;
    pthread_mutex_unlock(&f->lock);
}
