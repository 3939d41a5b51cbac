"""The API without I/O: every call as a request description plus a parser of its answer.

:class:`~tempodb.Client` (urllib3) and :class:`~tempodb.AsyncClient` (httpx) share all of this;
they only move bytes.  One API call is::

    request = protocol.read_key("my-key", start, end)        # a Request[DataSet]
    value = <driver>(exchange(request, policy))               # send, retry, parse

:func:`exchange` is a generator that holds the retry logic: it yields a :class:`Request` to send
(the driver answers with a :class:`Response` or a :class:`TransportFailure`) or a :class:`Wait`
(the driver sleeps, with ``time.sleep`` or ``asyncio.sleep``), and finally returns the parsed
value or raises the API error.
"""

from __future__ import annotations

import datetime
import decimal
import numbers
import os
import re
import secrets
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Generic, TypeVar, cast
from urllib.parse import quote, urlencode

from tempodb.contract import API_VERSION as API_VERSION
from tempodb.contract import KEY_PATTERN, MAX_KEY_LENGTH, OUTCOME_UNKNOWN, key_error
from tempodb.errors import TempoDBApiException, TempoDBConnectionError, error_for_response
from tempodb.objects import (
    CreatedSeries,
    DataPoint,
    DataSet,
    DeleteSummary,
    JSONDict,
    Series,
    SingleValueSet,
)
from tempodb.retry import RETRY_STATUSES, RetryPolicy, parse_retry_after
from tempodb.timeutil import to_wire

try:  # orjson is several times faster on large bodies; the stdlib serves when it is absent.
    import orjson

    def dumps(obj: Any) -> bytes:
        """Compact JSON bytes."""
        return orjson.dumps(obj)

    def loads(data: bytes | str) -> Any:
        """Parse JSON."""
        return orjson.loads(data)

except ImportError:  # pragma: no cover - exercised only without orjson
    import json

    def dumps(obj: Any) -> bytes:
        """Compact JSON bytes."""
        return json.dumps(obj, separators=(",", ":")).encode()

    def loads(data: bytes | str) -> Any:
        """Parse JSON."""
        return json.loads(data)


API_HOST = "api.tempo-db.com"
API_PORT = 443
#: What a series key must match, in at most ``MAX_KEY_LENGTH`` characters (``contract``).
VALID_SERIES_KEY = f"^{KEY_PATTERN}$"
RE_VALID_SERIES_KEY = re.compile(VALID_SERIES_KEY)

Timestamp = datetime.datetime | datetime.date
Point = DataPoint | Mapping[str, Any] | tuple[Timestamp, int | float]
Points = Iterable[Point]
Params = list[tuple[str, str]]
#: One series for ``create_many_series``: a key, a Series, a dict of its fields or None.
SeriesItem = Series | Mapping[str, Any] | str | None
T = TypeVar("T")


# -- the exchange ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Request(Generic[T]):
    """One HTTP request to ``/v1`` + ``path`` and how to read its answer.

    ``idempotent`` says whether sending it twice does no harm (an increment, or a write of
    points stamped by the server, is not); ``accept`` lists the statuses ``parse`` handles.
    """

    method: str
    path: str
    parse: Callable[[int, bytes], T]
    params: Params = field(default_factory=list)
    body: bytes | None = None
    accept: tuple[int, ...] = (200,)
    idempotent: bool = True
    #: Instead of ``parse``, for paged reads: also given the ``Link`` header (or None).
    parse_page: Callable[[int, bytes, str | None], T] | None = None
    #: Sent as the ``Idempotency-Key`` header (the same with every retry): the server applies
    #: the request at most once, so that even a request that is not ``idempotent`` may be
    #: tried again after its answer was lost.
    idempotency_key: str | None = None
    #: For a transport in the server's process only (``tempodb.connect``): the body as
    #: arrays, ``body`` then None (``frames.PointColumns``: ``ts``, ``values``, ``is_int``,
    #: ``keys``, ``key_index`` and ``encode()``, the JSON body they stand for).
    columns: Any = None
    #: For a transport in the server's process: reads the answer given as Python objects
    #: with arrays (``Response.columns``) instead of JSON; such a transport asks for it.
    parse_columns: Callable[[int, Any], T] | None = None

    @property
    def target(self) -> str:
        """The path with its query string."""
        return f"{self.path}?{urlencode(self.params)}" if self.params else self.path


@dataclass(frozen=True)
class Response:
    """What came back: the status, the (decoded) body and the headers the client reads."""

    status: int
    body: bytes
    retry_after: str | None = None
    error_code: str | None = None
    #: The ``Link`` header of a paged answer.
    link: str | None = None
    #: Instead of ``body``, from a transport in the server's process: the answer as Python
    #: objects with arrays, for ``Request.parse_columns``.
    columns: Any = None


@dataclass(frozen=True)
class TransportFailure:
    """No answer. ``sent`` is False when the request certainly never reached the server;
    ``retry`` is False when trying again cannot help (a certificate that does not verify)."""

    message: str
    sent: bool
    retry: bool = True


@dataclass(frozen=True)
class Wait:
    """The driver should sleep this many seconds, then go on."""

    seconds: float


Step = Request[Any] | Wait
Outcome = Response | TransportFailure


def exchange(request: Request[T], policy: RetryPolicy) -> Generator[Step, Outcome | None, T]:
    """Send ``request`` (yielded), retrying per ``policy``; returns the parsed answer.

    Raises :class:`~tempodb.TempoDBApiException` (or a subclass) when the last answer is an
    error, :class:`~tempodb.TempoDBConnectionError` when the last try got no answer.
    """
    attempt = 0
    sent = False  # whether any try may have reached the server
    #: Whether a try that may have been applied can be repeated.
    safe = request.idempotent or request.idempotency_key is not None
    while True:
        outcome = yield request
        attempt += 1
        retry_after: float | None = None
        error: TempoDBApiException
        if isinstance(outcome, Response):
            if outcome.status in request.accept:
                if outcome.columns is not None and request.parse_columns is not None:
                    return request.parse_columns(outcome.status, outcome.columns)
                if request.parse_page is not None:
                    return request.parse_page(outcome.status, outcome.body, outcome.link)
                return request.parse(outcome.status, outcome.body)
            retry_after = parse_retry_after(outcome.retry_after)
            message = outcome.body.decode("utf-8", "replace").strip()
            error = error_for_response(
                outcome.status, message, outcome.error_code, retry_after=retry_after
            )
            retryable = outcome.status in RETRY_STATUSES or (
                outcome.error_code == OUTCOME_UNKNOWN and safe
            )
        elif isinstance(outcome, TransportFailure):
            sent = sent or outcome.sent
            error = TempoDBConnectionError(outcome.message, sent=sent)
            retryable = outcome.retry and (safe or not outcome.sent)
        else:  # pragma: no cover - a driver bug
            raise TypeError(f"exchange() got {outcome!r}")
        delay = policy.wait(attempt, retry_after) if retryable else None
        if delay is None:
            raise error
        yield Wait(delay)


# -- parsers ---------------------------------------------------------------------------------


def parse_json(status: int, body: bytes) -> Any:
    """The decoded JSON answer, or None for an empty one."""
    return loads(body) if body else None


def parse_nothing(status: int, body: bytes) -> None:
    """For calls that answer with an empty body."""
    return None


def parse_multistatus(status: int, body: bytes) -> JSONDict | None:
    """None when every element was written, else the 207 body wrapped as 0.5.0 did:
    ``{'error': {'multistatus': [...]}}``."""
    return {"error": loads(body)} if status == 207 else None


def _series(status: int, body: bytes) -> Series:
    return Series.from_json(loads(body))


def _series_list(status: int, body: bytes) -> list[Series]:
    return [Series.from_json(s) for s in loads(body)]


def _delete_summary(status: int, body: bytes) -> DeleteSummary:
    return DeleteSummary.from_json(loads(body))


def _single(status: int, body: bytes) -> SingleValueSet:
    return SingleValueSet.from_json(loads(body))


def _singles(status: int, body: bytes) -> list[SingleValueSet]:
    return [SingleValueSet.from_json(s) for s in loads(body)]


def _dataset_parser(tz: str) -> Callable[[int, bytes], DataSet]:
    def parse(status: int, body: bytes) -> DataSet:
        return DataSet.from_json(loads(body), tz=tz or "UTC")

    return parse


def _datasets_parser(tz: str) -> Callable[[int, bytes], list[DataSet]]:
    def parse(status: int, body: bytes) -> list[DataSet]:
        return [DataSet.from_json(d, tz=tz or "UTC") for d in loads(body)]

    return parse


# -- the calls -------------------------------------------------------------------------------


def create_series(
    key: str | None,
    name: str | None = None,
    tags: Sequence[str] | None = None,
    attributes: Mapping[str, str] | None = None,
) -> Request[Series]:
    check_key(key or None)  # an empty key asks the server for one, as None does
    body: JSONDict = {} if key is None else {"key": key}
    if name is not None:
        body["name"] = name
    if tags is not None:
        body["tags"] = list(tags)
    if attributes is not None:
        body["attributes"] = dict(attributes)
    # Not idempotent: a second try after a lost answer would meet 409 (or make a second series).
    return Request("POST", "/series/", _series, body=dumps(body), idempotent=False)


def create_many_series(series: Iterable[SeriesItem]) -> Request[CreatedSeries]:
    """``POST /series/`` with an array: 200 or 207, each read into a :class:`CreatedSeries`."""
    items = [new_series_json(index, item) for index, item in enumerate(series)]
    keys = [key if isinstance(key := item.get("key"), str) and key else None for item in items]

    def parse(status: int, body: bytes) -> CreatedSeries:
        return CreatedSeries.from_json(loads(body), keys)

    # Not idempotent, as create_series.
    return Request(
        "POST", "/series/", parse, body=dumps(items), accept=(200, 207), idempotent=False
    )


def new_series_json(index: int, item: SeriesItem) -> JSONDict:
    """One series of ``create_many_series`` as wire JSON; ValueError for a bad key and
    TypeError for something else than a key, Series, dict or None, naming its position."""
    if item is None:
        return {}
    if isinstance(item, str):
        body: JSONDict = {"key": item}
    elif isinstance(item, Series):
        body = {"name": item.name, "tags": list(item.tags), "attributes": dict(item.attributes)}
        if item.key:
            body["key"] = item.key
    elif isinstance(item, Mapping):
        body = dict(item)
    else:
        raise TypeError(
            f"series {index}: expected a key, a Series or a dict, not {type(item).__name__}"
        )
    key = body.get("key")
    if isinstance(key, str) and key:  # an empty key asks the server for one
        try:
            check_key(key)
        except ValueError as exc:
            raise ValueError(f"series {index} ({key!r}): {exc}") from None
    return body


def get_series(
    ids: Sequence[str] | None,
    keys: Sequence[str] | None,
    tags: Sequence[str] | None,
    attributes: Mapping[str, str] | None,
) -> Request[list[Series]]:
    return Request("GET", "/series/", _series_list, filter_params(ids, keys, tags, attributes))


def update_series(series: Series) -> Request[Series]:
    path = f"/series/id/{segment(series.id)}/"
    return Request("PUT", path, _series, body=dumps(series.to_json()))


def delete_series(
    ids: Sequence[str] | None,
    keys: Sequence[str] | None,
    tags: Sequence[str] | None,
    attributes: Mapping[str, str] | None,
    allow_truncation: bool,
) -> Request[DeleteSummary]:
    params = filter_params(ids, keys, tags, attributes)
    params.append(("allow_truncation", "true" if allow_truncation else "false"))
    return Request("DELETE", "/series/", _delete_summary, params)


def read(
    start: Timestamp,
    end: Timestamp,
    interval: str,
    function: str,
    ids: Sequence[str] | None,
    keys: Sequence[str] | None,
    tags: Sequence[str] | None,
    attributes: Mapping[str, str] | None,
    tz: str,
) -> Request[list[DataSet]]:
    params = range_params(start, end, interval, function, tz)
    params += filter_params(ids, keys, tags, attributes)
    return Request("GET", "/data/", _datasets_parser(tz), params)


def read_one(
    field: str,
    value: str,
    start: Timestamp,
    end: Timestamp,
    interval: str,
    function: str,
    tz: str,
) -> Request[DataSet]:
    params = range_params(start, end, interval, function, tz)
    path = f"/series/{field}/{segment(value)}/data/"
    return Request("GET", path, _dataset_parser(tz), params)


def single_value_one(
    field: str, value: str, ts: Timestamp, direction: str
) -> Request[SingleValueSet]:
    path = f"/series/{field}/{segment(value)}/single/"
    return Request("GET", path, _single, _single_params(ts, direction))


def single_value(
    ts: Timestamp,
    direction: str,
    ids: Sequence[str] | None,
    keys: Sequence[str] | None,
    tags: Sequence[str] | None,
    attributes: Mapping[str, str] | None,
) -> Request[list[SingleValueSet]]:
    params = _single_params(ts, direction) + filter_params(ids, keys, tags, attributes)
    return Request("GET", "/single/", _singles, params)


def post_points(field: str, value: str, action: str, data: Points) -> Request[None]:
    """A write (``action="data"``) or increment of points of one series by id or key."""
    if field == "key":
        check_key(value)
    points = [point_json(p) for p in data]
    return post_points_body(field, value, action, dumps(points), stamped=_all_stamped(points))


def post_points_body(
    field: str,
    value: str,
    action: str,
    body: bytes | None,
    *,
    stamped: bool = True,
    columns: Any = None,
) -> Request[None]:
    """Like :func:`post_points` with the JSON body already encoded, or (``body`` None) as
    arrays for a transport in the server's process (``Request.columns``)."""
    path = f"/series/{field}/{segment(value)}/{action}/"
    idempotent = action == "data" and stamped
    return keyed(
        Request("POST", path, parse_nothing, body=body, idempotent=idempotent, columns=columns)
    )


def bulk(path: str, ts: Timestamp, data: Sequence[Mapping[str, Any]]) -> Request[None]:
    """``write_bulk`` (``path="/data/"``) or ``increment_bulk`` (``"/increment/"``)."""
    body = dumps({"t": to_wire(ts), "data": jsonable(data)})
    return keyed(Request("POST", path, parse_nothing, body=body, idempotent=path == "/data/"))


def multi(path: str, data: Sequence[Mapping[str, Any]]) -> Request[JSONDict | None]:
    """``write_multi`` (``path="/multi/"``) or ``increment_multi`` (``"/multi/increment/"``)."""
    items = jsonable(data)
    return multi_body(path, dumps(items), stamped=_all_stamped(items))


def multi_body(
    path: str, body: bytes | None, *, stamped: bool = True, columns: Any = None
) -> Request[JSONDict | None]:
    """Like :func:`multi` with the JSON body already encoded, or (``body`` None) as arrays
    for a transport in the server's process (``Request.columns``)."""
    return keyed(
        Request(
            "POST",
            path,
            parse_multistatus,
            body=body,
            accept=(200, 207),
            idempotent=path == "/multi/" and stamped,
            columns=columns,
        )
    )


def keyed(request: Request[T]) -> Request[T]:
    """A write that is not idempotent (an increment, or points stamped by the server) with a
    fresh ``Idempotency-Key``, so that its retries are safe."""
    if request.idempotent:
        return request
    return replace(request, idempotency_key=secrets.token_urlsafe(18))


def delete_range(
    field: str, value: str, start: Timestamp, end: Timestamp, options: Mapping[str, Any]
) -> Request[None]:
    params = [("start", to_wire(start)), ("end", to_wire(end))]
    params += [(k, param_value(v)) for k, v in options.items()]
    return Request("DELETE", f"/series/{field}/{segment(value)}/data/", parse_nothing, params)


def raw(
    target: str, method: str, params: Sequence[tuple[str, str]] | None, body: Any
) -> Request[Any]:
    """Any request: the body is JSON-encoded, the answer JSON-decoded (None when empty)."""
    return Request(
        method,
        target,
        parse_json,
        list(params or ()),
        None if body is None else dumps(body),
        idempotent=method.upper() in ("GET", "HEAD", "PUT", "DELETE"),
    )


# -- request building helpers ----------------------------------------------------------------


def check_key(key: str | None) -> None:
    """Raise ValueError for a key the server would refuse (``contract.key_error``: the same
    rule on both sides); None, no key, passes."""
    if key is not None and key_error(key) is not None:
        raise ValueError(
            f"Series key must match the following regex: {VALID_SERIES_KEY} "
            f"(at most {MAX_KEY_LENGTH} characters)"
        )


def segment(value: str) -> str:
    """A path segment: everything but letters, digits and ``_.-~`` percent-encoded, and the
    dots of a ``.`` or ``..`` key too (HTTP libraries would resolve them away)."""
    if value in (".", ".."):
        return value.replace(".", "%2E")
    return quote(value, safe="")


def _as_list(values: Sequence[str] | str | None) -> list[str]:
    if not values:
        return []
    return [values] if isinstance(values, str) else list(values)


def filter_params(
    ids: Sequence[str] | None,
    keys: Sequence[str] | None,
    tags: Sequence[str] | None,
    attributes: Mapping[str, str] | None,
) -> Params:
    """Series filters as query parameters (lists repeated, attributes as ``attr[name]``)."""
    params = [("id", v) for v in _as_list(ids)]
    params += [("key", v) for v in _as_list(keys)]
    params += [("tag", v) for v in _as_list(tags)]
    params += [(f"attr[{k}]", str(v)) for k, v in (attributes or {}).items()]
    return params


def range_params(start: Timestamp, end: Timestamp, interval: str, function: str, tz: str) -> Params:
    params = [("start", to_wire(start)), ("end", to_wire(end))]
    if interval:
        params.append(("interval", interval))
    if function:
        params.append(("function", function))
    if tz:
        params.append(("tz", tz))
    return params


def _single_params(ts: Timestamp, direction: str) -> Params:
    params = [("ts", to_wire(ts))]
    if direction:
        params.append(("direction", direction))
    return params


def param_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime.date):
        return to_wire(value)
    return str(value)


def wire_value(value: Any) -> Any:
    """A point's value as JSON carries it, by one rule for every write path: numeric scalars
    of other types (numpy's, ``fractions``) become an int or a float, a ``Decimal`` an int
    when it is a whole number written without a fraction or exponent, else a float; anything
    else goes as given, for the server to judge."""
    if type(value) in (int, float) or isinstance(value, bool | str) or value is None:
        return value
    if type(value).__module__ == "numpy" and hasattr(value, "item"):  # numpy.bool_ included
        return wire_value(value.item())
    if isinstance(value, decimal.Decimal):
        whole = value.is_finite() and value.as_tuple().exponent == 0
        return int(value) if whole else float(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    return value


def point_json(point: Point) -> JSONDict:
    """A point as wire JSON: a DataPoint, a ``{'t': ..., 'v': ...}`` dict (as the original
    demos wrote) or a ``(ts, value)`` pair."""
    if isinstance(point, DataPoint):
        return {"t": to_wire(point.ts), "v": wire_value(point.value)}
    if isinstance(point, tuple):
        ts, value = point
        return {"t": to_wire(ts), "v": wire_value(value)}
    return jsonable_item(point)


def jsonable_item(item: Mapping[str, Any]) -> JSONDict:
    return {
        k: to_wire(v) if isinstance(v, datetime.date) else wire_value(v) if k == "v" else v
        for k, v in item.items()
    }


def jsonable(items: Sequence[Mapping[str, Any]]) -> list[JSONDict]:
    return [jsonable_item(item) for item in items]


def _all_stamped(items: Iterable[Mapping[str, Any]]) -> bool:
    """Whether every element carries its own timestamp (else the server stamps it with its
    clock, and a repeated request would write the points a second time at another instant)."""
    return all(item.get("t") is not None for item in items)


# -- connection settings ---------------------------------------------------------------------

ENV_KEY, ENV_SECRET = "TEMPODB_KEY", "TEMPODB_SECRET"
ENV_HOST, ENV_PORT, ENV_SECURE = "TEMPODB_HOST", "TEMPODB_PORT", "TEMPODB_SECURE"


class _DocumentedStr(str):
    """A documented default (``api.tempo-db.com``) that gives way to the environment."""

    __slots__ = ()


class _DocumentedInt(int):
    """A documented default (443, True) that gives way to the environment."""

    __slots__ = ()

    def __repr__(self) -> str:
        return repr(bool(self)) if self in (0, 1) else int.__repr__(self)


#: The seed's defaults for ``host``, ``port`` and ``secure``, as they appear in the
#: signature; passed unchanged, they let ``TEMPODB_HOST``/``_PORT``/``_SECURE`` decide.
DEFAULT_HOST: str = _DocumentedStr(API_HOST)
DEFAULT_PORT: int = _DocumentedInt(API_PORT)
DEFAULT_SECURE: bool = cast(bool, _DocumentedInt(1))


def _given(value: T | None) -> T | None:
    """None for a documented default, so that the environment may fill it in."""
    return None if isinstance(value, _DocumentedStr | _DocumentedInt) else value


@dataclass(frozen=True)
class Settings:
    """Where and as whom a client connects, after the environment filled the gaps."""

    key: str
    secret: str
    host: str
    port: int
    secure: bool
    #: The host is the defunct hosted service's, from the signature's default rather than
    #: named: the clients then send nothing (``NO_SERVER``), so no credentials go to a
    #: domain we do not own.
    placeholder: bool = False

    @property
    def base_url(self) -> str:
        scheme = "https" if self.secure else "http"
        default_port = 443 if self.secure else 80
        host = url_host(self.host)
        netloc = host if self.port == default_port else f"{host}:{self.port}"
        return f"{scheme}://{netloc}/{API_VERSION}"


def url_host(host: str) -> str:
    """A host as a URL names it: an IPv6 address in brackets (``::1`` -> ``[::1]``)."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def resolve_settings(
    key: str | None,
    secret: str | None,
    host: str | None,
    port: int | None,
    secure: bool | None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Arguments first, then ``TEMPODB_KEY``, ``TEMPODB_SECRET``, ``TEMPODB_HOST``,
    ``TEMPODB_PORT`` and ``TEMPODB_SECURE``, then the original defaults
    (``api.tempo-db.com``, 443, https).  Raises ValueError without a key or secret."""
    env = os.environ if environ is None else environ
    host, port, secure = _given(host), _given(port), _given(secure)
    key = key if key is not None else env.get(ENV_KEY)
    secret = secret if secret is not None else env.get(ENV_SECRET)
    if not key or not secret:
        missing = " and ".join(
            f"{name} (or ${var})"
            for name, var, value in (("key", ENV_KEY, key), ("secret", ENV_SECRET, secret))
            if not value
        )
        raise ValueError(f"no API {missing}: pass it to the client or set the variable")
    placeholder = False
    if host is None:
        host = env.get(ENV_HOST) or API_HOST
        placeholder = not env.get(ENV_HOST)
    if port is None:
        text = env.get(ENV_PORT)
        try:
            port = int(text) if text else None
        except ValueError:
            raise ValueError(f"${ENV_PORT} must be a port number, not {text!r}") from None
    if secure is None:
        text = env.get(ENV_SECURE)
        secure = True if not text else parse_bool(text, ENV_SECURE)
    if port is None:
        port = API_PORT  # as in 0.5.0, whatever the scheme
    return Settings(key, secret, host, port, secure, placeholder)


#: Why a client without a server sends nothing (``Settings.placeholder``).
NO_SERVER = (
    "no tempodb server is configured, and the hosted TempoDB service (api.tempo-db.com) is "
    "gone, so your key and secret are not sent there: pass host= (and port=, secure=) to the "
    "client, or set TEMPODB_HOST (TEMPODB_PORT, TEMPODB_SECURE); host='api.tempo-db.com' "
    "given by name sends them there anyway"
)


def parse_bool(text: str, name: str) -> bool:
    """``true/false``, ``1/0``, ``yes/no``, ``on/off`` (any case); ValueError naming ``name``."""
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name} must be true or false, not {text!r}")
