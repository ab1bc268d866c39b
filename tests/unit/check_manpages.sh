#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# check_manpages.sh: every program in $TIERFS_BIN_DIR (tierfs, tierfs-cache, tierfs-stat,
# tierfs-seed, tierfs-bench-*, tierfs-fuse-null: every executable named tierfs*, without a
# dot) has a man page man/NAME.1, and every option its --help prints appears in that page:
#   - long options: --foo (also --foo=ARG);
#   - -o options: "-o name=..." and "-o name", and NAME=... values listed with them
#     ("-o uid=USER, gid=GROUP", "libfuse (max_read=N, ...)").
# A program whose --help lists "Commands:" (tierfs-cache) also has each COMMAND --help
# checked, and each command name must appear in the page.
# The page is rendered to plain text (groff, else mandoc, else the source with its
# escapes stripped), so an option counts only where a reader would see it.
# Usage: TIERFS_BIN_DIR=build/bin tests/unit/check_manpages.sh
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
man_dir=$root/man
bin_dir=${TIERFS_BIN_DIR:-$root/build/bin}
[[ -d $bin_dir ]] || { echo "check_manpages: no bin directory '$bin_dir' (set TIERFS_BIN_DIR)" >&2; exit 1; }

# plain: drop overstriking (bold, underline) from a formatter's output
plain() {
    if command -v col >/dev/null; then col -bx; else sed -e 's/.\x08//g'; fi
}

# render PAGE: the page as plain ASCII text, on one line with single blanks
render() {
    render_lines "$1" | tr -s ' \t\n' '   '
}
render_lines() {
    if command -v groff >/dev/null; then
        groff -mandoc -Tascii -rLL=2000n -rHY=0 -P-cbou "$1" 2>/dev/null | plain
    elif command -v mandoc >/dev/null; then
        mandoc -Tascii -Owidth=1000 "$1" 2>/dev/null | plain
    else  # the source: drop requests' dots, \- -> -, font and size escapes
        sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' -e 's/\\f(..//g' -e 's/\\s[-+]\?[0-9]//g' \
            -e 's/\\(em/--/g' -e 's/\\e/\\/g' -e 's/\\&//g' \
            -e 's/^\.[A-Za-z]\{1,3\} //' -e 's/ Ns //g' -e 's/^\.Fl /-/' -e 's/ Fl / -/g' "$1"
    fi
}

# options (stdin: --help text): one token per line: "--foo" for long options, "name=" for
# valued -o options and "name" for -o flags; the placeholders of "-o option[,option...]"
# and "-o options" are not names.
options() {
    local text
    text=$(cat)
    {
        grep -oE -- '(^|[^A-Za-z0-9_-])--[A-Za-z0-9][A-Za-z0-9-]*' <<<"$text" | sed -E 's/^[^-]//'
        # -o name=...: a valued option, -o name: a flag
        grep -oE -- '(^|[^A-Za-z0-9_-])-o +[a-z][a-z0-9_]*=?' <<<"$text" | sed -E 's/^.*-o +//'
        # name=VALUE after a blank, comma or parenthesis: "gid=GROUP", "(max_read=N"
        grep -oE -- '(^|[ ,(])[a-z][a-z0-9_]*=' <<<"$text" | sed -E 's/^[ ,(]//'
    } | grep -vxE 'options?=?' | sort -u
}

# has PAGE_TEXT_FILE TOKEN: the token appears as a whole word of the rendered page
# (--foo not followed by more of a name; name= as written; a flag name as a word)
has() {
    local tok=$2 re
    re=$(sed -e 's/[][\.*^$+?(){}|/]/\\&/g' <<<"$tok")
    case $tok in
    --*) grep -qE -- "(^|[^A-Za-z0-9-])${re}([^A-Za-z0-9-]|$)" "$1" ;;
    *=) grep -qE -- "(^|[^A-Za-z0-9_])${re}" "$1" ;;
    *) grep -qE -- "(^|[^A-Za-z0-9_])${re}([^A-Za-z0-9_]|$)" "$1" ;;
    esac
}

fail=0
checked=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for bin in "$bin_dir"/tierfs*; do
    name=$(basename "$bin")
    [[ -f $bin && -x $bin && $name != *.* ]] || continue
    checked=$((checked + 1))
    page=$man_dir/$name.1
    if [[ ! -f $page ]]; then
        echo "FAIL $name: no man page man/$name.1"
        fail=1
        continue
    fi
    if ! help=$(timeout 20 "$bin" --help 2>&1); then
        echo "FAIL $name: '$name --help' failed: $help"
        fail=1
        continue
    fi
    # sub-commands: the indented words under a "Commands:" line
    cmds=$(awk '/^Commands:/ {on = 1; next} on && /^  [a-z][a-z0-9-]*  / {print $1; next} on {on = 0}' \
        <<<"$help")
    for c in $cmds; do
        if ! sub=$(timeout 20 "$bin" "$c" --help 2>&1); then
            echo "FAIL $name: '$name $c --help' failed: $sub"
            fail=1
            continue
        fi
        help+=$'\n'"$sub"
    done
    render "$page" >"$tmp/page.txt"
    if [[ ! -s $tmp/page.txt ]]; then
        echo "FAIL $name: man/$name.1 renders to nothing"
        fail=1
        continue
    fi
    missing=()
    for c in $cmds; do  # named as "PROGRAM COMMAND" (the synopsis, the examples)
        grep -qF -- "$name $c" "$tmp/page.txt" || missing+=("command '$name $c'")
    done
    while read -r tok; do
        [[ -n $tok ]] || continue
        has "$tmp/page.txt" "$tok" || missing+=("$tok")
    done < <(options <<<"$help")
    if ((${#missing[@]})); then
        echo "FAIL $name: in --help but not in man/$name.1: ${missing[*]}"
        fail=1
    else
        echo "ok   $name: man/$name.1 covers $(options <<<"$help" | wc -l) options of --help"
    fi
done

if ((checked == 0)); then
    echo "FAIL no tierfs programs in $bin_dir (build first)"
    exit 1
fi
exit $fail
