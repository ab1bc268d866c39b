#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# start.sh ENV_FILE: start a throwaway S3 server for tests and describe it in ENV_FILE.
#
# A single-node Ceph (1 mon, 1 memstore OSD, no mgr, auth off inside the cluster) with
# radosgw serving S3 on 127.0.0.1, all under a fresh `mktemp -d` dir on free ports, an
# empty bucket, and the shaping proxy (proxy.js) in front.  Several servers can run side
# by side.  ENV_FILE gets KEY=VALUE lines (bash-sourceable); stop.sh ENV_FILE undoes it
# all.  If ENV_FILE already names a server, that one is stopped first.
# Settings (environment): S3_ACCESS_KEY, S3_SECRET_KEY, S3_BUCKET (tierfs-test),
# MEMSTORE_BYTES (reported OSD capacity, default 16 GiB; RAM is used only for data stored).
# Needs: ceph-mon ceph-osd radosgw ceph-common uuid-runtime nodejs curl (tools/setup.sh).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ENV_FILE=${1:-}
if [ -z "$ENV_FILE" ] || [ $# -ne 1 ]; then
  echo "usage: $0 ENV_FILE" >&2
  exit 2
fi
case "$ENV_FILE" in /*) ;; *) ENV_FILE=$PWD/$ENV_FILE ;; esac

S3_ACCESS_KEY=${S3_ACCESS_KEY:-tierfs-test-key}
S3_SECRET_KEY=${S3_SECRET_KEY:-tierfs-test-secret}
S3_BUCKET=${S3_BUCKET:-tierfs-test}
MEMSTORE_BYTES=${MEMSTORE_BYTES:-17179869184}
# Plain http on loopback: no CA bundle, no proxy settings may leak into our clients.
unset AWS_CA_BUNDLE CURL_CA_BUNDLE SSL_CERT_FILE SSL_CERT_DIR REQUESTS_CA_BUNDLE NODE_EXTRA_CA_CERTS
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY CEPH_ARGS CEPH_CONF

die() { echo "s3server start FAILED: $*" >&2; exit 1; }

missing=()
for c in ceph-mon ceph-osd radosgw radosgw-admin ceph ceph-authtool monmaptool uuidgen node curl; do
  command -v "$c" >/dev/null 2>&1 || missing+=("$c")
done
[ ${#missing[@]} -eq 0 ] || die "missing commands: ${missing[*]} (run tools/setup.sh as root)"

if [ -f "$ENV_FILE" ]; then   # a server left over from an interrupted run
  "$HERE/stop.sh" "$ENV_FILE" >/dev/null 2>&1 || true
fi
mkdir -p "$(dirname "$ENV_FILE")"

# Print N distinct ports in 20000-31999 (below the kernel's ephemeral range, so outgoing
# connections never hold them) that are free to bind right now.
free_ports() {
  node -e '
    const net = require("net");
    const n = Number(process.argv[1]), got = new Set();
    const tryOne = () => new Promise((res) => {
      const p = 20000 + Math.floor(Math.random() * 12000);
      if (got.has(p)) return res();
      const s = net.createServer();
      s.once("error", () => res());
      s.listen(p, "127.0.0.1", () => { got.add(p); s.close(() => res()); });
    });
    (async () => {
      for (let i = 0; i < 200 && got.size < n; i++) await tryOne();
      if (got.size < n) process.exit(1);
      console.log([...got].join(" "));
    })();' "$1"
}

D=
PIDS=()
teardown() {
  local p
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  if [ -n "$D" ] && [ -d "$D/run" ]; then
    for f in "$D"/run/*.pid; do [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null || true; done
  fi
  # A daemon that had not yet written its pid file: find it by the dir in its command line.
  if [ -n "$D" ]; then
    for c in $(grep -laF -- "$D/" /proc/[0-9]*/cmdline 2>/dev/null); do
      p=${c#/proc/}; p=${p%/cmdline}
      [ "$p" != $$ ] && [ "$p" != "$PPID" ] && kill -9 "$p" 2>/dev/null || true
    done
  fi
  [ -n "$D" ] && rm -rf "$D"
  D=
  PIDS=()
}

# One attempt; @return 0 with the server running, 1 after a clean teardown.
attempt() {
  local ports MON_PORT RGW_PORT FSID CONF OSD_UUID OSD_ID i up
  ports=$(free_ports 2) || { echo "no free ports" >&2; return 1; }
  read -r MON_PORT RGW_PORT <<<"$ports"
  D=$(mktemp -d "${TMPDIR:-/tmp}/tierfs-s3.XXXXXX")
  mkdir -p "$D"/{mon.a,osd.0,log,run,rgw,crash}
  FSID=$(uuidgen)
  CONF=$D/ceph.conf
  cat >"$CONF" <<EOF
[global]
fsid = $FSID
mon host = [v2:127.0.0.1:$MON_PORT]
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind msgr1 = false
ms bind retry count = 2
ms bind retry delay = 1
auth cluster required = none
auth service required = none
auth client required = none
keyring = $D/keyring
log file = $D/log/\$name.log
admin socket = $D/run/\$name.asok
pid file = $D/run/\$name.pid
run dir = $D/run
crash dir = $D/crash
client mount timeout = 20
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000

[mon]
mon data = $D/mon.\$id
mon cluster log file = $D/log/cluster.log
mon data avail warn = 2
mon data avail crit = 1
# default 1 s; every pool creation / osdmap change waits for it (start 13 s -> 2 s)
paxos propose interval = 0.1

[osd]
osd data = $D/osd.\$id
osd objectstore = memstore
memstore device bytes = $MEMSTORE_BYTES

[client.rgw]
# radosgw's compiled-in defaults force cephx + "secure" mon connections; undo for auth=none
auth client required = none
ms mon client mode = crc
# tcp_nodelay: without it a reused connection waits ~40 ms per response (Nagle against
# the client's delayed ACK), which made every request through a kept-alive connection slow.
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT tcp_nodelay=1
rgw data = $D/rgw
# lets clients address buckets virtual-hosted style as BUCKET.localhost:PORT (the AWS default)
rgw dns name = localhost
rgw enable ops log = false
# free tails of deleted/overwritten objects after ~30 s instead of 2 h (memstore = RAM)
rgw gc obj min wait = 30
rgw gc processor period = 30
EOF
  local ERR=$D/log/daemon-stderr.log
  local q=(-c "$CONF")

  # --- monitor (forks; run/mon.a.pid) ---
  ceph-authtool --create-keyring "$D/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null 2>>"$ERR" ||
    { echo "ceph-authtool failed" >&2; return 1; }
  monmaptool --create --fsid "$FSID" --addv a "[v2:127.0.0.1:$MON_PORT]" "$D/monmap" >/dev/null 2>>"$ERR" ||
    { echo "monmaptool failed" >&2; return 1; }
  ceph-mon "${q[@]}" --mkfs -i a --monmap "$D/monmap" --keyring "$D/keyring" </dev/null >>"$ERR" 2>&1 ||
    { echo "ceph-mon --mkfs failed" >&2; return 1; }
  ceph-mon "${q[@]}" -i a </dev/null >>"$ERR" 2>&1 || { echo "ceph-mon failed to start (port $MON_PORT)" >&2; return 1; }

  # --- OSD (memstore: no block device; objects live in the OSD's RAM; run/osd.N.pid) ---
  OSD_UUID=$(uuidgen)
  OSD_ID=$(timeout 30 ceph "${q[@]}" osd new "$OSD_UUID" 2>>"$ERR") || { echo "ceph osd new failed (mon not answering?)" >&2; return 1; }
  ceph-osd "${q[@]}" -i "$OSD_ID" --mkfs --osd-uuid "$OSD_UUID" </dev/null >>"$ERR" 2>&1 || { echo "ceph-osd --mkfs failed" >&2; return 1; }
  ceph-osd "${q[@]}" -i "$OSD_ID" </dev/null >>"$ERR" 2>&1 || { echo "ceph-osd failed to start" >&2; return 1; }
  up=0
  for i in $(seq 1 120); do
    if timeout 10 ceph "${q[@]}" osd dump 2>/dev/null | grep -q "^osd.$OSD_ID up"; then up=1; break; fi
    sleep 0.25
  done
  [ $up = 1 ] || { echo "osd.$OSD_ID did not come up" >&2; return 1; }

  # --- S3 user (also creates the default realm/zonegroup/zone and the rgw pools) ---
  timeout 60 radosgw-admin "${q[@]}" user create --uid=tierfs --display-name=tierfs \
    --access-key="$S3_ACCESS_KEY" --secret="$S3_SECRET_KEY" </dev/null >/dev/null 2>>"$ERR" ||
    { echo "radosgw-admin user create failed" >&2; return 1; }

  # --- radosgw (forks once initialised; run/client.rgw.pid; hangs on misconfig: timeout) ---
  timeout 60 radosgw "${q[@]}" -n client.rgw </dev/null >>"$ERR" 2>&1 || { echo "radosgw failed to start" >&2; return 1; }
  # The forking parent may exit before the daemon has written its pid file: poll.
  local RGW_PID=
  up=0
  for i in $(seq 1 300); do
    [ -z "$RGW_PID" ] && RGW_PID=$(cat "$D/run/client.rgw.pid" 2>/dev/null)
    if [ -n "$RGW_PID" ]; then
      kill -0 "$RGW_PID" 2>/dev/null || break
      if curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$RGW_PORT/"; then up=1; break; fi
    fi
    sleep 0.1
  done
  [ -n "$RGW_PID" ] || { echo "radosgw wrote no pid file" >&2; return 1; }
  [ $up = 1 ] || { echo "radosgw not answering on 127.0.0.1:$RGW_PORT" >&2; return 1; }

  # --- bucket, signed with our own tiny client ---
  S3_ENDPOINT=http://127.0.0.1:$RGW_PORT S3_ACCESS_KEY=$S3_ACCESS_KEY S3_SECRET_KEY=$S3_SECRET_KEY \
    S3_REGION=us-east-1 TIERFS_S3_ENV= node "$HERE/s3cli.js" mb "$S3_BUCKET" 2>>"$ERR" ||
    { echo "create bucket $S3_BUCKET failed" >&2; return 1; }

  # --- shaping proxy (binds port 0 itself: no race) ---
  setsid node "$HERE/proxy.js" --upstream "http://127.0.0.1:$RGW_PORT" --port-file "$D/proxy.ports" \
    --tag "$D" </dev/null >>"$D/log/proxy.log" 2>&1 &
  local PROXY_PID=$!
  PIDS+=("$PROXY_PID")
  for i in $(seq 1 100); do
    [ -s "$D/proxy.ports" ] && break
    kill -0 "$PROXY_PID" 2>/dev/null || break
    sleep 0.05
  done
  [ -s "$D/proxy.ports" ] || { echo "proxy did not start: $(tail -n 5 "$D/log/proxy.log")" >&2; return 1; }
  local PROXY_PORT CONTROL_PORT
  read -r PROXY_PORT CONTROL_PORT <"$D/proxy.ports"
  curl -s -f -o /dev/null --max-time 5 "http://127.0.0.1:$CONTROL_PORT/__proxy/health" ||
    { echo "proxy control endpoint not answering" >&2; return 1; }

  for i in $(seq 1 50); do
    [ -s "$D/run/mon.a.pid" ] && [ -s "$D/run/osd.$OSD_ID.pid" ] && break
    sleep 0.1
  done
  cat >"$ENV_FILE.tmp" <<EOF
# tierfs test S3 server, written by tests/s3server/start.sh; stop with stop.sh $ENV_FILE
S3_ENDPOINT=http://127.0.0.1:$PROXY_PORT
S3_DIRECT_ENDPOINT=http://127.0.0.1:$RGW_PORT
S3_CONTROL=http://127.0.0.1:$CONTROL_PORT/__proxy
S3_CONTROL_MAIN=http://127.0.0.1:$PROXY_PORT/__proxy
S3_ACCESS_KEY=$S3_ACCESS_KEY
S3_SECRET_KEY=$S3_SECRET_KEY
S3_REGION=us-east-1
S3_BUCKET=$S3_BUCKET
S3_DIR=$D
S3CLI=$HERE/s3cli.js
PROXY_PORT=$PROXY_PORT
CONTROL_PORT=$CONTROL_PORT
RGW_PORT=$RGW_PORT
MON_PORT=$MON_PORT
CEPH_CONF=$CONF
MON_PID=$(cat "$D/run/mon.a.pid")
OSD_PID=$(cat "$D/run/osd.$OSD_ID.pid")
RGW_PID=$RGW_PID
PROXY_PID=$PROXY_PID
AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY
AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY
AWS_DEFAULT_REGION=us-east-1
EOF
  mv "$ENV_FILE.tmp" "$ENV_FILE"
  cp "$ENV_FILE" "$D/env"
  return 0
}

trap 'teardown; rm -f "$ENV_FILE.tmp"; exit 1' INT TERM
t0=$(date +%s%N)
for try in 1 2; do
  if attempt; then
    trap - INT TERM
    echo "s3server: up in $(( ($(date +%s%N) - t0) / 1000000 )) ms: $ENV_FILE"
    grep -E '^(S3_ENDPOINT|S3_DIRECT_ENDPOINT|S3_CONTROL|S3_BUCKET|S3_DIR)=' "$ENV_FILE"
    exit 0
  fi
  echo "s3server: attempt $try failed; logs:" >&2
  [ -n "$D" ] && tail -n 15 "$D"/log/*.log >&2 2>/dev/null || true
  teardown
done
rm -f "$ENV_FILE.tmp"
die "could not start the S3 server (see messages above)"
