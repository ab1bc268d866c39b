#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# test_fs_pread.sh: 10,000 preads at random offsets and lengths (some past EOF) match the
# source, on a memory-only mount and on a disk-cache mount with a tiny memory tier.
. "$(dirname "$0")/fs_lib.sh"
fs_init fs_pread

mkfile "$T/src/big.bin" $((40 * 1048576 + 12345))
mkfile "$T/src/small.bin" 1000
seed "$T/src" "$P"
M=$T/mnt

fs_mount "$M" "$S3_BUCKET:/$P" "block_size=64K"
check "random preads (memory only)" "$TESTBIN/test_fs_check" rand "$M/big.bin" "$T/src/big.bin" 10000 7 200000
check "random preads small file" "$TESTBIN/test_fs_check" rand "$M/small.bin" "$T/src/small.bin" 500 9 3000
# reads past EOF return 0 bytes, short reads at EOF return the rest
[ "$(dd if="$M/small.bin" bs=4096 skip=1 2>/dev/null | wc -c)" = 0 ] || fail "read past EOF not empty"
[ "$(dd if="$M/small.bin" bs=600 skip=1 2>/dev/null | wc -c)" = 400 ] || fail "short read at EOF"
fs_umount "$M"

# A memory tier far smaller than the file: most reads come from the disk tier.
fs_mount "$M" "$S3_BUCKET:/$P" "block_size=64K,mem_cache_size=20M,disk_cache=$T/cache.img,disk_cache_size=128M"
check "random preads (disk tier)" "$TESTBIN/test_fs_check" rand "$M/big.bin" "$T/src/big.bin" 10000 11 200000
fs_umount "$M"
fs_log "PASS"
