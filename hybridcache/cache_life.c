/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cache_life.c: the cooperator's lifecycle and bookkeeping: hc_create (the memory budget
 * split between the tiers, the disk tier opened or refused), hc_destroy, hc_flush and the
 * spill of what is only in memory, hc_get_stats and the invariants check. The design is
 * at the top of cache.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "hybridcache/cache_i.h"
#include "hybridcache/hc_i.h"
#include "ioengine/ioengine.h"

/*
 * Write-on-evict keeps a block in memory only until the memory tier evicts it: write
 * those still there to the disk and flush it (@why names the caller in the log), so a
 * flush makes them durable and an unmount does not lose them. Unlike a fetch's write
 * this waits for room in the write queue (a flush of the disk tier, then short sleeps
 * while its reclaimer frees a region), but never past HC_SPILL_TIMEOUT_MS, and it stops
 * at the first failed region write: a failing disk must not hang unmount. At most the
 * disk's capacity less the disk tier's own buffers (about the regions it keeps open and
 * free) is written: past that the log would overwrite the first blocks of this pass.
 * Only for HC_WRITE_ON_EVICT (with write-on-insert a block missing from the disk was an
 * admission drop, by design). @return 0, or -errno when the disk failed or time ran out
 * (what was written stays).
 */
#define HC_SPILL_TIMEOUT_MS 30000
#define HC_SPILL_RETRY_NS 1000000L /* 1 ms: a reclaimed region is one read away */

/* hc_disk_flush(), and -EIO when any region write failed since @errs0 was read. */
static int hc_spill_flush(struct hc_cache *c, uint64_t errs0)
{
    struct hc_disk_stats ds;
    int rc = hc_disk_flush(c->disk);

    hc_disk_get_stats(c->disk, &ds);
    return rc < 0 ? rc : ds.write_errors != errs0 ? -EIO : 0;
}

static int hc_spill(struct hc_cache *c, const char *why)
{
    uint64_t t0 = cmn_now_ms(), limit, errs0, bytes = 0;
    struct hc_entry **ents;
    struct hc_disk_stats ds;
    size_t n, i, written = 0;
    int rc;

    rc = hc_mem_snapshot(c->mem, &ents, &n);
    if (rc < 0)
        return rc;
    hc_disk_get_stats(c->disk, &ds);
    errs0 = ds.write_errors;
    limit = ds.capacity - CMN_MIN(ds.capacity, hc_disk_mem_max(c->disk));
    for (i = 0; i < n && rc == 0; i++) {
        struct hc_entry *e = ents[i];

        if (hc_disk_may_contain(c->disk, e->hash))
            continue;
        if (bytes + e->len + e->klen > limit)
            break;
        while ((rc = hc_disk_insert(c->disk, e->hash, e->key, e->klen, e->data, e->len)) ==
               -EAGAIN) {
            /* The write queue is full: wait for its writes, see whether they failed. */
            if ((rc = hc_spill_flush(c, errs0)) < 0)
                break;
            if (cmn_now_ms() - t0 > HC_SPILL_TIMEOUT_MS) {
                rc = -ETIMEDOUT;
                break;
            }
            nanosleep(&(struct timespec){.tv_nsec = HC_SPILL_RETRY_NS}, NULL);
        }
        if (rc == 0) {
            written++;
            bytes += e->len + e->klen;
        } else if (rc != -EIO && rc != -ETIMEDOUT) {
            rc = 0; /* this entry only (-ENOMEM, ...): go on with the others */
        }
    }
    if (rc == 0)
        rc = hc_spill_flush(c, errs0);
    for (i = 0; i < n; i++)
        hc_entry_put(ents[i]);
    free(ents);
    if (rc < 0)
        TLOG_W("hybridcache: %s: %zu of %zu memory blocks queued for the disk in %llu ms, "
               "then stopped: %s",
               why, written, n, (unsigned long long)(cmn_now_ms() - t0), strerror(-rc));
    else
        TLOG_I("hybridcache: %s: %zu memory-only blocks (%llu KiB) written to the disk in "
               "%llu ms",
               why, written, (unsigned long long)(bytes >> 10),
               (unsigned long long)(cmn_now_ms() - t0));
    return rc;
}

int hc_flush(struct hc_cache *c)
{
    if (!c)
        return -EINVAL;
    if (!c->disk)
        return 0;
    hc_defer_drain(c->defer);
    return c->write_mode == HC_WRITE_ON_EVICT ? hc_spill(c, "flush") : hc_disk_flush(c->disk);
}

uint32_t hc_block_size(const struct hc_cache *c)
{
    return c->block_size;
}

uint64_t hc_mem_budget(const struct hc_cache *c)
{
    return c->acct.limit;
}

#ifdef TIERFS_DEBUG
#define HC_CHECK(cond)                                                                             \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            TLOG_E("hybridcache: invariant broken: %s (%s:%d)", #cond, __FILE__, __LINE__);        \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static void hc_check_invariants(struct hc_cache *c)
{
    uint64_t queued = 0;
    struct hc_flight *f;

    for (unsigned i = 0; i < HC_FLIGHT_SHARDS; i++) {
        pthread_mutex_lock(&c->fl[i].lock);
        for (f = c->fl[i].head; f; f = f->next) {
            HC_CHECK(f->linked);
            HC_CHECK(hc_flight_shard_of(c, f->hash) == &c->fl[i]);
            HC_CHECK(f->state <= HC_FL_ORIGIN);
            for (struct hc_flight *g = f->next; g; g = g->next)
                HC_CHECK(!(g->hash == f->hash && g->klen == f->klen &&
                           memcmp(g->key, f->key, f->klen) == 0));
        }
        pthread_mutex_unlock(&c->fl[i].lock);
    }
    pthread_mutex_lock(&c->lock);
    for (f = c->queue_head; f; f = f->queue_next)
        queued++;
    HC_CHECK(queued + c->nrunning <= c->nflights);
    /* Queued flights with none running: someone drains, or the deferred disk writer holds
     * blocks (flights wait for it; it kicks the queue after each block it writes). The
     * writer's lock is a leaf: taking it under c->lock is fine. */
    uint64_t deferred, pending;
    hc_defer_stats(c->defer, &deferred, &pending);
    HC_CHECK(!c->queue_head || c->nrunning > 0 || c->draining || pending > 0);
    HC_CHECK(!c->queue_head == !c->queue_tail);
    pthread_mutex_unlock(&c->lock);
    /* The disk tier never holds more than the reserve set aside for it. */
    HC_CHECK(atomic_load(&c->disk_acct.used) <= c->disk_acct.limit);
    hc_mem_check_invariants(c->mem);
}
#else
static void hc_check_invariants(struct hc_cache *c)
{
    (void)c;
}
#endif

void hc_get_stats(struct hc_cache *c, struct hc_stats *st)
{
    struct hc_mem_stats ms;
    uint64_t used, rest;

    hc_check_invariants(c);
    memset(st, 0, sizeof(*st));
    hc_mem_get_stats(c->mem, &ms);
    st->mem_hits = ms.hits;
    st->mem_misses = ms.misses - CMN_MIN(ms.misses, atomic_load(&c->recheck_misses));
    st->mem_inserts = ms.inserts;
    st->mem_evictions = ms.evictions;
    st->origin_fetches = atomic_load(&c->origin_fetches);
    st->origin_errors = atomic_load(&c->origin_errors);
    st->origin_bytes = atomic_load(&c->origin_bytes);
    st->merges = atomic_load(&c->merges);
    st->mem_overcommits = atomic_load(&c->overcommits);
    used = atomic_load(&c->acct.used) + atomic_load(&c->disk_acct.used);
    st->mem_used = used;
    st->mem_limit = c->mem_capacity;
    st->inflight_bytes = atomic_load(&c->inflight_bytes);
    /* What is held beyond the tier and the flights: the disk's region and read buffers
     * and evicted entries still held by readers (the budget does not tell them apart). */
    rest = ms.bytes + st->inflight_bytes;
    st->write_queue_bytes = used > rest ? used - rest : 0;
    st->pool_bytes = hc_buf_pool_bytes(c->acct.pool);
    if (c->disk) {
        struct hc_disk_stats ds;

        hc_disk_get_stats(c->disk, &ds);
        st->disk_hits = ds.hits;
        st->disk_misses = ds.misses;
        st->disk_inserts = ds.inserts;
        st->disk_evictions = ds.evictions;
        st->disk_reinserts = ds.reinserts;
        st->disk_bytes_read = ds.bytes_read;
        st->disk_bytes_written = ds.bytes_written;
        st->disk_read_errors = ds.read_errors;
        st->disk_write_errors = ds.write_errors;
        st->checksum_failures = ds.checksum_failures;
        st->admission_drops = ds.admission_drops;
        hc_defer_stats(c->defer, &st->disk_deferred, &st->disk_defer_pending);
        st->disk_defer_holds = atomic_load(&c->defer_holds);
        st->disk_used = ds.used;
        st->disk_capacity = ds.capacity;
        st->disk_region_size = ds.region_size;
        st->disk_engine = ds.engine;
        st->disk_blockdev = ds.blockdev;
        st->disk_entries = ds.entries;
        st->disk_index_bytes = ds.index_bytes;
        st->recovered_entries = ds.recovered_entries;
        st->recovery_ns = ds.recovery_ns;
        st->compressed_blocks = ds.compressed_blocks;
        st->compressed_saved_bytes = ds.compressed_saved_bytes;
        st->disk_partial_hits = ds.partial_hits;
        st->disk_partial_bytes = ds.partial_bytes;
    }
}

/* ---- lifecycle ---- */

/* Write-on-evict: the memory tier's victim goes to the disk unless the disk has it. */
static void hc_on_evict(struct hc_entry *e, void *arg)
{
    struct hc_cache *c = arg;

    if (!hc_disk_may_contain(c->disk, e->hash))
        hc_defer_insert(c->defer, e);
    hc_entry_put(e);
}

/*
 * The disk tier's layout and memory, chosen from the memory budget before the device is
 * open: region size (for a new cache; an existing one keeps its own, disk_format.c), the
 * write queue (a quarter of the budget, at most four regions, at least one) and the
 * lookup depth. The write queue should hold two region buffers, one filling while the
 * other is written: with one 16 MiB buffer a 64 MiB mount could not take a block while
 * the sealed region was being written and dropped 188 of 1,024 blocks of a cold scan
 * (docs/performance.md "Small memory"). So when two 16 MiB regions exceed a quarter of
 * the budget, a new cache gets regions of as many whole blocks as an eighth of the budget
 * holds (at least two), and fewer lookup read buffers (one block each, an eighth of the
 * budget, at least two), which is what lets mem_cache_size go down to 16M. A block that
 * still finds the queue full waits in the deferred writer (cache_defer.c).
 */
struct hc_disk_plan {
    uint32_t region_size; /* for a new format (0 when the conf gives none: the default) */
    unsigned io_depth;
    uint64_t wq;      /* write queue bytes */
    uint64_t reserve; /* the estimate of what the disk tier may hold in memory at once */
};

static void hc_disk_plan(const struct hc_conf *conf, uint32_t bs, struct hc_disk_plan *p)
{
    uint64_t mem = conf->mem_capacity, rs = conf->region_size;
    unsigned depth = conf->io_depth;

    if (!rs) {
        rs = hc_disk_region_auto(bs);
        if (2 * rs > mem / 4) {
            /* Whole blocks: halving 16 MiB to 4 MiB would hold 3 of 1 MiB (25 % wasted). */
            uint64_t k = CMN_MAX(2ull, mem / 8 / hc_disk_region_for(bs, 1));
            rs = CMN_MIN(rs, hc_disk_region_for(bs, (unsigned)CMN_MIN(k, 1024ull)));
        }
    }
    uint64_t wq = conf->write_queue_bytes;
    if (!wq)
        wq = CMN_MIN(4 * rs, mem / 4);
    wq = CMN_MAX(wq / rs, 1) * rs;
    if (!depth)
        depth = (unsigned)CMN_MAX(2, CMN_MIN((uint64_t)HC_DISK_IO_DEPTH_DEFAULT, mem / 8 / bs));
    p->region_size = conf->region_size ? conf->region_size : (uint32_t)rs;
    p->io_depth = depth;
    p->wq = wq;
    /* + one crc a 4 KiB chunk: the chunk table (disk_i.h) */
    p->reserve = wq + (uint64_t)depth * (bs + bs / 1024 + HC_KEY_MAX + 4ull * IOENG_BUF_ALIGN);
}

static unsigned hc_auto_shards(uint64_t tier, uint32_t bs)
{
    unsigned n = 1;

    while (n < HC_MEM_SHARDS_AUTO_MAX &&
           tier / (2ull * n) >= (uint64_t)HC_MEM_BLOCKS_PER_SHARD * bs)
        n *= 2;
    return n;
}

static int hc_open_disk(struct hc_cache *c, const struct hc_conf *conf,
                        const struct hc_disk_plan *plan)
{
    struct dev *dev = conf->disk_dev;
    bool created = false;
    struct stat st;
    int rc;

    if (!dev) {
        struct dev_conf dc = {.path = conf->disk_path,
                              .size = conf->disk_capacity,
                              .direct_io = conf->direct_io,
                              .create = true};
        bool exists = stat(conf->disk_path, &st) == 0;
        created = !exists && errno == ENOENT;
        /* The device layer extends a short file before the disk tier reads its header, and
         * growing someone's database or image is changing it: look at a short one first. */
        if (exists && conf->refuse_unknown && S_ISREG(st.st_mode) && st.st_size > 0 &&
            (uint64_t)st.st_size < conf->disk_capacity &&
            (rc = hc_disk_probe_file(conf->disk_path)) < 0)
            return rc;
        rc = dev_open(&dc, &dev);
        if (rc < 0)
            goto fail_created;
    }
    struct hc_disk_conf dconf = {
        .dev = dev, /* the disk tier owns it from here, failure included */
        .io_engine = conf->io_engine ? conf->io_engine : "uring",
        .io_depth = plan->io_depth,
        .block_size = c->block_size,
        .region_size = conf->region_size,
        .region_size_new = plan->region_size,
        .capacity = conf->disk_capacity,
        .compression = conf->compression,
        .identity = conf->identity,
        .refuse_unknown = conf->refuse_unknown,
        .write_queue_bytes = plan->wq,
        .acct = &c->disk_acct,
    };
    if ((rc = hc_disk_open(&dconf, &c->disk)) >= 0)
        return rc;
fail_created:
    /* A file this call created and could not use (too small, say) is not left behind. */
    if (created && unlink(conf->disk_path) != 0)
        TLOG_W("hybridcache: cannot remove %s: %s", conf->disk_path, strerror(errno));
    return rc;
}

static int hc_check_conf(const struct hc_conf *conf, uint32_t bs)
{
    const char *pol = conf->mem_policy ? conf->mem_policy : "s3fifo";

    if (bs < HC_BLOCK_SIZE_MIN || bs > HC_BLOCK_SIZE_MAX || bs % 4096) {
        TLOG_E("hybridcache: block size %u must be a multiple of 4 KiB from %u to %u", bs,
               HC_BLOCK_SIZE_MIN, HC_BLOCK_SIZE_MAX);
        return -EINVAL;
    }
    if (!hc_policy_find(pol)) {
        TLOG_E("hybridcache: unknown memory policy '%s'", pol);
        return -EINVAL;
    }
    if (conf->mem_shards && !CMN_IS_POW2(conf->mem_shards)) {
        TLOG_E("hybridcache: memory shards %u is not a power of two", conf->mem_shards);
        return -EINVAL;
    }
    if (conf->disk_path && conf->disk_dev) {
        TLOG_E("hybridcache: give the disk as a path or as a device, not both");
        return -EINVAL;
    }
    if (conf->write_mode != HC_WRITE_ON_INSERT && conf->write_mode != HC_WRITE_ON_EVICT) {
        TLOG_E("hybridcache: bad write mode %d", (int)conf->write_mode);
        return -EINVAL;
    }
    return 0;
}

/* The memory tier's share of @conf->mem_capacity after the disk's @reserve, and its shard
 * count in *shards. @return the share, or 0 (with a log line) when it is too small. */
static uint64_t hc_tier_size(const struct hc_conf *conf, uint32_t bs, uint64_t reserve,
                             bool has_disk, unsigned *shards)
{
    uint64_t tier = conf->mem_capacity > reserve ? conf->mem_capacity - reserve : 0;

    *shards = conf->mem_shards ? conf->mem_shards : hc_auto_shards(tier, bs);
    if (tier / *shards >= 2ull * bs)
        return tier;
    TLOG_E("hybridcache: memory capacity %llu is too small: %u shard(s) of at least two "
           "%u-byte blocks%s need %llu",
           (unsigned long long)conf->mem_capacity, *shards, bs,
           has_disk ? " plus the disk write queue and read buffers" : "",
           (unsigned long long)(2ull * bs * *shards + reserve));
    return 0;
}

int hc_create(const struct hc_conf *conf, struct hc_cache **out)
{
    uint32_t bs;
    uint64_t reserve = 0, tier;
    struct hc_disk_plan plan = {0};
    unsigned shards, i;
    bool has_disk;
    struct hc_cache *c;
    int rc;

    if (!conf || !out)
        return -EINVAL;
    *out = NULL;
    bs = conf->block_size ? conf->block_size : HC_BLOCK_SIZE_DEFAULT;
    rc = hc_check_conf(conf, bs);
    if (rc < 0)
        return rc;
    has_disk = conf->disk_path || conf->disk_dev;
    if (has_disk) {
        hc_disk_plan(conf, bs, &plan);
        reserve = plan.reserve;
    }
    /* Checked before the device is touched: a conf that cannot work formats nothing. */
    tier = hc_tier_size(conf, bs, reserve, has_disk, &shards);
    if (!tier) {
        if (conf->disk_dev)
            dev_close(conf->disk_dev); /* the cache owns it, failure included */
        return -EINVAL;
    }

    c = calloc(1, sizeof(*c));
    if (!c) {
        rc = -ENOMEM;
        goto fail_dev;
    }
    c->block_size = bs;
    c->write_mode = conf->write_mode;
    c->mem_capacity = conf->mem_capacity;
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->idle, NULL);
    for (i = 0; i < HC_FLIGHT_SHARDS; i++)
        pthread_mutex_init(&c->fl[i].lock, NULL);

    /* The disk first: from hc_disk_open() on it owns conf->disk_dev, failure included. */
    if (has_disk) {
        rc = hc_open_disk(c, conf, &plan);
        if (rc < 0) {
            /* -ERANGE (too small) and -EEXIST (someone else's data) were logged in words
             * already; a generic line after them would be the one an operator sees. */
            if (rc != -ERANGE && rc != -EEXIST)
                TLOG_E("hybridcache: cannot open the disk cache %s: %s",
                       conf->disk_path ? conf->disk_path : "(device)", strerror(-rc));
            goto fail_locks;
        }
        /* The exact reserve (the device's alignment is known now). */
        reserve = hc_disk_mem_max(c->disk);
        tier = hc_tier_size(conf, bs, reserve, has_disk, &shards);
        if (!tier) {
            rc = -EINVAL;
            goto fail_disk;
        }
    }
    c->acct.limit = tier;
    c->disk_acct.limit = reserve;
    /* Without the pool (too small a budget, or no memory for it) entries map their own. */
    (void)hc_buf_pool_create(bs, (unsigned)CMN_MIN((uint64_t)HC_POOL_MAX, tier / bs),
                             &c->acct.pool);
    struct hc_mem_conf mconf = {
        .capacity = tier,
        .policy = conf->mem_policy,
        .shards = shards,
        .acct = &c->acct,
        .on_evict = has_disk && conf->write_mode == HC_WRITE_ON_EVICT ? hc_on_evict : NULL,
        .on_evict_arg = c,
        /* With a disk behind it, a prefetched block nobody has read again is one disk read
         * away: it need not take the tier's free room (mem.c). Memory only, it stays. */
        .unread_share = HC_MEM_UNREAD_SHARE,
        .unread_stream_only = !has_disk,
    };
    rc = hc_mem_create(&mconf, &c->mem);
    if (rc < 0)
        goto fail_pool;
    /* As many blocks as the tier holds may wait for the disk: with write-on-insert a queued
     * block is the memory tier's own entry (no copy), and one the tier evicted meanwhile
     * stays charged, so new fetches wait for memory rather than the process growing. A
     * shorter queue dropped blocks of a prefetch burst (8 blocks land at once). */
    if (has_disk && (rc = hc_defer_create(
                         c->disk,
                         conf->defer_blocks ? conf->defer_blocks
                                            : (unsigned)CMN_MAX(2ull, CMN_MIN(1024ull, tier / bs)),
                         hc_queue_kick, c, &c->defer)) < 0)
        goto fail_mem;
    TLOG_I("hybridcache: %u-byte blocks, memory %llu bytes (%llu for the tier and in-flight "
           "fetches, %u shards, %s)%s",
           bs, (unsigned long long)conf->mem_capacity, (unsigned long long)tier, shards,
           conf->mem_policy ? conf->mem_policy : "s3fifo", has_disk ? " + disk" : "");
    *out = c;
    return 0;

fail_mem:
    hc_mem_destroy(c->mem);
fail_pool:
    hc_buf_pool_destroy(c->acct.pool);
fail_disk:
    hc_disk_close(c->disk);
fail_locks:
    for (i = 0; i < HC_FLIGHT_SHARDS; i++)
        pthread_mutex_destroy(&c->fl[i].lock);
    pthread_cond_destroy(&c->idle);
    pthread_mutex_destroy(&c->lock);
    free(c);
    return rc;
fail_dev:
    if (conf->disk_dev)
        dev_close(conf->disk_dev);
    return rc;
}

void hc_destroy(struct hc_cache *c)
{
    unsigned i;

    if (!c)
        return;
    pthread_mutex_lock(&c->lock);
    c->closing = true;
    while (c->nflights > 0)
        pthread_cond_wait(&c->idle, &c->lock);
    pthread_mutex_unlock(&c->lock);
    hc_check_invariants(c);
    /* Flights are over. What only memory holds goes to the disk first (hc_spill logs how
     * it went): with write-on-evict that is every block not yet evicted; with
     * write-on-insert the blocks whose disk write was dropped because the disk fell
     * behind (a fast cold read) — without this a remount fetches them from S3 again.
     * Then the disk (it flushes), then the memory tier, dropped without on_evict. */
    hc_defer_destroy(c->defer); /* what it queued reaches the disk before the spill looks */
    if (c->disk)
        (void)hc_spill(c, "closing");
    hc_disk_close(c->disk);
    hc_mem_destroy(c->mem);
    hc_buf_pool_destroy(c->acct.pool); /* after the last entry went back to it */
    for (i = 0; i < HC_FLIGHT_SHARDS; i++)
        pthread_mutex_destroy(&c->fl[i].lock);
    pthread_cond_destroy(&c->idle);
    pthread_mutex_destroy(&c->lock);
    free(c);
}
