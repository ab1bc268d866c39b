#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# test_fs_remount.sh: the disk tier survives unmount (fusermount3 -u, SIGTERM, umount of
# a daemonized mount): the next mount with the same disk_cache re-reads with zero GETs;
# lone small reads of disk-resident blocks are partial disk hits. The disk tier runs on
# io_uring when io_engine is left at its default (no silent fallback to psync), on psync
# when asked.
. "$(dirname "$0")/fs_lib.sh"
fs_init fs_remount

mkfile "$T/src/a.bin" $((3 * 1048576 + 5))
mkfile "$T/src/d/b.bin" 100000
mkfile "$T/src/d/c.bin" 1
seed "$T/src" "$P"
M=$T/mnt
OPTS="block_size=64K,disk_cache=$T/cache.img,disk_cache_size=64M"

read_all() { for f in a.bin d/b.bin d/c.bin; do cmp "$T/src/$f" "$M/$f" || fail "$1: $f differs"; done; }
stat_field() { python3 -c 'import json,os,sys; print(json.loads(os.getxattr(sys.argv[1], "user.tierfs.stats"))[sys.argv[2]])' "$M" "$1"; }

fs_mount "$M" "$S3_BUCKET:/$P" "$OPTS"
eng=$(stat_field io_engine)
[ "$eng" = uring ] || fail "default io_engine: the disk tier runs on '$eng', not uring"
"$BIN/tierfs-stat" "$M" | grep -q "^disk tier .*, uring)" || fail "tierfs-stat does not show the engine"
counters_reset
read_all cold
[ "$(counter get)" -gt 0 ] || fail "cold read issued no GET"
fs_umount "$M"

fs_mount "$M" "$S3_BUCKET:/$P" "$OPTS"
counters_reset
read_all "after fusermount3 -u"
[ "$(counter get)" -eq 0 ] || fail "remount after fusermount3 -u: $(counter get) GETs"
# SIGTERM ends the loop, unmounts and flushes the disk tier
kill -TERM "$FS_PID"
for i in $(seq 1 100); do kill -0 "$FS_PID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$FS_PID" 2>/dev/null && fail "tierfs still running after SIGTERM"
fs_is_mounted "$M" && fail "still mounted after SIGTERM"

# daemonized this time (no -f): the exit status means "mounted"; umount ends the daemon
"$BIN/tierfs" "$S3_BUCKET:/$P" "$M" -o "$TIERFS_OPTS,$OPTS" || fail "background mount failed"
fs_is_mounted "$M" || fail "background mount is not mounted"
counters_reset
read_all "after SIGTERM"
[ "$(counter get)" -eq 0 ] || fail "remount after SIGTERM: $(counter get) GETs"
umount "$M" || fail "umount"
# the daemon flushes after the kernel lets go; the next mount waits for the cache file
for i in $(seq 1 100); do
  fuser "$T/cache.img" >/dev/null 2>&1 || break
  sleep 0.1
done

fs_mount "$M" "$S3_BUCKET:/$P" "$OPTS"
counters_reset
# lone 4 KiB reads of blocks on the disk tier (O_DIRECT: no kernel read-ahead) read just
# their chunks (hc_fetch_range), the right bytes, with no GET
for k in 7 20 33 41; do
  cmp <(dd if="$M/a.bin" bs=4096 skip=$((k * 11)) count=1 iflag=direct status=none) \
      <(dd if="$T/src/a.bin" bs=4096 skip=$((k * 11)) count=1 status=none) || fail "partial read $k"
done
partial=$(python3 -c 'import json,os,sys; print(json.loads(os.getxattr(sys.argv[1], "user.tierfs.stats"))["disk_partial_hits"])' "$M")
[ "$partial" -ge 4 ] || fail "lone 4 KiB reads: $partial partial disk hits, want 4"
read_all "after umount of a daemon"
[ "$(counter get)" -eq 0 ] || fail "remount after umount: $(counter get) GETs"
fs_umount "$M"
# asked for psync: psync, and the cache it wrote on io_uring reads the same
fs_mount "$M" "$S3_BUCKET:/$P" "$OPTS,io_engine=psync"
[ "$(stat_field io_engine)" = psync ] || fail "io_engine=psync: the disk tier runs on '$(stat_field io_engine)'"
counters_reset
read_all "psync remount"
[ "$(counter get)" -eq 0 ] || fail "psync remount: $(counter get) GETs"
fs_umount "$M"
fs_log "PASS"
