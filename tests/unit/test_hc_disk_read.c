/* SPDX-License-Identifier: Apache-2.0 */
/* test_hc_disk_read.c: the disk tier's partial reads (chunk checksums, hc_disk_lookup_range):
 * ranges, a corrupt chunk, the fallback to a whole read; each on psync and uring. */
#include "tests/unit/hc_disk_testlib.h"

/* Partial reads of key @i (@vlen bytes of t_fill content) at many offsets and lengths:
 * chunk-aligned, straddling chunks, the value's tail and past its end. Each returns
 * exactly the covering chunks, cut at the end of the value. @return the reads done. */
static unsigned t_check_ranges(struct hc_disk *d, int i, uint32_t vlen)
{
    static const uint32_t offs[] = {0, 1, 4095, 4096, 4097, 5000, 8191, 12288, 30001};
    static const uint32_t lens[] = {1, 100, 4095, 4096, 4097, 8192, 12000, T_BLOCK / 4};
    char key[96];
    uint8_t *want = malloc(vlen), *got = malloc(T_BLOCK);
    unsigned reads = 0;

    assert_true(want && got);
    t_key(key, sizeof(key), i);
    t_fill(want, vlen, i, false);
    for (size_t a = 0; a < CMN_ARRAY_SIZE(offs) + 3; a++) {
        /* then the last byte, the last chunk's start and one past the end */
        uint32_t off = a < CMN_ARRAY_SIZE(offs)        ? offs[a]
                       : a == CMN_ARRAY_SIZE(offs)     ? vlen - 1
                       : a == CMN_ARRAY_SIZE(offs) + 1 ? (vlen - 1) / 4096 * 4096
                                                       : vlen + 10;
        for (size_t b = 0; b < CMN_ARRAY_SIZE(lens); b++) {
            uint32_t len = lens[b], start = hc_disk_range_off(off);
            ssize_t n = t_lookup_range(d, key, off, len, got, T_BLOCK);
            assert_int_equal(start, off / 4096 * 4096);
            if (off >= T_BLOCK) {
                assert_int_equal(n, -EINVAL); /* past any block */
                continue;
            }
            reads++;
            if (off >= vlen) {
                assert_int_equal(n, 0);
                continue;
            }
            uint32_t end = CMN_MIN(CMN_ALIGN_UP(CMN_MIN(off + len, T_BLOCK), 4096u), vlen);
            assert_int_equal(n, end - start);
            assert_memory_equal(got, want + start, (size_t)n);
        }
    }
    free(want);
    free(got);
    return reads;
}

static void test_partial_reads(void **state)
{
    struct t_env e = {.engine = *state};
    struct t_opts o = {.size = T_HDR + 8 * T_REGION};
    const uint32_t tail = T_BLOCK - 5000;

    t_path(&e, "partial");
    struct hc_disk *d = t_open(&e, &o);
    t_put(d, 0, T_BLOCK, false);
    t_put(d, 1, tail, false);
    /* Still in the open region buffer: served from memory, the same way. */
    unsigned reads = t_check_ranges(d, 0, T_BLOCK);
    reads += t_check_ranges(d, 1, tail);
    assert_int_equal(hc_disk_flush(d), 0);
    /* From the device: header and chunks, one or two requests. */
    reads += t_check_ranges(d, 0, T_BLOCK);
    reads += t_check_ranges(d, 1, tail);
    struct hc_disk_stats st = t_stats(d);
    assert_int_equal(st.partial_hits, reads);
    assert_int_equal(st.hits, reads);
    assert_int_equal(st.misses, 0);
    assert_true(st.partial_bytes > 0 && st.partial_bytes == st.bytes_read);
    /* Whole-value reads verify the same chunk checksums. */
    assert_int_equal(t_check(d, 0, T_BLOCK, false), 1);
    assert_int_equal(t_check(d, 1, tail, false), 1);

    /* Unknown key; a buffer too small for the covering chunks. */
    uint8_t *buf = malloc(T_BLOCK);
    assert_int_equal(t_lookup_range(d, "nope", 0, 10, buf, T_BLOCK), -ENOENT);
    char key[96];
    t_key(key, sizeof(key), 0);
    assert_int_equal(t_lookup_range(d, key, 4000, 200, buf, 4096), -ENOBUFS);

    /* Recovery after a reopen serves partial reads too. */
    hc_disk_close(d);
    d = t_open(&e, &o);
    assert_int_equal(t_stats(d).recovered_entries, 2);
    t_check_ranges(d, 0, T_BLOCK);
    t_check_ranges(d, 1, tail);
    free(buf);
    hc_disk_close(d);
    unlink(e.path);
}

/* A bad chunk is a miss for the chunks it covers only; a whole read then drops the entry. */
static void test_partial_corrupt_chunk(void **state)
{
    struct t_env e = {.engine = *state};
    struct t_opts o = {.size = T_HDR + 8 * T_REGION};
    uint8_t *buf = malloc(T_BLOCK);
    char key[96];
    uint64_t off;
    uint32_t l;

    t_path(&e, "partcorrupt");
    struct hc_disk *d = t_open(&e, &o);
    for (int i = 0; i < 3; i++)
        t_put(d, i, T_BLOCK, false);
    assert_int_equal(hc_disk_flush(d), 0);
    t_key(key, sizeof(key), 1);
    assert_int_equal(hc_disk_debug_locate(d, t_hash(key), &off, &l), 0);
    /* One byte of chunk 3 of key 1's value. */
    uint64_t value = off + sizeof(struct hc_disk_ehdr) + strlen(key) + hc_disk_table_bytes(T_BLOCK);
    t_scribble(e.path, value + 3 * 4096 + 77, 1, 0xA5);

    assert_int_equal(t_lookup_range(d, key, 3 * 4096 + 10, 100, buf, T_BLOCK), -ENOENT);
    assert_int_equal(t_lookup_range(d, key, 2 * 4096 + 10, 8192, buf, T_BLOCK), -ENOENT);
    assert_int_equal(t_stats(d).checksum_failures, 2);
    assert_true(hc_disk_may_contain(d, t_hash(key))); /* other chunks are still good */
    assert_int_equal(t_lookup_range(d, key, 5 * 4096, 4096, buf, T_BLOCK), 4096);
    assert_int_equal(t_lookup_range(d, key, 0, 3 * 4096, buf, T_BLOCK), 3 * 4096);
    assert_int_equal(t_check(d, 1, T_BLOCK, false), 0); /* whole: every chunk checked */
    assert_int_equal(t_stats(d).checksum_failures, 3);
    assert_false(hc_disk_may_contain(d, t_hash(key)));

    /* A corrupt chunk table is caught by the data checksum: a miss, the entry dropped. */
    t_key(key, sizeof(key), 2);
    assert_int_equal(hc_disk_debug_locate(d, t_hash(key), &off, &l), 0);
    t_scribble(e.path, off + sizeof(struct hc_disk_ehdr) + strlen(key) + 40, 1, 0x11);
    assert_int_equal(t_lookup_range(d, key, 40000, 100, buf, T_BLOCK), -ENOENT);
    assert_false(hc_disk_may_contain(d, t_hash(key)));
    assert_int_equal(t_check(d, 0, T_BLOCK, false), 1);
    free(buf);
    hc_disk_close(d);
    unlink(e.path);
}

/* Entries without a chunk table (compressed, or one chunk at most) ask for a whole read. */
static void test_partial_fallback(void **state)
{
    struct t_env e = {.engine = *state};
    struct t_opts o = {.size = T_HDR + 8 * T_REGION, .compression = true};
    uint8_t *buf = malloc(T_BLOCK);
    char key[96];

    t_path(&e, "partfallback");
    struct hc_disk *d = t_open(&e, &o);
    t_put(d, 0, T_BLOCK, true);  /* compressed */
    t_put(d, 1, 4096, false);    /* one chunk */
    t_put(d, 2, T_BLOCK, false); /* random bytes do not compress: chunked */
    for (int pass = 0; pass < 2; pass++) {
        t_key(key, sizeof(key), 0);
        assert_int_equal(t_lookup_range(d, key, 100, 100, buf, T_BLOCK), -EOPNOTSUPP);
        t_key(key, sizeof(key), 1);
        assert_int_equal(t_lookup_range(d, key, 100, 100, buf, T_BLOCK), -EOPNOTSUPP);
        t_key(key, sizeof(key), 2);
        assert_int_equal(t_lookup_range(d, key, 100, 100, buf, T_BLOCK), 4096);
        assert_int_equal(t_check(d, 0, T_BLOCK, true), 1);
        assert_int_equal(t_check(d, 1, 4096, false), 1);
        assert_int_equal(hc_disk_flush(d), 0); /* the second pass reads the device */
    }
    struct hc_disk_stats st = t_stats(d);
    assert_int_equal(st.partial_hits, 2);
    assert_int_equal(st.compressed_blocks, 1);
    assert_int_equal(st.checksum_failures, 0);
    free(buf);
    hc_disk_close(d);
    unlink(e.path);
}

int main(void)
{
    static const struct t_case cases[] = {
        {"partial_reads", test_partial_reads},
        {"partial_corrupt_chunk", test_partial_corrupt_chunk},
        {"partial_fallback", test_partial_fallback},
    };
    return t_run_cases(cases, CMN_ARRAY_SIZE(cases));
}
