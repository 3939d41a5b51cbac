"""The points of the SQLite store: block rows, and every change the writer makes to them.

Blocks
    The format, the invariants and how writes re-chunk a series are those of
    ``tempodb.storage.blocks``; each block is a ``block`` row of one ``sid``, and the blocks
    hold at most ``cap`` points (``BLOCK_POINTS`` unless configured).

The head of a series: its plain last block
    Fresh points are where writes go, so the last block of a series is this store's write
    head: while it holds fewer than ``TAIL_POINTS`` (256) points it stays in the plain codes,
    and later points join it without decoding it: its blobs grow by the new points' bytes
    (``SET ts = CAST(ts || ? AS BLOB)``, byte for byte: the file's text encoding is never
    involved, see ``blocks.plain_append``).  Once it is full, the next write after it starts
    a new plain block and *folds* the old one: it is compressed in place, in the same
    transaction, so a crash never sees half of it.  A write that lands before the last point
    of a series (an overwrite, an increment of old points, an insert into the past) merges
    with the blocks its time span overlaps and stores them again (``merge``).

Writes of many series (``PointWriter.write``)
    The cost of a write is kept per request, not per series: the series of all its refs are
    resolved (and the missing ones created) in a few statements (``series.resolve``), the
    points are grouped by series with a handful of numpy calls (no sort when they come
    grouped and in time order, as writers send them), the last blocks of the series not in
    the writer's cache are read in one statement, and then every series whose points all go
    after its last block (the common case) is encoded at once: the offsets and values of all
    the points are turned into bytes with one numpy call each, and each series takes its
    slice.  New blocks go in with one ``executemany`` (their rowids read back in one query,
    so that the next write can grow them from the cache), growths with one ``executemany``.  Only a
    series whose points overlap its blocks takes the per-series merge.  A write of at most
    ``SMALL_WRITE`` points takes a per-point Python path instead (numpy's per-call costs
    dwarf the work there), and small writes whose series and last blocks are all cached are
    planned without a statement at all (``PointWriter.plan``, ``writer.Writer.submit``).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any, Final

import numpy as np

from tempodb.storage.base import (
    MAX_EXACT_INT,
    BoolArray,
    Float64Array,
    Int64Array,
    Points,
    WriteBatch,
    check_increment,
    exact_sums,
    merge_points,
)
from tempodb.storage.blocks import (
    INT_ALL,
    INT_MIXED,
    TS_STEP,
    TS_U32,
    VAL_DECIMAL,
    VAL_I32,
    Block,
    Meta,
    PyPoint,
    choose_run,
    concat,
    cut,
    decode,
    plain_append,
    plain_append_one,
    plain_block,
    split,
)
from tempodb.storage.sqlite import series
from tempodb.storage.sqlite.writer import Growth, Tail, WriterCache

#: Small writes after a block this small join it; after a bigger one they start a new block.
TAIL_POINTS: Final = 256
#: Writes of at most this many points take the per-point Python path (``_write_small``).
SMALL_WRITE: Final = 64

BLOCK_COLUMNS: Final = "first, n, fmt, ts, vals, mask"
#: The blocks that may hold ``?2 <= ts < ?3`` of series ``?1``, in time order (the block
#: holding ``?2`` starts at the largest ``first <= ?2``).
READ: Final = (
    "SELECT {columns} FROM block WHERE sid = ?1 AND first < ?3 AND last >= ?2 "
    "AND first >= coalesce((SELECT first FROM block WHERE sid = ?1 AND first <= ?2 "
    "ORDER BY first DESC LIMIT 1), ?2) ORDER BY first"
)
#: The last block of each series of a JSON array of sids (series without blocks are absent).
_TAILS: Final = (
    "SELECT b.sid, b.rowid, b.first, b.last, b.n, b.fmt FROM json_each(?) AS j "
    "JOIN block AS b ON b.rowid = "
    "(SELECT rowid FROM block WHERE sid = j.value ORDER BY first DESC LIMIT 1)"
)
_INSERT: Final = (
    "INSERT INTO block (sid, first, last, n, fmt, ts, vals, mask, gen) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_U32_LIMIT: Final = 2**32
_INT32_MIN: Final = -(2**31)
_INT32_MAX: Final = 2**31 - 1


def run_meta(conn: sqlite3.Connection, sid: int, lo: int, hi: int) -> list[Meta]:
    """The blocks holding any timestamp in ``[lo, hi]``, in time order."""
    rows = conn.execute(
        "SELECT rowid, first, last, n FROM block WHERE sid = ?1 AND first <= ?3 AND last >= ?2 "
        "AND first >= coalesce((SELECT first FROM block WHERE sid = ?1 AND first <= ?2 "
        "ORDER BY first DESC LIMIT 1), ?2) ORDER BY first",
        (sid, lo, hi),
    ).fetchall()
    return [Meta(*row) for row in rows]


def _neighbour(conn: sqlite3.Connection, sid: int, ts: int, *, before: bool) -> Meta | None:
    """The block starting closest before ``ts`` (``before``) or after it."""
    sql = (
        "SELECT rowid, first, last, n FROM block WHERE sid = ? AND first < ? "
        "ORDER BY first DESC LIMIT 1"
        if before
        else "SELECT rowid, first, last, n FROM block WHERE sid = ? AND first > ? "
        "ORDER BY first LIMIT 1"
    )
    row = conn.execute(sql, (sid, ts)).fetchone()
    return None if row is None else Meta(*row)


def _load(conn: sqlite3.Connection, run: Sequence[Meta]) -> list[Points]:
    parts = []
    for meta in run:
        row = conn.execute(
            f"SELECT {BLOCK_COLUMNS} FROM block WHERE rowid = ?", (meta.handle,)
        ).fetchone()
        parts.append(decode(*row))
    return parts


def _update(conn: sqlite3.Connection, rowid: int, block: Block, gen: int) -> None:
    """Store ``block`` in place of the block row ``rowid`` (same ``first``)."""
    conn.execute(
        "UPDATE block SET last = ?, n = ?, fmt = ?, ts = ?, vals = ?, mask = ?, gen = ? "
        "WHERE rowid = ?",
        (block.last, block.n, block.fmt, block.ts, block.vals, block.mask, gen, rowid),
    )


def _drop(conn: sqlite3.Connection, run: Sequence[Meta]) -> None:
    conn.executemany("DELETE FROM block WHERE rowid = ?", [(meta.handle,) for meta in run])


def _group(
    batch: WriteBatch, sids: dict[int, int], increment: bool
) -> dict[int, list[PyPoint]] | None:
    """A small batch's points per series (sid), sorted, one per timestamp, leaving out refs
    without a sid (skipped): a write keeps the last value given, as ``fold_batch`` does;
    None for an increment that gives one timestamp twice (``_sorted_unique`` sums those)."""
    grouped: dict[int, dict[int, PyPoint]] = {}
    for ref, ts, value, is_int in zip(
        batch.ref_index.tolist(),
        batch.ts.tolist(),
        batch.values.tolist(),
        batch.is_int.tolist(),
        strict=True,
    ):
        sid = sids.get(ref)
        if sid is None:
            continue
        points = grouped.setdefault(sid, {})
        if increment and ts in points:
            return None
        points[ts] = (ts, value, is_int)
    return {sid: [points[ts] for ts in sorted(points)] for sid, points in grouped.items()}


def _appended(points: list[PyPoint], increment: bool) -> list[PyPoint]:
    """What appending ``points`` stores: themselves, but after an increment an integer beyond
    2**53 is no exact integer any more (as ``merge_points`` decides)."""
    if not increment:
        return points
    return [(ts, value, is_int and abs(value) <= MAX_EXACT_INT) for ts, value, is_int in points]


def _sorted_unique(
    codes: Int64Array, ts: Int64Array, values: Float64Array, is_int: BoolArray, increment: bool
) -> tuple[Int64Array, Int64Array, Float64Array, BoolArray]:
    """The points grouped by series code, each series in time order, one point per (series,
    timestamp): a write keeps the last value given, an increment adds them in order
    (``check_increment``: ValueOutOfRange when a sum is not what a write could store).
    Points that come grouped and in order, with no series twice, are returned as they are."""
    if codes.shape[0] > 1:
        change = codes[1:] != codes[:-1]
        if bool(np.all(change | (ts[1:] > ts[:-1]))):
            heads = codes[np.concatenate(([0], np.flatnonzero(change) + 1))]
            ordered = np.sort(heads)
            if bool(np.all(ordered[1:] != ordered[:-1])):  # no series twice
                return codes, ts, values, is_int
    else:
        return codes, ts, values, is_int
    order = np.lexsort((ts, codes))  # stable: repeated timestamps stay in request order
    codes, ts, values, is_int = codes[order], ts[order], values[order], is_int[order]
    fresh = np.concatenate(([True], (codes[1:] != codes[:-1]) | (ts[1:] != ts[:-1])))
    if bool(fresh.all()):
        return codes, ts, values, is_int
    starts = np.flatnonzero(fresh)
    if increment:
        with np.errstate(over="ignore", invalid="ignore"):
            sums = np.add.reduceat(values, starts)
        sums_int = np.logical_and.reduceat(is_int, starts)
        exact = None
        if bool(sums_int.any()):  # float64 rounds 2**53 + 1 back to 2**53
            exact = exact_sums(np.where(is_int, values, 0.0), starts)[sums_int]
        check_increment(ts[starts], sums, sums_int, exact)
        values, is_int = sums, sums_int
    else:
        last = np.concatenate((starts[1:] - 1, [ts.shape[0] - 1]))
        values, is_int = values[last], is_int[last]
    return codes[starts], ts[starts], values, is_int


class PointWriter:
    """Every change of the points, run by the writer thread inside its transaction.

    Args:
        cache: the writer's cache (series and last blocks).
        cap: the most points a block holds.
    """

    def __init__(self, cache: WriterCache, cap: int) -> None:
        self.cache = cache
        self.cap = cap

    # -- writes ------------------------------------------------------------------------------

    def write(
        self, conn: sqlite3.Connection, db: int, batch: WriteBatch, increment: bool
    ) -> tuple[int, ...]:
        """Store a batch (``Store.write_points``); the skipped refs."""
        used = np.flatnonzero(np.bincount(batch.ref_index, minlength=len(batch.refs))).tolist()
        resolved = series.resolve(
            conn,
            db,
            batch.refs,
            used,
            self.cache,
            skip_conflicts=batch.skip_conflicts,
            max_new=batch.max_new_series,
        )
        skipped = tuple(sorted(resolved.skipped))
        if len(batch) <= SMALL_WRITE and self._write_small(conn, batch, resolved.sids, increment):
            return skipped
        ref_sid = np.full(len(batch.refs), -1, np.int64)
        if resolved.sids:
            ref_sid[list(resolved.sids)] = list(resolved.sids.values())
        codes = ref_sid[batch.ref_index]
        ts, values, is_int = batch.ts, batch.values, batch.is_int
        if skipped:
            keep = codes >= 0
            codes, ts, values, is_int = codes[keep], ts[keep], values[keep], is_int[keep]
            if not codes.shape[0]:
                return skipped
        codes, ts, values, is_int = _sorted_unique(codes, ts, values, is_int, increment)
        self._write_grouped(conn, codes, ts, values, is_int, resolved.fresh, increment)
        return skipped

    def _write_grouped(
        self,
        conn: sqlite3.Connection,
        codes: Int64Array,
        ts: Int64Array,
        values: Float64Array,
        is_int: BoolArray,
        fresh: set[int],
        increment: bool,
    ) -> None:
        """Store points grouped by sid, in time order, unique (see "Writes of many series")."""
        cuts = np.flatnonzero(codes[1:] != codes[:-1]) + 1
        lo = np.concatenate(([0], cuts))
        hi = np.concatenate((cuts, [codes.shape[0]]))
        sids: list[int] = codes[lo].tolist()
        tails = self._tails(conn, sids, fresh)
        first_ts: list[int] = ts[lo].tolist()
        last_ts: list[int] = ts[hi - 1].tolist()
        counts: list[int] = (hi - lo).tolist()
        all_int: list[bool] = np.logical_and.reduceat(is_int, lo).tolist()
        any_int: list[bool] = np.logical_or.reduceat(is_int, lo).tolist()
        in_i32: list[bool] = (
            (np.minimum.reduceat(values, lo) >= _INT32_MIN)
            & (np.maximum.reduceat(values, lo) <= _INT32_MAX)
        ).tolist()
        cap = self.cap
        # Each series: a new plain block (with the fmt, and the old tail to fold, if any), a
        # growth of its tail, or a merge.
        new: list[tuple[int, int, Tail | None]] = []  # (group, fmt, full tail to fold)
        grow: list[tuple[int, Tail]] = []
        merge: list[int] = []
        base = [0] * len(sids)
        for g, sid in enumerate(sids):
            count = counts[g]
            if any_int[g] and not all_int[g]:  # mixed int flags: the general path's mask
                merge.append(g)
                continue
            tail = tails.get(sid)
            if tail is not None and first_ts[g] <= tail.last:
                merge.append(g)
                continue
            if tail is not None and tail.n < TAIL_POINTS:
                fmt = tail.fmt
                if (
                    fmt & (TS_STEP | VAL_DECIMAL | INT_MIXED)
                    or tail.n + count > cap
                    or all_int[g] is not bool(fmt & INT_ALL)
                    or (fmt & VAL_I32 and not in_i32[g])
                    or (fmt & TS_U32 and last_ts[g] - tail.first >= _U32_LIMIT)
                ):
                    merge.append(g)
                    continue
                base[g] = tail.first
                grow.append((g, tail))
                continue
            if count >= min(TAIL_POINTS if tail is not None else cap, cap):
                merge.append(g)
                continue
            fmt = TS_U32 if last_ts[g] - first_ts[g] < _U32_LIMIT else 0
            if all_int[g]:
                fmt |= INT_ALL | (VAL_I32 if in_i32[g] else 0)
            base[g] = first_ts[g]
            new.append((g, fmt, tail))
        if new or grow:
            offsets = ts - np.repeat(np.array(base, np.int64), hi - lo)
            blobs = _Blobs(offsets, values, [fmt for _, fmt, _ in new] + [t.fmt for _, t in grow])
            los, his = lo.tolist(), hi.tolist()
            grown: list[tuple[int, int, bytes, bytes, int, int]] = []
            gen = self.cache.gen
            for g, tail in grow:
                ts_blob, vals_blob = blobs.slices(tail.fmt, los[g], his[g])
                tail.last, tail.n = last_ts[g], tail.n + counts[g]
                grown.append((tail.last, tail.n, ts_blob, vals_blob, gen, tail.rowid))
            if grown:
                conn.executemany(
                    "UPDATE block SET last = ?, n = ?, ts = CAST(ts || ? AS BLOB), "
                    "vals = CAST(vals || ? AS BLOB), gen = ? WHERE rowid = ?",
                    grown,
                )
            rows: list[tuple[Any, ...]] = []
            for g, fmt, full in new:
                if full is not None:
                    self._fold(conn, full)
                ts_blob, vals_blob = blobs.slices(fmt, los[g], his[g])
                rows.append((sids[g], first_ts[g], last_ts[g], counts[g], fmt, ts_blob, vals_blob))
            self._insert_tails(conn, rows)
        for g in merge:
            a, b = int(lo[g]), int(hi[g])
            self.merge(conn, sids[g], Points(ts[a:b], values[a:b], is_int[a:b]), increment)

    def _tails(self, conn: sqlite3.Connection, sids: list[int], fresh: set[int]) -> dict[int, Tail]:
        """The last block of each series that has one: from the cache, the rest in one query."""
        cached = self.cache.tails
        tails: dict[int, Tail] = {}
        unknown: list[int] = []
        for sid in sids:
            tail = cached.get(sid)
            if tail is not None:
                tails[sid] = tail
            elif sid not in fresh:
                unknown.append(sid)
        if unknown:
            for sid, *row in conn.execute(_TAILS, (json.dumps(unknown),)):
                tails[sid] = cached[sid] = Tail(*row)
        return tails

    def _insert_tails(self, conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
        """Insert new plain last blocks, one per series, given as (sid, first, last, n, fmt,
        ts, vals), and remember them as the series' tails (their rowids are read back as
        those above the largest before the insert: the writer holds the write lock)."""
        if not rows:
            return
        gen = self.cache.gen
        above = conn.execute("SELECT max(rowid) FROM block").fetchone()[0] or 0
        conn.executemany(_INSERT, [(*row, None, gen) for row in rows])
        rowids = dict(conn.execute("SELECT sid, rowid FROM block WHERE rowid > ?", (above,)))
        cached = self.cache.tails
        for sid, first, last, n, fmt, *_ in rows:
            cached[sid] = Tail(rowids[sid], first, last, n, fmt)

    def _fold(self, conn: sqlite3.Connection, tail: Tail) -> None:
        """Compress a full plain last block in place, now that appends no longer grow it."""
        if tail.fmt & TS_STEP:  # compressed already
            return
        [old] = _load(conn, [Meta(tail.rowid, tail.first, tail.last, tail.n)])
        [compressed] = split(old, self.cap, at_end=False)
        _update(conn, tail.rowid, compressed, self.cache.gen)

    def plan(self, db: int, batch: WriteBatch, increment: bool) -> list[Growth] | None:
        """The growths of a small write made only of cached appends (``Writer.submit``),
        found without a statement; None (and nothing changed) for any other write."""
        cache = self.cache
        known, tails = cache.series, cache.tails
        refs = batch.refs
        index = batch.ref_index.tolist()
        planned: list[tuple[Tail, int, int, tuple[bytes, bytes]]] = []
        if len(set(index)) == len(index):  # one point per ref: the common case, in one pass
            seen: set[int] = set()
            for ref_at, ts, value, is_int in zip(
                index, batch.ts.tolist(), batch.values.tolist(), batch.is_int.tolist(), strict=True
            ):
                ref = refs[ref_at]
                found = known.get((db, ref.field, ref.value))
                if found is None or found[0] in seen:
                    return None
                seen.add(found[0])
                tail = tails.get(found[0])
                if tail is None or tail.n >= TAIL_POINTS or ts <= tail.last or tail.n >= self.cap:
                    return None
                if increment:
                    is_int = is_int and abs(value) <= MAX_EXACT_INT
                added = plain_append_one(tail.fmt, tail.first, ts, value, is_int)
                if added is None:
                    return None
                planned.append((tail, ts, tail.n + 1, added))
        else:
            where: dict[int, int] = {}
            for ref_at in set(index):
                ref = refs[ref_at]
                found = known.get((db, ref.field, ref.value))
                if found is None:
                    return None
                where[ref_at] = found[0]
            grouped = _group(batch, where, increment)
            if grouped is None:
                return None
            for sid, points in grouped.items():
                points = _appended(points, increment)
                tail = tails.get(sid)
                if tail is None or tail.n >= TAIL_POINTS or points[0][0] <= tail.last:
                    return None
                count = tail.n + len(points)
                more = plain_append(tail.fmt, tail.first, points) if count <= self.cap else None
                if more is None:
                    return None
                planned.append((tail, points[-1][0], count, more))
        growths: list[Growth] = []
        for tail, last, count, (ts_bytes, vals_bytes) in planned:
            tail.last, tail.n = last, count
            growths.append((last, count, ts_bytes, vals_bytes, tail.rowid))
        return growths

    def _write_small(
        self, conn: sqlite3.Connection, batch: WriteBatch, sids: dict[int, int], increment: bool
    ) -> bool:
        """A write of a few points, point by point in Python (numpy's per-call costs dwarf
        the work on arrays this small), with the same outcome as the numpy path.  False (and
        nothing done) for an increment that adds to one timestamp twice, which the numpy path
        sums in its own order."""
        grouped = _group(batch, sids, increment)
        if grouped is None:
            return False
        grown: list[Growth] = []
        for sid, points in grouped.items():
            if not self._append_small(conn, sid, _appended(points, increment), grown):
                ts_all, values, ints = zip(*points, strict=True)
                new = Points(np.array(ts_all, np.int64), np.array(values), np.array(ints, np.bool_))
                self.merge(conn, sid, new, increment)
        if grown:
            gen = self.cache.gen
            conn.executemany(
                "UPDATE block SET last = ?, n = ?, ts = CAST(ts || ? AS BLOB), "
                "vals = CAST(vals || ? AS BLOB), gen = ? WHERE rowid = ?",
                [(*growth[:4], gen, growth[4]) for growth in grown],
            )
        return True

    def _append_small(
        self,
        conn: sqlite3.Connection,
        sid: int,
        points: list[PyPoint],
        grown: list[Growth],
    ) -> bool:
        """Append a few points after the last block of a series without decoding it: a
        small plain last block grows by its blobs' new bytes (the UPDATE is added to
        ``grown``, for the caller to run), after a bigger one a new plain block starts; the
        last block is remembered (``WriterCache``).  False when the points are not such an
        append; nothing is done then."""
        cache = self.cache
        tail = cache.tails.get(sid)
        if tail is None:
            row = conn.execute(
                "SELECT rowid, first, last, n, fmt FROM block WHERE sid = ? "
                "ORDER BY first DESC LIMIT 1",
                (sid,),
            ).fetchone()
            if row is None:
                block = plain_block(points) if len(points) < self.cap else None
                if block is None:
                    return False
                self._start_block(conn, sid, block)
                return True
            tail = Tail(*row)
        if points[0][0] <= tail.last:
            return False
        if tail.n < TAIL_POINTS:
            count = tail.n + len(points)
            added = plain_append(tail.fmt, tail.first, points) if count <= self.cap else None
            if added is None:
                return False
            tail.last, tail.n = points[-1][0], count
            grown.append((tail.last, count, added[0], added[1], tail.rowid))
            cache.tails[sid] = tail
            return True
        block = plain_block(points) if len(points) < min(TAIL_POINTS, self.cap) else None
        if block is None:
            return False
        self._fold(conn, tail)
        self._start_block(conn, sid, block)
        return True

    def _start_block(self, conn: sqlite3.Connection, sid: int, block: Block) -> None:
        """Store a plain block as the new last block of a series."""
        cursor = conn.execute(_INSERT, (sid, *block, self.cache.gen))
        tail = Tail(int(cursor.lastrowid or 0), block.first, block.last, block.n, block.fmt)
        self.cache.tails[sid] = tail

    def merge(self, conn: sqlite3.Connection, sid: int, new: Points, increment: bool) -> None:
        """Merge sorted unique points into a series' blocks."""
        self.cache.tails.pop(sid)
        if self._append(conn, sid, new, increment):
            return
        lo, hi = int(new.ts[0]), int(new.ts[-1])
        run = run_meta(conn, sid, lo, hi)
        if not run:
            before = _neighbour(conn, sid, lo, before=True)
            after = _neighbour(conn, sid, hi, before=False)
            run = choose_run(run, before, after, self.cap)
        merged = merge_points(concat(_load(conn, run)), new, increment=increment)
        _drop(conn, run)
        self._store(conn, sid, merged)

    def _append(self, conn: sqlite3.Connection, sid: int, new: Points, increment: bool) -> bool:
        """Small writes after the last block, without rewriting a big block: the points join
        the last block while it is small (one read, one update), else start a new block
        (and the old last block, no longer rewritten by appends, is compressed).  False when
        the write is not such an append."""
        row = conn.execute(
            f"SELECT rowid, last, {BLOCK_COLUMNS} FROM block WHERE sid = ? "
            "ORDER BY first DESC LIMIT 1",
            (sid,),
        ).fetchone()
        if row is None or int(new.ts[0]) <= row[1]:
            return False
        rowid, count, fmt = row[0], row[3], row[4]
        if count < TAIL_POINTS:
            if count + len(new) > self.cap:
                return False
            merged = merge_points(decode(*row[2:]), new, increment=increment)
            [block] = split(merged, self.cap, at_end=True)
        elif len(new) < TAIL_POINTS:
            if not fmt & TS_STEP:  # plain codes: compress it now that it stays as it is
                old = decode(*row[2:])
                [block] = split(old, self.cap, at_end=False)
                _update(conn, rowid, block, self.cache.gen)
            self._store(conn, sid, new)
            return True
        else:
            return False
        _update(conn, rowid, block, self.cache.gen)
        return True

    def delete_range(
        self, conn: sqlite3.Connection, db: int, series_id: str, start: int, end: int
    ) -> int:
        """Delete the points with ``start <= ts < end`` of a series; how many there were."""
        sid = series.sid_of(conn, db, series_id)
        if sid is None:
            return 0
        self.cache.tails.pop(sid)
        run = run_meta(conn, sid, start, end - 1)
        edges = [m for m in run if m.first < start or m.last >= end]
        rest, deleted = cut(_load(conn, edges), start, end)
        _drop(conn, run)
        if len(rest):
            self._store(conn, sid, rest)
        return deleted + sum(m.n for m in run if m not in edges)

    def _store(self, conn: sqlite3.Connection, sid: int, points: Points) -> None:
        """Insert a run of points into the gap left for it, as blocks."""
        at_end = _neighbour(conn, sid, int(points.ts[-1]), before=False) is None
        gen = self.cache.gen
        rows = [(sid, *block, gen) for block in split(points, self.cap, at_end=at_end)]
        conn.executemany(_INSERT, rows)


class _Blobs:
    """The plain-code bytes of many points at once (offsets from each series' base, and
    values) in the codes that ``fmts`` need, one numpy call each, of which each series
    takes its slice."""

    def __init__(self, offsets: Int64Array, values: Float64Array, fmts: Iterable[int]) -> None:
        codes = {fmt & (TS_U32 | VAL_I32) for fmt in fmts}
        empty = b""
        self.u4 = offsets.astype("<u4").tobytes() if any(c & TS_U32 for c in codes) else empty
        self.i8 = offsets.astype("<i8").tobytes() if any(not c & TS_U32 for c in codes) else empty
        self.f8 = values.astype("<f8").tobytes() if any(not c & VAL_I32 for c in codes) else empty
        self.i4 = empty
        if any(c & VAL_I32 for c in codes):
            fits = (values >= _INT32_MIN) & (values <= _INT32_MAX)
            self.i4 = np.where(fits, values, 0).astype("<i4").tobytes()

    def slices(self, fmt: int, a: int, b: int) -> tuple[bytes, bytes]:
        """The ``ts`` and ``vals`` bytes of points ``a:b`` in the codes of ``fmt``."""
        ts = self.u4[a * 4 : b * 4] if fmt & TS_U32 else self.i8[a * 8 : b * 8]
        vals = self.i4[a * 4 : b * 4] if fmt & VAL_I32 else self.f8[a * 8 : b * 8]
        return ts, vals
