#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# test_fs_consistency.sh: an object replaced in S3 under an open handle gives that handle
# the old data or an error, never a mix; an open after metadata_ttl sees the new version;
# new and deleted keys show up after the TTLs.
. "$(dirname "$0")/fs_lib.sh"
fs_init fs_consistency

SIZE=$((2 * 1048576))
mkfile "$T/v1" $SIZE
mkfile "$T/v2" $SIZE
mkdir -p "$T/src" && cp "$T/v1" "$T/src/obj.bin"
seed "$T/src" "$P"
M=$T/mnt
fs_mount "$M" "$S3_BUCKET:/$P" "block_size=64K,metadata_ttl=2,negative_ttl=1,prefetch=0"

coproc CHK { "$TESTBIN/test_fs_check" stale "$M/obj.bin" "$T/v1" "$T/v2"; }
# bash unsets CHK_PID once the coprocess has ended (it can end before we wait): keep it
chk_pid=$CHK_PID
read -r -t 20 line <&"${CHK[0]}" || fail "checker did not open the file"
[ "$line" = open ] || fail "checker: $line"
s3put "${P}obj.bin" "$T/v2"
echo go >&"${CHK[1]}"
read -r -t 60 result <&"${CHK[0]}" || fail "checker gave no result"
wait "$chk_pid" || fail "open handle saw mixed versions: $result"
fs_log "open handle across the change: $result"

[ ! -e "$M/later.txt" ] || fail "later.txt exists too early"
echo later >"$T/later.txt"
s3put "${P}later.txt" "$T/later.txt"
sleep 2.5
cmp -s "$T/v2" "$M/obj.bin" || fail "an open after the TTL does not see the new version"
[ "$(cat "$M/later.txt" 2>/dev/null)" = later ] || fail "a key created after the negative TTL is not visible"
ls "$M" | grep -qx later.txt || fail "listing after the TTL misses later.txt"
fs_umount "$M"
fs_log "PASS"
