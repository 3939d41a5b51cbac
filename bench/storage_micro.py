"""Micro-benchmark of the embedded SQLite store alone (no HTTP, no JSON).

Ingests 10 series x 100,000 points (one a minute from 2012-01-01) in batches of 10,000, then
times a raw read of 14,400 points, single-point increments, an overwrite and an increment of
every point, and reports the bytes per point on disk.  Every write is durable when it returns
(one commit and fsync per call, or per group of concurrent calls), as the server needs it.

    python bench/storage_micro.py [--series 10] [--points 100000] [--batch 10000]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt

from tempodb.storage.base import SeriesRef, WriteBatch
from tempodb.storage.sqlite import FILE_NAME, SQLiteStore

START_MS = 1_325_376_000_000  # 2012-01-01T00:00:00Z
MINUTE_MS = 60_000
READ_POINTS = 14_400


def float_batch(keys: list[str], key_index: npt.ArrayLike, ts: npt.ArrayLike) -> WriteBatch:
    """Random float values at ``ts`` for the series ``keys[key_index]``."""
    ts_arr = np.asarray(ts, np.int64)
    return WriteBatch(
        [SeriesRef("key", k) for k in keys],
        np.asarray(key_index, np.int32),
        ts_arr,
        np.asarray(np.random.default_rng(int(ts_arr[0])).normal(size=ts_arr.shape[0]), np.float64),
        np.zeros(ts_arr.shape[0], np.bool_),
    )


def by_series(series: int, points: int, size: int) -> list[WriteBatch]:
    """Each batch holds the next ``size`` points of one series."""
    batches = []
    for s in range(series):
        for lo in range(0, points, size):
            ts = START_MS + MINUTE_MS * np.arange(lo, min(lo + size, points))
            batches.append(float_batch([f"series.{s}"], np.zeros(ts.shape[0]), ts))
    return batches


def interleaved(series: int, points: int, size: int) -> list[WriteBatch]:
    """Each batch holds the next ``size / series`` points of every series."""
    keys = [f"series.{s}" for s in range(series)]
    per = max(1, size // series)
    batches = []
    for lo in range(0, points, per):
        ts = START_MS + MINUTE_MS * np.arange(lo, min(lo + per, points))
        index = np.repeat(np.arange(series), ts.shape[0])
        batches.append(float_batch(keys, index, np.tile(ts, series)))
    return batches


def write_all(store: SQLiteStore, db: int, batches: list[WriteBatch], increment: bool) -> float:
    """The seconds it takes to write the batches one after another."""
    began = time.perf_counter()
    for batch in batches:
        store.write_points(db, batch, increment=increment)
    return time.perf_counter() - began


def open_store(folder: Path) -> tuple[SQLiteStore, int]:
    store = SQLiteStore(folder)
    credentials = store.create_database("bench")
    database = store.authenticate(credentials.key, credentials.secret)
    assert database is not None
    return store, database.id


def median_ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1e3:.3f} ms"


def time_reads(store: SQLiteStore, db: int, sid: str, start: int) -> None:
    end = start + READ_POINTS * MINUTE_MS
    assert len(store.read_points(db, sid, start, end)) == READ_POINTS
    reads, singles = [], []
    for _ in range(200):
        began = time.perf_counter()
        store.read_points(db, sid, start, end)
        reads.append(time.perf_counter() - began)
        began = time.perf_counter()
        store.single_value(db, sid, start + MINUTE_MS // 2, "nearest")
        singles.append(time.perf_counter() - began)
    print(f"read {READ_POINTS:,} raw points: {median_ms(reads)} (median)")
    print(f"single_value nearest: {median_ms(singles)} (median)")


def time_increments(store: SQLiteStore, db: int, spots: list[int], threads: int) -> None:
    """Single-point increments at ``spots``, spread over ``threads`` callers."""

    def run(share: list[int]) -> None:
        for t in share:
            batch = WriteBatch(
                [SeriesRef("key", "series.5")],
                np.zeros(1, np.int32),
                np.array([t], np.int64),
                np.ones(1),
                np.ones(1, np.bool_),
            )
            store.write_points(db, batch, increment=True)

    workers = [threading.Thread(target=run, args=(spots[i::threads],)) for i in range(threads)]
    began = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    seconds = time.perf_counter() - began
    print(f"single-point increments, {threads} thread(s): {len(spots) / seconds:,.0f}/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--series", type=int, default=10)
    parser.add_argument("--points", type=int, default=100_000, help="points per series")
    parser.add_argument("--batch", type=int, default=10_000, help="points per write")
    parser.add_argument("--increments", type=int, default=3_000, help="single-point increments")
    args = parser.parse_args()
    total = args.series * args.points

    with tempfile.TemporaryDirectory() as tmp:
        store, db = open_store(Path(tmp) / "interleaved")
        seconds = write_all(store, db, interleaved(args.series, args.points, args.batch), False)
        print(f"ingest, all series in each batch: {total / seconds / 1e6:.2f}M pts/s")
        store.close()

        folder = Path(tmp) / "by-series"
        store, db = open_store(folder)
        seconds = write_all(store, db, by_series(args.series, args.points, args.batch), False)
        print(f"ingest, one series per batch: {total / seconds / 1e6:.2f}M pts/s")

        record = store.lookup_series(db, "key", "series.3")
        assert record is not None
        time_reads(store, db, record.id, START_MS + MINUTE_MS * (args.points // 3))

        rng = np.random.default_rng(1)
        spots = (START_MS + MINUTE_MS * rng.integers(0, args.points, args.increments)).tolist()
        for threads in (1, 8):
            time_increments(store, db, spots, threads)

        batches = by_series(args.series, args.points, args.batch)
        seconds = write_all(store, db, batches, False)
        print(f"overwrite every point: {total / seconds / 1e6:.2f}M pts/s")
        seconds = write_all(store, db, batches, True)
        print(f"increment every point: {total / seconds / 1e6:.2f}M pts/s")

        store.close()
        size = (folder / FILE_NAME).stat().st_size
        print(f"on disk: {size / total:.2f} bytes/pt ({size / 2**20:.1f} MiB)")


if __name__ == "__main__":
    main()
