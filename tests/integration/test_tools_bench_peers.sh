#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# test_tools_bench_peers.sh: tools/bench_peers.sh end to end on the test server. A quick
# (64 MiB) two-round run of tierfs against the shaped proxy (the peers are not installed
# on a CI machine; the script needs only what the selection runs) must exit 0, record
# every case as ok with the proxy's S3 counters (a cold scan and 8 concurrent readers
# pull each byte once, warm cases pull none; with fio the dense workload, with npm and
# strace the DuckDB columnar one and its table of S3 bytes against the bytes the queries
# read; the write workload and its upload ceiling), write results.md with the command, the
# machine, the medians and per-round ratios computed from results.csv, draw the charts
# when gnuplot is there, and leave no mount, daemon or work directory behind and the
# proxy unshaped. Bad arguments get a one-line error and a non-zero exit.
. "$(dirname "$0")/fs_lib.sh"
fs_init tools_bench_peers
[ "$(id -u)" -eq 0 ] || { echo "SKIP: bench_peers needs root (drop_caches, read_ahead_kb)" >&2; exit 77; }

MB=1048576
SEQ=$((64 * MB))
CONC=$((32 * MB))
BENCH=$TIERFS_SOURCE_DIR/tools/bench_peers.sh
BUILD=$(dirname "$BIN")

# ---- bad arguments: one line naming what was wrong, non-zero exit, nothing run ----
bad() { # bad WHAT ARGS...: bench_peers ARGS must fail with one line that mentions WHAT
  local what=$1 out rc
  shift
  out=$(bash "$BENCH" "$@" 2>&1)
  rc=$?
  [ $rc -ne 0 ] || fail "bench_peers $* exited 0"
  [ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ] || fail "bench_peers $*: more than one line: $out"
  case "$out" in *"$what"*) ;; *) fail "bench_peers $*: '$out' does not name $what" ;; esac
}
bad "--repeat" --repeat 0
bad "--repeat" --repeat 21
bad "--only" --only tierfs,nfs
bad "--workloads" --workloads seq,bogus
bad "--ttfb-ms" --ttfb-ms 3x
bad "unknown argument" --frobnicate

# ---- a quick run in two rounds ----
W=seq,conc,small,meta,write,net
command -v fio >/dev/null 2>&1 && W+=,rand,dense,null,disk
command -v npm >/dev/null 2>&1 && command -v strace >/dev/null 2>&1 && W+=,columnar
CHARTS=(--no-charts)
command -v gnuplot >/dev/null 2>&1 && CHARTS=()
before=$(ls -d /var/tmp/tierfs-bench.* 2>/dev/null | sort)
OUT=$T/out
fs_log "bench_peers --quick --repeat 2 --only tierfs --workloads $W ${CHARTS[*]}"
bash "$BENCH" --quick --repeat 2 --only tierfs --workloads "$W" --server-env "$TIERFS_S3_ENV" \
  --build "$BUILD" --out "$OUT" "${CHARTS[@]}" >"$T/bench.log" 2>&1 ||
  { tail -n 40 "$T/bench.log" >&2; fail "bench_peers exited non-zero"; }
CSV=$OUT/results.csv
MD=$OUT/results.md
[ -s "$CSV" ] && [ -s "$MD" ] || fail "no results.csv / results.md in $OUT"

# The columnar workload's own table: S3 bytes against the files and the traced bytes
case ",$W," in *,columnar,*)
  grep -q '^## Columnar (DuckDB ' "$MD" || fail "results.md has no Columnar section"
  grep -qE '^\| tierfs \| cold-2of4 \| .*\| [0-9.]+x \| [0-9.]+x \(read ' "$MD" ||
    fail "results.md: no tierfs cold-2of4 row with both ratios: $(grep -A8 '^## Columnar' "$MD")" ;;
esac

# Nothing left behind: mounts, daemons, the work directory; the proxy unshaped.
grep -q " /var/tmp/tierfs-bench" /proc/self/mounts && fail "a bench mount is still there"
[ "$(ls -d /var/tmp/tierfs-bench.* 2>/dev/null | sort)" = "$before" ] || fail "bench work directory left behind"
pgrep -f -- "--out $OUT" >/dev/null && fail "a bench process is still running"
cfg=$(curl -s -m 5 "$S3_CONTROL/config")
case "$cfg" in *'"ttfb_ms":0'*'"bandwidth":0'*'"upload_bandwidth":0'*) ;; *) fail "proxy left shaped: $cfg" ;; esac

# ---- results.csv ----
[ "$(head -n 1 "$CSV")" = "system,workload,case,wall_s,bytes,mb_s,iops,s3_requests,s3_get,s3_head,s3_list,s3_bytes,peak_rss_kib,status,round,daemon_cpu_s,daemon_minflt" ] ||
  fail "results.csv header: $(head -n 1 "$CSV")"
notok=$(awk -F, 'NR > 1 && $14 != "ok"' "$CSV")
[ -z "$notok" ] || fail "cases not ok: $notok"
# rows SYSTEM WORKLOAD CASE: how many rounds recorded it
rows() { awk -F, -v s="$1" -v w="$2" -v c="$3" 'NR > 1 && $1 == s && $2 == w && $3 == c' "$CSV" | wc -l; }
for c in "tierfs seq cold" "tierfs seq warm-remount" "objstore net get-8par-1M" "objstore net get-16par-1M" \
  "objstore net get-32par-1M"; do
  # shellcheck disable=SC2086
  [ "$(rows $c)" -eq 2 ] || fail "'$c': $(rows $c) rows, want one per round"
done
extra=
command -v fio >/dev/null 2>&1 && extra='tierfs dense cold-fio-4k-qd1|tierfs dense cold-index-walk'
case ",$W," in *,columnar,*) extra+="${extra:+|}tierfs columnar cold-2of4|tierfs columnar cold-hive|tierfs columnar warm-hive" ;; esac
IFS='|' read -r -a extra_cases <<<"$extra"
for c in "tierfs conc cold-8readers" "tierfs small cold-100x64k" "tierfs small warm-100x64k" \
  "tierfs write cold-cp" "s3cli net put-4par-8M" \
  "tierfs meta ls-l-cold-500" "tierfs meta ls-l-warm-500" "${extra_cases[@]}"; do
  # shellcheck disable=SC2086
  [ "$(rows $c)" -eq 1 ] || fail "'$c': $(rows $c) rows, want one (round 1 only)"
done
# Every row: a positive wall time and, where it moved bytes, a positive MB/s; for the cases
# timed by the script (seq, conc, small: no tool's own clock, unlike fio and the objstore
# benchmark) MB/s = bytes / wall time.
bad_rows=$(awk -F, 'NR > 1 && ($4 <= 0 || ($5 > 0 && !($6 > 0)) ||
  (($2 == "seq" || $2 == "conc" || $2 == "small") && $1 != "disk" && $5 > 0 &&
   ($6 / ($5 / $4 / 1e6) < 0.98 || $6 / ($5 / $4 / 1e6) > 1.02)))' "$CSV")
[ -z "$bad_rows" ] || fail "wall time or MB/s inconsistent: $bad_rows"
# S3 counters: cold reads pull each byte once (the proxy counts the HEAD's headers too,
# hence the slack), warm ones pull nothing.
s3check() { # s3check SYSTEM WORKLOAD CASE MIN_BYTES MAX_BYTES MAX_GETS
  awk -F, -v s="$1" -v w="$2" -v c="$3" -v lo="$4" -v hi="$5" -v g="$6" '
    NR > 1 && $1 == s && $2 == w && $3 == c && ($12 < lo || $12 > hi || $9 > g) {
      printf "%s %s %s round %s: %s S3 bytes, %s GETs\n", s, w, c, $15, $12, $9 }' "$CSV"
}
out=$(s3check tierfs seq cold $SEQ $((SEQ + SEQ / 50)) 64
  s3check tierfs seq warm-remount 0 4096 0
  s3check tierfs conc cold-8readers $CONC $((CONC + CONC / 50)) 64
  s3check tierfs small cold-100x64k $((100 * 65536)) $((100 * 65536 * 11 / 10)) 100
  s3check tierfs small warm-100x64k 0 4096 0
  s3check objstore net get-8par-1M $SEQ $((SEQ + SEQ / 50)) 64)
[ -z "$out" ] || fail "S3 counters: $out"
# peak RSS is recorded for the daemon's cases
awk -F, 'NR > 1 && $1 == "tierfs" && !($13 > 0)' "$CSV" | grep -q . && fail "tierfs rows without a peak RSS"
# and the daemon's CPU: a cold read costs it time; the objstore rows have no daemon
awk -F, 'NR > 1 && $1 == "tierfs" && $2 == "seq" && $3 == "cold" && !($16 > 0)' "$CSV" | grep -q . &&
  fail "tierfs cold seq rows without daemon CPU"
awk -F, 'NR > 1 && $1 == "objstore" && $16 != ""' "$CSV" | grep -q . && fail "objstore rows with a daemon CPU"
grep -q "| core-s per GiB |" "$OUT/results.md" || fail "results.md has no core-s per GiB column"
# and its minor page faults: a cold read of fresh blocks takes some; objstore rows none
awk -F, 'NR > 1 && $1 == "tierfs" && $2 == "seq" && $3 == "cold" && !($17 > 0)' "$CSV" | grep -q . &&
  fail "tierfs cold seq rows without minor faults"
awk -F, 'NR > 1 && $1 == "objstore" && $17 != ""' "$CSV" | grep -q . && fail "objstore rows with daemon faults"
grep -q "| minor faults per GiB |" "$OUT/results.md" || fail "results.md has no minor faults per GiB column"

# ---- results.md: what was run where, and the numbers of results.csv ----
grep -qF -- "- command: \`bash tools/bench_peers.sh --quick --repeat 2 --only tierfs" "$MD" || fail "results.md: no command line"
grep -q -- "^- machine: $(nproc) CPUs" "$MD" || fail "results.md: no machine line"
grep -q -- "^- date: .* tree " "$MD" || fail "results.md: no date and tree"
grep -q "^## Over 2 rounds" "$MD" || fail "results.md: no medians table"
# The median of two rounds is their mean; the table prints it with 3 decimals.
want=$(awk -F, 'NR > 1 && $1 == "tierfs" && $2 == "seq" && $3 == "cold" { s += $4; n++ }
  END { printf "%.3f", s / n }' "$CSV")
got=$(awk -F'|' '$2 ~ /^ tierfs $/ && $3 ~ /^ seq $/ && $4 ~ /^ cold $/ && $5 ~ /^ 2 $/ { gsub(/ /, "", $6); print $6 }' "$MD")
[ "$got" = "$want" ] || fail "results.md: median of tierfs seq cold '$got', results.csv gives $want"
# Per-round ratio to the ceiling at tierfs's own GETs in flight (16 at the default
# prefetch_window 128M / prefetch_max_request 8M): two values and their median, from the
# same rows; the 8-GET ratio beside it has no target.
ratio() { # ratio CASE: "R1x, R2x" of tierfs seq cold over the objstore CASE, per round
  awk -F, -v c="$1" 'NR > 1 && $2 == "seq" && $3 == "cold" && $1 == "tierfs" { t[$15] = $4 }
    NR > 1 && $1 == "objstore" && $3 == c { d[$15] = $4 }
    END { printf "%.2fx, %.2fx", t[1] / d[1], t[2] / d[2] }' "$CSV"
}
want=$(ratio get-16par-1M)
grep -qF "| tierfs cold seq / network ceiling at tierfs's 16 GETs in flight (<= 1.1x) | $want |" "$MD" ||
  fail "results.md: 16-GET ratio row is not '$want': $(grep 'network ceiling' "$MD")"
w8=$(ratio get-8par-1M)
grep -qF "| tierfs cold seq / 8-GET network ceiling | $w8 |" "$MD" ||
  fail "results.md: 8-GET ratio row is not '$w8': $(grep '8-GET network ceiling' "$MD")"
grep -q "s3fs cold seq / tierfs" "$MD" && fail "results.md: a ratio for s3fs, which did not run"
fs_log "tierfs seq cold: $(awk -F, 'NR > 1 && $1 == "tierfs" && $3 == "cold" && $2 == "seq" { printf "%s s ", $4 }' "$CSV")/ ceiling at 16 GETs: $want"

# ---- charts ----
if [ ${#CHARTS[@]} -eq 0 ]; then
  for c in throughput metadata; do
    [ "$(head -c 4 "$OUT/$c.png" | od -An -c | tr -d ' ')" = "211PNG" ] || fail "$c.png is not a PNG"
  done
  grep -q "^Charts: throughput.png" "$MD" || fail "results.md does not name the charts"
else
  [ ! -e "$OUT/throughput.png" ] || fail "--no-charts drew a chart"
  [ -s "$OUT/throughput.dat" ] || fail "--no-charts: no throughput.dat"
  grep -q "^Charts: not drawn" "$MD" || fail "results.md does not say the charts were not drawn"
fi
fs_log "ok: $(($(wc -l <"$CSV") - 1)) cases recorded"
