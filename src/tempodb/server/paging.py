"""Paging of the 1.0 reads (spec "Paging"): stateless cursors, the ``Link`` header, and the
reading of a range window by window in pieces that never split an item.

A cursor is ``base64url(JSON [position, check])``: the position is where the next page
starts (an epoch-ms key of a read: a timestamp or a bucket label; a series key of the
listing), and the check a CRC-32 of the request's path and parameters but ``cursor`` and
``limit``, so that a token pasted onto another query is refused (400) rather than read in
a meaning it never had.  The server keeps nothing for an open cursor.

Reads come from a :class:`Source`: the points (or interpolated values) of one or more series
in consecutive time windows sized to about ``WINDOW_POINTS`` points, read together (one store
call a window), or for the aggregate their fold into one series, window by window.  The
windows of a source that groups by an interval end on bucket boundaries; :func:`chunks`
regroups any others so that no item (a timestamp, or a bucket) is split between two pieces;
:func:`page` finds where a page of ``limit``
items ends and hands its pieces on, keeping them from that first pass when they are small
(one read) or reading them again otherwise (memory stays about one window).
"""

from __future__ import annotations

import base64
import binascii
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlencode

import numpy as np
import numpy.typing as npt
import orjson

from tempodb.folds import aggregate, aggregate_pieces
from tempodb.interpolate import interpolate
from tempodb.rollup import (
    Interval,
    boundaries,
    bucket_labels,
    bucket_starts,
    next_boundaries,
)
from tempodb.server.context import Context
from tempodb.server.http import Request, bad_request
from tempodb.storage.base import SeriesRecord
from tempodb.zones import MS_PER_DAY, Zone, excerpt

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
Bool = npt.NDArray[np.bool_]
#: One series' points: timestamps (ascending), values, integer-ness.
Arrays = tuple[I64, F64, Bool]

CURSOR = "cursor"
#: About this many points of each series are read at a time.
WINDOW_POINTS = 1 << 16
#: At most about this many points of all the series of a read at a time.
MAX_WINDOW_POINTS = 1 << 20
#: A page whose pieces hold at most this many points is read once; a larger one twice.
KEEP_POINTS = 1 << 21

# -- cursors ---------------------------------------------------------------------------------


def _check(request: Request) -> int:
    pairs = sorted((k, v) for k, v in request.query.pairs if k not in (CURSOR, "limit"))
    return zlib.crc32(orjson.dumps(["/".join(request.segments), pairs]))


def encode_cursor(request: Request, position: int | str) -> str:
    """The token of a page of this query that starts at ``position``."""
    raw = orjson.dumps([position, _check(request)])
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(request: Request) -> int | str | None:
    """The position of the request's ``cursor`` (None without one); 400 when it is not a
    token of this query."""
    token = request.query.get(CURSOR)
    if token is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        position, check = orjson.loads(raw)
    except (ValueError, TypeError, binascii.Error):
        message = f"Invalid cursor: {excerpt(token)} (use the Link of the previous page)"
        raise bad_request(message) from None
    if check != _check(request) or isinstance(position, bool):
        raise bad_request(
            f"Invalid cursor: {excerpt(token)} (it belongs to another query; use the Link of the "
            "previous page with the same parameters)"
        )
    if not isinstance(position, int | str):
        raise bad_request(f"Invalid cursor: {excerpt(token)}")
    return position


def next_link(request: Request, position: int | str) -> dict[str, str]:
    """The ``Link`` header to the page that starts at ``position``."""
    pairs = [(k, v) for k, v in request.query.pairs if k != CURSOR]
    pairs.append((CURSOR, encode_cursor(request, position)))
    target = "/" + "/".join(request.segments) + "?" + urlencode(pairs)
    return {"Link": f'<{target}>; rel="next"'}


def parse_limit(request: Request) -> int | None:
    """The ``limit`` parameter: None, or a whole number from 1 (400 otherwise)."""
    text = request.query.get("limit")
    if text is None:
        return None
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise bad_request(f"Invalid limit: {excerpt(text)} (a whole number from 1)")
    return int(text)


# -- sources ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Interpolation:
    function: str
    period: Interval


@dataclass(frozen=True)
class Source:
    """The points of ``records`` in ``[start, end)``, interpolated if asked; items are
    timestamps, or buckets of ``group`` (aligned by ``start`` in ``zone``)."""

    ctx: Context
    records: list[SeriesRecord]
    start: int
    end: int
    zone: Zone
    group: Interval | None = None
    interpolation: Interpolation | None = None
    #: Whether the store may keep the decoded blocks for later reads (as 0.5 reads do but
    #: for long raw ones, which would only push the others out).
    cache: bool = True
    #: The first window's span (the next ones adapt to the density seen).
    first_span: int = MS_PER_DAY
    #: About the points a page needs, when known (a page of raw items): windows no larger.
    page_points: int | None = None
    #: The aggregate's fold: the series folded into one at each timestamp, window by window
    #: (each window then holds that one series).
    fold: str | None = None
    #: Whether the first window is sized from the store's estimate of the points in the
    #: range, when the range is longer than ``first_span`` (a whole answer, not a page).
    estimate: bool = False

    def windows(self, lo: int, hi: int) -> Iterator[tuple[int, list[Arrays]]]:
        """Consecutive windows covering ``[lo, hi)``: where each ends, and each series' values
        in it."""
        span = self.first_span
        # Buckets are small to render, so a rollup reads more at a time than a raw read.
        per_series = WINDOW_POINTS if self.group is None else 4 * WINDOW_POINTS
        target = min(per_series * max(1, len(self.records)), MAX_WINDOW_POINTS)
        if self.page_points is not None:
            target = max(1, min(target, self.page_points))
        if self.estimate and hi - lo > span:
            ids = [record.id for record in self.records]
            found = self.ctx.store.estimate_points(self.ctx.db.id, ids, lo, hi)
            if found is not None:
                span = hi - lo if found <= target else max(60_000, (hi - lo) * target // found)
        cap = None
        if self.interpolation is not None:
            period = self.interpolation.period
            cap = WINDOW_POINTS * (period.step_ms or period.count * MS_PER_DAY)
        while lo < hi:
            high = min(hi, lo + span)
            if self.group is not None and high < hi:
                high = self._bucket_edge(lo, high, hi)
            window, count = self._read_window(lo, high)
            yield high, window
            if cap is not None and count == 0 and high < hi:
                found = self._skip_to(high)
                if found is None or found >= hi:
                    return
                lo = max(high, found)
                continue
            scale = target / max(count, 1)
            span = max(60_000, int((high - lo) * min(32.0, max(0.125, scale))))
            if cap is not None:
                span = min(span, cap)
            lo = high

    def _bucket_edge(self, lo: int, high: int, hi: int) -> int:
        """Where a window from ``lo`` that would end at ``high`` ends on a bucket boundary
        instead, so that no bucket goes on into the next window: the start of the bucket
        holding ``high`` when it is after ``lo``, else that bucket's end."""
        assert self.group is not None
        at = np.array([high], np.int64)
        label = bucket_labels(at, interval=self.group, zone=self.zone, start_ms=self.start)
        if int(label[0]) <= lo:
            label = next_boundaries(label, self.group, self.zone, start_ms=self.start)
        return min(hi, int(label[0]))

    def ends_bucket(self, at: int) -> bool:
        """Whether a bucket starts at ``at`` (no bucket holds instants on both sides)."""
        assert self.group is not None
        label = bucket_labels(
            np.array([at], np.int64), interval=self.group, zone=self.zone, start_ms=self.start
        )
        return int(label[0]) == at

    def _skip_to(self, at: int) -> int | None:
        """Where interpolated values may start again from ``at``: ``at`` itself while some
        series has points on both sides of it, else the next point of any series (before it,
        each series is before its first point or after its last: no values); None: none."""
        store, db = self.ctx.store, self.ctx.db.id
        times = []
        for record in self.records:
            after = store.single_value(db, record.id, at, "after")
            if after is None or after[0] >= self.end:
                continue
            before = store.single_value(db, record.id, at - 1, "before")
            if before is not None and before[0] >= self.start:
                return at
            times.append(after[0])
        return min(times) if times else None

    def _read_window(self, lo: int, hi: int) -> tuple[list[Arrays], int]:
        """Each series' values in ``[lo, hi)`` (their fold with ``fold``), and how many
        values there were: the points read together (one snapshot), or the interpolated
        values of each."""
        if self.interpolation is not None:
            window = [self._read(record, lo, hi) for record in self.records]
            count = sum(int(arrays[0].size) for arrays in window)
            return (window if self.fold is None else [aggregate(window, self.fold)]), count
        store, db = self.ctx.store, self.ctx.db.id
        ids = [record.id for record in self.records]
        if self.fold is None:
            found = store.read_points_many(db, ids, lo, hi, cache=self.cache)
            window = [(points.ts, points.values, points.is_int) for points in found]
            count = sum(int(arrays[0].size) for arrays in window)
        else:
            pieces = store.read_pieces_many(db, ids, lo, hi, cache=self.cache)
            count = sum(piece[0].shape[0] for series in pieces for piece in series)
            window = [aggregate_pieces(pieces, self.fold)]
        if self.ctx.metrics is not None:
            self.ctx.metrics.read(count)
        return window, count

    def _read(self, record: SeriesRecord, lo: int, hi: int) -> Arrays:
        store, db = self.ctx.store, self.ctx.db.id
        points = store.read_points(db, record.id, lo, hi, cache=self.cache)
        if self.ctx.metrics is not None:
            self.ctx.metrics.read(len(points))
        if self.interpolation is None:
            return points.ts, points.values, points.is_int
        # The neighbours just outside the window (within the range) hold the edges' values.
        ts, vals, ints = [points.ts], [points.values], [points.is_int]
        before = store.single_value(db, record.id, lo - 1, "before") if lo > self.start else None
        if before is not None and before[0] >= self.start:
            ts.insert(0, np.array([before[0]], np.int64))
            vals.insert(0, np.array([before[1]], np.float64))
            ints.insert(0, np.array([isinstance(before[1], int)]))
        after = store.single_value(db, record.id, hi, "after") if hi < self.end else None
        if after is not None and after[0] < self.end:
            ts.append(np.array([after[0]], np.int64))
            vals.append(np.array([after[1]], np.float64))
            ints.append(np.array([isinstance(after[1], int)]))
        grid = boundaries(
            self.interpolation.period, self.zone, start_ms=self.start, lo=max(lo, self.start), hi=hi
        )
        return interpolate(
            np.concatenate(ts),
            np.concatenate(vals),
            np.concatenate(ints),
            grid,
            self.interpolation.function,
        )

    def keys(self, piece: list[Arrays]) -> I64:
        """The distinct items of a piece, ascending (timestamps or bucket labels)."""
        parts = [
            arrays[0]
            if self.group is None
            else bucket_starts(arrays[0], interval=self.group, zone=self.zone, start_ms=self.start)[
                0
            ]
            for arrays in piece
            if arrays[0].size
        ]
        if not parts:
            return np.zeros(0, np.int64)
        return parts[0] if len(parts) == 1 else np.unique(np.concatenate(parts))


def _cut(piece: list[Arrays], below: int) -> tuple[list[Arrays], list[Arrays]]:
    """A piece split at a timestamp: what is before it, and the rest."""
    head, tail = [], []
    for ts, vals, ints in piece:
        at = int(np.searchsorted(ts, below, side="left"))
        head.append((ts[:at], vals[:at], ints[:at]))
        tail.append((ts[at:], vals[at:], ints[at:]))
    return head, tail


def chunks(source: Source, lo: int, hi: int) -> Iterator[list[Arrays]]:
    """The windows of ``[lo, hi)`` regrouped so that no bucket spans two pieces."""
    carry: list[Arrays] | None = None
    for high, window in source.windows(lo, hi):
        if carry is not None:
            window = [
                (
                    np.concatenate((a[0], b[0])),
                    np.concatenate((a[1], b[1])),
                    np.concatenate((a[2], b[2])),
                )
                for a, b in zip(carry, window, strict=True)
            ]
            carry = None
        # No bucket goes on past the last window, nor past one that ends on a boundary.
        if source.group is None or high >= hi or source.ends_bucket(high):
            yield window
            continue
        lasts = [int(arrays[0][-1]) for arrays in window if arrays[0].size]
        if not lasts:
            continue
        last = bucket_labels(
            np.array([max(lasts)], np.int64),
            interval=source.group,
            zone=source.zone,
            start_ms=source.start,
        )
        head, carry = _cut(window, int(last[0]))
        yield head
    if carry is not None:
        yield carry


def page(source: Source, lo: int, limit: int | None) -> tuple[int | None, Iterator[list[Arrays]]]:
    """The pieces of the page of at most ``limit`` items from ``lo``, and where the next page
    starts (None when this one holds the rest)."""
    if limit is None:
        return None, chunks(source, lo, source.end)
    kept: list[list[Arrays]] | None = []
    kept_points = seen = 0
    for piece in chunks(source, lo, source.end):
        keys = source.keys(piece)
        if seen + keys.size > limit:
            following = int(keys[limit - seen])
            if kept is None:
                return following, chunks(source, lo, following)
            kept.append(_cut(piece, following)[0])
            return following, iter(kept)
        seen += int(keys.size)
        if kept is not None:
            kept.append(piece)
            kept_points += sum(int(arrays[0].size) for arrays in piece)
            if kept_points > KEEP_POINTS:
                kept = None
    return None, (iter(kept) if kept is not None else chunks(source, lo, source.end))
