/* SPDX-License-Identifier: Apache-2.0 */
/*
 * disk_format.c: the disk tier's on-device records, region summaries, header, format,
 * recovery and lifecycle (open, layout, close).
 *
 * Records: every check an entry, footer or header passes before its bytes are trusted
 * (shared by lookups, partial reads, reclaim, recovery and the offline tools). Recovery
 * reads each region's tail, falls back to a header scan, and replays regions in sequence
 * order; see disk.c for the whole design and its invariants.
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

/* ---- on-device records ---- */

uint32_t hc_disk_ehdr_crc(const struct hc_disk_ehdr *h)
{
    struct hc_disk_ehdr t = *h;
    t.hdr_crc = 0;
    return cmn_crc32c(0, &t, sizeof(t));
}

uint32_t hc_disk_footer_crc(const struct hc_disk_footer *f)
{
    struct hc_disk_footer t = *f;
    t.footer_crc = 0;
    return cmn_crc32c(0, &t, sizeof(t));
}

uint32_t hc_disk_hdr_crc(const struct hc_disk_hdr *h)
{
    struct hc_disk_hdr t = *h;
    t.hdr_crc = 0;
    return cmn_crc32c(0, &t, sizeof(t));
}

/* Is @h's chunk table what this cache writes: none, or HC_DISK_CHUNK-byte chunks with the
 * cache's table room, for an uncompressed value of more than one chunk? */
bool hc_disk_table_ok(const struct hc_disk *d, const struct hc_disk_ehdr *h)
{
    if (!h->chunk_size)
        return h->table_len == 0;
    return h->chunk_size == HC_DISK_CHUNK && h->table_len == d->table_len &&
           !(h->flags & HC_DISK_EF_COMPRESSED) && h->stored_len > HC_DISK_CHUNK &&
           h->orig_len == h->stored_len;
}

/* Do chunks [@c0, @c1) of a @len-byte value, read to @vc0 (chunk c0's first byte), match
 * the crcs in @table? */
bool hc_disk_chunks_ok(const uint8_t *table, const uint8_t *vc0, uint32_t len, uint32_t c0,
                       uint32_t c1)
{
    uint32_t got[48]; /* a batch: a multiple of cmn_crc32c_chunks' three chains */
    for (uint32_t i = c0; i < c1;) {
        uint32_t nb = CMN_MIN((uint32_t)CMN_ARRAY_SIZE(got), c1 - i);
        size_t bytes = CMN_MIN((size_t)nb * HC_DISK_CHUNK, (size_t)len - (size_t)i * HC_DISK_CHUNK);
        cmn_crc32c_chunks(vc0 + (size_t)(i - c0) * HC_DISK_CHUNK, bytes, HC_DISK_CHUNK, got);
        if (memcmp(got, table + (size_t)i * sizeof(got[0]), nb * sizeof(got[0])) != 0)
            return false;
        i += nb;
    }
    return true;
}

/* Data checksum of the entry at @p with a verified header @h: key and value, or key and
 * chunk table and every chunk. (A whole-value read checks every chunk: one pass over the
 * value either way, and a chunk the partial path would reject is never served whole.) */
static bool hc_disk_data_ok(const uint8_t *p, const struct hc_disk_ehdr *h)
{
    const uint8_t *k = p + HC_DISK_EHDR_BYTES;
    if (!h->chunk_size)
        return cmn_crc32c(0, k, (size_t)h->klen + h->stored_len) == h->data_crc;
    uint32_t n = hc_disk_nchunks(h->stored_len);
    if (cmn_crc32c(0, k, (size_t)h->klen + n * sizeof(uint32_t)) != h->data_crc)
        return false;
    return hc_disk_chunks_ok(k + h->klen, k + h->klen + h->table_len, h->stored_len, 0, n);
}

/*
 * Check the entry at @p (@avail bytes readable) against the fill @seq and @hash/@key.
 * With @check_data the data checksum too (the bytes came from the device).
 * @return 0 and *h; -ENOENT for another key or another fill (a race with reclaim, or an
 * old format); -EBADMSG when the bytes are corrupt.
 */
int hc_disk_entry_verify(const struct hc_disk *d, const uint8_t *p, size_t avail, uint64_t seq,
                         uint64_t hash, const void *key, size_t klen, bool check_data,
                         struct hc_disk_ehdr *h)
{
    if (avail < HC_DISK_EHDR_BYTES)
        return -EBADMSG;
    memcpy(h, p, sizeof(*h));
    if (h->magic != HC_DISK_ENTRY_MAGIC || h->hdr_crc != hc_disk_ehdr_crc(h))
        return -EBADMSG;
    /* A well-formed header of another fill is stale data, not corruption. */
    if (h->generation != d->generation || h->seq != seq || h->hash != hash || h->klen != klen)
        return -ENOENT;
    if ((h->flags & HC_DISK_EF_TOMBSTONE) || h->orig_len > d->block_size ||
        h->stored_len > d->block_size || !hc_disk_table_ok(d, h) ||
        HC_DISK_EHDR_BYTES + (size_t)klen + h->table_len + h->stored_len > avail)
        return -EBADMSG;
    if (check_data && !hc_disk_data_ok(p, h))
        return -EBADMSG;
    if (memcmp(p + HC_DISK_EHDR_BYTES, key, klen) != 0)
        return -ENOENT; /* a 64-bit hash collision */
    return 0;
}

/* Copy or decompress the verified entry at @p into @buf. @return value bytes or -errno. */
ssize_t hc_disk_entry_decode(const uint8_t *p, const struct hc_disk_ehdr *h, void *buf, size_t cap)
{
    const uint8_t *v = p + HC_DISK_EHDR_BYTES + h->klen + h->table_len;
    if (h->orig_len > cap)
        return -ENOBUFS;
    if (!(h->flags & HC_DISK_EF_COMPRESSED)) {
        memcpy(buf, v, h->stored_len);
        return h->stored_len;
    }
    int n = LZ4_decompress_safe((const char *)v, buf, (int)h->stored_len, (int)cap);
    return n == (int)h->orig_len ? n : -EBADMSG;
}

/* ---- summaries (recovery and reclaim) ---- */

/* Synchronous aligned read of [@off, @off + @len) into a new buffer (*@out, the caller
 * frees it with ioeng_buf_free). @return 0 or -errno (then nothing is allocated). */
int hc_disk_pread_alloc(struct hc_disk *d, uint64_t off, size_t len, uint8_t **out)
{
    uint8_t *buf = ioeng_buf_alloc(len);
    *out = NULL;
    if (!buf)
        return -ENOMEM;
    ssize_t n = ioeng_rw_sync(d->eng, IOENG_READ, buf, len, off);
    if (n < 0) {
        ioeng_buf_free(buf);
        return (int)n;
    }
    *out = buf;
    return 0;
}

/*
 * Read and verify region @r's footer and summary; @expect_seq 0 accepts any fill.
 * @return the number of records and *sums (malloc'd, append order; NULL when 0) and *seq,
 * -EBADMSG when the tail is missing or does not verify, or -errno from the device.
 */
int hc_disk_read_summary(struct hc_disk *d, uint32_t r, uint64_t expect_seq,
                         struct hc_disk_sum **sums, uint64_t *seq)
{
    uint64_t base = hc_disk_region_off(d, r);
    uint32_t tail = CMN_MAX(HC_DISK_TAIL_READ, d->align);
    struct hc_disk_footer f;
    uint8_t *buf = NULL;
    ssize_t n;
    int rc = -EBADMSG;

    *sums = NULL;
    n = hc_disk_pread_alloc(d, base + d->region_size - tail, tail, &buf);
    if (n < 0)
        return (int)n;
    memcpy(&f, buf + tail - HC_DISK_FOOTER_BYTES, sizeof(f));
    if (f.magic != HC_DISK_FOOTER_MAGIC || f.footer_crc != hc_disk_footer_crc(&f) ||
        f.generation != d->generation || f.seq == 0 || (expect_seq && f.seq != expect_seq))
        goto out_buf;
    uint64_t sum_bytes = (uint64_t)f.nentries * HC_DISK_SUM_BYTES;
    if (f.entries_end > d->region_size ||
        (uint64_t)f.entries_end + sum_bytes + HC_DISK_FOOTER_BYTES > d->region_size)
        goto out_buf;
    if (sum_bytes + HC_DISK_FOOTER_BYTES > tail) {
        /* Large summary: read the whole tail that holds it. */
        ioeng_buf_free(buf);
        tail = (uint32_t)CMN_ALIGN_UP(sum_bytes + HC_DISK_FOOTER_BYTES, (uint64_t)d->align);
        n = hc_disk_pread_alloc(d, base + d->region_size - tail, tail, &buf);
        if (n < 0)
            return (int)n;
    }
    const uint8_t *sp = buf + tail - HC_DISK_FOOTER_BYTES - sum_bytes;
    if (cmn_crc32c(0, sp, sum_bytes) != f.summary_crc)
        goto out_buf;
    if (f.nentries) {
        *sums = malloc(sum_bytes);
        if (!*sums) {
            rc = -ENOMEM;
            goto out_buf;
        }
    }
    uint32_t max_units = d->max_entry / HC_DISK_SLOT;
    for (uint32_t i = 0; i < f.nentries; i++) {
        struct hc_disk_sum s;
        memcpy(&s, sp + sum_bytes - (i + 1ull) * HC_DISK_SUM_BYTES, sizeof(s));
        uint32_t units = s.size_units & ~HC_DISK_SUM_TOMBSTONE;
        if (units == 0 || units > max_units ||
            ((uint64_t)s.off_units + units) * HC_DISK_SLOT > f.entries_end) {
            free(*sums);
            *sums = NULL;
            goto out_buf;
        }
        (*sums)[i] = s;
    }
    *seq = f.seq;
    rc = (int)f.nentries;
out_buf:
    ioeng_buf_free(buf);
    return rc;
}

/*
 * Fallback when a region's tail does not verify (the process died while writing it):
 * walk the entry headers from the start while they verify and share one fill sequence.
 * Data checksums are left to read time. @return records found (*sums malloc'd) or -errno.
 */
int hc_disk_scan_region(struct hc_disk *d, uint32_t r, struct hc_disk_sum **sums, uint64_t *seq)
{
    uint64_t base = hc_disk_region_off(d, r);
    uint32_t rd_len = CMN_MAX(d->align, 4096u), cap = 0, n = 0, off = 0;
    uint8_t *buf = ioeng_buf_alloc(rd_len);
    uint64_t fill = 0;

    *sums = NULL;
    if (!buf)
        return -ENOMEM;
    while (off + HC_DISK_EHDR_BYTES + HC_DISK_FOOTER_BYTES <= d->region_size) {
        struct hc_disk_ehdr h;
        uint64_t at = (base + off) & ~(uint64_t)(d->align - 1);
        uint32_t skip = (uint32_t)(base + off - at);
        uint32_t len = CMN_MIN(rd_len, (uint32_t)(base + d->region_size - at));
        if (skip + HC_DISK_EHDR_BYTES > len || ioeng_rw_sync(d->eng, IOENG_READ, buf, len, at) < 0)
            break;
        memcpy(&h, buf + skip, sizeof(h));
        if (h.magic != HC_DISK_ENTRY_MAGIC || h.hdr_crc != hc_disk_ehdr_crc(&h) ||
            h.generation != d->generation || h.seq == 0 || (fill && h.seq != fill) ||
            h.klen > HC_KEY_MAX || h.stored_len > d->block_size || !hc_disk_table_ok(d, &h))
            break;
        uint32_t size = hc_disk_entry_size(h.klen, h.table_len, h.stored_len);
        if ((uint64_t)off + size + HC_DISK_FOOTER_BYTES > d->region_size)
            break;
        fill = h.seq;
        if (n == cap) {
            uint32_t ncap = cap ? cap * 2 : 16;
            struct hc_disk_sum *ns = realloc(*sums, ncap * sizeof(*ns));
            if (!ns)
                break;
            *sums = ns;
            cap = ncap;
        }
        (*sums)[n].hash = h.hash;
        (*sums)[n].off_units = off / HC_DISK_SLOT;
        (*sums)[n].size_units =
            size / HC_DISK_SLOT | ((h.flags & HC_DISK_EF_TOMBSTONE) ? HC_DISK_SUM_TOMBSTONE : 0);
        n++;
        off += size;
    }
    ioeng_buf_free(buf);
    *seq = fill;
    return (int)n;
}

/* ---- header, format, recovery ---- */

/* A random generation, never 0 and never @old. */
uint64_t hc_disk_new_generation(uint64_t old)
{
    uint64_t g;
    do {
        uint64_t st = cmn_wall_ns() ^ ((uint64_t)getpid() << 32) ^ cmn_now_ns();
        g = cmn_rand64(&(uint64_t){st ? st : 1});
    } while (g == 0 || g == old);
    return g;
}

/* Write a fresh header with a new generation: older entries and footers stop verifying. */
static int hc_disk_format(struct hc_disk *d, const char *identity, uint64_t old_generation)
{
    uint8_t *buf = ioeng_buf_alloc(d->data_off);
    struct hc_disk_hdr h;
    size_t ilen = strlen(identity);
    int rc;

    if (!buf)
        return -ENOMEM;
    memset(buf, 0, d->data_off);
    memset(&h, 0, sizeof(h));
    memcpy(h.magic, HC_DISK_MAGIC, sizeof(h.magic));
    h.version = HC_DISK_FORMAT_VERSION;
    h.block_size = d->block_size;
    h.region_size = d->region_size;
    h.region_count = d->region_count;
    h.identity_len = (uint32_t)ilen;
    h.identity_hash = cmn_hash64(identity, ilen, 0);
    memcpy(h.identity, identity, CMN_MIN(ilen, (size_t)HC_DISK_IDENTITY_MAX));
    h.data_off = d->data_off;
    h.generation = hc_disk_new_generation(old_generation);
    h.hdr_crc = hc_disk_hdr_crc(&h);
    memcpy(buf, &h, sizeof(h));
    rc = (int)ioeng_rw_sync(d->eng, IOENG_WRITE, buf, d->data_off, 0);
    if (rc >= 0)
        rc = dev_flush(d->dev);
    ioeng_buf_free(buf);
    if (rc < 0)
        return rc;
    d->generation = h.generation;
    return 0;
}

/* Classify the header bytes @buf (sizeof(*h) of them) and copy them to *h. */
enum hc_disk_kind hc_disk_hdr_kind(const uint8_t *buf, struct hc_disk_hdr *h)
{
    memcpy(h, buf, sizeof(*h));
    if (memcmp(h->magic, HC_DISK_MAGIC, sizeof(h->magic)) != 0) {
        for (size_t i = 0; i < sizeof(*h); i++)
            if (buf[i] != 0)
                return HC_DISK_KIND_UNKNOWN;
        return HC_DISK_KIND_EMPTY;
    }
    if (h->hdr_crc != hc_disk_hdr_crc(h))
        return HC_DISK_KIND_CORRUPT;
    return h->version == HC_DISK_FORMAT_VERSION ? HC_DISK_KIND_CACHE : HC_DISK_KIND_VERSION;
}

int hc_disk_probe_file(const char *path)
{
    uint8_t hb[sizeof(struct hc_disk_hdr)] = {0};
    struct hc_disk_hdr h;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return -errno;
    /* Plain reads: the file may be shorter than a header or than the device alignment; a
     * short file is compared as if zero-padded (its bytes still count). */
    ssize_t n = pread(fd, hb, sizeof(hb), 0);
    int rc = n < 0 ? -errno : 0;
    close(fd);
    if (rc == 0 && hc_disk_hdr_kind(hb, &h) == HC_DISK_KIND_UNKNOWN) {
        TLOG_E("disk cache: the device holds data that is not a tierfs cache; not overwriting "
               "or extending it");
        rc = -EEXIST;
    }
    return rc;
}

/*
 * Read the header. @return 0 when it describes this cache (d->generation set), or
 * -ESTALE with *why naming the difference (the caller formats), or -errno (device).
 */
static int hc_disk_check_header(struct hc_disk *d, const char *identity, const char **why,
                                uint64_t *old_generation)
{
    uint8_t *buf = ioeng_buf_alloc(d->data_off);
    struct hc_disk_hdr h;
    int rc = -ESTALE;

    if (!buf)
        return -ENOMEM;
    ssize_t n = ioeng_rw_sync(d->eng, IOENG_READ, buf, d->data_off, 0);
    if (n < 0) {
        rc = (int)n;
        goto out;
    }
    enum hc_disk_kind kind = hc_disk_hdr_kind(buf, &h);
    *old_generation = 0;
    if (kind == HC_DISK_KIND_UNKNOWN && d->refuse_unknown) {
        /* Someone else's data (a file system, a database file, a mistyped path): keep it. */
        TLOG_E("disk cache: the device holds data that is not a tierfs cache; not overwriting it");
        rc = -EEXIST;
        goto out;
    }
    if (kind == HC_DISK_KIND_EMPTY || kind == HC_DISK_KIND_UNKNOWN) {
        /* Unknown data is overwritten only when the conf allows it (refuse_unknown off). */
        *why = kind == HC_DISK_KIND_EMPTY ? "empty device"
                                          : "device holds no tierfs cache (unknown data)";
        goto out;
    }
    if (kind == HC_DISK_KIND_CORRUPT) {
        *why = "corrupt header";
        goto out;
    }
    *old_generation = h.generation;
    size_t ilen = strlen(identity);
    if (kind == HC_DISK_KIND_VERSION)
        *why = "format version differs";
    else if (h.block_size != d->block_size)
        *why = "block size differs";
    else if (h.region_size != d->region_size || h.region_count != d->region_count ||
             h.data_off != d->data_off)
        *why = "region layout differs";
    else if (h.identity_len != ilen || h.identity_hash != cmn_hash64(identity, ilen, 0))
        *why = "cache identity differs";
    else {
        d->generation = h.generation;
        rc = 0;
    }
out:
    ioeng_buf_free(buf);
    return rc;
}

struct hc_disk_recrec {
    uint64_t seq;
    uint32_t region;
    int n;
    bool footer_ok; /* from a verified summary, not a header scan */
    struct hc_disk_sum *sums;
};

/* By seq; within one seq the verified footer first, then the lower region (deterministic). */
static int hc_disk_recrec_cmp(const void *a, const void *b)
{
    const struct hc_disk_recrec *x = a, *y = b;
    if (x->seq != y->seq)
        return x->seq < y->seq ? -1 : 1;
    if (x->footer_ok != y->footer_ok)
        return x->footer_ok ? -1 : 1;
    return x->region < y->region ? -1 : x->region > y->region;
}

/* Rebuild the index from region summaries; regions replay in fill order. */
int hc_disk_recover(struct hc_disk *d)
{
    uint64_t t0 = cmn_now_ns(), max_seq = 0;
    struct hc_disk_recrec *recs = calloc(d->region_count, sizeof(*recs));
    uint32_t nrec = 0, scanned = 0;
    int rc = 0;

    if (!recs)
        return -ENOMEM;
    for (uint32_t r = 0; r < d->region_count; r++) {
        struct hc_disk_sum *sums;
        uint64_t seq = 0;
        int n = hc_disk_read_summary(d, r, 0, &sums, &seq);
        bool footer_ok = n >= 0;
        if (n == -EBADMSG || (n < 0 && n != -ENOMEM)) {
            n = hc_disk_scan_region(d, r, &sums, &seq);
            scanned += n > 0;
        }
        if (n == -ENOMEM) {
            rc = -ENOMEM;
            goto out;
        }
        if (n <= 0 || seq == 0) {
            free(sums);
            continue;
        }
        recs[nrec++] = (struct hc_disk_recrec){
            .seq = seq, .region = r, .n = n, .footer_ok = footer_ok, .sums = sums};
        max_seq = CMN_MAX(max_seq, seq);
    }
    qsort(recs, nrec, sizeof(*recs), hc_disk_recrec_cmp);
    /* A fill sequence names one fill of one region. Two regions claiming the same one
     * (a misdirected write copied entry headers into a region whose own footer is
     * garbage) cannot both be replayed: the FIFO needs distinct seqs, and one of the two
     * is not what its headers say. Keep the first after sorting (the one whose footer
     * verified); the other region stays FREE and its entries are never indexed. */
    uint32_t kept = 0;
    for (uint32_t k = 0; k < nrec; k++) {
        if (kept > 0 && recs[kept - 1].seq == recs[k].seq) {
            TLOG_W("disk cache: regions %u and %u both claim fill %llu; dropping region %u",
                   recs[kept - 1].region, recs[k].region, (unsigned long long)recs[k].seq,
                   recs[k].region);
            free(recs[k].sums);
            continue;
        }
        recs[kept++] = recs[k];
    }
    nrec = kept;

    for (uint32_t k = 0; k < nrec; k++) {
        struct hc_disk_recrec *rr = &recs[k];
        for (int i = 0; i < rr->n; i++) {
            const struct hc_disk_sum *s = &rr->sums[i];
            struct hc_dloc loc = {.region = rr->region,
                                  .off_units = s->off_units,
                                  .size_units = s->size_units & ~HC_DISK_SUM_TOMBSTONE},
                           old;
            int prc = 0;
            if (s->size_units & HC_DISK_SUM_TOMBSTONE) {
                if (hc_dindex_remove(d->ix, s->hash, NULL, &old))
                    HC_DISK_ADD(d, used, -(int64_t)old.size_units * HC_DISK_SLOT);
                continue;
            }
            prc = hc_dindex_put(d->ix, s->hash, &loc, &old);
            if (prc < 0) {
                rc = prc;
                goto out;
            }
            HC_DISK_ADD(d, used,
                        (int64_t)loc.size_units * HC_DISK_SLOT -
                            (prc == 1 ? (int64_t)old.size_units * HC_DISK_SLOT : 0));
        }
        atomic_store_explicit(&d->regions[rr->region].seq, rr->seq, memory_order_relaxed);
        d->regions[rr->region].state = HC_DISK_R_CLEAN;
        d->fifo[(d->fifo_head + d->fifo_len) % d->region_count] = rr->region;
        d->fifo_len++;
    }
    /* Free regions, lowest first so a new cache fills the device in order. */
    for (uint32_t r = d->region_count; r-- > 0;)
        if (d->regions[r].state == HC_DISK_R_FREE)
            d->free_ids[d->nfree++] = r;
    /* Skip ahead: fills the crash interrupted before any header landed must never share a
     * sequence number with a new fill of the same region. */
    d->next_seq = max_seq + 1 + d->region_count;

    uint64_t ix_bytes;
    hc_dindex_usage(d->ix, &d->recovered_entries, &ix_bytes);
    d->recovery_ns = cmn_now_ns() - t0;
    if (nrec)
        TLOG_I("disk cache: recovered %llu entries from %u regions (%u by header scan) in %.1f ms",
               (unsigned long long)d->recovered_entries, nrec, scanned, d->recovery_ns / 1e6);
out:
    for (uint32_t k = 0; k < nrec; k++)
        free(recs[k].sums);
    free(recs);
    return rc;
}

/* ---- lifecycle ---- */

/* Bytes a region must hold: one largest entry, its summary record and the footer. */
static uint64_t hc_disk_region_need(uint32_t block_size)
{
    uint32_t max_entry =
        hc_disk_entry_size(HC_KEY_MAX, hc_disk_table_bytes(block_size), block_size);

    return (uint64_t)max_entry + HC_DISK_SUM_BYTES + HC_DISK_FOOTER_BYTES;
}

/* The default region size: HC_DISK_REGION_DEFAULT, doubled until two largest entries fit. */
uint64_t hc_disk_region_auto(uint32_t block_size)
{
    uint64_t need = hc_disk_region_need(block_size), rs = HC_DISK_REGION_DEFAULT;

    while (rs < 2 * need)
        rs *= 2;
    return rs;
}

uint64_t hc_disk_region_for(uint32_t block_size, unsigned k)
{
    uint32_t max_entry =
        hc_disk_entry_size(HC_KEY_MAX, hc_disk_table_bytes(block_size), block_size);
    uint64_t rs = (uint64_t)k * (max_entry + HC_DISK_SUM_BYTES) + HC_DISK_FOOTER_BYTES;

    /* 64 KiB: a multiple of any device's logical block and of IOENG_BUF_ALIGN. */
    return CMN_ALIGN_UP(rs, (uint64_t)64 << 10);
}

uint64_t hc_disk_min_capacity(uint32_t block_size)
{
    uint64_t hdr = CMN_ALIGN_UP((uint64_t)sizeof(struct hc_disk_hdr), (uint64_t)IOENG_BUF_ALIGN);

    if (!block_size)
        block_size = HC_BLOCK_SIZE_DEFAULT;
    return hdr + HC_DISK_MIN_REGIONS * hc_disk_region_auto(block_size);
}

/* Derive the layout from @conf and the device. @return 0 or -EINVAL/-ENOSPC with a log line. */
static int hc_disk_layout(struct hc_disk *d, const struct hc_disk_conf *conf)
{
    uint64_t cap = dev_size(conf->dev);

    d->block_size = conf->block_size ? conf->block_size : HC_BLOCK_SIZE_DEFAULT;
    if (d->block_size > HC_BLOCK_SIZE_MAX) {
        TLOG_E("disk cache: block size %u exceeds %u", d->block_size, HC_BLOCK_SIZE_MAX);
        return -EINVAL;
    }
    d->align = CMN_MAX(dev_align(conf->dev), HC_DISK_SLOT);
    if (!CMN_IS_POW2(d->align) || d->align > (1u << 20)) {
        TLOG_E("disk cache: device alignment %u unsupported", d->align);
        return -EINVAL;
    }
    d->table_len = hc_disk_table_bytes(d->block_size);
    d->max_entry = hc_disk_entry_size(HC_KEY_MAX, d->table_len, d->block_size);
    uint64_t need = hc_disk_region_need(d->block_size);
    uint64_t rs = conf->region_size       ? conf->region_size
                  : conf->region_size_new ? conf->region_size_new
                                          : hc_disk_region_auto(d->block_size);
    if (rs % d->align || rs % IOENG_BUF_ALIGN || rs < need || rs > HC_DISK_REGION_MAX) {
        TLOG_E("disk cache: region size %llu must be a multiple of %u, at least %llu and at "
               "most %u",
               (unsigned long long)rs, CMN_MAX(d->align, (uint32_t)IOENG_BUF_ALIGN),
               (unsigned long long)need, HC_DISK_REGION_MAX);
        return -EINVAL;
    }
    d->region_size = (uint32_t)rs;
    if (conf->capacity && conf->capacity < cap)
        cap = conf->capacity;
    d->data_off = CMN_ALIGN_UP((uint64_t)sizeof(struct hc_disk_hdr),
                               (uint64_t)CMN_MAX(d->align, (uint32_t)IOENG_BUF_ALIGN));
    uint64_t nreg = cap > d->data_off ? (cap - d->data_off) / rs : 0;
    if (nreg < HC_DISK_MIN_REGIONS) {
        /* Not ENOSPC: that reads like a full file system, and nothing is full. */
        TLOG_E(
            "disk cache: %llu MiB is too small: the disk tier needs %u regions of %llu MiB "
            "(at least %llu MiB in all)",
            (unsigned long long)(cap >> 20), HC_DISK_MIN_REGIONS, (unsigned long long)(rs >> 20),
            (unsigned long long)((d->data_off + HC_DISK_MIN_REGIONS * rs + (1u << 20) - 1) >> 20));
        return -ERANGE;
    }
    if (nreg >= (1ull << HC_DLOC_REGION_BITS)) {
        TLOG_E("disk cache: %llu bytes give %llu regions of %llu bytes; at most %u are supported",
               (unsigned long long)cap, (unsigned long long)nreg, (unsigned long long)rs,
               (1u << HC_DLOC_REGION_BITS) - 1);
        return -ERANGE;
    }
    d->region_count = (uint32_t)nreg;
    uint64_t wq = conf->write_queue_bytes ? conf->write_queue_bytes : 4ull * rs;
    d->wbufs_max = (uint32_t)CMN_MAX(1, CMN_MIN(wq / rs, (uint64_t)d->region_count - 2));
    d->read_bufs_max = conf->io_depth ? conf->io_depth : 32;
    /* An entry starts at a slot, at most align - HC_DISK_SLOT past an aligned offset. */
    d->read_buf_len = CMN_ALIGN_UP(d->max_entry, d->align) + d->align;
    d->compression = conf->compression;
    d->refuse_unknown = conf->refuse_unknown;
    d->acct = conf->acct;
    return 0;
}

/*
 * With no region size given, a device that already holds this cache (same block size and
 * identity) keeps its layout: the size picked for a new format follows the memory budget,
 * and a remount with another budget must not wipe the cache. @return 0 (the layout is
 * redone when the header's region size differs), or -errno when the device cannot be read.
 */
static int hc_disk_adopt_layout(struct hc_disk *d, const struct hc_disk_conf *conf,
                                const char *identity)
{
    struct hc_disk_hdr h;
    uint8_t *buf;
    int rc = 0;

    if (conf->region_size)
        return 0;
    if (!(buf = ioeng_buf_alloc(d->data_off)))
        return -ENOMEM;
    ssize_t n = ioeng_rw_sync(d->eng, IOENG_READ, buf, d->data_off, 0);
    size_t ilen = strlen(identity);
    if (n < 0)
        rc = (int)n;
    else if (hc_disk_hdr_kind(buf, &h) == HC_DISK_KIND_CACHE && h.block_size == d->block_size &&
             h.region_size != d->region_size && h.identity_len == ilen &&
             h.identity_hash == cmn_hash64(identity, ilen, 0)) {
        struct hc_disk_conf c2 = *conf;
        c2.region_size = h.region_size;
        TLOG_I("disk cache: keeping the cache's %u KiB regions", h.region_size >> 10);
        rc = hc_disk_layout(d, &c2);
    }
    ioeng_buf_free(buf);
    return rc;
}

int hc_disk_open(const struct hc_disk_conf *conf, struct hc_disk **out)
{
    struct hc_disk *d;
    const char *identity, *why = NULL;
    uint64_t old_gen = 0;
    int rc;

    if (!conf || !conf->dev || !out)
        return -EINVAL;
    *out = NULL;
    d = calloc(1, sizeof(*d));
    if (!d) {
        dev_close(conf->dev);
        return -ENOMEM;
    }
    d->dev = conf->dev;
    identity = conf->identity ? conf->identity : "";
    /* One process per device: a second daemon (or tierfs-cache clear) would interleave
     * region writes with ours. Only "held elsewhere" stops the open. */
    rc = hc_disk_lock(d->dev, true, HC_DISK_LOCK_WAIT_MS);
    if (rc == -EBUSY) {
        TLOG_E("disk cache: the device is in use by another process (a mounted tierfs?)");
        goto fail_dev;
    }
    if (rc < 0 && rc != -EOPNOTSUPP)
        TLOG_D("disk cache: no advisory lock on the device: %s", strerror(-rc));
    rc = hc_disk_layout(d, conf);
    if (rc < 0)
        goto fail_dev;
    struct ioeng_conf ec = {.queue_depth = conf->io_depth};
    rc = ioeng_create(conf->io_engine ? conf->io_engine : "uring", d->dev, &ec, &d->eng);
    if (rc < 0)
        goto fail_dev;
    if ((rc = hc_disk_adopt_layout(d, conf, identity)) < 0)
        goto fail_tables;
    d->regions = calloc(d->region_count, sizeof(*d->regions));
    d->fifo = calloc(d->region_count, sizeof(*d->fifo));
    d->free_ids = calloc(d->region_count, sizeof(*d->free_ids));
    d->rfree = calloc(d->read_bufs_max, sizeof(*d->rfree));
    if (!d->regions || !d->fifo || !d->free_ids || !d->rfree) {
        rc = -ENOMEM;
        goto fail_tables;
    }
    /* Size the index for a device full of block-sized entries. */
    rc = hc_dindex_create((uint64_t)d->region_count * (d->region_size / d->max_entry), &d->ix);
    if (rc < 0)
        goto fail_tables;
    pthread_mutex_init(&d->lock, NULL);
    pthread_cond_init(&d->cond, NULL);

    rc = hc_disk_check_header(d, identity, &why, &old_gen);
    if (rc == -ESTALE) {
        /* A first mount on an empty device is routine; wiping a cache (or other data)
         * is worth a warning. */
        if (strcmp(why, "empty device") == 0)
            TLOG_N("disk cache: %s; formatting %u regions of %u KiB (identity '%.64s')", why,
                   d->region_count, d->region_size >> 10, identity);
        else
            TLOG_W("disk cache: %s; formatting %u regions of %u KiB (identity '%.64s'): "
                   "cached data is dropped",
                   why, d->region_count, d->region_size >> 10, identity);
        rc = hc_disk_format(d, identity, old_gen);
    }
    if (rc == 0)
        rc = hc_disk_recover(d);
    if (rc < 0) {
        TLOG_E("disk cache: cannot open: %s", strerror(-rc));
        goto fail_sync;
    }
    rc = pthread_create(&d->reclaimer, NULL, hc_disk_reclaimer, d);
    if (rc) {
        rc = -rc;
        goto fail_sync;
    }
    d->reclaimer_started = true;
    *out = d;
    return 0;

fail_sync:
    pthread_cond_destroy(&d->cond);
    pthread_mutex_destroy(&d->lock);
    hc_dindex_destroy(d->ix);
fail_tables:
    free(d->regions);
    free(d->fifo);
    free(d->free_ids);
    free(d->rfree);
    ioeng_destroy(d->eng);
fail_dev:
    dev_close(d->dev);
    free(d);
    return rc;
}

void hc_disk_free(struct hc_disk *d)
{
    if (!d)
        return;
    /* Idle buffers (no IO is in flight any more): give back their charge. */
    while (d->wfree) {
        struct hc_disk_wbuf *wb = d->wfree;
        d->wfree = wb->next_free;
        hc_disk_wbuf_free(d, wb);
    }
    d->nwfree = 0;
    while (d->nrfree) {
        ioeng_buf_free(d->rfree[--d->nrfree]);
        hc_disk_charge(d, -(int64_t)d->read_buf_len);
    }
    free(d->rfree);
    ioeng_destroy(d->eng);
    hc_dindex_destroy(d->ix);
    free(d->regions);
    free(d->fifo);
    free(d->free_ids);
    pthread_cond_destroy(&d->cond);
    pthread_mutex_destroy(&d->lock);
    free(d);
}

void hc_disk_close(struct hc_disk *d)
{
    if (!d)
        return;
    /* Stop the reclaimer first: its reinserts land in d->cur, which the flush then seals. */
    pthread_mutex_lock(&d->lock);
    d->stop = true;
    pthread_cond_broadcast(&d->cond);
    pthread_mutex_unlock(&d->lock);
    if (d->reclaimer_started)
        pthread_join(d->reclaimer, NULL);
    hc_disk_flush(d);
    pthread_mutex_lock(&d->lock);
    while (d->reads_inflight > 0 || d->pend_head)
        pthread_cond_wait(&d->cond, &d->lock);
    pthread_mutex_unlock(&d->lock);
    if (d->cur) {
        /* Opened but empty (flush only seals regions that hold entries). */
        hc_disk_wbuf_free(d, d->cur);
        d->cur = NULL;
    }
    struct dev *dev = d->dev;
    hc_disk_free(d); /* the engine goes before the device it reads */
    dev_close(dev);
}
