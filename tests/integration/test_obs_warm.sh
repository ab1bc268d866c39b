#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# test_obs_warm.sh: tierfs-cache warm fills a disk cache offline; mounting with the same
# options then reads every warmed file with ZERO GETs. Also: --keys from stdin, a second
# warm skips what is cached, a cache a mount holds is refused, warm stops (exit 3) at
# capacity, verify finds a byte flipped in a warmed block, and warm refuses a file of other
# data exactly as the daemon does (both build their cache with fs_cache_conf) unless
# disk_cache_overwrite says to format it.
. "$(dirname "$0")/fs_lib.sh"
fs_init obs_warm

mkfile "$T/src/a.bin" $((10 * 65536 + 100))
mkfile "$T/src/d/b.bin" 70000
mkfile "$T/src/d/c.bin" 1
seed "$T/src" "$P"
M=$T/mnt
C=$T/cache.img
OPTS="$TIERFS_OPTS,block_size=64K,disk_cache_size=128M"

# only d/ through --keys on stdin
printf 'd/b.bin\n/d/c.bin\n' | "$BIN/tierfs-cache" warm --keys - "$C" "$S3_BUCKET:/$P" -o "$OPTS" \
  >"$T/w1.txt" 2>&1 || { cat "$T/w1.txt" >&2; fail "warm --keys"; }
grep -q "warmed 3 blocks" "$T/w1.txt" || { cat "$T/w1.txt" >&2; fail "warm --keys: not 3 blocks"; }
# the whole prefix: d/ is skipped as cached
"$BIN/tierfs-cache" warm -j 4 "$C" "$S3_BUCKET:/$P" -o "$OPTS" >"$T/w2.txt" 2>&1 ||
  { cat "$T/w2.txt" >&2; fail "warm"; }
grep -q "warmed 11 blocks .*, 3 already cached, 0 failed" "$T/w2.txt" || { cat "$T/w2.txt" >&2; fail "warm counts"; }

fs_mount "$M" "$S3_BUCKET:/$P" "block_size=64K,disk_cache=$C"
counters_reset
for f in a.bin d/b.bin d/c.bin; do cmp "$T/src/$f" "$M/$f" || fail "$f differs"; done
[ "$(counter get)" -eq 0 ] || fail "reading warmed files issued $(counter get) GETs"
# a cache the mount holds is refused, naming the lock
"$BIN/tierfs-cache" warm "$C" "$S3_BUCKET:/$P" -o "$OPTS" >"$T/w3.txt" 2>&1 && fail "warm of a mounted cache succeeded"
grep -q "in use by a running tierfs" "$T/w3.txt" || { cat "$T/w3.txt" >&2; fail "warm busy message"; }
fs_umount "$M"

# someone else's data: the daemon and warm refuse it alike and leave it as it was
F=$T/foreign.img
head -c 1048576 /dev/urandom >"$F"
truncate -s 128M "$F" # as large as the cache the options ask for: refused for what it holds
sum0=$(md5sum <"$F")
timeout -k 5 60 "$BIN/tierfs" "$S3_BUCKET:/$P" "$M" -o "$OPTS,disk_cache=$F" \
  >"$T/d5.txt" 2>&1 && { fs_umount "$M"; fail "the daemon mounted over a foreign disk_cache"; }
grep -q "not a tierfs cache" "$T/d5.txt" || { cat "$T/d5.txt" >&2; fail "daemon: foreign cache message"; }
"$BIN/tierfs-cache" warm "$F" "$S3_BUCKET:/$P" -o "$OPTS,eviction=lru" >"$T/w5.txt" 2>&1
rc=$?
[ $rc -eq 2 ] || { cat "$T/w5.txt" >&2; fail "warm of a foreign file: exit $rc, want 2"; }
grep -q "not a tierfs cache (-o disk_cache_overwrite formats it)" "$T/w5.txt" ||
  { cat "$T/w5.txt" >&2; fail "warm: foreign cache message"; }
[ "$(md5sum <"$F")" = "$sum0" ] || fail "a refused warm changed the foreign file"
"$BIN/tierfs-cache" warm "$F" "$S3_BUCKET:/$P" -o "$OPTS,eviction=lru,disk_cache_overwrite" \
  >"$T/w6.txt" 2>&1 || { cat "$T/w6.txt" >&2; fail "warm with disk_cache_overwrite"; }
grep -q "warmed 14 blocks" "$T/w6.txt" || { cat "$T/w6.txt" >&2; fail "warm with disk_cache_overwrite: not 14 blocks"; }

# capacity: a 64M disk cache (3 regions of 16M, 2 kept free) takes 16M, not 40M
mkfile "$T/big/big.bin" $((40 << 20))
seed_direct "$T/big" "${P}big/"
"$BIN/tierfs-cache" warm "$T/small.img" "$S3_BUCKET:/${P}big" -o "$TIERFS_OPTS,disk_cache_size=64M" \
  >"$T/w4.txt" 2>&1
rc=$?
[ $rc -eq 3 ] || { cat "$T/w4.txt" >&2; fail "warm past capacity: exit $rc, want 3"; }
grep -q "would not fit" "$T/w4.txt" || fail "warm past capacity: no message"

# verify after warm-up, then flip one byte of a warmed block's data
"$BIN/tierfs-cache" verify "$C" >/dev/null || fail "verify of a warmed cache"
# A full block: the middle of its on-disk entry is value bytes. (A tiny entry's middle can
# be the padding after its value, which no checksum covers, by design.)
off=$("$BIN/tierfs-cache" verify -v "$C" | grep ', 65536 value bytes$' |
  sed -n 's/^ok: .*(device offset \([0-9]*\), \([0-9]*\) bytes).*/\1 \2/p' | head -n 1)
set -- $off
[ -n "${1:-}" ] || fail "no entry offset from verify -v"
pos=$(($1 + $2 / 2)) # inside that block's value
old=$(od -An -tx1 -j $pos -N1 "$C" | tr -d ' ')
new=$(printf '%02x' $((0x$old ^ 0xff)))
printf "\\x$new" | dd of="$C" bs=1 seek=$pos conv=notrunc status=none
[ "$(od -An -tx1 -j $pos -N1 "$C" | tr -d ' ')" = "$new" ] || fail "flip did not land"
"$BIN/tierfs-cache" verify "$C" >"$T/v.txt" 2>&1
rc=$?
[ $rc -eq 1 ] && grep -q "1 corrupt" "$T/v.txt" || { cat "$T/v.txt" >&2; fail "verify after a flipped byte: exit $rc"; }
fs_log "PASS"
