"""The TempoDB v1 client: one method per API call, with the original 0.5.0 signatures.

Example::

    from datetime import datetime
    from tempodb import Client, DataPoint

    client = Client("api-key", "api-secret", host="localhost", port=4242, secure=False)
    client.write_key("my-custom-key", [DataPoint(datetime(2012, 1, 1), 12.34)])
    data = client.read_key("my-custom-key", datetime(2012, 1, 1), datetime(2012, 1, 2))

Requests are built and answers parsed by :mod:`tempodb.protocol`, which
:class:`~tempodb.AsyncClient` shares; this module only sends them, with urllib3.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import urllib3
from urllib3.exceptions import ConnectTimeoutError, SSLError
from urllib3.exceptions import HTTPError as Urllib3Error

from tempodb import protocol, reads
from tempodb.batch import BatchWriter
from tempodb.contract import ERROR_CODE_HEADER, IDEMPOTENCY_KEY_HEADER, __version__
from tempodb.objects import (
    CreatedSeries,
    DataPoint,
    DataSet,
    DeleteSummary,
    Found,
    JSONDict,
    MultiPoint,
    Series,
    SingleValueSet,
    Summary,
)
from tempodb.protocol import (
    API_HOST,
    API_PORT,
    API_VERSION,
    VALID_SERIES_KEY,
    Points,
    Request,
    Response,
    SeriesItem,
    Timestamp,
    TransportFailure,
    Wait,
)
from tempodb.reads import DEFAULT_LIMIT, Page
from tempodb.retry import RetryPolicy

if TYPE_CHECKING:
    import pandas

__all__ = ["API_HOST", "API_PORT", "API_VERSION", "VALID_SERIES_KEY", "Client", "__version__"]

# The request helpers moved to tempodb.protocol; the old private names stay for old imports.
_check_key = protocol.check_key
_filter_params = protocol.filter_params
_point_json = protocol.point_json
_segment = protocol.segment

T = TypeVar("T")


def default_headers(key: str, secret: str) -> dict[str, str]:
    """The headers of every request: basic auth, user agent, gzip."""
    token = base64.b64encode(f"{key}:{secret}".encode()).decode("ascii")
    return {
        "Authorization": f"Basic {token}",
        "User-Agent": f"tempodb-python/{__version__}",
        "Accept-Encoding": "gzip",
    }


class Client:
    """Stores the credentials and connection pool for one TempoDB database.

    Args:
        key: API key; without one, ``$TEMPODB_KEY``.
        secret: API secret; without one, ``$TEMPODB_SECRET``.
        host: hostname of the server; without one, ``$TEMPODB_HOST``.  Without either the
            client sends nothing (every call raises TempoDBConnectionError saying so): the
            hosted service of the signature's default, ``"api.tempo-db.com"``, is gone, and
            credentials are sent there only when that host is given by name.
        port: port of the server; without one, ``$TEMPODB_PORT``, else 443.
        secure: True for https, False for plain http; without one, ``$TEMPODB_SECURE``
            (``true``/``false``), else True.
        pool_connections: how many hosts keep a connection pool.
        pool_maxsize: how many keep-alive connections each pool holds.
        timeout: seconds to wait for the server to connect and answer (keyword only).
        ca_certs: a CA bundle (PEM file) to verify the server's certificate with, for a
            private server with its own certificate authority (keyword only).
        retries: how many times a request is tried again after a 429 or 503 answer or a
            connection failure, with exponential backoff (keyword only; 0 never retries; a
            :class:`~tempodb.RetryPolicy` sets the waits too).  Increments carry an
            ``Idempotency-Key``, so that a repeated one counts once.

    Raises ValueError when there is no key or secret, neither given nor in the environment.
    Every method raises :class:`~tempodb.TempoDBApiException` (or a subclass) when the call
    fails.  Naive datetimes mean UTC; every datetime returned is time-zone aware.

    Example::

        client = Client("api-key", "api-secret", host="localhost", port=4242, secure=False)
        client = Client()  # everything from TEMPODB_KEY, TEMPODB_SECRET, TEMPODB_HOST, ...
    """

    #: Whether this transport takes write bodies as arrays (``Request.columns``): only one
    #: in the server's process does (``tempodb.connect``).
    _columnar = False

    def __init__(
        self,
        key: str | None = None,
        secret: str | None = None,
        host: str | None = protocol.DEFAULT_HOST,
        port: int | None = protocol.DEFAULT_PORT,
        secure: bool | None = protocol.DEFAULT_SECURE,
        pool_connections: int = 10,
        pool_maxsize: int = 10,
        *,
        timeout: float = 60.0,
        ca_certs: str | None = None,
        retries: int | RetryPolicy = 3,
    ) -> None:
        settings = protocol.resolve_settings(key, secret, host, port, secure)
        self.key = settings.key
        self.secret = settings.secret
        self.host = settings.host
        self.port = settings.port
        self.secure = settings.secure
        self.base_url = settings.base_url
        self._placeholder = settings.placeholder
        self.retry_policy = RetryPolicy.of(retries)
        self._headers = default_headers(self.key, self.secret)
        self._post_headers = {**self._headers, "Content-Type": "application/json"}
        self._pool = urllib3.PoolManager(
            num_pools=pool_connections,
            maxsize=pool_maxsize,
            block=False,
            timeout=urllib3.Timeout(connect=min(timeout, 10.0), read=timeout),
            retries=False,  # the retry policy is ours, the same as AsyncClient's
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
        return self._call(protocol.create_series(key, name, tags, attributes))

    def create_many_series(self, series: Iterable[SeriesItem]) -> CreatedSeries:
        """Create many series in one request, each with its tags and attributes.

        ``series`` holds keys, :class:`~tempodb.Series` objects (their id is ignored) or
        dicts like ``{'key': ..., 'name': ..., 'tags': [...], 'attributes': {...}}``;
        ``None`` or ``{}`` creates a series with a generated key.  A server takes at most
        10,000 per request unless it was started with another ``--max-series-per-request``;
        split longer lists.

        Returns a :class:`~tempodb.CreatedSeries`: the list of the series created, in the
        order given.  As with :meth:`write_multi`, a series the server refuses does not stop
        the others (HTTP 207): ``result.errors`` then lists the refused ones
        (:class:`~tempodb.RefusedSeries`: position, key, status 409 when the key exists or
        422 when the series is invalid, and the server's messages) and
        ``result.multistatus`` holds the server's multistatus.

        Raises ValueError for a key outside ``[a-zA-Z0-9.:;-_/\\ ]`` and TypeError for an
        item of another type (nothing is sent then), and
        :class:`~tempodb.InvalidRequestError` when the server refuses the whole request
        (more series than its limit): nothing was created then.

        >>> created = client.create_many_series(
        ...     ["boiler.1", {"key": "boiler.2", "tags": ["boiler"], "attributes": {"floor": "2"}}]
        ... )
        >>> [s.key for s in created]
        ['boiler.1', 'boiler.2']
        >>> for refused in created.errors:
        ...     print(refused.index, refused.key, refused.status, refused.messages)
        """
        return self._call(protocol.create_many_series(series))

    def get_series(
        self,
        ids: Sequence[str] | None = None,
        keys: Sequence[str] | None = None,
        tags: Sequence[str] | None = None,
        attributes: Mapping[str, str] | None = None,
    ) -> list[Series]:
        """The series matching every filter given (ids and keys: any of; tags and
        attributes: all of), ordered by key; all series without filters.

        >>> client.get_series(tags=["tag1"], attributes={"attr1": "value1"})
        """
        return self._call(protocol.get_series(ids, keys, tags, attributes))

    def update_series(self, series: Series) -> Series:
        """Replace the name, tags and attributes of ``series`` (found by its id)."""
        return self._call(protocol.update_series(series))

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
        return self._call(protocol.delete_series(ids, keys, tags, attributes, allow_truncation))

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

        >>> client.read(start, end, keys=["my-custom-key"], interval="1hour", function="max")
        """
        return self._call(
            protocol.read(start, end, interval, function, ids, keys, tags, attributes, tz)
        )

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
        return self._call(protocol.read_one("id", series_id, start, end, interval, function, tz))

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
        return self._call(protocol.read_one("key", series_key, start, end, interval, function, tz))

    def read_dataframe(
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
    ) -> pandas.DataFrame:
        """Like :meth:`read`, as one pandas DataFrame: a column per series (named by key,
        in key order), rows on a time-zone aware DatetimeIndex in ``tz`` (UTC by default),
        NaN where a series has no point.  Columns are int64 when a series holds only
        integers and has no gaps, else float64.  Needs ``pip install 'tempodb-revived[pandas]'``.

        >>> df = client.read_dataframe(start, end, tags=["temperature"], tz="Europe/Paris")
        """
        from tempodb import frames

        return self._call(
            frames.read_request(start, end, interval, function, ids, keys, tags, attributes, tz)
        )

    def single_value_id(self, series_id: str, ts: Timestamp, direction: str = "") -> SingleValueSet:
        """The point of a series at ``ts``; ``direction`` "before", "after" or "nearest"
        finds the closest one instead of only an exact match."""
        return self._call(protocol.single_value_one("id", series_id, ts, direction))

    def single_value_key(
        self, series_key: str, ts: Timestamp, direction: str = ""
    ) -> SingleValueSet:
        """Like :meth:`single_value_id`, by key."""
        return self._call(protocol.single_value_one("key", series_key, ts, direction))

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
        return self._call(protocol.single_value(ts, direction, ids, keys, tags, attributes))

    # -- writes ------------------------------------------------------------------------------

    def write_id(self, series_id: str, data: Points) -> None:
        """Write points to the series with this id (an existing value is replaced)."""
        self._call(protocol.post_points("id", series_id, "data", data))

    def write_key(self, series_key: str, data: Points) -> None:
        """Write points to the series with this key, creating the series if needed.

        >>> client.write_key("my-custom-key", [DataPoint(datetime(2012, 1, 1), 12.34)])
        """
        self._call(protocol.post_points("key", series_key, "data", data))

    def write_bulk(self, ts: Timestamp, data: Sequence[Mapping[str, Any]]) -> None:
        """Write one value to each of several series at ``ts``:
        ``data = [{'id': ..., 'v': 4.164}, {'key': ..., 'v': 55.423}]``."""
        self._call(protocol.bulk("/data/", ts, data))

    def write_multi(self, data: Sequence[Mapping[str, Any]]) -> JSONDict | None:
        """Write ``{'t': ..., 'id' or 'key': ..., 'v': ...}`` points to several series.

        Returns None when every point was written.  When some were rejected (HTTP 207)
        the valid ones are still written, and the result is
        ``{'error': {'multistatus': [{'status': '422', 'messages': [...]}, ...]}}``,
        one entry per point in the order given.
        """
        return self._call(protocol.multi("/multi/", data))

    def write_dataframe(
        self,
        df: pandas.DataFrame,
        *,
        increment: bool = False,
        key_column: str = "key",
        time_column: str = "time",
        value_column: str = "value",
        chunk_size: int = 100_000,
    ) -> None:
        """Write a pandas DataFrame: one series per column (named by key) on a
        DatetimeIndex, or long format with ``key``, ``time`` and ``value`` columns (used
        when the DataFrame has a ``key_column``).  NaN cells are skipped; naive times mean
        UTC; ``increment=True`` adds to the stored values instead.  Needs
        ``pip install 'tempodb-revived[pandas]'``.

        Bodies are encoded with numpy, ``chunk_size`` points per request: a series at a
        time, small series together through the multi endpoint.  Raises ValueError or
        TypeError for data the API cannot hold (before anything is sent), and
        :class:`~tempodb.BatchWriteError` naming the points the server rejected.

        >>> df = pandas.DataFrame({"a": [1.5, 2.5]}, index=pandas.date_range("2012", periods=2))
        >>> client.write_dataframe(df)
        """
        from tempodb import frames

        plan = frames.write_plan(df, increment, key_column, time_column, value_column, chunk_size)
        for request, rows in plan.requests(columnar=self._columnar):
            plan.check(self._call(request), rows)
        plan.finish()

    def increment_id(self, series_id: str, data: Points) -> None:
        """Add each point's value to the value stored at its timestamp (atomically)."""
        self._call(protocol.post_points("id", series_id, "increment", data))

    def increment_key(self, series_key: str, data: Points) -> None:
        """Like :meth:`increment_id`, by key; creates the series if needed."""
        self._call(protocol.post_points("key", series_key, "increment", data))

    def increment_bulk(self, ts: Timestamp, data: Sequence[Mapping[str, Any]]) -> None:
        """Increment one value in each of several series at ``ts`` (see write_bulk)."""
        self._call(protocol.bulk("/increment/", ts, data))

    def increment_multi(self, data: Sequence[Mapping[str, Any]]) -> JSONDict | None:
        """Increment points of several series; returns as :meth:`write_multi`."""
        return self._call(protocol.multi("/multi/increment/", data))

    def batch_writer(
        self,
        *,
        increment: bool = False,
        batch_size: int = 5_000,
        flush_interval: float = 1.0,
        max_buffer: int = 100_000,
        retries: int | RetryPolicy | None = None,
    ) -> BatchWriter:
        """A context manager that buffers points for many series and writes them in the
        background: ``batch_size`` points at a time, or every ``flush_interval`` seconds.

        ``add`` blocks while ``max_buffer`` points wait (a slow server slows the producer
        down instead of filling the memory).  Failed requests are retried per ``retries``
        (default: 8 retries, waits up to 8 s; increments with their Idempotency-Key).
        On exit everything is flushed, or :class:`~tempodb.BatchWriteError` lists every point
        that was not written (the points the server rejected included): no point is dropped
        silently.

        >>> with client.batch_writer() as writer:
        ...     writer.add("sensor-1", datetime(2012, 1, 1), 12.5)
        ...     writer.add("sensor-2", datetime(2012, 1, 1), 7)
        """
        return BatchWriter(
            self._call,
            increment=increment,
            batch_size=batch_size,
            flush_interval=flush_interval,
            max_buffer=max_buffer,
            retries=retries,
        )

    # -- deletes -----------------------------------------------------------------------------

    def delete_id(self, series_id: str, start: Timestamp, end: Timestamp, **kwargs: Any) -> None:
        """Delete the points in ``[start, end)`` of the series with this id
        (``start == end`` deletes the one point at that instant)."""
        self._call(protocol.delete_range("id", series_id, start, end, kwargs))

    def delete_key(self, series_key: str, start: Timestamp, end: Timestamp, **kwargs: Any) -> None:
        """Like :meth:`delete_id`, by key."""
        self._call(protocol.delete_range("key", series_key, start, end, kwargs))

    # -- the 1.0 reads (paged: iterators that follow the pages) ------------------------------

    def read_segment(
        self,
        series_key: str,
        start: Timestamp,
        end: Timestamp,
        *,
        rollup_period: str = "",
        rollup_fold: str = "",
        interpolation_period: str = "",
        interpolation_function: str = "",
        tz: str = "",
        limit: int | None = DEFAULT_LIMIT,
        by_id: bool = False,
    ) -> Iterator[DataPoint]:
        """The points of ``[start, end)`` of one series (by id with ``by_id=True``), page by
        page (``limit`` a page): raw; rolled up (``rollup_period`` such as ``"PT1H"`` or
        ``"1hour"``, ``rollup_fold`` one of sum, mult, min, max, mean, count, stddev, ss,
        range, first, last, ``percentile,N``); interpolated first (``interpolation_period``
        with ``interpolation_function`` ``"zoh"`` or ``"linear"``).  Timestamps are in ``tz``.

        The first page is read at once (errors raise here); the others as you iterate.

        >>> hourly = list(client.read_segment("k", start, end, rollup_period="PT1H",
        ...                                   rollup_fold="max", tz="Europe/Paris"))
        """
        shape = reads.shape(
            rollup_period, rollup_fold, interpolation_period, interpolation_function
        )
        return self._pages(
            reads.segment_read(series_key, start, end, by_id=by_id, shape=shape, tz=tz, limit=limit)
        )

    def read_rollups(
        self,
        series_key: str,
        start: Timestamp,
        end: Timestamp,
        *,
        period: str,
        folds: Sequence[str],
        tz: str = "",
        limit: int | None = DEFAULT_LIMIT,
        by_id: bool = False,
    ) -> Iterator[MultiPoint]:
        """Several folds per bucket of ``period``: one :class:`MultiPoint` a bucket, its
        ``values`` by fold (``avg`` comes back as ``mean``).

        >>> for p in client.read_rollups("k", start, end, period="P1D", folds=["min", "max"]):
        ...     print(p.ts, p.values["min"], p.values["max"])
        """
        return self._pages(
            reads.rollups(
                series_key,
                start,
                end,
                by_id=by_id,
                period=period,
                folds=folds,
                tz=tz,
                limit=limit,
            )
        )

    def read_summary(
        self,
        series_key: str,
        start: Timestamp,
        end: Timestamp,
        *,
        tz: str = "",
        by_id: bool = False,
    ) -> Summary:
        """count, sum, mean, min, max and stddev of the points in ``[start, end)`` (an empty
        range: count 0, sum 0, the others None)."""
        return self._call(reads.summary(series_key, start, end, by_id=by_id, tz=tz))

    def find(
        self,
        series_key: str,
        start: Timestamp,
        end: Timestamp,
        *,
        function: str,
        period: str,
        tz: str = "",
        limit: int | None = DEFAULT_LIMIT,
        by_id: bool = False,
    ) -> Iterator[Found]:
        """In each interval of ``period`` that has points, the point ``function`` (max, min,
        first, last) picks; ties go to the earliest.

        >>> peaks = [f.point for f in client.find("k", start, end, function="max", period="P1D")]
        """
        return self._pages(
            reads.find(
                series_key,
                start,
                end,
                by_id=by_id,
                function=function,
                period=period,
                tz=tz,
                limit=limit,
            )
        )

    def aggregate(
        self,
        start: Timestamp,
        end: Timestamp,
        *,
        fold: str,
        ids: Sequence[str] | None = None,
        keys: Sequence[str] | None = None,
        tags: Sequence[str] | None = None,
        attributes: Mapping[str, str] | None = None,
        rollup_period: str = "",
        rollup_fold: str = "",
        interpolation_period: str = "",
        interpolation_function: str = "",
        tz: str = "",
        limit: int | None = DEFAULT_LIMIT,
    ) -> Iterator[DataPoint]:
        """The matching series folded into one with ``fold`` at each timestamp (after
        interpolation, before the rollup), page by page.

        >>> total = list(client.aggregate(start, end, fold="sum", tags=["meter"],
        ...                               rollup_period="PT1H", rollup_fold="mean"))
        """
        shape = reads.shape(
            rollup_period, rollup_fold, interpolation_period, interpolation_function
        )
        flt = reads.filters(ids, keys, tags, attributes)
        return self._pages(
            reads.aggregate(start, end, fold=fold, filters=flt, shape=shape, tz=tz, limit=limit)
        )

    def read_multi(
        self,
        start: Timestamp,
        end: Timestamp,
        *,
        ids: Sequence[str] | None = None,
        keys: Sequence[str] | None = None,
        tags: Sequence[str] | None = None,
        attributes: Mapping[str, str] | None = None,
        rollup_period: str = "",
        rollup_fold: str = "",
        interpolation_period: str = "",
        interpolation_function: str = "",
        tz: str = "",
        limit: int | None = DEFAULT_LIMIT,
    ) -> Iterator[MultiPoint]:
        """The matching series side by side: one :class:`MultiPoint` per timestamp present
        in any of them, ``values`` by series key (a series without a point there is absent).
        """
        shape = reads.shape(
            rollup_period, rollup_fold, interpolation_period, interpolation_function
        )
        flt = reads.filters(ids, keys, tags, attributes)
        return self._pages(reads.multi(start, end, filters=flt, shape=shape, tz=tz, limit=limit))

    def read_multi_dataframe(
        self,
        start: Timestamp,
        end: Timestamp,
        *,
        ids: Sequence[str] | None = None,
        keys: Sequence[str] | None = None,
        tags: Sequence[str] | None = None,
        attributes: Mapping[str, str] | None = None,
        rollup_period: str = "",
        rollup_fold: str = "",
        interpolation_period: str = "",
        interpolation_function: str = "",
        tz: str = "",
        limit: int | None = DEFAULT_LIMIT,
    ) -> pandas.DataFrame:
        """:meth:`read_multi` as one pandas DataFrame (every page): a column per series key,
        a time-zone aware index in ``tz``, NaN where a series has no point.  Needs
        ``pip install 'tempodb-revived[pandas]'``.

        >>> df = client.read_multi_dataframe(start, end, tags=["meter"], rollup_period="PT1H",
        ...                                  rollup_fold="mean", tz="Europe/Paris")
        """
        from tempodb import frames

        rows = self.read_multi(
            start,
            end,
            ids=ids,
            keys=keys,
            tags=tags,
            attributes=attributes,
            rollup_period=rollup_period,
            rollup_fold=rollup_fold,
            interpolation_period=interpolation_period,
            interpolation_function=interpolation_function,
            tz=tz,
            limit=limit,
        )
        return frames.multi_to_frame(list(rows), tz)

    def iter_series(
        self,
        *,
        ids: Sequence[str] | None = None,
        keys: Sequence[str] | None = None,
        tags: Sequence[str] | None = None,
        attributes: Mapping[str, str] | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> Iterator[Series]:
        """The matching series by key, fetched ``limit`` at a time."""
        flt = reads.filters(ids, keys, tags, attributes)
        return self._pages(reads.series_pages(flt, limit))

    def _pages(self, request: Request[Page[T]]) -> Iterator[T]:
        """The items of a paged read: the first page now, the next ones as they are reached."""
        first = self._call(request)

        def items() -> Iterator[T]:
            page: Page[T] | None = first
            while page is not None:
                yield from page.items
                page = None if page.next is None else self._call(page.next)

        return items()

    # -- plumbing ----------------------------------------------------------------------------

    def request(
        self,
        target: str,
        method: str = "GET",
        params: Sequence[tuple[str, str]] | None = None,
        body: Any = None,
    ) -> Any:
        """Send one request to ``/v1`` + ``target``; the decoded JSON answer, or None
        for an empty one.  Raises TempoDBApiException (or a subclass) unless 200."""
        return self._call(protocol.raw(target, method, params, body))

    def _call(self, request: Request[T], policy: RetryPolicy | None = None) -> T:
        """Send ``request``, retrying per the policy; the parsed answer."""
        steps = protocol.exchange(request, policy or self.retry_policy)
        step = next(steps)
        try:
            while True:
                if isinstance(step, Wait):
                    time.sleep(step.seconds)
                    step = steps.send(None)
                else:
                    step = steps.send(self._transmit(step))
        except StopIteration as done:
            result: T = done.value
            return result

    def _send(
        self,
        target: str,
        method: str,
        params: Sequence[tuple[str, str]] | None,
        body: Any,
        accept: tuple[int, ...] = (200,),
    ) -> tuple[int, bytes]:
        """One raw exchange, without retries or parsing: ``(status, body)`` (for benchmarks
        that measure the server alone; raises as the API methods for other statuses)."""
        request = Request(
            method,
            target,
            lambda status, data: (status, data),
            list(params or ()),
            None if body is None else protocol.dumps(body),
            accept,
        )
        return self._call(request, RetryPolicy(retries=0))

    def _transmit(self, request: Request[Any]) -> Response | TransportFailure:
        url = self.base_url + request.target
        if self._placeholder:
            return TransportFailure(protocol.NO_SERVER, sent=False, retry=False)
        headers = self._headers if request.body is None else self._post_headers
        if request.idempotency_key is not None:
            headers = {**headers, IDEMPOTENCY_KEY_HEADER: f'"{request.idempotency_key}"'}
        try:
            response = self._pool.request(
                request.method, url, body=request.body, headers=headers, retries=False
            )
        except ConnectTimeoutError as exc:  # NewConnectionError and name resolution included
            return TransportFailure(f"{request.method} {url} failed: {exc}", sent=False)
        except SSLError as exc:
            message = f"{request.method} {url} failed: {exc}"
            return TransportFailure(message, sent=False, retry=False)
        except Urllib3Error as exc:
            return TransportFailure(f"{request.method} {url} failed: {exc}", sent=True)
        return Response(
            response.status,
            response.data,
            response.headers.get("Retry-After"),
            response.headers.get(ERROR_CODE_HEADER),
            response.headers.get("Link"),
        )
