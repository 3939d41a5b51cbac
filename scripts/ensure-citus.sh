#!/usr/bin/env bash
# Make sure Citus is installed for PostgreSQL 15, for the throwaway Citus cluster that the tests
# and the benchmark start (tests/pg.py, CitusCluster).  Citus is not packaged by Debian: the
# build in ../shared/citus/ (beside the repository; install.sh there) is installed when Citus is
# missing.  Users install Citus from Citus' own packages (README, "On Citus").
#
#   bash scripts/ensure-citus.sh            # exits 1, saying why, when it cannot install it
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)

installed() {
    local bin
    for bin in ${PG_BINDIR:-} /usr/lib/postgresql/*/bin; do
        [ -n "$bin" ] && [ -f "$bin/../lib/citus.so" ] && return 0
    done
    return 1
}
installed && exit 0

script=""
for candidate in "${CITUS_INSTALL:-}" "$here/../shared/citus/install.sh"; do
    if [ -n "$candidate" ] && [ -f "$candidate" ]; then
        script=$candidate
        break
    fi
done
if [ -z "$script" ]; then
    echo "ensure-citus: Citus is not installed and no ../shared/citus/install.sh was found" \
        "(set CITUS_INSTALL=/path/to/install.sh, or install Citus from its own packages)" >&2
    exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
else
    echo "ensure-citus: run as root (or install sudo) to install Citus with $script" >&2
    exit 1
fi
echo "ensure-citus: installing Citus with $script" >&2
"${as_root[@]}" bash "$script"
installed || { echo "ensure-citus: $script ran, but citus.so is still missing" >&2; exit 1; }
