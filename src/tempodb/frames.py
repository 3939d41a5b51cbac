"""pandas DataFrames in and out of the API, vectorised end to end.

Needs ``pip install 'tempodb-revived[pandas]'``; the client imports this module only when a
DataFrame method is called.

Reads parse the JSON answer straight into arrays: the timestamps of the server's fixed-width
shapes (``YYYY-MM-DDTHH:MM:SS.mmm`` + ``Z`` or ``±HH:MM``) are decoded as a byte matrix, with a
per-item fallback for any other shape; no DataPoint is made.  Writes encode the request bodies
as one byte matrix per request: a row per point, the timestamp's digits computed with integer
arithmetic, the value in orjson's shortest round-trip form, padded with JSON whitespace.  Each
series is sent on its own (``/series/key/K/data/``, the server's fast path) unless it is small;
small series share ``/multi/`` requests.  In the server's process (``tempodb.connect``) neither
JSON step happens: the points go over as arrays (``PointColumns``) and come back as arrays.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any
from zoneinfo import ZoneInfo

try:
    import numpy as np
    import numpy.typing as npt
    import orjson
    import pandas as pd
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        f"the DataFrame helpers need pandas ({exc}): pip install 'tempodb-revived[pandas]'"
    ) from exc

from tempodb import protocol
from tempodb.errors import BatchWriteError
from tempodb.objects import DataSet, JSONDict
from tempodb.protocol import Request, Timestamp
from tempodb.timeutil import MAX_MS, MIN_MS, datetime_to_ms, from_wire, ms_to_datetime

__all__ = [
    "WritePlan",
    "dataset_to_frame",
    "dataset_to_series",
    "parse_times_ms",
    "read_request",
    "write_plan",
    "zone_of",
]

I64 = npt.NDArray[np.int64]
UTC = datetime.UTC
MAX_EXACT_INT = 2**53
#: Series with fewer points than this share /multi/ requests instead of one request each.
SMALL_SERIES = 1_000


# -- zones and timestamps --------------------------------------------------------------------


def zone_of(tz: str | datetime.tzinfo | None) -> datetime.tzinfo:
    """The tzinfo for a ``tz`` parameter: "" or None is UTC; ``UTC``/``GMT``/``Z``, fixed
    offsets ``±HH:MM``/``±HHMM``/``±HH`` and IANA names as the server reads them.

    >>> zone_of("+05:30")
    datetime.timezone(datetime.timedelta(seconds=19800))
    """
    if isinstance(tz, datetime.tzinfo):
        return tz
    if not tz or tz.upper() in ("UTC", "GMT", "Z"):
        return UTC
    if tz[0] in "+-":
        digits = tz[1:].replace(":", "")
        if digits.isdigit() and len(digits) in (2, 4):
            hours, minutes = int(digits[:2]), int(digits[2:] or 0)
            if hours <= 23 and minutes <= 59:
                offset = datetime.timedelta(hours=hours, minutes=minutes)
                return datetime.timezone(-offset if tz[0] == "-" else offset)
        raise ValueError(f"Invalid time zone: {tz}")
    return ZoneInfo(tz)


def _days_from_civil(year: I64, month: I64, day: I64) -> I64:
    """Days since 1970-01-01 of proleptic Gregorian dates (vectorised)."""
    year = year - (month <= 2)
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + np.where(month > 2, -3, 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    result: I64 = era * 146097 + doe - 719468
    return result


def _civil_from_days(days: I64) -> tuple[I64, I64, I64]:
    """Year, month and day of days since 1970-01-01 (vectorised)."""
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + np.where(mp < 10, 3, -9)
    year = yoe + era * 400 + (month <= 2)
    return year, month, day


_DIGITS = np.array([0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, 20, 21, 22])
_SEPARATORS = {4: b"-", 7: b"-", 10: b"T", 13: b":", 16: b":", 19: b"."}
_WIDTH = 30  # one more than the longest shape, to see longer texts


def format_times(ms: I64) -> npt.NDArray[np.uint8]:
    """``YYYY-MM-DDTHH:MM:SS.mmm`` of epoch milliseconds (UTC), as an (n, 23) byte matrix."""
    days, rem = np.divmod(ms, 86_400_000)
    year, month, day = _civil_from_days(days)
    fields = (
        year // 1000,
        year // 100 % 10,
        year // 10 % 10,
        year % 10,
        month // 10,
        month % 10,
        day // 10,
        day % 10,
        rem // 36_000_000,
        rem // 3_600_000 % 10,
        rem // 600_000 % 6,
        rem // 60_000 % 10,
        rem // 10_000 % 6,
        rem // 1000 % 10,
        rem // 100 % 10,
        rem // 10 % 10,
        rem % 10,
    )
    out = np.empty((len(ms), 23), np.uint8)
    for column, char in _SEPARATORS.items():
        out[:, column] = ord(char)
    for column, digits in zip(_DIGITS.tolist(), fields, strict=True):
        out[:, column] = digits + 48
    return out


def _fast_times_ms(texts: Sequence[str]) -> I64 | None:
    """Epoch ms of ``YYYY-MM-DDTHH:MM:SS.mmm`` + ``Z``/``±HH:MM`` texts; None for any other
    shape (or an impossible field) anywhere."""
    try:
        raw = np.array(texts, dtype=f"S{_WIDTH}")
    except (UnicodeEncodeError, TypeError, ValueError):
        return None
    m = raw.view(np.uint8).reshape(len(texts), _WIDTH)
    digits = m[:, _DIGITS] - np.uint8(48)  # anything but a digit wraps around to > 9
    ok = (digits <= 9).all(axis=1) & (m[:, 29] == 0)
    for column, char in _SEPARATORS.items():
        ok &= m[:, column] == ord(char)
    sign = m[:, 23]
    zulu = (sign == ord("Z")) & (m[:, 24] == 0)
    off = m[:, [24, 25, 27, 28]] - np.uint8(48)
    signed = ((sign == ord("+")) | (sign == ord("-"))) & (m[:, 26] == ord(":"))
    signed &= (off <= 9).all(axis=1)
    ok &= zulu | signed
    if not ok.all():
        return None
    d = digits.astype(np.int32)

    def number(first: int, count: int) -> npt.NDArray[np.int32]:
        value = d[:, first]
        for column in range(first + 1, first + count):
            value = value * 10 + d[:, column]
        return value

    year, month, day = number(0, 4), number(4, 2), number(6, 2)
    hour, minute, second, milli = number(8, 2), number(10, 2), number(12, 2), number(14, 3)
    if not (
        ((month >= 1) & (month <= 12) & (day >= 1) & (day <= 31) & (year >= 1)).all()
        and ((hour <= 23) & (minute <= 59) & (second <= 59)).all()
    ):
        return None
    o = off.astype(np.int32)
    offset_min = (o[:, 0] * 10 + o[:, 1]) * 60 + o[:, 2] * 10 + o[:, 3]
    offset_min = np.where(zulu, 0, np.where(sign == ord("-"), -offset_min, offset_min))
    days = _days_from_civil(year.astype(np.int64), month.astype(np.int64), day.astype(np.int64))
    minutes = (days * 24 + hour) * 60 + (minute - offset_min)
    ms: I64 = (minutes * 60 + second) * 1000 + milli
    return ms


def parse_times_ms(texts: Sequence[str]) -> I64:
    """Epoch milliseconds of response timestamps, vectorised for the server's shapes.

    >>> parse_times_ms(["2012-01-01T00:00:00.000Z", "2012-01-01T00:00:00.000-06:00"])
    array([1325376000000, 1325397600000])
    """
    if not texts:
        return np.empty(0, np.int64)
    fast = _fast_times_ms(texts)
    if fast is not None:
        return fast
    return np.fromiter((datetime_to_ms(from_wire(t)) for t in texts), np.int64, len(texts))


def _index(ms: I64, zone: datetime.tzinfo) -> pd.DatetimeIndex:
    index = pd.DatetimeIndex(ms.astype("datetime64[ms]"), name="time").tz_localize(UTC)
    return index.tz_convert(zone)


def _values(raw: Sequence[Any]) -> npt.NDArray[Any]:
    """int64 when every value is an integer, else float64."""
    kinds = set(map(type, raw))
    if kinds and kinds <= {int}:
        return np.fromiter(raw, np.int64, len(raw))
    return np.fromiter(raw, np.float64, len(raw))


# -- reads -----------------------------------------------------------------------------------


def dataset_to_series(dataset: DataSet) -> pd.Series[Any]:
    """A DataSet's points as a pandas Series (see :meth:`tempodb.DataSet.to_series`)."""
    zone = zone_of(dataset.tz if dataset.tz is not None else dataset.start.tzinfo)
    points = dataset.data
    ms = np.fromiter((datetime_to_ms(p.ts) for p in points), np.int64, len(points))
    return pd.Series(
        _values([p.value for p in points]), index=_index(ms, zone), name=dataset.series.key
    )


def dataset_to_frame(dataset: DataSet) -> pd.DataFrame:
    """A DataSet as a one-column DataFrame named by the series key."""
    return dataset_to_series(dataset).to_frame()


def _frame(datasets: list[JSONDict], zone: datetime.tzinfo) -> pd.DataFrame:
    """The DataFrame of a ``GET /data/`` answer (JSON)."""
    columns: list[pd.Series[Any]] = []
    for dataset in datasets:
        data = dataset.get("data") or []
        ms = parse_times_ms(list(map(itemgetter("t"), data)))
        values = _values(list(map(itemgetter("v"), data)))
        columns.append(_column(dataset, ms, values, zone))
    return _assemble(columns, zone)


def _array_values(values: npt.NDArray[np.float64], is_int: npt.NDArray[np.bool_]) -> Any:
    """What ``_values`` gives for the JSON of these values: integers where ``is_int`` (so
    int64 when all are), else the floats."""
    if len(values) and is_int.all():
        return values.astype(np.int64)
    if is_int.any():  # as the JSON integers would read back (0, never -0.0)
        return np.where(is_int, values.astype(np.int64).astype(np.float64), values)
    return values


def _array_frame(datasets: list[JSONDict], zone: datetime.tzinfo) -> pd.DataFrame:
    """The DataFrame of a ``GET /data/`` answer given as arrays by a transport in the
    server's process (``Request.parse_columns``): each ``data`` has ``ts`` (epoch ms),
    ``values`` and ``is_int``; the same frame as ``_frame`` of its JSON."""
    columns: list[pd.Series[Any]] = []
    for dataset in datasets:
        data = dataset["data"]
        ms = np.asarray(data.ts, np.int64)
        columns.append(_column(dataset, ms, _array_values(data.values, data.is_int), zone))
    return _assemble(columns, zone)


def _column(dataset: JSONDict, ms: I64, values: Any, zone: datetime.tzinfo) -> pd.Series[Any]:
    key = (dataset.get("series") or {}).get("key") or ""
    return pd.Series(values, index=_index(ms, zone), name=key)


def _assemble(columns: list[pd.Series[Any]], zone: datetime.tzinfo) -> pd.DataFrame:
    if not columns:
        return pd.DataFrame(index=_index(np.empty(0, np.int64), zone))
    frame = pd.concat(columns, axis=1, join="outer", sort=True)
    frame.index.name = "time"
    return frame


def read_request(
    start: Timestamp,
    end: Timestamp,
    interval: str,
    function: str,
    ids: Sequence[str] | None,
    keys: Sequence[str] | None,
    tags: Sequence[str] | None,
    attributes: Mapping[str, str] | None,
    tz: str,
) -> Request[pd.DataFrame]:
    """``GET /data/`` (as :meth:`tempodb.Client.read`) answered with a DataFrame."""
    zone = zone_of(tz)
    params = protocol.range_params(start, end, interval, function, tz)
    params += protocol.filter_params(ids, keys, tags, attributes)

    def parse(status: int, body: bytes) -> pd.DataFrame:
        return _frame(protocol.loads(body), zone)

    def parse_columns(status: int, datasets: Any) -> pd.DataFrame:
        return _array_frame(datasets, zone)

    return Request("GET", "/data/", parse, params, parse_columns=parse_columns)


# -- writes ----------------------------------------------------------------------------------


def _times_ms(values: Any) -> I64:
    """Epoch ms (UTC, floored) of a DatetimeIndex or a column of datetimes or texts."""
    if isinstance(values, pd.DatetimeIndex):
        index = values
    elif isinstance(values, pd.Series) and (
        isinstance(values.dtype, pd.DatetimeTZDtype) or values.dtype.kind == "M"
    ):
        index = pd.DatetimeIndex(values)
    else:
        index = pd.DatetimeIndex(pd.to_datetime(values, utc=True, format="ISO8601"))
    if index.tz is not None:
        index = index.tz_convert(UTC).tz_localize(None)
    if index.hasnans:
        raise ValueError("write_dataframe: a timestamp is missing (NaT)")
    ms: I64 = index.to_numpy().astype("datetime64[ms]").astype(np.int64)
    if len(ms) and (ms.min() < MIN_MS or ms.max() > MAX_MS):
        raise ValueError("write_dataframe: a timestamp is outside years 1-9999")
    return ms


def _json_texts(values: npt.NDArray[Any]) -> npt.NDArray[np.bytes_]:
    """The JSON text of each number (shortest round-trip form for floats)."""
    if len(values) == 0:
        return np.empty(0, "S1")
    encoded = orjson.dumps(values, option=orjson.OPT_SERIALIZE_NUMPY)
    return np.array(encoded[1:-1].split(b","))


def _number_texts(
    values: npt.NDArray[np.float64], is_int: npt.NDArray[np.bool_]
) -> npt.NDArray[np.bytes_]:
    """The JSON text of each value: an integer where ``is_int``, else the float's."""
    if is_int.all():
        return _json_texts(values.astype(np.int64))
    if not is_int.any():
        return _json_texts(values)
    texts = _json_texts(values)
    whole = _json_texts(values[is_int].astype(np.int64))
    texts = texts.astype(f"S{max(texts.dtype.itemsize, whole.dtype.itemsize)}")
    texts[is_int] = whole
    return texts


def _value_columns(
    column: Any, what: str
) -> tuple[npt.NDArray[np.float64], bool, npt.NDArray[np.bool_] | None]:
    """A column's numbers as floats, whether they are integers (sent as such), and the mask
    of the cells that hold one (None: every cell does)."""
    series = pd.Series(column) if not isinstance(column, pd.Series) else column
    if series.dtype.kind == "O" or isinstance(series.dtype, pd.StringDtype):
        try:
            series = pd.to_numeric(series)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"write_dataframe: {what} holds values that are not numbers") from exc
    mask = series.notna().to_numpy()
    present = None if mask.all() else mask
    kind = series.dtype.kind
    if kind in "biu":
        values = series.to_numpy(dtype=np.int64, na_value=0)
        kept = values if present is None else values[present]
        if len(kept) and np.abs(kept).max() > MAX_EXACT_INT:
            raise ValueError(f"write_dataframe: {what} holds an integer beyond 2^53")
        return values.astype(np.float64), True, present
    if kind == "f":
        floats = series.to_numpy(dtype=np.float64, na_value=np.nan)
        if not np.isfinite(floats if present is None else floats[present]).all():
            raise ValueError(f"write_dataframe: {what} holds an infinite value")
        return floats, False, present
    raise TypeError(f"write_dataframe: {what} is not numeric (dtype {series.dtype})")


def _blank(texts: npt.NDArray[np.bytes_]) -> npt.NDArray[np.uint8]:
    """The texts as a byte matrix, NUL padding turned into spaces."""
    width = texts.dtype.itemsize
    matrix = np.ascontiguousarray(texts).view(np.uint8).reshape(len(texts), width).copy()
    matrix[matrix == 0] = ord(" ")
    return matrix


def _encode(
    ms: I64, values: npt.NDArray[np.bytes_], keys: npt.NDArray[np.bytes_] | None = None
) -> bytes:
    """A JSON array of ``{"t": ..., ["key": ...,] "v": ...}`` objects, built as one byte
    matrix (fixed-width fields, JSON whitespace as padding)."""
    n = len(ms)
    if n == 0:
        return b"[]"
    pieces: list[bytes | npt.NDArray[np.uint8]] = [b'{"t":"', format_times(ms), b'Z",']
    if keys is not None:
        pieces += [b'"key":', _blank(keys), b","]
    pieces += [b'"v":', _blank(values), b"},"]
    width = sum(p.shape[1] if isinstance(p, np.ndarray) else len(p) for p in pieces)
    matrix = np.empty((n, width), np.uint8)
    at = 0
    for piece in pieces:
        if isinstance(piece, np.ndarray):
            matrix[:, at : at + piece.shape[1]] = piece
            at += piece.shape[1]
        else:
            matrix[:, at : at + len(piece)] = np.frombuffer(piece, np.uint8)
            at += len(piece)
    matrix[-1, -1] = ord("]")
    return b"[" + matrix.tobytes()


@dataclass(frozen=True)
class PointColumns:
    """The points of one write request as arrays, and (``encode``) the JSON body they stand
    for: what a transport in the server's process hands over instead of the body
    (``Request.columns``; the server's ``wire.PointColumns``).  ``keys`` and ``key_index``
    (each point's index into ``keys``, distinct keys in order of first appearance) are set
    for a ``/multi/`` request only."""

    ts: I64
    values: npt.NDArray[np.float64]
    is_int: npt.NDArray[np.bool_]
    keys: list[str] | None = None
    key_index: npt.NDArray[np.int32] | None = None

    def encode(self) -> bytes:
        """The JSON body: ``[{"t": ..., ["key": ...,] "v": ...}, ...]``."""
        key_texts = None
        if self.keys is not None and self.key_index is not None:
            key_texts = np.array([protocol.dumps(k) for k in self.keys])[self.key_index]
        return _encode(self.ts, _number_texts(self.values, self.is_int), key_texts)


@dataclass
class WritePlan:
    """The requests of one ``write_dataframe`` call and the bookkeeping of rejected points.

    ``keys`` are the distinct series keys; ``codes``, ``ms``, ``values`` and ``is_int`` hold
    one row per point, grouped by series.
    """

    keys: list[str]
    codes: npt.NDArray[np.intp]
    ms: I64
    values: npt.NDArray[np.float64]
    is_int: npt.NDArray[np.bool_]
    increment: bool
    chunk_size: int
    rejected: list[tuple[JSONDict, list[str]]] = field(default_factory=list)

    def requests(
        self, *, columnar: bool = False
    ) -> Iterator[tuple[Request[Any], npt.NDArray[np.intp]]]:
        """Each request with the rows it carries.  ``columnar``: for a transport in the
        server's process, the points as arrays (``Request.columns``), not encoded."""
        action = "increment" if self.increment else "data"
        multi_path = "/multi/increment/" if self.increment else "/multi/"
        small: list[npt.NDArray[np.intp]] = []
        small_count = 0
        bounds = np.flatnonzero(np.diff(self.codes)) + 1
        starts = np.concatenate(([0], bounds)) if len(self.codes) else np.empty(0, np.intp)
        ends = np.concatenate((bounds, [len(self.codes)])) if len(self.codes) else starts
        for begin, end in zip(starts.tolist(), ends.tolist(), strict=True):
            if end - begin < min(SMALL_SERIES, self.chunk_size):
                small.append(np.arange(begin, end))
                small_count += end - begin
                if small_count >= self.chunk_size:
                    yield self._multi(multi_path, np.concatenate(small), columnar)
                    small, small_count = [], 0
                continue
            key = self.keys[int(self.codes[begin])]
            for at in range(begin, end, self.chunk_size):
                stop = min(at + self.chunk_size, end)
                rows = np.arange(at, stop)
                columns = PointColumns(self.ms[at:stop], self.values[at:stop], self.is_int[at:stop])
                if columnar:
                    request = protocol.post_points_body("key", key, action, None, columns=columns)
                else:
                    request = protocol.post_points_body("key", key, action, columns.encode())
                yield request, rows
        if small:
            yield self._multi(multi_path, np.concatenate(small), columnar)

    def _multi(
        self, path: str, rows: npt.NDArray[np.intp], columnar: bool
    ) -> tuple[Request[JSONDict | None], npt.NDArray[np.intp]]:
        codes = self.codes[rows]
        distinct, first, inverse = np.unique(codes, return_index=True, return_inverse=True)
        order = np.argsort(first, kind="stable")  # keys in order of first appearance
        rank = np.empty(len(order), np.int32)
        rank[order] = np.arange(len(order), dtype=np.int32)
        columns = PointColumns(
            self.ms[rows],
            self.values[rows],
            self.is_int[rows],
            [self.keys[int(code)] for code in distinct[order]],
            rank[inverse.reshape(-1)],
        )
        if columnar:
            return protocol.multi_body(path, None, columns=columns), rows
        return protocol.multi_body(path, columns.encode()), rows

    def point(self, row: int) -> JSONDict:
        """Row ``row`` as a ``write_multi`` element."""
        value = float(self.values[row])
        return {
            "t": ms_to_datetime(int(self.ms[row])),
            "key": self.keys[int(self.codes[row])],
            "v": int(value) if self.is_int[row] else value,
        }

    def check(self, result: JSONDict | None, rows: npt.NDArray[np.intp]) -> None:
        """Note the points a 207 answer rejected."""
        if not result:
            return
        statuses = result["error"]["multistatus"]
        for row, status in zip(rows.tolist(), statuses, strict=False):
            if str(status.get("status")) != "200":
                self.rejected.append((self.point(row), list(status.get("messages") or [])))

    def finish(self) -> None:
        """Raise BatchWriteError when the server rejected points."""
        if self.rejected:
            raise BatchWriteError(
                f"the server rejected {len(self.rejected)} points: {self.rejected[0][1]}",
                points=[point for point, _ in self.rejected],
                rejected=self.rejected,
            )


def write_plan(
    df: pd.DataFrame,
    increment: bool,
    key_column: str,
    time_column: str,
    value_column: str,
    chunk_size: int,
) -> WritePlan:
    """Validate and arrange a DataFrame for writing (see ``Client.write_dataframe``)."""
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"write_dataframe needs a pandas DataFrame, not {type(df).__name__}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be positive, not {chunk_size}")
    if key_column in df.columns:
        return _long_plan(df, increment, key_column, time_column, value_column, chunk_size)
    if not isinstance(df.index, pd.DatetimeIndex):
        raise TypeError(
            "write_dataframe needs a DatetimeIndex (one series per column) or "
            f"{key_column!r}, {time_column!r} and {value_column!r} columns"
        )
    ms = _times_ms(df.index)
    keys: list[str] = []
    columns = []
    for name, column in df.items():
        keys.append(_checked_key(name))
        columns.append(_value_columns(column, f"column {name!r}"))
    # One copy into arrays made once (no lists of pieces to concatenate): the frames are big.
    counts = [len(ms) if present is None else int(present.sum()) for _, _, present in columns]
    total = sum(counts)
    codes = np.empty(total, np.intp)
    times = np.empty(total, np.int64)
    numbers = np.empty(total, np.float64)
    flags = np.empty(total, np.bool_)
    at = 0
    for code, ((values, is_int, present), count) in enumerate(zip(columns, counts, strict=True)):
        end = at + count
        codes[at:end] = code
        flags[at:end] = is_int
        times[at:end] = ms if present is None else ms[present]
        numbers[at:end] = values if present is None else values[present]
        at = end
    return WritePlan(keys, codes, times, numbers, flags, increment, chunk_size)


def _long_plan(
    df: pd.DataFrame,
    increment: bool,
    key_column: str,
    time_column: str,
    value_column: str,
    chunk_size: int,
) -> WritePlan:
    if value_column not in df.columns:
        raise TypeError(f"write_dataframe: long format needs a {value_column!r} column")
    if time_column in df.columns:
        ms = _times_ms(df[time_column])
    elif isinstance(df.index, pd.DatetimeIndex):
        ms = _times_ms(df.index)
    else:
        raise TypeError(
            f"write_dataframe: long format needs a {time_column!r} column or a DatetimeIndex"
        )
    codes, uniques = pd.factorize(df[key_column], use_na_sentinel=True)
    if (codes < 0).any():
        raise ValueError(f"write_dataframe: a {key_column!r} cell is missing")
    keys = [_checked_key(k) for k in uniques]
    values, is_int, present = _value_columns(df[value_column], f"column {value_column!r}")
    if present is not None:
        codes, ms, values = codes[present], ms[present], values[present]
    order = np.argsort(codes, kind="stable")
    return WritePlan(
        keys,
        codes[order].astype(np.intp),
        ms[order],
        values[order],
        np.full(len(order), is_int, np.bool_),
        increment,
        chunk_size,
    )


def _checked_key(name: object) -> str:
    if not isinstance(name, str) or not name:
        raise TypeError(f"write_dataframe: series keys must be non-empty strings, not {name!r}")
    protocol.check_key(name)
    return name


def multi_to_frame(points: Sequence[Any], tz: str | None) -> pd.DataFrame:
    """``MultiPoint``\\ s (``read_multi``, ``read_rollups``) as a DataFrame: a column per
    series key (or fold), sorted, on a time-zone aware index in ``tz``; NaN where absent."""
    zone = zone_of(tz or None)
    ms = np.fromiter((datetime_to_ms(p.ts) for p in points), np.int64, len(points))
    frame = pd.DataFrame.from_records([p.values for p in points], index=_index(ms, zone))
    return frame.reindex(columns=sorted(frame.columns))
