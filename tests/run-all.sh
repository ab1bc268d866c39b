#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# run-all.sh: install what is missing, build, and run every test tierfs has:
#   1. the normal build: cmocka unit tests + integration tests against a local radosgw
#      (started and stopped by the ctest fixture) through the shaping proxy;
#   2. the unit and integration tests again under ASan+UBSan (not valgrind, not long);
#   3. the concurrency tests (label tsan: unit tests and the mount tests that drive
#      concurrency, against a TSan build of the daemon) under ThreadSanitizer;
#   4. static analysis of our code (tools/check_static.sh: cppcheck);
#   5. each libFuzzer harness for a short bounded time (tests/fuzz/run.sh, clang).
# The long reliability variants (label long: 2-minute load, 20 crashes, 30 s per S3
# fault, ~12 minutes) run only with --long.
#
# Strict mode (--strict, and always with CI=true): a test that does not run is a failure.
# A ctest test that skips (exit 77) fails the run unless it is on tests/skip-allow.txt
# with its reason; unit tests fail instead of skipping a case (TIERFS_STRICT=1, see
# tests/unit/t_strict.h); a missing tool (cppcheck, clang/libFuzzer, valgrind), no
# /dev/fuse or no io_uring fails the run with one line saying so. Every stage prints how
# many tests ran, passed, failed and skipped; the last line sums them.
# Usage: bash tests/run-all.sh [-j N] [--long] [--strict]   (BUILD_ROOT=dir: where builds go)
#        bash tests/run-all.sh [--strict] --check-log LOG   (only judge a ctest output LOG:
#        the counts and the skip rule above, exit 1 when it fails; tests/unit/check_run_all.sh)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
jobs=$(nproc 2>/dev/null || echo 2)
long=0
strict=0
check_log=
[ "${CI:-}" = true ] && strict=1
while [ $# -gt 0 ]; do
    case $1 in
        -j) jobs=${2:?-j needs a number}; shift 2 ;;
        --long) long=1; shift ;;
        --strict) strict=1; shift ;;
        --check-log) check_log=${2:?--check-log needs a ctest output file}; shift 2 ;;
        *) echo "usage: bash tests/run-all.sh [-j N] [--long] [--strict] [--check-log LOG]" >&2; exit 2 ;;
    esac
done
build_root=${BUILD_ROOT:-$here/build-tests}
allow_file=$here/tests/skip-allow.txt
if [ $strict -eq 1 ]; then
    export TIERFS_STRICT=1
else
    export TIERFS_STRICT=0
fi

log() { printf '\n=== %s ===\n' "$*"; }

# Warnings are errors in CI; locally too, so nothing surprises CI.
common=(-DTIERFS_WERROR=ON)
fail=0
tot_run=0 tot_pass=0 tot_fail=0 tot_skip=0
failures=()

# preflight: what the suite needs from the machine, said once and clearly
preflight() {
    local missing=()
    [ -c /dev/fuse ] || missing+=("/dev/fuse (the mount tests need FUSE)")
    for t in valgrind cppcheck clang clang-format; do
        command -v "$t" >/dev/null 2>&1 || missing+=("$t")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        printf 'run-all: missing: %s\n' "${missing[@]}"
        if [ $strict -eq 1 ]; then
            failures+=("preflight: missing ${missing[*]}")
            return 1
        fi
        echo "run-all: (not strict: the tests that need them will skip)"
    fi
    return 0
}

# allowed NAME: NAME is on the skip allow-list (first word of a line; # comments)
allowed() {
    [ -f "$allow_file" ] && grep -vE '^[[:space:]]*(#|$)' "$allow_file" | awk '{print $1}' |
        grep -qxF -- "$1"
}

# stage_report NAME LOG: count ctest's results in LOG; skips not allowed fail a strict run
stage_report() {
    local name=$1 out=$2 run pass failn skipn skipped=() bad=0 t
    run=$(grep -cE '^ *[0-9]+/[0-9]+ Test +#[0-9]+: ' "$out" || true)
    pass=$(grep -cE '^ *[0-9]+/[0-9]+ Test +#[0-9]+: .* Passed +[0-9.]+ sec' "$out" || true)
    while read -r t; do
        [ -n "$t" ] && skipped+=("$t")
    done < <(grep -E '^ *[0-9]+/[0-9]+ Test +#[0-9]+: .*(\*\*\*Skipped|Not Run)' "$out" |
             sed -E 's/^ *[0-9]+\/[0-9]+ Test +#[0-9]+: ([^ ]+) .*/\1/')
    skipn=${#skipped[@]}
    failn=$((run - pass - skipn))
    printf 'stage %s: %d run, %d passed, %d failed, %d skipped\n' "$name" "$run" "$pass" "$failn" \
        "$skipn"
    for t in "${skipped[@]}"; do
        if allowed "$t"; then
            echo "stage $name: $t skipped (allowed: $(grep -E "^$t[[:space:]]" "$allow_file" |
                sed -E 's/^[^[:space:]]+[[:space:]]+//'))"
        else
            echo "stage $name: $t skipped, and it is not on tests/skip-allow.txt"
            if [ $strict -eq 1 ]; then
                failures+=("$name: $t skipped")
                bad=1
            fi
        fi
    done
    [ "$run" -gt 0 ] || { failures+=("$name: no test ran"); bad=1; }
    [ $failn -eq 0 ] || failures+=("$name: $failn failed")
    tot_run=$((tot_run + run)) tot_pass=$((tot_pass + pass)) tot_fail=$((tot_fail + failn))
    tot_skip=$((tot_skip + skipn))
    return $bad
}

run_build() { # name, ctest args..., -- cmake args...
    local name=$1; shift
    local ctest_args=()
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do ctest_args+=("$1"); shift; done
    shift || true
    local dir=$build_root/$name rc=0
    log "build: $name"
    cmake -S "$here" -B "$dir" "${common[@]}" "$@" >"$dir.cmake.log" 2>&1 ||
        { cat "$dir.cmake.log"; failures+=("$name: cmake failed"); return 1; }
    if ! cmake --build "$dir" -j "$jobs" >"$dir.build.log" 2>&1; then
        grep -E 'error|warning|Error' "$dir.build.log" | head -n 60 || tail -n 60 "$dir.build.log"
        failures+=("$name: build failed")
        return 1
    fi
    log "tests: $name"
    (cd "$dir" && ctest --output-on-failure -j 1 "${ctest_args[@]}") 2>&1 |
        tee "$dir.ctest.log" || rc=1
    stage_report "$name" "$dir.ctest.log" || rc=1
    return $rc
}

# tool_stage NAME COMMAND...: a stage that is one command (static analysis, fuzzing)
tool_stage() {
    local name=$1; shift
    if "$@"; then
        echo "stage $name: passed"
    else
        echo "stage $name: FAILED"
        failures+=("$name")
        return 1
    fi
}

if [ -n "$check_log" ]; then
    stage_report check "$check_log" || { printf 'run-all: %s\n' "${failures[@]}"; exit 1; }
    [ ${#failures[@]} -eq 0 ] || { printf 'run-all: %s\n' "${failures[@]}"; exit 1; }
    exit 0
fi

log "setup (installs only what is missing)"
bash "$here/tools/setup.sh"
mkdir -p "$build_root"
preflight || fail=1
t0=$SECONDS
run_build main -LE long -- -DCMAKE_BUILD_TYPE=RelWithDebInfo || fail=1
if [ $long -eq 1 ]; then
    log "tests: main, label long"
    (cd "$build_root/main" && ctest --output-on-failure -j 1 -L long) 2>&1 |
        tee "$build_root/main-long.ctest.log" || fail=1
    stage_report main-long "$build_root/main-long.ctest.log" || fail=1
fi
log "main: $((SECONDS - t0)) s"
# Sanitizer runs: unit and integration tests (ASan+UBSan), concurrency tests (TSan). The
# benchmark harness's test (label tools) runs in the main stage only: it checks the
# script, and the daemon paths it drives are the integration tests' under ASan too.
t0=$SECONDS
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    run_build asan -L 'unit|integration' -LE 'long|valgrind|tools' -- -DCMAKE_BUILD_TYPE=Debug -DTIERFS_ASAN=ON -DTIERFS_INTEGRATION=ON || fail=1
log "asan: $((SECONDS - t0)) s"
t0=$SECONDS
TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
    run_build tsan -L tsan -- -DCMAKE_BUILD_TYPE=Debug -DTIERFS_TSAN=ON -DTIERFS_INTEGRATION=ON || fail=1
log "tsan: $((SECONDS - t0)) s"
log "static analysis"
tool_stage static bash "$here/tools/check_static.sh" || fail=1
# Fuzzing: 10 s per harness here, one per core at a time; longer runs by hand with
# `bash tests/fuzz/run.sh SECONDS`.
log "fuzzing"
tool_stage fuzz env FUZZ_BUILD_DIR="$build_root/fuzz" bash "$here/tests/fuzz/run.sh" \
    "${FUZZ_SECONDS:-10}" || fail=1

summary="$tot_run run, $tot_pass passed, $tot_fail failed, $tot_skip skipped$([ $strict -eq 1 ] && echo ' (strict)')"
if [ $fail -ne 0 ]; then
    log "FAILED"
    printf 'run-all: %s\n' "${failures[@]}"
    echo "run-all: FAILED: $summary"
    exit 1
fi
log "all test runs passed"
echo "run-all: all test runs passed: $summary"
