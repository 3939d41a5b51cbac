"""Retries against the real server, wherever it can produce the condition: 429 from
``--rate-limit``, 503 with ``Retry-After: 1`` from a full ``--queue``, and a connection cut by
SIGKILL after the request was sent (the server is stopped with SIGSTOP first, so the request is
certainly in its socket and certainly not applied), then the server restarted on the same port.

What no real server produces (other Retry-After values and forms, a 500 or 502, an answer that
comes too late) stays with the scripted server in tests/client/test_retry.py."""

from __future__ import annotations

import asyncio
import base64
import datetime
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from serverproc import ServerProcess, create_key, data_args
from tempodb import (
    AsyncClient,
    Client,
    DataPoint,
    NotFoundError,
    RetryPolicy,
    ServerError,
    TooManyRequestsError,
)

T0 = datetime.datetime(2012, 1, 1, tzinfo=datetime.UTC)
DAY = (T0, T0 + datetime.timedelta(days=1))
POINTS = [DataPoint(T0, 1)]
KINDS = ["sync", "async"]
#: Quick backoff: only a Retry-After of the server makes a retry wait a second.
FAST = RetryPolicy(retries=3, backoff=0.01, max_backoff=0.05)


def call(
    kind: str,
    server: ServerProcess,
    key: str,
    secret: str,
    method: str,
    *args: Any,
    retries: Any = FAST,
) -> Any:
    """``method(*args)`` on a Client or an AsyncClient for the server."""
    options: dict[str, Any] = {"secure": False, "timeout": 10, "retries": retries}
    if kind == "sync":
        with Client(key, secret, server.host, server.port, **options) as client:
            return getattr(client, method)(*args)

    async def run() -> Any:
        async with AsyncClient(key, secret, server.host, server.port, **options) as client:
            return await getattr(client, method)(*args)

    return asyncio.run(run())


def values(server: ServerProcess, key: str, secret: str, series: str = "k") -> list[float]:
    """The series' values ([] when it does not exist: nothing ever reached it)."""
    with Client(key, secret, server.host, server.port, secure=False) as client:
        try:
            return [p.value for p in client.read_key(series, *DAY, interval="raw").data]
        except NotFoundError:
            return []


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str, str]]:
    store = data_args(tmp_path_factory.mktemp("limited") / "data")
    key, secret = create_key(store)
    process = ServerProcess.start(store, "--rate-limit", "4")
    yield process, key, secret
    assert process.stop() == 0


def test_rate_limited_calls_succeed_with_retries(limited: tuple[ServerProcess, str, str]) -> None:
    process, key, secret = limited
    with Client(key, secret, process.host, process.port, secure=False) as client:
        for _ in range(8):  # twice the burst: some calls get 429 and wait for Retry-After
            client.increment_key("hits", [DataPoint(datetime.datetime(2012, 1, 1), 1)])
        data = client.read_key("hits", datetime.date(2012, 1, 1), datetime.date(2012, 1, 2))
    assert [p.value for p in data.data] == [8]  # every increment applied exactly once


def test_rate_limit_without_retries_raises(limited: tuple[ServerProcess, str, str]) -> None:
    process, key, secret = limited

    async def hammer() -> TooManyRequestsError:
        options: dict[str, Any] = {"secure": False, "retries": 0}
        async with AsyncClient(key, secret, process.host, process.port, **options) as c:
            for _ in range(20):
                try:
                    await c.get_series()
                except TooManyRequestsError as exc:
                    return exc
        raise AssertionError("never limited")

    error = asyncio.run(hammer())
    assert error.status == 429
    assert error.retry_after is not None
    assert error.retry_after >= 1
    # and the policy can refuse to wait that long
    impatient = RetryPolicy(retries=3, max_retry_after=0.5)

    def hammer_sync() -> None:
        with Client(key, secret, process.host, process.port, secure=False, retries=impatient) as c:
            for _ in range(20):
                c.get_series()

    with pytest.raises(TooManyRequestsError):
        hammer_sync()


# -- 503 from a full queue -----------------------------------------------------------------


@pytest.fixture(scope="module")
def busy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str, str]]:
    """A server that takes one request at a time."""
    store = data_args(tmp_path_factory.mktemp("busy") / "data")
    key, secret = create_key(store)
    process = ServerProcess.start(store, "--queue", "1")
    yield process, key, secret
    assert process.stop() == 0


@contextmanager
def slot_held(server: ServerProcess, key: str, secret: str) -> Iterator[socket.socket]:
    """The one request slot, held by a request whose body never comes (until closed)."""
    token = base64.b64encode(f"{key}:{secret}".encode()).decode()
    sock = socket.create_connection((server.host, server.port), timeout=10)
    sock.sendall(
        f"POST /v1/series/key/held/data/ HTTP/1.1\r\nHost: {server.host}\r\n"
        f"Authorization: Basic {token}\r\nContent-Type: application/json\r\n"
        "Content-Length: 1000\r\n\r\n[".encode()
    )
    time.sleep(0.2)  # admitted, reading its body
    try:
        yield sock
    finally:
        sock.close()


@pytest.mark.parametrize("kind", KINDS)
def test_503_without_retries_says_retry_after(
    busy: tuple[ServerProcess, str, str], kind: str
) -> None:
    server, key, secret = busy
    with slot_held(server, key, secret), pytest.raises(ServerError) as failure:
        call(kind, server, key, secret, "increment_key", "busy", POINTS, retries=0)
    assert failure.value.status == 503
    assert failure.value.retry_after == 1
    assert values(server, key, secret, "busy") == []  # a 503 did nothing


@pytest.mark.parametrize("kind", KINDS)
def test_503_is_retried_after_retry_after_and_applied_once(
    busy: tuple[ServerProcess, str, str], kind: str
) -> None:
    server, key, secret = busy
    series = f"once-{kind}"
    with slot_held(server, key, secret) as held:
        threading.Timer(0.3, held.close).start()  # the slot frees up before the retry
        started = time.monotonic()
        call(kind, server, key, secret, "increment_key", series, POINTS)
        elapsed = time.monotonic() - started
    assert elapsed >= 1.0  # the server's Retry-After, not the policy's 10 ms backoff
    assert values(server, key, secret, series) == [1]


def test_503_retries_run_out(busy: tuple[ServerProcess, str, str]) -> None:
    server, key, secret = busy
    with slot_held(server, key, secret), pytest.raises(ServerError) as failure:
        call("sync", server, key, secret, "get_series", retries=RetryPolicy(retries=1))
    assert failure.value.status == 503


# -- a connection cut by SIGKILL -------------------------------------------------------------


@contextmanager
def killed_mid_request(tmp_path: Path) -> Iterator[tuple[Any, str, str, list[ServerProcess]]]:
    """Yields ``(cut, key, secret, servers)``: ``cut(fn)`` runs ``fn(server)`` in a thread
    while the server is stopped, kills it once the request is in its socket, restarts it on
    the same port and returns what ``fn`` returned or raised; ``servers[-1]`` is the new one."""
    store = data_args(tmp_path / "data")
    key, secret = create_key(store)
    servers = [ServerProcess.start(store)]

    def cut(fn: Any) -> Any:
        first = servers[0]
        outcome: list[Any] = []

        def run() -> None:
            try:
                outcome.append(fn(first))
            except Exception as exc:
                outcome.append(exc)

        os.kill(first.process.pid, signal.SIGSTOP)
        thread = threading.Thread(target=run)
        thread.start()
        time.sleep(0.4)  # sent: the request waits in the stopped server's socket
        first.process.kill()
        first.process.wait()
        servers.append(ServerProcess.start(store, "--port", str(first.port)))
        thread.join(30)
        assert outcome
        return outcome[0]

    try:
        yield cut, key, secret, servers
    finally:
        for server in servers:
            if server.process.poll() is None:
                server.stop()


#: Patient enough to reach the restarted server, even on a loaded machine (about a minute).
PATIENT = RetryPolicy(retries=60, backoff=0.3, max_backoff=1.0)


@pytest.mark.parametrize(
    ("kind", "method", "args"),
    [
        ("sync", "increment_key", ("k", POINTS)),
        ("async", "increment_key", ("k", POINTS)),
        ("sync", "increment_multi", ([{"t": "2012-01-01T00:00:00Z", "key": "k", "v": 1}],)),
    ],
)
def test_an_increment_is_repeated_with_its_key_after_the_server_is_killed(
    tmp_path: Path, kind: str, method: str, args: tuple[Any, ...]
) -> None:
    """The increment was sent and its answer never came: it is sent again with the same
    Idempotency-Key to the restarted server, and counts once."""
    with killed_mid_request(tmp_path) as (cut, key, secret, servers):
        outcome = cut(lambda s: call(kind, s, key, secret, method, *args, retries=PATIENT))
        assert not isinstance(outcome, Exception), outcome
        assert values(servers[-1], key, secret) == [1]


def test_points_without_timestamps_are_repeated_with_their_key_after_the_server_is_killed(
    tmp_path: Path,
) -> None:
    """The server stamps them on arrival, so a plain second try could write them twice; with
    their key they are written once."""
    with killed_mid_request(tmp_path) as (cut, key, secret, servers):
        outcome = cut(
            lambda s: call(
                "sync", s, key, secret, "write_multi", [{"key": "k", "v": 1}], retries=PATIENT
            )
        )
        assert not isinstance(outcome, Exception), outcome
        now = datetime.datetime.now(datetime.UTC)
        hour = datetime.timedelta(hours=1)
        with Client(key, secret, servers[-1].host, servers[-1].port, secure=False) as client:
            data = client.read_key("k", now - hour, now + hour, interval="raw").data
        assert [p.value for p in data] == [1]


@pytest.mark.parametrize("kind", KINDS)
def test_a_write_is_repeated_after_the_server_is_killed(tmp_path: Path, kind: str) -> None:
    with killed_mid_request(tmp_path) as (cut, key, secret, servers):
        outcome = cut(
            lambda s: call(kind, s, key, secret, "write_key", "k", POINTS, retries=PATIENT)
        )
        assert not isinstance(outcome, Exception), outcome
        assert values(servers[-1], key, secret) == [1]
