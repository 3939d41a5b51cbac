"""Batch writers: buffer points for many series, write them in the background.

::

    with client.batch_writer(batch_size=5000, flush_interval=1.0) as writer:
        for ts, key, value in readings:
            writer.add(key, ts, value)          # blocks while the buffer is full

    async with aclient.batch_writer() as writer:
        await writer.add("sensor-1", ts, 1.5)   # awaits while the buffer is full

How it works: :class:`WriteBuffer` is the bookkeeping without I/O or locks, shared by the
thread-driven :class:`BatchWriter` and the task-driven :class:`AsyncBatchWriter`.  One flusher
(a thread or a task) sends one batch at a time, so the points of a series reach the server in
the order they were added.  A batch goes out when ``batch_size`` points wait or when the oldest
waiting point has waited ``flush_interval`` seconds.  In a batch, a series with many points is
written with its own request (the server's fastest path); the others share one
``/multi/`` request.  ``add`` waits while ``max_buffer`` points are buffered or in flight.

What happens to each point: written; *rejected* by the server (a 207 multistatus entry or a
400 for its request: reported, never retried); or *failed*: the client's retries (429, 503,
connection failures, with exponential backoff and jitter) ran out, or the server refused the
credentials.  A failure stops the writer: the failed batch and everything buffered are reported,
and every later ``add`` raises.  Each point that was not written is reported exactly once, in a
:class:`~tempodb.BatchWriteError` raised by ``add``, ``flush`` or the exit of the ``with`` block.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import numbers
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from tempodb import protocol
from tempodb.errors import (
    BatchWriteError,
    InvalidRequestError,
    TempoDBConnectionError,
)
from tempodb.protocol import Request, Timestamp
from tempodb.retry import RetryPolicy
from tempodb.timeutil import parse_timestamp_ms, to_wire

__all__ = ["DEFAULT_POLICY", "AsyncBatchWriter", "BatchWriter", "WriteBuffer"]

#: A background writer is patient: about half a minute of retries before it gives up.
DEFAULT_POLICY = RetryPolicy(retries=8, backoff=0.25, max_backoff=8.0)
#: A series with fewer points than this in a batch shares the batch's /multi/ request.
SMALL_SERIES = 500
MAX_EXACT_INT = 2**53


@dataclass(slots=True)
class _Entry:
    seq: int
    field: str  # "key" or "id"
    name: str
    ts: Timestamp | str
    wire: str
    value: int | float

    def point(self) -> dict[str, Any]:
        return {"t": self.ts, self.field: self.name, "v": self.value}


class WriteBuffer:
    """The state of a batch writer, without I/O or locking (the drivers hold the lock)."""

    def __init__(
        self, *, increment: bool, batch_size: int, flush_interval: float, max_buffer: int
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        if max_buffer < batch_size:
            raise ValueError(
                f"max_buffer ({max_buffer}) must be at least batch_size ({batch_size})"
            )
        if not flush_interval > 0:
            raise ValueError(f"flush_interval must be positive, not {flush_interval}")
        self.increment = increment
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_buffer = max_buffer
        self.pending: deque[_Entry] = deque()
        self.in_flight = 0
        self.oldest: float | None = None  # when the oldest pending point was added
        self.flush_wanted = False
        self.closing = False
        self.error: Exception | None = None
        self._failed: list[_Entry] = []
        self._rejected: list[tuple[_Entry, list[str]]] = []
        self._uncertain: list[_Entry] = []
        self._seq = 0

    # -- adding --------------------------------------------------------------------------

    def entry(self, field: str, name: str, ts: Timestamp | str, value: Any) -> _Entry:
        """A validated point; raises ValueError or TypeError for one the API cannot take."""
        if not isinstance(name, str) or not name:
            raise TypeError(f"a series {field} must be a non-empty string, not {name!r}")
        if field == "key":
            protocol.check_key(name)
        value = protocol.wire_value(value)
        if isinstance(value, bool):
            value = int(value)
        elif isinstance(value, numbers.Integral):
            value = int(value)
            if abs(value) > MAX_EXACT_INT:
                raise ValueError(f"integer values are limited to 2^53 in magnitude: {value}")
        elif isinstance(value, numbers.Real):
            value = float(value)
            if not math.isfinite(value):
                raise ValueError(f"values must be finite numbers, not {value}")
        else:
            raise TypeError(f"a value must be a number, not {value!r}")
        if isinstance(ts, str):  # checked here, by the server's own grammar: a bad string
            try:  # refuses its point alone, not the chunk it would have been sent in
                parse_timestamp_ms(ts)
            except ValueError:
                raise ValueError(f"invalid timestamp: {ts!r}") from None
        self._seq += 1
        return _Entry(self._seq, field, name, ts, to_wire(ts), value)

    @property
    def full(self) -> bool:
        return len(self.pending) + self.in_flight >= self.max_buffer

    def push(self, entry: _Entry, now: float) -> bool:
        """Buffer a point; True when the flusher should look again (its first point starts
        the interval's clock, or a batch is due)."""
        first = not self.pending
        if first:
            self.oldest = now
        self.pending.append(entry)
        return first or self.due(now)

    # -- flushing ------------------------------------------------------------------------

    def due(self, now: float) -> bool:
        """Whether a batch should go out now."""
        if not self.pending or self.error is not None:
            return False
        if len(self.pending) >= self.batch_size or self.flush_wanted or self.closing:
            return True
        return self.oldest is not None and now - self.oldest >= self.flush_interval

    def wait_time(self, now: float) -> float | None:
        """Seconds until the oldest pending point is due (None: nothing pending)."""
        if not self.pending or self.oldest is None:
            return None
        return max(0.0, self.oldest + self.flush_interval - now)

    @property
    def idle(self) -> bool:
        """Nothing pending and nothing in flight (or the writer has stopped)."""
        return self.error is not None or (not self.pending and not self.in_flight)

    def take(self, now: float) -> list[_Entry]:
        count = min(self.batch_size, len(self.pending))
        batch = [self.pending.popleft() for _ in range(count)]
        self.in_flight = len(batch)
        self.oldest = now if self.pending else None
        return batch

    def plan(self, batch: list[_Entry]) -> list[tuple[Request[Any], list[_Entry]]]:
        """The requests for a batch: big series on their own, the rest in one multi."""
        groups: dict[tuple[str, str], list[_Entry]] = {}
        for entry in batch:
            groups.setdefault((entry.field, entry.name), []).append(entry)
        action = "increment" if self.increment else "data"
        requests: list[tuple[Request[Any], list[_Entry]]] = []
        small: list[_Entry] = []
        for (field, name), entries in groups.items():
            if len(entries) < SMALL_SERIES:
                small.extend(entries)
                continue
            body = protocol.dumps([{"t": e.wire, "v": e.value} for e in entries])
            requests.append((protocol.post_points_body(field, name, action, body), entries))
        if small:
            small.sort(key=lambda e: e.seq)
            body = protocol.dumps([{"t": e.wire, e.field: e.name, "v": e.value} for e in small])
            path = "/multi/increment/" if self.increment else "/multi/"
            requests.append((protocol.multi_body(path, body), small))
        return requests

    def settle(self, entries: list[_Entry], result: Any) -> None:
        """A request succeeded; a 207 answer lists the rejected points."""
        if isinstance(result, dict) and "error" in result:
            statuses = result["error"].get("multistatus") or []
            for entry, status in zip(entries, statuses, strict=False):
                if str(status.get("status")) != "200":
                    self._rejected.append((entry, list(status.get("messages") or [])))

    def fail(self, entries: list[_Entry], error: Exception, later: list[_Entry]) -> bool:
        """A request raised ``error``; ``later`` are the batch's points not yet sent.

        Returns True when the writer goes on (the server rejected the request as invalid),
        False when it stops.
        """
        if isinstance(error, InvalidRequestError):
            self._rejected.extend((entry, [error.message]) for entry in entries)
            return True
        self.error = error
        if self.increment and isinstance(error, TempoDBConnectionError) and error.sent:
            self._uncertain.extend(entries)
        else:
            self._failed.extend(entries)
        self._failed.extend(later)
        return False

    def batch_done(self) -> None:
        self.in_flight = 0

    # -- reporting -----------------------------------------------------------------------

    def report(self, extra: _Entry | None = None) -> BatchWriteError | None:
        """The points not written and not yet reported, as one exception (None if none);
        after a failure, the pending points and ``extra`` (refused by ``add``) too."""
        failed = self._failed
        if self.error is not None:
            failed += self.pending
            self.pending.clear()
            if extra is not None:
                failed.append(extra)
        if not failed and not self._rejected and not self._uncertain:
            return None
        rejected = sorted(self._rejected, key=lambda r: r[0].seq)
        points = sorted(failed + [entry for entry, _ in rejected], key=lambda e: e.seq)
        parts = [f"{len(points)} points not written"]
        if rejected:
            parts.append(f"{len(rejected)} rejected by the server ({rejected[0][1]})")
        if self._uncertain:
            parts.append(f"{len(self._uncertain)} increments may or may not have been applied")
        if self.error is not None:
            parts.append(f"stopped by: {self.error}")
        error = BatchWriteError(
            "; ".join(parts),
            points=[e.point() for e in points],
            rejected=[(e.point(), messages) for e, messages in rejected],
            uncertain=[e.point() for e in self._uncertain],
            error=self.error,
        )
        self._failed, self._rejected, self._uncertain = [], [], []
        return error


def _check_policy(retries: int | RetryPolicy | None) -> RetryPolicy:
    return DEFAULT_POLICY if retries is None else RetryPolicy.of(retries)


SendT = TypeVar("SendT")


class _Writer(Generic[SendT]):
    """The set-up both batch writers share: how a request is sent (``call``, with the retry
    policy), the retry policy and the buffer; each adds what it flushes with."""

    def __init__(
        self,
        call: SendT,
        *,
        increment: bool = False,
        batch_size: int = 5_000,
        flush_interval: float = 1.0,
        max_buffer: int = 100_000,
        retries: int | RetryPolicy | None = None,
    ) -> None:
        self._call = call
        self._policy = _check_policy(retries)
        self._buffer = WriteBuffer(
            increment=increment,
            batch_size=batch_size,
            flush_interval=flush_interval,
            max_buffer=max_buffer,
        )
        self._closed = False
        self._set_up()

    def _set_up(self) -> None:
        """The writer's own state (its flusher is started on first use)."""


class BatchWriter(_Writer[Callable[[Request[Any], RetryPolicy], Any]]):
    """Buffers points and writes them from a background thread (see the module docstring).

    Made by :meth:`tempodb.Client.batch_writer`; use it as a context manager, or call
    :meth:`close` when done.
    """

    def _set_up(self) -> None:
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> BatchWriter:
        self._start()
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.close()

    def add(self, key: str, ts: Timestamp | str, value: int | float) -> None:
        """Buffer one point of the series with this key; blocks while the buffer is full.

        Raises ValueError or TypeError for a point the API cannot take, and
        :class:`~tempodb.BatchWriteError` once the writer has stopped on a failure.
        """
        self._add("key", key, ts, value)

    def add_id(self, series_id: str, ts: Timestamp | str, value: int | float) -> None:
        """Like :meth:`add`, for the series with this id."""
        self._add("id", series_id, ts, value)

    def _add(self, field: str, name: str, ts: Timestamp | str, value: int | float) -> None:
        self._start()
        with self._cond:
            if self._closed:
                raise RuntimeError("the batch writer is closed")
            entry = self._buffer.entry(field, name, ts, value)
            while self._buffer.full and self._buffer.error is None:
                self._cond.wait()
            if self._buffer.error is not None:
                error = self._buffer.report(entry)
                assert error is not None
                raise error
            if self._buffer.push(entry, time.monotonic()):
                self._cond.notify_all()

    def flush(self) -> None:
        """Wait until every point added so far is written; raises
        :class:`~tempodb.BatchWriteError` for those that could not be (each point is reported
        once)."""
        self._start()
        with self._cond:
            self._buffer.flush_wanted = True
            self._cond.notify_all()
            while not self._buffer.idle:
                self._cond.wait()
            self._buffer.flush_wanted = False
            error = self._buffer.report()
        if error is not None:
            raise error

    def close(self) -> None:
        """Flush, stop the background thread; raises as :meth:`flush`."""
        if self._closed:
            return
        with self._cond:
            self._buffer.closing = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join()
        with self._cond:
            self._closed = True
            error = self._buffer.report()
        if error is not None:
            raise error

    def _start(self) -> None:
        with self._cond:
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(
                    target=self._run, name="tempodb-batch-writer", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        buffer = self._buffer
        while True:
            with self._cond:
                while not buffer.due(time.monotonic()):
                    if buffer.error is not None or (buffer.closing and not buffer.pending):
                        self._cond.notify_all()
                        return
                    self._cond.wait(buffer.wait_time(time.monotonic()))
                batch = buffer.take(time.monotonic())
                self._cond.notify_all()
            requests = buffer.plan(batch)
            for number, (request, entries) in enumerate(requests):
                try:
                    result = self._call(request, self._policy)
                except Exception as exc:
                    later = [e for _, rest in requests[number + 1 :] for e in rest]
                    with self._cond:
                        if not buffer.fail(entries, exc, later):
                            break
                else:
                    with self._cond:
                        buffer.settle(entries, result)
            with self._cond:
                buffer.batch_done()
                self._cond.notify_all()


class AsyncBatchWriter(_Writer[Callable[[Request[Any], RetryPolicy], Awaitable[Any]]]):
    """The asyncio twin of :class:`BatchWriter`: ``await writer.add(...)``, flushed by a
    background task.  Made by :meth:`tempodb.AsyncClient.batch_writer`."""

    def _set_up(self) -> None:
        self._cond: asyncio.Condition | None = None
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> AsyncBatchWriter:
        self._start()
        return self

    async def __aexit__(self, exc_type: object, exc: object, tb: object) -> None:
        await self.close()

    async def add(self, key: str, ts: Timestamp | str, value: int | float) -> None:
        """Buffer one point of the series with this key; waits while the buffer is full.
        Raises as :meth:`BatchWriter.add`."""
        await self._add("key", key, ts, value)

    async def add_id(self, series_id: str, ts: Timestamp | str, value: int | float) -> None:
        """Like :meth:`add`, for the series with this id."""
        await self._add("id", series_id, ts, value)

    async def _add(self, field: str, name: str, ts: Timestamp | str, value: int | float) -> None:
        cond = self._start()
        async with cond:
            if self._closed:
                raise RuntimeError("the batch writer is closed")
            entry = self._buffer.entry(field, name, ts, value)
            while self._buffer.full and self._buffer.error is None:
                await cond.wait()
            if self._buffer.error is not None:
                error = self._buffer.report(entry)
                assert error is not None
                raise error
            if self._buffer.push(entry, time.monotonic()):
                cond.notify_all()

    async def flush(self) -> None:
        """Wait until every point added so far is written; raises as
        :meth:`BatchWriter.flush`."""
        cond = self._start()
        async with cond:
            self._buffer.flush_wanted = True
            cond.notify_all()
            while not self._buffer.idle:
                await cond.wait()
            self._buffer.flush_wanted = False
            error = self._buffer.report()
        if error is not None:
            raise error

    async def close(self) -> None:
        """Flush and stop the background task; raises as :meth:`flush`."""
        if self._closed:
            return
        cond = self._start()
        async with cond:
            self._buffer.closing = True
            cond.notify_all()
        if self._task is not None:
            await self._task
        async with cond:
            self._closed = True
            error = self._buffer.report()
        if error is not None:
            raise error

    def _start(self) -> asyncio.Condition:
        if self._cond is None:
            self._cond = asyncio.Condition()
        if self._task is None and not self._closed:
            self._task = asyncio.get_running_loop().create_task(self._run(self._cond))
        return self._cond

    async def _run(self, cond: asyncio.Condition) -> None:
        buffer = self._buffer
        while True:
            async with cond:
                while not buffer.due(time.monotonic()):
                    if buffer.error is not None or (buffer.closing and not buffer.pending):
                        cond.notify_all()
                        return
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(cond.wait(), buffer.wait_time(time.monotonic()))
                batch = buffer.take(time.monotonic())
                cond.notify_all()
            requests = buffer.plan(batch)
            for number, (request, entries) in enumerate(requests):
                try:
                    result = await self._call(request, self._policy)
                except Exception as exc:
                    later = [e for _, rest in requests[number + 1 :] for e in rest]
                    async with cond:
                        if not buffer.fail(entries, exc, later):
                            break
                else:
                    async with cond:
                        buffer.settle(entries, result)
            async with cond:
                buffer.batch_done()
                cond.notify_all()
