/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cache_warm.c: `tierfs-cache warm`, prefill a tierfs disk cache from S3 without a mount.
 *
 * DESIGN
 * The options are the daemon's own (fs/opts.c through tierfs_fsutil), so `-o` takes the
 * very option string of the mount, and the cache identity, block keys and S3 client come
 * from the same code the daemon runs (fs/blockkey.c, fs/store.c): a block warmed here is a
 * block the mount finds. The objects are listed (the whole prefix, flat) or HEADed (a list
 * of paths from a file or stdin), cut into blocks, and J worker threads GET blocks into
 * the disk tier with hc_insert(HC_INSERT_DISK_ONLY). Inserts are serialized and checked
 * against the admission-drop counter, so a block the disk tier dropped (write queue full)
 * is inserted again rather than lost. Blocks the cache already holds are skipped.
 * Capacity: before each block the planned size on the device (entry header, key, value
 * rounded to the slot, summary record) is added up; when it would pass what the regions
 * hold without the reclaimer evicting (all regions but the ones it keeps free and the
 * one being filled), warm stops and says so. Evictions seen anyway also stop it.
 * The cache is opened with hc_create, which takes the daemon's lock: a cache a running
 * tierfs holds is refused (warm through the mount by reading the files instead).
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "fs/blockkey.h"
#include "fs/fsutil.h"
#include "hybridcache/hc_offline.h"
#include "hybridcache/hybridcache.h"
#include "ioengine/ioengine.h"
#include "objstore/objstore.h"

#define WARM_PROG "tierfs-cache warm"
#define WARM_JOBS_DEFAULT 16u

enum { WARM_EXIT_OK = 0, WARM_EXIT_ERROR = 2, WARM_EXIT_FULL = 3 };

struct warm_obj {
    char *key;
    char etag[OBJSTORE_ETAG_MAX];
    uint64_t size;
};

struct warm {
    FILE *out, *err;
    struct fs_conf conf;
    struct objstore *os;
    struct hc_cache *cache;
    char *identity;
    struct warm_obj *objs;
    size_t nobjs, capobjs;
    uint64_t total_blocks, total_bytes;
    unsigned jobs;
    bool progress_tty;

    pthread_mutex_t lock;     /* protects the fields below and serializes inserts */
    size_t next_obj;          /* next block to claim: object index ... */
    uint64_t next_blk;        /* ... and block in it */
    uint64_t planned, budget; /* device bytes of blocks inserted so far, and the limit */
    uint64_t done_blocks, done_bytes, skipped, failed;
    uint64_t drops_seen, evictions0;
    bool full, stop;
    char first_error[512];
    char last_log[512];
};

static void warm_log_sink(int level, const char *msg, void *arg)
{
    struct warm *w = arg;
    if (level <= TLOG_WARNING)
        snprintf(w->last_log, sizeof(w->last_log), "%s", msg);
}

static void warm_fail(struct warm *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warm_fail(struct warm *w, const char *fmt, ...)
{
    va_list ap;
    fprintf(w->err, "%s: ", WARM_PROG);
    va_start(ap, fmt);
    vfprintf(w->err, fmt, ap);
    va_end(ap);
    fputc('\n', w->err);
}

static int warm_add(struct warm *w, const char *key, const char *etag, uint64_t size)
{
    if (size == 0)
        return 0; /* nothing to cache (and directory markers) */
    if (w->nobjs == w->capobjs) {
        size_t n = w->capobjs ? 2 * w->capobjs : 64;
        struct warm_obj *o = realloc(w->objs, n * sizeof(*o));
        if (!o)
            return -ENOMEM;
        w->objs = o;
        w->capobjs = n;
    }
    struct warm_obj *o = &w->objs[w->nobjs];
    o->key = strdup(key);
    if (!o->key)
        return -ENOMEM;
    snprintf(o->etag, sizeof(o->etag), "%s", etag);
    o->size = size;
    w->nobjs++;
    w->total_blocks += (size + w->conf.block_size - 1) / w->conf.block_size;
    w->total_bytes += size;
    return 0;
}

/* Every object under the prefix (flat listing, all pages). @return 0 or -errno. */
static int warm_list(struct warm *w)
{
    char errmsg[OBJSTORE_ERRMSG_MAX] = "";
    char *token = NULL;
    int rc;

    do {
        struct objstore_list_result res;
        struct objstore_list_args la = {.prefix = w->conf.prefix, .continuation_token = token};
        memset(&res, 0, sizeof(res));
        rc = objstore_list(w->os, &la, &res, errmsg, sizeof(errmsg));
        free(token);
        token = NULL;
        if (rc < 0) {
            warm_fail(w, "cannot list %s: %s", w->conf.source,
                      errmsg[0] ? errmsg : objstore_strerror(rc));
            return rc;
        }
        for (size_t i = 0; i < res.n_entries && rc == 0; i++)
            rc = warm_add(w, res.entries[i].key, res.entries[i].etag, res.entries[i].size);
        if (rc == 0 && res.truncated && res.next_token && !(token = strdup(res.next_token)))
            rc = -ENOMEM;
        objstore_list_result_free(&res);
    } while (rc == 0 && token);
    return rc;
}

/* The paths listed in @file ("-": stdin), one per line, relative to the prefix. */
static int warm_read_keys(struct warm *w, const char *file)
{
    FILE *f = strcmp(file, "-") == 0 ? stdin : fopen(file, "r");
    char *line = NULL, *key = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = 0;

    if (!f) {
        warm_fail(w, "--keys %s: %s", file, strerror(errno));
        return -errno;
    }
    while (rc == 0 && (n = getline(&line, &cap, f)) >= 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        const char *p = line;
        while (*p == '/')
            p++;
        if (!*p || *p == '#')
            continue;
        struct objstore_object_info info;
        char errmsg[OBJSTORE_ERRMSG_MAX] = "";
        if (asprintf(&key, "%s%s", w->conf.prefix, p) < 0) {
            rc = -ENOMEM;
            break;
        }
        rc = objstore_head(w->os, key, &info, errmsg, sizeof(errmsg));
        if (rc < 0)
            warm_fail(w, "%s: %s", key, errmsg[0] ? errmsg : objstore_strerror(rc));
        else
            rc = warm_add(w, key, info.etag, info.size);
        free(key);
    }
    free(line);
    if (f != stdin)
        fclose(f);
    return rc;
}

/*
 * How many more device bytes the disk tier takes without evicting: the free regions but
 * the ones the reclaimer keeps free, less each region's footer. Read from the cache
 * hc_create just formatted or recovered.
 */
static int warm_budget(struct warm *w)
{
    struct dev_conf dc = {.path = w->conf.disk_cache, .direct_io = false};
    struct hc_disk_info in;
    struct hc_stats st;
    struct dev *d = NULL;
    int rc;

    if ((rc = dev_open(&dc, &d)) < 0)
        return rc;
    rc = hc_disk_inspect(d, "psync", &in);
    dev_close(d);
    if (rc < 0)
        return rc;
    if (in.kind != HC_DISK_KIND_CACHE)
        return -EMEDIUMTYPE;
    hc_get_stats(w->cache, &st);
    w->budget = in.fill_budget;
    w->evictions0 = st.disk_evictions;
    w->drops_seen = st.admission_drops;
    return 0;
}

/* Insert one fetched block; retried while the disk tier drops it (write queue full). */
static int warm_insert(struct warm *w, const void *key, size_t klen, const void *buf, size_t len)
{
    struct hc_stats st;
    int rc;

    pthread_mutex_lock(&w->lock);
    for (;;) {
        rc = hc_insert(w->cache, key, klen, buf, len, HC_INSERT_DISK_ONLY);
        hc_get_stats(w->cache, &st);
        if (rc < 0 || st.admission_drops == w->drops_seen)
            break;
        w->drops_seen = st.admission_drops; /* dropped: let the writer drain, then again */
        pthread_mutex_unlock(&w->lock);
        usleep(2000);
        pthread_mutex_lock(&w->lock);
    }
    if (rc == 0 && st.disk_evictions > w->evictions0 && !w->full) {
        w->full = true; /* the estimate was short: stop before evicting more */
        w->stop = true;
    }
    pthread_mutex_unlock(&w->lock);
    return rc;
}

static void *warm_worker(void *arg)
{
    struct warm *w = arg;
    uint32_t bs = w->conf.block_size;
    void *buf = malloc(bs);
    uint8_t key[HC_KEY_MAX];

    if (!buf) {
        pthread_mutex_lock(&w->lock);
        w->stop = true;
        snprintf(w->first_error, sizeof(w->first_error), "out of memory");
        pthread_mutex_unlock(&w->lock);
        return NULL;
    }
    for (;;) {
        pthread_mutex_lock(&w->lock);
        if (w->stop || w->next_obj >= w->nobjs) {
            pthread_mutex_unlock(&w->lock);
            break;
        }
        const struct warm_obj *o = &w->objs[w->next_obj];
        uint64_t blk = w->next_blk;
        uint64_t off = blk * bs;
        size_t len = (size_t)CMN_MIN((uint64_t)bs, o->size - off);
        size_t klen = fs_blockkey_build(w->conf.bucket, bs, o->key, o->etag, blk, key, sizeof(key));
        if (++w->next_blk * bs >= o->size) {
            w->next_obj++;
            w->next_blk = 0;
        }
        uint64_t cost = hc_disk_block_cost(bs, klen, len);
        if (klen && w->planned + cost > w->budget) {
            w->full = true;
            w->stop = true;
            pthread_mutex_unlock(&w->lock);
            break;
        }
        w->planned += cost;
        pthread_mutex_unlock(&w->lock);

        struct hc_entry *e = NULL;
        int rc = klen ? hc_fetch_sync(w->cache, key, klen, HC_FETCH_NO_ORIGIN, NULL, NULL, &e, NULL)
                      : -ENAMETOOLONG;
        if (rc == 0) {
            hc_entry_put(e);
            pthread_mutex_lock(&w->lock);
            w->planned -= cost;
            w->skipped++;
            pthread_mutex_unlock(&w->lock);
            continue;
        }
        char errmsg[OBJSTORE_ERRMSG_MAX] = "";
        ssize_t got = -ENAMETOOLONG;
        if (klen)
            got = objstore_get(w->os, o->key, off, len, o->etag[0] ? o->etag : NULL, buf, bs, 0,
                               NULL, errmsg, sizeof(errmsg));
        if (got >= 0 && (size_t)got != len)
            got = -EIO;
        if (got >= 0)
            rc = warm_insert(w, key, klen, buf, len);
        pthread_mutex_lock(&w->lock);
        if (got < 0 || rc < 0) {
            w->failed++;
            if (!w->first_error[0])
                snprintf(w->first_error, sizeof(w->first_error), "%s block %llu: %s", o->key,
                         (unsigned long long)blk,
                         errmsg[0] ? errmsg : strerror(got < 0 ? (int)-got : -rc));
        } else {
            w->done_blocks++;
            w->done_bytes += len;
        }
        pthread_mutex_unlock(&w->lock);
    }
    free(buf);
    return NULL;
}

static void warm_progress(struct warm *w, uint64_t t0, bool final)
{
    pthread_mutex_lock(&w->lock);
    uint64_t n = w->done_blocks + w->skipped + w->failed, bytes = w->done_bytes;
    pthread_mutex_unlock(&w->lock);
    double secs = (double)(cmn_now_ns() - t0) / 1e9;
    double pct = w->total_blocks ? 100.0 * (double)n / (double)w->total_blocks : 100.0;
    char a[32], r[32];
    cmn_fmt_size(bytes, a, sizeof(a));
    cmn_fmt_size(secs > 0 ? (uint64_t)((double)bytes / secs) : 0, r, sizeof(r));
    if (w->progress_tty) {
        char bar[31];
        int fill = (int)(pct * 30 / 100);
        for (int i = 0; i < 30; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[30] = '\0';
        fprintf(w->err, "\r[%s] %5.1f%% %llu/%llu blocks, %s, %s/s ", bar, pct,
                (unsigned long long)n, (unsigned long long)w->total_blocks, a, r);
        if (final)
            fputc('\n', w->err);
    } else {
        fprintf(w->err, "%s: %.1f%% (%llu of %llu blocks, %s fetched, %s/s)\n", WARM_PROG, pct,
                (unsigned long long)n, (unsigned long long)w->total_blocks, a, r);
    }
    fflush(w->err);
}

static int warm_run(struct warm *w)
{
    pthread_t th[256];
    unsigned n = CMN_MIN(w->jobs, (unsigned)CMN_ARRAY_SIZE(th)), started = 0;
    uint64_t t0 = cmn_now_ns(), last = 0;

    for (unsigned i = 0; i < n; i++)
        if (pthread_create(&th[started], NULL, warm_worker, w) == 0)
            started++;
    if (!started) {
        warm_fail(w, "cannot start worker threads");
        return -EAGAIN;
    }
    for (;;) {
        pthread_mutex_lock(&w->lock);
        bool over = w->stop || w->done_blocks + w->skipped + w->failed >= w->total_blocks;
        pthread_mutex_unlock(&w->lock);
        if (over)
            break;
        usleep(100000);
        uint64_t now = cmn_now_ns();
        if (now - last >= (w->progress_tty ? 200000000ull : 2000000000ull)) {
            warm_progress(w, t0, false);
            last = now;
        }
    }
    for (unsigned i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    warm_progress(w, t0, true);
    return 0;
}

static const char warm_help[] =
    "Usage: tierfs-cache warm [OPTIONS] PATH SOURCE [-o MOUNT_OPTIONS]\n"
    "Fetch the objects under SOURCE (BUCKET[:/PREFIX] or s3://BUCKET/PREFIX, as given to\n"
    "tierfs) into the disk cache PATH, block by block, so that a mount with the same\n"
    "options reads them with no GET. -o takes the mount's own options (endpoint, region,\n"
    "path_style, credentials, block_size, disk_cache_size, compression, ...); PATH is the\n"
    "disk_cache. Needs the cache to itself: a cache a running tierfs holds is refused.\n"
    "  --keys FILE      only these paths (relative to SOURCE's prefix, one per line;\n"
    "                   '-' reads stdin) instead of every object under the prefix\n"
    "  -j, --jobs N     parallel GETs (default 16)\n"
    "  -o OPTIONS       tierfs mount options, comma-separated (may repeat)\n"
    "  -h, --help       this help\n"
    "Stops with exit status 3 when the next block would not fit without evicting; 2 on\n"
    "errors (blocks that failed are named).\n";

/* Parse, then hand the daemon's option parser a tierfs command line. */
static int warm_parse(struct warm *w, int argc, char **argv, const char **keys,
                      struct fuse_args *fa, const char **path)
{
    const char *source = NULL;

    if (fuse_opt_add_arg(fa, "tierfs-cache") != 0)
        return -ENOMEM;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(warm_help, w->out);
            return 1;
        } else if (!strcmp(a, "--keys") && i + 1 < argc) {
            *keys = argv[++i];
        } else if ((!strcmp(a, "-j") || !strcmp(a, "--jobs")) && i + 1 < argc) {
            uint64_t v;
            if (cmn_parse_u64(argv[++i], 256, &v) != 0 || v == 0) {
                warm_fail(w, "--jobs needs a number from 1 to 256");
                return -EINVAL;
            }
            w->jobs = (unsigned)v;
        } else if (!strcmp(a, "-o") && i + 1 < argc) {
            if (fuse_opt_add_arg(fa, "-o") != 0 || fuse_opt_add_arg(fa, argv[++i]) != 0)
                return -ENOMEM;
        } else if (a[0] == '-' && a[1]) {
            warm_fail(w, "unknown option '%s' (see 'tierfs-cache warm --help')", a);
            return -EINVAL;
        } else if (!*path) {
            *path = a;
        } else if (!source) {
            source = a;
        } else {
            warm_fail(w, "unexpected argument '%s' (PATH SOURCE only)", a);
            return -EINVAL;
        }
    }
    if (!*path || !source) {
        warm_fail(w, "missing %s (usage: tierfs-cache warm PATH SOURCE [-o OPTIONS])",
                  *path ? "SOURCE" : "PATH and SOURCE");
        return -EINVAL;
    }
    /* SOURCE and a stand-in mountpoint: validation wants both; nothing is mounted. */
    if (fuse_opt_add_arg(fa, source) != 0 || fuse_opt_add_arg(fa, "/") != 0)
        return -ENOMEM;
    return 0;
}

/* Open the cache as the daemon does (fs/main.c fs_start_cache). @return 0 / -errno. */
static int warm_open_cache(struct warm *w, const char *path)
{
    struct hc_conf hc;
    int rc;

    w->identity = fs_cache_identity(w->conf.endpoint, w->conf.bucket);
    if (!w->identity)
        return -ENOMEM;
    fs_cache_conf(&w->conf, w->identity, &hc); /* the daemon's mapping, not a copy of it */
    rc = hc_create(&hc, &w->cache);
    if (rc == -EBUSY)
        warm_fail(w,
                  "%s: in use by a running tierfs (it holds the cache lock); unmount it "
                  "first, or warm through the mount by reading the files",
                  path);
    else if (rc == -EEXIST)
        warm_fail(w,
                  "%s: it holds data that is not a tierfs cache (-o disk_cache_overwrite "
                  "formats it)",
                  path);
    else if (rc < 0)
        warm_fail(w, "%s: cannot open the cache: %s", path,
                  w->last_log[0] ? w->last_log : strerror(-rc));
    return rc;
}

int ctool_warm_main(int argc, char **argv, FILE *out, FILE *err)
{
    struct warm w = {.out = out, .err = err, .jobs = WARM_JOBS_DEFAULT};
    struct fuse_args fa = FUSE_ARGS_INIT(0, NULL);
    const char *keys = NULL, *path = NULL;
    int saved_level = tlog_get_level();
    int ret = WARM_EXIT_ERROR, rc;
    char a[32], b[32];

    pthread_mutex_init(&w.lock, NULL);
    rc = warm_parse(&w, argc, argv, &keys, &fa, &path);
    if (rc != 0) {
        ret = rc > 0 ? WARM_EXIT_OK : WARM_EXIT_ERROR;
        goto out_args;
    }
    /* The daemon's parser and checks: a bad option is named exactly as tierfs names it. */
    if (fs_opts_parse(&fa, &w.conf) != 0 || fs_opts_validate(&w.conf) != 0)
        goto out_conf;
    if (w.conf.disk_cache && strcmp(w.conf.disk_cache, path) != 0) {
        warm_fail(&w, "-o disk_cache=%s differs from PATH %s", w.conf.disk_cache, path);
        goto out_conf;
    }
    free(w.conf.disk_cache);
    w.conf.disk_cache = strdup(path);
    if (!w.conf.disk_cache)
        goto out_conf;
    w.progress_tty = isatty(fileno(err));

    tlog_set_sink(warm_log_sink, &w);
    tlog_set_level(TLOG_WARNING);
    bool creds_failed;
    if ((rc = fs_store_create(&w.conf, &w.os, &creds_failed)) < 0) {
        warm_fail(&w, "%s for %s: %s", creds_failed ? "no credentials" : "cannot set up S3",
                  w.conf.source, w.last_log[0] ? w.last_log : strerror(-rc));
        goto out_log;
    }
    if (warm_open_cache(&w, path) < 0)
        goto out_store;
    if ((rc = warm_budget(&w)) < 0) {
        warm_fail(&w, "%s: cannot read the cache layout: %s", path, strerror(-rc));
        goto out_cache;
    }
    rc = keys ? warm_read_keys(&w, keys) : warm_list(&w);
    if (rc < 0)
        goto out_cache;
    fprintf(out, "%s: %zu objects, %llu blocks (%s) to warm into %s (%s free)\n", WARM_PROG,
            w.nobjs, (unsigned long long)w.total_blocks, cmn_fmt_size(w.total_bytes, a, sizeof(a)),
            path, cmn_fmt_size(w.budget, b, sizeof(b)));
    fflush(out);
    if (warm_run(&w) < 0)
        goto out_cache;
    if ((rc = hc_flush(w.cache)) < 0) {
        warm_fail(&w, "%s: flush failed: %s", path, strerror(-rc));
        goto out_cache;
    }
    struct hc_stats st;
    char c[32];
    hc_get_stats(w.cache, &st);
    fprintf(out,
            "%s: warmed %llu blocks (%s), %llu already cached, %llu failed; cache holds %s of %s\n",
            WARM_PROG, (unsigned long long)w.done_blocks, cmn_fmt_size(w.done_bytes, a, sizeof(a)),
            (unsigned long long)w.skipped, (unsigned long long)w.failed,
            cmn_fmt_size(st.disk_used, b, sizeof(b)), cmn_fmt_size(st.disk_capacity, c, sizeof(c)));
    if (w.failed) {
        warm_fail(&w, "%llu blocks failed; the first: %s", (unsigned long long)w.failed,
                  w.first_error);
        ret = WARM_EXIT_ERROR;
    } else if (w.full) {
        warm_fail(&w,
                  "stopped: the next block would not fit in %s without evicting warmed "
                  "blocks (%llu of %llu blocks warmed or cached); use a larger "
                  "disk_cache_size or fewer keys",
                  path, (unsigned long long)(w.done_blocks + w.skipped),
                  (unsigned long long)w.total_blocks);
        ret = WARM_EXIT_FULL;
    } else {
        ret = WARM_EXIT_OK;
    }
out_cache:
    hc_destroy(w.cache); /* flushes: the next mount recovers what was warmed */
out_store:
    objstore_destroy(w.os);
out_log:
    tlog_set_sink(NULL, NULL);
    tlog_set_level(saved_level);
out_conf:
    fs_opts_free(&w.conf);
out_args:
    for (size_t i = 0; i < w.nobjs; i++)
        free(w.objs[i].key);
    free(w.objs);
    free(w.identity);
    fuse_opt_free_args(&fa);
    pthread_mutex_destroy(&w.lock);
    return ret;
}
