#!/usr/bin/env bash
# Make sure Debian's Chromium is installed, for the browser test of the data explorer
# (tests/integration/test_explorer.py drives it with Playwright).  When /usr/bin/chromium is
# missing, install Debian's chromium package; no browser is ever downloaded from anywhere else.
set -euo pipefail

if [ -n "${TEMPODB_CHROMIUM:-}" ] && [ -x "$TEMPODB_CHROMIUM" ]; then
    exit 0
fi
if [ -x /usr/bin/chromium ]; then
    exit 0
fi

echo "ensure-chromium: /usr/bin/chromium not found; installing Debian's chromium" >&2
if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
else
    echo "ensure-chromium: run as root (or install sudo) to install chromium" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get -o DPkg::Lock::Timeout=600 update -q
"${as_root[@]}" apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends chromium fonts-dejavu-core
