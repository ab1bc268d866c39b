#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# test_fs_tree.sh: a tree of 300+ objects reads back byte for byte; names, Hive-style
# layouts, special characters, hidden keys, shadowing, markers, modes and owners.
. "$(dirname "$0")/fs_lib.sh"
fs_init fs_tree

BS=65536
SRC=$T/src
# sizes around the block boundaries and a few multi-block files
for s in 0 1 4095 $((BS - 1)) $BS $((BS + 1)) $((2 * BS)) $((3 * BS + 7)) $((5 * 1048576 + 17)) 3145728; do
  mkfile "$SRC/sizes/f$s" "$s"
done
# Hive-style: directories that hold only directories
for m in 01 02 03 04 05 06 07 08 09 10 11 12; do
  for d in 01 02 03 04 05 06 07 08 09 10; do
    mkfile "$SRC/table/year=2024/month=$m/day=$d/part-0.parquet" $((RANDOM * 3 % 70000))
  done
done
# deep nesting
mkfile "$SRC/a/b/c/d/e/f/g/leaf.bin" 70001
# many small files in one directory
for i in $(seq 1 150); do mkfile "$SRC/many/file-$i.txt" $((RANDOM % 3000)); done
# special characters (all valid file names)
for n in 'sp ace.txt' 'ümlaut-ß.txt' 'a+b=c&d.txt' 'percent%41%2F.txt' "quote'\"x.txt" 'semi;colon' \
  'hash#tag' 'question?.txt' 'star*.txt' 'tilde~' '[brackets]' '{braces}' 'comma,name' 'colon:name' \
  'emoji-😀.txt' 'back\slash' '.hidden' '..dots' "$(printf 'L%.0s' $(seq 1 255))"; do
  mkfile "$SRC/special/$n" $((RANDOM % 5000 + 1))
done
count=$(find "$SRC" -type f | wc -l)
[ "$count" -ge 300 ] || fail "only $count source files"
seed "$SRC" "${P}tree/"

# Keys that are no file names are hidden; a directory shadows a file; a marker is a dir.
mkfile "$T/x" 10
for k in 'edge/bad//double' 'edge/dot/./x' 'edge/dotdot/../y' "edge/long/$(printf 'N%.0s' $(seq 1 256))" \
  'edge/shadow' 'edge/shadow/inner.txt' 'edge/marker/' 'edge/ok.txt'; do
  s3put "$P$k" "$T/x"
done

M=$T/mnt
fs_mount "$M" "$S3_BUCKET:/$P" "block_size=64K,disk_cache=$T/cache.img,disk_cache_size=64M"

# Names never listed: lookups go to S3 (HEAD + LIST in parallel), not to a listing.
counters_reset
cmp -s "$T/x" "$M/edge/ok.txt" || fail "edge/ok.txt differs"
[ -d "$M/edge/shadow" ] || fail "directory 'shadow' should shadow the file"
[ -f "$M/edge/shadow/inner.txt" ] || fail "shadow/inner.txt missing"
[ -d "$M/edge/marker" ] || fail "marker/ should be a directory"
[ ! -e "$M/edge/nonexistent" ] || fail "nonexistent name exists"
[ "$(counter head)" -ge 3 ] || fail "lookups without a listing should HEAD"

fs_log "comparing $count files"
# byte for byte, 16 readers at a time (each small file costs a GET round trip)
(cd "$SRC" && find . -type f -print0) |
  xargs -0 -P 16 -I{} cmp "$SRC/{}" "$M/tree/{}" || fail "file contents differ"
got=$(cd "$M/tree" && find . -type f | wc -l)
[ "$got" -eq "$count" ] || fail "mount shows $got files, source has $count"
# directory listings equal (names, not only contents)
diff <(cd "$SRC" && find . | sort) <(cd "$M/tree" && find . | sort) || fail "name sets differ"

# Hive layout: year=2024 holds only month=NN directories
[ "$(ls "$M/tree/table/year=2024" | wc -l)" -eq 12 ] || fail "year=2024 should hold 12 months"
[ -d "$M/tree/table/year=2024/month=07/day=03" ] || fail "day=03 missing"

# edge cases
[ "$(ls -A "$M/edge/bad")" = "" ] || fail "'bad//double' should be hidden"
[ "$(ls -A "$M/edge/dot")" = "" ] || fail "'dot/./x' should be hidden"
[ "$(ls -A "$M/edge/dotdot")" = "" ] || fail "'dotdot/../y' should be hidden"
[ "$(ls -A "$M/edge/long")" = "" ] || fail "a 256-byte name should be hidden"
[ "$(ls -A "$M/edge/marker")" = "" ] || fail "marker/ should be an empty dir"
[ "$(ls "$M/edge" | tr '\n' ' ')" = "bad dot dotdot long marker ok.txt shadow " ] ||
  fail "edge listing: $(ls "$M/edge" | tr '\n' ' ')"

# modes, owner, sizes, read-only
[ "$(stat -c %a "$M/tree/sizes/f1")" = 444 ] || fail "file mode is not 0444"
[ "$(stat -c %a "$M/tree/table")" = 555 ] || fail "dir mode is not 0555"
[ "$(stat -c %u "$M/tree/sizes/f1")" = "$(id -u)" ] || fail "owner is not the mounting user"
[ "$(stat -c %s "$M/tree/sizes/f$((BS + 1))")" = $((BS + 1)) ] || fail "size wrong"
if (echo x >"$M/tree/sizes/f1") 2>/dev/null; then fail "write succeeded on a read-only mount"; fi
if mkdir "$M/newdir" 2>/dev/null; then fail "mkdir succeeded on a read-only mount"; fi
df "$M" >/dev/null || fail "statfs"
fs_umount "$M"

# ownership and mode options
fs_mount "$M" "s3://$S3_BUCKET/${P}tree" "uid=1234,gid=4321,file_mode=0440,dir_mode=0750"
[ "$(stat -c '%a %u %g' "$M/sizes/f1")" = "440 1234 4321" ] || fail "file_mode/uid/gid not applied"
[ "$(stat -c '%a' "$M/sizes")" = "750" ] || fail "dir_mode not applied"
cmp -s "$SRC/sizes/f3145728" "$M/sizes/f3145728" || fail "s3:// source form reads differ"
fs_umount "$M"
fs_log "PASS"
