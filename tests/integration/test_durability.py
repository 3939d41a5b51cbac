"""Acknowledged means stored: kill the server the moment it answers, start it again, and
every acknowledged point is there; a rejected request left nothing behind."""

from __future__ import annotations

import datetime
import signal
import threading
from pathlib import Path

import pytest

from serverproc import ServerProcess, create_key, data_args
from tempodb import Client, DataPoint, InvalidRequestError

START = datetime.datetime(2012, 1, 1)


def test_acknowledged_writes_survive_a_kill(tmp_path: Path) -> None:
    store = data_args(tmp_path / "data")
    key, secret = create_key(store)
    server = ServerProcess.start(store)
    acknowledged: list[int] = []

    def writer(thread: int) -> None:
        with Client(key, secret, server.host, server.port, secure=False) as client:
            for batch in range(40):
                ts = START + datetime.timedelta(minutes=thread * 1000 + batch)
                client.increment_key("counter", [DataPoint(ts, 1)])
                client.write_key(f"series-{thread}", [DataPoint(ts, batch)])
                acknowledged.append(thread * 1000 + batch)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    server.process.send_signal(signal.SIGKILL)
    assert server.stop() == -signal.SIGKILL

    server = ServerProcess.start(store)
    try:
        with Client(key, secret, server.host, server.port, secure=False) as client:
            end = START + datetime.timedelta(days=10)
            counter = client.read_key("counter", START, end, interval="raw").data
            assert len(counter) == len(acknowledged) == 160
            assert {p.value for p in counter} == {1}
            for t in range(4):
                data = client.read_key(f"series-{t}", START, end, interval="raw").data
                assert [p.value for p in data] == list(range(40))
            with pytest.raises(InvalidRequestError):
                client.write_key("rejected", [DataPoint(START, 1), DataPoint(START, "x")])  # type: ignore[arg-type]
            assert [s.key for s in client.get_series(keys=["rejected"])] == []
    finally:
        server.stop()
