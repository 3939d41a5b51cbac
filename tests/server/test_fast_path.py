"""The C extension is built where the tests run, and the server's write route parses usual
bodies with it: a lost fast path costs only speed, which no other test would notice.

The route runs in this process (``tempodb.connect``: the server's own application), with the
general path (``wire.parse_points``, the per-element check of the parsed JSON) watched: a
body of plain ``t``/``v`` items, in any JSON spacing and either key order, must never reach it.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Any

import pytest

import tempodb
from tempodb import protocol
from tempodb.inprocess import InProcessClient
from tempodb.server import wire

USUAL = [
    # the Python client's own layout, three points and more
    b'[{"t":"2012-01-01T00:00:00.000Z","v":1},{"t":"2012-01-01T00:00:01.000Z","v":2.5},'
    b'{"t":"2012-01-01T00:00:02.000Z","v":-3}]',
    # other clients' spacing, mixed timestamp spellings and key orders
    b'[ {"t": "2012-01-01T00:00:00.000Z", "v": 1},\n {"v": 2, "t": "2012-01-01T00:00:01Z"},'
    b' {"t": "2012-01-01T01:00:02.000+01:00", "v": 3e0} ]',
]


def test_the_extension_is_built() -> None:
    speedups = importlib.import_module("tempodb._speedups")
    assert callable(speedups.parse_points)
    assert wire._speedups is speedups  # the server's wire module has it too


@pytest.fixture
def general_path_calls(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every call of the general path, which still does its work."""
    calls: list[Any] = []
    general = wire.parse_points

    def watched(body: Any, ref: Any) -> Any:
        calls.append(body)
        return general(body, ref)

    monkeypatch.setattr(wire, "parse_points", watched)
    return calls


@pytest.fixture
def client() -> Iterator[InProcessClient]:
    with tempodb.connect(":memory:") as connected:
        yield connected


@pytest.mark.parametrize("body", USUAL, ids=["client", "spaced"])
def test_usual_bodies_take_the_c_path(
    client: InProcessClient, general_path_calls: list[Any], body: bytes
) -> None:
    answer = client._engine.handle(protocol.post_points_body("key", "k", "data", body))
    assert isinstance(answer, protocol.Response)
    assert answer.status == 200, answer.body
    assert general_path_calls == []
    data = client.read_key("k", "2012-01-01", "2012-01-02", interval="raw").data
    assert len(data) == 3


def test_unusual_bodies_still_take_the_general_path(
    client: InProcessClient, general_path_calls: list[Any]
) -> None:
    """The watch works: a body the scanner leaves (a string value) reaches the general path."""
    body = b'[{"t":"2012-01-01T00:00:00.000Z","v":1},{"t":"2012-01-01T00:00:01.000Z","v":"2"}]'
    answer = client._engine.handle(protocol.post_points_body("key", "k", "data", body))
    assert isinstance(answer, protocol.Response)
    assert len(general_path_calls) == 1


def test_reads_are_rendered_by_the_c_renderer(
    client: InProcessClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A raw read of many points is rendered in C, not by ``orjson`` over dicts."""
    rendered: list[bytes | None] = []
    real = wire._speedups.render_points

    def watched(ts: Any, offsets: Any, numbers: bytes) -> bytes | None:
        rendered.append(real(ts, offsets, numbers))
        return rendered[-1]

    client.write_key("k", [(f"2012-01-01T00:{m:02d}:00Z", m) for m in range(60)])
    monkeypatch.setattr(wire._speedups, "render_points", watched)
    data = client.read_key("k", "2012-01-01", "2012-01-02", interval="raw").data
    assert [p.value for p in data] == list(range(60))
    assert len(rendered) == 1
    assert rendered[0] is not None
