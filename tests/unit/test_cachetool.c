/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_cachetool.c: tierfs-cache (tools/tierfs_cache.c, compiled in without its main) and
 * the disk tier's offline API under it: inspect, verify, clear, refusals, the daemon lock.
 * Caches are made the way the daemon makes them (hc_create with fs-format block keys).
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/util.h"
#include "hybridcache/disk_i.h"
#include "hybridcache/hybridcache.h"
#include "ioengine/ioengine.h"

/* tools/tierfs_cache.c */
int ctool_main(int argc, char **argv, FILE *out, FILE *err);

#define T_BLOCK HC_BLOCK_SIZE_MIN
#define T_REGION (256u << 10)
#define T_DISK (4096u + 8 * T_REGION)
#define T_IDENTITY "http://127.0.0.1:9000 test-bucket"
#define T_ENTRIES 20 /* 12 in the first region, 8 in the second */
#define T_VALUE(i) (12000u + 37u * (unsigned)(i))

/* ---- helpers ---- */

static char *t_path(const char *name)
{
    const char *dir = getenv("TIERFS_TEST_TMPDIR");
    static int seq;
    char *p = NULL;
    assert_true(asprintf(&p, "%s/cachetool-%d-%d-%s.dev", dir ? dir : "/tmp", (int)getpid(), seq++,
                         name) > 0);
    unlink(p);
    return p;
}

/* The filesystem's block key (fs/read.c fs_block_key) for object dir/object-@i. */
static size_t t_key(uint8_t *buf, int i)
{
    char key[64], etag[32];
    snprintf(key, sizeof(key), "dir/object-%d", i);
    snprintf(etag, sizeof(etag), "\"etag-%d\"", i);
    size_t n = 0;
    memcpy(buf + n, "test-bucket", 12);
    n += 12;
    memcpy(buf + n, key, strlen(key) + 1);
    n += strlen(key) + 1;
    memcpy(buf + n, etag, strlen(etag) + 1);
    n += strlen(etag) + 1;
    uint64_t blk = (uint64_t)i % 5;
    for (int k = 0; k < 8; k++)
        buf[n++] = (uint8_t)(blk >> (8 * k));
    for (int k = 0; k < 4; k++)
        buf[n++] = (uint8_t)(T_BLOCK >> (8 * k));
    return n;
}

static struct hc_conf t_conf(const char *path, bool direct)
{
    return (struct hc_conf){.block_size = T_BLOCK,
                            .mem_capacity = 8u << 20,
                            .mem_policy = "lru",
                            .disk_path = path,
                            .disk_capacity = T_DISK,
                            .direct_io = direct,
                            .io_engine = "psync",
                            .io_depth = 4,
                            .region_size = T_REGION,
                            .identity = T_IDENTITY};
}

/* Open (or create) the cache at @path, O_DIRECT where the filesystem has it. */
static struct hc_cache *t_open(const char *path)
{
    struct hc_conf conf = t_conf(path, true);
    struct hc_cache *c = NULL;
    if (hc_create(&conf, &c) < 0) {
        conf.direct_io = false;
        assert_int_equal(hc_create(&conf, &c), 0);
    }
    return c;
}

/* A cache of T_ENTRIES entries in two regions, closed cleanly. */
static char *t_make_cache(const char *name)
{
    char *path = t_path(name);
    struct hc_cache *c = t_open(path);
    uint8_t key[128], *val = malloc(T_BLOCK);

    assert_non_null(val);
    for (int i = 0; i < T_ENTRIES; i++) {
        memset(val, 'a' + i, T_BLOCK);
        assert_int_equal(hc_insert(c, key, t_key(key, i), val, T_VALUE(i), 0), 0);
        if (i == 11)
            assert_int_equal(hc_flush(c), 0); /* seal the first region */
    }
    hc_destroy(c);
    free(val);
    return path;
}

struct t_res {
    int status;
    char *out, *err;
    size_t out_len, err_len;
};

static void t_res_free(struct t_res *r)
{
    free(r->out);
    free(r->err);
}

/* Run tierfs-cache in process with the NULL-terminated arguments. */
static struct t_res t_run(const char *arg0, ...)
{
    char *argv[16] = {"tierfs-cache"};
    int argc = 1;
    struct t_res r = {0};
    va_list ap;

    va_start(ap, arg0);
    for (const char *a = arg0; a && argc < 15; a = va_arg(ap, const char *))
        argv[argc++] = (char *)a;
    va_end(ap);
    FILE *out = open_memstream(&r.out, &r.out_len);
    FILE *err = open_memstream(&r.err, &r.err_len);
    assert_non_null(out);
    assert_non_null(err);
    r.status = ctool_main(argc, argv, out, err);
    fclose(out);
    fclose(err);
    return r;
}

static int t_count(const char *s, const char *needle)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

/* An error is one line naming the cause. */
static void t_one_line_error(const struct t_res *r, const char *needle)
{
    assert_int_equal(r->status, 2);
    assert_int_equal(t_count(r->err, "\n"), 1);
    if (!strstr(r->err, needle))
        fail_msg("'%s' not in: %s", needle, r->err);
}

static void t_contains(const char *s, const char *needle)
{
    if (!strstr(s, needle))
        fail_msg("'%s' not in:\n%s", needle, s);
}

static struct dev *t_dev(const char *path)
{
    struct dev_conf dc = {.path = path, .direct_io = false};
    struct dev *dev = NULL;
    assert_int_equal(dev_open(&dc, &dev), 0);
    return dev;
}

struct t_find {
    uint8_t key[128];
    size_t klen;
    uint64_t dev_off;
    uint32_t size;
    int found;
};

static void t_find_cb(const struct hc_disk_ventry *e, void *arg)
{
    struct t_find *f = arg;
    if (e->key && e->klen == f->klen && memcmp(e->key, f->key, f->klen) == 0) {
        f->dev_off = e->dev_off;
        f->size = e->size;
        f->found++;
    }
}

static void t_flip(const char *path, uint64_t off)
{
    int fd = open(path, O_RDWR);
    uint8_t b;
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, &b, 1, (off_t)off), 1);
    b ^= 0x40;
    assert_int_equal(pwrite(fd, &b, 1, (off_t)off), 1);
    close(fd);
}

/* ---- tests ---- */

static void test_inspect(void **state)
{
    char *path = t_make_cache("inspect");
    struct t_res r = t_run("inspect", path, NULL);

    assert_int_equal(r.status, 0);
    char fmt[64];
    snprintf(fmt, sizeof(fmt), "format:       tierfs disk cache, version %u\n",
             HC_DISK_FORMAT_VERSION);
    t_contains(r.out, fmt);
    t_contains(r.out, "block size:   64.0 KiB (65536 bytes)\n");
    t_contains(r.out, "region size:  256.0 KiB (262144 bytes), 8 regions");
    t_contains(r.out, "identity:     " T_IDENTITY "\n");
    t_contains(r.out, "bucket:       test-bucket\n");
    t_contains(r.out, "endpoint:     http://127.0.0.1:9000\n");
    t_contains(r.out, "regions:      2 used, 6 free\n");
    t_contains(r.out, "entries:      20\n");
    t_contains(r.out, "in use:       no\n");
    assert_int_equal(r.err_len, 0);
    t_res_free(&r);

    r = t_run("inspect", "--json", "--engine", "uring", path, NULL);
    assert_int_equal(r.status, 0);
    assert_int_equal(t_count(r.out, "\n"), 1);
    t_contains(r.out, "\"entries\": 20,");
    t_contains(r.out, "\"block_size\": 65536,");
    t_contains(r.out, "\"region_count\": 8,");
    t_contains(r.out, "\"identity\": \"" T_IDENTITY "\"");
    t_contains(r.out, "\"bucket\": \"test-bucket\"");
    t_contains(r.out, "\"endpoint\": \"http://127.0.0.1:9000\"");
    t_contains(r.out, "\"in_use\": false}");
    t_res_free(&r);

    /* The API under it agrees, byte counts included. */
    struct hc_disk_info in;
    struct dev *dev = t_dev(path);
    assert_int_equal(hc_disk_inspect(dev, "psync", &in), 0);
    assert_int_equal(in.kind, HC_DISK_KIND_CACHE);
    assert_int_equal(in.entries, T_ENTRIES);
    assert_int_equal(in.block_size, T_BLOCK);
    assert_int_equal(in.region_size, T_REGION);
    assert_string_equal(in.identity, T_IDENTITY);
    uint64_t want = 0;
    uint8_t key[128];
    for (int i = 0; i < T_ENTRIES; i++)
        want += hc_disk_value_size(T_BLOCK, t_key(key, i), T_VALUE(i));
    assert_int_equal(in.used_bytes, want);
    dev_close(dev);
    unlink(path);
    free(path);
}

static void test_verify(void **state)
{
    char *path = t_make_cache("verify");
    struct t_res r = t_run("verify", "--no-direct-io", path, NULL);

    assert_int_equal(r.status, 0);
    t_contains(r.out, ": 20 entries (");
    t_contains(r.out, "20 ok, 0 corrupt, 0 unreadable\n");
    assert_int_equal(t_count(r.out, "\n"), 1);
    t_res_free(&r);

    /* -v lists every entry with its decoded key. */
    r = t_run("verify", "-v", path, NULL);
    assert_int_equal(r.status, 0);
    assert_int_equal(t_count(r.out, "ok: region "), T_ENTRIES);
    t_contains(r.out, "s3://test-bucket/dir/object-7 etag \"etag-7\" block 2 (object offset "
                      "131072, block size 64.0 KiB), 12259 value bytes\n");
    t_res_free(&r);

    /* Flip one byte in the value of entry 7: verify names exactly that entry. */
    struct t_find f = {.klen = t_key(f.key, 7)};
    struct hc_disk_verify_stats st;
    struct dev *dev = t_dev(path);
    assert_int_equal(hc_disk_verify(dev, "psync", t_find_cb, &f, NULL, &st), 0);
    dev_close(dev);
    assert_int_equal(f.found, 1);
    assert_int_equal(st.ok, T_ENTRIES);
    t_flip(path, f.dev_off + f.size / 2);

    r = t_run("verify", path, NULL);
    assert_int_equal(r.status, 1);
    assert_int_equal(t_count(r.out, "corrupt: region "), 1);
    t_contains(r.out, "data checksum mismatch: s3://test-bucket/dir/object-7 etag \"etag-7\" "
                      "block 2 ");
    char where[96];
    snprintf(where, sizeof(where), "(device offset %llu, %u bytes)", (unsigned long long)f.dev_off,
             f.size);
    t_contains(r.out, where);
    t_contains(r.out, "19 ok, 1 corrupt, 0 unreadable\n");
    t_res_free(&r);

    /* A broken entry header: the key is unknown, still one corrupt entry more. */
    struct t_find g = {.klen = t_key(g.key, 15)};
    dev = t_dev(path);
    assert_int_equal(hc_disk_verify(dev, "psync", t_find_cb, &g, NULL, &st), 0);
    dev_close(dev);
    assert_int_equal(g.found, 1);
    t_flip(path, g.dev_off + 8);
    r = t_run("verify", path, NULL);
    assert_int_equal(r.status, 1);
    assert_int_equal(t_count(r.out, "corrupt: region "), 2);
    t_contains(r.out, "entry header corrupt: key unknown\n");
    t_contains(r.out, "18 ok, 2 corrupt");
    t_res_free(&r);
    unlink(path);
    free(path);
}

/* The executable itself: same exit statuses, the message on stderr. */
static void test_binary(void **state)
{
    char *path = t_make_cache("binary");
    char *cmd = NULL;

    assert_true(asprintf(&cmd, "%s verify %s >/dev/null", TIERFS_CACHETOOL_BIN, path) > 0);
    int st = system(cmd);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    free(cmd);
    assert_true(asprintf(&cmd, "%s inspect %s.missing 2>/dev/null", TIERFS_CACHETOOL_BIN, path) >
                0);
    st = system(cmd);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 2);
    free(cmd);
    unlink(path);
    free(path);
}

static void test_clear(void **state)
{
    char *path = t_make_cache("clear");
    struct t_res r = t_run("clear", path, NULL);

    assert_int_equal(r.status, 0);
    t_contains(r.out, "cleared (20 entries, ");
    t_res_free(&r);

    r = t_run("inspect", path, NULL);
    assert_int_equal(r.status, 0);
    t_contains(r.out, "entries:      0\n");
    t_contains(r.out, "identity:     " T_IDENTITY "\n"); /* layout and identity stay */
    t_contains(r.out, "regions:      0 used, 8 free\n");
    t_res_free(&r);
    r = t_run("verify", path, NULL);
    assert_int_equal(r.status, 0);
    t_contains(r.out, "0 entries");
    t_res_free(&r);

    /* The next open starts empty and works. */
    struct hc_cache *c = t_open(path);
    struct hc_stats st;
    struct hc_entry *e = NULL;
    uint8_t key[128];
    size_t klen = t_key(key, 3);
    hc_get_stats(c, &st);
    assert_int_equal(st.disk_entries, 0);
    assert_int_equal(st.recovered_entries, 0);
    assert_int_equal(hc_fetch_sync(c, key, klen, HC_FETCH_NO_ORIGIN, NULL, NULL, &e, NULL),
                     -ENOENT);
    assert_int_equal(hc_insert(c, key, klen, "x", 1, 0), 0);
    hc_destroy(c);
    r = t_run("inspect", path, NULL);
    t_contains(r.out, "entries:      1\n");
    t_res_free(&r);
    unlink(path);
    free(path);
}

static void test_not_a_cache(void **state)
{
    char *path = t_path("junk"), *dir = t_path("dir");
    struct t_res r;
    uint8_t junk[8192];
    FILE *f;

    r = t_run("inspect", path, NULL);
    t_one_line_error(&r, "does not exist");
    t_res_free(&r);

    f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
    r = t_run("inspect", path, NULL);
    t_one_line_error(&r, "not a tierfs cache: empty file");
    t_res_free(&r);
    r = t_run("clear", path, NULL); /* nothing to clear */
    assert_int_equal(r.status, 0);
    t_contains(r.out, "already empty");
    t_res_free(&r);

    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (uint8_t)(i * 7 + 1);
    f = fopen(path, "w");
    assert_non_null(f);
    for (int k = 0; k < 64; k++)
        assert_int_equal(fwrite(junk, 1, sizeof(junk), f), sizeof(junk));
    fclose(f);
    r = t_run("inspect", path, NULL);
    t_one_line_error(&r, "not a tierfs cache: unknown data");
    t_res_free(&r);
    r = t_run("verify", path, NULL);
    t_one_line_error(&r, "not a tierfs cache: unknown data");
    t_res_free(&r);
    r = t_run("clear", path, NULL);
    t_one_line_error(&r, "refusing to clear it without --force");
    t_res_free(&r);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 64 * sizeof(junk)); /* untouched */

    r = t_run("clear", "--force", path, NULL);
    assert_int_equal(r.status, 0);
    t_contains(r.out, "header zeroed");
    t_res_free(&r);
    r = t_run("inspect", path, NULL);
    t_one_line_error(&r, "not a tierfs cache: empty (all zero)");
    t_res_free(&r);

    /* A valid header on a file cut short. */
    char *cut = t_make_cache("cut");
    assert_int_equal(truncate(cut, T_DISK / 2), 0);
    r = t_run("inspect", cut, NULL);
    t_one_line_error(&r, "(truncated?)");
    t_res_free(&r);

    assert_int_equal(mkdir(dir, 0700), 0);
    r = t_run("verify", dir, NULL);
    t_one_line_error(&r, "is a directory");
    t_res_free(&r);
    rmdir(dir);
    unlink(path);
    unlink(cut);
    free(path);
    free(dir);
    free(cut);
}

/* A running daemon holds the lock: inspect warns, verify and clear refuse, a second
 * open fails after the wait. */
static void test_in_use(void **state)
{
    char *path = t_make_cache("busy");
    struct hc_cache *c = t_open(path), *c2 = NULL;
    struct t_res r;

    r = t_run("inspect", path, NULL);
    assert_int_equal(r.status, 0);
    t_contains(r.err, "warning: ");
    t_contains(r.err, "is in use by a running tierfs");
    t_contains(r.out, "in use:       yes");
    t_res_free(&r);
    r = t_run("verify", path, NULL);
    t_one_line_error(&r, "in use by a running tierfs (it holds the cache lock)");
    t_res_free(&r);
    r = t_run("clear", "--force", path, NULL);
    t_one_line_error(&r, "in use by a running tierfs");
    t_res_free(&r);

    struct hc_conf conf = t_conf(path, false);
    assert_int_equal(hc_create(&conf, &c2), -EBUSY);
    assert_null(c2);

    hc_destroy(c);
    r = t_run("verify", path, NULL);
    assert_int_equal(r.status, 0);
    t_res_free(&r);
    unlink(path);
    free(path);
}

static void test_usage(void **state)
{
    struct t_res r;

    r = t_run(NULL);
    assert_int_equal(r.status, 2);
    t_contains(r.err, "Usage: tierfs-cache COMMAND");
    t_res_free(&r);
    r = t_run("--help", NULL);
    assert_int_equal(r.status, 0);
    t_contains(r.out, "inspect");
    t_contains(r.out, "verify");
    t_contains(r.out, "clear");
    t_res_free(&r);
    const char *cmds[] = {"inspect", "verify", "clear"};
    for (size_t i = 0; i < CMN_ARRAY_SIZE(cmds); i++) {
        r = t_run(cmds[i], "--help", NULL);
        assert_int_equal(r.status, 0);
        t_contains(r.out, "Usage: tierfs-cache ");
        t_contains(r.out, cmds[i]);
        t_contains(r.out, "--engine");
        t_contains(r.out, "--no-direct-io");
        t_res_free(&r);
        r = t_run(cmds[i], NULL);
        t_one_line_error(&r, "missing PATH");
        t_res_free(&r);
    }

    r = t_run("frobnicate", "x", NULL);
    t_one_line_error(&r, "unknown command 'frobnicate'");
    t_res_free(&r);
    r = t_run("inspect", "--bogus", "x", NULL);
    t_one_line_error(&r, "unknown option '--bogus'");
    t_res_free(&r);
    r = t_run("clear", "--json", "x", NULL);
    t_one_line_error(&r, "unknown option '--json'");
    t_res_free(&r);
    r = t_run("verify", "--engine", "aio", "x", NULL);
    t_one_line_error(&r, "unknown IO engine 'aio'");
    t_res_free(&r);
    r = t_run("verify", "--engine", NULL);
    t_one_line_error(&r, "--engine needs a value");
    t_res_free(&r);
    r = t_run("inspect", "a", "b", NULL);
    t_one_line_error(&r, "unexpected argument 'b'");
    t_res_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inspect),     cmocka_unit_test(test_verify),
        cmocka_unit_test(test_binary),      cmocka_unit_test(test_clear),
        cmocka_unit_test(test_not_a_cache), cmocka_unit_test(test_in_use),
        cmocka_unit_test(test_usage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
