"""The columnar hand-off of ``tempodb.connect``: a write body given as arrays is read into the
batch its JSON would give, and anything else is left to the JSON (the same answer)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tempodb
from tempodb import protocol
from tempodb.frames import PointColumns
from tempodb.inprocess import Engine, InProcessClient
from tempodb.server.http import Query, loads_exact
from tempodb.server.wire import (
    columns_multi,
    columns_points,
    parse_multi_body,
    parse_points_body,
)
from tempodb.storage.base import SeriesRef, WriteBatch
from tempodb.timeutil import MAX_MS, MIN_MS

REF = SeriesRef("key", "k")
T0 = 1_325_376_000_000  # 2012-01-01


def _columns(
    ts: list[int],
    values: list[float],
    is_int: list[bool],
    keys: list[str] | None = None,
    index: list[int] | None = None,
) -> PointColumns:
    return PointColumns(
        np.array(ts, np.int64),
        np.array(values, np.float64),
        np.array(is_int, np.bool_),
        keys,
        None if index is None else np.array(index, np.int32),
    )


def _same(left: WriteBatch, right: WriteBatch) -> None:
    assert list(left.refs) == list(right.refs)
    assert left.ref_index.tolist() == right.ref_index.tolist()
    assert left.ts.tolist() == right.ts.tolist()
    assert left.values.tobytes() == right.values.tobytes()  # -0.0 included
    assert left.is_int.tolist() == right.is_int.tolist()
    assert left.skip_conflicts == right.skip_conflicts


def _parser(body: bytes) -> Callable[[], Any]:
    """The JSON of ``body`` as the server reads it (when its C scanner declines)."""
    return lambda: loads_exact(body)


VALUES = [0.1, -0.0, 5e-324, 1e16, 1e300, 2.0**53, -(2.0**53), 3.0, 0.0, 123456789.125]
FLAGS = [False, False, False, False, False, True, True, True, True, False]


def test_points_as_columns_give_the_batch_of_their_body() -> None:
    ts = [T0 + 1000 * i for i in range(len(VALUES))]
    ts[3] = MIN_MS
    ts[4] = MAX_MS
    columns = _columns(ts, VALUES, FLAGS)
    fast = columns_points(columns, REF)
    assert fast is not None
    _same(fast, parse_points_body(columns.encode(), _parser(columns.encode()), REF))


def test_multi_columns_give_the_batch_of_their_body() -> None:
    keys = ["b.2", "a 1", "c/3"]
    index = [0, 1, 0, 2, 1, 1, 2, 0, 0, 2]
    columns = _columns([T0 + 7 * i for i in range(10)], VALUES, FLAGS, keys, index)
    fast = columns_multi(columns)
    assert fast is not None
    general = parse_multi_body(columns.encode(), _parser(columns.encode()))
    _same(fast.batch, general.batch)
    assert fast.multistatus() == general.multistatus()


@pytest.mark.parametrize(
    ("values", "is_int", "ts"),
    [
        ([float("nan")], [False], [T0]),  # JSON has no NaN: the body's answer decides
        ([float("inf")], [False], [T0]),
        ([1.5], [True], [T0]),  # an "integer" with a fraction
        ([2.0**53 + 2], [True], [T0]),  # an integer beyond 2^53
        ([1.0], [False], [MIN_MS - 1]),  # outside years 1-9999
        ([1.0], [False], [MAX_MS + 1]),
    ],
)
def test_columns_outside_the_plain_shape_are_left_to_the_body(
    values: list[float], is_int: list[bool], ts: list[int]
) -> None:
    assert columns_points(_columns(ts, values, is_int), REF) is None
    assert columns_multi(_columns(ts, values, is_int, ["k"], [0])) is None


@pytest.mark.parametrize(
    ("keys", "index"),
    [
        (["bad key!"], [0]),  # an invalid key: the body answers it per element
        (["k", "k"], [0, 1]),  # the same key twice
        (["k", "unused"], [0, 0]),  # a key without points
        (["b", "a"], [1, 0]),  # keys out of their order of appearance
        (["k"], [1, 0]),  # an index out of range
        ([], []),
    ],
)
def test_multi_columns_with_odd_keys_are_left_to_the_body(
    keys: list[str], index: list[int]
) -> None:
    n = len(index)
    columns = _columns([T0] * n, [1.0] * n, [False] * n, keys, index)
    assert columns_multi(columns) is None


def test_columns_of_one_series_are_not_taken_as_multi_and_back() -> None:
    one = _columns([T0], [1.0], [False])
    many = _columns([T0], [1.0], [False], ["k"], [0])
    assert columns_multi(one) is None
    assert columns_points(many, REF) is None


@pytest.fixture
def client(tmp_path: Path) -> Iterator[InProcessClient]:
    with tempodb.connect(tmp_path / "data") as connected:
        assert isinstance(connected, InProcessClient)
        yield connected


def _answer(client: InProcessClient, request: protocol.Request[object]) -> object:
    outcome = client._engine.handle(request)
    assert isinstance(outcome, protocol.Response)
    return outcome.status, outcome.body, outcome.error_code


def test_a_declined_multi_gets_the_answer_of_its_body(client: InProcessClient) -> None:
    """An invalid key among the columns: the 207 the JSON body gets, element by element."""
    columns = _columns(
        [T0, T0, T0 + 1], [1.0, 2.0, 3.0], [True, False, True], ["ok", "no!"], [0, 1, 0]
    )
    as_columns = _answer(client, protocol.multi_body("/multi/", None, columns=columns))
    as_body = _answer(client, protocol.multi_body("/multi/", columns.encode()))
    assert as_columns == as_body
    assert as_columns[0] == 207


def test_declined_points_get_the_answer_of_their_body(client: InProcessClient) -> None:
    columns = _columns([T0], [float("nan")], [False])
    as_columns = _answer(
        client, protocol.post_points_body("key", "k", "data", None, columns=columns)
    )
    as_body = _answer(client, protocol.post_points_body("key", "k", "data", columns.encode()))
    assert as_columns == as_body
    assert as_columns[0] == 400


def test_columns_sent_to_a_route_that_reads_json_are_encoded(client: InProcessClient) -> None:
    """A handler that does not take arrays gets the JSON body they stand for."""
    columns = _columns([T0], [1.0], [False], ["k"], [0])
    request = protocol.Request(
        "POST", "/data/", protocol.parse_nothing, columns=columns, idempotent=False
    )
    as_columns = _answer(client, request)
    as_body = _answer(
        client, protocol.Request("POST", "/data/", protocol.parse_nothing, body=columns.encode())
    )
    assert as_columns == as_body
    assert as_columns[0] == 400  # /data/ takes {"t": ..., "data": [...]}, not an array


@given(
    st.lists(
        st.tuples(
            st.text(st.characters(max_codepoint=127), max_size=6),
            st.text(st.characters(max_codepoint=127), max_size=8),
        ),
        max_size=6,
    )
)
def test_parsed_query_parameters_are_those_of_the_query_string(
    params: list[tuple[str, str]],
) -> None:
    """The in-process transport's parsed parameters: what the server parses of their query
    string, without the round trip."""
    parsed = _engine_query(params)
    assert parsed == Query.parse(urlencode(params).encode())


def test_parameters_beyond_ascii_go_as_a_query_string() -> None:
    assert _engine_query([("key", "caf\u00e9")]) is None
    assert _engine_query([("n", 5)]) is None  # type: ignore[list-item]


def _engine_query(params: list[tuple[str, str]]) -> Query | None:
    return Engine.parsed_query(_QueryOnly(), params)  # type: ignore[arg-type]


class _QueryOnly:
    """What ``Engine.parsed_query`` uses of an engine."""

    _query = Query
