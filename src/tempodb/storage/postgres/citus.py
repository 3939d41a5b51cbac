"""tempodb on Citus: how the tables are distributed, and the series lock beside the points.

Layout (``LAYOUT``; ``tempodb citus setup --database-url URL`` applies it, ``setup`` below)
    ``databases`` is a reference table (small, read on every authentication: copied to every
    node).  A database's series metadata (``series``, ``series_tag``, ``series_attr``) is
    distributed by ``db`` and colocated, so that the filters are single-shard queries.  The
    points (``block``, ``head``) and ``series_lock`` are distributed by ``sid`` and colocated:
    one large database spreads over every node, while every read and write of one series'
    points stays on the node of its shard.  ``tempodb_schema`` stays local to the coordinator,
    where the servers connect.  A table that a later migration adds must get its entry in
    ``LAYOUT``: ``schema.migrate`` distributes it on a cluster that ``setup`` prepared (and a
    test checks that every table has an entry).

Why ``series_lock``
    On one PostgreSQL, the writers of a series are ordered by a row lock on its ``series``
    row.  On Citus that row lives on the node of the database's metadata, and its points
    usually on another: Citus commits a transaction over several nodes on each node on its own
    (two-phase commit, no distributed snapshot), so a writer that waited for the lock on one
    node could read the points on the other before the previous writer's commit landed there
    (lost increments, unique violations on ``block``, overlapping blocks).  So on Citus the
    series lock is a row of ``series_lock``, colocated with the series' points: the lock and
    the points are released and made visible by the same local commit.  Every series has its
    row there once ``setup`` ran (it fills the table; the stores then add a row with each new
    series and delete it with the series).  The locks are those of the package docstring:
    ``FOR KEY SHARE`` for writers of the head, ``FOR UPDATE`` for folds, large writes, range
    deletes; a series delete deletes the row first, waiting for its writers.  A writer that
    finds no row (its series was deleted, or its creation has not landed on that node yet)
    runs its transaction again.  Citus runs ``FOR UPDATE`` in single-shard statements only:
    the rows are locked one statement per series, in sid order (pipelined: one round trip).

    On plain PostgreSQL the table stays empty and unused: the ``series`` row is the lock there,
    and the one-statement small write (``head.OVERWRITE_KNOWN``) stays.

Deadlocks
    A multi-shard statement runs on the shards in parallel, so two writers upserting the head
    rows of the same series could take their row locks in different orders on different nodes:
    a distributed deadlock, which Citus breaks only after seconds.  Write and fold transactions
    on Citus therefore run their statements shard after shard (``SEQUENTIAL``), so that every
    transaction takes its locks in one order.

What Citus asks of the statements (found running the contract suite on a cluster)
    Reference tables refuse ``now()`` inside ``coalesce`` (the time is a parameter), a
    transaction that changes ``databases`` after multi-shard statements runs them one shard at
    a time (``multi_shard_modify_mode = sequential``), and recursive CTEs over distributed
    tables are replaced by plain statements (``HEAD_SERIES``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, Literal

import psycopg

__all__ = [
    "HEAD_SERIES",
    "LAYOUT",
    "SEQUENTIAL",
    "add_locks",
    "available",
    "distribute",
    "distributed",
    "lock_series",
    "setup",
]

_Conn = psycopg.Connection[Any]

#: Per table: its distribution column (None: a reference table) and the table it is
#: colocated with (None: Citus' default).  In dependency order: distributed in this order.
LAYOUT: Final[dict[str, tuple[str | None, str | None]]] = {
    "databases": (None, None),
    "series": ("db", None),
    "series_tag": ("db", "series"),
    "series_attr": ("db", "series"),
    "block": ("sid", None),
    "head": ("sid", "block"),
    "series_lock": ("sid", "block"),
    "tier": ("sid", "block"),
    "retention": (None, None),
    "idempotency": ("db", "series"),
}
#: Tables that stay on the coordinator.
LOCAL: Final = frozenset({"tempodb_schema"})

#: Every (db, sid) with head rows, on Citus (no recursive CTE over a distributed table).
HEAD_SERIES: Final = "SELECT DISTINCT db, sid FROM head LIMIT %s"
#: The first statement of a transaction that changes ``databases`` after multi-shard ones, or
#: that must take its row locks on several shards in one order (writes, folds).
SEQUENTIAL: Final = "SET LOCAL citus.multi_shard_modify_mode TO 'sequential'"


class CitusError(Exception):
    """The database is not a Citus coordinator ready for tempodb (the message says why)."""


def available(conn: _Conn) -> bool:
    """Whether the Citus extension is installed in this database."""
    row = conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'citus'").fetchone()
    return bool(row and row[0])


def distributed(conn: _Conn) -> bool:
    """Whether tempodb's tables are distributed here (``setup`` ran on this database)."""
    if not available(conn):
        return False
    row = conn.execute(
        "SELECT count(*) FROM pg_dist_partition WHERE logicalrelid = to_regclass('block')"
    ).fetchone()
    return bool(row and row[0])


def distribute(conn: _Conn) -> list[str]:
    """Distribute the tables of ``LAYOUT`` that are not yet (autocommit connection, under the
    migration lock); the tables it distributed, with how."""
    have = {
        str(row[0])
        for row in conn.execute("SELECT logicalrelid::regclass::text FROM pg_dist_partition")
    }
    done: list[str] = []
    for table, (column, colocate) in LAYOUT.items():
        if table in have:
            continue
        if table == "series_lock":  # every series has its lock row from now on
            conn.execute(
                "INSERT INTO series_lock (db, sid) SELECT db, sid FROM series "
                "ON CONFLICT DO NOTHING"
            )
        if column is None:
            conn.execute("SELECT create_reference_table(%s)", (table,))
            done.append(f"{table}: reference table (a copy on every node)")
        else:
            conn.execute(
                "SELECT create_distributed_table(%s, %s, colocate_with => %s)",
                (table, column, colocate or "default"),
            )
            beside = f", colocated with {colocate}" if colocate else ""
            done.append(f"{table}: distributed by {column}{beside}")
    for table in LAYOUT:  # the copies Citus leaves in the coordinator's tables
        if table not in have:
            conn.execute("SELECT truncate_local_data_after_distributing_table(%s)", (table,))
    return done


def setup(url: str) -> list[str]:
    """Prepare the Citus cluster of this coordinator URL for tempodb: create or migrate the
    schema, then distribute every table (``LAYOUT``).  Running it again changes nothing.
    Returns what it did, line by line, for the command to print.

    Raises:
        CitusError: the database has no Citus extension, or the cluster no worker.
        psycopg.Error: the database cannot be reached or refused a statement.
        SchemaTooNew: the database was migrated by a newer tempodb.
    """
    from tempodb.storage.postgres.schema import SCHEMA_VERSION, migrate

    with psycopg.connect(url, autocommit=True, connect_timeout=30) as conn:
        if not available(conn):
            raise CitusError(
                "this database has no Citus extension: run CREATE EXTENSION citus in it on the "
                "coordinator and on every worker, and add the workers (citus_add_node)"
            )
        workers = conn.execute(
            "SELECT node_name, node_port FROM citus_get_active_worker_nodes() ORDER BY 1, 2"
        ).fetchall()
        if not workers:
            raise CitusError(
                "the cluster has no worker: add them on the coordinator with "
                "SELECT citus_add_node('HOST', PORT)"
            )
        done = migrate(conn, citus_setup=True)
        lines = [f"schema version {SCHEMA_VERSION}"]
        lines += done or ["every table was distributed already: nothing to do"]
        nodes = ", ".join(f"{host}:{port}" for host, port in workers)
        lines.append(f"workers: {nodes}")
        return lines


LockMode = Literal["KEY SHARE", "UPDATE"]


def lock_series(
    conn: _Conn, db: int, sids: Sequence[int], mode: LockMode, *, skip_locked: bool = False
) -> list[int]:
    """Lock the ``series_lock`` rows of these series (one single-shard statement each, in sid
    order, pipelined); the sids locked (a sid without a row, or held when ``skip_locked``,
    is missing)."""
    order = sorted(set(sids))
    sql = f"SELECT sid FROM series_lock WHERE db = %s AND sid = %s FOR {mode}"
    if skip_locked:
        sql += " SKIP LOCKED"
    if len(order) == 1:
        return [sid for sid in order if conn.execute(sql, (db, sid)).fetchone() is not None]
    with conn.pipeline():
        cursors = [conn.execute(sql, (db, sid)) for sid in order]
    return [sid for sid, cur in zip(order, cursors, strict=True) if cur.fetchone() is not None]


def add_locks(conn: _Conn, db: int, sids: Sequence[int]) -> None:
    """The ``series_lock`` rows of series this transaction creates."""
    if sids:
        conn.execute(
            "INSERT INTO series_lock (db, sid) SELECT %s, unnest(%s::bigint[])", (db, list(sids))
        )
