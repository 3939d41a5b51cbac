"""Reading a request body: bounded in size and time, decompressed off the event loop.

The body is read chunk by chunk and refused with ``413`` as soon as it passes the limit (a
declared ``Content-Length`` over it is refused before reading anything).  A body sent with
``Content-Encoding: gzip`` is decompressed as it arrives, on a worker thread (``run``) so that
a tenant's gzip bomb never stalls the event loop, and the limit applies to what it decompresses
to; it may also expand at most ``max_ratio`` times the bytes sent so far (past a 1 MiB floor),
so a small bomb is refused after little work.  Any other content coding is refused with
``415``.  The whole body must arrive within ``timeout`` seconds, else ``408`` (and the
connection is closed, ``connection``).  Every byte kept is accounted to the request's
admission ticket (``limits.Ticket``).  A request whose client goes away before the end of its
body is never run.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from tempodb.server.http import HTTPError, bad_request
from tempodb.server.limits import GZIP_RATIO_FLOOR, Ticket

Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
#: Runs ``fn(data)`` away from the event loop and awaits its result.
Runner = Callable[[Callable[[bytes], bytes], bytes], Awaitable[bytes]]

#: Content codings accepted on request bodies.
IDENTITY = ("", "identity")
GZIP = ("gzip", "x-gzip")


def too_large(limit: int) -> HTTPError:
    return HTTPError(413, f"Request body larger than {limit} bytes", "too-large")


def too_slow(timeout: float) -> HTTPError:
    """408: the body did not arrive in time (the connection lingers, then closes)."""
    return HTTPError(
        408, f"Request timeout: the body did not arrive within {timeout:g} s", "timeout"
    )


class _Gunzip:
    """A gzip stream (one or more members) decompressed with bounded output.

    ``cap`` bounds the output so far (the body limit, or the ratio bound when it is smaller);
    ``limit`` is the body limit, named in the 413 when it is the one passed."""

    def __init__(self, limit: int, max_ratio: float) -> None:
        self.limit = limit
        self.max_ratio = max_ratio
        self.cap = limit
        self.size = 0
        self._inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)

    def allow(self, sent: int) -> None:
        """Set the cap for a body of which ``sent`` compressed bytes have arrived."""
        self.cap = min(self.limit, max(GZIP_RATIO_FLOOR, int(self.max_ratio * sent)))

    def feed(self, data: bytes) -> bytes:
        """What ``data`` decompresses to; 413 past the cap, 400 when it is not gzip."""
        out: list[bytes] = []
        try:
            while data:
                room = self.cap - self.size
                chunk = self._inflate.decompress(data, room + 1)
                self.size += len(chunk)
                if self.size > self.cap:
                    raise self._refusal()
                out.append(chunk)
                if self._inflate.unconsumed_tail:
                    data = self._inflate.unconsumed_tail
                elif self._inflate.eof and self._inflate.unused_data:  # the next member
                    data = self._inflate.unused_data
                    self._inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
                else:
                    data = b""
        except zlib.error as exc:
            raise bad_request(f"Malformed gzip request body: {exc}") from None
        return b"".join(out)

    def _refusal(self) -> HTTPError:
        if self.cap >= self.limit:
            return too_large(self.limit)
        return HTTPError(
            413,
            f"gzip request body expands more than {self.max_ratio:g} times its size "
            "(a compression bomb?): send it plain or less compressed",
            "too-large",
        )

    def finish(self) -> None:
        if not self._inflate.eof:
            raise bad_request("Malformed gzip request body: it ends before the gzip stream does")


def declared_body(headers: MutableMapping[str, str]) -> bool:
    """Whether the request says it carries a body (a length over 0, or chunked)."""
    length = headers.get("content-length", "").strip()
    return "transfer-encoding" in headers or (length != "" and length != "0")


async def read_body(
    receive: Receive,
    headers: MutableMapping[str, str],
    limit: int,
    ticket: Ticket,
    *,
    timeout: float = 60.0,
    max_ratio: float = 100.0,
    run: Runner | None = None,
    keep: tuple[str, ...] = (),
) -> bytes:
    """The whole (decompressed) body; 413, 415, 408, 400 or 503 as explained above.

    ``run`` decompresses away from the event loop (without it, on the loop: tests only).
    ``keep``: content codings the route's handler decodes itself (the body is kept as sent,
    within the same limit: Prometheus' snappy)."""
    coding = headers.get("content-encoding", "").strip().lower()
    if coding not in IDENTITY and coding not in GZIP and coding not in keep:
        raise HTTPError(
            415,
            f"Unsupported Content-Encoding: {coding} (send the body plain or gzip)",
            "unsupported-encoding",
        )
    declared = headers.get("content-length", "").strip()
    if declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    gunzip = _Gunzip(limit, max_ratio) if coding in GZIP else None
    try:
        async with asyncio.timeout(timeout):
            return await _read(receive, limit, ticket, gunzip, run)
    except TimeoutError:
        raise too_slow(timeout) from None


async def _read(
    receive: Receive, limit: int, ticket: Ticket, gunzip: _Gunzip | None, run: Runner | None
) -> bytes:
    chunks: list[bytes] = []
    size = sent = 0  # bytes kept, bytes sent (they differ when gzipped)
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":  # never run half a request
            raise HTTPError(400, "The client went away before the body ended", "disconnected")
        chunk = message.get("body", b"")
        sent += len(chunk)
        if sent > limit:
            raise too_large(limit)
        if gunzip is not None and chunk:
            gunzip.allow(sent)
            chunk = await run(gunzip.feed, chunk) if run is not None else gunzip.feed(chunk)
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        ticket.hold(len(chunk))
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    if gunzip is not None and sent:
        gunzip.finish()
    return b"".join(chunks)
