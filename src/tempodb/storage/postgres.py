"""The PostgreSQL backend: the same columnar blocks as the embedded store, shared by servers.

Several ``tempodb serve`` processes can run on one PostgreSQL database behind a load balancer:
every request is one transaction, and nothing that matters is kept in a server.

Connections
    ``PostgresStore(url)`` keeps a ``psycopg_pool.ConnectionPool``.  Every session sets
    ``synchronous_commit = on``, so a write is acknowledged only after its commit is durable.
    Reads run in autocommit mode: the series is looked up, then its blocks are read by one
    statement (one snapshot, so a read never sees half of a write).  A connection that the
    server closed is replaced and the read or the uncommitted transaction run again.

Schema and migrations
    ``tempodb_schema(version, applied_at)`` records the migrations applied; the schema version
    is the largest.  On start, under a session advisory lock (so that servers starting together
    take turns), the store applies the migrations in ``_MIGRATIONS`` that the database lacks, one
    transaction each, and refuses (SchemaTooNew) a database whose version is newer than this code.

Tables (schema version 2); every primary and unique key of the tables below ``databases`` starts
with the database id ``db``, and those of the tables owned by a series hold its ``sid`` too.
    ``databases(id, key, secret_hash, name, admin, revoked_at)``
        One row per API key (``id`` from a sequence, never reused); secrets only as hashes.
        ``revoked_at`` (version 2) is NULL while the key works.
    ``series(db, sid, id, key, name, tags, attributes)``
        Primary key (db, sid); (db, id) and (db, key) are unique.  ``sid`` comes from a sequence,
        so that nothing deleted reappears under a new owner.  ``id`` and ``key`` use the "C"
        collation: series are ordered by the bytes of their keys whatever the database's locale.
        ``tags`` (a text array: order kept, no duplicates) and ``attributes`` (a JSON object, in
        the order given) are what a series reads back as.
    ``series_tag(db, sid, tag)`` and ``series_attr(db, sid, name, value)``
        The tags and attributes again, indexed by (db, tag) and (db, name, value) for filters.
    ``block(db, sid, first, last, n, fmt, ts, vals, mask)``
        The points, primary key (db, sid, first).  The format, the invariants and how writes
        re-chunk a series are those of ``tempodb.storage.blocks``; blocks hold at most
        ``block_points`` points (998 unless configured).  The blobs, compressed by the block
        codec already, are stored as they are (``STORAGE EXTERNAL``): reading them is a copy.

Why blocks
    Measured with ``bench/pg_layout.py`` (PostgreSQL 15, 2 cores, fsync on; 10 series x 100,000
    minute points), a row per point (primary key db+sid+ts, loaded with binary COPY, read with
    binary COPY into numpy) against blocks of 998 points:

    ============================================ ============ =============
    measure                                      rows         blocks
    ============================================ ============ =============
    ingest, 10,000-point transactions            0.56M pts/s  3.1M pts/s
    raw read of 14,400 points                    13 ms        1.0 ms
    hourly rollup input, 30 days (43,200 pts)    40 ms        1.8 ms
    (the same hourly means by GROUP BY in SQL)   9.2 ms
    daily rollup input, 100,000 points           83 ms        3.3 ms
    bytes per point, indexes and TOAST included  109          12.8
    single-point increments/s, 1 thread          3,600        940
    single-point increments/s, 8 threads         4,600        1,250
    ============================================ ============ =============

    Blocks win everything but single-point increments, which rewrite a block (a handful of
    round trips and the block's 12 KB, against one upsert of a row).  998 points make a full
    block's blobs fill whole TOAST chunks: 1,024 points cost 16.9 bytes a point, 4,096 cost
    15.2, and TOAST's compression gains nothing on them.

Concurrency
    A write, an increment, a range delete or a series update locks the rows of the series it
    touches (``SELECT ... FOR UPDATE``, in ``sid`` order so that two requests cannot deadlock on
    them) and then reads, merges and rewrites their blocks in the same transaction: concurrent
    increments from any number of servers add up exactly, and overwrites are last-writer-wins
    per point.  A series created by a write is inserted with ``ON CONFLICT DO NOTHING`` and read
    back, so two servers creating the same key at once end up with one series.  A transaction
    that still fails on a deadlock or a serialization error is retried from the start.  Either
    the whole request commits or nothing does.

Running on Citus
    Run tempodb once against the coordinator to create the schema, then distribute it there::

        SELECT create_reference_table('databases');
        SELECT create_distributed_table('series', 'db');
        SELECT create_distributed_table('series_tag', 'db', colocate_with => 'series');
        SELECT create_distributed_table('series_attr', 'db', colocate_with => 'series');
        SELECT create_distributed_table('block', 'sid');

    ``tempodb_schema`` stays a local table of the coordinator, where the servers connect; Citus
    propagates a later migration's DDL on these tables to their shards (a table that a later
    migration adds is to be distributed the same way, on its ``db`` or ``sid``).
    ``databases`` is small and read on every authentication: a reference table, copied to every
    node.  A database's series metadata lives on one shard (distributed by ``db``, the three
    tables colocated), while the points, which are the bulk of the data, are spread by series
    (``block`` distributed by ``sid``), so one large database still uses every node.  Every
    primary and unique key holds its table's distribution column, as Citus requires, and the
    statements stay simple (Citus runs ``FOR UPDATE`` in single-shard queries only):

    * every statement on ``series``, ``series_tag`` and ``series_attr`` says ``db = <value>``,
      and the filter subqueries join colocated tables on that same value: router queries, each
      answered by one shard, including the ``INSERT ... ON CONFLICT`` and ``FOR UPDATE``;
    * every statement on ``block`` but two says ``sid = <value>``, with subqueries on the same
      table and the same value only (never a join with ``series``): router queries too, and so
      is the write's ``WITH run AS (DELETE ... RETURNING) SELECT ...``, a data-modifying CTE
      over the blocks of one series.  The two exceptions delete the blocks of several series
      (``sid = ANY(...)``) or of a whole database (``db = <value>``): multi-shard DELETEs, which
      Citus runs on every shard in one distributed transaction;
    * ``databases`` is read by key and changed by single-row statements, which Citus applies
      to every copy of a reference table in the same transaction;
    * the series lock is a row lock (``FOR UPDATE``) on the series' row, in the metadata shard
      of its database, not an advisory lock, so it holds whichever node a server is connected
      to; the advisory lock of the migrations only needs the coordinator;
    * a write touches the shard of the database's metadata and the shards of its series'
      blocks: Citus commits such a transaction on all of them with two-phase commit, so a
      request is still all or nothing;
    * ``sid`` and ``databases.id`` come from bigint sequences, which Citus supports as column
      defaults of distributed and reference tables; the foreign key from ``series`` to
      ``databases`` is one from a distributed table to a reference table, which Citus allows.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Final, TypeVar

import numpy as np
import psycopg
from psycopg import errors as pg_errors
from psycopg.types.json import Json
from psycopg_pool import ConnectionPool, PoolTimeout, TooManyRequests

from tempodb.storage.base import (
    Credentials,
    Database,
    Direction,
    KeyConflict,
    Overloaded,
    Points,
    SchemaTooNew,
    SeriesField,
    SeriesFilter,
    SeriesRecord,
    SeriesRef,
    StorageError,
    Store,
    WriteBatch,
    fold_batch,
    hash_secret,
    merge_points,
    new_credentials,
    new_series_id,
    normalize_tags,
    verify_secret,
)
from tempodb.storage.blocks import (
    Block,
    Meta,
    choose_run,
    concat,
    cut,
    decode,
    decode_run,
    split,
)

__all__ = ["BLOCK_POINTS", "SCHEMA_VERSION", "PostgresStore"]

#: The default number of points per block: full blocks of minute data then fill whole TOAST
#: chunks (1,996 bytes with 8 KiB pages): 998 uint32 offsets are 2 chunks, 998 float64s 4.
BLOCK_POINTS: Final = 998
_MAX_BLOCK_POINTS: Final = 1 << 20

_MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (  # 1: the initial schema
        """CREATE TABLE databases (
            id bigserial PRIMARY KEY,
            key text COLLATE "C" NOT NULL UNIQUE,
            secret_hash text NOT NULL,
            name text NOT NULL DEFAULT '',
            admin boolean NOT NULL DEFAULT false
        )""",
        """CREATE TABLE series (
            db bigint NOT NULL REFERENCES databases (id),
            sid bigserial NOT NULL,
            id text COLLATE "C" NOT NULL,
            key text COLLATE "C" NOT NULL,
            name text NOT NULL DEFAULT '',
            tags text[] NOT NULL DEFAULT '{}',
            attributes json NOT NULL DEFAULT '{}',
            PRIMARY KEY (db, sid),
            UNIQUE (db, id),
            UNIQUE (db, key)
        )""",
        """CREATE TABLE series_tag (
            db bigint NOT NULL,
            sid bigint NOT NULL,
            tag text COLLATE "C" NOT NULL,
            PRIMARY KEY (db, sid, tag)
        )""",
        "CREATE INDEX series_tag_by_tag ON series_tag (db, tag, sid)",
        """CREATE TABLE series_attr (
            db bigint NOT NULL,
            sid bigint NOT NULL,
            name text COLLATE "C" NOT NULL,
            value text COLLATE "C" NOT NULL,
            PRIMARY KEY (db, sid, name)
        )""",
        "CREATE INDEX series_attr_by_value ON series_attr (db, name, value, sid)",
        """CREATE TABLE block (
            db bigint NOT NULL,
            sid bigint NOT NULL,
            first bigint NOT NULL,
            last bigint NOT NULL,
            n integer NOT NULL,
            fmt smallint NOT NULL,
            ts bytea NOT NULL,
            vals bytea NOT NULL,
            mask bytea,
            PRIMARY KEY (db, sid, first)
        )""",
        "ALTER TABLE block ALTER COLUMN ts SET STORAGE EXTERNAL, "
        "ALTER COLUMN vals SET STORAGE EXTERNAL",
    ),
    ("ALTER TABLE databases ADD COLUMN revoked_at timestamptz",),  # 2: key revocation
)

#: The schema version this code writes.
SCHEMA_VERSION: Final = len(_MIGRATIONS)

#: The advisory lock (per database) held while migrating: b"tempodb" as a number.
_MIGRATION_LOCK: Final = int.from_bytes(b"tempodb", "big")
#: Attempts at a transaction that keeps failing on deadlocks or serialization errors.
_ATTEMPTS: Final = 12

_T = TypeVar("_T")
_Conn = psycopg.Connection[Any]


class _Retry(Exception):
    """The transaction saw a concurrent change it cannot work around: run it again."""


_RETRYABLE: Final = (pg_errors.DeadlockDetected, pg_errors.SerializationFailure, _Retry)

# -- SQL -------------------------------------------------------------------------------------------

_SERIES_COLUMNS: Final = "s.sid, s.id, s.key, s.name, s.tags, s.attributes"
_LOOKUP: Final[Mapping[SeriesField, str]] = {
    "id": f"SELECT {_SERIES_COLUMNS} FROM series s WHERE s.db = %s AND s.id = %s",
    "key": f"SELECT {_SERIES_COLUMNS} FROM series s WHERE s.db = %s AND s.key = %s",
}
_BLOCK_COLUMNS: Final = "first, n, fmt, ts, vals, mask"
#: The lower bound of the blocks that may hold ``ts >= %(lo)s``: the block holding ``lo``
#: starts at the largest ``first <= lo`` (or later, if no block starts before ``lo``).
_FROM_LO: Final = (
    "first >= coalesce((SELECT max(first) FROM block WHERE db = %(db)s AND sid = %(sid)s "
    "AND first <= %(lo)s), %(lo)s)"
)
_READ: Final = (
    f"SELECT {_BLOCK_COLUMNS} FROM block WHERE db = %(db)s AND sid = %(sid)s "
    f"AND first < %(hi)s AND last >= %(lo)s AND {_FROM_LO} ORDER BY first"
)
#: A write of ``[lo, hi]`` in one round trip: delete the run of blocks it overlaps and return
#: them (kind 0), with the metadata of the block starting closest before ``lo`` (kind 1) and of
#: the two starting first after ``hi`` (kind 2), as they were before the delete.
_TAKE_RUN: Final = (
    "WITH run AS (DELETE FROM block WHERE db = %(db)s AND sid = %(sid)s AND first <= %(hi)s "
    f"AND last >= %(lo)s AND {_FROM_LO} RETURNING {_BLOCK_COLUMNS}, last) "
    f"SELECT 0 AS kind, {_BLOCK_COLUMNS}, last FROM run "
    "UNION ALL (SELECT 1, first, n, NULL::smallint, NULL::bytea, NULL::bytea, NULL::bytea, last "
    "FROM block WHERE db = %(db)s AND sid = %(sid)s AND first < %(lo)s "
    "ORDER BY first DESC LIMIT 1) "
    "UNION ALL (SELECT 2, first, n, NULL::smallint, NULL::bytea, NULL::bytea, NULL::bytea, last "
    "FROM block WHERE db = %(db)s AND sid = %(sid)s AND first > %(hi)s ORDER BY first LIMIT 2)"
)
_INSERT_BLOCK: Final = (
    "INSERT INTO block (db, sid, first, last, n, fmt, ts, vals, mask) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
#: Verified against when the key is unknown, so that both answers take the same time.
_DUMMY_HASH: Final = hash_secret("")


def _record(row: Sequence[Any]) -> SeriesRecord:
    return SeriesRecord(
        id=row[1], key=row[2], name=row[3], tags=tuple(row[4]), attributes=dict(row[5])
    )


def _storable(*texts: str) -> bool:
    """PostgreSQL text holds no NUL character: a value with one matches nothing stored."""
    return not any("\0" in text for text in texts)


def _check_storable(texts: Iterable[str]) -> None:
    for text in texts:
        if "\0" in text:
            raise ValueError(f"PostgreSQL cannot store a NUL character, as in {text!r}")


def _lookup(conn: _Conn, db: int, field: SeriesField, value: str, *, lock: bool = False) -> Any:
    if field not in _LOOKUP:
        raise ValueError(f"a series is looked up by 'id' or 'key', not {field!r}")
    if not _storable(value):
        return None
    return conn.execute(_LOOKUP[field] + (" FOR UPDATE" if lock else ""), (db, value)).fetchone()


def _sid(conn: _Conn, db: int, series_id: str, *, lock: bool = False) -> int | None:
    if not _storable(series_id):
        return None
    row = conn.execute(
        "SELECT sid FROM series WHERE db = %s AND id = %s" + (" FOR UPDATE" if lock else ""),
        (db, series_id),
    ).fetchone()
    return None if row is None else int(row[0])


def _filter_sql(db: int, flt: SeriesFilter) -> tuple[str, list[object]]:
    """A WHERE clause over ``series s`` for the filter (spec §5.1) and its parameters."""
    where = ["s.db = %s"]
    params: list[object] = [db]
    if flt.ids or flt.keys:
        where.append("(s.id = ANY(%s::text[]) OR s.key = ANY(%s::text[]))")
        params += [[i for i in flt.ids if _storable(i)], [k for k in flt.keys if _storable(k)]]
    if not _storable(*flt.tags, *flt.attributes):
        where.append("false")
    for tag in normalize_tags(t for t in flt.tags if _storable(t)):
        where.append("s.sid IN (SELECT sid FROM series_tag WHERE db = %s AND tag = %s)")
        params += [db, tag]
    for name, values in flt.attributes.items():
        if _storable(name):
            where.append(
                "s.sid IN (SELECT sid FROM series_attr WHERE db = %s AND name = %s "
                "AND value = ANY(%s::text[]))"
            )
            params += [db, name, [v for v in values if _storable(v)]]
    return " AND ".join(where), params


def _set_tags(conn: _Conn, db: int, sid: int, tags: Sequence[str], *, fresh: bool) -> None:
    if not fresh:
        conn.execute("DELETE FROM series_tag WHERE db = %s AND sid = %s", (db, sid))
    if tags:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO series_tag (db, sid, tag) VALUES (%s, %s, %s)",
                [(db, sid, t) for t in tags],
            )


def _set_attributes(
    conn: _Conn, db: int, sid: int, attributes: Mapping[str, str], *, fresh: bool
) -> None:
    if not fresh:
        conn.execute("DELETE FROM series_attr WHERE db = %s AND sid = %s", (db, sid))
    if attributes:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO series_attr (db, sid, name, value) VALUES (%s, %s, %s, %s)",
                [(db, sid, name, value) for name, value in attributes.items()],
            )


def _insert_series(
    conn: _Conn,
    db: int,
    series_id: str,
    key: str,
    name: str = "",
    tags: Sequence[str] = (),
    attributes: Mapping[str, str] | None = None,
) -> tuple[int, SeriesRecord] | None:
    """Insert a series; None when its id or key is taken (by a committed transaction, or by one
    that commits while this waits)."""
    tags = normalize_tags(tags)
    attrs = dict(attributes or {})
    _check_storable([series_id, key, name, *tags, *attrs, *attrs.values()])
    try:
        row = conn.execute(
            "INSERT INTO series (db, id, key, name, tags, attributes) "
            "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING sid",
            (db, series_id, key, name, list(tags), Json(attrs)),
        ).fetchone()
    except pg_errors.ForeignKeyViolation:
        raise StorageError(f"database {db} does not exist (deleted meanwhile?)") from None
    if row is None:
        return None
    sid = int(row[0])
    _set_tags(conn, db, sid, tags, fresh=True)
    _set_attributes(conn, db, sid, attrs, fresh=True)
    return sid, SeriesRecord(series_id, key, name, tags, attrs)


def _delete_sids(conn: _Conn, db: int, sids: Sequence[int]) -> None:
    if not sids:
        return
    for table in ("block", "series_tag", "series_attr", "series"):
        conn.execute(f"DELETE FROM {table} WHERE db = %s AND sid = ANY(%s::bigint[])", (db, sids))


def _decode_rows(rows: Iterable[Sequence[Any]]) -> list[Points]:
    return [decode(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows]


class PostgresStore(Store):
    """The PostgreSQL backend: several servers may share one database.

    Args:
        url: a libpq connection URL or string, e.g. ``postgresql://tempodb@db:5432/tempodb``
            (a password may also come from ``PGPASSWORD`` or ``~/.pgpass``).
        min_size: connections the pool keeps open.
        max_size: the most connections the pool opens.
        block_points: the most points a block holds (tests use small blocks).
        connect_timeout: seconds to wait for the database when starting, and for a free
            connection of the pool (then Overloaded).
        max_waiting: the most requests waiting for a connection (0: no limit); one more raises
            Overloaded at once.

    Raises:
        SchemaTooNew: the database was migrated by a newer tempodb.
        StorageError: the database cannot be reached.

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
        max_waiting: int = 0,
    ) -> None:
        if not 1 <= block_points <= _MAX_BLOCK_POINTS:
            raise ValueError(
                f"block_points must be between 1 and {_MAX_BLOCK_POINTS}, not {block_points!r}"
            )
        if not 0 <= min_size <= max_size or max_size < 1:
            raise ValueError(
                f"need 0 <= min_size <= max_size and max_size >= 1, not {min_size}, {max_size}"
            )
        self._cap = block_points
        try:
            with psycopg.connect(
                url, autocommit=True, connect_timeout=max(1, round(connect_timeout))
            ) as conn:
                _migrate(conn)
        except psycopg.OperationalError as exc:
            raise StorageError(f"cannot connect to PostgreSQL: {exc}".strip()) from exc
        self._pool: ConnectionPool = ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            kwargs={"autocommit": True, "application_name": "tempodb"},
            configure=_configure,
            name="tempodb",
            open=False,
            timeout=connect_timeout,
            max_waiting=max_waiting,
        )
        self._pool.open()
        self._closed = False
        self._lock = threading.Lock()

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every connection."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
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
            with self._pool.connection() as conn:
                yield conn
        except (PoolTimeout, TooManyRequests) as exc:
            raise Overloaded(f"no database connection free: {exc}") from exc

    def _read(self, fn: Callable[[_Conn], _T]) -> _T:
        """Run ``fn`` on a pooled connection in autocommit mode (each statement on its own).

        A connection that the server closed (a restart, a failover) is dropped and the read
        runs again on another one.
        """
        for attempt in range(_ATTEMPTS):
            self._check_open()
            with self._pooled() as conn:
                try:
                    return fn(conn)
                except psycopg.OperationalError:
                    if not conn.broken or attempt + 1 == _ATTEMPTS:
                        raise
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
                        if committing or not conn.broken:
                            raise
                        if attempt + 1 == _ATTEMPTS:
                            raise StorageError(f"lost the connection: {exc}") from exc
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
        if _storable(key):
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
        if not _storable(key):
            return False
        return self._transaction(
            lambda conn: (
                conn.execute(
                    "UPDATE databases SET revoked_at = coalesce(revoked_at, now()) WHERE key = %s",
                    (key,),
                ).rowcount
                > 0
            )
        )

    def delete_database(self, key: str) -> bool:
        """Delete a database with its series and points; False if the key is unknown."""

        if not _storable(key):
            return False

        def op(conn: _Conn) -> bool:
            row = conn.execute(
                "SELECT id FROM databases WHERE key = %s FOR UPDATE", (key,)
            ).fetchone()
            if row is None:
                return False
            db = int(row[0])
            conn.execute("SELECT sid FROM series WHERE db = %s ORDER BY sid FOR UPDATE", (db,))
            for table in ("block", "series_tag", "series_attr", "series"):
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
            created = _insert_series(conn, db, series_id, key, name, tags, attributes)
            if created is None:
                raise KeyConflict(key)
            return created[1]

        return self._transaction(op)

    def lookup_series(self, db: int, field: SeriesField, value: str) -> SeriesRecord | None:
        """The series with this id or key, or None."""
        row = self._read(lambda conn: _lookup(conn, db, field, value))
        return None if row is None else _record(row)

    def find_series(self, db: int, flt: SeriesFilter) -> list[SeriesRecord]:
        """The series matching the filter (all for an empty one), ordered by key."""
        where, params = _filter_sql(db, flt)
        rows = self._read(
            lambda conn: conn.execute(
                f"SELECT {_SERIES_COLUMNS} FROM series s WHERE {where} ORDER BY s.key", params
            ).fetchall()
        )
        return [_record(row) for row in rows]

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
            row = _lookup(conn, db, "id", series_id, lock=True)
            if row is None:
                return None
            attrs = dict(attributes or {})
            _check_storable([name or "", *(tags or ()), *attrs, *attrs.values()])
            sid, old = int(row[0]), _record(row)
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
                _set_tags(conn, db, sid, new.tags, fresh=False)
            if attributes is not None:
                _set_attributes(conn, db, sid, new.attributes, fresh=False)
            return new

        return self._transaction(op)

    def delete_series(self, db: int, flt: SeriesFilter | None) -> int:
        """Delete the matching series with their points (all for None); how many."""
        where, params = _filter_sql(db, flt or SeriesFilter())

        def op(conn: _Conn) -> int:
            rows = conn.execute(
                f"SELECT s.sid FROM series s WHERE {where} ORDER BY s.sid FOR UPDATE OF s", params
            ).fetchall()
            sids = [int(r[0]) for r in rows]
            _delete_sids(conn, db, sids)
            return len(sids)

        return self._transaction(op)

    # -- points ----------------------------------------------------------------------------------

    def write_points(
        self, db: int, batch: WriteBatch, *, increment: bool = False
    ) -> tuple[int, ...]:
        """Store the batch atomically (see ``Store.write_points``)."""
        if len(batch) == 0:
            return ()
        self._transaction(lambda conn: self._write(conn, db, batch, increment))
        return ()

    def read_points(
        self, db: int, series_id: str, start: int, end: int, *, cache: bool = True
    ) -> Points:
        """The points with ``start <= ts < end`` (none for an unknown series); this store
        keeps no decoded blocks (``cache`` is accepted for the contract's sake)."""
        if start >= end:
            return Points.empty()

        def op(conn: _Conn) -> list[Any]:
            sid = _sid(conn, db, series_id)
            if sid is None:
                return []
            params = {"db": db, "sid": sid, "lo": start, "hi": end}
            return conn.execute(_READ, params, binary=True).fetchall()

        return decode_run(self._read(op), start, end)

    def delete_points(self, db: int, series_id: str, start: int, end: int) -> int:
        """Delete the points with ``start <= ts < end``; how many there were."""
        if start >= end:
            return 0
        return self._transaction(lambda conn: self._delete_range(conn, db, series_id, start, end))

    def single_value(
        self, db: int, series_id: str, ts: int, direction: Direction
    ) -> tuple[int, int | float] | None:
        """The point at ``ts``, or the closest one before / after / either side of it."""
        if direction not in ("exact", "before", "after", "nearest"):
            raise ValueError(
                f"direction must be exact, before, after or nearest, not {direction!r}"
            )
        # One statement reads the block that may hold ``ts`` and, unless only earlier points
        # matter, the next one: both from the same snapshot.
        sql = (
            f"(SELECT {_BLOCK_COLUMNS} FROM block WHERE db = %(db)s AND sid = %(sid)s "
            "AND first <= %(ts)s ORDER BY first DESC LIMIT 1)"
        )
        if direction in ("after", "nearest"):
            sql += (
                f" UNION ALL (SELECT {_BLOCK_COLUMNS} FROM block WHERE db = %(db)s "
                "AND sid = %(sid)s AND first > %(ts)s ORDER BY first LIMIT 1) ORDER BY first"
            )

        def op(conn: _Conn) -> list[Points]:
            sid = _sid(conn, db, series_id)
            if sid is None:
                return []
            return _decode_rows(conn.execute(sql, {"db": db, "sid": sid, "ts": ts}, binary=True))

        points = concat(self._read(op))
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

    # -- inside write transactions ---------------------------------------------------------------

    def _write(self, conn: _Conn, db: int, batch: WriteBatch, increment: bool) -> None:
        used = np.bincount(batch.ref_index, minlength=len(batch.refs)) > 0
        refs = [ref for ref, use in zip(batch.refs, used.tolist(), strict=True) if use]
        # Resolve the series that exist and lock them, in sid order.
        rows = conn.execute(
            "SELECT sid, id, key FROM series WHERE db = %s "
            "AND (id = ANY(%s::text[]) OR key = ANY(%s::text[])) ORDER BY sid FOR UPDATE",
            (
                db,
                sorted({r.value for r in refs if r.field == "id"}),
                sorted({r.value for r in refs if r.field == "key"}),
            ),
        ).fetchall()
        found: dict[tuple[str, str], tuple[int, str]] = {}
        for sid, series_id, key in rows:
            found["id", series_id] = found["key", key] = (int(sid), series_id)
        # Create the missing ones ordered by key (stable: a key and an id of the same value keep
        # the request's order), so that requests creating series do not wait on each other's
        # new rows in a cycle.
        for ref in sorted(refs, key=lambda r: r.value):
            if (ref.field, ref.value) not in found:
                sid, series_id, key = _create_for_write(conn, db, ref)
                found["id", series_id] = found["key", key] = (sid, series_id)
        series_of_ref: list[str] = []
        sid_of: dict[str, int] = {}
        for ref, use in zip(batch.refs, used.tolist(), strict=True):
            if use:
                sid, series_id = found[ref.field, ref.value]
                sid_of[series_id] = sid
                series_of_ref.append(series_id)
            else:
                series_of_ref.append("")
        for series_id, points in fold_batch(batch, series_of_ref, increment=increment).items():
            self._merge(conn, db, sid_of[series_id], points, increment)

    def _merge(self, conn: _Conn, db: int, sid: int, new: Points, increment: bool) -> None:
        """Merge sorted unique points into the blocks of a locked series."""
        lo, hi = int(new.ts[0]), int(new.ts[-1])
        rows = conn.execute(
            _TAKE_RUN, {"db": db, "sid": sid, "lo": lo, "hi": hi}, binary=True
        ).fetchall()
        taken = sorted((r for r in rows if r[0] == 0), key=lambda r: int(r[1]))
        after = sorted(Meta(r[1], r[1], r[7], r[2]) for r in rows if r[0] == 2)
        if taken:
            run = [Meta(r[1], r[1], r[7], r[2]) for r in taken]
            parts = _decode_rows(r[1:] for r in taken)
        else:
            before = next((Meta(r[1], r[1], r[7], r[2]) for r in rows if r[0] == 1), None)
            run = choose_run([], before, after[0] if after else None, self._cap)
            parts = _take(conn, db, sid, run)
        merged = merge_points(concat(parts), new, increment=increment)
        last = int(merged.ts[-1])
        at_end = not any(m.first > last for m in after if m not in run)
        _put(conn, db, sid, split(merged, self._cap, at_end=at_end))

    def _delete_range(self, conn: _Conn, db: int, series_id: str, start: int, end: int) -> int:
        sid = _sid(conn, db, series_id, lock=True)
        if sid is None:
            return 0
        run = [
            Meta(r[0], r[0], r[1], r[2])
            for r in conn.execute(
                "SELECT first, last, n FROM block WHERE db = %(db)s AND sid = %(sid)s "
                f"AND first < %(hi)s AND last >= %(lo)s AND {_FROM_LO} ORDER BY first",
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
        rest, deleted = cut(_take(conn, db, sid, edges), start, end)
        if len(rest):
            later = conn.execute(
                "SELECT 1 FROM block WHERE db = %s AND sid = %s AND first > %s LIMIT 1",
                (db, sid, int(rest.ts[-1])),
            ).fetchone()
            _put(conn, db, sid, split(rest, self._cap, at_end=later is None))
        return deleted + sum(m.n for m in run if m not in edges)


def _create_for_write(conn: _Conn, db: int, ref: SeriesRef) -> tuple[int, str, str]:
    """Create the series a write addresses (its row stays locked by this transaction), or, if
    a concurrent request created it first, lock that one; its (sid, id, key)."""
    series_id = new_series_id() if ref.field == "key" else ref.value
    created = _insert_series(conn, db, series_id, ref.value)
    if created is not None:
        return created[0], series_id, ref.value
    row = _lookup(conn, db, ref.field, ref.value, lock=True)
    if row is not None:
        return int(row[0]), str(row[1]), str(row[2])
    if ref.field == "id" and _lookup(conn, db, "key", ref.value) is not None:
        raise KeyConflict(ref.value)
    raise _Retry(f"series {ref.value!r} was deleted while being created")


def _take(conn: _Conn, db: int, sid: int, run: Sequence[Meta]) -> list[Points]:
    """Delete the blocks of ``run`` and return their points, in time order."""
    if not run:
        return []
    rows = conn.execute(
        "DELETE FROM block WHERE db = %s AND sid = %s AND first = ANY(%s::bigint[]) "
        f"RETURNING {_BLOCK_COLUMNS}",
        (db, sid, [m.first for m in run]),
        binary=True,
    ).fetchall()
    if len(rows) != len(run):
        raise _Retry("blocks changed under a series lock")
    return _decode_rows(sorted(rows, key=lambda r: int(r[0])))


def _put(conn: _Conn, db: int, sid: int, blocks: Sequence[Block]) -> None:
    if len(blocks) == 1:
        conn.execute(_INSERT_BLOCK, (db, sid, *blocks[0]))
        return
    with conn.cursor() as cur:
        cur.executemany(_INSERT_BLOCK, [(db, sid, *b) for b in blocks])


def _configure(conn: _Conn) -> None:
    """Every pooled session: acknowledged means committed and flushed."""
    conn.execute("SET synchronous_commit = on")


def _migrate(conn: _Conn) -> None:
    """Apply the missing migrations under the migration lock; refuse a newer schema."""
    conn.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK,))
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS tempodb_schema ("
            "version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        row = conn.execute("SELECT coalesce(max(version), 0) FROM tempodb_schema").fetchone()
        version = int(row[0]) if row else 0
        if version > SCHEMA_VERSION:
            raise SchemaTooNew(
                f"the database has schema version {version}, but this tempodb knows only "
                f"versions up to {SCHEMA_VERSION}: upgrade tempodb"
            )
        for number in range(version + 1, SCHEMA_VERSION + 1):
            with conn.transaction():
                for statement in _MIGRATIONS[number - 1]:
                    conn.execute(statement)
                conn.execute("INSERT INTO tempodb_schema (version) VALUES (%s)", (number,))
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK,))
