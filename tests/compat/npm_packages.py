"""npm packages for the compatibility tests, installed once into ``.cache/`` (git-ignored)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def install(folder: str, package: str, installed: str) -> Path:
    """``.cache/<folder>`` with ``package`` (``name@version``) installed by npm, unless the
    file ``installed`` (relative to the folder's node_modules) is there already."""
    target = ROOT / ".cache" / folder
    if not (target / "node_modules" / installed).exists():
        target.mkdir(parents=True, exist_ok=True)
        npm = shutil.which("npm")
        assert npm, f"npm is needed for the compatibility test with the npm package {package}"
        subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--prefix", str(target), package],
            check=True,
            capture_output=True,
        )
    return target
