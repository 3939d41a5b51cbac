"""The ASGI application: reads the request, runs its handler on a worker thread, answers.

Handlers are plain synchronous functions (storage calls, numpy folds, JSON rendering); the
event loop only moves bytes, so one slow read never stalls other connections.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from tempodb.server.auth import Authenticator
from tempodb.server.context import Context, Options
from tempodb.server.http import (
    JSON_TYPE,
    HTTPError,
    Query,
    Request,
    Response,
    error_response,
)
from tempodb.server.routes import API_PREFIX, match, split_path
from tempodb.storage.base import Store

log = logging.getLogger("tempodb.server")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

#: Bodies larger than this are refused with 413 (spec §7 asks for at least 10 MB).
DEFAULT_MAX_BODY = 64 * 1024 * 1024
#: Responses smaller than this are not worth compressing.
GZIP_MIN_SIZE = 1024


@dataclass(frozen=True)
class EncodedResponse:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


class TempoDBApp:
    """The v1 API over ``store``.  Call :meth:`close` (or let the ASGI lifespan do it)."""

    def __init__(
        self,
        store: Store,
        *,
        options: Options | None = None,
        max_body: int = DEFAULT_MAX_BODY,
        threads: int = 32,
        auth_ttl: float = 2.0,
    ) -> None:
        self.store = store
        self.options = options or Options()
        self.max_body = max_body
        self.auth = Authenticator(store, ttl=auth_ttl)
        self.executor = ThreadPoolExecutor(threads, thread_name_prefix="tempodb")

    def close(self) -> None:
        self.executor.shutdown(wait=True)
        self.store.close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            body = await self._read_body(receive, headers)
        except HTTPError as error:
            await _send(send, _encode(error_response(error), gzip_ok=False))
            return
        loop = asyncio.get_running_loop()
        response = await loop.run_in_executor(
            self.executor,
            self.handle,
            scope["method"],
            scope.get("raw_path") or scope["path"].encode(),
            scope.get("query_string", b""),
            headers,
            body,
        )
        await _send(send, response)

    def handle(
        self,
        method: str,
        raw_path: bytes,
        query_string: bytes,
        headers: dict[str, str],
        body: bytes,
    ) -> EncodedResponse:
        """Route, authenticate and run one request, and encode the answer; every failure
        becomes an error response."""
        try:
            response = self._dispatch(method, raw_path, query_string, headers, body)
        except HTTPError as error:
            response = error_response(error)
        except Exception:
            log.exception("internal error on %s %s", method, raw_path.decode("utf-8", "replace"))
            response = error_response(HTTPError(500, "Internal server error", "server-error"))
        return _encode(response, gzip_ok=_accepts_gzip(headers.get("accept-encoding", "")))

    def _dispatch(
        self,
        method: str,
        raw_path: bytes,
        query_string: bytes,
        headers: dict[str, str],
        body: bytes,
    ) -> Response:
        segments = split_path(raw_path)
        if segments == ["healthz"] and method in ("GET", "HEAD"):
            return Response(200, b"ok\n", b"text/plain; charset=utf-8")
        route = match(segments[1:]) if segments[:1] == [API_PREFIX] else None
        if route is None:
            raise HTTPError(404, f"Not found: {raw_path.decode('utf-8', 'replace')}", "not-found")
        handler = route.methods.get(method)
        if handler is None:
            allowed = ", ".join(sorted(route.methods))
            raise HTTPError(
                405,
                f"Method {method} not allowed here (allowed: {allowed})",
                "method-not-allowed",
                {"Allow": allowed},
            )
        database = self.auth.authenticate(headers.get("authorization"))
        request = Request(method, segments, Query.parse(query_string), body, headers)
        return handler(Context(self.store, database, self.options), request, route.params)

    async def _read_body(self, receive: Receive, headers: dict[str, str]) -> bytes:
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body:
            raise _too_large(self.max_body)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise _too_large(self.max_body)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await asyncio.get_running_loop().run_in_executor(None, self.close)
                await send({"type": "lifespan.shutdown.complete"})
                return


def _too_large(limit: int) -> HTTPError:
    return HTTPError(413, f"Request body larger than {limit} bytes", "too-large")


def _accepts_gzip(header: str) -> bool:
    for part in header.split(","):
        name, _, params = part.strip().partition(";")
        if name.strip().lower() == "gzip":
            return params.replace(" ", "").lower() not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


def _encode(response: Response, *, gzip_ok: bool) -> EncodedResponse:
    """Status, headers and body as sent; JSON is gzipped for clients that ask for it."""
    body = response.body
    headers: list[tuple[bytes, bytes]] = []
    if response.content_type:
        headers.append((b"content-type", response.content_type))
    if response.content_type == JSON_TYPE:
        headers.append((b"vary", b"Accept-Encoding"))
        if gzip_ok and len(body) >= GZIP_MIN_SIZE:
            body = gzip.compress(body, compresslevel=1)
            headers.append((b"content-encoding", b"gzip"))
    headers.append((b"content-length", str(len(body)).encode()))
    headers += [(k.lower().encode(), v.encode()) for k, v in response.headers.items()]
    return EncodedResponse(response.status, headers, body)


async def _send(send: Send, response: EncodedResponse) -> None:
    await send(
        {"type": "http.response.start", "status": response.status, "headers": response.headers}
    )
    await send({"type": "http.response.body", "body": response.body})
