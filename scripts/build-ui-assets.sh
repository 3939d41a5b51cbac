#!/usr/bin/env bash
# Fetch the data explorer's chart library from the npm registry into the package, at build time:
# src/tempodb/server/ui/vendor/ (git-ignored) gets uPlot's minified script, its style sheet and
# its licence.  The release is pinned by version and by the registry's sha512 integrity, which
# is checked here, so that a changed tarball fails the build.  Nothing is fetched at run time.
# Runs in well under a second when the pinned release is already in place.
set -euo pipefail

UPLOT_VERSION=1.6.32
UPLOT_INTEGRITY=sha512-KIMVnG68zvu5XXUbC4LQEPnhwOxBuLyW1AHtpm6IKTXImkbLgkMy+jabjLgSLMasNuGGzQm/ep3tOkyTxpiQIw==

root="$(cd "$(dirname "$0")/.." && pwd)"
vendor="$root/src/tempodb/server/ui/vendor"
stamp="$vendor/VERSION"
want="uplot@$UPLOT_VERSION $UPLOT_INTEGRITY"

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
    && [ -s "$vendor/uPlot.iife.min.js" ] && [ -s "$vendor/uPlot.min.css" ]; then
    touch "$stamp" # newer than this script, for make
    exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
    echo "build-ui-assets: npm is needed to fetch uplot@$UPLOT_VERSION (install Node.js)" >&2
    exit 1
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "uplot@$UPLOT_VERSION" >/dev/null)
tarball="$work/uplot-$UPLOT_VERSION.tgz"
got="$(node -e 'const fs = require("fs"), crypto = require("crypto");
process.stdout.write("sha512-" + crypto.createHash("sha512")
    .update(fs.readFileSync(process.argv[1])).digest("base64"));' "$tarball")"
if [ "$got" != "$UPLOT_INTEGRITY" ]; then
    echo "build-ui-assets: uplot-$UPLOT_VERSION.tgz has integrity $got, expected $UPLOT_INTEGRITY" >&2
    exit 1
fi
tar -xzf "$tarball" -C "$work"
mkdir -p "$vendor"
cp "$work/package/dist/uPlot.iife.min.js" "$work/package/dist/uPlot.min.css" "$vendor/"
cp "$work/package/LICENSE" "$vendor/LICENSE.uPlot"
echo "$want" >"$stamp"
echo "build-ui-assets: uplot@$UPLOT_VERSION in ${vendor#"$root"/}"
