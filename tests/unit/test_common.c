/* SPDX-License-Identifier: Apache-2.0 */
/* test_common.c: unit tests for common/ (parsers, CRC-32C, hash, log sink, rate limit). */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/list.h"
#include "common/log.h"
#include "common/util.h"

static void test_parse_size(void **state)
{
    uint64_t v;
    assert_int_equal(cmn_parse_size("0", &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(cmn_parse_size("4096", &v), 0);
    assert_int_equal(v, 4096);
    assert_int_equal(cmn_parse_size("64K", &v), 0);
    assert_int_equal(v, 65536);
    assert_int_equal(cmn_parse_size("1M", &v), 0);
    assert_int_equal(v, 1u << 20);
    assert_int_equal(cmn_parse_size("2g", &v), 0);
    assert_int_equal(v, 2ull << 30);
    assert_int_equal(cmn_parse_size("3GiB", &v), 0);
    assert_int_equal(v, 3ull << 30);
    assert_int_equal(cmn_parse_size("1T", &v), 0);
    assert_int_equal(v, 1ull << 40);
    assert_int_equal(cmn_parse_size("", &v), -EINVAL);
    assert_int_equal(cmn_parse_size("-1", &v), -EINVAL);
    assert_int_equal(cmn_parse_size("1X", &v), -EINVAL);
    assert_int_equal(cmn_parse_size("1MM", &v), -EINVAL);
    assert_int_equal(cmn_parse_size("99999999999999999999", &v), -EINVAL);
    assert_int_equal(cmn_parse_size("99999999999T", &v), -EINVAL);
    assert_int_equal(cmn_parse_size(NULL, &v), -EINVAL);
}

static void test_parse_misc(void **state)
{
    uint64_t v;
    int b;
    assert_int_equal(cmn_parse_u64("42", 100, &v), 0);
    assert_int_equal(v, 42);
    assert_int_equal(cmn_parse_u64("101", 100, &v), -EINVAL);
    assert_int_equal(cmn_parse_u64("4x", 100, &v), -EINVAL);
    assert_int_equal(cmn_parse_bool("yes", &b), 0);
    assert_int_equal(b, 1);
    assert_int_equal(cmn_parse_bool("OFF", &b), 0);
    assert_int_equal(b, 0);
    assert_int_equal(cmn_parse_bool("maybe", &b), -EINVAL);
    assert_int_equal(cmn_parse_duration_ms("60", &v), 0);
    assert_int_equal(v, 60000);
    assert_int_equal(cmn_parse_duration_ms("250ms", &v), 0);
    assert_int_equal(v, 250);
    assert_int_equal(cmn_parse_duration_ms("2m", &v), 0);
    assert_int_equal(v, 120000);
    assert_int_equal(cmn_parse_duration_ms("1h", &v), 0);
    assert_int_equal(v, 3600000);
    assert_int_equal(cmn_parse_duration_ms("5d", &v), -EINVAL);
    assert_int_equal(cmn_parse_duration_ms("s", &v), -EINVAL);
}

static void test_parse_hostport(void **state)
{
    struct sockaddr_storage ss;
    socklen_t len = 0;
    const struct sockaddr_in *a4 = (const struct sockaddr_in *)&ss;
    const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)&ss;
    (void)state;

    assert_int_equal(cmn_parse_hostport("127.0.0.1:9100", &ss, &len), 0);
    assert_int_equal(a4->sin_family, AF_INET);
    assert_int_equal(ntohs(a4->sin_port), 9100);
    assert_int_equal(len, sizeof(*a4));
    assert_int_equal(cmn_parse_hostport("[::1]:0", &ss, &len), 0); /* 0: a free port */
    assert_int_equal(a6->sin6_family, AF_INET6);
    assert_int_equal(ntohs(a6->sin6_port), 0);
    assert_int_equal(len, sizeof(*a6));
    const char *bad[] = {NULL,           "",          "127.0.0.1",     ":80",
                         "localhost:80", "1.2.3.4:x", "1.2.3.4:65536", "[::1]80",
                         "[::1:80",      "::1:80",    "[1.2.3.4]:80"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(cmn_parse_hostport(bad[i], &ss, &len), -EINVAL);
}

static void test_crc32c(void **state)
{
    /* RFC 3720 B.4 test vectors plus the classic "123456789" check value. */
    uint8_t zeros[32] = {0}, ones[32], inc[32];
    memset(ones, 0xff, sizeof(ones));
    for (int i = 0; i < 32; i++)
        inc[i] = (uint8_t)i;
    assert_int_equal(cmn_crc32c(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(cmn_crc32c(0, zeros, 32), 0x8A9136AAu);
    assert_int_equal(cmn_crc32c(0, ones, 32), 0x62A8AB43u);
    assert_int_equal(cmn_crc32c(0, inc, 32), 0x46DD794Eu);
    /* chaining equals one pass */
    uint32_t c = cmn_crc32c(0, inc, 13);
    assert_int_equal(cmn_crc32c(c, inc + 13, 19), 0x46DD794Eu);
    assert_int_equal(cmn_crc32c(0, "", 0), 0);
}

/* Bit-serial table CRC-32C (one byte per step): an independent reference. */
static uint32_t ref_crc32c(uint32_t crc, const uint8_t *p, size_t len)
{
    static uint32_t table[256];
    if (!table[1]) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++)
                c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
            table[i] = c;
        }
    }
    crc = ~crc;
    while (len--)
        crc = (crc >> 8) ^ table[(crc ^ *p++) & 0xff];
    return ~crc;
}

/* Large buffers run three interleaved chains joined by a shift (util.c): compare with the
 * reference for many lengths (around the switch-over and the 8-byte segment rounding),
 * alignments, starting CRCs and split points. */
static void test_crc32c_large(void **state)
{
    const size_t cap = (1u << 20) + 4096;
    uint8_t *buf = malloc(cap + 64);
    uint64_t st = 0x1234567887654321ull;
    assert_non_null(buf);
    for (size_t i = 0; i < cap + 64; i++)
        buf[i] = (uint8_t)cmn_rand64(&st);

    /* every length near the switch to three chains (16 KiB) and near 3 x 16 KiB */
    static const size_t centers[] = {16u << 10, 48u << 10, 3 * (16u << 10) + 24, 1u << 20};
    for (size_t c = 0; c < sizeof(centers) / sizeof(centers[0]); c++) {
        for (size_t len = centers[c] - 40; len <= centers[c] + 40; len++) {
            size_t off = len % 61;
            assert_int_equal(cmn_crc32c(0, buf + off, len), ref_crc32c(0, buf + off, len));
        }
    }
    /* random lengths, alignments and starting values; chained at a random split */
    for (int i = 0; i < 300; i++) {
        size_t len = (size_t)(cmn_rand64(&st) % (i < 200 ? 200000 : cap));
        size_t off = (size_t)(cmn_rand64(&st) % 64);
        uint32_t seed = (uint32_t)cmn_rand64(&st);
        uint32_t want = ref_crc32c(seed, buf + off, len);
        assert_int_equal(cmn_crc32c(seed, buf + off, len), want);
        size_t cut = len ? (size_t)(cmn_rand64(&st) % len) : 0;
        assert_int_equal(cmn_crc32c(cmn_crc32c(seed, buf + off, cut), buf + off + cut, len - cut),
                         want);
    }
    /* a flipped bit in any segment changes the result */
    uint32_t whole = cmn_crc32c(0, buf, 1u << 20);
    for (size_t at = 0; at < (1u << 20); at += (1u << 20) / 7) {
        buf[at] ^= 0x10;
        assert_true(cmn_crc32c(0, buf, 1u << 20) != whole);
        buf[at] ^= 0x10;
    }
    free(buf);
}

/* Chunk tables walk three chunks at once (util.c): every chunk's crc equals the reference
 * for chunk sizes that take the three-chain path (multiples of 8) and ones that do not,
 * lengths with 0-2 full chunks past the last group of three and a short tail, any alignment. */
static void test_crc32c_chunks(void **state)
{
    const size_t cap = 64u << 10;
    uint8_t *buf = malloc(cap + 64);
    uint32_t *out = malloc((cap + 1) * sizeof(*out));
    uint64_t st = 0x0badc0ffee;
    assert_non_null(buf);
    assert_non_null(out);
    for (size_t i = 0; i < cap + 64; i++)
        buf[i] = (uint8_t)cmn_rand64(&st);

    static const size_t chunks[] = {4096, 8, 24, 1, 12, 4100, 1000};
    for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
        size_t ch = chunks[c];
        for (int r = 0; r < 60; r++) {
            size_t full = (size_t)r % 8; /* 0..7 full chunks: 0-2 past a group */
            size_t tail = r < 8 ? 0 : (size_t)(cmn_rand64(&st) % ch);
            size_t len = full * ch + tail, off = (size_t)(cmn_rand64(&st) % 64);
            if (len > cap)
                len = cap;
            size_t n = (len + ch - 1) / ch;
            out[n] = 0xdeadbeef; /* nothing written past the last chunk */
            cmn_crc32c_chunks(buf + off, len, ch, out);
            for (size_t i = 0; i < n; i++)
                assert_int_equal(out[i],
                                 ref_crc32c(0, buf + off + i * ch, CMN_MIN(ch, len - i * ch)));
            assert_int_equal(out[n], 0xdeadbeef);
        }
    }
    /* a flipped bit changes its own chunk's crc and no other */
    uint32_t before[16], after[16];
    cmn_crc32c_chunks(buf, 16 * 4096, 4096, before);
    buf[5 * 4096 + 77] ^= 0x01;
    cmn_crc32c_chunks(buf, 16 * 4096, 4096, after);
    for (int i = 0; i < 16; i++)
        assert_true((before[i] != after[i]) == (i == 5));
    free(out);
    free(buf);
}

static void test_hash64(void **state)
{
    char a[64], b[64];
    memset(a, 'x', sizeof(a));
    memcpy(b, a, sizeof(b));
    for (size_t n = 0; n <= sizeof(a); n++) {
        assert_true(cmn_hash64(a, n, 1) == cmn_hash64(b, n, 1));
        if (n > 0) {
            b[n - 1] ^= 1;
            assert_true(cmn_hash64(a, n, 1) != cmn_hash64(b, n, 1));
            b[n - 1] ^= 1;
        }
    }
    assert_true(cmn_hash64("key", 3, 1) != cmn_hash64("key", 3, 2));
    assert_true(cmn_hash64("ab", 2, 0) != cmn_hash64("ba", 2, 0));
}

struct capture {
    int n;
    int last_level;
    char last[256];
};

static void capture_sink(int level, const char *msg, void *arg)
{
    struct capture *c = arg;
    c->n++;
    c->last_level = level;
    strncpy(c->last, msg, sizeof(c->last) - 1);
}

static void test_log_levels_and_sink(void **state)
{
    struct capture cap = {0};
    tlog_set_sink(capture_sink, &cap);
    tlog_set_level(TLOG_WARNING);
    TLOG_D("hidden %d", 1);
    TLOG_I("hidden too");
    assert_int_equal(cap.n, 0);
    TLOG_E("shown %s", "error");
    assert_int_equal(cap.n, 1);
    assert_int_equal(cap.last_level, TLOG_ERR);
    assert_string_equal(cap.last, "shown error");
    assert_int_equal(tlog_parse_level("debug"), TLOG_DEBUG);
    assert_int_equal(tlog_parse_level("WARN"), TLOG_WARNING);
    assert_int_equal(tlog_parse_level("7"), TLOG_DEBUG);
    assert_int_equal(tlog_parse_level("loud"), -EINVAL);

    /* rate limit: burst of 3 per long window; the rest are counted, then reported */
    struct tlog_ratelimit rl = {.interval_ms = 100000, .burst = 3};
    cap.n = 0;
    for (int i = 0; i < 10; i++)
        tlog_rl_msg(&rl, TLOG_ERR, "boom %d", i);
    assert_int_equal(cap.n, 3);
    assert_int_equal(rl.suppressed, 7);
    rl.window_start_ms = 1; /* force the window to end */
    tlog_rl_msg(&rl, TLOG_ERR, "again");
    assert_int_equal(cap.n, 5); /* the "suppressed" notice plus the message */
    assert_string_equal(cap.last, "again");
    tlog_set_sink(NULL, NULL);
    tlog_set_level(TLOG_NOTICE);
}

/* Write @text to @root/@rel, making its directories. */
static void put_file(const char *root, const char *rel, const char *text)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", root, rel);
    for (char *p = path + strlen(root) + 1; (p = strchr(p, '/')); p++) {
        *p = '\0';
        mkdir(path, 0700);
        *p = '/';
    }
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* cmn_mem_limit: RAM, or the smallest cgroup v2 memory.max on the way up to the root. */
static void test_mem_limit(void **state)
{
    char root[] = "/tmp/test_common.XXXXXX";
    (void)state;
    uint64_t ram = (uint64_t)sysconf(_SC_PHYS_PAGES) * (uint64_t)sysconf(_SC_PAGESIZE);

    assert_non_null(mkdtemp(root));
    assert_int_equal(cmn_mem_limit(root), ram); /* no /proc/self/cgroup: RAM */
    put_file(root, "proc/self/cgroup", "0::/a/b/c\n");
    assert_int_equal(cmn_mem_limit(root), ram); /* no memory.max files: RAM */
    put_file(root, "sys/fs/cgroup/a/b/c/memory.max", "max\n");
    put_file(root, "sys/fs/cgroup/a/b/memory.max", "1073741824\n");
    put_file(root, "sys/fs/cgroup/a/memory.max", "2147483648\n");
    assert_int_equal(cmn_mem_limit(root), ram < (1ull << 30) ? ram : 1ull << 30); /* the parent's */
    put_file(root, "sys/fs/cgroup/a/memory.max", "536870912\n");
    assert_int_equal(cmn_mem_limit(root),
                     ram < (512ull << 20) ? ram : 512ull << 20); /* grandparent */
    put_file(root, "proc/self/cgroup", "12:memory:/x\n0::/\n");  /* the root cgroup: no limit */
    assert_int_equal(cmn_mem_limit(root), ram);
    assert_true(cmn_mem_limit("") > 0); /* this system */
    char cmd[1100];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
    assert_int_equal(system(cmd), 0);
}

struct t_item {
    int v;
    struct cmn_link link;
};

/* The values of @l head to tail, checking the links both ways. */
static void t_list_expect(const struct cmn_list *l, const int *want, int n)
{
    const struct cmn_link *k = l->head, *prev = NULL;
    int i = 0;

    for (; k; prev = k, k = k->next, i++) {
        assert_true(i < n);
        assert_ptr_equal(k->prev, prev);
        assert_int_equal(CMN_LIST_ENTRY(k, const struct t_item, link)->v, want[i]);
    }
    assert_int_equal(i, n);
    assert_ptr_equal(l->tail, prev);
    assert_true(cmn_list_empty(l) == (n == 0));
}

/* common/list.h: push at both ends, insert after, unlink at the ends and inside. */
static void test_list(void **state)
{
    struct t_item it[5];
    struct cmn_list l = {NULL, NULL};

    (void)state;
    for (int i = 0; i < 5; i++)
        it[i].v = i;
    t_list_expect(&l, NULL, 0);
    assert_null(CMN_LIST_ENTRY(l.head, struct t_item, link));
    cmn_list_push_tail(&l, &it[1].link);
    cmn_list_push_head(&l, &it[0].link);
    cmn_list_push_tail(&l, &it[3].link);
    cmn_list_insert_after(&l, &it[1].link, &it[2].link);
    cmn_list_insert_after(&l, &it[3].link, &it[4].link); /* after the tail: the new tail */
    t_list_expect(&l, (const int[]){0, 1, 2, 3, 4}, 5);
    cmn_list_unlink(&l, &it[2].link);
    assert_null(it[2].link.prev);
    assert_null(it[2].link.next);
    t_list_expect(&l, (const int[]){0, 1, 3, 4}, 4);
    cmn_list_unlink(&l, &it[0].link);
    cmn_list_unlink(&l, &it[4].link);
    t_list_expect(&l, (const int[]){1, 3}, 2);
    cmn_list_unlink(&l, &it[1].link);
    cmn_list_unlink(&l, &it[3].link);
    t_list_expect(&l, NULL, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list),         cmocka_unit_test(test_parse_size),
        cmocka_unit_test(test_parse_misc),   cmocka_unit_test(test_crc32c),
        cmocka_unit_test(test_crc32c_large), cmocka_unit_test(test_crc32c_chunks),
        cmocka_unit_test(test_hash64),       cmocka_unit_test(test_log_levels_and_sink),
        cmocka_unit_test(test_mem_limit),    cmocka_unit_test(test_parse_hostport),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
