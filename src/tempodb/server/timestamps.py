"""Vectorised parsing of request timestamps into int64 epoch milliseconds.

A write body carries thousands of ``"t"`` texts, almost always in one fixed-width shape such as
``2012-01-01T00:00:00.000+0000``.  ``parse_timestamps_ms`` joins them into one ASCII buffer,
groups the items by length and decodes every fixed-width shape of the spec §3.1 grammar with
numpy: one row of bytes per character position (a transposed ``(length, items)`` matrix), a
per-position range check against the shape's template, digits folded into fields by one
matrix product, calendar validation (days per month, leap years), days-from-civil arithmetic
and the offset subtracted.  Items that no fixed-width shape accepts go through the scalar
``tempodb.timeutil.parse_timestamp_ms``, which also decides what is invalid, so both parsers
agree on every input.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tempodb.timeutil import MAX_MS, MIN_MS, parse_timestamp_ms
from tempodb.zones import excerpt

__all__ = ["InvalidTimestamp", "parse_timestamps_ms"]

Int64Array = npt.NDArray[np.int64]
_UInt8Matrix = npt.NDArray[np.uint8]
_BoolArray = npt.NDArray[np.bool_]


class InvalidTimestamp(ValueError):
    """An item of a batch is not a valid timestamp; ``index`` is its position."""

    def __init__(self, index: int, text: object) -> None:
        super().__init__(f"Invalid timestamp: {excerpt(str(text))}")
        self.index = index
        self.text = text


_T, _SPACE, _COMMA = ord("T"), ord(" "), ord(",")


@dataclass(frozen=True, eq=False)
class _Shape:
    """One fixed-width spelling of the grammar, e.g. ``DDDD-DD-DDTDD:DD:DD.DDDSDDDD``."""

    template: str
    low: _UInt8Matrix  # (length, 1): smallest byte allowed at each position
    span: _UInt8Matrix  # (length, 1): allowed bytes are low .. low + span
    time: bool  # hh:mm present (positions 11 and 14)
    seconds: bool  # ss present (position 17)
    fraction: int  # fraction digits from position 20 (0: none)
    sign: int  # position of the offset's "+" / "-" (-1: no numeric offset)
    offset_minutes: int  # position of the offset's mm (-1: none)


def _shape(template: str) -> _Shape:
    """Compile a template: D digit, T "T"/" ", S "+"/"-", any other character literal."""
    size = len(template)
    low = np.zeros(size, dtype=np.uint8)
    span = np.zeros(size, dtype=np.uint8)
    for pos, char in enumerate(template):
        if char == "D":
            low[pos], span[pos] = ord("0"), 9
        elif char == "T":
            low[pos], span[pos] = _SPACE, _T - _SPACE
        elif char == "S":
            low[pos], span[pos] = ord("+"), 2
        else:
            low[pos] = ord(char)
    seconds = template[16:17] == ":"
    fraction = len(template[20:].split("S")[0].rstrip("Z")) if template[19:20] == "." else 0
    sign = template.find("S")
    offset_minutes = -1
    if sign >= 0 and size > sign + 3:
        offset_minutes = sign + (4 if template[sign + 3] == ":" else 3)
    return _Shape(
        template=template,
        low=low[:, None],
        span=span[:, None],
        time=size > 10,
        seconds=seconds,
        fraction=fraction,
        sign=sign,
        offset_minutes=offset_minutes,
    )


def _all_shapes() -> dict[int, list[_Shape]]:
    """Every fixed-width shape of the grammar, by length, most common spelling first."""
    offsets = ["Z", "SDDDD", "SDD:DD", "", "SDD"]
    fractions = [3, 0, 6, 1, 2, 4, 5, 7, 8, 9]
    ranked: list[tuple[int, str]] = []
    for f_rank, fraction in enumerate(fractions):
        tail = "." + "D" * fraction if fraction else ""
        for o_rank, offset in enumerate(offsets):
            ranked.append((f_rank * 10 + o_rank, "DDDD-DD-DDTDD:DD:DD" + tail + offset))
    for o_rank, offset in enumerate(offsets):
        ranked.append((1000 + o_rank, "DDDD-DD-DDTDD:DD" + offset))
    ranked.append((2000, "DDDD-DD-DD"))
    by_length: dict[int, list[_Shape]] = {}
    for _rank, template in sorted(ranked):
        by_length.setdefault(len(template), []).append(_shape(template))
    return by_length


def _month_tables() -> tuple[npt.NDArray[np.int32], npt.NDArray[np.uint8]]:
    """Per ``year * 13 + month`` (years 0-9999, months 0-12): epoch day of the month's first
    day, and its number of days (0 for year 0 and month 0, so that no day passes)."""
    years = np.arange(10_000, dtype=np.int64)[:, None]
    months = np.arange(13, dtype=np.int64)[None, :]
    # Days from civil (proleptic Gregorian), eras of 400 years starting on March 1st.
    y = years - (months <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * ((months + 9) % 12) + 2) // 5
    first = era * 146_097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719_468
    leap = (years % 4 == 0) & ((years % 100 != 0) | (years % 400 == 0))
    lengths = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])[None, :]
    lengths = lengths + ((months == 2) & leap)
    lengths[0, :] = 0
    return first.astype(np.int32).ravel(), lengths.astype(np.uint8).ravel()


_SHAPES = _all_shapes()
_MAX_LENGTH = max(_SHAPES)
_FIRST_DAY, _MONTH_LENGTH = _month_tables()
_MS_PER_DAY = 86_400_000


def _decode(rows: _UInt8Matrix, shape: _Shape) -> tuple[_BoolArray, Int64Array]:
    """Decode a ``(length, items)`` byte matrix in one shape: (accepted mask, epoch ms)."""
    values = rows - shape.low  # digit values on digit rows; wraps around below the range
    ok: _BoolArray = ~np.logical_or.reduce(values > shape.span, axis=0)

    def pair(pos: int) -> npt.NDArray[np.uint16]:
        number: npt.NDArray[np.uint16] = values[pos].astype(np.uint16) * 10 + values[pos + 1]
        return number

    year = pair(0) * 100 + pair(2)
    month = pair(5)
    day = pair(8)
    ok &= month <= 12
    index = np.minimum(year, 9999).astype(np.int32) * 13 + np.minimum(month, 12)
    ok &= (day >= 1) & (day <= _MONTH_LENGTH[index])
    ms = _FIRST_DAY[index].astype(np.int64)
    ms += day - 1
    ms *= _MS_PER_DAY
    if shape.time:
        sep = rows[10]
        ok &= (sep == _T) | (sep == _SPACE)
        hour, minute = pair(11), pair(14)
        ok &= (hour <= 23) & (minute <= 59)
        seconds = (hour * 60 + minute).astype(np.int32) * 60
        if shape.seconds:
            second = pair(17)
            ok &= second <= 59
            seconds += second
        millis = seconds * 1000
        for k in range(min(shape.fraction, 3)):
            millis += values[20 + k].astype(np.int32) * 10 ** (2 - k)
        if shape.sign >= 0:
            ok &= rows[shape.sign] != _COMMA
            off_h = pair(shape.sign + 1)
            ok &= off_h <= 23
            offset = off_h * 60
            if shape.offset_minutes >= 0:
                off_m = pair(shape.offset_minutes)
                ok &= off_m <= 59
                offset += off_m
            # "+" is 43 and "-" is 45: subtract the offset for "+", add it for "-".
            millis += (rows[shape.sign].astype(np.int32) - 44) * offset.astype(np.int32) * 60_000
        ms += millis
    ok &= (ms >= MIN_MS) & (ms <= MAX_MS)
    return ok, ms


def _decode_group(
    rows: _UInt8Matrix, index: Int64Array | None, shapes: list[_Shape], out: Int64Array
) -> Int64Array:
    """Decode the items of one length into ``out``; return the indices left over."""
    for shape in shapes:
        ok, ms = _decode(rows, shape)
        if index is None:
            if ok.all():
                out[:] = ms
                return np.empty(0, dtype=np.int64)
            index = np.arange(len(out), dtype=np.int64)
        out[index[ok]] = ms[ok]
        rest = ~ok
        index, rows = index[rest], rows[:, rest]
        if not len(index):
            break
    return np.arange(len(out), dtype=np.int64) if index is None else index


def parse_timestamps_ms(texts: Sequence[object]) -> Int64Array:
    """Parse request timestamps (spec §3.1 grammar) into int64 epoch milliseconds.

    Gives exactly what ``tempodb.timeutil.parse_timestamp_ms`` gives item by item.  Raises
    ``InvalidTimestamp`` for the first item (in order) that is not a valid timestamp ``str``.

    >>> parse_timestamps_ms(["1970-01-01T00:00:00.001Z", "1970-01-01"]).tolist()
    [1, 0]
    """
    count = len(texts)
    out = np.empty(count, dtype=np.int64)
    if not count:
        return out
    try:
        joined = "\n".join(texts)  # type: ignore[arg-type]
    except TypeError:
        bad = next(i for i, text in enumerate(texts) if not isinstance(text, str))
        parse_timestamps_ms(texts[:bad])
        raise InvalidTimestamp(bad, texts[bad]) from None
    # One byte per character: non-ASCII characters become "?", which no shape accepts.
    buffer = np.frombuffer(joined.encode("ascii", "replace"), dtype=np.uint8)
    if _parse_uniform(buffer, count, len(texts[0]), out):  # type: ignore[arg-type]
        return out
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=count)  # type: ignore[arg-type]
    starts = np.zeros(count, dtype=np.int64)
    np.cumsum(lengths[:-1] + 1, out=starts[1:])
    clipped = np.minimum(lengths, _MAX_LENGTH + 1)
    handled = np.zeros(count, dtype=np.bool_)
    leftovers: list[Int64Array] = []
    for size in np.flatnonzero(np.bincount(clipped)).tolist():
        shapes = _SHAPES.get(size)
        if shapes is None:
            continue
        index = np.flatnonzero(clipped == size)
        handled[index] = True
        # Every item of this length is a window of the buffer: copy rows, then transpose.
        windows = np.lib.stride_tricks.sliding_window_view(buffer, size)
        rows = np.ascontiguousarray(windows[starts[index]].T)
        group = np.empty(len(index), dtype=np.int64)
        rest = _decode_group(rows, None, shapes, group)
        out[index] = group
        leftovers.append(index[rest])
    leftovers.append(np.flatnonzero(~handled))
    pending = np.concatenate(leftovers)
    pending.sort()
    for i in pending.tolist():
        text = texts[i]
        try:
            out[i] = parse_timestamp_ms(text)
        except ValueError:
            raise InvalidTimestamp(i, text) from None
    return out


def _parse_uniform(buffer: _UInt8Matrix, count: int, size: int, out: Int64Array) -> bool:
    """Decode the common batch of one length into ``out``; False if that is not the case.

    ``buffer`` holds the items joined by newlines.  If it has the length of ``count`` items of
    ``size`` characters and every ``size`` window between the would-be separators is a valid
    timestamp (so contains no newline), its ``count - 1`` newlines can only be the joining
    ones, at the would-be separators: every item has this length, and no per-item length
    needs to be computed.
    """
    shapes = _SHAPES.get(size)
    step = size + 1
    if shapes is None or len(buffer) != count * step - 1:
        return False
    items = np.lib.stride_tricks.as_strided(
        buffer, shape=(count, size), strides=(step, 1), writeable=False
    )
    rows = np.ascontiguousarray(items.T)
    return not len(_decode_group(rows, None, shapes, out))
