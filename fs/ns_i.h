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
    struct tlog_ratelimit rl;  /* metadata errors, logged once per burst */
};

/* ns.c, for listing.c: is metadata confirmed at @t_ms still fresh at @now_ms (metadata_ttl)?
 * Drop every negative entry of @dir (a new listing is the authority). Under fs->ns->lock. */
bool fs_fresh(const struct fs *fs, uint64_t t_ms, uint64_t now_ms);
void fs_neg_clear(struct fs_inode *dir);

#endif
