/* SPDX-License-Identifier: Apache-2.0 */
/* ioengine.c: the engine registry and the wrappers every caller goes through (checks, stats). */
#include "ioengine/ioengine_i.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"

/* The one registration table: `-o io_engine=<name>` is looked up here. */
static const struct ioeng_ops *const ioeng_registry[] = {
    &ioeng_psync_ops,
    &ioeng_uring_ops,
};

/* The names, NULL-terminated, built once from the table (so they cannot disagree). */
static const char *ioeng_registry_names[CMN_ARRAY_SIZE(ioeng_registry) + 1];
static pthread_once_t ioeng_names_once = PTHREAD_ONCE_INIT;

static void ioeng_names_init(void)
{
    for (size_t i = 0; i < CMN_ARRAY_SIZE(ioeng_registry); i++)
        ioeng_registry_names[i] = ioeng_registry[i]->name;
}

const char *const *ioeng_names(void)
{
    pthread_once(&ioeng_names_once, ioeng_names_init);
    return ioeng_registry_names;
}

static const struct ioeng_ops *ioeng_lookup(const char *name)
{
    for (size_t i = 0; i < CMN_ARRAY_SIZE(ioeng_registry); i++)
        if (strcmp(ioeng_registry[i]->name, name) == 0)
            return ioeng_registry[i];
    return NULL;
}

int ioeng_create(const char *name, struct dev *d, const struct ioeng_conf *conf, struct ioeng **out)
{
    static const struct ioeng_conf defaults = {0};
    const struct ioeng_ops *ops;
    int rc;

    if (!out || !d)
        return -EINVAL;
    *out = NULL;
    ops = name ? ioeng_lookup(name) : NULL;
    if (!ops) {
        TLOG_E("ioengine: unknown IO engine '%s' (known: psync, uring)", name ? name : "(null)");
        return -EINVAL;
    }
    if (!conf)
        conf = &defaults;
    rc = ops->create(d, conf, out);
    /*
     * -ENOSYS means "this engine cannot run here" (no io_uring in this kernel/sandbox, or a
     * device without an fd such as the fault wrapper). The engine logged the cause once;
     * psync runs everywhere, so fall back instead of failing the mount.
     */
    if (rc == -ENOSYS && ops != &ioeng_psync_ops)
        rc = ioeng_psync_ops.create(d, conf, out);
    return rc;
}

void ioeng_destroy(struct ioeng *e)
{
    if (e)
        e->ops->destroy(e);
}

const char *ioeng_name(const struct ioeng *e)
{
    return e->ops->name;
}

int ioeng_submit(struct ioeng *e, struct ioeng_req *req)
{
    int rc;

    if (!e || !req || !req->done || (req->op != IOENG_READ && req->op != IOENG_WRITE))
        return -EINVAL;
    if (req->len > IOENG_MAX_REQ_LEN || !dev_range_ok(e->dev, req->buf, req->len, req->off))
        return -EINVAL;
    req->result = 0;
    req->priv_done = 0;
    req->priv_next = NULL;
    /* Count before the engine sees it: the completion can run before submit returns. */
    __atomic_fetch_add(&e->stats.inflight, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(req->op == IOENG_READ ? &e->stats.reads : &e->stats.writes, 1,
                       __ATOMIC_RELAXED);
    rc = e->ops->submit(e, req);
    if (rc < 0) {
        /* Not accepted: it is not an IO, only an error. */
        __atomic_fetch_sub(&e->stats.inflight, 1, __ATOMIC_RELAXED);
        __atomic_fetch_sub(req->op == IOENG_READ ? &e->stats.reads : &e->stats.writes, 1,
                           __ATOMIC_RELAXED);
        __atomic_fetch_add(&e->stats.errors, 1, __ATOMIC_RELAXED);
    }
    return rc;
}

bool ioeng_req_progress(struct ioeng *e, struct ioeng_req *req, ssize_t res)
{
    if (res < 0) {
        req->result = res;
        return true;
    }
    if (res == 0) {
        /* EOF or a device that stopped making progress: retrying would loop forever. */
        req->result = -EIO;
        return true;
    }
    req->priv_done += (size_t)res;
    if (req->priv_done >= req->len) {
        req->result = (ssize_t)req->len;
        return true;
    }
    if (req->priv_done % e->dev->align != 0) {
        /* O_DIRECT cannot continue at an unaligned offset; a partial block is an IO error. */
        req->result = -EIO;
        return true;
    }
    __atomic_fetch_add(&e->stats.short_resubmits, 1, __ATOMIC_RELAXED);
    return false;
}

void ioeng_complete(struct ioeng *e, struct ioeng_req *req)
{
    if (req->result < 0)
        __atomic_fetch_add(&e->stats.errors, 1, __ATOMIC_RELAXED);
    else if (req->op == IOENG_READ)
        __atomic_fetch_add(&e->stats.bytes_read, (uint64_t)req->result, __ATOMIC_RELAXED);
    else
        __atomic_fetch_add(&e->stats.bytes_written, (uint64_t)req->result, __ATOMIC_RELAXED);
    __atomic_fetch_sub(&e->stats.inflight, 1, __ATOMIC_RELAXED);
    req->done(req);
}

void ioeng_get_stats(struct ioeng *e, struct ioeng_stats *st)
{
    st->reads = __atomic_load_n(&e->stats.reads, __ATOMIC_RELAXED);
    st->writes = __atomic_load_n(&e->stats.writes, __ATOMIC_RELAXED);
    st->bytes_read = __atomic_load_n(&e->stats.bytes_read, __ATOMIC_RELAXED);
    st->bytes_written = __atomic_load_n(&e->stats.bytes_written, __ATOMIC_RELAXED);
    st->errors = __atomic_load_n(&e->stats.errors, __ATOMIC_RELAXED);
    st->short_resubmits = __atomic_load_n(&e->stats.short_resubmits, __ATOMIC_RELAXED);
    st->inflight = __atomic_load_n(&e->stats.inflight, __ATOMIC_RELAXED);
}

/* ---- synchronous helper ---- */

struct ioeng_sync_wait {
    pthread_mutex_t lock;
    pthread_cond_t cv;
    bool done; /* protected by lock */
};

static void ioeng_sync_done(struct ioeng_req *req)
{
    struct ioeng_sync_wait *w = req->arg;
    pthread_mutex_lock(&w->lock);
    w->done = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->lock);
}

ssize_t ioeng_rw_sync(struct ioeng *e, enum ioeng_op op, void *buf, size_t len, uint64_t off)
{
    struct ioeng_sync_wait w = {.done = false};
    struct ioeng_req req = {
        .op = op, .buf = buf, .len = len, .off = off, .done = ioeng_sync_done, .arg = &w};
    int rc;

    pthread_mutex_init(&w.lock, NULL);
    pthread_cond_init(&w.cv, NULL);
    rc = ioeng_submit(e, &req);
    if (rc == 0) {
        pthread_mutex_lock(&w.lock);
        while (!w.done)
            pthread_cond_wait(&w.cv, &w.lock);
        pthread_mutex_unlock(&w.lock);
    }
    pthread_cond_destroy(&w.cv);
    pthread_mutex_destroy(&w.lock);
    return rc < 0 ? rc : req.result;
}
