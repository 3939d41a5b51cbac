"""The floor: the same reads on numpy arrays already in memory (no storage, no HTTP, no JSON)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
from dataset import DAY_MS, MINUTE_MS, START_MS, Series

HOUR_MS = 3_600_000
I64 = npt.NDArray[np.int64]


def _ms(fn: Callable[[], object], rounds: int) -> float:
    fn()
    times = []
    for _ in range(rounds):
        began = time.perf_counter()
        fn()
        times.append((time.perf_counter() - began) * 1000)
    return round(statistics.median(times), 3)


def chicago_transitions(first: int, last: int) -> tuple[I64, I64]:
    """Instants where America/Chicago's offset changes in [first, last], and the offsets
    (one more than instants), found hour by hour (set-up, not timed)."""
    zone = ZoneInfo("America/Chicago")
    hours = np.arange(first - first % HOUR_MS, last + HOUR_MS, HOUR_MS)
    offsets = np.array(
        [
            datetime.fromtimestamp(h / 1000, UTC).astimezone(zone).utcoffset()
            // timedelta(milliseconds=1)
            for h in hours.tolist()
        ],
        np.int64,
    )
    change = np.flatnonzero(np.diff(offsets)) + 1
    return hours[change], np.concatenate((offsets[:1], offsets[change]))


def numpy_floor(data: list[Series], points: int, rounds: int) -> dict[str, object]:
    series = data[0]
    ts, values = series.ts, series.values
    end = START_MS + points * MINUTE_MS
    transitions, offsets = chicago_transitions(START_MS, end)

    def daily(t: I64, v: npt.NDArray[np.float64], function: str) -> object:
        local = t + offsets[np.searchsorted(transitions, t, side="right")]
        day = local // DAY_MS
        starts = np.flatnonzero(np.diff(day, prepend=day[:1] - 1))
        if function == "min":
            return np.minimum.reduceat(v, starts)
        if function == "max":
            return np.maximum.reduceat(v, starts)
        counts = np.diff(np.append(starts, v.size))
        means = np.add.reduceat(v, starts) / counts
        if function == "mean":
            return means
        deviation = v - np.repeat(means, counts)
        return np.sqrt(np.add.reduceat(deviation * deviation, starts) / np.maximum(counts - 1, 1))

    def hourly() -> object:
        hour = ts // HOUR_MS
        starts = np.flatnonzero(np.diff(hour, prepend=hour[:1] - 1))
        return np.add.reduceat(values, starts) / np.diff(np.append(starts, values.size))

    def summary() -> object:
        mean = values.mean()
        deviation = values - mean
        return (values.sum(), mean, values.max(), values.min(), float(deviation @ deviation))

    ten_days = START_MS + 10 * DAY_MS
    figures: dict[str, object] = {
        "W3_raw_10_days_ms": _ms(lambda: ts[ts < ten_days].copy(), rounds),
        "W4_hourly_mean_ms": _ms(hourly, rounds),
    }
    for function in ("min", "max", "mean", "stddev"):
        figures[f"W4_daily_{function}_chicago_ms"] = _ms(
            lambda f=function: daily(ts, values, f), rounds
        )
    figures["W4_summary_ms"] = _ms(summary, rounds)
    figures["W5_daily_mean_all_series_ms"] = _ms(
        lambda: [daily(s.ts, s.values, "mean") for s in data], max(3, rounds // 3)
    )
    figures["W7_bytes_per_point"] = 16.0
    return figures
