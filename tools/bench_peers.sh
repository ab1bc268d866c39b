#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# bench_peers.sh: tierfs vs s3fs-fuse vs rclone mount on one shaped S3 server, with ceilings.
#
# One command: starts the local S3 server (tests/s3server) behind the shaping proxy
# (default 30 ms time to first byte, 80 MB/s per response), seeds the data set, then mounts
# each filesystem against that same server in turn and runs the workloads on it, resetting
# the proxy counters before every measured case. Also measures the ceilings: parallel
# ranged GETs straight at the proxy (network), tierfs-fuse-null (FUSE) and fio on the
# cache's filesystem (disk: the ceiling of warm reads).
#
#   bash tools/bench_peers.sh [--quick] [--only tierfs,s3fs,rclone] [--workloads LIST]
#                             [--out DIR] [--build DIR] [--server-env FILE]
#                             [--ttfb-ms N] [--bandwidth BYTES_PER_S] [--tierfs-opts OPTS]
#                             [--repeat N] [--no-charts]
#
# Workloads (--workloads, comma list; default all):
#   seq    cold sequential read of one big file; then unmount, remount on the same cache,
#          drop the page cache and read it again (warm-remount)
#   rand   fio random reads (psync, 2 jobs, fixed duration) at 4k, 64k, 1m: cold on a
#          fresh mount with an empty cache, then warm after one full read of the file
#   columnar  DuckDB queries on Parquet files (tools/bench_columnar.cjs): 2 of 4 columns,
#          3 of 20, a filtered query, the whole table, each on a fresh mount; a query over
#          48 Hive-partitioned files, cold then again on the same mount (warm). The bytes
#          each query really reads come from an strace of it on a local copy; results.md
#          sets S3's bytes against them and the file. Installs @duckdb/node-api with npm.
#   conc   8 concurrent readers of one cold file
#   dense  dense random reads of a cold file, one at a time (fs/dense.c): fio randread 4k,
#          1 job, iodepth 1, fixed duration; and an index walk: 20,000 random lookups by
#          primary key in a SQLite database file of as many MiB (python3's sqlite3,
#          immutable, no SQLite page cache), each a walk down the B-tree
#   small  many 64 KiB files (8 readers in parallel), cold then warm
#   meta   `ls -l` of a flat directory of many objects, `find` of a nested tree; cold, warm
#   write  sequential write of a new seq-sized file (cp) on a writable mount of each system,
#          timed until the object is in S3 at its full size (rclone uploads after close);
#          the proxy paces request bodies too (upload_bandwidth = --bandwidth); its ceiling
#          is a multipart upload with tierfs's part size and parts in flight (8 MiB, 4),
#          straight at the proxy (s3cli put-multipart)
#   net    the network ceiling: one object pulled with N parallel ranged GETs
#          (tierfs-bench-objstore when built, else curl --aws-sigv4)
#   null   the FUSE ceiling: seq, rand and conc on tierfs-fuse-null
#   disk   the disk ceiling of warm reads: fio, 1 MiB O_DIRECT sequential reads (libaio,
#          4 in flight) of a seq-sized file on the filesystem that holds the caches
# --quick: small sizes for a smoke run (64 MiB files, 100 small files, 500 listed objects).
# --tierfs-opts OPTS: extra -o options for tierfs (e.g. mem_cache_size=2G), shown in results.md.
# --repeat N: run the seq and net workloads N times in interleaved rounds (each round: every
#   system's seq, then the network ceiling; the other workloads in round 1 only) and add a
#   table of medians and of per-round ratios: on a shared 2-core machine one run's times
#   move by 20-40 %, and two cases of one round saw the same machine.
# --server-env FILE: use a server already started with tests/s3server/start.sh FILE
#   (data seeded by an earlier run with the same sizes is reused; the server is left up).
# --no-charts: no PNG charts (and no gnuplot needed); the .dat files are still written.
# Output in --out (default build/bench-results/): results.csv, results.md, throughput.png,
# metadata.png, logs/. Needs root (drop_caches, bdi read-ahead, FUSE mounts); installs
# what the selected systems and workloads need and is missing (s3fs, rclone, fio, gnuplot)
# with tools/setup.sh --bench.
set -uo pipefail # not -e: a failing case is recorded and the run goes on

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
CMDLINE="bash tools/bench_peers.sh $*"

QUICK=0
ONLY=tierfs,s3fs,rclone
WORKLOADS=seq,rand,dense,columnar,conc,small,meta,write,net,null,disk
OUT=
BUILD=$ROOT/build
SERVER_ENV=
TTFB_MS=30
BANDWIDTH=80000000
TIERFS_OPTS=
REPEAT=1
ROUND=1
CHARTS=1

die() { echo "bench_peers: ERROR: $*" >&2; exit 1; }
say() { echo "bench_peers: $*" >&2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --only) ONLY=${2:?--only needs a list}; shift ;;
    --workloads) WORKLOADS=${2:?--workloads needs a list}; shift ;;
    --out) OUT=${2:?--out needs a directory}; shift ;;
    --build) BUILD=${2:?--build needs a directory}; shift ;;
    --server-env) SERVER_ENV=${2:?--server-env needs a file}; shift ;;
    --ttfb-ms) TTFB_MS=${2:?}; shift ;;
    --bandwidth) BANDWIDTH=${2:?}; shift ;;
    --tierfs-opts) TIERFS_OPTS=${2:?--tierfs-opts needs options}; shift ;;
    --repeat) REPEAT=${2:?--repeat needs a number}; shift ;;
    --no-charts) CHARTS=0 ;;
    -h|--help) sed -n '3,40p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (try --help)" ;;
  esac
  shift
done
for s in ${ONLY//,/ }; do
  case "$s" in tierfs|s3fs|rclone) ;; *) die "--only: unknown system '$s' (tierfs|s3fs|rclone)" ;; esac
done
for w in ${WORKLOADS//,/ }; do
  case "$w" in seq|rand|dense|columnar|conc|small|meta|write|net|null|disk) ;;
    *) die "--workloads: unknown workload '$w' (seq,rand,dense,columnar,conc,small,meta,write,net,null,disk)" ;; esac
done
[[ "$TTFB_MS" =~ ^[0-9]+$ ]] || die "--ttfb-ms: expected a number of milliseconds"
[[ "$BANDWIDTH" =~ ^[0-9]+$ ]] || die "--bandwidth: expected bytes per second (0 = unlimited)"
[[ "$REPEAT" =~ ^[1-9][0-9]*$ ]] && [ "$REPEAT" -le 20 ] || die "--repeat: expected a number of rounds from 1 to 20, got '$REPEAT'"
OUT=${OUT:-$BUILD/bench-results}
case "$OUT" in /*) ;; *) OUT=$PWD/$OUT ;; esac
case "$BUILD" in /*) ;; *) BUILD=$PWD/$BUILD ;; esac

# ---------------------------------------------------------------- sizes
MIB=$((1 << 20))
if [ $QUICK = 1 ]; then
  SEQ_SIZE=$((64 * MIB)); RAND_SIZE=$((64 * MIB)); CONC_SIZE=$((32 * MIB)); DENSE_SIZE=$((64 * MIB))
  N_SMALL=100; N_LIST=500; TREE_FAN=3; TREE_FILES=4; FIO_RUNTIME=2; CASE_TIMEOUT=300
else
  SEQ_SIZE=$((2048 * MIB)); RAND_SIZE=$((1024 * MIB)); CONC_SIZE=$((512 * MIB)); DENSE_SIZE=$((256 * MIB))
  N_SMALL=1000; N_LIST=10000; TREE_FAN=5; TREE_FILES=8; FIO_RUNTIME=30; CASE_TIMEOUT=1200
fi
SMALL_SIZE=$((64 * 1024))
N_READERS=8
INDEX_LOOKUPS=$([ $QUICK = 1 ] && echo 2000 || echo 20000) # the dense workload's index walk
NET_REQ=$([ $QUICK = 1 ] && echo 1M || echo 8M) # GET size of tierfs-bench-objstore
# tierfs's own GETs in flight in a cold scan: prefetch_window / prefetch_max_request
# (defaults 128M / 8M = 16, or as --tierfs-opts sets them); the ceiling that the target
# compares with is measured at that depth, 8 and 32 beside it.
opt_mib() { # opt_mib NAME DEFAULT_MIB: an -o size option of --tierfs-opts in MiB
  local v
  v=$(tr ',' '\n' <<<"$TIERFS_OPTS" | sed -n "s/^$1=//p" | tail -n 1)
  case "$v" in
  "") echo "$2" ;; *[Gg]) echo $((${v%?} * 1024)) ;; *[Mm]) echo "${v%?}" ;;
  *[Kk]) echo $((${v%?} / 1024)) ;; *) echo $((v / 1048576)) ;;
  esac
}
TIERFS_GETS=$(($(opt_mib prefetch_window 128) / $(opt_mib prefetch_max_request 8)))
[ "$TIERFS_GETS" -ge 1 ] || TIERFS_GETS=1
NET_STREAMS=$(printf '%s\n' 8 "$TIERFS_GETS" 32 | sort -nu | tr '\n' ' ')
PREFIX=bench-$([ $QUICK = 1 ] && echo quick || echo full)
# A manifest object records what was seeded, so --server-env runs can skip seeding.
MANIFEST="seq=$SEQ_SIZE rand=$RAND_SIZE conc=$CONC_SIZE dense=$DENSE_SIZE small=$N_SMALL list=$N_LIST tree=$TREE_FAN/$TREE_FILES v2"

# ---------------------------------------------------------------- preconditions
[ "$(id -u)" -eq 0 ] || die "run as root: drop_caches, bdi read_ahead_kb and the peers' mounts need it"
[ -c /dev/fuse ] || die "/dev/fuse is missing (modprobe fuse)"
# The peers talk plain http to loopback: a CA bundle in the environment only breaks them
# (rclone refuses to start with AWS_CA_BUNDLE set).
unset AWS_CA_BUNDLE CURL_CA_BUNDLE SSL_CERT_FILE SSL_CERT_DIR REQUESTS_CA_BUNDLE
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
# Only what this selection runs: a tierfs-only run needs neither peer, fio is for the
# rand, null and disk workloads, rclone also seeds when tierfs-seed is not built.
need=()
cmds=(curl node fusermount3 mountpoint timeout)
case ",$ONLY," in *,s3fs,*) cmds+=(s3fs) ;; esac
case ",$ONLY," in *,rclone,*) cmds+=(rclone) ;; *) [ -x "$BUILD/bin/tierfs-seed" ] || cmds+=(rclone) ;; esac
case ",$WORKLOADS," in *,rand,* | *,dense,* | *,null,* | *,disk,*) cmds+=(fio) ;; esac
case ",$WORKLOADS," in *,columnar,*) cmds+=(npm strace) ;; esac
[ $CHARTS = 1 ] && cmds+=(gnuplot)
for c in "${cmds[@]}"; do
  command -v "$c" >/dev/null 2>&1 || need+=("$c")
done
if [ ${#need[@]} -gt 0 ]; then
  say "missing ${need[*]}: running tools/setup.sh --bench"
  bash "$HERE/setup.sh" --bench || die "tools/setup.sh --bench failed"
fi
bins=()
case ",$ONLY," in *,tierfs,*) bins+=(tierfs) ;; esac
case ",$WORKLOADS," in *,null,*) bins+=(tierfs-fuse-null) ;; esac
for b in "${bins[@]}"; do
  [ -x "$BUILD/bin/$b" ] || die "$BUILD/bin/$b not built (cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && make -C build -j)"
done

# ---------------------------------------------------------------- state and cleanup
mkdir -p "$OUT/logs" || die "cannot create $OUT"
WORK=$(mktemp -d /var/tmp/tierfs-bench.XXXXXX) || die "mktemp failed"
MOUNTS=()   # mountpoints we mounted and have not unmounted yet
PIDS=()     # daemons we started
OWN_SERVER=0
CASE_PID=   # the timeout(1) wrapping the running case
declare -A RA_KB # system -> bdi read_ahead_kb seen on its mount
CSV=$OUT/results.csv
LOG=$OUT/logs/bench.log
: >"$LOG"

# @return 0 if $1 is mounted (per /proc/self/mountinfo; no stat into a FUSE mount).
is_mounted() { awk -v m="$1" '$5 == m { f = 1 } END { exit !f }' /proc/self/mountinfo; }

# Unmount $1; if the daemon hangs, abort its FUSE connection, then lazy-unmount.
unmount_one() {
  local m=$1 dev minor
  is_mounted "$m" || return 0
  dev=$(awk -v m="$m" '$5 == m { d = $3 } END { print d }' /proc/self/mountinfo)
  timeout 20 fusermount3 -u "$m" 2>>"$LOG" && return 0
  minor=${dev#*:}
  [ -n "$minor" ] && [ -w "/sys/fs/fuse/connections/$minor/abort" ] &&
    echo 1 >"/sys/fs/fuse/connections/$minor/abort" 2>/dev/null
  timeout 20 fusermount3 -u "$m" 2>>"$LOG" || fusermount3 -uz "$m" 2>>"$LOG"
}

# Stop daemon $1 (one we started): give it 3 s to exit after its unmount (tierfs flushes
# its disk index then), then TERM (libfuse daemons unmount and exit on it), then KILL.
stop_pid() {
  local p=$1 i
  [ -n "$p" ] || return 0
  for i in $(seq 1 30); do kill -0 "$p" 2>/dev/null || { wait "$p" 2>/dev/null; return 0; }; sleep 0.1; done
  kill "$p" 2>/dev/null
  for i in $(seq 1 50); do kill -0 "$p" 2>/dev/null || { wait "$p" 2>/dev/null; return 0; }; sleep 0.1; done
  kill -9 "$p" 2>/dev/null
  wait "$p" 2>/dev/null
}

cleanup() {
  local rc=$? m p left=0
  trap - EXIT INT TERM
  # A case still running: stop it first (timeout passes TERM to its process group).
  [ -n "$CASE_PID" ] && kill "$CASE_PID" 2>/dev/null
  for m in "${MOUNTS[@]}"; do [ -n "$m" ] && unmount_one "$m"; done
  for p in "${PIDS[@]}"; do stop_pid "$p"; done
  if [ $OWN_SERVER = 1 ] && [ -f "$WORK/s3.env" ]; then
    bash "$ROOT/tests/s3server/stop.sh" "$WORK/s3.env" >>"$LOG" 2>&1
  fi
  # Never rm -rf across a mount that is still there.
  for m in "${MOUNTS[@]}"; do [ -n "$m" ] && is_mounted "$m" && left=1; done
  if [ $left = 0 ] && ! grep -qF " $WORK/" /proc/self/mountinfo; then
    rm -rf "$WORK"
  else
    say "WARNING: a mount under $WORK is still present; left $WORK in place"
  fi
  exit $rc
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT
trap 'say "terminated"; exit 143' TERM

now() { date +%s.%N; }
elapsed() { awk -v a="$(now)" -v b="$1" 'BEGIN { printf "%.3f", a - b }'; } # seconds since $1
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }

# ---------------------------------------------------------------- S3 server
if [ -n "$SERVER_ENV" ]; then
  [ -f "$SERVER_ENV" ] || die "--server-env: $SERVER_ENV not found"
  cp "$SERVER_ENV" "$WORK/s3.env"
else
  say "starting the S3 server (tests/s3server/start.sh)"
  OWN_SERVER=1
  MEMSTORE_BYTES=$((32 << 30)) bash "$ROOT/tests/s3server/start.sh" "$WORK/s3.env" >>"$LOG" 2>&1 ||
    die "S3 server did not start (see $LOG)"
fi
val() { sed -n "s/^$1=//p" "$WORK/s3.env" | tail -n 1; }
S3_ENDPOINT=$(val S3_ENDPOINT)
S3_DIRECT=$(val S3_DIRECT_ENDPOINT)
S3_CONTROL=$(val S3_CONTROL)
S3_BUCKET=$(val S3_BUCKET)
S3_KEY=$(val S3_ACCESS_KEY)
S3_SECRET=$(val S3_SECRET_KEY)
S3_REGION=$(val S3_REGION)
S3_REGION=${S3_REGION:-us-east-1}
[ -n "$S3_ENDPOINT" ] && [ -n "$S3_CONTROL" ] && [ -n "$S3_BUCKET" ] || die "incomplete env file"

ctl() { # ctl METHOD PATH [JSON]
  if [ $# -ge 3 ]; then
    curl -sf -X "$1" -H 'content-type: application/json' -d "$3" "$S3_CONTROL/$2"
  else
    curl -sf -X "$1" "$S3_CONTROL/$2"
  fi
}
# Prints "requests get head list bytes_sent" from the proxy counters.
counters() {
  ctl GET counters | node -e '
    let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
      const c = JSON.parse(s);
      console.log([c.requests, c.get, c.head, c.list, c.bytes_sent].join(" "));
    });'
}
shape() { ctl POST config "{\"ttfb_ms\":$TTFB_MS,\"bandwidth\":$BANDWIDTH,\"upload_bandwidth\":$BANDWIDTH}" >/dev/null; }
unshape() { ctl POST config '{"ttfb_ms":0,"bandwidth":0,"upload_bandwidth":0}' >/dev/null; }

S3CLI=(node "$ROOT/tests/s3server/s3cli.js" --env "$WORK/s3.env" --endpoint "$S3_DIRECT")

# ---------------------------------------------------------------- seeding
# Big objects are streamed by s3cli put-random (deterministic data, one PUT each); the
# thousands of small ones are written to a staging tree and uploaded by tierfs-seed
# (many PUTs in flight), or by rclone copy when tierfs-seed is not built. All of it goes
# straight to radosgw, past the proxy.
seed() {
  local want have stage
  want=$MANIFEST
  have=$("${S3CLI[@]}" get "$S3_BUCKET" "$PREFIX/manifest" - 2>/dev/null)
  if [ "$have" = "$want" ]; then
    say "data already seeded ($PREFIX/)"
    return 0
  fi
  say "seeding $PREFIX/: seq $((SEQ_SIZE / MIB)) MiB, rand $((RAND_SIZE / MIB)) MiB, conc $((CONC_SIZE / MIB)) MiB, $N_SMALL x 64 KiB, $N_LIST listed, tree $TREE_FAN^3 x $TREE_FILES"
  local t0; t0=$(now)
  "${S3CLI[@]}" put-random "$S3_BUCKET" "$PREFIX/seq.bin" "$SEQ_SIZE" 1 >>"$LOG" 2>&1 || die "seed seq.bin failed"
  "${S3CLI[@]}" put-random "$S3_BUCKET" "$PREFIX/rand.bin" "$RAND_SIZE" 2 >>"$LOG" 2>&1 || die "seed rand.bin failed"
  "${S3CLI[@]}" put-random "$S3_BUCKET" "$PREFIX/conc.bin" "$CONC_SIZE" 3 >>"$LOG" 2>&1 || die "seed conc.bin failed"
  "${S3CLI[@]}" put-random "$S3_BUCKET" "$PREFIX/dense.bin" "$DENSE_SIZE" 4 >>"$LOG" 2>&1 || die "seed dense.bin failed"
  # the index walk's database: rows of 200 random bytes by integer key, DENSE_SIZE bytes
  python3 - "$WORK/idx.db" "$DENSE_SIZE" <<'PY' >>"$LOG" 2>&1 || die "building idx.db failed"
import os, sqlite3, sys
path, size = sys.argv[1], int(sys.argv[2])
if os.path.exists(path): os.unlink(path)
db = sqlite3.connect(path)
db.execute("PRAGMA page_size=4096")
db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)")
n = size // 240
db.executemany("INSERT INTO t VALUES (?, ?)", ((i, os.urandom(200)) for i in range(n)))
db.commit()
db.execute("VACUUM")
db.close()
print("idx.db: %d rows, %d bytes" % (n, os.path.getsize(path)))
PY
  "${S3CLI[@]}" put "$S3_BUCKET" "$PREFIX/idx.db" "$WORK/idx.db" >>"$LOG" 2>&1 || die "seed idx.db failed"
  stage=$WORK/stage
  rm -rf "$stage"
  node - "$stage/$PREFIX" "$N_SMALL" "$SMALL_SIZE" "$N_LIST" "$TREE_FAN" "$TREE_FILES" <<'EOF' || die "staging failed"
const fs = require('fs'), path = require('path'), crypto = require('crypto');
const [dir, nSmall, smallSize, nList, fan, files] = process.argv.slice(2).map((v, i) => (i ? Number(v) : v));
const pad = (n, w) => String(n).padStart(w, '0');
fs.mkdirSync(path.join(dir, 'small'), { recursive: true });
fs.mkdirSync(path.join(dir, 'list'), { recursive: true });
for (let i = 0; i < nSmall; i++) fs.writeFileSync(path.join(dir, 'small', `f${pad(i, 5)}.bin`), crypto.randomBytes(smallSize));
for (let i = 0; i < nList; i++) fs.writeFileSync(path.join(dir, 'list', `o${pad(i, 6)}.txt`), `object ${i}\n`);
for (let a = 0; a < fan; a++) for (let b = 0; b < fan; b++) for (let c = 0; c < fan; c++) {
  const d = path.join(dir, 'tree', `a${a}`, `b${b}`, `c${c}`);
  fs.mkdirSync(d, { recursive: true });
  for (let f = 0; f < files; f++) fs.writeFileSync(path.join(d, `f${f}.dat`), crypto.randomBytes(1024));
}
EOF
  if [ -x "$BUILD/bin/tierfs-seed" ]; then
    "$BUILD/bin/tierfs-seed" --endpoint "$S3_DIRECT" --bucket "$S3_BUCKET" --path-style \
      --region "$S3_REGION" --access-key "$S3_KEY" --secret-key "$S3_SECRET" \
      --jobs 32 --dir "$stage" >>"$LOG" 2>&1 || die "tierfs-seed failed (see $LOG)"
  else
    rclone --config "$WORK/rclone.conf" copy "$stage" "tfbenchdirect:$S3_BUCKET" \
      --transfers 32 --s3-upload-cutoff 5G >>"$LOG" 2>&1 || die "rclone copy failed (see $LOG)"
  fi
  rm -rf "$stage"
  printf '%s' "$want" | "${S3CLI[@]}" put "$S3_BUCKET" "$PREFIX/manifest" - >>"$LOG" 2>&1 ||
    die "seed manifest failed"
  say "seeded in $(elapsed "$t0") s"
}

# rclone: remotes from the environment (provider Ceph); an empty config file of our own.
: >"$WORK/rclone.conf"
export RCLONE_CONFIG_TFBENCH_TYPE=s3 RCLONE_CONFIG_TFBENCH_PROVIDER=Ceph
export RCLONE_CONFIG_TFBENCH_ENDPOINT=$S3_ENDPOINT RCLONE_CONFIG_TFBENCH_REGION=$S3_REGION
export RCLONE_CONFIG_TFBENCH_ACCESS_KEY_ID=$S3_KEY RCLONE_CONFIG_TFBENCH_SECRET_ACCESS_KEY=$S3_SECRET
export RCLONE_CONFIG_TFBENCHDIRECT_TYPE=s3 RCLONE_CONFIG_TFBENCHDIRECT_PROVIDER=Ceph
export RCLONE_CONFIG_TFBENCHDIRECT_ENDPOINT=$S3_DIRECT RCLONE_CONFIG_TFBENCHDIRECT_REGION=$S3_REGION
export RCLONE_CONFIG_TFBENCHDIRECT_ACCESS_KEY_ID=$S3_KEY RCLONE_CONFIG_TFBENCHDIRECT_SECRET_ACCESS_KEY=$S3_SECRET
# s3fs: a password file of our own.
printf '%s:%s\n' "$S3_KEY" "$S3_SECRET" >"$WORK/passwd-s3fs"
chmod 600 "$WORK/passwd-s3fs"

# ---------------------------------------------------------------- mounting
DPID=     # pid of the daemon behind the current mount
MNT=      # the current mountpoint
NMOUNT=0
# tierfs' disk tier must hold the biggest file; the peers' caches are unbounded dirs.
TIERFS_DISK=$(( (SEQ_SIZE + RAND_SIZE + CONC_SIZE) / MIB * 2 + 256 ))M

# mount_fs SYSTEM CACHE_DIR [FUSE_NULL_SIZE]: mount SYSTEM on a fresh mountpoint using
# CACHE_DIR as its persistent cache; sets MNT and DPID. @return 0, or 1 after logging.
mount_fs() {
  local sys=$1 cache=$2 size=${3:-0} i log
  NMOUNT=$((NMOUNT + 1))
  MNT=$WORK/mnt/$sys.$NMOUNT
  mkdir -p "$MNT" "$cache"
  log=$OUT/logs/$sys.$NMOUNT.log
  # MOUNT_RW=1: a writable mount (the write workload); read-only otherwise
  local rw_t= rw_s=ro rw_r=(--read-only)
  [ "${MOUNT_RW:-0}" = 1 ] && rw_t=,writable,allow_overwrite rw_s=rw rw_r=(--vfs-write-back 0s)
  case "$sys" in
    tierfs)
      "$BUILD/bin/tierfs" "$S3_BUCKET" "$MNT" -f -o "endpoint=$S3_ENDPOINT,path_style,region=$S3_REGION" \
        -o "access_key=$S3_KEY,secret_key=$S3_SECRET,disk_cache=$cache/tierfs.cache,disk_cache_size=$TIERFS_DISK${TIERFS_OPTS:+,$TIERFS_OPTS}$rw_t" \
        >"$log" 2>&1 &
      ;;
    s3fs)
      s3fs "$S3_BUCKET" "$MNT" -f -o "url=$S3_ENDPOINT,use_path_request_style,endpoint=$S3_REGION" \
        -o "passwd_file=$WORK/passwd-s3fs,use_cache=$cache,$rw_s,dbglevel=warn" >"$log" 2>&1 &
      ;;
    rclone)
      rclone --config "$WORK/rclone.conf" mount "tfbench:$S3_BUCKET" "$MNT" "${rw_r[@]}" \
        --vfs-cache-mode full --cache-dir "$cache" --log-level NOTICE >"$log" 2>&1 &
      ;;
    fuse-null)
      "$BUILD/bin/tierfs-fuse-null" "$MNT" -f -o "size=$size" >"$log" 2>&1 &
      ;;
  esac
  DPID=$!
  PIDS+=("$DPID")
  MOUNTS+=("$MNT")
  for i in $(seq 1 300); do
    is_mounted "$MNT" && break
    kill -0 "$DPID" 2>/dev/null || break
    sleep 0.1
  done
  if ! is_mounted "$MNT"; then
    say "$sys did not mount (see $log)"
    umount_fs
    return 1
  fi
  # rclone answers only once its VFS is up; wait until the root lists.
  timeout 30 ls "$MNT" >/dev/null 2>&1
  local dev; dev=$(awk -v m="$MNT" '$5 == m { d = $3 } END { print d }' /proc/self/mountinfo)
  echo "$sys mount $NMOUNT: pid $DPID, read_ahead_kb $(cat "/sys/class/bdi/$dev/read_ahead_kb" 2>/dev/null)" >>"$LOG"
  RA_KB[$sys]=$(cat "/sys/class/bdi/$dev/read_ahead_kb" 2>/dev/null)
  return 0
}

# umount_fs: unmount the current mount and reap its daemon.
umount_fs() {
  [ -n "$MNT" ] || return 0
  unmount_one "$MNT"
  stop_pid "$DPID"
  local i keep=()
  for i in "${MOUNTS[@]}"; do [ "$i" != "$MNT" ] && keep+=("$i"); done
  MOUNTS=("${keep[@]}")
  keep=()
  for i in "${PIDS[@]}"; do [ "$i" != "$DPID" ] && keep+=("$i"); done
  PIDS=("${keep[@]}")
  rmdir "$MNT" 2>/dev/null
  MNT= DPID=
}

# ---------------------------------------------------------------- measuring
echo "system,workload,case,wall_s,bytes,mb_s,iops,s3_requests,s3_get,s3_head,s3_list,s3_bytes,peak_rss_kib,status,round,daemon_cpu_s,daemon_minflt" >"$CSV"
# cpu_ticks PID: the process's user + system time so far, in clock ticks (all its threads)
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null; }
# minflt PID: the process's minor page faults so far (all its threads; populate calls too)
minflt() { awk '{ print $10 }' "/proc/$1/stat" 2>/dev/null; }
TICKS=$(getconf CLK_TCK)
RES=$WORK/res    # a case's command may write "BYTES IOPS" here to override the defaults

# run_case SYSTEM WORKLOAD CASE BYTES CMD...: drop the page cache, reset the proxy
# counters and the daemon's VmHWM, run CMD under a timeout, append one CSV row.
run_case() {
  local sys=$1 wl=$2 cs=$3 bytes=$4 t0 rc wall iops="" mbs="" rss="" st=ok c
  shift 4
  drop_caches
  [ -n "$DPID" ] && echo 5 >"/proc/$DPID/clear_refs" 2>/dev/null
  ctl POST counters/reset >/dev/null || say "cannot reset proxy counters"
  rm -f "$RES"
  echo "--- $sys $wl $cs: $*" >>"$LOG"
  local cpu0= cpu= flt0= flt=
  [ -n "$DPID" ] && cpu0=$(cpu_ticks "$DPID") && flt0=$(minflt "$DPID")
  t0=$(now)
  # In the background and reaped with wait, so INT/TERM reach the trap at once; timeout
  # kills the case's whole process group. Shell functions run through an exported bash.
  timeout -k 10 "$CASE_TIMEOUT" bash -c '"$@"' case "$@" >>"$LOG" 2>&1 &
  CASE_PID=$!
  wait "$CASE_PID"
  rc=$?
  CASE_PID=
  wall=$(elapsed "$t0")
  c=$(counters)
  [ -n "$DPID" ] && rss=$(awk '/^VmHWM:/ { print $2 }' "/proc/$DPID/status" 2>/dev/null)
  # the daemon's CPU over the case (core-seconds; per GiB in results.md)
  [ -n "$cpu0" ] && cpu=$(awk -v a="$cpu0" -v b="$(cpu_ticks "$DPID")" -v t="$TICKS" 'BEGIN { if (b != "") printf "%.2f", (b - a) / t }')
  [ -n "$flt0" ] && flt=$(awk -v a="$flt0" -v b="$(minflt "$DPID")" 'BEGIN { if (b != "") print b - a }')
  local bw=
  [ -s "$RES" ] && read -r bytes iops bw <"$RES"
  [ "$iops" = - ] && iops=
  if [ $rc = 124 ] || [ $rc = 137 ]; then st=timeout; elif [ $rc != 0 ]; then st="fail($rc)"; fi
  if [ -n "$DPID" ] && ! kill -0 "$DPID" 2>/dev/null; then st=daemon-exited; fi
  # MB/s: fio's own bandwidth (its run time, not its start-up); else bytes over wall time.
  if [ "$st" != ok ]; then
    bytes=0 iops=
  elif [ -n "$bw" ]; then
    mbs=$(awk -v b="$bw" 'BEGIN { printf "%.1f", b / 1e6 }')
  elif [ "${bytes:-0}" -gt 0 ] 2>/dev/null; then
    mbs=$(awk -v b="$bytes" -v w="$wall" 'BEGIN { printf "%.1f", b / 1e6 / w }')
  fi
  [ -n "$iops" ] && iops=$(printf '%.0f' "$iops")
  set -- $c
  echo "$sys,$wl,$cs,$wall,$bytes,$mbs,$iops,$1,$2,$3,$4,$5,$rss,$st,$ROUND,$cpu,$flt" >>"$CSV"
  say "$(printf '%-9s %-6s %-14s %8ss %8s MB/s %7s IOPS  %5s req %8s B  rss %s KiB  cpu %s s  %s' \
    "$sys" "$wl" "$cs" "$wall" "${mbs:--}" "${iops:--}" "$1" "$5" "${rss:--}" "${cpu:--}" "$st")"
}

# read_all FILE EXPECTED: one sequential reader; fails on a short read.
read_all() {
  local n
  n=$(dd if="$1" of=/dev/null bs=1M 2>&1 | awk '/bytes/ { print $1 }')
  [ "$n" = "$2" ] || { echo "read_all $1: $n bytes, expected $2" >&2; return 1; }
}
# readers N FILE EXPECTED: N concurrent sequential readers of FILE.
readers() {
  local n=$1 f=$2 want=$3 i bad=0 pids=()
  for i in $(seq 1 "$n"); do read_all "$f" "$want" & pids+=($!); done
  for i in "${pids[@]}"; do wait "$i" || bad=1; done
  echo "$((n * want))" >"$RES"
  return $bad
}
# fio_rand FILE BS: psync random reads, 2 jobs, fixed duration; "BYTES IOPS" to $RES.
fio_rand() {
  local out=$WORK/fio.json
  fio --name=rand --filename="$1" --readonly --rw=randread --bs="$2" --ioengine=psync \
    --numjobs=2 --time_based --runtime="$FIO_RUNTIME" --group_reporting --invalidate=1 \
    --output-format=json --output="$out" || return 1
  node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).jobs[0].read;
    console.log(`${r.io_bytes} ${r.iops} ${r.bw_bytes}`);' "$out" >"$RES"
}
# fio_dense FILE: psync random 4k reads, one job, one at a time; "BYTES IOPS" to $RES.
fio_dense() {
  local out=$WORK/fio.json
  fio --name=dense --filename="$1" --readonly --rw=randread --bs=4k --ioengine=psync \
    --numjobs=1 --iodepth=1 --time_based --runtime="$FIO_RUNTIME" --invalidate=1 \
    --output-format=json --output="$out" || return 1
  node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).jobs[0].read;
    console.log(`${r.io_bytes} ${r.iops} ${r.bw_bytes}`);' "$out" >"$RES"
}
# index_walk DB: INDEX_LOOKUPS random lookups by key, one after another (the wall time is
# the case's); "BYTES LOOKUPS/S" to $RES.
index_walk() {
  python3 - "$1" "$INDEX_LOOKUPS" "$RES" <<'PY'
import random, sqlite3, sys, time
path, count, res = sys.argv[1], int(sys.argv[2]), sys.argv[3]
db = sqlite3.connect("file:%s?mode=ro&immutable=1" % path, uri=True)
db.execute("PRAGMA cache_size=0")
n = db.execute("SELECT max(id) FROM t").fetchone()[0]
rnd, t0 = random.Random(7), time.time()
for _ in range(count):
    row = db.execute("SELECT v FROM t WHERE id = ?", (rnd.randrange(n + 1),)).fetchone()
    if row is None or len(row[0]) != 200:
        sys.exit("lookup failed")
open(res, "w").write("%d %f\n" % (count * 200, count / (time.time() - t0)))
PY
}
# col_query DIR CASE: one DuckDB query of tools/bench_columnar.cjs on the files under DIR.
col_query() {
  NODE_PATH=$DUCKDB_DIR/node_modules BENCH_COLUMNAR_SCALE=$COL_SCALE node "$HERE/bench_columnar.cjs" query "$1" "$2"
}
# read_tree DIR N_EXPECTED: every file under DIR read by 8 parallel cats.
read_tree() {
  local n
  n=$(find "$1" -type f | wc -l)
  [ "$n" = "$2" ] || { echo "read_tree $1: $n files, expected $2" >&2; return 1; }
  find "$1" -type f -print0 | xargs -0 -P "$N_READERS" -n 16 cat >/dev/null
}
# list_dir DIR N: `ls -l`, checking the count.
list_dir() {
  local n
  n=$(ls -l "$1" | grep -c '^-')
  [ "$n" = "$2" ] || { echo "list_dir $1: $n entries, expected $2" >&2; return 1; }
}
# find_tree DIR N: `find`, checking the file count.
find_tree() {
  local n
  n=$(find "$1" -type f | wc -l)
  [ "$n" = "$2" ] || { echo "find_tree $1: $n files, expected $2" >&2; return 1; }
}

# run_case runs these in a child bash: export them and what they read.
export -f read_all readers fio_rand fio_dense index_walk col_query read_tree list_dir find_tree
export RES WORK FIO_RUNTIME N_READERS DUCKDB_DIR COL_SCALE HERE INDEX_LOOKUPS

# ---------------------------------------------------------------- workloads per system
# has WORKLOAD: selected, and in rounds after the first only seq and net are run again.
has() {
  [ "$ROUND" -gt 1 ] && [ "$1" != seq ] && [ "$1" != net ] && return 1
  case ",$WORKLOADS," in *",$1,"*) return 0 ;; *) return 1 ;; esac
}
N_TREE=$((TREE_FAN * TREE_FAN * TREE_FAN * TREE_FILES))

bench_system() {
  local sys=$1 cache bs
  local D="$PREFIX"
  say "=== $sys"
  if has seq; then
    cache=$WORK/cache/$sys.seq
    if mount_fs "$sys" "$cache"; then
      run_case "$sys" seq cold "$SEQ_SIZE" read_all "$MNT/$D/seq.bin" "$SEQ_SIZE"
      umount_fs
      if mount_fs "$sys" "$cache"; then
        run_case "$sys" seq warm-remount "$SEQ_SIZE" read_all "$MNT/$D/seq.bin" "$SEQ_SIZE"
        umount_fs
      fi
    fi
    rm -rf "$cache"
  fi
  if has rand; then
    for bs in 4k 64k 1m; do
      cache=$WORK/cache/$sys.rand
      if mount_fs "$sys" "$cache"; then
        run_case "$sys" rand "cold-$bs" 0 fio_rand "$MNT/$D/rand.bin" "$bs"
        drop_caches
        read_all "$MNT/$D/rand.bin" "$RAND_SIZE" >>"$LOG" 2>&1 # fill the cache
        run_case "$sys" rand "warm-$bs" 0 fio_rand "$MNT/$D/rand.bin" "$bs"
        umount_fs
      fi
      rm -rf "$cache"
    done
  fi
  if has dense; then
    for w in fio-4k-qd1 index-walk; do
      cache=$WORK/cache/$sys.dense
      if mount_fs "$sys" "$cache"; then
        if [ $w = fio-4k-qd1 ]; then
          run_case "$sys" dense "cold-$w" 0 fio_dense "$MNT/$D/dense.bin"
        else
          run_case "$sys" dense "cold-$w" 0 index_walk "$MNT/$D/idx.db"
        fi
        umount_fs
      fi
      rm -rf "$cache"
    done
  fi
  if has columnar; then
    for c in 2of4 3of20 filter full hive; do
      cache=$WORK/cache/$sys.col
      if mount_fs "$sys" "$cache"; then
        run_case "$sys" columnar "cold-$c" 0 col_query "$MNT/$D/col" "$c"
        [ $c = hive ] && run_case "$sys" columnar "warm-$c" 0 col_query "$MNT/$D/col" "$c"
        umount_fs
      fi
      rm -rf "$cache"
    done
  fi
  if has conc; then
    cache=$WORK/cache/$sys.conc
    if mount_fs "$sys" "$cache"; then
      run_case "$sys" conc "cold-${N_READERS}readers" 0 readers "$N_READERS" "$MNT/$D/conc.bin" "$CONC_SIZE"
      umount_fs
    fi
    rm -rf "$cache"
  fi
  if has small; then
    cache=$WORK/cache/$sys.small
    if mount_fs "$sys" "$cache"; then
      run_case "$sys" small "cold-${N_SMALL}x64k" $((N_SMALL * SMALL_SIZE)) read_tree "$MNT/$D/small" "$N_SMALL"
      run_case "$sys" small "warm-${N_SMALL}x64k" $((N_SMALL * SMALL_SIZE)) read_tree "$MNT/$D/small" "$N_SMALL"
      umount_fs
    fi
    rm -rf "$cache"
  fi
  if has write; then
    cache=$WORK/cache/$sys.write
    if MOUNT_RW=1 mount_fs "$sys" "$cache"; then
      run_case "$sys" write "cold-cp" "$SEQ_SIZE" write_file "$WORK/write-src.bin" "$MNT/$D/w-$sys-$ROUND.bin" \
        "$D/w-$sys-$ROUND.bin"
      umount_fs
    fi
    rm -rf "$cache"
  fi
  if has meta; then
    cache=$WORK/cache/$sys.meta
    if mount_fs "$sys" "$cache"; then
      run_case "$sys" meta "ls-l-cold-$N_LIST" 0 list_dir "$MNT/$D/list" "$N_LIST"
      run_case "$sys" meta "ls-l-warm-$N_LIST" 0 list_dir "$MNT/$D/list" "$N_LIST"
      run_case "$sys" meta "find-cold-$N_TREE" 0 find_tree "$MNT/$D/tree" "$N_TREE"
      run_case "$sys" meta "find-warm-$N_TREE" 0 find_tree "$MNT/$D/tree" "$N_TREE"
      umount_fs
    fi
    rm -rf "$cache"
  fi
}

# The FUSE ceiling: the same reads on tierfs-fuse-null (no cache: every case is "cold").
bench_null() {
  local bs
  say "=== fuse-null (FUSE ceiling)"
  if has seq && mount_fs fuse-null "$WORK/cache/null" "$SEQ_SIZE"; then
    run_case fuse-null seq cold "$SEQ_SIZE" read_all "$MNT/file" "$SEQ_SIZE"
    umount_fs
  fi
  if has rand && mount_fs fuse-null "$WORK/cache/null" "$RAND_SIZE"; then
    for bs in 4k 64k 1m; do
      run_case fuse-null rand "cold-$bs" 0 fio_rand "$MNT/file" "$bs"
    done
    umount_fs
  fi
  if has conc && mount_fs fuse-null "$WORK/cache/null" "$CONC_SIZE"; then
    run_case fuse-null conc "cold-${N_READERS}readers" 0 readers "$N_READERS" "$MNT/file" "$CONC_SIZE"
    umount_fs
  fi
}

# net_get STREAMS: pull seq.bin through the proxy with STREAMS parallel ranged GETs.
net_get() {
  local n=$1 part i a b pids=() bad=0
  part=$(( (SEQ_SIZE + n - 1) / n ))
  for i in $(seq 0 $((n - 1))); do
    a=$((i * part)); b=$((a + part - 1)); [ $b -ge $SEQ_SIZE ] && b=$((SEQ_SIZE - 1))
    [ $a -ge $SEQ_SIZE ] && break
    curl -sSf --aws-sigv4 "aws:amz:$S3_REGION:s3" --user "$S3_KEY:$S3_SECRET" -r "$a-$b" \
      -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' -o /dev/null "$S3_ENDPOINT/$S3_BUCKET/$PREFIX/seq.bin" &
    pids+=($!)
  done
  for i in "${pids[@]}"; do wait "$i" || bad=1; done
  return $bad
}
# objstore_get TOOL ARGS...: run tierfs-bench-objstore; its own "N bytes in T s" (the
# transfer, without process start-up and the HEAD) becomes the case's MB/s.
objstore_get() {
  local out
  out=$("$@") || return 1
  echo "$out"
  echo "$out" | awk '/ bytes in .* s:/ { printf "%s - %.0f\n", $1, $1 / $4 }' >"$RES"
}
# write_file SRC DST KEY: copy SRC onto the mount, then wait until S3 holds KEY at SRC's
# size (rclone uploads after close): the time of the case is until the object is there.
write_file() {
  local size i
  size=$(stat -c %s "$1")
  cp "$1" "$2" || return 1
  for i in $(seq 1 3000); do
    [ "$(node "$S3CLI_JS" --env "$S3_ENV_FILE" --endpoint "$S3_DIRECT" head "$S3_BUCKET" "$3" 2>/dev/null |
      awk '{ print $2 }')" = "$size" ] && return 0
    sleep 0.1
  done
  return 1
}
# put_ceiling FILE KEY: a multipart upload through the proxy (8 MiB parts, 4 in flight);
# s3cli's own transfer time becomes the case's MB/s.
put_ceiling() {
  local out
  out=$(node "$S3CLI_JS" --env "$S3_ENV_FILE" put-multipart "$S3_BUCKET" "$2" "$1" $((8 << 20)) 4) || return 1
  echo "$out"
  echo "$out" | awk '{ printf "%s - %.0f\n", $1, $1 / $2 }' >"$RES"
}
S3CLI_JS=$ROOT/tests/s3server/s3cli.js S3_ENV_FILE=$WORK/s3.env
export -f net_get objstore_get write_file put_ceiling
export S3CLI_JS S3_ENV_FILE S3_DIRECT
export SEQ_SIZE S3_REGION S3_KEY S3_SECRET S3_ENDPOINT S3_BUCKET PREFIX

# The network ceiling: seq.bin pulled through the proxy with N GETs in flight, by
# tierfs-bench-objstore (the objstore client tierfs uses) when it is built, else by curl
# (N ranges, one GET each).
bench_net() {
  local n tool=$BUILD/bin/tierfs-bench-objstore
  if has write; then
    say "=== upload ceiling (multipart, 8 MiB parts, 4 in flight)"
    DPID=
    run_case s3cli net "put-4par-8M" "$SEQ_SIZE" put_ceiling "$WORK/write-src.bin" "$PREFIX/w-ceiling-$ROUND.bin"
  fi
  say "=== network ceiling (parallel ranged GETs)"
  for n in $NET_STREAMS; do
    DPID=
    if [ -x "$tool" ]; then
      run_case objstore net "get-${n}par-$NET_REQ" "$SEQ_SIZE" objstore_get "$tool" --endpoint "$S3_ENDPOINT" \
        --bucket "$S3_BUCKET" --key "$PREFIX/seq.bin" --path-style --region "$S3_REGION" \
        --access-key "$S3_KEY" --secret-key "$S3_SECRET" --parallel "$n" --request-size "$NET_REQ"
    else
      run_case curl net "get-${n}par" "$SEQ_SIZE" net_get "$n"
    fi
  done
}

# fio_disk FILE: 1 MiB O_DIRECT sequential reads of FILE; "BYTES IOPS BW" to $RES.
fio_disk() {
  local out=$WORK/fio.json
  fio --name=disk --filename="$1" --readonly --rw=read --bs=1M --direct=1 --ioengine=libaio \
    --iodepth=4 --output-format=json --output="$out" || return 1
  node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).jobs[0].read;
    console.log(`${r.io_bytes} ${r.iops} ${r.bw_bytes}`);' "$out" >"$RES"
}
export -f fio_disk

# The disk ceiling: what a warm read from the disk tier can reach on this machine (the
# cache files live under $WORK/cache, so the file read here does too).
bench_disk() {
  local f=$WORK/cache/disk-ceiling.bin
  say "=== disk ceiling (fio, 1 MiB O_DIRECT sequential reads)"
  mkdir -p "$WORK/cache"
  if fio --name=layout --filename="$f" --rw=write --bs=1M --direct=1 --size="$SEQ_SIZE" \
      --output=/dev/null >>"$LOG" 2>&1; then
    DPID=
    run_case disk seq "read-1M-direct" "$SEQ_SIZE" fio_disk "$f"
  else
    say "cannot write $f for the disk ceiling (see $LOG)"
  fi
  rm -f "$f"
}

# The columnar workload's data: generated by DuckDB into $WORK/colref (deterministic, a few
# seconds; also the local copy the traced bytes come from) and uploaded under $PREFIX/col/
# unless a run with the same scale did it already.
COL_SCALE=$([ $QUICK = 1 ] && echo 8 || echo 1)
DUCKDB_DIR=/var/tmp/tierfs-bench-duckdb
seed_columnar() {
  local want="columnar scale=$COL_SCALE v1"
  if [ ! -d "$DUCKDB_DIR/node_modules/@duckdb/node-api" ]; then
    say "installing @duckdb/node-api in $DUCKDB_DIR (npm)"
    mkdir -p "$DUCKDB_DIR"
    npm install --prefix "$DUCKDB_DIR" --no-audit --no-fund @duckdb/node-api@1.5.6-r.1 >>"$LOG" 2>&1 ||
      npm install --prefix "$DUCKDB_DIR" --no-audit --no-fund @duckdb/node-api >>"$LOG" 2>&1 ||
      die "npm install @duckdb/node-api failed (see $LOG)"
  fi
  rm -rf "$WORK/colref"
  NODE_PATH=$DUCKDB_DIR/node_modules node "$HERE/bench_columnar.cjs" gen "$WORK/colref" "$COL_SCALE" >>"$LOG" 2>&1 ||
    die "bench_columnar.cjs gen failed (see $LOG)"
  [ "$("${S3CLI[@]}" get "$S3_BUCKET" "$PREFIX/col/manifest" - 2>/dev/null)" = "$want" ] && return 0
  say "seeding $PREFIX/col/ (DuckDB, scale 1/$COL_SCALE)"
  "$BUILD/bin/tierfs-seed" --endpoint "$S3_DIRECT" --bucket "$S3_BUCKET" --path-style \
    --region "$S3_REGION" --access-key "$S3_KEY" --secret-key "$S3_SECRET" \
    --jobs 16 --dir "$WORK/colref" --prefix "$PREFIX/col/" >>"$LOG" 2>&1 || die "seeding col/ failed (see $LOG)"
  printf '%s' "$want" | "${S3CLI[@]}" put "$S3_BUCKET" "$PREFIX/col/manifest" - >>"$LOG" 2>&1 ||
    die "writing col/manifest failed"
}
# col_traced CASE: bytes the query reads from its Parquet files, traced on the local copy
# (-ff: a file per thread, so no call is split into "unfinished" and "resumed" lines)
col_traced() {
  local tr=$WORK/col.strace
  rm -f "$tr".*
  NODE_PATH=$DUCKDB_DIR/node_modules BENCH_COLUMNAR_SCALE=$COL_SCALE strace -ff -y -e trace=pread64,read \
    -o "$tr" node "$HERE/bench_columnar.cjs" query "$WORK/colref" "$1" >>"$LOG" 2>&1 || return 1
  cat "$tr".* | grep -E '\.parquet>' | sed -nE 's/.*= ([0-9]+)$/\1/p' | awk '{ s += $1 } END { print s + 0 }'
}

# ---------------------------------------------------------------- run
say "output: $OUT (log: $LOG)"
unshape
seed
case ",$WORKLOADS," in *,columnar,*) seed_columnar ;; esac
# the write workload's source: local, random, seq-sized (read from disk by every case)
case ",$WORKLOADS," in *,write,*)
  [ "$(stat -c %s "$WORK/write-src.bin" 2>/dev/null)" = "$SEQ_SIZE" ] ||
    head -c "$SEQ_SIZE" /dev/urandom >"$WORK/write-src.bin" ;;
esac
shape
T_START=$(now)
for ROUND in $(seq 1 "$REPEAT"); do
  [ "$REPEAT" -gt 1 ] && say "=== round $ROUND of $REPEAT"
  for sys in tierfs s3fs rclone; do
    case ",$ONLY," in *",$sys,"*) bench_system "$sys" ;; esac
  done
  has null && bench_null
  has net && bench_net
  has disk && bench_disk
done
ROUND=1
unshape
T_TOTAL=$(elapsed "$T_START" | xargs printf '%.0f')

# ---------------------------------------------------------------- report
# versions: the peers' and fio's versions, of those installed (a run may need none).
versions() {
  local v=()
  command -v s3fs >/dev/null 2>&1 && v+=("$(s3fs --version 2>&1 | head -n 1 | sed 's/ (commit.*//')")
  command -v rclone >/dev/null 2>&1 && v+=("$(rclone version 2>/dev/null | head -n 1)")
  command -v fio >/dev/null 2>&1 && v+=("$(fio --version)")
  [ ${#v[@]} -gt 0 ] || v=("none of s3fs, rclone, fio installed")
  local x out=
  for x in "${v[@]}"; do out+="${out:+, }$x"; done
  echo "$out"
}
# An awk function the report's programs share: median(a, n) of a[1..n] (sorts a in place).
AWK_MEDIAN='function median(a, n,   i, j, t) {
  for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
  return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}'
# repeat_summary: for --repeat, the median and range of every case run in more than one
# round, then the target ratios per round (each from two cases of the same round) and
# their median. Only rounds where both cases are "ok" count.
repeat_summary() {
  echo "## Over $REPEAT rounds"
  echo
  echo "| system | workload | case | rounds | median wall s | min | max | median MB/s |"
  echo "|---|---|---|---:|---:|---:|---:|---:|"
  awk -F, '
    '"$AWK_MEDIAN"'
    NR > 1 && $14 == "ok" {
      k = $1 SUBSEP $2 SUBSEP $3
      if (!(k in n)) order[++nk] = k
      n[k]++; w[k, n[k]] = $4 + 0; m[k, n[k]] = $6 + 0
    }
    END {
      for (i = 1; i <= nk; i++) {
        k = order[i]; if (n[k] < 2) continue
        delete a; delete b; lo = hi = w[k, 1]
        for (j = 1; j <= n[k]; j++) { a[j] = w[k, j]; b[j] = m[k, j]; lo = a[j] < lo ? a[j] : lo; hi = a[j] > hi ? a[j] : hi }
        split(k, f, SUBSEP)
        printf "| %s | %s | %s | %d | %.3f | %.3f | %.3f | %.1f |\n", f[1], f[2], f[3], n[k], median(a, n[k]), lo, hi, median(b, n[k])
      }
    }' "$CSV"
  echo
  echo "Ratios of wall times, each from two cases of one round (the target is in brackets):"
  echo
  echo "| ratio | per round | median |"
  echo "|---|---|---:|"
  awk -F, -v rounds="$REPEAT" -v req="$NET_REQ" -v gets="$TIERFS_GETS" '
    '"$AWK_MEDIAN"'
    NR > 1 && $14 == "ok" && $2 == "seq" && $3 == "cold" { t[$1, $15] = $4 }
    NR > 1 && $14 == "ok" && $1 == "objstore" { t[$3, $15] = $4 }
    function row(label, num, den,   r, n, list, a) {
      n = 0; list = ""
      for (r = 1; r <= rounds; r++)
        if ((num, r) in t && (den, r) in t && t[den, r] > 0) {
          a[++n] = t[num, r] / t[den, r]; list = list (n > 1 ? ", " : "") sprintf("%.2fx", a[n])
        }
      if (n) printf "| %s | %s | %.2fx |\n", label, list, median(a, n)
    }
    END {
      row("tierfs cold seq / network ceiling at tierfs'"'"'s " gets " GETs in flight (<= 1.1x)", "tierfs", "get-" gets "par-" req)
      if (gets != 8) row("tierfs cold seq / 8-GET network ceiling", "tierfs", "get-8par-" req)
      if (gets != 32) row("tierfs cold seq / 32-GET network ceiling", "tierfs", "get-32par-" req)
      row("s3fs cold seq / tierfs cold seq (>= 2x)", "s3fs", "tierfs")
      row("rclone cold seq / tierfs cold seq (>= 2x)", "rclone", "tierfs")
    }' "$CSV"
  echo
}

# columnar_summary: per columnar case, S3's bytes against the files it queries and against
# the bytes the query really reads (col_traced on the local copy).
columnar_summary() {
  local c file traced t4 t20 hive
  t4=$(stat -c %s "$WORK/colref/t4.parquet") t20=$(stat -c %s "$WORK/colref/t20.parquet")
  hive=$(find "$WORK/colref/hive" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
  echo "## Columnar (DuckDB $(NODE_PATH=$DUCKDB_DIR/node_modules node -e 'console.log(require("@duckdb/node-api/package.json").version)' 2>/dev/null))"
  echo
  echo "Files: t4.parquet $t4 bytes (4 columns), t20.parquet $t20 bytes (20 columns), hive/ $hive bytes in 48 files; row groups of 100,000 rows. 'read' is what the query read from the files in a local run (strace of its pread/read calls)."
  echo
  echo "| system | case | wall s | S3 GETs | S3 MB | of the file(s) | of what the query reads |"
  echo "|---|---|---:|---:|---:|---:|---:|"
  for c in 2of4 3of20 filter full hive; do
    case $c in 3of20) file=$t20 ;; hive) file=$hive ;; *) file=$t4 ;; esac
    traced=$(col_traced "$c")
    awk -F, -v c="$c" -v f="$file" -v t="${traced:-0}" 'NR > 1 && $2 == "columnar" && ($3 == ("cold-" c) || $3 == ("warm-" c)) && $14 == "ok" {
      printf "| %s | %s | %.3f | %s | %.1f | %.2fx | %s |\n", $1, $3, $4, $9, $12 / 1e6, $12 / f,
        (t > 0 ? sprintf("%.2fx (read %.1f MB)", $12 / t, t / 1e6) : "-") }' "$CSV"
  done
  echo
}

{
  echo "# tierfs side-by-side benchmark$([ $QUICK = 1 ] && echo ' (--quick smoke run)')"
  echo
  echo "- command: \`$CMDLINE\`"
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'), tree $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)$(git -C "$ROOT" diff --quiet HEAD -- 2>/dev/null || echo ' (with uncommitted changes)')"
  echo "- machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), kernel $(uname -r), $(awk '/MemTotal/ { printf "%.0f GiB RAM", $2 / 1048576 }' /proc/meminfo), load at start $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "- S3: local Ceph radosgw (memstore) behind tests/s3server/proxy.js: ttfb ${TTFB_MS} ms, $((BANDWIDTH / 1000000)) MB/s per response (and per request body)"
  echo "- sizes: seq $((SEQ_SIZE / MIB)) MiB, rand $((RAND_SIZE / MIB)) MiB (fio psync, 2 jobs, ${FIO_RUNTIME}s), dense $((DENSE_SIZE / MIB)) MiB (fio 1 job qd 1 ${FIO_RUNTIME}s; a SQLite index walk of as many MiB, $INDEX_LOOKUPS lookups), conc $N_READERS readers x $((CONC_SIZE / MIB)) MiB, small $N_SMALL x 64 KiB ($N_READERS readers), ls -l $N_LIST, find $N_TREE files"
  echo "- versions: $(versions)"
  echo "- mounts: tierfs \`-o disk_cache=...,disk_cache_size=$TIERFS_DISK${TIERFS_OPTS:+,$TIERFS_OPTS}\` (defaults otherwise; the write case adds \`writable,allow_overwrite\`); s3fs \`-o use_cache=DIR\` (\`ro\`, \`rw\` for writes); rclone \`--vfs-cache-mode full\` (\`--read-only\`, \`--vfs-write-back 0s\` for writes); bdi read_ahead_kb (as mounted):$(for k in tierfs s3fs rclone fuse-null; do [ -n "${RA_KB[$k]:-}" ] && printf ' %s %s,' "$k" "${RA_KB[$k]}"; done | sed 's/,$//')"
  echo "- total benchmark time ${T_TOTAL} s (seeding excluded)"
  echo
  echo "Every case: page cache dropped, proxy counters reset, daemon VmHWM reset (clear_refs 5) first."
  echo "S3 columns are what the proxy saw during the case; peak RSS is the daemon's VmHWM over the case."
  echo
  echo "Daemon CPU is the FUSE daemon's user + system time over the case; per GiB, of the case's bytes; minor faults likewise (its /proc minflt, which counts prefaulting calls too)."
  echo
  echo "| system | workload | case | wall s | MB/s | IOPS | S3 req (GET/HEAD/LIST) | S3 MB | peak RSS MiB | daemon CPU s | core-s per GiB | minor faults per GiB | status |$([ "$REPEAT" -gt 1 ] && echo ' round |')"
  echo "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|$([ "$REPEAT" -gt 1 ] && printf '%s' '---:|')"
  awk -F, -v rounds="$REPEAT" 'NR > 1 {
    rss = $13 == "" ? "-" : sprintf("%.0f", $13 / 1024)
    cpu = $16 == "" ? "-" : $16
    pg = ($16 == "" || $5 + 0 <= 0) ? "-" : sprintf("%.2f", $16 / ($5 / 1073741824))
    fg = ($17 == "" || $5 + 0 <= 0) ? "-" : sprintf("%.0f", $17 / ($5 / 1073741824))
    printf "| %s | %s | %s | %s | %s | %s | %s (%s/%s/%s) | %.1f | %s | %s | %s | %s | %s |%s\n",
      $1, $2, $3, $4, $6 == "" ? "-" : $6, $7 == "" ? "-" : $7, $8, $9, $10, $11, $12 / 1e6, rss, cpu, pg, fg, $14,
      (rounds > 1 ? " " $15 " |" : "")
  }' "$CSV"
  echo
  [ "$REPEAT" -gt 1 ] && repeat_summary
  grep -q ',columnar,' "$CSV" && columnar_summary
  if [ $CHARTS = 1 ]; then
    echo "Charts: throughput.png (MB/s, log scale), metadata.png (seconds). Raw rows: results.csv."
  else
    echo "Charts: not drawn (--no-charts); their data: throughput.dat, metadata.dat. Raw rows: results.csv."
  fi
} >"$OUT/results.md"

# Chart data: one row per throughput case, one column per system ("-" = not run).
SYSTEMS="tierfs s3fs rclone fuse-null objstore curl disk"
pivot() { # pivot FILTER_AWK_EXPR COLUMN > file (the median over rounds)
  awk -F, -v systems="$SYSTEMS" -v col="$2" '
    '"$AWK_MEDIAN"'
    NR > 1 && $col != "" && ('"$1"') {
      k = $2 ":" $3; if (!(k in seen)) { seen[k] = 1; order[++n] = k }
      c[k, $1]++; v[k, $1, c[k, $1]] = $col + 0; used[$1] = 1 }
    END {
      ns = split(systems, s, " "); printf "case"
      for (i = 1; i <= ns; i++) if (used[s[i]]) printf " %s", s[i]; printf "\n"
      for (j = 1; j <= n; j++) { printf "%s", order[j]
        for (i = 1; i <= ns; i++) if (used[s[i]]) {
          m = c[order[j], s[i]] + 0
          if (!m) { printf " -"; continue }
          delete a; for (r = 1; r <= m; r++) a[r] = v[order[j], s[i], r]
          printf " %s", median(a, m) }
        printf "\n" } }' "$CSV"
}
pivot '$6 != ""' 6 >"$OUT/throughput.dat"
pivot '$2 == "meta"' 4 >"$OUT/metadata.dat"
for c in throughput metadata; do
  if [ $CHARTS = 1 ] && [ "$(wc -l <"$OUT/$c.dat")" -gt 1 ]; then
    gnuplot -e "datafile='$OUT/$c.dat'; outfile='$OUT/$c.png'; kind='$c'; subtitle='$([ $QUICK = 1 ] && echo 'quick smoke run, ')$(nproc) CPUs, ttfb ${TTFB_MS} ms, $((BANDWIDTH / 1000000)) MB/s per GET'" \
      "$HERE/bench_peers_chart.gnuplot" >>"$LOG" 2>&1 || say "gnuplot failed for $c (see $LOG)"
  fi
done
say "done: $OUT/results.md"
cat "$OUT/results.md"
