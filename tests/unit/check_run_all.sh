#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# check_run_all.sh: run-all.sh's judgement of a ctest run (--check-log), on made-up ctest
# output: all passed -> ok; a skipped test -> counted, ok when not strict, a failure when
# strict (unless on tests/skip-allow.txt); a failed test -> a failure either way.
# Usage: bash tests/unit/check_run_all.sh
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
t=$(mktemp -d /tmp/check_run_all.XXXXXX) || exit 1
trap 'rm -rf "$t"' EXIT
bad=0
fail() { echo "check_run_all: FAIL: $*" >&2; bad=1; }
judge() { CI= bash "$root/tests/run-all.sh" "$@" >"$t/out" 2>&1; }

cat >"$t/ok.log" <<'LOG'
    Start 1: test_a
1/3 Test #1: test_a ...........................   Passed    0.01 sec
    Start 2: test_b
2/3 Test #2: test_b ...........................   Passed    1.20 sec
    Start 3: test_c
3/3 Test #3: test_c ...........................   Passed    0.30 sec

100% tests passed, 0 tests failed out of 3
LOG
sed 's/^2\/3 Test #2: test_b .*$/2\/3 Test #2: test_b ...........................***Skipped   0.01 sec/' \
    "$t/ok.log" >"$t/skip.log"
sed 's/^3\/3 Test #3: test_c .*$/3\/3 Test #3: test_c ...........................***Failed    0.30 sec/' \
    "$t/ok.log" >"$t/failed.log"

judge --strict --check-log "$t/ok.log" || fail "all passed, strict: $(cat "$t/out")"
grep -q 'stage check: 3 run, 3 passed, 0 failed, 0 skipped' "$t/out" || fail "counts: $(cat "$t/out")"
judge --check-log "$t/skip.log" || fail "a skip, not strict: $(cat "$t/out")"
grep -q 'stage check: 3 run, 2 passed, 0 failed, 1 skipped' "$t/out" || fail "skip counts: $(cat "$t/out")"
judge --strict --check-log "$t/skip.log" && fail "a skip, strict: passed"
grep -q 'test_b skipped, and it is not on tests/skip-allow.txt' "$t/out" || fail "no line naming the skip: $(cat "$t/out")"
CI=true bash "$root/tests/run-all.sh" --check-log "$t/skip.log" >"$t/out" 2>&1 &&
    fail "a skip with CI=true: passed"
judge --check-log "$t/failed.log" && fail "a failed test: passed"
grep -q 'stage check: 3 run, 2 passed, 1 failed, 0 skipped' "$t/out" || fail "failed counts: $(cat "$t/out")"
# the allow-list: a copy of the tree's run-all.sh next to a list that allows test_b
mkdir -p "$t/tree/tests"
cp "$root/tests/run-all.sh" "$t/tree/tests/"
printf '# reason beside the name\ntest_b   needs a GPU this CI machine has not\n' >"$t/tree/tests/skip-allow.txt"
bash "$t/tree/tests/run-all.sh" --strict --check-log "$t/skip.log" >"$t/out" 2>&1 ||
    fail "an allowed skip, strict: $(cat "$t/out")"
grep -q 'test_b skipped (allowed: needs a GPU' "$t/out" || fail "allowed skip not named: $(cat "$t/out")"
[ $bad -eq 0 ] && echo "check_run_all: ok"
exit $bad
