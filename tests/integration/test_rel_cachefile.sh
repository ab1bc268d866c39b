#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# test_rel_cachefile.sh: a damaged disk tier never yields wrong bytes. Bytes of the cache file
# flipped while unmounted and while mounted, and the cache file truncated under a running
# mount: every read still matches the source (the damaged blocks fail their checksum or
# read short and are fetched from S3 again), the daemon stays up, and the statistics
# (user.tierfs.stats) count the checksum failures. EIO/ENOSPC from the device itself are
# injected in tests/unit/test_rel_disk.c.
. "$(dirname "$0")/fs_lib.sh"
. "$(dirname "$0")/rel_lib.sh"
fs_init rel_cachefile

rel_dataset "$T/src" 40
seed "$T/src" "$P"
M=$T/mnt
C=$T/cache.img
# the smallest memory budget with a disk tier (most of it is the write queue): reads after
# the warm-up come from the disk tier
OPTS="block_size=64K,mem_cache_size=20M,disk_cache=$C,disk_cache_size=128M,metadata_ttl=60"
DATA=$(du -sb "$T/src" | cut -f1)

# scribble N: overwrite N random 4 KiB pieces of the cache file past its header (64 KiB)
scribble() {
  local n=$1 i size off
  size=$(stat -c %s "$C")
  for i in $(seq 1 "$n"); do
    off=$(( (RANDOM * 32768 + RANDOM) % ((size - 65536) / 4096) * 4096 + 65536 ))
    head -c 4096 /dev/urandom | dd of="$C" bs=4096 seek=$((off / 4096)) conv=notrunc status=none
  done
}

# 1. warm the disk tier, unmount, flip bytes, remount: right bytes, some GETs again
fs_mount "$M" "$S3_BUCKET:/$P" "$OPTS"
rel_cmp_all "$T/src" "$M" || fail "cold read"
fs_umount "$M"
fs_mount "$M" "$S3_BUCKET:/$P" "$OPTS"
counters_reset
rel_cmp_all "$T/src" "$M" || fail "warm read"
warm_gets=$(counter get)
fs_umount "$M"
scribble 300
fs_mount "$M" "$S3_BUCKET:/$P" "$OPTS"
counters_reset
rel_cmp_all "$T/src" "$M" || fail "read after flipping bytes of the unmounted cache"
rel_read "after flips (unmounted)" -p 8 -n 60 -s 5 -m 300000 -D "$M" "$T/src"
gets=$(counter get) csum=$(rel_stat "$M" checksum_failures) hits=$(rel_stat "$M" disk_hits)
rel_note "flipped 300 x 4 KiB of a warm cache ($DATA bytes of data) while unmounted: wrong bytes 0, GETs $gets (warm remount before: $warm_gets), checksum failures $csum, disk hits $hits"
[ "$gets" -gt "$warm_gets" ] || fail "no block was fetched again after the flips"
[ "$csum" != "?" ] && [ "$csum" -ge 1 ] || fail "flipped bytes of the cache were read with $csum checksum failures"

# 2. flip bytes while mounted (the daemon reads the file with O_DIRECT)
counters_reset
scribble 300
rel_read "after flips (mounted)" -p 8 -d 4 -s 6 -m 300000 -D "$M" "$T/src"
rel_cmp_all "$T/src" "$M" || fail "read after flipping bytes under the mount"
rel_alive
csum2=$(rel_stat "$M" checksum_failures)
rel_note "flipped 300 x 4 KiB while mounted: $(rel_field reads) reads, wrong bytes 0, GETs $(counter get), checksum failures $csum -> $csum2"

# 3. truncate the cache file under the mount: reads go to S3, the daemon lives
counters_reset
truncate -s 1M "$C"
rel_read "after truncate (mounted)" -p 8 -d 4 -s 7 -m 300000 -D "$M" "$T/src"
rel_cmp_all "$T/src" "$M" || fail "read after truncating the cache under the mount"
rel_alive
rel_note "cache file truncated to 1 MiB while mounted: $(rel_field reads) reads, wrong bytes 0, GETs $(counter get) (served from S3), daemon alive"
fs_umount "$M"
grep -E "disk cache" "$T/tierfs.log" | sort | uniq -c | sort -rn | head -n 5 >&2

# the truncated cache mounts again (recovered or wiped) and serves hits after a warm-up
fs_mount "$M" "$S3_BUCKET:/$P" "$OPTS"
rel_cmp_all "$T/src" "$M" || fail "read after remounting the truncated cache"
fs_umount "$M"
fs_mount "$M" "$S3_BUCKET:/$P" "$OPTS"
counters_reset
rel_cmp_all "$T/src" "$M" || fail "warm read after the truncation"
rel_note "after the truncation: remount reads right; the next warm remount GETs $(counter get) (first warm: $warm_gets)"
fs_umount "$M"
fs_log "PASS"
