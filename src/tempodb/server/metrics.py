"""Server metrics in the Prometheus text format (``GET /metrics``, version 0.0.4).

The metric families live in a ``prometheus_client`` registry of their own per app (never the
library's global one, so that several apps in one process, as in the tests, count apart):
requests, latencies, points written and read, errors, and the store's queue.  The text is
written from that registry by ``render`` as the server always wrote it: labels in the order
they are declared, integral numbers without ``.0``, and no ``_created`` samples.

``/metrics`` needs no credentials, so nothing here may identify a tenant: label values come only
from fixed sets chosen by the server (route patterns such as ``/v1/series/{field}/{value}/data``,
taken from the request's match in the route table, HTTP methods, status classes, error codes),
never from a path, a key, a series or a query.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from tempodb.contract import ERROR_CODE_HEADER as CONTRACT_ERROR_HEADER
from tempodb.server.http import Response
from tempodb.storage.base import Store

#: The text format 0.0.4 (what ``generate_latest`` writes), as Prometheus scrapes it.
CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"
#: Latency buckets in seconds, from half a millisecond to ten seconds.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"})
#: The scope entry where the app leaves the request's route label (``routes.label``), so
#: that the metrics take it from the request's one match instead of matching the path again.
ROUTE_KEY = "tempodb.route"
UNMATCHED = "unmatched"
ERROR_CODE_HEADER = CONTRACT_ERROR_HEADER.lower().encode()

Message = MutableMapping[str, Any]
Send = Callable[[Message], Awaitable[None]]


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _format_number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 2**53:
        return str(int(value))
    return repr(value)


def render(registry: CollectorRegistry) -> bytes:
    """The registry in the text format 0.0.4."""
    lines = []
    for family in registry.collect():
        name = family.name + ("_total" if family.type == "counter" else "")
        help_text = family.documentation.replace("\\", "\\\\").replace("\n", "\\n")
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {family.type}"]
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            pairs = dict(sample.labels)
            if "le" in pairs:  # bucket bounds as numbers are written: 1, not 1.0
                pairs["le"] = _format_number(float(pairs["le"]))
            labels = ",".join(f'{k}="{_escape_label(v)}"' for k, v in pairs.items())
            series = f"{sample.name}{{{labels}}}" if labels else sample.name
            lines.append(f"{series} {_format_number(sample.value)}")
    return "".join(line + "\n" for line in lines).encode()


def _reading(read: Callable[[], float]) -> Callable[[], float]:
    """``read`` for a gauge, NaN when it fails (a closed store, say: the scrape still works)."""

    def safely() -> float:
        try:
            return float(read())
        except Exception:
            return math.nan

    return safely


class ServerMetrics:
    """What the server counts, and the ``/metrics`` response.

    Requests, latencies and errors are counted by wrapping the ASGI ``send`` of each request
    (:meth:`instrument`), so that every answer counts, whichever code path sent it; handlers
    count the points they write and read (:meth:`written`, :meth:`read`).
    """

    def __init__(self, store: Store, in_progress: Callable[[], float] | None = None) -> None:
        self.started = time.time()
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.requests = Counter(
            "tempodb_http_requests",
            "HTTP requests answered, by route pattern, method and status class.",
            ("route", "method", "status"),
            registry=registry,
        )
        self.latency = Histogram(
            "tempodb_http_request_duration_seconds",
            "Time from the start of a request to the end of its response, by route pattern.",
            ("route", "method"),
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.errors = Counter(
            "tempodb_http_errors",
            "Error responses (status 400 and above), by route pattern and error code.",
            ("route", "code"),
            registry=registry,
        )
        self.points_written = Counter(
            "tempodb_points_written",
            "Points stored by writes and increments.",
            ("op",),
            registry=registry,
        )
        self.points_read = Counter(
            "tempodb_points_read",
            "Raw points read from the store to answer reads and single-value lookups.",
            registry=registry,
        )
        gauges = (
            (
                "tempodb_store_queue_depth",
                "Requests waiting for the store (queued writes, or waits for a connection).",
                store.queue_depth,
            ),
            (
                "tempodb_http_requests_in_progress",
                "Requests being read, waiting for a worker or running.",
                in_progress or (lambda: 0),
            ),
            (
                "tempodb_uptime_seconds",
                "Seconds since the server started.",
                lambda: round(time.time() - self.started, 3),
            ),
        )
        for name, help_text, read in gauges:
            Gauge(name, help_text, registry=registry).set_function(_reading(read))
        for op in ("write", "increment"):
            self.points_written.labels(op)
        # The children of (route, method, status class), found once: ``labels`` takes a lock
        # and checks its arguments on every call, a good part of a small request's cost.
        self._answered: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def written(self, op: str, count: int) -> None:
        """Count points stored by a write (``op`` ``write``) or an increment."""
        self.points_written.labels(op).inc(count)

    def read(self, count: int = 1) -> None:
        """Count raw points read from the store."""
        self.points_read.inc(count)

    def response(self) -> Response:
        return Response(200, render(self.registry), CONTENT_TYPE)

    def instrument(self, scope: MutableMapping[str, Any], send: Send) -> Send:
        """``send`` for one HTTP request that records the request when its response ends."""
        started = time.perf_counter()
        status = 0
        error_code = ""

        async def send_and_count(message: Message) -> None:
            nonlocal status, error_code
            kind = message["type"]
            if kind == "http.response.start":
                status = int(message["status"])
                for name, value in message.get("headers", ()):
                    if name.lower() == ERROR_CODE_HEADER:
                        error_code = bytes(value).decode("latin-1")
            await send(message)
            if kind == "http.response.body" and not message.get("more_body", False):
                self.record(scope, status, error_code, time.perf_counter() - started)

        return send_and_count

    def record(
        self, scope: MutableMapping[str, Any], status: int, error_code: str, seconds: float
    ) -> None:
        """Count one finished request."""
        route = scope.get(ROUTE_KEY, UNMATCHED)
        method = scope["method"] if scope["method"] in METHODS else "other"
        children = self._answered.get((route, method, status // 100))
        if children is None:
            children = self._answered[route, method, status // 100] = (
                self.requests.labels(route, method, f"{status // 100}xx"),
                self.latency.labels(route, method),
            )
        children[0].inc()
        children[1].observe(seconds)
        if status >= 400:
            self.errors.labels(route, _error_code(error_code, status)).inc()


#: Error codes are the server's own constants; anything else is reported as its status.
_ERROR_CODE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz-")


def _error_code(code: str, status: int) -> str:
    if code and len(code) <= 40 and set(code) <= _ERROR_CODE_CHARS:
        return code
    return str(status)
