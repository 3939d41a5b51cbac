"""The bulk form of ``POST /v1/series/`` in-process: the one-pass path of the common item
shape answers exactly as the item-by-item path, and hands every other body to it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from types import MappingProxyType
from typing import Any

import orjson
import pytest

from tempodb.server import series as handlers
from tempodb.server.context import Context, Options
from tempodb.server.http import Query, Request, Response
from tempodb.server.wire import render_series, series_json
from tempodb.storage.base import SeriesRecord
from tempodb.storage.sqlite import SQLiteStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    with SQLiteStore(tmp_path / "data") as store:
        yield store


def context(store: SQLiteStore, **options: Any) -> Context:
    credentials = store.create_database("d")
    database = store.authenticate(credentials.key, credentials.secret)
    assert database is not None
    return Context(store, database, Options(**options))


def post(ctx: Context, body: Any) -> tuple[int, Any]:
    request = Request("POST", ["series"], Query([]), orjson.dumps(body))
    response: Response = handlers.create_series(ctx, request, {})
    return response.status, orjson.loads(response.body)


HEX32 = re.compile(r"[0-9a-f]{32}")


def without_ids(answer: Any) -> Any:
    """The answer with each series' random id left out (and the key that is its id)."""
    if isinstance(answer, list):
        return [without_ids(item) for item in answer]
    if isinstance(answer, dict):
        return {k: without_ids(v) for k, v in answer.items() if k != "id"}
    if isinstance(answer, str) and HEX32.fullmatch(answer):
        return "<id>"
    return answer


BODIES = [
    [{"key": "a", "tags": ["x", "y", "x"]}, {"key": "b"}, {}, {"key": "", "name": "n"}],
    [{"key": "a", "tags": ["x"]}, {"key": "b", "tags": [""]}],
    [{"key": "a", "tags": ["x"]}, {"key": "b", "tags": ["n\x00ul"]}],
    [{"key": "a", "tags": "x"}, {"key": "b", "tags": [1]}, {"key": "c", "tags": None}],
    [{"key": "a", "name": 3}, {"key": "b", "name": "n\x00"}, {"key": "c", "name": "ok"}],
    [{"key": "bad key!"}, {"key": 5}, {"key": "x" * 256}, {"key": "fine"}],
    [{"key": "a", "attributes": {"r": 1}}, {"key": "b", "attributes": {}}, "text", None],
    [{"key": "a"}, {"key": "a", "tags": ["t"]}, {"key": "taken"}, {"key": "b"}],
]


@pytest.mark.parametrize("body", BODIES)
@pytest.mark.parametrize("auto_tag", [False, True])
def test_the_one_pass_path_answers_as_the_item_by_item_path(
    tmp_path: Path, body: list[Any], auto_tag: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = []
    for one_pass in (True, False):
        with SQLiteStore(tmp_path / f"data-{one_pass}") as store:
            ctx = context(store, auto_tag=auto_tag)
            store.create_series(ctx.db.id, "taken")
            if not one_pass:
                monkeypatch.setattr(handlers, "_plain_items", lambda ctx, body: None)
            status, answer = post(ctx, body)
            listed = handlers.list_series(ctx, Request("GET", ["series"], Query([]), b""), {})
            stored = sorted(map(orjson.dumps, without_ids(orjson.loads(listed.body))))
            answers.append((status, without_ids(answer), stored))
    assert answers[0] == answers[1]


def test_auto_tag_on_the_one_pass_path(store: SQLiteStore) -> None:
    ctx = context(store, auto_tag=True)
    status, answer = post(ctx, [{"key": "boiler.3.temp", "tags": ["hot", "boiler"]}])
    assert status == 200
    assert answer[0]["tags"] == ["boiler", "3", "hot"]


def test_conflicts_on_the_one_pass_path(store: SQLiteStore) -> None:
    ctx = context(store)
    store.create_series(ctx.db.id, "taken")
    status, answer = post(ctx, [{"key": "new"}, {"key": "taken"}, {"key": "new"}])
    assert status == 207
    statuses = [entry["status"] for entry in answer["multistatus"]]
    assert statuses == ["200", "409", "409"]
    assert answer["multistatus"][0]["series"]["key"] == "new"
    assert answer["multistatus"][2]["messages"][0].endswith(
        "(an earlier series of this request has the same key)"
    )


def test_render_series_is_series_json() -> None:
    records = [
        SeriesRecord("1", "a", "n", ("t", "é"), {"k": "v"}),
        SeriesRecord("2", "b", "", (), MappingProxyType({"x": "y"})),
        SeriesRecord("3", "c"),
    ]
    assert render_series(records) == orjson.dumps([series_json(r) for r in records])
    assert render_series(tuple(records)) == render_series(records)
    assert render_series([]) == b"[]"


def test_which_bodies_take_the_one_pass_path(store: SQLiteStore) -> None:
    ctx = context(store)
    taken = [handlers._plain_items(ctx, body) is not None for body in BODIES]
    assert taken == [True, False, False, False, False, False, False, True]
