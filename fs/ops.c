/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ops.c: the FUSE low-level operations of tierfs. Each handler replies exactly once,
 * converting the -errno of the layers below here and nowhere else.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "common/log.h"
#include "common/util.h"
#include "fs/fs_i.h"
#include "fs/fuseio.h"
#include "fs/metrics.h"
#include "hybridcache/hybridcache.h"

/* d_ino of plain readdir entries not looked up yet (libfuse's high-level value; 0 would
 * make some tools skip the entry). */
#define FS_UNKNOWN_INO 0xffffffffu

/* A directory handle: the listing snapshot readdir walks, so offsets stay stable. */
struct fs_dirh {
    struct fs_inode *dir;     /* an "opens" reference */
    struct fs_listing *l;     /* a reference */
    struct fs_open_link open; /* on the FS_OPEN_DIR list */
};

/* Take one directory handle off the open list and free it (listing, "opens" reference). */
static void fs_dirh_free(struct fs *fs, void *owner)
{
    struct fs_dirh *dh = owner;
    fs_open_del(fs, FS_OPEN_DIR, &dh->open);
    fs_listing_put(dh->l);
    fs_ns_release(fs, dh->dir);
    free(dh);
}

unsigned fs_ops_release_dirs(struct fs *fs)
{
    return fs_open_drain(fs, FS_OPEN_DIR, fs_dirh_free);
}

static struct fs *fs_of(fuse_req_t req)
{
    return fuse_req_userdata(req);
}

const char *fs_cause(int neg_errno)
{
    switch (neg_errno) {
    case -ENOENT:
        return "no such bucket";
    case -EACCES:
    case -EPERM:
        return "access denied";
    case -ECONNREFUSED:
    case -EHOSTUNREACH:
    case -ENETUNREACH:
    case -ETIMEDOUT:
    case -ECONNRESET:
    case -EHOSTDOWN:
        return "cannot reach the endpoint";
    default:
        return objstore_strerror(neg_errno);
    }
}

static void fs_op_init(void *userdata, struct fuse_conn_info *conn)
{
    struct fs *fs = userdata;
    /* Several reads of one file may be in flight (read-ahead); answer them in parallel. */
    if (conn->capable & FUSE_CAP_ASYNC_READ)
        conn->want |= FUSE_CAP_ASYNC_READ;
    /* Always readdirplus: `ls -l` of a big directory then needs no lookup per entry. */
    if (conn->capable & FUSE_CAP_READDIRPLUS) {
        conn->want |= FUSE_CAP_READDIRPLUS;
        conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
    }
    if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
        conn->want |= FUSE_CAP_PARALLEL_DIROPS;
    /* The data of a pinned version never changes; the kernel must not drop pages
     * because mtime moved (keep_cache on open decides instead). */
    conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
    /* max_readahead is left as the kernel offered it: it can only be lowered here, so
     * main.c raises the mount's bdi read_ahead_kb after mounting instead. */
    conn->max_background = 64;
    conn->congestion_threshold = 48;
    TLOG_I("FUSE init: protocol %u.%u, max_readahead %u, max_write %u", conn->proto_major,
           conn->proto_minor, conn->max_readahead, conn->max_write);
    /* page_cache=auto bypasses the page cache for some files: the default only where a
     * shared mmap of them still works (read before any other request is served). */
    if (fs->conf->page_cache_default && fs_fio_mmap_offered()) {
        __atomic_store_n(&fs->conf->page_cache_auto, true, __ATOMIC_RELEASE);
        TLOG_I("page_cache: auto (the default where the kernel allows a shared mmap of "
               "direct-I/O files)");
    }
}

static void fs_op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct fuse_entry_param e;
    int rc = fs_ns_lookup(fs_of(req), parent, name, &e);
    if (rc == 0 || (rc == -ENOENT && e.entry_timeout > 0))
        fuse_reply_entry(req, &e); /* ENOENT with a timeout: a cached negative entry */
    else
        fuse_reply_err(req, -rc);
}

static void fs_op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
    fs_ns_forget(fs_of(req), ino, nlookup);
    fuse_reply_none(req);
}

static void fs_op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
    struct fs *fs = fs_of(req);
    for (size_t i = 0; i < count; i++)
        fs_ns_forget(fs, forgets[i].ino, forgets[i].nlookup);
    fuse_reply_none(req);
}

static void fs_op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct fs *fs = fs_of(req);
    struct stat st;
    int rc = fs_ns_getattr(fs, ino, &st);
    if (rc < 0)
        fuse_reply_err(req, -rc);
    else
        fuse_reply_attr(req, &st, (double)fs->conf->metadata_ttl_ms / 1000.0);
}

static void fs_op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct fs *fs = fs_of(req);
    struct fs_handle *fh;
    struct fs_inode *n;
    bool keep = false, direct = false;
    int rc;

    if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
        if (fs->conf->writable)
            fs_ops_open_write(req, ino, fi); /* ops_write.c */
        else
            fuse_reply_err(req, EROFS);
        return;
    }
    n = fs_ns_open(fs, ino);
    if (!n) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    if (fs->conf->writable && fs_ns_is_writing(fs, n)) {
        TLOG_W("open of '%s' refused: it is being written (readable once closed)", n->key);
        fs_ns_release(fs, n);
        fuse_reply_err(req, EBUSY);
        return;
    }
    rc = fs_read_open(fs, n, &fh, &keep, &direct);
    if (rc < 0) {
        fs_ns_release(fs, n);
        fuse_reply_err(req, -rc);
        return;
    }
    fi->fh = (uintptr_t)fh;
    fi->keep_cache = keep;
    fi->direct_io = direct; /* page_cache=no, or another version is open: keep out of its pages */
    fi->noflush = 1;        /* nothing to flush on close of a read-only file */
    if (fuse_reply_open(req, fi) != 0)
        fs_read_release(fs, fh); /* the open was interrupted: no release will come */
    else
        __atomic_add_fetch(&fs->ctr.open_files, 1, __ATOMIC_RELAXED);
}

static void fs_op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
    if (fs_fh_is_write(fi)) {
        fuse_reply_err(req, EBADF); /* a file being written is read once it is closed */
        return;
    }
    if (fi->flags & O_DIRECT) /* the open flags, as the kernel passes them with each read */
        fs_read_note_odirect((struct fs_handle *)(uintptr_t)fi->fh);
    fs_read(fs_of(req), req, (struct fs_handle *)(uintptr_t)fi->fh, size, off);
}

static void fs_op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    if (fs_fh_is_write(fi)) {
        fs_ops_release_write(fs_of(req), fi);
        fuse_reply_err(req, 0);
        return;
    }
    __atomic_sub_fetch(&fs_of(req)->ctr.open_files, 1, __ATOMIC_RELAXED);
    fs_read_release(fs_of(req), (struct fs_handle *)(uintptr_t)fi->fh);
    fuse_reply_err(req, 0);
}

static void fs_op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct fs *fs = fs_of(req);
    struct fs_dirh *dh;
    int rc;

    if ((fi->flags & O_ACCMODE) != O_RDONLY) {
        fuse_reply_err(req, EROFS);
        return;
    }
    dh = calloc(1, sizeof(*dh));
    if (!dh) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    dh->dir = fs_ns_open(fs, ino);
    if (!dh->dir) {
        rc = -ENOENT;
        goto fail_free;
    }
    if (!dh->dir->is_dir) {
        rc = -ENOTDIR;
        goto fail_release;
    }
    if ((rc = fs_ns_listing(fs, dh->dir, &dh->l)) < 0)
        goto fail_release;
    fi->fh = (uintptr_t)dh;
    fi->cache_readdir = 0;
    fs_open_add(fs, FS_OPEN_DIR, &dh->open, dh);
    if (fuse_reply_open(req, fi) != 0)
        fs_dirh_free(fs, dh);
    return;

fail_release:
    fs_ns_release(fs, dh->dir);
fail_free:
    free(dh);
    fuse_reply_err(req, -rc);
}

/*
 * readdir / readdirplus. Offsets: 1 = ".", 2 = "..", 3 + i = entry i of the snapshot.
 * For plus, each entry counts a lookup; an entry that does not fit is forgotten again.
 */
static void fs_readdir_common(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                              struct fuse_file_info *fi, bool plus)
{
    struct fs *fs = fs_of(req);
    struct fs_dirh *dh = (struct fs_dirh *)(uintptr_t)fi->fh;
    char *buf = malloc(size), *p = buf;
    size_t rem = size;
    int rc = 0;

    if (!buf) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    for (off_t o = off;; o++) {
        struct fuse_entry_param e;
        const char *name;
        size_t len;

        memset(&e, 0, sizeof(e));
        if (o == 0 || o == 1) {
            /* The kernel never links "." and "..": no lookup count for them. */
            name = o == 0 ? "." : "..";
            e.attr.st_ino = o == 0 ? dh->dir->ino : dh->dir->parent;
            e.attr.st_mode = S_IFDIR;
        } else if ((size_t)(o - 2) < dh->l->n) {
            const struct fs_dirent *de = &dh->l->ents[o - 2];
            name = de->name;
            if (plus) {
                if ((rc = fs_ns_entry(fs, dh->dir, dh->l, de, &e)) < 0)
                    break;
            } else {
                e.attr.st_ino = FS_UNKNOWN_INO;
                e.attr.st_mode = de->is_dir ? S_IFDIR : S_IFREG;
            }
        } else {
            break;
        }
        if (plus)
            len = fuse_add_direntry_plus(req, p, rem, name, &e, o + 1);
        else
            len = fuse_add_direntry(req, p, rem, name, &e.attr, o + 1);
        if (len > rem) {
            if (plus && e.ino)
                fs_ns_forget(fs, e.ino, 1);
            break;
        }
        p += len;
        rem -= len;
    }
    /* An error after some entries: return what fits; the next call reports it. */
    if (rc < 0 && p == buf)
        fuse_reply_err(req, -rc);
    else
        fuse_reply_buf(req, buf, (size_t)(p - buf));
    free(buf);
}

static void fs_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                          struct fuse_file_info *fi)
{
    fs_readdir_common(req, ino, size, off, fi, false);
}

static void fs_op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                              struct fuse_file_info *fi)
{
    fs_readdir_common(req, ino, size, off, fi, true);
}

static void fs_op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct fs *fs = fs_of(req);
    fs_dirh_free(fs, (struct fs_dirh *)(uintptr_t)fi->fh);
    fuse_reply_err(req, 0);
}

static void fs_op_statfs(fuse_req_t req, fuse_ino_t ino)
{
    struct fs *fs = fs_of(req);
    struct statvfs sv;
    struct hc_stats st;

    memset(&sv, 0, sizeof(sv));
    hc_get_stats(fs->cache, &st);
    /* S3 has no capacity; report the cache so df shows something meaningful. */
    sv.f_bsize = fs->conf->block_size;
    sv.f_frsize = fs->conf->block_size;
    uint64_t cap = st.disk_capacity ? st.disk_capacity : st.mem_limit;
    uint64_t used = st.disk_capacity ? st.disk_used : st.mem_used;
    sv.f_blocks = cap / fs->conf->block_size;
    sv.f_bfree = sv.f_bavail = (cap - CMN_MIN(cap, used)) / fs->conf->block_size;
    sv.f_files = 0;
    sv.f_namemax = NAME_MAX;
    sv.f_flag = (fs->conf->writable ? 0 : ST_RDONLY) | ST_NOSUID;
    fuse_reply_statfs(req, &sv);
}

/*
 * The running mount's statistics as JSON, for tierfs-stat: getxattr("user.tierfs.stats")
 * on the mount root. It needs no -o metrics and no network, and only someone who can see
 * the mount can ask. Every other name has no value (ENODATA), on every inode.
 */
static void fs_op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
    struct fs *fs = fs_of(req);
    char *json = NULL;
    size_t len = 0;

    if (ino != FUSE_ROOT_ID || strcmp(name, FS_STATS_XATTR) != 0) {
        fuse_reply_err(req, ENODATA);
        return;
    }
    if (fs_metrics_json(fs, &json, &len) < 0) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    /* Counters move between the size probe and the read: callers pass a roomy buffer. */
    if (size == 0)
        fuse_reply_xattr(req, len + 1024);
    else if (size < len)
        fuse_reply_err(req, ERANGE);
    else
        fuse_reply_buf(req, json, len);
    free(json);
}

static void fs_op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
    static const char names[] = FS_STATS_XATTR; /* with its NUL: the list format */

    if (ino != FUSE_ROOT_ID && size == 0)
        fuse_reply_xattr(req, 0);
    else if (ino != FUSE_ROOT_ID)
        fuse_reply_buf(req, NULL, 0);
    else if (size == 0)
        fuse_reply_xattr(req, sizeof(names));
    else if (size < sizeof(names))
        fuse_reply_err(req, ERANGE);
    else
        fuse_reply_buf(req, names, sizeof(names));
}

const struct fuse_lowlevel_ops fs_ops = {
    .init = fs_op_init,
    .lookup = fs_op_lookup,
    .forget = fs_op_forget,
    .forget_multi = fs_op_forget_multi,
    .getattr = fs_op_getattr,
    .open = fs_op_open,
    .read = fs_op_read,
    .release = fs_op_release,
    .opendir = fs_op_opendir,
    .readdir = fs_op_readdir,
    .readdirplus = fs_op_readdirplus,
    .releasedir = fs_op_releasedir,
    .statfs = fs_op_statfs,
    .getxattr = fs_op_getxattr,
    .listxattr = fs_op_listxattr,
};
