# SPDX-License-Identifier: Apache-2.0
# fs_lib.sh: shared helpers for the tierfs mount tests (sourced, not run).
#
# fs_init NAME sets: S3_* (from $TIERFS_S3_ENV), BIN, T (a fresh temp dir), P (a key
# prefix unique to this run), TIERFS_OPTS (endpoint and keys as -o options), and a trap
# that unmounts every mount and stops every daemon this test started (by PID), then removes
# T (TIERFS_KEEP_T=1 keeps it, with the daemon's log, to look at a failure).
# Exit 77 = skip (no S3 server or no FUSE).
#
# Every daemon must end well: fs_umount and the trap fail the test when a daemon fs_mount
# started exits non-zero (unless the test killed it on purpose with fs_kill9), and when
# any program of the test (daemons, daemonized mounts, tools) wrote a sanitizer report:
# ASAN_OPTIONS/UBSAN_OPTIONS/TSAN_OPTIONS get log_path=$T/sanitizer, and the trap prints those files
# and fails. A watchdog dumps the stacks of every process of the test (gdb and the kernel
# stacks) into the test log 30 s before ctest's TIMEOUT ($TIERFS_TEST_TIMEOUT) kills it,
# then ends the stuck step so the trap can unmount.

set -uo pipefail

FS_MOUNTS=()
FS_PIDS=()     # daemons fs_mount started and nobody reaped yet
FS_AT_EXIT=()  # commands the trap runs after the daemons ended (fs_at_exit)
FS_WATCHDOG=
FS_DUMPER=     # the watchdog's own PID, inside the watchdog

fs_log() { echo "[$FS_NAME $(date +%T)] $*" >&2; }
fail() { fs_log "FAIL: $*"; exit 1; }
check() { # check DESCRIPTION COMMAND...: run it; fail with the description if it fails
  local what=$1
  shift
  "$@" || fail "$what"
}

# fs_forget_pid PID: the daemon was reaped (its status checked or not to be checked).
fs_forget_pid() {
  local p keep=()
  for p in "${FS_PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  FS_PIDS=("${keep[@]}")
}

# fs_kill9 PID: kill a daemon on purpose (crash tests) and reap it; its death is no error.
fs_kill9() {
  kill -9 "$1" 2>/dev/null
  wait "$1" 2>/dev/null
  fs_forget_pid "$1"
}

# fs_procs: the PIDs of every process of this test: descendants of the test's shell (not
# the watchdog nor the caller's subshells) and daemonized mounts (their command line names
# a path under $T).
fs_procs() {
  ps -e -o pid=,ppid= | awk -v top=$$ -v self="$BASHPID" -v wd="${FS_DUMPER:-0}" '
    { parent[$1] = $2; pids[NR] = $1 }
    END {
      for (i = 1; i <= NR; i++) {
        p = pids[i]; q = p
        while (q != "" && q > 1 && q != top && q != self && q != wd) q = parent[q]
        if (q == top && p != top) print p
      }
    }'
  if [ -n "${T:-}" ]; then
    grep -lsF -- "$T/" /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3 | grep -vx "$BASHPID"
  fi
  return 0
}

# fs_dump_pid PID: what one process is doing: state, kernel stack, user stacks (gdb).
fs_dump_pid() {
  local p=$1 t
  [ -d "/proc/$p" ] || return 0
  echo "---- pid $p ($(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | cut -c1-300))"
  grep -E '^(State|PPid|TracerPid|Threads|SigBlk|SigCgt|ShdPnd):' "/proc/$p/status" 2>/dev/null |
    tr '\n' ' '
  echo
  for t in /proc/"$p"/task/*; do
    echo "  task ${t##*/} $(cat "$t/comm" 2>/dev/null) wchan=$(cat "$t/wchan" 2>/dev/null)" \
      "syscall=$(cut -d' ' -f1 "$t/syscall" 2>/dev/null)"
    sed 's/^/    /' "$t/stack" 2>/dev/null
  done
  # user stacks of our own programs (the shell, sleep and friends say nothing)
  case "$(readlink "/proc/$p/exe" 2>/dev/null)" in
    "$BIN"/* | "$TESTBIN"/*)
      if command -v gdb >/dev/null; then
        timeout -k 5 60 gdb -p "$p" -batch -ex 'thread apply all bt' </dev/null 2>&1 |
          grep -vE '^\[(New LWP|Thread debugging|Using host)' | sed 's/^/    /'
      fi ;;
  esac
}

# fs_dump_stacks WHY: every process of this test, and the FUSE connections, to stderr.
fs_dump_stacks() {
  local p c
  {
    fs_log "STACKS ($1)"
    ps -o pid,ppid,stat,wchan:24,etime,args -p "$(fs_procs | sort -un | paste -sd, -)" 2>/dev/null
    for p in $(fs_procs | sort -un); do fs_dump_pid "$p"; done
    for c in /sys/fs/fuse/connections/*/waiting; do
      [ -e "$c" ] && echo "fuse connection ${c%/waiting}: $(cat "$c") requests waiting"
    done
    if [ -n "${T:-}" ] && [ -f "$T/tierfs.log" ]; then
      echo "---- last 60 lines of $T/tierfs.log"
      tail -n 60 "$T/tierfs.log"
    fi
    fs_log "END OF STACKS"
  } >&2
}

# The watchdog: 30 s before ctest's timeout, dump every stack, then kill the step the test
# is waiting for (everything but the daemons) and the test, so the trap still unmounts.
fs_watchdog_start() {
  local secs=${TIERFS_TEST_TIMEOUT:-0}
  [ "$secs" -gt 60 ] 2>/dev/null || return 0
  secs=$((secs - 30))
  (
    trap - EXIT INT TERM
    FS_DUMPER=$BASHPID
    sleep "$secs" </dev/null >/dev/null 2>&1 # no pipe of ctest's held if left behind
    fs_log "WATCHDOG: still running after $secs s (ctest kills it at $((secs + 30)) s)"
    fs_dump_stacks "watchdog after $secs s"
    # TERM first: the shell runs its trap as soon as the step it waits for is gone (the
    # trap lets this finish: see fs_watchdog_stop)
    : >"$T/.watchdog-fired"
    kill -TERM $$ 2>/dev/null
    for p in $(fs_procs | sort -un); do
      case "$(readlink "/proc/$p/exe" 2>/dev/null)" in "$BIN"/tierfs) continue ;; esac
      kill -9 "$p" 2>/dev/null
    done
  ) &
  FS_WATCHDOG=$!
}

fs_watchdog_stop() {
  [ -n "$FS_WATCHDOG" ] || return 0
  local kids
  if [ -e "$T/.watchdog-fired" ]; then
    wait "$FS_WATCHDOG" 2>/dev/null # it is killing the stuck steps: let it finish
    fs_log "FAIL: the test hung; the watchdog stopped it (stacks above)"
    FS_WATCHDOG=
    return 0
  fi
  kids=$(pgrep -P "$FS_WATCHDOG")
  kill "$FS_WATCHDOG" 2>/dev/null
  # shellcheck disable=SC2086
  [ -n "$kids" ] && kill $kids 2>/dev/null
  wait "$FS_WATCHDOG" 2>/dev/null
  FS_WATCHDOG=
}

# fs_sanitizer_reports: print every sanitizer report of this test's programs to stderr.
# @return 1 if there was one.
fs_sanitizer_reports() {
  local f found=0
  [ -n "${T:-}" ] && [ -d "$T" ] || return 0
  for f in "$T"/sanitizer.*; do
    [ -s "$f" ] || continue
    fs_log "sanitizer report $f:"
    cat "$f" >&2
    found=1
  done
  # reports that went to stderr anyway (a program that resets its options)
  if [ -f "$T/tierfs.log" ] &&
    grep -qE '(ERROR|WARNING): (Address|Leak|Thread|Memory)Sanitizer|runtime error: ' "$T/tierfs.log"; then
    fs_log "sanitizer report in $T/tierfs.log:"
    grep -E -A 40 '(ERROR|WARNING): (Address|Leak|Thread|Memory)Sanitizer|runtime error: ' "$T/tierfs.log" >&2
    found=1
  fi
  return $((found == 0 ? 0 : 1))
}

# fs_reap PID SECONDS: wait up to SECONDS for daemon PID to end, then check how it ended.
# @return 0 when it exited 0 (or was reaped by the test already), 1 otherwise.
fs_reap() {
  local p=$1 n st k
  n=$(awk -v s="$2" 'BEGIN { print int(s * 20) + 1 }')
  for ((k = 0; k < n; k++)); do
    kill -0 "$p" 2>/dev/null || break
    sleep 0.05
  done
  if kill -0 "$p" 2>/dev/null; then
    fs_log "tierfs (pid $p) still running $2 s after its unmount"
    fs_dump_stacks "tierfs $p did not exit"
    kill "$p" 2>/dev/null && sleep 0.5
    kill -9 "$p" 2>/dev/null
    wait "$p" 2>/dev/null
    fs_forget_pid "$p"
    return 1
  fi
  wait "$p" 2>/dev/null
  st=$?
  fs_forget_pid "$p"
  # 127: not our child any more (the test waited for it itself): nothing to check
  [ $st -eq 0 ] || [ $st -eq 127 ] && return 0
  fs_log "tierfs (pid $p) exited with status $st$([ $st -gt 128 ] && echo " (signal $((st - 128)))")"
  return 1
}

# fs_at_exit COMMAND: the trap runs COMMAND (eval) once the test's daemons have ended and
# before the temp dir goes (a loop device to detach, a server to stop).
fs_at_exit() { FS_AT_EXIT+=("$1"); }

fs_cleanup() {
  local rc=$?
  local rc0=$rc m p
  fs_watchdog_stop
  for m in "${FS_MOUNTS[@]}"; do
    if grep -qs " $m " /proc/self/mounts; then
      fusermount3 -u "$m" 2>/dev/null || fusermount3 -uz "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
    fi
  done
  for p in "${FS_PIDS[@]}"; do
    if [ "$rc" -eq 0 ]; then
      # a passing test: the daemons must end by themselves after the unmount, cleanly
      fs_reap "$p" 30 || rc=1
    else
      kill "$p" 2>/dev/null && sleep 0.2
      kill -9 "$p" 2>/dev/null
    fi
  done
  for p in "${FS_AT_EXIT[@]}"; do eval "$p"; done
  fs_sanitizer_reports || { [ "$rc" -eq 0 ] && rc=1; }
  if [ "$rc" -ne 0 ] && [ -n "${T:-}" ] && [ -s "$T/tierfs.log" ]; then
    fs_log "last 40 lines of the daemon log:"
    tail -n 40 "$T/tierfs.log" >&2
  fi
  [ -n "${S3_CONTROL:-}" ] && curl -s -m 5 -XPOST "$S3_CONTROL/reset-config" >/dev/null 2>&1
  [ -n "${T:-}" ] && [ -d "$T" ] && [ -z "${TIERFS_KEEP_T:-}" ] && rm -rf "$T"
  [ "$rc0" -eq 0 ] && [ "$rc" -ne 0 ] && fs_log "FAIL: a daemon did not end well or a sanitizer reported (see above)"
  exit "$rc"
}

# make_test_ca DIR: a private CA (DIR/ca.pem) and a certificate it signs for 127.0.0.1
# (DIR/srv.pem, key DIR/srv.key), made with openssl; the TLS tests serve and trust them.
make_test_ca() {
  command -v openssl >/dev/null || fail "openssl is needed to make the test CA"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=tierfs test CA" \
    -keyout "$1/ca.key" -out "$1/ca.pem" >/dev/null 2>&1 || fail "openssl: CA"
  openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$1/srv.key" \
    -out "$1/srv.csr" >/dev/null 2>&1 || fail "openssl: CSR"
  printf 'subjectAltName=IP:127.0.0.1\n' >"$1/san.ext"
  openssl x509 -req -in "$1/srv.csr" -CA "$1/ca.pem" -CAkey "$1/ca.key" -CAcreateserial \
    -days 2 -extfile "$1/san.ext" -out "$1/srv.pem" >/dev/null 2>&1 || fail "openssl: sign"
}

# free_port: print a TCP port on 127.0.0.1 that is free right now, below the kernel's
# ephemeral range (32768+) so no outgoing connection can be holding it.
free_port() {
  node -e '
    const net = require("net");
    const tryOne = (left) => {
      const p = 20000 + Math.floor(Math.random() * 12000);
      const s = net.createServer();
      s.once("error", () => left > 0 ? tryOne(left - 1) : process.exit(1));
      s.listen(p, "127.0.0.1", () => s.close(() => console.log(p)));
    };
    tryOne(200);'
}

fs_init() {
  FS_NAME=$1
  if [ -z "${TIERFS_S3_ENV:-}" ] || [ ! -f "$TIERFS_S3_ENV" ]; then
    echo "SKIP: no S3 server (TIERFS_S3_ENV unset or missing)" >&2
    exit 77
  fi
  [ -c /dev/fuse ] || { echo "SKIP: no /dev/fuse" >&2; exit 77; }
  set -a
  # shellcheck disable=SC1090
  . "$TIERFS_S3_ENV"
  set +a
  BIN=${TIERFS_BIN_DIR:?TIERFS_BIN_DIR unset}
  TESTBIN=$(dirname "$BIN")/tests
  [ -x "$BIN/tierfs" ] || fail "$BIN/tierfs not built"
  mkdir -p "${TIERFS_TEST_TMPDIR:-/tmp}"
  T=$(mktemp -d "${TIERFS_TEST_TMPDIR:-/tmp}/$FS_NAME.XXXXXX")
  P="$FS_NAME-$$-$RANDOM/"
  TIERFS_OPTS="endpoint=$S3_ENDPOINT,path_style,region=$S3_REGION,access_key=$S3_ACCESS_KEY,secret_key=$S3_SECRET_KEY"
  # TIERFS_TEST_OPTS: more -o options for every mount, to diagnose (e.g. debug: FUSE tracing)
  TIERFS_OPTS+=${TIERFS_TEST_OPTS:+,$TIERFS_TEST_OPTS}
  # sanitizer reports go to files the trap checks (daemonized mounts have no stderr)
  export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$T/sanitizer"
  export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=$T/sanitizer"
  export TSAN_OPTIONS="${TSAN_OPTIONS:+$TSAN_OPTIONS:}log_path=$T/sanitizer"
  trap fs_cleanup EXIT
  trap 'exit 130' INT TERM
  fs_watchdog_start
  curl -s -m 5 -XPOST "$S3_CONTROL/reset-config" >/dev/null
}

# seed LOCALDIR PREFIX: upload every file under LOCALDIR as PREFIX/relative/path.
seed() {
  "$BIN/tierfs-seed" --env "$TIERFS_S3_ENV" --dir "$1" --prefix "$2" --jobs 32 >"$T/seed.log" 2>&1 ||
    { cat "$T/seed.log" >&2; fail "tierfs-seed of $1"; }
}

# seed_direct LOCALDIR PREFIX: the same straight to radosgw (no proxy latency, no counters).
seed_direct() {
  "$BIN/tierfs-seed" --env "$TIERFS_S3_ENV" --endpoint "$S3_DIRECT_ENDPOINT" --dir "$1" \
    --prefix "$2" --jobs 64 >"$T/seed.log" 2>&1 || { cat "$T/seed.log" >&2; fail "tierfs-seed of $1"; }
}

# s3put KEY FILE: one object with any key (s3cli takes keys tierfs-seed cannot make).
s3put() { node "$S3CLI" --env "$TIERFS_S3_ENV" put "$S3_BUCKET" "$1" "$2" >/dev/null || fail "put $1"; }

fs_is_mounted() { grep -qs " $1 fuse" /proc/self/mounts; }

# fs_mount MNT SOURCE [extra -o options]: start tierfs in the foreground (so its PID is
# ours), wait until the mount is live. FS_PID is the daemon's PID.
fs_mount() {
  local mnt=$1 src=$2 extra=${3:-}
  mkdir -p "$mnt"
  "$BIN/tierfs" "$src" "$mnt" -f -o "$TIERFS_OPTS${extra:+,$extra}" >>"$T/tierfs.log" 2>&1 &
  FS_PID=$!
  FS_PIDS+=("$FS_PID")
  FS_MOUNTS+=("$mnt")
  local i
  for i in $(seq 1 200); do
    fs_is_mounted "$mnt" && return 0
    kill -0 "$FS_PID" 2>/dev/null || { cat "$T/tierfs.log" >&2; fail "tierfs exited before mounting $mnt"; }
    sleep 0.05
  done
  fail "mount of $mnt did not appear"
}

# fs_umount MNT [PID]: unmount and wait for the daemon to finish (it flushes the cache);
# fail unless it exits 0 within 30 s (an ASan leak check at exit takes a while).
fs_umount() {
  local mnt=$1 pid=${2:-${FS_PID:-}}
  fusermount3 -u "$mnt" || fail "fusermount3 -u $mnt"
  if [ -n "$pid" ]; then
    fs_reap "$pid" 30 || fail "tierfs (pid $pid) did not end well after unmounting $mnt"
  fi
}

# Proxy counters and knobs.
counters_reset() { curl -s -m 5 -XPOST "$S3_CONTROL/counters/reset" >/dev/null || fail "counters reset"; }
counter() { # counter NAME: print one field of the proxy counters
  curl -s -m 5 "$S3_CONTROL/counters" |
    node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s)[process.argv[1]]))' "$1"
}
proxy() { curl -s -m 10 -XPOST -d "$1" "$S3_CONTROL/config" >/dev/null || fail "proxy config $1"; }

# cmp_parallel N REF FILE: N processes compare FILE with REF at once; fail unless all match.
cmp_parallel() {
  local n=$1 ref=$2 file=$3 i pids=()
  for i in $(seq 1 "$n"); do
    cmp "$ref" "$file" >"$T/cmp.$i" 2>&1 &
    pids+=($!)
  done
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || { cat "$T/cmp.$((i + 1))" >&2; fail "reader $((i + 1)) of $file got wrong bytes"; }
  done
}

# mkfile PATH SIZE: SIZE bytes of random data.
mkfile() {
  mkdir -p "$(dirname "$1")"
  head -c "$2" /dev/urandom >"$1"
}
