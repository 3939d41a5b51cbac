"""The 15-minute tier: mergeable summaries of a series' points, and rollups folded from them.

Before raw points expire (retention), each 15-minute bucket of UTC time ``[b, b + 15 min)``
(``b`` a multiple of ``TIER_MS``) of a series is stored as one summary:

============ ======================================================================
``count``    the number of points
``total``    their float64 sum; ``isum`` the exact integer sum when every value is
             an integer and the sum fits int64 (``SUM_EXACT``)
``low/high`` the extremes, each with whether an integer point attains it
``first``    the value of the earliest point (``first_ts``), ``last`` of the latest
``ss``       the centred sum of squares ``sum((v - mean) ** 2)``
============ ======================================================================

The combination rule (summaries of disjoint sets of points -> the summary of their union) is
exact in exact arithmetic: counts, sums and exact integer sums add; extremes are the extremes
of the extremes (an integer where an integer summary attains it); first and last are those
of the earliest and latest points; and, with ``N = sum(n_i)`` and ``M = sum(total_i) / N``,
``ss = sum(ss_i + n_i * (m_i - M) ** 2)`` where ``m_i = total_i / n_i`` (Chan et al.).  So a
rollup whose buckets are unions of whole tier buckets folds ``sum``, ``count``, ``min``,
``max``, ``mean``, ``stddev``, ``ss``, ``range``, ``first`` and ``last`` from the tier with the
numbers the raw points give (the floats may differ in the last bits: they are summed in
another order).  Every zone's UTC offset today is a multiple of 15 minutes, so the boundaries
of ``15min``, ``1hour``, ``1day``, ``1month`` ... rollups in any zone fall on tier boundaries;
:func:`unanswerable` checks it for the span of a read (historical local mean time, such as
America/Chicago before 1883, does not).

Storage keeps the tier as chunks: one per series and UTC day, the day's summaries packed by
:func:`pack` (little-endian columns, timestamps as differences, deflated; 96 summaries at
most).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, fields
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from tempodb.folds import group_starts
from tempodb.rollup import Folded, Interval, boundaries, bucket_starts
from tempodb.zones import MS_PER_DAY, Zone

__all__ = [
    "TIER_FOLDS",
    "TIER_MS",
    "Tier",
    "answer",
    "combine",
    "fold",
    "merge",
    "pack",
    "rollup",
    "summarize",
    "summary",
    "unanswerable",
    "unpack",
]

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
Bool = npt.NDArray[np.bool_]
Idx = npt.NDArray[np.intp]

#: The width of a tier bucket: 15 minutes.
TIER_MS: Final = 900_000
#: The folds the tier answers exactly (``avg`` is read as ``mean``).
TIER_FOLDS: Final = (
    "sum",
    "count",
    "min",
    "max",
    "mean",
    "stddev",
    "ss",
    "range",
    "first",
    "last",
)
#: What the tier offers, for error messages.
OFFER: Final = (
    "the 15-minute tier answers rollups whose interval is a whole number of 15-minute "
    "buckets in the requested zone (15min, 30min, 1hour, 1day, 1week, 1month, 1year ...) "
    f"with the functions {', '.join(TIER_FOLDS)} (and avg), and summaries"
)

_MAX_EXACT = 2**53
_I64_LIMIT = 2**63 - 1

# Flag bits of a summary.
ALL_INT: Final = 1  # every value is an integer
SUM_EXACT: Final = 2  # isum is the exact integer sum
LOW_INT: Final = 4
HIGH_INT: Final = 8
FIRST_INT: Final = 16
LAST_INT: Final = 32


@dataclass(frozen=True, eq=False)
class Tier:
    """Summaries of 15-minute buckets (one per element, ascending by ``ts``, the bucket's
    start; see the module docstring)."""

    ts: I64
    count: I64
    total: F64
    isum: I64
    low: F64
    high: F64
    first: F64
    last: F64
    first_ts: I64
    last_ts: I64
    ss: F64
    flags: npt.NDArray[np.uint8]

    def __len__(self) -> int:
        return int(self.ts.shape[0])

    @staticmethod
    def empty() -> Tier:
        columns: list[Any] = [np.zeros(0, dtype) for dtype in _DTYPES]
        return Tier(*columns)

    def take(self, index: Any) -> Tier:
        """The summaries at ``index`` (a mask, a slice or indices); itself for a mask that
        keeps them all."""
        if isinstance(index, np.ndarray) and index.dtype == np.bool_ and bool(index.all()):
            return self
        columns: list[Any] = [getattr(self, name)[index] for name in _NAMES]
        return Tier(*columns)

    def points(self) -> int:
        """How many raw points the summaries stand for."""
        return int(self.count.sum())


_NAMES: Final = tuple(f.name for f in fields(Tier))
_DTYPES: Final = (
    np.int64,
    np.int64,
    np.float64,
    np.int64,
    np.float64,
    np.float64,
    np.float64,
    np.float64,
    np.int64,
    np.int64,
    np.float64,
    np.uint8,
)
_WIRE: Final = tuple(np.dtype(d).newbyteorder("<") for d in _DTYPES)
_ROW_BYTES: Final = sum(wire.itemsize for wire in _WIRE)


def concat(parts: list[Tier]) -> Tier:
    """Summaries one after another (no merging)."""
    if not parts:
        return Tier.empty()
    if len(parts) == 1:
        return parts[0]
    return Tier(*(np.concatenate([getattr(p, name) for p in parts]) for name in _NAMES))


def bucket_of(ts: npt.ArrayLike) -> I64:
    """The tier bucket (its start) of each instant."""
    result: I64 = np.asarray(ts, np.int64) // TIER_MS * TIER_MS
    return result


def summarize(ts: I64, values: F64, is_int: Bool) -> Tier:
    """The summaries of raw points (ascending, unique timestamps)."""
    if ts.size == 0:
        return Tier.empty()
    buckets = bucket_of(ts)
    starts = group_starts(buckets)
    counts = np.diff(np.append(starts, ts.size))
    ends = starts + counts - 1
    with np.errstate(over="ignore", invalid="ignore"):
        total = np.add.reduceat(values, starts)
        means = total / counts
        deviations = values - np.repeat(means, counts)
        ss = np.add.reduceat(deviations * deviations, starts)
    all_int = np.logical_and.reduceat(is_int, starts)
    isum, exact = _int_sums(np.where(is_int, values, 0.0), starts, counts)
    low = np.minimum.reduceat(values, starts)
    high = np.maximum.reduceat(values, starts)
    low_int = np.logical_or.reduceat(is_int & (values == np.repeat(low, counts)), starts)
    high_int = np.logical_or.reduceat(is_int & (values == np.repeat(high, counts)), starts)
    flags = (
        all_int * ALL_INT
        + (all_int & exact) * SUM_EXACT
        + low_int * LOW_INT
        + high_int * HIGH_INT
        + is_int[starts] * FIRST_INT
        + is_int[ends] * LAST_INT
    ).astype(np.uint8)
    return Tier(
        buckets[starts],
        counts.astype(np.int64),
        total,
        isum,
        low,
        high,
        values[starts],
        values[ends],
        ts[starts],
        ts[ends],
        ss,
        flags,
    )


def _int_sums(values: F64, starts: Idx, counts: Idx) -> tuple[I64, Bool]:
    """Exact int64 sums of integer-valued floats per group, and whether each fits int64."""
    if values.size == 0:
        return np.zeros(starts.size, np.int64), np.ones(starts.size, np.bool_)
    if float(np.abs(values).max()) * float(counts.max()) < 2.0**62:
        return np.add.reduceat(values.astype(np.int64), starts), np.ones(starts.size, np.bool_)
    sums = np.zeros(starts.size, np.int64)
    fits = np.ones(starts.size, np.bool_)
    for group, (lo, n) in enumerate(zip(starts.tolist(), counts.tolist(), strict=True)):
        total = sum(int(v) for v in values[lo : lo + n].tolist())
        if abs(total) > _I64_LIMIT:
            fits[group] = False
        else:
            sums[group] = total
    return sums, fits


def _exact_group_sums(isum: I64, starts: Idx, counts: Idx) -> tuple[I64, Bool]:
    """Sums of int64 sums per group, and whether each fits int64."""
    if isum.size and float(np.abs(isum).max()) * float(counts.max()) < 2.0**62:
        return np.add.reduceat(isum, starts), np.ones(starts.size, np.bool_)
    return _big_sums(isum, starts, counts)


def _big_sums(isum: I64, starts: Idx, counts: Idx) -> tuple[I64, Bool]:
    sums = np.zeros(starts.size, np.int64)
    fits = np.ones(starts.size, np.bool_)
    for group, (lo, n) in enumerate(zip(starts.tolist(), counts.tolist(), strict=True)):
        total = sum(isum[lo : lo + n].tolist())
        if abs(total) > _I64_LIMIT:
            fits[group] = False
        else:
            sums[group] = total
    return sums, fits


def combine(tier: Tier, starts: Idx, labels: I64 | None = None) -> Tier:
    """The summaries of groups of summaries (runs starting at ``starts``, as ``reduceat``
    takes them), by the combination rule; each group's ``ts`` is ``labels`` (default: the
    ``ts`` of its first summary)."""
    if starts.size == 0:
        return Tier.empty()
    size = len(tier)
    counts = np.diff(np.append(starts, size))
    group = np.repeat(np.arange(starts.size), counts)
    count = np.add.reduceat(tier.count, starts)
    flags = tier.flags
    with np.errstate(over="ignore", invalid="ignore"):
        total = np.add.reduceat(tier.total, starts)
        mean = total / count
        part_mean = tier.total / tier.count
        spread = part_mean - np.repeat(mean, counts)
        ss = np.add.reduceat(tier.ss + tier.count * spread * spread, starts)
    all_int = np.logical_and.reduceat(flags & ALL_INT > 0, starts)
    exact_parts = np.logical_and.reduceat(flags & SUM_EXACT > 0, starts)
    isum, fits = _exact_group_sums(np.where(flags & SUM_EXACT > 0, tier.isum, 0), starts, counts)
    low = np.minimum.reduceat(tier.low, starts)
    high = np.maximum.reduceat(tier.high, starts)
    low_int = np.logical_or.reduceat((flags & LOW_INT > 0) & (tier.low == low[group]), starts)
    high_int = np.logical_or.reduceat((flags & HIGH_INT > 0) & (tier.high == high[group]), starts)
    by_first = np.lexsort((tier.first_ts, group))[starts]
    by_last = np.lexsort((tier.last_ts, group))[starts + counts - 1]
    out_flags = (
        all_int * ALL_INT
        + (all_int & exact_parts & fits) * SUM_EXACT
        + low_int * LOW_INT
        + high_int * HIGH_INT
        + (flags[by_first] & FIRST_INT)
        + (flags[by_last] & LAST_INT)
    ).astype(np.uint8)
    return Tier(
        tier.ts[starts] if labels is None else labels,
        count,
        total,
        isum,
        low,
        high,
        tier.first[by_first],
        tier.last[by_last],
        tier.first_ts[by_first],
        tier.last_ts[by_last],
        ss,
        out_flags,
    )


def merge(*parts: Tier) -> Tier:
    """One set of summaries from several (each ascending): summaries of the same bucket are
    combined."""
    joined = concat([p for p in parts if len(p)])
    if len(joined) == 0:
        return joined
    ts = joined.ts
    if ts.size > 1 and not bool(np.all(ts[1:] > ts[:-1])):
        joined = joined.take(np.argsort(ts, kind="stable"))
        starts = group_starts(joined.ts)
        if starts.size < len(joined):
            joined = combine(joined, starts)
    return joined


def fold(tier: Tier, name: str) -> tuple[F64, Bool]:
    """One value per summary for a fold of :data:`TIER_FOLDS` (as :func:`folds.fold_groups`
    gives it from the raw points), and whether each is an integer."""
    flags = tier.flags
    count = tier.count
    if name == "count":
        return count.astype(np.float64), np.ones(len(tier), np.bool_)
    if name == "sum":
        exact = flags & SUM_EXACT > 0
        is_int = exact & (np.abs(tier.isum) <= _MAX_EXACT)
        with np.errstate(over="ignore", invalid="ignore"):
            values = np.where(exact, tier.isum.astype(np.float64), tier.total)
        return values, is_int
    if name == "min":
        return tier.low, flags & LOW_INT > 0
    if name == "max":
        return tier.high, flags & HIGH_INT > 0
    if name == "first":
        return tier.first, flags & FIRST_INT > 0
    if name == "last":
        return tier.last, flags & LAST_INT > 0
    if name == "range":
        with np.errstate(over="ignore", invalid="ignore"):
            spread = tier.high - tier.low
        return spread, (flags & ALL_INT > 0) & (np.abs(spread) <= _MAX_EXACT)
    floats = np.zeros(len(tier), np.bool_)
    if name in ("mean", "avg"):
        with np.errstate(over="ignore", invalid="ignore"):
            return tier.total / count, floats
    if name == "ss":
        return tier.ss, floats
    if name == "stddev":
        return np.sqrt(tier.ss / np.maximum(count - 1, 1)), floats
    raise ValueError(f"the tier does not fold {name}")


def rollup(tier: Tier, *, interval: Interval, zone: Zone, start_ms: int) -> Tier:
    """The summaries of the rollup buckets of ``interval`` in ``zone`` (aligned by
    ``start_ms``, as :func:`rollup.rollup`), labelled as the rollup labels them; every
    boundary must fall on a tier boundary (:func:`unanswerable`)."""
    if len(tier) == 0:
        return tier
    labels, starts = bucket_starts(tier.ts, interval=interval, zone=zone, start_ms=start_ms)
    return combine(tier, starts.astype(np.intp), labels)


def answer(
    summaries: Tier,
    ts: I64,
    values: F64,
    is_int: Bool,
    *,
    interval: Interval,
    folds: tuple[str, ...],
    zone: Zone,
    start_ms: int,
) -> list[Folded]:
    """A rollup of the points that ``summaries`` and the raw points stand for together (the
    raw points summarized first), one :class:`rollup.Folded` per fold: what
    :func:`rollup.rollup_folds` gives from all the raw points."""
    both = merge(summaries, summarize(ts, values, is_int))
    rolled = rollup(both, interval=interval, zone=zone, start_ms=start_ms)
    return [Folded(rolled.ts, *fold(rolled, name)) for name in folds]


def summary(tier: Tier) -> dict[str, int | float]:
    """The summary of the points the summaries stand for, in the shape of
    :func:`rollup.summarize` (``{}`` when there are none)."""
    if len(tier) == 0 or tier.points() == 0:
        return {}
    whole = combine(tier, np.zeros(1, np.intp))
    total, total_int = fold(whole, "sum")
    count = int(whole.count[0])
    flags = int(whole.flags[0])
    ss = float(whole.ss[0])
    return {
        "sum": int(total[0]) if total_int[0] else float(total[0]),
        "mean": float(whole.total[0]) / count,
        "max": int(whole.high[0]) if flags & HIGH_INT else float(whole.high[0]),
        "min": int(whole.low[0]) if flags & LOW_INT else float(whole.low[0]),
        "stddev": float(np.sqrt(ss / (count - 1))) if count > 1 else 0.0,
        "ss": ss,
        "count": count,
    }


def unanswerable(
    interval: Interval | None,
    folds: tuple[str, ...],
    zone: Zone,
    *,
    start: int,
    end: int,
    tier: Tier,
) -> str | None:
    """Why the tier cannot answer a read of ``[start, end)`` over these summaries (None when
    it can): a fold it does not keep, an end of the range inside a tier bucket, or a rollup
    boundary that is not on a 15-minute mark within the span of the summaries."""
    if len(tier) == 0:
        return None
    missing = [name for name in folds if name not in TIER_FOLDS and name != "avg"]
    where = "part of this range has expired and is answered from the 15-minute tier"
    if missing:
        return f"{where}, which cannot fold {', '.join(missing)}: {OFFER}"
    if int(tier.ts[0]) < start or int(tier.ts[-1]) + TIER_MS > end:
        return (
            f"{where}: the range must begin and end on 15-minute marks where it falls in the "
            f"expired part (before the first kept point); {OFFER}"
        )
    if interval is None:
        return None
    lo, hi = int(tier.ts[0]), int(tier.ts[-1]) + TIER_MS
    step = interval.step_ms
    if step is not None and step < TIER_MS:
        inner = True  # a boundary inside every bucket
    else:
        # At most one boundary per 15 minutes of the span (far fewer for calendar units).
        found = boundaries(interval, zone, start_ms=start, lo=lo, hi=hi)
        inner = bool(np.any(found % TIER_MS != 0))
    if inner:
        return f"{where}, and the {interval.iso} buckets in {zone.name} cut its buckets: {OFFER}"
    return None


def cuts(tier: Tier, start: int, end: int) -> bool:
    """Whether a summary's bucket lies across ``start`` or ``end`` (a range delete there
    would cut it in two)."""
    ends = tier.ts + TIER_MS
    across = ((tier.ts < start) & (ends > start)) | ((tier.ts < end) & (ends > end))
    return bool(np.any(across))


#: Why a range delete is refused (``TierCut``).
CUT_MESSAGE: Final = (
    "the range would cut a 15-minute tier bucket in two (the expired part of a series is "
    "kept as 15-minute summaries): start and end must be on 15-minute marks there; nothing "
    "was deleted"
)


# -- chunks: the tier as stored (one per series and UTC day) ------------------------------------


def day_of(ts: I64) -> I64:
    """The UTC day (epoch ms of its midnight) of each bucket."""
    result: I64 = ts // MS_PER_DAY * MS_PER_DAY
    return result


def by_day(tier: Tier) -> list[tuple[int, Tier]]:
    """The summaries split by UTC day: (day, summaries) in order."""
    if len(tier) == 0:
        return []
    days = day_of(tier.ts)
    starts = group_starts(days)
    ends = np.append(starts[1:], len(tier))
    return [
        (int(days[lo]), tier.take(slice(int(lo), int(hi))))
        for lo, hi in zip(starts.tolist(), ends.tolist(), strict=True)
    ]


#: Columns stored as the differences from the previous element (ascending timestamps).
_DELTAS: Final = frozenset({"ts", "first_ts", "last_ts"})


def pack(tier: Tier) -> bytes:
    """The bytes of stored summaries: each field as a little-endian column (timestamps as
    differences), deflated (zlib level 1).  About 26 bytes a summary for minute data."""
    columns = []
    for name, wire in zip(_NAMES, _WIRE, strict=True):
        column = getattr(tier, name)
        if name in _DELTAS:
            column = np.diff(column, prepend=np.zeros(1, np.int64))
        columns.append(column.astype(wire).tobytes())
    return zlib.compress(b"".join(columns), 1)


def unpack(blob: bytes) -> Tier:
    """Summaries from :func:`pack`'s bytes."""
    return unpack_many([blob])


def unpack_many(blobs: list[bytes]) -> Tier:
    """The summaries of several chunks (in order), as one :class:`Tier`."""
    if not blobs:
        return Tier.empty()
    parts: list[list[Any]] = [[] for _ in _NAMES]
    for blob in blobs:
        raw = zlib.decompress(blob)
        size = len(raw) // _ROW_BYTES
        at = 0
        for found, wire in zip(parts, _WIRE, strict=True):
            found.append(np.frombuffer(raw, wire, size, at))
            at += wire.itemsize * size
    columns: list[Any] = []
    for name, dtype, pieces in zip(_NAMES, _DTYPES, parts, strict=True):
        column = np.concatenate(pieces).astype(dtype, copy=False)
        if name in _DELTAS:
            # Each chunk's first difference is from 0: its running sum starts afresh.
            lengths = np.array([len(piece) for piece in pieces])
            total = np.cumsum(column)
            before = np.concatenate(([0], np.cumsum(lengths)[:-1]))
            offsets = np.where(before > 0, total[np.maximum(before - 1, 0)], 0)
            column = total - np.repeat(offsets, lengths)
        columns.append(column)
    return Tier(*columns)
