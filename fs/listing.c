/* SPDX-License-Identifier: Apache-2.0 */
/*
 * listing.c: directory listings: the pages of a "/"-delimited ListObjectsV2 built into an
 * immutable snapshot sorted by name (a directory hides a file of the same name, keys that
 * cannot be names are hidden), loaded once per directory while fresh (metadata_ttl) and
 * shared by refcount with readdir. The namespace that holds them is ns.c.
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

/* ---- listings ---- */

static int fs_dirent_cmp(const void *a, const void *b)
{
    const struct fs_dirent *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c)
        return c;
    return (int)y->is_dir - (int)x->is_dir; /* directories first: they shadow files */
}

static int fs_listing_add(struct fs_listing *l, size_t *cap, const char *name, size_t nlen,
                          bool is_dir, uint64_t size, int64_t mtime, const char *etag)
{
    if (l->n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 64;
        struct fs_dirent *ne = realloc(l->ents, ncap * sizeof(*ne));
        if (!ne)
            return -ENOMEM;
        l->ents = ne;
        *cap = ncap;
    }
    size_t elen = etag ? strlen(etag) : 0;
    char *s = malloc(nlen + 1 + elen + 1);
    if (!s)
        return -ENOMEM;
    memcpy(s, name, nlen);
    s[nlen] = '\0';
    memcpy(s + nlen + 1, etag ? etag : "", elen + 1);
    l->ents[l->n++] = (struct fs_dirent){
        .name = s, .is_dir = is_dir, .size = size, .mtime = mtime, .etag = s + nlen + 1};
    return 0;
}

struct fs_listing *fs_listing_new(void)
{
    struct fs_listing *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    l->refs = 1;
    l->loaded_ms = cmn_now_ms();
    l->bytes = sizeof(*l);
    return l;
}

int fs_listing_add_page(struct fs_listing *l, size_t *cap, const char *dkey,
                        const struct objstore_list_result *res)
{
    size_t plen = strlen(dkey);
    int rc = 0;

    for (size_t i = 0; i < res->n_entries && rc == 0; i++) {
        const struct objstore_entry *oe = &res->entries[i];
        if (strncmp(oe->key, dkey, plen) != 0 || oe->key[plen] == '\0')
            continue; /* the directory's own marker object */
        const char *name = oe->key + plen;
        size_t nlen = strlen(name);
        if (!fs_name_ok(name, nlen)) {
            TLOG_D("hiding key '%s': not a valid file name", oe->key);
            continue;
        }
        rc = fs_listing_add(l, cap, name, nlen, false, oe->size, oe->mtime_sec, oe->etag);
    }
    for (size_t i = 0; i < res->n_prefixes && rc == 0; i++) {
        const char *pfx = res->prefixes[i];
        size_t nlen = strlen(pfx);
        if (strncmp(pfx, dkey, plen) != 0 || nlen <= plen)
            continue;
        nlen -= plen + 1; /* drop the trailing delimiter */
        if (!fs_name_ok(pfx + plen, nlen)) {
            TLOG_D("hiding prefix '%s': not a valid directory name", pfx);
            continue;
        }
        rc = fs_listing_add(l, cap, pfx + plen, nlen, true, 0, 0, NULL);
    }
    return rc;
}

void fs_listing_finish(struct fs_listing *l, const char *dkey)
{
    size_t w = 0;

    if (l->n)
        qsort(l->ents, l->n, sizeof(*l->ents), fs_dirent_cmp);
    for (size_t r = 0; r < l->n; r++) {
        if (w > 0 && strcmp(l->ents[w - 1].name, l->ents[r].name) == 0) {
            TLOG_D("hiding file '%s%s': a directory of the same name shadows it", dkey,
                   l->ents[r].name);
            free(l->ents[r].name);
            continue;
        }
        l->ents[w++] = l->ents[r];
    }
    l->n = w;
    l->bytes = sizeof(*l) + l->n * sizeof(*l->ents);
    for (size_t i = 0; i < l->n; i++)
        l->bytes += strlen(l->ents[i].name) + strlen(l->ents[i].etag) + 2;
}

/*
 * List directory prefix @dkey completely: one ListObjectsV2 page per 1000 keys.
 * @return 0 and a listing with one reference, or -errno.
 */
static int fs_listing_load(struct fs *fs, const char *dkey, struct fs_listing **out)
{
    struct fs_listing *l = fs_listing_new();
    size_t cap = 0;
    char *token = NULL;
    char errmsg[OBJSTORE_ERRMSG_MAX];
    int rc = 0;

    if (!l)
        return -ENOMEM;
    for (;;) {
        struct objstore_list_args args = {.prefix = dkey,
                                          .delimiter = "/",
                                          .continuation_token = token,
                                          .max_keys = FS_LIST_PAGE};
        struct objstore_list_result res;
        memset(&res, 0, sizeof(res));
        errmsg[0] = '\0';
        rc = objstore_list(fs->os, &args, &res, errmsg, sizeof(errmsg));
        if (rc < 0) {
            tlog_rl_msg(&fs->ns->rl, TLOG_ERR, "listing '%s' failed: %s", dkey,
                        errmsg[0] ? errmsg : objstore_strerror(rc));
            break;
        }
        rc = fs_listing_add_page(l, &cap, dkey, &res);
        free(token);
        token = NULL;
        if (rc == 0 && res.truncated && res.next_token && !(token = strdup(res.next_token)))
            rc = -ENOMEM;
        bool more = res.truncated && res.next_token;
        objstore_list_result_free(&res);
        if (rc < 0 || !more)
            break;
    }
    free(token);
    if (rc < 0) {
        fs_listing_put(l);
        return rc;
    }

    fs_listing_finish(l, dkey);
    *out = l;
    return 0;
}

const struct fs_dirent *fs_listing_find(const struct fs_listing *l, const char *name)
{
    size_t lo = 0, hi = l->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, l->ents[mid].name);
        if (c == 0)
            return &l->ents[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

/*
 * @l with the entries made on this mount that S3's listing does not have yet (files being
 * written, directories from mkdir) added: a new listing with one reference, or @l itself
 * when there are none (or no memory). Under fs->ns->lock; takes @l's reference.
 */
static struct fs_listing *fs_listing_with_local(struct fs *fs, const struct fs_inode *dir,
                                                struct fs_listing *l)
{
    struct fs_listing *nl = NULL;
    size_t cap = 0;

    for (size_t b = 0; fs->ns->n_local && b < fs->ns->ino_tab.nb; b++) {
        for (struct fs_inode *n = fs->ns->ino_tab.b[b]; n; n = n->ino_next) {
            if (!n->local || n->parent != dir->ino || !n->name_hashed ||
                fs_listing_find(l, n->name))
                continue;
            if (!nl) { /* a copy of the snapshot, then the local entries */
                nl = fs_listing_new();
                for (size_t i = 0; nl && i < l->n; i++) {
                    const struct fs_dirent *d = &l->ents[i];
                    if (fs_listing_add(nl, &cap, d->name, strlen(d->name), d->is_dir, d->size,
                                       d->mtime, d->etag) != 0)
                        goto fail;
                }
                if (!nl)
                    return l;
                nl->loaded_ms = l->loaded_ms;
            }
            if (fs_listing_add(nl, &cap, n->name, strlen(n->name), n->is_dir, n->size, n->mtime,
                               n->etag) != 0)
                goto fail;
        }
    }
    if (!nl)
        return l;
    fs_listing_finish(nl, dir->key);
    fs_listing_put(l);
    return nl;
fail:
    fs_listing_put(nl);
    return l;
}

int fs_ns_listing(struct fs *fs, struct fs_inode *dir, struct fs_listing **out)
{
    struct fs_listing *l = NULL;
    char *dkey;
    int rc;

    pthread_mutex_lock(&fs->ns->lock);
    /* One load per directory at a time; the others wait for it (single-flight). */
    while (dir->loading)
        pthread_cond_wait(&fs->ns->cond, &fs->ns->lock);
    if (dir->listing && fs_fresh(fs, dir->listing->loaded_ms, cmn_now_ms())) {
        l = dir->listing;
        __atomic_add_fetch(&l->refs, 1, __ATOMIC_RELAXED);
        *out = fs_listing_with_local(fs, dir, l);
        pthread_mutex_unlock(&fs->ns->lock);
        return 0;
    }
    dkey = strdup(dir->key);
    if (!dkey) {
        pthread_mutex_unlock(&fs->ns->lock);
        return -ENOMEM;
    }
    dir->loading = true;
    pthread_mutex_unlock(&fs->ns->lock);

    rc = fs_listing_load(fs, dkey, &l);

    pthread_mutex_lock(&fs->ns->lock);
    dir->loading = false;
    pthread_cond_broadcast(&fs->ns->cond);
    if (rc == 0) {
        fs_listing_put(dir->listing);
        dir->listing = l;
        __atomic_add_fetch(&l->refs, 1, __ATOMIC_RELAXED);
        fs_neg_clear(dir); /* the new listing is the authority on what is missing */
        *out = l;
    } else if (rc != -ENOENT && rc != -EACCES && dir->listing) {
        /* S3 unreachable: a stale listing beats an error for a read-only view */
        l = dir->listing;
        __atomic_add_fetch(&l->refs, 1, __ATOMIC_RELAXED);
        *out = l;
        rc = 0;
    }
    if (rc == 0)
        *out = fs_listing_with_local(fs, dir, *out);
    pthread_mutex_unlock(&fs->ns->lock);
    free(dkey);
    return rc;
}
