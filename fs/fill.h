/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fill.h: a queue of bytes to put into the kernel's page cache, and the one thread that
 * puts them there (with FUSE, fuse_lowlevel_notify_store).
 *
 * Why a thread of its own: storing a page takes its page lock, and the pages of a read in
 * flight stay locked until the daemon answers it. A FUSE worker that stored pages itself
 * could wait on a read that only another busy worker can answer; this thread never holds
 * anything a read needs, and no worker ever waits for it (a full queue drops the job).
 */
#ifndef TIERFS_FS_FILL_H
#define TIERFS_FS_FILL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct fs_fill_job;

/* Where the bytes go: @return 0 or -errno (the job is done with either way). The sink
 * may also refuse a job that went stale while queued. */
struct fs_fill_sink {
    int (*store)(void *ctx, const struct fs_fill_job *j);
    void *ctx;
};

/* One range of one file. @release(@arg) runs exactly once, after the store or instead of
 * it; it frees whatever keeps @data alive. */
struct fs_fill_job {
    uint64_t nodeid;
    uint64_t off;
    const void *data;
    size_t len;
    void (*release)(void *arg);
    void *arg;
};

struct fs_fill_stats {
    uint64_t stored, stored_bytes; /* jobs the sink took, and their bytes */
    uint64_t dropped;              /* jobs refused because the queue was full */
    uint64_t duplicates;           /* jobs not queued: a queued or running job covers them */
    uint64_t failed;               /* jobs the sink refused (-errno) */
};

struct fs_fill;

/* Start the thread with room for @cap queued jobs holding at most @max_bytes of data
 * (queued or being stored). @return 0 or -errno. */
int fs_fill_create(unsigned cap, size_t max_bytes, const struct fs_fill_sink *sink,
                   struct fs_fill **out);
/*
 * Queue @j without waiting. @return true when queued (release runs later), false when a
 * job queued or being stored already covers its range (counted as a duplicate: the bytes
 * are on their way), or the queue is full (jobs or bytes) or stopping (counted as
 * dropped); on false the caller still owns @j's data.
 */
bool fs_fill_submit(struct fs_fill *f, const struct fs_fill_job *j);
/* Stop the thread: the job being stored finishes, queued ones are released unstored.
 * NULL is fine. */
void fs_fill_destroy(struct fs_fill *f);
void fs_fill_get_stats(struct fs_fill *f, struct fs_fill_stats *st);

#endif
