"""The route table: v1 (spec §1) under ``/v1``, the InfluxDB dialect at the top level
(``/write``, ``/api/v2/write``, ``/query``; ``/ping`` is public, served by the app),
Prometheus' remote storage (``/api/v1/write``, ``/api/v1/read``), and path
matching on the raw path (spec §2.5).

Paths are split on literal ``/`` before percent-decoding, so that a key may contain ``%2F``;
the ``{v}`` segment also reads ``+`` as a space (Go and old Python clients send it).  A
trailing slash is optional on every route.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote, unquote_plus

from tempodb.server import points, segments, series
from tempodb.server.context import Context
from tempodb.server.http import HTTPError, Request, Response, error_response
from tempodb.server.influx import query as influx_query
from tempodb.server.influx import write as influx
from tempodb.server.prometheus import read as prometheus_read
from tempodb.server.prometheus import write as prometheus_write

Handler = Callable[[Context, Request, dict[str, str]], Response]

#: ``{field}`` is the literal ``id`` or ``key``; ``{value}`` the id or key itself.
ROUTES: list[tuple[tuple[str, ...], dict[str, Handler]]] = [
    (
        ("series",),
        {"GET": series.list_series, "POST": series.create_series, "DELETE": series.delete_series},
    ),
    (("series", "{field}", "{value}"), {"GET": series.get_series, "PUT": series.update_series}),
    (
        ("series", "{field}", "{value}", "data"),
        {"GET": points.read_series, "POST": points.write_series, "DELETE": points.delete_range},
    ),
    (("series", "{field}", "{value}", "increment"), {"POST": points.increment_series}),
    (("series", "{field}", "{value}", "single"), {"GET": points.single_series}),
    (("data",), {"GET": points.read_many, "POST": points.write_bulk}),
    (("increment",), {"POST": points.increment_bulk}),
    (("multi",), {"POST": points.write_multi}),
    (("multi", "increment"), {"POST": points.increment_multi}),
    (("single",), {"GET": points.single_many}),
    (("database",), {"POST": series.create_database}),
]

#: The 1.0 reads (issue 16), beside the 0.5 routes; methods of a pattern already above join it.
ROUTES_1_0: list[tuple[tuple[str, ...], dict[str, Handler]]] = [
    (("series", "{field}", "{value}"), {"DELETE": series.delete_one}),
    (("series", "{field}", "{value}", "segment"), {"GET": segments.segment}),
    (("series", "{field}", "{value}", "data", "segment"), {"GET": segments.segment}),
    (("series", "{field}", "{value}", "data", "rollups", "segment"), {"GET": segments.rollups}),
    (("series", "{field}", "{value}", "summary"), {"GET": segments.summary}),
    (("series", "{field}", "{value}", "find"), {"GET": segments.find}),
    (("segment",), {"GET": segments.aggregate_segment}),
    (("data", "segment"), {"GET": segments.aggregate_segment}),
    (("multi",), {"GET": segments.multi}),
]


def _add_routes(extra: list[tuple[tuple[str, ...], dict[str, Handler]]]) -> None:
    for pattern, methods in extra:
        known = next((m for p, m in ROUTES if p == pattern), None)
        if known is None:
            ROUTES.append((pattern, dict(methods)))
        else:
            known.update(methods)


_add_routes(ROUTES_1_0)

API_PREFIX = "v1"

#: The InfluxDB routes, matched on the whole path (their answers and errors are InfluxDB's).
INFLUX_ROUTES: dict[tuple[str, ...], dict[str, Handler]] = {
    ("write",): {"POST": influx.write_v1},
    ("api", "v2", "write"): {"POST": influx.write_v2},
    ("query",): {"GET": influx_query.query, "POST": influx_query.query},
}
#: Prometheus' remote storage routes (HTTP Basic credentials; bodies snappy-compressed).
PROMETHEUS_ROUTES: dict[tuple[str, ...], dict[str, Handler]] = {
    ("api", "v1", "write"): {"POST": prometheus_write.write},
    ("api", "v1", "read"): {"POST": prometheus_read.read},
}
#: Content codings a Prometheus route takes as sent (its handler decompresses them).
PROMETHEUS_CODINGS = ("snappy",)
#: Public InfluxDB resources (no credentials, no body).
INFLUX_PUBLIC = (["ping"],)


@dataclass(frozen=True)
class Match:
    methods: dict[str, Handler]
    params: dict[str, str]
    #: The route's pattern, such as ``("series", "{field}", "{value}", "data")``.
    pattern: tuple[str, ...] = ()
    #: ``"v1"``, or ``"influx"`` for the InfluxDB routes (credentials also as ``u``/``p``
    #: query parameters or a ``Token`` header; errors as ``{"error": ...}``), or
    #: ``"prometheus"`` for remote write and read (bodies in snappy, ``PROMETHEUS_CODINGS``).
    dialect: str = "v1"


def split_path(raw_path: bytes) -> list[str]:
    """Raw path segments after the leading slash, without a trailing empty one."""
    text = raw_path.decode("utf-8", "replace")
    if text.endswith("/"):
        text = text[:-1]
    return text.split("/")[1:] if text.startswith("/") else text.split("/")


def match(segments: list[str]) -> Match | None:
    """The route for the raw segments after ``/v1``, with decoded parameters."""
    for pattern, methods in ROUTES:
        if len(pattern) != len(segments):
            continue
        params: dict[str, str] = {}
        for expected, raw in zip(pattern, segments, strict=True):
            if expected == "{value}":
                params["value"] = unquote_plus(raw)
            elif expected == "{field}":
                params["field"] = unquote(raw)
                if params["field"] not in ("id", "key"):
                    break
            elif unquote(raw) != expected:
                break
        else:
            return Match(methods, params, pattern)
    return None


def route(segments: list[str]) -> Match | None:
    """The route of a whole raw path (``/v1/...`` or an InfluxDB one), or None."""
    if segments[:1] == [API_PREFIX]:
        return match(segments[1:])
    path = tuple(unquote(s) for s in segments)
    methods = INFLUX_ROUTES.get(path)
    if methods is not None:
        return Match(methods, {}, path, "influx")
    methods = PROMETHEUS_ROUTES.get(path)
    return None if methods is None else Match(methods, {}, path, "prometheus")


def is_influx(segments: list[str]) -> bool:
    """Whether a path is InfluxDB's (its errors are answered as InfluxDB answers them)."""
    return segments in INFLUX_PUBLIC or tuple(unquote(s) for s in segments) in INFLUX_ROUTES


def is_prometheus(segments: list[str]) -> bool:
    """Whether a path is one of Prometheus' remote storage routes."""
    return tuple(unquote(s) for s in segments) in PROMETHEUS_ROUTES


def error_renderer(segments: list[str]) -> Callable[[HTTPError], Response]:
    """How errors are answered on this path: InfluxDB's JSON, or our plain text (on the
    Prometheus routes with a rate limit's 429 as a 503, ``prometheus_write.prometheus_error``)."""
    if is_influx(segments):
        return influx.influx_error
    if is_prometheus(segments):
        return prometheus_write.prometheus_error
    return error_response
