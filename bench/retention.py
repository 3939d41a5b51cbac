"""R1, retention and the 15-minute tier (tempodb only, on its store in this process: the
pass is what a server runs in the background, ``Store.expire``):

* the retention pass over ``series`` series with a year of minute data each (all of it
  expired at once): its time and the points dropped per second;
* a 10-year daily rollup (mean in America/Chicago) from the tier against the same rollup
  from the raw points before they expired (read + fold, the median of ``reads`` rounds);
* the store's size under a steady write rate with a retention of 7 days (and a tier kept
  14 days): a day of minute data for ``steady_series`` series is written, then a pass runs,
  ``steady_days`` times; the size after each day (SQLite: the file after a checkpoint;
  PostgreSQL: the tables after a plain VACUUM, as autovacuum would leave them).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tempodb import tier
from tempodb.rollup import parse_interval, rollup
from tempodb.storage.base import Database, Retention, SeriesRef, Store, WriteBatch
from tempodb.zones import get_zone

MINUTE = 60_000
DAY = 86_400_000
#: 2015-01-01T00:00Z: the data starts here.
T0 = 1_420_070_400_000


@dataclass(frozen=True)
class R1Sizes:
    series: int
    days: int  # of minute data per series for the pass
    long_days: int  # of the long series for the rollups
    reads: int
    steady_series: int
    steady_days: int
    keep_days: int  # the retention of the steady writes
    tier_keep_days: int  # and of their tier


R1_FULL = R1Sizes(100, 365, 3652, 5, 20, 40, keep_days=7, tier_keep_days=14)
R1_QUICK = R1Sizes(5, 20, 120, 2, 4, 12, keep_days=2, tier_keep_days=4)


#: Days of minute data per write: 14,400 points, the size of a bulk load's requests.
CHUNK_DAYS = 10


def _write(store: Store, db: Database, key: str, lo: int, days: int) -> int:
    """Minute points of ``days`` days from ``lo``, written ``CHUNK_DAYS`` at a time; how many."""
    for first in range(0, days, CHUNK_DAYS):
        last = min(days, first + CHUNK_DAYS)
        ts = np.arange(lo + first * DAY, lo + last * DAY, MINUTE, dtype=np.int64)
        values = np.sin(ts / 3.6e6) * 100 + (ts // MINUTE) % 7
        store.write_points(
            db.id,
            WriteBatch(
                [SeriesRef("key", key)],
                np.zeros(ts.size, np.int32),
                ts,
                values,
                np.zeros(ts.size, np.bool_),
            ),
        )
    return days * DAY // MINUTE


def _database(store: Store) -> Database:
    credentials = store.create_database("r1")
    found = store.authenticate(credentials.key, credentials.secret)
    assert found is not None
    return found


def r1(
    open_store: Callable[[str], Store],
    size_of: Callable[[Store], int],
    sizes: R1Sizes,
    say: Callable[[str], None],
) -> dict[str, Any]:
    """The R1 figures; ``open_store(name)`` opens a fresh store."""
    figures: dict[str, Any] = {}
    # The pass over a year of minute data per series.
    store = open_store("pass")
    try:
        db = _database(store)
        total = sum(_write(store, db, f"s{n}", T0, sizes.days) for n in range(sizes.series))
        store.set_retention(db.key, Retention(keep_ms=DAY))
        began = time.perf_counter()
        done = store.expire(T0 + (sizes.days + 1) * DAY)
        seconds = time.perf_counter() - began
        assert done.points == total, (done, total)
        figures["R1_pass_s"] = round(seconds, 2)
        figures["R1_pass_points_per_s"] = round(total / seconds)
        say(f"  R1 pass: {total} points of {done.series} series in {seconds:.2f} s")
    finally:
        store.close()
    # The long daily rollup, raw then from the tier.
    store = open_store("long")
    try:
        db = _database(store)
        _write(store, db, "long", T0, sizes.long_days)
        record = store.lookup_series(db.id, "key", "long")
        assert record is not None
        zone = get_zone("America/Chicago")
        interval = parse_interval("1day")
        assert interval is not None
        lo, hi = T0, T0 + sizes.long_days * DAY

        def raw() -> Any:
            points = store.read_points(db.id, record.id, lo, hi)
            return rollup(
                points.ts,
                points.values,
                points.is_int,
                interval=interval,
                function="mean",
                zone=zone,
                start_ms=lo,
            )

        def tiered() -> Any:
            summaries, points = store.read_tiered(db.id, record.id, lo, hi)
            return tier.answer(
                summaries,
                points.ts,
                points.values,
                points.is_int,
                interval=interval,
                folds=("mean",),
                zone=zone,
                start_ms=lo,
            )[0]

        before = raw()
        raw_ms = _median_ms(raw, sizes.reads)
        store.set_retention(db.key, Retention(keep_ms=DAY))
        store.expire(hi + DAY)
        after = tiered()
        assert after.ts.tolist() == before.ts.tolist()
        assert np.allclose(after.values, before.values, rtol=1e-9, atol=1e-9)
        tier_ms = _median_ms(tiered, sizes.reads)
        years = sizes.long_days / 365.25
        figures["R1_daily_rollup_years"] = round(years, 1)
        figures["R1_daily_rollup_raw_ms"] = round(raw_ms, 1)
        figures["R1_daily_rollup_tier_ms"] = round(tier_ms, 1)
        say(f"  R1 {years:.1f}-year daily mean: raw {raw_ms:.1f} ms, tier {tier_ms:.1f} ms")
    finally:
        store.close()
    # The size under a steady write rate.
    store = open_store("steady")
    try:
        db = _database(store)
        kept = Retention(keep_ms=sizes.keep_days * DAY, tier_keep_ms=sizes.tier_keep_days * DAY)
        store.set_retention(db.key, kept)
        sizes_mb: list[float] = []
        for day in range(sizes.steady_days):
            for n in range(sizes.steady_series):
                _write(store, db, f"s{n}", T0 + day * DAY, 1)
            store.expire(T0 + (day + 1) * DAY)
            sizes_mb.append(round(size_of(store) / 2**20, 2))
        half = sizes.steady_days // 2
        figures["R1_steady_size_half_mb"] = sizes_mb[half]
        figures["R1_steady_size_end_mb"] = sizes_mb[-1]
        figures["R1_steady_growth_second_half_pct"] = round(
            100 * (sizes_mb[-1] - sizes_mb[half]) / sizes_mb[half], 1
        )
        say(f"  R1 steady size by day (MiB): {sizes_mb}")
    finally:
        store.close()
    return figures


def _median_ms(call: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        began = time.perf_counter()
        call()
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


def sqlite_size(store: Store) -> int:
    """The SQLite file's size after a checkpoint (its WAL emptied)."""
    path: Path = store.path  # type: ignore[attr-defined]
    import sqlite3

    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return path.stat().st_size


def postgres_size(url: str) -> Callable[[Store], int]:
    """The size of the point tables after a plain VACUUM (what autovacuum leaves)."""

    def size(store: Store) -> int:
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            total = 0
            for table in ("block", "head", "tier"):
                conn.execute(f"VACUUM {table}")
                row = conn.execute("SELECT pg_total_relation_size(%s)", (table,)).fetchone()
                total += int(row[0]) if row else 0
            return total

    return size
