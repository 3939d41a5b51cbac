"""Retries against the real server's overload answers: 429 from ``--rate-limit``."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Iterator
from typing import Any

import pytest

from serverproc import ServerProcess, create_key, data_args
from tempodb import AsyncClient, Client, DataPoint, RetryPolicy, TooManyRequestsError


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
