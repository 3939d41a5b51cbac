"""The columnar blocks on PostgreSQL: merging points into a locked series' blocks, and range
deletes.

The block format, its invariants and how a write re-chunks a series are those of
``tempodb.storage.blocks``.  Every statement here names one series (``sid = <value>``) except
``put_many``, which inserts the blocks of several series at once.  The caller holds the series
lock (``FOR UPDATE`` on the series' row) of every series it changes here.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from typing import Any, Final

import numpy as np
import psycopg

from tempodb.storage.base import Points, merge_points
from tempodb.storage.blocks import Block, Meta, choose_run, concat, cut, decode, split
from tempodb.storage.postgres.series import Retry

_Conn = psycopg.Connection[Any]

BLOCK_COLUMNS: Final = "first, n, fmt, ts, vals, mask"
#: The lower bound of the blocks that may hold ``ts >= %(lo)s``: the block holding ``lo``
#: starts at the largest ``first <= lo`` (or later, if no block starts before ``lo``).
FROM_LO: Final = (
    "first >= coalesce((SELECT max(first) FROM block WHERE db = %(db)s AND sid = %(sid)s "
    "AND first <= %(lo)s), %(lo)s)"
)
#: A write of ``[lo, hi]`` in one round trip: delete the run of blocks it overlaps and return
#: them (kind 0), with the metadata of the block starting closest before ``lo`` (kind 1) and of
#: the two starting first after ``hi`` (kind 2), as they were before the delete.
_TAKE_RUN: Final = (
    "WITH run AS (DELETE FROM block WHERE db = %(db)s AND sid = %(sid)s AND first <= %(hi)s "
    f"AND last >= %(lo)s AND {FROM_LO} RETURNING {BLOCK_COLUMNS}, last) "
    f"SELECT 0 AS kind, {BLOCK_COLUMNS}, last FROM run "
    "UNION ALL (SELECT 1, first, n, NULL::smallint, NULL::bytea, NULL::bytea, NULL::bytea, last "
    "FROM block WHERE db = %(db)s AND sid = %(sid)s AND first < %(lo)s "
    "ORDER BY first DESC LIMIT 1) "
    "UNION ALL (SELECT 2, first, n, NULL::smallint, NULL::bytea, NULL::bytea, NULL::bytea, last "
    "FROM block WHERE db = %(db)s AND sid = %(sid)s AND first > %(hi)s ORDER BY first LIMIT 2)"
)
_INSERT_MANY: Final = (
    "INSERT INTO block (db, sid, first, last, n, fmt, ts, vals, mask) "
    "SELECT %s, * FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::int[], "
    "%s::smallint[], %b::bytea[], %b::bytea[], %b::bytea[])"
)


def decode_rows(rows: Iterable[Sequence[Any]]) -> list[Points]:
    return [decode(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows]


def merge(conn: _Conn, db: int, sid: int, cap: int, new: Points, *, increment: bool) -> None:
    """Merge sorted unique points into the blocks of a locked series (one span: the run of
    blocks from ``new.ts[0]`` to ``new.ts[-1]`` is rewritten)."""
    lo, hi = int(new.ts[0]), int(new.ts[-1])
    rows = conn.execute(
        _TAKE_RUN, {"db": db, "sid": sid, "lo": lo, "hi": hi}, binary=True
    ).fetchall()
    taken = sorted((r for r in rows if r[0] == 0), key=lambda r: int(r[1]))
    after = sorted(Meta(r[1], r[1], r[7], r[2]) for r in rows if r[0] == 2)
    if taken:
        run = [Meta(r[1], r[1], r[7], r[2]) for r in taken]
        parts = decode_rows(r[1:] for r in taken)
    else:
        before = next((Meta(r[1], r[1], r[7], r[2]) for r in rows if r[0] == 1), None)
        run = choose_run([], before, after[0] if after else None, cap)
        parts = take(conn, db, sid, run)
    merged = merge_points(concat(parts), new, increment=increment)  # ValueOutOfRange
    last = int(merged.ts[-1])
    at_end = not any(m.first > last for m in after if m not in run)
    put_many(conn, db, [(sid, split(merged, cap, at_end=at_end))])


def fold_in(conn: _Conn, db: int, sid: int, cap: int, points: Points) -> None:
    """Store head points (whole values: they replace what the blocks hold) into the blocks of a
    locked series.  Points that fall to different blocks are merged block by block, so that a
    few scattered points do not rewrite every block between them."""
    lo, hi = int(points.ts[0]), int(points.ts[-1])
    firsts = [
        int(row[0])
        for row in conn.execute(
            "SELECT first FROM block WHERE db = %(db)s AND sid = %(sid)s AND first <= %(hi)s "
            f"AND last >= %(lo)s AND {FROM_LO} ORDER BY first",
            {"db": db, "sid": sid, "lo": lo, "hi": hi},
        )
    ]
    group = np.searchsorted(np.asarray(firsts, np.int64), points.ts, "right")
    cuts = [0, *(np.flatnonzero(np.diff(group)) + 1).tolist(), len(points)]
    for a, b in itertools.pairwise(cuts):
        part = Points(points.ts[a:b], points.values[a:b], points.is_int[a:b])
        merge(conn, db, sid, cap, part, increment=False)


def take(conn: _Conn, db: int, sid: int, run: Sequence[Meta]) -> list[Points]:
    """Delete the blocks of ``run`` and return their points, in time order."""
    if not run:
        return []
    rows = conn.execute(
        "DELETE FROM block WHERE db = %s AND sid = %s AND first = ANY(%s::bigint[]) "
        f"RETURNING {BLOCK_COLUMNS}",
        (db, sid, [m.first for m in run]),
        binary=True,
    ).fetchall()
    if len(rows) != len(run):
        raise Retry("blocks changed under a series lock")
    return decode_rows(sorted(rows, key=lambda r: int(r[0])))


def put_many(conn: _Conn, db: int, items: Sequence[tuple[int, Sequence[Block]]]) -> None:
    """Insert the blocks of one or more series in one statement."""
    rows = [(sid, b) for sid, blocks in items for b in blocks]
    if not rows:
        return
    conn.execute(
        _INSERT_MANY,
        (
            db,
            [sid for sid, _ in rows],
            [b.first for _, b in rows],
            [b.last for _, b in rows],
            [b.n for _, b in rows],
            [b.fmt for _, b in rows],
            [b.ts for _, b in rows],
            [b.vals for _, b in rows],
            [b.mask for _, b in rows],
        ),
    )


def delete_range(conn: _Conn, db: int, sid: int, cap: int, start: int, end: int) -> int:
    """Delete the block points with ``start <= ts < end`` of a locked series; how many."""
    run = [
        Meta(r[0], r[0], r[1], r[2])
        for r in conn.execute(
            "SELECT first, last, n FROM block WHERE db = %(db)s AND sid = %(sid)s "
            f"AND first < %(hi)s AND last >= %(lo)s AND {FROM_LO} ORDER BY first",
            {"db": db, "sid": sid, "lo": start, "hi": end},
        )
    ]
    edges = [m for m in run if m.first < start or m.last >= end]
    inner = [m.first for m in run if m not in edges]
    if inner:
        conn.execute(
            "DELETE FROM block WHERE db = %s AND sid = %s AND first = ANY(%s::bigint[])",
            (db, sid, inner),
        )
    rest, deleted = cut(take(conn, db, sid, edges), start, end)
    if len(rest):
        later = conn.execute(
            "SELECT 1 FROM block WHERE db = %s AND sid = %s AND first > %s LIMIT 1",
            (db, sid, int(rest.ts[-1])),
        ).fetchone()
        put_many(conn, db, [(sid, split(rest, cap, at_end=later is None))])
    return deleted + sum(m.n for m in run if m not in edges)
