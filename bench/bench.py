"""`make bench`: tempodb against InfluxDB and VictoriaMetrics, through their HTTP APIs.

One data set (``dataset.py``), the same workloads for every system, one system at a time, each
started as its own process on loopback with its data in a temporary folder and stopped at the
end.  Figures are taken from the client's side (``httpc.py``: requests encoded before timing,
a response counts when its last byte arrived) and are medians of repeated runs.

    W1  ingest, 10k points per request (two client connections)  W1_points_per_s
    W2  overwrite / increment existing points                    W2_*_points_per_s
    W3  raw read of 10 days of one series                        W3_raw_10_days_ms
    W4  hourly mean, daily min/max/mean/stddev in America/Chicago, the summary, over one
        series' whole range                                      W4_*_ms
    W5  daily mean in America/Chicago of every series            W5_daily_mean_all_series_ms
    W6  delete 10 days of one series                             W6_delete_10_days_ms
    W7  bytes on disk per point                                  W7_bytes_per_point
    W8  8 clients sending 10 series x 1 point each               W8_requests_per_s
        and the floor: the same clients sending the cheapest authenticated request
        (tempodb: an empty multi write; the peers: their ping)   W8_floor_requests_per_s
    S1  ingest into 1k and 100k series                           S1_*_points_per_s
    S2  automatic rollup over 1 month, 1 year, 10 years of minute data, and the raw 10 years
    S3  100k tagged series: 10k created one per request (16 clients), 90k in requests of
        10,000 (tempodb's bulk ``POST /v1/series/``, the peers' line protocol), then the
        series of one tag among them (1,000)                     S3_*
    V1  the 1.0 reads against the same 0.5 reads, alternated: segment raw 10 days, hourly
        mean, daily max in America/Chicago, the aggregate (mean across series, daily) of every
        series against W5                                         V1_*_ms, V1_*_ratio
    V2  the 10-year series of S2 read raw page by page (limit 5,000, following Link), its
        server memory growth, and its time against one 0.5 raw read  V2_*
    S4  1M series (``--s4-series``) on an instance of its own: created by multi writes of
        10,000 points (one per series), a second round of points; at 1k and at 1M series
        stored the p50 of a W8-style write, of a one-series raw read and of the series of a
        tag (1,000), and the server's resident set             S4_*
    R1  retention (tempodb only, ``retention.py``): the pass over 100 series with a year of
        minute data (time, points dropped per second); a 10-year daily rollup from the
        15-minute tier against the same from raw points; the store's size under a steady
        write rate with a retention                            R1_*
    P1  Prometheus remote_write of 10k series in requests of 500 samples (tempodb and
        VictoriaMetrics), and remote_read of one day of 100 series (tempodb, and a Prometheus
        with the day in its local storage, ``prom.py``)        P1_*
    L1  W1's data set through InfluxDB's line protocol (``POST /write?precision=ms``, the
        same requests of 10k lines on two connections, measurement ``m``, tag ``s`` = the
        series, field ``v``) into a fresh instance of each system  L1_points_per_s
    Q1  Grafana's InfluxQL over 10 days of the 100 series L1 wrote, ``epoch=ms`` (tempodb and
        InfluxDB): ``SELECT mean("v") FROM "m" WHERE time >= ..ms AND time < ..ms GROUP BY
        time(1h) fill(null)``, one line of the 100 series folded together (240 rows), and
        the same ``GROUP BY time(1h), "s"``, a line per series (100 x 240 rows)  Q1_*_ms

tempodb runs on the embedded store (``tempodb``), on a throwaway PostgreSQL cluster
(``tempodb-postgres``) and on a throwaway Citus cluster, a coordinator and two workers on this
machine (``tempodb-citus``: W1, W4, W8 and S1 only; it shows what distribution costs).

W1 to W7 run on the main instance filled by W1's first round; W8, S1, S2 and S3 follow on it.
L1 and Q1 run on an instance of their own (the first round of L1 fills it for Q1).
``--only S3,S4,W8`` runs only those workloads and what they need set up (W2 to W7 need the
fill; W8, S1, S2, S3 alone run on an empty instance).  ``--quick`` runs everything on small
data in a minute or two (``make test`` does, without looking at the timings); peers that are
not installed are skipped with the reason.  Results: a table on stdout and
``bench/results/latest.json`` (``only.json`` with ``--only``).

    python bench/bench.py [--quick] [--only W8,S3,...] [--systems tempodb,influxdb,...]
                          [--s4-series N] [--output FILE]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT / "src"), str(ROOT / "tests")]

import numpy as np  # noqa: E402
import prom  # noqa: E402
import retention  # noqa: E402
from dataset import DAY_MS, MINUTE_MS, START_MS, Series, make_series  # noqa: E402
from floor import numpy_floor  # noqa: E402
from httpc import Request, requests_per_second, send_all  # noqa: E402
from procs import peak_rss_mb, reset_peak, rss_mb  # noqa: E402
from report import KEYS, print_table  # noqa: E402
from systems import BULK, InfluxDB, System, TempoDB, Unavailable, VictoriaMetrics  # noqa: E402

NOT_SUPPORTED = "not supported"
Figures = dict[str, object]
T = TypeVar("T")


@dataclass(frozen=True)
class Sizes:
    series: int
    points: int
    batch: int
    rewrite: int  # points overwritten (and incremented) in W2
    reads: int  # rounds of each read
    multi_reads: int
    ingest_rounds: int
    small_seconds: float
    scale_1k: tuple[int, int]  # series, points each
    scale_100k: tuple[int, int]
    long_points: int  # the 10-year series (minute data)
    tagged: int
    s4_series: int  # series stored at the end of S4
    s4_probe: int  # S4's first size (and the series its tag lookup finds)
    s4_samples: int  # S4's small writes and reads at each size (a quarter as many lookups)
    ingest_clients: int = 2
    p1: prom.P1Sizes = prom.FULL
    r1: retention.R1Sizes = retention.R1_FULL


FULL = Sizes(
    series=100,
    points=100_000,
    batch=10_000,
    rewrite=1_000_000,
    reads=15,
    multi_reads=5,
    ingest_rounds=3,
    small_seconds=10.0,
    scale_1k=(1_000, 10_000),
    scale_100k=(100_000, 100),
    long_points=5_259_600,
    tagged=100_000,
    s4_series=1_000_000,
    s4_probe=1_000,
    s4_samples=200,
)
QUICK = Sizes(
    series=8,
    points=20_000,
    batch=10_000,
    rewrite=40_000,
    reads=5,
    multi_reads=3,
    ingest_rounds=1,
    small_seconds=1.5,
    scale_1k=(50, 2_000),
    scale_100k=(2_000, 10),
    long_points=100_000,
    tagged=2_000,
    s4_series=2_000,
    s4_probe=200,
    s4_samples=20,
    p1=prom.QUICK,
    r1=retention.R1_QUICK,
)


def median_ms(read: Callable[[], object], rounds: int) -> float:
    read()  # warm-up, untimed
    times = []
    for _ in range(rounds):
        began = time.perf_counter()
        read()
        times.append((time.perf_counter() - began) * 1000)
    return round(statistics.median(times), 3)


def ingest(system: System, requests: list[Request], clients: int) -> float:
    """Seconds to send ``requests`` over ``clients`` connections (series stay on one)."""
    conns = [system.connection() for _ in range(clients)]
    wires = [[conns[0].encode(r) for r in requests[k::clients]] for k in range(clients)]
    for conn in conns:
        conn.close()
    return send_all(system.host, system.port, wires)


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


#: The workloads, in the order they run; ``--only`` picks some of them.
WORKLOADS = (
    "W1",
    "W2",
    "W3",
    "W4",
    "W5",
    "W6",
    "W7",
    "W8",
    "S1",
    "S2",
    "S3",
    "S4",
    "P1",
    "R1",
    "V1",
    "V2",
    "L1",
    "Q1",
)
#: The workloads run on the Citus cluster (a coordinator and two workers on this machine: what
#: distribution costs, not a speed-up).
CITUS_WORKLOADS = frozenset({"W1", "W4", "W8", "S1"})
#: The workloads that read or change the main data set (W1's ingest fills it first).
NEED_DATA = frozenset({"W1", "W2", "W3", "W4", "W5", "W6", "W7", "V1"})
#: The workloads that run on the main instance (S4, L1 and Q1 start one of their own).
ON_MAIN = frozenset(WORKLOADS) - {"S4", "L1", "Q1"}
#: The workloads that need the data set generated.
USE_DATA = NEED_DATA | {"L1", "Q1"}
#: Q1's window: the first 10 days of the data set (or what the data set holds).
Q1_DAYS = 10


class Run:
    """The workloads ``only`` (all by default) against one system."""

    def __init__(
        self,
        system: System,
        sizes: Sizes,
        data: list[Series],
        root: Path,
        only: frozenset[str] = frozenset(WORKLOADS),
    ) -> None:
        self.system, self.sizes, self.data, self.root = system, sizes, data, root
        self.only = only
        self.figures: Figures = {}
        #: The workloads that failed, and the last line of their error.
        self.failed: dict[str, str] = {}

    def put(self, key: str, value: object) -> None:
        self.figures[key] = value
        say(f"  {self.system.name} {key} = {value}")

    def run(self) -> Figures:
        """The figures; a workload that fails is noted in ``failed`` and the next one runs
        (the set-up failing stops the run with the exception)."""
        system, only = self.system, self.only
        if only & NEED_DATA:
            self.w1()
        elif only & ON_MAIN:
            system.start(self.root / "main")
        data = ",".join(w for w in WORKLOADS if w in only & NEED_DATA - {"W1"})
        for name, step in (
            (data, self.on_data),
            ("W8", self.w8),
            ("S1", self.s1),
            ("S2,V2", self.long_series),
            ("S3", self.tags),
            ("P1", self.p1),
            ("R1", self.r1),
            ("L1,Q1", self.line_protocol),
            ("S4", self.s4),
        ):
            if name and set(name.split(",")) & only:
                self.step(name, step)
        return self.figures

    def step(self, name: str, run: Callable[[], None]) -> None:
        try:
            run()
        except Unavailable:
            raise
        except Exception:
            traceback.print_exc()
            self.failed[name] = traceback.format_exc().splitlines()[-1]
            say(f"  {self.system.name} {name} failed: {self.failed[name]}")

    def r1(self) -> None:
        """R1 (``retention.py``) on this system's store, opened in this process."""
        system = self.system
        if not isinstance(system, TempoDB):
            return
        from tempodb.storage.sqlite import SQLiteStore

        urls: list[str] = []

        def open_store(name: str) -> Any:
            if system.database_url is None:
                return SQLiteStore(self.root / f"r1-{name}")
            from tempodb.storage.postgres import PostgresStore

            urls.append(system.database_url())
            return PostgresStore(urls[-1], min_size=0)

        def size_of(store: Any) -> int:
            if system.database_url is None:
                return retention.sqlite_size(store)
            return retention.postgres_size(urls[-1])(store)

        for key, value in retention.r1(open_store, size_of, self.sizes.r1, say).items():
            self.put(key, value)

    def w1(self) -> None:
        """Fill the main instance with the data set (W1's first round); with W1 asked for,
        more rounds on fresh instances and the Python client."""
        s, system = self.sizes, self.system
        requests = [
            system.write(series, lo, min(lo + s.batch, s.points))
            for series in self.data
            for lo in range(0, s.points, s.batch)
        ]
        system.start(self.root / "main")
        rates = [len(self.data) * s.points / ingest(system, requests, s.ingest_clients)]
        if "W1" not in self.only:
            return
        self.put("W1_peak_rss_mb", round(peak_rss_mb(system.pid), 1))
        for extra in range(1, s.ingest_rounds):
            fresh = system.fresh()
            fresh.start(self.root / f"round{extra}")
            try:
                rates.append(len(self.data) * s.points / ingest(fresh, requests, s.ingest_clients))
            finally:
                fresh.stop()
                shutil.rmtree(self.root / f"round{extra}", ignore_errors=True)
        del requests
        self.put("W1_points_per_s", round(statistics.median(rates)))
        if isinstance(system, TempoDB) and system.name == "tempodb":
            self.put("W1_python_client_points_per_s", round(python_client_rate(system, s)))

    def on_data(self) -> None:
        """W7, W2 to W6 (those asked for) on the data set W1 wrote."""
        s, system, only = self.sizes, self.system, self.only
        keys = [series.key for series in self.data]
        key = keys[0]
        end = START_MS + s.points * MINUTE_MS
        ten_days = START_MS + 10 * DAY_MS
        if "W7" in only:  # right after the ingest
            bytes_on_disk = system.disk_bytes()
            self.put("W7_bytes_per_point", round(bytes_on_disk / (len(self.data) * s.points), 2))
        if "W2" in only:
            self.w2()
        if isinstance(system, VictoriaMetrics):
            system.flush()
        if "W3" in only:
            self.put("W3_raw_10_days_ms", median_ms(system.raw(key, START_MS, ten_days), s.reads))
        if "W4" in only:
            read = system.hourly_mean(key, START_MS, end)
            self.put("W4_hourly_mean_ms", median_ms(read, s.reads))
            for function in ("min", "max", "mean", "stddev"):
                read = system.daily(key, START_MS, end, function)
                self.put(f"W4_daily_{function}_chicago_ms", median_ms(read, s.reads))
            self.put("W4_summary_ms", median_ms(system.summary(key, START_MS, end), s.reads))
        if "W5" in only:
            read = system.multi_daily_mean(keys, START_MS, end)
            self.put("W5_daily_mean_all_series_ms", median_ms(read, s.multi_reads))
        if "V1" in only:
            self.v1(keys, end)
        if "W6" in only:
            self.w6(keys)

    def v1(self, keys: list[str], end: int) -> None:
        """V1: the 1.0 segment reads and the aggregate against the same reads through the
        0.5 routes, measured in alternation (the ratio is the target, issue 16)."""
        system, s = self.system, self.sizes
        names = ("segment_raw_10_days", "segment_hourly_mean", "segment_daily_max_chicago",
                 "aggregate_daily_mean_all_series")  # fmt: skip
        if not isinstance(system, TempoDB):
            for name in names:
                self.put(f"V1_{name}_ms", NOT_SUPPORTED)
                self.put(f"V1_{name}_ratio", NOT_SUPPORTED)
            return
        key, ten_days = keys[0], START_MS + 10 * DAY_MS
        pairs = (
            (system.segment(key, START_MS, ten_days), system.raw(key, START_MS, ten_days)),
            (
                system.segment(key, START_MS, end, rollup_period="PT1H", rollup_fold="mean"),
                system.hourly_mean(key, START_MS, end),
            ),
            (
                system.segment(
                    key, START_MS, end, rollup_period="P1D", rollup_fold="max", tz="America/Chicago"
                ),
                system.daily(key, START_MS, end, "max"),
            ),
            (
                system.aggregate_daily_mean(keys, START_MS, end),
                system.multi_daily_mean(keys, START_MS, end),
            ),
        )
        for name, (new, old) in zip(names, pairs, strict=True):
            rounds = s.multi_reads if name.startswith("aggregate") else s.reads
            new_ms, old_ms = [], []
            for _ in range(rounds):
                new_ms.append(median_ms(new, 1))
                old_ms.append(median_ms(old, 1))
            self.put(f"V1_{name}_ms", round(statistics.median(new_ms), 3))
            self.put(
                f"V1_{name}_ratio", round(statistics.median(new_ms) / statistics.median(old_ms), 3)
            )

    def w2(self) -> None:
        s, system = self.sizes, self.system
        per_series = min(s.points, max(1, s.rewrite // len(self.data)))
        changed = [
            Series(d.key, d.ts[:per_series], d.values[:per_series] + 1, d.integer)
            for d in self.data
        ]
        count = per_series * len(changed)
        for name, make in (("overwrite", system.overwrite), ("increment", system.increment)):
            made = [make(c, lo, min(lo + s.batch, per_series)) for c in changed for lo in
                    range(0, per_series, s.batch)]  # fmt: skip
            if any(r is None for r in made):
                self.put(f"W2_{name}_points_per_s", NOT_SUPPORTED)
                continue
            seconds = ingest(system, [r for r in made if r is not None], s.ingest_clients)
            self.put(f"W2_{name}_points_per_s", round(count / seconds))

    def w6(self, keys: list[str]) -> None:
        deletes = []
        for k in range(min(self.sizes.reads, len(keys) - 1)):
            first = START_MS + k * DAY_MS
            delete = self.system.delete(keys[k + 1], first, first + 10 * DAY_MS)
            if delete is None:
                self.put("W6_delete_10_days_ms", NOT_SUPPORTED)
                return
            began = time.perf_counter()
            delete()
            deletes.append((time.perf_counter() - began) * 1000)
        self.put("W6_delete_10_days_ms", round(statistics.median(deletes), 3))

    def w8(self) -> None:
        """W8, then its floor: the same client and clients, the cheapest (authenticated)
        request the system answers instead of the write."""
        system = self.system
        conn = system.connection()
        base = START_MS + 400 * DAY_MS
        wires = [
            [conn.encode(system.small_write(c, i, base + i * 1000)) for i in range(20_000)]
            for c in range(8)
        ]
        rate = requests_per_second(system.host, system.port, wires, self.sizes.small_seconds)
        self.put("W8_requests_per_s", round(rate))
        floor = [[conn.encode(system.floor_request())] for _ in range(8)]
        rate = requests_per_second(system.host, system.port, floor, self.sizes.small_seconds)
        self.put("W8_floor_requests_per_s", round(rate))

    def s1(self) -> None:
        s, system = self.sizes, self.system
        for label, (count, points) in (("1k", s.scale_1k), ("100k", s.scale_100k)):
            parts = [make_series(i, points, key=f"s{label}-{i}") for i in range(count)]
            if points >= s.batch:
                requests = [system.write(p, lo, lo + s.batch) for p in parts
                            for lo in range(0, points, s.batch)]  # fmt: skip
            else:
                per = max(1, s.batch // points)
                requests = [system.write_many(parts[i : i + per]) for i in range(0, count, per)]
            seconds = ingest(system, requests, s.ingest_clients)
            self.put(f"S1_ingest_{label}_series_points_per_s", round(count * points / seconds))

    def long_series(self) -> None:
        s, system = self.sizes, self.system
        long = make_series(1, s.long_points, key="long-0")
        requests = [system.write(long, lo, min(lo + s.batch, len(long)))
                    for lo in range(0, len(long), s.batch)]  # fmt: skip
        ingest(system, requests, s.ingest_clients)
        if isinstance(system, VictoriaMetrics):
            system.flush()
        if "V2" in self.only:
            self.v2(long)
        if "S2" not in self.only:
            return
        for label, days in (("1_month", 30), ("1_year", 365), ("10_years", 3652)):
            end = START_MS + days * DAY_MS
            if isinstance(system, TempoDB):
                read = system.auto(long.key, START_MS, end)
            elif days <= 30:
                read = system.hourly_mean(long.key, START_MS, end)
            else:
                read = system.daily_mean_utc(long.key, START_MS, end)
            self.put(f"S2_auto_{label}_ms", median_ms(read, max(3, s.reads // 3)))
        end = START_MS + 3652 * DAY_MS
        read = system.raw(long.key, START_MS, end)
        reset_peak(system.pid)
        base_rss = peak_rss_mb(system.pid)
        began = time.perf_counter()
        read()
        self.put("S2_raw_10_years_ms", round((time.perf_counter() - began) * 1000, 1))
        self.put("S2_raw_10_years_rss_growth_mb", round(peak_rss_mb(system.pid) - base_rss, 1))

    def v2(self, long: Series) -> None:
        """V2: the raw 10 years read page by page (5,000 points a page, following the Link
        headers): the time, the server's memory growth, and the time against one 0.5 read."""
        system = self.system
        if not isinstance(system, TempoDB):
            for key in ("V2_paged_10_years_ms", "V2_paged_10_years_rss_growth_mb",
                        "V2_paged_10_years_ratio"):  # fmt: skip
                self.put(key, NOT_SUPPORTED)
            return
        end = START_MS + 3652 * DAY_MS
        read = system.paged(long.key, START_MS, end, 5000)
        reset_peak(system.pid)
        base_rss = peak_rss_mb(system.pid)
        began = time.perf_counter()
        pages = read()
        paged_ms = (time.perf_counter() - began) * 1000
        growth = peak_rss_mb(system.pid) - base_rss
        began = time.perf_counter()
        system.raw(long.key, START_MS, end)()
        whole_ms = (time.perf_counter() - began) * 1000
        say(f"  {system.name} V2: {pages} pages")
        self.put("V2_paged_10_years_ms", round(paged_ms, 1))
        self.put("V2_paged_10_years_rss_growth_mb", round(growth, 1))
        self.put("V2_paged_10_years_ratio", round(paged_ms / whole_ms, 3))

    def tags(self) -> None:
        """S3: a tenth of the tagged series created one per request (16 clients), the rest in
        requests of 10,000 (tempodb's bulk route, the peers' line protocol), then a lookup by
        tag among them all."""
        s, system = self.sizes, self.system
        keys = [f"tagged-{i}" for i in range(s.tagged)]
        tags = [f"rack-{i % 100}" for i in range(s.tagged)]
        single = s.tagged // 10
        conn = system.connection()
        one = [conn.encode(system.tagged_series_one(k, t, START_MS))
               for k, t in zip(keys[:single], tags[:single], strict=True)]  # fmt: skip
        clients = 16
        seconds = send_all(system.host, system.port, [one[k::clients] for k in range(clients)])
        self.put("S3_create_series_one_per_request_per_s", round(single / seconds))
        bulk = system.tagged_series(keys[single:], tags[single:], START_MS)
        seconds = ingest(system, bulk, s.ingest_clients)
        self.put("S3_create_series_bulk_per_s", round((s.tagged - single) / seconds))
        if isinstance(system, VictoriaMetrics):
            system.flush()
        self.put("S3_series_by_tag_ms", median_ms(system.series_by_tag("rack-7"), s.reads))

    def p1(self) -> None:
        """P1 (``prom.py``): remote_write into tempodb and VictoriaMetrics; remote_read from
        tempodb (the Prometheus reference runs once, in ``main``)."""
        p, system = self.sizes.p1, self.system
        if not isinstance(system, TempoDB | VictoriaMetrics):
            self.put("P1_remote_write_samples_per_s", NOT_SUPPORTED)
            return
        rounds = prom.write_rounds(p)
        first = [prom.write_request(body) for body in rounds[0]]
        seconds = ingest(system, first, self.sizes.ingest_clients)
        self.put("P1_remote_write_new_series_samples_per_s", round(p.series / seconds))
        rest = [prom.write_request(body) for bodies in rounds[1:] for body in bodies]
        seconds = ingest(system, rest, self.sizes.ingest_clients)
        self.put("P1_remote_write_samples_per_s", round(p.series * (p.rounds - 1) / seconds))
        if not isinstance(system, TempoDB):
            return  # VictoriaMetrics has no remote_read
        bodies, _ = prom.read_day(p)
        ingest(system, [prom.write_request(body) for body in bodies], self.sizes.ingest_clients)
        ms, count = prom.timed_read(system.conn, prom.read_request(p), p.reads)
        if count != p.read_series * p.read_samples:
            raise RuntimeError(f"remote_read answered {count} samples")
        self.put("P1_remote_read_1_day_100_series_ms", ms)

    def line_protocol(self) -> None:
        """L1 (with L1 asked for) and Q1 (with Q1 asked for) on an instance of their own: the
        first round of L1 fills it, more rounds on fresh instances; Q1 reads the first."""
        s, system, data = self.sizes, self.system, self.data
        requests = [
            system.line_write(series, lo, min(lo + s.batch, s.points))
            for series in data
            for lo in range(0, s.points, s.batch)
        ]
        rates = []
        for extra in range(s.ingest_rounds if "L1" in self.only else 1):
            fresh = system.fresh()
            root = self.root / f"lp{extra}"
            fresh.start(root)
            try:
                rates.append(len(data) * s.points / ingest(fresh, requests, s.ingest_clients))
                if extra == 0 and "Q1" in self.only:
                    self.q1(fresh)
            finally:
                fresh.stop()
                shutil.rmtree(root, ignore_errors=True)
        del requests
        if "L1" in self.only:
            self.put("L1_points_per_s", round(statistics.median(rates)))

    def q1(self, system: System) -> None:
        """Q1 on ``system``, filled by L1: the hourly mean of every series folded together
        (one line), then per series (``GROUP BY time(1h), "s"``)."""
        s = self.sizes
        end = START_MS + min(Q1_DAYS * DAY_MS, s.points * MINUTE_MS)
        where = f"time >= {START_MS}ms AND time < {end}ms"
        hours = (end - START_MS) // (DAY_MS // 24)
        for name, by, lines in (("all_series", "", 1), ("by_series", ', "s"', len(self.data))):
            read = system.influxql(
                f'SELECT mean("v") FROM "m" WHERE {where} GROUP BY time(1h){by} fill(null)'
            )
            if read is None:
                self.put(f"Q1_group_by_1h_{name}_ms", NOT_SUPPORTED)
                continue
            check_q1(read(), lines, hours)
            self.put(f"Q1_group_by_1h_{name}_ms", median_ms(read, s.multi_reads))

    def s4(self) -> None:
        """S4 on an instance of its own (see ``S4``); the main one is stopped first."""
        self.system.stop()
        system = self.system.fresh()
        root = self.root / "s4"
        system.start(root)
        try:
            S4(system, self.sizes, self.put).run()
        finally:
            system.stop()
            shutil.rmtree(root, ignore_errors=True)


class S4:
    """Many series: ``s4_probe`` series of a group (one tag), two rounds of points to each,
    and the figures at that size (``_1k_series``); then ``s4_series`` in all, created by multi
    writes of 10,000 points (one per series, timed), a second round of points to them
    (timed), and the figures again (``_1m_series``).  The figures: the p50 of a W8-style write
    (10 series at random among those stored, one point each), of a raw read of one series at
    random and of the lookup of the group's series by tag, one request at a time; the
    server's resident set (now, and the peak of S4: tempodb's process only, on PostgreSQL
    without the database's own processes)."""

    def __init__(self, system: System, sizes: Sizes, put: Callable[[str, object], None]) -> None:
        self.system, self.sizes, self.put = system, sizes, put
        self.total = sizes.s4_series
        self.probe = min(sizes.s4_probe, self.total)
        self.rng = np.random.default_rng(15)
        self.small_writes = 0

    def key(self, index: int) -> str:
        return f"s4-{index}"

    def group(self, index: int) -> str:
        return "probe" if index < self.probe else ""

    def rounds(self, lo: int, hi: int, ts: int) -> list[Request]:
        """Multi writes of ``BULK`` points: one point at ``ts`` for each series ``lo:hi``."""
        requests = []
        for first in range(lo, hi, BULK):
            indices = range(first, min(first + BULK, hi))
            requests.append(
                self.system.points_many(
                    [self.key(i) for i in indices],
                    [self.group(i) for i in indices],
                    ts,
                    [float(i % 1000) for i in indices],
                )
            )
        return requests

    def run(self) -> None:
        s, system = self.sizes, self.system
        reset_peak(system.pid)
        probes = [self.key(i) for i in range(self.probe)]
        setup = system.group_series(probes, "probe")
        for ts in (START_MS, START_MS + MINUTE_MS):
            setup += self.rounds(0, self.probe, ts)
        for request in setup:
            system.conn.request(request)
        self.measure("1k", self.probe)
        say(f"  {system.name} S4: {self.total - self.probe:,} series more")
        for label, ts in (("create_series", START_MS), ("second_round", START_MS + MINUTE_MS)):
            requests = self.rounds(self.probe, self.total, ts)
            seconds = ingest(system, requests, s.ingest_clients) if requests else 0.0
            rate = round((self.total - self.probe) / seconds) if seconds else None
            self.put(f"S4_{label}_points_per_s", rate)
        self.measure("1m", self.total)
        self.put("S4_peak_rss_mb", round(peak_rss_mb(system.pid), 1))

    def measure(self, label: str, stored: int) -> None:
        s, system = self.sizes, self.system
        if isinstance(system, VictoriaMetrics):
            system.flush()
        writes = []
        for _ in range(s.s4_samples * 2 + 1):
            indices = self.rng.choice(stored, 10, replace=False).tolist()
            # After both rounds and every earlier small write, one second apart.
            ts = START_MS + DAY_MS + self.small_writes * 1000
            self.small_writes += 1
            request = system.small_write_to(
                [self.key(i) for i in indices],
                [self.group(i) for i in indices],
                ts,
                [float(self.small_writes % 997)] * 10,
            )
            writes.append(system.conn.encode(request))
        self.put(f"S4_small_write_p50_{label}_series_ms", p50_ms(system.conn.send, writes))
        reads = [system.raw(self.key(int(i)), START_MS, START_MS + 2 * DAY_MS)
                 for i in self.rng.integers(0, stored, s.s4_samples + 1)]  # fmt: skip
        self.put(f"S4_raw_read_p50_{label}_series_ms", p50_ms(lambda read: read(), reads))
        lookup = system.series_in_group("probe")
        lookups = [lookup] * (s.s4_samples // 4 + 1)
        self.put(f"S4_series_by_tag_p50_{label}_series_ms", p50_ms(lambda read: read(), lookups))
        self.put(f"S4_rss_{label}_series_mb", round(rss_mb(system.pid), 1))


def check_q1(answer: object, lines: int, rows: int) -> None:
    """Q1's answer holds ``lines`` series of ``rows`` rows each, every row a number."""
    assert isinstance(answer, bytes)
    result = json.loads(answer)["results"][0]
    found = result.get("series", [])
    shape = [(len(line["values"]), all(v[1] is not None for v in line["values"])) for line in found]
    if shape != [(rows, True)] * lines:
        text = f"Q1 answered {len(found)} series, not {lines} of {rows} rows: {result}"
        raise RuntimeError(text[:500])


def p50_ms(call: Callable[[T], object], arguments: Sequence[T]) -> float:
    """The median time of ``call(a)`` for each of ``arguments`` after the first (a warm-up),
    one at a time."""
    call(arguments[0])
    times = []
    for argument in arguments[1:]:
        began = time.perf_counter()
        call(argument)
        times.append((time.perf_counter() - began) * 1000)
    return round(statistics.median(times), 3)


def python_client_rate(system: TempoDB, sizes: Sizes) -> float:
    """Ingest through the Python client from DataPoint objects (one series, one connection)."""
    from tempodb import Client, DataPoint

    client = Client(system.client_key, system.client_secret, system.host, system.port, False)
    points = min(sizes.points, 200_000)
    series = make_series(0, points, key="python-client")
    stamps = [datetime.datetime.fromtimestamp(t / 1000, datetime.UTC) for t in series.ts.tolist()]
    values = series.values.tolist()
    began = time.perf_counter()
    for lo in range(0, points, sizes.batch):
        hi = min(lo + sizes.batch, points)
        client.write_key(series.key, [DataPoint(stamps[i], values[i]) for i in range(lo, hi)])
    return points / (time.perf_counter() - began)


def machine() -> dict[str, object]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        mem = int(Path("/proc/meminfo").read_text().split()[1]) / 1024**2
        os_name = next(
            line.split("=", 1)[1].strip('"')
            for line in Path("/etc/os-release").read_text().splitlines()
            if line.startswith("PRETTY_NAME=")
        )
    except (OSError, StopIteration):
        mem, os_name = 0.0, platform.platform()
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gib": round(mem, 1),
        "os": os_name,
        "python": platform.python_version(),
        "influxdb": _version("influxdb"),
        "victoriametrics": _version("victoria-metrics"),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%MZ"),
    }


def _version(package: str) -> str:
    """The installed version of a Debian package, or "not installed"."""
    done = subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True, check=False
    )
    return done.stdout.strip() if done.returncode == 0 and done.stdout else "not installed"


def make_systems(names: list[str]) -> tuple[list[System], list[Callable[[], None]]]:
    """The systems asked for, and what to call at the end to stop their helpers."""
    systems: list[System] = []
    cleanups: list[Callable[[], None]] = []
    for name in names:
        if name == "tempodb":
            systems.append(TempoDB())
        elif name in ("tempodb-postgres", "tempodb-citus"):
            system = _postgres_system(name)
            if system is not None:
                systems.append(system[0])
                cleanups.append(system[1])
        elif name == "influxdb":
            systems.append(InfluxDB())
        elif name == "victoriametrics":
            systems.append(VictoriaMetrics())
        else:
            raise SystemExit(f"unknown system {name!r}")
    return systems, cleanups


def _postgres_system(name: str) -> tuple[System, Callable[[], None]] | None:
    """tempodb on a throwaway PostgreSQL cluster (``tempodb-citus``: a Citus coordinator and
    two workers), and what stops it; None, said, when it cannot start."""
    try:
        from pg import CitusCluster, Cluster, ClusterError

        cluster = (CitusCluster if name == "tempodb-citus" else Cluster).start(fsync=True)
    except (ImportError, ClusterError) as exc:
        say(f"skipping {name}: {str(exc).splitlines()[0]}")
        return None
    create = (
        cluster.tempodb_database if isinstance(cluster, CitusCluster) else cluster.create_database
    )
    numbers = iter(range(1_000))
    return TempoDB(name, lambda: create(f"bench{next(numbers)}")), cluster.stop


def parse_only(text: str | None) -> frozenset[str]:
    """The workloads of ``--only`` (every one without it)."""
    if text is None:
        return frozenset(WORKLOADS)
    names = {name.strip().upper() for name in text.split(",") if name.strip()}
    unknown = sorted(names - set(WORKLOADS))
    if unknown or not names:
        raise SystemExit(
            f"--only: unknown workload(s) {', '.join(unknown) or '(none given)'}; "
            f"choose among {','.join(WORKLOADS)}"
        )
    return frozenset(names)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small data, about a minute")
    parser.add_argument(
        "--systems",
        help="default: tempodb,tempodb-postgres,tempodb-citus,influxdb,victoriametrics "
        "(without tempodb-citus with --quick: its cluster takes long to start)",
    )
    parser.add_argument(
        "--only",
        metavar="W1,S3,...",
        help=f"run only these workloads (and what they need set up), among {','.join(WORKLOADS)}",
    )
    parser.add_argument(
        "--s4-series",
        type=int,
        metavar="N",
        help="series stored at the end of S4 (default 1,000,000; 2,000 with --quick)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        help="where to write the results (default bench/results/latest.json, "
        "bench/results/only.json with --only)",
    )
    args = parser.parse_args()
    only = parse_only(args.only)
    output = args.output or HERE / "results" / ("latest.json" if args.only is None else "only.json")
    np.seterr(all="ignore")
    # SIGTERM unwinds like an error, so that every process started here is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sizes = QUICK if args.quick else FULL
    if args.s4_series is not None:
        if args.s4_series < 1:
            raise SystemExit("--s4-series must be at least 1")
        sizes = replace(sizes, s4_series=args.s4_series)
    say(f"workloads: {','.join(w for w in WORKLOADS if w in only)}")
    data: list[Series] = []
    if only & USE_DATA:
        say(f"data set: {sizes.series} series x {sizes.points} points, one per minute")
        data = [make_series(i, sizes.points) for i in range(sizes.series)]
    results: dict[str, Figures] = {}
    skipped: dict[str, str] = {}
    names = args.systems or ",".join(
        name
        for name in ("tempodb", "tempodb-postgres", "tempodb-citus", "influxdb", "victoriametrics")
        if not (args.quick and name == "tempodb-citus")
    )
    systems, cleanups = make_systems(names.split(","))
    try:
        with tempfile.TemporaryDirectory(prefix="tempodb-bench-", dir="/tmp") as folder:
            os.chmod(folder, 0o755)
            for system in systems:
                say(f"{system.name}: starting")
                mine = only & CITUS_WORKLOADS if system.name == "tempodb-citus" else only
                if not mine:
                    continue
                run = Run(system, sizes, data, Path(folder) / system.name, mine)
                try:
                    results[system.name] = run.run()
                    if run.failed:
                        skipped[system.name] = "failed: " + "; ".join(
                            f"{name}: {error}" for name, error in run.failed.items()
                        )
                except Unavailable as exc:
                    skipped[system.name] = str(exc)
                    say(f"skipping {system.name}: {exc}")
                except Exception:
                    traceback.print_exc()
                    results[system.name] = run.figures  # what was measured before it failed
                    skipped[system.name] = "failed: " + traceback.format_exc().splitlines()[-1]
                finally:
                    system.stop()
        if "P1" in only and any(isinstance(system, TempoDB) for system in systems):
            say("prometheus: the remote_read reference (P1)")
            try:
                from promproc import prometheus_binary

                root = Path(tempfile.mkdtemp(prefix="tempodb-bench-prometheus-", dir="/tmp"))
                results["prometheus"] = prom.prometheus_reference(
                    sizes.p1, root, prometheus_binary(), say
                )
            except Exception as exc:
                traceback.print_exc()
                skipped["prometheus"] = f"failed: {str(exc).splitlines()[0]}"
    finally:
        for cleanup in cleanups:
            cleanup()
    if only & {"W3", "W4", "W5", "W7"}:
        results["numpy_floor"] = numpy_floor(data, sizes.points, sizes.reads)
    for figures in results.values():
        for key in KEYS:
            figures.setdefault(key, None)
    document = {
        "machine": machine(),
        "mode": "quick" if args.quick else "full",
        "workloads": [w for w in WORKLOADS if w in only],
        "data": {
            "series": sizes.series,
            "points_per_series": sizes.points,
            "s3_series": sizes.tagged,
            "s4_series": sizes.s4_series,
            "s4_probe_series": min(sizes.s4_probe, sizes.s4_series),
        },
        "systems": results,
        "skipped": skipped,
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(document, indent=2) + "\n")
    print_table(document)
    say(f"written to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
