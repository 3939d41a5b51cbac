"""The batch writer against real servers: flush by size and by interval, backpressure,
rejected points, and a server that goes away mid-way."""

from __future__ import annotations

import datetime
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from scripted import Answer, scripted
from serverproc import ServerProcess, create_key, data_args
from tempodb import BatchWriteError, Client, RetryPolicy

#: Every test with the ``client`` fixture runs over HTTP and in-process (tests/conftest.py).
BOTH_TRANSPORTS = True
UTC = datetime.UTC
T0 = datetime.datetime(2012, 1, 1, tzinfo=UTC)
DAY = (T0, T0 + datetime.timedelta(days=1))


def _count(client: Client, keys: list[str]) -> int:
    return sum(len(d.data) for d in client.read(*DAY, interval="raw", keys=keys))


def _eventually(check: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return False


def test_flush_by_size(client: Client) -> None:
    keys = ["a", "b", "c"]
    with client.batch_writer(batch_size=10, flush_interval=3600) as writer:
        for i in range(25):
            writer.add(keys[i % 3], T0 + datetime.timedelta(minutes=i), i)
        # two full batches go out at once; the last five wait for the exit
        assert _eventually(lambda: _count(client, keys) == 20)
        time.sleep(0.2)
        assert _count(client, keys) == 20
    assert _count(client, keys) == 25
    assert [p.value for p in client.read_key("b", *DAY).data] == list(range(1, 25, 3))


def test_flush_by_interval(client: Client) -> None:
    with client.batch_writer(batch_size=1000, flush_interval=0.2) as writer:
        started = time.monotonic()
        writer.add("a", T0, 1.5)
        writer.add_id("an-id", T0, 2)
        assert _eventually(lambda: _count(client, ["a"]) == 1)
        assert time.monotonic() - started >= 0.15
        assert client.read_id("an-id", *DAY).data[0].value == 2


def test_big_series_and_increments(client: Client) -> None:
    with client.batch_writer(batch_size=3000, increment=True) as writer:
        for i in range(2000):  # one series with its own request, 40 sharing a multi request
            writer.add("big", T0 + datetime.timedelta(seconds=i), 1)
            if i % 50 == 0:
                writer.add(f"small{i // 50}", T0, 1)
        for i in range(2000):
            writer.add("big", T0 + datetime.timedelta(seconds=i), 2)
        writer.flush()
        assert {p.value for p in client.read_key("big", *DAY).data} == {3}
    assert len(client.get_series()) == 41


def test_explicit_flush_and_invalid_points(client: Client) -> None:
    writer = client.batch_writer(flush_interval=3600)
    with pytest.raises(ValueError, match="regex"):
        writer.add("a|b", T0, 1)
    with pytest.raises(ValueError, match="finite"):
        writer.add("a", T0, float("nan"))
    with pytest.raises(TypeError, match="number"):
        writer.add("a", T0, "1")  # type: ignore[arg-type]
    writer.add("a", T0, 1)
    writer.flush()
    assert _count(client, ["a"]) == 1
    writer.close()
    with pytest.raises(RuntimeError, match="closed"):
        writer.add("a", T0, 1)


def test_rejected_points_are_reported_and_the_rest_written(client: Client) -> None:
    client.create_series("taken")
    writer = client.batch_writer()
    writer.add("a", T0, 1)
    writer.add_id("taken", T0, 2)  # another series' key: only the server knows
    writer.add("a", T0 + datetime.timedelta(minutes=1), 3)
    with pytest.raises(BatchWriteError) as failure:
        writer.close()
    assert failure.value.points == [{"t": T0, "id": "taken", "v": 2}]
    assert failure.value.rejected[0][0] == failure.value.points[0]
    assert failure.value.error is None
    assert [p.value for p in client.read_key("a", *DAY).data] == [1, 3]


def test_an_id_that_is_another_series_key_fails_alone(client: Client) -> None:
    """20 good points and one by an unknown id that is another series' key: the 20 are
    written, the one is reported (issue 25, item 2)."""
    client.create_series("room.1")
    writer = client.batch_writer()
    for i in range(20):
        writer.add("good", T0 + datetime.timedelta(minutes=i), i)
    writer.add_id("room.1", T0, 1)
    with pytest.raises(BatchWriteError) as failure:
        writer.close()
    assert failure.value.points == [{"t": T0, "id": "room.1", "v": 1}]
    assert [p.value for p in client.read_key("good", *DAY).data] == list(range(20))
    assert client.read_key("room.1", *DAY).data == []


def test_a_bad_timestamp_string_refuses_its_point_alone(client: Client) -> None:
    """A bad timestamp string is refused when it is added, whatever the size of the chunk it
    would have gone in: the 600 other points of the series are written (issue 25, item 10)."""
    with client.batch_writer(batch_size=1000) as writer:
        for i in range(600):
            writer.add("big", T0 + datetime.timedelta(minutes=i), i)
            if i == 300:
                with pytest.raises(ValueError, match="invalid timestamp"):
                    writer.add("big", "2012-13-45T99:00:00Z", -1)
        writer.add("small", "2012-01-01T00:00:00Z", 1)
        with pytest.raises(ValueError, match="invalid timestamp"):
            writer.add("small", "not a time", 2)
    assert [p.value for p in client.read_key("big", *DAY).data] == list(range(600))
    assert [p.value for p in client.read_key("small", *DAY).data] == [1]


def test_backpressure_against_a_slow_server() -> None:
    """add() blocks while max_buffer points are buffered or in flight."""
    slow = Answer(200, delay=0.15)
    with scripted(otherwise=slow) as server:
        client = Client("k", "s", "127.0.0.1", server.server_address[1], secure=False)
        seen: list[int] = []
        started = time.monotonic()
        with client.batch_writer(batch_size=5, max_buffer=10, flush_interval=0.01) as writer:
            for i in range(40):
                writer.add("a", T0 + datetime.timedelta(seconds=i), i)
                with server.script.lock:
                    seen.append(i + 1 - server.script.points)
        elapsed = time.monotonic() - started
        assert server.script.points == 40
        assert max(seen) <= 10  # never more than max_buffer points waiting
        assert elapsed >= (40 - 10) / 5 * 0.15  # the producer was slowed to the server's pace


def test_server_going_away_reports_exactly_the_unwritten_points(tmp_path: Path) -> None:
    store = data_args(tmp_path / "data")
    key, secret = create_key(store)
    process = ServerProcess.start(store)
    client = Client(key, secret, process.host, process.port, secure=False)
    policy = RetryPolicy(retries=2, backoff=0.02)
    first = [(f"s{i % 4}", T0 + datetime.timedelta(seconds=i), i) for i in range(200)]
    second = [(f"s{i % 4}", T0 + datetime.timedelta(seconds=i), i) for i in range(200, 330)]
    reported: list[dict[str, Any]] = []
    raised = 0
    try:
        with client.batch_writer(batch_size=40, flush_interval=0.05, retries=policy) as writer:
            for point in first:
                writer.add(*point)
            writer.flush()
            assert process.stop() == 0
            for point in second:
                try:
                    writer.add(*point)
                except BatchWriteError as exc:  # the writer has stopped: this point and more
                    raised += 1
                    reported += exc.points
    except BatchWriteError as exc:
        raised += 1
        reported += exc.points
    assert raised
    expected = [{"t": t, "key": k, "v": v} for k, t, v in second]
    assert sorted(reported, key=lambda p: p["v"]) == expected  # each exactly once

    restarted = ServerProcess.start(store)
    try:
        with Client(key, secret, restarted.host, restarted.port, secure=False) as again:
            stored = {
                (d.series.key, p.ts, p.value)
                for d in again.read(*DAY, interval="raw")
                for p in d.data
            }
    finally:
        assert restarted.stop() == 0
    assert stored == set(first)


def test_writer_is_usable_from_several_threads(client: Client) -> None:
    with client.batch_writer(batch_size=100, max_buffer=200) as writer:

        def produce(name: str) -> None:
            for i in range(500):
                writer.add(name, T0 + datetime.timedelta(seconds=i), i)

        threads = [threading.Thread(target=produce, args=(f"t{n}",)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert _count(client, [f"t{n}" for n in range(4)]) == 2000


def test_increments_of_a_request_cut_by_a_killed_server_are_uncertain(tmp_path: Path) -> None:
    """The server is stopped (SIGSTOP) while a batch of increments is on its way, so the
    request is sent but not answered; then it is killed.  Those increments may or may not
    have been applied: they are reported as ``uncertain``, never as points to send again,
    and the points added after them as plain failures."""
    store = data_args(tmp_path / "data")
    key, secret = create_key(store)
    process = ServerProcess.start(store)
    client = Client(key, secret, process.host, process.port, secure=False)
    policy = RetryPolicy(retries=3, backoff=0.02)
    cut = [(f"c{i % 3}", T0 + datetime.timedelta(seconds=i), 1) for i in range(9)]
    later = [(f"c{i % 3}", T0 + datetime.timedelta(seconds=i), 1) for i in range(100, 104)]
    caught: list[BatchWriteError] = []
    try:
        writer = client.batch_writer(
            increment=True, batch_size=9, flush_interval=60, retries=policy
        )
        writer.add("warm", T0, 1)
        writer.flush()  # one increment applied, and the connection open
        os.kill(process.process.pid, signal.SIGSTOP)
        for point in cut:  # the ninth point fills the batch: it is sent at once
            writer.add(*point)
        time.sleep(0.5)  # the request is in the server's socket now
        process.process.kill()
        process.process.wait()
        try:
            for point in later:
                writer.add(*point)
        except BatchWriteError as exc:  # the writer has stopped
            caught.append(exc)
        try:
            writer.close()
        except BatchWriteError as exc:
            caught.append(exc)
    finally:
        if process.process.poll() is None:
            process.process.kill()
            process.process.wait()
        client.close()
    assert caught
    uncertain = [p for exc in caught for p in exc.uncertain]
    failed = [p for exc in caught for p in exc.points]
    assert sorted(uncertain, key=lambda p: p["t"]) == [
        {"t": t, "key": k, "v": v} for k, t, v in cut
    ]
    assert all(p["t"] >= later[0][1] for p in failed)  # none of the cut ones to resend
    assert all(p["v"] == 1 for p in failed)
