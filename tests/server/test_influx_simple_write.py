"""The fast path of ``POST /write`` (``write.plan_simple``): a body of simple lines read in
bulk gives exactly the plan of the line-by-line reading, and any other body is left to it."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tempodb.server.influx.parse import PRECISIONS, parse_lines
from tempodb.server.influx.write import WritePlan, plan_simple, plan_write

NOW_NS = 1_700_000_000_123_456_789


def slow(text: str, precision: str) -> tuple[WritePlan, list[str]]:
    parsed = parse_lines(text, precision)
    plan = plan_write(parsed.points, NOW_NS)
    return plan, parsed.errors + plan.refused


def assert_same(fast: WritePlan, plan: WritePlan) -> None:
    assert fast.refs == plan.refs
    assert fast.attributes == plan.attributes
    assert fast.refused == plan.refused == []
    a, b = fast.batch, plan.batch
    assert a.refs == b.refs
    assert a.ref_index.dtype == b.ref_index.dtype
    assert np.array_equal(a.ref_index, b.ref_index)
    assert a.ts.dtype == b.ts.dtype
    assert np.array_equal(a.ts, b.ts)
    assert a.values.dtype == b.values.dtype
    assert np.array_equal(a.values.view(np.int64), b.values.view(np.int64))  # to the bit
    assert np.array_equal(a.is_int, b.is_int)


def check(text: str, precision: str = "ms") -> WritePlan | None:
    """``plan_simple``'s plan, asserted equal to the slow path's (which must then have no
    message); None when it leaves the body to the slow path."""
    fast = plan_simple(text, PRECISIONS[precision])
    if fast is not None:
        plan, messages = slow(text, precision)
        assert messages == []
        assert_same(fast, plan)
    return fast


def test_the_benchmark_shape_takes_the_fast_path() -> None:
    lines = [
        f"m,s=series-{i % 3} v={20.0 + i / 7!r} {1325376000000 + 60000 * i}" for i in range(50)
    ]
    for body in ("\n".join(lines), "\n".join(lines) + "\n"):
        plan = check(body)
        assert plan is not None
        assert list(plan.refs) == ["m.v;s:series-0", "m.v;s:series-1", "m.v;s:series-2"]
        assert plan.batch.ref_index.tolist() == [i % 3 for i in range(50)]


def test_timestamps_of_one_width_with_many_series() -> None:
    lines = [f"m,s={i % 7} v={i}.5 {i:013d}" for i in range(300)]
    plan = check("\n".join(lines) + "\n")
    assert plan is not None
    assert plan.batch.ts.tolist() == list(range(300))
    assert plan.batch.ref_index.tolist() == [i % 7 for i in range(300)]


@pytest.mark.parametrize("precision", sorted(PRECISIONS))
def test_every_precision_rounds_as_the_slow_path(precision: str) -> None:
    body = "cpu,host=a,dc=x idle=1 -1\ncpu,dc=x,host=a idle=2.5 1999999\ncpu idle=.5 0\n"
    plan = check(body, precision)
    assert plan is not None
    assert len(plan.refs) == 2  # the same tags in another order are the same series


@pytest.mark.parametrize(
    "body",
    [
        "",
        "\n",
        "m v=1 1\n\nm v=2 2",  # a blank line
        "# comment\nm v=1 1",
        " m v=1 1",  # leading blank
        "m v=1 1 ",  # trailing blank
        "m  v=1 1",  # two spaces
        "m v=1",  # no timestamp
        "m v=1,w=2 1",  # two fields
        "m v=1i 1",
        "m v=1u 1",
        "m v=true 1",
        'm v="s" 1',
        "m v=+1 1",
        "m v=1_0 1",
        "m v=nan 1",
        "m v=inf 1",
        "m v=1e999 1",
        "m v=- 1",
        "m v=. 1",
        "m v=1 +1",
        "m v=1 1_0",
        "m v=1 9223372036854775807",  # beyond InfluxDB's range once in ns
        "m v=1 1\r\nm v=1 2",
        "m,a=1,a=2 v=1 1",  # duplicate tag
        "m,a v=1 1",
        "m, v=1 1",
        ",a=1 v=1 1",
        "m time=1 1",
        "m,time=1 v=1 1",
        "m,_field=1 v=1 1",
        "m\\ x v=1 1",
        "m\tx v=1 1",
        "m\x0cx v=1 1",
        "m v=1 1\x0c",
        "mé v=1 1",
        "m v=1 1\nm v=oops 2",  # one bad line: the slow path answers a partial write
        "m v=1\nm v=1 2 3",  # two lines of two and four sections
        "m v=1 2 3\nm v=1",
        "m v=1,2 1",
        "m a,b=1 1",
        "m =1 1",
        "m v= 1",
        "m v==1 1",
        "m v=1=2 1",
        "m v=1e5e 1",
        "m v=-+1 1",
        "m v=1,+1 1",
        "m v=1 -",
        "m v=1 --1",
        "m v=1 1-2",
        "m v=1 1,2",
        "m,t=" + "x" * 1025 + " v=1 1",  # a name too long
    ],
)
def test_other_bodies_are_left_to_the_slow_path(body: str) -> None:
    assert plan_simple(body, PRECISIONS["ms"]) is None


_KEYS = st.text(alphabet="mab,=_-. #\\\t", min_size=0, max_size=8)
_FIELDS = st.sampled_from(["v", "x", "time", "", "v,w", "a=b", "_field", "é"])
_VALUES = st.sampled_from(
    [
        "1",
        "-1.5",
        ".5",
        "5.",
        "1e3",
        "1E+3",
        "-0",
        "+1",
        "1i",
        "1u",
        "nan",
        "inf",
        "1e999",
        "1_0",
        "",
        "t",
        "-",
        "--1",
        "0x10",
        "1e",
        "1.2.3",
        "00.5",
    ]
)
_TIMES = st.sampled_from(
    [
        "0",
        "-1",
        "123",
        "+5",
        "007",
        "9223372036854775807",
        "9223372036854775806",
        "-9223372036854775806",
        "9223372036854",
        "-9223372036854",
        "1_0",
        "",
        "1.5",
        "000123",
        "999999999999999999",
        "1234567890123456789",
        "-123456789012",
        "12a",
        "1,2",
    ]
)
_SPACES = st.sampled_from([" ", " ", " ", "  ", "\t"])
_LINES = st.tuples(_KEYS, _SPACES, _FIELDS, _VALUES, _SPACES, _TIMES).map(
    lambda p: f"{p[0]}{p[1]}{p[2]}={p[3]}{p[4]}{p[5]}"
)


def _simple(times: st.SearchStrategy[int]) -> st.SearchStrategy[str]:
    return st.tuples(
        st.sampled_from(["m", "m,s=a", "m,s=b", "cpu,h=1,d=2", "cpu,d=2,h=1"]),
        st.sampled_from(["v", "x"]),
        st.floats(allow_nan=False, allow_infinity=False).map(repr),
        times.map(str),
    ).map(lambda p: f"{p[0]} {p[1]}={p[2]} {p[3]}")


_SIMPLE = _simple(st.integers(-(10**13), 10**13))
#: Timestamps within InfluxDB's range in every precision (2e6 hours is 7.2e18 ns).
_IN_RANGE = _simple(st.integers(-2_000_000, 2_000_000))
#: Timestamps of 13 digits (as epoch milliseconds are, within range), leading zeros included.
_FIXED = _simple(st.integers(0, 9 * 10**12)).map(
    lambda line: line[: line.rindex(" ") + 1] + f"{int(line[line.rindex(' ') + 1 :]):013d}"
)


@given(
    lines=st.lists(st.one_of(_SIMPLE, _FIXED, _FIXED, _LINES), min_size=1, max_size=8),
    end=st.sampled_from(["", "\n", "\r\n", "\n\n"]),
    precision=st.sampled_from(sorted(PRECISIONS)),
)
@settings(max_examples=600, deadline=None)
def test_the_fast_path_is_the_slow_path(lines: list[str], end: str, precision: str) -> None:
    check("\n".join(lines) + end, precision)


@given(
    lines=st.lists(_IN_RANGE, min_size=1, max_size=20),
    precision=st.sampled_from(sorted(PRECISIONS)),
)
@settings(max_examples=200, deadline=None)
def test_simple_lines_take_the_fast_path(lines: list[str], precision: str) -> None:
    assert check("\n".join(lines), precision) is not None


@given(lines=st.lists(_FIXED, min_size=1, max_size=20))
@settings(max_examples=200, deadline=None)
def test_epoch_milliseconds_take_the_fast_path(lines: list[str]) -> None:
    assert check("\n".join(lines), "ms") is not None
