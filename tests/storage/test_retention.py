"""Retention and the 15-minute tier, on every backend: a pass summarizes and drops expired
points (each series at once), rollups from the tier equal those of the raw points before
they expired, deletes keep the tier whole, late points are counted once."""

from __future__ import annotations

import math
import sqlite3

import numpy as np
import pytest

from tempodb import tier
from tempodb.rollup import parse_interval, rollup_folds, summarize
from tempodb.storage.base import (
    Database,
    Retention,
    SeriesRef,
    Store,
    TierCut,
    WriteBatch,
)
from tempodb.storage.sqlite import SQLiteStore
from tempodb.zones import get_zone

DAY = 86_400_000
#: 2024-03-08 00:00 UTC: the read spans Chicago's spring DST change (2024-03-10).
T0 = 1_709_856_000_000
FOLDS = ("sum", "count", "min", "max", "mean", "stddev", "ss", "range", "first", "last")


def write(store: Store, db: Database, key: str, ts: np.ndarray, values: np.ndarray, ints) -> None:
    batch = WriteBatch(
        [SeriesRef("key", key)],
        np.zeros(ts.size, np.int32),
        ts.astype(np.int64),
        values.astype(np.float64),
        np.asarray(ints, np.bool_),
    )
    store.write_points(db.id, batch)


def series_id(store: Store, db: Database, key: str) -> str:
    found = store.lookup_series(db.id, "key", key)
    assert found is not None
    return found.id


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


@pytest.mark.parametrize("store", [None, 7], indirect=True)
def test_tier_answers_what_the_raw_points_answered(store: Store, db: Database) -> None:
    rng = np.random.default_rng(5)
    ts = np.unique(rng.integers(T0, T0 + 6 * DAY, 6000)).astype(np.int64)
    values = np.where(
        rng.random(ts.size) < 0.5, rng.integers(-50, 50, ts.size), rng.normal(0, 9, ts.size)
    )
    ints = values == np.round(values)
    write(store, db, "a", ts, values, ints)
    write(store, db, "b", ts[:10], values[:10], ints[:10])
    sid = series_id(store, db, "a")
    reads = []
    for zone_name in ("UTC", "America/Chicago", "Asia/Kolkata"):
        for text in ("15min", "1hour", "3hour", "1day", "1week", "1month"):
            zone = get_zone(zone_name)
            interval = parse_interval(text)
            assert interval is not None
            start = T0 - 4 * tier.TIER_MS
            end = T0 + 7 * DAY
            raw = store.read_points(db.id, sid, start, end)
            expected = rollup_folds(
                raw.ts,
                raw.values,
                raw.is_int,
                interval=interval,
                folds=FOLDS,
                zone=zone,
                start_ms=start,
            )
            reads.append((zone, interval, start, end, expected, summarize(raw.values, raw.is_int)))
    assert store.set_retention(db.key, Retention(keep_ms=2 * DAY))
    assert store.retentions()[db.id] == Retention(2 * DAY, None)
    now = T0 + 5 * DAY + 7 * 60_000 + 123  # cutoff: T0 + 3 days (a 15-minute mark)
    cutoff = T0 + 3 * DAY
    done = store.expire(now)
    kept = store.read_points(db.id, sid, T0 - DAY, T0 + 7 * DAY)
    assert done.series == 2
    assert done.points == int((ts < cutoff).sum()) + 10
    assert int(kept.ts[0]) >= cutoff
    assert len(kept) == int((ts >= cutoff).sum())
    assert store.expire(now).points == 0  # nothing twice
    for zone, interval, start, end, expected, want in reads:
        summaries, points = store.read_tiered(db.id, sid, start, end)
        assert summaries.points() == int((ts < cutoff).sum())
        assert (
            tier.unanswerable(interval, FOLDS, zone, start=start, end=end, tier=summaries) is None
        )
        got = tier.answer(
            summaries,
            points.ts,
            points.values,
            points.is_int,
            interval=interval,
            folds=FOLDS,
            zone=zone,
            start_ms=start,
        )
        for name, a, b in zip(FOLDS, got, expected, strict=True):
            assert a.ts.tolist() == b.ts.tolist()
            assert a.is_int.tolist() == b.is_int.tolist(), name
            assert all(
                close(x, y) for x, y in zip(a.values.tolist(), b.values.tolist(), strict=True)
            ), name
        found = tier.summary(
            tier.merge(summaries, tier.summarize(points.ts, points.values, points.is_int))
        )
        assert found.keys() == want.keys()
        assert all(close(float(found[k]), float(want[k])) for k in want)


def test_late_points_below_the_cutoff_are_counted_once(store: Store, db: Database) -> None:
    ts = np.arange(T0, T0 + DAY, 60_000, dtype=np.int64)
    write(store, db, "s", ts, np.ones(ts.size), np.ones(ts.size, np.bool_))
    store.set_retention(db.key, Retention(keep_ms=DAY))
    store.expire(T0 + 2 * DAY)
    sid = series_id(store, db, "s")
    # A point written late, below the cutoff, in a bucket already summarized.
    write(store, db, "s", np.array([T0 + 30_000]), np.array([5.0]), [True])
    store.expire(T0 + 2 * DAY)
    summaries, points = store.read_tiered(db.id, sid, T0, T0 + DAY)
    assert len(points) == 0
    assert summaries.points() == ts.size + 1
    assert tier.summary(summaries)["sum"] == ts.size + 5


def test_deletes_remove_whole_tier_buckets_and_refuse_to_cut_one(
    store: Store, db: Database
) -> None:
    ts = np.arange(T0, T0 + DAY, 60_000, dtype=np.int64)
    write(store, db, "s", ts, np.ones(ts.size), np.ones(ts.size, np.bool_))
    store.set_retention(db.key, Retention(keep_ms=DAY))
    store.expire(T0 + 2 * DAY)
    sid = series_id(store, db, "s")
    with pytest.raises(TierCut, match="15-minute"):
        store.delete_points(db.id, sid, T0 + 60_000, T0 + 3_600_000)
    summaries, _ = store.read_tiered(db.id, sid, T0, T0 + DAY)
    assert summaries.points() == ts.size  # nothing deleted
    store.delete_points(db.id, sid, T0 + tier.TIER_MS, T0 + 3 * tier.TIER_MS)
    summaries, _ = store.read_tiered(db.id, sid, T0, T0 + DAY)
    assert summaries.points() == ts.size - 30
    assert tier.TIER_MS not in summaries.ts.tolist()


def test_tier_retention_and_removing_the_retention(store: Store, db: Database) -> None:
    ts = np.arange(T0, T0 + 4 * DAY, 60_000, dtype=np.int64)
    write(store, db, "s", ts, np.ones(ts.size), np.ones(ts.size, np.bool_))
    sid = series_id(store, db, "s")
    store.set_retention(db.key, Retention(keep_ms=DAY, tier_keep_ms=2 * DAY))
    done = store.expire(T0 + 4 * DAY)  # raw before T0 + 3d, tier before T0 + 2d
    summaries, points = store.read_tiered(db.id, sid, T0 - DAY, T0 + 5 * DAY)
    assert int(summaries.ts[0]) == T0 + 2 * DAY
    assert summaries.points() == DAY // 60_000
    assert int(points.ts[0]) == T0 + 3 * DAY
    assert done.points == 3 * DAY // 60_000
    assert store.set_retention(db.key, Retention())
    assert store.retentions()[db.id] == Retention()  # kept: the tier may be read
    assert not store.set_retention("no-such-key", Retention(keep_ms=DAY))
    assert store.expire(T0 + 40 * DAY).points == 0
    store.delete_series(db.id, None)
    assert store.read_tiered(db.id, sid, T0, T0 + 5 * DAY)[0].points() == 0


def store_size(store: Store) -> int:
    """The bytes the points take: SQLite's file after a checkpoint, PostgreSQL's point
    tables (on Citus: their shards) after a plain VACUUM (what autovacuum leaves)."""
    if isinstance(store, SQLiteStore):
        conn = sqlite3.connect(store.path, isolation_level=None)
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()
        return store.path.stat().st_size
    import psycopg

    # On Citus the coordinator's tables are empty shells: the shards hold the rows.
    size = (
        "citus_total_relation_size" if getattr(store, "_citus", False) else "pg_total_relation_size"
    )
    with psycopg.connect(store._url, autocommit=True) as conn:  # type: ignore[attr-defined]
        total = 0
        for table in ("block", "head", "tier"):
            conn.execute(f"VACUUM {table}")
            row = conn.execute(f"SELECT {size}(%s)", (table,)).fetchone()
            total += int(row[0]) if row else 0
        return total


def test_a_store_with_a_retention_stops_growing(store: Store, db: Database) -> None:
    store.set_retention(db.key, Retention(keep_ms=3 * DAY, tier_keep_ms=5 * DAY))
    sizes = []
    for day in range(24):
        for number in range(4):
            ts = np.arange(T0 + day * DAY, T0 + (day + 1) * DAY, 60_000, dtype=np.int64)
            write(store, db, f"s{number}", ts, np.sin(ts / 1e7), np.zeros(ts.size, np.bool_))
        store.expire(T0 + (day + 1) * DAY)
        sizes.append(store_size(store))
    # Once the tier's retention is reached (day 6), the size stays where it was.
    assert max(sizes[12:]) <= sizes[11] * 1.1, sizes
    assert sizes[11] > sizes[2]
