/* SPDX-License-Identifier: Apache-2.0 */
/*
 * evict_tinylfu.c: W-TinyLFU eviction (Einziger, Friedman, Manes, "TinyLFU: a highly
 * efficient cache admission policy"): a small LRU window in front of a segmented-LRU
 * main area, with a frequency sketch deciding which of the window's victim and main's
 * victim stays.
 *
 * DESIGN
 * Byte-sized areas: the window is 1% of the shard's bytes; main (the rest) is split into
 * probation (20%) and protected (80%). New entries enter the window head; a hit in
 * probation promotes to protected, whose overflow is demoted back to probation's head.
 * When the window is over its share, its LRU entry (the candidate) moves to probation if
 * main has room; otherwise it competes with main's victim (probation's tail, else
 * protected's): the one with the higher sketch estimate stays (ties keep the incumbent,
 * so a scan of one-time keys cannot flush a frequently read working set).
 * The sketch is a count-min sketch of 4 rows of 4-bit counters (16 per word), indexed by
 * differently multiplied hashes, incremented on every insert and hit; after 10 x width
 * increments every counter is halved ("reset"), so old popularity ages out. No
 * doorkeeper: with 4-bit counters the sketch is already small (width counters = twice the
 * number of 64 KiB blocks the shard holds, at 2 bytes per block for 4 rows).
 * Low-priority (prefetch) entries enter the window's tail: they are the next candidate
 * and, with one recorded access, rarely beat a main victim.
 * Only re-use counts in the sketch and promotes from probation: hits within
 * HC_POLICY_CORRELATED_MS of the last counted access (one read of a block split into
 * several FUSE reads, evict_i.h) only refresh recency within the entry's own queue.
 * Otherwise every block of a sequential scan would enter probation with the estimate of
 * a block read four times, and the sketch would age four times as fast.
 *
 * INVARIANTS (under the shard lock): every entry of the shard is in exactly one of
 * window/probation/protected and pn.queue says which; protected.bytes <= protected_cap
 * after every call; sketch counters <= 15.
 */
#include <errno.h>
#include <stdlib.h>

#include "common/util.h"
#include "hybridcache/evict_i.h"

#define HC_TLFU_WINDOW_PCT 1
#define HC_TLFU_PROTECTED_PCT 80
#define HC_TLFU_ROWS 4
#define HC_TLFU_UNIT (32u << 10) /* one sketch counter per this many bytes of capacity */
#define HC_TLFU_WIDTH_MIN 64
#define HC_TLFU_WIDTH_MAX (1u << 22)
#define HC_TLFU_SAMPLE_FACTOR 10

enum { HC_TLFU_WINDOW = 0, HC_TLFU_PROBATION, HC_TLFU_PROTECTED };

static const uint64_t hc_tlfu_seeds[HC_TLFU_ROWS] = {
    0x9e3779b97f4a7c15ull,
    0xbf58476d1ce4e5b9ull,
    0x94d049bb133111ebull,
    0xd6e8feb86659fd93ull,
};

struct hc_tinylfu {
    struct hc_policy base;
    struct hc_queue window, probation, protected;
    uint64_t window_cap, main_cap, protected_cap;
    uint64_t *sketch;           /* HC_TLFU_ROWS rows of width/16 words */
    uint64_t width;             /* counters per row, power of two */
    uint64_t additions, sample; /* reset (halve) when additions reaches sample */
};

static int hc_tinylfu_create(uint64_t capacity, struct hc_policy **out)
{
    struct hc_tinylfu *t = calloc(1, sizeof(*t));
    uint64_t w = HC_TLFU_WIDTH_MIN;

    *out = NULL;
    if (!t)
        return -ENOMEM;
    while (w < HC_TLFU_WIDTH_MAX && w < capacity / HC_TLFU_UNIT)
        w *= 2;
    t->sketch = calloc(HC_TLFU_ROWS * (w / 16), sizeof(uint64_t));
    if (!t->sketch) {
        free(t);
        return -ENOMEM;
    }
    t->width = w;
    t->sample = HC_TLFU_SAMPLE_FACTOR * w;
    t->window_cap = capacity * HC_TLFU_WINDOW_PCT / 100;
    t->main_cap = capacity - t->window_cap;
    t->protected_cap = t->main_cap * HC_TLFU_PROTECTED_PCT / 100;
    t->base.ops = &hc_policy_tinylfu_ops;
    *out = &t->base;
    return 0;
}

static void hc_tinylfu_destroy(struct hc_policy *p)
{
    struct hc_tinylfu *t = (struct hc_tinylfu *)p;

    free(t->sketch);
    free(t);
}

/* Counter @row of @hash: word index in *word, bit shift in *shift. */
static void hc_tlfu_slot(const struct hc_tinylfu *t, uint64_t hash, unsigned row, uint64_t *word,
                         unsigned *shift)
{
    uint64_t idx = ((hash * hc_tlfu_seeds[row]) >> 32) & (t->width - 1);

    *word = row * (t->width / 16) + idx / 16;
    *shift = (unsigned)(idx % 16) * 4;
}

static unsigned hc_tlfu_estimate(const struct hc_tinylfu *t, uint64_t hash)
{
    unsigned row, shift, est = 15;
    uint64_t word;

    for (row = 0; row < HC_TLFU_ROWS; row++) {
        hc_tlfu_slot(t, hash, row, &word, &shift);
        est = CMN_MIN(est, (unsigned)((t->sketch[word] >> shift) & 0xf));
    }
    return est;
}

static void hc_tlfu_increment(struct hc_tinylfu *t, uint64_t hash)
{
    unsigned row, shift;
    uint64_t word, i;

    for (row = 0; row < HC_TLFU_ROWS; row++) {
        hc_tlfu_slot(t, hash, row, &word, &shift);
        if (((t->sketch[word] >> shift) & 0xf) < 15)
            t->sketch[word] += 1ull << shift;
    }
    if (++t->additions < t->sample)
        return;
    /* Halve every counter at once: shift the word, mask off bits that crossed over. */
    for (i = 0; i < HC_TLFU_ROWS * (t->width / 16); i++)
        t->sketch[i] = (t->sketch[i] >> 1) & 0x7777777777777777ull;
    t->additions /= 2;
}

static struct hc_queue *hc_tlfu_queue(struct hc_tinylfu *t, const struct hc_entry *e)
{
    switch (e->pn.queue) {
    case HC_TLFU_WINDOW:
        return &t->window;
    case HC_TLFU_PROBATION:
        return &t->probation;
    default:
        return &t->protected;
    }
}

static void hc_tinylfu_on_insert(struct hc_policy *p, struct hc_entry *e, uint32_t now_ms)
{
    struct hc_tinylfu *t = (struct hc_tinylfu *)p;

    hc_policy_stamp_insert(e, now_ms);
    hc_tlfu_increment(t, e->hash);
    e->pn.queue = HC_TLFU_WINDOW;
    if (e->low_priority)
        hc_queue_push_tail(&t->window, e);
    else
        hc_queue_push_head(&t->window, e);
}

static void hc_tinylfu_on_hit(struct hc_policy *p, struct hc_entry *e, uint32_t now_ms)
{
    struct hc_tinylfu *t = (struct hc_tinylfu *)p;
    bool reuse = hc_policy_reuse(e, now_ms);
    struct hc_entry *d;

    if (reuse)
        hc_tlfu_increment(t, e->hash);
    hc_queue_unlink(hc_tlfu_queue(t, e), e);
    if (reuse && e->pn.queue == HC_TLFU_PROBATION)
        e->pn.queue = HC_TLFU_PROTECTED;
    hc_queue_push_head(hc_tlfu_queue(t, e), e);
    while (t->protected.bytes > t->protected_cap && hc_queue_tail(&t->protected) != e) {
        d = hc_queue_pop_tail(&t->protected);
        d->pn.queue = HC_TLFU_PROBATION;
        hc_queue_push_head(&t->probation, d);
    }
}

static void hc_tinylfu_on_remove(struct hc_policy *p, struct hc_entry *e)
{
    struct hc_tinylfu *t = (struct hc_tinylfu *)p;

    hc_queue_unlink(hc_tlfu_queue(t, e), e);
}

bool hc_tinylfu_admit(struct hc_policy *p, struct hc_entry *cand, struct hc_entry *victim)
{
    struct hc_tinylfu *t = (struct hc_tinylfu *)p;

    return hc_tlfu_estimate(t, cand->hash) > hc_tlfu_estimate(t, victim->hash);
}

/* Terminates: each pass moves one window entry to probation or returns a victim. */
static struct hc_entry *hc_tinylfu_evict(struct hc_policy *p)
{
    struct hc_tinylfu *t = (struct hc_tinylfu *)p;
    struct hc_entry *cand, *victim;

    for (;;) {
        uint64_t main_bytes = t->probation.bytes + t->protected.bytes;

        victim = hc_queue_tail(&t->probation) ? hc_queue_tail(&t->probation)
                                              : hc_queue_tail(&t->protected);
        if (t->window.count && (t->window.bytes > t->window_cap || !victim)) {
            cand = hc_queue_pop_tail(&t->window);
            if (main_bytes + cand->cap > t->main_cap) {
                /* Main is full: the candidate must beat main's victim (or there is no
                 * victim and main cannot hold it at all). */
                if (!victim || !hc_tinylfu_admit(p, cand, victim))
                    return cand;
                hc_queue_unlink(hc_tlfu_queue(t, victim), victim);
                cand->pn.queue = HC_TLFU_PROBATION;
                hc_queue_push_head(&t->probation, cand);
                return victim;
            }
            cand->pn.queue = HC_TLFU_PROBATION;
            hc_queue_push_head(&t->probation, cand);
            continue;
        }
        if (victim)
            hc_queue_unlink(hc_tlfu_queue(t, victim), victim);
        return victim;
    }
}

const struct hc_policy_ops hc_policy_tinylfu_ops = {
    .name = "tinylfu",
    .version = HC_POLICY_OPS_VERSION,
    .create = hc_tinylfu_create,
    .destroy = hc_tinylfu_destroy,
    .on_insert = hc_tinylfu_on_insert,
    .on_hit = hc_tinylfu_on_hit,
    .on_remove = hc_tinylfu_on_remove,
    .evict = hc_tinylfu_evict,
};
