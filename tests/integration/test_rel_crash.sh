#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# test_rel_crash.sh: kill -9 of the daemon during heavy cache writes, REL_CRASHES times
# (default 5; the long variant 20), remounting with the same disk cache each time: every
# file reads back byte for byte after each crash, and once warm the cache still serves
# hits (a warm remount issues far fewer GETs than the cold read).
. "$(dirname "$0")/fs_lib.sh"
. "$(dirname "$0")/rel_lib.sh"
fs_init rel_crash

N=${REL_CRASHES:-5}
# one part of the data per crash: the readers of round i read part i, which no daemon
# has cached yet, so every kill lands while blocks are being fetched and written
# (~25 MB a part: more than one 16 MiB region, so kills also land after regions sealed)
for i in $(seq 1 "$N"); do rel_dataset "$T/src/p$i" 40; done
seed "$T/src" "$P"
DATA=$(du -sb "$T/src" | cut -f1)
M=$T/mnt
C=$T/cache.img
# a small memory budget pushes every block to the disk tier; the disk tier holds all the
# data with room to spare, so a warm remount can hit
OPTS="block_size=64K,mem_cache_size=20M,disk_cache=$C,disk_cache_size=$((N * 40 + 128))M"

dead_umount() { # the daemon is gone: clear the dead mount
  fusermount3 -u "$M" 2>/dev/null || fusermount3 -uz "$M" 2>/dev/null || umount -l "$M"
  ! fs_is_mounted "$M" || fail "cannot clear the mount of the killed daemon"
}

counters_reset
cold_gets=
recovered=0
for i in $(seq 1 "$N"); do
  fs_mount "$M" "$S3_BUCKET:/$P" "$OPTS"
  if [ "$i" -gt 1 ]; then
    # the previous daemon died mid-write: what it cached must read right
    r=$(rel_stat "$M" disk_entries)
    rel_cmp_all "$T/src/p$((i - 1))" "$M/p$((i - 1))" || fail "crash $((i - 1)): data differs after the remount"
    fs_log "crash $((i - 1)): $r entries recovered, part $((i - 1)) reads right"
    [ "$r" = "?" ] || recovered=$((recovered + r))
  fi
  # heavy writes: 8 readers over part i (cold blocks go to the disk tier), killed
  # 0.5 to 2.5 s in
  "$TESTBIN/test_rel_reader" -p 8 -d 30 -s "$i" -m 600000 -D -e "$M/p$i" "$T/src/p$i" >"$T/r.out" 2>&1 &
  rpid=$!
  sleep "$(awk -v r=$RANDOM 'BEGIN { printf "%.2f", 0.5 + (r % 200) / 100 }')"
  fs_kill9 "$FS_PID"
  wait "$rpid"
  rc=$?
  # the readers saw ENOTCONN/ECONNABORTED after the kill: that ends them, not wrong bytes.
  # Every worker reports its reason, and the summary counts wrong reads of all of them.
  grep -q "wrong bytes" "$T/r.out" && { cat "$T/r.out" >&2; fail "crash $i: wrong bytes before the kill"; }
  wrong=$(sed -n 's/.* wrong \([0-9][0-9]*\) short .*/\1/p' "$T/r.out" | head -n 1)
  [ "$wrong" = 0 ] || { cat "$T/r.out" >&2; fail "crash $i: the readers counted ${wrong:-no summary} wrong reads"; }
  fs_log "crash $i: killed after $(head -n 1 "$T/r.out" | cut -c1-120) (reader status $rc)"
  dead_umount
done

# after the last crash: a full verified read, a clean unmount, then a warm remount
fs_mount "$M" "$S3_BUCKET:/$P" "$OPTS"
counters_reset
rel_cmp_all "$T/src" "$M" || fail "after $N crashes: data differs"
after_gets=$(counter get)
fs_umount "$M"
fs_mount "$M" "$S3_BUCKET:/$P" "$OPTS"
counters_reset
rel_cmp_all "$T/src" "$M" || fail "warm remount: data differs"
warm_gets=$(counter get) hits=$(rel_stat "$M" disk_hits)
fs_umount "$M"
blocks=$(( DATA / 65536 ))
rel_note "$N kill -9 during cache writes ($DATA bytes, ~$blocks blocks, $((N * 40 + 128)) MiB cache): wrong bytes 0 after every remount; $recovered entries recovered over the remounts; first full read after the last crash $after_gets GETs, warm remount $warm_gets GETs, $hits disk hits"
# everything fits: a warm remount GETs only what admission dropped
[ "$warm_gets" -lt $((blocks / 4)) ] || fail "warm remount issued $warm_gets GETs for ~$blocks blocks: the cache serves no hits"
[ "$hits" != "?" ] && [ "$hits" -gt 0 ] || fail "no disk hits after the crashes"
fs_log "PASS"
