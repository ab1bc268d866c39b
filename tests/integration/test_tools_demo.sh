#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# test_tools_demo.sh: the two demos of the README and docs/fleet.md run end to end on the
# test S3 server (DEMO_PREBUILT=1: this build's binaries; a 32 MiB big file):
# 1. tools/demo.sh: mounts the sample dataset, lists it, and reads the big file cold (one
#    S3 GET at least), warm (none) and after a remount (none: the disk cache survived);
#    `demo.sh stop` unmounts;
# 2. tools/demo.sh --fleet: three memcached servers, two mounts with their own disk
#    caches; the second mount reads the file with zero S3 GETs and says so; `stop`
#    unmounts both and stops the memcached servers.
# Each demo finds the test server through its DEMO_DIR/s3.env (a copy), which is removed
# before `stop` so the shared server keeps running; the proxy is left unshaped.
. "$(dirname "$0")/fs_lib.sh"
fs_init tools_demo

ROOT=$TIERFS_SOURCE_DIR
BUILD=$(dirname "$BIN")
fs_at_exit "curl -s -m 5 -XPOST -d '{}' '$S3_CONTROL/config' >/dev/null"

# ---- 1. the main demo ----
D1=$T/demo
mkdir -p "$D1"
cp "$TIERFS_S3_ENV" "$D1/s3.env"
fs_at_exit "rm -f '$D1/s3.env'; DEMO_DIR='$D1' bash '$ROOT/tools/demo.sh' stop >/dev/null 2>&1"
DEMO_DIR=$D1 DEMO_BIG=32M BUILD_DIR=$BUILD DEMO_PREBUILT=1 bash "$ROOT/tools/demo.sh" >"$T/demo.out" 2>&1 ||
  { cat "$T/demo.out" >&2; fail "tools/demo.sh failed"; }
grep -q "already running: $S3_ENDPOINT" "$T/demo.out" || fail "demo.sh did not use the test server"
fs_is_mounted "$D1/mnt" || fail "demo.sh left nothing mounted on $D1/mnt"
grep -qx "table" <(ls "$D1/mnt") || fail "the demo's mount has no table/ directory"
[ "$(stat -c %s "$D1/mnt/big/big.bin")" -eq $((32 * 1048576)) ] || fail "big.bin is not 32 MiB"
gets() { sed -n "s/^$1 .*(S3: GETs \([0-9]*\), LISTs [0-9]*)\$/\1/p" "$T/demo.out"; }
cold=$(gets "cold (from S3)") warm=$(gets "warm (kernel page cache)")
remount=$(gets "after remount (tierfs disk cache)")
fs_log "demo.sh: GETs cold $cold, warm $warm, after remount $remount"
[ -n "$cold" ] && [ "$cold" -ge 1 ] || fail "demo.sh's cold read: '$cold' GETs ($(grep cold "$T/demo.out"))"
[ "$warm" = 0 ] || fail "demo.sh's warm read made '$warm' GETs"
[ "$remount" = 0 ] || fail "demo.sh's read after remount made '$remount' GETs (the disk cache)"
rm -f "$D1/s3.env"
DEMO_DIR=$D1 bash "$ROOT/tools/demo.sh" stop >"$T/demo-stop.out" 2>&1 || fail "demo.sh stop failed"
fs_is_mounted "$D1/mnt" && fail "demo.sh stop left $D1/mnt mounted"
curl -sf -m 5 "$S3_CONTROL/health" >/dev/null || fail "demo.sh stop stopped the shared S3 server"

# ---- 2. the fleet demo ----
D2=$T/fleet
mkdir -p "$D2"
cp "$TIERFS_S3_ENV" "$D2/s3.env"
ports=()
for _ in 1 2 3; do ports+=("$(free_port)") || fail "no free port"; done
export DEMO_MC_PORTS="${ports[*]}"
fs_at_exit "rm -f '$D2/s3.env'; DEMO_DIR='$D2' DEMO_MC_PORTS='$DEMO_MC_PORTS' bash '$ROOT/tools/demo_fleet.sh' stop >/dev/null 2>&1"
DEMO_DIR=$D2 DEMO_BIG=32M BUILD_DIR=$BUILD DEMO_PREBUILT=1 bash "$ROOT/tools/demo.sh" --fleet \
  >"$T/fleet.out" 2>&1 || { cat "$T/fleet.out" >&2; fail "tools/demo.sh --fleet failed"; }
grep -q "already running: $S3_ENDPOINT" "$T/fleet.out" || fail "the fleet demo did not use the test server"
a=$(sed -n 's/^mount a: cold, from S3 .*S3 GETs: \([0-9]*\)$/\1/p' "$T/fleet.out")
b=$(sed -n 's/^mount b: from the fleet .*S3 GETs: \([0-9]*\)$/\1/p' "$T/fleet.out")
fs_log "demo.sh --fleet: GETs through mount a $a, through mount b $b; $(grep '^fleet tier' "$T/fleet.out")"
[ -n "$a" ] && [ "$a" -ge 1 ] || fail "the fleet demo's first read: '$a' GETs"
[ "$b" = 0 ] || fail "the fleet demo's second mount made '$b' GETs"
grep -qx "the second mount read the whole file with zero S3 GETs" "$T/fleet.out" ||
  fail "the fleet demo did not say the second read made zero S3 GETs"
grep -q "^fleet tier .* hits" "$T/fleet.out" || fail "the fleet demo printed no fleet line"
pids=$(cat "$D2"/memcached-*.pid)
rm -f "$D2/s3.env"
DEMO_DIR=$D2 bash "$ROOT/tools/demo_fleet.sh" stop >"$T/fleet-stop.out" 2>&1 || fail "demo_fleet.sh stop failed"
for m in "$D2/mnt-a" "$D2/mnt-b"; do fs_is_mounted "$m" && fail "demo_fleet.sh stop left $m mounted"; done
for p in $pids; do
  for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$p" 2>/dev/null && fail "demo_fleet.sh stop left memcached $p running"
done
curl -sf -m 5 "$S3_CONTROL/health" >/dev/null || fail "demo_fleet.sh stop stopped the shared S3 server"
fs_log "PASS"
