/* SPDX-License-Identifier: Apache-2.0 */
/*
 * write.c: new files written sequentially become S3 objects (-o writable; issue #20).
 *
 * DESIGN
 * A write handle takes bytes from offset 0 on, in order, into a part buffer of
 * part_size bytes. A full part goes to S3 as an UploadPart of a multipart upload (created
 * when the first part fills) while the writer goes on with the next one; at most
 * upload_parallel parts of a handle are in flight, and all handles' part buffers together
 * stay under upload_memory: a writer past either bound waits in write() for a part to
 * finish (back-pressure, so memory stays bounded however fast the writer is). Parts go
 * through the retry layer (objstore); each carries Content-MD5, so S3 refuses a corrupt
 * one. A file that never filled a part is one PUT.
 *
 * close() (FLUSH) or fsync completes the upload and returns its result: the last part,
 * then CompleteMultipartUpload. A reply lost after S3 completed it (a retried Complete
 * answered NoSuchUpload) is told from a failure by a HEAD: the object's ETag equals the
 * MD5 of the parts' MD5s computed here. A failure aborts the upload (no parts left
 * behind) and close() returns EIO; the log says why. After the first flush the handle
 * takes no more bytes (EIO), as in mountpoint-s3.
 *
 * Write-through: every whole block written is inserted into the hybrid cache under a
 * provisional key (the upload's own tag in place of an ETag); once S3 answers with the
 * object's ETag, the blocks are inserted again under their real keys (a copy from the
 * memory tier, or a read of the disk tier) and the provisional ones removed, so reading
 * the file back costs no GET while the cache holds it. Blocks the cache dropped in
 * between are simply read from S3 later.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "common/log.h"
#include "common/util.h"
#include "fs/fs_i.h"
#include "hybridcache/hybridcache.h"

/* An upload whose abort failed (S3 unreachable): tried again later. */
struct fs_abort {
    struct fs_abort *next;
    char *key;
    char upload_id[OBJSTORE_UPLOAD_ID_MAX];
};

/* The uploads of the mount: the memory their part buffers take, under upload_memory. */
struct fs_uploads {
    pthread_mutex_t lock;
    pthread_cond_t cond;     /* buffer memory was given back */
    uint64_t used;           /* bytes of part buffers allocated */
    uint64_t tag_seq;        /* provisional cache tags */
    struct fs_abort *aborts; /* aborts to try again (after the next completion, at unmount) */
    char *kept[8];           /* part buffers kept for reuse (at most FS_WBUF_KEEP) */
    unsigned nkept;
    /* re-key jobs (fs_rekey_loop), by lock */
    struct fs_rekey *rk_head, **rk_tail;
    pthread_cond_t rk_cond; /* a job queued, or stop */
    pthread_t rk_thread;
    bool rk_up, rk_stop;
};

/* A completed upload whose cached blocks are still under the provisional tag. */
struct fs_rekey {
    struct fs_rekey *next;
    struct fs_inode *ino; /* the "opens" reference fs_ns_write_done took for the job */
    char *key;
    uint64_t size;
    struct fs_ctag ct; /* tag, etag (the inode points to it until the job ends) */
};

struct fs_whandle;
static void fs_wbuf_trim(struct fs *fs);

/* One part on its way to S3. */
struct fs_wpart {
    struct objstore_req req;
    struct fs_whandle *h;
    char *buf;
    size_t len;
    unsigned number;
};

struct fs_whandle {
    struct fs *fs;
    struct fs_open_link open; /* on the FS_OPEN_WRITE list (handle.c) */
    struct fs_inode *ino;     /* an "opens" reference (fs_ns_create / fs_ns_open_write) */
    char *key;
    char tag[48]; /* provisional cache tag of the blocks written */
    pthread_mutex_t lock;
    pthread_cond_t cond; /* a part finished */
    uint64_t written;    /* bytes taken: the only offset a write may start at */
    char *part;          /* the part being filled, or NULL */
    size_t part_len;
    unsigned next_part; /* number of the part being filled (1-based) */
    char upload_id[OBJSTORE_UPLOAD_ID_MAX];
    struct objstore_part *parts; /* what each part's UploadPart answered */
    unsigned char (*md5)[16];    /* each part's MD5, for the multipart ETag */
    EVP_MD_CTX *md;              /* the MD5 of the part being filled, as bytes arrive */
    unsigned parts_cap;
    unsigned inflight; /* parts being uploaded */
    int err;           /* the first error of a part (by lock) */
    bool failed;       /* a part could not be sent: the upload is lost (result) */
    bool flushed;      /* completed (or failed): no more bytes */
    int result;        /* of the completion, or why it failed */
};

int fs_write_init(struct fs *fs)
{
    struct fs_uploads *u = calloc(1, sizeof(*u));
    if (!u)
        return -ENOMEM;
    pthread_mutex_init(&u->lock, NULL);
    pthread_cond_init(&u->cond, NULL);
    pthread_cond_init(&u->rk_cond, NULL);
    u->rk_tail = &u->rk_head;
    fs->up = u;
    return 0;
}

/* AbortMultipartUpload of @upload_id; a failure is kept to be tried again. @return its
 * result. */
static int fs_abort(struct fs *fs, const char *key, const char *upload_id, bool keep)
{
    char errmsg[OBJSTORE_ERRMSG_MAX] = "";
    int rc = objstore_delete(fs->os, key, upload_id, errmsg, sizeof(errmsg));

    if (rc == 0 || rc == -ENOENT) {
        __atomic_add_fetch(&fs->ctr.upload_aborts, 1, __ATOMIC_RELAXED);
        return 0;
    }
    TLOG_E("write '%s': AbortMultipartUpload failed: %s%s", key,
           errmsg[0] ? errmsg : objstore_strerror(rc), keep ? " (tried again later)" : "");
    struct fs_abort *a = keep ? calloc(1, sizeof(*a)) : NULL;
    if (a && (a->key = strdup(key))) {
        snprintf(a->upload_id, sizeof(a->upload_id), "%s", upload_id);
        pthread_mutex_lock(&fs->up->lock);
        a->next = fs->up->aborts;
        fs->up->aborts = a;
        pthread_mutex_unlock(&fs->up->lock);
    } else {
        free(a);
    }
    return rc;
}

/* Try the aborts that failed before once more. */
static void fs_abort_retry(struct fs *fs)
{
    pthread_mutex_lock(&fs->up->lock);
    struct fs_abort *a = fs->up->aborts;
    fs->up->aborts = NULL;
    pthread_mutex_unlock(&fs->up->lock);
    while (a) {
        struct fs_abort *next = a->next;
        if (fs_abort(fs, a->key, a->upload_id, false) == 0)
            TLOG_N("write '%s': the upload that failed earlier is aborted now", a->key);
        free(a->key);
        free(a);
        a = next;
    }
}

void fs_write_stop(struct fs *fs)
{
    struct fs_uploads *u = fs->up;

    if (!u)
        return;
    fs_abort_retry(fs);
    /* the re-key jobs finish (the cache goes next); a handle still keying by a tag no
     * longer holds them up */
    pthread_mutex_lock(&u->lock);
    u->rk_stop = true;
    pthread_cond_broadcast(&u->rk_cond);
    bool up = u->rk_up;
    pthread_mutex_unlock(&u->lock);
    if (up)
        pthread_join(u->rk_thread, NULL);
    u->rk_up = false;
}

void fs_write_fini(struct fs *fs)
{
    if (!fs->up)
        return;
    fs_wbuf_trim(fs);
    for (struct fs_abort *a = fs->up->aborts, *next; a; a = next) {
        next = a->next;
        TLOG_W("write '%s': upload %s left incomplete (S3 unreachable); a lifecycle rule "
               "removes it",
               a->key, a->upload_id);
        free(a->key);
        free(a);
    }
    pthread_cond_destroy(&fs->up->cond);
    pthread_cond_destroy(&fs->up->rk_cond);
    pthread_mutex_destroy(&fs->up->lock);
    free(fs->up);
    fs->up = NULL;
}

/* Part buffers kept for the next part: a fresh 8 MiB buffer is a fresh mapping, and every
 * first touch of its pages is a page fault (a quarter of the daemon's time in a profile
 * of a 1 GiB cp). At most this many; all given back when no file is open for writing. */
#define FS_WBUF_KEEP 8

/* A part buffer, waiting while the mount's part buffers fill upload_memory (one is
 * always allowed, so a single writer never waits for itself). Kept buffers count in
 * u->used as allocated ones do. */
static char *fs_wbuf_get(struct fs *fs)
{
    struct fs_uploads *u = fs->up;
    uint64_t ps = fs->conf->part_size;
    char *b = NULL;

    pthread_mutex_lock(&u->lock);
    for (;;) {
        if (u->nkept) {
            b = u->kept[--u->nkept];
            break;
        }
        if (!u->used || u->used + ps <= fs->conf->upload_memory) {
            u->used += ps;
            break;
        }
        pthread_cond_wait(&u->cond, &u->lock);
    }
    pthread_mutex_unlock(&u->lock);
    __atomic_add_fetch(&fs->ctr.upload_buffer_bytes, ps, __ATOMIC_RELAXED);
    if (!b && !(b = malloc(ps))) {
        pthread_mutex_lock(&u->lock);
        u->used -= ps;
        pthread_cond_broadcast(&u->cond);
        pthread_mutex_unlock(&u->lock);
        __atomic_sub_fetch(&fs->ctr.upload_buffer_bytes, ps, __ATOMIC_RELAXED);
    }
    return b;
}

static void fs_wbuf_put(struct fs *fs, char *b)
{
    struct fs_uploads *u = fs->up;
    unsigned keep = CMN_MIN(FS_WBUF_KEEP, fs->conf->upload_parallel + 1);

    if (!b)
        return;
    pthread_mutex_lock(&u->lock);
    if (u->nkept < keep) {
        u->kept[u->nkept++] = b;
        b = NULL;
    } else {
        u->used -= fs->conf->part_size;
    }
    pthread_cond_broadcast(&u->cond);
    pthread_mutex_unlock(&u->lock);
    free(b);
    __atomic_sub_fetch(&fs->ctr.upload_buffer_bytes, fs->conf->part_size, __ATOMIC_RELAXED);
}

/* No file is open for writing: the kept buffers go back to the system. */
static void fs_wbuf_trim(struct fs *fs)
{
    struct fs_uploads *u = fs->up;

    pthread_mutex_lock(&u->lock);
    while (u->nkept) {
        free(u->kept[--u->nkept]);
        u->used -= fs->conf->part_size;
    }
    pthread_cond_broadcast(&u->cond);
    pthread_mutex_unlock(&u->lock);
}

/* The blocks of @data (file offset @off) into the cache under the provisional tag. */
static void fs_write_cache_blocks(struct fs_whandle *h, const char *data, size_t len, uint64_t off)
{
    struct fs *fs = h->fs;
    uint64_t bs = fs->conf->block_size;
    uint8_t key[HC_KEY_MAX];

    /* a part is whole blocks (part_size is a multiple); only the last part of a file
     * ends in a short one */
    for (uint64_t o = 0; o < len; o += bs) {
        size_t kl = fs_block_key(fs, h->key, h->tag, (off + o) / bs, key, sizeof(key));
        if (kl)
            (void)hc_insert(fs->cache, key, kl, data + o, (size_t)CMN_MIN(bs, len - o),
                            HC_INSERT_DISK_ONLY);
    }
}

/* Copy the cached blocks of object @key (@size bytes) from the provisional @tag to the keys
 * of @etag (fs_write_untag drops the provisional ones). */
static void fs_write_rekey(struct fs *fs, const char *key, const char *tag, const char *etag,
                           uint64_t size)
{
    uint64_t bs = fs->conf->block_size, moved = 0;
    uint8_t from[HC_KEY_MAX], to[HC_KEY_MAX];

    for (uint64_t b = 0; b * bs < size; b++) {
        size_t fl = fs_block_key(fs, key, tag, b, from, sizeof(from));
        size_t tl = fs_block_key(fs, key, etag, b, to, sizeof(to));
        struct hc_entry *e = NULL;
        if (!fl || !tl ||
            hc_fetch_sync(fs->cache, from, fl, HC_FETCH_NO_ORIGIN | HC_FETCH_PREFETCH, NULL, NULL,
                          &e, NULL) != 0)
            continue;
        if (hc_entry_off(e) == 0 && hc_entry_len(e) == CMN_MIN(bs, size - b * bs) &&
            hc_insert(fs->cache, to, tl, hc_entry_data(e), hc_entry_len(e), HC_INSERT_DISK_ONLY) ==
                0)
            moved++;
        hc_entry_put(e);
    }
    __atomic_add_fetch(&fs->ctr.upload_cached_blocks, moved, __ATOMIC_RELAXED);
}

/* Drop the provisional keys of @key's @size bytes under @tag. */
static void fs_write_untag(struct fs *fs, const char *key, const char *tag, uint64_t size)
{
    uint64_t bs = fs->conf->block_size;
    uint8_t from[HC_KEY_MAX];

    for (uint64_t b = 0; b * bs < size; b++) {
        size_t fl = fs_block_key(fs, key, tag, b, from, sizeof(from));
        if (fl)
            (void)hc_remove(fs->cache, from, fl);
    }
}

/*
 * One re-key job, off the writer's close (reading back and writing again every block is
 * a large share of a big file's close: docs/benchmarks.md, "Writes again"). The copies under the
 * ETag are made first (the provisional ones stay: handles open on the version key by
 * them); then new handles use the ETag's keys, and once no handle keys by the tag (or
 * the mount is stopping) the provisional blocks go.
 */
static void fs_rekey_run(struct fs *fs, struct fs_rekey *j)
{
    uint64_t t0 = cmn_now_ns();

    fs_write_rekey(fs, j->key, j->ct.tag, j->ct.etag, j->size);
    fs_ns_ctag_switch(fs, &j->ct);
    for (;;) {
        pthread_mutex_lock(&fs->up->lock);
        bool stop = fs->up->rk_stop;
        pthread_mutex_unlock(&fs->up->lock);
        if (stop || !fs_ns_ctag_busy(fs, &j->ct))
            break;
        usleep(50 * 1000); /* a handle open since before the switch: until it closes */
    }
    fs_write_untag(fs, j->key, j->ct.tag, j->size);
    TLOG_D("write '%s': cached blocks re-keyed to %s in %llu ms", j->key, j->ct.etag,
           (unsigned long long)((cmn_now_ns() - t0) / 1000000));
    fs_ns_ctag_done(fs, j->ino, &j->ct);
}

static void *fs_rekey_loop(void *arg)
{
    struct fs *fs = arg;
    struct fs_uploads *u = fs->up;

    pthread_mutex_lock(&u->lock);
    for (;;) {
        while (!u->rk_head && !u->rk_stop)
            pthread_cond_wait(&u->rk_cond, &u->lock);
        struct fs_rekey *j = u->rk_head;
        if (!j)
            break; /* stopping, nothing left: every queued job ran */
        u->rk_head = j->next;
        if (!u->rk_head)
            u->rk_tail = &u->rk_head;
        pthread_mutex_unlock(&u->lock);
        fs_rekey_run(fs, j);
        free(j->key);
        free(j);
        __atomic_sub_fetch(&fs->ctr.uploads_rekeying, 1, __ATOMIC_RELAXED);
        pthread_mutex_lock(&u->lock);
    }
    pthread_mutex_unlock(&u->lock);
    return NULL;
}

/* Queue @j for the re-key thread (started on first use). @return false when it cannot
 * run (stopping, no thread): the caller re-keys in place. */
static bool fs_rekey_queue(struct fs *fs, struct fs_rekey *j)
{
    struct fs_uploads *u = fs->up;
    bool ok;

    pthread_mutex_lock(&u->lock);
    if (!u->rk_up && !u->rk_stop)
        u->rk_up = pthread_create(&u->rk_thread, NULL, fs_rekey_loop, fs) == 0;
    ok = u->rk_up && !u->rk_stop;
    if (ok) {
        j->next = NULL;
        *u->rk_tail = j;
        u->rk_tail = &j->next;
        __atomic_add_fetch(&fs->ctr.uploads_rekeying, 1, __ATOMIC_RELAXED);
        pthread_cond_signal(&u->rk_cond);
    }
    pthread_mutex_unlock(&u->lock);
    return ok;
}

static void fs_part_done(struct objstore_req *req)
{
    struct fs_wpart *p = req->arg;
    struct fs_whandle *h = p->h;
    struct fs *fs = h->fs;

    if (req->result < 0)
        TLOG_E("write '%s': part %u failed: %s", h->key, p->number,
               req->errmsg[0] ? req->errmsg : objstore_strerror(req->result));
    else
        __atomic_add_fetch(&fs->ctr.upload_bytes, p->len, __ATOMIC_RELAXED);
    fs_wbuf_put(fs, p->buf);
    pthread_mutex_lock(&h->lock);
    if (req->result < 0 && !h->err)
        h->err = req->result;
    else if (req->result == 0)
        memcpy(h->parts[p->number - 1].etag, req->info.etag, OBJSTORE_ETAG_MAX);
    h->inflight--;
    pthread_cond_broadcast(&h->cond);
    pthread_mutex_unlock(&h->lock);
    __atomic_sub_fetch(&fs->ctr.upload_parts_inflight, 1, __ATOMIC_RELAXED);
    free(p);
}

/* Room for part @n's records. Under h->lock. @return 0 or -ENOMEM / -EFBIG. */
static int fs_parts_room(struct fs_whandle *h, unsigned n)
{
    if (n > OBJSTORE_PARTS_MAX)
        return -EFBIG; /* 10,000 parts: the largest object a part size allows */
    if (n <= h->parts_cap)
        return 0;
    unsigned cap = CMN_MAX(h->parts_cap * 2, 16u);
    struct objstore_part *np = realloc(h->parts, cap * sizeof(*np));
    if (np)
        h->parts = np;
    unsigned char(*nm)[16] = np ? realloc(h->md5, cap * sizeof(*nm)) : NULL;
    if (!np || !nm)
        return -ENOMEM;
    h->md5 = nm;
    h->parts_cap = cap;
    return 0;
}

/* Send the full part buffer as part h->next_part (creating the upload first). Takes the
 * buffer. @return 0 or -errno. Called by the writer, without h->lock. */
static int fs_part_send(struct fs_whandle *h)
{
    struct fs *fs = h->fs;
    char errmsg[OBJSTORE_ERRMSG_MAX] = "";
    unsigned n = h->next_part;
    int rc;

    if (!h->upload_id[0]) {
        rc = objstore_mpu_create(fs->os, h->key, h->upload_id, sizeof(h->upload_id), errmsg,
                                 sizeof(errmsg));
        if (rc) {
            TLOG_E("write '%s': CreateMultipartUpload failed: %s", h->key,
                   errmsg[0] ? errmsg : objstore_strerror(rc));
            return rc;
        }
        __atomic_add_fetch(&fs->ctr.uploads_started, 1, __ATOMIC_RELAXED);
    }
    pthread_mutex_lock(&h->lock);
    /* at most upload_parallel parts of this handle in flight */
    while (h->inflight >= fs->conf->upload_parallel && !h->err)
        pthread_cond_wait(&h->cond, &h->lock);
    rc = h->err ? h->err : fs_parts_room(h, n);
    if (rc == 0)
        h->inflight++;
    pthread_mutex_unlock(&h->lock);
    if (rc)
        return rc;
    struct fs_wpart *p = calloc(1, sizeof(*p));
    if (!p) {
        rc = -ENOMEM;
        goto undo;
    }
    unsigned mdlen;
    EVP_DigestFinal_ex(h->md, h->md5[n - 1], &mdlen); /* updated as the bytes came in */
    h->parts[n - 1] = (struct objstore_part){.number = n};
    fs_write_cache_blocks(h, h->part, h->part_len, (uint64_t)(n - 1) * fs->conf->part_size);
    *p = (struct fs_wpart){.h = h, .buf = h->part, .len = h->part_len, .number = n};
    p->req = (struct objstore_req){.op = OBJSTORE_OP_MPU_PART,
                                   .key = h->key,
                                   .upload_id = h->upload_id,
                                   .part_number = n,
                                   .md5 = h->md5[n - 1],
                                   .buf = p->buf,
                                   .len = p->len,
                                   .buf_cap = p->len,
                                   .done = fs_part_done,
                                   .arg = p};
    h->part = NULL;
    h->part_len = 0;
    h->next_part++;
    __atomic_add_fetch(&fs->ctr.upload_parts, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&fs->ctr.upload_parts_inflight, 1, __ATOMIC_RELAXED);
    rc = objstore_submit(fs->os, &p->req);
    if (rc == 0)
        return 0;
    p->req.result = rc;
    fs_part_done(&p->req); /* frees p and the buffer, counts the error */
    return rc;
undo:
    pthread_mutex_lock(&h->lock);
    h->inflight--;
    pthread_mutex_unlock(&h->lock);
    return rc;
}

int fs_write_open(struct fs *fs, struct fs_inode *ino, const char *key, struct fs_whandle **out)
{
    struct fs_whandle *h = calloc(1, sizeof(*h));

    *out = NULL;
    if (!h || !(h->key = strdup(key)) || !(h->md = EVP_MD_CTX_new())) {
        if (h)
            free(h->key);
        free(h);
        return -ENOMEM;
    }
    h->fs = fs;
    h->ino = ino;
    h->next_part = 1;
    pthread_mutex_init(&h->lock, NULL);
    pthread_cond_init(&h->cond, NULL);
    pthread_mutex_lock(&fs->up->lock);
    uint64_t seq = ++fs->up->tag_seq;
    pthread_mutex_unlock(&fs->up->lock);
    /* unique per mount and upload; never an ETag (those are quoted) */
    snprintf(h->tag, sizeof(h->tag), "w:%lld:%llu", (long long)fs->mount_time,
             (unsigned long long)seq);
    __atomic_add_fetch(&fs->ctr.uploads_open, 1, __ATOMIC_RELAXED);
    fs_open_add(fs, FS_OPEN_WRITE, &h->open, h);
    *out = h;
    return 0;
}

ssize_t fs_write(struct fs_whandle *h, const char *buf, size_t size, uint64_t off)
{
    struct fs *fs = h->fs;
    size_t done = 0;
    int rc = 0;

    if (h->flushed || h->failed)
        return -EIO; /* closed already (a dup'ed descriptor), or the upload is lost */
    if (off != h->written) {
        TLOG_W("write '%s' at %llu refused: files are written from start to end (next offset "
               "%llu)",
               h->key, (unsigned long long)off, (unsigned long long)h->written);
        return -EINVAL;
    }
    while (done < size) {
        if (!h->part) {
            if (!(h->part = fs_wbuf_get(fs)))
                return done ? (ssize_t)done : -ENOMEM;
            EVP_DigestInit_ex(h->md, EVP_md5(), NULL);
        }
        size_t n = CMN_MIN(size - done, fs->conf->part_size - h->part_len);
        memcpy(h->part + h->part_len, buf + done, n);
        /* hashed while the bytes are still in the CPU's cache: one pass, not two */
        EVP_DigestUpdate(h->md, h->part + h->part_len, n);
        h->part_len += n;
        done += n;
        h->written += n;
        if (h->part_len == fs->conf->part_size && (rc = fs_part_send(h)) != 0)
            break;
    }
    fs_ns_write_size(fs, h->ino, h->written);
    if (rc) {
        h->failed = true; /* the upload is lost: close() aborts it and reports it */
        h->result = rc;
        return -EIO;
    }
    return (ssize_t)done;
}

/* The ETag S3 gives a multipart object of the parts sent: "MD5-of-the-MD5s-N". */
static void fs_mpu_etag(const struct fs_whandle *h, unsigned n, char *out, size_t cap)
{
    unsigned char md[16];
    unsigned len;
    char hex[33];

    EVP_Digest(h->md5, (size_t)n * 16, md, &len, EVP_md5(), NULL);
    for (int i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    snprintf(out, cap, "\"%s-%u\"", hex, n);
}

/* Complete the multipart upload (parts all sent). @return 0 and @info, or -errno. */
static int fs_mpu_finish(struct fs_whandle *h, struct objstore_object_info *info)
{
    struct fs *fs = h->fs;
    char errmsg[OBJSTORE_ERRMSG_MAX] = "", want[64];
    unsigned n = h->next_part - 1;

    pthread_mutex_lock(&h->lock);
    while (h->inflight)
        pthread_cond_wait(&h->cond, &h->lock);
    int rc = h->err;
    pthread_mutex_unlock(&h->lock);
    if (rc)
        return rc;
    rc = objstore_mpu_complete(fs->os, h->key, h->upload_id, h->parts, n, info, errmsg,
                               sizeof(errmsg));
    if (rc == 0)
        return 0;
    fs_mpu_etag(h, n, want, sizeof(want));
    /* A retried Complete whose first reply was lost: the object is there, ours? */
    if (objstore_head(fs->os, h->key, info, NULL, 0) == 0 && strcmp(info->etag, want) == 0) {
        TLOG_I("write '%s': completed (the reply to CompleteMultipartUpload was lost)", h->key);
        return 0;
    }
    TLOG_E("write '%s': CompleteMultipartUpload failed: %s", h->key,
           errmsg[0] ? errmsg : objstore_strerror(rc));
    return rc;
}

int fs_write_flush(struct fs_whandle *h)
{
    struct fs *fs = h->fs;
    struct objstore_object_info info = {0};
    char errmsg[OBJSTORE_ERRMSG_MAX] = "";
    int rc;

    if (h->flushed)
        return h->result;
    h->flushed = true;
    if (h->failed) {
        rc = h->result;
    } else if (!h->upload_id[0]) {
        /* under a part: one PUT (an empty file too) */
        rc = objstore_put(fs->os, h->key, h->part ? h->part : "", h->part_len, &info, errmsg,
                          sizeof(errmsg));
        if (rc) {
            TLOG_E("write '%s': PUT failed: %s", h->key,
                   errmsg[0] ? errmsg : objstore_strerror(rc));
        } else {
            fs_write_cache_blocks(h, h->part, h->part_len, 0);
            __atomic_add_fetch(&fs->ctr.upload_bytes, h->part_len, __ATOMIC_RELAXED);
        }
    } else {
        rc = h->part_len ? fs_part_send(h) : 0;
        if (rc == 0)
            rc = fs_mpu_finish(h, &info);
    }
    fs_wbuf_put(fs, h->part);
    h->part = NULL;
    if (rc && h->upload_id[0]) {
        /* no parts left behind: abort (bounded by the retries; a crash leaves it to the
         * bucket's lifecycle rule, tierfs(1) WRITES) */
        pthread_mutex_lock(&h->lock);
        while (h->inflight)
            pthread_cond_wait(&h->cond, &h->lock);
        pthread_mutex_unlock(&h->lock);
        (void)fs_abort(fs, h->key, h->upload_id, true);
    }
    struct fs_rekey *j = NULL;
    if (rc == 0) {
        TLOG_I("write '%s': %llu bytes, %u parts, ETag %s", h->key, (unsigned long long)h->written,
               h->upload_id[0] ? h->next_part - 1 : 1, info.etag);
        __atomic_add_fetch(&fs->ctr.uploads_done, 1, __ATOMIC_RELAXED);
        fs_abort_retry(fs); /* S3 answers again: clear what failed before */
        /* The blocks written go to the ETag's keys in the background (close returns) */
        j = h->written ? calloc(1, sizeof(*j)) : NULL;
        if (j && (j->key = strdup(h->key))) {
            j->ino = h->ino;
            j->size = h->written;
            snprintf(j->ct.tag, sizeof(j->ct.tag), "%s", h->tag);
            snprintf(j->ct.etag, sizeof(j->ct.etag), "%s", info.etag);
        } else {
            free(j);
            j = NULL;
        }
    } else {
        __atomic_add_fetch(&fs->ctr.upload_failures, 1, __ATOMIC_RELAXED);
    }
    fs_ns_write_done(fs, h->ino, rc, h->written, info.etag, j ? &j->ct : NULL);
    if (j && !fs_rekey_queue(fs, j)) { /* stopping: in place, as the job would */
        fs_rekey_run(fs, j);
        free(j->key);
        free(j);
    } else if (rc == 0 && !j) { /* no memory for a job: in place, no handle has the tag */
        fs_write_rekey(fs, h->key, h->tag, info.etag, h->written);
        fs_write_untag(fs, h->key, h->tag, h->written);
    }
    h->ino = NULL;
    h->result = rc < 0 ? -EIO : 0;
    return h->result;
}

bool fs_write_empty(const struct fs_whandle *h)
{
    return h->written == 0 && !h->flushed && !h->failed;
}

/* Free @h (off the open list, flushed or abandoned). */
static void fs_write_free(struct fs_whandle *h)
{
    fs_open_del(h->fs, FS_OPEN_WRITE, &h->open);
    if (__atomic_sub_fetch(&h->fs->ctr.uploads_open, 1, __ATOMIC_RELAXED) == 0)
        fs_wbuf_trim(h->fs);
    pthread_cond_destroy(&h->cond);
    pthread_mutex_destroy(&h->lock);
    free(h->parts);
    free(h->md5);
    EVP_MD_CTX_free(h->md);
    free(h->key);
    free(h);
}

void fs_write_release(struct fs_whandle *h)
{
    if (!h)
        return;
    if (!h->flushed)
        (void)fs_write_flush(h); /* a release without a flush: complete it anyway */
    fs_write_free(h);
}

/* A handle still open at unmount: its writer never closed it, so its upload is aborted. */
static void fs_write_abandon(struct fs *fs, void *owner)
{
    struct fs_whandle *h = owner;

    if (!h->flushed) {
        TLOG_W("write '%s': still open at unmount after %llu bytes: not completed", h->key,
               (unsigned long long)h->written);
        h->failed = true;
        h->result = -EIO;
        (void)fs_write_flush(h); /* aborts what was sent */
    }
    (void)fs;
    fs_write_free(h);
}

unsigned fs_write_release_all(struct fs *fs)
{
    return fs_open_drain(fs, FS_OPEN_WRITE, fs_write_abandon);
}
