"""Retry-safe writes (issue 20): the ``Idempotency-Key`` header against real servers.

A proxy between the client and the servers lets each request through, then throws the
server's answer away (the server has committed by then: it answers only once the write is
durable) and closes the connection, as a network that fails at the worst moment would.  The
client sends the request again with the same key and the increment counts once: on the
embedded store, and across two servers on one PostgreSQL database (the retry reaches the
other server).  Also: the replay header, a key reused for another request (422), a key held
by a transaction in progress (409), a bad key (400), and the batch writer.
"""

from __future__ import annotations

import contextlib
import datetime
import http.client
import itertools
import json
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import psycopg
import pytest

from pg import Cluster
from serverproc import ServerProcess, create_key, data_args
from tempodb import Client, DataPoint, RetryPolicy

T0 = datetime.datetime(2012, 1, 1, tzinfo=datetime.UTC)
DAY = (T0, T0 + datetime.timedelta(days=1))
PATIENT = RetryPolicy(retries=6, backoff=0.05, max_backoff=0.2)


class DroppingProxy:
    """A TCP proxy that sends each new connection to the next of ``backends`` in turn and,
    while ``drops`` is above 0, reads the answer to the connection's first request and closes
    the connection instead of passing the answer on (one drop per connection)."""

    def __init__(self, backends: Sequence[tuple[str, int]], drops: int) -> None:
        self.drops = drops
        self.dropped = 0
        self.connections = 0
        self._backends = itertools.cycle(backends)
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                backend = next(self._backends)
                self.connections += 1
            threading.Thread(target=self._serve, args=(client, backend), daemon=True).start()

    def _serve(self, client: socket.socket, backend: tuple[str, int]) -> None:
        with client, socket.create_connection(backend) as upstream:
            threading.Thread(target=_pump, args=(client, upstream), daemon=True).start()
            first = upstream.recv(65536)  # the server has applied the request by now
            with self._lock:
                drop = self.drops > 0
                if drop:
                    self.drops -= 1
                    self.dropped += 1
            if drop or not first:  # shut down: the pump thread still reads from them
                for end in (client, upstream):
                    with contextlib.suppress(OSError):
                        end.shutdown(socket.SHUT_RDWR)
                return
            client.sendall(first)
            _pump(upstream, client)


def _pump(source: socket.socket, target: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            target.sendall(data)
    except OSError:
        pass


#: The servers, the credentials of a fresh database, and the store's arguments.
Setup = tuple[list[ServerProcess], str, str, list[str]]


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[Setup]:
    store = data_args(tmp_path / "data")
    key, secret = create_key(store)
    server = ServerProcess.start(store)
    yield [server], key, secret, store
    assert server.stop() == 0


@pytest.fixture(scope="module")
def pg_pair(pg_cluster: Cluster) -> Iterator[tuple[list[ServerProcess], list[str]]]:
    store = ["--database-url", pg_cluster.create_database("idempotency")]
    servers = [ServerProcess.start(store), ServerProcess.start(store)]
    yield servers, store
    for server in servers:
        assert server.stop() == 0


@pytest.fixture
def pair(pg_pair: tuple[list[ServerProcess], list[str]]) -> Setup:
    servers, store = pg_pair
    key, secret = create_key(store)
    return servers, key, secret, store


def _through(proxy: DroppingProxy, key: str, secret: str) -> Client:
    return Client(key, secret, "127.0.0.1", proxy.port, secure=False, retries=PATIENT)


def _values(server: ServerProcess, key: str, secret: str, series: str = "k") -> list[float]:
    with Client(key, secret, server.host, server.port, secure=False) as client:
        return [p.value for p in client.read_key(series, *DAY, interval="raw").data]


STORES = ["embedded", "pair"]


@pytest.mark.parametrize("setup", STORES)
def test_an_increment_whose_answer_is_lost_counts_once(
    request: pytest.FixtureRequest, setup: str
) -> None:
    servers, key, secret, _ = request.getfixturevalue(setup)
    proxy = DroppingProxy([(s.host, s.port) for s in servers], drops=2)
    try:
        with _through(proxy, key, secret) as client:
            client.increment_key("k", [DataPoint(T0, 5)])
            assert proxy.dropped == 2  # applied, answer lost; replayed, answer lost; replayed
            client.increment_multi([{"t": T0.isoformat(), "key": "k", "v": 1}])
    finally:
        proxy.close()
    assert proxy.connections >= 3  # each drop closes a connection
    for server in servers:  # both servers of the pair see the same
        assert _values(server, key, secret) == [6]


@pytest.mark.parametrize("setup", STORES)
def test_a_batch_writer_loses_and_doubles_nothing_when_answers_are_lost(
    request: pytest.FixtureRequest, setup: str
) -> None:
    servers, key, secret, _ = request.getfixturevalue(setup)
    proxy = DroppingProxy([(s.host, s.port) for s in servers], drops=3)
    points = [(f"s{i % 5}", T0 + datetime.timedelta(minutes=i % 7), 1) for i in range(700)]
    try:
        client = _through(proxy, key, secret)
        with client, client.batch_writer(increment=True, batch_size=100) as writer:
            for point in points:
                writer.add(*point)
    finally:
        proxy.close()
    assert proxy.dropped == 3
    expected: dict[tuple[str, datetime.datetime], int] = {}
    for series, ts, value in points:
        expected[series, ts] = expected.get((series, ts), 0) + value
    with Client(key, secret, servers[-1].host, servers[-1].port, secure=False) as client:
        for series in {s for s, _ in expected}:
            got = {p.ts: p.value for p in client.read_key(series, *DAY, interval="raw").data}
            assert got == {ts: v for (s, ts), v in expected.items() if s == series}


def _post(
    server: ServerProcess, key: str, secret: str, path: str, body: object, idem: str | None
) -> tuple[int, dict[str, str], bytes]:
    import base64

    headers = {
        "Authorization": "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode(),
        "Content-Type": "application/json",
    }
    if idem is not None:
        headers["Idempotency-Key"] = idem
    connection = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        connection.request("POST", path, json.dumps(body).encode(), headers)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


@pytest.mark.parametrize("setup", STORES)
def test_a_replay_is_marked_and_a_reused_key_is_refused(
    request: pytest.FixtureRequest, setup: str
) -> None:
    servers, key, secret, store = request.getfixturevalue(setup)
    first, last = servers[0], servers[-1]
    body = [{"t": "2012-01-01T00:00:00Z", "key": "k", "v": 2}, {"key": "bad key!", "v": 1}]
    status, headers, answer = _post(first, key, secret, "/v1/multi/increment/", body, '"m-1"')
    assert status == 207
    assert "idempotent-replayed" not in headers
    # The retry, on the other server of the pair: the same answer, marked, nothing added.
    again = _post(last, key, secret, "/v1/multi/increment/", body, '"m-1"')
    assert again[0] == 207
    assert again[2] == answer
    assert again[1]["idempotent-replayed"] == "true"
    # The same key for another request: 422, nothing written; a bare token is the same key.
    other = [{"t": "2012-01-01T00:00:00Z", "key": "k", "v": 100}]
    status, headers, message = _post(last, key, secret, "/v1/multi/increment/", other, "m-1")
    assert status == 422
    assert headers["x-tempodb-error"] == "idempotency-key-reused"
    assert b"different request" in message
    assert _values(first, key, secret) == [2]
    # Another database may use the same key for its own request.
    key2, secret2 = create_key(store)
    assert _post(first, key2, secret2, "/v1/multi/increment/", other, '"m-1"')[0] == 200
    assert _values(first, key2, secret2) == [100]


MALFORMED = ['""', '"unterminated', "two words", "é", '"' + "x" * 256 + '"', '"a\\nb"']


def test_a_malformed_key_is_refused(embedded: Setup) -> None:
    servers, key, secret, _ = embedded
    body = [{"t": "2012-01-01T00:00:00Z", "v": 1}]
    for header in MALFORMED:
        status, _, message = _post(
            servers[0], key, secret, "/v1/series/key/k/increment/", body, header
        )
        assert status == 400, (header, message)
        assert b"Invalid Idempotency-Key" in message
    with Client(key, secret, servers[0].host, servers[0].port, secure=False) as client:
        assert client.get_series() == []


def test_a_key_held_by_a_write_in_progress_gets_409(pg_cluster: Cluster, pair: Setup) -> None:
    """Another transaction is applying a write with the key (here: a session that holds the
    key's lock, as the transaction of a server does): 409, nothing written; once it lets go,
    the write goes through."""
    servers, key, secret, _ = pair
    url = pg_cluster.url("idempotency")
    body = [{"t": "2012-01-01T00:00:00Z", "v": 1}]
    path = "/v1/series/key/k/increment/"
    with psycopg.connect(url, autocommit=True) as holder:
        row = holder.execute("SELECT id FROM databases WHERE key = %s", (key,)).fetchone()
        assert row is not None
        lock = int.from_bytes(b"tempoik", "big") & 0x7FFF_FFFF
        holder.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", (lock, f"{row[0]}:busy"))
        status, headers, message = _post(servers[1], key, secret, path, body, '"busy"')
        assert status == 409, message
        assert headers["x-tempodb-error"] == "idempotency-key-in-use"
        holder.execute("SELECT pg_advisory_unlock_all()")
    assert _post(servers[1], key, secret, path, body, '"busy"')[0] == 200
    assert _post(servers[0], key, secret, path, body, '"busy"')[1]["idempotent-replayed"]
    assert _values(servers[0], key, secret) == [1]


def test_keys_expire_after_the_servers_time_to_live(tmp_path: Path) -> None:
    store = data_args(tmp_path / "data")
    key, secret = create_key(store)
    server = ServerProcess.start(store, "--idempotency-hours", "0.0003")  # about 1 s
    try:
        body = [{"t": "2012-01-01T00:00:00Z", "v": 1}]
        path = "/v1/series/key/k/increment/"
        assert _post(server, key, secret, path, body, '"once"')[0] == 200
        assert _post(server, key, secret, path, body, '"once"')[1]["idempotent-replayed"]
        time.sleep(1.5)
        status, headers, _ = _post(server, key, secret, path, body, '"once"')
        assert status == 200
        assert "idempotent-replayed" not in headers
        assert _values(server, key, secret) == [2]
    finally:
        assert server.stop() == 0
