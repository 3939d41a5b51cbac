"""The storage contract that every backend implements, and the types it speaks.

A backend stores, per *database* (one per API key):

* series metadata: a 32-hex ``id`` (opaque on input), a unique ``key``, a ``name``,
  ordered ``tags`` and string ``attributes``;
* points: per series, at most one value per millisecond timestamp (``int64`` epoch ms, UTC).
  A value is a float64 plus an ``is_int`` flag, so that integers written as JSON integers come
  back as integers.  Integers are limited to ``|v| <= 2**53`` (the server rejects larger ones),
  which makes float64 an exact carrier for them.

All methods are synchronous and thread-safe; the server calls them from worker threads.  A call
either completes entirely or changes nothing.  When a write method returns, its effect is durable.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import secrets
import time
from abc import ABC, abstractmethod
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, NamedTuple, Self

import numpy as np
import numpy.typing as npt

from tempodb.contract import Direction as Direction

SeriesField = Literal["id", "key"]

#: Largest integer magnitude stored exactly (float64 carries every integer up to 2**53).
MAX_EXACT_INT = 2**53

Int64Array = npt.NDArray[np.int64]
Float64Array = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
Int32Array = npt.NDArray[np.int32]


class StorageError(Exception):
    """Base class of the errors a backend raises on purpose."""


class KeyConflict(StorageError):
    """A series with this key already exists in the database."""

    def __init__(self, key: str) -> None:
        super().__init__(f"A series with key {key!r} already exists")
        self.key = key


class SchemaTooNew(StorageError):
    """The data store was written by a newer version of tempodb than this one."""


class StorageFull(StorageError):
    """The disk that holds the store is full: nothing of the call was written.  Writes work
    again once space is freed."""


class Unavailable(StorageError):
    """The database cannot be reached (it is down, restarting or failing over): the call did
    nothing, and may be tried again later."""


class OutcomeUnknown(StorageError):
    """The connection to the database broke while a transaction was committing: it may or
    may not have taken effect (wholly either way)."""


class Overloaded(StorageError):
    """Too many requests are waiting for the store: nothing was done, try again later."""


class TooManyNewSeries(StorageError):
    """A write would create more series than its batch allows (``WriteBatch.max_new_series``):
    nothing of it was written."""

    def __init__(self, count: int, limit: int) -> None:
        super().__init__(f"the write would create {count} series, more than {limit}")
        self.count = count
        self.limit = limit


class TierCut(StorageError):
    """A range delete would cut a 15-minute tier bucket in two: nothing was deleted."""


class ValueOutOfRange(StorageError):
    """An increment would store a value that a write could not: a result that is not finite,
    or an integer beyond ``MAX_EXACT_INT`` in magnitude.  Nothing of the call was written."""


class AlreadyApplied(StorageError):
    """A write carried an idempotency key that the store already holds for the same request:
    nothing was written again; ``skipped`` is what the first ``write_points`` returned."""

    def __init__(self, skipped: tuple[int, ...]) -> None:
        super().__init__("this request was already applied")
        self.skipped = skipped


class IdempotencyKeyReused(StorageError):
    """A write carried an idempotency key that the store holds for a different request:
    nothing was written."""


class IdempotencyKeyInUse(StorageError):
    """Another transaction is applying a write with the same idempotency key right now:
    nothing was written."""


@dataclass(frozen=True)
class Idempotency:
    """The idempotency key of a write (``WriteBatch.idempotency``).

    The store keeps ``key`` with ``fingerprint`` (a digest of the request) and the result of
    ``write_points``, in the transaction that applies the write, for at least ``ttl_ms``
    milliseconds; per database.  A later write with the same key raises AlreadyApplied if its
    fingerprint is the same (writing nothing), IdempotencyKeyReused if not.
    """

    key: str
    fingerprint: bytes
    ttl_ms: int


@dataclass(frozen=True)
class Database:
    """One database: everything an API key can see."""

    id: int
    key: str
    name: str
    admin: bool = False
    #: A revoked key authenticates no more; its data stays until the database is deleted.
    revoked: bool = False


@dataclass(frozen=True)
class Retention:
    """How long a database keeps its data (None: forever): raw points ``keep_ms`` behind
    now, their 15-minute summaries (``tempodb.tier``) ``tier_keep_ms``."""

    keep_ms: int | None = None
    tier_keep_ms: int | None = None


@dataclass(frozen=True)
class Expired:
    """What one retention pass did (``Store.expire``)."""

    series: int = 0
    points: int = 0
    buckets: int = 0
    tier_dropped: int = 0


@dataclass(frozen=True)
class Credentials:
    """A freshly created API key and its secret (the secret is never stored in clear)."""

    key: str
    secret: str


@dataclass(frozen=True)
class SeriesRecord:
    """Series metadata as stored."""

    id: str
    key: str
    name: str = ""
    tags: tuple[str, ...] = ()
    attributes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SeriesFilter:
    """Which series a request means (spec §5.1).

    ``(id in ids or key in keys, when any ids/keys are given) and every tag and every
    attribute``; an attribute matches when the series' value equals any of the listed values.
    """

    ids: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    attributes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def is_empty(self) -> bool:
        return not (self.ids or self.keys or self.tags or self.attributes)

    def matches(self, series: SeriesRecord) -> bool:
        """The reference semantics, for backends that filter in Python and for tests."""
        if (self.ids or self.keys) and not (series.id in self.ids or series.key in self.keys):
            return False
        if any(tag not in series.tags for tag in self.tags):
            return False
        return all(
            series.attributes.get(name) in values for name, values in self.attributes.items()
        )


class SeriesRef(NamedTuple):
    """A series addressed by a request, by id or by key (a named tuple: requests of many
    series make thousands of them)."""

    field: SeriesField
    value: str


@dataclass(frozen=True)
class Points:
    """Points of one series, ascending by timestamp, one per timestamp."""

    ts: Int64Array
    values: Float64Array
    is_int: BoolArray

    def __len__(self) -> int:
        return int(self.ts.shape[0])

    @staticmethod
    def empty() -> Points:
        return Points(np.empty(0, np.int64), np.empty(0, np.float64), np.empty(0, np.bool_))

    def value_at(self, index: int) -> int | float:
        """The value at ``index`` as the Python type it was written with."""
        value = float(self.values[index])
        return int(value) if self.is_int[index] else value


#: Consecutive points of a series (``Store.read_pieces_many``): timestamps, values, integer
#: flags, and the step between the timestamps when the store knows them evenly spaced (a
#: block stored so), else 0.
Piece = tuple[Int64Array, Float64Array, BoolArray, int]


@dataclass(frozen=True)
class WriteBatch:
    """Points addressed to one or more series, in request order.

    ``ref_index[i]`` says which of ``refs`` point ``i`` belongs to.  Within one batch, a write
    keeps the last value given for a (series, timestamp); an increment adds them all in order.
    """

    refs: Sequence[SeriesRef]
    ref_index: Int32Array
    ts: Int64Array
    values: Float64Array
    is_int: BoolArray
    #: Skip the points of refs whose series cannot be created (an unknown id that another
    #: series has as its key) instead of refusing the whole batch with KeyConflict: the multi
    #: write answers per element.  ``write_points`` then returns the skipped refs.
    skip_conflicts: bool = False
    #: The most series the write may create (None: no bound); beyond, TooManyNewSeries and
    #: nothing is written.
    max_new_series: int | None = None
    #: Apply the batch at most once per key (see :class:`Idempotency`).
    idempotency: Idempotency | None = None

    def __len__(self) -> int:
        return int(self.ts.shape[0])


@dataclass(frozen=True)
class NewSeries:
    """One series to create (``Store.create_series_many``); without a key, its id is the key."""

    key: str | None
    name: str = ""
    tags: tuple[str, ...] = ()
    attributes: Mapping[str, str] = field(default_factory=dict)


class Store(ABC):
    """What the server needs from a storage backend."""

    # -- databases and keys ------------------------------------------------------------------

    @abstractmethod
    def create_database(self, name: str = "", *, admin: bool = False) -> Credentials:
        """Create a database and return its new API key and secret."""

    @abstractmethod
    def authenticate(self, key: str, secret: str) -> Database | None:
        """The database of this key if the secret is right and the key is not revoked."""

    @abstractmethod
    def list_databases(self) -> list[Database]:
        """Every database, revoked ones included, ordered by key."""

    @abstractmethod
    def revoke_database(self, key: str) -> bool:
        """Revoke a key at once, keeping its data; False if the key is unknown."""

    @abstractmethod
    def delete_database(self, key: str) -> bool:
        """Delete a database with all its series and points; False if the key is unknown."""

    def keys_stamp(self) -> Hashable | None:
        """A value, cheap to read, that changes whenever a key is revoked or deleted by any
        process: while it stays the same, credentials found good stay good and may be kept.
        None when the store has none (credentials are then checked with it every time)."""
        return None

    # -- series metadata ---------------------------------------------------------------------

    @abstractmethod
    def create_series(
        self,
        db: int,
        key: str | None,
        name: str = "",
        tags: Sequence[str] = (),
        attributes: Mapping[str, str] | None = None,
    ) -> SeriesRecord:
        """Create a series; a missing key becomes the new id.  Raises KeyConflict."""

    def create_series_many(
        self, db: int, items: Sequence[NewSeries]
    ) -> list[SeriesRecord | KeyConflict]:
        """Create many series at once; per item, in order, its record or the KeyConflict that
        refused it (its key exists, or an earlier item has it).  The created ones are durable
        when this returns, the refused ones change nothing.  This default creates them one by
        one; backends do it in one transaction."""
        created: list[SeriesRecord | KeyConflict] = []
        for item in items:
            try:
                created.append(
                    self.create_series(db, item.key, item.name, item.tags, item.attributes)
                )
            except KeyConflict as exc:
                created.append(exc)
        return created

    @abstractmethod
    def lookup_series(self, db: int, field: SeriesField, value: str) -> SeriesRecord | None:
        """The series with this id or key, or None."""

    @abstractmethod
    def find_series(self, db: int, flt: SeriesFilter) -> list[SeriesRecord]:
        """The series matching the filter (all for an empty filter), ordered by key."""

    def existing_keys(self, db: int, keys: Sequence[str]) -> set[str]:
        """Which of ``keys`` name a series of the database (without building records: a
        write that names many series asks it to create only the missing ones).  This
        default uses ``find_series``; backends ask for the keys only."""
        if not keys:
            return set()
        return {record.key for record in self.find_series(db, SeriesFilter(keys=tuple(keys)))}

    def find_series_page(
        self, db: int, flt: SeriesFilter, *, after: str | None = None, limit: int
    ) -> list[SeriesRecord]:
        """A page of ``find_series``: the first ``limit`` matching series whose key sorts
        after ``after`` (by code point, which is the order of the keys' UTF-8 bytes).  Pages
        fetched one after another list every series once even while others are created.
        This default filters ``find_series``; backends fetch only the page."""
        found = self.find_series(db, flt)
        if after is not None:
            found = [record for record in found if record.key > after]
        return found[:limit]

    @abstractmethod
    def update_series(
        self,
        db: int,
        series_id: str,
        *,
        name: str | None = None,
        tags: Sequence[str] | None = None,
        attributes: Mapping[str, str] | None = None,
    ) -> SeriesRecord | None:
        """Replace the given fields (None leaves one unchanged); None if the id is unknown."""

    @abstractmethod
    def delete_series(self, db: int, flt: SeriesFilter | None) -> int:
        """Delete the matching series and their points (all of them for None); the count."""

    # -- points ------------------------------------------------------------------------------

    @abstractmethod
    def write_points(
        self, db: int, batch: WriteBatch, *, increment: bool = False
    ) -> tuple[int, ...]:
        """Store a batch atomically: overwrite, or add to what is there when ``increment``.

        Series addressed by a key that does not exist are created with empty metadata; an
        unknown id creates a series whose id and key are that value (KeyConflict if the key is
        taken; with ``batch.skip_conflicts`` the points of that ref are skipped instead, and the
        skipped indices into ``batch.refs`` are returned, ascending; else the result is ``()``).
        An increment of a missing point starts from 0; the result is an integer only when both
        sides are.  An increment whose result is not finite, or an integer beyond
        ``MAX_EXACT_INT``, raises ValueOutOfRange and writes nothing.
        """

    #: True when ``authenticate`` and ``submit_write`` return at once, without a network round
    #: trip or a wait for the store (an embedded store with a writer thread): the server may
    #: then take small writes on its event loop rather than on a worker thread.
    quick_submit: ClassVar[bool] = False

    def submit_write(
        self, db: int, batch: WriteBatch, *, increment: bool = False
    ) -> Future[tuple[int, ...]]:
        """Start ``write_points`` and return the future of its outcome (its exceptions come
        from ``result()``).  This default stores the batch before it returns; a store with a
        writer queue returns once the batch is queued (``Overloaded`` may then be raised at
        once)."""
        future: Future[tuple[int, ...]] = Future()
        try:
            skipped = self.write_points(db, batch, increment=increment)
        except Exception as exc:
            future.set_exception(exc)
        else:
            future.set_result(skipped)
        return future

    @abstractmethod
    def read_points(
        self, db: int, series_id: str, start: int, end: int, *, cache: bool = True
    ) -> Points:
        """The points with ``start <= ts < end``.

        ``cache=False`` asks a store that keeps decoded blocks for later reads not to keep
        these (a long streamed read would only push the others out).
        """

    def read_points_many(
        self, db: int, series_ids: Sequence[str], start: int, end: int, *, cache: bool = True
    ) -> list[Points]:
        """``read_points`` of each series (in the order given; none for an unknown one).

        A store may read them together, in one snapshot and fewer statements: the reads of
        many series window by window (the 1.0 aggregate and multi reads) ask for this.
        """
        return [self.read_points(db, sid, start, end, cache=cache) for sid in series_ids]

    def estimate_points(
        self, db: int, series_ids: Sequence[str], start: int, end: int
    ) -> int | None:
        """About how many points these series have in ``[start, end)``, no fewer, told
        without reading them (from what the store knows of its blocks); None when the store
        cannot tell cheaply.  Reads size their windows with it."""
        return None

    def read_pieces_many(
        self, db: int, series_ids: Sequence[str], start: int, end: int, *, cache: bool = True
    ) -> list[list[Piece]]:
        """``read_points_many`` with each series' points in consecutive pieces (whose
        concatenation they are), which may be read-only views of what the store keeps: for
        a reader that copies them anyway (the aggregate's fold), no copy in between."""
        found = self.read_points_many(db, series_ids, start, end, cache=cache)
        return [[(points.ts, points.values, points.is_int, 0)] for points in found]

    @abstractmethod
    def delete_points(self, db: int, series_id: str, start: int, end: int) -> int:
        """Delete the points with ``start <= ts < end``; the number deleted."""

    @abstractmethod
    def single_value(
        self, db: int, series_id: str, ts: int, direction: Direction
    ) -> tuple[int, int | float] | None:
        """The point at ``ts`` (exact), the closest at or before / at or after it, or the
        nearest (ties go to the earlier point); None when there is none."""

    # -- retention and the 15-minute tier (tempodb.tier) ---------------------------------------

    def retentions(self) -> dict[int, Retention]:
        """The retention of every database that has had one (by database id; a database
        whose retention was removed keeps ``Retention()``, as it may have tier summaries)."""
        return {}

    def set_retention(self, key: str, retention: Retention) -> bool:
        """Set a database's retention (both fields; None keeps forever); False if the key is
        unknown."""
        raise StorageError("this store keeps no retention")

    def expire(self, now_ms: int) -> Expired:
        """One retention pass: per database with a retention, every series' points older
        than ``now_ms - keep_ms`` (from the 15-minute mark at or before it) are summarized
        into the tier and dropped, and tier buckets older than ``tier_keep_ms`` dropped;
        each series in one transaction."""
        return Expired()

    def read_tiered(self, db: int, series_id: str, start: int, end: int) -> tuple[Any, Points]:
        """The tier summaries (a ``tempodb.tier.Tier``) whose buckets overlap ``[start,
        end)`` and the raw points in it, from one snapshot."""
        from tempodb.tier import Tier

        return Tier.empty(), self.read_points(db, series_id, start, end)

    def queue_depth(self) -> int:
        """Calls waiting for the store right now (writes queued for a writer, or callers
        waiting for a connection), for the server's metrics; 0 for a backend without a queue."""
        return 0

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections and threads."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


# -- helpers shared by the backends --------------------------------------------------------------


#: The width of a tier bucket (``tempodb.tier.TIER_MS``): cutoffs fall on its marks.
_TIER_MS = 900_000


def expiry_cutoffs(kept: Retention, now_ms: int) -> tuple[int | None, int | None]:
    """Where a retention pass cuts at ``now_ms``: the raw points before the first value, the
    tier summaries before the second (None: nothing), each the 15-minute mark at or before
    ``now - keep``."""
    cutoff = None if kept.keep_ms is None else (now_ms - kept.keep_ms) // _TIER_MS * _TIER_MS
    tier_cutoff = None
    if kept.tier_keep_ms is not None:
        tier_cutoff = (now_ms - kept.tier_keep_ms) // _TIER_MS * _TIER_MS
    return cutoff, tier_cutoff


def new_series_id() -> str:
    """A new series id (see ``new_series_ids``)."""
    return next(new_series_ids(1))


def new_series_ids(count: int) -> Iterator[str]:
    """``count`` new series ids of 32 hex digits, as the original service issued them: the
    creation time in ms (12 digits), then 80 random bits (``secrets``), so that the ids a
    store creates land at the end of its index on ids rather than all over it."""
    stamp = f"{time.time_ns() // 1_000_000 & 0xFFFF_FFFF_FFFF:012x}"
    drawn = secrets.token_bytes(10 * count).hex()
    return (stamp + drawn[at : at + 20] for at in range(0, 20 * count, 20))


def new_credentials() -> Credentials:
    """A 32-hex API key and a 32-hex secret (128 random bits each, from ``secrets``), as the
    original service issued them."""
    return Credentials(key=secrets.token_hex(16), secret=secrets.token_hex(16))


def hash_secret(secret: str, salt: bytes | None = None) -> str:
    """``salt$digest`` for storage.

    Secrets are 128 random bits generated by us, so a salted SHA-256 is out of reach of any
    search; a slow password hash would only slow down every request.
    """
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.sha256(salt + secret.encode()).hexdigest()
    return f"{salt.hex()}${digest}"


def verify_secret(secret: str, stored: str) -> bool:
    salt_hex, _, _ = stored.partition("$")
    try:
        salt = bytes.fromhex(salt_hex)
    except ValueError:
        return False
    return hmac.compare_digest(hash_secret(secret, salt), stored)


_new_object = object.__new__


def series_record(
    series_id: str, key: str, name: str, tags: tuple[str, ...], attributes: Mapping[str, str]
) -> SeriesRecord:
    """``SeriesRecord(series_id, key, name, tags, attributes)`` without the frozen dataclass'
    ``__init__`` (an ``object.__setattr__`` per field), for the thousands of records of a
    bulk creation: a third of the time."""
    record: SeriesRecord = _new_object(SeriesRecord)
    record.__dict__.update(id=series_id, key=key, name=name, tags=tags, attributes=attributes)
    return record


def new_series_item(
    key: str | None, name: str, tags: tuple[str, ...], attributes: Mapping[str, str]
) -> NewSeries:
    """``NewSeries(key, name, tags, attributes)``, as ``series_record`` makes a record."""
    item: NewSeries = _new_object(NewSeries)
    item.__dict__.update(key=key, name=name, tags=tags, attributes=attributes)
    return item


def normalize_tags(tags: Iterable[str]) -> tuple[str, ...]:
    """Keep the first occurrence of each tag, in order."""
    return tuple(dict.fromkeys(tags))


def fold_batch(
    batch: WriteBatch, series_of_ref: Sequence[str], *, increment: bool
) -> dict[str, Points]:
    """Group a batch by resolved series id; collapse repeated timestamps.

    A write keeps the last value for a timestamp; an increment sums them (integer only if
    all of them are).  Series come out in the order of their first point in the batch.
    """
    if not len(batch):
        return {}
    # Number the series (several refs may resolve to one) and order the points by (series, ts),
    # with a stable sort so that repeated timestamps of a series stay in request order.  A batch
    # that is already in that order (the common case) is not sorted at all.
    number: dict[str, int] = {}
    ref_code = np.array([number.setdefault(s, len(number)) for s in series_of_ref], np.int64)
    point_code = ref_code[batch.ref_index]
    code_step, ts_step = np.diff(point_code), np.diff(batch.ts)
    if bool(np.all((code_step > 0) | ((code_step == 0) & (ts_step >= 0)))):
        order = None
        codes, ts_all, values_all, is_int_all = point_code, batch.ts, batch.values, batch.is_int
    else:
        order = np.lexsort((batch.ts, point_code))
        codes = point_code[order]
        ts_all, values_all, is_int_all = batch.ts[order], batch.values[order], batch.is_int[order]
    cuts = np.flatnonzero(np.diff(codes)) + 1
    groups: dict[int, Points] = {}
    first_seen: dict[int, int] = {}  # the position in the batch of each series' first point
    for lo, hi in zip([0, *cuts.tolist()], [*cuts.tolist(), len(codes)], strict=True):
        first_seen[int(codes[lo])] = lo if order is None else int(order[lo:hi].min())
        ts, values, is_int = ts_all[lo:hi], values_all[lo:hi], is_int_all[lo:hi]
        if ts.shape[0] > 1 and bool(np.any(ts[1:] == ts[:-1])):
            starts = np.flatnonzero(np.concatenate(([True], ts[1:] != ts[:-1])))
            if increment:
                raw = values
                with np.errstate(over="ignore", invalid="ignore"):
                    values = np.add.reduceat(values, starts)
                all_int = np.logical_and.reduceat(is_int, starts)
                exact = None
                if all_int.any():
                    sums = exact_sums(np.where(is_int, raw, 0.0), starts)
                    exact = sums[all_int]
                check_increment(ts[starts], values, all_int, exact)
                is_int = all_int
            else:
                last = np.concatenate((starts[1:] - 1, [ts.shape[0] - 1]))
                values, is_int = values[last], is_int[last]
            ts = ts[starts]
        groups[int(codes[lo])] = Points(ts, values, is_int)
    names = list(number)
    return {names[code]: groups[code] for code in sorted(first_seen, key=first_seen.__getitem__)}


def check_increment(
    ts: Int64Array, values: Float64Array, is_int: BoolArray, exact: npt.NDArray[Any] | None = None
) -> None:
    """Raise ValueOutOfRange unless every result of an increment is storable: finite, and an
    integer result (both sides integers) at most ``MAX_EXACT_INT`` in magnitude.

    ``exact`` holds the integer results exactly (in the order of ``is_int``'s True entries),
    where the float64 ``values`` may have rounded them back into range (2**53 + 1 is 2**53).
    """
    too_big = np.zeros(values.shape, np.bool_)
    if is_int.any():
        ints = np.abs(values[is_int] if exact is None else exact) > MAX_EXACT_INT
        too_big[is_int] = ints.astype(np.bool_)
    bad = ~np.isfinite(values) | too_big
    if not bad.any():
        return
    at = int(np.argmax(bad))
    when = f"{np.datetime64(int(ts[at]), 'ms')}Z"
    if not np.isfinite(values[at]):
        reason = "the sum is not a finite number (beyond ±1.8e308, the float64 range)"
    else:
        total = int(values[at]) if exact is None else int(exact[int(is_int[:at].sum())])
        reason = (
            f"the integer sum {total} is beyond ±{MAX_EXACT_INT} (2**53), the largest exact integer"
        )
    raise ValueOutOfRange(f"Increment out of range at {when}: {reason}; nothing was written")


def exact_sums(values: Float64Array, starts: npt.NDArray[np.intp]) -> npt.NDArray[Any]:
    """The exact sums of integer values (each at most 2**53) from each start to the next:
    int64 when no partial sum can overflow it, else Python ints."""
    if float(np.abs(values).sum()) < 2.0**62:
        return np.add.reduceat(values.astype(np.int64), starts)
    bounds = [*starts.tolist(), values.shape[0]]
    chunks = itertools.pairwise(bounds)
    return np.array([sum(int(v) for v in values[lo:hi].tolist()) for lo, hi in chunks], object)


def merge_points(old: Points, new: Points, *, increment: bool) -> Points:
    """Merge ``new`` into ``old`` (both sorted and unique): overwrite or add per timestamp.

    Raises:
        ValueOutOfRange: an increment whose result is not finite, or an integer beyond
            ``MAX_EXACT_INT`` (``check_increment``); nothing is merged then.
    """
    if increment:
        check_increment(new.ts, new.values, new.is_int)
    if len(old) == 0:
        return new
    if len(new) == 0:
        return old
    if new.ts[0] > old.ts[-1] or new.ts[-1] < old.ts[0]:  # no overlap: an append, a prepend
        parts = (old, new)
        if new.ts[0] < old.ts[0]:
            parts = parts[::-1]
        return Points(
            np.concatenate([p.ts for p in parts]),
            np.concatenate([p.values for p in parts]),
            np.concatenate([p.is_int for p in parts]),
        )
    # Where each new point goes in ``old``, and whether a point is already there.
    pos = np.searchsorted(old.ts, new.ts)
    hit = pos < old.ts.shape[0]
    hit[hit] = old.ts[pos[hit]] == new.ts[hit]
    values = old.values.copy()
    is_int = old.is_int.copy()
    at = pos[hit]
    if increment:
        added = new.values[hit]
        both = is_int[at] & new.is_int[hit]
        exact = values[at][both].astype(np.int64) + added[both].astype(np.int64)
        with np.errstate(over="ignore", invalid="ignore"):
            values[at] += added
        is_int[at] = both
        check_increment(old.ts[at], values[at], both, exact)
    else:
        values[at] = new.values[hit]
        is_int[at] = new.is_int[hit]
    miss = ~hit
    if not miss.any():
        return Points(old.ts, values, is_int)
    into = pos[miss]
    return Points(
        np.insert(old.ts, into, new.ts[miss]),
        np.insert(values, into, new.values[miss]),
        np.insert(is_int, into, new.is_int[miss]),
    )
