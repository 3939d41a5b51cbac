"""How to lay points out in PostgreSQL: a row per point against columnar blocks per series.

Starts a throwaway cluster (tests/pg.py, fsync on), loads the same data both ways and times:

* ingest, in 10,000-point transactions (rows: binary COPY; blocks: ``PostgresStore.write_points``);
* a raw read of 14,400 points of one series (rows: binary COPY out, parsed with numpy);
* the input of an hourly rollup (30 days of one series) and of a daily one (all of a series),
  and, for rows, the same hourly means computed by PostgreSQL itself (GROUP BY);
* bytes per point (``pg_total_relation_size`` of the point table, indexes and TOAST included);
* single-point increments per second, from one thread and from eight (rows: an upsert).

Blocks are measured at several block sizes, and once with PostgreSQL's default TOAST
compression instead of ``STORAGE EXTERNAL``.

    python bench/pg_layout.py [--series 10] [--points 100000] [--blocks 256,1024,4096]
"""

from __future__ import annotations

import argparse
import io
import statistics
import struct
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from pg import Cluster  # noqa: E402
from tempodb.storage.base import SeriesRef, WriteBatch  # noqa: E402
from tempodb.storage.postgres import PostgresStore  # noqa: E402

START_MS = 1_325_376_000_000  # 2012-01-01T00:00:00Z
MINUTE_MS = 60_000
HOUR_MS = 3_600_000
READ_POINTS = 14_400
BATCH = 10_000

ROW_TABLE = """CREATE TABLE point (
    db bigint NOT NULL, sid bigint NOT NULL, ts bigint NOT NULL,
    value double precision NOT NULL, is_int boolean NOT NULL,
    PRIMARY KEY (db, sid, ts))"""
#: One tuple of ``COPY (SELECT ts, value, is_int ...) TO STDOUT (FORMAT binary)``.
ROW_DTYPE = np.dtype(
    [("nf", ">i2"), ("l1", ">i4"), ("ts", ">i8"), ("l2", ">i4"), ("v", ">f8"), ("l3", ">i4"),
     ("b", "?")]
)  # fmt: skip
#: One tuple of ``COPY point FROM STDIN (FORMAT binary)``.
COPY_IN_DTYPE = np.dtype(
    [("nf", ">i2"), ("ldb", ">i4"), ("db", ">i8"), ("lsid", ">i4"), ("sid", ">i8"),
     ("lts", ">i4"), ("ts", ">i8"), ("lv", ">i4"), ("v", ">f8"), ("lb", ">i4"), ("b", "?")]
)  # fmt: skip


def median_ms(fn: Callable[[], object], rounds: int = 7) -> float:
    times = []
    for _ in range(rounds):
        began = time.perf_counter()
        fn()
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


def data(series: int, points: int) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """(series number, ts, values) in 10,000-point batches, series after series."""
    rng = np.random.default_rng(7)
    out = []
    for s in range(series):
        for lo in range(0, points, BATCH):
            ts = START_MS + MINUTE_MS * np.arange(lo, min(lo + BATCH, points), dtype=np.int64)
            out.append((s, ts, rng.normal(size=ts.shape[0])))
    return out


def hourly_means(ts: np.ndarray, values: np.ndarray) -> np.ndarray:
    hours = ts // HOUR_MS
    starts = np.flatnonzero(np.concatenate(([True], hours[1:] != hours[:-1])))
    return np.add.reduceat(values, starts) / np.diff(np.append(starts, ts.shape[0]))


def increments(do_one: Callable[[int], None], count: int, threads: int) -> float:
    """Single-point increments per second, ``threads`` callers at once."""
    per = count // threads

    def worker(n: int) -> None:
        for i in range(per):
            do_one(n * per + i)

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    began = time.perf_counter()
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return per * threads / (time.perf_counter() - began)


def bench_rows(url: str, batches: list[tuple[int, np.ndarray, np.ndarray]], total: int) -> dict:
    result: dict[str, float] = {}
    points = sum(ts.shape[0] for s, ts, _ in batches if s == 0)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(ROW_TABLE)
        began = time.perf_counter()
        for s, ts, values in batches:
            buf = io.BytesIO()
            buf.write(b"PGCOPY\n\xff\r\n\0" + struct.pack(">ii", 0, 0))
            rows = np.empty(ts.shape[0], COPY_IN_DTYPE)
            rows["nf"], rows["ldb"], rows["db"], rows["lsid"], rows["sid"] = 5, 8, 1, 8, s
            rows["lts"], rows["ts"], rows["lv"], rows["v"] = 8, ts, 8, values
            rows["lb"], rows["b"] = 1, False
            buf.write(rows.tobytes() + struct.pack(">h", -1))
            with (
                conn.transaction(),
                conn.cursor().copy("COPY point FROM STDIN (FORMAT binary)") as copy,
            ):
                copy.write(buf.getvalue())
        result["ingest pts/s"] = total / (time.perf_counter() - began)
        conn.execute("VACUUM ANALYZE point")
        row = conn.execute("SELECT pg_total_relation_size('point')").fetchone()
        assert row is not None
        result["bytes/pt"] = row[0] / total

        def read(start: int, end: int) -> np.ndarray:
            out = io.BytesIO()
            with conn.cursor().copy(
                "COPY (SELECT ts, value, is_int FROM point WHERE db = 1 AND sid = 0 "
                f"AND ts >= {start} AND ts < {end} ORDER BY ts) TO STDOUT (FORMAT binary)"
            ) as copy:
                for chunk in copy:
                    out.write(chunk)
            raw = out.getvalue()
            parsed = np.frombuffer(raw, ROW_DTYPE, (len(raw) - 21) // ROW_DTYPE.itemsize, 19)
            assert parsed.shape[0] == 0 or int(parsed["nf"][0]) == 3
            return parsed

        mid = START_MS + MINUTE_MS * max(0, min(20_000, points - READ_POINTS))
        assert read(mid, mid + READ_POINTS * MINUTE_MS).shape[0] == READ_POINTS
        result["raw 14,400 ms"] = median_ms(lambda: read(mid, mid + READ_POINTS * MINUTE_MS))

        def hourly_input() -> None:
            p = read(START_MS, START_MS + 30 * 24 * HOUR_MS)
            hourly_means(p["ts"].astype(np.int64), p["v"].astype(np.float64))

        result["hourly input ms"] = median_ms(hourly_input)
        result["hourly in SQL ms"] = median_ms(
            lambda: conn.execute(
                "SELECT ts / 3600000, avg(value) FROM point WHERE db = 1 AND sid = 0 "
                "AND ts >= %s AND ts < %s GROUP BY 1 ORDER BY 1",
                (START_MS, START_MS + 30 * 24 * HOUR_MS),
            ).fetchall()
        )
        result["daily input ms"] = median_ms(lambda: read(-(2**62), 2**62))

    series = len({s for s, _, _ in batches})
    rng = np.random.default_rng(1)
    targets = [
        (int(rng.integers(series)), START_MS + MINUTE_MS * int(rng.integers(points)))
        for _ in range(4000)
    ]
    local = threading.local()

    def upsert(i: int) -> None:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = psycopg.connect(url, autocommit=True)
            conns.append(conn)
        s, t = targets[i]
        conn.execute(
            "INSERT INTO point VALUES (1, %s, %s, 1, true) ON CONFLICT (db, sid, ts) "
            "DO UPDATE SET value = point.value + excluded.value, is_int = false",
            (s, t),
        )

    conns: list[psycopg.Connection] = []
    result["increments/s 1 thread"] = increments(upsert, 1000, 1)
    result["increments/s 8 threads"] = increments(upsert, 4000, 8)
    for conn in conns:
        conn.close()
    return result


def bench_blocks(
    url: str,
    batches: list[tuple[int, np.ndarray, np.ndarray]],
    total: int,
    block_points: int,
    compress: bool,
) -> dict:
    result: dict[str, float] = {}
    points = sum(ts.shape[0] for s, ts, _ in batches if s == 0)
    store = PostgresStore(url, block_points=block_points, max_size=8)
    if compress:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "ALTER TABLE block ALTER COLUMN ts SET STORAGE EXTENDED, "
                "ALTER COLUMN vals SET STORAGE EXTENDED"
            )
    credentials = store.create_database("bench")
    database = store.authenticate(credentials.key, credentials.secret)
    assert database is not None
    db = database.id
    began = time.perf_counter()
    for s, ts, values in batches:
        store.write_points(
            db,
            WriteBatch(
                [SeriesRef("key", f"series.{s}")],
                np.zeros(ts.shape[0], np.int32),
                ts,
                values,
                np.zeros(ts.shape[0], np.bool_),
            ),
        )
    result["ingest pts/s"] = total / (time.perf_counter() - began)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE block")
        row = conn.execute("SELECT pg_total_relation_size('block')").fetchone()
        assert row is not None
        result["bytes/pt"] = row[0] / total
    record = store.lookup_series(db, "key", "series.0")
    assert record is not None
    sid = record.id
    mid = START_MS + MINUTE_MS * max(0, min(20_000, points - READ_POINTS))
    assert len(store.read_points(db, sid, mid, mid + READ_POINTS * MINUTE_MS)) == READ_POINTS
    result["raw 14,400 ms"] = median_ms(
        lambda: store.read_points(db, sid, mid, mid + READ_POINTS * MINUTE_MS)
    )

    def hourly_input() -> None:
        p = store.read_points(db, sid, START_MS, START_MS + 30 * 24 * HOUR_MS)
        hourly_means(p.ts, p.values)

    result["hourly input ms"] = median_ms(hourly_input)
    result["hourly in SQL ms"] = float("nan")
    result["daily input ms"] = median_ms(lambda: store.read_points(db, sid, -(2**62), 2**62))

    series = len({s for s, _, _ in batches})
    rng = np.random.default_rng(1)
    targets = [
        (f"series.{int(rng.integers(series))}", START_MS + MINUTE_MS * int(rng.integers(points)))
        for _ in range(4000)
    ]

    def increment(i: int) -> None:
        key, t = targets[i]
        store.write_points(
            db,
            WriteBatch(
                [SeriesRef("key", key)],
                np.zeros(1, np.int32),
                np.array([t], np.int64),
                np.ones(1),
                np.ones(1, np.bool_),
            ),
            increment=True,
        )

    result["increments/s 1 thread"] = increments(increment, 1000, 1)
    result["increments/s 8 threads"] = increments(increment, 4000, 8)
    store.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", type=int, default=10)
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--blocks", default="256,1024,4096", help="block sizes to measure")
    args = parser.parse_args()
    batches = data(args.series, args.points)
    total = args.series * args.points
    cluster = Cluster.start(fsync=True)
    try:
        results = {"rows": bench_rows(cluster.create_database("rows"), batches, total)}
        sizes = [int(b) for b in args.blocks.split(",")]
        for size in sizes:
            url = cluster.create_database(f"blocks{size}")
            results[f"blocks {size}"] = bench_blocks(url, batches, total, size, compress=False)
        url = cluster.create_database("compressed")
        results[f"blocks {sizes[-1]}, pglz"] = bench_blocks(
            url, batches, total, sizes[-1], compress=True
        )
    finally:
        cluster.stop()
    print(f"{args.series} series x {args.points:,} points, PostgreSQL, fsync on")
    names = list(next(iter(results.values())))
    print(f"{'layout':<20}" + "".join(f"{n:>24}" for n in names))
    for layout, figures in results.items():
        cells = ("-" if figures[n] != figures[n] else f"{figures[n]:,.2f}" for n in names)
        print(f"{layout:<20}" + "".join(f"{cell:>24}" for cell in cells))


if __name__ == "__main__":
    main()
