"""Tests of tempodb.rollup: the interval grammar, the fold functions, the summary, and the bucket
engine against a brute-force reference built directly on zoneinfo."""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from functools import cache
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tempodb.rollup import (
    FUNCTION_NAMES,
    Folded,
    Interval,
    auto_interval,
    bucket_labels,
    bucket_starts,
    parse_function,
    parse_interval,
    rollup,
    summarize,
)
from tempodb.zones import Zone, get_zone

MINUTE = 60_000
HOUR = 3_600_000
DAY = 86_400_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MS = timedelta(milliseconds=1)


def utc_ms(text: str) -> int:
    """Epoch ms of an ISO timestamp with an offset."""
    return (datetime.fromisoformat(text) - EPOCH) // MS


def fold(
    ts: Sequence[int],
    values: Sequence[float | int],
    *,
    interval: str,
    function: str,
    zone: str,
    start: int,
) -> Folded:
    """Run the engine on Python lists; ints in ``values`` are int points."""
    return rollup(
        np.array(ts, dtype=np.int64),
        np.array([float(v) for v in values]),
        np.array([isinstance(v, int) for v in values]),
        interval=_interval(interval),
        function=function,
        zone=get_zone(zone),
        start_ms=start,
    )


def _interval(text: str) -> Interval:
    interval = parse_interval(text)
    assert interval is not None
    return interval


def rendered(folded: Folded, zone: str) -> list[str]:
    return get_zone(zone).format(folded.ts)


# ---------------------------------------------------------------- interval grammar


@pytest.mark.parametrize(
    ("text", "count", "unit", "iso"),
    [
        ("1min", 1, "minute", "PT1M"),
        ("5min", 5, "minute", "PT5M"),
        ("15mins", 15, "minute", "PT15M"),
        ("1minute", 1, "minute", "PT1M"),
        ("30minutes", 30, "minute", "PT30M"),
        ("1hour", 1, "hour", "PT1H"),
        ("6hours", 6, "hour", "PT6H"),
        ("1day", 1, "day", "P1D"),
        ("2days", 2, "day", "P2D"),
        ("1week", 1, "week", "P1W"),
        ("2weeks", 2, "week", "P2W"),
        ("1month", 1, "month", "P1M"),
        ("3months", 3, "month", "P3M"),
        ("1year", 1, "year", "P1Y"),
        ("10years", 10, "year", "P10Y"),
        ("1HOUR", 1, "hour", "PT1H"),
        ("5Min", 5, "minute", "PT5M"),
        ("007min", 7, "minute", "PT7M"),
        ("PT5M", 5, "minute", "PT5M"),
        ("pt5m", 5, "minute", "PT5M"),
        ("PT6H", 6, "hour", "PT6H"),
        ("PT24H", 24, "hour", "PT24H"),
        ("PT60M", 60, "minute", "PT60M"),
        ("P1D", 1, "day", "P1D"),
        ("P1W", 1, "week", "P1W"),
        ("P1M", 1, "month", "P1M"),
        ("P3M", 3, "month", "P3M"),
        ("P1Y", 1, "year", "P1Y"),
        ("P1Y6M", 18, "month", "P18M"),
        ("P0Y2M", 2, "month", "P2M"),
        ("P1W2D", 9, "day", "P9D"),
        ("P1DT2H", 26, "hour", "PT26H"),
        ("P1DT30M", 1470, "minute", "PT1470M"),
        ("PT1H30M", 90, "minute", "PT90M"),
        ("PT2H0M", 2, "hour", "PT2H"),
        ("PT120S", 2, "minute", "PT2M"),
        ("PT3600S", 1, "hour", "PT1H"),
        ("PT1M60S", 2, "minute", "PT2M"),
        # Fields of 0 beside others do not change the unit: one day, not 24 hours.
        ("P1DT0H", 1, "day", "P1D"),
        ("P1DT0H0M0S", 1, "day", "P1D"),
        ("P0DT6H", 6, "hour", "PT6H"),
        ("P1Y0M", 1, "year", "P1Y"),
        ("P0Y0M1D", 1, "day", "P1D"),
    ],
)
def test_valid_intervals(text: str, count: int, unit: str, iso: str) -> None:
    interval = parse_interval(text)
    assert interval == Interval(count, unit)  # type: ignore[arg-type]
    assert interval.iso == iso


@pytest.mark.parametrize("text", ["raw", "RAW", "Raw"])
def test_raw(text: str) -> None:
    assert parse_interval(text) is None


@pytest.mark.parametrize(
    "text",
    [
        "",
        "min",
        "hour",
        "5",
        "0min",
        "00hour",
        "-1hour",
        "+1hour",
        "1.5hour",
        "1 hour",
        " 1hour",
        "1hour ",
        "1m",
        "1h",
        "1d",
        "1sec",
        "1second",
        "1fortnight",
        "1hourly",
        "P",
        "PT",
        "P1DT",
        "PT0M",
        "P0D",
        "P0Y0M",
        "PT30S",
        "PT90S",
        "P1YT1H",
        "P1Y1D",
        "P1M1W",
        "PT1.5H",
        "P1H",
        "PT1D",
        "P1D2W",
        "P-1D",
        "PT5M5H",
        "1e3min",
        "\uff15min",
        "6000000000min",
        "100000000hour",
        "3700000day",
        "600000week",
        "130000month",
        "10001year",
        "9" * 40 + "min",
        "rawx",
        "P1Y2M3W",
    ],
)
def test_invalid_intervals(text: str) -> None:
    with pytest.raises(ValueError, match=r"^Invalid interval: "):
        parse_interval(text)


def test_invalid_interval_message_echoes_text() -> None:
    with pytest.raises(ValueError, match=r"^Invalid interval: 7fortnights$"):
        parse_interval("7fortnights")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("PT90S", "seconds must make whole minutes"),
        ("PT0S", "a period of zero length"),
        ("P1Y1D", "months or years cannot be mixed with other fields"),
    ],
)
def test_invalid_iso_period_says_why(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=rf"^Invalid interval: {text} \(.*{reason}\)$"):
        parse_interval(text)


def test_long_parameters_are_not_echoed_whole() -> None:
    with pytest.raises(ValueError, match=r"^Invalid interval: P+\.\.\. ") as raised:
        parse_interval("P" * 5000)
    assert len(str(raised.value)) < 200
    assert "(5,000 characters)" in str(raised.value)
    with pytest.raises(ValueError, match=r"^Invalid function: x+\.\.\. ") as raised:
        parse_function("x" * 5000)
    assert len(str(raised.value)) < 200


@settings(max_examples=100, deadline=None)
@given(
    unit=st.sampled_from(["minute", "hour", "day", "week", "month", "year"]),
    count=st.integers(1, 10_000),
)
def test_interval_round_trips(unit: str, count: int) -> None:
    interval = Interval(count, unit)  # type: ignore[arg-type]
    assert parse_interval(interval.iso) == interval
    assert parse_interval(f"{count}{unit}s") == interval
    short = "min" if unit == "minute" else unit
    assert parse_interval(f"{count}{short}".upper()) == interval


def test_interval_validates_itself() -> None:
    with pytest.raises(ValueError, match="Invalid interval"):
        Interval(0, "hour")
    with pytest.raises(ValueError, match="Invalid interval unit"):
        Interval(1, "second")  # type: ignore[arg-type]
    assert Interval(5, "minute").step_ms == 5 * MINUTE
    assert Interval(2, "hour").step_ms == 2 * HOUR
    assert Interval(1, "day").step_ms is None


@pytest.mark.parametrize("name", [*FUNCTION_NAMES, "AVG", "Mean", "StdDev", "COUNT", "SS"])
def test_valid_functions(name: str) -> None:
    assert parse_function(name) == name.lower()


@pytest.mark.parametrize(
    "name", ["", "median", "first", "variance", "percentile,50", " sum", "avg ", "mult", "range"]
)
def test_invalid_functions(name: str) -> None:
    with pytest.raises(ValueError, match=r"^Invalid function: "):
        parse_function(name)


def test_rollup_rejects_unknown_function() -> None:
    with pytest.raises(ValueError, match="Invalid function: median"):
        fold([0], [1], interval="1hour", function="median", zone="UTC", start=0)


@pytest.mark.parametrize(
    ("span", "expected"),
    [
        (0, None),
        (DAY, None),
        (2 * DAY, None),
        (2 * DAY + 1, Interval(1, "hour")),
        (30 * DAY, Interval(1, "hour")),
        (30 * DAY + 1, Interval(1, "day")),
        (3650 * DAY, Interval(1, "day")),
    ],
)
def test_auto_interval(span: int, expected: Interval | None) -> None:
    start = 1_356_998_400_000
    assert auto_interval(start, start + span) == expected


# ---------------------------------------------------------------- summary


def test_summary_worked_example() -> None:
    summary = summarize(np.array([61.5, 64.0, 59.25]), np.array([False, True, False]))
    assert summary == {
        "sum": 184.75,
        "mean": 61.583333333333336,
        "max": 64,
        "min": 59.25,
        "stddev": 2.376096238230542,
        "ss": 11.291666666666666,
        "count": 3,
    }
    assert list(summary) == ["sum", "mean", "max", "min", "stddev", "ss", "count"]
    assert type(summary["max"]) is int
    assert type(summary["min"]) is float
    assert type(summary["count"]) is int
    assert type(summary["sum"]) is float


def test_summary_net_sample() -> None:
    summary = summarize(np.array([4.0, 3.0, 2.0, 3.0]), np.ones(4, np.bool_))
    assert summary["ss"] == 2.0
    assert summary["stddev"] == pytest.approx(0.8165, abs=1e-4)
    assert summary["sum"] == 12
    assert type(summary["sum"]) is int
    assert summary["mean"] == 3.0
    assert type(summary["mean"]) is float


def test_summary_empty_and_single() -> None:
    assert summarize(np.zeros(0), np.zeros(0, np.bool_)) == {}
    one = summarize(np.array([7.0]), np.array([True]))
    assert one == {"sum": 7, "mean": 7.0, "max": 7, "min": 7, "stddev": 0.0, "ss": 0.0, "count": 1}
    assert type(one["stddev"]) is float
    assert type(one["ss"]) is float


def test_summary_type_rules() -> None:
    # A float tie with an int still reports the int.
    tie = summarize(np.array([5.0, 5.0, 1.0]), np.array([False, True, False]))
    assert type(tie["max"]) is int
    assert type(tie["sum"]) is float
    # All floats: nothing is an int even when integral.
    floats = summarize(np.array([2.0, 4.0]), np.array([False, False]))
    assert all(type(floats[key]) is float for key in ("sum", "max", "min"))
    # Exact integer sums beyond float64 accumulation, and sums beyond 2**53 become floats.
    big = summarize(np.array([2.0**53, -(2.0**53) + 1, 1.0]), np.ones(3, np.bool_))
    assert big["sum"] == 2
    assert type(big["sum"]) is int
    over = summarize(np.array([2.0**53, 2.0**53]), np.ones(2, np.bool_))
    assert over["sum"] == 2.0**54
    assert type(over["sum"]) is float


def test_summary_is_stable_for_large_offsets() -> None:
    values = np.array([1e9 + 4, 1e9 + 3, 1e9 + 2, 1e9 + 3])
    summary = summarize(values, np.ones(4, np.bool_))
    assert summary["ss"] == 2.0
    assert summary["mean"] == 1e9 + 3


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.integers(-(2**53), 2**53),
            st.floats(-1e12, 1e12, allow_nan=False).map(lambda v: round(v, 3)),
        ),
        min_size=1,
        max_size=50,
    )
)
def test_summary_matches_reference(values: list[int | float]) -> None:
    summary = summarize(
        np.array([float(v) for v in values]), np.array([isinstance(v, int) for v in values])
    )
    assert list(summary) == ["sum", "mean", "max", "min", "stddev", "ss", "count"]
    for key in ("sum", "max", "min", "stddev", "ss", "count"):
        expected, expected_int = reference_fold(
            key, [(float(v), isinstance(v, int)) for v in values]
        )
        assert type(summary[key]) is (int if expected_int else float), key
        assert_close(summary[key], expected, expected_int, values)
    mean = reference_fold("mean", [(float(v), False) for v in values])[0]
    assert_close(summary["mean"], mean, False, values)


# ---------------------------------------------------------------- worked examples


def test_spec_worked_example() -> None:
    start = utc_ms("2013-03-01T06:00:00+00:00")
    ts = [start, utc_ms("2013-03-01T06:20:00+00:00"), utc_ms("2013-03-01T07:10:00+00:00")]
    folded = fold(
        ts, [61.5, 64, 59.25], interval="1hour", function="max", zone="America/Chicago", start=start
    )
    assert rendered(folded, "America/Chicago") == [
        "2013-03-01T00:00:00.000-06:00",
        "2013-03-01T01:00:00.000-06:00",
    ]
    assert folded.values.tolist() == [64.0, 59.25]
    assert folded.is_int.tolist() == [True, False]


def test_fall_back_day_has_25_hourly_buckets() -> None:
    start = utc_ms("2013-11-03T00:00:00-05:00")
    end = utc_ms("2013-11-04T00:00:00-06:00")
    ts = list(range(start, end, 10 * MINUTE))
    folded = fold(
        ts, [1] * len(ts), interval="1hour", function="count", zone="America/Chicago", start=start
    )
    labels = rendered(folded, "America/Chicago")
    assert len(labels) == 25
    assert labels[:4] == [
        "2013-11-03T00:00:00.000-05:00",
        "2013-11-03T01:00:00.000-05:00",
        "2013-11-03T01:00:00.000-06:00",
        "2013-11-03T02:00:00.000-06:00",
    ]
    assert labels[-1] == "2013-11-03T23:00:00.000-06:00"
    assert folded.values.tolist() == [6.0] * 25
    assert folded.is_int.all()


def test_spring_forward_day_has_23_hourly_buckets() -> None:
    start = utc_ms("2013-03-10T00:00:00-06:00")
    end = utc_ms("2013-03-11T00:00:00-05:00")
    ts = list(range(start, end, 10 * MINUTE))
    folded = fold(
        ts, [1] * len(ts), interval="1hour", function="count", zone="America/Chicago", start=start
    )
    labels = rendered(folded, "America/Chicago")
    assert len(labels) == 23
    assert labels[:3] == [
        "2013-03-10T00:00:00.000-06:00",
        "2013-03-10T01:00:00.000-06:00",
        "2013-03-10T03:00:00.000-05:00",
    ]
    assert not any("T02:" in label for label in labels)
    assert folded.values.tolist() == [6.0] * 23


@pytest.mark.parametrize(
    ("day", "lengths"),
    [("2013-11-03T00:00:00-05:00", [7, 6, 6, 6]), ("2013-03-10T00:00:00-06:00", [5, 6, 6, 6])],
)
def test_six_hour_buckets_follow_the_wall_clock(day: str, lengths: list[int]) -> None:
    start = utc_ms(day)
    ts = list(range(start, start + 2 * DAY, 15 * MINUTE))
    folded = fold(
        ts, [1] * len(ts), interval="6hour", function="count", zone="America/Chicago", start=start
    )
    labels = rendered(folded, "America/Chicago")
    assert [label[11:16] for label in labels[:8]] == ["00:00", "06:00", "12:00", "18:00"] * 2
    assert (np.diff(folded.ts[:5]) // HOUR).tolist() == lengths
    assert folded.values[:4].tolist() == [4.0 * n for n in lengths]


def test_daily_buckets_at_local_midnights_across_dst() -> None:
    start = utc_ms("2013-03-08T00:00:00-06:00")
    ts = list(range(start, start + 5 * DAY, HOUR))
    folded = fold(
        ts, [2] * len(ts), interval="1day", function="sum", zone="America/Chicago", start=start
    )
    assert rendered(folded, "America/Chicago") == [
        "2013-03-08T00:00:00.000-06:00",
        "2013-03-09T00:00:00.000-06:00",
        "2013-03-10T00:00:00.000-06:00",
        "2013-03-11T00:00:00.000-05:00",
        "2013-03-12T00:00:00.000-05:00",
        "2013-03-13T00:00:00.000-05:00",
    ]
    assert folded.values.tolist() == [48.0, 48.0, 46.0, 48.0, 48.0, 2.0]
    assert folded.is_int.all()


def test_bucket_before_start_keeps_its_aligned_label() -> None:
    start = utc_ms("2013-03-01T06:20:00+00:00")
    folded = fold(
        [start, start + 50 * MINUTE],
        [1.5, 2.5],
        interval="1hour",
        function="mean",
        zone="UTC",
        start=start,
    )
    assert rendered(folded, "UTC") == ["2013-03-01T06:00:00.000Z", "2013-03-01T07:00:00.000Z"]
    chicago = fold(
        [start], [3], interval="1day", function="min", zone="America/Chicago", start=start
    )
    assert rendered(chicago, "America/Chicago") == ["2013-03-01T00:00:00.000-06:00"]
    assert chicago.is_int.tolist() == [True]


def test_seven_hour_buckets_keep_counting_across_days() -> None:
    start = utc_ms("2013-01-01T03:00:00+00:00")
    ts = list(range(start, start + 2 * DAY, HOUR))
    folded = fold(ts, [1] * len(ts), interval="7hour", function="count", zone="UTC", start=start)
    assert [label[5:16] for label in rendered(folded, "UTC")] == [
        "01-01T00:00",
        "01-01T07:00",
        "01-01T14:00",
        "01-01T21:00",
        "01-02T04:00",
        "01-02T11:00",
        "01-02T18:00",
        "01-03T01:00",
    ]
    assert folded.values.tolist() == [4.0, 7.0, 7.0, 7.0, 7.0, 7.0, 7.0, 2.0]


def test_empty_buckets_are_omitted() -> None:
    start = utc_ms("2013-01-01T00:00:00+00:00")
    folded = fold(
        [start + 5 * MINUTE, start + 3 * HOUR],
        [1, 2],
        interval="1hour",
        function="sum",
        zone="UTC",
        start=start,
    )
    assert rendered(folded, "UTC") == ["2013-01-01T00:00:00.000Z", "2013-01-01T03:00:00.000Z"]


def test_empty_input() -> None:
    folded = fold([], [], interval="1hour", function="mean", zone="America/Chicago", start=0)
    assert folded.ts.size == folded.values.size == folded.is_int.size == 0
    assert (
        bucket_labels(
            np.zeros(0, np.int64), interval=Interval(1, "day"), zone=get_zone("UTC"), start_ms=0
        ).size
        == 0
    )


def test_fixed_offset_zone_buckets() -> None:
    start = utc_ms("2013-03-01T00:00:00+00:00")
    folded = fold(
        [start, start + 20 * MINUTE, start + 2 * HOUR],
        [1, 2, 3],
        interval="1hour",
        function="count",
        zone="+05:45",
        start=start,
    )
    assert rendered(folded, "+05:45") == [
        "2013-03-01T05:00:00.000+05:45",
        "2013-03-01T06:00:00.000+05:45",
        "2013-03-01T07:00:00.000+05:45",
    ]
    assert folded.ts.tolist() == [start - 45 * MINUTE, start + 15 * MINUTE, start + 75 * MINUTE]


def test_lord_howe_half_hour_change() -> None:
    # 2013-10-06 02:00 (+10:30) -> 02:30 (+11:00): the 01:00 bucket absorbs the skipped half hour.
    start = utc_ms("2013-10-06T00:00:00+10:30")
    ts = list(range(start, start + 6 * HOUR, 10 * MINUTE))
    folded = fold(
        ts,
        [1] * len(ts),
        interval="1hour",
        function="count",
        zone="Australia/Lord_Howe",
        start=start,
    )
    assert rendered(folded, "Australia/Lord_Howe") == [
        "2013-10-06T00:00:00.000+10:30",
        "2013-10-06T01:00:00.000+10:30",
        "2013-10-06T03:00:00.000+11:00",
        "2013-10-06T04:00:00.000+11:00",
        "2013-10-06T05:00:00.000+11:00",
        "2013-10-06T06:00:00.000+11:00",
    ]
    assert folded.values.tolist() == [6.0, 9.0, 6.0, 6.0, 6.0, 3.0]
    assert (np.diff(folded.ts) // MINUTE).tolist() == [60, 90, 60, 60, 60]
    half = fold(
        ts,
        [1] * len(ts),
        interval="30min",
        function="count",
        zone="Australia/Lord_Howe",
        start=start,
    )
    assert "2013-10-06T02:00:00.000+10:30" not in rendered(half, "Australia/Lord_Howe")
    assert "2013-10-06T02:30:00.000+11:00" in rendered(half, "Australia/Lord_Howe")


def test_sao_paulo_skipped_midnight() -> None:
    # 2012-10-21 00:00 (-03:00) -> 01:00 (-02:00): the day starts at 01:00.
    start = utc_ms("2012-10-19T00:00:00-03:00")
    ts = list(range(start, start + 4 * DAY, HOUR))
    daily = fold(
        ts, [1] * len(ts), interval="1day", function="count", zone="America/Sao_Paulo", start=start
    )
    assert rendered(daily, "America/Sao_Paulo") == [
        "2012-10-19T00:00:00.000-03:00",
        "2012-10-20T00:00:00.000-03:00",
        "2012-10-21T01:00:00.000-02:00",
        "2012-10-22T00:00:00.000-02:00",
        "2012-10-23T00:00:00.000-02:00",
    ]
    assert daily.values.tolist() == [24.0, 24.0, 23.0, 24.0, 1.0]
    # 24 wall-clock hours are not a day: the skipped midnight gives no boundary.
    hours = fold(
        ts,
        [1] * len(ts),
        interval="24hour",
        function="count",
        zone="America/Sao_Paulo",
        start=start,
    )
    assert rendered(hours, "America/Sao_Paulo") == [
        "2012-10-19T00:00:00.000-03:00",
        "2012-10-20T00:00:00.000-03:00",
        "2012-10-22T00:00:00.000-02:00",
        "2012-10-23T00:00:00.000-02:00",
    ]
    assert hours.values.tolist() == [24.0, 47.0, 24.0, 1.0]


def test_sao_paulo_repeated_hour_before_midnight() -> None:
    # 2013-02-17 00:00 (-02:00) -> 2013-02-16 23:00 (-03:00): the 16th lasts 25 hours.
    start = utc_ms("2013-02-16T00:00:00-02:00")
    ts = list(range(start, start + 3 * DAY, HOUR))
    daily = fold(
        ts, [1] * len(ts), interval="1day", function="count", zone="America/Sao_Paulo", start=start
    )
    assert rendered(daily, "America/Sao_Paulo")[:2] == [
        "2013-02-16T00:00:00.000-02:00",
        "2013-02-17T00:00:00.000-03:00",
    ]
    assert daily.values.tolist()[0] == 25.0


def test_apia_skipped_date() -> None:
    # 2011-12-29 24:00 (-10:00) -> 2011-12-31 00:00 (+14:00): 30 December never happened.
    start = utc_ms("2011-12-28T00:00:00-10:00")
    ts = list(range(start, start + 4 * DAY, HOUR))
    daily = fold(
        ts, [1] * len(ts), interval="1day", function="count", zone="Pacific/Apia", start=start
    )
    assert rendered(daily, "Pacific/Apia") == [
        "2011-12-28T00:00:00.000-10:00",
        "2011-12-29T00:00:00.000-10:00",
        "2011-12-31T00:00:00.000+14:00",
        "2012-01-01T00:00:00.000+14:00",
    ]
    assert daily.values.tolist() == [24.0, 24.0, 24.0, 24.0]
    # Two local dates per step: 28 Dec, 30 Dec (does not exist: no boundary), 1 Jan.
    two = fold(
        ts, [1] * len(ts), interval="2day", function="count", zone="Pacific/Apia", start=start
    )
    assert rendered(two, "Pacific/Apia") == [
        "2011-12-28T00:00:00.000-10:00",
        "2012-01-01T00:00:00.000+14:00",
    ]
    assert two.values.tolist() == [72.0, 24.0]
    # Points only on the 31st: their aligned date (30th) never occurred, so they belong to the
    # boundary before it.
    later = [t for t in ts if t >= utc_ms("2011-12-31T00:00:00+14:00")]
    two_later = fold(
        later, [1] * len(later), interval="2day", function="count", zone="Pacific/Apia", start=start
    )
    assert rendered(two_later, "Pacific/Apia") == [
        "2011-12-28T00:00:00.000-10:00",
        "2012-01-01T00:00:00.000+14:00",
    ]


def test_st_johns_change_one_minute_after_midnight() -> None:
    # 2010-11-07 00:01 (-02:30) -> 2010-11-06 23:01 (-03:30): the 7th begins at its first
    # midnight, and the repeated hour of the 6th that follows belongs to the 7th.
    start = utc_ms("2010-11-06T00:00:00-02:30")
    ts = list(range(start, start + 3 * DAY, 30 * MINUTE))
    daily = fold(
        ts, [1] * len(ts), interval="1day", function="count", zone="America/St_Johns", start=start
    )
    assert rendered(daily, "America/St_Johns") == [
        "2010-11-06T00:00:00.000-02:30",
        "2010-11-07T00:00:00.000-02:30",
        "2010-11-08T00:00:00.000-03:30",
    ]
    assert daily.values.tolist() == [48.0, 50.0, 46.0]
    hourly = fold(
        ts, [1] * len(ts), interval="1hour", function="count", zone="America/St_Johns", start=start
    )
    labels = rendered(hourly, "America/St_Johns")
    # The repeat starts at 23:01, so 23:00 is not shown twice but midnight is.
    assert labels[23:27] == [
        "2010-11-06T23:00:00.000-02:30",
        "2010-11-07T00:00:00.000-02:30",
        "2010-11-07T00:00:00.000-03:30",
        "2010-11-07T01:00:00.000-03:30",
    ]
    assert hourly.values[23:27].tolist() == [2.0, 2.0, 2.0, 2.0]


def test_week_month_and_year_buckets() -> None:
    start = utc_ms("2013-02-13T10:00:00-06:00")  # a Wednesday
    ts = list(range(start, start + 800 * DAY, 12 * HOUR))
    weekly = fold(
        ts, [1] * len(ts), interval="1week", function="count", zone="America/Chicago", start=start
    )
    assert rendered(weekly, "America/Chicago")[:3] == [
        "2013-02-13T00:00:00.000-06:00",
        "2013-02-20T00:00:00.000-06:00",
        "2013-02-27T00:00:00.000-06:00",
    ]
    monthly = fold(
        ts, [1] * len(ts), interval="1month", function="count", zone="America/Chicago", start=start
    )
    assert rendered(monthly, "America/Chicago")[:3] == [
        "2013-02-01T00:00:00.000-06:00",
        "2013-03-01T00:00:00.000-06:00",
        "2013-04-01T00:00:00.000-05:00",
    ]
    quarterly = fold(
        ts, [1] * len(ts), interval="3month", function="count", zone="America/Chicago", start=start
    )
    assert [label[:10] for label in rendered(quarterly, "America/Chicago")][:4] == [
        "2013-02-01",
        "2013-05-01",
        "2013-08-01",
        "2013-11-01",
    ]
    yearly = fold(
        ts, [1] * len(ts), interval="1year", function="count", zone="America/Chicago", start=start
    )
    assert rendered(yearly, "America/Chicago") == [
        "2013-01-01T00:00:00.000-06:00",
        "2014-01-01T00:00:00.000-06:00",
        "2015-01-01T00:00:00.000-06:00",
    ]
    assert yearly.values.sum() == len(ts)


def test_fold_type_rules() -> None:
    start = utc_ms("2013-01-01T00:00:00+00:00")
    ts = [start, start + 1, start + HOUR, start + HOUR + 1, start + 2 * HOUR]
    values: list[float | int] = [1, 2, 1.5, 2, 5.0]
    sums = fold(ts, values, interval="1hour", function="sum", zone="UTC", start=start)
    assert sums.values.tolist() == [3.0, 3.5, 5.0]
    assert sums.is_int.tolist() == [True, False, False]
    maxima = fold(ts, values, interval="1hour", function="max", zone="UTC", start=start)
    assert maxima.values.tolist() == [2.0, 2.0, 5.0]
    assert maxima.is_int.tolist() == [True, True, False]
    minima = fold(ts, values, interval="1hour", function="min", zone="UTC", start=start)
    assert minima.is_int.tolist() == [True, False, False]
    counts = fold(ts, values, interval="1hour", function="count", zone="UTC", start=start)
    assert counts.values.tolist() == [2.0, 2.0, 1.0]
    assert counts.is_int.all()
    for function in ("avg", "mean", "stddev", "ss"):
        folded = fold(ts, values, interval="1hour", function=function, zone="UTC", start=start)
        assert not folded.is_int.any()
    stddev = fold(ts, values, interval="1hour", function="stddev", zone="UTC", start=start)
    assert stddev.values.tolist() == [math.sqrt(0.5), math.sqrt(0.125), 0.0]
    ss = fold(ts, values, interval="1hour", function="ss", zone="UTC", start=start)
    assert ss.values.tolist() == [0.5, 0.125, 0.0]
    tie = fold(
        [start, start + 1], [7.0, 7], interval="1hour", function="max", zone="UTC", start=start
    )
    assert tie.is_int.tolist() == [True]


def test_integer_sums_are_exact() -> None:
    start = 0
    big: list[float | int] = [2**53, -(2**53) + 1, 1, 2**53, 2**53]
    ts = [0, 1, 2, HOUR, HOUR + 1]
    folded = fold(ts, big, interval="1hour", function="sum", zone="UTC", start=start)
    assert folded.values.tolist() == [2.0, 2.0**54]
    assert folded.is_int.tolist() == [True, False]
    many = [2**53] * 2000 + [-(2**53)] * 2000 + [5]
    folded = fold(
        list(range(len(many))), many, interval="1hour", function="sum", zone="UTC", start=0
    )
    assert folded.values.tolist() == [5.0]
    assert folded.is_int.tolist() == [True]


def test_long_wall_clock_steps_reach_back_across_a_year() -> None:
    # 3000 wall-clock hours (125 days) from 2013-06-20: boundaries on 2013-10-23 (CDT) and
    # 2014-02-25 (CST); a point in January belongs to the October boundary.
    start = utc_ms("2013-06-20T00:00:00-05:00")
    ts = [start, utc_ms("2014-01-10T12:00:00+00:00")]
    folded = fold(
        ts, [1, 2], interval="3000hour", function="sum", zone="America/Chicago", start=start
    )
    assert rendered(folded, "America/Chicago") == [
        "2013-06-20T00:00:00.000-05:00",
        "2013-10-23T00:00:00.000-05:00",
    ]
    only_january = bucket_labels(
        np.array(ts[1:], dtype=np.int64),
        interval=_interval("3000hour"),
        zone=get_zone("America/Chicago"),
        start_ms=start,
    )
    assert only_january.tolist() == [utc_ms("2013-10-23T00:00:00-05:00")]


def test_sparse_points_far_apart() -> None:
    zone = "America/Chicago"
    ts = [
        utc_ms("1900-06-01T12:00:00+00:00"),
        utc_ms("2013-07-04T12:00:00+00:00"),
        utc_ms("2300-01-15T12:00:00+00:00"),
    ]
    for interval in ("1hour", "1day", "1month"):
        folded = fold(ts, [1, 2, 3], interval=interval, function="sum", zone=zone, start=ts[0])
        assert folded.ts.tolist() == reference_labels(zone, _interval(interval), ts[0], ts)


# ---------------------------------------------------------------- brute-force reference


def reference_tz(name: str) -> tzinfo:
    if name == "UTC":
        return UTC
    if name == "+05:45":
        return timezone(timedelta(hours=5, minutes=45))
    return ZoneInfo(name)


def wall_of(tz: tzinfo, ts_ms: int) -> datetime:
    """The naive wall clock at an instant."""
    return (EPOCH + ts_ms * MS).astimezone(tz).replace(tzinfo=None)


def instants_showing(tz: tzinfo, wall: datetime) -> list[int]:
    """Every instant at which the wall clock shows ``wall`` (0, 1 or 2 of them)."""
    found = set()
    for fold_ in (0, 1):
        instant = (wall.replace(tzinfo=tz, fold=fold_) - EPOCH) // MS
        if wall_of(tz, instant) == wall:
            found.add(instant)
    return sorted(found)


@cache
def first_instant_of_date(name: str, day: date) -> int | None:
    """The first instant whose local date is ``day``; None when the date never occurs."""
    tz = reference_tz(name)
    midnight = datetime.combine(day, time())
    shown = instants_showing(tz, midnight)
    if shown:
        return shown[0]
    # Midnight is skipped: scan the gap for the first instant showing midnight or later.
    lo, hi = sorted((midnight.replace(tzinfo=tz, fold=f) - EPOCH) // MS for f in (0, 1))
    instant = lo
    while wall_of(tz, instant) < midnight:
        instant += MINUTE
    instant -= MINUTE
    while wall_of(tz, instant) < midnight:
        instant += 1000
    assert instant <= hi
    return instant if wall_of(tz, instant).date() == day else None


def add_months(day: date, months: int) -> date:
    years, month = divmod(day.month - 1 + months, 12)
    return date(day.year + years, month + 1, 1)


def reference_labels(name: str, interval: Interval, start: int, ts: list[int]) -> list[int]:
    """Enumerate the boundaries on the wall clock with zoneinfo near the points (clusters of
    points more than a few days apart are enumerated separately), then give each point the last
    boundary at or before it."""
    tz = reference_tz(name)
    start_wall = wall_of(tz, start)
    clusters: list[list[int]] = []
    for t in sorted(ts):
        if clusters and t - clusters[-1][-1] <= 400 * DAY:
            clusters[-1].append(t)
        else:
            clusters.append([t])
    boundaries: list[int] = []
    for cluster in clusters:
        boundaries.extend(_reference_boundaries(tz, name, interval, start_wall, cluster))
    boundaries.sort()
    labels = []
    for t in ts:
        index = bisect_right(boundaries, t) - 1
        assert index >= 0, "reference enumerated too few boundaries"
        labels.append(boundaries[index])
    return labels


def _reference_boundaries(
    tz: tzinfo, name: str, interval: Interval, start_wall: datetime, ts: list[int]
) -> list[int]:
    """All boundaries from a little before the first point to a little after the last one."""
    walls = [wall_of(tz, t) for t in ts]
    boundaries: list[int] = []
    if interval.unit in ("minute", "hour"):
        step = (
            timedelta(minutes=interval.count)
            if interval.unit == "minute"
            else timedelta(hours=interval.count)
        )
        midnight = datetime.combine(start_wall.date(), time())
        # Back far enough to cross a skipped day (Apia), forward past a repeated hour.
        k = (min(walls) - step - timedelta(hours=26) - midnight) // step
        while midnight + k * step <= max(walls) + timedelta(hours=3):
            boundaries.extend(instants_showing(tz, midnight + k * step))
            k += 1
        return boundaries
    dates: list[date] = []
    if interval.unit in ("day", "week"):
        origin = start_wall.date()
        width = timedelta(days=interval.count * (7 if interval.unit == "week" else 1))
        k = (min(walls).date() - origin) // width - 2
        while origin + k * width <= max(walls).date() + timedelta(days=3):
            dates.append(origin + k * width)
            k += 1
    else:
        first = start_wall.date().replace(day=1)
        if interval.unit == "year":
            first = first.replace(month=1)
        months = interval.count * (12 if interval.unit == "year" else 1)
        low = min(walls)
        k = ((low.year - first.year) * 12 + low.month - first.month) // months - 2
        while add_months(first, k * months) <= max(walls).date() + timedelta(days=3):
            dates.append(add_months(first, k * months))
            k += 1
    for day in dates:
        instant = first_instant_of_date(name, day)
        if instant is not None:
            boundaries.append(instant)
    return boundaries


def reference_fold(function: str, points: list[tuple[float, bool]]) -> tuple[float, bool]:
    """One bucket folded the obvious way: (value, is it an int)."""
    values = [v for v, _ in points]
    n = len(values)
    if function == "count":
        return float(n), True
    if function == "sum":
        if all(is_int for _, is_int in points):
            total = sum(int(v) for v in values)
            return float(total), abs(total) <= 2**53
        return math.fsum(values), False
    if function in ("max", "min"):
        best = max(values) if function == "max" else min(values)
        return best, any(is_int and v == best for v, is_int in points)
    mean = math.fsum(values) / n
    if function in ("avg", "mean"):
        return mean, False
    ss = math.fsum((v - mean) ** 2 for v in values)
    if function == "ss":
        return ss, False
    return (math.sqrt(ss / (n - 1)) if n > 1 else 0.0), False


def assert_close(
    got: float, expected: float, expected_int: bool, values: list[int | float]
) -> None:
    if expected_int:
        assert got == expected
        return
    scale = max((abs(float(v)) for v in values), default=0.0) + 1.0
    assert math.isclose(got, expected, rel_tol=1e-9, abs_tol=1e-12 * scale * scale * len(values))


REFERENCE_ZONES = [
    "America/Chicago",
    "Europe/London",
    "Australia/Lord_Howe",
    "America/Sao_Paulo",
    "Pacific/Apia",
    "Asia/Kolkata",
    "America/St_Johns",
    "UTC",
    "+05:45",
]
SPANS = {
    "1min": 6 * HOUR,
    "5min": DAY,
    "1hour": 4 * DAY,
    "6hour": 10 * DAY,
    "7hour": 10 * DAY,
    "1day": 20 * DAY,
    "2day": 40 * DAY,
    "1week": 120 * DAY,
    "1month": 400 * DAY,
    "3month": 1100 * DAY,
    "1year": 2200 * DAY,
}
# Changes worth extra attention: a skipped date, midnight changes, 00:01 changes, half hours.
SPECIAL_ANCHORS = {
    "Pacific/Apia": [utc_ms("2011-12-30T10:00:00+00:00")],
    "America/Sao_Paulo": [utc_ms("2012-10-21T03:00:00+00:00"), utc_ms("2013-02-17T02:00:00+00:00")],
    "America/St_Johns": [utc_ms("2010-03-14T03:31:00+00:00"), utc_ms("2010-11-07T02:31:00+00:00")],
    "Australia/Lord_Howe": [
        utc_ms("2013-10-05T15:30:00+00:00"),
        utc_ms("2013-04-06T15:00:00+00:00"),
    ],
}
YEAR_1850 = utc_ms("1850-01-01T00:00:00+00:00")
YEAR_1990 = utc_ms("1990-01-01T00:00:00+00:00")
YEAR_2035 = utc_ms("2035-01-01T00:00:00+00:00")


@cache
def transition_anchors(name: str) -> list[int]:
    """Instants (to the hour) near the offset changes of a zone in 1995-2020, found by scanning
    zoneinfo daily and narrowing hourly. Used only to steer the generated cases."""
    if name in ("UTC", "+05:45"):
        return []
    tz = reference_tz(name)

    def offset(ts_ms: int) -> timedelta | None:
        return (EPOCH + ts_ms * MS).astimezone(tz).utcoffset()

    anchors = []
    day = utc_ms("1995-01-01T12:00:00+00:00")
    end = utc_ms("2020-01-01T12:00:00+00:00")
    while day < end:
        if offset(day) != offset(day + DAY):
            hour = day
            while offset(hour + HOUR) == offset(day):
                hour += HOUR
            anchors.append(hour + HOUR)
        day += DAY
    return anchors


@st.composite
def rollup_cases(draw: st.DrawFn) -> tuple[str, str, str, int, list[int], list[int | float]]:
    name = draw(st.sampled_from(REFERENCE_ZONES))
    text = draw(st.sampled_from(list(SPANS)))
    function = draw(st.sampled_from(FUNCTION_NAMES))
    span = SPANS[text]
    anchors = transition_anchors(name)
    choice = draw(st.integers(0, 5))
    if name in SPECIAL_ANCHORS and choice < 2:
        anchor = draw(st.sampled_from(SPECIAL_ANCHORS[name]))
    elif anchors and choice < 5:
        anchor = draw(st.sampled_from(anchors))
    elif draw(st.booleans()):
        anchor = draw(st.integers(YEAR_1990, YEAR_2035))
    else:
        anchor = draw(st.integers(YEAR_1850, YEAR_2035))
    start = anchor - draw(st.integers(0, span))
    if draw(st.booleans()):
        grid = draw(st.sampled_from([MINUTE, 15 * MINUTE, 30 * MINUTE, HOUR]))
        start -= start % grid
        offsets = draw(
            st.lists(st.integers(0, (span - 1) // grid), min_size=1, max_size=60, unique=True)
        )
        ts = sorted(start + grid * o for o in offsets)
    else:
        offsets = draw(st.lists(st.integers(0, span - 1), min_size=1, max_size=60, unique=True))
        ts = sorted(start + o for o in offsets)
    value = st.one_of(
        st.integers(-1000, 1000),
        st.floats(-1e4, 1e4, allow_nan=False).map(lambda v: round(v, 2)),
    )
    values = draw(st.lists(value, min_size=len(ts), max_size=len(ts)))
    return name, text, function, start, ts, values


@settings(max_examples=600, deadline=None)
@given(rollup_cases())
def test_rollup_matches_reference(
    case: tuple[str, str, str, int, list[int], list[int | float]],
) -> None:
    name, text, function, start, ts, values = case
    interval = _interval(text)
    folded = fold(ts, values, interval=text, function=function, zone=name, start=start)
    labels = reference_labels(name, interval, start, ts)
    buckets: dict[int, list[tuple[float, bool]]] = {}
    for label, value in zip(labels, values, strict=True):
        buckets.setdefault(label, []).append((float(value), isinstance(value, int)))
    assert folded.ts.tolist() == sorted(buckets)
    for index, label in enumerate(sorted(buckets)):
        expected, expected_int = reference_fold(function, buckets[label])
        assert bool(folded.is_int[index]) == expected_int
        members = [v for v, lab in zip(values, labels, strict=True) if lab == label]
        assert_close(float(folded.values[index]), expected, expected_int, members)


@settings(max_examples=150, deadline=None)
@given(
    name=st.sampled_from(REFERENCE_ZONES),
    text=st.sampled_from(
        [
            "1hour",
            "6hour",
            "7hour",
            "90min",
            "50hour",
            "1000hour",
            "3000hour",
            "1day",
            "2day",
            "10day",
            "1week",
            "1month",
            "2month",
            "3year",
        ]
    ),
    start=st.integers(YEAR_1850, YEAR_2035),
    gaps=st.lists(st.integers(1, 3000 * DAY), min_size=1, max_size=6),
)
def test_sparse_labels_match_reference(name: str, text: str, start: int, gaps: list[int]) -> None:
    ts = [start + sum(gaps[:i]) for i in range(len(gaps))]
    interval = _interval(text)
    labels = bucket_labels(
        np.array(ts, dtype=np.int64), interval=interval, zone=get_zone(name), start_ms=start
    )
    assert labels.tolist() == reference_labels(name, interval, start, ts)


@settings(max_examples=300, deadline=None)
@given(
    name=st.sampled_from(REFERENCE_ZONES),
    text=st.sampled_from(
        ["1min", "5min", "1hour", "6hour", "7hour", "90min", "1day", "2day", "1week", "1month"]
    ),
    anchor=st.data(),
    grid=st.sampled_from([MINUTE, 5 * MINUTE, 15 * MINUTE]),
    shift=st.integers(0, 40 * DAY),
    count=st.integers(1, 3000),
    seed=st.integers(0, 2**32 - 1),
)
def test_bucket_starts_match_the_labels_of_dense_points(
    name: str,
    text: str,
    anchor: st.DataObject,
    grid: int,
    shift: int,
    count: int,
    seed: int,
) -> None:
    """Dense points (more than their buckets) take the path that enumerates boundaries; its
    buckets are the runs of the per-point labels, across every transition of the zones."""
    anchors = transition_anchors(name) or [utc_ms("2013-03-10T08:00:00+00:00")]
    around = anchor.draw(st.sampled_from(anchors))
    start = around - shift
    picks = np.sort(np.random.default_rng(seed).choice(12_000, size=count, replace=False))
    ts = start - start % grid + grid * picks.astype(np.int64)
    interval, zone = _interval(text), get_zone(name)
    labels = bucket_labels(ts, interval=interval, zone=zone, start_ms=start)
    firsts = np.flatnonzero(np.concatenate(([True], np.diff(labels) != 0)))
    got_labels, got_firsts = bucket_starts(ts, interval=interval, zone=zone, start_ms=start)
    assert got_firsts.tolist() == firsts.tolist()
    assert got_labels.tolist() == labels[firsts].tolist()


def test_zone_object_type() -> None:
    assert isinstance(get_zone("America/Chicago"), Zone)
