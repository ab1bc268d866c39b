/* SPDX-License-Identifier: Apache-2.0 */
/* entry.c: allocation and reference counting of cache entries (struct hc_entry). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/util.h"
#include "hybridcache/hc_i.h"
#include "ioengine/ioengine.h"

/* Under ASan a pooled buffer is poisoned, so a use after the last put still faults. */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define HC_POOL_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define HC_POOL_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define HC_POOL_POISON(p, n) ((void)(p), (void)(n))
#define HC_POOL_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

/* Fixed so that a hash computed by one process matches the disk index of the next. */
#define HC_KEY_HASH_SEED 0x7469657266733031ull /* "tierfs01" */

uint64_t hc_key_hash(const void *key, size_t klen)
{
    return cmn_hash64(key, klen, HC_KEY_HASH_SEED);
}

/* ---- the buffer pool ---- */

struct hc_buf_pool {
    pthread_mutex_t lock; /* a leaf lock: nothing is called while it is held */
    size_t buf_size;
    unsigned max;
    unsigned n;   /* buffers in bufs[]; protected by lock */
    void *bufs[]; /* max slots, the first n in use; protected by lock */
};

int hc_buf_pool_create(size_t buf_size, unsigned max, struct hc_buf_pool **out)
{
    struct hc_buf_pool *p;

    if (!out || !buf_size || buf_size > UINT32_MAX)
        return -EINVAL;
    *out = NULL;
    if (!max)
        return 0;
    p = calloc(1, sizeof(*p) + (size_t)max * sizeof(p->bufs[0]));
    if (!p)
        return -ENOMEM;
    if (pthread_mutex_init(&p->lock, NULL) != 0) {
        free(p);
        return -ENOMEM;
    }
    p->buf_size = buf_size;
    p->max = max;
    *out = p;
    return 0;
}

void hc_buf_pool_destroy(struct hc_buf_pool *p)
{
    if (!p)
        return;
    while (p->n) {
        void *b = p->bufs[--p->n];

        HC_POOL_UNPOISON(b, p->buf_size);
        ioeng_buf_free(b);
    }
    pthread_mutex_destroy(&p->lock);
    free(p);
}

uint64_t hc_buf_pool_bytes(struct hc_buf_pool *p)
{
    unsigned n;

    if (!p)
        return 0;
    pthread_mutex_lock(&p->lock);
    n = p->n;
    pthread_mutex_unlock(&p->lock);
    return (uint64_t)n * p->buf_size;
}

unsigned hc_buf_pool_max(const struct hc_buf_pool *p)
{
    return p ? p->max : 0;
}

/* @return a pooled buffer (its old bytes are garbage, as with malloc) or NULL if empty. */
static void *hc_buf_pool_get(struct hc_buf_pool *p)
{
    void *b = NULL;

    pthread_mutex_lock(&p->lock);
    if (p->n)
        b = p->bufs[--p->n];
    pthread_mutex_unlock(&p->lock);
    if (b)
        HC_POOL_UNPOISON(b, p->buf_size);
    return b;
}

/* Keep @b (buf_size bytes from ioeng_buf_alloc) if the pool has a slot and, with it,
 * holds at most @room bytes (what the budget has free), else free it. */
static void hc_buf_pool_put(struct hc_buf_pool *p, void *b, uint64_t room)
{
    bool kept = false;

    /* Poisoned before it is visible to another thread's get, which unpoisons it. */
    HC_POOL_POISON(b, p->buf_size);
    pthread_mutex_lock(&p->lock);
    if (p->n < p->max && (p->n + 1ull) * p->buf_size <= room) {
        p->bufs[p->n++] = b;
        kept = true;
    }
    pthread_mutex_unlock(&p->lock);
    if (!kept) {
        HC_POOL_UNPOISON(b, p->buf_size);
        ioeng_buf_free(b);
    }
}

/* ---- entries ---- */

/*
 * A fresh block buffer's pages are faulted in with one call (ioeng_buf_prefault): the GET
 * or disk read that fills it would otherwise take one page fault per 4 KiB, which made a
 * cold read while a large memory tier is still growing much slower than with a small
 * tier whose evicted buffers are reused (docs/performance.md, "Constants").
 */
static void hc_buf_prefault(void *buf, size_t len)
{
    if (len >= HC_BLOCK_SIZE_MIN)
        (void)ioeng_buf_prefault(buf, len);
}

/*
 * The data buffer comes from ioeng_buf_alloc() so the disk tier can read into it and
 * write from it with O_DIRECT, without a bounce buffer; when @cap is the size of
 * @acct->pool's buffers, from that pool first. @cap is charged to @acct at once, before
 * the caller has put anything in it: the budget counts memory that exists.
 */
struct hc_entry *hc_entry_alloc(const void *key, size_t klen, size_t cap,
                                struct hc_accounting *acct)
{
    struct hc_entry *e;

    if (klen > HC_KEY_MAX || cap > UINT32_MAX)
        return NULL;
    e = calloc(1, sizeof(*e) + klen);
    if (!e)
        return NULL;
    if (cap) {
        if (acct && acct->pool && cap == acct->pool->buf_size)
            e->data = hc_buf_pool_get(acct->pool);
        if (!e->data) {
            e->data = ioeng_buf_alloc(cap);
            if (e->data)
                hc_buf_prefault(e->data, cap);
        }
        if (!e->data) {
            free(e);
            return NULL;
        }
    }
    atomic_init(&e->refs, 1);
    e->klen = (uint32_t)klen;
    e->cap = (uint32_t)cap;
    e->hash = hc_key_hash(key, klen);
    if (klen)
        memcpy(e->key, key, klen);
    e->acct = acct;
    if (acct)
        atomic_fetch_add_explicit(&acct->used, cap, memory_order_relaxed);
    return e;
}

void hc_entry_ref(struct hc_entry *e)
{
    atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
}

/* The last reference frees the data (or gives a pool-sized buffer back to the pool,
 * which is not charged) and returns its bytes to the budget. acq_rel so the freeing
 * thread sees every write other holders made before their put. */
void hc_entry_put(struct hc_entry *e)
{
    if (!e)
        return;
    if (atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) != 1)
        return;
    uint64_t used = 0;
    if (e->acct)
        used = atomic_fetch_sub_explicit(&e->acct->used, e->cap, memory_order_relaxed) - e->cap;
    if (e->data && e->acct && e->acct->pool && e->cap == e->acct->pool->buf_size)
        hc_buf_pool_put(e->acct->pool, e->data, e->acct->limit > used ? e->acct->limit - used : 0);
    else if (e->data)
        ioeng_buf_free(e->data);
    free(e);
}

const void *hc_entry_data(const struct hc_entry *e)
{
    return e->data;
}

size_t hc_entry_len(const struct hc_entry *e)
{
    return e->len;
}

size_t hc_entry_off(const struct hc_entry *e)
{
    return e->off;
}

struct hc_entry *hc_entry_alloc_nodata(const void *key, size_t klen, uint32_t charge)
{
    struct hc_entry *e = hc_entry_alloc(key, klen, 0, NULL);
    if (e)
        e->cap = charge;
    return e;
}
