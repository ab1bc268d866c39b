/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_disk_recovery.c: disk tier recovery (hc_disk_open) from a device whose bytes come
 * from the fuzzer, in the compact layout of fuzz_disk.h, with the psync engine.
 *
 * Checks: open succeeds (a device it cannot use is formatted, never refused), the debug
 * invariants hold after recovery, and every lookup is a miss or returns a value no longer
 * than the block size that equals one a prior insert stored for that key (unless the
 * harness itself made fuzzed data verify, FUZZ_DISK_F_FIX_DATA). With FUZZ_DISK_F_INSERT a
 * value inserted after recovery reads back as inserted or misses; FUZZ_DISK_F_REOPEN
 * recovers once more from what the tier wrote. Close frees everything (LeakSanitizer).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "hybridcache/disk_i.h"
#include "hybridcache/hc_i.h"
#include "ioengine/ioengine.h"
#include "tests/fuzz/fuzz_common.h"
#include "tests/fuzz/fuzz_disk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_EHDR ((uint32_t)sizeof(struct hc_disk_ehdr))
#define FUZZ_FOOTER ((uint32_t)sizeof(struct hc_disk_footer))
#define FUZZ_SUM ((uint32_t)sizeof(struct hc_disk_sum))

static char fuzz_dev_path[4096];
static bool fuzz_verbose; /* FUZZ_DISK_VERBOSE=1: print the hits (to check the seeds) */
/* FUZZ_DISK_NO_INVARIANTS=1: skip hc_disk_check_invariants(), to fuzz past a known
 * invariant failure while it is being fixed. */
static bool fuzz_invariants;
static uint8_t fuzz_img[FUZZ_DISK_SIZE];

static void fuzz_cleanup(void)
{
    if (fuzz_dev_path[0])
        unlink(fuzz_dev_path);
}

static void fuzz_init(void)
{
    const char *dir = getenv("TMPDIR");
    if (!dir || !*dir)
        dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    fuzz_verbose = getenv("FUZZ_DISK_VERBOSE") != NULL;
    fuzz_invariants = getenv("FUZZ_DISK_NO_INVARIANTS") == NULL;
    snprintf(fuzz_dev_path, sizeof(fuzz_dev_path), "%s/tierfs-fuzz-disk.%d.dev", dir,
             (int)getpid());
    atexit(fuzz_cleanup);
}

/* ---- checksum fix-ups, so that mutations reach the code behind the checks ---- */

static void fuzz_fix_header(void)
{
    struct hc_disk_hdr h;
    memcpy(&h, fuzz_img, sizeof(h));
    h.hdr_crc = 0;
    h.hdr_crc = cmn_crc32c(0, &h, sizeof(h));
    memcpy(fuzz_img, &h, sizeof(h));
}

static void fuzz_fix_footer(uint8_t *region)
{
    struct hc_disk_footer f;
    memcpy(&f, region + FUZZ_DISK_REGION - FUZZ_FOOTER, sizeof(f));
    uint64_t sum_bytes = (uint64_t)f.nentries * FUZZ_SUM;
    if (sum_bytes + FUZZ_FOOTER <= FUZZ_DISK_REGION)
        f.summary_crc =
            cmn_crc32c(0, region + FUZZ_DISK_REGION - FUZZ_FOOTER - sum_bytes, sum_bytes);
    f.footer_crc = 0;
    f.footer_crc = cmn_crc32c(0, &f, sizeof(f));
    memcpy(region + FUZZ_DISK_REGION - FUZZ_FOOTER, &f, sizeof(f));
}

static void fuzz_fix_entries(uint8_t *region, bool data)
{
    for (uint32_t off = 0; off + FUZZ_EHDR <= FUZZ_DISK_HEAD;) {
        struct hc_disk_ehdr h;
        memcpy(&h, region + off, sizeof(h));
        if (h.magic != HC_DISK_ENTRY_MAGIC || h.klen > HC_KEY_MAX || h.stored_len > FUZZ_DISK_BLOCK)
            break;
        if (h.table_len > FUZZ_DISK_BLOCK)
            break;
        uint64_t size = hc_disk_entry_size(h.klen, h.table_len, h.stored_len);
        if (off + size > FUZZ_DISK_REGION)
            break;
        /* With a chunk table the data checksum covers the key and the table's used crcs
         * (the chunks are left as the input has them: a bad one must read as a miss). */
        size_t covered =
            h.chunk_size
                ? CMN_MIN((h.stored_len + HC_DISK_CHUNK - 1) / HC_DISK_CHUNK * 4u, h.table_len)
                : h.stored_len;
        if (data)
            h.data_crc = cmn_crc32c(0, region + off + FUZZ_EHDR, (size_t)h.klen + covered);
        h.hdr_crc = 0;
        h.hdr_crc = cmn_crc32c(0, &h, sizeof(h));
        memcpy(region + off, &h, sizeof(h));
        off += (uint32_t)size;
    }
}

/* ---- synchronous lookups ---- */

struct fuzz_wait {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done;
    ssize_t result;
};

static void fuzz_lookup_done(ssize_t result, void *arg)
{
    struct fuzz_wait *w = arg;
    pthread_mutex_lock(&w->lock);
    w->result = result;
    w->done = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

/* Wait for a lookup that started with @rc. @return its result. */
static ssize_t fuzz_wait_result(struct fuzz_wait *w, int rc)
{
    if (rc < 0) {
        FUZZ_CHECK(rc == -ENOENT || rc == -ENOMEM);
        return rc;
    }
    pthread_mutex_lock(&w->lock);
    while (!w->done)
        pthread_cond_wait(&w->cond, &w->lock);
    pthread_mutex_unlock(&w->lock);
    FUZZ_CHECK(w->result >= -4095);
    FUZZ_CHECK(w->result <= (ssize_t)FUZZ_DISK_BLOCK);
    return w->result;
}

/* @return the lookup result: value bytes in @buf, or -errno (a miss). */
static ssize_t fuzz_lookup(struct hc_disk *d, const char *key, size_t klen, uint8_t *buf)
{
    struct fuzz_wait w = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    return fuzz_wait_result(&w, hc_disk_lookup(d, hc_key_hash(key, klen), key, klen, buf,
                                               FUZZ_DISK_BLOCK, fuzz_lookup_done, &w));
}

/* A partial lookup parses the same entries (header, chunk table): it returns at most the
 * covering chunks, and a hit only where the harness made fuzzed data verify (the values
 * inserted are too small to get a chunk table). */
static void fuzz_lookup_range(struct hc_disk *d, const char *key, size_t klen, uint32_t off,
                              uint8_t *buf, bool check_values)
{
    struct fuzz_wait w = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    ssize_t n =
        fuzz_wait_result(&w, hc_disk_lookup_range(d, hc_key_hash(key, klen), key, klen, off, 100,
                                                  buf, FUZZ_DISK_BLOCK, fuzz_lookup_done, &w));
    FUZZ_CHECK(n <= (ssize_t)hc_disk_range_cap(off, 100));
    FUZZ_CHECK(n < 0 || !check_values);
}

/* Look up every key; a hit must be a value some insert stored for it. */
static void fuzz_lookup_all(struct hc_disk *d, uint8_t *buf, bool check_values)
{
    uint8_t want[FUZZ_DISK_VALUE_MAX];
    char key[16];

    for (unsigned i = 0; i < FUZZ_DISK_KEYS; i++) {
        size_t klen = fuzz_disk_key(i, key);
        fuzz_lookup_range(d, key, klen, 0, buf, check_values);
        fuzz_lookup_range(d, key, klen, 5000, buf, check_values);
        ssize_t n = fuzz_lookup(d, key, klen, buf);
        if (fuzz_verbose)
            fprintf(stderr, "lookup %s: %zd\n", key, n);
        if (n < 0 || !check_values)
            continue;
        bool match = false;
        for (unsigned v = 0; v < FUZZ_DISK_VERSIONS && !match; v++) {
            size_t len = fuzz_disk_value(i, v, want);
            match = (size_t)n == len && memcmp(buf, want, len) == 0;
        }
        if (!match)
            fprintf(stderr, "key %s: served %zd bytes that no insert stored\n", key, n);
        FUZZ_CHECK(match);
    }
    /* Keys nobody stored: the empty key and one longer than any seed key. */
    FUZZ_CHECK(fuzz_lookup(d, "", 0, buf) < 0 || !check_values);
    FUZZ_CHECK(fuzz_lookup(d, "k10-never-stored", 16, buf) < 0 || !check_values);
}

static struct hc_disk *fuzz_open(bool compress)
{
    struct dev *dev;
    struct hc_disk *d;
    struct dev_conf dc = {.path = fuzz_dev_path, .direct_io = false};
    FUZZ_CHECK(dev_open(&dc, &dev) == 0);
    struct hc_disk_conf hc = {.dev = dev,
                              .io_engine = "psync",
                              .io_depth = 2,
                              .block_size = FUZZ_DISK_BLOCK,
                              .region_size = FUZZ_DISK_REGION,
                              .compression = compress,
                              .identity = FUZZ_DISK_IDENTITY};
    int rc = hc_disk_open(&hc, &d);
    if (rc != 0)
        fprintf(stderr, "hc_disk_open: %s\n", strerror(-rc));
    FUZZ_CHECK(rc == 0);
    if (fuzz_invariants)
        hc_disk_check_invariants(d);
    return d;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool inited;
    uint8_t in[FUZZ_DISK_INPUT];

    if (!inited) {
        fuzz_quiet_logs();
        fuzz_init();
        inited = true;
    }
    memset(in, 0, sizeof(in));
    memcpy(in, data, CMN_MIN(size, sizeof(in)));
    uint8_t flags = in[0];

    memset(fuzz_img, 0, sizeof(fuzz_img));
#define FUZZ_PLACE(dev_off, in_off, len) memcpy(fuzz_img + (dev_off), in + (in_off), (len))
    FUZZ_DISK_FOR_EACH_PIECE(FUZZ_PLACE);
    for (uint32_t r = 0; r < FUZZ_DISK_REGIONS; r++) {
        uint8_t *region = fuzz_img + FUZZ_DISK_DATA_OFF + (size_t)r * FUZZ_DISK_REGION;
        if (flags & FUZZ_DISK_F_FIX_EHDR)
            fuzz_fix_entries(region, flags & FUZZ_DISK_F_FIX_DATA);
        if (flags & FUZZ_DISK_F_FIX_FOOTER)
            fuzz_fix_footer(region);
    }
    if (flags & FUZZ_DISK_F_FIX_HDR)
        fuzz_fix_header();

    int fd = open(fuzz_dev_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    FUZZ_CHECK(fd >= 0);
    FUZZ_CHECK(pwrite(fd, fuzz_img, sizeof(fuzz_img), 0) == (ssize_t)sizeof(fuzz_img));
    close(fd);

    bool check_values = !(flags & FUZZ_DISK_F_FIX_DATA);
    bool compress = flags & FUZZ_DISK_F_COMPRESS;
    uint8_t *buf = malloc(FUZZ_DISK_BLOCK); /* exactly the capacity passed: ASan sees overruns */
    FUZZ_CHECK(buf != NULL);

    struct hc_disk *d = fuzz_open(compress);
    fuzz_lookup_all(d, buf, check_values);
    if (flags & FUZZ_DISK_F_INSERT) {
        /* A new version of k9 (the seeds never store k9 v2) and a removal of k0. */
        uint8_t val[FUZZ_DISK_VALUE_MAX];
        char key[16];
        size_t klen = fuzz_disk_key(9, key), len = fuzz_disk_value(9, 2, val);
        int rc = hc_disk_insert(d, hc_key_hash(key, klen), key, klen, val, len);
        FUZZ_CHECK(rc == 0 || rc == -EAGAIN);
        rc = hc_disk_remove(d, hc_key_hash("k0", 2), "k0", 2);
        FUZZ_CHECK(rc == 0 || rc == -ENOENT);
        hc_disk_flush(d);
        ssize_t n = fuzz_lookup(d, key, klen, buf);
        if (n >= 0 && check_values)
            FUZZ_CHECK((size_t)n == len && memcmp(buf, val, len) == 0);
        FUZZ_CHECK(fuzz_lookup(d, "k0", 2, buf) < 0);
        fuzz_lookup_all(d, buf, check_values);
        if (fuzz_invariants)
            hc_disk_check_invariants(d);
    }
    hc_disk_close(d);

    if (flags & FUZZ_DISK_F_REOPEN) {
        d = fuzz_open(compress);
        fuzz_lookup_all(d, buf, check_values);
        hc_disk_close(d);
    }
    free(buf);
    return 0;
}
