"""The PostgreSQL schema: its migrations, and the settings of every pooled session.

``tempodb_schema(version, applied_at)`` records the migrations applied; the schema version is
the largest.  On start, under a session advisory lock (so that servers starting together take
turns), ``migrate`` applies the migrations of ``MIGRATIONS`` that the database lacks, one
transaction each, and refuses (SchemaTooNew) a database whose version is newer than this code.
On a Citus coordinator whose tables are distributed (``tempodb citus setup``), the tables that
the migrations add are distributed as ``citus.LAYOUT`` says: a new table needs its entry there
(a test checks that every table has one).
"""

from __future__ import annotations

from typing import Any, Final

import psycopg

from tempodb.storage.base import SchemaTooNew
from tempodb.storage.postgres import citus, retention

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "configure", "migrate"]

MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (  # 1: the initial schema
        """CREATE TABLE databases (
            id bigserial PRIMARY KEY,
            key text COLLATE "C" NOT NULL UNIQUE,
            secret_hash text NOT NULL,
            name text NOT NULL DEFAULT '',
            admin boolean NOT NULL DEFAULT false
        )""",
        """CREATE TABLE series (
            db bigint NOT NULL REFERENCES databases (id),
            sid bigserial NOT NULL,
            id text COLLATE "C" NOT NULL,
            key text COLLATE "C" NOT NULL,
            name text NOT NULL DEFAULT '',
            tags text[] NOT NULL DEFAULT '{}',
            attributes json NOT NULL DEFAULT '{}',
            PRIMARY KEY (db, sid),
            UNIQUE (db, id),
            UNIQUE (db, key)
        )""",
        """CREATE TABLE series_tag (
            db bigint NOT NULL,
            sid bigint NOT NULL,
            tag text COLLATE "C" NOT NULL,
            PRIMARY KEY (db, sid, tag)
        )""",
        "CREATE INDEX series_tag_by_tag ON series_tag (db, tag, sid)",
        """CREATE TABLE series_attr (
            db bigint NOT NULL,
            sid bigint NOT NULL,
            name text COLLATE "C" NOT NULL,
            value text COLLATE "C" NOT NULL,
            PRIMARY KEY (db, sid, name)
        )""",
        "CREATE INDEX series_attr_by_value ON series_attr (db, name, value, sid)",
        """CREATE TABLE block (
            db bigint NOT NULL,
            sid bigint NOT NULL,
            first bigint NOT NULL,
            last bigint NOT NULL,
            n integer NOT NULL,
            fmt smallint NOT NULL,
            ts bytea NOT NULL,
            vals bytea NOT NULL,
            mask bytea,
            PRIMARY KEY (db, sid, first)
        )""",
        "ALTER TABLE block ALTER COLUMN ts SET STORAGE EXTERNAL, "
        "ALTER COLUMN vals SET STORAGE EXTERNAL",
    ),
    ("ALTER TABLE databases ADD COLUMN revoked_at timestamptz",),  # 2: key revocation
    (  # 3: the write head (rows come and go all the time: vacuum it early, keep room for HOT)
        """CREATE TABLE head (
            db bigint NOT NULL,
            sid bigint NOT NULL,
            ts bigint NOT NULL,
            v double precision NOT NULL,
            is_int boolean NOT NULL,
            whole boolean NOT NULL,
            PRIMARY KEY (db, sid, ts)
        ) WITH (fillfactor = 90, autovacuum_vacuum_scale_factor = 0.02,
                autovacuum_vacuum_insert_scale_factor = 0.02)""",
    ),
    (  # 4: idempotency keys of writes (storage/idempotency.py)
        """CREATE TABLE idempotency (
            db bigint NOT NULL,
            key text COLLATE "C" NOT NULL,
            fingerprint bytea NOT NULL,
            skipped text NOT NULL,
            created bigint NOT NULL,
            PRIMARY KEY (db, key)
        )""",
        "CREATE INDEX idempotency_by_age ON idempotency (created)",
    ),
    retention.MIGRATION,  # 5: retention and the 15-minute tier (see that module)
    (  # 6: the series lock beside the points, for Citus (see ``citus``; unused elsewhere)
        """CREATE TABLE series_lock (
            db bigint NOT NULL,
            sid bigint NOT NULL,
            PRIMARY KEY (db, sid)
        )""",
    ),
)

#: The schema version this code writes.
SCHEMA_VERSION: Final = len(MIGRATIONS)

#: The advisory lock (per database) held while migrating: b"tempodb" as a number.
_MIGRATION_LOCK: Final = int.from_bytes(b"tempodb", "big")


def configure(conn: psycopg.Connection[Any]) -> None:
    """Every pooled session: acknowledged means committed and flushed."""
    conn.execute("SET synchronous_commit = on")


def migrate(conn: psycopg.Connection[Any], *, citus_setup: bool = False) -> list[str]:
    """Apply the missing migrations under the migration lock; refuse a newer schema.

    ``citus_setup``: then distribute the tables on Citus (``citus.setup``); what was
    distributed is returned (also the tables that the migrations added to a Citus cluster)."""
    conn.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK,))
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS tempodb_schema ("
            "version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        row = conn.execute("SELECT coalesce(max(version), 0) FROM tempodb_schema").fetchone()
        version = int(row[0]) if row else 0
        if version > SCHEMA_VERSION:
            raise SchemaTooNew(
                f"the database has schema version {version}, but this tempodb knows only "
                f"versions up to {SCHEMA_VERSION}: upgrade tempodb"
            )
        for number in range(version + 1, SCHEMA_VERSION + 1):
            with conn.transaction():
                for statement in MIGRATIONS[number - 1]:
                    conn.execute(statement)
                conn.execute("INSERT INTO tempodb_schema (version) VALUES (%s)", (number,))
        if citus_setup or (version < SCHEMA_VERSION and citus.distributed(conn)):
            return citus.distribute(conn)  # (the tables that the migrations added)
        return []
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK,))
