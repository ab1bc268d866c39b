#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# demo.sh: install, build, start a local S3 server with a sample dataset, mount it with a
# disk cache, list it, and time a cold read, a warm read and a read after remount.
#
#   bash tools/demo.sh          run the demo; leaves the mount and the server running
#   bash tools/demo.sh stop     unmount and stop the server
#   bash tools/demo.sh --fleet  the fleet tier instead (tools/demo_fleet.sh)
# Settings (environment): DEMO_DIR (state, default /var/tmp/tierfs-demo),
# DEMO_MNT (default $DEMO_DIR/mnt), DEMO_BIG (size of the big file, default 1G),
# BUILD_DIR (default ./build), DEMO_PREBUILT=1 (use BUILD_DIR's binaries as they are: no
# setup, no build; tests/integration/test_tools_demo.sh).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEMO_DIR=${DEMO_DIR:-/var/tmp/tierfs-demo}
MNT=${DEMO_MNT:-$DEMO_DIR/mnt}
BIG=${DEMO_BIG:-1G}
BUILD=${BUILD_DIR:-$ROOT/build}
ENV_FILE=$DEMO_DIR/s3.env
CACHE=$DEMO_DIR/cache.img

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
die() { echo "demo.sh: $*" >&2; exit 1; }

stop() {
  if grep -qs " $MNT fuse" /proc/self/mounts; then
    fusermount3 -u "$MNT" && echo "unmounted $MNT"
  fi
  if [ -f "$ENV_FILE" ]; then
    bash "$ROOT/tests/s3server/stop.sh" "$ENV_FILE" && echo "stopped the S3 server"
  fi
}

if [ "${1:-}" = stop ]; then
  stop
  exit 0
elif [ "${1:-}" = --fleet ]; then
  shift
  exec bash "$ROOT/tools/demo_fleet.sh" "$@" # the fleet tier: two mounts, three memcached
elif [ $# -gt 0 ]; then
  die "usage: bash tools/demo.sh [stop | --fleet [stop]]"
fi

if [ "${DEMO_PREBUILT:-0}" = 1 ]; then
  say "1-2. prebuilt binaries in $BUILD/bin"
  for b in tierfs tierfs-seed; do [ -x "$BUILD/bin/$b" ] || die "DEMO_PREBUILT=1 but $BUILD/bin/$b is not built"; done
else
  say "1. dependencies (tools/setup.sh installs only what is missing)"
  bash "$ROOT/tools/setup.sh"

  say "2. build"
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$DEMO_DIR.cmake.log" 2>&1 ||
    { cat "$DEMO_DIR.cmake.log"; die "cmake failed"; }
  cmake --build "$BUILD" -j "$(nproc)" --target tierfs tierfs-seed >"$DEMO_DIR.build.log" 2>&1 ||
    { tail -40 "$DEMO_DIR.build.log"; die "build failed"; }
  echo "built $BUILD/bin/tierfs and $BUILD/bin/tierfs-seed"
fi

mkdir -p "$DEMO_DIR" "$MNT"
if grep -qs " $MNT fuse" /proc/self/mounts; then
  fusermount3 -u "$MNT"
fi

say "3. local S3 server (Ceph radosgw behind a shaping proxy)"
if [ -f "$ENV_FILE" ] && . "$ENV_FILE" && curl -sf -m 3 "$S3_CONTROL/health" >/dev/null; then
  echo "already running: $S3_ENDPOINT"
else
  rm -f "$DEMO_DIR/seeded"
  bash "$ROOT/tests/s3server/start.sh" "$ENV_FILE"
  . "$ENV_FILE"
fi
# Give requests a realistic cost: 20 ms to the first byte, 200 MB/s per GET.
curl -sf -m 5 -XPOST -d '{"ttfb_ms":20,"bandwidth":200000000}' "$S3_CONTROL/config" >/dev/null

say "4. sample dataset (Hive-style table, logs, docs, one $BIG file)"
if [ ! -f "$DEMO_DIR/seeded" ]; then
  "$BUILD/bin/tierfs-seed" --env "$ENV_FILE" --endpoint "$S3_DIRECT_ENDPOINT" --sample \
    --big-size "$BIG" --prefix demo/
  touch "$DEMO_DIR/seeded"
else
  echo "already seeded"
fi

OPTS="endpoint=$S3_ENDPOINT,path_style,region=$S3_REGION,access_key=$S3_ACCESS_KEY,secret_key=$S3_SECRET_KEY"
OPTS="$OPTS,disk_cache=$CACHE,disk_cache_size=3G,mem_cache_size=512M"
mount_it() { "$BUILD/bin/tierfs" "$S3_BUCKET:/demo" "$MNT" -o "$OPTS"; }

say "5. mount: tierfs $S3_BUCKET:/demo $MNT -o disk_cache=$CACHE,..."
rm -f "$CACHE" # a cold start; the cache then survives the remount below
mount_it
echo "mounted (the daemon logs to syslog)"

say "6. ls"
ls -l "$MNT"
echo "\$ ls $MNT/table/year=2024 | head -3"
ls "$MNT/table/year=2024" | head -3
echo "\$ find $MNT -type f | wc -l"
find "$MNT" -type f | wc -l

counters() { curl -s -m 5 "$S3_CONTROL/counters" | sed 's/.*"get":\([0-9]*\).*"list":\([0-9]*\).*/GETs \1, LISTs \2/'; }
timed_read() {
  curl -s -m 5 -XPOST "$S3_CONTROL/counters/reset" >/dev/null
  local t0 t1
  t0=$(date +%s%N)
  cat "$MNT/big/big.bin" >/dev/null
  t1=$(date +%s%N)
  local ms=$(((t1 - t0) / 1000000)) bytes
  bytes=$(stat -c %s "$MNT/big/big.bin")
  printf '%-34s %6d ms  %7.1f MiB/s  (S3: %s)\n' "$1" "$ms" \
    "$(awk -v b="$bytes" -v ms="$ms" 'BEGIN { print (ms > 0 ? b / 1048576 / (ms / 1000) : 0) }')" \
    "$(counters)"
}

say "7. reading big/big.bin ($BIG)"
timed_read "cold (from S3)"
timed_read "warm (kernel page cache)"
fusermount3 -u "$MNT"
mount_it
timed_read "after remount (tierfs disk cache)"

say "done"
cat <<EOF
The bucket is mounted on $MNT (read-only), the S3 server keeps running.
  ls $MNT
  fusermount3 -u $MNT                  # unmount
  bash tools/demo.sh stop              # unmount and stop the S3 server
EOF
