"""The embedded default backend: one SQLite file, points kept in time-ordered columnar blocks.

Files
    ``<data_dir>/tempodb.sqlite3``, plus SQLite's ``-wal`` and ``-shm`` files while it is open.
    Journal mode WAL with ``synchronous=FULL``.  ``PRAGMA user_version`` is the schema version;
    opening a file runs the migrations in ``_MIGRATIONS`` that it lacks and refuses (SchemaTooNew)
    a file whose version is newer than this code.

Tables (schema version 4)
    ``databases(id, key, secret_hash, name, admin, revoked_at)``
        One row per API key.  ``secret_hash`` is ``hash_secret`` output; secrets are never stored.
        ``revoked_at`` (epoch ms, version 2) is NULL while the key works.
    ``series(sid, db, id, key, name, tags, attributes)``
        ``sid`` is the internal handle of a series.  ``sid`` and ``databases.id`` are
        AUTOINCREMENT, so a number is never reused and nothing deleted can reappear under a new
        owner.  (db, id) and (db, key) are unique.  ``tags`` (a JSON array: order kept, no
        duplicates) and ``attributes`` (a JSON object) are what a series reads back as.
    ``series_tag(sid, tag, db)`` and ``series_attr(sid, name, db, value)``
        The same tags and attributes again, indexed by (db, tag) and (db, name, value) so that
        series filters run in SQL.  They are rewritten in the same transaction as the JSON.
        These WITHOUT ROWID tables declare their primary key's columns first, in its order
        (version 4): with ``db`` between them, the integrity check of SQLite 3.40.0-3.41.0
        (Debian 12 has 3.40.1) reads ``db`` from the wrong place and reports "NULL value in
        series_tag.db" for a sound file, which failed every backup of a store with a tag.
    ``block(sid, first, last, n, fmt, ts, vals, mask, gen)``
        The points.  The unique index (sid, first, last, n, gen) finds the blocks of a time
        range, and names their contents, without reading any blob.  ``gen`` (version 3) is
        set by every write of the row to the writing transaction's generation, a random
        non-zero 62-bit number (rows untouched since the upgrade keep 0): (rowid, gen)
        names a block's contents for good, across processes too, and keys the cache of
        decoded blocks.

Blocks
    The format, the invariants and how writes re-chunk a series are those of
    ``tempodb.storage.blocks``; each block is a ``block`` row of one ``sid``, and the blocks
    hold at most ``block_points`` points (4096 unless configured).  Small writes after the
    last block of a series join it while it holds fewer than 256 points, else they start a
    new block, so that a stream of one-point writes never rewrites a big block.  The last
    block stays in the plain codes while it grows, so that a few points after it join it
    without decoding it: its blobs grow by the new points' bytes
    (``SET ts = CAST(ts || ? AS BLOB)``, byte for byte: the file's text encoding is never
    involved), see ``blocks.plain_append``.

Transactions
    One writer thread owns the only connection that writes.  Mutating calls are queued; the
    writer takes the first, begins a transaction, runs it and every call queued meanwhile
    (at most 512), each in its own SAVEPOINT, commits once, then answers each caller with its
    own result or exception (a failing call is rolled back to its savepoint and does not
    affect the others).  A call returns only after the commit, so whatever is acknowledged is
    durable.  Readers use one connection per thread and read inside a snapshot transaction,
    beside the writer (WAL).  At most ``max_queue`` calls wait for the writer at once; one more
    raises ``Overloaded`` without being queued.  ``submit_write`` queues a write and returns
    its future at once (the server awaits it on its event loop).

The writer's cache (``_Cache``)
    Small writes are where the writer's time goes, so it remembers, between transactions, the
    series that keys and ids name and the last block of each series (rowid, first, last, n,
    fmt).  A write of at most 64 points whose series and last blocks are all remembered, and
    whose points all go after them, is *planned* without a statement: the bytes to add to
    each last block are worked out in Python and the growths of all planned calls of a
    transaction run as one ``executemany`` (before the next call that is not planned, so
    that it sees them).  Such a call cannot fail on its own, so it needs no savepoint; if the
    statement or the commit fails, the whole transaction fails, as it would anyway.  The
    cache only ever holds what was true at the writer's last commit: it is emptied when
    another connection (another process on the same file) has committed since (``PRAGMA
    data_version``, read once the transaction holds the write lock), when a call is rolled
    back, when a transaction fails and when series are deleted; every change of a series'
    blocks other than a planned or small append forgets that series' last block.

The cache of decoded blocks
    Reads take the blocks they need from a bounded LRU of decoded blocks (``BlockCache``,
    256 MiB unless ``read_cache_mb`` says otherwise; 0 turns it off), keyed by (rowid, gen):
    the read lists the keys of its blocks in its snapshot, reads and decodes only the blobs
    of those not cached (in the same snapshot), and copies the parts it returns.  A block
    rewritten by anyone has a new key, so no entry needs invalidating; stale ones age out.
    Streamed reads (``cache=False``) neither use nor fill it.

Backups
    ``backup(path)`` copies the database with SQLite's online backup API in one step, inside one
    read transaction: a consistent snapshot, taken while the writer goes on.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import secrets
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any, ClassVar, Final, TypeVar

import numpy as np

from tempodb.storage.base import (
    MAX_EXACT_INT,
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
    TS_STEP,
    Block,
    BlockCache,
    Meta,
    PyPoint,
    assemble,
    choose_run,
    concat,
    cut,
    decode,
    decode_run,
    plain_append,
    plain_append_one,
    plain_block,
    split,
)

__all__ = ["BLOCK_POINTS", "FILE_NAME", "SCHEMA_VERSION", "SQLiteStore"]

#: The name of the database file inside the data folder.
FILE_NAME: Final = "tempodb.sqlite3"
#: The default number of points per block.
BLOCK_POINTS: Final = 4096
#: The default bound of the writer's queue.
DEFAULT_MAX_QUEUE: Final = 1024
#: The default size of the cache of decoded blocks (``BlockCache``), in MiB.
DEFAULT_READ_CACHE_MB: Final = 256.0
_MAX_BLOCK_POINTS: Final = 1 << 20
#: Small writes after a block this small join it; after a bigger one they start a new block.
_TAIL_POINTS: Final = 256
#: Writes of at most this many points take the per-point Python path (``_write_small``).
_SMALL_WRITE: Final = 64

_MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (  # 1: the initial schema
        """CREATE TABLE databases (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            key TEXT NOT NULL UNIQUE,
            secret_hash TEXT NOT NULL,
            name TEXT NOT NULL DEFAULT '',
            admin INTEGER NOT NULL DEFAULT 0
        )""",
        """CREATE TABLE series (
            sid INTEGER PRIMARY KEY AUTOINCREMENT,
            db INTEGER NOT NULL,
            id TEXT NOT NULL,
            key TEXT NOT NULL,
            name TEXT NOT NULL DEFAULT '',
            tags TEXT NOT NULL DEFAULT '[]',
            attributes TEXT NOT NULL DEFAULT '{}',
            UNIQUE (db, key),
            UNIQUE (db, id)
        )""",
        """CREATE TABLE series_tag (
            sid INTEGER NOT NULL,
            db INTEGER NOT NULL,
            tag TEXT NOT NULL,
            PRIMARY KEY (sid, tag)
        ) WITHOUT ROWID""",
        "CREATE INDEX series_tag_by_tag ON series_tag (db, tag, sid)",
        """CREATE TABLE series_attr (
            sid INTEGER NOT NULL,
            db INTEGER NOT NULL,
            name TEXT NOT NULL,
            value TEXT NOT NULL,
            PRIMARY KEY (sid, name)
        ) WITHOUT ROWID""",
        "CREATE INDEX series_attr_by_value ON series_attr (db, name, value, sid)",
        """CREATE TABLE block (
            sid INTEGER NOT NULL,
            first INTEGER NOT NULL,
            last INTEGER NOT NULL,
            n INTEGER NOT NULL,
            fmt INTEGER NOT NULL,
            ts BLOB NOT NULL,
            vals BLOB NOT NULL,
            mask BLOB
        )""",
        "CREATE UNIQUE INDEX block_by_time ON block (sid, first, last, n)",
    ),
    ("ALTER TABLE databases ADD COLUMN revoked_at INTEGER",),  # 2: key revocation
    (  # 3: block generations, for the cache of decoded blocks
        "ALTER TABLE block ADD COLUMN gen INTEGER NOT NULL DEFAULT 0",
        "DROP INDEX block_by_time",
        "CREATE UNIQUE INDEX block_by_time ON block (sid, first, last, n, gen)",
    ),
    (  # 4: the primary key's columns first (SQLite 3.40.0-3.41.0 misread the others' NOT NULL)
        """CREATE TABLE series_tag_4 (
            sid INTEGER NOT NULL,
            tag TEXT NOT NULL,
            db INTEGER NOT NULL,
            PRIMARY KEY (sid, tag)
        ) WITHOUT ROWID""",
        "INSERT INTO series_tag_4 (sid, tag, db) SELECT sid, tag, db FROM series_tag",
        "DROP TABLE series_tag",
        "ALTER TABLE series_tag_4 RENAME TO series_tag",
        "CREATE INDEX series_tag_by_tag ON series_tag (db, tag, sid)",
        """CREATE TABLE series_attr_4 (
            sid INTEGER NOT NULL,
            name TEXT NOT NULL,
            db INTEGER NOT NULL,
            value TEXT NOT NULL,
            PRIMARY KEY (sid, name)
        ) WITHOUT ROWID""",
        "INSERT INTO series_attr_4 (sid, name, db, value) "
        "SELECT sid, name, db, value FROM series_attr",
        "DROP TABLE series_attr",
        "ALTER TABLE series_attr_4 RENAME TO series_attr",
        "CREATE INDEX series_attr_by_value ON series_attr (db, name, value, sid)",
    ),
)

#: The schema version this code writes.
SCHEMA_VERSION: Final = len(_MIGRATIONS)

_T = TypeVar("_T")

# -- connections -----------------------------------------------------------------------------------


class _Reader:
    """A thread's reader connection: it closes when its thread ends (the thread-local goes and
    the connection with it) or when the store is closed."""

    __slots__ = ("__weakref__", "conn")

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn


#: One block's growth by a cached append: (last, n, ts bytes, vals bytes, rowid), for ``_GROW``.
_Growth = tuple[int, int, bytes, bytes, int]
#: A queued call: what to run in the transaction, an optional plan (see ``_Writer.submit``)
#: and the future of its outcome.
_Job = tuple[
    Callable[[sqlite3.Connection], Any], "Callable[[], list[_Growth] | None] | None", "Future[Any]"
]
_GROW: Final = (
    "UPDATE block SET last = ?, n = ?, ts = CAST(ts || ? AS BLOB), vals = CAST(vals || ? AS BLOB), "
    "gen = ? WHERE rowid = ?"
)


class _Tail:
    """What the writer knows of the last block of a series (updated in place as appends
    grow it)."""

    __slots__ = ("first", "fmt", "last", "n", "rowid")

    def __init__(self, rowid: int, first: int, last: int, n: int, fmt: int) -> None:
        self.rowid, self.first, self.last, self.n, self.fmt = rowid, first, last, n, fmt


class _Cache:
    """What the writer remembers between requests (see "The writer's cache" above): the
    (sid, id) that each (db, field, value) names, and the last block of each series.  Only
    the writer thread uses it."""

    __slots__ = ("data_version", "gen", "series", "tails")

    #: Entries kept at most (each map is emptied when it grows beyond).
    limit: Final = 65_536

    def __init__(self) -> None:
        self.series: dict[tuple[int, str, str], tuple[int, str]] = {}
        self.tails: dict[int, _Tail] = {}
        self.data_version = -1
        #: The generation that the blocks written by the current transaction get.
        self.gen = 0

    def clear(self) -> None:
        self.series.clear()
        self.tails.clear()

    def add_series(self, db: int, field: str, value: str, found: tuple[int, str]) -> None:
        if len(self.series) >= self.limit:
            self.series.clear()
        self.series[db, field, value] = found

    def set_tail(self, sid: int, tail: _Tail) -> None:
        if len(self.tails) >= self.limit:
            self.tails.clear()
        self.tails[sid] = tail


class _Writer:
    """The thread that owns the write connection and commits queued requests in groups."""

    max_group: Final = 512

    def __init__(self, conn: sqlite3.Connection, name: str, max_queue: int) -> None:
        self._conn = conn
        self.cache = _Cache()
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._max_queue = max_queue
        self._slots = threading.BoundedSemaphore(max_queue)
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def call(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run ``fn`` in the writer's transaction; return once it is committed.

        Raises Overloaded (and queues nothing) when ``max_queue`` calls are already waiting.
        """
        future: Future[_T] = self.submit(fn)
        return future.result()

    def submit(
        self,
        fn: Callable[[sqlite3.Connection], Any],
        plan: Callable[[], list[_Growth] | None] | None = None,
    ) -> Future[Any]:
        """Queue ``fn`` for the writer's next transaction, without waiting: the future gets
        its result (or exception) once that transaction is committed (or rolled back).

        ``plan``, when given, runs first in the writer thread: if it returns the block
        growths that make up the whole call (cached appends, which cannot fail on their
        own), they join those of the other planned calls of the transaction, and ``fn`` is
        not run (the result is None); if it returns None, ``fn`` runs as usual.

        Raises Overloaded (and queues nothing) when ``max_queue`` calls are already waiting.
        """
        if not self._slots.acquire(blocking=False):
            raise Overloaded(f"{self._max_queue} writes are waiting already: try again later")
        future: Future[Any] = Future()
        with self._lock:
            if self._closed:
                self._slots.release()
                raise StorageError("the store is closed")
            future.add_done_callback(self._release)
            self._queue.put((fn, plan, future))
        return future

    def _release(self, _: Future[Any]) -> None:
        self._slots.release()

    def close(self) -> None:
        """Finish the queued requests, stop the thread and close the connection."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(None)
        self._thread.join()
        self._conn.close()

    def depth(self) -> int:
        """Calls queued for the writer and not yet taken by it."""
        return self._queue.qsize()

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None or self._commit(job):
                return

    def _commit(self, first: _Job) -> bool:
        """One transaction for ``first`` and every call queued until it ends (at most
        ``max_group``, so that calls arriving while it runs join it rather than wait for
        the next one): each call in its own savepoint (a failing call is rolled back
        alone), planned calls' growths in one statement (before the next call that is not
        planned, so that it sees them), one commit, then the answers.  True when the queue
        asked the writer to stop."""
        conn = self._conn
        group: list[_Job | None] = [first]
        outcomes: list[tuple[Future[Any], Any, Exception | None]] = []
        cache = self.cache
        grown: dict[int, list[Any]] = {}  # rowid -> [last, n, ts bytes, vals bytes]
        stop = False
        try:
            conn.execute("BEGIN IMMEDIATE")
            cache.gen = new_generation()
            version = conn.execute("PRAGMA data_version").fetchone()[0]
            if version != cache.data_version:  # another connection committed meanwhile
                cache.clear()
                cache.data_version = version
            while len(outcomes) < len(group) or self._more(group):
                job = group[len(outcomes)]
                if job is None:  # close() was called: finish this group, then stop
                    group.pop()
                    stop = True
                    break
                outcomes.append(self._one(conn, job, grown))
            if grown:
                _grow(conn, grown, cache.gen)
            conn.execute("COMMIT")
        except Exception as exc:
            cache.clear()
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            for job in group:
                if job is None:
                    stop = True
                    continue
                failure = StorageError(f"the transaction was rolled back: {exc}")
                failure.__cause__ = exc
                job[2].set_exception(failure)
            return stop
        for future, result, error in outcomes:
            if error is None:
                future.set_result(result)
            else:
                future.set_exception(error)
        return stop

    def _one(
        self, conn: sqlite3.Connection, job: _Job, grown: dict[int, list[Any]]
    ) -> tuple[Future[Any], Any, Exception | None]:
        """Run one call inside the group's transaction: its outcome, to answer after the
        commit."""
        fn, plan, future = job
        if plan is not None:
            try:
                planned = plan()
            except Exception as exc:
                self.cache.clear()
                return future, None, exc
            if planned is not None:
                _combine(grown, planned)
                return future, (), None
        if grown:
            _grow(conn, grown, self.cache.gen)
        conn.execute("SAVEPOINT request")
        try:
            result = fn(conn)
        except Exception as exc:
            self.cache.clear()
            conn.execute("ROLLBACK TO request")
            conn.execute("RELEASE request")
            return future, None, exc
        conn.execute("RELEASE request")
        return future, result, None

    def _more(self, group: list[_Job | None]) -> bool:
        """Take the next queued call (or the stop mark, None) into ``group``; False when
        nothing is queued or the group is full."""
        if len(group) >= self.max_group:
            return False
        try:
            group.append(self._queue.get_nowait())
        except queue.Empty:
            return False
        return True


def _combine(grown: dict[int, list[Any]], growths: list[_Growth]) -> None:
    """Add growths to those pending, one per block (later ones extend earlier ones)."""
    for last, n, ts, vals, rowid in growths:
        pending = grown.get(rowid)
        if pending is None:
            grown[rowid] = [last, n, ts, vals]
        else:
            pending[0], pending[1] = last, n
            pending[2] += ts
            pending[3] += vals


def _grow(conn: sqlite3.Connection, grown: dict[int, list[Any]], gen: int) -> None:
    """Run the pending growths (and forget them)."""
    conn.executemany(_GROW, [(*pending, gen, rowid) for rowid, pending in grown.items()])
    grown.clear()


def new_generation() -> int:
    """A block generation: random, so that writers in several processes never agree on one
    by chance (one in 2**62), and never 0 (blocks written before version 3 have 0)."""
    return secrets.randbits(62) + 1


# -- schema --------------------------------------------------------------------------------------


def _user_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _check_version(version: int, path: Path) -> None:
    if version > SCHEMA_VERSION:
        raise SchemaTooNew(
            f"{path} has schema version {version}, but this tempodb knows only versions up to "
            f"{SCHEMA_VERSION}: upgrade tempodb"
        )


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Apply the missing migrations, one transaction each (safe against a concurrent opener)."""
    while True:
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = _user_version(conn)
            _check_version(version, path)
            if version == SCHEMA_VERSION:
                conn.execute("COMMIT")
                return
            for statement in _MIGRATIONS[version]:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


# -- series helpers (run on either connection) ---------------------------------------------------

_SERIES_COLUMNS: Final = "sid, id, key, name, tags, attributes"
_LOOKUP: Final[Mapping[SeriesField, str]] = {
    "id": f"SELECT {_SERIES_COLUMNS} FROM series WHERE db = ? AND id = ?",
    "key": f"SELECT {_SERIES_COLUMNS} FROM series WHERE db = ? AND key = ?",
}
#: Verified against when the key is unknown, so that both answers take the same time.
_DUMMY_HASH: Final = hash_secret("")


def _record(row: Sequence[Any]) -> SeriesRecord:
    return SeriesRecord(
        id=row[1],
        key=row[2],
        name=row[3],
        tags=tuple(json.loads(row[4])),
        attributes=json.loads(row[5]),
    )


def _lookup(conn: sqlite3.Connection, db: int, field: SeriesField, value: str) -> Any:
    if field not in _LOOKUP:
        raise ValueError(f"a series is looked up by 'id' or 'key', not {field!r}")
    return conn.execute(_LOOKUP[field], (db, value)).fetchone()


def _sid(conn: sqlite3.Connection, db: int, series_id: str) -> int | None:
    row = conn.execute("SELECT sid FROM series WHERE db = ? AND id = ?", (db, series_id)).fetchone()
    return None if row is None else int(row[0])


def _filter_sql(db: int, flt: SeriesFilter) -> tuple[str, list[object]]:
    """A WHERE clause over ``series s`` for the filter (spec §5.1) and its parameters.

    Every condition names the database itself, so that SQLite can drive the query from the
    most selective one (an id, a key, a tag) instead of scanning the database's series.
    """
    where: list[str] = []
    params: list[object] = []
    if flt.ids or flt.keys:
        where.append(
            "s.sid IN (SELECT sid FROM series WHERE db = ? AND id IN "
            "(SELECT value FROM json_each(?)) UNION ALL SELECT sid FROM series WHERE db = ? "
            "AND key IN (SELECT value FROM json_each(?)))"
        )
        params += [db, json.dumps(list(flt.ids)), db, json.dumps(list(flt.keys))]
    for tag in normalize_tags(flt.tags):
        where.append("s.sid IN (SELECT sid FROM series_tag WHERE db = ? AND tag = ?)")
        params += [db, tag]
    for name, values in flt.attributes.items():
        where.append(
            "s.sid IN (SELECT sid FROM series_attr WHERE db = ? AND name = ? AND value IN "
            "(SELECT value FROM json_each(?)))"
        )
        params += [db, name, json.dumps(list(values))]
    if not where:
        where.append("s.db = ?")
        params.append(db)
    return " AND ".join(where), params


def _set_tags(conn: sqlite3.Connection, sid: int, db: int, tags: Sequence[str]) -> None:
    conn.execute("DELETE FROM series_tag WHERE sid = ?", (sid,))
    conn.executemany(
        "INSERT INTO series_tag (sid, db, tag) VALUES (?, ?, ?)", [(sid, db, t) for t in tags]
    )


def _set_attributes(
    conn: sqlite3.Connection, sid: int, db: int, attributes: Mapping[str, str]
) -> None:
    conn.execute("DELETE FROM series_attr WHERE sid = ?", (sid,))
    conn.executemany(
        "INSERT INTO series_attr (sid, db, name, value) VALUES (?, ?, ?, ?)",
        [(sid, db, name, value) for name, value in attributes.items()],
    )


def _insert_series(
    conn: sqlite3.Connection,
    db: int,
    series_id: str,
    key: str,
    name: str = "",
    tags: Sequence[str] = (),
    attributes: Mapping[str, str] | None = None,
) -> tuple[int, SeriesRecord]:
    if conn.execute("SELECT 1 FROM series WHERE db = ? AND key = ?", (db, key)).fetchone():
        raise KeyConflict(key)
    tags = normalize_tags(tags)
    attrs = dict(attributes or {})
    cursor = conn.execute(
        "INSERT INTO series (db, id, key, name, tags, attributes) VALUES (?, ?, ?, ?, ?, ?)",
        (db, series_id, key, name, json.dumps(list(tags)), json.dumps(attrs)),
    )
    sid = int(cursor.lastrowid or 0)
    _set_tags(conn, sid, db, tags)
    _set_attributes(conn, sid, db, attrs)
    return sid, SeriesRecord(series_id, key, name, tags, attrs)


def _delete_sids(conn: sqlite3.Connection, sids: Sequence[int], cache: _Cache) -> None:
    if not sids:
        return
    cache.clear()
    ids = json.dumps(list(sids))
    for table in ("block", "series_tag", "series_attr", "series"):
        conn.execute(f"DELETE FROM {table} WHERE sid IN (SELECT value FROM json_each(?))", (ids,))


# -- block helpers -------------------------------------------------------------------------------

_BLOCK_COLUMNS: Final = "first, n, fmt, ts, vals, mask"
#: The blocks that may hold ``?2 <= ts < ?3`` of series ``?1``, in time order (the block
#: holding ``?2`` starts at the largest ``first <= ?2``).
_READ: Final = (
    "SELECT {columns} FROM block WHERE sid = ?1 AND first < ?3 AND last >= ?2 "
    "AND first >= coalesce((SELECT first FROM block WHERE sid = ?1 AND first <= ?2 "
    "ORDER BY first DESC LIMIT 1), ?2) ORDER BY first"
)


def _run_meta(conn: sqlite3.Connection, sid: int, lo: int, hi: int) -> list[Meta]:
    """The blocks holding any timestamp in ``[lo, hi]``, in time order."""
    rows = conn.execute(
        "SELECT rowid, first, last, n FROM block WHERE sid = ?1 AND first <= ?3 AND last >= ?2 "
        "AND first >= coalesce((SELECT first FROM block WHERE sid = ?1 AND first <= ?2 "
        "ORDER BY first DESC LIMIT 1), ?2) ORDER BY first",
        (sid, lo, hi),
    ).fetchall()
    return [Meta(*row) for row in rows]


def _neighbour(conn: sqlite3.Connection, sid: int, ts: int, *, before: bool) -> Meta | None:
    """The block starting closest before ``ts`` (``before``) or after it."""
    sql = (
        "SELECT rowid, first, last, n FROM block WHERE sid = ? AND first < ? "
        "ORDER BY first DESC LIMIT 1"
        if before
        else "SELECT rowid, first, last, n FROM block WHERE sid = ? AND first > ? "
        "ORDER BY first LIMIT 1"
    )
    row = conn.execute(sql, (sid, ts)).fetchone()
    return None if row is None else Meta(*row)


def _load(conn: sqlite3.Connection, run: Sequence[Meta]) -> list[Points]:
    parts = []
    for meta in run:
        row = conn.execute(
            f"SELECT {_BLOCK_COLUMNS} FROM block WHERE rowid = ?", (meta.handle,)
        ).fetchone()
        parts.append(decode(*row))
    return parts


def _update(conn: sqlite3.Connection, rowid: int, block: Block, gen: int) -> None:
    """Store ``block`` in place of the block row ``rowid`` (same ``first``)."""
    conn.execute(
        "UPDATE block SET last = ?, n = ?, fmt = ?, ts = ?, vals = ?, mask = ?, gen = ? "
        "WHERE rowid = ?",
        (block.last, block.n, block.fmt, block.ts, block.vals, block.mask, gen, rowid),
    )


def _drop(conn: sqlite3.Connection, run: Sequence[Meta]) -> None:
    conn.executemany("DELETE FROM block WHERE rowid = ?", [(meta.handle,) for meta in run])


def _group(
    batch: WriteBatch, sid_of_ref: Callable[[int], int], increment: bool
) -> dict[int, list[PyPoint]] | None:
    """A small batch's points per series (sid), sorted, one per timestamp: a write keeps
    the last value given, as ``fold_batch`` does; None for an increment that gives one
    timestamp twice (``fold_batch`` sums those)."""
    grouped: dict[int, dict[int, PyPoint]] = {}
    for ref, ts, value, is_int in zip(
        batch.ref_index.tolist(),
        batch.ts.tolist(),
        batch.values.tolist(),
        batch.is_int.tolist(),
        strict=True,
    ):
        points = grouped.setdefault(sid_of_ref(ref), {})
        if increment and ts in points:
            return None
        points[ts] = (ts, value, is_int)
    return {sid: [points[ts] for ts in sorted(points)] for sid, points in grouped.items()}


def _appended(points: list[PyPoint], increment: bool) -> list[PyPoint]:
    """What appending ``points`` stores: themselves, but after an increment an integer beyond
    2**53 is no exact integer any more (as ``merge_points`` decides)."""
    if not increment:
        return points
    return [(ts, value, is_int and abs(value) <= MAX_EXACT_INT) for ts, value, is_int in points]


class SQLiteStore(Store):
    """The embedded default backend: one SQLite file in ``data_dir``.

    Args:
        data_dir: the folder that holds the database file; created if missing.
        block_points: the most points a block holds (tests use small blocks).
        max_queue: the most write calls waiting for the writer at once; more raise Overloaded.

    Attributes:
        path: the database file.

    Raises:
        SchemaTooNew: the file was written by a newer tempodb.
        StorageError: ``data_dir`` exists but is not a folder.

    Example::

        store = SQLiteStore("/var/lib/tempodb")
        credentials = store.create_database("demo")
    """

    #: Keys are read from the local file and writes only queued: both return at once.
    quick_submit: ClassVar[bool] = True

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        block_points: int = BLOCK_POINTS,
        max_queue: int = DEFAULT_MAX_QUEUE,
        read_cache_mb: float = DEFAULT_READ_CACHE_MB,
    ) -> None:
        if not read_cache_mb >= 0:
            raise ValueError(f"read_cache_mb must be 0 or more, not {read_cache_mb!r}")
        if not 1 <= block_points <= _MAX_BLOCK_POINTS:
            raise ValueError(
                f"block_points must be between 1 and {_MAX_BLOCK_POINTS}, not {block_points!r}"
            )
        if max_queue < 1:
            raise ValueError(f"max_queue must be at least 1, not {max_queue!r}")
        folder = Path(data_dir)
        if folder.exists() and not folder.is_dir():
            raise StorageError(f"data_dir {str(folder)!r} exists and is not a folder")
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / FILE_NAME
        self._cap = block_points
        self._blocks = BlockCache(int(read_cache_mb * 2**20)) if read_cache_mb else None
        conn = self._connect(cache_kib=32768)
        try:
            _check_version(_user_version(conn), self.path)
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StorageError(f"{self.path}: cannot use the WAL journal (got {mode!r})")
            conn.execute("PRAGMA synchronous = FULL")
            _migrate(conn, self.path)
        except BaseException:
            conn.close()
            raise
        self._writer = _Writer(conn, f"tempodb-writer:{self.path}", max_queue)
        self._local = threading.local()
        self._readers: weakref.WeakSet[_Reader] = weakref.WeakSet()
        self._readers_lock = threading.Lock()
        self._closed = False

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Finish queued writes, stop the writer and close every connection."""
        with self._readers_lock:
            if self._closed:
                return
            self._closed = True
            readers = list(self._readers)
        self._writer.close()
        for reader in readers:
            reader.conn.close()

    def queue_depth(self) -> int:
        """Write calls waiting for the writer thread."""
        return self._writer.depth()

    # -- connections -----------------------------------------------------------------------------

    def _connect(self, cache_kib: int = 8192) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, timeout=30.0, isolation_level=None, check_same_thread=False
        )
        conn.execute(f"PRAGMA cache_size = -{int(cache_kib)}")
        return conn

    def _reader(self) -> sqlite3.Connection:
        """This thread's reader connection."""
        reader: _Reader | None = getattr(self._local, "reader", None)
        if reader is None:
            with self._readers_lock:
                if self._closed:
                    raise StorageError("the store is closed")
                reader = _Reader(self._connect())
                reader.conn.execute("PRAGMA query_only = ON")
                self._readers.add(reader)
            self._local.reader = reader
        elif self._closed:
            raise StorageError("the store is closed")
        return reader.conn

    @contextlib.contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        """A reader connection inside one read transaction (a consistent view)."""
        conn = self._reader()
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

    # -- databases and keys ----------------------------------------------------------------------

    def create_database(self, name: str = "", *, admin: bool = False) -> Credentials:
        """Create a database; its secret is stored only as a salted hash."""
        credentials = new_credentials()
        stored = hash_secret(credentials.secret)

        def op(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO databases (key, secret_hash, name, admin) VALUES (?, ?, ?, ?)",
                (credentials.key, stored, name, int(admin)),
            )

        self._writer.call(op)
        return credentials

    def authenticate(self, key: str, secret: str) -> Database | None:
        """The database of ``key`` if ``secret`` is right, else None."""
        row = (
            self._reader()
            .execute(
                "SELECT id, key, name, admin, secret_hash, revoked_at FROM databases WHERE key = ?",
                (key,),
            )
            .fetchone()
        )
        if row is None:
            verify_secret(secret, _DUMMY_HASH)
            return None
        if not verify_secret(secret, row[4]) or row[5] is not None:
            return None
        return Database(id=row[0], key=row[1], name=row[2], admin=bool(row[3]))

    def list_databases(self) -> list[Database]:
        """Every database, revoked ones included, ordered by key."""
        rows = (
            self._reader()
            .execute(
                "SELECT id, key, name, admin, revoked_at IS NOT NULL FROM databases ORDER BY key"
            )
            .fetchall()
        )
        return [
            Database(id=r[0], key=r[1], name=r[2], admin=bool(r[3]), revoked=bool(r[4]))
            for r in rows
        ]

    def revoke_database(self, key: str) -> bool:
        """Revoke ``key``: the next authentication fails; its data stays."""
        revoked_at = time.time_ns() // 1_000_000

        def op(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(
                "UPDATE databases SET revoked_at = coalesce(revoked_at, ?) WHERE key = ?",
                (revoked_at, key),
            )
            return cursor.rowcount > 0

        return self._writer.call(op)

    def backup(self, target: str | os.PathLike[str]) -> None:
        """Copy the database to the new file ``target`` (its folder is created if missing):
        one consistent snapshot, taken with SQLite's online backup API while writes go on,
        checked, and flushed to disk.

        Raises:
            StorageError: ``target`` exists, it cannot be written (a file where its folder
                should be, no permission, a full disk), or the copy fails its check.
        """
        target = Path(target)
        if target.exists():
            raise StorageError(f"{target} exists already: the backup does not overwrite it")
        partial = target.with_name(target.name + ".partial")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            partial.unlink(missing_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot write the backup {target}: {exc}") from None
        source = self._connect()
        try:
            copy = sqlite3.connect(partial, isolation_level=None)
            try:
                source.backup(copy)  # all pages in one step: one read transaction
                check = copy.execute("PRAGMA quick_check").fetchone()[0]
                if check != "ok":
                    raise StorageError(f"the backup {target} failed its check: {check}")
            finally:
                copy.close()
            with open(partial, "rb") as written:
                os.fsync(written.fileno())
            os.replace(partial, target)
            folder = os.open(target.parent, os.O_RDONLY)
            try:
                os.fsync(folder)
            finally:
                os.close(folder)
        except (sqlite3.Error, OSError) as exc:
            partial.unlink(missing_ok=True)
            raise StorageError(f"cannot write the backup {target}: {exc}") from None
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        finally:
            source.close()

    def delete_database(self, key: str) -> bool:
        """Delete a database with its series and points; False if the key is unknown."""

        def op(conn: sqlite3.Connection) -> bool:
            row = conn.execute("SELECT id FROM databases WHERE key = ?", (key,)).fetchone()
            if row is None:
                return False
            db = row[0]
            self._writer.cache.clear()
            conn.execute(
                "DELETE FROM block WHERE sid IN (SELECT sid FROM series WHERE db = ?)", (db,)
            )
            for table in ("series_tag", "series_attr", "series"):
                conn.execute(f"DELETE FROM {table} WHERE db = ?", (db,))
            conn.execute("DELETE FROM databases WHERE id = ?", (db,))
            return True

        return self._writer.call(op)

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

        def op(conn: sqlite3.Connection) -> SeriesRecord:
            return _insert_series(
                conn, db, series_id, series_id if key is None else key, name, tags, attributes
            )[1]

        return self._writer.call(op)

    def lookup_series(self, db: int, field: SeriesField, value: str) -> SeriesRecord | None:
        """The series with this id or key, or None."""
        row = _lookup(self._reader(), db, field, value)
        return None if row is None else _record(row)

    def find_series(self, db: int, flt: SeriesFilter) -> list[SeriesRecord]:
        """The series matching the filter (all for an empty one), ordered by key."""
        where, params = _filter_sql(db, flt)
        rows = (
            self._reader()
            .execute(f"SELECT {_SERIES_COLUMNS} FROM series s WHERE {where} ORDER BY s.key", params)
            .fetchall()
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

        def op(conn: sqlite3.Connection) -> SeriesRecord | None:
            row = _lookup(conn, db, "id", series_id)
            if row is None:
                return None
            sid, old = int(row[0]), _record(row)
            new = SeriesRecord(
                id=old.id,
                key=old.key,
                name=old.name if name is None else name,
                tags=old.tags if tags is None else normalize_tags(tags),
                attributes=old.attributes if attributes is None else dict(attributes),
            )
            conn.execute(
                "UPDATE series SET name = ?, tags = ?, attributes = ? WHERE sid = ?",
                (new.name, json.dumps(list(new.tags)), json.dumps(dict(new.attributes)), sid),
            )
            if tags is not None:
                _set_tags(conn, sid, db, new.tags)
            if attributes is not None:
                _set_attributes(conn, sid, db, new.attributes)
            return new

        return self._writer.call(op)

    def delete_series(self, db: int, flt: SeriesFilter | None) -> int:
        """Delete the matching series with their points (all for None); how many."""
        where, params = _filter_sql(db, flt or SeriesFilter())

        def op(conn: sqlite3.Connection) -> int:
            sids = [r[0] for r in conn.execute(f"SELECT sid FROM series s WHERE {where}", params)]
            _delete_sids(conn, sids, self._writer.cache)
            return len(sids)

        return self._writer.call(op)

    # -- points ----------------------------------------------------------------------------------

    def write_points(
        self, db: int, batch: WriteBatch, *, increment: bool = False
    ) -> tuple[int, ...]:
        """Store the batch atomically (see ``Store.write_points``)."""
        if len(batch) == 0:
            return ()
        return self.submit_write(db, batch, increment=increment).result()

    def submit_write(
        self, db: int, batch: WriteBatch, *, increment: bool = False
    ) -> Future[tuple[int, ...]]:
        """Queue the batch for the writer and return at once (see ``Store.submit_write``);
        Overloaded when the queue is full."""
        if len(batch) == 0:
            done: Future[tuple[int, ...]] = Future()
            done.set_result(())
            return done
        plan = (lambda: self._plan(db, batch, increment)) if len(batch) <= _SMALL_WRITE else None
        future: Future[tuple[int, ...]] = self._writer.submit(
            lambda conn: self._write(conn, db, batch, increment), plan
        )
        return future

    def read_points(
        self, db: int, series_id: str, start: int, end: int, *, cache: bool = True
    ) -> Points:
        """The points with ``start <= ts < end`` (none for an unknown series).

        With ``cache`` (and a read cache), blocks already decoded are taken from the cache
        and those decoded now are kept there."""
        if start >= end:
            return Points.empty()
        blocks = self._blocks if cache else None
        with self._snapshot() as conn:
            sid = _sid(conn, db, series_id)
            if sid is None:
                return Points.empty()
            if blocks is None:
                rows = conn.execute(_READ.format(columns=_BLOCK_COLUMNS), (sid, start, end))
                return decode_run(rows.fetchall(), start, end)
            keys = conn.execute(_READ.format(columns="rowid, gen"), (sid, start, end)).fetchall()
            parts = [blocks.get(key) for key in keys]
            missing = [key[0] for key, part in zip(keys, parts, strict=True) if part is None]
            found: dict[int, Any] = {}
            if missing:
                rows = conn.execute(
                    f"SELECT rowid, {_BLOCK_COLUMNS} FROM block "
                    "WHERE rowid IN (SELECT value FROM json_each(?))",
                    (json.dumps(missing),),
                )
                found = {row[0]: row[1:] for row in rows}
        complete: list[Points] = []
        for key, part in zip(keys, parts, strict=True):
            if part is None:
                part = decode(*found[key[0]])
                blocks.put(key, part)
            complete.append(part)
        return assemble(complete, start, end)

    def delete_points(self, db: int, series_id: str, start: int, end: int) -> int:
        """Delete the points with ``start <= ts < end``; how many there were."""
        if start >= end:
            return 0
        return self._writer.call(lambda conn: self._delete_range(conn, db, series_id, start, end))

    def single_value(
        self, db: int, series_id: str, ts: int, direction: Direction
    ) -> tuple[int, int | float] | None:
        """The point at ``ts``, or the closest one before / after / either side of it."""
        if direction not in ("exact", "before", "after", "nearest"):
            raise ValueError(
                f"direction must be exact, before, after or nearest, not {direction!r}"
            )
        with self._snapshot() as conn:
            sid = _sid(conn, db, series_id)
            if sid is None:
                return None
            row = conn.execute(
                f"SELECT {_BLOCK_COLUMNS} FROM block WHERE sid = ? AND first <= ? "
                "ORDER BY first DESC LIMIT 1",
                (sid, ts),
            ).fetchone()
            block = None if row is None else decode(*row)
            earlier: tuple[int, int | float] | None = None
            later: tuple[int, int | float] | None = None
            if block is not None:
                i = int(np.searchsorted(block.ts, ts, "right")) - 1
                earlier = (int(block.ts[i]), block.value_at(i))
                if i + 1 < len(block):
                    later = (int(block.ts[i + 1]), block.value_at(i + 1))
            if earlier is not None and earlier[0] == ts:
                return earlier
            if direction == "exact":
                return None
            if direction == "before":
                return earlier
            if later is None:
                row = conn.execute(
                    f"SELECT {_BLOCK_COLUMNS} FROM block WHERE sid = ? AND first > ? "
                    "ORDER BY first LIMIT 1",
                    (sid, ts),
                ).fetchone()
                if row is not None:
                    nxt = decode(*row)
                    later = (int(nxt.ts[0]), nxt.value_at(0))
        if direction == "after" or earlier is None:
            return later
        if later is None or ts - earlier[0] <= later[0] - ts:
            return earlier
        return later

    # -- the writer's side -----------------------------------------------------------------------

    def _write(
        self, conn: sqlite3.Connection, db: int, batch: WriteBatch, increment: bool
    ) -> tuple[int, ...]:
        if len(batch) <= _SMALL_WRITE and self._write_small(conn, db, batch, increment):
            return ()
        used = np.bincount(batch.ref_index, minlength=len(batch.refs)) > 0
        series_of_ref: list[str] = []
        sid_of: dict[str, int] = {}
        for index, ref in enumerate(batch.refs):
            if used[index]:
                sid, series_id = self._resolve(conn, db, ref)
                sid_of[series_id] = sid
            else:
                series_id = ""
            series_of_ref.append(series_id)
        for series_id, points in fold_batch(batch, series_of_ref, increment=increment).items():
            self._merge(conn, sid_of[series_id], points, increment)
        return ()

    def _plan(self, db: int, batch: WriteBatch, increment: bool) -> list[_Growth] | None:
        """The growths of a small write made only of cached appends (``_Writer.submit``),
        found without a statement; None (and nothing changed) for any other write."""
        cache = self._writer.cache
        known, tails = cache.series, cache.tails
        refs = batch.refs
        index = batch.ref_index.tolist()
        planned: list[tuple[_Tail, int, int, tuple[bytes, bytes]]] = []
        if len(set(index)) == len(index):  # one point per ref: the common case, in one pass
            seen: set[int] = set()
            for ref_at, ts, value, is_int in zip(
                index, batch.ts.tolist(), batch.values.tolist(), batch.is_int.tolist(), strict=True
            ):
                ref = refs[ref_at]
                found = known.get((db, ref.field, ref.value))
                if found is None or found[0] in seen:
                    return None
                seen.add(found[0])
                tail = tails.get(found[0])
                if tail is None or tail.n >= _TAIL_POINTS or ts <= tail.last or tail.n >= self._cap:
                    return None
                if increment:
                    is_int = is_int and abs(value) <= MAX_EXACT_INT
                added = plain_append_one(tail.fmt, tail.first, ts, value, is_int)
                if added is None:
                    return None
                planned.append((tail, ts, tail.n + 1, added))
        else:
            where: dict[int, int] = {}
            for ref_at in set(index):
                ref = refs[ref_at]
                found = known.get((db, ref.field, ref.value))
                if found is None:
                    return None
                where[ref_at] = found[0]
            grouped = _group(batch, where.__getitem__, increment)
            if grouped is None:
                return None
            for sid, points in grouped.items():
                points = _appended(points, increment)
                tail = tails.get(sid)
                if tail is None or tail.n >= _TAIL_POINTS or points[0][0] <= tail.last:
                    return None
                count = tail.n + len(points)
                more = plain_append(tail.fmt, tail.first, points) if count <= self._cap else None
                if more is None:
                    return None
                planned.append((tail, points[-1][0], count, more))
        growths: list[_Growth] = []
        for tail, last, count, (ts_bytes, vals_bytes) in planned:
            tail.last, tail.n = last, count
            growths.append((last, count, ts_bytes, vals_bytes, tail.rowid))
        return growths

    def _write_small(
        self, conn: sqlite3.Connection, db: int, batch: WriteBatch, increment: bool
    ) -> bool:
        """A write of a few points, point by point in Python (numpy's per-call costs dwarf
        the work on arrays this small), with the same outcome as the numpy path.  False (and
        nothing done) for an increment that adds to one timestamp twice, which the numpy path
        sums in its own order."""
        refs = batch.refs
        where: dict[int, int] = {}
        for index in set(batch.ref_index.tolist()):
            where[index] = self._resolve(conn, db, refs[index])[0]
        # Series are created only when missing, as the numpy path would do: giving up on a
        # repeated increment after that changes nothing.
        grouped = _group(batch, where.__getitem__, increment)
        if grouped is None:
            return False
        grown: list[_Growth] = []
        for sid, points in grouped.items():
            if not self._append_small(conn, sid, _appended(points, increment), grown):
                ts_all, values, ints = zip(*points, strict=True)
                new = Points(np.array(ts_all, np.int64), np.array(values), np.array(ints, np.bool_))
                self._merge(conn, sid, new, increment)
        if grown:
            gen = self._writer.cache.gen
            conn.executemany(_GROW, [(*growth[:4], gen, growth[4]) for growth in grown])
        return True

    def _append_small(
        self,
        conn: sqlite3.Connection,
        sid: int,
        points: list[PyPoint],
        grown: list[_Growth],
    ) -> bool:
        """Append a few points after the last block of a series without decoding it: a
        small plain last block grows by its blobs' new bytes (the UPDATE is added to
        ``grown``, for the caller to run), after a bigger one a new plain block starts; the
        last block is remembered (``_Cache``).  False when the points are not such an append;
        nothing is done then."""
        cache = self._writer.cache
        tail = cache.tails.get(sid)
        if tail is None:
            row = conn.execute(
                "SELECT rowid, first, last, n, fmt FROM block WHERE sid = ? "
                "ORDER BY first DESC LIMIT 1",
                (sid,),
            ).fetchone()
            if row is None:
                block = plain_block(points) if len(points) < self._cap else None
                if block is None:
                    return False
                self._start_block(conn, sid, block)
                return True
            tail = _Tail(*row)
        if points[0][0] <= tail.last:
            return False
        if tail.n < _TAIL_POINTS:
            count = tail.n + len(points)
            added = plain_append(tail.fmt, tail.first, points) if count <= self._cap else None
            if added is None:
                return False
            tail.last, tail.n = points[-1][0], count
            grown.append((tail.last, count, added[0], added[1], tail.rowid))
            cache.set_tail(sid, tail)
            return True
        block = plain_block(points) if len(points) < min(_TAIL_POINTS, self._cap) else None
        if block is None:
            return False
        if not tail.fmt & TS_STEP:  # plain codes: compress it now that it stays as it is
            [old] = _load(conn, [Meta(tail.rowid, tail.first, tail.last, tail.n)])
            [compressed] = split(old, self._cap, at_end=False)
            _update(conn, tail.rowid, compressed, self._writer.cache.gen)
        self._start_block(conn, sid, block)
        return True

    def _start_block(self, conn: sqlite3.Connection, sid: int, block: Block) -> None:
        """Store a plain block as the new last block of a series."""
        cursor = conn.execute(
            "INSERT INTO block (sid, first, last, n, fmt, ts, vals, mask, gen) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (sid, *block, self._writer.cache.gen),
        )
        tail = _Tail(int(cursor.lastrowid or 0), block.first, block.last, block.n, block.fmt)
        self._writer.cache.set_tail(sid, tail)

    def _resolve(self, conn: sqlite3.Connection, db: int, ref: SeriesRef) -> tuple[int, str]:
        """The (sid, id) a write addresses, creating the series when it is unknown."""
        cache = self._writer.cache
        found = cache.series.get((db, ref.field, ref.value))
        if found is not None:
            return found
        row = _lookup(conn, db, ref.field, ref.value)
        if row is not None:
            found = (int(row[0]), str(row[1]))
        else:
            series_id = new_series_id() if ref.field == "key" else ref.value
            sid, _ = _insert_series(conn, db, series_id, ref.value)
            found = (sid, series_id)
        cache.add_series(db, ref.field, ref.value, found)
        return found

    def _merge(self, conn: sqlite3.Connection, sid: int, new: Points, increment: bool) -> None:
        """Merge sorted unique points into a series' blocks."""
        self._writer.cache.tails.pop(sid, None)
        if self._append(conn, sid, new, increment):
            return
        lo, hi = int(new.ts[0]), int(new.ts[-1])
        run = _run_meta(conn, sid, lo, hi)
        if not run:
            before = _neighbour(conn, sid, lo, before=True)
            after = _neighbour(conn, sid, hi, before=False)
            run = choose_run(run, before, after, self._cap)
        merged = merge_points(concat(_load(conn, run)), new, increment=increment)
        _drop(conn, run)
        self._store(conn, sid, merged)

    def _append(self, conn: sqlite3.Connection, sid: int, new: Points, increment: bool) -> bool:
        """Small writes after the last block, without rewriting a big block: the points join
        the last block while it is small (one read, one update), else start a new block
        (and the old last block, no longer rewritten by appends, is compressed).  False when
        the write is not such an append."""
        row = conn.execute(
            f"SELECT rowid, last, {_BLOCK_COLUMNS} FROM block WHERE sid = ? "
            "ORDER BY first DESC LIMIT 1",
            (sid,),
        ).fetchone()
        if row is None or int(new.ts[0]) <= row[1]:
            return False
        rowid, count, fmt = row[0], row[3], row[4]
        if count < _TAIL_POINTS:
            if count + len(new) > self._cap:
                return False
            merged = merge_points(decode(*row[2:]), new, increment=increment)
            [block] = split(merged, self._cap, at_end=True)
        elif len(new) < _TAIL_POINTS:
            if not fmt & TS_STEP:  # plain codes: compress it now that it stays as it is
                old = decode(*row[2:])
                [block] = split(old, self._cap, at_end=False)
                _update(conn, rowid, block, self._writer.cache.gen)
            self._store(conn, sid, new)
            return True
        else:
            return False
        _update(conn, rowid, block, self._writer.cache.gen)
        return True

    def _delete_range(
        self, conn: sqlite3.Connection, db: int, series_id: str, start: int, end: int
    ) -> int:
        sid = _sid(conn, db, series_id)
        if sid is None:
            return 0
        self._writer.cache.tails.pop(sid, None)
        run = _run_meta(conn, sid, start, end - 1)
        edges = [m for m in run if m.first < start or m.last >= end]
        rest, deleted = cut(_load(conn, edges), start, end)
        _drop(conn, run)
        if len(rest):
            self._store(conn, sid, rest)
        return deleted + sum(m.n for m in run if m not in edges)

    def _store(self, conn: sqlite3.Connection, sid: int, points: Points) -> None:
        """Insert a run of points into the gap left for it, as blocks."""
        at_end = _neighbour(conn, sid, int(points.ts[-1]), before=False) is None
        gen = self._writer.cache.gen
        rows = [(sid, *block, gen) for block in split(points, self._cap, at_end=at_end)]
        conn.executemany(
            "INSERT INTO block (sid, first, last, n, fmt, ts, vals, mask, gen) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
