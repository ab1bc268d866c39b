# SPDX-License-Identifier: Apache-2.0
# fs_lib.sh: shared helpers for the tierfs mount tests (sourced, not run).
#
# fs_init NAME sets: S3_* (from $TIERFS_S3_ENV), BIN, T (a fresh temp dir), P (a key
# prefix unique to this run), TIERFS_OPTS (endpoint and keys as -o options), and a trap
# that unmounts every mount and kills every daemon this test started (by PID).
# Exit 77 = skip (no S3 server or no FUSE).

set -uo pipefail

FS_MOUNTS=()
FS_PIDS=()

fs_log() { echo "[$FS_NAME $(date +%T)] $*" >&2; }
fail() { fs_log "FAIL: $*"; exit 1; }
check() { # check DESCRIPTION COMMAND...: run it; fail with the description if it fails
  local what=$1
  shift
  "$@" || fail "$what"
}

fs_cleanup() {
  local rc=$?
  local m p
  for m in "${FS_MOUNTS[@]}"; do
    if grep -qs " $m " /proc/self/mounts; then
      fusermount3 -u "$m" 2>/dev/null || fusermount3 -uz "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
    fi
  done
  for p in "${FS_PIDS[@]}"; do
    kill "$p" 2>/dev/null && sleep 0.2
    kill -9 "$p" 2>/dev/null
  done
  [ -n "${S3_CONTROL:-}" ] && curl -s -m 5 -XPOST "$S3_CONTROL/reset-config" >/dev/null 2>&1
  [ -n "${T:-}" ] && [ -d "$T" ] && rm -rf "$T"
  exit "$rc"
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
  trap fs_cleanup EXIT
  trap 'exit 130' INT TERM
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

# fs_umount MNT [PID]: unmount and wait for the daemon to finish (it flushes the cache).
fs_umount() {
  local mnt=$1 pid=${2:-${FS_PID:-}} i
  fusermount3 -u "$mnt" || fail "fusermount3 -u $mnt"
  if [ -n "$pid" ]; then
    for i in $(seq 1 200); do
      kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
      sleep 0.05
    done
    fail "tierfs (pid $pid) still running 10 s after unmount"
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
