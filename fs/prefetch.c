/* SPDX-License-Identifier: Apache-2.0 */
/*
 * prefetch.c: the access pattern of an open handle and the blocks fetched ahead of it.
 *
 * PREFETCH
 * Each handle watches its reads. A read that starts near where the last ones ended
 * (FS_PF_BACK behind, to absorb the kernel's read-ahead arriving out of order on several
 * FUSE threads, up to the window ahead) continues a run; anything else is a seek and
 * resets the run. Once a run holds two reads and FS_PF_MIN_RUN bytes, the handle keeps a
 * window of bytes ahead of the reader in flight: it starts at FS_PF_START_WINDOW and
 * doubles each time the reader consumes a quarter of it, up to conf.prefetch_window (the
 * prefetch_window option) and 1/FS_PF_BUDGET_SHARE of the cache's memory budget. A lone
 * small read (random access) fetches just its blocks.
 *
 * How much of the window is in flight follows the reads (fs_pf_ahead). A read more than
 * fs_pf_skip_min past the run's end skips forward: the run goes on in stretches of
 * contiguous reads, the way a query reads the column chunks it needs from each row
 * group of a Parquet file and skips the others. Each finished stretch joins a moving
 * average; the prefetch of a stretch stops where the average says it ends, so the
 * skipped bytes are not fetched (before this a column-selective query pulled the whole
 * file).
 *
 * PIECES
 * Whole blocks would still cost a skipping reader every block its chunks touch: with 1 MiB
 * blocks and row groups of a few MiB that is most of the file. So once a handle has
 * skipped forward (ra_skips), its reads within a stretch that has not overrun twice the
 * average (and its seeks, which start one; and the first stretch, up to two blocks, of a
 * handle whose first read was past its first block, as a query's reader's is) take the
 * blocks that are not cached whole as
 * pieces of conf.partial_grain bytes, cached under keys of their own (fs_piece_key), and
 * the prefetch of such a stretch fetches the pieces up to its predicted end, one GET per
 * run of missing pieces (group.c), instead of blocks (fs_pf_pieces). A piece holds the
 * same bytes as that part of its block (the ETag is in both keys), so a reader takes a
 * whole block when one is cached and pieces otherwise; a stretch that overruns is a scan
 * and goes back to whole blocks and the window.
 *
 * BACKFILL
 * A read that goes back to where the handle's last forward jump began (ra_gap_lo, give or
 * take a page header) comes back for the bytes it jumped over: DuckDB's whole-table query
 * reads a row group's chunks as c0, c2, c3, then c1. It and the reads that go on from it
 * (ra_bf_next) continue the run (its window and prefetch stay; else each row group's c1
 * starts a new run, each with GETs of its own: docs/performance.md, rule 7), and the
 * handle is a scan whose reads come out of order (ra_refilled): its later jumps are not
 * skips, so it takes whole blocks, not pieces. A column query never reads what it skipped, so it
 * never backfills. Only on handles whose reads are the program's own (own_reads: page_cache=no,
 * or auto on a file read footer first); through the page cache the kernel's read-ahead merges
 * the chunks and sends reads out of order.
 *
 * The fetch size is decoupled from the block size: a group of up to
 * conf.prefetch_max_request consecutive missing blocks is read with ONE ranged GET whose
 * body is scattered straight into the blocks' own cache buffers (group.c); each block of
 * a group is an ordinary hc_fetch(HC_FETCH_PREFETCH | HC_FETCH_IF_ABSENT), so a reader
 * that wants block N while the group is in flight joins N's flight and wakes as soon as
 * N's bytes are in. A flight that has to wait for memory ends the group and the window is
 * halved. IF_ABSENT makes blocks that are cached (memory, disk index) or already in
 * flight cost no disk read and split the group; those on the disk tier only are read
 * ahead from it instead (HC_FETCH_NO_ORIGIN | HC_FETCH_PREFETCH | HC_FETCH_NOT_IN_MEM),
 * up to FS_PF_DISK_AHEAD ahead of the reader (the issue stops at the first cached block
 * past that and resumes there on a later read): a warm sequential reader finds its
 * blocks already read, several disk reads in flight instead of one synchronous read per
 * kernel read-ahead request. Every prefetched block is held for the
 * reader (ra_held) until it has passed it, so the memory tier cannot evict it first; a
 * disk hit only a prefetch asked for is not promoted to the memory tier (the held
 * reference alone keeps it, charged to the budget). The reader's own fetches while its
 * run prefetches carry HC_FETCH_STREAM (fs_read_kind): what it reads stays in the
 * kernel's page cache, so neither its hits nor the flights it joins make its blocks
 * ordinary entries of the memory tier, and a long scan does not fill it.
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
#include "hybridcache/fleet.h"
#include "hybridcache/hybridcache.h"

#define FS_PF_START_WINDOW (16ull << 20) /* first window (bytes), capped by prefetch_window */
#define FS_PF_MIN_RUN (128u << 10)       /* sequential bytes before prefetch starts */
#define FS_PF_BACK_MIN (2ull << 20)      /* out-of-order tolerance behind the run's end */
/* A window costs its size in the memory budget (the blocks' own buffers, in flight or
 * held for the reader; no staging copy): one reader may take at most this fraction, so
 * the rest of the tier keeps its hot blocks and blocks it prefetched are not evicted for
 * the next ones before it gets to them. On the smallest default mem_cache_size that caps
 * the default window below its sixteen GETs (docs/performance.md, "Constants"). */
#define FS_PF_BUDGET_SHARE 2
/* Blocks on the disk tier are read ahead this far ahead of the reader (at least two
 * blocks): enough disk reads in flight to keep the disk busy (block-sized reads reach its
 * throughput at a small queue depth), without pinning a whole window of memory for them. */
#define FS_PF_DISK_AHEAD (8ull << 20)
/* Until a handle has skipped, the bytes ahead in flight are at most this many times the
 * current stretch (at least two blocks): a scan reaches the full window within a few
 * reads, and a reader that reads one column chunk and moves on has not had a whole
 * window fetched for it. */
#define FS_PF_RAMP 2
/* A stretch's second read may start this far from the first's end and keep the stretch
 * contiguous: the kernel splits a large read into requests that reach the daemon out of
 * order, a few requests apart. */
#define FS_PF_FIRST_GAP (512ull << 10)
/* A read this close to where a jump began comes back for what it jumped over (a page
 * header's room: Parquet's are a few hundred bytes): BACKFILL. */
#define FS_PF_HEADER_MAX (64ull << 10)
/* A stretch shorter than this (bytes read) is a random reader's (a B-tree walk reads a page
 * or two near each other), not a column chunk's: no skip after it, and the seek after it
 * counts for the dense-random sweep (dense.c). The kernel's read-ahead makes a chunk's
 * reads longer than this even for small chunks. */
#define FS_PF_STRETCH_MIN (64ull << 10)

/* A forward gap larger than this ends a stretch (a skip over bytes not read): more than a
 * block (a smaller gap saves nothing) and more than the kernel's read-ahead can put
 * between two reads arriving out of order on several FUSE threads. */
static uint64_t fs_pf_skip_min(const struct fs *fs)
{
    return CMN_MAX((uint64_t)fs->conf->block_size, 2 * fs->conf->read_ahead);
}

/* The stretch of contiguous reads ends (a skip forward or a seek); the next starts at
 * @off. Its length joins the moving average that predicts where the next one ends.
 * Under fh->ra_lock. */
static void fs_pf_stretch_end(struct fs_handle *fh, uint64_t off)
{
    uint64_t len = fh->ra_next > fh->ra_sub_start ? fh->ra_next - fh->ra_sub_start : 0;

    if (len)
        fh->ra_sub_avg = fh->ra_sub_avg ? (3 * fh->ra_sub_avg + len) / 4 : len;
    fh->ra_sub_start = off;
    fh->ra_piece_end = off;
    fh->ra_sub_reads = 0;
    fh->ra_sub_bytes = 0;
    fh->ra_sub_gappy = false;
}

/* The slot of block @blk of @fh in fs->read_seen, and the value that marks it read by @fh:
 * the (inode, block) hash in the high 48 bits, a tag of the handle in the low 16. */
static uint64_t *fs_pf_seen_slot(struct fs *fs, const struct fs_handle *fh, uint64_t blk,
                                 uint64_t *h)
{
    uint64_t k = fs_ino_blk_hash(fh->ino->ino, blk);
    uint64_t tag = (((uintptr_t)fh >> 4) * 0x9E3779B97F4A7C15ull) >> 48;
    *h = (k & ~0xFFFFull) | tag | 1ull << 16;
    return &fs->read_seen[k >> (64 - FS_READ_SEEN_BITS)];
}

void fs_pf_note_read(struct fs *fs, const struct fs_handle *fh, uint64_t first, uint64_t last)
{
    uint64_t h = 0;

    if (!fh->page_cache)
        return; /* direct_io: every read reaches the daemon, no gap to explain */
    for (uint64_t b = first; b <= last; b++) {
        uint64_t *slot = fs_pf_seen_slot(fs, fh, b, &h); /* sets h: called before the store */
        __atomic_store_n(slot, h, __ATOMIC_RELAXED);
    }
}

/* Whether no FUSE read of another handle asked for block @b of @fh lately (the last one to
 * ask was this handle: its own kernel read-ahead past a chunk, or nobody). */
static bool fs_pf_gap_unread(struct fs *fs, const struct fs_handle *fh, uint64_t b)
{
    uint64_t h = 0;
    const uint64_t *slot = fs_pf_seen_slot(fs, fh, b, &h); /* sets h */
    uint64_t v = __atomic_load_n(slot, __ATOMIC_RELAXED);
    return (v & ~0xFFFFull) != (h & ~0xFFFFull) || v == h;
}

/* How far past the run's end a read must land to be a skip: with pieces, two of them (a
 * skip over a column chunk or two of a few hundred KiB saves their bytes), at least 256 KiB;
 * without, fs_pf_skip_min (a smaller gap saves nothing). */
static uint64_t fs_pf_jump_min(const struct fs *fs)
{
    uint64_t g = fs->conf->partial_grain;
    return g ? CMN_MAX(2 * g, 256ull << 10) : fs_pf_skip_min(fs);
}

/* Whether block @b, in the gap a read of @fh jumped over, holds bytes nobody reads: no
 * other handle read it lately (through the page cache: its pages are not a gap of the
 * page cache's making), and the cache neither holds it whole nor fetches it (a scan's
 * read-ahead does: a scan's reads arriving out of order are not skips). */
static bool fs_pf_gap_block_unread(struct fs *fs, const struct fs_handle *fh, uint64_t b)
{
    uint8_t key[HC_KEY_MAX];

    if (fh->page_cache && !fs_pf_gap_unread(fs, fh, b))
        return false;
    size_t kl = fs_block_key(fs, fh->key, fh->ctag, b, key, sizeof(key));
    return kl && !hc_contains(fs->cache, key, kl);
}

/*
 * Whether a read at @off that continues the run skips forward over bytes the reader does
 * not read: it lands more than fs_pf_jump_min past the run's end (fs_pf_skip_min while the
 * run prefetches a window), after a contiguous
 * stretch of at least two reads, and some block the gap touches holds bytes nobody reads
 * (fs_pf_gap_block_unread). That tells a column reader's skips from the gaps the kernel's
 * page cache leaves when other readers of the file read those bytes (several processes
 * reading one file: each handle sees only the pages the others had not read) and from a
 * scan's reads arriving out of order. At most 8 blocks of the gap are looked at. Under
 * fh->ra_lock.
 */
static bool fs_pf_is_skip(struct fs *fs, const struct fs_handle *fh, uint64_t off)
{
    uint64_t bs = fs->conf->block_size;

    if (fh->ra_refilled)
        return false; /* it reads what it jumps over: BACKFILL */

    /* A run that keeps a window in flight is a scan so far: its reads arrive out of order
     * by up to two read-ahead windows, and with a small memory budget the gap they leave
     * need not be in flight yet. It skips only past fs_pf_skip_min. */
    uint64_t min = fh->ra_window ? fs_pf_skip_min(fs) : fs_pf_jump_min(fs);

    if (off <= fh->ra_next + min || fh->ra_sub_reads < 2 || fh->ra_sub_gappy ||
        fh->ra_sub_bytes < FS_PF_STRETCH_MIN)
        return false;
    uint64_t b0 = fh->ra_next / bs, b1 = (off - 1) / bs; /* blocks the gap touches */
    uint64_t step = CMN_MAX((b1 - b0 + 1) / 8, 1);
    for (uint64_t b = b0; b <= b1; b += step)
        if (fs_pf_gap_block_unread(fs, fh, b))
            return true;
    return false;
}

/* Whether a read at @off that continues the run keeps its stretch contiguous: the second
 * read of a stretch starts close to where the first ended (a page header, then the chunk
 * after it), where a random reader's next read lands anywhere in the run's tolerance. */
static bool fs_pf_contiguous(const struct fs_handle *fh, uint64_t off)
{
    if (fh->ra_sub_gappy)
        return false;
    return fh->ra_sub_reads > 1 ||
           (off >= fh->ra_sub_start && off <= fh->ra_next + FS_PF_FIRST_GAP);
}

/* Whether a read at @off (@in_run: it continues the run; @skip: fs_pf_is_skip says it
 * skips) takes pieces: see PIECES above. Under fh->ra_lock. */
static bool fs_pf_piecewise(const struct fs *fs, const struct fs_handle *fh, uint64_t off,
                            bool in_run, bool skip)
{
    /* A small file is read whole at little cost, and its random readers would look
     * contiguous: no pieces (each small buffer also costs malloc more than it is charged). */
    if (!fs->conf->partial_grain || fh->size < FS_PIECE_FILE_MIN(fs->conf->block_size))
        return false;
    if (skip)
        return true; /* this read skips forward (or seeks forward, a window away): it starts
                        a stretch */
    if (!fh->ra_skips) {
        /* The first read takes pieces when it is in the last block (a footer; through the
         * page cache the kernel reads no further than the end of the file), and on a
         * handle whose reads are the program's own (page_cache=no, or auto on a file read
         * footer first) when past the first block, or anywhere on a file known to be read
         * footer first: no read-ahead widens it, and a query that reads a few MB would
         * pay a whole block for a footer of a few KB or a chunk's header. Not for the
         * handles a page-cache mount opens with direct_io because another version is
         * open. */
        uint64_t bs = fs->conf->block_size;
        if (fh->ra_run_reads == 0 && ((fh->own_reads && (off >= bs || fh->columnar)) ||
                                      (off >= bs && off / bs == (fh->size - 1) / bs)))
            return true;
        /* A handle whose first read was past its first block (a query's reader, which
         * reads a footer or a chunk first, where a scan starts at 0) reads its first
         * stretch in pieces too, up to two blocks: it costs no whole blocks of bytes a
         * column query never reads before it has skipped once. */
        return in_run && fh->ra_mid && fs_pf_contiguous(fh, off) &&
               fh->ra_next - fh->ra_sub_start <= 2ull * fs->conf->block_size;
    }
    if (!in_run)
        return true; /* a seek of a skipping reader starts a stretch too */
    return fs_pf_contiguous(fh, off) &&
           fh->ra_next - fh->ra_sub_start <= 2 * fh->ra_sub_avg + fs->conf->partial_grain;
}

static void fs_pf_piece_done(struct fs_handle *fh, uint64_t gen, uint64_t idx, int result,
                             struct hc_entry *e, enum hc_source src, void *arg)
{
    (void)fh, (void)gen, (void)idx, (void)result, (void)src, (void)arg;
    hc_entry_put(e); /* the memory tier (and the disk) keep it for the reader */
}

/*
 * Prefetch the pieces of bytes [@from, @to) of @fh that are not cached, in blocks that are
 * not cached whole: each run of missing consecutive pieces, up to prefetch_max_request, is
 * one GET (group.c). @return the pieces the cache took.
 */
static uint64_t fs_pf_pieces(struct fs *fs, struct fs_handle *fh, uint64_t from, uint64_t to)
{
    uint64_t grain = fs->conf->partial_grain, bs = fs->conf->block_size;
    uint64_t p1 = (CMN_MIN(to, fh->size) + grain - 1) / grain, blk = UINT64_MAX, n = 0;
    unsigned per = (unsigned)CMN_MAX(fs->conf->prefetch_max_request / grain, 1);
    uint8_t key[HC_KEY_MAX];
    struct fs_grp *g = NULL;
    bool whole = false;

    for (uint64_t p = from / grain; p < p1; p++) {
        if (p * grain / bs != blk) {
            blk = p * grain / bs;
            size_t bl = fs_block_key(fs, fh->key, fh->ctag, blk, key, sizeof(key));
            whole = !bl || hc_contains(fs->cache, key, bl); /* the reader takes the block */
        }
        size_t klen = whole ? 0 : fs_piece_key(fs, fh, p, key, sizeof(key));
        if (g && (!klen || fs_grp_next(g) != p || fs_grp_full(g))) {
            fs_grp_submit(g);
            g = NULL;
        }
        if (!klen)
            continue;
        if (!g && !(g = fs_grp_new(fh, p, (unsigned)CMN_MIN(per, p1 - p), (uint32_t)grain, 0)))
            break;
        int rc = fs_grp_add(g, key, klen, HC_FETCH_IF_ABSENT, fs_pf_piece_done, NULL);
        if (rc >= 0)
            n++;
        if (rc == 0) { /* waits for memory: the rest is left to the reader */
            fs_grp_submit(g);
            g = NULL;
            break;
        }
    }
    if (g)
        fs_grp_submit(g);
    __atomic_store_n(&fh->ino->had_pieces, true, __ATOMIC_RELAXED);
    return n;
}

/* A skipping reader's stretch (see PIECES): prefetch its pieces up to where the average
 * says it ends, at most @max bytes past the reader. Takes and drops fh->ra_lock (held on
 * entry, released on return). */
static void fs_pf_stretch_unlock(struct fs *fs, struct fs_handle *fh, uint64_t max)
{
    uint64_t from = CMN_MAX(fh->ra_next, fh->ra_piece_end);
    uint64_t to = CMN_MIN(fh->ra_sub_start + fh->ra_sub_avg, fh->ra_next + max);

    if (to > from)
        fh->ra_piece_end = to;
    pthread_mutex_unlock(&fh->ra_lock);
    if (to > from)
        __atomic_add_fetch(&fs->ctr.piece_prefetched, fs_pf_pieces(fs, fh, from, to),
                           __ATOMIC_RELAXED);
}

/*
 * Bytes to keep in flight past the reader's end (before the window's cap). A reader that
 * never skipped ramps up with its stretch (FS_PF_RAMP). One that skips forward over
 * bytes it does not read (the column chunks a query does not need in Parquet, ORC or
 * Arrow files, tensors a loader skips) reads in stretches: up to the end the average
 * stretch predicts, the prefetch covers just that (all its blocks in one GET, none past
 * it); past the prediction it covers as much as the stretch overran it, so a stretch
 * that ends where predicted costs no block beyond, and a long one (a scan after all)
 * doubles its way to the full window. Under fh->ra_lock.
 */
static uint64_t fs_pf_ahead(const struct fs *fs, const struct fs_handle *fh)
{
    uint64_t sub = fh->ra_next - fh->ra_sub_start;

    if (!fh->ra_sub_avg)
        return CMN_MAX(2ull * fs->conf->block_size, FS_PF_RAMP * sub);
    if (fh->ra_sub_start + fh->ra_sub_avg > fh->ra_next)
        return fh->ra_sub_start + fh->ra_sub_avg - fh->ra_next;
    return sub - fh->ra_sub_avg;
}

/* A prefetched block @e no read used: counted, with its bytes (what S3 or the disk tier
 * delivered for nothing). */
static void fs_pf_count_wasted(struct fs *fs, const struct hc_entry *e)
{
    __atomic_add_fetch(&fs->ctr.prefetch_wasted, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&fs->ctr.prefetch_wasted_bytes, hc_entry_len(e), __ATOMIC_RELAXED);
}

/* Let go of a held block, counting whether a read used it. Under fh->ra_lock. */
static void fs_pf_drop(struct fs *fs, struct fs_pf_held *h)
{
    if (!h->e)
        return;
    if (h->used)
        __atomic_add_fetch(&fs->ctr.prefetch_used, 1, __ATOMIC_RELAXED);
    else
        fs_pf_count_wasted(fs, h->e);
    hc_entry_put(h->e);
    h->e = NULL;
}

/* Drop every held block (a seek, or the release). Under fh->ra_lock. */
void fs_pf_drop_all(struct fs *fs, struct fs_handle *fh)
{
    for (uint64_t i = 0; fh->ra_held && i <= fh->ra_held_mask; i++)
        fs_pf_drop(fs, &fh->ra_held[i]);
    fh->ra_held_low = 0;
}

/* Whether @off lands within a page header's room of @at (0: nowhere): BACKFILL. */
static bool fs_pf_at_header(uint64_t off, uint64_t at)
{
    return at && off + FS_PF_HEADER_MAX >= at && off <= at + FS_PF_HEADER_MAX;
}

/* How far behind the run's end a read still continues it. */
static uint64_t fs_pf_back(const struct fs *fs)
{
    return CMN_MAX(FS_PF_BACK_MIN, 2 * fs->conf->read_ahead);
}

/* Blocks below this the reader has passed for good. Under fh->ra_lock. */
static uint64_t fs_pf_floor(const struct fs *fs, const struct fs_handle *fh)
{
    uint64_t back = fs_pf_back(fs);
    return (fh->ra_next > back ? fh->ra_next - back : 0) / fs->conf->block_size;
}

/* Keep @e (block @blk, prefetched in run @gen) for the reader; the reference passes. */
static void fs_pf_hold(struct fs *fs, struct fs_handle *fh, uint64_t gen, uint64_t blk,
                       struct hc_entry *e)
{
    struct fs_pf_held *h;

    pthread_mutex_lock(&fh->ra_lock);
    h = fh->ra_held ? &fh->ra_held[blk & fh->ra_held_mask] : NULL;
    /* A read that asked for the block while its prefetch was in flight joined the flight
     * (fs_pf_take left a mark): the prefetch was used, though nobody takes the hold. */
    bool seen = h && !h->e && h->blk == blk && h->used;
    if (!h || gen != fh->ra_gen || blk < fs_pf_floor(fs, fh)) {
        pthread_mutex_unlock(&fh->ra_lock);
        if (seen)
            __atomic_add_fetch(&fs->ctr.prefetch_used, 1, __ATOMIC_RELAXED);
        else
            fs_pf_count_wasted(fs, e);
        hc_entry_put(e);
        return;
    }
    fs_pf_drop(fs, h); /* a block a full ring ahead: the ring is sized so this is rare */
    *h = (struct fs_pf_held){.e = e, .blk = blk, .used = seen};
    pthread_mutex_unlock(&fh->ra_lock);
}

/* A held prefetched block for a read: @return a new reference, or NULL. */
struct hc_entry *fs_pf_take(struct fs_handle *fh, uint64_t blk)
{
    struct hc_entry *e = NULL;

    pthread_mutex_lock(&fh->ra_lock);
    if (fh->ra_held) {
        struct fs_pf_held *h = &fh->ra_held[blk & fh->ra_held_mask];
        if (h->e && h->blk == blk) {
            e = h->e;
            hc_entry_ref(e);
            h->used = true;
        } else if (!h->e) {
            /* not held (yet): mark that a read wanted it, for fs_pf_hold's count */
            *h = (struct fs_pf_held){.blk = blk, .used = true};
        }
    }
    pthread_mutex_unlock(&fh->ra_lock);
    return e;
}

/* The prefetch of one block is over: hold the block for the reader. */
static void fs_pf_block_done(struct fs_handle *fh, uint64_t gen, uint64_t blk, int result,
                             struct hc_entry *e, enum hc_source src, void *arg)
{
    (void)src;
    (void)arg;
    if (result == 0 && e)
        fs_pf_hold(fh->fs, fh, gen, blk, e);
    else
        hc_entry_put(e);
}

/* Read-ahead of a block that is cached on the disk tier. */
struct fs_pf_near {
    struct fs_handle *fh; /* a reference */
    uint64_t gen, blk;
};

static void fs_pf_near_done(int result, struct hc_entry *e, enum hc_source src, void *arg)
{
    struct fs_pf_near *nr = arg;
    struct fs *fs = nr->fh->fs;

    if (result == 0 && e) {
        if (src == HC_SRC_DISK)
            __atomic_add_fetch(&fs->ctr.prefetch_disk, 1, __ATOMIC_RELAXED);
        fs_pf_hold(fs, nr->fh, nr->gen, nr->blk, e);
    } else {
        hc_entry_put(e);
    }
    fs_handle_put(nr->fh);
    free(nr);
}

/*
 * Hold block @blk, which hc_fetch(IF_ABSENT) says is cached or in flight, for the
 * reader when it is on the disk tier only: read it now, so that a warm sequential
 * reader finds its blocks already read instead of paying one synchronous disk read per
 * block (the window keeps many in flight). NOT_IN_MEM: a block in memory is left alone
 * (no hit counted, and the policy does not see a scan touch it twice). NO_ORIGIN: a
 * block that is not there after all (or is being fetched from S3) is left to the
 * reader. PREFETCH: a disk hit only prefetchers asked for is not promoted to the memory
 * tier; the reference held here keeps it (charged to the budget) until the reader has
 * passed it.
 * @return true when the cache took the fetch.
 */
static bool fs_pf_near(struct fs *fs, struct fs_handle *fh, uint64_t gen, uint64_t blk,
                       const void *key, size_t klen)
{
    struct fs_pf_near *nr = malloc(sizeof(*nr));

    if (!nr)
        return false;
    *nr = (struct fs_pf_near){.fh = fh, .gen = gen, .blk = blk};
    fs_handle_get(fh);
    if (hc_fetch(fs->cache, key, klen, HC_FETCH_NO_ORIGIN | HC_FETCH_PREFETCH | HC_FETCH_NOT_IN_MEM,
                 NULL, NULL, fs_pf_near_done, nr) != 0) {
        fs_handle_put(fh);
        free(nr);
        return false;
    }
    return true;
}

/* A block prefetched alone because pieces of it are cached: the lone fetcher (fs_fetcher)
 * copies those and GETs the rest. */
struct fs_pf_whole {
    struct fs_blk b; /* the fetcher's argument; b.fh is a reference */
    uint64_t gen;
};

static void fs_pf_whole_done(int result, struct hc_entry *e, enum hc_source src, void *arg)
{
    struct fs_pf_whole *w = arg;

    fs_pf_block_done(w->b.fh, w->gen, w->b.blk, result, e, src, NULL);
    fs_handle_put(w->b.fh);
    free(w);
}

/* A window's fetch flags. A page-cache reader's blocks are marked HC_FETCH_STREAM too: the
 * kernel keeps what it reads, so a memory tier without a disk counts them in its unread
 * quota instead of growing by the scan in fresh memory (docs/hybridcache.md). */
static unsigned fs_pf_flags(const struct fs_handle *fh)
{
    return HC_FETCH_PREFETCH | HC_FETCH_IF_ABSENT | (fs_fh_kept(fh) ? HC_FETCH_STREAM : 0);
}

/* @return 0 (the cache took it), -EEXIST (cached or in flight) or another -errno. */
static int fs_pf_whole(struct fs *fs, struct fs_handle *fh, uint64_t gen, uint64_t blk,
                       const void *key, size_t klen)
{
    struct fs_pf_whole *w = malloc(sizeof(*w));
    int rc;

    if (!w)
        return -ENOMEM;
    *w = (struct fs_pf_whole){.b = {.fh = fh, .blk = blk}, .gen = gen};
    fs_handle_get(fh);
    rc = hc_fetch(fs->cache, key, klen, fs_pf_flags(fh), fs_fetcher, &w->b, fs_pf_whole_done, w);
    if (rc != 0) {
        fs_handle_put(fh);
        free(w);
    }
    return rc;
}

/* Whether block @blk is already held for the reader (its read-ahead was issued). */
static bool fs_pf_is_held(struct fs_handle *fh, uint64_t blk)
{
    bool held = false;

    pthread_mutex_lock(&fh->ra_lock);
    if (fh->ra_held) {
        struct fs_pf_held *h = &fh->ra_held[blk & fh->ra_held_mask];
        held = h->e && h->blk == blk;
    }
    pthread_mutex_unlock(&fh->ra_lock);
    return held;
}

/*
 * Prefetch blocks [first, first + n): consecutive blocks that are nowhere in the cache
 * go in groups of at most conf.prefetch_max_request, one GET each; blocks that are
 * cached are read ahead from the disk tier (fs_pf_near) below block @disk_end only; at
 * the first one past it the issue stops, to resume from there on a later read.
 * @return blocks the cache accepted; *stopped_at the first block not handled (else
 * first + n), *nomem whether it stopped because memory ran out (a flight had to wait
 * for the budget).
 */
static uint64_t fs_pf_issue(struct fs *fs, struct fs_handle *fh, uint64_t gen, uint64_t first,
                            uint64_t n, uint64_t disk_end, uint64_t *stopped_at, bool *nomem)
{
    uint64_t bs = fs->conf->block_size;
    unsigned per = (unsigned)CMN_MAX(fs->conf->prefetch_max_request / bs, 1);
    struct fs_grp *g = NULL;
    uint8_t key[HC_KEY_MAX];
    uint64_t accepted = 0, b;

    *nomem = true; /* every early break but one below is for want of memory */
    for (b = first; b < first + n; b++) {
        size_t klen = fs_block_key(fs, fh->key, fh->ctag, b, key, sizeof(key));
        if (!klen)
            break;
        bool alone = fs_pieces_cached(fs, fh, b); /* completed from them: its own fetch */
        if (alone && g) {
            fs_grp_submit(g);
            g = NULL;
        }
        if (!alone && !g &&
            !(g = fs_grp_new(fh, b, (unsigned)CMN_MIN(per, first + n - b), (uint32_t)bs, gen)))
            break;
        int rc = alone ? fs_pf_whole(fs, fh, gen, b, key, klen)
                       : fs_grp_add(g, key, klen, fs_pf_flags(fh), fs_pf_block_done, NULL);
        if (alone && rc == 0) {
            accepted++;
            continue;
        }
        if (rc < 0) {
            /* Cached, in flight or no memory: the group ends before this block; an
             * empty one moves on to the next block. */
            if (rc == -EEXIST && b >= disk_end) {
                *nomem = false; /* a cached block too far ahead to read from disk yet */
                break;
            }
            if (rc == -EEXIST && !fs_pf_is_held(fh, b) && fs_pf_near(fs, fh, gen, b, key, klen))
                accepted++;
            if (!g)
                continue;
            if (fs_grp_count(g) == 0) {
                fs_grp_skip(g);
                continue;
            }
            fs_grp_submit(g);
            g = NULL;
            continue;
        }
        accepted++;
        if (rc == 0) {
            /* The flight waits for memory (the budget is pinned by readers and
             * flights), or ended already: stop here and let the window back off. */
            fs_grp_submit(g);
            g = NULL;
            b++;
            break;
        }
        if (fs_grp_full(g)) {
            fs_grp_submit(g);
            g = NULL;
        }
    }
    if (g)
        fs_grp_submit(g);
    *stopped_at = b;
    return accepted;
}

/* A read at @off that does not continue the run (a seek): a new run starts. Takes fh->ra_lock
 * held, releases it. */
static void fs_pf_seek_unlock(struct fs *fs, struct fs_handle *fh, uint64_t off, uint64_t end,
                              uint64_t reach, uint64_t max_window)
{
    uint64_t bs = fs->conf->block_size;
    bool skip = fs_pf_is_skip(fs, fh, off);
    bool pieces = fs_pf_piecewise(fs, fh, off, false, skip);
    /* A seek after a short stretch, by a handle that does not skip: a random reader's (a
     * column reader's stretches hold a header and a chunk at least). */
    bool random = fh->ra_sub_bytes < FS_PF_STRETCH_MIN && !fh->ra_skips && !pieces;

    if (off > fh->ra_next)
        fh->ra_gap_lo = fh->ra_next; /* BACKFILL */
    if (skip) {                      /* a forward skip past the window */
        fh->ra_skips++;
        __atomic_add_fetch(&fs->ctr.read_skips, 1, __ATOMIC_RELAXED);
    } else {
        /* Any other seek (backward, or after a stretch of one read or with gaps in it: a
         * random reader's) halves the evidence: a random reader whose two reads fell
         * close together once does not read pieces for long. */
        fh->ra_skips /= 2;
    }
    if (fh->ra_run_reads > 0)
        fs_pf_stretch_end(fh, off);
    else
        fh->ra_sub_start = fh->ra_piece_end = off;
    if (fh->ra_run_reads == 0) /* a first read past pages others read is a scan's */
        fh->ra_mid = (off > 0 || fh->columnar) &&
                     (!fh->page_cache || off < bs || fs_pf_gap_unread(fs, fh, off / bs - 1));
    fs_pf_drop_all(fs, fh);
    fh->ra_gen++;
    fh->ra_next = reach;
    fh->ra_held_low = fs_pf_floor(fs, fh);
    fh->ra_run_bytes = end - off;
    fh->ra_run_reads = 1;
    fh->ra_sub_reads = 1;
    fh->ra_sub_bytes = end - off;
    fh->ra_window = 0;
    fh->ra_issued = 0;
    if (pieces)
        fs_pf_stretch_unlock(fs, fh, max_window);
    else
        pthread_mutex_unlock(&fh->ra_lock);
    if (random)
        fs_dense_read(fs, fh, off);
}

/* Follow the handle's access pattern; while it is sequential keep the window in flight. */
void fs_prefetch(struct fs *fs, struct fs_handle *fh, uint64_t off, uint64_t end, uint64_t reach)
{
    uint64_t bs = fs->conf->block_size;
    uint64_t max_window =
        CMN_MIN(fs->conf->prefetch_window, hc_mem_budget(fs->cache) / FS_PF_BUDGET_SHARE);
    uint64_t nblocks = (fh->size + bs - 1) / bs;
    uint64_t back = fs_pf_back(fs);
    uint64_t start, target, chunk, got, stop, gen, floor, disk_end, ahead;
    bool nomem;

    if (fs->conf->prefetch_window == 0)
        return;
    max_window = CMN_MAX(max_window, bs);
    pthread_mutex_lock(&fh->ra_lock);
    bool backfill = fh->own_reads && fh->ra_run_reads > 0 && off < fh->ra_next &&
                    (fs_pf_at_header(off, fh->ra_gap_lo) || fs_pf_at_header(off, fh->ra_bf_next));
    if (backfill) {
        fh->ra_refilled = true;
        fh->ra_skips = 0;
        fh->ra_gap_lo = 0;    /* one backfill per jump */
        fh->ra_bf_next = end; /* its next read goes on from here */
    }
    bool seq = fh->ra_run_reads > 0 && (backfill || off + back >= fh->ra_next) &&
               off <= fh->ra_next + CMN_MAX(fh->ra_window, 2 * bs);
    if (!seq) {
        fs_pf_seek_unlock(fs, fh, off, end, reach, max_window);
        return;
    }
    bool skip = fs_pf_is_skip(fs, fh, off);
    bool pieces = fs_pf_piecewise(fs, fh, off, true, skip);
    if (off > fh->ra_next + fs_pf_jump_min(fs))
        fh->ra_gap_lo = fh->ra_next; /* BACKFILL */
    if (skip || off > fh->ra_next + fs_pf_skip_min(fs)) {
        /* A skip, or any jump past fs_pf_skip_min, ends the stretch (the blocks it skipped
         * go below: the floor moves); only a skip over bytes not read counts as one. */
        fs_pf_stretch_end(fh, off);
        if (skip) {
            fh->ra_skips++;
            __atomic_add_fetch(&fs->ctr.read_skips, 1, __ATOMIC_RELAXED);
        }
    } else if (!backfill && !fs_pf_contiguous(fh, off)) {
        fh->ra_sub_gappy = true; /* a random reader's near reads */
    }
    fh->ra_sub_reads++;
    fh->ra_sub_bytes += end - off;
    fh->ra_next = CMN_MAX(fh->ra_next, reach);
    fh->ra_run_bytes += end - off;
    fh->ra_run_reads++;
    floor = fs_pf_floor(fs, fh);
    for (; fh->ra_held && fh->ra_held_low < floor; fh->ra_held_low++) {
        struct fs_pf_held *h = &fh->ra_held[fh->ra_held_low & fh->ra_held_mask];
        if (h->e && h->blk == fh->ra_held_low)
            fs_pf_drop(fs, h);
    }
    if (pieces) {
        fs_pf_stretch_unlock(fs, fh, max_window);
        return;
    }
    if (fh->ra_run_bytes < FS_PF_MIN_RUN) {
        pthread_mutex_unlock(&fh->ra_lock);
        return;
    }
    if (!fh->ra_held) {
        /* Room for every block from the floor to the end of the largest window, or for
         * every block of a small file (no two of them share a slot then either). */
        uint64_t n = 4;
        while (n < CMN_MIN((max_window + back + fs->conf->prefetch_max_request) / bs + 4, nblocks))
            n *= 2;
        fh->ra_held = calloc(n, sizeof(*fh->ra_held));
        fh->ra_held_mask = fh->ra_held ? n - 1 : 0;
        fh->ra_held_low = floor;
    }
    if (fh->ra_window == 0) {
        fh->ra_window = CMN_MIN(CMN_MAX(FS_PF_START_WINDOW, 2 * bs), max_window);
        fh->ra_grow_at = fh->ra_next + fh->ra_window / 4;
        fh->ra_held_low = floor;
    } else if (fh->ra_next >= fh->ra_grow_at && fh->ra_window < max_window) {
        fh->ra_window = CMN_MIN(2 * fh->ra_window, max_window);
        fh->ra_grow_at = fh->ra_next + fh->ra_window / 4;
    }
    /* A scan that reads out of order (BACKFILL) reads what it jumps over, or another
     * handle does (DuckDB's threads take row groups in turn): the whole window ahead. */
    ahead = fh->ra_refilled ? fh->ra_window : CMN_MIN(fh->ra_window, fs_pf_ahead(fs, fh));
    start = CMN_MAX(fh->ra_issued, (fh->ra_next + bs - 1) / bs);
    target = CMN_MIN((fh->ra_next + ahead + bs - 1) / bs, nblocks);
    /* Top up in pieces of a whole request (half of what is ahead while that is small), so
     * that the GETs stay large: the window refills request by request, not block by
     * block. */
    chunk = CMN_MAX(CMN_MIN(fs->conf->prefetch_max_request, ahead / 2) / bs, 1);
    if (start >= target || (target - start < chunk && target < nblocks)) {
        pthread_mutex_unlock(&fh->ra_lock);
        return;
    }
    fh->ra_issued = target;
    gen = fh->ra_gen;
    disk_end = (fh->ra_next + CMN_MAX(FS_PF_DISK_AHEAD, 2 * bs) + bs - 1) / bs;
    pthread_mutex_unlock(&fh->ra_lock);

    got = fs_pf_issue(fs, fh, gen, start, target - start, disk_end, &stop, &nomem);
    __atomic_add_fetch(&fs->ctr.prefetch_issued, got, __ATOMIC_RELAXED);
    pthread_mutex_lock(&fh->ra_lock);
    if (stop < target && gen == fh->ra_gen) {
        if (fh->ra_issued == target)
            fh->ra_issued = stop;
        if (nomem) {
            /* A flight waited for memory: the budget is pinned by readers and flights. */
            fh->ra_window = CMN_MAX(fh->ra_window / 2, CMN_MIN(2 * bs, max_window));
            fh->ra_grow_at = fh->ra_next + fh->ra_window;
        }
    }
    pthread_mutex_unlock(&fh->ra_lock);
}

/* How a read at @off relates to the handle's sequential run. A lone read asks the cache
 * for its bytes only (hc_fetch_range): a disk hit reads a few chunks instead of the whole
 * block and does not promote it; a run reads whole blocks. A stream's blocks stay in the
 * kernel's page cache (unless direct_io), so its hits do not make them hot in the memory
 * tier (HC_FETCH_STREAM): a long scan then recycles a few block buffers there instead of
 * filling the tier with a second copy of what it read (fresh memory for every block). */
enum fs_read_kind fs_read_kind(struct fs *fs, struct fs_handle *fh, uint64_t off, bool *pieces)
{
    enum fs_read_kind kind = FS_RD_LONE;
    uint64_t win;

    pthread_mutex_lock(&fh->ra_lock);
    win = CMN_MAX(fh->ra_window, 2ull * fs->conf->block_size);
    if (fh->ra_run_reads > 0 && off + fs_pf_back(fs) >= fh->ra_next && off <= fh->ra_next + win)
        kind = fh->ra_window && fs_fh_kept(fh) ? FS_RD_STREAM : FS_RD_RUN;
    *pieces = fs->conf->prefetch_window &&
              fs_pf_piecewise(fs, fh, off, kind != FS_RD_LONE, fs_pf_is_skip(fs, fh, off));
    pthread_mutex_unlock(&fh->ra_lock);
    return kind;
}
