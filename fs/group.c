/* SPDX-License-Identifier: Apache-2.0 */
/*
 * group.c: consecutive units of an object (whole blocks, or the pieces of fs/piece.c) read
 * with ONE ranged GET whose body is scattered straight into the units' own cache buffers
 * (objstore req.iov): no staging buffer, no copy, and the only memory charged is the
 * flights' own (each unit once, by the cache). Every unit is an ordinary hc_fetch whose
 * fetcher runs inside hc_fetch when the flight gets its buffer at once and parks the
 * buffer for the GET; as the body arrives (objstore progress callback) each unit whose
 * last byte landed completes its flight, so a reader waiting for unit N wakes then, not
 * when the whole GET ends (and a reader that wants it while it is in flight joins the
 * flight: never a second GET). A flight that has to wait for memory ends the group; its
 * fetcher, when it runs later, GETs that unit alone (fs_fetcher).
 *
 * With the fleet tier, the blocks of a group are looked up there first (one multi-get);
 * the ones it has are copied from it and each run of consecutive blocks it lacks is one
 * GET. Pieces never go to the fleet (its values are whole blocks).
 *
 * Used by prefetch.c (blocks ahead of a sequential reader, pieces ahead of a skipping one)
 * and read.c (the pieces of a skipping reader's own reads).
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "common/log.h"
#include "common/util.h"
#include "fs/fs_i.h"
#include "fs/read_i.h"
#include "hybridcache/fleet.h"
#include "hybridcache/hybridcache.h"

/* One unit of a group: the cache's flight for it calls our fetcher with ctx and buf. */
struct fs_grp_slot {
    struct fs_grp *g;
    uint64_t idx;        /* the unit's index in the object (block or piece) */
    fs_grp_done_fn done; /* the adder's, called when the unit's fetch is over */
    void *done_arg;
    struct hc_flight *ctx; /* protected by g->lock: the fetcher ran, not completed */
    void *buf;             /* the flight's buffer (with ctx): the GET fills it */
    bool get;              /* with the fleet: its first answer was "fetch it" */
};

/* n consecutive units: see the top of the file. */
struct fs_grp {
    struct fs_handle *fh;      /* a reference */
    int refs;                  /* atomic: the issuer, each GET, each accepted hc_fetch, the fleet */
    pthread_mutex_t lock;      /* protects the fields marked so and the slots' ctx/buf */
    uint64_t first;            /* first unit */
    uint32_t unit;             /* bytes per unit: the block size, or the piece size */
    bool piece;                /* units are pieces (piece keys, no fleet tier) */
    unsigned cap, n;           /* slots allocated / units in the group */
    uint64_t off;              /* first byte */
    uint64_t gen;              /* the adder's (prefetch: fh->ra_gen when issued) */
    bool closed;               /* n is final: a fetcher of slot n (or later) runs alone */
    bool batch_over;           /* the fleet's first answers are in; protected by lock */
    struct iovec *iov;         /* n segments: the slots' buffers, for req.iov */
    struct hc_fleet_req *fr;   /* with the fleet: one request per slot */
    struct hc_fleet_req **frp; /* pointers to them, for hc_fleet_lookup */
    struct fs_grp_slot slots[];
};

/* One ranged GET of slots [from, to) of a group. */
struct fs_grp_run {
    struct objstore_req req;
    struct fs_grp *g;
    unsigned from, to;
    unsigned next; /* slots below were completed; protected by g->lock */
    uint64_t off;  /* first byte */
    size_t len;
};

static void fs_grp_put(struct fs_grp *g)
{
    if (__atomic_sub_fetch(&g->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    fs_handle_put(g->fh);
    pthread_mutex_destroy(&g->lock);
    free(g->fr);
    free(g->frp);
    free(g);
}

/* Bytes of unit @i of @g (the object's last unit may be short). */
static size_t fs_grp_ulen(const struct fs_grp *g, unsigned i)
{
    uint64_t u = g->unit, off = (g->first + i) * u;
    return (size_t)CMN_MIN(u, g->fh->size - off);
}

/* Where unit @i ends in the body of the GET @r. */
static size_t fs_grp_uend(const struct fs_grp_run *r, unsigned i)
{
    const struct fs_grp *g = r->g;
    return (size_t)((g->first + i) * g->unit - r->off) + fs_grp_ulen(g, i);
}

/* Block @i of @g is in (@ok) or failed: its flight completes; with the fleet tier its
 * bytes go there (from the cache entry they became) or its lease goes. */
static void fs_grp_complete(struct fs_grp *g, unsigned i, bool ok, int err)
{
    struct fs_grp_slot *sl = &g->slots[i];

    if (g->piece && ok) {
        __atomic_add_fetch(&g->fh->fs->ctr.piece_fetches, 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&g->fh->fs->ctr.piece_bytes, fs_grp_ulen(g, i), __ATOMIC_RELAXED);
    }
    fs_fleet_complete(g->fh->fs, g->fr ? &g->fr[i] : NULL, sl->ctx,
                      ok ? (ssize_t)fs_grp_ulen(g, i) : (err ? err : -EIO));
}

/*
 * Complete the flights of the units of @r whose bytes have all landed (@valid bytes of
 * the body), or, once the GET is over (@ended), every remaining one with @err. The slots
 * passed here (next moves over them under the lock) belong to this call, so each flight
 * is completed exactly once, and as soon as its last byte is in: a reader waiting for
 * unit N wakes then, not when the whole GET ends.
 */
static void fs_grp_deliver(struct fs_grp_run *r, size_t valid, bool ended, int err)
{
    struct fs_grp *g = r->g;
    unsigned from, to;

    pthread_mutex_lock(&g->lock);
    from = r->next;
    for (to = from; to < r->to && (ended || fs_grp_uend(r, to) <= valid); to++)
        ;
    r->next = to;
    pthread_mutex_unlock(&g->lock);
    for (unsigned i = from; i < to; i++)
        fs_grp_complete(g, i, fs_grp_uend(r, i) <= valid, err);
    /* The blocks still on their way keep their fleet leases alive: this GET moves on */
    for (unsigned i = to; g->fr && !ended && i < r->to; i++)
        hc_fleet_progress(g->fh->fs->fleet, &g->fr[i]);
}

/* The run of a GET: the run embeds its request (no lookup through req->arg). */
static struct fs_grp_run *fs_grp_run_of(struct objstore_req *req)
{
    return (struct fs_grp_run *)((char *)req - offsetof(struct fs_grp_run, req));
}

static void fs_grp_progress(struct objstore_req *req, size_t valid)
{
    fs_grp_deliver(fs_grp_run_of(req), valid, false, 0);
}

static void fs_grp_get_done(struct objstore_req *req)
{
    struct fs_grp_run *r = fs_grp_run_of(req);
    struct fs_grp *g = r->g;
    int res = fs_get_check(g->fh, req, r->len);

    /* A failed GET may still have delivered (progress) the blocks that fully landed. */
    fs_grp_deliver(r, res == 0 ? r->len : 0, true, res);
    free(r);
    fs_grp_put(g);
}

/*
 * The cache's fetcher for a unit of a group. While the group is being built the
 * fetcher runs inside hc_fetch (the flight got its buffer at once): park ctx and buf
 * for the GET. A flight that had to wait for memory runs its fetcher later, after the
 * group was closed without it: that unit is read alone, like a reader's miss.
 */
static void fs_grp_fetcher(struct hc_flight *ctx, void *buf, size_t cap, void *arg)
{
    struct fs_grp_slot *sl = arg;
    struct fs_grp *g = sl->g;
    bool alone;

    pthread_mutex_lock(&g->lock);
    alone = g->closed;
    if (!alone) {
        sl->ctx = ctx;
        sl->buf = buf;
    }
    pthread_mutex_unlock(&g->lock);
    if (alone) {
        /* read before fs_fetcher returns */
        struct fs_blk b = {.fh = g->fh, .blk = sl->idx, .unit = g->piece ? g->unit : 0};
        fs_fetcher(ctx, buf, cap, &b);
    }
}

struct fs_grp *fs_grp_new(struct fs_handle *fh, uint64_t first, unsigned cap, uint32_t unit,
                          uint64_t gen)
{
    struct fs_grp *g;

    g = calloc(1, sizeof(*g) + cap * (sizeof(g->slots[0]) + sizeof(g->iov[0])));
    if (!g)
        return NULL;
    g->iov = (struct iovec *)&g->slots[cap];
    g->fh = fh;
    fs_handle_get(fh);
    g->refs = 1; /* the issuer's */
    pthread_mutex_init(&g->lock, NULL);
    g->first = first;
    g->unit = unit;
    g->piece = unit != fh->fs->conf->block_size;
    g->gen = gen;
    g->cap = cap;
    g->off = first * unit;
    return g;
}

/* Start the GET of slots [from, to) of @g (closed); a refused one fails them. */
static void fs_grp_run_start(struct fs_grp *g, unsigned from, unsigned to)
{
    struct fs_handle *fh = g->fh;
    uint64_t u = g->unit;
    struct fs_grp_run *r = calloc(1, sizeof(*r));
    int rc;

    if (!r) {
        for (unsigned i = from; i < to; i++)
            fs_grp_complete(g, i, false, -ENOMEM);
        return;
    }
    *r = (struct fs_grp_run){
        .g = g, .from = from, .to = to, .next = from, .off = (g->first + from) * u};
    r->len = fs_grp_uend(r, to - 1);
    __atomic_add_fetch(&g->refs, 1, __ATOMIC_RELAXED); /* the GET's */
    r->req.op = OBJSTORE_OP_GET;
    r->req.key = fh->key;
    r->req.off = r->off;
    r->req.len = r->len;
    r->req.if_match = fh->etag[0] ? fh->etag : NULL;
    r->req.iov = g->iov + from;
    r->req.iovcnt = to - from;
    r->req.buf_cap = r->len;
    r->req.progress = fs_grp_progress;
    r->req.done = fs_grp_get_done;
    r->req.arg = r;
    if ((rc = objstore_submit(fh->fs->os, &r->req)) != 0) {
        fs_grp_deliver(r, 0, true, rc);
        free(r);
        fs_grp_put(g); /* the GET's */
    }
}

/* The fleet's answer for a block of a group: a hit completes it; "fetch it" marks it for
 * the run GETs after the first answers, or, for a block that waited for another mount's
 * copy past them, GETs it alone. */
static void fs_grp_fleet_done(struct hc_fleet_req *fr, enum hc_fleet_result res)
{
    struct fs_grp *g = fr->arg;
    unsigned i = (unsigned)(fr - g->fr);
    bool late;

    if (res == HC_FLEET_HIT) {
        __atomic_add_fetch(&g->fh->fs->ctr.prefetch_fleet, 1, __ATOMIC_RELAXED);
        hc_fetch_complete(g->slots[i].ctx, (ssize_t)fs_grp_ulen(g, i));
        if (fr->waited)
            fs_grp_put(g); /* the wait's */
        return;
    }
    pthread_mutex_lock(&g->lock);
    late = g->batch_over;
    g->slots[i].get = !late;
    pthread_mutex_unlock(&g->lock);
    if (late) {
        fs_grp_run_start(g, i, i + 1);
        fs_grp_put(g); /* the wait's */
    }
}

/* The fleet's first answers for a group are in: one GET per run of blocks to fetch. Blocks
 * still waiting for another mount hold a reference each until their answer. */
static void fs_grp_fleet_batch(void *arg)
{
    struct fs_grp *g = arg;
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
        fs_grp_run_start(g, i, j);
        i = j;
    }
    fs_grp_put(g); /* the fleet batch's */
}

/* Look the blocks of @g up in the fleet first. @return false when it cannot (the caller
 * GETs them all). */
static bool fs_grp_fleet_lookup(struct fs_grp *g)
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
            .buf = g->slots[i].buf, .len = fs_grp_ulen(g, i), .done = fs_grp_fleet_done, .arg = g};
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
    if (hc_fleet_lookup(fs->fleet, g->frp, g->n, fs_grp_fleet_batch, g) == 0)
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

void fs_grp_submit(struct fs_grp *g)
{
    pthread_mutex_lock(&g->lock);
    g->closed = true;
    pthread_mutex_unlock(&g->lock);
    if (g->n == 0) {
        fs_grp_put(g);
        return;
    }
    for (unsigned i = 0; i < g->n; i++)
        g->iov[i] = (struct iovec){.iov_base = g->slots[i].buf, .iov_len = fs_grp_ulen(g, i)};
    if (g->piece || !g->fh->fs->fleet || !fs_grp_fleet_lookup(g))
        fs_grp_run_start(g, 0, g->n);
    fs_grp_put(g);
}

/* A unit's fetch is over: the adder's callback, then the fetch's group reference goes. */
static void fs_grp_slot_done(int result, struct hc_entry *e, enum hc_source src, void *arg)
{
    struct fs_grp_slot *sl = arg;
    struct fs_grp *g = sl->g;

    sl->done(g->fh, g->gen, sl->idx, result, e, src, sl->done_arg);
    fs_grp_put(g);
}

int fs_grp_add(struct fs_grp *g, const void *key, size_t klen, unsigned flags, fs_grp_done_fn done,
               void *done_arg)
{
    struct hc_cache *cache = g->fh->fs->cache;
    struct fs_grp_slot *sl = &g->slots[g->n];
    bool parked;
    int rc;

    *sl = (struct fs_grp_slot){.g = g, .idx = g->first + g->n, .done = done, .done_arg = done_arg};
    __atomic_add_fetch(&g->refs, 1, __ATOMIC_RELAXED); /* this unit's fetch */
    /* The fetcher runs inside hc_fetch when the flight gets its buffer at once. */
    rc = g->piece ? hc_fetch_sized(cache, key, klen, flags, g->unit, fs_grp_fetcher, sl,
                                   fs_grp_slot_done, sl)
                  : hc_fetch(cache, key, klen, flags, fs_grp_fetcher, sl, fs_grp_slot_done, sl);
    if (rc != 0) {
        __atomic_sub_fetch(&g->refs, 1, __ATOMIC_RELAXED);
        return rc;
    }
    pthread_mutex_lock(&g->lock);
    parked = sl->ctx != NULL;
    if (!parked)
        g->closed = true; /* its fetcher, when the flight starts, reads it alone */
    pthread_mutex_unlock(&g->lock);
    if (parked)
        g->n++;
    return parked ? 1 : 0;
}

unsigned fs_grp_count(const struct fs_grp *g)
{
    return g->n;
}

bool fs_grp_full(const struct fs_grp *g)
{
    return g->n == g->cap;
}

uint64_t fs_grp_next(const struct fs_grp *g)
{
    return g->first + g->n;
}

void fs_grp_skip(struct fs_grp *g)
{
    if (g->n == 0) {
        g->first++;
        g->off = g->first * g->unit;
    }
}
