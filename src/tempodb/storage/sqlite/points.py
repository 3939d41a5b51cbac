"""The points of the SQLite store: block rows, and every change the writer makes to them.

Blocks
    The format, the invariants and how writes re-chunk a series are those of
    ``tempodb.storage.blocks``; each block is a ``block`` row of one ``sid``, and the blocks
    hold at most ``cap`` points (``BLOCK_POINTS`` unless configured).

The write head: rows beside the blocks (``head``)
    Fresh points of small writes do not touch the blocks: a series that a write gives fewer
    than ``direct_points`` points sends those after its last block point to the head table
    as rows (an upsert per point; an increment adds to the rows there), and those at or
    before it merge into its blocks (``merge``) as before.  So every head row of a series is
    later than all of its block points (the invariant ``head`` relies on).  A series that a
    write gives ``direct_points`` points or more (W1's thousands) goes straight to its
    blocks: its head rows, if it has any, are taken out in the same transaction and join the
    new points there.  The fold (``fold``, ``PointWriter.fold``) moves all the head rows of
    a series into its blocks in one transaction, as an append after its last block.

The plain last block
    Blocks grow at their end (the fold, direct writes), so the last block of a series stays
    in the plain codes while it holds fewer than ``TAIL_POINTS`` (256) points, and later
    points join it without decoding it: its blobs grow by the new points' bytes (``SET ts =
    CAST(ts || ? AS BLOB)``, byte for byte: the file's text encoding is never involved, see
    ``blocks.plain_append``).  Once it is full, the next append starts a new plain block
    and compresses the old one in place, in the same transaction.  A write that lands before
    the last block point of a series (an overwrite, an increment of old points, an insert
    into the past) merges with the blocks its time span overlaps and stores them again
    (``merge``).

Writes of many series (``PointWriter.write``)
    The cost of a write is kept per request, not per series: the series of all its refs are
    resolved (and the missing ones created) in a few statements (``series.resolve``), the
    points are grouped by series with a handful of numpy calls (no sort when they come
    grouped and in time order, as writers send them), the last blocks of the series not in
    the writer's cache are read in one statement, the head rows go in with one
    ``executemany``, and the series that go straight to their blocks are encoded at once:
    the offsets and values of all their points are turned into bytes with one numpy call
    each, and each series takes its slice (new blocks with one ``executemany``, their
    rowids read back in one query, growths of plain last blocks with another).  A write of
    at most ``SMALL_WRITE`` points takes a per-point Python path instead (numpy's per-call
    costs dwarf the work there), and small writes whose series are all cached are planned
    without a statement at all (``PointWriter.plan``, ``writer.Writer.submit``).
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import time
from collections.abc import Iterable, Sequence
from typing import Any, Final

import numpy as np

from tempodb.storage.base import (
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
    split,
)
from tempodb.storage.sqlite import head, series
from tempodb.storage.sqlite.fold import FOLD_BATCH, Ledger, StepSize
from tempodb.storage.sqlite.writer import Tail, WriterCache

#: Small writes after a block this small join it; after a bigger one they start a new block.
TAIL_POINTS: Final = 256
#: Writes of at most this many points take the per-point Python path (``_write_small``).
SMALL_WRITE: Final = 64
#: Where a series without blocks ends (every head row is later).
NO_BLOCKS: Final = -(2**63)

BLOCK_COLUMNS: Final = "first, n, fmt, ts, vals, mask"
#: The blocks that may hold ``?2 <= ts < ?3`` of series ``?1``, in time order (the block
#: holding ``?2`` starts at the largest ``first <= ?2``).
READ: Final = (
    "SELECT {columns} FROM block WHERE sid = ?1 AND first < ?3 AND last >= ?2 "
    "AND first >= coalesce((SELECT first FROM block WHERE sid = ?1 AND first <= ?2 "
    "ORDER BY first DESC LIMIT 1), ?2) ORDER BY first"
)
#: ``READ`` of each series of a JSON array of sids, in one statement: (sid, rowid, gen) of
#: their blocks, series by series in the array's order, each in time order.
READ_MANY: Final = (
    "SELECT b.sid, b.rowid, b.gen FROM json_each(?1) AS j JOIN block AS b ON b.sid = j.value "
    "WHERE b.first < ?3 AND b.last >= ?2 AND b.first >= coalesce((SELECT first FROM block "
    "WHERE sid = j.value AND first <= ?2 ORDER BY first DESC LIMIT 1), ?2) "
    "ORDER BY j.key, b.first"
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
    parts: list[Points] = []
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


def presort(batch: WriteBatch) -> WriteBatch:
    """A large write's points grouped by series, each in time order, the last value of a
    repeated timestamp kept: the order ``PointWriter.write`` needs, found by the caller's
    thread so that the writer only checks it.  Only when the refs are distinct keys (one
    series each: an id may name the series a key names, and the last value must be the last
    given); else, and for a batch in that order already, the batch itself."""
    refs = batch.refs
    if any(ref.field != "key" for ref in refs) or len(set(refs)) != len(refs):
        return batch
    codes = batch.ref_index.astype(np.int64)
    grouped = _sorted_unique(codes, batch.ts, batch.values, batch.is_int, False)
    if grouped[0] is codes:
        return batch
    codes, ts, values, is_int = grouped
    return dataclasses.replace(
        batch, ref_index=codes.astype(np.int32), ts=ts, values=values, is_int=is_int
    )


class PointWriter:
    """Every change of the points, run by the writer thread inside its transaction, and the
    fold of the write head (the writer's ``Maintenance``).

    Args:
        cache: the writer's cache (series and last blocks).
        cap: the most points a block holds.
        head_points: fold a series once the head holds this many of its points.
        fold_after_s: ... or this many seconds after its first point went to the head.
        direct_points: a series that one write gives at least this many points skips the
            head and goes straight to its blocks.
    """

    def __init__(
        self,
        cache: WriterCache,
        cap: int,
        *,
        head_points: int,
        fold_after_s: float,
        direct_points: int,
    ) -> None:
        self.cache = cache
        self.cap = cap
        self.direct_points = direct_points
        self.ledger = Ledger(head_points, fold_after_s)
        self._folding: list[int] = []
        self._step = StepSize()

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
        if len(batch) <= SMALL_WRITE and len(batch) < self.direct_points:
            grouped = _group(batch, resolved.sids, increment)
            if grouped is not None:
                self._write_small(conn, grouped, resolved.fresh, increment)
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

    def plan(self, db: int, batch: WriteBatch, increment: bool) -> list[head.HeadRow] | None:
        """The head rows of a small write whose series are all cached and whose points all
        go after their series' blocks (``Writer.submit``), found without a statement; None
        (and nothing changed) for any other write, and for increments."""
        if increment or len(batch) >= self.direct_points:
            return None
        cache = self.cache
        known, tails, bare = cache.series, cache.tails, cache.bare
        refs = batch.refs
        rows: list[head.HeadRow] = []
        for ref_at, ts, value, is_int in zip(
            batch.ref_index.tolist(),
            batch.ts.tolist(),
            batch.values.tolist(),
            batch.is_int.tolist(),
            strict=True,
        ):
            ref = refs[ref_at]
            found = known.get((db, ref.field, ref.value))
            if found is None:
                return None
            sid = found[0]
            tail = tails.get(sid)
            if tail is None:
                if bare.get(sid) is None:
                    return None
            elif ts <= tail.last:
                return None
            rows.append((sid, ts, value, 1 if is_int else 0))
        now = time.monotonic()
        note = self.ledger.note_one
        for row in rows:
            note(row[0], now)
        return rows

    def _write_small(
        self,
        conn: sqlite3.Connection,
        grouped: dict[int, list[PyPoint]],
        fresh: set[int],
        increment: bool,
    ) -> None:
        """A write of a few points (fewer than ``direct_points``), point by point in Python
        (numpy's per-call costs dwarf the work on arrays this small), with the same outcome
        as the numpy path."""
        tails = self._tails(conn, list(grouped), fresh)
        rows: list[head.HeadRow] = []
        counts: dict[int, int] = {}
        for sid, points in grouped.items():
            tail = tails.get(sid)
            end = NO_BLOCKS if tail is None else tail.last
            if not increment and points[0][0] > end:
                rows.extend((sid, ts, value, 1 if is_int else 0) for ts, value, is_int in points)
                counts[sid] = len(points)
                continue
            ts_all, values, ints = zip(*points, strict=True)
            new = Points(np.array(ts_all, np.int64), np.array(values), np.array(ints, np.bool_))
            self._route(conn, sid, new, end, increment)
        head.put(conn, rows)
        self.ledger.note(counts)
        self._bare(fresh)

    def _bare(self, fresh: Iterable[int]) -> None:
        """Remember series created by this write as having no block, unless they have one
        by now (their points went straight to the blocks)."""
        tails, bare = self.cache.tails, self.cache.bare
        for sid in fresh:
            if tails.get(sid) is None:
                bare[sid] = True

    def _route(
        self, conn: sqlite3.Connection, sid: int, new: Points, end: int, increment: bool
    ) -> None:
        """Sorted unique points of one series: those at or before ``end`` (its last block
        point) into its blocks, the later ones into the head."""
        k = int(np.searchsorted(new.ts, end, "right"))
        if k:
            older = Points(new.ts[:k], new.values[:k], new.is_int[:k])
            self.merge(conn, sid, older, increment)
        if k < len(new):
            later = Points(new.ts[k:], new.values[k:], new.is_int[k:])
            if increment:
                head.add(conn, sid, later)
            else:
                head.put(conn, head.rows(sid, later))
            self.ledger.note({sid: len(later)})

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
        """Store points grouped by sid, in time order, unique: series given
        ``direct_points`` or more straight to their blocks (with their head rows, if any),
        the others' points after their blocks into the head (one statement), the rest
        merged into their blocks."""
        lo, hi = _runs(codes)
        sizes = hi - lo
        sids: list[int] = codes[lo].tolist()
        tails = self._tails(conn, sids, fresh)
        ends = np.array(
            [NO_BLOCKS if (t := tails.get(sid)) is None else t.last for sid in sids], np.int64
        )
        direct = sizes >= self.direct_points
        later = ts > np.repeat(ends, sizes)
        # Series straight to their blocks: first take out the head rows of those that reach
        # past their blocks (their rows are later than the blocks, maybe among these points).
        held: dict[int, Points] = {}
        reach = [
            sids[g]
            for g in np.flatnonzero(direct & (ts[hi - 1] > ends)).tolist()
            if sids[g] not in fresh  # series created now have no head rows
        ]
        if reach:
            held = _by_series(*head.take(conn, reach))
            self.ledger.forget(held)
        if direct.any():
            plain = np.repeat(direct, sizes)
            if held:
                plain &= ~np.isin(codes, list(held))
            if plain.all():
                self._to_blocks(conn, codes, ts, values, is_int, fresh, increment)
                return
            if plain.any():
                self._to_blocks(
                    conn, codes[plain], ts[plain], values[plain], is_int[plain], fresh, increment
                )
            for g in np.flatnonzero(direct).tolist():
                sid = sids[g]
                if sid in held:
                    a, b = int(lo[g]), int(hi[g])
                    new = Points(ts[a:b], values[a:b], is_int[a:b])
                    self._with_head(conn, sid, new, int(ends[g]), held[sid], increment)
        # The other series: points after their blocks to the head, the rest merged.
        side = ~np.repeat(direct, sizes)
        to_head = side & later
        older = np.add.reduceat((side & ~later).astype(np.int64), lo)
        for g in np.flatnonzero(older).tolist():
            a = int(lo[g])
            b = a + int(older[g])
            self.merge(conn, sids[g], Points(ts[a:b], values[a:b], is_int[a:b]), increment)
        if not to_head.any():
            return
        h_codes, h_ts = codes[to_head], ts[to_head]
        h_values, h_ints = values[to_head], is_int[to_head]
        if increment:
            for sid, points in _by_series(h_codes, h_ts, h_values, h_ints).items():
                head.add(conn, sid, points)
                self.ledger.note({sid: len(points)})
                if sid in fresh:
                    self._bare([sid])
            return
        head.put(
            conn,
            list(
                zip(
                    h_codes.tolist(),
                    h_ts.tolist(),
                    h_values.tolist(),
                    h_ints.astype(np.int8).tolist(),
                    strict=True,
                )
            ),
        )
        found, counts = np.unique(h_codes, return_counts=True)
        self.ledger.note(dict(zip(found.tolist(), counts.tolist(), strict=True)))
        if fresh:
            self._bare(fresh.intersection(found.tolist()))

    def _with_head(
        self,
        conn: sqlite3.Connection,
        sid: int,
        new: Points,
        end: int,
        held: Points,
        increment: bool,
    ) -> None:
        """Many points of a series whose head rows (``held``, taken out of the head) are
        later than its blocks: the points at or before ``end`` merge into its blocks, the
        later ones with the head rows, and those join the blocks after them."""
        k = int(np.searchsorted(new.ts, end, "right"))
        if k:
            self.merge(conn, sid, Points(new.ts[:k], new.values[:k], new.is_int[:k]), increment)
        rest = Points(new.ts[k:], new.values[k:], new.is_int[k:])
        self.merge(conn, sid, merge_points(held, rest, increment=increment), False)

    def _to_blocks(
        self,
        conn: sqlite3.Connection,
        codes: Int64Array,
        ts: Int64Array,
        values: Float64Array,
        is_int: BoolArray,
        fresh: set[int],
        increment: bool,
    ) -> None:
        """Store points grouped by sid, in time order, unique, in the blocks (see "Writes of
        many series"); the series' head rows, if any, must all be later than these points."""
        lo, hi = _runs(codes)
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
                    self._compress(conn, full)
                ts_blob, vals_blob = blobs.slices(fmt, los[g], his[g])
                rows.append((sids[g], first_ts[g], last_ts[g], counts[g], fmt, ts_blob, vals_blob))
            self._insert_tails(conn, rows)
        for g in merge:
            a, b = int(lo[g]), int(hi[g])
            self.merge(conn, sids[g], Points(ts[a:b], values[a:b], is_int[a:b]), increment)

    def _tails(self, conn: sqlite3.Connection, sids: list[int], fresh: set[int]) -> dict[int, Tail]:
        """The last block of each series that has one: from the cache, the rest in one query
        (those found without a block are remembered as such, ``WriterCache.bare``; series
        created by this write have none, and are remembered so once their points go to the
        head, ``_bare``)."""
        cached, bare = self.cache.tails, self.cache.bare
        tails: dict[int, Tail] = {}
        unknown: list[int] = []
        for sid in sids:
            tail = cached.get(sid)
            if tail is not None:
                tails[sid] = tail
            elif sid not in fresh and bare.get(sid) is None:
                unknown.append(sid)
        if unknown:
            for sid, *row in conn.execute(_TAILS, (json.dumps(unknown),)):
                tails[sid] = cached[sid] = Tail(*row)
            for sid in unknown:
                if sid not in tails:
                    bare[sid] = True
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
        cached, bare = self.cache.tails, self.cache.bare
        for sid, first, last, n, fmt, *_ in rows:
            cached[sid] = Tail(rowids[sid], first, last, n, fmt)
            bare.pop(sid)

    def _compress(self, conn: sqlite3.Connection, tail: Tail) -> None:
        """Compress a full plain last block in place, now that appends no longer grow it."""
        if tail.fmt & TS_STEP:  # compressed already
            return
        [old] = _load(conn, [Meta(tail.rowid, tail.first, tail.last, tail.n)])
        [compressed] = split(old, self.cap, at_end=False)
        _update(conn, tail.rowid, compressed, self.cache.gen)

    # -- the fold (the writer's maintenance) ------------------------------------------------------

    def fold(self, conn: sqlite3.Connection, sids: list[int]) -> int:
        """Move all the head rows of these series into their blocks (an append after each
        one's last block), inside the caller's transaction; how many points moved."""
        codes, ts, values, is_int = head.take(conn, sids)
        if codes.shape[0]:
            self._to_blocks(conn, codes, ts, values, is_int, set(), False)
        return int(codes.shape[0])

    def fold_all(self, conn: sqlite3.Connection) -> int:
        """Fold every series that has head rows, inside the caller's transaction; how many
        points moved."""
        sids = [row[0] for row in conn.execute("SELECT DISTINCT sid FROM head")]
        self.ledger.forget(sids)
        return sum(
            self.fold(conn, sids[lo : lo + FOLD_BATCH]) for lo in range(0, len(sids), FOLD_BATCH)
        )

    def wait(self) -> float:
        return self.ledger.wait()

    def pressing(self) -> bool:
        return self.ledger.pressing()

    def run(self, conn: sqlite3.Connection) -> None:
        """One step of the fold: a sweep of the head when one is due, then the series due
        (``fold.StepSize`` of them)."""
        ledger = self.ledger
        if ledger.sweep_due():
            ledger.swept(head.sweep(conn, ledger.max_pending), ledger.max_pending)
        self._folding = ledger.take(self._step.series)
        if self._folding:
            began = time.perf_counter()
            self.fold(conn, self._folding)
            self._step.measured(len(self._folding), time.perf_counter() - began)

    def failed(self) -> None:
        self.ledger.again(self._folding)
        self._folding = []

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
        in_head = head.delete_range(conn, sid, start, end)
        run = run_meta(conn, sid, start, end - 1)
        edges = [m for m in run if m.first < start or m.last >= end]
        rest, deleted = cut(_load(conn, edges), start, end)
        _drop(conn, run)
        if len(rest):
            self._store(conn, sid, rest)
        return in_head + deleted + sum(m.n for m in run if m not in edges)

    def _store(self, conn: sqlite3.Connection, sid: int, points: Points) -> None:
        """Insert a run of points into the gap left for it, as blocks."""
        at_end = _neighbour(conn, sid, int(points.ts[-1]), before=False) is None
        gen = self.cache.gen
        rows = [(sid, *block, gen) for block in split(points, self.cap, at_end=at_end)]
        conn.executemany(_INSERT, rows)
        self.cache.bare.pop(sid)


def _by_series(
    codes: Int64Array, ts: Int64Array, values: Float64Array, is_int: BoolArray
) -> dict[int, Points]:
    """Points grouped by sid (and in time order within each) as points per series."""
    lo, hi = _runs(codes)
    return {
        int(codes[a]): Points(ts[a:b], values[a:b], is_int[a:b])
        for a, b in zip(lo.tolist(), hi.tolist(), strict=True)
    }


def _runs(codes: Int64Array) -> tuple[Int64Array, Int64Array]:
    """Where each run of equal codes starts and ends (exclusive), for grouped codes."""
    if not codes.shape[0]:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    cuts = np.flatnonzero(codes[1:] != codes[:-1]) + 1
    return np.concatenate(([0], cuts)), np.concatenate((cuts, [codes.shape[0]]))


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
