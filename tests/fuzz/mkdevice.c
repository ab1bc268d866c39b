/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mkdevice.c: seed generator for fuzz_disk_recovery. Fills a small device through the
 * real disk tier (three sealed regions holding values, an overwrite and a tombstone),
 * then writes it in the harness's compact layout (fuzz_disk.h) under a few flag sets.
 * Usage: fuzz_mkdevice OUTDIR      (the device file itself is made in OUTDIR and removed)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hybridcache/hc_i.h"
#include "ioengine/ioengine.h"
#include "tests/fuzz/fuzz_disk.h"

static int mk_put(struct hc_disk *d, unsigned i, unsigned v)
{
    char key[16];
    uint8_t val[FUZZ_DISK_VALUE_MAX];
    size_t klen = fuzz_disk_key(i, key), len = fuzz_disk_value(i, v, val);
    return hc_disk_insert(d, hc_key_hash(key, klen), key, klen, val, len);
}

static int mk_del(struct hc_disk *d, unsigned i)
{
    char key[16];
    size_t klen = fuzz_disk_key(i, key);
    return hc_disk_remove(d, hc_key_hash(key, klen), key, klen);
}

static int mk_write(const char *dir, const char *name, const uint8_t *in, size_t len)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(in, 1, len, f) != len || fclose(f) != 0) {
        fprintf(stderr, "fuzz_mkdevice: %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static uint8_t dev_img[FUZZ_DISK_SIZE], in[FUZZ_DISK_INPUT];
    char path[4096];
    struct dev *dev;
    struct hc_disk *d;
    int rc = 0;

    if (argc != 2) {
        fprintf(stderr, "usage: fuzz_mkdevice OUTDIR\n");
        return 2;
    }
    snprintf(path, sizeof(path), "%s/mkdevice.%d.dev", argv[1], (int)getpid());
    unlink(path);
    struct dev_conf dc = {.path = path, .size = FUZZ_DISK_SIZE, .direct_io = false, .create = true};
    if ((rc = dev_open(&dc, &dev)) < 0) {
        fprintf(stderr, "fuzz_mkdevice: dev_open: %s\n", strerror(-rc));
        return 1;
    }
    struct hc_disk_conf hc = {.dev = dev,
                              .io_engine = "psync",
                              .io_depth = 2,
                              .block_size = FUZZ_DISK_BLOCK,
                              .region_size = FUZZ_DISK_REGION,
                              .compression = true,
                              .identity = FUZZ_DISK_IDENTITY};
    if ((rc = hc_disk_open(&hc, &d)) < 0) {
        fprintf(stderr, "fuzz_mkdevice: hc_disk_open: %s\n", strerror(-rc));
        unlink(path);
        return 1;
    }
    /* Region A: k0 k1 k2 k3(v1); B: k4, k2(v1), tombstone k1, k5; C: k6 k7(v1) k3(v0) k8.
     * Each region's entries fit in its first FUZZ_DISK_HEAD bytes. */
    rc |= mk_put(d, 0, 0) | mk_put(d, 1, 0) | mk_put(d, 2, 0) | mk_put(d, 3, 1);
    rc |= hc_disk_flush(d);
    rc |= mk_put(d, 4, 0) | mk_put(d, 2, 1) | mk_del(d, 1) | mk_put(d, 5, 0);
    rc |= hc_disk_flush(d);
    rc |= mk_put(d, 6, 0) | mk_put(d, 7, 1) | mk_put(d, 3, 0) | mk_put(d, 8, 0);
    rc |= hc_disk_flush(d);
    hc_disk_close(d);
    if (rc) {
        fprintf(stderr, "fuzz_mkdevice: filling the device failed\n");
        unlink(path);
        return 1;
    }

    int fd = open(path, O_RDONLY);
    ssize_t n = fd >= 0 ? pread(fd, dev_img, sizeof(dev_img), 0) : -1;
    if (fd >= 0)
        close(fd);
    unlink(path);
    if (n != (ssize_t)sizeof(dev_img)) {
        fprintf(stderr, "fuzz_mkdevice: reading the device back failed\n");
        return 1;
    }
    /* The compact layout must hold every nonzero byte, or the seed would lose entries. */
    static uint8_t covered[FUZZ_DISK_SIZE];
#define MK_COPY(dev_off, in_off, len)                                                              \
    do {                                                                                           \
        memcpy(in + (in_off), dev_img + (dev_off), (len));                                         \
        memset(covered + (dev_off), 1, (len));                                                     \
    } while (0)
    FUZZ_DISK_FOR_EACH_PIECE(MK_COPY);
    for (size_t i = 0; i < sizeof(dev_img); i++) {
        if (dev_img[i] && !covered[i]) {
            fprintf(stderr, "fuzz_mkdevice: device byte %zu is outside the compact layout\n", i);
            return 1;
        }
    }

    in[0] = 0;
    rc |= mk_write(argv[1], "dev-valid", in, sizeof(in));
    in[0] = FUZZ_DISK_F_FIX_HDR | FUZZ_DISK_F_FIX_FOOTER | FUZZ_DISK_F_FIX_EHDR;
    rc |= mk_write(argv[1], "dev-fix-crcs", in, sizeof(in));
    in[0] = FUZZ_DISK_F_FIX_HDR | FUZZ_DISK_F_FIX_FOOTER | FUZZ_DISK_F_FIX_EHDR |
            FUZZ_DISK_F_FIX_DATA | FUZZ_DISK_F_INSERT | FUZZ_DISK_F_REOPEN | FUZZ_DISK_F_COMPRESS;
    rc |= mk_write(argv[1], "dev-fix-all-insert-reopen", in, sizeof(in));
    /* The last region written loses its footer: recovery scans entry headers instead. */
    size_t tail_c = 1 + FUZZ_DISK_HDR + 2 * (FUZZ_DISK_HEAD + FUZZ_DISK_TAIL) + FUZZ_DISK_HEAD;
    memset(in + tail_c, 0, FUZZ_DISK_TAIL);
    in[0] = FUZZ_DISK_F_INSERT;
    rc |= mk_write(argv[1], "dev-torn-footer", in, sizeof(in));
    /* An empty device: formatted at open. */
    in[0] = FUZZ_DISK_F_INSERT | FUZZ_DISK_F_REOPEN;
    rc |= mk_write(argv[1], "dev-empty", in, 1);
    return rc ? 1 : 0;
}
