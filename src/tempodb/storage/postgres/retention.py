"""Retention on the PostgreSQL store: the retention of each database, the 15-minute tier, and
the pass that summarizes and drops expired points, head rows and blocks alike.

Tables (schema version 5)
    ``retention(db, keep_ms, tier_keep_ms)``
        One row per database that has a retention; NULL keeps forever.
    ``tier(db, sid, day, n, data)``
        The 15-minute summaries (``tempodb.tier``) of a series for one UTC day (``day``: epoch
        ms of its midnight), packed by ``tier.pack``; primary key (db, sid, day), so that it
        is distributed by series with the blocks.

The pass (``expire_series``) is one transaction per series: the series' row is locked ``FOR
UPDATE`` (head writers hold ``FOR KEY SHARE``: it waits for them, and they for it), the points
before the cutoff are read from the blocks and the head rows together (``head.READ``), their
summaries merged into the day chunks (combined with those already there, so a late point is
counted once), the head rows before the cutoff deleted and the blocks cut (whole blocks
deleted, the edge block rewritten).  Any failure or crash rolls the series back whole.
"""

from __future__ import annotations

from typing import Any, Final

import psycopg

from tempodb import tier
from tempodb.storage import retention as common
from tempodb.storage.base import Points
from tempodb.storage.postgres import blocks, head
from tempodb.zones import MIN_MS, MS_PER_DAY

_Conn = psycopg.Connection[Any]

#: The migration that adds the tables (appended to ``schema.MIGRATIONS``).
MIGRATION: Final = (
    """CREATE TABLE retention (
        db bigint PRIMARY KEY,
        keep_ms bigint,
        tier_keep_ms bigint
    )""",
    """CREATE TABLE tier (
        db bigint NOT NULL,
        sid bigint NOT NULL,
        day bigint NOT NULL,
        n integer NOT NULL,
        data bytea NOT NULL,
        PRIMARY KEY (db, sid, day)
    )""",
    "ALTER TABLE tier ALTER COLUMN data SET STORAGE EXTERNAL",
)


def forget_database(conn: _Conn, db: int) -> None:
    conn.execute("DELETE FROM tier WHERE db = %s", (db,))
    conn.execute("DELETE FROM retention WHERE db = %s", (db,))


def due_series(conn: _Conn, db: int, cutoff: int | None, tier_cutoff: int | None) -> list[int]:
    """The sids of ``db`` with points (blocks or head rows) before ``cutoff`` or summaries
    before ``tier_cutoff``."""
    found: set[int] = set()
    if cutoff is not None:
        for sql in (
            "SELECT DISTINCT sid FROM block WHERE db = %s AND first < %s",
            "SELECT DISTINCT sid FROM head WHERE db = %s AND ts < %s",
        ):
            found.update(int(r[0]) for r in conn.execute(sql, (db, cutoff)))
    if tier_cutoff is not None:
        rows = conn.execute(
            "SELECT DISTINCT sid FROM tier WHERE db = %s AND day < %s", (db, tier_cutoff)
        )
        found.update(int(r[0]) for r in rows)
    return sorted(found)


def expire_series(
    conn: _Conn, db: int, sid: int, cap: int, cutoff: int | None, tier_cutoff: int | None
) -> tuple[int, int, int]:
    """In the caller's transaction: summarize and drop the points before ``cutoff``, drop
    the summaries before ``tier_cutoff`` (see the module docstring); (points dropped,
    summaries written, summaries dropped)."""
    locked = conn.execute(
        "SELECT sid FROM series WHERE db = %s AND sid = %s FOR UPDATE", (db, sid)
    ).fetchone()
    if locked is None:  # deleted meanwhile
        return 0, 0, 0
    dropped = written = gone = 0
    if cutoff is not None:
        params = {"db": db, "sid": sid, "lo": MIN_MS, "hi": cutoff}
        old: Points = head.merged(
            conn.execute(head.READ, params, binary=True).fetchall(), MIN_MS, cutoff
        )
        if len(old):
            summaries = tier.summarize(old.ts, old.values, old.is_int)
            if tier_cutoff is not None:
                summaries = summaries.take(summaries.ts >= tier_cutoff)
            store(conn, db, sid, summaries)
            written = len(summaries)
            conn.execute(
                "DELETE FROM head WHERE db = %s AND sid = %s AND ts < %s", (db, sid, cutoff)
            )
            blocks.delete_range(conn, db, sid, cap, MIN_MS, cutoff)
            dropped = len(old)
    if tier_cutoff is not None:
        gone = drop_tier(conn, db, sid, MIN_MS, tier_cutoff)
    return dropped, written, gone


def store(conn: _Conn, db: int, sid: int, summaries: tier.Tier) -> None:
    """Merge summaries into the series' day chunks."""
    for day, part in tier.by_day(summaries):
        row = conn.execute(
            "SELECT data FROM tier WHERE db = %s AND sid = %s AND day = %s",
            (db, sid, day),
            binary=True,
        ).fetchone()
        if row is not None:
            part = tier.merge(tier.unpack(bytes(row[0])), part)
        conn.execute(
            "INSERT INTO tier (db, sid, day, n, data) VALUES (%s, %s, %s, %s, %b) "
            "ON CONFLICT (db, sid, day) DO UPDATE SET n = excluded.n, data = excluded.data",
            (db, sid, day, len(part), tier.pack(part)),
        )


#: The summaries of a range, read in the same statement as its points (one snapshot).
READ_TIER: Final = (
    "SELECT data FROM tier WHERE db = %(db)s AND sid = %(sid)s AND day >= %(day)s "
    "AND day < %(hi)s ORDER BY day"
)


def read(conn: _Conn, db: int, sid: int, start: int, end: int) -> tuple[tier.Tier, Points]:
    """The summaries overlapping ``[start, end)`` and the points in it, from one snapshot
    (the caller runs this in a REPEATABLE READ transaction)."""
    params = {
        "db": db,
        "sid": sid,
        "lo": start,
        "hi": end,
        "day": (start - tier.TIER_MS) // MS_PER_DAY * MS_PER_DAY,
    }
    rows = conn.execute(READ_TIER, params, binary=True).fetchall()
    points = head.merged(conn.execute(head.READ, params, binary=True).fetchall(), start, end)
    if not rows:
        return tier.Tier.empty(), points
    found = tier.unpack_many([bytes(r[0]) for r in rows])
    return found.take((found.ts + tier.TIER_MS > start) & (found.ts < end)), points


def drop_tier(conn: _Conn, db: int, sid: int, start: int, end: int) -> int:
    """Delete the summaries whose buckets lie wholly in ``[start, end)`` of a locked series;
    TierCut when a bucket lies across ``start`` or ``end``.  How many were deleted."""
    rows = conn.execute(
        "SELECT day, n, data FROM tier WHERE db = %s AND sid = %s AND day >= %s AND day < %s "
        "ORDER BY day",
        (db, sid, common.first_day(start), end),
        binary=True,
    ).fetchall()
    plan = common.plan_tier_drop(rows, start, end)
    for day, rest in plan.rewrite:
        conn.execute(
            "UPDATE tier SET n = %s, data = %b WHERE db = %s AND sid = %s AND day = %s",
            (len(rest), tier.pack(rest), db, sid, day),
        )
    if plan.delete:
        conn.execute(
            "DELETE FROM tier WHERE db = %s AND sid = %s AND day = ANY(%s::bigint[])",
            (db, sid, plan.delete),
        )
    return plan.dropped
