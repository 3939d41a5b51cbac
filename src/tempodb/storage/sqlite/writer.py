"""The writer: one thread that owns the only connection that writes, and commits queued calls
in groups; and what it remembers between transactions.

Transactions
    One writer thread owns the only connection that writes.  Mutating calls are queued; the
    writer takes the first, begins a transaction, runs it and every call queued meanwhile
    (at most 512), each in its own SAVEPOINT, commits once, then answers each caller with its
    own result or exception (a failing call is rolled back to its savepoint and does not
    affect the others).  A call returns only after the commit, so whatever is acknowledged is
    durable.  Readers use one connection per thread and read inside a snapshot transaction,
    beside the writer (WAL).  At most ``max_queue`` calls wait for the writer at once; one more
    raises ``Overloaded`` without being queued.  ``Writer.submit`` queues a call and returns its
    future at once (the server awaits a write's future on its event loop).

The writer's cache (``WriterCache``)
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
    blocks other than a planned or small append forgets that series' last block.  Both maps
    are bounded LRUs (``WriterCache.limit`` entries each), so at a million series the cache
    holds the busiest and the rest are looked up, in one statement per write
    (``series.resolve``, ``points.tails``).
"""

from __future__ import annotations

import contextlib
import queue
import secrets
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Final, Generic, TypeVar

from tempodb.storage.base import Overloaded, StorageError, StorageFull

_T = TypeVar("_T")
_K = TypeVar("_K")
_V = TypeVar("_V")

#: One block's growth by a cached append: (last, n, ts bytes, vals bytes, rowid), for ``GROW``.
Growth = tuple[int, int, bytes, bytes, int]
#: A queued call: what to run in the transaction, an optional plan (see ``Writer.submit``)
#: and the future of its outcome.
Job = tuple[
    Callable[[sqlite3.Connection], Any], "Callable[[], list[Growth] | None] | None", "Future[Any]"
]
GROW: Final = (
    "UPDATE block SET last = ?, n = ?, ts = CAST(ts || ? AS BLOB), vals = CAST(vals || ? AS BLOB), "
    "gen = ? WHERE rowid = ?"
)


class Tail:
    """What the writer knows of the last block of a series (updated in place as appends
    grow it)."""

    __slots__ = ("first", "fmt", "last", "n", "rowid")

    def __init__(self, rowid: int, first: int, last: int, n: int, fmt: int) -> None:
        self.rowid, self.first, self.last, self.n, self.fmt = rowid, first, last, n, fmt


class LruMap(Generic[_K, _V]):
    """A map that holds at most ``limit`` entries and forgets the least recently used."""

    __slots__ = ("_data", "limit")

    def __init__(self, limit: int) -> None:
        self._data: OrderedDict[_K, _V] = OrderedDict()
        self.limit = limit

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: _K) -> _V | None:
        value = self._data.get(key)
        if value is not None:
            self._data.move_to_end(key)
        return value

    def __setitem__(self, key: _K, value: _V) -> None:
        data = self._data
        data[key] = value
        data.move_to_end(key)
        if len(data) > self.limit:
            data.popitem(last=False)

    def pop(self, key: _K) -> None:
        self._data.pop(key, None)

    def clear(self) -> None:
        self._data.clear()


class WriterCache:
    """What the writer remembers between requests (see "The writer's cache" above): the
    (sid, id) that each (db, field, value) names, and the last block of each series, each in
    a bounded LRU map, so that memory does not grow with the series stored.  Only the writer
    thread uses it."""

    __slots__ = ("data_version", "gen", "series", "series_changed", "tails")

    #: Entries kept at most in each map.
    limit: Final = 131_072

    def __init__(self) -> None:
        self.series: LruMap[tuple[int, str, str], tuple[int, str]] = LruMap(self.limit)
        self.tails: LruMap[int, Tail] = LruMap(self.limit)
        self.data_version = -1
        #: The generation that the blocks written by the current transaction get.
        self.gen = 0
        #: Set by every call that creates, changes or deletes series (see
        #: ``Writer.series_generation``).
        self.series_changed = False

    def clear(self) -> None:
        self.series.clear()
        self.tails.clear()


class Writer:
    """The thread that owns the write connection and commits queued requests in groups."""

    max_group: Final = 512

    def __init__(self, conn: sqlite3.Connection, name: str, max_queue: int) -> None:
        self._conn = conn
        self.cache = WriterCache()
        self._queue: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._max_queue = max_queue
        self._slots = threading.BoundedSemaphore(max_queue)
        self._lock = threading.Lock()
        self._closed = False
        #: Goes up after every commit that changed series metadata (and whenever another
        #: connection committed meanwhile): readers that keep query results check it.
        self.series_generation = 0
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
        plan: Callable[[], list[Growth] | None] | None = None,
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

    def _commit(self, first: Job) -> bool:
        """One transaction for ``first`` and every call queued until it ends (at most
        ``max_group``, so that calls arriving while it runs join it rather than wait for
        the next one): each call in its own savepoint (a failing call is rolled back
        alone), planned calls' growths in one statement (before the next call that is not
        planned, so that it sees them), one commit, then the answers.  True when the queue
        asked the writer to stop."""
        conn = self._conn
        group: list[Job | None] = [first]
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
                cache.series_changed = True
            while len(outcomes) < len(group) or self._more(group):
                job = group[len(outcomes)]
                if job is None:  # close() was called: finish this group, then stop
                    group.pop()
                    stop = True
                    break
                outcomes.append(self._one(conn, job, grown))
            if grown:
                grow(conn, grown, cache.gen)
            conn.execute("COMMIT")
            if cache.series_changed:
                cache.series_changed = False
                self.series_generation += 1
        except Exception as exc:
            cache.clear()
            cache.series_changed = False
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            for job in group:
                if job is None:
                    stop = True
                    continue
                failure = disk_full(exc) or StorageError(f"the transaction was rolled back: {exc}")
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
        self, conn: sqlite3.Connection, job: Job, grown: dict[int, list[Any]]
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
                combine(grown, planned)
                return future, (), None
        if grown:
            grow(conn, grown, self.cache.gen)
        conn.execute("SAVEPOINT request")
        try:
            result = fn(conn)
        except Exception as exc:
            self.cache.clear()
            conn.execute("ROLLBACK TO request")
            conn.execute("RELEASE request")
            full = disk_full(exc)
            if full is not None:
                full.__cause__ = exc
            return future, None, full or exc
        conn.execute("RELEASE request")
        return future, result, None

    def _more(self, group: list[Job | None]) -> bool:
        """Take the next queued call (or the stop mark, None) into ``group``; False when
        nothing is queued or the group is full."""
        if len(group) >= self.max_group:
            return False
        try:
            group.append(self._queue.get_nowait())
        except queue.Empty:
            return False
        return True


def disk_full(exc: BaseException) -> StorageFull | None:
    """StorageFull for SQLite's "database or disk is full" (SQLITE_FULL), else None."""
    if isinstance(exc, sqlite3.Error) and exc.sqlite_errorcode == sqlite3.SQLITE_FULL:
        return StorageFull("the disk of the data folder is full: nothing was written")
    return None


def combine(grown: dict[int, list[Any]], growths: list[Growth]) -> None:
    """Add growths to those pending, one per block (later ones extend earlier ones)."""
    for last, n, ts, vals, rowid in growths:
        pending = grown.get(rowid)
        if pending is None:
            grown[rowid] = [last, n, ts, vals]
        else:
            pending[0], pending[1] = last, n
            pending[2] += ts
            pending[3] += vals


def grow(conn: sqlite3.Connection, grown: dict[int, list[Any]], gen: int) -> None:
    """Run the pending growths (and forget them)."""
    conn.executemany(GROW, [(*pending, gen, rowid) for rowid, pending in grown.items()])
    grown.clear()


def new_generation() -> int:
    """A block generation: random, so that writers in several processes never agree on one
    by chance (one in 2**62), and never 0 (blocks written before version 3 have 0)."""
    return secrets.randbits(62) + 1
