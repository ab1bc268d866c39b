/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench_freshmem.c (tierfs-bench-freshmem): what the first write to fresh memory costs
 * on this host, the cost block buffers pay before the tiers recycle them.
 *
 * Copies SIZE bytes, 1 MiB at a time from one warm buffer, into: fresh 1 MiB buffers of
 * posix_memalign (each its own mapping in 4 KiB pages, the allocator before hugebuf.c);
 * the same buffers again (recycled: what a full tier costs); fresh buffers of
 * ioeng_buf_alloc (2 MiB huge-page slots where the kernel gives them). Prints one line
 * per case: seconds and seconds per GiB. Fresh buffers are freed after each case.
 *
 * Usage: tierfs-bench-freshmem [--size SIZE]   (default 256M; 16M to 64G); man page
 * man/tierfs-bench-freshmem.1
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/util.h"
#include "ioengine/ioengine.h"

#define BFM_BUF (1u << 20)

static double bfm_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double bfm_copy(uint8_t **bufs, size_t n, const uint8_t *src)
{
    double t0 = bfm_now();
    for (size_t i = 0; i < n; i++)
        memcpy(bufs[i], src, BFM_BUF);
    return bfm_now() - t0;
}

static void bfm_row(const char *name, double s, size_t n)
{
    printf("%-26s %8.3f s  %7.3f s/GiB\n", name, s, s * 1024.0 / (double)n);
}

int main(int argc, char **argv)
{
    uint64_t size = 256ull << 20;
    int rc = 1;
    bool slots = false; /* bufs[] hold ioeng_buf_alloc buffers */

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--size") == 0 && i + 1 < argc) {
            if (cmn_parse_size(argv[++i], &size) != 0 || size < (16ull << 20) ||
                size > (64ull << 30)) {
                fprintf(stderr,
                        "tierfs-bench-freshmem: --size: '%s' is not a size from 16M "
                        "to 64G\n",
                        argv[i]);
                return 2;
            }
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            printf("usage: tierfs-bench-freshmem [--size SIZE]\n"
                   "Copy SIZE bytes (default 256M, 16M to 64G), 1 MiB at a time, into fresh\n"
                   "posix_memalign buffers, the same buffers again, and fresh ioeng_buf_alloc\n"
                   "buffers (huge-page slots); print seconds and seconds per GiB of each.\n"
                   "  --size SIZE   bytes to copy per case\n"
                   "  -h, --help    this text\n");
            return 0;
        } else {
            fprintf(stderr, "tierfs-bench-freshmem: unknown argument '%s' (see --help)\n", argv[i]);
            return 2;
        }
    }
    size_t n = (size_t)(size / BFM_BUF);
    uint8_t **bufs = calloc(n, sizeof(*bufs)), *src = malloc(BFM_BUF);
    if (!bufs || !src)
        goto out;
    memset(src, 0x5a, BFM_BUF);
    printf("tierfs-bench-freshmem: %zu MiB in 1 MiB buffers\n", n);
    for (size_t i = 0; i < n; i++)
        if (posix_memalign((void **)&bufs[i], 4096, BFM_BUF) != 0)
            goto out;
    bfm_row("fresh, posix_memalign", bfm_copy(bufs, n, src), n);
    bfm_row("recycled", bfm_copy(bufs, n, src), n);
    for (size_t i = 0; i < n; i++) {
        free(bufs[i]);
        bufs[i] = NULL;
    }
    slots = true;
    for (size_t i = 0; i < n; i++)
        if (!(bufs[i] = ioeng_buf_alloc(BFM_BUF)))
            goto out;
    bfm_row(ioeng_buf_huge(bufs[0]) ? "fresh, ioeng_buf_alloc"
                                    : "fresh, ioeng_buf_alloc (no slots)",
            bfm_copy(bufs, n, src), n);
    for (size_t i = 0; i < n; i++) {
        ioeng_buf_free(bufs[i]);
        bufs[i] = NULL;
    }
    rc = 0;
out:
    if (rc)
        fprintf(stderr, "tierfs-bench-freshmem: out of memory\n");
    for (size_t i = 0; bufs && i < n; i++) {
        if (slots)
            ioeng_buf_free(bufs[i]);
        else
            free(bufs[i]);
    }
    free(bufs);
    free(src);
    return rc;
}
