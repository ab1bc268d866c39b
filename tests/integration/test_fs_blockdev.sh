#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# test_fs_blockdev.sh: a raw block device (a loop device with 4 KiB sectors) as the disk
# tier of a mounted daemon. A device that holds other data is refused and left as it is
# unless disk_cache_overwrite; with it the mount sizes the tier from the device, says it
# runs on a block device (stats, tierfs-stat), reads every byte right; the cache survives
# unmount: tierfs-cache inspects it offline, and remounts (io_uring, then psync) re-read
# everything with zero GETs. A disk_cache_size larger than the device is the whole device,
# with one warning.
. "$(dirname "$0")/fs_lib.sh"
fs_init fs_blockdev

command -v losetup >/dev/null || fail "losetup not installed (util-linux)"
DEV_MB=96
# the first MiB holds "someone's data": random bytes a mount must not overwrite unasked
dd if=/dev/urandom of="$T/dev.img" bs=1M count=1 status=none
truncate -s ${DEV_MB}M "$T/dev.img"
LOOP=$(losetup -f --show --sector-size 4096 "$T/dev.img") || fail "losetup of $T/dev.img"
fs_at_exit "losetup -d $LOOP"
[ -b "$LOOP" ] || fail "$LOOP is not a block device"
fs_log "disk tier on $LOOP (${DEV_MB} MiB, 4096-byte sectors)"

mkfile "$T/src/a.bin" $((5 * 1048576 + 77))
mkfile "$T/src/d/b.bin" 300000
mkfile "$T/src/d/c.bin" 1
seed "$T/src" "$P"
M=$T/mnt
mkdir -p "$M"
OPTS="block_size=64K,disk_cache=$LOOP"
read_all() { for f in a.bin d/b.bin d/c.bin; do cmp "$T/src/$f" "$M/$f" || fail "$1: $f differs"; done; }
stat_field() { python3 -c 'import json,os,sys; print(json.loads(os.getxattr(sys.argv[1], "user.tierfs.stats"))[sys.argv[2]])' "$M" "$1"; }

# 1. other data on the device: refused with one line naming it, the device untouched
head -c 1048576 "$T/dev.img" | sha256sum >"$T/before"
rc=0
timeout -k 5 30 "$BIN/tierfs" "$S3_BUCKET:/$P" "$M" -f -o "$TIERFS_OPTS,$OPTS" >"$T/refused.log" 2>&1 || rc=$?
fs_is_mounted "$M" && fail "mounted on a device that holds other data"
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "a device with other data: exit status $rc, want a refusal"
grep -q "$LOOP" "$T/refused.log" && grep -q "disk_cache_overwrite" "$T/refused.log" ||
  { cat "$T/refused.log" >&2; fail "the refusal does not name the device and disk_cache_overwrite"; }
head -c 1048576 "$T/dev.img" | sha256sum | cmp -s - "$T/before" || fail "the refused mount changed the device"

# 2. disk_cache_overwrite formats it; the tier is the whole device
fs_mount "$M" "$S3_BUCKET:/$P" "$OPTS,disk_cache_overwrite"
[ "$(stat_field disk_device)" = "block device" ] || fail "stats say the disk tier is on '$(stat_field disk_device)'"
[ "$(stat_field io_engine)" = uring ] || fail "default io_engine on a block device: '$(stat_field io_engine)'"
cap=$(stat_field disk_capacity)
[ "$cap" -gt $(((DEV_MB - 20) * 1048576)) ] && [ "$cap" -le $((DEV_MB * 1048576)) ] ||
  fail "disk capacity $cap bytes on a ${DEV_MB} MiB device"
"$BIN/tierfs-stat" "$M" | grep -q "^disk tier .*($LOOP, block device, uring)" ||
  { "$BIN/tierfs-stat" "$M" >&2; fail "tierfs-stat does not show the block device"; }
counters_reset
read_all cold
[ "$(counter get)" -gt 0 ] || fail "cold read issued no GET"
fs_umount "$M"

# 3. offline: the cache on the device is whole and holds the blocks
"$BIN/tierfs-cache" inspect "$LOOP" >"$T/inspect.txt" 2>&1 || { cat "$T/inspect.txt" >&2; fail "tierfs-cache inspect $LOOP"; }
grep -q "block device" "$T/inspect.txt" || { cat "$T/inspect.txt" >&2; fail "inspect does not say block device"; }
"$BIN/tierfs-cache" verify "$LOOP" >"$T/verify.txt" 2>&1 || { cat "$T/verify.txt" >&2; fail "tierfs-cache verify $LOOP"; }

# 4. remounts read from the device: zero GETs, on io_uring and on psync
fs_mount "$M" "$S3_BUCKET:/$P" "$OPTS"
counters_reset
read_all "remount (uring)"
[ "$(counter get)" -eq 0 ] || fail "remount on $LOOP: $(counter get) GETs"
hits=$(stat_field disk_hits)
[ "$hits" -gt 0 ] || fail "remount read with $hits disk hits"
fs_umount "$M"
fs_mount "$M" "$S3_BUCKET:/$P" "$OPTS,io_engine=psync"
[ "$(stat_field io_engine)" = psync ] || fail "io_engine=psync on a block device: '$(stat_field io_engine)'"
counters_reset
read_all "remount (psync)"
[ "$(counter get)" -eq 0 ] || fail "psync remount on $LOOP: $(counter get) GETs"
fs_umount "$M"

# 5. a size larger than the device: all of it, one warning, the cache kept
fs_mount "$M" "$S3_BUCKET:/$P" "$OPTS,disk_cache_size=1G"
[ "$(stat_field disk_capacity)" -eq "$cap" ] || fail "disk_cache_size=1G on ${DEV_MB} MiB: capacity $(stat_field disk_capacity), want $cap"
[ "$(grep -c "larger than the device" "$T/tierfs.log")" -eq 1 ] || fail "no single warning for a size larger than the device"
counters_reset
read_all "remount with a larger size"
[ "$(counter get)" -eq 0 ] || fail "remount with disk_cache_size=1G: $(counter get) GETs"
fs_umount "$M"
fs_log "PASS"
