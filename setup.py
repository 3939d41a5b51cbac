"""The build's one step beyond pyproject.toml: every wheel carries the explorer's chart library.

``build_py`` fetches the pinned uPlot release first (``build_support/ui_assets.py``), so that
``pip install .`` and a wheel built anywhere serve ``/ui/`` complete.  Offline, set
``TEMPODB_NO_UI_ASSETS=1`` to build without it (``/ui/`` then says how to add it).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

sys.path.insert(0, str(Path(__file__).resolve().parent / "build_support"))
import ui_assets


class BuildWithAssets(build_py):
    def finalize_options(self) -> None:
        # Before the package data is listed, so that the fetched files are part of it.
        if not os.environ.get("TEMPODB_NO_UI_ASSETS"):
            try:
                ui_assets.fetch()
            except ui_assets.AssetError as exc:
                raise SystemExit(
                    f"{exc}\nThe explorer's chart library could not be fetched from the npm "
                    "registry: build online, or set TEMPODB_NO_UI_ASSETS=1 to build without it."
                ) from exc
        super().finalize_options()


setup(cmdclass={"build_py": BuildWithAssets})
