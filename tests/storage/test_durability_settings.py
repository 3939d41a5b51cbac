"""The settings that make an acknowledged write durable, read back from every connection of
each store: a SIGKILL cannot reveal a missing fsync, so the tests read the settings themselves.

SQLite: the writer connection runs ``synchronous = FULL`` (2) in WAL mode, and every reader
connection sees the WAL journal.  PostgreSQL: every session of the pool and the fold's own
connection run ``synchronous_commit = on``, even where the database's default says ``off``,
on a cluster of its own that runs with ``fsync = on`` (the session's cluster trades it for
speed: with it on, ``tests/storage/test_postgres.py`` took twice as long), where a server
killed with SIGKILL keeps every acknowledged write.
"""

from __future__ import annotations

import datetime
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pg import Cluster
from serverproc import ServerProcess, create_key
from tempodb import Client, DataPoint
from tempodb.storage.sqlite import SQLiteStore

SYNCHRONOUS_FULL = 2
T0 = datetime.datetime(2012, 1, 1, tzinfo=datetime.UTC)


def test_sqlite_writer_syncs_fully_in_wal_mode(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "data") as store:
        writer = store._writer.call(
            lambda conn: (
                conn.execute("PRAGMA synchronous").fetchone()[0],
                conn.execute("PRAGMA journal_mode").fetchone()[0],
            )
        )
        assert writer == (SYNCHRONOUS_FULL, "wal")
        store.create_database("readers")  # something for the readers to read
        seen: list[str] = []

        def read() -> None:  # each thread has a reader connection of its own
            conn = store._reader()
            seen.append(conn.execute("PRAGMA journal_mode").fetchone()[0])
            assert len(store.list_databases()) == 1

        threads = [threading.Thread(target=read) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert seen == ["wal"] * 3
    # WAL is written into the file's header (bytes 18 and 19 are 2): it outlives the process.
    header = (tmp_path / "data" / "tempodb.sqlite3").read_bytes()[:20]
    assert header[18:20] == b"\x02\x02"


@pytest.fixture(scope="module")
def durable_cluster() -> Iterator[Cluster]:
    """A cluster as production runs one: fsync and full page writes on."""
    cluster = Cluster.start(fsync=True)
    yield cluster
    cluster.stop()


@pytest.mark.postgres
def test_postgres_sessions_commit_synchronously(durable_cluster: Cluster) -> None:
    """The database's default is ``synchronous_commit = off`` here: only the store's own
    setting makes its commits wait for the flush."""
    from tempodb.storage.postgres import PostgresStore

    name = f"durable_{secrets.token_hex(4)}"
    url = durable_cluster.create_database(name)
    durable_cluster.admin(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
    assert _show(url, "synchronous_commit") == "off"
    assert _show(url, "fsync") == "on"
    assert _show(url, "full_page_writes") == "on"
    with PostgresStore(url, min_size=3, max_size=3, head_points=1, fold_after_s=0.01) as store:
        held: list[Any] = []
        settings: list[str] = []
        # Take every connection of the pool at once, so that each one is asked.
        pool = store._pool
        with pool.connection() as a, pool.connection() as b, pool.connection() as c:
            held = [a, b, c]
            for conn in held:
                settings.append(conn.execute("SHOW synchronous_commit").fetchone()[0])
        assert len({id(conn) for conn in held}) == 3
        assert settings == ["on"] * 3
        fold = store._on_fold_connection(
            lambda conn: conn.execute("SHOW synchronous_commit").fetchone()[0], transaction=False
        )
        assert fold == "on"


def _show(url: str, setting: str) -> str:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(f"SHOW {setting}".encode()).fetchone()
        assert row is not None
        return str(row[0])


@pytest.mark.postgres
def test_postgres_server_killed_keeps_acknowledged_writes(durable_cluster: Cluster) -> None:
    """With fsync and synchronous commits on: every write acknowledged before a SIGKILL of the
    server is there after a restart (the head and the fold included)."""
    name = f"killed_{secrets.token_hex(4)}"
    url = durable_cluster.create_database(name)
    durable_cluster.admin(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
    store = ["--database-url", url]
    key, secret = create_key(store)
    server = ServerProcess.start(store, "--head-points", "4", "--fold-after", "0.05")
    try:
        with Client(key, secret, server.host, server.port, secure=False) as client:
            for n in range(30):
                client.write_key(f"s{n % 3}", [DataPoint(T0 + datetime.timedelta(minutes=n), n)])
    finally:
        server.process.kill()
        server.process.wait()
        server.stop()
    restarted = ServerProcess.start(store)
    try:
        with Client(key, secret, restarted.host, restarted.port, secure=False) as client:
            found = sorted(
                p.value
                for d in client.read(T0, T0 + datetime.timedelta(days=1), interval="raw")
                for p in d.data
            )
    finally:
        assert restarted.stop() == 0
    assert found == list(range(30))
