/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hc_mem.h: the memory tier on its own (mem.c), public for what drives it without the
 * rest of the cache: the eviction-policy trace replay of tierfs-bench-cache
 * (tools/bench_cache_trace.c) and the unit tests. The daemon uses hybridcache.h only.
 * Entries stay opaque here; their layout is private (hc_i.h).
 */
#ifndef TIERFS_HC_MEM_H
#define TIERFS_HC_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hc_entry;
struct hc_accounting;

/* Hits of one entry within this many ms of its last counted access are one access split
 * into several requests, not re-use (the reasons: evict_i.h). */
#define HC_POLICY_CORRELATED_MS 200u

/* @return the 64-bit hash every tier indexes @key by. */
uint64_t hc_key_hash(const void *key, size_t klen);

/* An entry with no data buffer that counts @charge bytes against the tier it joins: a
 * trace replay needs only the policy's bookkeeping. One reference (hc_entry_put).
 * @return the entry or NULL (ENOMEM). */
struct hc_entry *hc_entry_alloc_nodata(const void *key, size_t klen, uint32_t charge);

/* ---- memory tier ---- */

struct hc_mem;
struct hc_mem_conf {
    uint64_t capacity; /* bytes of entry data */
    const char *policy;
    unsigned shards;            /* 0 = automatic (power of two) */
    struct hc_accounting *acct; /* shared budget; NULL = the tier's own */
    /* Called for each entry evicted by capacity (not by hc_mem_remove), outside shard
     * locks, with a reference the callee must put. Used for write-on-evict. */
    void (*on_evict)(struct hc_entry *e, void *arg);
    void *on_evict_arg;
    /* The ms clock handed to the policy (hc_policy_ops.on_hit); NULL = cmn_now_ms().
     * A trace replay, whose requests are each an access of their own however fast they
     * run, steps it by HC_POLICY_CORRELATED_MS a request. Called without locks. */
    uint32_t (*clock_ms)(void *arg);
    void *clock_arg;
    /* Unread prefetched (low-priority) entries may hold at most 1/unread_share of a
     * shard, even while it has room: past that the oldest is evicted (0 = no limit).
     * For a tier with a disk behind it, where such a block is still one disk read away. */
    unsigned unread_share;
    /* The quota counts only entries a page-cache reader streamed (hc_entry.stream): for a
     * tier without a disk, where the kernel holds those bytes and any other evicted
     * block is another GET. */
    bool unread_stream_only;
};
int hc_mem_create(const struct hc_mem_conf *conf, struct hc_mem **out);
void hc_mem_destroy(struct hc_mem *m);
/*
 * @return a new reference or NULL. Counts a hit or a miss. With @touch a hit is a use:
 * the entry leaves the unread list and the policy sees the hit. Without it (a reader
 * streaming through, whose bytes the kernel's page cache keeps) the entry keeps its
 * place, so a scan does not make its blocks look hot.
 */
struct hc_entry *hc_mem_lookup(struct hc_mem *m, uint64_t hash, const void *key, size_t klen,
                               bool touch);
/* Insert @e (the index takes its own reference; an existing entry under the key is
 * replaced). Evicts to make room. @return 0 or -errno (-E2BIG larger than a shard). */
int hc_mem_insert(struct hc_mem *m, struct hc_entry *e);
int hc_mem_remove(struct hc_mem *m, uint64_t hash, const void *key, size_t klen);
/* Is @key in the tier? No hit or miss is counted and the policy is not told. */
bool hc_mem_contains(struct hc_mem *m, uint64_t hash, const void *key, size_t klen);
/* References to the entries in the tier now (entries inserted meanwhile may be missed),
 * without counting hits or telling the policy. @return 0 and *out, a malloc'd array of *n
 * references (the caller puts each and frees the array; NULL when the tier is empty), or
 * -ENOMEM (nothing taken). Thread safe. */
int hc_mem_snapshot(struct hc_mem *m, struct hc_entry ***out, size_t *n);
/* Evict until at least @bytes fit in the shared budget (in-flight buffers make room). */
void hc_mem_make_room(struct hc_mem *m, uint64_t bytes);
struct hc_mem_stats {
    uint64_t hits, misses, inserts, evictions, bytes, entries;
};
void hc_mem_get_stats(struct hc_mem *m, struct hc_mem_stats *st);
#ifdef TIERFS_DEBUG
void hc_mem_check_invariants(struct hc_mem *m);
#endif

#endif
