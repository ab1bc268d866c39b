/* SPDX-License-Identifier: Apache-2.0 */
/* util.h: small shared helpers: checksums, hashing, clocks, size parsing. */
#ifndef TIERFS_COMMON_UTIL_H
#define TIERFS_COMMON_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define CMN_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define CMN_MIN(a, b) ((a) < (b) ? (a) : (b))
#define CMN_MAX(a, b) ((a) > (b) ? (a) : (b))
#define CMN_ALIGN_UP(x, a) (((x) + ((a)-1)) & ~((__typeof__(x))(a)-1))
#define CMN_IS_POW2(x) ((x) != 0 && ((x) & ((x)-1)) == 0)

/*
 * CRC-32C (Castagnoli), hardware SSE4.2 where the CPU has it, a table otherwise.
 * Chain calls by passing the previous result as @crc; start with 0.
 * @return the updated CRC. Thread safe.
 */
uint32_t cmn_crc32c(uint32_t crc, const void *buf, size_t len);

/*
 * CRC-32C of each @chunk-byte piece of @buf (the last one may be shorter):
 * out[i] = cmn_crc32c(0, buf + i * chunk, ...) for i < ceil(@len / @chunk). Faster than a
 * loop of cmn_crc32c on short chunks: it walks three chunks at once. Thread safe.
 */
void cmn_crc32c_chunks(const void *buf, size_t len, size_t chunk, uint32_t *out);

/* 64-bit non-cryptographic hash of a byte string (well mixed, fast). @return hash. */
uint64_t cmn_hash64(const void *buf, size_t len, uint64_t seed);

/* Monotonic clock. @return nanoseconds / milliseconds since an arbitrary start. */
uint64_t cmn_now_ns(void);
uint64_t cmn_now_ms(void);
/* Wall clock in nanoseconds since the epoch. */
uint64_t cmn_wall_ns(void);

/*
 * Parse a byte size: decimal digits with an optional K, M, G or T suffix
 * (powers of 1024; "KiB"/"KB"/"k" spellings accepted). No sign, no overflow.
 * @return 0 and *out, or -EINVAL.
 */
int cmn_parse_size(const char *s, uint64_t *out);
/* Parse a non-negative integer (decimal) that fits @max. @return 0 or -EINVAL. */
int cmn_parse_u64(const char *s, uint64_t max, uint64_t *out);
/*
 * Parse HOST:PORT (an IPv4 address or [IPv6], port 0-65535; 0 picks a free port) into
 * @ss and *@len. Host names are refused: the address is bound before the network may be
 * up. @return 0 or -EINVAL.
 */
int cmn_parse_hostport(const char *s, struct sockaddr_storage *ss, socklen_t *len);
/* Parse a boolean: 1/0, true/false, yes/no, on/off. @return 0 or -EINVAL. */
int cmn_parse_bool(const char *s, int *out);
/* Parse a duration: a number with optional ms, s, m, h suffix (default s). @return 0 / -EINVAL. */
int cmn_parse_duration_ms(const char *s, uint64_t *out_ms);

/* Format @bytes as "12.3 MiB" into @buf. @return buf. */
char *cmn_fmt_size(uint64_t bytes, char *buf, size_t cap);

/*
 * The memory this process may use: physical RAM, or less where a cgroup v2 memory.max of
 * its cgroup or of an ancestor says so (a container's limit, a systemd MemoryMax=).
 * @root: "" for this system, or a directory standing in for / (tests).
 * @return bytes (0 only if even sysconf cannot tell).
 */
uint64_t cmn_mem_limit(const char *root);

/* xorshift-style PRNG for jitter and workload generation; state must be non-zero. */
uint64_t cmn_rand64(uint64_t *state);

/*
 * A latency histogram with fixed bucket bounds (cmn_hist_le, in seconds: 100 us, a memory
 * hit through FUSE, to 10 s). Buckets are not cumulative here; a Prometheus renderer sums
 * them. Updated with relaxed atomics by any thread; read a copy with cmn_hist_read.
 */
#define CMN_HIST_NB 16
extern const double cmn_hist_le[CMN_HIST_NB];
struct cmn_hist {
    uint64_t b[CMN_HIST_NB + 1]; /* last: above the largest bound (+Inf) */
    uint64_t sum_ns;
    uint64_t count;
};
/* Count one observation of @ns nanoseconds. Thread safe. */
void cmn_hist_observe(struct cmn_hist *h, uint64_t ns);
/* Copy @h into @out, field by field with atomic loads. */
void cmn_hist_read(const struct cmn_hist *h, struct cmn_hist *out);

#endif
