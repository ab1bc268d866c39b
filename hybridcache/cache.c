/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cache.c: the cooperator: hybridcache.h on top of the memory tier (hc_mem) and the disk
 * tier (hc_disk), with single-flight fetches and one memory budget.
 *
 * DESIGN
 * A lookup misses memory, then joins or creates a flight (struct hc_flight) in a
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
 * readers, in-flight fetch buffers) charges it, and both its limit and
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
 * disk-resident blocks that neither counts a hit nor lets the policy see the others). A
 * fetcher that reads several blocks in one request scatters them into the flights' own
 * buffers (the fs's prefetch groups), so its memory is in the budget already.
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
#include "hybridcache/cache_i.h"
#include "hybridcache/hc_i.h"
#include "ioengine/ioengine.h"

static void hc_flight_run(struct hc_flight *f);

static void hc_add(_Atomic uint64_t *ctr, uint64_t n)
{
    atomic_fetch_add_explicit(ctr, n, memory_order_relaxed);
}

struct hc_flight_shard *hc_flight_shard_of(struct hc_cache *c, uint64_t hash)
{
    /* Bits the memory tier does not use for its own sharding (it takes bits 40+). */
    return &c->fl[(hash >> 8) & (HC_FLIGHT_SHARDS - 1)];
}

/* @return the flight for @key or NULL. Caller holds s->lock. */
static struct hc_flight *hc_flight_find(struct hc_flight_shard *s, uint64_t hash, const void *key,
                                        size_t klen)
{
    struct hc_flight *f;

    for (f = s->head; f; f = f->next)
        if (f->hash == hash && f->klen == klen && memcmp(f->key, key, klen) == 0)
            return f;
    return NULL;
}

/* Take @f out of its shard and hand its waiters to the caller. Caller holds s->lock. */
static struct hc_waiter *hc_flight_unlink(struct hc_flight_shard *s, struct hc_flight *f)
{
    struct hc_flight **pp = &s->head;
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
static void hc_waiters_call(struct hc_flight *f, struct hc_waiter *w, int result,
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
    struct hc_flight *f;

    if (c->draining) {
        /* The drainer looks again before it stops (drain_again), so it sees us. */
        c->drain_again = true;
        pthread_mutex_unlock(&c->lock);
        return;
    }
    c->draining = true;
again:
    while (c->queue_head) {
        bool fits, held;

        pthread_mutex_unlock(&c->lock);
        hc_mem_make_room(c->mem, c->block_size);
        fits = atomic_load(&c->acct.used) + c->block_size <= c->acct.limit;
        held = hc_defer_full(c->defer);
        pthread_mutex_lock(&c->lock);
        f = c->queue_head;
        if (f && held)
            hc_add(&c->defer_holds, 1);
        if (!f || held || (!fits && c->nrunning >= HC_FLIGHT_MIN_RUNNING))
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
    /* Someone called while we were here (a flight's end, the deferred writer's kick after
     * it made room) and left the queue to us: look again, whatever stopped the loop. */
    if (c->drain_again) {
        c->drain_again = false;
        goto again;
    }
    c->draining = false;
    pthread_mutex_unlock(&c->lock);
}

void hc_queue_kick(void *cache)
{
    struct hc_cache *c = cache;

    pthread_mutex_lock(&c->lock);
    hc_queue_drain_unlock(c);
}

/* A new flight: run it now if its buffer fits, else queue it behind earlier ones. */
static void hc_flight_admit(struct hc_flight *f)
{
    struct hc_cache *c = f->c;
    bool fits, held, run = false;

    hc_mem_make_room(c->mem, f->cap);
    fits = atomic_load(&c->acct.used) + f->cap <= c->acct.limit;
    /* A full deferred disk writer holds back every flight, the overcommitted ones too:
     * the block would be dropped, and the writer frees room on its own (cache_defer.c). */
    held = hc_defer_full(c->defer);
    if (held)
        hc_add(&c->defer_holds, 1);
    pthread_mutex_lock(&c->lock);
    if (!c->queue_head && !held && (fits || c->nrunning < HC_FLIGHT_MIN_RUNNING)) {
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
    else if (held && !hc_defer_full(c->defer))
        hc_queue_kick(c); /* the writer made room (and kicked) before we were queued */
}

/* ---- one flight ---- */

/* Where a fetched value goes. @e is the flight's; insertion takes its own reference. */
static void hc_place(struct hc_cache *c, struct hc_entry *e, enum hc_source src, bool want_mem,
                     bool stream)
{
    e->low_priority = !want_mem;
    /* Whole blocks only: the quota of a memory-only tier recycles block buffers; pieces
     * (a column query's) are small, and a scan that bypasses the page cache (O_DIRECT)
     * takes them from here while the query's own copies sit in the kernel's. */
    e->stream = !want_mem && stream && e->cap >= c->block_size;
    /* A disk hit only prefetchers asked for stays on the disk (nothing to gain). */
    if (!c->disk || want_mem || src == HC_SRC_ORIGIN)
        (void)hc_mem_insert(c->mem, e);
    if (c->disk && src == HC_SRC_ORIGIN && (c->write_mode == HC_WRITE_ON_INSERT || !want_mem))
        hc_defer_insert(c->defer, e);
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
static void hc_flight_finish(struct hc_flight *f, int result, enum hc_source src)
{
    struct hc_cache *c = f->c;
    struct hc_flight_shard *s = hc_flight_shard_of(c, f->hash);
    struct hc_entry *e = NULL;
    struct hc_waiter *w;
    bool want_mem, stream;

    if (f->buf) {
        if (result == 0)
            e = hc_shrink(c, f->buf);
        else
            hc_entry_put(f->buf);
        f->buf = NULL;
        atomic_fetch_sub_explicit(&c->inflight_bytes, f->cap, memory_order_relaxed);
    }
    if (e && f->ref_out) {
        hc_entry_ref(e);
        *f->ref_out = e;
    }
    if (e) {
        pthread_mutex_lock(&s->lock);
        want_mem = f->want_mem;
        stream = f->stream;
        pthread_mutex_unlock(&s->lock);
        hc_place(c, e, src, want_mem, stream);
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
 * it; HC_FETCH_NO_ORIGIN waiters get -ENOENT now (but those that came to join it). */
static void hc_flight_origin(struct hc_flight *f)
{
    struct hc_cache *c = f->c;
    struct hc_flight_shard *s = hc_flight_shard_of(c, f->hash);
    struct hc_waiter *w, **pp, *no_origin = NULL, **ntail = &no_origin;
    hc_fetcher_fn fetcher;
    bool give_up;

    pthread_mutex_lock(&s->lock);
    f->state = HC_FL_ORIGIN;
    for (pp = &f->waiters; (w = *pp);) {
        if ((w->flags & (HC_FETCH_NO_ORIGIN | HC_FETCH_JOIN)) == HC_FETCH_NO_ORIGIN) {
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
    if (give_up) /* the waiters that came to join it miss too */
        *ntail = hc_flight_unlink(s, f);
    pthread_mutex_unlock(&s->lock);

    hc_waiters_call(f, no_origin, -ENOENT, NULL, HC_SRC_DISK);
    if (give_up) {
        hc_flight_finish(f, -ENOENT, HC_SRC_DISK);
        return;
    }
    hc_add(&c->origin_fetches, 1);
    fetcher(f, f->buf->data, f->cap, f->fetcher_arg);
}

static void hc_flight_disk_done(ssize_t result, void *arg)
{
    struct hc_flight *f = arg;

    if (result >= 0) {
        f->buf->len = (uint32_t)result;
        hc_flight_finish(f, 0, HC_SRC_DISK);
        return;
    }
    /* -ENOENT (including a checksum or key mismatch) or a device error: a miss. */
    hc_flight_origin(f);
}

/* Give the flight its buffer, then disk, then origin. Called once per flight. */
static void hc_flight_run(struct hc_flight *f)
{
    struct hc_cache *c = f->c;
    struct hc_flight_shard *s = hc_flight_shard_of(c, f->hash);

    f->buf = hc_entry_alloc(f->key, f->klen, f->cap, &c->acct);
    if (!f->buf) {
        hc_flight_finish(f, -ENOMEM, HC_SRC_ORIGIN);
        return;
    }
    hc_add(&c->inflight_bytes, f->cap);
    if (c->disk && hc_disk_may_contain(c->disk, f->hash)) {
        pthread_mutex_lock(&s->lock);
        f->state = HC_FL_DISK;
        pthread_mutex_unlock(&s->lock);
        /* done may run before this returns (region still in memory): f is not ours after */
        if (hc_disk_lookup(c->disk, f->hash, f->key, f->klen, f->buf->data, f->cap,
                           hc_flight_disk_done, f) == 0)
            return;
    }
    hc_flight_origin(f);
}

void hc_fetch_complete(struct hc_flight *f, ssize_t len_or_err)
{
    struct hc_cache *c = f->c;

    /* Called exactly once per fetcher call (the contract): the flight is freed inside,
     * so a second call could not even be detected safely. */
    if (len_or_err > (ssize_t)f->cap) {
        TLOG_E("hybridcache: fetcher returned %zd bytes for a %u-byte buffer", len_or_err, f->cap);
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

void hc_fetch_complete_ref(struct hc_flight *f, ssize_t len_or_err, struct hc_entry **out)
{
    *out = NULL;
    f->ref_out = out; /* the flight is the fetcher's until completed: no lock needed */
    hc_fetch_complete(f, len_or_err);
}

static bool hc_key_ok(const void *key, size_t klen)
{
    return key && klen > 0 && klen <= HC_KEY_MAX;
}

/*
 * Add a waiter to @f, the key's flight (under its shard lock): its done runs with the
 * flight's result; a caller that may go to the origin lends the flight its fetcher if it
 * has none yet, and a non-prefetch caller makes it place the value in memory.
 * @return 0 or -ENOMEM.
 */
static int hc_flight_join(struct hc_cache *c, struct hc_flight *f, unsigned flags,
                          hc_fetcher_fn fetcher, void *fetcher_arg, hc_done_fn done, void *done_arg)
{
    bool no_origin = flags & HC_FETCH_NO_ORIGIN;
    struct hc_waiter *w = malloc(sizeof(*w));

    if (!w)
        return -ENOMEM;
    *w = (struct hc_waiter){.done = done, .arg = done_arg, .flags = flags};
    *f->wtail = w;
    f->wtail = &w->next;
    if (!no_origin && !f->fetcher) {
        f->fetcher = fetcher;
        f->fetcher_arg = fetcher_arg;
    }
    if (!(flags & (HC_FETCH_PREFETCH | HC_FETCH_STREAM)))
        f->want_mem = true;
    if (!(flags & HC_FETCH_STREAM))
        f->stream = false;
    hc_add(&c->merges, 1);
    return 0;
}

/* hc_fetch with a flight buffer of @cap bytes (hc_fetch_sized). */
static int hc_fetch_cap(struct hc_cache *c, const void *key, size_t klen, unsigned flags,
                        size_t cap, hc_fetcher_fn fetcher, void *fetcher_arg, hc_done_fn done,
                        void *done_arg)
{
    bool no_origin = flags & HC_FETCH_NO_ORIGIN;
    struct hc_flight_shard *s;
    struct hc_flight *f;
    struct hc_entry *e;
    uint64_t hash;
    int rc;

    if (!c || !hc_key_ok(key, klen) || !done || (!fetcher && !no_origin) || cap == 0 ||
        cap > c->block_size)
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
    if (f && no_origin &&
        ((flags & HC_FETCH_JOIN) ? f->state == HC_FL_QUEUED : f->state == HC_FL_ORIGIN)) {
        /* Past the disk already: this caller asked not to wait for the origin (or, to
         * join, a flight with a buffer: this one waits for memory). */
        pthread_mutex_unlock(&s->lock);
        done(-ENOENT, NULL, HC_SRC_MERGED, done_arg);
        return 0;
    }
    if (f) {
        rc = hc_flight_join(c, f, flags, fetcher, fetcher_arg, done, done_arg);
        pthread_mutex_unlock(&s->lock);
        return rc;
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
    f->cap = (uint32_t)cap;
    f->klen = (uint32_t)klen;
    memcpy(f->key, key, klen);
    f->state = HC_FL_QUEUED;
    f->want_mem = !(flags & (HC_FETCH_PREFETCH | HC_FETCH_STREAM));
    f->stream = (flags & HC_FETCH_STREAM) != 0;
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

int hc_fetch(struct hc_cache *c, const void *key, size_t klen, unsigned flags,
             hc_fetcher_fn fetcher, void *fetcher_arg, hc_done_fn done, void *done_arg)
{
    return hc_fetch_cap(c, key, klen, flags, c ? c->block_size : 1, fetcher, fetcher_arg, done,
                        done_arg);
}

int hc_fetch_sized(struct hc_cache *c, const void *key, size_t klen, unsigned flags, size_t cap,
                   hc_fetcher_fn fetcher, void *fetcher_arg, hc_done_fn done, void *done_arg)
{
    return hc_fetch_cap(c, key, klen, flags, cap, fetcher, fetcher_arg, done, done_arg);
}

bool hc_contains(struct hc_cache *c, const void *key, size_t klen)
{
    uint64_t hash;
    bool in;

    if (!c || !hc_key_ok(key, klen))
        return false;
    hash = hc_key_hash(key, klen);
    if (hc_mem_contains(c->mem, hash, key, klen) || (c->disk && hc_disk_may_contain(c->disk, hash)))
        return true;
    struct hc_flight_shard *s = hc_flight_shard_of(c, hash);
    pthread_mutex_lock(&s->lock);
    in = hc_flight_find(s, hash, key, klen) != NULL;
    pthread_mutex_unlock(&s->lock);
    return in;
}

/* ---- partial disk reads (hc_fetch_range) ---- */

/*
 * A range of at most 1/HC_PARTIAL_SHARE of the block is read partially. Past that, reading
 * the block once and promoting it serves the neighbouring reads that tend to follow from
 * memory, and the partial read's device time nears the whole block's (plus the header
 * read), while a read of a few pages costs a small part of it (docs/performance.md,
 * "Constants").
 */
#define HC_PARTIAL_SHARE 4

/* One partial disk read in progress: what to call, and what to fall back to. */
struct hc_part {
    struct hc_cache *c;
    struct hc_entry *e; /* the partial entry; charged to c->acct */
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
        p->done(0, e, HC_SRC_DISK, p->done_arg); /* our reference passes to the caller */
        free(p);
        return;
    }
    /* A miss, no chunk table, a bad chunk or a device error: the whole-block path. Its
     * memory lookup repeats the miss we counted already. */
    hc_add(&c->recheck_misses, 1);
    rc = hc_fetch(c, e->key, e->klen, p->flags, p->fetcher, p->fetcher_arg, p->done, p->done_arg);
    if (rc < 0)
        p->done(rc, NULL, HC_SRC_DISK, p->done_arg);
    hc_entry_put(e);
    free(p);
}

int hc_fetch_range(struct hc_cache *c, const void *key, size_t klen, unsigned flags, uint64_t off,
                   size_t len, hc_fetcher_fn fetcher, void *fetcher_arg, hc_done_fn done,
                   void *done_arg)
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
    *p = (struct hc_part){.c = c,
                          .e = e,
                          .flags = flags,
                          .fetcher = fetcher,
                          .fetcher_arg = fetcher_arg,
                          .done = done,
                          .done_arg = done_arg};
    hc_add(&c->inflight_bytes, cap);
    rc = hc_disk_lookup_range(c->disk, hash, key, klen, (uint32_t)off, (uint32_t)len, e->data, cap,
                              hc_part_done, p);
    if (rc == 0)
        return 0;
    atomic_fetch_sub_explicit(&c->inflight_bytes, cap, memory_order_relaxed);
    hc_entry_put(e);
    free(p);
whole:
    hc_add(&c->recheck_misses, 1);
    return hc_fetch(c, key, klen, flags, fetcher, fetcher_arg, done, done_arg);
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
    rc = range ? hc_fetch_range(c, key, klen, flags, off, len, fetcher, fetcher_arg, hc_sync_done,
                                &sy)
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
        hc_defer_insert(c->defer, e);
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
