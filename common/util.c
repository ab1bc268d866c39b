/* SPDX-License-Identifier: Apache-2.0 */
/* util.c: checksums, hashing, clocks and parsers shared by every module. */
#include "common/util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* ---- CRC-32C ---- */

#define CMN_CRC_POLY 0x82F63B78u           /* Castagnoli, reflected */
#define CMN_CRC_INTERLEAVE_MIN (16u << 10) /* three chains from this length on */
#define CMN_CRC_SEG_MAX (1ull << 30)       /* bytes per chain per round (keeps k < 64) */

static uint32_t cmn_crc_table[8][256];
static uint32_t cmn_crc_x2n[64]; /* x^(2^k) mod P, reflected */
static pthread_once_t cmn_crc_once = PTHREAD_ONCE_INIT;
static bool cmn_crc_hw;

/* @a * @b mod P, both reflected (bit 31 is x^0). @return the product. */
static uint32_t cmn_crc_mulmod(uint32_t a, uint32_t b)
{
    uint32_t p = 0;
    for (uint32_t m = 1u << 31; m; m >>= 1) {
        p ^= b & (0u - ((a & m) != 0));
        b = (b >> 1) ^ (CMN_CRC_POLY & (0u - (b & 1)));
    }
    return p;
}

/* x^(8 * @len) mod P: what a CRC register is multiplied by when @len zero bytes follow.
 * @return the factor (reflected). */
static uint32_t cmn_crc_zeros_factor(uint64_t len)
{
    uint32_t f = 1u << 31; /* x^0 */
    for (unsigned k = 3; len; len >>= 1, k++)
        if (len & 1)
            f = cmn_crc_mulmod(cmn_crc_x2n[k], f);
    return f;
}

static void cmn_crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ CMN_CRC_POLY : c >> 1;
        cmn_crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            cmn_crc_table[t][i] =
                (cmn_crc_table[t - 1][i] >> 8) ^ cmn_crc_table[0][cmn_crc_table[t - 1][i] & 0xff];
    cmn_crc_x2n[0] = 1u << 30; /* x^1 */
    for (unsigned k = 1; k < CMN_ARRAY_SIZE(cmn_crc_x2n); k++)
        cmn_crc_x2n[k] = cmn_crc_mulmod(cmn_crc_x2n[k - 1], cmn_crc_x2n[k - 1]);
#if defined(__x86_64__)
    __builtin_cpu_init();
    cmn_crc_hw = __builtin_cpu_supports("sse4.2");
#endif
}

static uint32_t cmn_crc_sw(uint32_t crc, const uint8_t *p, size_t len)
{
    while (len >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        v ^= crc;
        crc = cmn_crc_table[7][v & 0xff] ^ cmn_crc_table[6][(v >> 8) & 0xff] ^
              cmn_crc_table[5][(v >> 16) & 0xff] ^ cmn_crc_table[4][(v >> 24) & 0xff] ^
              cmn_crc_table[3][(v >> 32) & 0xff] ^ cmn_crc_table[2][(v >> 40) & 0xff] ^
              cmn_crc_table[1][(v >> 48) & 0xff] ^ cmn_crc_table[0][v >> 56];
        p += 8;
        len -= 8;
    }
    while (len--)
        crc = (crc >> 8) ^ cmn_crc_table[0][(crc ^ *p++) & 0xff];
    return crc;
}

#if defined(__x86_64__)
/* Advance chain @ch[j] over the @n bytes at @p + j * @n, j = 0, 1, 2 (@n a multiple of 8):
 * three independent chains in one loop. */
__attribute__((target("sse4.2"))) static inline void cmn_crc_hw3(const uint8_t *p, size_t n,
                                                                 uint64_t ch[3])
{
    const uint8_t *pb = p + n, *pc = p + 2 * n;
    uint64_t ca = ch[0], cb = ch[1], cc = ch[2];
    for (size_t i = 0; i < n; i += 8) {
        uint64_t va, vb, vc;
        memcpy(&va, p + i, 8);
        memcpy(&vb, pb + i, 8);
        memcpy(&vc, pc + i, 8);
        ca = __builtin_ia32_crc32di(ca, va);
        cb = __builtin_ia32_crc32di(cb, vb);
        cc = __builtin_ia32_crc32di(cc, vc);
    }
    ch[0] = ca;
    ch[1] = cb;
    ch[2] = cc;
}

/*
 * crc32q has a latency of 3 cycles and a throughput of 1 per cycle, so one dependent
 * chain runs at a third of the instruction's speed. A large buffer is cut into three
 * equal segments A B C that three independent chains walk together (A from @crc, B and C
 * from 0); the register is linear, so crc(A B C) = (crc(A) * X ^ crc(B)) * X ^ crc(C)
 * with X = x^(8 |B|) mod P (cmn_crc_zeros_factor, from the x^(2^k) table). Bytes past
 * the three segments (fewer than 24) and short buffers go through one chain.
 */
__attribute__((target("sse4.2"))) static uint32_t cmn_crc_hw_run(uint32_t crc, const uint8_t *p,
                                                                 size_t len)
{
    uint64_t c = crc;
    while (len >= CMN_CRC_INTERLEAVE_MIN) {
        size_t n = (size_t)CMN_MIN(len / 3, CMN_CRC_SEG_MAX) & ~(size_t)7;
        uint64_t ch[3] = {c, 0, 0};
        cmn_crc_hw3(p, n, ch);
        uint32_t x = cmn_crc_zeros_factor(n);
        c = cmn_crc_mulmod(x, cmn_crc_mulmod(x, (uint32_t)ch[0]) ^ (uint32_t)ch[1]) ^
            (uint32_t)ch[2];
        p += 3 * n;
        len -= 3 * n;
    }
    while (len >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c = __builtin_ia32_crc32di(c, v);
        p += 8;
        len -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (len--)
        c32 = __builtin_ia32_crc32qi(c32, *p++);
    return c32;
}

/*
 * Three chunks' crcs at once, as three independent chains: a 4 KiB chunk is too short for
 * cmn_crc_hw_run's split-and-combine (the combine costs about what it saves), but a chunk
 * table needs no combine at all, so neighbouring chunks fill the instruction's latency.
 * @chunk is a multiple of 8.
 */
__attribute__((target("sse4.2"))) static void cmn_crc_hw_chunks3(const uint8_t *p, size_t chunk,
                                                                 uint32_t *out)
{
    uint64_t ch[3] = {~0u, ~0u, ~0u};
    cmn_crc_hw3(p, chunk, ch);
    for (int i = 0; i < 3; i++)
        out[i] = ~(uint32_t)ch[i];
}
#endif

void cmn_crc32c_chunks(const void *buf, size_t len, size_t chunk, uint32_t *out)
{
    const uint8_t *p = buf;
    if (!chunk)
        return;
    pthread_once(&cmn_crc_once, cmn_crc_init);
#if defined(__x86_64__)
    if (cmn_crc_hw && chunk % 8 == 0) {
        for (; len >= 3 * chunk; p += 3 * chunk, len -= 3 * chunk, out += 3)
            cmn_crc_hw_chunks3(p, chunk, out);
    }
#endif
    for (; len; out++) {
        size_t n = CMN_MIN(chunk, len);
        *out = cmn_crc32c(0, p, n);
        p += n;
        len -= n;
    }
}

uint32_t cmn_crc32c(uint32_t crc, const void *buf, size_t len)
{
    pthread_once(&cmn_crc_once, cmn_crc_init);
    crc = ~crc;
#if defined(__x86_64__)
    if (cmn_crc_hw)
        return ~cmn_crc_hw_run(crc, buf, len);
#endif
    return ~cmn_crc_sw(crc, buf, len);
}

/* ---- 64-bit hash (a wyhash-style multiply-mix; not cryptographic) ---- */

static inline uint64_t cmn_mix(uint64_t a, uint64_t b)
{
    __uint128_t r = (__uint128_t)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

static inline uint64_t cmn_rd64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

uint64_t cmn_hash64(const void *buf, size_t len, uint64_t seed)
{
    const uint64_t k0 = 0xa0761d6478bd642full, k1 = 0xe7037ed1a0b428dbull,
                   k2 = 0x8ebc6af09c88c6e3ull;
    const uint8_t *p = buf;
    uint64_t h = seed ^ cmn_mix(seed ^ k0, k1) ^ len;
    size_t n = len;
    while (n >= 16) {
        h = cmn_mix(cmn_rd64(p) ^ k1, cmn_rd64(p + 8) ^ h);
        p += 16;
        n -= 16;
    }
    uint64_t a = 0, b = 0;
    if (n >= 8) {
        a = cmn_rd64(p);
        for (size_t i = 8; i < n; i++)
            b |= (uint64_t)p[i] << (8 * (i - 8));
    } else {
        for (size_t i = 0; i < n; i++)
            a |= (uint64_t)p[i] << (8 * i);
    }
    h = cmn_mix(a ^ k1 ^ h, b ^ k2);
    return cmn_mix(h ^ k0, len ^ k2);
}

/* ---- clocks ---- */

uint64_t cmn_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t cmn_now_ms(void)
{
    return cmn_now_ns() / 1000000ull;
}

uint64_t cmn_wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- parsers ---- */

/* Read the leading decimal digits of *sp (at least one), advancing *sp past them.
 * @return 0 and *out, or -EINVAL (no digit, or overflow). */
static int cmn_parse_digits(const char **sp, uint64_t *out)
{
    const char *s = *sp;
    uint64_t v = 0;
    if (!s || !isdigit((unsigned char)*s))
        return -EINVAL;
    for (; isdigit((unsigned char)*s); s++) {
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -EINVAL;
        v = v * 10 + d;
    }
    *sp = s;
    *out = v;
    return 0;
}

int cmn_parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    uint64_t v;
    if (cmn_parse_digits(&s, &v) != 0 || *s || v > max)
        return -EINVAL;
    *out = v;
    return 0;
}

int cmn_parse_size(const char *s, uint64_t *out)
{
    uint64_t v;
    if (cmn_parse_digits(&s, &v) != 0)
        return -EINVAL;
    unsigned shift = 0;
    if (*s) {
        switch (toupper((unsigned char)*s)) {
        case 'K':
            shift = 10;
            break;
        case 'M':
            shift = 20;
            break;
        case 'G':
            shift = 30;
            break;
        case 'T':
            shift = 40;
            break;
        case 'B':
            shift = 0;
            break;
        default:
            return -EINVAL;
        }
        s++;
        if (shift && (strcasecmp(s, "iB") == 0 || strcasecmp(s, "B") == 0))
            s += strlen(s);
        if (*s)
            return -EINVAL;
    }
    if (shift && v > (UINT64_MAX >> shift))
        return -EINVAL;
    *out = v << shift;
    return 0;
}

int cmn_parse_bool(const char *s, int *out)
{
    static const char *yes[] = {"1", "true", "yes", "on"}, *no[] = {"0", "false", "no", "off"};
    if (!s)
        return -EINVAL;
    for (size_t i = 0; i < CMN_ARRAY_SIZE(yes); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -EINVAL;
}

int cmn_parse_duration_ms(const char *s, uint64_t *out_ms)
{
    char num[32];
    size_t n = 0;
    if (!s)
        return -EINVAL;
    while (n < sizeof(num) - 1 && isdigit((unsigned char)s[n])) {
        num[n] = s[n];
        n++;
    }
    num[n] = '\0';
    uint64_t v, mult;
    if (n == 0 || cmn_parse_u64(num, UINT64_MAX / 3600000ull, &v) != 0)
        return -EINVAL;
    const char *u = s + n;
    if (*u == '\0' || strcmp(u, "s") == 0)
        mult = 1000;
    else if (strcmp(u, "ms") == 0)
        mult = 1;
    else if (strcmp(u, "m") == 0 || strcmp(u, "min") == 0)
        mult = 60000;
    else if (strcmp(u, "h") == 0)
        mult = 3600000;
    else
        return -EINVAL;
    *out_ms = v * mult;
    return 0;
}

char *cmn_fmt_size(uint64_t bytes, char *buf, size_t cap)
{
    static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)bytes;
    size_t u = 0;
    while (v >= 1024.0 && u + 1 < CMN_ARRAY_SIZE(units)) {
        v /= 1024.0;
        u++;
    }
    if (u == 0)
        snprintf(buf, cap, "%llu B", (unsigned long long)bytes);
    else
        snprintf(buf, cap, "%.1f %s", v, units[u]);
    return buf;
}

uint64_t cmn_rand64(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* A cgroup v2 memory.max: a number of bytes, or "max" (none). @return bytes or 0. */
static uint64_t cmn_read_memory_max(const char *path)
{
    char buf[64];
    unsigned long long v;
    FILE *f = fopen(path, "re");

    if (!f)
        return 0;
    bool ok = fgets(buf, sizeof(buf), f) && sscanf(buf, "%llu", &v) == 1;
    fclose(f);
    return ok ? (uint64_t)v : 0;
}

uint64_t cmn_mem_limit(const char *root)
{
    long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    uint64_t lim = pages > 0 && psz > 0 ? (uint64_t)pages * (uint64_t)psz : 0;
    char path[4096], line[4096], cg[4096] = "";
    FILE *f;

    int n = snprintf(path, sizeof(path), "%s/proc/self/cgroup", root);
    if (n < 0 || (size_t)n >= sizeof(path) || !(f = fopen(path, "re")))
        return lim;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "0::", 3) == 0) { /* the unified (v2) hierarchy */
            snprintf(cg, sizeof(cg), "%s", line + 3);
            cg[strcspn(cg, "\n")] = '\0';
            break;
        }
    }
    fclose(f);
    /* Every ancestor's limit applies too: walk up to (not including) the root cgroup. */
    while (cg[0] == '/' && cg[1]) {
        n = snprintf(path, sizeof(path), "%s/sys/fs/cgroup%s/memory.max", root, cg);
        uint64_t v = n > 0 && (size_t)n < sizeof(path) ? cmn_read_memory_max(path) : 0;
        if (v && (!lim || v < lim))
            lim = v;
        char *slash = strrchr(cg, '/');
        if (slash == cg)
            break;
        *slash = '\0';
    }
    return lim;
}

const double cmn_hist_le[CMN_HIST_NB] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                         0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};

void cmn_hist_observe(struct cmn_hist *h, uint64_t ns)
{
    double s = (double)ns / 1e9;
    size_t i = 0;
    while (i < CMN_HIST_NB && s > cmn_hist_le[i])
        i++;
    __atomic_add_fetch(&h->b[i], 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&h->sum_ns, ns, __ATOMIC_RELAXED);
    __atomic_add_fetch(&h->count, 1, __ATOMIC_RELAXED);
}

void cmn_hist_read(const struct cmn_hist *h, struct cmn_hist *out)
{
    for (size_t i = 0; i <= CMN_HIST_NB; i++)
        out->b[i] = __atomic_load_n(&h->b[i], __ATOMIC_RELAXED);
    out->sum_ns = __atomic_load_n(&h->sum_ns, __ATOMIC_RELAXED);
    out->count = __atomic_load_n(&h->count, __ATOMIC_RELAXED);
}

/*
 * Parse HOST:PORT (an IPv4 address or [IPv6], port 0-65535; 0 picks a free port) into
 * @ss. Host names are refused: the address is bound before the network may be up.
 * @return 0 or -EINVAL.
 */
int cmn_parse_hostport(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[64];
    const char *colon, *h = s;
    size_t hl;
    uint64_t port;

    memset(ss, 0, sizeof(*ss));
    if (!s)
        return -EINVAL;
    if (*s == '[') {
        const char *rb = strchr(s, ']');
        if (!rb || rb[1] != ':')
            return -EINVAL;
        h = s + 1;
        hl = (size_t)(rb - h);
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return -EINVAL;
        hl = (size_t)(colon - s);
    }
    if (hl == 0 || hl >= sizeof(host) || cmn_parse_u64(colon + 1, 65535, &port) != 0)
        return -EINVAL;
    memcpy(host, h, hl);
    host[hl] = '\0';
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    if (*s != '[' && inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        *len = sizeof(*a4);
        return 0;
    }
    if (*s == '[' && inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        *len = sizeof(*a6);
        return 0;
    }
    return -EINVAL;
}
