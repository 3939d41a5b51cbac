#!/usr/bin/env bash
# Make sure the benchmark's peers are installed: Debian's influxdb (1.6) and victoria-metrics.
# Installs only what is missing (apt-get), and keeps the packages' own services from running:
# the benchmark starts each peer itself, on loopback, with its data in a temporary folder.
set -euo pipefail

missing=()
command -v influxd >/dev/null 2>&1 || missing+=(influxdb)
command -v victoria-metrics >/dev/null 2>&1 || missing+=(victoria-metrics)
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

echo "ensure-peers: installing Debian's ${missing[*]}" >&2
if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
else
    echo "ensure-peers: run as root (or install sudo) to install ${missing[*]}" >&2
    exit 1
fi

# While installing, forbid services from starting (unless a policy is already in place).
policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | "${as_root[@]}" tee "$policy" >/dev/null
    "${as_root[@]}" chmod 755 "$policy"
    made_policy=1
fi
cleanup() {
    if [ "$made_policy" -eq 1 ]; then
        "${as_root[@]}" rm -f "$policy"
    fi
}
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get -o DPkg::Lock::Timeout=600 update -q
"${as_root[@]}" apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${missing[@]}"

# Where systemd runs, the packages enable their services: stop and disable them.
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    for unit in influxdb victoria-metrics; do
        "${as_root[@]}" systemctl disable --now "$unit" >/dev/null 2>&1 || true
    done
fi
