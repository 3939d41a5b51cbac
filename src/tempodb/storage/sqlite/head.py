"""The write head of the SQLite store: fresh points of small writes as rows of ``head``.

The table and its invariant
    ``head(sid, ts, v, is_int)``, WITHOUT ROWID, primary key (sid, ts) (``schema``).  Every
    head row of a series is later than every point in its blocks: a write sends to the head
    only points after the last block point of their series (``points.PointWriter``), a merge
    into the blocks only ever touches points before it, a range delete only removes points,
    and the fold (``fold``) moves *all* of a series' rows at once, appending them after its
    blocks.  So the points of a series are its block points followed by its head rows, never
    two values for one timestamp, and a read just puts the two side by side.

Writes
    An overwrite is an upsert of the row; an increment reads the rows it adds to (one
    statement per series), adds with ``merge_points`` (the same sums, types and range checks
    as the blocks) and upserts the results.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Final

import numpy as np

from tempodb.storage.base import Points, merge_points

#: One head row as written: (sid, ts, value, is_int as 0 or 1).
HeadRow = tuple[int, int, float, int]

#: Write one point into the head: a new row, or the new value of the row there.
UPSERT: Final = (
    "INSERT INTO head (sid, ts, v, is_int) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (sid, ts) DO UPDATE SET v = excluded.v, is_int = excluded.is_int"
)
_RANGE: Final = "SELECT ts, v, is_int FROM head WHERE sid = ? AND ts >= ? AND ts < ? ORDER BY ts"
_TAKE: Final = (
    "DELETE FROM head WHERE sid IN (SELECT value FROM json_each(?)) RETURNING sid, ts, v, is_int"
)


def _points(rows: Sequence[tuple[int, float, int]]) -> Points:
    if not rows:
        return Points.empty()
    ts, values, ints = zip(*rows, strict=True)
    return Points(np.array(ts, np.int64), np.array(values, np.float64), np.array(ints, np.bool_))


def put(conn: sqlite3.Connection, rows: Sequence[HeadRow]) -> None:
    """Upsert points (a write: the last row given for a (sid, ts) wins)."""
    if rows:
        conn.executemany(UPSERT, rows)


def add(conn: sqlite3.Connection, sid: int, new: Points) -> None:
    """Add sorted unique points to the head rows of a series (an increment), every one of
    them later than the series' blocks.  ValueOutOfRange (nothing written) when a sum is
    not storable."""
    old = read(conn, sid, int(new.ts[0]), int(new.ts[-1]) + 1)
    summed = merge_points(old, new, increment=True)
    if len(old):
        at = np.searchsorted(summed.ts, new.ts)
        summed = Points(summed.ts[at], summed.values[at], summed.is_int[at])
    put(conn, rows(sid, summed))


def rows(sid: int, points: Points) -> list[HeadRow]:
    """The head rows of a series' points."""
    return [
        (sid, ts, value, int(is_int))
        for ts, value, is_int in zip(
            points.ts.tolist(), points.values.tolist(), points.is_int.tolist(), strict=True
        )
    ]


def read(conn: sqlite3.Connection, sid: int, start: int, end: int) -> Points:
    """The head rows of a series with ``start <= ts < end``, in time order."""
    return _points(conn.execute(_RANGE, (sid, start, end)).fetchall())


def read_many(
    conn: sqlite3.Connection, sids: Sequence[int], start: int, end: int
) -> dict[int, Points]:
    """``read`` of several series in one statement: the series that have head rows in the
    range, with them."""
    rows = conn.execute(
        "SELECT sid, ts, v, is_int FROM head WHERE sid IN (SELECT value FROM json_each(?)) "
        "AND ts >= ? AND ts < ? ORDER BY sid, ts",
        (json.dumps(list(sids)), start, end),
    ).fetchall()
    found: dict[int, list[tuple[int, float, int]]] = {}
    for sid, ts, value, is_int in rows:
        found.setdefault(sid, []).append((ts, value, is_int))
    return {sid: _points(part) for sid, part in found.items()}


def near(
    conn: sqlite3.Connection, sid: int, ts: int, *, before: bool
) -> tuple[int, int | float] | None:
    """The head row at or before ``ts`` (``before``), or the first one after it."""
    sql = (
        "SELECT ts, v, is_int FROM head WHERE sid = ? AND ts <= ? ORDER BY ts DESC LIMIT 1"
        if before
        else "SELECT ts, v, is_int FROM head WHERE sid = ? AND ts > ? ORDER BY ts LIMIT 1"
    )
    row = conn.execute(sql, (sid, ts)).fetchone()
    if row is None:
        return None
    return int(row[0]), int(row[1]) if row[2] else float(row[1])


def take(
    conn: sqlite3.Connection, sids: Sequence[int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Delete the head rows of these series and return them as (sid, ts, value, is_int)
    arrays ordered by sid and time (empty arrays when there are none)."""
    found = conn.execute(_TAKE, (json.dumps(list(sids)),)).fetchall()
    if not found:
        empty = np.empty(0, np.int64)
        return empty, empty, np.empty(0, np.float64), np.empty(0, np.bool_)
    sid, ts, values, ints = zip(*found, strict=True)
    codes, stamps = np.array(sid, np.int64), np.array(ts, np.int64)
    order = np.lexsort((stamps, codes))
    return (
        codes[order],
        stamps[order],
        np.array(values, np.float64)[order],
        np.array(ints, np.bool_)[order],
    )


def delete_range(conn: sqlite3.Connection, sid: int, start: int, end: int) -> int:
    """Delete the head rows of a series with ``start <= ts < end``; how many there were."""
    cursor = conn.execute(
        "DELETE FROM head WHERE sid = ? AND ts >= ? AND ts < ?", (sid, start, end)
    )
    return cursor.rowcount


def sweep(conn: sqlite3.Connection, limit: int) -> list[tuple[int, int]]:
    """Up to ``limit`` series that have head rows, with how many: (sid, count)."""
    return conn.execute("SELECT sid, count(*) FROM head GROUP BY sid LIMIT ?", (limit,)).fetchall()
