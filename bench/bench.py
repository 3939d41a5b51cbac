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
    S1  ingest into 1k and 100k series                           S1_*_points_per_s
    S2  automatic rollup over 1 month, 1 year, 10 years of minute data, and the raw 10 years
    S3  series by tag among 100k series                          S3_*

``--quick`` runs everything on small data in about a minute (``make test`` does, without
looking at the timings); peers that are not installed are skipped with the reason.  Results:
a table on stdout and ``bench/results/latest.json``.

    python bench/bench.py [--quick] [--systems tempodb,influxdb,...] [--output FILE]
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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT / "src"), str(ROOT / "tests")]

import numpy as np  # noqa: E402
from dataset import DAY_MS, MINUTE_MS, START_MS, Series, make_series  # noqa: E402
from floor import numpy_floor  # noqa: E402
from httpc import Request, requests_per_second, send_all  # noqa: E402
from procs import peak_rss_mb, reset_peak  # noqa: E402
from report import KEYS, print_table  # noqa: E402
from systems import InfluxDB, System, TempoDB, Unavailable, VictoriaMetrics  # noqa: E402

NOT_SUPPORTED = "not supported"
Figures = dict[str, object]


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
    ingest_clients: int = 2


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


class Run:
    """The workloads against one system."""

    def __init__(self, system: System, sizes: Sizes, data: list[Series], root: Path) -> None:
        self.system, self.sizes, self.data, self.root = system, sizes, data, root
        self.figures: Figures = {}

    def put(self, key: str, value: object) -> None:
        self.figures[key] = value
        say(f"  {self.system.name} {key} = {value}")

    def run(self) -> Figures:
        s, system = self.sizes, self.system
        end = START_MS + s.points * MINUTE_MS
        ten_days = START_MS + 10 * DAY_MS
        keys = [series.key for series in self.data]
        requests = [
            system.write(series, lo, min(lo + s.batch, s.points))
            for series in self.data
            for lo in range(0, s.points, s.batch)
        ]
        # W1: the first round fills the instance the other workloads use.
        system.start(self.root / "main")
        rates = [len(self.data) * s.points / ingest(system, requests, s.ingest_clients)]
        self.put("W1_peak_rss_mb", round(peak_rss_mb(system.pid), 1))
        for extra in range(1, s.ingest_rounds):
            fresh = type(system)() if not isinstance(system, TempoDB) else system.fresh()
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
        # W7 right after the ingest.
        self.put("W7_bytes_per_point", round(system.disk_bytes() / (len(self.data) * s.points), 2))
        self.w2(keys)
        if isinstance(system, VictoriaMetrics):
            system.flush()
        key = keys[0]
        self.put("W3_raw_10_days_ms", median_ms(system.raw(key, START_MS, ten_days), s.reads))
        self.put("W4_hourly_mean_ms", median_ms(system.hourly_mean(key, START_MS, end), s.reads))
        for function in ("min", "max", "mean", "stddev"):
            read = system.daily(key, START_MS, end, function)
            self.put(f"W4_daily_{function}_chicago_ms", median_ms(read, s.reads))
        self.put("W4_summary_ms", median_ms(system.summary(key, START_MS, end), s.reads))
        read = system.multi_daily_mean(keys, START_MS, end)
        self.put("W5_daily_mean_all_series_ms", median_ms(read, s.multi_reads))
        self.w6(keys)
        self.w8()
        self.scaling()
        return self.figures

    def w2(self, keys: list[str]) -> None:
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
        system = self.system
        conn = system.connection()
        base = START_MS + 400 * DAY_MS
        wires = [
            [conn.encode(system.small_write(c, i, base + i * 1000)) for i in range(20_000)]
            for c in range(8)
        ]
        rate = requests_per_second(system.host, system.port, wires, self.sizes.small_seconds)
        self.put("W8_requests_per_s", round(rate))

    def scaling(self) -> None:
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
        self.long_series()
        self.tags()

    def long_series(self) -> None:
        s, system = self.sizes, self.system
        long = make_series(1, s.long_points, key="long-0")
        requests = [system.write(long, lo, min(lo + s.batch, len(long)))
                    for lo in range(0, len(long), s.batch)]  # fmt: skip
        ingest(system, requests, s.ingest_clients)
        if isinstance(system, VictoriaMetrics):
            system.flush()
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

    def tags(self) -> None:
        s, system = self.sizes, self.system
        keys = [f"tagged-{i}" for i in range(s.tagged)]
        tags = [f"rack-{i % 100}" for i in range(s.tagged)]
        requests = system.tagged_series(keys, tags, START_MS)
        conn = system.connection()
        clients = 16 if len(requests) > 100 else 1
        wires = [[conn.encode(r) for r in requests[k::clients]] for k in range(clients)]
        seconds = send_all(system.host, system.port, wires)
        self.put("S3_create_series_per_s", round(s.tagged / seconds))
        if isinstance(system, VictoriaMetrics):
            system.flush()
        self.put("S3_series_by_tag_ms", median_ms(system.series_by_tag("rack-7"), s.reads))


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
        elif name == "tempodb-postgres":
            try:
                from pg import Cluster, ClusterError

                cluster = Cluster.start(fsync=True)
            except (ImportError, ClusterError) as exc:
                say(f"skipping tempodb-postgres: {str(exc).splitlines()[0]}")
                continue
            cleanups.append(cluster.stop)
            counter = iter(range(1_000))
            systems.append(
                TempoDB(
                    "tempodb-postgres",
                    lambda c=cluster, n=counter: c.create_database(f"bench{next(n)}"),
                )
            )
        elif name == "influxdb":
            systems.append(InfluxDB())
        elif name == "victoriametrics":
            systems.append(VictoriaMetrics())
        else:
            raise SystemExit(f"unknown system {name!r}")
    return systems, cleanups


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small data, about a minute")
    parser.add_argument("--systems", default="tempodb,tempodb-postgres,influxdb,victoriametrics")
    parser.add_argument("--output", type=Path, default=HERE / "results" / "latest.json")
    args = parser.parse_args()
    np.seterr(all="ignore")
    # SIGTERM unwinds like an error, so that every process started here is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sizes = QUICK if args.quick else FULL
    say(f"data set: {sizes.series} series x {sizes.points} points, one per minute")
    data = [make_series(i, sizes.points) for i in range(sizes.series)]
    results: dict[str, Figures] = {}
    skipped: dict[str, str] = {}
    systems, cleanups = make_systems(args.systems.split(","))
    try:
        with tempfile.TemporaryDirectory(prefix="tempodb-bench-", dir="/tmp") as folder:
            os.chmod(folder, 0o755)
            for system in systems:
                say(f"{system.name}: starting")
                try:
                    run = Run(system, sizes, data, Path(folder) / system.name)
                    results[system.name] = run.run()
                except Unavailable as exc:
                    skipped[system.name] = str(exc)
                    say(f"skipping {system.name}: {exc}")
                except Exception:
                    traceback.print_exc()
                    results[system.name] = run.figures  # what was measured before it failed
                    skipped[system.name] = "failed: " + traceback.format_exc().splitlines()[-1]
                finally:
                    system.stop()
    finally:
        for cleanup in cleanups:
            cleanup()
    results["numpy_floor"] = numpy_floor(data, sizes.points, sizes.reads)
    for figures in results.values():
        for key in KEYS:
            figures.setdefault(key, None)
    document = {
        "machine": machine(),
        "mode": "quick" if args.quick else "full",
        "data": {"series": sizes.series, "points_per_series": sizes.points},
        "systems": results,
        "skipped": skipped,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(document, indent=2) + "\n")
    print_table(document)
    say(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
