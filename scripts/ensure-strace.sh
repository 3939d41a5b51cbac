#!/usr/bin/env bash
# Make sure strace is installed, for the test that watches `tempodb backup` fsync its copy
# (tests/reliability/test_backup.py): installs Debian's strace package when it is missing.
set -euo pipefail

if command -v strace >/dev/null 2>&1; then
    exit 0
fi

echo "ensure-strace: strace not found; installing Debian's strace" >&2
if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
else
    echo "ensure-strace: run as root (or install sudo) to install strace" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get -o DPkg::Lock::Timeout=600 update -q
"${as_root[@]}" apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends strace
