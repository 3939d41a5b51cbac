"""The InfluxQL of ``/query`` without a server: the parser (precedence, column names, time
bounds under OR, strings read in the tz() zone) and InfluxDB's arithmetic, fills and
percentiles on their own (tests/integration/test_influx_query.py compares whole answers with
a real InfluxDB 1.6)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tempodb.server.influx.influxql import (
    Aggregate,
    AllOf,
    AnyOf,
    Arithmetic,
    Number,
    QueryError,
    Select,
    TagCondition,
    Unsupported,
    parse_query,
)
from tempodb.server.influx.query import (
    EMPTY,
    _apply,
    _filled,
    _linear,
    _median,
    _percentile,
)

NOW = 1_700_000_000_000_000_000


def select(q: str) -> Select:
    [statement] = parse_query(q, NOW)
    assert isinstance(statement, Select)
    return statement


def test_arithmetic_binds_as_in_influxql() -> None:
    mean = Aggregate("mean", "x")
    query = select("SELECT 1 - 2 - mean(x) * 3 % 4, -mean(x) FROM m")
    first, second = (column.expr for column in query.fields)
    assert first == Arithmetic(
        "-",
        Arithmetic("-", Number(1), Number(2)),
        Arithmetic("%", Arithmetic("*", mean, Number(3)), Number(4)),
    )
    assert second == Arithmetic("*", Number(-1), mean)
    assert query.aggregates == (mean,)
    assert query.selector is None


@pytest.mark.parametrize(
    ("q", "columns"),
    [
        ("SELECT max(a) - min(a), mean(a) * 100 AS pct FROM m", ("max_min", "pct")),
        ("SELECT max(a), max(a) AS max_1, max(a) FROM m", ("max", "max_1", "max_2")),
        ("SELECT max(a), mean(a) AS max FROM m", ("max_1", "max")),
        ("SELECT max(a) AS x, min(a) AS x FROM m", ("x", "x")),
        ("SELECT percentile(a, 5), percentile(a, 50) + 1 FROM m", ("percentile", "percentile_1")),
    ],
)
def test_column_names_as_influxdb_makes_them(q: str, columns: tuple[str, ...]) -> None:
    assert select(q).columns == columns


def test_a_selector_alone_is_named() -> None:
    assert select("SELECT max(a) * 2 FROM m").selector == Aggregate("max", "a")
    assert select("SELECT max(a), max(a) FROM m").selector == Aggregate("max", "a")
    assert select("SELECT max(a), min(a) FROM m").selector is None
    assert select("SELECT percentile(a, 90) FROM m").selector == Aggregate("percentile", "a", 90)
    grouped = "SELECT max(a) FROM m WHERE time > now() - 1h GROUP BY time(1m)"
    assert select(grouped).selector is None


def test_or_binds_looser_than_and_and_time_bounds_are_taken_out() -> None:
    query = select(
        "SELECT mean(x) FROM m WHERE time >= 5 AND (a = '1' OR b = '2' AND c = '3') AND time < 9"
    )
    assert (query.start_ns, query.end_ns) == (5, 8)
    a, b, c = (TagCondition(k, "=", v) for k, v in (("a", "1"), ("b", "2"), ("c", "3")))
    assert query.where == AnyOf((a, AllOf((b, c))))
    assert query.where.matches({"b": "2", "c": "3"})
    assert not query.where.matches({"b": "2"})


@pytest.mark.parametrize(
    "where",
    [
        "time > 5 OR a = '1'",
        "(time > 5 AND a = '1') OR b = '2'",
        "a = '1' AND (b = '2' OR (time < 5))",
    ],
)
def test_time_bounds_under_or_are_refused(where: str) -> None:
    with pytest.raises(Unsupported, match="time conditions under OR"):
        select(f"SELECT mean(x) FROM m WHERE {where}")


def test_time_strings_without_an_offset_are_the_zones_wall_clock() -> None:
    def start(when: str, zone: str) -> int | None:
        query = select(f"SELECT mean(x) FROM m WHERE time >= '{when}' tz('{zone}')")
        return query.start_ns

    second = 10**9
    assert start("2024-01-15 12:00:00", "Europe/Paris") == 1_705_316_400 * second
    assert start("2024-01-15T12:00:00Z", "Europe/Paris") == 1_705_320_000 * second
    assert start("2024-01-15T12:00:00+05:00", "Europe/Paris") == 1_705_302_000 * second
    # Skipped (02:30 on 2024-03-10 in Chicago) and repeated (01:30 on 2024-11-03) wall
    # times are placed as Go's time.Date places them: 07:30Z (01:30 CST), and 06:30Z (CDT).
    assert start("2024-03-10 02:30:00", "America/Chicago") == 1_710_055_800 * second
    assert start("2024-11-03 01:30:00", "America/Chicago") == 1_730_615_400 * second
    # Paris skips 02:00-03:00 on 2024-03-31: 02:30 is 01:30Z.
    assert start("2024-03-31 02:30:00", "Europe/Paris") == 1_711_848_600 * second


@pytest.mark.parametrize(
    ("q", "error"),
    [
        ("SELECT mean(x) FROM m tz('Nowhere/Else')", "unable to find time zone"),
        ("SELECT mean(x) FROM m tz('+01:00')", "unable to find time zone"),
        ("SELECT mean(x) * 99999999999999999999 FROM m", "out of range"),
        ("SELECT mean(x) * 1e999 FROM m", "out of range"),
        ("SELECT 1 FROM m", "at least one variable"),
        ("SELECT x + 1 FROM m", "arithmetic on raw fields"),
        ("SELECT mean(x) | 1 FROM m", "operator |"),
        ("SELECT percentile(x, y) FROM m", "float argument"),
        ("SELECT x FROM m fill(none)", "must be used with a function"),
    ],
)
def test_what_cannot_be_read(q: str, error: str) -> None:
    with pytest.raises(QueryError, match=error.replace("|", r"\|")):
        parse_query(q, NOW)


@pytest.mark.parametrize(
    ("op", "left", "right", "result"),
    [
        ("+", 2, 3, 5),
        ("/", 7, 2, 3.5),
        ("/", 7, 0, 0),
        ("/", 7.5, 0, 0.0),
        ("%", -7, 3, -1),  # Go's %: the sign of the dividend
        ("%", 7, -3, 1),
        ("%", 7, 0, 0),
        ("%", 7.5, 0, None),
        ("%", -7.5, 2, -1.5),
        ("*", 2**62, 4, 0),  # 64-bit integers wrap
        ("+", 2**63 - 1, 1, -(2**63)),
        ("*", 1.5, 2, 3.0),
    ],
)
def test_arithmetic_as_influxdb_computes_it(
    op: str, left: int | float, right: int | float, result: Any
) -> None:
    got = _apply(op, left, right)
    assert got == result
    assert type(got) is type(result)


def test_percentile_is_the_nearest_rank_and_median_the_middle() -> None:
    values = np.array([5.0, 1.0, 4.0, 2.0, 3.0, 10.0, 30.0, 20.0])
    starts = np.array([0, 5])  # two buckets: five values, then three
    picked = _percentile(values, starts, 50)
    assert values[picked].tolist() == [3.0, 20.0]
    assert _percentile(values, starts, 0).tolist() == [-1, -1]
    assert _percentile(values, starts, 200).tolist() == [-1, -1]
    # Rank floor(n * N / 100 + 0.5) - 1: just over 100 is still the largest of few values.
    assert values[_percentile(values, starts, 101)].tolist() == [5.0, 30.0]
    assert _percentile(values, starts, 10).tolist() == [1, -1]  # 1.0 of five; of three none
    assert values[_percentile(values, starts, 100)].tolist() == [5.0, 30.0]
    assert _median(values, starts).tolist() == [3.0, 20.0]
    # Of equal values, the earliest (for its time).
    assert _percentile(np.array([2.0, 1.0, 2.0, 2.0, 3.0]), np.array([0]), 60).tolist() == [0]
    assert _median(np.array([1.0, 4.0]), np.array([0])).tolist() == [2.5]


def test_fills() -> None:
    count, mean = Aggregate("count", "x"), Aggregate("mean", "x")
    column = [EMPTY, 1, EMPTY, EMPTY, 4, EMPTY]
    times = [t * 60 * 10**9 for t in range(6)]
    assert _filled(count, column, "null", times, 60 * 10**9) == [0, 1, 0, 0, 4, 0]
    assert _filled(mean, column, "null", times, 60 * 10**9) == [None, 1, None, None, 4, None]
    assert _filled(mean, column, 7.0, times, 60 * 10**9) == [7.0, 1, 7.0, 7.0, 4, 7.0]
    assert _filled(count, column, 7.0, times, 60 * 10**9) == [7, 1, 7, 7, 4, 7]
    assert _filled(mean, column, "previous", times, 60 * 10**9) == [None, 1, 1, 1, 4, 4]
    assert _filled(mean, column, "none", times, 60 * 10**9) == column
    # Linear: over bucket numbers; integers truncated toward zero.
    assert _linear(column, times, 60 * 10**9) == [None, 1, 2, 3, 4, None]
    assert _linear([0, EMPTY, EMPTY, 1], times[:4], 60 * 10**9) == [0, 0, 0, 1]
    assert _linear([0.0, EMPTY, EMPTY, 1.0], times[:4], 60 * 10**9)[1] == pytest.approx(1 / 3)
    # Days of 23 and 25 hours count as one step each.
    hour = 3600 * 10**9
    midnights = [5 * hour, 29 * hour, 54 * hour]  # Chicago: CDT, CDT, then 25 hours to CST
    assert _linear([0.0, EMPTY, 2.0], midnights, 24 * hour) == [0.0, 1.0, 2.0]
