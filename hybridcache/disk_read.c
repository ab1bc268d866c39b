/* SPDX-License-Identifier: Apache-2.0 */
/*
 * disk_read.c: lookups of the disk tier: whole entries (hc_disk_lookup) and ranges that
 * read and verify only the chunks they cover (hc_disk_lookup_range), on a bounded number of
 * read slots. The format is in disk_i.h, the design and the invariants in disk.c.
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

/* Used before they are defined: the whole and the partial path share the read slots. */
static struct hc_disk_rd *hc_disk_rd_new(struct hc_disk *d, uint64_t hash, uint64_t seq,
                                         const struct hc_dloc *loc, const void *key, size_t klen,
                                         void *buf, size_t cap, hc_disk_done_fn done, void *arg);
static int hc_disk_read_queue(struct hc_disk *d, struct hc_disk_rd *rd);
static void hc_disk_read_failed(struct hc_disk *d, const struct hc_disk_rd *rd, int err);
static void hc_disk_read_release(struct hc_disk *d, struct hc_disk_rd *rd);
static int hc_disk_part_start(struct hc_disk *d, struct hc_disk_rd *rd);
static void hc_disk_read_done(struct ioeng_req *req);

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

/* Start the read of @rd into its buffer (taken from d->rfree when the read was admitted,
 * else allocated and charged here). Called without d->lock; a read slot already taken.
 * @return 0 or -errno (then the caller completes the lookup and releases the slot, which
 * keeps the buffer). */
static int hc_disk_read_start(struct hc_disk *d, struct hc_disk_rd *rd)
{
    uint64_t off =
        hc_disk_region_off(d, rd->loc.region) + (uint64_t)rd->loc.off_units * HC_DISK_SLOT;
    uint64_t start = off & ~(uint64_t)(d->align - 1);
    uint64_t end =
        CMN_ALIGN_UP(off + (uint64_t)rd->loc.size_units * HC_DISK_SLOT, (uint64_t)d->align);

    if (end - start > d->read_buf_len)
        return -EIO; /* cannot happen: index sizes are checked against max_entry */
    if (!rd->rbuf) {
        rd->rbuf = ioeng_buf_alloc(d->read_buf_len);
        if (!rd->rbuf)
            return -ENOMEM;
        hc_disk_charge(d, d->read_buf_len);
    }
    if (rd->partial)
        return hc_disk_part_start(d, rd);
    rd->skip = (uint32_t)(off - start);
    rd->req = (struct ioeng_req){.op = IOENG_READ,
                                 .buf = rd->rbuf,
                                 .len = end - start,
                                 .off = start,
                                 .done = hc_disk_read_done,
                                 .arg = rd};
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
        rc = hc_disk_entry_verify(d, p, req->len - rd->skip, rd->seq, rd->hash, rd->key, rd->klen,
                                  true, &h);
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
        rc = hc_disk_entry_verify(d, p, (size_t)loc.size_units * HC_DISK_SLOT, seq, hash, key, klen,
                                  false, &h);
        if (rc == 0)
            rc = hc_disk_entry_decode(p, &h, buf, cap);
        pthread_mutex_unlock(&d->lock);
        if (rc == -EBADMSG)
            rc = -ENOENT; /* cannot happen to bytes that never left memory; a miss anyway */
        hc_disk_lookup_finish(d, rc, done, arg);
        return 0;
    }
    pthread_mutex_unlock(&d->lock);

    struct hc_disk_rd *rd = hc_disk_rd_new(d, hash, seq, &loc, key, klen, buf, cap, done, arg);
    return rd ? hc_disk_read_queue(d, rd) : -ENOMEM;
}

static struct hc_disk_rd *hc_disk_rd_new(struct hc_disk *d, uint64_t hash, uint64_t seq,
                                         const struct hc_dloc *loc, const void *key, size_t klen,
                                         void *buf, size_t cap, hc_disk_done_fn done, void *arg)
{
    struct hc_disk_rd *rd = malloc(sizeof(*rd) + klen);
    if (!rd)
        return NULL;
    *rd = (struct hc_disk_rd){
        .d = d,
        .hash = hash,
        .seq = seq,
        .loc = *loc,
        .ubuf = buf,
        .cap = cap,
        .done = done,
        .arg = arg,
        .klen = klen,
    };
    memcpy(rd->key, key, klen);
    return rd;
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
                                   const uint8_t *vc0, size_t vavail, uint64_t seq, uint64_t hash,
                                   const void *key, size_t klen, uint32_t off, uint32_t len,
                                   void *buf, size_t cap)
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
        return -EBADMSG; /* the index's entry size and the header disagree */
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
                                 rd->hash, rd->key, rd->klen, rd->off, rd->len, rd->ubuf, rd->cap);
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
    uint64_t eoff =
        hc_disk_region_off(d, rd->loc.region) + (uint64_t)rd->loc.off_units * HC_DISK_SLOT;
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
        rd->req = (struct ioeng_req){.op = IOENG_READ, .buf = rd->rbuf, .len = he - hs, .off = hs};
    } else if (vs <= he) {
        rd->vskip = (uint32_t)(v0 - hs);
        rd->vhave = (uint32_t)(v1 - v0);
        rd->req = (struct ioeng_req){
            .op = IOENG_READ, .buf = rd->rbuf, .len = CMN_MAX(he, ve) - hs, .off = hs};
    } else {
        rd->vskip = (uint32_t)(he - hs + (v0 - vs));
        rd->vhave = (uint32_t)(v1 - v0);
        rd->req = (struct ioeng_req){.op = IOENG_READ, .buf = rd->rbuf, .len = he - hs, .off = hs};
        rd->req2 = (struct ioeng_req){
            .op = IOENG_READ, .buf = (uint8_t *)rd->rbuf + (he - hs), .len = ve - vs, .off = vs};
        n = 2;
    }
    if ((n == 2 ? rd->req.len + rd->req2.len : rd->req.len) > d->read_buf_len)
        return -E2BIG; /* the caller keeps ranges well below a block */
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
    return (uint32_t)CMN_ALIGN_UP((uint64_t)off + len, (uint64_t)HC_DISK_CHUNK) -
           hc_disk_range_off(off);
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
        size_t v0 = HC_DISK_EHDR_BYTES + klen + d->table_len +
                    (size_t)(off / HC_DISK_CHUNK) * HC_DISK_CHUNK;
        const uint8_t *p = r->wb->buf + (size_t)loc.off_units * HC_DISK_SLOT;
        ssize_t rc = hc_disk_part_decode(d, p, esz, p + CMN_MIN(v0, esz), v0 < esz ? esz - v0 : 0,
                                         seq, hash, key, klen, off, len, buf, cap);
        pthread_mutex_unlock(&d->lock);
        if (rc == -EBADMSG || rc == -EILSEQ)
            rc = -ENOENT; /* cannot happen to bytes that never left memory; a miss anyway */
        hc_disk_part_finish(d, rc, hash, NULL, done, arg);
        return 0;
    }
    pthread_mutex_unlock(&d->lock);

    struct hc_disk_rd *rd = hc_disk_rd_new(d, hash, seq, &loc, key, klen, buf, cap, done, arg);
    if (!rd)
        return -ENOMEM;
    rd->partial = true;
    rd->off = off;
    rd->len = len;
    return hc_disk_read_queue(d, rd);
}
