"""E1 of `make bench`: ``tempodb.connect`` (in-process) against the same calls over HTTP.

The same client calls, once through ``tempodb.connect(folder)`` and once through ``Client``
to a ``tempodb serve`` process on loopback, each on a fresh data folder with the same
durability (the embedded store, ``synchronous=FULL``: a call returns when its points are on
disk).  Issue 19 asks for the in-process figures to be at least twice the HTTP ones.

    E1_write_dataframe    write_dataframe of ``--points`` points (10 series)     points/s
    E1_read_dataframe     read_dataframe of one series' ``--points``/10 points   points/s
    E1_one_point_writes   ``--calls`` sequential write_key of one point          calls/s
    E1_hourly_rollups     ``--calls`` read_key of one day, hourly mean           calls/s

    python bench/embedded.py [--points 10000000] [--calls 10000] [--quick] [--output FILE]
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import tempodb
from tempodb import Client

SERIES = 10
START = datetime.datetime(2012, 1, 1, tzinfo=datetime.UTC)
SERVING = re.compile(r"serving (https?)://([^:/]+):(\d+)/")


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "tempodb.cli", *args]


def _frame(points: int) -> pd.DataFrame:
    rows = points // SERIES
    index = pd.date_range(START, periods=rows, freq="s")
    rng = np.random.default_rng(19)
    return pd.DataFrame(
        {f"e1.{n}": rng.normal(20, 5, rows).round(3) for n in range(SERIES)}, index=index
    )


def _timed(run: Callable[[], object]) -> float:
    began = time.perf_counter()
    run()
    return time.perf_counter() - began


def workloads(client: Client, frame: pd.DataFrame, calls: int) -> dict[str, float]:
    """The four E1 figures for one client."""
    figures: dict[str, float] = {}
    points = frame.size
    figures["E1_write_dataframe_points_per_s"] = points / _timed(
        lambda: client.write_dataframe(frame, chunk_size=100_000)
    )
    end = frame.index[-1] + pd.Timedelta("1s")
    read: list[pd.DataFrame] = []
    seconds = _timed(
        lambda: read.append(client.read_dataframe(START, end, interval="raw", keys=["e1.0"]))
    )
    assert len(read[0]) == len(frame), (len(read[0]), len(frame))
    figures["E1_read_dataframe_points_per_s"] = len(frame) / seconds

    def one_point_writes() -> None:
        for i in range(calls):
            client.write_key("e1.single", [(START + datetime.timedelta(seconds=i), i)])

    figures["E1_one_point_writes_per_s"] = calls / _timed(one_point_writes)
    day = datetime.timedelta(days=1)
    days = max(1, (frame.index[-1] - frame.index[0]).days)

    def rollups() -> None:
        for i in range(calls):
            first = START + (i % days) * day
            client.read_key("e1.0", first, first + day, interval="1hour", function="mean")

    figures["E1_hourly_rollups_per_s"] = calls / _timed(rollups)
    return figures


def over_http(folder: Path, frame: pd.DataFrame, calls: int) -> dict[str, float]:
    created = subprocess.run(
        _command("keys", "create", "--data", str(folder), "--json"),
        check=True,
        capture_output=True,
        text=True,
    )
    key, secret = json.loads(created.stdout).values()
    server = subprocess.Popen(
        _command("serve", "--data", str(folder), "--port", "0"), stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        found = SERVING.search(server.stdout.readline())
        if found is None:
            raise RuntimeError("tempodb serve did not start")
        host, port = found.group(2), int(found.group(3))
        with Client(key, secret, host=host, port=port, secure=False) as client:
            for _ in range(100):  # until it answers
                try:
                    client.get_series()
                    break
                except tempodb.TempoDBConnectionError:
                    time.sleep(0.1)
            return workloads(client, frame, calls)
    finally:
        server.terminate()
        server.wait(timeout=60)
        if server.stdout is not None:
            server.stdout.close()


def in_process(folder: Path, frame: pd.DataFrame, calls: int) -> dict[str, float]:
    with tempodb.connect(folder) as client:
        return workloads(client, frame, calls)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=10_000_000)
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--quick", action="store_true", help="100k points, 500 calls")
    parser.add_argument("--output", type=Path, default=Path("bench/results/embedded.json"))
    args = parser.parse_args(argv)
    points, calls = (100_000, 500) if args.quick else (args.points, args.calls)
    frame = _frame(points)
    results: dict[str, Any] = {"points": frame.size, "calls": calls}
    with tempfile.TemporaryDirectory(prefix="tempodb-e1-") as scratch:
        results["http"] = over_http(Path(scratch) / "http", frame, calls)
        results["in_process"] = in_process(Path(scratch) / "embedded", frame, calls)
    print(f"{'E1 (higher is better)':36} {'HTTP':>14} {'in-process':>14} {'ratio':>7}")
    for name, there in results["http"].items():
        here = results["in_process"][name]
        print(f"{name:36} {there:14,.0f} {here:14,.0f} {here / there:7.2f}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
