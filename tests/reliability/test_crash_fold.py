"""Crash durability of the write head and its fold: the crash test's clients write (series,
bulk, multi, increments of fresh points and of one shared counter) to a server whose head
folds into blocks all the time (after 3 points of a series, or 20 ms), while the server is
killed (SIGKILL) at random moments and restarted on the same data, again and again.

After each restart the whole store is read back and checked as in ``test_crash``: every
acknowledged point is there with its exact value and type, every request in flight at the kill
is all or nothing, no point is there that no request wrote, and the counter (whose point is
folded into a block and incremented again from the head, over and over) is at least the
acknowledged increments and at most those plus the ones in flight: a fold interrupted by the
kill loses nothing and shows nothing twice.

``pytest --cycles N`` sets the number of kills (20 by default).
"""

from __future__ import annotations

import itertools
import os
import random
import signal
import time

import psycopg
import pytest
from rawhttp import Raw
from test_crash import Request, check, read_store, run_clients

from serverproc import ServerProcess, create_key

#: A head that folds all the time.
HEAD = ("--head-points", "3", "--fold-after", "0.02")


def counts(url: str) -> tuple[int, int]:
    """Rows in the head and points in blocks, straight from the database."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM head), (SELECT coalesce(sum(n), 0) FROM block)"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


@pytest.fixture(params=[pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    cluster = request.getfixturevalue("pg_cluster")
    return str(cluster.create_database("crashfold"))


def test_sigkill_during_folds_loses_and_doubles_nothing(
    database_url: str, pytestconfig: pytest.Config
) -> None:
    cycles: int = pytestconfig.getoption("--cycles")
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    store_args = ["--database-url", database_url]
    credentials = create_key(store_args)
    numbers = itertools.count()
    acknowledged: list[Request] = []
    settled: list[Request] = []
    counter_low = counter_high = 0
    mid_fold = 0  # kills that left points both in the head and in blocks
    server = ServerProcess.start(store_args, *HEAD)
    try:
        for cycle in range(cycles):
            context = f"seed {seed}, cycle {cycle}"
            ledger = run_clients(server, credentials, numbers)
            time.sleep(rng.uniform(0.05, 0.5))
            server.process.send_signal(signal.SIGKILL)
            server.process.wait()
            ledger.join()
            server.stop()
            in_head, in_blocks = counts(database_url)
            mid_fold += in_head > 0 and in_blocks > 0
            assert not ledger.refused, f"{context}: refused {ledger.refused[:3]}"
            assert ledger.acknowledged, f"{context}: nothing was acknowledged before the kill"
            acknowledged += ledger.acknowledged
            server = ServerProcess.start(store_args, *HEAD)
            found, counter = read_store(Raw(server.host, server.port, credentials))
            settled += check(found, acknowledged + settled, ledger.in_flight, context)
            counter_low += sum(r.counter for r in ledger.acknowledged)
            counter_high += sum(r.counter for r in ledger.acknowledged + ledger.in_flight)
            assert counter_low <= counter <= counter_high, f"{context}: counter {counter}"
            counter_low = counter_high = counter
        time.sleep(0.5)  # the restarted server folds what the last kill left in the head
        assert counts(database_url)[0] == 0, "the head was not folded after the last restart"
        found, counter = read_store(Raw(server.host, server.port, credentials))
        check(found, acknowledged + settled, [], f"seed {seed}, after the last fold")
        assert counter == counter_low
    finally:
        server.stop()
    assert mid_fold > 0, "no kill found points both in the head and in blocks"
    print(
        f"\ncrash-fold test: {cycles} SIGKILLs with the head folding, {len(acknowledged)} "
        f"acknowledged requests checked after each restart, 0 lost (seed {seed})"
    )
