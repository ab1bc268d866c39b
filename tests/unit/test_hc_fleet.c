/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_hc_fleet.c: the fleet tier's value format without memcached: pieces, every field
 * checked, the HMAC; and the memcached server list parser. The lease logic is in
 * test_hc_fleet_lease.c.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/util.h"
#include "hybridcache/fleet_i.h"

/* ---- the format ---- */

static void t_block(uint8_t *b, size_t len, unsigned seed)
{
    for (size_t i = 0; i < len; i++)
        b[i] = (uint8_t)(i * 131 + seed * 7 + (i >> 9));
}

/* Encode every piece of a block and decode them back into a fresh buffer. */
static void t_roundtrip(size_t len, uint32_t ps, const uint8_t *secret, size_t slen)
{
    uint8_t hash[32], *blk = malloc(len + 1), *out = calloc(1, len + 1);
    uint8_t *v = malloc(HC_FLEET_HDR + HC_FLEET_MAC + ps);
    unsigned pieces = hc_fleet_pieces(len, ps);
    uint32_t crc, got = 0;

    assert_non_null(blk);
    t_block(blk, len, (unsigned)len);
    crc = cmn_crc32c(0, blk, len);
    hc_fleet_hash("id", 2, ps, hash);
    for (unsigned p = 0; p < pieces; p++) {
        ssize_t vl = hc_fleet_encode(hash, blk, len, crc, ps, p, secret, slen, v,
                                     HC_FLEET_HDR + HC_FLEET_MAC + ps);
        assert_true(vl > 0);
        assert_int_equal(hc_fleet_decode(hash, len, ps, p, secret, slen, v, (size_t)vl, out, &got),
                         HC_FLEET_OK);
        assert_int_equal(got, crc);
        if (secret) /* a mount without the key still reads it (the CRCs hold) */
            assert_int_equal(hc_fleet_decode(hash, len, ps, p, NULL, 0, v, (size_t)vl, out, &got),
                             HC_FLEET_OK);
    }
    assert_memory_equal(blk, out, len);
    free(blk);
    free(out);
    free(v);
}

static void test_roundtrip(void **state)
{
    (void)state;
    const uint32_t ps = 64 << 10;
    const size_t lens[] = {1, 100, ps - 1, ps, ps + 1, 2 * ps + 12345, 1 << 20};
    for (size_t i = 0; i < CMN_ARRAY_SIZE(lens); i++) {
        t_roundtrip(lens[i], ps, NULL, 0);
        t_roundtrip(lens[i], ps, (const uint8_t *)"0123456789abcdef", 16);
    }
    assert_int_equal(hc_fleet_pieces(1 << 20, 512 << 10), 2);
    assert_int_equal(hc_fleet_pieces((1 << 20) + 1, 512 << 10), 3);
    assert_int_equal(hc_fleet_pieces(1, 512 << 10), 1);
}

static void test_keys(void **state)
{
    (void)state;
    uint8_t h1[32], h2[32], h3[32];
    char k0[HC_FLEET_KEY_MAX], k1[HC_FLEET_KEY_MAX], kl[HC_FLEET_KEY_MAX];

    hc_fleet_hash("bucket\0key\0etag", 15, 512 << 10, h1);
    hc_fleet_hash("bucket\0key\0etaG", 15, 512 << 10, h2);
    hc_fleet_hash("bucket\0key\0etag", 15, 256 << 10, h3);
    assert_memory_not_equal(h1, h2, 32);
    assert_memory_not_equal(h1, h3, 32); /* another piece size: other keys */
    size_t l0 = hc_fleet_key(h1, 0, k0), l1 = hc_fleet_key(h1, 1, k1),
           ll = hc_fleet_key(h1, -1, kl);
    assert_true(l0 < HC_FLEET_KEY_MAX && l1 < HC_FLEET_KEY_MAX && ll < HC_FLEET_KEY_MAX);
    assert_int_equal(l0, 8 + 40 + 2);
    assert_memory_equal(k0, "tierfs1:", 8);
    assert_memory_equal(kl + ll - 2, ":L", 2);
    assert_memory_not_equal(k0, k1, l0);
    for (size_t i = 0; i < l0; i++) /* memcached: no spaces or control characters */
        assert_true(k0[i] > ' ' && k0[i] < 127);
}

/* Every kind of bad value is told apart and nothing is copied. */
static void test_bad_values(void **state)
{
    (void)state;
    const uint32_t ps = 16 << 10;
    const size_t len = 40000;
    const uint8_t *key = (const uint8_t *)"a secret of sixteen";
    uint8_t hash[32], other[32], blk[40000], out[40000], v[HC_FLEET_HDR + HC_FLEET_MAC + 16384];
    uint8_t w[sizeof(v)];
    uint32_t crc = 0, got;
    ssize_t vl, sl;

    t_block(blk, len, 3);
    crc = cmn_crc32c(0, blk, len);
    hc_fleet_hash("x", 1, ps, hash);
    hc_fleet_hash("y", 1, ps, other);
    vl = hc_fleet_encode(hash, blk, len, crc, ps, 1, NULL, 0, v, sizeof(v));
    assert_true(vl > 0);
    memset(out, 0xee, sizeof(out));
#define T_VERDICT(want, h, piece, sec, seclen, val, vlen)                                          \
    assert_int_equal(hc_fleet_decode(h, len, ps, piece, sec, seclen, val, vlen, out, &got), want)
    T_VERDICT(HC_FLEET_BAD_SHORT, hash, 1, NULL, 0, v, 10);
    T_VERDICT(HC_FLEET_BAD_SHORT, hash, 1, NULL, 0, v, (size_t)vl - 1);
    memcpy(w, v, (size_t)vl);
    w[0] ^= 1;
    T_VERDICT(HC_FLEET_BAD_MAGIC, hash, 1, NULL, 0, w, (size_t)vl);
    memcpy(w, v, (size_t)vl);
    w[4] = HC_FLEET_VERSION + 1;
    T_VERDICT(HC_FLEET_BAD_MAGIC, hash, 1, NULL, 0, w, (size_t)vl);
    T_VERDICT(HC_FLEET_BAD_ID, other, 1, NULL, 0, v, (size_t)vl);
    T_VERDICT(HC_FLEET_BAD_PLACE, hash, 0, NULL, 0, v, (size_t)vl); /* piece 1 asked as 0 */
    memcpy(w, v, (size_t)vl);
    w[vl - 1] ^= 0x10;
    T_VERDICT(HC_FLEET_BAD_CRC, hash, 1, NULL, 0, w, (size_t)vl);
    T_VERDICT(HC_FLEET_BAD_UNSIGNED, hash, 1, key, 16, v, (size_t)vl);
    sl = hc_fleet_encode(hash, blk, len, crc, ps, 1, (const uint8_t *)"another secret!!", 16, w,
                         sizeof(w));
    T_VERDICT(HC_FLEET_BAD_MAC, hash, 1, key, 16, w, (size_t)sl);
    sl = hc_fleet_encode(hash, blk, len, crc, ps, 1, key, 16, w, sizeof(w));
    w[HC_FLEET_HDR + HC_FLEET_MAC + 5] ^= 1; /* a byte changed under a good MAC */
    T_VERDICT(HC_FLEET_BAD_MAC, hash, 1, key, 16, w, (size_t)sl);
    for (size_t i = 0; i < sizeof(out); i++)
        assert_int_equal(out[i], 0xee); /* nothing copied by a bad value */
#undef T_VERDICT
}

/* The value test_bad_values spoils, unspoilt: piece 1 of a 40000-byte block decodes. */
static void test_good_piece(void **state)
{
    (void)state;
    const uint32_t ps = 16 << 10;
    uint8_t hash[32], blk[40000], out[40000], v[HC_FLEET_HDR + 16384];
    uint32_t crc, got;

    t_block(blk, sizeof(blk), 3);
    crc = cmn_crc32c(0, blk, sizeof(blk));
    hc_fleet_hash("x", 1, ps, hash);
    ssize_t vl = hc_fleet_encode(hash, blk, sizeof(blk), crc, ps, 1, NULL, 0, v, sizeof(v));
    assert_int_equal(hc_fleet_decode(hash, sizeof(blk), ps, 1, NULL, 0, v, (size_t)vl, out, &got),
                     HC_FLEET_OK);
    assert_memory_equal(out + ps, blk + ps, ps);
}

/* The server list of -o fleet: '+' between servers, or @FILE. */
static void test_server_list(void **state)
{
    (void)state;
    struct hc_fleet_backend *b;
    const char *bad[] = {"", "h:0", "h:abc", "h:70000", "a++b", "+a", "h:", "@/nonexistent/list"};
    char path[] = "/tmp/test_hc_fleet.XXXXXX";
    int fd;

    for (size_t i = 0; i < CMN_ARRAY_SIZE(bad); i++) {
        int rc = hc_fleet_memcached_create(bad[i], 50, 2, &b);
        assert_int_equal(rc, bad[i][0] == '@' ? -ENOENT : -EINVAL);
        assert_null(b);
    }
    assert_int_equal(hc_fleet_memcached_create("10.0.0.1:11311+cache-2+ 10.0.0.3 ", 50, 2, &b), 0);
    assert_int_equal(b->nservers, 3);
    assert_string_equal(b->server_names[0], "10.0.0.1:11311");
    assert_string_equal(b->server_names[1], "cache-2:11211");
    hc_fleet_backend_destroy(b);
    fd = mkstemp(path);
    assert_true(fd >= 0);
    const char text[] = "# the fleet\n127.0.0.1:11211\n\n  127.0.0.2  # second\n";
    assert_int_equal(write(fd, text, sizeof(text) - 1), (ssize_t)sizeof(text) - 1);
    close(fd);
    char arg[64];
    snprintf(arg, sizeof(arg), "@%s", path);
    assert_int_equal(hc_fleet_memcached_create(arg, 50, 2, &b), 0);
    assert_int_equal(b->nservers, 2);
    assert_string_equal(b->server_names[1], "127.0.0.2:11211");
    hc_fleet_backend_destroy(b);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),   cmocka_unit_test(test_keys),
        cmocka_unit_test(test_bad_values),  cmocka_unit_test(test_good_piece),
        cmocka_unit_test(test_server_list),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
