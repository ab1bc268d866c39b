/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hc_i.h: private interfaces between the parts of hybridcache/:
 *   entry.c     - struct hc_entry allocation and reference counting
 *   mem.c       - the sharded memory tier (hc_mem_*), evict_<policy>.c behind hc_policy_ops
 *   disk*.c     - the region (log-structured) disk tier (hc_disk_*; files: disk.c)
 *   cache.c     - the cooperator: hybridcache.h on top of hc_mem + hc_disk, single-flight
 * Tests include this header to exercise the parts one by one.
 */
#ifndef TIERFS_HC_I_H
#define TIERFS_HC_I_H

#include "common/list.h"
#include "hybridcache/hc_mem.h"
#include "hybridcache/hybridcache.h"

#include <pthread.h>
#include <stdatomic.h>

/* ---- entries ---- */

/*
 * Policy bookkeeping lives inside the entry (intrusive), so eviction never allocates.
 * Each policy uses the fields it needs; they are protected by the owning shard's lock.
 */
struct hc_policy_node {
    struct cmn_link link; /* queue links (evict_i.h hc_queue) */
    uint8_t queue;        /* which queue (s3fifo small/main, tinylfu window/probation/protected) */
    uint8_t freq;         /* small saturating counter / visited bit */
    uint8_t flags;        /* HC_PN_* (evict_i.h) */
    uint8_t pad;
    uint32_t stamp; /* ms clock of the last access that counted (evict_i.h) */
};

struct hc_entry {
    _Atomic uint32_t refs; /* the index holds one while the entry is in it */
    uint32_t klen;
    uint32_t len;               /* valid bytes of data */
    uint32_t cap;               /* bytes allocated for data (counted against memory) */
    uint32_t off;               /* value offset of data[0]: 0, or a partial disk read's
                                   first chunk (hc_fetch_range; never in the memory tier) */
    uint64_t hash;              /* hc_key_hash(key) */
    void *data;                 /* IOENG_BUF_ALIGN-aligned, cap bytes */
    struct hc_entry *hash_next; /* shard hash chain; protected by shard lock */
    struct hc_policy_node pn;   /* protected by shard lock */
    uint8_t in_index;           /* protected by shard lock */
    uint8_t low_priority;       /* inserted by prefetch; policies may place it for early eviction */
    uint8_t stream;             /* low priority, fetched only for a reader whose bytes the
                                   kernel's page cache keeps (HC_FETCH_STREAM) */
    uint8_t lp_unread;          /* low priority, in the index, not hit yet: on the shard's
                                   unread list (mem.c); protected by shard lock */
    struct cmn_link lp_link;    /* that list; protected by shard lock */
    struct hc_accounting *acct; /* where cap is charged (NULL = nowhere) */
    char key[];                 /* klen bytes */
};

/* Memory accounting: one for the memory tier and in-flight fetches, another for the disk
 * tier's buffers (cache.c splits conf.mem_capacity between the two). */
struct hc_accounting {
    _Atomic uint64_t used;
    uint64_t limit;
    /* Entries of exactly the pool's buffer size charged here take their data buffer from
     * it and give it back on the last put (NULL = none). Set before the first entry is
     * allocated; must outlive every entry charged here. */
    struct hc_buf_pool *pool;
};

/*
 * A bounded free list of data buffers of one size (entry.c), per cache: a block-sized
 * entry buffer is above glibc's mmap threshold, so without it every flight maps a fresh
 * block (page faults included, and on a VM the host's first touch too) and every freed
 * entry unmaps one. Pooled buffers are NOT charged to any accounting, but a buffer is
 * kept only while the pool and what its accounting charges stay within its limit (the
 * budget's free room: used + pooled <= limit), so they never add to the memory bound;
 * at most @max buffers. Thread-safe (one mutex, a leaf lock).
 */
struct hc_buf_pool;
/* @return 0 and *out (NULL when @max is 0: no pool), or -ENOMEM / -EINVAL. */
int hc_buf_pool_create(size_t buf_size, unsigned max, struct hc_buf_pool **out);
/* Free the pooled buffers and the pool. NULL is fine. No entry may still use it. */
void hc_buf_pool_destroy(struct hc_buf_pool *p);
/* @return bytes held idle in the pool now (0 for NULL). */
uint64_t hc_buf_pool_bytes(struct hc_buf_pool *p);
/* @return the bound in buffers (0 for NULL). */
unsigned hc_buf_pool_max(const struct hc_buf_pool *p);

/* Allocate an entry with one reference and a data buffer of @cap bytes; charge @acct.
 * @return entry or NULL (ENOMEM). */
struct hc_entry *hc_entry_alloc(const void *key, size_t klen, size_t cap,
                                struct hc_accounting *acct);

/* ---- eviction policies (one file each: evict_lru.c, evict_s3fifo.c, ...) ---- */

struct hc_policy;               /* per-shard policy state (each implementation embeds this first) */
#define HC_POLICY_OPS_VERSION 1 /* hc_policy_ops.version this build understands */
/* Callers go through the hc_policy_* wrappers below, never ops->fn directly. */
struct hc_policy_ops {
    const char *name;
    int version; /* HC_POLICY_OPS_VERSION */
    /* @capacity: the shard's byte capacity (policies that size queues need it). */
    int (*create)(uint64_t capacity, struct hc_policy **out);
    void (*destroy)(struct hc_policy *p);
    /* e joins the policy / is read again; @now_ms: a millisecond clock (cmn_now_ms()
     * truncated; only differences count) that tells hits of one access apart from re-use
     * (hc_policy_reuse() in evict_i.h). Under the shard lock, like every op. */
    void (*on_insert)(struct hc_policy *p, struct hc_entry *e, uint32_t now_ms);
    void (*on_hit)(struct hc_policy *p, struct hc_entry *e, uint32_t now_ms);
    void (*on_remove)(struct hc_policy *p, struct hc_entry *e); /* e leaves (explicit remove) */
    /* Choose the next victim and detach it from the policy; NULL if empty.
     * May reorder entries (s3fifo/sieve second chances). */
    struct hc_entry *(*evict)(struct hc_policy *p);
};
struct hc_policy {
    const struct hc_policy_ops *ops; /* set by create */
};
/* @return the policy named @name or NULL. */
const struct hc_policy_ops *hc_policy_find(const char *name);
/* Create @ops's state for a shard of @capacity bytes. @return 0 and *out, -EINVAL for a
 * table of another version (or none), or the policy's -errno. */
int hc_policy_create(const struct hc_policy_ops *ops, uint64_t capacity, struct hc_policy **out);
/* NULL is fine. */
static inline void hc_policy_destroy(struct hc_policy *p)
{
    if (p)
        p->ops->destroy(p);
}
/* The hot ones, inline: they run under the shard lock on every hit and insert. */
static inline void hc_policy_on_insert(struct hc_policy *p, struct hc_entry *e, uint32_t now_ms)
{
    p->ops->on_insert(p, e, now_ms);
}
static inline void hc_policy_on_hit(struct hc_policy *p, struct hc_entry *e, uint32_t now_ms)
{
    p->ops->on_hit(p, e, now_ms);
}
static inline void hc_policy_on_remove(struct hc_policy *p, struct hc_entry *e)
{
    p->ops->on_remove(p, e);
}
static inline struct hc_entry *hc_policy_evict(struct hc_policy *p)
{
    return p->ops->evict(p);
}

/* ---- disk tier ---- */

struct hc_disk;
struct hc_disk_conf {
    struct dev *dev;       /* owned by the disk tier from hc_disk_open() on */
    const char *io_engine; /* "uring" | "psync" */
    unsigned io_depth;
    uint32_t block_size;  /* max value size */
    uint32_t region_size; /* 0 = 16 MiB, or an existing cache's own */
    /* With region_size 0: the size for a new format (0 = 16 MiB); a device that already
     * holds this cache keeps its region size, so a remount with another memory budget
     * (which picks another size) does not wipe it. */
    uint32_t region_size_new;
    uint64_t capacity; /* 0 = device size */
    bool compression;
    const char *identity;       /* mismatch with the device header wipes the cache */
    bool refuse_unknown;        /* data that is no tierfs cache: -EEXIST instead of a format */
    uint64_t write_queue_bytes; /* bound on bytes accepted but not yet on the device */
    struct hc_accounting *acct; /* region and read buffers are charged here (may be NULL) */
};
/* Open the device, check its header, recover the index (or format). Holds an exclusive
 * advisory lock on the device until close (disk_i.h). @return 0 / -errno (-EBUSY: another
 * process has the device open as a cache). */
int hc_disk_open(const struct hc_disk_conf *conf, struct hc_disk **out);
/* Does the regular file at @path start with someone else's data: neither a tierfs header
 * (of any version, corrupt included) nor zeros? Read with plain IO before any device is
 * opened on it (which may extend it). @return 0, -EEXIST (foreign, logged) or -errno. */
int hc_disk_probe_file(const char *path);
/* Flush open regions and persist what recovery needs, then free. NULL is fine. */
void hc_disk_close(struct hc_disk *d);
int hc_disk_flush(struct hc_disk *d);
/* The most the disk tier charges to conf.acct at once: every region buffer the write queue
 * may hold plus io_depth read buffers of the largest aligned read. @return bytes. */
uint64_t hc_disk_mem_max(const struct hc_disk *d);

/* Completion of a disk lookup: @result = bytes of value in buf, -ENOENT (miss, including a
 * checksum or key mismatch) or another -errno (device error; treat as a miss). */
typedef void (*hc_disk_done_fn)(ssize_t result, void *arg);
/* Read the value of @key into @buf (capacity >= block_size). Asynchronous. @return 0
 * (done will be called) or -ENOENT at once when the index has no such hash. */
int hc_disk_lookup(struct hc_disk *d, uint64_t hash, const void *key, size_t klen, void *buf,
                   size_t cap, hc_disk_done_fn done, void *arg);
/*
 * Read value bytes [@off, @off + @len) of @key: only the entry's header, key and chunk
 * table and the HC_DISK_CHUNK-sized chunks covering the range (disk_i.h), each verified.
 * On success done gets the bytes copied to @buf, which start at value offset
 * hc_disk_range_off(@off) and run to the end of the last covering chunk or of the value
 * (0 when the value ends before @off). Asynchronous, as hc_disk_lookup (done may run
 * before this returns). Counted as a hit and a partial hit; misses are NOT counted (the
 * caller is expected to fall back to hc_disk_lookup, which counts them).
 * Done's result: bytes; -EOPNOTSUPP when the entry has no chunk table (compressed or at
 * most one chunk: read it whole); -ENOENT for a miss, including a corrupt chunk (counted
 * in checksum_failures; the entry stays, other chunks may be good); other -errno.
 * @return 0 (done will be called), -ENOENT at once when the index has no such hash,
 * -ENOBUFS when @cap < hc_disk_range_cap(@off, @len), or -errno.
 */
int hc_disk_lookup_range(struct hc_disk *d, uint64_t hash, const void *key, size_t klen,
                         uint32_t off, uint32_t len, void *buf, size_t cap, hc_disk_done_fn done,
                         void *arg);
/* Value offset where a partial read of @off starts (the chunk holding it). */
uint32_t hc_disk_range_off(uint32_t off);
/* Bytes a partial read of [@off, @off + @len) may return: its covering chunks. */
uint32_t hc_disk_range_cap(uint32_t off, uint32_t len);
/* Queue @len bytes under @key for the device (copied). @return 0, or -EAGAIN when the
 * write queue is full (admission drop, counted), or -errno. */
int hc_disk_insert(struct hc_disk *d, uint64_t hash, const void *key, size_t klen, const void *data,
                   size_t len);
/* hc_disk_insert, but a full write queue is waited for up to @wait_ms (0: not at all; a
 * caller that may block, the cache's deferred writer, waits) and -EAGAIN is not counted:
 * the caller counts the drop (hc_disk_note_drop) when it gives the block up. */
int hc_disk_insert_wait(struct hc_disk *d, uint64_t hash, const void *key, size_t klen,
                        const void *data, size_t len, unsigned wait_ms);
void hc_disk_note_drop(struct hc_disk *d);
/* The smallest region that holds @k of the largest entries of @block_size: what a small
 * memory budget can afford (two 16 MiB region buffers need 32 MiB). */
uint64_t hc_disk_region_for(uint32_t block_size, unsigned k);
/* The region size of a new cache when nothing asks for another: 16 MiB, doubled until
 * two of the largest entries fit. */
uint64_t hc_disk_region_auto(uint32_t block_size);
int hc_disk_remove(struct hc_disk *d, uint64_t hash, const void *key, size_t klen);
/* True when the index has an entry for @hash (may be a hash collision). */
bool hc_disk_may_contain(struct hc_disk *d, uint64_t hash);
struct hc_disk_stats {
    uint64_t hits, misses, inserts, evictions, reinserts, bytes_read, bytes_written;
    uint64_t read_errors, write_errors, checksum_failures, admission_drops;
    uint64_t used, capacity, entries, index_bytes, recovered_entries, recovery_ns;
    uint64_t region_size;
    uint64_t compressed_blocks, compressed_saved_bytes;
    uint64_t partial_hits, partial_bytes; /* hc_disk_lookup_range hits (also in hits) */
    const char *engine;                   /* ioeng_name() of the engine it runs on */
    bool blockdev;                        /* the tier is on a block device, not a file */
};
void hc_disk_get_stats(struct hc_disk *d, struct hc_disk_stats *st);

#endif
