"""Reading a request body: bounded in size, decompressed when it is gzipped.

The body is read chunk by chunk and refused with ``413`` as soon as it passes the limit (a
declared ``Content-Length`` over it is refused before reading anything).  A body sent with
``Content-Encoding: gzip`` is decompressed as it arrives, and the limit applies to what it
decompresses to, so a small gzip bomb is refused after at most ``limit`` bytes of output.  Any
other content coding is refused with ``415``.  Every byte kept is accounted to the request's
admission ticket (``limits.Ticket``).  A request whose client goes away before the end of its
body is never run.
"""

from __future__ import annotations

import zlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from tempodb.server.http import HTTPError, bad_request
from tempodb.server.limits import Ticket

Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]

#: Content codings accepted on request bodies.
IDENTITY = ("", "identity")
GZIP = ("gzip", "x-gzip")


def too_large(limit: int) -> HTTPError:
    return HTTPError(413, f"Request body larger than {limit} bytes", "too-large")


class _Gunzip:
    """A gzip stream (one or more members) decompressed with bounded output."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self._inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)

    def feed(self, data: bytes) -> bytes:
        """What ``data`` decompresses to; 413 past the limit, 400 when it is not gzip."""
        out: list[bytes] = []
        try:
            while data:
                room = self.limit - self.size
                chunk = self._inflate.decompress(data, room + 1)
                self.size += len(chunk)
                if self.size > self.limit:
                    raise too_large(self.limit)
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

    def finish(self) -> None:
        if not self._inflate.eof:
            raise bad_request("Malformed gzip request body: it ends before the gzip stream does")


async def read_body(
    receive: Receive, headers: MutableMapping[str, str], limit: int, ticket: Ticket
) -> bytes:
    """The whole (decompressed) body; 413, 415, 400 or 503 as explained above."""
    coding = headers.get("content-encoding", "").strip().lower()
    if coding not in IDENTITY and coding not in GZIP:
        raise HTTPError(
            415,
            f"Unsupported Content-Encoding: {coding} (send the body plain or gzip)",
            "unsupported-encoding",
        )
    declared = headers.get("content-length", "").strip()
    if declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    gunzip = _Gunzip(limit) if coding in GZIP else None
    chunks: list[bytes] = []
    size = sent = 0  # bytes kept, bytes sent (they differ when gzipped)
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":  # never run half a request
            raise HTTPError(400, "The client went away before the body ended", "disconnected")
        chunk = message.get("body", b"")
        sent += len(chunk)
        if gunzip is not None:
            chunk = gunzip.feed(chunk)
        size += len(chunk)
        if size > limit or sent > limit:
            raise too_large(limit)
        ticket.hold(len(chunk))
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    if gunzip is not None and sent:
        gunzip.finish()
    return b"".join(chunks)
