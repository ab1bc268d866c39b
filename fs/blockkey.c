/* SPDX-License-Identifier: Apache-2.0 */
/* blockkey.c: the block key format and cache identity shared by tierfs and tierfs-cache. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/blockkey.h"

/* The common layout; @piece_size 0 is a block key, else a piece key (4 more bytes). */
static size_t fs_key_build(const char *bucket, uint32_t block_size, const char *key,
                           const char *etag, uint64_t idx, uint32_t piece_size, void *buf,
                           size_t cap)
{
    size_t bl = strlen(bucket) + 1, kl = strlen(key) + 1, el = strlen(etag) + 1;
    size_t len = bl + kl + el + (piece_size ? 16 : 12);
    uint8_t *p = buf;
    uint64_t blk = idx;

    if (len > cap)
        return 0;
    memcpy(p, bucket, bl);
    memcpy(p + bl, key, kl);
    memcpy(p + bl + kl, etag, el);
    p += bl + kl + el;
    for (int i = 0; i < 8; i++)
        *p++ = (uint8_t)(blk >> (8 * i));
    for (int i = 0; i < 4; i++)
        *p++ = (uint8_t)(block_size >> (8 * i));
    for (int i = 0; piece_size && i < 4; i++)
        *p++ = (uint8_t)(piece_size >> (8 * i));
    return len;
}

size_t fs_blockkey_build(const char *bucket, uint32_t block_size, const char *key, const char *etag,
                         uint64_t blk, void *buf, size_t cap)
{
    return fs_key_build(bucket, block_size, key, etag, blk, 0, buf, cap);
}

size_t fs_piecekey_build(const char *bucket, uint32_t block_size, const char *key, const char *etag,
                         uint64_t piece, uint32_t piece_size, void *buf, size_t cap)
{
    return piece_size ? fs_key_build(bucket, block_size, key, etag, piece, piece_size, buf, cap)
                      : 0;
}

char *fs_cache_identity(const char *endpoint, const char *bucket)
{
    const char *ep = endpoint ? endpoint : getenv("AWS_ENDPOINT_URL");
    char *id = NULL;

    if (asprintf(&id, "%s %s", ep ? ep : "aws", bucket) < 0)
        return NULL;
    return id;
}
