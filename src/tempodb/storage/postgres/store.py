"""``PostgresStore``: connections, transactions and the Store contract on PostgreSQL.

The schema, the head, the fold and their invariants are described in the package docstring
(``tempodb.storage.postgres``).
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Final, TypeVar

import numpy as np
import psycopg
from psycopg import errors as pg_errors
from psycopg.types.json import Json
from psycopg_pool import ConnectionPool, PoolTimeout, TooManyRequests

from tempodb.storage import idempotency
from tempodb.storage import retention as common_retention
from tempodb.storage.base import (
    Credentials,
    Database,
    Direction,
    Expired,
    Idempotency,
    IdempotencyKeyInUse,
    KeyConflict,
    NewSeries,
    OutcomeUnknown,
    Overloaded,
    Piece,
    Points,
    Retention,
    SeriesField,
    SeriesFilter,
    SeriesRecord,
    StorageError,
    Store,
    Unavailable,
    WriteBatch,
    check_increment,
    expiry_cutoffs,
    hash_secret,
    new_credentials,
    new_series_id,
    normalize_tags,
    verify_secret,
)
from tempodb.storage.postgres import blocks, citus, head, retention, writes
from tempodb.storage.postgres.fold import Folder
from tempodb.storage.postgres.schema import configure, migrate
from tempodb.storage.postgres.series import (
    SERIES_COLUMNS,
    Retry,
    check_storable,
    filter_sql,
    insert_many,
    insert_series,
    lookup,
    record,
    set_attributes,
    set_tags,
    sid_of,
    storable,
)
from tempodb.tier import Tier

__all__ = ["BLOCK_POINTS", "DIRECT_POINTS", "FOLD_AFTER_S", "HEAD_POINTS", "PostgresStore"]

#: The default number of points per block: full blocks of minute data then fill whole TOAST
#: chunks (1,996 bytes with 8 KiB pages): 998 uint32 offsets are 2 chunks, 998 float64s 4.
BLOCK_POINTS: Final = 998
_MAX_BLOCK_POINTS: Final = 1 << 20
#: Fold a series once the head holds this many of its points (about a block's worth).
HEAD_POINTS: Final = 1024
#: ... or this many seconds after its first point in the head.
FOLD_AFTER_S: Final = 30.0
#: A series given at least this many points by one request skips the head.
DIRECT_POINTS: Final = 64

#: Attempts at a transaction that keeps failing on deadlocks or serialization errors.
_ATTEMPTS: Final = 12
_RETRYABLE: Final = (pg_errors.DeadlockDetected, pg_errors.SerializationFailure, Retry)
#: The tables of a series' rows, in the order a delete takes them: the series locks first, so
#: that on Citus the delete waits for the writers there (``citus``).
_OWNED: Final = ("series_lock", "head", "block", "tier", "series_tag", "series_attr", "series")
#: Verified against when the key is unknown, so that both answers take the same time.
_DUMMY_HASH: Final = hash_secret("")
#: The class of the transaction-level advisory locks that keep a write's idempotency key while
#: it is applied (the other half is a hash of the database and the key): b"tempoik".
_KEY_LOCKS: Final = int.from_bytes(b"tempoik", "big") & 0x7FFF_FFFF

_T = TypeVar("_T")
_Conn = psycopg.Connection[Any]


class PostgresStore(Store):
    """The PostgreSQL backend: several servers may share one database.

    Args:
        url: a libpq connection URL or string, e.g. ``postgresql://tempodb@db:5432/tempodb``
            (a password may also come from ``PGPASSWORD`` or ``~/.pgpass``).
        min_size: connections the pool keeps open.
        max_size: the most connections the pool opens.
        block_points: the most points a block holds (tests use small blocks).
        connect_timeout: seconds to wait for the database when starting.
        wait_timeout: seconds a call waits for a free connection of the pool, or for the
            database to come back (then Overloaded): a request never hangs longer.
        max_waiting: the most requests waiting for a connection (0: no limit); one more raises
            Overloaded at once.
        head_points: fold a series into its blocks once the write head holds this many of its
            points (counted by this store).
        fold_after_s: ... or this many seconds after its first point went to the head.
        direct_points: a series that one write gives at least this many points skips the
            head: its head is folded and the points merged into its blocks at once.

    Raises:
        SchemaTooNew: the database was migrated by a newer tempodb.
        StorageError: the database cannot be reached.
        ValueError: a setting is out of its range.

    Example::

        store = PostgresStore("postgresql://tempodb@localhost/tempodb")
        credentials = store.create_database("demo")
    """

    def __init__(
        self,
        url: str,
        *,
        min_size: int = 1,
        max_size: int = 16,
        block_points: int = BLOCK_POINTS,
        connect_timeout: float = 30.0,
        wait_timeout: float = 5.0,
        max_waiting: int = 0,
        head_points: int = HEAD_POINTS,
        fold_after_s: float = FOLD_AFTER_S,
        direct_points: int = DIRECT_POINTS,
    ) -> None:
        if not 1 <= block_points <= _MAX_BLOCK_POINTS:
            raise ValueError(
                f"block_points must be between 1 and {_MAX_BLOCK_POINTS}, not {block_points!r}"
            )
        if not 0 <= min_size <= max_size or max_size < 1:
            raise ValueError(
                f"need 0 <= min_size <= max_size and max_size >= 1, not {min_size}, {max_size}"
            )
        if head_points < 1:
            raise ValueError(f"head_points must be 1 or more, not {head_points!r}")
        if not 0 < fold_after_s < 1e6:
            raise ValueError(
                f"fold_after_s must be more than 0 seconds (and sane), not {fold_after_s!r}"
            )
        if direct_points < 1:
            raise ValueError(f"direct_points must be 1 or more, not {direct_points!r}")
        self._cap, self._direct = block_points, direct_points
        try:
            with psycopg.connect(
                url, autocommit=True, connect_timeout=max(1, round(connect_timeout))
            ) as conn:
                migrate(conn)
                # On Citus the series locks live beside the points (see ``citus``).
                self._citus = citus.distributed(conn)
        except psycopg.OperationalError as exc:
            raise StorageError(f"cannot connect to PostgreSQL: {exc}".strip()) from exc
        self._pool: ConnectionPool = ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            kwargs={"autocommit": True, "application_name": "tempodb"},
            configure=configure,
            name="tempodb",
            open=False,
            timeout=connect_timeout,
            max_waiting=max_waiting,
            # psycopg_pool doubles the pause between attempts to reconnect until it gives up:
            # giving up soon (the next request starts again from a 1 s pause) keeps the pool
            # trying every few seconds while the database is away, so that it is back within
            # seconds of the database.
            reconnect_timeout=max(2.0, wait_timeout),
        )
        self._pool.open()
        self._closed = self._closing = False
        self._url, self._connect_timeout = url, connect_timeout
        self._wait_timeout = wait_timeout
        self._fold_conn: _Conn | None = None  # the fold thread's own
        self._lock = threading.Lock()
        self._purge = idempotency.Purge()
        self._folder = Folder(
            self._fold, self._head_series, head_points=head_points, fold_after_s=fold_after_s
        )

    def close(self) -> None:
        """Stop the fold and close every connection (the head stays: nothing is lost)."""
        with self._lock:
            if self._closing:
                return
            self._closing = True
        self._folder.close()  # first, so that a fold in progress ends as usual
        self._closed = True
        if self._fold_conn is not None:
            self._fold_conn.close()
        self._pool.close()

    def queue_depth(self) -> int:
        """Callers waiting for a pooled connection."""
        return int(self._pool.get_stats().get("requests_waiting", 0))

    # -- connections and transactions ------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError("the store is closed")

    @contextlib.contextmanager
    def _pooled(self) -> Iterator[_Conn]:
        """A pooled connection; Overloaded when too many wait or none frees up in time."""
        try:
            with self._pool.connection(timeout=self._wait_timeout) as conn:
                yield conn
        except (PoolTimeout, TooManyRequests) as exc:
            raise Overloaded(f"no database connection free: {exc}") from exc

    def _read(self, fn: Callable[[_Conn], _T], *, changes: bool = False) -> _T:
        """Run ``fn`` on a pooled connection in autocommit mode (each statement on its own).

        A connection that the server closed (a restart, a failover) is dropped and ``fn``
        runs again on another one.  ``changes``: ``fn`` is one statement that changes data and
        may safely run twice; once a connection broke under it, it may have been applied, so
        a later failure to run it again is OutcomeUnknown rather than Unavailable or
        Overloaded (which promise that nothing was done).
        """
        maybe_applied = False
        try:
            for attempt in range(_ATTEMPTS):
                self._check_open()
                with self._pooled() as conn:
                    try:
                        return fn(conn)
                    except psycopg.OperationalError as exc:
                        if not conn.broken:
                            raise
                        maybe_applied = changes
                        if attempt + 1 == _ATTEMPTS:
                            raise _unavailable(exc) from exc
        except (Unavailable, Overloaded) as exc:
            if maybe_applied:
                raise OutcomeUnknown(
                    f"the database went away while a change was sent: {exc}"
                ) from exc
            raise
        raise AssertionError("unreachable")

    def _idempotent(self, fn: Callable[[_Conn], _T]) -> _T:
        """Run ``fn``, one statement that may safely run twice, in autocommit mode: it runs
        again after a deadlock, a serialization failure or a lost connection."""
        for attempt in range(_ATTEMPTS):
            try:
                return self._read(fn, changes=True)
            except _RETRYABLE as exc:
                if attempt + 1 == _ATTEMPTS:
                    raise StorageError(f"gave up after {_ATTEMPTS} attempts: {exc}") from exc
                time.sleep(random.uniform(0, 0.002 * 2 ** min(attempt, 6)))
            except psycopg.OperationalError as exc:  # refused by the server: not applied
                if attempt + 1 == _ATTEMPTS:
                    raise _unavailable(exc) from exc
        raise AssertionError("unreachable")

    def _transaction(self, fn: Callable[[_Conn], _T]) -> _T:
        """Run ``fn`` in one transaction.

        It runs again from the start after a deadlock, a serialization failure, a concurrent
        change it cannot work around, or a connection lost before the COMMIT was sent.  A
        connection lost during the COMMIT is an error: whether it committed is unknown.
        """
        for attempt in range(_ATTEMPTS):
            self._check_open()
            committing = False
            try:
                with self._pooled() as conn:
                    try:
                        with conn.transaction():
                            result = fn(conn)
                            committing = True
                        return result
                    except psycopg.OperationalError as exc:
                        if committing and conn.broken:  # whether the COMMIT took is unknown
                            raise OutcomeUnknown(
                                "the database connection broke while committing: the request "
                                "may or may not have been applied"
                            ) from exc
                        if not conn.broken:
                            raise
                        if attempt + 1 == _ATTEMPTS:
                            raise _unavailable(exc) from exc
            except _RETRYABLE as exc:
                if attempt + 1 == _ATTEMPTS:
                    raise StorageError(f"gave up after {_ATTEMPTS} attempts: {exc}") from exc
                time.sleep(random.uniform(0, 0.002 * 2 ** min(attempt, 6)))
        raise AssertionError("unreachable")

    # -- databases and keys ----------------------------------------------------------------------

    def create_database(self, name: str = "", *, admin: bool = False) -> Credentials:
        """Create a database; its secret is stored only as a salted hash."""
        credentials = new_credentials()
        stored = hash_secret(credentials.secret)
        self._transaction(
            lambda conn: conn.execute(
                "INSERT INTO databases (key, secret_hash, name, admin) VALUES (%s, %s, %s, %s)",
                (credentials.key, stored, name, admin),
            )
        )
        return credentials

    def authenticate(self, key: str, secret: str) -> Database | None:
        """The database of ``key`` if ``secret`` is right, else None."""
        row = None
        if storable(key):
            row = self._read(
                lambda conn: conn.execute(
                    "SELECT id, key, name, admin, secret_hash, revoked_at FROM databases "
                    "WHERE key = %s",
                    (key,),
                ).fetchone()
            )
        if row is None:
            verify_secret(secret, _DUMMY_HASH)
            return None
        if not verify_secret(secret, row[4]) or row[5] is not None:
            return None
        return Database(id=row[0], key=row[1], name=row[2], admin=bool(row[3]))

    def list_databases(self) -> list[Database]:
        """Every database, revoked ones included, ordered by key."""
        rows = self._read(
            lambda conn: conn.execute(
                "SELECT id, key, name, admin, revoked_at IS NOT NULL FROM databases ORDER BY key"
            ).fetchall()
        )
        return [
            Database(id=r[0], key=r[1], name=r[2], admin=bool(r[3]), revoked=bool(r[4]))
            for r in rows
        ]

    def revoke_database(self, key: str) -> bool:
        """Revoke ``key``: the next authentication fails on every server; its data stays."""
        if not storable(key):
            return False
        now = datetime.datetime.now(datetime.UTC)  # a parameter: Citus refuses now() here
        return self._transaction(
            lambda conn: (
                conn.execute(
                    "UPDATE databases SET revoked_at = coalesce(revoked_at, %s) WHERE key = %s",
                    (now, key),
                ).rowcount
                > 0
            )
        )

    def delete_database(self, key: str) -> bool:
        """Delete a database with its series and points; False if the key is unknown."""

        if not storable(key):
            return False

        def op(conn: _Conn) -> bool:
            if self._citus:  # it changes ``databases`` after multi-shard statements
                conn.execute(citus.SEQUENTIAL)
            row = conn.execute(
                "SELECT id FROM databases WHERE key = %s FOR UPDATE", (key,)
            ).fetchone()
            if row is None:
                return False
            db = int(row[0])
            conn.execute("SELECT sid FROM series WHERE db = %s ORDER BY sid FOR UPDATE", (db,))
            retention.forget_database(conn, db)
            # The series locks go first: deleting them waits for the writers (on Citus).
            for table in (*_OWNED, "idempotency"):
                conn.execute(f"DELETE FROM {table} WHERE db = %s", (db,))
            conn.execute("DELETE FROM databases WHERE id = %s", (db,))
            return True

        return self._transaction(op)

    # -- series metadata -------------------------------------------------------------------------

    def create_series(
        self,
        db: int,
        key: str | None,
        name: str = "",
        tags: Sequence[str] = (),
        attributes: Mapping[str, str] | None = None,
    ) -> SeriesRecord:
        """Create a series (without a key its id is the key too).  Raises KeyConflict."""
        series_id = new_series_id()
        key = series_id if key is None else key

        def op(conn: _Conn) -> SeriesRecord:
            created = insert_series(
                conn, db, series_id, key, name, tags, attributes, citus=self._citus
            )
            if created is None:
                raise KeyConflict(key)
            return created

        return self._transaction(op)

    def create_series_many(
        self, db: int, items: Sequence[NewSeries]
    ) -> list[SeriesRecord | KeyConflict]:
        """Create many series in one transaction: per item, in order, its record or the
        KeyConflict that refused it (its key exists, or an earlier item has it)."""
        if not items:
            return []
        return self._transaction(lambda conn: insert_many(conn, db, items, citus=self._citus))

    def lookup_series(self, db: int, field: SeriesField, value: str) -> SeriesRecord | None:
        """The series with this id or key, or None."""
        row = self._read(lambda conn: lookup(conn, db, field, value))
        return None if row is None else record(row)

    def find_series(self, db: int, flt: SeriesFilter) -> list[SeriesRecord]:
        """The series matching the filter (all for an empty one), ordered by key."""
        where, params = filter_sql(db, flt)
        rows = self._read(
            lambda conn: conn.execute(
                f"SELECT {SERIES_COLUMNS} FROM series s WHERE {where} ORDER BY s.key", params
            ).fetchall()
        )
        return [record(row) for row in rows]

    def existing_keys(self, db: int, keys: Sequence[str]) -> set[str]:
        """Which of ``keys`` name a series of the database (one indexed query)."""
        if not keys:
            return set()
        rows = self._read(
            lambda conn: conn.execute(
                "SELECT key FROM series WHERE db = %s AND key = ANY(%s)", (db, list(keys))
            ).fetchall()
        )
        return {row[0] for row in rows}

    def find_series_page(
        self, db: int, flt: SeriesFilter, *, after: str | None = None, limit: int
    ) -> list[SeriesRecord]:
        """A page of ``find_series`` (see ``Store.find_series_page``)."""
        where, params = filter_sql(db, flt)
        if after is not None:
            where += " AND s.key > %s"
            params.append(after)
        params.append(limit)
        rows = self._read(
            lambda conn: conn.execute(
                f"SELECT {SERIES_COLUMNS} FROM series s WHERE {where} ORDER BY s.key LIMIT %s",
                params,
            ).fetchall()
        )
        return [record(row) for row in rows]

    def update_series(
        self,
        db: int,
        series_id: str,
        *,
        name: str | None = None,
        tags: Sequence[str] | None = None,
        attributes: Mapping[str, str] | None = None,
    ) -> SeriesRecord | None:
        """Replace the fields given (None leaves a field as it is); None if the id is unknown."""

        def op(conn: _Conn) -> SeriesRecord | None:
            row = lookup(conn, db, "id", series_id, lock=True)
            if row is None:
                return None
            attrs = dict(attributes or {})
            check_storable([name or "", *(tags or ()), *attrs, *attrs.values()])
            sid, old = int(row[0]), record(row)
            new = SeriesRecord(
                id=old.id,
                key=old.key,
                name=old.name if name is None else name,
                tags=old.tags if tags is None else normalize_tags(tags),
                attributes=old.attributes if attributes is None else dict(attributes),
            )
            conn.execute(
                "UPDATE series SET name = %s, tags = %s, attributes = %s "
                "WHERE db = %s AND sid = %s",
                (new.name, list(new.tags), Json(dict(new.attributes)), db, sid),
            )
            if tags is not None:
                set_tags(conn, db, sid, new.tags, fresh=False)
            if attributes is not None:
                set_attributes(conn, db, sid, new.attributes, fresh=False)
            return new

        return self._transaction(op)

    def delete_series(self, db: int, flt: SeriesFilter | None) -> int:
        """Delete the matching series with their points (all for None); how many."""
        where, params = filter_sql(db, flt or SeriesFilter())

        def op(conn: _Conn) -> int:
            if self._citus:
                conn.execute(citus.SEQUENTIAL)
            rows = conn.execute(
                f"SELECT s.sid FROM series s WHERE {where} ORDER BY s.sid FOR UPDATE OF s", params
            ).fetchall()
            sids = [int(r[0]) for r in rows]
            if sids:  # the series locks first: deleting them waits for the writers (on Citus)
                for table in _OWNED:
                    conn.execute(
                        f"DELETE FROM {table} WHERE db = %s AND sid = ANY(%s::bigint[])",
                        (db, sids),
                    )
            return len(sids)

        return self._transaction(op)

    # -- points ----------------------------------------------------------------------------------

    def write_points(
        self, db: int, batch: WriteBatch, *, increment: bool = False
    ) -> tuple[int, ...]:
        """Store the batch atomically (see ``Store.write_points``): small parts into the head,
        large ones into the blocks."""
        if len(batch) == 0:
            return ()
        if batch.idempotency is None and not increment and self._overwrite_existing(db, batch):
            return ()

        def write(conn: _Conn) -> writes.Written:
            if batch.idempotency is not None:
                self._check_key(conn, db, batch.idempotency)
            written = writes.write(
                conn,
                db,
                batch,
                increment=increment,
                cap=self._cap,
                direct_points=self._direct,
                on_citus=self._citus,
            )
            if batch.idempotency is not None:
                idempotency.remember(conn, "%s", db, batch.idempotency, written.skipped)
            return written

        for _ in range(_ATTEMPTS):
            try:
                written = self._transaction(write)
                break
            except head.OutOfRange as exc:  # rolled back: say why (or, if it changed, retry)
                self._explain(db, exc.points)
        else:
            raise StorageError(f"gave up after {_ATTEMPTS} attempts: the values keep changing")
        self._folder.note(db, written.head_counts)
        return written.skipped

    def _check_key(self, conn: _Conn, db: int, request: Idempotency) -> None:
        """In a keyed write's transaction: take the key (IdempotencyKeyInUse if another
        transaction holds it), then raise if the key is held already (see
        ``idempotency.check_held``)."""
        taken = conn.execute(
            "SELECT pg_try_advisory_xact_lock(%s, hashtext(%s))",
            (_KEY_LOCKS, f"{db}:{request.key}"),
        ).fetchone()
        if not (taken and taken[0]):
            raise IdempotencyKeyInUse(
                f"a request with the Idempotency-Key {request.key!r} is being applied right now"
            )
        idempotency.check(conn, "%s", db, request, self._purge)

    def _around(self, db: int, sid: int, ts: int) -> Points:
        """The points of ``SINGLE`` around ``ts`` (the one at ``ts`` among them, if any)."""
        params = {"db": db, "sid": sid, "ts": ts}
        return head.merged(
            self._read(lambda conn: conn.execute(head.SINGLE, params, binary=True).fetchall())
        )

    def _explain(self, db: int, points: Sequence[tuple[int, int, float, bool]]) -> None:
        """ValueOutOfRange (``check_increment``'s message, with the exact sum) for the first of
        these increments that is still out of range with the value stored now."""
        for sid, ts, value, is_int in points:
            now = self._around(db, sid, ts)
            at = np.flatnonzero(now.ts == ts)
            old, old_int = 0.0, True
            if len(at):
                old, old_int = float(now.values[at[0]]), bool(now.is_int[at[0]])
            both = old_int and is_int
            with np.errstate(over="ignore", invalid="ignore"):
                total = np.array([old + value])
            exact = np.array([int(old) + int(value)], object) if both else None
            check_increment(np.array([ts], np.int64), total, np.array([both]), exact)

    def read_points(
        self, db: int, series_id: str, start: int, end: int, *, cache: bool = True
    ) -> Points:
        """The points with ``start <= ts < end`` (none for an unknown series); this store
        keeps no decoded blocks (``cache`` is accepted for the contract's sake)."""
        if start >= end:
            return Points.empty()

        def op(conn: _Conn) -> list[Any]:
            sid = sid_of(conn, db, series_id)
            if sid is None:
                return []
            params = {"db": db, "sid": sid, "lo": start, "hi": end}
            return conn.execute(head.READ, params, binary=True).fetchall()

        return head.merged(self._read(op), start, end)

    def read_points_many(
        self, db: int, series_ids: Sequence[str], start: int, end: int, *, cache: bool = True
    ) -> list[Points]:
        """``read_points`` of each series (in the order given) in one statement: a ``READ``
        of each series found by id (LATERAL); on Citus, where a statement across the series'
        and the points' shards is not a single-shard one, the sids first, then the ``READ``
        of each, pipelined (two round trips)."""
        rows = self._read_rows_many(db, series_ids, start, end)
        return [
            head.merged(rows[i], start, end) if i in rows else Points.empty() for i in series_ids
        ]

    def read_pieces_many(
        self, db: int, series_ids: Sequence[str], start: int, end: int, *, cache: bool = True
    ) -> list[list[Piece]]:
        """``read_points_many`` as the pieces of each series' blocks, decoded one by one (the
        merged points as one piece where head rows replace some)."""
        rows = self._read_rows_many(db, series_ids, start, end)
        return [head.pieces(rows[i], start, end) if i in rows else [] for i in series_ids]

    def _read_rows_many(
        self, db: int, series_ids: Sequence[str], start: int, end: int
    ) -> dict[str, list[Any]]:
        """The ``READ`` rows of each of these series that exists (read_points_many)."""
        if start >= end or not series_ids:
            return {}
        wanted = [i for i in dict.fromkeys(series_ids) if storable(i)]

        def op(conn: _Conn) -> dict[str, list[Any]]:
            params: list[tuple[str, dict[str, Any]]]
            if self._citus:
                sids = _sids(conn, db, wanted)
                params = [(i, {"db": db, "sid": sids[i], "lo": start, "hi": end}) for i in sids]
                statement = head.READ
            elif len(wanted) > 1:  # one statement: a READ for each series (LATERAL)
                found: dict[str, list[Any]] = {}
                bounds = {"db": db, "ids": wanted, "lo": start, "hi": end}
                for row in conn.execute(_READ_MANY_BY_ID, bounds, binary=True):
                    found.setdefault(wanted[row[0] - 1], []).append(row[1:])
                return found
            else:
                params = [(i, {"db": db, "id": i, "lo": start, "hi": end}) for i in wanted]
                statement = _READ_BY_ID
            with conn.pipeline():
                cursors = {i: conn.execute(statement, p, binary=True) for i, p in params}
            return {i: cursor.fetchall() for i, cursor in cursors.items()}

        return self._read(op)

    def estimate_points(
        self, db: int, series_ids: Sequence[str], start: int, end: int
    ) -> int | None:
        """The points of the blocks that overlap ``[start, end)`` and the head rows in it
        (some may stand for the same points), in one statement (on Citus, the sids first,
        then one statement per series, pipelined)."""
        if start >= end or not series_ids:
            return 0
        wanted = [i for i in dict.fromkeys(series_ids) if storable(i)]

        def op(conn: _Conn) -> int:
            params: list[dict[str, Any]]
            if self._citus:
                sids = _sids(conn, db, wanted)
                params = [{"db": db, "sid": sid, "lo": start, "hi": end} for sid in sids.values()]
                statement = _ESTIMATE
            else:
                bounds = {"db": db, "ids": wanted, "lo": start, "hi": end}
                return int(conn.execute(_ESTIMATE_MANY_BY_ID, bounds).fetchone()[0])  # type: ignore[index]
            with conn.pipeline():
                cursors = [conn.execute(statement, p) for p in params]
            return sum(int(cursor.fetchall()[0][0]) for cursor in cursors)

        return self._read(op)

    def delete_points(self, db: int, series_id: str, start: int, end: int) -> int:
        """Delete the points with ``start <= ts < end``; how many there were."""
        if start >= end:
            return 0

        def op(conn: _Conn) -> int:
            sid = sid_of(conn, db, series_id, lock=not self._citus)
            if sid is None:
                return 0
            if self._citus and not citus.lock_series(conn, db, [sid], "UPDATE"):
                raise Retry("the series was deleted, or its creation has not reached its node")
            retention.drop_tier(conn, db, sid, start, end)  # TierCut: nothing deleted
            for folded, points in head.take(conn, db, [sid]).items():
                blocks.fold_in(conn, db, folded, self._cap, points)
            return blocks.delete_range(conn, db, sid, self._cap, start, end)

        return self._transaction(op)

    # -- retention and the tier (``retention``) ----------------------------------------------

    def retentions(self) -> dict[int, Retention]:
        """The retention of every database that has one."""
        return self._read(common_retention.retentions)

    def set_retention(self, key: str, kept: Retention) -> bool:
        """Set a database's retention; False if the key is unknown."""
        if not storable(key):
            return False
        return self._transaction(lambda conn: common_retention.set_retention(conn, "%s", key, kept))

    def expire(self, now_ms: int) -> Expired:
        """One retention pass (``Store.expire``), one transaction per series."""
        counts = [0, 0, 0, 0]
        for db, kept in self.retentions().items():
            cutoff, tier_cutoff = expiry_cutoffs(kept, now_ms)
            due = self._read(
                functools.partial(
                    retention.due_series, db=db, cutoff=cutoff, tier_cutoff=tier_cutoff
                )
            )
            for sid in due:
                done = self._transaction(
                    functools.partial(
                        retention.expire_series,
                        db=db,
                        sid=sid,
                        cap=self._cap,
                        cutoff=cutoff,
                        tier_cutoff=tier_cutoff,
                    )
                )
                counts = [counts[0] + 1, *(a + b for a, b in zip(counts[1:], done, strict=True))]
        return Expired(*counts)

    def read_tiered(self, db: int, series_id: str, start: int, end: int) -> tuple[Any, Points]:
        """The summaries overlapping ``[start, end)`` and the points in it, one snapshot."""
        if start >= end:
            return Tier.empty(), Points.empty()

        def op(conn: _Conn) -> tuple[Tier, Points]:
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            sid = sid_of(conn, db, series_id)
            if sid is None:
                return Tier.empty(), Points.empty()
            return retention.read(conn, db, sid, start, end)

        return self._transaction(op)

    def single_value(
        self, db: int, series_id: str, ts: int, direction: Direction
    ) -> tuple[int, int | float] | None:
        """The point at ``ts``, or the closest one before / after / either side of it."""
        if direction not in ("exact", "before", "after", "nearest"):
            raise ValueError(
                f"direction must be exact, before, after or nearest, not {direction!r}"
            )
        # One statement reads the block that may hold ``ts`` and the head row at or before it,
        # and unless only earlier points matter, the next block and head row: one snapshot.
        sql = head.SINGLE + (head.SINGLE_AFTER if direction in ("after", "nearest") else "")

        def op(conn: _Conn) -> list[Any]:
            sid = sid_of(conn, db, series_id)
            if sid is None:
                return []
            return conn.execute(sql, {"db": db, "sid": sid, "ts": ts}, binary=True).fetchall()

        points = head.merged(self._read(op))
        if not len(points):
            return None
        i = int(np.searchsorted(points.ts, ts, "right")) - 1
        earlier = (int(points.ts[i]), points.value_at(i)) if i >= 0 else None
        later = (int(points.ts[i + 1]), points.value_at(i + 1)) if i + 1 < len(points) else None
        if earlier is not None and earlier[0] == ts:
            return earlier
        if direction == "exact":
            return None
        if direction == "before":
            return earlier
        if direction == "after" or earlier is None:
            return later
        if later is None or ts - earlier[0] <= later[0] - ts:
            return earlier
        return later

    def _overwrite_existing(self, db: int, batch: WriteBatch) -> bool:
        """The common small write in one statement and one round trip (``head.OVERWRITE_KNOWN``):
        False, having written nothing, unless every series exists and every part is small."""
        if self._citus:  # it locks the series rows, which order nothing on Citus
            return False
        params = writes.known_params(db, batch, self._direct)
        if params is None:
            return False
        try:
            rows = self._idempotent(
                lambda conn: conn.execute(head.OVERWRITE_KNOWN, params).fetchall()
            )
        except pg_errors.CardinalityViolation:  # an id and a key of one series, one timestamp
            return False
        if not rows:
            return False
        counts: dict[int, int] = {}
        for (sid,) in rows:
            counts[sid] = counts.get(sid, 0) + 1
        self._folder.note(db, counts)
        return True

    # -- the fold --------------------------------------------------------------------------------

    def _fold(self, db: int, sids: Sequence[int]) -> list[int]:
        """Fold these series in one transaction; the sids skipped (held elsewhere)."""
        return self._on_fold_connection(
            lambda conn: writes.fold(conn, db, sids, self._cap, on_citus=self._citus),
            transaction=True,
        )

    def _on_fold_connection(self, fn: Callable[[_Conn], _T], *, transaction: bool) -> _T:
        """Run ``fn`` on the fold thread's own connection (so that folds never take one that
        a request waits for), again after a deadlock or serialization failure.  A connection
        error is raised (the fold is tried again later) and the connection opened afresh."""
        for attempt in range(_ATTEMPTS):
            self._check_open()
            conn = self._fold_conn
            if conn is None or conn.closed or conn.broken:
                conn = psycopg.connect(
                    self._url,
                    autocommit=True,
                    application_name="tempodb-fold",
                    connect_timeout=max(1, round(self._connect_timeout)),
                )
                configure(conn)
                self._fold_conn = conn
            try:
                if not transaction:
                    return fn(conn)
                with conn.transaction():
                    return fn(conn)
            except _RETRYABLE as exc:
                if attempt + 1 == _ATTEMPTS:
                    raise StorageError(f"gave up after {_ATTEMPTS} attempts: {exc}") from exc
                time.sleep(random.uniform(0, 0.002 * 2 ** min(attempt, 6)))
            except psycopg.OperationalError:
                conn.close()
                self._fold_conn = None
                raise
        raise AssertionError("unreachable")

    def _head_series(self, limit: int) -> list[tuple[int, int]]:
        """Up to ``limit`` series that have head rows, as (db, sid)."""
        rows = self._on_fold_connection(
            lambda conn: conn.execute(
                citus.HEAD_SERIES if self._citus else writes.HEAD_SERIES, (limit,)
            ).fetchall(),
            transaction=False,
        )
        return [(int(db), int(sid)) for db, sid in rows]


#: ``estimate_points`` of one series: its blocks that ``head.READ`` would take, and its head rows.
_ESTIMATE: Final = (
    "SELECT (SELECT coalesce(sum(n), 0) FROM block WHERE db = %(db)s AND sid = %(sid)s "
    f"AND first < %(hi)s AND last >= %(lo)s AND {blocks.FROM_LO}) + (SELECT count(*) FROM head "
    "WHERE db = %(db)s AND sid = %(sid)s AND ts >= %(lo)s AND ts < %(hi)s)"
)


#: The sid of series ``%(id)s`` (NULL when there is none: a read of nothing).
_SID_OF_ID: Final = "(SELECT sid FROM series WHERE db = %(db)s AND id = %(id)s)"
_READ_BY_ID: Final = head.READ.replace("%(sid)s", _SID_OF_ID)
#: The series of ``%(ids)s`` that exist, by their position in the array (from 1).
_SERIES_OF_IDS: Final = (
    "FROM unnest(%(ids)s::text[]) WITH ORDINALITY AS u(id, o) "
    "JOIN series AS s ON s.db = %(db)s AND s.id = u.id"
)
#: ``READ`` of each series of ``%(ids)s``, in one statement: (position, READ's columns).
_READ_MANY_BY_ID: Final = (
    f"SELECT u.o, r.* {_SERIES_OF_IDS} CROSS JOIN LATERAL "
    f"({head.READ.replace('%(sid)s', 's.sid')}) AS r"
)
#: ``_ESTIMATE`` of the series of ``%(ids)s``, summed, in one statement.
_ESTIMATE_MANY_BY_ID: Final = (
    f"SELECT coalesce(sum(e.n), 0) {_SERIES_OF_IDS} CROSS JOIN LATERAL "
    f"({_ESTIMATE.replace('%(sid)s', 's.sid')} AS n) AS e"
)


def _sids(conn: _Conn, db: int, series_ids: Sequence[str]) -> dict[str, int]:
    """The sids of those of these (storable) series ids that exist in the database."""
    rows = conn.execute(
        "SELECT id, sid FROM series WHERE db = %s AND id = ANY(%s::text[])", (db, list(series_ids))
    ).fetchall()
    return {str(series_id): int(sid) for series_id, sid in rows}


def _unavailable(exc: psycopg.OperationalError) -> Unavailable:
    return Unavailable(f"the database cannot be reached: {str(exc).strip()}")
