/* SPDX-License-Identifier: Apache-2.0 */
/*
 * disk_i.h: private to the disk tier: the on-device format and the compact in-memory index.
 *
 * The index (disk_index.c) maps a 64-bit key hash to where the entry lives on the device.
 * One slot is 16 bytes: the hash and a packed location word. Open addressing with linear
 * probing and backward-shift deletion (no tombstones), sharded by the low hash bits with
 * one mutex per shard. Slots grow by 1.5x at 80% load, so a full table costs 20-30 bytes
 * per entry including the empty slots.
 */
#ifndef TIERFS_HC_DISK_I_H
#define TIERFS_HC_DISK_I_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <pthread.h>
#include <sys/types.h>

#include "common/log.h"
#include "hybridcache/hc_i.h"
#include "hybridcache/hc_offline.h"
#include "ioengine/ioengine.h"

/* ---- on-device format (host byte order: the cache never moves between machines) ---- */

#define HC_DISK_MAGIC "TIERFSHC"         /* 8 bytes at offset 0 of the device */
#define HC_DISK_ENTRY_MAGIC 0x45434854u  /* "THCE" */
#define HC_DISK_FOOTER_MAGIC 0x46434854u /* "THCF" */
#define HC_DISK_SLOT 512u                /* entries start at multiples of this */

/* Device header; the first HC_DISK_HDR_BYTES of the device. */
struct hc_disk_hdr {
    char magic[8];
    uint32_t version;
    uint32_t hdr_crc; /* crc32c of the header with this field 0 */
    uint32_t block_size;
    uint32_t region_size;
    uint32_t region_count;
    uint32_t identity_len;
    uint64_t data_off;      /* device offset of region 0 */
    uint64_t generation;    /* chosen at format; entries/footers of older formats differ */
    uint64_t identity_hash; /* cmn_hash64 of the whole identity string */
    char identity[HC_DISK_IDENTITY_MAX]; /* for humans and tools; may be truncated */
};

#define HC_DISK_EF_COMPRESSED 0x1u
#define HC_DISK_EF_TOMBSTONE 0x2u /* no value: the key was removed (durable remove) */

/*
 * Chunk checksums: an uncompressed value longer than one chunk carries a crc32c per
 * HC_DISK_CHUNK bytes, so a read of a few KiB of a block can read and verify just the
 * chunks it covers instead of the whole block. 4 KiB, not 16: the reads this is for are
 * page-sized (4 KiB random reads through the mount), a 4 KiB direct read is clearly
 * cheaper than a 16 KiB one (docs/performance.md, "Constants"), and the table (4 bytes a
 * chunk) still fits with the header and key in the first small read. Values of at most
 * one chunk gain nothing and have no table.
 */
#define HC_DISK_CHUNK 4096u

/*
 * Entry header, followed by the key, the chunk table (table_len bytes, 0 without one) and
 * the stored (maybe compressed) value. The table's room is the same for every chunked
 * entry of a cache (room for a whole block, HC_DISK_TABLE_BYTES), so where a chunk lies
 * follows from the key length alone: a partial read reads the header and the chunk at once.
 */
struct hc_disk_ehdr {
    uint32_t magic;
    uint32_t hdr_crc;  /* crc32c of this header with hdr_crc 0 (covers data_crc) */
    uint32_t data_crc; /* crc32c of key + stored value; with a chunk table of
                          key + the table's used entries (they cover the value) */
    uint32_t flags;    /* HC_DISK_EF_* */
    uint64_t hash;
    uint64_t seq; /* sequence number of the region fill that wrote it */
    uint64_t generation;
    uint32_t klen;
    uint32_t stored_len; /* bytes on the device */
    uint32_t orig_len;   /* bytes after decompression */
    uint32_t chunk_size; /* HC_DISK_CHUNK, or 0: no chunk table */
    uint32_t table_len;  /* bytes between key and value (the table's room) */
    uint32_t pad;
};

/* Bytes a chunk table of a cache with @block_size-byte blocks takes: one crc a chunk. */
static inline uint32_t hc_disk_table_bytes(uint32_t block_size)
{
    return (block_size + HC_DISK_CHUNK - 1) / HC_DISK_CHUNK * (uint32_t)sizeof(uint32_t);
}

/* Device bytes (slot-rounded) of an entry with a @klen-byte key, @table_len bytes of chunk
 * table and @stored_len bytes of value. */
static inline uint32_t hc_disk_entry_size(size_t klen, uint32_t table_len, size_t stored_len)
{
    size_t n = sizeof(struct hc_disk_ehdr) + klen + table_len + stored_len;
    return (uint32_t)((n + HC_DISK_SLOT - 1) / HC_DISK_SLOT * HC_DISK_SLOT);
}

/* Device bytes of an uncompressed @len-byte value under a @klen-byte key (tools size a
 * cache with it). */
static inline uint32_t hc_disk_value_size(uint32_t block_size, size_t klen, size_t len)
{
    return hc_disk_entry_size(klen, len > HC_DISK_CHUNK ? hc_disk_table_bytes(block_size) : 0, len);
}

/* One summary record per entry, packed in front of the footer at the end of the region. */
struct hc_disk_sum {
    uint64_t hash;
    uint32_t off_units;  /* entry offset in the region / HC_DISK_SLOT */
    uint32_t size_units; /* bytes (header + key + stored value) in slots; bit 31 = tombstone */
};
#define HC_DISK_SUM_TOMBSTONE 0x80000000u

/* The last bytes of every written region. */
struct hc_disk_footer {
    uint32_t magic;
    uint32_t footer_crc; /* crc32c of the footer with this field 0 */
    uint64_t generation;
    uint64_t seq;
    uint32_t nentries;
    uint32_t summary_crc; /* crc32c of the nentries summary records */
    uint32_t entries_end; /* bytes of entries from the region start */
    uint32_t pad;
};

/* ---- index ---- */

/*
 * A location packed into 64 bits: region (24 bits) | offset in slots (20) | size in
 * slots (19) | hit (1). Limits: 16M regions, regions up to 512 MiB, entries up to 256 MiB.
 */
#define HC_DLOC_REGION_BITS 24
#define HC_DLOC_OFF_BITS 20
#define HC_DLOC_SIZE_BITS 19
struct hc_dloc {
    uint32_t region;
    uint32_t off_units;
    uint32_t size_units;
    bool hit; /* read while on the device: reinsert at reclaim */
};

struct hc_dindex;

/* @expect: entries to size the table for (it grows past that). @return 0 / -ENOMEM. */
int hc_dindex_create(uint64_t expect, struct hc_dindex **out);
void hc_dindex_destroy(struct hc_dindex *ix); /* NULL is fine */
/*
 * Insert or replace @hash -> @loc. @old (may be NULL) receives the replaced location.
 * @return 1 replaced, 0 inserted, -ENOMEM (the index is unchanged). Thread safe.
 */
int hc_dindex_put(struct hc_dindex *ix, uint64_t hash, const struct hc_dloc *loc,
                  struct hc_dloc *old);
/* Find @hash; with @mark_hit set the hit bit. @return true and *out when present. */
bool hc_dindex_get(struct hc_dindex *ix, uint64_t hash, bool mark_hit, struct hc_dloc *out);
/* Remove @hash; with @match only when it still points at @match's region and offset.
 * @return true when removed, *old (may be NULL) gets what was there. */
bool hc_dindex_remove(struct hc_dindex *ix, uint64_t hash, const struct hc_dloc *match,
                      struct hc_dloc *old);
/* Move @hash from @from to @to only if it still points at @from. @return true if moved. */
bool hc_dindex_move(struct hc_dindex *ix, uint64_t hash, const struct hc_dloc *from,
                    const struct hc_dloc *to);
/* Remove every entry in @region (slow path when its summary is unreadable).
 * @return entries removed; @bytes (may be NULL) gets their size in bytes. */
uint64_t hc_dindex_drop_region(struct hc_dindex *ix, uint32_t region, uint64_t *bytes);
/* Entries and bytes held (slots + shard headers). */
void hc_dindex_usage(struct hc_dindex *ix, uint64_t *entries, uint64_t *bytes);
#ifdef TIERFS_DEBUG
void hc_dindex_check_invariants(struct hc_dindex *ix);
#endif

/* ---- disk tier internals for tests ---- */

struct hc_disk;
/* Where the entry for @hash lies on the device (tests corrupt it on purpose).
 * @return 0 and *dev_off / *len (bytes, slot-rounded), or -ENOENT. */
int hc_disk_debug_locate(struct hc_disk *d, uint64_t hash, uint64_t *dev_off, uint32_t *len);
/* ---- the disk tier's state, shared by disk.c, disk_read.c, disk_format.c and
 * disk_offline.c (the design and the invariants are at the top of disk.c) ---- */

#define HC_DISK_REGION_DEFAULT (16u << 20)
#define HC_DISK_REGION_MAX (512u << 20)  /* offsets are 20 bits of HC_DISK_SLOT */
#define HC_DISK_MIN_REGIONS 3u           /* one filling, one in flight, one to reclaim */
#define HC_DISK_CLEAN_TARGET 2u          /* free regions the reclaimer keeps ready */
#define HC_DISK_TAIL_READ 4096u          /* first read of a region's tail at recovery */
#define HC_DISK_ONE_WRITE_GAP (1u << 20) /* write a sealed region whole if the hole is smaller */
#define HC_DISK_FOOTER_BYTES ((uint32_t)sizeof(struct hc_disk_footer))
#define HC_DISK_SUM_BYTES ((uint32_t)sizeof(struct hc_disk_sum))
#define HC_DISK_EHDR_BYTES ((uint32_t)sizeof(struct hc_disk_ehdr))

enum hc_disk_rstate {
    HC_DISK_R_FREE = 0,
    HC_DISK_R_FILLING,
    HC_DISK_R_FLUSHING,
    HC_DISK_R_CLEAN,
    HC_DISK_R_RECLAIMING,
};

struct hc_disk;

/* A region buffer: being filled (d->cur) or being written. */
struct hc_disk_wbuf {
    struct hc_disk *d;
    uint8_t *buf; /* region_size bytes from ioeng_buf_alloc */
    uint32_t region;
    uint32_t wp;    /* next entry offset; protected by d->lock */
    uint32_t nent;  /* summary records; protected by d->lock */
    int parts_left; /* write requests in flight; protected by d->lock */
    int err;        /* first write error; protected by d->lock */
    struct ioeng_req req[2];
    struct hc_disk_wbuf *next_free; /* d->wfree; protected by d->lock */
};

struct hc_disk_region {
    _Atomic uint64_t seq;    /* fill sequence; 0 = nothing valid; stored under d->lock */
    struct hc_disk_wbuf *wb; /* protected by d->lock */
    uint8_t state;           /* enum hc_disk_rstate; protected by d->lock */
};

/* A lookup that reads the device. */
struct hc_disk_rd {
    struct ioeng_req req;
    struct hc_disk *d;
    struct hc_disk_rd *next; /* pending list; protected by d->lock */
    uint64_t hash, seq;
    struct hc_dloc loc;
    uint32_t skip;         /* entry offset inside the read buffer */
    bool partial;          /* hc_disk_lookup_range: header part + covering chunks */
    uint32_t off, len;     /* partial: the value range asked for */
    uint32_t vskip;        /* partial: where chunk off / HC_DISK_CHUNK is in rbuf */
    uint32_t vhave;        /* partial: bytes readable there */
    uint32_t hhave;        /* partial: bytes of entry readable at skip */
    _Atomic int parts;     /* partial: requests not yet completed */
    _Atomic int err;       /* partial: the first request's error */
    struct ioeng_req req2; /* partial: the chunks when apart from the header */
    void *rbuf;            /* read_buf_len bytes from d->rfree or new; NULL until
                              the read starts */
    void *ubuf;
    size_t cap;
    hc_disk_done_fn done;
    void *arg;
    size_t klen;
    char key[];
};

struct hc_disk_counters {
    _Atomic uint64_t hits, misses, inserts, evictions, reinserts, bytes_read, bytes_written;
    _Atomic uint64_t read_errors, write_errors, checksum_failures, admission_drops;
    _Atomic uint64_t compressed_blocks, compressed_saved_bytes;
    _Atomic uint64_t partial_hits, partial_bytes;
    _Atomic int64_t used;
};

struct hc_disk {
    struct dev *dev;
    struct ioeng *eng;
    struct hc_dindex *ix;
    struct hc_accounting *acct;
    uint32_t block_size, region_size, region_count, align;
    uint32_t max_entry; /* bytes of the largest possible entry, slot aligned */
    uint32_t table_len; /* bytes of a chunk table: hc_disk_table_bytes(block_size) */
    uint32_t wbufs_max;
    uint64_t data_off, generation;
    uint32_t read_bufs_max; /* io_depth: lookup reads (and read buffers) at once */
    uint32_t read_buf_len;  /* bytes of a read buffer: the largest aligned entry read */
    bool compression;
    bool refuse_unknown; /* conf->refuse_unknown */

    pthread_mutex_t lock; /* the region lock: taken before index shard locks */
    pthread_cond_t cond;  /* writes done, regions freed, reads drained, stop */
    struct hc_disk_region *regions;
    uint32_t *fifo;               /* sealed regions, oldest first (ring); d->lock */
    uint32_t fifo_head, fifo_len; /* d->lock */
    uint32_t *free_ids;           /* d->lock */
    uint32_t nfree;               /* d->lock */
    struct hc_disk_wbuf *cur;     /* region being filled; d->lock */
    uint32_t wbufs;               /* region buffers in use (FILLING, FLUSHING); d->lock */
    struct hc_disk_wbuf *wfree;   /* idle region buffers, still charged; d->lock */
    uint32_t nwfree;              /* d->lock; wbufs + nwfree <= wbufs_max */
    uint32_t writes_inflight;     /* sealed regions not yet completed; d->lock */
    uint64_t next_seq;            /* d->lock */
    uint32_t reads_inflight;      /* lookups that own a read buffer; d->lock */
    void **rfree;                 /* idle read buffers (read_bufs_max slots), charged; d->lock */
    uint32_t nrfree;              /* d->lock; reads_inflight + nrfree <= read_bufs_max */
    struct hc_disk_rd *pend_head, *pend_tail; /* lookups waiting for a read slot; d->lock */
    bool stop;                                /* d->lock */
    bool reclaimer_started;
    pthread_t reclaimer;

    struct hc_disk_counters c;
    uint64_t recovered_entries, recovery_ns;
};

extern struct tlog_ratelimit hc_disk_rl; /* disk.c: one budget for the whole tier */

#define HC_DISK_ADD(d, field, n) atomic_fetch_add_explicit(&(d)->c.field, (n), memory_order_relaxed)
#define HC_DISK_GET(d, field) atomic_load_explicit(&(d)->c.field, memory_order_relaxed)

static inline uint64_t hc_disk_region_off(const struct hc_disk *d, uint32_t r)
{
    return d->data_off + (uint64_t)r * d->region_size;
}

static inline void hc_disk_charge(struct hc_disk *d, int64_t bytes)
{
    if (d->acct)
        atomic_fetch_add_explicit(&d->acct->used, (uint64_t)bytes, memory_order_relaxed);
}

/* ---- between the disk tier's files ---- */

/* Chunks of a @len-byte value (0 without a table). */
static inline uint32_t hc_disk_nchunks(uint32_t len)
{
    return (len + HC_DISK_CHUNK - 1) / HC_DISK_CHUNK;
}

/* Summary record @i (append order) of a region whose footer is at region_size - FOOTER. */
static inline uint32_t hc_disk_sum_off(const struct hc_disk *d, uint32_t i)
{
    return d->region_size - HC_DISK_FOOTER_BYTES - (i + 1) * HC_DISK_SUM_BYTES;
}

void *hc_disk_reclaimer(void *arg);
void hc_disk_wbuf_free(struct hc_disk *d, struct hc_disk_wbuf *wb);

/* disk_format.c */
bool hc_disk_chunks_ok(const uint8_t *table, const uint8_t *vc0, uint32_t len, uint32_t c0,
                       uint32_t c1);
bool hc_disk_table_ok(const struct hc_disk *d, const struct hc_disk_ehdr *h);
enum hc_disk_kind hc_disk_hdr_kind(const uint8_t *buf, struct hc_disk_hdr *h);
int hc_disk_entry_verify(const struct hc_disk *d, const uint8_t *p, size_t avail, uint64_t seq,
                         uint64_t hash, const void *key, size_t klen, bool check_data,
                         struct hc_disk_ehdr *h);
int hc_disk_pread_alloc(struct hc_disk *d, uint64_t off, size_t len, uint8_t **out);
int hc_disk_read_summary(struct hc_disk *d, uint32_t r, uint64_t expect_seq,
                         struct hc_disk_sum **sums, uint64_t *seq);
int hc_disk_recover(struct hc_disk *d);
int hc_disk_scan_region(struct hc_disk *d, uint32_t r, struct hc_disk_sum **sums, uint64_t *seq);
ssize_t hc_disk_entry_decode(const uint8_t *p, const struct hc_disk_ehdr *h, void *buf, size_t cap);
uint32_t hc_disk_ehdr_crc(const struct hc_disk_ehdr *h);
uint32_t hc_disk_footer_crc(const struct hc_disk_footer *f);
uint32_t hc_disk_hdr_crc(const struct hc_disk_hdr *h);
uint64_t hc_disk_new_generation(uint64_t old);
void hc_disk_free(struct hc_disk *d);

#ifdef TIERFS_DEBUG
void hc_disk_check_invariants(struct hc_disk *d);
#endif

#endif
