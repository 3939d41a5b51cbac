"""AsyncClient: the TempoDB v1 API for asyncio, on httpx (``pip install 'tempodb-revived[async]'``).

Example::

    import asyncio, datetime
    from tempodb import AsyncClient, DataPoint

    async def main() -> None:
        async with AsyncClient("api-key", "api-secret", host="localhost", port=4242,
                               secure=False) as client:
            await client.write_key("k", [DataPoint(datetime.datetime(2012, 1, 1), 1.5)])
            data = await client.read_key("k", datetime.date(2012, 1, 1), datetime.date(2012, 1, 2))

    asyncio.run(main())

It has every method of :class:`tempodb.Client`, with the same parameters, results, exceptions,
retries and 207 handling: both build their requests and parse the answers with
:mod:`tempodb.protocol`; this module only sends them.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

try:
    import httpx
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        f"AsyncClient needs httpx ({exc}): pip install 'tempodb-revived[async]'"
    ) from exc

from tempodb import protocol, reads
from tempodb.batch import AsyncBatchWriter
from tempodb.client import default_headers
from tempodb.contract import ERROR_CODE_HEADER, IDEMPOTENCY_KEY_HEADER
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

__all__ = ["AsyncClient"]

T = TypeVar("T")

_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class AsyncClient:
    """The asyncio twin of :class:`tempodb.Client`: the same constructor (key and secret,
    host, port and secure falling back to ``TEMPODB_*`` variables; ``timeout``, ``ca_certs``
    and ``retries``), and each method a coroutine.

    ``pool_maxsize`` bounds the open connections; ``pool_connections`` is accepted for
    compatibility (httpx keeps one pool for all hosts).  Close it with ``await aclose()`` or
    ``async with``.

    >>> async with AsyncClient(key, secret) as client:
    ...     series = await client.create_series("my-custom-key")
    """

    #: Whether this transport takes write bodies as arrays (``Request.columns``): only one
    #: in the server's process does (``tempodb.connect_async``).
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
        verify: ssl.SSLContext | bool = True
        if ca_certs is not None:
            verify = ssl.create_default_context(cafile=ca_certs)
        self._http = httpx.AsyncClient(
            headers=default_headers(self.key, self.secret),
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            limits=httpx.Limits(
                max_connections=pool_maxsize, max_keepalive_connections=pool_maxsize
            ),
            verify=verify,
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        """Close the pooled connections."""
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- series ------------------------------------------------------------------------------

    async def create_series(
        self,
        key: str | None = None,
        *,
        name: str | None = None,
        tags: Sequence[str] | None = None,
        attributes: Mapping[str, str] | None = None,
    ) -> Series:
        """See :meth:`tempodb.Client.create_series`."""
        return await self._call(protocol.create_series(key, name, tags, attributes))

    async def create_many_series(self, series: Iterable[SeriesItem]) -> CreatedSeries:
        """See :meth:`tempodb.Client.create_many_series` (the created series, with the
        refused ones in ``errors`` after a 207).

        >>> created = await client.create_many_series(["boiler.1", {"key": "boiler.2"}])
        """
        return await self._call(protocol.create_many_series(series))

    async def get_series(
        self,
        ids: Sequence[str] | None = None,
        keys: Sequence[str] | None = None,
        tags: Sequence[str] | None = None,
        attributes: Mapping[str, str] | None = None,
    ) -> list[Series]:
        """See :meth:`tempodb.Client.get_series`."""
        return await self._call(protocol.get_series(ids, keys, tags, attributes))

    async def update_series(self, series: Series) -> Series:
        """See :meth:`tempodb.Client.update_series`."""
        return await self._call(protocol.update_series(series))

    async def delete_series(
        self,
        ids: Sequence[str] | None = None,
        keys: Sequence[str] | None = None,
        tags: Sequence[str] | None = None,
        attributes: Mapping[str, str] | None = None,
        allow_truncation: bool = False,
    ) -> DeleteSummary:
        """See :meth:`tempodb.Client.delete_series`."""
        return await self._call(
            protocol.delete_series(ids, keys, tags, attributes, allow_truncation)
        )

    # -- reads -------------------------------------------------------------------------------

    async def read(
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
        """See :meth:`tempodb.Client.read`."""
        return await self._call(
            protocol.read(start, end, interval, function, ids, keys, tags, attributes, tz)
        )

    async def read_id(
        self,
        series_id: str,
        start: Timestamp,
        end: Timestamp,
        interval: str = "",
        function: str = "",
        tz: str = "",
    ) -> DataSet:
        """See :meth:`tempodb.Client.read_id`."""
        return await self._call(
            protocol.read_one("id", series_id, start, end, interval, function, tz)
        )

    async def read_key(
        self,
        series_key: str,
        start: Timestamp,
        end: Timestamp,
        interval: str = "",
        function: str = "",
        tz: str = "",
    ) -> DataSet:
        """See :meth:`tempodb.Client.read_key`."""
        return await self._call(
            protocol.read_one("key", series_key, start, end, interval, function, tz)
        )

    async def read_dataframe(
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
        """See :meth:`tempodb.Client.read_dataframe`."""
        from tempodb import frames

        return await self._call(
            frames.read_request(start, end, interval, function, ids, keys, tags, attributes, tz)
        )

    async def single_value_id(
        self, series_id: str, ts: Timestamp, direction: str = ""
    ) -> SingleValueSet:
        """See :meth:`tempodb.Client.single_value_id`."""
        return await self._call(protocol.single_value_one("id", series_id, ts, direction))

    async def single_value_key(
        self, series_key: str, ts: Timestamp, direction: str = ""
    ) -> SingleValueSet:
        """See :meth:`tempodb.Client.single_value_key`."""
        return await self._call(protocol.single_value_one("key", series_key, ts, direction))

    async def single_value(
        self,
        ts: Timestamp,
        direction: str = "",
        ids: Sequence[str] | None = None,
        keys: Sequence[str] | None = None,
        tags: Sequence[str] | None = None,
        attributes: Mapping[str, str] | None = None,
    ) -> list[SingleValueSet]:
        """See :meth:`tempodb.Client.single_value`."""
        return await self._call(protocol.single_value(ts, direction, ids, keys, tags, attributes))

    # -- writes ------------------------------------------------------------------------------

    async def write_id(self, series_id: str, data: Points) -> None:
        """See :meth:`tempodb.Client.write_id`."""
        await self._call(protocol.post_points("id", series_id, "data", data))

    async def write_key(self, series_key: str, data: Points) -> None:
        """See :meth:`tempodb.Client.write_key`."""
        await self._call(protocol.post_points("key", series_key, "data", data))

    async def write_bulk(self, ts: Timestamp, data: Sequence[Mapping[str, Any]]) -> None:
        """See :meth:`tempodb.Client.write_bulk`."""
        await self._call(protocol.bulk("/data/", ts, data))

    async def write_multi(self, data: Sequence[Mapping[str, Any]]) -> JSONDict | None:
        """See :meth:`tempodb.Client.write_multi` (None, or the 207 multistatus)."""
        return await self._call(protocol.multi("/multi/", data))

    async def write_dataframe(
        self,
        df: pandas.DataFrame,
        *,
        increment: bool = False,
        key_column: str = "key",
        time_column: str = "time",
        value_column: str = "value",
        chunk_size: int = 100_000,
    ) -> None:
        """See :meth:`tempodb.Client.write_dataframe`."""
        from tempodb import frames

        plan = frames.write_plan(df, increment, key_column, time_column, value_column, chunk_size)
        for request, rows in plan.requests(columnar=self._columnar):
            plan.check(await self._call(request), rows)
        plan.finish()

    async def increment_id(self, series_id: str, data: Points) -> None:
        """See :meth:`tempodb.Client.increment_id`."""
        await self._call(protocol.post_points("id", series_id, "increment", data))

    async def increment_key(self, series_key: str, data: Points) -> None:
        """See :meth:`tempodb.Client.increment_key`."""
        await self._call(protocol.post_points("key", series_key, "increment", data))

    async def increment_bulk(self, ts: Timestamp, data: Sequence[Mapping[str, Any]]) -> None:
        """See :meth:`tempodb.Client.increment_bulk`."""
        await self._call(protocol.bulk("/increment/", ts, data))

    async def increment_multi(self, data: Sequence[Mapping[str, Any]]) -> JSONDict | None:
        """See :meth:`tempodb.Client.increment_multi`."""
        return await self._call(protocol.multi("/multi/increment/", data))

    def batch_writer(
        self,
        *,
        increment: bool = False,
        batch_size: int = 5_000,
        flush_interval: float = 1.0,
        max_buffer: int = 100_000,
        retries: int | RetryPolicy | None = None,
    ) -> AsyncBatchWriter:
        """See :meth:`tempodb.Client.batch_writer`; use it with ``async with`` and
        ``await writer.add(key, ts, value)``."""
        return AsyncBatchWriter(
            self._call,
            increment=increment,
            batch_size=batch_size,
            flush_interval=flush_interval,
            max_buffer=max_buffer,
            retries=retries,
        )

    # -- deletes -----------------------------------------------------------------------------

    async def delete_id(
        self, series_id: str, start: Timestamp, end: Timestamp, **kwargs: Any
    ) -> None:
        """See :meth:`tempodb.Client.delete_id`."""
        await self._call(protocol.delete_range("id", series_id, start, end, kwargs))

    async def delete_key(
        self, series_key: str, start: Timestamp, end: Timestamp, **kwargs: Any
    ) -> None:
        """See :meth:`tempodb.Client.delete_key`."""
        await self._call(protocol.delete_range("key", series_key, start, end, kwargs))

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
    ) -> AsyncIterator[DataPoint]:
        """The points of ``[start, end)`` of one series (by id with ``by_id=True``), page by
        page (``limit`` a page): raw; rolled up (``rollup_period`` such as ``"PT1H"`` or
        ``"1hour"``, ``rollup_fold`` one of sum, mult, min, max, mean, count, stddev, ss,
        range, first, last, ``percentile,N``); interpolated first (``interpolation_period``
        with ``interpolation_function`` ``"zoh"`` or ``"linear"``).  Timestamps are in ``tz``.

        Pages are read as you iterate (``async for``); errors raise there.

        >>> hourly = [p async for p in client.read_segment("k", start, end, rollup_period="PT1H",
        ...                                         rollup_fold="max", tz="Europe/Paris")]
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
    ) -> AsyncIterator[MultiPoint]:
        """Several folds per bucket of ``period``: one :class:`MultiPoint` a bucket, its
        ``values`` by fold (``avg`` comes back as ``mean``).

        >>> async for p in client.read_rollups("k", start, end, period="P1D", folds=["min", "max"]):
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

    async def read_summary(
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
        return await self._call(reads.summary(series_key, start, end, by_id=by_id, tz=tz))

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
    ) -> AsyncIterator[Found]:
        """In each interval of ``period`` that has points, the point ``function`` (max, min,
        first, last) picks; ties go to the earliest.

        >>> found = client.find("k", start, end, function="max", period="P1D")
        >>> peaks = [f.point async for f in found]
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
    ) -> AsyncIterator[DataPoint]:
        """The matching series folded into one with ``fold`` at each timestamp (after
        interpolation, before the rollup), page by page.

        >>> total = [p async for p in client.aggregate(start, end, fold="sum", tags=["meter"],
        ...                                            rollup_period="PT1H", rollup_fold="mean")]
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
    ) -> AsyncIterator[MultiPoint]:
        """The matching series side by side: one :class:`MultiPoint` per timestamp present
        in any of them, ``values`` by series key (a series without a point there is absent).
        """
        shape = reads.shape(
            rollup_period, rollup_fold, interpolation_period, interpolation_function
        )
        flt = reads.filters(ids, keys, tags, attributes)
        return self._pages(reads.multi(start, end, filters=flt, shape=shape, tz=tz, limit=limit))

    async def read_multi_dataframe(
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
        """:meth:`read_multi` as one pandas DataFrame (every page); see
        :meth:`tempodb.Client.read_multi_dataframe`."""
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
        return frames.multi_to_frame([row async for row in rows], tz)

    def iter_series(
        self,
        *,
        ids: Sequence[str] | None = None,
        keys: Sequence[str] | None = None,
        tags: Sequence[str] | None = None,
        attributes: Mapping[str, str] | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> AsyncIterator[Series]:
        """The matching series by key, fetched ``limit`` at a time."""
        flt = reads.filters(ids, keys, tags, attributes)
        return self._pages(reads.series_pages(flt, limit))

    async def _pages(self, request: Request[Page[T]]) -> AsyncIterator[T]:
        """The items of a paged read, each page fetched as it is reached."""
        following: Request[Page[T]] | None = request
        while following is not None:
            page = await self._call(following)
            for item in page.items:
                yield item
            following = page.next

    # -- plumbing ----------------------------------------------------------------------------

    async def request(
        self,
        target: str,
        method: str = "GET",
        params: Sequence[tuple[str, str]] | None = None,
        body: Any = None,
    ) -> Any:
        """See :meth:`tempodb.Client.request`."""
        return await self._call(protocol.raw(target, method, params, body))

    async def _call(self, request: Request[T], policy: RetryPolicy | None = None) -> T:
        """Send ``request``, retrying per the policy; the parsed answer."""
        steps = protocol.exchange(request, policy or self.retry_policy)
        step = next(steps)
        try:
            while True:
                if isinstance(step, Wait):
                    await asyncio.sleep(step.seconds)
                    step = steps.send(None)
                else:
                    step = steps.send(await self._send(step))
        except StopIteration as done:
            result: T = done.value
            return result

    async def _send(self, request: Request[Any]) -> Response | TransportFailure:
        url = self.base_url + request.target
        if self._placeholder:
            return TransportFailure(protocol.NO_SERVER, sent=False, retry=False)
        headers = None if request.body is None else {"Content-Type": "application/json"}
        if request.idempotency_key is not None:
            headers = {**(headers or {}), IDEMPOTENCY_KEY_HEADER: f'"{request.idempotency_key}"'}
        try:
            response = await self._http.request(
                request.method, url, content=request.body, headers=headers
            )
        except _NOT_SENT as exc:
            message = f"{request.method} {url} failed: {exc!r}"
            certificate = isinstance(exc.__context__, ssl.SSLError)
            return TransportFailure(message, sent=False, retry=not certificate)
        except httpx.TransportError as exc:
            return TransportFailure(f"{request.method} {url} failed: {exc!r}", sent=True)
        return Response(
            response.status_code,
            response.content,
            response.headers.get("Retry-After"),
            response.headers.get(ERROR_CODE_HEADER),
            response.headers.get("Link"),
        )
