#!/usr/bin/env bash
# Make sure Debian's Prometheus (2.42) is at hand for the tests that run it
# (tests/integration/test_prometheus_*.py) and the benchmark.  The package is downloaded
# (apt-get -o DPkg::Lock::Timeout=600 download) and unpacked (dpkg -x) into a folder of its own, never installed: no
# service, no user, no configuration is made, and no root is needed once apt's lists are there.
# The tests find the binary through $PROMETHEUS_BIN, this folder, or the PATH (tests/promproc.py).
set -euo pipefail

dest="${TEMPODB_PROMETHEUS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tempodb/prometheus}"
if [ -x "$dest/usr/bin/prometheus" ]; then
    exit 0
fi

echo "ensure-prometheus: unpacking Debian's prometheus into $dest" >&2
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"  # apt's download user must be able to write there
cd "$work"
if ! apt-get -o DPkg::Lock::Timeout=600 download prometheus >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ]; then
        apt-get -o DPkg::Lock::Timeout=600 update -q
    elif command -v sudo >/dev/null 2>&1; then
        sudo apt-get -o DPkg::Lock::Timeout=600 update -q
    fi
    apt-get -o DPkg::Lock::Timeout=600 download prometheus
fi
mkdir -p "$work/root"
dpkg -x prometheus_*.deb "$work/root"
mkdir -p "$(dirname "$dest")"
rm -rf "$dest"
mv "$work/root" "$dest"
"$dest/usr/bin/prometheus" --version | head -1 >&2
