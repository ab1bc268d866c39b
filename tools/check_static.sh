#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# check_static.sh: static analysis of tierfs's own code (not tests, not third-party):
#   - cppcheck (warning, performance, portability) on common fs hybridcache ioengine
#     objstore tools; findings fail the run. False positives are suppressed inline at the
#     line (// cppcheck-suppress ID, with the reason beside it) or below with a reason.
#   - clang-tidy (clang-analyzer-* and a few bugprone checks) when a build directory with
#     compile_commands.json is given (--tidy BUILD_DIR; cmake -DCMAKE_EXPORT_COMPILE_COMMANDS=ON).
# Usage: bash tools/check_static.sh [--tidy BUILD_DIR]     exit 0 = clean, 1 = findings
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here" || exit 2
dirs=(common fs hybridcache ioengine objstore tools)
tidy_build=
if [ "${1:-}" = "--tidy" ] && [ -n "${2:-}" ]; then tidy_build=$2; fi
rc=0

if command -v cppcheck >/dev/null; then
  # Suppressed everywhere, with the reason:
  #   missingIncludeSystem: system headers are not given to cppcheck (it does not need them)
  #   invalidPrintfArgType_uint: macro constants such as HC_KEY_MAX are plain int literals
  #     printed with %u; the values are small and positive and gcc's -Wformat agrees
  out=$(cppcheck -q --std=c11 --enable=warning,performance,portability --inline-suppr \
    -I . -D__GNUC__ -DFUSE_USE_VERSION=314 -j "$(nproc 2>/dev/null || echo 2)" \
    --suppress=missingIncludeSystem --suppress=invalidPrintfArgType_uint \
    "${dirs[@]}" 2>&1)
  if [ -n "$out" ]; then
    echo "$out"
    echo "check_static: cppcheck findings above"
    rc=1
  else
    echo "check_static: cppcheck clean ($(cppcheck --version))"
  fi
else
  if [ "${TIERFS_STRICT:-0}" = 1 ]; then
    echo "check_static: FAILED: cppcheck is not installed (tools/setup.sh installs it)"
    rc=1
  else
    echo "check_static: cppcheck not installed, skipped"
  fi
fi

if [ -n "$tidy_build" ]; then
  if ! command -v clang-tidy >/dev/null || [ ! -f "$tidy_build/compile_commands.json" ]; then
    echo "check_static: clang-tidy or $tidy_build/compile_commands.json missing, skipped"
  else
    # clang-analyzer-security.insecureAPI.*: memcpy/strcpy "use the _s variant" advice (C11
    # Annex K, not in glibc); bugprone-easily-swappable-parameters, -narrowing-conversions,
    # -reserved-identifier: style, not defects.
    checks='-*,clang-analyzer-*,-clang-analyzer-security.insecureAPI.*,bugprone-*,-bugprone-easily-swappable-parameters,-bugprone-narrowing-conversions,-bugprone-reserved-identifier,-bugprone-assignment-in-if-condition,-bugprone-implicit-widening-of-multiplication-result,-bugprone-branch-clone'
    files=$(git ls-files "${dirs[@]}" | grep '\.c$')
    tout=$(echo "$files" | xargs -P "$(nproc 2>/dev/null || echo 2)" -n 4 \
      clang-tidy -quiet -p "$tidy_build" --checks="$checks" 2>/dev/null | grep -E '(warning|error):' | sort -u)
    if [ -n "$tout" ]; then
      echo "$tout"
      echo "check_static: clang-tidy findings above ($(echo "$tout" | wc -l))"
      rc=1
    else
      echo "check_static: clang-tidy clean"
    fi
  fi
fi
exit $rc
