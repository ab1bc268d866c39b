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

/* ---- on-device format (host byte order: the cache never moves between machines) ---- */

#define HC_DISK_FORMAT_VERSION 2u            /* 2: per-chunk checksums (partial reads) */
#define HC_DISK_MAGIC "TIERFSHC"                /* 8 bytes at offset 0 of the device */
#define HC_DISK_ENTRY_MAGIC 0x45434854u         /* "THCE" */
#define HC_DISK_FOOTER_MAGIC 0x46434854u        /* "THCF" */
#define HC_DISK_SLOT 512u                       /* entries start at multiples of this */
#define HC_DISK_IDENTITY_MAX 1024u              /* identity text kept in the header */

/* Device header; the first HC_DISK_HDR_BYTES of the device. */
struct hc_disk_hdr {
    char magic[8];
    uint32_t version;
    uint32_t hdr_crc;                /* crc32c of the header with this field 0 */
    uint32_t block_size;
    uint32_t region_size;
    uint32_t region_count;
    uint32_t identity_len;
    uint64_t data_off;               /* device offset of region 0 */
    uint64_t generation;             /* chosen at format; entries/footers of older formats differ */
    uint64_t identity_hash;          /* cmn_hash64 of the whole identity string */
    char identity[HC_DISK_IDENTITY_MAX]; /* for humans and tools; may be truncated */
};

#define HC_DISK_EF_COMPRESSED 0x1u
#define HC_DISK_EF_TOMBSTONE 0x2u    /* no value: the key was removed (durable remove) */

/*
 * Chunk checksums: an uncompressed value longer than one chunk carries a crc32c per
 * HC_DISK_CHUNK bytes, so a read of a few KiB of a block can read and verify just the
 * chunks it covers instead of the whole block. 4 KiB, not 16: the reads this is for are
 * page-sized (4 KiB random reads through the mount), a 4 KiB direct read costs about half
 * a 16 KiB one on the disks measured (62 us vs ~75-80 us; 1 MiB takes 1.3 ms), and the
 * table (4 bytes a chunk: 1 KiB for a 1 MiB block, 0.1%) still fits with the header and
 * key in the first small read. Values of at most one chunk gain nothing and have no table.
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
    uint32_t hdr_crc;                /* crc32c of this header with hdr_crc 0 (covers data_crc) */
    uint32_t data_crc;               /* crc32c of key + stored value; with a chunk table of
                                        key + the table's used entries (they cover the value) */
    uint32_t flags;                  /* HC_DISK_EF_* */
    uint64_t hash;
    uint64_t seq;                    /* sequence number of the region fill that wrote it */
    uint64_t generation;
    uint32_t klen;
    uint32_t stored_len;             /* bytes on the device */
    uint32_t orig_len;               /* bytes after decompression */
    uint32_t chunk_size;             /* HC_DISK_CHUNK, or 0: no chunk table */
    uint32_t table_len;              /* bytes between key and value (the table's room) */
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
    return hc_disk_entry_size(klen, len > HC_DISK_CHUNK ? hc_disk_table_bytes(block_size) : 0,
                              len);
}

/* One summary record per entry, packed in front of the footer at the end of the region. */
struct hc_disk_sum {
    uint64_t hash;
    uint32_t off_units;              /* entry offset in the region / HC_DISK_SLOT */
    uint32_t size_units;             /* bytes (header + key + stored value) in slots; bit 31 = tombstone */
};
#define HC_DISK_SUM_TOMBSTONE 0x80000000u

/* The last bytes of every written region. */
struct hc_disk_footer {
    uint32_t magic;
    uint32_t footer_crc;             /* crc32c of the footer with this field 0 */
    uint64_t generation;
    uint64_t seq;
    uint32_t nentries;
    uint32_t summary_crc;            /* crc32c of the nentries summary records */
    uint32_t entries_end;            /* bytes of entries from the region start */
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
    bool hit;                        /* read while on the device: reinsert at reclaim */
};

struct hc_dindex;

/* @expect: entries to size the table for (it grows past that). @return 0 / -ENOMEM. */
int hc_dindex_create(uint64_t expect, struct hc_dindex **out);
void hc_dindex_destroy(struct hc_dindex *ix);  /* NULL is fine */
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
/* ---- offline access for tools (tools/tierfs_cache.c) ----
 *
 * These read a device that no hc_disk has open: they never format, never start the
 * reclaimer and write nothing except hc_disk_wipe(). The device stays the caller's (it is
 * neither closed nor unlocked here), so a tool can hold hc_disk_lock() across calls.
 *
 * Locking: hc_disk_open() takes an exclusive advisory lock (flock(2) on the device's fd,
 * so it covers files and block devices, and it dies with the process). A second open of
 * the same device waits up to HC_DISK_LOCK_WAIT_MS for it (a daemon still flushing after
 * an unmount) and then fails with -EBUSY. Devices without an fd (fault wrappers) are not
 * locked. Being advisory, it stops only tierfs processes, not other writers.
 */
#define HC_DISK_LOCK_WAIT_MS 5000u

struct dev;

/* What the first bytes of a device hold. */
enum hc_disk_kind {
    HC_DISK_KIND_CACHE = 0,   /* a tierfs cache of this format version */
    HC_DISK_KIND_EMPTY,       /* all zero: never formatted, or wiped */
    HC_DISK_KIND_UNKNOWN,     /* no tierfs magic: some other data */
    HC_DISK_KIND_CORRUPT,     /* tierfs magic, but the header checksum fails */
    HC_DISK_KIND_VERSION,     /* a tierfs cache of another format version */
    HC_DISK_KIND_LAYOUT,      /* a valid header this device cannot hold (truncated file?) */
};

struct hc_disk_info {
    enum hc_disk_kind kind;
    uint64_t device_size;              /* bytes of the device */
    /* from the header: kind CACHE, LAYOUT and VERSION (version only) */
    uint32_t version, block_size, region_size, region_count;
    uint64_t data_off, generation;
    uint32_t identity_len;             /* of the full identity; the text may be truncated */
    char identity[HC_DISK_IDENTITY_MAX + 1];
    /* from recovery: kind CACHE only */
    uint32_t regions_used, regions_free;
    uint64_t entries;                  /* live entries (what the next open would serve) */
    uint64_t used_bytes;               /* bytes on the device those entries take */
    uint64_t capacity;                 /* region_count * region_size */
};

/* One live entry as hc_disk_verify() found it. Pointers are valid during the callback. */
struct hc_disk_ventry {
    uint32_t region;
    uint32_t offset;                   /* bytes from the region start */
    uint64_t dev_off;                  /* bytes from the device start */
    uint32_t size;                     /* bytes on the device (slot-rounded) */
    const void *key;                   /* NULL when the entry header is unreadable */
    uint32_t klen;
    uint32_t value_len;                /* bytes of value (after decompression) */
    bool compressed;
    int status;                        /* 0 ok, -EBADMSG corrupt, -errno read error */
    const char *why;                   /* NULL when ok, else what failed */
};
typedef void (*hc_disk_verify_fn)(const struct hc_disk_ventry *e, void *arg);

struct hc_disk_verify_stats {
    uint64_t entries, ok, corrupt, read_errors, bytes;
};

/*
 * Advisory lock on @dev (see above), exclusive or shared, waiting up to @wait_ms.
 * Released when the device is closed. @return 0, -EBUSY (held by another open file),
 * -EOPNOTSUPP (the device has no fd) or -errno.
 */
int hc_disk_lock(struct dev *dev, bool exclusive, unsigned wait_ms);
/* Words for @kind ("empty", "unknown data", ...). @return a static string. */
const char *hc_disk_kind_str(enum hc_disk_kind kind);
/*
 * Read @dev's header and, when it is a cache, recover its index to count entries, with IO
 * engine @io_engine (NULL = "uring"). @return 0 and *info (info->kind says whether the
 * device is a cache; the rest of *info is filled as the kind allows), or -errno.
 */
int hc_disk_inspect(struct dev *dev, const char *io_engine, struct hc_disk_info *info);
/*
 * Read every live entry of the cache on @dev, check its header and data checksums and
 * call @fn (may be NULL) for each, in region order. @info (may be NULL) gets what
 * hc_disk_inspect() reports. @return 0 and *st (corruption is counted, not an error),
 * -EMEDIUMTYPE when @dev holds no cache this build reads, or -errno.
 */
int hc_disk_verify(struct dev *dev, const char *io_engine, hc_disk_verify_fn fn, void *arg,
                   struct hc_disk_info *info, struct hc_disk_verify_stats *st);
/*
 * Empty the cache on @dev so the next open starts empty. A cache of this format gets a new
 * header generation (layout and identity stay, every entry stops verifying); a broken
 * tierfs header, or with @force any other data, is zeroed (the next open formats). An
 * empty device is left as it is. @before (may be NULL) gets what was there.
 * @return 0, -EMEDIUMTYPE for data that is not a tierfs cache without @force, or -errno.
 */
int hc_disk_wipe(struct dev *dev, const char *io_engine, bool force, struct hc_disk_info *before);
#ifdef TIERFS_DEBUG
void hc_disk_check_invariants(struct hc_disk *d);
#endif

#endif
