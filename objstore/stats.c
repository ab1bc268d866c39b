/* SPDX-License-Identifier: Apache-2.0 */
/*
 * stats.c: the statistics layer, a wrapper like retry and fault: every completed request
 * is counted by op and by the class of its last HTTP status, failures by op, and its time
 * from submit to done goes into a latency histogram per op. Meant outside the retry layer,
 * so it sees what a caller waits for (retries included) and one completion per request.
 *
 * The layer, the request's own done and its start time ride in the request's private
 * stats_ fields (objstore.h): req->arg stays the caller's, since a progress callback runs
 * while the request is in flight and must see its own cookie, and nothing is allocated
 * per request. The wrapped done is put back before it runs, so the request is wholly the
 * caller's again in its done (it may resubmit it).
 */
#include <errno.h>
#include <stdlib.h>

#include "common/util.h"
#include "objstore/objstore_i.h"

struct objstore_stats_store {
    struct objstore base; /* first: the vtable pointer */
    struct objstore *inner;
    /* relaxed atomics */
    uint64_t done[OBJSTORE_OP_COUNT][OBJSTORE_STATUS_COUNT];
    uint64_t errors[OBJSTORE_OP_COUNT];
    uint64_t not_found[OBJSTORE_OP_COUNT]; /* HEADs answered 404 (not in errors) */
    struct cmn_hist latency[OBJSTORE_OP_COUNT];
};

static enum objstore_status_class objstore_stats_class(int status)
{
    return status >= 200 && status < 600 ? (enum objstore_status_class)(status / 100 - 2)
                                         : OBJSTORE_STATUS_NONE;
}

static void objstore_stats_done(struct objstore_req *req)
{
    struct objstore_stats_store *s = (struct objstore_stats_store *)req->stats_layer;
    unsigned op = (unsigned)req->op;

    __atomic_add_fetch(&s->done[op][objstore_stats_class(req->http_status)], 1, __ATOMIC_RELAXED);
    if (req->result == -ENOENT && op == OBJSTORE_OP_HEAD)
        __atomic_add_fetch(&s->not_found[op], 1, __ATOMIC_RELAXED);
    else if (req->result < 0)
        __atomic_add_fetch(&s->errors[op], 1, __ATOMIC_RELAXED);
    cmn_hist_observe(&s->latency[op], cmn_now_ns() - req->stats_t0_ns);
    req->done = req->stats_done;
    req->stats_layer = NULL;
    req->stats_done = NULL;
    req->done(req);
}

static int objstore_stats_submit(struct objstore *os, struct objstore_req *req)
{
    struct objstore_stats_store *s = (struct objstore_stats_store *)os;
    int rc;

    if ((unsigned)req->op >= OBJSTORE_OP_COUNT)
        return -EINVAL;
    req->stats_layer = os;
    req->stats_done = req->done;
    req->stats_t0_ns = cmn_now_ns();
    req->done = objstore_stats_done;
    rc = objstore_submit(s->inner, req);
    if (rc != 0) { /* never submitted: no done will come, the request is the caller's */
        req->done = req->stats_done;
        req->stats_layer = NULL;
        req->stats_done = NULL;
    }
    return rc;
}

static void objstore_stats_get_stats(struct objstore *os, struct objstore_stats *st)
{
    struct objstore_stats_store *s = (struct objstore_stats_store *)os;

    objstore_get_stats(s->inner, st);
    for (unsigned op = 0; op < OBJSTORE_OP_COUNT; op++) {
        for (unsigned c = 0; c < OBJSTORE_STATUS_COUNT; c++)
            st->done[op][c] = __atomic_load_n(&s->done[op][c], __ATOMIC_RELAXED);
        st->done_errors[op] = __atomic_load_n(&s->errors[op], __ATOMIC_RELAXED);
        st->done_not_found[op] = __atomic_load_n(&s->not_found[op], __ATOMIC_RELAXED);
        cmn_hist_read(&s->latency[op], &st->latency[op]);
    }
}

static void objstore_stats_destroy(struct objstore *os)
{
    struct objstore_stats_store *s = (struct objstore_stats_store *)os;
    objstore_destroy(s->inner);
    free(s);
}

static const struct objstore_ops objstore_stats_ops = {
    .version = OBJSTORE_OPS_VERSION,
    .name = "stats",
    .submit = objstore_stats_submit,
    .get_stats = objstore_stats_get_stats,
    .destroy = objstore_stats_destroy,
};

int objstore_stats_create(struct objstore *inner, struct objstore **out)
{
    struct objstore_stats_store *s = calloc(1, sizeof(*s));
    if (!s) {
        objstore_destroy(inner);
        return -ENOMEM;
    }
    s->base.ops = &objstore_stats_ops;
    s->inner = inner;
    *out = &s->base;
    return 0;
}

const char *objstore_op_label(enum objstore_op op)
{
    static const char *const names[OBJSTORE_OP_COUNT] = {
        "head", "get", "list", "put", "delete", "mpu_create", "mpu_part", "mpu_complete"};
    return (unsigned)op < OBJSTORE_OP_COUNT ? names[op] : "?";
}

const char *objstore_status_label(enum objstore_status_class cls)
{
    static const char *const names[OBJSTORE_STATUS_COUNT] = {"2xx", "3xx", "4xx", "5xx", "none"};
    return (unsigned)cls < OBJSTORE_STATUS_COUNT ? names[cls] : "?";
}
