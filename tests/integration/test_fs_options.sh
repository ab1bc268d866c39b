#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# test_fs_options.sh: every bad option and every startup failure stops the mount with ONE
# line naming the cause and a non-zero exit, in the foreground and daemonized; mount(8)
# noise is accepted; every option is in --help and in the man page.
. "$(dirname "$0")/fs_lib.sh"
fs_init fs_options

M=$T/mnt
mkdir -p "$M"
echo x >"$T/x"
s3put "${P}x" "$T/x"

# expect_fail WHAT PATTERN [FOREGROUND] -- ARGS...: tierfs ARGS exits non-zero, prints
# exactly one line matching PATTERN, and leaves nothing mounted.
expect_fail() {
  local what=$1 pat=$2 rc
  shift 2
  # -k: timeout's SIGCONT can hang an ASan build's leak check (fs_lib.sh): KILL it then
  timeout -k 10 60 "$BIN/tierfs" "$@" >"$T/out" 2>&1
  rc=$?
  [ $rc -ne 0 ] && [ $rc -ne 124 ] && [ $rc -ne 137 ] || fail "$what: exit status $rc"
  [ "$(wc -l <"$T/out")" -eq 1 ] || fail "$what: want one line, got: $(cat "$T/out")"
  grep -qE -- "$pat" "$T/out" || fail "$what: '$(cat "$T/out")' does not match '$pat'"
  fs_is_mounted "$M" && fail "$what: left a mount behind"
  return 0
}

SRC="$S3_BUCKET:/$P"
for bad in block_size=3M block_size=abc block_size=32K block_size=32M mem_cache_size=lots \
  disk_cache_size=1K direct_io=maybe io_engine=aio eviction=fifo compression=zstd \
  metadata_ttl=forever negative_ttl=-1 max_connections=0 max_threads=0 uid=no-such-user-x \
  gid=no-such-group-x file_mode=999 dir_mode=rwx endpoint=ftp://x log_level=loud prefetch=8X \
  read_ahead=-1 disk_cache= connect_timeout=0 read_timeout=1.5 request_timeout=50ms retries=101 page_cache_fill=3K; do
  name=${bad%%=*}
  expect_fail "-o $bad" "^tierfs: bad value .* for $name: expected " "$SRC" "$M" -f -o "$TIERFS_OPTS,$bad"
done
expect_fail "secret without key" "access_key" "$SRC" "$M" -f -o "endpoint=$S3_ENDPOINT,secret_key=x"
expect_fail "unknown option" "unknown option.*frobnicate" "$SRC" "$M" -f -o "$TIERFS_OPTS,frobnicate"
expect_fail "bad source" "bad value .* for the source" "$S3_BUCKET:/a//b" "$M" -f -o "$TIERFS_OPTS"
expect_fail "no mountpoint" "missing MOUNTPOINT" "$SRC" -f -o "$TIERFS_OPTS"
expect_fail "missing mountpoint dir" "mountpoint .*No such file" "$SRC" "$T/nope" -o "$TIERFS_OPTS"

# startup failures, foreground and daemonized (the parent exits with the child's status)
for fg in -f ""; do
  expect_fail "no such bucket $fg" "no such bucket 'no-such-bucket-$$'" "no-such-bucket-$$" "$M" $fg -o "$TIERFS_OPTS"
  expect_fail "access denied $fg" "access denied" "$SRC" "$M" $fg \
    -o "endpoint=$S3_ENDPOINT,path_style,access_key=$S3_ACCESS_KEY,secret_key=wrong-secret"
  expect_fail "unreachable $fg" "cannot reach the endpoint http://127.0.0.1:1" "$SRC" "$M" $fg \
    -o "endpoint=http://127.0.0.1:1,path_style,access_key=a,secret_key=b"
  expect_fail "cache in missing dir $fg" "cache path not usable: $T/no/dir/cache.img" "$SRC" "$M" $fg \
    -o "$TIERFS_OPTS,disk_cache=$T/no/dir/cache.img"
  expect_fail "cache is a directory $fg" "cache path not usable: $T" "$SRC" "$M" $fg \
    -o "$TIERFS_OPTS,disk_cache=$T"
done

# mount(8)/fstab words are accepted; a daemonized mount returns 0 once it is live
"$BIN/tierfs" "$SRC" "$M" -o "$TIERFS_OPTS,rw,ro,dev,suid,nodev,nosuid,exec,noatime,_netdev,nofail,auto,defaults,x-systemd.automount,comment=x" \
  >"$T/out" 2>&1 || fail "mount with mount(8) options: $(cat "$T/out")"
FS_MOUNTS+=("$M")
fs_is_mounted "$M" || fail "daemonized mount not live when tierfs returned"
[ "$(cat "$M/x")" = x ] || fail "read through the daemonized mount"
grep " $M " /proc/self/mounts | grep -q "fuse.tierfs" || fail "mount type is not fuse.tierfs"
grep " $M " /proc/self/mounts | grep -q " ro," || fail "mount is not read-only"
fusermount3 -u "$M" || fail "unmount"

# --help, --version and the man page cover every option
"$BIN/tierfs" --help >"$T/help" || fail "--help exit status"
"$BIN/tierfs" --version | grep -q '^tierfs [0-9]' || fail "--version"
# Every name of the option table, valued (FS_OPT) and flags (FS_BOOL), matched as a whole
# word (so "prefetch" is not found inside "prefetch_window") in --help and in the page as
# a reader sees it (rendered to text).
MAN=$TIERFS_SOURCE_DIR/man/tierfs.1
groff -mandoc -Tascii -rLL=2000n -rHY=0 -P-cbou "$MAN" 2>/dev/null | col -bx >"$T/man.txt"
[ -s "$T/man.txt" ] || fail "cannot render $MAN (groff)"
opts=$( { grep -oE 'FS_OPT\("[a-z_]+' "$TIERFS_SOURCE_DIR/fs/opts.c";
          grep -oE 'FS_BOOL\("[a-z_]+' "$TIERFS_SOURCE_DIR/fs/opts.c"; } | cut -d'"' -f2 | sort -u)
nbool=$(grep -cE '^ *FS_BOOL\("' "$TIERFS_SOURCE_DIR/fs/opts.c")
[ "$(wc -w <<<"$opts")" -ge 30 ] && [ "$nbool" -ge 4 ] ||
  fail "only $(wc -w <<<"$opts") options ($nbool flags) found in fs/opts.c: the table moved?"
for o in $opts allow_other; do
  grep -qw -- "$o" "$T/help" || fail "option $o missing from --help"
  grep -qw -- "$o" "$T/man.txt" || fail "option $o missing from $MAN"
done
fs_log "PASS"
