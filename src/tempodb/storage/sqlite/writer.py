"""The writer: one thread that owns the only connection that writes, and commits queued calls
in groups; and what it remembers between transactions.

Transactions
    One writer thread owns the only connection that writes.  Mutating calls are queued; the
    writer takes the first, begins a transaction, runs it and every call queued meanwhile
    (at most 512), each in its own SAVEPOINT, commits once, then answers each caller with its
    own result or exception (a failing call is rolled back to its savepoint and does not
    affect the others).  A call returns only after the commit, so whatever is acknowledged is
    durable.  Large calls (a write of many points) wait in a lane of their own (``Lanes``):
    one only ever begins a group (the small calls queued while it runs join its commit), and
    large and small calls take turns to begin one, so a small call waits for at most one
    large call, not for every large call queued before it (one tenant's big writes do not
    hold the others').  Readers use one connection per thread and read inside a snapshot
    transaction, beside the writer (WAL).  At most ``max_queue`` calls wait for the writer at
    once; one more raises ``Overloaded`` without being queued.  ``Writer.submit`` queues a
    call and returns its future at once (the server awaits a write's future on its event
    loop).

The writer's cache (``WriterCache``)
    Small writes are where the writer's time goes, so it remembers, between transactions, the
    series that keys and ids name, the last block of each series (rowid, first, last, n,
    fmt) and the series known to have no block.  A write of at most 64 points, not an
    increment, whose series are all remembered and whose points all go after their series'
    blocks is *planned* without a statement: its points become head rows (``head.UPSERT``),
    and the rows of all planned calls of a transaction go in with one ``executemany``
    (before the next call that is not planned, so that it sees them).  Such a call cannot
    fail on its own, so it needs no savepoint; if the statement or the commit fails, the
    whole transaction fails, as it would anyway.  The cache only ever holds what was true at
    the writer's last commit: it is emptied when another connection (another process on the
    same file) has committed since (``PRAGMA data_version``, read once the transaction holds
    the write lock), when a call is rolled back, when a transaction fails and when series
    are deleted; every change of a series' blocks other than an append through the cache
    forgets that series' last block.  The maps are bounded LRUs (``WriterCache.limit``
    entries each), so at a million series the cache holds the busiest and the rest are
    looked up, in one statement per write (``series.resolve``, ``points.tails``).

Maintenance (the fold)
    When its maintenance says it is pressing, the writer runs one step of it
    (``Maintenance.run``: the fold of the write head, ``fold``) at the end of a group's
    transaction, in a savepoint (so it costs no commit of its own, and a failure of it rolls
    back only the step); when idle once it is due, in a transaction of its own.  A failed
    step is reported to it (``Maintenance.failed``).
"""

from __future__ import annotations

import contextlib
import logging
import math
import queue
import secrets
import sqlite3
import threading
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Final, Generic, Protocol, TypeVar

from tempodb.storage.base import Overloaded, StorageError, StorageFull

_T = TypeVar("_T")
_K = TypeVar("_K")
_V = TypeVar("_V")

#: The parameters of one planned statement (``Writer.planned_sql``): a head row.
Planned = tuple[Any, ...]
#: A queued call: what to run in the transaction, an optional plan (see ``Writer.submit``)
#: and the future of its outcome.
Job = tuple[
    Callable[[sqlite3.Connection], Any], "Callable[[], list[Planned] | None] | None", "Future[Any]"
]

_log = logging.getLogger(__name__)


class Lanes:
    """The calls waiting for the writer: small ones and large ones in two queues, taken in
    turns (``get``), small ones alone to join a group (``get_small``)."""

    def __init__(self) -> None:
        self._ready = threading.Condition(threading.Lock())
        self._small: deque[Job] = deque()
        self._large: deque[Job] = deque()
        self._large_turn = False
        self._stopping = False

    def put(self, job: Job, *, large: bool = False) -> None:
        with self._ready:
            (self._large if large else self._small).append(job)
            self._ready.notify()

    def stop(self) -> None:
        """Let ``get`` answer None once every queued call is taken."""
        with self._ready:
            self._stopping = True
            self._ready.notify()

    def get(self, timeout: float | None = None) -> Job | None:
        """The next call to begin a group: a large one when one waits and the last group
        began with a small one (or none waits), else a small one; None once stopped and
        empty.  Raises queue.Empty after ``timeout`` seconds without one."""
        with self._ready:
            if not self._ready.wait_for(
                lambda: self._small or self._large or self._stopping, timeout
            ):
                raise queue.Empty
            if self._large and (self._large_turn or not self._small):
                self._large_turn = False
                return self._large.popleft()
            if self._small:
                self._large_turn = True
                return self._small.popleft()
            return None

    def get_small(self) -> Job | None:
        """A queued small call to join the group, if any."""
        with self._ready:
            return self._small.popleft() if self._small else None

    def __len__(self) -> int:
        return len(self._small) + len(self._large)


class Maintenance(Protocol):
    """Work the writer thread does in transactions of its own (the fold of the write head)."""

    def wait(self) -> float:
        """Seconds until it is due (0: now; ``math.inf``: not before more writes)."""

    def pressing(self) -> bool:
        """Due now, before the next group of calls."""

    def run(self, conn: sqlite3.Connection) -> None:
        """Do one bounded step of it inside the writer's transaction."""

    def failed(self) -> None:
        """The step's transaction was rolled back."""


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

    __slots__ = ("bare", "data_version", "gen", "series", "series_changed", "tails")

    #: Entries kept at most in each map.
    limit: Final = 131_072

    def __init__(self) -> None:
        self.series: LruMap[tuple[int, str, str], tuple[int, str]] = LruMap(self.limit)
        self.tails: LruMap[int, Tail] = LruMap(self.limit)
        #: Series known to have no block (all their points, if any, are in the head).
        self.bare: LruMap[int, bool] = LruMap(self.limit)
        self.data_version = -1
        #: The generation that the blocks written by the current transaction get.
        self.gen = 0
        #: Set by every call that creates, changes or deletes series (see
        #: ``Writer.series_generation``).
        self.series_changed = False

    def clear(self) -> None:
        self.series.clear()
        self.tails.clear()
        self.bare.clear()


class Writer:
    """The thread that owns the write connection and commits queued requests in groups."""

    max_group: Final = 512

    def __init__(
        self,
        conn: sqlite3.Connection,
        name: str,
        max_queue: int,
        *,
        cache: WriterCache | None = None,
        planned_sql: str = "",
        maintenance: Maintenance | None = None,
    ) -> None:
        self._conn = conn
        self.cache = WriterCache() if cache is None else cache
        #: The statement that planned calls' parameters are run with (``submit``).
        self.planned_sql = planned_sql
        self._maintenance = maintenance
        self._queue = Lanes()
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
        plan: Callable[[], list[Planned] | None] | None = None,
        *,
        large: bool = False,
    ) -> Future[Any]:
        """Queue ``fn`` for the writer's next transaction, without waiting: the future gets
        its result (or exception) once that transaction is committed (or rolled back).

        ``plan``, when given, runs first in the writer thread: if it returns the parameters
        of ``planned_sql`` that make up the whole call (head rows of cached appends, which
        cannot fail on their own), they join those of the other planned calls of the
        transaction, and ``fn`` is not run (the result is ``()``); if it returns None,
        ``fn`` runs as usual.

        ``large`` puts the call in the lane of large calls (see the module's docstring).

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
            self._queue.put((fn, plan, future), large=large)
        return future

    def _release(self, _: Future[Any]) -> None:
        self._slots.release()

    def close(self) -> None:
        """Finish the queued requests, stop the thread and close the connection."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.stop()
        self._thread.join()
        self._conn.close()

    def depth(self) -> int:
        """Calls queued for the writer and not yet taken by it."""
        return len(self._queue)

    def _run(self) -> None:
        maintenance = self._maintenance
        while True:
            if maintenance is None:
                job = self._queue.get()
            else:  # calls first; the maintenance when idle, or when pressing (below)
                try:
                    job = self._queue.get(timeout=0)
                except queue.Empty:
                    wait = maintenance.wait()
                    if wait <= 0:
                        self._maintain(maintenance)
                        continue
                    try:
                        job = self._queue.get(timeout=None if math.isinf(wait) else wait)
                    except queue.Empty:
                        self._maintain(maintenance)
                        continue
            if job is None:
                return
            self._commit(job)

    def _maintain_in(self, conn: sqlite3.Connection, maintenance: Maintenance) -> None:
        """One step of the maintenance inside the group's transaction, in a savepoint: it
        commits with the group (no commit of its own), and a failure of it is rolled back
        alone."""
        conn.execute("SAVEPOINT maintenance")
        try:
            maintenance.run(conn)
        except Exception:
            self.cache.clear()
            conn.execute("ROLLBACK TO maintenance")
            conn.execute("RELEASE maintenance")
            _log.exception("tempodb: folding the write head failed; trying again later")
            maintenance.failed()
            return
        conn.execute("RELEASE maintenance")

    def _maintain(self, maintenance: Maintenance) -> None:
        """One step of the maintenance, in a transaction of its own, committed without
        waiting for the disk (``synchronous=NORMAL``): the step changes how points are
        stored, never which, so losing it to a power cut loses nothing (the points are
        where they were before it), and the next write's commit syncs the log with it in
        (the log is written in order).  A write that arrives meanwhile waits for the step,
        not for an fsync too."""
        conn, cache = self._conn, self.cache
        try:
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("BEGIN IMMEDIATE")
            cache.gen = new_generation()
            version = conn.execute("PRAGMA data_version").fetchone()[0]
            if version != cache.data_version:
                cache.clear()
                cache.data_version = version
                self.series_generation += 1
            maintenance.run(conn)
            conn.execute("COMMIT")
        except Exception:
            cache.clear()
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            _log.exception("tempodb: folding the write head failed; trying again later")
            maintenance.failed()
        finally:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("PRAGMA synchronous = FULL")

    def _commit(self, first: Job) -> None:
        """One transaction for ``first`` and every small call queued until it ends (at most
        ``max_group``, so that calls arriving while it runs join it rather than wait for
        the next one): each call in its own savepoint (a failing call is rolled back
        alone), planned calls' growths in one statement (before the next call that is not
        planned, so that it sees them), one commit, then the answers."""
        conn = self._conn
        group: list[Job] = [first]
        outcomes: list[tuple[Future[Any], Any, Exception | None]] = []
        cache = self.cache
        planned: list[Planned] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            cache.gen = new_generation()
            version = conn.execute("PRAGMA data_version").fetchone()[0]
            if version != cache.data_version:  # another connection committed meanwhile
                cache.clear()
                cache.data_version = version
                cache.series_changed = True
            while len(outcomes) < len(group) or self._more(group):
                outcomes.append(self._one(conn, group[len(outcomes)], planned))
            if planned:
                self._flush(conn, planned)
            maintenance = self._maintenance
            if maintenance is not None and maintenance.pressing():
                self._maintain_in(conn, maintenance)
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
                failure = disk_full(exc) or StorageError(f"the transaction was rolled back: {exc}")
                failure.__cause__ = exc
                job[2].set_exception(failure)
            return
        for future, result, error in outcomes:
            if error is None:
                future.set_result(result)
            else:
                future.set_exception(error)

    def _flush(self, conn: sqlite3.Connection, planned: list[Planned]) -> None:
        """Run the pending planned statements (and forget them)."""
        conn.executemany(self.planned_sql, planned)
        planned.clear()

    def _one(
        self, conn: sqlite3.Connection, job: Job, planned: list[Planned]
    ) -> tuple[Future[Any], Any, Exception | None]:
        """Run one call inside the group's transaction: its outcome, to answer after the
        commit."""
        fn, plan, future = job
        if plan is not None:
            try:
                rows = plan()
            except Exception as exc:
                self.cache.clear()
                return future, None, exc
            if rows is not None:
                planned.extend(rows)
                return future, (), None
        if planned:
            self._flush(conn, planned)
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

    def _more(self, group: list[Job]) -> bool:
        """Take the next queued small call into ``group``; False when none is queued or the
        group is full."""
        if len(group) >= self.max_group:
            return False
        job = self._queue.get_small()
        if job is None:
            return False
        group.append(job)
        return True


def disk_full(exc: BaseException) -> StorageFull | None:
    """StorageFull for SQLite's "database or disk is full" (SQLITE_FULL), else None."""
    if isinstance(exc, sqlite3.Error) and exc.sqlite_errorcode == sqlite3.SQLITE_FULL:
        return StorageFull("the disk of the data folder is full: nothing was written")
    return None


def new_generation() -> int:
    """A block generation: random, so that writers in several processes never agree on one
    by chance (one in 2**62), and never 0 (blocks written before version 3 have 0)."""
    return secrets.randbits(62) + 1
