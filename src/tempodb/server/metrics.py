"""Server metrics in the Prometheus text format (``GET /metrics``, version 0.0.4).

A small registry of counters, gauges and fixed-bucket histograms, enough for what the server
measures: requests, latencies, points written and read, errors, and the store's queue.

``/metrics`` needs no credentials, so nothing here may identify a tenant: label values come only
from fixed sets chosen by the server (route patterns such as ``/v1/series/{field}/{value}/data``,
HTTP methods, status classes, error codes), never from a path, a key, a series or a query.
"""

from __future__ import annotations

import bisect
import math
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

from tempodb.server.http import Response
from tempodb.storage.base import Store

CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"
#: Latency buckets in seconds, from half a millisecond to ten seconds.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"})
#: The scope entry where the app leaves the request's route label (``routes.label``), so
#: that the metrics take it from the request's one match instead of matching the path again.
ROUTE_KEY = "tempodb.route"
UNMATCHED = "unmatched"
ERROR_CODE_HEADER = b"x-tempodb-error"

Labels = tuple[str, ...]
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


class Metric(ABC):
    """One metric family: a name, a help text, label names and a value per label set."""

    kind = "untyped"

    def __init__(self, name: str, help_text: str, labelnames: Sequence[str] = ()) -> None:
        self.name = name
        self.help = help_text
        self.labelnames = tuple(labelnames)
        self._lock = threading.Lock()

    def _check(self, labels: Labels) -> None:
        if len(labels) != len(self.labelnames):
            raise ValueError(f"{self.name} takes labels {self.labelnames}, not {labels!r}")

    def _series(self, suffix: str, labels: Labels, extra: str = "") -> str:
        pairs = [f'{n}="{_escape_label(v)}"' for n, v in zip(self.labelnames, labels, strict=True)]
        if extra:
            pairs.append(extra)
        return f"{self.name}{suffix}{{{','.join(pairs)}}}" if pairs else f"{self.name}{suffix}"

    @abstractmethod
    def samples(self) -> list[str]:
        """The sample lines of this family."""

    def render(self) -> str:
        help_text = self.help.replace("\\", "\\\\").replace("\n", "\\n")
        head = f"# HELP {self.name} {help_text}\n# TYPE {self.name} {self.kind}\n"
        return head + "".join(line + "\n" for line in self.samples())


class Counter(Metric):
    """A value that only goes up."""

    kind = "counter"

    def __init__(self, name: str, help_text: str, labelnames: Sequence[str] = ()) -> None:
        super().__init__(name, help_text, labelnames)
        self._values: dict[Labels, float] = {}

    def inc(self, *labels: str, amount: float = 1.0) -> None:
        if amount < 0:
            raise ValueError(f"{self.name}: a counter cannot go down ({amount!r})")
        self._check(labels)
        with self._lock:
            self._values[labels] = self._values.get(labels, 0.0) + amount

    def value(self, *labels: str) -> float:
        with self._lock:
            return self._values.get(labels, 0.0)

    def samples(self) -> list[str]:
        with self._lock:
            items = sorted(self._values.items())
        if not items and not self.labelnames:
            items = [((), 0.0)]
        return [f"{self._series('', k)} {_format_number(v)}" for k, v in items]


class Gauge(Metric):
    """A value read when the metrics are scraped."""

    kind = "gauge"

    def __init__(self, name: str, help_text: str, read: Callable[[], float]) -> None:
        super().__init__(name, help_text)
        self._read = read

    def samples(self) -> list[str]:
        try:
            value = float(self._read())
        except Exception:  # a closed store, say: the scrape still succeeds
            value = math.nan
        return [f"{self.name} {_format_number(value)}"]


class Histogram(Metric):
    """Observations counted in fixed buckets, with their sum and count."""

    kind = "histogram"

    def __init__(
        self,
        name: str,
        help_text: str,
        labelnames: Sequence[str] = (),
        buckets: Sequence[float] = LATENCY_BUCKETS,
    ) -> None:
        super().__init__(name, help_text, labelnames)
        if list(buckets) != sorted(set(buckets)) or not buckets:
            raise ValueError(f"{name}: buckets must be distinct and ascending, not {buckets!r}")
        self.buckets = tuple(float(b) for b in buckets)
        #: Per label set: the count in each bucket (not cumulative; the last is +Inf), the sum.
        self._values: dict[Labels, tuple[list[int], list[float]]] = {}

    def observe(self, value: float, *labels: str) -> None:
        self._check(labels)
        index = bisect.bisect_left(self.buckets, value)
        with self._lock:
            entry = self._values.get(labels)
            if entry is None:
                entry = self._values[labels] = ([0] * (len(self.buckets) + 1), [0.0])
            entry[0][index] += 1
            entry[1][0] += value

    def count(self, *labels: str) -> int:
        with self._lock:
            entry = self._values.get(labels)
            return sum(entry[0]) if entry else 0

    def samples(self) -> list[str]:
        with self._lock:
            items = sorted((k, (list(c), s[0])) for k, (c, s) in self._values.items())
        lines = []
        for labels, (counts, total) in items:
            running = 0
            for bound, count in zip([*self.buckets, math.inf], counts, strict=True):
                running += count
                le = f'le="{_format_number(bound)}"'
                lines.append(f"{self._series('_bucket', labels, le)} {running}")
            lines.append(f"{self._series('_sum', labels)} {_format_number(total)}")
            lines.append(f"{self._series('_count', labels)} {running}")
        return lines


class Registry:
    """The metric families of one server, rendered in registration order."""

    def __init__(self) -> None:
        self._metrics: list[Metric] = []

    def register(self, metric: Metric) -> None:
        if any(m.name == metric.name for m in self._metrics):
            raise ValueError(f"a metric named {metric.name} is already registered")
        self._metrics.append(metric)

    def render(self) -> bytes:
        return "".join(m.render() for m in self._metrics).encode()


class ServerMetrics:
    """What the server counts, and the ``/metrics`` response.

    Requests, latencies and errors are counted by wrapping the ASGI ``send`` of each request
    (:meth:`instrument`), so that every answer counts, whichever code path sent it; handlers
    count the points they write and read.
    """

    def __init__(self, store: Store, in_progress: Callable[[], float] | None = None) -> None:
        self.started = time.time()
        self.registry = Registry()
        self.requests = Counter(
            "tempodb_http_requests_total",
            "HTTP requests answered, by route pattern, method and status class.",
            ("route", "method", "status"),
        )
        self.latency = Histogram(
            "tempodb_http_request_duration_seconds",
            "Time from the start of a request to the end of its response, by route pattern.",
            ("route", "method"),
        )
        self.errors = Counter(
            "tempodb_http_errors_total",
            "Error responses (status 400 and above), by route pattern and error code.",
            ("route", "code"),
        )
        self.points_written = Counter(
            "tempodb_points_written_total",
            "Points stored by writes and increments.",
            ("op",),
        )
        self.points_read = Counter(
            "tempodb_points_read_total",
            "Raw points read from the store to answer reads and single-value lookups.",
        )
        self.queue_depth = Gauge(
            "tempodb_store_queue_depth",
            "Requests waiting for the store (queued writes, or waits for a connection).",
            store.queue_depth,
        )
        self.in_progress = Gauge(
            "tempodb_http_requests_in_progress",
            "Requests being read, waiting for a worker or running.",
            in_progress or (lambda: 0),
        )
        self.uptime = Gauge(
            "tempodb_uptime_seconds",
            "Seconds since the server started.",
            lambda: round(time.time() - self.started, 3),
        )
        for metric in (
            self.requests,
            self.latency,
            self.errors,
            self.points_written,
            self.points_read,
            self.queue_depth,
            self.in_progress,
            self.uptime,
        ):
            self.registry.register(metric)
        for op in ("write", "increment"):
            self.points_written.inc(op, amount=0)

    def response(self) -> Response:
        return Response(200, self.registry.render(), CONTENT_TYPE)

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
        self.requests.inc(route, method, f"{status // 100}xx")
        self.latency.observe(seconds, route, method)
        if status >= 400:
            self.errors.inc(route, _error_code(error_code, status))


#: Error codes are the server's own constants; anything else is reported as its status.
_ERROR_CODE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz-")


def _error_code(code: str, status: int) -> str:
    if code and len(code) <= 40 and set(code) <= _ERROR_CODE_CHARS:
        return code
    return str(status)
