/* SPDX-License-Identifier: Apache-2.0 */
/* uring.c: the io_uring engine: submit from any thread, one completion thread that sleeps. */
#include "ioengine/ioengine_i.h"

#include <errno.h>
#include <liburing.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"

/*
 * DESIGN
 * One ring per engine. Any thread submits under u->lock, which guards the submission
 * queue; the one completion thread owns the completion queue and sleeps in
 * io_uring_wait_cqe when nothing is in flight (no SQPOLL, no busy polling).
 * At most `depth` requests are in the ring at once, which keeps the completion queue
 * (twice the SQ size) from overflowing; the rest wait in a FIFO (req->priv_next) and go in
 * as completions free slots. A short read or write goes back to the head of that FIFO for
 * the remainder (see ioeng_req_progress). Completion callbacks run on the completion thread
 * without the lock held, so they may submit. destroy waits until every accepted request has
 * completed and its callback returned, then wakes the completion thread with a NOP.
 *
 * Lock order: u->lock only; never held across a completion callback.
 */

#define IOENG_URING_DEFAULT_DEPTH 64
#define IOENG_URING_MAX_DEPTH 4096

struct ioeng_uring_eng {
    struct ioeng base; /* first: the wrappers see a struct ioeng */
    struct io_uring ring;
    int fd;             /* fd or registered-file index given to SQEs */
    unsigned sqe_flags; /* IOSQE_FIXED_FILE when the fd is registered */
    unsigned depth;
    pthread_t cthread;
    pthread_mutex_t lock;
    pthread_cond_t idle_cv;      /* outstanding dropped to 0 */
    unsigned in_ring;            /* protected by lock: SQEs submitted, CQE not yet reaped */
    unsigned outstanding;        /* protected by lock: accepted, callback not yet returned */
    struct ioeng_req *pend_head; /* protected by lock */
    struct ioeng_req *pend_tail; /* protected by lock */
    bool stopping;               /* protected by lock */
};

static struct ioeng_uring_eng *ioeng_uring_of(struct ioeng *e)
{
    return (struct ioeng_uring_eng *)e;
}

#ifdef TIERFS_DEBUG
/* The counting the design relies on. Caller holds u->lock. */
static void ioeng_uring_check_invariants(const struct ioeng_uring_eng *u)
{
    unsigned npend = 0;
    for (const struct ioeng_req *r = u->pend_head; r; r = r->priv_next)
        if (!r->priv_next && r != u->pend_tail)
            abort();
        else
            npend++;
    /* Never more in the ring than SQ slots (so the CQ cannot overflow). */
    if (u->in_ring > u->depth || u->in_ring + npend > u->outstanding)
        abort();
}
#else
static inline void ioeng_uring_check_invariants(const struct ioeng_uring_eng *u) {}
#endif

/* Queue one SQE for the unfinished part of @req. Caller holds u->lock and has a free slot. */
static void ioeng_uring_prep_locked(struct ioeng_uring_eng *u, struct ioeng_req *req)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
    char *buf = (char *)req->buf + req->priv_done;
    unsigned len = (unsigned)(req->len - req->priv_done);
    uint64_t off = req->off + req->priv_done;

    /* in_ring < depth == SQ entries, and every SQE is flushed before the lock drops. */
    if (req->op == IOENG_READ)
        io_uring_prep_read(sqe, u->fd, buf, len, off);
    else
        io_uring_prep_write(sqe, u->fd, buf, len, off);
    io_uring_sqe_set_flags(sqe, u->sqe_flags);
    io_uring_sqe_set_data(sqe, req);
    u->in_ring++;
}

/*
 * Hand queued SQEs to the kernel. Transient failures (EINTR, EAGAIN, EBUSY) are retried;
 * SQEs the kernel did not take stay in the SQ ring and go in with the next submit.
 * Caller holds u->lock.
 */
static void ioeng_uring_flush_locked(struct ioeng_uring_eng *u)
{
    int rc, tries = 0;

    while (io_uring_sq_ready(&u->ring) > 0) {
        rc = io_uring_submit(&u->ring);
        if (rc >= 0)
            continue;
        if ((rc == -EINTR || rc == -EAGAIN || rc == -EBUSY) && ++tries < 1000) {
            if (rc != -EINTR)
                usleep(100);
            continue;
        }
        TLOG_E("ioengine uring: io_uring_submit: %s", strerror(-rc));
        break;
    }
}

/* Move pending requests into the ring while there is room. Caller holds u->lock. */
static void ioeng_uring_fill_locked(struct ioeng_uring_eng *u)
{
    while (u->pend_head && u->in_ring < u->depth) {
        struct ioeng_req *req = u->pend_head;
        u->pend_head = req->priv_next;
        if (!u->pend_head)
            u->pend_tail = NULL;
        ioeng_uring_prep_locked(u, req);
    }
    ioeng_uring_flush_locked(u);
}

static int ioeng_uring_submit(struct ioeng *e, struct ioeng_req *req)
{
    struct ioeng_uring_eng *u = ioeng_uring_of(e);

    pthread_mutex_lock(&u->lock);
    /*
     * Once destroy began, only the completion callbacks may still submit: what they chain
     * on is part of the in-flight work destroy waits for (outstanding cannot reach 0 before
     * their own completion is counted).
     */
    if (u->stopping && !pthread_equal(pthread_self(), u->cthread)) {
        pthread_mutex_unlock(&u->lock);
        return -ESHUTDOWN;
    }
    u->outstanding++;
    req->priv_next = NULL;
    if (u->pend_tail)
        u->pend_tail->priv_next = req;
    else
        u->pend_head = req;
    u->pend_tail = req;
    ioeng_uring_fill_locked(u);
    pthread_mutex_unlock(&u->lock);
    return 0;
}

static void *ioeng_uring_completer(void *arg)
{
    struct ioeng_uring_eng *u = arg;
    struct io_uring_cqe *cqe;
    unsigned head, seen, finished;
    struct ioeng_req *done_head, *req, *next;
    bool stop = false;
    int rc;

    pthread_setname_np(pthread_self(), "tierfs-uring");
    while (!stop) {
        /* Sleeps in the kernel until a completion arrives: no CPU while idle. */
        rc = io_uring_wait_cqe(&u->ring, &cqe);
        if (rc < 0) {
            if (rc != -EINTR && rc != -EAGAIN) {
                TLOG_E("ioengine uring: io_uring_wait_cqe: %s", strerror(-rc));
                usleep(1000); /* do not spin on a persistent error */
            }
            continue;
        }
        done_head = NULL;
        seen = 0;
        finished = 0;
        pthread_mutex_lock(&u->lock);
        io_uring_for_each_cqe(&u->ring, head, cqe)
        {
            seen++;
            req = io_uring_cqe_get_data(cqe);
            if (!req) {
                stop = true; /* the NOP from destroy */
                continue;
            }
            u->in_ring--;
            if (ioeng_req_progress(&u->base, req, cqe->res)) {
                req->priv_next = done_head;
                done_head = req;
                finished++;
            } else {
                /* Short transfer: the remainder goes first, ahead of newer work. */
                req->priv_next = u->pend_head;
                u->pend_head = req;
                if (!u->pend_tail)
                    u->pend_tail = req;
            }
        }
        io_uring_cq_advance(&u->ring, seen);
        ioeng_uring_fill_locked(u);
        ioeng_uring_check_invariants(u);
        pthread_mutex_unlock(&u->lock);

        for (req = done_head; req; req = next) {
            next = req->priv_next; /* the callback may free req */
            ioeng_complete(&u->base, req);
        }
        if (finished) {
            pthread_mutex_lock(&u->lock);
            u->outstanding -= finished;
            if (u->outstanding == 0)
                pthread_cond_broadcast(&u->idle_cv);
            pthread_mutex_unlock(&u->lock);
        }
    }
    return NULL;
}

static void ioeng_uring_destroy(struct ioeng *e)
{
    struct ioeng_uring_eng *u = ioeng_uring_of(e);
    struct io_uring_sqe *sqe;

    pthread_mutex_lock(&u->lock);
    u->stopping = true;
    while (u->outstanding > 0)
        pthread_cond_wait(&u->idle_cv, &u->lock);
    /* The ring is empty now, so an SQE is free. */
    sqe = io_uring_get_sqe(&u->ring);
    io_uring_prep_nop(sqe);
    io_uring_sqe_set_data(sqe, NULL);
    ioeng_uring_flush_locked(u);
    pthread_mutex_unlock(&u->lock);
    pthread_join(u->cthread, NULL);
    io_uring_queue_exit(&u->ring);
    pthread_cond_destroy(&u->idle_cv);
    pthread_mutex_destroy(&u->lock);
    free(u);
}

/* Log a reason for not running once per process: repeated engines would only repeat it. */
static void ioeng_uring_log_once(int *flag, const char *what, const char *why)
{
    if (__atomic_exchange_n(flag, 1, __ATOMIC_RELAXED) == 0)
        TLOG_W("ioengine uring: %s (%s); using psync instead", what, why);
}

static int ioeng_uring_create(struct dev *d, const struct ioeng_conf *conf, struct ioeng **out)
{
    static int logged_nofd, logged_noring;
    struct ioeng_uring_eng *u;
    int fd = d->ops->fd ? d->ops->fd(d) : -1;
    int rc;

    if (fd < 0) {
        /* E.g. the fault wrapper: only the synchronous ops see every request. */
        ioeng_uring_log_once(&logged_nofd, "device has no file descriptor", d->ops->name);
        return -ENOSYS;
    }
    u = calloc(1, sizeof(*u));
    if (!u)
        return -ENOMEM;
    u->base.ops = &ioeng_uring_ops;
    u->base.dev = d;
    u->depth = conf->queue_depth ? conf->queue_depth : IOENG_URING_DEFAULT_DEPTH;
    u->depth = CMN_MIN(u->depth, IOENG_URING_MAX_DEPTH);
    rc = io_uring_queue_init(u->depth, &u->ring, 0);
    if (rc < 0) {
        if (rc == -ENOSYS || rc == -EPERM || rc == -EOPNOTSUPP) {
            ioeng_uring_log_once(&logged_noring, "io_uring is not available", strerror(-rc));
            rc = -ENOSYS;
        } else {
            TLOG_E("ioengine uring: io_uring_queue_init(%u): %s", u->depth, strerror(-rc));
        }
        goto out_free;
    }
    u->fd = fd;
    /* A registered file skips the fd table lookup and refcount on every request. */
    if (conf->register_files) {
        rc = io_uring_register_files(&u->ring, &fd, 1);
        if (rc == 0) {
            u->fd = 0;
            u->sqe_flags = IOSQE_FIXED_FILE;
        } else {
            TLOG_I("ioengine uring: cannot register the device fd (%s); using it plainly",
                   strerror(-rc));
        }
    }
    pthread_mutex_init(&u->lock, NULL);
    pthread_cond_init(&u->idle_cv, NULL);
    rc = -pthread_create(&u->cthread, NULL, ioeng_uring_completer, u);
    if (rc < 0) {
        TLOG_E("ioengine uring: cannot start the completion thread: %s", strerror(-rc));
        goto out_sync;
    }
    *out = &u->base;
    return 0;

out_sync:
    pthread_cond_destroy(&u->idle_cv);
    pthread_mutex_destroy(&u->lock);
    io_uring_queue_exit(&u->ring);
out_free:
    free(u);
    return rc;
}

const struct ioeng_ops ioeng_uring_ops = {
    .version = 1,
    .name = "uring",
    .create = ioeng_uring_create,
    .submit = ioeng_uring_submit,
    .destroy = ioeng_uring_destroy,
};
