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

#include "tools/bench_cache.h"

/* ---- origin ---- */

/* Write the value of @id into @buf and complete the fetch. */
static void bc_origin_serve(struct bc_bench *b, struct hc_flight *ctx, void *buf, size_t cap,
                            uint64_t id)
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
    ssize_t off =
        t->b->o.read_size
            ? bc_value_check_at(&t->b->vg, id, hc_entry_off(e), hc_entry_data(e), hc_entry_len(e))
            : bc_value_check(&t->b->vg, id, hc_entry_data(e), hc_entry_len(e));
    t->verified++;
    if (off >= 0) {
        if (t->mismatches++ == 0)
            fprintf(stderr, "%s: key %" PRIu64 ": wrong byte at offset %zd of %zu\n", BC_PROG, id,
                    off, hc_entry_len(e));
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
                bc_bad("fresh", "'%s' is not a regular file; refusing to delete it", b.o.disk_path);
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
