"""Paging across many small windows: the server's window and keep sizes shrunk to a few
points, so that every read crosses windows, buckets straddle them, pages longer than
``KEEP_POINTS`` are read twice, and interpolated reads skip empty stretches.  The requests
run through the real application in this process (``tempodb.connect``), on a real SQLite
store; every page sequence must equal the unpaged answer."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tempodb
import tempodb.folds
from tempodb import Client, DataPoint
from tempodb.folds import aggregate
from tempodb.rollup import bucket_labels, parse_interval, rollup_folds
from tempodb.server import paging
from tempodb.storage import sqlite
from tempodb.zones import get_zone

UTC = datetime.UTC
START = datetime.datetime(2014, 3, 7, tzinfo=UTC)
END = datetime.datetime(2014, 3, 12, tzinfo=UTC)
TZ = "America/New_York"  # 2014-03-09: the clocks spring forward


@pytest.fixture(scope="module")
def small_windows() -> Iterator[None]:
    saved = paging.WINDOW_POINTS, paging.MAX_WINDOW_POINTS, paging.KEEP_POINTS
    paging.WINDOW_POINTS, paging.MAX_WINDOW_POINTS, paging.KEEP_POINTS = 8, 16, 40
    yield
    paging.WINDOW_POINTS, paging.MAX_WINDOW_POINTS, paging.KEEP_POINTS = saved


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, small_windows: None) -> Iterator[Client]:
    client = tempodb.connect(tmp_path_factory.mktemp("windows") / "data")
    # Irregular points: bursts every 5 minutes, then hours of nothing.
    minutes = [m for m in range(0, 5 * 24 * 60, 5) if (m // 180) % 3 != 1]
    for index, key in enumerate(("a", "b", "c")):
        points = [
            DataPoint(START + datetime.timedelta(minutes=m + index), (m * (index + 3)) % 23)
            for m in minutes[index::2]
        ]
        client.write_key(key, points)
    yield client
    client.close()


SHAPES: list[dict[str, str]] = [
    {},
    {"rollup_period": "PT1H", "rollup_fold": "sum"},
    {"rollup_period": "P1D", "rollup_fold": "count"},
    {"interpolation_period": "PT20M", "interpolation_function": "linear"},
    {
        "interpolation_period": "PT30M",
        "interpolation_function": "zoh",
        "rollup_period": "PT2H",
        "rollup_fold": "mean",
    },
]
SETTINGS = settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def pairs(items: Any) -> list[tuple[Any, Any]]:
    return [(p.ts, p.value if isinstance(p, DataPoint) else p.values) for p in items]


@SETTINGS
@given(limit=st.integers(1, 120), shape=st.sampled_from(SHAPES))
def test_pages_over_small_windows(store: Client, limit: int, shape: dict[str, str]) -> None:
    whole = pairs(store.read_segment("a", START, END, tz=TZ, limit=None, **shape))
    assert whole
    assert pairs(store.read_segment("a", START, END, tz=TZ, limit=limit, **shape)) == whole
    agg = {"fold": "max", **shape}
    assert pairs(store.aggregate(START, END, tz=TZ, limit=limit, **agg)) == pairs(
        store.aggregate(START, END, tz=TZ, limit=None, **agg)
    )
    assert pairs(store.read_multi(START, END, tz=TZ, limit=limit, **shape)) == pairs(
        store.read_multi(START, END, tz=TZ, limit=None, **shape)
    )


@SETTINGS
@given(limit=st.integers(1, 30))
def test_find_and_rollups_over_small_windows(store: Client, limit: int) -> None:
    def find(lim: int | None) -> list[Any]:
        found = store.find("b", START, END, function="min", period="PT3H", tz=TZ, limit=lim)
        return [(f.start, f.end, f.point) for f in found]

    def rollups(lim: int | None) -> list[Any]:
        folds = ["first", "last", "range", "percentile,50"]
        return pairs(store.read_rollups("c", START, END, period="PT4H", folds=folds, limit=lim))

    assert find(limit) == find(None)
    assert rollups(limit) == rollups(None)


def test_small_windows_give_the_answer_of_one_window(
    store: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rolled-up answer over small windows is the 0.5 rollup of the whole range, and
    the windows were many."""
    windows = []
    read = paging.Source.windows

    def counted(self: paging.Source, lo: int, hi: int) -> Iterator[tuple[int, list[Any]]]:
        for high, window in read(self, lo, hi):
            windows.append(window)
            yield high, window

    monkeypatch.setattr(paging.Source, "windows", counted)
    old = store.read_key("a", START, END, interval="1hour", function="sum", tz=TZ)
    new = store.read_segment("a", START, END, rollup_period="PT1H", rollup_fold="sum", tz=TZ)
    assert pairs(new) == [(p.ts, p.value) for p in old.data]
    assert len(windows) > 20


def test_listing_pages_of_one(tmp_path: Path) -> None:
    with tempodb.connect(tmp_path / "data") as client:
        client.create_many_series([f"k{i}" for i in range(7)])
        assert [s.key for s in client.iter_series(limit=1)] == [f"k{i}" for i in range(7)]


def test_rolled_up_windows_end_on_bucket_boundaries(
    store: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rolled-up read's windows (but the last) end where a bucket starts: no piece is cut
    and carried into the next."""
    ends: list[tuple[paging.Source, int]] = []
    cuts: list[int] = []
    read, cut = paging.Source.windows, paging._cut

    def counted(self: paging.Source, lo: int, hi: int) -> Iterator[tuple[int, list[Any]]]:
        for high, window in read(self, lo, hi):
            ends.append((self, high))
            yield high, window

    def counted_cut(piece: list[Any], below: int) -> Any:
        cuts.append(below)
        return cut(piece, below)

    monkeypatch.setattr(paging.Source, "windows", counted)
    monkeypatch.setattr(paging, "_cut", counted_cut)
    for shape in SHAPES:
        if "rollup_period" in shape:
            # One page (its limit never reached), read from windows of a day on.
            list(store.read_segment("a", START, END, tz=TZ, limit=10_000, **shape))
            list(store.aggregate(START, END, fold="sum", tz=TZ, limit=10_000, **shape))
    inner = [(source, high) for source, high in ends if high < source.end]
    assert len(inner) > 20
    for source, high in inner:
        assert source.group is not None
        at = np.array([high], np.int64)
        label = bucket_labels(at, interval=source.group, zone=source.zone, start_ms=source.start)
        assert int(label[0]) == high
    assert cuts == []


def test_long_ranges_start_with_a_window_the_estimate_sizes(
    tmp_path: Path, small_windows: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A whole answer over more than a month starts with a window sized from the store's
    estimate of its points (here a few hours: the windows hold 32 points), and is the 0.5
    rollup all the same."""
    spans: list[int] = []
    read = paging.Source.windows

    def counted(self: paging.Source, lo: int, hi: int) -> Iterator[tuple[int, list[Any]]]:
        for high, window in read(self, lo, hi):
            spans.append(high - lo)
            lo = high
            yield high, window

    monkeypatch.setattr(paging.Source, "windows", counted)
    first = datetime.datetime(2014, 1, 1, tzinfo=UTC)
    last = first + datetime.timedelta(days=90)
    with tempodb.connect(tmp_path / "data") as client:
        hours = range(0, 90 * 24, 1)
        client.write_key(
            "h", [DataPoint(first + datetime.timedelta(hours=h), h % 7) for h in hours]
        )
        old = client.read_key("h", first, last, interval="1day", function="max", tz=TZ)
        new = client.read_segment("h", first, last, rollup_period="P1D", rollup_fold="max", tz=TZ)
        assert pairs(new) == [(p.ts, p.value) for p in old.data]
    assert spans[0] < 2 * 86_400_000
    assert len(spans) > 50


def test_aligned_series_in_small_blocks_aggregate_as_whole_series(
    tmp_path: Path, small_windows: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Series sampled together, stored in blocks of 3 points and read over small windows:
    the aggregate (folded piece by piece from the blocks) is the fold of the whole series,
    then the rollup."""
    tiny = sqlite.SQLiteStore

    def store_of_tiny_blocks(*args: Any, **kwargs: Any) -> sqlite.SQLiteStore:
        return tiny(*args, block_points=3, **kwargs)

    monkeypatch.setattr(sqlite, "SQLiteStore", store_of_tiny_blocks)
    stacked: list[bool] = []
    aligned = tempodb.folds._aligned

    def counted(*args: Any) -> Any:
        found = aligned(*args)
        stacked.append(found is not None)
        return found

    monkeypatch.setattr(tempodb.folds, "_aligned", counted)
    minutes = [m for m in range(0, 3 * 24 * 60, 7) if m % 300 < 200]
    keys = ["x", "y", "z"]
    with tempodb.connect(tmp_path / "data") as client:
        for index, name in enumerate(keys):
            points = [
                DataPoint(
                    START + datetime.timedelta(minutes=m), (m * (index + 2)) % 19 - 4.5 * (m % 2)
                )
                for m in minutes
            ]
            client.write_key(name, points)
        series = []
        for name in keys:
            whole = client.read_key(name, START, END, interval="raw").data
            series.append(
                (
                    np.array([int(p.ts.timestamp() * 1000) for p in whole], np.int64),
                    np.array([float(p.value) for p in whole], np.float64),
                    np.array([isinstance(p.value, int) for p in whole], np.bool_),
                )
            )
        zone = get_zone(TZ)
        start_ms = int(START.timestamp() * 1000)
        for fold, rolled in (("mean", "max"), ("sum", "mean"), ("first", "sum"), ("max", "count")):
            ts, vals, ints = aggregate(series, fold)
            want = rollup_folds(
                ts,
                vals,
                ints,
                interval=parse_interval("PT2H"),
                folds=(rolled,),
                zone=zone,
                start_ms=start_ms,
            )[0]
            got = client.aggregate(
                START,
                END,
                fold=fold,
                keys=keys,
                rollup_period="PT2H",
                rollup_fold=rolled,
                tz=TZ,
                limit=10_000,  # one page, from windows of a day on
            )
            assert [(int(p.ts.timestamp() * 1000), p.value) for p in got] == [
                (int(t), int(v) if i else float(v))
                for t, v, i in zip(
                    want.ts.tolist(), want.values.tolist(), want.is_int.tolist(), strict=True
                )
            ]
    assert len(stacked) > 20
    assert all(stacked)
