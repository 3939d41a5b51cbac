"""A lean HTTP/1.1 load generator: the same client for every system the benchmark measures.

Requests are encoded before timing; a response counts when its last byte has arrived (the body
is not parsed), so the figures are what any client would see, without the cost of one client
library or another.  Connections are kept alive and have Nagle's algorithm off.  No
compression is asked for (loopback), for every system alike.
"""

from __future__ import annotations

import asyncio
import base64
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass

#: A connection idle for longer than this is replaced before it is used again.
IDLE_SECONDS = 20.0


class HTTPFailure(RuntimeError):
    """A request was answered with an unexpected status."""


@dataclass(frozen=True)
class Request:
    """One request, encoded once: method, path (with its query) and body."""

    method: str
    path: str
    body: bytes = b""
    content_type: str = "application/json"
    #: More headers, such as remote_write's ``Content-Encoding: snappy``.
    headers: tuple[tuple[str, str], ...] = ()


def basic_auth(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class Connection:
    """One keep-alive connection, used by one thread at a time."""

    def __init__(self, host: str, port: int, auth: str | None = None) -> None:
        self.host, self.port, self.auth = host, port, auth
        self._sock: socket.socket | None = None
        self._buffer = b""
        self._used = 0.0
        #: The headers (lower-case names) of the last response.
        self.headers: dict[str, str] = {}

    def encode(self, request: Request) -> bytes:
        """The bytes of a request on the wire."""
        lines = [
            f"{request.method} {request.path} HTTP/1.1",
            f"Host: {self.host}:{self.port}",
            f"Content-Length: {len(request.body)}",
        ]
        if request.body:
            lines.append(f"Content-Type: {request.content_type}")
        if self.auth:
            lines.append(f"Authorization: {self.auth}")
        lines += [f"{name}: {value}" for name, value in request.headers]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + request.body

    def _socket(self) -> socket.socket:
        # Servers close keep-alive connections left idle (uvicorn after 75 s): start afresh.
        if self._sock is not None and time.monotonic() - self._used > IDLE_SECONDS:
            self.close()
        self._used = time.monotonic()
        if self._sock is None:
            sock = socket.create_connection((self.host, self.port), timeout=600)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sock, self._buffer = sock, b""
        return self._sock

    def send(self, wire: bytes, accept: Sequence[int] = (200, 204)) -> tuple[int, bytes]:
        """Send encoded request bytes; the status and the whole body."""
        sock = self._socket()
        sock.sendall(wire)
        status, body, close = self._read_response(sock)
        if close:
            self.close()
        if status not in accept:
            raise HTTPFailure(f"HTTP {status}: {body[:300]!r}")
        return status, body

    def request(self, request: Request, accept: Sequence[int] = (200, 204)) -> tuple[int, bytes]:
        return self.send(self.encode(request), accept)

    def _fill(self, sock: socket.socket) -> None:
        chunk = sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        self._buffer += chunk

    def _read_response(self, sock: socket.socket) -> tuple[int, bytes, bool]:
        while b"\r\n\r\n" not in self._buffer:
            self._fill(sock)
        head, _, rest = self._buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        close = headers.get("connection", "").lower() == "close"
        self.headers = headers
        if "content-length" in headers:
            size = int(headers["content-length"])
            self._buffer = rest
            while len(self._buffer) < size:
                self._fill(sock)
            body, self._buffer = self._buffer[:size], self._buffer[size:]
            return status, body, close
        if headers.get("transfer-encoding", "").lower() == "chunked":
            self._buffer = rest
            return status, self._read_chunked(sock), close
        self._buffer = rest
        return status, b"", close

    def _read_chunked(self, sock: socket.socket) -> bytes:
        parts: list[bytes] = []
        while True:
            line = self._line(sock)
            size = int(line.split(b";")[0], 16)
            if size == 0:
                while self._line(sock):  # trailers, up to an empty line
                    pass
                return b"".join(parts)
            while len(self._buffer) < size + 2:
                self._fill(sock)
            parts.append(self._buffer[:size])
            self._buffer = self._buffer[size + 2 :]

    def _line(self, sock: socket.socket) -> bytes:
        while b"\r\n" not in self._buffer:
            self._fill(sock)
        line, _, self._buffer = self._buffer.partition(b"\r\n")
        return line

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


async def _client(
    host: str, port: int, wires: list[bytes], deadline: float, counts: list[int], slot: int
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        i = 0
        while time.perf_counter() < deadline:
            writer.write(wires[i % len(wires)])
            i += 1
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            size = 0
            for line in head.split(b"\r\n")[1:]:
                if line[:15].lower() == b"content-length:":
                    size = int(line[15:])
            if size:
                await reader.readexactly(size)
            if status not in (200, 204):
                raise HTTPFailure(f"HTTP {status} from a small write")
            counts[slot] += 1
    finally:
        writer.close()


def requests_per_second(
    host: str, port: int, wires: Sequence[Sequence[bytes]], seconds: float
) -> float:
    """Requests per second for ``len(wires)`` concurrent clients, each sending its own requests
    in turn (waiting for each response) for ``seconds``."""

    async def run() -> float:
        counts = [0] * len(wires)
        began = time.perf_counter()
        deadline = began + seconds
        await asyncio.gather(
            *(
                _client(host, port, list(client), deadline, counts, slot)
                for slot, client in enumerate(wires)
            )
        )
        return sum(counts) / (time.perf_counter() - began)

    return asyncio.run(run())


def send_all(host: str, port: int, wires: Sequence[Sequence[bytes]]) -> float:
    """Send every request of every client (clients concurrently, each in turn); seconds."""

    async def one(client: Sequence[bytes]) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            for wire in client:
                writer.write(wire)
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head.split(b" ", 2)[1])
                size = 0
                for line in head.split(b"\r\n")[1:]:
                    if line[:15].lower() == b"content-length:":
                        size = int(line[15:])
                body = await reader.readexactly(size) if size else b""
                if status not in (200, 204):
                    raise HTTPFailure(f"HTTP {status}: {body[:300]!r}")
        finally:
            writer.close()

    async def run() -> float:
        began = time.perf_counter()
        await asyncio.gather(*(one(client) for client in wires))
        return time.perf_counter() - began

    return asyncio.run(run())
