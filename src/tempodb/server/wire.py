"""Request bodies to columns, and columns to response JSON (spec §3).

Bodies are validated whole before anything is stored.  The common shapes take a vectorised
path (one numpy conversion per column); anything unusual falls back to a per-element check
that names the offending element.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from tempodb.errors import SERIES_NOT_FOUND

try:
    from tempodb import _speedups
except ImportError:  # built without a C compiler: the numpy paths serve
    _speedups = None  # type: ignore[assignment]
from tempodb.rollup import Moments, numpy_moments
from tempodb.server.http import HTTPError, bad_request
from tempodb.server.timestamps import InvalidTimestamp, parse_rows_ms, parse_timestamps_ms
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
from tempodb.timeutil import parse_timestamp_ms
from tempodb.zones import Zone, excerpt

KEY_PATTERN = re.compile(r"[a-zA-Z0-9.:;\-_/\\ ]+")
MAX_KEY_LENGTH = 255

NO_VALUE = "Must provide a numeric value"
NO_SERIES = "Must provide a series ID or key"


def key_error(key: object) -> str | None:
    """Why ``key`` is not a valid series key, or None."""
    if not isinstance(key, str) or not key:
        return "Series key must be a non-empty string"
    if len(key) > MAX_KEY_LENGTH:
        return f"Series key is longer than {MAX_KEY_LENGTH} characters"
    if not KEY_PATTERN.fullmatch(key):
        return f"Invalid series key: {key!r} (allowed: letters, digits, space and . : ; - _ / \\)"
    return None


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
            return f"Integer value out of range (at most 2^53 in magnitude): {value}"
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


def parse_points_body(body: bytes, parse_json: Callable[[], Any], ref: SeriesRef) -> WriteBatch:
    """E8/E9 from the raw body: the C scanner (or, when the extension is not built, the
    vectorised ``fast_points``) for bodies of plain ``t`` and ``v`` items, else
    ``parse_points`` on the parsed JSON."""
    fast = c_points(body) if _speedups is not None else fast_points(body)
    if fast is not None:
        return _one_series(ref, *fast)
    return parse_points(parse_json(), ref)


def c_points(body: bytes) -> tuple[Int64Array, Float64Array, BoolArray] | None:
    """``fast_points`` by the C extension's scanner, which takes any JSON spacing and either
    key order; None when the general path must decide."""
    scanned = _speedups.parse_points(body)
    if scanned is None:
        return None
    ts, values, is_int = scanned
    return (
        np.frombuffer(ts, np.int64),
        np.frombuffer(values, np.float64),
        np.frombuffer(is_int, np.bool_),
    )


# Bytes of JSON numbers, JSON whitespace and commas (a stray comma changes the item count).
_NUMBER_BYTES = np.zeros(256, np.bool_)
_NUMBER_BYTES[np.frombuffer(b"0123456789+-.eE \t\r\n,", np.uint8)] = True
_JSON_SPACE = rb"[ \t\r\n]*"
_SPACE_RE = re.compile(_JSON_SPACE)
_GAP_RE = re.compile(_JSON_SPACE + rb"," + _JSON_SPACE)
_HEAD_RE = re.compile(rb"\{" + _JSON_SPACE + rb'"t"' + _JSON_SPACE + rb":" + _JSON_SPACE + rb'"')
_MIDDLE_RE = re.compile(rb'"' + _JSON_SPACE + rb"," + _JSON_SPACE + rb'"v"' + _JSON_SPACE + rb":")


def fast_points(body: bytes) -> tuple[Int64Array, Float64Array, BoolArray] | None:
    """``[{"t": TS, "v": NUM}, ...]`` decoded without building a Python object per point.

    Takes only bodies whose every item has the layout of the first one (the same spacing, the
    keys in that order, timestamps of one fixed-width shape, plain JSON numbers), checking
    every byte of the body; returns None for anything else, and the caller parses the JSON as
    usual.  What it accepts it decodes exactly as ``parse_points`` would: the timestamps with
    the same shape decoder, the numbers with the same JSON parser (their texts gathered into
    one JSON array).
    """
    body = body.strip()
    if len(body) < 2 or body[0] != 0x5B or body[-1] != 0x5D:
        return None
    buf = np.frombuffer(body, np.uint8)
    closes = np.flatnonzero(buf == 0x7D)
    count = len(closes)
    first = body.find(b"{")
    if count < 2 or first < 0:
        return None
    first_close = int(closes[0])
    head = _HEAD_RE.match(body, first)
    second = body.find(b"{", first_close)
    if (
        head is None
        or second < 0
        or not _SPACE_RE.fullmatch(body, 1, first)
        or not _SPACE_RE.fullmatch(body, int(closes[-1]) + 1, len(body) - 1)
    ):
        return None
    quote = body.find(b'"', head.end(), first_close)
    middle = _MIDDLE_RE.match(body, quote) if quote > 0 else None
    gap = body[first_close + 1 : second]
    if middle is None or middle.end() >= first_close or not _GAP_RE.fullmatch(gap):
        return None
    # Every item laid out as the first one: the gaps, and the fixed part from "{" to the value
    # (its literal text and the timestamp, which the shape decoder checks).
    opens = np.empty(count, np.intp)
    opens[0] = first
    opens[1:] = closes[:-1] + 1 + len(gap)
    at_ts, width, at_value = head.end() - first, quote - head.end(), middle.end() - first
    begins = opens + at_value
    spans = closes - begins + 1  # each number with its closing brace
    if int(spans.min()) < 2:
        return None
    fixed = np.lib.stride_tricks.sliding_window_view(buf, at_value)[opens]
    template = np.frombuffer(body[first : first + at_value], np.uint8)
    literal = np.ones(at_value, np.bool_)
    literal[at_ts : at_ts + width] = False
    if not np.array_equal(
        fixed[:, literal], np.broadcast_to(template[literal], (count, int(literal.sum())))
    ):
        return None
    if gap != b",":
        gaps = buf[(closes[:-1] + 1)[:, None] + np.arange(len(gap))]
        if not np.array_equal(gaps, np.broadcast_to(np.frombuffer(gap, np.uint8), gaps.shape)):
            return None
    elif not bool(np.all(buf[closes[:-1] + 1] == 0x2C)):
        return None
    ts = parse_rows_ms(np.ascontiguousarray(fixed[:, at_ts : at_ts + width].T))
    if ts is None:
        return None
    # The numbers, each closing brace becoming the comma of one JSON array.
    ends = np.cumsum(spans)
    text = buf[np.repeat(begins - (ends - spans), spans) + np.arange(int(ends[-1]))]
    text[ends - 1] = 0x2C
    if not _NUMBER_BYTES[text].all():
        return None
    try:
        numbers = orjson.loads(b"[" + text[:-1].tobytes() + b"]")
    except orjson.JSONDecodeError:
        return None
    if len(numbers) != count:
        return None
    # A JSON number is an integer when it has neither a fraction nor an exponent.
    marks = (text == 0x2E) | ((text | 0x20) == 0x65)
    is_int = np.add.reduceat(marks, ends - spans) == 0
    values = np.fromiter(numbers, np.float64, count)
    # 2**53 + 1 rounds to 2**53 as a float64: near the bound, let the general path decide.
    if is_int.any() and float(np.abs(values[is_int]).max()) >= MAX_EXACT_INT:
        return None
    return ts, values, is_int


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
        return parse_multi(parse_json())
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
_ITEM_OPEN = np.frombuffer(b'{"t":"', np.uint8)
_ITEM_MIDDLE = np.frombuffer(b'","v":', np.uint8)


#: The summary's sums and extremes in one C call without temporaries, when built.
summary_moments: Moments = numpy_moments if _speedups is None else _speedups.summary_moments


def render_points(zone: Zone, ts: Int64Array, values: Float64Array, is_int: BoolArray) -> bytes:
    """``[{"t":"...","v":...},...]``: what ``orjson.dumps(points_json(...))`` gives, from the
    JSON array of the numbers and the timestamps rendered in C (or with numpy, when the
    extension is not built)."""
    # A few points are cheaper one by one than through the arrays below.
    if len(ts) > _FEW_POINTS:
        if _speedups is None:
            rendered = _render_points_numpy(zone, ts, values, is_int)
        else:
            ts = np.ascontiguousarray(ts, np.int64)
            numbers = number_texts(values, is_int)
            rendered = _speedups.render_points(ts, zone.shown_offsets_ms(ts), numbers)
        if rendered is not None:
            return rendered
    return orjson.dumps(points_json(zone, ts, values, is_int))


def _render_points_numpy(
    zone: Zone, ts: Int64Array, values: Float64Array, is_int: BoolArray
) -> bytes | None:
    """``render_points`` assembled with numpy from the fixed-width timestamp texts; None when
    they are not all of one width."""
    count = len(ts)
    stamps = zone.format_ascii(ts)
    if stamps is None:
        return None
    numbers = np.frombuffer(number_texts(values, is_int), np.uint8)
    commas = np.flatnonzero(numbers == 0x2C)
    begins = np.empty(count, np.intp)
    begins[0] = 1
    begins[1:] = commas + 1
    lengths = np.empty(count, np.intp)
    lengths[:-1] = commas - begins[:-1]
    lengths[-1] = len(numbers) - 1 - begins[-1]
    width = stamps.shape[1]
    prefix = 12 + width  # {"t":"TS","v":
    starts = np.empty(count, np.intp)
    starts[0] = 1
    np.cumsum(prefix + 2 + lengths[:-1], out=starts[1:])
    starts[1:] += 1
    total = int(starts[-1]) + prefix + int(lengths[-1]) + 2
    # Rows are copied whole into overlapping windows of the output, in order: first each
    # number with what follows it in ``numbers`` (up to the longest), then each item's head,
    # which overwrites whatever the previous number's row ran over.
    reach = int(lengths.max()) + 1
    source = np.zeros(len(numbers) + reach, np.uint8)
    source[: len(numbers)] = numbers
    out = np.empty(total + reach, np.uint8)
    windows = np.lib.stride_tricks.as_strided(out, (total, reach), (1, 1))
    windows[starts + prefix] = np.lib.stride_tricks.sliding_window_view(source, reach)[begins]
    head = np.empty(count, np.dtype([("open", "V6"), ("ts", f"V{width}"), ("middle", "V6")]))
    head["open"] = _ITEM_OPEN.view("V6")[0]
    head["ts"] = stamps.view(f"V{width}")[:, 0]
    head["middle"] = _ITEM_MIDDLE.view("V6")[0]
    heads = np.lib.stride_tricks.as_strided(out, (total, prefix), (1, 1))
    heads[starts] = head.view(np.uint8).reshape(count, prefix)
    closes = starts + prefix + lengths
    out[closes] = 0x7D
    out[closes + 1] = 0x2C
    out[0], out[total - 1] = 0x5B, 0x5D
    return out[:total].tobytes()


def points_json(
    zone: Zone, ts: Int64Array, values: Float64Array, is_int: BoolArray
) -> list[dict[str, Any]]:
    return [
        {"t": t, "v": v} for t, v in zip(zone.format(ts), value_list(values, is_int), strict=True)
    ]


def not_found(kind: str, value: str) -> HTTPError:
    return HTTPError(403, f"Series not found: {kind} {value}", SERIES_NOT_FOUND)
