"""Writes and folds on PostgreSQL: what goes to the head, to new blocks or into existing
blocks, and the fold transaction (see the package docstring)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import psycopg

from tempodb.storage.base import (
    Points,
    WriteBatch,
    fold_batch,
)
from tempodb.storage.blocks import Block, split
from tempodb.storage.postgres import blocks, citus, head
from tempodb.storage.postgres.series import Retry, resolve, storable

_Conn = psycopg.Connection[Any]

#: The most points of a write that may take the one-statement path.
SMALL: Final = 256
#: Every (db, sid) with head rows, by a loose index scan of the head's primary key.
HEAD_SERIES: Final = (
    "WITH RECURSIVE t AS ((SELECT db, sid FROM head ORDER BY db, sid LIMIT 1) UNION ALL "
    "SELECT n.db, n.sid FROM t CROSS JOIN LATERAL (SELECT db, sid FROM head "
    "WHERE (db, sid) > (t.db, t.sid) ORDER BY db, sid LIMIT 1) n) SELECT db, sid FROM t LIMIT %s"
)


@dataclass(frozen=True)
class Written:
    """What a write transaction did: the refs it skipped, the head points it added per sid."""

    skipped: tuple[int, ...]
    head_counts: dict[int, int]


def without(batch: WriteBatch, refs: Sequence[int]) -> WriteBatch:
    keep = ~np.isin(batch.ref_index, np.asarray(refs, np.int32))
    return WriteBatch(
        batch.refs,
        batch.ref_index[keep],
        batch.ts[keep],
        batch.values[keep],
        batch.is_int[keep],
        batch.skip_conflicts,
    )


def known_params(db: int, batch: WriteBatch, direct: int) -> dict[str, Any] | None:
    """The parameters of ``head.OVERWRITE_KNOWN`` for a small overwrite, or None when the
    write is not small (more than ``SMALL`` points, or ``direct`` for one series) or names
    a series that PostgreSQL cannot store."""
    if len(batch) > SMALL or (
        batch.max_new_series is not None and len(batch.refs) > batch.max_new_series
    ):
        return None
    refs = [(ref.field == "key", ref.value) for ref in batch.refs]
    if not storable(*(value for _, value in refs)):
        return None
    # The last value per (ref, timestamp), in plain Python: cheaper than numpy for a few.
    last: dict[tuple[tuple[bool, str], int], tuple[float, bool]] = {}
    columns = (batch.ref_index.tolist(), batch.ts.tolist(), batch.values.tolist())
    for r, t, v, i in zip(*columns, batch.is_int.tolist(), strict=True):
        last[refs[r], t] = (v, i)
    per_ref: dict[tuple[bool, str], int] = {}
    for ref, _ in last:
        per_ref[ref] = per_ref.get(ref, 0) + 1
    if max(per_ref.values()) >= direct:
        return None
    return {
        "db": db,
        "keys": [value for by_key, value in per_ref if by_key],
        "ids": [value for by_key, value in per_ref if not by_key],
        "n": len(per_ref),
        "by_key": [ref[0] for ref, _ in last],
        "ref": [ref[1] for ref, _ in last],
        "ts": [t for _, t in last],
        "v": [v for v, _ in last.values()],
        "i": [i for _, i in last.values()],
    }


def write(
    conn: _Conn,
    db: int,
    batch: WriteBatch,
    *,
    increment: bool,
    cap: int,
    direct_points: int,
    on_citus: bool = False,
) -> Written:
    """Store a write in the caller's transaction: resolve and lock its series, then small
    parts into the head, large parts of new series as new blocks, and large parts of
    existing series into their blocks (their head rows folded first).  ``on_citus``: the
    series are locked by their ``series_lock`` rows, beside their points (``citus``)."""
    if on_citus:  # shard after shard: writers take the head's row locks in one order
        conn.execute(citus.SEQUENTIAL)
    counts = np.bincount(batch.ref_index, minlength=len(batch.refs))
    used = np.flatnonzero(counts).tolist()
    # Requests with a large part lock their series for block writes, others share them.
    lock: Any = "UPDATE" if int(counts.max()) >= direct_points else "KEY SHARE"
    found = resolve(
        conn,
        db,
        [batch.refs[i] for i in used],
        None if on_citus else lock,
        skip_conflicts=batch.skip_conflicts,
        max_new=batch.max_new_series,
        citus=on_citus,
    )
    if on_citus:
        # (The series this transaction created: their lock rows are its own until it commits.)
        wanted = {hit[0] for hit in found.series if hit is not None} - found.created
        if len(citus.lock_series(conn, db, sorted(wanted), lock)) < len(wanted):
            raise Retry("a series was deleted, or its creation has not reached its node yet")
    series_of_ref = [""] * len(batch.refs)
    sids: dict[str, int] = {}
    skipped: list[int] = []
    for i, hit in zip(used, found.series, strict=True):
        if hit is None:
            skipped.append(i)
        else:
            sids[hit[1]] = hit[0]
            series_of_ref[i] = hit[1]
    if skipped:
        batch = without(batch, skipped)
    fresh: list[tuple[int, list[Block]]] = []
    direct: dict[int, Points] = {}
    small: list[tuple[int, Points]] = []
    for series_id, points in fold_batch(batch, series_of_ref, increment=increment).items():
        sid = sids[series_id]
        if len(points) < direct_points:
            small.append((sid, points))
        elif sid in found.created:  # no blocks, no head rows: just insert the blocks
            fresh.append((sid, split(points, cap, at_end=True)))
        elif lock == "UPDATE":
            direct[sid] = points
        else:
            small.append((sid, points))
    if direct:
        taken = head.take(conn, db, sorted(direct))
        for sid in sorted(direct):
            if sid in taken:
                blocks.fold_in(conn, db, sid, cap, taken[sid])
            blocks.merge(conn, db, sid, cap, direct[sid], increment=increment)
    blocks.put_many(conn, db, fresh)
    if small:
        small.sort(key=lambda item: item[0])
        head.write(
            conn,
            db,
            np.repeat([sid for sid, _ in small], [len(p) for _, p in small]).astype(np.int64),
            np.concatenate([p.ts for _, p in small]),
            np.concatenate([p.values for _, p in small]),
            np.concatenate([p.is_int for _, p in small]),
            increment=increment,
            on_citus=on_citus,
        )
    return Written(tuple(skipped), {sid: len(p) for sid, p in small})


def fold(
    conn: _Conn, db: int, sids: Sequence[int], cap: int, *, on_citus: bool = False
) -> list[int]:
    """Fold the head rows of these series into their blocks in the caller's transaction;
    the sids skipped because another transaction holds them."""
    if on_citus:
        return _fold_on_citus(conn, db, sids, cap)
    locked = [
        int(row[0])
        for row in conn.execute(
            "SELECT sid FROM series WHERE db = %s AND sid = ANY(%s::bigint[]) "
            "ORDER BY sid FOR UPDATE SKIP LOCKED",
            (db, list(sids)),
        )
    ]
    rest = sorted(set(sids) - set(locked))
    if rest:  # head rows of a deleted series (none should exist) go with it
        conn.execute(
            "DELETE FROM head h WHERE db = %s AND sid = ANY(%s::bigint[]) AND NOT EXISTS "
            "(SELECT 1 FROM series s WHERE s.db = h.db AND s.sid = h.sid)",
            (db, rest),
        )
    taken = head.take(conn, db, locked)
    if taken:
        with_blocks = {
            int(row[0])
            for row in conn.execute(
                "SELECT u.sid FROM unnest(%s::bigint[]) AS u(sid) WHERE EXISTS "
                "(SELECT 1 FROM block WHERE db = %s AND sid = u.sid)",
                (sorted(taken), db),
            )
        }
        _fold_taken(conn, db, cap, taken, with_blocks)
    return rest


def _fold_taken(
    conn: _Conn, db: int, cap: int, taken: dict[int, Points], with_blocks: set[int]
) -> None:
    for sid in sorted(with_blocks):
        blocks.fold_in(conn, db, sid, cap, taken[sid])
    # Series without blocks yet (new ones, the common case) get theirs in one statement.
    fresh = [
        (sid, split(points, cap, at_end=True))
        for sid, points in sorted(taken.items())
        if sid not in with_blocks
    ]
    blocks.put_many(conn, db, fresh)


def _fold_on_citus(conn: _Conn, db: int, sids: Sequence[int], cap: int) -> list[int]:
    """``fold`` with the series locks of Citus (``citus.lock_series``) and plain multi-shard
    statements in place of the correlated subqueries."""
    conn.execute(citus.SEQUENTIAL)
    locked = citus.lock_series(conn, db, sids, "UPDATE", skip_locked=True)
    rest = sorted(set(sids) - set(locked))
    gone: list[int] = []
    if rest:  # head rows of a deleted series (none should exist) go with it
        alive = {
            int(row[0])
            for row in conn.execute(
                "SELECT sid FROM series_lock WHERE db = %s AND sid = ANY(%s::bigint[])",
                (db, rest),
            )
        }
        gone = [sid for sid in rest if sid not in alive]
        if gone:
            conn.execute("DELETE FROM head WHERE db = %s AND sid = ANY(%s::bigint[])", (db, gone))
    taken = head.take(conn, db, locked)
    if taken:
        with_blocks = {
            int(row[0])
            for row in conn.execute(
                "SELECT DISTINCT sid FROM block WHERE db = %s AND sid = ANY(%s::bigint[])",
                (db, sorted(taken)),
            )
        }
        _fold_taken(conn, db, cap, taken, with_blocks)
    return [sid for sid in rest if sid not in gone]
