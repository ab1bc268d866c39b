/* SPDX-License-Identifier: Apache-2.0 */
/* fleet_i.h: the fleet tier's backend vtable, value format and state (fleet.c,
 * fleet_store.c, fleet_fmt.c, fleet_mc.c and their tests). */
#ifndef TIERFS_HC_FLEET_I_H
#define TIERFS_HC_FLEET_I_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/log.h"

#include "hybridcache/fleet.h"

/* ---- the backend: values by key on some servers ---- */

struct hc_fleet_conn; /* one thread's connection */

/* A found value of a multi-get: key @i of the call, @v/@len valid during the call. */
typedef void (*hc_fleet_found_fn)(void *arg, unsigned i, const void *v, size_t len);

#define HC_FLEET_BACKEND_V1 1
struct hc_fleet_backend_ops {
    unsigned version; /* HC_FLEET_BACKEND_V1 */
    const char *name;
    /* A connection for one thread; @timeout_ms bounds each of its calls (0: the
     * backend's own). @return 0 and *out, or -errno. */
    int (*open)(struct hc_fleet_backend *b, unsigned timeout_ms, struct hc_fleet_conn **out);
    void (*close)(struct hc_fleet_conn *c);
    /* Fetch @n keys; @found for each one there. @return 0 (absent keys are no error), or
     * -errno when a server failed (keys it held count as absent; @found ran for others). */
    int (*mget)(struct hc_fleet_conn *c, const char *const *keys, const size_t *klens, unsigned n,
                hc_fleet_found_fn found, void *arg);
    /* Store only if absent. @return 0 stored, -EEXIST there already, or -errno. */
    int (*add)(struct hc_fleet_conn *c, const char *key, size_t klen, const void *v, size_t len,
               uint32_t ttl_s);
    /* @return 0 stored, or -errno (-E2BIG: larger than the servers' item limit). */
    int (*set)(struct hc_fleet_conn *c, const char *key, size_t klen, const void *v, size_t len,
               uint32_t ttl_s);
    /* @return 0, -ENOENT, or -errno. */
    int (*del)(struct hc_fleet_conn *c, const char *key, size_t klen);
    /* Optional: the index (in the list given) of the server holding @key, for per-server
     * error counts; -1 unknown. */
    int (*server_of)(struct hc_fleet_conn *c, const char *key, size_t klen);
    void (*destroy)(struct hc_fleet_backend *b);
};

/* Base of every backend (embedded first). */
struct hc_fleet_backend {
    const struct hc_fleet_backend_ops *ops;
    unsigned nservers;
    char server_names[16][64]; /* the first 16, for the stats */
};

/* ---- keys and values ---- */

#define HC_FLEET_MAGIC 0x31424654u /* "TFB1" little-endian */
#define HC_FLEET_VERSION 1
#define HC_FLEET_HDR 64u      /* header without the MAC */
#define HC_FLEET_MAC 32u      /* HMAC-SHA256 */
#define HC_FLEET_FLAG_MAC 0x1 /* the value carries a MAC */
#define HC_FLEET_KEY_MAX 64   /* "tierfs1:" + 40 hex + ":" + piece or "L" */
#define HC_FLEET_PIECES_MAX 1024

/* SHA-256 of a block's identity: the id bytes and the piece size (a mount with another
 * piece size never sees these values). */
void hc_fleet_hash(const void *id, size_t idlen, uint32_t piece_size, uint8_t out[32]);
/* The memcached key of piece @piece (or of the lease, @piece < 0) of the block hashed
 * @hash into @out (HC_FLEET_KEY_MAX). @return its length. */
size_t hc_fleet_key(const uint8_t hash[32], int piece, char *out);
/* Pieces of a block of @len bytes: at least 1. */
unsigned hc_fleet_pieces(size_t len, uint32_t piece_size);

/*
 * Build the value of piece @piece of @block (@len bytes) into @out (capacity at least
 * HC_FLEET_HDR + HC_FLEET_MAC + piece bytes); @block_crc is cmn_crc32c of the block;
 * with @secret the value carries an HMAC. @return the value's length, or -EINVAL.
 */
ssize_t hc_fleet_encode(const uint8_t hash[32], const void *block, size_t len, uint32_t block_crc,
                        uint32_t piece_size, unsigned piece, const uint8_t *secret,
                        size_t secret_len, void *out, size_t cap);

/* What is wrong with a value (HC_FLEET_OK: nothing). */
enum hc_fleet_verdict {
    HC_FLEET_OK = 0,
    HC_FLEET_BAD_SHORT,    /* shorter than its header / than it says */
    HC_FLEET_BAD_MAGIC,    /* not a tierfs value, or another format version */
    HC_FLEET_BAD_ID,       /* another block's (a hash collision of the key) */
    HC_FLEET_BAD_PLACE,    /* piece index, count, offset or length wrong for this block */
    HC_FLEET_BAD_CRC,      /* the piece's bytes do not match its checksum */
    HC_FLEET_BAD_UNSIGNED, /* a secret is set and the value carries no MAC */
    HC_FLEET_BAD_MAC,      /* the MAC does not verify */
};
const char *hc_fleet_verdict_str(enum hc_fleet_verdict v);

/*
 * Check piece @piece of the block @hash of @len bytes and copy its bytes to their place
 * in @block. *block_crc gets the block CRC the piece carries (all pieces must agree).
 * @return HC_FLEET_OK or what is wrong (nothing is copied then).
 */
enum hc_fleet_verdict hc_fleet_decode(const uint8_t hash[32], size_t len, uint32_t piece_size,
                                      unsigned piece, const uint8_t *secret, size_t secret_len,
                                      const void *v, size_t vlen, void *block, uint32_t *block_crc);

/* ---- the fleet's state, shared by fleet.c (lookups, waits) and fleet_store.c (stores,
 * lease beats) ---- */

struct hc_fleet_batch {
    struct hc_fleet_req **reqs;
    unsigned n;
    hc_fleet_batch_fn done;
    void *arg;
    struct hc_fleet_batch *next;
};

/* A lease this mount holds, from the answer that gave it until its release. */
struct hc_fleet_held {
    struct hc_fleet_held *next, **pprev; /* f->held; protected by beat_lock */
    uint8_t hash[32];
    uint64_t progress; /* atomic: bumped by hc_fleet_progress and when queued */
    bool queued;       /* atomic: in the store queue (it moves while the stores do) */
    uint64_t beaten;   /* progress at the last rewrite; beat thread only */
    uint64_t stores_seen;
    uint64_t beats; /* the rewritten value's counter; beat thread only */
};

/* A block to store (len > 0, or only release the lease). */
struct hc_fleet_job {
    struct hc_fleet_job *next;
    uint8_t hash[32];
    bool leased;
    struct hc_fleet_held *held;
    size_t len;
    const uint8_t *bytes;    /* data, or lent bytes */
    void (*release)(void *); /* lent: give them back */
    void *rarg;
    uint8_t data[];
};

#define HC_FLEET_STORE_TIMEOUT_MS 2000

#define HC_FLEET_CTR(f, name) __atomic_add_fetch(&(f)->st.name, 1, __ATOMIC_RELAXED)
#define HC_FLEET_ADD(f, name, v) __atomic_add_fetch(&(f)->st.name, (v), __ATOMIC_RELAXED)

struct hc_fleet {
    struct hc_fleet_conf conf;
    uint8_t *secret;
    struct hc_fleet_backend *be;
    pthread_mutex_t lock;
    pthread_cond_t work;  /* batches queued, or stop */
    pthread_cond_t waitc; /* wait list non-empty, or stop */
    pthread_cond_t storec;
    pthread_cond_t beatc;                     /* stop */
    struct hc_fleet_batch *bq_head, *bq_tail; /* protected by lock */
    struct hc_fleet_req *waiting;             /* protected by lock */
    struct hc_fleet_job *sq_head, *sq_tail;   /* protected by lock */
    uint64_t sq_bytes;                        /* protected by lock */
    bool stop;                                /* no new work; the lookers end; protected by lock */
    bool stop_poll; /* the lookers ended: the poller ends; protected by lock */
    pthread_t *lookers;
    unsigned nlookers;
    pthread_t poller, beater;
    bool poller_up, beater_up;
    pthread_t *storers;
    unsigned nstorers;
    pthread_mutex_t beat_lock;
    struct hc_fleet_held *held; /* protected by beat_lock */
    uint64_t stores_done;       /* atomic: jobs the store threads finished */
    struct hc_fleet_stats st;   /* counters: atomic */
    struct tlog_ratelimit rl_bad, rl_err;
    char lease_val[64];
};

/* Count a failed server call (per server when the backend says which), logged at most once
 * a minute. */
void hc_fleet_error(struct hc_fleet *f, struct hc_fleet_conn *c, const char *key, size_t klen,
                    int rc, const char *what);
/* A thread's connection (@timeout_ms: 0 for the mount's), or NULL. */
struct hc_fleet_conn *hc_fleet_conn_open(struct hc_fleet *f, unsigned timeout_ms);
/* A lease of @r's was taken: list it for the beat thread (r->held). */
void hc_fleet_hold(struct hc_fleet *f, struct hc_fleet_req *r);
/* The lease of @h is being released: no rewrite of it may follow. NULL is fine. */
void hc_fleet_unhold(struct hc_fleet *f, struct hc_fleet_held *h);
/* Give back @j's lent bytes, drop its lease record (if still there), free it. */
void hc_fleet_job_free(struct hc_fleet *f, struct hc_fleet_job *j);
/* The store threads' and the beat thread's loops (pthread start routines; arg: the fleet). */
void *hc_fleet_store_loop(void *arg);
void *hc_fleet_beat_loop(void *arg);

#endif
