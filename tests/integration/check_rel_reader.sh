#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# check_rel_reader.sh: the byte checker the reliability tests rely on (test_rel_reader),
# checked on plain directories: a faithful copy passes with "wrong 0"; a copy whose every
# file has one flipped byte fails (exit 1), counts wrong reads, and names the reason of
# EVERY worker that saw one (a later worker's wrong bytes once hid behind the first
# worker's line).
# Usage: bash check_rel_reader.sh TESTBIN
set -uo pipefail
bin=${1:?usage: check_rel_reader.sh TESTBIN}/test_rel_reader
t=$(mktemp -d /tmp/check_rel_reader.XXXXXX) || exit 1
trap 'rm -rf "$t"' EXIT
fail() { echo "check_rel_reader: FAIL: $*" >&2; exit 1; }

mkdir -p "$t/ref" "$t/good" "$t/bad"
for i in 1 2 3; do
    head -c $((200000 + i * 777)) /dev/urandom >"$t/ref/f$i"
    cp "$t/ref/f$i" "$t/good/f$i"
    cp "$t/ref/f$i" "$t/bad/f$i"
    # flip every 4096th byte, so any read of more than a page sees one
    size=$(stat -c %s "$t/bad/f$i")
    for ((o = 100; o < size; o += 4096)); do
        old=$(od -An -tu1 -j $o -N1 "$t/bad/f$i" | tr -d ' ')
        printf "\\$(printf '%03o' $((old ^ 255)))" |
            dd of="$t/bad/f$i" bs=1 seek=$o conv=notrunc status=none
    done
done

"$bin" -p 4 -n 20 -s 1 -m 65536 "$t/good" "$t/ref" >"$t/good.out" 2>&1 ||
    { cat "$t/good.out" >&2; fail "a faithful copy failed"; }
grep -q ' wrong 0 ' "$t/good.out" || { cat "$t/good.out" >&2; fail "no 'wrong 0' for a faithful copy"; }

"$bin" -p 4 -n 20 -s 1 -m 65536 "$t/bad" "$t/ref" >"$t/bad.out" 2>&1
rc=$?
[ $rc -eq 1 ] || { cat "$t/bad.out" >&2; fail "a corrupt copy: exit $rc, want 1"; }
wrong=$(sed -n 's/.* wrong \([0-9][0-9]*\) short .*/\1/p' "$t/bad.out")
[ "${wrong:-0}" -ge 4 ] || { cat "$t/bad.out" >&2; fail "a corrupt copy: wrong ${wrong:-?}, want one per worker at least"; }
for p in 0 1 2 3; do
    grep -q "process $p: .*wrong bytes" "$t/bad.out" ||
        { cat "$t/bad.out" >&2; fail "worker $p's wrong bytes are not reported"; }
done
echo "check_rel_reader: ok (a faithful copy passes; every worker's wrong bytes reported, wrong $wrong)"
