/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_fs_opts.c: option parsing and validation of tierfs (fs/opts.c): sizes, durations,
 * modes, every bad value named in one line, booleans bare and as name=value, the source
 * forms, and what is left for libfuse.
 */
#include <errno.h>
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
#include "fs/fs_i.h"
#include "hybridcache/hybridcache.h"

#define T_ARGS_MAX 16

struct t_run {
    struct fs_conf conf;
    int rc;
    char err[1024];  /* what went to stderr */
    char rest[1024]; /* the arguments left for libfuse, space separated */
};

/* Parse and validate "tierfs ARGS..." (NULL-terminated) into @r. */
static void t_run_argv(struct t_run *r, const char *const *argv)
{
    char *av[T_ARGS_MAX + 1];
    int ac = 0;
    FILE *cap = tmpfile();
    int saved = dup(2);

    memset(r, 0, sizeof(*r));
    av[ac++] = "tierfs";
    for (; *argv && ac < T_ARGS_MAX; argv++)
        av[ac++] = (char *)*argv;
    av[ac] = NULL;
    struct fuse_args args = FUSE_ARGS_INIT(ac, av);

    assert_non_null(cap);
    fflush(stderr);
    dup2(fileno(cap), 2);
    r->rc = fs_opts_parse(&args, &r->conf);
    if (r->rc == 0)
        r->rc = fs_opts_validate(&r->conf);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rewind(cap);
    size_t n = fread(r->err, 1, sizeof(r->err) - 1, cap);
    r->err[n] = '\0';
    fclose(cap);
    for (int i = 1; i < args.argc; i++) {
        size_t len = strlen(r->rest);
        snprintf(r->rest + len, sizeof(r->rest) - len, "%s%s", len ? " " : "", args.argv[i]);
    }
    fuse_opt_free_args(&args);
}

/* "tierfs bucket /mnt -o OPTS". */
static void t_run_o(struct t_run *r, const char *opts)
{
    const char *argv[] = {"bucket", "/mnt", "-o", opts, NULL};
    t_run_argv(r, argv);
}

static void t_done(struct t_run *r)
{
    fs_opts_free(&r->conf);
}

/* @opts must fail with one line that names @name and quotes @value. */
static void t_bad(const char *opts, const char *name, const char *value)
{
    struct t_run r;
    char quoted[256];

    t_run_o(&r, opts);
    if (r.rc != -EINVAL || !strstr(r.err, name) || !strchr(r.err, '\n') ||
        strchr(r.err, '\n')[1] != '\0')
        fail_msg("-o %s: rc %d, message '%s' (want one line naming %s)", opts, r.rc, r.err, name);
    snprintf(quoted, sizeof(quoted), "'%s'", value);
    if (!strstr(r.err, quoted))
        fail_msg("-o %s: message '%s' does not quote the value %s", opts, r.err, quoted);
    t_done(&r);
}

static void test_defaults(void **state)
{
    struct t_run r;
    (void)state;
    t_run_o(&r, "ro");
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.conf.bucket, "bucket");
    assert_string_equal(r.conf.prefix, "");
    assert_int_equal(r.conf.block_size, 1u << 20);
    assert_int_equal(r.conf.mem_cache_size, fs_default_mem_cache(cmn_mem_limit("")));
    assert_int_equal(r.conf.metadata_ttl_ms, FS_DEFAULT_TTL_MS);
    assert_int_equal(r.conf.negative_ttl_ms, FS_DEFAULT_NEG_TTL_MS);
    assert_int_equal(r.conf.read_ahead, FS_DEFAULT_READ_AHEAD);
    assert_true(r.conf.page_cache);
    assert_int_equal(r.conf.page_cache_fill, FS_DEFAULT_PAGE_CACHE_FILL);
    assert_int_equal(r.conf.partial_grain, FS_DEFAULT_PARTIAL_GRAIN);
    assert_int_equal(r.conf.dense_prefetch, FS_DEFAULT_DENSE_PREFETCH);
    assert_int_equal(r.conf.connect_timeout_ms, FS_DEFAULT_CONNECT_TIMEOUT_MS);
    assert_int_equal(r.conf.read_timeout_ms, FS_DEFAULT_READ_TIMEOUT_MS);
    assert_int_equal(r.conf.request_timeout_ms, 0); /* none */
    assert_int_equal(r.conf.retries, FS_DEFAULT_RETRIES);
    assert_true(r.conf.direct_io);
    assert_int_equal(r.conf.path_style, 0);
    assert_int_equal(r.conf.file_mode, 0444);
    assert_int_equal(r.conf.dir_mode, 0555);
    assert_non_null(strstr(r.rest, "ro")); /* libfuse's option stays for libfuse */
    t_done(&r);
}

static void test_sizes_and_durations(void **state)
{
    struct t_run r;
    (void)state;
    t_run_o(&r, "block_size=64K,mem_cache_size=2G,disk_cache=/tmp/c,disk_cache_size=49M,"
                "read_ahead=4M,prefetch=0,metadata_ttl=5m,negative_ttl=500ms,"
                "max_connections=8,max_threads=3,file_mode=0400,dir_mode=500,uid=0,gid=0,"
                "log_level=debug,io_engine=psync,eviction=lru,compression=lz4");
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.conf.block_size, 64u << 10);
    assert_int_equal(r.conf.mem_cache_size, 2ull << 30);
    assert_string_equal(r.conf.disk_cache, "/tmp/c");
    assert_int_equal(r.conf.disk_cache_size, 49ull << 20);
    assert_int_equal(r.conf.read_ahead, 4u << 20);
    assert_int_equal(r.conf.page_cache_fill, 16u << 10); /* a quarter of the 64K block */
    assert_int_equal(r.conf.partial_grain, 16u << 10);   /* likewise */
    assert_int_equal(r.conf.prefetch_window, 0);
    assert_int_equal(r.conf.metadata_ttl_ms, 300000);
    assert_int_equal(r.conf.negative_ttl_ms, 500);
    assert_int_equal(r.conf.max_connections, 8);
    assert_int_equal(r.conf.max_threads, 3);
    assert_int_equal(r.conf.file_mode, 0400);
    assert_int_equal(r.conf.dir_mode, 0500);
    assert_int_equal(r.conf.uid, 0);
    assert_int_equal(r.conf.log_level, TLOG_DEBUG);
    assert_true(r.conf.compress);
    assert_string_equal(r.rest, ""); /* all ours */
    t_done(&r);
}

/* The default memory tier: a sixteenth of RAM (or the cgroup's limit), 256M..4G, in MiB. */
static void test_default_mem_cache(void **state)
{
    (void)state;
    assert_int_equal(fs_default_mem_cache(0), 256ull << 20);            /* unknown: the floor */
    assert_int_equal(fs_default_mem_cache(2ull << 30), 256ull << 20);   /* 2 GiB box: the floor */
    assert_int_equal(fs_default_mem_cache(24ull << 30), 1536ull << 20); /* 24 GiB: 1.5 GiB */
    assert_int_equal(fs_default_mem_cache((24ull << 30) + 12345), 1536ull << 20); /* whole MiB */
    assert_int_equal(fs_default_mem_cache(256ull << 30), 4ull << 30);             /* the ceiling */
}

static void test_bad_values(void **state)
{
    (void)state;
    t_bad("block_size=3M", "block_size", "3M");   /* not a power of two */
    t_bad("block_size=32K", "block_size", "32K"); /* below 64K */
    t_bad("block_size=1Q", "block_size", "1Q");
    t_bad("mem_cache_size=lots", "mem_cache_size", "lots");
    t_bad("mem_cache_size=1M", "mem_cache_size", "1M"); /* fewer than 4 blocks */
    t_bad("disk_cache_size=1M", "disk_cache_size", "1M");
    t_bad("disk_cache_size=48M", "disk_cache_size", "48M"); /* under three regions */
    t_bad("disk_cache=", "disk_cache", "");
    t_bad("direct_io=maybe", "direct_io", "maybe");
    t_bad("io_engine=aio", "io_engine", "aio");
    t_bad("eviction=fifo", "eviction", "fifo");
    t_bad("compression=zstd", "compression", "zstd");
    t_bad("prefetch=8G", "prefetch", "8G");
    t_bad("prefetch_window=512K", "prefetch_window", "512K"); /* under one 1M block */
    t_bad("prefetch_window=5G", "prefetch_window", "5G");
    t_bad("prefetch_window=wide", "prefetch_window", "wide");
    t_bad("prefetch_max_request=512K", "prefetch_max_request", "512K");
    t_bad("prefetch_max_request=2G", "prefetch_max_request", "2G");
    t_bad("prefetch_window=8M,prefetch_max_request=16M", "prefetch_max_request", "16M");
    t_bad("read_ahead=2G", "read_ahead", "2G");
    t_bad("page_cache_fill=12K", "page_cache_fill", "12K"); /* not a power of two */
    t_bad("page_cache_fill=2K", "page_cache_fill", "2K");   /* below a page */
    t_bad("page_cache_fill=2M", "page_cache_fill", "2M");   /* above the 1M block */
    t_bad("partial_grain=96K", "partial_grain", "96K");     /* not a power of two */
    t_bad("partial_grain=2K", "partial_grain", "2K");       /* below a page */
    t_bad("partial_grain=1M", "partial_grain", "1M");       /* not less than the block */
    t_bad("partial_grain=x", "partial_grain", "x");
    t_bad("dense_prefetch=lots", "dense_prefetch", "lots");
    t_bad("dense_prefetch=2T", "dense_prefetch", "2T"); /* over 1T */
    t_bad("metadata_ttl=soon", "metadata_ttl", "soon");
    t_bad("negative_ttl=-1", "negative_ttl", "-1");
    t_bad("max_connections=0", "max_connections", "0");
    t_bad("max_connections=5000", "max_connections", "5000");
    t_bad("max_threads=x", "max_threads", "x");
    t_bad("uid=no-such-user-tierfs", "uid", "no-such-user-tierfs");
    t_bad("gid=no-such-group-tierfs", "gid", "no-such-group-tierfs");
    t_bad("file_mode=0999", "file_mode", "0999");
    t_bad("dir_mode=17777", "dir_mode", "17777");
    t_bad("log_level=loud", "log_level", "loud");
    t_bad("metrics=localhost:80", "metrics", "localhost:80");
    t_bad("endpoint=ftp://example.com", "endpoint", "ftp://example.com");
    t_bad("connect_timeout=0", "connect_timeout", "0");
    t_bad("connect_timeout=5ms", "connect_timeout", "5ms"); /* below 10ms */
    t_bad("connect_timeout=11m", "connect_timeout", "11m"); /* above 10m */
    t_bad("connect_timeout=1.5", "connect_timeout", "1.5"); /* fractions: 1500ms */
    t_bad("connect_timeout=soon", "connect_timeout", "soon");
    t_bad("connect_timeout=", "connect_timeout", "");
    t_bad("read_timeout=0", "read_timeout", "0");
    t_bad("read_timeout=99ms", "read_timeout", "99ms");
    t_bad("read_timeout=2h", "read_timeout", "2h");
    t_bad("read_timeout=-1", "read_timeout", "-1");
    t_bad("read_timeout=10x", "read_timeout", "10x");
    t_bad("request_timeout=99ms", "request_timeout", "99ms"); /* 0 or at least 100ms */
    t_bad("request_timeout=25h", "request_timeout", "25h");
    t_bad("request_timeout=-1", "request_timeout", "-1");
    t_bad("request_timeout=soon", "request_timeout", "soon");
    t_bad("request_timeout=", "request_timeout", "");
    t_bad("retries=101", "retries", "101");
    t_bad("retries=-1", "retries", "-1");
    t_bad("retries=two", "retries", "two");
    t_bad("retries=", "retries", "");
    t_bad("access_key=AK", "secret_key", "(missing)");
    t_bad("no_sign_request,access_key=AK,secret_key=SK", "no_sign_request", "1");
}

/* Every flag of ours: bare, name=true-ish, name=false-ish, a bad value. */
/* The S3 timeouts and retries: units and the bounds themselves (bad values: above). */
static void test_s3_timeouts(void **state)
{
    static const struct {
        const char *opts;
        uint64_t connect_ms, read_ms;
        unsigned retries;
        uint64_t request_ms;
    } ok[] = {
        {"connect_timeout=500ms,read_timeout=2s,retries=0", 500, 2000, 0, 0},
        {"connect_timeout=10ms,read_timeout=100ms,retries=100,request_timeout=100ms", 10, 100, 100,
         100}, /* the minima */
        {"connect_timeout=10m,read_timeout=1h,retries=7,request_timeout=24h", 600000, 3600000, 7,
         86400000}, /* the maxima */
        {"connect_timeout=30,read_timeout=1500ms,request_timeout=2m", 30000, 1500,
         FS_DEFAULT_RETRIES, 120000},
        {"request_timeout=0", FS_DEFAULT_CONNECT_TIMEOUT_MS, FS_DEFAULT_READ_TIMEOUT_MS,
         FS_DEFAULT_RETRIES, 0},
    };
    struct t_run r;
    (void)state;
    for (size_t i = 0; i < CMN_ARRAY_SIZE(ok); i++) {
        t_run_o(&r, ok[i].opts);
        if (r.rc != 0)
            fail_msg("-o %s: rc %d, '%s'", ok[i].opts, r.rc, r.err);
        assert_int_equal(r.conf.connect_timeout_ms, ok[i].connect_ms);
        assert_int_equal(r.conf.read_timeout_ms, ok[i].read_ms);
        assert_int_equal(r.conf.retries, ok[i].retries);
        assert_int_equal(r.conf.request_timeout_ms, ok[i].request_ms);
        assert_string_equal(r.rest, ""); /* all ours */
        t_done(&r);
    }
}

static void test_bools(void **state)
{
    static const struct {
        const char *name;
        size_t off;
    } flags[] = {
        {"path_style", offsetof(struct fs_conf, path_style)},
        {"no_sign_request", offsetof(struct fs_conf, no_sign_request)},
        {"insecure", offsetof(struct fs_conf, insecure)},
    };
    static const char *yes[] = {"1", "true", "yes", "on", "TRUE"};
    static const char *no[] = {"0", "false", "no", "off"};
    char opt[128];
    struct t_run r;
    int v;
    (void)state;

    for (size_t f = 0; f < CMN_ARRAY_SIZE(flags); f++) {
        const char *name = flags[f].name;
        t_run_o(&r, name);
        assert_int_equal(r.rc, 0);
        memcpy(&v, (char *)&r.conf + flags[f].off, sizeof(v));
        assert_int_equal(v, 1);
        t_done(&r);
        for (size_t i = 0; i < CMN_ARRAY_SIZE(yes); i++) {
            snprintf(opt, sizeof(opt), "%s=%s", name, yes[i]);
            t_run_o(&r, opt);
            assert_int_equal(r.rc, 0);
            memcpy(&v, (char *)&r.conf + flags[f].off, sizeof(v));
            assert_int_equal(v, 1);
            assert_string_equal(r.rest, "");
            t_done(&r);
        }
        for (size_t i = 0; i < CMN_ARRAY_SIZE(no); i++) {
            snprintf(opt, sizeof(opt), "%s,%s=%s", name, name, no[i]); /* the last one wins */
            t_run_o(&r, opt);
            assert_int_equal(r.rc, 0);
            memcpy(&v, (char *)&r.conf + flags[f].off, sizeof(v));
            assert_int_equal(v, 0);
            t_done(&r);
        }
        snprintf(opt, sizeof(opt), "%s=maybe", name);
        t_bad(opt, name, "maybe");
        snprintf(opt, sizeof(opt), "%s=", name);
        t_bad(opt, name, "");
    }

    /* direct_io is on by default; bare or =value. */
    t_run_o(&r, "direct_io=off");
    assert_int_equal(r.rc, 0);
    assert_false(r.conf.direct_io);
    t_done(&r);
    t_run_o(&r, "direct_io=no,direct_io");
    assert_int_equal(r.rc, 0);
    assert_true(r.conf.direct_io);
    t_done(&r);

    /* libfuse's flags: name=true becomes the bare flag, name=false disappears. */
    t_run_o(&r, "allow_other=1,auto_unmount=no");
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.rest, "allow_other"));
    assert_null(strstr(r.rest, "allow_other="));
    assert_null(strstr(r.rest, "auto_unmount"));
    t_done(&r);
    t_bad("allow_other=perhaps", "allow_other", "perhaps");
}

static void test_sources(void **state)
{
    static const struct {
        const char *src, *bucket, *prefix;
    } good[] = {
        {"bucket", "bucket", ""},
        {"bucket:", "bucket", ""},
        {"bucket:/", "bucket", ""},
        {"bucket:/data", "bucket", "data/"},
        {"bucket:/data/2024/", "bucket", "data/2024/"},
        {"bucket:data//", "bucket", "data/"},
        {"s3://bucket", "bucket", ""},
        {"s3://bucket/", "bucket", ""},
        {"s3://bucket/logs/app", "bucket", "logs/app/"},
        {"my.bucket-1:/.hidden/x", "my.bucket-1", ".hidden/x/"},
    };
    static const char *bad[] = {
        ":/x", "s3:///x", "s3://", "b:/a//b", "b:/a/./b", "b:/../x", "b:/a/..",
    };
    struct t_run r;
    (void)state;

    for (size_t i = 0; i < CMN_ARRAY_SIZE(good); i++) {
        const char *argv[] = {good[i].src, "/mnt", NULL};
        t_run_argv(&r, argv);
        if (r.rc != 0)
            fail_msg("source '%s': %s", good[i].src, r.err);
        assert_string_equal(r.conf.bucket, good[i].bucket);
        assert_string_equal(r.conf.prefix, good[i].prefix);
        t_done(&r);
    }
    for (size_t i = 0; i < CMN_ARRAY_SIZE(bad); i++) {
        const char *argv[] = {bad[i], "/mnt", NULL};
        t_run_argv(&r, argv);
        if (r.rc != -EINVAL || !strstr(r.err, "source") || !strstr(r.err, bad[i]))
            fail_msg("source '%s': rc %d, '%s'", bad[i], r.rc, r.err);
        t_done(&r);
    }
    /* Missing positional arguments, and one too many. */
    const char *none[] = {NULL}, *one[] = {"bucket", NULL}, *three[] = {"b", "/m", "x", NULL};
    t_run_argv(&r, none);
    assert_int_equal(r.rc, -EINVAL);
    assert_non_null(strstr(r.err, "BUCKET and MOUNTPOINT"));
    t_done(&r);
    t_run_argv(&r, one);
    assert_int_equal(r.rc, -EINVAL);
    assert_non_null(strstr(r.err, "MOUNTPOINT"));
    t_done(&r);
    t_run_argv(&r, three);
    assert_int_equal(r.rc, -EINVAL);
    assert_non_null(strstr(r.err, "'x'"));
    t_done(&r);
}

/* fstab/mount(8) words are dropped; unknown options stay for libfuse to judge. */
static void test_passthrough(void **state)
{
    struct t_run r;
    (void)state;
    t_run_o(&r, "_netdev,nofail,noauto,user,defaults,x-systemd.automount,comment=x,"
                "fsname=data,allow_other,no_such_option");
    assert_int_equal(r.rc, 0);
    assert_null(strstr(r.rest, "_netdev"));
    assert_null(strstr(r.rest, "nofail"));
    assert_null(strstr(r.rest, "x-systemd"));
    assert_null(strstr(r.rest, "comment"));
    assert_non_null(strstr(r.rest, "fsname=data"));
    assert_non_null(strstr(r.rest, "allow_other"));
    assert_non_null(strstr(r.rest, "no_such_option"));
    t_done(&r);
    const char *argv[] = {"-f", "bucket", "/mnt", "-d", NULL};
    t_run_argv(&r, argv);
    assert_int_equal(r.rc, 0);
    assert_true(r.conf.foreground && r.conf.debug);
    assert_int_equal(r.conf.log_level, TLOG_DEBUG);
    t_done(&r);
}

/*
 * fs_cache_conf: every cache option reaches struct hc_conf (the daemon and tierfs-cache
 * warm both build their cache with it; warm once dropped eviction and refuse_unknown).
 */
static void test_cache_conf(void **state)
{
    char dir[] = "/tmp/tierfs-cacheconf-XXXXXX", path[64], opts[256];
    struct hc_conf hc;
    struct t_run r;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/new.img", dir);
    snprintf(opts, sizeof(opts),
             "block_size=2M,mem_cache_size=96M,eviction=lru,disk_cache=%s,direct_io=off,"
             "io_engine=psync,compression=lz4,disk_cache_overwrite",
             path);
    t_run_o(&r, opts);
    assert_int_equal(r.rc, 0);
    fs_cache_conf(&r.conf, "identity-1", &hc);
    assert_int_equal(hc.block_size, 2u << 20);
    assert_int_equal(hc.mem_capacity, 96ull << 20);
    assert_string_equal(hc.mem_policy, "lru");
    assert_string_equal(hc.disk_path, path);
    assert_int_equal(hc.disk_capacity, FS_DEFAULT_DISK_CACHE); /* a new file: the default */
    assert_false(hc.direct_io);
    assert_string_equal(hc.io_engine, "psync");
    assert_true(hc.compression);
    assert_string_equal(hc.identity, "identity-1");
    assert_false(hc.refuse_unknown);
    t_done(&r);

    /* An existing non-empty file brings its own size; without disk_cache_overwrite data
     * that is no tierfs cache is refused; the policy default passes through. */
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs("someone else's data", f) >= 0, 1);
    fclose(f);
    snprintf(opts, sizeof(opts), "disk_cache=%s", path);
    t_run_o(&r, opts);
    assert_int_equal(r.rc, 0);
    fs_cache_conf(&r.conf, "identity-2", &hc);
    assert_int_equal(hc.disk_capacity, 0);
    assert_true(hc.refuse_unknown);
    assert_true(hc.mem_policy == r.conf.eviction);
    assert_true(hc.direct_io == r.conf.direct_io);
    assert_int_equal(hc.mem_capacity, r.conf.mem_cache_size);
    t_done(&r);

    /* disk_cache_size given: used as is. No disk cache: memory only. */
    snprintf(opts, sizeof(opts), "disk_cache=%s,disk_cache_size=64M", path);
    t_run_o(&r, opts);
    assert_int_equal(r.rc, 0);
    fs_cache_conf(&r.conf, "i", &hc);
    assert_int_equal(hc.disk_capacity, 64ull << 20);
    t_done(&r);
    t_run_o(&r, "mem_cache_size=64M");
    assert_int_equal(r.rc, 0);
    fs_cache_conf(&r.conf, "i", &hc);
    assert_null(hc.disk_path);
    assert_int_equal(hc.disk_capacity, 0);
    t_done(&r);
    unlink(path);
    rmdir(dir);
}

/* prefetch_window and prefetch_max_request: the window as given, requests in whole blocks
 * and never above the window; prefetch=no turns the window off, a size sets it. */
static void test_prefetch_opts(void **state)
{
    struct t_run r;

    (void)state;
    t_run_o(&r, "mem_cache_size=512M");
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.conf.prefetch_window, FS_DEFAULT_PREFETCH_WINDOW);
    assert_int_equal(r.conf.prefetch_max_request, FS_DEFAULT_PREFETCH_MAX_REQUEST);
    t_done(&r);
    t_run_o(&r, "prefetch_window=32M,prefetch_max_request=4M");
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.conf.prefetch_window, 32u << 20);
    assert_int_equal(r.conf.prefetch_max_request, 4u << 20);
    t_done(&r);
    /* whole blocks: 3.5M of 1M blocks is 3M; with 2M blocks 5M is 4M */
    t_run_o(&r, "prefetch_max_request=3584K");
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.conf.prefetch_max_request, 3u << 20);
    t_done(&r);
    t_run_o(&r, "block_size=2M,prefetch_max_request=5M");
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.conf.prefetch_max_request, 4u << 20);
    t_done(&r);
    /* a window smaller than the default request: requests shrink to it */
    t_run_o(&r, "prefetch_window=2M");
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.conf.prefetch_window, 2u << 20);
    assert_int_equal(r.conf.prefetch_max_request, 2u << 20);
    t_done(&r);
    t_run_o(&r, "prefetch=no,prefetch_window=64M");
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.conf.prefetch_window, 0);
    t_done(&r);
    t_run_o(&r, "prefetch=48M");
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.conf.prefetch_window, 48u << 20);
    t_done(&r);
    t_run_o(&r, "partial_grain=0");
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.conf.partial_grain, 0); /* off: skipping readers take whole blocks */
    t_done(&r);
    /* page_cache=no: no page-cache fill by default, and none may be asked for */
    t_run_o(&r, "page_cache=no");
    assert_int_equal(r.rc, 0);
    assert_false(r.conf.page_cache);
    assert_int_equal(r.conf.page_cache_fill, 0);
    t_done(&r);
    t_run_o(&r, "page_cache=auto"); /* page cache, fill included, until a footer read */
    assert_int_equal(r.rc, 0);
    assert_true(r.conf.page_cache);
    assert_true(r.conf.page_cache_auto);
    assert_int_equal(r.conf.page_cache_fill, FS_DEFAULT_PAGE_CACHE_FILL);
    t_done(&r);
    t_run_o(&r, "page_cache=yes");
    assert_int_equal(r.rc, 0);
    assert_false(r.conf.page_cache_auto);
    t_done(&r);
    t_run_o(&r, "page_cache=off,page_cache_fill=0K"); /* a zero in any spelling */
    assert_int_equal(r.rc, 0);
    assert_false(r.conf.page_cache);
    t_done(&r);
    t_run_o(&r, "page_cache=yes,page_cache_fill=128K");
    assert_int_equal(r.rc, 0);
    assert_true(r.conf.page_cache);
    assert_int_equal(r.conf.page_cache_fill, 128u << 10);
    t_done(&r);
    t_bad("page_cache=sometimes", "page_cache", "sometimes");
    t_bad("page_cache=no,page_cache_fill=64K", "page_cache_fill", "64K");
    t_run_o(&r, "dense_prefetch=0,partial_grain=512K");
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.conf.partial_grain, 512u << 10);
    assert_int_equal(r.conf.dense_prefetch, 0);
    t_done(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),          cmocka_unit_test(test_sizes_and_durations),
        cmocka_unit_test(test_default_mem_cache), cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_s3_timeouts),       cmocka_unit_test(test_bools),
        cmocka_unit_test(test_sources),           cmocka_unit_test(test_passthrough),
        cmocka_unit_test(test_cache_conf),        cmocka_unit_test(test_prefetch_opts),
    };
    return cmocka_run_group_tests_name("fs_opts", tests, NULL, NULL);
}
