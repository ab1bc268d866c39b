/* SPDX-License-Identifier: Apache-2.0 */
/*
 * disk_offline.c: the disk tier read offline, by tools (tierfs-cache): lock, inspect,
 * verify and wipe a device no hc_disk has open (API in hybridcache/hc_offline.h).
 * They reuse the header, summary and entry checks of disk_format.c.
 */
#include "hybridcache/disk_i.h"
#include "hybridcache/hc_i.h"

#include <errno.h>
#include <fcntl.h>
#include <lz4.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "ioengine/ioengine.h"

int hc_disk_lock(struct dev *dev, bool exclusive, unsigned wait_ms)
{
    int fd = dev && dev->ops->fd ? dev->ops->fd(dev) : -1;
    uint64_t deadline = cmn_now_ms() + wait_ms;
    bool told = false;

    if (fd < 0)
        return -EOPNOTSUPP;
    for (;;) {
        if (flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) == 0)
            return 0;
        if (errno == EINTR)
            continue;
        if (errno != EWOULDBLOCK)
            return -errno;
        if (cmn_now_ms() >= deadline)
            return -EBUSY;
        if (!told)
            TLOG_N("disk cache: the device is in use; waiting up to %u ms for it", wait_ms);
        told = true;
        usleep(50 * 1000);
    }
}

const char *hc_disk_kind_str(enum hc_disk_kind kind)
{
    switch (kind) {
    case HC_DISK_KIND_CACHE:
        return "tierfs cache";
    case HC_DISK_KIND_EMPTY:
        return "empty (all zero)";
    case HC_DISK_KIND_UNKNOWN:
        return "unknown data";
    case HC_DISK_KIND_CORRUPT:
        return "tierfs cache with a corrupt header";
    case HC_DISK_KIND_VERSION:
        return "tierfs cache of another format version";
    case HC_DISK_KIND_LAYOUT:
        return "tierfs cache header that does not fit the device";
    }
    return "?";
}

/* Bytes at the start of @dev that hold the header, rounded to the device's IO size. */
static uint32_t hc_disk_hdr_span(const struct dev *dev)
{
    return CMN_ALIGN_UP((uint32_t)sizeof(struct hc_disk_hdr),
                        CMN_MAX(dev_align(dev), HC_DISK_SLOT));
}

/* Take the layout from header @h. @return true when the device can hold it. */
static bool hc_disk_offline_layout(struct hc_disk *d, const struct hc_disk_hdr *h)
{
    d->block_size = h->block_size;
    d->region_size = h->region_size;
    d->region_count = h->region_count;
    d->data_off = h->data_off;
    d->generation = h->generation;
    if (h->block_size == 0 || h->block_size > HC_BLOCK_SIZE_MAX)
        return false;
    d->table_len = hc_disk_table_bytes(d->block_size);
    d->max_entry = hc_disk_entry_size(HC_KEY_MAX, d->table_len, d->block_size);
    uint64_t need = (uint64_t)d->max_entry + HC_DISK_SUM_BYTES + HC_DISK_FOOTER_BYTES;
    if (d->region_size % d->align || d->region_size % IOENG_BUF_ALIGN || d->region_size < need ||
        d->region_size > HC_DISK_REGION_MAX)
        return false;
    if (d->data_off < sizeof(*h) || d->data_off % d->align || d->region_count == 0 ||
        d->region_count >= (1u << HC_DLOC_REGION_BITS))
        return false;
    return d->data_off + (uint64_t)d->region_count * d->region_size <= dev_size(d->dev);
}

/*
 * Read @dev's header into *info and, for a cache, build a disk tier with its layout and
 * recover the index; no format, no reclaimer, @dev stays the caller's. @hdr (may be NULL)
 * gets the header span as read (ioeng_buf_alloc'd, the caller frees it).
 * @return 0 and *out (NULL unless info->kind is CACHE), or -errno.
 */
static int hc_disk_offline_open(struct dev *dev, const char *io_engine, struct hc_disk_info *info,
                                struct hc_disk **out, uint8_t **hdr)
{
    struct ioeng_conf ec = {.queue_depth = 4};
    struct hc_disk_hdr h;
    uint8_t *buf = NULL;
    struct hc_disk *d;
    int rc;

    memset(info, 0, sizeof(*info));
    *out = NULL;
    if (hdr)
        *hdr = NULL;
    if (!dev)
        return -EINVAL;
    info->device_size = dev_size(dev);
    d = calloc(1, sizeof(*d));
    if (!d)
        return -ENOMEM;
    pthread_mutex_init(&d->lock, NULL);
    pthread_cond_init(&d->cond, NULL);
    d->dev = dev;
    d->align = CMN_MAX(dev_align(dev), HC_DISK_SLOT);
    rc = ioeng_create(io_engine ? io_engine : "uring", dev, &ec, &d->eng);
    if (rc < 0)
        goto fail;
    if (dev_size(dev) < hc_disk_hdr_span(dev)) {
        info->kind = HC_DISK_KIND_UNKNOWN; /* too small to hold a header */
        hc_disk_free(d);
        return 0;
    }
    rc = hc_disk_pread_alloc(d, 0, hc_disk_hdr_span(dev), &buf);
    if (rc < 0)
        goto fail;
    info->kind = hc_disk_hdr_kind(buf, &h);
    if (info->kind == HC_DISK_KIND_VERSION)
        info->version = h.version;
    if (info->kind == HC_DISK_KIND_CACHE) {
        info->version = h.version;
        info->block_size = h.block_size;
        info->region_size = h.region_size;
        info->region_count = h.region_count;
        info->data_off = h.data_off;
        info->generation = h.generation;
        info->identity_len = h.identity_len;
        memcpy(info->identity, h.identity, CMN_MIN(h.identity_len, HC_DISK_IDENTITY_MAX));
        info->capacity = (uint64_t)h.region_count * h.region_size;
        if (!hc_disk_offline_layout(d, &h))
            info->kind = HC_DISK_KIND_LAYOUT;
    }
    if (hdr) {
        *hdr = buf;
        buf = NULL;
    }
    ioeng_buf_free(buf);
    if (info->kind != HC_DISK_KIND_CACHE) {
        hc_disk_free(d);
        return 0;
    }

    d->regions = calloc(d->region_count, sizeof(*d->regions));
    d->fifo = calloc(d->region_count, sizeof(*d->fifo));
    d->free_ids = calloc(d->region_count, sizeof(*d->free_ids));
    rc = -ENOMEM;
    if (!d->regions || !d->fifo || !d->free_ids)
        goto fail_hdr;
    rc = hc_dindex_create((uint64_t)d->region_count * (d->region_size / d->max_entry), &d->ix);
    if (rc < 0)
        goto fail_hdr;
    rc = hc_disk_recover(d);
    if (rc < 0)
        goto fail_hdr;
    uint64_t ix_bytes;
    int64_t used = HC_DISK_GET(d, used);
    hc_dindex_usage(d->ix, &info->entries, &ix_bytes);
    info->used_bytes = used > 0 ? (uint64_t)used : 0;
    info->regions_used = d->fifo_len;
    info->regions_free = d->nfree;
    /* New entries go to free regions only; taking one that leaves fewer than the reclaimer
     * keeps free makes it evict the oldest region. */
    if (d->nfree > HC_DISK_CLEAN_TARGET)
        info->fill_budget =
            (uint64_t)(d->nfree - HC_DISK_CLEAN_TARGET) * (d->region_size - HC_DISK_FOOTER_BYTES);
    *out = d;
    return 0;

fail_hdr:
    if (hdr) {
        ioeng_buf_free(*hdr);
        *hdr = NULL;
    }
fail:
    hc_disk_free(d);
    return rc;
}

int hc_disk_inspect(struct dev *dev, const char *io_engine, struct hc_disk_info *info)
{
    struct hc_disk *d;
    int rc;

    if (!info)
        return -EINVAL;
    rc = hc_disk_offline_open(dev, io_engine, info, &d, NULL);
    hc_disk_free(d);
    return rc;
}

/* Read and check the live entry of summary record @s in region @r (fill @seq) into *ve;
 * call @fn with it. */
static void hc_disk_verify_entry(struct hc_disk *d, uint32_t r, uint64_t seq,
                                 const struct hc_disk_sum *s, hc_disk_verify_fn fn, void *arg,
                                 struct hc_disk_verify_stats *st)
{
    uint64_t off = hc_disk_region_off(d, r) + (uint64_t)s->off_units * HC_DISK_SLOT;
    uint32_t size = (s->size_units & ~HC_DISK_SUM_TOMBSTONE) * HC_DISK_SLOT;
    uint64_t start = off & ~(uint64_t)(d->align - 1);
    uint64_t end = CMN_ALIGN_UP(off + size, (uint64_t)d->align);
    struct hc_disk_ventry ve = {
        .region = r, .offset = s->off_units * HC_DISK_SLOT, .dev_off = off, .size = size};
    struct hc_disk_ehdr h;
    uint8_t *buf = NULL;
    int rc = hc_disk_pread_alloc(d, start, end - start, &buf);

    if (rc < 0) {
        ve.status = rc;
        ve.why = "read error";
        goto out;
    }
    const uint8_t *p = buf + (off - start);
    size_t avail = end - off;
    /* As reclaim does: the key comes from the entry; its length is checked before use. */
    memcpy(&h, p, sizeof(h));
    if (h.klen > HC_KEY_MAX || HC_DISK_EHDR_BYTES + (size_t)h.klen > avail)
        rc = -EBADMSG;
    else
        rc = hc_disk_entry_verify(d, p, avail, seq, s->hash, p + HC_DISK_EHDR_BYTES, h.klen, false,
                                  &h);
    if (rc < 0) {
        ve.status = -EBADMSG;
        ve.why =
            rc == -ENOENT ? "entry of another fill (torn region write)" : "entry header corrupt";
        goto out;
    }
    ve.key = p + HC_DISK_EHDR_BYTES;
    ve.klen = h.klen;
    ve.value_len = h.orig_len;
    ve.compressed = (h.flags & HC_DISK_EF_COMPRESSED) != 0;
    rc = hc_disk_entry_verify(d, p, avail, seq, s->hash, ve.key, h.klen, true, &h);
    if (rc < 0) {
        ve.status = -EBADMSG;
        ve.why = "data checksum mismatch";
    }
out:
    st->entries++;
    st->bytes += size;
    if (ve.status == 0)
        st->ok++;
    else if (ve.status == -EBADMSG)
        st->corrupt++;
    else
        st->read_errors++;
    if (fn)
        fn(&ve, arg);
    ioeng_buf_free(buf);
}

int hc_disk_verify(struct dev *dev, const char *io_engine, hc_disk_verify_fn fn, void *arg,
                   struct hc_disk_info *info, struct hc_disk_verify_stats *st)
{
    struct hc_disk_info inf;
    struct hc_disk *d;
    int rc;

    if (!st)
        return -EINVAL;
    memset(st, 0, sizeof(*st));
    rc = hc_disk_offline_open(dev, io_engine, &inf, &d, NULL);
    if (info)
        *info = inf;
    if (rc < 0)
        return rc;
    if (!d)
        return -EMEDIUMTYPE;
    for (uint32_t r = 0; r < d->region_count && rc == 0; r++) {
        uint64_t seq = atomic_load_explicit(&d->regions[r].seq, memory_order_relaxed), got = 0;
        struct hc_disk_sum *sums = NULL;
        if (d->regions[r].state != HC_DISK_R_CLEAN)
            continue;
        /* The records recovery used: the summary, or a header scan when it is torn. */
        int n = hc_disk_read_summary(d, r, seq, &sums, &got);
        if (n < 0 && n != -ENOMEM)
            n = hc_disk_scan_region(d, r, &sums, &got);
        if (n < 0)
            rc = n;
        for (int i = 0; i < n; i++) {
            const struct hc_disk_sum *s = &sums[i];
            struct hc_dloc cur;
            if ((s->size_units & HC_DISK_SUM_TOMBSTONE) ||
                !hc_dindex_get(d->ix, s->hash, false, &cur) || cur.region != r ||
                cur.off_units != s->off_units)
                continue; /* a tombstone, or replaced by a later copy: never served */
            hc_disk_verify_entry(d, r, seq, s, fn, arg, st);
        }
        free(sums);
    }
    hc_disk_free(d);
    return rc;
}

int hc_disk_wipe(struct dev *dev, const char *io_engine, bool force, struct hc_disk_info *before)
{
    struct hc_disk_info inf;
    struct hc_disk *d;
    uint8_t *hdr = NULL;
    int rc;

    rc = hc_disk_offline_open(dev, io_engine, &inf, &d, &hdr);
    if (before)
        *before = inf;
    if (rc < 0)
        return rc;
    if (inf.kind == HC_DISK_KIND_EMPTY || (inf.kind == HC_DISK_KIND_UNKNOWN && !force) || !hdr) {
        rc = inf.kind == HC_DISK_KIND_EMPTY ? 0 : -EMEDIUMTYPE;
        goto out;
    }
    uint32_t span = hc_disk_hdr_span(dev);
    if (d) {
        /* Same layout and identity, new generation: every footer and entry stops matching. */
        struct hc_disk_hdr h;
        memcpy(&h, hdr, sizeof(h));
        h.generation = hc_disk_new_generation(h.generation);
        h.hdr_crc = hc_disk_hdr_crc(&h);
        memcpy(hdr, &h, sizeof(h));
    } else {
        memset(hdr, 0, span);
    }
    ssize_t n = dev_pwrite(dev, hdr, span, 0);
    rc = n < 0 ? (int)n : n != (ssize_t)span ? -EIO : dev_flush(dev);
out:
    ioeng_buf_free(hdr);
    hc_disk_free(d);
    return rc;
}

uint64_t hc_disk_block_cost(uint32_t block_size, size_t klen, size_t len)
{
    return hc_disk_value_size(block_size, klen, len) + HC_DISK_SUM_BYTES;
}
