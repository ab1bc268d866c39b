/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mem.c: the memory tier: a sharded, reference-counted index of entries with a
 * byte capacity, evicting through a pluggable policy (hc_policy_ops).
 *
 * DESIGN
 * The key hash picks a shard (high bits) and a bucket in the shard's chained hash table
 * (low bits). Each shard has one mutex that protects its table, its policy state and the
 * policy links inside its entries, and its counters; shards never take each other's
 * locks. The index holds one reference on each entry it contains; a lookup returns a new
 * reference, so a reader keeps the bytes alive (without copying) after the entry is
 * evicted or replaced. Eviction detaches victims under the lock and hands them to
 * on_evict (write-on-evict to the disk tier) or drops the index's reference only after
 * the lock is released, so a slow disk submission never blocks readers of the shard.
 *
 * Capacity is per shard (capacity / shards): an insert evicts from its own shard until
 * the new entry fits. The shared budget (struct hc_accounting: memory tier + in-flight
 * fetch buffers + disk write queue) is enforced by hc_mem_make_room(), which the
 * cooperator calls before allocating a buffer; it evicts round-robin across shards.
 *
 * INVARIANTS (per shard, under shard->lock; checked by hc_mem_check_invariants())
 *   - every entry reachable from buckets[] has in_index == 1, hashes to this shard and to
 *     the bucket it is chained in, and holds refs >= 1 (the index's own);
 *   - count == number of chained entries, bytes == sum of their cap, bytes <= capacity
 *     once an insert returns;
 *   - the unread list (lp) lists exactly the indexed entries with lp_unread (low priority,
 *     streamed ones only with unread_stream_only, not hit since insertion except by
 *     lookups that do not touch), oldest first;
 *     lp_bytes is the sum of their cap; after an insert of a low-priority entry it is at
 *     most unread_cap plus that entry;
 *   - an entry is in the shard's policy exactly when it is in the shard's table (the
 *     policy sees on_insert/on_remove/evict in step with the table; test_hc_policy.c
 *     checks each policy's queues against a model).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "hybridcache/evict_i.h"
#include "hybridcache/hc_i.h"

#define HC_MEM_SHARDS_MAX 64
#define HC_MEM_SHARD_MIN_BYTES (32ull << 20) /* automatic sharding keeps shards this big */
#define HC_MEM_BUCKETS_INIT 64
#define HC_MEM_SHARD_SHIFT 40 /* shard from the high bits, bucket from the low bits */

/* The one table of eviction policies: hc_policy_find() and hc_policy_names() read it. */
static const struct hc_policy_ops *const hc_policy_table[] = {
    &hc_policy_lru_ops,
    &hc_policy_s3fifo_ops,
    &hc_policy_sieve_ops,
    &hc_policy_tinylfu_ops,
};
/* Their names, NULL-terminated, built once from the table (so they cannot disagree). */
static const char *hc_policy_name_list[CMN_ARRAY_SIZE(hc_policy_table) + 1];
static pthread_once_t hc_policy_names_once = PTHREAD_ONCE_INIT;

static void hc_policy_names_init(void)
{
    for (size_t i = 0; i < CMN_ARRAY_SIZE(hc_policy_table); i++)
        hc_policy_name_list[i] = hc_policy_table[i]->name;
}

struct hc_mem_shard {
    pthread_mutex_t lock;      /* a leaf lock: nothing else is taken while holding it */
    struct hc_entry **buckets; /* protected by lock */
    uint64_t nbuckets;         /* power of two; protected by lock */
    uint64_t count, bytes;     /* protected by lock */
    uint64_t capacity;         /* constant */
    uint64_t unread_cap;       /* constant: bytes unread prefetches may hold (0 = any) */
    bool unread_stream_only;   /* constant: only streamed entries count (hc_mem_conf) */
    struct cmn_list lp;        /* unread prefetches (e->lp_link), oldest first; protected by lock */
    uint64_t lp_bytes;         /* their bytes; protected by lock */
    struct hc_policy *policy;  /* protected by lock */
    uint64_t hits, misses, inserts, evictions; /* protected by lock */
} __attribute__((aligned(64))); /* one cache line apart: shards are hit by different cores */

struct hc_mem {
    const struct hc_policy_ops *ops;
    unsigned nshards; /* power of two */
    struct hc_accounting own_acct;
    struct hc_accounting *acct; /* conf->acct or &own_acct */
    void (*on_evict)(struct hc_entry *e, void *arg);
    void *on_evict_arg;
    uint32_t (*clock_ms)(void *arg); /* NULL: cmn_now_ms() */
    void *clock_arg;
    _Atomic unsigned room_cursor; /* next shard hc_mem_make_room() evicts from */
    struct hc_mem_shard *shards;
};

const struct hc_policy_ops *hc_policy_find(const char *name)
{
    size_t i;

    if (!name)
        return NULL;
    for (i = 0; i < CMN_ARRAY_SIZE(hc_policy_table); i++)
        if (strcmp(hc_policy_table[i]->name, name) == 0)
            return hc_policy_table[i];
    return NULL;
}

int hc_policy_create(const struct hc_policy_ops *ops, uint64_t capacity, struct hc_policy **out)
{
    int rc;

    *out = NULL;
    if (!ops || ops->version != HC_POLICY_OPS_VERSION)
        return -EINVAL;
    rc = ops->create(capacity, out);
    if (rc == 0)
        (*out)->ops = ops;
    return rc;
}

const char *const *hc_policy_names(void)
{
    pthread_once(&hc_policy_names_once, hc_policy_names_init);
    return hc_policy_name_list;
}

/* The policies' clock (hc_policy_ops.on_hit), read before taking a shard lock. */
static uint32_t hc_mem_now(const struct hc_mem *m)
{
    return m->clock_ms ? m->clock_ms(m->clock_arg) : (uint32_t)cmn_now_ms();
}

static struct hc_mem_shard *hc_mem_shard_of(struct hc_mem *m, uint64_t hash)
{
    return &m->shards[(hash >> HC_MEM_SHARD_SHIFT) & (m->nshards - 1)];
}

static bool hc_mem_key_eq(const struct hc_entry *e, uint64_t hash, const void *key, size_t klen)
{
    return e->hash == hash && e->klen == klen && memcmp(e->key, key, klen) == 0;
}

/* @return the entry under @key in @s or NULL. Caller holds s->lock. */
static struct hc_entry *hc_mem_find(struct hc_mem_shard *s, uint64_t hash, const void *key,
                                    size_t klen)
{
    struct hc_entry *e;

    for (e = s->buckets[hash & (s->nbuckets - 1)]; e; e = e->hash_next)
        if (hc_mem_key_eq(e, hash, key, klen))
            return e;
    return NULL;
}

/* Double the table. A failed allocation keeps the old table: chains get longer, nothing
 * breaks, so an insert never fails for it. Caller holds s->lock. */
static void hc_mem_grow(struct hc_mem_shard *s)
{
    uint64_t n = s->nbuckets * 2, i;
    struct hc_entry **nb = calloc(n, sizeof(*nb));
    struct hc_entry *e, *next;

    if (!nb)
        return;
    for (i = 0; i < s->nbuckets; i++) {
        for (e = s->buckets[i]; e; e = next) {
            next = e->hash_next;
            e->hash_next = nb[e->hash & (n - 1)];
            nb[e->hash & (n - 1)] = e;
        }
    }
    free(s->buckets);
    s->buckets = nb;
    s->nbuckets = n;
}

#define HC_MEM_LP_ENTRY(lk) CMN_LIST_ENTRY(lk, struct hc_entry, lp_link)

/* The unread-prefetch list (hc_mem_conf.unread_share). Caller holds s->lock. */
static void hc_mem_lp_add(struct hc_mem_shard *s, struct hc_entry *e)
{
    e->lp_unread = 1;
    cmn_list_push_tail(&s->lp, &e->lp_link);
    s->lp_bytes += e->cap;
}

static void hc_mem_lp_del(struct hc_mem_shard *s, struct hc_entry *e)
{
    if (!e->lp_unread)
        return;
    cmn_list_unlink(&s->lp, &e->lp_link);
    e->lp_unread = 0;
    s->lp_bytes -= e->cap;
}

/* Take @e out of the table (not the policy); the index's reference moves to the caller.
 * Caller holds s->lock. */
static void hc_mem_unchain(struct hc_mem_shard *s, struct hc_entry *e)
{
    hc_mem_lp_del(s, e);
    struct hc_entry **pp = &s->buckets[e->hash & (s->nbuckets - 1)];

    while (*pp != e)
        pp = &(*pp)->hash_next;
    *pp = e->hash_next;
    e->hash_next = NULL;
    e->in_index = 0;
    s->count--;
    s->bytes -= e->cap;
}

/* Ask the policy for one victim and take it out of the table. @return the victim (with
 * the index's reference) or NULL when the shard is empty. Caller holds s->lock. */
static struct hc_entry *hc_mem_evict_one(struct hc_mem *m, struct hc_mem_shard *s)
{
    struct hc_entry *v = hc_policy_evict(s->policy);

    if (!v)
        return NULL;
    hc_mem_unchain(s, v);
    s->evictions++;
    return v;
}

/* Hand victims (linked through hash_next) to on_evict, or drop the index's reference.
 * Called without any shard lock. */
static void hc_mem_dispatch(struct hc_mem *m, struct hc_entry *list)
{
    struct hc_entry *e, *next;

    for (e = list; e; e = next) {
        next = e->hash_next;
        e->hash_next = NULL;
        if (m->on_evict)
            m->on_evict(e, m->on_evict_arg);
        else
            hc_entry_put(e);
    }
}

static unsigned hc_mem_auto_shards(uint64_t capacity)
{
    unsigned n = 1;

    while (n < HC_MEM_SHARDS_MAX && capacity / (n * 2ull) >= HC_MEM_SHARD_MIN_BYTES)
        n *= 2;
    return n;
}

static void hc_mem_shard_fini(struct hc_mem *m, struct hc_mem_shard *s)
{
    uint64_t i;
    struct hc_entry *e, *next;

    for (i = 0; s->buckets && i < s->nbuckets; i++) {
        for (e = s->buckets[i]; e; e = next) {
            next = e->hash_next;
            e->hash_next = NULL;
            e->in_index = 0;
            hc_entry_put(e);
        }
    }
    free(s->buckets);
    if (s->policy)
        hc_policy_destroy(s->policy);
    pthread_mutex_destroy(&s->lock);
}

int hc_mem_create(const struct hc_mem_conf *conf, struct hc_mem **out)
{
    const char *pname = conf->policy ? conf->policy : "s3fifo";
    struct hc_mem *m;
    unsigned i, n;
    int rc;

    *out = NULL;
    if (!hc_policy_find(pname)) {
        TLOG_E("hybridcache: unknown memory policy '%s'", pname);
        return -EINVAL;
    }
    if (!conf->capacity) {
        TLOG_E("hybridcache: memory capacity is 0");
        return -EINVAL;
    }
    n = conf->shards ? conf->shards : hc_mem_auto_shards(conf->capacity);
    if (!CMN_IS_POW2(n) || n > 1024 || conf->capacity / n == 0) {
        TLOG_E("hybridcache: bad memory shard count %u for %llu bytes", n,
               (unsigned long long)conf->capacity);
        return -EINVAL;
    }
    m = calloc(1, sizeof(*m));
    if (!m)
        return -ENOMEM;
    m->ops = hc_policy_find(pname);
    m->nshards = n;
    m->own_acct.limit = conf->capacity;
    m->acct = conf->acct ? conf->acct : &m->own_acct;
    m->on_evict = conf->on_evict;
    m->on_evict_arg = conf->on_evict_arg;
    m->clock_ms = conf->clock_ms;
    m->clock_arg = conf->clock_arg;
    m->shards = aligned_alloc(64, sizeof(*m->shards) * n);
    if (!m->shards) {
        rc = -ENOMEM;
        goto fail_free_mem;
    }
    memset(m->shards, 0, sizeof(*m->shards) * n);
    for (i = 0; i < n; i++) {
        struct hc_mem_shard *s = &m->shards[i];

        pthread_mutex_init(&s->lock, NULL);
        s->capacity = conf->capacity / n;
        s->unread_cap = conf->unread_share ? s->capacity / conf->unread_share : 0;
        s->unread_stream_only = conf->unread_stream_only;
        s->nbuckets = HC_MEM_BUCKETS_INIT;
        s->buckets = calloc(s->nbuckets, sizeof(*s->buckets));
        rc = s->buckets ? hc_policy_create(m->ops, s->capacity, &s->policy) : -ENOMEM;
        if (rc < 0) {
            n = i + 1; /* shards 0..i have a mutex to undo */
            goto fail_shards;
        }
    }
    *out = m;
    return 0;

fail_shards:
    for (i = 0; i < n; i++)
        hc_mem_shard_fini(m, &m->shards[i]);
    free(m->shards);
fail_free_mem:
    free(m);
    return rc;
}

void hc_mem_destroy(struct hc_mem *m)
{
    unsigned i;

    if (!m)
        return;
    for (i = 0; i < m->nshards; i++)
        hc_mem_shard_fini(m, &m->shards[i]);
    free(m->shards);
    free(m);
}

struct hc_entry *hc_mem_lookup(struct hc_mem *m, uint64_t hash, const void *key, size_t klen,
                               bool touch)
{
    struct hc_mem_shard *s = hc_mem_shard_of(m, hash);
    uint32_t now = hc_mem_now(m);
    struct hc_entry *e;

    pthread_mutex_lock(&s->lock);
    e = hc_mem_find(s, hash, key, klen);
    if (e) {
        hc_entry_ref(e);
        if (touch) {
            hc_mem_lp_del(s, e); /* read: an ordinary entry from now on */
            hc_policy_on_hit(s->policy, e, now);
        }
        s->hits++;
    } else {
        s->misses++;
    }
    pthread_mutex_unlock(&s->lock);
    return e;
}

bool hc_mem_contains(struct hc_mem *m, uint64_t hash, const void *key, size_t klen)
{
    struct hc_mem_shard *s = hc_mem_shard_of(m, hash);
    bool found;

    pthread_mutex_lock(&s->lock);
    found = hc_mem_find(s, hash, key, klen) != NULL;
    pthread_mutex_unlock(&s->lock);
    return found;
}

/*
 * Victims are chosen before @e joins the policy, so a new entry never evicts itself
 * (a low-priority entry placed at a queue's eviction end would otherwise be dropped by
 * its own insert whenever the shard is full).
 */
int hc_mem_insert(struct hc_mem *m, struct hc_entry *e)
{
    struct hc_mem_shard *s = hc_mem_shard_of(m, e->hash);
    struct hc_entry *old, *victims = NULL, *v;
    uint32_t now = hc_mem_now(m);

    if (e->cap > s->capacity)
        return -E2BIG;
    pthread_mutex_lock(&s->lock);
    if (e->in_index) {
        pthread_mutex_unlock(&s->lock);
        return -EEXIST;
    }
    old = hc_mem_find(s, e->hash, e->key, e->klen);
    if (old) {
        hc_mem_unchain(s, old);
        hc_policy_on_remove(s->policy, old);
    }
    while (s->bytes + e->cap > s->capacity && (v = hc_mem_evict_one(m, s))) {
        v->hash_next = victims;
        victims = v;
    }
    /*
     * A scan's prefetched blocks do not grow the tier into its free room: past the unread
     * quota the oldest unread one goes (its reader has taken it, or it waits on the disk),
     * so a long cold read recycles a few block buffers instead of faulting in fresh memory
     * for every block (docs/performance.md, "Constants"), and the room stays for blocks
     * that are read again. A block counts as read once it is hit by a lookup that touches
     * (hc_mem_lookup): a sequential reader's hits do not, since the kernel's page cache
     * holds what it read and a second copy here would only grow the tier by the scan.
     */
    bool quota = e->low_priority && s->unread_cap && (e->stream || !s->unread_stream_only);
    if (quota) {
        while (!cmn_list_empty(&s->lp) && s->lp_bytes + e->cap > s->unread_cap) {
            v = HC_MEM_LP_ENTRY(s->lp.head);
            hc_mem_unchain(s, v);
            hc_policy_on_remove(s->policy, v);
            s->evictions++;
            v->hash_next = victims;
            victims = v;
        }
    }
    hc_entry_ref(e);
    e->hash_next = s->buckets[e->hash & (s->nbuckets - 1)];
    s->buckets[e->hash & (s->nbuckets - 1)] = e;
    e->in_index = 1;
    s->count++;
    s->bytes += e->cap;
    s->inserts++;
    if (quota)
        hc_mem_lp_add(s, e);
    hc_policy_on_insert(s->policy, e, now);
    if (s->count > s->nbuckets)
        hc_mem_grow(s);
    pthread_mutex_unlock(&s->lock);

    hc_entry_put(old);
    hc_mem_dispatch(m, victims);
    return 0;
}

int hc_mem_remove(struct hc_mem *m, uint64_t hash, const void *key, size_t klen)
{
    struct hc_mem_shard *s = hc_mem_shard_of(m, hash);
    struct hc_entry *e;

    pthread_mutex_lock(&s->lock);
    e = hc_mem_find(s, hash, key, klen);
    if (e) {
        hc_mem_unchain(s, e);
        hc_policy_on_remove(s->policy, e);
    }
    pthread_mutex_unlock(&s->lock);
    if (!e)
        return -ENOENT;
    hc_entry_put(e);
    return 0;
}

/* Sized from the counts first, filled after (no allocation under a shard lock): a shard
 * that grew in between gives what fits, which the contract allows. */
int hc_mem_snapshot(struct hc_mem *m, struct hc_entry ***out, size_t *n)
{
    struct hc_entry **arr, *e;
    size_t cap = 0, got = 0;
    unsigned i;
    uint64_t b;

    *out = NULL;
    *n = 0;
    for (i = 0; i < m->nshards; i++) {
        pthread_mutex_lock(&m->shards[i].lock);
        cap += m->shards[i].count;
        pthread_mutex_unlock(&m->shards[i].lock);
    }
    if (!cap)
        return 0;
    arr = malloc(cap * sizeof(*arr));
    if (!arr)
        return -ENOMEM;
    for (i = 0; i < m->nshards && got < cap; i++) {
        struct hc_mem_shard *s = &m->shards[i];

        pthread_mutex_lock(&s->lock);
        for (b = 0; b < s->nbuckets && got < cap; b++) {
            for (e = s->buckets[b]; e && got < cap; e = e->hash_next) {
                hc_entry_ref(e);
                arr[got++] = e;
            }
        }
        pthread_mutex_unlock(&s->lock);
    }
    *out = arr;
    *n = got;
    return 0;
}

/*
 * One victim at a time, shards in turn, until @bytes fit in the shared budget or a whole
 * round of shards found nothing to evict. An evicted entry that a reader still holds
 * frees nothing until the reader puts it, so with everything pinned this empties the
 * tier and returns over budget; the caller proceeds anyway (and counts it).
 */
void hc_mem_make_room(struct hc_mem *m, uint64_t bytes)
{
    struct hc_accounting *a = m->acct;
    unsigned idle = 0;

    while (atomic_load_explicit(&a->used, memory_order_relaxed) + bytes > a->limit &&
           idle < m->nshards) {
        unsigned i = atomic_fetch_add_explicit(&m->room_cursor, 1, memory_order_relaxed);
        struct hc_mem_shard *s = &m->shards[i & (m->nshards - 1)];
        struct hc_entry *v;

        pthread_mutex_lock(&s->lock);
        v = hc_mem_evict_one(m, s);
        pthread_mutex_unlock(&s->lock);
        if (!v) {
            idle++;
            continue;
        }
        idle = 0;
        hc_mem_dispatch(m, v);
    }
}

void hc_mem_get_stats(struct hc_mem *m, struct hc_mem_stats *st)
{
    unsigned i;

    memset(st, 0, sizeof(*st));
    for (i = 0; i < m->nshards; i++) {
        struct hc_mem_shard *s = &m->shards[i];

        pthread_mutex_lock(&s->lock);
        st->hits += s->hits;
        st->misses += s->misses;
        st->inserts += s->inserts;
        st->evictions += s->evictions;
        st->bytes += s->bytes;
        st->entries += s->count;
        pthread_mutex_unlock(&s->lock);
    }
}

#ifdef TIERFS_DEBUG
#define HC_MEM_CHECK(cond)                                                                         \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            TLOG_E("hybridcache: memory tier invariant broken: %s (%s:%d)", #cond, __FILE__,       \
                   __LINE__);                                                                      \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

void hc_mem_check_invariants(struct hc_mem *m)
{
    unsigned i;

    for (i = 0; i < m->nshards; i++) {
        struct hc_mem_shard *s = &m->shards[i];
        uint64_t b, count = 0, bytes = 0;
        struct hc_entry *e;

        pthread_mutex_lock(&s->lock);
        HC_MEM_CHECK(CMN_IS_POW2(s->nbuckets));
        for (b = 0; b < s->nbuckets; b++) {
            for (e = s->buckets[b]; e; e = e->hash_next) {
                HC_MEM_CHECK(e->in_index == 1);
                HC_MEM_CHECK(hc_mem_shard_of(m, e->hash) == s);
                HC_MEM_CHECK((e->hash & (s->nbuckets - 1)) == b);
                HC_MEM_CHECK(atomic_load(&e->refs) >= 1);
                count++;
                bytes += e->cap;
            }
        }
        HC_MEM_CHECK(count == s->count);
        HC_MEM_CHECK(bytes == s->bytes);
        HC_MEM_CHECK(s->bytes <= s->capacity);
        /* the unread list: indexed low-priority entries, linked both ways, bytes summed */
        uint64_t lp = 0;
        for (e = HC_MEM_LP_ENTRY(s->lp.head); e; e = HC_MEM_LP_ENTRY(e->lp_link.next)) {
            HC_MEM_CHECK(e->lp_unread && e->in_index && e->low_priority);
            HC_MEM_CHECK(e->stream || !s->unread_stream_only);
            HC_MEM_CHECK(e->lp_link.next ? e->lp_link.next->prev == &e->lp_link
                                         : s->lp.tail == &e->lp_link);
            lp += e->cap;
        }
        HC_MEM_CHECK(lp == s->lp_bytes);
        pthread_mutex_unlock(&s->lock);
    }
}
#endif
