#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# test_fs_pagecache.sh: page_cache_fill. A lone small read that the disk tier serves puts the
# aligned 64 KiB around it into the kernel's page cache (after its reply, from the fill
# thread): the pages are there (fincore), they hold the right bytes, and reads of them
# never reach the daemon. A second lone read in the same block fills the whole block.
# When the object is replaced, the next open reads the new version, never a filled page
# of the old one. page_cache_fill=0 turns it off; a bad value is refused with a one-line
# error. page_cache=no: nothing of a file enters the page cache, every read reaches the
# daemon as the program asked for it (a lone 4 KiB read is 4 KiB, no read-ahead), a
# private mmap reads the right bytes, and so does a shared one where the kernel allows it
# (Linux 6.6+, fs/fuseio.c; else ENODEV); page_cache_fill
# with it, and bad values, are refused in one line. page_cache=auto: a file scanned from its
# start stays in the page cache; after a first read of its tail (a footer), its next opens
# bypass it (a second scan reaches the daemon, a 4 KiB read is 4 KiB) until a new version.
. "$(dirname "$0")/fs_lib.sh"
fs_init fs_pagecache

KIB=1024
MIB=1048576
mkfile "$T/src/r.bin" $((8 * MIB))
seed_direct "$T/src" "$P"
M=$T/mnt
PORT=$(free_port) || fail "no free port"
OPTS="disk_cache=$T/cache.img,disk_cache_size=64M,metadata_ttl=1s,metrics=127.0.0.1:$PORT"
stats() { # stats NAME: one field of /stats.json
  curl -s -m 5 "http://127.0.0.1:$PORT/stats.json" | grep -o "\"$1\": [0-9]*" | awk '{print $2}'
}
pages() { fincore --noheadings --output PAGES "$1" | tr -d ' '; }
# read4k FILE REF OFFSET: one 4 KiB read (its own open) checked against REF.
read4k() {
  dd if="$1" bs=4096 skip=$(($3 / 4096)) count=1 2>/dev/null >"$T/piece" || fail "dd $1 @$3"
  cmp -s "$T/piece" <(dd if="$2" bs=4096 skip=$(($3 / 4096)) count=1 2>/dev/null) ||
    fail "4 KiB at $3 of $1 differs from $2"
}
wait_fills() { # wait_fills N: until at least N fills were stored (5 s)
  local i
  for i in $(seq 1 50); do
    [ "$(stats page_cache_fills)" -ge "$1" ] && return 0
    sleep 0.1
  done
  fail "page_cache_fills stayed at $(stats page_cache_fills), expected $1"
}

# Warm the disk tier, then remount: memory is empty, the blocks are on disk.
fs_mount "$M" "$S3_BUCKET:/$P" "$OPTS"
cat "$M/r.bin" >/dev/null || fail "warm read"
fs_umount "$M"
fs_mount "$M" "$S3_BUCKET:/$P" "$OPTS"

# ---- 1. a lone 4 KiB read fills its 64 KiB unit ----
UNIT=$((2 * MIB + 64 * KIB)) # a 64 KiB unit inside block 2
read4k "$M/r.bin" "$T/src/r.bin" $((UNIT + 20 * KIB))
wait_fills 1
np=$(pages "$M/r.bin")
fs_log "after one 4 KiB read: $np pages of r.bin cached, fills $(stats page_cache_fills) ($(stats page_cache_fill_bytes) bytes), partial disk hits $(stats disk_partial_hits)"
[ "$np" -ge 16 ] || fail "$np pages in the page cache after a filled read, expected the 16 of its unit"
[ "$(stats page_cache_fill_bytes)" -ge $((64 * KIB)) ] || fail "fill bytes $(stats page_cache_fill_bytes)"

# ---- 2. the filled pages hold the right bytes and are served by the kernel ----
r0=$(stats fuse_reads)
for k in $(seq 0 15); do read4k "$M/r.bin" "$T/src/r.bin" $((UNIT + k * 4 * KIB)); done
r1=$(stats fuse_reads)
fs_log "16 reads of the filled unit: $((r1 - r0)) reached the daemon"
[ "$r1" -eq "$r0" ] || fail "$((r1 - r0)) reads of filled pages reached the daemon"

# ---- 2b. a second lone read in the same block fills the whole block ----
read4k "$M/r.bin" "$T/src/r.bin" $((2 * MIB + 512 * KIB + 8 * KIB))
wait_fills 2
np=$(pages "$M/r.bin")
fs_log "after a second lone read in block 2: $np pages cached"
[ "$np" -ge 256 ] || fail "$np pages after a block's second lone read, expected its 256"
r0=$(stats fuse_reads)
read4k "$M/r.bin" "$T/src/r.bin" $((2 * MIB + 900 * KIB))
read4k "$M/r.bin" "$T/src/r.bin" $((3 * MIB - 4 * KIB))
[ "$(stats fuse_reads)" -eq "$r0" ] || fail "reads of the filled block reached the daemon"

# ---- 3. the object is replaced: the next open reads the new bytes ----
mkfile "$T/new/r.bin" $((8 * MIB))
seed_direct "$T/new" "$P"
sleep 1.5 # metadata_ttl=1s: the next open HEADs the new version
read4k "$M/r.bin" "$T/new/r.bin" $((UNIT + 8 * KIB))
read4k "$M/r.bin" "$T/new/r.bin" $((UNIT + 40 * KIB))

fs_umount "$M"

# ---- 4. page_cache_fill=0: nothing filled; bad values refused ----
fs_mount "$M" "$S3_BUCKET:/$P" "$OPTS,page_cache_fill=0"
read4k "$M/r.bin" "$T/new/r.bin" $((5 * MIB + 12 * KIB))
sleep 0.3
[ "$(stats page_cache_fills)" -eq 0 ] || fail "page_cache_fill=0 filled $(stats page_cache_fills)"
np=$(pages "$M/r.bin")
[ "$np" -le 4 ] || fail "page_cache_fill=0: $np pages cached after one 4 KiB read"
fs_umount "$M"
for bad in 3K 12K 2M -1 lots; do
  if "$BIN/tierfs" "$S3_BUCKET:/$P" "$M" -f -o "$TIERFS_OPTS,page_cache_fill=$bad" 2>"$T/bad.err"; then
    fail "page_cache_fill=$bad accepted"
  fi
  grep -q "page_cache_fill" "$T/bad.err" || fail "page_cache_fill=$bad: $(cat "$T/bad.err")"
  [ "$(wc -l <"$T/bad.err")" -eq 1 ] || fail "page_cache_fill=$bad: more than one line: $(cat "$T/bad.err")"
done

# ---- 5. page_cache=no ----
fs_mount "$M" "$S3_BUCKET:/$P" "$OPTS,page_cache=no"
r0=$(stats fuse_reads)
cmp "$M/r.bin" "$T/new/r.bin" || fail "page_cache=no: first read differs"
r1=$(stats fuse_reads)
cmp "$M/r.bin" "$T/new/r.bin" || fail "page_cache=no: second read differs"
r2=$(stats fuse_reads)
np=$(pages "$M/r.bin")
fs_log "page_cache=no: two reads of 8 MiB: $((r1 - r0)) and $((r2 - r1)) FUSE reads, $np pages cached"
[ "$np" -eq 0 ] || fail "page_cache=no: $np pages of r.bin in the page cache"
[ $((r2 - r1)) -ge 8 ] || fail "page_cache=no: the second read made $((r2 - r1)) FUSE reads (the kernel served it)"
[ $((r2 - r1)) -ge $((r1 - r0)) ] || fail "page_cache=no: fewer FUSE reads the second time"
b0=$(stats fuse_read_bytes)
read4k "$M/r.bin" "$T/new/r.bin" $((6 * MIB + 36 * KIB))
b1=$(stats fuse_read_bytes)
fs_log "page_cache=no: a lone 4 KiB read asked the daemon for $((b1 - b0)) bytes"
[ $((b1 - b0)) -eq 4096 ] || fail "page_cache=no: a 4 KiB read became $((b1 - b0)) bytes (read-ahead)"
# A shared mapping works where the kernel lets the daemon allow it (Linux 6.6+: the INIT
# reply asks for FUSE_DIRECT_IO_ALLOW_MMAP, fs/fuseio.c), else it fails with ENODEV.
SHARED=enodev
kv=$(uname -r | awk -F. '{print $1 * 1000 + $2}')
[ "$kv" -ge 6006 ] && SHARED=ok
if [ $SHARED = ok ]; then
  grep -q "shared mmap of direct-I/O files allowed" "$T/tierfs.log" ||
    fail "Linux $(uname -r): the daemon did not ask for shared mmap of direct-I/O files"
fi
fs_log "page_cache=no: a shared mapping is expected to give: $SHARED (kernel $(uname -r))"
python3 - "$M/r.bin" "$T/new/r.bin" "$SHARED" <<'PY' || fail "page_cache=no: mmap"
import errno, mmap, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
ref = open(sys.argv[2], "rb").read()
m = mmap.mmap(fd, 0, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ)
assert m[:] == ref, "a private mapping differs"
m.close()
try:
    m = mmap.mmap(fd, 0, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ)
    assert sys.argv[3] == "ok", "a shared mapping was allowed"
    assert m[:] == ref, "a shared mapping differs"
    m.close()
except OSError as e:
    assert sys.argv[3] == "enodev" and e.errno == errno.ENODEV, e
PY
fs_umount "$M"

# ---- 6. page_cache=auto: a file read footer first is opened around the page cache ----
# fuse_reads_of CMD...: how many FUSE reads CMD made
fuse_reads_of() {
  local r0
  r0=$(stats fuse_reads)
  "$@" || fail "$*"
  echo $(($(stats fuse_reads) - r0))
}
fs_mount "$M" "$S3_BUCKET:/$P" "$OPTS,page_cache=auto"
cmp "$M/r.bin" "$T/new/r.bin" || fail "auto: a scan differs"
n=$(fuse_reads_of cmp "$M/r.bin" "$T/new/r.bin")
[ "$n" -eq 0 ] || fail "auto: a file scanned from its start was not kept in the page cache ($n reads)"
fs_umount "$M"
fs_mount "$M" "$S3_BUCKET:/$P" "$OPTS,page_cache=auto"
SZ=$(stat -c %s "$T/new/r.bin")
tail -c 8 "$M/r.bin" | cmp - <(tail -c 8 "$T/new/r.bin") || fail "auto: the footer differs"
cmp "$M/r.bin" "$T/new/r.bin" || fail "auto: a read after the footer differs"
n=$(fuse_reads_of cmp "$M/r.bin" "$T/new/r.bin")
b0=$(stats fuse_read_bytes)
read4k "$M/r.bin" "$T/new/r.bin" $((3 * MIB + 8 * KIB))
b1=$(stats fuse_read_bytes)
fs_log "auto, after a footer read of $SZ bytes: a second scan made $n FUSE reads, a lone 4 KiB read asked for $((b1 - b0)) bytes"
[ "$n" -ge 8 ] || fail "auto: the opens after a footer read went through the page cache ($n reads)"
[ $((b1 - b0)) -eq 4096 ] || fail "auto: a 4 KiB read after a footer read became $((b1 - b0)) bytes"
if [ $SHARED = ok ]; then # pyarrow's memory_map=True, numpy.memmap: a shared mapping
  python3 - "$M/r.bin" "$T/new/r.bin" <<'PY' || fail "auto: a shared mapping of a file read footer first"
import mmap, sys
with open(sys.argv[1], "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
    assert m[:] == open(sys.argv[2], "rb").read(), "a shared mapping differs"
PY
fi
# (the default is auto where a shared mapping works, yes elsewhere; page_cache=yes keeps
# every file in the page cache)
fs_umount "$M"
for pc in "" "page_cache=yes"; do
  want=0
  [ -z "$pc" ] && [ $SHARED = ok ] && want=8
  fs_mount "$M" "$S3_BUCKET:/$P" "$OPTS${pc:+,$pc}"
  tail -c 8 "$M/r.bin" >/dev/null || fail "${pc:-default}: footer read"
  cmp "$M/r.bin" "$T/new/r.bin" || fail "${pc:-default}: a read after the footer differs"
  n=$(fuse_reads_of cmp "$M/r.bin" "$T/new/r.bin")
  fs_log "${pc:-the default}: after a footer read, a second scan made $n FUSE reads"
  if [ "$want" -eq 0 ]; then
    [ "$n" -eq 0 ] || fail "${pc:-default}: a file read footer first left the page cache ($n reads)"
  else
    [ "$n" -ge "$want" ] || fail "default (auto here): the file read footer first stayed in the page cache"
  fi
  fs_umount "$M"
done
fs_mount "$M" "$S3_BUCKET:/$P" "$OPTS,page_cache=auto"
# a new version of the object is judged afresh: read from its start, it is page-cached
mkfile "$T/v3/r.bin" $((8 * MIB))
seed_direct "$T/v3" "$P"
sleep 1.5 # metadata_ttl=1s
cmp "$M/r.bin" "$T/v3/r.bin" || fail "auto: the new version differs"
n=$(fuse_reads_of cmp "$M/r.bin" "$T/v3/r.bin")
[ "$n" -eq 0 ] || fail "auto: a new version scanned from its start was not page-cached ($n reads)"
fs_umount "$M"
for bad in "page_cache=maybe" "page_cache=no,page_cache_fill=64K"; do
  if "$BIN/tierfs" "$S3_BUCKET:/$P" "$M" -f -o "$TIERFS_OPTS,$bad" 2>"$T/bad.err"; then
    fail "$bad accepted"
  fi
  grep -q "page_cache" "$T/bad.err" || fail "$bad: $(cat "$T/bad.err")"
  [ "$(wc -l <"$T/bad.err")" -eq 1 ] || fail "$bad: more than one line: $(cat "$T/bad.err")"
done
fs_log "PASS"
