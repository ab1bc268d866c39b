/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ns_i.h: the namespace's own state, seen only by ns.c and listing.c (and the namespace's
 * unit test): the inode tables, the idle list, listing loads. The rest of the daemon goes
 * through the fs_ns_* functions of fs_i.h. The design and the invariants are at the top
 * of fs_i.h and ns.c.
 */
#ifndef TIERFS_FS_NS_I_H
#define TIERFS_FS_NS_I_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "common/list.h"
#include "common/log.h"
#include "fs/fs_i.h"

struct fs_htab {
    struct fs_inode **b;
    size_t nb, n;
};

/* The namespace (ns.c, listing.c): the inode tables, the idle list, listing loads. */
struct fs_ns {
    pthread_mutex_t lock; /* the namespace lock: both tables, inode fields above */
    pthread_cond_t cond;  /* listing loads finished */
    struct fs_htab ino_tab;
    struct fs_htab name_tab;
    uint64_t next_ino;
    struct fs_inode *root;
    struct cmn_list idle;      /* idle inodes (idle_link), least recently used first */
    size_t n_idle, idle_bytes; /* protected by lock */
    size_t n_local;            /* inodes with ->local set (protected by lock) */
    struct tlog_ratelimit rl;  /* metadata errors, logged once per burst */
};

/* ns.c, for listing.c: is metadata confirmed at @t_ms still fresh at @now_ms (metadata_ttl)?
 * Drop every negative entry of @dir (a new listing is the authority). Under fs->ns->lock. */
bool fs_fresh(const struct fs *fs, uint64_t t_ms, uint64_t now_ms);
void fs_neg_clear(struct fs_inode *dir);

struct fs_attr {
    bool is_dir;
    uint64_t size;
    int64_t mtime;
    const char *etag;
    uint64_t seen_ms; /* when they were true */
};
/* ns.c, for the other parts of the namespace (ns_write.c): under fs->ns->lock. */
struct fs_inode *fs_ino_find(struct fs *fs, uint64_t ino);
struct fs_inode *fs_name_find(struct fs *fs, uint64_t parent, const char *name);
void fs_neg_add(struct fs *fs, struct fs_inode *dir, const char *name, uint64_t now);
void fs_inode_ref(struct fs *fs, struct fs_inode *n);
void fs_inode_maybe_free(struct fs *fs, struct fs_inode *n);
/* Find or create the child @name of @parent with @a, count one lookup, fill @e. */
int fs_upsert(struct fs *fs, struct fs_inode *parent, const char *name, const struct fs_attr *a,
              struct fuse_entry_param *e);
/* @n is no longer reachable by its name (it lives on until the kernel forgets it). */
void fs_name_unhash(struct fs *fs, struct fs_inode *n);
void fs_negative_entry(const struct fs *fs, struct fuse_entry_param *e);
/* Set or clear @n's local flag (counted in fs->ns->n_local). */
void fs_inode_set_local(struct fs *fs, struct fs_inode *n, bool local);

#endif
