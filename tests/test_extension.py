"""The C extension is built: ``make test`` runs against the fast path (the general path is
what serves without it, and the tests compare the two)."""

from __future__ import annotations

import importlib

from tempodb.server import wire
from tempodb.storage import blocks


def test_the_c_extension_is_built() -> None:
    module = importlib.import_module("tempodb._speedups")  # ImportError: run make install
    assert wire._speedups is module
    assert blocks._speedups is module
