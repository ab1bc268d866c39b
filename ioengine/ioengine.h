/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ioengine.h: aligned asynchronous reads and writes against a cache device.
 *
 * DESIGN
 * A device (`struct dev`) is a single file (created and fallocate'd to its size when
 * absent) or a raw block device (size from BLKGETSIZE64), opened with O_DIRECT unless
 * told otherwise. An IO engine (`struct ioeng`) executes requests against a device
 * asynchronously and calls a completion callback:
 *   - "psync": a thread pool running pread/pwrite;
 *   - "uring": liburing with a configurable queue depth; one completion thread that
 *     sleeps in io_uring_wait_cqe when idle; short reads/writes are resubmitted for the
 *     rest, never reported as success.
 * Engines are `const struct ioeng_ops` tables registered by name; ioeng_create("uring")
 * falls back to psync with one log line where io_uring is unavailable.
 * Callers go through ioeng_submit()/dev_* which check alignment (offset, length and
 * buffer address multiples of dev_align()) and keep stats.
 */
#ifndef TIERFS_IOENGINE_H
#define TIERFS_IOENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct dev;
struct ioeng;

/* ---- aligned buffers: every direct-IO buffer comes from here ---- */

#define IOENG_BUF_ALIGN 4096
/* Allocate @size bytes aligned to IOENG_BUF_ALIGN. @return buffer or NULL. Free with
 * ioeng_buf_free. */
void *ioeng_buf_alloc(size_t size);
/* Free a buffer of ioeng_buf_alloc (NULL: nothing). Thread-safe. */
void ioeng_buf_free(void *buf);
/* Is @buf on the huge-page slots (a power of two from 64 KiB to 2 MiB, or a multiple of
 * 2 MiB, while the reservation lasts: hugebuf.c)? For tests and stats. */
bool ioeng_buf_huge(const void *buf);
/* Fault in @buf's pages with one call (for a large fresh buffer about to be filled).
 * @return 0, or -errno (-EINVAL: a kernel before 5.14); callers may ignore it. */
int ioeng_buf_prefault(void *buf, size_t len);

/* ---- devices ---- */

struct dev_conf {
    const char *path; /* file or block device */
    uint64_t size;    /* file: size to create/extend to (0 = use the existing size);
                         block device: 0 = whole device, else at most this */
    bool direct_io;   /* O_DIRECT (default true in callers) */
    bool create;      /* create the file when absent */
};

/* Device operations; a wrapper device (fault injection) implements the same table. */
struct dev_ops {
    int version;
    const char *name;
    /* Synchronous positioned IO. @return bytes transferred or -errno. */
    ssize_t (*pread)(struct dev *d, void *buf, size_t len, uint64_t off);
    ssize_t (*pwrite)(struct dev *d, const void *buf, size_t len, uint64_t off);
    int (*flush)(struct dev *d); /* fdatasync */
    int (*fd)(struct dev *d);    /* the fd engines use, or -1 to force the sync path */
    void (*destroy)(struct dev *d);
};

struct dev {
    const struct dev_ops *ops;
    uint64_t size;  /* usable bytes (multiple of align) */
    uint32_t align; /* logical block size required for offsets/lengths (>= 512) */
    bool direct_io;
    bool is_blockdev;
};

/* Open or create a device. @return 0 and *out, or -errno with a log line naming the cause. */
int dev_open(const struct dev_conf *conf, struct dev **out);
void dev_close(struct dev *d); /* NULL is fine */
ssize_t dev_pread(struct dev *d, void *buf, size_t len, uint64_t off);
ssize_t dev_pwrite(struct dev *d, const void *buf, size_t len, uint64_t off);
int dev_flush(struct dev *d);
static inline uint64_t dev_size(const struct dev *d)
{
    return d->size;
}
static inline uint32_t dev_align(const struct dev *d)
{
    return d->align;
}

/* Fault-injecting wrapper for tests: wraps @inner (ownership passes). */
enum dev_fault_kind {
    DEV_FAULT_NONE = 0,
    DEV_FAULT_EIO_READ,
    DEV_FAULT_EIO_WRITE,
    DEV_FAULT_ENOSPC_WRITE,
    DEV_FAULT_FLIP_READ,  /* flip a byte in data read back */
    DEV_FAULT_SHORT_READ, /* return fewer bytes than asked (engines must finish or fail) */
    DEV_FAULT_SHORT_WRITE,
};
struct dev_fault_conf {
    enum dev_fault_kind kind;
    unsigned countdown; /* inject on the Nth matching call from now (1 = next) */
    unsigned
        repeat; /* after the first, inject this many more times (0 = once; UINT32_MAX = always) */
};
int dev_fault_wrap(struct dev *inner, struct dev **out);
void dev_fault_set(struct dev *fault_dev, const struct dev_fault_conf *conf); /* thread safe */

/* ---- IO engines ---- */

enum ioeng_op { IOENG_READ = 0, IOENG_WRITE = 1 };

struct ioeng_req;
typedef void (*ioeng_done_fn)(struct ioeng_req *req);

struct ioeng_req {
    enum ioeng_op op;
    void *buf;          /* aligned */
    size_t len;         /* multiple of dev_align() */
    uint64_t off;       /* multiple of dev_align() */
    ioeng_done_fn done; /* called once, on an engine thread */
    void *arg;
    ssize_t result;              /* out: len on success, or -errno (never a short count) */
    size_t priv_done;            /* private: bytes done so far */
    struct ioeng_req *priv_next; /* private */
};

struct ioeng_conf {
    unsigned queue_depth; /* uring: SQ entries (0 = 64); psync: threads (0 = 4) */
    bool register_files;  /* uring: register the device fd */
};

struct ioeng_stats {
    uint64_t reads, writes, bytes_read, bytes_written;
    uint64_t errors, short_resubmits;
    uint32_t inflight;
};

struct ioeng_ops {
    int version;
    const char *name;
    /* @return 0 and *out, or -errno (-ENOSYS when the engine cannot run here). */
    int (*create)(struct dev *d, const struct ioeng_conf *conf, struct ioeng **out);
    int (*submit)(struct ioeng *e, struct ioeng_req *req);
    void (*destroy)(struct ioeng *e); /* waits for in-flight requests */
};

struct ioeng {
    const struct ioeng_ops *ops;
    struct dev *dev;
    struct ioeng_stats stats; /* updated atomically by the wrappers */
};

/*
 * Create engine @name ("psync" or "uring") on @d (not owned). "uring" falls back to
 * psync with one log line when io_uring cannot be set up. @return 0 / -errno
 * (-EINVAL naming an unknown engine).
 */
int ioeng_create(const char *name, struct dev *d, const struct ioeng_conf *conf,
                 struct ioeng **out);
/* Names of registered engines, NULL-terminated. */
const char *const *ioeng_names(void);
/* Submit; alignment is checked here (-EINVAL). @return 0 (done will run) or -errno. */
int ioeng_submit(struct ioeng *e, struct ioeng_req *req);
/* Submit and wait. @return len or -errno. */
ssize_t ioeng_rw_sync(struct ioeng *e, enum ioeng_op op, void *buf, size_t len, uint64_t off);
const char *ioeng_name(const struct ioeng *e);
void ioeng_get_stats(struct ioeng *e, struct ioeng_stats *st);
void ioeng_destroy(struct ioeng *e); /* NULL is fine */

#endif
