/* SPDX-License-Identifier: Apache-2.0 */
/*
 * evict_i.h: private to mem.c and evict_<policy>.c: the policy ops tables and the
 * intrusive byte-counting queue every policy is built from.
 *
 * A queue links entries through e->pn.link (common/list.h): head = most recently queued,
 * tail = the next candidate; `prev` points toward the head, `next` toward the tail. Each queue
 * counts its entries and their bytes (e->cap, the bytes charged to memory), so the
 * policies can size their queues in bytes (entries have different sizes).
 * All of it is protected by the owning shard's lock; nothing here locks.
 */
#ifndef TIERFS_HC_EVICT_I_H
#define TIERFS_HC_EVICT_I_H

#include "hybridcache/hc_i.h"

/* The policies, listed once in mem.c's table for hc_policy_find(). */
extern const struct hc_policy_ops hc_policy_lru_ops;
extern const struct hc_policy_ops hc_policy_s3fifo_ops;
extern const struct hc_policy_ops hc_policy_sieve_ops;
extern const struct hc_policy_ops hc_policy_tinylfu_ops;

/*
 * Correlated hits. The kernel splits one read of a block into several FUSE reads (128 KiB
 * or 256 KiB each), and each is a hit: a sequential scan would read every block "several
 * times" and a frequency-based policy would take the scan for a hot working set. As in
 * LRU-K's "correlated reference period" and 2Q's A1in queue, hits that follow the last
 * counted access of an entry within HC_POLICY_CORRELATED_MS are one access, not re-use.
 * A time window rather than a count of other accesses in between: concurrent readers
 * interleave their gets, so a count would have to grow with the number of readers, and
 * a working set read in a loop with no misses in between would never count at all.
 * The window is long enough for a slow reader to finish a block (1 MiB in 4 gets at
 * 5 MB/s) and short against the gap between two reads of a working-set block by
 * different reads. (The S3-FIFO and SIEVE papers count every request: their traces are
 * of whole objects, which no kernel splits.) The stamp moves only on a counted
 * access, so a block read in a loop faster than the window still counts once per window.
 * A prefetched (low-priority) entry has had no access yet, so its first hit counts
 * whenever it comes: the reader it was prefetched for takes it through a reference that
 * fs/read.c holds (no hit at all), so a hit comes from another read. The rest of that
 * read's requests are correlated with it as usual.
 */
#define HC_PN_ACCESSED 0x1 /* pn.flags: pn.stamp holds an access (a prefetch is none) */

/* Stamp a new entry: a normal insert is an access; a prefetch is not. */
static inline void hc_policy_stamp_insert(struct hc_entry *e, uint32_t now_ms)
{
    e->pn.flags = e->low_priority ? 0 : HC_PN_ACCESSED;
    e->pn.stamp = now_ms;
}

/* @return true when a hit at @now_ms is re-use (and stamp it), false when it belongs to
 * the access that inserted @e or last counted for it. */
static inline bool hc_policy_reuse(struct hc_entry *e, uint32_t now_ms)
{
    /* Unsigned difference: right across a wrap of the 32-bit clock. */
    if ((e->pn.flags & HC_PN_ACCESSED) && now_ms - e->pn.stamp < HC_POLICY_CORRELATED_MS)
        return false;
    e->pn.flags |= HC_PN_ACCESSED;
    e->pn.stamp = now_ms;
    return true;
}

struct hc_queue {
    struct cmn_list l; /* of e->pn.link */
    uint64_t bytes;
    uint64_t count;
};

#define HC_QUEUE_ENTRY(lk) CMN_LIST_ENTRY(lk, struct hc_entry, pn.link)

/* The most recently queued entry, the next candidate (tail), and an entry's neighbours
 * toward the head (prev) and the tail (next); NULL past the ends. */
static inline struct hc_entry *hc_queue_head(const struct hc_queue *q)
{
    return HC_QUEUE_ENTRY(q->l.head);
}
static inline struct hc_entry *hc_queue_tail(const struct hc_queue *q)
{
    return HC_QUEUE_ENTRY(q->l.tail);
}
static inline struct hc_entry *hc_queue_prev(const struct hc_entry *e)
{
    return HC_QUEUE_ENTRY(e->pn.link.prev);
}

static inline void hc_queue_push_head(struct hc_queue *q, struct hc_entry *e)
{
    cmn_list_push_head(&q->l, &e->pn.link);
    q->bytes += e->cap;
    q->count++;
}

static inline void hc_queue_push_tail(struct hc_queue *q, struct hc_entry *e)
{
    cmn_list_push_tail(&q->l, &e->pn.link);
    q->bytes += e->cap;
    q->count++;
}

/* Insert @e on the tail side of @pos: @e becomes @pos's older neighbour. @pos is in @q. */
static inline void hc_queue_insert_after(struct hc_queue *q, struct hc_entry *pos,
                                         struct hc_entry *e)
{
    cmn_list_insert_after(&q->l, &pos->pn.link, &e->pn.link);
    q->bytes += e->cap;
    q->count++;
}

static inline void hc_queue_unlink(struct hc_queue *q, struct hc_entry *e)
{
    cmn_list_unlink(&q->l, &e->pn.link);
    q->bytes -= e->cap;
    q->count--;
}

static inline struct hc_entry *hc_queue_pop_tail(struct hc_queue *q)
{
    struct hc_entry *e = hc_queue_tail(q);
    if (e)
        hc_queue_unlink(q, e);
    return e;
}

/* TinyLFU's admission test (evict_tinylfu.c, inside its evict): should @cand, read more
 * often by the sketch, replace main's @victim? A tie keeps the victim. Exposed for the
 * policy tests; not part of hc_policy_ops (no other policy admits). */
bool hc_tinylfu_admit(struct hc_policy *p, struct hc_entry *cand, struct hc_entry *victim);

#endif
