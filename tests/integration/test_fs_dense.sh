#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# test_fs_dense.sh: dense random reads (issue #17 point 5, fs/dense.c). A reader doing
# random preads across a cold 96 MiB file (test_fs_check rand: one thread, each read
# waiting for the last, as an index walk does) has the whole file fetched in the
# background once it has read a thirty-second of its blocks (at least 8): one sweep, the file
# pulled at most once (1.05x), in multi-block GETs, and afterwards reads of every part of
# it make no GET. A reader of a file over dense_prefetch, one that reads only a few
# blocks, and a mount with dense_prefetch=0 fetch one block per read and sweep nothing.
# Every byte is checked. Against the shaped server (30 ms first byte, 80 MB/s per
# response).
. "$(dirname "$0")/fs_lib.sh"
fs_init fs_dense

MB=1048576
SIZE=$((96 * MB + 4321)) # 97 blocks of 1 MiB
mkfile "$T/src/d.bin" $SIZE
mkfile "$T/src/e.bin" $SIZE
seed_direct "$T/src" "$P"
M=$T/mnt
stat_of() { python3 -c 'import json,os,sys; print(json.loads(os.getxattr(sys.argv[1], "user.tierfs.stats"))[sys.argv[2]])' "$M" "$1"; }
# rand FILE N SEED: N random preads of up to 4 KiB, each checked against the source
rand() {
  "$TESTBIN/test_fs_check" rand "$M/$1" "$T/src/$1" "$2" "$3" 4096 >"$T/rand.log" 2>&1 ||
    { cat "$T/rand.log" >&2; fail "random reads of $1: wrong bytes"; }
}
# quiet: wait until no GET has been sent for a second (the sweep is done)
quiet() {
  local last=-1 now i
  for i in $(seq 1 60); do
    now=$(counter get)
    [ "$now" = "$last" ] && return 0
    last=$now
    sleep 1
  done
  fail "GETs still going after 60 s"
}

# ---- 1. dense: the rest of the file is fetched once, in large GETs ----
fs_mount "$M" "$S3_BUCKET:/$P" "mem_cache_size=512M"
stat "$M/d.bin" "$M/e.bin" >/dev/null || fail "stat"
proxy '{"ttfb_ms":30,"bandwidth":80000000}'
counters_reset
rand d.bin 300 11
quiet
bytes=$(counter bytes_sent) gets=$(counter get)
sweeps=$(stat_of dense_sweeps) dblocks=$(stat_of dense_blocks)
fs_log "dense: 300 random reads of a cold $SIZE-byte file: S3 sent $bytes bytes in $gets GETs; $sweeps sweep(s) handed $dblocks blocks to the cache"
[ "$sweeps" -eq 1 ] || fail "dense: $sweeps sweeps for one file read at random"
[ "$dblocks" -ge 60 ] || fail "dense: the sweep took only $dblocks of 97 blocks"
[ $((bytes * 100)) -le $((SIZE * 105)) ] || fail "dense: S3 sent $bytes bytes for a $SIZE-byte file (over 1.05x)"
# the reads before the sweep (at most 8 blocks' worth plus those issued with it) and the
# sweep's GETs of up to 8 blocks
[ "$gets" -le 40 ] || fail "dense: $gets GETs: the sweep did not fetch in large GETs"
counters_reset
rand d.bin 300 12
cmp "$M/d.bin" "$T/src/d.bin" || fail "dense: d.bin differs"
[ "$(counter get)" -eq 0 ] || fail "dense: $(counter get) GETs after the sweep"

# ---- 2. a few random reads: below the count, no sweep ----
counters_reset
rand e.bin 5 13
quiet
gets=$(counter get) bytes=$(counter bytes_sent)
fs_log "five random reads: $gets GETs, $bytes bytes, sweeps $(stat_of dense_sweeps)"
[ "$(stat_of dense_sweeps)" -eq 1 ] || fail "five random reads started a sweep"
[ "$gets" -le 5 ] && [ "$bytes" -le $((5 * MB)) ] || fail "five random reads: $gets GETs, $bytes bytes"
proxy '{}'
fs_umount "$M"

# ---- 3. a file over dense_prefetch, and dense_prefetch=0: one block per read ----
for opt in dense_prefetch=32M dense_prefetch=0; do
  fs_mount "$M" "$S3_BUCKET:/$P" "mem_cache_size=512M,$opt"
  stat "$M/d.bin" >/dev/null || fail "stat"
  counters_reset
  rand d.bin 60 14
  quiet
  gets=$(counter get) bytes=$(counter bytes_sent)
  fs_log "$opt: 60 random reads: $gets GETs, $bytes bytes, sweeps $(stat_of dense_sweeps)"
  [ "$(stat_of dense_sweeps)" -eq 0 ] || fail "$opt: a sweep started"
  [ "$gets" -le 60 ] && [ "$bytes" -le $((gets * MB)) ] || fail "$opt: $gets GETs, $bytes bytes for 60 random reads"
  fs_umount "$M"
done
fs_log "PASS"
