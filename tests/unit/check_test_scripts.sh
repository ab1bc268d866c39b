#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# check_test_scripts.sh: rules for the integration test scripts that no run shows until a
# loaded machine hangs one (issue #7):
#   - every `timeout` has -k (a KILL after a grace): on expiry timeout sends SIGTERM and
#     then SIGCONT, and a SIGCONT that lands while LeakSanitizer stops the exiting process
#     for its leak check cancels the stop, so an ASan-built program never exits and a plain
#     `timeout` waits for it forever.
# Usage: bash tests/unit/check_test_scripts.sh
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bad=0
for f in "$root"/tests/integration/*.sh "$root"/tests/fuzz/*.sh "$root"/tests/run-all.sh; do
    [ -f "$f" ] || continue
    # a command `timeout` (not a word in a comment or a string): at the start of a
    # command, after a pipe, ;, &&, ||, $( or `; it must be followed by -k/--kill-after
    while IFS= read -r hit; do
        echo "${f#"$root"/}:$hit: timeout without -k (a hung sanitizer exit outlives it)" >&2
        bad=1
    done < <(grep -nE '(^|[;&|(`]|\$\()[[:space:]]*timeout[[:space:]]' "$f" |
             grep -vE 'timeout[[:space:]]+(-k|--kill-after)' | grep -vE '^[0-9]+:[[:space:]]*#' |
             cut -d: -f1)
done
[ $bad -eq 0 ] && echo "check_test_scripts: ok"
exit $bad
