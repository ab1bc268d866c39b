/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench_cache_opts.c: the command line of tierfs-bench-cache: defaults, --help, and one
 * checked value per option (a bad one is named in one line, exit 2).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "hybridcache/hybridcache.h"
#include "ioengine/ioengine.h"
#include "tools/bench_cache_gen.h"

#include "tools/bench_cache.h"

/* ---- options ---- */

enum bc_optid {
    O_MODE = 256,
    O_KEYS,
    O_DIST,
    O_ZIPF_S,
    O_VALUE_SIZE,
    O_VALUE_MAX,
    O_COMPRESSIBILITY,
    O_READERS,
    O_WRITERS,
    O_INFLIGHT,
    O_DURATION,
    O_MEM,
    O_DISK,
    O_DISK_PATH,
    O_ENGINE,
    O_IO_DEPTH,
    O_POLICY,
    O_COMPRESSION,
    O_DIRECT_IO,
    O_BLOCK_SIZE,
    O_REGION_SIZE,
    O_WRITE_MODE,
    O_WRITE_QUEUE,
    O_SHARDS,
    O_ORIGIN_LATENCY,
    O_ORIGIN_THREADS,
    O_FILL,
    O_FILL_KEYS,
    O_REOPEN,
    O_FRESH,
    O_VERIFY_EVERY,
    O_LAT_EVERY,
    O_SEED,
    O_REPORT,
    O_CSV,
    O_JSON,
    O_TRACE,
    O_GEN_TRACE,
    O_TRACE_OUT,
    O_TRACE_LEN,
    O_SCAN_FRAC,
    O_SCAN_LEN,
    O_TRACE_SIZES,
    O_TRACE_ENTRY,
    O_LOG_LEVEL,
    O_READ_SIZE,
    O_PARTIAL,
    O_HELP,
};

struct bc_optdesc {
    int id;
    const char *name;
    int has_arg;
    const char *arg;
    const char *help;
};

static const struct bc_optdesc bc_optdescs[] = {
    {O_MODE, "mode", 1, "fetch|get|disk",
     "fetch: hc_fetch via memory, disk, origin; get: hc_get, memory tier only; "
     "disk: hc_fetch without origin (fill first) [fetch]"},
    {O_KEYS, "keys", 1, "N", "key space: ids 0..N-1 [10000]"},
    {O_DIST, "dist", 1, "uniform|zipf", "key popularity [zipf]"},
    {O_ZIPF_S, "zipf-s", 1, "S", "zipf exponent, > 0 [1.0]"},
    {O_VALUE_SIZE, "value-size", 1, "SIZE", "value bytes (K/M/G suffixes) [1M]"},
    {O_VALUE_MAX, "value-size-max", 1, "SIZE",
     "values uniform in [value-size, this] per key [= value-size]"},
    {O_COMPRESSIBILITY, "compressibility", 1, "F",
     "fraction of each value lz4 can remove, 0..1 [0]"},
    {O_READERS, "readers", 1, "N", "reader threads [2]"},
    {O_WRITERS, "writers", 1, "N", "writer threads (hc_insert) [0]"},
    {O_INFLIGHT, "inflight", 1, "N", "outstanding fetches per reader (fetch/disk) [1]"},
    {O_READ_SIZE, "read-size", 1, "SIZE",
     "fetch/disk: read SIZE bytes at a random SIZE-aligned offset of the value; 0 = whole "
     "blocks [0]"},
    {O_PARTIAL, "partial", 1, "on|off",
     "with --read-size: hc_fetch_range (disk hits read only the chunks) or off: hc_fetch of "
     "the whole block [on]"},
    {O_DURATION, "duration", 1, "TIME", "measured run; 0 = only fill/reopen (s, ms, us) [10s]"},
    {O_MEM, "mem", 1, "SIZE", "memory capacity (tier + in-flight + write queue) [256M]"},
    {O_DISK, "disk", 1, "SIZE", "disk tier capacity; needs --disk-path [1G]"},
    {O_DISK_PATH, "disk-path", 1, "PATH", "cache file or block device; none = memory only"},
    {O_ENGINE, "engine", 1, "uring|psync", "disk IO engine [uring]"},
    {O_IO_DEPTH, "io-depth", 1, "N", "engine queue depth (psync: threads) [32]"},
    {O_POLICY, "policy", 1, "NAME", "memory eviction policy: lru|s3fifo|sieve|tinylfu [s3fifo]"},
    {O_COMPRESSION, "compression", 1, "on|off", "lz4 on the disk tier [off]"},
    {O_DIRECT_IO, "direct-io", 1, "on|off", "O_DIRECT on the cache file [on]"},
    {O_BLOCK_SIZE, "block-size", 1, "SIZE", "cache block size, 64K..16M [1M]"},
    {O_REGION_SIZE, "region-size", 1, "SIZE", "disk region size [cache default]"},
    {O_WRITE_MODE, "write-mode", 1, "insert|evict", "when blocks go to disk [insert]"},
    {O_WRITE_QUEUE, "write-queue", 1, "SIZE", "disk write queue bytes [cache default]"},
    {O_SHARDS, "shards", 1, "N", "memory tier shards, power of two [automatic]"},
    {O_ORIGIN_LATENCY, "origin-latency", 1, "TIME", "artificial origin delay per fetch [0]"},
    {O_ORIGIN_THREADS, "origin-threads", 1, "N", "threads completing delayed fetches [2]"},
    {O_FILL, "fill", 0, NULL, "insert keys 0..fill-keys-1 before the run (disk tier if any)"},
    {O_FILL_KEYS, "fill-keys", 1, "N", "keys --fill inserts [= --keys]"},
    {O_REOPEN, "reopen", 0, NULL, "close and reopen the cache before the run (timed recovery)"},
    {O_FRESH, "fresh", 0, NULL, "delete the cache file first (regular files only)"},
    {O_VERIFY_EVERY, "verify-every", 1, "N", "check the bytes of one read in N; 0 = never [16]"},
    {O_LAT_EVERY, "lat-every", 1, "N", "time one op in N [1]"},
    {O_SEED, "seed", 1, "N", "PRNG seed, non-zero [1]"},
    {O_REPORT, "report-interval", 1, "TIME", "progress line on stderr every TIME; 0 = off [0]"},
    {O_CSV, "csv", 0, NULL, "print one CSV header and row"},
    {O_JSON, "json", 0, NULL, "print one JSON object"},
    {O_TRACE, "trace", 1, "FILE", "replay FILE (one key per line) through every policy"},
    {O_GEN_TRACE, "gen-trace", 0, NULL,
     "replay a generated zipf (--zipf-s, --keys) + scan trace through every policy"},
    {O_TRACE_OUT, "trace-out", 1, "FILE", "with --gen-trace: also write the trace to FILE"},
    {O_TRACE_LEN, "trace-len", 1, "N", "requests in a generated trace [1000000]"},
    {O_SCAN_FRAC, "scan-frac", 1, "F", "fraction of generated requests in scans, 0..<1 [0.2]"},
    {O_SCAN_LEN, "scan-len", 1, "N", "keys per scan [100]"},
    {O_TRACE_SIZES, "trace-sizes", 1, "LIST",
     "cache sizes: entry counts or % of unique keys [0.5%,1%,2%,5%,10%,20%]"},
    {O_TRACE_ENTRY, "trace-entry-size", 1, "SIZE", "bytes charged per trace entry [1M]"},
    {O_LOG_LEVEL, "log-level", 1, "LEVEL", "err|warning|notice|info|debug [warning]"},
    {O_HELP, "help", 0, NULL, "this text"},
};

static void bc_usage(FILE *f)
{
    fprintf(f,
            "usage: %s [options]\n"
            "Benchmark the tierfs hybrid cache (memory tier over a disk tier over a "
            "synthetic origin).\n\n",
            BC_PROG);
    for (size_t i = 0; i < CMN_ARRAY_SIZE(bc_optdescs); i++) {
        const struct bc_optdesc *d = &bc_optdescs[i];
        char lhs[64];
        const char *h = d->help;
        snprintf(lhs, sizeof(lhs), "--%s%s%s", d->name, d->arg ? "=" : "", d->arg ? d->arg : "");
        fprintf(f, "  %-30s ", lhs);
        /* wrap the help at 100 columns, continuing under its first word */
        while (strlen(h) > 67) {
            int cut = 67;
            while (cut > 0 && h[cut] != ' ')
                cut--;
            if (cut == 0)
                break;
            fprintf(f, "%.*s\n%33s", cut, h, "");
            h += cut + 1;
        }
        fprintf(f, "%s\n", h);
    }
    fprintf(f, "\nExit status: 0 ok, 1 a verified read returned wrong bytes or every read "
               "failed, 2 bad arguments.\n");
}

/* Print one line naming the option and exit 2. */
void bc_bad(const char *opt, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: --%s: ", BC_PROG, opt);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see --help)\n");
    exit(2);
}

static uint64_t bc_opt_u64(const char *opt, const char *v, uint64_t min, uint64_t max)
{
    uint64_t x;
    if (cmn_parse_u64(v, max, &x) != 0 || x < min)
        bc_bad(opt, "invalid value '%s' (want an integer in %" PRIu64 "..%" PRIu64 ")", v, min,
               max);
    return x;
}

/* Sizes and durations: @parse is cmn_parse_size or bc_parse_duration_ns. */
static uint64_t bc_opt_parsed(const char *opt, const char *v,
                              int (*parse)(const char *, uint64_t *))
{
    uint64_t x;
    if (parse(v, &x) != 0)
        bc_bad(opt, "invalid value '%s' (want %s)", v,
               parse == cmn_parse_size ? "a size, e.g. 4096, 64K, 1M, 2G"
                                       : "a duration, e.g. 10, 2.5s, 30ms, 100us");
    return x;
}

static uint64_t bc_opt_size(const char *opt, const char *v)
{
    return bc_opt_parsed(opt, v, cmn_parse_size);
}

static int bc_opt_bool(const char *opt, const char *v)
{
    int x;
    if (cmn_parse_bool(v, &x) != 0)
        bc_bad(opt, "invalid value '%s' (want on or off)", v);
    return x;
}

static uint64_t bc_opt_time(const char *opt, const char *v)
{
    return bc_opt_parsed(opt, v, bc_parse_duration_ns);
}

static double bc_opt_double(const char *opt, const char *v, double lo, double hi)
{
    double x;
    if (bc_parse_double(v, lo, hi, &x) != 0)
        bc_bad(opt, "invalid value '%s' (want a number in [%g, %g])", v, lo, hi);
    return x;
}

/* @return the index of @v in the NULL-terminated @names, or exit naming @opt. */
static unsigned bc_opt_enum(const char *opt, const char *v, const char *const *names)
{
    char list[256] = "";
    for (unsigned i = 0; names[i]; i++) {
        if (strcmp(v, names[i]) == 0)
            return i;
        snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? "|" : "", names[i]);
    }
    bc_bad(opt, "unknown value '%s' (want %s)", v, list);
}

static void bc_opts_default(struct bc_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->mode = BC_MODE_FETCH;
    o->dist = BC_DIST_ZIPF;
    o->zipf_s = 1.0;
    o->keys = 10000;
    o->value_size = 1u << 20;
    o->readers = 2;
    o->inflight = 1;
    o->partial = 1;
    o->duration_ns = 10000000000ull;
    o->mem = 256ull << 20;
    o->disk = 1ull << 30;
    o->block_size = HC_BLOCK_SIZE_DEFAULT;
    o->engine = "uring";
    o->io_depth = 32;
    o->policy = "s3fifo";
    o->direct_io = 1;
    o->write_mode = HC_WRITE_ON_INSERT;
    o->origin_threads = 2;
    o->verify_every = 16;
    o->lat_every = 1;
    o->seed = 1;
    o->out = BC_OUT_TEXT;
    o->trace.gen.scan_frac = 0.2;
    o->trace.gen.scan_len = 100;
    o->trace.gen_len = 1000000;
    o->trace.sizes = "0.5%,1%,2%,5%,10%,20%";
    o->trace.entry_bytes = 1u << 20;
}

void bc_parse_args(int argc, char **argv, struct bc_opts *o)
{
    static const char *const dists[] = {"uniform", "zipf", NULL};
    static const char *const wmodes[] = {"insert", "evict", NULL};
    struct option lopts[CMN_ARRAY_SIZE(bc_optdescs) + 1];
    bool disk_set = false, value_max_set = false, fill_keys_set = false;
    const char *trace_path = NULL;
    bool gen_trace = false;
    int c;

    for (size_t i = 0; i < CMN_ARRAY_SIZE(bc_optdescs); i++)
        lopts[i] =
            (struct option){bc_optdescs[i].name, bc_optdescs[i].has_arg, NULL, bc_optdescs[i].id};
    memset(&lopts[CMN_ARRAY_SIZE(bc_optdescs)], 0, sizeof(lopts[0]));
    bc_opts_default(o);
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", lopts, NULL)) != -1) {
        const char *name = "?";
        for (size_t i = 0; i < CMN_ARRAY_SIZE(bc_optdescs); i++)
            if (bc_optdescs[i].id == c)
                name = bc_optdescs[i].name;
        switch (c) {
        case O_MODE:
            o->mode = (enum bc_mode)bc_opt_enum(name, optarg, bc_mode_names);
            break;
        case O_KEYS:
            o->keys = bc_opt_u64(name, optarg, 1, UINT64_MAX / 4);
            break;
        case O_DIST:
            o->dist = (enum bc_dist)bc_opt_enum(name, optarg, dists);
            break;
        case O_ZIPF_S:
            o->zipf_s = bc_opt_double(name, optarg, 1e-6, 100.0);
            break;
        case O_VALUE_SIZE:
            o->value_size = bc_opt_size(name, optarg);
            break;
        case O_VALUE_MAX:
            o->value_max = bc_opt_size(name, optarg);
            value_max_set = true;
            break;
        case O_COMPRESSIBILITY:
            o->compressibility = bc_opt_double(name, optarg, 0, 1);
            break;
        case O_READERS:
            o->readers = (unsigned)bc_opt_u64(name, optarg, 0, 1024);
            break;
        case O_WRITERS:
            o->writers = (unsigned)bc_opt_u64(name, optarg, 0, 1024);
            break;
        case O_INFLIGHT:
            o->inflight = (unsigned)bc_opt_u64(name, optarg, 1, 4096);
            break;
        case O_DURATION:
            o->duration_ns = bc_opt_time(name, optarg);
            break;
        case O_MEM:
            o->mem = bc_opt_size(name, optarg);
            break;
        case O_DISK:
            o->disk = bc_opt_size(name, optarg);
            disk_set = true;
            break;
        case O_DISK_PATH:
            o->disk_path = optarg;
            break;
        case O_ENGINE:
            o->engine = ioeng_names()[bc_opt_enum(name, optarg, ioeng_names())];
            break;
        case O_IO_DEPTH:
            o->io_depth = (unsigned)bc_opt_u64(name, optarg, 1, 4096);
            break;
        case O_POLICY:
            o->policy = hc_policy_names()[bc_opt_enum(name, optarg, hc_policy_names())];
            break;
        case O_COMPRESSION:
            o->compression = bc_opt_bool(name, optarg);
            break;
        case O_DIRECT_IO:
            o->direct_io = bc_opt_bool(name, optarg);
            break;
        case O_BLOCK_SIZE:
            o->block_size = bc_opt_size(name, optarg);
            break;
        case O_REGION_SIZE:
            o->region_size = bc_opt_size(name, optarg);
            break;
        case O_WRITE_MODE:
            o->write_mode = (enum hc_write_mode)bc_opt_enum(name, optarg, wmodes);
            break;
        case O_WRITE_QUEUE:
            o->write_queue = bc_opt_size(name, optarg);
            break;
        case O_SHARDS:
            o->shards = (unsigned)bc_opt_u64(name, optarg, 1, 1024);
            break;
        case O_ORIGIN_LATENCY:
            o->origin_latency_ns = bc_opt_time(name, optarg);
            break;
        case O_ORIGIN_THREADS:
            o->origin_threads = (unsigned)bc_opt_u64(name, optarg, 1, 256);
            break;
        case O_FILL:
            o->fill = true;
            break;
        case O_FILL_KEYS:
            o->fill_keys = bc_opt_u64(name, optarg, 1, UINT64_MAX / 4);
            fill_keys_set = true;
            break;
        case O_REOPEN:
            o->reopen = true;
            break;
        case O_FRESH:
            o->fresh = true;
            break;
        case O_VERIFY_EVERY:
            o->verify_every = (unsigned)bc_opt_u64(name, optarg, 0, UINT32_MAX);
            break;
        case O_LAT_EVERY:
            o->lat_every = (unsigned)bc_opt_u64(name, optarg, 1, UINT32_MAX);
            break;
        case O_SEED:
            o->seed = bc_opt_u64(name, optarg, 1, UINT64_MAX);
            break;
        case O_READ_SIZE:
            o->read_size = bc_opt_size(name, optarg);
            break;
        case O_PARTIAL:
            o->partial = bc_opt_bool(name, optarg);
            break;
        case O_REPORT:
            o->report_ns = bc_opt_time(name, optarg);
            break;
        case O_CSV:
            o->out = BC_OUT_CSV;
            break;
        case O_JSON:
            o->out = BC_OUT_JSON;
            break;
        case O_TRACE:
            trace_path = optarg;
            break;
        case O_GEN_TRACE:
            gen_trace = true;
            break;
        case O_TRACE_OUT:
            o->trace.save_path = optarg;
            break;
        case O_TRACE_LEN:
            o->trace.gen_len = bc_opt_u64(name, optarg, 1, 1ull << 32);
            break;
        case O_SCAN_FRAC:
            o->trace.gen.scan_frac = bc_opt_double(name, optarg, 0, 0.99);
            break;
        case O_SCAN_LEN:
            o->trace.gen.scan_len = bc_opt_u64(name, optarg, 1, 1ull << 32);
            break;
        case O_TRACE_SIZES:
            o->trace.sizes = optarg;
            break;
        case O_TRACE_ENTRY:
            o->trace.entry_bytes = bc_opt_size(name, optarg);
            break;
        case O_LOG_LEVEL: {
            int lvl = tlog_parse_level(optarg);
            if (lvl < 0)
                bc_bad(name, "unknown level '%s' (want err|warning|notice|info|debug)", optarg);
            tlog_set_level(lvl);
            break;
        }
        case 'h':
        case O_HELP:
            bc_usage(stdout);
            exit(0);
        case ':':
            fprintf(stderr, "%s: %s: missing value (see --help)\n", BC_PROG, argv[optind - 1]);
            exit(2);
        default:
            fprintf(stderr, "%s: unknown option '%s' (see --help)\n", BC_PROG, argv[optind - 1]);
            exit(2);
        }
    }
    if (optind < argc) {
        fprintf(stderr, "%s: unexpected argument '%s' (see --help)\n", BC_PROG, argv[optind]);
        exit(2);
    }

    /* validation: each message names the option at fault */
    if (trace_path && gen_trace)
        bc_bad("trace", "cannot be combined with --gen-trace");
    if (o->trace.save_path && !gen_trace)
        bc_bad("trace-out", "needs --gen-trace");
    if (trace_path || gen_trace) {
        o->trace_mode = true;
        o->trace.path = trace_path;
        o->trace.gen.n = o->keys;
        o->trace.gen.s = o->dist == BC_DIST_ZIPF ? o->zipf_s : 0.0;
        o->trace.gen.seed = o->seed;
        o->trace.out = o->out;
        if (o->trace.entry_bytes == 0)
            bc_bad("trace-entry-size", "must be > 0");
        return;
    }
    if (!value_max_set)
        o->value_max = o->value_size;
    if (o->block_size < HC_BLOCK_SIZE_MIN || o->block_size > HC_BLOCK_SIZE_MAX)
        bc_bad("block-size", "%" PRIu64 " is outside %u..%u", o->block_size, HC_BLOCK_SIZE_MIN,
               HC_BLOCK_SIZE_MAX);
    if (o->value_size == 0)
        bc_bad("value-size", "must be > 0");
    if (o->value_size > o->block_size)
        bc_bad("value-size", "%" PRIu64 " exceeds --block-size %" PRIu64, o->value_size,
               o->block_size);
    if (o->value_max < o->value_size)
        bc_bad("value-size-max", "must be >= --value-size");
    if (o->value_max > o->block_size)
        bc_bad("value-size-max", "%" PRIu64 " exceeds --block-size %" PRIu64, o->value_max,
               o->block_size);
    if (o->mem == 0)
        bc_bad("mem", "must be > 0");
    if (o->read_size && (o->read_size % BC_VALUE_CHUNK || o->read_size > o->value_size))
        bc_bad("read-size", "must be a multiple of %u and at most --value-size",
               (unsigned)BC_VALUE_CHUNK);
    if (o->read_size && o->mode == BC_MODE_GET)
        bc_bad("read-size", "needs --mode fetch or disk");
    if (disk_set && !o->disk_path)
        bc_bad("disk", "needs --disk-path");
    if (o->mode == BC_MODE_DISK && !o->disk_path)
        bc_bad("mode", "disk needs --disk-path");
    if (o->fresh && !o->disk_path)
        bc_bad("fresh", "needs --disk-path");
    if (o->shards && !CMN_IS_POW2(o->shards))
        bc_bad("shards", "%u is not a power of two", o->shards);
    if (!fill_keys_set)
        o->fill_keys = o->keys;
    else if (o->fill_keys > o->keys)
        bc_bad("fill-keys", "%" PRIu64 " exceeds --keys %" PRIu64, o->fill_keys, o->keys);
    if (o->duration_ns && o->readers == 0 && o->writers == 0)
        bc_bad("readers", "no reader and no writer to run for --duration");
    if (o->mode == BC_MODE_GET && o->writers == 0 && !o->fill && o->duration_ns)
        bc_bad("mode", "get without --fill or --writers reads an empty memory tier");
}
