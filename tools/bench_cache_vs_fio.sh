#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench_cache_vs_fio.sh: disk-tier reads of cached 1 MiB blocks (tierfs-bench-cache --mode
# disk, memory tier tiny) against fio reading the same cache file with the same engine,
# queue depth and block size (O_DIRECT), and the ratio of the two.
#
# Engines: uring = fio io_uring, iodepth=D, 1 job; cache: 1 reader with D fetches in
# flight, io-depth D. psync = fio psync with D jobs (psync has no queue, so depth means
# threads); cache: psync engine with D threads, 1 reader with D fetches in flight.
# Each (engine, depth) runs fio and the cache alternately, -r times, and compares the best
# and the median of each (both see the same neighbours on a shared machine). The cache
# verifies the bytes of one read in 64 (regenerating a 1 MiB value costs about as much CPU
# as the read).
# The cache's MB/s count only reads served by the disk tier (1-2 % are memory hits).
# ms_cpu/b: median CPU milliseconds per 1 MiB block read, of fio's jobs and of the bench.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
bin=${BENCH_BIN:-$here/tierfs-bench-cache}
file=/tmp/tierfs-bench-vs-fio.cache
size_mib=2048
engines="uring psync"
depths="1 4 16"
secs=10
reps=1
mem=64M
keep=0

usage() {
    cat <<EOF
usage: $0 [-b BIN] [-f FILE] [-s SIZE_MIB] [-e "uring psync"] [-d "1 4 16"] [-t SECONDS]
          [-r REPS] [-m MEM] [-k]
  -b  tierfs-bench-cache binary [$bin]
  -f  cache file to create and read (its folder must allow O_DIRECT) [$file]
  -s  cache file size in MiB [$size_mib]
  -e  engines [$engines]
  -d  queue depths [$depths]
  -t  seconds per measurement [$secs]
  -r  repetitions (best and median reported) [$reps]
  -m  memory tier of the cache bench (tiny: hits come from the disk) [$mem]
  -k  keep the cache file (default: delete it at the end)
EOF
}

while getopts "b:f:s:e:d:t:r:m:kh" opt; do
    case $opt in
    b) bin=$OPTARG ;;
    f) file=$OPTARG ;;
    s) size_mib=$OPTARG ;;
    e) engines=$OPTARG ;;
    d) depths=$OPTARG ;;
    t) secs=$OPTARG ;;
    r) reps=$OPTARG ;;
    m) mem=$OPTARG ;;
    k) keep=1 ;;
    h) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
    esac
done
for n in "$size_mib" "$secs" "$reps"; do
    [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "$0: not a positive integer: '$n'" >&2; exit 2; }
done
[[ -x $bin ]] || { echo "$0: no tierfs-bench-cache at '$bin' (use -b)" >&2; exit 2; }
if ! command -v fio >/dev/null; then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        apt-get install -y fio >/dev/null
    else
        echo "$0: fio is not installed (apt-get install -y fio)" >&2
        exit 2
    fi
fi
command -v jq >/dev/null || { echo "$0: jq is needed to read fio's JSON" >&2; exit 2; }

cleanup() { [[ $keep == 1 ]] || rm -f "$file"; }
trap cleanup EXIT

# Write every byte of the file first, so fio never reads an unwritten (fallocated) extent,
# which ext4 answers with zeros and no IO, then let the cache format it and fill it.
# csv_field NAME: the value of column NAME in a two-line CSV on stdin
csv_field() { awk -F, -v k="$1" 'NR==1{for(i=1;i<=NF;i++) if($i==k) c=i} NR==2{print $c}'; }

# prepare KEYS: a fully written file holding keys 0..KEYS-1; prints the entries it holds
prepare() {
    rm -f "$file"
    dd if=/dev/zero of="$file" bs=1M count="$size_mib" oflag=direct status=none
    "$bin" --mode disk --disk-path "$file" --disk "${size_mib}M" --keys "$1" --value-size 1M \
        --fill --duration 0 --mem 256M --engine uring --csv 2>/dev/null | csv_field disk_entries
}
# The disk tier keeps a few regions free and loses a little to headers: fill once to learn
# how many blocks fit, then again with exactly that many, so every read key is on disk.
keys=$(prepare "$size_mib")
echo "# $file: ${size_mib} MiB holds $keys cached 1 MiB blocks"
got=$(prepare "$keys")
[[ $got == "$keys" ]] || echo "# warning: refill holds $got of $keys keys" >&2

common=(--mode disk --disk-path "$file" --disk "${size_mib}M" --keys "$keys" --dist uniform
        --value-size 1M --mem "$mem" --readers 1 --duration "$secs" --verify-every 64 --csv)

# max / median of the arguments (numbers)
max() { printf '%s\n' "$@" | sort -g | tail -1; }
median() {
    printf '%s\n' "$@" | sort -g |
        awk '{a[NR] = $1} END {if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2}'
}
div() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", (b > 0) ? a / b : 0}'; }

fmt="%-6s %5s %9s %9s %9s %9s %6s %6s %7s %8s %8s %8s\n"
printf "$fmt" "" "" fio cache fio cache ratio ratio cache cache fio cache
printf "$fmt" engine depth best_MB/s best_MB/s med_MB/s med_MB/s best med mem_hit disk_hit ms_cpu/b ms_cpu/b
for eng in $engines; do
    case $eng in
    uring) fio_eng=(--ioengine=io_uring) ;;
    psync) fio_eng=(--ioengine=psync) ;;
    *) echo "$0: unknown engine '$eng'" >&2; exit 2 ;;
    esac
    for d in $depths; do
        if [[ $eng == uring ]]; then
            fio_q=(--iodepth="$d" --numjobs=1)
        else
            fio_q=(--iodepth=1 --numjobs="$d")
        fi
        f_mb=() c_mb=() f_cpu=() c_cpu=() c_mhit=() c_dhit=()
        for ((r = 0; r < reps; r++)); do
            # bandwidth, and CPU milliseconds per block: with group_reporting the CPU
            # percentages are of the summed job runtime (ms)
            read -r bw fc < <(fio --name=vs-cache --filename="$file" --readonly --rw=randread \
                    --bs=1M --direct=1 "${fio_eng[@]}" "${fio_q[@]}" --group_reporting \
                    --runtime="$secs" --time_based --size="${size_mib}M" --output-format=json |
                jq -r '.jobs[0] | "\(.read.bw_bytes) \((.usr_cpu + .sys_cpu) / 100 * .job_runtime / .read.total_ios)"')
            f_mb+=("$(awk -v b="$bw" 'BEGIN{printf "%.1f", b / 1e6}')")
            f_cpu+=("$fc")
            out=$("$bin" "${common[@]}" --engine "$eng" --io-depth "$d" --inflight "$d")
            [[ $(csv_field mismatches <<<"$out") == 0 ]] || {
                echo "$0: the cache returned wrong bytes" >&2; exit 1; }
            c_mb+=("$(csv_field disk_hit_mb_s <<<"$out")")   # memory hits not counted
            c_mhit+=("$(csv_field hit_mem <<<"$out")")
            c_dhit+=("$(csv_field hit_disk <<<"$out")")
            c_cpu+=("$(awk -v c="$(csv_field cpu_s <<<"$out")" -v n="$(csv_field reads <<<"$out")" \
                'BEGIN{printf "%.3f", (n > 0) ? c * 1000 / n : 0}')")
        done
        fb=$(max "${f_mb[@]}") cb=$(max "${c_mb[@]}")
        fm=$(median "${f_mb[@]}") cm=$(median "${c_mb[@]}")
        printf "$fmt" "$eng" "$d" "$fb" "$cb" "$fm" "$cm" "$(div "$cb" "$fb")" "$(div "$cm" "$fm")" \
            "$(median "${c_mhit[@]}")" "$(median "${c_dhit[@]}")" \
            "$(awk -v x="$(median "${f_cpu[@]}")" 'BEGIN{printf "%.3f", x}')" \
            "$(awk -v x="$(median "${c_cpu[@]}")" 'BEGIN{printf "%.3f", x}')"
    done
done
