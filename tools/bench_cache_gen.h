/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench_cache_gen.h: workload pieces of tierfs-bench-cache that are worth unit-testing on
 * their own: key popularity (uniform, zipf), deterministic values with a compressibility
 * knob, a log-bucketed latency histogram, synthetic traces and small parsers.
 *
 * Nothing here knows about the cache; everything is plain data plus a caller-owned PRNG
 * state (a non-zero uint64_t), so each thread owns its generators and no locking is needed.
 */
#ifndef TIERFS_TOOLS_BENCH_CACHE_GEN_H
#define TIERFS_TOOLS_BENCH_CACHE_GEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- random numbers ---- */

/* @return a double uniform in [0, 1) drawn from @rng (cmn_rand64 state). */
double bc_rand_unit(uint64_t *rng);
/* @return an integer uniform in [0, n) (n > 0), without modulo bias worth measuring. */
uint64_t bc_rand_below(uint64_t *rng, uint64_t n);

/* ---- zipf ---- */

/*
 * Zipf over ranks 1..n with P(k) proportional to k^-s, sampled by rejection-inversion
 * (Hoermann & Derflinger 1996): O(1) memory and a few exp/log per draw, for any n and s > 0.
 * The struct is read-only after bc_zipf_init and may be shared by threads.
 */
struct bc_zipf {
    uint64_t n;
    double s;
    double h_x1;     /* H(1.5) - 1 */
    double h_n;      /* H(n + 0.5) */
    double s_thresh; /* acceptance shortcut: 2 - Hinv(H(2.5) - h(2)) */
};
/* @return 0, or -EINVAL when n == 0 or s is not a finite number > 0. */
int bc_zipf_init(struct bc_zipf *z, uint64_t n, double s);
/* @return a rank in [0, n): 0 is the most popular. */
uint64_t bc_zipf_next(const struct bc_zipf *z, uint64_t *rng);
/* @return the exact probability of rank @k (0-based), by summing (O(n); for tests). */
double bc_zipf_pmf(uint64_t n, double s, uint64_t k);

/* ---- key popularity ---- */

enum bc_dist { BC_DIST_UNIFORM = 0, BC_DIST_ZIPF };

struct bc_keygen {
    enum bc_dist dist;
    uint64_t n;          /* key space: ids are 0..n-1 */
    struct bc_zipf zipf; /* when dist == BC_DIST_ZIPF */
};
/* @return 0 or -EINVAL (n == 0, bad s for zipf). */
int bc_keygen_init(struct bc_keygen *g, enum bc_dist dist, uint64_t n, double s);
/* @return the next key id in [0, n). Zipf ids are ranks: id 0 is the hottest key. */
uint64_t bc_keygen_next(const struct bc_keygen *g, uint64_t *rng);

/* Longest key bc_key_format writes (without a terminator). */
#define BC_KEY_LEN 19
/* Format key id @id as "bc:" + 16 hex digits into @buf (>= BC_KEY_LEN bytes, not
 * NUL-terminated). @return BC_KEY_LEN. */
size_t bc_key_format(uint64_t id, char *buf);
/* Parse what bc_key_format wrote. @return 0 and *id, or -EINVAL. */
int bc_key_parse(const char *buf, size_t len, uint64_t *id);

/* ---- values ---- */

/*
 * Values are a pure function of (key id, length): a verifier can regenerate them.
 * Each 256-byte chunk starts with `rand_bytes` pseudo-random bytes and is padded with one
 * byte that depends on the key, so lz4 shrinks a value to roughly (1 - compressibility).
 */
#define BC_VALUE_CHUNK 256
struct bc_valgen {
    uint64_t len_min, len_max; /* value length per key, uniform in [min, max] by key hash */
    unsigned rand_bytes;       /* per chunk, multiple of 8, <= BC_VALUE_CHUNK */
};
/* @compressibility in [0, 1]: 0 = incompressible, 1 = one repeated byte.
 * @return 0 or -EINVAL (len_min > len_max, len_min == 0, compressibility outside [0,1]). */
int bc_valgen_init(struct bc_valgen *v, uint64_t len_min, uint64_t len_max, double compressibility);
/* @return the value length of key @id. */
size_t bc_value_len(const struct bc_valgen *v, uint64_t id);
/* Write the first @len bytes of the value of key @id into @buf. */
void bc_value_fill(const struct bc_valgen *v, uint64_t id, void *buf, size_t len);
/* Compare @buf (@len bytes) with the value of key @id.
 * @return -1 when equal (including the length), else the first differing offset. */
ssize_t bc_value_check(const struct bc_valgen *v, uint64_t id, const void *buf, size_t len);
/* Compare @buf (@len bytes) with bytes [@off, @off + @len) of the value of key @id; @off
 * is a multiple of BC_VALUE_CHUNK (a partial cache entry starts at a 4 KiB chunk).
 * @return -1 when equal and inside the value, else the first differing value offset. */
ssize_t bc_value_check_at(const struct bc_valgen *v, uint64_t id, size_t off, const void *buf,
                          size_t len);

/* ---- latency histogram ---- */

/*
 * HDR-style: exact below 2^BC_HIST_SUB_BITS, then 2^BC_HIST_SUB_BITS linear sub-buckets per
 * power of two, so any recorded value is reported within 1/128 (0.8%) of itself. Covers
 * the whole uint64_t range. One per thread; merge at the end. Not thread safe.
 */
#define BC_HIST_SUB_BITS 7
#define BC_HIST_BUCKETS ((65 - BC_HIST_SUB_BITS) << BC_HIST_SUB_BITS)
struct bc_hist {
    uint64_t n, sum, min, max;
    uint64_t counts[BC_HIST_BUCKETS];
};
void bc_hist_init(struct bc_hist *h);
/* @return the bucket index of @v (exposed for tests). */
unsigned bc_hist_index(uint64_t v);
/* @return the largest value that falls in bucket @idx. */
uint64_t bc_hist_bucket_hi(unsigned idx);
static inline void bc_hist_record(struct bc_hist *h, uint64_t v)
{
    h->counts[bc_hist_index(v)]++;
    h->n++;
    h->sum += v;
    if (v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
}
/* Add @src's samples into @dst. */
void bc_hist_merge(struct bc_hist *dst, const struct bc_hist *src);
/* @p in [0, 100]. @return the value at percentile @p (upper edge of its bucket, clamped to
 * the exact max), or 0 for an empty histogram. */
uint64_t bc_hist_percentile(const struct bc_hist *h, double p);
/* @return the mean, or 0 for an empty histogram. */
double bc_hist_mean(const struct bc_hist *h);

/* ---- synthetic traces ---- */

/*
 * A zipf (or uniform when s == 0) stream over ids [0, n) interrupted by scans: with
 * probability scan_frac / scan_len a request starts a run of scan_len consecutive ids taken
 * from [n, 2n) (cold keys that pollute recency-based policies), so about scan_frac of all
 * requests belong to scans.
 */
struct bc_trace_conf {
    uint64_t n;        /* hot key space */
    double s;          /* zipf exponent, 0 = uniform */
    double scan_frac;  /* in [0, 1) */
    uint64_t scan_len; /* >= 1 */
    uint64_t seed;     /* non-zero */
};
/* Fill ids[0..len-1]. @return 0 or -EINVAL (bad conf). */
int bc_trace_gen(const struct bc_trace_conf *conf, uint64_t *ids, size_t len);

/* ---- parsers ---- */

/* Parse a duration with a unit: ns, us, ms, s (default), m, h; decimals allowed ("1.5ms").
 * @return 0 and *out_ns, or -EINVAL. */
int bc_parse_duration_ns(const char *s, uint64_t *out_ns);
/* Parse a finite double within [lo, hi]. @return 0 or -EINVAL. */
int bc_parse_double(const char *s, double lo, double hi, double *out);

/* ---- trace replay (bench_cache_trace.c: links the memory tier, not the generator lib) ---- */

enum bc_out { BC_OUT_TEXT = 0, BC_OUT_CSV, BC_OUT_JSON };

struct bc_trace_run {
    const char *path; /* one key per line; NULL = generate from gen */
    struct bc_trace_conf gen;
    size_t gen_len;        /* requests to generate */
    const char *save_path; /* write the generated trace here (NULL = don't) */
    const char *sizes;     /* "1000,5%": entry counts or percentages of unique keys */
    uint64_t entry_bytes;  /* memory charged per entry (policies size queues in bytes) */
    enum bc_out out;
};
/* Replay the trace through every eviction policy at every size; print miss ratios to
 * stdout. @return 0, or -errno with a message on stderr. */
int bc_trace_replay(const struct bc_trace_run *r);

#endif
