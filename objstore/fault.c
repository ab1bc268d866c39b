/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fault.c: a test store that wraps another and injects failures on a countdown or with a
 * probability (SQLite test_vfs style). It sits UNDER the retry layer in tests, so the
 * retry policy sees exactly what a misbehaving S3 would show it.
 *
 * Most faults answer without touching the inner store; their completion runs on a small
 * worker thread because done must never run inside objstore_submit(). A short body is
 * different: the real request runs and its result is then cut (got halved, -EIO with the
 * 2xx status kept), which is what a connection dropped mid-body looks like, so it takes the
 * same "short body -> retry/resume, never partial data" path as the real thing.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "objstore/objstore_i.h"

struct objstore_fault_ctx {
    struct objstore_fault_store *ft;
    struct objstore_req *user;
    struct objstore_req inner; /* short body: the request really sent */
    enum objstore_fault_kind kind;
    struct objstore_fault_ctx *next; /* worker queue, protected by ft->lock */
};

struct objstore_fault_store {
    struct objstore base; /* first: the vtable pointer */
    struct objstore *inner;

    pthread_mutex_t lock;     /* a leaf lock: never held across calls out */
    pthread_cond_t work_cond; /* worker: queue not empty or stop */
    pthread_cond_t idle_cond; /* destroy: inflight reached 0 */
    pthread_t worker;
    struct objstore_fault_ctx *head, *tail; /* protected by lock */
    bool stop;                              /* protected by lock */
    /* the plan and its progress, protected by lock */
    struct objstore_fault_conf conf;
    uint64_t seen;
    uint64_t injected_plan; /* faults injected under the current plan */
    uint64_t rng;
    /* counters, protected by lock */
    uint64_t faults_injected;
    uint64_t requests[OBJSTORE_OP_COUNT];
    uint64_t errors[OBJSTORE_OP_COUNT];
    uint32_t inflight; /* requests whose completion this layer owns */
};

/* Decide whether this request gets a fault. Called with ft->lock held. */
static enum objstore_fault_kind objstore_fault_decide(struct objstore_fault_store *ft,
                                                      enum objstore_op op)
{
    const struct objstore_fault_conf *c = &ft->conf;
    if (c->kind == OBJSTORE_FAULT_NONE)
        return OBJSTORE_FAULT_NONE;
    /* A short body needs a body: HEAD has none and a PUT's answer is empty. */
    if (c->kind == OBJSTORE_FAULT_SHORT_BODY && op != OBJSTORE_OP_GET && op != OBJSTORE_OP_LIST)
        return OBJSTORE_FAULT_NONE;
    if (c->max_faults && ft->injected_plan >= c->max_faults)
        return OBJSTORE_FAULT_NONE;
    ft->seen++;
    bool hit;
    if (c->every_nth)
        hit = ft->seen % c->every_nth == 0;
    else
        hit = (double)(cmn_rand64(&ft->rng) >> 11) * (1.0 / 9007199254740992.0) < c->probability;
    if (!hit)
        return OBJSTORE_FAULT_NONE;
    ft->injected_plan++;
    ft->faults_injected++;
    ft->requests[op]++; /* an attempt the store "sent", although it never left this layer */
    return c->kind;
}

/* Fill @req with the answer of a fault that does not reach the inner store. */
static void objstore_fault_answer(struct objstore_req *req, enum objstore_fault_kind kind)
{
    int status = 0;
    const char *code = NULL, *what = NULL;
    switch (kind) {
    case OBJSTORE_FAULT_HTTP_500:
        status = 500, code = "InternalError";
        break;
    case OBJSTORE_FAULT_HTTP_503:
        status = 503, code = "SlowDown";
        break;
    case OBJSTORE_FAULT_HTTP_403:
        status = 403, code = "AccessDenied";
        break;
    case OBJSTORE_FAULT_HTTP_404:
        status = 404, code = "NoSuchKey";
        break;
    case OBJSTORE_FAULT_RESET:
        req->result = -ECONNRESET, what = "connection reset";
        break;
    case OBJSTORE_FAULT_TIMEOUT:
    default:
        req->result = -ETIMEDOUT, what = "timed out";
        break;
    }
    req->http_status = status;
    req->attempts = 1;
    req->got = 0;
    if (code) {
        req->result = objstore_map_error(status, code);
        snprintf(req->errmsg, sizeof(req->errmsg), "%s %s: %s: injected fault (HTTP %d)",
                 objstore_op_name(req->op), req->key ? req->key : "", code, status);
    } else {
        snprintf(req->errmsg, sizeof(req->errmsg), "%s %s: %s (injected fault)",
                 objstore_op_name(req->op), req->key ? req->key : "", what);
    }
}

/* Complete a request this layer owns: done, then let destroy know. */
static void objstore_fault_finish(struct objstore_fault_store *ft, struct objstore_req *user)
{
    /* Before done (see retry.c): destroy joins the threads that run done anyway. */
    pthread_mutex_lock(&ft->lock);
    if (user->result < 0)
        ft->errors[user->op]++;
    if (--ft->inflight == 0)
        pthread_cond_broadcast(&ft->idle_cond);
    pthread_mutex_unlock(&ft->lock);
    user->done(user);
}

static void *objstore_fault_worker_main(void *arg)
{
    struct objstore_fault_store *ft = arg;
    pthread_mutex_lock(&ft->lock);
    for (;;) {
        struct objstore_fault_ctx *ctx = ft->head;
        if (!ctx) {
            if (ft->stop)
                break;
            pthread_cond_wait(&ft->work_cond, &ft->lock);
            continue;
        }
        ft->head = ctx->next;
        if (!ft->head)
            ft->tail = NULL;
        pthread_mutex_unlock(&ft->lock);
        struct objstore_req *user = ctx->user;
        objstore_fault_answer(user, ctx->kind);
        free(ctx);
        objstore_fault_finish(ft, user);
        pthread_mutex_lock(&ft->lock);
    }
    pthread_mutex_unlock(&ft->lock);
    return NULL;
}

static void objstore_fault_short_progress(struct objstore_req *inner, size_t valid)
{
    struct objstore_fault_ctx *ctx = inner->arg;
    ctx->user->progress(ctx->user, valid);
}

/* The real request of a short-body fault finished: cut its body. */
static void objstore_fault_short_done(struct objstore_req *inner)
{
    struct objstore_fault_ctx *ctx = inner->arg;
    struct objstore_fault_store *ft = ctx->ft;
    struct objstore_req *u = ctx->user;

    u->http_status = inner->http_status;
    u->attempts = inner->attempts;
    u->info = inner->info;
    if (inner->result == 0) {
        u->result = -EIO;
        u->got = inner->got / 2; /* the bytes that "arrived" are real data */
        objstore_list_result_free(&inner->list_result);
        snprintf(u->errmsg, sizeof(u->errmsg),
                 "%s %s: body cut short after %zu bytes (injected fault)", objstore_op_name(u->op),
                 u->key ? u->key : "", u->got);
    } else {
        u->result = inner->result;
        u->got = inner->got;
        memcpy(u->errmsg, inner->errmsg, sizeof(u->errmsg));
    }
    free(ctx);
    objstore_fault_finish(ft, u);
}

static int objstore_fault_submit(struct objstore *os, struct objstore_req *req)
{
    struct objstore_fault_store *ft = (struct objstore_fault_store *)os;
    pthread_mutex_lock(&ft->lock);
    enum objstore_fault_kind kind = objstore_fault_decide(ft, req->op);
    if (kind != OBJSTORE_FAULT_NONE)
        ft->inflight++;
    pthread_mutex_unlock(&ft->lock);

    if (kind == OBJSTORE_FAULT_NONE)
        return objstore_submit(ft->inner, req); /* done goes straight to the caller */

    struct objstore_fault_ctx *ctx = calloc(1, sizeof(*ctx));
    int rc = -ENOMEM;
    if (!ctx)
        goto fail_count;
    ctx->ft = ft;
    ctx->user = req;
    ctx->kind = kind;
    if (kind == OBJSTORE_FAULT_SHORT_BODY) {
        ctx->inner = *req;
        ctx->inner.done = objstore_fault_short_done;
        ctx->inner.arg = ctx;
        ctx->inner.progress = req->progress ? objstore_fault_short_progress : NULL;
        rc = objstore_submit(ft->inner, &ctx->inner);
        if (rc < 0)
            goto fail_ctx;
        return 0;
    }
    pthread_mutex_lock(&ft->lock);
    if (ft->tail)
        ft->tail->next = ctx;
    else
        ft->head = ctx;
    ft->tail = ctx;
    pthread_cond_signal(&ft->work_cond);
    pthread_mutex_unlock(&ft->lock);
    return 0;

fail_ctx:
    memcpy(req->errmsg, ctx->inner.errmsg, sizeof(req->errmsg));
    free(ctx);
fail_count:
    pthread_mutex_lock(&ft->lock);
    if (--ft->inflight == 0)
        pthread_cond_broadcast(&ft->idle_cond);
    pthread_mutex_unlock(&ft->lock);
    return rc;
}

static void objstore_fault_get_stats(struct objstore *os, struct objstore_stats *st)
{
    struct objstore_fault_store *ft = (struct objstore_fault_store *)os;
    objstore_get_stats(ft->inner, st);
    pthread_mutex_lock(&ft->lock);
    st->faults_injected += ft->faults_injected;
    for (int i = 0; i < OBJSTORE_OP_COUNT; i++) {
        st->requests[i] += ft->requests[i];
        st->errors[i] += ft->errors[i];
    }
    pthread_mutex_unlock(&ft->lock);
}

static void objstore_fault_destroy(struct objstore *os)
{
    struct objstore_fault_store *ft = (struct objstore_fault_store *)os;
    pthread_mutex_lock(&ft->lock);
    while (ft->inflight > 0)
        pthread_cond_wait(&ft->idle_cond, &ft->lock);
    ft->stop = true;
    pthread_cond_signal(&ft->work_cond);
    pthread_mutex_unlock(&ft->lock);
    pthread_join(ft->worker, NULL);
    objstore_destroy(ft->inner);
    pthread_cond_destroy(&ft->idle_cond);
    pthread_cond_destroy(&ft->work_cond);
    pthread_mutex_destroy(&ft->lock);
    free(ft);
}

static const struct objstore_ops objstore_fault_ops = {
    .version = OBJSTORE_OPS_VERSION,
    .name = "fault",
    .submit = objstore_fault_submit,
    .get_stats = objstore_fault_get_stats,
    .destroy = objstore_fault_destroy,
};

void objstore_fault_set(struct objstore *fault_store, const struct objstore_fault_conf *conf)
{
    if (!fault_store || fault_store->ops != &objstore_fault_ops)
        return;
    struct objstore_fault_store *ft = (struct objstore_fault_store *)fault_store;
    pthread_mutex_lock(&ft->lock);
    if (conf)
        ft->conf = *conf;
    else
        memset(&ft->conf, 0, sizeof(ft->conf));
    ft->seen = 0;
    ft->injected_plan = 0;
    ft->rng = ft->conf.seed ? ft->conf.seed : 0x9e3779b97f4a7c15ull;
    pthread_mutex_unlock(&ft->lock);
}

int objstore_fault_create(struct objstore *inner, const struct objstore_fault_conf *conf,
                          struct objstore **out)
{
    struct objstore_fault_store *ft = NULL;
    int rc = -EINVAL;
    if (!inner || !out)
        goto fail_inner;
    rc = -ENOMEM;
    ft = calloc(1, sizeof(*ft));
    if (!ft)
        goto fail_inner;
    ft->base.ops = &objstore_fault_ops;
    ft->inner = inner;
    pthread_mutex_init(&ft->lock, NULL);
    pthread_cond_init(&ft->work_cond, NULL);
    pthread_cond_init(&ft->idle_cond, NULL);
    objstore_fault_set(&ft->base, conf);
    rc = -pthread_create(&ft->worker, NULL, objstore_fault_worker_main, ft);
    if (rc < 0)
        goto fail_locks;
    *out = &ft->base;
    return 0;

fail_locks:
    pthread_cond_destroy(&ft->idle_cond);
    pthread_cond_destroy(&ft->work_cond);
    pthread_mutex_destroy(&ft->lock);
    free(ft);
fail_inner:
    objstore_destroy(inner); /* ownership passed, also on failure */
    return rc;
}
