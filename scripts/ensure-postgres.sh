#!/usr/bin/env bash
# Make sure PostgreSQL's server binaries are installed, for the throwaway clusters that the tests
# start (tests/pg.py).  When none are found, install Debian's postgresql package.  Nothing is
# configured or started here; if the package starts a cluster of its own, the tests ignore it.
set -euo pipefail

if [ -n "${PG_BINDIR:-}" ] && [ -x "$PG_BINDIR/initdb" ]; then
    exit 0
fi
for bin in /usr/lib/postgresql/*/bin; do
    if [ -x "$bin/initdb" ] && [ -x "$bin/pg_ctl" ] && [ -x "$bin/postgres" ]; then
        exit 0
    fi
done

echo "ensure-postgres: no PostgreSQL server binaries found; installing Debian's postgresql" >&2
if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
else
    echo "ensure-postgres: run as root (or install sudo) to install postgresql" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get -o DPkg::Lock::Timeout=600 update -q
"${as_root[@]}" apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends postgresql
