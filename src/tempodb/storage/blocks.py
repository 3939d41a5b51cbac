"""Time-ordered columnar blocks: the point format that the SQLite and PostgreSQL backends share.

A series' points are stored as *blocks*, each one a row holding ``first``, ``last``, ``n``,
``fmt`` and three blobs ``ts``, ``vals`` and ``mask``.  This module encodes and decodes blocks,
and decides how a run of merged points is cut into blocks; the backends store the rows.

Invariants (kept by every backend)
    * A block holds ``n`` points, ``1 <= n <= cap`` (the backend's block size), with strictly
      increasing timestamps: ``first == ts[0] < ts[1] < ... < ts[n-1] == last``.
    * The blocks of a series never overlap: ``last`` of one block < ``first`` of the next.  So the
      only block that may hold a timestamp ``t`` is the one with the largest ``first <= t``.
    * No block is empty; a series without points has no block.

Encoding
    ``fmt`` is a bit field saying how the blobs are encoded (all little-endian):

    ====== ============ =========================================================
    bits   part         meaning
    ====== ============ =========================================================
    0-1    timestamps   0: ``ts`` is n int64 offsets from ``first``;
                        1: n uint32 offsets (used when ``last - first < 2**32``)
    2-3    values       0: ``vals`` is n float64;
                        1: n int32 (every value an integer within int32)
    4-5    int flags    0: every value is a float; 1: every value is an integer;
                        2: mixed, ``mask`` holds the flags bit-packed, bit i of byte
                        i // 8 in little bit order
    ====== ============ =========================================================

    ``mask`` is NULL unless the flags are mixed.  A minute-spaced float series thus costs
    4 + 8 bytes per point, an integer counter 4 + 4.

Writing
    A write or increment merges its points (already de-duplicated with ``fold_batch``) with the
    *run* of blocks its time span overlaps, or, when it overlaps none, with the neighbouring
    block that has room (``choose_run``).  The run is then stored again (``split``): at the end
    of a series as full blocks followed by the remainder (so appending in time order fills the
    last block, then starts new ones), elsewhere as the fewest blocks of even size (so an insert
    into a full block splits it in halves).  A range delete drops the blocks inside the range
    and stores what is left of the two edge blocks as one run (``cut``).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Final, NamedTuple

import numpy as np

from tempodb.storage.base import BoolArray, Float64Array, Int64Array, Points

__all__ = [
    "INT_ALL",
    "INT_MIXED",
    "TS_U32",
    "VAL_I32",
    "Block",
    "Meta",
    "choose_run",
    "clip",
    "concat",
    "cut",
    "decode",
    "encode",
    "split",
]

TS_U32: Final = 0x01
VAL_I32: Final = 0x04
INT_ALL: Final = 0x10
INT_MIXED: Final = 0x20
_INT32_MIN: Final = -(2**31)
_INT32_MAX: Final = 2**31 - 1


class Block(NamedTuple):
    """One encoded block: the columns a backend stores besides the series."""

    first: int
    last: int
    n: int
    fmt: int
    ts: bytes
    vals: bytes
    mask: bytes | None


class Meta(NamedTuple):
    """What a backend knows of a stored block without reading its blobs.

    ``handle`` is whatever the backend needs to address the row again (a rowid, or ``first``).
    """

    handle: int
    first: int
    last: int
    n: int


def encode(ts: Int64Array, values: Float64Array, is_int: BoolArray) -> Block:
    """The block of sorted, unique points (at least one)."""
    first, last, n = int(ts[0]), int(ts[-1]), int(ts.shape[0])
    fmt = 0
    if last - first < 2**32:
        fmt |= TS_U32
        ts_blob = (ts - first).astype("<u4").tobytes()
    else:
        ts_blob = (ts - first).astype("<i8").tobytes()
    mask: bytes | None = None
    vals: bytes | None = None
    if bool(is_int.all()):
        fmt |= INT_ALL
        if (
            values.min() >= _INT32_MIN
            and values.max() <= _INT32_MAX
            and bool(np.all(values == np.trunc(values)))
        ):
            fmt |= VAL_I32
            vals = values.astype("<i4").tobytes()
    elif bool(is_int.any()):
        fmt |= INT_MIXED
        mask = np.packbits(is_int, bitorder="little").tobytes()
    if vals is None:
        vals = values.astype("<f8").tobytes()
    return Block(first, last, n, fmt, ts_blob, vals, mask)


def decode(first: int, n: int, fmt: int, ts: bytes, vals: bytes, mask: bytes | None) -> Points:
    """The points of one block (fresh, writable arrays)."""
    times = np.frombuffer(ts, "<u4" if fmt & TS_U32 else "<i8", n).astype(np.int64)
    times += first
    values = np.frombuffer(vals, "<i4" if fmt & VAL_I32 else "<f8", n).astype(np.float64)
    if fmt & INT_MIXED and mask is not None:
        bits = np.unpackbits(np.frombuffer(mask, np.uint8), count=n, bitorder="little")
        is_int = bits.astype(np.bool_)
    else:
        is_int = np.full(n, bool(fmt & INT_ALL), np.bool_)
    return Points(times, values, is_int)


def concat(parts: Sequence[Points]) -> Points:
    """The points of consecutive blocks as one ``Points``."""
    if not parts:
        return Points.empty()
    if len(parts) == 1:
        return parts[0]
    return Points(
        np.concatenate([p.ts for p in parts]),
        np.concatenate([p.values for p in parts]),
        np.concatenate([p.is_int for p in parts]),
    )


def clip(points: Points, start: int, end: int) -> Points:
    """The points with ``start <= ts < end`` (the same object when all of them are)."""
    lo = int(np.searchsorted(points.ts, start, "left"))
    hi = int(np.searchsorted(points.ts, end, "left"))
    if (lo, hi) == (0, len(points)):
        return points
    return Points(points.ts[lo:hi], points.values[lo:hi], points.is_int[lo:hi])


def cut(parts: Sequence[Points], start: int, end: int) -> tuple[Points, int]:
    """What is left of ``parts`` without ``start <= ts < end``, and how many points went."""
    kept: list[Points] = []
    deleted = 0
    for points in parts:
        keep = (points.ts < start) | (points.ts >= end)
        deleted += int(keep.shape[0] - np.count_nonzero(keep))
        kept.append(Points(points.ts[keep], points.values[keep], points.is_int[keep]))
    return concat(kept), deleted


def choose_run(run: list[Meta], before: Meta | None, after: Meta | None, cap: int) -> list[Meta]:
    """The blocks a write merges with.

    ``run`` holds the blocks the written span overlaps; ``before`` and ``after`` are the blocks
    starting closest before and after it.  In a gap, join the neighbour with room, else split a
    full one (but after a full last block simply start a new one).
    """
    if run:
        return run
    candidates = [m for m in (before, after) if m is not None]
    roomy = [m for m in candidates if m.n < cap]
    if roomy:
        return roomy[:1]
    if after is not None:
        return candidates[:1]
    return []


def split(points: Points, cap: int, *, at_end: bool) -> list[Block]:
    """The blocks that store a run of points (see Writing above).

    ``at_end``: no block of the series starts after the run.
    """
    n = len(points)
    if at_end:
        cuts = [*range(0, n, cap), n]
    else:
        k = -(-n // cap)
        cuts = [n * i // k for i in range(k + 1)]
    return [
        encode(points.ts[a:b], points.values[a:b], points.is_int[a:b])
        for a, b in itertools.pairwise(cuts)
    ]
