"""Fold functions over groups of points: the one engine behind rollups (groups are calendar
buckets), cross-series aggregation (groups are equal timestamps) and find (the point a
function picks in each bucket).

A group is a run of consecutive values: ``starts`` holds the index of each group's first
value (ascending, the first one 0), as ``np.ufunc.reduceat`` takes them.  Every fold is
vectorised over all groups at once.  Values carry ``is_int`` (written as a JSON integer);
a result is an integer where the 0.5 rules say so: ``count`` always; ``sum`` when every
value is and the sum is exact; ``min``/``max``/``first``/``last`` when the value picked is;
``range`` and ``mult`` when every value is and the result is exact; the others never.

Folds (1.0 spec): ``sum``, ``mult`` (product), ``min``, ``max``, ``mean`` (alias ``avg``),
``count``, ``stddev`` (sample), ``ss`` (centred sum of squares), ``range`` (max - min),
``first``, ``last`` and ``percentile,N`` (0 < N <= 100, linear between closest ranks as
numpy's default method).
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from tempodb.zones import excerpt

__all__ = [
    "FIND_FUNCTIONS",
    "FOLD_NAMES",
    "aggregate",
    "aggregate_pieces",
    "find_groups",
    "fold_groups",
    "group_starts",
    "parse_fold",
]

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
Bool = npt.NDArray[np.bool_]
Idx = npt.NDArray[np.intp]
#: Consecutive points of a series: timestamps, values, integer-ness, and the step between
#: the timestamps when they are known to be evenly spaced (else 0).
Piece = tuple[I64, F64, Bool, int]

#: Every fold name but ``percentile,N``; ``avg`` is answered as ``mean``.
FOLD_NAMES = (
    "sum",
    "mult",
    "min",
    "max",
    "mean",
    "avg",
    "count",
    "stddev",
    "ss",
    "range",
    "first",
    "last",
)
#: What ``find`` may pick in each interval.
FIND_FUNCTIONS = ("max", "min", "first", "last")

#: Folds whose results' integer-ness does not depend on the values' (with ``percentile,N``).
_FLOAT_FOLDS = frozenset(("mean", "stddev", "ss", "count"))
_MAX_EXACT = 2**53
_PERCENTILE = re.compile(r"percentile,([0-9]+(?:\.[0-9]+)?)")


def parse_fold(text: str) -> str:
    """A fold name, validated and normalised: lower case, ``avg`` as ``mean``,
    ``percentile,N`` with N as written (``percentile,99.9``).

    Raises:
        ValueError: ``Invalid fold: <text> (...)``.
    """
    lowered = text.strip().lower().replace(" ", "")
    if lowered in FOLD_NAMES:
        return "mean" if lowered == "avg" else lowered
    match = _PERCENTILE.fullmatch(lowered)
    if match is not None and 0 < float(match.group(1)) <= 100:
        return f"percentile,{match.group(1)}"
    raise ValueError(
        f"Invalid fold: {excerpt(text)} "
        f"(one of {', '.join(FOLD_NAMES)}, or percentile,N with 0 < N <= 100)"
    )


def group_starts(keys: I64) -> Idx:
    """The starts of the runs of equal values in ascending ``keys``."""
    if keys.size == 0:
        return np.zeros(0, np.intp)
    return np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))


def _counts(starts: Idx, size: int) -> Idx:
    return np.diff(np.append(starts, size))


def fold_groups(vals: F64, ints: Bool, starts: Idx, fold: str) -> tuple[F64, Bool]:
    """Fold each group of ``vals`` with ``fold`` (a :func:`parse_fold` result).

    Returns one value per group and whether it is an integer.
    """
    counts = _counts(starts, vals.size)
    if starts.size == 0:
        return np.zeros(0, np.float64), np.zeros(0, np.bool_)
    floats = np.zeros(starts.size, np.bool_)
    if fold == "count":
        return counts.astype(np.float64), np.ones(starts.size, np.bool_)
    if fold == "sum":
        return _sums(vals, ints, starts, counts)
    if fold in ("max", "min"):
        return _extreme(vals, ints, starts, counts, fold == "max")
    if fold == "first":
        return vals[starts], ints[starts]
    if fold == "last":
        ends = starts + counts - 1
        return vals[ends], ints[ends]
    if fold == "range":
        with np.errstate(over="ignore", invalid="ignore"):
            spread = np.maximum.reduceat(vals, starts) - np.minimum.reduceat(vals, starts)
        all_int = np.logical_and.reduceat(ints, starts)
        return spread, all_int & (np.abs(spread) <= _MAX_EXACT)
    if fold == "mult":
        with np.errstate(over="ignore", invalid="ignore"):
            product = np.multiply.reduceat(vals, starts)
        all_int = np.logical_and.reduceat(ints, starts)
        # Integer factors never shrink a product (bar 0, which makes it exactly 0), so a
        # result within 2**53 was exact all along.
        return product, all_int & (np.abs(product) <= _MAX_EXACT)
    if fold.startswith("percentile,"):
        return _percentiles(vals, starts, counts, float(fold.split(",", 1)[1])), floats
    if fold == "mean":  # the first pass of _moments alone
        return _means(vals, starts, counts), floats
    _, ss = _moments(vals, starts, counts)
    if fold == "ss":
        return ss, floats
    if fold == "stddev":
        return np.sqrt(ss / np.maximum(counts - 1, 1)), floats
    raise ValueError(f"Invalid fold: {fold}")


def _means(vals: F64, starts: Idx, counts: Idx) -> F64:
    """Per-group means, finite also where a sum overflows."""
    with np.errstate(over="ignore", invalid="ignore"):
        means: F64 = np.add.reduceat(vals, starts) / counts
    for bucket in np.flatnonzero(~np.isfinite(means)).tolist():  # the sum overflowed
        lo = int(starts[bucket])
        means[bucket] = finite_mean(vals[lo : lo + int(counts[bucket])])
    return means


def _moments(vals: F64, starts: Idx, counts: Idx) -> tuple[F64, F64]:
    """Per-group means and centred sums of squares (two passes)."""
    means = _means(vals, starts, counts)
    with np.errstate(over="ignore", invalid="ignore"):
        deviations = vals - np.repeat(means, counts)
        ss: F64 = np.add.reduceat(deviations * deviations, starts)
    return means, ss


def finite_mean(vals: F64) -> float:
    """The mean of finite values, also where their sum overflows float64 (values near
    1.8e308): summed scaled down by a power of two (exact), so the mean is always finite."""
    top = float(np.abs(vals).max())
    shift = math.frexp(top)[1] + int(vals.size).bit_length()
    return math.ldexp(float(np.ldexp(vals, -shift).sum()) / vals.size, shift)


def _sums(vals: F64, ints: Bool, starts: Idx, counts: Idx) -> tuple[F64, Bool]:
    """Per-group sums; a sum is an int when all its values are ints and it is exact."""
    sums: F64 = np.add.reduceat(vals, starts)
    all_int: Bool = np.logical_and.reduceat(ints, starts)
    if not all_int.any():
        return sums, all_int
    int_values = np.where(ints, vals, 0.0)
    bound = float(np.abs(int_values).max()) * float(counts.max())
    if bound < 2.0**62:
        exact = np.add.reduceat(int_values.astype(np.int64), starts)
        exact_ok = np.abs(exact) <= _MAX_EXACT
        sums = np.where(all_int, exact.astype(np.float64), sums)
        return sums, all_int & exact_ok
    result_ints = all_int.copy()
    for bucket in np.flatnonzero(all_int).tolist():
        lo = int(starts[bucket])
        total = sum(int(v) for v in vals[lo : lo + int(counts[bucket])].tolist())
        sums[bucket] = float(total)
        result_ints[bucket] = abs(total) <= _MAX_EXACT
    return sums, result_ints


def _extreme(vals: F64, ints: Bool, starts: Idx, counts: Idx, maximum: bool) -> tuple[F64, Bool]:
    """Per-group max or min; an int when some int value attains it."""
    ufunc = np.maximum if maximum else np.minimum
    extreme: F64 = ufunc.reduceat(vals, starts)
    if not ints.any():
        return extreme, np.zeros(starts.size, np.bool_)
    if ints.all():
        return extreme, np.ones(starts.size, np.bool_)
    winners = ints & (vals == np.repeat(extreme, counts))
    return extreme, np.logical_or.reduceat(winners, starts)


def _percentiles(vals: F64, starts: Idx, counts: Idx, percent: float) -> F64:
    """Per-group percentiles, as ``np.percentile(group, percent)`` (method "linear")."""
    groups = np.repeat(np.arange(starts.size), counts)
    ordered = vals[np.lexsort((vals, groups))]
    rank = (counts - 1) * (percent / 100.0)
    below = np.floor(rank).astype(np.intp)
    above = np.minimum(below + 1, counts - 1)
    low, high = ordered[starts + below], ordered[starts + above]
    t = rank - below
    with np.errstate(over="ignore", invalid="ignore"):
        diff = high - low
        result = np.where(t >= 0.5, high - diff * (1 - t), low + diff * t)
        # Values of opposite signs further apart than float64 reaches: their difference
        # overflowed (numpy's percentile answers nan or an infinity there), so weigh them.
        wide = ~np.isfinite(diff)
        if wide.any():
            result[wide] = low[wide] * (1 - t[wide]) + high[wide] * t[wide]
    final: F64 = np.where(low == high, low, result)
    return final


def find_groups(vals: F64, starts: Idx, function: str) -> Idx:
    """The index of the value ``function`` (``max``, ``min``, ``first``, ``last``) picks in
    each group; ties go to the earliest."""
    counts = _counts(starts, vals.size)
    if function == "first":
        return starts
    if function == "last":
        return starts + counts - 1
    ufunc = np.maximum if function == "max" else np.minimum
    extreme = ufunc.reduceat(vals, starts)
    hits = np.flatnonzero(vals == np.repeat(extreme, counts))
    return hits[np.searchsorted(hits, starts)]


def aggregate(series: list[tuple[I64, F64, Bool]], fold: str) -> tuple[I64, F64, Bool]:
    """One series from many: at every timestamp present in any of them, ``fold`` over the
    values of the series that have a point there."""
    return aggregate_pieces([[(ts, vals, ints, 0)] for ts, vals, ints in series], fold)


def aggregate_pieces(series: Sequence[Sequence[Piece]], fold: str) -> tuple[I64, F64, Bool]:
    """:func:`aggregate` of series each given as consecutive pieces (its points are their
    concatenation, as a store keeps them in blocks), each with the step between its
    timestamps when they are known to be evenly spaced (else 0): aligned series are copied
    from their pieces straight into the stack they fold from; the others are joined first."""
    sizes = [sum(int(piece[0].shape[0]) for piece in pieces) for pieces in series]
    if series and sizes[0] and all(size == sizes[0] for size in sizes):
        found = _aligned(series, sizes[0], fold)
        if found is not None:
            return found
    joined = [_join(pieces) for pieces in series]
    if not joined:
        return np.zeros(0, np.int64), np.zeros(0, np.float64), np.zeros(0, np.bool_)
    ts = np.concatenate([s[0] for s in joined])
    vals = np.concatenate([s[1] for s in joined])
    ints = np.concatenate([s[2] for s in joined])
    order = np.argsort(ts, kind="stable")  # equal timestamps keep the series' order
    ts, vals, ints = ts[order], vals[order], ints[order]
    starts = group_starts(ts)
    out, out_ints = fold_groups(vals, ints, starts, fold)
    return ts[starts], out, out_ints


def _join(pieces: Sequence[Piece]) -> tuple[I64, F64, Bool]:
    if len(pieces) == 1:
        return pieces[0][0], pieces[0][1], pieces[0][2]
    if not pieces:
        return np.zeros(0, np.int64), np.zeros(0, np.float64), np.zeros(0, np.bool_)
    return (
        np.concatenate([piece[0] for piece in pieces]),
        np.concatenate([piece[1] for piece in pieces]),
        np.concatenate([piece[2] for piece in pieces]),
    )


#: Rows ``[lo, hi)`` of the first series whose timestamps are ``t0 + step * (row - lo)``.
_Run = tuple[int, int, int, int]


def _aligned(
    series: Sequence[Sequence[Piece]], size: int, fold: str
) -> tuple[I64, F64, Bool] | None:
    """The aggregate of series of ``size`` points each when all have the same timestamps
    (sensors sampled together), else None.  The stable sort of the general path would
    interleave them, timestamp by timestamp in the series' order; so does a transposed stack
    (row: a timestamp, column: a series), filled piece by piece.  A piece's timestamps are
    compared with the first series' where they are not known to be the same: when both are
    evenly spaced with the same step from the same instant, they are, without a look."""
    k = len(series)
    first = np.concatenate([piece[0] for piece in series[0]])
    runs: list[_Run] = []
    at = 0
    for ts, _, _, step in series[0]:
        following = at + ts.shape[0]
        if step and following > at:
            t0 = int(ts[0])
            if runs and runs[-1][1] == at and runs[-1][3] == step:
                lo, _, last_t0, _ = runs[-1]
                if last_t0 + step * (at - lo) == t0:  # the run goes on in this piece
                    runs[-1] = (lo, following, last_t0, step)
                    at = following
                    continue
            runs.append((at, following, t0, step))
        at = following
    run_starts = [run[0] for run in runs]
    for pieces in series[1:]:
        at = index = 0
        for ts, _, _, step in pieces:
            following = at + ts.shape[0]
            if following > at:
                while index < len(runs) and runs[index][1] <= at:
                    index += 1
                if (
                    step
                    and index < len(runs)
                    and runs[index][0] <= at < following <= runs[index][1]
                ):
                    # The common case: the piece faces one run of the first series.
                    run_lo, _, run_t0, run_step = runs[index]
                    same = int(ts[0]) == run_t0 + run_step * (at - run_lo) and (
                        step == run_step or following - at == 1
                    )
                else:
                    found = _evenly_same(runs, run_starts, at, following, int(ts[0]), step)
                    same = bool((ts == first[at:following]).all()) if found is None else found
                if not same:
                    return None
            at = following
    vals = np.empty((size, k), np.float64)
    _stack(vals, [[piece[1] for piece in pieces] for pieces in series])
    ints = None
    if not (fold in _FLOAT_FOLDS or fold.startswith("percentile,")):
        ints = np.empty((size, k), np.bool_)
        _stack(ints, [[piece[2] for piece in pieces] for pieces in series])
    # The flags of folds whose results are never integers are not looked at.
    flat_ints = ints.ravel() if ints is not None else np.broadcast_to(np.False_, (size * k,))
    out, out_ints = fold_groups(vals.ravel(), flat_ints, np.arange(0, size * k, k), fold)
    return first, out, out_ints


def _stack(matrix: npt.NDArray[Any], columns: list[list[npt.NDArray[Any]]]) -> None:
    """Column j of ``matrix`` (rows: the points) from the pieces ``columns[j]``."""
    for column, pieces in enumerate(columns):
        at = 0
        for piece in pieces:
            following = at + piece.shape[0]
            matrix[at:following, column] = piece
            at = following


def _evenly_same(
    runs: list[_Run], run_starts: list[int], lo: int, hi: int, t0: int, step: int
) -> bool | None:
    """Whether the first series' rows ``[lo, hi)`` hold ``t0 + step * (row - lo)`` (evenly
    spaced timestamps of another series' piece), told from the first series' evenly spaced
    runs alone; None when they do not cover the rows (or the piece is not evenly spaced)."""
    if not step:
        return None
    index = max(0, bisect.bisect_right(run_starts, lo) - 1)
    row = lo
    while row < hi:
        if index >= len(runs) or not runs[index][0] <= row < runs[index][1]:
            return None
        run_lo, run_hi, run_t0, run_step = runs[index]
        end = min(hi, run_hi)
        if run_t0 + run_step * (row - run_lo) != t0 + step * (row - lo):
            return False
        if end - row > 1 and run_step != step:
            return False
        row = end
        index += 1
    return True
