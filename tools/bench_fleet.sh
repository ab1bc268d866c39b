#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# bench_fleet.sh: the fleet tier's benchmark (issue #18), through the shaping proxy
# (30 ms to first byte, 80 MB/s per response), three local memcached servers:
#   1. 1, 2 and 4 fresh mounts reading one cold file at the same time, without and with
#      the fleet: wall time and S3 bytes (target with the fleet: <= 1.05x of the file);
#   2. a second mount's scan of a file another mount read: from the fleet vs from S3
#      (its own cold scan) (target >= 3x faster);
#   3. what a fleet lookup adds to a cold miss that goes to S3: lone 4 KiB reads of
#      distinct blocks, one at a time, without and with an empty fleet (target < 1 ms
#      more at the median).
# Every case: page cache dropped, proxy counters reset, memcached flushed where it says.
# Usage: sudo bash tools/bench_fleet.sh [--build DIR] [--size SIZE] [--mounts "1 2 4"]
#          [--reads N] [--out DIR] [--server-env FILE]
# Output: DIR/results.csv, DIR/results.md (command, machine, tables), DIR/logs/.
# Environment: BENCH_FLEET_OPTS=",opt=value,..." is appended to every mount's options.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
CMDLINE="bash tools/bench_fleet.sh $*"
BUILD=$ROOT/build
SIZE=512M
MOUNTS_LIST="1 2 4"
READS=200
OUT=$ROOT/build/bench-fleet
SERVER_ENV=

die() { echo "bench_fleet: $*" >&2; exit 2; }
say() { echo "bench_fleet: $*" >&2; }
while [ $# -gt 0 ]; do
  case "$1" in
  --build) BUILD=${2:?--build needs a directory}; shift ;;
  --size) SIZE=${2:?--size needs a size}; shift ;;
  --mounts) MOUNTS_LIST=${2:?--mounts needs a list like "1 2 4"}; shift ;;
  --reads) READS=${2:?--reads needs a number}; shift ;;
  --out) OUT=${2:?--out needs a directory}; shift ;;
  --server-env) SERVER_ENV=${2:?--server-env needs a file}; shift ;;
  -h | --help) sed -n '3,16p' "$0"; exit 0 ;;
  *) die "unknown argument '$1' (see --help)" ;;
  esac
  shift
done
[ "$(id -u)" -eq 0 ] || die "run as root (drop_caches, FUSE mounts)"
[ -x "$BUILD/bin/tierfs" ] || die "$BUILD/bin/tierfs not built (cmake --build $BUILD)"
command -v memcached >/dev/null || die "memcached not installed (tools/setup.sh)"
case "$SIZE" in *[Mm]) BYTES=$((${SIZE%?} * 1048576)) ;; *[Gg]) BYTES=$((${SIZE%?} * 1073741824)) ;;
  *) die "--size: '$SIZE' is not a size like 512M or 1G" ;; esac
for n in $MOUNTS_LIST; do case "$n" in '' | *[!0-9]*) die "--mounts: '$n' is not a number" ;; esac; done
case "$READS" in '' | *[!0-9]*) die "--reads: '$READS' is not a number" ;; esac

WORK=$(mktemp -d /var/tmp/tierfs-bench-fleet.XXXXXX)
mkdir -p "$OUT/logs"
LOG=$OUT/logs/bench.log
CSV=$OUT/results.csv
: >"$LOG"
MNTS=() PIDS=() MC_PIDS=() OWN_SERVER=0
cleanup() {
  local m p
  for m in "${MNTS[@]}"; do grep -qs " $m fuse" /proc/self/mounts && fusermount3 -u "$m"; done
  for p in "${PIDS[@]}" "${MC_PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  [ $OWN_SERVER = 1 ] && bash "$ROOT/tests/s3server/stop.sh" "$WORK/s3.env" >>"$LOG" 2>&1
  grep -qF " $WORK/" /proc/self/mountinfo || rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -n "$SERVER_ENV" ]; then
  cp "$SERVER_ENV" "$WORK/s3.env" || die "--server-env: cannot read $SERVER_ENV"
else
  say "starting the S3 server"
  OWN_SERVER=1
  bash "$ROOT/tests/s3server/start.sh" "$WORK/s3.env" >>"$LOG" 2>&1 || die "S3 server did not start (see $LOG)"
fi
set -a
. "$WORK/s3.env"
set +a
curl -sf -m 5 -XPOST -d '{"ttfb_ms":30,"bandwidth":80000000}' "$S3_CONTROL/config" >/dev/null ||
  die "proxy config failed"
counter() { curl -s -m 5 "$S3_CONTROL/counters" | python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
reset() { curl -s -m 5 -XPOST "$S3_CONTROL/counters/reset" >/dev/null; }
drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }
now() { date +%s%N; }

say "seeding a $SIZE file"
mkdir -p "$WORK/src"
head -c "$BYTES" /dev/urandom >"$WORK/src/f.bin"
"$BUILD/bin/tierfs-seed" --env "$WORK/s3.env" --endpoint "$S3_DIRECT_ENDPOINT" --dir "$WORK/src" \
  --prefix bench-fleet/ --jobs 32 >>"$LOG" 2>&1 || die "seeding failed (see $LOG)"

servers=
for i in 1 2 3; do
  port=$((21300 + RANDOM % 2000))
  memcached -u root -l 127.0.0.1 -p "$port" -U 0 -m 512 >>"$LOG" 2>&1 &
  MC_PIDS+=($!) MC_PORTS+=("$port")
  servers+=${servers:++}127.0.0.1:$port
done
sleep 0.3
# Fill each server's memory once, then empty it: a fleet's memcached runs for months, its
# slab memory long touched. A fresh one pays the first write of every page, which on this
# VM slows stores (docs/fleet.md, "Running memcached for it"): they fall behind, are
# dropped, and waiting mounts fetch those blocks themselves.
say "filling the memcached servers' memory once"
python3 - "${MC_PORTS[@]}" <<'PY' >>"$LOG" 2>&1 || die "memcached warm-up failed (see $LOG)"
import socket, sys, threading
def fill(port):
    s = socket.create_connection(("127.0.0.1", int(port)))
    v = b"\0" * (512 << 10)
    for i in range(1100):  # 1100 x 512 KiB: past -m 512, every slab page touched
        s.sendall(b"set warm%d 0 0 %d noreply\r\n" % (i, len(v)) + v + b"\r\n")
    s.sendall(b"flush_all\r\nversion\r\n")
    got = b""
    while b"VERSION" not in got:
        got += s.recv(4096)
    s.close()
ts = [threading.Thread(target=fill, args=(p,)) for p in sys.argv[1:]]
for t in ts: t.start()
for t in ts: t.join()
PY
flush() { local p; for p in "${MC_PORTS[@]}"; do printf 'flush_all\r\nquit\r\n' >"/dev/tcp/127.0.0.1/$p"; done; sleep 1.1; }
OPTS="endpoint=$S3_ENDPOINT,path_style,region=$S3_REGION,access_key=$S3_ACCESS_KEY,secret_key=$S3_SECRET_KEY,mem_cache_size=1G${BENCH_FLEET_OPTS:-}"
FLEET=",fleet=memcached://$servers"
mount_one() { # mount_one MNT EXTRA: foreground daemon, waits for the mount
  mkdir -p "$1"
  "$BUILD/bin/tierfs" "$S3_BUCKET:/bench-fleet/" "$1" -f -o "$OPTS$2" >>"$OUT/logs/tierfs.log" 2>&1 &
  PIDS+=($!) MNTS+=("$1")
  local i
  for i in $(seq 1 200); do grep -qs " $1 fuse" /proc/self/mounts && return 0; sleep 0.05; done
  die "mount of $1 did not appear"
}
umount_all() {
  local m p
  for m in "${MNTS[@]}"; do fusermount3 -u "$m"; done
  for p in "${PIDS[@]}"; do wait "$p"; done
  MNTS=() PIDS=()
}
fleet_stats() { # fleet_stats MNT: hits leases waits timeouts stores drops errors
  python3 -c 'import json,os,sys; d=json.loads(os.getxattr(sys.argv[1], "user.tierfs.stats"))
print(*[d["fleet_" + k] for k in ("hits", "lease_taken", "lease_waits", "lease_timeouts", "stores", "store_drops", "errors")])' "$1"
}
echo "case,mode,mounts,wall_s,s3_bytes,s3_gets,ratio_bytes,extra" >"$CSV"

# 1. N mounts, one cold file, at once
for n in $MOUNTS_LIST; do
  for mode in s3 fleet; do
    flush
    for i in $(seq 1 "$n"); do mount_one "$WORK/m$i" "$([ $mode = fleet ] && echo "$FLEET")"; done
    drop
    reset
    t0=$(now)
    rp=()
    for i in $(seq 1 "$n"); do dd if="$WORK/m$i/f.bin" of=/dev/null bs=1M status=none & rp+=($!); done
    ok=1
    for p in "${rp[@]}"; do wait "$p" || ok=0; done
    wall=$(awk -v a="$(now)" -v b="$t0" 'BEGIN { printf "%.3f", (a - b) / 1e9 }')
    bytes=$(counter bytes_sent) gets=$(counter get)
    ratio=$(awk -v a="$bytes" -v b="$BYTES" 'BEGIN { printf "%.3f", a / b }')
    note=$([ $ok = 1 ] && echo ok || echo READ-FAILED)
    if [ $mode = fleet ]; then # why a block came from S3 twice: the mounts' fleet counters
      note+=" $(for i in $(seq 1 "$n"); do fleet_stats "$WORK/m$i"; done | awk '{ for (i = 1; i <= NF; i++) t[i] += $i }
        END { printf "hits %d; leases %d; waits %d (timeouts %d); stores %d; drops %d; errors %d", t[1], t[2], t[3], t[4], t[5], t[6], t[7] }')"
    fi
    echo "concurrent,$mode,$n,$wall,$bytes,$gets,$ratio,$note" >>"$CSV"
    say "$n mount(s), $mode: $wall s, S3 ${ratio}x of the file, $gets GETs"
    umount_all
  done
done

# 2. a second mount's scan: from the fleet vs its own cold scan from S3
flush
mount_one "$WORK/a" "$FLEET"
drop; reset; t0=$(now)
dd if="$WORK/a/f.bin" of=/dev/null bs=1M status=none
cold=$(awk -v a="$(now)" -v b="$t0" 'BEGIN { printf "%.3f", (a - b) / 1e9 }')
echo "second-mount,cold-from-s3,1,$cold,$(counter bytes_sent),$(counter get),,first mount" >>"$CSV"
sleep 2 # the first mount's stores run in the background
mount_one "$WORK/b" "$FLEET"
drop; reset; t0=$(now)
dd if="$WORK/b/f.bin" of=/dev/null bs=1M status=none
warm=$(awk -v a="$(now)" -v b="$t0" 'BEGIN { printf "%.3f", (a - b) / 1e9 }')
speed=$(awk -v a="$cold" -v b="$warm" 'BEGIN { printf "%.2f", a / b }')
echo "second-mount,from-fleet,1,$warm,$(counter bytes_sent),$(counter get),,${speed}x faster" >>"$CSV"
say "second mount: $warm s from the fleet vs $cold s cold from S3 (${speed}x)"
umount_all

# 3. what a lookup adds to a cold miss: lone 4 KiB reads of distinct blocks, one at a time
lone() { # lone MNT: median and p90 ms of READS reads of distinct blocks
  python3 - "$1/f.bin" "$READS" <<'EOF'
import os, random, sys, time
path, n = sys.argv[1], int(sys.argv[2])
fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
blocks = os.fstat(fd).st_size // (1 << 20)
import mmap
buf = mmap.mmap(-1, 4096)
lat = []
for b in random.Random(7).sample(range(blocks), min(n, blocks)):
    t = time.perf_counter()
    os.preadv(fd, [buf], b << 20)
    lat.append((time.perf_counter() - t) * 1000)
lat.sort()
print("%.3f %.3f" % (lat[len(lat) // 2], lat[len(lat) * 9 // 10]))
EOF
}
for mode in s3 fleet; do
  flush
  mount_one "$WORK/l" "$([ $mode = fleet ] && echo "$FLEET"),prefetch=no"
  drop; reset
  read -r med p90 < <(lone "$WORK/l")
  echo "lone-miss,$mode,1,$med,$(counter bytes_sent),$(counter get),,p90 ${p90} ms" >>"$CSV"
  say "lone cold misses, $mode: median $med ms, p90 $p90 ms"
  eval "lone_$mode=$med"
  umount_all
done
added=$(awk -v a="$lone_fleet" -v b="$lone_s3" 'BEGIN { printf "%.3f", a - b }')

{
  echo "# tierfs fleet-tier benchmark"
  echo
  echo "- command: \`$CMDLINE\`"
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'), tree $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)"
  echo "- machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), kernel $(uname -r), load at start $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "- S3: radosgw behind tests/s3server/proxy.js, 30 ms to first byte, 80 MB/s per response; 3 memcached $(memcached -V | cut -d' ' -f2) on loopback; file $SIZE; tierfs mounts memory-only (mem_cache_size=1G)"
  echo
  echo "| case | mode | mounts | wall s | S3 bytes / file | S3 GETs | note |"
  echo "|---|---|---:|---:|---:|---:|---|"
  awk -F, 'NR > 1 { printf "| %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, ($7 == "" ? "-" : $7 "x"), $6, $8 }' "$CSV"
  echo
  echo "Lone cold misses: a lookup adds $added ms at the median (with the fleet $lone_fleet ms, without $lone_s3 ms)."
} >"$OUT/results.md"
cat "$OUT/results.md"
