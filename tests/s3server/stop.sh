#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# stop.sh ENV_FILE: stop the S3 server that start.sh described in ENV_FILE and delete it.
#
# Kills by the recorded PIDs only (proxy, radosgw, OSD, mon, plus any pid file under
# S3_DIR/run), and only processes whose command line names S3_DIR, so a recycled PID is
# never hit.  Waits briefly, SIGKILLs stragglers, removes S3_DIR and ENV_FILE.
# A missing ENV_FILE is not an error (nothing to stop).
set -uo pipefail

ENV_FILE=${1:-}
if [ -z "$ENV_FILE" ]; then
  echo "usage: $0 ENV_FILE" >&2
  exit 2
fi
if [ ! -f "$ENV_FILE" ]; then
  echo "s3server: $ENV_FILE not found, nothing to stop"
  exit 0
fi

# Parse, don't source: the file is data.
val() { sed -n "s/^$1=//p" "$ENV_FILE" | tail -n 1; }
D=$(val S3_DIR)

# @return 0 if $1 is a live process started for server dir $D.
ours() {
  local pid=$1
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [ -r "/proc/$pid/cmdline" ] || return 1
  [ -n "$D" ] && tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "$D"
}

pids=()
for k in PROXY_PID RGW_PID OSD_PID MON_PID; do pids+=("$(val "$k")"); done
if [ -n "$D" ] && [ -d "$D/run" ]; then
  for f in "$D"/run/*.pid; do [ -f "$f" ] && pids+=("$(cat "$f")"); done
fi

# Anything else started for this server (a daemon that never wrote its pid file, a
# client still talking to it): found by the dir in its command line.
if [ -n "$D" ]; then
  for c in $(grep -laF -- "$D/" /proc/[0-9]*/cmdline 2>/dev/null); do
    p=${c#/proc/}; p=${p%/cmdline}
    [ "$p" = $$ ] || [ "$p" = "$PPID" ] || pids+=("$p")
  done
fi

live=()
for pid in "${pids[@]}"; do
  ours "$pid" || continue
  case " ${live[*]} " in *" $pid "*) continue ;; esac
  live+=("$pid")
done

# @return 0 once none of the given PIDs is one of ours any more, 1 after ~$1 tenths of s.
wait_gone() {
  local n=$1 i pid left
  shift
  for i in $(seq 1 "$n"); do
    left=0
    for pid in "$@"; do ours "$pid" && left=1; done
    [ $left = 0 ] && return 0
    sleep 0.1
  done
  return 1
}

# Front to back: proxy and radosgw first, while the cluster they talk to is still there
# (radosgw hangs in shutdown for seconds once the mon/OSD are gone).
front=() back=() osd=()
for pid in "${live[@]}"; do
  cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline")
  case "$cmd" in
    *ceph-osd*) osd+=("$pid") ;;
    *ceph-mon*) back+=("$pid") ;;
    *) front+=("$pid") ;;
  esac
done
for pid in "${front[@]}"; do kill "$pid" 2>/dev/null; done
wait_gone 20 "${front[@]}" || for pid in "${front[@]}"; do ours "$pid" && kill -9 "$pid" 2>/dev/null; done
# The memstore OSD dumps its whole RAM store to disk on a clean stop; its data is thrown
# away anyway, so it gets SIGKILL at once.
for pid in "${osd[@]}"; do kill -9 "$pid" 2>/dev/null; done
for pid in "${back[@]}"; do kill "$pid" 2>/dev/null; done
wait_gone 20 "${back[@]}" "${osd[@]}" || for pid in "${back[@]}" "${osd[@]}"; do ours "$pid" && kill -9 "$pid" 2>/dev/null; done
wait_gone 20 "${live[@]}"

status=0
for pid in "${live[@]}"; do
  if ours "$pid"; then echo "s3server stop: process $pid would not die" >&2; status=1; fi
done
case "$D" in
  */tierfs-s3.*) rm -rf "$D" ;;
  "") ;;
  *) echo "s3server stop: not removing unexpected S3_DIR '$D'" >&2 ;;
esac
rm -f "$ENV_FILE"
echo "s3server: stopped (${#live[@]} processes)"
exit $status
