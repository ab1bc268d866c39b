#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# test_fs_fstab.sh: `mount -t fuse.tierfs` and an fstab line (mount -T FILE) work through
# mount.fuse3 with the options mount(8) adds; a bad option in fstab fails the mount with
# the one-line message; umount ends the daemon.
#
# mount(8) starts helpers without the caller's PATH, and mount.fuse3 runs `tierfs` through
# /bin/sh, so tierfs must be in a standard directory. Rather than installing into the
# system, the test runs in a private mount namespace where this build's tierfs is bound
# over /usr/local/bin.
if [ -z "${FS_IN_NS:-}" ]; then
  command -v unshare >/dev/null || { echo "SKIP: no unshare" >&2; exit 77; }
  unshare -m --propagation private true 2>/dev/null || { echo "SKIP: cannot unshare the mount namespace" >&2; exit 77; }
  FS_IN_NS=1 exec unshare -m --propagation private bash "$0" "$@"
fi
. "$(dirname "$0")/fs_lib.sh"
fs_init fs_fstab

command -v mount.fuse3 >/dev/null || { echo "SKIP: no mount.fuse3" >&2; exit 77; }
[ "$(id -u)" -eq 0 ] || { echo "SKIP: mount(8) of FUSE needs root here" >&2; exit 77; }
# mount.fuse3 runs "tierfs SOURCE MOUNTPOINT -o OPTIONS"
mkdir -p "$T/pathbin"
ln -s "$BIN/tierfs" "$T/pathbin/tierfs"
mount --bind "$T/pathbin" /usr/local/bin || { echo "SKIP: cannot bind over /usr/local/bin" >&2; exit 77; }

mkfile "$T/src/dir/file.bin" 300000
seed "$T/src" "$P"
M=$T/mnt
mkdir -p "$M"
FS_MOUNTS+=("$M")

wait_gone() { # the daemon flushes the disk tier after the kernel lets go
  local i
  for i in $(seq 1 100); do fuser "$1" >/dev/null 2>&1 || return 0; sleep 0.1; done
  fail "$1 still in use 10 s after umount"
}

mount -t fuse.tierfs "$S3_BUCKET:/$P" "$M" \
  -o "$TIERFS_OPTS,_netdev,nodev,nosuid,noatime,block_size=64K,disk_cache=$T/c1.img,disk_cache_size=64M" ||
  fail "mount -t fuse.tierfs"
fs_is_mounted "$M" || fail "mount -t: not mounted"
cmp "$T/src/dir/file.bin" "$M/dir/file.bin" || fail "mount -t: data differs"
findmnt -n -o FSTYPE,OPTIONS "$M" | grep -q '^fuse.tierfs .*ro' || fail "mount -t: $(findmnt -n "$M")"
umount "$M" || fail "umount (mount -t)"
wait_gone "$T/c1.img"

# an fstab line, as documented in docs/fstab.md
FSTAB=$T/fstab
echo "$S3_BUCKET:/$P $M fuse.tierfs _netdev,nofail,ro,noauto,x-systemd.automount,$TIERFS_OPTS,block_size=64K,disk_cache=$T/c2.img,disk_cache_size=64M 0 0" >"$FSTAB"
mount -T "$FSTAB" "$M" || fail "mount -T fstab"
fs_is_mounted "$M" || fail "fstab: not mounted"
cmp "$T/src/dir/file.bin" "$M/dir/file.bin" || fail "fstab: data differs"
umount "$M" || fail "umount (fstab)"
wait_gone "$T/c2.img"
# remount from fstab: the disk cache serves everything
mount -T "$FSTAB" "$M" || fail "second mount -T fstab"
counters_reset
cmp "$T/src/dir/file.bin" "$M/dir/file.bin" || fail "fstab remount: data differs"
[ "$(counter get)" -eq 0 ] || fail "fstab remount issued $(counter get) GETs"
umount "$M" || fail "umount (fstab 2)"
wait_gone "$T/c2.img"

# a bad value in fstab: mount fails and says which option
echo "$S3_BUCKET:/$P $M fuse.tierfs $TIERFS_OPTS,block_size=7K 0 0" >"$FSTAB"
if mount -T "$FSTAB" "$M" 2>"$T/err"; then fail "bad fstab option mounted"; fi
grep -q "block_size" "$T/err" || fail "bad fstab option: $(cat "$T/err")"
fs_is_mounted "$M" && fail "bad fstab option left a mount"
fs_log "PASS"
