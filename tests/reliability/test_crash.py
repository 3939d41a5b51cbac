"""Crash durability: several clients write while the server is killed (SIGKILL) at random
moments and restarted on the same data, again and again.

Every request writes points that no other request writes (its own timestamps), with values
that name the request, through every write route (series, bulk, multi, and increments).  After
each restart the whole store is read back and checked:

* every point of every acknowledged request is there with its exact value and type;
* every request whose answer never came (it was in flight at the kill) is all or nothing;
* no point is there that no request wrote;
* a counter incremented by many requests is at least the acknowledged increments and at most
  those plus the ones in flight.

``pytest --cycles N`` sets the number of kills (20 by default) for long runs.
"""

from __future__ import annotations

import datetime
import http.client
import itertools
import os
import random
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from rawhttp import Raw

from serverproc import ServerProcess, create_key, data_args

CLIENTS = 6
T0 = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
T0_MS = int(T0.timestamp() * 1000)
#: Every request owns the timestamps [T0 + r * SPAN, T0 + (r + 1) * SPAN) ms.
SPAN = 8
COUNTER_TS = "2019-01-01T00:00:00.000Z"

Point = tuple[str, int, int | float]  # (series key, epoch ms, value)


def stamp(ms: int) -> str:
    when = T0 + datetime.timedelta(milliseconds=ms - T0_MS)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


@dataclass
class Request:
    """One write: its route, its body, the points it stores and whether it increments the
    shared counter."""

    path: str
    body: Any
    points: list[Point]
    counter: bool = False


def make_request(number: int, client: int) -> Request:
    """Request ``number`` (unique), varying routes; values spell the request number."""
    base = T0_MS + number * SPAN
    kind = number % 5
    if kind == 0:  # one series, three points, integer values
        key = f"series-{client}"
        points: list[Point] = [(key, base + i, number * 10 + i) for i in range(3)]
        body = [{"t": stamp(ts), "v": v} for _, ts, v in points]
        return Request(f"/v1/series/key/{key}/data/", body, points)
    if kind == 1:  # bulk: one timestamp, three series, float values
        points = [(f"bulk-{i}", base, number + i / 8) for i in range(3)]
        data = [{"key": key, "v": v} for key, _, v in points]
        return Request("/v1/data/", {"t": stamp(base), "data": data}, points)
    if kind == 2:  # multi: three series, three timestamps
        points = [(f"multi-{i}", base + i, number * 10 + i) for i in range(3)]
        body = [{"t": stamp(ts), "key": key, "v": v} for key, ts, v in points]
        return Request("/v1/multi/", body, points)
    if kind == 3:  # increments of fresh points (they start from 0) and of the shared counter
        points = [(f"inc-{client}", base + i, number + i) for i in range(2)]
        body = [{"t": stamp(ts), "v": v} for _, ts, v in points]
        return Request(f"/v1/series/key/inc-{client}/increment/", body, points)
    return Request(  # multi increment: the counter and a fresh point, one request
        "/v1/multi/increment/",
        [
            {"t": COUNTER_TS, "key": "counter", "v": 1},
            {"t": stamp(base), "key": "minc", "v": number},
        ],
        [("minc", base, number)],
        counter=True,
    )


@dataclass
class Ledger:
    """What the clients sent and what they were told."""

    acknowledged: list[Request] = field(default_factory=list)
    in_flight: list[Request] = field(default_factory=list)
    refused: list[tuple[Request, int, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    threads: list[threading.Thread] = field(default_factory=list)

    def join(self) -> None:
        """Wait for the clients, which stop at their first failed request."""
        for thread in self.threads:
            thread.join(timeout=30)
            assert not thread.is_alive(), "a client hangs after the kill"


def run_clients(server: ServerProcess, key: tuple[str, str], numbers: Iterator[int]) -> Ledger:
    """CLIENTS threads write until the server dies; each records every outcome."""
    ledger = Ledger()
    raw = Raw(server.host, server.port, key, timeout=10)
    take = threading.Lock()

    def client(index: int) -> None:
        conn = raw.connection()
        while True:
            with take:
                request = make_request(next(numbers), index)
            try:
                reply = raw.request("POST", request.path, request.body, conn=conn)
            except (OSError, http.client.HTTPException):
                with ledger.lock:
                    ledger.in_flight.append(request)
                return
            with ledger.lock:
                if reply.status == 200:
                    ledger.acknowledged.append(request)
                else:
                    ledger.refused.append((request, reply.status, reply.text))

    ledger.threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for thread in ledger.threads:
        thread.start()
    return ledger


def read_store(raw: Raw) -> tuple[dict[tuple[str, int], int | float], int]:
    """Every point of every series, and the counter's value (0 when absent)."""
    listed = raw.request("GET", "/v1/series/")
    assert listed.status == 200, listed.text
    found: dict[tuple[str, int], int | float] = {}
    counter = 0
    for series in listed.json():
        key = series["key"]
        reply = raw.request(
            "GET",
            f"/v1/series/key/{key}/data/?start=2000-01-01&end=2100-01-01&interval=raw",
        )
        assert reply.status == 200, reply.text
        for point in reply.json()["data"]:
            when = datetime.datetime.fromisoformat(point["t"].replace("Z", "+00:00"))
            ms = round(when.timestamp() * 1000)
            if key == "counter":
                counter = point["v"]
            else:
                found[(key, ms)] = point["v"]
    return found, counter


def check(
    found: dict[tuple[str, int], int | float],
    acknowledged: list[Request],
    in_flight: list[Request],
    context: str,
) -> list[Request]:
    """Assert the rules of the module docstring; the in-flight requests that were applied."""
    expected: dict[tuple[str, int], int | float] = {}
    for request in acknowledged:
        for key, ts, value in request.points:
            assert (key, ts) in found, f"{context}: acknowledged point {key} {ts} lost"
            got = found[(key, ts)]
            wrong = f"{context}: acknowledged point {key} {ts} is {got!r}, not {value!r}"
            assert got == value, wrong
            assert type(got) is type(value), wrong
            expected[(key, ts)] = value
    applied = []
    for request in in_flight:
        present = [(key, ts) in found for key, ts, _ in request.points]
        assert all(present) or not any(present), f"{context}: half of {request.path} applied"
        if all(present):
            applied.append(request)
            for key, ts, value in request.points:
                assert found[(key, ts)] == value, f"{context}: in-flight point {key} {ts} wrong"
                expected[(key, ts)] = value
    unexpected = set(found) - set(expected)
    assert not unexpected, f"{context}: points nobody wrote: {sorted(unexpected)[:5]}"
    return applied


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_args(request: pytest.FixtureRequest, tmp_path: Path) -> list[str]:
    if request.param == "sqlite":
        return data_args(tmp_path / "data")
    cluster = request.getfixturevalue("pg_cluster")
    return ["--database-url", cluster.create_database("crash")]


def settle(ledger: Ledger, rng: random.Random, first_within: float = 30.0) -> None:
    """Wait for the clients' first acknowledgement (a busy machine may take a while to serve
    the first requests after a restart), then a random 50-500 ms more before the kill."""
    deadline = time.monotonic() + first_within
    while not ledger.acknowledged and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(rng.uniform(0.05, 0.5))


def test_acknowledged_writes_survive_sigkill(
    store_args: list[str], pytestconfig: pytest.Config
) -> None:
    cycles: int = pytestconfig.getoption("--cycles")
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    credentials = create_key(store_args)
    numbers = itertools.count()
    acknowledged: list[Request] = []
    settled: list[Request] = []  # in-flight requests found applied after an earlier restart
    counter_low = counter_high = 0
    points_checked = 0
    server = ServerProcess.start(store_args)
    try:
        for cycle in range(cycles):
            context = f"seed {seed}, cycle {cycle}"
            ledger = run_clients(server, credentials, numbers)
            settle(ledger, rng)
            server.process.send_signal(signal.SIGKILL)
            server.process.wait()
            ledger.join()
            server.stop()
            assert not ledger.refused, f"{context}: refused {ledger.refused[:3]}"
            assert ledger.acknowledged, f"{context}: nothing was acknowledged before the kill"
            acknowledged += ledger.acknowledged
            server = ServerProcess.start(store_args)
            found, counter = read_store(Raw(server.host, server.port, credentials))
            applied = check(found, acknowledged + settled, ledger.in_flight, context)
            settled += applied
            counter_low += sum(r.counter for r in ledger.acknowledged)
            counter_high += sum(r.counter for r in ledger.acknowledged + ledger.in_flight)
            assert counter_low <= counter <= counter_high, f"{context}: counter {counter}"
            counter_low = counter_high = counter
            points_checked += sum(len(r.points) for r in ledger.acknowledged)
    finally:
        server.stop()
    print(
        f"\ncrash test: {cycles} SIGKILLs, {len(acknowledged)} acknowledged requests, "
        f"{points_checked} acknowledged points checked after each restart, 0 lost "
        f"(seed {seed})"
    )
