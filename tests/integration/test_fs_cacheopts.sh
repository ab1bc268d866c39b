#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# test_fs_cacheopts.sh: the eviction and compression options end to end on a mount:
# compression=lz4 stores compressible blocks compressed on the disk tier (counted, space
# saved) and incompressible ones as they are, every byte reads right, and a remount reads
# both from the disk with zero GETs; eviction=lru and eviction=sieve run the memory tier
# (named in the stats) and evict when a small tier overflows, with every byte right.
. "$(dirname "$0")/fs_lib.sh"
fs_init fs_cacheopts

BS=65536
mkdir -p "$T/src"
# compressible: text; incompressible: random
awk 'BEGIN { for (i = 1; i <= 30000; i++) print "line " i ": the quick brown fox jumps over the lazy dog" }' \
  >"$T/src/text.txt"
truncate -s $((16 * BS)) "$T/src/text.txt"
[ "$(stat -c %s "$T/src/text.txt")" -eq $((16 * BS)) ] || fail "text.txt is short"
mkfile "$T/src/rand.bin" $((16 * BS))
seed "$T/src" "$P"
M=$T/mnt
stat_field() { python3 -c 'import json,os,sys; print(json.loads(os.getxattr(sys.argv[1], "user.tierfs.stats"))[sys.argv[2]])' "$M" "$1"; }
OPTS="block_size=64K,disk_cache=$T/cache.img,disk_cache_size=64M"

# 1. compression=lz4 with eviction=lru
fs_mount "$M" "$S3_BUCKET:/$P" "$OPTS,compression=lz4,eviction=lru"
[ "$(stat_field eviction)" = lru ] || fail "eviction=lru: the stats say $(stat_field eviction)"
[ "$(stat_field compression)" = lz4 ] || fail "compression=lz4: the stats say $(stat_field compression)"
for f in text.txt rand.bin; do cmp "$T/src/$f" "$M/$f" || fail "$f differs (cold)"; done
# counted as the blocks go to the disk tier (this process's counters)
blocks=$(stat_field disk_compressed_blocks) saved=$(stat_field disk_compressed_saved_bytes)
inserts=$(stat_field disk_entries)
fs_log "compression=lz4: $inserts blocks on the disk tier, $blocks stored compressed, $saved bytes saved"
# the 16 text blocks compress (to less than half), the 16 random ones do not
[ "$blocks" -ge 16 ] && [ "$blocks" -lt "$inserts" ] ||
  fail "compressed blocks $blocks of $inserts: want the 16 text blocks and not the random ones"
[ "$saved" -ge $((16 * BS / 2)) ] || fail "compression saved only $saved bytes"
fs_umount "$M" # flushes the disk tier
fs_mount "$M" "$S3_BUCKET:/$P" "$OPTS,compression=lz4,eviction=lru"
counters_reset
for f in text.txt rand.bin; do cmp "$T/src/$f" "$M/$f" || fail "$f differs (from the disk)"; done
[ "$(counter get)" -eq 0 ] || fail "remount with compression: $(counter get) GETs"
[ "$(stat_field disk_hits)" -ge 32 ] || fail "remount: $(stat_field disk_hits) disk hits for 32 blocks"
fs_umount "$M"

# 2. a memory tier of 4 blocks under lru and sieve: evictions, and the bytes stay right
for pol in lru sieve; do
  fs_mount "$M" "$S3_BUCKET:/$P" "block_size=64K,mem_cache_size=256K,eviction=$pol"
  [ "$(stat_field eviction)" = "$pol" ] || fail "eviction=$pol: the stats say $(stat_field eviction)"
  for f in text.txt rand.bin text.txt; do
    dd if="$M/$f" bs=$BS iflag=direct status=none | cmp - "$T/src/$f" || fail "$f differs under $pol"
  done
  ev=$(stat_field mem_evictions)
  fs_log "eviction=$pol, 4-block tier: $ev evictions"
  [ "$ev" -ge 16 ] || fail "eviction=$pol: $ev evictions for 48 block reads through 4 blocks"
  fs_umount "$M"
done
fs_log "PASS"
