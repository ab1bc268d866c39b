#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# test_fs_timeouts.sh: the S3 timeout options. read_timeout: a body that stalls (proxy
# fault) fails the read with EIO after about (retries + 1) x read_timeout, not the
# default's 10 s and more a try, and reads work again once the fault is cleared, without a
# remount. request_timeout: a body that trickles just fast enough for read_timeout's
# checks fails after about (retries + 1) x request_timeout; a slow steady one does not.
# connect_timeout: an endpoint that never answers a SYN fails the mount after
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

# faulted_read OPTS PROXY_JSON WHAT: mount with OPTS, set the proxy fault, read one 64 KiB
# block O_DIRECT; it must fail with EIO. EL = ms it took.
faulted_read() {
  local t0
  fs_mount "$M" "$S3_BUCKET:/$P" "block_size=64K,prefetch=no,retries=1,$1"
  [ "$(stat -c %s "$M/a.bin")" -eq 1000000 ] || fail "stat" # metadata first: only GETs suffer
  counters_reset
  proxy "$2"
  t0=$(now_ms)
  dd if="$M/a.bin" of=/dev/null bs=64K count=1 iflag=direct status=none 2>"$T/err" &&
    fail "$3: read succeeded"
  EL=$(($(now_ms) - t0))
  grep -q "Input/output error" "$T/err" || fail "$3: expected EIO, got: $(cat "$T/err")"
}
# cleared_read PROXY_JSON: clear the fault; the same mount reads the whole file right.
cleared_read() {
  proxy "$1"
  cmp "$T/src/a.bin" "$M/a.bin" || fail "read after the fault was cleared"
  kill -0 "$FS_PID" || fail "tierfs died"
  fs_umount "$M"
}

# 1. read_timeout=1s, retries=1: two attempts, each stalls mid-body (the second is the
# resume of the first), each cut 1 s after its last byte.
faulted_read "read_timeout=1s" '{"fault":{"kind":"stall","stall_ms":30000,"match":"GET"}}' "stall"
faults=$(counter faults)
fs_log "stalled read: EIO after $EL ms, $faults GETs stalled"
[ "$faults" -eq 2 ] || fail "$faults stalled GETs, want 2 (retries=1)"
# 2 x 1 s, plus the backoff (<= 100 ms) and the stall check's granularity (250 ms a try)
[ "$EL" -ge 1900 ] && [ "$EL" -le 4500 ] || fail "EIO after $EL ms, want about 2 s"
grep -q "no data for 1000 ms" "$T/tierfs.log" || fail "no stall timeout logged"
cleared_read '{"fault":null}'

# 1b. request_timeout=1500ms, retries=1: a body that trickles at 16 KB/s (4 s a block; far
# over the 1 KiB/s low-speed limit, a slice every 64 ms: neither read_timeout check fires)
# is cut 1.5 s into each of the two attempts (the second resumes, 40 KB short); a body at
# 100 KB/s (0.65 s a block) is not.
stalls0=$(grep -c "no data for" "$T/tierfs.log")
faulted_read "read_timeout=2s,request_timeout=1500ms" '{"bandwidth":16000}' "trickle"
fs_log "trickling read: EIO after $EL ms, $(counter get) GETs"
[ "$EL" -ge 2900 ] && [ "$EL" -le 6000 ] || fail "trickle: EIO after $EL ms, want about 3 s"
[ "$(counter get)" -eq 2 ] || fail "trickle: $(counter get) GETs, want 2 (retries=1)"
grep -q "not done after 1500 ms (request timeout)" "$T/tierfs.log" || fail "no request timeout logged"
grep -q "too slow" "$T/tierfs.log" && fail "the trickle tripped the low-speed limit, not the request timeout"
[ "$(grep -c "no data for" "$T/tierfs.log")" -eq "$stalls0" ] || fail "the trickle tripped the stall check, not the request timeout"
proxy '{"bandwidth":100000}'
dd if="$M/a.bin" of="$T/blk" bs=64K count=1 skip=3 iflag=direct status=none || fail "read at 100 KB/s failed"
cmp -n 65536 <(tail -c +$((3 * 65536 + 1)) "$T/src/a.bin") "$T/blk" || fail "read at 100 KB/s: data differs"
cleared_read '{"bandwidth":0}'

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
