/* SPDX-License-Identifier: Apache-2.0 */
/*
 * retry.c: a store that wraps another and retries transient failures with exponential
 * backoff and full jitter.
 *
 * DESIGN
 * Each user request gets a context holding its own inner request, so the user's request
 * is only written once, when it completes. A failed attempt that objstore_is_retryable() accepts
 * is parked on a timer list (sorted by due time) that one timer thread serves; the thread
 * resubmits it to the inner store. Delays are full jitter: uniform in
 * [0, min(max_delay, base_delay * 2^retry)], which spreads a burst of failures instead of
 * re-synchronising it.
 *
 * GET resume: bytes an attempt delivered before it failed stay in the buffer and the next
 * attempt asks only for the rest (Range from off+got). That is safe only when both attempts
 * read the same version, so the resumed attempt carries If-Match: the caller's, or the ETag
 * the failed attempt reported. If the object changed in between, the resume fails with
 * -ESTALE rather than splicing two versions. Without an ETag the bytes are fetched again.
 *
 * Logging: attempts are sent with OS3_REQ_QUIET; only the final failure is logged, once.
 *
 * Lock order: rt->lock is a leaf; it is never held while calling the inner store or a
 * user callback.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/util.h"
#include "objstore/objstore_i.h"

struct objstore_retry_ctx;

struct objstore_retry_store {
    struct objstore base; /* first: the vtable pointer */
    struct objstore *inner;
    unsigned max_attempts, base_delay_ms, max_delay_ms;

    pthread_mutex_t lock;
    pthread_cond_t timer_cond; /* timer thread: a new head or stop */
    pthread_cond_t idle_cond;  /* destroy: inflight reached 0 */
    pthread_t timer_thread;
    struct objstore_retry_ctx *timers; /* protected by lock; sorted by due_ms */
    bool stop;                         /* protected by lock */
    uint64_t rng;                      /* protected by lock */
    /* counters, protected by lock */
    uint64_t retries;
    uint64_t errors[OBJSTORE_OP_COUNT];
    uint64_t latency_ns[OBJSTORE_OP_COUNT];
    uint32_t inflight, inflight_max;
};

struct objstore_retry_ctx {
    struct objstore_retry_store *rt;
    struct objstore_req *user;
    struct objstore_req inner;
    unsigned attempts;
    size_t got;                   /* bytes of user->buf final from earlier attempts */
    size_t reported;              /* largest value given to user->progress */
    char etag[OBJSTORE_ETAG_MAX]; /* version pinned for a resumed GET */
    uint64_t t0_ns;
    uint64_t due_ms;
    struct objstore_retry_ctx *next; /* timer list, protected by rt->lock */
    struct iovec iov[];              /* a scattered GET: the user's iov from got onwards */
};

static void objstore_retry_done(struct objstore_req *inner);

static void objstore_retry_progress(struct objstore_req *inner, size_t valid)
{
    struct objstore_retry_ctx *ctx = inner->arg;
    size_t total = ctx->got + valid;
    /* A restarted attempt rewrites bytes already reported; never report backwards. */
    if (total > ctx->reported) {
        ctx->reported = total;
        ctx->user->progress(ctx->user, total);
    }
}

/* Send the next attempt for @ctx. @return 0 or the inner submit error. */
static int objstore_retry_send(struct objstore_retry_ctx *ctx)
{
    struct objstore_req *u = ctx->user, *in = &ctx->inner;
    memset(in, 0, sizeof(*in));
    in->op = u->op;
    in->key = u->key;
    in->off = u->off + ctx->got;
    in->len = u->len ? u->len - ctx->got : 0;
    in->if_match = u->if_match ? u->if_match : (ctx->etag[0] ? ctx->etag : NULL);
    in->buf = u->buf ? (char *)u->buf + ctx->got : NULL;
    in->buf_cap = u->buf_cap - ctx->got;
    if (u->op == OBJSTORE_OP_GET && u->iov) {
        /* Resume inside the scatter list: drop the segments (and the part of one) that
         * earlier attempts filled. A retry only resumes with bytes left, so n >= 1. */
        size_t skip = ctx->got;
        unsigned i = 0, n = 0;
        while (i < u->iovcnt && skip >= u->iov[i].iov_len)
            skip -= u->iov[i++].iov_len;
        for (; i < u->iovcnt; i++, n++, skip = 0) {
            ctx->iov[n].iov_base = (char *)u->iov[i].iov_base + skip;
            ctx->iov[n].iov_len = u->iov[i].iov_len - skip;
        }
        in->iov = ctx->iov;
        in->iovcnt = n;
    }
    if (u->op == OBJSTORE_OP_PUT || u->op == OBJSTORE_OP_MPU_PART) {
        in->len = u->len;
        in->buf_cap = u->buf_cap;
    }
    in->upload_id = u->upload_id;
    in->md5 = u->md5;
    in->part_number = u->part_number;
    in->parts = u->parts;
    in->nparts = u->nparts;
    in->flags = u->flags | OS3_REQ_QUIET;
    in->progress = u->progress ? objstore_retry_progress : NULL;
    in->list = u->list;
    in->done = objstore_retry_done;
    in->arg = ctx;
    ctx->attempts++;
    return objstore_submit(ctx->rt->inner, in);
}

/* Finish @ctx with @rc: fill the user request, free ctx, call done. */
static void objstore_retry_complete(struct objstore_retry_ctx *ctx, int rc)
{
    struct objstore_retry_store *rt = ctx->rt;
    struct objstore_req *u = ctx->user;
    struct objstore_req *in = &ctx->inner;

    u->result = rc;
    u->attempts = ctx->attempts;
    u->http_status = in->http_status;
    if (rc == 0) {
        u->got = ctx->got + in->got;
        u->info = in->info;
        u->list_result = in->list_result; /* ownership moves to the user */
        memcpy(u->upload_id_out, in->upload_id_out, sizeof(u->upload_id_out));
    } else {
        u->got = 0; /* never partial data as success */
        objstore_list_result_free(&in->list_result);
        memcpy(u->errmsg, in->errmsg, sizeof(u->errmsg));
        u->errmsg[sizeof(u->errmsg) - 1] = '\0';
        if (ctx->attempts > 1) {
            size_t n = CMN_MIN(strlen(u->errmsg), sizeof(u->errmsg) - 32);
            snprintf(u->errmsg + n, sizeof(u->errmsg) - n, " (after %u attempts)", ctx->attempts);
        }
        if (!(u->flags & OS3_REQ_QUIET))
            objstore_log_failure(u);
    }
    uint64_t lat = cmn_now_ns() - ctx->t0_ns;
    enum objstore_op op = u->op;
    free(ctx);

    /* Counted out before done, so a caller woken by done sees consistent stats. destroy
     * still cannot free anything under a running done: it joins the threads that call it. */
    pthread_mutex_lock(&rt->lock);
    rt->latency_ns[op] += lat;
    if (rc < 0)
        rt->errors[op]++;
    if (--rt->inflight == 0)
        pthread_cond_broadcast(&rt->idle_cond);
    pthread_mutex_unlock(&rt->lock);

    u->done(u);
}

static void objstore_retry_schedule(struct objstore_retry_store *rt, struct objstore_retry_ctx *ctx)
{
    pthread_mutex_lock(&rt->lock);
    uint64_t delay =
        objstore_backoff_ms(ctx->attempts - 1, rt->base_delay_ms, rt->max_delay_ms, &rt->rng);
    ctx->due_ms = cmn_now_ms() + delay;
    rt->retries++;
    struct objstore_retry_ctx **pp = &rt->timers;
    while (*pp && (*pp)->due_ms <= ctx->due_ms)
        pp = &(*pp)->next;
    ctx->next = *pp;
    *pp = ctx;
    if (rt->timers == ctx)
        pthread_cond_signal(&rt->timer_cond);
    pthread_mutex_unlock(&rt->lock);
}

/* Inner attempt finished (on the inner store's thread). */
static void objstore_retry_done(struct objstore_req *in)
{
    struct objstore_retry_ctx *ctx = in->arg;
    struct objstore_retry_store *rt = ctx->rt;
    int rc = in->result;

    if (rc == 0) {
        objstore_retry_complete(ctx, 0);
        return;
    }
    if (!objstore_is_retryable(rc, in->http_status) || ctx->attempts >= rt->max_attempts) {
        /* A reset is an attempt-level event; to the caller it is an I/O error. */
        objstore_retry_complete(ctx, rc == -ECONNRESET ? -EIO : rc);
        return;
    }
    if (ctx->user->op == OBJSTORE_OP_GET && in->got > 0 && in->got < in->buf_cap &&
        (in->len == 0 || in->got < in->len) &&
        (ctx->user->if_match || ctx->etag[0] || in->info.etag[0])) {
        /* Keep what landed; pin the version so the rest comes from the same object. */
        if (!ctx->user->if_match && !ctx->etag[0])
            memcpy(ctx->etag, in->info.etag, sizeof(ctx->etag));
        ctx->got += in->got;
    }
    objstore_list_result_free(&in->list_result);
    objstore_retry_schedule(rt, ctx);
}

static void *objstore_retry_timer_main(void *arg)
{
    struct objstore_retry_store *rt = arg;
    pthread_mutex_lock(&rt->lock);
    for (;;) {
        if (rt->stop && !rt->timers)
            break;
        if (!rt->timers) {
            pthread_cond_wait(&rt->timer_cond, &rt->lock);
            continue;
        }
        uint64_t now = cmn_now_ms();
        if (rt->timers->due_ms > now) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            uint64_t ns = (uint64_t)ts.tv_nsec + (rt->timers->due_ms - now) * 1000000ull;
            ts.tv_sec += (time_t)(ns / 1000000000ull);
            ts.tv_nsec = (long)(ns % 1000000000ull);
            pthread_cond_timedwait(&rt->timer_cond, &rt->lock, &ts);
            continue;
        }
        struct objstore_retry_ctx *ctx = rt->timers;
        rt->timers = ctx->next;
        pthread_mutex_unlock(&rt->lock);
        int rc = objstore_retry_send(ctx);
        if (rc < 0) {
            snprintf(ctx->inner.errmsg, sizeof(ctx->inner.errmsg), "%s %s: retry not sent: %s",
                     objstore_op_name(ctx->user->op), ctx->user->key ? ctx->user->key : "",
                     objstore_strerror(rc));
            objstore_retry_complete(ctx, rc);
        }
        pthread_mutex_lock(&rt->lock);
    }
    pthread_mutex_unlock(&rt->lock);
    return NULL;
}

static int objstore_retry_submit(struct objstore *os, struct objstore_req *req)
{
    struct objstore_retry_store *rt = (struct objstore_retry_store *)os;
    size_t niov = req->op == OBJSTORE_OP_GET && req->iov ? req->iovcnt : 0;
    struct objstore_retry_ctx *ctx = calloc(1, sizeof(*ctx) + niov * sizeof(ctx->iov[0]));
    if (!ctx)
        return -ENOMEM;
    ctx->rt = rt;
    ctx->user = req;
    ctx->t0_ns = cmn_now_ns();

    /* Count before sending: the attempt may finish before objstore_submit returns. */
    pthread_mutex_lock(&rt->lock);
    if (++rt->inflight > rt->inflight_max)
        rt->inflight_max = rt->inflight;
    pthread_mutex_unlock(&rt->lock);

    int rc = objstore_retry_send(ctx);
    if (rc < 0) {
        memcpy(req->errmsg, ctx->inner.errmsg, sizeof(req->errmsg)); /* why it was refused */
        free(ctx);
        pthread_mutex_lock(&rt->lock);
        if (--rt->inflight == 0)
            pthread_cond_broadcast(&rt->idle_cond);
        pthread_mutex_unlock(&rt->lock);
    }
    return rc;
}

static void objstore_retry_get_stats(struct objstore *os, struct objstore_stats *st)
{
    struct objstore_retry_store *rt = (struct objstore_retry_store *)os;
    objstore_get_stats(rt->inner, st);
    pthread_mutex_lock(&rt->lock);
    st->retries += rt->retries;
    /* Errors and latency as the caller sees them: after retries, first attempt to done. */
    memcpy(st->errors, rt->errors, sizeof(st->errors));
    memcpy(st->latency_ns_total, rt->latency_ns, sizeof(st->latency_ns_total));
    st->inflight = rt->inflight;
    st->inflight_max = rt->inflight_max;
    pthread_mutex_unlock(&rt->lock);
}

static void objstore_retry_destroy(struct objstore *os)
{
    struct objstore_retry_store *rt = (struct objstore_retry_store *)os;
    pthread_mutex_lock(&rt->lock);
    while (rt->inflight > 0)
        pthread_cond_wait(&rt->idle_cond, &rt->lock);
    rt->stop = true;
    pthread_cond_signal(&rt->timer_cond);
    pthread_mutex_unlock(&rt->lock);
    pthread_join(rt->timer_thread, NULL);
    /* Joins the inner event thread, so no objstore_retry_done is still running after this. */
    objstore_destroy(rt->inner);
    pthread_cond_destroy(&rt->idle_cond);
    pthread_cond_destroy(&rt->timer_cond);
    pthread_mutex_destroy(&rt->lock);
    free(rt);
}

static const struct objstore_ops objstore_retry_ops = {
    .version = OBJSTORE_OPS_VERSION,
    .name = "retry",
    .submit = objstore_retry_submit,
    .get_stats = objstore_retry_get_stats,
    .destroy = objstore_retry_destroy,
};

int objstore_retry_create(struct objstore *inner, const struct objstore_retry_conf *conf,
                          struct objstore **out)
{
    struct objstore_retry_store *rt = NULL;
    int rc = -EINVAL;
    if (!inner || !out)
        goto fail_inner;
    rc = -ENOMEM;
    rt = calloc(1, sizeof(*rt));
    if (!rt)
        goto fail_inner;
    rt->base.ops = &objstore_retry_ops;
    rt->inner = inner;
    rt->max_attempts = conf && conf->max_attempts ? conf->max_attempts : 5;
    rt->base_delay_ms = conf && conf->base_delay_ms ? conf->base_delay_ms : 50;
    rt->max_delay_ms = conf && conf->max_delay_ms ? conf->max_delay_ms : 2000;
    rt->rng = (cmn_wall_ns() ^ (uintptr_t)rt) | 1;

    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* backoff is immune to clock steps */
    pthread_mutex_init(&rt->lock, NULL);
    pthread_cond_init(&rt->timer_cond, &ca);
    pthread_cond_init(&rt->idle_cond, NULL);
    pthread_condattr_destroy(&ca);
    rc = -pthread_create(&rt->timer_thread, NULL, objstore_retry_timer_main, rt);
    if (rc < 0)
        goto fail_locks;
    *out = &rt->base;
    return 0;

fail_locks:
    pthread_cond_destroy(&rt->idle_cond);
    pthread_cond_destroy(&rt->timer_cond);
    pthread_mutex_destroy(&rt->lock);
    free(rt);
fail_inner:
    objstore_destroy(inner); /* ownership passed, also on failure */
    return rc;
}
