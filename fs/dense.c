/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dense.c: dense random reads. A reader that jumps around a file (an index walk in an
 * embedded database, a B-tree, a hash table file, fio randread) gets no help from the
 * sequential prefetch: each read that misses waits for one GET of its block, one after
 * another, while the blocks it will want next are not asked for. When such a reader has
 * read many distinct blocks of a file that is small enough to hold (fs_dense_cap), the
 * whole file is fetched in the background (fs_dense_sweep): the blocks it lacks, in
 * GETs of up to prefetch_max_request, several at once, starting after the block just
 * read. The reader's next misses join the flights already under way (single-flight), so
 * its reads overlap the fetches instead of waiting for each in turn, and no byte is
 * fetched twice. A sparse reader (few blocks of a large file) never reaches the count, or
 * its file is over the cap: it still fetches one block per read.
 *
 * "Many" is 1/FS_DENSE_SHARE of the file's blocks (at least FS_DENSE_MIN) read at random
 * within FS_DENSE_WINDOW_NS; the count starts again after a window without a sweep. Each
 * open file sweeps at most once. State per handle, allocated at its first random read of
 * a file under the cap, under fh->ra_lock; the sweep itself runs outside it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "fs/fs_i.h"
#include "fs/read_i.h"
#include "hybridcache/hybridcache.h"

#define FS_DENSE_SHARE 32                 /* 1/32 of the file's blocks ... */
#define FS_DENSE_MIN 8                    /* ... and at least 8 of them ... */
#define FS_DENSE_WINDOW_NS 10000000000ull /* ... within 10 s */

struct fs_dense {
    uint64_t t0_ns;    /* when the count started */
    uint64_t distinct; /* blocks read at random since */
    bool swept;
    uint64_t bits[]; /* one per block: read since t0_ns */
};

/* The largest file swept whole: dense_prefetch, and what the cache can hold without
 * evicting the sweep before the reader gets to it (half the memory budget, or a quarter
 * of the disk tier when there is one). */
static uint64_t fs_dense_cap(struct fs *fs)
{
    struct hc_stats st;

    hc_get_stats(fs->cache, &st);
    uint64_t room = st.disk_capacity ? st.disk_capacity / 4 : hc_mem_budget(fs->cache) / 2;
    return CMN_MIN(fs->conf->dense_prefetch, room);
}

static void fs_dense_done(struct fs_handle *fh, uint64_t gen, uint64_t idx, int result,
                          struct hc_entry *e, enum hc_source src, void *arg)
{
    (void)fh, (void)gen, (void)idx, (void)result, (void)src, (void)arg;
    hc_entry_put(e); /* the cache keeps it for the reader */
}

/* Fetch blocks [lo, hi) of @fh that are nowhere in the cache, consecutive ones in groups
 * of up to prefetch_max_request (one GET each). @return the blocks the cache took. */
static uint64_t fs_dense_range(struct fs *fs, struct fs_handle *fh, uint64_t lo, uint64_t hi)
{
    uint64_t bs = fs->conf->block_size, n = 0;
    unsigned per = (unsigned)CMN_MAX(fs->conf->prefetch_max_request / bs, 1);
    uint8_t key[HC_KEY_MAX];
    struct fs_grp *g = NULL;

    for (uint64_t b = lo; b < hi; b++) {
        size_t klen = fs_block_key(fs, fh->key, fh->ctag, b, key, sizeof(key));
        if (!klen)
            break;
        if (g && fs_grp_next(g) != b) {
            fs_grp_submit(g);
            g = NULL;
        }
        if (!g && !(g = fs_grp_new(fh, b, (unsigned)CMN_MIN(per, hi - b), (uint32_t)bs, 0)))
            break;
        /* A flight that waits for memory (rc 0) is fetched alone when it starts; the
         * sweep goes on: the cap keeps the file within what the cache holds. */
        int rc =
            fs_grp_add(g, key, klen, HC_FETCH_PREFETCH | HC_FETCH_IF_ABSENT, fs_dense_done, NULL);
        if (rc >= 0)
            n++;
        if (rc <= 0 || fs_grp_full(g)) {
            fs_grp_submit(g);
            g = NULL;
        }
    }
    if (g)
        fs_grp_submit(g);
    return n;
}

/* Fetch every block of @fh the cache lacks, from block @from on, then from the start. */
static void fs_dense_sweep(struct fs *fs, struct fs_handle *fh, uint64_t from)
{
    uint64_t nblocks = (fh->size + fs->conf->block_size - 1) / fs->conf->block_size;
    uint64_t n = fs_dense_range(fs, fh, from, nblocks) + fs_dense_range(fs, fh, 0, from);

    if (!n)
        return; /* all of it was cached or under way already (another open of it swept) */
    __atomic_add_fetch(&fs->ctr.dense_sweeps, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&fs->ctr.dense_blocks, n, __ATOMIC_RELAXED);
    TLOG_D("dense random reads of '%s': fetching the rest of it (%llu blocks)", fh->key,
           (unsigned long long)n);
}

void fs_dense_read(struct fs *fs, struct fs_handle *fh, uint64_t off)
{
    uint64_t bs = fs->conf->block_size, blk = off / bs, now = cmn_now_ns();
    uint64_t nblocks = (fh->size + bs - 1) / bs;
    bool sweep = false;

    if (!fs->conf->dense_prefetch || nblocks < FS_DENSE_MIN || fh->size > fs_dense_cap(fs))
        return;
    pthread_mutex_lock(&fh->ra_lock);
    struct fs_dense *d = fh->dense;
    if (!d) {
        d = calloc(1, sizeof(*d) + (nblocks + 63) / 64 * sizeof(d->bits[0]));
        if (!d)
            goto out;
        d->t0_ns = now;
        fh->dense = d;
    }
    if (d->swept)
        goto out;
    if (now - d->t0_ns > FS_DENSE_WINDOW_NS) {
        memset(d->bits, 0, (nblocks + 63) / 64 * sizeof(d->bits[0]));
        d->distinct = 0;
        d->t0_ns = now;
    }
    if (!(d->bits[blk / 64] & (1ull << (blk % 64)))) {
        d->bits[blk / 64] |= 1ull << (blk % 64);
        d->distinct++;
    }
    if (d->distinct >= CMN_MAX((uint64_t)FS_DENSE_MIN, nblocks / FS_DENSE_SHARE)) {
        d->swept = true;
        sweep = true;
    }
out:
    pthread_mutex_unlock(&fh->ra_lock);
    if (sweep)
        fs_dense_sweep(fs, fh, CMN_MIN(blk + 1, nblocks - 1));
}
