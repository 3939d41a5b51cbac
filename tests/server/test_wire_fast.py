"""The C extension's body scanners, renderer and summary moments agree with the general path
(the reference) on every input.  These tests need the extension built (``make install``)."""

from __future__ import annotations

import sys
from collections.abc import Callable

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tempodb import _speedups
from tempodb.rollup import numpy_moments, summarize
from tempodb.server.wire import (
    c_points,
    key_error,
    number_texts,
    parse_multi,
    parse_multi_body,
    parse_points,
    points_json,
    render_points,
    summary_moments,
)
from tempodb.storage.base import BoolArray, Float64Array, Int64Array, SeriesRef
from tempodb.timeutil import MAX_MS, MIN_MS, parse_timestamp_ms
from tempodb.zones import MS_PER_DAY, get_zone

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
        ('{"t":"%(t)s","v":%(v)s}', ","),
        ('{"t": "%(t)s", "v": %(v)s}', ", "),
        ('{ "t" : "%(t)s" , "v" : %(v)s }', " ,\n"),
        ('{"v":%(v)s,"t":"%(t)s"}', ",\r\n\t"),
    ]
)
time_formats = st.sampled_from(["ms_z", "offset", "seconds", "date"])
body_parsers = pytest.mark.parametrize("parser", [c_points], ids=["c"])
BodyParser = Callable[[bytes], "tuple[Int64Array, Float64Array, BoolArray] | None"]


def _text(ms: int, form: str) -> str:
    text = np.datetime_as_string(np.datetime64(ms, "ms"), unit="ms")
    if form == "ms_z":
        return text + "Z"
    if form == "offset":
        return text + "+0000"
    if form == "seconds":
        return text[:19]
    return text[:10]


def _agrees_with_parse_points(parser: BodyParser, body: bytes) -> bool:
    """Whatever ``parser`` accepts decodes as ``parse_points``; what that rejects, it leaves.
    True when the parser took the body."""
    fast = parser(body)
    try:
        slow = parse_points(orjson.loads(body), REF)
    except Exception:
        assert fast is None
        return False
    if fast is None:
        return False
    ts, values, is_int = fast
    assert ts.tolist() == slow.ts.tolist()
    assert values.tobytes() == slow.values.tobytes()
    assert is_int.tolist() == slow.is_int.tolist()
    return True


@body_parsers
@settings(max_examples=300, deadline=None)
@given(
    items=st.lists(st.tuples(stamps, numbers), min_size=0, max_size=40),
    spelling=spellings,
    form=time_formats,
    mutate=st.booleans(),
)
def test_body_parsers_agree_with_parse_points(
    parser: BodyParser,
    items: list[tuple[int, float]],
    spelling: tuple[str, str],
    form: str,
    mutate: bool,
) -> None:
    item, gap = spelling
    texts = [item % {"t": _text(ms, form), "v": orjson.dumps(v).decode()} for ms, v in items]
    if mutate and texts:
        texts[-1] = texts[-1].replace('"v"', '"x"', 1)
    took = _agrees_with_parse_points(parser, ("[" + gap.join(texts) + "]").encode())
    if parser is c_points and texts and not mutate:
        # The C scanner takes every such body itself, but for subnormal values (strtod's
        # underflow) and the integer 2**53, which it leaves to the general path.
        assert took or any(0 < abs(v) < sys.float_info.min or abs(v) == 2**53 for _, v in items)


def _two(low: int, high: int) -> st.SearchStrategy[str]:
    return st.integers(low, high).map(lambda n: f"{n:02d}")


#: Texts near the spec §3.1 grammar: out-of-range fields, odd separators, fractions of 0-11
#: digits, offsets of every spelling and some that are not.
near_timestamps = st.builds(
    lambda y, mo, d, sep, h, mi, s, fraction, offset, cut: (
        f"{y:04d}-{mo}-{d}" + (f"{sep}{h}:{mi}" + s + fraction + offset)[:cut]
    ),
    st.integers(0, 9999),
    _two(0, 13),
    _two(0, 32),
    st.sampled_from(["T", " ", "t", "_"]),
    _two(0, 25),
    _two(0, 61),
    st.one_of(st.just(""), _two(0, 61).map(lambda s: ":" + s)),
    st.one_of(st.just(""), st.text("0123456789", max_size=11).map(lambda f: "." + f)),
    st.sampled_from(["", "Z", "z", "+00", "-05", "+0530", "-05:30", "+24:00", "+05:60", "+5"]),
    st.integers(0, 40),
)


@settings(max_examples=1000, deadline=None)
@given(st.lists(near_timestamps, min_size=1, max_size=3))
def test_c_points_reads_the_timestamp_grammar(texts: list[str]) -> None:
    """The C scanner takes every timestamp the grammar does, as the scalar parser reads it."""
    body = orjson.dumps([{"t": text, "v": 1} for text in texts])
    try:
        expected = [parse_timestamp_ms(text) for text in texts]
    except ValueError:
        assert c_points(body) is None
        return
    fast = c_points(body)
    assert fast is not None
    assert fast[0].tolist() == expected


#: JSON numbers and near misses: leading zeros, bare dots and exponents, signs, long digits.
near_numbers = st.builds(
    lambda sign, whole, fraction, exponent: sign + whole + fraction + exponent,
    st.sampled_from(["", "-", "+"]),
    st.one_of(st.text("0123456789", max_size=25), st.sampled_from(["0", "9007199254740992"])),
    st.one_of(st.just(""), st.text("0123456789", max_size=25).map(lambda f: "." + f)),
    st.one_of(
        st.just(""),
        st.tuples(st.sampled_from("eE"), st.sampled_from(["", "+", "-"]), st.integers(0, 400)).map(
            lambda e: f"{e[0]}{e[1]}{e[2]}"
        ),
    ),
)


@settings(max_examples=1000, deadline=None)
@given(st.lists(near_numbers, min_size=1, max_size=3))
def test_c_points_reads_numbers_as_orjson_does(texts: list[str]) -> None:
    items = ",".join('{"t":"2012-01-01T00:00:00.000Z","v":' + text + "}" for text in texts)
    _agrees_with_parse_points(c_points, f"[{items}]".encode())


#: Bodies of the usual shape that the numpy path leaves to the general one.
UNUSUAL_LAYOUTS = [
    b'[{"t":"2012-01-01T00:00:00.000Z","v":1},{"v":2,"t":"2012-01-01T00:00:01.000Z"}]',
    b'[{"t":"2012-01-01T00:00:00.000Z","v":1},{"t":"2012-01-01T00:00:01Z","v":2}]',
]


@body_parsers
@pytest.mark.parametrize(
    "body",
    [
        b'[{"t":"2012-01-01T00:00:00.000Z","v":1},{"t":"2012-01-01T00:00:01.000Z","v":"2"}]',
        b'[{"t":"2012-01-01T00:00:00.000Z","v":1},{"t":"2012-01-01T00:00:01.000Z","v":2,"x":{}}]',
        b'[{"t":"2012-01-01T00:00:00.000Z","v":1},{"t":"2012-01-01T00:00:01.000Z","v":1 2}]',
        b'[{"t":"2012-01-01T00:00:00.000Z","v":1},{"t":"2012-13-01T00:00:01.000Z","v":2}]',
        b'[{"t":"2012-01-01T00:00:00.000Z","v":1},{"t":"2012-01-01T00:00:01.000Z","v":true}]',
        b'[{"t":"2012-01-01T00:00:00.000Z","v":1},,{"t":"2012-01-01T00:00:01.000Z","v":2}]',
        b'[{"t":"2012-01-01T00:00:00.000Z","v":1},{"t":"2012-01-01T00:00:01.000Z","v":2},]',
        b'[{"t":"2012-01-01T00:00:00.000Z","v":1},{"t":"2012-01-01T00:00:01.000Z","v":null}]',
        b'[{"t":"2012-01-01T00:00:00.000Z","v":1},{"t":"2012-01-01T00:00:01\\u002e000Z","v":2}]',
        b'[{"t":"2012-01-01T00:00:00.000Z","v":1},{"t":"2012-01-01T00:00:01.000Z","t":"x"}]',
        b'[{"t":"2012-01-01T00:00:00.000Z","v":1},{"t":"2012-01-01T00:00:01.000Z","v":01}]',
        b'[{"t":"2012-01-01T00:00:00.000Z","v":1},{"t":"2012-01-01T00:00:01.000Z","v":NaN}]',
        b'[{"t":"2012-01-01T00:00:00.000Z","v":1},{"t":"2012-01-01T00:00:01.000Z","v":1e400}]',
        b'[{"t":"2012-01-01T00:00:00.000Z","v":1},{"t":"2012-01-01T00:00:01.000Z","v":-0x1}]',
        b'[{"t":"2012-01-01T00:00:00.000Z","v":1},{"t":"2012-01-01T00:00:01.000Z"}]',
        b'[{"t":"2012-01-01T00:00:00.000Z","v":9007199254740992},{"t":"2012-01-01","v":2}]',
        b'[{"t":"2012-01-01T00:00:00.000Z","v":1},{"t":"2012-01-01T00:00:01.000Z","v":2}] x',
        b'[{"t":"2012-01-01T00:00:00.000Z","v":1},{"t":"2012-01-01T00:00:01.000Z","v":2}\f]',
        b'{"t":"2012-01-01T00:00:00.000Z","v":1}',
        b"[]",
    ],
)
def test_body_parsers_leave_unusual_bodies_to_the_general_path(
    parser: BodyParser, body: bytes
) -> None:
    assert parser(body) is None


@pytest.mark.parametrize("body", UNUSUAL_LAYOUTS)
def test_c_points_takes_unusual_layouts(body: bytes) -> None:
    assert _agrees_with_parse_points(c_points, body)


#: The whole range of instants, whose local times in some zones fall outside years 1..9999.
any_stamps = st.one_of(stamps, st.integers(MIN_MS, MAX_MS))
render_zones = st.sampled_from(
    [*ZONES, "America/St_Johns", "Africa/Monrovia", "Australia/Lord_Howe"]
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(any_stamps, numbers), min_size=0, max_size=60, unique_by=lambda p: p[0]),
    render_zones,
)
def test_render_points_is_orjson_of_points_json(items: list[tuple[int, float]], zone: str) -> None:
    """The C renderer gives orjson's bytes of the general path's objects."""
    items.sort()
    ts = np.array([t for t, _ in items], np.int64)
    values = np.array([float(v) for _, v in items], np.float64)
    is_int = np.array([isinstance(v, int) for _, v in items], np.bool_)
    tz = get_zone(zone)
    expected = orjson.dumps(points_json(tz, ts, values, is_int))
    assert render_points(tz, ts, values, is_int) == expected
    # The C renderer itself: it must take every range whose local times are in years
    # 1..9999 (render_points would hide a renderer that always declines).
    offsets = tz.shown_offsets_ms(ts)
    in_c = _speedups.render_points(ts, offsets, number_texts(values, is_int))
    local = ts + offsets
    if len(ts) and bool(((local >= MIN_MS) & (local <= MAX_MS)).all()):
        assert in_c == expected
    else:
        assert in_c is None


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
@given(
    stamps,
    st.lists(st.integers(0, 64 * MS_PER_DAY), min_size=1, max_size=50),
    st.sampled_from(ZONES),
)
def test_format_ascii_is_format(first: int, later: list[int], zone: str) -> None:
    """Instants within about two months: ``format_ascii`` must answer in every zone whose
    offsets render alike (London's ``Z`` and ``+01:00`` do not), and answer ``format``."""
    ts = np.array(sorted(first + t for t in later), np.int64)
    tz = get_zone(zone)
    matrix = tz.format_ascii(ts)
    if zone != "Europe/London":
        assert matrix is not None
    if matrix is not None:
        assert [bytes(row).decode() for row in matrix] == tz.format(ts)


@body_parsers
def test_body_parsers_take_the_usual_layouts(parser: BodyParser) -> None:
    for item, gap in (('{"t":"%s","v":%s}', ","), ('{"t": "%s", "v": %s}', ", ")):
        texts = [item % (f"2012-01-01T00:00:0{i}.000+0000", v) for i, v in enumerate([1, 2.5])]
        fast = parser(("[" + gap.join(texts) + "]").encode())
        assert fast is not None
        assert fast[0].tolist() == [1325376000000, 1325376001000]
        assert fast[1].tolist() == [1.0, 2.5]
        assert fast[2].tolist() == [True, False]


finite_values = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e150, max_value=1e150)


@settings(max_examples=300, deadline=None)
@given(st.lists(finite_values, min_size=1, max_size=600))
def test_summary_moments_in_c_are_numpys_doubles(values: list[float]) -> None:
    vals = np.array(values, np.float64)
    assert _speedups.summary_moments(vals) == numpy_moments(vals)


@pytest.mark.parametrize("size", [1, 7, 8, 9, 127, 128, 129, 256, 1000, 14_401, 100_001])
def test_summary_moments_in_c_follow_numpys_pairwise_sums(size: int) -> None:
    rng = np.random.default_rng(size)
    for vals in (
        rng.normal(20.0, 5.0, size),
        np.round(rng.normal(0, 1e9, size)),
        -rng.random(size),
    ):
        assert _speedups.summary_moments(vals) == numpy_moments(vals)
        ints = np.round(vals) == vals
        assert summarize(vals, ints, summary_moments) == summarize(vals, ints)


def test_summary_moments_in_c_want_float64_values() -> None:
    with pytest.raises(TypeError, match="float64"):
        _speedups.summary_moments(np.arange(3))
    with pytest.raises(ValueError, match="no values"):
        _speedups.summary_moments(np.zeros(0))


# -- multi write bodies ------------------------------------------------------------------------

series_names = st.one_of(
    st.text("ab.:;-_/ Z9", min_size=1, max_size=6),
    st.sampled_from(["", "a\\b", 'a"b', "é", "x" * 255, "x" * 256, "a\nb"]),
)
multi_members = st.tuples(
    st.sampled_from(["key", "id", "both", "none"]),
    series_names,
    stamps,
    st.one_of(numbers.map(lambda v: orjson.dumps(v).decode()), st.sampled_from(['"3"', "null"])),
)


def _multi_item(field: str, name: str, ms: int, value: str, order: int) -> str:
    members = {"t": orjson.dumps(_text(ms, "ms_z")).decode(), "v": value}
    if field in ("key", "both"):
        members["key"] = orjson.dumps(name).decode()
    if field in ("id", "both"):
        members["id"] = orjson.dumps(name).decode()
    names = sorted(members, key=lambda n: (hash(n) ^ order) % 7)
    return "{" + ", ".join(f'"{n}": {members[n]}' for n in names) + "}"


@settings(max_examples=400, deadline=None)
@given(items=st.lists(st.tuples(multi_members, st.integers(0, 6)), min_size=1, max_size=30))
def test_c_multi_parser_agrees_with_parse_multi(
    items: list[tuple[tuple[str, str, int, str], int]],
) -> None:
    """A multi body decodes the same through C as through the general path, refs numbered
    alike; the usual shape (plain keys or ids, timestamps, numbers) always takes C."""
    body = ("[" + ",".join(_multi_item(*m, order) for m, order in items) + "]").encode()
    slow = parse_multi(orjson.loads(body))
    fast = parse_multi_body(body, lambda: orjson.loads(body))
    assert fast.batch.refs == slow.batch.refs
    assert fast.batch.ref_index.tolist() == slow.batch.ref_index.tolist()
    assert fast.batch.ts.tolist() == slow.batch.ts.tolist()
    assert fast.batch.values.tobytes() == slow.batch.values.tobytes()
    assert fast.batch.is_int.tolist() == slow.batch.is_int.tolist()
    assert fast.failed == slow.failed
    assert fast.multistatus() == slow.multistatus()
    usual = all(
        field in ("key", "id") and key_error(name) is None and "\\" not in name
        and not value.startswith(('"', "n")) and not _big_integer(value)
        and not 0 < abs(float(value)) < sys.float_info.min  # strtod's underflow: general path
        for (field, name, _, value), _ in items
    )  # fmt: skip
    assert (_speedups.parse_multi_points(body) is not None) == usual


def _big_integer(text: str) -> bool:
    """A number the C scanner leaves to the general path: an integer from 2**53 on, or a
    subnormal float (strtod reports it out of range)."""
    if not any(c in text for c in ".eE"):
        return abs(int(text)) >= 2**53
    return 0 < abs(float(text)) < sys.float_info.min


def test_c_multi_parser_numbers_series_by_field_and_text() -> None:
    body = (
        b'[{"t":"2012-01-01","key":"a","v":1},{"t":"2012-01-02","id":"a","v":2},'
        b'{"key":"a","v":3,"t":"2012-01-03"},{"id":"b","t":"2012-01-03","v":4.5}]'
    )
    parsed = parse_multi_body(body, lambda: pytest.fail("the general path ran"))
    assert parsed.batch.refs == [
        SeriesRef("key", "a"), SeriesRef("id", "a"), SeriesRef("id", "b")
    ]  # fmt: skip
    assert parsed.batch.ref_index.tolist() == [0, 1, 0, 2]
    assert parsed.batch.values.tolist() == [1, 2, 3, 4.5]
    assert parsed.batch.is_int.tolist() == [True, True, True, False]
    assert not parsed.failed
