/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fleet.h: the fleet tier, blocks shared by many mounts through a memcached cluster.
 *
 * DESIGN
 * A third tier behind memory and disk: on a miss of both, a block is looked up in the
 * fleet (one multi-get for a batch of blocks); a hit is verified and copied into the
 * caller's buffer; a miss takes a short lease (memcached `add` of a lease key) so that
 * of several mounts missing the same block at once one fetches it from the origin and
 * the others wait for its copy, polling, before they fetch it themselves: a lease period
 * (conf.lease_ms) from the last sign of life of the holder's fetch. A holder whose fetch
 * makes progress (hc_fleet_progress as bytes arrive, then its place in the store queue)
 * says so by rewriting the lease's value every quarter period; a waiter that sees the
 * value change waits a period more, up to HC_FLEET_WAIT_PERIODS periods in all. A holder
 * that dies or stalls stops rewriting, so it costs the waiters at most one period. The
 * fetcher then hands the bytes to hc_fleet_store(), which queues them (by reference when
 * the caller lends them, else copied) for the store threads to write in the background
 * (dropped, never waited for, when they fall behind) and release the lease.
 *
 * A block is stored as pieces of at most conf.piece_size bytes (memcached's default item
 * limit is 1 MiB). Each piece carries a header (fleet_i.h) with the SHA-256 of the
 * block's identity (the caller's id bytes: endpoint, bucket, object key, ETag, block size,
 * block index), the piece's place, the block's length and CRC32C, the piece's CRC32C,
 * and with conf.secret an HMAC-SHA256 under the shared key. A value that does not match
 * in every field is a miss of the whole block, counted (bad_values) and never served.
 *
 * Nothing here blocks the caller: lookups, waits and stores run on the fleet's own
 * threads, each with its own connection, and every server call has conf.timeout_ms.
 */
#ifndef TIERFS_HC_FLEET_H
#define TIERFS_HC_FLEET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hc_fleet;
struct hc_fleet_backend; /* fleet_i.h: a store of values by key (memcached, test fakes) */

#define HC_FLEET_ID_MAX 4096
#define HC_FLEET_PIECE_DEFAULT (512u << 10)
#define HC_FLEET_PIECE_MIN (16u << 10)
#define HC_FLEET_PIECE_MAX (1u << 20)
/* A waiter waits at most this many lease periods for a holder whose fetch shows progress. */
#define HC_FLEET_WAIT_PERIODS 8
/* A waiting miss goes to the origin after this many failed looks in a row (one failed
 * look is most often a single late answer on a loaded host, not a sick fleet). */
#define HC_FLEET_POLL_ERRORS 3

struct hc_fleet_conf {
    uint32_t piece_size;    /* 0 = HC_FLEET_PIECE_DEFAULT; bytes of a block per value */
    unsigned lease_ms;      /* 0 = 2000: how long a miss waits for another mount */
    unsigned poll_ms;       /* 0 = 5: how often a waiting miss looks again */
    unsigned threads;       /* 0 = 4 lookup threads */
    unsigned store_threads; /* 0 = 4 store threads (each its own connection) */
    uint64_t store_queue;   /* 0 = 32 MiB: bytes of blocks waiting to be stored */
    uint32_t ttl_s;         /* 0 = no expiry of stored blocks (memcached evicts LRU) */
    const uint8_t *secret;  /* NULL: values are not signed (and signatures not asked) */
    size_t secret_len;
};

/* What became of a lookup of one block. */
enum hc_fleet_result {
    HC_FLEET_HIT = 0, /* the block's bytes are in req->buf (req->len of them) */
    HC_FLEET_FETCH,   /* fetch it from the origin, then hc_fleet_store() or
                         hc_fleet_abandon(): req->leased says whether we hold the lease */
};

struct hc_fleet_req;
struct hc_fleet_held;
typedef void (*hc_fleet_done_fn)(struct hc_fleet_req *r, enum hc_fleet_result res);

/* One block to look up. The caller fills the public fields, calls hc_fleet_prepare, and
 * keeps the request (and the array of a batch) alive until done ran and, for
 * HC_FLEET_FETCH, until hc_fleet_store/abandon returned. */
struct hc_fleet_req {
    const void *id; /* identity bytes of the block (copied by hc_fleet_lookup) */
    size_t idlen;   /* at most HC_FLEET_ID_MAX */
    void *buf;      /* where a hit's bytes go */
    size_t len;     /* the block's length: a value of another length is a miss */
    hc_fleet_done_fn done;
    void *arg;
    /* set by the fleet */
    bool leased; /* with HC_FLEET_FETCH: this mount holds the block's lease */
    bool waited; /* another mount held the lease: the request waited for its copy */
    uint8_t hash[32];
    uint64_t deadline_ns; /* while waiting: one period after the holder's last sign */
    uint64_t cap_ns;      /* while waiting: HC_FLEET_WAIT_PERIODS after the wait began */
    uint32_t lease_crc;   /* while waiting: the lease value last seen (lease_seen) */
    bool lease_seen;
    uint8_t poll_errors;        /* while waiting: failed looks in a row */
    struct hc_fleet_held *held; /* with leased: the lease's record for the beat thread */
    struct hc_fleet_req *next;
};

/* A batch: done runs for every request of it, and then batch_done once, from a fleet
 * thread; a request that waits for another mount's copy may get its done after
 * batch_done (the batch's first answers are all in by then). */
typedef void (*hc_fleet_batch_fn)(void *arg);

struct hc_fleet_stats {
    uint64_t lookups;      /* blocks looked up */
    uint64_t hits, misses; /* misses: not there (or bad) */
    uint64_t bad_values;   /* values there that did not verify */
    uint64_t lease_taken;  /* misses this mount fetched under its own lease */
    uint64_t lease_waits;  /* misses that waited for another mount */
    uint64_t lease_wait_hits, lease_timeouts;
    uint64_t lease_extends; /* waits extended because the holder's fetch moved on */
    uint64_t stores, store_drops, store_errors;
    uint64_t errors; /* failed server calls (timeouts, refused, ...) */
    uint64_t bytes_in, bytes_out;
    uint64_t store_queue_bytes;
    unsigned servers;
    uint64_t server_errors[16]; /* per server, in the order given (first 16) */
    char server_names[16][64];
};

/* Create a fleet over @backend (owned from now on, destroyed with the fleet, also on
 * failure). @return 0 and *out, or -errno (logged). */
int hc_fleet_create(const struct hc_fleet_conf *conf, struct hc_fleet_backend *backend,
                    struct hc_fleet **out);
/* Stop the threads (pending stores are written first, for at most 2 s), free. NULL ok. */
void hc_fleet_destroy(struct hc_fleet *f);

/* Hash @r's identity (r->id, r->idlen) into r->hash: call it for each request before
 * hc_fleet_lookup (the id may go right after). @return 0 or -EINVAL (an id too long). */
int hc_fleet_prepare(struct hc_fleet *f, struct hc_fleet_req *r);
/*
 * Look up @n blocks (@reqs, each filled as above); @batch_done(@arg) after every first
 * answer. Thread safe; never blocks on the servers. @return 0, or -errno (nothing was
 * queued: the caller fetches from the origin itself).
 */
int hc_fleet_lookup(struct hc_fleet *f, struct hc_fleet_req **reqs, unsigned n,
                    hc_fleet_batch_fn batch_done, void *arg);
/* Bytes of a leased request's fetch arrived: its lease stays alive for the waiters (one
 * more period each time the beat thread sees this). Cheap (an atomic add); any thread. */
void hc_fleet_progress(struct hc_fleet *f, struct hc_fleet_req *r);
/*
 * The origin's bytes for a request that got HC_FLEET_FETCH, queued for the store threads
 * (or dropped, counted, when the queue is full); the lease is released once stored. With
 * @release the bytes are lent, not copied: they stay valid until @release(@rarg), which
 * runs exactly once (from here when the block is not queued); without, they are copied.
 */
void hc_fleet_store(struct hc_fleet *f, struct hc_fleet_req *r, const void *data, size_t len,
                    void (*release)(void *), void *rarg);
/* The fetch of a HC_FLEET_FETCH request failed: release its lease, if held. */
void hc_fleet_abandon(struct hc_fleet *f, struct hc_fleet_req *r);

void hc_fleet_get_stats(struct hc_fleet *f, struct hc_fleet_stats *st);

/* Free a backend that no fleet took (NULL is fine). */
void hc_fleet_backend_destroy(struct hc_fleet_backend *b);

/* The memcached backend: @servers is "host[:port]" items separated by '+' (fstab-safe),
 * or "@FILE" naming a file with one server per line. @timeout_ms bounds every server call
 * (connect, send, receive); a server that fails is skipped for @retry_s seconds.
 * @return 0 and *out, or -errno with one log line naming what was wrong. */
int hc_fleet_memcached_create(const char *servers, unsigned timeout_ms, unsigned retry_s,
                              struct hc_fleet_backend **out);

#endif
