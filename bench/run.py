"""`make bench`: the whole server through HTTP with the real client, on this machine.

Starts ``tempodb serve`` on a fresh data folder and measures the TempoDB workload of
measured-facts.md (scaled by ``--series`` and ``--points``): ingest in 10k-point requests,
single-point writes and increments per second (one and eight client threads), and the reads
(raw 14,400 points, hourly mean, daily mean in America/Chicago, summary only, daily mean over
all series).  Each read is also timed with the storage engine alone (no HTTP, same process),
the baseline that shows what the HTTP layer and JSON cost on top.

    python bench/run.py [--series 10] [--points 100000]
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from serverproc import ServerProcess, create_key, data_args  # noqa: E402
from tempodb import Client, DataPoint  # noqa: E402
from tempodb.rollup import parse_interval, rollup, summarize  # noqa: E402
from tempodb.storage.base import SeriesFilter  # noqa: E402
from tempodb.storage.sqlite import SQLiteStore  # noqa: E402
from tempodb.zones import get_zone  # noqa: E402

START = datetime.datetime(2012, 1, 1, tzinfo=datetime.UTC)
START_MS = int(START.timestamp() * 1000)
MINUTE = 60_000


def median_ms(fn: Callable[[], object], rounds: int = 7) -> float:
    times = []
    for _ in range(rounds):
        began = time.perf_counter()
        fn()
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


def ingest(client: Client, series: int, points: int, batch: int = 10_000) -> float:
    """Points per second for ``series`` x ``points`` one-per-minute points."""
    began = time.perf_counter()
    for s in range(series):
        for first in range(0, points, batch):
            data = [
                DataPoint(START + datetime.timedelta(minutes=i), float(i % 1000) / 7)
                for i in range(first, min(points, first + batch))
            ]
            client.write_key(f"series-{s}", data)
    return series * points / (time.perf_counter() - began)


def ingest_encoded(client: Client, series: int, points: int, batch: int = 10_000) -> float:
    """Points per second when the request bodies are encoded before timing (as the peers'
    benchmarks format their line protocol first): the server's own ingest rate."""
    bodies = []
    for s in range(series):
        for first in range(0, points, batch):
            data = [
                {"t": f"{(START + datetime.timedelta(minutes=i)).isoformat()[:19]}.000Z", "v": i}
                for i in range(first, min(points, first + batch))
            ]
            bodies.append((f"/series/key/encoded-{s}/data/", data))
    encoded = [(path, orjson.dumps(data)) for path, data in bodies]
    began = time.perf_counter()
    for path, body in encoded:
        client._send(path, "POST", None, orjson.Fragment(body), accept=(200,))
    return series * points / (time.perf_counter() - began)


def requests_per_second(
    make_call: Callable[[int], Callable[[int], None]], threads: int, per_thread: int
) -> float:
    workers = [
        threading.Thread(target=lambda t=t: [make_call(t)(i) for i in range(per_thread)])
        for t in range(threads)
    ]
    began = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return threads * per_thread / (time.perf_counter() - began)


def engine_reads(data: Path, key: str, series_count: int) -> dict[str, float]:
    """The same reads against the store and rollup engine alone (the baseline)."""
    store = SQLiteStore(data)
    db = next(d for d in store.list_databases() if d.key == key)
    series = store.lookup_series(db.id, "key", "series-0")
    assert series is not None
    day10 = START_MS + 10 * 1440 * MINUTE
    chicago, utc = get_zone("America/Chicago"), get_zone("UTC")
    hour, day = parse_interval("1hour"), parse_interval("1day")
    assert hour is not None
    assert day is not None

    def read(sid: str = series.id, end: int = day10) -> object:
        return store.read_points(db.id, sid, START_MS, end)

    def fold(interval: object, zone: object, sid: str = series.id, end: int = day10) -> object:
        p = store.read_points(db.id, sid, START_MS, end)
        return rollup(
            p.ts,
            p.values,
            p.is_int,
            interval=interval,
            function="mean",  # type: ignore[arg-type]
            zone=zone,
            start_ms=START_MS,
        )  # type: ignore[arg-type]

    all_ids = [s.id for s in store.find_series(db.id, SeriesFilter())]
    figures = {
        "raw 14,400 pts": median_ms(read),
        "hourly mean": median_ms(lambda: fold(hour, utc)),
        "daily mean, America/Chicago": median_ms(lambda: fold(day, chicago)),
        "summary": median_ms(lambda: summarize(*(lambda p: (p.values, p.is_int))(read()))),
        f"daily mean, {series_count} series, all points": median_ms(
            lambda: [fold(day, utc, sid, START_MS + 10**12) for sid in all_ids], rounds=3
        ),
    }
    store.close()
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", type=int, default=10)
    parser.add_argument("--points", type=int, default=100_000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="tempodb-bench-") as folder:
        data = Path(folder) / "data"
        store_args = data_args(data)
        key, secret = create_key(store_args)
        server = ServerProcess.start(store_args)
        results: dict[str, object] = {"series": args.series, "points_per_series": args.points}
        try:
            client = Client(key, secret, server.host, server.port, secure=False)
            results["ingest pts/s, client from DataPoints"] = round(
                ingest(client, args.series, args.points)
            )
            results["ingest pts/s, bodies encoded before timing"] = round(
                ingest_encoded(client, args.series, args.points)
            )

            def write_one(t: int) -> Callable[[int], None]:
                return lambda i: client.write_key(
                    f"single-{t}", [DataPoint(START + datetime.timedelta(seconds=i), 1.0)]
                )

            def increment_one(t: int) -> Callable[[int], None]:
                return lambda i: client.increment_key(
                    "counter", [DataPoint(START + datetime.timedelta(seconds=i % 60), 1)]
                )

            results["single-point writes/s, 1 thread"] = round(
                requests_per_second(write_one, 1, 500)
            )
            results["single-point writes/s, 8 threads"] = round(
                requests_per_second(write_one, 8, 250)
            )
            results["single-point increments/s, 8 threads"] = round(
                requests_per_second(increment_one, 8, 250)
            )

            day10 = START + datetime.timedelta(days=10)
            results["raw 14,400 pts, HTTP and JSON only (no DataPoints), ms"] = round(
                median_ms(
                    lambda: client._send(
                        "/series/key/series-0/data/",
                        "GET",
                        [("start", "2012-01-01"), ("end", "2012-01-11"), ("interval", "raw")],
                        None,
                        accept=(200,),
                    )
                ),
                2,
            )
            http = {
                "raw 14,400 pts": median_ms(
                    lambda: client.read_key("series-0", START, day10, interval="raw")
                ),
                "hourly mean": median_ms(
                    lambda: client.read_key("series-0", START, day10, interval="1hour")
                ),
                "daily mean, America/Chicago": median_ms(
                    lambda: client.read_key(
                        "series-0", START, day10, interval="1day", tz="America/Chicago"
                    )
                ),
                # one bucket for the whole range: the summary's cost plus one fold
                "summary": median_ms(
                    lambda: client.read_key("series-0", START, day10, interval="1year")
                ),
                f"daily mean, {args.series} series, all points": median_ms(
                    lambda: client.read(
                        START,
                        START + datetime.timedelta(days=10_000),
                        interval="1day",
                        keys=[f"series-{s}" for s in range(args.series)],
                    ),
                    rounds=3,
                ),
            }
        finally:
            server.stop()
        engine = engine_reads(data, key, args.series)
        size = sum(f.stat().st_size for f in data.iterdir())
        # both ingests wrote series x points: the single-point series are negligible
        results["bytes/pt on disk"] = round(size / (2 * args.series * args.points), 1)

    print(json.dumps(results, indent=2))
    print(f"\n{'read':<40} {'HTTP+client ms':>15} {'engine ms':>10} {'ratio':>7}")
    for name, ms in http.items():
        base = engine[name]
        print(f"{name:<40} {ms:>15.2f} {base:>10.2f} {ms / base:>7.1f}")
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
