#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# bench_smallmem.sh: small memory budgets (issue #17 point 4). For each mem_cache_size,
# a mount with a fresh disk cache reads one object end to end (cold, from S3), then a
# remount reads it again; prints per size: cold time, GETs, the daemon's peak RSS
# (VmHWM) against mem_cache_size + 32 MiB, the disk tier's region size, how many disk
# writes waited for the write queue and how many were dropped, and the remount's GETs.
#
#   bash tools/bench_smallmem.sh [--env S3ENV] [--prefix P] [--file KEY] [--sizes 16,32,64]
#                                [--build DIR] [--dir TMPDIR] [--ref LOCALFILE]
#
# With --ref, 'same' says both reads gave the bytes of LOCALFILE (md5), else that the
# remount read what the cold read did. tests/integration/test_fs_smallmem.sh runs this.
#
# Defaults: the demo's S3 server (bash tools/demo.sh: /var/tmp/tierfs-demo/s3.env,
# prefix demo, big/big.bin of 1 GiB), sizes 16, 32 and 64 MiB, the build in ./build.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
ENV=/var/tmp/tierfs-demo/s3.env PREFIX=demo FILE=big/big.bin SIZES=16,32,64
BUILD=$here/build DIR=${TMPDIR:-/tmp}/tierfs-bench-smallmem REF=
while [ $# -gt 0 ]; do
  case $1 in
  --env) ENV=$2; shift 2 ;;
  --prefix) PREFIX=$2; shift 2 ;;
  --file) FILE=$2; shift 2 ;;
  --sizes) SIZES=$2; shift 2 ;;
  --build) BUILD=$2; shift 2 ;;
  --dir) DIR=$2; shift 2 ;;
  --ref) REF=$2; shift 2 ;;
  -h | --help) sed -n '3,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "bench_smallmem: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[ -f "$ENV" ] || { echo "bench_smallmem: no S3 env file $ENV (run bash tools/demo.sh, or --env)" >&2; exit 2; }
BIN=$BUILD/bin
[ -x "$BIN/tierfs" ] || { echo "bench_smallmem: $BIN/tierfs not built (--build DIR)" >&2; exit 2; }
# shellcheck disable=SC1090
. "$ENV"
want=
[ -z "$REF" ] || want=$(md5sum <"$REF" | cut -d' ' -f1)
mkdir -p "$DIR/mnt"
M=$DIR/mnt PID=
cleanup() {
  grep -qs " $M fuse" /proc/self/mounts && fusermount3 -u "$M" 2>/dev/null
  [ -n "$PID" ] && wait "$PID" 2>/dev/null
  rm -f "$DIR"/cache-*.img
}
trap cleanup EXIT
OPTS="endpoint=$S3_ENDPOINT,path_style,region=$S3_REGION,access_key=$S3_ACCESS_KEY,secret_key=$S3_SECRET_KEY"
stat_of() { python3 -c 'import json,os,sys; print(json.loads(os.getxattr(sys.argv[1], "user.tierfs.stats")).get(sys.argv[2], -1))' "$M" "$1"; }
mount_it() { # mount_it MEM_MB CACHE
  "$BIN/tierfs" "$S3_BUCKET:/$PREFIX" "$M" -f -o "$OPTS,mem_cache_size=$1M,disk_cache=$2,disk_cache_size=$3M" >>"$DIR/tierfs.log" 2>&1 &
  PID=$!
  for _ in $(seq 1 200); do
    grep -qs " $M fuse" /proc/self/mounts && return 0
    kill -0 "$PID" 2>/dev/null || { PID=; return 1; } # refused: its line is in the log
    sleep 0.05
  done
  echo "bench_smallmem: the mount did not appear" >&2; exit 1
}
umount_it() { fusermount3 -u "$M"; wait "$PID" || true; PID=; }
gets() { stat_of s3_gets; }

echo "# $(date -u +%FT%TZ) $(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo '?') $(nproc) cores; $S3_BUCKET/$PREFIX/$FILE"
printf '%-8s %9s %6s %9s %9s %8s %7s %8s %9s %7s\n' mem cold_s GETs hwm_MiB bound_MiB region waited dropped remount same
for mem in ${SIZES//,/ }; do
  cache=$DIR/cache-$mem.img
  rm -f "$cache"
  : >"$DIR/tierfs.log"
  if ! mount_it "$mem" "$cache" 2048; then
    printf '%-8s refused: %s\n' "${mem}M" "$(grep -m1 -E 'error|bad' "$DIR/tierfs.log" || tail -1 "$DIR/tierfs.log")"
    continue
  fi
  size_b=$(stat -c %s "$M/$FILE")
  t0=$(date +%s%N)
  sum1=$(md5sum <"$M/$FILE" | cut -d' ' -f1)
  t1=$(date +%s%N)
  hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$PID/status")
  g1=$(gets) rs=$(stat_of disk_region_size) waited=$(stat_of disk_deferred) drops=$(stat_of admission_drops)
  umount_it
  mount_it "$mem" "$cache" 2048
  g0=$(gets)
  sum2=$(md5sum <"$M/$FILE" | cut -d' ' -f1)
  g2=$(( $(gets) - g0 ))
  umount_it
  rm -f "$cache"
  [ "$rs" -ge 0 ] && rs="$((rs >> 10))K" || rs=- # '-': a tierfs without the field
  [ "$waited" -ge 0 ] || waited=-
  printf '%-8s %9.2f %6d %9d %9d %8s %7s %8d %9d %7s\n' "${mem}M" "$(echo "($t1 - $t0) / 1000000000" | bc -l)" \
    "$g1" $((hwm / 1024)) $((mem + 32)) "$rs" "$waited" "$drops" "$g2" "$([ "$sum1" = "$sum2" ] && [ "$sum1" = "${want:-$sum1}" ] && echo yes || echo NO)"
done
if [ -n "$REF" ]; then same="both reads gave the bytes of $REF"; else same="the remount read what the cold read did (md5)"; fi
echo "# file ${size_b:-?} bytes; same: $same"
