#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# test_fs_creds.sh: real mounts whose credentials come from where clusters and laptops get
# them (issue #19), reading from radosgw through the proxy:
#   - web identity (a pod's AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE) against a fake STS
#     (fake_sts.py) handing out credentials that live 6 s: reads go on for 14 s across
#     several refreshes, with the token file rotated half-way (the next refresh sends the
#     new token);
#   - a profile chain of two assumed roles (base keys -> role mid -> role final), each
#     AssumeRole's SigV4 signature verified by the fake STS (the second is signed with the
#     first's temporary keys and session token);
#   - a profile's credential_process whose keys live 6 s, re-run before they expire;
#   - tierfs --explain-credentials names the source without a secret;
#   - the daemon's debug log holds no secret key, session token or identity token.
. "$(dirname "$0")/fs_lib.sh"
fs_init fs_creds

for i in $(seq 0 15); do mkfile "$T/src/f$i.bin" $((100000 + i)); done
seed "$T/src" "$P"
M=$T/mnt

# ---- the fake STS ----
echo "jwt-token-one-$RANDOM" >"$T/token"
python3 "$(dirname "$0")/fake_sts.py" "$T/sts.port" "$T/sts.log" --token-file "$T/token" \
  --key "$S3_ACCESS_KEY" --secret "$S3_SECRET_KEY" --ttl 6 >"$T/sts.out" 2>&1 &
STS_PID=$!
fs_at_exit "kill $STS_PID 2>/dev/null"
for _ in $(seq 1 100); do [ -s "$T/sts.port" ] && break; sleep 0.05; done
[ -s "$T/sts.port" ] || { cat "$T/sts.out" >&2; fail "the fake STS did not start"; }
STS_URL=http://127.0.0.1:$(cat "$T/sts.port")
sts_calls() { grep -c "\"action\": \"$1\"" "$T/sts.log" 2>/dev/null || true; }
sts_bad() { grep -c '"ok": false' "$T/sts.log" 2>/dev/null || true; }

# Mounts below get no static keys: neither as options nor in the environment.
TIERFS_OPTS="endpoint=$S3_ENDPOINT,path_style,region=$S3_REGION,log_level=debug"
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE
export AWS_ENDPOINT_URL_STS=$STS_URL AWS_EC2_METADATA_DISABLED=true HOME=$T
export AWS_SHARED_CREDENTIALS_FILE=$T/credentials AWS_CONFIG_FILE=$T/config

# read_for SECONDS: read a file not read before every second; every byte checked
NEXT=0
read_for() {
  local end=$((SECONDS + $1))
  while [ $SECONDS -lt $end ]; do
    cmp "$T/src/f$NEXT.bin" "$M/f$NEXT.bin" || fail "f$NEXT.bin: wrong bytes or a failed read"
    NEXT=$(((NEXT + 1) % 16))
    sleep 1
  done
}

# ---- web identity, across refreshes and a token rotation ----
export AWS_ROLE_ARN=arn:aws:iam::123456789012:role/final AWS_WEB_IDENTITY_TOKEN_FILE=$T/token
export AWS_ROLE_SESSION_NAME=tierfs-test-pod
out=$("$BIN/tierfs" --explain-credentials 2>&1) || fail "--explain-credentials failed: $out"
echo "$out" | grep -q "chosen: web identity (environment)" || fail "--explain-credentials: $out"
fs_mount "$M" "$S3_BUCKET:/$P"
read_for 7
echo "jwt-token-two-$RANDOM" >"$T/token" # Kubernetes rotates the projected token
read_for 7
fs_umount "$M"
n=$(sts_calls AssumeRoleWithWebIdentity) bad=$(sts_bad)
fs_log "web identity: 14 reads over 14 s with 6 s credentials: $n AssumeRoleWithWebIdentity calls, $bad refused"
[ "$bad" -eq 0 ] || { cat "$T/sts.log" >&2; fail "STS refused $bad requests (a stale token or a bad request)"; }
[ "$n" -ge 3 ] || fail "$n web identity calls in 14 s of 6 s credentials: not refreshed"
[ "$n" -le 20 ] || fail "$n web identity calls in 14 s: refreshed on every request"
grep -q '"session": "tierfs-test-pod"' "$T/sts.log" || fail "AWS_ROLE_SESSION_NAME was not sent"
unset AWS_ROLE_ARN AWS_WEB_IDENTITY_TOKEN_FILE AWS_ROLE_SESSION_NAME

# ---- a profile chain of two assumed roles ----
cat >"$T/credentials" <<EOF
[base]
aws_access_key_id = $S3_ACCESS_KEY
aws_secret_access_key = $S3_SECRET_KEY
EOF
cat >"$T/config" <<EOF
[profile mid]
role_arn = arn:aws:iam::111111111111:role/mid
source_profile = base
[profile app]
role_arn = arn:aws:iam::222222222222:role/final
source_profile = mid
external_id = ext-id-7
[profile helper]
credential_process = sh "$T/helper.sh" --profile helper
EOF
: >"$T/sts.log"
fs_mount "$M" "$S3_BUCKET:/$P" "profile=app"
read_for 2
fs_umount "$M"
n=$(sts_calls AssumeRole) bad=$(sts_bad)
fs_log "profile chain: $n AssumeRole calls, $bad refused: $(tr '\n' ' ' <"$T/sts.log")"
[ "$bad" -eq 0 ] || fail "STS refused an AssumeRole (signature or session token)"
[ "$n" -ge 2 ] || fail "$n AssumeRole calls for a chain of two roles"
grep -q '"role": "arn:aws:iam::111111111111:role/mid", "ok": true, "why": "signed by '"$S3_ACCESS_KEY" "$T/sts.log" ||
  fail "the first role was not signed with the base profile's keys"
grep -q '"role": "arn:aws:iam::222222222222:role/final", "ok": true, "why": "signed by ASIAMIDDLE' "$T/sts.log" ||
  fail "the second role was not signed with the first role's temporary keys"
grep -q '"external_id": "ext-id-7"' "$T/sts.log" || fail "external_id was not sent"

# ---- credential_process, re-run before its keys expire ----
cat >"$T/helper.sh" <<EOF
echo run >>"$T/helper.runs"
printf '{"Version": 1, "AccessKeyId": "%s", "SecretAccessKey": "%s", "SessionToken": "proc-token-%s", "Expiration": "%s"}' \
  "$S3_ACCESS_KEY" "$S3_SECRET_KEY" "\$\$" "\$(date -u -d '+6 seconds' +%Y-%m-%dT%H:%M:%SZ)"
EOF
out=$("$BIN/tierfs" --explain-credentials -o profile=helper 2>&1) || fail "--explain-credentials failed: $out"
echo "$out" | grep -q "chosen: profile 'helper'" || fail "--explain-credentials: $out"
: >"$T/helper.runs"
fs_mount "$M" "$S3_BUCKET:/$P" "profile=helper"
read_for 10
fs_umount "$M"
runs=$(wc -l <"$T/helper.runs")
fs_log "credential_process: 10 reads over 10 s with 6 s credentials: the helper ran $runs times"
[ "$runs" -ge 2 ] || fail "the helper ran $runs times in 10 s of 6 s credentials: not refreshed"
[ "$runs" -le 15 ] || fail "the helper ran $runs times in 10 s: run on every request"

# ---- STS over https with a private CA: -o ca_bundle is trusted, the environment is not ----
make_test_ca "$T"
python3 "$(dirname "$0")/fake_sts.py" "$T/sts-tls.port" "$T/sts-tls.log" --token-file "$T/token" \
  --key "$S3_ACCESS_KEY" --secret "$S3_SECRET_KEY" --ttl 3600 \
  --tls-cert "$T/srv.pem" --tls-key "$T/srv.key" >"$T/sts-tls.out" 2>&1 &
STS_TLS_PID=$!
fs_at_exit "kill $STS_TLS_PID 2>/dev/null"
for _ in $(seq 1 100); do [ -s "$T/sts-tls.port" ] && break; sleep 0.05; done
[ -s "$T/sts-tls.port" ] || { cat "$T/sts-tls.out" >&2; fail "the TLS fake STS did not start"; }
export AWS_ENDPOINT_URL_STS=https://127.0.0.1:$(cat "$T/sts-tls.port")
export AWS_ROLE_ARN=arn:aws:iam::123456789012:role/final AWS_WEB_IDENTITY_TOKEN_FILE=$T/token
out=$(AWS_CA_BUNDLE="$T/ca.pem" CURL_CA_BUNDLE="$T/ca.pem" "$BIN/tierfs" --explain-credentials 2>&1) &&
  fail "STS over https with a certificate of an unknown CA was trusted: $out"
fs_log "STS over https without ca_bundle: $(echo "$out" | grep -m1 -iE 'certificate|SSL')"
echo "$out" | grep -qiE 'certificate|SSL' || fail "the STS failure does not name the certificate: $out"
out=$("$BIN/tierfs" --explain-credentials -o ca_bundle="$T/ca.pem" 2>&1) ||
  fail "--explain-credentials with ca_bundle failed: $out"
echo "$out" | grep -q "chosen: web identity (environment)" || fail "--explain-credentials with ca_bundle: $out"
fs_mount "$M" "$S3_BUCKET:/$P" "ca_bundle=$T/ca.pem"
cmp "$T/src/f0.bin" "$M/f0.bin" || fail "a read with credentials from STS over https"
fs_umount "$M"
grep -q '"action": "AssumeRoleWithWebIdentity", "role": "arn:aws:iam::123456789012:role/final", "ok": true' "$T/sts-tls.log" ||
  fail "the TLS fake STS saw no good AssumeRoleWithWebIdentity: $(cat "$T/sts-tls.log")"
unset AWS_ROLE_ARN AWS_WEB_IDENTITY_TOKEN_FILE
export AWS_ENDPOINT_URL_STS=$STS_URL

# ---- no secret in the debug log ----
grep -q "credentials: refreshed from" "$T/tierfs.log" || fail "the debug log does not show the refreshes"
for s in "$S3_SECRET_KEY" fake-session-token middle-secret jwt-token proc-token; do
  if grep -nF -- "$s" "$T/tierfs.log" >"$T/leak.txt"; then
    cat "$T/leak.txt" >&2
    fail "a secret ($s...) is in the daemon's debug log"
  fi
done
fs_log "PASS"
