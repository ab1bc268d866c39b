/* SPDX-License-Identifier: Apache-2.0 */
/* device.c: cache devices (preallocated file or block device), checked IO, aligned buffers. */
#include "ioengine/ioengine_i.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"

/* ---- aligned buffers ---- */

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14; older glibc headers lack it */
#endif

/*
 * A fresh large buffer is a fresh mapping (malloc's mmap threshold is below a block), and
 * the GET, disk read or memcpy that fills it would otherwise take one page fault per
 * 4 KiB: one madvise faults them all in at once. Best effort (a kernel without
 * MADV_POPULATE_WRITE faults them in as before).
 */
int ioeng_buf_prefault(void *buf, size_t len)
{
    long pg = sysconf(_SC_PAGESIZE);
    uintptr_t a = (uintptr_t)buf, start, end;

    if (pg <= 0 || !buf)
        return -EINVAL;
    start = (a + (uintptr_t)pg - 1) & ~((uintptr_t)pg - 1);
    end = (a + len) & ~((uintptr_t)pg - 1);
    if (end > start && madvise((void *)start, end - start, MADV_POPULATE_WRITE) != 0)
        return -errno;
    return 0;
}

/* ---- file / block device ---- */

struct dev_file {
    struct dev base; /* first: the ops see a struct dev */
    int fd;
};

static struct dev_file *dev_file_of(struct dev *d)
{
    return (struct dev_file *)d;
}

static ssize_t dev_file_pread(struct dev *d, void *buf, size_t len, uint64_t off)
{
    ssize_t n;
    do
        n = pread(dev_file_of(d)->fd, buf, len, (off_t)off);
    while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : n;
}

static ssize_t dev_file_pwrite(struct dev *d, const void *buf, size_t len, uint64_t off)
{
    ssize_t n;
    do
        n = pwrite(dev_file_of(d)->fd, buf, len, (off_t)off);
    while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : n;
}

static int dev_file_flush(struct dev *d)
{
    return fdatasync(dev_file_of(d)->fd) < 0 ? -errno : 0;
}

static int dev_file_fd(struct dev *d)
{
    return dev_file_of(d)->fd;
}

static void dev_file_destroy(struct dev *d)
{
    struct dev_file *f = dev_file_of(d);
    close(f->fd);
    free(f);
}

static const struct dev_ops dev_file_ops = {
    .version = 1,
    .name = "file",
    .pread = dev_file_pread,
    .pwrite = dev_file_pwrite,
    .flush = dev_file_flush,
    .fd = dev_file_fd,
    .destroy = dev_file_destroy,
};

/*
 * Direct-IO alignment of a regular file: what the filesystem reports through statx
 * (STATX_DIOALIGN, Linux 6.1+), else 4096, which every filesystem accepts.
 */
static uint32_t dev_file_align(int fd)
{
    uint32_t align = 4096;
#ifdef STATX_DIOALIGN
    struct statx stx;
    if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 &&
        (stx.stx_mask & STATX_DIOALIGN) && stx.stx_dio_offset_align != 0)
        align = CMN_MAX(stx.stx_dio_offset_align, stx.stx_dio_mem_align);
#endif
    return CMN_MAX(align, 512u);
}

/* Size a block device and read its logical sector size. @return 0 or -errno (logged). */
static int dev_blk_geometry(const struct dev_conf *conf, int fd, uint64_t *size, uint32_t *align)
{
    uint64_t bytes;
    int ssz;

    if (ioctl(fd, BLKGETSIZE64, &bytes) < 0 || ioctl(fd, BLKSSZGET, &ssz) < 0) {
        int rc = -errno;
        TLOG_E("dev: %s: cannot read the block device geometry: %s", conf->path, strerror(-rc));
        return rc;
    }
    *align = (uint32_t)CMN_MAX(ssz, 512);
    /* A device cannot grow: a larger size asked for is the whole device, said once. */
    if (conf->size > bytes)
        TLOG_W("dev: %s: the size asked for (%llu bytes) is larger than the device: using "
               "all of it (%llu bytes)",
               conf->path, (unsigned long long)conf->size, (unsigned long long)bytes);
    *size = conf->size ? CMN_MIN(conf->size, bytes) : bytes;
    return 0;
}

/*
 * Bring a regular file to conf->size. fallocate reserves the blocks now, so the cache
 * cannot hit ENOSPC halfway through a write later; filesystems without it get a sparse
 * ftruncate instead (logged), which is still correct, only less safe against a full disk.
 */
static int dev_file_size(const struct dev_conf *conf, int fd, uint64_t *size)
{
    struct stat st;
    int rc;

    if (fstat(fd, &st) < 0) {
        rc = -errno;
        TLOG_E("dev: %s: fstat: %s", conf->path, strerror(-rc));
        return rc;
    }
    if (conf->size == 0) {
        if (st.st_size == 0) {
            TLOG_E("dev: %s: the file is empty and no size was given", conf->path);
            return -EINVAL;
        }
        *size = (uint64_t)st.st_size;
        return 0;
    }
    if ((uint64_t)st.st_size < conf->size) {
        if (fallocate(fd, 0, 0, (off_t)conf->size) < 0) {
            rc = -errno;
            if (rc != -EOPNOTSUPP) {
                TLOG_E("dev: %s: cannot allocate %llu bytes: %s", conf->path,
                       (unsigned long long)conf->size, strerror(-rc));
                return rc;
            }
            TLOG_I("dev: %s: no fallocate on this filesystem, the file is sparse", conf->path);
            if (ftruncate(fd, (off_t)conf->size) < 0) {
                rc = -errno;
                TLOG_E("dev: %s: cannot extend to %llu bytes: %s", conf->path,
                       (unsigned long long)conf->size, strerror(-rc));
                return rc;
            }
        }
    }
    /* A larger existing file is left alone: only the first conf->size bytes are used. */
    *size = conf->size;
    return 0;
}

/* Log why open(2) failed in words an operator can act on. @return -errno. */
static int dev_open_error(const struct dev_conf *conf, bool creating, int err)
{
    switch (err) {
    case EINVAL:
        if (conf->direct_io) {
            TLOG_E("dev: %s: the filesystem does not support O_DIRECT; put the cache on "
                   "another filesystem or turn direct IO off",
                   conf->path);
            break;
        }
        /* fallthrough */
    default:
        TLOG_E("dev: %s: cannot open: %s", conf->path, strerror(err));
        break;
    case EACCES:
    case EPERM:
    case EROFS:
        TLOG_E("dev: %s: not writable: %s", conf->path, strerror(err));
        break;
    case ENOENT:
        if (creating)
            TLOG_E("dev: %s: cannot create: the parent directory does not exist", conf->path);
        else
            TLOG_E("dev: %s: does not exist (and creating it was not asked for)", conf->path);
        break;
    }
    return -err;
}

int dev_open(const struct dev_conf *conf, struct dev **out)
{
    struct dev_file *f;
    struct stat st;
    bool exists, created = false, blk = false;
    int flags = O_RDWR | O_CLOEXEC | (conf && conf->direct_io ? O_DIRECT : 0);
    uint64_t size = 0;
    uint32_t align = 4096;
    int fd, rc;

    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!conf || !conf->path || !*conf->path) {
        TLOG_E("dev: no cache device path given");
        return -EINVAL;
    }
    exists = stat(conf->path, &st) == 0;
    if (exists && S_ISDIR(st.st_mode)) {
        TLOG_E("dev: %s: is a directory; give a file or a block device", conf->path);
        return -EISDIR;
    }
    if (exists && !S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
        TLOG_E("dev: %s: neither a regular file nor a block device", conf->path);
        return -EINVAL;
    }
    blk = exists && S_ISBLK(st.st_mode);
    if (!exists && conf->create) {
        if (conf->size == 0) {
            TLOG_E("dev: %s: does not exist and no size was given to create it", conf->path);
            return -EINVAL;
        }
        flags |= O_CREAT | O_EXCL;
    }
    fd = open(conf->path, flags, 0600);
    if (fd < 0)
        return dev_open_error(conf, (flags & O_CREAT) != 0, errno);
    created = (flags & O_CREAT) != 0;

    if (blk) {
        rc = dev_blk_geometry(conf, fd, &size, &align);
    } else {
        align = dev_file_align(fd);
        rc = dev_file_size(conf, fd, &size);
    }
    if (rc < 0)
        goto out_close;
    if (!CMN_IS_POW2(align) || align > IOENG_BUF_ALIGN) {
        TLOG_E("dev: %s: unsupported block size %u (at most %u)", conf->path, align,
               IOENG_BUF_ALIGN);
        rc = -EINVAL;
        goto out_close;
    }
    size -= size % align;
    if (size == 0) {
        TLOG_E("dev: %s: smaller than one %u-byte block", conf->path, align);
        rc = -EINVAL;
        goto out_close;
    }
    f = calloc(1, sizeof(*f));
    if (!f) {
        rc = -ENOMEM;
        goto out_close;
    }
    f->fd = fd;
    f->base.ops = &dev_file_ops;
    f->base.size = size;
    f->base.align = align;
    f->base.direct_io = conf->direct_io;
    f->base.is_blockdev = blk;
    TLOG_D("dev: %s: %s, %llu bytes, block %u, %s", conf->path, blk ? "block device" : "file",
           (unsigned long long)size, align, conf->direct_io ? "O_DIRECT" : "buffered");
    *out = &f->base;
    return 0;

out_close:
    close(fd);
    if (created)
        unlink(conf->path); /* do not leave a half-made cache file behind */
    return rc;
}

void dev_close(struct dev *d)
{
    if (d)
        d->ops->destroy(d);
}

/* The wrappers reject what O_DIRECT would reject, so buffered and direct devices agree. */
bool dev_range_ok(const struct dev *d, const void *buf, size_t len, uint64_t off)
{
    uint64_t a = d->align;
    return len > 0 && len % a == 0 && off % a == 0 && (uintptr_t)buf % a == 0 && off <= d->size &&
           len <= d->size - off;
}

ssize_t dev_pread(struct dev *d, void *buf, size_t len, uint64_t off)
{
    if (!d || !dev_range_ok(d, buf, len, off))
        return -EINVAL;
    return d->ops->pread(d, buf, len, off);
}

ssize_t dev_pwrite(struct dev *d, const void *buf, size_t len, uint64_t off)
{
    if (!d || !dev_range_ok(d, buf, len, off))
        return -EINVAL;
    return d->ops->pwrite(d, buf, len, off);
}

int dev_flush(struct dev *d)
{
    if (!d)
        return -EINVAL;
    return d->ops->flush ? d->ops->flush(d) : 0;
}
