/* SPDX-License-Identifier: Apache-2.0 */
/* devfault.c: a device wrapper that injects IO errors, bit flips and short transfers. */
#include "ioengine/ioengine_i.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "common/log.h"
#include "common/util.h"

/*
 * The wrapper reports fd -1, so engines take the synchronous path through these ops and
 * every request passes the injection point, whichever engine name was asked for.
 */
struct dev_fault {
    struct dev base; /* first: the ops see a struct dev */
    struct dev *inner;
    pthread_mutex_t lock;
    enum dev_fault_kind kind; /* protected by lock; DEV_FAULT_NONE when disarmed */
    unsigned countdown;       /* protected by lock: matching calls left before the next hit */
    unsigned repeat;          /* protected by lock: hits left after the next one */
};

static struct dev_fault *dev_fault_of(struct dev *d)
{
    return (struct dev_fault *)d;
}

static bool dev_fault_is_read(enum dev_fault_kind k)
{
    return k == DEV_FAULT_EIO_READ || k == DEV_FAULT_FLIP_READ || k == DEV_FAULT_SHORT_READ;
}

/*
 * Count one call of direction @is_read against the armed fault.
 * @return the fault to inject now, or DEV_FAULT_NONE.
 */
static enum dev_fault_kind dev_fault_take(struct dev_fault *f, bool is_read)
{
    enum dev_fault_kind hit = DEV_FAULT_NONE;

    pthread_mutex_lock(&f->lock);
    if (f->kind != DEV_FAULT_NONE && dev_fault_is_read(f->kind) == is_read) {
        if (f->countdown > 1) {
            f->countdown--;
        } else {
            hit = f->kind;
            if (f->repeat == UINT32_MAX)
                ; /* always */
            else if (f->repeat > 0)
                f->repeat--;
            else
                f->kind = DEV_FAULT_NONE;
        }
    }
    pthread_mutex_unlock(&f->lock);
    return hit;
}

/*
 * How much a short transfer moves: half the request rounded down to whole blocks, so the
 * engine can resubmit the rest; a one-block request gets half a block, which engines must
 * fail (a partial block cannot be continued under O_DIRECT).
 */
static size_t dev_fault_short_len(const struct dev *d, size_t len)
{
    size_t n = (len / 2) - (len / 2) % d->align;
    return n ? n : len / 2;
}

static ssize_t dev_fault_pread(struct dev *d, void *buf, size_t len, uint64_t off)
{
    struct dev_fault *f = dev_fault_of(d);
    ssize_t n;

    switch (dev_fault_take(f, true)) {
    case DEV_FAULT_EIO_READ:
        return -EIO;
    case DEV_FAULT_SHORT_READ:
        len = dev_fault_short_len(d, len);
        if (len == 0)
            return 0;
        /* The inner device is O_DIRECT: read whole blocks, report only part of them. */
        n = f->inner->ops->pread(f->inner, buf, CMN_ALIGN_UP(len, (size_t)d->align), off);
        return n < 0 ? n : (ssize_t)CMN_MIN((size_t)n, len);
    case DEV_FAULT_FLIP_READ:
        n = f->inner->ops->pread(f->inner, buf, len, off);
        if (n > 0)
            ((unsigned char *)buf)[n / 2] ^= 0x5a;
        return n;
    default:
        return f->inner->ops->pread(f->inner, buf, len, off);
    }
}

static ssize_t dev_fault_pwrite(struct dev *d, const void *buf, size_t len, uint64_t off)
{
    struct dev_fault *f = dev_fault_of(d);
    ssize_t n;

    switch (dev_fault_take(f, false)) {
    case DEV_FAULT_EIO_WRITE:
        return -EIO;
    case DEV_FAULT_ENOSPC_WRITE:
        return -ENOSPC;
    case DEV_FAULT_SHORT_WRITE:
        len = dev_fault_short_len(d, len);
        if (len == 0)
            return 0;
        n = f->inner->ops->pwrite(f->inner, buf, CMN_ALIGN_UP(len, (size_t)d->align), off);
        return n < 0 ? n : (ssize_t)CMN_MIN((size_t)n, len);
    default:
        return f->inner->ops->pwrite(f->inner, buf, len, off);
    }
}

static int dev_fault_flush(struct dev *d)
{
    return dev_flush(dev_fault_of(d)->inner);
}

static int dev_fault_fd(struct dev *d)
{
    return -1;
}

static void dev_fault_destroy(struct dev *d)
{
    struct dev_fault *f = dev_fault_of(d);
    dev_close(f->inner);
    pthread_mutex_destroy(&f->lock);
    free(f);
}

static const struct dev_ops dev_fault_ops = {
    .version = 1,
    .name = "fault",
    .pread = dev_fault_pread,
    .pwrite = dev_fault_pwrite,
    .flush = dev_fault_flush,
    .fd = dev_fault_fd,
    .destroy = dev_fault_destroy,
};

int dev_fault_wrap(struct dev *inner, struct dev **out)
{
    struct dev_fault *f;

    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!inner)
        return -EINVAL;
    f = calloc(1, sizeof(*f));
    if (!f)
        return -ENOMEM; /* @inner stays with the caller: nothing was wrapped */
    pthread_mutex_init(&f->lock, NULL);
    f->inner = inner;
    f->base.ops = &dev_fault_ops;
    f->base.size = inner->size;
    f->base.align = inner->align;
    f->base.direct_io = inner->direct_io;
    f->base.is_blockdev = inner->is_blockdev;
    *out = &f->base;
    return 0;
}

void dev_fault_set(struct dev *fault_dev, const struct dev_fault_conf *conf)
{
    struct dev_fault *f;

    if (!fault_dev || fault_dev->ops != &dev_fault_ops) {
        TLOG_E("dev: dev_fault_set on a device that is not a fault wrapper");
        return;
    }
    f = dev_fault_of(fault_dev);
    pthread_mutex_lock(&f->lock);
    f->kind = conf ? conf->kind : DEV_FAULT_NONE;
    f->countdown = conf ? conf->countdown : 0;
    f->repeat = conf ? conf->repeat : 0;
    pthread_mutex_unlock(&f->lock);
}
