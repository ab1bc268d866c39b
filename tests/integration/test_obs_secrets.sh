#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# test_obs_secrets.sh: no secret reaches the daemon's log, even at log_level=debug: not the
# secret key (given as an option here, the way fstab lines give it), not an Authorization
# header or a SigV4 signature, not a session token. The mount reads files cold and warm,
# lists directories, looks up a missing name and gets S3 errors (a bad key on a second
# mount), so every debug line the S3 client and the namespace write is exercised.
. "$(dirname "$0")/fs_lib.sh"
fs_init obs_secrets

mkfile "$T/src/a.bin" $((3 * 65536 + 7))
mkfile "$T/src/d/b.bin" 1000
seed "$T/src" "$P"
M=$T/mnt

fs_mount "$M" "$S3_BUCKET:/$P" "block_size=64K,log_level=debug"
cmp "$T/src/a.bin" "$M/a.bin" || fail "a.bin differs"
cmp "$T/src/d/b.bin" "$M/d/b.bin" || fail "d/b.bin differs"
ls -lR "$M" >/dev/null || fail "ls -lR"
stat "$M/missing" >/dev/null 2>&1 && fail "a missing name exists"
fs_umount "$M"
# a wrong secret: S3 refuses every request (403), and the errors are logged
out=$(timeout -k 5 60 "$BIN/tierfs" "$S3_BUCKET:/$P" "$M" -f \
  -o "endpoint=$S3_ENDPOINT,path_style,region=$S3_REGION,access_key=$S3_ACCESS_KEY,secret_key=WRONG${S3_SECRET_KEY}X,log_level=debug" 2>&1)
[ $? -ne 0 ] || { fs_umount "$M"; fail "a mount with a wrong secret key succeeded"; }
printf '%s\n' "$out" >>"$T/tierfs.log"

n=$(grep -c 'debug' "$T/tierfs.log" || true)
[ "$n" -ge 5 ] || fail "only $n debug lines: the log level did not take"
grep -q "GET '" "$T/tierfs.log" || fail "no GET was logged at debug level"
grep -q "SignatureDoesNotMatch" "$T/tierfs.log" || fail "the refused mount logged no S3 error"
if grep -nF -- "$S3_SECRET_KEY" "$T/tierfs.log" >"$T/leak.txt"; then
  cat "$T/leak.txt" >&2
  fail "the secret key is in the daemon's log"
fi
if grep -niE 'authorization:|signature=[0-9a-f]{16}|x-amz-security-token:|credential=' "$T/tierfs.log" >"$T/leak.txt"; then
  cat "$T/leak.txt" >&2
  fail "an Authorization header or a signature is in the daemon's log"
fi
fs_log "PASS ($n debug lines, no secret)"
