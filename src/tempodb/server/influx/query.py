"""``GET``/``POST /query``: the InfluxQL of ``influxql`` over the line-protocol mapping, with
InfluxDB 1.x's JSON answers (``results``, ``statement_id``, ``series`` with ``name``, ``tags``,
``columns`` and ``values``).

The catalogue (measurements, tag keys and values, field keys) is read from the series'
attributes (``names``): every series with ``_measurement`` and ``_field``.  ``SELECT``
aggregates go through the rollup engine (``rollup.rollup``) in UTC with buckets aligned to
the epoch, as InfluxDB aligns them; points of several series in one group are folded
together, as InfluxDB folds them.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import numpy as np

from tempodb.rollup import Interval, rollup
from tempodb.server.context import Context
from tempodb.server.http import HTTPError, Request, Response, json_response
from tempodb.server.influx.influxql import (
    QueryError,
    Select,
    Show,
    Statement,
    TagCondition,
    parse_query,
)
from tempodb.server.influx.names import FIELD_ATTR, MEASUREMENT_ATTR
from tempodb.server.influx.write import VERSION_HEADERS
from tempodb.storage.base import SeriesFilter, SeriesRecord
from tempodb.timeutil import MAX_MS, MIN_MS
from tempodb.zones import get_zone

#: ``epoch`` values and their nanoseconds.
EPOCHS = {"ns": 1, "n": 1, "u": 1_000, "µ": 1_000, "ms": 10**6, "s": 10**9, "m": 60 * 10**9}
EPOCHS["h"] = 3600 * 10**9
_MS_PER_MINUTE = 60_000
#: At most this many buckets per series in one answer.
MAX_BUCKETS = 100_000


@dataclass(frozen=True)
class Entry:
    """One series of the mapping."""

    measurement: str
    field: str
    tags: dict[str, str]
    record: SeriesRecord


def query(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """``/query?q=...&db=&epoch=``: one result per statement."""
    text = request.query.get("q")
    form = dict(_form(request))
    if text is None:
        text = form.get("q")
    if not text:
        raise HTTPError(400, 'missing required parameter "q"')
    epoch = request.query.get("epoch") or form.get("epoch")
    if epoch is not None and epoch not in EPOCHS:
        raise HTTPError(400, f"invalid epoch {epoch[:20]!r}: one of ns, u, ms, s, m, h")
    try:
        statements = parse_query(text, time.time_ns())
    except QueryError as exc:
        raise HTTPError(400, f"error parsing query: {exc}") from None
    database = request.query.get("db") or form.get("db") or ctx.db.name or "tempodb"
    results = []
    for number, statement in enumerate(statements):
        result: dict[str, Any] = {"statement_id": number}
        series = run(ctx, statement, database, epoch)
        if series:
            result["series"] = series
        results.append(result)
    response = json_response({"results": results})
    response.headers.update(VERSION_HEADERS)
    return response


def _form(request: Request) -> list[tuple[str, str]]:
    media = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if request.method != "POST" or media != "application/x-www-form-urlencoded":
        return []
    return parse_qsl(request.body.decode("utf-8", "replace"))


def run(ctx: Context, statement: Statement, database: str, epoch: str | None) -> list[Any]:
    """The ``series`` of one statement's result."""
    if isinstance(statement, Select):
        return select(ctx, statement, epoch)
    return show(ctx, statement, database)


# -- the catalogue -------------------------------------------------------------------------------


def catalogue(ctx: Context, measurement: str | None = None) -> list[Entry]:
    """The series of the mapping (of one measurement), ordered by key."""
    flt = SeriesFilter(attributes={MEASUREMENT_ATTR: (measurement,)} if measurement else {})
    entries = []
    for record in ctx.store.find_series(ctx.db.id, flt):
        attributes = record.attributes
        name, field = attributes.get(MEASUREMENT_ATTR), attributes.get(FIELD_ATTR)
        if name is None or field is None:
            continue
        tags = {k: v for k, v in attributes.items() if k not in (MEASUREMENT_ATTR, FIELD_ATTR)}
        entries.append(Entry(name, field, tags, record))
    return entries


def _where(entries: Iterable[Entry], conditions: tuple[TagCondition, ...]) -> list[Entry]:
    return [e for e in entries if all(c.matches(e.tags) for c in conditions)]


def _page(values: list[Any], limit: int | None, offset: int) -> list[Any]:
    values = values[offset:]
    return values if limit is None else values[:limit]


def _by_measurement(entries: list[Entry]) -> dict[str, list[Entry]]:
    grouped: dict[str, list[Entry]] = {}
    for entry in entries:
        grouped.setdefault(entry.measurement, []).append(entry)
    return dict(sorted(grouped.items()))


def show(ctx: Context, show: Show, database: str) -> list[Any]:
    if show.what == "databases":
        return [{"name": "databases", "columns": ["name"], "values": [[database]]}]
    if show.what == "retention policies":
        columns = ["name", "duration", "shardGroupDuration", "replicaN", "default"]
        return [{"columns": columns, "values": [["autogen", "0s", "168h0m0s", 1, True]]}]
    entries = _where(catalogue(ctx, show.measurement), show.where)
    if show.what == "measurements":
        names = sorted({e.measurement for e in entries})
        if show.with_op is not None:
            names = [
                n
                for n in names
                if TagCondition("m", show.with_op, show.with_values[0]).matches({"m": n})
            ]
        names = _page(names, show.limit, show.offset)
        if not names:
            return []
        return [{"name": "measurements", "columns": ["name"], "values": [[n] for n in names]}]
    if show.what == "series":
        keys = sorted({_influx_series_key(e) for e in entries})
        keys = _page(keys, show.limit, show.offset)
        return [{"columns": ["key"], "values": [[k] for k in keys]}] if keys else []
    out = []
    for measurement, group in _by_measurement(entries).items():
        if show.what == "tag keys":
            rows: list[list[Any]] = [[k] for k in sorted({k for e in group for k in e.tags})]
            columns = ["tagKey"]
        elif show.what == "field keys":
            rows = [[f, "float"] for f in sorted({e.field for e in group})]
            columns = ["fieldKey", "fieldType"]
        else:  # tag values
            pairs = {(k, v) for e in group for k, v in e.tags.items() if _key_matches(show, k)}
            rows = [[k, v] for k, v in sorted(pairs)]
            columns = ["key", "value"]
        rows = _page(rows, show.limit, show.offset)
        if rows:
            out.append({"name": measurement, "columns": columns, "values": rows})
    return out


def _key_matches(show: Show, key: str) -> bool:
    if show.with_op == "IN":
        return key in show.with_values
    assert show.with_op is not None
    return TagCondition("k", show.with_op, show.with_values[0]).matches({"k": key})


def _influx_series_key(entry: Entry) -> str:
    def escape(text: str, special: str) -> str:
        for c in special:
            text = text.replace(c, "\\" + c)
        return text

    tags = "".join(f",{escape(k, ', =')}={escape(v, ', =')}" for k, v in sorted(entry.tags.items()))
    return escape(entry.measurement, ", ") + tags


# -- SELECT --------------------------------------------------------------------------------------


def select(ctx: Context, query: Select, epoch: str | None) -> list[Any]:
    """Aggregates per ``GROUP BY time()`` bucket (or over the whole range without it), or the
    raw values of fields."""
    start_ms = MIN_MS if query.start_ns is None else max(MIN_MS, -(-query.start_ns // 10**6))
    end_ms = MAX_MS if query.end_ns is None else min(MAX_MS, query.end_ns // 10**6)  # inclusive
    if end_ms < start_ms:
        return []
    if all(call.function == "" for call in query.calls):
        return select_raw(ctx, query, epoch, start_ms, end_ms)
    if query.interval_ns is None:  # one bucket, labelled with the lower bound (or 1970)
        step, offset = MAX_MS - MIN_MS + 1, 0
        first = 0 if query.start_ns is None else start_ms
        grid = np.array([first], np.int64)
    else:
        if query.interval_ns < 10**9 or query.interval_ns % 10**6 or query.offset_ns % 10**6:
            raise HTTPError(
                400,
                "not supported: GROUP BY time() intervals under 1s, or not whole milliseconds "
                "(and offsets that are not whole milliseconds)",
            )
        step = query.interval_ns // 10**6
        offset = query.offset_ns // 10**6
        first = (start_ms - offset) // step * step + offset
        last = (end_ms - offset) // step * step + offset
        if (last - first) // step + 1 > MAX_BUCKETS:
            raise HTTPError(
                400, f"too many buckets: at most {MAX_BUCKETS} per series (narrow the time range)"
            )
        grid = np.arange(first, last + 1, step, dtype=np.int64)
    fields = {call.field for call in query.calls}
    entries = [
        e for e in _where(catalogue(ctx, query.measurement), query.where) if e.field in fields
    ]
    group_tags = query.group_tags
    if query.group_all:
        group_tags = tuple(sorted({k for e in entries for k in e.tags}))
    groups: dict[tuple[str, ...], list[Entry]] = {}
    for entry in entries:
        key = tuple(entry.tags.get(tag, "") for tag in group_tags)
        groups.setdefault(key, []).append(entry)
    out = []
    minute = Interval(1, "minute")
    first_bucket = 0 if query.interval_ns is None else (first - offset) // step
    for key in sorted(groups):
        columns: list[list[Any]] = []
        seen = False
        for call in query.calls:
            ts, values, is_int = _points(ctx, groups[key], call.field, start_ms, end_ms + 1)
            seen = seen or ts.size > 0
            column: list[Any] = [None] * grid.size
            if call.function == "count":
                column = [0] * grid.size
            if ts.size:
                # Bucket k of InfluxDB (epoch-aligned, shifted by the offset) becomes the
                # engine's minute k counted from 1970-01-01T00:00Z: the engine folds it.
                buckets = (ts - offset) // step
                if query.interval_ns is None:
                    buckets = np.zeros(ts.size, np.int64)
                if buckets[-1] * _MS_PER_MINUTE > MAX_MS or buckets[0] * _MS_PER_MINUTE < MIN_MS:
                    raise HTTPError(
                        400, "GROUP BY time() interval too fine for these times (use 1m or more)"
                    )
                labels, folded, whole = _fold(call.function, buckets, values, is_int, minute)
                slots = labels - first_bucket
                for slot, value, exact in zip(
                    slots.tolist(), folded.tolist(), whole.tolist(), strict=True
                ):
                    if value == value:  # NaN: no value (the stddev of one point)
                        column[slot] = int(value) if exact else value
            columns.append(column)
        if not seen:
            continue
        if query.fill == "previous":
            columns = [_carried(column) for column in columns]
        rows = []
        for at, label in enumerate(grid.tolist()):
            row = [column[at] for column in columns]
            if query.fill == "none" and all(v is None for v in row):
                continue
            if isinstance(query.fill, float):
                fill = int(query.fill) if query.fill.is_integer() else query.fill
                row = [fill if v is None else v for v in row]
            rows.append([_time(label, epoch), *row])
        if query.descending:
            rows.reverse()
        rows = rows[query.row_offset :]
        if query.limit is not None:
            rows = rows[: query.limit]
        series: dict[str, Any] = {"name": query.measurement}
        if group_tags:
            series["tags"] = dict(zip(group_tags, key, strict=True))
        series["columns"] = ["time", *query.columns]
        series["values"] = rows
        out.append(series)
    out = out[query.series_offset :]
    if query.series_limit is not None:
        out = out[: query.series_limit]
    if query.descending:  # the series chosen, in descending order too (as InfluxDB does)
        out.reverse()
    return out


def select_raw(
    ctx: Context, query: Select, epoch: str | None, start_ms: int, end_ms: int
) -> list[Any]:
    """``SELECT f, g, tag FROM m``: a row per point time of each series, the fields' values
    there (null where a field has none) and the tags asked for; the series of a group merged
    in time order."""
    entries = _where(catalogue(ctx, query.measurement), query.where)
    fields = {e.field for e in entries}
    names = [call.field for call in query.calls]
    if not any(name in fields for name in names):
        return []
    group_tags = query.group_tags
    if query.group_all:
        group_tags = tuple(sorted({k for e in entries for k in e.tags}))
    # One table per group: (time, series tags) -> the row's values.
    groups: dict[tuple[str, ...], dict[tuple[int, tuple[tuple[str, str], ...]], list[Any]]] = {}
    for entry in entries:
        if entry.field not in names:
            continue
        key = tuple(entry.tags.get(tag, "") for tag in group_tags)
        table = groups.setdefault(key, {})
        tags = tuple(sorted(entry.tags.items()))
        points = ctx.store.read_points(ctx.db.id, entry.record.id, start_ms, end_ms + 1)
        for ts, value, whole in zip(
            points.ts.tolist(), points.values.tolist(), points.is_int.tolist(), strict=True
        ):
            row = table.get((ts, tags))
            if row is None:
                row = table[(ts, tags)] = [
                    None if name in fields else entry.tags.get(name) for name in names
                ]
            for at, name in enumerate(names):
                if name == entry.field:
                    row[at] = int(value) if whole else value
    out = []
    for key in sorted(groups):
        table = groups[key]
        rows = [[_time(ts, epoch), *table[(ts, tags)]] for ts, tags in sorted(table)]
        if query.descending:
            rows.reverse()
        rows = rows[query.row_offset :]
        if query.limit is not None:
            rows = rows[: query.limit]
        series: dict[str, Any] = {"name": query.measurement}
        if group_tags:
            series["tags"] = dict(zip(group_tags, key, strict=True))
        series["columns"] = ["time", *query.columns]
        series["values"] = rows
        out.append(series)
    out = out[query.series_offset :]
    if query.series_limit is not None:
        out = out[: query.series_limit]
    if query.descending:
        out.reverse()
    return out


def _carried(column: list[Any]) -> list[Any]:
    """``fill(previous)``: each empty bucket takes the value of the last bucket before it."""
    carried: list[Any] = []
    last = None
    for value in column:
        last = value if value is not None else last
        carried.append(last)
    return carried


def _fold(
    function: str, buckets: np.ndarray, values: np.ndarray, is_int: np.ndarray, minute: Interval
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per non-empty bucket: its number, the folded value and whether it is an integer.

    The rollup engine folds ``mean``, ``sum``, ``count``, ``min``, ``max`` and ``stddev``
    (bucket k as the minute k from the epoch; NaN for the stddev of one point, which InfluxDB
    answers with null); ``spread`` is its max minus its min; ``first``
    and ``last`` take the first and last point of each bucket (points in time order)."""
    if function in ("first", "last"):
        starts = np.flatnonzero(np.concatenate(([True], buckets[1:] != buckets[:-1])))
        at = starts if function == "first" else np.append(starts[1:], buckets.size) - 1
        return buckets[starts], values[at], is_int[at]
    utc = get_zone("UTC")
    stamps = buckets * _MS_PER_MINUTE

    def fold(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        done = rollup(stamps, values, is_int, interval=minute, function=name, zone=utc, start_ms=0)
        return done.ts // _MS_PER_MINUTE, done.values, done.is_int

    if function == "stddev":  # of one point: null, as in InfluxDB
        labels, deviation, flags = fold("stddev")
        _, counts, _ = fold("count")
        return labels, np.where(counts > 1, deviation, np.nan), flags
    if function != "spread":
        return fold(function)
    labels, high, high_int = fold("max")
    _, low, low_int = fold("min")
    return labels, high - low, high_int & low_int


def _points(
    ctx: Context, entries: list[Entry], field: str, start: int, end: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The points of a group's series of ``field`` in ``[start, end)``, in time order."""
    read = ctx.store.read_points
    parts = [read(ctx.db.id, e.record.id, start, end) for e in entries if e.field == field]
    if not parts:
        return np.empty(0, np.int64), np.empty(0, np.float64), np.empty(0, np.bool_)
    ts = np.concatenate([p.ts for p in parts])
    order = np.argsort(ts, kind="stable")
    values = np.concatenate([p.values for p in parts])
    is_int = np.concatenate([p.is_int for p in parts])
    return ts[order], values[order], is_int[order]


def _time(ms: int, epoch: str | None) -> int | str:
    """A timestamp as InfluxDB writes it: RFC 3339 (trailing zeros cut), or an epoch number."""
    if epoch is not None:
        return ms * 10**6 // EPOCHS[epoch]
    moment = datetime.fromtimestamp(ms // 1000, UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if ms % 1000:
        text += f".{ms % 1000:03d}".rstrip("0")
    return text + "Z"
