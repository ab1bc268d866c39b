#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# test_fs_smallmem.sh: small memory budgets (issue #17 point 4). With mem_cache_size=16M,
# 32M and 64M, default 1 MiB blocks and a disk tier, a mount reads a large file (512 MiB,
# 64 times the smallest budget; 256 MiB on sanitizer builds, several times slower; the
# 1 GiB figures of docs/performance.md come from the same tool) with the right bytes, the
# daemon's peak RSS stays within the budget plus 32 MiB, no block read is dropped on its
# way to the disk (admission_drops 0), and a remount re-reads the file with zero GETs.
# The 16M cache is remounted with 64M, which picks another region size for a new cache:
# it must keep the cache it finds. Below the minimum the mount is refused in one line.
. "$(dirname "$0")/fs_lib.sh"
. "$(dirname "$0")/rel_lib.sh"
fs_init fs_smallmem

case ${TIERFS_BUILD_SANITIZER:-unset} in
none) SIZE_MB=${SMALLMEM_SIZE_MB:-512} ;;
asan | tsan) SIZE_MB=${SMALLMEM_SIZE_MB:-256} ;;
*) fail "TIERFS_BUILD_SANITIZER is not set: run through ctest" ;;
esac
mkfile "$T/src/big.bin" $((SIZE_MB * 1048576))
seed_direct "$T/src" "$P"
M=$T/mnt

# tools/bench_smallmem.sh does the reads and prints a row per size; check every row.
# Its mount is ours to unmount too should the bench be killed (the watchdog).
FS_MOUNTS+=("$T/bench/mnt")
"$(dirname "$0")/../../tools/bench_smallmem.sh" --env "$TIERFS_S3_ENV" --prefix "${P%/}" --file big.bin \
  --build "$(dirname "$BIN")" --dir "$T/bench" --ref "$T/src/big.bin" >"$T/bench.out" 2>&1 ||
  { cat "$T/bench.out" >&2; fail "bench_smallmem.sh failed"; }
cat "$T/bench.out" >&2
rows=0
while read -r mem cold gets hwm bound region waited dropped remount same; do
  case $mem in [0-9]*M) ;; *) continue ;; esac
  rows=$((rows + 1))
  [ "$same" = yes ] || fail "$mem: wrong bytes"
  [ "$gets" -gt 0 ] || fail "$mem: the cold read made no GET"
  [ "$dropped" = 0 ] || fail "$mem: $dropped blocks dropped on their way to the disk tier"
  [ "$remount" = 0 ] || fail "$mem: the remount made $remount GETs (the disk tier lost blocks)"
  if [ "$TIERFS_BUILD_SANITIZER" = none ]; then
    [ "$hwm" -le "$bound" ] || fail "$mem: peak RSS $hwm MiB over $bound MiB"
  fi
done <"$T/bench.out"
[ "$rows" = 3 ] || fail "bench_smallmem.sh printed $rows rows, want 3"

# a 16M cache mounted again with 64M, which would pick other regions for a new cache,
# keeps the cache it finds
mkfile "$T/src2/f.bin" $((48 * 1048576))
seed_direct "$T/src2" "${P}two/"
fs_mount "$M" "$S3_BUCKET:/${P}two" "mem_cache_size=16M,disk_cache=$T/c16.img,disk_cache_size=256M"
cmp "$T/src2/f.bin" "$M/f.bin" || fail "16M: wrong bytes"
fs_umount "$M"
fs_mount "$M" "$S3_BUCKET:/${P}two" "mem_cache_size=64M,disk_cache=$T/c16.img,disk_cache_size=256M"
counters_reset
cmp "$T/src2/f.bin" "$M/f.bin" || fail "16M remounted with 64M: wrong bytes"
[ "$(counter get)" = 0 ] || fail "16M remounted with 64M: $(counter get) GETs (the cache was wiped)"
[ "$(rel_stat "$M" disk_region_size)" -lt $((4 * 1048576)) ] || fail "the 16M cache's small regions were not kept"
fs_umount "$M"
rm -f "$T/c16.img"

# below what one shard and the disk tier's buffers need: refused, in one line
rc=0
timeout -k 5 20 "$BIN/tierfs" "$S3_BUCKET:/$P" "$M" -f -o "$TIERFS_OPTS,mem_cache_size=4M,disk_cache=$T/x.img,disk_cache_size=256M" 2>"$T/small.err" || rc=$?
fs_is_mounted "$M" && { fusermount3 -u "$M"; fail "mem_cache_size=4M with a disk tier was mounted"; }
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "mem_cache_size=4M with a disk tier: exit status $rc"
grep -q "memory capacity 4194304 is too small: .* need [0-9]*" "$T/small.err" ||
  { cat "$T/small.err" >&2; fail "no line says that 4M of memory is too small"; }
fs_log "PASS"
