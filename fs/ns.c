/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ns.c: the namespace of tierfs: the inode table, cached "/"-delimited listings, lookups.
 *
 * The kernel forgets inodes whenever it likes (drop_caches, memory pressure), and the
 * listing, attributes and negative entries cached on them would go with them: a warm
 * `find` would LIST everything again well within metadata_ttl. So an inode the kernel
 * forgot stays, unreferenced, on the idle list (least recently used first) while its
 * metadata is fresh; a later lookup of the same name finds it, with the same inode
 * number and its cache. Expired ones are freed from the head of the list as it moves,
 * and the list is bounded by FS_IDLE_MAX_BYTES (inodes plus their listings).
 *
 * INVARIANTS (all under fs->ns->lock)
 * - Every inode is in ino_tab. It is in name_tab under (parent, name) iff name_hashed;
 *   at most one hashed inode per (parent, name).
 * - An inode other than the root with nlookup == 0 and opens == 0 is either on the idle
 *   list (idle, name_hashed, fs->ns->idle_bytes counts it) or freed; a referenced inode is
 *   never idle. So an inode number the kernel still knows always resolves, and numbers
 *   are never reused.
 * - A listing snapshot is immutable once published; dir->listing holds one reference.
 * - A name is never both in a directory's negative list and hashed as a child.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/util.h"
#include "fs/fs_i.h"
#include "fs/ns_i.h"

#define FS_LIST_PAGE 1000
#define FS_INO_NEXT offsetof(struct fs_inode, ino_next)
#define FS_NAME_NEXT offsetof(struct fs_inode, name_next)
/* The chain link of table @off (FS_INO_NEXT or FS_NAME_NEXT) of @n. A field select, not
 * pointer arithmetic on the offset: clang's -Wcast-align rejects the char * cast. */
#define FS_NEXT(n, off) (*((off) == FS_INO_NEXT ? &(n)->ino_next : &(n)->name_next))

/* ---- hash tables (chained, power-of-two sized, grown at load factor 1) ---- */

static uint64_t fs_ino_hash(uint64_t ino)
{
    return cmn_hash64(&ino, sizeof(ino), 0x9e3779b97f4a7c15ull);
}

static uint64_t fs_name_hash(uint64_t parent, const char *name)
{
    return cmn_hash64(name, strlen(name), parent);
}

static uint64_t fs_node_hash(const struct fs_inode *n, size_t off)
{
    return off == FS_INO_NEXT ? fs_ino_hash(n->ino) : fs_name_hash(n->parent, n->name);
}

static int fs_htab_init(struct fs_htab *t)
{
    t->nb = 1024;
    t->n = 0;
    t->b = calloc(t->nb, sizeof(*t->b));
    return t->b ? 0 : -ENOMEM;
}

/* Grow when the load factor passes 1; a failed grow only costs speed. */
static void fs_htab_grow(struct fs_htab *t, size_t off)
{
    size_t nb = t->nb * 2;
    struct fs_inode **b = calloc(nb, sizeof(*b));
    if (!b)
        return;
    for (size_t i = 0; i < t->nb; i++) {
        struct fs_inode *n = t->b[i];
        while (n) {
            struct fs_inode *next = FS_NEXT(n, off);
            size_t s = fs_node_hash(n, off) & (nb - 1);
            FS_NEXT(n, off) = b[s];
            b[s] = n;
            n = next;
        }
    }
    free(t->b);
    t->b = b;
    t->nb = nb;
}

static void fs_htab_insert(struct fs_htab *t, struct fs_inode *n, size_t off)
{
    if (t->n >= t->nb)
        fs_htab_grow(t, off);
    size_t s = fs_node_hash(n, off) & (t->nb - 1);
    FS_NEXT(n, off) = t->b[s];
    t->b[s] = n;
    t->n++;
}

static void fs_htab_remove(struct fs_htab *t, struct fs_inode *n, size_t off)
{
    struct fs_inode **pp = &t->b[fs_node_hash(n, off) & (t->nb - 1)];
    for (; *pp; pp = &FS_NEXT(*pp, off)) {
        if (*pp == n) {
            *pp = FS_NEXT(n, off);
            t->n--;
            return;
        }
    }
}

struct fs_inode *fs_ino_find(struct fs *fs, uint64_t ino)
{
    struct fs_inode *n = fs->ns->ino_tab.b[fs_ino_hash(ino) & (fs->ns->ino_tab.nb - 1)];
    while (n && n->ino != ino)
        n = n->ino_next;
    return n;
}

struct fs_inode *fs_name_find(struct fs *fs, uint64_t parent, const char *name)
{
    struct fs_inode *n = fs->ns->name_tab.b[fs_name_hash(parent, name) & (fs->ns->name_tab.nb - 1)];
    while (n && (n->parent != parent || strcmp(n->name, name) != 0))
        n = n->name_next;
    return n;
}

/* ---- small helpers ---- */

bool fs_fresh(const struct fs *fs, uint64_t t_ms, uint64_t now_ms)
{
    /* a time in the future: metadata made here that S3 cannot confirm (mkdir) */
    return t_ms && (t_ms > now_ms || now_ms - t_ms < fs->conf->metadata_ttl_ms);
}

bool fs_name_ok(const char *name, size_t len)
{
    if (len == 0 || len > NAME_MAX)
        return false;
    if (name[0] == '.' && (len == 1 || (len == 2 && name[1] == '.')))
        return false;
    return memchr(name, '/', len) == NULL && memchr(name, '\0', len) == NULL;
}

void fs_listing_put(struct fs_listing *l)
{
    if (!l || __atomic_sub_fetch(&l->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    for (size_t i = 0; i < l->n; i++)
        free(l->ents[i].name); /* etag shares the allocation */
    free(l->ents);
    free(l);
}

void fs_neg_clear(struct fs_inode *dir)
{
    while (dir->neg) {
        struct fs_neg *n = dir->neg;
        dir->neg = n->next;
        free(n);
    }
    dir->n_neg = 0;
}

/* Find @name in @dir's negative list, dropping expired entries on the way. */
static bool fs_neg_find(struct fs_inode *dir, const char *name, uint64_t now)
{
    struct fs_neg **pp = &dir->neg;
    while (*pp) {
        struct fs_neg *n = *pp;
        if (now >= n->expires_ms) {
            *pp = n->next;
            dir->n_neg--;
            free(n);
            continue;
        }
        if (strcmp(n->name, name) == 0)
            return true;
        pp = &n->next;
    }
    return false;
}

static void fs_neg_remove(struct fs_inode *dir, const char *name)
{
    for (struct fs_neg **pp = &dir->neg; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->name, name) == 0) {
            struct fs_neg *n = *pp;
            *pp = n->next;
            dir->n_neg--;
            free(n);
            return;
        }
    }
}

/* Remember that @name is missing; the oldest entry goes when the list is full. */
void fs_neg_add(struct fs *fs, struct fs_inode *dir, const char *name, uint64_t now)
{
    if (fs->conf->negative_ttl_ms == 0)
        return;
    size_t len = strlen(name);
    struct fs_neg *n = malloc(sizeof(*n) + len + 1);
    if (!n)
        return; /* only a cache */
    memcpy(n->name, name, len + 1);
    n->expires_ms = now + fs->conf->negative_ttl_ms;
    n->next = dir->neg;
    dir->neg = n;
    if (++dir->n_neg > FS_NEG_MAX) {
        struct fs_neg **pp = &dir->neg;
        while ((*pp)->next)
            pp = &(*pp)->next;
        free(*pp);
        *pp = NULL;
        dir->n_neg--;
    }
}

static void fs_inode_free(struct fs_inode *n)
{
    if (!n)
        return;
    fs_listing_put(n->listing);
    fs_neg_clear(n);
    free(n->name);
    free(n->key);
    free(n);
}

/* ---- the idle list (see the top of the file) ---- */

/* Is any of @n's cached metadata still worth a lookup saved? */
static bool fs_inode_fresh(const struct fs *fs, const struct fs_inode *n, uint64_t now)
{
    if (fs_fresh(fs, n->attr_ms, now))
        return true;
    if (n->listing && fs_fresh(fs, n->listing->loaded_ms, now))
        return true;
    return n->neg && now < n->neg->expires_ms; /* newest first */
}

#define FS_IDLE_INODE(lk) CMN_LIST_ENTRY(lk, struct fs_inode, idle_link)

static void fs_idle_unlink(struct fs *fs, struct fs_inode *n)
{
    if (!n->idle)
        return;
    cmn_list_unlink(&fs->ns->idle, &n->idle_link);
    n->idle = false;
    fs->ns->n_idle--;
    fs->ns->idle_bytes -= n->idle_bytes;
}

void fs_inode_set_local(struct fs *fs, struct fs_inode *n, bool local)
{
    if (n->local != local)
        fs->ns->n_local += local ? 1 : (size_t)-1;
    n->local = local;
}

/* Remove @n from both tables and free it. Caller holds fs->ns->lock. */
static void fs_inode_destroy(struct fs *fs, struct fs_inode *n)
{
    fs_inode_set_local(fs, n, false);
    fs_idle_unlink(fs, n);
    fs_htab_remove(&fs->ns->ino_tab, n, FS_INO_NEXT);
    if (n->name_hashed)
        fs_htab_remove(&fs->ns->name_tab, n, FS_NAME_NEXT);
    fs_inode_free(n);
}

/* Free idle inodes from the old end while the list is over its bound or they expired.
 * A child may outlive its idle parent: unreachable then (parent numbers are never
 * reused), it waits for its turn at the head. */
static void fs_idle_trim(struct fs *fs, uint64_t now)
{
    struct fs_inode *oldest;

    while ((oldest = FS_IDLE_INODE(fs->ns->idle.head)) &&
           (fs->ns->idle_bytes > FS_IDLE_MAX_BYTES || !fs_inode_fresh(fs, oldest, now)))
        fs_inode_destroy(fs, oldest);
}

/* @n is referenced again (a lookup or an open): it leaves the idle list. */
void fs_inode_ref(struct fs *fs, struct fs_inode *n)
{
    fs_idle_unlink(fs, n);
}

/*
 * Called when a reference to @n went away: keep it on the idle list if its metadata is
 * fresh and its name can find it again, otherwise free it. Caller holds fs->ns->lock.
 */
void fs_inode_maybe_free(struct fs *fs, struct fs_inode *n)
{
    uint64_t now;

    if (n == fs->ns->root || n->nlookup > 0 || n->opens > 0)
        return;
    if (n->idle && n->name_hashed)
        return;
    now = cmn_now_ms();
    if (!n->idle && n->name_hashed && fs_inode_fresh(fs, n, now)) {
        n->idle_bytes = sizeof(*n) + strlen(n->name) + strlen(n->key) + 2 +
                        (n->listing ? n->listing->bytes : 0) +
                        n->n_neg * (sizeof(struct fs_neg) + 32);
        n->idle = true;
        cmn_list_push_tail(&fs->ns->idle, &n->idle_link);
        fs->ns->n_idle++;
        fs->ns->idle_bytes += n->idle_bytes;
        fs_idle_trim(fs, now);
        return;
    }
    fs_inode_destroy(fs, n);
}

static struct fs_inode *fs_inode_new(struct fs *fs, const struct fs_inode *parent, const char *name,
                                     bool is_dir)
{
    struct fs_inode *n = calloc(1, sizeof(*n));
    size_t plen = strlen(parent->key), nlen = strlen(name);
    if (!n)
        return NULL;
    n->name = strdup(name);
    n->key = malloc(plen + nlen + 2);
    if (!n->name || !n->key) {
        fs_inode_free(n);
        return NULL;
    }
    memcpy(n->key, parent->key, plen);
    memcpy(n->key + plen, name, nlen);
    if (is_dir)
        n->key[plen + nlen++] = '/';
    n->key[plen + nlen] = '\0';
    n->ino = fs->ns->next_ino++;
    n->parent = parent->ino;
    n->is_dir = is_dir;
    return n;
}

/* Attributes of one name as S3 reported them. */

/*
 * Find or create the child @name of @parent with @a, count one lookup, fill @e.
 * A child whose type changed gets a new inode; the old one lives on unhashed until
 * the kernel forgets it. Caller holds fs->ns->lock. @return 0 or -ENOMEM.
 */
int fs_upsert(struct fs *fs, struct fs_inode *parent, const char *name, const struct fs_attr *a,
              struct fuse_entry_param *e)
{
    struct fs_inode *n = fs_name_find(fs, parent->ino, name);
    if (n && n->is_dir != a->is_dir) {
        fs_htab_remove(&fs->ns->name_tab, n, FS_NAME_NEXT);
        n->name_hashed = false;
        fs_inode_maybe_free(fs, n);
        n = NULL;
    }
    if (!n) {
        n = fs_inode_new(fs, parent, name, a->is_dir);
        if (!n)
            return -ENOMEM;
        fs_htab_insert(&fs->ns->ino_tab, n, FS_INO_NEXT);
        fs_htab_insert(&fs->ns->name_tab, n, FS_NAME_NEXT);
        n->name_hashed = true;
    }
    /* Never let an older listing overwrite what a newer HEAD said. A lookup within the
     * TTL passes the inode's own attributes (a->etag == n->etag): nothing to copy, and
     * snprintf onto its own source is undefined (glibc writes "", which unpinned the
     * version: empty-ETag handles shared cache keys across versions and sent no If-Match). */
    if (a->seen_ms >= n->attr_ms) {
        n->size = a->size;
        n->mtime = a->mtime;
        if (a->etag != n->etag)
            snprintf(n->etag, sizeof(n->etag), "%s", a->etag ? a->etag : "");
        n->attr_ms = a->seen_ms;
    }
    fs_neg_remove(parent, name);
    n->nlookup++;
    fs_inode_ref(fs, n);
    memset(e, 0, sizeof(*e));
    e->ino = n->ino;
    e->generation = 1; /* inode numbers are never reused within a mount */
    fs_ns_fill_stat(fs, n, &e->attr);
    e->attr_timeout = e->entry_timeout = (double)fs->conf->metadata_ttl_ms / 1000.0;
    return 0;
}

void fs_name_unhash(struct fs *fs, struct fs_inode *n)
{
    if (!n->name_hashed)
        return;
    fs_htab_remove(&fs->ns->name_tab, n, FS_NAME_NEXT);
    n->name_hashed = false;
}

void fs_negative_entry(const struct fs *fs, struct fuse_entry_param *e)
{
    memset(e, 0, sizeof(*e));
    e->ino = 0; /* the kernel caches a negative dentry for entry_timeout */
    e->entry_timeout = (double)fs->conf->negative_ttl_ms / 1000.0;
}

void fs_ns_fill_stat(const struct fs *fs, const struct fs_inode *n, struct stat *st)
{
    const struct fs_conf *c = fs->conf;
    memset(st, 0, sizeof(*st));
    st->st_ino = n->ino;
    st->st_uid = c->uid;
    st->st_gid = c->gid;
    st->st_blksize = c->block_size;
    if (n->is_dir) {
        st->st_mode = S_IFDIR | c->dir_mode;
        st->st_nlink = 2;
        st->st_size = 0;
        st->st_mtim.tv_sec = fs->mount_time;
    } else {
        st->st_mode = S_IFREG | c->file_mode;
        st->st_nlink = 1;
        st->st_size = (off_t)n->size;
        st->st_blocks = (blkcnt_t)((n->size + 511) / 512);
        st->st_mtim.tv_sec = n->mtime;
    }
    st->st_atim = st->st_ctim = st->st_mtim;
}

/* ---- S3 probes ---- */

struct fs_probe {
    pthread_mutex_t m;
    pthread_cond_t c;
    int pending;
};

static void fs_probe_done(struct objstore_req *req)
{
    struct fs_probe *p = req->arg;
    pthread_mutex_lock(&p->m);
    if (--p->pending == 0)
        pthread_cond_signal(&p->c);
    pthread_mutex_unlock(&p->m);
}

/*
 * What is @key: a file (HEAD), a directory (something under "key/"), or nothing?
 * Both requests go out at once so a lookup costs one round trip.
 * @return 0 and *a (etag copied to @etag), -ENOENT, or -errno.
 */
static int fs_probe(struct fs *fs, const char *key, struct fs_attr *a, char *etag)
{
    struct fs_probe p = {.pending = 2};
    struct objstore_req head, list;
    size_t klen = strlen(key);
    char *dirkey = malloc(klen + 2);
    int rc;

    if (!dirkey)
        return -ENOMEM;
    memcpy(dirkey, key, klen);
    memcpy(dirkey + klen, "/", 2);
    pthread_mutex_init(&p.m, NULL);
    pthread_cond_init(&p.c, NULL);
    memset(&head, 0, sizeof(head));
    memset(&list, 0, sizeof(list));
    head.op = OBJSTORE_OP_HEAD;
    head.key = key;
    head.done = fs_probe_done;
    head.arg = &p;
    list.op = OBJSTORE_OP_LIST;
    list.list.prefix = dirkey;
    list.list.max_keys = 1;
    list.done = fs_probe_done;
    list.arg = &p;

    if ((rc = objstore_submit(fs->os, &head)) != 0) {
        head.result = rc;
        p.pending--;
    }
    if ((rc = objstore_submit(fs->os, &list)) != 0) {
        list.result = rc;
        p.pending--;
    }
    pthread_mutex_lock(&p.m);
    while (p.pending > 0)
        pthread_cond_wait(&p.c, &p.m);
    pthread_mutex_unlock(&p.m);

    memset(a, 0, sizeof(*a));
    if (list.result == 0 && (list.list_result.n_entries || list.list_result.n_prefixes)) {
        a->is_dir = true; /* a directory shadows a file of the same name */
        rc = 0;
    } else if (head.result == 0) {
        a->size = head.info.size;
        a->mtime = head.info.mtime_sec;
        snprintf(etag, OBJSTORE_ETAG_MAX, "%s", head.info.etag);
        a->etag = etag;
        rc = 0;
    } else if (head.result == -ENOENT && (list.result == 0 || list.result == -ENOENT)) {
        rc = -ENOENT;
    } else {
        rc = head.result != -ENOENT ? head.result : list.result;
        tlog_rl_msg(&fs->ns->rl, TLOG_ERR, "lookup of '%s' failed: %s", key,
                    head.result != -ENOENT ? head.errmsg : list.errmsg);
    }
    if (list.result == 0)
        objstore_list_result_free(&list.list_result);
    pthread_cond_destroy(&p.c);
    pthread_mutex_destroy(&p.m);
    free(dirkey);
    return rc;
}

/* ---- operations ---- */

int fs_ns_init(struct fs *fs)
{
    int rc;
    fs->ns = calloc(1, sizeof(*fs->ns));
    if (!fs->ns)
        return -ENOMEM;
    pthread_mutex_init(&fs->ns->lock, NULL);
    pthread_cond_init(&fs->ns->cond, NULL);
    fs->ns->idle = (struct cmn_list){NULL, NULL};
    if ((rc = fs_htab_init(&fs->ns->ino_tab)) != 0)
        goto fail_ino;
    if ((rc = fs_htab_init(&fs->ns->name_tab)) != 0)
        goto fail_name;
    fs->ns->root = calloc(1, sizeof(*fs->ns->root));
    if (!fs->ns->root)
        goto fail_root;
    fs->ns->root->ino = FUSE_ROOT_ID;
    fs->ns->root->parent = FUSE_ROOT_ID;
    fs->ns->root->name = strdup("");
    fs->ns->root->key = strdup(fs->conf->prefix);
    if (!fs->ns->root->name || !fs->ns->root->key)
        goto fail_root;
    fs->ns->root->is_dir = true;
    fs->ns->root->nlookup = 1;
    fs->ns->next_ino = FUSE_ROOT_ID + 1;
    fs_htab_insert(&fs->ns->ino_tab, fs->ns->root, FS_INO_NEXT);
    fs->ns->rl = (struct tlog_ratelimit){.interval_ms = 10000, .burst = 1};
    return 0;

fail_root:
    fs_inode_free(fs->ns->root);
    fs->ns->root = NULL;
    free(fs->ns->name_tab.b);
fail_name:
    free(fs->ns->ino_tab.b);
fail_ino:
    pthread_cond_destroy(&fs->ns->cond);
    pthread_mutex_destroy(&fs->ns->lock);
    free(fs->ns);
    fs->ns = NULL;
    return -ENOMEM;
}

void fs_ns_fini(struct fs *fs)
{
    if (!fs->ns)
        return;
    for (size_t i = 0; i < fs->ns->ino_tab.nb; i++) {
        struct fs_inode *n = fs->ns->ino_tab.b[i];
        while (n) {
            struct fs_inode *next = n->ino_next;
            fs_inode_free(n);
            n = next;
        }
    }
    free(fs->ns->ino_tab.b);
    free(fs->ns->name_tab.b);
    pthread_cond_destroy(&fs->ns->cond);
    pthread_mutex_destroy(&fs->ns->lock);
    free(fs->ns);
    fs->ns = NULL;
}

bool fs_ns_same_version(struct fs *fs, const struct fs_inode *ino, const char *etag, uint64_t size)
{
    bool same;

    pthread_mutex_lock(&fs->ns->lock);
    same = strcmp(ino->etag, etag) == 0 && ino->size == size;
    pthread_mutex_unlock(&fs->ns->lock);
    return same;
}

int fs_ns_lookup(struct fs *fs, fuse_ino_t parent, const char *name, struct fuse_entry_param *e)
{
    struct fs_inode *dir, *n;
    struct fs_attr a;
    char etag[OBJSTORE_ETAG_MAX];
    char *key = NULL;
    uint64_t now = cmn_now_ms();
    size_t nlen = strlen(name);
    int rc;

    if (nlen > NAME_MAX)
        return -ENAMETOOLONG;
    pthread_mutex_lock(&fs->ns->lock);
    dir = fs_ino_find(fs, parent);
    if (!dir) {
        rc = -ENOENT;
        goto out_unlock;
    }
    if (!dir->is_dir) {
        rc = -ENOTDIR;
        goto out_unlock;
    }
    if (!fs_name_ok(name, nlen)) {
        rc = -ENOENT;
        goto out_unlock;
    }
    n = fs_name_find(fs, parent, name);
    if (n && fs_fresh(fs, n->attr_ms, now)) {
        a = (struct fs_attr){.is_dir = n->is_dir,
                             .size = n->size,
                             .mtime = n->mtime,
                             .etag = n->etag,
                             .seen_ms = n->attr_ms};
        rc = fs_upsert(fs, dir, name, &a, e);
        goto out_unlock;
    }
    if (dir->listing && fs_fresh(fs, dir->listing->loaded_ms, now)) {
        const struct fs_dirent *de = fs_listing_find(dir->listing, name);
        if (!de) {
            rc = -ENOENT;
            goto out_unlock;
        }
        a = (struct fs_attr){.is_dir = de->is_dir,
                             .size = de->size,
                             .mtime = de->mtime,
                             .etag = de->etag,
                             .seen_ms = dir->listing->loaded_ms};
        rc = fs_upsert(fs, dir, name, &a, e);
        goto out_unlock;
    }
    if (fs_neg_find(dir, name, now)) {
        rc = -ENOENT;
        goto out_unlock;
    }
    size_t plen = strlen(dir->key);
    key = malloc(plen + nlen + 1);
    if (!key) {
        rc = -ENOMEM;
        goto out_unlock;
    }
    memcpy(key, dir->key, plen);
    memcpy(key + plen, name, nlen + 1);
    pthread_mutex_unlock(&fs->ns->lock);

    rc = fs_probe(fs, key, &a, etag);

    pthread_mutex_lock(&fs->ns->lock);
    /* The kernel holds a reference on @parent for the whole lookup. */
    dir = fs_ino_find(fs, parent);
    if (!dir) {
        rc = -ENOENT;
    } else if (rc == 0) {
        a.seen_ms = now;
        rc = fs_upsert(fs, dir, name, &a, e);
    } else if (rc == -ENOENT) {
        fs_neg_add(fs, dir, name, now);
    }
out_unlock:
    pthread_mutex_unlock(&fs->ns->lock);
    free(key);
    if (rc == -ENOENT)
        fs_negative_entry(fs, e);
    return rc;
}

void fs_ns_forget(struct fs *fs, fuse_ino_t ino, uint64_t nlookup)
{
    pthread_mutex_lock(&fs->ns->lock);
    struct fs_inode *n = fs_ino_find(fs, ino);
    if (n) {
        n->nlookup = nlookup > n->nlookup ? 0 : n->nlookup - nlookup;
        fs_inode_maybe_free(fs, n);
    }
    pthread_mutex_unlock(&fs->ns->lock);
}

/*
 * Refresh the attributes of file @n with a HEAD when they are older than the TTL.
 * Called with fs->ns->lock held and @n pinned (opens > 0); drops and retakes the lock.
 * On errors other than "gone" the cached attributes are kept (S3 down: stay usable).
 */
static int fs_refresh_locked(struct fs *fs, struct fs_inode *n)
{
    struct objstore_object_info info;
    char errmsg[OBJSTORE_ERRMSG_MAX] = "";
    uint64_t now = cmn_now_ms();
    int rc;

    if (n->is_dir || n->writing || fs_fresh(fs, n->attr_ms, now))
        return 0; /* (a file being written is not in S3 yet: its size is the writer's) */
    pthread_mutex_unlock(&fs->ns->lock);
    rc = objstore_head(fs->os, n->key, &info, errmsg, sizeof(errmsg));
    pthread_mutex_lock(&fs->ns->lock);
    if (rc == 0) {
        if (now >= n->attr_ms) {
            n->size = info.size;
            n->mtime = info.mtime_sec;
            snprintf(n->etag, sizeof(n->etag), "%s", info.etag);
            n->attr_ms = now;
        }
        return 0;
    }
    if (rc == -ENOENT || rc == -EACCES || !n->etag[0])
        return rc;
    tlog_rl_msg(&fs->ns->rl, TLOG_WARNING, "HEAD '%s' failed (%s); using cached attributes", n->key,
                errmsg[0] ? errmsg : objstore_strerror(rc));
    return 0;
}

int fs_ns_getattr(struct fs *fs, fuse_ino_t ino, struct stat *st)
{
    int rc;
    pthread_mutex_lock(&fs->ns->lock);
    struct fs_inode *n = fs_ino_find(fs, ino);
    if (!n) {
        pthread_mutex_unlock(&fs->ns->lock);
        return -ENOENT;
    }
    n->opens++; /* pin across the HEAD */
    fs_inode_ref(fs, n);
    rc = fs_refresh_locked(fs, n);
    if (rc == 0)
        fs_ns_fill_stat(fs, n, st);
    n->opens--;
    fs_inode_maybe_free(fs, n);
    pthread_mutex_unlock(&fs->ns->lock);
    return rc;
}

struct fs_inode *fs_ns_open(struct fs *fs, fuse_ino_t ino)
{
    pthread_mutex_lock(&fs->ns->lock);
    struct fs_inode *n = fs_ino_find(fs, ino);
    if (n) {
        n->opens++;
        fs_inode_ref(fs, n);
    }
    pthread_mutex_unlock(&fs->ns->lock);
    return n;
}

void fs_ns_release(struct fs *fs, struct fs_inode *n)
{
    if (!n)
        return;
    pthread_mutex_lock(&fs->ns->lock);
    n->opens--;
    fs_inode_maybe_free(fs, n);
    pthread_mutex_unlock(&fs->ns->lock);
}

static uint64_t fs_tail_tag(const char *etag)
{
    return cmn_hash64(etag, strlen(etag), 0) | 1; /* never 0 (none) */
}

void fs_ns_note_tail(struct fs *fs, struct fs_inode *n, const char *etag)
{
    pthread_mutex_lock(&fs->ns->lock);
    if (etag[0] && strcmp(n->etag, etag) == 0 && n->tail_tag != fs_tail_tag(etag)) {
        n->tail_tag = fs_tail_tag(etag);
        TLOG_D("'%s' is read footer first: its next opens bypass the page cache", n->key);
    }
    pthread_mutex_unlock(&fs->ns->lock);
}

int fs_ns_pin(struct fs *fs, struct fs_inode *n, char *etag, uint64_t *size, bool *keep_cache,
              enum fs_direct *direct, char *ctag, struct fs_ctag **ct)
{
    int rc;
    pthread_mutex_lock(&fs->ns->lock);
    /* A handle is pinned by its ETag (cache keys, If-Match): never pin an empty one that a
     * HEAD could fill, whatever the TTL says. */
    if (!n->is_dir && !n->etag[0])
        n->attr_ms = 0;
    rc = fs_refresh_locked(fs, n);
    if (rc == 0 && !n->etag[0])
        tlog_rl_msg(&fs->ns->rl, TLOG_WARNING,
                    "'%s' has no ETag: its reads are not pinned to one version", n->key);
    if (rc == 0) {
        snprintf(etag, OBJSTORE_ETAG_MAX, "%s", n->etag);
        *size = n->size;
        *ct = n->ctag && !n->ctag->switched && strcmp(n->ctag->etag, n->etag) == 0 ? n->ctag : NULL;
        if (*ct)
            (*ct)->users++;
        snprintf(ctag, OBJSTORE_ETAG_MAX, "%s", *ct ? (*ct)->tag : n->etag);
        /* noted with page_cache=auto or no (fs_ns_note_tail) */
        bool footer_first = n->etag[0] && n->tail_tag == fs_tail_tag(n->etag);
        *direct = footer_first                                               ? FS_DIRECT_FOOTER
                  : !fs->conf->page_cache                                    ? FS_DIRECT_OWN
                  : n->cache_opens > 0 && strcmp(n->open_etag, n->etag) != 0 ? FS_DIRECT_VERSION
                                                                             : FS_DIRECT_NO;
        if (!fs->conf->page_cache) {
            /* page_cache=no: no pages to pin a version for; a private mmap's old ones go */
            *keep_cache = false;
        } else if (*direct == FS_DIRECT_FOOTER) {
            /* A private mmap reads through the page cache: it keeps this version's pages,
             * and the pages page-cache handles still read (whichever version) are theirs. */
            *keep_cache =
                n->cache_opens > 0 || (n->open_etag[0] && strcmp(n->open_etag, n->etag) == 0);
        } else if (*direct == FS_DIRECT_VERSION) {
            /* Leave the pages of the version still open alone; this handle bypasses them. */
            *keep_cache = true;
        } else {
            /* The kernel may keep its page cache only if this is the version it cached. */
            *keep_cache = n->open_etag[0] && strcmp(n->open_etag, n->etag) == 0;
            snprintf(n->open_etag, sizeof(n->open_etag), "%s", n->etag);
            n->cache_opens++;
        }
    }
    pthread_mutex_unlock(&fs->ns->lock);
    return rc;
}

void fs_ns_unpin(struct fs *fs, struct fs_inode *n)
{
    pthread_mutex_lock(&fs->ns->lock);
    n->cache_opens--;
    pthread_mutex_unlock(&fs->ns->lock);
}

void fs_ns_invalidate(struct fs *fs, struct fs_inode *n)
{
    pthread_mutex_lock(&fs->ns->lock);
    n->attr_ms = 0;
    n->open_etag[0] = '\0';
    pthread_mutex_unlock(&fs->ns->lock);
}

int fs_ns_entry(struct fs *fs, struct fs_inode *dir, const struct fs_listing *l,
                const struct fs_dirent *de, struct fuse_entry_param *e)
{
    struct fs_attr a = {.is_dir = de->is_dir,
                        .size = de->size,
                        .mtime = de->mtime,
                        .etag = de->etag,
                        .seen_ms = l->loaded_ms};
    pthread_mutex_lock(&fs->ns->lock);
    int rc = fs_upsert(fs, dir, de->name, &a, e);
    pthread_mutex_unlock(&fs->ns->lock);
    return rc;
}
