#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# test_rel_badinput.sh: bad input beyond test_fs_options.sh. Every value option with
# garbage (empty, negative, overflowing, 3000 bytes, bytes that are no UTF-8); a mountpoint
# that is a file or already mounted; bucket names and prefixes with odd characters; a
# disk_cache on a read-only file system, too small for one region, or holding someone
# else's data (refused, left as it was, unless -o disk_cache_overwrite); a cache of another
# bucket or block size (wiped with one warning, then served). Each failure: one line,
# non-zero exit, nothing mounted.
. "$(dirname "$0")/fs_lib.sh"
. "$(dirname "$0")/rel_lib.sh"
fs_init rel_badinput

M=$T/mnt
mkdir -p "$M"
mkfile "$T/src/a.bin" 300000
seed "$T/src" "$P"
SRC="$S3_BUCKET:/$P"

# expect_fail WHAT PATTERN ARGS...: as in test_fs_options.sh (EF_MOUNTS: mounts expected on $M)
expect_fail() {
  local what=$1 pat=$2 rc
  shift 2
  # -k: timeout's SIGCONT can hang an ASan build's leak check (fs_lib.sh): KILL it then
  local out=${EF_OUT:-$T/out}
  timeout -k 10 60 "$BIN/tierfs" "$@" >"$out" 2>&1
  rc=$?
  [ $rc -ne 0 ] && [ $rc -ne 124 ] && [ $rc -ne 137 ] || fail "$what: exit status $rc: $(head -c 300 "$out")"
  [ "$(wc -l <"$out")" -eq 1 ] || fail "$what: want one line, got: $(head -c 600 "$out")"
  LC_ALL=C grep -qE -- "$pat" "$out" || fail "$what: '$(cat "$out")' does not match '$pat'"
  [ "$(grep -c " $M fuse" /proc/self/mounts)" -eq "${EF_MOUNTS:-0}" ] || fail "$what: left a mount behind"
  return 0
}

# 1. garbage in every option that takes a number, a size, a duration or a word
long=$(printf 'x%.0s' $(seq 1 3000))
n=0
# Two at a time, each with its own output file (none of them mounts): one daemon start
# each, slow on an ASan build.
lanes=()
lane_wait() { wait "${lanes[0]}" || fail "garbage option values: a case failed (its line above)"; lanes=("${lanes[@]:1}"); }
for o in block_size mem_cache_size disk_cache_size direct_io io_engine eviction compression \
  prefetch read_ahead metadata_ttl negative_ttl uid gid file_mode dir_mode max_connections \
  max_threads log_level connect_timeout read_timeout request_timeout retries page_cache_fill; do
  for v in "" -1 " 1" 99999999999999999999999 18446744073709551617 1..2 "1 2" 1e3 "$long" \
    "$(printf '\xff\xfe')" "%n%s"; do
    case "$o=$v" in
      file_mode=" 1" | dir_mode=" 1") continue ;; # strtoul's leading blanks: a valid mode
    esac
    EF_OUT=$T/out.$n expect_fail "-o $o='${v:0:20}'" "^tierfs: bad value .* for $o: expected " "$SRC" "$M" -f -o "$TIERFS_OPTS,$o=$v" &
    lanes+=($!)
    [ ${#lanes[@]} -ge 2 ] && lane_wait
    n=$((n + 1))
  done
done
while [ ${#lanes[@]} -gt 0 ]; do lane_wait; done
rel_note "$n garbage option values: each one line 'bad value ... for OPTION: expected ...', exit 1"

# 2. mountpoints
echo x >"$T/afile"
expect_fail "mountpoint is a file" "mountpoint .*not a directory" "$SRC" "$T/afile" -f -o "$TIERFS_OPTS"
fs_mount "$M" "$SRC" ""
EF_MOUNTS=1 expect_fail "already mounted" "mountpoint .*already mounted" "$SRC" "$M" -o "$TIERFS_OPTS"
EF_MOUNTS=1 expect_fail "already mounted (-f, trailing /)" "already mounted" "$SRC" "$M/" -f -o "$TIERFS_OPTS"
cmp "$T/src/a.bin" "$M/a.bin" || fail "the first mount no longer reads"
fs_umount "$M"

# 3. bucket names and prefixes with odd characters
for b in 'UPPER-case' 'sp ace' 'q?x' 'hash#' 'pct%2F' 'ümlaut' "$(printf 'b%.0s' $(seq 1 300))"; do
  expect_fail "bucket '${b:0:20}'" "^tierfs: (cannot mount .*(no such bucket|access denied|cannot|failed)|bad value .* for the source)" \
    "$b:/x" "$M" -f -o "$TIERFS_OPTS"
done
for pfx in 'odd prefix/ü+%?#&=;,[x]' 'a~b/$c@d!' "tab	x"; do
  s3put "$P$pfx/file.bin" "$T/src/a.bin"
  fs_mount "$M" "$S3_BUCKET:/$P$pfx" ""
  cmp "$T/src/a.bin" "$M/file.bin" || fail "prefix '$pfx': data differs"
  [ "$(ls "$M")" = file.bin ] || fail "prefix '$pfx': listing is '$(ls "$M")'"
  fs_umount "$M"
done
rel_note "odd bucket names fail in one line; prefixes with space, UTF-8, + % ? # & = ; , [ ] ~ \$ @ ! and a tab mount and read back"

# 4. disk_cache paths
mkdir -p "$T/ro"
mount -t tmpfs -o size=4m tmpfs "$T/ro" 2>/dev/null && FS_MOUNTS+=("$T/ro") && HAVE_RO=1 || HAVE_RO=0
if [ $HAVE_RO = 1 ]; then
  echo data >"$T/ro/existing.img"
  # a new file that does not fit (fallocate: ENOSPC) is not left behind
  expect_fail "cache file larger than its file system" "cache path not usable: $T/ro/full.img" "$SRC" "$M" -f \
    -o "$TIERFS_OPTS,disk_cache=$T/ro/full.img,disk_cache_size=64M"
  [ -e "$T/ro/full.img" ] && fail "a cache file that could not be made was left behind"
  mount -o remount,ro "$T/ro" || fail "remount ro"
  expect_fail "cache on a read-only fs (new file)" "cache path not usable: $T/ro/new.img" "$SRC" "$M" -f \
    -o "$TIERFS_OPTS,disk_cache=$T/ro/new.img"
  expect_fail "cache on a read-only fs (existing file)" "cache path not usable: $T/ro/existing.img" "$SRC" "$M" -f \
    -o "$TIERFS_OPTS,disk_cache=$T/ro/existing.img"
  umount "$T/ro"
fi
head -c 1048576 /dev/zero >"$T/small.img"
expect_fail "cache file too small for a region" "cache path not usable: $T/small.img: .*too small: .*at least 49 MiB" \
  "$SRC" "$M" -f -o "$TIERFS_OPTS,disk_cache=$T/small.img"
# a size below three regions is refused by name before any file is made
for sz in 16M 48M; do
  expect_fail "disk_cache_size=$sz" "^tierfs: bad value '$sz' for disk_cache_size: expected a size of at least 49M" \
    "$SRC" "$M" -f -o "$TIERFS_OPTS,disk_cache=$T/new-small.img,disk_cache_size=$sz"
  [ -e "$T/new-small.img" ] && fail "disk_cache_size=$sz made the cache file"
done
# someone else's short file with a larger disk_cache_size: not extended either
head -c 100000 /dev/urandom >"$T/theirs-short.img"
cp "$T/theirs-short.img" "$T/theirs-short.orig"
expect_fail "short cache file with other data" "cache path not usable: $T/theirs-short.img: it holds data that is not a tierfs cache" \
  "$SRC" "$M" -f -o "$TIERFS_OPTS,disk_cache=$T/theirs-short.img,disk_cache_size=64M"
cmp -s "$T/theirs-short.img" "$T/theirs-short.orig" || fail "a refused short cache file was changed (size $(stat -c %s "$T/theirs-short.img"))"
# someone else's data: refused, left untouched
mkfile "$T/theirs.img" $((64 * 1048576))
cp "$T/theirs.img" "$T/theirs.orig"
expect_fail "cache file with other data" "cache path not usable: $T/theirs.img: it holds data that is not a tierfs cache" \
  "$SRC" "$M" -f -o "$TIERFS_OPTS,disk_cache=$T/theirs.img,block_size=64K"
cmp -s "$T/theirs.img" "$T/theirs.orig" || fail "a refused cache file was modified"
fs_mount "$M" "$SRC" "disk_cache=$T/theirs.img,disk_cache_overwrite,block_size=64K"
cmp "$T/src/a.bin" "$M/a.bin" || fail "read with disk_cache_overwrite"
fs_umount "$M"
grep -q "unknown data" "$T/tierfs.log" || fail "no log line about formatting unknown data"
rel_note "disk_cache on a read-only fs, on a full fs (nothing left behind), a 1 MiB file, disk_cache_size below three regions, a file of random data (also a shorter one with a larger size: not extended): one line, exit 1, data left as it was; -o disk_cache_overwrite formats it"

# 5. the cache of another bucket or block size: wiped with one warning, then reused
OPTS="disk_cache=$T/cache.img,disk_cache_size=64M,block_size=64K"
fs_mount "$M" "$SRC" "$OPTS"
cmp "$T/src/a.bin" "$M/a.bin" || fail "first read"
fs_umount "$M"
: >"$T/tierfs.log"
fs_mount "$M" "$SRC" "disk_cache=$T/cache.img,block_size=128K"
cmp "$T/src/a.bin" "$M/a.bin" || fail "read after a block size change"
fs_umount "$M"
[ "$(grep -c 'formatting' "$T/tierfs.log")" -eq 1 ] && grep -q "block size differs" "$T/tierfs.log" ||
  fail "block size change: $(grep disk "$T/tierfs.log")"
B2=tierfs-rel-$$
node "$S3CLI" --env "$TIERFS_S3_ENV" mb "$B2" >/dev/null || fail "mb $B2"
s3put_b2() { node "$S3CLI" --env "$TIERFS_S3_ENV" put "$B2" "$1" "$2" >/dev/null || fail "put $B2/$1"; }
s3put_b2 a.bin "$T/src/a.bin"
: >"$T/tierfs.log"
fs_mount "$M" "$B2" "disk_cache=$T/cache.img,block_size=128K"
counters_reset
cmp "$T/src/a.bin" "$M/a.bin" || fail "read from the other bucket"
[ "$(counter get)" -gt 0 ] || fail "the other bucket's read was served from the old cache"
fs_umount "$M"
node "$S3CLI" --env "$TIERFS_S3_ENV" rm "$B2" a.bin >/dev/null
node "$S3CLI" --env "$TIERFS_S3_ENV" rb "$B2" >/dev/null
[ "$(grep -c 'formatting' "$T/tierfs.log")" -eq 1 ] && grep -q "identity differs" "$T/tierfs.log" ||
  fail "bucket change: $(grep disk "$T/tierfs.log")"
rel_note "cache of another block size or bucket: one warning line ('block size differs' / 'cache identity differs'), wiped, reads right"
fs_log "PASS"
