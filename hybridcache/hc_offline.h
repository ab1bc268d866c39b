/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hc_offline.h: the disk tier read offline by tools (tierfs-cache inspect, verify, clear,
 * warm): what a device holds, its live entries checked one by one, a wipe, and the sizes
 * a tool plans with. Implemented in disk_offline.c; public, so that tools include no
 * private header of hybridcache.
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
#ifndef TIERFS_HC_OFFLINE_H
#define TIERFS_HC_OFFLINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HC_DISK_LOCK_WAIT_MS 5000u

#define HC_DISK_FORMAT_VERSION 2u  /* 2: per-chunk checksums (partial reads) */
#define HC_DISK_IDENTITY_MAX 1024u /* identity text kept in the header */

struct dev;

/* What the first bytes of a device hold. */
enum hc_disk_kind {
    HC_DISK_KIND_CACHE = 0, /* a tierfs cache of this format version */
    HC_DISK_KIND_EMPTY,     /* all zero: never formatted, or wiped */
    HC_DISK_KIND_UNKNOWN,   /* no tierfs magic: some other data */
    HC_DISK_KIND_CORRUPT,   /* tierfs magic, but the header checksum fails */
    HC_DISK_KIND_VERSION,   /* a tierfs cache of another format version */
    HC_DISK_KIND_LAYOUT,    /* a valid header this device cannot hold (truncated file?) */
};

struct hc_disk_info {
    enum hc_disk_kind kind;
    uint64_t device_size; /* bytes of the device */
    /* from the header: kind CACHE, LAYOUT and VERSION (version only) */
    uint32_t version, block_size, region_size, region_count;
    uint64_t data_off, generation;
    uint32_t identity_len; /* of the full identity; the text may be truncated */
    char identity[HC_DISK_IDENTITY_MAX + 1];
    /* from recovery: kind CACHE only */
    uint32_t regions_used, regions_free;
    uint64_t entries;     /* live entries (what the next open would serve) */
    uint64_t used_bytes;  /* bytes on the device those entries take */
    uint64_t capacity;    /* region_count * region_size */
    uint64_t fill_budget; /* bytes new entries can take without evicting any (free regions
                             beyond the ones the reclaimer keeps free, less their footers) */
};

/* One live entry as hc_disk_verify() found it. Pointers are valid during the callback. */
struct hc_disk_ventry {
    uint32_t region;
    uint32_t offset;  /* bytes from the region start */
    uint64_t dev_off; /* bytes from the device start */
    uint32_t size;    /* bytes on the device (slot-rounded) */
    const void *key;  /* NULL when the entry header is unreadable */
    uint32_t klen;
    uint32_t value_len; /* bytes of value (after decompression) */
    bool compressed;
    int status;      /* 0 ok, -EBADMSG corrupt, -errno read error */
    const char *why; /* NULL when ok, else what failed */
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

/*
 * Device bytes one uncompressed @len-byte value under a @klen-byte key takes in a cache of
 * @block_size-byte blocks: the slot-rounded entry and its summary record (tierfs-cache warm
 * adds these up against hc_disk_info.fill_budget). @return the bytes.
 */
uint64_t hc_disk_block_cost(uint32_t block_size, size_t klen, size_t len);

#endif
