"""A wheel built from a clean checkout carries everything the server serves, the explorer's
chart library included (it is fetched at build time, not kept in git)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENDOR = "tempodb/server/ui/vendor/"


def test_wheel_from_a_clean_checkout_carries_the_explorer(tmp_path: Path) -> None:
    source = tmp_path / "source"
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True
    ).stdout.split(b"\0")
    for name in filter(None, tracked):
        path = ROOT / name.decode()
        if path.is_file():  # a file deleted but not yet committed is listed too
            (source / name.decode()).parent.mkdir(parents=True, exist_ok=True)
            (source / name.decode()).write_bytes(path.read_bytes())
    assert not (source / "src" / VENDOR).exists()
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp_path), "."],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("tempodb_revived-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for asset in ("uPlot.iife.min.js", "uPlot.min.css", "LICENSE.uPlot"):
        assert VENDOR + asset in names
    assert "tempodb/server/ui/index.html" in names
    assert "tempodb/py.typed" in names
