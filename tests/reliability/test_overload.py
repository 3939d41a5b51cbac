"""Overload: bounded work instead of unbounded memory, and an optional per-key rate limit.

* ``--queue N``: with N requests in progress (here: bodies still arriving), the next request is
  answered 503 with Retry-After at once, and writes nothing; the held ones complete.
* Request bodies held at once are bounded too (4 x the body limit): past it, 503.
* The SQLite writer's queue and the PostgreSQL pool's waiting line are bounded: the store
  raises Overloaded, which the server answers 503 with Retry-After.
* ``--rate-limit N``: past N requests a second for one key, 429 with Retry-After; other keys,
  and requests with a wrong secret, spend nothing of it.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rawhttp import Raw, Reply, basic

from serverproc import ServerProcess, create_key, data_args
from tempodb.server.app import TempoDBApp
from tempodb.storage.base import (
    Database,
    Overloaded,
    SeriesFilter,
    SeriesRef,
    StorageError,
    Store,
    WriteBatch,
)
from tempodb.storage.sqlite import SQLiteStore


class SlowBody:
    """A POST whose chunked body is still arriving: the server holds it in progress."""

    def __init__(self, process: ServerProcess, credentials: tuple[str, str], key: str) -> None:
        self.sock = socket.create_connection((process.host, process.port), timeout=10)
        head = (
            f"POST /v1/series/key/{key}/data/ HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: {basic(*credentials)}\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        self.sock.sendall(head.encode())

    def send(self, data: bytes) -> None:
        self.sock.sendall(b"%x\r\n%s\r\n" % (len(data), data))

    def finish(self, data: bytes = b"") -> Reply:
        if data:
            self.send(data)
        self.sock.sendall(b"0\r\n\r\n")
        return read_reply(self.sock)

    def answered(self, wait: float = 2.0) -> Reply | None:
        """The server's answer if one comes within ``wait`` seconds."""
        self.sock.settimeout(wait)
        try:
            return read_reply(self.sock)
        except TimeoutError:
            return None
        finally:
            self.sock.settimeout(10)


def read_reply(sock: socket.socket) -> Reply:
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *lines = head.decode().split("\r\n")
    headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines)}
    while len(body) < int(headers.get("content-length", "0")):
        body += sock.recv(65536)
    return Reply(int(status_line.split()[1]), headers, body)


POINT = b'[{"t": "2012-01-01T00:00:00Z", "v": 1}'


def assert_busy(reply: Reply | None) -> None:
    assert reply is not None, "no answer: the request waited instead"
    assert reply.status == 503
    assert reply.headers["retry-after"] == "1"
    assert reply.headers["x-tempodb-error"] == "overloaded"
    assert "nothing was done" in reply.text


@pytest.fixture
def queued_server(tmp_path: Path) -> Iterator[tuple[ServerProcess, tuple[str, str]]]:
    store = data_args(tmp_path / "data")
    credentials = create_key(store)
    process = ServerProcess.start(store, "--queue", "2", "--max-body-mb", "0.1")
    yield process, credentials
    process.stop()


def test_full_queue_answers_503_at_once(
    queued_server: tuple[ServerProcess, tuple[str, str]],
) -> None:
    process, credentials = queued_server
    raw = Raw(process.host, process.port, credentials)
    held = [SlowBody(process, credentials, f"held-{i}") for i in range(2)]
    for slow in held:
        slow.send(POINT)
    time.sleep(0.2)  # both are in progress now
    for _ in range(3):
        started = time.monotonic()
        assert_busy(raw.request("POST", "/v1/series/key/refused/data/", POINT + b"]"))
        assert time.monotonic() - started < 1.0
    assert_busy(raw.request("GET", "/v1/series/"))
    for slow in held:
        assert slow.finish(b"]").status == 200
    listed = raw.request("GET", "/v1/series/")
    assert listed.status == 200
    assert sorted(s["key"] for s in listed.json()) == ["held-0", "held-1"]


def test_bodies_held_in_memory_are_bounded(tmp_path: Path) -> None:
    """Body limit 0.1 MiB: all requests together may hold 0.4 MiB of bodies, not more."""
    store = data_args(tmp_path / "data")
    credentials = create_key(store)
    process = ServerProcess.start(store, "--queue", "10", "--max-body-mb", "0.1")
    try:
        held = [SlowBody(process, credentials, f"held-{i}") for i in range(4)]
        for slow in held:
            slow.send(POINT + b" " * 100_000)  # just under the body limit each
        for slow in held:
            assert slow.answered(0.2) is None
        late = SlowBody(process, credentials, "late")
        late.send(POINT + b" " * 20_000)  # 420 kB in all: past 4 x 104,857 bytes
        assert_busy(late.answered())
        for slow in held:
            assert slow.finish(b"]").status == 200
        listed = Raw(process.host, process.port, credentials).request("GET", "/v1/series/")
        assert [s["key"] for s in listed.json()] == [f"held-{i}" for i in range(4)]
    finally:
        process.stop()


def one_point(key: str) -> WriteBatch:
    return WriteBatch(
        [SeriesRef("key", key)],
        np.zeros(1, np.int32),
        np.array([1_325_376_000_000], np.int64),
        np.ones(1),
        np.ones(1, np.bool_),
    )


def new_database(store: Store) -> tuple[Database, str]:
    """A database of ``store`` and its Authorization header."""
    created = store.create_database()
    database = store.authenticate(created.key, created.secret)
    assert database is not None
    return database, basic(created.key, created.secret)


def test_sqlite_writer_queue_is_bounded(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path, max_queue=1) as store:
        database, authorization = new_database(store)
        release = threading.Event()
        blocker = threading.Thread(target=store._writer.call, args=(lambda conn: release.wait(),))
        blocker.start()
        time.sleep(0.1)  # the writer is busy, and its one slot is taken
        with pytest.raises(Overloaded):
            store.write_points(database.id, one_point("refused"))
        app = TempoDBApp(store)
        answer = app.handle(
            "POST",
            b"/v1/series/key/refused/data/",
            b"",
            {"authorization": authorization},
            POINT + b"]",
        )
        app.executor.shutdown()
        assert answer.status == 503
        assert (b"retry-after", b"1") in answer.headers
        release.set()
        blocker.join()
        store.write_points(database.id, one_point("accepted"))
        assert [s.key for s in store.find_series(database.id, SeriesFilter())] == ["accepted"]


@pytest.mark.postgres
def test_postgres_waiting_line_is_bounded(pg_cluster: Any) -> None:
    from tempodb.storage.postgres import PostgresStore

    url = pg_cluster.create_database("overload")
    with PostgresStore(url, min_size=1, max_size=1, max_waiting=1, connect_timeout=5) as store:
        database, _ = new_database(store)
        release = threading.Event()
        holding = threading.Event()

        def hold() -> None:
            with store._pool.connection():
                holding.set()
                release.wait()

        holder = threading.Thread(target=hold)
        holder.start()
        holding.wait()
        waiter = threading.Thread(target=store.write_points, args=(database.id, one_point("w")))
        waiter.start()  # waits for the one connection
        time.sleep(0.2)
        with pytest.raises(Overloaded):
            store.write_points(database.id, one_point("refused"))
        release.set()
        holder.join()
        waiter.join()
        assert [s.key for s in store.find_series(database.id, SeriesFilter())] == ["w"]
        assert issubclass(Overloaded, StorageError)


def test_rate_limit_per_key(tmp_path: Path) -> None:
    store = data_args(tmp_path / "data")
    first, second = create_key(store), create_key(store)
    process = ServerProcess.start(store, "--rate-limit", "5")
    try:
        raw = Raw(process.host, process.port, first)
        conn = raw.connection()
        for _ in range(10):  # wrong secrets spend nothing of the key's budget
            assert raw.as_((first[0], "0" * 32)).request("GET", "/v1/series/").status == 403
        statuses = []
        for i in range(12):
            body = [{"t": "2012-01-01T00:00:00Z", "v": i}]
            reply = raw.request("POST", f"/v1/series/key/k{i}/data/", body, conn=conn)
            statuses.append(reply.status)
            if reply.status == 429:
                assert int(reply.headers["retry-after"]) >= 1
                assert reply.headers["x-tempodb-error"] == "rate-limited"
                assert "5 a second" in reply.text
        assert statuses[:5] == [200] * 5
        assert statuses.count(429) >= 5
        assert Raw(process.host, process.port, second).request("GET", "/v1/series/").status == 200
        time.sleep(1.1)
        listed = raw.request("GET", "/v1/series/")
        assert listed.status == 200
        written = {s["key"] for s in listed.json()}
        assert written == {f"k{i}" for i, status in enumerate(statuses) if status == 200}
    finally:
        process.stop()
