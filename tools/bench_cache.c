/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench_cache.c: tierfs-bench-cache, a load generator and reporter for the hybrid cache.
 *
 * DESIGN
 * One process, one struct hc_cache. Optional phases, in order: --fresh (delete the cache
 * file), create (recovering an existing file), --fill (insert keys 0..fill-keys-1, to the
 * disk tier when there is one), --reopen (close and recover, timed), then the measured
 * run: reader threads and writer threads for --duration.
 *   - fetch mode: readers call hc_fetch; a miss in both tiers calls the synthetic origin,
 *     which writes the key's deterministic value (after --origin-latency, on origin
 *     threads, so the cache's asynchronous path is exercised);
 *   - disk mode: hc_fetch with HC_FETCH_NO_ORIGIN, so every read is a memory or disk hit
 *     or a miss; with a tiny --mem this measures disk-tier reads;
 *   - get mode: hc_get on the memory tier only (a hot set placed by --fill).
 * Each reader keeps --inflight fetches outstanding: done callbacks (on cache threads or
 * inline) push the finished op on the reader's list and the reader does the accounting,
 * so cache threads only take one short lock. Values are regenerated from the key to
 * verify one read in --verify-every; a mismatch is a bug and makes the exit status 1.
 * Latency goes into a per-thread log-bucketed histogram, merged at the end.
 * --trace / --gen-trace replay a key sequence through every eviction policy instead
 * (bench_cache_trace.c).
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

#define BC_PROG "tierfs-bench-cache"
#define BC_RING_LEN (1u << 20) /* precomputed key ids per get-mode reader */

enum bc_mode { BC_MODE_FETCH = 0, BC_MODE_GET, BC_MODE_DISK };
static const char *const bc_mode_names[] = {"fetch", "get", "disk", NULL};

struct bc_opts {
    enum bc_mode mode;
    enum bc_dist dist;
    double zipf_s;
    uint64_t keys;
    uint64_t value_size, value_max;
    double compressibility;
    unsigned readers, writers, inflight;
    uint64_t read_size;           /* 0: whole blocks; else random aligned reads this big */
    int partial;                  /* with read_size: hc_fetch_range (1) or hc_fetch (0) */
    uint64_t duration_ns;
    uint64_t mem, disk, block_size, region_size, write_queue;
    const char *disk_path;
    const char *engine;
    unsigned io_depth, shards;
    const char *policy;
    int compression, direct_io;
    enum hc_write_mode write_mode;
    uint64_t origin_latency_ns;
    unsigned origin_threads;
    bool fill, reopen, fresh;
    uint64_t fill_keys;
    unsigned verify_every, lat_every;
    uint64_t seed;
    uint64_t report_ns;
    enum bc_out out;
    bool trace_mode;
    struct bc_trace_run trace;
};

/* One outstanding hc_fetch of a reader. */
struct bc_op {
    struct bc_thread *th;
    struct bc_op *next;
    uint64_t id, t0, t1;
    uint64_t off;                 /* --read-size: where in the value this read starts */
    struct hc_entry *e;
    int result;
    enum hc_source src;
    bool sample;
    char key[BC_KEY_LEN];
};

struct bc_thread {
    struct bc_bench *b;
    pthread_t tid;
    unsigned idx;
    bool writer;
    uint64_t rng;
    uint64_t *ring; /* get mode: precomputed ids, so the generator is not measured */
    size_t ring_pos;
    struct bc_hist *hist;
    _Atomic uint64_t ops; /* written by the owner, read by the progress reporter */
    /* owned by the thread, read after join */
    uint64_t bytes, by_src[4], misses, errors, verified, mismatches, nsub, nok;
    uint64_t handoff_ns, handoffs; /* done callback -> reader picked the op up (sampled) */
    uint64_t disk_bytes;           /* bytes of reads served by the disk tier */
    /* async reads */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct bc_op *done_head; /* protected by lock */
    bool waiting;            /* protected by lock */
    struct bc_op *ops_mem, *free_ops;
    unsigned outstanding;
    void *buf; /* writer: one value */
};

struct bc_origin_req {
    struct bc_origin_req *next;
    struct hc_flight *ctx;
    void *buf;
    size_t cap;
    uint64_t id, due_ns;
};

struct bc_bench {
    struct bc_opts o;
    struct hc_cache *cache;
    struct bc_keygen kg;
    struct bc_valgen vg;
    _Atomic bool stop;
    _Atomic uint64_t origin_calls, origin_too_big;
    /* delayed origin: a FIFO (constant delay keeps it sorted by due time) */
    pthread_mutex_t olock; /* protects ohead, otail, ostop */
    pthread_cond_t ocond;  /* CLOCK_MONOTONIC */
    struct bc_origin_req *ohead, *otail;
    bool ostop;
    pthread_t *othreads;
    unsigned nothreads;
    struct bc_thread *th;
    unsigned nth;
};

/* ---- options ---- */

enum bc_optid {
    O_MODE = 256, O_KEYS, O_DIST, O_ZIPF_S, O_VALUE_SIZE, O_VALUE_MAX, O_COMPRESSIBILITY,
    O_READERS, O_WRITERS, O_INFLIGHT, O_DURATION, O_MEM, O_DISK, O_DISK_PATH, O_ENGINE,
    O_IO_DEPTH, O_POLICY, O_COMPRESSION, O_DIRECT_IO, O_BLOCK_SIZE, O_REGION_SIZE,
    O_WRITE_MODE, O_WRITE_QUEUE, O_SHARDS, O_ORIGIN_LATENCY, O_ORIGIN_THREADS, O_FILL,
    O_FILL_KEYS, O_REOPEN, O_FRESH, O_VERIFY_EVERY, O_LAT_EVERY, O_SEED, O_REPORT, O_CSV,
    O_JSON, O_TRACE, O_GEN_TRACE, O_TRACE_OUT, O_TRACE_LEN, O_SCAN_FRAC, O_SCAN_LEN,
    O_TRACE_SIZES, O_TRACE_ENTRY, O_LOG_LEVEL, O_READ_SIZE, O_PARTIAL, O_HELP,
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
    fprintf(f, "usage: %s [options]\n"
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
static void __attribute__((noreturn, format(printf, 2, 3)))
bc_bad(const char *opt, const char *fmt, ...)
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
        snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? "|" : "",
                 names[i]);
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

static void bc_parse_args(int argc, char **argv, struct bc_opts *o)
{
    static const char *const dists[] = {"uniform", "zipf", NULL};
    static const char *const wmodes[] = {"insert", "evict", NULL};
    struct option lopts[CMN_ARRAY_SIZE(bc_optdescs) + 1];
    bool disk_set = false, value_max_set = false, fill_keys_set = false;
    const char *trace_path = NULL;
    bool gen_trace = false;
    int c;

    for (size_t i = 0; i < CMN_ARRAY_SIZE(bc_optdescs); i++)
        lopts[i] = (struct option){bc_optdescs[i].name, bc_optdescs[i].has_arg, NULL,
                                   bc_optdescs[i].id};
    memset(&lopts[CMN_ARRAY_SIZE(bc_optdescs)], 0, sizeof(lopts[0]));
    bc_opts_default(o);
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", lopts, NULL)) != -1) {
        const char *name = "?";
        for (size_t i = 0; i < CMN_ARRAY_SIZE(bc_optdescs); i++)
            if (bc_optdescs[i].id == c)
                name = bc_optdescs[i].name;
        switch (c) {
        case O_MODE: o->mode = (enum bc_mode)bc_opt_enum(name, optarg, bc_mode_names); break;
        case O_KEYS: o->keys = bc_opt_u64(name, optarg, 1, UINT64_MAX / 4); break;
        case O_DIST: o->dist = (enum bc_dist)bc_opt_enum(name, optarg, dists); break;
        case O_ZIPF_S: o->zipf_s = bc_opt_double(name, optarg, 1e-6, 100.0); break;
        case O_VALUE_SIZE: o->value_size = bc_opt_size(name, optarg); break;
        case O_VALUE_MAX:
            o->value_max = bc_opt_size(name, optarg);
            value_max_set = true;
            break;
        case O_COMPRESSIBILITY: o->compressibility = bc_opt_double(name, optarg, 0, 1); break;
        case O_READERS: o->readers = (unsigned)bc_opt_u64(name, optarg, 0, 1024); break;
        case O_WRITERS: o->writers = (unsigned)bc_opt_u64(name, optarg, 0, 1024); break;
        case O_INFLIGHT: o->inflight = (unsigned)bc_opt_u64(name, optarg, 1, 4096); break;
        case O_DURATION: o->duration_ns = bc_opt_time(name, optarg); break;
        case O_MEM: o->mem = bc_opt_size(name, optarg); break;
        case O_DISK:
            o->disk = bc_opt_size(name, optarg);
            disk_set = true;
            break;
        case O_DISK_PATH: o->disk_path = optarg; break;
        case O_ENGINE:
            o->engine = ioeng_names()[bc_opt_enum(name, optarg, ioeng_names())];
            break;
        case O_IO_DEPTH: o->io_depth = (unsigned)bc_opt_u64(name, optarg, 1, 4096); break;
        case O_POLICY:
            o->policy = hc_policy_names()[bc_opt_enum(name, optarg, hc_policy_names())];
            break;
        case O_COMPRESSION: o->compression = bc_opt_bool(name, optarg); break;
        case O_DIRECT_IO: o->direct_io = bc_opt_bool(name, optarg); break;
        case O_BLOCK_SIZE: o->block_size = bc_opt_size(name, optarg); break;
        case O_REGION_SIZE: o->region_size = bc_opt_size(name, optarg); break;
        case O_WRITE_MODE:
            o->write_mode = (enum hc_write_mode)bc_opt_enum(name, optarg, wmodes);
            break;
        case O_WRITE_QUEUE: o->write_queue = bc_opt_size(name, optarg); break;
        case O_SHARDS: o->shards = (unsigned)bc_opt_u64(name, optarg, 1, 1024); break;
        case O_ORIGIN_LATENCY: o->origin_latency_ns = bc_opt_time(name, optarg); break;
        case O_ORIGIN_THREADS:
            o->origin_threads = (unsigned)bc_opt_u64(name, optarg, 1, 256);
            break;
        case O_FILL: o->fill = true; break;
        case O_FILL_KEYS:
            o->fill_keys = bc_opt_u64(name, optarg, 1, UINT64_MAX / 4);
            fill_keys_set = true;
            break;
        case O_REOPEN: o->reopen = true; break;
        case O_FRESH: o->fresh = true; break;
        case O_VERIFY_EVERY:
            o->verify_every = (unsigned)bc_opt_u64(name, optarg, 0, UINT32_MAX);
            break;
        case O_LAT_EVERY: o->lat_every = (unsigned)bc_opt_u64(name, optarg, 1, UINT32_MAX); break;
        case O_SEED: o->seed = bc_opt_u64(name, optarg, 1, UINT64_MAX); break;
        case O_READ_SIZE: o->read_size = bc_opt_size(name, optarg); break;
        case O_PARTIAL: o->partial = bc_opt_bool(name, optarg); break;
        case O_REPORT: o->report_ns = bc_opt_time(name, optarg); break;
        case O_CSV: o->out = BC_OUT_CSV; break;
        case O_JSON: o->out = BC_OUT_JSON; break;
        case O_TRACE: trace_path = optarg; break;
        case O_GEN_TRACE: gen_trace = true; break;
        case O_TRACE_OUT: o->trace.save_path = optarg; break;
        case O_TRACE_LEN: o->trace.gen_len = bc_opt_u64(name, optarg, 1, 1ull << 32); break;
        case O_SCAN_FRAC: o->trace.gen.scan_frac = bc_opt_double(name, optarg, 0, 0.99); break;
        case O_SCAN_LEN: o->trace.gen.scan_len = bc_opt_u64(name, optarg, 1, 1ull << 32); break;
        case O_TRACE_SIZES: o->trace.sizes = optarg; break;
        case O_TRACE_ENTRY: o->trace.entry_bytes = bc_opt_size(name, optarg); break;
        case O_LOG_LEVEL: {
            int lvl = tlog_parse_level(optarg);
            if (lvl < 0)
                bc_bad(name, "unknown level '%s' (want err|warning|notice|info|debug)", optarg);
            tlog_set_level(lvl);
            break;
        }
        case 'h':
        case O_HELP: bc_usage(stdout); exit(0);
        case ':':
            fprintf(stderr, "%s: %s: missing value (see --help)\n", BC_PROG, argv[optind - 1]);
            exit(2);
        default:
            fprintf(stderr, "%s: unknown option '%s' (see --help)\n", BC_PROG,
                    argv[optind - 1]);
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

/* ---- origin ---- */

/* Write the value of @id into @buf and complete the fetch. */
static void bc_origin_serve(struct bc_bench *b, struct hc_flight *ctx, void *buf,
                            size_t cap, uint64_t id)
{
    size_t len = bc_value_len(&b->vg, id);
    atomic_fetch_add_explicit(&b->origin_calls, 1, memory_order_relaxed);
    if (len > cap) {
        atomic_fetch_add_explicit(&b->origin_too_big, 1, memory_order_relaxed);
        hc_fetch_complete(ctx, -EFBIG);
        return;
    }
    bc_value_fill(&b->vg, id, buf, len);
    hc_fetch_complete(ctx, (ssize_t)len);
}

static void bc_fetcher(struct hc_flight *ctx, void *buf, size_t cap, void *arg)
{
    struct bc_op *op = arg;
    struct bc_bench *b = op->th->b;
    struct bc_origin_req *r;

    if (!b->o.origin_latency_ns) {
        bc_origin_serve(b, ctx, buf, cap, op->id);
        return;
    }
    r = malloc(sizeof(*r));
    if (!r) {
        hc_fetch_complete(ctx, -ENOMEM);
        return;
    }
    *r = (struct bc_origin_req){NULL, ctx, buf, cap, op->id, cmn_now_ns() + b->o.origin_latency_ns};
    pthread_mutex_lock(&b->olock);
    if (b->otail)
        b->otail->next = r;
    else
        b->ohead = r;
    b->otail = r;
    pthread_cond_broadcast(&b->ocond);
    pthread_mutex_unlock(&b->olock);
}

/* Origin thread: completes queued fetches once due. All threads wait for the head's due
 * time, so the delay does not limit the rate to threads / latency. */
static void *bc_origin_main(void *arg)
{
    struct bc_bench *b = arg;

    pthread_mutex_lock(&b->olock);
    for (;;) {
        struct bc_origin_req *r = b->ohead;
        if (!r) {
            if (b->ostop)
                break;
            pthread_cond_wait(&b->ocond, &b->olock);
            continue;
        }
        uint64_t now = cmn_now_ns();
        if (r->due_ns > now) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            uint64_t wait = r->due_ns - now;
            ts.tv_sec += (time_t)(wait / 1000000000ull);
            ts.tv_nsec += (long)(wait % 1000000000ull);
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&b->ocond, &b->olock, &ts);
            continue;
        }
        b->ohead = r->next;
        if (!b->ohead)
            b->otail = NULL;
        pthread_mutex_unlock(&b->olock);
        bc_origin_serve(b, r->ctx, r->buf, r->cap, r->id);
        free(r);
        pthread_mutex_lock(&b->olock);
    }
    pthread_mutex_unlock(&b->olock);
    return NULL;
}

static void bc_origin_init(struct bc_bench *b)
{
    pthread_condattr_t ca;

    pthread_mutex_init(&b->olock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&b->ocond, &ca);
    pthread_condattr_destroy(&ca);
}

/* Start the origin threads when fetches are delayed. @return 0 or -errno. */
static int bc_origin_start(struct bc_bench *b)
{
    if (!b->o.origin_latency_ns || b->o.mode != BC_MODE_FETCH)
        return 0;
    b->othreads = calloc(b->o.origin_threads, sizeof(*b->othreads));
    if (!b->othreads)
        return -ENOMEM;
    for (unsigned i = 0; i < b->o.origin_threads; i++) {
        int rc = pthread_create(&b->othreads[i], NULL, bc_origin_main, b);
        if (rc)
            return -rc;
        b->nothreads++;
    }
    return 0;
}

static void bc_origin_stop(struct bc_bench *b)
{
    pthread_mutex_lock(&b->olock);
    b->ostop = true;
    pthread_cond_broadcast(&b->ocond);
    pthread_mutex_unlock(&b->olock);
    for (unsigned i = 0; i < b->nothreads; i++)
        pthread_join(b->othreads[i], NULL);
    free(b->othreads);
    b->othreads = NULL;
    b->nothreads = 0;
}

/* ---- readers and writers ---- */

static inline uint64_t bc_next_id(struct bc_thread *t)
{
    if (t->ring) {
        uint64_t id = t->ring[t->ring_pos];
        t->ring_pos = (t->ring_pos + 1) & (BC_RING_LEN - 1);
        return id;
    }
    return bc_keygen_next(&t->b->kg, &t->rng);
}

static inline bool bc_stopped(struct bc_bench *b)
{
    return atomic_load_explicit(&b->stop, memory_order_relaxed);
}

/* Verify one read in verify_every (per thread). */
static void bc_verify(struct bc_thread *t, uint64_t id, const struct hc_entry *e)
{
    unsigned every = t->b->o.verify_every;
    if (!every || t->nok++ % every != 0)
        return;
    /* A ranged read may get a partial entry: check the bytes it holds where they belong. */
    ssize_t off = t->b->o.read_size
                      ? bc_value_check_at(&t->b->vg, id, hc_entry_off(e), hc_entry_data(e),
                                          hc_entry_len(e))
                      : bc_value_check(&t->b->vg, id, hc_entry_data(e), hc_entry_len(e));
    t->verified++;
    if (off >= 0) {
        if (t->mismatches++ == 0)
            fprintf(stderr, "%s: key %" PRIu64 ": wrong byte at offset %zd of %zu\n", BC_PROG,
                    id, off, hc_entry_len(e));
    }
}

static void bc_done(int result, struct hc_entry *e, enum hc_source src, void *arg)
{
    struct bc_op *op = arg;
    struct bc_thread *t = op->th;

    if (op->sample)
        op->t1 = cmn_now_ns();
    op->result = result;
    op->e = e;
    op->src = src;
    pthread_mutex_lock(&t->lock);
    op->next = t->done_head;
    t->done_head = op;
    if (t->waiting)
        pthread_cond_signal(&t->cond);
    pthread_mutex_unlock(&t->lock);
}

/* Account for finished ops and return them to the free list. */
static void bc_reap(struct bc_thread *t, struct bc_op *list)
{
    struct bc_op *op, *next;
    uint64_t n = 0, now = list && t->b->o.lat_every ? cmn_now_ns() : 0;

    for (op = list; op; op = next) {
        next = op->next;
        if (op->sample) {
            bc_hist_record(t->hist, op->t1 - op->t0);
            if (now > op->t1) {
                t->handoff_ns += now - op->t1;
                t->handoffs++;
            }
        }
        if (op->result < 0 || !op->e) {
            if (op->result == -ENOENT)
                t->misses++;
            else
                t->errors++;
            hc_entry_put(op->e);
        } else {
            t->by_src[op->src & 3]++;
            t->bytes += hc_entry_len(op->e);
            if (op->src == HC_SRC_DISK)
                t->disk_bytes += hc_entry_len(op->e);
            bc_verify(t, op->id, op->e);
            hc_entry_put(op->e);
        }
        op->e = NULL;
        op->next = t->free_ops;
        t->free_ops = op;
        t->outstanding--;
        n++;
    }
    atomic_fetch_add_explicit(&t->ops, n, memory_order_relaxed);
}

/* Wait for at least one finished op (or return at once if none is outstanding). */
static void bc_wait_reap(struct bc_thread *t)
{
    struct bc_op *list;

    if (!t->outstanding)
        return;
    pthread_mutex_lock(&t->lock);
    while (!t->done_head) {
        t->waiting = true;
        pthread_cond_wait(&t->cond, &t->lock);
    }
    t->waiting = false;
    list = t->done_head;
    t->done_head = NULL;
    pthread_mutex_unlock(&t->lock);
    bc_reap(t, list);
}

static void bc_fetch_loop(struct bc_thread *t)
{
    struct bc_bench *b = t->b;
    unsigned flags = b->o.mode == BC_MODE_DISK ? HC_FETCH_NO_ORIGIN : 0;

    while (!bc_stopped(b)) {
        while (t->free_ops && !bc_stopped(b)) {
            struct bc_op *op = t->free_ops;
            t->free_ops = op->next;
            op->id = bc_next_id(t);
            op->sample = t->nsub++ % b->o.lat_every == 0;
            op->t0 = op->sample ? cmn_now_ns() : 0;
            t->outstanding++;
            size_t klen = bc_key_format(op->id, op->key);
            int rc;
            if (b->o.read_size && b->o.partial) {
                uint64_t slots = CMN_MAX(bc_value_len(&b->vg, op->id) / b->o.read_size, 1);
                op->off = cmn_rand64(&t->rng) % slots * b->o.read_size;
                rc = hc_fetch_range(b->cache, op->key, klen, flags, op->off, b->o.read_size,
                                    bc_fetcher, op, bc_done, op);
            } else {
                rc = hc_fetch(b->cache, op->key, klen, flags, bc_fetcher, op, bc_done, op);
            }
            if (rc < 0) {
                t->outstanding--;
                t->errors++;
                op->next = t->free_ops;
                t->free_ops = op;
                if (t->errors == 1)
                    fprintf(stderr, "%s: hc_fetch: %s\n", BC_PROG, strerror(-rc));
                break;
            }
        }
        bc_wait_reap(t);
    }
    while (t->outstanding)
        bc_wait_reap(t);
}

static void bc_get_loop(struct bc_thread *t)
{
    struct bc_bench *b = t->b;
    unsigned every = b->o.lat_every, countdown = 0;
    char key[BC_KEY_LEN];
    uint64_t n = 0;

    while (!bc_stopped(b)) {
        uint64_t id = bc_next_id(t), t0 = 0;
        bool sample = countdown == 0; /* a countdown, not n % every: no division per get */
        countdown = sample ? every - 1 : countdown - 1;
        size_t klen = bc_key_format(id, key);
        if (sample)
            t0 = cmn_now_ns();
        struct hc_entry *e = hc_get(b->cache, key, klen);
        if (sample)
            bc_hist_record(t->hist, cmn_now_ns() - t0);
        if (e) {
            t->by_src[HC_SRC_MEMORY]++;
            t->bytes += hc_entry_len(e);
            bc_verify(t, id, e);
            hc_entry_put(e);
        } else {
            t->misses++;
        }
        atomic_store_explicit(&t->ops, ++n, memory_order_relaxed);
    }
    t->nsub = n;
}

static void bc_write_loop(struct bc_thread *t)
{
    struct bc_bench *b = t->b;
    char key[BC_KEY_LEN];
    uint64_t n = 0;

    while (!bc_stopped(b)) {
        uint64_t id = bc_next_id(t), t0 = 0;
        size_t len = bc_value_len(&b->vg, id), klen = bc_key_format(id, key);
        bool sample = n % b->o.lat_every == 0;
        bc_value_fill(&b->vg, id, t->buf, len);
        if (sample)
            t0 = cmn_now_ns();
        int rc = hc_insert(b->cache, key, klen, t->buf, len, 0);
        if (sample)
            bc_hist_record(t->hist, cmn_now_ns() - t0);
        if (rc < 0) {
            if (t->errors++ == 0)
                fprintf(stderr, "%s: hc_insert: %s\n", BC_PROG, strerror(-rc));
        } else {
            t->bytes += len;
        }
        atomic_store_explicit(&t->ops, ++n, memory_order_relaxed);
    }
    t->nsub = n;
}

static void *bc_thread_main(void *arg)
{
    struct bc_thread *t = arg;
    if (t->writer)
        bc_write_loop(t);
    else if (t->b->o.mode == BC_MODE_GET)
        bc_get_loop(t);
    else
        bc_fetch_loop(t);
    return NULL;
}

static void bc_thread_free(struct bc_thread *t)
{
    free(t->ring);
    free(t->hist);
    free(t->ops_mem);
    ioeng_buf_free(t->buf);
    pthread_mutex_destroy(&t->lock);
    pthread_cond_destroy(&t->cond);
}

static int bc_thread_init(struct bc_bench *b, struct bc_thread *t, unsigned idx, bool writer)
{
    memset(t, 0, sizeof(*t));
    t->b = b;
    t->idx = idx;
    t->writer = writer;
    t->rng = b->o.seed * 0x9e3779b97f4a7c15ull + idx + 1;
    pthread_mutex_init(&t->lock, NULL);
    pthread_cond_init(&t->cond, NULL);
    t->hist = malloc(sizeof(*t->hist));
    if (!t->hist)
        return -ENOMEM;
    bc_hist_init(t->hist);
    if (writer) {
        t->buf = ioeng_buf_alloc(b->o.value_max);
        return t->buf ? 0 : -ENOMEM;
    }
    if (b->o.mode == BC_MODE_GET) {
        t->ring = malloc(BC_RING_LEN * sizeof(*t->ring));
        if (!t->ring)
            return -ENOMEM;
        for (size_t i = 0; i < BC_RING_LEN; i++)
            t->ring[i] = bc_keygen_next(&b->kg, &t->rng);
        return 0;
    }
    t->ops_mem = calloc(b->o.inflight, sizeof(*t->ops_mem));
    if (!t->ops_mem)
        return -ENOMEM;
    for (unsigned i = 0; i < b->o.inflight; i++) {
        t->ops_mem[i].th = t;
        t->ops_mem[i].next = t->free_ops;
        t->free_ops = &t->ops_mem[i];
    }
    return 0;
}

/* ---- phases ---- */

/*
 * The cache identity names the value generator's parameters: a cache file filled with
 * other values (another --value-size or --compressibility) is wiped at open instead of
 * failing verification. @buf holds the identity and must outlive the cache's creation.
 */
static void bc_conf(const struct bc_bench *b, struct hc_conf *c, char *buf, size_t cap)
{
    const struct bc_opts *o = &b->o;

    memset(c, 0, sizeof(*c));
    c->block_size = (uint32_t)o->block_size;
    c->mem_capacity = o->mem;
    c->mem_policy = o->policy;
    c->mem_shards = o->shards;
    if (o->disk_path) {
        c->disk_path = o->disk_path;
        c->disk_capacity = o->disk;
    }
    c->direct_io = o->direct_io;
    c->io_engine = o->engine;
    c->io_depth = o->io_depth;
    c->region_size = (uint32_t)o->region_size;
    c->compression = o->compression;
    c->write_mode = o->write_mode;
    c->write_queue_bytes = o->write_queue;
    snprintf(buf, cap, "tierfs-bench-cache values=%" PRIu64 "..%" PRIu64 " rand=%u/%u",
             o->value_size, o->value_max, b->vg.rand_bytes, BC_VALUE_CHUNK);
    c->identity = buf;
}

struct bc_result {
    double create_s, fill_s, reopen_s, run_s, cpu_s, close_s;
    uint64_t fill_keys, fill_bytes, fill_retries, fill_lost;
    uint64_t open_entries, open_recovery_ns; /* what the first hc_create recovered */
    uint64_t recovered_entries, recovery_ns;  /* the last hc_create (after --reopen) */
    uint64_t reads, read_bytes, writes, write_bytes;
    uint64_t by_src[4], misses, read_errors, write_errors, verified, mismatches;
    uint64_t handoff_ns, handoffs, disk_read_bytes;
    struct bc_hist *rlat, *wlat;
    struct hc_stats s0, s1;
    uint64_t origin_calls;
};

static double bc_cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/*
 * Insert keys 0..fill_keys-1. With a disk tier (and not in get mode) they go straight to
 * disk and a write the cache drops for admission (the write queue was full) is retried
 * after an hc_flush, so the disk ends up holding every key that fits. @return 0 or -errno.
 */
static int bc_fill(struct bc_bench *b, struct bc_result *r)
{
    struct hc_stats st;
    /* get mode reads the memory tier only, so its hot set goes there even with a disk */
    unsigned flags = b->o.disk_path && b->o.mode != BC_MODE_GET ? HC_INSERT_DISK_ONLY : 0;
    void *buf = ioeng_buf_alloc(b->o.value_max);
    char key[BC_KEY_LEN];
    uint64_t drops, t0 = cmn_now_ns();
    int rc = 0;

    if (!buf)
        return -ENOMEM;
    hc_get_stats(b->cache, &st);
    drops = st.admission_drops;
    for (uint64_t id = 0; id < b->o.fill_keys; id++) {
        size_t len = bc_value_len(&b->vg, id), klen = bc_key_format(id, key);
        bc_value_fill(&b->vg, id, buf, len);
        for (unsigned attempt = 0;; attempt++) {
            rc = hc_insert(b->cache, key, klen, buf, len, flags);
            if (rc < 0 && rc != -EAGAIN) {
                fprintf(stderr, "%s: fill: hc_insert key %" PRIu64 ": %s\n", BC_PROG, id,
                        strerror(-rc));
                goto out;
            }
            if (!flags)
                break;
            hc_get_stats(b->cache, &st);
            if (rc == 0 && st.admission_drops == drops)
                break;
            drops = st.admission_drops;
            if (attempt == 100) {
                r->fill_lost++;
                break;
            }
            r->fill_retries++;
            hc_flush(b->cache);
        }
        r->fill_bytes += len;
        r->fill_keys++;
    }
    rc = flags ? hc_flush(b->cache) : 0;
    if (rc < 0)
        fprintf(stderr, "%s: fill: hc_flush: %s\n", BC_PROG, strerror(-rc));
out:
    r->fill_s = (double)(cmn_now_ns() - t0) / 1e9;
    ioeng_buf_free(buf);
    return rc;
}

static int bc_open(struct bc_bench *b, double *secs)
{
    struct hc_conf conf;
    char identity[128];
    uint64_t t0 = cmn_now_ns();
    bc_conf(b, &conf, identity, sizeof(identity));
    int rc = hc_create(&conf, &b->cache);
    *secs = (double)(cmn_now_ns() - t0) / 1e9;
    if (rc < 0)
        fprintf(stderr, "%s: hc_create: %s\n", BC_PROG, strerror(-rc));
    return rc;
}

/* Progress lines on stderr while the run lasts. */
static void bc_wait_run(struct bc_bench *b, uint64_t start)
{
    uint64_t end = start + b->o.duration_ns, last_ops = 0, last = start;
    uint64_t step = b->o.report_ns ? b->o.report_ns : b->o.duration_ns;

    for (;;) {
        uint64_t now = cmn_now_ns();
        if (now >= end)
            break;
        uint64_t d = CMN_MIN(step - (now - last) % step, end - now);
        struct timespec ts = {(time_t)(d / 1000000000ull), (long)(d % 1000000000ull)};
        nanosleep(&ts, NULL);
        if (!b->o.report_ns)
            continue;
        now = cmn_now_ns();
        uint64_t ops = 0;
        for (unsigned i = 0; i < b->nth; i++)
            ops += atomic_load_explicit(&b->th[i].ops, memory_order_relaxed);
        fprintf(stderr, "[%7.1fs] %.0f ops/s\n", (double)(now - start) / 1e9,
                (double)(ops - last_ops) * 1e9 / (double)(now - last));
        last_ops = ops;
        last = now;
    }
}

static int bc_run(struct bc_bench *b, struct bc_result *r)
{
    unsigned n = b->o.readers + b->o.writers;
    int rc = 0;

    b->th = calloc(n, sizeof(*b->th));
    if (!b->th)
        return -ENOMEM;
    for (unsigned i = 0; i < n; i++) {
        rc = bc_thread_init(b, &b->th[i], i, i >= b->o.readers);
        b->nth = i + 1;
        if (rc < 0)
            goto out;
    }
    hc_get_stats(b->cache, &r->s0);
    double cpu0 = bc_cpu_seconds();
    uint64_t t0 = cmn_now_ns();
    unsigned started = 0;
    for (; started < n; started++) {
        rc = -pthread_create(&b->th[started].tid, NULL, bc_thread_main, &b->th[started]);
        if (rc < 0)
            break;
    }
    if (rc == 0)
        bc_wait_run(b, t0);
    atomic_store(&b->stop, true);
    for (unsigned i = 0; i < started; i++)
        pthread_join(b->th[i].tid, NULL);
    r->run_s = (double)(cmn_now_ns() - t0) / 1e9;
    r->cpu_s = bc_cpu_seconds() - cpu0;
    hc_get_stats(b->cache, &r->s1);

    for (unsigned i = 0; i < n; i++) {
        struct bc_thread *t = &b->th[i];
        if (t->writer) {
            r->writes += atomic_load(&t->ops);
            r->write_bytes += t->bytes;
            r->write_errors += t->errors;
            bc_hist_merge(r->wlat, t->hist);
            continue;
        }
        r->reads += atomic_load(&t->ops);
        r->read_bytes += t->bytes;
        r->misses += t->misses;
        r->read_errors += t->errors;
        r->verified += t->verified;
        r->mismatches += t->mismatches;
        r->handoff_ns += t->handoff_ns;
        r->handoffs += t->handoffs;
        r->disk_read_bytes += t->disk_bytes;
        for (int s = 0; s < 4; s++)
            r->by_src[s] += t->by_src[s];
        bc_hist_merge(r->rlat, t->hist);
    }
out:
    for (unsigned i = 0; i < b->nth; i++)
        bc_thread_free(&b->th[i]);
    free(b->th);
    b->th = NULL;
    b->nth = 0;
    return rc;
}

/* ---- output ---- */

struct bc_field {
    const char *name;
    const char *str; /* NULL: numeric */
    double num;
    int prec;
};

struct bc_report {
    struct bc_field f[96];
    unsigned n;
};

static void bc_rep_num(struct bc_report *rep, const char *name, double v, int prec)
{
    if (rep->n < CMN_ARRAY_SIZE(rep->f))
        rep->f[rep->n++] = (struct bc_field){name, NULL, v, prec};
}

static void bc_rep_str(struct bc_report *rep, const char *name, const char *v)
{
    if (rep->n < CMN_ARRAY_SIZE(rep->f))
        rep->f[rep->n++] = (struct bc_field){name, v ? v : "", 0, 0};
}

static double bc_ratio(uint64_t a, uint64_t b)
{
    return b ? (double)a / (double)b : 0.0;
}

static void bc_build_report(const struct bc_bench *b, const struct bc_result *r,
                            struct bc_report *rep)
{
    const struct bc_opts *o = &b->o;
    const struct hc_stats *s0 = &r->s0, *s1 = &r->s1;
    uint64_t done = r->by_src[0] + r->by_src[1] + r->by_src[2] + r->by_src[3] + r->misses;
    double secs = r->run_s > 0 ? r->run_s : 1.0;

    bc_rep_str(rep, "mode", bc_mode_names[o->mode]);
    bc_rep_str(rep, "engine", o->disk_path ? o->engine : "none");
    bc_rep_str(rep, "policy", o->policy);
    bc_rep_str(rep, "dist", o->dist == BC_DIST_ZIPF ? "zipf" : "uniform");
    bc_rep_num(rep, "zipf_s", o->dist == BC_DIST_ZIPF ? o->zipf_s : 0, 3);
    bc_rep_num(rep, "keys", (double)o->keys, 0);
    bc_rep_num(rep, "value_size", (double)o->value_size, 0);
    bc_rep_num(rep, "value_size_max", (double)o->value_max, 0);
    bc_rep_num(rep, "read_size", (double)o->read_size, 0);
    bc_rep_num(rep, "partial", o->read_size ? o->partial : 0, 0);
    bc_rep_num(rep, "readers", o->readers, 0);
    bc_rep_num(rep, "writers", o->writers, 0);
    bc_rep_num(rep, "inflight", o->inflight, 0);
    bc_rep_num(rep, "io_depth", o->io_depth, 0);
    bc_rep_num(rep, "mem_capacity", (double)o->mem, 0);
    bc_rep_num(rep, "disk_capacity", o->disk_path ? (double)s1->disk_capacity : 0, 0);
    bc_rep_num(rep, "block_size", (double)o->block_size, 0);
    bc_rep_num(rep, "compression", o->compression, 0);
    bc_rep_num(rep, "compressibility", o->compressibility, 2);
    bc_rep_num(rep, "direct_io", o->direct_io, 0);
    bc_rep_num(rep, "origin_latency_us", (double)o->origin_latency_ns / 1e3, 1);
    bc_rep_num(rep, "fill_keys", (double)r->fill_keys, 0);
    bc_rep_num(rep, "fill_s", r->fill_s, 3);
    bc_rep_num(rep, "fill_mb_s", r->fill_s > 0 ? (double)r->fill_bytes / r->fill_s / 1e6 : 0, 1);
    bc_rep_num(rep, "fill_retries", (double)r->fill_retries, 0);
    bc_rep_num(rep, "fill_lost", (double)r->fill_lost, 0);
    bc_rep_num(rep, "create_s", r->create_s, 3);
    bc_rep_num(rep, "open_recovered_entries", (double)r->open_entries, 0);
    bc_rep_num(rep, "open_recovery_ms", (double)r->open_recovery_ns / 1e6, 3);
    bc_rep_num(rep, "reopen_s", r->reopen_s, 3);
    bc_rep_num(rep, "recovered_entries", (double)r->recovered_entries, 0);
    bc_rep_num(rep, "recovery_ms", (double)r->recovery_ns / 1e6, 3);
    bc_rep_num(rep, "run_s", r->run_s, 3);
    bc_rep_num(rep, "cpu_s", r->cpu_s, 3);
    bc_rep_num(rep, "reads", (double)r->reads, 0);
    bc_rep_num(rep, "read_ops_s", (double)r->reads / secs, 1);
    bc_rep_num(rep, "read_ops_per_cpu_s", r->cpu_s > 0 ? (double)r->reads / r->cpu_s : 0, 1);
    bc_rep_num(rep, "read_mb_s", (double)r->read_bytes / secs / 1e6, 1);
    bc_rep_num(rep, "disk_hit_mb_s", (double)r->disk_read_bytes / secs / 1e6, 1);
    bc_rep_num(rep, "writes", (double)r->writes, 0);
    bc_rep_num(rep, "write_ops_s", (double)r->writes / secs, 1);
    bc_rep_num(rep, "write_mb_s", (double)r->write_bytes / secs / 1e6, 1);
    bc_rep_num(rep, "hit_mem", bc_ratio(r->by_src[HC_SRC_MEMORY], done), 4);
    bc_rep_num(rep, "hit_disk", bc_ratio(r->by_src[HC_SRC_DISK], done), 4);
    bc_rep_num(rep, "origin", bc_ratio(r->by_src[HC_SRC_ORIGIN], done), 4);
    bc_rep_num(rep, "merged", bc_ratio(r->by_src[HC_SRC_MERGED], done), 4);
    bc_rep_num(rep, "miss", bc_ratio(r->misses, done), 4);
    bc_rep_num(rep, "read_errors", (double)r->read_errors, 0);
    bc_rep_num(rep, "write_errors", (double)r->write_errors, 0);
    bc_rep_num(rep, "origin_calls", (double)r->origin_calls, 0);
    static const struct {
        const char *r, *w;
        double p;
    } pcts[] = {{"read_p50_us", "write_p50_us", 50},     {"read_p90_us", "write_p90_us", 90},
                {"read_p99_us", "write_p99_us", 99},     {"read_p999_us", "write_p999_us", 99.9},
                {"read_max_us", "write_max_us", 100}};
    for (size_t i = 0; i < CMN_ARRAY_SIZE(pcts); i++)
        bc_rep_num(rep, pcts[i].r, (double)bc_hist_percentile(r->rlat, pcts[i].p) / 1e3, 3);
    bc_rep_num(rep, "read_mean_us", bc_hist_mean(r->rlat) / 1e3, 3);
    bc_rep_num(rep, "handoff_mean_us",
               r->handoffs ? (double)r->handoff_ns / (double)r->handoffs / 1e3 : 0, 3);
    for (size_t i = 0; i < CMN_ARRAY_SIZE(pcts); i++)
        bc_rep_num(rep, pcts[i].w, (double)bc_hist_percentile(r->wlat, pcts[i].p) / 1e3, 3);
    bc_rep_num(rep, "mem_used", (double)s1->mem_used, 0);
    bc_rep_num(rep, "mem_limit", (double)s1->mem_limit, 0);
    bc_rep_num(rep, "disk_used", (double)s1->disk_used, 0);
    bc_rep_num(rep, "disk_entries", (double)s1->disk_entries, 0);
    bc_rep_num(rep, "disk_index_bytes", (double)s1->disk_index_bytes, 0);
    bc_rep_num(rep, "index_bytes_per_entry", bc_ratio(s1->disk_index_bytes, s1->disk_entries), 1);
    bc_rep_num(rep, "mem_overcommits", (double)(s1->mem_overcommits - s0->mem_overcommits), 0);
    bc_rep_num(rep, "admission_drops", (double)(s1->admission_drops - s0->admission_drops), 0);
    bc_rep_num(rep, "checksum_failures",
               (double)(s1->checksum_failures - s0->checksum_failures), 0);
    bc_rep_num(rep, "disk_read_errors", (double)(s1->disk_read_errors - s0->disk_read_errors), 0);
    bc_rep_num(rep, "disk_write_errors",
               (double)(s1->disk_write_errors - s0->disk_write_errors), 0);
    bc_rep_num(rep, "disk_bytes_read", (double)(s1->disk_bytes_read - s0->disk_bytes_read), 0);
    bc_rep_num(rep, "disk_partial_hits",
               (double)(s1->disk_partial_hits - s0->disk_partial_hits), 0);
    bc_rep_num(rep, "disk_bytes_written",
               (double)(s1->disk_bytes_written - s0->disk_bytes_written), 0);
    bc_rep_num(rep, "compressed_blocks", (double)s1->compressed_blocks, 0);
    bc_rep_num(rep, "compressed_saved_bytes", (double)s1->compressed_saved_bytes, 0);
    bc_rep_num(rep, "verified", (double)r->verified, 0);
    bc_rep_num(rep, "mismatches", (double)r->mismatches, 0);
    bc_rep_num(rep, "close_s", r->close_s, 3);
}

static void bc_print_num(FILE *f, const struct bc_field *x)
{
    if (x->prec == 0)
        fprintf(f, "%.0f", x->num);
    else
        fprintf(f, "%.*f", x->prec, x->num);
}

static void bc_print_machine(FILE *f, const struct bc_report *rep, enum bc_out out)
{
    if (out == BC_OUT_CSV) {
        for (unsigned i = 0; i < rep->n; i++)
            fprintf(f, "%s%s", i ? "," : "", rep->f[i].name);
        fputc('\n', f);
        for (unsigned i = 0; i < rep->n; i++) {
            if (i)
                fputc(',', f);
            if (rep->f[i].str)
                fputs(rep->f[i].str, f);
            else
                bc_print_num(f, &rep->f[i]);
        }
        fputc('\n', f);
        return;
    }
    fputc('{', f);
    for (unsigned i = 0; i < rep->n; i++) {
        fprintf(f, "%s\"%s\": ", i ? ", " : "", rep->f[i].name);
        if (rep->f[i].str)
            fprintf(f, "\"%s\"", rep->f[i].str); /* our strings never need escaping */
        else
            bc_print_num(f, &rep->f[i]);
    }
    fputs("}\n", f);
}

static void bc_print_lat(FILE *f, const char *what, const struct bc_hist *h)
{
    if (!h->n)
        return;
    fprintf(f,
            "  %-6s latency us: p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f  mean %.1f  "
            "(%" PRIu64 " samples)\n",
            what, (double)bc_hist_percentile(h, 50) / 1e3, (double)bc_hist_percentile(h, 90) / 1e3,
            (double)bc_hist_percentile(h, 99) / 1e3, (double)bc_hist_percentile(h, 99.9) / 1e3,
            (double)h->max / 1e3, bc_hist_mean(h) / 1e3, h->n);
}

static void bc_print_text(FILE *f, const struct bc_bench *b, const struct bc_result *r)
{
    const struct bc_opts *o = &b->o;
    const struct hc_stats *s0 = &r->s0, *s1 = &r->s1;
    char a[32], c[32];
    uint64_t done = r->by_src[0] + r->by_src[1] + r->by_src[2] + r->by_src[3] + r->misses;
    double secs = r->run_s > 0 ? r->run_s : 1.0;

    fprintf(f, "%s: mode=%s policy=%s keys=%" PRIu64 " dist=%s", BC_PROG, bc_mode_names[o->mode],
            o->policy, o->keys, o->dist == BC_DIST_ZIPF ? "zipf" : "uniform");
    if (o->dist == BC_DIST_ZIPF)
        fprintf(f, "(s=%g)", o->zipf_s);
    fprintf(f, " value=%s", cmn_fmt_size(o->value_size, a, sizeof(a)));
    if (o->value_max != o->value_size)
        fprintf(f, "..%s", cmn_fmt_size(o->value_max, a, sizeof(a)));
    if (o->read_size)
        fprintf(f, " read=%s partial=%d", cmn_fmt_size(o->read_size, a, sizeof(a)), o->partial);
    fprintf(f, " readers=%ux%u writers=%u mem=%s", o->readers, o->inflight, o->writers,
            cmn_fmt_size(o->mem, a, sizeof(a)));
    if (o->disk_path)
        fprintf(f, " disk=%s engine=%s io_depth=%u direct=%d compression=%d",
                cmn_fmt_size(s1->disk_capacity, c, sizeof(c)), o->engine, o->io_depth,
                o->direct_io, o->compression);
    fputc('\n', f);
    if (r->open_entries)
        fprintf(f, "open:     recovered %" PRIu64 " entries of an existing cache in %.1f ms "
                   "(hc_create %.1f ms)\n",
                r->open_entries, (double)r->open_recovery_ns / 1e6, r->create_s * 1e3);
    if (r->fill_keys)
        fprintf(f, "fill:     %" PRIu64 " keys, %s in %.2f s = %.0f MB/s (%" PRIu64
                   " retries after admission drops, %" PRIu64 " lost)\n",
                r->fill_keys, cmn_fmt_size(r->fill_bytes, a, sizeof(a)), r->fill_s,
                r->fill_s > 0 ? (double)r->fill_bytes / r->fill_s / 1e6 : 0.0, r->fill_retries,
                r->fill_lost);
    if (o->reopen)
        fprintf(f, "reopen:   hc_destroy + hc_create %.1f ms; recovered %" PRIu64
                   " entries, recovery_ns %.1f ms\n",
                r->reopen_s * 1e3, r->recovered_entries, (double)r->recovery_ns / 1e6);
    if (!o->duration_ns) {
        fprintf(f, "memory:   used %s of %s\n", cmn_fmt_size(s1->mem_used, a, sizeof(a)),
                cmn_fmt_size(s1->mem_limit, c, sizeof(c)));
        if (o->disk_path)
            fprintf(f, "disk:     used %s, %" PRIu64 " entries, index %.1f bytes/entry\n",
                    cmn_fmt_size(s1->disk_used, a, sizeof(a)), s1->disk_entries,
                    bc_ratio(s1->disk_index_bytes, s1->disk_entries));
        return;
    }
    fprintf(f, "run:      %.2f s, process CPU %.2f s (%.0f%% of one core)\n", r->run_s, r->cpu_s,
            100.0 * r->cpu_s / secs);
    if (o->readers)
        fprintf(f, "  reads:  %" PRIu64 " ops, %.0f ops/s, %.1f MB/s, %.0f ops per CPU-second\n",
                r->reads, (double)r->reads / secs, (double)r->read_bytes / secs / 1e6,
                r->cpu_s > 0 ? (double)r->reads / r->cpu_s : 0.0);
    if (o->writers)
        fprintf(f, "  writes: %" PRIu64 " ops, %.0f ops/s, %.1f MB/s\n", r->writes,
                (double)r->writes / secs, (double)r->write_bytes / secs / 1e6);
    if (o->disk_path && o->readers)
        fprintf(f, "  disk hits alone: %.1f MB/s\n", (double)r->disk_read_bytes / secs / 1e6);
    if (o->readers)
        fprintf(f, "  served: memory %.2f%%  disk %.2f%%  origin %.2f%%  merged %.2f%%  "
                   "miss %.2f%%  errors %" PRIu64 "\n",
                100 * bc_ratio(r->by_src[HC_SRC_MEMORY], done),
                100 * bc_ratio(r->by_src[HC_SRC_DISK], done),
                100 * bc_ratio(r->by_src[HC_SRC_ORIGIN], done),
                100 * bc_ratio(r->by_src[HC_SRC_MERGED], done), 100 * bc_ratio(r->misses, done),
                r->read_errors);
    bc_print_lat(f, "read", r->rlat);
    if (r->handoffs)
        fprintf(f, "  done callback to reader: mean %.1f us (not in the read latency)\n",
                (double)r->handoff_ns / (double)r->handoffs / 1e3);
    bc_print_lat(f, "write", r->wlat);
    fprintf(f, "memory:   used %s of %s (in flight %s, write queue %s); %" PRIu64
               " fetches started over budget\n",
            cmn_fmt_size(s1->mem_used, a, sizeof(a)), cmn_fmt_size(s1->mem_limit, c, sizeof(c)),
            cmn_fmt_size(s1->inflight_bytes, (char[32]){0}, 32),
            cmn_fmt_size(s1->write_queue_bytes, (char[32]){0}, 32),
            s1->mem_overcommits - s0->mem_overcommits);
    if (o->disk_path) {
        fprintf(f, "disk:     used %s, %" PRIu64 " entries, index %.1f bytes/entry; "
                   "read %s, wrote %s during the run; %" PRIu64 " partial hits\n",
                cmn_fmt_size(s1->disk_used, a, sizeof(a)), s1->disk_entries,
                bc_ratio(s1->disk_index_bytes, s1->disk_entries),
                cmn_fmt_size(s1->disk_bytes_read - s0->disk_bytes_read, c, sizeof(c)),
                cmn_fmt_size(s1->disk_bytes_written - s0->disk_bytes_written, (char[32]){0}, 32),
                s1->disk_partial_hits - s0->disk_partial_hits);
        if (o->compression)
            fprintf(f, "          %" PRIu64 " blocks compressed, %s saved\n",
                    s1->compressed_blocks,
                    cmn_fmt_size(s1->compressed_saved_bytes, a, sizeof(a)));
    }
    fprintf(f, "checks:   admission drops %" PRIu64 ", checksum failures %" PRIu64
               ", disk read errors %" PRIu64 ", verified %" PRIu64 " reads, %" PRIu64
               " mismatches\n",
            s1->admission_drops - s0->admission_drops,
            s1->checksum_failures - s0->checksum_failures,
            s1->disk_read_errors - s0->disk_read_errors, r->verified, r->mismatches);
}

/* ---- main ---- */

int main(int argc, char **argv)
{
    struct bc_bench b;
    struct bc_result r;
    int rc;

    memset(&b, 0, sizeof(b));
    memset(&r, 0, sizeof(r));
    tlog_set_level(TLOG_WARNING);
    bc_parse_args(argc, argv, &b.o);
    if (b.o.trace_mode) {
        rc = bc_trace_replay(&b.o.trace);
        return rc == -EINVAL ? 2 : rc < 0 ? 1 : 0;
    }

    if (bc_keygen_init(&b.kg, b.o.dist, b.o.keys, b.o.zipf_s) < 0 ||
        bc_valgen_init(&b.vg, b.o.value_size, b.o.value_max, b.o.compressibility) < 0) {
        fprintf(stderr, "%s: bad workload parameters\n", BC_PROG);
        return 2;
    }
    r.rlat = malloc(sizeof(*r.rlat));
    r.wlat = malloc(sizeof(*r.wlat));
    if (!r.rlat || !r.wlat)
        return 1;
    bc_hist_init(r.rlat);
    bc_hist_init(r.wlat);
    bc_origin_init(&b);

    if (b.o.fresh) {
        struct stat st;
        if (stat(b.o.disk_path, &st) == 0) {
            if (!S_ISREG(st.st_mode))
                bc_bad("fresh", "'%s' is not a regular file; refusing to delete it",
                       b.o.disk_path);
            if (unlink(b.o.disk_path) < 0) {
                fprintf(stderr, "%s: unlink %s: %s\n", BC_PROG, b.o.disk_path, strerror(errno));
                return 1;
            }
        }
    }
    if (bc_open(&b, &r.create_s) < 0)
        return 1;
    hc_get_stats(b.cache, &r.s1);
    r.open_entries = r.recovered_entries = r.s1.recovered_entries;
    r.open_recovery_ns = r.recovery_ns = r.s1.recovery_ns;
    rc = 0;
    if (b.o.fill)
        rc = bc_fill(&b, &r);
    if (rc == 0 && b.o.reopen) {
        hc_destroy(b.cache);
        b.cache = NULL;
        rc = bc_open(&b, &r.reopen_s);
        if (rc == 0) {
            hc_get_stats(b.cache, &r.s1);
            r.recovered_entries = r.s1.recovered_entries;
            r.recovery_ns = r.s1.recovery_ns;
        }
    }
    if (rc == 0)
        rc = bc_origin_start(&b);
    if (rc == 0 && b.o.duration_ns)
        rc = bc_run(&b, &r);
    else if (rc == 0)
        hc_get_stats(b.cache, &r.s1); /* fill/reopen only: report the state after them */
    bc_origin_stop(&b);
    r.origin_calls = atomic_load(&b.origin_calls);
    if (b.cache) {
        uint64_t t0 = cmn_now_ns();
        hc_destroy(b.cache);
        r.close_s = (double)(cmn_now_ns() - t0) / 1e9;
    }
    if (rc < 0) {
        fprintf(stderr, "%s: %s\n", BC_PROG, strerror(-rc));
        return 1;
    }
    if (b.o.out == BC_OUT_TEXT) {
        bc_print_text(stdout, &b, &r);
    } else {
        struct bc_report rep = {.n = 0};
        bc_build_report(&b, &r, &rep);
        bc_print_machine(stdout, &rep, b.o.out);
    }
    if (b.o.mode == BC_MODE_DISK && r.reads && r.misses == r.reads)
        fprintf(stderr, "%s: every read missed: fill the disk tier first (--fill)\n", BC_PROG);
    if (atomic_load(&b.origin_too_big))
        fprintf(stderr, "%s: %" PRIu64 " origin fetches had a buffer smaller than the value\n",
                BC_PROG, (uint64_t)atomic_load(&b.origin_too_big));
    free(r.rlat);
    free(r.wlat);
    if (r.mismatches)
        return 1;
    if (r.reads && r.read_errors == r.reads)
        return 1;
    return 0;
}
