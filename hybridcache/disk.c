/* SPDX-License-Identifier: Apache-2.0 */
/*
 * disk.c: the disk tier, a log-structured region engine on an ioengine device.
 *
 * DESIGN
 * The device is a header (format version, block and region size, region count, cache
 * identity, a generation chosen at format time) followed by region_count regions of
 * region_size bytes. Inserts append entries (header + key + value, maybe lz4-compressed,
 * at multiples of HC_DISK_SLOT) to an aligned in-memory region buffer; a summary record
 * per entry grows down from a footer at the end of the buffer. A full region, or the open
 * one at hc_disk_flush(), is sealed and written with one or two large writes; at most
 * wbufs_max buffers exist at once (the write queue), so an insert that finds none free
 * returns -EAGAIN (an admission drop) instead of waiting. Every fill of a region gets a
 * new sequence number; entries and the footer carry it, with the format generation.
 *
 * A reclaimer thread keeps HC_DISK_CLEAN_TARGET regions free: it takes the oldest sealed
 * region (FIFO), reads its summary, reinserts entries that were hit while on the device
 * (at most half a region's bytes each time, so reclaim always makes progress) and removes
 * the others from the index. Lookups copy from the region buffer while the region is
 * still in memory (done runs before hc_disk_lookup returns), otherwise read the aligned
 * range holding the entry (done runs on an engine thread) and verify it after the read:
 * header checksum, generation, fill sequence, key and data checksum. A region reused
 * under a reader therefore yields a miss, never another entry's bytes. Region buffers and
 * lookup read buffers are charged to conf->acct from allocation to hc_disk_close(): both
 * are kept on free lists and reused (a fresh 1 MiB+ aligned buffer per read cost an
 * mmap, its page faults and a munmap each time), at most wbufs_max region buffers and
 * io_depth read buffers of the largest aligned entry read (read_buf_len). At most
 * io_depth lookups read at once, each with one buffer; the others wait in a FIFO.
 *
 * Partial lookups (hc_disk_lookup_range) use the chunk checksums of format 2 (disk_i.h):
 * an uncompressed value longer than a chunk carries a crc32c per HC_DISK_CHUNK bytes in a
 * table after the key, whose room is fixed per cache, so the chunks covering a range lie
 * at an offset known from the index and the key length alone. The header-and-table read
 * and the chunk read go out together (one request when they touch) on one read slot and
 * buffer; the header, key and table are verified, then only the chunks read. A bad chunk
 * is a miss for that read but leaves the entry (a whole read, which checks every chunk,
 * drops it); a bad header or table drops it at once, as for a whole read.
 *
 * Recovery reads only the tail (summary + footer) of each region, falling back to a scan
 * of entry headers when the footer is missing or torn, and replays regions in sequence
 * order so that newer copies win. Data checksums are verified lazily, at read time.
 * Removes append a tombstone when the write queue has room, so a key removed before the
 * next hc_disk_flush() stays removed after recovery; a remove that finds the queue full
 * is in memory only (the fs never needs more: its keys carry the ETag, so a resurrected
 * entry still holds the right bytes for its key).
 *
 * hc_disk_open() takes an exclusive advisory lock (flock) on the device and holds it until
 * hc_disk_close(): a second daemon on the same cache waits a moment, then fails with
 * -EBUSY; tierfs-cache (tools/tierfs_cache.c) tests the same lock before it reads, verifies
 * or clears a cache offline through the hc_disk_inspect/verify/wipe functions of
 * disk_offline.c (hc_offline.h), which reuse the header, summary and entry checks.
 *
 * FILES
 *   disk.c         - this design, region writes, inserts and removes, reclaim, invariants
 *   disk_read.c    - lookups: whole entries and chunk-verified ranges, the read slots
 *   disk_format.c  - record checks, summaries, header, format, recovery, open and close
 *   disk_offline.c - inspect, verify and wipe for tools (hc_offline.h)
 *   disk_index.c   - the in-memory index (disk_i.h)
 *
 * INVARIANTS (under d->lock)
 *   - every region is in exactly one state; FREE regions are in free_ids[], sealed
 *     (FLUSHING, CLEAN) ones in fifo[] in increasing seq order, FILLING is d->cur's,
 *     RECLAIMING belongs to the reclaimer thread;
 *   - regions[r].wb != NULL iff r is FILLING or FLUSHING; wbufs counts those buffers and
 *     wbufs + nwfree <= wbufs_max (idle buffers on wfree count against the write queue);
 *   - reads_inflight + nrfree <= read_bufs_max, and every read buffer is either on rfree
 *     or owned by one started lookup;
 *   - seq of a FREE region is 0; seqs of regions in fifo[] increase from head to tail and
 *     are below next_seq;
 *   - an index entry points into a region that is not FREE (writes that fail and reclaim
 *     drop entries before the region goes back to free_ids[]).
 * Lock order: d->lock, then an index shard lock (disk_index.c). No IO under d->lock.
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

struct tlog_ratelimit hc_disk_rl = {.interval_ms = 10000, .burst = 5};

/* ---- region buffers and writes ---- */

void hc_disk_wbuf_free(struct hc_disk *d, struct hc_disk_wbuf *wb)
{
    ioeng_buf_free(wb->buf);
    hc_disk_charge(d, -(int64_t)d->region_size);
    free(wb);
}

/* Drop the index entries of a region buffer whose write failed. Under d->lock. */
static void hc_disk_wbuf_drop_entries(struct hc_disk *d, struct hc_disk_wbuf *wb)
{
    for (uint32_t i = 0; i < wb->nent; i++) {
        struct hc_disk_sum s;
        struct hc_dloc old;
        memcpy(&s, wb->buf + hc_disk_sum_off(d, i), sizeof(s));
        if (s.size_units & HC_DISK_SUM_TOMBSTONE)
            continue;
        struct hc_dloc at = {.region = wb->region, .off_units = s.off_units};
        if (hc_dindex_remove(d->ix, s.hash, &at, &old))
            HC_DISK_ADD(d, used, -(int64_t)old.size_units * HC_DISK_SLOT);
    }
}

/* Completion of one part of a region write (engine thread). */
static void hc_disk_write_done(struct ioeng_req *req)
{
    struct hc_disk_wbuf *wb = req->arg;
    struct hc_disk *d = wb->d;

    pthread_mutex_lock(&d->lock);
    if (req->result < 0 && !wb->err)
        wb->err = (int)req->result;
    else if (req->result > 0)
        HC_DISK_ADD(d, bytes_written, (uint64_t)req->result);
    if (--wb->parts_left > 0) {
        pthread_mutex_unlock(&d->lock);
        return;
    }
    struct hc_disk_region *r = &d->regions[wb->region];
    if (wb->err) {
        /* The region stays in the FIFO (reclaimed in turn) but serves nothing. */
        hc_disk_wbuf_drop_entries(d, wb);
        HC_DISK_ADD(d, write_errors, 1);
        tlog_rl_msg(&hc_disk_rl, TLOG_ERR,
                    "disk cache: writing region %u: %s; its %u entries dropped", wb->region,
                    strerror(-wb->err), wb->nent);
    }
    r->wb = NULL;
    r->state = HC_DISK_R_CLEAN;
    /* The buffer stays allocated and charged, on wfree, for the next region to open:
     * it moves from wbufs to nwfree, so the write queue's charge never grows. */
    wb->next_free = d->wfree;
    d->wfree = wb;
    d->nwfree++;
    d->wbufs--;
    d->writes_inflight--;
    pthread_cond_broadcast(&d->cond);
    pthread_mutex_unlock(&d->lock);
}

/*
 * Seal d->cur: write the footer, queue the region in the FIFO and detach it.
 * Under d->lock. The caller submits the returned buffer with hc_disk_wbuf_submit() after
 * unlocking (IO never starts under d->lock).
 */
static struct hc_disk_wbuf *hc_disk_seal(struct hc_disk *d)
{
    struct hc_disk_wbuf *wb = d->cur;
    struct hc_disk_region *r = &d->regions[wb->region];
    struct hc_disk_footer f = {
        .magic = HC_DISK_FOOTER_MAGIC,
        .generation = d->generation,
        .seq = atomic_load_explicit(&r->seq, memory_order_relaxed),
        .nentries = wb->nent,
        .entries_end = wb->wp,
    };
    uint32_t sum_start = d->region_size - HC_DISK_FOOTER_BYTES - wb->nent * HC_DISK_SUM_BYTES;

    f.summary_crc = cmn_crc32c(0, wb->buf + sum_start, (size_t)wb->nent * HC_DISK_SUM_BYTES);
    f.footer_crc = hc_disk_footer_crc(&f);
    memcpy(wb->buf + d->region_size - HC_DISK_FOOTER_BYTES, &f, sizeof(f));

    d->cur = NULL;
    r->state = HC_DISK_R_FLUSHING;
    d->fifo[(d->fifo_head + d->fifo_len) % d->region_count] = wb->region;
    d->fifo_len++;
    d->writes_inflight++;
    return wb;
}

/* Start the write of a sealed buffer: the entries and the tail, in one request when the
 * hole between them is small. Failures complete through hc_disk_write_done(). */
static void hc_disk_wbuf_submit(struct hc_disk *d, struct hc_disk_wbuf *wb)
{
    uint64_t base = hc_disk_region_off(d, wb->region);
    uint32_t sum_start = d->region_size - HC_DISK_FOOTER_BYTES - wb->nent * HC_DISK_SUM_BYTES;
    uint32_t data_end = CMN_ALIGN_UP(wb->wp, d->align);
    uint32_t tail_start = sum_start & ~(d->align - 1);
    int parts = 1;

    /* Never write uninitialised memory to the device. */
    if (data_end >= tail_start || tail_start - data_end < HC_DISK_ONE_WRITE_GAP) {
        memset(wb->buf + wb->wp, 0, sum_start - wb->wp);
        wb->req[0] = (struct ioeng_req){
            .op = IOENG_WRITE, .buf = wb->buf, .len = d->region_size, .off = base};
    } else {
        memset(wb->buf + wb->wp, 0, data_end - wb->wp);
        memset(wb->buf + tail_start, 0, sum_start - tail_start);
        wb->req[0] =
            (struct ioeng_req){.op = IOENG_WRITE, .buf = wb->buf, .len = data_end, .off = base};
        wb->req[1] = (struct ioeng_req){.op = IOENG_WRITE,
                                        .buf = wb->buf + tail_start,
                                        .len = d->region_size - tail_start,
                                        .off = base + tail_start};
        parts = 2;
    }
    pthread_mutex_lock(&d->lock);
    wb->parts_left = parts;
    pthread_mutex_unlock(&d->lock);
    for (int i = 0; i < parts; i++) {
        wb->req[i].done = hc_disk_write_done;
        wb->req[i].arg = wb;
        int rc = ioeng_submit(d->eng, &wb->req[i]);
        if (rc < 0) {
            wb->req[i].result = rc;
            hc_disk_write_done(&wb->req[i]);
        }
    }
}

/*
 * Open a new region for filling. Under d->lock. The last free region is kept for
 * reinsertion (@reinsert): the reclaimer runs exactly when inserts have used up the
 * others, and a hot entry must not be lost because of that.
 * @return 0, -EAGAIN (no buffer or no free region: the disk is behind) or -ENOMEM.
 */
static int hc_disk_open_region(struct hc_disk *d, bool reinsert)
{
    if (d->wbufs >= d->wbufs_max || d->nfree <= (reinsert ? 0u : 1u)) {
        pthread_cond_broadcast(&d->cond); /* wake the reclaimer */
        return -EAGAIN;
    }
    struct hc_disk_wbuf *wb = d->wfree;
    if (wb) {
        /* Reuse an idle buffer (already charged); the old bytes are overwritten or
         * zeroed before they reach the device, as for a fresh buffer. */
        uint8_t *buf = wb->buf;
        d->wfree = wb->next_free;
        d->nwfree--;
        *wb = (struct hc_disk_wbuf){.buf = buf};
    } else {
        wb = calloc(1, sizeof(*wb));
        if (!wb)
            return -ENOMEM;
        wb->buf = ioeng_buf_alloc(d->region_size);
        if (!wb->buf) {
            free(wb);
            return -ENOMEM;
        }
        /* Filled by memcpy at once: 4,096 page faults of a 16 MiB region in one call. */
        (void)ioeng_buf_prefault(wb->buf, d->region_size);
        hc_disk_charge(d, d->region_size);
    }
    wb->d = d;
    wb->region = d->free_ids[--d->nfree];
    struct hc_disk_region *r = &d->regions[wb->region];
    atomic_store_explicit(&r->seq, d->next_seq++, memory_order_relaxed);
    r->wb = wb;
    r->state = HC_DISK_R_FILLING;
    d->cur = wb;
    d->wbufs++;
    if (d->nfree < HC_DISK_CLEAN_TARGET)
        pthread_cond_broadcast(&d->cond);
    return 0;
}

/* What to append: one entry or a tombstone. */
struct hc_disk_rec {
    uint64_t hash;
    const void *key;
    size_t klen;
    const void *val; /* stored form (compressed when flags say so) */
    uint32_t stored_len, orig_len, flags;
    uint32_t data_crc; /* as struct hc_disk_ehdr's */
    const void *table; /* chunk crcs (chunk_size != 0), table_len bytes */
    uint32_t chunk_size, table_len;
};

/*
 * Append @rec to the open region, opening one (and sealing the full one into *@sealed)
 * when needed, and point the index at it: replacing whatever was there, or, with @from,
 * only if the index still points at @from (a reinsert). Under d->lock.
 * @return 0, -EAGAIN (write queue full), -ENOENT (@from no longer current) or -ENOMEM.
 */
static int hc_disk_append(struct hc_disk *d, const struct hc_disk_rec *rec,
                          const struct hc_dloc *from, struct hc_disk_wbuf **sealed)
{
    uint32_t size = hc_disk_entry_size(rec->klen, rec->table_len, rec->stored_len);
    struct hc_disk_wbuf *wb = d->cur;
    struct hc_dloc cur_loc;
    int rc;

    if (from && (!hc_dindex_get(d->ix, rec->hash, false, &cur_loc) ||
                 cur_loc.region != from->region || cur_loc.off_units != from->off_units))
        return -ENOENT;
    if (wb &&
        (uint64_t)wb->wp + size + (wb->nent + 1ull) * HC_DISK_SUM_BYTES + HC_DISK_FOOTER_BYTES >
            d->region_size) {
        *sealed = hc_disk_seal(d);
        wb = NULL;
    }
    if (!wb) {
        rc = hc_disk_open_region(d, from != NULL);
        if (rc < 0)
            return rc;
        wb = d->cur;
    }

    struct hc_disk_region *r = &d->regions[wb->region];
    struct hc_disk_ehdr h = {
        .magic = HC_DISK_ENTRY_MAGIC,
        .data_crc = rec->data_crc,
        .flags = rec->flags,
        .hash = rec->hash,
        .seq = atomic_load_explicit(&r->seq, memory_order_relaxed),
        .generation = d->generation,
        .klen = (uint32_t)rec->klen,
        .stored_len = rec->stored_len,
        .orig_len = rec->orig_len,
        .chunk_size = rec->chunk_size,
        .table_len = rec->table_len,
    };
    h.hdr_crc = hc_disk_ehdr_crc(&h);
    uint8_t *p = wb->buf + wb->wp;
    size_t used = HC_DISK_EHDR_BYTES + rec->klen + rec->table_len + rec->stored_len;
    memcpy(p, &h, sizeof(h));
    memcpy(p + HC_DISK_EHDR_BYTES, rec->key, rec->klen);
    if (rec->table_len)
        memcpy(p + HC_DISK_EHDR_BYTES + rec->klen, rec->table, rec->table_len);
    if (rec->stored_len)
        memcpy(p + HC_DISK_EHDR_BYTES + rec->klen + rec->table_len, rec->val, rec->stored_len);
    memset(p + used, 0, size - used);

    struct hc_dloc loc = {.region = wb->region,
                          .off_units = wb->wp / HC_DISK_SLOT,
                          .size_units = size / HC_DISK_SLOT};
    struct hc_disk_sum s = {
        .hash = rec->hash, .off_units = loc.off_units, .size_units = loc.size_units};
    if (rec->flags & HC_DISK_EF_TOMBSTONE) {
        s.size_units |= HC_DISK_SUM_TOMBSTONE;
    } else if (from) {
        if (!hc_dindex_move(d->ix, rec->hash, from, &loc))
            return -ENOENT; /* nothing was committed: wp/nent unchanged */
        HC_DISK_ADD(d, used, (int64_t)size - (int64_t)from->size_units * HC_DISK_SLOT);
    } else {
        struct hc_dloc old;
        rc = hc_dindex_put(d->ix, rec->hash, &loc, &old);
        if (rc < 0)
            return rc;
        HC_DISK_ADD(d, used,
                    (int64_t)size - (rc == 1 ? (int64_t)old.size_units * HC_DISK_SLOT : 0));
    }
    memcpy(wb->buf + hc_disk_sum_off(d, wb->nent), &s, sizeof(s));
    wb->nent++;
    wb->wp += size;
    return 0;
}

/* ---- public: inserts and removes ---- */

int hc_disk_insert(struct hc_disk *d, uint64_t hash, const void *key, size_t klen, const void *data,
                   size_t len)
{
    int rc = hc_disk_insert_wait(d, hash, key, klen, data, len, 0);

    if (rc == -EAGAIN)
        hc_disk_note_drop(d);
    return rc;
}

void hc_disk_note_drop(struct hc_disk *d)
{
    HC_DISK_ADD(d, admission_drops, 1);
}

int hc_disk_insert_wait(struct hc_disk *d, uint64_t hash, const void *key, size_t klen,
                        const void *data, size_t len, unsigned wait_ms)
{
    struct hc_disk_rec rec = {.hash = hash,
                              .key = key,
                              .klen = klen,
                              .val = data,
                              .stored_len = (uint32_t)len,
                              .orig_len = (uint32_t)len};
    struct hc_disk_wbuf *sealed = NULL;
    char *cbuf = NULL;
    uint32_t *table = NULL;
    int rc;

    if (!d || (!key && klen) || (!data && len))
        return -EINVAL;
    if (len > d->block_size)
        return -E2BIG;
    if (klen > HC_KEY_MAX)
        return -EINVAL;
    /* Compress outside the lock; keep the result only when it saves at least a slot. */
    if (d->compression && len > HC_DISK_SLOT) {
        cbuf = malloc(len);
        if (cbuf) {
            int n = LZ4_compress_default(data, cbuf, (int)len, (int)(len - HC_DISK_SLOT));
            if (n > 0) {
                rec.val = cbuf;
                rec.stored_len = (uint32_t)n;
                rec.flags = HC_DISK_EF_COMPRESSED;
            }
        }
    }
    if (!(rec.flags & HC_DISK_EF_COMPRESSED) && len > HC_DISK_CHUNK) {
        /* Zeroed: the table's unused room goes to the device too. */
        table = calloc(1, d->table_len);
        if (!table) {
            rc = -ENOMEM; /* cbuf may hold a compression attempt that did not pay */
            goto out;
        }
        uint32_t n = hc_disk_nchunks((uint32_t)len);
        cmn_crc32c_chunks(data, len, HC_DISK_CHUNK, table);
        rec.table = table;
        rec.chunk_size = HC_DISK_CHUNK;
        rec.table_len = d->table_len;
        rec.data_crc = cmn_crc32c(cmn_crc32c(0, key, klen), table, n * sizeof(*table));
    } else {
        rec.data_crc = cmn_crc32c(cmn_crc32c(0, key, klen), rec.val, rec.stored_len);
    }

    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += wait_ms / 1000;
    deadline.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&d->lock);
    /* A full write queue (or no free region yet) frees up as writes complete and the
     * reclaimer runs, both of which broadcast d->cond: a caller that may wait does. */
    for (;;) {
        rc = hc_disk_append(d, &rec, NULL, &sealed);
        if (rc != -EAGAIN || !wait_ms || d->stop)
            break;
        if (sealed) { /* the full region goes to the device before anyone waits for it */
            pthread_mutex_unlock(&d->lock);
            hc_disk_wbuf_submit(d, sealed);
            sealed = NULL;
            pthread_mutex_lock(&d->lock);
            continue;
        }
        if (pthread_cond_timedwait(&d->cond, &d->lock, &deadline) == ETIMEDOUT) {
            rc = hc_disk_append(d, &rec, NULL, &sealed);
            break;
        }
    }
    pthread_mutex_unlock(&d->lock);
    if (sealed)
        hc_disk_wbuf_submit(d, sealed);

    if (rc == 0) {
        HC_DISK_ADD(d, inserts, 1);
        if (rec.flags & HC_DISK_EF_COMPRESSED) {
            HC_DISK_ADD(d, compressed_blocks, 1);
            HC_DISK_ADD(d, compressed_saved_bytes, len - rec.stored_len);
        }
    }
out:
    free(table);
    free(cbuf);
    return rc;
}

int hc_disk_remove(struct hc_disk *d, uint64_t hash, const void *key, size_t klen)
{
    struct hc_disk_rec rec = {
        .hash = hash, .key = key, .klen = klen, .flags = HC_DISK_EF_TOMBSTONE};
    struct hc_disk_wbuf *sealed = NULL;
    struct hc_dloc old;
    bool found;

    if (!d || klen > HC_KEY_MAX)
        return -EINVAL;
    rec.data_crc = cmn_crc32c(0, key, klen);
    pthread_mutex_lock(&d->lock);
    found = hc_dindex_remove(d->ix, hash, NULL, &old);
    if (found) {
        HC_DISK_ADD(d, used, -(int64_t)old.size_units * HC_DISK_SLOT);
        /* Best effort: with the write queue full the remove is in memory only (see DESIGN). */
        if (hc_disk_append(d, &rec, NULL, &sealed) < 0)
            TLOG_D("disk cache: write queue full; a remove will not survive a restart");
    }
    pthread_mutex_unlock(&d->lock);
    if (sealed)
        hc_disk_wbuf_submit(d, sealed);
    return found ? 0 : -ENOENT;
}

bool hc_disk_may_contain(struct hc_disk *d, uint64_t hash)
{
    return d && hc_dindex_get(d->ix, hash, false, NULL);
}

/* ---- reclaim ---- */

/* Read, verify and append again an entry that was hit while on the device. Reclaimer
 * thread, no locks held. @return 0 or -errno (the entry is then simply evicted). */
static int hc_disk_reinsert(struct hc_disk *d, const struct hc_disk_sum *s, uint32_t r,
                            uint64_t seq, const struct hc_dloc *from)
{
    uint64_t off = hc_disk_region_off(d, r) + (uint64_t)s->off_units * HC_DISK_SLOT;
    uint64_t start = off & ~(uint64_t)(d->align - 1);
    uint64_t end = CMN_ALIGN_UP(off + (uint64_t)s->size_units * HC_DISK_SLOT, (uint64_t)d->align);
    struct hc_disk_wbuf *sealed = NULL;
    struct hc_disk_ehdr h;
    uint8_t *buf = NULL;
    int rc = hc_disk_pread_alloc(d, start, end - start, &buf);

    if (rc < 0) {
        if (rc != -ENOMEM)
            HC_DISK_ADD(d, read_errors, 1);
        return rc;
    }
    const uint8_t *p = buf + (off - start);
    memcpy(&h, p, sizeof(h));
    /* The key comes from the entry itself; verify it as a lookup would. */
    if (h.klen > HC_KEY_MAX || HC_DISK_EHDR_BYTES + h.klen > end - off) {
        rc = -EBADMSG;
    } else {
        rc = hc_disk_entry_verify(d, p, end - off, seq, s->hash, p + HC_DISK_EHDR_BYTES, h.klen,
                                  true, &h);
    }
    if (rc < 0) {
        if (rc == -EBADMSG)
            HC_DISK_ADD(d, checksum_failures, 1);
        goto out;
    }
    struct hc_disk_rec rec = {.hash = h.hash,
                              .key = p + HC_DISK_EHDR_BYTES,
                              .klen = h.klen,
                              .val = p + HC_DISK_EHDR_BYTES + h.klen + h.table_len,
                              .stored_len = h.stored_len,
                              .orig_len = h.orig_len,
                              .flags = h.flags,
                              .data_crc = h.data_crc,
                              .table = p + HC_DISK_EHDR_BYTES + h.klen,
                              .chunk_size = h.chunk_size,
                              .table_len = h.table_len};
    pthread_mutex_lock(&d->lock);
    rc = hc_disk_append(d, &rec, from, &sealed);
    pthread_mutex_unlock(&d->lock);
    if (sealed)
        hc_disk_wbuf_submit(d, sealed);
out:
    ioeng_buf_free(buf);
    return rc;
}

/* Empty region @r (RECLAIMING, fill @seq): reinsert hot entries, drop the rest from the
 * index. Reclaimer thread, no locks held. */
static void hc_disk_reclaim(struct hc_disk *d, uint32_t r, uint64_t seq)
{
    struct hc_disk_sum *sums = NULL;
    uint64_t budget = d->region_size / 2, evicted = 0, bytes = 0;
    int n = hc_disk_read_summary(d, r, seq, &sums, &(uint64_t){0});

    if (n < 0) {
        /* No usable summary (write error, device error): sweep the index instead. */
        evicted = hc_dindex_drop_region(d->ix, r, &bytes);
        HC_DISK_ADD(d, used, -(int64_t)bytes);
        HC_DISK_ADD(d, evictions, evicted);
        return;
    }
    for (int i = 0; i < n; i++) {
        const struct hc_disk_sum *s = &sums[i];
        struct hc_dloc at = {.region = r, .off_units = s->off_units}, cur;
        if (s->size_units & HC_DISK_SUM_TOMBSTONE)
            continue;
        if (!hc_dindex_get(d->ix, s->hash, false, &cur) || cur.region != r ||
            cur.off_units != s->off_units)
            continue; /* replaced or removed since */
        uint64_t size = (uint64_t)s->size_units * HC_DISK_SLOT;
        if (cur.hit && size <= budget && hc_disk_reinsert(d, s, r, seq, &cur) == 0) {
            budget -= size;
            HC_DISK_ADD(d, reinserts, 1);
            continue;
        }
        struct hc_dloc old;
        if (hc_dindex_remove(d->ix, s->hash, &at, &old)) {
            HC_DISK_ADD(d, used, -(int64_t)old.size_units * HC_DISK_SLOT);
            evicted++;
        }
    }
    HC_DISK_ADD(d, evictions, evicted);
    free(sums);
}

/* The reclaimer thread: keep HC_DISK_CLEAN_TARGET regions free, oldest first. */
void *hc_disk_reclaimer(void *arg)
{
    struct hc_disk *d = arg;

    pthread_mutex_lock(&d->lock);
    while (!d->stop) {
        if (d->nfree >= HC_DISK_CLEAN_TARGET || d->fifo_len == 0 ||
            d->regions[d->fifo[d->fifo_head]].state != HC_DISK_R_CLEAN) {
            pthread_cond_wait(&d->cond, &d->lock);
            continue;
        }
        uint32_t r = d->fifo[d->fifo_head];
        d->fifo_head = (d->fifo_head + 1) % d->region_count;
        d->fifo_len--;
        d->regions[r].state = HC_DISK_R_RECLAIMING;
        uint64_t seq = atomic_load_explicit(&d->regions[r].seq, memory_order_relaxed);
        pthread_mutex_unlock(&d->lock);

        hc_disk_reclaim(d, r, seq);

        pthread_mutex_lock(&d->lock);
        atomic_store_explicit(&d->regions[r].seq, 0, memory_order_release);
        d->regions[r].state = HC_DISK_R_FREE;
        d->free_ids[d->nfree++] = r;
        pthread_cond_broadcast(&d->cond);
    }
    pthread_mutex_unlock(&d->lock);
    return NULL;
}

int hc_disk_flush(struct hc_disk *d)
{
    struct hc_disk_wbuf *sealed = NULL;
    uint64_t errs;

    if (!d)
        return -EINVAL;
    errs = HC_DISK_GET(d, write_errors);
    pthread_mutex_lock(&d->lock);
    if (d->cur && d->cur->nent > 0)
        sealed = hc_disk_seal(d);
    pthread_mutex_unlock(&d->lock);
    if (sealed)
        hc_disk_wbuf_submit(d, sealed);
    pthread_mutex_lock(&d->lock);
    while (d->writes_inflight > 0)
        pthread_cond_wait(&d->cond, &d->lock);
    pthread_mutex_unlock(&d->lock);
    int rc = dev_flush(d->dev);
    if (rc == 0 && HC_DISK_GET(d, write_errors) != errs)
        rc = -EIO;
    return rc;
}

uint64_t hc_disk_mem_max(const struct hc_disk *d)
{
    return (uint64_t)d->wbufs_max * d->region_size + (uint64_t)d->read_bufs_max * d->read_buf_len;
}

/* Free the engine, index and tables and @d itself; the device stays open (hc_disk_close
 * closes it after, offline users keep it). NULL is fine. */

void hc_disk_get_stats(struct hc_disk *d, struct hc_disk_stats *st)
{
    uint64_t ix_bytes;

    memset(st, 0, sizeof(*st));
    if (!d)
        return;
    st->engine = ioeng_name(d->eng);
    st->blockdev = d->dev->is_blockdev;
    st->hits = HC_DISK_GET(d, hits);
    st->misses = HC_DISK_GET(d, misses);
    st->inserts = HC_DISK_GET(d, inserts);
    st->evictions = HC_DISK_GET(d, evictions);
    st->reinserts = HC_DISK_GET(d, reinserts);
    st->bytes_read = HC_DISK_GET(d, bytes_read);
    st->bytes_written = HC_DISK_GET(d, bytes_written);
    st->read_errors = HC_DISK_GET(d, read_errors);
    st->write_errors = HC_DISK_GET(d, write_errors);
    st->checksum_failures = HC_DISK_GET(d, checksum_failures);
    st->admission_drops = HC_DISK_GET(d, admission_drops);
    st->compressed_blocks = HC_DISK_GET(d, compressed_blocks);
    st->compressed_saved_bytes = HC_DISK_GET(d, compressed_saved_bytes);
    st->partial_hits = HC_DISK_GET(d, partial_hits);
    st->partial_bytes = HC_DISK_GET(d, partial_bytes);
    int64_t used = HC_DISK_GET(d, used);
    st->used = used > 0 ? (uint64_t)used : 0;
    st->capacity = (uint64_t)d->region_count * d->region_size;
    st->region_size = d->region_size;
    hc_dindex_usage(d->ix, &st->entries, &ix_bytes);
    /* The region table is index overhead too: count it in bytes per entry. */
    st->index_bytes =
        ix_bytes +
        (uint64_t)d->region_count * (sizeof(*d->regions) + sizeof(*d->fifo) + sizeof(*d->free_ids));
    st->recovered_entries = d->recovered_entries;
    st->recovery_ns = d->recovery_ns;
}

int hc_disk_debug_locate(struct hc_disk *d, uint64_t hash, uint64_t *dev_off, uint32_t *len)
{
    struct hc_dloc loc;
    if (!hc_dindex_get(d->ix, hash, false, &loc))
        return -ENOENT;
    *dev_off = hc_disk_region_off(d, loc.region) + (uint64_t)loc.off_units * HC_DISK_SLOT;
    *len = loc.size_units * HC_DISK_SLOT;
    return 0;
}

#ifdef TIERFS_DEBUG
#include <stdio.h>
/* Checked whatever NDEBUG says: a debug build may also define NDEBUG (RelWithDebInfo with
 * TIERFS_DEBUG, as the fuzz targets build), and a check that compiles away is no check. */
#define HC_DISK_INVARIANT(c) ((c) ? (void)0 : hc_disk_invariant_failed(#c, __LINE__))

static _Noreturn void hc_disk_invariant_failed(const char *what, int line)
{
    fprintf(stderr, "hybridcache/disk.c:%d: invariant failed: %s\n", line, what);
    abort();
}

void hc_disk_check_invariants(struct hc_disk *d)
{
    uint32_t counts[HC_DISK_R_RECLAIMING + 1] = {0}, bufs = 0;

    pthread_mutex_lock(&d->lock);
    for (uint32_t r = 0; r < d->region_count; r++) {
        const struct hc_disk_region *g = &d->regions[r];
        counts[g->state]++;
        HC_DISK_INVARIANT((g->wb != NULL) ==
                          (g->state == HC_DISK_R_FILLING || g->state == HC_DISK_R_FLUSHING));
        bufs += g->wb != NULL;
        if (g->state == HC_DISK_R_FREE)
            HC_DISK_INVARIANT(atomic_load(&g->seq) == 0);
    }
    HC_DISK_INVARIANT(counts[HC_DISK_R_FREE] == d->nfree);
    HC_DISK_INVARIANT(counts[HC_DISK_R_FILLING] == (d->cur ? 1u : 0u));
    HC_DISK_INVARIANT(counts[HC_DISK_R_FLUSHING] + counts[HC_DISK_R_CLEAN] == d->fifo_len);
    HC_DISK_INVARIANT(bufs == d->wbufs && d->wbufs + d->nwfree <= d->wbufs_max);
    HC_DISK_INVARIANT(d->reads_inflight + d->nrfree <= d->read_bufs_max);
    uint64_t prev = 0;
    for (uint32_t i = 0; i < d->fifo_len; i++) {
        uint64_t s = atomic_load(&d->regions[d->fifo[(d->fifo_head + i) % d->region_count]].seq);
        HC_DISK_INVARIANT(s > prev && s < d->next_seq);
        prev = s;
    }
    pthread_mutex_unlock(&d->lock);
    hc_dindex_check_invariants(d->ix);
}
#endif
