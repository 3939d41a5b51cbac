"""tempodb on Citus: ``tempodb citus setup``, the layout of every table, and a database that
was used before it was distributed.  (The contract suite runs on Citus too: the ``citus``
backend of ``conftest.py``; the two-server suite in tests/integration.)"""

from __future__ import annotations

import datetime
import subprocess

import numpy as np
import psycopg
import pytest

from pg import CitusCluster, Cluster
from serverproc import tempodb_command
from tempodb.storage.base import SeriesRef, WriteBatch
from tempodb.storage.postgres import PostgresStore
from tempodb.storage.postgres.citus import LAYOUT, LOCAL

pytestmark = pytest.mark.postgres

T0 = int(datetime.datetime(2012, 1, 1, tzinfo=datetime.UTC).timestamp() * 1000)


def test_every_table_has_its_place_on_citus(pg_cluster: Cluster) -> None:
    """A table that a migration adds needs its entry in ``citus.LAYOUT`` (or ``LOCAL``)."""
    url = pg_cluster.create_database("layout")
    PostgresStore(url, min_size=0).close()
    with psycopg.connect(url) as conn:
        tables = {
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            ).fetchall()
        }
    assert tables == set(LAYOUT) | LOCAL


def test_setup_on_plain_postgresql_says_why_in_one_line(pg_cluster: Cluster) -> None:
    url = pg_cluster.create_database("notcitus")
    done = subprocess.run(
        tempodb_command("citus", "setup", "--database-url", url), capture_output=True, text=True
    )
    assert done.returncode == 1
    assert done.stderr.startswith("tempodb citus setup: this database has no Citus extension")
    assert len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr


def batch(key: str, count: int, value: int) -> WriteBatch:
    return WriteBatch(
        [SeriesRef("id", key)],
        np.zeros(count, np.int32),
        T0 + 60_000 * np.arange(count, dtype=np.int64),
        np.full(count, float(value)),
        np.ones(count, np.bool_),
    )


@pytest.mark.citus
def test_setup_distributes_a_database_in_use_and_is_idempotent(
    citus_cluster: CitusCluster,
) -> None:
    """Data written before the set-up (the tables still local to the coordinator) is kept and
    spread, every series gets its lock row, and a second run changes nothing."""
    url = citus_cluster.create_database("inuse")
    with PostgresStore(url, min_size=0) as store:
        credentials = store.create_database("before")
        db = store.authenticate(credentials.key, credentials.secret)
        assert db is not None
        for i in range(6):
            store.write_points(db.id, batch(f"s{i}", 100, i))
    first = subprocess.run(
        tempodb_command("citus", "setup", "--database-url", url), capture_output=True, text=True
    )
    assert first.returncode == 0, first.stderr
    assert "block: distributed by sid" in first.stdout
    again = subprocess.run(
        tempodb_command("citus", "setup", "--database-url", url), capture_output=True, text=True
    )
    assert again.returncode == 0, again.stderr
    assert "nothing to do" in again.stdout
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM series_lock").fetchone() == (6,)
        placed = conn.execute(
            "SELECT count(*) FROM pg_dist_partition WHERE logicalrelid::regclass::text = ANY(%s)",
            (list(LAYOUT),),
        ).fetchone()
        assert placed == (len(LAYOUT),)
    with PostgresStore(url, min_size=0) as store:
        assert store._citus
        for i in range(6):
            store.write_points(db.id, batch(f"s{i}", 100, 1), increment=True)
            points = store.read_points(db.id, f"s{i}", T0, T0 + 10**9)
            assert points.values.tolist() == [float(i + 1)] * 100
