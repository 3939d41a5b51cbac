"""``POST /api/v1/write``: Prometheus' remote_write 1.0.

The body is a snappy block (``Content-Encoding: snappy``, as Prometheus sends it) of a
protobuf ``WriteRequest`` (``messages``).  Each time series is one of our series, named by
its label set (``labels.series_key``); series that do not exist yet are created in bulk with
their labels as attributes, then every sample of the request goes to the store as ONE
``WriteBatch``, stored as the v1 multi write stores its points (``points.WriteJob``).  The
API key (HTTP Basic, Prometheus' ``basic_auth``) chooses the database.

Samples: a float64 value at an int64 epoch-millisecond timestamp, stored as they come.  A NaN
(Prometheus' staleness marker, the NaN with bits ``0x7ff0000000000002``, or any other NaN) is
no value we store: it is accepted and dropped, counted in the ``X-TempoDB-Dropped-NaN``
header.  Native histograms (``TimeSeries.histograms``) are not stored either: they are
refused, counted with the other refused samples.

Answers, chosen for Prometheus' retry rules (it retries every 5xx, and drops a request that
got a 4xx: a 429 too, unless ``retry_on_http_429`` is set):

* ``204``: every sample was stored (or was a NaN);
* ``400``: a request that can never succeed (not snappy, not a ``WriteRequest``, a remote
  write 2.0 body), nothing stored; or a request with some refused series or samples (a bad
  label set, a timestamp beyond the years 1-9999, a native histogram): the others are
  stored, and the message says how many samples were refused and why;
* ``413``: a body past the server's body limit, or one that declares to inflate past
  ``MAX_INFLATED`` (64 MiB);
* ``503`` with ``Retry-After``: the store is busy or failed, or the key's rate limit
  (``tempodb serve --rate-limit``, a 429 elsewhere) is reached; nothing was acknowledged, so
  Prometheus sends the request again (a retried request overwrites the same points, which
  changes nothing).

An acknowledged request is durable: the store's write returns after its commit.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from tempodb.contract import ERROR_CODE_HEADER
from tempodb.server.context import Context
from tempodb.server.http import HTTPError, Request, Response, error_response
from tempodb.server.limits import Limits
from tempodb.server.points import WriteJob
from tempodb.server.prometheus import messages
from tempodb.server.prometheus.labels import label_error, normalize, series_key
from tempodb.storage.base import NewSeries, Overloaded, SeriesRef, WriteBatch
from tempodb.timeutil import MAX_MS, MIN_MS

log = logging.getLogger("tempodb.server.prometheus")

#: Series created (and looked up) per call to the store.
CREATE_CHUNK = 5_000
#: Label sets whose mapping is remembered (by their encoded bytes); the cache starts over
#: when it is full.
CACHE_ENTRIES = 100_000
#: At most this many reasons are quoted in a 400.
MAX_REASONS = 10
#: The most a snappy body may inflate to (413 beyond; the server's default body limit).
MAX_INFLATED = Limits.max_body
#: Seconds Prometheus is asked to wait after a 503.
RETRY_AFTER = 1
#: The header counting the NaN samples (staleness markers) of a request, which are dropped.
DROPPED_NAN_HEADER = "X-TempoDB-Dropped-NaN"

#: The series of a valid label set (its ref, key and attributes), or the reason it is refused.
Mapped = tuple[SeriesRef, Mapping[str, str]] | str
_mapped: dict[tuple[bytes, ...], Mapped] = {}


def map_labels(encoded: tuple[bytes, ...]) -> Mapped:
    """The series of a label set given as encoded ``Label`` messages (remembered)."""
    found = _mapped.get(encoded)
    if found is not None:
        return found
    try:
        pairs = [(label.name, label.value) for label in map(messages.Label.FromString, encoded)]
    except messages.DecodeError:
        found = "a label that is not a valid Label message (or not UTF-8)"
    else:
        labels = normalize(pairs)
        reason = label_error(labels)
        found = (
            reason if reason is not None else (SeriesRef("key", series_key(labels)), dict(labels))
        )
    if len(_mapped) >= CACHE_ENTRIES:
        _mapped.clear()
    _mapped[encoded] = found
    return found


@dataclass
class WritePlan:
    """The samples of a request as a ``WriteBatch``, the series they name (with their
    attributes), and what was refused or dropped."""

    batch: WriteBatch
    attributes: dict[str, Mapping[str, str]]
    refused: int = 0
    nan: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


def plan_write(request: object) -> WritePlan:
    """The batch of a parsed ``WriteRequestView``."""
    slots: dict[str, int] = {}
    refs: list[SeriesRef] = []
    attributes: dict[str, Mapping[str, str]] = {}
    reasons: dict[str, int] = {}
    index: list[int] = []
    stamps: list[int] = []
    values: list[float] = []
    add_index, add_stamp, add_value = index.append, stamps.append, values.append
    refused = 0
    known = _mapped.get
    for series in request.timeseries:  # type: ignore[attr-defined]
        samples = series.samples
        histograms = len(series.histograms)
        if histograms:
            reason = "native histograms are not stored (float samples only)"
            reasons[reason] = reasons.get(reason, 0) + histograms
            refused += histograms
        if not samples:
            continue
        encoded = tuple(series.labels)
        mapped = known(encoded) or map_labels(encoded)
        if isinstance(mapped, str):
            reasons[mapped] = reasons.get(mapped, 0) + len(samples)
            refused += len(samples)
            continue
        ref = mapped[0]
        slot = slots.get(ref.value)
        if slot is None:
            slot = slots[ref.value] = len(refs)
            refs.append(ref)
            attributes[ref.value] = mapped[1]
        if len(samples) == 1:
            sample = samples[0]
            add_index(slot)
            add_stamp(sample.timestamp)
            add_value(sample.value)
            continue
        for sample in samples:
            add_index(slot)
            add_stamp(sample.timestamp)
            add_value(sample.value)
    ts = np.array(stamps, np.int64)
    vals = np.array(values, np.float64)
    ref_index = np.array(index, np.int32)
    keep = ~np.isnan(vals)
    nan = len(vals) - int(np.count_nonzero(keep))
    in_range = (ts >= MIN_MS) & (ts <= MAX_MS)
    outside = int(np.count_nonzero(keep & ~in_range))
    if outside:
        reason = "a timestamp beyond the years 1-9999"
        reasons[reason] = reasons.get(reason, 0) + outside
        refused += outside
    keep &= in_range
    if nan or outside:
        ts, vals, ref_index = ts[keep], vals[keep], ref_index[keep]
    batch = WriteBatch(refs, ref_index, ts, vals, np.zeros(len(ts), np.bool_))
    return WritePlan(batch, attributes, refused, nan, reasons)


def create_missing(ctx: Context, attributes: Mapping[str, Mapping[str, str]]) -> None:
    """Create the series of ``attributes`` that do not exist yet, in bulk.  One that another
    request creates meanwhile is fine (its KeyConflict is ignored)."""
    keys = list(attributes)
    for at in range(0, len(keys), CREATE_CHUNK):
        chunk = keys[at : at + CREATE_CHUNK]
        known = ctx.store.existing_keys(ctx.db.id, chunk)
        missing = [NewSeries(key, attributes=attributes[key]) for key in chunk if key not in known]
        if missing:
            ctx.store.create_series_many(ctx.db.id, missing)


def read_message(request: Request, kind: object, limit: int = MAX_INFLATED) -> object:
    """The protobuf message of a snappy body; 400 when it is none, 413 past ``limit``."""
    try:
        body = messages.decompress(request.body, limit)
    except messages.SnappyError as exc:
        status = 413 if isinstance(exc, messages.SnappyTooLarge) else 400
        raise HTTPError(status, f"The body is no snappy-compressed protobuf: {exc}") from None
    try:
        return kind.FromString(body)  # type: ignore[attr-defined]
    except messages.DecodeError as exc:
        name = getattr(kind, "__name__", "message").replace("View", "")
        raise HTTPError(400, f"The body is not a valid {name}: {exc}") from None


def prometheus_error(error: HTTPError) -> Response:
    """An error on the Prometheus routes: plain text, as everywhere, but a rate limit's
    ``429`` is answered ``503`` with the same ``Retry-After``: Prometheus 2.x retries every
    5xx, while it drops a request that got a 429 unless ``retry_on_http_429`` is set."""
    if error.status == 429:
        error = HTTPError(503, error.message, error.code, error.headers)
    return error_response(error)


def write(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """``POST /api/v1/write``: a remote_write 1.0 ``WriteRequest``."""
    content_type = request.headers.get("content-type", "")
    if "io.prometheus.write.v2" in content_type:
        raise HTTPError(
            415,
            "remote write 2.0 is not supported: send remote write 1.0 "
            "(protobuf_message: prometheus.WriteRequest)",
            "unsupported-media-type",
        )
    plan = plan_write(read_message(request, messages.WriteRequestView))
    headers = {DROPPED_NAN_HEADER: str(plan.nan)} if plan.nan else {}
    if plan.refused:
        stored = len(plan.batch)
        why = "; ".join(
            f"{reason} ({count})" for reason, count in list(plan.reasons.items())[:MAX_REASONS]
        )
        answer = Response(
            400,
            f"{plan.refused} samples refused, {stored} stored: {why}\n".encode(),
            b"text/plain; charset=utf-8",
            {ERROR_CODE_HEADER: "partial-write", **headers},
        )
    else:
        answer = Response(204, b"", None, headers)
    if not len(plan.batch):
        return answer
    try:
        create_missing(ctx, plan.attributes)
        return WriteJob(plan.batch, False, answer).run(ctx)
    except (HTTPError, Overloaded):
        raise
    except Exception as exc:
        log.exception("remote write failed in the store", exc_info=exc)
        raise HTTPError(
            503,
            f"The store failed: nothing was acknowledged, retry after {RETRY_AFTER} s",
            "storage-unavailable",
            {"Retry-After": str(RETRY_AFTER)},
        ) from None
