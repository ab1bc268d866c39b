#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# run-all.sh: install what is missing, build, and run every test tierfs has:
#   1. the normal build: cmocka unit tests + integration tests against a local radosgw
#      (started and stopped by the ctest fixture) through the shaping proxy;
#   2. the unit and integration tests again under ASan+UBSan (not valgrind, not long);
#   3. the concurrency tests (label tsan) under ThreadSanitizer;
#   4. static analysis of our code (tools/check_static.sh: cppcheck);
#   5. each libFuzzer harness for a short bounded time (tests/fuzz/run.sh, clang).
# The long reliability variants (label long: 2-minute load, 20 crashes, 30 s per S3
# fault, ~12 minutes) run only with --long.
# Usage: bash tests/run-all.sh [-j N] [--long]     (BUILD_ROOT=dir to choose where builds go)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
jobs=$(nproc 2>/dev/null || echo 2)
long=0
while [ $# -gt 0 ]; do
    case $1 in
        -j) jobs=${2:?-j needs a number}; shift 2 ;;
        --long) long=1; shift ;;
        *) echo "usage: bash tests/run-all.sh [-j N] [--long]" >&2; exit 2 ;;
    esac
done
build_root=${BUILD_ROOT:-$here/build-tests}

log() { printf '\n=== %s ===\n' "$*"; }

log "setup (installs only what is missing)"
bash "$here/tools/setup.sh"

# Warnings are errors in CI; locally too, so nothing surprises CI.
common=(-DTIERFS_WERROR=ON)
fail=0

run_build() { # name, ctest args..., -- cmake args...
    local name=$1; shift
    local ctest_args=()
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do ctest_args+=("$1"); shift; done
    shift || true
    local dir=$build_root/$name
    log "build: $name"
    cmake -S "$here" -B "$dir" "${common[@]}" "$@" >"$dir.cmake.log" 2>&1 ||
        { cat "$dir.cmake.log"; return 1; }
    if ! cmake --build "$dir" -j "$jobs" >"$dir.build.log" 2>&1; then
        grep -E 'error|warning|Error' "$dir.build.log" | head -n 60 || tail -n 60 "$dir.build.log"
        return 1
    fi
    log "tests: $name"
    (cd "$dir" && ctest --output-on-failure -j 1 "${ctest_args[@]}")
}

mkdir -p "$build_root"
t0=$SECONDS
run_build main -LE long -- -DCMAKE_BUILD_TYPE=RelWithDebInfo || fail=1
if [ $long -eq 1 ]; then
    log "tests: main, label long"
    (cd "$build_root/main" && ctest --output-on-failure -j 1 -L long) || fail=1
fi
log "main: $((SECONDS - t0)) s"
# Sanitizer runs: unit and integration tests (ASan+UBSan), concurrency tests (TSan).
t0=$SECONDS
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    run_build asan -L 'unit|integration' -LE 'long|valgrind' -- -DCMAKE_BUILD_TYPE=Debug -DTIERFS_ASAN=ON -DTIERFS_INTEGRATION=ON || fail=1
log "asan: $((SECONDS - t0)) s"
t0=$SECONDS
TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
    run_build tsan -L tsan -- -DCMAKE_BUILD_TYPE=Debug -DTIERFS_TSAN=ON -DTIERFS_INTEGRATION=OFF || fail=1
log "tsan: $((SECONDS - t0)) s"
log "static analysis"
bash "$here/tools/check_static.sh" || fail=1
# Fuzzing: 10 s per harness here (about a minute with the clang build); longer runs by
# hand with `bash tests/fuzz/run.sh SECONDS`.
log "fuzzing"
FUZZ_BUILD_DIR=$build_root/fuzz bash "$here/tests/fuzz/run.sh" "${FUZZ_SECONDS:-10}" || fail=1

if [ $fail -ne 0 ]; then
    log "FAILED"
    exit 1
fi
log "all test runs passed"
