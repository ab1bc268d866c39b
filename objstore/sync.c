/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sync.c: the wrappers callers use (objstore_submit/get_stats/destroy) and the synchronous
 * helpers built on them (objstore_head/get/list/put: submit, then wait on a condvar).
 *
 * The wrappers check arguments once so that no layer has to, and reset the output fields
 * so that a reused request never shows a previous result.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "objstore/objstore_i.h"

/* @return 0 when @req is well formed for its op, else -EINVAL. */
static int objstore_check_req(const struct objstore_req *req)
{
    if (!req->done || (unsigned)req->op >= OBJSTORE_OP_COUNT)
        return -EINVAL;
    if (req->op != OBJSTORE_OP_LIST && (!req->key || !req->key[0]))
        return -EINVAL;
    if (req->op == OBJSTORE_OP_GET) {
        if (req->iov) {
            size_t sum = 0;
            if (req->buf || req->iovcnt == 0)
                return -EINVAL;
            for (unsigned i = 0; i < req->iovcnt; i++)
                sum += req->iov[i].iov_len;
            if (sum != req->buf_cap)
                return -EINVAL;
        } else if (req->buf_cap && !req->buf) {
            return -EINVAL;
        }
        /* A body may be as long as len, so the buffer must hold it. */
        if (req->len > req->buf_cap)
            return -EINVAL;
        if (req->len && req->off + req->len < req->off)
            return -EINVAL;
    }
    if ((req->op == OBJSTORE_OP_PUT || req->op == OBJSTORE_OP_MPU_PART) && req->len && !req->buf)
        return -EINVAL;
    if ((req->op == OBJSTORE_OP_MPU_PART || req->op == OBJSTORE_OP_MPU_COMPLETE) &&
        (!req->upload_id || !req->upload_id[0]))
        return -EINVAL;
    if (req->op == OBJSTORE_OP_MPU_PART &&
        (req->part_number < 1 || req->part_number > OBJSTORE_PARTS_MAX))
        return -EINVAL;
    if (req->op == OBJSTORE_OP_MPU_COMPLETE &&
        (!req->parts || req->nparts < 1 || req->nparts > OBJSTORE_PARTS_MAX))
        return -EINVAL;
    return 0;
}

int objstore_submit(struct objstore *os, struct objstore_req *req)
{
    if (!os || !req)
        return -EINVAL;
    int rc = objstore_check_req(req);
    if (rc < 0)
        return rc;
    req->result = 0;
    req->http_status = 0;
    req->got = 0;
    memset(&req->info, 0, sizeof(req->info));
    memset(&req->list_result, 0, sizeof(req->list_result));
    req->upload_id_out[0] = '\0';
    req->attempts = 0;
    req->errmsg[0] = '\0';
    return os->ops->submit(os, req);
}

void objstore_get_stats(struct objstore *os, struct objstore_stats *st)
{
    memset(st, 0, sizeof(*st));
    if (os && os->ops->get_stats)
        os->ops->get_stats(os, st);
}

void objstore_destroy(struct objstore *os)
{
    if (os)
        os->ops->destroy(os);
}

/* ---- synchronous helpers ---- */

struct objstore_waiter {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done; /* protected by lock */
};

static void objstore_sync_done(struct objstore_req *req)
{
    struct objstore_waiter *w = req->arg;
    pthread_mutex_lock(&w->lock);
    w->done = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
    /* w lives on the waiter's stack: not touched after the unlock. */
}

/* Submit @req and wait for it. @return req->result (or the submit error). */
static int objstore_sync_run(struct objstore *os, struct objstore_req *req, char *errmsg,
                             size_t cap)
{
    struct objstore_waiter w = {.done = false};
    pthread_mutex_init(&w.lock, NULL);
    pthread_cond_init(&w.cond, NULL);
    req->done = objstore_sync_done;
    /* w outlives the request: done runs before the wait below returns */
    /* cppcheck-suppress autoVariables */
    req->arg = &w;
    int rc = objstore_submit(os, req);
    if (rc == 0) {
        pthread_mutex_lock(&w.lock);
        while (!w.done)
            pthread_cond_wait(&w.cond, &w.lock);
        pthread_mutex_unlock(&w.lock);
        rc = req->result;
    } else if (!req->errmsg[0]) { /* a layer may have said why already */
        snprintf(req->errmsg, sizeof(req->errmsg), "%s %s: %s", objstore_op_name(req->op),
                 req->key ? req->key : "", objstore_strerror(rc));
    }
    pthread_cond_destroy(&w.cond);
    pthread_mutex_destroy(&w.lock);
    if (errmsg && cap)
        snprintf(errmsg, cap, "%s", rc < 0 ? req->errmsg : "");
    return rc;
}

int objstore_head(struct objstore *os, const char *key, struct objstore_object_info *info,
                  char *errmsg, size_t errmsg_cap)
{
    struct objstore_req *req = calloc(1, sizeof(*req));
    if (!req)
        return -ENOMEM;
    req->op = OBJSTORE_OP_HEAD;
    req->key = key;
    int rc = objstore_sync_run(os, req, errmsg, errmsg_cap);
    if (rc == 0 && info)
        *info = req->info;
    free(req);
    return rc;
}

ssize_t objstore_get(struct objstore *os, const char *key, uint64_t off, uint64_t len,
                     const char *if_match, void *buf, size_t buf_cap, unsigned flags,
                     struct objstore_object_info *info, char *errmsg, size_t errmsg_cap)
{
    struct objstore_req *req = calloc(1, sizeof(*req));
    if (!req)
        return -ENOMEM;
    req->op = OBJSTORE_OP_GET;
    req->key = key;
    req->off = off;
    req->len = len;
    req->if_match = if_match;
    req->buf = buf;
    req->buf_cap = buf_cap;
    req->flags = flags;
    ssize_t rc = objstore_sync_run(os, req, errmsg, errmsg_cap);
    if (rc == 0) {
        rc = (ssize_t)req->got;
        if (info)
            *info = req->info;
    }
    free(req);
    return rc;
}

int objstore_list(struct objstore *os, const struct objstore_list_args *args,
                  struct objstore_list_result *res, char *errmsg, size_t errmsg_cap)
{
    memset(res, 0, sizeof(*res));
    struct objstore_req *req = calloc(1, sizeof(*req));
    if (!req)
        return -ENOMEM;
    req->op = OBJSTORE_OP_LIST;
    if (args)
        req->list = *args;
    int rc = objstore_sync_run(os, req, errmsg, errmsg_cap);
    if (rc == 0)
        *res = req->list_result; /* ownership moves to the caller */
    else
        objstore_list_result_free(&req->list_result);
    free(req);
    return rc;
}

int objstore_put(struct objstore *os, const char *key, const void *buf, size_t len,
                 struct objstore_object_info *info, char *errmsg, size_t errmsg_cap)
{
    struct objstore_req *req = calloc(1, sizeof(*req));
    if (!req)
        return -ENOMEM;
    req->op = OBJSTORE_OP_PUT;
    req->key = key;
    req->buf = (void *)buf; /* PUT only reads it */
    req->len = len;
    req->buf_cap = len;
    int rc = objstore_sync_run(os, req, errmsg, errmsg_cap);
    if (rc == 0 && info)
        *info = req->info;
    free(req);
    return rc;
}

int objstore_delete(struct objstore *os, const char *key, const char *upload_id, char *errmsg,
                    size_t errmsg_cap)
{
    struct objstore_req *req = calloc(1, sizeof(*req));
    if (!req)
        return -ENOMEM;
    req->op = OBJSTORE_OP_DELETE;
    req->key = key;
    req->upload_id = upload_id;
    int rc = objstore_sync_run(os, req, errmsg, errmsg_cap);
    free(req);
    return rc;
}

int objstore_mpu_create(struct objstore *os, const char *key, char *upload_id, size_t cap,
                        char *errmsg, size_t errmsg_cap)
{
    struct objstore_req *req = calloc(1, sizeof(*req));
    if (!req)
        return -ENOMEM;
    req->op = OBJSTORE_OP_MPU_CREATE;
    req->key = key;
    int rc = objstore_sync_run(os, req, errmsg, errmsg_cap);
    if (rc == 0 && snprintf(upload_id, cap, "%s", req->upload_id_out) >= (int)cap)
        rc = -ENAMETOOLONG;
    free(req);
    return rc;
}

int objstore_mpu_part(struct objstore *os, const char *key, const char *upload_id, unsigned number,
                      const void *buf, size_t len, char *etag, char *errmsg, size_t errmsg_cap)
{
    struct objstore_req *req = calloc(1, sizeof(*req));
    if (!req)
        return -ENOMEM;
    req->op = OBJSTORE_OP_MPU_PART;
    req->key = key;
    req->upload_id = upload_id;
    req->part_number = number;
    req->buf = (void *)buf; /* only read */
    req->len = len;
    req->buf_cap = len;
    int rc = objstore_sync_run(os, req, errmsg, errmsg_cap);
    if (rc == 0)
        memcpy(etag, req->info.etag, OBJSTORE_ETAG_MAX);
    free(req);
    return rc;
}

int objstore_mpu_complete(struct objstore *os, const char *key, const char *upload_id,
                          const struct objstore_part *parts, unsigned nparts,
                          struct objstore_object_info *info, char *errmsg, size_t errmsg_cap)
{
    struct objstore_req *req = calloc(1, sizeof(*req));
    if (!req)
        return -ENOMEM;
    req->op = OBJSTORE_OP_MPU_COMPLETE;
    req->key = key;
    req->upload_id = upload_id;
    req->parts = parts;
    req->nparts = nparts;
    int rc = objstore_sync_run(os, req, errmsg, errmsg_cap);
    if (rc == 0 && info)
        *info = req->info;
    free(req);
    return rc;
}

void objstore_list_result_free(struct objstore_list_result *res)
{
    if (!res)
        return;
    for (size_t i = 0; i < res->n_entries; i++)
        free(res->entries[i].key);
    for (size_t i = 0; i < res->n_prefixes; i++)
        free(res->prefixes[i]);
    free(res->entries);
    free(res->prefixes);
    free(res->next_token);
    memset(res, 0, sizeof(*res));
}
