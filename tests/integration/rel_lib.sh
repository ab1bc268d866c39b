# SPDX-License-Identifier: Apache-2.0
# rel_lib.sh: helpers of the reliability tests (sourced after fs_lib.sh, not run).
#
# rel_dataset DIR N: N files of mixed sizes (empty, 1 byte, around block boundaries of 64K,
#   a few MiB) under DIR, in a few subdirectories.
# rel_read NAME ARGS...: run test_rel_reader ARGS (MNT REF last), log its line as
#   "NAME: ...", fail on wrong bytes or a disallowed error. REL_LAST holds the line;
#   rel_field FIELD prints one number of it.
# rel_note TEXT: one result line, logged and appended to $TIERFS_REL_REPORT if set (the
#   numbers of docs/reliability.md come from there).
# rel_alive: fail unless the daemon FS_PID still runs.
# rel_fds PID / rel_threads PID / rel_rss_kb PID / rel_hwm_kb PID: /proc numbers.

rel_dataset() {
  local dir=$1 n=$2 i s
  local sizes=(0 1 4095 65535 65536 65537 131072 200003 524288 1048583 3145728 1000 77777)
  mkdir -p "$dir"
  for i in $(seq 1 "$n"); do
    s=${sizes[$((i % ${#sizes[@]}))]}
    [ $((i % 17)) -eq 0 ] && s=$((5 * 1048576 + i))
    mkfile "$dir/d$((i % 4))/f$i.bin" "$s"
  done
}

REL_LAST=
rel_read() {
  local name=$1 rc
  shift
  REL_LAST=$("$TESTBIN/test_rel_reader" "$@" 2>"$T/reader.err")
  rc=$?
  fs_log "$name: $REL_LAST"
  if [ $rc -ne 0 ]; then
    cat "$T/reader.err" >&2
    fail "$name: reader failed (status $rc)"
  fi
}
rel_field() { echo "$REL_LAST" | sed -n "s/.*\b$1 \([0-9]*\).*/\1/p"; }

rel_note() {
  fs_log "RESULT $*"
  if [ -n "${TIERFS_REL_REPORT:-}" ]; then echo "$FS_NAME: $*" >>"$TIERFS_REL_REPORT"; fi
}

rel_alive() { kill -0 "$FS_PID" 2>/dev/null || { tail -n 20 "$T/tierfs.log" >&2; fail "tierfs died"; }; }

rel_fds() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }
rel_threads() { ls "/proc/$1/task" 2>/dev/null | wc -l; }
rel_rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
rel_hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }

# rel_stat MNT FIELD: one number of the mount's statistics (the user.tierfs.stats xattr).
rel_stat() {
  python3 -c 'import json,os,sys; print(json.loads(os.getxattr(sys.argv[1], "user.tierfs.stats"))[sys.argv[2]])' "$1" "$2" 2>/dev/null || echo "?"
}

# rel_cmp_all SRCDIR MNT: every file byte for byte, 8 at a time.
rel_cmp_all() {
  (cd "$1" && find . -type f -print0) | xargs -0 -P 8 -I{} cmp "$1/{}" "$2/{}"
}
