"""The retention pass under ``kill -9``: a real ``tempodb serve`` runs passes every 20 ms
while its retention is shortened step by step, and is killed (SIGKILL) at random moments,
again and again.  Afterwards every series holds, between its tier summaries and its raw
points, exactly the points written: nothing kept is lost, nothing is counted twice, and
every summary equals the summary of the original points of its bucket.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from serverproc import ServerProcess, create_key, data_args, tempodb_command
from tempodb import tier
from tempodb.storage.base import SeriesRef, Store, WriteBatch
from tempodb.storage.sqlite import SQLiteStore

DAY = 86_400_000
#: Enough series that a pass (a transaction each) outlasts the kill's random delay: with 60,
#: on a quiet machine, the pass after each start was over before the kill came.
SERIES = 240
STEP = 5 * 60_000


def open_store(backend: str, where: Any) -> Store:
    if backend == "sqlite":
        return SQLiteStore(where)
    from tempodb.storage.postgres import PostgresStore

    return PostgresStore(where, min_size=0)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Any, list[str]]:
    if request.param == "sqlite":
        folder = tmp_path / "data"
        return "sqlite", folder, data_args(folder)
    cluster = request.getfixturevalue("pg_cluster")
    url = cluster.create_database(f"crash_retention_{os.getpid()}_{int(time.time()) % 100000}")
    return "postgres", url, ["--database-url", url]


def test_kill_9_during_retention_passes(
    backend: tuple[str, Any, list[str]], request: pytest.FixtureRequest
) -> None:
    kind, where, store_args = backend
    cycles = max(6, int(request.config.getoption("--cycles")) // 2)
    key, _ = create_key(store_args)
    now = int(time.time() * 1000)
    begin = (now - 10 * DAY) // DAY * DAY
    ts = np.arange(begin, now - DAY, STEP, dtype=np.int64)
    rng = np.random.default_rng(3)
    written: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    store = open_store(kind, where)
    try:
        db = next(d for d in store.list_databases() if d.key == key)
        for number in range(SERIES):
            values = rng.integers(-1000, 1000, ts.size).astype(np.float64)
            # Every series has its own gaps, so that the passes cut blocks at different places.
            keep = rng.random(ts.size) < 0.9
            name = f"s{number}"
            written[name] = (ts[keep], values[keep])
            batch = WriteBatch(
                [SeriesRef("key", name)],
                np.zeros(int(keep.sum()), np.int32),
                ts[keep],
                values[keep],
                np.ones(int(keep.sum()), np.bool_),
            )
            store.write_points(db.id, batch)
    finally:
        store.close()
    random.seed(11)
    kills = halfway = 0
    for cycle in range(cycles):
        # Shorten the retention a little each cycle (9 days down to 2), so passes have work.
        days = 9 - 7 * cycle / max(1, cycles - 1)
        minutes = int(days * 24 * 60)
        subprocess.run(
            tempodb_command("keys", "retention", key, f"{minutes}m", *store_args),
            check=True,
            capture_output=True,
        )
        process = ServerProcess.start(store_args, "--retention-every", "0.02")
        time.sleep(random.uniform(0.0, 0.6))
        os.kill(process.process.pid, signal.SIGKILL)
        process.process.wait()
        if process.process.stdout:
            process.process.stdout.close()
        kills += 1
        # Whatever the kill interrupted, every series is whole; was it in the middle?
        cutoff = (int(time.time() * 1000) - minutes * 60_000) // tier.TIER_MS * tier.TIER_MS
        _, done = check(open_store(kind, where), key, written, begin, now, cutoff)
        halfway += 0 < done < SERIES
    # One last pass to the end, without a kill.
    process = ServerProcess.start(store_args, "--retention-every", "0.02")
    time.sleep(1.5)
    assert process.stop() == 0
    assert kills == cycles

    moved, _ = check(open_store(kind, where), key, written, begin, now, None)
    # The final pass moved about 8 of the 9 days (2 days' retention from now).
    assert moved > SERIES * 7 * DAY // STEP * 0.85
    # Some kills hit a pass in the middle (some series done, others not yet).
    assert halfway, "no kill landed during a pass"


def check(
    store: Store,
    key: str,
    written: dict[str, tuple[np.ndarray, np.ndarray]],
    begin: int,
    now: int,
    cutoff: int | None,
) -> tuple[int, int]:
    """Check that every series holds exactly its points between tier and raw, and each
    summary is that of its bucket's original points; (points in the tier, series with no
    raw point before ``cutoff``)."""
    try:
        db = next(d for d in store.list_databases() if d.key == key)
        moved = done = 0
        for name, (stamps, values) in written.items():
            found = store.lookup_series(db.id, "key", name)
            assert found is not None
            summaries, points = store.read_tiered(db.id, found.id, begin - DAY, now + DAY)
            moved += summaries.points()
            # Raw points: exactly the originals from where the tier ends.
            raw_from = int(summaries.ts[-1]) + tier.TIER_MS if len(summaries) else begin
            kept = stamps >= raw_from
            assert points.ts.tolist() == stamps[kept].tolist(), name
            assert points.values.tolist() == values[kept].tolist(), name
            # Summaries: each one that of the original points of its bucket, none twice.
            expected = tier.summarize(stamps[~kept], values[~kept], np.ones((~kept).sum(), bool))
            assert summaries.ts.tolist() == expected.ts.tolist(), name
            assert summaries.count.tolist() == expected.count.tolist(), name
            assert summaries.isum.tolist() == expected.isum.tolist(), name
            assert summaries.first.tolist() == expected.first.tolist(), name
            assert summaries.last.tolist() == expected.last.tolist(), name
            assert summaries.low.tolist() == expected.low.tolist(), name
            assert summaries.high.tolist() == expected.high.tolist(), name
            assert np.allclose(summaries.ss, expected.ss), name
            if cutoff is not None and (not len(points) or int(points.ts[0]) >= cutoff):
                done += 1
        return moved, done
    finally:
        store.close()
