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
 * or clears a cache offline through the hc_disk_inspect/verify/wipe functions at the end of
 * this file, which reuse the header, summary and entry checks above.
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
#include <lz4.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "ioengine/ioengine.h"

#define HC_DISK_REGION_DEFAULT (16u << 20)
#define HC_DISK_REGION_MAX (512u << 20)     /* offsets are 20 bits of HC_DISK_SLOT */
#define HC_DISK_MIN_REGIONS 3u              /* one filling, one in flight, one to reclaim */
#define HC_DISK_CLEAN_TARGET 2u             /* free regions the reclaimer keeps ready */
#define HC_DISK_TAIL_READ 4096u             /* first read of a region's tail at recovery */
#define HC_DISK_ONE_WRITE_GAP (1u << 20)    /* write a sealed region whole if the hole is smaller */
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
    uint8_t *buf;                 /* region_size bytes from ioeng_buf_alloc */
    uint32_t region;
    uint32_t wp;                  /* next entry offset; protected by d->lock */
    uint32_t nent;                /* summary records; protected by d->lock */
    int parts_left;               /* write requests in flight; protected by d->lock */
    int err;                      /* first write error; protected by d->lock */
    struct ioeng_req req[2];
    struct hc_disk_wbuf *next_free; /* d->wfree; protected by d->lock */
};

struct hc_disk_region {
    _Atomic uint64_t seq;         /* fill sequence; 0 = nothing valid; stored under d->lock */
    struct hc_disk_wbuf *wb;      /* protected by d->lock */
    uint8_t state;                /* enum hc_disk_rstate; protected by d->lock */
};

/* A lookup that reads the device. */
struct hc_disk_rd {
    struct ioeng_req req;
    struct hc_disk *d;
    struct hc_disk_rd *next;      /* pending list; protected by d->lock */
    uint64_t hash, seq;
    struct hc_dloc loc;
    uint32_t skip;                /* entry offset inside the read buffer */
    bool partial;                 /* hc_disk_lookup_range: header part + covering chunks */
    uint32_t off, len;            /* partial: the value range asked for */
    uint32_t vskip;               /* partial: where chunk off / HC_DISK_CHUNK is in rbuf */
    uint32_t vhave;               /* partial: bytes readable there */
    uint32_t hhave;               /* partial: bytes of entry readable at skip */
    _Atomic int parts;            /* partial: requests not yet completed */
    _Atomic int err;              /* partial: the first request's error */
    struct ioeng_req req2;        /* partial: the chunks when apart from the header */
    void *rbuf;                   /* read_buf_len bytes from d->rfree or new; NULL until
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
    uint32_t max_entry;           /* bytes of the largest possible entry, slot aligned */
    uint32_t table_len;           /* bytes of a chunk table: hc_disk_table_bytes(block_size) */
    uint32_t wbufs_max;
    uint64_t data_off, generation;
    uint32_t read_bufs_max;       /* io_depth: lookup reads (and read buffers) at once */
    uint32_t read_buf_len;        /* bytes of a read buffer: the largest aligned entry read */
    bool compression;
    bool refuse_unknown;       /* conf->refuse_unknown */

    pthread_mutex_t lock;         /* the region lock: taken before index shard locks */
    pthread_cond_t cond;          /* writes done, regions freed, reads drained, stop */
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
    bool stop;                    /* d->lock */
    bool reclaimer_started;
    pthread_t reclaimer;

    struct hc_disk_counters c;
    uint64_t recovered_entries, recovery_ns;
};

static struct tlog_ratelimit hc_disk_rl = { .interval_ms = 10000, .burst = 5 };

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

/* ---- on-device records ---- */

static uint32_t hc_disk_ehdr_crc(const struct hc_disk_ehdr *h)
{
    struct hc_disk_ehdr t = *h;
    t.hdr_crc = 0;
    return cmn_crc32c(0, &t, sizeof(t));
}

static uint32_t hc_disk_footer_crc(const struct hc_disk_footer *f)
{
    struct hc_disk_footer t = *f;
    t.footer_crc = 0;
    return cmn_crc32c(0, &t, sizeof(t));
}

static uint32_t hc_disk_hdr_crc(const struct hc_disk_hdr *h)
{
    struct hc_disk_hdr t = *h;
    t.hdr_crc = 0;
    return cmn_crc32c(0, &t, sizeof(t));
}

/* Summary record @i (append order) of a region whose footer is at region_size - FOOTER. */
static inline uint32_t hc_disk_sum_off(const struct hc_disk *d, uint32_t i)
{
    return d->region_size - HC_DISK_FOOTER_BYTES - (i + 1) * HC_DISK_SUM_BYTES;
}

/* Is @h's chunk table what this cache writes: none, or HC_DISK_CHUNK-byte chunks with the
 * cache's table room, for an uncompressed value of more than one chunk? */
static bool hc_disk_table_ok(const struct hc_disk *d, const struct hc_disk_ehdr *h)
{
    if (!h->chunk_size)
        return h->table_len == 0;
    return h->chunk_size == HC_DISK_CHUNK && h->table_len == d->table_len &&
           !(h->flags & HC_DISK_EF_COMPRESSED) && h->stored_len > HC_DISK_CHUNK &&
           h->orig_len == h->stored_len;
}

/* Chunks of a @len-byte value (0 without a table). */
static inline uint32_t hc_disk_nchunks(uint32_t len)
{
    return (len + HC_DISK_CHUNK - 1) / HC_DISK_CHUNK;
}

/* Do chunks [@c0, @c1) of a @len-byte value, read to @vc0 (chunk c0's first byte), match
 * the crcs in @table? */
static bool hc_disk_chunks_ok(const uint8_t *table, const uint8_t *vc0, uint32_t len, uint32_t c0,
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
static int hc_disk_entry_verify(const struct hc_disk *d, const uint8_t *p, size_t avail,
                                uint64_t seq, uint64_t hash, const void *key, size_t klen,
                                bool check_data, struct hc_disk_ehdr *h)
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
        return -ENOENT;  /* a 64-bit hash collision */
    return 0;
}

/* Copy or decompress the verified entry at @p into @buf. @return value bytes or -errno. */
static ssize_t hc_disk_entry_decode(const uint8_t *p, const struct hc_disk_ehdr *h, void *buf,
                                    size_t cap)
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

/* ---- region buffers and writes ---- */

static void hc_disk_wbuf_free(struct hc_disk *d, struct hc_disk_wbuf *wb)
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
        struct hc_dloc at = { .region = wb->region, .off_units = s.off_units };
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
        tlog_rl_msg(&hc_disk_rl, TLOG_ERR, "disk cache: writing region %u: %s; its %u entries dropped",
                    wb->region, strerror(-wb->err), wb->nent);
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
        wb->req[0] = (struct ioeng_req){ .op = IOENG_WRITE, .buf = wb->buf,
                                         .len = d->region_size, .off = base };
    } else {
        memset(wb->buf + wb->wp, 0, data_end - wb->wp);
        memset(wb->buf + tail_start, 0, sum_start - tail_start);
        wb->req[0] = (struct ioeng_req){ .op = IOENG_WRITE, .buf = wb->buf, .len = data_end,
                                         .off = base };
        wb->req[1] = (struct ioeng_req){ .op = IOENG_WRITE, .buf = wb->buf + tail_start,
                                         .len = d->region_size - tail_start,
                                         .off = base + tail_start };
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
        pthread_cond_broadcast(&d->cond);  /* wake the reclaimer */
        return -EAGAIN;
    }
    struct hc_disk_wbuf *wb = d->wfree;
    if (wb) {
        /* Reuse an idle buffer (already charged); the old bytes are overwritten or
         * zeroed before they reach the device, as for a fresh buffer. */
        uint8_t *buf = wb->buf;
        d->wfree = wb->next_free;
        d->nwfree--;
        *wb = (struct hc_disk_wbuf){ .buf = buf };
    } else {
        wb = calloc(1, sizeof(*wb));
        if (!wb)
            return -ENOMEM;
        wb->buf = ioeng_buf_alloc(d->region_size);
        if (!wb->buf) {
            free(wb);
            return -ENOMEM;
        }
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
    const void *val;              /* stored form (compressed when flags say so) */
    uint32_t stored_len, orig_len, flags;
    uint32_t data_crc;            /* as struct hc_disk_ehdr's */
    const void *table;            /* chunk crcs (chunk_size != 0), table_len bytes */
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
    if (wb && (uint64_t)wb->wp + size + (wb->nent + 1ull) * HC_DISK_SUM_BYTES +
                      HC_DISK_FOOTER_BYTES > d->region_size) {
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

    struct hc_dloc loc = { .region = wb->region, .off_units = wb->wp / HC_DISK_SLOT,
                           .size_units = size / HC_DISK_SLOT };
    struct hc_disk_sum s = { .hash = rec->hash, .off_units = loc.off_units,
                             .size_units = loc.size_units };
    if (rec->flags & HC_DISK_EF_TOMBSTONE) {
        s.size_units |= HC_DISK_SUM_TOMBSTONE;
    } else if (from) {
        if (!hc_dindex_move(d->ix, rec->hash, from, &loc))
            return -ENOENT;  /* nothing was committed: wp/nent unchanged */
        HC_DISK_ADD(d, used, (int64_t)size - (int64_t)from->size_units * HC_DISK_SLOT);
    } else {
        struct hc_dloc old;
        rc = hc_dindex_put(d->ix, rec->hash, &loc, &old);
        if (rc < 0)
            return rc;
        HC_DISK_ADD(d, used, (int64_t)size - (rc == 1 ? (int64_t)old.size_units * HC_DISK_SLOT : 0));
    }
    memcpy(wb->buf + hc_disk_sum_off(d, wb->nent), &s, sizeof(s));
    wb->nent++;
    wb->wp += size;
    return 0;
}

/* ---- public: inserts and removes ---- */

int hc_disk_insert(struct hc_disk *d, uint64_t hash, const void *key, size_t klen,
                   const void *data, size_t len)
{
    struct hc_disk_rec rec = { .hash = hash, .key = key, .klen = klen, .val = data,
                               .stored_len = (uint32_t)len, .orig_len = (uint32_t)len };
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

    pthread_mutex_lock(&d->lock);
    rc = hc_disk_append(d, &rec, NULL, &sealed);
    pthread_mutex_unlock(&d->lock);
    if (sealed)
        hc_disk_wbuf_submit(d, sealed);

    if (rc == -EAGAIN) {
        HC_DISK_ADD(d, admission_drops, 1);
    } else if (rc == 0) {
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
    struct hc_disk_rec rec = { .hash = hash, .key = key, .klen = klen,
                               .flags = HC_DISK_EF_TOMBSTONE };
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

/* ---- public: lookups ---- */

/* Finish a lookup: count it and tell the caller. */
static void hc_disk_lookup_finish(struct hc_disk *d, ssize_t rc, hc_disk_done_fn done, void *arg)
{
    if (rc >= 0) {
        HC_DISK_ADD(d, hits, 1);
        HC_DISK_ADD(d, bytes_read, (uint64_t)rc);
    } else {
        HC_DISK_ADD(d, misses, 1);
    }
    done(rc, arg);
}

static void hc_disk_read_done(struct ioeng_req *req);
static int hc_disk_read_queue(struct hc_disk *d, struct hc_disk_rd *rd);
static int hc_disk_part_start(struct hc_disk *d, struct hc_disk_rd *rd);

/* Start the read of @rd into its buffer (taken from d->rfree when the read was admitted,
 * else allocated and charged here). Called without d->lock; a read slot already taken.
 * @return 0 or -errno (then the caller completes the lookup and releases the slot, which
 * keeps the buffer). */
static int hc_disk_read_start(struct hc_disk *d, struct hc_disk_rd *rd)
{
    uint64_t off = hc_disk_region_off(d, rd->loc.region) + (uint64_t)rd->loc.off_units * HC_DISK_SLOT;
    uint64_t start = off & ~(uint64_t)(d->align - 1);
    uint64_t end = CMN_ALIGN_UP(off + (uint64_t)rd->loc.size_units * HC_DISK_SLOT, (uint64_t)d->align);

    if (end - start > d->read_buf_len)
        return -EIO;  /* cannot happen: index sizes are checked against max_entry */
    if (!rd->rbuf) {
        rd->rbuf = ioeng_buf_alloc(d->read_buf_len);
        if (!rd->rbuf)
            return -ENOMEM;
        hc_disk_charge(d, d->read_buf_len);
    }
    if (rd->partial)
        return hc_disk_part_start(d, rd);
    rd->skip = (uint32_t)(off - start);
    rd->req = (struct ioeng_req){ .op = IOENG_READ, .buf = rd->rbuf, .len = end - start,
                                  .off = start, .done = hc_disk_read_done, .arg = rd };
    return ioeng_submit(d->eng, &rd->req);
}

/* Take a read slot for @rd, with an idle buffer when there is one. Under d->lock. */
static void hc_disk_read_admit(struct hc_disk *d, struct hc_disk_rd *rd)
{
    d->reads_inflight++;
    rd->rbuf = d->nrfree ? d->rfree[--d->nrfree] : NULL;
}

/* Give back @rd's read slot and buffer, then start pending lookups that now have a slot.
 * Takes d->lock. */
static void hc_disk_read_release(struct hc_disk *d, struct hc_disk_rd *rd)
{
    struct hc_disk_rd *start = NULL, **tail = &start;

    pthread_mutex_lock(&d->lock);
    if (rd->rbuf) {
        d->rfree[d->nrfree++] = rd->rbuf;
        rd->rbuf = NULL;
    }
    d->reads_inflight--;
    while (d->pend_head && d->reads_inflight < d->read_bufs_max) {
        struct hc_disk_rd *p = d->pend_head;
        d->pend_head = p->next;
        if (!d->pend_head)
            d->pend_tail = NULL;
        hc_disk_read_admit(d, p);
        p->next = NULL;
        *tail = p;
        tail = &p->next;
    }
    pthread_cond_broadcast(&d->cond);
    pthread_mutex_unlock(&d->lock);

    while (start) {
        struct hc_disk_rd *p = start;
        start = p->next;
        int rc = hc_disk_read_start(d, p);
        if (rc < 0) {
            hc_disk_lookup_finish(d, rc == -ENOMEM ? -ENOMEM : -EIO, p->done, p->arg);
            hc_disk_read_release(d, p);
            free(p);
        }
    }
}

/* A lookup read failed with @err: count it and stop serving the entry (the device may
 * have lost it). */
static void hc_disk_read_failed(struct hc_disk *d, const struct hc_disk_rd *rd, int err)
{
    HC_DISK_ADD(d, read_errors, 1);
    tlog_rl_msg(&hc_disk_rl, TLOG_ERR, "disk cache: reading region %u: %s", rd->loc.region,
                strerror(-err));
    hc_dindex_remove(d->ix, rd->hash, &rd->loc, NULL);
}

/* Completion of a lookup read (engine thread): verify, copy out, tell the caller. */
static void hc_disk_read_done(struct ioeng_req *req)
{
    struct hc_disk_rd *rd = req->arg;
    struct hc_disk *d = rd->d;
    struct hc_disk_ehdr h;
    ssize_t rc = req->result;

    if (rc < 0) {
        hc_disk_read_failed(d, rd, (int)rc);
    } else {
        const uint8_t *p = (const uint8_t *)req->buf + rd->skip;
        rc = hc_disk_entry_verify(d, p, req->len - rd->skip, rd->seq, rd->hash, rd->key,
                                  rd->klen, true, &h);
        if (rc == 0)
            rc = hc_disk_entry_decode(p, &h, rd->ubuf, rd->cap);
        if (rc == -EBADMSG) {
            HC_DISK_ADD(d, checksum_failures, 1);
            struct hc_dloc old;
            if (hc_dindex_remove(d->ix, rd->hash, &rd->loc, &old))
                HC_DISK_ADD(d, used, -(int64_t)old.size_units * HC_DISK_SLOT);
            rc = -ENOENT;
        }
    }
    hc_disk_lookup_finish(d, rc, rd->done, rd->arg);
    hc_disk_read_release(d, rd);
    free(rd);
}

int hc_disk_lookup(struct hc_disk *d, uint64_t hash, const void *key, size_t klen, void *buf,
                   size_t cap, hc_disk_done_fn done, void *arg)
{
    struct hc_dloc loc;
    struct hc_disk_ehdr h;
    ssize_t rc;

    if (!d || !done || (!key && klen))
        return -EINVAL;
    if (!hc_dindex_get(d->ix, hash, true, &loc)) {
        HC_DISK_ADD(d, misses, 1);
        return -ENOENT;
    }
    struct hc_disk_region *r = &d->regions[loc.region];
    /*
     * Read the fill sequence after the index: if the region is reclaimed and refilled in
     * between, the entry read below carries another sequence (a miss) or is this very key
     * written again (the right bytes).
     */
    uint64_t seq = atomic_load_explicit(&r->seq, memory_order_acquire);
    if (seq == 0) {
        HC_DISK_ADD(d, misses, 1);
        return -ENOENT;
    }

    /* Still in memory: copy from the region buffer under the lock (no IO). The caller's
     * done runs before this returns. */
    pthread_mutex_lock(&d->lock);
    if (r->wb && atomic_load_explicit(&r->seq, memory_order_relaxed) == seq) {
        const uint8_t *p = r->wb->buf + (size_t)loc.off_units * HC_DISK_SLOT;
        rc = hc_disk_entry_verify(d, p, (size_t)loc.size_units * HC_DISK_SLOT, seq, hash, key,
                                  klen, false, &h);
        if (rc == 0)
            rc = hc_disk_entry_decode(p, &h, buf, cap);
        pthread_mutex_unlock(&d->lock);
        if (rc == -EBADMSG)
            rc = -ENOENT;  /* cannot happen to bytes that never left memory; a miss anyway */
        hc_disk_lookup_finish(d, rc, done, arg);
        return 0;
    }
    pthread_mutex_unlock(&d->lock);

    struct hc_disk_rd *rd = malloc(sizeof(*rd) + klen);
    if (!rd)
        return -ENOMEM;
    *rd = (struct hc_disk_rd){ .d = d, .hash = hash, .seq = seq, .loc = loc, .ubuf = buf,
                               .cap = cap, .done = done, .arg = arg, .klen = klen };
    memcpy(rd->key, key, klen);
    return hc_disk_read_queue(d, rd);
}

/* Start @rd's read now, or queue it when every read slot is taken. @rd is the disk's from
 * here, failure included. @return 0 (done will be called) or -errno (it will not). */
static int hc_disk_read_queue(struct hc_disk *d, struct hc_disk_rd *rd)
{
    int rc;

    /* Bound the read buffers: with every slot taken the lookup waits for a read to finish. */
    pthread_mutex_lock(&d->lock);
    if (d->reads_inflight >= d->read_bufs_max) {
        if (d->pend_tail)
            d->pend_tail->next = rd;
        else
            d->pend_head = rd;
        d->pend_tail = rd;
        pthread_mutex_unlock(&d->lock);
        return 0;
    }
    hc_disk_read_admit(d, rd);
    pthread_mutex_unlock(&d->lock);

    rc = hc_disk_read_start(d, rd);
    if (rc < 0) {
        hc_disk_read_release(d, rd);
        free(rd);
        return rc;
    }
    return 0;
}

/* ---- public: partial lookups (chunk checksums) ---- */

/*
 * Verify a partial read and copy the chunks covering value bytes [@off, @off + @len) to
 * @buf: @hp is the entry (@havail bytes of header, key and table readable), @vc0 the
 * first covering chunk as read (@vavail bytes readable). The caller placed @vc0 where the
 * header will say the value starts, assuming a chunk table; the header is checked first.
 * @return bytes copied (0 when the value ends before @off); -EOPNOTSUPP when the entry has
 * no chunk table (compressed or small: read it whole); -ENOENT for another entry; -EBADMSG
 * when the header or table is corrupt; -EILSEQ when a chunk read is (the entry stays:
 * other chunks may be fine, and a whole read of it fails and drops it).
 */
static ssize_t hc_disk_part_decode(const struct hc_disk *d, const uint8_t *hp, size_t havail,
                                   const uint8_t *vc0, size_t vavail, uint64_t seq,
                                   uint64_t hash, const void *key, size_t klen, uint32_t off,
                                   uint32_t len, void *buf, size_t cap)
{
    struct hc_disk_ehdr h;

    if (havail < HC_DISK_EHDR_BYTES)
        return -EBADMSG;
    memcpy(&h, hp, sizeof(h));
    if (h.magic != HC_DISK_ENTRY_MAGIC || h.hdr_crc != hc_disk_ehdr_crc(&h))
        return -EBADMSG;
    if (h.generation != d->generation || h.seq != seq || h.hash != hash || h.klen != klen)
        return -ENOENT;
    if ((h.flags & HC_DISK_EF_TOMBSTONE) || h.stored_len > d->block_size ||
        !hc_disk_table_ok(d, &h))
        return -EBADMSG;
    if (!h.chunk_size)
        return -EOPNOTSUPP;
    const uint8_t *k = hp + HC_DISK_EHDR_BYTES;
    uint32_t n = hc_disk_nchunks(h.stored_len);
    if (HC_DISK_EHDR_BYTES + klen + h.table_len > havail)
        return -EBADMSG;
    if (memcmp(k, key, klen) != 0)
        return -ENOENT;
    if (cmn_crc32c(0, k, klen + n * sizeof(uint32_t)) != h.data_crc)
        return -EBADMSG;
    if (off >= h.stored_len)
        return 0;
    uint32_t c0 = off / HC_DISK_CHUNK;
    uint32_t end = CMN_MIN(off + len, h.stored_len);
    uint32_t c1 = hc_disk_nchunks(end);
    uint32_t bytes = CMN_MIN(c1 * HC_DISK_CHUNK, h.stored_len) - c0 * HC_DISK_CHUNK;
    if (bytes > vavail)
        return -EBADMSG;  /* the index's entry size and the header disagree */
    if (bytes > cap)
        return -ENOBUFS;
    if (!hc_disk_chunks_ok(k + klen, vc0, h.stored_len, c0, c1))
        return -EILSEQ;
    memcpy(buf, vc0, bytes);
    return bytes;
}

/* Finish a partial lookup: count it, drop an entry whose header is corrupt or unreadable
 * from the index, tell the caller. */
static void hc_disk_part_finish(struct hc_disk *d, ssize_t rc, uint64_t hash,
                                const struct hc_dloc *loc, hc_disk_done_fn done, void *arg)
{
    struct hc_dloc old;

    if (rc >= 0) {
        HC_DISK_ADD(d, hits, 1);
        HC_DISK_ADD(d, bytes_read, (uint64_t)rc);
        HC_DISK_ADD(d, partial_hits, 1);
        HC_DISK_ADD(d, partial_bytes, (uint64_t)rc);
    } else if (rc == -EBADMSG || rc == -EILSEQ) {
        HC_DISK_ADD(d, checksum_failures, 1);
        if (rc == -EBADMSG && loc && hc_dindex_remove(d->ix, hash, loc, &old))
            HC_DISK_ADD(d, used, -(int64_t)old.size_units * HC_DISK_SLOT);
        rc = -ENOENT;
    }
    /* Misses are not counted here: the caller's whole-value lookup that follows counts it. */
    done(rc, arg);
}

/* Completion of one request of a partial read (engine thread); the last one verifies. */
static void hc_disk_part_done(struct ioeng_req *req)
{
    struct hc_disk_rd *rd = req->arg;
    struct hc_disk *d = rd->d;
    ssize_t rc;

    if (req->result < 0) {
        int zero = 0;
        atomic_compare_exchange_strong(&rd->err, &zero, (int)req->result);
    }
    if (atomic_fetch_sub_explicit(&rd->parts, 1, memory_order_acq_rel) != 1)
        return;
    rc = atomic_load(&rd->err);
    if (rc < 0) {
        hc_disk_read_failed(d, rd, (int)rc);
    } else {
        const uint8_t *b = rd->rbuf;
        rc = hc_disk_part_decode(d, b + rd->skip, rd->hhave, b + rd->vskip, rd->vhave, rd->seq,
                                 rd->hash, rd->key, rd->klen, rd->off, rd->len, rd->ubuf,
                                 rd->cap);
    }
    hc_disk_part_finish(d, rc, rd->hash, &rd->loc, rd->done, rd->arg);
    hc_disk_read_release(d, rd);
    free(rd);
}

/*
 * Start a partial read (a read slot and buffer taken): the entry's header, key and table,
 * and the chunks covering [rd->off, rd->off + rd->len) where they lie when the entry has a
 * table, as one request when they touch, else two submitted together. Both are bounded by
 * the entry's size in the index. Called without d->lock. @return 0 (hc_disk_part_done
 * will finish it) or -errno (nothing was submitted).
 */
static int hc_disk_part_start(struct hc_disk *d, struct hc_disk_rd *rd)
{
    uint64_t eoff = hc_disk_region_off(d, rd->loc.region) + (uint64_t)rd->loc.off_units * HC_DISK_SLOT;
    uint64_t eend = eoff + (uint64_t)rd->loc.size_units * HC_DISK_SLOT;
    uint64_t a = (uint64_t)d->align;
    uint64_t hend = CMN_MIN(eoff + HC_DISK_EHDR_BYTES + rd->klen + d->table_len, eend);
    uint64_t v0 = eoff + HC_DISK_EHDR_BYTES + rd->klen + d->table_len +
                  (uint64_t)(rd->off / HC_DISK_CHUNK) * HC_DISK_CHUNK;
    uint64_t v1 = CMN_MIN(eoff + HC_DISK_EHDR_BYTES + rd->klen + d->table_len +
                              CMN_ALIGN_UP((uint64_t)rd->off + rd->len, (uint64_t)HC_DISK_CHUNK),
                          eend);
    uint64_t hs = eoff & ~(a - 1), he = CMN_ALIGN_UP(hend, a);
    uint64_t vs = v0 & ~(a - 1), ve = CMN_ALIGN_UP(CMN_MAX(v1, v0), a);
    int n = 1;

    rd->skip = (uint32_t)(eoff - hs);
    rd->hhave = (uint32_t)(hend - eoff);
    if (v0 >= v1) {
        /* The value ends before the range (as far as the index says): the header tells. */
        rd->vskip = rd->skip;
        rd->vhave = 0;
        rd->req = (struct ioeng_req){ .op = IOENG_READ, .buf = rd->rbuf, .len = he - hs, .off = hs };
    } else if (vs <= he) {
        rd->vskip = (uint32_t)(v0 - hs);
        rd->vhave = (uint32_t)(v1 - v0);
        rd->req = (struct ioeng_req){ .op = IOENG_READ, .buf = rd->rbuf,
                                      .len = CMN_MAX(he, ve) - hs, .off = hs };
    } else {
        rd->vskip = (uint32_t)(he - hs + (v0 - vs));
        rd->vhave = (uint32_t)(v1 - v0);
        rd->req = (struct ioeng_req){ .op = IOENG_READ, .buf = rd->rbuf, .len = he - hs, .off = hs };
        rd->req2 = (struct ioeng_req){ .op = IOENG_READ, .buf = (uint8_t *)rd->rbuf + (he - hs),
                                       .len = ve - vs, .off = vs };
        n = 2;
    }
    if ((n == 2 ? rd->req.len + rd->req2.len : rd->req.len) > d->read_buf_len)
        return -E2BIG;  /* the caller keeps ranges well below a block */
    atomic_init(&rd->parts, n);
    atomic_init(&rd->err, 0);
    rd->req.done = rd->req2.done = hc_disk_part_done;
    rd->req.arg = rd->req2.arg = rd;
    for (int i = 0; i < n; i++) {
        struct ioeng_req *q = i ? &rd->req2 : &rd->req;
        int rc = ioeng_submit(d->eng, q);
        if (rc < 0) {
            if (i == 0) {
                /* Nothing in flight: the caller fails the lookup. */
                return rc;
            }
            q->result = rc;
            hc_disk_part_done(q);
        }
    }
    return 0;
}

uint32_t hc_disk_range_off(uint32_t off)
{
    return off / HC_DISK_CHUNK * HC_DISK_CHUNK;
}

uint32_t hc_disk_range_cap(uint32_t off, uint32_t len)
{
    return (uint32_t)CMN_ALIGN_UP((uint64_t)off + len, (uint64_t)HC_DISK_CHUNK) - hc_disk_range_off(off);
}

int hc_disk_lookup_range(struct hc_disk *d, uint64_t hash, const void *key, size_t klen,
                         uint32_t off, uint32_t len, void *buf, size_t cap, hc_disk_done_fn done,
                         void *arg)
{
    struct hc_dloc loc;

    if (!d || !done || (!key && klen) || !len || off >= d->block_size)
        return -EINVAL;
    len = CMN_MIN(len, d->block_size - off);
    if (hc_disk_range_cap(off, len) > cap)
        return -ENOBUFS;
    if (!hc_dindex_get(d->ix, hash, true, &loc))
        return -ENOENT;
    struct hc_disk_region *r = &d->regions[loc.region];
    /* As hc_disk_lookup: the sequence after the index, verified against the entry. */
    uint64_t seq = atomic_load_explicit(&r->seq, memory_order_acquire);
    if (seq == 0)
        return -ENOENT;

    pthread_mutex_lock(&d->lock);
    if (r->wb && atomic_load_explicit(&r->seq, memory_order_relaxed) == seq) {
        size_t esz = (size_t)loc.size_units * HC_DISK_SLOT;
        size_t v0 = HC_DISK_EHDR_BYTES + klen + d->table_len + (size_t)(off / HC_DISK_CHUNK) * HC_DISK_CHUNK;
        const uint8_t *p = r->wb->buf + (size_t)loc.off_units * HC_DISK_SLOT;
        ssize_t rc = hc_disk_part_decode(d, p, esz, p + CMN_MIN(v0, esz), v0 < esz ? esz - v0 : 0,
                                         seq, hash, key, klen, off, len, buf, cap);
        pthread_mutex_unlock(&d->lock);
        if (rc == -EBADMSG || rc == -EILSEQ)
            rc = -ENOENT;  /* cannot happen to bytes that never left memory; a miss anyway */
        hc_disk_part_finish(d, rc, hash, NULL, done, arg);
        return 0;
    }
    pthread_mutex_unlock(&d->lock);

    struct hc_disk_rd *rd = malloc(sizeof(*rd) + klen);
    if (!rd)
        return -ENOMEM;
    *rd = (struct hc_disk_rd){ .d = d, .hash = hash, .seq = seq, .loc = loc, .ubuf = buf,
                               .cap = cap, .done = done, .arg = arg, .klen = klen,
                               .partial = true, .off = off, .len = len };
    memcpy(rd->key, key, klen);
    return hc_disk_read_queue(d, rd);
}

/* ---- summaries (recovery and reclaim) ---- */

/* Synchronous aligned read of [@off, @off + @len) into a new buffer (*@out, the caller
 * frees it with ioeng_buf_free). @return 0 or -errno (then nothing is allocated). */
static int hc_disk_pread_alloc(struct hc_disk *d, uint64_t off, size_t len, uint8_t **out)
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
static int hc_disk_read_summary(struct hc_disk *d, uint32_t r, uint64_t expect_seq,
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
static int hc_disk_scan_region(struct hc_disk *d, uint32_t r, struct hc_disk_sum **sums,
                               uint64_t *seq)
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
        (*sums)[n].size_units = size / HC_DISK_SLOT |
                                ((h.flags & HC_DISK_EF_TOMBSTONE) ? HC_DISK_SUM_TOMBSTONE : 0);
        n++;
        off += size;
    }
    ioeng_buf_free(buf);
    *seq = fill;
    return (int)n;
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
    struct hc_disk_rec rec = { .hash = h.hash, .key = p + HC_DISK_EHDR_BYTES, .klen = h.klen,
                               .val = p + HC_DISK_EHDR_BYTES + h.klen + h.table_len,
                               .stored_len = h.stored_len, .orig_len = h.orig_len,
                               .flags = h.flags, .data_crc = h.data_crc,
                               .table = p + HC_DISK_EHDR_BYTES + h.klen,
                               .chunk_size = h.chunk_size, .table_len = h.table_len };
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
    int n = hc_disk_read_summary(d, r, seq, &sums, &(uint64_t){ 0 });

    if (n < 0) {
        /* No usable summary (write error, device error): sweep the index instead. */
        evicted = hc_dindex_drop_region(d->ix, r, &bytes);
        HC_DISK_ADD(d, used, -(int64_t)bytes);
        HC_DISK_ADD(d, evictions, evicted);
        return;
    }
    for (int i = 0; i < n; i++) {
        const struct hc_disk_sum *s = &sums[i];
        struct hc_dloc at = { .region = r, .off_units = s->off_units }, cur;
        if (s->size_units & HC_DISK_SUM_TOMBSTONE)
            continue;
        if (!hc_dindex_get(d->ix, s->hash, false, &cur) || cur.region != r ||
            cur.off_units != s->off_units)
            continue;  /* replaced or removed since */
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
static void *hc_disk_reclaimer(void *arg)
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

/* ---- header, format, recovery ---- */

/* A random generation, never 0 and never @old. */
static uint64_t hc_disk_new_generation(uint64_t old)
{
    uint64_t g;
    do {
        uint64_t st = cmn_wall_ns() ^ ((uint64_t)getpid() << 32) ^ cmn_now_ns();
        g = cmn_rand64(&(uint64_t){ st ? st : 1 });
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
static enum hc_disk_kind hc_disk_hdr_kind(const uint8_t *buf, struct hc_disk_hdr *h)
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
    bool footer_ok;               /* from a verified summary, not a header scan */
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
static int hc_disk_recover(struct hc_disk *d)
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
        recs[nrec++] = (struct hc_disk_recrec){ .seq = seq, .region = r, .n = n,
                                                .footer_ok = footer_ok, .sums = sums };
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
            struct hc_dloc loc = { .region = rr->region, .off_units = s->off_units,
                                   .size_units = s->size_units & ~HC_DISK_SUM_TOMBSTONE }, old;
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
            HC_DISK_ADD(d, used, (int64_t)loc.size_units * HC_DISK_SLOT -
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
    uint32_t max_entry = hc_disk_entry_size(HC_KEY_MAX, hc_disk_table_bytes(block_size), block_size);

    return (uint64_t)max_entry + HC_DISK_SUM_BYTES + HC_DISK_FOOTER_BYTES;
}

/* The default region size: HC_DISK_REGION_DEFAULT, doubled until two largest entries fit. */
static uint64_t hc_disk_region_auto(uint32_t block_size)
{
    uint64_t need = hc_disk_region_need(block_size), rs = HC_DISK_REGION_DEFAULT;

    while (rs < 2 * need)
        rs *= 2;
    return rs;
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
    uint64_t rs = conf->region_size ? conf->region_size : hc_disk_region_auto(d->block_size);
    if (rs % d->align || rs % IOENG_BUF_ALIGN || rs < need || rs > HC_DISK_REGION_MAX) {
        TLOG_E("disk cache: region size %llu must be a multiple of %u, at least %llu and at "
               "most %u", (unsigned long long)rs, CMN_MAX(d->align, (uint32_t)IOENG_BUF_ALIGN),
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
        TLOG_E("disk cache: %llu MiB is too small: the disk tier needs %u regions of %llu MiB "
               "(at least %llu MiB in all)",
               (unsigned long long)(cap >> 20), HC_DISK_MIN_REGIONS,
               (unsigned long long)(rs >> 20),
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
    struct ioeng_conf ec = { .queue_depth = conf->io_depth };
    rc = ioeng_create(conf->io_engine ? conf->io_engine : "uring", d->dev, &ec, &d->eng);
    if (rc < 0)
        goto fail_dev;
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
                   "cached data is dropped", why, d->region_count, d->region_size >> 10,
                   identity);
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
static void hc_disk_free(struct hc_disk *d)
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
    hc_disk_free(d);  /* the engine goes before the device it reads */
    dev_close(dev);
}

void hc_disk_get_stats(struct hc_disk *d, struct hc_disk_stats *st)
{
    uint64_t ix_bytes;

    memset(st, 0, sizeof(*st));
    if (!d)
        return;
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
    hc_dindex_usage(d->ix, &st->entries, &ix_bytes);
    /* The region table is index overhead too: count it in bytes per entry. */
    st->index_bytes = ix_bytes + (uint64_t)d->region_count *
                                     (sizeof(*d->regions) + sizeof(*d->fifo) + sizeof(*d->free_ids));
    st->recovered_entries = d->recovered_entries;
    st->recovery_ns = d->recovery_ns;
}

/* ---- offline access for tools (disk_i.h) ---- */

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
    case HC_DISK_KIND_CACHE: return "tierfs cache";
    case HC_DISK_KIND_EMPTY: return "empty (all zero)";
    case HC_DISK_KIND_UNKNOWN: return "unknown data";
    case HC_DISK_KIND_CORRUPT: return "tierfs cache with a corrupt header";
    case HC_DISK_KIND_VERSION: return "tierfs cache of another format version";
    case HC_DISK_KIND_LAYOUT: return "tierfs cache header that does not fit the device";
    }
    return "?";
}

/* Bytes at the start of @dev that hold the header, rounded to the device's IO size. */
static uint32_t hc_disk_hdr_span(const struct dev *dev)
{
    return CMN_ALIGN_UP((uint32_t)sizeof(struct hc_disk_hdr), CMN_MAX(dev_align(dev), HC_DISK_SLOT));
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
    struct ioeng_conf ec = { .queue_depth = 4 };
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
        info->kind = HC_DISK_KIND_UNKNOWN;  /* too small to hold a header */
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
    struct hc_disk_ventry ve = { .region = r, .offset = s->off_units * HC_DISK_SLOT,
                                 .dev_off = off, .size = size };
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
        rc = hc_disk_entry_verify(d, p, avail, seq, s->hash, p + HC_DISK_EHDR_BYTES, h.klen,
                                  false, &h);
    if (rc < 0) {
        ve.status = -EBADMSG;
        ve.why = rc == -ENOENT ? "entry of another fill (torn region write)"
                               : "entry header corrupt";
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
                continue;  /* a tombstone, or replaced by a later copy: never served */
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
    if (inf.kind == HC_DISK_KIND_EMPTY || (inf.kind == HC_DISK_KIND_UNKNOWN && !force) ||
        !hdr) {
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
    uint32_t counts[HC_DISK_R_RECLAIMING + 1] = { 0 }, bufs = 0;

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
