/* SPDX-License-Identifier: Apache-2.0 */
/*
 * handle.c: an open file's pinned version (key, ETag, size) and its references, the
 * cache key of its blocks, and the fetcher the cache calls on a miss: one ranged GET of
 * one block with If-Match, so a changed object fails (ESTALE) and never mixes versions.
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

/* The lists of open handles, one per kind; owned here. */
struct fs_handles {
    pthread_mutex_t lock;                /* protects the lists */
    struct cmn_list open[FS_OPEN_KINDS]; /* of struct fs_open_link, by enum fs_open_kind */
    struct tlog_ratelimit rl_read;       /* read errors, logged once per burst */
};

/* One ranged GET in flight (and, with the fleet tier, its lookup there first). */
struct fs_get {
    struct objstore_req req;
    struct hc_flight *ctx;
    struct fs_handle *fh; /* a reference */
    size_t want;
    uint64_t off;
    void *buf;
    size_t cap;
    bool fleet;             /* fr was looked up in the fleet: store or abandon it */
    struct hc_fleet_req fr; /* with the fleet tier */
    struct hc_fleet_req *frs[1];
};

void fs_handle_get(struct fs_handle *fh)
{
    __atomic_add_fetch(&fh->refs, 1, __ATOMIC_RELAXED);
}

void fs_handle_put(struct fs_handle *fh)
{
    if (__atomic_sub_fetch(&fh->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    /* Unpinned only now, not at release: a page-cache fill still queued stores this
     * version's pages, and until it is done another version must not be opened through
     * the page cache (fs_ns_pin gives it direct_io instead). */
    if (fh->page_cache)
        fs_ns_unpin(fh->fs, fh->ino);
    if (fh->ctag_used)
        fs_ns_ctag_unuse(fh->fs, fh->ctag_used);
    fs_ns_release(fh->fs, fh->ino);
    free(fh->ra_held); /* emptied at release; nothing is held after it */
    free(fh->dense);
    pthread_mutex_destroy(&fh->ra_lock);
    free(fh);
}

size_t fs_block_key(const struct fs *fs, const char *key, const char *etag, uint64_t blk, void *buf,
                    size_t cap)
{
    /* The format lives in fs/blockkey.c: tierfs-cache warm builds the same keys. */
    return fs_blockkey_build(fs->conf->bucket, fs->conf->block_size, key, etag, blk, buf, cap);
}

size_t fs_piece_key(const struct fs *fs, const struct fs_handle *fh, uint64_t piece, void *buf,
                    size_t cap)
{
    return fs_piecekey_build(fs->conf->bucket, fs->conf->block_size, fh->key, fh->ctag, piece,
                             (uint32_t)fs->conf->partial_grain, buf, cap);
}

/* ---- the fetcher: one ranged GET per cache miss ---- */

/* Check a finished GET of @want bytes for @fh (logged once per burst).
 * @return 0 when every byte came, else -errno. */
int fs_get_check(struct fs_handle *fh, const struct objstore_req *req, size_t want)
{
    int res = req->result;

    TLOG_D("GET '%s' [%llu, +%zu) If-Match %s: %d, ETag %s, %zu bytes", fh->key,
           (unsigned long long)req->off, want, req->if_match ? req->if_match : "(none)", res,
           req->info.etag[0] ? req->info.etag : "(none)", req->got);
    if (res == 0 && req->got != want) {
        res = -EIO;
        tlog_rl_msg(&fh->fs->hs->rl_read, TLOG_ERR, "GET '%s' [%llu, +%zu): got %zu bytes", fh->key,
                    (unsigned long long)req->off, want, req->got);
    } else if (res < 0) {
        tlog_rl_msg(&fh->fs->hs->rl_read, TLOG_ERR, "GET '%s' [%llu, +%zu) failed: %s", fh->key,
                    (unsigned long long)req->off, want,
                    req->errmsg[0] ? req->errmsg : objstore_strerror(res));
        if (res == -ESTALE)
            fs_ns_invalidate(fh->fs, fh->ino); /* the next open HEADs the new version */
    }
    return res;
}

static void fs_get_done(struct objstore_req *req)
{
    struct fs_get *g = req->arg;
    struct fs_handle *fh = g->fh;
    ssize_t res = fs_get_check(fh, req, g->want);

    if (res == 0)
        res = (ssize_t)req->got;
    fs_fleet_complete(fh->fs, g->fleet ? &g->fr : NULL, g->ctx, res);
    fs_handle_put(fh);
    free(g);
}

static void fs_fleet_entry_put(void *e)
{
    hc_entry_put(e);
}

void fs_fleet_complete(struct fs *fs, struct hc_fleet_req *fr, struct hc_flight *ctx, ssize_t res)
{
    struct hc_entry *e = NULL;

    if (!fr) {
        hc_fetch_complete(ctx, res);
        return;
    }
    if (res <= 0) {
        hc_fleet_abandon(fs->fleet, fr);
        hc_fetch_complete(ctx, res);
        return;
    }
    /* The store threads read the entry the bytes became (a reference, not a copy of every
     * block: docs/fleet.md); the lease goes with the store. */
    hc_fetch_complete_ref(ctx, res, &e);
    if (e && hc_entry_off(e) == 0 && hc_entry_len(e) == (size_t)res) {
        hc_fleet_store(fs->fleet, fr, hc_entry_data(e), (size_t)res, fs_fleet_entry_put, e);
    } else {
        hc_entry_put(e);
        hc_fleet_abandon(fs->fleet, fr);
    }
}

/* Submit @g's GET (the handle reference is taken); a refused one completes the flight. */
static void fs_get_submit(struct fs_get *g)
{
    struct fs_handle *fh = g->fh;
    int rc;

    g->req = (struct objstore_req){.op = OBJSTORE_OP_GET,
                                   .key = fh->key,
                                   .off = g->off,
                                   .len = g->want,
                                   .if_match = fh->etag[0] ? fh->etag : NULL,
                                   .buf = g->buf,
                                   .buf_cap = g->cap,
                                   .done = fs_get_done,
                                   .arg = g};
    if ((rc = objstore_submit(fh->fs->os, &g->req)) != 0) {
        if (g->fleet)
            hc_fleet_abandon(fh->fs->fleet, &g->fr);
        hc_fetch_complete(g->ctx, rc);
        fs_handle_put(fh);
        free(g);
    }
}

/* The fleet's answer for a lone block: its bytes, or go to S3. */
static void fs_get_fleet_done(struct hc_fleet_req *r, enum hc_fleet_result res)
{
    struct fs_get *g = r->arg;

    if (res == HC_FLEET_HIT) {
        hc_fetch_complete(g->ctx, (ssize_t)g->want);
        fs_handle_put(g->fh);
        free(g);
        return;
    }
    fs_get_submit(g);
}

size_t fs_fleet_id(const struct fs *fs, const struct fs_handle *fh, uint64_t blk, uint8_t *buf,
                   size_t cap)
{
    size_t il = strlen(fs->cache_identity) + 1;

    if (il >= cap)
        return 0;
    memcpy(buf, fs->cache_identity, il); /* endpoint and bucket, then the block key */
    size_t kl = fs_block_key(fs, fh->key, fh->etag, blk, buf + il, cap - il);
    return kl ? il + kl : 0;
}

/* ---- a block completed from its pieces ---- */

/* A block assembled from its cached pieces and GETs of the ranges they lack. */
struct fs_asm {
    struct hc_flight *ctx;
    struct fs_handle *fh; /* a reference */
    char *buf;            /* the flight's buffer */
    uint64_t off;         /* the block's first byte in the object */
    size_t want;
    int pending; /* atomic: parts not done */
    int err;     /* atomic: first error */
};

/* One GET of a range of the block: a run of pieces nobody holds, or a joined piece that
 * missed after all. */
struct fs_asm_get {
    struct objstore_req req;
    struct fs_asm *a;
    size_t plen; /* a joined piece's length; 0 for a run */
    unsigned i;  /* the first piece's index in the block */
};

/* One part of @a is over (@res: 0 or -errno); the last completes the flight. */
static void fs_asm_drop(struct fs_asm *a, int res)
{
    int expected = 0;

    if (res < 0)
        __atomic_compare_exchange_n(&a->err, &expected, res, false, __ATOMIC_ACQ_REL,
                                    __ATOMIC_RELAXED);
    if (__atomic_sub_fetch(&a->pending, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    res = __atomic_load_n(&a->err, __ATOMIC_ACQUIRE);
    hc_fetch_complete(a->ctx, res < 0 ? res : (ssize_t)a->want);
    fs_handle_put(a->fh);
    free(a);
}

static void fs_asm_get_done(struct objstore_req *req)
{
    struct fs_asm_get *ag = req->arg;
    struct fs_asm *a = ag->a;
    int res = fs_get_check(a->fh, req, req->len);

    free(ag);
    fs_asm_drop(a, res);
}

/* GET @len bytes of @a's block from piece @i on into the flight's buffer. Owns @ag. */
static void fs_asm_get(struct fs_asm *a, struct fs_asm_get *ag, unsigned i, size_t len)
{
    uint64_t at = (uint64_t)i * a->fh->fs->conf->partial_grain;

    ag->a = a;
    ag->i = i;
    ag->req = (struct objstore_req){.op = OBJSTORE_OP_GET,
                                    .key = a->fh->key,
                                    .off = a->off + at,
                                    .len = len,
                                    .if_match = a->fh->etag[0] ? a->fh->etag : NULL,
                                    .buf = a->buf + at,
                                    .buf_cap = len,
                                    .done = fs_asm_get_done,
                                    .arg = ag};
    int rc = objstore_submit(a->fh->fs->os, &ag->req);
    if (rc != 0) {
        free(ag);
        fs_asm_drop(a, rc);
    }
}

/* A joined piece is here (copy it) or missed after all (GET its range instead). */
static void fs_asm_join_done(int result, struct hc_entry *e, enum hc_source src, void *arg)
{
    struct fs_asm_get *ag = arg;
    struct fs_asm *a = ag->a;

    (void)src;
    if (result == 0 && e && hc_entry_off(e) == 0 && hc_entry_len(e) == ag->plen) {
        memcpy(a->buf + (uint64_t)ag->i * a->fh->fs->conf->partial_grain, hc_entry_data(e),
               ag->plen);
        hc_entry_put(e);
        free(ag);
        fs_asm_drop(a, 0);
        return;
    }
    hc_entry_put(e);
    fs_asm_get(a, ag, ag->i, ag->plen);
}

bool fs_pieces_cached(struct fs *fs, const struct fs_handle *fh, uint64_t blk)
{
    uint64_t grain = fs->conf->partial_grain, bs = fs->conf->block_size;
    uint8_t key[HC_KEY_MAX];

    if (!grain || blk * bs >= fh->size || !__atomic_load_n(&fh->ino->had_pieces, __ATOMIC_RELAXED))
        return false;
    uint64_t p0 = blk * bs / grain, p1 = (CMN_MIN((blk + 1) * bs, fh->size) + grain - 1) / grain;
    for (uint64_t p = p0; p < p1; p++) {
        size_t kl = fs_piece_key(fs, fh, p, key, sizeof(key));
        if (kl && hc_contains(fs->cache, key, kl))
            return true;
    }
    return false;
}

/* Where piece @i of a block stands for its assembly. */
enum fs_asm_have { FS_ASM_NONE, FS_ASM_COPIED, FS_ASM_JOIN };

/*
 * Block @blk of @fh is fetched whole (a reader that does not skip wants it) while pieces
 * of it a skipping reader fetched earlier are cached or being fetched: copy those in
 * memory into @buf, join those in flight or on the disk tier (single-flight: several
 * readers of one file, one of them taken for a column reader for a while, pay each byte
 * once), and GET only the ranges nobody holds, one GET per range (none when every piece
 * is there). The S3 bytes of a column query are not paid twice when a scan follows it.
 * @return true when it took the flight; false: no piece is cached (GET it all).
 */
static bool fs_fetch_assemble(struct hc_flight *ctx, void *buf, struct fs_handle *fh, uint64_t blk,
                              size_t want)
{
    struct fs *fs = fh->fs;
    uint64_t grain = fs->conf->partial_grain, off = blk * fs->conf->block_size;
    unsigned np = (unsigned)((want + grain - 1) / grain), have = 0, parts = 0;
    uint8_t key[HC_KEY_MAX];
    enum fs_asm_have st[np];

    for (unsigned i = 0; i < np; i++) {
        size_t kl = fs_piece_key(fs, fh, off / grain + i, key, sizeof(key));
        struct hc_entry *e = kl ? hc_get(fs->cache, key, kl) : NULL;
        size_t plen = (size_t)CMN_MIN(grain, want - i * grain);
        st[i] = FS_ASM_NONE;
        if (e && hc_entry_off(e) == 0 && hc_entry_len(e) == plen) {
            memcpy((char *)buf + i * grain, hc_entry_data(e), plen);
            st[i] = FS_ASM_COPIED;
        } else if (kl && hc_contains(fs->cache, key, kl)) {
            st[i] = FS_ASM_JOIN;
        }
        hc_entry_put(e);
        have += st[i] != FS_ASM_NONE;
        parts +=
            st[i] == FS_ASM_JOIN || (st[i] == FS_ASM_NONE && (i == 0 || st[i - 1] != FS_ASM_NONE));
    }
    if (!have)
        return false;
    struct fs_asm *a = calloc(1, sizeof(*a));
    if (!a)
        return false;
    *a = (struct fs_asm){
        .ctx = ctx, .fh = fh, .buf = buf, .off = off, .want = want, .pending = (int)parts + 1};
    fs_handle_get(fh);
    __atomic_add_fetch(&fs->ctr.piece_assembled, 1, __ATOMIC_RELAXED);
    for (unsigned i = 0, j; i < np; i = j) {
        j = i + 1;
        if (st[i] == FS_ASM_COPIED)
            continue;
        while (st[i] == FS_ASM_NONE && j < np && st[j] == FS_ASM_NONE)
            j++; /* a run nobody holds: one GET */
        size_t len = (size_t)CMN_MIN((uint64_t)(j - i) * grain, want - i * grain);
        struct fs_asm_get *ag = calloc(1, sizeof(*ag));
        if (!ag) {
            fs_asm_drop(a, -ENOMEM);
            continue;
        }
        if (st[i] == FS_ASM_NONE) {
            fs_asm_get(a, ag, i, len);
            continue;
        }
        *ag = (struct fs_asm_get){.a = a, .i = i, .plen = len};
        size_t kl = fs_piece_key(fs, fh, off / grain + i, key, sizeof(key));
        /* Joined, never fetched from here: one that left in between is GOT by
         * fs_asm_join_done. */
        int rc = hc_fetch_sized(fs->cache, key, kl,
                                HC_FETCH_NO_ORIGIN | HC_FETCH_JOIN | HC_FETCH_PREFETCH,
                                (size_t)grain, NULL, NULL, fs_asm_join_done, ag);
        if (rc != 0)
            fs_asm_join_done(rc, NULL, HC_SRC_ORIGIN, ag);
    }
    fs_asm_drop(a, 0); /* the issuer's part */
    return true;
}

void fs_fetcher(struct hc_flight *ctx, void *buf, size_t cap, void *arg)
{
    const struct fs_blk *b = arg;
    struct fs_handle *fh = b->fh;
    struct fs *fs = fh->fs;
    uint64_t bs = b->unit ? b->unit : fs->conf->block_size;
    uint64_t off = b->blk * bs;
    struct fs_get *g;

    if (off >= fh->size) {
        hc_fetch_complete(ctx, -EINVAL);
        return;
    }
    size_t want = (size_t)CMN_MIN(bs, fh->size - off);
    if (!b->unit && fs->conf->partial_grain &&
        __atomic_load_n(&fh->ino->had_pieces, __ATOMIC_RELAXED) &&
        fs_fetch_assemble(ctx, buf, fh, b->blk, want))
        return;
    g = calloc(1, sizeof(*g));
    if (!g) {
        hc_fetch_complete(ctx, -ENOMEM);
        return;
    }
    g->ctx = ctx;
    g->fh = fh;
    g->off = off;
    g->want = want;
    g->buf = buf;
    g->cap = cap;
    fs_handle_get(fh);
    if (fs->fleet && !b->unit) { /* the fleet holds whole blocks only */
        uint8_t id[HC_FLEET_ID_MAX];
        g->fr = (struct hc_fleet_req){.id = id,
                                      .idlen = fs_fleet_id(fs, fh, b->blk, id, sizeof(id)),
                                      .buf = buf,
                                      .len = g->want,
                                      .done = fs_get_fleet_done,
                                      .arg = g};
        g->frs[0] = &g->fr;
        g->fleet = true;
        if (hc_fleet_prepare(fs->fleet, &g->fr) == 0 &&
            hc_fleet_lookup(fs->fleet, g->frs, 1, NULL, NULL) == 0)
            return; /* the answer submits the GET, or completes a hit */
        g->fleet = false;
    }
    fs_get_submit(g);
}

/* ---- the lists of open handles (file handles here, directory handles in ops.c) ---- */

int fs_handles_init(struct fs *fs)
{
    fs->hs = calloc(1, sizeof(*fs->hs));
    if (!fs->hs)
        return -ENOMEM;
    pthread_mutex_init(&fs->hs->lock, NULL);
    fs->hs->rl_read = (struct tlog_ratelimit){.interval_ms = 10000, .burst = 1};
    return 0;
}

void fs_handles_fini(struct fs *fs)
{
    if (!fs->hs)
        return;
    pthread_mutex_destroy(&fs->hs->lock);
    free(fs->hs);
    fs->hs = NULL;
}

void fs_open_add(struct fs *fs, enum fs_open_kind kind, struct fs_open_link *l, void *owner)
{
    pthread_mutex_lock(&fs->hs->lock);
    l->owner = owner;
    cmn_list_push_head(&fs->hs->open[kind], &l->link);
    pthread_mutex_unlock(&fs->hs->lock);
}

void fs_open_del(struct fs *fs, enum fs_open_kind kind, struct fs_open_link *l)
{
    pthread_mutex_lock(&fs->hs->lock);
    cmn_list_unlink(&fs->hs->open[kind], &l->link);
    pthread_mutex_unlock(&fs->hs->lock);
}

unsigned fs_open_drain(struct fs *fs, enum fs_open_kind kind,
                       void (*release)(struct fs *fs, void *owner))
{
    unsigned n = 0;

    /* The list only shrinks under us (completions put references, never unlink), so
     * take the head each time. */
    for (;;) {
        pthread_mutex_lock(&fs->hs->lock);
        struct fs_open_link *l = CMN_LIST_ENTRY(fs->hs->open[kind].head, struct fs_open_link, link);
        void *owner = l ? l->owner : NULL;
        pthread_mutex_unlock(&fs->hs->lock);
        if (!owner)
            return n;
        release(fs, owner);
        n++;
    }
}
