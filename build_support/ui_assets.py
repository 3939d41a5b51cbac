"""Fetch the data explorer's chart library (uPlot) from the npm registry into the package.

``src/tempodb/server/ui/vendor/`` (git-ignored) gets uPlot's minified script, its style sheet
and its licence.  The release is pinned by version and by the registry's sha512 integrity,
checked here, so that a changed tarball fails the build.  Nothing is fetched at run time: the
build runs this (``setup.py``: every wheel carries the files; ``make install`` too), and it
returns at once when the pinned release is in place.

    python build_support/ui_assets.py
"""

from __future__ import annotations

import base64
import hashlib
import io
import sys
import tarfile
import urllib.request
from pathlib import Path

UPLOT_VERSION = "1.6.32"
UPLOT_INTEGRITY = "sha512-KIMVnG68zvu5XXUbC4LQEPnhwOxBuLyW1AHtpm6IKTXImkbLgkMy+jabjLgSLMasNuGGzQm/ep3tOkyTxpiQIw=="  # noqa: E501
REGISTRY = "https://registry.npmjs.org"
ROOT = Path(__file__).resolve().parent.parent
VENDOR = ROOT / "src" / "tempodb" / "server" / "ui" / "vendor"
#: Files of the tarball (under ``package/``) and their names in the vendor folder.
FILES = {
    "dist/uPlot.iife.min.js": "uPlot.iife.min.js",
    "dist/uPlot.min.css": "uPlot.min.css",
    "LICENSE": "LICENSE.uPlot",
}
STAMP = f"uplot@{UPLOT_VERSION} {UPLOT_INTEGRITY}"


class AssetError(RuntimeError):
    """The pinned release could not be fetched or is not the one pinned."""


def in_place(vendor: Path = VENDOR) -> bool:
    """Whether the pinned release is in ``vendor`` already."""
    stamp = vendor / "VERSION"
    return (
        stamp.is_file()
        and stamp.read_text().strip() == STAMP
        and all(
            (vendor / name).is_file() and (vendor / name).stat().st_size for name in FILES.values()
        )
    )


def fetch(vendor: Path = VENDOR, registry: str = REGISTRY) -> bool:
    """Put the pinned release in ``vendor``; False when it was there already."""
    if in_place(vendor):
        return False
    url = f"{registry}/uplot/-/uplot-{UPLOT_VERSION}.tgz"
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            tarball = response.read()
    except OSError as exc:
        raise AssetError(f"cannot fetch {url}: {exc}") from exc
    got = "sha512-" + base64.b64encode(hashlib.sha512(tarball).digest()).decode()
    if got != UPLOT_INTEGRITY:
        raise AssetError(f"{url} has integrity {got}, expected {UPLOT_INTEGRITY}")
    vendor.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
        for member, name in FILES.items():
            extracted = archive.extractfile(f"package/{member}")
            if extracted is None:
                raise AssetError(f"{url} has no package/{member}")
            (vendor / name).write_bytes(extracted.read())
    (vendor / "VERSION").write_text(STAMP + "\n")
    return True


def main() -> int:
    try:
        fetched = fetch()
    except AssetError as exc:
        print(f"ui_assets: {exc}", file=sys.stderr)
        return 1
    if fetched:
        print(f"ui_assets: uplot@{UPLOT_VERSION} in {VENDOR.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
