"""The vectorised body parser and renderer agree with the general path on every input."""

from __future__ import annotations

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tempodb.server import _speedups
from tempodb.server.wire import (
    _render_points_numpy,
    fast_points,
    parse_points,
    points_json,
    render_points,
)
from tempodb.storage.base import SeriesRef
from tempodb.timeutil import MAX_MS, MIN_MS
from tempodb.zones import get_zone

REF = SeriesRef("key", "k")
ZONES = ["UTC", "America/Chicago", "+05:30", "Europe/London", "Asia/Kathmandu"]

stamps = st.integers(0, 4_102_444_800_000)
numbers = st.one_of(
    st.integers(-(2**53), 2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0, -0.0, 1e16, 1e-7, 5e-324, 21.37]),
)
spellings = st.sampled_from(
    [
        ('{"t":"%s","v":%s}', ","),
        ('{"t": "%s", "v": %s}', ", "),
        ('{ "t" : "%s" , "v" : %s }', " ,\n"),
    ]
)
time_formats = st.sampled_from(["ms_z", "offset", "seconds", "date"])


def _text(ms: int, form: str) -> str:
    text = np.datetime_as_string(np.datetime64(ms, "ms"), unit="ms")
    if form == "ms_z":
        return text + "Z"
    if form == "offset":
        return text + "+0000"
    if form == "seconds":
        return text[:19]
    return text[:10]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(stamps, numbers), min_size=0, max_size=40),
    spellings,
    time_formats,
    st.booleans(),
)
def test_fast_points_agrees_with_parse_points(
    items: list[tuple[int, float]], spelling: tuple[str, str], form: str, mutate: bool
) -> None:
    item, gap = spelling
    texts = [item % (_text(ms, form), orjson.dumps(v).decode()) for ms, v in items]
    if mutate and texts:
        texts[-1] = texts[-1].replace('"v"', '"x"', 1)
    body = ("[" + gap.join(texts) + "]").encode()
    fast = fast_points(body)
    try:
        slow = parse_points(orjson.loads(body), REF)
    except Exception:
        assert fast is None
        return
    if fast is not None:
        ts, values, is_int = fast
        assert ts.tolist() == slow.ts.tolist()
        assert values.tobytes() == slow.values.tobytes()
        assert is_int.tolist() == slow.is_int.tolist()


@pytest.mark.parametrize(
    "body",
    [
        b'[{"t":"2012-01-01T00:00:00.000Z","v":1},{"t":"2012-01-01T00:00:01.000Z","v":"2"}]',
        b'[{"t":"2012-01-01T00:00:00.000Z","v":1},{"t":"2012-01-01T00:00:01.000Z","v":2,"x":{}}]',
        b'[{"t":"2012-01-01T00:00:00.000Z","v":1},{"t":"2012-01-01T00:00:01.000Z","v":1 2}]',
        b'[{"t":"2012-01-01T00:00:00.000Z","v":1},{"t":"2012-13-01T00:00:01.000Z","v":2}]',
        b'[{"t":"2012-01-01T00:00:00.000Z","v":1},{"v":2,"t":"2012-01-01T00:00:01.000Z"}]',
        b'[{"t":"2012-01-01T00:00:00.000Z","v":1},{"t":"2012-01-01T00:00:01.000Z","v":true}]',
        b'[{"t":"2012-01-01T00:00:00.000Z","v":1},,{"t":"2012-01-01T00:00:01.000Z","v":2}]',
    ],
)
def test_fast_points_leaves_unusual_bodies_to_the_general_path(body: bytes) -> None:
    assert fast_points(body) is None


#: The whole range of instants, whose local times in some zones fall outside years 1..9999.
any_stamps = st.one_of(stamps, st.integers(MIN_MS, MAX_MS))
render_zones = st.sampled_from(
    [*ZONES, "America/St_Johns", "Africa/Monrovia", "Australia/Lord_Howe"]
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(any_stamps, numbers), min_size=0, max_size=60, unique_by=lambda p: p[0]),
    render_zones,
    st.booleans(),
)
def test_render_points_is_orjson_of_points_json(
    items: list[tuple[int, float]], zone: str, numpy_path: bool
) -> None:
    """Both renderers (C, and numpy when the extension is not built) give orjson's bytes;
    the numpy one may decline (None) when the timestamps are not all of one width."""
    items.sort()
    ts = np.array([t for t, _ in items], np.int64)
    values = np.array([float(v) for _, v in items], np.float64)
    is_int = np.array([isinstance(v, int) for _, v in items], np.bool_)
    tz = get_zone(zone)
    expected = orjson.dumps(points_json(tz, ts, values, is_int))
    if numpy_path:
        rendered = _render_points_numpy(tz, ts, values, is_int) if len(ts) else None
        assert rendered in (None, expected)
    else:
        assert render_points(tz, ts, values, is_int) == expected


def test_render_points_in_c_takes_whole_ranges_and_declines_the_ends_of_time() -> None:
    """The C renderer handles years 1..9999 in any zone and says None beyond, where the
    general path renders."""
    ts = np.array([MIN_MS, 0, 1_000_000_000_123, MAX_MS], np.int64)
    numbers = orjson.dumps([1, 2.5, -0.0, 1e300])
    assert _speedups.render_points(ts, np.zeros(4, np.int64), numbers) == (
        b'[{"t":"0001-01-01T00:00:00.000Z","v":1},{"t":"1970-01-01T00:00:00.000Z","v":2.5},'
        b'{"t":"2001-09-09T01:46:40.123Z","v":-0.0},{"t":"9999-12-31T23:59:59.999Z","v":1e+300}]'
    )
    chicago = np.array([-21_036_000, 0, 0, 0], np.int64)  # -05:50:36 at 0001-01-01
    assert _speedups.render_points(ts, chicago, numbers) is None
    utc = np.zeros(3, np.int64)
    assert _speedups.render_points(ts[1:], utc, orjson.dumps([1, 2])) is None
    assert _speedups.render_points(ts[1:2], utc[:1], orjson.dumps([1, 2])) is None


@settings(max_examples=100, deadline=None)
@given(st.lists(stamps, min_size=1, max_size=50), st.sampled_from(ZONES))
def test_format_ascii_is_format(instants: list[int], zone: str) -> None:
    ts = np.array(sorted(instants), np.int64)
    tz = get_zone(zone)
    matrix = tz.format_ascii(ts)
    if matrix is not None:
        assert [bytes(row).decode() for row in matrix] == tz.format(ts)


def test_fast_points_takes_the_usual_layouts() -> None:
    for item, gap in (('{"t":"%s","v":%s}', ","), ('{"t": "%s", "v": %s}', ", ")):
        texts = [item % (f"2012-01-01T00:00:0{i}.000+0000", v) for i, v in enumerate([1, 2.5])]
        fast = fast_points(("[" + gap.join(texts) + "]").encode())
        assert fast is not None
        assert fast[0].tolist() == [1325376000000, 1325376001000]
        assert fast[1].tolist() == [1.0, 2.5]
        assert fast[2].tolist() == [True, False]
