#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# test_fs_orphan.sh: handles whose RELEASE never arrives. The kernel sends RELEASE
# asynchronously; when the connection goes away first (umount -f aborts it here, a quick
# unmount after the last close can race it) the daemon must still release the handle at
# exit: its prefetched blocks and references freed (under ASan the leak check at exit and
# fs_lib's exit-status check fail the test otherwise), the cache flushed, exit status 0.
. "$(dirname "$0")/fs_lib.sh"
fs_init fs_orphan

mkfile "$T/src/big.bin" 6000000
mkdir -p "$T/src/sub" && mkfile "$T/src/sub/a.bin" 1000
seed "$T/src" "$P"
M=$T/mnt
fs_mount "$M" "$S3_BUCKET:/$P" "block_size=64K,disk_cache=$T/cache.img,disk_cache_size=64M"

# Hold two file handles open: one that read sequentially (so prefetch holds blocks for
# it), one that only opened; and two directory handles (each holds a listing).
exec 3<"$M/big.bin" 4<"$M/big.bin" 5<"$M" 6<"$M/sub"
head -c 1000000 <&3 | cmp - <(head -c 1000000 "$T/src/big.bin") || fail "read through the held handle"
kill -0 "$FS_PID" || fail "tierfs died"

umount -f "$M" 2>"$T/umount.err" || umount -f -l "$M" 2>>"$T/umount.err" ||
  fail "umount -f: $(cat "$T/umount.err")"
fs_reap "$FS_PID" 30 || fail "tierfs did not end well after its connection was aborted"
fs_forget_pid "$FS_PID"
exec 3<&- 4<&- 5<&- 6<&-
grep -q "released 2 file handle(s) whose RELEASE did not arrive" "$T/tierfs.log" ||
  fail "the daemon did not release the orphaned handles: $(tail -n 5 "$T/tierfs.log")"
grep -q "released 2 directory handle(s) whose RELEASEDIR did not arrive" "$T/tierfs.log" ||
  fail "the daemon did not release the orphaned directory handles: $(tail -n 5 "$T/tierfs.log")"

# The cache it flushed at exit is intact: a remount serves the read blocks from disk.
counters_reset
fs_mount "$M" "$S3_BUCKET:/$P" "block_size=64K,disk_cache=$T/cache.img,disk_cache_size=64M"
head -c 1000000 "$M/big.bin" | cmp - <(head -c 1000000 "$T/src/big.bin") || fail "read after remount"
[ "$(counter get)" -eq 0 ] || fail "the remount read $(counter get) GETs: the flushed cache did not serve it"
fs_umount "$M"
fs_log "PASS"
