#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# test_fs_readdir.sh: `ls -l` of a directory of 10,000 keys is one paged ListObjectsV2
# sequence (10 pages of 1000) and no HEAD; the listing is then cached for metadata_ttl,
# also after the kernel forgot the inodes (drop_caches), and only that long.
. "$(dirname "$0")/fs_lib.sh"
fs_init fs_readdir

N=10000
mkdir -p "$T/src/big"
(cd "$T/src/big" && seq -f 'key-%05g.dat' 1 $N | xargs touch)
echo hello >"$T/src/big/key-00042.dat"
for d in 1 2 3 4 5 6; do
  for e in a b c; do
    mkdir -p "$T/src/tree/d$d/$e"
    for f in 1 2 3; do echo "$d$e$f" >"$T/src/tree/d$d/$e/f$f.txt"; done
  done
  echo "$d" >"$T/src/tree/d$d/top.txt"
done
seed_direct "$T/src" "$P"
M=$T/mnt
fs_mount "$M" "$S3_BUCKET:/$P" "block_size=64K,metadata_ttl=60"
ls "$M" >/dev/null

# The kernel lowers the mount's read-ahead when it answers FUSE INIT; tierfs sets it
# afterwards, so the default read_ahead=1M must be what the bdi says.
ra_kb() { cat "/sys/class/bdi/$(mountpoint -d "$1")/read_ahead_kb" 2>/dev/null; }
check_ra() { # check_ra MNT KB
  local i
  for i in $(seq 1 100); do [ "$(ra_kb "$1")" = "$2" ] && return 0; sleep 0.05; done
  fail "read_ahead_kb of $1 is '$(ra_kb "$1")', want $2"
}
if [ -d /sys/class/bdi ]; then check_ra "$M" 1024; fi

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

# Listings, attributes and "no such file" answers are tierfs's, not the kernel's: after
# the kernel drops every dentry and inode (FORGET), a walk within metadata_ttl sends no
# request; once the TTL is over, it lists again.
walk() { # walk DIR: every name, every file's size, one missing name per directory
  find "$1" -printf '%p %s\n' | sort >"$T/walk.$2"
  find "$1" -type d | while read -r d; do [ ! -e "$d/not-there" ] || echo "$d/not-there"; done >>"$T/walk.$2"
}
if [ -w /proc/sys/vm/drop_caches ]; then
  TTL=10
  M2=$T/mnt2
  # Flags as name=value too (path_style=1 and allow_other=yes reach S3 and libfuse).
  fs_mount "$M2" "$S3_BUCKET:/${P}tree" \
    "metadata_ttl=$TTL,negative_ttl=$TTL,path_style=1,allow_other=yes,read_ahead=2M"
  check_ra "$M2" 2048
  grep -qs " $M2 fuse.*allow_other" /proc/self/mounts || fail "allow_other=yes did not reach the mount"
  counters_reset
  t0=$(date +%s)
  walk "$M2" cold
  cold_lists=$(counter list)
  [ "$(grep -c 'f[123].txt' "$T/walk.cold")" -eq 54 ] || fail "cold walk: $(cat "$T/walk.cold")"
  grep -q not-there "$T/walk.cold" && fail "a missing name exists"
  [ "$cold_lists" -ge 25 ] || fail "cold walk sent only $cold_lists LIST"
  counters_reset
  sync
  echo 2 >/proc/sys/vm/drop_caches # dentries and inodes: the kernel sends FORGET
  walk "$M2" warm
  t1=$(date +%s)
  lists=$(counter list) heads=$(counter head)
  fs_log "tree walk: cold $cold_lists LIST; after drop_caches $lists LIST, $heads HEAD ($((t1 - t0)) s)"
  cmp -s "$T/walk.cold" "$T/walk.warm" || fail "walk after drop_caches differs"
  if [ $((t1 - t0)) -lt $((TTL - 1)) ]; then
    [ "$lists" -eq 0 ] || fail "$lists LIST after drop_caches within metadata_ttl (want 0)"
    [ "$heads" -eq 0 ] || fail "$heads HEAD after drop_caches within metadata_ttl (want 0)"
  else
    fs_log "machine too slow to check the warm walk within metadata_ttl=$TTL s"
  fi
  left=$((TTL + 1 - ($(date +%s) - t0)))
  [ "$left" -le 0 ] || sleep "$left"
  counters_reset
  walk "$M2" expired
  cmp -s "$T/walk.cold" "$T/walk.expired" || fail "walk after the TTL differs"
  [ "$(counter list)" -gt 0 ] || fail "no LIST after metadata_ttl expired"
  fs_log "after metadata_ttl: $(counter list) LIST, $(counter head) HEAD"
  fs_umount "$M2"
else
  fs_log "not root: the drop_caches check is skipped"
fi
fs_log "PASS"
