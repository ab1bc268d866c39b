/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ops_write.c: the FUSE operations of -o writable (write.c, ns_write.c). Without -o writable the
 * mount is read-only (the kernel answers EROFS before any of these is called).
 *
 * What S3 can do is allowed: a new file written from start to end (create, write, flush,
 * fsync, release), an existing one replaced with O_TRUNC (allow_overwrite), unlink
 * (allow_delete), mkdir. Everything else fails at once with one log line and S3 left as
 * it was: a write at another offset (EINVAL), a second writer or a reader of a file being
 * written (EBUSY), rename, link, symlink and fallocate (ENOTSUP), chmod, chown and a
 * truncate to another size (EPERM). Time changes (touch, tar) are accepted and ignored:
 * S3 keeps its own Last-Modified.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "fs/fs_i.h"

#define FS_FH_WRITE 0x1ull /* fi->fh of a write handle: its pointer with the low bit set */

static struct fs *fs_of(fuse_req_t req)
{
    return fuse_req_userdata(req);
}

bool fs_fh_is_write(const struct fuse_file_info *fi)
{
    return fi->fh & FS_FH_WRITE;
}

static struct fs_whandle *fs_fh_write(const struct fuse_file_info *fi)
{
    return (struct fs_whandle *)(uintptr_t)(fi->fh & ~FS_FH_WRITE);
}

/* One line for a refused operation. */
static void fs_refuse(fuse_req_t req, int err, const char *what, const char *why)
{
    TLOG_W("%s refused: %s", what, why);
    fuse_reply_err(req, err);
}

/* A write handle on @n (taken for writing) into @fi, replied with @e (create) or as an
 * open. */
static void fs_reply_write_open(fuse_req_t req, struct fs_inode *n, struct fuse_file_info *fi,
                                const struct fuse_entry_param *e)
{
    struct fs *fs = fs_of(req);
    struct fs_whandle *h = NULL;
    int rc = fs_write_open(fs, n, n->key, &h); /* (an inode's key never changes; copied) */

    if (rc) {
        fs_ns_write_done(fs, n, rc, 0, "", NULL);
        fuse_reply_err(req, -rc);
        return;
    }
    fi->fh = (uintptr_t)h | FS_FH_WRITE;
    fi->direct_io = 1; /* every byte through write(): no page cache of a file not in S3 */
    fi->keep_cache = 0;
    int sent = e ? fuse_reply_create(req, e, fi) : fuse_reply_open(req, fi);
    if (sent != 0) {
        fs_write_release(h); /* interrupted: no release will come */
        return;
    }
    __atomic_add_fetch(&fs->ctr.open_files, 1, __ATOMIC_RELAXED);
}

static void fs_op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                         struct fuse_file_info *fi)
{
    struct fs *fs = fs_of(req);
    struct fuse_entry_param e;
    struct fs_inode *n;
    (void)mode; /* S3 keeps no mode: file_mode shows */

    if (!S_ISREG(mode)) {
        fs_refuse(req, EPERM, "create", "only regular files");
        return;
    }
    int rc = fs_ns_create(fs, parent, name, &e, &n);
    if (rc) {
        if (rc == -EBUSY)
            TLOG_W("create '%s' refused: it is being written", name);
        fuse_reply_err(req, -rc);
        return;
    }
    fs_reply_write_open(req, n, fi, &e);
}

void fs_ops_open_write(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct fs *fs = fs_of(req);
    struct fs_inode *n = fs_ns_open(fs, ino);
    bool busy = n && fs_ns_is_writing(fs, n);

    fs_ns_release(fs, n);
    if (busy) {
        fs_refuse(req, EBUSY, "open for writing", "the file is being written (one writer)");
        return;
    }
    if (!(fi->flags & O_TRUNC)) {
        fs_refuse(req, EPERM, "open for writing",
                  "an existing file is replaced whole (O_TRUNC), never changed in place");
        return;
    }
    if (!fs->conf->allow_overwrite) {
        fs_refuse(req, EPERM, "open with O_TRUNC", "replacing a file needs -o allow_overwrite");
        return;
    }
    int rc = fs_ns_open_write(fs, ino, &n);
    if (rc) {
        fuse_reply_err(req, -rc);
        return;
    }
    fs_reply_write_open(req, n, fi, NULL);
}

void fs_ops_release_write(struct fs *fs, struct fuse_file_info *fi)
{
    __atomic_sub_fetch(&fs->ctr.open_files, 1, __ATOMIC_RELAXED);
    fs_write_release(fs_fh_write(fi));
}

static void fs_op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                        struct fuse_file_info *fi)
{
    (void)ino;
    if (!fs_fh_is_write(fi)) {
        fuse_reply_err(req, EBADF);
        return;
    }
    ssize_t n = fs_write(fs_fh_write(fi), buf, size, (uint64_t)off);
    if (n < 0)
        fuse_reply_err(req, (int)-n);
    else
        fuse_reply_write(req, (size_t)n);
}

/* close() of a descriptor. A FLUSH before any byte was written is the close of a
 * duplicate (a shell's redirection, dd's dup2): it completes nothing; an empty file is
 * created at release. After bytes were written it completes the upload. */
static void fs_op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)ino;
    if (!fs_fh_is_write(fi) || fs_write_empty(fs_fh_write(fi)))
        fuse_reply_err(req, 0);
    else
        fuse_reply_err(req, -fs_write_flush(fs_fh_write(fi)));
}

static void fs_op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
    (void)ino, (void)datasync;
    fuse_reply_err(req, fs_fh_is_write(fi) ? -fs_write_flush(fs_fh_write(fi)) : 0);
}

static void fs_op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct fs *fs = fs_of(req);

    if (!fs->conf->allow_delete) {
        fs_refuse(req, EPERM, "unlink", "deleting objects needs -o allow_delete");
        return;
    }
    fuse_reply_err(req, -fs_ns_unlink(fs, parent, name));
}

static void fs_op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
    struct fuse_entry_param e;
    (void)mode;
    int rc = fs_ns_mkdir(fs_of(req), parent, name, &e);
    if (rc)
        fuse_reply_err(req, -rc);
    else
        fuse_reply_entry(req, &e);
}

static void fs_op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    (void)parent, (void)name;
    fs_refuse(req, ENOTSUP, "rmdir",
              "S3 has no directories to remove (an empty one made by "
              "mkdir goes away on its own)");
}

static void fs_op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                         const char *newname, unsigned int flags)
{
    (void)parent, (void)name, (void)newparent, (void)newname, (void)flags;
    fs_refuse(req, ENOTSUP, "rename", "S3 cannot rename objects");
}

static void fs_op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
    (void)ino, (void)newparent, (void)newname;
    fs_refuse(req, ENOTSUP, "link", "S3 has no hard links");
}

static void fs_op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
    (void)link, (void)parent, (void)name;
    fs_refuse(req, ENOTSUP, "symlink", "S3 has no symbolic links");
}

static void fs_op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
                            struct fuse_file_info *fi)
{
    (void)ino, (void)mode, (void)offset, (void)length, (void)fi;
    fs_refuse(req, ENOTSUP, "fallocate", "files are written from start to end");
}

static void fs_op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                          struct fuse_file_info *fi)
{
    struct fs *fs = fs_of(req);
    struct stat st;
    (void)fi;

    if (to_set & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
        fs_refuse(req, EPERM, "chmod/chown", "S3 keeps no owner or mode (uid, gid, file_mode)");
        return;
    }
    int rc = fs_ns_getattr(fs, ino, &st);
    if (rc) {
        fuse_reply_err(req, -rc);
        return;
    }
    if ((to_set & FUSE_SET_ATTR_SIZE) && attr->st_size != st.st_size) {
        fs_refuse(req, EPERM, "truncate",
                  "only to the size a file already has (O_TRUNC at open "
                  "replaces a file)");
        return;
    }
    /* times: accepted, not kept (S3's Last-Modified is the object's time) */
    fuse_reply_attr(req, &st, (double)fs->conf->metadata_ttl_ms / 1000.0);
}

void fs_ops_add_write(struct fuse_lowlevel_ops *ops)
{
    ops->create = fs_op_create;
    ops->write = fs_op_write;
    ops->flush = fs_op_flush;
    ops->fsync = fs_op_fsync;
    ops->unlink = fs_op_unlink;
    ops->mkdir = fs_op_mkdir;
    ops->rmdir = fs_op_rmdir;
    ops->rename = fs_op_rename;
    ops->link = fs_op_link;
    ops->symlink = fs_op_symlink;
    ops->fallocate = fs_op_fallocate;
    ops->setattr = fs_op_setattr;
}
