#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# test_fs_columnar.sh: column-selective reads (issue #17 point 1). A reader that reads
# some column chunks of every row group and skips the rest (colread.py: the pattern
# DuckDB shows on a Parquet file, two threads with a file descriptor each, page-header
# read then chunk) must not have the skipped bytes fetched: once a handle has skipped,
# its reads take pieces of blocks (partial_grain, 64K by default) and the prefetch of a
# stretch stops where the past stretches say it ends, so S3 sends about what the reader
# reads. Checked: S3's bytes against the bytes read and the file, the pieces counted,
# the skips counted, the bytes of prefetched blocks nobody read (prefetch_wasted_bytes);
# a second run of the query pulls at most a few read-ahead windows; a scan after the query copies the cached pieces
# into its blocks and GETs only the rest; with a disk tier a remount runs the query with
# no GET; with partial_grain=0 the same query pulls whole blocks (the floor the pieces
# beat). A reader that skips and then reads on to the end is a scan again: multi-block
# GETs, every block fetched once; so is one that reads every chunk of each row group, one
# of them out of order (DuckDB's whole-table query), with and without the page cache and
# with page_cache=auto. A footer read first takes pieces, not its whole block. Every byte
# is checked. Against the shaped server (30 ms
# first byte, 80 MB/s per response), default mount options unless said.
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
# Before a handle has skipped it reads like a scan (whole blocks, the prefetch ramping up
# from two blocks past its first stretch): each of colread's two handles may cost this
# much over what it reads.
FIRST=$((6 * MB))
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

# query CHUNKS: run colread; sets OUT (its line), READ (bytes it read), BYTES and GETS (S3's)
query() {
  counters_reset
  OUT=$(python3 "$COLREAD" "$M/t.bin" "$T/src/t.bin" $RG "$1" 2) || fail "$NAME: wrong bytes ($OUT)"
  sleep 0.3 # the handles' last holds are dropped at release
  READ=$(echo "$OUT" | awk '{print $2}') BYTES=$(counter bytes_sent) GETS=$(counter get)
}

# columnar NAME CHUNKS MAXPCT [OPTIONS]: a fresh mount (memory only: the S3 path is what
# is measured), the chunks read, S3's bytes checked against what was read and the file;
# then the same query again: no GET. The mount stays up for the caller (unmount: M).
columnar() {
  NAME=$1
  local chunks=$2 maxpct=$3 opts=${4:-}
  fs_mount "$M" "$S3_BUCKET:/$P" "mem_cache_size=512M${opts:+,$opts}"
  stat "$M/t.bin" >/dev/null || fail "stat t.bin"
  proxy '{"ttfb_ms":30,"bandwidth":80000000}'
  query "$chunks"
  local skips wasted floor preads pfetch pbytes
  skips=$(stat_of read_skips) wasted=$(stat_of prefetch_wasted_bytes)
  preads=$(stat_of piece_reads) pfetch=$(stat_of piece_fetches) pbytes=$(stat_of piece_bytes)
  floor=$(($(blocks "$chunks") * MB))
  fs_log "$NAME: $OUT; S3 sent $BYTES bytes in $GETS GETs ($((BYTES * 100 / SIZE)) % of the file, $((BYTES * 100 / READ)) % of what was read; the whole blocks the chunks touch: $((floor * 100 / SIZE)) % of the file), pieces: $preads reads took them, $pfetch fetched ($pbytes bytes); $skips forward skips, prefetched and unread $wasted bytes"
  [ "$skips" -ge $((NRG / 2)) ] || fail "$NAME: $skips forward skips counted for $NRG row groups read sparsely"
  [ $((BYTES * 100)) -le $((SIZE * maxpct)) ] || fail "$NAME: S3 sent $BYTES bytes, over $maxpct % of the $SIZE-byte file: skipped bytes were fetched"
  [ "$pfetch" -gt 0 ] && [ "$preads" -gt 0 ] || fail "$NAME: no piece fetched ($preads reads, $pfetch pieces)"
  # pieces: what was read, rounded out to the grain, and the kernel's read-ahead past a chunk
  [ $((pbytes * 10)) -le $((READ * 13)) ] || fail "$NAME: $pbytes bytes of pieces for $READ bytes read (over 1.3x)"
  [ "$BYTES" -le $((READ * 13 / 10 + 2 * FIRST)) ] || fail "$NAME: S3 sent $BYTES bytes for $READ read (over 1.3x and the two handles' first stretches)"
  [ "$wasted" -le $((2 * FIRST)) ] || fail "$NAME: $wasted bytes prefetched and never read"
  # the same query again: what it read is cached. Not always every byte it asks for: the
  # pages it read the first time are in the page cache now, and when a read hits a page
  # the kernel marked for read-ahead it reads further ahead than the first run did.
  local first=$BYTES
  query "$chunks"
  fs_log "$NAME: the same query again: $GETS GETs, $BYTES bytes"
  [ $((BYTES * 100)) -le $((first * 15)) ] || fail "$NAME: the second run of the query pulled $BYTES bytes in $GETS GETs (the first $first)"
  proxy '{}'
}

# one column chunk of 983,081 bytes a row group (22 % of the file): before the model
# the prefetch pulled ~100 % of the file, whole blocks alone 46 %
columnar "one column" "1000000:983081" 40
# with partial_grain=0: whole blocks (the floor the pieces beat)
NOPIECE_FLOOR=$(($(blocks "1000000:983081") * MB))
fs_umount "$M"
fs_mount "$M" "$S3_BUCKET:/$P" "mem_cache_size=512M,partial_grain=0"
stat "$M/t.bin" >/dev/null || fail "stat t.bin"
NAME="one column, partial_grain=0"
query "1000000:983081"
fs_log "$NAME: S3 sent $BYTES bytes ($((BYTES * 100 / SIZE)) % of the file), pieces fetched: $(stat_of piece_fetches)"
[ "$(stat_of piece_fetches)" -eq 0 ] || fail "$NAME: pieces fetched with partial_grain=0"
[ "$BYTES" -ge "$NOPIECE_FLOOR" ] || fail "$NAME: S3 sent $BYTES bytes, under the $NOPIECE_FLOOR bytes of the whole blocks the chunks touch"
fs_umount "$M"

# two adjacent chunks (45 % of the file) read one after the other, and the kernel's own
# 128 KiB read-ahead
columnar "two columns, read_ahead=128K" "1000000:983081+1983337:983081" 60 read_ahead=128K

# ---- a scan after the query: the cached pieces go into the scan's blocks ----
# O_DIRECT, so the kernel's page cache (which holds what the query read) does not answer
# for the daemon
PIECE_BYTES=$(stat_of piece_bytes)
counters_reset
dd if="$M/t.bin" iflag=direct bs=1M status=none | cmp - "$T/src/t.bin" || fail "scan after the query: wrong bytes"
BYTES=$(counter bytes_sent) ASM=$(stat_of piece_assembled)
fs_log "scan after the query: S3 sent $BYTES bytes for the $SIZE-byte file ($((BYTES * 100 / SIZE)) %), $ASM blocks completed from cached pieces"
[ "$ASM" -gt 0 ] || fail "scan after the query: no block was completed from the cached pieces"
[ "$BYTES" -le $((SIZE - PIECE_BYTES + 8 * MB)) ] || fail "scan after the query: S3 sent $BYTES bytes: the $PIECE_BYTES bytes of cached pieces were fetched again"
fs_umount "$M"

# ---- a query and a scan at once: each byte is fetched once ----
# The scan's whole-block fetches join the query's piece fetches in flight (or read them
# from memory) instead of GETting those bytes again (HC_FETCH_JOIN).
fs_mount "$M" "$S3_BUCKET:/$P" "mem_cache_size=512M"
stat "$M/t.bin" >/dev/null || fail "stat t.bin"
proxy '{"ttfb_ms":30,"bandwidth":80000000}'
counters_reset
python3 "$COLREAD" "$M/t.bin" "$T/src/t.bin" $RG "1000000:983081" 2 >/dev/null &
QPID=$!
sleep 0.2 # the query is under way, its pieces in flight
dd if="$M/t.bin" iflag=direct bs=1M status=none | cmp - "$T/src/t.bin" || fail "query and scan at once: the scan's bytes are wrong"
wait $QPID || fail "query and scan at once: the query's bytes are wrong"
BYTES=$(counter bytes_sent) ASM=$(stat_of piece_assembled)
fs_log "query and scan at once: S3 sent $BYTES bytes for the $SIZE-byte file ($((BYTES * 100 / SIZE)) %), pieces fetched $(stat_of piece_fetches), $ASM blocks completed from pieces"
[ "$BYTES" -le $((SIZE + 2 * MB)) ] || fail "query and scan at once: S3 sent $BYTES bytes for the $SIZE-byte file: bytes fetched twice"
proxy '{}'
fs_umount "$M"

# ---- with a disk tier, the pieces survive a remount ----
DISK="disk_cache=$T/cache.img,disk_cache_size=256M,mem_cache_size=256M"
fs_mount "$M" "$S3_BUCKET:/$P" "$DISK"
stat "$M/t.bin" >/dev/null || fail "stat t.bin"
NAME="disk tier"
query "1000000:983081"
first=$BYTES
fs_umount "$M"
fs_mount "$M" "$S3_BUCKET:/$P" "$DISK"
stat "$M/t.bin" >/dev/null || fail "stat t.bin"
query "1000000:983081"
fs_log "disk tier: the query pulled $first bytes, after a remount $BYTES bytes in $GETS GETs"
[ "$GETS" -eq 0 ] || fail "disk tier: after a remount the query made $GETS GETs ($BYTES bytes)"
fs_umount "$M"

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
[ "$gets" -le $((16 + rest / MB / 3)) ] || fail "skip then scan: $gets GETs: the scan after the skips was not prefetched in large GETs"
[ "$bytes" -le $((rest + 16 * MB)) ] || fail "skip then scan: S3 sent $bytes bytes for a $rest-byte scan and four chunks"
proxy '{}'
fs_umount "$M"

# ---- a footer read first, through the page cache: pieces, not the last block ----
fs_mount "$M" "$S3_BUCKET:/$P" "mem_cache_size=512M"
counters_reset
tail -c 8 "$M/t.bin" | cmp - <(tail -c 8 "$T/src/t.bin") || fail "footer bytes"
bytes=$(counter bytes_sent)
fs_log "a footer read of 8 bytes: S3 sent $bytes bytes (the last block: $((SIZE % MB)))"
[ "$bytes" -le $((128 * 1024)) ] || fail "a footer read pulled $bytes bytes (whole last block?)"
fs_umount "$M"

# ---- every chunk of every row group, one out of order: a scan, not a skipper ----
# DuckDB's whole-table query reads a row group's chunks as c0, c2, c3, then c1: a skip
# over c1, then a seek back to it. Once a handle comes back for what it skipped it reads
# like a scan (whole blocks, multi-block GETs; fs/prefetch.c BACKFILL, for handles without
# the page cache: page_cache=no, where no read-ahead merges the chunks; before it each c1
# started a new run: docs/performance.md, rule 7). Through the page cache (no backfill)
# the kernel's read-ahead merges the chunks. Such a handle prefetches its whole window
# ahead, over the row groups the other handle reads (DuckDB's threads take them in turn):
# fewer, larger GETs than through the page cache. page_cache=auto: the same once the
# footer was read on a handle of its own (DuckDB's pattern).
ALL="256:700000+1700768:1300000+3001024:1350210+700512:1000000"
for opts in "" "page_cache=no" "page_cache=auto"; do
  fs_mount "$M" "$S3_BUCKET:/$P" "mem_cache_size=512M${opts:+,$opts}"
  stat "$M/t.bin" >/dev/null || fail "stat t.bin"
  [ "$opts" != "page_cache=auto" ] || tail -c 8 "$M/t.bin" >/dev/null || fail "footer read"
  proxy '{"ttfb_ms":30,"bandwidth":80000000}'
  query "$ALL"
  fs_log "whole table, c1 last${opts:+ ($opts)}: $OUT; S3 sent $BYTES bytes in $GETS GETs ($((BYTES * 100 / SIZE)) % of the file), $(stat_of read_skips) skips, $(stat_of piece_fetches) pieces fetched"
  [ "$BYTES" -le $((SIZE + 2 * MB)) ] || fail "whole table${opts:+ ($opts)}: S3 sent $BYTES bytes for the $SIZE-byte file"
  maxgets=$((NRG * 4))
  # with auto (a file read footer first) the handles' first stretches take pieces: a few
  # more GETs than with page_cache=no (docs/performance.md, rule 7)
  [ -z "$opts" ] || maxgets=$((NRG * 2))
  [ "$GETS" -le "$maxgets" ] || fail "whole table${opts:+ ($opts)}: $GETS GETs for $NRG row groups read whole (a skipper's pieces)"
  proxy '{}'
  fs_umount "$M"
done
fs_log "PASS"
