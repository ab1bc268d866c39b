/* SPDX-License-Identifier: Apache-2.0 */
/* opts.c: the one fuse_opt table of tierfs, validation with one-line messages, --help. */
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <pwd.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "fs/fs_i.h"
#include "hybridcache/fleet.h"
#include "hybridcache/hybridcache.h"
#include "ioengine/ioengine.h"

enum {
    FS_KEY_HELP,
    FS_KEY_VERSION,
    FS_KEY_EXPLAIN_CREDS,
    FS_KEY_FOREGROUND,
    FS_KEY_DEBUG,     /* ours and libfuse's: kept for fuse_session_new() too */
    FS_KEY_DISCARD,   /* mount(8)/fstab words that mean nothing to a FUSE mount */
    FS_KEY_BOOL,      /* NAME=VALUE of one of our FS_BOOL options */
    FS_KEY_DIRECT_IO, /* bare "direct_io": direct_io=yes */
    FS_KEY_FUSE_BOOL, /* NAME=VALUE of a libfuse flag (allow_other, ...) */
};

#define FS_OPT(t, field)                                                                           \
    {                                                                                              \
        t, offsetof(struct fs_conf, field), 1                                                      \
    }
/* A boolean (int field): "-o name" sets it, "-o name=VALUE" takes 1/0, true/false,
 * yes/no, on/off (fstab and most users write name=1). The bare entry holds the offset;
 * fs_opt_bool() finds it from the name=VALUE key. */
#define FS_BOOL(name, field) FS_OPT(name, field), FUSE_OPT_KEY(name "=", FS_KEY_BOOL)
#define FS_BOOL_ACCEPTS "1, 0, true, false, yes, no, on or off"

static const struct fuse_opt fs_opt_table[] = {
    /* object store */
    FS_OPT("endpoint=%s", endpoint),
    FS_OPT("region=%s", region),
    FS_BOOL("path_style", path_style),
    FS_OPT("profile=%s", profile),
    FS_BOOL("no_sign_request", no_sign_request),
    FS_OPT("ca_bundle=%s", ca_bundle),
    FS_BOOL("insecure", insecure),
    FS_OPT("access_key=%s", access_key),
    FS_OPT("secret_key=%s", secret_key),
    FS_OPT("max_connections=%s", max_connections_s),
    FS_OPT("connect_timeout=%s", connect_timeout_s),
    FS_OPT("read_timeout=%s", read_timeout_s),
    FS_OPT("request_timeout=%s", request_timeout_s),
    FS_OPT("retries=%s", retries_s),
    /* cache */
    FS_OPT("block_size=%s", block_size_s),
    FS_OPT("mem_cache_size=%s", mem_cache_size_s),
    FS_OPT("disk_cache=%s", disk_cache),
    FS_OPT("disk_cache_size=%s", disk_cache_size_s),
    FS_BOOL("disk_cache_overwrite", disk_cache_overwrite),
    FS_OPT("direct_io=%s", direct_io_s),
    FUSE_OPT_KEY("direct_io", FS_KEY_DIRECT_IO),
    FS_OPT("io_engine=%s", io_engine),
    FS_OPT("eviction=%s", eviction),
    FS_OPT("compression=%s", compression),
    FS_OPT("prefetch=%s", prefetch_s),
    FS_OPT("prefetch_window=%s", prefetch_window_s),
    FS_OPT("prefetch_max_request=%s", prefetch_max_request_s),
    FS_OPT("read_ahead=%s", read_ahead_s),
    FS_OPT("page_cache=%s", page_cache_s),
    FS_OPT("page_cache_fill=%s", page_cache_fill_s),
    FS_OPT("partial_grain=%s", partial_grain_s),
    FS_OPT("dense_prefetch=%s", dense_prefetch_s),
    /* metadata */
    FS_OPT("metadata_ttl=%s", metadata_ttl_s),
    FS_OPT("negative_ttl=%s", negative_ttl_s),
    /* ownership and modes */
    FS_OPT("uid=%s", uid_s),
    FS_OPT("gid=%s", gid_s),
    FS_OPT("file_mode=%s", file_mode_s),
    FS_OPT("dir_mode=%s", dir_mode_s),
    /* daemon */
    FS_OPT("max_threads=%s", max_threads_s),
    FS_OPT("log_level=%s", log_level_s),
    FS_OPT("metrics=%s", metrics),
    /* writes */
    FS_BOOL("writable", writable),
    FS_BOOL("allow_overwrite", allow_overwrite),
    FS_BOOL("allow_delete", allow_delete),
    FS_OPT("part_size=%s", part_size_s),
    FS_OPT("upload_parallel=%s", upload_parallel_s),
    FS_OPT("upload_memory=%s", upload_memory_s),
    /* fleet tier */
    FS_OPT("fleet=%s", fleet),
    FS_OPT("fleet_secret=%s", fleet_secret),
    FS_OPT("fleet_timeout=%s", fleet_timeout_s),
    FS_OPT("fleet_lease=%s", fleet_lease_s),
    FS_OPT("fleet_retry=%s", fleet_retry_s),
    FS_OPT("fleet_piece_size=%s", fleet_piece_size_s),
    FS_OPT("fleet_store_queue=%s", fleet_store_queue_s),
    FUSE_OPT_KEY("-h", FS_KEY_HELP),
    FUSE_OPT_KEY("--help", FS_KEY_HELP),
    FUSE_OPT_KEY("-V", FS_KEY_VERSION),
    FUSE_OPT_KEY("--version", FS_KEY_VERSION),
    FUSE_OPT_KEY("--explain-credentials", FS_KEY_EXPLAIN_CREDS),
    FUSE_OPT_KEY("-f", FS_KEY_FOREGROUND),
    FUSE_OPT_KEY("foreground", FS_KEY_FOREGROUND),
    FUSE_OPT_KEY("-d", FS_KEY_DEBUG),
    FUSE_OPT_KEY("debug", FS_KEY_DEBUG),
    /* libfuse's own flags, also as NAME=VALUE */
    FUSE_OPT_KEY("allow_other=", FS_KEY_FUSE_BOOL),
    FUSE_OPT_KEY("allow_root=", FS_KEY_FUSE_BOOL),
    FUSE_OPT_KEY("auto_unmount=", FS_KEY_FUSE_BOOL),
    /* mount(8) passes these through mount.fuse3; libfuse would reject them */
    FUSE_OPT_KEY("_netdev", FS_KEY_DISCARD),
    FUSE_OPT_KEY("nofail", FS_KEY_DISCARD),
    FUSE_OPT_KEY("auto", FS_KEY_DISCARD),
    FUSE_OPT_KEY("noauto", FS_KEY_DISCARD),
    FUSE_OPT_KEY("user", FS_KEY_DISCARD),
    FUSE_OPT_KEY("users", FS_KEY_DISCARD),
    FUSE_OPT_KEY("nouser", FS_KEY_DISCARD),
    FUSE_OPT_KEY("owner", FS_KEY_DISCARD),
    FUSE_OPT_KEY("group", FS_KEY_DISCARD),
    FUSE_OPT_KEY("defaults", FS_KEY_DISCARD),
    FUSE_OPT_END,
};

/*
 * "NAME=VALUE" of a boolean: parse VALUE into *@val and put NAME (without "=") in @name.
 * @return 0, or -1 after printing one line naming the option.
 */
static int fs_opt_bool_value(const char *arg, char *name, size_t cap, int *val)
{
    const char *eq = strchr(arg, '=');
    size_t nlen = eq ? (size_t)(eq - arg) : strlen(arg);

    snprintf(name, cap, "%.*s", (int)nlen, arg);
    if (!eq || cmn_parse_bool(eq + 1, val) != 0) {
        fprintf(stderr, "tierfs: bad value '%s' for %s: expected " FS_BOOL_ACCEPTS "\n",
                eq ? eq + 1 : "", name);
        return -1;
    }
    return 0;
}

/* "NAME=VALUE" of an FS_BOOL option: set its field. @return 0 or -1 (one line printed). */
static int fs_opt_bool(struct fs_conf *conf, const char *arg)
{
    char name[64];
    int val;

    if (fs_opt_bool_value(arg, name, sizeof(name), &val) != 0)
        return -1;
    for (const struct fuse_opt *o = fs_opt_table; o->templ; o++) {
        if (o->offset != -1UL && strcmp(o->templ, name) == 0) {
            memcpy((char *)conf + o->offset, &val, sizeof(val)); /* an int field */
            return 0;
        }
    }
    return -1; /* unreachable: every FS_KEY_BOOL comes from an FS_BOOL pair */
}

static int fs_opt_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
    struct fs_conf *conf = data;
    char name[64], *opt;
    int val;

    switch (key) {
    case FS_KEY_BOOL:
        return fs_opt_bool(conf, arg);
    case FS_KEY_DIRECT_IO:
        free(conf->direct_io_s);
        conf->direct_io_s = strdup("yes");
        return conf->direct_io_s ? 0 : -1;
    case FS_KEY_FUSE_BOOL:
        /* libfuse knows only the bare flag: pass it on when true, drop it when false */
        if (fs_opt_bool_value(arg, name, sizeof(name), &val) != 0)
            return -1;
        if (!val)
            return 0;
        if (asprintf(&opt, "-o%s", name) < 0)
            return -1;
        val = fuse_opt_add_arg(outargs, opt);
        free(opt);
        return val == 0 ? 0 : -1;
    case FS_KEY_HELP:
        conf->show_help = 1;
        return 0;
    case FS_KEY_VERSION:
        conf->show_version = 1;
        return 0;
    case FS_KEY_EXPLAIN_CREDS:
        conf->explain_creds = 1;
        return 0;
    case FS_KEY_FOREGROUND:
        conf->foreground = 1;
        return 0;
    case FS_KEY_DEBUG:
        conf->debug = 1;
        conf->foreground = 1;
        return 1;
    case FS_KEY_DISCARD:
        return 0;
    case FUSE_OPT_KEY_NONOPT:
        if (!conf->source) {
            conf->source = strdup(arg);
            return conf->source ? 0 : -1;
        }
        if (!conf->mountpoint) {
            conf->mountpoint = strdup(arg);
            return conf->mountpoint ? 0 : -1;
        }
        fprintf(stderr,
                "tierfs: unexpected argument '%s' (usage: tierfs BUCKET[:/PREFIX] MOUNTPOINT [-o "
                "options])\n",
                arg);
        return -1;
    case FUSE_OPT_KEY_OPT:
        /* systemd and mount(8) annotations ride along in fstab options */
        if (strncmp(arg, "x-", 2) == 0 || strncmp(arg, "comment=", 8) == 0)
            return 0;
        return 1;
    default:
        return 1;
    }
}

int fs_opts_parse(struct fuse_args *args, struct fs_conf *conf)
{
    if (fuse_opt_parse(args, conf, fs_opt_table, fs_opt_proc) != 0)
        return -EINVAL;
    return 0;
}

int fs_opts_bad(const char *opt, const char *val, const char *accepts)
{
    fprintf(stderr, "tierfs: bad value '%s' for %s: expected %s\n", val, opt, accepts);
    return -EINVAL;
}

int fs_opts_size(const char *opt, const char *val, uint64_t min, uint64_t max, const char *accepts,
                 uint64_t *out)
{
    uint64_t v;
    if (!val)
        return 0;
    if (cmn_parse_size(val, &v) != 0 || v < min || v > max)
        return fs_opts_bad(opt, val, accepts);
    *out = v;
    return 0;
}

int fs_opts_duration(const char *opt, const char *val, uint64_t min_ms, uint64_t max_ms,
                     const char *accepts, uint64_t *out)
{
    uint64_t v;
    if (!val)
        return 0;
    if (cmn_parse_duration_ms(val, &v) != 0 || v < min_ms || v > max_ms)
        return fs_opts_bad(opt, val, accepts);
    *out = v;
    return 0;
}

static int fs_parse_ttl_opt(const char *opt, const char *val, uint64_t *out)
{
    return fs_opts_duration(opt, val, 0, 365ull * 24 * 3600 * 1000,
                            "a duration like 60, 60s, 500ms, 5m or 1h (0 disables caching)", out);
}

/*
 * connect_timeout, read_timeout (whole milliseconds: "1500ms" for a fraction, as the other
 * durations) and retries. 0 is refused for the timeouts: curl would wait for ever (or
 * minutes, for connecting), which is what a stalled read must never do.
 */
static int fs_parse_s3_timeouts(struct fs_conf *conf)
{
    uint64_t v;
    int rc;

    if ((rc = fs_opts_duration("connect_timeout", conf->connect_timeout_s, 10, 600000,
                               "a duration from 10ms to 10m, like 3s or 500ms",
                               &conf->connect_timeout_ms)) != 0)
        return rc;
    if ((rc = fs_opts_duration("read_timeout", conf->read_timeout_s, 100, 3600000,
                               "a duration from 100ms to 1h, like 10s or 1500ms",
                               &conf->read_timeout_ms)) != 0)
        return rc;
    /* 0 is "none" here (the default): the stall check and the low-speed limit still apply. */
    if ((rc = fs_opts_duration("request_timeout", conf->request_timeout_s, 0, 86400000,
                               "0 (none) or a duration from 100ms to 24h, like 2m",
                               &conf->request_timeout_ms)) != 0)
        return rc;
    if (conf->request_timeout_ms && conf->request_timeout_ms < 100)
        return fs_opts_bad("request_timeout", conf->request_timeout_s,
                           "0 (none) or a duration from 100ms to 24h, like 2m");
    if (conf->retries_s) {
        if (cmn_parse_u64(conf->retries_s, 100, &v) != 0)
            return fs_opts_bad("retries", conf->retries_s, "a number from 0 to 100");
        conf->retries = (unsigned)v;
    }
    return 0;
}

static int fs_parse_mode_opt(const char *opt, const char *val, mode_t *out)
{
    char *end;
    if (!val)
        return 0;
    errno = 0;
    unsigned long v = strtoul(val, &end, 8);
    if (errno || end == val || *end || v > 07777)
        return fs_opts_bad(opt, val, "an octal mode from 0 to 7777, like 0444");
    *out = (mode_t)v;
    return 0;
}

static int fs_parse_id_opt(const char *opt, const char *val, bool is_uid, unsigned *out)
{
    uint64_t v;
    if (!val)
        return 0;
    if (cmn_parse_u64(val, UINT32_MAX - 1, &v) == 0) {
        *out = (unsigned)v;
        return 0;
    }
    if (is_uid) {
        struct passwd *pw = getpwnam(val);
        if (pw) {
            *out = pw->pw_uid;
            return 0;
        }
        return fs_opts_bad(opt, val, "a user name or a numeric uid");
    }
    struct group *gr = getgrnam(val);
    if (gr) {
        *out = gr->gr_gid;
        return 0;
    }
    return fs_opts_bad(opt, val, "a group name or a numeric gid");
}

/* "a, b or c" of a NULL-terminated list (@join: " or "), for an error line; a static
 * buffer, as startup runs on one thread. @return the text. */
static const char *fs_list_words(const char *const *names, const char *join)
{
    static char buf[256];
    size_t n = 0, len = 0;

    while (names[n])
        n++;
    buf[0] = '\0';
    for (size_t i = 0; i < n && len < sizeof(buf); i++) {
        const char *sep = i == 0 ? "" : i + 1 == n ? join : ", ";
        int w = snprintf(buf + len, sizeof(buf) - len, "%s%s", sep, names[i]);
        if (w < 0)
            break;
        len += (size_t)w;
    }
    return buf;
}

static bool fs_in_list(const char *val, const char *const *names)
{
    for (size_t i = 0; names[i]; i++)
        if (strcmp(val, names[i]) == 0)
            return true;
    return false;
}

/*
 * prefetch=yes|no (a size, the older form, sets the window), prefetch_window=SIZE,
 * prefetch_max_request=SIZE (rounded down to whole blocks). conf->prefetch_window ends as the
 * window in bytes, 0 when prefetch is off.
 */
static int fs_parse_prefetch(struct fs_conf *conf)
{
    uint64_t window = FS_DEFAULT_PREFETCH_WINDOW, req = FS_DEFAULT_PREFETCH_MAX_REQUEST;
    bool on = true;
    int bval, rc;

    if (conf->prefetch_s) {
        if (cmn_parse_bool(conf->prefetch_s, &bval) == 0) {
            on = bval;
        } else if (cmn_parse_size(conf->prefetch_s, &window) != 0 || window > (4ull << 30)) {
            return fs_opts_bad("prefetch", conf->prefetch_s,
                               "yes or no (or the window as a size up to 4G, 0 = off)");
        } else {
            on = window != 0;
        }
    }
    if ((rc = fs_opts_size("prefetch_window", conf->prefetch_window_s, conf->block_size, 4ull << 30,
                           "a size from one block to 4G, like 64M", &window)) != 0)
        return rc;
    if ((rc = fs_opts_size("prefetch_max_request", conf->prefetch_max_request_s, conf->block_size,
                           1ull << 30, "a size from one block to 1G, like 8M", &req)) != 0)
        return rc;
    if (req > window && conf->prefetch_max_request_s && conf->prefetch_window_s)
        return fs_opts_bad("prefetch_max_request", conf->prefetch_max_request_s,
                           "a size no larger than prefetch_window");
    req = CMN_MAX(CMN_MIN(req, window) / conf->block_size, 1) * conf->block_size;
    conf->prefetch_window = on ? window : 0;
    conf->prefetch_max_request = req;
    return 0;
}

/*
 * Split SOURCE (BUCKET, BUCKET:/PREFIX, BUCKET:PREFIX or s3://BUCKET/PREFIX) into the
 * bucket and a normalised prefix that is "" or ends in exactly one "/".
 */
static int fs_parse_source(struct fs_conf *conf)
{
    const char *src = conf->source;
    const char *bucket = src, *sep;
    size_t blen;

    if (strncmp(src, "s3://", 5) == 0) {
        bucket = src + 5;
        sep = strchr(bucket, '/');
    } else {
        sep = strchr(bucket, ':');
    }
    blen = sep ? (size_t)(sep - bucket) : strlen(bucket);
    if (blen == 0 || blen > 255 || memchr(bucket, '/', blen))
        return fs_opts_bad("the source", src, "BUCKET, BUCKET:/PREFIX or s3://BUCKET/PREFIX");
    /* No S3 implementation names a bucket with other bytes; they would only garble the URL. */
    for (size_t i = 0; i < blen; i++) {
        char ch = bucket[i];
        if (!(ch >= 'a' && ch <= 'z') && !(ch >= 'A' && ch <= 'Z') && !(ch >= '0' && ch <= '9') &&
            ch != '.' && ch != '-' && ch != '_')
            return fs_opts_bad("the source", src,
                               "a bucket name of letters, digits, '.', '-' and '_'");
    }

    const char *p = sep ? sep + 1 : "";
    while (*p == '/')
        p++;
    size_t plen = strlen(p);
    while (plen > 0 && p[plen - 1] == '/')
        plen--;
    /* A prefix with empty, "." or ".." segments could never be shown as a path. */
    for (size_t i = 0; i < plen;) {
        size_t j = i;
        while (j < plen && p[j] != '/')
            j++;
        size_t seg = j - i;
        if (seg == 0 || (seg == 1 && p[i] == '.') || (seg == 2 && p[i] == '.' && p[i + 1] == '.'))
            return fs_opts_bad("the source", src, "a prefix without empty, '.' or '..' segments");
        i = j + 1;
    }

    conf->bucket = strndup(bucket, blen);
    conf->prefix = malloc(plen + 2);
    if (!conf->bucket || !conf->prefix)
        return -ENOMEM;
    memcpy(conf->prefix, p, plen);
    if (plen)
        conf->prefix[plen++] = '/';
    conf->prefix[plen] = '\0';
    return 0;
}

/*
 * The memory tier when mem_cache_size is not given: a sixteenth of the memory the process
 * may use (RAM, or its cgroup's limit), within 256M..4G, in whole MiB. A fixed 256M wastes
 * a large machine: a working set that fits in RAM then comes from the disk tier at the
 * disk's speed, while peers that cache in files get the kernel's page cache for free.
 */
uint64_t fs_default_mem_cache(uint64_t mem_limit)
{
    uint64_t v = mem_limit / FS_MEM_CACHE_RAM_SHARE;

    v = CMN_MIN(CMN_MAX(v, FS_DEFAULT_MEM_CACHE_MIN), FS_DEFAULT_MEM_CACHE_MAX);
    return v & ~((1ull << 20) - 1);
}

/* Every typed field at its default before the options are read. */
static void fs_opts_defaults(struct fs_conf *conf)
{
    conf->block_size = HC_BLOCK_SIZE_DEFAULT;
    /* Only when not given: it reads /proc and the cgroup tree. */
    if (!conf->mem_cache_size_s)
        conf->mem_cache_size = fs_default_mem_cache(cmn_mem_limit(""));
    conf->disk_cache_size = 0;
    conf->direct_io = true;
    conf->metadata_ttl_ms = FS_DEFAULT_TTL_MS;
    conf->negative_ttl_ms = FS_DEFAULT_NEG_TTL_MS;
    conf->max_threads = FS_DEFAULT_MAX_THREADS;
    conf->connect_timeout_ms = FS_DEFAULT_CONNECT_TIMEOUT_MS;
    conf->read_timeout_ms = FS_DEFAULT_READ_TIMEOUT_MS;
    conf->retries = FS_DEFAULT_RETRIES;
    conf->read_ahead = FS_DEFAULT_READ_AHEAD;
    conf->prefetch_window = FS_DEFAULT_PREFETCH_WINDOW;
    conf->uid = getuid();
    conf->gid = getgid();
    conf->file_mode = 0444;
    conf->dir_mode = 0555;
    conf->log_level = conf->debug ? TLOG_DEBUG : TLOG_NOTICE;
}

/* The cache options: block size, tier sizes, the disk tier's device and engine, policy,
 * compression. @return 0 or -EINVAL (one line printed). */
static int fs_parse_cache_opts(struct fs_conf *conf)
{
    static const char *const comps[] = {"none", "lz4", NULL};
    uint64_t v;
    int bval, rc;

    v = conf->block_size;
    if ((rc = fs_opts_size("block_size", conf->block_size_s, HC_BLOCK_SIZE_MIN, HC_BLOCK_SIZE_MAX,
                           "a power of two from 64K to 16M, like 1M", &v)) != 0)
        return rc;
    if (!CMN_IS_POW2(v))
        return fs_opts_bad("block_size", conf->block_size_s,
                           "a power of two from 64K to 16M, like 1M");
    conf->block_size = (uint32_t)v;

    if ((rc = fs_opts_size("mem_cache_size", conf->mem_cache_size_s, 4ull * conf->block_size,
                           1ull << 50, "a size of at least 4 blocks, like 256M or 2G",
                           &conf->mem_cache_size)) != 0)
        return rc;
    /* The disk tier's floor depends on the block size (three regions); saying it here
     * beats an error from the cache after the file was made. */
    uint64_t disk_min = hc_disk_min_capacity(conf->block_size);
    char disk_accepts[80];
    snprintf(disk_accepts, sizeof(disk_accepts),
             "a size of at least %lluM with block_size=%s, like 10G",
             (unsigned long long)((disk_min + (1ull << 20) - 1) >> 20),
             conf->block_size_s ? conf->block_size_s : "1M");
    if ((rc = fs_opts_size("disk_cache_size", conf->disk_cache_size_s, disk_min, 1ull << 60,
                           disk_accepts, &conf->disk_cache_size)) != 0)
        return rc;
    if (conf->disk_cache && !*conf->disk_cache)
        return fs_opts_bad("disk_cache", conf->disk_cache, "the path of a file or block device");
    if (conf->direct_io_s) {
        if (cmn_parse_bool(conf->direct_io_s, &bval) != 0)
            return fs_opts_bad("direct_io", conf->direct_io_s, FS_BOOL_ACCEPTS);
        conf->direct_io = bval;
    }
    if (conf->io_engine && !fs_in_list(conf->io_engine, ioeng_names()))
        return fs_opts_bad("io_engine", conf->io_engine, fs_list_words(ioeng_names(), " or "));
    if (conf->eviction && !fs_in_list(conf->eviction, hc_policy_names()))
        return fs_opts_bad("eviction", conf->eviction, fs_list_words(hc_policy_names(), " or "));
    if (conf->compression) {
        if (!fs_in_list(conf->compression, comps))
            return fs_opts_bad("compression", conf->compression, "none or lz4");
        conf->compress = strcmp(conf->compression, "lz4") == 0;
    }
    return 0;
}

/* A size option that is 0 or a power of two from 4K to @max (*@out holds the default). */
static int fs_parse_pow2_opt(const char *name, const char *s, uint64_t max, const char *what,
                             uint64_t *out)
{
    int rc = fs_opts_size(name, s, 0, max, what, out);
    if (rc == 0 && *out && (*out < 4096 || !CMN_IS_POW2(*out)))
        return fs_opts_bad(name, s, what);
    return rc;
}

/* Prefetch, read-ahead and the page-cache fill. @return 0 or -EINVAL (one line printed). */
static int fs_parse_read_opts(struct fs_conf *conf)
{
    int rc;

    if ((rc = fs_parse_prefetch(conf)) != 0)
        return rc;
    if ((rc = fs_opts_size("read_ahead", conf->read_ahead_s, 0, 1ull << 30,
                           "a size up to 1G, like 1M (0 keeps the kernel default)",
                           &conf->read_ahead)) != 0)
        return rc;
    int pc = 1;
    conf->page_cache_auto = conf->page_cache_s && strcmp(conf->page_cache_s, "auto") == 0;
    if (conf->page_cache_s && !conf->page_cache_auto &&
        cmn_parse_bool(conf->page_cache_s, &pc) != 0)
        return fs_opts_bad("page_cache", conf->page_cache_s, "yes, no or auto");
    conf->page_cache = pc;
    conf->page_cache_default = !conf->page_cache_s;
    /* At most a quarter block by default: the range a disk hit can read alone (partial). */
    conf->page_cache_fill =
        conf->page_cache ? CMN_MIN(FS_DEFAULT_PAGE_CACHE_FILL, conf->block_size / 4) : 0;
    if ((rc = fs_parse_pow2_opt("page_cache_fill", conf->page_cache_fill_s, conf->block_size,
                                "0 (off) or a power of two from 4K to block_size, like 64K",
                                &conf->page_cache_fill)) != 0)
        return rc;
    if (!conf->page_cache && conf->page_cache_fill) /* no page cache to fill */
        return fs_opts_bad("page_cache_fill", conf->page_cache_fill_s, "0 with page_cache=no");
    /* Pieces of a block for forward-skipping reads (fs/prefetch.c, PIECES): at most half a
     * block, or there is nothing to save. */
    conf->partial_grain = CMN_MIN(FS_DEFAULT_PARTIAL_GRAIN, conf->block_size / 4);
    if ((rc = fs_parse_pow2_opt("partial_grain", conf->partial_grain_s, conf->block_size / 2,
                                "0 (off) or a power of two from 4K to half the block, like 64K",
                                &conf->partial_grain)) != 0)
        return rc;
    conf->dense_prefetch = FS_DEFAULT_DENSE_PREFETCH;
    return fs_opts_size("dense_prefetch", conf->dense_prefetch_s, 0, 1ull << 40,
                        "0 (off) or the largest file to fetch whole, like 1G",
                        &conf->dense_prefetch);
}

/* The write options (-o writable). @return 0 or -EINVAL (one line printed). */
static int fs_parse_write_opts(struct fs_conf *conf)
{
    uint64_t v = FS_DEFAULT_UPLOAD_PARALLEL;
    int rc;

    if (!conf->writable && (conf->allow_overwrite || conf->allow_delete)) {
        fprintf(stderr, "tierfs: -o %s needs -o writable\n",
                conf->allow_overwrite ? "allow_overwrite" : "allow_delete");
        return -EINVAL;
    }
    /* S3: parts of 5 MiB to 5 GiB (the last may be shorter), whole blocks here so each
     * block written goes to the cache whole */
    conf->part_size = CMN_MAX(FS_DEFAULT_PART_SIZE, (uint64_t)conf->block_size);
    if ((rc = fs_opts_size("part_size", conf->part_size_s, 5ull << 20, 5ull << 30,
                           "a size from 5M to 5G, like 8M", &conf->part_size)) != 0)
        return rc;
    if (conf->part_size % conf->block_size)
        return fs_opts_bad("part_size", conf->part_size_s, "a multiple of block_size, like 8M");
    if (conf->upload_parallel_s && (cmn_parse_u64(conf->upload_parallel_s, 64, &v) != 0 || v == 0))
        return fs_opts_bad("upload_parallel", conf->upload_parallel_s, "a number from 1 to 64");
    conf->upload_parallel = (unsigned)v;
    conf->upload_memory = CMN_MAX(FS_DEFAULT_UPLOAD_MEMORY, 2 * conf->part_size);
    return fs_opts_size("upload_memory", conf->upload_memory_s, 2 * conf->part_size, 1ull << 40,
                        "a size of at least two parts, like 64M", &conf->upload_memory);
}

/* Owner and modes of what the mount shows. @return 0 or -EINVAL (one line printed). */
static int fs_parse_attr_opts(struct fs_conf *conf)
{
    int rc;

    unsigned id;
    id = conf->uid;
    if ((rc = fs_parse_id_opt("uid", conf->uid_s, true, &id)) != 0)
        return rc;
    conf->uid = id;
    id = conf->gid;
    if ((rc = fs_parse_id_opt("gid", conf->gid_s, false, &id)) != 0)
        return rc;
    conf->gid = id;
    if (conf->writable) { /* the owner may write (the kernel checks, default_permissions) */
        conf->file_mode = 0644;
        conf->dir_mode = 0755;
    }
    if ((rc = fs_parse_mode_opt("file_mode", conf->file_mode_s, &conf->file_mode)) != 0)
        return rc;
    if ((rc = fs_parse_mode_opt("dir_mode", conf->dir_mode_s, &conf->dir_mode)) != 0)
        return rc;

    return 0;
}

int fs_opts_validate(struct fs_conf *conf)
{
    uint64_t v;
    int rc;

    if (!conf->source || !conf->mountpoint) {
        fprintf(stderr,
                "tierfs: missing %s (usage: tierfs BUCKET[:/PREFIX] MOUNTPOINT [-o options]; see "
                "--help)\n",
                conf->source ? "MOUNTPOINT" : "BUCKET and MOUNTPOINT");
        return -EINVAL;
    }
    if ((rc = fs_parse_source(conf)) != 0)
        return rc;
    fs_opts_defaults(conf);
    if ((rc = fs_parse_cache_opts(conf)) != 0 || (rc = fs_parse_read_opts(conf)) != 0)
        return rc;
    if ((rc = fs_parse_ttl_opt("metadata_ttl", conf->metadata_ttl_s, &conf->metadata_ttl_ms)) != 0)
        return rc;
    if ((rc = fs_parse_ttl_opt("negative_ttl", conf->negative_ttl_s, &conf->negative_ttl_ms)) != 0)
        return rc;

    if (conf->max_connections_s) {
        if (cmn_parse_u64(conf->max_connections_s, 4096, &v) != 0 || v == 0)
            return fs_opts_bad("max_connections", conf->max_connections_s,
                               "a number from 1 to 4096");
        conf->max_connections = (unsigned)v;
    }
    if ((rc = fs_parse_s3_timeouts(conf)) != 0 || (rc = fs_opts_parse_fleet(conf)) != 0)
        return rc;
    if (conf->max_threads_s) {
        if (cmn_parse_u64(conf->max_threads_s, 1024, &v) != 0 || v == 0)
            return fs_opts_bad("max_threads", conf->max_threads_s, "a number from 1 to 1024");
        conf->max_threads = (unsigned)v;
    }

    if ((rc = fs_parse_attr_opts(conf)) != 0 || (rc = fs_parse_write_opts(conf)) != 0)
        return rc;
    if (conf->log_level_s) {
        int lvl = tlog_parse_level(conf->log_level_s);
        if (lvl < 0)
            return fs_opts_bad("log_level", conf->log_level_s,
                               "err, warning, notice, info or debug");
        conf->log_level = lvl;
    }
    if (conf->metrics &&
        cmn_parse_hostport(conf->metrics, &conf->metrics_addr, &conf->metrics_addr_len) != 0)
        return fs_opts_bad("metrics", conf->metrics,
                           "HOST:PORT with a numeric host, like 127.0.0.1:9464 or [::1]:9464");
    if (!!conf->access_key != !!conf->secret_key)
        return fs_opts_bad(conf->access_key ? "secret_key" : "access_key", "(missing)",
                           "access_key and secret_key together");
    if (conf->no_sign_request && conf->access_key)
        return fs_opts_bad("no_sign_request", "1", "no access_key/secret_key with it");
    if (conf->endpoint && strncmp(conf->endpoint, "http://", 7) != 0 &&
        strncmp(conf->endpoint, "https://", 8) != 0)
        return fs_opts_bad("endpoint", conf->endpoint, "a URL starting with http:// or https://");
    return 0;
}

void fs_opts_free(struct fs_conf *conf)
{
    char **strs[] = {
        &conf->endpoint,
        &conf->region,
        &conf->profile,
        &conf->ca_bundle,
        &conf->access_key,
        &conf->secret_key,
        &conf->block_size_s,
        &conf->mem_cache_size_s,
        &conf->disk_cache,
        &conf->disk_cache_size_s,
        &conf->direct_io_s,
        &conf->io_engine,
        &conf->eviction,
        &conf->compression,
        &conf->metadata_ttl_s,
        &conf->negative_ttl_s,
        &conf->max_connections_s,
        &conf->max_threads_s,
        &conf->read_ahead_s,
        &conf->prefetch_s,
        &conf->connect_timeout_s,
        &conf->read_timeout_s,
        &conf->request_timeout_s,
        &conf->retries_s,
        &conf->prefetch_window_s,
        &conf->prefetch_max_request_s,
        &conf->page_cache_s,
        &conf->page_cache_fill_s,
        &conf->partial_grain_s,
        &conf->dense_prefetch_s,
        &conf->uid_s,
        &conf->gid_s,
        &conf->file_mode_s,
        &conf->dir_mode_s,
        &conf->log_level_s,
        &conf->metrics,
        &conf->fleet,
        &conf->fleet_secret,
        &conf->fleet_timeout_s,
        &conf->fleet_lease_s,
        &conf->fleet_retry_s,
        &conf->fleet_piece_size_s,
        &conf->fleet_store_queue_s,
        &conf->part_size_s,
        &conf->upload_parallel_s,
        &conf->upload_memory_s,
        &conf->source,
        &conf->mountpoint,
        &conf->bucket,
        &conf->prefix,
    };
    for (size_t i = 0; i < CMN_ARRAY_SIZE(strs); i++) {
        free(*strs[i]);
        *strs[i] = NULL;
    }
    if (conf->fleet_key)
        OPENSSL_cleanse(conf->fleet_key, conf->fleet_key_len);
    free(conf->fleet_key);
    conf->fleet_key = NULL;
    conf->fleet_servers = NULL;
}
