#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# serve.sh [ENV_FILE]: start the test S3 server, print its env file, and keep it up until
# Ctrl-C (or SIGTERM), then stop it. For manual use and demos; ENV_FILE defaults to
# ./s3server.env.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ENV_FILE=${1:-$PWD/s3server.env}
case "$ENV_FILE" in /*) ;; *) ENV_FILE=$PWD/$ENV_FILE ;; esac
"$HERE/start.sh" "$ENV_FILE" >/dev/null || exit 1
stopping=0
cleanup() {
  [ $stopping = 1 ] && return
  stopping=1
  echo
  "$HERE/stop.sh" "$ENV_FILE"
}
trap 'cleanup; exit 0' INT TERM
trap cleanup EXIT
grep -v '^#' "$ENV_FILE"
echo
echo "# env file: $ENV_FILE   (source it, or: export TIERFS_S3_ENV=$ENV_FILE)"
echo "# client:   node $HERE/s3cli.js --env $ENV_FILE ls \$S3_BUCKET"
echo "# knobs:    curl -d '{\"ttfb_ms\":30}' \$S3_CONTROL/config ; curl \$S3_CONTROL/counters"
echo "# Ctrl-C stops the server."
while kill -0 "$(sed -n 's/^PROXY_PID=//p' "$ENV_FILE")" 2>/dev/null; do sleep 1; done
echo "serve.sh: the proxy exited" >&2
