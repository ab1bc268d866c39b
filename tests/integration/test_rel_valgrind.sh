#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# test_rel_valgrind.sh: the daemon under valgrind memcheck: mount with a disk cache, read
# files cold and warm (every byte compared), list, unmount; then remount on the same cache
# (recovery) and read again. Zero bytes definitely or indirectly lost, and no invalid read,
# write, free or use of uninitialised memory in any stack. Noise of libfuse, libcurl and
# OpenSSL is suppressed in tests/valgrind.supp (each entry says why).
# io_engine=psync: valgrind does not model io_uring. read_ahead=0: the daemon's thread that
# sets the bdi read-ahead stat()s its own mountpoint, which waits for FUSE INIT; valgrind
# runs stat() holding its one big lock, so INIT is never answered (a valgrind-only deadlock).
. "$(dirname "$0")/fs_lib.sh"
. "$(dirname "$0")/rel_lib.sh"
fs_init rel_valgrind
command -v valgrind >/dev/null || { echo "SKIP: no valgrind" >&2; exit 77; }

rel_dataset "$T/src" 12
seed "$T/src" "$P"
M=$T/mnt
SUPP=$TIERFS_SOURCE_DIR/tests/valgrind.supp
OPTS="block_size=64K,mem_cache_size=24M,disk_cache=$T/cache.img,disk_cache_size=64M,io_engine=psync,max_threads=4,read_ahead=0"

vg_mount() { # vg_mount N: the daemon under valgrind, log in $T/vg.N
  mkdir -p "$M"
  # TIERFS_HUGE_BUFFERS=0: block buffers from malloc, where memcheck sees an overrun (and
  # the huge-page slots' reservation made each run three times slower under valgrind)
  TIERFS_HUGE_BUFFERS=0 valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite,indirect \
    --errors-for-leak-kinds=definite,indirect --track-origins=yes --num-callers=30 \
    --suppressions="$SUPP" --log-file="$T/vg.$1" \
    "$BIN/tierfs" "$S3_BUCKET:/$P" "$M" -f -o "$TIERFS_OPTS,$OPTS" >>"$T/tierfs.log" 2>&1 &
  FS_PID=$!
  FS_PIDS+=("$FS_PID")
  FS_MOUNTS+=("$M")
  local i
  for i in $(seq 1 600); do
    fs_is_mounted "$M" && return 0
    kill -0 "$FS_PID" 2>/dev/null || { cat "$T/tierfs.log" "$T/vg.$1" >&2; fail "tierfs under valgrind exited"; }
    sleep 0.1
  done
  fail "mount under valgrind did not appear"
}

vg_check() { # vg_check N: the valgrind verdict
  local log=$T/vg.$1 errs def ind
  errs=$(sed -n 's/.*ERROR SUMMARY: \([0-9]*\) errors.*/\1/p' "$log" | tail -n 1)
  def=$(sed -n 's/.*definitely lost: \([0-9,]*\) bytes.*/\1/p' "$log" | tr -d , | tail -n 1)
  ind=$(sed -n 's/.*indirectly lost: \([0-9,]*\) bytes.*/\1/p' "$log" | tr -d , | tail -n 1)
  rel_note "valgrind run $1: ERROR SUMMARY ${errs:-?} errors, definitely lost ${def:-0} bytes, indirectly lost ${ind:-0} bytes, $(grep -c 'used_suppression' "$log") suppressions used"
  if [ "${errs:-1}" != 0 ] || [ "${def:-0}" != 0 ] || [ "${ind:-0}" != 0 ]; then
    grep -v "^==[0-9]*== *$" "$log" | head -n 120 >&2
    fail "valgrind run $1 found errors"
  fi
}

vg_mount 1
timeout -k 10 300 bash -c "$(declare -f rel_cmp_all); rel_cmp_all '$T/src' '$M'" || fail "cold read under valgrind"
rel_read "under valgrind" -p 4 -n 30 -s 3 -m 200000 -D "$M" "$T/src"
ls -lR "$M" >/dev/null || fail "ls -lR"
fs_umount "$M" "$FS_PID"
vg_check 1
vg_mount 2
timeout -k 10 300 bash -c "$(declare -f rel_cmp_all); rel_cmp_all '$T/src' '$M'" || fail "read after the remount under valgrind"
fs_umount "$M" "$FS_PID"
vg_check 2
fs_log "PASS"
