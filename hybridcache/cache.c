/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cache.c: the cooperator: hybridcache.h on top of the memory tier (hc_mem) and the disk
 * tier (hc_disk), with single-flight fetches and one memory budget.
 *
 * DESIGN
 * A lookup misses memory, then joins or creates a flight (struct hc_fetch_ctx) in a
 * sharded table keyed by the key: concurrent misses on one key share one flight, hence
 * one disk lookup and, if the disk misses, one fetcher call; every waiter's done gets the
 * result (each its own reference) or the error, and the flight leaves the table, so the
 * next miss retries. The value is placed (memory, disk or both, by flags and write_mode)
 * before the flight leaves the table, so a caller that finds no flight finds the value.
 *
 * Memory budget: conf.mem_capacity is split once. The disk tier gets a fixed reserve, the
 * most it can ever hold (its write queue of whole region buffers, at least one, plus
 * io_depth read buffers: hc_disk_mem_max(), estimated by hc_disk_reserve() before the
 * device is open), and charges its buffers to c->disk_acct, which nothing else shares.
 * The rest is c->acct: every entry (memory tier, entries evicted but still held by
 * readers, in-flight fetch buffers) and hc_reserve() charge it, and both its limit and
 * the memory tier's capacity are mem_capacity - reserve. So tier + in-flight + write
 * queue + reads <= mem_capacity, each byte counted once: the disk's buffers must not be
 * charged to c->acct as well, or they would squeeze the tier twice. A flight gets its
 * buffer (a whole block, charged at once) only after hc_mem_make_room() found room;
 * when it cannot (everything left is pinned by readers or by other flights) the flight
 * waits in a FIFO queue, except that HC_FLIGHT_MIN_RUNNING flights always run so the
 * cache makes progress; such a start is counted in hc_stats.mem_overcommits. The fixed
 * overhead over mem_capacity is therefore at most HC_FLIGHT_MIN_RUNNING blocks plus one
 * block per thread racing between make-room and allocation. Waiting flights hold no
 * buffer; they are started by finishing ones (one thread drains the queue at a time,
 * iteratively, so synchronous fetchers cannot recurse without bound).
 *
 * Placement: a value read from the origin for a normal fetch goes to memory (and with
 * HC_WRITE_ON_INSERT to the disk too); a prefetch (HC_FETCH_PREFETCH, every waiter a
 * prefetch) goes to the memory tier as low priority (the first candidate for eviction,
 * so it does not push hot blocks out) and, with a disk tier, to the disk too: the reader
 * it was prefetched for finds it in memory instead of paying a disk read, and it survives
 * on the disk if the memory tier drops it first. Disk hits are promoted to memory (every
 * caller after the first finds the block in memory) unless only prefetchers asked.
 * HC_FETCH_STREAM (a sequential reader whose bytes the kernel's page cache keeps) places
 * like a prefetch and its memory hits do not touch (hc_mem_lookup): a scan neither grows
 * the memory tier by its size nor pushes hot blocks out; a block it reads is in memory
 * while its unread neighbours would be, and on the disk after. With
 * HC_WRITE_ON_EVICT, the memory tier's victims are written to the disk (unless the disk
 * index already has the hash). hc_disk_insert drops (-EAGAIN) instead of waiting.
 * hc_flush (write-on-evict) and hc_destroy (both modes: dropped writes too) write what is
 * still only in memory (hc_spill), which waits.
 * Keys name immutable bytes (the fs puts the ETag in the key): a value is never rewritten
 * under the same key with other bytes, so a disk copy is never stale.
 *
 * Ranged lookups (hc_fetch_range) are hc_fetch except for a disk hit on a range of at most
 * a quarter block: that reads the covering chunks (hc_disk_lookup_range) into a partial
 * entry charged to c->acct while held, never placed in the memory tier and not part of
 * any flight (no single-flight for them: two readers of one chunk read it twice). A
 * partial read that cannot be served (no chunk table, a bad chunk, an error) becomes an
 * hc_fetch from its done callback.
 *
 * Prefetchers skip what is cached: HC_FETCH_IF_ABSENT returns -EEXIST without a flight
 * when the key is in memory, in the disk index or in flight (no disk read for a block
 * already there); HC_FETCH_NOT_IN_MEM only when it is in memory (a read-ahead of
 * disk-resident blocks that neither counts a hit nor lets the policy see the others). A fetcher that reads several blocks in one request stages them in a
 * buffer it charges with hc_reserve(), so its memory is in the budget too.
 *
 * INVARIANTS
 *   - a flight is in its shard chain (linked) from creation until it finishes;
 *     at most one flight per key is in the table (under its shard lock);
 *   - flight->state only moves QUEUED -> DISK -> ORIGIN (under its shard lock);
 *   - c->nflights counts flights not yet freed; c->nrunning those that own a buffer or
 *     are about to; queued flights are in c->queue (under c->lock);
 *   - queue non-empty => nrunning >= 1 or a thread is draining (someone will start it).
 * hc_check_invariants() checks them in debug builds (from hc_get_stats and hc_destroy).
 * Lock order: flight shard lock -> c->lock, and flight shard lock -> memory shard lock
 * (hc_mem) -> disk locks. c->lock is never held while calling into the tiers or any
 * callback, nor while taking a shard lock.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "hybridcache/hc_i.h"
#include "ioengine/ioengine.h"

#define HC_FLIGHT_SHARDS 64
#define HC_FLIGHT_MIN_RUNNING 4
#define HC_MEM_SHARDS_AUTO_MAX 64
#define HC_MEM_BLOCKS_PER_SHARD 16   /* automatic sharding keeps this many blocks a shard */
#define HC_REGION_DEFAULT (16u << 20) /* the disk tier's default region size */
#define HC_DISK_IO_DEPTH_DEFAULT 32
/* With a disk tier, unread prefetched blocks hold at most 1/8 of a memory shard. */
#define HC_MEM_UNREAD_SHARE 8

/* Block-sized entry buffers kept for reuse (struct hc_buf_pool): at most this many and at
 * most 1/16 of the tier's budget. Not charged: idle memory beyond mem_capacity. 64, not
 * 16: a cold scan frees and takes buffers in bursts of a prefetch request (8 blocks) or
 * more, and with 16 the excess went back to malloc, whose trimmed heap faulted fresh pages
 * in for the next flights: 186,000 page faults for a 2 GiB read, 81,000 with 64. */
#define HC_POOL_MAX 64
#define HC_POOL_BUDGET_SHIFT 4

enum hc_flight_state { HC_FL_QUEUED = 0, HC_FL_DISK, HC_FL_ORIGIN };

struct hc_waiter {
    hc_done_fn done;
    void *arg;
    unsigned flags;
    struct hc_waiter *next;
};

struct hc_fetch_ctx {
    struct hc_cache *c;
    struct hc_fetch_ctx *next;       /* shard chain; protected by the shard lock */
    struct hc_fetch_ctx *queue_next; /* c->queue; protected by c->lock */
    uint64_t hash;
    enum hc_flight_state state;      /* protected by the shard lock */
    bool want_mem;                   /* a non-prefetch waiter; protected by the shard lock */
    bool linked;                     /* in the shard chain; protected by the shard lock */
    hc_fetcher_fn fetcher;           /* the first origin-allowed waiter's; shard lock */
    void *fetcher_arg;
    struct hc_waiter *waiters, **wtail; /* protected by the shard lock */
    struct hc_waiter first;          /* the creator's, saves a malloc per miss */
    struct hc_entry *buf;            /* owned by the flight; block-sized, charged */
    uint32_t klen;
    char key[];
};

struct hc_flight_shard {
    pthread_mutex_t lock;
    struct hc_fetch_ctx *head;       /* protected by lock */
} __attribute__((aligned(64)));

struct hc_cache {
    uint32_t block_size;
    enum hc_write_mode write_mode;
    uint64_t mem_capacity;           /* conf.mem_capacity: the bound reported as mem_limit */
    struct hc_accounting acct;       /* limit = mem_capacity - disk reserve */
    struct hc_accounting disk_acct;  /* the disk tier's buffers; limit = its reserve */
    struct hc_mem *mem;
    struct hc_disk *disk;            /* NULL: memory-only */
    struct hc_flight_shard fl[HC_FLIGHT_SHARDS];

    pthread_mutex_t lock;            /* protects the fields below; a leaf lock */
    pthread_cond_t idle;             /* nflights reached 0 */
    uint64_t nflights, nrunning;
    struct hc_fetch_ctx *queue_head, *queue_tail;
    bool draining;                   /* a thread is starting queued flights */
    bool closing;

    _Atomic uint64_t merges, origin_fetches, origin_errors, origin_bytes;
    _Atomic uint64_t overcommits, recheck_misses, inflight_bytes;
    _Atomic uint64_t reserved;       /* hc_reserve() bytes outstanding */
};

static void hc_flight_run(struct hc_fetch_ctx *f);

static void hc_add(_Atomic uint64_t *ctr, uint64_t n)
{
    atomic_fetch_add_explicit(ctr, n, memory_order_relaxed);
}

static struct hc_flight_shard *hc_flight_shard_of(struct hc_cache *c, uint64_t hash)
{
    /* Bits the memory tier does not use for its own sharding (it takes bits 40+). */
    return &c->fl[(hash >> 8) & (HC_FLIGHT_SHARDS - 1)];
}

/* @return the flight for @key or NULL. Caller holds s->lock. */
static struct hc_fetch_ctx *hc_flight_find(struct hc_flight_shard *s, uint64_t hash,
                                           const void *key, size_t klen)
{
    struct hc_fetch_ctx *f;

    for (f = s->head; f; f = f->next)
        if (f->hash == hash && f->klen == klen && memcmp(f->key, key, klen) == 0)
            return f;
    return NULL;
}

/* Take @f out of its shard and hand its waiters to the caller. Caller holds s->lock. */
static struct hc_waiter *hc_flight_unlink(struct hc_flight_shard *s, struct hc_fetch_ctx *f)
{
    struct hc_fetch_ctx **pp = &s->head;
    struct hc_waiter *w = f->waiters;

    while (*pp != f)
        pp = &(*pp)->next;
    *pp = f->next;
    f->linked = false;
    f->waiters = NULL;
    f->wtail = &f->waiters;
    return w;
}

/* Call each waiter's done (the first gets @src, joiners HC_SRC_MERGED), free them. */
static void hc_waiters_call(struct hc_fetch_ctx *f, struct hc_waiter *w, int result,
                            struct hc_entry *e, enum hc_source src)
{
    struct hc_waiter *next;

    for (; w; w = next) {
        next = w->next;
        if (e)
            hc_entry_ref(e);
        w->done(result, e, w == &f->first ? src : HC_SRC_MERGED, w->arg);
        if (w != &f->first)
            free(w);
    }
}

/* ---- the budget queue ---- */

/* Start queued flights while the budget allows (or too few run to make progress). Only
 * one thread drains at a time; a flight finishing inside run() just leaves it to us.
 * Called with c->lock held; returns with it released. */
static void hc_queue_drain_unlock(struct hc_cache *c)
{
    struct hc_fetch_ctx *f;

    if (c->draining) {
        /* The drainer re-checks the queue under the lock after this, so it sees us. */
        pthread_mutex_unlock(&c->lock);
        return;
    }
    c->draining = true;
    while (c->queue_head) {
        bool fits;

        pthread_mutex_unlock(&c->lock);
        hc_mem_make_room(c->mem, c->block_size);
        fits = atomic_load(&c->acct.used) + c->block_size <= c->acct.limit;
        pthread_mutex_lock(&c->lock);
        f = c->queue_head;
        if (!f || (!fits && c->nrunning >= HC_FLIGHT_MIN_RUNNING))
            break;
        c->queue_head = f->queue_next;
        if (!c->queue_head)
            c->queue_tail = NULL;
        c->nrunning++;
        if (!fits)
            hc_add(&c->overcommits, 1);
        pthread_mutex_unlock(&c->lock);
        hc_flight_run(f);
        pthread_mutex_lock(&c->lock);
    }
    c->draining = false;
    pthread_mutex_unlock(&c->lock);
}

/* A new flight: run it now if its buffer fits, else queue it behind earlier ones. */
static void hc_flight_admit(struct hc_fetch_ctx *f)
{
    struct hc_cache *c = f->c;
    bool fits, run = false;

    hc_mem_make_room(c->mem, c->block_size);
    fits = atomic_load(&c->acct.used) + c->block_size <= c->acct.limit;
    pthread_mutex_lock(&c->lock);
    if (!c->queue_head && (fits || c->nrunning < HC_FLIGHT_MIN_RUNNING)) {
        c->nrunning++;
        run = true;
        if (!fits)
            hc_add(&c->overcommits, 1);
    } else {
        f->queue_next = NULL;
        if (c->queue_tail)
            c->queue_tail->queue_next = f;
        else
            c->queue_head = f;
        c->queue_tail = f;
    }
    pthread_mutex_unlock(&c->lock);
    if (run)
        hc_flight_run(f);
}

/* ---- one flight ---- */

/* Where a fetched value goes. @e is the flight's; insertion takes its own reference. */
static void hc_place(struct hc_cache *c, struct hc_entry *e, enum hc_source src, bool want_mem)
{
    e->low_priority = !want_mem;
    /* A disk hit only prefetchers asked for stays on the disk (nothing to gain). */
    if (!c->disk || want_mem || src == HC_SRC_ORIGIN)
        (void)hc_mem_insert(c->mem, e);
    if (c->disk && src == HC_SRC_ORIGIN && (c->write_mode == HC_WRITE_ON_INSERT || !want_mem))
        (void)hc_disk_insert(c->disk, e->hash, e->key, e->klen, e->data, e->len);
}

/* A small value (the tail of an object) need not keep a whole block charged. */
static struct hc_entry *hc_shrink(struct hc_cache *c, struct hc_entry *e)
{
    struct hc_entry *n;

    if (e->len > e->cap / 2)
        return e;
    n = hc_entry_alloc(e->key, e->klen, CMN_ALIGN_UP((size_t)e->len, (size_t)IOENG_BUF_ALIGN),
                       &c->acct);
    if (!n)
        return e;
    memcpy(n->data, e->data, e->len);
    n->len = e->len;
    hc_entry_put(e);
    return n;
}

/* The flight is over: place the value, leave the table, tell every waiter, free. */
static void hc_flight_finish(struct hc_fetch_ctx *f, int result, enum hc_source src)
{
    struct hc_cache *c = f->c;
    struct hc_flight_shard *s = hc_flight_shard_of(c, f->hash);
    struct hc_entry *e = NULL;
    struct hc_waiter *w;
    bool want_mem;

    if (f->buf) {
        if (result == 0)
            e = hc_shrink(c, f->buf);
        else
            hc_entry_put(f->buf);
        f->buf = NULL;
        atomic_fetch_sub_explicit(&c->inflight_bytes, c->block_size, memory_order_relaxed);
    }
    if (e) {
        pthread_mutex_lock(&s->lock);
        want_mem = f->want_mem;
        pthread_mutex_unlock(&s->lock);
        hc_place(c, e, src, want_mem);
    }
    pthread_mutex_lock(&s->lock);
    w = f->linked ? hc_flight_unlink(s, f) : NULL;
    pthread_mutex_unlock(&s->lock);

    hc_waiters_call(f, w, e ? 0 : result, e, src);
    hc_entry_put(e);
    free(f);

    pthread_mutex_lock(&c->lock);
    c->nrunning--;
    hc_queue_drain_unlock(c);
    pthread_mutex_lock(&c->lock);
    if (--c->nflights == 0)
        pthread_cond_broadcast(&c->idle);
    pthread_mutex_unlock(&c->lock);
}

/* Disk missed (or failed, or was skipped): go to the origin for the waiters that allow
 * it; HC_FETCH_NO_ORIGIN waiters get -ENOENT now. */
static void hc_flight_origin(struct hc_fetch_ctx *f)
{
    struct hc_cache *c = f->c;
    struct hc_flight_shard *s = hc_flight_shard_of(c, f->hash);
    struct hc_waiter *w, **pp, *no_origin = NULL, **ntail = &no_origin;
    hc_fetcher_fn fetcher;
    bool give_up;

    pthread_mutex_lock(&s->lock);
    f->state = HC_FL_ORIGIN;
    for (pp = &f->waiters; (w = *pp);) {
        if (w->flags & HC_FETCH_NO_ORIGIN) {
            *pp = w->next;
            w->next = NULL;
            *ntail = w;
            ntail = &w->next;
        } else {
            pp = &w->next;
        }
    }
    f->wtail = pp;
    fetcher = f->fetcher;
    /* Nobody may go to the origin: leave the table now, in the same critical section, so
     * a caller arriving with a fetcher starts a new flight instead of joining a dead one. */
    give_up = !fetcher;
    if (give_up)
        (void)hc_flight_unlink(s, f);
    pthread_mutex_unlock(&s->lock);

    hc_waiters_call(f, no_origin, -ENOENT, NULL, HC_SRC_DISK);
    if (give_up) {
        hc_flight_finish(f, -ENOENT, HC_SRC_DISK);
        return;
    }
    hc_add(&c->origin_fetches, 1);
    fetcher(f, f->buf->data, c->block_size, f->fetcher_arg);
}

static void hc_flight_disk_done(ssize_t result, void *arg)
{
    struct hc_fetch_ctx *f = arg;

    if (result >= 0) {
        f->buf->len = (uint32_t)result;
        hc_flight_finish(f, 0, HC_SRC_DISK);
        return;
    }
    /* -ENOENT (including a checksum or key mismatch) or a device error: a miss. */
    hc_flight_origin(f);
}

/* Give the flight its buffer, then disk, then origin. Called once per flight. */
static void hc_flight_run(struct hc_fetch_ctx *f)
{
    struct hc_cache *c = f->c;
    struct hc_flight_shard *s = hc_flight_shard_of(c, f->hash);

    f->buf = hc_entry_alloc(f->key, f->klen, c->block_size, &c->acct);
    if (!f->buf) {
        hc_flight_finish(f, -ENOMEM, HC_SRC_ORIGIN);
        return;
    }
    hc_add(&c->inflight_bytes, c->block_size);
    if (c->disk && hc_disk_may_contain(c->disk, f->hash)) {
        pthread_mutex_lock(&s->lock);
        f->state = HC_FL_DISK;
        pthread_mutex_unlock(&s->lock);
        /* done may run before this returns (region still in memory): f is not ours after */
        if (hc_disk_lookup(c->disk, f->hash, f->key, f->klen, f->buf->data, c->block_size,
                           hc_flight_disk_done, f) == 0)
            return;
    }
    hc_flight_origin(f);
}

void hc_fetch_complete(struct hc_fetch_ctx *f, ssize_t len_or_err)
{
    struct hc_cache *c = f->c;

    /* Called exactly once per fetcher call (the contract): the flight is freed inside,
     * so a second call could not even be detected safely. */
    if (len_or_err > (ssize_t)c->block_size) {
        TLOG_E("hybridcache: fetcher returned %zd bytes for a %u-byte block", len_or_err,
               c->block_size);
        len_or_err = -EIO;
    }
    if (len_or_err < 0) {
        hc_add(&c->origin_errors, 1);
        hc_flight_finish(f, (int)len_or_err, HC_SRC_ORIGIN);
        return;
    }
    f->buf->len = (uint32_t)len_or_err;
    hc_add(&c->origin_bytes, (uint64_t)len_or_err);
    hc_flight_finish(f, 0, HC_SRC_ORIGIN);
}

static bool hc_key_ok(const void *key, size_t klen)
{
    return key && klen > 0 && klen <= HC_KEY_MAX;
}

int hc_fetch(struct hc_cache *c, const void *key, size_t klen, unsigned flags,
             hc_fetcher_fn fetcher, void *fetcher_arg, hc_done_fn done, void *done_arg)
{
    bool no_origin = flags & HC_FETCH_NO_ORIGIN;
    struct hc_flight_shard *s;
    struct hc_fetch_ctx *f;
    struct hc_waiter *w;
    struct hc_entry *e;
    uint64_t hash;

    if (!c || !hc_key_ok(key, klen) || !done || (!fetcher && !no_origin))
        return -EINVAL;
    hash = hc_key_hash(key, klen);
    if (flags & HC_FETCH_IF_ABSENT) {
        /* Cheap checks first, none of them a read or a policy hit; the flight table
         * below is checked under its lock. */
        if (hc_mem_contains(c->mem, hash, key, klen) ||
            (c->disk && hc_disk_may_contain(c->disk, hash)))
            return -EEXIST;
    } else if (flags & HC_FETCH_NOT_IN_MEM) {
        if (hc_mem_contains(c->mem, hash, key, klen))
            return -EEXIST;
    } else {
        e = hc_mem_lookup(c->mem, hash, key, klen, !(flags & HC_FETCH_STREAM));
        if (e) {
            done(0, e, HC_SRC_MEMORY, done_arg);
            return 0;
        }
    }

    s = hc_flight_shard_of(c, hash);
    pthread_mutex_lock(&s->lock);
    f = hc_flight_find(s, hash, key, klen);
    if (f && (flags & HC_FETCH_IF_ABSENT)) {
        pthread_mutex_unlock(&s->lock);
        return -EEXIST;
    }
    if (f) {
        if (no_origin && f->state == HC_FL_ORIGIN) {
            /* Past the disk already: this caller asked not to wait for the origin. */
            pthread_mutex_unlock(&s->lock);
            done(-ENOENT, NULL, HC_SRC_MERGED, done_arg);
            return 0;
        }
        w = malloc(sizeof(*w));
        if (!w) {
            pthread_mutex_unlock(&s->lock);
            return -ENOMEM;
        }
        *w = (struct hc_waiter){.done = done, .arg = done_arg, .flags = flags};
        *f->wtail = w;
        f->wtail = &w->next;
        if (!no_origin && !f->fetcher) {
            f->fetcher = fetcher;
            f->fetcher_arg = fetcher_arg;
        }
        if (!(flags & (HC_FETCH_PREFETCH | HC_FETCH_STREAM)))
            f->want_mem = true;
        pthread_mutex_unlock(&s->lock);
        hc_add(&c->merges, 1);
        return 0;
    }
    /* A flight for this key may have finished between the lookup above and the lock:
     * it placed the value before leaving the table, so look again (under the lock, so
     * no new flight can finish in between). */
    if (flags & (HC_FETCH_IF_ABSENT | HC_FETCH_NOT_IN_MEM)) {
        if (hc_mem_contains(c->mem, hash, key, klen)) {
            pthread_mutex_unlock(&s->lock);
            return -EEXIST;
        }
    } else {
        e = hc_mem_lookup(c->mem, hash, key, klen, !(flags & HC_FETCH_STREAM));
        if (e) {
            pthread_mutex_unlock(&s->lock);
            done(0, e, HC_SRC_MEMORY, done_arg);
            return 0;
        }
        hc_add(&c->recheck_misses, 1);
    }
    pthread_mutex_lock(&c->lock);
    if (c->closing) {
        pthread_mutex_unlock(&c->lock);
        pthread_mutex_unlock(&s->lock);
        return -ESHUTDOWN;
    }
    f = calloc(1, sizeof(*f) + klen);
    if (!f) {
        pthread_mutex_unlock(&c->lock);
        pthread_mutex_unlock(&s->lock);
        return -ENOMEM;
    }
    c->nflights++;
    pthread_mutex_unlock(&c->lock);
    f->c = c;
    f->hash = hash;
    f->klen = (uint32_t)klen;
    memcpy(f->key, key, klen);
    f->state = HC_FL_QUEUED;
    f->want_mem = !(flags & (HC_FETCH_PREFETCH | HC_FETCH_STREAM));
    f->fetcher = no_origin ? NULL : fetcher;
    f->fetcher_arg = no_origin ? NULL : fetcher_arg;
    f->first = (struct hc_waiter){.done = done, .arg = done_arg, .flags = flags};
    f->waiters = &f->first;
    f->wtail = &f->first.next;
    f->linked = true;
    f->next = s->head;
    s->head = f;
    pthread_mutex_unlock(&s->lock);

    hc_flight_admit(f);
    return 0;
}

/* ---- partial disk reads (hc_fetch_range) ---- */

/*
 * A range of at most 1/HC_PARTIAL_SHARE of the block is read partially. Past that, reading
 * the block once and promoting it serves the neighbouring reads that tend to follow from
 * memory, and the partial read's device time nears the whole block's (a 256 KiB read of
 * a 1 MiB block costs a good part of the 1 MiB read on the disks measured, plus the
 * header read), while a 4-64 KiB read costs 5-10% of it.
 */
#define HC_PARTIAL_SHARE 4

/* One partial disk read in progress: what to call, and what to fall back to. */
struct hc_part {
    struct hc_cache *c;
    struct hc_entry *e;              /* the partial entry; charged to c->acct */
    unsigned flags;
    hc_fetcher_fn fetcher;
    void *fetcher_arg;
    hc_done_fn done;
    void *done_arg;
};

/* Completion of hc_disk_lookup_range (maybe inside it, maybe on an engine thread). */
static void hc_part_done(ssize_t result, void *arg)
{
    struct hc_part *p = arg;
    struct hc_cache *c = p->c;
    struct hc_entry *e = p->e;
    int rc;

    atomic_fetch_sub_explicit(&c->inflight_bytes, e->cap, memory_order_relaxed);
    if (result >= 0) {
        e->len = (uint32_t)result;
        p->done(0, e, HC_SRC_DISK, p->done_arg);  /* our reference passes to the caller */
        free(p);
        return;
    }
    /* A miss, no chunk table, a bad chunk or a device error: the whole-block path. Its
     * memory lookup repeats the miss we counted already. */
    hc_add(&c->recheck_misses, 1);
    rc = hc_fetch(c, e->key, e->klen, p->flags, p->fetcher, p->fetcher_arg, p->done,
                  p->done_arg);
    if (rc < 0)
        p->done(rc, NULL, HC_SRC_DISK, p->done_arg);
    hc_entry_put(e);
    free(p);
}

int hc_fetch_range(struct hc_cache *c, const void *key, size_t klen, unsigned flags,
                   uint64_t off, size_t len, hc_fetcher_fn fetcher, void *fetcher_arg,
                   hc_done_fn done, void *done_arg)
{
    struct hc_part *p;
    struct hc_entry *e;
    uint64_t hash;
    size_t cap;
    int rc;

    if (!c || !hc_key_ok(key, klen) || !done || (!fetcher && !(flags & HC_FETCH_NO_ORIGIN)))
        return -EINVAL;
    if (!c->disk || (flags & (HC_FETCH_PREFETCH | HC_FETCH_IF_ABSENT)) || len == 0 ||
        off >= c->block_size || len > c->block_size / HC_PARTIAL_SHARE)
        return hc_fetch(c, key, klen, flags, fetcher, fetcher_arg, done, done_arg);
    hash = hc_key_hash(key, klen);
    e = hc_mem_lookup(c->mem, hash, key, klen, !(flags & HC_FETCH_STREAM));
    if (e) {
        done(0, e, HC_SRC_MEMORY, done_arg);
        return 0;
    }
    len = CMN_MIN(len, (size_t)(c->block_size - off));
    cap = hc_disk_range_cap((uint32_t)off, (uint32_t)len);
    /* A block the disk does not hold goes to the origin: evict nothing for it. */
    if (!hc_disk_may_contain(c->disk, hash))
        goto whole;
    /* Bounded like a flight's buffer: when it does not fit, the flight path queues. */
    hc_mem_make_room(c->mem, cap);
    if (atomic_load(&c->acct.used) + cap > c->acct.limit)
        goto whole;
    e = hc_entry_alloc(key, klen, cap, &c->acct);
    p = e ? malloc(sizeof(*p)) : NULL;
    if (!p) {
        hc_entry_put(e);
        goto whole;
    }
    e->off = hc_disk_range_off((uint32_t)off);
    *p = (struct hc_part){ .c = c, .e = e, .flags = flags, .fetcher = fetcher,
                           .fetcher_arg = fetcher_arg, .done = done, .done_arg = done_arg };
    hc_add(&c->inflight_bytes, cap);
    rc = hc_disk_lookup_range(c->disk, hash, key, klen, (uint32_t)off, (uint32_t)len, e->data,
                              cap, hc_part_done, p);
    if (rc == 0)
        return 0;
    atomic_fetch_sub_explicit(&c->inflight_bytes, cap, memory_order_relaxed);
    hc_entry_put(e);
    free(p);
whole:
    hc_add(&c->recheck_misses, 1);
    return hc_fetch(c, key, klen, flags, fetcher, fetcher_arg, done, done_arg);
}

int hc_reserve(struct hc_cache *c, uint64_t bytes)
{
    uint64_t used;

    if (!c)
        return -EINVAL;
    hc_mem_make_room(c->mem, bytes);
    used = atomic_load(&c->acct.used);
    do {
        if (used + bytes > c->acct.limit)
            return -ENOBUFS;
    } while (!atomic_compare_exchange_weak(&c->acct.used, &used, used + bytes));
    hc_add(&c->reserved, bytes);
    return 0;
}

void hc_unreserve(struct hc_cache *c, uint64_t bytes)
{
    if (!c || !bytes)
        return;
    atomic_fetch_sub(&c->acct.used, bytes);
    atomic_fetch_sub(&c->reserved, bytes);
}

struct hc_sync {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done;
    int result;
    struct hc_entry *e;
    enum hc_source src;
};

static void hc_sync_done(int result, struct hc_entry *e, enum hc_source src, void *arg)
{
    struct hc_sync *sy = arg;

    pthread_mutex_lock(&sy->lock);
    sy->result = result;
    sy->e = e;
    sy->src = src;
    sy->done = true;
    pthread_cond_signal(&sy->cond);
    pthread_mutex_unlock(&sy->lock);
}

/* hc_fetch (@off, @len ignored) or, with @range, hc_fetch_range, waiting for the result. */
static int hc_fetch_wait(struct hc_cache *c, const void *key, size_t klen, unsigned flags,
                         bool range, uint64_t off, size_t len, hc_fetcher_fn fetcher,
                         void *fetcher_arg, struct hc_entry **out, enum hc_source *src)
{
    struct hc_sync sy = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    int rc;

    *out = NULL;
    rc = range ? hc_fetch_range(c, key, klen, flags, off, len, fetcher, fetcher_arg,
                                hc_sync_done, &sy)
               : hc_fetch(c, key, klen, flags, fetcher, fetcher_arg, hc_sync_done, &sy);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&sy.lock);
    while (!sy.done)
        pthread_cond_wait(&sy.cond, &sy.lock);
    pthread_mutex_unlock(&sy.lock);
    pthread_cond_destroy(&sy.cond);
    pthread_mutex_destroy(&sy.lock);
    if (src)
        *src = sy.src;
    *out = sy.e;
    return sy.result;
}

int hc_fetch_sync(struct hc_cache *c, const void *key, size_t klen, unsigned flags,
                  hc_fetcher_fn fetcher, void *fetcher_arg, struct hc_entry **out,
                  enum hc_source *src)
{
    return hc_fetch_wait(c, key, klen, flags, false, 0, 0, fetcher, fetcher_arg, out, src);
}

int hc_fetch_range_sync(struct hc_cache *c, const void *key, size_t klen, unsigned flags,
                        uint64_t off, size_t len, hc_fetcher_fn fetcher, void *fetcher_arg,
                        struct hc_entry **out, enum hc_source *src)
{
    return hc_fetch_wait(c, key, klen, flags, true, off, len, fetcher, fetcher_arg, out, src);
}

struct hc_entry *hc_get(struct hc_cache *c, const void *key, size_t klen)
{
    if (!c || !hc_key_ok(key, klen))
        return NULL;
    return hc_mem_lookup(c->mem, hc_key_hash(key, klen), key, klen, true);
}

int hc_insert(struct hc_cache *c, const void *key, size_t klen, const void *data, size_t len,
              unsigned flags)
{
    struct hc_entry *e;
    int rc;

    if (!c || !hc_key_ok(key, klen) || (!data && len))
        return -EINVAL;
    if (len > c->block_size)
        return -E2BIG;
    if ((flags & HC_INSERT_DISK_ONLY) && c->disk) {
        rc = hc_disk_insert(c->disk, hc_key_hash(key, klen), key, klen, data, len);
        return rc == -EAGAIN ? 0 : rc; /* an admission drop is counted, not an error */
    }
    hc_mem_make_room(c->mem, len);
    e = hc_entry_alloc(key, klen, CMN_ALIGN_UP(len, (size_t)IOENG_BUF_ALIGN), &c->acct);
    if (!e)
        return -ENOMEM;
    memcpy(e->data, data, len);
    e->len = (uint32_t)len;
    /* DISK_ONLY without a disk: the memory tier, placed for early eviction. */
    e->low_priority = (flags & HC_INSERT_DISK_ONLY) != 0;
    rc = hc_mem_insert(c->mem, e);
    if (rc == 0 && c->disk && c->write_mode == HC_WRITE_ON_INSERT)
        (void)hc_disk_insert(c->disk, e->hash, key, klen, data, len);
    hc_entry_put(e);
    return rc;
}

int hc_remove(struct hc_cache *c, const void *key, size_t klen)
{
    uint64_t hash;
    int rm, rd = -ENOENT;

    if (!c || !hc_key_ok(key, klen))
        return -EINVAL;
    hash = hc_key_hash(key, klen);
    rm = hc_mem_remove(c->mem, hash, key, klen);
    if (c->disk)
        rd = hc_disk_remove(c->disk, hash, key, klen);
    return rm == 0 || rd == 0 ? 0 : -ENOENT;
}

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
               "then stopped: %s", why, written, n, (unsigned long long)(cmn_now_ms() - t0),
               strerror(-rc));
    else
        TLOG_I("hybridcache: %s: %zu memory-only blocks (%llu KiB) written to the disk in "
               "%llu ms", why, written, (unsigned long long)(bytes >> 10),
               (unsigned long long)(cmn_now_ms() - t0));
    return rc;
}

int hc_flush(struct hc_cache *c)
{
    if (!c)
        return -EINVAL;
    if (!c->disk)
        return 0;
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
#define HC_CHECK(cond)                                                                      \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            TLOG_E("hybridcache: invariant broken: %s (%s:%d)", #cond, __FILE__, __LINE__);  \
            abort();                                                                         \
        }                                                                                    \
    } while (0)

static void hc_check_invariants(struct hc_cache *c)
{
    uint64_t queued = 0;
    struct hc_fetch_ctx *f;

    for (unsigned i = 0; i < HC_FLIGHT_SHARDS; i++) {
        pthread_mutex_lock(&c->fl[i].lock);
        for (f = c->fl[i].head; f; f = f->next) {
            HC_CHECK(f->linked);
            HC_CHECK(hc_flight_shard_of(c, f->hash) == &c->fl[i]);
            HC_CHECK(f->state <= HC_FL_ORIGIN);
            for (struct hc_fetch_ctx *g = f->next; g; g = g->next)
                HC_CHECK(!(g->hash == f->hash && g->klen == f->klen &&
                           memcmp(g->key, f->key, f->klen) == 0));
        }
        pthread_mutex_unlock(&c->fl[i].lock);
    }
    pthread_mutex_lock(&c->lock);
    for (f = c->queue_head; f; f = f->queue_next)
        queued++;
    HC_CHECK(queued + c->nrunning <= c->nflights);
    HC_CHECK(!c->queue_head || c->nrunning > 0 || c->draining);
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
    st->inflight_bytes = atomic_load(&c->inflight_bytes) + atomic_load(&c->reserved);
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
        st->disk_used = ds.used;
        st->disk_capacity = ds.capacity;
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
        (void)hc_disk_insert(c->disk, e->hash, e->key, e->klen, e->data, e->len);
    hc_entry_put(e);
}

/*
 * An estimate, before the device is open, of what the disk tier may hold at once
 * (hc_disk_mem_max() gives the exact figure after): its write queue (whole region
 * buffers, at least one; the disk tier rounds the same way) and its lookup read buffers
 * (io_depth reads of a block with header, key and alignment slack; a read is not aligned
 * to the entry, so it cannot land in the flight's buffer directly).
 */
static uint64_t hc_disk_reserve(const struct hc_conf *conf, uint32_t bs, uint64_t *wq_out)
{
    uint64_t rs = conf->region_size, wq = conf->write_queue_bytes;
    unsigned depth = conf->io_depth ? conf->io_depth : HC_DISK_IO_DEPTH_DEFAULT;

    if (!rs) {
        rs = HC_REGION_DEFAULT;
        while (rs < 2ull * (bs + HC_KEY_MAX + 2 * IOENG_BUF_ALIGN))
            rs *= 2;
    }
    if (!wq)
        wq = CMN_MIN(4 * rs, conf->mem_capacity / 4);
    wq = CMN_MAX(wq / rs, 1) * rs;
    *wq_out = wq;
    /* + one crc a 4 KiB chunk: the chunk table (disk_i.h) */
    return wq + (uint64_t)depth * (bs + bs / 1024 + HC_KEY_MAX + 4ull * IOENG_BUF_ALIGN);
}

static unsigned hc_auto_shards(uint64_t tier, uint32_t bs)
{
    unsigned n = 1;

    while (n < HC_MEM_SHARDS_AUTO_MAX && tier / (2ull * n) >= (uint64_t)HC_MEM_BLOCKS_PER_SHARD * bs)
        n *= 2;
    return n;
}

static int hc_open_disk(struct hc_cache *c, const struct hc_conf *conf, uint64_t wq)
{
    struct dev *dev = conf->disk_dev;
    bool created = false;
    struct stat st;
    int rc;

    if (!dev) {
        struct dev_conf dc = {.path = conf->disk_path, .size = conf->disk_capacity,
                              .direct_io = conf->direct_io, .create = true};
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
        .io_depth = conf->io_depth ? conf->io_depth : HC_DISK_IO_DEPTH_DEFAULT,
        .block_size = c->block_size,
        .region_size = conf->region_size,
        .capacity = conf->disk_capacity,
        .compression = conf->compression,
        .identity = conf->identity,
        .refuse_unknown = conf->refuse_unknown,
        .write_queue_bytes = wq,
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
           "%u-byte blocks%s need %llu", (unsigned long long)conf->mem_capacity, *shards, bs,
           has_disk ? " plus the disk write queue and read buffers" : "",
           (unsigned long long)(2ull * bs * *shards + reserve));
    return 0;
}

int hc_create(const struct hc_conf *conf, struct hc_cache **out)
{
    uint32_t bs;
    uint64_t reserve = 0, wq = 0, tier;
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
    if (has_disk)
        reserve = hc_disk_reserve(conf, bs, &wq);
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
        rc = hc_open_disk(c, conf, wq);
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
    (void)hc_buf_pool_create(bs, (unsigned)CMN_MIN((uint64_t)HC_POOL_MAX,
                                                   (tier >> HC_POOL_BUDGET_SHIFT) / bs),
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
        .unread_share = has_disk ? HC_MEM_UNREAD_SHARE : 0,
    };
    rc = hc_mem_create(&mconf, &c->mem);
    if (rc < 0)
        goto fail_pool;
    TLOG_I("hybridcache: %u-byte blocks, memory %llu bytes (%llu for the tier and in-flight "
           "fetches, %u shards, %s)%s", bs, (unsigned long long)conf->mem_capacity,
           (unsigned long long)tier, shards, conf->mem_policy ? conf->mem_policy : "s3fifo",
           has_disk ? " + disk" : "");
    *out = c;
    return 0;

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
