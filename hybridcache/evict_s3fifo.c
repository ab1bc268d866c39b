/* SPDX-License-Identifier: Apache-2.0 */
/*
 * evict_s3fifo.c: S3-FIFO eviction (Yang et al., SOSP'23): a small FIFO (10% of the
 * bytes) that filters one-hit wonders, a main FIFO with reinsertion (a 2-bit frequency,
 * 0..3, spent one per pass), and a ghost queue of hashes of entries evicted from the
 * small queue, so an entry that comes back soon goes straight to main.
 *
 * DESIGN
 * Queues are byte-sized: the small queue is examined while it holds at least
 * HC_S3FIFO_SMALL_PCT of the shard's bytes (or main is empty). The ghost queue is a
 * direct-mapped table of {hash, ghost clock at insertion}: a hash is "in the ghost" when
 * its slot still holds it and fewer than K ghost insertions happened since, K being the
 * number of entries main can hold (main bytes / mean entry size now). A slot collision
 * forgets a ghost, which only costs a trip through the small queue; the table is fixed
 * size, two slots per 64 KiB of capacity, so the ghost never allocates after create.
 * Low-priority (prefetch) entries join the small queue's tail with no frequency and
 * ignore the ghost; an unread one at the small tail is evicted first whatever the
 * queues' shares (and leaves no ghost: nobody asked for it), so a prefetched block that
 * is never read costs the cache nothing else.
 * Frequency counts re-use only: hits within HC_POLICY_CORRELATED_MS of the last counted
 * access are the same read split in pieces (evict_i.h), so a sequential scan whose blocks
 * are each read by several FUSE requests still leaves them at freq 0 in the small queue,
 * evicted to the ghost instead of being promoted over the working set.
 *
 * INVARIANTS (under the shard lock): every entry of the shard is in exactly one of
 * small/main and pn.queue says which; pn.freq <= HC_S3FIFO_FREQ_MAX.
 */
#include <errno.h>
#include <stdlib.h>

#include "common/util.h"
#include "hybridcache/evict_i.h"

#define HC_S3FIFO_SMALL_PCT 10
#define HC_S3FIFO_FREQ_MAX 3
#define HC_S3FIFO_GHOST_UNIT (64u << 10)
#define HC_S3FIFO_GHOST_MIN 64
#define HC_S3FIFO_GHOST_MAX (1u << 20)
#define HC_S3FIFO_NO_TS UINT64_MAX

enum { HC_S3FIFO_SMALL = 0, HC_S3FIFO_MAIN = 1 };

struct hc_s3fifo_ghost {
    uint64_t hash;
    uint64_t ts; /* ghost clock when inserted; HC_S3FIFO_NO_TS = empty */
};

struct hc_s3fifo {
    struct hc_policy base;
    struct hc_queue small, main;
    uint64_t small_cap, main_cap;
    struct hc_s3fifo_ghost *ghost;
    uint64_t ghost_mask;
    uint64_t ghost_clock; /* ghost insertions so far */
};

static int hc_s3fifo_create(uint64_t capacity, struct hc_policy **out)
{
    struct hc_s3fifo *s = calloc(1, sizeof(*s));
    uint64_t n = HC_S3FIFO_GHOST_MIN, i;

    *out = NULL;
    if (!s)
        return -ENOMEM;
    while (n < HC_S3FIFO_GHOST_MAX && n < 2 * (capacity / HC_S3FIFO_GHOST_UNIT))
        n *= 2;
    s->ghost = malloc(n * sizeof(*s->ghost));
    if (!s->ghost) {
        free(s);
        return -ENOMEM;
    }
    for (i = 0; i < n; i++)
        s->ghost[i] = (struct hc_s3fifo_ghost){.hash = 0, .ts = HC_S3FIFO_NO_TS};
    s->ghost_mask = n - 1;
    s->small_cap = CMN_MAX(capacity * HC_S3FIFO_SMALL_PCT / 100, 1);
    s->main_cap = capacity - CMN_MIN(s->small_cap, capacity);
    s->base.ops = &hc_policy_s3fifo_ops;
    *out = &s->base;
    return 0;
}

static void hc_s3fifo_destroy(struct hc_policy *p)
{
    struct hc_s3fifo *s = (struct hc_s3fifo *)p;

    free(s->ghost);
    free(s);
}

/* How many ghosts count: as many entries as main holds at the current mean size. */
static uint64_t hc_s3fifo_ghost_len(const struct hc_s3fifo *s)
{
    uint64_t n = s->small.count + s->main.count, b = s->small.bytes + s->main.bytes;

    return b ? s->main_cap * n / b : 0;
}

/* @return true (and forget it) when @hash is in the ghost queue. */
static bool hc_s3fifo_ghost_take(struct hc_s3fifo *s, uint64_t hash)
{
    struct hc_s3fifo_ghost *g = &s->ghost[hash & s->ghost_mask];

    if (g->ts == HC_S3FIFO_NO_TS || g->hash != hash ||
        s->ghost_clock - g->ts > hc_s3fifo_ghost_len(s))
        return false;
    g->ts = HC_S3FIFO_NO_TS;
    return true;
}

static void hc_s3fifo_ghost_add(struct hc_s3fifo *s, uint64_t hash)
{
    struct hc_s3fifo_ghost *g = &s->ghost[hash & s->ghost_mask];

    g->hash = hash;
    g->ts = s->ghost_clock++;
}

static void hc_s3fifo_on_insert(struct hc_policy *p, struct hc_entry *e, uint32_t now_ms)
{
    struct hc_s3fifo *s = (struct hc_s3fifo *)p;

    e->pn.freq = 0;
    hc_policy_stamp_insert(e, now_ms);
    if (e->low_priority) {
        e->pn.queue = HC_S3FIFO_SMALL;
        hc_queue_push_tail(&s->small, e);
    } else if (hc_s3fifo_ghost_take(s, e->hash)) {
        e->pn.queue = HC_S3FIFO_MAIN;
        hc_queue_push_head(&s->main, e);
    } else {
        e->pn.queue = HC_S3FIFO_SMALL;
        hc_queue_push_head(&s->small, e);
    }
}

static void hc_s3fifo_on_hit(struct hc_policy *p, struct hc_entry *e, uint32_t now_ms)
{
    if (hc_policy_reuse(e, now_ms) && e->pn.freq < HC_S3FIFO_FREQ_MAX)
        e->pn.freq++;
}

static void hc_s3fifo_on_remove(struct hc_policy *p, struct hc_entry *e)
{
    struct hc_s3fifo *s = (struct hc_s3fifo *)p;

    hc_queue_unlink(e->pn.queue == HC_S3FIFO_MAIN ? &s->main : &s->small, e);
}

/*
 * Terminates: each pass either moves a small entry to main (at most small.count times)
 * or spends one unit of a main entry's frequency (at most 3 * main.count times).
 */
static struct hc_entry *hc_s3fifo_evict(struct hc_policy *p)
{
    struct hc_s3fifo *s = (struct hc_s3fifo *)p;
    struct hc_entry *t;

    t = hc_queue_tail(&s->small);
    if (t && t->low_priority && t->pn.freq == 0) {
        hc_queue_unlink(&s->small, t);
        return t;
    }
    for (;;) {
        if (s->small.count && (s->small.bytes >= s->small_cap || !s->main.count)) {
            t = hc_queue_pop_tail(&s->small);
            if (t->pn.freq > 0) {
                /* Read while in the small queue: earns a place in main, bits cleared. */
                t->pn.freq = 0;
                t->pn.queue = HC_S3FIFO_MAIN;
                hc_queue_push_head(&s->main, t);
                continue;
            }
            hc_s3fifo_ghost_add(s, t->hash);
            return t;
        }
        t = hc_queue_pop_tail(&s->main);
        if (!t)
            return NULL;
        if (t->pn.freq > 0) {
            t->pn.freq--;
            hc_queue_push_head(&s->main, t);
            continue;
        }
        return t;
    }
}

const struct hc_policy_ops hc_policy_s3fifo_ops = {
    .name = "s3fifo",
    .version = HC_POLICY_OPS_VERSION,
    .create = hc_s3fifo_create,
    .destroy = hc_s3fifo_destroy,
    .on_insert = hc_s3fifo_on_insert,
    .on_hit = hc_s3fifo_on_hit,
    .on_remove = hc_s3fifo_on_remove,
    .evict = hc_s3fifo_evict,
};
