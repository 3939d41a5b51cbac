"""The 1.0 reads (``../shared/spec/tempodb-1.0-api.md``): segments of one series (raw, rolled
up, interpolated), the multi-fold rollup, the summary, find, the aggregate of many series,
the side-by-side multi read, and the paged series listing's page.

Every read is paged (``limit``, ``Link: rel="next"``, :mod:`tempodb.server.paging`) and
streamed: the body is rendered piece by piece, so that memory stays about one window of
points.  The numbers come from the one fold engine (:mod:`tempodb.folds`,
:func:`tempodb.rollup.rollup_folds`, :mod:`tempodb.interpolate`), in the spec's order:
interpolation, then the fold across series, then the rollup.  Items are rendered with
numpy from byte-string columns, never one Python object per point.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from tempodb.folds import FIND_FUNCTIONS, find_groups, parse_fold
from tempodb.interpolate import parse_interpolation
from tempodb.rollup import (
    Folded,
    Interval,
    SummaryParts,
    bucket_starts,
    next_boundaries,
    parse_interval,
    rollup_folds,
)
from tempodb.server import retention
from tempodb.server.context import Context, parse_filter
from tempodb.server.http import JSON_TYPE, Request, Response, bad_request, json_response
from tempodb.server.paging import (
    Arrays,
    Interpolation,
    Source,
    decode_cursor,
    next_link,
    page,
    parse_limit,
)
from tempodb.server.points import STREAM_SPAN_MS
from tempodb.server.wire import number_texts, parse_range, render_points, series_json
from tempodb.storage.base import SeriesRecord
from tempodb.zones import MS_PER_DAY, Zone, excerpt, get_zone

I64 = npt.NDArray[np.int64]
Texts = npt.NDArray[np.bytes_]

_PERIOD_HELP = "an ISO 8601 period such as PT5M, PT1H, P1D, P1W, P1M, or 5min, 1hour, 1day"


# -- parameters ------------------------------------------------------------------------------


def _period(request: Request, name: str) -> Interval | None:
    text = request.query.get(name)
    if text is None:
        return None
    try:
        return parse_interval(text)
    except ValueError:
        raise bad_request(f"Invalid {name}: {excerpt(text)} ({_PERIOD_HELP})") from None


def _fold(text: str, name: str) -> str:
    try:
        return parse_fold(text)
    except ValueError as exc:
        raise bad_request(f"Invalid {name}: {str(exc).removeprefix('Invalid fold: ')}") from None


@dataclass(frozen=True)
class ReadParams:
    """The common parameters of the 1.0 reads."""

    start: int
    end: int
    #: Where this page starts: the cursor's position, else ``start``.
    resume: int
    zone: Zone
    limit: int | None
    rollup: Interval | None
    folds: tuple[str, ...]
    interpolation: Interpolation | None

    @staticmethod
    def parse(request: Request, *, many_folds: bool = False) -> ReadParams:
        query = request.query
        start, end = parse_range(query)
        try:
            zone = get_zone(query.get("tz"))
        except ValueError as exc:
            raise bad_request(str(exc)) from None
        limit = parse_limit(request)
        rollup = _period(request, "rollup.period")
        names = query.get_all("rollup.fold")
        folds = tuple(dict.fromkeys(_fold(name, "rollup.fold") for name in names))
        if rollup is None and folds:
            raise bad_request("rollup.fold needs rollup.period (such as PT1H)")
        if many_folds and (rollup is None or not folds):
            raise bad_request("Missing required parameters: rollup.period and rollup.fold")
        if len(folds) > 1 and not many_folds:
            raise bad_request(
                "Several rollup.fold values: this read takes one "
                "(data/rollups/segment takes several)"
            )
        if rollup is not None and not folds:
            folds = ("mean",)
        function = query.get("interpolation.function")
        period = _period(request, "interpolation.period")
        interpolation = None
        if (function is None) != (period is None):
            raise bad_request("interpolation.function and interpolation.period go together")
        if function is not None and period is not None:
            try:
                interpolation = Interpolation(parse_interpolation(function), period)
            except ValueError as exc:
                raise bad_request(str(exc)) from None
        resume = start
        position = decode_cursor(request)
        if position is not None:
            if not isinstance(position, int) or not start <= position <= end:
                raise bad_request("Invalid cursor: it lies outside [start, end)")
            resume = position
        return ReadParams(start, end, resume, zone, limit, rollup, folds, interpolation)

    def source(self, ctx: Context, records: list[SeriesRecord], group: Interval | None) -> Source:
        span = self.end - self.start
        cache = group is not None or span <= STREAM_SPAN_MS
        # A whole answer starts with a month (what a 0.5 read holds at once), or with what
        # the store's estimate of the range's points says fits a window; a page with a day,
        # as it may need only a few points.
        first = min(span, STREAM_SPAN_MS) if self.limit is None else MS_PER_DAY
        return Source(
            ctx,
            records,
            self.start,
            self.end,
            self.zone,
            group,
            self.interpolation,
            cache,
            max(first, 60_000),
            # Raw items are points (or timestamps of several series): a page needs about
            # ``limit`` of each series' points; buckets hold unknown numbers.
            None if self.limit is None or group is not None else (self.limit + 1) * len(records),
            estimate=self.limit is None,
        )

    def head(self) -> dict[str, Any]:
        """The ``rollup``, ``interpolation`` and ``tz`` members of an answer."""
        rollup = None
        if self.rollup is not None:
            rollup = {"fold": self.folds[0], "period": self.rollup.iso}
        interpolation = None
        if self.interpolation is not None:
            interpolation = {
                "function": self.interpolation.function,
                "period": self.interpolation.period.iso,
            }
        return {"rollup": rollup, "interpolation": interpolation, "tz": self.zone.name}


# -- rendering -------------------------------------------------------------------------------


def stamps(zone: Zone, ts: I64) -> Texts:
    """ISO texts of instants in ``zone``, as a byte-string column."""
    if ts.size == 0:
        return np.zeros(0, "S1")
    matrix = zone.format_ascii(ts)
    if matrix is not None:
        return matrix.view(f"S{matrix.shape[1]}").ravel()
    return np.array(zone.format(ts), dtype=np.bytes_)


def numbers(values: npt.NDArray[np.float64], is_int: npt.NDArray[np.bool_]) -> Texts:
    """JSON numbers (integers where written as one, null for NaN) as a byte-string column."""
    if values.size == 0:
        return np.zeros(0, "S1")
    return np.array(number_texts(values, is_int)[1:-1].split(b","), dtype=np.bytes_)


def join(*columns: Texts | bytes) -> bytes:
    """Byte-string columns (and constant pieces) concatenated row by row, rows joined by
    commas: the inside of a JSON array."""
    rows: Any = None
    for column in columns:
        rows = column if rows is None else np.char.add(rows, column)
    return b",".join(rows.tolist()) if rows is not None and np.size(rows) else b""


def _stream(head: dict[str, Any], pieces: Iterator[bytes]) -> Iterator[bytes]:
    """``head`` with a ``data`` array of the pieces' items appended, in parts."""
    yield orjson.dumps(head)[:-1] + b',"data":['
    separator = b""
    for body in pieces:
        if body:
            yield separator + body
            separator = b","
    yield b"]}"


def paged(
    request: Request,
    params: ReadParams,
    source: Source,
    head: dict[str, Any],
    render: Callable[[list[Arrays]], bytes],
) -> Response:
    """The answer of a paged read: the page's items rendered piece by piece, a Link to the
    next page when one follows."""
    following, pieces = page(source, params.resume, params.limit)
    headers = {} if following is None else next_link(request, following)
    body = _stream(head, (render(piece) for piece in pieces))
    return Response(200, b"", JSON_TYPE, headers, stream=body)


def _rolled(params: ReadParams, arrays: Arrays) -> Arrays:
    """One series rolled up with the first fold (or as it is without a rollup)."""
    if params.rollup is None:
        return arrays
    folded = rollup_folds(
        *arrays,
        interval=params.rollup,
        folds=params.folds[:1],
        zone=params.zone,
        start_ms=params.start,
    )[0]
    return folded.ts, folded.values, folded.is_int


def _points(zone: Zone, arrays: Arrays) -> bytes:
    ts, vals, ints = arrays
    return render_points(zone, ts, vals, ints)[1:-1] if ts.size else b""


def _tiered(
    ctx: Context, read: ReadParams, series: SeriesRecord, folds: tuple[str, ...]
) -> retention.Tiered | None:
    """The rollup from the 15-minute tier when the range has expired in part (400 when the
    tier cannot answer it), else None: the read goes on from the raw points."""
    if ctx.retention is None or ctx.retention.of(ctx.db.id) is None or read.rollup is None:
        return None
    found = retention.read(
        ctx, series, read.start, read.end, interval=read.rollup, folds=folds, zone=read.zone
    )
    if not isinstance(found, retention.Tiered):
        return None
    if read.interpolation is not None:
        raise bad_request(
            "Cannot interpolate this range: part of it has expired and only its 15-minute "
            "summaries are kept (a rollup without interpolation is answered from them)"
        )
    return found


def _tiered_page(
    request: Request,
    read: ReadParams,
    found: retention.Tiered,
    head: dict[str, Any],
    render: Callable[[list[Any]], bytes],
) -> Response:
    """A paged answer of tier-answered buckets: those from the page's position, at most
    ``limit``, with a Link to the next when more remain."""
    labels = found.folded[0].ts
    # The first bucket's label may precede the start (its boundary is before it).
    first_page = read.resume == read.start
    lo = 0 if first_page else int(np.searchsorted(labels, read.resume, side="left"))
    hi = labels.size if read.limit is None else min(labels.size, lo + read.limit)
    headers = {} if hi >= labels.size else next_link(request, int(labels[hi]))
    page_folds = [Folded(f.ts[lo:hi], f.values[lo:hi], f.is_int[lo:hi]) for f in found.folded]
    body = _stream({**head, "tier": found.marker(read.zone)}, iter([render(page_folds)]))
    return Response(200, b"", JSON_TYPE, headers, stream=body)


# -- handlers --------------------------------------------------------------------------------


def segment(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """``GET /series/{id|key}/{v}/segment/`` (also ``.../data/segment/``)."""
    series = ctx.series(params["field"], params["value"])
    read = ReadParams.parse(request)
    head = {"series": series_json(series), **read.head()}
    found = _tiered(ctx, read, series, read.folds[:1])
    if found is not None:

        def rolled(folds: list[Folded]) -> bytes:
            return _points(read.zone, (folds[0].ts, folds[0].values, folds[0].is_int))

        return _tiered_page(request, read, found, head, rolled)
    return paged(
        request,
        read,
        read.source(ctx, [series], read.rollup),
        head,
        lambda piece: _points(read.zone, _rolled(read, piece[0])),
    )


def rollups(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """``GET /series/{id|key}/{v}/data/rollups/segment/``: several folds per bucket."""
    series = ctx.series(params["field"], params["value"])
    read = ReadParams.parse(request, many_folds=True)
    assert read.rollup is not None
    head = {
        "series": series_json(series),
        "rollup": {"folds": list(read.folds), "period": read.rollup.iso},
        "tz": read.zone.name,
    }
    interval = read.rollup

    def render(piece: list[Arrays]) -> bytes:
        folded = rollup_folds(
            *piece[0], interval=interval, folds=read.folds, zone=read.zone, start_ms=read.start
        )
        return render_folds(folded)

    def render_folds(folded: list[Folded]) -> bytes:
        if not folded[0].ts.size:
            return b""
        columns: list[Texts | bytes] = [b'{"t":"', stamps(read.zone, folded[0].ts), b'","v":{']
        for index, (name, result) in enumerate(zip(read.folds, folded, strict=True)):
            columns += [
                ("," if index else "").encode() + orjson.dumps(name) + b":",
                numbers(result.values, result.is_int),
            ]
        return join(*columns, b"}}")

    found = _tiered(ctx, read, series, read.folds)
    if found is not None:
        return _tiered_page(request, read, found, head, render_folds)
    return paged(request, read, read.source(ctx, [series], interval), head, render)


def find(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """``GET /series/{id|key}/{v}/find/``: the point ``predicate.function`` picks in each
    ``predicate.period`` interval (ties: the earliest)."""
    series = ctx.series(params["field"], params["value"])
    read = ReadParams.parse(request)
    function = (request.query.require("predicate.function")).lower()
    if function not in FIND_FUNCTIONS:
        raise bad_request(
            f"Invalid predicate.function: {excerpt(function)} (one of {', '.join(FIND_FUNCTIONS)})"
        )
    period = _period(request, "predicate.period")
    if period is None:
        raise bad_request(f"Missing required parameter: predicate.period ({_PERIOD_HELP})")
    head = {
        "series": series_json(series),
        "predicate": {"function": function, "period": period.iso},
        "tz": read.zone.name,
    }
    zone = read.zone

    def render(piece: list[Arrays]) -> bytes:
        ts, vals, ints = piece[0]
        if not ts.size:
            return b""
        labels, starts = bucket_starts(ts, interval=period, zone=zone, start_ms=read.start)
        picked = find_groups(vals, starts, function)
        ends = next_boundaries(labels, period, zone, start_ms=read.start)
        return join(
            b'{"interval":{"start":"',
            stamps(zone, labels),
            b'","end":"',
            stamps(zone, ends),
            b'"},"found":{"t":"',
            stamps(zone, ts[picked]),
            b'","v":',
            numbers(vals[picked], ints[picked]),
            b"}}",
        )

    return paged(request, read, read.source(ctx, [series], period), head, render)


def summary(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """``GET /series/{id|key}/{v}/summary/``: count, sum, mean, min, max and stddev of the
    points in ``[start, end)``, read window by window."""
    series = ctx.series(params["field"], params["value"])
    read = ReadParams.parse(request)
    tiered = _tiered(
        ctx, dataclasses.replace(read, rollup=Interval(15, "minute")), series, ("count",)
    )
    if tiered is not None:
        found = tiered.summary
    else:
        parts = SummaryParts()
        for _, window in read.source(ctx, [series], None).windows(read.start, read.end):
            parts.add(window[0][1], window[0][2])
        found = parts.result()
    names = ("count", "sum", "mean", "min", "max", "stddev")
    figures = {name: found.get(name) for name in names} if found else {}
    if not found:
        figures = {"count": 0, "sum": 0, "mean": None, "min": None, "max": None, "stddev": None}
    answer: dict[str, Any] = {
        "series": series_json(series),
        "summary": figures,
        "tz": read.zone.name,
        "start": read.zone.format_one(read.start),
        "end": read.zone.format_one(read.end),
    }
    if tiered is not None:
        answer["tier"] = tiered.marker(read.zone)
    return json_response(answer)


def aggregate_segment(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """``GET /segment/`` (also ``/data/segment/``): the series of a filter folded into one
    with ``aggregation.fold`` at each timestamp, then rolled up if asked."""
    read = ReadParams.parse(request)
    fold = _fold(request.query.require("aggregation.fold"), "aggregation.fold")
    found = ctx.store.find_series(ctx.db.id, parse_filter(request.query))
    head = {"aggregation": {"fold": fold}, **read.head()}

    def render(piece: list[Arrays]) -> bytes:  # the one series the source folds
        return _points(read.zone, _rolled(read, piece[0]))

    source = dataclasses.replace(read.source(ctx, found, read.rollup), fold=fold)
    return paged(request, read, source, head, render)


def multi(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """``GET /multi/``: the series of a filter side by side, one item per timestamp present
    in any of them, ``v`` an object by series key."""
    read = ReadParams.parse(request)
    found = ctx.store.find_series(ctx.db.id, parse_filter(request.query))
    head = {"series": [series_json(s) for s in found], **read.head()}
    names = [orjson.dumps(s.key) + b":" for s in found]

    def render(piece: list[Arrays]) -> bytes:
        rolled = [_rolled(read, arrays) for arrays in piece]
        present = [arrays[0] for arrays in rolled if arrays[0].size]
        if not present:
            return b""
        times = np.unique(np.concatenate(present))
        objects = np.full(times.size, b"", dtype=object)
        filled = np.zeros(times.size, np.bool_)
        for name, (ts, vals, ints) in zip(names, rolled, strict=True):
            if not ts.size:
                continue
            at = np.searchsorted(times, ts)
            items = np.char.add(name, numbers(vals, ints)).astype(object)
            objects[at] = objects[at] + np.where(filled[at], b",", b"").astype(object) + items
            filled[at] = True
        rows = np.char.add(
            np.char.add(np.char.add(b'{"t":"', stamps(read.zone, times)), b'","v":{'),
            objects.astype(np.bytes_),
        )
        return join(rows, b"}}")

    return paged(request, read, read.source(ctx, found, read.rollup), head, render)
