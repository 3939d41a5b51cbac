"""The ``store`` fixture: every contract test runs once per storage backend.

To add a backend, write a factory, add it to ``FACTORIES`` and list it in ``BACKENDS`` with the
marks it needs (e.g. ``pytest.param("postgres", marks=pytest.mark.postgres)``).  A factory gets
the fixture request (to pull other fixtures, such as ``tmp_path`` or a database cluster) and a
``block_points`` hint: None for the backend's defaults, or a tiny block size that block-based
backends should use, so that a test parametrised with it (``indirect=True``) crosses block
boundaries all the time.  Backends without blocks ignore the hint.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import psycopg
import pytest

from pg import CitusCluster, Cluster
from tempodb.storage.base import Database, Store
from tempodb.storage.sqlite import SQLiteStore

StoreFactory = Callable[[pytest.FixtureRequest, "int | None"], Store]


def _sqlite(request: pytest.FixtureRequest, block_points: int | None) -> Store:
    tmp_path = request.getfixturevalue("tmp_path")
    if block_points is None:
        return SQLiteStore(tmp_path / "sqlite")
    return SQLiteStore(tmp_path / f"sqlite-{block_points}", block_points=block_points)


def _sqlite_head(request: pytest.FixtureRequest, block_points: int | None) -> Store:
    """The embedded store with a tiny write head, as PostgreSQL's below: a series folds into
    its blocks after 3 points or 20 ms, and a request's series with 8 points or more go
    straight to the blocks, so that every test crosses the head, the fold and the direct
    path."""
    tmp_path = request.getfixturevalue("tmp_path")
    tiny = {"head_points": 3, "fold_after_s": 0.02, "direct_points": 8}
    if block_points is None:
        return SQLiteStore(tmp_path / "sqlite-head", **tiny)
    return SQLiteStore(tmp_path / f"sqlite-head-{block_points}", block_points=block_points, **tiny)


#: Every table of the PostgreSQL schema, emptied before each test.
PG_TABLES = (
    "databases, series, series_tag, series_attr, block, series_lock, idempotency, retention, tier"
)


@pytest.fixture(scope="session")
def pg_contract_db(pg_cluster: Cluster) -> str:
    """The name of one database of the throwaway cluster for the whole contract suite."""
    from tempodb.storage.postgres import PostgresStore

    name = "contract"
    PostgresStore(pg_cluster.create_database(name), min_size=0).close()  # migrate it once
    return name


def _postgres(request: pytest.FixtureRequest, block_points: int | None) -> Store:
    """A store with a tiny write head: a series folds into blocks after 3 points or 20 ms, and
    a request's series with 8 points or more go straight to the blocks, so that every test
    crosses the head, the fold and the direct path."""
    from tempodb.storage.postgres import PostgresStore

    cluster: Cluster = request.getfixturevalue("pg_cluster")
    name: str = request.getfixturevalue("pg_contract_db")
    cluster.admin(f"TRUNCATE {PG_TABLES}, head", dbname=name)
    tiny = {"head_points": 3, "fold_after_s": 0.02, "direct_points": 8}
    if block_points is None:
        return PostgresStore(cluster.url(name), **tiny)
    return PostgresStore(cluster.url(name), block_points=block_points, **tiny)


@pytest.fixture(scope="session")
def citus_contract_db(citus_cluster: CitusCluster) -> str:
    """The database of the Citus cluster for the whole contract suite (``tempodb citus
    setup`` ran on it)."""
    citus_cluster.tempodb_database("contract")
    return "contract"


def _citus(request: pytest.FixtureRequest, block_points: int | None) -> Store:
    """As ``_postgres``, on the Citus cluster (a coordinator and two workers)."""
    from tempodb.storage.postgres import PostgresStore

    cluster: CitusCluster = request.getfixturevalue("citus_cluster")
    name: str = request.getfixturevalue("citus_contract_db")
    # DELETE: faster than TRUNCATE on distributed tables (a few rows, every shard locked).
    tables = [
        "series_lock",
        "head",
        "block",
        "tier",
        "series_tag",
        "series_attr",
        "series",
        "idempotency",
        "retention",
        "databases",
    ]
    with psycopg.connect(cluster.url(name)) as conn:
        conn.execute("SET LOCAL citus.multi_shard_modify_mode TO 'sequential'")
        for table in tables:
            conn.execute(f"DELETE FROM {table}")
    tiny = {"head_points": 3, "fold_after_s": 0.02, "direct_points": 8}
    if block_points is None:
        return PostgresStore(cluster.url(name), **tiny)
    return PostgresStore(cluster.url(name), block_points=block_points, **tiny)


FACTORIES: dict[str, StoreFactory] = {
    "sqlite": _sqlite,
    "sqlite-head": _sqlite_head,
    "postgres": _postgres,
    "citus": _citus,
}
#: The backends under test: one param per factory, with the marks it needs.
BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("sqlite-head", id="sqlite-head"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    pytest.param("citus", id="citus", marks=[pytest.mark.postgres, pytest.mark.citus]),
]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The name of the backend under test."""
    return str(request.param)


@pytest.fixture
def store(request: pytest.FixtureRequest, backend: str) -> Iterator[Store]:
    """A fresh, empty store of each backend (``request.param``: the block_points hint)."""
    instance = FACTORIES[backend](request, getattr(request, "param", None))
    try:
        yield instance
    finally:
        instance.close()


@pytest.fixture
def db(store: Store) -> Database:
    """A fresh database in the store."""
    credentials = store.create_database("test")
    database = store.authenticate(credentials.key, credentials.secret)
    assert database is not None
    return database


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On Citus, the tests run with both block sizes run with the tiny blocks only (they cross
    more block boundaries; each Citus test costs seconds, and CI has a time budget)."""
    keep = [item for item in items if "[citus-default-blocks]" not in item.nodeid]
    if len(keep) < len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in keep])
        items[:] = keep
