"""Series metadata on PostgreSQL: lookups, filters, creation (one or many), and the resolution
of a write's series references in one statement.

Every statement here says ``db = <value>`` (the metadata of a database lives on one Citus
shard); see the package docstring for the tables and the locks.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import orjson
import psycopg
from psycopg import errors as pg_errors
from psycopg.types.json import Json

from tempodb.storage.base import (
    KeyConflict,
    NewSeries,
    SeriesField,
    SeriesFilter,
    SeriesRecord,
    SeriesRef,
    StorageError,
    TooManyNewSeries,
    new_series_id,
    new_series_ids,
    normalize_tags,
    series_record,
)
from tempodb.storage.postgres import arrays
from tempodb.storage.postgres import citus as _citus

_Conn = psycopg.Connection[Any]

#: The attributes come as their JSON text, which ``record`` reads with orjson (psycopg's
#: loader of ``json`` is the standard library's, several times slower for a long listing).
SERIES_COLUMNS: Final = "s.sid, s.id, s.key, s.name, s.tags, s.attributes::text"
_LOOKUP: Final[Mapping[SeriesField, str]] = {
    "id": f"SELECT {SERIES_COLUMNS} FROM series s WHERE s.db = %s AND s.id = %s",
    "key": f"SELECT {SERIES_COLUMNS} FROM series s WHERE s.db = %s AND s.key = %s",
}
_BY_REF: Final = (
    "SELECT sid, id, key FROM series WHERE db = %s "
    f"AND (id = ANY({arrays.TEXTS.format('%s')}) OR key = ANY({arrays.TEXTS.format('%s')})) "
    "ORDER BY sid"
)
_CREATE_BARE: Final = (
    "INSERT INTO series (db, id, key) SELECT %s, u.i, u.k "
    "FROM ROWS FROM (json_array_elements_text(%s::json), json_array_elements_text(%s::json)) "
    "WITH ORDINALITY AS u(i, k, o) ORDER BY u.o ON CONFLICT DO NOTHING RETURNING sid, id, key"
)
#: Series from one JSON array of ``{"i": id, "k": key, "n": name, "t": tags, "a": attributes}``
#: with their tags and attributes, in one statement (``_create_json`` leaves out the parts for
#: tags or attributes when no series has any): the keys of those created.
_CREATE_JSON: Final = """
WITH new AS (
    INSERT INTO series (db, id, key, name, tags, attributes)
    SELECT %(db)s, r.i, r.k, r.n, r.t, r.a
    FROM ROWS FROM (json_to_recordset(%(rows)s::json) AS (i text, k text, n text, t text[], a json))
        WITH ORDINALITY AS r(i, k, n, t, a, o)
    ORDER BY r.o
    ON CONFLICT DO NOTHING RETURNING sid, key, tags, attributes
){tagged}{attributed}
SELECT key FROM new"""
_CREATE_TAGS: Final = """, tagged AS (
    INSERT INTO series_tag (db, sid, tag) SELECT %(db)s, new.sid, t.tag
    FROM new, unnest(new.tags) AS t(tag)
)"""
_CREATE_ATTRIBUTES: Final = """, attributed AS (
    INSERT INTO series_attr (db, sid, name, value) SELECT %(db)s, new.sid, a.key, a.value
    FROM new, json_each_text(new.attributes) AS a
)"""
_CREATE_FULL: Final = (
    "INSERT INTO series (db, id, key, name, tags, attributes) "
    "SELECT %s, u.i, u.k, u.n, ARRAY(SELECT json_array_elements_text(u.t::json)), u.a::json "
    "FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[]) "
    "WITH ORDINALITY AS u(i, k, n, t, a, o) ORDER BY u.o "
    "ON CONFLICT DO NOTHING RETURNING sid, key"
)

#: How a write locks the series it resolves: KEY SHARE lets writers of one series run side by
#: side while keeping folds, deletes and block writes (FOR UPDATE) out; UPDATE is that lock.
#: None: no lock on the series rows (on Citus, where the lock is beside the points).
LockMode = Literal["KEY SHARE", "UPDATE"] | None


def record(row: Sequence[Any]) -> SeriesRecord:
    """The record of a row of ``SERIES_COLUMNS``."""
    return series_record(row[1], row[2], row[3], tuple(row[4]), orjson.loads(row[5]))


def storable(*texts: str) -> bool:
    """PostgreSQL text holds no NUL character: a value with one matches nothing stored."""
    return not any("\0" in text for text in texts)


def check_storable(texts: Iterable[str]) -> None:
    for text in texts:
        if "\0" in text:
            raise ValueError(f"PostgreSQL cannot store a NUL character, as in {text!r}")


def lookup(conn: _Conn, db: int, field: SeriesField, value: str, *, lock: bool = False) -> Any:
    """The series row (``SERIES_COLUMNS``) with this id or key, or None."""
    if field not in _LOOKUP:
        raise ValueError(f"a series is looked up by 'id' or 'key', not {field!r}")
    if not storable(value):
        return None
    return conn.execute(_LOOKUP[field] + (" FOR UPDATE" if lock else ""), (db, value)).fetchone()


def sid_of(conn: _Conn, db: int, series_id: str, *, lock: bool = False) -> int | None:
    if not storable(series_id):
        return None
    row = conn.execute(
        "SELECT sid FROM series WHERE db = %s AND id = %s" + (" FOR UPDATE" if lock else ""),
        (db, series_id),
    ).fetchone()
    return None if row is None else int(row[0])


#: The first tag of a filter: its series' sids as an array (run once), so that the series are
#: fetched by their primary key.  As ``IN (subquery)`` (``_TAG_IN``, the other tags), the
#: planner prefers a hash join over every series of the database once its statistics say
#: that the database is small (a sequential scan of 100,000 series to return 1,000: 19 ms
#: against 7 ms).
_TAG_ARRAY: Final = "s.sid = ANY(ARRAY(SELECT sid FROM series_tag WHERE db = %s AND tag = %s))"
_TAG_IN: Final = "s.sid IN (SELECT sid FROM series_tag WHERE db = %s AND tag = %s)"


def filter_sql(db: int, flt: SeriesFilter) -> tuple[str, list[object]]:
    """A WHERE clause over ``series s`` for the filter (spec §5.1) and its parameters."""
    where = ["s.db = %s"]
    params: list[object] = [db]
    if flt.ids or flt.keys:
        where.append("(s.id = ANY(%s::text[]) OR s.key = ANY(%s::text[]))")
        params += [[i for i in flt.ids if storable(i)], [k for k in flt.keys if storable(k)]]
    if not storable(*flt.tags, *flt.attributes):
        where.append("false")
    for number, tag in enumerate(normalize_tags(t for t in flt.tags if storable(t))):
        where.append(_TAG_ARRAY if number == 0 else _TAG_IN)
        params += [db, tag]
    for name, values in flt.attributes.items():
        if storable(name):
            where.append(
                "s.sid IN (SELECT sid FROM series_attr WHERE db = %s AND name = %s "
                "AND value = ANY(%s::text[]))"
            )
            params += [db, name, [v for v in values if storable(v)]]
    return " AND ".join(where), params


def set_tags(conn: _Conn, db: int, sid: int, tags: Sequence[str], *, fresh: bool) -> None:
    if not fresh:
        conn.execute("DELETE FROM series_tag WHERE db = %s AND sid = %s", (db, sid))
    if tags:
        conn.execute(
            "INSERT INTO series_tag (db, sid, tag) SELECT %s, %s, unnest(%s::text[])",
            (db, sid, list(tags)),
        )


def set_attributes(
    conn: _Conn, db: int, sid: int, attributes: Mapping[str, str], *, fresh: bool
) -> None:
    if not fresh:
        conn.execute("DELETE FROM series_attr WHERE db = %s AND sid = %s", (db, sid))
    if attributes:
        conn.execute(
            "INSERT INTO series_attr (db, sid, name, value) "
            "SELECT %s, %s, unnest(%s::text[]), unnest(%s::text[])",
            (db, sid, list(attributes), list(attributes.values())),
        )


def insert_series(
    conn: _Conn,
    db: int,
    series_id: str,
    key: str,
    name: str = "",
    tags: Sequence[str] = (),
    attributes: Mapping[str, str] | None = None,
    *,
    citus: bool = False,
) -> SeriesRecord | None:
    """Insert a series; None when its id or key is taken (by a committed transaction, or by one
    that commits while this waits).  ``citus``: with its ``series_lock`` row."""
    tags = normalize_tags(tags)
    attrs = dict(attributes or {})
    check_storable([series_id, key, name, *tags, *attrs, *attrs.values()])
    if not citus:
        wanted = SeriesRecord(series_id, key, name, tags, attrs)
        return wanted if _create_json(conn, db, [wanted]) else None
    try:
        row = conn.execute(
            "INSERT INTO series (db, id, key, name, tags, attributes) "
            "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING sid",
            (db, series_id, key, name, list(tags), Json(attrs)),
        ).fetchone()
    except pg_errors.ForeignKeyViolation:
        raise _no_database(db) from None
    if row is None:
        return None
    sid = int(row[0])
    _citus.add_locks(conn, db, [sid])
    set_tags(conn, db, sid, tags, fresh=True)
    set_attributes(conn, db, sid, attrs, fresh=True)
    return SeriesRecord(series_id, key, name, tags, attrs)


def _create_json(conn: _Conn, db: int, wanted: Sequence[SeriesRecord]) -> set[str]:
    """Insert the series (distinct keys) with their tags and attributes in one statement
    (``_CREATE_JSON``, not on Citus); the keys of those inserted (an existing id or key is
    left out)."""
    rows = orjson.dumps(
        [{"i": w.id, "k": w.key, "n": w.name, "t": w.tags, "a": w.attributes} for w in wanted],
        default=dict,
    ).decode()
    statement = _CREATE_JSON.format(
        tagged=_CREATE_TAGS if any(w.tags for w in wanted) else "",
        attributed=_CREATE_ATTRIBUTES if any(w.attributes for w in wanted) else "",
    )
    try:
        found = conn.execute(statement, {"db": db, "rows": rows}).fetchall()
    except pg_errors.ForeignKeyViolation:
        raise _no_database(db) from None
    return {row[0] for row in found}


def insert_many(
    conn: _Conn, db: int, items: Sequence[NewSeries], *, citus: bool = False
) -> list[SeriesRecord | KeyConflict]:
    """Create the items, with their tags and attributes, in one statement (``_CREATE_JSON``;
    on Citus in three, and their ``series_lock`` rows in a fourth); per item its record, or
    the KeyConflict of a key that exists or that an earlier item has."""
    wanted: list[SeriesRecord | None] = []
    seen: set[str] = set()
    texts: list[str] = []
    for item, series_id in zip(items, new_series_ids(len(items)), strict=True):
        key = series_id if item.key is None else item.key
        tags = normalize_tags(item.tags) if len(item.tags) > 1 else tuple(item.tags)
        attrs = dict(item.attributes)
        texts += (key, item.name, *tags, *attrs, *attrs.values())
        wanted.append(
            None if key in seen else series_record(series_id, key, item.name, tags, attrs)
        )
        seen.add(key)
    if "\0" in "".join(texts):
        check_storable(texts)
    fresh = [w for w in wanted if w is not None]
    keys = _create_split(conn, db, fresh) if citus else _create_json(conn, db, fresh)
    out: list[SeriesRecord | KeyConflict] = []
    for item, want in zip(items, wanted, strict=True):
        if want is not None and want.key in keys:
            out.append(want)
        else:
            out.append(KeyConflict(want.key if want is not None else str(item.key)))
    return out


def _create_split(conn: _Conn, db: int, fresh: Sequence[SeriesRecord]) -> set[str]:
    """``_create_json`` on Citus, which runs no data-modifying CTE over distributed tables:
    the series, their locks, their tags and their attributes in a statement each."""
    try:
        rows = conn.execute(
            _CREATE_FULL,
            (
                db,
                [w.id for w in fresh],
                [w.key for w in fresh],
                [w.name for w in fresh],
                [json.dumps(list(w.tags)) for w in fresh],
                [json.dumps(dict(w.attributes)) for w in fresh],
            ),
        ).fetchall()
    except pg_errors.ForeignKeyViolation:
        raise _no_database(db) from None
    sids = {str(key): int(sid) for sid, key in rows}
    created = [w for w in fresh if w.key in sids]
    _citus.add_locks(conn, db, sorted(sids.values()))
    tagged = [(sids[w.key], tag) for w in created for tag in w.tags]
    if tagged:
        conn.execute(
            "INSERT INTO series_tag (db, sid, tag) "
            "SELECT %s, unnest(%s::bigint[]), unnest(%s::text[])",
            (db, [s for s, _ in tagged], [t for _, t in tagged]),
        )
    attributed = [(sids[w.key], n, v) for w in created for n, v in w.attributes.items()]
    if attributed:
        conn.execute(
            "INSERT INTO series_attr (db, sid, name, value) "
            "SELECT %s, unnest(%s::bigint[]), unnest(%s::text[]), unnest(%s::text[])",
            (
                db,
                [a[0] for a in attributed],
                [a[1] for a in attributed],
                [a[2] for a in attributed],
            ),
        )
    return set(sids)


@dataclass(frozen=True)
class Resolved:
    """A write's series: per ref, its (sid, id) or None when it conflicts; the sids this
    transaction created."""

    series: list[tuple[int, str] | None]
    created: frozenset[int]


class Retry(Exception):
    """The transaction saw a concurrent change it cannot work around: run it again."""


def resolve(
    conn: _Conn,
    db: int,
    refs: Sequence[SeriesRef],
    lock: LockMode,
    *,
    skip_conflicts: bool,
    max_new: int | None = None,
    citus: bool = False,
) -> Resolved:
    """Find, lock and create the series of ``refs`` (the refs a write uses).

    One statement finds and locks the existing ones (in sid order); one inserts the missing
    ones ordered by key (so that requests creating series do not wait on each other's new
    rows in a cycle) with ``ON CONFLICT DO NOTHING``; one more finds those that a concurrent
    request created first.  An unknown id that another series has as its key conflicts:
    KeyConflict, or None for that ref when ``skip_conflicts``.  More than ``max_new`` series
    to create: TooManyNewSeries, before any is.  ``citus``: the series created get their
    ``series_lock`` rows (the caller locks those, ``lock`` is then None).
    """
    found: dict[tuple[str, str], tuple[int, str]] = {}

    def take(rows: Iterable[Sequence[Any]]) -> None:
        for sid, series_id, key in rows:
            found["id", series_id] = found["key", key] = (int(sid), series_id)

    unusable = {(r.field, r.value) for r in refs if not storable(r.value)}
    if unusable:
        check_storable(v for _, v in unusable)
    ids = sorted({r.value for r in refs if r.field == "id"})
    keys = sorted({r.value for r in refs if r.field == "key"})
    by_ref = _BY_REF + (f" FOR {lock}" if lock else "")
    take(conn.execute(by_ref, (db, arrays.texts(ids), arrays.texts(keys))).fetchall())
    missing = [r for r in dict.fromkeys(refs) if (r.field, r.value) not in found]
    created: set[int] = set()
    if missing:
        plan: dict[str, str] = {}  # key -> id, one new series per key
        for ref in sorted(missing, key=lambda r: r.value):
            if ref.value in plan:
                continue
            plan[ref.value] = ref.value if ref.field == "id" else new_series_id()
        if max_new is not None and len(plan) > max_new:
            raise TooManyNewSeries(len(plan), max_new)
        try:
            rows = conn.execute(
                _CREATE_BARE, (db, arrays.texts(plan.values()), arrays.texts(plan))
            ).fetchall()
        except pg_errors.ForeignKeyViolation:
            raise _no_database(db) from None
        take(rows)
        created = {int(row[0]) for row in rows}
        if citus:
            _citus.add_locks(conn, db, sorted(created))
        rest = [r for r in missing if (r.field, r.value) not in found]
        if rest:
            rest_ids = sorted({r.value for r in rest if r.field == "id"})
            rest_keys = sorted({r.value for r in rest})
            take(
                conn.execute(
                    by_ref, (db, arrays.texts(rest_ids), arrays.texts(rest_keys))
                ).fetchall()
            )
    series: list[tuple[int, str] | None] = []
    for ref in refs:
        hit = found.get((ref.field, ref.value))
        if hit is None:
            if ref.field == "id" and ("key", ref.value) in found:
                if not skip_conflicts:
                    raise KeyConflict(ref.value)
            else:
                raise Retry(f"series {ref.value!r} was deleted while being created")
        series.append(hit)
    return Resolved(series, frozenset(created))


def _no_database(db: int) -> StorageError:
    return StorageError(f"database {db} does not exist (deleted meanwhile?)")
