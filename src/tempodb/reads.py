"""The 1.0 reads without I/O (``Client.read_segment`` and the others): their requests, and
pages that know the request of the next one.

A paged read answers with a ``Link: </v1/...&cursor=...>; rel="next"`` header while more
remain; :class:`Page` carries the items of one answer and the request that follows the link,
so a driver iterates with::

    request = reads.segment(...)
    while request is not None:
        page = send(request)
        yield from page.items
        request = page.next
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import parse_qsl

from tempodb.objects import DataPoint, Found, MultiPoint, Series, Summary
from tempodb.protocol import (
    Params,
    Request,
    Timestamp,
    filter_params,
    loads,
    segment,
)
from tempodb.timeutil import to_wire

T = TypeVar("T")

#: Items per page unless asked otherwise (the 1.0 clients sent 1000 or 5000).
DEFAULT_LIMIT = 5000


@dataclass(frozen=True)
class Page(Generic[T]):
    """The items of one answer, and the request of the next page (None on the last)."""

    items: list[T]
    next: Request[Page[T]] | None


def paged(path: str, params: Params, items: Callable[[Any], list[T]]) -> Request[Page[T]]:
    """A GET whose answer is a page: ``items`` reads the items from the decoded JSON."""

    def parse(status: int, body: bytes, link: str | None) -> Page[T]:
        following = None if link is None else paged(*_link_target(link), items)
        return Page(items(loads(body)), following)

    return Request("GET", path, _unused, params, parse_page=parse)


def _unused(status: int, body: bytes) -> Any:  # a paged request is parsed by parse_page
    raise AssertionError("a paged request is parsed by parse_page")


def _link_target(link: str) -> tuple[str, Params]:
    """The path (after ``/v1``) and parameters of a ``Link: <...>; rel="next"`` header."""
    target = link[link.index("<") + 1 : link.index(">")]
    path, _, query = target.partition("?")
    return path.removeprefix("/v1"), parse_qsl(query, keep_blank_values=True)


def _points(body: Any) -> list[DataPoint]:
    return [DataPoint.from_json(p) for p in body["data"]]


def _multi_points(body: Any) -> list[MultiPoint]:
    return [MultiPoint.from_json(p) for p in body["data"]]


def _found(body: Any) -> list[Found]:
    return [Found.from_json(f) for f in body["data"]]


def _series(body: Any) -> list[Series]:
    return [Series.from_json(s) for s in body]


def _range(start: Timestamp, end: Timestamp, tz: str, limit: int | None) -> Params:
    params = [("start", to_wire(start)), ("end", to_wire(end))]
    if tz:
        params.append(("tz", tz))
    if limit is not None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        params.append(("limit", str(limit)))
    return params


def _shape(
    rollup_period: str, rollup_fold: str, interpolation_period: str, interpolation_function: str
) -> Params:
    params: Params = []
    if rollup_period:
        params.append(("rollup.period", rollup_period))
    if rollup_fold:
        params.append(("rollup.fold", rollup_fold))
    if interpolation_period or interpolation_function:
        params.append(("interpolation.period", interpolation_period))
        params.append(("interpolation.function", interpolation_function))
    return params


def _series_path(series: str, by_id: bool, action: str) -> str:
    return f"/series/{'id' if by_id else 'key'}/{segment(series)}/{action}/"


def segment_read(
    series: str,
    start: Timestamp,
    end: Timestamp,
    *,
    by_id: bool,
    shape: Params,
    tz: str,
    limit: int | None,
) -> Request[Page[DataPoint]]:
    """``GET /series/{key|id}/{v}/segment/``."""
    path = _series_path(series, by_id, "segment")
    return paged(path, _range(start, end, tz, limit) + shape, _points)


def rollups(
    series: str,
    start: Timestamp,
    end: Timestamp,
    *,
    by_id: bool,
    period: str,
    folds: Sequence[str],
    tz: str,
    limit: int | None,
) -> Request[Page[MultiPoint]]:
    """``GET /series/{key|id}/{v}/data/rollups/segment/``."""
    params = [*_range(start, end, tz, limit), ("rollup.period", period)]
    params += [("rollup.fold", fold) for fold in folds]
    return paged(_series_path(series, by_id, "data/rollups/segment"), params, _multi_points)


def find(
    series: str,
    start: Timestamp,
    end: Timestamp,
    *,
    by_id: bool,
    function: str,
    period: str,
    tz: str,
    limit: int | None,
) -> Request[Page[Found]]:
    """``GET /series/{key|id}/{v}/find/``."""
    params = _range(start, end, tz, limit)
    params += [("predicate.function", function), ("predicate.period", period)]
    return paged(_series_path(series, by_id, "find"), params, _found)


def summary(
    series: str, start: Timestamp, end: Timestamp, *, by_id: bool, tz: str
) -> Request[Summary]:
    """``GET /series/{key|id}/{v}/summary/``: count, sum, mean, min, max, stddev."""

    def parse(status: int, body: bytes) -> Summary:
        return Summary.from_json(loads(body)["summary"])

    return Request(
        "GET", _series_path(series, by_id, "summary"), parse, _range(start, end, tz, None)
    )


def aggregate(
    start: Timestamp,
    end: Timestamp,
    *,
    fold: str,
    filters: Params,
    shape: Params,
    tz: str,
    limit: int | None,
) -> Request[Page[DataPoint]]:
    """``GET /segment/``: the matching series folded into one."""
    params = [*_range(start, end, tz, limit), ("aggregation.fold", fold), *shape, *filters]
    return paged("/segment/", params, _points)


def multi(
    start: Timestamp,
    end: Timestamp,
    *,
    filters: Params,
    shape: Params,
    tz: str,
    limit: int | None,
) -> Request[Page[MultiPoint]]:
    """``GET /multi/``: the matching series side by side."""
    return paged("/multi/", _range(start, end, tz, limit) + shape + filters, _multi_points)


def series_pages(filters: Params, limit: int) -> Request[Page[Series]]:
    """``GET /series/?limit=N``: the listing page by page."""
    return paged("/series/", [*filters, ("limit", str(limit))], _series)


def filters(
    ids: Sequence[str] | None,
    keys: Sequence[str] | None,
    tags: Sequence[str] | None,
    attributes: Mapping[str, str] | None,
) -> Params:
    """Series filters as query parameters (as the 0.5 reads send them)."""
    return filter_params(ids, keys, tags, attributes)


shape = _shape
