/* SPDX-License-Identifier: Apache-2.0 */
/* bench_cache_gen.c: key popularity, values, histograms and traces for tierfs-bench-cache. */
#include "tools/bench_cache_gen.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

/* ---- random numbers ---- */

double bc_rand_unit(uint64_t *rng)
{
    /* 53 random bits -> [0, 1) */
    return (double)(cmn_rand64(rng) >> 11) * (1.0 / 9007199254740992.0);
}

uint64_t bc_rand_below(uint64_t *rng, uint64_t n)
{
    /* Lemire's multiply-shift: bias below 2^-64 * n, far under what a benchmark can see. */
    return (uint64_t)(((__uint128_t)cmn_rand64(rng) * n) >> 64);
}

/* splitmix64 finaliser: a bijective mixer, used to derive value words and lengths. */
static inline uint64_t bc_mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* ---- zipf by rejection-inversion ---- */

/* log1p(x) / x, continuous at 0 */
static double bc_zipf_helper1(double x)
{
    if (fabs(x) > 1e-8)
        return log1p(x) / x;
    return 1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x));
}

/* expm1(x) / x, continuous at 0 */
static double bc_zipf_helper2(double x)
{
    if (fabs(x) > 1e-8)
        return expm1(x) / x;
    return 1.0 + x * 0.5 * (1.0 + x * (1.0 / 3.0) * (1.0 + 0.25 * x));
}

/* h(x) = x^-s */
static double bc_zipf_h(double s, double x)
{
    return exp(-s * log(x));
}

/* H(x) = integral of h from 1 to x: (x^(1-s) - 1) / (1 - s), or log(x) when s == 1 */
static double bc_zipf_hint(double s, double x)
{
    double lx = log(x);
    return bc_zipf_helper2((1.0 - s) * lx) * lx;
}

/* the inverse of H */
static double bc_zipf_hint_inv(double s, double x)
{
    double t = x * (1.0 - s);
    if (t < -1.0)
        t = -1.0; /* rounding guard: H's range ends at -1/(1-s) for s > 1 */
    return exp(bc_zipf_helper1(t) * x);
}

int bc_zipf_init(struct bc_zipf *z, uint64_t n, double s)
{
    if (n == 0 || !isfinite(s) || s <= 0.0)
        return -EINVAL;
    z->n = n;
    z->s = s;
    z->h_x1 = bc_zipf_hint(s, 1.5) - 1.0;
    z->h_n = bc_zipf_hint(s, (double)n + 0.5);
    z->s_thresh = 2.0 - bc_zipf_hint_inv(s, bc_zipf_hint(s, 2.5) - bc_zipf_h(s, 2.0));
    return 0;
}

uint64_t bc_zipf_next(const struct bc_zipf *z, uint64_t *rng)
{
    for (;;) {
        /* u is uniform in (H(1.5) - 1, H(n + 0.5)]: invert, round to a rank, then accept
         * with the exact ratio (most draws pass the cheap k - x <= s_thresh test). */
        double u = z->h_n + bc_rand_unit(rng) * (z->h_x1 - z->h_n);
        double x = bc_zipf_hint_inv(z->s, u);
        double kd = floor(x + 0.5);
        uint64_t k;
        if (kd < 1.0)
            k = 1;
        else if (kd > (double)z->n)
            k = z->n;
        else
            k = (uint64_t)kd;
        if ((double)k - x <= z->s_thresh ||
            u >= bc_zipf_hint(z->s, (double)k + 0.5) - bc_zipf_h(z->s, (double)k))
            return k - 1;
    }
}

double bc_zipf_pmf(uint64_t n, double s, uint64_t k)
{
    double sum = 0.0;
    for (uint64_t i = n; i >= 1; i--) /* smallest terms first, for accuracy */
        sum += pow((double)i, -s);
    return pow((double)(k + 1), -s) / sum;
}

/* ---- key popularity ---- */

int bc_keygen_init(struct bc_keygen *g, enum bc_dist dist, uint64_t n, double s)
{
    if (n == 0)
        return -EINVAL;
    memset(g, 0, sizeof(*g));
    g->dist = dist;
    g->n = n;
    if (dist == BC_DIST_ZIPF)
        return bc_zipf_init(&g->zipf, n, s);
    return dist == BC_DIST_UNIFORM ? 0 : -EINVAL;
}

uint64_t bc_keygen_next(const struct bc_keygen *g, uint64_t *rng)
{
    if (g->dist == BC_DIST_ZIPF)
        return bc_zipf_next(&g->zipf, rng);
    return bc_rand_below(rng, g->n);
}

size_t bc_key_format(uint64_t id, char *buf)
{
    static const char hex[] = "0123456789abcdef";
    buf[0] = 'b';
    buf[1] = 'c';
    buf[2] = ':';
    for (int i = 15; i >= 0; i--) {
        buf[3 + i] = hex[id & 15];
        id >>= 4;
    }
    return BC_KEY_LEN;
}

int bc_key_parse(const char *buf, size_t len, uint64_t *id)
{
    uint64_t v = 0;
    if (len != BC_KEY_LEN || memcmp(buf, "bc:", 3) != 0)
        return -EINVAL;
    for (size_t i = 3; i < len; i++) {
        char c = buf[i];
        unsigned d;
        if (c >= '0' && c <= '9')
            d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (unsigned)(c - 'a' + 10);
        else
            return -EINVAL;
        v = (v << 4) | d;
    }
    *id = v;
    return 0;
}

/* ---- values ---- */

int bc_valgen_init(struct bc_valgen *v, uint64_t len_min, uint64_t len_max, double compressibility)
{
    if (len_min == 0 || len_min > len_max || !(compressibility >= 0.0 && compressibility <= 1.0))
        return -EINVAL;
    v->len_min = len_min;
    v->len_max = len_max;
    unsigned r = (unsigned)lround((1.0 - compressibility) * BC_VALUE_CHUNK / 8.0) * 8;
    v->rand_bytes = r > BC_VALUE_CHUNK ? BC_VALUE_CHUNK : r;
    return 0;
}

static inline uint64_t bc_value_seed(uint64_t id)
{
    return bc_mix64(id ^ 0x5bd1e9955bd1e995ull);
}

size_t bc_value_len(const struct bc_valgen *v, uint64_t id)
{
    if (v->len_min == v->len_max)
        return (size_t)v->len_min;
    uint64_t span = v->len_max - v->len_min + 1;
    return (size_t)(v->len_min + bc_mix64(id ^ 0x27d4eb2f165667c5ull) % span);
}

/* Chunk @c of the value with @seed, all BC_VALUE_CHUNK bytes. */
static void bc_value_chunk(const struct bc_valgen *v, uint64_t seed, uint64_t c, unsigned char *out)
{
    uint64_t base = seed + c * (BC_VALUE_CHUNK / 8) * 0x9e3779b97f4a7c15ull;
    unsigned i = 0;
    for (; i < v->rand_bytes; i += 8) {
        uint64_t w = bc_mix64(base + i);
        memcpy(out + i, &w, 8);
    }
    memset(out + i, (int)(seed >> 56), BC_VALUE_CHUNK - i);
}

void bc_value_fill(const struct bc_valgen *v, uint64_t id, void *buf, size_t len)
{
    unsigned char *p = buf, tmp[BC_VALUE_CHUNK];
    uint64_t seed = bc_value_seed(id);
    size_t off = 0;
    for (uint64_t c = 0; off < len; c++, off += BC_VALUE_CHUNK) {
        if (len - off >= BC_VALUE_CHUNK) {
            bc_value_chunk(v, seed, c, p + off);
        } else {
            bc_value_chunk(v, seed, c, tmp);
            memcpy(p + off, tmp, len - off);
        }
    }
}

/* Compare @p (@n bytes) with the value of @seed from chunk @c0 on. @return -1 or the
 * first differing offset in @p. */
static ssize_t bc_value_cmp(const struct bc_valgen *v, uint64_t seed, uint64_t c0,
                            const unsigned char *p, size_t n)
{
    unsigned char tmp[BC_VALUE_CHUNK];
    size_t off = 0;
    for (uint64_t c = c0; off < n; c++, off += BC_VALUE_CHUNK) {
        size_t k = CMN_MIN((size_t)BC_VALUE_CHUNK, n - off);
        bc_value_chunk(v, seed, c, tmp);
        if (memcmp(p + off, tmp, k) != 0) {
            for (size_t i = 0; i < k; i++)
                if (p[off + i] != tmp[i])
                    return (ssize_t)(off + i);
        }
    }
    return -1;
}

ssize_t bc_value_check(const struct bc_valgen *v, uint64_t id, const void *buf, size_t len)
{
    size_t want = bc_value_len(v, id), n = CMN_MIN(want, len);
    ssize_t bad = bc_value_cmp(v, bc_value_seed(id), 0, buf, n);
    if (bad >= 0)
        return bad;
    return want == len ? -1 : (ssize_t)n;
}

ssize_t bc_value_check_at(const struct bc_valgen *v, uint64_t id, size_t off, const void *buf,
                          size_t len)
{
    size_t want = bc_value_len(v, id);
    if (off % BC_VALUE_CHUNK || off + len > want)
        return (ssize_t)CMN_MIN(off, want);
    ssize_t bad = bc_value_cmp(v, bc_value_seed(id), off / BC_VALUE_CHUNK, buf, len);
    return bad >= 0 ? (ssize_t)off + bad : -1;
}

/* ---- latency histogram ---- */

void bc_hist_init(struct bc_hist *h)
{
    memset(h, 0, sizeof(*h));
    h->min = UINT64_MAX;
}

unsigned bc_hist_index(uint64_t v)
{
    const unsigned sub = 1u << BC_HIST_SUB_BITS;
    if (v < sub)
        return (unsigned)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v); /* e >= BC_HIST_SUB_BITS */
    unsigned shift = e - BC_HIST_SUB_BITS;
    unsigned group = shift + 1;
    return (group << BC_HIST_SUB_BITS) + (unsigned)((v >> shift) - sub);
}

uint64_t bc_hist_bucket_hi(unsigned idx)
{
    const unsigned sub = 1u << BC_HIST_SUB_BITS;
    if (idx < sub)
        return idx;
    unsigned group = idx >> BC_HIST_SUB_BITS, shift = group - 1;
    uint64_t lo = ((uint64_t)sub + (idx & (sub - 1))) << shift;
    return lo + ((1ull << shift) - 1);
}

void bc_hist_merge(struct bc_hist *dst, const struct bc_hist *src)
{
    if (src->n == 0)
        return;
    for (unsigned i = 0; i < BC_HIST_BUCKETS; i++)
        dst->counts[i] += src->counts[i];
    dst->n += src->n;
    dst->sum += src->sum;
    dst->min = CMN_MIN(dst->min, src->min);
    dst->max = CMN_MAX(dst->max, src->max);
}

uint64_t bc_hist_percentile(const struct bc_hist *h, double p)
{
    if (h->n == 0)
        return 0;
    if (p >= 100.0)
        return h->max;
    double want = ceil(p / 100.0 * (double)h->n);
    uint64_t rank = want < 1.0 ? 1 : (uint64_t)want, seen = 0;
    for (unsigned i = 0; i < BC_HIST_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            uint64_t hi = bc_hist_bucket_hi(i);
            return CMN_MAX(CMN_MIN(hi, h->max), h->min);
        }
    }
    return h->max;
}

double bc_hist_mean(const struct bc_hist *h)
{
    return h->n ? (double)h->sum / (double)h->n : 0.0;
}

/* ---- synthetic traces ---- */

int bc_trace_gen(const struct bc_trace_conf *conf, uint64_t *ids, size_t len)
{
    struct bc_keygen g;
    if (conf->scan_len == 0 || !(conf->scan_frac >= 0.0 && conf->scan_frac < 1.0) ||
        conf->seed == 0)
        return -EINVAL;
    int rc = bc_keygen_init(&g, conf->s > 0.0 ? BC_DIST_ZIPF : BC_DIST_UNIFORM, conf->n, conf->s);
    if (rc)
        return rc;
    /* A decision starts a scan with probability q; solving q*L / (q*L + 1 - q) = f for q
     * makes the fraction of scan requests f. */
    double f = conf->scan_frac, L = (double)conf->scan_len;
    double q = f > 0.0 ? f / (L * (1.0 - f) + f) : 0.0;
    uint64_t rng = conf->seed;
    size_t i = 0;
    while (i < len) {
        if (q > 0.0 && bc_rand_unit(&rng) < q) {
            uint64_t start = bc_rand_below(&rng, conf->n);
            for (uint64_t j = 0; j < conf->scan_len && i < len; j++)
                ids[i++] = conf->n + (start + j) % conf->n;
        } else {
            ids[i++] = bc_keygen_next(&g, &rng);
        }
    }
    return 0;
}

/* ---- parsers ---- */

int bc_parse_duration_ns(const char *s, uint64_t *out_ns)
{
    static const struct {
        const char *unit;
        double mult;
    } units[] = {{"", 1e9},  {"ns", 1.0}, {"us", 1e3},   {"ms", 1e6},
                 {"s", 1e9}, {"m", 60e9}, {"min", 60e9}, {"h", 3600e9}};
    char *end;
    if (!s || !((*s >= '0' && *s <= '9') || *s == '.'))
        return -EINVAL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || !isfinite(v) || v < 0.0)
        return -EINVAL;
    for (size_t i = 0; i < CMN_ARRAY_SIZE(units); i++) {
        if (strcmp(end, units[i].unit) == 0) {
            double ns = v * units[i].mult;
            if (ns >= 1.8e19)
                return -EINVAL;
            *out_ns = (uint64_t)(ns + 0.5);
            return 0;
        }
    }
    return -EINVAL;
}

int bc_parse_double(const char *s, double lo, double hi, double *out)
{
    char *end;
    if (!s || !*s)
        return -EINVAL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v) || v < lo || v > hi)
        return -EINVAL;
    *out = v;
    return 0;
}
