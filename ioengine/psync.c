/* SPDX-License-Identifier: Apache-2.0 */
/* psync.c: the portable engine: a thread pool running dev_pread/dev_pwrite off a bounded queue. */
#include "ioengine/ioengine_i.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

/*
 * DESIGN
 * Requests wait in a FIFO linked through req->priv_next; worker threads pop one, run it to
 * completion through the device's synchronous ops (so fault-wrapped devices work), and call
 * the completion. The queue is bounded so a producer that outruns the device blocks instead
 * of growing memory without limit; a completion callback that submits more work is let
 * through over the bound, because blocking a worker on its own queue could deadlock.
 * destroy lets the workers drain the queue (including work the callbacks chain on), then
 * joins them; other threads' submissions after that point get -ESHUTDOWN.
 */

#define IOENG_PSYNC_DEFAULT_THREADS 4
#define IOENG_PSYNC_QUEUE_PER_THREAD 64

struct ioeng_psync_eng {
    struct ioeng base; /* first: the wrappers see a struct ioeng */
    pthread_mutex_t lock;
    pthread_cond_t work_cv;  /* queue became non-empty, or stopping */
    pthread_cond_t space_cv; /* queue dropped below the bound */
    struct ioeng_req *head;  /* protected by lock */
    struct ioeng_req *tail;  /* protected by lock */
    unsigned queued;         /* protected by lock */
    unsigned cap;
    bool stopping; /* protected by lock */
    unsigned nthreads;
    pthread_t *threads;
};

/* The engine whose worker runs on this thread, to let callbacks submit without blocking. */
static __thread struct ioeng_psync_eng *ioeng_psync_self;

static struct ioeng_psync_eng *ioeng_psync_of(struct ioeng *e)
{
    return (struct ioeng_psync_eng *)e;
}

static void ioeng_psync_run(struct ioeng_psync_eng *p, struct ioeng_req *req)
{
    struct dev *d = p->base.dev;
    ssize_t res;

    do {
        char *buf = (char *)req->buf + req->priv_done;
        size_t len = req->len - req->priv_done;
        uint64_t off = req->off + req->priv_done;
        res = req->op == IOENG_READ ? dev_pread(d, buf, len, off) : dev_pwrite(d, buf, len, off);
    } while (!ioeng_req_progress(&p->base, req, res));
    ioeng_complete(&p->base, req);
}

static void *ioeng_psync_worker(void *arg)
{
    struct ioeng_psync_eng *p = arg;
    struct ioeng_req *req;

    ioeng_psync_self = p;
    pthread_setname_np(pthread_self(), "tierfs-psync");
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->head && !p->stopping)
            pthread_cond_wait(&p->work_cv, &p->lock);
        req = p->head;
        if (!req)
            break; /* stopping and drained */
        p->head = req->priv_next;
        if (!p->head)
            p->tail = NULL;
        if (p->queued-- == p->cap)
            pthread_cond_broadcast(&p->space_cv);
        pthread_mutex_unlock(&p->lock);
        ioeng_psync_run(p, req);
        pthread_mutex_lock(&p->lock);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

static int ioeng_psync_submit(struct ioeng *e, struct ioeng_req *req)
{
    struct ioeng_psync_eng *p = ioeng_psync_of(e);

    pthread_mutex_lock(&p->lock);
    while (p->queued >= p->cap && ioeng_psync_self != p && !p->stopping)
        pthread_cond_wait(&p->space_cv, &p->lock);
    /* A worker's callback may still chain work during destroy: the workers drain it. */
    if (p->stopping && ioeng_psync_self != p) {
        pthread_mutex_unlock(&p->lock);
        return -ESHUTDOWN;
    }
    req->priv_next = NULL;
    if (p->tail)
        p->tail->priv_next = req;
    else
        p->head = req;
    p->tail = req;
    p->queued++;
    pthread_cond_signal(&p->work_cv);
    pthread_mutex_unlock(&p->lock);
    return 0;
}

static void ioeng_psync_destroy(struct ioeng *e)
{
    struct ioeng_psync_eng *p = ioeng_psync_of(e);

    pthread_mutex_lock(&p->lock);
    p->stopping = true;
    pthread_cond_broadcast(&p->work_cv);
    pthread_cond_broadcast(&p->space_cv);
    pthread_mutex_unlock(&p->lock);
    for (unsigned i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    free(p->threads);
    pthread_cond_destroy(&p->space_cv);
    pthread_cond_destroy(&p->work_cv);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

static int ioeng_psync_create(struct dev *d, const struct ioeng_conf *conf, struct ioeng **out)
{
    struct ioeng_psync_eng *p;
    int rc;

    p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->base.ops = &ioeng_psync_ops;
    p->base.dev = d;
    p->nthreads = conf->queue_depth ? conf->queue_depth : IOENG_PSYNC_DEFAULT_THREADS;
    p->cap = p->nthreads * IOENG_PSYNC_QUEUE_PER_THREAD;
    p->threads = calloc(p->nthreads, sizeof(*p->threads));
    if (!p->threads) {
        rc = -ENOMEM;
        goto out_free;
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->work_cv, NULL);
    pthread_cond_init(&p->space_cv, NULL);
    for (unsigned i = 0; i < p->nthreads; i++) {
        rc = -pthread_create(&p->threads[i], NULL, ioeng_psync_worker, p);
        if (rc < 0) {
            TLOG_E("ioengine psync: cannot start worker thread: %s", strerror(-rc));
            p->nthreads = i; /* destroy joins the ones that started */
            ioeng_psync_destroy(&p->base);
            return rc;
        }
    }
    *out = &p->base;
    return 0;

out_free:
    free(p);
    return rc;
}

const struct ioeng_ops ioeng_psync_ops = {
    .version = 1,
    .name = "psync",
    .create = ioeng_psync_create,
    .submit = ioeng_psync_submit,
    .destroy = ioeng_psync_destroy,
};
