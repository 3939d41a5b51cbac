"""Micro-benchmark of the rollup engine and timestamp rendering (14,400 one-minute points)."""

from __future__ import annotations

import time
from collections.abc import Callable
from zoneinfo import ZoneInfo

import numpy as np

from tempodb.rollup import Interval, rollup, summarize
from tempodb.zones import Zone, get_zone

POINTS = 14_400
START_MS = 1_362_117_600_000  # 2013-03-01T06:00:00Z, ten days spanning the US spring change


def timed(label: str, func: Callable[[], object], repeat: int = 200) -> None:
    """Print the median wall time of ``func`` over ``repeat`` warm runs."""
    func()
    samples = []
    for _ in range(repeat):
        begin = time.perf_counter()
        func()
        samples.append(time.perf_counter() - begin)
    print(f"{label:<44} {np.median(samples) * 1e3:7.3f} ms")


def main() -> None:
    """Run the four measurements."""
    ts = START_MS + np.arange(POINTS, dtype=np.int64) * 60_000
    rng = np.random.default_rng(1)
    values = rng.normal(60.0, 5.0, POINTS)
    is_int = np.zeros(POINTS, dtype=np.bool_)
    utc, chicago = get_zone("UTC"), get_zone("America/Chicago")
    timed(
        "hourly mean, UTC",
        lambda: rollup(
            ts,
            values,
            is_int,
            interval=Interval(1, "hour"),
            function="mean",
            zone=utc,
            start_ms=START_MS,
        ),
    )
    timed(
        "daily mean, America/Chicago",
        lambda: rollup(
            ts,
            values,
            is_int,
            interval=Interval(1, "day"),
            function="mean",
            zone=chicago,
            start_ms=START_MS,
        ),
    )
    timed(
        "hourly stddev, America/Chicago",
        lambda: rollup(
            ts,
            values,
            is_int,
            interval=Interval(1, "hour"),
            function="stddev",
            zone=chicago,
            start_ms=START_MS,
        ),
    )
    timed("summary", lambda: summarize(values, is_int))
    timed("render 14,400 timestamps, America/Chicago", lambda: chicago.format(ts))
    timed("render 14,400 timestamps, UTC", lambda: utc.format(ts))
    begin = time.perf_counter()
    fresh = Zone("Europe/Paris", zoneinfo=ZoneInfo("Europe/Paris"))
    rollup(
        ts,
        values,
        is_int,
        interval=Interval(1, "day"),
        function="mean",
        zone=fresh,
        start_ms=START_MS,
    )
    print(
        f"{'daily mean, cold zone (probes one year)':<44} "
        f"{(time.perf_counter() - begin) * 1e3:7.3f} ms"
    )


if __name__ == "__main__":
    main()
