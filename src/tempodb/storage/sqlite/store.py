"""``SQLiteStore``: the embedded default backend, on one SQLite file (see the package docstring)."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sqlite3
import stat
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any, ClassVar, Final, TypeVar

import numpy as np
import orjson

from tempodb.storage import idempotency
from tempodb.storage import retention as common_retention
from tempodb.storage.base import (
    Credentials,
    Database,
    Direction,
    Expired,
    KeyConflict,
    NewSeries,
    Piece,
    Points,
    Retention,
    SeriesField,
    SeriesFilter,
    SeriesRecord,
    StorageError,
    Store,
    WriteBatch,
    expiry_cutoffs,
    hash_secret,
    new_credentials,
    new_series_id,
    normalize_tags,
    verify_secret,
)
from tempodb.storage.blocks import (
    BlockCache,
    assemble,
    clip_pieces,
    concat,
    decode,
    decode_run,
)
from tempodb.storage.sqlite import head, retention, series
from tempodb.storage.sqlite.lock import lock_folder
from tempodb.storage.sqlite.points import (
    BLOCK_COLUMNS,
    READ,
    READ_MANY,
    SMALL_WRITE,
    PointWriter,
    presort,
)
from tempodb.storage.sqlite.schema import (
    FILE_NAME,
    KEYS_STAMP_NAME,
    SCHEMA_VERSION,
    check_version,
    migrate,
    user_version,
)
from tempodb.storage.sqlite.writer import Writer, WriterCache
from tempodb.tier import Tier

_T = TypeVar("_T")

#: The default number of points per block.
BLOCK_POINTS: Final = 4096
#: By default a series is folded from the write head into its blocks once the head holds
#: this many of its points ...
HEAD_POINTS: Final = 32
#: ... or this many seconds after the first of them went there (sparse series: see ``fold``).
FOLD_AFTER_S: Final = 30.0
#: By default a series that one write gives at least this many points skips the head.
DIRECT_POINTS: Final = 64
#: A write of more points than this is a large call for the writer (it waits in the lane of
#: large calls: one tenant's big writes hold the others' for at most one of them).
LARGE_WRITE: Final = 10_000
#: The default bound of the writer's queue.
DEFAULT_MAX_QUEUE: Final = 1024
#: ``estimate_points``: the sizes of a JSON array of series' blocks that overlap ``[?3, ?4)``
#: (found as ``READ`` finds them), and the number of their head rows there.
ESTIMATE: Final = (
    "SELECT (SELECT coalesce(sum(b.n), 0) FROM series AS s JOIN block AS b ON b.sid = s.sid "
    "WHERE s.db = ?1 AND s.id IN (SELECT value FROM json_each(?2)) "
    "AND b.first < ?4 AND b.last >= ?3 AND b.first >= coalesce((SELECT first FROM block "
    "WHERE sid = s.sid AND first <= ?3 ORDER BY first DESC LIMIT 1), ?3)) "
    "+ (SELECT count(*) FROM series AS s JOIN head AS h ON h.sid = s.sid "
    "WHERE s.db = ?1 AND s.id IN (SELECT value FROM json_each(?2)) AND h.ts >= ?3 AND h.ts < ?4)"
)
#: The default size of the cache of decoded blocks (``BlockCache``), in MiB.
DEFAULT_READ_CACHE_MB: Final = 256.0
_MAX_BLOCK_POINTS: Final = 1 << 20
#: SQLite's page cache of the writer connection (``page_cache_mb``), and of each reader
#: connection at most: a server has one reader per worker thread (32), so 8 MB each let the
#: process grow by a quarter of a gigabyte as the threads warm up.
DEFAULT_PAGE_CACHE_MB: Final = 32.0
_READER_CACHE_MB: Final = 2.0
#: Verified against when the key is unknown, so that both answers take the same time.
_DUMMY_HASH: Final = hash_secret("")


def _make_private(folder: Path, path: Path) -> None:
    """Keep the store to its owner whatever the umask: a new data folder is made 0700 and
    the database file 0600 (SQLite gives its ``-wal`` and ``-shm`` files the mode of the
    database file).  A folder that other users may write to is refused: they could replace
    the files under us."""
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        mode = folder.stat().st_mode
        if os.name == "posix" and mode & 0o022:
            raise StorageError(
                f"data_dir {str(folder)!r} may be written by other users (mode "
                f"{stat.S_IMODE(mode):o}): choose a private folder, or chmod go-w it"
            )
        if os.name == "posix":
            os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
            for name in (path.name, f"{path.name}-wal", f"{path.name}-shm"):
                kept = folder / name
                if kept.exists() and stat.S_IMODE(kept.stat().st_mode) & 0o077:
                    kept.chmod(0o600)  # written by an older tempodb under a loose umask
    except OSError as exc:
        raise StorageError(f"cannot use data_dir {str(folder)!r}: {exc.strerror or exc}") from None


class _Listings:
    """Recent pages of ``find_series_page``, each kept with the writer's series generation
    read before its query: valid while the generation is unchanged (it goes up after every
    commit that created, changed or deleted series), so a page is never staler than a query
    run at the same moment.  Bounded: ``limit`` pages of at most ``largest`` series each."""

    limit: Final = 256
    largest: Final = 20_000

    def __init__(self) -> None:
        self._pages: OrderedDict[Hashable, tuple[int, list[SeriesRecord]]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def question(db: int, flt: SeriesFilter, after: str | None, limit: int) -> Hashable:
        attributes = tuple(sorted((k, tuple(v)) for k, v in flt.attributes.items()))
        return (db, flt.ids, flt.keys, flt.tags, attributes, after, limit)

    def get(self, question: Hashable, generation: int) -> list[SeriesRecord] | None:
        with self._lock:
            kept = self._pages.get(question)
            if kept is None or kept[0] != generation:
                return None
            self._pages.move_to_end(question)
            return kept[1]

    def put(self, question: Hashable, generation: int, page: list[SeriesRecord]) -> None:
        if len(page) > self.largest:
            return
        with self._lock:
            self._pages[question] = (generation, page)
            self._pages.move_to_end(question)
            if len(self._pages) > self.limit:
                self._pages.popitem(last=False)


class _Reader:
    """A thread's reader connection: it closes when its thread ends (the thread-local goes and
    the connection with it) or when the store is closed."""

    __slots__ = ("__weakref__", "conn")

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn


class SQLiteStore(Store):
    """The embedded default backend: one SQLite file in ``data_dir``.

    Args:
        data_dir: the folder that holds the database file; created if missing.
        block_points: the most points a block holds (tests use small blocks).
        head_points: fold a series from the write head into its blocks once the head holds
            this many of its points (see ``points`` and ``fold``; tests use tiny heads).
        fold_after_s: ... or this many seconds after the first of them went to the head
            (``fold.SPARSE_AFTER`` times as long while it holds fewer than
            ``fold.DENSE_POINTS``).
        direct_points: a series that one write gives at least this many points skips the
            head and goes straight to its blocks.
        max_queue: the most write calls waiting for the writer at once; more raise Overloaded.
        lock: take the folder's writer lock (``lock.lock_folder``) for as long as the store is
            open, as the long-lived writers do (``tempodb serve``, ``tempodb.connect``).
        read_only: open an existing store without writing anything (no lock, no migration;
            every connection ``query_only``), to read beside a writer.

    Attributes:
        path: the database file.

    Raises:
        SchemaTooNew: the file was written by a newer tempodb.
        StorageError: ``data_dir`` exists but is not a folder; read-only and there is no
            store there, or one of an older schema.
        FolderLocked: ``lock`` and another process writes to the folder.

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
        head_points: int = HEAD_POINTS,
        fold_after_s: float = FOLD_AFTER_S,
        direct_points: int = DIRECT_POINTS,
        max_queue: int = DEFAULT_MAX_QUEUE,
        read_cache_mb: float = DEFAULT_READ_CACHE_MB,
        page_cache_mb: float = DEFAULT_PAGE_CACHE_MB,
        lock: bool = False,
        read_only: bool = False,
    ) -> None:
        if not read_cache_mb >= 0:
            raise ValueError(f"read_cache_mb must be 0 or more, not {read_cache_mb!r}")
        if not 0 < page_cache_mb < 1e6:
            raise ValueError(f"page_cache_mb must be more than 0 (and sane), not {page_cache_mb!r}")
        self._reader_cache_kib = max(64, int(1024 * min(page_cache_mb, _READER_CACHE_MB)))
        if not 1 <= block_points <= _MAX_BLOCK_POINTS:
            raise ValueError(
                f"block_points must be between 1 and {_MAX_BLOCK_POINTS}, not {block_points!r}"
            )
        if max_queue < 1:
            raise ValueError(f"max_queue must be at least 1, not {max_queue!r}")
        if head_points < 1:
            raise ValueError(f"head_points must be at least 1, not {head_points!r}")
        if not 0 < fold_after_s < 1e6:
            raise ValueError(
                f"fold_after_s must be more than 0 seconds (and sane), not {fold_after_s!r}"
            )
        if direct_points < 1:
            raise ValueError(f"direct_points must be at least 1, not {direct_points!r}")
        folder = Path(data_dir)
        if folder.exists() and not folder.is_dir():
            raise StorageError(f"data_dir {str(folder)!r} exists and is not a folder")
        self.path = folder / FILE_NAME
        self._keys_stamp_path = folder / KEYS_STAMP_NAME
        self.read_only = read_only
        if read_only and not self.path.is_file():
            raise StorageError(f"no tempodb data in {str(folder)!r} ({self.path} is missing)")
        if not read_only:
            _make_private(folder, self.path)
        self._lock = lock_folder(folder) if lock and not read_only else None
        self._blocks = BlockCache(int(read_cache_mb * 2**20)) if read_cache_mb else None
        try:
            conn = self._connect(cache_kib=max(64, int(1024 * page_cache_mb)))
        except BaseException:
            self._release_lock()
            raise
        try:
            check_version(user_version(conn), self.path)
            if read_only:
                conn.execute("PRAGMA query_only = ON")
                if user_version(conn) < SCHEMA_VERSION:
                    raise StorageError(
                        f"{self.path} has the older schema version {user_version(conn)}: "
                        "open it once for writing to upgrade it"
                    )
            else:
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise StorageError(f"{self.path}: cannot use the WAL journal (got {mode!r})")
                conn.execute("PRAGMA synchronous = FULL")
                migrate(conn, self.path)
        except BaseException:
            conn.close()
            self._release_lock()
            raise
        if not read_only and not self._keys_stamp_path.exists():
            self._bump_keys_stamp()
        self._purge = idempotency.Purge()
        cache = WriterCache()
        self._points = PointWriter(
            cache,
            block_points,
            head_points=head_points,
            fold_after_s=fold_after_s,
            direct_points=direct_points,
        )
        self._writer = Writer(
            conn,
            f"tempodb-writer:{self.path}",
            max_queue,
            cache=cache,
            planned_sql=head.UPSERT,
            maintenance=None if read_only else self._points,
        )
        self._listings = _Listings()
        self._local = threading.local()
        self._readers: weakref.WeakSet[_Reader] = weakref.WeakSet()
        self._readers_lock = threading.Lock()
        self._closed = False

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
        self._release_lock()

    def _release_lock(self) -> None:
        if self._lock is not None:
            self._lock.release()

    def _change_series(self, op: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run a call that creates, changes or deletes series: the listings kept
        (``_Listings``) expire with its commit."""

        def marked(conn: sqlite3.Connection) -> _T:
            self._writer.cache.series_changed = True
            return op(conn)

        return self._writer.call(marked)

    def queue_depth(self) -> int:
        """Write calls waiting for the writer thread."""
        return self._writer.depth()

    # -- connections -----------------------------------------------------------------------------

    def _connect(self, cache_kib: int | None = None) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, timeout=30.0, isolation_level=None, check_same_thread=False
        )
        kib = self._reader_cache_kib if cache_kib is None else cache_kib
        conn.execute(f"PRAGMA cache_size = -{int(kib)}")
        return conn

    def _reader(self) -> sqlite3.Connection:
        """This thread's reader connection (its page cache is small: there is one per server
        thread, and the decoded blocks they share live in ``BlockCache``)."""
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

        try:
            return self._writer.call(op)
        finally:
            self._bump_keys_stamp()

    def keys_stamp(self) -> Hashable | None:
        """The identity of ``keys.stamp`` (see ``Store.keys_stamp``): one ``stat``."""
        try:
            found = os.stat(self._keys_stamp_path)
        except OSError:
            return None
        return (found.st_ino, found.st_mtime_ns, found.st_size)

    def _bump_keys_stamp(self) -> None:
        """Replace ``keys.stamp`` with a new file: a new inode, whatever the clock does."""
        token = os.urandom(8).hex()
        fresh = self._keys_stamp_path.with_name(f"{KEYS_STAMP_NAME}.{token}.tmp")
        fresh.write_bytes(token.encode())
        os.replace(fresh, self._keys_stamp_path)

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
            target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            partial.unlink(missing_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot write the backup {target}: {exc}") from None
        source = self._connect()
        try:
            os.close(os.open(partial, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
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
            retention.forget_database(conn, db)
            for points in ("block", "head"):
                conn.execute(
                    f"DELETE FROM {points} WHERE sid IN (SELECT sid FROM series WHERE db = ?)",
                    (db,),
                )
            for table in ("series_tag", "series_attr", "series", "idempotency"):
                conn.execute(f"DELETE FROM {table} WHERE db = ?", (db,))
            conn.execute("DELETE FROM databases WHERE id = ?", (db,))
            return True

        try:
            return self._change_series(op)
        finally:
            self._bump_keys_stamp()

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
            return series.insert(
                conn, db, series_id, series_id if key is None else key, name, tags, attributes
            )[1]

        return self._change_series(op)

    def create_series_many(
        self, db: int, items: Sequence[NewSeries]
    ) -> list[SeriesRecord | KeyConflict]:
        """Create many series in one transaction (see ``Store.create_series_many``)."""
        return self._change_series(lambda conn: series.create_many(conn, db, items))

    def lookup_series(self, db: int, field: SeriesField, value: str) -> SeriesRecord | None:
        """The series with this id or key, or None."""
        row = series.lookup(self._reader(), db, field, value)
        return None if row is None else series.record(row)

    def find_series(self, db: int, flt: SeriesFilter) -> list[SeriesRecord]:
        """The series matching the filter (all for an empty one), ordered by key."""
        where, params = series.filter_sql(db, flt)
        rows = (
            self._reader()
            .execute(f"SELECT {series.COLUMNS} FROM series s WHERE {where} ORDER BY s.key", params)
            .fetchall()
        )
        return [series.record(row) for row in rows]

    def existing_keys(self, db: int, keys: Sequence[str]) -> set[str]:
        """Which of ``keys`` name a series of the database (one indexed query)."""
        return series.existing_keys(self._reader(), db, keys)

    def find_series_page(
        self, db: int, flt: SeriesFilter, *, after: str | None = None, limit: int
    ) -> list[SeriesRecord]:
        """A page of ``find_series`` (see ``Store.find_series_page``).  Recent pages are kept
        until series are next created, changed or deleted (``_Listings``): dashboards ask
        the same question again and again."""
        generation = self._writer.series_generation  # before the query: see _Listings
        question = _Listings.question(db, flt, after, limit)
        known = self._listings.get(question, generation)
        if known is not None:
            return list(known)
        where, params = series.filter_sql(db, flt)
        if after is not None:
            where += " AND s.key > ?"
            params.append(after)
        rows = (
            self._reader()
            .execute(
                f"SELECT {series.COLUMNS} FROM series s WHERE {where} ORDER BY s.key LIMIT ?",
                [*params, limit],
            )
            .fetchall()
        )
        page = [series.record(row) for row in rows]
        self._listings.put(question, generation, page)
        return page

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
            row = series.lookup(conn, db, "id", series_id)
            if row is None:
                return None
            sid, old = int(row[0]), series.record(row)
            new = SeriesRecord(
                id=old.id,
                key=old.key,
                name=old.name if name is None else name,
                tags=old.tags if tags is None else normalize_tags(tags),
                attributes=old.attributes if attributes is None else dict(attributes),
            )
            conn.execute(
                "UPDATE series SET name = ?, tags = ?, attributes = ? WHERE sid = ?",
                (
                    new.name,
                    orjson.dumps(new.tags).decode(),
                    orjson.dumps(dict(new.attributes)).decode(),
                    sid,
                ),
            )
            if tags is not None:
                series.set_tags(conn, sid, db, new.tags)
            if attributes is not None:
                series.set_attributes(conn, sid, db, new.attributes)
            return new

        return self._change_series(op)

    def delete_series(self, db: int, flt: SeriesFilter | None) -> int:
        """Delete the matching series with their points (all for None); how many."""
        where, params = series.filter_sql(db, flt or SeriesFilter())

        def op(conn: sqlite3.Connection) -> int:
            sids = [r[0] for r in conn.execute(f"SELECT sid FROM series s WHERE {where}", params)]
            series.delete_sids(conn, sids, self._writer.cache)
            return len(sids)

        return self._change_series(op)

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
        if not increment and len(batch) > SMALL_WRITE:
            batch = presort(batch)  # here, not in the writer, which all the writes wait for
        large = len(batch) > LARGE_WRITE
        if batch.idempotency is not None:
            return self._writer.submit(
                lambda conn: self._write_once(conn, db, batch, increment), large=large
            )
        plan = (
            (lambda: self._points.plan(db, batch, increment)) if len(batch) <= SMALL_WRITE else None
        )
        future: Future[tuple[int, ...]] = self._writer.submit(
            lambda conn: self._points.write(conn, db, batch, increment), plan, large=large
        )
        return future

    def _write_once(
        self, conn: sqlite3.Connection, db: int, batch: WriteBatch, increment: bool
    ) -> tuple[int, ...]:
        """A keyed write, in the writer's transaction: applied and remembered with its key,
        unless the key is held already (``storage/idempotency.py``)."""
        request = batch.idempotency
        assert request is not None
        idempotency.check(conn, "?", db, request, self._purge)
        skipped: tuple[int, ...] = self._points.write(conn, db, batch, increment)
        idempotency.remember(conn, "?", db, request, skipped)
        return skipped

    def fold_head(self) -> int:
        """Fold the write head into the blocks now, every series of it, in one transaction
        (the writer does it on its own by count and age; this is for tests and tools); how
        many points moved."""
        return self._writer.call(self._points.fold_all)

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
            sid = series.sid_of(conn, db, series_id)
            if sid is None:
                return Points.empty()
            fresh = head.read(conn, sid, start, end)
            if blocks is None:
                rows = conn.execute(READ.format(columns=BLOCK_COLUMNS), (sid, start, end))
                return _with_head(decode_run(rows.fetchall(), start, end), fresh)
            keys = conn.execute(READ.format(columns="rowid, gen"), (sid, start, end)).fetchall()
            parts = [blocks.get(key) for key in keys]
            missing = [key[0] for key, part in zip(keys, parts, strict=True) if part is None]
            found: dict[int, Any] = {}
            if missing:
                rows = conn.execute(
                    f"SELECT rowid, {BLOCK_COLUMNS} FROM block "
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
        return _with_head(assemble(complete, start, end), fresh)

    def read_points_many(
        self, db: int, series_ids: Sequence[str], start: int, end: int, *, cache: bool = True
    ) -> list[Points]:
        """``read_points`` of each series (in the order given), all in one snapshot: their
        sids, head rows, cached blocks' keys and the blocks not cached in one statement
        each."""
        answers: list[Points] = []
        for found in self._read_many(db, series_ids, start, end, cache=cache):
            if found is None:
                answers.append(Points.empty())
                continue
            parts, clipped, fresh = found
            got = parts[0] if clipped else assemble(parts, start, end)
            answers.append(got if fresh is None else _with_head(got, fresh))
        return answers

    def estimate_points(
        self, db: int, series_ids: Sequence[str], start: int, end: int
    ) -> int | None:
        """The points of the blocks that overlap ``[start, end)`` and the head rows in it,
        counted from the indexes in one statement."""
        if start >= end or not series_ids:
            return 0
        row = (
            self._reader()
            .execute(ESTIMATE, (db, json.dumps(list(series_ids)), start, end))
            .fetchone()
        )
        return int(row[0])

    def read_pieces_many(
        self, db: int, series_ids: Sequence[str], start: int, end: int, *, cache: bool = True
    ) -> list[list[Piece]]:
        """``read_points_many`` with each series' points as the consecutive pieces they are
        stored in: views of the cache's decoded blocks (read-only), nothing copied."""
        answers: list[list[Piece]] = []
        for found in self._read_many(db, series_ids, start, end, cache=cache):
            if found is None:
                answers.append([])
                continue
            parts, clipped, fresh = found
            if clipped:
                pieces: list[Piece] = [(p.ts, p.values, p.is_int, 0) for p in parts]
            else:
                pieces = clip_pieces(parts, start, end)
            if fresh is not None:
                pieces.append((fresh.ts, fresh.values, fresh.is_int, 0))
            answers.append(pieces)
        return answers

    def _read_many(
        self, db: int, series_ids: Sequence[str], start: int, end: int, *, cache: bool
    ) -> list[tuple[list[Points], bool, Points | None] | None]:
        """For each series (None when unknown), in one snapshot: the points of its blocks
        that may hold ``[start, end)`` (decoded whole, from the cache or not; with ``cache``
        off decoded into one, clipped to the range: the flag says), and its head rows there
        (None when none)."""
        if start >= end or not series_ids:
            return [None for _ in series_ids]  # nothing to read, as for unknown series
        blocks = self._blocks if cache else None
        rows: dict[int, list[Any]] = {}
        parts: dict[int, list[Points | None]] = {}
        found: dict[int, Any] = {}
        with self._snapshot() as conn:
            if len(set(series_ids)) == 1:  # the statements of read_points, quicker for one
                sid = series.sid_of(conn, db, series_ids[0])
                sids = {} if sid is None else {series_ids[0]: sid}
            else:
                sids = series.sids_by_id(conn, db, series_ids)
            known = list(dict.fromkeys(sids.values()))
            if len(known) == 1:
                only = head.read(conn, known[0], start, end)
                fresh = {known[0]: only} if len(only) else {}
            else:
                fresh = head.read_many(conn, known, start, end) if known else {}
            if blocks is None:
                statement = READ.format(columns=BLOCK_COLUMNS)
                for sid in known:
                    rows[sid] = conn.execute(statement, (sid, start, end)).fetchall()
            elif known:
                rows = {sid: [] for sid in known}
                if len(known) == 1:
                    statement = READ.format(columns="sid, rowid, gen")
                    keys = conn.execute(statement, (known[0], start, end)).fetchall()
                else:
                    keys = conn.execute(READ_MANY, (json.dumps(known), start, end)).fetchall()
                for sid, rowid, gen in keys:
                    rows[sid].append((rowid, gen))
                cached = blocks.get_many([(rowid, gen) for _, rowid, gen in keys])
                at = 0
                for sid, sid_keys in rows.items():
                    parts[sid] = cached[at : at + len(sid_keys)]
                    at += len(sid_keys)
                missing = [
                    rowid for (_, rowid, _), part in zip(keys, cached, strict=True) if part is None
                ]
                if missing:
                    found = {
                        row[0]: row[1:]
                        for row in conn.execute(
                            f"SELECT rowid, {BLOCK_COLUMNS} FROM block "
                            "WHERE rowid IN (SELECT value FROM json_each(?))",
                            (json.dumps(missing),),
                        )
                    }
        answers: list[tuple[list[Points], bool, Points | None] | None] = []
        for series_id in series_ids:
            if series_id not in sids:
                answers.append(None)
                continue
            sid = sids[series_id]
            if blocks is None:
                answers.append(([decode_run(rows[sid], start, end)], True, fresh.get(sid)))
                continue
            complete: list[Points] = []
            for key, part in zip(rows[sid], parts[sid], strict=True):
                if part is None:
                    part = decode(*found[key[0]])
                    blocks.put(key, part)
                complete.append(part)
            answers.append((complete, False, fresh.get(sid)))
        return answers

    def delete_points(self, db: int, series_id: str, start: int, end: int) -> int:
        """Delete the points with ``start <= ts < end``; how many there were."""
        if start >= end:
            return 0

        def op(conn: sqlite3.Connection) -> int:
            sid = series.sid_of(conn, db, series_id)
            if sid is not None:
                retention.drop_tier(conn, sid, start, end)  # TierCut: nothing deleted
            return self._points.delete_range(conn, db, series_id, start, end)

        return self._writer.call(op)

    # -- retention and the tier (``retention``) ----------------------------------------------

    def retentions(self) -> dict[int, Retention]:
        """The retention of every database that has one."""
        return common_retention.retentions(self._reader())

    def set_retention(self, key: str, kept: Retention) -> bool:
        """Set a database's retention; False if the key is unknown."""
        return self._writer.call(lambda conn: common_retention.set_retention(conn, "?", key, kept))

    def expire(self, now_ms: int) -> Expired:
        """One retention pass (``Store.expire``), one writer call per series."""
        counts = [0, 0, 0, 0]
        for db, kept in self.retentions().items():
            cutoff, tier_cutoff = expiry_cutoffs(kept, now_ms)
            for sid, series_id in retention.due_series(self._reader(), db, cutoff, tier_cutoff):
                done = self._writer.call(
                    functools.partial(
                        retention.expire_series,
                        writer=self._points,
                        db=db,
                        sid=sid,
                        series_id=series_id,
                        cutoff=cutoff,
                        tier_cutoff=tier_cutoff,
                    )
                )
                counts = [counts[0] + 1, *(a + b for a, b in zip(counts[1:], done, strict=True))]
        return Expired(*counts)

    def read_tiered(self, db: int, series_id: str, start: int, end: int) -> tuple[Any, Points]:
        """The summaries overlapping ``[start, end)`` and the points in it, one snapshot."""
        with self._snapshot() as conn:
            sid = series.sid_of(conn, db, series_id)
            if sid is None or start >= end:
                return Tier.empty(), Points.empty()
            found = retention.read(conn, sid, start, end)
            return found, retention.points_of(conn, sid, start, end)

    def single_value(
        self, db: int, series_id: str, ts: int, direction: Direction
    ) -> tuple[int, int | float] | None:
        """The point at ``ts``, or the closest one before / after / either side of it."""
        if direction not in ("exact", "before", "after", "nearest"):
            raise ValueError(
                f"direction must be exact, before, after or nearest, not {direction!r}"
            )
        with self._snapshot() as conn:
            sid = series.sid_of(conn, db, series_id)
            if sid is None:
                return None
            row = conn.execute(
                f"SELECT {BLOCK_COLUMNS} FROM block WHERE sid = ? AND first <= ? "
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
            # The head rows are later than every block point: one at or before ``ts`` is
            # the closest before it, and after ``ts`` they come after the blocks' points.
            earlier = head.near(conn, sid, ts, before=True) or earlier
            if earlier is not None and earlier[0] == ts:
                return earlier
            if direction == "exact":
                return None
            if direction == "before":
                return earlier
            if later is None:
                row = conn.execute(
                    f"SELECT {BLOCK_COLUMNS} FROM block WHERE sid = ? AND first > ? "
                    "ORDER BY first LIMIT 1",
                    (sid, ts),
                ).fetchone()
                if row is not None:
                    nxt = decode(*row)
                    later = (int(nxt.ts[0]), nxt.value_at(0))
                else:
                    later = head.near(conn, sid, ts, before=False)
        if direction == "after" or earlier is None:
            return later
        if later is None or ts - earlier[0] <= later[0] - ts:
            return earlier
        return later


def _with_head(blocks: Points, fresh: Points) -> Points:
    """A range's block points followed by its head rows (all later, see ``head``)."""
    if not len(fresh):
        return blocks
    return concat([blocks, fresh])
