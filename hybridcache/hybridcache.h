/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hybridcache.h: a memory tier over a disk tier, with single-flight fetch from an origin.
 *
 * DESIGN
 * Keys are opaque byte strings; values are buffers of at most conf.block_size bytes.
 * The memory tier is sharded (a lock per shard) and reference-counted: a reader holds a
 * `struct hc_entry` without copying while it may be evicted from the index. Eviction
 * policy by name: lru, s3fifo, sieve, tinylfu. The disk tier is a log-structured region
 * engine on an ioengine device (file or raw block device, O_DIRECT by default) whose
 * index is recovered from the device after a clean shutdown or a crash; every entry
 * carries checksums verified on read (a mismatch is a miss, never bad data), one per
 * 4 KiB chunk of a value, so hc_fetch_range() can read and verify a few chunks alone.
 *
 * The cooperator (hc_fetch) gives single-flight at every level: concurrent misses on one
 * key cause one disk lookup and, if that misses, one call of the fetcher; every waiter
 * gets the same result. Disk hits are promoted to memory. Blocks reach the disk on insert
 * or on eviction from memory (conf.write_mode); disk writes are dropped (admission), never
 * waited for, when the disk falls behind. Without a disk path the cache is memory-only
 * with the same API.
 *
 * Memory bound: memory tier + in-flight fetch buffers + disk write queue stay within
 * conf.mem_capacity plus a small fixed overhead.
 */
#ifndef TIERFS_HYBRIDCACHE_H
#define TIERFS_HYBRIDCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct hc_cache;
struct hc_entry;  /* a reference-counted cached value */
struct hc_flight; /* one fetch of a key in progress (single-flight) */
struct dev;

#define HC_BLOCK_SIZE_MIN (64u << 10)
#define HC_BLOCK_SIZE_MAX (16u << 20)
#define HC_BLOCK_SIZE_DEFAULT (1u << 20)
#define HC_KEY_MAX 2048

enum hc_write_mode {
    HC_WRITE_ON_INSERT = 0, /* every block fetched/inserted is also queued for the disk */
    HC_WRITE_ON_EVICT,      /* blocks go to disk when the memory tier evicts them, and
                               at hc_flush / hc_destroy */
};

struct hc_conf {
    uint32_t block_size;    /* 0 = HC_BLOCK_SIZE_DEFAULT; 64 KiB .. 16 MiB */
    uint64_t mem_capacity;  /* bytes for memory tier + in-flight + write queue */
    const char *mem_policy; /* "lru" | "s3fifo" | "sieve" | "tinylfu"; NULL = "s3fifo" */
    unsigned mem_shards;    /* 0 = automatic */

    /* disk tier: set disk_path or disk_dev, or neither for memory-only */
    const char *disk_path;  /* file (created if absent) or block device */
    struct dev *disk_dev;   /* alternative to disk_path (tests wrap faults); the cache owns it */
    uint64_t disk_capacity; /* bytes; 0 = the device's size */
    bool direct_io;         /* O_DIRECT on disk_path */
    const char *io_engine;  /* "uring" | "psync"; NULL = "uring" (falls back to psync) */
    unsigned io_depth;      /* 0 = an eighth of mem_capacity in blocks, 2 to 32 */
    /* 0 = 16 MiB, halved while two regions exceed a quarter of mem_capacity (down to two
     * blocks' worth); an existing cache keeps its own. A multiple of the device's
     * alignment, at least two blocks with headers. */
    uint32_t region_size;
    bool compression; /* lz4 for blocks that shrink */
    enum hc_write_mode write_mode;
    uint64_t write_queue_bytes; /* 0 = 4 regions' worth, capped by mem_capacity / 4 */
    unsigned defer_blocks;      /* fetched blocks that may wait for room in the write
                                   queue (cache_defer.c); 0 = the memory tier's blocks */
    const char *identity;       /* cache identity (fs: endpoint + bucket); mismatch wipes */
    bool refuse_unknown;        /* a device holding data that is no tierfs cache (no magic,
                                   not all zero) fails hc_create with -EEXIST instead of
                                   being formatted; a tierfs cache of another identity,
                                   block size or version is still wiped */
};

/* Where a fetch's value came from. */
enum hc_source {
    HC_SRC_MEMORY = 0,
    HC_SRC_DISK,
    HC_SRC_ORIGIN,
    HC_SRC_MERGED, /* this caller waited on another caller's lookup or fetch */
};

struct hc_stats {
    uint64_t mem_hits, mem_misses, mem_inserts, mem_evictions, mem_bytes_read;
    uint64_t disk_hits, disk_misses, disk_inserts, disk_evictions, disk_reinserts;
    uint64_t disk_bytes_read, disk_bytes_written, disk_read_errors, disk_write_errors;
    uint64_t origin_fetches, origin_errors, origin_bytes;
    uint64_t merges;             /* single-flight: callers that joined an in-flight lookup/fetch */
    uint64_t admission_drops;    /* disk writes dropped because the disk fell behind */
    uint64_t disk_deferred;      /* disk writes that waited for room in the write queue */
    uint64_t disk_defer_pending; /* ... and are waiting now (current) */
    uint64_t disk_defer_holds;   /* times new fetches were held back: too many waited */
    uint64_t checksum_failures;
    uint64_t mem_used, mem_limit; /* bytes, current */
    uint64_t inflight_bytes, write_queue_bytes;
    uint64_t pool_bytes;               /* idle block buffers kept for reuse; not in mem_used */
    uint64_t disk_used, disk_capacity; /* bytes, current */
    uint64_t disk_region_size;         /* the disk tier's region size */
    uint64_t disk_entries, disk_index_bytes; /* index_bytes / entries = bytes per entry */
    uint64_t recovered_entries, recovery_ns;
    uint64_t compressed_blocks, compressed_saved_bytes;
    uint64_t mem_overcommits;    /* fetches started without budget (all else pinned) */
    uint64_t disk_partial_hits;  /* hc_fetch_range disk hits that read only some chunks
                                    (also counted in disk_hits) */
    uint64_t disk_partial_bytes; /* bytes those returned (also in disk_bytes_read) */
    const char *disk_engine;     /* the IO engine the disk tier runs on ("uring", "psync":
                                    what runs, after any fallback); NULL without a disk tier */
    bool disk_blockdev;          /* the disk tier is on a block device (else a file) */
};

/* ---- lifecycle ---- */

/* Create / recover. @return 0 and *out, or -errno with a log line (bad conf: -EINVAL). */
int hc_create(const struct hc_conf *conf, struct hc_cache **out);
/* Flush the disk tier so the next hc_create() on the device recovers it, then free.
 * Waits for in-flight fetches (their done callbacks run). With HC_WRITE_ON_EVICT, first
 * writes the blocks only the memory tier holds (at most the disk's capacity; it gives up
 * at the first failed disk write or after 30 s, and logs how many it wrote and how long
 * that took). NULL is fine. */
void hc_destroy(struct hc_cache *c);
/* Make everything inserted so far durable on the device: with HC_WRITE_ON_EVICT that
 * writes the memory tier's blocks the disk lacks, waiting for room in the write queue
 * (bounded as in hc_destroy). @return 0 or -errno (-EIO: a disk write failed). */
int hc_flush(struct hc_cache *c);
uint32_t hc_block_size(const struct hc_cache *c);
/* The smallest disk tier (bytes) for @block_size (0: the default) on a device aligned to
 * 4 KiB: its header and the regions it cannot work without. Smaller ones fail -ERANGE. */
uint64_t hc_disk_min_capacity(uint32_t block_size);
/* Bytes the memory tier and in-flight fetches share: conf.mem_capacity less the disk
 * tier's reserve (its write queue and read buffers). A prefetcher sizes its window by it. */
uint64_t hc_mem_budget(const struct hc_cache *c);
void hc_get_stats(struct hc_cache *c, struct hc_stats *st);

/* ---- entries ---- */

const void *hc_entry_data(const struct hc_entry *e);
size_t hc_entry_len(const struct hc_entry *e);
/* Offset in the block of hc_entry_data()'s first byte: 0, except for the partial entries
 * hc_fetch_range() returns. */
size_t hc_entry_off(const struct hc_entry *e);
void hc_entry_ref(struct hc_entry *e);
void hc_entry_put(struct hc_entry *e); /* NULL is fine */

/* ---- lookups ---- */

/* Memory tier only, synchronous. @return a reference (caller puts it) or NULL. */
struct hc_entry *hc_get(struct hc_cache *c, const void *key, size_t klen);

/*
 * The fetcher fills @buf (capacity @cap = block size) from the origin, now or later from
 * any thread, then calls hc_fetch_complete(ctx, bytes or -errno) exactly once.
 */
typedef void (*hc_fetcher_fn)(struct hc_flight *ctx, void *buf, size_t cap, void *arg);
void hc_fetch_complete(struct hc_flight *ctx, ssize_t len_or_err);
/* hc_fetch_complete that also gives the caller a reference to the entry the bytes became
 * (*@out, put it; NULL on an error): the fetched bytes, readable after the buffer became
 * the cache's, without a copy (the fleet tier stores them from there). */
void hc_fetch_complete_ref(struct hc_flight *ctx, ssize_t len_or_err, struct hc_entry **out);

/* Called once per hc_fetch(): @e is a reference the callee must put (NULL on error). */
typedef void (*hc_done_fn)(int result, struct hc_entry *e, enum hc_source src, void *arg);

#define HC_FETCH_PREFETCH                                                                          \
    0x1                        /* low priority: a fetched value goes to disk (or the memory        \
                                  tier's probation) so it does not push hot blocks out */
#define HC_FETCH_NO_ORIGIN 0x2 /* look in memory and disk only; a miss completes with -ENOENT */
#define HC_FETCH_IF_ABSENT                                                                         \
    0x4 /* prefetch only what is nowhere: when the key is in memory,                               \
           maybe on the disk (its index has the hash) or already being                             \
           fetched, hc_fetch returns -EEXIST at once (done is not                                  \
           called); no disk read, no hit counted */
#define HC_FETCH_NOT_IN_MEM                                                                        \
    0x8 /* read ahead only what memory lacks: a key in the memory tier                             \
           returns -EEXIST at once (done is not called; no hit                                     \
           counted, the policy does not see it); else as without */
#define HC_FETCH_STREAM                                                                            \
    0x10 /* a sequential reader streaming through (its bytes stay in                               \
            the kernel's page cache): a memory hit does not count as                               \
            a use for the policy or the unread quota, and a fetched                                \
            or disk-read value is placed as for HC_FETCH_PREFETCH */
#define HC_FETCH_JOIN                                                                              \
    0x20 /* with HC_FETCH_NO_ORIGIN: a flight of the key that has its buffer (reading the          \
            disk or the origin) is waited for, origin fetch included, instead of missing at        \
            once; one still queued for memory is a miss (-ENOENT), so a flight that holds          \
            memory never waits for one that waits for memory */

/*
 * Look @key up in memory, then disk, then call @fetcher; single-flight per key.
 * @done may run before hc_fetch returns (memory hit) or later on a cache thread.
 * @return 0 (done will be called exactly once) or -errno (it will not).
 */
int hc_fetch(struct hc_cache *c, const void *key, size_t klen, unsigned flags,
             hc_fetcher_fn fetcher, void *fetcher_arg, hc_done_fn done, void *done_arg);
/*
 * hc_fetch of a value that is never longer than @cap bytes (at most the block size): the
 * flight's buffer, and the budget it is charged while the fetch runs, is @cap bytes, not
 * a block. For keys whose values are short by construction (tierfs's pieces of a block);
 * every caller must pass the same @cap for a key. The fetcher's buffer is @cap bytes.
 */
int hc_fetch_sized(struct hc_cache *c, const void *key, size_t klen, unsigned flags, size_t cap,
                   hc_fetcher_fn fetcher, void *fetcher_arg, hc_done_fn done, void *done_arg);

/*
 * Whether @key is in the memory tier, maybe on the disk tier (its index has the key's
 * hash: a later read may still miss) or being fetched. No read, no hit counted, the
 * policy does not see it. Thread safe.
 */
bool hc_contains(struct hc_cache *c, const void *key, size_t klen);

/*
 * hc_fetch for a caller that needs only bytes [@off, @off + @len) of the block now (a lone
 * small read). A memory hit and an origin fetch give the whole block, as hc_fetch. A disk
 * hit for a range of at most a quarter of the block reads and verifies only the chunks
 * covering it (hc_disk_lookup_range) into a partial entry that is NOT put in the memory
 * tier: hc_entry_off(e) is where its data starts in the block, hc_entry_len(e) its bytes
 * (the range, rounded out to chunks, cut at the end of the block's value). Anything else
 * (a bigger range, no disk, an entry without chunk checksums, a bad chunk, no budget for
 * the buffer) takes the hc_fetch path, single-flight included. Concurrent partial reads of
 * one key are not merged. Partial buffers are charged to the memory budget while held.
 * Flags and @return as hc_fetch; with HC_FETCH_PREFETCH or HC_FETCH_IF_ABSENT it is hc_fetch.
 */
int hc_fetch_range(struct hc_cache *c, const void *key, size_t klen, unsigned flags, uint64_t off,
                   size_t len, hc_fetcher_fn fetcher, void *fetcher_arg, hc_done_fn done,
                   void *done_arg);

/* Synchronous hc_fetch. @return 0 and *out (a reference), or -errno. */
int hc_fetch_sync(struct hc_cache *c, const void *key, size_t klen, unsigned flags,
                  hc_fetcher_fn fetcher, void *fetcher_arg, struct hc_entry **out,
                  enum hc_source *src);

/* Synchronous hc_fetch_range. @return 0 and *out (a reference), or -errno. */
int hc_fetch_range_sync(struct hc_cache *c, const void *key, size_t klen, unsigned flags,
                        uint64_t off, size_t len, hc_fetcher_fn fetcher, void *fetcher_arg,
                        struct hc_entry **out, enum hc_source *src);

/* ---- writes ---- */

#define HC_INSERT_DISK_ONLY 0x1 /* straight to the disk tier (prefetched blocks) */
/* Copy @len bytes in under @key. @return 0, or -errno (-E2BIG past block size). */
int hc_insert(struct hc_cache *c, const void *key, size_t klen, const void *data, size_t len,
              unsigned flags);
/* Remove from both tiers. @return 0 or -ENOENT. */
int hc_remove(struct hc_cache *c, const void *key, size_t klen);

/* Policy names, NULL-terminated (for --help and validation). */
const char *const *hc_policy_names(void);

#endif
