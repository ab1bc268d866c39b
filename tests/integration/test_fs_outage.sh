#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# test_fs_outage.sh: S3 goes away mid-run: reads of uncached data fail with EIO (logged
# once per burst), cached data stays readable, the daemon stays up, and reads work again
# as soon as S3 is back, without a remount.
. "$(dirname "$0")/fs_lib.sh"
fs_init fs_outage

mkfile "$T/src/warm.bin" 500000
mkfile "$T/src/cold.bin" 700000
seed "$T/src" "$P"
M=$T/mnt
fs_mount "$M" "$S3_BUCKET:/$P" "block_size=64K,disk_cache=$T/cache.img,disk_cache_size=64M"
cmp "$T/src/warm.bin" "$M/warm.bin" || fail "warm read"
ls -l "$M" >/dev/null

proxy '{"down":true}'
t0=$(date +%s)
if cat "$M/cold.bin" >/dev/null 2>"$T/err"; then fail "read succeeded with S3 down"; fi
grep -q "Input/output error" "$T/err" || fail "expected EIO, got: $(cat "$T/err")"
fs_log "EIO after $(( $(date +%s) - t0 )) s"
for i in 1 2 3; do cat "$M/cold.bin" >/dev/null 2>&1 && fail "read $i succeeded with S3 down"; done
kill -0 "$FS_PID" || fail "tierfs died while S3 was down"
cmp "$T/src/warm.bin" "$M/warm.bin" || fail "cached file unreadable while S3 is down"
ls "$M" >/dev/null || fail "ls failed while S3 is down"
errs=$(grep -c "failed" "$T/tierfs.log")
fs_log "$errs error lines logged"
[ "$errs" -ge 1 ] && [ "$errs" -le 6 ] || fail "$errs error lines: want one per burst"

proxy '{"down":false}'
cmp "$T/src/cold.bin" "$M/cold.bin" || fail "read after S3 came back"
kill -0 "$FS_PID" || fail "tierfs died"
fs_umount "$M"
fs_log "PASS"
