/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench_cache.h: what the parts of tierfs-bench-cache share: bench_cache.c (the run),
 * bench_cache_opts.c (the command line), bench_cache_report.c (text, CSV and JSON output),
 * bench_cache_trace.c (policy trace replay, declared in bench_cache_gen.h).
 */
#ifndef TIERFS_TOOLS_BENCH_CACHE_H
#define TIERFS_TOOLS_BENCH_CACHE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "hybridcache/hybridcache.h"
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
    uint64_t read_size; /* 0: whole blocks; else random aligned reads this big */
    int partial;        /* with read_size: hc_fetch_range (1) or hc_fetch (0) */
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
    uint64_t off; /* --read-size: where in the value this read starts */
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

/* What a run measured (bench_cache.c fills it, bench_cache_report.c prints it). */
struct bc_result {
    double create_s, fill_s, reopen_s, run_s, cpu_s, close_s;
    uint64_t fill_keys, fill_bytes, fill_retries, fill_lost;
    uint64_t open_entries, open_recovery_ns; /* what the first hc_create recovered */
    uint64_t recovered_entries, recovery_ns; /* the last hc_create (after --reopen) */
    uint64_t reads, read_bytes, writes, write_bytes;
    uint64_t by_src[4], misses, read_errors, write_errors, verified, mismatches;
    uint64_t handoff_ns, handoffs, disk_read_bytes;
    struct bc_hist *rlat, *wlat;
    struct hc_stats s0, s1;
    uint64_t origin_calls;
};

/* The report: named values in print order (text, CSV, JSON). */
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

/* ---- between the files ---- */

/* bench_cache_opts.c: print one line naming the option and exit 2. */
void bc_bad(const char *opt, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));

/* bench_cache_opts.c */
void bc_parse_args(int argc, char **argv, struct bc_opts *o);

/* bench_cache_report.c: the report of a run, printed for --output csv/json (machine) or
 * as text. */
void bc_build_report(const struct bc_bench *b, const struct bc_result *r, struct bc_report *rep);
void bc_print_machine(FILE *f, const struct bc_report *rep, enum bc_out out);
void bc_print_text(FILE *f, const struct bc_bench *b, const struct bc_result *r);

#endif
