/* SPDX-License-Identifier: Apache-2.0 */
/*
 * evict_lru.c: least-recently-used eviction: one queue, a hit moves the entry to the
 * head, the tail is evicted. Low-priority (prefetch) entries join at the tail, so they
 * are the next victims unless read first. LRU claims no scan resistance: every hit,
 * correlated or not (evict_i.h), is recency, so the clock is not used.
 *
 * INVARIANTS (under the shard lock): every entry of the shard is in `q` exactly once.
 */
#include <errno.h>
#include <stdlib.h>

#include "hybridcache/evict_i.h"

struct hc_lru {
    struct hc_policy base;
    struct hc_queue q;
};

static int hc_lru_create(uint64_t capacity, struct hc_policy **out)
{
    struct hc_lru *l = calloc(1, sizeof(*l));

    *out = NULL;
    if (!l)
        return -ENOMEM;
    l->base.ops = &hc_policy_lru_ops;
    *out = &l->base;
    return 0;
}

static void hc_lru_destroy(struct hc_policy *p)
{
    free(p);
}

static void hc_lru_on_insert(struct hc_policy *p, struct hc_entry *e, uint32_t now_ms)
{
    struct hc_lru *l = (struct hc_lru *)p;

    if (e->low_priority)
        hc_queue_push_tail(&l->q, e);
    else
        hc_queue_push_head(&l->q, e);
}

static void hc_lru_on_hit(struct hc_policy *p, struct hc_entry *e, uint32_t now_ms)
{
    struct hc_lru *l = (struct hc_lru *)p;

    if (hc_queue_head(&l->q) == e)
        return;
    hc_queue_unlink(&l->q, e);
    hc_queue_push_head(&l->q, e);
}

static void hc_lru_on_remove(struct hc_policy *p, struct hc_entry *e)
{
    hc_queue_unlink(&((struct hc_lru *)p)->q, e);
}

static struct hc_entry *hc_lru_evict(struct hc_policy *p)
{
    return hc_queue_pop_tail(&((struct hc_lru *)p)->q);
}

const struct hc_policy_ops hc_policy_lru_ops = {
    .name = "lru",
    .version = HC_POLICY_OPS_VERSION,
    .create = hc_lru_create,
    .destroy = hc_lru_destroy,
    .on_insert = hc_lru_on_insert,
    .on_hit = hc_lru_on_hit,
    .on_remove = hc_lru_on_remove,
    .evict = hc_lru_evict,
};
