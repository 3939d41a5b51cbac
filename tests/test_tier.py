"""The 15-minute tier against the raw points: every rollup the tier answers (random
intervals x functions x zones, DST days included) equals the rollup of the raw points."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tempodb import tier
from tempodb.folds import parse_fold
from tempodb.rollup import parse_interval, rollup_folds, summarize
from tempodb.zones import get_zone

ZONES = ["UTC", "America/Chicago", "Asia/Kolkata", "Asia/Kathmandu", "Australia/Lord_Howe"]
INTERVALS = [
    "15min",
    "30min",
    "45min",
    "1hour",
    "3hour",
    "1day",
    "2day",
    "1week",
    "1month",
    "1year",
]
FOLDS = ["sum", "count", "min", "max", "mean", "stddev", "ss", "range", "first", "last"]
#: Midnights UTC of days around DST changes (Chicago 2024-03-10, 2024-11-03; Lord Howe
#: 2024-04-07, 2024-10-06) and of an ordinary one.
DAYS = [
    1710028800000,
    1730592000000,
    1712448000000,
    1728172800000,
    1718000000000 // 86400000 * 86400000,
]


def close(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def random_points(rng: np.random.Generator, lo: int, hi: int, n: int, ints: bool):
    ts = np.unique(rng.integers(lo, hi, n, dtype=np.int64))
    if ints:
        values = rng.integers(-1000, 1000, ts.size).astype(np.float64)
        is_int = rng.random(ts.size) < 0.8
    else:
        values = rng.normal(1e3, 50.0, ts.size)
        is_int = np.zeros(ts.size, np.bool_)
    return ts, values, is_int


@settings(max_examples=150, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    zone_name=st.sampled_from(ZONES),
    interval_text=st.sampled_from(INTERVALS),
    day=st.sampled_from(DAYS),
    ints=st.booleans(),
    span_days=st.integers(1, 70),
)
def test_tier_rollup_equals_raw_rollup(
    seed: int, zone_name: str, interval_text: str, day: int, ints: bool, span_days: int
) -> None:
    rng = np.random.default_rng(seed)
    zone = get_zone(zone_name)
    interval = parse_interval(interval_text)
    assert interval is not None
    # A read from a 15-minute mark before the DST day over span_days, points sparse or dense.
    start = day - int(rng.integers(0, 96)) * tier.TIER_MS
    end = start + span_days * 86_400_000 + int(rng.integers(0, 96)) * tier.TIER_MS
    n = int(rng.integers(1, 5000))
    ts, values, is_int = random_points(rng, start, end, n, ints)
    # Raw data begins at a 15-minute mark somewhere in the range (or before or after it).
    cutoff = int(tier.bucket_of(int(rng.integers(start - 86_400_000, end + 86_400_000))))
    old = ts < cutoff
    kept = tier.summarize(ts[old], values[old], is_int[old])
    fresh = tier.summarize(ts[~old], values[~old], is_int[~old])
    both = tier.merge(kept, fresh)
    assert tier.unanswerable(interval, tuple(FOLDS), zone, start=start, end=end, tier=kept) is None
    rolled = tier.rollup(both, interval=interval, zone=zone, start_ms=start)
    expected = rollup_folds(
        ts, values, is_int, interval=interval, folds=tuple(FOLDS), zone=zone, start_ms=start
    )
    for name, raw in zip(FOLDS, expected, strict=True):
        got, got_int = tier.fold(rolled, parse_fold(name))
        assert rolled.ts.tolist() == raw.ts.tolist()
        assert got_int.tolist() == raw.is_int.tolist(), name
        for a, b in zip(got.tolist(), raw.values.tolist(), strict=True):
            assert close(a, b), (name, a, b)
    want = summarize(values, is_int)
    found = tier.summary(both)
    assert list(found) == list(want)
    for key, value in want.items():
        assert type(found[key]) is type(value), key
        assert close(float(found[key]), float(value)), key


def test_combine_is_exact_for_integers_and_first_last() -> None:
    ts = np.array([0, 1000, 900_000, 900_500, 1_800_000], np.int64)
    values = np.array([5.0, 7.0, 2.0, 9.0, 4.5])
    is_int = np.array([True, True, True, True, False])
    whole = tier.summarize(ts, values, is_int)
    assert whole.count.tolist() == [2, 2, 1]
    # Merging the same bucket from two halves (a late point) gives the same summary.
    halves = tier.merge(
        tier.summarize(ts[::2], values[::2], is_int[::2]),
        tier.summarize(ts[1::2], values[1::2], is_int[1::2]),
    )
    for name in FOLDS:
        a, a_int = tier.fold(whole, name)
        b, b_int = tier.fold(halves, name)
        assert a_int.tolist() == b_int.tolist(), name
        assert np.allclose(a, b), name
    assert tier.summary(whole) == {
        "sum": 27.5,
        "mean": 5.5,
        "max": 9,
        "min": 2,
        "stddev": pytest.approx(float(np.std(values, ddof=1))),
        "ss": pytest.approx(float(np.sum((values - 5.5) ** 2))),
        "count": 5,
    }


def test_pack_round_trips() -> None:
    rng = np.random.default_rng(7)
    ts, values, is_int = random_points(rng, 0, 86_400_000, 500, True)
    summaries = tier.summarize(ts, values, is_int)
    again = tier.unpack(tier.pack(summaries))
    for name in ("ts", "count", "total", "isum", "low", "high", "first", "last", "ss", "flags"):
        assert getattr(again, name).tolist() == getattr(summaries, name).tolist()


def test_what_the_tier_cannot_answer_is_named() -> None:
    summaries = tier.summarize(np.array([0], np.int64), np.array([1.0]), np.array([True]))
    zone = get_zone("UTC")
    five = parse_interval("5min")
    hour = parse_interval("1hour")
    message = tier.unanswerable(five, ("mean",), zone, start=0, end=3_600_000, tier=summaries)
    assert message is not None
    assert "PT5M" in message
    assert "15-minute" in message
    message = tier.unanswerable(
        hour, ("percentile,99",), zone, start=0, end=3_600_000, tier=summaries
    )
    assert message is not None
    assert "percentile,99" in message
    assert "stddev" in message
    message = tier.unanswerable(hour, ("mean",), zone, start=60_000, end=3_600_000, tier=summaries)
    assert message is not None
    assert "15-minute marks" in message
    assert tier.unanswerable(hour, ("mean",), zone, start=0, end=3_600_000, tier=summaries) is None
    # Local mean time (Chicago before 1883) puts day boundaries off the 15-minute marks.
    old = -3_000_000_000_000
    stamps = np.arange(old, old + 2 * 86_400_000, 300_000, dtype=np.int64)
    far = tier.summarize(stamps, np.ones(stamps.size), np.ones(stamps.size, np.bool_))
    day = parse_interval("1day")
    start = int(far.ts[0])
    end = int(far.ts[-1]) + tier.TIER_MS
    chicago = get_zone("America/Chicago")
    message = tier.unanswerable(day, ("sum",), chicago, start=start, end=end, tier=far)
    assert message is not None
    assert "P1D" in message
