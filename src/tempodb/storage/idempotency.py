"""What the backends share to apply a write at most once per idempotency key.

A backend keeps, per database, each key with the fingerprint of its request, the result of
``write_points`` (the skipped refs) and the time it was stored, written in the transaction
that applies the write.  Before applying a keyed write it looks the key up (``held``) and
either applies it, or raises: AlreadyApplied (the same request: nothing is written again)
or IdempotencyKeyReused (another request).  Keys older than their time to live count as
absent and are purged now and then (``Purge``).
"""

from __future__ import annotations

import threading
import time
from typing import Any, Final, Protocol

from tempodb.storage.base import AlreadyApplied, Idempotency, IdempotencyKeyReused

#: How often a backend deletes the keys whose time to live has passed (ms).
PURGE_EVERY_MS: Final = 60_000


def encode_skipped(skipped: tuple[int, ...]) -> str:
    """The result of a write as stored with its key: ``"3,7"`` (``""`` for none)."""
    return ",".join(map(str, skipped))


def decode_skipped(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(",")) if text else ()


class Connection(Protocol):
    """What the functions below need of a DB-API connection (sqlite3's, psycopg's)."""

    def execute(self, sql: Any, params: Any = ..., /) -> Any: ...


def check(conn: Connection, mark: str, db: int, request: Idempotency, purge: Purge) -> None:
    """In a keyed write's transaction, before the write: purge the expired keys when due,
    then raise AlreadyApplied or IdempotencyKeyReused if the key is held (``mark`` is the
    driver's placeholder: ``?`` or ``%s``)."""
    now = now_ms()
    if purge.due(now):
        conn.execute(f"DELETE FROM idempotency WHERE created < {mark}", (now - request.ttl_ms,))
    held = conn.execute(
        f"SELECT fingerprint, skipped FROM idempotency WHERE db = {mark} AND key = {mark} "
        f"AND created >= {mark}",
        (db, request.key, now - request.ttl_ms),
    ).fetchone()
    check_held(request, None if held is None else (bytes(held[0]), held[1]))


def remember(
    conn: Connection, mark: str, db: int, request: Idempotency, skipped: tuple[int, ...]
) -> None:
    """In the keyed write's transaction, after the write: keep the key with its result."""
    conn.execute(
        "INSERT INTO idempotency (db, key, fingerprint, skipped, created) "
        f"VALUES ({mark}, {mark}, {mark}, {mark}, {mark}) ON CONFLICT (db, key) DO UPDATE SET "
        "fingerprint = excluded.fingerprint, skipped = excluded.skipped, "
        "created = excluded.created",
        (db, request.key, request.fingerprint, encode_skipped(skipped), now_ms()),
    )


def check_held(request: Idempotency, held: tuple[bytes, str] | None) -> None:
    """Given what the store holds for the request's key (fingerprint, encoded result; None
    when nothing live), return when the write is to be applied; raise AlreadyApplied or
    IdempotencyKeyReused when it is not."""
    if held is None:
        return
    fingerprint, skipped = held
    if bytes(fingerprint) != request.fingerprint:
        raise IdempotencyKeyReused(
            f"the Idempotency-Key {request.key!r} was used with a different request"
        )
    raise AlreadyApplied(decode_skipped(skipped))


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Purge:
    """Says when the expired keys are due to be deleted: at most once per ``PURGE_EVERY_MS``
    per store object (any thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next = 0

    def due(self, now: int) -> bool:
        with self._lock:
            if now < self._next:
                return False
            self._next = now + PURGE_EVERY_MS
            return True
