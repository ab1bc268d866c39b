/* SPDX-License-Identifier: Apache-2.0 */
/*
 * evict_i.h: private to mem.c and evict_<policy>.c: the policy ops tables and the
 * intrusive byte-counting queue every policy is built from.
 *
 * A queue links entries through e->pn.prev/next: head = most recently queued, tail =
 * the next candidate. `prev` points toward the head, `next` toward the tail. Each queue
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

struct hc_queue {
    struct hc_entry *head, *tail;
    uint64_t bytes;
    uint64_t count;
};

static inline void hc_queue_push_head(struct hc_queue *q, struct hc_entry *e)
{
    e->pn.prev = NULL;
    e->pn.next = q->head;
    if (q->head)
        q->head->pn.prev = e;
    else
        q->tail = e;
    q->head = e;
    q->bytes += e->cap;
    q->count++;
}

static inline void hc_queue_push_tail(struct hc_queue *q, struct hc_entry *e)
{
    e->pn.next = NULL;
    e->pn.prev = q->tail;
    if (q->tail)
        q->tail->pn.next = e;
    else
        q->head = e;
    q->tail = e;
    q->bytes += e->cap;
    q->count++;
}

/* Insert @e on the tail side of @pos: @e becomes @pos's older neighbour. @pos is in @q. */
static inline void hc_queue_insert_after(struct hc_queue *q, struct hc_entry *pos,
                                         struct hc_entry *e)
{
    e->pn.prev = pos;
    e->pn.next = pos->pn.next;
    if (pos->pn.next)
        pos->pn.next->pn.prev = e;
    else
        q->tail = e;
    pos->pn.next = e;
    q->bytes += e->cap;
    q->count++;
}

static inline void hc_queue_unlink(struct hc_queue *q, struct hc_entry *e)
{
    if (e->pn.prev)
        e->pn.prev->pn.next = e->pn.next;
    else
        q->head = e->pn.next;
    if (e->pn.next)
        e->pn.next->pn.prev = e->pn.prev;
    else
        q->tail = e->pn.prev;
    e->pn.prev = e->pn.next = NULL;
    q->bytes -= e->cap;
    q->count--;
}

static inline struct hc_entry *hc_queue_pop_tail(struct hc_queue *q)
{
    struct hc_entry *e = q->tail;
    if (e)
        hc_queue_unlink(q, e);
    return e;
}

#endif
