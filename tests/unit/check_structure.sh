#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# check_structure.sh: the module boundaries of docs/architecture.md, checked on the source:
#   - a file includes no other module's private header (*_i.h): common/, fs/, hybridcache/,
#     ioengine/ and objstore/ include only their own, tools/ none (tools use the public
#     headers: hybridcache.h, hc_offline.h, hc_mem.h, fs/fsutil.h, ...). tests/ are white-box
#     and exempt: a unit test reaches into the module it tests.
#   - whoever turns mount options into a cache (calls fs_opts_parse and hc_create) builds
#     the cache configuration with fs_cache_conf (fs/cacheconf.c), never by hand, so the
#     daemon and tierfs-cache warm cannot drift apart;
#   - rooms small enough to hold in one head: no C file of the tree over MAX_FILE_LINES
#     lines, no function over MAX_FUNC_LINES (main(), fuzz entry points and command-line
#     parsers aside: they are tables of cases).
# Usage: bash tests/unit/check_structure.sh [ROOT]   (exit 1 and one line per violation)
set -uo pipefail

root=${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
bad=0
fail() { echo "check_structure: $*" >&2; bad=1; }

modules=(common fs hybridcache ioengine objstore)
n=0
for dir in "${modules[@]}" tools; do
    for f in "$root/$dir"/*.c "$root/$dir"/*.h; do
        [ -f "$f" ] || continue
        n=$((n + 1))
        while IFS=: read -r line inc; do
            mod=${inc%%/*}
            if [ "$dir" = tools ] || [ "$mod" != "$dir" ]; then
                fail "$dir/${f##*/}:$line includes $inc, a private header of $mod/"
            fi
        done < <(grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]+"[^"]+_i\.h"' "$f" |
                 sed -E 's/^([0-9]+):.*"([^"]+)".*/\1:\2/')
    done
done
[ $n -gt 50 ] || fail "only $n source files found under $root: wrong ROOT?"

for f in "$root"/fs/*.c "$root"/tools/*.c; do
    [ -f "$f" ] || continue
    grep -q 'hc_create(' "$f" || continue
    grep -q 'fs_opts_parse(\|fs->conf\|struct fs_conf' "$f" || continue
    if ! grep -q 'fs_cache_conf(' "$f"; then
        fail "${f#"$root"/} opens a cache for mount options without fs_cache_conf()"
    fi
    if grep -qE '\.(mem_policy|refuse_unknown|disk_capacity)[[:space:]]*=' "$f"; then
        fail "${f#"$root"/} sets struct hc_conf fields by hand (use fs_cache_conf())"
    fi
done

MAX_FILE_LINES=850
MAX_FUNC_LINES=120
cd "$root" || exit 1
while read -r lines f; do
    [ "$f" = total ] && continue
    [ "$lines" -le $MAX_FILE_LINES ] || fail "$f has $lines lines (at most $MAX_FILE_LINES: split it by responsibility)"
done < <(git ls-files '*.c' '*.h' | xargs wc -l)
# A function: its signature ends the line before a "{" in column 0, its body ends at the
# next "}" in column 0 (the house style, enforced by clang-format).
while IFS=: read -r f name len; do
    case "$name" in
        main | LLVMFuzzerTestOneInput | *parse_args | *_parse) continue ;;
    esac
    fail "$f: $name() has $len lines (at most $MAX_FUNC_LINES)"
done < <(git ls-files '*.c' | xargs awk -v max=$MAX_FUNC_LINES '
    FNR == 1 { start = 0 }
    /^\{$/ { start = FNR; name = last }
    /^\}$/ && start { if (FNR - start + 1 > max) print FILENAME ":" name ":" (FNR - start + 1); start = 0 }
    /\(/ && !start { if (match($0, /[A-Za-z_][A-Za-z_0-9]*\(/)) last = substr($0, RSTART, RLENGTH - 1) }
')

[ $bad -eq 0 ] && echo "check_structure: ok ($n files; files <= $MAX_FILE_LINES lines, functions <= $MAX_FUNC_LINES)"
exit $bad
