#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# setup.sh [--bench] [--dry-run]: install what tierfs needs to build and test on Debian 12.
#
# Idempotent: asks dpkg which packages are missing and installs only those (one
# `apt-get update` first, only when something is missing), so a second run is a fast
# no-op. Non-interactive. Run as root (or with sudo available).
#   default : build deps, the test tools (clang-format, cppcheck, valgrind, clang), the test
#             S3 server (Ceph mon/osd + radosgw), Node.js, curl
#   --bench : also fio s3fs rclone awscli gnuplot-nox strace for tools/ benchmarks
#   --dry-run: only print what would be installed
set -euo pipefail

BENCH=0
DRY=0
for a in "$@"; do
  case "$a" in
    --bench) BENCH=1 ;;
    --dry-run) DRY=1 ;;
    -h|--help) sed -n '3,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "setup.sh: unknown argument '$a' (try --help)" >&2; exit 2 ;;
  esac
done

die() { echo "setup.sh: ERROR: $*" >&2; exit 1; }

command -v dpkg-query >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 ||
  die "this script needs a Debian/Ubuntu system with apt-get and dpkg (Debian 12 is what is tested)"
if [ -r /etc/os-release ]; then
  . /etc/os-release
  if [ "${ID:-}" != debian ] || [ "${VERSION_ID:-}" != 12 ]; then
    echo "setup.sh: note: tested on Debian 12, this is ${PRETTY_NAME:-unknown}; trying anyway" >&2
  fi
fi

# Build: compiler, CMake, pkg-config modules checked by CMakeLists.txt, FUSE runtime.
BUILD_PKGS=(cmake gcc make pkg-config fuse3 libfuse3-dev libcurl4-openssl-dev libxml2-dev
            libssl-dev liburing-dev liblz4-dev libcmocka-dev libmicrohttpd-dev
            libmemcached-dev)
# What tests/run-all.sh runs besides the build: the format check (clang-format), static
# analysis (cppcheck), the valgrind test, the libFuzzer harnesses (clang with compiler-rt),
# git (the format check lists the tree's files with it), groff and col (the man-page
# checks read the pages as rendered), openssl (the TLS test makes its CA with it).
CHECK_PKGS=(git clang-format cppcheck valgrind clang libclang-rt-14-dev groff-base bsdextrautils
            openssl)
# Test S3 server (tests/s3server): single-node Ceph with radosgw; uuidgen; clients; gdb for
# the stacks tests/integration/fs_lib.sh's watchdog writes when a test hangs; memcached (the
# fleet tests start their own servers).
SERVER_PKGS=(ceph-mon ceph-osd radosgw ceph-common uuid-runtime curl psmisc procps gdb memcached)
BENCH_PKGS=(fio s3fs rclone awscli gnuplot-nox strace)

want=("${BUILD_PKGS[@]}" "${CHECK_PKGS[@]}" "${SERVER_PKGS[@]}")
# tests/s3server is Node (standard library only). npm is added after nodejs, and only if
# nodejs did not bring it: NodeSource's nodejs bundles npm and conflicts with Debian's.
if ! command -v node >/dev/null 2>&1; then
  want+=(nodejs)
fi
[ $BENCH = 1 ] && want+=("${BENCH_PKGS[@]}")

installed() {
  [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

# One dpkg-query for the lot (fast no-op path); unknown names simply do not show up.
# dpkg-query exits 1 when any name is not installed at all: expected on a fresh machine.
have=" $( { dpkg-query -W -f='${Package}:${Status}\n' "${want[@]}" 2>/dev/null || true; } |
         sed -n 's/:install ok installed$//p' | tr '\n' ' ') "
missing=()
for p in "${want[@]}"; do
  case "$have" in *" $p "*) ;; *) missing+=("$p") ;; esac
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup.sh: all ${#want[@]} packages present, nothing to do"
else
  echo "setup.sh: missing: ${missing[*]}"
  if [ $DRY = 1 ]; then
    exit 0
  fi
  SUDO=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || die "run as root (or install sudo): apt-get needs it"
    SUDO=(sudo -n)
  fi
  export DEBIAN_FRONTEND=noninteractive
  APT=("${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -y -q
       -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
  "${APT[@]}" update || die "apt-get update failed (network? sources.list?)"
  if ! "${APT[@]}" install --no-install-recommends "${missing[@]}"; then
    # Say which names apt does not know, the usual cause on a non-Debian-12 system.
    for p in "${missing[@]}"; do
      apt-cache show "$p" >/dev/null 2>&1 || echo "setup.sh: package '$p' is unknown to apt" >&2
    done
    die "apt-get install failed for: ${missing[*]}"
  fi
  still=()
  for p in "${missing[@]}"; do installed "$p" || still+=("$p"); done
  [ ${#still[@]} -eq 0 ] || die "still not installed after apt-get: ${still[*]}"
fi

if ! command -v npm >/dev/null 2>&1 && [ $DRY = 0 ]; then
  echo "setup.sh: installing npm"
  SUDO=()
  [ "$(id -u)" -ne 0 ] && SUDO=(sudo -n)
  NPM_APT=("${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -y -q)
  "${NPM_APT[@]}" install --no-install-recommends npm ||
    { "${NPM_APT[@]}" update && "${NPM_APT[@]}" install --no-install-recommends npm; } ||
    echo "setup.sh: warning: could not install npm (not needed by the tests)" >&2
fi

# Sanity: the commands the build and the test server call.
cmds=(cmake gcc make pkg-config curl node ceph-mon ceph-osd radosgw radosgw-admin ceph uuidgen)
[ $BENCH = 1 ] && cmds+=(fio s3fs rclone aws gnuplot)
nocmd=()
for c in "${cmds[@]}"; do command -v "$c" >/dev/null 2>&1 || nocmd+=("$c"); done
[ ${#nocmd[@]} -eq 0 ] || die "packages are installed but these commands are not on PATH: ${nocmd[*]}"

if [ ! -c /dev/fuse ]; then
  echo "setup.sh: warning: /dev/fuse is missing; mounting tests will be skipped (modprobe fuse?)" >&2
fi
echo "setup.sh: ready (node $(node --version), $(cmake --version | head -n 1))"
