#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# test_fs_columnar.sh: column-selective reads (issue #17 point 1). A reader that reads
# some column chunks of every row group and skips the rest (colread.py: the pattern
# DuckDB shows on a Parquet file, two threads with a file descriptor each, page-header
# read then chunk) must not have the skipped bytes prefetched: S3 sends about the blocks
# the chunks touch (whole blocks: partial blocks are not built yet), not the file. The
# handle counts its skips (read_skips) and the bytes of prefetched blocks nobody read
# (prefetch_wasted_bytes). A reader that skips and then reads on to the end is a scan
# again: multi-block GETs, every block fetched once. Every byte is checked. Against the
# shaped server (30 ms first byte, 80 MB/s per response), default mount options.
. "$(dirname "$0")/fs_lib.sh"
fs_init fs_columnar

MB=1048576
RG=4351234   # a row group of DuckDB's default 122,880 rows of four 8-byte-ish columns
NRG=22
SIZE=$((RG * NRG + 12345))
mkfile "$T/src/t.bin" $SIZE
seed_direct "$T/src" "$P"
M=$T/mnt
COLREAD=$(dirname "$0")/colread.py
stat_of() { python3 -c 'import json,os,sys; print(json.loads(os.getxattr(sys.argv[1], "user.tierfs.stats"))[sys.argv[2]])' "$M" "$1"; }
# blocks CHUNKS: the 1 MiB blocks the chunks of all row groups touch (the whole-block floor)
blocks() {
  python3 -c '
import sys
rg, n, chunks = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
b = set()
for g in range(n):
    for c in chunks.split("+"):
        s, l = (int(x) for x in c.split(":"))
        lo = g * rg + s - 256
        b.update(range(lo >> 20, ((lo + 256 + l - 1) >> 20) + 1))
print(len(b))' "$RG" "$NRG" "$1"
}

# columnar NAME CHUNKS MAXRATIO_PERCENT [OPTIONS]: a fresh mount (memory only: the S3 path
# is what is measured), the chunks read, S3's bytes checked against the whole-block floor
# and the file
columnar() {
  local name=$1 chunks=$2 maxpct=$3 opts=${4:-}
  fs_mount "$M" "$S3_BUCKET:/$P" "mem_cache_size=512M${opts:+,$opts}"
  stat "$M/t.bin" >/dev/null || fail "stat t.bin"
  proxy '{"ttfb_ms":30,"bandwidth":80000000}'
  counters_reset
  local out
  out=$(python3 "$COLREAD" "$M/t.bin" "$T/src/t.bin" $RG "$chunks" 2) || fail "$name: wrong bytes ($out)"
  sleep 0.3 # the handles' last holds are dropped at release
  local bytes gets skips wasted floor
  bytes=$(counter bytes_sent) gets=$(counter get)
  skips=$(stat_of read_skips) wasted=$(stat_of prefetch_wasted_bytes)
  floor=$(($(blocks "$chunks") * MB))
  fs_log "$name: $out; S3 sent $bytes bytes in $gets GETs ($((bytes * 100 / SIZE)) % of the file; the blocks the chunks touch: $((floor * 100 / SIZE)) %), $skips forward skips, prefetched and unread $wasted bytes"
  [ "$skips" -ge $((NRG / 2)) ] || fail "$name: $skips forward skips counted for $NRG row groups read sparsely"
  [ $((bytes * 100)) -le $((SIZE * maxpct)) ] || fail "$name: S3 sent $bytes bytes, over $maxpct % of the $SIZE-byte file: skipped bytes were fetched"
  # over the floor: the kernel's read-ahead past each chunk (up to 2 x read_ahead) and
  # the first stretch of each handle, before it has skipped (the ramp)
  [ "$bytes" -le $((floor + NRG * 2 * MB + 8 * MB)) ] || fail "$name: S3 sent $bytes bytes, the chunks touch $floor"
  [ "$wasted" -le $((bytes - floor + 2 * MB)) ] || fail "$name: prefetch_wasted_bytes $wasted exceeds what S3 sent past the floor"
  proxy '{}'
  fs_umount "$M"
}

# one column chunk of 983,081 bytes a row group (22 % of the file): before the model
# the reads' prefetch pulled ~100 % of the file
columnar "one column" "1000000:983081" 60
# two adjacent chunks (45 % of the file) read one after the other: the kernel's read-ahead
# (read_ahead, 1 MiB by default) takes two preads in a row for a sequential file and
# reads up to two windows past the second, which tierfs must then fetch: with the
# default that is ~96 % of the file whatever tierfs does; with the kernel's own 128 KiB
# what is left over the floor is tierfs's
columnar "two columns, read_ahead=128K" "1000000:983081+1983337:983081" 88 read_ahead=128K

# ---- a reader that skips, then reads on to the end: a scan again ----
fs_mount "$M" "$S3_BUCKET:/$P" "mem_cache_size=512M"
stat "$M/t.bin" >/dev/null || fail "stat t.bin"
proxy '{"ttfb_ms":30,"bandwidth":80000000}'
counters_reset
python3 - "$M/t.bin" "$T/src/t.bin" $RG <<'PY' || fail "skip then scan: wrong bytes"
import os, sys
path, ref, rg = sys.argv[1], sys.argv[2], int(sys.argv[3])
f, r = open(path, "rb", buffering=0), open(ref, "rb")
for g in range(4):  # four row groups read sparsely
    f.seek(g * rg + 1000000); r.seek(g * rg + 1000000)
    if f.read(983081) != r.read(983081): sys.exit(1)
f.seek(4 * rg); r.seek(4 * rg)
while True:  # then the rest, 1 MiB at a time, like cat
    a = f.read(1 << 20)
    if a != r.read(1 << 20): sys.exit(1)
    if not a: break
PY
bytes=$(counter bytes_sent) gets=$(counter get)
rest=$((SIZE - 4 * RG))
fs_log "skip then scan: S3 sent $bytes bytes in $gets GETs (the scanned rest: $((rest / MB)) MiB)"
# the scanned part is fetched in multi-block GETs (prefetch_max_request 8M), once
[ "$gets" -le $((8 + rest / MB / 3)) ] || fail "skip then scan: $gets GETs: the scan after the skips was not prefetched in large GETs"
[ "$bytes" -le $((rest + 16 * MB)) ] || fail "skip then scan: S3 sent $bytes bytes for a $rest-byte scan and four chunks"
proxy '{}'
fs_umount "$M"
fs_log "PASS"
