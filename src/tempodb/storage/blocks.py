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
                        1: n uint32 offsets (used when ``last - first < 2**32``);
                        2: evenly spaced: ``ts`` is the int64 step (empty when n = 1);
                        3: ``ts`` is a width byte w (1, 2, 4 or 8) and then the n - 1
                        gaps ``ts[i + 1] - ts[i]`` as uint{8w}, byte-shuffled, deflated
    2-3    values       0: ``vals`` is n float64;
                        1: n int32 (every value an integer within int32);
                        2: decimal: every value is m / 10**k with an integer m; ``vals``
                        is k (a byte), a width byte w, m of the first point (int64),
                        then the n - 1 differences of m, zigzag-encoded as uint{8w},
                        byte-shuffled, deflated;
                        3: ``vals`` is the n float64 bit patterns, each XORed with the one
                        before (the first with 0), byte-shuffled, deflated
    4-5    int flags    0: every value is a float; 1: every value is an integer;
                        2: mixed, ``mask`` holds the flags bit-packed, bit i of byte
                        i // 8 in little bit order
    ====== ============ =========================================================

    "Byte-shuffled" stores the first byte of every item, then the second byte of every item,
    and so on; "deflated" is zlib (level 1).  ``mask`` is NULL unless the flags are mixed.
    Blocks are compressed (timestamp codes 2 or 3, value codes 2 or 3): minute data then
    costs nothing for its timestamps, a counter or a two-decimal sensor about 0.5-0.7 bytes
    per value, a full-precision float about 6.5; decoding 4,096 points takes about 30 µs.
    The one exception is the last block of a series while it is not full: appends rewrite it
    again and again, so it keeps the plain codes 0 and 1 (4 + 8 bytes per point, rewritten in
    a few µs) until it fills up or is no longer the last.

Reading
    ``decode_run`` decodes the blocks of a read straight into one set of arrays;
    ``BlockCache`` keeps decoded blocks for later reads (a backend keys it by whatever names a
    block's contents for good) and ``assemble`` joins cached parts into one result.

Small appends
    ``plain_append`` (and ``plain_append_one``) give the bytes that extend a plain block's
    ``ts`` and ``vals`` blobs with a few later points when they fit its codes as they are, so
    that a backend can grow its last block without decoding it; ``plain_block`` encodes a few
    points given as Python values in the plain codes.

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

import functools
import itertools
import struct
import threading
import zlib
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

import numpy as np
import numpy.typing as npt

from tempodb.storage.base import BoolArray, Float64Array, Int64Array, Piece, Points

try:
    from tempodb import _speedups
except ImportError:  # built without a C compiler: no decimal encoding (values as float64)
    _speedups = None  # type: ignore[assignment]

__all__ = [
    "INT_ALL",
    "INT_MIXED",
    "TS_DELTA",
    "TS_STEP",
    "TS_U32",
    "VAL_DECIMAL",
    "VAL_I32",
    "VAL_XOR",
    "Block",
    "BlockCache",
    "Meta",
    "assemble",
    "choose_run",
    "clip",
    "concat",
    "cut",
    "decode",
    "decode_run",
    "encode",
    "plain_append",
    "plain_append_one",
    "plain_block",
    "split",
]

TS_U32: Final = 0x01
TS_STEP: Final = 0x02
TS_DELTA: Final = 0x03
TS_MASK: Final = 0x03
VAL_I32: Final = 0x04
VAL_DECIMAL: Final = 0x08
VAL_XOR: Final = 0x0C
VAL_MASK: Final = 0x0C
INT_ALL: Final = 0x10
INT_MIXED: Final = 0x20
_INT32_MIN: Final = -(2**31)
_INT32_MAX: Final = 2**31 - 1
_LEVEL: Final = 1
#: Decimal digits tried for the decimal value code.
_MAX_DIGITS: Final = 9
_MAX_MANTISSA: Final = float(2**53)
#: A point of a tiny write, as plain Python values: (timestamp, value, is_int).
PyPoint = tuple[int, float, bool]


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


def encode(
    ts: Int64Array, values: Float64Array, is_int: BoolArray, *, compress: bool = True
) -> Block:
    """The block of sorted, unique points (at least one); ``compress=False``: in the plain
    codes 0 and 1 (for a tail block that appends will rewrite)."""
    if not compress:
        return _encode_plain(ts, values, is_int)
    first, last, n = int(ts[0]), int(ts[-1]), int(ts.shape[0])
    stamps = ts.view(np.uint64)
    gaps = stamps[1:] - stamps[:-1]  # modulo 2**64: the true gaps, all below 2**64
    if n == 1 or bool(np.all(gaps == gaps[0])):
        fmt = TS_STEP
        ts_blob = b"" if n == 1 else int(gaps[0]).to_bytes(8, "little")
    else:
        fmt = TS_DELTA
        ts_blob = _pack(gaps)
    mask: bytes | None = None
    if bool(is_int.all()):
        fmt |= INT_ALL
    elif bool(is_int.any()):
        fmt |= INT_MIXED
        mask = np.packbits(is_int, bitorder="little").tobytes()
    decimal = _decimal(values)
    if decimal is None:
        fmt |= VAL_XOR
        bits = values.view(np.uint64)
        vals = zlib.compress(
            _shuffle(bits ^ np.concatenate(([np.uint64(0)], bits[:-1])), 8), _LEVEL
        )
    else:
        fmt |= VAL_DECIMAL
        digits, mantissa = decimal
        steps = np.diff(mantissa)
        zigzag = ((steps << 1) ^ (steps >> 63)).view(np.uint64)
        vals = bytes([digits]) + int(mantissa[0]).to_bytes(8, "little", signed=True)
        vals += _pack(zigzag)
    return Block(first, last, n, fmt, ts_blob, vals, mask)


def _encode_plain(ts: Int64Array, values: Float64Array, is_int: BoolArray) -> Block:
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


def plain_block(points: Sequence[PyPoint]) -> Block | None:
    """The plain block (codes 0 and 1) of a few sorted, unique points given as Python values,
    as ``encode(..., compress=False)`` makes it without numpy's per-call costs; None when
    their int flags are mixed (the caller then takes the numpy path)."""
    first, last, n = points[0][0], points[-1][0], len(points)
    ints = [p[2] for p in points]
    if any(ints) and not all(ints):
        return None
    fmt = 0
    if last - first < 2**32:
        fmt |= TS_U32
        ts_blob = struct.pack(f"<{n}I", *[p[0] - first for p in points])
    else:
        ts_blob = struct.pack(f"<{n}q", *[p[0] - first for p in points])
    values = [p[1] for p in points]
    if ints[0]:
        fmt |= INT_ALL
        if min(values) >= _INT32_MIN and max(values) <= _INT32_MAX:
            fmt |= VAL_I32
            return Block(
                first, last, n, fmt, ts_blob, struct.pack(f"<{n}i", *map(int, values)), None
            )
    return Block(first, last, n, fmt, ts_blob, struct.pack(f"<{n}d", *values), None)


@functools.cache
def _packer(code: str, n: int) -> struct.Struct:
    """The little-endian packer of ``n`` items of struct ``code``."""
    return struct.Struct(f"<{n}{code}")


def plain_append(fmt: int, first: int, points: Sequence[PyPoint]) -> tuple[bytes, bytes] | None:
    """What to add at the end of the ``ts`` and ``vals`` blobs of a plain block (codes 0 and
    1, starting at ``first``) so that it holds ``points`` too (sorted, unique, all after its
    last point); None when they do not fit its codes as they are (a compressed block, mixed
    int flags, flags unlike the block's, an integer beyond int32 for code 1, an offset beyond
    uint32 for code 1): the caller then rewrites the block."""
    if fmt & (TS_STEP | VAL_DECIMAL | INT_MIXED):  # compressed codes (2, 3) or mixed flags
        return None
    want_int = bool(fmt & INT_ALL)
    n = len(points)
    offsets = []
    values = []
    for ts, value, is_int in points:
        if is_int is not want_int:
            return None
        offsets.append(ts - first)
        values.append(value)
    if fmt & TS_U32:
        if offsets[-1] >= 2**32:
            return None
        ts_blob = _packer("I", n).pack(*offsets)
    else:
        ts_blob = _packer("q", n).pack(*offsets)
    if fmt & VAL_I32:
        if min(values) < _INT32_MIN or max(values) > _INT32_MAX:
            return None
        return ts_blob, _packer("i", n).pack(*map(int, values))
    return ts_blob, _packer("d", n).pack(*values)


_U32: Final = struct.Struct("<I")
_I64: Final = struct.Struct("<q")
_I32: Final = struct.Struct("<i")
_F64: Final = struct.Struct("<d")


def plain_append_one(
    fmt: int, first: int, ts: int, value: float, is_int: bool
) -> tuple[bytes, bytes] | None:
    """``plain_append`` for one point (the common small write), without its lists."""
    if fmt & (TS_STEP | VAL_DECIMAL | INT_MIXED) or is_int is not bool(fmt & INT_ALL):
        return None
    offset = ts - first
    if fmt & TS_U32:
        if offset >= 2**32:
            return None
        ts_blob = _U32.pack(offset)
    else:
        ts_blob = _I64.pack(offset)
    if fmt & VAL_I32:
        if value < _INT32_MIN or value > _INT32_MAX:
            return None
        return ts_blob, _I32.pack(int(value))
    return ts_blob, _F64.pack(value)


def _decimal(values: Float64Array) -> tuple[int, Int64Array] | None:
    """``(k, m)`` with ``values == m / 10**k`` bit for bit and k as small as it can be (tried
    on a sample first), or None."""
    sample = values[:64]
    for digits in range(_MAX_DIGITS + 1):
        if _scaled(sample, digits) is not None:
            break
    else:
        return None
    for k in range(digits, min(digits + 3, _MAX_DIGITS + 1)):
        mantissa = _scaled(values, k)
        if mantissa is not None:
            return k, mantissa
    return None


def _scaled(values: Float64Array, digits: int) -> Int64Array | None:
    """The mantissas m with ``values == m / 10**digits`` bit for bit, or None."""
    scale = 10.0**digits
    if _speedups is None:  # built without a C compiler: values stay plain float64
        return None
    found = _speedups.decimal_mantissas(np.ascontiguousarray(values), scale, _MAX_MANTISSA)
    return None if found is None else np.frombuffer(found, np.int64)


def _shuffle(items: npt.NDArray[np.uint64], width: int) -> bytes:
    """Items as ``width``-byte integers, byte-shuffled."""
    return items.astype(f"<u{width}").view(np.uint8).reshape(-1, width).T.tobytes()


def _unshuffle(data: bytes, width: int, count: int) -> npt.NDArray[np.unsignedinteger[Any]]:
    """Byte-shuffled ``width``-byte items back as an array of ``<u{width}`` (a view when
    ``width`` is 1)."""
    raw = np.frombuffer(data, np.uint8, width * count)
    if width == 1:
        return raw
    items: npt.NDArray[np.unsignedinteger[Any]] = (
        raw.reshape(width, count).T.copy().view(f"<u{width}")[:, 0]
    )
    return items


def _pack(items: npt.NDArray[np.uint64]) -> bytes:
    """A width byte, then the items in the fewest bytes, byte-shuffled and deflated."""
    top = int(items.max()) if items.size else 0
    width = 1 if top < 1 << 8 else 2 if top < 1 << 16 else 4 if top < 1 << 32 else 8
    return bytes([width]) + zlib.compress(_shuffle(items, width), _LEVEL)


def _unpack(blob: bytes, count: int) -> npt.NDArray[np.unsignedinteger[Any]]:
    return _unshuffle(zlib.decompress(blob[1:]), blob[0], count)


#: ``np.arange`` as uint64, for evenly spaced timestamps (grown on demand).
_ramp: npt.NDArray[np.uint64] = np.arange(4096, dtype=np.uint64)


def _decode_into(
    row: Sequence[Any],
    times: npt.NDArray[np.uint64],
    values: Float64Array,
    is_int: BoolArray,
) -> None:
    """Decode the block ``row`` (first, n, fmt, ts, vals, mask) into the given arrays of its
    length: timestamps as uint64 (offsets are added modulo 2**64, then read as int64)."""
    global _ramp
    first, n, fmt, ts, vals, mask = row[0], row[1], row[2], row[3], row[4], row[5]
    code = fmt & TS_MASK
    origin = np.uint64(first % 2**64)
    if code == TS_STEP:
        if n > _ramp.shape[0]:
            _ramp = np.arange(n, dtype=np.uint64)
        np.multiply(_ramp[:n], np.uint64(int.from_bytes(ts, "little")), out=times)
        times += origin
    elif code == TS_DELTA:
        times[0] = origin
        np.cumsum(_unpack(ts, n - 1), dtype=np.uint64, out=times[1:])
        times[1:] += origin
    else:
        offsets = np.frombuffer(ts, "<u4" if code == TS_U32 else "<u8", n)
        np.add(offsets, origin, out=times, dtype=np.uint64)
    code = fmt & VAL_MASK
    if code == VAL_DECIMAL:
        zigzag = _unpack(vals[9:], n - 1).astype(np.int64)
        mantissa = np.empty(n, np.int64)
        mantissa[0] = int.from_bytes(vals[1:9], "little", signed=True)
        np.cumsum((zigzag >> 1) ^ -(zigzag & 1), out=mantissa[1:])
        mantissa[1:] += mantissa[0]
        np.divide(mantissa, 10.0 ** vals[0], out=values)
    elif code == VAL_XOR:
        bits = _unshuffle(zlib.decompress(vals), 8, n)
        np.bitwise_xor.accumulate(bits, out=values.view(np.uint64))
    else:
        values[:] = np.frombuffer(vals, "<i4" if code == VAL_I32 else "<f8", n)
    if fmt & INT_MIXED and mask is not None:
        is_int[:] = np.unpackbits(np.frombuffer(mask, np.uint8), count=n, bitorder="little")
    else:
        is_int.fill(bool(fmt & INT_ALL))


@dataclass(frozen=True)
class DecodedBlock(Points):
    """The points of one decoded block, and the step between its timestamps when the block
    is stored as evenly spaced (timestamp code 2, two points or more), else 0."""

    step: int = 0


def decode(
    first: int, n: int, fmt: int, ts: bytes, vals: bytes, mask: bytes | None
) -> DecodedBlock:
    """The points of one block (fresh, writable arrays)."""
    times = np.empty(n, np.uint64)
    values = np.empty(n, np.float64)
    is_int = np.empty(n, np.bool_)
    _decode_into((first, n, fmt, ts, vals, mask), times, values, is_int)
    step = int.from_bytes(ts, "little") if (fmt & TS_MASK) == TS_STEP and n > 1 else 0
    return DecodedBlock(times.view(np.int64), values, is_int, step)


def decode_run(rows: Sequence[Sequence[Any]], start: int, end: int) -> Points:
    """The points with ``start <= ts < end`` of consecutive blocks given as rows (first, n,
    fmt, ts, vals, mask): what ``clip(concat([decode(*row) ...]), start, end)`` gives, but
    decoded straight into one set of arrays."""
    if not rows:
        return Points.empty()
    if len(rows) == 1:
        return clip(decode(*rows[0]), start, end)
    total = sum(int(row[1]) for row in rows)
    times = np.empty(total, np.uint64)
    values = np.empty(total, np.float64)
    is_int = np.empty(total, np.bool_)
    lo = 0
    for row in rows:
        hi = lo + int(row[1])
        _decode_into(row, times[lo:hi], values[lo:hi], is_int[lo:hi])
        lo = hi
    return clip(Points(times.view(np.int64), values, is_int), start, end)


class BlockCache:
    """A bounded LRU of decoded blocks, shared by the threads of one store.

    The key is whatever names a block's content for good (the SQLite store: its rowid and
    the random generation that every write of a row sets), so that an entry never needs
    invalidating: a rewritten block has a new key and its old entry ages out.  The cached
    arrays are read-only and never leave the cache (``assemble`` copies them).
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self._entries: OrderedDict[Hashable, Points] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Points | None:
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
            return found

    def get_many(self, keys: Sequence[Hashable]) -> list[Points | None]:
        """``get`` of each key, under one lock."""
        with self._lock:
            found = [self._entries.get(key) for key in keys]
            for key, points in zip(keys, found, strict=True):
                if points is not None:
                    self._entries.move_to_end(key)
            return found

    def put(self, key: Hashable, points: Points) -> None:
        weight = _weight(points)
        if weight > self.max_bytes:
            return
        for array in (points.ts, points.values, points.is_int):
            array.flags.writeable = False
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self.size -= _weight(old)
            self._entries[key] = points
            self.size += weight
            while self.size > self.max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self.size -= _weight(evicted)

    def __len__(self) -> int:
        return len(self._entries)


def _weight(points: Points) -> int:
    return int(points.ts.nbytes + points.values.nbytes + points.is_int.nbytes) + 200


def assemble(parts: Sequence[Points], start: int, end: int) -> Points:
    """The points with ``start <= ts < end`` of consecutive blocks' points, in fresh arrays."""
    if not parts:
        return Points.empty()
    lo = int(np.searchsorted(parts[0].ts, start, "left"))
    hi = int(np.searchsorted(parts[-1].ts, end, "left"))
    if len(parts) == 1:
        only = parts[0]
        return Points(only.ts[lo:hi].copy(), only.values[lo:hi].copy(), only.is_int[lo:hi].copy())
    first, last = parts[0], parts[-1]
    middle = parts[1:-1]
    return Points(
        np.concatenate([first.ts[lo:], *(p.ts for p in middle), last.ts[:hi]]),
        np.concatenate([first.values[lo:], *(p.values for p in middle), last.values[:hi]]),
        np.concatenate([first.is_int[lo:], *(p.is_int for p in middle), last.is_int[:hi]]),
    )


def clip_pieces(parts: Sequence[Points], start: int, end: int) -> list[Piece]:
    """The points with ``start <= ts < end`` of consecutive blocks' points, as views of their
    arrays (the empty ones left out), with the steps of evenly spaced blocks: what
    ``assemble`` gives, not copied into one."""
    if not parts:
        return []
    first, last = parts[0], parts[-1]
    lo = first.ts.searchsorted(start)
    hi = last.ts.searchsorted(end)
    if len(parts) == 1:
        if hi <= lo:
            return []
        return [(first.ts[lo:hi], first.values[lo:hi], first.is_int[lo:hi], _step(first))]
    pieces: list[Piece] = []
    if lo < first.ts.shape[0]:
        pieces.append((first.ts[lo:], first.values[lo:], first.is_int[lo:], _step(first)))
    pieces += [(p.ts, p.values, p.is_int, _step(p)) for p in parts[1:-1]]
    if hi:
        pieces.append((last.ts[:hi], last.values[:hi], last.is_int[:hi], _step(last)))
    return pieces


def _step(points: Points) -> int:
    return points.step if type(points) is DecodedBlock else 0


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
        encode(
            points.ts[a:b],
            points.values[a:b],
            points.is_int[a:b],
            compress=not (at_end and b == n and b - a < cap),
        )
        for a, b in itertools.pairwise(cuts)
    ]
