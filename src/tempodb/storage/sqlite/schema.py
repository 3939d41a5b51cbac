"""The SQLite file: its tables, its schema version and the migrations between versions.

``<data_dir>/tempodb.sqlite3``, plus SQLite's ``-wal`` and ``-shm`` files while it is open.
Journal mode WAL with ``synchronous=FULL``.  ``PRAGMA user_version`` is the schema version;
opening a file runs the migrations in ``MIGRATIONS`` that it lacks and refuses (SchemaTooNew)
a file whose version is newer than this code.

Tables (schema version 7; ``retention`` and ``tier`` (version 7) are described in ``retention``)
    ``databases(id, key, secret_hash, name, admin, revoked_at)``
        One row per API key.  ``secret_hash`` is ``hash_secret`` output; secrets are never stored.
        ``revoked_at`` (epoch ms, version 2) is NULL while the key works.
    ``series(sid, db, id, key, name, tags, attributes)``
        ``sid`` is the internal handle of a series.  ``sid`` and ``databases.id`` are
        AUTOINCREMENT, so a number is never reused and nothing deleted can reappear under a new
        owner.  (db, id) and (db, key) are unique.  ``tags`` (a JSON array: order kept, no
        duplicates) and ``attributes`` (a JSON object) are what a series reads back as.
    ``series_tag(sid, tag, db)`` and ``series_attr(sid, name, db, value)``
        The same tags and attributes again, indexed by (db, tag) and (db, name, value) so that
        series filters run in SQL.  They are rewritten in the same transaction as the JSON.
        These WITHOUT ROWID tables declare their primary key's columns first, in its order
        (version 4): with ``db`` between them, the integrity check of SQLite 3.40.0-3.41.0
        (Debian 12 has 3.40.1) reads ``db`` from the wrong place and reports "NULL value in
        series_tag.db" for a sound file, which failed every backup of a store with a tag.
    ``block(sid, first, last, n, fmt, ts, vals, mask, gen)``
        The points.  The unique index (sid, first, last, n, gen) finds the blocks of a time
        range, and names their contents, without reading any blob.  ``gen`` (version 3) is
        set by every write of the row to the writing transaction's generation, a random
        non-zero 62-bit number (rows untouched since the upgrade keep 0): (rowid, gen)
        names a block's contents for good, across processes too, and keys the cache of
        decoded blocks.
    ``idempotency(db, key, fingerprint, skipped, created)`` (version 5)
        The idempotency keys of applied writes (``storage/idempotency.py``): the request's
        digest, the write's result and when (epoch ms), written in the write's transaction.
    ``head(sid, ts, v, is_int)``
        The write head (version 6): fresh points of small writes, one row per point, WITHOUT
        ROWID with the primary key (sid, ts) (its columns first, see above), so a series'
        rows sit together and a write of a few series dirties a few leaf pages.  ``v`` is
        the value, a float64 (every integer up to 2**53 exactly; declared without a type,
        since a REAL column stores whole values as integers and loses -0.0), ``is_int`` 1
        when it was written as an integer.  Every head row of a series is later than every
        point in its blocks (``points`` keeps that so); the fold moves a series' rows into
        its blocks (``fold``).  A file upgraded from version 5 starts with an empty head.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Final

from tempodb.storage.base import SchemaTooNew
from tempodb.storage.sqlite import retention

#: The name of the database file inside the data folder.
FILE_NAME: Final = "tempodb.sqlite3"
#: Beside it: replaced (a new file) by whoever revokes or deletes a key, so that a server in
#: another process sees the change with one ``stat`` instead of a query per request.
KEYS_STAMP_NAME: Final = "keys.stamp"

MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (  # 1: the initial schema
        """CREATE TABLE databases (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            key TEXT NOT NULL UNIQUE,
            secret_hash TEXT NOT NULL,
            name TEXT NOT NULL DEFAULT '',
            admin INTEGER NOT NULL DEFAULT 0
        )""",
        """CREATE TABLE series (
            sid INTEGER PRIMARY KEY AUTOINCREMENT,
            db INTEGER NOT NULL,
            id TEXT NOT NULL,
            key TEXT NOT NULL,
            name TEXT NOT NULL DEFAULT '',
            tags TEXT NOT NULL DEFAULT '[]',
            attributes TEXT NOT NULL DEFAULT '{}',
            UNIQUE (db, key),
            UNIQUE (db, id)
        )""",
        """CREATE TABLE series_tag (
            sid INTEGER NOT NULL,
            db INTEGER NOT NULL,
            tag TEXT NOT NULL,
            PRIMARY KEY (sid, tag)
        ) WITHOUT ROWID""",
        "CREATE INDEX series_tag_by_tag ON series_tag (db, tag, sid)",
        """CREATE TABLE series_attr (
            sid INTEGER NOT NULL,
            db INTEGER NOT NULL,
            name TEXT NOT NULL,
            value TEXT NOT NULL,
            PRIMARY KEY (sid, name)
        ) WITHOUT ROWID""",
        "CREATE INDEX series_attr_by_value ON series_attr (db, name, value, sid)",
        """CREATE TABLE block (
            sid INTEGER NOT NULL,
            first INTEGER NOT NULL,
            last INTEGER NOT NULL,
            n INTEGER NOT NULL,
            fmt INTEGER NOT NULL,
            ts BLOB NOT NULL,
            vals BLOB NOT NULL,
            mask BLOB
        )""",
        "CREATE UNIQUE INDEX block_by_time ON block (sid, first, last, n)",
    ),
    ("ALTER TABLE databases ADD COLUMN revoked_at INTEGER",),  # 2: key revocation
    (  # 3: block generations, for the cache of decoded blocks
        "ALTER TABLE block ADD COLUMN gen INTEGER NOT NULL DEFAULT 0",
        "DROP INDEX block_by_time",
        "CREATE UNIQUE INDEX block_by_time ON block (sid, first, last, n, gen)",
    ),
    (  # 4: the primary key's columns first (SQLite 3.40.0-3.41.0 misread the others' NOT NULL)
        """CREATE TABLE series_tag_4 (
            sid INTEGER NOT NULL,
            tag TEXT NOT NULL,
            db INTEGER NOT NULL,
            PRIMARY KEY (sid, tag)
        ) WITHOUT ROWID""",
        "INSERT INTO series_tag_4 (sid, tag, db) SELECT sid, tag, db FROM series_tag",
        "DROP TABLE series_tag",
        "ALTER TABLE series_tag_4 RENAME TO series_tag",
        "CREATE INDEX series_tag_by_tag ON series_tag (db, tag, sid)",
        """CREATE TABLE series_attr_4 (
            sid INTEGER NOT NULL,
            name TEXT NOT NULL,
            db INTEGER NOT NULL,
            value TEXT NOT NULL,
            PRIMARY KEY (sid, name)
        ) WITHOUT ROWID""",
        "INSERT INTO series_attr_4 (sid, name, db, value) "
        "SELECT sid, name, db, value FROM series_attr",
        "DROP TABLE series_attr",
        "ALTER TABLE series_attr_4 RENAME TO series_attr",
        "CREATE INDEX series_attr_by_value ON series_attr (db, name, value, sid)",
    ),
    (  # 5: idempotency keys of writes
        """CREATE TABLE idempotency (
            db INTEGER NOT NULL,
            key TEXT NOT NULL,
            fingerprint BLOB NOT NULL,
            skipped TEXT NOT NULL,
            created INTEGER NOT NULL,
            PRIMARY KEY (db, key)
        ) WITHOUT ROWID""",
        "CREATE INDEX idempotency_by_age ON idempotency (created)",
    ),
    (  # 6: the write head
        """CREATE TABLE head (
            sid INTEGER NOT NULL,
            ts INTEGER NOT NULL,
            v NOT NULL,
            is_int INTEGER NOT NULL,
            PRIMARY KEY (sid, ts)
        ) WITHOUT ROWID""",
    ),
    retention.MIGRATION,  # 7: retention and the 15-minute tier (see that module)
)

#: The schema version this code writes.
SCHEMA_VERSION: Final = len(MIGRATIONS)


def user_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def check_version(version: int, path: Path) -> None:
    if version > SCHEMA_VERSION:
        raise SchemaTooNew(
            f"{path} has schema version {version}, but this tempodb knows only versions up to "
            f"{SCHEMA_VERSION}: upgrade tempodb"
        )


def migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Apply the missing migrations, one transaction each (safe against a concurrent opener)."""
    while True:
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = user_version(conn)
            check_version(version, path)
            if version == SCHEMA_VERSION:
                conn.execute("COMMIT")
                return
            for statement in MIGRATIONS[version]:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
