"""Series metadata in SQL: lookups, filters, creation (one at a time or many in one statement)
and the resolution of the series a write names.

Every function takes the connection to use: the writer's inside its transaction, or a reader's
inside a snapshot.  Tags and attributes live twice: as JSON in ``series`` (what a series reads
back as) and as rows of ``series_tag`` / ``series_attr`` (what filters search), rewritten
together.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, NamedTuple

import orjson

from tempodb.storage.base import (
    KeyConflict,
    NewSeries,
    SeriesField,
    SeriesFilter,
    SeriesRecord,
    SeriesRef,
    TooManyNewSeries,
    new_series_ids,
    normalize_tags,
    series_record,
)
from tempodb.storage.sqlite.writer import WriterCache

COLUMNS: Final = "sid, id, key, name, tags, attributes"
_LOOKUP: Final[Mapping[SeriesField, str]] = {
    "id": f"SELECT {COLUMNS} FROM series WHERE db = ? AND id = ?",
    "key": f"SELECT {COLUMNS} FROM series WHERE db = ? AND key = ?",
}
#: The series of a database among a JSON array of ids or keys: (sid, id, key).
_FIND_MANY: Final[Mapping[SeriesField, str]] = {
    "id": "SELECT sid, id, key FROM series WHERE db = ? AND id IN (SELECT value FROM json_each(?))",
    "key": "SELECT sid, id, key FROM series WHERE db = ? AND key IN "
    "(SELECT value FROM json_each(?))",
}


def record(row: Sequence[Any]) -> SeriesRecord:
    """The record of a row of ``COLUMNS``."""
    return series_record(row[1], row[2], row[3], tuple(orjson.loads(row[4])), orjson.loads(row[5]))


def lookup(conn: sqlite3.Connection, db: int, field: SeriesField, value: str) -> Any:
    """The row (``COLUMNS``) of the series with this id or key, or None."""
    if field not in _LOOKUP:
        raise ValueError(f"a series is looked up by 'id' or 'key', not {field!r}")
    return conn.execute(_LOOKUP[field], (db, value)).fetchone()


def sid_of(conn: sqlite3.Connection, db: int, series_id: str) -> int | None:
    row = conn.execute("SELECT sid FROM series WHERE db = ? AND id = ?", (db, series_id)).fetchone()
    return None if row is None else int(row[0])


def sids_by_id(conn: sqlite3.Connection, db: int, series_ids: Sequence[str]) -> dict[str, int]:
    """The sids of those of these series ids that exist in the database."""
    rows = conn.execute(
        "SELECT id, sid FROM series WHERE db = ? AND id IN (SELECT value FROM json_each(?))",
        (db, json.dumps(list(series_ids))),
    )
    return {str(series_id): int(sid) for series_id, sid in rows}


def filter_sql(db: int, flt: SeriesFilter) -> tuple[str, list[object]]:
    """A WHERE clause over ``series s`` for the filter (spec §5.1) and its parameters.

    Every condition names the database itself, so that SQLite can drive the query from the
    most selective one (an id, a key, a tag) instead of scanning the database's series.
    """
    where: list[str] = []
    params: list[object] = []
    if flt.ids or flt.keys:
        where.append(
            "s.sid IN (SELECT sid FROM series WHERE db = ? AND id IN "
            "(SELECT value FROM json_each(?)) UNION ALL SELECT sid FROM series WHERE db = ? "
            "AND key IN (SELECT value FROM json_each(?)))"
        )
        params += [db, json.dumps(list(flt.ids)), db, json.dumps(list(flt.keys))]
    for tag in normalize_tags(flt.tags):
        where.append("s.sid IN (SELECT sid FROM series_tag WHERE db = ? AND tag = ?)")
        params += [db, tag]
    for name, values in flt.attributes.items():
        where.append(
            "s.sid IN (SELECT sid FROM series_attr WHERE db = ? AND name = ? AND value IN "
            "(SELECT value FROM json_each(?)))"
        )
        params += [db, name, json.dumps(list(values))]
    if not where:
        where.append("s.db = ?")
        params.append(db)
    return " AND ".join(where), params


def set_tags(conn: sqlite3.Connection, sid: int, db: int, tags: Sequence[str]) -> None:
    conn.execute("DELETE FROM series_tag WHERE sid = ?", (sid,))
    conn.executemany(
        "INSERT INTO series_tag (sid, db, tag) VALUES (?, ?, ?)", [(sid, db, t) for t in tags]
    )


def set_attributes(
    conn: sqlite3.Connection, sid: int, db: int, attributes: Mapping[str, str]
) -> None:
    conn.execute("DELETE FROM series_attr WHERE sid = ?", (sid,))
    conn.executemany(
        "INSERT INTO series_attr (sid, db, name, value) VALUES (?, ?, ?, ?)",
        [(sid, db, name, value) for name, value in attributes.items()],
    )


#: Series rows given as one JSON array of ``[id, key, name, tags, attributes]`` (tags and
#: attributes as their JSON texts), inserted in array order by one statement.
_INSERT_JSON: Final = (
    "INSERT OR IGNORE INTO series (db, id, key, name, tags, attributes) "
    "SELECT ?, value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4 FROM json_each(?)"
)
_INSERT_ROWS: Final = (
    "INSERT OR IGNORE INTO series (db, id, key, name, tags, attributes) VALUES (?, ?, ?, ?, ?, ?)"
)
#: The tags and attributes of the series above a sid (those just inserted), from their JSON.
_INDEX_NEW: Final = (
    "INSERT INTO series_tag (sid, db, tag) SELECT s.sid, s.db, t.value "
    "FROM series s, json_each(s.tags) t WHERE s.sid > ? AND s.tags <> '[]'",
    "INSERT INTO series_attr (sid, db, name, value) SELECT s.sid, s.db, a.key, a.value "
    "FROM series s, json_each(s.attributes) a WHERE s.sid > ? AND s.attributes <> '{}'",
)


def _insert_rows(conn: sqlite3.Connection, db: int, rows: list[list[str]]) -> tuple[int, int]:
    """Insert series rows (``[id, key, name, tags JSON, attributes JSON]``, distinct keys)
    in one statement, an existing id or key left out, and their tags and attributes in two
    more; (the sid above which the new rows are, how many were inserted).

    The new sids are those above the table's AUTOINCREMENT counter before the insert: the
    writer holds the write lock, so no one else can take any."""
    counter = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'series'").fetchone()
    above = 0 if counter is None else int(counter[0])
    before = conn.total_changes
    blob = orjson.dumps(rows)
    if b"\\u0000" in blob:  # a NUL character: every text bound as a value, which keeps it
        _insert_bound(conn, db, rows, above)
        return above, conn.total_changes - before
    conn.execute(_INSERT_JSON, (db, blob.decode()))
    inserted = conn.total_changes - before
    if inserted:
        tags, attributes = _INDEX_NEW
        if any(row[3] != "[]" for row in rows):
            conn.execute(tags, (above,))
        if any(row[4] != "{}" for row in rows):
            conn.execute(attributes, (above,))
    return above, inserted


def _insert_bound(conn: sqlite3.Connection, db: int, rows: list[list[str]], above: int) -> None:
    """``_insert_rows`` with every text a bound value (one row at a time)."""
    conn.executemany(_INSERT_ROWS, [(db, *row) for row in rows])
    sids = dict(conn.execute("SELECT id, sid FROM series WHERE sid > ?", (above,)).fetchall())
    made = [(sids[row[0]], row) for row in rows if row[0] in sids]
    conn.executemany(
        "INSERT INTO series_tag (sid, db, tag) VALUES (?, ?, ?)",
        [(sid, db, tag) for sid, row in made for tag in orjson.loads(row[3])],
    )
    conn.executemany(
        "INSERT INTO series_attr (sid, db, name, value) VALUES (?, ?, ?, ?)",
        [(sid, db, *pair) for sid, row in made for pair in orjson.loads(row[4]).items()],
    )


def insert_many(
    conn: sqlite3.Connection, db: int, items: Sequence[tuple[str, str, NewSeries | None]]
) -> dict[str, int]:
    """Insert series given as (id, key, metadata or None), distinct keys (``_insert_rows``);
    the sid by id of those inserted: an item whose key or id a series has already is left
    out."""
    if not items:
        return {}
    rows = [
        [series_id, key, "", "[]", "{}"]
        if meta is None
        else [
            series_id,
            key,
            meta.name,
            orjson.dumps(meta.tags).decode(),
            orjson.dumps(meta.attributes).decode(),
        ]
        for series_id, key, meta in items
    ]
    above, inserted = _insert_rows(conn, db, rows)
    if not inserted:
        return {}
    return {
        series_id: sid
        for sid, series_id in conn.execute("SELECT sid, id FROM series WHERE sid > ?", (above,))
    }


def existing_keys(conn: sqlite3.Connection, db: int, keys: Iterable[str]) -> set[str]:
    """Which of ``keys`` name a series of the database."""
    wanted = list(keys)
    if not wanted:
        return set()
    rows = conn.execute(_FIND_MANY["key"], (db, json.dumps(wanted)))
    return {row[2] for row in rows}


def create_many(
    conn: sqlite3.Connection, db: int, items: Sequence[NewSeries]
) -> list[SeriesRecord | KeyConflict]:
    """Create series (``Store.create_series_many``): per item its record or KeyConflict."""
    planned: dict[str, SeriesRecord] = {}  # by key: the first item wins
    rows: list[list[str]] = []
    outcome: list[SeriesRecord | KeyConflict] = []
    dumps = orjson.dumps
    for item, series_id in zip(items, new_series_ids(len(items)), strict=True):
        key = series_id if item.key is None else item.key
        if key in planned:
            outcome.append(KeyConflict(key))
            continue
        tags = normalize_tags(item.tags) if len(item.tags) > 1 else tuple(item.tags)
        attributes = dict(item.attributes)
        record = series_record(series_id, key, item.name, tags, attributes)
        planned[key] = record
        outcome.append(record)
        rows.append([series_id, key, item.name, dumps(tags).decode(), dumps(attributes).decode()])
    above, inserted = _insert_rows(conn, db, rows)
    if inserted == len(rows):
        return outcome
    # Some keys are taken by series stored before: those items conflict.
    created = {row[0] for row in conn.execute("SELECT id FROM series WHERE sid > ?", (above,))}
    return [
        KeyConflict(result.key)
        if isinstance(result, SeriesRecord) and result.id not in created
        else result
        for result in outcome
    ]


def insert(
    conn: sqlite3.Connection,
    db: int,
    series_id: str,
    key: str,
    name: str = "",
    tags: Sequence[str] = (),
    attributes: Mapping[str, str] | None = None,
) -> tuple[int, SeriesRecord]:
    """Create one series; KeyConflict when the key is taken."""
    if conn.execute("SELECT 1 FROM series WHERE db = ? AND key = ?", (db, key)).fetchone():
        raise KeyConflict(key)
    meta = NewSeries(key, name, normalize_tags(tags), dict(attributes or {}))
    sid = insert_many(conn, db, [(series_id, key, meta)])[series_id]
    return sid, SeriesRecord(series_id, key, meta.name, meta.tags, meta.attributes)


def delete_sids(conn: sqlite3.Connection, sids: Sequence[int], cache: WriterCache) -> None:
    if not sids:
        return
    cache.clear()
    ids = json.dumps(list(sids))
    for table in ("block", "head", "tier", "series_tag", "series_attr", "series"):
        conn.execute(f"DELETE FROM {table} WHERE sid IN (SELECT value FROM json_each(?))", (ids,))


class Resolved(NamedTuple):
    """The series of a write's refs (``resolve``)."""

    #: The sid of each used ref, by its index in the refs.
    sids: dict[int, int]
    #: The refs left out (``skip_conflicts``).
    skipped: set[int]
    #: The sids of the series created now (they have no points yet).
    fresh: set[int]


def resolve(
    conn: sqlite3.Connection,
    db: int,
    refs: Sequence[SeriesRef],
    used: Iterable[int],
    cache: WriterCache,
    *,
    skip_conflicts: bool,
    max_new: int | None = None,
) -> Resolved:
    """The sid of each used ref (by its index in ``refs``), creating the missing series with
    empty metadata, in a few statements whatever the number of refs: the cache first, then
    one lookup per field for the rest, then one insert for those still missing.

    A missing key becomes a series with a new id; a missing id a series whose id and key
    are that value, unless the key is taken (by a series, or by a ref earlier in ``refs``):
    KeyConflict, or with ``skip_conflicts`` the ref is left out and returned as skipped.
    More than ``max_new`` series to create: TooManyNewSeries, before anything is written.
    """
    sids: dict[int, int] = {}
    missing: dict[tuple[SeriesField, str], list[int]] = {}
    series_cache = cache.series
    for index in used:
        ref = refs[index]
        found = series_cache.get((db, ref.field, ref.value))
        if found is not None:
            sids[index] = found[0]
        else:
            missing.setdefault((ref.field, ref.value), []).append(index)
    if not missing:
        return Resolved(sids, set(), set())
    for field in ("key", "id"):
        values = [value for f, value in missing if f == field]
        if not values:
            continue
        for sid, series_id, key in conn.execute(_FIND_MANY[field], (db, json.dumps(values))):
            value = key if field == "key" else series_id
            for index in missing.pop((field, value)):
                sids[index] = sid
            series_cache[db, field, value] = (sid, series_id)
    if not missing:
        return Resolved(sids, set(), set())
    # What is left is created, in the order of each one's first ref.
    taken = existing_keys(conn, db, (value for field, value in missing if field == "id"))
    created: dict[str, tuple[str, SeriesField]] = {}  # key -> (id, field of the creating ref)
    skipped: set[int] = set()
    ids = new_series_ids(len(missing))
    for (field, value), indices in sorted(missing.items(), key=lambda item: item[1][0]):
        if field == "key":
            if value not in created:
                created[value] = (next(ids), field)
            continue
        if value in taken or value in created:
            if not skip_conflicts:
                raise KeyConflict(value)
            skipped.update(indices)
            continue
        created[value] = (value, field)
    if max_new is not None and len(created) > max_new:
        raise TooManyNewSeries(len(created), max_new)
    cache.series_changed = True
    new_sids = insert_many(conn, db, [(sid_, key, None) for key, (sid_, _) in created.items()])
    for (field, value), indices in missing.items():
        if indices[0] in skipped:
            continue
        series_id = created[value][0]
        sid = new_sids[series_id]
        for index in indices:
            sids[index] = sid
        series_cache[db, field, value] = (sid, series_id)
    return Resolved(sids, skipped, set(new_sids.values()))
