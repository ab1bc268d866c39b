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
 * A handle that reads sequentially prefetches the following blocks in a window that
 * doubles up to conf.prefetch, so a cold sequential read keeps several GETs in flight.
 * Prefetch only pays off for blocks that come from S3: once a prefetch or a read is
 * served by the disk tier, the handle stops prefetching until a read misses to S3 again
 * (measured: prefetching disk-resident blocks cut cached sequential reads to a quarter).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "common/log.h"
#include "common/util.h"
#include "fs/blockkey.h"
#include "fs/fs_i.h"
#include "fs/metrics.h"
#include "hybridcache/hybridcache.h"

#define FS_PREFETCH_START_BLOCKS 4

struct fs_handle {
    int refs;                  /* atomic: the open, in-flight reads, GETs, prefetches */
    struct fs *fs;
    struct fs_inode *ino;      /* pinned by an "opens" reference */
    const char *key;           /* ino->key, immutable */
    char etag[OBJSTORE_ETAG_MAX];
    uint64_t size;
    pthread_mutex_t ra_lock;   /* protects the three ra_ fields */
    uint64_t ra_next;          /* where a sequential reader reads next */
    uint64_t ra_window;        /* current prefetch window, in blocks */
    uint64_t ra_issued;        /* blocks below this were already prefetched */
    bool ra_cold;              /* atomic: blocks come from S3, so prefetch pays off */
};

/* What the fetcher needs to GET one block (valid until the fetcher has been called). */
struct fs_blk {
    struct fs_handle *fh;
    uint64_t blk;
};

/* One ranged GET in flight. */
struct fs_get {
    struct objstore_req req;
    struct hc_fetch_ctx *ctx;
    struct fs_handle *fh;      /* a reference */
    size_t want;
};

struct fs_slot {
    struct fs_read *rd;
    struct fs_blk arg;
    struct hc_entry *e;
};

struct fs_read {
    fuse_req_t req;
    struct fs_handle *fh;      /* a reference */
    int pending;               /* atomic: blocks not done + 1 while submitting */
    int err;                   /* atomic: first error */
    uint64_t off, end;
    uint64_t t0_ns;            /* metrics: when the FUSE read arrived */
    uint64_t first;
    unsigned n;
    struct fs_slot slots[];
};

struct fs_prefetch {
    struct fs_blk arg;
};

static void fs_handle_get(struct fs_handle *fh)
{
    __atomic_add_fetch(&fh->refs, 1, __ATOMIC_RELAXED);
}

static void fs_handle_put(struct fs_handle *fh)
{
    if (__atomic_sub_fetch(&fh->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    fs_ns_release(fh->fs, fh->ino);
    pthread_mutex_destroy(&fh->ra_lock);
    free(fh);
}

size_t fs_block_key(const struct fs *fs, const char *key, const char *etag, uint64_t blk,
                    void *buf, size_t cap)
{
    /* The format lives in fs/blockkey.c: tierfs-cache warm builds the same keys. */
    return fs_blockkey_build(fs->conf->bucket, fs->conf->block_size, key, etag, blk, buf, cap);
}

/* ---- the fetcher: one ranged GET per cache miss ---- */

static void fs_get_done(struct objstore_req *req)
{
    struct fs_get *g = req->arg;
    struct fs_handle *fh = g->fh;
    ssize_t res = req->result;

    if (res == 0 && req->got != g->want) {
        res = -EIO;
        tlog_rl_msg(&fh->fs->rl_read, TLOG_ERR, "GET '%s' [%llu, +%zu): got %zu bytes", fh->key,
                    (unsigned long long)req->off, g->want, req->got);
    } else if (res < 0) {
        tlog_rl_msg(&fh->fs->rl_read, TLOG_ERR, "GET '%s' [%llu, +%zu) failed: %s", fh->key,
                    (unsigned long long)req->off, g->want,
                    req->errmsg[0] ? req->errmsg : objstore_strerror((int)res));
        if (res == -ESTALE)
            fs_ns_invalidate(fh->fs, fh->ino); /* the next open HEADs the new version */
    } else {
        res = (ssize_t)req->got;
    }
    hc_fetch_complete(g->ctx, res);
    fs_handle_put(fh);
    free(g);
}

static void fs_fetcher(struct hc_fetch_ctx *ctx, void *buf, size_t cap, void *arg)
{
    const struct fs_blk *b = arg;
    struct fs_handle *fh = b->fh;
    uint64_t bs = fh->fs->conf->block_size;
    uint64_t off = b->blk * bs;
    struct fs_get *g;
    int rc;

    if (off >= fh->size) {
        hc_fetch_complete(ctx, -EINVAL);
        return;
    }
    g = calloc(1, sizeof(*g));
    if (!g) {
        hc_fetch_complete(ctx, -ENOMEM);
        return;
    }
    g->ctx = ctx;
    g->fh = fh;
    g->want = (size_t)CMN_MIN(bs, fh->size - off);
    fs_handle_get(fh);
    g->req.op = OBJSTORE_OP_GET;
    g->req.key = fh->key;
    g->req.off = off;
    g->req.len = g->want;
    g->req.if_match = fh->etag[0] ? fh->etag : NULL;
    g->req.buf = buf;
    g->req.buf_cap = cap;
    g->req.done = fs_get_done;
    g->req.arg = g;
    if ((rc = objstore_submit(fh->fs->os, &g->req)) != 0) {
        fs_handle_put(fh);
        free(g);
        hc_fetch_complete(ctx, rc);
    }
}

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

static void fs_read_finish(struct fs_read *rd)
{
    struct fs_handle *fh = rd->fh;
    uint64_t bs = fh->fs->conf->block_size;
    int err = __atomic_load_n(&rd->err, __ATOMIC_ACQUIRE);

    if (err) {
        fuse_reply_err(rd->req, fs_read_errno(err));
        fs_metrics_fuse_read(fh->fs->metrics, rd->t0_ns, err, NULL, 0); /* metrics */
    } else {
        struct iovec iov[rd->n];
        int cnt = 0;
        for (unsigned i = 0; i < rd->n; i++) {
            uint64_t bstart = (rd->first + i) * bs;
            uint64_t from = CMN_MAX(rd->off, bstart) - bstart;
            uint64_t to = CMN_MIN(rd->end, bstart + bs) - bstart;
            size_t have = hc_entry_len(rd->slots[i].e);
            if (to > have)
                to = have; /* a short block ends the reply: never skip a hole */
            if (to <= from)
                break;
            iov[cnt].iov_base = (char *)hc_entry_data(rd->slots[i].e) + from;
            iov[cnt].iov_len = to - from;
            cnt++;
            if (to < CMN_MIN(rd->end, bstart + bs) - bstart)
                break;
        }
        fuse_reply_iov(rd->req, iov, cnt);
        fs_metrics_fuse_read(fh->fs->metrics, rd->t0_ns, 0, iov, cnt); /* metrics */
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
    if (src == HC_SRC_ORIGIN)
        __atomic_store_n(&s->rd->fh->ra_cold, true, __ATOMIC_RELAXED);
    else if (src == HC_SRC_DISK)
        __atomic_store_n(&s->rd->fh->ra_cold, false, __ATOMIC_RELAXED);
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

static void fs_prefetch_done(int result, struct hc_entry *e, enum hc_source src, void *arg)
{
    struct fs_prefetch *pf = arg;
    (void)result;
    if (src == HC_SRC_DISK || src == HC_SRC_MEMORY)
        __atomic_store_n(&pf->arg.fh->ra_cold, false, __ATOMIC_RELAXED); /* was cached */
    else if (src == HC_SRC_ORIGIN)
        __atomic_store_n(&pf->arg.fh->ra_cold, true, __ATOMIC_RELAXED);
    hc_entry_put(e);
    fs_handle_put(pf->arg.fh);
    free(pf);
}

/* Sequential reader? Then make sure the next window of blocks is on its way. */
static void fs_prefetch(struct fs *fs, struct fs_handle *fh, uint64_t off, uint64_t end)
{
    uint64_t bs = fs->conf->block_size;
    uint64_t max_blocks = fs->conf->prefetch / bs;
    uint64_t nblocks = (fh->size + bs - 1) / bs;
    uint64_t start, stop;
    uint8_t key[HC_KEY_MAX];

    if (max_blocks == 0)
        return;
    pthread_mutex_lock(&fh->ra_lock);
    /* Kernel read-ahead runs on several threads, so "sequential" allows a little disorder. */
    bool near = off <= fh->ra_next + 2 * bs && off + 2 * bs >= fh->ra_next;
    if (!near) {
        fh->ra_next = end;
        fh->ra_window = 0;
        fh->ra_issued = 0;
        pthread_mutex_unlock(&fh->ra_lock);
        return;
    }
    fh->ra_next = CMN_MAX(fh->ra_next, end);
    if (!__atomic_load_n(&fh->ra_cold, __ATOMIC_RELAXED)) {
        pthread_mutex_unlock(&fh->ra_lock);
        return;
    }
    fh->ra_window = fh->ra_window ? CMN_MIN(fh->ra_window * 2, max_blocks)
                                  : CMN_MIN((uint64_t)FS_PREFETCH_START_BLOCKS, max_blocks);
    start = CMN_MAX((end + bs - 1) / bs, fh->ra_issued);
    stop = CMN_MIN((end + bs - 1) / bs + fh->ra_window, nblocks);
    if (stop > fh->ra_issued)
        fh->ra_issued = stop;
    pthread_mutex_unlock(&fh->ra_lock);

    for (uint64_t b = start; b < stop; b++) {
        size_t klen = fs_block_key(fs, fh->key, fh->etag, b, key, sizeof(key));
        struct fs_prefetch *pf = malloc(sizeof(*pf));
        if (!klen || !pf) {
            free(pf);
            return;
        }
        pf->arg = (struct fs_blk){.fh = fh, .blk = b};
        fs_handle_get(fh);
        if (hc_fetch(fs->cache, key, klen, HC_FETCH_PREFETCH, fs_fetcher, &pf->arg,
                     fs_prefetch_done, pf) != 0) {
            fs_handle_put(fh);
            free(pf);
            return;
        }
    }
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
    unsigned n = (unsigned)(last - first + 1);

    rd = calloc(1, sizeof(*rd) + n * sizeof(rd->slots[0]));
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
    rd->first = first;
    rd->n = n;
    rd->pending = (int)n + 1; /* +1: no reply before every block was submitted */
    for (unsigned i = 0; i < n; i++) {
        struct fs_slot *s = &rd->slots[i];
        s->rd = rd;
        s->arg = (struct fs_blk){.fh = fh, .blk = first + i};
        size_t klen = fs_block_key(fs, fh->key, fh->etag, first + i, key, sizeof(key));
        int rc = klen ? hc_fetch(fs->cache, key, klen, 0, fs_fetcher, &s->arg,
                                 fs_read_block_done, s)
                      : -ENAMETOOLONG;
        if (rc != 0)
            fs_read_block_done(rc, NULL, HC_SRC_ORIGIN, s);
    }
    fs_prefetch(fs, fh, (uint64_t)off, end);
    fs_read_drop(rd);
}

int fs_read_open(struct fs *fs, struct fs_inode *ino, struct fs_handle **out, bool *keep_cache)
{
    struct fs_handle *fh;
    int rc;

    if (ino->is_dir)
        return -EISDIR;
    fh = calloc(1, sizeof(*fh));
    if (!fh)
        return -ENOMEM;
    rc = fs_ns_pin(fs, ino, fh->etag, &fh->size, keep_cache);
    if (rc < 0) {
        free(fh);
        return rc;
    }
    fh->refs = 1;
    fh->ra_cold = true;
    fh->fs = fs;
    fh->ino = ino;
    fh->key = ino->key;
    pthread_mutex_init(&fh->ra_lock, NULL);
    *out = fh;
    return 0;
}

void fs_read_release(struct fs *fs, struct fs_handle *fh)
{
    (void)fs;
    if (fh)
        fs_handle_put(fh);
}
