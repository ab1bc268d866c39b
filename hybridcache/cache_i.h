/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cache_i.h: the cooperator's state, shared by cache.c (flights, fetches, inserts) and
 * cache_life.c (create, destroy, flush and spill, stats, invariants). The design and the
 * invariants are at the top of cache.c.
 */
#ifndef TIERFS_HC_CACHE_I_H
#define TIERFS_HC_CACHE_I_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "hybridcache/hc_i.h"

#define HC_FLIGHT_SHARDS 64
#define HC_FLIGHT_MIN_RUNNING 4
#define HC_MEM_SHARDS_AUTO_MAX 64
#define HC_MEM_BLOCKS_PER_SHARD 16 /* automatic sharding keeps this many blocks a shard */
#define HC_DISK_IO_DEPTH_DEFAULT 32
/* With a disk tier, unread prefetched blocks hold at most 1/8 of a memory shard. */
#define HC_MEM_UNREAD_SHARE 8

/* Block-sized entry buffers kept for reuse (struct hc_buf_pool): as many as the budget has
 * free room for (entry.c), at most this many slots. A fixed 64 (1/16 of the tier) still
 * sent buffers back to malloc in a cold scan, which then faulted fresh pages in for the
 * next flights (docs/performance.md, "Constants"). */
#define HC_POOL_MAX 65536

enum hc_flight_state { HC_FL_QUEUED = 0, HC_FL_DISK, HC_FL_ORIGIN };

struct hc_waiter {
    hc_done_fn done;
    void *arg;
    unsigned flags;
    struct hc_waiter *next;
};

struct hc_flight {
    struct hc_cache *c;
    struct hc_flight *next;       /* shard chain; protected by the shard lock */
    struct hc_flight *queue_next; /* c->queue; protected by c->lock */
    uint64_t hash;
    enum hc_flight_state state; /* protected by the shard lock */
    bool want_mem;              /* a non-prefetch waiter; protected by the shard lock */
    bool stream;                /* every waiter a HC_FETCH_STREAM one; protected by the shard
                                   lock */
    bool linked;                /* in the shard chain; protected by the shard lock */
    hc_fetcher_fn fetcher;      /* the first origin-allowed waiter's; shard lock */
    void *fetcher_arg;
    struct hc_waiter *waiters, **wtail; /* protected by the shard lock */
    struct hc_waiter first;             /* the creator's, saves a malloc per miss */
    struct hc_entry *buf;               /* owned by the flight; cap bytes, charged */
    uint32_t cap;                       /* the buffer's size: the block size, or less for
                                           hc_fetch_sized (fixed per key by its caller) */
    uint32_t klen;
    struct hc_entry **ref_out; /* hc_fetch_complete_ref: gets a reference to the entry */
    char key[];
};

struct hc_flight_shard {
    pthread_mutex_t lock;
    struct hc_flight *head; /* protected by lock */
} __attribute__((aligned(64)));

struct hc_cache {
    uint32_t block_size;
    enum hc_write_mode write_mode;
    uint64_t mem_capacity;          /* conf.mem_capacity: the bound reported as mem_limit */
    struct hc_accounting acct;      /* limit = mem_capacity - disk reserve */
    struct hc_accounting disk_acct; /* the disk tier's buffers; limit = its reserve */
    struct hc_mem *mem;
    struct hc_disk *disk;   /* NULL: memory-only */
    struct hc_defer *defer; /* the deferred disk writer (cache_defer.c), with the disk */
    struct hc_flight_shard fl[HC_FLIGHT_SHARDS];

    pthread_mutex_t lock; /* protects the fields below; a leaf lock but for the deferred
                             writer's (a leaf), which the invariants check takes under it */
    pthread_cond_t idle;  /* nflights reached 0 */
    uint64_t nflights, nrunning;
    struct hc_flight *queue_head, *queue_tail;
    bool draining;    /* a thread is starting queued flights */
    bool drain_again; /* ... and must look again before it stops */
    bool closing;

    _Atomic uint64_t merges, origin_fetches, origin_errors, origin_bytes;
    _Atomic uint64_t overcommits, recheck_misses, inflight_bytes;
    _Atomic uint64_t defer_holds; /* flights queued because the deferred writer was full */
};

/* ---- between cache.c and cache_life.c ---- */

/* cache_defer.c: a block for the disk tier, written now if the write queue has room,
 * else queued (a reference) for the deferred writer; dropped (counted) when that queue
 * is full. Never blocks. */
struct hc_defer;
/* @hold: queued blocks at which hc_defer_full says so (the queue takes twice that). */
int hc_defer_create(struct hc_disk *disk, unsigned hold, void (*on_room)(void *), void *arg,
                    struct hc_defer **out);
/* The queue is full: start no flight (its block would be dropped) until on_room runs. */
bool hc_defer_full(struct hc_defer *q);
/* cache.c: on_room, start flights the budget queue held back. */
void hc_queue_kick(void *cache);
void hc_defer_insert(struct hc_defer *q, struct hc_entry *e);
/* Blocks queued so far, and queued or being written now. */
void hc_defer_stats(struct hc_defer *q, uint64_t *deferred, uint64_t *pending);
/* Wait until everything queued has been handed to the disk tier. */
void hc_defer_drain(struct hc_defer *q);
/* Write what is queued (each with its wait), stop the thread, free. NULL is fine. */
void hc_defer_destroy(struct hc_defer *q);

/* cache.c: the flight shard of @hash (cache_life.c checks the flights' invariants). */
struct hc_flight_shard *hc_flight_shard_of(struct hc_cache *c, uint64_t hash);

#endif
