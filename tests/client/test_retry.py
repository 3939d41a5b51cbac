"""The retry policy, the same in Client and AsyncClient, where no real server can produce the
condition: against a scripted HTTP server on a real socket that counts the requests it gets.

What the real server produces is tested against it in tests/integration/test_retry_server.py:
503 with ``Retry-After: 1`` from a full ``--queue`` (retried after it, applied once), 429 from
``--rate-limit``, and connections cut by SIGKILL (increments and unstamped points not repeated,
writes repeated).  Kept here: Retry-After values the server never sends (0, 7, 120 s), 500 and
502 (not retried), an answer later than the client's timeout, a count of the attempts, and the
policy's arithmetic."""

from __future__ import annotations

import asyncio
import datetime
import re
import socket
import threading
import time
from typing import Any

import pytest

from scripted import Answer, scripted
from tempodb import (
    AsyncClient,
    Client,
    DataPoint,
    InvalidRequestError,
    NotFoundError,
    RetryPolicy,
    ServerError,
    TempoDBConnectionError,
    TooManyRequestsError,
)
from tempodb.retry import parse_retry_after

FAST = RetryPolicy(retries=3, backoff=0.01, max_backoff=0.05)
POINTS = [DataPoint(datetime.datetime(2012, 1, 1), 1)]
KINDS = ["sync", "async"]


def call(
    kind: str, port: int, method: str, *args: Any, retries: Any = FAST, timeout: float = 5
) -> Any:
    """``method(*args)`` on a Client or an AsyncClient for 127.0.0.1:port."""
    options: dict[str, Any] = {"secure": False, "timeout": timeout, "retries": retries}
    if kind == "sync":
        with Client("key", "secret", "127.0.0.1", port, **options) as client:
            return getattr(client, method)(*args)

    async def run() -> Any:
        async with AsyncClient("key", "secret", "127.0.0.1", port, **options) as client:
            return await getattr(client, method)(*args)

    return asyncio.run(run())


def port_of(server: Any) -> int:
    return int(server.server_address[1])


@pytest.mark.parametrize("kind", KINDS)
def test_retries_run_out(kind: str) -> None:
    busy = Answer(503, b"busy", {"Retry-After": "0"})
    with scripted(otherwise=busy) as server:
        with pytest.raises(ServerError) as failure:
            call(kind, port_of(server), "get_series")
        assert failure.value.status == 503
        assert failure.value.retry_after == 0
        assert len(server.script.requests) == 1 + FAST.retries


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("status", "error"),
    [(400, InvalidRequestError), (404, NotFoundError), (500, ServerError), (502, ServerError)],
)
def test_other_errors_are_not_retried(kind: str, status: int, error: type[Exception]) -> None:
    with scripted(otherwise=Answer(status, b"no")) as server:
        with pytest.raises(error):
            call(kind, port_of(server), "write_key", "k", POINTS)
        assert len(server.script.requests) == 1


@pytest.mark.parametrize("kind", KINDS)
def test_zero_retries(kind: str) -> None:
    with scripted(otherwise=Answer(429, b"slow down", {"Retry-After": "7"})) as server:
        with pytest.raises(TooManyRequestsError) as failure:
            call(kind, port_of(server), "get_series", retries=0)
        assert failure.value.retry_after == 7
        assert len(server.script.requests) == 1


@pytest.mark.parametrize("kind", KINDS)
def test_a_longer_retry_after_than_allowed_ends_the_retries(kind: str) -> None:
    with scripted(otherwise=Answer(503, b"", {"Retry-After": "120"})) as server:
        with pytest.raises(ServerError) as failure:
            call(kind, port_of(server), "get_series")
        assert failure.value.retry_after == 120
        assert len(server.script.requests) == 1


@pytest.mark.parametrize("kind", KINDS)
def test_increment_is_repeated_with_its_key_after_a_read_timeout(kind: str) -> None:
    """The answer is late: the increment may have been applied, so it is sent again with the
    same Idempotency-Key (the server applies it at most once per key)."""
    slow = Answer(200, delay=1.5)
    with scripted(slow, Answer(200)) as server:
        options = {"secure": False, "timeout": 0.5, "retries": FAST}

        def increment() -> None:
            if kind == "sync":
                Client("k", "s", "127.0.0.1", port_of(server), **options).increment_key("k", POINTS)
                return

            async def run() -> None:
                async with AsyncClient("k", "s", "127.0.0.1", port_of(server), **options) as c:
                    await c.increment_key("k", POINTS)

            asyncio.run(run())

        increment()
        keys = server.script.keys
        assert len(keys) == 2
        assert keys[0] is not None
        assert keys[0] == keys[1]
        assert re.fullmatch(r'"[A-Za-z0-9_-]{24}"', keys[0])
        # The next call is another request: another key.
        increment()
        assert len(set(server.script.keys)) == 2


@pytest.mark.parametrize("kind", KINDS)
def test_a_late_write_without_a_key_is_repeated_and_one_without_timestamps_is_not(
    kind: str,
) -> None:
    """Writes of stamped points are idempotent: repeated without a key.  Points without a
    timestamp are stamped by the server on arrival: they carry a key to be repeated."""
    with scripted(Answer(200, delay=1.5), Answer(200)) as server:
        call(kind, port_of(server), "write_key", "k", POINTS, timeout=0.5)
        assert server.script.keys == [None, None]
    with scripted(Answer(200, delay=1.5), Answer(200)) as server:
        call(kind, port_of(server), "write_multi", [{"key": "k", "v": 1}], timeout=0.5)
        keys = server.script.keys
        assert len(keys) == 2
        assert keys[0] is not None
        assert keys[0] == keys[1]


@pytest.mark.parametrize("kind", KINDS)
def test_a_keyed_write_is_repeated_after_an_unknown_outcome(kind: str) -> None:
    """A 500 ``outcome-unknown`` (the database went away during the commit) is retried with
    the key, or without one for a write that is idempotent anyway; another 500 is not."""
    unknown = Answer(500, b"cut off", {"X-TempoDB-Error": "outcome-unknown"})
    with scripted(unknown, Answer(200)) as server:
        call(kind, port_of(server), "increment_key", "k", POINTS)
        assert len(server.script.keys) == 2
        assert server.script.keys[0] == server.script.keys[1]
    with scripted(unknown, Answer(200)) as server:
        call(kind, port_of(server), "write_key", "k", POINTS)
        assert server.script.keys == [None, None]
    with scripted(Answer(500, b"bug"), Answer(200)) as server, pytest.raises(ServerError):
        call(kind, port_of(server), "increment_key", "k", POINTS)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("kind", KINDS)
def test_increment_is_retried_when_the_connection_was_refused(kind: str) -> None:
    """Nothing listens at first: the request certainly was not applied, so it is retried."""
    port = _free_port()
    ready = threading.Event()
    stop = threading.Event()

    def serve_later() -> None:
        time.sleep(0.3)
        with scripted(port=port) as server:
            holder.append(server)
            ready.set()
            stop.wait(10)

    holder: list[Any] = []
    thread = threading.Thread(target=serve_later)
    thread.start()
    try:
        call(kind, port, "increment_key", "k", POINTS, retries=RetryPolicy(retries=8, backoff=0.1))
        assert ready.is_set()
        assert len(holder[0].script.requests) == 1
    finally:
        stop.set()
        thread.join()


def test_refused_connection_is_not_sent() -> None:
    port = _free_port()
    with pytest.raises(TempoDBConnectionError) as failure:
        call("sync", port, "increment_key", "k", POINTS, retries=0)
    assert failure.value.sent is False
    with pytest.raises(TempoDBConnectionError) as failure:
        call("async", port, "increment_key", "k", POINTS, retries=0)
    assert failure.value.sent is False


def test_backoff_doubles_with_jitter() -> None:
    policy = RetryPolicy(retries=5, backoff=1.0, max_backoff=4.0)
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 4.0), (5, 4.0)]:
        waits = [policy.wait(attempt) for _ in range(200)]
        assert all(w is not None and ceiling / 2 <= w <= ceiling for w in waits)
        assert len(set(waits)) > 100  # jittered
    assert policy.wait(6) is None
    assert 3.0 <= (policy.wait(1, retry_after=3.0) or 0) <= 4.0
    assert policy.wait(1, retry_after=61.0) is None
    assert RetryPolicy.of(0).wait(1) is None
    with pytest.raises(ValueError, match="retries"):
        RetryPolicy(retries=-1)
    with pytest.raises(TypeError):
        RetryPolicy.of("3")  # type: ignore[arg-type]


def test_retry_after_header_forms() -> None:
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    now = datetime.datetime(2015, 10, 21, 7, 28, tzinfo=datetime.UTC).timestamp()
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now=now) == 30.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now=now) == 0.0
