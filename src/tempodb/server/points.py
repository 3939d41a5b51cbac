"""Data endpoints: reads with rollups (E6, E7), writes and increments (E8-E13), range
deletes (E14) and single-value lookups (E15, E16)."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from tempodb.contract import DIRECTIONS
from tempodb.rollup import (
    Interval,
    SummaryParts,
    auto_interval,
    parse_function,
    parse_interval,
    rollup,
    summarize,
)
from tempodb.server import idempotency, retention
from tempodb.server.context import Context, auto_tags, parse_filter
from tempodb.server.http import (
    JSON_TYPE,
    HTTPError,
    Request,
    Response,
    bad_request,
    data_response,
    empty_response,
    json_response,
)
from tempodb.server.series import conflict
from tempodb.server.wire import (
    MultiBatch,
    columns_multi,
    columns_points,
    key_error,
    now_ms,
    parse_bulk,
    parse_multi_body,
    parse_points_body,
    parse_range,
    parse_time_param,
    points_data,
    render_points,
    series_json,
    summary_moments,
)
from tempodb.storage.base import (
    AlreadyApplied,
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    KeyConflict,
    SeriesRecord,
    SeriesRef,
    TierCut,
    TooManyNewSeries,
    WriteBatch,
)
from tempodb.zones import Zone, excerpt, get_zone

#: Without ``function``, rollups take the mean (spec Q14).
DEFAULT_FUNCTION = "mean"


# -- reads -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReadParams:
    start: int
    end: int
    interval: Interval | None
    function: str
    zone: Zone

    @staticmethod
    def parse(request: Request) -> ReadParams:
        query = request.query
        start, end = parse_range(query)
        try:
            text = query.get("interval")
            interval = parse_interval(text) if text else auto_interval(start, end)
            function = parse_function(query.get("function") or DEFAULT_FUNCTION)
            zone = get_zone(query.get("tz"))
        except ValueError as exc:
            raise bad_request(str(exc)) from None
        return ReadParams(start, end, interval, function, zone)


def dataset_json(
    ctx: Context, series: SeriesRecord, params: ReadParams, *, arrays: bool = False
) -> dict[str, Any]:
    """A DataSet: the points in [start, end) (rolled up if asked) and their summary; with
    ``arrays``, the points as ``wire.PointArrays`` instead of rendered JSON."""
    zone = params.zone
    if params.interval is not None:
        found = retention.read(
            ctx,
            series,
            params.start,
            params.end,
            interval=params.interval,
            folds=(params.function,),
            zone=zone,
        )
        if isinstance(found, retention.Tiered):
            return tiered_json(series, params, found, arrays=arrays)
        points = found
    else:
        points = ctx.store.read_points(ctx.db.id, series.id, params.start, params.end)
    if ctx.metrics is not None:
        ctx.metrics.read(len(points))
    if params.interval is None:
        data = points_data(zone, points.ts, points.values, points.is_int, arrays=arrays)
        rollup_json = None
    else:
        folded = rollup(
            points.ts,
            points.values,
            points.is_int,
            interval=params.interval,
            function=params.function,
            zone=zone,
            start_ms=params.start,
        )
        data = points_data(zone, folded.ts, folded.values, folded.is_int, arrays=arrays)
        rollup_json = {
            "interval": params.interval.iso,
            "function": params.function,
            "tz": zone.name,
        }
    return {
        "series": series_json(series),
        "start": zone.format_one(params.start),
        "end": zone.format_one(params.end),
        "data": data,
        "rollup": rollup_json,
        "summary": summarize(points.values, points.is_int, summary_moments),
    }


def tiered_json(
    series: SeriesRecord, params: ReadParams, found: retention.Tiered, *, arrays: bool = False
) -> dict[str, Any]:
    """A rolled-up DataSet answered with the 15-minute tier (``retention.read``)."""
    zone = params.zone
    assert params.interval is not None
    folded = found.folded[0]
    return {
        "series": series_json(series),
        "start": zone.format_one(params.start),
        "end": zone.format_one(params.end),
        "data": points_data(zone, folded.ts, folded.values, folded.is_int, arrays=arrays),
        "rollup": {"interval": params.interval.iso, "function": params.function, "tz": zone.name},
        "summary": found.summary,
        "tier": found.marker(zone),
    }


#: Raw reads of longer ranges are streamed (read, rendered and sent window by window).
STREAM_SPAN_MS = 31 * 86_400_000
#: About this many points per window of a streamed read.
STREAM_WINDOW_POINTS = 1 << 16


def read_series(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """E7 ``GET /series/{id|key}/{v}/data/``."""
    series = ctx.series(params["field"], params["value"])
    read = ReadParams.parse(request)
    if read.interval is None and read.end - read.start > STREAM_SPAN_MS:
        return Response(200, b"", JSON_TYPE, stream=stream_dataset(ctx, series, read))
    return json_response(dataset_json(ctx, series, read))


def stream_dataset(ctx: Context, series: SeriesRecord, params: ReadParams) -> Iterator[bytes]:
    """The raw DataSet of ``dataset_json``, produced window by window, so that memory stays
    bounded however long the range: each window is one read (a consistent view of that
    window; a write landing between two windows may show in the later one only), and the
    summary is combined from the windows (``SummaryParts``)."""
    zone = params.zone
    head = orjson.dumps(
        {
            "series": series_json(series),
            "start": zone.format_one(params.start),
            "end": zone.format_one(params.end),
        }
    )
    yield head[:-1] + b',"data":['
    summary = SummaryParts(summary_moments)
    separator = b""
    span, low = 86_400_000, params.start
    while low < params.end:
        high = min(params.end, low + span)
        points = ctx.store.read_points(ctx.db.id, series.id, low, high, cache=False)
        if len(points):
            summary.add(points.values, points.is_int)
            yield separator + render_points(zone, points.ts, points.values, points.is_int)[1:-1]
            separator = b","
        # The next window: about STREAM_WINDOW_POINTS points at the density just seen.
        scale = STREAM_WINDOW_POINTS / max(len(points), 1)
        span = max(60_000, int(span * min(8.0, max(0.125, scale))))
        low = high
    yield b'],"rollup":null,"summary":' + orjson.dumps(summary.result()) + b"}"


def read_many(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """E6 ``GET /data/``: one DataSet per matching series (all series without filters)."""
    read_params = ReadParams.parse(request)
    found = ctx.store.find_series(ctx.db.id, parse_filter(request.query))
    arrays = request.arrays
    return data_response([dataset_json(ctx, s, read_params, arrays=arrays) for s in found], arrays)


# -- writes ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class WriteJob:
    """A parsed write: the points, whether they add up, and the answer once stored."""

    batch: WriteBatch
    increment: bool
    response: Response
    #: A multi write answers per element (207) when some fail, at parsing or in the store.
    multi: MultiBatch | None = None

    def run(self, ctx: Context) -> Response:
        """Store the points (on the calling thread) and answer: points older than the
        database's retention are refused first (``retained``); a keyed write is applied at
        most once per key (``server/idempotency.py``)."""
        job = self.retained(ctx)
        if job is not self:
            return job.run(ctx)
        key = self.batch.idempotency
        if key is None:
            return self._apply(ctx)
        with ctx.keys_in_flight.hold(ctx.db.id, key.key):
            try:
                return self._apply(ctx)
            except AlreadyApplied as done:
                response = self.answer(done.skipped)
                response.headers[idempotency.REPLAYED_HEADER] = "true"
                return response
            except IdempotencyKeyReused:
                raise idempotency.reused(key.key) from None
            except IdempotencyKeyInUse:
                raise idempotency.in_use(key.key) from None

    def _apply(self, ctx: Context) -> Response:
        if ctx.options.auto_tag:
            _create_tagged(ctx, self.batch.refs)
        try:
            skipped = ctx.store.write_points(
                ctx.db.id, self._bounded(ctx), increment=self.increment
            )
        except KeyConflict as exc:
            raise conflict(exc.key) from None
        except TooManyNewSeries as exc:
            raise too_many_new_series(exc) from None
        return self.stored(ctx, skipped)

    def submit(self, ctx: Context) -> Future[tuple[int, ...]]:
        """Queue the points with the store without waiting (``Store.submit_write``); once the
        future is done, ``outcome`` answers.  Not for auto-tagging servers."""
        return ctx.store.submit_write(ctx.db.id, self._bounded(ctx), increment=self.increment)

    def outcome(self, ctx: Context, future: Future[tuple[int, ...]]) -> Response:
        """The answer to a submitted job whose future is done."""
        try:
            skipped = future.result()
        except KeyConflict as exc:
            raise conflict(exc.key) from None
        except TooManyNewSeries as exc:
            raise too_many_new_series(exc) from None
        return self.stored(ctx, skipped)

    def retained(self, ctx: Context) -> WriteJob:
        """The job without points older than the database's retention (``retention``)."""
        return retention.refuse_expired(ctx, self)

    def _bounded(self, ctx: Context) -> WriteBatch:
        """The batch with the server's bound on the series one request creates."""
        limit = ctx.options.max_series_per_request
        if len(self.batch.refs) <= limit:  # cannot create more than it names
            return self.batch
        return dataclasses.replace(self.batch, max_new_series=limit)

    def stored(self, ctx: Context, skipped: tuple[int, ...]) -> Response:
        """The answer once the store has written the batch but the ``skipped`` refs."""
        if ctx.metrics is not None:
            kind = "increment" if self.increment else "write"
            written = len(self.batch)
            if skipped:
                written -= int(np.isin(self.batch.ref_index, skipped).sum())
            ctx.metrics.written(kind, written)
        return self.answer(skipped)

    def answer(self, skipped: tuple[int, ...]) -> Response:
        """The answer to the write once the store has written all but the ``skipped`` refs."""
        if self.multi is not None and (skipped or self.multi.failed):
            return json_response(self.multi.multistatus(skipped), status=207)
        return self.response


class WriteHandler:
    """A write endpoint: ``parse`` reads the request into a :class:`WriteJob` (400 when it is
    invalid); calling the handler parses and stores it.  The app may instead parse and
    submit small writes from its event loop (``WriteJob.submit``).  ``columnar``: ``parse``
    takes a body handed over as arrays (``Request.columns``, ``wire.PointColumns``)."""

    def __init__(
        self, parse: Callable[[Request, dict[str, str]], WriteJob], *, columnar: bool = False
    ) -> None:
        self.parse = parse
        self.columnar = columnar
        self.__doc__ = parse.__doc__

    def __call__(self, ctx: Context, request: Request, params: dict[str, str]) -> Response:
        key = idempotency.request_key(request, ctx.options.idempotency_ttl_ms)
        job = self.parse(request, params)
        if key is not None:
            job = dataclasses.replace(job, batch=dataclasses.replace(job.batch, idempotency=key))
        return job.run(ctx)


def too_many_new_series(exc: TooManyNewSeries) -> HTTPError:
    """400 for a write that would create more series than one request may."""
    return HTTPError(
        400,
        f"Too many new series in one request: this write would create {exc.count} "
        f"(at most {exc.limit} per request; write to fewer new series at once, or create "
        "them first with POST /v1/series/)",
        "too-many-series",
    )


def _create_tagged(ctx: Context, refs: Sequence[SeriesRef]) -> None:
    """With auto-tagging on, series that a write creates get their tags from the key (no
    more than one request may create)."""
    new = [
        ref.value
        for ref in refs
        if ref.field == "key" and ctx.store.lookup_series(ctx.db.id, "key", ref.value) is None
    ]
    limit = ctx.options.max_series_per_request
    if len(new) > limit:
        raise too_many_new_series(TooManyNewSeries(len(new), limit))
    for key in new:
        with contextlib.suppress(KeyConflict):  # a concurrent request made it: fine
            ctx.store.create_series(ctx.db.id, key, tags=auto_tags(key))


def _series_ref(params: dict[str, str]) -> SeriesRef:
    """The series a write addresses; an unknown id becomes the key of a new series, so ids
    must be valid keys too."""
    field, value = params["field"], params["value"]
    error = key_error(value)
    if error:
        raise bad_request(error if field == "key" else f"Invalid series id: {value!r}")
    return SeriesRef("id" if field == "id" else "key", value)


def _series_job(request: Request, params: dict[str, str], *, increment: bool) -> WriteJob:
    ref = _series_ref(params)
    batch = None if request.columns is None else columns_points(request.columns, ref)
    if batch is None:
        batch = parse_points_body(request.full_body(), request.json, ref)
    return WriteJob(batch, increment, empty_response())


def _bulk_job(request: Request, *, increment: bool) -> WriteJob:
    return WriteJob(parse_bulk(request.json()), increment, empty_response())


def _multi_job(request: Request, *, increment: bool) -> WriteJob:
    multi = None if request.columns is None else columns_multi(request.columns)
    if multi is None:
        multi = parse_multi_body(request.full_body(), request.json)
    return WriteJob(multi.batch, increment, empty_response(), multi)


def _write_series(request: Request, params: dict[str, str]) -> WriteJob:
    """E8 ``POST /series/{id|key}/{v}/data/``."""
    return _series_job(request, params, increment=False)


def _increment_series(request: Request, params: dict[str, str]) -> WriteJob:
    """E9 ``POST /series/{id|key}/{v}/increment/``."""
    return _series_job(request, params, increment=True)


def _write_bulk(request: Request, params: dict[str, str]) -> WriteJob:
    """E10 ``POST /data/``."""
    return _bulk_job(request, increment=False)


def _increment_bulk(request: Request, params: dict[str, str]) -> WriteJob:
    """E11 ``POST /increment/``."""
    return _bulk_job(request, increment=True)


def _write_multi(request: Request, params: dict[str, str]) -> WriteJob:
    """E12 ``POST /multi/``: 207 with a multistatus when some elements are invalid."""
    return _multi_job(request, increment=False)


def _increment_multi(request: Request, params: dict[str, str]) -> WriteJob:
    """E13 ``POST /multi/increment/``."""
    return _multi_job(request, increment=True)


write_series = WriteHandler(_write_series, columnar=True)
increment_series = WriteHandler(_increment_series, columnar=True)
write_bulk = WriteHandler(_write_bulk)
increment_bulk = WriteHandler(_increment_bulk)
write_multi = WriteHandler(_write_multi, columnar=True)
increment_multi = WriteHandler(_increment_multi, columnar=True)


# -- deletes and single values ---------------------------------------------------------------


def delete_range(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """E14 ``DELETE /series/{id|key}/{v}/data/``: ``[start, end)``, or the single point at
    ``start`` when ``start == end``."""
    series = ctx.series(params["field"], params["value"])
    start, end = parse_range(request.query)
    try:
        ctx.store.delete_points(ctx.db.id, series.id, start, max(end, start + 1))
    except TierCut as exc:
        raise bad_request(str(exc)) from None
    return empty_response()


@dataclass(frozen=True)
class SingleParams:
    ts: int
    direction: str
    zone: Zone

    @staticmethod
    def parse(request: Request) -> SingleParams:
        text = request.query.get("ts")  # optional since 1.0: now
        ts = now_ms() if text is None else parse_time_param(text, "ts")
        direction = (request.query.get("direction") or "exact").lower()
        if direction not in DIRECTIONS:
            raise bad_request(
                f"Invalid direction: {excerpt(direction)} (one of {', '.join(DIRECTIONS)})"
            )
        try:
            zone = get_zone(request.query.get("tz"))
        except ValueError as exc:
            raise bad_request(str(exc)) from None
        return SingleParams(ts, direction, zone)


def single_json(ctx: Context, series: SeriesRecord, params: SingleParams) -> dict[str, Any]:
    found = ctx.store.single_value(
        ctx.db.id,
        series.id,
        params.ts,
        params.direction,  # type: ignore[arg-type]
    )
    data = None
    if found is not None:
        if ctx.metrics is not None:
            ctx.metrics.read()
        ts, value = found
        data = {"t": params.zone.format_one(ts), "v": value}
    return {"series": series_json(series), "data": data}


def single_series(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """E15 ``GET /series/{id|key}/{v}/single/``."""
    series = ctx.series(params["field"], params["value"])
    return json_response(single_json(ctx, series, SingleParams.parse(request)))


def single_many(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """E16 ``GET /single/``: one SingleValue per matching series."""
    single_params = SingleParams.parse(request)
    found = ctx.store.find_series(ctx.db.id, parse_filter(request.query))
    return json_response([single_json(ctx, s, single_params) for s in found])
