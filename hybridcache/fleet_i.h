/* SPDX-License-Identifier: Apache-2.0 */
/* fleet_i.h: the fleet tier's backend vtable and value format (fleet.c, fleet_fmt.c,
 * fleet_mc.c and their tests). */
#ifndef TIERFS_HC_FLEET_I_H
#define TIERFS_HC_FLEET_I_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

#endif
