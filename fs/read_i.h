/* SPDX-License-Identifier: Apache-2.0 */
/*
 * read_i.h: what the read path shares between its files, bottom up:
 *   handle.c   - an open file's pinned version: references, block keys, and the fetcher
 *                that GETs one block of it (fs_fetcher)
 *   prefetch.c - the access pattern of a handle and the blocks fetched ahead of it
 *   read.c     - FUSE reads and opens on top of both (fs_i.h: fs_read_*)
 * Each file calls only the ones above it in this list, never back.
 */
#ifndef TIERFS_FS_READ_I_H
#define TIERFS_FS_READ_I_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "fs/fs_i.h"
#include "hybridcache/hybridcache.h"

struct fs_handle {
    int refs; /* atomic: the open, in-flight reads, GETs, prefetches */
    struct fs *fs;
    struct fs_inode *ino; /* pinned by an "opens" reference */
    const char *key;      /* ino->key, immutable */
    char etag[OBJSTORE_ETAG_MAX];
    uint64_t size;
    bool page_cache;            /* counted in ino->cache_opens until release */
    pthread_mutex_t ra_lock;    /* protects the ra_ fields */
    uint64_t ra_next;           /* end of the current run (highest read end in it) */
    uint64_t ra_run_bytes;      /* bytes read in the run */
    unsigned ra_run_reads;      /* reads in the run (0: no run yet) */
    uint64_t ra_window;         /* prefetch window in bytes; 0: not prefetching */
    uint64_t ra_grow_at;        /* the window doubles when ra_next reaches this */
    uint64_t ra_issued;         /* blocks below this were handed to the prefetcher (run) */
    uint64_t ra_gen;            /* runs so far (and +1 at release): older blocks not held */
    uint64_t ra_sub_start;      /* where the current stretch (contiguous reads) began */
    uint64_t ra_sub_avg;        /* moving average of finished stretches' lengths; 0: none */
    struct fs_open_link open;   /* on the FS_OPEN_FILE list */
    struct fs_pf_held *ra_held; /* prefetched blocks kept for the reader, by block % size */
    uint64_t ra_held_mask;      /* ring size - 1 (a power of two) */
    uint64_t ra_held_low;       /* no block below this is held */
};

/*
 * A prefetched block the handle keeps a reference to until its reader has passed it:
 * the memory tier may evict a low-priority block before the reader gets there (the
 * policy sees many of them), and a reader must never pay a second GET for it.
 */
struct fs_pf_held {
    struct hc_entry *e;
    uint64_t blk;
    bool used; /* a read took it */
};

/* What the fetcher needs to GET one block (valid until the fetcher has been called). */
struct fs_blk {
    struct fs_handle *fh;
    uint64_t blk;
};

enum fs_read_kind {
    FS_RD_LONE,   /* does not continue the handle's run: a random read */
    FS_RD_RUN,    /* continues it, not yet prefetching */
    FS_RD_STREAM, /* continues a run that prefetches: a sequential reader */
};

/* ---- handle.c ---- */

/* Take / drop a reference to @fh; the last put unpins the version and frees it. */
void fs_handle_get(struct fs_handle *fh);
void fs_handle_put(struct fs_handle *fh);
/* The cache's fetcher for one block: @arg is a struct fs_blk; GETs the block's range with
 * If-Match into @buf and completes @ctx (with -errno on failure). */
void fs_fetcher(struct hc_flight *ctx, void *buf, size_t cap, void *arg);
/* The fleet tier's identity of block @blk of @fh (the cache identity, then the block key)
 * into @buf. @return its length, 0 when it does not fit. */
size_t fs_fleet_id(const struct fs *fs, const struct fs_handle *fh, uint64_t blk, uint8_t *buf,
                   size_t cap);
/* Check a finished GET of @want bytes for @fh (failures logged once per burst; ESTALE
 * invalidates the inode). @return 0 when every byte came, else -errno. */
int fs_get_check(struct fs_handle *fh, const struct objstore_req *req, size_t want);

/* ---- prefetch.c ---- */

/* How a read at @off relates to @fh's sequential run (takes fh->ra_lock). */
enum fs_read_kind fs_read_kind(struct fs *fs, struct fs_handle *fh, uint64_t off);
/* Follow @fh's access pattern after a read of [@off, @end); while it is sequential keep
 * the window in flight. */
void fs_prefetch(struct fs *fs, struct fs_handle *fh, uint64_t off, uint64_t end);
/* A held prefetched block for a read: @return a new reference, or NULL. */
struct hc_entry *fs_pf_take(struct fs_handle *fh, uint64_t blk);
/* Drop every held block (a seek, or the release). Under fh->ra_lock. */
void fs_pf_drop_all(struct fs *fs, struct fs_handle *fh);

#endif
