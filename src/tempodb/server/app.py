"""The ASGI application: checks the credentials, reads the body, runs the handler, answers.

Credentials come before work: an API request is routed (404, 405), checked for a cross-site
browser write (``auth.check_provenance``, 403 or 415) and authenticated from its headers (401,
403, then the per-key rate, 429) before it is admitted (``limits.Admission``, 503)
and before a byte of its body is read, so a client without a valid key can neither fill the
server-wide limits nor make the server read, buffer or decompress anything.  The public
resources (``/healthz``, ``/v1/openapi.json``, ``/metrics``, ``/ui/``) take no body; they have
their own small admission, and ``/healthz`` is answered on the event loop, so it answers
whatever the API's load.  The body must arrive within ``Limits.body_timeout`` (408) and is
decompressed on a worker thread of its own (``body``).

Handlers are plain synchronous functions (storage calls, numpy folds, JSON rendering); the
event loop only moves bytes, so one slow read never stalls other connections.  The one
exception is a small write (a body up to ``INLINE_WRITE_MAX``) on a store that takes writes
without waiting (``Store.quick_submit``, the embedded store): it is parsed on the event loop
(tens of microseconds), queued with the store's writer and awaited there, which saves two
thread switches per request, the larger part of a small write's cost.  On such a store the
credentials are checked on the event loop too (one indexed read and a SHA-256).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import gzip
import logging
import zlib
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from tempodb.contract import OUTCOME_UNKNOWN
from tempodb.retention import Enforcer, RetentionView
from tempodb.server.auth import Authenticator, check_provenance, credentials
from tempodb.server.body import read_body
from tempodb.server.context import Context, Options
from tempodb.server.http import JSON_TYPE, HTTPError, Query, Request, Response, accepts_gzip
from tempodb.server.idempotency import HEADER as IDEMPOTENCY_HEADER
from tempodb.server.idempotency import KeysInFlight
from tempodb.server.limits import Admission, Limits, RateLimiter, overloaded
from tempodb.server.metrics import ROUTE_KEY, ServerMetrics
from tempodb.server.points import WriteHandler
from tempodb.server.routes import (
    PROMETHEUS_CODINGS,
    Match,
    Served,
    check_method,
    error_renderer,
    label,
    resolve,
)
from tempodb.storage.base import (
    Database,
    OutcomeUnknown,
    Overloaded,
    StorageError,
    StorageFull,
    Store,
    Unavailable,
    ValueOutOfRange,
)

log = logging.getLogger("tempodb.server")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

#: Bodies larger than this are refused with 413 (spec §7 asks for at least 10 MB).
DEFAULT_MAX_BODY = Limits.max_body
#: Streamed responses shorter than this are sent whole, with a Content-Length.
STREAM_MIN = 1 << 20
#: Responses smaller than this are not worth compressing.
GZIP_MIN_SIZE = 1024
#: Requests in progress at once (reading, waiting for a worker, running); more get 503.
DEFAULT_MAX_PENDING = Limits.max_pending
#: Request bodies held in memory at once, in multiples of the body limit; more get 503.
BUFFERED_BODIES = 4
#: Requests for the public resources (OpenAPI, metrics, explorer) in progress at once.
PUBLIC_PENDING = 32
#: Threads that decompress gzip request bodies (so bombs cannot take every worker).
INFLATE_THREADS = 2
#: Writes with bodies up to this size are parsed on the event loop and queued with the store
#: from there, when the store can take them at once (``Store.quick_submit``).
INLINE_WRITE_MAX = 16 * 1024


@dataclass(frozen=True)
class EncodedResponse:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    #: The rest of a streamed body (sent with chunked transfer encoding), already encoded.
    stream: Iterator[bytes] | None = None
    #: The answer as Python objects with arrays, when the request asked for them
    #: (``handle(..., arrays=True)``, ``Response.columns``): ``body`` is then empty.
    columns: Any = None


class TempoDBApp:
    """The v1 API over ``store``.  Call :meth:`close` (or let the ASGI lifespan do it).

    ``limits.max_pending`` authenticated requests may be in progress at once, holding up to
    ``BUFFERED_BODIES`` times ``limits.max_body`` bytes of bodies; beyond either, 503 with
    Retry-After (``limits``).  ``rate_limit`` (requests a second per key) answers 429 beyond
    it.  ``retention_every`` (seconds) runs the retention pass that often on a thread
    (``tempodb.retention.Enforcer``; None: never).  ``auth_ttl`` caches good credentials
    that long (0: never, so that a revoked key stops working at once).  ``max_body`` and
    ``max_pending``, when given, override ``limits``.
    """

    def __init__(
        self,
        store: Store,
        *,
        options: Options | None = None,
        limits: Limits | None = None,
        max_body: int | None = None,
        threads: int = 32,
        auth_ttl: float = 0.0,
        max_pending: int | None = None,
        rate_limit: float | None = None,
        retention_every: float | None = None,
    ) -> None:
        limits = limits or Limits()
        if max_body is not None or max_pending is not None:
            limits = dataclasses.replace(
                limits,
                max_body=limits.max_body if max_body is None else max_body,
                max_pending=limits.max_pending if max_pending is None else max_pending,
            )
        self.store = store
        self.options = options or Options()
        self.limits = limits
        self.max_body = limits.max_body
        self.auth = Authenticator(store, ttl=auth_ttl)
        self.executor = ThreadPoolExecutor(threads, thread_name_prefix="tempodb")
        self.inflater = ThreadPoolExecutor(INFLATE_THREADS, thread_name_prefix="tempodb-gunzip")
        self.admission = Admission(limits.max_pending, BUFFERED_BODIES * limits.max_body)
        #: Credentials being checked on a worker thread (stores that are no quick read).
        self.checking = Admission(limits.max_pending, 1)
        self.public = Admission(PUBLIC_PENDING, 1)
        self.limiter = RateLimiter(rate_limit) if rate_limit else None
        self.metrics = ServerMetrics(
            store, in_progress=lambda: self.admission.requests + self.public.requests
        )
        #: Every database's retention; the pass that enforces them (``retention_every``).
        self.retention = RetentionView(store)
        self.enforcer = Enforcer(store, retention_every) if retention_every else None
        #: Small writes skip the worker threads (two thread switches fewer per request).
        self.inline_writes = store.quick_submit and not self.options.auto_tag
        self.keys_in_flight = KeysInFlight()

    def close(self) -> None:
        if self.enforcer is not None:
            self.enforcer.close()
        self.executor.shutdown(wait=True)
        self.inflater.shutdown(wait=True)
        self.store.close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        send = self.metrics.instrument(scope, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        method = scope["method"]
        raw_path = scope.get("raw_path") or scope["path"].encode()
        query_string = scope.get("query_string", b"")
        found = resolve(raw_path)  # the one match of this request
        scope[ROUTE_KEY] = label(found)
        if found is not None and found.route.on_loop and found.route.allows(method):
            await _send(send, _encode(self._serve(found, method, raw_path, b"", {}), gzip_ok=False))
            return
        render = error_renderer(found)
        try:
            found = check_method(found, method, raw_path)
            if found.route.public:  # no credentials, no body
                ticket = self.public.admit()
            else:
                check_provenance(method, headers, self.options.allowed_origins)
                influx = found.dialect == "influx"
                database = await self._authenticate(headers, query_string, influx=influx)
                ticket = self.admission.admit()
        except HTTPError as error:
            await _send(send, _encode(render(error), gzip_ok=False))
            return
        except StorageError as exc:  # checking the key: the database is down or overloaded
            await _send(send, _encode(self._failure(exc, found, method, raw_path), gzip_ok=False))
            return
        loop = asyncio.get_running_loop()
        try:
            if found.route.public:
                public = await loop.run_in_executor(
                    self.executor,
                    functools.partial(
                        self.handle, method, raw_path, query_string, headers, b"", found=found
                    ),
                )
                await _send(send, public)
                return
            try:
                body = await read_body(
                    receive,
                    headers,
                    self.max_body,
                    ticket,
                    timeout=self.limits.body_timeout,
                    max_ratio=self.limits.max_gzip_ratio,
                    run=lambda fn, data: loop.run_in_executor(self.inflater, fn, data),
                    keep=PROMETHEUS_CODINGS if found.dialect == "prometheus" else (),
                )
            except HTTPError as error:
                await _send(send, _encode(render(error), gzip_ok=False))
                return
            response: EncodedResponse | None = None
            if self.inline_writes and method == "POST" and len(body) <= INLINE_WRITE_MAX:
                response = await self._inline_write(
                    found, method, raw_path, query_string, headers, body, database
                )
            if response is None:
                response = await loop.run_in_executor(
                    self.executor,
                    functools.partial(
                        self.handle,
                        method,
                        raw_path,
                        query_string,
                        headers,
                        body,
                        database,
                        found=found,
                    ),
                )
            await _send(send, response)
        finally:
            ticket.close()

    async def _authenticate(
        self, headers: dict[str, str], query_string: bytes, *, influx: bool = False
    ) -> Database:
        """The database of the request's credentials, and a token of its key's rate: 401,
        403 or 429.  Checked on the event loop when the store's read is quick, else on a
        worker thread (at most ``max_pending`` at once, 503 beyond).  ``influx``: the
        credentials may also be InfluxDB's (``auth.credentials``)."""
        header = headers.get("authorization")
        credentials(header, query_string, influx=influx)  # 401 without asking the store
        check = functools.partial(self.auth.authenticate, header, query_string, influx=influx)
        if self.store.quick_submit:
            database = check()
        else:
            ticket = self.checking.admit()
            try:
                loop = asyncio.get_running_loop()
                database = await loop.run_in_executor(self.executor, check)
            finally:
                ticket.close()
        if self.limiter is not None:
            self.limiter.check(database.key)
        return database

    def handle(
        self,
        method: str,
        raw_path: bytes,
        query_string: bytes,
        headers: dict[str, str],
        body: bytes,
        database: Database | None = None,
        *,
        found: Match | None = None,
        columns: Any = None,
        arrays: bool = False,
        query: Query | None = None,
    ) -> EncodedResponse:
        """Route (unless ``found`` is the request's match), authenticate (unless ``database``
        is the one already authenticated) and run one request, and encode the answer; every
        failure becomes an error response.

        For a transport in this process (``tempodb.connect``): ``columns`` is the body as
        arrays (``wire.PointColumns``, with ``body`` empty), taken as such by the write
        handlers that parse it (``WriteHandler.columnar``) and encoded to JSON for any
        other; ``arrays`` asks for the answer as Python objects with the points as arrays
        where the handler can give them (``EncodedResponse.columns``), not as JSON; ``query``
        is the query already parsed (what ``Query.parse`` of ``query_string`` gives), the
        query string then unused but by the public resources."""
        if found is None:
            found = resolve(raw_path)
        try:
            routed = check_method(found, method, raw_path)
            if routed.route.public:
                if query is not None and not query_string:
                    query_string = urlencode(query.pairs).encode()
                response = self._serve(routed, method, raw_path, query_string, headers)
            else:
                influx = routed.dialect == "influx"
                handler = routed.methods[method]
                if columns is not None and not getattr(handler, "columnar", False):
                    body, columns = columns.encode(), None
                context, request = self._admit(
                    routed,
                    method,
                    query_string,
                    headers,
                    body,
                    database,
                    influx=influx,
                    query=query,
                )
                request.columns, request.arrays = columns, arrays
                response = handler(context, request, routed.params)
        except Exception as exc:
            response = self._failure(exc, found, method, raw_path)
        return _encode(response, gzip_ok=accepts_gzip(headers.get("accept-encoding", "")))

    async def _inline_write(
        self,
        found: Match,
        method: str,
        raw_path: bytes,
        query_string: bytes,
        headers: dict[str, str],
        body: bytes,
        database: Database,
    ) -> EncodedResponse | None:
        """A small write run on the event loop: parsed here, then queued with the store and
        awaited without a worker thread (``WriteJob.submit``).  None when the request is no
        write: the caller runs it on a worker thread."""
        handler = found.methods.get(method)
        if not isinstance(handler, WriteHandler) or IDEMPOTENCY_HEADER in headers:
            return None
        try:
            context, request = self._admit(found, method, query_string, headers, body, database)
            job = handler.parse(request, found.params).retained(context)
            future = job.submit(context)
            if not future.done():  # (an empty write is done at once: no hand-off to wait for)
                with contextlib.suppress(Exception):  # job.outcome answers the failure
                    await asyncio.wrap_future(future)
            response = job.outcome(context, future)
        except Exception as exc:
            response = self._failure(exc, found, method, raw_path)
        return _encode(response, gzip_ok=accepts_gzip(headers.get("accept-encoding", "")))

    @staticmethod
    def _failure(exc: Exception, found: Match | None, method: str, raw_path: bytes) -> Response:
        """The error response for an exception out of a handler."""
        render = error_renderer(found)
        if isinstance(exc, HTTPError):
            return render(exc)
        if isinstance(exc, Overloaded):
            return render(overloaded(str(exc)))
        if isinstance(exc, OutcomeUnknown):
            log.warning("%s %s: %s", method, raw_path.decode("utf-8", "replace"), exc)
            return render(
                HTTPError(
                    500,
                    "The database went away while this request was committing: it may or may "
                    "not have been applied (wholly either way); read before retrying an "
                    "increment, or retry it with the same Idempotency-Key",
                    OUTCOME_UNKNOWN,
                )
            )
        if isinstance(exc, Unavailable):
            log.warning("the database is unavailable: %s", exc)
            return render(
                HTTPError(
                    503,
                    "Service unavailable: the database cannot be reached; nothing was done, "
                    "retry later",
                    "storage-unavailable",
                    {"Retry-After": "5"},
                )
            )
        if isinstance(exc, ValueOutOfRange):  # an increment past the storable values
            return render(HTTPError(400, str(exc)))
        if isinstance(exc, StorageFull):
            log.warning("the disk of the store is full: a write was refused (507)")
            return render(
                HTTPError(
                    507,
                    "Insufficient storage: the server's disk is full, nothing of this request "
                    "was written; retry once space is freed",
                    "storage-full",
                    {"Retry-After": "60"},
                )
            )
        log.exception(
            "internal error on %s %s", method, raw_path.decode("utf-8", "replace"), exc_info=exc
        )
        return render(HTTPError(500, "Internal server error", "server-error"))

    def _serve(
        self,
        found: Match,
        method: str,
        raw_path: bytes,
        query_string: bytes,
        headers: dict[str, str],
    ) -> Response:
        """A public resource's answer."""
        assert found.route.resource is not None
        served = Served(method, raw_path, query_string, headers, self.metrics)
        return found.route.resource(served)

    def _admit(
        self,
        found: Match,
        method: str,
        query_string: bytes,
        headers: dict[str, str],
        body: bytes,
        database: Database | None,
        *,
        influx: bool = False,
        query: Query | None = None,
    ) -> tuple[Context, Request]:
        """The context and request objects of a routed request; authenticated and
        rate-limited here unless ``database`` says it was already; ``query``: the query
        string already parsed."""
        if database is None:
            check_provenance(method, headers, self.options.allowed_origins)
            database = self.auth.authenticate(
                headers.get("authorization"), query_string, influx=influx
            )
            if self.limiter is not None:
                self.limiter.check(database.key)
        if query is None:
            query = Query.parse(query_string)
        request = Request(method, found.segments, query, body, headers)
        context = Context(
            self.store, database, self.options, self.metrics, self.keys_in_flight, self.retention
        )
        return context, request

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await asyncio.get_running_loop().run_in_executor(None, self.close)
                await send({"type": "lifespan.shutdown.complete"})
                return


def _encode(response: Response, *, gzip_ok: bool) -> EncodedResponse:
    """Status, headers and body as sent; JSON is gzipped for clients that ask for it.

    A streamed response is read up to ``STREAM_MIN`` bytes: if it ends there it is sent whole
    like any other, else without a length (chunked), gzipped on the fly if asked for.  An
    answer given as arrays (``Response.columns``) keeps them, with its headers.
    """
    if response.columns is not None:
        kept = [(k.lower().encode(), v.encode()) for k, v in response.headers.items()]
        return EncodedResponse(response.status, kept, b"", columns=response.columns)
    body = response.body
    if response.stream is not None:
        parts, size = [body], len(body)
        for part in response.stream:
            parts.append(part)
            size += len(part)
            if size >= STREAM_MIN:
                return _encode_stream(response, b"".join(parts), gzip_ok=gzip_ok)
        body = b"".join(parts)
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


def _encode_stream(response: Response, first: bytes, *, gzip_ok: bool) -> EncodedResponse:
    assert response.stream is not None
    headers: list[tuple[bytes, bytes]] = []
    if response.content_type:
        headers.append((b"content-type", response.content_type))
    stream = response.stream
    if response.content_type == JSON_TYPE:
        headers.append((b"vary", b"Accept-Encoding"))
        if gzip_ok:
            compressor = zlib.compressobj(1, zlib.DEFLATED, 31)  # 31: the gzip format
            first = compressor.compress(first)
            stream = _gzipped(stream, compressor)
            headers.append((b"content-encoding", b"gzip"))
    headers += [(k.lower().encode(), v.encode()) for k, v in response.headers.items()]
    return EncodedResponse(response.status, headers, first, stream)


def _gzipped(stream: Iterator[bytes], compressor: Any) -> Iterator[bytes]:
    for part in stream:
        yield compressor.compress(part)
    yield compressor.flush()


async def _send(send: Send, response: EncodedResponse) -> None:
    await send(
        {"type": "http.response.start", "status": response.status, "headers": response.headers}
    )
    if response.stream is None:
        await send({"type": "http.response.body", "body": response.body})
        return
    # The rest is produced on a worker thread, one piece at a time, and sent as it comes.
    loop = asyncio.get_running_loop()
    await send({"type": "http.response.body", "body": response.body, "more_body": True})
    try:
        while True:
            part = await loop.run_in_executor(None, next, response.stream, None)
            if part is None:
                break
            if part:
                await send({"type": "http.response.body", "body": part, "more_body": True})
    except Exception:
        log.exception("a streamed response failed; the connection is closed")
        raise
    await send({"type": "http.response.body", "body": b""})
