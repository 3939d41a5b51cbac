"""One HTTP/1.1 connection: uvicorn's httptools protocol with the limits an exposed server needs.

uvicorn reads requests with llhttp (``httptools``) and hands them to the application; on its
own it puts no bound on the size of a request's headers, no deadline on a client that opens a
connection and sends nothing (or sends its headers a byte at a time), and no bound on the
number of open connections.  ``GuardedProtocol`` adds, from ``limits.Limits``:

* a deadline for the headers: ``header_timeout`` seconds from the opening of the connection, or
  from the first byte of each later request, to the end of the headers.  A client that sent
  part of a request gets ``408``; one that sent nothing is closed without an answer.
* a bound on the header fields (``max_header_bytes``, ``431``) and on the request target
  (``MAX_TARGET_BYTES``, ``414``), checked as the bytes arrive, so a never-ending header costs
  at most the bound plus one read.
* an idle timeout between requests (``idle_timeout``, uvicorn's keep-alive timer, re-armed
  whenever a connection goes quiet).
* a bound on open connections (``max_connections``).  A connection over it closes the one that
  has been idle the longest; when none is idle, up to ``HEALTH_RESERVE`` more connections are
  kept for ``/healthz`` (anything else on them gets ``503``), and beyond those a new connection
  is closed at once.  The server's file descriptors are never exhausted, and a health check
  always gets through.
* error answers in the API's shape (plain text and ``X-TempoDB-Error``), instead of uvicorn's
  bare ``400 Invalid HTTP request received.``
* a lingering close: after an answer given before the request ended (a 4xx before the body
  was read, or a malformed request), the rest of what the client sends is read and dropped for
  up to ``LINGER`` seconds before the connection is closed, so that the client reads the answer
  instead of a connection reset.
* one write per small answer: uvicorn writes a response's head and its body separately (two
  system calls, two TCP segments, two wake-ups of the client); ``HeldHead`` holds the head
  back and sends it with the first piece of the body.

The protocol is chosen by ``tempodb serve`` (``protocol_class``); it relies on the parts of
uvicorn's ``HttpToolsProtocol`` that have been stable since uvicorn 0.29 (``cycle``,
``on_response_complete``, ``timeout_keep_alive_task``, ``send_400_response``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from tempodb.contract import ERROR_CODE_HEADER
from tempodb.server.http import HTTPError
from tempodb.server.limits import HEALTH_RESERVE, MAX_TARGET_BYTES, Limits, overloaded

log = logging.getLogger("tempodb.server")

#: Seconds the rest of a request is read and dropped after an early answer, before closing.
LINGER = 2.0


def protocol_class(limits: Limits) -> type[GuardedProtocol]:
    """The protocol class for uvicorn's ``Config(http=...)``, bound to ``limits``."""
    return type("BoundGuardedProtocol", (GuardedProtocol,), {"limits": limits})


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with deadlines, size bounds and a connection cap."""

    limits: Limits = Limits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.timeout_keep_alive = self.limits.idle_timeout  # type: ignore[assignment]  # a float works
        self._timer: asyncio.TimerHandle | None = None
        self._in_head = False
        self._head_bytes = 0
        self._target_bytes = 0
        self._refusal: HTTPError | None = None
        self._lingering = False
        self._discarding = False
        self._idle_since = time.monotonic()

    # -- connections -------------------------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._arm(self.limits.header_timeout, self._head_timed_out)
        if len(self.connections) > self.limits.max_connections:
            self._make_room()

    def _make_room(self) -> None:
        """Over ``max_connections``: close the connection idle the longest, else keep this one
        for ``/healthz`` alone (within the reserve), else close it."""
        open_ = [p for p in self.connections if not p.transport.is_closing()]
        if len(open_) <= self.limits.max_connections:
            return
        idle = [
            p for p in open_ if p is not self and isinstance(p, GuardedProtocol) and p._is_idle()
        ]
        if idle:
            oldest = min(idle, key=lambda p: p._idle_since)
            oldest.transport.close()
            return
        if len(open_) <= self.limits.max_connections + HEALTH_RESERVE:
            self.app = _health_only(self.app)
            return
        log.warning("too many connections (%d): one refused", len(open_))
        self.transport.close()

    def _is_idle(self) -> bool:
        """No request in progress: waiting for the first byte of one."""
        return (
            not self._in_head
            and not self._lingering
            and not self._discarding
            and not self.pipeline
            and (self.cycle is None or (self.cycle.response_complete and not self.cycle.more_body))
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    # -- reading -----------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._discarding:
            return
        super().data_received(data)
        if self._discarding or self.transport.is_closing():
            return
        if self._in_head:
            self._head_bytes += len(data)
            if self._head_bytes - self._target_bytes > self.limits.max_header_bytes:
                self._refuse(self._too_many_header_bytes())
                return
        if self._is_idle() and self._timer is None and self.timeout_keep_alive_task is None:
            self._idle_since = time.monotonic()
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self.timeout_keep_alive_handler
            )

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_bytes = self._target_bytes = 0
        if self._timer is None:
            self._arm(self.limits.header_timeout, self._head_timed_out)

    def on_url(self, url: bytes) -> None:
        self._target_bytes += len(url)
        if self._target_bytes > MAX_TARGET_BYTES:
            self._refusal = HTTPError(
                414,
                f"Request target longer than {MAX_TARGET_BYTES} bytes: send fewer or shorter "
                "filters (several requests), or address series by id",
                "too-large",
            )
            raise self._refusal
        super().on_url(url)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._disarm()
        fields = sum(len(name) + len(value) + 4 for name, value in self.headers)
        if fields > self.limits.max_header_bytes:
            self._refusal = self._too_many_header_bytes()
            raise self._refusal
        super().on_headers_complete()
        # The new cycle's task has not run yet: it writes through the wrapper from the start.
        self.cycle.transport = HeldHead(self.transport)  # type: ignore[assignment]

    def _too_many_header_bytes(self) -> HTTPError:
        return HTTPError(
            431,
            f"Request header fields larger than {self.limits.max_header_bytes} bytes",
            "too-large",
        )

    def on_message_complete(self) -> None:
        super().on_message_complete()
        if self._lingering:  # the client sent the rest: the connection goes on
            self._lingering = False
            self._disarm()

    def on_response_complete(self) -> None:
        cycle = self.cycle
        if cycle is not None and isinstance(cycle.transport, HeldHead):
            cycle.transport.flush()  # a head without a body (HEAD, 204, 304)
        super().on_response_complete()
        self._idle_since = time.monotonic()
        cycle = self.cycle
        if cycle is not None and cycle.more_body and not self.transport.is_closing():
            # Answered before the body ended (uvicorn drops what still comes): give the
            # client LINGER seconds to finish sending, then close.
            self._lingering = True
            self._arm(LINGER, self._close)

    # -- timers and refusals -----------------------------------------------------------------

    def _arm(self, delay: float, callback: Any) -> None:
        self._disarm()
        self._timer = self.loop.call_later(delay, callback)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _close(self) -> None:
        self._timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def _head_timed_out(self) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        answering = self.cycle is not None and not self.cycle.response_complete
        if self._in_head and not answering:
            self._refuse(
                HTTPError(
                    408,
                    "Request timeout: the request headers did not arrive within "
                    f"{self.limits.header_timeout:g} s",
                    "timeout",
                )
            )
        else:
            self.transport.close()

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a request llhttp cannot parse (or that a check above refused
        while parsing), in the API's error shape."""
        refusal, self._refusal = self._refusal, None
        if refusal is None:
            log.warning("malformed HTTP request refused")
            refusal = HTTPError(
                400,
                "Malformed HTTP request: the request line or the headers are not valid HTTP/1.1",
            )
        self._refuse(refusal)

    def _refuse(self, error: HTTPError) -> None:
        """Answer ``error``, then read and drop what the client still sends, and close."""
        body = error.message.encode() + b"\n"
        head = [STATUS_LINE[error.status]]
        headers = [
            *self.server_state.default_headers,
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(body)).encode()),
            (ERROR_CODE_HEADER.lower().encode(), error.code.encode()),
            *((k.lower().encode(), v.encode()) for k, v in error.headers.items()),
            (b"connection", b"close"),
        ]
        head += [name + b": " + value + b"\r\n" for name, value in headers]
        self.transport.write(b"".join(head) + b"\r\n" + body)
        self._in_head = False
        self._discarding = True
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self._arm(LINGER, self._close)


class HeldHead:
    """The connection's transport as one response cycle sees it: the response's head (the
    cycle's first write, but for an interim ``100 Continue``) is held back and written with
    the first piece of the body, or alone when the response ends without one, or before the
    connection closes."""

    __slots__ = ("_held", "_started", "transport")

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self._held: bytes | None = None
        self._started = False

    def write(self, data: bytes) -> None:
        if not self._started:
            if data.startswith(b"HTTP/1.1 100 "):
                self.transport.write(data)
                return
            self._started = True
            self._held = data
            return
        held, self._held = self._held, None
        self.transport.write(data if held is None else held + data)

    def flush(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            self.transport.write(held)

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


def _health_only(app: Any) -> Any:
    """``app`` for ``/healthz`` only: anything else is answered 503 and the connection closed."""

    async def guarded(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] == "/healthz":
            await app(scope, receive, send)
            return
        error = overloaded("too many open connections")
        body = error.message.encode() + b"\n"
        headers = [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(body)).encode()),
            (ERROR_CODE_HEADER.lower().encode(), error.code.encode()),
            *((k.lower().encode(), v.encode()) for k, v in error.headers.items()),
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return guarded
