"""``GET``/``POST /query``: the InfluxQL of ``influxql`` over the line-protocol mapping, with
InfluxDB 1.x's JSON answers (``results``, ``statement_id``, ``series`` with ``name``, ``tags``,
``columns`` and ``values``).

The catalogue (measurements, tag keys and values, field keys) is read from the series'
attributes (``names``): every series with ``_measurement`` and ``_field``.  ``SELECT``
aggregates fold the points of every series of a group together (as InfluxDB folds them) with
the fold engine of rollups (``folds.fold_groups``).  ``GROUP BY time()`` buckets are aligned
to the epoch (and the offset), as InfluxDB aligns them; with ``tz()`` they come from the
rollup engine (``rollup.bucket_starts``, ``rollup.boundaries``): boundaries where the zone's
wall clock shows a multiple of the interval counted from 1970-01-01 local, so ``time(1d)``
buckets are the zone's calendar days (23 and 25 hours long across DST changes).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import numpy as np

from tempodb.folds import find_groups, fold_groups, group_starts
from tempodb.rollup import Interval, boundaries, bucket_labels, bucket_starts
from tempodb.server.context import Context
from tempodb.server.http import HTTPError, Request, Response, json_response
from tempodb.server.influx.influxql import (
    Aggregate,
    Arithmetic,
    Condition,
    Expr,
    FieldRef,
    Number,
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
from tempodb.zones import MS_PER_DAY, Zone

#: ``epoch`` values and their nanoseconds.
EPOCHS = {"ns": 1, "n": 1, "u": 1_000, "µ": 1_000, "ms": 10**6, "s": 10**9, "m": 60 * 10**9}
EPOCHS["h"] = 3600 * 10**9
_MS_PER_MINUTE = 60_000
_MS_PER_HOUR = 3_600_000
#: At most this many buckets per series in one answer.
MAX_BUCKETS = 100_000
_INT64 = 2**63
#: The seconds that ``datetime`` renders: years 1 to 9999.
_FIRST_SECOND, _LAST_SECOND = MIN_MS // 1000, MAX_MS // 1000


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


def _where(entries: Iterable[Entry], condition: Condition) -> list[Entry]:
    return [e for e in entries if condition.matches(e.tags)]


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


class _Empty:
    """The cell of a bucket where an aggregate has no point: what ``fill()`` fills.  (A point
    without a value, such as the stddev of one point, is ``None``: InfluxDB does not fill
    it.)"""

    def __repr__(self) -> str:
        return "EMPTY"


EMPTY: Any = _Empty()
#: The aggregates whose values are always floats (the others keep the field's type).
_FLOAT_AGGREGATES = ("mean", "stddev", "median")


class Buckets:
    """How a statement cuts time: ``grid``, every bucket's label (epoch ms, ascending) from
    the one holding the lower bound to the one holding the upper bound, and ``of(ts)``, the
    label and first point of each non-empty bucket of ascending instants.

    Without ``GROUP BY time()`` there is one bucket, labelled with the lower bound (or
    1970-01-01).  Without ``tz()`` bucket k starts at ``k * interval + offset`` (aligned to
    the epoch, as InfluxDB aligns them).  With ``tz()`` the rollup engine places them: the
    boundaries where the zone's wall clock shows ``k * interval`` counted from 1970-01-01T00:00
    local (calendar days for ``1d``), shifted by the offset as InfluxDB shifts them (it
    subtracts the offset from each time, finds the bucket, and adds the offset back)."""

    def __init__(self, query: Select, start_ms: int, end_ms: int) -> None:
        self.interval: Interval | None = None
        self.zone = query.zone
        self.step = 0
        self.offset = 0
        self.shift = 0  # the fixed zone offset of arithmetic buckets
        self.origin = 0  # the engine's start_ms (tz())
        if query.interval_ns is None:
            first = 0 if query.start_ns is None else start_ms
            self.grid = np.array([first], np.int64)
            return
        if query.interval_ns < 10**9 or query.interval_ns % 10**6 or query.offset_ns % 10**6:
            raise HTTPError(
                400,
                "not supported: GROUP BY time() intervals under 1s, or not whole milliseconds "
                "(and offsets that are not whole milliseconds)",
            )
        self.step = step = query.interval_ns // 10**6
        self.offset = query.offset_ns // 10**6
        if step > MAX_MS - MIN_MS:
            raise HTTPError(400, "not supported: GROUP BY time() intervals over 10,000 years")
        if (end_ms - start_ms) // step + 2 > MAX_BUCKETS:
            raise HTTPError(
                400, f"too many buckets: at most {MAX_BUCKETS} per series (narrow the time range)"
            )
        zone = self.zone
        if zone is not None and step % _MS_PER_MINUTE == 0:
            try:
                self._engine(zone, start_ms, end_ms)
            except (ValueError, RuntimeError, OverflowError, IndexError):
                raise HTTPError(
                    400, "not supported: tz() with this GROUP BY time() interval and time range"
                ) from None
            return
        if zone is not None:
            table = zone.table(start_ms - step, end_ms)
            span = table.segment_of(np.array([start_ms - step, end_ms], np.int64))
            if span[0] != span[1]:
                raise HTTPError(
                    400,
                    "not supported: tz() with a GROUP BY time() interval that is not a whole "
                    "number of minutes, across a change of the zone's UTC offset",
                )
            self.shift = table.offset_at(start_ms)
        first = self._label(start_ms)
        last = self._label(end_ms)
        self.grid = np.arange(first, last + 1, step, dtype=np.int64)

    def _label(self, ms: int) -> int:
        shifted = ms - self.offset + self.shift
        return shifted // self.step * self.step + self.offset - self.shift

    def _engine(self, zone: Zone, start_ms: int, end_ms: int) -> None:
        step = self.step
        if step % MS_PER_DAY == 0:
            self.interval = Interval(step // MS_PER_DAY, "day")
        elif step % _MS_PER_HOUR == 0:
            self.interval = Interval(step // _MS_PER_HOUR, "hour")
        else:
            self.interval = Interval(step // _MS_PER_MINUTE, "minute")
        # The engine counts buckets from a local midnight M (the local day of its start_ms):
        # one where the wall clock shows a multiple of the interval since 1970-01-01 local,
        # so that its buckets are InfluxDB's.
        period = math.lcm(step, MS_PER_DAY)
        shifted = start_ms - self.offset
        wall = shifted + zone.offset_at(shifted)
        noon = wall // period * period + MS_PER_DAY // 2
        self.origin = noon - zone.offset_at(noon)
        first = int(self._engine_labels(np.array([start_ms], np.int64))[0])
        found = boundaries(
            self.interval,
            zone,
            start_ms=self.origin,
            lo=first - self.offset,
            hi=end_ms - self.offset + 1,
        )
        self.grid = found + self.offset

    def _engine_labels(self, ts: np.ndarray) -> np.ndarray:
        assert self.zone is not None
        assert self.interval is not None
        labels = bucket_labels(
            ts - self.offset, interval=self.interval, zone=self.zone, start_ms=self.origin
        )
        return labels + self.offset

    def of(self, ts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The label and the index of the first point of each non-empty bucket of ``ts``."""
        if ts.size == 0:
            return np.empty(0, np.int64), np.empty(0, np.intp)
        if self.step == 0:
            return self.grid.copy(), np.zeros(1, np.intp)
        if self.interval is not None:
            assert self.zone is not None
            labels, starts = bucket_starts(
                ts - self.offset, interval=self.interval, zone=self.zone, start_ms=self.origin
            )
            return labels + self.offset, starts
        numbers = (ts - self.offset + self.shift) // self.step
        starts = group_starts(numbers)
        return numbers[starts] * self.step + self.offset - self.shift, starts


def select(ctx: Context, query: Select, epoch: str | None) -> list[Any]:
    """Aggregates per ``GROUP BY time()`` bucket (or over the whole range without it), or the
    raw values of fields."""
    start_ms = MIN_MS if query.start_ns is None else max(MIN_MS, -(-query.start_ns // 10**6))
    end_ms = MAX_MS if query.end_ns is None else min(MAX_MS, query.end_ns // 10**6)  # inclusive
    if end_ms < start_ms:
        return []
    if query.raw:
        return select_raw(ctx, query, epoch, start_ms, end_ms)
    buckets = Buckets(query, start_ms, end_ms)
    grid = buckets.grid
    aggregates = query.aggregates
    fields = {aggregate.field for aggregate in aggregates}
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
    selector = query.selector
    out = []
    for key in sorted(groups):
        points: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}
        cells: dict[Aggregate, list[Any]] = {}
        labels = grid.tolist()
        for aggregate in aggregates:
            if aggregate.field not in points:
                read = _points(ctx, groups[key], aggregate.field, start_ms, end_ms + 1)
                points[aggregate.field] = (*read, *buckets.of(read[0]))
            ts, values, is_int, found, starts = points[aggregate.field]
            column: list[Any] = [EMPTY] * grid.size
            if ts.size:
                folded, picked = _fold(aggregate, values, is_int, starts)
                slots = np.searchsorted(grid, found).tolist()
                for slot, value in zip(slots, folded, strict=True):
                    column[slot] = value
                if aggregate == selector and picked is not None and folded[0] is not EMPTY:
                    labels = [int(ts[picked[0]])]
            cells[aggregate] = column
        if all(cell is EMPTY for column in cells.values() for cell in column):
            continue
        times = [t * 10**6 for t in labels]
        if query.descending:
            times.reverse()
            cells = {aggregate: column[::-1] for aggregate, column in cells.items()}
        filled = {
            aggregate: _filled(aggregate, column, query.fill, times, query.interval_ns)
            for aggregate, column in cells.items()
        }
        rows = _rows(query, times, filled)
        rows = rows[query.row_offset :]
        if query.limit is not None:
            rows = rows[: query.limit]
        stamps = _times([row[0] for row in rows], epoch, query.zone)
        for row, stamp in zip(rows, stamps, strict=True):
            row[0] = stamp
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


def _rows(query: Select, times: list[int], filled: dict[Aggregate, list[Any]]) -> list[list[Any]]:
    """A row per bucket (``times`` in ns): its time in ms, then each column's value; without
    the rows where every aggregate is empty under ``fill(none)``."""
    aggregates = [c.expr for c in query.fields if isinstance(c.expr, Aggregate)]
    if len(aggregates) == len(query.fields):
        # Columns that are aggregates (no arithmetic, the most common): column by column.
        columns = [[None if c is EMPTY else c for c in filled[a]] for a in aggregates]
        rows = [
            [ns // 10**6, *cells]
            for ns, cells in zip(times, zip(*columns, strict=True), strict=True)
        ]
        if query.fill != "none":
            return rows
        kept = [any(c is not EMPTY for c in cells) for cells in zip(*filled.values(), strict=True)]
        return [row for row, keep in zip(rows, kept, strict=True) if keep]
    rows = []
    for at, ns in enumerate(times):
        row = {aggregate: column[at] for aggregate, column in filled.items()}
        if query.fill == "none" and all(cell is EMPTY for cell in row.values()):
            continue
        values_at = [_evaluate(column.expr, row) for column in query.fields]
        rows.append([ns // 10**6, *values_at])
    return rows


def select_raw(
    ctx: Context, query: Select, epoch: str | None, start_ms: int, end_ms: int
) -> list[Any]:
    """``SELECT f, g, tag FROM m``: a row per point time of each series, the fields' values
    there (null where a field has none) and the tags asked for; the series of a group merged
    in time order."""
    entries = _where(catalogue(ctx, query.measurement), query.where)
    fields = {e.field for e in entries}
    names = [column.expr.name for column in query.fields if isinstance(column.expr, FieldRef)]
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
        ordered = sorted(table)
        if query.descending:
            ordered.reverse()
        ordered = ordered[query.row_offset :]
        if query.limit is not None:
            ordered = ordered[: query.limit]
        stamps = _times([ts for ts, _ in ordered], epoch, query.zone)
        rows = [[stamp, *table[at]] for stamp, at in zip(stamps, ordered, strict=True)]
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


def _fold(
    aggregate: Aggregate, values: np.ndarray, is_int: np.ndarray, starts: np.ndarray
) -> tuple[list[Any], np.ndarray | None]:
    """The value of ``aggregate`` in each non-empty bucket (``starts``: the index of each
    one's first point; points in time order), and for a selector the index of the point it
    picks in each.

    ``mean``, ``sum``, ``count``, ``min``, ``max``, ``first``, ``last``, ``stddev`` (null for
    one point, as in InfluxDB) and ``spread`` (the fold ``range``) are the fold engine's;
    ``median`` and ``percentile`` are InfluxDB's (``_median``, ``_percentile``)."""
    function = aggregate.function
    picked: np.ndarray | None = None
    if function == "median":
        return _cells(_median(values, starts), np.zeros(starts.size, np.bool_)), None
    if function == "percentile":
        assert aggregate.arg is not None
        picked = _percentile(values, starts, aggregate.arg)
        valid = picked >= 0
        chosen = np.where(valid, picked, 0)
        cells = _cells(values[chosen], is_int[chosen])
        return [cell if ok else EMPTY for cell, ok in zip(cells, valid.tolist(), strict=True)], (
            chosen
        )
    folded, whole = fold_groups(
        values, is_int, starts, "range" if function == "spread" else function
    )
    cells = _cells(folded, whole)
    if function == "stddev":  # of one point: null, as in InfluxDB
        counts = np.diff(np.append(starts, values.size))
        cells = [None if n == 1 else cell for cell, n in zip(cells, counts.tolist(), strict=True)]
    if function in ("min", "max", "first", "last"):
        picked = find_groups(values, starts, function)
    return cells, picked


def _cells(values: np.ndarray, whole: np.ndarray) -> list[Any]:
    """Values as JSON gives them: integers where ``whole``, None for NaN."""
    return [
        None if value != value else int(value) if exact else value
        for value, exact in zip(values.tolist(), whole.tolist(), strict=True)
    ]


def _sorted_groups(values: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The index of each point once every group is sorted by value (stable: equal values
    keep their time order), and the size of each group."""
    counts = np.diff(np.append(starts, values.size))
    groups = np.repeat(np.arange(starts.size), counts)
    return np.lexsort((values, groups)), counts


def _median(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """InfluxDB's median: the middle value, or of an even number of values the lower middle
    plus half the difference to the upper one (``lo + (hi - lo) / 2``; integers as floats).
    The fold ``percentile,50`` gives the same values, computed otherwise."""
    order, counts = _sorted_groups(values, starts)
    ordered = values[order]
    upper = ordered[starts + counts // 2]
    lower = ordered[starts + np.maximum(counts // 2 - 1, 0)]
    result: np.ndarray = np.where(counts % 2 == 1, upper, lower + (upper - lower) / 2)
    return result


def _percentile(values: np.ndarray, starts: np.ndarray, percent: float) -> np.ndarray:
    """InfluxDB's ``percentile(f, N)``: the nearest rank, a selector.  Of n values sorted,
    the one at index ``floor(n * N / 100 + 0.5) - 1``; none (-1 here) where that index is
    outside the values (always for N = 0; for a small N, or one over 100, depending on n), as
    InfluxDB gives no point then.

    This is not the fold ``percentile,N`` of rollups (linear between the closest ranks, as
    numpy's default): InfluxDB picks a value that was written, without interpolating.  Of
    equal values the earliest is picked (for its time, when the time is the point's)."""
    order, counts = _sorted_groups(values, starts)
    with np.errstate(invalid="ignore", over="ignore"):
        rank = np.floor(counts.astype(np.float64) * percent / 100.0 + 0.5) - 1
    valid = (rank >= 0) & (rank < counts)
    index = np.where(valid, rank, 0).astype(np.intp)
    # The first of the run of values equal to the one at that rank: the earliest of them.
    ordered = values[order]
    opens = np.ones(values.size, np.bool_)
    opens[1:] = ordered[1:] != ordered[:-1]
    opens[starts] = True
    run_start = np.maximum.accumulate(np.where(opens, np.arange(values.size), 0))
    result: np.ndarray = np.where(valid, order[run_start[starts + index]], -1)
    return result


def _filled(
    aggregate: Aggregate,
    column: list[Any],
    fill: str | float,
    times: list[int],
    interval_ns: int | None,
) -> list[Any]:
    """One aggregate's cells in the order rows are listed, with ``fill()`` applied to the
    empty ones (``EMPTY`` stays for ``fill(none)``): ``null`` (0 for ``count``, as InfluxDB
    fills it), a number, ``previous`` (the last cell before, in that order) or ``linear``."""
    if fill == "none":
        return column
    if fill == "previous":
        carried: list[Any] = []
        last = None
        for cell in column:
            last = cell if cell is not EMPTY else last
            carried.append(last)
        return carried
    if fill == "linear":
        return _linear(column, times, interval_ns)
    if fill == "null":
        value: Any = 0 if aggregate.function == "count" else None
    else:
        number = float(fill)
        whole = number.is_integer() and abs(number) < 2**53  # JSON integers fit 64 bits
        floats = aggregate.function in _FLOAT_AGGREGATES
        value = int(number) if whole and not floats else number
    return [value if cell is EMPTY else cell for cell in column]


def _linear(column: list[Any], times: list[int], interval_ns: int | None) -> list[Any]:
    """``fill(linear)``: an empty cell between two cells with values takes the value on the
    line between them, as InfluxDB computes it: over bucket numbers (each bucket's time in ns
    divided by the interval, truncated), not over times, so that with ``tz()`` a day of 23 or
    25 hours counts as one step like the others; ``m * x + b``, integers truncated toward
    zero when both ends are integers.  Null before the first cell and after the last."""
    out = [None if cell is EMPTY else cell for cell in column]
    if not interval_ns:
        return out
    steps = [-(-t // interval_ns) if t < 0 else t // interval_ns for t in times]  # Go's /
    previous: int | None = None
    for at, cell in enumerate(column):
        if cell is EMPTY:
            continue
        if previous is not None and at - previous > 1:
            v0, v1 = column[previous], cell
            if v0 is not None and v1 is not None:
                x0 = steps[previous]
                slope = float(v1 - v0) / float(steps[at] - x0) if steps[at] != x0 else 0.0
                for gap in range(previous + 1, at):
                    y = slope * float(steps[gap] - x0) + float(v0)
                    both = isinstance(v0, int) and isinstance(v1, int)
                    out[gap] = int(y) if both and math.isfinite(y) else y
        previous = at
    return out


def _evaluate(expr: Expr, row: dict[Aggregate, Any]) -> Any:
    """The value of a column's expression in one row, as InfluxDB computes it: null when an
    operand is null; integers stay integers under ``+ - * %`` (64 bits, wrapping); ``/``
    gives a float; dividing by zero gives 0 (and ``%`` of floats by zero, null)."""
    if isinstance(expr, Aggregate):
        cell = row[expr]
        return None if cell is EMPTY else cell
    if isinstance(expr, Number):
        return expr.value
    assert isinstance(expr, Arithmetic)
    left = _evaluate(expr.left, row)
    right = _evaluate(expr.right, row)
    if left is None or right is None:
        return None
    return _apply(expr.op, left, right)


def _apply(op: str, left: int | float, right: int | float) -> int | float | None:
    if isinstance(left, int) and isinstance(right, int):
        if op == "/":
            return 0 if right == 0 else float(left) / float(right)
        if op == "%":
            if right == 0:
                return 0
            remainder = abs(left) % abs(right)  # Go's %: the sign of the dividend
            return -remainder if left < 0 else remainder
        exact = left + right if op == "+" else left - right if op == "-" else left * right
        return (exact + _INT64) % (2 * _INT64) - _INT64
    a, b = float(left), float(right)
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        return 0.0 if b == 0 else a / b
    if b == 0 or not math.isfinite(a) or math.isnan(b):  # Go's math.Mod: NaN, written null
        return None
    return math.fmod(a, b)


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


def _times(stamps: list[int], epoch: str | None, zone: Zone | None) -> list[int | str]:
    """Timestamps (ms) as InfluxDB writes them: an epoch number, or RFC 3339 (trailing zeros
    of the fraction cut) at the ``tz()`` zone's offset (``Z`` when it is zero)."""
    if epoch is not None:
        unit = EPOCHS[epoch]
        return [ms * 10**6 // unit for ms in stamps]
    offsets = [0] * len(stamps)
    if zone is not None and stamps:
        offsets = zone.offsets_ms(np.array(stamps, np.int64)).tolist()
    return [_rfc3339(ms, offset) for ms, offset in zip(stamps, offsets, strict=True)]


def _rfc3339(ms: int, offset: int) -> str:
    local = (ms + offset) // 1000
    if _FIRST_SECOND <= local <= _LAST_SECOND:
        text = datetime.fromtimestamp(local, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    else:  # a bucket opening before year 1 (or a wall clock after 9999): numpy's calendar
        text = str(np.datetime64(local, "s"))
    if ms % 1000:
        text += f".{ms % 1000:03d}".rstrip("0")
    if offset == 0:
        return text + "Z"
    minutes = abs(offset) // _MS_PER_MINUTE
    return f"{text}{'-' if offset < 0 else '+'}{minutes // 60:02d}:{minutes % 60:02d}"
