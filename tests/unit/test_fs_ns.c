/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_fs_ns.c: the namespace of tierfs (fs/ns.c) without a mount: which keys can be
 * names, how a listing is built (hidden keys, a directory shadows a file), the block key
 * format, and the inode table against an in-test object store that counts requests:
 * metadata stays cached for metadata_ttl after the kernel forgot the inodes, and only
 * that long; the idle inodes are bounded.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/log.h"
#include "common/util.h"
#include "fs/blockkey.h"
#include "fs/fs_i.h"
#include "fs/ns_i.h"

/* ---- an object store in memory: sorted keys, LIST with "/" and pages, HEAD ---- */

struct fake_obj {
    const char *key;
    uint64_t size;
};

struct fake_store {
    struct objstore base;
    const struct fake_obj *objs; /* sorted by key */
    size_t n;
    size_t page;           /* keys + prefixes per LIST page */
    unsigned lists, heads; /* requests seen */
};

static const char *fake_etag = "\"0123456789abcdef0123456789abcdef\"";

static int fake_add_entry(struct objstore_list_result *r, const struct fake_obj *o)
{
    struct objstore_entry *e = realloc(r->entries, (r->n_entries + 1) * sizeof(*e));
    if (!e)
        return -ENOMEM;
    r->entries = e;
    e += r->n_entries;
    memset(e, 0, sizeof(*e));
    e->key = strdup(o->key);
    e->size = o->size;
    e->mtime_sec = 1700000000;
    snprintf(e->etag, sizeof(e->etag), "%s", fake_etag);
    r->n_entries++;
    return e->key ? 0 : -ENOMEM;
}

static int fake_add_prefix(struct objstore_list_result *r, const char *key, size_t len)
{
    if (r->n_prefixes && strncmp(r->prefixes[r->n_prefixes - 1], key, len) == 0 &&
        r->prefixes[r->n_prefixes - 1][len] == '\0')
        return 0; /* same common prefix as the previous key */
    char **p = realloc(r->prefixes, (r->n_prefixes + 1) * sizeof(*p));
    if (!p)
        return -ENOMEM;
    r->prefixes = p;
    p[r->n_prefixes] = strndup(key, len);
    return p[r->n_prefixes++] ? 0 : -ENOMEM;
}

static void fake_list(struct fake_store *f, struct objstore_req *req)
{
    const struct objstore_list_args *a = &req->list;
    const char *pfx = a->prefix ? a->prefix : "";
    size_t plen = strlen(pfx),
           i = a->continuation_token ? strtoul(a->continuation_token, NULL, 10) : 0;
    size_t max = a->max_keys ? a->max_keys : 1000, got = 0;
    struct objstore_list_result *r = &req->list_result;

    max = CMN_MIN(max, f->page);
    for (; i < f->n && got < max; i++) {
        const char *k = f->objs[i].key;
        if (strncmp(k, pfx, plen) != 0)
            continue;
        const char *slash = a->delimiter ? strchr(k + plen, '/') : NULL;
        size_t before = r->n_prefixes;
        req->result =
            slash ? fake_add_prefix(r, k, (size_t)(slash - k) + 1) : fake_add_entry(r, &f->objs[i]);
        if (req->result < 0)
            return;
        got += !slash || r->n_prefixes != before;
    }
    for (; i < f->n && strncmp(f->objs[i].key, pfx, plen) != 0; i++)
        ;
    if (i < f->n) {
        r->truncated = true;
        if (asprintf(&r->next_token, "%zu", i) < 0)
            req->result = -ENOMEM;
    }
}

static int fake_submit(struct objstore *os, struct objstore_req *req)
{
    struct fake_store *f = (struct fake_store *)os;
    if (req->op == OBJSTORE_OP_LIST) {
        f->lists++;
        fake_list(f, req);
    } else if (req->op == OBJSTORE_OP_HEAD) {
        f->heads++;
        req->result = -ENOENT;
        for (size_t i = 0; i < f->n; i++) {
            if (strcmp(f->objs[i].key, req->key) == 0) {
                req->info.size = f->objs[i].size;
                req->info.mtime_sec = 1700000000;
                snprintf(req->info.etag, sizeof(req->info.etag), "%s", fake_etag);
                req->result = 0;
            }
        }
    } else {
        req->result = -EOPNOTSUPP;
    }
    req->done(req); /* the callers here wait on a condvar: answering inline is fine */
    return 0;
}

static void fake_destroy(struct objstore *os)
{
    (void)os;
}

static const struct objstore_ops fake_ops = {
    .version = OBJSTORE_OPS_VERSION,
    .name = "fake",
    .submit = fake_submit,
    .destroy = fake_destroy,
};

/* The bucket every namespace test sees. */
static const struct fake_obj t_objs[] = {
    {"a/one.txt", 1}, {"a/sub/deep.txt", 2}, {"a/two.txt", 3},
    {"b", 4},         {"b/shadowed", 5},     {"top.txt", 6},
};

struct t_ns {
    struct fake_store store;
    struct fs_conf conf;
    struct fs fs;
};

static struct t_ns *t_ns_new(uint64_t ttl_ms, uint64_t neg_ttl_ms)
{
    struct t_ns *t = calloc(1, sizeof(*t));
    assert_non_null(t);
    t->store.base.ops = &fake_ops;
    t->store.objs = t_objs;
    t->store.n = CMN_ARRAY_SIZE(t_objs);
    t->store.page = 1000;
    t->conf.prefix = strdup("");
    t->conf.bucket = strdup("bucket");
    t->conf.block_size = 1u << 20;
    t->conf.metadata_ttl_ms = ttl_ms;
    t->conf.negative_ttl_ms = neg_ttl_ms;
    t->conf.file_mode = 0444;
    t->conf.dir_mode = 0555;
    t->fs.conf = &t->conf;
    t->fs.os = &t->store.base;
    assert_int_equal(fs_ns_init(&t->fs), 0);
    return t;
}

static void t_ns_free(struct t_ns *t)
{
    fs_ns_fini(&t->fs);
    free(t->conf.prefix);
    free(t->conf.bucket);
    free(t);
}

static unsigned t_requests(const struct t_ns *t)
{
    return t->store.lists + t->store.heads;
}

/* Look @name up in @parent. @return the inode number, 0 for ENOENT. */
static uint64_t t_lookup(struct t_ns *t, uint64_t parent, const char *name)
{
    struct fuse_entry_param e;
    int rc = fs_ns_lookup(&t->fs, parent, name, &e);
    if (rc == -ENOENT) {
        assert_int_equal(e.ino, 0);
        return 0;
    }
    assert_int_equal(rc, 0);
    assert_true(e.ino > FUSE_ROOT_ID);
    return e.ino;
}

/* opendir + readdir of @ino: @return the number of entries. */
static size_t t_list(struct t_ns *t, uint64_t ino)
{
    struct fs_inode *dir = fs_ns_open(&t->fs, ino);
    struct fs_listing *l = NULL;
    assert_non_null(dir);
    assert_int_equal(fs_ns_listing(&t->fs, dir, &l), 0);
    size_t n = l->n;
    fs_listing_put(l);
    fs_ns_release(&t->fs, dir);
    return n;
}

/* ---- pure helpers ---- */

static void test_name_ok(void **state)
{
    char longest[NAME_MAX + 2];
    (void)state;
    memset(longest, 'x', sizeof(longest));
    assert_true(fs_name_ok("a", 1));
    assert_true(fs_name_ok("...", 3));
    assert_true(fs_name_ok(".hidden", 7));
    assert_true(fs_name_ok("..x", 3));
    assert_true(fs_name_ok(longest, NAME_MAX));
    assert_false(fs_name_ok(longest, NAME_MAX + 1));
    assert_false(fs_name_ok("", 0));
    assert_false(fs_name_ok(".", 1));
    assert_false(fs_name_ok("..", 2));
    assert_false(fs_name_ok("a/b", 3));
    assert_false(fs_name_ok("/", 1));
    assert_false(fs_name_ok("a\0b", 3));
}

/* One LIST page of directory "dir/" with every kind of key that cannot be a name. */
static void test_listing_build(void **state)
{
    char longkey[4 + NAME_MAX + 2];
    (void)state;
    snprintf(longkey, sizeof(longkey), "dir/%0*d", NAME_MAX + 1, 7);
    struct objstore_entry ents[] = {
        {.key = "dir/", .size = 0},   /* the directory marker */
        {.key = "dir/b", .size = 10}, /* shadowed by the directory dir/b/ */
        {.key = "dir/a.txt", .size = 20, .etag = "\"e1\""},
        {.key = "dir/.", .size = 1},
        {.key = "dir/..", .size = 1},
        {.key = longkey, .size = 1},
        {.key = "other/x", .size = 1}, /* not under the prefix */
    };
    char *pfx[] = {"dir/b/", "dir//", "dir/./", "dir/../", "dir/c/"};
    struct objstore_list_result res = {.entries = ents,
                                       .n_entries = CMN_ARRAY_SIZE(ents),
                                       .prefixes = pfx,
                                       .n_prefixes = CMN_ARRAY_SIZE(pfx)};
    struct fs_listing *l = fs_listing_new();
    size_t cap = 0;

    assert_non_null(l);
    assert_int_equal(fs_listing_add_page(l, &cap, "dir/", &res), 0);
    fs_listing_finish(l, "dir/");
    assert_int_equal(l->n, 3);
    assert_string_equal(l->ents[0].name, "a.txt");
    assert_false(l->ents[0].is_dir);
    assert_int_equal(l->ents[0].size, 20);
    assert_string_equal(l->ents[0].etag, "\"e1\"");
    assert_string_equal(l->ents[1].name, "b");
    assert_true(l->ents[1].is_dir); /* the directory wins */
    assert_string_equal(l->ents[2].name, "c");
    assert_true(l->ents[2].is_dir);
    assert_ptr_equal(fs_listing_find(l, "b"), &l->ents[1]);
    assert_null(fs_listing_find(l, "."));
    assert_null(fs_listing_find(l, ""));
    assert_null(fs_listing_find(l, "zzz"));
    assert_true(l->bytes > sizeof(*l));
    fs_listing_put(l);
}

static void test_block_key(void **state)
{
    uint8_t buf[256], other[256];
    static const uint8_t want[] = {'b', 0,    'k',  '/', 'x', 0, '"', 'e', '"',
                                   0,   0x02, 0x01, 0,   0,   0, 0,   0,   0, /* block 0x102, LE */
                                   0,   0,    0x10, 0};                       /* 1 MiB, LE */
    (void)state;
    size_t n = fs_blockkey_build("b", 1u << 20, "k/x", "\"e\"", 0x102, buf, sizeof(buf));
    assert_int_equal(n, sizeof(want));
    assert_memory_equal(buf, want, sizeof(want));
    assert_int_equal(fs_blockkey_build("b", 1u << 20, "k/x", "\"e\"", 0x102, buf, n - 1), 0);
    /* Another block size, block, ETag or bucket is another key. */
    size_t m = fs_blockkey_build("b", 1u << 16, "k/x", "\"e\"", 0x102, other, sizeof(other));
    assert_int_equal(m, n);
    assert_memory_not_equal(buf, other, n);
    m = fs_blockkey_build("b", 1u << 20, "k/x", "\"f\"", 0x102, other, sizeof(other));
    assert_memory_not_equal(buf, other, n);
    /* "a" + "bc" and "ab" + "c" differ: every part is NUL-terminated. */
    m = fs_blockkey_build("bk", 1u << 20, "/x", "\"e\"", 0x102, other, sizeof(other));
    assert_int_equal(m, n);
    assert_memory_not_equal(buf, other, n);
    /* A piece key: the block key's layout, the piece index, and the piece size after. */
    static const uint8_t pwant[] = {'b', 0, 'k', '/', 'x', 0, '"', 'e', '"',  0, 0x02, 0x01,
                                    0,   0, 0,   0,   0,   0, 0,   0,   0x10, 0, /* block size */
                                    0,   0, 1,   0};                             /* 64 KiB, LE */
    m = fs_piecekey_build("b", 1u << 20, "k/x", "\"e\"", 0x102, 64u << 10, other, sizeof(other));
    assert_int_equal(m, sizeof(pwant));
    assert_memory_equal(other, pwant, sizeof(pwant));
    assert_memory_equal(other, buf, n - 0); /* the block key's bytes, then 4 more */
    assert_int_equal(
        fs_piecekey_build("b", 1u << 20, "k/x", "\"e\"", 0x102, 64u << 10, other, m - 1), 0);
    assert_int_equal(
        fs_piecekey_build("b", 1u << 20, "k/x", "\"e\"", 0x102, 0, other, sizeof(other)), 0);
}

/* ---- the inode table over the fake store ---- */

static void test_lookup_and_listing(void **state)
{
    struct t_ns *t = t_ns_new(60000, 60000);
    (void)state;
    uint64_t a = t_lookup(t, FUSE_ROOT_ID, "a");
    assert_int_equal(t->store.heads, 1); /* HEAD a + LIST a/ in parallel */
    assert_int_equal(t->store.lists, 1);
    assert_int_equal(t_list(t, FUSE_ROOT_ID), 3); /* a, b (dir shadows file), top.txt */
    assert_int_equal(t_list(t, a), 3);            /* one.txt, sub, two.txt */
    unsigned before = t_requests(t);
    /* From the listings now: names, a missing name, the shadowed file is a directory. */
    uint64_t one = t_lookup(t, a, "one.txt");
    assert_int_equal(t_lookup(t, a, "missing"), 0);
    uint64_t b = t_lookup(t, FUSE_ROOT_ID, "b");
    struct stat st;
    assert_int_equal(fs_ns_getattr(&t->fs, b, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(fs_ns_getattr(&t->fs, one, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_size, 1);
    assert_int_equal(t_requests(t), before);
    /* Names S3 may hold but a path cannot. */
    assert_int_equal(fs_ns_lookup(&t->fs, FUSE_ROOT_ID, "..", &(struct fuse_entry_param){0}),
                     -ENOENT);
    assert_int_equal(t_requests(t), before);
    t_ns_free(t);
}

/* The kernel forgets everything (drop_caches): the next walk must not go to S3. */
static void test_forget_keeps_metadata(void **state)
{
    struct t_ns *t = t_ns_new(60000, 60000);
    (void)state;
    uint64_t a = t_lookup(t, FUSE_ROOT_ID, "a");
    t_list(t, FUSE_ROOT_ID);
    t_list(t, a);
    uint64_t sub = t_lookup(t, a, "sub");
    t_list(t, sub);
    uint64_t deep = t_lookup(t, sub, "deep.txt");
    assert_int_equal(t_lookup(t, FUSE_ROOT_ID, "nothere"), 0); /* root listing says so */
    unsigned before = t_requests(t);

    /* Children first, as the kernel does. */
    fs_ns_forget(&t->fs, deep, 1);
    fs_ns_forget(&t->fs, sub, 1);
    fs_ns_forget(&t->fs, a, 1);
    assert_int_equal(t->fs.ns->n_idle, 3);
    assert_true(t->fs.ns->idle_bytes > 0);

    /* Same walk again: same inode numbers, no request. */
    assert_int_equal(t_lookup(t, FUSE_ROOT_ID, "a"), a);
    assert_int_equal(t_list(t, a), 3);
    assert_int_equal(t_lookup(t, a, "sub"), sub);
    assert_int_equal(t_list(t, sub), 1);
    assert_int_equal(t_lookup(t, sub, "deep.txt"), deep);
    assert_int_equal(t_lookup(t, sub, "nothere"), 0);
    assert_int_equal(t_requests(t), before);
    assert_int_equal(t->fs.ns->n_idle, 0); /* referenced again: off the idle list */
    t_ns_free(t);
}

static void test_forget_after_ttl(void **state)
{
    struct t_ns *t = t_ns_new(100, 100);
    (void)state;
    uint64_t a = t_lookup(t, FUSE_ROOT_ID, "a");
    t_list(t, a);
    assert_int_equal(t_lookup(t, FUSE_ROOT_ID, "gone"), 0);
    unsigned before = t_requests(t);
    fs_ns_forget(&t->fs, a, 1);
    assert_int_equal(t->fs.ns->n_idle, 1);
    /* Within the TTL: nothing sent (the negative entry of "gone" too). */
    assert_int_equal(t_lookup(t, FUSE_ROOT_ID, "gone"), 0);
    assert_int_equal(t_lookup(t, FUSE_ROOT_ID, "a"), a);
    assert_int_equal(t_requests(t), before);
    fs_ns_forget(&t->fs, a, 1);
    usleep(150 * 1000);
    /* Expired: S3 is asked again, for the name and for the listing. */
    assert_true(t_lookup(t, FUSE_ROOT_ID, "a") != 0);
    assert_true(t_requests(t) > before);
    before = t_requests(t);
    assert_int_equal(t_lookup(t, FUSE_ROOT_ID, "gone"), 0);
    assert_true(t_requests(t) > before);
    before = t_requests(t);
    t_list(t, a);
    assert_int_equal(t_requests(t) - before, 1);
    t_ns_free(t);
}

/* With metadata_ttl=0 nothing is cached, so nothing is kept either. */
static void test_forget_ttl_zero(void **state)
{
    struct t_ns *t = t_ns_new(0, 0);
    (void)state;
    uint64_t a = t_lookup(t, FUSE_ROOT_ID, "a");
    t_list(t, a);
    fs_ns_forget(&t->fs, a, 1);
    assert_int_equal(t->fs.ns->n_idle, 0);
    assert_int_equal(t->fs.ns->idle_bytes, 0);
    t_ns_free(t);
}

/* A huge directory walked with readdirplus, then forgotten: the idle inodes stay bounded. */
static void test_idle_bound(void **state)
{
    const size_t n = 250000;
    struct fake_obj *objs = calloc(n, sizeof(*objs));
    char(*keys)[32] = calloc(n, sizeof(*keys));
    (void)state;
    assert_true(objs && keys);
    for (size_t i = 0; i < n; i++) {
        snprintf(keys[i], sizeof(keys[i]), "big/f%07zu", i);
        objs[i] = (struct fake_obj){.key = keys[i], .size = i};
    }
    struct t_ns *t = t_ns_new(60000, 5000);
    t->store.objs = objs;
    t->store.n = n;
    uint64_t big = t_lookup(t, FUSE_ROOT_ID, "big");
    struct fs_inode *dir = fs_ns_open(&t->fs, big);
    struct fs_listing *l = NULL;
    assert_int_equal(fs_ns_listing(&t->fs, dir, &l), 0);
    assert_int_equal(l->n, n);
    assert_int_equal(t->store.lists, 1 + (n + 999) / 1000);
    for (size_t i = 0; i < l->n; i++) {
        struct fuse_entry_param e;
        assert_int_equal(fs_ns_entry(&t->fs, dir, l, &l->ents[i], &e), 0);
        fs_ns_forget(&t->fs, e.ino, 1);
        assert_true(t->fs.ns->idle_bytes <= FS_IDLE_MAX_BYTES);
    }
    assert_true(t->fs.ns->n_idle > 1000 && t->fs.ns->n_idle < n);
    fs_listing_put(l);
    fs_ns_release(&t->fs, dir);
    /* The directory itself, with its big listing, is kept like any other. */
    fs_ns_forget(&t->fs, big, 1);
    assert_true(t->fs.ns->idle_bytes <= FS_IDLE_MAX_BYTES);
    unsigned before = t_requests(t);
    assert_int_equal(t_lookup(t, FUSE_ROOT_ID, "big"), big);
    assert_int_equal(t_list(t, big), n);
    assert_int_equal(t_requests(t), before);
    t_ns_free(t);
    free(keys);
    free(objs);
}

/* A name whose type changed (file, then a directory of that name) gets a new inode; the
 * old one, unreachable by name, is freed when the kernel forgets it, not kept idle. */
static void test_type_change(void **state)
{
    static const struct fake_obj v1[] = {{"x", 1}};
    static const struct fake_obj v2[] = {{"x/y", 1}};
    struct t_ns *t = t_ns_new(100, 100);
    (void)state;
    t->store.objs = v1;
    t->store.n = 1;
    uint64_t f = t_lookup(t, FUSE_ROOT_ID, "x");
    usleep(150 * 1000);
    t->store.objs = v2;
    uint64_t d = t_lookup(t, FUSE_ROOT_ID, "x");
    assert_true(d != f);
    fs_ns_forget(&t->fs, f, 1);
    assert_int_equal(t->fs.ns->n_idle, 0);
    struct stat st;
    assert_int_equal(fs_ns_getattr(&t->fs, f, &st), -ENOENT);
    assert_int_equal(fs_ns_getattr(&t->fs, d, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    t_ns_free(t);
}

/* A lookup within the TTL (the kernel's dentry expired, the inode's attributes did not)
 * keeps the ETag: it once copied the inode's ETag onto itself, which glibc empties, and a
 * handle opened then was pinned to no version (shared cache keys, no If-Match). */
static void test_lookup_keeps_etag(void **state)
{
    struct t_ns *t = t_ns_new(60000, 60000);
    char etag[OBJSTORE_ETAG_MAX];
    uint64_t size = 0;
    bool keep;
    enum fs_direct direct;
    (void)state;
    uint64_t f = t_lookup(t, FUSE_ROOT_ID, "top.txt");
    unsigned before = t_requests(t);
    assert_int_equal(t_lookup(t, FUSE_ROOT_ID, "top.txt"), f);
    assert_int_equal(t_lookup(t, FUSE_ROOT_ID, "top.txt"), f);
    struct fs_inode *n = fs_ns_open(&t->fs, f);
    assert_non_null(n);
    t->conf.page_cache = true; /* each pin below is counted until its unpin */
    char ctag[OBJSTORE_ETAG_MAX];
    struct fs_ctag *ct = NULL;
    assert_int_equal(fs_ns_pin(&t->fs, n, etag, &size, &keep, &direct, ctag, &ct), 0);
    assert_string_equal(etag, fake_etag);
    assert_string_equal(ctag, fake_etag); /* not written here: keyed by its ETag */
    assert_null(ct);
    assert_int_equal(size, 6);
    assert_int_equal(t_requests(t), before); /* fresh: no HEAD was needed */
    fs_ns_unpin(&t->fs, n);
    /* a version this mount wrote and has not re-keyed: keyed by the provisional tag, the
     * handle counted as its user; once switched, or for another version, by the ETag */
    struct fs_ctag w = {.tag = "w:1:2"};
    snprintf(w.etag, sizeof(w.etag), "%s", fake_etag);
    n->ctag = &w;
    assert_int_equal(fs_ns_pin(&t->fs, n, etag, &size, &keep, &direct, ctag, &ct), 0);
    assert_string_equal(ctag, "w:1:2");
    assert_ptr_equal(ct, &w);
    assert_int_equal(w.users, 1);
    fs_ns_ctag_unuse(&t->fs, ct);
    fs_ns_unpin(&t->fs, n);
    assert_int_equal(w.users, 0);
    fs_ns_ctag_switch(&t->fs, &w);
    assert_int_equal(fs_ns_pin(&t->fs, n, etag, &size, &keep, &direct, ctag, &ct), 0);
    assert_string_equal(ctag, fake_etag);
    assert_null(ct);
    fs_ns_unpin(&t->fs, n);
    w.switched = false;
    snprintf(w.etag, sizeof(w.etag), "\"another-version\"");
    assert_int_equal(fs_ns_pin(&t->fs, n, etag, &size, &keep, &direct, ctag, &ct), 0);
    assert_string_equal(ctag, fake_etag);
    assert_null(ct);
    fs_ns_unpin(&t->fs, n);
    n->ctag = NULL;
    /* page_cache=auto: through the page cache until a handle of this version read its
     * tail first; then around it, every read the program's own; a note for another
     * version changes nothing */
    t->conf.page_cache_auto = true;
    assert_int_equal(fs_ns_pin(&t->fs, n, etag, &size, &keep, &direct, ctag, &ct), 0);
    assert_int_equal(direct, FS_DIRECT_NO);
    fs_ns_note_tail(&t->fs, n, "\"another-version\"");
    assert_int_equal(fs_ns_pin(&t->fs, n, etag, &size, &keep, &direct, ctag, &ct), 0);
    assert_int_equal(direct, FS_DIRECT_NO);
    fs_ns_note_tail(&t->fs, n, fake_etag);
    assert_int_equal(fs_ns_pin(&t->fs, n, etag, &size, &keep, &direct, ctag, &ct), 0);
    assert_int_equal(direct, FS_DIRECT_FOOTER);
    assert_true(keep); /* the page-cache handles still open read this version's pages */
    fs_ns_unpin(&t->fs, n);
    fs_ns_unpin(&t->fs, n);
    t->conf.page_cache = t->conf.page_cache_auto = false;
    assert_int_equal(n->cache_opens, 0);
    fs_ns_release(&t->fs, n);
    fs_ns_forget(&t->fs, f, 3);
    t_ns_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_name_ok),
        cmocka_unit_test(test_listing_build),
        cmocka_unit_test(test_block_key),
        cmocka_unit_test(test_lookup_and_listing),
        cmocka_unit_test(test_forget_keeps_metadata),
        cmocka_unit_test(test_forget_after_ttl),
        cmocka_unit_test(test_forget_ttl_zero),
        cmocka_unit_test(test_idle_bound),
        cmocka_unit_test(test_type_change),
        cmocka_unit_test(test_lookup_keeps_etag),
    };
    tlog_set_level(TLOG_WARNING);
    return cmocka_run_group_tests_name("fs_ns", tests, NULL, NULL);
}
