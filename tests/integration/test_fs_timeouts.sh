#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# test_fs_timeouts.sh: the S3 timeout options. read_timeout: a body that stalls (proxy
# fault) fails the read with EIO after about (retries + 1) x read_timeout, not the
# default's 10 s and more a try, and reads work again once the fault is cleared, without a
# remount. connect_timeout: an endpoint that never answers a SYN fails the mount after
# about connect_timeout, and a longer value waits longer.
#
# The silent endpoint is a loopback listener whose accept queue is full (backlog 0, filled
# by connections it never accepts): Linux then drops new SYNs, so the client retransmits
# and waits, as for a blackholed address, with no network and no root. A non-routable
# address would not do: without a route it fails at once (ENETUNREACH), with one it
# depends on the network.
. "$(dirname "$0")/fs_lib.sh"
fs_init fs_timeouts

mkfile "$T/src/a.bin" 1000000
seed "$T/src" "$P"
M=$T/mnt
now_ms() { date +%s%3N; }

# 1. read_timeout=1s, retries=1: two attempts, each stalls mid-body (the second is the
# resume of the first), each cut 1 s after its last byte.
fs_mount "$M" "$S3_BUCKET:/$P" "block_size=64K,prefetch=no,read_timeout=1s,retries=1"
[ "$(stat -c %s "$M/a.bin")" -eq 1000000 ] || fail "stat"  # metadata first: only GETs stall
counters_reset
proxy '{"fault":{"kind":"stall","stall_ms":30000,"match":"GET"}}'
t0=$(now_ms)
if dd if="$M/a.bin" of=/dev/null bs=64K count=1 iflag=direct status=none 2>"$T/err"; then
  fail "read succeeded while every GET stalls"
fi
el=$(($(now_ms) - t0))
grep -q "Input/output error" "$T/err" || fail "expected EIO, got: $(cat "$T/err")"
faults=$(counter faults)
fs_log "stalled read: EIO after $el ms, $faults GETs stalled"
[ "$faults" -eq 2 ] || fail "$faults stalled GETs, want 2 (retries=1)"
# 2 x 1 s, plus the backoff (<= 100 ms) and the stall check's granularity (250 ms a try)
[ "$el" -ge 1900 ] && [ "$el" -le 4500 ] || fail "EIO after $el ms, want about 2 s"
grep -q "no data for 1000 ms" "$T/tierfs.log" || fail "no stall timeout logged"
proxy '{"fault":null}'
cmp "$T/src/a.bin" "$M/a.bin" || fail "read after the stall was cleared"
kill -0 "$FS_PID" || fail "tierfs died"
fs_umount "$M"

# 2. connect_timeout against a listener that never answers SYNs.
python3 - >"$T/silent.port" 2>"$T/silent.err" <<'PY' &
import socket, sys, time
ls = socket.socket()
ls.bind(("127.0.0.1", 0))
ls.listen(0)
port = ls.getsockname()[1]
held = []
for _ in range(4):  # the handshake completes in the kernel until the queue is full
    c = socket.socket()
    c.setblocking(False)
    c.connect_ex(("127.0.0.1", port))
    held.append(c)
time.sleep(0.3)
probe = socket.socket()
probe.settimeout(0.5)
try:
    probe.connect(("127.0.0.1", port))
    print("listener answered a SYN with a full queue", file=sys.stderr)
    sys.exit(1)
except socket.timeout:
    pass
probe.close()
print(port, flush=True)
time.sleep(600)
PY
SILENT_PID=$!
FS_PIDS+=("$SILENT_PID")
for _ in $(seq 1 100); do
  [ -s "$T/silent.port" ] && break
  kill -0 "$SILENT_PID" 2>/dev/null || fail "silent listener: $(cat "$T/silent.err")"
  sleep 0.05
done
SPORT=$(cat "$T/silent.port")
[ -n "$SPORT" ] || fail "silent listener did not start"
SOPTS="endpoint=http://127.0.0.1:$SPORT,path_style,region=$S3_REGION,access_key=$S3_ACCESS_KEY,secret_key=$S3_SECRET_KEY,retries=0"

# try_mount CONNECT_TIMEOUT: the mount must fail (its LIST cannot connect); EL = ms taken
try_mount() {
  local t0 out
  mkdir -p "$M"
  t0=$(now_ms)
  out=$(timeout -k 5 30 "$BIN/tierfs" "$S3_BUCKET:/$P" "$M" -f -o "$SOPTS,connect_timeout=$1" 2>&1) &&
    fail "mount through a silent endpoint succeeded"
  EL=$(($(now_ms) - t0))
  fs_is_mounted "$M" && fail "connect_timeout=$1: left a mount behind"
  grep -q "cannot reach the endpoint" <<<"$out" || fail "connect_timeout=$1: '$out'"
  fs_log "connect_timeout=$1: mount failed after $EL ms: $out"
}
try_mount 300ms
[ "$EL" -ge 250 ] && [ "$EL" -le 2000 ] || fail "connect_timeout=300ms: failed after $EL ms"
try_mount 2s
[ "$EL" -ge 1900 ] && [ "$EL" -le 4000 ] || fail "connect_timeout=2s: failed after $EL ms"
# ours to end: reap it here so the cleanup does not count its SIGTERM as a daemon failure
kill "$SILENT_PID"
wait "$SILENT_PID" 2>/dev/null
fs_forget_pid "$SILENT_PID"
fs_log "PASS"
