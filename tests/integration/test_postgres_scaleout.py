"""Two ``tempodb serve`` processes on one PostgreSQL database: any request may go to any server.

Every test of the ``pair`` runs twice: on one PostgreSQL, and on a Citus cluster (a coordinator
and two workers on loopback, prepared by ``tempodb citus setup``; skipped without Citus).
"""

from __future__ import annotations

import argparse
import base64
import datetime
import itertools
import json
import subprocess
import threading
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import psycopg
import pytest

from pg import CitusCluster, Cluster
from serverproc import ServerProcess, create_key, tempodb_command
from tempodb import AuthenticationError, Client, DataPoint, NotFoundError
from tempodb.cli.stores import describe_store
from tempodb.storage.postgres import SCHEMA_VERSION

pytestmark = pytest.mark.postgres

T0 = datetime.datetime(2012, 1, 1, tzinfo=datetime.UTC)
FAR_START = datetime.datetime(2000, 1, 1)
FAR_END = datetime.datetime(2030, 1, 1)
_numbers = itertools.count()


@dataclass
class Pair:
    """Two servers on one database, with an admin key made by ``tempodb keys create``."""

    servers: tuple[ServerProcess, ServerProcess]
    store: list[str]
    admin: tuple[str, str]

    def new_key(self) -> tuple[str, str]:
        return create_key(self.store)

    def clients(self, key: str, secret: str) -> tuple[Client, Client]:
        a, b = self.servers
        return (
            Client(key, secret, a.host, a.port, secure=False),
            Client(key, secret, b.host, b.port, secure=False),
        )


@pytest.fixture(scope="module", params=["postgres", pytest.param("citus", marks=pytest.mark.citus)])
def pair(request: pytest.FixtureRequest) -> Iterator[Pair]:
    if request.param == "citus":
        citus: CitusCluster = request.getfixturevalue("citus_cluster")
        url = citus.create_database("scaleout")
        setup = subprocess.run(
            tempodb_command("citus", "setup", "--database-url", url),
            capture_output=True,
            text=True,
        )
        assert setup.returncode == 0, setup.stderr
        assert "series_lock: distributed by sid" in setup.stdout
    else:
        url = request.getfixturevalue("pg_cluster").create_database("scaleout")
    store = ["--database-url", url]
    admin = create_key(store, "--admin", "--name", "admin")
    # Small blocks and a small head folded at once: writers race with folds and block writes.
    tiny = ("--block-points", "16", "--head-points", "8", "--fold-after", "0.05")
    a = ServerProcess.start(store, *tiny)
    b = ServerProcess.start(store, *tiny)
    yield Pair((a, b), store, admin)
    assert a.stop() == 0
    assert b.stop() == 0


@pytest.fixture
def clients(pair: Pair) -> Iterator[tuple[Client, Client]]:
    """A client on each server, with the credentials of one fresh database."""
    one, two = pair.clients(*pair.new_key())
    with one, two:
        yield one, two


def run_threads(targets: Sequence[Callable[[], None]]) -> None:
    errors: list[BaseException] = []

    def wrap(target: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                target()
            except BaseException as exc:  # re-raised in the test thread
                errors.append(exc)

        return run

    threads = [threading.Thread(target=wrap(t)) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def minutes(count: int, value: Callable[[int], float | int]) -> list[DataPoint]:
    return [DataPoint(T0 + datetime.timedelta(minutes=i), value(i)) for i in range(count)]


def values(client: Client, key: str) -> list[tuple[datetime.datetime, float | int]]:
    data = client.read_key(key, FAR_START, FAR_END, interval="raw").data
    return [(p.ts, p.value) for p in data]


def test_write_through_one_read_through_the_other(clients: tuple[Client, Client]) -> None:
    one, two = clients
    one.create_series("meta", name="n", tags=["t"], attributes={"a": "1"})
    one.write_key("k", minutes(5000, lambda i: i * 0.5))
    one.write_multi([{"t": T0, "key": "m", "v": 7}])
    got = values(two, "k")
    assert len(got) == 5000
    assert got[1234] == (T0 + datetime.timedelta(minutes=1234), 617.0)
    assert values(two, "m") == [(T0, 7)]
    [meta] = two.get_series(tags=["t"])
    assert (meta.key, meta.name, meta.attributes) == ("meta", "n", {"a": "1"})
    two.write_key("k", [DataPoint(T0, 99)])  # last writer wins, whichever server it used
    assert values(one, "k")[0] == (T0, 99)


def test_increments_through_both_servers_add_up_exactly(pair: Pair) -> None:
    """Eight threads, four on each server, increment the same points of four series (on
    Citus, their points and their metadata spread over the nodes) while the servers fold the
    head into blocks: requests of 70 points of one series (straight into the blocks) and of
    10 points of all four series in either order (into the head); the first requests create
    the series.  Every increment counts exactly once, and none fails."""
    key, secret = pair.new_key()
    threads, rounds = 8, 15
    stamps = [T0 + datetime.timedelta(minutes=5 * i) for i in range(70)]
    names = ["a", "b", "c", "d"]

    def worker(n: int) -> Callable[[], None]:
        def run() -> None:
            client = pair.clients(key, secret)[n % 2]
            with client:
                for r in range(rounds):
                    if r % 3 == 0:
                        for k in names:
                            client.increment_key(k, [DataPoint(t, n + 1) for t in stamps])
                    else:  # every series in one request, in either order
                        order = names if (n + r) % 2 else names[::-1]
                        result = client.increment_multi(
                            [{"t": t, "key": k, "v": n + 1} for k in order for t in stamps[:10]]
                        )
                        assert result is None

        return run

    run_threads([worker(n) for n in range(threads)])
    each = sum(range(1, threads + 1))
    large = len(range(0, rounds, 3)) * each
    expected = [(t, rounds * each if i < 10 else large) for i, t in enumerate(stamps)]
    one, two = pair.clients(key, secret)
    with one, two:
        for k in names:
            assert values(one, k) == expected
            assert values(two, k) == values(one, k)
            assert all(isinstance(v, int) for _, v in values(two, k))


def test_delete_through_one_gone_through_the_other(clients: tuple[Client, Client]) -> None:
    one, two = clients
    one.write_key("k", minutes(100, lambda i: i))
    one.write_key("doomed", minutes(3, lambda i: i))
    two.delete_key("k", T0 + datetime.timedelta(minutes=10), T0 + datetime.timedelta(minutes=90))
    assert len(values(one, "k")) == 20
    summary = one.delete_series(keys=["doomed"])
    assert summary.deleted == 1
    assert [s.key for s in two.get_series()] == ["k"]
    with pytest.raises(NotFoundError):
        two.read_key("doomed", FAR_START, FAR_END, interval="raw")


def test_a_key_created_on_one_server_works_on_the_other(pair: Pair) -> None:
    a, b = pair.servers
    token = base64.b64encode(":".join(pair.admin).encode()).decode()
    request = urllib.request.Request(
        f"{a.url}/v1/database/",
        data=json.dumps({"name": "made on a"}).encode(),
        headers={"Authorization": f"Basic {token}"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        created = json.load(response)
    with Client(created["id"], created["password"], b.host, b.port, secure=False) as client:
        client.write_key("k", [DataPoint(T0, 1)])
        assert values(client, "k") == [(T0, 1)]


@pytest.mark.parametrize("command", ["revoke", "delete"])
def test_a_revoked_or_deleted_key_fails_on_every_server_at_the_next_request(
    pair: Pair, command: str
) -> None:
    """README: a revoked key stops working with the next request, on every server of the
    database, though both have just accepted it (nothing may cache credentials by default)."""
    key, secret = pair.new_key()
    one, two = pair.clients(key, secret)
    with one, two:
        for _ in range(3):  # both servers have seen the key, again and again
            for client in (one, two):
                client.write_key("k", [DataPoint(T0, 1)])
        done = subprocess.run(
            tempodb_command("keys", command, key, *pair.store), capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        for client in (one, two):
            with pytest.raises(AuthenticationError):
                client.get_series()
            with pytest.raises(AuthenticationError):
                client.write_key("k", [DataPoint(T0, 2)])
        other = pair.clients(*pair.new_key())
        for client in other:  # other keys go on working
            with client:
                client.write_key("k", [DataPoint(T0, 1)])


def test_servers_started_together_on_an_empty_database(pg_cluster: Cluster) -> None:
    url = pg_cluster.create_database(f"together{next(_numbers)}")
    store = ["--database-url", url]
    started: list[ServerProcess] = []
    lock = threading.Lock()

    def start() -> None:
        server = ServerProcess.start(store)
        with lock:
            started.append(server)

    try:
        run_threads([start] * 3)
        key, secret = create_key(store)
        for server in started:
            with Client(key, secret, server.host, server.port, secure=False) as client:
                client.increment_key("k", [DataPoint(T0, 1)])
        with Client(key, secret, started[0].host, started[0].port, secure=False) as client:
            assert values(client, "k") == [(T0, 3)]
        with psycopg.connect(url) as conn:
            found = conn.execute("SELECT count(*) FROM tempodb_schema").fetchone()
            assert found == (SCHEMA_VERSION,)
    finally:
        for server in started:
            assert server.stop() == 0


def test_the_banner_never_shows_the_password(pair: Pair) -> None:
    url = pair.store[1]
    password = url.split(":")[2].split("@")[0]
    process = subprocess.Popen(
        tempodb_command("serve", "--database-url", url, "--port", "0"),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
    finally:
        process.terminate()
        process.wait(timeout=20)
        if process.stdout:
            process.stdout.close()
    assert "serving http://" in banner
    assert password not in banner
    assert ":***@127.0.0.1" in banner
    described = describe_store(
        argparse.Namespace(data=None, database_url="host=h password=s3cret dbname=d")
    )
    assert "s3cret" not in described


@pytest.mark.parametrize("pair", [pytest.param("citus", marks=pytest.mark.citus)], indirect=True)
def test_one_database_spreads_over_every_worker(pair: Pair) -> None:
    """On Citus, the points of one database are distributed by series: on every worker."""
    url = pair.store[1]
    with psycopg.connect(url) as conn:
        workers = conn.execute("SELECT count(*) FROM citus_get_active_worker_nodes()").fetchone()
    key, secret = pair.new_key()
    one, _ = pair.clients(key, secret)
    with one:
        one.write_multi(
            [{"t": T0, "key": f"s{i}", "v": i} for i in range(40)]
            + [
                {"t": T0 + datetime.timedelta(minutes=m), "key": "large", "v": m}
                for m in range(200)
            ]
        )
        assert values(one, "large")[:2] == [(T0, 0), (T0 + datetime.timedelta(minutes=1), 1)]
    with psycopg.connect(url) as conn:
        nodes = conn.execute(
            "SELECT count(DISTINCT nodeport) FROM citus_shards WHERE table_name IN "
            "('head'::regclass, 'block'::regclass) AND shardid IN (SELECT shardid FROM "
            "run_command_on_shards('head', 'SELECT count(*) FROM %s') WHERE result::int > 0 "
            "UNION SELECT shardid FROM run_command_on_shards('block', 'SELECT count(*) FROM %s') "
            "WHERE result::int > 0)"
        ).fetchone()
    assert workers is not None
    assert nodes == (workers[0],)


def test_series_created_by_concurrent_large_increments_add_up_exactly(pair: Pair) -> None:
    """Eight threads increment the same 70 points of new series at once, round after round
    (straight into the blocks; the first request of each series creates it): on Citus the new
    series' row and its blocks are on different nodes, where the requests that found the series
    created must still see its blocks (no unique violation, nothing lost)."""
    key, secret = pair.new_key()
    threads, rounds = 8, 6
    stamps = [T0 + datetime.timedelta(minutes=i) for i in range(70)]
    start = threading.Barrier(threads)

    def worker(n: int) -> Callable[[], None]:
        def run() -> None:
            client = pair.clients(key, secret)[n % 2]
            with client:
                for r in range(rounds):
                    start.wait(timeout=60)
                    for k in range(3):
                        client.increment_key(f"new{r}-{k}", [DataPoint(t, n + 1) for t in stamps])

        return run

    run_threads([worker(n) for n in range(threads)])
    total = sum(range(1, threads + 1))
    one, _ = pair.clients(key, secret)
    with one:
        for r in range(rounds):
            for k in range(3):
                assert values(one, f"new{r}-{k}") == [(t, total) for t in stamps]
