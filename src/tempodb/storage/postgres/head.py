"""The write head on PostgreSQL: fresh points as rows, written by one upsert per request, read
together with the blocks by one statement (one snapshot).

The table, the meaning of its rows and the locks are described in the package docstring.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any, Final

import numpy as np
import psycopg

from tempodb.storage.base import (
    MAX_EXACT_INT,
    BoolArray,
    Float64Array,
    Int64Array,
    Piece,
    Points,
    check_increment,
    merge_points,
)
from tempodb.storage.blocks import clip_pieces, concat, decode_run
from tempodb.storage.postgres import arrays
from tempodb.storage.postgres.blocks import BLOCK_COLUMNS, FROM_LO, decode_rows

_Conn = psycopg.Connection[Any]

#: The smallest magnitude that float64 addition rounds to infinity (halfway past the largest).
_FLOAT_OVERFLOW: Final = str(2**1024 - 2**970)
_ROWS: Final = (
    "unnest(%(sid)s::bigint[], %(ts)s::bigint[], %(v)s::float8[], %(i)s::bool[]) "
    "AS u(sid, ts, v, i)"
)
_REPLACING: Final = (
    "ON CONFLICT (db, sid, ts) DO UPDATE SET v = excluded.v, is_int = excluded.is_int, whole = true"
)
_OVERWRITE: Final = (
    "INSERT INTO head AS h (db, sid, ts, v, is_int, whole) "
    f"SELECT %(db)s, u.sid, u.ts, u.v, u.i, true FROM {_ROWS} {_REPLACING}"
)
#: An overwrite of series that all exist, in one statement (autocommit: its own transaction):
#: lock the series (KEY SHARE), and upsert the points unless a ref is missing (then nothing).
OVERWRITE_KNOWN: Final = (
    "WITH k AS (SELECT sid, key AS ref FROM series WHERE db = %(db)s "
    "AND key = ANY(%(keys)s::text[]) ORDER BY sid FOR KEY SHARE), "
    "i AS (SELECT sid, id AS ref FROM series WHERE db = %(db)s "
    "AND id = ANY(%(ids)s::text[]) ORDER BY sid FOR KEY SHARE), "
    "s AS (SELECT true AS by_key, sid, ref FROM k UNION ALL SELECT false, sid, ref FROM i) "
    "INSERT INTO head AS h (db, sid, ts, v, is_int, whole) "
    "SELECT %(db)s, s.sid, u.ts, u.v, u.i, true FROM unnest(%(by_key)s::bool[], "
    "%(ref)s::text[], %(ts)s::bigint[], %(v)s::float8[], %(i)s::bool[]) "
    "AS u(by_key, ref, ts, v, i) JOIN s ON s.by_key = u.by_key AND s.ref = u.ref "
    "WHERE (SELECT count(*) FROM s) = %(n)s ORDER BY s.sid, u.ts "
    "ON CONFLICT (db, sid, ts) DO UPDATE SET v = excluded.v, is_int = excluded.is_int, "
    "whole = true RETURNING h.sid"
)
#: An increment adds to the head row, or creates one holding the increment alone; it returns
#: the rows that need a second look: a new row (``NOT whole``) whose timestamp a block spans
#: (the block's value there, if any, must be added), and sums out of range: integers beyond
#: 2**53 (computed exactly, in bigint) marked NaN, sums beyond the float64 range marked
#: Infinity (no stored value is either; the caller then rolls back).
_ADDING: Final = (
    "ON CONFLICT (db, sid, ts) DO UPDATE SET v = CASE WHEN h.is_int AND excluded.is_int "
    f"AND abs(h.v::bigint + excluded.v::bigint) > {MAX_EXACT_INT} THEN 'NaN'::float8 "
    "WHEN abs(h.v::numeric + excluded.v::numeric) >= "
    f"{_FLOAT_OVERFLOW} THEN 'Infinity'::float8 "
    "ELSE h.v + excluded.v END, is_int = h.is_int AND excluded.is_int "
    "RETURNING h.sid, h.ts, h.v, h.is_int, h.whole"
)
_UPSERT_ADDING: Final = (
    "INSERT INTO head AS h (db, sid, ts, v, is_int, whole) "
    f"SELECT %(db)s, u.sid, u.ts, u.v, u.i, false FROM {_ROWS} {_ADDING}"
)
_INCREMENT: Final = (
    f"WITH up AS ({_UPSERT_ADDING}), "
    "checked AS (SELECT sid, ts, v, is_int, NOT whole AND coalesce((SELECT b.last >= up.ts "
    "FROM block b WHERE b.db = %(db)s AND b.sid = up.sid AND b.first <= up.ts "
    "ORDER BY b.first DESC LIMIT 1), false) AS spanned FROM up) "
    "SELECT sid, ts, v, is_int, spanned FROM checked "
    "WHERE spanned OR v IN ('NaN'::float8, 'Infinity'::float8)"
)
_HOLDING: Final = (
    f"SELECT DISTINCT ON (b.sid, b.first) b.sid, b.{', b.'.join(BLOCK_COLUMNS.split(', '))} "
    "FROM unnest(%s::bigint[], %s::bigint[]) AS u(sid, ts) CROSS JOIN LATERAL "
    f"(SELECT sid, {BLOCK_COLUMNS} FROM block WHERE db = %s AND sid = u.sid AND first <= u.ts "
    "ORDER BY first DESC LIMIT 1) b ORDER BY b.sid, b.first"
)
_SET_WHOLE: Final = (
    f"UPDATE head h SET v = u.v, is_int = u.i, whole = true FROM {_ROWS} "
    "WHERE h.db = %(db)s AND h.sid = u.sid AND h.ts = u.ts"
)
_NO_ARRAYS: Final = "NULL::bigint[], NULL::float8[], NULL::bool[]"
_NO_BLOCK: Final = (
    "NULL::bigint, NULL::integer, NULL::smallint, NULL::bytea, NULL::bytea, NULL::bytea"
)
#: A range read: the blocks (kind 0, ordered) and the head rows as three arrays (kind 1).
READ: Final = (
    f"(SELECT 0 AS kind, {BLOCK_COLUMNS}, {_NO_ARRAYS} FROM block "
    "WHERE db = %(db)s AND sid = %(sid)s AND first < %(hi)s AND last >= %(lo)s "
    f"AND {FROM_LO} ORDER BY first) "
    f"UNION ALL SELECT 1, {_NO_BLOCK}, array_agg(ts ORDER BY ts), array_agg(v ORDER BY ts), "
    "array_agg(is_int ORDER BY ts) FROM head "
    "WHERE db = %(db)s AND sid = %(sid)s AND ts >= %(lo)s AND ts < %(hi)s"
)
_HEAD_NEAR: Final = (
    f"SELECT 1, {_NO_BLOCK}, ARRAY[ts], ARRAY[v], ARRAY[is_int] FROM head "
    "WHERE db = %(db)s AND sid = %(sid)s"
)
#: Around one timestamp: the block that may hold it and the head row at or before it; with
#: ``SINGLE_AFTER`` too, the next block and the next head row.
SINGLE: Final = (
    f"(SELECT 0 AS kind, {BLOCK_COLUMNS}, {_NO_ARRAYS} FROM block "
    "WHERE db = %(db)s AND sid = %(sid)s AND first <= %(ts)s ORDER BY first DESC LIMIT 1) "
    f"UNION ALL ({_HEAD_NEAR} AND ts <= %(ts)s ORDER BY ts DESC LIMIT 1)"
)
SINGLE_AFTER: Final = (
    f" UNION ALL (SELECT 0 AS kind, {BLOCK_COLUMNS}, {_NO_ARRAYS} FROM block "
    "WHERE db = %(db)s AND sid = %(sid)s AND first > %(ts)s ORDER BY first LIMIT 1) "
    f"UNION ALL ({_HEAD_NEAR} AND ts > %(ts)s ORDER BY ts LIMIT 1)"
)


class OutOfRange(Exception):
    """Increments whose sums with the head are out of range, as (sid, ts, value, is_int) of
    the increment: the caller rolls back, then explains (``ValueOutOfRange``) with the sum."""

    def __init__(self, points: list[tuple[int, int, float, bool]]) -> None:
        super().__init__(f"{len(points)} increments out of range")
        self.points = points


def _rows(db: int, sids: Any, ts: Any, values: Any, is_int: Any) -> dict[str, Any]:
    """The parameters of ``_ROWS`` (numpy arrays, or lists), as array literals."""
    return {
        "db": db,
        "sid": arrays.literal(sids),
        "ts": arrays.literal(ts),
        "v": arrays.literal(values),
        "i": arrays.literal(is_int),
    }


def write(
    conn: _Conn,
    db: int,
    sids: Int64Array,
    ts: Int64Array,
    values: Float64Array,
    is_int: BoolArray,
    *,
    increment: bool,
    on_citus: bool = False,
) -> None:
    """Upsert the points (unique per (sid, ts), ordered by sid and ts, so that two requests
    take the row locks in the same order) into the head, in one statement.  The caller holds
    the series locks (KEY SHARE at least).  An increment whose result is out of range raises
    ValueOutOfRange (the caller's transaction then writes nothing)."""
    if not increment:
        if on_citus:
            _upsert_on_citus(conn, db, sids, ts, values, is_int, whole=True, tail=_REPLACING)
        else:
            conn.execute(_OVERWRITE, _rows(db, sids, ts, values, is_int))
        return
    if on_citus:  # every row, ``whole`` in place of ``spanned`` (no correlated subquery)
        rows = [
            r
            for r in _upsert_on_citus(conn, db, sids, ts, values, is_int, whole=False, tail=_ADDING)
            if not r[4] or math.isnan(r[2]) or math.isinf(r[2])
        ]
    else:
        rows = conn.execute(_INCREMENT, _rows(db, sids, ts, values, is_int)).fetchall()
    marked = [(int(r[0]), int(r[1])) for r in rows if math.isnan(r[2]) or math.isinf(r[2])]
    if marked:
        added = {
            (int(s), int(t)): (float(v), bool(i))
            for s, t, v, i in zip(sids, ts, values, is_int, strict=True)
        }
        raise OutOfRange([(sid, t, *added[sid, t]) for sid, t in marked])
    if rows:
        _add_block_values(conn, db, rows, on_citus=on_citus)


#: Rows per VALUES upsert on Citus (six parameters each, at most 65,535 per statement).
_CITUS_ROWS: Final = 10_000


def _upsert_on_citus(
    conn: _Conn,
    db: int,
    sids: Any,
    ts: Any,
    values: Any,
    is_int: Any,
    *,
    whole: bool,
    tail: str,
) -> list[Any]:
    """The head upsert on Citus, as multi-row VALUES inserts (in sid and ts order): Citus
    routes their rows to their shards at once, where an INSERT ... SELECT FROM unnest goes
    through intermediate results on the coordinator (measured: 100-170 ms for 10 rows).  The
    rows it returns, if ``tail`` returns any."""
    rows = list(zip(sids.tolist(), ts.tolist(), values.tolist(), is_int.tolist(), strict=True))
    out: list[Any] = []
    for lo in range(0, len(rows), _CITUS_ROWS):
        part = rows[lo : lo + _CITUS_ROWS]
        sql = (
            "INSERT INTO head AS h (db, sid, ts, v, is_int, whole) VALUES "
            + ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(part))
            + " "
            + tail
        )
        flat: list[Any] = []
        for sid, t, v, i in part:
            flat += [db, sid, t, v, i, whole]
        cur = conn.execute(sql.encode(), flat)
        if cur.description is not None:
            out += cur.fetchall()
    return out


def _holding_on_citus(conn: _Conn, db: int, sids: Any, ts: Any) -> list[Any]:
    """``_HOLDING`` on Citus: per series (a single-shard statement each, pipelined), the
    blocks that span its timestamps' range."""
    spans: dict[int, tuple[int, int]] = {}
    for sid, t in zip(sids.tolist(), ts.tolist(), strict=True):
        lo, hi = spans.get(sid, (t, t))
        spans[sid] = (min(lo, t), max(hi, t))
    sql = (
        f"SELECT sid, {BLOCK_COLUMNS} FROM block WHERE db = %s AND sid = %s AND last >= %s "
        "AND first <= %s ORDER BY first"
    )
    with conn.pipeline():
        cursors = [
            conn.execute(sql, (db, sid, lo, hi), binary=True) for sid, (lo, hi) in spans.items()
        ]
    return [row for cur in cursors for row in cur.fetchall()]


def _add_block_values(
    conn: _Conn, db: int, rows: Sequence[Sequence[Any]], *, on_citus: bool = False
) -> None:
    """New increment rows whose timestamps blocks span: add what the blocks hold there (the
    blocks cannot change meanwhile: the caller holds the series locks) and mark them whole.
    (On Citus, every new row: those that no block spans are whole as they are.)"""
    sids = np.array([r[0] for r in rows], np.int64)
    ts = np.array([r[1] for r in rows], np.int64)
    values = np.array([r[2] for r in rows], np.float64)
    is_int = np.array([r[3] for r in rows], np.bool_)
    exact = np.where(is_int, values, 0).astype(np.int64)
    if on_citus:
        blocks = _holding_on_citus(conn, db, sids, ts)
    else:
        blocks = conn.execute(
            _HOLDING, (arrays.literal(sids), arrays.literal(ts), db), binary=True
        ).fetchall()
    for sid in np.unique(sids).tolist():
        mine = [b[1:] for b in blocks if int(b[0]) == sid]
        if not mine:
            continue
        held = concat(decode_rows(mine))
        at = np.flatnonzero(sids == sid)
        pos = np.searchsorted(held.ts, ts[at])
        hit = pos < len(held)
        hit[hit] = held.ts[pos[hit]] == ts[at][hit]
        with np.errstate(over="ignore", invalid="ignore"):
            values[at[hit]] += held.values[pos[hit]]
        is_int[at[hit]] &= held.is_int[pos[hit]]
        exact[at[hit]] += np.where(held.is_int[pos[hit]], held.values[pos[hit]], 0).astype(np.int64)
    check_increment(ts, values, is_int, exact[is_int])
    if on_citus:  # an upsert of rows that exist
        _upsert_on_citus(conn, db, sids, ts, values, is_int, whole=True, tail=_REPLACING)
    else:
        conn.execute(_SET_WHOLE, _rows(db, sids, ts, values, is_int))


def take(conn: _Conn, db: int, sids: Sequence[int]) -> dict[int, Points]:
    """Delete the head rows of these (locked) series and return them as points per series."""
    if not sids:
        return {}
    rows = conn.execute(
        "DELETE FROM head WHERE db = %s AND sid = ANY(%s::bigint[]) RETURNING sid, ts, v, is_int",
        (db, arrays.literal(list(sids))),
        binary=True,
    ).fetchall()
    if not rows:
        return {}
    sid = np.array([r[0] for r in rows], np.int64)
    ts = np.array([r[1] for r in rows], np.int64)
    values = np.array([r[2] for r in rows], np.float64)
    is_int = np.array([r[3] for r in rows], np.bool_)
    order = np.lexsort((ts, sid))
    sid, ts, values, is_int = sid[order], ts[order], values[order], is_int[order]
    cuts = [0, *(np.flatnonzero(np.diff(sid)) + 1).tolist(), len(sid)]
    return {
        int(sid[a]): Points(ts[a:b], values[a:b], is_int[a:b]) for a, b in itertools.pairwise(cuts)
    }


def merged(
    rows: Sequence[Sequence[Any]], start: int | None = None, end: int | None = None
) -> Points:
    """The points of a ``READ`` (or ``SINGLE``) answer: the blocks, with the head rows in
    place of the block points they replace (clipped to ``start <= ts < end`` when given)."""
    blocks = sorted((r[1:7] for r in rows if r[0] == 0), key=lambda r: int(r[0]))
    if start is not None and end is not None:
        got = decode_run(blocks, start, end)
    else:
        got = concat(decode_rows(blocks))
    heads = [r for r in rows if r[0] == 1 and r[7] is not None]
    if not heads:
        return got
    ts = np.array([t for r in heads for t in r[7]], np.int64)
    values = np.array([v for r in heads for v in r[8]], np.float64)
    is_int = np.array([i for r in heads for i in r[9]], np.bool_)
    if ts.shape[0] > 1 and bool(np.any(np.diff(ts) <= 0)):
        order = np.argsort(ts, kind="stable")
        ts, values, is_int = ts[order], values[order], is_int[order]
    return merge_points(got, Points(ts, values, is_int), increment=False)


def pieces(rows: Sequence[Sequence[Any]], start: int, end: int) -> list[Piece]:
    """``merged`` as pieces (``Store.read_pieces_many``): without head rows in the range, the
    blocks decoded one by one and clipped (each evenly spaced one with its step); with some,
    the merged points as one piece."""
    if any(r[0] == 1 and r[7] is not None for r in rows):
        found = merged(rows, start, end)
        return [(found.ts, found.values, found.is_int, 0)]
    blocks = sorted((r[1:7] for r in rows if r[0] == 0), key=lambda r: int(r[0]))
    return clip_pieces(decode_rows(blocks), start, end)
