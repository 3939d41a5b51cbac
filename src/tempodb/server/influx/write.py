"""``POST /write`` (InfluxDB 1.x) and ``POST /api/v2/write`` (InfluxDB 2.x, as 1.8 serves it).

The body is line protocol (``parse``), gzip-compressed or not (the app inflates it).  Each
field of each line is one point of the series ``names.series_key`` names; series that do not
exist yet are created with their attributes (``names.series_attributes``), then the points go
to the store as one ``WriteBatch``, exactly as the v1 multi write stores its points
(``points.WriteJob``).  The API key chooses the database; ``db``, ``rp``, ``org``, ``bucket``
and ``consistency`` are accepted as given and change nothing.

Values: floats as floats; ``i`` and ``u`` integers as integers up to ±2**53 in magnitude (the
largest integer every route stores exactly); booleans as the integers 1 and 0.  A line with a
string field, a larger integer, or a tag key or field key ``time`` (or a tag key
``_measurement`` / ``_field``, the attribute names of the mapping) is refused whole.
Timestamps are stored in milliseconds: finer ones are rounded down to their millisecond
(floor, also before 1970), and when one request gives a series several values within one
millisecond, the last one is kept.  A line without a timestamp takes the time the request
is handled (the same for every line of a request).

Answers, as InfluxDB 1.x gives them: ``204`` when every line is stored; ``400`` with
``{"error": "unable to parse '<line>': <reason>"}`` (a message per line) when no line could
be read, and nothing is stored; ``400`` with ``{"error": "partial write: <messages>
dropped=N"}`` when some lines were refused while the others were stored (``N`` counts the
lines that were read but refused, as InfluxDB counts the points it drops).  Every error also
comes in the ``X-Influxdb-Error`` header (on one line), and in ``X-TempoDB-Error`` as a code.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from itertools import repeat

import numpy as np
import orjson

from tempodb.contract import ERROR_CODE_HEADER
from tempodb.server.context import Context
from tempodb.server.http import JSON_TYPE, HTTPError, Request, Response
from tempodb.server.influx.names import (
    RESERVED_FIELD_KEYS,
    RESERVED_TAG_KEYS,
    series_attributes,
    series_key,
)
from tempodb.server.influx.parse import (
    MAX_NS,
    MIN_NS,
    PRECISIONS,
    LineError,
    Point,
    Str,
    parse_key,
    parse_lines,
)
from tempodb.server.points import WriteJob
from tempodb.storage.base import (
    MAX_EXACT_INT,
    NewSeries,
    SeriesFilter,
    SeriesRef,
    WriteBatch,
)

#: The InfluxDB API level we answer as (``/ping`` and every answer's headers).
VERSION = "1.8.10"
BUILD = "tempodb"
VERSION_HEADERS = {"X-Influxdb-Version": VERSION, "X-Influxdb-Build": BUILD}
#: At most this many line messages in one error; the rest are counted.
MAX_MESSAGES = 100
#: A line quoted in a message is cut to this many characters.
MAX_QUOTED = 200
#: The longest measurement, tag key, tag value or field key, in UTF-8 bytes (attributes are
#: indexed, and PostgreSQL's index entries are bounded).
MAX_NAME = 1024
#: Series created per call to the store.
CREATE_CHUNK = 5_000


def influx_error(error: HTTPError) -> Response:
    """An error as InfluxDB answers it: ``{"error": "..."}``, the message in
    ``X-Influxdb-Error``.  Wrong credentials are 401 there (InfluxDB has no 403 for them)."""
    status, message = error.status, error.message
    if status == 403 and error.code == "forbidden":
        status, message = 401, "authorization failed"
    headers = {
        **VERSION_HEADERS,
        ERROR_CODE_HEADER: error.code,
        "X-Influxdb-Error": _header_text(message),
        **error.headers,
    }
    return Response(status, orjson.dumps({"error": message}) + b"\n", JSON_TYPE, headers)


def _header_text(message: str) -> str:
    """``message`` on one line of printable ASCII, at most 4 KiB."""
    text = " ".join(message.split("\n")).encode("ascii", "backslashreplace").decode()
    return "".join(c if " " <= c <= "~" else " " for c in text)[:4096]


def ping(query_verbose: str | None) -> Response:
    """``GET``/``HEAD /ping``: ``204`` with the version headers; ``?verbose=true``: ``200``
    with ``{"version": ...}``.  No credentials needed, as in InfluxDB."""
    if query_verbose is not None and query_verbose.lower() in ("true", "1", "t"):
        body = orjson.dumps({"version": VERSION})
        return Response(200, body, JSON_TYPE, dict(VERSION_HEADERS))
    return Response(204, b"", JSON_TYPE, dict(VERSION_HEADERS))


def write_v1(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """``POST /write?db=&rp=&precision=n|u|ms|s|m|h``: line protocol (InfluxDB 1.x)."""
    return _write(ctx, request, request.query.get("precision") or "n")


def write_v2(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """``POST /api/v2/write?org=&bucket=&precision=ns|us|ms|s``: line protocol (InfluxDB 2.x)."""
    return _write(ctx, request, request.query.get("precision") or "ns")


def _write(ctx: Context, request: Request, precision: str) -> Response:
    if precision not in PRECISIONS:
        raise HTTPError(
            400,
            f"invalid precision {precision[:20]!r}: one of n, ns, u, us, ms, s, m, h",
        )
    try:
        text = request.body.decode("utf-8")
    except UnicodeDecodeError:
        text = request.body.decode("utf-8", "surrogateescape")
        parsed = parse_lines(text, precision, check_utf8=True)
    else:
        simple = plan_simple(text, PRECISIONS[precision])
        if simple is not None:
            return _store(ctx, simple, [])
        parsed = parse_lines(text, precision)
    if parsed.errors and not parsed.points:
        raise HTTPError(400, _joined(parsed.errors))
    return _store(ctx, plan_write(parsed.points, time.time_ns()), parsed.errors)


def _store(ctx: Context, plan: WritePlan, errors: list[str]) -> Response:
    if plan.refs:
        create_missing(ctx, plan)
    messages = errors + plan.refused
    if messages:
        dropped = len(plan.refused)
        answer = influx_error(
            HTTPError(400, f"partial write: {_joined(messages)} dropped={dropped}")
        )
    else:
        answer = Response(204, b"", None, dict(VERSION_HEADERS))
    if not len(plan.batch):
        return answer
    return WriteJob(plan.batch, False, answer).run(ctx)


def _joined(messages: list[str]) -> str:
    text = "\n".join(messages[:MAX_MESSAGES])
    if len(messages) > MAX_MESSAGES:
        text += f"\n(and {len(messages) - MAX_MESSAGES} more lines)"
    return text


def _quoted(line: str) -> str:
    return line if len(line) <= MAX_QUOTED else line[:MAX_QUOTED] + "..."


class WritePlan:
    """The points of a request as a ``WriteBatch``, the series it names (with their
    attributes) and the messages of the lines refused."""

    def __init__(self) -> None:
        self.refs: dict[str, int] = {}
        self.attributes: dict[str, Mapping[str, str]] = {}
        self.refused: list[str] = []
        self.batch = WriteBatch([], np.empty(0, np.int32), *_empty_columns())


def _empty_columns() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return np.empty(0, np.int64), np.empty(0, np.float64), np.empty(0, np.bool_)


def refusal(point: Point) -> str | None:
    """Why a parsed line cannot be stored, or None."""
    names = [point.measurement, *(t for tag in point.tags for t in tag)]
    names += [name for name, _ in point.fields]
    for name in names:
        if len(name) > MAX_NAME // 4 and len(name.encode("utf-8", "surrogatepass")) > MAX_NAME:
            return (
                f"the name {_quoted(name)!r} is longer than {MAX_NAME} bytes (the longest "
                "measurement, tag key, tag value or field key tempodb stores)"
            )
    for name, _ in point.tags:
        if name in RESERVED_TAG_KEYS:
            where = f'tag "{name}" on measurement "{point.measurement}"'
            return f"invalid tag key: input {where} is invalid"
    for name, value in point.fields:
        where = f'field "{name}" on measurement "{point.measurement}"'
        if name in RESERVED_FIELD_KEYS:
            return f"invalid field name: input {where} is invalid"
        if isinstance(value, Str):
            return f"{where} is a string: tempodb stores numbers only (float, integer, boolean)"
        if type(value) is int and abs(value) > MAX_EXACT_INT:
            return (
                f"{where} is the integer {value}, beyond ±{MAX_EXACT_INT} (2**53), "
                "the largest integer tempodb stores exactly"
            )
    return None


def plan_write(points: list[Point], now_ns: int) -> WritePlan:
    """The batch of the storable points (``now_ns`` for those without a timestamp)."""
    plan = WritePlan()
    refs = plan.refs
    index: list[int] = []
    stamps: list[int] = []
    values: list[float] = []
    is_int: list[bool] = []
    now_ms = now_ns // 1_000_000
    known: dict[tuple[str, tuple[tuple[str, str], ...], str], int] = {}
    for point in points:
        reason = refusal(point)
        if reason is not None:
            plan.refused.append(f"unable to store '{_quoted(point.line)}': {reason}")
            continue
        ms = now_ms if point.time_ns is None else point.time_ns // 1_000_000
        for name, value in point.fields:
            names = (point.measurement, point.tags, name)
            slot = known.get(names)
            if slot is None:
                key = series_key(*names)
                slot = refs.get(key)
                if slot is None:
                    slot = refs[key] = len(refs)
                    plan.attributes[key] = series_attributes(*names)
                known[names] = slot
            index.append(slot)
            stamps.append(ms)
            values.append(float(value))
            is_int.append(type(value) is not float)
    plan.batch = WriteBatch(
        [SeriesRef("key", key) for key in refs],
        np.array(index, np.int32),
        np.array(stamps, np.int64),
        np.array(values, np.float64),
        np.array(is_int, np.bool_),
    )
    return plan


#: What keeps a body off the fast path of ``plan_simple``: escapes, quotes, comments, and
#: control characters other than ``\\n`` (tabs, NULs, carriage returns, and the others that
#: ``int()`` and ``float()`` would take as blanks); the slow path reads them, or refuses them
#: with its messages.
_NOT_SIMPLE = re.compile(r'[\\"#\x00-\x09\x0b-\x1f]')
#: A character that is in no simple float field value (the values of ``plan_simple``).
_NOT_FLOAT = re.compile(r"[^0-9eE.+\-,]")


def plan_simple(text: str, factor: int) -> WritePlan | None:
    """The plan of a body whose every line is simple (ASCII, one float field, a timestamp,
    one space between them, nothing escaped or quoted: what most clients send), read in
    bulk; exactly ``plan_write(parse_lines(text, ...).points, ...)``.  None for any other
    body, and for one with a line that the slow path would refuse or answer with a message
    (an out-of-range value or timestamp, a bad key section, a refused name): the slow path
    reads those."""
    if not text or not text.isascii() or _NOT_SIMPLE.search(text):
        return None
    lines = text.split("\n")
    if not lines[-1]:
        lines.pop()  # the last line's end
    n = len(lines)
    if not n or list(map(str.count, lines, repeat(" "))).count(2) != n:
        return None  # a blank line, or one not of three sections
    flat = " ".join(lines).split(" ")
    sections, fields, times_text = flat[0::3], flat[1::3], flat[2::3]
    if list(map(str.count, fields, repeat("="))).count(1) != n:
        return None  # several fields, or none
    names_values = "=".join(fields).split("=")
    names, values_text = names_values[0::2], names_values[1::2]
    # float() and int() read more than the grammar: a leading "+", "_", "nan", "inf".
    joined = ",".join(values_text)
    if _NOT_FLOAT.search(joined) or joined.startswith("+") or ",+" in joined:
        return None
    try:
        values = np.array(list(map(float, values_text)), np.float64)
    except ValueError:
        return None
    stamps = _stamps(times_text)
    if stamps is None or not np.isfinite(values).all():
        return None
    if int(stamps.min()) * factor < MIN_NS or int(stamps.max()) * factor > MAX_NS:
        return None
    if factor >= 1_000_000:
        stamps *= factor // 1_000_000
    else:
        stamps //= 1_000_000 // factor
    # Each (key section, field) once, in the order of the lines, then its series.
    pairs = dict.fromkeys(zip(sections, names, strict=True), 0)
    for number, pair in enumerate(pairs):
        pairs[pair] = number
    if len(pairs) == 1:
        ids: list[int] | np.ndarray = np.zeros(n, np.intp)
    else:
        ids = list(map(pairs.__getitem__, zip(sections, names, strict=True)))
    plan = WritePlan()
    refs = plan.refs
    known: dict[tuple[str, tuple[tuple[str, str], ...], str], int] = {}
    keys: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {}
    slots = []
    for section, field in pairs:
        if not field or "," in field:
            return None  # a missing field key, or a comma that splits fields
        try:
            if section not in keys:
                keys[section] = parse_key(section)
        except LineError:
            return None
        measurement, tags = keys[section]
        triple = (measurement, tags, field)
        slot = known.get(triple)
        if slot is None:
            if refusal(Point("", measurement, tags, ((field, 0.0),), 0)) is not None:
                return None
            key = series_key(*triple)
            slot = refs.get(key)
            if slot is None:
                slot = refs[key] = len(refs)
                plan.attributes[key] = series_attributes(*triple)
            known[triple] = slot
        slots.append(slot)
    index = np.array(slots, np.int32)[np.array(ids, np.intp)]
    plan.batch = WriteBatch(
        [SeriesRef("key", key) for key in refs],
        index,
        stamps,
        values,
        np.zeros(len(values), np.bool_),
    )
    return plan


def _stamps(texts: list[str]) -> np.ndarray | None:
    """The integers of a line's timestamp texts (int64), or None when one is not
    ``-?[0-9]+`` or lies beyond 64 bits.  Texts of the same number of digits (what clients
    send) are read as one array of digits."""
    width = len(texts[0])
    joined = ",".join(texts) + ","
    if 0 < width <= 18 and len(joined) == len(texts) * (width + 1):
        grid = np.frombuffer(joined.encode("ascii"), np.uint8).reshape(len(texts), width + 1)
        digits = grid[:, :width] - np.uint8(48)  # a character below "0" wraps to 208 or more
        if (digits <= 9).all() and (grid[:, width] == 44).all():  # then "," ends each
            powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
            return digits.astype(np.int64) @ powers
    if "+" in joined or "_" in joined:  # int() reads more than the grammar
        return None
    try:
        times = list(map(int, texts))
    except ValueError:
        return None
    if min(times) < -(2**63) or max(times) >= 2**63:
        return None
    return np.array(times, np.int64)


def create_missing(ctx: Context, plan: WritePlan) -> None:
    """Create the plan's series that do not exist yet, with their attributes.  One that
    another request creates meanwhile is fine (its KeyConflict is ignored)."""
    keys = list(plan.refs)
    for at in range(0, len(keys), CREATE_CHUNK):
        chunk = keys[at : at + CREATE_CHUNK]
        found = ctx.store.find_series(ctx.db.id, SeriesFilter(keys=tuple(chunk)))
        known = {record.key for record in found}
        missing = [
            NewSeries(key, attributes=plan.attributes[key]) for key in chunk if key not in known
        ]
        if missing:
            # A KeyConflict in the outcome: another request created that series meanwhile.
            ctx.store.create_series_many(ctx.db.id, missing)
