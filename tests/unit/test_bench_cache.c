/* SPDX-License-Identifier: Apache-2.0 */
/* test_bench_cache.c: unit tests of tierfs-bench-cache's workload generator (bench_cache_gen.c). */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tools/bench_cache_gen.h"

/* Pearson chi-square of @counts (n bins) against the zipf / uniform pmf, @total draws. */
static double test_chi2(const uint64_t *counts, const double *pmf, size_t n, uint64_t total)
{
    double chi2 = 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = pmf[i] * (double)total, d = (double)counts[i] - e;
        chi2 += d * d / e;
    }
    return chi2;
}

static void test_zipf_rejects_bad_params(void **state)
{
    struct bc_zipf z;
    assert_int_equal(bc_zipf_init(&z, 0, 1.0), -EINVAL);
    assert_int_equal(bc_zipf_init(&z, 10, 0.0), -EINVAL);
    assert_int_equal(bc_zipf_init(&z, 10, -1.0), -EINVAL);
    assert_int_equal(bc_zipf_init(&z, 10, NAN), -EINVAL);
    assert_int_equal(bc_zipf_init(&z, 10, INFINITY), -EINVAL);
    assert_int_equal(bc_zipf_init(&z, 1, 1.0), 0);
    uint64_t rng = 1;
    for (int i = 0; i < 1000; i++)
        assert_int_equal(bc_zipf_next(&z, &rng), 0);
}

/* The sampled frequencies match the exact pmf: per-rank within 5 sigma for the head, and
 * a chi-square over all 100 ranks below the 0.1% critical value for 99 degrees of freedom. */
static void test_zipf_matches_pmf(void **state)
{
    static const double exps[] = {0.5, 0.9, 0.99, 1.0, 1.2, 2.0};
    enum { N = 100, DRAWS = 400000 };
    for (size_t t = 0; t < sizeof(exps) / sizeof(exps[0]); t++) {
        struct bc_zipf z;
        uint64_t counts[N] = {0}, rng = 0x1234567 + t;
        double pmf[N];
        assert_int_equal(bc_zipf_init(&z, N, exps[t]), 0);
        for (int i = 0; i < DRAWS; i++) {
            uint64_t k = bc_zipf_next(&z, &rng);
            assert_true(k < N);
            counts[k]++;
        }
        double sum = 0.0;
        for (int k = 0; k < N; k++) {
            pmf[k] = bc_zipf_pmf(N, exps[t], (uint64_t)k);
            sum += pmf[k];
        }
        assert_true(fabs(sum - 1.0) < 1e-9);
        for (int k = 0; k < 5; k++) {
            double p = pmf[k], sigma = sqrt(p * (1 - p) / DRAWS);
            double got = (double)counts[k] / DRAWS;
            if (fabs(got - p) > 5 * sigma)
                fail_msg("s=%g rank %d: frequency %.5f, pmf %.5f", exps[t], k, got, p);
        }
        /* ratio of the two hottest keys is 2^s */
        double ratio = (double)counts[0] / (double)counts[1];
        assert_true(fabs(ratio / pow(2.0, exps[t]) - 1.0) < 0.05);
        double chi2 = test_chi2(counts, pmf, N, DRAWS);
        if (chi2 > 148.2)
            fail_msg("s=%g: chi-square %.1f over 99 dof", exps[t], chi2);
    }
}

/* A huge key space stays in range and is still skewed (the sampler is O(1) in n). */
static void test_zipf_huge_keyspace(void **state)
{
    struct bc_zipf z;
    const uint64_t n = 1000000000000ull;
    uint64_t rng = 99, c0 = 0, c1 = 0, c9 = 0, big = 0;
    assert_int_equal(bc_zipf_init(&z, n, 1.1), 0);
    for (int i = 0; i < 200000; i++) {
        uint64_t k = bc_zipf_next(&z, &rng);
        assert_true(k < n);
        c0 += k == 0;
        c1 += k == 1;
        c9 += k == 9;
        big += k >= n / 2;
    }
    assert_true(c0 > c1 && c1 > c9 && c9 > 0);
    assert_true(big < 200000 / 10);
}

static void test_uniform_keys(void **state)
{
    struct bc_keygen g;
    enum { N = 64, DRAWS = 320000 };
    uint64_t counts[N] = {0}, rng = 7;
    double pmf[N];
    assert_int_equal(bc_keygen_init(&g, BC_DIST_UNIFORM, N, 0.0), 0);
    assert_int_equal(bc_keygen_init(&g, BC_DIST_UNIFORM, 0, 0.0), -EINVAL);
    assert_int_equal(bc_keygen_init(&g, BC_DIST_ZIPF, N, 0.0), -EINVAL);
    assert_int_equal(bc_keygen_init(&g, BC_DIST_UNIFORM, N, 0.0), 0);
    for (int i = 0; i < DRAWS; i++) {
        uint64_t k = bc_keygen_next(&g, &rng);
        assert_true(k < N);
        counts[k]++;
    }
    for (int i = 0; i < N; i++)
        pmf[i] = 1.0 / N;
    /* 0.1% critical value for 63 dof is 103.4 */
    assert_true(test_chi2(counts, pmf, N, DRAWS) < 103.4);
    for (int i = 0; i < 1000; i++) {
        double u = bc_rand_unit(&rng);
        assert_true(u >= 0.0 && u < 1.0);
    }
}

static void test_hist_buckets(void **state)
{
    uint64_t rng = 3;
    unsigned prev = 0;
    for (uint64_t v = 0; v < 5000; v++) {
        unsigned i = bc_hist_index(v);
        assert_true(i >= prev);
        prev = i;
        assert_true(bc_hist_bucket_hi(i) >= v);
    }
    assert_int_equal(bc_hist_index(0), 0);
    assert_int_equal(bc_hist_bucket_hi(bc_hist_index(127)), 127);
    assert_true(bc_hist_index(UINT64_MAX) < BC_HIST_BUCKETS);
    assert_int_equal(bc_hist_bucket_hi(bc_hist_index(UINT64_MAX)), UINT64_MAX);
    for (int i = 0; i < 100000; i++) {
        rng ^= rng << 13; /* xorshift64 */
        rng ^= rng >> 7;
        rng ^= rng << 17;
        uint64_t v = rng >> (rng & 63); /* spread over all magnitudes */
        unsigned b = bc_hist_index(v);
        uint64_t hi = bc_hist_bucket_hi(b);
        assert_true(hi >= v);
        /* relative error bound: 1/128 */
        assert_true((double)(hi - v) <= (double)v / 128.0);
        if (b > 0)
            assert_true(bc_hist_bucket_hi(b - 1) < v);
    }
}

static void test_hist_percentiles(void **state)
{
    struct bc_hist *h = malloc(sizeof(*h)), *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
    assert_non_null(h);
    assert_non_null(a);
    assert_non_null(b);
    bc_hist_init(h);
    assert_int_equal(bc_hist_percentile(h, 50), 0);
    assert_true(bc_hist_mean(h) == 0.0);
    bc_hist_init(a);
    bc_hist_init(b);
    for (uint64_t v = 1; v <= 100000; v++) {
        bc_hist_record(h, v);
        bc_hist_record(v % 2 ? a : b, v);
    }
    static const double ps[] = {50, 90, 99, 99.9};
    for (size_t i = 0; i < sizeof(ps) / sizeof(ps[0]); i++) {
        double exact = ps[i] * 1000.0, got = (double)bc_hist_percentile(h, ps[i]);
        if (got < exact || got > exact * (1.0 + 1.0 / 128.0))
            fail_msg("p%g = %.0f, exact %.0f", ps[i], got, exact);
    }
    assert_int_equal(bc_hist_percentile(h, 100), 100000);
    assert_int_equal(bc_hist_percentile(h, 0), 1);
    assert_int_equal(h->min, 1);
    assert_int_equal(h->max, 100000);
    assert_true(fabs(bc_hist_mean(h) - 50000.5) < 1e-6);
    /* merging two halves gives the same histogram as recording everything in one */
    bc_hist_merge(a, b);
    assert_int_equal(a->n, h->n);
    assert_int_equal(a->sum, h->sum);
    assert_int_equal(a->min, h->min);
    assert_int_equal(a->max, h->max);
    assert_memory_equal(a->counts, h->counts, sizeof(h->counts));
    /* one sample: every percentile is that sample */
    bc_hist_init(b);
    bc_hist_record(b, 123456789);
    assert_int_equal(bc_hist_percentile(b, 1), 123456789);
    assert_int_equal(bc_hist_percentile(b, 99.9), 123456789);
    free(h);
    free(a);
    free(b);
}

static void test_values(void **state)
{
    struct bc_valgen v;
    enum { LEN = 70000 };
    unsigned char *x = malloc(LEN), *y = malloc(LEN);
    assert_non_null(x);
    assert_non_null(y);
    assert_int_equal(bc_valgen_init(&v, 0, 10, 0.0), -EINVAL);
    assert_int_equal(bc_valgen_init(&v, 10, 9, 0.0), -EINVAL);
    assert_int_equal(bc_valgen_init(&v, 10, 10, 1.5), -EINVAL);
    assert_int_equal(bc_valgen_init(&v, 10, 10, 1.0), 0);
    assert_int_equal(v.rand_bytes, 0);
    assert_int_equal(bc_valgen_init(&v, 10, 10, 0.5), 0);
    assert_int_equal(v.rand_bytes, 128);
    assert_int_equal(bc_valgen_init(&v, LEN, LEN, 0.0), 0);
    assert_int_equal(v.rand_bytes, 256);

    bc_value_fill(&v, 42, x, LEN);
    bc_value_fill(&v, 42, y, LEN);
    assert_memory_equal(x, y, LEN);
    assert_int_equal(bc_value_check(&v, 42, x, LEN), -1);
    assert_true(bc_value_check(&v, 43, x, LEN) >= 0);
    x[65537] ^= 1;
    assert_int_equal(bc_value_check(&v, 42, x, LEN), 65537);
    x[65537] ^= 1;
    assert_int_equal(bc_value_check(&v, 42, x, LEN - 1), LEN - 1);
    /* a prefix fill is a prefix of the full value */
    bc_value_fill(&v, 42, y, 1000);
    assert_memory_equal(x, y, 1000);

    /* half-compressible values: the second half of each chunk is one repeated byte */
    assert_int_equal(bc_valgen_init(&v, LEN, LEN, 0.5), 0);
    bc_value_fill(&v, 7, x, LEN);
    for (size_t i = 128; i < 256; i++)
        assert_int_equal(x[i], x[128]);

    /* lengths spread over [min, max] */
    assert_int_equal(bc_valgen_init(&v, 100, 200, 0.0), 0);
    size_t lo = SIZE_MAX, hi = 0;
    for (uint64_t id = 0; id < 10000; id++) {
        size_t l = bc_value_len(&v, id);
        assert_true(l >= 100 && l <= 200);
        lo = l < lo ? l : lo;
        hi = l > hi ? l : hi;
        assert_int_equal(bc_value_len(&v, id), l);
    }
    assert_int_equal(lo, 100);
    assert_int_equal(hi, 200);
    free(x);
    free(y);
}

static void test_keys(void **state)
{
    char buf[BC_KEY_LEN];
    uint64_t id;
    static const uint64_t ids[] = {0, 1, 0xdeadbeef, UINT64_MAX};
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        assert_int_equal(bc_key_format(ids[i], buf), BC_KEY_LEN);
        assert_int_equal(bc_key_parse(buf, BC_KEY_LEN, &id), 0);
        assert_true(id == ids[i]);
    }
    assert_int_equal(bc_key_parse("bc:12", 5, &id), -EINVAL);
    assert_int_equal(bc_key_parse("xx:0000000000000000", BC_KEY_LEN, &id), -EINVAL);
    assert_int_equal(bc_key_parse("bc:000000000000000g", BC_KEY_LEN, &id), -EINVAL);
}

static void test_trace_gen(void **state)
{
    enum { LEN = 200000 };
    uint64_t *ids = malloc(LEN * sizeof(*ids));
    assert_non_null(ids);
    struct bc_trace_conf tc = {.n = 1000, .s = 0.9, .scan_frac = 0.3, .scan_len = 50, .seed = 5};
    assert_int_equal(bc_trace_gen(&tc, ids, LEN), 0);
    size_t scans = 0, starts = 0;
    for (size_t i = 0; i < LEN; i++) {
        assert_true(ids[i] < 2 * tc.n);
        if (ids[i] >= tc.n) {
            /* scan requests come in runs of scan_len consecutive ids (wrapping in [n, 2n)) */
            uint64_t pred = ids[i] == tc.n ? 2 * tc.n - 1 : ids[i] - 1;
            scans++;
            starts += i == 0 || ids[i - 1] != pred;
        }
    }
    assert_true(starts <= scans / 50 + 1 && starts + 3 >= scans / 50);
    double frac = (double)scans / LEN;
    if (fabs(frac - 0.3) > 0.02)
        fail_msg("scan fraction %.3f, want 0.3", frac);
    tc.scan_frac = 0.0;
    assert_int_equal(bc_trace_gen(&tc, ids, LEN), 0);
    for (size_t i = 0; i < LEN; i++)
        assert_true(ids[i] < tc.n);
    tc.scan_len = 0;
    assert_int_equal(bc_trace_gen(&tc, ids, LEN), -EINVAL);
    tc.scan_len = 1;
    tc.seed = 0;
    assert_int_equal(bc_trace_gen(&tc, ids, LEN), -EINVAL);
    free(ids);
}

static void test_parsers(void **state)
{
    uint64_t ns;
    double d;
    assert_int_equal(bc_parse_duration_ns("2", &ns), 0);
    assert_true(ns == 2000000000ull);
    assert_int_equal(bc_parse_duration_ns("1.5ms", &ns), 0);
    assert_true(ns == 1500000ull);
    assert_int_equal(bc_parse_duration_ns("250us", &ns), 0);
    assert_true(ns == 250000ull);
    assert_int_equal(bc_parse_duration_ns("10ns", &ns), 0);
    assert_true(ns == 10ull);
    assert_int_equal(bc_parse_duration_ns("1m", &ns), 0);
    assert_true(ns == 60000000000ull);
    assert_int_equal(bc_parse_duration_ns("", &ns), -EINVAL);
    assert_int_equal(bc_parse_duration_ns("-1", &ns), -EINVAL);
    assert_int_equal(bc_parse_duration_ns("5x", &ns), -EINVAL);
    assert_int_equal(bc_parse_duration_ns("ms", &ns), -EINVAL);
    assert_int_equal(bc_parse_duration_ns(NULL, &ns), -EINVAL);
    assert_int_equal(bc_parse_double("0.99", 0, 10, &d), 0);
    assert_true(d == 0.99);
    assert_int_equal(bc_parse_double("11", 0, 10, &d), -EINVAL);
    assert_int_equal(bc_parse_double("1x", 0, 10, &d), -EINVAL);
    assert_int_equal(bc_parse_double("nan", 0, 10, &d), -EINVAL);
    assert_int_equal(bc_parse_double("", 0, 10, &d), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zipf_rejects_bad_params),
        cmocka_unit_test(test_zipf_matches_pmf),
        cmocka_unit_test(test_zipf_huge_keyspace),
        cmocka_unit_test(test_uniform_keys),
        cmocka_unit_test(test_hist_buckets),
        cmocka_unit_test(test_hist_percentiles),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_trace_gen),
        cmocka_unit_test(test_parsers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
