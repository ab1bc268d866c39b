/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ns_write.c: the namespace's side of writes (-o writable, write.c): a name taken by a writer,
 * its size while it grows, its attributes once the object exists, and names removed
 * (unlink) or made (mkdir).
 *
 * A file being written is not in S3 until its upload completes: its inode says so
 * (writing), so no HEAD asks S3 about it (fs_refresh_locked) and its size is the
 * writer's; a second writer, or a reader, of it is refused. On completion the inode takes
 * the object's ETag, size and time, and the parent's cached listing is dropped so the
 * next readdir lists the new key. On failure the name is unhashed: the next lookup asks
 * S3 again (the old object of an overwrite, or nothing).
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/util.h"
#include "fs/ns_i.h"

/* The key of @name in @dir, malloc'd. Under the lock. */
static char *fs_ns_child_key(const struct fs_inode *dir, const char *name)
{
    size_t plen = strlen(dir->key), nlen = strlen(name);
    char *key = malloc(plen + nlen + 1);
    if (key) {
        memcpy(key, dir->key, plen);
        memcpy(key + plen, name, nlen + 1);
    }
    return key;
}

/* Drop @dir's cached listing: the next readdir lists S3 again. Under the lock. */
static void fs_ns_listing_drop(struct fs_inode *dir)
{
    if (dir && dir->listing) {
        fs_listing_put(dir->listing);
        dir->listing = NULL;
    }
}

/* Mark @n taken by a writer, empty, pinned. Under the lock. */
static void fs_ns_take(struct fs *fs, struct fs_inode *n)
{
    n->writing = true;
    n->size = 0;
    n->etag[0] = '\0';
    n->mtime = (int64_t)time(NULL);
    n->attr_ms = cmn_now_ms();
    n->opens++;
    fs_inode_ref(fs, n);
    fs_inode_set_local(fs, n, true);
}

int fs_ns_create(struct fs *fs, fuse_ino_t parent, const char *name, struct fuse_entry_param *e,
                 struct fs_inode **out)
{
    struct fs_inode *dir, *n;
    int rc;

    *out = NULL;
    if (strlen(name) > NAME_MAX)
        return -ENAMETOOLONG;
    pthread_mutex_lock(&fs->ns->lock);
    dir = fs_ino_find(fs, parent);
    n = dir ? fs_name_find(fs, parent, name) : NULL;
    if (!dir)
        rc = -ENOENT;
    else if (!dir->is_dir)
        rc = -ENOTDIR;
    else if (n && n->writing)
        rc = -EBUSY; /* one writer per file */
    else if (n && n->is_dir)
        rc = -EISDIR;
    else {
        struct fs_attr a = {.size = 0, .mtime = time(NULL), .etag = "", .seen_ms = cmn_now_ms()};
        rc = fs_upsert(fs, dir, name, &a, e);
        if (rc == 0) {
            n = fs_name_find(fs, parent, name);
            fs_ns_take(fs, n);
            *out = n;
        }
    }
    pthread_mutex_unlock(&fs->ns->lock);
    return rc;
}

int fs_ns_open_write(struct fs *fs, fuse_ino_t ino, struct fs_inode **out)
{
    int rc = 0;

    *out = NULL;
    pthread_mutex_lock(&fs->ns->lock);
    struct fs_inode *n = fs_ino_find(fs, ino);
    if (!n)
        rc = -ENOENT;
    else if (n->is_dir)
        rc = -EISDIR;
    else if (n->writing)
        rc = -EBUSY;
    else {
        fs_ns_take(fs, n);
        *out = n;
    }
    pthread_mutex_unlock(&fs->ns->lock);
    return rc;
}

bool fs_ns_is_writing(struct fs *fs, const struct fs_inode *n)
{
    pthread_mutex_lock(&fs->ns->lock);
    bool w = n->writing;
    pthread_mutex_unlock(&fs->ns->lock);
    return w;
}

void fs_ns_write_size(struct fs *fs, struct fs_inode *n, uint64_t size)
{
    pthread_mutex_lock(&fs->ns->lock);
    n->size = size;
    n->mtime = (int64_t)time(NULL);
    n->attr_ms = cmn_now_ms();
    pthread_mutex_unlock(&fs->ns->lock);
}

void fs_ns_write_done(struct fs *fs, struct fs_inode *n, int result, uint64_t size,
                      const char *etag, struct fs_ctag *ct)
{
    pthread_mutex_lock(&fs->ns->lock);
    n->writing = false;
    if (result == 0 && ct) {
        n->ctag = ct; /* (an older version's job, if any, still holds its own) */
        n->opens++;   /* the re-key job's */
    }
    fs_inode_set_local(fs, n, false); /* in S3's listing now, or gone */
    if (result == 0) {
        n->size = size;
        snprintf(n->etag, sizeof(n->etag), "%s", etag);
        n->mtime = (int64_t)time(NULL);
        n->attr_ms = cmn_now_ms();
        n->open_etag[0] = '\0'; /* a new version: no page cache of an old one is kept */
    } else {
        n->etag[0] = '\0';
        n->attr_ms = 0;
        fs_name_unhash(fs, n); /* the next lookup asks S3 what is there */
    }
    fs_ns_listing_drop(fs_ino_find(fs, n->parent));
    n->opens--;
    fs_inode_maybe_free(fs, n);
    pthread_mutex_unlock(&fs->ns->lock);
}

void fs_ns_ctag_unuse(struct fs *fs, struct fs_ctag *ct)
{
    pthread_mutex_lock(&fs->ns->lock);
    ct->users--;
    pthread_mutex_unlock(&fs->ns->lock);
}

void fs_ns_ctag_switch(struct fs *fs, struct fs_ctag *ct)
{
    pthread_mutex_lock(&fs->ns->lock);
    ct->switched = true;
    pthread_mutex_unlock(&fs->ns->lock);
}

bool fs_ns_ctag_busy(struct fs *fs, struct fs_ctag *ct)
{
    pthread_mutex_lock(&fs->ns->lock);
    bool busy = ct->users > 0;
    pthread_mutex_unlock(&fs->ns->lock);
    return busy;
}

void fs_ns_ctag_done(struct fs *fs, struct fs_inode *n, struct fs_ctag *ct)
{
    pthread_mutex_lock(&fs->ns->lock);
    if (n->ctag == ct)
        n->ctag = NULL;
    n->opens--;
    fs_inode_maybe_free(fs, n);
    pthread_mutex_unlock(&fs->ns->lock);
}

int fs_ns_unlink(struct fs *fs, fuse_ino_t parent, const char *name)
{
    char errmsg[OBJSTORE_ERRMSG_MAX] = "";
    struct fs_inode *dir, *n;
    char *key = NULL;
    int rc = 0;

    pthread_mutex_lock(&fs->ns->lock);
    dir = fs_ino_find(fs, parent);
    n = dir ? fs_name_find(fs, parent, name) : NULL;
    if (!dir || !dir->is_dir)
        rc = -ENOENT;
    else if (n && n->is_dir)
        rc = -EISDIR;
    else if (n && n->writing)
        rc = -EBUSY;
    else if (!(key = fs_ns_child_key(dir, name)))
        rc = -ENOMEM;
    pthread_mutex_unlock(&fs->ns->lock);
    if (rc)
        return rc;
    rc = objstore_delete(fs->os, key, NULL, errmsg, sizeof(errmsg));
    if (rc == 0 || rc == -ENOENT) { /* S3's DELETE of a missing key answers 204 anyway */
        TLOG_I("unlink: deleted '%s'", key);
        pthread_mutex_lock(&fs->ns->lock);
        dir = fs_ino_find(fs, parent);
        n = dir ? fs_name_find(fs, parent, name) : NULL;
        if (n && !n->writing)
            fs_name_unhash(fs, n);
        if (dir) {
            fs_neg_add(fs, dir, name, cmn_now_ms());
            fs_ns_listing_drop(dir);
        }
        pthread_mutex_unlock(&fs->ns->lock);
        rc = 0;
    } else {
        TLOG_W("unlink: DELETE '%s' failed: %s", key, errmsg[0] ? errmsg : objstore_strerror(rc));
    }
    free(key);
    return rc;
}

int fs_ns_mkdir(struct fs *fs, fuse_ino_t parent, const char *name, struct fuse_entry_param *e)
{
    int rc;

    if (strlen(name) > NAME_MAX)
        return -ENAMETOOLONG;
    pthread_mutex_lock(&fs->ns->lock);
    struct fs_inode *dir = fs_ino_find(fs, parent);
    struct fs_inode *n = dir ? fs_name_find(fs, parent, name) : NULL;
    if (!dir || !dir->is_dir) {
        rc = -ENOENT;
    } else if (n) {
        rc = -EEXIST;
    } else {
        /* S3 has no directories: this one lives in the inode table, fresh for as long as
         * the inode lives (tierfs(1), WRITES), and in S3 once a file in it is complete. */
        struct fs_attr a = {
            .is_dir = true, .mtime = time(NULL), .etag = "", .seen_ms = UINT64_MAX / 2};
        rc = fs_upsert(fs, dir, name, &a, e);
        if (rc == 0)
            fs_inode_set_local(fs, fs_name_find(fs, parent, name), true);
    }
    pthread_mutex_unlock(&fs->ns->lock);
    return rc;
}
