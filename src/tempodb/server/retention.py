"""Retention over HTTP: writes older than a database's retention are refused, rollups over
an expired range are answered from the 15-minute tier, and an administrator key reads and
sets retentions (``GET``/``PUT /v1/database/{key}/retention/``).

Refused writes: a point before ``now - retention`` is answered ``422`` naming the retention,
and nothing of the request is stored; in a multi write (``POST /multi/``) each such element
gets its own ``422`` entry in the ``207`` multistatus and the others are stored.

Tiered reads: once a database has had a retention, a rollup read fetches the tier summaries
overlapping its range with the points (one snapshot, ``Store.read_tiered``).  Without
summaries there, the read is what it always was.  With them, the tier must be able to
answer (``tier.unanswerable``: else ``400`` saying what the tier offers); the points are
summarized and merged with the summaries, and the rollup and the summary are folded from
them (``tier.answer``).  The answer then carries ``"tier": {"interval": "PT15M", "until":
T, "points": N}``: buckets before ``T`` (the end of the last summary in the range: raw data
begins there) were folded from N points' summaries.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from tempodb import tier
from tempodb.retention import format_duration, now_ms, parse_duration
from tempodb.rollup import Folded, Interval
from tempodb.server.http import HTTPError, Request, Response, bad_request, json_response
from tempodb.server.wire import MultiBatch
from tempodb.storage.base import Points, Retention, SeriesRecord
from tempodb.zones import Zone

if TYPE_CHECKING:
    from tempodb.server.context import Context
    from tempodb.server.points import WriteJob


# -- writes ----------------------------------------------------------------------------------


def refuse_expired(ctx: Context, job: WriteJob) -> WriteJob:
    """The job without the points older than the database's retention: 422 for a request of
    one series or of one timestamp; a multi write answers those elements 422 in its 207."""
    if ctx.retention is None:
        return job
    kept = ctx.retention.of(ctx.db.id)
    if kept is None or kept.keep_ms is None or not len(job.batch):
        return job
    limit = now_ms() - kept.keep_ms
    old = job.batch.ts < limit
    if not bool(old.any()):
        return job
    message = (
        f"Points older than the retention of this database ({format_duration(kept.keep_ms)}) "
        f"are not stored: the oldest point it takes now is "
        f"{np.datetime64(limit, 'ms')}Z"
    )
    if job.multi is None:
        raise HTTPError(422, message + "; nothing of this request was written", "expired")
    multi = _without(job.multi, old, message)
    return dataclasses.replace(job, batch=multi.batch, multi=multi)


def _without(multi: MultiBatch, old: np.ndarray, message: str) -> MultiBatch:
    """A multi write's batch without the points marked ``old``, their elements 422."""
    batch = multi.batch
    slots = batch.ref_index.tolist() if multi.slots is None else list(multi.slots)
    errors = [[] for _ in slots] if multi.errors is None else [list(e) for e in multi.errors]
    accepted = [at for at, messages in enumerate(errors) if not messages]
    for point in np.flatnonzero(old).tolist():
        element = accepted[point]
        errors[element] = [message]
        slots[element] = -1
    keep = ~old
    kept = dataclasses.replace(
        batch,
        ref_index=batch.ref_index[keep],
        ts=batch.ts[keep],
        values=batch.values[keep],
        is_int=batch.is_int[keep],
    )
    return MultiBatch(kept, errors, slots)


# -- reads -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tiered:
    """A rollup read answered with the tier."""

    folded: list[Folded]
    summary: dict[str, int | float]
    #: The end of the last summary in the range (raw data begins there) and how many
    #: points the summaries stand for.
    until: int
    points: int

    def marker(self, zone: Zone) -> dict[str, Any]:
        """The ``tier`` member of the answer."""
        return {
            "interval": "PT15M",
            "until": zone.format_one(self.until),
            "points": self.points,
        }


def read(
    ctx: Context,
    series: SeriesRecord,
    start: int,
    end: int,
    *,
    interval: Interval,
    folds: tuple[str, ...],
    zone: Zone,
) -> Tiered | Points:
    """A rollup read's input: the answer from the tier when it has summaries in the range
    (400 when it cannot give them), else the raw points."""
    if ctx.retention is None or ctx.retention.of(ctx.db.id) is None:
        return ctx.store.read_points(ctx.db.id, series.id, start, end)
    summaries, points = ctx.store.read_tiered(ctx.db.id, series.id, start, end)
    if len(summaries) == 0:
        return points
    why = tier.unanswerable(interval, folds, zone, start=start, end=end, tier=summaries)
    if why is not None:
        raise bad_request(f"Cannot answer this rollup: {why}")
    both = tier.merge(summaries, tier.summarize(points.ts, points.values, points.is_int))
    rolled = tier.rollup(both, interval=interval, zone=zone, start_ms=start)
    folded = [Folded(rolled.ts, *tier.fold(rolled, name)) for name in folds]
    until = int(summaries.ts[-1]) + tier.TIER_MS
    return Tiered(folded, tier.summary(both), until, summaries.points())


# -- the administrator's route ---------------------------------------------------------------


def _admin(ctx: Context) -> None:
    if not ctx.db.admin:
        raise HTTPError(403, "Only an administrator key may read or set retentions", "forbidden")


def _retention_json(key: str, kept: Retention | None) -> dict[str, Any]:
    kept = kept or Retention()
    return {
        "key": key,
        "retention": format_duration(kept.keep_ms),
        "tier_retention": format_duration(kept.tier_keep_ms),
    }


def _database_id(ctx: Context, key: str) -> int:
    for database in ctx.store.list_databases():
        if database.key == key:
            return database.id
    raise HTTPError(404, f"No such database: {key}", "not-found")


def get_retention(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """``GET /database/{key}/retention/``: a database's retention (administrator keys)."""
    _admin(ctx)
    db = _database_id(ctx, params["value"])
    return json_response(_retention_json(params["value"], ctx.store.retentions().get(db)))


def set_retention(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """``PUT /database/{key}/retention/`` with ``{"retention": "90d", "tier_retention":
    "none"}`` (a missing member is left as it is): set a database's retention
    (administrator keys).  Servers apply it within a second."""
    _admin(ctx)
    key = params["value"]
    db = _database_id(ctx, key)
    try:
        body = orjson.loads(request.body or b"{}")
    except orjson.JSONDecodeError:
        raise bad_request("Request body must be JSON") from None
    if not isinstance(body, dict) or not set(body) <= {"retention", "tier_retention"}:
        raise bad_request('Request body must be {"retention": "90d", "tier_retention": "none"}')
    old = ctx.store.retentions().get(db) or Retention()
    try:
        keep = old.keep_ms
        if "retention" in body:
            keep = parse_duration(_text(body["retention"]))
        tier_keep = old.tier_keep_ms
        if "tier_retention" in body:
            tier_keep = parse_duration(_text(body["tier_retention"]))
    except ValueError as exc:
        raise bad_request(str(exc)) from None
    kept = Retention(keep, tier_keep)
    if not ctx.store.set_retention(key, kept):
        raise HTTPError(404, f"No such database: {key}", "not-found")
    if ctx.retention is not None:
        ctx.retention.forget()
    return json_response(_retention_json(key, kept))


def _text(value: object) -> str:
    if value is None:
        return "none"
    if not isinstance(value, str):
        raise ValueError(f"Invalid retention: {value!r} (a text such as 90d, or none)")
    return value
