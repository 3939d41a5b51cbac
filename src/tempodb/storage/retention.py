"""What the backends share of retention: the statements on the ``retention`` table, and the
plan that drops the tier's summaries of a range from its day chunks.

The statements take the driver's placeholder as ``mark`` (``?`` or ``%s``), as
``storage.idempotency`` does.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

from tempodb import tier
from tempodb.storage.base import Retention, TierCut
from tempodb.storage.idempotency import Connection
from tempodb.zones import MIN_MS, MS_PER_DAY


def retentions(conn: Connection) -> dict[int, Retention]:
    """The retention of every database that has one, by database id."""
    rows = conn.execute("SELECT db, keep_ms, tier_keep_ms FROM retention").fetchall()
    return {int(db): Retention(keep, tier_keep) for db, keep, tier_keep in rows}


def set_retention(conn: Connection, mark: str, key: str, retention: Retention) -> bool:
    """Set the retention of the database of ``key``; False when there is no such database."""
    row = conn.execute(f"SELECT id FROM databases WHERE key = {mark}", (key,)).fetchone()
    if row is None:
        return False
    conn.execute(
        f"INSERT INTO retention (db, keep_ms, tier_keep_ms) VALUES ({mark}, {mark}, {mark}) "
        "ON CONFLICT (db) DO UPDATE SET keep_ms = excluded.keep_ms, "
        "tier_keep_ms = excluded.tier_keep_ms",
        (row[0], retention.keep_ms, retention.tier_keep_ms),
    )
    return True


def first_day(start: int) -> int:
    """The first day chunk that can hold a summary of a bucket ending after ``start``."""
    return max(MIN_MS, start - tier.TIER_MS) // MS_PER_DAY * MS_PER_DAY


class TierDrop(NamedTuple):
    """What dropping ``[start, end)`` from a series' day chunks does (``plan_tier_drop``)."""

    #: The days whose chunk is deleted.
    delete: list[int]
    #: The days whose chunk keeps some summaries, with the summaries it keeps.
    rewrite: list[tuple[int, tier.Tier]]
    #: The summaries dropped.
    dropped: int


def plan_tier_drop(chunks: Iterable[tuple[Any, Any, Any]], start: int, end: int) -> TierDrop:
    """Plan the deletion of the summaries whose buckets lie wholly in ``[start, end)`` from
    the day chunks ``(day, n, data)`` from ``first_day(start)`` to ``end``.

    Raises:
        TierCut: a bucket lies across ``start`` or ``end``; nothing is to be done then.
    """
    delete: list[int] = []
    rewrite: list[tuple[int, tier.Tier]] = []
    dropped = 0
    for day, count, data in chunks:
        day = int(day)
        if start <= day and day + MS_PER_DAY <= end:
            delete.append(day)
            dropped += int(count)
            continue
        part = tier.unpack(bytes(data))
        if tier.cuts(part, start, end):
            raise TierCut(tier.CUT_MESSAGE)
        keep = (part.ts < start) | (part.ts >= end)
        if bool(keep.all()):
            continue
        dropped += int((~keep).sum())
        rest = part.take(keep)
        if len(rest):
            rewrite.append((day, rest))
        else:
            delete.append(day)
    return TierDrop(delete, rewrite, dropped)
