"""The 1.0 capabilities of the fold engine against brute-force references: every fold,
find, cross-series aggregation, interpolation, and the grid of boundaries (DST days in
America/New_York included)."""

from __future__ import annotations

import itertools
import math
import statistics
import warnings
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tempodb.folds import (
    aggregate,
    aggregate_pieces,
    find_groups,
    finite_mean,
    fold_groups,
    group_starts,
    parse_fold,
)
from tempodb.interpolate import interpolate
from tempodb.rollup import (
    Interval,
    boundaries,
    bucket_labels,
    next_boundaries,
    parse_interval,
    rollup,
    rollup_folds,
)
from tempodb.zones import get_zone

MINUTE = 60_000
NY = get_zone("America/New_York")
# 2014-03-09 (spring forward) and 2014-11-02 (fall back) in New York, and a plain day.
DAYS = [
    int(datetime(2014, 3, 8, 12, tzinfo=UTC).timestamp() * 1000),
    int(datetime(2014, 11, 1, 12, tzinfo=UTC).timestamp() * 1000),
    int(datetime(2014, 6, 1, tzinfo=UTC).timestamp() * 1000),
]
FOLDS = [
    "sum",
    "mult",
    "min",
    "max",
    "mean",
    "count",
    "stddev",
    "ss",
    "range",
    "first",
    "last",
    "percentile,50",
    "percentile,90",
    "percentile,100",
    "percentile,0.5",
]


def reference(values: list[float], fold: str) -> float:
    """One group's fold, the slow way."""
    if fold == "sum":
        return math.fsum(values)
    if fold == "mult":
        return math.prod(values)
    if fold == "min":
        return min(values)
    if fold == "max":
        return max(values)
    if fold == "mean":
        return statistics.fmean(values)
    if fold == "count":
        return len(values)
    if fold in ("stddev", "ss"):
        mean = statistics.fmean(values)
        ss = math.fsum((v - mean) ** 2 for v in values)
        return ss if fold == "ss" else math.sqrt(ss / max(len(values) - 1, 1))
    if fold == "range":
        return max(values) - min(values)
    if fold == "first":
        return values[0]
    if fold == "last":
        return values[-1]
    return float(np.percentile(values, float(fold.split(",")[1])))


groups_strategy = st.lists(
    st.lists(
        st.one_of(st.integers(-1000, 1000).map(float), st.floats(-1e6, 1e6, allow_nan=False)),
        min_size=1,
        max_size=12,
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=150, deadline=None)
@given(groups=groups_strategy, fold=st.sampled_from(FOLDS))
def test_fold_groups_match_the_reference(groups: list[list[float]], fold: str) -> None:
    vals = np.array([v for g in groups for v in g], np.float64)
    ints = vals == np.round(vals)
    sizes = [len(g) for g in groups]
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.intp)
    out, out_ints = fold_groups(vals, ints, starts, parse_fold(fold))
    for got, is_int, group in zip(out.tolist(), out_ints.tolist(), groups, strict=True):
        want = reference(group, fold)
        assert got == pytest.approx(want, rel=1e-9, abs=1e-6), (fold, group)
        if is_int:
            assert got == int(got)


def test_fold_names() -> None:
    assert parse_fold("AVG") == "mean"
    assert parse_fold("percentile,99.9") == "percentile,99.9"
    for bad in ("median", "percentile,0", "percentile,101", "percentile", "percentile,x"):
        with pytest.raises(ValueError, match="Invalid fold"):
            parse_fold(bad)


def test_integer_results_stay_integers() -> None:
    vals = np.array([2.0, 3.0, 4.0, 1.5])
    ints = np.array([True, True, True, False])
    starts = np.array([0, 3], np.intp)
    assert fold_groups(vals, ints, starts, "mult")[1].tolist() == [True, False]
    assert fold_groups(vals, ints, starts, "range")[0].tolist() == [2.0, 0.0]
    assert fold_groups(vals, ints, starts, "first")[1].tolist() == [True, False]
    assert fold_groups(vals, ints, starts, "percentile,50")[1].tolist() == [False, False]


@settings(max_examples=150, deadline=None)
@given(groups=groups_strategy, function=st.sampled_from(["max", "min", "first", "last"]))
def test_find_picks_the_earliest_of_ties(groups: list[list[float]], function: str) -> None:
    # Few distinct values, so that ties are common.
    groups = [[float(round(v) % 3) for v in g] for g in groups]
    vals = np.array([v for g in groups for v in g], np.float64)
    sizes = [len(g) for g in groups]
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.intp)
    picked = find_groups(vals, starts, function).tolist()
    for index, (start, group) in enumerate(zip(starts.tolist(), groups, strict=True)):
        if function == "first":
            want = 0
        elif function == "last":
            want = len(group) - 1
        else:
            want = group.index(max(group) if function == "max" else min(group))
        assert picked[index] == start + want


series_strategy = st.lists(
    st.dictionaries(st.integers(0, 40), st.integers(-50, 50), max_size=15),
    min_size=1,
    max_size=5,
)


@settings(max_examples=150, deadline=None)
@given(series=series_strategy, fold=st.sampled_from(FOLDS))
def test_aggregate_matches_the_reference(series: list[dict[int, int]], fold: str) -> None:
    arrays = []
    for points in series:
        ts = np.array(sorted(points), np.int64)
        vals = np.array([float(points[t]) for t in sorted(points)], np.float64)
        arrays.append((ts, vals, np.ones(ts.size, np.bool_)))
    ts, vals, _ = aggregate(arrays, parse_fold(fold))
    every = sorted({t for points in series for t in points})
    assert ts.tolist() == every
    for t, got in zip(every, vals.tolist(), strict=True):
        group = [float(points[t]) for points in series if t in points]
        assert got == pytest.approx(reference(group, fold), rel=1e-9, abs=1e-9)


@settings(max_examples=150, deadline=None)
@given(
    times=st.lists(st.integers(0, 40), min_size=1, max_size=12, unique=True),
    columns=st.lists(
        st.lists(st.tuples(st.integers(-50, 50), st.booleans()), min_size=12, max_size=12),
        min_size=1,
        max_size=5,
    ),
    fold=st.sampled_from(FOLDS),
)
def test_aligned_series_aggregate_as_the_general_path_does(
    times: list[int], columns: list[list[tuple[int, bool]]], fold: str
) -> None:
    ts = np.array(sorted(times), np.int64)
    aligned = [
        (
            ts.copy(),
            np.array([v + (0.0 if i else 0.5) for v, i in col[: ts.size]], np.float64),
            np.array([i for _, i in col[: ts.size]], np.bool_),
        )
        for col in columns
    ]
    # The same series with one timestamp moved away and back: not aligned, the general path.
    general = [*aligned, (np.array([10_000], np.int64), np.zeros(1), np.zeros(1, np.bool_))]
    got = aggregate(aligned, parse_fold(fold))
    want = aggregate(general, parse_fold(fold))
    assert got[0].tolist() == want[0][:-1].tolist() == ts.tolist()
    assert np.array_equal(got[1], want[1][:-1], equal_nan=True)
    assert got[2].tolist() == want[2][:-1].tolist()


@settings(max_examples=300, deadline=None)
@given(
    size=st.integers(1, 12),
    origin=st.integers(-5, 5),
    step=st.integers(1, 3),
    jitter=st.lists(st.sampled_from([0, 0, 0, 1, 2]), min_size=12, max_size=12),
    columns=st.lists(
        st.lists(st.tuples(st.integers(-50, 50), st.booleans()), min_size=12, max_size=12),
        min_size=1,
        max_size=5,
    ),
    cuts=st.lists(st.lists(st.integers(0, 12), max_size=4), min_size=5, max_size=5),
    told=st.one_of(st.just([True] * 5), st.lists(st.booleans(), min_size=5, max_size=5)),
    moved=st.sampled_from([None, ("last", 1), ("all", 1), ("all", -1), ("all", 0)]),
    even=st.booleans(),
    same_cuts=st.booleans(),
    gap=st.tuples(st.integers(0, 12), st.integers(0, 3)),
    fold=st.sampled_from(FOLDS),
)
def test_aggregate_of_pieces_as_of_whole_series(
    size: int,
    origin: int,
    step: int,
    jitter: list[int],
    columns: list[list[tuple[int, bool]]],
    cuts: list[list[int]],
    told: list[bool],
    moved: tuple[str, int] | None,
    even: bool,
    same_cuts: bool,
    gap: tuple[int, int],
    fold: str,
) -> None:
    """Series given in pieces (as a store keeps them in blocks, empty pieces too), some
    pieces telling the step of their evenly spaced timestamps, aggregate as the whole series
    do, bit for bit: aligned ones (filled into the stack piece by piece, compared where the
    steps do not tell; the first series' pieces that go on with the same step taken as one
    run, those across a gap not) and, with the last series' timestamps moved (its last one,
    or all of them: evenly spaced with the same step from another instant), the others."""
    ts = origin + step * np.arange(size, dtype=np.int64)
    if not even:
        ts += np.cumsum(jitter[:size])
    ts[gap[0] :] += gap[1]  # evenly spaced on both sides of it, the same step
    if same_cuts:  # the same blocks in every series, as when they were written together
        cuts = [cuts[0]] * len(cuts)
    if gap[0] < size:
        cuts[0] = [*cuts[0], gap[0]]  # the first series cut there
    series = []
    for index, col in enumerate(columns):
        stamps = ts.copy()
        if moved is not None and index == len(columns) - 1 > 0:
            if moved[0] == "last":
                stamps[-1] += moved[1]
            else:
                stamps += moved[1]
        series.append(
            (
                stamps,
                np.array([v + (0.0 if i else 0.5) for v, i in col[:size]], np.float64),
                np.array([i for _, i in col[:size]], np.bool_),
            )
        )
    pieces = []
    for index, ((stamps, vals, ints), at) in enumerate(zip(series, cuts, strict=False)):
        edges = [0, *sorted(min(c, size) for c in at), size]
        parts = []
        for lo, hi in itertools.pairwise(edges):
            gaps = np.diff(stamps[lo:hi])
            even = hi - lo == 1 or (hi - lo > 1 and bool((gaps == gaps[0]).all()))
            # A piece of one point is evenly spaced with any step.
            said = (int(gaps[0]) if hi - lo > 1 else step) if even and told[index] else 0
            parts.append((stamps[lo:hi], vals[lo:hi], ints[lo:hi], said))
        pieces.append(parts)
    got = aggregate_pieces(pieces, parse_fold(fold))
    want = aggregate(series, parse_fold(fold))
    assert got[0].tolist() == want[0].tolist()
    assert np.array_equal(got[1], want[1], equal_nan=True)
    assert got[2].tolist() == want[2].tolist()


def interpolate_reference(points: list[tuple[int, float]], g: int, function: str) -> float | None:
    if not points or g < points[0][0] or g > points[-1][0]:
        return None
    before = max(p for p in points if p[0] <= g)
    after = [p for p in points if p[0] > g]
    if function == "zoh" or before[0] == g or not after:
        return before[1]
    t1, v1 = after[0]
    return before[1] + (v1 - before[1]) * (g - before[0]) / (t1 - before[0])


@settings(max_examples=200, deadline=None)
@given(
    points=st.dictionaries(st.integers(0, 100), st.integers(-100, 100), max_size=12),
    grid=st.lists(st.integers(-5, 105), max_size=20, unique=True),
    function=st.sampled_from(["zoh", "linear"]),
)
def test_interpolate_matches_the_reference(
    points: dict[int, int], grid: list[int], function: str
) -> None:
    pairs = [(t, float(points[t])) for t in sorted(points)]
    ts = np.array([p[0] for p in pairs], np.int64)
    vals = np.array([p[1] for p in pairs], np.float64)
    g = np.array(sorted(grid), np.int64)
    kept, got, _ = interpolate(ts, vals, np.ones(ts.size, np.bool_), g, function)
    want = {t: interpolate_reference(pairs, t, function) for t in sorted(grid)}
    assert kept.tolist() == [t for t, v in want.items() if v is not None]
    for t, value in zip(kept.tolist(), got.tolist(), strict=True):
        assert value == pytest.approx(want[t])


@pytest.mark.parametrize("day", DAYS)
@pytest.mark.parametrize("period", ["PT1M", "PT7M", "PT30M", "PT1H", "PT2H", "P1D"])
def test_boundaries_are_the_bucket_labels(day: int, period: str) -> None:
    """Every boundary in a range is the label of the minutes that follow it (brute force:
    label every minute of two days around the DST change)."""
    interval = parse_interval(period)
    assert interval is not None
    start = day - 7 * MINUTE * 60 + 13 * MINUTE
    lo, hi = day, day + 2 * 86_400_000
    minutes = np.arange(lo - 86_400_000, hi, MINUTE, dtype=np.int64)
    labels = np.unique(bucket_labels(minutes, interval=interval, zone=NY, start_ms=start))
    want = labels[(labels >= lo) & (labels < hi)]
    got = boundaries(interval, NY, start_ms=start, lo=lo, hi=hi)
    assert got.tolist() == want.tolist()
    following = next_boundaries(want[:-1], interval, NY, start_ms=start)
    assert following.tolist() == want[1:].tolist()


@settings(max_examples=60, deadline=None)
@given(
    offsets=st.lists(st.integers(0, 3 * 24 * 60), min_size=1, max_size=60, unique=True),
    day=st.sampled_from(DAYS),
    period=st.sampled_from(["PT15M", "PT1H", "P1D"]),
    fold=st.sampled_from(FOLDS),
)
def test_rollup_folds_match_per_bucket_reference(
    offsets: list[int], day: int, period: str, fold: str
) -> None:
    """Rollups with the new folds on DST days: buckets are the 0.5 buckets, and each
    bucket's value is the fold of its points."""
    interval = parse_interval(period)
    assert isinstance(interval, Interval)
    ts = np.array(sorted(day + m * MINUTE for m in offsets), np.int64)
    vals = (ts // MINUTE % 97).astype(np.float64)
    ints = np.ones(ts.size, np.bool_)
    folded = rollup_folds(ts, vals, ints, interval=interval, folds=(fold,), zone=NY, start_ms=day)
    labels = bucket_labels(ts, interval=interval, zone=NY, start_ms=day)
    starts = group_starts(labels)
    assert folded[0].ts.tolist() == labels[starts].tolist()
    for label, got in zip(folded[0].ts.tolist(), folded[0].values.tolist(), strict=True):
        group = vals[labels == label].tolist()
        assert got == pytest.approx(reference(group, fold), rel=1e-9, abs=1e-9)
    if fold in ("sum", "min", "max", "mean", "count", "stddev", "ss"):
        old = rollup(ts, vals, ints, interval=interval, function=fold, zone=NY, start_ms=day)
        assert old.values.tolist() == folded[0].values.tolist()


def test_avg_rollup_is_the_mean() -> None:
    ts = np.array([0, MINUTE, 2 * MINUTE], np.int64)
    vals = np.array([1.0, 2.0, 4.0])
    ints = np.ones(3, np.bool_)
    zone = get_zone("UTC")
    kwargs: dict[str, Any] = {"interval": Interval(1, "hour"), "zone": zone, "start_ms": 0}
    assert rollup(ts, vals, ints, function="avg", **kwargs).values.tolist() == [7 / 3]


def test_next_boundaries_of_labels_millennia_apart() -> None:
    """Labels far apart are taken run by run (no offset table across 10,000 years)."""
    paris = get_zone("Europe/Paris")
    labels = np.array([-62135596800000 + 86_400_000, 253402128000000], np.int64)  # 0001, 9999
    got = next_boundaries(labels, Interval(1, "minute"), paris, start_ms=int(labels[0]))
    assert got.tolist() == (labels + MINUTE).tolist()
    day = Interval(1, "day")
    midnights = bucket_labels(labels, interval=day, zone=paris, start_ms=int(labels[0]))
    daily = next_boundaries(midnights, day, paris, start_ms=int(labels[0]))
    assert (daily - midnights).tolist() == [86_400_000, 86_400_000]


BIG = 1.7e308  # near float64's largest: sums and differences of two such values overflow


def fold_one(values: list[float], fold: str, ints: list[bool] | None = None) -> tuple[float, bool]:
    """One group's fold, with numpy's floating-point warnings raised as errors."""
    vals = np.array(values, np.float64)
    flags = np.array(ints if ints is not None else [False] * len(values), np.bool_)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out, out_ints = fold_groups(vals, flags, np.zeros(1, np.intp), fold)
    return float(out[0]), bool(out_ints[0])


@settings(max_examples=150, deadline=None)
@given(
    group=st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=12),
    percent=st.sampled_from([0.5, 10, 25, 50, 75, 90, 99.9, 100]),
)
def test_percentiles_are_numpys_to_the_bit(group: list[float], percent: float) -> None:
    got, _ = fold_one(group, parse_fold(f"percentile,{percent}"))
    assert got == float(np.percentile(group, percent))


def test_percentiles_round_as_numpy_does() -> None:
    """Between two values numpy takes the nearer one's side (``b - d * (1 - t)`` from t =
    0.5): the two ways round differently."""
    assert fold_one([69.49, -73.13], "percentile,50")[0] == -1.8200000000000074
    assert fold_one([-48.99, 52.75], "percentile,90")[0] == 42.576


def test_percentiles_of_values_further_apart_than_float64_reaches() -> None:
    """Their difference overflows; numpy's percentile answers nan or an infinity there."""
    assert fold_one([-BIG, -BIG, BIG], "percentile,50")[0] == -BIG
    assert fold_one([BIG, -BIG], "percentile,50")[0] == 0.0
    assert fold_one([-BIG, BIG], "percentile,25")[0] == pytest.approx(-BIG / 2)
    assert fold_one([-BIG, BIG], "percentile,75")[0] == pytest.approx(BIG / 2)
    assert fold_one([-BIG, BIG], "percentile,100")[0] == BIG


def test_means_of_sums_beyond_float64_are_finite() -> None:
    assert fold_one([BIG, BIG, BIG, BIG], "mean")[0] == BIG
    assert fold_one([BIG, BIG, 0.0, 0.0], "mean")[0] == BIG / 2
    # Summed pairwise, this one's sum is inf - inf: nan.
    assert fold_one([BIG, -BIG] * 16, "mean")[0] == 0.0
    assert fold_one([BIG, BIG, -BIG, -BIG], "stddev")[0] == math.inf
    assert fold_one([BIG, BIG, BIG, BIG], "ss")[0] == 0.0


def test_finite_mean() -> None:
    assert finite_mean(np.array([BIG, BIG, BIG, BIG])) == BIG
    assert finite_mean(np.array([BIG, BIG, BIG])) == pytest.approx(BIG, rel=1e-15)
    assert finite_mean(np.array([BIG, -BIG, BIG, 0.0])) == BIG / 4
    assert finite_mean(np.array([1.0, 2.0, 4.0, 5.0])) == 3.0
    assert finite_mean(np.array([-3.0])) == -3.0


def test_aggregate_of_no_series() -> None:
    ts, vals, ints = aggregate([], "sum")
    assert (ts.size, vals.size, ints.size) == (0, 0, 0)
    assert (ts.dtype, vals.dtype, ints.dtype) == (np.int64, np.float64, np.bool_)


@pytest.mark.parametrize("fold", FOLDS)
@pytest.mark.parametrize("ints", [[True, True, True], [False, False, False], [True, False, True]])
def test_folds_give_floats_and_boolean_flags(fold: str, ints: list[bool]) -> None:
    vals = np.array([3.0, 1.0, 2.0, 5.0])
    flags = np.array([*ints, ints[0]])
    out, out_ints = fold_groups(vals, flags, np.array([0, 3], np.intp), parse_fold(fold))
    assert (out.dtype, out_ints.dtype) == (np.float64, np.bool_)
    assert out.shape == out_ints.shape == (2,)


def test_integer_sums_beyond_int64_are_exact() -> None:
    assert fold_one([2.0**62] * 3, "sum", [True] * 3) == (3 * 2.0**62, False)
    assert fold_one([2.0**62, -(2.0**62), 5.0], "sum", [True] * 3) == (5.0, True)


@pytest.mark.parametrize("fold", FOLDS)
def test_folds_of_no_groups(fold: str) -> None:
    empty = np.zeros(0, np.intp)
    out, out_ints = fold_groups(np.zeros(0), np.zeros(0, np.bool_), empty, parse_fold(fold))
    assert (out.dtype, out_ints.dtype) == (np.float64, np.bool_)
    assert out.size == out_ints.size == 0


def test_range_and_mult_are_integers_up_to_2_53() -> None:
    assert fold_one([0.0, 2.0**53], "range", [True, True]) == (2.0**53, True)
    assert fold_one([0.0, 2.0**53 + 2], "range", [True, True]) == (2.0**53 + 2, False)
    assert fold_one([1.0, 2.5], "range", [True, False]) == (1.5, False)
    assert fold_one([2.0, 2.5], "range", [False, False]) == (0.5, False)
    assert fold_one([2.0, 2.0], "range", [False, True]) == (0.0, False)
    assert fold_one([2.0**52, 2.0], "mult", [True, True]) == (2.0**53, True)
    assert fold_one([2.0**52, 4.0], "mult", [True, True]) == (2.0**54, False)


def test_range_and_mult_beyond_float64_are_inf() -> None:
    """Without a warning: the answer reads back as null."""
    assert fold_one([-BIG, BIG], "range") == (math.inf, False)
    assert fold_one([BIG, -BIG, 2.0], "mult") == (-math.inf, False)
    got, _ = fold_one([BIG, BIG, 0.0], "mult")  # inf * 0
    assert not math.isfinite(got)


def test_integer_sums_are_exact_up_to_2_53() -> None:
    # Summed as floats, 2**53 + 1 + 1 would be 2**53.
    assert fold_one([2.0**53, 1.0, 1.0], "sum", [True] * 3) == (2.0**53 + 2, False)
    assert fold_one([2.0**52, 2.0**52], "sum", [True] * 2) == (2.0**53, True)
    # numpy's float sum of these is 2**52.
    group = [-(2.0**53), 2.0**53, 2.0**52 + 1, -1.0, 1.0, 1.0]
    assert fold_one(group, "sum", [True] * 6) == (2.0**52 + 2, True)
    # Values too big for int64 sums are summed as Python ints.
    assert fold_one([2.0**62, 2.0**53 - 2.0**62], "sum", [True] * 2) == (2.0**53, True)


def test_fold_groups_refuses_unknown_folds() -> None:
    with pytest.raises(ValueError, match="Invalid fold: median"):
        fold_one([1.0], "median")


def test_fold_names_ignore_case_and_spaces() -> None:
    assert parse_fold(" Percentile, 99.9 ") == "percentile,99.9"
    assert parse_fold("MAX") == "max"
    with pytest.raises(ValueError, match="Invalid fold: median") as error:
        parse_fold("median")
    assert str(error.value) == (
        "Invalid fold: median (one of sum, mult, min, max, mean, avg, count, stddev, ss, "
        "range, first, last, or percentile,N with 0 < N <= 100)"
    )
