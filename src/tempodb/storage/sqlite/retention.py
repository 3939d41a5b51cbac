"""Retention on the SQLite store: the retention of each database, the 15-minute tier, and the
pass that summarizes and drops expired points.

Tables (schema version 7)
    ``retention(db, keep_ms, tier_keep_ms)``
        One row per database that has a retention; NULL keeps forever.
    ``tier(sid, day, n, data)``
        The 15-minute summaries (``tempodb.tier``) of a series for one UTC day (``day``: epoch
        ms of its midnight), packed by ``tier.pack``; ``n`` is the number of summaries.

The pass (``expire_series``), one writer call per series, so one transaction (a savepoint of
the writer's group commit): the points before the cutoff (a 15-minute mark) are read, their
summaries merged into the tier's day chunks (summaries of a bucket already there are
combined with them, so a point written late below the cutoff is counted once, at the next
pass), and the points dropped with the range delete of ``points.PointWriter`` (whole blocks
deleted, the edge block rewritten).  A crash anywhere rolls the whole series back.

Where the points come from: the blocks and the write head (``head``).  ``points_of`` reads
both (the pass and the tiered reads), ``_drop_before`` deletes from both with
``PointWriter.delete_range``, and ``due_series`` finds the series that have some before a
cutoff in either.
"""

from __future__ import annotations

import sqlite3
from typing import Final

from tempodb import tier
from tempodb.storage import retention as common
from tempodb.storage.base import Points
from tempodb.storage.blocks import concat, decode_run
from tempodb.storage.sqlite import head
from tempodb.storage.sqlite.points import BLOCK_COLUMNS, READ, PointWriter
from tempodb.zones import MIN_MS, MS_PER_DAY

#: The migration that adds the tables (appended to ``schema.MIGRATIONS``).
MIGRATION: Final = (
    """CREATE TABLE retention (
        db INTEGER PRIMARY KEY,
        keep_ms INTEGER,
        tier_keep_ms INTEGER
    )""",
    """CREATE TABLE tier (
        sid INTEGER NOT NULL,
        day INTEGER NOT NULL,
        n INTEGER NOT NULL,
        data BLOB NOT NULL,
        PRIMARY KEY (sid, day)
    ) WITHOUT ROWID""",
)


def forget_database(conn: sqlite3.Connection, db: int) -> None:
    """Delete a database's retention and tier (with its series, in its transaction)."""
    conn.execute("DELETE FROM tier WHERE sid IN (SELECT sid FROM series WHERE db = ?)", (db,))
    conn.execute("DELETE FROM retention WHERE db = ?", (db,))


def due_series(
    conn: sqlite3.Connection, db: int, cutoff: int | None, tier_cutoff: int | None
) -> list[tuple[int, str]]:
    """(sid, id) of the series of ``db`` with points before ``cutoff`` or tier summaries
    before ``tier_cutoff``."""
    found: dict[int, str] = {}
    if cutoff is not None:
        found.update(
            conn.execute(
                "SELECT s.sid, s.id FROM series s WHERE s.db = ? AND (EXISTS "
                "(SELECT 1 FROM block b WHERE b.sid = s.sid AND b.first < ?) OR EXISTS "
                "(SELECT 1 FROM head h WHERE h.sid = s.sid AND h.ts < ?))",
                (db, cutoff, cutoff),
            ).fetchall()
        )
    if tier_cutoff is not None:
        found.update(
            conn.execute(
                "SELECT s.sid, s.id FROM series s WHERE s.db = ? AND EXISTS "
                "(SELECT 1 FROM tier t WHERE t.sid = s.sid AND t.day < ?)",
                (db, tier_cutoff),
            ).fetchall()
        )
    return sorted(found.items())


def points_of(conn: sqlite3.Connection, sid: int, start: int, end: int) -> Points:
    """The points of a series in ``[start, end)``: its blocks, then its head (whose rows
    are all later than the blocks' points)."""
    rows = conn.execute(READ.format(columns=BLOCK_COLUMNS), (sid, start, end)).fetchall()
    return concat([decode_run(rows, start, end), head.read(conn, sid, start, end)])


def _drop_before(
    conn: sqlite3.Connection, writer: PointWriter, db: int, series_id: str, cutoff: int
) -> int:
    return writer.delete_range(conn, db, series_id, MIN_MS, cutoff)


def expire_series(
    conn: sqlite3.Connection,
    writer: PointWriter,
    db: int,
    sid: int,
    series_id: str,
    cutoff: int | None,
    tier_cutoff: int | None,
) -> tuple[int, int, int]:
    """Summarize and drop the points before ``cutoff`` (a 15-minute mark), drop the
    summaries before ``tier_cutoff``: (points dropped, summaries written, summaries
    dropped)."""
    dropped = written = gone = 0
    if cutoff is not None:
        old = points_of(conn, sid, MIN_MS, cutoff)
        if len(old):
            summaries = tier.summarize(old.ts, old.values, old.is_int)
            if tier_cutoff is not None:
                summaries = summaries.take(summaries.ts >= tier_cutoff)
            store(conn, sid, summaries)
            written = len(summaries)
            dropped = _drop_before(conn, writer, db, series_id, cutoff)
    if tier_cutoff is not None:
        gone = drop_tier(conn, sid, MIN_MS, tier_cutoff)
    return dropped, written, gone


def store(conn: sqlite3.Connection, sid: int, summaries: tier.Tier) -> None:
    """Merge summaries into the series' day chunks."""
    for day, part in tier.by_day(summaries):
        row = conn.execute("SELECT data FROM tier WHERE sid = ? AND day = ?", (sid, day)).fetchone()
        if row is not None:
            part = tier.merge(tier.unpack(row[0]), part)
        conn.execute(
            "INSERT OR REPLACE INTO tier (sid, day, n, data) VALUES (?, ?, ?, ?)",
            (sid, day, len(part), tier.pack(part)),
        )


def read(conn: sqlite3.Connection, sid: int, start: int, end: int) -> tier.Tier:
    """The summaries whose buckets overlap ``[start, end)``."""
    rows = conn.execute(
        "SELECT data FROM tier WHERE sid = ? AND day >= ? AND day < ? ORDER BY day",
        (sid, (start - tier.TIER_MS) // MS_PER_DAY * MS_PER_DAY, end),
    ).fetchall()
    if not rows:
        return tier.Tier.empty()
    found = tier.unpack_many([r[0] for r in rows])
    return found.take((found.ts + tier.TIER_MS > start) & (found.ts < end))


def drop_tier(conn: sqlite3.Connection, sid: int, start: int, end: int) -> int:
    """Delete the summaries whose buckets lie wholly in ``[start, end)``; TierCut when a
    bucket lies across ``start`` or ``end``.  How many were deleted."""
    rows = conn.execute(
        "SELECT day, n, data FROM tier WHERE sid = ? AND day >= ? AND day < ? ORDER BY day",
        (sid, common.first_day(start), end),
    ).fetchall()
    plan = common.plan_tier_drop(rows, start, end)
    conn.executemany(
        "UPDATE tier SET n = ?, data = ? WHERE sid = ? AND day = ?",
        [(len(rest), tier.pack(rest), sid, day) for day, rest in plan.rewrite],
    )
    conn.executemany(
        "DELETE FROM tier WHERE sid = ? AND day = ?", [(sid, day) for day in plan.delete]
    )
    return plan.dropped
