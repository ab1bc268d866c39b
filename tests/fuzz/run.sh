#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# run.sh: build the libFuzzer harnesses (clang, ASan+UBSan) and run each one for SECONDS
# (default 30) from a temporary copy of its seed corpus (the committed corpus never grows).
# Exits non-zero when any harness finds a crash, leak, timeout or failed invariant; the
# reproducer is kept in the output directory. Exits 0 with a SKIP line when clang with
# libFuzzer is not available and cannot be installed (1 with a FAILED line under
# TIERFS_STRICT=1: CI and tests/run-all.sh --strict).
#
# Usage: bash tests/fuzz/run.sh [SECONDS]
#   FUZZ_BUILD_DIR  build directory      (default: $BUILD_ROOT/fuzz, BUILD_ROOT=<repo>/build-tests)
#   FUZZ_OUT        logs and reproducers (default: $FUZZ_BUILD_DIR/fuzz-out)
#   FUZZ_ONLY       space-separated harness names to run (default: all)
#   FUZZ_JOBS       parallel build jobs  (default: nproc)
set -euo pipefail

secs=${1:-30}
case "$secs" in ''|*[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;; esac
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${FUZZ_BUILD_DIR:-${BUILD_ROOT:-$repo/build-tests}/fuzz}
out=${FUZZ_OUT:-$build/fuzz-out}
jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 2)}
harnesses=(fuzz_xml_list fuzz_xml_error fuzz_creds fuzz_sigv4 fuzz_uri fuzz_opts fuzz_disk_recovery)
if [ -n "${FUZZ_ONLY:-}" ]; then read -r -a harnesses <<<"$FUZZ_ONLY"; fi

log() { printf '=== fuzz: %s\n' "$*"; }
# Strict runs (TIERFS_STRICT=1: CI, run-all.sh --strict) fail where others skip.
skip() {
    if [ "${TIERFS_STRICT:-0}" = 1 ]; then
        echo "FAILED: tests/fuzz: $*"
        exit 1
    fi
    echo "SKIP: tests/fuzz: $*"
    exit 0
}

work=$(mktemp -d "${TMPDIR:-/tmp}/tierfs-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo "$@"
    else return 1
    fi
}
apt_updated=0
apt_install() {
    command -v apt-get >/dev/null 2>&1 || return 1
    if [ $apt_updated = 0 ]; then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null || return 1
        apt_updated=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# clang that links -fsanitize=fuzzer (libFuzzer ships in libclang-rt-<major>-dev on Debian).
fuzzer_links() {
    command -v clang >/dev/null 2>&1 || return 1
    printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n);\nint LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' >"$work/probe.c"
    clang -fsanitize=fuzzer,address,undefined "$work/probe.c" -o "$work/probe" >/dev/null 2>&1
}
if ! fuzzer_links; then
    log "installing clang and libFuzzer"
    command -v clang >/dev/null 2>&1 || apt_install clang || skip "clang is missing and cannot be installed"
    major=$(clang -dumpversion 2>/dev/null | cut -d. -f1)
    fuzzer_links || apt_install "libclang-rt-${major:-14}-dev" || apt_install libclang-rt-dev || true
    fuzzer_links || skip "clang cannot link -fsanitize=fuzzer (install libclang-rt-${major:-14}-dev)"
fi
command -v cmake >/dev/null 2>&1 || apt_install cmake make pkg-config || skip "cmake is missing and cannot be installed"

# Configure; the top-level CMakeLists names the Debian package of each missing library.
configure() {
    CC=clang cmake -S "$repo" -B "$build" -DTIERFS_FUZZ=ON -DTIERFS_INTEGRATION=OFF \
        -DTIERFS_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$work/cmake.log" 2>&1
}
mkdir -p "$build" "$out"
tries=0
until configure; do
    pkg=$(grep -o "install the Debian package '[^']*'" "$work/cmake.log" | head -n1 | cut -d"'" -f2)
    tries=$((tries + 1))
    if [ -z "$pkg" ] || [ $tries -gt 10 ] || ! apt_install "$pkg"; then
        cat "$work/cmake.log" >&2
        echo "tests/fuzz: configure failed" >&2
        exit 1
    fi
done
log "building in $build"
if ! cmake --build "$build" --target fuzz -j "$jobs" >"$work/build.log" 2>&1; then
    grep -E 'error|Error' "$work/build.log" | head -n 40 || tail -n 40 "$work/build.log"
    exit 1
fi

bin=$build/fuzz
fail=0
# run_one HARNESS: seed its corpus, fuzz it for $secs, print PASS or FAIL lines.
# @return 0 or 1.
run_one() {
    local h=$1 seeds corpus rc runs
    case $h in
        fuzz_xml_list) seeds=xml_list ;; fuzz_xml_error) seeds=xml_error ;; fuzz_creds) seeds=creds ;;
        fuzz_sigv4) seeds=sigv4 ;; fuzz_uri) seeds=uri ;; fuzz_opts) seeds=opts ;;
        fuzz_disk_recovery) seeds=disk ;;
        *) echo "tests/fuzz: unknown harness '$h'"; return 1 ;;
    esac
    corpus=$work/corpus-$h
    mkdir -p "$corpus"
    cp "$repo/tests/fuzz/corpus/$seeds/"* "$corpus/"
    if [ "$h" = fuzz_disk_recovery ]; then
        # Fresh seeds from the disk tier as it is now (the format may have moved on).
        "$bin/fuzz_mkdevice" "$corpus" >"$out/fuzz_mkdevice.log" 2>&1 ||
            { cat "$out/fuzz_mkdevice.log"; echo "FAIL fuzz_mkdevice"; return 1; }
    fi
    rm -f "$out/$h"-crash-* "$out/$h"-leak-* "$out/$h"-timeout-* "$out/$h"-oom-*
    rc=0
    mkdir -p "$work/tmp-$h" # its own: two harnesses run at once
    (cd "$work/tmp-$h" && TMPDIR=$work/tmp-$h "$bin/$h" -max_total_time="$secs" -timeout=30 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$out/$h-" "$corpus" >"$out/$h.log" 2>&1) || rc=$?
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$out/$h.log" | grep -o '[0-9]*$' || true)
    if [ $rc -ne 0 ]; then
        echo "FAIL $h (exit $rc); log $out/$h.log"
        grep -E 'ERROR|SUMMARY|fuzz invariant|Test unit written' "$out/$h.log" | head -n 20 || true
        return 1
    fi
    echo "PASS $h (${secs}s, ${runs:-?} runs)"
}
# One harness per core at a time: each still gets $secs of a whole core (a CI machine's
# other work is over by now), the stage takes half the time on two cores.
lanes=$(nproc 2>/dev/null || echo 1)
[ "$lanes" -gt 4 ] && lanes=4
pids=() names=()
reap() { # wait for the oldest harness running, print its lines
    wait "${pids[0]}" || fail=1
    cat "$out/${names[0]}.result"
    pids=("${pids[@]:1}") names=("${names[@]:1}")
}
for h in "${harnesses[@]}"; do
    run_one "$h" >"$out/$h.result" 2>&1 &
    pids+=($!) names+=("$h")
    [ ${#pids[@]} -ge "$lanes" ] && reap
done
while [ ${#pids[@]} -gt 0 ]; do reap; done
if [ $fail -ne 0 ]; then
    log "FAILED (reproducers in $out; replay one with: $bin/<harness> <file>)"
    exit 1
fi
log "all harnesses passed"
