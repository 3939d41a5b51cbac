"""The one route table of everything the server answers, matched once per request.

``TABLE`` lists every route: v1 (spec §1) under ``/v1``, the 0.5 routes and the 1.0 reads
(issue 16) together; the InfluxDB dialect at the top level (``/write``, ``/api/v2/write``,
``/query``, the public ``/ping``); Prometheus' remote storage (``/api/v1/write``,
``/api/v1/read``); and the public resources (``/healthz``, ``/metrics``, ``/v1/openapi.json``,
``/ui/``).  Each route carries its pattern, its handlers by method, its dialect (which also
picks how its errors are answered), whether it is public, whether the OpenAPI document
describes it, and its label in the metrics (the pattern, never the path: no tenant data).

Matching (``resolve``) works on the raw path (spec §2.5): paths are split on literal ``/``
before percent-decoding, so that a key may contain ``%2F``; a trailing slash is optional on
every route.  The ``/v1`` prefix and the public resources' paths are compared as sent; the
other literal segments after percent-decoding; ``{field}`` is the literal ``id`` or ``key``;
``{value}`` also reads ``+`` as a space (Go and old Python clients send it).  A path that
matches no route is 404; a route without the method is 405 with ``Allow``, except the public
resources, which answer 404 to a method they do not serve (``/ui/`` answers 405 itself).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import unquote, unquote_plus

from tempodb.contract import API_VERSION
from tempodb.server import points, retention, segments, series, ui
from tempodb.server.context import Context
from tempodb.server.http import JSON_TYPE, HTTPError, Query, Request, Response, error_response
from tempodb.server.influx import query as influx_query
from tempodb.server.influx import write as influx
from tempodb.server.prometheus import read as prometheus_read
from tempodb.server.prometheus import write as prometheus_write

if TYPE_CHECKING:
    from tempodb.server.metrics import ServerMetrics

API_PREFIX = API_VERSION
#: Content codings a Prometheus route takes as sent (its handler decompresses them).
PROMETHEUS_CODINGS = ("snappy",)
#: The answer of ``/healthz``.
HEALTHY = Response(200, b"ok\n", b"text/plain; charset=utf-8")
#: The label of requests that match no route.
UNMATCHED = "unmatched"
GET_HEAD = frozenset({"GET", "HEAD"})

Handler = Callable[[Context, Request, dict[str, str]], Response]


@dataclass(frozen=True)
class Served:
    """What a public resource sees of its request (no credentials, no body)."""

    method: str
    raw_path: bytes
    query_string: bytes
    headers: Mapping[str, str]
    metrics: ServerMetrics


Resource = Callable[[Served], Response]


@dataclass(frozen=True)
class Route:
    """One route: ``pattern`` is the whole path's segments (literals, ``{field}``,
    ``{value}``).  An API route has ``methods``; a public one a ``resource`` instead, served
    for ``resource_methods`` (None: any method, the resource answers 405 itself)."""

    pattern: tuple[str, ...]
    methods: Mapping[str, Handler] = field(default_factory=dict)
    #: ``"v1"``; ``"influx"`` (credentials also as ``u``/``p`` query parameters or a
    #: ``Token`` header, errors as ``{"error": ...}``); ``"prometheus"`` (bodies in snappy,
    #: ``PROMETHEUS_CODINGS``, a rate limit's 429 as a 503).
    dialect: str = "v1"
    resource: Resource | None = None
    resource_methods: frozenset[str] | None = GET_HEAD
    #: Whether the OpenAPI document describes this route (``openapi.document``).
    documented: bool = True
    #: Also every path below the pattern (``/ui/...``).
    prefix: bool = False
    #: Leading segments compared as sent rather than percent-decoded.
    exact: int = 0
    #: Answered on the event loop, before any admission (``/healthz``).
    on_loop: bool = False

    @property
    def public(self) -> bool:
        return self.resource is not None

    @property
    def label(self) -> str:
        """The route's label in the metrics: its pattern as a path."""
        return "/" + "/".join(self.pattern)

    @property
    def path(self) -> str:
        """The route's path in the OpenAPI document (v1 routes with their trailing slash)."""
        slash = "/" if self.dialect == "v1" and not self.public else ""
        return self.label + slash

    def allows(self, method: str) -> bool:
        if self.resource is None:
            return method in self.methods
        return self.resource_methods is None or method in self.resource_methods


def _v1(pattern: tuple[str, ...], methods: Mapping[str, Handler]) -> Route:
    return Route((API_PREFIX, *pattern), methods, exact=1)


def _public(
    pattern: tuple[str, ...],
    resource: Resource,
    dialect: str = "v1",
    *,
    documented: bool = False,
    on_loop: bool = False,
) -> Route:
    """A public resource at an exact path, served for GET and HEAD."""
    exact = len(pattern)
    return Route(pattern, {}, dialect, resource, GET_HEAD, documented, False, exact, on_loop)


def _openapi(served: Served) -> Response:
    from tempodb.server import openapi  # the document is built from this table

    return Response(200, openapi.document_bytes(), JSON_TYPE)


TABLE: tuple[Route, ...] = (
    # v1, 0.5 and 1.0 (issue 16: DELETE of one series, segments, summary, find, GET /multi).
    _v1(
        ("series",),
        {"GET": series.list_series, "POST": series.create_series, "DELETE": series.delete_series},
    ),
    _v1(
        ("series", "{field}", "{value}"),
        {"GET": series.get_series, "PUT": series.update_series, "DELETE": series.delete_one},
    ),
    _v1(
        ("series", "{field}", "{value}", "data"),
        {"GET": points.read_series, "POST": points.write_series, "DELETE": points.delete_range},
    ),
    _v1(("series", "{field}", "{value}", "increment"), {"POST": points.increment_series}),
    _v1(("series", "{field}", "{value}", "single"), {"GET": points.single_series}),
    _v1(("data",), {"GET": points.read_many, "POST": points.write_bulk}),
    _v1(("increment",), {"POST": points.increment_bulk}),
    _v1(("multi",), {"POST": points.write_multi, "GET": segments.multi}),
    _v1(("multi", "increment"), {"POST": points.increment_multi}),
    _v1(("single",), {"GET": points.single_many}),
    _v1(("database",), {"POST": series.create_database}),
    _v1(
        ("database", "{value}", "retention"),
        {"GET": retention.get_retention, "PUT": retention.set_retention},
    ),
    _v1(("series", "{field}", "{value}", "segment"), {"GET": segments.segment}),
    _v1(("series", "{field}", "{value}", "data", "segment"), {"GET": segments.segment}),
    _v1(("series", "{field}", "{value}", "data", "rollups", "segment"), {"GET": segments.rollups}),
    _v1(("series", "{field}", "{value}", "summary"), {"GET": segments.summary}),
    _v1(("series", "{field}", "{value}", "find"), {"GET": segments.find}),
    _v1(("segment",), {"GET": segments.aggregate_segment}),
    _v1(("data", "segment"), {"GET": segments.aggregate_segment}),
    # The InfluxDB dialect (its answers and errors are InfluxDB's; not in the OpenAPI document).
    Route(("write",), {"POST": influx.write_v1}, "influx", documented=False),
    Route(("api", "v2", "write"), {"POST": influx.write_v2}, "influx", documented=False),
    Route(
        ("query",),
        {"GET": influx_query.query, "POST": influx_query.query},
        "influx",
        documented=False,
    ),
    _public(("ping",), lambda s: influx.ping(Query.parse(s.query_string).get("verbose")), "influx"),
    # Prometheus' remote storage (HTTP Basic credentials; bodies snappy-compressed).
    Route(("api", "v1", "write"), {"POST": prometheus_write.write}, "prometheus"),
    Route(("api", "v1", "read"), {"POST": prometheus_read.read}, "prometheus"),
    # The public resources: no credentials, no body.
    _public(("healthz",), lambda s: HEALTHY, on_loop=True),
    _public((API_PREFIX, "openapi.json"), _openapi, documented=True),
    _public(("metrics",), lambda s: s.metrics.response()),
    Route(
        ("ui",),
        dialect="v1",
        resource=lambda s: ui.serve(s.method, s.raw_path, s.headers),
        resource_methods=None,
        documented=False,
        prefix=True,
        exact=1,
    ),
)

#: Routes by their number of segments, in table order (prefix routes apart).
_BY_LENGTH: dict[int, tuple[Route, ...]] = {}
for _route in TABLE:
    if not _route.prefix:
        _BY_LENGTH[len(_route.pattern)] = (*_BY_LENGTH.get(len(_route.pattern), ()), _route)
_PREFIXED = tuple(r for r in TABLE if r.prefix)

#: The v1 API routes as (pattern after ``/v1``, methods) and Prometheus' by path: views of
#: ``TABLE`` for the tests that probe every route.
ROUTES: list[tuple[tuple[str, ...], Mapping[str, Handler]]] = [
    (r.pattern[1:], r.methods) for r in TABLE if r.dialect == "v1" and not r.public
]
PROMETHEUS_ROUTES: dict[tuple[str, ...], Mapping[str, Handler]] = {
    r.pattern: r.methods for r in TABLE if r.dialect == "prometheus"
}

#: How errors are answered, by dialect: InfluxDB's JSON; on the Prometheus routes our plain
#: text with a rate limit's 429 as a 503 (``prometheus_write.prometheus_error``).
RENDERERS: dict[str, Callable[[HTTPError], Response]] = {
    "v1": error_response,
    "influx": influx.influx_error,
    "prometheus": prometheus_write.prometheus_error,
}


@dataclass(frozen=True)
class Match:
    """A path's route, with its decoded parameters and the raw segments."""

    route: Route
    params: dict[str, str]
    segments: list[str]

    @property
    def methods(self) -> Mapping[str, Handler]:
        return self.route.methods

    @property
    def dialect(self) -> str:
        return self.route.dialect


def split_path(raw_path: bytes) -> list[str]:
    """Raw path segments after the leading slash, without a trailing empty one."""
    text = raw_path.decode("utf-8", "replace")
    if text.endswith("/"):
        text = text[:-1]
    return text.split("/")[1:] if text.startswith("/") else text.split("/")


def _params(route: Route, raw: list[str]) -> dict[str, str] | None:
    """The decoded parameters if the raw segments fit the route's pattern, else None."""
    params: dict[str, str] = {}
    for index, (expected, segment) in enumerate(zip(route.pattern, raw, strict=True)):
        if expected == "{value}":
            params["value"] = unquote_plus(segment)
        elif expected == "{field}":
            params["field"] = unquote(segment)
            if params["field"] not in ("id", "key"):
                return None
        elif segment != expected and (index < route.exact or unquote(segment) != expected):
            return None
    return params


def route(raw: list[str]) -> Match | None:
    """The route of a path's raw segments (``split_path``), or None."""
    for candidate in _BY_LENGTH.get(len(raw), ()):
        params = _params(candidate, raw)
        if params is not None:
            return Match(candidate, params, raw)
    for candidate in _PREFIXED:
        if raw[: len(candidate.pattern)] == list(candidate.pattern):
            return Match(candidate, {}, raw)
    return None


def resolve(raw_path: bytes) -> Match | None:
    """The route of a raw path, or None."""
    return route(split_path(raw_path))


def error_renderer(found: Match | None) -> Callable[[HTTPError], Response]:
    """How errors are answered on a matched route (our plain text when nothing matched)."""
    return error_response if found is None else RENDERERS[found.dialect]


def check_method(found: Match | None, method: str, raw_path: bytes) -> Match:
    """The match if it serves ``method``; 404 for no route (or a public resource that does
    not serve it), 405 with ``Allow`` for an API route without the method."""
    if found is None or (found.route.public and not found.route.allows(method)):
        raise HTTPError(404, f"Not found: {raw_path.decode('utf-8', 'replace')}", "not-found")
    if not found.route.allows(method):
        allowed = ", ".join(sorted(found.methods))
        raise HTTPError(
            405,
            f"Method {method} not allowed here (allowed: {allowed})",
            "method-not-allowed",
            {"Allow": allowed},
        )
    return found


def label(found: Match | None) -> str:
    """The metrics label of a request: its route's pattern, or ``unmatched``."""
    return UNMATCHED if found is None else found.route.label


def route_label(raw_path: bytes) -> str:
    """The metrics label of a raw path (``label`` of its match)."""
    return label(resolve(raw_path))
