/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tierfs_stat.c: tierfs-stat, a human summary of a running tierfs mount.
 *
 * It reads getxattr(MOUNTPOINT, "user.tierfs.stats"): the daemon answers with the JSON of
 * fs_metrics_json() (fs/metrics.c), so it needs no -o metrics, no network and no run
 * file, and it finds exactly the daemon serving that mountpoint. The JSON is flat (one
 * "name": value per line, numbers or strings), so a small scanner reads it.
 * Exit status: 0 ok, 1 not a tierfs mount (or unreachable), 2 bad arguments.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"

#define STAT_PROG "tierfs-stat"
#define STAT_XATTR "user.tierfs.stats" /* fs/metrics.h FS_STATS_XATTR */
#define STAT_BUF_MAX (1u << 20)

/* The stats of one sample; numbers by name. */
struct stat_snap {
    char *json;
    uint64_t t_ns;
};

static uint64_t stat_u(const struct stat_snap *s, const char *name)
{
    char pat[80];
    snprintf(pat, sizeof(pat), "\"%s\": ", name);
    const char *p = strstr(s->json, pat);
    return p ? strtoull(p + strlen(pat), NULL, 10) : 0;
}

/* A string value into @buf (escapes are left as they are: only for display). */
static const char *stat_s(const struct stat_snap *s, const char *name, char *buf, size_t cap)
{
    char pat[80];
    snprintf(pat, sizeof(pat), "\"%s\": \"", name);
    const char *p = strstr(s->json, pat);
    size_t n = 0;
    buf[0] = '\0';
    if (!p)
        return buf;
    for (p += strlen(pat); *p && *p != '"' && n + 1 < cap; p++) {
        if (*p == '\\' && p[1])
            p++;
        buf[n++] = *p;
    }
    buf[n] = '\0';
    return buf;
}

/* Read the stats xattr of @mnt. @return 0, or -errno after one line on stderr. */
static int stat_read(const char *mnt, struct stat_snap *s)
{
    size_t cap = 64u << 10;

    for (;;) {
        char *buf = malloc(cap + 1);
        if (!buf)
            return -ENOMEM;
        ssize_t n = getxattr(mnt, STAT_XATTR, buf, cap);
        if (n >= 0) {
            buf[n] = '\0';
            free(s->json);
            s->json = buf;
            s->t_ns = cmn_now_ns();
            return 0;
        }
        int e = errno;
        free(buf);
        if (e == ERANGE && cap < STAT_BUF_MAX) {
            cap *= 4;
            continue;
        }
        if (e == ENODATA || e == ENOTSUP)
            fprintf(stderr, "%s: %s: not a tierfs mount (no %s attribute)\n", STAT_PROG, mnt,
                    STAT_XATTR);
        else
            fprintf(stderr, "%s: %s: %s\n", STAT_PROG, mnt, strerror(e));
        return -e;
    }
}

static double stat_pct(uint64_t a, uint64_t b)
{
    return a + b ? 100.0 * (double)a / (double)(a + b) : 0.0;
}

static void stat_print(FILE *f, const struct stat_snap *s, const struct stat_snap *prev)
{
    char a[32], b[32], c[32], src[512], mnt[512], disk[512], eng[16], kind[16], maddr[128],
        fleet[512];
    uint64_t up = (uint64_t)time(NULL) - CMN_MIN((uint64_t)time(NULL), stat_u(s, "start_time"));
    uint64_t reads = stat_u(s, "fuse_reads");

    fprintf(f,
            "%s on %s (pid %" PRIu64 ", up %" PRIu64 "h%02" PRIu64 "m%02" PRIu64
            "s, block %s, log level %" PRIu64 ")\n",
            stat_s(s, "source", src, sizeof(src)), stat_s(s, "mountpoint", mnt, sizeof(mnt)),
            stat_u(s, "pid"), up / 3600, up / 60 % 60, up % 60,
            cmn_fmt_size(stat_u(s, "block_size"), a, sizeof(a)), stat_u(s, "log_level"));
    fprintf(f, "reads         %" PRIu64 " (%s), %" PRIu64 " errors, mean %.3f ms\n", reads,
            cmn_fmt_size(stat_u(s, "fuse_read_bytes"), a, sizeof(a)), stat_u(s, "fuse_read_errors"),
            reads ? (double)stat_u(s, "fuse_read_ns_sum") / (double)reads / 1e6 : 0.0);
    fprintf(f,
            "memory tier   %" PRIu64 " hits, %" PRIu64 " misses (%.1f%% hits), %s of %s used, "
            "%s pooled\n",
            stat_u(s, "mem_hits"), stat_u(s, "mem_misses"),
            stat_pct(stat_u(s, "mem_hits"), stat_u(s, "mem_misses")),
            cmn_fmt_size(stat_u(s, "mem_used"), a, sizeof(a)),
            cmn_fmt_size(stat_u(s, "mem_limit"), b, sizeof(b)),
            cmn_fmt_size(stat_u(s, "pool_bytes"), c, sizeof(c)));
    if (stat_u(s, "disk_capacity"))
        fprintf(f,
                "disk tier     %" PRIu64 " hits (%" PRIu64 " partial), %" PRIu64 " misses "
                "(%.1f%% hits), %s of %s used, %" PRIu64 " blocks (%s, %s, %s)\n",
                stat_u(s, "disk_hits"), stat_u(s, "disk_partial_hits"), stat_u(s, "disk_misses"),
                stat_pct(stat_u(s, "disk_hits"), stat_u(s, "disk_misses")),
                cmn_fmt_size(stat_u(s, "disk_used"), a, sizeof(a)),
                cmn_fmt_size(stat_u(s, "disk_capacity"), b, sizeof(b)), stat_u(s, "disk_entries"),
                stat_s(s, "disk_cache", disk, sizeof(disk)),
                stat_s(s, "disk_device", kind, sizeof(kind)),
                stat_s(s, "io_engine", eng, sizeof(eng)));
    else
        fprintf(f, "disk tier     none (memory only)\n");
    if (stat_s(s, "fleet", fleet, sizeof(fleet))[0])
        fprintf(f,
                "fleet tier    %" PRIu64 " hits, %" PRIu64 " misses (%.1f%% hits), %" PRIu64
                " bad values, %" PRIu64 " lease waits (%" PRIu64 " timed out, %" PRIu64
                " extended), %" PRIu64 " stores (%" PRIu64 " dropped), %" PRIu64 " errors (%s)\n",
                stat_u(s, "fleet_hits"), stat_u(s, "fleet_misses"),
                stat_pct(stat_u(s, "fleet_hits"), stat_u(s, "fleet_misses")),
                stat_u(s, "fleet_bad_values"), stat_u(s, "fleet_lease_waits"),
                stat_u(s, "fleet_lease_timeouts"), stat_u(s, "fleet_lease_extends"),
                stat_u(s, "fleet_stores"), stat_u(s, "fleet_store_drops"),
                stat_u(s, "fleet_errors"), fleet);
    fprintf(f,
            "S3            %" PRIu64 " requests (%" PRIu64 " GET), %s received, %" PRIu64
            " errors, %" PRIu64 " not found, %" PRIu64 " retries, %" PRIu64 " in flight\n",
            stat_u(s, "s3_requests"), stat_u(s, "s3_gets"),
            cmn_fmt_size(stat_u(s, "s3_bytes"), a, sizeof(a)), stat_u(s, "s3_errors"),
            stat_u(s, "s3_not_found"), stat_u(s, "s3_retries"), stat_u(s, "s3_inflight"));
    fprintf(f,
            "cache         %" PRIu64 " single-flight merges, %" PRIu64 " admission drops (%" PRIu64
            " disk writes waited), %" PRIu64 " checksum failures\n",
            stat_u(s, "singleflight_merges"), stat_u(s, "admission_drops"),
            stat_u(s, "disk_deferred"), stat_u(s, "checksum_failures"));
    fprintf(f,
            "prefetch      %" PRIu64 " issued, %" PRIu64 " used, %" PRIu64 " wasted (%s), %" PRIu64
            " forward skips\n",
            stat_u(s, "prefetch_issued"), stat_u(s, "prefetch_used"), stat_u(s, "prefetch_wasted"),
            cmn_fmt_size(stat_u(s, "prefetch_wasted_bytes"), a, sizeof(a)),
            stat_u(s, "read_skips"));
    fprintf(f,
            "pieces        %" PRIu64 " reads took pieces, %" PRIu64 " fetched (%s), %" PRIu64
            " prefetched, %" PRIu64 " blocks completed from them\n",
            stat_u(s, "piece_reads"), stat_u(s, "piece_fetches"),
            cmn_fmt_size(stat_u(s, "piece_bytes"), a, sizeof(a)), stat_u(s, "piece_prefetched"),
            stat_u(s, "piece_assembled"));
    fprintf(f, "dense random  %" PRIu64 " files fetched whole, %" PRIu64 " blocks\n",
            stat_u(s, "dense_sweeps"), stat_u(s, "dense_blocks"));
    fprintf(f, "page cache    %" PRIu64 " fills (%s), %" PRIu64 " merged, %" PRIu64 " skipped\n",
            stat_u(s, "page_cache_fills"),
            cmn_fmt_size(stat_u(s, "page_cache_fill_bytes"), a, sizeof(a)),
            stat_u(s, "page_cache_fills_merged"), stat_u(s, "page_cache_fills_skipped"));
    fprintf(f,
            "uploads       %" PRIu64 " open, %" PRIu64 " done, %" PRIu64 " failed, %" PRIu64
            " aborted; %" PRIu64 " parts (%" PRIu64 " in flight), %s sent\n",
            stat_u(s, "uploads_open"), stat_u(s, "uploads_done"), stat_u(s, "upload_failures"),
            stat_u(s, "upload_aborts"), stat_u(s, "upload_parts"),
            stat_u(s, "upload_parts_inflight"),
            cmn_fmt_size(stat_u(s, "upload_bytes"), a, sizeof(a)));
    fprintf(f, "open files    %" PRIu64 "\n", stat_u(s, "open_files"));
    stat_s(s, "metrics_address", maddr, sizeof(maddr));
    fprintf(f, "metrics       %s%s%s\n", maddr[0] ? "http://" : "off (-o metrics=HOST:PORT)", maddr,
            maddr[0] ? "/metrics" : "");
    if (prev) {
        double dt = (double)(s->t_ns - prev->t_ns) / 1e9;
        if (dt <= 0)
            dt = 1;
#define STAT_RATE(n) ((double)(stat_u(s, n) - CMN_MIN(stat_u(s, n), stat_u(prev, n))) / dt)
        fprintf(f,
                "per second    %.0f reads (%s), %.0f S3 requests (%s), %.0f memory hits, "
                "%.0f disk hits\n",
                STAT_RATE("fuse_reads"),
                cmn_fmt_size((uint64_t)STAT_RATE("fuse_read_bytes"), a, sizeof(a)),
                STAT_RATE("s3_requests"),
                cmn_fmt_size((uint64_t)STAT_RATE("s3_bytes"), c, sizeof(c)), STAT_RATE("mem_hits"),
                STAT_RATE("disk_hits"));
#undef STAT_RATE
    }
}

static void stat_usage(FILE *f)
{
    fprintf(f,
            "Usage: %s [-w|--watch] [-i|--interval SECONDS] [-n|--count N] [--json] MOUNTPOINT\n"
            "Show the cache hit ratios, S3 requests and bytes, memory and disk use and open\n"
            "files of the tierfs mounted on MOUNTPOINT (read from its %s xattr).\n"
            "  -w, --watch        refresh every interval (default 1 s) until interrupted\n"
            "  -i, --interval S   seconds between refreshes with --watch\n"
            "  -n, --count N      with --watch: stop after N samples (default: until interrupted)\n"
            "  --json             print the daemon's JSON as it is\n"
            "  -h, --help         this help\n",
            STAT_PROG, STAT_XATTR);
}

static volatile sig_atomic_t stat_stop;

static void stat_on_signal(int sig)
{
    (void)sig;
    stat_stop = 1;
}

int main(int argc, char **argv)
{
    const char *mnt = NULL;
    bool watch = false, json = false;
    double interval = 1.0;
    unsigned long count = 0; /* samples --watch prints; 0 = until a signal */
    struct stat_snap cur = {0}, prev = {0};

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            stat_usage(stdout);
            return 0;
        } else if (!strcmp(a, "-w") || !strcmp(a, "--watch")) {
            watch = true;
        } else if (!strcmp(a, "--json")) {
            json = true;
        } else if (!strcmp(a, "-i") || !strcmp(a, "--interval")) {
            char *end;
            interval = i + 1 < argc ? strtod(argv[++i], &end) : 0;
            if (interval < 0.1 || interval > 3600 || *end) {
                fprintf(stderr, "%s: --interval needs seconds from 0.1 to 3600\n", STAT_PROG);
                return 2;
            }
        } else if (!strcmp(a, "-n") || !strcmp(a, "--count")) {
            char *end = NULL;
            count = i + 1 < argc ? strtoul(argv[++i], &end, 10) : 0;
            if (count < 1 || count > 1000000 || !end || *end) {
                fprintf(stderr, "%s: --count needs a number of samples from 1 to 1000000\n",
                        STAT_PROG);
                return 2;
            }
        } else if (a[0] == '-' || mnt) {
            fprintf(stderr, "%s: unexpected argument '%s'\n", STAT_PROG, a);
            stat_usage(stderr);
            return 2;
        } else {
            mnt = a;
        }
    }
    if (!mnt) {
        stat_usage(stderr);
        return 2;
    }
    if (stat_read(mnt, &cur) != 0)
        return 1;
    if (!watch) {
        if (json)
            fputs(cur.json, stdout);
        else
            stat_print(stdout, &cur, NULL);
        free(cur.json);
        return 0;
    }
    signal(SIGINT, stat_on_signal);
    signal(SIGTERM, stat_on_signal);
    bool tty = isatty(STDOUT_FILENO);
    int ret = 0;
    for (unsigned long n = 1;; n++) {
        if (tty)
            fputs("\033[H\033[2J", stdout); /* home, clear: one screen that refreshes */
        else
            fputs("--\n", stdout);
        if (json)
            fputs(cur.json, stdout);
        else
            stat_print(stdout, &cur, prev.json ? &prev : NULL);
        fflush(stdout);
        if (count && n >= count)
            break;
        struct timespec ts = {(time_t)interval,
                              (long)((interval - (double)(time_t)interval) * 1e9)};
        while (!stat_stop && nanosleep(&ts, &ts) != 0 && errno == EINTR)
            ;
        if (stat_stop)
            break;
        free(prev.json);
        prev = cur;
        cur.json = NULL;
        if (stat_read(mnt, &cur) != 0) {
            ret = 1;
            break;
        }
    }
    free(cur.json);
    free(prev.json);
    return ret;
}
