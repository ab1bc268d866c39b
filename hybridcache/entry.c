/* SPDX-License-Identifier: Apache-2.0 */
/* entry.c: allocation and reference counting of cache entries (struct hc_entry). */
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "hybridcache/hc_i.h"
#include "ioengine/ioengine.h"

/* Fixed so that a hash computed by one process matches the disk index of the next. */
#define HC_KEY_HASH_SEED 0x7469657266733031ull /* "tierfs01" */

uint64_t hc_key_hash(const void *key, size_t klen)
{
    return cmn_hash64(key, klen, HC_KEY_HASH_SEED);
}

/*
 * The data buffer comes from ioeng_buf_alloc() so the disk tier can read into it and
 * write from it with O_DIRECT, without a bounce buffer. @cap is charged to @acct at once,
 * before the caller has put anything in it: the budget counts memory that exists.
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
        e->data = ioeng_buf_alloc(cap);
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

/* The last reference frees the data and returns its bytes to the budget. acq_rel so
 * the freeing thread sees every write other holders made before their put. */
void hc_entry_put(struct hc_entry *e)
{
    if (!e)
        return;
    if (atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (e->acct)
        atomic_fetch_sub_explicit(&e->acct->used, e->cap, memory_order_relaxed);
    if (e->data)
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
