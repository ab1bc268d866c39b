/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fs_i.h: private interfaces between the parts of the tierfs daemon:
 *   opts.c  - the one fuse_opt table, validation, --help (fs_opts_*)
 *   ns.c    - the namespace: inode table, lookups, attributes, pins (fs_ns_*)
 *   listing.c - directory listings: snapshots of ListObjectsV2 pages (fs_listing_*)
 *   read.c  - open files, block reads through the hybrid cache (fs_read_*; with handle.c
 *             and prefetch.c below it, read_i.h)
 *   ops.c   - the FUSE low-level operations (fs_ops)
 *   main.c  - startup checks, daemonizing, the session loop
 *
 * DESIGN
 * The namespace is an S3 key space seen through "/" delimiter listings. A directory
 * inode stands for a key prefix ending in "/" (the root for the mount prefix), a file
 * inode for one key. Inodes live in two hash tables under one mutex (fs->ns->lock): by inode
 * number, and by (parent inode, name). Inode numbers are never reused within a mount,
 * so the generation is constant. An inode the kernel forgot stays on an idle list while
 * its metadata is fresh, so caching never depends on the kernel's inode cache.
 * Listings are immutable refcounted snapshots that readdir hands out; lookups answer
 * from a fresh listing, from an inode whose attributes are fresh, from the negative
 * cache, or from S3 (HEAD key + LIST key/ in parallel).
 * File data never passes through fs->ns->lock: an open handle pins key, ETag and size, and
 * reads go to the hybrid cache, whose fetcher issues ranged GETs with If-Match.
 */
#ifndef TIERFS_FS_I_H
#define TIERFS_FS_I_H

#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 314 /* libfuse 3.14: fuse_loop_cfg_* */
#endif
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "common/list.h"
#include "common/log.h"
#include "fs/fsutil.h"
#include "objstore/objstore.h"

struct hc_cache;
struct hc_fleet;

/*
 * The cache tag of a version this mount wrote (write.c): its blocks went into the cache as
 * they were written, under a provisional tag (the ETag comes with the completion); a
 * background job then copies them to the ETag's keys. Until it has, handles opened on
 * that version key their blocks by @tag. Owned by the job; fields by fs->ns->lock.
 */
struct fs_ctag {
    char tag[48];
    char etag[OBJSTORE_ETAG_MAX]; /* the version it is for */
    unsigned users;               /* handles keying by tag */
    bool switched;                /* the ETag's keys are filled: new handles use them */
};
struct fs_metrics;
struct fs_fill;
struct fs_ns;
struct fs_handles;
struct fs_fill_state;
struct fs_fill_stats;

/* One entry of a directory listing. */
struct fs_dirent {
    char *name; /* points into the listing's storage */
    bool is_dir;
    uint64_t size;
    int64_t mtime;
    char *etag; /* files: points into storage; dirs: "" */
};

/* An immutable snapshot of one directory, sorted by name, dirs shadowing files. */
struct fs_listing {
    int refs;           /* atomic */
    uint64_t loaded_ms; /* cmn_now_ms() when the first page was requested */
    size_t bytes;       /* memory it takes, roughly (the idle list's bound) */
    size_t n;
    struct fs_dirent *ents;
};

struct fs_neg {
    struct fs_neg *next;
    uint64_t expires_ms;
    char name[];
};

struct fs_inode {
    struct fs_inode *ino_next;  /* chain in fs->ns->ino_tab; protected by fs->ns->lock */
    struct fs_inode *name_next; /* chain in fs->ns->name_tab; protected by fs->ns->lock */
    uint64_t ino;
    uint64_t parent; /* parent inode number (root: itself) */
    char *name;      /* component ("" for the root) */
    char *key;       /* file: S3 key; dir: prefix ending in "/" ("" at the top) */
    bool is_dir;
    bool name_hashed; /* still reachable by (parent, name) */
    bool writing;     /* by fs->ns->lock: a write handle is creating it (write.c); not in S3
                         yet, its size the writer's */
    bool local;       /* by fs->ns->lock: made on this mount and maybe not in S3's listing
                         (a file being written, a directory from mkdir): readdir adds it */
    bool had_pieces;  /* atomic: a read or prefetch asked for pieces of it (read.c, prefetch.c):
                         only then are whole-block fetches checked for pieces to copy */
    /* protected by fs->ns->lock */
    uint64_t nlookup; /* kernel references (lookup counts) */
    unsigned opens;   /* open handles and readdir handles */
    uint64_t size;
    int64_t mtime;
    char etag[OBJSTORE_ETAG_MAX];
    uint64_t attr_ms;                  /* when size/mtime/etag were last confirmed */
    char open_etag[OBJSTORE_ETAG_MAX]; /* ETag at the last open: keep_cache if unchanged */
    unsigned cache_opens;              /* open handles reading open_etag's version through the
                                          kernel's page cache (fs_ns_pin/fs_ns_unpin) */
    uint64_t tail_tag;                 /* page_cache=auto: hash of the ETag of a version a
                                          handle read its tail of first; 0: none */
    struct fs_ctag *ctag;              /* this mount wrote the current version and its blocks
                                          are still cached under a provisional tag (write.c) */
    /* directories only, protected by fs->ns->lock */
    struct fs_listing *listing; /* the last snapshot, or NULL */
    bool loading;               /* a listing load is in flight (others wait on fs->cond) */
    struct fs_neg *neg;         /* names known missing, newest first */
    unsigned n_neg;
    /* the idle list (ns.c): unreferenced inodes kept while their metadata is fresh;
     * protected by fs->ns->lock */
    struct cmn_link idle_link;
    bool idle;
    size_t idle_bytes; /* what it was charged when it went idle */
};

/* An entry of one of the lists of open handles (handle.c), under their lock. */
struct fs_open_link {
    struct cmn_link link;
    void *owner; /* the handle */
};

/* What the daemon counts itself (fs/metrics.c exports them; docs/observability.md), with
 * __atomic_* (relaxed) by whoever owns the event. */
struct fs_counters {
    uint64_t open_files;            /* ops.c: open file handles */
    uint64_t prefetch_issued;       /* prefetch.c: blocks prefetch handed to the cache */
    uint64_t prefetch_used;         /* prefetch.c: prefetched blocks a read then found */
    uint64_t prefetch_wasted;       /* prefetch.c: prefetched blocks dropped unread */
    uint64_t prefetch_wasted_bytes; /* prefetch.c: their bytes */
    uint64_t read_skips;            /* prefetch.c: reads that skipped forward within a run */
    uint64_t prefetch_disk;         /* prefetch.c: of those issued, read ahead from the disk tier */
    uint64_t prefetch_fleet;        /* prefetch.c: of those issued, copied from the fleet tier */
    uint64_t piece_prefetched;      /* prefetch.c: pieces prefetched for skipping readers */
    uint64_t piece_fetches;         /* group.c: pieces GET from S3 (partial_grain) */
    uint64_t piece_bytes;           /* group.c: their bytes */
    uint64_t piece_reads;           /* read.c: FUSE reads that took pieces */
    uint64_t piece_assembled;       /* handle.c: blocks completed from cached pieces */
    uint64_t dense_sweeps;          /* dense.c: files fetched whole for dense random reads */
    uint64_t dense_blocks;          /* dense.c: blocks those sweeps handed to the cache */
    /* write.c (-o writable) */
    uint64_t uploads_open;          /* write handles open */
    uint64_t uploads_started;       /* multipart uploads created */
    uint64_t uploads_done;          /* files completed (a PUT or a multipart upload) */
    uint64_t upload_failures;       /* files whose upload failed (close returned EIO) */
    uint64_t upload_aborts;         /* multipart uploads aborted */
    uint64_t upload_parts;          /* parts sent */
    uint64_t upload_parts_inflight; /* parts being sent now */
    uint64_t upload_bytes;          /* bytes S3 took (parts and PUTs) */
    uint64_t upload_buffer_bytes;   /* part buffers allocated now (<= upload_memory) */
    uint64_t upload_cached_blocks;  /* blocks written put in the cache under the new ETag */
    uint64_t uploads_rekeying;      /* completed files whose blocks are being re-keyed (gauge) */
};

#define FS_READ_SEEN_BITS 12 /* blocks remembered as read lately: 4096 */

/* A hash of block @blk of inode @ino, for the lossy tables of blocks seen lately (the
 * page-cache fill's in read.c, the reads' in prefetch.c): they index by its top bits. */
static inline uint64_t fs_ino_blk_hash(uint64_t ino, uint64_t blk)
{
    return (ino * 0x9E3779B97F4A7C15ull) ^ ((blk + 1) * 0xC2B2AE3D27D4EB4Full);
}

/* The daemon: what every part shares, and one struct per owner. */
struct fs {
    struct fs_conf *conf;
    struct objstore *os;
    struct hc_cache *cache;
    struct hc_fleet *fleet; /* the fleet tier (-o fleet), or NULL */
    char *cache_identity;
    struct fuse_session *se;
    int64_t mount_time;
    const char *mnt;            /* the absolute mountpoint (main's buffer) */
    struct fs_metrics *metrics; /* always created; served only with -o metrics */

    struct fs_ns *ns;      /* ns.c, listing.c (ns_i.h) */
    struct fs_handles *hs; /* handle.c */
    struct fs_counters ctr;
    struct fs_fill_state *fill; /* read.c: the page-cache fill; NULL when off */
    struct fs_uploads *up;      /* write.c: the part buffers of all uploads (-o writable) */
    /* prefetch.c: hashes of (inode, block) that FUSE reads asked for lately, lossy
     * (fs_pf_note_read), to tell a reader's skips from its page cache's gaps */
    uint64_t read_seen[1u << FS_READ_SEEN_BITS];
};

/* ---- ns.c ---- */

/* Set up the tables and the root inode. @return 0 or -ENOMEM. */
int fs_ns_init(struct fs *fs);
/* Free every inode and listing (after the session ended). */
void fs_ns_fini(struct fs *fs);
/*
 * Resolve @name in directory @parent, counting one kernel lookup on success.
 * @return 0 and *e filled, -ENOENT (e->ino = 0, negative timeout set) or -errno.
 */
int fs_ns_lookup(struct fs *fs, fuse_ino_t parent, const char *name, struct fuse_entry_param *e);
/* Drop @n kernel references of @ino (forget). */
void fs_ns_forget(struct fs *fs, fuse_ino_t ino, uint64_t n);
/* Attributes of @ino, refreshed with HEAD when older than the TTL. @return 0 or -errno. */
int fs_ns_getattr(struct fs *fs, fuse_ino_t ino, struct stat *st);
/*
 * Find @ino and take an "open" reference (it is not freed until fs_ns_release()).
 * @return the inode or NULL (-ENOENT).
 */
struct fs_inode *fs_ns_open(struct fs *fs, fuse_ino_t ino);
void fs_ns_release(struct fs *fs, struct fs_inode *ino);
/* A fresh listing of directory @dir (loading it if stale). @return 0 and a reference, or -errno. */
int fs_ns_listing(struct fs *fs, struct fs_inode *dir, struct fs_listing **out);
void fs_listing_put(struct fs_listing *l);
/*
 * For readdirplus: the inode of entry @de of directory @dir, counting one lookup.
 * @return 0 and *e, or -errno.
 */
int fs_ns_entry(struct fs *fs, struct fs_inode *dir, const struct fs_listing *l,
                const struct fs_dirent *de, struct fuse_entry_param *e);
/* Fill @st for @ino (no I/O). Caller holds fs->ns->lock. */
void fs_ns_fill_stat(const struct fs *fs, const struct fs_inode *ino, struct stat *st);
/* How an open reads: through the kernel's page cache, or around it (FOPEN_DIRECT_IO). */
enum fs_direct {
    FS_DIRECT_NO,      /* through the page cache: counted until fs_ns_unpin() */
    FS_DIRECT_VERSION, /* around it: another version's handles read through it */
    FS_DIRECT_OWN,     /* around it, every read as the program asked: page_cache=no */
    FS_DIRECT_FOOTER,  /* the same, for a version read footer first (a columnar reader's):
                          page_cache=no, or auto, where only these go around the cache */
};
/*
 * Pin the version of file @ino for an open: HEAD when the attributes are older than the
 * TTL. Fills @etag/@size, sets *keep_cache when the ETag equals the one of the last open.
 * The kernel's page cache is per inode, not per open: while handles of another version
 * read through it, *direct is FS_DIRECT_VERSION and the new handle must bypass it (else
 * each would read the other's pages: mixed versions). With FS_DIRECT_NO the handle counts
 * as a page-cache reader until fs_ns_unpin(). @ctag (OBJSTORE_ETAG_MAX) gets what the handle keys
 * its cached blocks by: the provisional tag of a version this mount wrote and has not re-keyed yet
 * (*@ct is then counted as used until fs_ns_ctag_unuse), else the ETag (*@ct NULL).
 * @return 0 or -errno.
 */
int fs_ns_pin(struct fs *fs, struct fs_inode *ino, char *etag, uint64_t *size, bool *keep_cache,
              enum fs_direct *direct, char *ctag, struct fs_ctag **ct);
/* A handle of version @etag of @ino read its tail first (a footer): the later opens of that
 * version are FS_DIRECT_FOOTER (page_cache=auto or no). */
void fs_ns_note_tail(struct fs *fs, struct fs_inode *ino, const char *etag);
void fs_ns_ctag_unuse(struct fs *fs, struct fs_ctag *ct);
/* A handle pinned without direct_io is released. */
void fs_ns_unpin(struct fs *fs, struct fs_inode *ino);
/* Forget cached attributes of @ino (its object changed under an open handle). */
void fs_ns_invalidate(struct fs *fs, struct fs_inode *ino);

/* Pure parts of ns.c and listing.c (no lock, no I/O), exposed for tests/unit/test_fs_ns.c. */
/* Can the component @name (@len bytes) be shown as a file name? Not "", ".", "..", longer
 * than NAME_MAX, or holding "/" or NUL. @return true if so. */
bool fs_name_ok(const char *name, size_t len);
/* A new empty listing with one reference, loaded_ms = now. @return it or NULL (-ENOMEM). */
struct fs_listing *fs_listing_new(void);
/* Add the files and subdirectories of one ListObjectsV2 page of directory prefix @dkey
 * to @l (*@cap: its entry capacity, 0 at first); keys that cannot be names are hidden.
 * @return 0 or -ENOMEM (@l then holds what was added so far). */
int fs_listing_add_page(struct fs_listing *l, size_t *cap, const char *dkey,
                        const struct objstore_list_result *res);
/* Sort @l by name; a directory hides a file of the same name. */
void fs_listing_finish(struct fs_listing *l, const char *dkey);
/* Binary search of a finished listing. @return the entry or NULL. */
const struct fs_dirent *fs_listing_find(const struct fs_listing *l, const char *name);

/* Is @ino still the version a handle pinned (@etag, @size)? Takes fs->ns->lock.
 * @return true if so. */
bool fs_ns_same_version(struct fs *fs, const struct fs_inode *ino, const char *etag, uint64_t size);

/* ---- handle.c: the lists of open handles ---- */

/*
 * Every file handle (read.c) and directory handle (ops.c) is on a list, so the ones
 * whose RELEASE never came (the kernel sends it asynchronously and may drop it when the
 * mount goes away right after the last close) are released at unmount instead of
 * leaking their held blocks.
 */
enum fs_open_kind { FS_OPEN_FILE = 0, FS_OPEN_DIR, FS_OPEN_WRITE, FS_OPEN_KINDS };
/* Set up / free the lists (and the read-error rate limit). @return 0 or -ENOMEM. */
int fs_handles_init(struct fs *fs);
void fs_handles_fini(struct fs *fs);
/* Put handle @owner on list @kind / take @l off it. */
void fs_open_add(struct fs *fs, enum fs_open_kind kind, struct fs_open_link *l, void *owner);
void fs_open_del(struct fs *fs, enum fs_open_kind kind, struct fs_open_link *l);
/* After the session loop (no FUSE thread runs): @release each handle still on list @kind
 * (it must take it off the list). @return how many there were. */
unsigned fs_open_drain(struct fs *fs, enum fs_open_kind kind,
                       void (*release)(struct fs *fs, void *owner));

/* ---- read.c ---- */

struct fs_handle;
struct fs_dirh;
/* Open file @ino for reading; *keep_cache and *direct_io as fs_ns_pin() says.
 * @return 0 and *out (fi->fh), or -errno. */
int fs_read_open(struct fs *fs, struct fs_inode *ino, struct fs_handle **out, bool *keep_cache,
                 bool *direct_io);
/* A read of @fh came with O_DIRECT: its bytes are not kept by the page cache. */
void fs_read_note_odirect(struct fs_handle *fh);
/* Serve one FUSE read; replies (exactly once) now or from a cache thread. */
void fs_read(struct fs *fs, fuse_req_t req, struct fs_handle *fh, size_t size, off_t off);
/* Drop the open's reference; the handle goes when in-flight reads finish. */
void fs_read_release(struct fs *fs, struct fs_handle *fh);
/* After the session loop ended: release every handle still open (RELEASEs the kernel did
 * not deliver). @return how many there were. */
unsigned fs_read_release_all(struct fs *fs);
/* Start the page-cache fill thread (-o page_cache_fill; after the mount) and stop it
 * (after the session loop, before the handles are released). @return 0 or -errno. */
int fs_read_fill_start(struct fs *fs);
void fs_read_fill_stop(struct fs *fs);
/* The fill's counters into *st. @return false (and *st untouched) when the fill is off. */
bool fs_read_fill_stats(struct fs *fs, struct fs_fill_stats *st);
/* Build the cache key of one block into @buf. @return its length, or 0 if it does not fit. */
size_t fs_block_key(const struct fs *fs, const char *key, const char *etag, uint64_t blk, void *buf,
                    size_t cap);

/* ---- write.c, ns_write.c: -o writable ---- */

struct fs_whandle;
/* Set up / free the mount's upload accounting. @return 0 or -ENOMEM. */
int fs_write_init(struct fs *fs);
void fs_write_fini(struct fs *fs);
/* After the session loop, while S3 is still reachable: try the failed aborts again. */
void fs_write_stop(struct fs *fs);
/* A write handle for @ino (taken with fs_ns_create or fs_ns_open_write; the handle owns
 * that reference from here) writing object @key. @return 0 and *out, or -ENOMEM. */
int fs_write_open(struct fs *fs, struct fs_inode *ino, const char *key, struct fs_whandle **out);
/* Take @size bytes at @off (which must be where the last write ended). Waits while the
 * mount's part buffers are full. @return bytes taken, or -EINVAL (not sequential), -EIO. */
ssize_t fs_write(struct fs_whandle *h, const char *buf, size_t size, uint64_t off);
/* Complete the upload (the first call; later ones return its result). @return 0 or -EIO. */
int fs_write_flush(struct fs_whandle *h);
/* Nothing written yet (and not completed)? */
bool fs_write_empty(const struct fs_whandle *h);
/* Free the handle (completing the upload if no flush came). */
void fs_write_release(struct fs_whandle *h);
/* After the session loop: the write handles whose RELEASE never came (their writer did
 * not close them before the unmount) are aborted, not completed: no half-written object
 * appears. @return how many there were. */
unsigned fs_write_release_all(struct fs *fs);

/* Name @name in @parent for a new object being written: *out pinned, marked writing.
 * @return 0 (and @e), -EBUSY (another writer), -EISDIR, -ENOENT, -ENOTDIR. */
int fs_ns_create(struct fs *fs, fuse_ino_t parent, const char *name, struct fuse_entry_param *e,
                 struct fs_inode **out);
/* An existing file @ino opened with O_TRUNC to be replaced. @return 0 or -errno. */
int fs_ns_open_write(struct fs *fs, fuse_ino_t ino, struct fs_inode **out);
/* Is @n being written (not in S3 yet)? */
bool fs_ns_is_writing(struct fs *fs, const struct fs_inode *n);
/* The writer's size of @n. */
void fs_ns_write_size(struct fs *fs, struct fs_inode *n, uint64_t size);
/* The upload of @n ended (@result 0: the object is @etag, @size bytes); drops the pin.
 * With @ct (result 0), its blocks are cached under @ct->tag until a re-key job ends: the
 * inode keeps an "opens" reference for that job (fs_ns_ctag_done gives it back). */
void fs_ns_write_done(struct fs *fs, struct fs_inode *n, int result, uint64_t size,
                      const char *etag, struct fs_ctag *ct);
/* The re-key job of @ct filled the ETag's keys: handles opened from now on use them. */
void fs_ns_ctag_switch(struct fs *fs, struct fs_ctag *ct);
/* Is any handle still keying by @ct->tag? */
bool fs_ns_ctag_busy(struct fs *fs, struct fs_ctag *ct);
/* The re-key job of @ct on @n is over: @n forgets it, the job's reference is dropped. */
void fs_ns_ctag_done(struct fs *fs, struct fs_inode *n, struct fs_ctag *ct);
/* DeleteObject of @name in @parent. @return 0 or -errno. */
int fs_ns_unlink(struct fs *fs, fuse_ino_t parent, const char *name);
/* A directory made on this mount (S3 has none until a file in it exists). */
int fs_ns_mkdir(struct fs *fs, fuse_ino_t parent, const char *name, struct fuse_entry_param *e);

/* ---- ops_write.c ---- */
/* The write operations, into a copy of fs_ops (-o writable). */
void fs_ops_add_write(struct fuse_lowlevel_ops *ops);
/* Is @fi a write handle's? */
bool fs_fh_is_write(const struct fuse_file_info *fi);
/* OPEN for writing (ops.c passes it on). Replies. */
void fs_ops_open_write(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
/* RELEASE of a write handle. */
void fs_ops_release_write(struct fs *fs, struct fuse_file_info *fi);

/* ---- ops.c ---- */
extern const struct fuse_lowlevel_ops fs_ops;
/* Release the directory handles whose RELEASEDIR never arrived; call after the session
 * loop. @return how many there were. */
unsigned fs_ops_release_dirs(struct fs *fs);

/* Errno of an objstore failure as a short cause for the one startup line. */
const char *fs_cause(int neg_errno);

#endif
