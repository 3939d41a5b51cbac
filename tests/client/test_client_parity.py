"""``Client`` and ``AsyncClient`` expose the same public methods with the same signatures:
parameter names, kinds and defaults (``close`` and ``aclose`` apart)."""

from __future__ import annotations

import inspect
from typing import Any

from tempodb.async_client import AsyncClient
from tempodb.client import Client


def public_methods(cls: type) -> dict[str, inspect.Signature]:
    """Every public method of ``cls`` (inherited too), by name."""
    return {
        name: inspect.signature(member)
        for name, member in inspect.getmembers(cls)
        if not name.startswith("_") and inspect.isfunction(member)
    }


def shape(signature: inspect.Signature) -> list[tuple[str, Any, Any]]:
    return [(p.name, p.kind, p.default) for p in signature.parameters.values()]


def test_both_clients_have_the_same_methods_and_signatures() -> None:
    sync, not_sync = public_methods(Client), public_methods(AsyncClient)
    assert set(sync) - {"close"} == set(not_sync) - {"aclose"}
    assert len(sync) > 30
    different = {
        name: (shape(sync[name]), shape(not_sync[name]))
        for name in set(sync) - {"close"}
        if shape(sync[name]) != shape(not_sync[name])
    }
    assert not different


def test_both_clients_take_the_same_arguments() -> None:
    assert shape(inspect.signature(Client)) == shape(inspect.signature(AsyncClient))
