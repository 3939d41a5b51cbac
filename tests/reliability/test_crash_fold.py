"""Crash durability of the write head and its fold: the crash test's clients write (series,
bulk, multi, increments of fresh points and of one shared counter) to a server whose head
folds into blocks all the time (after 3 points of a series, or 20 ms), while the server is
killed (SIGKILL) at random moments and restarted on the same data, again and again.  On both
stores the head is a table of rows beside the blocks, folded by a transaction of its own; the
embedded store's plain last blocks are also compressed in place once full, which blocks of 4
points make happen every few writes.

After each restart the whole store is read back and checked as in ``test_crash``: every
acknowledged point is there with its exact value and type, every request in flight at the kill
is all or nothing, no point is there that no request wrote, and the counter (whose point is
folded into a block and incremented again from the head, over and over) is at least the
acknowledged increments and at most those plus the ones in flight: a fold interrupted by the
kill loses nothing and shows nothing twice.

``pytest --cycles N`` sets the number of kills (20 by default).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import random
import signal
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from rawhttp import Raw
from test_crash import Request, check, read_store, run_clients, settle

from serverproc import ServerProcess, create_key, data_args
from tempodb.storage.blocks import TS_STEP
from tempodb.storage.sqlite import FILE_NAME

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


@pytest.fixture
def database_url(request: pytest.FixtureRequest) -> str:
    cluster = request.getfixturevalue("pg_cluster")
    return str(cluster.create_database("crashfold"))


@dataclass
class Run:
    """What ``crash_cycles`` leaves: the running server and what was acknowledged."""

    server: ServerProcess
    credentials: tuple[str, str]
    acknowledged: list[Request]
    settled: list[Request]
    counter: int
    mid_fold: int
    seed: int


def crash_cycles(
    store_args: list[str], server_args: tuple[str, ...], cycles: int, killed: Callable[[], bool]
) -> Run:
    """Write, SIGKILL and restart ``cycles`` times, checking the whole store after each
    restart as ``test_crash`` does; ``killed`` runs after each kill and says whether it
    caught a fold half done.  The server is left running for the caller's last checks."""
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    credentials = create_key(store_args)
    numbers = itertools.count()
    run = Run(ServerProcess.start(store_args, *server_args), credentials, [], [], 0, 0, seed)
    counter_high = 0
    try:
        for cycle in range(cycles):
            context = f"seed {seed}, cycle {cycle}"
            ledger = run_clients(run.server, credentials, numbers)
            settle(ledger, rng)
            run.server.process.send_signal(signal.SIGKILL)
            run.server.process.wait()
            ledger.join()
            run.server.stop()
            run.mid_fold += killed()
            assert not ledger.refused, f"{context}: refused {ledger.refused[:3]}"
            assert ledger.acknowledged, f"{context}: nothing was acknowledged before the kill"
            run.acknowledged += ledger.acknowledged
            run.server = ServerProcess.start(store_args, *server_args)
            found, counter = read_store(Raw(run.server.host, run.server.port, credentials))
            run.settled += check(found, run.acknowledged + run.settled, ledger.in_flight, context)
            low = run.counter + sum(r.counter for r in ledger.acknowledged)
            counter_high = low + sum(r.counter for r in ledger.in_flight)
            assert low <= counter <= counter_high, f"{context}: counter {counter}"
            run.counter = counter
    except BaseException:
        run.server.stop()
        raise
    return run


@pytest.mark.postgres
def test_sigkill_during_folds_loses_and_doubles_nothing(
    database_url: str, pytestconfig: pytest.Config
) -> None:
    """PostgreSQL: a head that folds after 3 points or 20 ms."""
    cycles: int = pytestconfig.getoption("--cycles")

    def killed() -> bool:
        in_head, in_blocks = counts(database_url)
        return in_head > 0 and in_blocks > 0

    run = crash_cycles(["--database-url", database_url], HEAD, cycles, killed)
    try:
        time.sleep(0.5)  # the restarted server folds what the last kill left in the head
        assert counts(database_url)[0] == 0, "the head was not folded after the last restart"
        found, counter = read_store(Raw(run.server.host, run.server.port, run.credentials))
        check(found, run.acknowledged + run.settled, [], f"seed {run.seed}, after the fold")
        assert counter == run.counter
    finally:
        run.server.stop()
    assert run.mid_fold > 0, "no kill found points both in the head and in blocks"
    print(
        f"\ncrash-fold test: {cycles} SIGKILLs with the head folding, {len(run.acknowledged)} "
        f"acknowledged requests checked after each restart, 0 lost (seed {run.seed})"
    )


def plain_and_folded(data: Path) -> tuple[int, int]:
    """Blocks of the embedded store still in the plain codes (heads growing in place) and
    blocks folded (compressed), straight from the file."""
    with contextlib.closing(sqlite3.connect(data / FILE_NAME)) as conn:
        row = conn.execute(
            "SELECT sum(fmt & ? = 0), sum(fmt & ? != 0) FROM block", (TS_STEP, TS_STEP)
        ).fetchone()
    return int(row[0] or 0), int(row[1] or 0)


def test_sigkill_during_folds_of_the_embedded_store(
    tmp_path: Path, pytestconfig: pytest.Config
) -> None:
    """SQLite: blocks of 4 points, so that the plain last block of a series fills and is
    compressed in place (a new one started) by every few folds of the head."""
    cycles: int = pytestconfig.getoption("--cycles")
    data = tmp_path / "data"

    def killed() -> bool:
        plain, folded = plain_and_folded(data)
        return plain > 0 and folded > 0

    run = crash_cycles(data_args(data), (*HEAD, "--block-points", "4"), cycles, killed)
    run.server.stop()
    assert run.mid_fold > 0, "no kill found both plain and folded blocks"
    print(
        f"\ncrash-fold test (embedded): {cycles} SIGKILLs with blocks of 4 points, "
        f"{len(run.acknowledged)} acknowledged requests checked after each restart, 0 lost "
        f"(seed {run.seed})"
    )


def embedded_counts(data: Path) -> tuple[int, int]:
    """Rows in the embedded store's head and points in its blocks, straight from the file."""
    with contextlib.closing(sqlite3.connect(data / FILE_NAME)) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM head), (SELECT coalesce(sum(n), 0) FROM block)"
        ).fetchone()
    return int(row[0]), int(row[1])


def test_sigkill_during_head_folds_of_the_embedded_store(
    tmp_path: Path, pytestconfig: pytest.Config
) -> None:
    """SQLite: a head that folds after 3 points or 20 ms, into blocks of 4 points."""
    cycles: int = pytestconfig.getoption("--cycles")
    data = tmp_path / "data"

    def killed() -> bool:
        in_head, in_blocks = embedded_counts(data)
        return in_head > 0 and in_blocks > 0

    run = crash_cycles(data_args(data), (*HEAD, "--block-points", "4"), cycles, killed)
    try:
        time.sleep(0.5)  # the restarted server folds what the last kill left in the head
        assert embedded_counts(data)[0] == 0, "the head was not folded after the last restart"
        found, counter = read_store(Raw(run.server.host, run.server.port, run.credentials))
        check(found, run.acknowledged + run.settled, [], f"seed {run.seed}, after the fold")
        assert counter == run.counter
    finally:
        run.server.stop()
    assert run.mid_fold > 0, "no kill found points both in the head and in blocks"
    print(
        f"\ncrash-fold test (embedded head): {cycles} SIGKILLs with the head folding, "
        f"{len(run.acknowledged)} acknowledged requests checked after each restart, 0 lost "
        f"(seed {run.seed})"
    )
