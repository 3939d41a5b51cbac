"""The storage layer and the server never load the client: ``import tempodb`` is lazy and
what they share with it lives in ``tempodb.contract``."""

from __future__ import annotations

import subprocess
import sys

import pytest

CLIENT_MODULES = ("tempodb.client", "tempodb.protocol", "tempodb.async_client", "urllib3", "httpx")


@pytest.mark.parametrize(
    "module", ["tempodb.storage.sqlite", "tempodb.storage.postgres", "tempodb.server.app"]
)
def test_importing_loads_no_client_module(module: str) -> None:
    code = (
        f"import sys, {module}\n"
        f"bad = [m for m in sys.modules if m.startswith({CLIENT_MODULES!r})]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
