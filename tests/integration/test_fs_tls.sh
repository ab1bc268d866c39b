#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# test_fs_tls.sh: an https endpoint with a certificate of a private CA (made here with
# openssl, served by a TLS front of the test proxy): certificate checks are on by default,
# so the mount is refused without ca_bundle, naming the cause; with ca_bundle=CA it mounts
# and reads every byte; insecure mounts too and says in one warning line that the checks
# are off. The environment's AWS_CA_BUNDLE / CURL_CA_BUNDLE never count (only ca_bundle).
. "$(dirname "$0")/fs_lib.sh"
fs_init fs_tls

mkfile "$T/src/a.bin" $((2 * 65536 + 11))
seed "$T/src" "$P"
M=$T/mnt

# a CA and a server certificate for 127.0.0.1 it signs
make_test_ca "$T"

# a TLS front: bytes pass unchanged to the proxy, so the Host header (and SigV4) stay as
# the client sent them
TLS_PORT=$(free_port) || fail "no free port"
UP_PORT=${S3_ENDPOINT##*:}
node -e '
const tls = require("tls"), net = require("net"), fs = require("fs");
const [key, cert, port, up] = process.argv.slice(1);
tls.createServer({key: fs.readFileSync(key), cert: fs.readFileSync(cert)}, (s) => {
  const u = net.connect(+up, "127.0.0.1");
  s.pipe(u); u.pipe(s);
  s.on("error", () => u.destroy()); u.on("error", () => s.destroy());
}).listen(+port, "127.0.0.1", () => console.log("ready"));
setTimeout(() => process.exit(0), 150000); /* never outlives the test by much */
' "$T/srv.key" "$T/srv.pem" "$TLS_PORT" "$UP_PORT" >"$T/tls.out" 2>&1 &
TLS_PID=$!
for i in $(seq 1 50); do grep -q ready "$T/tls.out" && break; sleep 0.1; done
grep -q ready "$T/tls.out" || { cat "$T/tls.out" >&2; kill "$TLS_PID"; fail "TLS front did not start"; }
HTTPS="endpoint=https://127.0.0.1:$TLS_PORT,path_style,region=$S3_REGION,access_key=$S3_ACCESS_KEY,secret_key=$S3_SECRET_KEY"

# 1. checks on by default: refused, the cause named; the environment's bundles do not count
out=$(AWS_CA_BUNDLE="$T/ca.pem" CURL_CA_BUNDLE="$T/ca.pem" SSL_CERT_FILE="$T/ca.pem" \
  timeout -k 5 60 "$BIN/tierfs" "$S3_BUCKET:/$P" "$M" -f -o "$HTTPS" 2>&1)
rc=$?
[ $rc -ne 0 ] || { fs_umount "$M"; kill "$TLS_PID"; fail "mounted over an unverified certificate"; }
grep -qiE 'certificate|TLS|SSL' <<<"$out" || { echo "$out" >&2; kill "$TLS_PID"; fail "the refusal does not name the certificate: $out"; }

# 2. ca_bundle: mounts and reads
fs_mount "$M" "$S3_BUCKET:/$P" "endpoint=https://127.0.0.1:$TLS_PORT,ca_bundle=$T/ca.pem,block_size=64K" ||
  { kill "$TLS_PID"; fail "mount with ca_bundle"; }
cmp "$T/src/a.bin" "$M/a.bin" || { kill "$TLS_PID"; fail "read over TLS with ca_bundle"; }
fs_umount "$M"
grep -q 'checks are off' "$T/tierfs.log" && { kill "$TLS_PID"; fail "a verified mount warned that checks are off"; }

# 3. insecure: mounts, reads, and warns once
fs_mount "$M" "$S3_BUCKET:/$P" "endpoint=https://127.0.0.1:$TLS_PORT,insecure,block_size=64K" ||
  { kill "$TLS_PID"; fail "mount with insecure"; }
cmp "$T/src/a.bin" "$M/a.bin" || { kill "$TLS_PID"; fail "read over TLS with insecure"; }
fs_umount "$M"
n=$(grep -c 'TLS certificate and host name checks are off' "$T/tierfs.log" || true)
[ "$n" -eq 1 ] || { kill "$TLS_PID"; fail "insecure: $n warnings, want 1"; }
kill "$TLS_PID"
fs_log "PASS"
