"""The TempoDB v1 client: one method per API call, with the original 0.5.0 signatures.

Example::

    from datetime import datetime
    from tempodb import Client, DataPoint

    client = Client("api-key", "api-secret", host="localhost", port=4242, secure=False)
    client.write_key("my-custom-key", [DataPoint(datetime(2012, 1, 1), 12.34)])
    data = client.read_key("my-custom-key", datetime(2012, 1, 1), datetime(2012, 1, 2))
"""

from __future__ import annotations

import base64
import datetime
import re
from collections.abc import Iterable, Mapping, Sequence
from importlib import metadata
from typing import Any
from urllib.parse import quote, urlencode

import urllib3
from urllib3.exceptions import HTTPError as Urllib3Error

from tempodb.errors import (
    ERROR_CODE_HEADER,
    TempoDBConnectionError,
    error_for_response,
)
from tempodb.objects import (
    DataPoint,
    DataSet,
    DeleteSummary,
    JSONDict,
    Series,
    SingleValueSet,
)
from tempodb.timeutil import to_wire

try:  # orjson is several times faster on large reads; the stdlib serves when it is absent.
    import orjson

    def _dumps(obj: Any) -> bytes:
        return orjson.dumps(obj)

    def _loads(data: bytes) -> Any:
        return orjson.loads(data)

except ImportError:  # pragma: no cover - exercised only without the server extra
    import json

    def _dumps(obj: Any) -> bytes:
        return json.dumps(obj, separators=(",", ":")).encode()

    def _loads(data: bytes) -> Any:
        return json.loads(data)


API_HOST = "api.tempo-db.com"
API_PORT = 443
API_VERSION = "v1"

VALID_SERIES_KEY = r"^[a-zA-Z0-9\.:;\-_/\\ ]*$"
RE_VALID_SERIES_KEY = re.compile(VALID_SERIES_KEY)

Timestamp = datetime.datetime | datetime.date
Points = Iterable[DataPoint | Mapping[str, Any] | tuple[Timestamp, int | float]]

try:
    __version__ = metadata.version("tempodb")
except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare source tree
    __version__ = "0+unknown"


class Client:
    """Stores the credentials and connection pool for one TempoDB database.

    Args:
        key: API key.
        secret: API secret.
        host: hostname of the server.
        port: port of the server.
        secure: True for https, False for plain http.
        pool_connections: how many hosts keep a connection pool.
        pool_maxsize: how many keep-alive connections each pool holds.
        timeout: seconds to wait for the server to connect and answer (keyword only).
        ca_certs: a CA bundle (PEM file) to verify the server's certificate with, for a
            private server with its own certificate authority (keyword only).

    Every method raises :class:`~tempodb.TempoDBApiException` (or a subclass) when the call
    fails.  Naive datetimes mean UTC; every datetime returned is time-zone aware.
    """

    def __init__(
        self,
        key: str,
        secret: str,
        host: str = API_HOST,
        port: int = API_PORT,
        secure: bool = True,
        pool_connections: int = 10,
        pool_maxsize: int = 10,
        *,
        timeout: float = 60.0,
        ca_certs: str | None = None,
    ) -> None:
        self.key = key
        self.secret = secret
        self.host = host
        self.port = port
        self.secure = secure
        scheme = "https" if secure else "http"
        default_port = 443 if secure else 80
        netloc = host if port == default_port else f"{host}:{port}"
        self.base_url = f"{scheme}://{netloc}/{API_VERSION}"
        token = base64.b64encode(f"{key}:{secret}".encode()).decode("ascii")
        self._headers = {
            "Authorization": f"Basic {token}",
            "User-Agent": f"tempodb-python/{__version__}",
            "Accept-Encoding": "gzip",
        }
        self._post_headers = {**self._headers, "Content-Type": "application/json"}
        self._pool = urllib3.PoolManager(
            num_pools=pool_connections,
            maxsize=pool_maxsize,
            block=False,
            timeout=urllib3.Timeout(connect=min(timeout, 10.0), read=timeout),
            # Connection failures are retried; a broken response is retried only for
            # idempotent methods, so an increment is never applied twice.
            retries=urllib3.Retry(total=2, connect=2, read=1, status=0, redirect=0, other=0),
            ca_certs=ca_certs,
        )

    def close(self) -> None:
        """Close the pooled connections."""
        self._pool.clear()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- series ------------------------------------------------------------------------------

    def create_series(
        self,
        key: str | None = None,
        *,
        name: str | None = None,
        tags: Sequence[str] | None = None,
        attributes: Mapping[str, str] | None = None,
    ) -> Series:
        """Create a series, with the given key or (without one) a generated key.

        Raises ValueError for a key outside ``[a-zA-Z0-9.:;-_/\\ ]`` and
        :class:`~tempodb.ConflictError` when the key exists.

        >>> series1 = client.create_series('my-custom-key')
        """
        _check_key(key)
        body: JSONDict = {} if key is None else {"key": key}
        if name is not None:
            body["name"] = name
        if tags is not None:
            body["tags"] = list(tags)
        if attributes is not None:
            body["attributes"] = dict(attributes)
        return Series.from_json(self.request("/series/", "POST", body=body))

    def get_series(
        self,
        ids: Sequence[str] | None = None,
        keys: Sequence[str] | None = None,
        tags: Sequence[str] | None = None,
        attributes: Mapping[str, str] | None = None,
    ) -> list[Series]:
        """The series matching every filter given (ids and keys: any of; tags and
        attributes: all of), ordered by key; all series without filters."""
        params = _filter_params(ids, keys, tags, attributes)
        return [Series.from_json(s) for s in self.request("/series/", "GET", params)]

    def update_series(self, series: Series) -> Series:
        """Replace the name, tags and attributes of ``series`` (found by its id)."""
        path = f"/series/id/{_segment(series.id)}/"
        return Series.from_json(self.request(path, "PUT", body=series.to_json()))

    def delete_series(
        self,
        ids: Sequence[str] | None = None,
        keys: Sequence[str] | None = None,
        tags: Sequence[str] | None = None,
        attributes: Mapping[str, str] | None = None,
        allow_truncation: bool = False,
    ) -> DeleteSummary:
        """Delete the series matching the filters, with their data.

        With no filter at all nothing is deleted unless ``allow_truncation=True``, which
        deletes every series of the database.
        """
        params = _filter_params(ids, keys, tags, attributes)
        params.append(("allow_truncation", "true" if allow_truncation else "false"))
        return DeleteSummary.from_json(self.request("/series/", "DELETE", params))

    # -- reads -------------------------------------------------------------------------------

    def read(
        self,
        start: Timestamp,
        end: Timestamp,
        interval: str = "",
        function: str = "",
        ids: Sequence[str] | None = None,
        keys: Sequence[str] | None = None,
        tags: Sequence[str] | None = None,
        attributes: Mapping[str, str] | None = None,
        tz: str = "",
    ) -> list[DataSet]:
        """Read ``[start, end)`` of every matching series: a list of DataSets, by key.

        ``interval`` ("1hour", "5min", "1day", "raw", ...) and ``function`` ("sum", "max",
        "min", "avg"/"mean", "stddev", "count") roll the data up; without an interval the
        server chooses one by the range (raw up to 2 days, hourly up to 30, else daily).
        ``tz`` is the zone of the returned timestamps and of the calendar buckets.
        """
        params = _range_params(start, end, interval, function, tz)
        params += _filter_params(ids, keys, tags, attributes)
        return [DataSet.from_json(d) for d in self.request("/data/", "GET", params)]

    def read_id(
        self,
        series_id: str,
        start: Timestamp,
        end: Timestamp,
        interval: str = "",
        function: str = "",
        tz: str = "",
    ) -> DataSet:
        """Read ``[start, end)`` of the series with this id (see :meth:`read`)."""
        return self._read("id", series_id, start, end, interval, function, tz)

    def read_key(
        self,
        series_key: str,
        start: Timestamp,
        end: Timestamp,
        interval: str = "",
        function: str = "",
        tz: str = "",
    ) -> DataSet:
        """Read ``[start, end)`` of the series with this key (see :meth:`read`)."""
        return self._read("key", series_key, start, end, interval, function, tz)

    def single_value_id(self, series_id: str, ts: Timestamp, direction: str = "") -> SingleValueSet:
        """The point of a series at ``ts``; ``direction`` "before", "after" or "nearest"
        finds the closest one instead of only an exact match."""
        return self._single_value("id", series_id, ts, direction)

    def single_value_key(
        self, series_key: str, ts: Timestamp, direction: str = ""
    ) -> SingleValueSet:
        """Like :meth:`single_value_id`, by key."""
        return self._single_value("key", series_key, ts, direction)

    def single_value(
        self,
        ts: Timestamp,
        direction: str = "",
        ids: Sequence[str] | None = None,
        keys: Sequence[str] | None = None,
        tags: Sequence[str] | None = None,
        attributes: Mapping[str, str] | None = None,
    ) -> list[SingleValueSet]:
        """Single-value lookups for every matching series (see :meth:`single_value_id`)."""
        params = [("ts", to_wire(ts))]
        if direction:
            params.append(("direction", direction))
        params += _filter_params(ids, keys, tags, attributes)
        return [SingleValueSet.from_json(s) for s in self.request("/single/", "GET", params)]

    # -- writes ------------------------------------------------------------------------------

    def write_id(self, series_id: str, data: Points) -> None:
        """Write points to the series with this id (an existing value is replaced)."""
        self._post_points("id", series_id, "data", data)

    def write_key(self, series_key: str, data: Points) -> None:
        """Write points to the series with this key, creating the series if needed."""
        _check_key(series_key)
        self._post_points("key", series_key, "data", data)

    def write_bulk(self, ts: Timestamp, data: Sequence[Mapping[str, Any]]) -> None:
        """Write one value to each of several series at ``ts``:
        ``data = [{'id': ..., 'v': 4.164}, {'key': ..., 'v': 55.423}]``."""
        self.request("/data/", "POST", body={"t": to_wire(ts), "data": _jsonable(data)})

    def write_multi(self, data: Sequence[Mapping[str, Any]]) -> JSONDict | None:
        """Write ``{'t': ..., 'id' or 'key': ..., 'v': ...}`` points to several series.

        Returns None when every point was written.  When some were rejected (HTTP 207)
        the valid ones are still written, and the result is
        ``{'error': {'multistatus': [{'status': '422', 'messages': [...]}, ...]}}``,
        one entry per point in the order given.
        """
        return self._multi("/multi/", data)

    def increment_id(self, series_id: str, data: Points) -> None:
        """Add each point's value to the value stored at its timestamp (atomically)."""
        self._post_points("id", series_id, "increment", data)

    def increment_key(self, series_key: str, data: Points) -> None:
        """Like :meth:`increment_id`, by key; creates the series if needed."""
        _check_key(series_key)
        self._post_points("key", series_key, "increment", data)

    def increment_bulk(self, ts: Timestamp, data: Sequence[Mapping[str, Any]]) -> None:
        """Increment one value in each of several series at ``ts`` (see write_bulk)."""
        self.request("/increment/", "POST", body={"t": to_wire(ts), "data": _jsonable(data)})

    def increment_multi(self, data: Sequence[Mapping[str, Any]]) -> JSONDict | None:
        """Increment points of several series; returns as :meth:`write_multi`."""
        return self._multi("/multi/increment/", data)

    # -- deletes -----------------------------------------------------------------------------

    def delete_id(self, series_id: str, start: Timestamp, end: Timestamp, **kwargs: Any) -> None:
        """Delete the points in ``[start, end)`` of the series with this id
        (``start == end`` deletes the one point at that instant)."""
        self._delete("id", series_id, start, end, kwargs)

    def delete_key(self, series_key: str, start: Timestamp, end: Timestamp, **kwargs: Any) -> None:
        """Like :meth:`delete_id`, by key."""
        self._delete("key", series_key, start, end, kwargs)

    # -- plumbing ----------------------------------------------------------------------------

    def _read(
        self,
        field: str,
        value: str,
        start: Timestamp,
        end: Timestamp,
        interval: str,
        function: str,
        tz: str,
    ) -> DataSet:
        params = _range_params(start, end, interval, function, tz)
        path = f"/series/{field}/{_segment(value)}/data/"
        return DataSet.from_json(self.request(path, "GET", params))

    def _single_value(
        self, field: str, value: str, ts: Timestamp, direction: str
    ) -> SingleValueSet:
        params = [("ts", to_wire(ts))]
        if direction:
            params.append(("direction", direction))
        path = f"/series/{field}/{_segment(value)}/single/"
        return SingleValueSet.from_json(self.request(path, "GET", params))

    def _post_points(self, field: str, value: str, action: str, data: Points) -> None:
        path = f"/series/{field}/{_segment(value)}/{action}/"
        self.request(path, "POST", body=[_point_json(p) for p in data])

    def _multi(self, path: str, data: Sequence[Mapping[str, Any]]) -> JSONDict | None:
        status, body = self._send(path, "POST", None, _jsonable(data), accept=(200, 207))
        if status == 207:
            return {"error": _loads(body)}
        return None

    def _delete(
        self,
        field: str,
        value: str,
        start: Timestamp,
        end: Timestamp,
        options: Mapping[str, Any],
    ) -> None:
        params = [("start", to_wire(start)), ("end", to_wire(end))]
        params += [(k, _param_value(v)) for k, v in options.items()]
        self.request(f"/series/{field}/{_segment(value)}/data/", "DELETE", params)

    def request(
        self,
        target: str,
        method: str = "GET",
        params: Sequence[tuple[str, str]] | None = None,
        body: Any = None,
    ) -> Any:
        """Send one request to ``/v1`` + ``target``; the decoded JSON answer, or None
        for an empty one.  Raises TempoDBApiException (or a subclass) unless 200."""
        _, data = self._send(target, method, params, body, accept=(200,))
        return _loads(data) if data else None

    def _send(
        self,
        target: str,
        method: str,
        params: Sequence[tuple[str, str]] | None,
        body: Any,
        accept: tuple[int, ...],
    ) -> tuple[int, bytes]:
        url = self.base_url + target
        if params:
            url += "?" + urlencode(params)
        payload = None if body is None else _dumps(body)
        headers = self._headers if payload is None else self._post_headers
        try:
            response = self._pool.request(method, url, body=payload, headers=headers)
        except Urllib3Error as exc:
            raise TempoDBConnectionError(f"{method} {url} failed: {exc}") from exc
        if response.status in accept:
            return response.status, response.data
        message = response.data.decode("utf-8", "replace").strip()
        raise error_for_response(response.status, message, response.headers.get(ERROR_CODE_HEADER))


# -- request building helpers ----------------------------------------------------------------


def _check_key(key: str | None) -> None:
    if key and not RE_VALID_SERIES_KEY.fullmatch(key):
        raise ValueError(f"Series key must match the following regex: {VALID_SERIES_KEY}")


def _segment(value: str) -> str:
    """A path segment: everything but letters, digits and ``_.-~`` percent-encoded, and the
    dots of a ``.`` or ``..`` key too (HTTP libraries would resolve them away)."""
    if value in (".", ".."):
        return value.replace(".", "%2E")
    return quote(value, safe="")


def _as_list(values: Sequence[str] | str | None) -> list[str]:
    if not values:
        return []
    return [values] if isinstance(values, str) else list(values)


def _filter_params(
    ids: Sequence[str] | None,
    keys: Sequence[str] | None,
    tags: Sequence[str] | None,
    attributes: Mapping[str, str] | None,
) -> list[tuple[str, str]]:
    params = [("id", v) for v in _as_list(ids)]
    params += [("key", v) for v in _as_list(keys)]
    params += [("tag", v) for v in _as_list(tags)]
    params += [(f"attr[{k}]", str(v)) for k, v in (attributes or {}).items()]
    return params


def _range_params(
    start: Timestamp, end: Timestamp, interval: str, function: str, tz: str
) -> list[tuple[str, str]]:
    params = [("start", to_wire(start)), ("end", to_wire(end))]
    if interval:
        params.append(("interval", interval))
    if function:
        params.append(("function", function))
    if tz:
        params.append(("tz", tz))
    return params


def _param_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime.date):
        return to_wire(value)
    return str(value)


def _point_json(point: DataPoint | Mapping[str, Any] | tuple[Timestamp, int | float]) -> JSONDict:
    """A point as wire JSON: a DataPoint, a ``{'t': ..., 'v': ...}`` dict (as the original
    demos wrote) or a ``(ts, value)`` pair."""
    if isinstance(point, DataPoint):
        return {"t": to_wire(point.ts), "v": point.value}
    if isinstance(point, tuple):
        ts, value = point
        return {"t": to_wire(ts), "v": value}
    return _jsonable_item(point)


def _jsonable_item(item: Mapping[str, Any]) -> JSONDict:
    return {k: to_wire(v) if isinstance(v, datetime.date) else v for k, v in item.items()}


def _jsonable(items: Sequence[Mapping[str, Any]]) -> list[JSONDict]:
    return [_jsonable_item(item) for item in items]
