#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# test_fs_readdir.sh: `ls -l` of a directory of 10,000 keys is one paged ListObjectsV2
# sequence (10 pages of 1000) and no HEAD; the listing is then cached for metadata_ttl.
. "$(dirname "$0")/fs_lib.sh"
fs_init fs_readdir

N=10000
mkdir -p "$T/src/big"
(cd "$T/src/big" && seq -f 'key-%05g.dat' 1 $N | xargs touch)
echo hello >"$T/src/big/key-00042.dat"
seed_direct "$T/src" "$P"
M=$T/mnt
fs_mount "$M" "$S3_BUCKET:/$P" "block_size=64K,metadata_ttl=60"
ls "$M" >/dev/null

counters_reset
n=$(ls -l "$M/big" | grep -c '^-r--r--r--')
[ "$n" -eq $N ] || fail "ls -l shows $n files, want $N"
lists=$(counter list) heads=$(counter head)
fs_log "ls -l of $N keys: $lists LIST, $heads HEAD, $(counter get) GET"
[ "$lists" -ge 10 ] && [ "$lists" -le 11 ] || fail "$lists LIST requests for $N keys (want 10)"
[ "$heads" -eq 0 ] || fail "$heads HEAD requests during ls -l"

# Cached: again, plus stats, a read of one file and a lookup of a missing name in the dir.
counters_reset
[ "$(ls -l "$M/big" | grep -c '^-r')" -eq $N ] || fail "second ls -l"
stat "$M/big/key-09999.dat" >/dev/null || fail "stat"
[ ! -e "$M/big/not-there" ] || fail "missing name exists"
[ "$(cat "$M/big/key-00042.dat")" = hello ] || fail "read in the big dir"
[ "$(counter list)" -eq 0 ] || fail "cached listing re-listed: $(counter list) LIST"
[ "$(counter head)" -eq 0 ] || fail "cached listing caused $(counter head) HEAD"
find "$M/big" -type f | wc -l | grep -qx $N || fail "find count"
fs_umount "$M"
fs_log "PASS"
