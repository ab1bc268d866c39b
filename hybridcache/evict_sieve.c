/* SPDX-License-Identifier: Apache-2.0 */
/*
 * evict_sieve.c: SIEVE eviction (Zhang et al., NSDI'24): one FIFO queue, a visited bit
 * per entry set on a hit, and a hand that moves from the tail toward the head. The hand
 * clears visited bits as it passes and evicts the first unvisited entry; it stays where
 * it stopped, so survivors keep their place instead of being moved to the head (hits
 * never reorder the queue, which is why SIEVE is cheap).
 *
 * Low-priority (prefetch) entries are placed where the hand looks next.
 * Only re-use sets the visited bit: hits within HC_POLICY_CORRELATED_MS of the last
 * counted access (the several FUSE reads one read of a block becomes, evict_i.h) do not,
 * or every block of a sequential scan would look visited and the hand would clear the
 * working set's bits as fast as the scan's.
 *
 * INVARIANTS (under the shard lock): every entry of the shard is in `q` exactly once;
 * `hand` is NULL (start at the tail) or an entry of `q`; pn.freq is the visited bit (0/1).
 */
#include <errno.h>
#include <stdlib.h>

#include "hybridcache/evict_i.h"

struct hc_sieve {
    struct hc_policy base;
    struct hc_queue q;
    struct hc_entry *hand;
};

static int hc_sieve_create(uint64_t capacity, struct hc_policy **out)
{
    struct hc_sieve *s = calloc(1, sizeof(*s));

    *out = NULL;
    if (!s)
        return -ENOMEM;
    s->base.ops = &hc_policy_sieve_ops;
    *out = &s->base;
    return 0;
}

static void hc_sieve_destroy(struct hc_policy *p)
{
    free(p);
}

static void hc_sieve_on_insert(struct hc_policy *p, struct hc_entry *e, uint32_t now_ms)
{
    struct hc_sieve *s = (struct hc_sieve *)p;

    e->pn.freq = 0;
    hc_policy_stamp_insert(e, now_ms);
    if (!e->low_priority) {
        hc_queue_push_head(&s->q, e);
    } else if (s->hand) {
        /* Just tail-side of the hand, and the hand on it: examined next. */
        hc_queue_insert_after(&s->q, s->hand, e);
        s->hand = e;
    } else {
        hc_queue_push_tail(&s->q, e);
    }
}

static void hc_sieve_on_hit(struct hc_policy *p, struct hc_entry *e, uint32_t now_ms)
{
    if (hc_policy_reuse(e, now_ms))
        e->pn.freq = 1;
}

static void hc_sieve_on_remove(struct hc_policy *p, struct hc_entry *e)
{
    struct hc_sieve *s = (struct hc_sieve *)p;

    if (s->hand == e)
        s->hand = hc_queue_prev(e);
    hc_queue_unlink(&s->q, e);
}

/* Terminates: a full lap clears every visited bit, so the second lap finds a victim. */
static struct hc_entry *hc_sieve_evict(struct hc_policy *p)
{
    struct hc_sieve *s = (struct hc_sieve *)p;
    struct hc_entry *o = s->hand ? s->hand : hc_queue_tail(&s->q);

    if (!o)
        return NULL;
    while (o->pn.freq) {
        o->pn.freq = 0;
        o = hc_queue_prev(o) ? hc_queue_prev(o) : hc_queue_tail(&s->q);
    }
    s->hand = hc_queue_prev(o);
    hc_queue_unlink(&s->q, o);
    return o;
}

const struct hc_policy_ops hc_policy_sieve_ops = {
    .name = "sieve",
    .version = HC_POLICY_OPS_VERSION,
    .create = hc_sieve_create,
    .destroy = hc_sieve_destroy,
    .on_insert = hc_sieve_on_insert,
    .on_hit = hc_sieve_on_hit,
    .on_remove = hc_sieve_on_remove,
    .evict = hc_sieve_evict,
};
