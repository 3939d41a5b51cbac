"""Request bodies to columns, and columns to response JSON (spec §3).

Bodies are validated whole before anything is stored.  There is one fast path and one
reference path: the C extension (``tempodb._speedups``) scans the common body shapes and
renders points without a Python object per point; the general path (``parse_points``,
``parse_multi``, ``points_json``) takes everything, names the offending element of a bad
body, and serves alone when the extension is not built (no C compiler: slower, same answers).
"""

from __future__ import annotations

import hashlib
import math
import re
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol, TypeVar

import numpy as np
import orjson

from tempodb.contract import SERIES_NOT_FOUND

try:
    from tempodb import _speedups
except ImportError:  # built without a C compiler: the general paths serve
    _speedups = None  # type: ignore[assignment]
from tempodb.contract import MAX_KEY_LENGTH
from tempodb.contract import key_error as key_error
from tempodb.rollup import Moments, numpy_moments
from tempodb.server.http import HTTPError, Query, bad_request
from tempodb.server.timestamps import InvalidTimestamp, parse_timestamps_ms
from tempodb.storage.base import (
    MAX_EXACT_INT,
    BoolArray,
    Float64Array,
    Int64Array,
    SeriesField,
    SeriesRecord,
    SeriesRef,
    WriteBatch,
)
from tempodb.timeutil import MAX_MS, MIN_MS, parse_timestamp_ms
from tempodb.zones import Zone, excerpt

NO_VALUE = "Must provide a numeric value"
NO_SERIES = "Must provide a series ID or key"


#: Hex digits of the SHA-256 that stands for the cut end of a key too long (``fit_key``).
HASH_DIGITS = 40


def fit_key(key: str) -> str:
    """A dialect's series key within ``MAX_KEY_LENGTH``: as it is when it fits, else its
    start, ``\\h`` and the first ``HASH_DIGITS`` hex digits of its SHA-256, so that distinct
    long keys stay distinct.  The cut never keeps half of an escape (a backslash within the
    last two kept characters goes, with what it escapes)."""
    if len(key) <= MAX_KEY_LENGTH:
        return key
    cut = MAX_KEY_LENGTH - 2 - HASH_DIGITS
    for back in (1, 2):
        if key[cut - back] == "\\":
            cut -= back
            break
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:HASH_DIGITS]
    return f"{key[:cut]}\\h{digest}"


def escape_key_part(text: str, safe: frozenset[str]) -> str:
    """``text`` for a dialect's series key: each character outside ``safe`` as ``\\xx`` per
    byte of its UTF-8 (lone surrogates too), so that distinct names give distinct keys."""
    if all(c in safe for c in text):
        return text
    out = []
    for c in text:
        if c in safe:
            out.append(c)
        else:
            out.extend(f"\\{byte:02x}" for byte in c.encode("utf-8", "surrogatepass"))
    return "".join(out)


def check_key(key: object) -> str:
    error = key_error(key)
    if error:
        raise bad_request(error)
    assert isinstance(key, str)
    return key


def now_ms() -> int:
    return time.time_ns() // 1_000_000


#: An offset whose ``+`` arrived unencoded in a query string and was decoded as a space.
_SPACE_OFFSET = re.compile(r"(:\d\d(?:\.\d+)?) (\d\d(?::?\d\d)?)\Z")


def parse_time_param(text: str, name: str) -> int:
    """Epoch ms of a query timestamp; 400 naming the parameter when it is invalid."""
    for candidate in (text, _SPACE_OFFSET.sub(r"\1+\2", text)):
        try:
            return parse_timestamp_ms(candidate)
        except ValueError:
            pass
    raise bad_request(f"Invalid timestamp for {name}: {excerpt(text)}")


def parse_range(query: Query) -> tuple[int, int]:
    """``start`` and ``end`` of a request's query (both required); 400 when either is invalid
    or ``start`` is after ``end``."""
    start = parse_time_param(query.require("start"), "start")
    end = parse_time_param(query.require("end"), "end")
    if start > end:
        raise bad_request("start must not be after end")
    return start, end


# -- values ----------------------------------------------------------------------------------


def coerce_value(value: object) -> tuple[float, bool] | str:
    """``(value, is_int)`` for a JSON value, or the reason it is not acceptable.

    Numbers are taken as they are, booleans as 1/0 and strings that spell a finite number
    (the Bash client quotes its numbers).
    """
    if isinstance(value, float):
        return value, False
    if isinstance(value, int):  # bool included: true/false are 1/0
        if abs(value) > MAX_EXACT_INT:
            return f"Integer value out of range (at most 2^53 in magnitude): {excerpt(str(value))}"
        return float(value), True
    if isinstance(value, str) and "_" not in value:
        text = value.strip()
        try:
            return coerce_value(int(text))
        except ValueError:
            pass
        try:
            number = float(text)
        except ValueError:
            return NO_VALUE
        if math.isfinite(number):
            return number, False
    return NO_VALUE


#: Lists up to this long are checked item by item in Python (cheaper than numpy's calls).
_SHORT = 64


def _fast_values(raw: Sequence[object]) -> tuple[Float64Array, BoolArray] | None:
    """Vectorised conversion when every value is a plain JSON number in range."""
    if len(raw) <= _SHORT:
        flags: list[bool] = []
        for value in raw:
            kind = type(value)
            if kind is float:
                flags.append(False)
            elif type(value) is int and -MAX_EXACT_INT <= value <= MAX_EXACT_INT:
                flags.append(True)
            else:
                return None
        return np.array(raw, np.float64), np.array(flags, np.bool_)
    kinds = set(map(type, raw))
    if not kinds or not kinds <= {float, int}:
        return None
    values = np.array(raw, dtype=np.float64)
    if kinds == {float}:
        return values, np.zeros(len(raw), np.bool_)
    if kinds == {int}:
        is_int = np.ones(len(raw), np.bool_)
    else:
        is_int = np.fromiter((type(v) is int for v in raw), np.bool_, len(raw))
    # 2**53 + 1 rounds to 2**53 as a float64: near the bound, decide on the integers.
    if is_int.any() and float(np.abs(values[is_int]).max()) >= MAX_EXACT_INT:
        return None
    return values, is_int


def _fast_times(raw: Sequence[object]) -> Int64Array | None:
    if all(type(t) is str for t in raw):
        try:
            return parse_timestamps_ms(raw)
        except InvalidTimestamp:
            return None
    return None


def _one_time(value: object, now: int) -> int | str:
    """Epoch ms of a body timestamp (missing or null means now), or the reason it is bad."""
    if value is None:
        return now
    if isinstance(value, str):
        try:
            return parse_timestamp_ms(value)
        except ValueError:
            return f"Invalid timestamp: {excerpt(value)}"
    return f"Invalid timestamp: {excerpt(repr(value))}"


def _values(raw: Sequence[object], what: str) -> tuple[Float64Array, BoolArray]:
    """Values and integer flags; 400 naming the first bad element."""
    fast = _fast_values(raw)
    if fast is not None:
        return fast
    values = np.empty(len(raw), np.float64)
    is_int = np.empty(len(raw), np.bool_)
    for i, item in enumerate(raw):
        value = coerce_value(item)
        if isinstance(value, str):
            raise bad_request(f"{what} {i}: {value}")
        values[i], is_int[i] = value
    return values, is_int


def _times(raw: Sequence[object], what: str) -> Int64Array:
    """Epoch ms of body timestamps; 400 naming the first bad element."""
    fast = _fast_times(raw)
    if fast is not None:
        return fast
    now = now_ms()
    ts = np.empty(len(raw), np.int64)
    for i, item in enumerate(raw):
        stamp = _one_time(item, now)
        if isinstance(stamp, str):
            raise bad_request(f"{what} {i}: {stamp}")
        ts[i] = stamp
    return ts


# -- request bodies --------------------------------------------------------------------------


def _objects(body: Any, what: str, shape: str) -> list[Mapping[str, Any]]:
    if not isinstance(body, list):
        raise bad_request(f"Request body must be a JSON array of {shape}")
    for i, item in enumerate(body):
        if not isinstance(item, dict):
            raise bad_request(f"{what} {i}: must be a JSON object {shape}")
    return body


def parse_points(body: Any, ref: SeriesRef) -> WriteBatch:
    """E8/E9: ``[{"t": TS, "v": NUM}, ...]`` for one series; all or nothing."""
    points = _objects(body, "Point", '{"t": ..., "v": ...}')
    if not points:
        return _one_series(ref, np.empty(0, np.int64), np.empty(0, np.float64), np.empty(0, bool))
    values, is_int = _values([p.get("v") for p in points], "Point")
    ts = _times([p.get("t") for p in points], "Point")
    return _one_series(ref, ts, values, is_int)


def _one_series(
    ref: SeriesRef, ts: Int64Array, values: Float64Array, is_int: BoolArray
) -> WriteBatch:
    return WriteBatch([ref], np.zeros(len(ts), np.int32), ts, values, is_int)


#: The general path holds a body's JSON as Python objects, about fifteen times the body's size:
#: bodies larger than this take it one at a time (a server's memory then holds one such parse,
#: however many requests send them).
GENERAL_PARSE_ALONE: Final = 1 << 20
_general_parse = threading.Lock()
_T = TypeVar("_T")


def _general(body: bytes, parse: Callable[[], _T]) -> _T:
    """``parse()`` (the general path of ``body``), alone among large bodies' general parses."""
    if len(body) <= GENERAL_PARSE_ALONE:
        return parse()
    with _general_parse:
        return parse()


def parse_points_body(body: bytes, parse_json: Callable[[], Any], ref: SeriesRef) -> WriteBatch:
    """E8/E9 from the raw body: the C scanner for bodies of plain ``t`` and ``v`` items,
    else (or when the extension is not built) ``parse_points`` on the parsed JSON."""
    fast = c_points(body) if _speedups is not None else None
    if fast is not None:
        return _one_series(ref, *fast)
    return _general(body, lambda: parse_points(parse_json(), ref))


def c_points(body: bytes) -> tuple[Int64Array, Float64Array, BoolArray] | None:
    """``[{"t": TS, "v": NUM}, ...]`` by the C extension's scanner, which takes any JSON
    spacing and either key order and decodes exactly as ``parse_points`` would; None when
    the general path must decide."""
    scanned = _speedups.parse_points(body)
    if scanned is None:
        return None
    ts, values, is_int = scanned
    return (
        np.frombuffer(ts, np.int64),
        np.frombuffer(values, np.float64),
        np.frombuffer(is_int, np.bool_),
    )


class PointColumns(Protocol):
    """A write body handed over as arrays by a transport in the server's process
    (``tempodb.connect``'s ``write_dataframe``): what parsing the body would give, in body
    order, and the body itself on demand.  ``keys`` and ``key_index`` (a multi write's
    series: each point's index into ``keys``) are None for a write to one series."""

    @property
    def ts(self) -> Int64Array: ...
    @property
    def values(self) -> Float64Array: ...
    @property
    def is_int(self) -> BoolArray: ...
    @property
    def keys(self) -> Sequence[str] | None: ...
    @property
    def key_index(self) -> Any: ...
    def encode(self) -> bytes:
        """The JSON body these arrays stand for."""
        ...


def _clean_columns(columns: PointColumns) -> tuple[Int64Array, Float64Array, BoolArray] | None:
    """The arrays when they hold only what a body of plain ``t`` and ``v`` items can give
    (instants in years 1-9999, finite numbers, integers within 2^53), else None."""
    ts, values, is_int = columns.ts, columns.values, columns.is_int
    if not (
        isinstance(ts, np.ndarray)
        and isinstance(values, np.ndarray)
        and isinstance(is_int, np.ndarray)
        and ts.dtype == np.int64
        and values.dtype == np.float64
        and is_int.dtype == np.bool_
        and ts.ndim == values.ndim == is_int.ndim == 1
        and len(ts) == len(values) == len(is_int)
    ):
        return None
    if len(ts) and (int(ts.min()) < MIN_MS or int(ts.max()) > MAX_MS):
        return None
    if not np.isfinite(values).all():
        return None
    if is_int.any():
        whole = values[is_int]
        if np.abs(whole).max() > MAX_EXACT_INT or (whole != np.trunc(whole)).any():
            return None
    return ts, values, is_int


def columns_points(columns: PointColumns, ref: SeriesRef) -> WriteBatch | None:
    """E8/E9 from arrays (``PointColumns``): the batch ``parse_points_body`` gives for the
    body they stand for; None when the body must decide (anything but the plain shape)."""
    if columns.keys is not None:
        return None
    arrays = _clean_columns(columns)
    return None if arrays is None else _one_series(ref, *arrays)


class _RefTable:
    """Distinct series refs of a request, in order of first appearance."""

    def __init__(self) -> None:
        self.refs: list[SeriesRef] = []
        self._seen: dict[tuple[SeriesField, str], int | str] = {}

    def index(self, item: Mapping[str, Any]) -> int | str:
        """The ref index of an element's ``id`` (preferred) or ``key``, or why it has none."""
        field: SeriesField
        if item.get("id") not in (None, ""):
            field, value = "id", item["id"]
        elif item.get("key") not in (None, ""):
            field, value = "key", item["key"]
        else:
            return NO_SERIES
        # Seen before in this request: the same answer (only texts: a list is unhashable).
        cacheable = isinstance(value, str)
        known = self._seen.get((field, value)) if cacheable else None
        if known is not None:
            return known
        error = key_error(value)
        if error:
            answer: int | str = error if field == "key" else f"Invalid series id: {value!r}"
        else:
            answer = len(self.refs)
            self.refs.append(SeriesRef(field, value))
        if cacheable:
            self._seen[(field, value)] = answer
        return answer


def parse_bulk(body: Any) -> WriteBatch:
    """E10/E11: ``{"t": TS, "data": [{"id" | "key": S, "v": NUM}, ...]}``; all or nothing."""
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise bad_request('Request body must be {"t": ..., "data": [{"key": ..., "v": ...}, ...]}')
    stamp = _one_time(body.get("t"), now_ms())
    if isinstance(stamp, str):
        raise bad_request(stamp)
    items = _objects(body["data"], "Element", '{"id" or "key": ..., "v": ...}')
    table = _RefTable()
    index = np.empty(len(items), np.int32)
    for i, item in enumerate(items):
        slot = table.index(item)
        if isinstance(slot, str):
            raise bad_request(f"Element {i}: {slot}")
        index[i] = slot
    values, is_int = _values([item.get("v") for item in items], "Element")
    return WriteBatch(table.refs, index, np.full(len(items), stamp, np.int64), values, is_int)


@dataclass
class MultiBatch:
    batch: WriteBatch
    #: One entry per element: [] when accepted, else the messages; None: all accepted.
    errors: list[list[str]] | None = None
    #: One entry per element: the index of its series in ``batch.refs`` (-1 when refused);
    #: None: ``batch.ref_index`` (all accepted).
    slots: list[int] | None = None

    @property
    def failed(self) -> bool:
        return self.errors is not None and any(self.errors)

    def multistatus(self, skipped: Collection[int] = ()) -> dict[str, list[dict[str, Any]]]:
        """The §3.9 body: 422 for invalid elements, 409 for those whose series could not be
        created (``skipped`` refs: an unknown id that another series has as its key)."""
        slots = self.batch.ref_index.tolist() if self.slots is None else self.slots
        errors = self.errors if self.errors is not None else [[]] * len(slots)
        entries = []
        for messages, slot in zip(errors, slots, strict=True):
            if messages:
                entries.append({"status": "422", "messages": messages})
            elif slot in skipped:
                key = self.batch.refs[slot].value
                entries.append({"status": "409", "messages": [conflict_message(key)]})
            else:
                entries.append({"status": "200", "messages": []})
        return {"multistatus": entries}


def conflict_message(key: str) -> str:
    """What a 409 says when a series cannot be created because its key is taken."""
    return f"Unique constraint violated: a series with key {key} already exists"


def _all_times(items: list[Any]) -> list[int] | None:
    """The epoch ms of every element's ``t`` when they are all valid timestamp texts (one
    vectorised parse), else None (the elements are then parsed one by one)."""
    texts = [item.get("t") if isinstance(item, dict) else None for item in items]
    if len(texts) < 64 or not all(isinstance(text, str) for text in texts):
        return None
    try:
        return parse_timestamps_ms(texts).tolist()  # type: ignore[no-any-return]
    except InvalidTimestamp:
        return None


def parse_multi_body(body: bytes, parse_json: Callable[[], Any]) -> MultiBatch:
    """``parse_multi`` of a raw body: the common shape (every element a timestamp text, a
    plain key or id and a number) decoded in C without a Python object per element, anything
    else by ``parse_multi`` on the parsed JSON."""
    scanned = _speedups.parse_multi_points(body) if _speedups is not None else None
    if scanned is None:
        return _general(body, lambda: parse_multi(parse_json()))
    ts, values, is_int, series, fields, texts = scanned
    batch = WriteBatch(
        list(map(SeriesRef, fields, texts)),
        np.frombuffer(series, np.int32),
        np.frombuffer(ts, np.int64),
        np.frombuffer(values, np.float64),
        np.frombuffer(is_int, np.bool_),
        skip_conflicts=True,
    )
    return MultiBatch(batch)


def columns_multi(columns: PointColumns) -> MultiBatch | None:
    """E12/E13 from arrays (``PointColumns``): the batch ``parse_multi_body`` gives for the
    body they stand for, when every key is valid, distinct and used, in order of first
    appearance; None when the body must decide (it answers invalid elements one by one)."""
    keys, index = columns.keys, columns.key_index
    arrays = _clean_columns(columns)
    if keys is None or arrays is None or not isinstance(index, np.ndarray):
        return None
    if index.dtype != np.int32 or index.shape != arrays[0].shape or not keys:
        return None
    if any(not isinstance(key, str) or key_error(key) for key in keys):
        return None
    if len(set(keys)) != len(keys) or len(index) == 0:
        return None
    if int(index.min()) < 0 or int(index.max()) >= len(keys):
        return None
    _, first = np.unique(index, return_index=True)
    if len(first) != len(keys) or (np.diff(first) < 0).any():
        return None  # a key without points, or keys out of their order of appearance
    refs = [SeriesRef("key", key) for key in keys]
    return MultiBatch(WriteBatch(refs, index, *arrays, skip_conflicts=True))


def parse_multi(body: Any) -> MultiBatch:
    """E12/E13: ``[{"t": TS, "id" | "key": S, "v": NUM}, ...]`` with per-element errors."""
    if not isinstance(body, list):
        raise bad_request('Request body must be a JSON array of {"t": ..., "key": ..., "v": ...}')
    now = now_ms()
    table = _RefTable()
    stamps: dict[str, int | str] = {}
    parsed = _all_times(body)
    errors: list[list[str]] = []
    slots: list[int] = []
    index: list[int] = []
    ts: list[int] = []
    values: list[float] = []
    is_int: list[bool] = []
    for item in body:
        if not isinstance(item, dict):
            errors.append([NO_VALUE, NO_SERIES])
            slots.append(-1)
            continue
        messages = []
        raw = item.get("v")
        value = (raw, False) if type(raw) is float else coerce_value(raw)
        if isinstance(value, str):
            messages.append(value)
        slot = table.index(item)
        if isinstance(slot, str):
            messages.append(slot)
        text = item.get("t")
        stamp = stamps.get(text) if isinstance(text, str) else None
        if stamp is None and parsed is not None:
            stamp = parsed[len(errors)]
        if stamp is None:
            stamp = _one_time(text, now)
            if isinstance(text, str):  # writers repeat timestamps across series: parse once
                stamps[text] = stamp
        if isinstance(stamp, str):
            messages.append(stamp)
        errors.append(messages)
        slots.append(slot if isinstance(slot, int) and not messages else -1)
        if not messages:
            assert isinstance(slot, int)
            assert isinstance(stamp, int)
            assert not isinstance(value, str)
            index.append(slot)
            ts.append(stamp)
            values.append(value[0])
            is_int.append(value[1])
    batch = WriteBatch(
        table.refs,
        np.array(index, np.int32),
        np.array(ts, np.int64),
        np.array(values, np.float64),
        np.array(is_int, np.bool_),
        skip_conflicts=True,
    )
    return MultiBatch(batch, errors, slots)


# -- series metadata in request bodies -------------------------------------------------------


def _text(value: str, what: str) -> str:
    """Metadata text: any string without NUL characters (no backend can store them)."""
    if "\x00" in value:
        raise bad_request(f"{what} must not contain NUL characters")
    return value


def parse_tags(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(t, str) and t for t in value):
        raise bad_request("tags must be a list of non-empty strings")
    return [_text(tag, "tags") for tag in value]


def parse_attributes(value: Any) -> dict[str, str]:
    """A string map; scalar values (numbers, booleans) are turned into strings."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise bad_request("attributes must be an object of string values")
    result = {}
    for name, item in value.items():
        if not name:
            raise bad_request("attribute names must be non-empty")
        if isinstance(item, bool):
            text = "true" if item else "false"
        elif isinstance(item, str | int | float):
            text = str(item)
        else:
            raise bad_request(f"attribute {name!r} must be a string")
        result[_text(name, "attribute names")] = _text(text, "attribute values")
    return result


def parse_name(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise bad_request("name must be a string")
    return _text(value, "name")


# -- responses -------------------------------------------------------------------------------


def series_json(series: SeriesRecord) -> dict[str, Any]:
    return {
        "id": series.id,
        "key": series.key,
        "name": series.name,
        "tags": list(series.tags),
        "attributes": dict(series.attributes),
    }


def _plain_mapping(value: object) -> dict[str, Any]:
    """orjson's fallback for what it does not render itself: a non-dict Mapping (attributes)."""
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def render_series(records: Sequence[SeriesRecord]) -> bytes:
    """``orjson.dumps([series_json(r) for r in records])`` in one C pass: orjson renders a
    dataclass as the object of its fields in order (id, key, name, tags, attributes), which
    is what ``series_json`` makes of it, without a Python dict per series."""
    return orjson.dumps(
        records if isinstance(records, list) else list(records), default=_plain_mapping
    )


def value_list(values: Float64Array, is_int: BoolArray) -> list[int | float]:
    """Python numbers, integers where the value was written as one."""
    if is_int.all():
        return values.astype(np.int64).tolist()  # type: ignore[no-any-return]
    result: list[int | float] = values.tolist()
    if is_int.any():
        positions = np.flatnonzero(is_int).tolist()
        for position, number in zip(
            positions, values[is_int].astype(np.int64).tolist(), strict=True
        ):
            result[position] = number
    return result


def number_texts(values: Float64Array, is_int: BoolArray) -> bytes:
    """The values as one JSON array (integers where the value was written as one)."""
    if not is_int.any():
        return orjson.dumps(values, option=orjson.OPT_SERIALIZE_NUMPY)
    return orjson.dumps(value_list(values, is_int))


#: Up to this many points are rendered with orjson from Python objects.
_FEW_POINTS = 16


#: The summary's sums and extremes in one C call without temporaries, when built.
summary_moments: Moments = numpy_moments if _speedups is None else _speedups.summary_moments


def render_points(zone: Zone, ts: Int64Array, values: Float64Array, is_int: BoolArray) -> bytes:
    """``[{"t":"...","v":...},...]``: what ``orjson.dumps(points_json(...))`` gives, from the
    JSON array of the numbers and the timestamps rendered in C; by ``points_json`` when the
    extension is not built, or declines (years outside 1..9999)."""
    # A few points are cheaper one by one than through the arrays below.
    if len(ts) > _FEW_POINTS and _speedups is not None:
        ts = np.ascontiguousarray(ts, np.int64)
        numbers = number_texts(values, is_int)
        rendered = _speedups.render_points(ts, zone.shown_offsets_ms(ts), numbers)
        if rendered is not None:
            return rendered
    return orjson.dumps(points_json(zone, ts, values, is_int))


@dataclass(frozen=True)
class PointArrays:
    """Points of an answer as arrays, for a transport in the server's process that asked
    for them (``Request.arrays``): ``render()`` is the JSON array HTTP sends in their place.
    ``ts`` are epoch ms; the client shows them in ``zone``, as the JSON does."""

    zone: Zone
    ts: Int64Array
    values: Float64Array
    is_int: BoolArray

    def render(self) -> bytes:
        """``render_points`` of the arrays."""
        return render_points(self.zone, self.ts, self.values, self.is_int)


def points_data(
    zone: Zone, ts: Int64Array, values: Float64Array, is_int: BoolArray, *, arrays: bool = False
) -> Any:
    """The ``data`` of an answer: the rendered JSON array, or (``arrays``) the arrays."""
    if arrays:
        return PointArrays(zone, ts, values, is_int)
    return orjson.Fragment(render_points(zone, ts, values, is_int))


def points_json(
    zone: Zone, ts: Int64Array, values: Float64Array, is_int: BoolArray
) -> list[dict[str, Any]]:
    return [
        {"t": t, "v": v} for t, v in zip(zone.format(ts), value_list(values, is_int), strict=True)
    ]


def not_found(kind: str, value: str) -> HTTPError:
    return HTTPError(403, f"Series not found: {kind} {value}", SERIES_NOT_FOUND)
