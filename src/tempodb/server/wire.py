"""Request bodies to columns, and columns to response JSON (spec §3).

Bodies are validated whole before anything is stored.  The common shapes take a vectorised
path (one numpy conversion per column); anything unusual falls back to a per-element check
that names the offending element.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tempodb.errors import SERIES_NOT_FOUND
from tempodb.server.http import HTTPError, bad_request
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
from tempodb.timeutil import parse_timestamp_ms
from tempodb.zones import Zone

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
    raise bad_request(f"Invalid timestamp for {name}: {text}")


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


def _fast_values(raw: Sequence[object]) -> tuple[Float64Array, BoolArray] | None:
    """Vectorised conversion when every value is a plain JSON number in range."""
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
            return f"Invalid timestamp: {value}"
    return f"Invalid timestamp: {value!r}"


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
    values, is_int = _values([p.get("v") for p in points], "Point")
    ts = _times([p.get("t") for p in points], "Point")
    return WriteBatch([ref], np.zeros(len(points), np.int32), ts, values, is_int)


class _RefTable:
    """Distinct series refs of a request, in order of first appearance."""

    def __init__(self) -> None:
        self.refs: list[SeriesRef] = []
        self._index: dict[tuple[SeriesField, str], int] = {}

    def index(self, item: Mapping[str, Any]) -> int | str:
        """The ref index of an element's ``id`` (preferred) or ``key``, or why it has none."""
        field: SeriesField
        if item.get("id") not in (None, ""):
            field, value = "id", item["id"]
            error = key_error(value) and f"Invalid series id: {value!r}"
        elif item.get("key") not in (None, ""):
            field, value = "key", item["key"]
            error = key_error(value)
        else:
            return NO_SERIES
        if error:
            return error
        slot = self._index.get((field, value))
        if slot is None:
            slot = self._index[(field, value)] = len(self.refs)
            self.refs.append(SeriesRef(field, value))
        return slot


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
    #: One entry per element: [] when accepted, else the messages.
    errors: list[list[str]]

    @property
    def failed(self) -> bool:
        return any(self.errors)

    def multistatus(self) -> dict[str, list[dict[str, Any]]]:
        return {
            "multistatus": [
                {"status": "422" if messages else "200", "messages": messages}
                for messages in self.errors
            ]
        }


def parse_multi(body: Any) -> MultiBatch:
    """E12/E13: ``[{"t": TS, "id" | "key": S, "v": NUM}, ...]`` with per-element errors."""
    if not isinstance(body, list):
        raise bad_request('Request body must be a JSON array of {"t": ..., "key": ..., "v": ...}')
    now = now_ms()
    table = _RefTable()
    errors: list[list[str]] = []
    index: list[int] = []
    ts: list[int] = []
    values: list[float] = []
    is_int: list[bool] = []
    for item in body:
        if not isinstance(item, dict):
            errors.append([NO_VALUE, NO_SERIES])
            continue
        messages = []
        value = coerce_value(item.get("v"))
        if isinstance(value, str):
            messages.append(value)
        slot = table.index(item)
        if isinstance(slot, str):
            messages.append(slot)
        stamp = _one_time(item.get("t"), now)
        if isinstance(stamp, str):
            messages.append(stamp)
        errors.append(messages)
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
    )
    return MultiBatch(batch, errors)


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


def points_json(
    zone: Zone, ts: Int64Array, values: Float64Array, is_int: BoolArray
) -> list[dict[str, Any]]:
    return [
        {"t": t, "v": v} for t, v in zip(zone.format(ts), value_list(values, is_int), strict=True)
    ]


def not_found(kind: str, value: str) -> HTTPError:
    return HTTPError(403, f"Series not found: {kind} {value}", SERIES_NOT_FOUND)
