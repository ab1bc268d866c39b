#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# demo_fleet.sh: the fleet tier on one machine: three memcached servers, two mounts with
# their own disk caches (two "machines"), a file read through the first and then the
# second, which makes zero S3 GETs for it (docs/fleet.md).
#
#   bash tools/demo.sh --fleet      (or bash tools/demo_fleet.sh) run it; leaves it running
#   bash tools/demo_fleet.sh stop   unmount, stop the memcached servers and the S3 server
# Settings (environment): DEMO_DIR (default /var/tmp/tierfs-demo-fleet), DEMO_BIG (the
# file's size, default 512M), BUILD_DIR (default ./build), DEMO_MC_PORTS (default
# "21211 21212 21213"), DEMO_PREBUILT=1 (use BUILD_DIR's binaries as they are: no setup, no
# build; tests/integration/test_tools_demo.sh).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEMO_DIR=${DEMO_DIR:-/var/tmp/tierfs-demo-fleet}
BIG=${DEMO_BIG:-512M}
BUILD=${BUILD_DIR:-$ROOT/build}
ENV_FILE=$DEMO_DIR/s3.env
PORTS=(${DEMO_MC_PORTS:-21211 21212 21213})
MNTS=("$DEMO_DIR/mnt-a" "$DEMO_DIR/mnt-b")

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
die() { echo "demo_fleet.sh: $*" >&2; exit 1; }

stop() {
  local m p
  for m in "${MNTS[@]}"; do
    grep -qs " $m fuse" /proc/self/mounts && fusermount3 -u "$m" && echo "unmounted $m"
  done
  for p in "${PORTS[@]}"; do
    if [ -f "$DEMO_DIR/memcached-$p.pid" ]; then
      kill "$(cat "$DEMO_DIR/memcached-$p.pid")" 2>/dev/null && echo "stopped memcached on port $p"
      rm -f "$DEMO_DIR/memcached-$p.pid"
    fi
  done
  if [ -f "$ENV_FILE" ]; then
    bash "$ROOT/tests/s3server/stop.sh" "$ENV_FILE" && echo "stopped the S3 server"
  fi
}

case "${1:-}" in
stop) stop; exit 0 ;;
"") ;;
*) die "usage: bash tools/demo_fleet.sh [stop]" ;;
esac

mkdir -p "$DEMO_DIR" "${MNTS[@]}"
if [ "${DEMO_PREBUILT:-0}" = 1 ]; then
  say "1. prebuilt binaries in $BUILD/bin"
  for b in tierfs tierfs-seed tierfs-stat; do
    [ -x "$BUILD/bin/$b" ] || die "DEMO_PREBUILT=1 but $BUILD/bin/$b is not built"
  done
else
  say "1. dependencies and build"
  bash "$ROOT/tools/setup.sh"
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$DEMO_DIR/cmake.log" 2>&1 ||
    { cat "$DEMO_DIR/cmake.log"; die "cmake failed"; }
  cmake --build "$BUILD" -j "$(nproc)" --target tierfs tierfs-seed tierfs-stat >"$DEMO_DIR/build.log" 2>&1 ||
    { tail -40 "$DEMO_DIR/build.log"; die "build failed"; }
fi
for m in "${MNTS[@]}"; do grep -qs " $m fuse" /proc/self/mounts && fusermount3 -u "$m"; done

say "2. local S3 server (radosgw behind the shaping proxy: 30 ms to first byte, 80 MB/s per GET)"
if [ -f "$ENV_FILE" ] && . "$ENV_FILE" && curl -sf -m 3 "$S3_CONTROL/health" >/dev/null; then
  echo "already running: $S3_ENDPOINT"
else
  rm -f "$DEMO_DIR/seeded"
  bash "$ROOT/tests/s3server/start.sh" "$ENV_FILE"
  . "$ENV_FILE"
fi
curl -sf -m 5 -XPOST -d '{"ttfb_ms":30,"bandwidth":80000000}' "$S3_CONTROL/config" >/dev/null
if [ ! -f "$DEMO_DIR/seeded" ]; then
  "$BUILD/bin/tierfs-seed" --env "$ENV_FILE" --endpoint "$S3_DIRECT_ENDPOINT" --sample \
    --big-size "$BIG" --prefix demo/ >/dev/null
  touch "$DEMO_DIR/seeded"
fi

say "3. three memcached servers (ports ${PORTS[*]})"
servers=
for p in "${PORTS[@]}"; do
  if ! [ -f "$DEMO_DIR/memcached-$p.pid" ] || ! kill -0 "$(cat "$DEMO_DIR/memcached-$p.pid")" 2>/dev/null; then
    memcached -u root -l 127.0.0.1 -p "$p" -U 0 -m 1024 -d -P "$DEMO_DIR/memcached-$p.pid" ||
      die "memcached on port $p did not start (DEMO_MC_PORTS picks others)"
  fi
  servers+=${servers:++}127.0.0.1:$p
done
sleep 0.3
echo "fleet=memcached://$servers"

counters() { curl -s -m 5 "$S3_CONTROL/counters" | sed 's/.*"get":\([0-9]*\).*/\1/'; }
OPTS="endpoint=$S3_ENDPOINT,path_style,region=$S3_REGION,access_key=$S3_ACCESS_KEY,secret_key=$S3_SECRET_KEY"
OPTS="$OPTS,fleet=memcached://$servers,mem_cache_size=512M"
read_through() { # read_through NAME MNT: time a read of big.bin there, count S3 GETs
  curl -s -m 5 -XPOST "$S3_CONTROL/counters/reset" >/dev/null
  sync
  echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
  local t0 t1
  t0=$(date +%s%N)
  cat "$2/big/big.bin" >/dev/null
  t1=$(date +%s%N)
  printf '%-36s %6d ms   S3 GETs: %s\n' "$1" $(((t1 - t0) / 1000000)) "$(counters)"
}

say "4. two mounts, each with its own disk cache (as on two machines)"
i=0
for m in "${MNTS[@]}"; do
  rm -f "$DEMO_DIR/cache-$i.img"
  "$BUILD/bin/tierfs" "$S3_BUCKET:/demo" "$m" -o "$OPTS,disk_cache=$DEMO_DIR/cache-$i.img,disk_cache_size=2G"
  echo "mounted $m"
  i=$((i + 1))
done

say "5. read big/big.bin ($BIG) through the first mount, then through the second"
read_through "mount a: cold, from S3" "${MNTS[0]}"
sleep 1 # the first mount's stores to the fleet run in the background
read_through "mount b: from the fleet" "${MNTS[1]}"
gets=$(counters)
"$BUILD/bin/tierfs-stat" "${MNTS[1]}" | grep "^fleet tier"
if [ "$gets" -eq 0 ]; then
  echo "the second mount read the whole file with zero S3 GETs"
else
  echo "the second mount made $gets S3 GETs (blocks the fleet did not hold)"
fi

say "done"
cat <<EOF
Both mounts and the memcached servers keep running.
  tierfs-stat ${MNTS[1]}                 # the fleet line
  bash tools/demo_fleet.sh stop          # unmount, stop memcached and the S3 server
EOF
