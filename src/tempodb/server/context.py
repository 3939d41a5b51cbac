"""What every handler gets: the store, the caller's database and the server's options."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

from tempodb.retention import RetentionView
from tempodb.server.http import Query, bad_request
from tempodb.server.idempotency import KeysInFlight
from tempodb.server.wire import not_found
from tempodb.storage.base import Database, SeriesField, SeriesFilter, SeriesRecord, Store

if TYPE_CHECKING:
    from tempodb.server.metrics import ServerMetrics

ATTR_PARAM = re.compile(r"attr\[(.+)\]", re.DOTALL)
#: Distinct tags and attribute names one series filter may name (each is one condition that
#: every series must meet; the ids, keys and attribute values have no count of their own,
#: only the request target's length, ``limits.MAX_TARGET_BYTES``).
MAX_FILTER_CONDITIONS = 256


@dataclass(frozen=True)
class Options:
    """Server behaviour chosen at start-up."""

    #: Tag series created from dotted keys with all but the last component (spec §5.10).
    auto_tag: bool = False
    #: Most series one ``POST /v1/series/`` with a JSON array may create (400 beyond).
    max_series_per_request: int = 10_000
    #: Origins whose browser pages may change data (``*``: any); others get 403 (``auth``).
    allowed_origins: frozenset[str] = frozenset()
    #: How long the store keeps a write's ``Idempotency-Key`` (ms; ``server/idempotency.py``).
    idempotency_ttl_ms: int = 86_400_000


@dataclass(frozen=True)
class Context:
    store: Store
    db: Database
    options: Options
    #: Where handlers count the points they write and read (None: not counted).
    metrics: ServerMetrics | None = None
    #: The idempotency keys of the writes this server is applying (one object per app).
    keys_in_flight: KeysInFlight = field(default_factory=KeysInFlight)
    #: The databases' retentions (None: not enforced by this server).
    retention: RetentionView | None = None

    def series(self, field: str, value: str) -> SeriesRecord:
        """The addressed series, or 403 'Series not found' as v1 answered."""
        record = None
        if field in ("id", "key"):
            record = self.store.lookup_series(self.db.id, cast(SeriesField, field), value)
        if record is None:
            raise not_found(field, value)
        return record


def auto_tags(key: str) -> list[str]:
    """``boiler.3.temp`` -> ``["boiler", "3"]``: every dotted component but the last."""
    return list(dict.fromkeys(part for part in key.split(".")[:-1] if part))


def parse_filter(query: Query) -> SeriesFilter:
    """``id``/``key``/``tag`` (repeatable) and ``attr[NAME]=VALUE`` parameters (spec §5.1);
    400 when they name more than ``MAX_FILTER_CONDITIONS`` distinct tags and attributes."""
    attributes: dict[str, list[str]] = {}
    for name, value in query.pairs:
        match = ATTR_PARAM.fullmatch(name)
        if match:
            attributes.setdefault(match.group(1), []).append(value)
    tags = query.get_all("tag")
    conditions = len(set(tags)) + len(attributes)
    if conditions > MAX_FILTER_CONDITIONS:
        raise bad_request(
            f"Too many filters: {conditions} distinct tags and attribute names, at most "
            f"{MAX_FILTER_CONDITIONS} in one request (narrow the filter, or filter by key)"
        )
    return SeriesFilter(
        ids=tuple(query.get_all("id")),
        keys=tuple(query.get_all("key")),
        tags=tuple(tags),
        attributes={name: tuple(values) for name, values in attributes.items()},
    )
