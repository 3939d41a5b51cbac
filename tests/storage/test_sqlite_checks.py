"""The SQLite store passes its own integrity check on the SQLite this platform has (issue 25):
a store with tags and attributes, its backup, and a version-3 file after its upgrade."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np

from tempodb.storage.base import SeriesFilter, SeriesRef, WriteBatch, hash_secret
from tempodb.storage.sqlite import FILE_NAME, MIGRATIONS, SCHEMA_VERSION, SQLiteStore

FAR = 2**63 - 1


def checks(path: Path) -> tuple[str, str]:
    """``PRAGMA quick_check`` and ``PRAGMA integrity_check`` of a file, first lines."""
    conn = sqlite3.connect(path)
    try:
        quick = conn.execute("PRAGMA quick_check").fetchone()[0]
        full = conn.execute("PRAGMA integrity_check").fetchone()[0]
        return quick, full
    finally:
        conn.close()


def test_a_store_with_tags_and_attributes_and_its_backup_pass_their_checks(
    tmp_path: Path,
) -> None:
    with SQLiteStore(tmp_path / "data") as store:
        credentials = store.create_database("t")
        database = store.authenticate(credentials.key, credentials.secret)
        assert database is not None
        store.create_series(database.id, "y", tags=["t", "u"], attributes={"a": "1", "b": "2"})
        store.create_series(database.id, "z", tags=["t"])
        store.write_points(
            database.id,
            WriteBatch(
                [SeriesRef("key", "y")],
                np.zeros(2, np.int32),
                np.array([0, 1000], np.int64),
                np.array([1.0, 2.5]),
                np.array([True, False]),
            ),
        )
        assert checks(store.path) == ("ok", "ok")
        store.backup(tmp_path / "copy" / FILE_NAME)
    assert checks(tmp_path / "copy" / FILE_NAME) == ("ok", "ok")
    with SQLiteStore(tmp_path / "copy") as copy:
        database = copy.authenticate(credentials.key, credentials.secret)
        assert database is not None
        tagged = copy.find_series(database.id, SeriesFilter(tags=("t",)))
        assert [s.key for s in tagged] == ["y", "z"]
        [y] = copy.find_series(database.id, SeriesFilter(attributes={"b": ("2",)}))
        assert (y.key, y.tags, dict(y.attributes)) == ("y", ("t", "u"), {"a": "1", "b": "2"})
        points = copy.read_points(database.id, y.id, -FAR, FAR)
        assert points.values.tolist() == [1.0, 2.5]
        assert points.is_int.tolist() == [True, False]


def test_a_version_3_file_with_tags_upgrades_and_passes_its_checks(tmp_path: Path) -> None:
    """A file as tempodb wrote it at schema 3 (built from the migrations of that time), with
    tags and attributes, keeps them through the upgrade to version 4, which passes the
    checks (on SQLite 3.40 and 3.41 the version-3 layout did not) and can be backed up."""
    conn = sqlite3.connect(tmp_path / FILE_NAME, isolation_level=None)
    for statement in (*MIGRATIONS[0], *MIGRATIONS[1], *MIGRATIONS[2]):
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 3")
    conn.execute("INSERT INTO databases (key, secret_hash) VALUES ('k', ?)", (hash_secret("s"),))
    for sid, key, tags, attributes in (
        (1, "a", ["x", "y"], {"room": "1", "floor": "2"}),
        (2, "b", ["y"], {"room": "2"}),
        (3, "c", [], {}),
    ):
        conn.execute(
            "INSERT INTO series (sid, db, id, key, tags, attributes) VALUES (?, 1, ?, ?, ?, ?)",
            (sid, f"id-{key}", key, json.dumps(tags), json.dumps(attributes)),
        )
        conn.executemany(
            "INSERT INTO series_tag (sid, db, tag) VALUES (?, 1, ?)", [(sid, t) for t in tags]
        )
        conn.executemany(
            "INSERT INTO series_attr (sid, db, name, value) VALUES (?, 1, ?, ?)",
            [(sid, name, value) for name, value in attributes.items()],
        )
    conn.close()
    with SQLiteStore(tmp_path) as store:
        database = store.authenticate("k", "s")
        assert database is not None
        by_tag = store.find_series(database.id, SeriesFilter(tags=("y",)))
        assert [s.key for s in by_tag] == ["a", "b"]
        by_both = store.find_series(
            database.id, SeriesFilter(tags=("x",), attributes={"room": ("1", "2")})
        )
        assert [(s.key, dict(s.attributes)) for s in by_both] == [
            ("a", {"room": "1", "floor": "2"})
        ]
        store.update_series(database.id, "id-b", tags=["z"], attributes={"room": "3"})
        assert [s.key for s in store.find_series(database.id, SeriesFilter(tags=("z",)))] == ["b"]
        store.backup(tmp_path / "copy" / FILE_NAME)
    assert checks(tmp_path / FILE_NAME) == ("ok", "ok")
    assert checks(tmp_path / "copy" / FILE_NAME) == ("ok", "ok")
    conn = sqlite3.connect(tmp_path / FILE_NAME)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 5
        rows = conn.execute("SELECT sid, tag, db FROM series_tag ORDER BY sid, tag").fetchall()
        assert rows == [(1, "x", 1), (1, "y", 1), (2, "z", 1)]
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        assert {"series_tag_by_tag", "series_attr_by_value"} <= indexes
    finally:
        conn.close()
