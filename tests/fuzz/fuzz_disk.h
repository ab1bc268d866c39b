/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_disk.h: the small disk-tier layout shared by fuzz_disk_recovery and the seed
 * generator (mkdevice.c), the compact input format, and the values the seeds store.
 *
 * Device: a 4 KiB header area, then FUZZ_DISK_REGIONS regions of FUZZ_DISK_REGION bytes
 * (the smallest region the disk tier accepts for 64 KiB blocks). Values are small, so a
 * region's interesting bytes are its first FUZZ_DISK_HEAD bytes (entries) and its last
 * FUZZ_DISK_TAIL bytes (summary records + footer); everything else is zero.
 *
 * Compact input (FUZZ_DISK_INPUT bytes, shorter inputs are zero-padded):
 *   [0]                      flags (FUZZ_DISK_F_*)
 *   [1, 1 + FUZZ_DISK_HDR)   device bytes [0, FUZZ_DISK_HDR): the header
 *   then per region r:       FUZZ_DISK_HEAD bytes at the region start,
 *                            FUZZ_DISK_TAIL bytes at the region end
 */
#ifndef TIERFS_FUZZ_DISK_H
#define TIERFS_FUZZ_DISK_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define FUZZ_DISK_BLOCK (64u << 10)
#define FUZZ_DISK_REGION (68u << 10)
#define FUZZ_DISK_REGIONS 5u
#define FUZZ_DISK_DATA_OFF 4096u
#define FUZZ_DISK_SIZE (FUZZ_DISK_DATA_OFF + FUZZ_DISK_REGIONS * FUZZ_DISK_REGION)
#define FUZZ_DISK_IDENTITY "tierfs-fuzz:v1"

#define FUZZ_DISK_HDR 1536u
#define FUZZ_DISK_HEAD 3072u
#define FUZZ_DISK_TAIL 1024u
#define FUZZ_DISK_INPUT (1u + FUZZ_DISK_HDR + FUZZ_DISK_REGIONS * (FUZZ_DISK_HEAD + FUZZ_DISK_TAIL))

/* Input flags: which checksums the harness recomputes before writing the device, so
 * mutations get past them and reach the code behind; and what it does after recovery. */
#define FUZZ_DISK_F_FIX_HDR 0x01    /* device header crc */
#define FUZZ_DISK_F_FIX_FOOTER 0x02 /* summary + footer crc of every region */
#define FUZZ_DISK_F_FIX_EHDR 0x04   /* entry header crcs in region heads */
#define FUZZ_DISK_F_INSERT 0x08     /* insert a new value, flush, look it up */
#define FUZZ_DISK_F_FIX_DATA 0x10   /* entry data crcs too (values are then fuzzer-made) */
#define FUZZ_DISK_F_REOPEN 0x20     /* close and recover once more */
#define FUZZ_DISK_F_COMPRESS 0x40   /* open with compression on */

/* Keys "k0".."k9"; value versions 0..2. */
#define FUZZ_DISK_KEYS 10u
#define FUZZ_DISK_VERSIONS 3u
#define FUZZ_DISK_VALUE_MAX 2048u

static inline size_t fuzz_disk_key(unsigned i, char *key)
{
    return (size_t)sprintf(key, "k%u", i);
}

/* Value version @v of key @i: even keys compress well, odd keys do not. @return length. */
static inline size_t fuzz_disk_value(unsigned i, unsigned v, uint8_t *buf)
{
    size_t len = 150 + 40 * i + 300 * v;
    uint32_t x = 0x9e3779b9u * (i * 7 + v + 1);
    for (size_t j = 0; j < len; j++) {
        if (i % 2 == 0) {
            buf[j] = (uint8_t)('a' + (i + v + j / 64) % 26);
        } else {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            buf[j] = (uint8_t)x;
        }
    }
    return len;
}

/* Device offset of compact input byte ranges: call @fn(dev_off, input_off, len). */
#define FUZZ_DISK_FOR_EACH_PIECE(fn)                                                               \
    do {                                                                                           \
        size_t in_off_ = 1;                                                                        \
        fn((size_t)0, in_off_, (size_t)FUZZ_DISK_HDR);                                             \
        in_off_ += FUZZ_DISK_HDR;                                                                  \
        for (size_t r_ = 0; r_ < FUZZ_DISK_REGIONS; r_++) {                                        \
            size_t base_ = FUZZ_DISK_DATA_OFF + r_ * (size_t)FUZZ_DISK_REGION;                     \
            fn(base_, in_off_, (size_t)FUZZ_DISK_HEAD);                                            \
            in_off_ += FUZZ_DISK_HEAD;                                                             \
            fn(base_ + FUZZ_DISK_REGION - FUZZ_DISK_TAIL, in_off_, (size_t)FUZZ_DISK_TAIL);        \
            in_off_ += FUZZ_DISK_TAIL;                                                             \
        }                                                                                          \
    } while (0)

#endif
