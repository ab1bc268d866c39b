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
 * file). Blocks are still whole: a chunk costs the blocks it touches.
 *
 * The fetch size is decoupled from the block size: a group of up to
 * conf.prefetch_max_request consecutive missing blocks is read with ONE ranged GET whose
 * body is scattered straight into the blocks' own cache buffers (objstore req.iov): no
 * staging buffer, no copy, and each byte of the window is charged to the budget once,
 * by the cache, as a flight buffer. Every block of a group is an ordinary
 * hc_fetch(HC_FETCH_PREFETCH | HC_FETCH_IF_ABSENT) whose fetcher runs inside hc_fetch
 * when the flight gets its buffer at once and parks the buffer for the GET; as the body
 * arrives (objstore progress callback) each block whose last byte landed completes its
 * flight, so a reader that wants block N while the group is in flight joins N's flight
 * (single-flight: never a second GET) and wakes as soon as N's bytes are in, not when the
 * whole GET ends. A flight that has to wait for memory (the budget is pinned) ends the
 * group; its fetcher, when it runs later, GETs that block alone, and the window is
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

/* ---- prefetch: groups of blocks read with one ranged GET ---- */

struct fs_pf_group;

/* One block of a group: the cache's flight for it calls our fetcher with ctx and buf. */
struct fs_pf_slot {
    struct fs_pf_group *g;
    uint64_t blk;
    struct hc_flight *ctx; /* protected by g->lock: the fetcher ran, not completed */
    void *buf;             /* the flight's block buffer (with ctx): the GET fills it */
    bool get;              /* with the fleet: its first answer was "fetch it" */
};

/*
 * n consecutive blocks whose flights' buffers are filled by ranged GETs scattered straight
 * into them (req.iov): no staging buffer, no copy, and the only memory charged is the
 * flights' own (each block once, by the cache). Without the fleet tier one GET (one run)
 * covers them all; with it, the blocks the fleet has are copied from there and each run of
 * consecutive blocks it lacks is one GET.
 */
struct fs_pf_group {
    struct fs_handle *fh;      /* a reference */
    int refs;                  /* atomic: the issuer, each GET, each accepted hc_fetch, the fleet */
    pthread_mutex_t lock;      /* protects the fields marked so and the slots' ctx/buf */
    uint64_t first;            /* first block */
    unsigned cap, n;           /* slots allocated / blocks in the group */
    uint64_t off;              /* first byte */
    uint64_t gen;              /* fh->ra_gen when issued */
    bool closed;               /* n is final: a fetcher of slot n (or later) runs alone */
    bool batch_over;           /* the fleet's first answers are in; protected by lock */
    struct iovec *iov;         /* n segments: the slots' buffers, for req.iov */
    struct hc_fleet_req *fr;   /* with the fleet: one request per slot */
    struct hc_fleet_req **frp; /* pointers to them, for hc_fleet_lookup */
    struct fs_pf_slot slots[];
};

/* One ranged GET of slots [from, to) of a group. */
struct fs_pf_run {
    struct objstore_req req;
    struct fs_pf_group *g;
    unsigned from, to;
    unsigned next; /* slots below were completed; protected by g->lock */
    uint64_t off;  /* first byte */
    size_t len;
};

static void fs_pf_group_put(struct fs_pf_group *g)
{
    if (__atomic_sub_fetch(&g->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    fs_handle_put(g->fh);
    pthread_mutex_destroy(&g->lock);
    free(g->fr);
    free(g->frp);
    free(g);
}

/* Bytes of block @i of @g (the object's last block may be short). */
static size_t fs_pf_blen(const struct fs_pf_group *g, unsigned i)
{
    uint64_t bs = g->fh->fs->conf->block_size, off = (g->first + i) * bs;
    return (size_t)CMN_MIN(bs, g->fh->size - off);
}

/* Where block @i ends in the body of the GET @r. */
static size_t fs_pf_bend(const struct fs_pf_run *r, unsigned i)
{
    const struct fs_pf_group *g = r->g;
    return (size_t)((g->first + i) * g->fh->fs->conf->block_size - r->off) + fs_pf_blen(g, i);
}

/* Block @i of @g is in (@ok) or failed: with the fleet tier its bytes go there (copied
 * before the buffer becomes the cache's) or its lease goes; then its flight completes. */
static void fs_pf_complete(struct fs_pf_group *g, unsigned i, bool ok, int err)
{
    struct fs_pf_slot *sl = &g->slots[i];
    struct hc_fleet *fleet = g->fh->fs->fleet;

    if (g->fr && ok)
        hc_fleet_store(fleet, &g->fr[i], sl->buf, fs_pf_blen(g, i));
    else if (g->fr)
        hc_fleet_abandon(fleet, &g->fr[i]);
    hc_fetch_complete(sl->ctx, ok ? (ssize_t)fs_pf_blen(g, i) : (err ? err : -EIO));
}

/*
 * Complete the flights of the blocks of @r whose bytes have all landed (@valid bytes of
 * the body), or, once the GET is over (@ended), every remaining one with @err. The slots
 * passed here (next moves over them under the lock) belong to this call, so each flight
 * is completed exactly once, and as soon as its last byte is in: a reader waiting for
 * block N wakes then, not when the whole GET ends.
 */
static void fs_pf_deliver(struct fs_pf_run *r, size_t valid, bool ended, int err)
{
    struct fs_pf_group *g = r->g;
    unsigned from, to;

    pthread_mutex_lock(&g->lock);
    from = r->next;
    for (to = from; to < r->to && (ended || fs_pf_bend(r, to) <= valid); to++)
        ;
    r->next = to;
    pthread_mutex_unlock(&g->lock);
    for (unsigned i = from; i < to; i++)
        fs_pf_complete(g, i, fs_pf_bend(r, i) <= valid, err);
}

/* The run of a GET: the run embeds its request (no lookup through req->arg). */
static struct fs_pf_run *fs_pf_run_of(struct objstore_req *req)
{
    return (struct fs_pf_run *)((char *)req - offsetof(struct fs_pf_run, req));
}

static void fs_pf_progress(struct objstore_req *req, size_t valid)
{
    fs_pf_deliver(fs_pf_run_of(req), valid, false, 0);
}

static void fs_pf_get_done(struct objstore_req *req)
{
    struct fs_pf_run *r = fs_pf_run_of(req);
    struct fs_pf_group *g = r->g;
    int res = fs_get_check(g->fh, req, r->len);

    /* A failed GET may still have delivered (progress) the blocks that fully landed. */
    fs_pf_deliver(r, res == 0 ? r->len : 0, true, res);
    free(r);
    fs_pf_group_put(g);
}

/*
 * The cache's fetcher for a block of a group. While the group is being built the
 * fetcher runs inside hc_fetch (the flight got its buffer at once): park ctx and buf
 * for the GET. A flight that had to wait for memory runs its fetcher later, after the
 * group was closed without it: that block is read alone, like a reader's miss.
 */
static void fs_pf_fetcher(struct hc_flight *ctx, void *buf, size_t cap, void *arg)
{
    struct fs_pf_slot *sl = arg;
    struct fs_pf_group *g = sl->g;
    bool alone;

    pthread_mutex_lock(&g->lock);
    alone = g->closed;
    if (!alone) {
        sl->ctx = ctx;
        sl->buf = buf;
    }
    pthread_mutex_unlock(&g->lock);
    if (alone) {
        struct fs_blk b = {.fh = g->fh, .blk = sl->blk}; /* read before fs_fetcher returns */
        fs_fetcher(ctx, buf, cap, &b);
    }
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
static void fs_pf_block_done(int result, struct hc_entry *e, enum hc_source src, void *arg)
{
    struct fs_pf_slot *sl = arg;
    struct fs_pf_group *g = sl->g;

    (void)src;
    if (result == 0 && e)
        fs_pf_hold(g->fh->fs, g->fh, g->gen, sl->blk, e);
    else
        hc_entry_put(e);
    fs_pf_group_put(g);
}

/* A group for up to @cap blocks from @first. @return NULL when out of memory. */
static struct fs_pf_group *fs_pf_group_new(struct fs_handle *fh, uint64_t first, unsigned cap)
{
    struct fs_pf_group *g;

    g = calloc(1, sizeof(*g) + cap * (sizeof(g->slots[0]) + sizeof(g->iov[0])));
    if (!g)
        return NULL;
    g->iov = (struct iovec *)&g->slots[cap];
    g->fh = fh;
    fs_handle_get(fh);
    g->refs = 1; /* the issuer's */
    pthread_mutex_init(&g->lock, NULL);
    g->first = first;
    g->cap = cap;
    g->off = first * fh->fs->conf->block_size;
    return g;
}

/* Start the GET of slots [from, to) of @g (closed); a refused one fails them. */
static void fs_pf_run_start(struct fs_pf_group *g, unsigned from, unsigned to)
{
    struct fs_handle *fh = g->fh;
    uint64_t bs = fh->fs->conf->block_size;
    struct fs_pf_run *r = calloc(1, sizeof(*r));
    int rc;

    if (!r) {
        for (unsigned i = from; i < to; i++)
            fs_pf_complete(g, i, false, -ENOMEM);
        return;
    }
    *r = (struct fs_pf_run){
        .g = g, .from = from, .to = to, .next = from, .off = (g->first + from) * bs};
    r->len = fs_pf_bend(r, to - 1);
    __atomic_add_fetch(&g->refs, 1, __ATOMIC_RELAXED); /* the GET's */
    r->req.op = OBJSTORE_OP_GET;
    r->req.key = fh->key;
    r->req.off = r->off;
    r->req.len = r->len;
    r->req.if_match = fh->etag[0] ? fh->etag : NULL;
    r->req.iov = g->iov + from;
    r->req.iovcnt = to - from;
    r->req.buf_cap = r->len;
    r->req.progress = fs_pf_progress;
    r->req.done = fs_pf_get_done;
    r->req.arg = r;
    if ((rc = objstore_submit(fh->fs->os, &r->req)) != 0) {
        fs_pf_deliver(r, 0, true, rc);
        free(r);
        fs_pf_group_put(g); /* the GET's */
    }
}

/* The fleet's answer for a block of a group: a hit completes it; "fetch it" marks it for
 * the run GETs after the first answers, or, for a block that waited for another mount's
 * copy past them, GETs it alone. */
static void fs_pf_fleet_done(struct hc_fleet_req *fr, enum hc_fleet_result res)
{
    struct fs_pf_group *g = fr->arg;
    unsigned i = (unsigned)(fr - g->fr);
    bool late;

    if (res == HC_FLEET_HIT) {
        __atomic_add_fetch(&g->fh->fs->ctr.prefetch_fleet, 1, __ATOMIC_RELAXED);
        hc_fetch_complete(g->slots[i].ctx, (ssize_t)fs_pf_blen(g, i));
        if (fr->waited)
            fs_pf_group_put(g); /* the wait's */
        return;
    }
    pthread_mutex_lock(&g->lock);
    late = g->batch_over;
    g->slots[i].get = !late;
    pthread_mutex_unlock(&g->lock);
    if (late) {
        fs_pf_run_start(g, i, i + 1);
        fs_pf_group_put(g); /* the wait's */
    }
}

/* The fleet's first answers for a group are in: one GET per run of blocks to fetch. Blocks
 * still waiting for another mount hold a reference each until their answer. */
static void fs_pf_fleet_batch(void *arg)
{
    struct fs_pf_group *g = arg;
    unsigned i = 0, waiting = 0;

    pthread_mutex_lock(&g->lock);
    g->batch_over = true;
    for (unsigned k = 0; k < g->n; k++)
        waiting += g->fr[k].waited;
    pthread_mutex_unlock(&g->lock);
    __atomic_add_fetch(&g->refs, (int)waiting, __ATOMIC_RELAXED);
    while (i < g->n) {
        if (!g->slots[i].get) {
            i++;
            continue;
        }
        unsigned j = i;
        while (j < g->n && g->slots[j].get)
            j++;
        fs_pf_run_start(g, i, j);
        i = j;
    }
    fs_pf_group_put(g); /* the fleet batch's */
}

/* Look the blocks of @g up in the fleet first. @return false when it cannot (the caller
 * GETs them all). */
static bool fs_pf_fleet_lookup(struct fs_pf_group *g)
{
    struct fs *fs = g->fh->fs;
    uint8_t id[HC_FLEET_ID_MAX];

    g->fr = calloc(g->n, sizeof(*g->fr));
    g->frp = calloc(g->n, sizeof(*g->frp));
    if (!g->fr || !g->frp)
        goto no;
    for (unsigned i = 0; i < g->n; i++) {
        /* hc_fleet_lookup hashes the id before it returns: one buffer serves all */
        g->fr[i] = (struct hc_fleet_req){
            .buf = g->slots[i].buf, .len = fs_pf_blen(g, i), .done = fs_pf_fleet_done, .arg = g};
        g->frp[i] = &g->fr[i];
    }
    __atomic_add_fetch(&g->refs, 1, __ATOMIC_RELAXED); /* the fleet batch's */
    for (unsigned i = 0; i < g->n; i++) {
        size_t il = fs_fleet_id(fs, g->fh, g->first + i, id, sizeof(id));
        if (!il)
            goto unref;
        g->fr[i].id = id;
        g->fr[i].idlen = il;
        if (hc_fleet_prepare(fs->fleet, &g->fr[i]) != 0)
            goto unref;
    }
    if (hc_fleet_lookup(fs->fleet, g->frp, g->n, fs_pf_fleet_batch, g) == 0)
        return true;
unref:
    __atomic_sub_fetch(&g->refs, 1, __ATOMIC_RELAXED);
no:
    free(g->fr);
    free(g->frp);
    g->fr = NULL;
    g->frp = NULL;
    return false;
}

/* Close @g (a fetcher of a slot past n runs alone from now on) and start the GETs of its
 * n blocks (through the fleet tier when there is one); the issuer's reference goes. */
static void fs_pf_group_submit(struct fs_pf_group *g)
{
    pthread_mutex_lock(&g->lock);
    g->closed = true;
    pthread_mutex_unlock(&g->lock);
    if (g->n == 0) {
        fs_pf_group_put(g);
        return;
    }
    for (unsigned i = 0; i < g->n; i++)
        g->iov[i] = (struct iovec){.iov_base = g->slots[i].buf, .iov_len = fs_pf_blen(g, i)};
    if (!g->fh->fs->fleet || !fs_pf_fleet_lookup(g))
        fs_pf_run_start(g, 0, g->n);
    fs_pf_group_put(g);
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
    struct fs_pf_group *g = NULL;
    uint8_t key[HC_KEY_MAX];
    uint64_t accepted = 0, b;
    bool parked;

    *nomem = true; /* every early break but one below is for want of memory */
    for (b = first; b < first + n; b++) {
        size_t klen = fs_block_key(fs, fh->key, fh->etag, b, key, sizeof(key));
        if (!klen)
            break;
        if (!g && !(g = fs_pf_group_new(fh, b, (unsigned)CMN_MIN(per, first + n - b))))
            break;
        g->gen = gen;
        struct fs_pf_slot *sl = &g->slots[g->n];
        sl->g = g;
        sl->blk = b;
        __atomic_add_fetch(&g->refs, 1, __ATOMIC_RELAXED); /* this block's fetch */
        /* The fetcher runs inside hc_fetch when the flight gets its buffer at once. */
        int rc = hc_fetch(fs->cache, key, klen, HC_FETCH_PREFETCH | HC_FETCH_IF_ABSENT,
                          fs_pf_fetcher, sl, fs_pf_block_done, sl);
        if (rc != 0) {
            /* Cached, in flight or no memory: the group ends before this block; an
             * empty one moves on to the next block. */
            __atomic_sub_fetch(&g->refs, 1, __ATOMIC_RELAXED);
            if (rc == -EEXIST && b >= disk_end) {
                *nomem = false; /* a cached block too far ahead to read from disk yet */
                break;
            }
            if (rc == -EEXIST && !fs_pf_is_held(fh, b) && fs_pf_near(fs, fh, gen, b, key, klen))
                accepted++;
            if (g->n == 0) {
                g->first = b + 1;
                g->off = (b + 1) * bs;
                continue;
            }
            fs_pf_group_submit(g);
            g = NULL;
            continue;
        }
        accepted++;
        pthread_mutex_lock(&g->lock);
        parked = sl->ctx != NULL;
        if (!parked)
            g->closed = true; /* its fetcher, when the flight starts, reads it alone */
        pthread_mutex_unlock(&g->lock);
        if (!parked) {
            /* The flight waits for memory (the budget is pinned by readers and
             * flights), or ended already: stop here and let the window back off. */
            fs_pf_group_submit(g);
            g = NULL;
            b++;
            break;
        }
        g->n++;
        if (g->n == g->cap) {
            fs_pf_group_submit(g);
            g = NULL;
        }
    }
    if (g)
        fs_pf_group_submit(g);
    *stopped_at = b;
    return accepted;
}

/* Follow the handle's access pattern; while it is sequential keep the window in flight. */
void fs_prefetch(struct fs *fs, struct fs_handle *fh, uint64_t off, uint64_t end)
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
    bool seq = fh->ra_run_reads > 0 && off + back >= fh->ra_next &&
               off <= fh->ra_next + CMN_MAX(fh->ra_window, 2 * bs);
    if (!seq) {
        if (fh->ra_run_reads > 0)
            fs_pf_stretch_end(fh, off);
        else
            fh->ra_sub_start = off;
        fs_pf_drop_all(fs, fh);
        fh->ra_gen++;
        fh->ra_next = end;
        fh->ra_held_low = fs_pf_floor(fs, fh);
        fh->ra_run_bytes = end - off;
        fh->ra_run_reads = 1;
        fh->ra_window = 0;
        fh->ra_issued = 0;
        pthread_mutex_unlock(&fh->ra_lock);
        return;
    }
    if (off > fh->ra_next + fs_pf_skip_min(fs)) {
        fs_pf_stretch_end(fh, off); /* the blocks it skipped go below (the floor moves) */
        __atomic_add_fetch(&fs->ctr.read_skips, 1, __ATOMIC_RELAXED);
    }
    fh->ra_next = CMN_MAX(fh->ra_next, end);
    fh->ra_run_bytes += end - off;
    fh->ra_run_reads++;
    floor = fs_pf_floor(fs, fh);
    for (; fh->ra_held && fh->ra_held_low < floor; fh->ra_held_low++) {
        struct fs_pf_held *h = &fh->ra_held[fh->ra_held_low & fh->ra_held_mask];
        if (h->e && h->blk == fh->ra_held_low)
            fs_pf_drop(fs, h);
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
    ahead = CMN_MIN(fh->ra_window, fs_pf_ahead(fs, fh));
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
enum fs_read_kind fs_read_kind(struct fs *fs, struct fs_handle *fh, uint64_t off)
{
    enum fs_read_kind kind = FS_RD_LONE;
    uint64_t win;

    pthread_mutex_lock(&fh->ra_lock);
    win = CMN_MAX(fh->ra_window, 2ull * fs->conf->block_size);
    if (fh->ra_run_reads > 0 && off + fs_pf_back(fs) >= fh->ra_next && off <= fh->ra_next + win)
        kind = fh->ra_window && fh->page_cache ? FS_RD_STREAM : FS_RD_RUN;
    pthread_mutex_unlock(&fh->ra_lock);
    return kind;
}
