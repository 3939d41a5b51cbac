"""Rollups: the interval grammar, calendar buckets in a time zone, fold functions, the summary.

Buckets (spec 5.2, decided). Buckets follow the wall clock of the zone. M is the local midnight
opening the local day of ``start`` (minute, hour, day and week intervals), the 1st of that month
(month) or 1 January of that year (year). A boundary is every instant at which the wall clock shows
M + k * interval; for day, week, month and year intervals it is the first instant of the local date
M + k * interval (whether its midnight is skipped or repeated; a date that does not exist gives no
boundary). A point belongs to the last boundary at or before it, which is also the bucket's label.

How labels are computed, without a Python loop per point:

* Minute and hour intervals (a fixed wall-clock step). Within one offset segment of the zone the
  wall clock is ``t + offset``, so the candidate label of a point is
  ``M + floor((wall - M) / step) * step - offset``. If the candidate falls before the start of
  the point's segment, the wall value was not shown in that segment (it was skipped or belongs to
  an earlier pass of a repeated hour) and the label is the last boundary of the earlier segments,
  precomputed per segment with a running maximum.
* Day, week, month and year intervals. The candidate dates M + k * interval over the span of the
  points are enumerated (one per bucket, vectorised), each date's first instant is found with
  :meth:`OffsetTable.first_instant`, dates that never occur are dropped, and the points are
  assigned with ``np.searchsorted``.

Points more than about a year apart are labelled as separate runs, so sparse data never
enumerates boundaries, or probes zone offsets, for the empty years between them. Labels never
decrease with time, so buckets are runs of equal labels folded with ``reduceat``.

A rollup does not label every point when a run has fewer candidate boundaries than points (an
hourly or daily rollup of minute data): :func:`bucket_starts` enumerates the boundaries
themselves (for minute and hour intervals, within each offset segment of the zone, the
instants ``M + k * step - offset`` that fall in the segment; for calendar intervals, the first
instants of the dates above) and finds where each bucket begins with one ``np.searchsorted`` of
the boundaries into the points. A point's label is the last boundary at or before it either
way, so both paths give the same buckets (a test checks it across the zones' transitions). Standard
deviation and ss are two-pass (bucket means first, then the centred squares); integer sums are
accumulated exactly in int64 (or Python ints when int64 could overflow).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import numpy.typing as npt

from tempodb.folds import finite_mean, fold_groups, parse_fold
from tempodb.zones import MS_PER_DAY, OffsetTable, Zone, excerpt, sparse_runs

__all__ = [
    "FUNCTION_NAMES",
    "Folded",
    "Interval",
    "SummaryParts",
    "Unit",
    "auto_interval",
    "boundaries",
    "bucket_labels",
    "bucket_starts",
    "next_boundaries",
    "parse_function",
    "parse_interval",
    "rollup",
    "rollup_folds",
    "summarize",
]

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
Bool = npt.NDArray[np.bool_]

Unit = Literal["minute", "hour", "day", "week", "month", "year"]

FUNCTION_NAMES = ("sum", "max", "min", "avg", "mean", "stddev", "count", "ss")

_MS_PER_MINUTE = 60_000
_MS_PER_HOUR = 3_600_000
_MAX_EXACT = 2**53

# Upper bounds keep every interval within about 10,000 years (and int64 arithmetic exact).
_MAX_COUNT: dict[str, int] = {
    "minute": 5_300_000_000,
    "hour": 88_000_000,
    "day": 3_660_000,
    "week": 523_000,
    "month": 120_000,
    "year": 10_000,
}
_UNIT_WORDS: dict[str, Unit] = {
    "min": "minute",
    "mins": "minute",
    "minute": "minute",
    "minutes": "minute",
    "hour": "hour",
    "hours": "hour",
    "day": "day",
    "days": "day",
    "week": "week",
    "weeks": "week",
    "month": "month",
    "months": "month",
    "year": "year",
    "years": "year",
}
_COUNT_UNIT_RE = re.compile(r"([0-9]{1,12})([a-z]+)")
_ISO_RE = re.compile(
    r"p(?:([0-9]{1,12})y)?(?:([0-9]{1,12})m)?(?:([0-9]{1,12})w)?(?:([0-9]{1,12})d)?"
    r"(?:t(?:([0-9]{1,12})h)?(?:([0-9]{1,12})m)?(?:([0-9]{1,12})s)?)?"
)
_ISO_SUFFIX: dict[str, tuple[str, str]] = {
    "minute": ("PT", "M"),
    "hour": ("PT", "H"),
    "day": ("P", "D"),
    "week": ("P", "W"),
    "month": ("P", "M"),
    "year": ("P", "Y"),
}


@dataclass(frozen=True)
class Interval:
    """A rollup interval: ``count`` wall-clock ``unit``\\ s."""

    count: int
    unit: Unit

    def __post_init__(self) -> None:
        if self.unit not in get_args(Unit):
            raise ValueError(f"Invalid interval unit: {self.unit}")
        if not 1 <= self.count <= _MAX_COUNT[self.unit]:
            raise ValueError(f"Invalid interval: {self.count} {self.unit}")

    @property
    def iso(self) -> str:
        """The ISO-8601 period in Joda style: PT5M, PT1H, P1D, P1W, P3M, P1Y."""
        prefix, suffix = _ISO_SUFFIX[self.unit]
        return f"{prefix}{self.count}{suffix}"

    @property
    def step_ms(self) -> int | None:
        """Wall-clock length in ms of minute and hour intervals; None for calendar units."""
        if self.unit == "minute":
            return self.count * _MS_PER_MINUTE
        if self.unit == "hour":
            return self.count * _MS_PER_HOUR
        return None


def parse_interval(text: str) -> Interval | None:
    """Parse an ``interval`` parameter (spec 5.2); None means raw data.

    Accepts, case-insensitively and without spaces: ``raw``; a count and a unit (``min``,
    ``mins``, ``minute(s)``, ``hour(s)``, ``day(s)``, ``week(s)``, ``month(s)``, ``year(s)``),
    e.g. ``5min``, ``1hour``, ``2days``; an ISO-8601 period such as ``PT5M``, ``PT6H``, ``P1D``,
    ``P1W``, ``P1M``, ``P1Y``. ISO periods with several fields are reduced to one unit when that
    keeps the meaning: years and months to months (``P1Y6M`` = 18 months), weeks and days to days
    (``P1W2D`` = 9 days), and periods of days, hours, minutes and seconds with a time part to
    hours or minutes (``P1DT2H`` = 26 hours, ``PT1H30M`` = 90 minutes, ``PT120S`` = 2 minutes).
    Mixing years/months with other fields, seconds that are not whole minutes, zero periods and
    counts beyond about 10,000 years are rejected.

    Raises:
        ValueError: ``Invalid interval: <text>``.
    """
    lowered = text.lower()
    if lowered == "raw":
        return None
    try:
        match = _COUNT_UNIT_RE.fullmatch(lowered)
        if match is not None:
            unit = _UNIT_WORDS.get(match.group(2))
            if unit is not None:
                return Interval(int(match.group(1)), unit)
        else:
            iso = _ISO_RE.fullmatch(lowered)
            if iso is not None and not lowered.endswith("t") and lowered != "p":
                return _reduce_iso([int(g) if g is not None else None for g in iso.groups()])
    except _PeriodError as exc:
        raise ValueError(f"Invalid interval: {excerpt(text)} ({exc})") from None
    except ValueError:
        pass
    raise ValueError(f"Invalid interval: {excerpt(text)}")


class _PeriodError(ValueError):
    """Why an ISO period that parses cannot be an interval (said in the error)."""


def _reduce_iso(fields: list[int | None]) -> Interval:
    """Reduce the fields (Y, M, W, D, H, M, S) of an ISO period to one unit; fields of 0
    count only when all are 0 (``P1DT0H`` is one day, ``PT0S`` no period)."""
    present = [i for i, f in enumerate(fields) if f]
    if not present:
        raise _PeriodError("a period of zero length")
    years, months, weeks, days, hours, minutes, seconds = (f or 0 for f in fields)
    if len(present) == 1 and present[0] != 6:
        single: tuple[Unit, ...] = ("year", "month", "week", "day", "hour", "minute")
        return Interval(fields[present[0]] or 0, single[present[0]])
    if present[0] <= 1:
        if present[-1] > 1:
            raise _PeriodError("months or years cannot be mixed with other fields")
        return Interval(years * 12 + months, "month")
    if present[-1] <= 3:
        return Interval(weeks * 7 + days, "day")
    total = (((weeks * 7 + days) * 24 + hours) * 60 + minutes) * 60 + seconds
    if total % 60:
        raise _PeriodError("the shortest interval is one minute: seconds must make whole minutes")
    if total % 3600 == 0:
        return Interval(total // 3600, "hour")
    return Interval(total // 60, "minute")


def parse_function(name: str) -> str:
    """Validate a ``function`` parameter (case-insensitive); returns it lower-cased.

    Raises:
        ValueError: ``Invalid function: <name>``.
    """
    lowered = name.lower()
    if lowered not in FUNCTION_NAMES:
        raise ValueError(f"Invalid function: {excerpt(name)}")
    return lowered


def auto_interval(start_ms: int, end_ms: int) -> Interval | None:
    """The automatic interval for a range: raw up to 2 days, hourly up to 30 days, else daily."""
    span = end_ms - start_ms
    if span <= 2 * MS_PER_DAY:
        return None
    if span <= 30 * MS_PER_DAY:
        return Interval(1, "hour")
    return Interval(1, "day")


@dataclass(frozen=True, eq=False)
class Folded:
    """Rolled-up points: bucket labels (UTC epoch ms, ascending), values, and which are ints."""

    ts: I64
    values: F64
    is_int: Bool


def bucket_labels(ts: npt.ArrayLike, *, interval: Interval, zone: Zone, start_ms: int) -> I64:
    """The bucket label (its first boundary, UTC epoch ms) of each instant in ``ts``.

    ``ts`` must be ascending; ``start_ms`` fixes the alignment origin M (spec 5.2).
    """
    instants = np.asarray(ts, dtype=np.int64)
    if instants.size == 0:
        return np.zeros(0, dtype=np.int64)
    start_wall = start_ms + zone.offset_at(start_ms)
    step = interval.step_ms
    runs = sparse_runs(instants)
    labels = [
        _wall_step_labels(instants[lo:hi], step, zone, start_wall)
        if step is not None
        else _calendar_labels(instants[lo:hi], interval, zone, start_wall)
        for lo, hi in runs
    ]
    return labels[0] if len(labels) == 1 else np.concatenate(labels)


def _wall_step_labels(ts: I64, step: int, zone: Zone, start_wall: int) -> I64:
    """Labels for minute/hour intervals: boundaries where the wall clock shows M + k * step."""
    last = int(ts[-1])
    lo = int(ts[0]) - 3 * MS_PER_DAY
    midnight = start_wall // MS_PER_DAY * MS_PER_DAY
    while True:
        table = zone.table(lo, last)
        seg = table.segment_of(ts)
        offsets = table.offsets[seg]
        labels: I64 = midnight + (ts + offsets - midnight) // step * step - offsets
        if not table.fixed:
            late = labels < table.starts[seg]
            if late.any():
                # The last boundary of each segment (if it has one), carried forward.
                kmax = (table.ends + table.offsets - 1 - midnight) // step
                candidate = midnight + kmax * step - table.offsets
                own = np.where(candidate >= table.starts, candidate, np.iinfo(np.int64).min)
                carried = np.maximum.accumulate(own)
                labels = np.where(late, carried[np.maximum(seg - 1, 0)], labels)
        first = int(labels[0])
        if first >= table.valid_from:
            return labels
        lo = first - 3 * MS_PER_DAY


def _calendar_labels(ts: I64, interval: Interval, zone: Zone, start_wall: int) -> I64:
    """Labels for day/week/month/year intervals: first instants of local dates M + k * interval."""
    boundaries = _calendar_boundaries(ts, interval, zone, start_wall)
    if boundaries is None:
        raise RuntimeError("no calendar boundary found before the first point")
    result: I64 = boundaries[np.searchsorted(boundaries, ts, side="right") - 1]
    return result


def _calendar_boundaries(ts: I64, interval: Interval, zone: Zone, start_wall: int) -> I64 | None:
    """The first instants of the local dates M + k * interval from the last one at or before
    the first point to the first one after the last point (ascending); None if none is found
    at or before the first point."""
    first_ts, last_ts = int(ts[0]), int(ts[-1])
    # Wall clocks can step back (by at most a day), so the dates to consider reach two days
    # beyond the first and last points' (dates beyond the points give empty buckets).
    wall_lo = first_ts + zone.offset_at(first_ts) - 2 * MS_PER_DAY
    wall_hi = last_ts + zone.offset_at(last_ts) + 2 * MS_PER_DAY
    by_month = interval.unit in ("month", "year")
    if by_month:
        origin = _month_index(start_wall)
        if interval.unit == "year":
            origin -= origin % 12
        width = interval.count * (12 if interval.unit == "year" else 1)
        k_lo = (_month_index(wall_lo) - origin) // width
        k_hi = (_month_index(wall_hi) - origin) // width + 2
    else:
        origin = start_wall // MS_PER_DAY
        width = interval.count * (7 if interval.unit == "week" else 1)
        k_lo = (wall_lo // MS_PER_DAY - origin) // width
        k_hi = (wall_hi // MS_PER_DAY - origin) // width + 2
    for _ in range(64):
        index = origin + np.arange(k_lo, k_hi + 1, dtype=np.int64) * width
        if by_month:
            day_walls = index.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)
        else:
            day_walls = index
        date_walls: I64 = day_walls * MS_PER_DAY
        table = zone.table(int(date_walls[0]) - 2 * MS_PER_DAY, last_ts + 2 * MS_PER_DAY)
        instants, shown = table.first_instant(date_walls)
        boundaries: I64 = instants[shown < date_walls + MS_PER_DAY]
        if boundaries.size and int(boundaries[0]) <= first_ts:
            return boundaries
        k_lo -= max(1, k_hi - k_lo)
    return None


def _month_index(wall_ms: int) -> int:
    """Months since 1970-01 of a wall-clock value."""
    return int(np.datetime64(wall_ms, "ms").astype("datetime64[M]").astype(np.int64))


def bucket_starts(
    ts: npt.ArrayLike, *, interval: Interval, zone: Zone, start_ms: int
) -> tuple[I64, npt.NDArray[np.intp]]:
    """The non-empty buckets of ascending instants: their labels and the index in ``ts`` of
    each one's first point (what runs of equal :func:`bucket_labels` give).

    When a run of points has fewer candidate boundaries than points (an hourly or daily
    rollup of minute data), the boundaries are enumerated and found in ``ts`` with one
    ``np.searchsorted`` of the boundaries, not one per point; otherwise the points are
    labelled one by one as :func:`bucket_labels` does.
    """
    instants = np.asarray(ts, dtype=np.int64)
    if instants.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.intp)
    start_wall = start_ms + zone.offset_at(start_ms)
    step = interval.step_ms
    labels: list[I64] = []
    starts: list[npt.NDArray[np.intp]] = []
    for lo, hi in sparse_runs(instants):
        run = instants[lo:hi]
        if step is not None:
            found = _wall_step_bounds(run, step, zone, start_wall)
        else:
            found = _calendar_bounds(run, interval, zone, start_wall)
        if found is None:
            per_point = (
                _wall_step_labels(run, step, zone, start_wall)
                if step is not None
                else _calendar_labels(run, interval, zone, start_wall)
            )
            first = np.flatnonzero(np.diff(per_point)) + 1
            first = np.concatenate((np.zeros(1, np.intp), first))
            found = per_point[first], first
        labels.append(found[0])
        starts.append(found[1] + lo)
    if len(labels) == 1:
        return labels[0], starts[0]
    return np.concatenate(labels), np.concatenate(starts)


def _first_points(ts: I64, boundaries: I64) -> tuple[I64, npt.NDArray[np.intp]] | None:
    """The non-empty buckets that ascending ``boundaries`` open over ``ts``: their boundaries
    and the index of their first points; None when the first point precedes them all."""
    if boundaries.size == 0 or int(boundaries[0]) > int(ts[0]):
        return None
    firsts = np.searchsorted(ts, boundaries, side="left")
    ends = np.empty_like(firsts)
    ends[:-1] = firsts[1:]
    ends[-1] = ts.size
    filled = ends > firsts
    return boundaries[filled], firsts[filled]


def _wall_grid(table: OffsetTable, midnight: int, step: int, lo: int, hi: int) -> I64:
    """The instants in ``[lo, hi)`` where the wall clock shows ``midnight + k * step``, segment
    by segment of the zone's offsets (``table`` covers the range), ascending."""
    parts: list[I64] = []
    for begin, end, offset in zip(
        table.starts.tolist(), table.ends.tolist(), table.offsets.tolist(), strict=True
    ):
        begin, end = max(begin, lo), min(end, hi)
        if begin >= end:
            continue
        k_first = -((midnight - begin - offset) // step)  # ceil((begin + offset - M) / step)
        k_end = -((midnight - end - offset) // step)
        if k_end > k_first:
            parts.append(midnight - offset + step * np.arange(k_first, k_end, dtype=np.int64))
    return np.concatenate(parts) if parts else np.zeros(0, np.int64)


def _wall_step_bounds(
    ts: I64, step: int, zone: Zone, start_wall: int
) -> tuple[I64, npt.NDArray[np.intp]] | None:
    """:func:`bucket_starts` for minute and hour intervals: every instant where the wall
    clock shows M + k * step, segment by segment of the zone's offsets, from a little before
    the first point (further back until one precedes it) to the last; None when there would
    be more boundaries than points."""
    first, last = int(ts[0]), int(ts[-1])
    midnight = start_wall // MS_PER_DAY * MS_PER_DAY
    reach = step + 3 * MS_PER_DAY
    while True:
        lo = first - reach
        if (last - lo) // step > ts.size:
            return None
        table = zone.table(lo, last)
        found = _first_points(ts, _wall_grid(table, midnight, step, lo, last + 1))
        if found is not None and lo >= table.valid_from:
            return found
        reach *= 2


def _calendar_bounds(
    ts: I64, interval: Interval, zone: Zone, start_wall: int
) -> tuple[I64, npt.NDArray[np.intp]] | None:
    """:func:`bucket_starts` for day, week, month and year intervals (the boundaries of
    :func:`_calendar_labels`), searched in the points or, when there are more boundaries
    than points, the points in them."""
    boundaries = _calendar_boundaries(ts, interval, zone, start_wall)
    if boundaries is None:
        raise RuntimeError("no calendar boundary found before the first point")
    if boundaries.size <= ts.size:
        return _first_points(ts, boundaries)
    labels = boundaries[np.searchsorted(boundaries, ts, side="right") - 1]
    firsts = np.flatnonzero(np.concatenate(([True], labels[1:] != labels[:-1])))
    return labels[firsts], firsts


def rollup(
    ts: npt.ArrayLike,
    values: npt.ArrayLike,
    is_int: npt.ArrayLike,
    *,
    interval: Interval,
    function: str,
    zone: Zone,
    start_ms: int,
) -> Folded:
    """Fold raw points into the calendar buckets of ``interval`` in ``zone``.

    Args:
        ts: int64 epoch ms, ascending and unique, already restricted to ``[start, end)``.
        values: float64 values.
        is_int: whether each value was written as a JSON integer.
        interval: the bucket width.
        function: one of :data:`FUNCTION_NAMES` (``avg`` and ``mean`` are synonyms).
        zone: the zone whose wall clock places the boundaries.
        start_ms: the requested start; it fixes the alignment origin M.

    Returns:
        One point per non-empty bucket, labelled with the bucket's first boundary.
    """
    fold = parse_fold(parse_function(function))
    return rollup_folds(
        ts, values, is_int, interval=interval, folds=(fold,), zone=zone, start_ms=start_ms
    )[0]


def rollup_folds(
    ts: npt.ArrayLike,
    values: npt.ArrayLike,
    is_int: npt.ArrayLike,
    *,
    interval: Interval,
    folds: tuple[str, ...],
    zone: Zone,
    start_ms: int,
) -> list[Folded]:
    """:func:`rollup` with any folds of :mod:`tempodb.folds` (``parse_fold`` names), the
    buckets found once for all of them; one :class:`Folded` per fold."""
    instants = np.asarray(ts, dtype=np.int64)
    vals = np.asarray(values, dtype=np.float64)
    ints = np.asarray(is_int, dtype=np.bool_)
    if instants.size == 0:
        empty = Folded(np.zeros(0, np.int64), np.zeros(0, np.float64), np.zeros(0, np.bool_))
        return [empty for _ in folds]
    out_ts, starts = bucket_starts(instants, interval=interval, zone=zone, start_ms=start_ms)
    result = []
    for fold in folds:
        folded, folded_ints = fold_groups(vals, ints, starts, fold)
        result.append(Folded(out_ts, folded, folded_ints))
    return result


def boundaries(interval: Interval, zone: Zone, *, start_ms: int, lo: int, hi: int) -> I64:
    """The bucket boundaries (spec 5.2, aligned by ``start_ms``) in ``[lo, hi)``, ascending:
    the grid of interpolation and the interval ends of ``find``."""
    if hi <= lo:
        return np.zeros(0, np.int64)
    start_wall = start_ms + zone.offset_at(start_ms)
    step = interval.step_ms
    if step is None:
        found = _calendar_boundaries(np.array([lo, hi - 1], np.int64), interval, zone, start_wall)
        if found is None:
            return np.zeros(0, np.int64)
        return found[(found >= lo) & (found < hi)]
    midnight = start_wall // MS_PER_DAY * MS_PER_DAY
    return _wall_grid(zone.table(lo, hi), midnight, step, lo, hi)


#: The sum, minimum, maximum and centred sum of squares of a non-empty float64 array.
Moments = Callable[[F64], tuple[float, float, float, float]]


def numpy_moments(vals: F64) -> tuple[float, float, float, float]:
    """:data:`Moments` by numpy."""
    total = float(vals.sum())
    deviations = vals - total / vals.size
    return total, float(vals.min()), float(vals.max()), float(np.sum(deviations * deviations))


def _overflowed(vals: F64) -> tuple[float, float]:
    """The mean and centred sum of squares where the plain sum overflowed: the mean is
    ``finite_mean``, ss is inf when it is beyond float64 too."""
    mean = finite_mean(vals)
    with np.errstate(over="ignore", invalid="ignore"):
        deviations = vals - mean
        return mean, float(np.sum(deviations * deviations))


def summarize(
    values: npt.ArrayLike, is_int: npt.ArrayLike, moments: Moments = numpy_moments
) -> dict[str, int | float]:
    """The summary of raw points (spec 3.7): ``{}`` when empty, else, in this order,
    sum, mean, max, min, stddev (sample), ss (centred), count.

    sum, max and min are ints under the same rules as the rollup functions; count is an int.
    ``moments`` may be a faster function giving the same doubles.  A sum (or ss) beyond
    float64 is inf (it reads back as null); the mean of finite values is always finite.
    """
    vals = np.ascontiguousarray(values, dtype=np.float64)
    ints = np.asarray(is_int, dtype=np.bool_)
    count = int(vals.size)
    if count == 0:
        return {}
    with np.errstate(over="ignore", invalid="ignore"):
        total, low, high, ss = moments(vals)
    mean = total / count
    if not math.isfinite(total):
        mean, ss = _overflowed(vals)
    total_out: int | float = total
    all_int = bool(ints.all())
    mixed = not all_int and bool(ints.any())
    if all_int:
        if max(abs(high), abs(low)) * count < 2.0**62:
            exact = int(vals.astype(np.int64).sum())
        else:
            exact = sum(int(v) for v in vals.tolist())
        total_out = exact if abs(exact) <= _MAX_EXACT else float(exact)
    # An extreme is an int when some int point attains it: every one, or none, unless mixed.
    high_int = all_int or (mixed and bool((ints & (vals == high)).any()))
    low_int = all_int or (mixed and bool((ints & (vals == low)).any()))
    return {
        "sum": total_out,
        "mean": mean,
        "max": int(high) if high_int else high,
        "min": int(low) if low_int else low,
        "stddev": math.sqrt(ss / (count - 1)) if count > 1 else 0.0,
        "ss": ss,
        "count": count,
    }


class SummaryParts:
    """The summary of raw points given in consecutive parts (a streamed read), without
    keeping them: counts, exact integer sums, extremes, and the centred sum of squares
    combined part by part (Chan et al.).  ``result()`` has the shape of :func:`summarize`;
    float figures may differ from it in the last bits."""

    def __init__(self, moments: Moments = numpy_moments) -> None:
        self.moments = moments
        self.count = 0
        self.total = 0.0
        self.exact: int | None = 0  # the integer sum while every value is an integer
        self.mean = 0.0
        self.ss = 0.0
        self.high = self.low = 0.0
        self.high_int = self.low_int = False

    def add(self, values: F64, is_int: Bool) -> None:
        count = int(values.size)
        if not count:
            return
        vals = np.ascontiguousarray(values, dtype=np.float64)
        with np.errstate(over="ignore", invalid="ignore"):
            total, low, high, ss = self.moments(vals)
        mean = total / count
        if not math.isfinite(total):
            mean, ss = _overflowed(vals)
        high_int = bool((is_int & (values == high)).any())
        low_int = bool((is_int & (values == low)).any())
        if self.exact is not None and bool(is_int.all()):
            self.exact += (
                int(values.astype(np.int64).sum())
                if float(np.abs(values).max()) * count < 2.0**62
                else sum(int(v) for v in values.tolist())
            )
        else:
            self.exact = None
        if self.count == 0:
            self.high, self.low, self.high_int, self.low_int = high, low, high_int, low_int
            self.mean, self.ss = mean, ss
        else:
            both = self.count + count
            delta = mean - self.mean
            self.ss += ss + delta * delta * self.count * count / both
            step = self.mean + delta * count / both
            if not math.isfinite(step):  # delta overflowed: weighted, finite for finite means
                step = self.mean * (self.count / both) + mean * (count / both)
            self.mean = step
            if high > self.high or (high == self.high and high_int):
                self.high_int = high_int or (high == self.high and self.high_int)
                self.high = high
            if low < self.low or (low == self.low and low_int):
                self.low_int = low_int or (low == self.low and self.low_int)
                self.low = low
        self.count += count
        self.total += total

    def result(self) -> dict[str, int | float]:
        if not self.count:
            return {}
        total: int | float = self.total
        if self.exact is not None:
            total = self.exact if abs(self.exact) <= _MAX_EXACT else float(self.exact)
        return {
            "sum": total,
            "mean": self.total / self.count if math.isfinite(self.total) else self.mean,
            "max": int(self.high) if self.high_int else self.high,
            "min": int(self.low) if self.low_int else self.low,
            "stddev": math.sqrt(self.ss / (self.count - 1)) if self.count > 1 else 0.0,
            "ss": self.ss,
            "count": self.count,
        }


#: A generous bound on one interval unit's length, plus the widest jump of a wall clock.
_UNIT_REACH_MS: dict[str, int] = {
    "day": MS_PER_DAY,
    "week": 7 * MS_PER_DAY,
    "month": 31 * MS_PER_DAY,
    "year": 366 * MS_PER_DAY,
}


def next_boundaries(labels: I64, interval: Interval, zone: Zone, *, start_ms: int) -> I64:
    """For bucket labels (ascending boundaries), the boundary that follows each: where the
    bucket ends.  Labels more than about a year apart are taken run by run (as rollups take
    sparse points).  Minute and hour buckets that do not cross an offset change end ``step``
    later (found at once); the others look the boundary up among :func:`boundaries`."""
    if labels.size == 0:
        return np.zeros(0, np.int64)
    parts = [
        _next_boundaries(labels[lo:hi], interval, zone, start_ms) for lo, hi in sparse_runs(labels)
    ]
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _next_boundaries(labels: I64, interval: Interval, zone: Zone, start_ms: int) -> I64:
    step = interval.step_ms
    if step is not None:
        table = zone.table(int(labels[0]), int(labels[-1]) + step)
        ends: I64 = labels + step
        crossing = table.segment_of(labels) != table.segment_of(ends)
        reach = step + 3 * MS_PER_DAY
        for index in np.flatnonzero(crossing).tolist():  # only buckets across an offset change
            label = int(labels[index])
            found = boundaries(interval, zone, start_ms=start_ms, lo=label + 1, hi=label + reach)
            ends[index] = found[0]
        return ends
    reach = interval.count * _UNIT_REACH_MS[interval.unit] + 3 * MS_PER_DAY
    found = boundaries(
        interval, zone, start_ms=start_ms, lo=int(labels[0]) + 1, hi=int(labels[-1]) + reach
    )
    result: I64 = found[np.searchsorted(found, labels, side="right")]
    return result
