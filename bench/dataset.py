"""The benchmark's one data set, and its request bodies for each system.

Every series holds one point per minute from 2012-01-01T00:00Z.  Series come in four kinds,
by index modulo 4, so that the figures are not those of one lucky shape of data:

* 0, 1: a sensor: a daily cycle plus a random walk, with two decimals (``21.37``);
* 2: a counter: a running total of small integers, sent as JSON integers;
* 3: a measurement with full float precision (a random walk of doubles, no rounding).

Values depend only on the series index (fixed seeds), so every system gets the same points.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import orjson

START = datetime.datetime(2012, 1, 1, tzinfo=datetime.UTC)
START_MS = int(START.timestamp() * 1000)
MINUTE_MS = 60_000
DAY_MS = 86_400_000
MEASUREMENT = "m"

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Series:
    """The points of one series: int64 epoch ms and values (``integer``: all are ints)."""

    key: str
    ts: I64
    values: F64
    integer: bool

    def __len__(self) -> int:
        return int(self.ts.shape[0])


def series_key(index: int) -> str:
    return f"series-{index}"


def make_series(index: int, points: int, first: int = 0, key: str | None = None) -> Series:
    """Points ``first .. first + points - 1`` (minutes from the start) of series ``index``."""
    rng = np.random.default_rng(1000 + index)
    total = first + points
    kind = index % 4
    minutes = np.arange(total, dtype=np.int64)
    if kind in (0, 1):
        cycle = 8.0 * np.sin(2 * np.pi * minutes / 1440.0 + index)
        walk = np.cumsum(rng.normal(0.0, 0.05, total))
        values = np.round(20.0 + cycle + walk, 2)
    elif kind == 2:
        values = np.cumsum(rng.poisson(5.0, total)).astype(np.float64)
    else:
        values = 100.0 + np.cumsum(rng.normal(0.0, 0.5, total))
    ts = START_MS + minutes[first:] * MINUTE_MS
    return Series(key or series_key(index), ts, values[first:], kind == 2)


def value_texts(series: Series) -> list[str]:
    """Values as their shortest JSON text (integers without a fraction)."""
    if series.integer:
        return [str(v) for v in series.values.astype(np.int64).tolist()]
    return [repr(v) for v in series.values.tolist()]


def iso_texts(ts: I64) -> list[str]:
    """``YYYY-MM-DDTHH:MM:SS.mmmZ`` for epoch ms."""
    texts = np.datetime_as_string(ts.astype("datetime64[ms]"), unit="ms")
    return [t + "Z" for t in texts.tolist()]


def tempodb_points_body(series: Series, lo: int, hi: int) -> bytes:
    """``[{"t": ..., "v": ...}, ...]`` for points ``lo:hi`` (the body of a series write)."""
    times = iso_texts(series.ts[lo:hi])
    values = _values(series, lo, hi)
    items = ",".join(f'{{"t":"{t}","v":{v}}}' for t, v in zip(times, values, strict=True))
    return f"[{items}]".encode()


def _values(series: Series, lo: int, hi: int) -> list[str]:
    part = Series(series.key, series.ts[lo:hi], series.values[lo:hi], series.integer)
    return value_texts(part)


def line_protocol(series: Series, lo: int, hi: int, tags: str = "") -> bytes:
    """InfluxDB line protocol (ms precision) for points ``lo:hi``: measurement ``m``, tag
    ``s`` (the key, plus ``tags``), field ``v`` (always a float, so one field type)."""
    head = f"{MEASUREMENT},s={series.key}{tags} v="
    values = _values(series, lo, hi)
    times = series.ts[lo:hi].tolist()
    return "".join(f"{head}{v} {t}\n" for v, t in zip(values, times, strict=True)).encode()


def dump(payload: object) -> bytes:
    return orjson.dumps(payload)
