/* SPDX-License-Identifier: Apache-2.0 */
/*
 * read_i.h: what the read path shares between its files, bottom up:
 *   handle.c   - an open file's pinned version: references, block keys, and the fetcher
 *                that GETs one block (or piece) of it (fs_fetcher)
 *   group.c    - consecutive blocks or pieces read with one ranged GET (fs_grp)
 *   dense.c    - a random reader that touches many blocks of a small file gets the rest
 *                of it fetched in the background
 *   prefetch.c - the access pattern of a handle, the blocks fetched ahead of it, and when
 *                its reads take pieces of blocks instead (fs_read_kind)
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

/* Files smaller than this (8 MiB, and 8 blocks of @bs) are read whole at little cost: they
 * never take pieces (prefetch.c), nor count as read footer first (page_cache=auto). */
#define FS_PIECE_FILE_MIN(bs) CMN_MAX(8ull << 20, 8ull * (bs))

struct fs_handle {
    int refs; /* atomic: the open, in-flight reads, GETs, prefetches */
    struct fs *fs;
    struct fs_inode *ino;         /* pinned by an "opens" reference */
    const char *key;              /* ino->key, immutable */
    char etag[OBJSTORE_ETAG_MAX]; /* the version read: If-Match of its GETs */
    char ctag[OBJSTORE_ETAG_MAX]; /* what its blocks are cached by: etag, or the provisional
                                     tag of a version this mount wrote (fs_ns_pin) */
    struct fs_ctag *ctag_used;    /* with the latter, released with the handle */
    uint64_t size;
    bool page_cache;         /* counted in ino->cache_opens until release */
    bool own_reads;          /* FS_DIRECT_OWN or _FOOTER: each read is the program's own (no
                                kernel read-ahead): the footer and backfill rules apply */
    bool columnar;           /* FS_DIRECT_FOOTER: a columnar reader's, whose first reads take
                                pieces wherever they are */
    bool read_seen;          /* atomic: a read came (page_cache=auto looks at the first) */
    bool odirect;            /* atomic: a read came with O_DIRECT: the kernel keeps none of
                                its bytes, though the handle is a page-cache one */
    pthread_mutex_t ra_lock; /* protects the ra_ fields */
    uint64_t ra_next;        /* end of the current run (highest read end in it) */
    uint64_t ra_run_bytes;   /* bytes read in the run */
    unsigned ra_run_reads;   /* reads in the run (0: no run yet) */
    uint64_t ra_window;      /* prefetch window in bytes; 0: not prefetching */
    uint64_t ra_grow_at;     /* the window doubles when ra_next reaches this */
    uint64_t ra_issued;      /* blocks below this were handed to the prefetcher (run) */
    uint64_t ra_gen;         /* runs so far (and +1 at release): older blocks not held */
    uint64_t ra_sub_start;   /* where the current stretch (contiguous reads) began */
    uint64_t ra_sub_avg;     /* moving average of finished stretches' lengths; 0: none */
    uint64_t ra_skips;       /* forward skips within a run so far: its reads take pieces */
    uint64_t ra_gap_lo;      /* where the last forward jump began; 0: none (BACKFILL) */
    uint64_t ra_bf_next;     /* the end of the last backfill read; 0: none */
    bool ra_refilled;        /* it came back for bytes it jumped over: a scan */
    uint64_t ra_piece_end;   /* pieces below this byte were prefetched for the stretch */
    bool ra_mid;             /* the first read was past the first block (not a scan's) */
    unsigned ra_sub_reads;   /* reads in the current stretch */
    uint64_t ra_sub_bytes;   /* bytes they asked for */
    bool ra_sub_gappy;
    struct fs_dense *dense;
    /* dense.c: the random reads counted; NULL until one */ /* a read of the stretch started
                                                               past its end (not a skip) */
    struct fs_open_link open;                               /* on the FS_OPEN_FILE list */
    struct fs_pf_held *ra_held; /* prefetched blocks kept for the reader, by block % size */
    uint64_t ra_held_mask;      /* ring size - 1 (a power of two) */
    uint64_t ra_held_low;       /* no block below this is held */
};

/* Does the kernel's page cache keep what @fh reads? (Not its O_DIRECT reads.) */
static inline bool fs_fh_kept(const struct fs_handle *fh)
{
    return fh->page_cache && !__atomic_load_n(&fh->odirect, __ATOMIC_RELAXED);
}

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

/* What the fetcher needs to GET one block, or one piece (valid until the fetcher has been
 * called). */
struct fs_blk {
    struct fs_handle *fh;
    uint64_t blk;  /* the block's index, or the piece's with unit */
    uint32_t unit; /* 0: a block; else the piece size (fs/piece.c) */
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
/* The cache's fetcher for one block or piece: @arg is a struct fs_blk; GETs its range with
 * If-Match into @buf and completes @ctx (with -errno on failure). */
void fs_fetcher(struct hc_flight *ctx, void *buf, size_t cap, void *arg);
struct hc_fleet_req;
/* Complete the flight @ctx of a block fetched from S3 with @res bytes (or -errno). With
 * the fleet request @fr (NULL: no fleet lookup was made), its bytes are stored there from
 * the cache entry they became, or its lease is released on a failure. */
void fs_fleet_complete(struct fs *fs, struct hc_fleet_req *fr, struct hc_flight *ctx, ssize_t res);
/* The fleet tier's identity of block @blk of @fh (the cache identity, then the block key)
 * into @buf. @return its length, 0 when it does not fit. */
size_t fs_fleet_id(const struct fs *fs, const struct fs_handle *fh, uint64_t blk, uint8_t *buf,
                   size_t cap);
/* Check a finished GET of @want bytes for @fh (failures logged once per burst; ESTALE
 * invalidates the inode). @return 0 when every byte came, else -errno. */
int fs_get_check(struct fs_handle *fh, const struct objstore_req *req, size_t want);

/* The cache key of piece @piece of @fh's version (fs_piecekey_build with the mount's
 * partial_grain). @return its length, 0 when it does not fit. */
size_t fs_piece_key(const struct fs *fs, const struct fs_handle *fh, uint64_t piece, void *buf,
                    size_t cap);

/* Whether a piece of block @blk of @fh may be cached (memory, disk index or in flight): a
 * whole fetch of the block (fs_fetcher) then copies the pieces it finds in memory and GETs
 * only the rest. Always false for a file no read took pieces of since the mount (a scan
 * of it pays no lookup per piece). */
bool fs_pieces_cached(struct fs *fs, const struct fs_handle *fh, uint64_t blk);

/* ---- group.c ---- */

struct fs_grp;
/* A unit's fetch is over (@e a reference the callee puts, NULL on error). */
typedef void (*fs_grp_done_fn)(struct fs_handle *fh, uint64_t gen, uint64_t idx, int result,
                               struct hc_entry *e, enum hc_source src, void *arg);
/* A group for up to @cap units of @unit bytes (the block size, or the piece size) from
 * unit @first of @fh; @gen is passed to the units' done. @return NULL when out of memory. */
struct fs_grp *fs_grp_new(struct fs_handle *fh, uint64_t first, unsigned cap, uint32_t unit,
                          uint64_t gen);
/* hc_fetch the next unit (fs_grp_next) of @g under @key with @flags; @done runs when its
 * fetch is over. @return 1: it joins the group's GET; 0: the cache took it but it cannot
 * join (a hit, a flight that waits for memory or already runs: the group is closed, the
 * caller must submit it); -errno: the cache refused it (-EEXIST with IF_ABSENT), done will
 * not run and the group is unchanged. */
int fs_grp_add(struct fs_grp *g, const void *key, size_t klen, unsigned flags, fs_grp_done_fn done,
               void *done_arg);
unsigned fs_grp_count(const struct fs_grp *g);
bool fs_grp_full(const struct fs_grp *g);
uint64_t fs_grp_next(const struct fs_grp *g); /* the unit fs_grp_add adds next */
/* An empty group starts one unit later (the next unit was cached). */
void fs_grp_skip(struct fs_grp *g);
/* Close @g and start the GETs of its units (through the fleet tier for blocks when there
 * is one); the issuer's reference goes. */
void fs_grp_submit(struct fs_grp *g);

/* ---- dense.c ---- */

/* A random read at @off of @fh (a seek after a stretch of one read; prefetch.c): count its
 * block; when the reads touched many distinct blocks of a file small enough, fetch the
 * rest of it in the background. Takes fh->ra_lock. */
void fs_dense_read(struct fs *fs, struct fs_handle *fh, uint64_t off);

/* ---- prefetch.c ---- */

/* How a read at @off relates to @fh's sequential run (takes fh->ra_lock); *@pieces: its
 * blocks that are not cached whole are read as pieces (fs_piece_key). */
enum fs_read_kind fs_read_kind(struct fs *fs, struct fs_handle *fh, uint64_t off, bool *pieces);
/* Follow @fh's access pattern after a read of [@off, @end) that left the reader with
 * [@off, @reach) (the page-cache fill may add to it); while it is sequential keep
 * the window in flight. */
void fs_prefetch(struct fs *fs, struct fs_handle *fh, uint64_t off, uint64_t end, uint64_t reach);
/* Blocks [@first, @last] of @fh were asked for by a FUSE read (fs_read). */
void fs_pf_note_read(struct fs *fs, const struct fs_handle *fh, uint64_t first, uint64_t last);
/* A held prefetched block for a read: @return a new reference, or NULL. */
struct hc_entry *fs_pf_take(struct fs_handle *fh, uint64_t blk);
/* Drop every held block (a seek, or the release). Under fh->ra_lock. */
void fs_pf_drop_all(struct fs *fs, struct fs_handle *fh);

#endif
