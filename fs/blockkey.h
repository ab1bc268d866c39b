/* SPDX-License-Identifier: Apache-2.0 */
/*
 * blockkey.h: the cache identity and the block key format of tierfs, shared by the
 * daemon (fs/) and tierfs-cache warm (tools/) so that a cache one of them fills is
 * a cache the other reads. Library tierfs_fsutil; no FUSE, no threads, no state.
 */
#ifndef TIERFS_FS_BLOCKKEY_H
#define TIERFS_FS_BLOCKKEY_H

#include <stddef.h>
#include <stdint.h>

/*
 * Build the cache key of block @blk of object @key (version @etag) of @bucket, cached
 * with blocks of @block_size bytes: "bucket NUL key NUL etag NUL, block index (8 bytes
 * LE), block size (4 bytes LE)". The block size is part of the key so a remount with
 * another size never mixes blocks. tools/tierfs_cache.c decodes this layout for display.
 * @return the key length, or 0 if it does not fit in @cap (nothing useful in @buf).
 * Thread safe.
 */
size_t fs_blockkey_build(const char *bucket, uint32_t block_size, const char *key, const char *etag,
                         uint64_t blk, void *buf, size_t cap);

/*
 * The cache key of piece @piece (bytes [@piece * @piece_size, + @piece_size) of the object)
 * of the same object version: the block key's layout with the piece index in place of the
 * block index and 4 more bytes (the piece size, LE), so no piece key equals a block key.
 * A piece holds the same bytes as that range of a block (the ETag pins both), so a reader
 * may take either. @return the key length, or 0 if it does not fit (or @piece_size is 0).
 */
size_t fs_piecekey_build(const char *bucket, uint32_t block_size, const char *key, const char *etag,
                         uint64_t piece, uint32_t piece_size, void *buf, size_t cap);

/*
 * The cache identity stored in the disk tier's header: "ENDPOINT BUCKET", where ENDPOINT
 * is @endpoint, else $AWS_ENDPOINT_URL, else "aws". A cache opened with another identity
 * is wiped, so blocks of one bucket are never served for another.
 * @return a malloc'd string the caller frees, or NULL (out of memory).
 */
char *fs_cache_identity(const char *endpoint, const char *bucket);

#endif
