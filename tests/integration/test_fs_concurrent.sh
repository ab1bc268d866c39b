#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# test_fs_concurrent.sh: 8 processes read one cold file at once: each byte is fetched
# from S3 exactly once (single-flight in the cache, shared pages in the kernel) and every
# reader gets the right bytes.
. "$(dirname "$0")/fs_lib.sh"
fs_init fs_concurrent

BS=65536
SIZE=$((6 * 1048576 + 999))
BLOCKS=$(( (SIZE + BS - 1) / BS ))
mkfile "$T/src/shared.bin" $SIZE
seed "$T/src" "$P"
M=$T/mnt
fs_mount "$M" "$S3_BUCKET:/$P" "block_size=64K,disk_cache=$T/cache.img,disk_cache_size=64M"
# slow first bytes so the readers really overlap
proxy '{"ttfb_ms":30}'
stat "$M/shared.bin" >/dev/null
counters_reset
cmp_parallel 8 "$T/src/shared.bin" "$M/shared.bin"
gets=$(counter get)
bytes=$(counter bytes_sent)
fs_log "blocks $BLOCKS, GETs $gets, S3 bytes $bytes, max concurrent $(counter max_concurrent)"
# Prefetch reads runs of blocks with one GET: count bytes, each must come exactly once.
[ "$bytes" -eq "$SIZE" ] || fail "S3 sent $bytes bytes for a $SIZE-byte file"
[ "$gets" -le "$BLOCKS" ] || fail "$gets GETs for $BLOCKS blocks"
[ "$(counter head)" -eq 0 ] || fail "open of a freshly looked-up file should not HEAD"
proxy '{}'

# A second round from another process reads from the caches: no GETs.
counters_reset
cmp "$T/src/shared.bin" "$M/shared.bin" || fail "warm read differs"
[ "$(counter get)" -eq 0 ] || fail "warm read issued GETs"
fs_umount "$M"
fs_log "PASS"
