/* SPDX-License-Identifier: Apache-2.0 */
/*
 * read.c: open files and block reads: FUSE read -> hybrid cache blocks -> ranged GETs.
 *
 * DESIGN
 * An open handle pins (key, ETag, size). A read of [off, off+size) becomes one hc_fetch
 * per block, all issued at once; the cache deduplicates concurrent misses of one block
 * (in this process; the kernel page cache does it across processes) and calls our
 * fetcher, which GETs the block's byte range with If-Match into the cache's buffer.
 * Because the ETag is part of the cache key, a handle only ever sees blocks of the
 * version it pinned: a changed object fails the If-Match (ESTALE), never mixes data.
 * The reply is a writev of the cached blocks' memory (fuse_reply_iov): no copy in user
 * space; the entry references are held until the reply call returns.
 *
 * Prefetch (prefetch.c) and the handle with its one-block fetcher (handle.c) sit below
 * this file: read.c calls them, they never call back. read_i.h holds what they share.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "common/log.h"
#include "common/util.h"
#include "fs/blockkey.h"
#include "fs/fill.h"
#include "fs/fs_i.h"
#include "fs/metrics.h"
#include "fs/read_i.h"
#include "hybridcache/hybridcache.h"

/* One unit of a read: a block, or a piece of one (fs_read_pieces). */
struct fs_slot {
    struct fs_read *rd;
    struct fs_blk arg;
    struct hc_entry *e;
    uint64_t ustart; /* the unit's first byte in the object */
    uint64_t ulen;   /* its size: the block size or partial_grain */
};

struct fs_read {
    fuse_req_t req;
    struct fs_handle *fh; /* a reference */
    int pending;          /* atomic: units not done + 1 while submitting */
    int err;              /* atomic: first error */
    uint64_t off, end;
    uint64_t t0_ns; /* metrics: when the FUSE read arrived */
    unsigned n;     /* units, in order of offset */
    bool fill;      /* a lone read: what its entry holds goes to the page cache */
    struct fs_slot slots[];
};

/* ---- reads ---- */

/* errno a reader should see: keep the meaningful ones, the rest is an I/O error. */
static int fs_read_errno(int err)
{
    switch (err) {
    case -ESTALE:
    case -ENOMEM:
    case -EACCES:
        return -err;
    default:
        return EIO;
    }
}

/* The page-cache fill (over fill.c): pages around lone small reads go to the kernel's
 * page cache. Owned here; struct fs holds it while the fill runs. */
struct fs_fill_state {
    struct fs_fill *q;                      /* the fill queue and thread */
    uint64_t seen[1u << FS_FILL_SEEN_BITS]; /* blocks read alone lately */
};

/* What a queued page-cache fill keeps alive: the bytes, and the handle's pin. */
struct fs_fill_ref {
    struct hc_entry *e;
    struct fs_handle *fh;
};

static void fs_fill_release(void *arg)
{
    struct fs_fill_ref *r = arg;
    hc_entry_put(r->e);
    fs_handle_put(r->fh);
    free(r);
}

/*
 * The fill thread's sink: the version the handle reads must still be the inode's (a job
 * queued before an overwrite was noticed must not put old bytes, or an old size, into
 * the kernel's inode), then fuse_lowlevel_notify_store. What the check cannot close is a
 * new version noticed between it and the store; the pin this job holds keeps every open
 * of that version on direct_io until the job is done, and the next open through the page
 * cache drops these pages (keep_cache off), so it never reads them.
 */
static int fs_fill_store(void *ctx, const struct fs_fill_job *j)
{
    struct fs *fs = ctx;
    const struct fs_fill_ref *r = j->arg;
    if (!fs_ns_same_version(fs, r->fh->ino, r->fh->etag, r->fh->size))
        return -ESTALE;
    struct fuse_bufvec bv = FUSE_BUFVEC_INIT(j->len);
    bv.buf[0].mem = (void *)j->data;
    return fuse_lowlevel_notify_store(fs->se, j->nodeid, (off_t)j->off, &bv, 0);
}

int fs_read_fill_start(struct fs *fs)
{
    struct fs_fill_sink sink = {.store = fs_fill_store, .ctx = fs};

    if (!fs->conf->page_cache_fill)
        return 0;
    /* At most 32 MiB of cache entries held for fills (outside the memory tier's count
     * once the tier drops them), past that a fill is skipped. */
    struct fs_fill_state *st = calloc(1, sizeof(*st));
    if (!st)
        return -ENOMEM;
    int rc = fs_fill_create(256, 32u << 20, &sink, &st->q);
    if (rc < 0) {
        free(st);
        return rc;
    }
    fs->fill = st;
    return 0;
}

void fs_read_fill_stop(struct fs *fs)
{
    if (!fs->fill)
        return;
    fs_fill_destroy(fs->fill->q);
    free(fs->fill);
    fs->fill = NULL;
}

bool fs_read_fill_stats(struct fs *fs, struct fs_fill_stats *st)
{
    if (!fs->fill)
        return false;
    fs_fill_get_stats(fs->fill->q, st);
    return true;
}

/*
 * Whether a lone read of block @blk of inode @ino was seen lately (and note this one): a
 * lossy direct-mapped table of 4096 (inode, block) hashes, so "lately" is "since about
 * 4096 other blocks were read alone". Thread safe (one atomic exchange).
 */
static bool fs_fill_seen(struct fs *fs, uint64_t ino, uint64_t blk)
{
    uint64_t h = fs_ino_blk_hash(ino, blk) | 1; /* 0 is an empty slot */
    uint64_t *slot = &fs->fill->seen[h >> (64 - FS_FILL_SEEN_BITS)];
    return __atomic_exchange_n(slot, h, __ATOMIC_RELAXED) == h;
}

/* After a lone read was answered: queue what its entry holds (the whole block, or the
 * chunks of a partial disk hit) when that is more than the read itself. */
static void fs_read_fill(struct fs_read *rd)
{
    struct fs_handle *fh = rd->fh;
    struct hc_entry *e = rd->slots[0].e;
    size_t len = hc_entry_len(e);
    struct fs_fill_ref *r;

    if (len <= rd->end - rd->off || !(r = malloc(sizeof(*r))))
        return;
    hc_entry_ref(e);
    fs_handle_get(fh);
    r->e = e;
    r->fh = fh;
    struct fs_fill_job j = {.nodeid = fh->ino->ino,
                            .len = len,
                            .data = hc_entry_data(e),
                            .off = rd->slots[0].ustart + hc_entry_off(e),
                            .release = fs_fill_release,
                            .arg = r};
    if (!fs_fill_submit(fh->fs->fill->q, &j))
        fs_fill_release(r);
}

static void fs_read_finish(struct fs_read *rd)
{
    struct fs_handle *fh = rd->fh;
    int err = __atomic_load_n(&rd->err, __ATOMIC_ACQUIRE);

    if (err) {
        fuse_reply_err(rd->req, fs_read_errno(err));
        fs_metrics_fuse_read(fh->fs->metrics, rd->t0_ns, err, NULL, 0); /* metrics */
    } else {
        struct iovec iov[rd->n];
        int cnt = 0;
        for (unsigned i = 0; i < rd->n; i++) {
            uint64_t bstart = rd->slots[i].ustart, bs = rd->slots[i].ulen;
            uint64_t from = CMN_MAX(rd->off, bstart) - bstart;
            uint64_t to = CMN_MIN(rd->end, bstart + bs) - bstart;
            /* A partial entry (hc_fetch_range) holds the block from eoff on, covering from. */
            size_t eoff = hc_entry_off(rd->slots[i].e);
            size_t have = eoff + hc_entry_len(rd->slots[i].e);
            if (to > have)
                to = have; /* a short block ends the reply: never skip a hole */
            if (to <= from)
                break;
            iov[cnt].iov_base = (char *)hc_entry_data(rd->slots[i].e) + (from - eoff);
            iov[cnt].iov_len = to - from;
            cnt++;
            if (to < CMN_MIN(rd->end, bstart + bs) - bstart)
                break;
        }
        int rrc = fuse_reply_iov(rd->req, iov, cnt);
        fs_metrics_fuse_read(fh->fs->metrics, rd->t0_ns, 0, iov, cnt); /* metrics */
        /* After the reply: the kernel has unlocked the pages of this read by now. */
        if (rd->fill && rrc == 0)
            fs_read_fill(rd);
    }
    for (unsigned i = 0; i < rd->n; i++)
        hc_entry_put(rd->slots[i].e);
    fs_handle_put(fh);
    free(rd);
}

static void fs_read_drop(struct fs_read *rd)
{
    if (__atomic_sub_fetch(&rd->pending, 1, __ATOMIC_ACQ_REL) == 0)
        fs_read_finish(rd);
}

static void fs_read_block_done(int result, struct hc_entry *e, enum hc_source src, void *arg)
{
    struct fs_slot *s = arg;
    if (src == HC_SRC_DISK) /* metrics */
        fs_metrics_disk_read(s->rd->fh->fs->metrics, s->rd->t0_ns);
    if (result < 0 || !e) {
        int expected = 0;
        __atomic_compare_exchange_n(&s->rd->err, &expected, result < 0 ? result : -EIO, false,
                                    __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
        hc_entry_put(e);
    } else {
        s->e = e;
    }
    fs_read_drop(s->rd);
}

static void fs_read_piece_done(struct fs_handle *fh, uint64_t gen, uint64_t idx, int result,
                               struct hc_entry *e, enum hc_source src, void *arg)
{
    (void)fh, (void)gen, (void)idx;
    fs_read_block_done(result, e, src, arg);
}

/* Unit @s of a read: a block at @ustart (a piece: @unit is its size), not issued yet. */
static struct fs_slot *fs_read_unit(struct fs_read *rd, unsigned i, uint64_t idx, uint64_t ustart,
                                    uint64_t ulen, uint32_t unit)
{
    struct fs_slot *s = &rd->slots[i];

    *s = (struct fs_slot){
        .rd = rd, .arg = {.fh = rd->fh, .blk = idx, .unit = unit}, .ustart = ustart, .ulen = ulen};
    return s;
}

/*
 * Issue a skipping reader's read (prefetch.c, PIECES): a block that is held for it or cached
 * whole is taken whole; the others as the pieces the read touches, each run of consecutive
 * pieces in one group (one GET for those missing, single-flight with any in flight).
 * @return the units used (slots filled, in order of offset).
 */
static unsigned fs_read_pieces(struct fs *fs, struct fs_read *rd, unsigned fflags, uint8_t *key)
{
    struct fs_handle *fh = rd->fh;
    uint64_t bs = fs->conf->block_size, grain = fs->conf->partial_grain;
    uint64_t pos = rd->off, plast = (rd->end - 1) / grain;
    struct fs_grp *g = NULL;
    unsigned n = 0;
    int rc;

    while (pos < rd->end) {
        uint64_t blk = pos / bs, stop = CMN_MIN(rd->end, (blk + 1) * bs);
        struct hc_entry *held = fs_pf_take(fh, blk);
        size_t klen = held ? 0 : fs_block_key(fs, fh->key, fh->ctag, blk, key, HC_KEY_MAX);
        if (held || (klen && hc_contains(fs->cache, key, klen))) {
            struct fs_slot *s = fs_read_unit(rd, n++, blk, blk * bs, bs, 0);
            if (held)
                fs_read_block_done(0, held, HC_SRC_MEMORY, s);
            else if ((rc = hc_fetch(fs->cache, key, klen, fflags, fs_fetcher, &s->arg,
                                    fs_read_block_done, s)) != 0)
                fs_read_block_done(rc, NULL, HC_SRC_ORIGIN, s);
            pos = stop;
            continue;
        }
        for (uint64_t p = pos / grain; p * grain < stop; p++) {
            struct fs_slot *s = fs_read_unit(rd, n++, p, p * grain, grain, (uint32_t)grain);
            klen = fs_piece_key(fs, fh, p, key, HC_KEY_MAX);
            if (g && (fs_grp_next(g) != p || fs_grp_full(g))) {
                fs_grp_submit(g);
                g = NULL;
            }
            if (!g && klen)
                g = fs_grp_new(fh, p, (unsigned)(plast - p + 1), (uint32_t)grain, 0);
            rc = !klen ? -ENAMETOOLONG
                 : !g  ? -ENOMEM
                       : fs_grp_add(g, key, klen, 0, fs_read_piece_done, s);
            if (rc < 0)
                fs_read_block_done(rc, NULL, HC_SRC_ORIGIN, s);
            if (rc <= 0 && g) { /* a hit, a flight already running or refused: the run ends */
                fs_grp_submit(g);
                g = NULL;
            }
        }
        pos = stop;
    }
    if (g)
        fs_grp_submit(g);
    __atomic_add_fetch(&fs->ctr.piece_reads, 1, __ATOMIC_RELAXED);
    __atomic_store_n(&fh->ino->had_pieces, true, __ATOMIC_RELAXED);
    return n;
}

/*
 * Whether a read of [@off, @end) of @fh finds every byte it wants in cached pieces or
 * whole blocks, some of it in pieces only (a query run again, whose reads before the
 * handle skips take whole blocks): then it takes the pieces (fs_read_pieces) instead of
 * fetching the blocks whole for bytes it does not read.
 */
static bool fs_read_pieces_cached(struct fs *fs, struct fs_handle *fh, uint64_t off, uint64_t end)
{
    uint64_t bs = fs->conf->block_size, grain = fs->conf->partial_grain;
    uint8_t key[HC_KEY_MAX];
    bool some = false;

    if (!grain)
        return false;
    for (uint64_t b = off / bs; b * bs < end; b++) {
        size_t kl = fs_block_key(fs, fh->key, fh->ctag, b, key, sizeof(key));
        if (!kl)
            return false;
        if (hc_contains(fs->cache, key, kl))
            continue;
        uint64_t from = CMN_MAX(off, b * bs), to = CMN_MIN(end, (b + 1) * bs);
        for (uint64_t p = from / grain; p * grain < to; p++) {
            kl = fs_piece_key(fs, fh, p, key, sizeof(key));
            if (!kl || !hc_contains(fs->cache, key, kl))
                return false;
        }
        some = true;
    }
    return some;
}

void fs_read(struct fs *fs, fuse_req_t req, struct fs_handle *fh, size_t size, off_t off)
{
    uint64_t bs = fs->conf->block_size;
    uint8_t key[HC_KEY_MAX];
    struct fs_read *rd;

    if (off < 0) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    if ((uint64_t)off >= fh->size || size == 0) {
        fuse_reply_buf(req, NULL, 0); /* at or past EOF */
        return;
    }
    uint64_t end = CMN_MIN((uint64_t)off + size, fh->size);
    uint64_t first = (uint64_t)off / bs, last = (end - 1) / bs;
    /* page_cache=auto: a first read in the last block of a file of several blocks is a
     * footer's (Parquet, ORC, Arrow, zip): the program reads the parts it needs next, on
     * other handles (DuckDB opens one per thread), and those skip the kernel's read-ahead,
     * which would pull whole stretches of column chunks the query never reads. */
    if (((__atomic_load_n(&fs->conf->page_cache_auto, __ATOMIC_RELAXED) && fh->page_cache) ||
         !fs->conf->page_cache) &&
        !__atomic_load_n(&fh->read_seen, __ATOMIC_RELAXED) && /* no write per read after */
        !__atomic_exchange_n(&fh->read_seen, true, __ATOMIC_RELAXED) && first > 0 &&
        last == (fh->size - 1) / bs && fh->size >= FS_PIECE_FILE_MIN(bs))
        fs_ns_note_tail(fs, fh->ino, fh->etag);
    unsigned n = (unsigned)(last - first + 1), cap = n;
    bool pieces;
    /* Noted first: a reader of the same file whose page cache these pages will fill must
     * find them noted when its next read arrives (fs_pf_is_skip), even while this one is
     * still being issued on another thread. The read's own check looks at the gap before
     * it, which these blocks are not in. */
    fs_pf_note_read(fs, fh, first, last);
    enum fs_read_kind kind = fs_read_kind(fs, fh, (uint64_t)off, &pieces);
    if (!pieces)
        pieces = fs_read_pieces_cached(fs, fh, (uint64_t)off, end);

    if (pieces) /* at most every piece of the read */
        cap = (unsigned)((end - 1) / fs->conf->partial_grain -
                         (uint64_t)off / fs->conf->partial_grain + 1);
    rd = calloc(1, sizeof(*rd) + cap * sizeof(rd->slots[0]));
    if (!rd) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    rd->req = req;
    rd->t0_ns = cmn_now_ns(); /* metrics */
    rd->fh = fh;
    fs_handle_get(fh);
    rd->off = (uint64_t)off;
    rd->end = end;
    rd->n = n;
    rd->pending = (int)cap + 1; /* +1: no reply before every unit was submitted */
    bool lone = n == 1 && kind == FS_RD_LONE && !pieces;
    unsigned fflags = kind == FS_RD_STREAM ? HC_FETCH_STREAM : 0;
    /* The range a lone read asks the cache for: the read, or the aligned page_cache_fill
     * range around it when that goes to the page cache afterwards, so that neighbouring
     * random reads are answered by the kernel (what a cache file in the page cache gives
     * s3fs) instead of each costing a round trip and a disk read here. */
    uint64_t ask_off = (uint64_t)off, ask_end = end;
    if (lone && fh->page_cache && fs->fill) {
        uint64_t u = fs->conf->page_cache_fill;
        uint64_t bstart = first * bs, bend = CMN_MIN(bstart + bs, fh->size);
        if (fs_fill_seen(fs, fh->ino->ino, first)) {
            /* The second lone read of this block lately: the block is being re-read, so
             * it is read whole (and promoted) and all of it goes to the page cache. The
             * first read of a block only pays for its unit, so a random workload larger
             * than RAM is not charged a whole block per read. */
            ask_off = bstart;
            ask_end = bend;
        } else {
            ask_off = CMN_MAX(bstart, ask_off & ~(u - 1));
            ask_end = CMN_MIN(bend, (ask_end + u - 1) & ~(u - 1));
        }
        /* Whatever the entry holds is filled: a whole block when it came from memory or
         * S3 anyway (no extra read), the chunks read when it was a partial disk hit. */
        rd->fill = true;
    }
    if (pieces) {
        rd->n = fs_read_pieces(fs, rd, fflags, key);
        /* the slots left unused count as done (rd->n is read only after the last drop) */
        __atomic_sub_fetch(&rd->pending, (int)(cap - rd->n), __ATOMIC_RELEASE);
        n = 0;
    }
    for (unsigned i = 0; i < n; i++) {
        struct fs_slot *s = fs_read_unit(rd, i, first + i, (first + i) * bs, bs, 0);
        struct hc_entry *held = fs_pf_take(fh, first + i);
        if (held) {
            fs_read_block_done(0, held, HC_SRC_MEMORY, s);
            continue;
        }
        size_t klen = fs_block_key(fs, fh->key, fh->ctag, first + i, key, sizeof(key));
        int rc = !klen  ? -ENAMETOOLONG
                 : lone ? hc_fetch_range(fs->cache, key, klen, 0, ask_off - first * bs,
                                         (size_t)(ask_end - ask_off), fs_fetcher, &s->arg,
                                         fs_read_block_done, s)
                        : hc_fetch(fs->cache, key, klen, fflags, fs_fetcher, &s->arg,
                                   fs_read_block_done, s);
        if (rc != 0)
            fs_read_block_done(rc, NULL, HC_SRC_ORIGIN, s);
    }
    /* A lone read whose block goes to the page cache (fill) has those bytes for the
     * reader (@reach): its next read through the page cache starts past them, and the
     * pattern must see that as contiguous; the bytes it asked for are [off, end). */
    fs_prefetch(fs, fh, (uint64_t)off, end,
                rd->fill ? CMN_MAX(end, CMN_MIN((first + 1) * bs, fh->size)) : end);
    fs_read_drop(rd);
}

void fs_read_note_odirect(struct fs_handle *fh)
{
    __atomic_store_n(&fh->odirect, true, __ATOMIC_RELAXED);
}

int fs_read_open(struct fs *fs, struct fs_inode *ino, struct fs_handle **out, bool *keep_cache,
                 bool *direct_io)
{
    struct fs_handle *fh;
    int rc;

    if (ino->is_dir)
        return -EISDIR;
    fh = calloc(1, sizeof(*fh));
    if (!fh)
        return -ENOMEM;
    enum fs_direct direct = FS_DIRECT_NO;
    rc = fs_ns_pin(fs, ino, fh->etag, &fh->size, keep_cache, &direct, fh->ctag, &fh->ctag_used);
    if (rc < 0) {
        free(fh);
        return rc;
    }
    *direct_io = direct != FS_DIRECT_NO;
    fh->own_reads = direct == FS_DIRECT_OWN || direct == FS_DIRECT_FOOTER;
    fh->columnar = direct == FS_DIRECT_FOOTER;
    fh->refs = 1;
    fh->fs = fs;
    fh->ino = ino;
    fh->key = ino->key;
    fh->page_cache = !*direct_io;
    pthread_mutex_init(&fh->ra_lock, NULL);
    fs_open_add(fs, FS_OPEN_FILE, &fh->open, fh);
    *out = fh;
    return 0;
}

void fs_read_release(struct fs *fs, struct fs_handle *fh)
{
    if (!fh)
        return;
    fs_open_del(fs, FS_OPEN_FILE, &fh->open);
    pthread_mutex_lock(&fh->ra_lock);
    fs_pf_drop_all(fs, fh);
    fh->ra_gen++; /* prefetches still in flight let their blocks go */
    pthread_mutex_unlock(&fh->ra_lock);
    fs_handle_put(fh);
}

static void fs_read_release_one(struct fs *fs, void *owner)
{
    fs_read_release(fs, owner);
}

unsigned fs_read_release_all(struct fs *fs)
{
    return fs_open_drain(fs, FS_OPEN_FILE, fs_read_release_one);
}
