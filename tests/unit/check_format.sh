#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# check_format.sh: every C file of the tree (git ls-files '*.c' '*.h') is formatted as
# .clang-format says. Prints the first offending lines and exits 1 when one is not;
# `clang-format -i FILE` fixes it. clang-format comes from tools/setup.sh (Debian's
# clang-format, 14 on Debian 12; another version may format differently).
# Usage: bash tests/unit/check_format.sh [ROOT]
set -uo pipefail

root=${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
if ! command -v clang-format >/dev/null 2>&1; then
    echo "check_format: clang-format is not installed (bash tools/setup.sh installs it)" >&2
    exit 1
fi
cd "$root" || exit 1
mapfile -t files < <(git ls-files '*.c' '*.h' 2>/dev/null)
if [ ${#files[@]} -lt 50 ]; then
    echo "check_format: only ${#files[@]} C files found under $root (not a git checkout?)" >&2
    exit 1
fi
out=$(clang-format --dry-run "${files[@]}" 2>&1)
n=$(printf '%s\n' "$out" | grep -c 'warning:' || true)
if [ "$n" -ne 0 ]; then
    printf '%s\n' "$out" | grep 'warning:' | head -n 20 >&2
    echo "check_format: $n places in $(printf '%s\n' "$out" | grep 'warning:' | cut -d: -f1 | sort -u | wc -l) files differ from .clang-format (clang-format -i fixes them)" >&2
    exit 1
fi
echo "check_format: ok (${#files[@]} files, $(clang-format --version | head -n 1))"
