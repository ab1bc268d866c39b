#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# check_structure.sh: the module boundaries of docs/architecture.md, checked on the source:
#   - a file includes no other module's private header (*_i.h): common/, fs/, hybridcache/,
#     ioengine/ and objstore/ include only their own, tools/ none (tools use the public
#     headers: hybridcache.h, hc_offline.h, hc_mem.h, fs/fsutil.h, ...). tests/ are white-box
#     and exempt: a unit test reaches into the module it tests.
#   - whoever turns mount options into a cache (calls fs_opts_parse and hc_create) builds
#     the cache configuration with fs_cache_conf (fs/cacheconf.c), never by hand, so the
#     daemon and tierfs-cache warm cannot drift apart.
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

[ $bad -eq 0 ] && echo "check_structure: ok ($n files)"
exit $bad
