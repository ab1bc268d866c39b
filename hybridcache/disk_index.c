/* SPDX-License-Identifier: Apache-2.0 */
/*
 * disk_index.c: the disk tier's index, 64-bit key hash -> packed device location.
 *
 * INVARIANTS (per shard, under shard->lock)
 *   - nslots >= 16; count < nslots (there is always an empty slot, so probes end);
 *   - a slot is empty iff its hash is 0 (hash 0 is stored as 1: the key is verified on
 *     read, so the alias only costs a miss);
 *   - every live slot is reachable from its home position without crossing an empty
 *     slot (linear probing; deletion shifts later slots back instead of leaving tombstones);
 *   - a hash is present at most once.
 * Lock order: the disk tier's region lock may be held while taking a shard lock, never
 * the reverse; no IO happens under a shard lock.
 */
#include "hybridcache/disk_i.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

#define HC_DINDEX_SHARDS 64u /* power of two; shard = hash & (SHARDS - 1) */
#define HC_DINDEX_MIN_SLOTS 16u
/* Grow at 80% load by 1.5x: load stays in 53%..80%, i.e. 20..30 bytes per entry. */
#define HC_DINDEX_LOAD_NUM 4u
#define HC_DINDEX_LOAD_DEN 5u

struct hc_dslot {
    uint64_t hash; /* 0 = empty */
    uint64_t loc;  /* packed struct hc_dloc */
};

struct hc_dshard {
    pthread_mutex_t lock;
    struct hc_dslot *slots; /* protected by lock */
    uint32_t nslots;        /* protected by lock */
    uint32_t count;         /* protected by lock */
};

struct hc_dindex {
    struct hc_dshard shards[HC_DINDEX_SHARDS];
};

static inline uint64_t hc_dindex_key(uint64_t hash)
{
    return hash ? hash : 1;
}

static inline struct hc_dshard *hc_dindex_shard(struct hc_dindex *ix, uint64_t h)
{
    return &ix->shards[h & (HC_DINDEX_SHARDS - 1)];
}

/* Home slot from the high bits (the shard used the low ones), any table size. */
static inline uint32_t hc_dindex_home(uint64_t h, uint32_t nslots)
{
    return (uint32_t)(((unsigned __int128)h * nslots) >> 64);
}

static inline uint64_t hc_dloc_pack(const struct hc_dloc *l)
{
    return ((uint64_t)l->region << (HC_DLOC_OFF_BITS + HC_DLOC_SIZE_BITS + 1)) |
           ((uint64_t)l->off_units << (HC_DLOC_SIZE_BITS + 1)) | ((uint64_t)l->size_units << 1) |
           (l->hit ? 1u : 0u);
}

static inline void hc_dloc_unpack(uint64_t v, struct hc_dloc *l)
{
    l->hit = v & 1u;
    l->size_units = (uint32_t)((v >> 1) & ((1u << HC_DLOC_SIZE_BITS) - 1));
    l->off_units = (uint32_t)((v >> (HC_DLOC_SIZE_BITS + 1)) & ((1u << HC_DLOC_OFF_BITS) - 1));
    l->region = (uint32_t)(v >> (HC_DLOC_OFF_BITS + HC_DLOC_SIZE_BITS + 1));
}

/* Same place on the device (size and hit bit do not matter). */
static inline bool hc_dloc_same(uint64_t packed, const struct hc_dloc *l)
{
    struct hc_dloc a;
    hc_dloc_unpack(packed, &a);
    return a.region == l->region && a.off_units == l->off_units;
}

int hc_dindex_create(uint64_t expect, struct hc_dindex **out)
{
    struct hc_dindex *ix = calloc(1, sizeof(*ix));
    unsigned i;

    if (!ix)
        return -ENOMEM;
    uint64_t per = expect / HC_DINDEX_SHARDS + 1;
    uint64_t want = per * HC_DINDEX_LOAD_DEN / HC_DINDEX_LOAD_NUM + 1;
    if (want < HC_DINDEX_MIN_SLOTS)
        want = HC_DINDEX_MIN_SLOTS;
    if (want > UINT32_MAX / 2)
        want = UINT32_MAX / 2;
    for (i = 0; i < HC_DINDEX_SHARDS; i++) {
        struct hc_dshard *s = &ix->shards[i];
        s->slots = calloc(want, sizeof(*s->slots));
        if (!s->slots)
            goto fail_slots;
        s->nslots = (uint32_t)want;
        pthread_mutex_init(&s->lock, NULL);
    }
    *out = ix;
    return 0;

fail_slots:
    while (i-- > 0) {
        pthread_mutex_destroy(&ix->shards[i].lock);
        free(ix->shards[i].slots);
    }
    free(ix);
    return -ENOMEM;
}

void hc_dindex_destroy(struct hc_dindex *ix)
{
    if (!ix)
        return;
    for (unsigned i = 0; i < HC_DINDEX_SHARDS; i++) {
        pthread_mutex_destroy(&ix->shards[i].lock);
        free(ix->shards[i].slots);
    }
    free(ix);
}

/* @return the slot index holding @h, or UINT32_MAX. Under s->lock. */
static uint32_t hc_dshard_find(const struct hc_dshard *s, uint64_t h)
{
    uint32_t i = hc_dindex_home(h, s->nslots);
    for (;;) {
        if (s->slots[i].hash == h)
            return i;
        if (s->slots[i].hash == 0)
            return UINT32_MAX;
        if (++i == s->nslots)
            i = 0;
    }
}

/* Place @h (known absent) in the table. Under s->lock; there is room. */
static void hc_dshard_place(struct hc_dslot *slots, uint32_t nslots, uint64_t h, uint64_t loc)
{
    uint32_t i = hc_dindex_home(h, nslots);
    while (slots[i].hash != 0)
        if (++i == nslots)
            i = 0;
    slots[i].hash = h;
    slots[i].loc = loc;
}

/* Grow to 1.5x. Under s->lock. @return 0 or -ENOMEM (the shard is unchanged). */
static int hc_dshard_grow(struct hc_dshard *s)
{
    uint64_t n = (uint64_t)s->nslots + s->nslots / 2;
    if (n > UINT32_MAX / 2)
        return -ENOMEM;
    struct hc_dslot *ns = calloc(n, sizeof(*ns));
    if (!ns)
        return -ENOMEM;
    for (uint32_t i = 0; i < s->nslots; i++)
        if (s->slots[i].hash)
            hc_dshard_place(ns, (uint32_t)n, s->slots[i].hash, s->slots[i].loc);
    free(s->slots);
    s->slots = ns;
    s->nslots = (uint32_t)n;
    return 0;
}

/* Backward-shift deletion of slot @i: later members of the cluster move into the hole
 * when their home position does not lie (cyclically) after the hole. Under s->lock. */
static void hc_dshard_erase(struct hc_dshard *s, uint32_t i)
{
    uint32_t hole = i, j = i;
    for (;;) {
        if (++j == s->nslots)
            j = 0;
        if (s->slots[j].hash == 0)
            break;
        uint32_t home = hc_dindex_home(s->slots[j].hash, s->nslots);
        /* Keep j where it is when home lies in (hole, j] cyclically. */
        bool stays = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!stays) {
            s->slots[hole] = s->slots[j];
            hole = j;
        }
    }
    s->slots[hole].hash = 0;
    s->slots[hole].loc = 0;
    s->count--;
}

int hc_dindex_put(struct hc_dindex *ix, uint64_t hash, const struct hc_dloc *loc,
                  struct hc_dloc *old)
{
    uint64_t h = hc_dindex_key(hash);
    struct hc_dshard *s = hc_dindex_shard(ix, h);
    int rc = 0;

    pthread_mutex_lock(&s->lock);
    uint32_t i = hc_dshard_find(s, h);
    if (i != UINT32_MAX) {
        if (old)
            hc_dloc_unpack(s->slots[i].loc, old);
        s->slots[i].loc = hc_dloc_pack(loc);
        rc = 1;
        goto out;
    }
    if ((uint64_t)(s->count + 1) * HC_DINDEX_LOAD_DEN > (uint64_t)s->nslots * HC_DINDEX_LOAD_NUM) {
        rc = hc_dshard_grow(s);
        if (rc < 0)
            goto out;
    }
    hc_dshard_place(s->slots, s->nslots, h, hc_dloc_pack(loc));
    s->count++;
out:
    pthread_mutex_unlock(&s->lock);
    return rc;
}

bool hc_dindex_get(struct hc_dindex *ix, uint64_t hash, bool mark_hit, struct hc_dloc *out)
{
    uint64_t h = hc_dindex_key(hash);
    struct hc_dshard *s = hc_dindex_shard(ix, h);

    pthread_mutex_lock(&s->lock);
    uint32_t i = hc_dshard_find(s, h);
    if (i != UINT32_MAX) {
        if (mark_hit)
            s->slots[i].loc |= 1u;
        if (out)
            hc_dloc_unpack(s->slots[i].loc, out);
    }
    pthread_mutex_unlock(&s->lock);
    return i != UINT32_MAX;
}

bool hc_dindex_remove(struct hc_dindex *ix, uint64_t hash, const struct hc_dloc *match,
                      struct hc_dloc *old)
{
    uint64_t h = hc_dindex_key(hash);
    struct hc_dshard *s = hc_dindex_shard(ix, h);
    bool removed = false;

    pthread_mutex_lock(&s->lock);
    uint32_t i = hc_dshard_find(s, h);
    if (i != UINT32_MAX && (!match || hc_dloc_same(s->slots[i].loc, match))) {
        if (old)
            hc_dloc_unpack(s->slots[i].loc, old);
        hc_dshard_erase(s, i);
        removed = true;
    }
    pthread_mutex_unlock(&s->lock);
    return removed;
}

bool hc_dindex_move(struct hc_dindex *ix, uint64_t hash, const struct hc_dloc *from,
                    const struct hc_dloc *to)
{
    uint64_t h = hc_dindex_key(hash);
    struct hc_dshard *s = hc_dindex_shard(ix, h);
    bool moved = false;

    pthread_mutex_lock(&s->lock);
    uint32_t i = hc_dshard_find(s, h);
    if (i != UINT32_MAX && hc_dloc_same(s->slots[i].loc, from)) {
        s->slots[i].loc = hc_dloc_pack(to);
        moved = true;
    }
    pthread_mutex_unlock(&s->lock);
    return moved;
}

uint64_t hc_dindex_drop_region(struct hc_dindex *ix, uint32_t region, uint64_t *bytes)
{
    uint64_t n = 0, b = 0;
    for (unsigned k = 0; k < HC_DINDEX_SHARDS; k++) {
        struct hc_dshard *s = &ix->shards[k];
        pthread_mutex_lock(&s->lock);
        /* Erasing shifts later slots back, so re-examine slot i after an erase. */
        for (uint32_t i = 0; i < s->nslots;) {
            struct hc_dloc l;
            if (s->slots[i].hash) {
                hc_dloc_unpack(s->slots[i].loc, &l);
                if (l.region == region) {
                    b += (uint64_t)l.size_units * HC_DISK_SLOT;
                    hc_dshard_erase(s, i);
                    n++;
                    continue;
                }
            }
            i++;
        }
        pthread_mutex_unlock(&s->lock);
    }
    if (bytes)
        *bytes = b;
    return n;
}

void hc_dindex_usage(struct hc_dindex *ix, uint64_t *entries, uint64_t *bytes)
{
    uint64_t n = 0, b = sizeof(*ix);
    for (unsigned k = 0; k < HC_DINDEX_SHARDS; k++) {
        struct hc_dshard *s = &ix->shards[k];
        pthread_mutex_lock(&s->lock);
        n += s->count;
        b += (uint64_t)s->nslots * sizeof(struct hc_dslot);
        pthread_mutex_unlock(&s->lock);
    }
    *entries = n;
    *bytes = b;
}

#ifdef TIERFS_DEBUG
#include <assert.h>
void hc_dindex_check_invariants(struct hc_dindex *ix)
{
    for (unsigned k = 0; k < HC_DINDEX_SHARDS; k++) {
        struct hc_dshard *s = &ix->shards[k];
        uint32_t live = 0;
        pthread_mutex_lock(&s->lock);
        assert(s->nslots >= HC_DINDEX_MIN_SLOTS && s->count < s->nslots);
        for (uint32_t i = 0; i < s->nslots; i++) {
            uint64_t h = s->slots[i].hash;
            if (!h)
                continue;
            live++;
            assert((h & (HC_DINDEX_SHARDS - 1)) == k);
            assert(hc_dshard_find(s, h) == i); /* reachable, and present once */
        }
        assert(live == s->count);
        pthread_mutex_unlock(&s->lock);
    }
}
#endif
