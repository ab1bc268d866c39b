#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# test_rel_guard.sh: kill -9 of a daemon that fills the kernel's page cache, under random
# readers, REL_GUARD_KILLS times (default 12). A filling thread can be stuck on the lock
# of a page whose read only the dead daemon could answer; without the guard (fs/guard.c)
# such a daemon never finishes dying and its mount hangs every reader and sync(2) (before
# the guard: 6 of 25 kills). Each killed daemon must be gone within 8 s, every byte the
# readers got must be right, and a normal unmount must end the guard too; a daemonizing
# mount returns even when its output is captured, and the guard holds no directory.
. "$(dirname "$0")/fs_lib.sh"
fs_init rel_guard

N=${REL_GUARD_KILLS:-12}
MIB=1048576
mkfile "$T/src/d/a.bin" $((48 * MIB))
mkfile "$T/src/d/b.bin" $((3 * MIB))
seed_direct "$T/src" "$P"
M=$T/mnt
OPTS="disk_cache=$T/cache.img,disk_cache_size=128M,mem_cache_size=64M,log_level=info"

dead_umount() {
  fusermount3 -u "$M" 2>/dev/null || fusermount3 -uz "$M" 2>/dev/null || umount -l "$M"
  ! fs_is_mounted "$M" || fail "cannot clear the mount of the killed daemon"
}

# ---- a normal unmount ends the guard ----
fs_mount "$M" "$S3_BUCKET:/$P" "$OPTS"
head -c 4096 "$M/d/b.bin" >/dev/null || fail "read"
for i in $(seq 1 50); do grep -q "guard [0-9]* watches" "$T/tierfs.log" && break; sleep 0.1; done
G=$(grep -o "guard [0-9]* watches" "$T/tierfs.log" | tail -1 | awk '{print $2}')
[ -n "$G" ] || fail "no guard started: $(tail -n 3 "$T/tierfs.log")"
[ "$(cat "/proc/$G/comm" 2>/dev/null)" = "tierfs-guard" ] || fail "guard $G is not running"
fs_umount "$M"
for i in $(seq 1 50); do
  st=$(awk '{print $3}' "/proc/$G/stat" 2>/dev/null)
  [ -z "$st" ] || [ "$st" = Z ] && break
  sleep 0.1
done
[ -z "$st" ] || [ "$st" = Z ] || fail "guard $G still running ($st) after the unmount"

# ---- a daemonizing mount: its output is not held open by the guard ----
# (a shell reading the mount command's output would otherwise wait until the unmount)
timeout -k 5 30 bash -c 'out=$("$1" "$2" "$3" -o "$4" 2>&1) || { echo "$out"; exit 1; }' \
  mount "$BIN/tierfs" "$S3_BUCKET:/$P" "$M" "$TIERFS_OPTS,disk_cache=$T/cache2.img,disk_cache_size=64M" ||
  fail "a daemonizing mount with its output captured did not return (or failed)"
fs_is_mounted "$M" || fail "background mount is not mounted"
# The guard is the daemon's child; it names itself once it runs (slowly under ASan), and
# an older guard may still be a zombie: look among this daemon's children only.
D=$(pgrep -f -x ".*/tierfs $S3_BUCKET:/$P $M -o .*" | head -n 1)
[ -n "$D" ] || fail "no daemon for the background mount"
G=
for i in $(seq 1 100); do
  G=$(pgrep -P "$D" -x tierfs-guard | head -n 1)
  [ -n "$G" ] && break
  sleep 0.1
done
[ -n "$G" ] || fail "no guard for the background mount (daemon $D)"
[ "$(readlink "/proc/$G/cwd")" = / ] || fail "the guard keeps $(readlink "/proc/$G/cwd") busy"
umount "$M" || fail "umount of the background mount"
for i in $(seq 1 100); do
  fuser "$T/cache2.img" >/dev/null 2>&1 || break
  sleep 0.1
done
for i in $(seq 1 50); do [ -d "/proc/$G" ] && [ "$(awk '{print $3}' "/proc/$G/stat")" != Z ] || break; sleep 0.1; done
[ ! -d "/proc/$G" ] || [ "$(awk '{print $3}' "/proc/$G/stat")" = Z ] || fail "guard $G outlived its daemon"

# ---- kill -9 under random readers, N times ----
rescued0=$(grep -c "aborted its FUSE connection" "$T/tierfs.log")
for i in $(seq 1 "$N"); do
  fs_mount "$M" "$S3_BUCKET:/$P" "$OPTS"
  "$TESTBIN/test_rel_reader" -p 8 -d 4 -m 8192 -e -D "$M" "$T/src" >"$T/reader.$i" 2>&1 &
  RP=$!
  sleep "1.$((RANDOM % 10))"
  kill -9 "$FS_PID"
  gone=0
  for k in $(seq 1 80); do
    # dead: no process, or a zombie with no thread left (it waits for our wait)
    if [ ! -e "/proc/$FS_PID" ] || { [ "$(awk '{print $3}' "/proc/$FS_PID/stat" 2>/dev/null)" = Z ] &&
      [ "$(ls "/proc/$FS_PID/task" 2>/dev/null | wc -l)" -le 1 ]; }; then
      gone=1
      break
    fi
    sleep 0.1
  done
  if [ "$gone" = 0 ]; then
    fs_dump_stacks "kill $i: daemon $FS_PID not gone after 8 s"
    # leave the machine usable for the next test: end the connection by hand
    for c in /sys/fs/fuse/connections/*; do
      [ "$(cat "$c/waiting" 2>/dev/null)" = 0 ] || echo 1 >"$c/abort" 2>/dev/null
    done
    fail "kill $i: the killed daemon did not finish dying within 8 s"
  fi
  fs_kill9 "$FS_PID"
  wait "$RP" # it fails on ENOTCONN once the daemon is dead; only wrong bytes matter here
  grep -q "^reads [0-9]* .* wrong 0 " "$T/reader.$i" ||
    { cat "$T/reader.$i" >&2; fail "kill $i: the readers saw wrong bytes"; }
  dead_umount
done
rescued=$(($(grep -c "aborted its FUSE connection" "$T/tierfs.log") - rescued0))
fs_log "$N kills under random readers: every daemon gone within 8 s; the guard ended $rescued stuck connection(s)"
fs_log "PASS"
