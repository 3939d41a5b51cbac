"""What is particular to the SQLite backend: the file, its schema, durability and block layout."""

from __future__ import annotations

import gc
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tempodb.storage.base import (
    KeyConflict,
    NewSeries,
    SchemaTooNew,
    SeriesFilter,
    SeriesRef,
    StorageError,
    WriteBatch,
    hash_secret,
)
from tempodb.storage.blocks import encode
from tempodb.storage.sqlite import FILE_NAME, MIGRATIONS, SCHEMA_VERSION, SQLiteStore
from tempodb.storage.sqlite.fold import (
    DENSE_POINTS,
    FOLD_BATCH,
    MIN_STEP,
    SPARSE_AFTER,
    STEP_SECONDS,
    Ledger,
    StepSize,
)

FAR = 2**63 - 1


def batch(k: str, ts: object, values: object, is_int: object = None) -> WriteBatch:
    ts_arr = np.asarray(ts, np.int64).reshape(-1)
    values_arr = np.broadcast_to(np.asarray(values, np.float64), ts_arr.shape).copy()
    flags = values_arr == np.trunc(values_arr) if is_int is None else is_int
    return WriteBatch(
        [SeriesRef("key", k)],
        np.zeros(ts_arr.shape[0], np.int32),
        ts_arr,
        values_arr,
        np.broadcast_to(np.asarray(flags, np.bool_), ts_arr.shape).copy(),
    )


def open_db(store: SQLiteStore) -> int:
    credentials = store.create_database("t")
    database = store.authenticate(credentials.key, credentials.secret)
    assert database is not None
    return database.id


def blocks(path: Path) -> list[tuple[int, int, int, int, int]]:
    """(sid, first, last, n, fmt) of every block, read behind the store's back."""
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT sid, first, last, n, fmt FROM block ORDER BY sid, first")
        return [(r[0], r[1], r[2], r[3], r[4]) for r in rows]
    finally:
        conn.close()


def check_layout(store: SQLiteStore, cap: int) -> None:
    """The block invariants of the module docstring, and the head's: every head row of a
    series is later than every point in its blocks."""
    rows = blocks(store.path)
    for (sid, first, last, n, _), nxt in zip(rows, [*rows[1:], None][: len(rows)], strict=True):
        assert 1 <= n <= cap
        assert first <= last
        assert (n == 1) == (first == last)
        if nxt is not None and nxt[0] == sid:
            assert last < nxt[1], "blocks of a series overlap"
    ends = {sid: last for sid, _, last, _, _ in rows}
    conn = sqlite3.connect(store.path)
    try:
        firsts = conn.execute("SELECT sid, min(ts) FROM head GROUP BY sid").fetchall()
    finally:
        conn.close()
    for sid, first in firsts:
        assert first > ends.get(sid, -(2**63)), "a head row is not after its series' blocks"


# -- the file and its schema ---------------------------------------------------------------------


def test_creates_the_folder_and_the_schema(tmp_path: Path) -> None:
    folder = tmp_path / "a" / "b"
    with SQLiteStore(folder) as store:
        assert store.path == folder / FILE_NAME
        open_db(store)
    conn = sqlite3.connect(folder / FILE_NAME)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"databases", "series", "series_tag", "series_attr", "block", "head"} <= tables
    finally:
        conn.close()


def test_migrates_an_empty_database_file(tmp_path: Path) -> None:
    sqlite3.connect(tmp_path / FILE_NAME).close()  # an empty file at version 0
    with SQLiteStore(tmp_path) as store:
        assert store.list_databases() == []
        open_db(store)
        assert len(store.list_databases()) == 1


def test_a_version_2_file_with_points_upgrades_and_reads_the_same(tmp_path: Path) -> None:
    """A file as tempodb wrote it before block generations (schema 2, built here from the
    migrations of that time) opens, migrates to version 3 and reads back the same points,
    through the cache of decoded blocks too; writes after the upgrade read back right."""
    conn = sqlite3.connect(tmp_path / FILE_NAME, isolation_level=None)
    for statement in (*MIGRATIONS[0], *MIGRATIONS[1]):
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 2")
    conn.execute("INSERT INTO databases (key, secret_hash) VALUES ('k', ?)", (hash_secret("s"),))
    conn.execute("INSERT INTO series (db, id, key) VALUES (1, 'old', 'old')")
    ts = np.arange(10_000, dtype=np.int64) * 60_000
    values = np.round(np.sin(np.arange(10_000) / 50.0) * 100, 2)
    for lo in range(0, 10_000, 4096):
        block = encode(ts[lo : lo + 4096], values[lo : lo + 4096], np.zeros(4096, np.bool_)[:])
        if lo + 4096 >= 10_000:  # the last block as the old code left it: plain
            block = encode(ts[lo:], values[lo:], np.zeros(10_000 - lo, np.bool_), compress=False)
        conn.execute(
            "INSERT INTO block (sid, first, last, n, fmt, ts, vals, mask) "
            "VALUES (1, ?, ?, ?, ?, ?, ?, ?)",
            block,
        )
    conn.close()
    with SQLiteStore(tmp_path) as store:
        database = store.authenticate("k", "s")
        assert database is not None
        for _ in range(2):  # decoded, then from the cache
            points = store.read_points(database.id, "old", -FAR, FAR)
            assert points.ts.tolist() == ts.tolist()
            assert points.values.tolist() == values.tolist()
            assert not points.is_int.any()
        store.write_points(database.id, batch("old", [ts[-1] + 60_000], [1.5]))
        store.write_points(database.id, batch("old", [ts[5000]], [7.25]))
        points = store.read_points(database.id, "old", -FAR, FAR)
        assert len(points) == 10_001
        assert points.values[5000] == 7.25
        assert points.values[-1] == 1.5
        check_layout(store, 4096)
    conn = sqlite3.connect(tmp_path / FILE_NAME)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        gens = [r[0] for r in conn.execute("SELECT gen FROM block ORDER BY first")]
        assert gens[0] == 0  # untouched since the upgrade
        assert gens[1] != 0  # rewritten (5000)
        # The appended point is a row of the write head (schema 5), after the blocks.
        assert conn.execute("SELECT sid, ts, v, is_int FROM head").fetchall() == [
            (1, int(ts[-1]) + 60_000, 1.5, 0)
        ]
    finally:
        conn.close()


def test_the_read_cache_keeps_to_its_size(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path, block_points=1000, read_cache_mb=0.1) as store:
        db = open_db(store)
        ts = np.arange(20_000, dtype=np.int64)
        store.write_points(db, batch("k", ts, ts.astype(np.float64)))
        record = store.lookup_series(db, "key", "k")
        assert record is not None
        for lo in range(0, 20_000, 3000):
            part = store.read_points(db, record.id, lo, lo + 2500)
            assert part.ts.tolist() == list(range(lo, min(lo + 2500, 20_000)))
        cache = store._blocks
        assert cache is not None
        assert 0 < cache.size <= 0.1 * 2**20
        assert len(cache) <= 7  # 17 kB per block of 1,000 points
    with SQLiteStore(tmp_path, read_cache_mb=0) as store:
        assert store._blocks is None
        database = store.list_databases()[0]
        assert len(store.find_series(database.id, SeriesFilter())) == 1


def test_refuses_a_newer_schema(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path) as store:
        open_db(store)
    conn = sqlite3.connect(tmp_path / FILE_NAME)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(SchemaTooNew, match=f"schema version {SCHEMA_VERSION + 1}"):
        SQLiteStore(tmp_path)
    conn = sqlite3.connect(tmp_path / FILE_NAME)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1
    finally:
        conn.close()


def test_validates_its_configuration(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(StorageError, match="not a folder"):
        SQLiteStore(tmp_path / "file")
    with pytest.raises(ValueError, match="block_points"):
        SQLiteStore(tmp_path / "x", block_points=0)


def test_a_closed_store_refuses_work(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path)
    db = open_db(store)
    store.close()
    store.close()  # idempotent
    with pytest.raises(StorageError, match="closed"):
        store.write_points(db, batch("k", [1], [1]))
    with pytest.raises(StorageError, match="closed"):
        store.list_databases()


def test_secrets_are_stored_only_hashed(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path) as store:
        credentials = store.create_database("t")
    data = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    assert credentials.key.encode() in data
    assert credentials.secret.encode() not in data


# -- durability ----------------------------------------------------------------------------------


def test_data_survives_reopening(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path) as store:
        credentials = store.create_database("t")
        database = store.authenticate(credentials.key, credentials.secret)
        assert database is not None
        store.create_series(database.id, "k", "name", ["t"], {"a": "b"})
        store.write_points(database.id, batch("k", np.arange(10_000), 1.5))
    with SQLiteStore(tmp_path) as store:
        reopened = store.authenticate(credentials.key, credentials.secret)
        assert reopened == database
        [record] = store.find_series(database.id, SeriesFilter(tags=("t",)))
        assert (record.key, record.name, record.attributes) == ("k", "name", {"a": "b"})
        points = store.read_points(database.id, record.id, -FAR, FAR)
        assert points.ts.tolist() == list(range(10_000))


def test_acknowledged_writes_survive_a_crash(tmp_path: Path) -> None:
    """A process that dies right after write_points returns (no close, no checkpoint)."""
    script = f"""
import os, numpy as np
from tempodb.storage.base import SeriesRef, WriteBatch
from tempodb.storage.sqlite import SQLiteStore
store = SQLiteStore({str(tmp_path)!r})
c = store.create_database("crash")
db = store.authenticate(c.key, c.secret).id
for i in range(20):
    ts = np.arange(i * 100, i * 100 + 100, dtype=np.int64)
    store.write_points(db, WriteBatch([SeriesRef("key", "k")], np.zeros(100, np.int32), ts,
                                      ts.astype(np.float64), np.ones(100, np.bool_)))
print(c.key, c.secret, flush=True)
os._exit(0)
"""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    key, secret = out.stdout.split()
    assert (tmp_path / f"{FILE_NAME}-wal").exists()
    with SQLiteStore(tmp_path) as store:
        database = store.authenticate(key, secret)
        assert database is not None
        record = store.lookup_series(database.id, "key", "k")
        assert record is not None
        points = store.read_points(database.id, record.id, -FAR, FAR)
        assert points.ts.tolist() == list(range(2000))
        assert points.is_int.all()


# -- the writer ----------------------------------------------------------------------------------


def test_a_failing_request_does_not_affect_others_committed_with_it(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path) as store:
        db = open_db(store)
        store.create_series(db, "taken")
        errors: list[BaseException] = []

        def worker(n: int) -> None:
            for i in range(30):
                try:
                    if i % 3 == 0:
                        store.create_series(db, "taken")
                    else:
                        store.write_points(db, batch(f"s{n}", [i], [i]), increment=True)
                except KeyConflict:
                    pass
                except BaseException as exc:
                    errors.append(exc)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        expected = [i for i in range(30) if i % 3]
        for n in range(8):
            record = store.lookup_series(db, "key", f"s{n}")
            assert record is not None
            assert store.read_points(db, record.id, -FAR, FAR).ts.tolist() == expected
        assert len(store.find_series(db, SeriesFilter())) == 9


def test_the_writers_cache_follows_other_connections(tmp_path: Path) -> None:
    """A second store on the same file (as another process would be) deletes, recreates and
    appends behind the first one's back; the first one's small writes still land right."""
    with SQLiteStore(tmp_path) as first, SQLiteStore(tmp_path) as second:
        db = open_db(first)
        for i in range(3):  # the first store now knows the series and its last block
            first.write_points(db, batch("k", [i], [i]))
        old = first.lookup_series(db, "key", "k")
        assert old is not None
        second.write_points(db, batch("k", [3, 4], [3.5, 4.5]))  # the last block changes
        first.write_points(db, batch("k", [5], [5]))
        assert first.read_points(db, old.id, -FAR, FAR).values.tolist() == [0, 1, 2, 3.5, 4.5, 5]
        assert second.delete_series(db, SeriesFilter(keys=("k",))) == 1
        first.write_points(db, batch("k", [6], [6]))  # creates the series anew
        new = first.lookup_series(db, "key", "k")
        assert new is not None
        assert new.id != old.id
        assert first.read_points(db, new.id, -FAR, FAR).ts.tolist() == [6]
        assert first.read_points(db, old.id, -FAR, FAR).ts.tolist() == []
        check_layout(first, 4096)


def test_a_rolled_back_request_leaves_nothing_in_the_writers_cache(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path) as store:
        db = open_db(store)
        store.create_series(db, "taken")
        refs = [SeriesRef("key", "fresh"), SeriesRef("id", "taken")]
        bad = WriteBatch(
            refs, np.array([0, 1], np.int32), np.array([1, 1]), np.ones(2), np.ones(2, np.bool_)
        )
        store.write_points(db, batch("other", [1], [1]))  # same transaction as the bad one
        with pytest.raises(KeyConflict):
            store.write_points(db, bad)
        assert store.lookup_series(db, "key", "fresh") is None
        for i in range(3):
            store.write_points(db, batch("fresh", [i], [i]))
        record = store.lookup_series(db, "key", "fresh")
        assert record is not None
        assert store.read_points(db, record.id, -FAR, FAR).ts.tolist() == [0, 1, 2]
        assert len(store.find_series(db, SeriesFilter())) == 3


def test_small_appends_grow_the_last_block_in_place(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path, direct_points=1) as store:
        db = open_db(store)
        for i in range(300):
            store.write_points(db, batch("ints", [i * 1000], [i]))
            store.write_points(db, batch("floats", [i * 1000], [i / 4], False))
            store.write_points(db, batch("wide", [i * 2**33], [2**40 + i]))
        layout = blocks(store.path)
        assert [b[3] for b in layout] == [256, 44] * 3
        # Compressed once full, plain while last: u32 offsets + int32 / float64 / int64-wide.
        assert [b[4] for b in layout[1::2]] == [0x15, 0x01, 0x10]
        for k, values in (
            ("ints", list(range(300))),
            ("floats", [i / 4 for i in range(300)]),
            ("wide", [2**40 + i for i in range(300)]),
        ):
            record = store.lookup_series(db, "key", k)
            assert record is not None
            points = store.read_points(db, record.id, -FAR, FAR)
            assert points.values.tolist() == values
            assert points.is_int.all() == (k != "floats")
        check_layout(store, 4096)


def test_reader_connections_go_with_their_threads(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path, direct_points=1) as store:
        db = open_db(store)

        def read() -> None:
            assert store.find_series(db, SeriesFilter()) == []

        threads = [threading.Thread(target=read) for _ in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        gc.collect()
        assert len(store._readers) <= 1  # at most this thread's


# -- block layout (``direct_points=1``: every write straight to the blocks, no head) -------------


def test_appends_fill_the_last_block_then_start_new_ones(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path, block_points=100, direct_points=1) as store:
        db = open_db(store)
        for i in range(0, 1050, 35):
            store.write_points(db, batch("k", np.arange(i, i + 35) * 60_000, 1.0))
        assert [b[3] for b in blocks(store.path)] == [100] * 10 + [50]
        check_layout(store, 100)


def test_small_appends_after_a_big_block_start_a_new_one(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path, direct_points=1) as store:
        db = open_db(store)
        store.write_points(db, batch("k", np.arange(1000) * 60_000, 1.5))
        for i in range(1000, 1300):
            store.write_points(db, batch("k", [i * 60_000], [2.5]))
        layout = blocks(store.path)
        # The big block is compressed once appends leave it; the new tail fills to 256 first.
        assert [b[3] for b in layout] == [1000, 256, 44]
        assert [b[4] & 0x02 for b in layout] == [0x02, 0x02, 0]
        check_layout(store, 4096)
        sid = store.find_series(db, SeriesFilter())[0].id
        points = store.read_points(db, sid, -FAR, FAR)
        assert points.ts.tolist() == (np.arange(1300) * 60_000).tolist()
        assert points.values.tolist() == [1.5] * 1000 + [2.5] * 300


def test_inserts_into_full_blocks_split_them(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path, block_points=100, direct_points=1) as store:
        db = open_db(store)
        store.write_points(db, batch("k", np.arange(1000) * 10, 1.0))
        assert [b[3] for b in blocks(store.path)] == [100] * 10
        store.write_points(db, batch("k", [1015], [2.0]))  # inside the second block
        assert [b[3] for b in blocks(store.path)] == [100, 50, 51] + [100] * 8
        store.write_points(db, batch("k", [-5], [2.0]))  # before the first block
        assert [b[3] for b in blocks(store.path)][:3] == [50, 51, 50]
        store.write_points(db, batch("k", [995], [2.0]))  # between two full blocks
        check_layout(store, 100)
        rnd = np.random.default_rng(5)
        for t in rnd.integers(-100, 10_100, 300).tolist():
            store.write_points(db, batch("k", [t], [1.0]), increment=bool(t % 2))
        check_layout(store, 100)
        sizes = [b[3] for b in blocks(store.path)]
        assert min(sizes[:-1]) >= 40, sizes


def test_range_deletes_keep_the_layout_tidy(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path, block_points=100, direct_points=1) as store:
        db = open_db(store)
        store.write_points(db, batch("k", np.arange(1000), 1.0))
        sid = store.find_series(db, SeriesFilter())[0].id
        assert store.delete_points(db, sid, 150, 850) == 700
        # The 50 + 50 points left of the two edge blocks become one block.
        assert [b[3] for b in blocks(store.path)] == [100, 100, 100]
        check_layout(store, 100)
        assert store.delete_points(db, sid, 0, 1000) == 300
        assert blocks(store.path) == []


@pytest.mark.parametrize(
    ("ts", "values", "is_int", "fmt"),
    [
        ([0, 60_000], [1.5, 2.5], [False, False], 0x02 | 0x08),  # evenly spaced, decimal
        ([0, 60_000], [1, -(2**31)], [True, True], 0x02 | 0x08 | 0x10),  # integers
        ([0, 60_000], [2**53, -(2**53)], [True, True], 0x02 | 0x0C | 0x10),  # XOR floats
        ([0, 60_000], [0.1, -0.0], [False, False], 0x02 | 0x0C),  # -0.0 is not decimal
        ([0, 1, 2], [1, 2.5, 3], [True, False, True], 0x02 | 0x08 | 0x20),  # mixed: a mask
        ([0, 1, 3], [1.0, 2.0, 1e300], [False, False, False], 0x03 | 0x0C),  # gaps
        ([-(2**62), 2**62], [7, 8], [True, True], 0x02 | 0x08 | 0x10),
        ([-(2**62), 0, 2**62 + 5], [7.25, 8, 9], [False, False, False], 0x03 | 0x08),
    ],
)
def test_block_encodings(
    tmp_path: Path, ts: list[int], values: list[float], is_int: list[bool], fmt: int
) -> None:
    # A full block is compressed (the last block of a series, while not full, stays plain).
    with SQLiteStore(tmp_path, block_points=len(ts), direct_points=1) as store:
        db = open_db(store)
        store.write_points(db, batch("k", ts, values, is_int))
        [(_, first, last, n, got_fmt)] = blocks(store.path)
        assert (first, last, n, got_fmt) == (ts[0], ts[-1], len(ts), fmt)
        sid = store.find_series(db, SeriesFilter())[0].id
        points = store.read_points(db, sid, -FAR, FAR)
        assert points.ts.tolist() == ts
        assert [points.value_at(i) for i in range(n)] == values
        assert [type(points.value_at(i)) for i in range(n)] == [
            int if flag else float for flag in is_int
        ]


def test_a_mask_of_many_points(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path) as store:
        db = open_db(store)
        flags = np.random.default_rng(2).random(4093) < 0.5
        store.write_points(db, batch("k", np.arange(4093), np.arange(4093), flags))
        sid = store.find_series(db, SeriesFilter())[0].id
        points = store.read_points(db, sid, -FAR, FAR)
        assert np.array_equal(points.is_int, flags)


def test_minute_data_costs_about_twelve_bytes_a_point(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path) as store:
        db = open_db(store)
        ts = 1_325_376_000_000 + 60_000 * np.arange(100_000, dtype=np.int64)
        values = np.random.default_rng(0).normal(size=ts.shape[0])
        for i in range(0, 100_000, 10_000):
            store.write_points(db, batch("k", ts[i : i + 10_000], values[i : i + 10_000], False))
    size = (tmp_path / FILE_NAME).stat().st_size
    assert size / 100_000 < 13.5


# -- the write head ------------------------------------------------------------------------------


def head_rows(path: Path) -> list[tuple[int, int, float, int]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT sid, ts, v, is_int FROM head ORDER BY sid, ts").fetchall()
    finally:
        conn.close()


def test_small_writes_land_in_the_head_and_fold_into_the_blocks(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path, block_points=4, direct_points=8) as store:
        db = open_db(store)
        store.write_points(db, batch("k", np.arange(10) * 1000, 1.0))  # blocks
        for i in range(10, 16):
            store.write_points(db, batch("k", [i * 1000], [i]))  # head rows
        store.write_points(db, batch("k", [2000, 12_000], [7.5, 8.5]))  # a block, a row
        store.write_points(db, batch("k", [12_000, 20_000], [1, 2]), increment=True)
        assert [row[1] for row in head_rows(store.path)] == [
            *(np.arange(10, 16) * 1000).tolist(),
            20_000,
        ]
        check_layout(store, 4)
        sid = store.find_series(db, SeriesFilter())[0].id
        expected = {t * 1000: 1.0 for t in range(10)} | {t * 1000: t for t in range(10, 16)}
        expected |= {2000: 7.5, 12_000: 9.5, 20_000: 2}
        for _ in range(2):
            points = store.read_points(db, sid, -FAR, FAR)
            assert points.ts.tolist() == sorted(expected)
            assert [points.value_at(i) for i in range(len(points))] == [
                expected[t] for t in sorted(expected)
            ]
            assert store.read_points(db, sid, 9000, 11_000).ts.tolist() == [9000, 10_000]
            assert store.single_value(db, sid, 9500, "before") == (9000, 1)
            assert store.single_value(db, sid, 9500, "after") == (10_000, 10)
            assert store.single_value(db, sid, 16_000, "before") == (15_000, 15)
            assert store.single_value(db, sid, 16_000, "after") == (20_000, 2)
            assert store.single_value(db, sid, 12_000, "exact") == (12_000, 9.5)
            assert store.fold_head() in (7, 0)  # the second round: folded already
            assert head_rows(store.path) == []
            check_layout(store, 4)
        store.write_points(db, batch("k", [30_000, 31_000], [3, 4]))
        assert store.delete_points(db, sid, 14_000, 30_500) == 4  # blocks and a head row
        assert store.read_points(db, sid, 13_000, FAR).ts.tolist() == [13_000, 31_000]
        assert store.delete_series(db, SeriesFilter()) == 1
        assert head_rows(store.path) == []


def test_fold_steps_shrink_when_they_take_long() -> None:
    step = StepSize()
    assert step.series == FOLD_BATCH
    step.measured(256, 0.020)  # 256 series in 20 ms: 12 fit in the 1 ms a step aims at
    assert step.series == int(256 / 0.020 * STEP_SECONDS)
    step.measured(12, 5.0)  # never below the floor
    assert step.series == MIN_STEP
    step.measured(8, 0.00001)  # nor above the batch
    assert step.series == FOLD_BATCH
    step.measured(0, 0.0)  # nothing folded: nothing learnt
    assert step.series == FOLD_BATCH


def test_a_full_ledger_counts_no_new_series_and_presses_only_by_count() -> None:
    """A million series written once each must not make every write fold: beyond its bound
    the ledger leaves new series to the sweep, and only series due by count press."""
    ledger = Ledger(head_points=3, fold_after_s=60.0, max_pending=4)
    ledger.swept([], limit=10)  # the sweep when the store opens
    ledger.note(dict.fromkeys(range(10), 1))
    assert not ledger.pressing()
    assert ledger.wait() > 0  # nothing due: neither by count nor by age
    assert ledger.take() == []
    ledger.note({9: 5})  # not counted: the ledger is full
    assert not ledger.pressing()
    ledger.note({2: 2})  # counted: due by count
    assert ledger.pressing()
    assert ledger.wait() == 0
    assert ledger.take() == [2]
    ledger.note_one(9, time.monotonic())  # the place the fold freed
    ledger.note({9: 2})
    assert ledger.take() == [9]


def test_the_ledger_takes_series_by_age_and_sweeps_again_when_it_had_no_room() -> None:
    ledger = Ledger(head_points=100, fold_after_s=0.05, max_pending=3)
    dense = DENSE_POINTS  # (sparse series wait longer: see the tests below)
    ledger.note({1: dense, 2: dense})
    ledger.swept([(1, 1), (5, dense), (6, 1), (7, 1)], limit=10)  # room for one of three
    assert ledger.take() == []  # not due yet
    assert 0 < ledger.wait() <= 0.05
    time.sleep(0.06)
    assert ledger.take(limit=2) == [1, 2]
    assert ledger.take() == [5]
    assert ledger.sweep_due()  # one fold_after_s later (not four): 6 and 7 had no place
    ledger.swept([(6, 1)], limit=10)  # every series found has a place: four later
    time.sleep(0.06)
    assert not ledger.sweep_due()
    ledger.swept([(6, 1), (7, 1)], limit=2)  # as many as asked for: the head may hold more
    time.sleep(0.06)
    assert ledger.sweep_due()


def test_the_ledger_folds_sparse_series_by_age_only_much_later() -> None:
    """Issue 15: a series with a point or two in the head is not folded ``fold_after_s``
    after its first write (a million of them kept the writer folding), but ``SPARSE_AFTER``
    times later; a series with ``DENSE_POINTS`` is folded at ``fold_after_s`` as before."""
    after = 0.05
    ledger = Ledger(head_points=100, fold_after_s=after)
    ledger.swept([], limit=10)
    ledger.note({1: 2})  # sparse
    ledger.note({2: DENSE_POINTS})  # dense
    ledger.note_one(3, time.monotonic())  # sparse, through the hot path
    assert ledger.take() == []
    time.sleep(after * 1.2)
    assert ledger.take() == [2]  # the dense one only
    assert ledger.take() == []
    assert ledger.wait() > after  # nothing due until the next sweep (4 * after)
    time.sleep(after * SPARSE_AFTER)
    assert ledger.take(limit=1) == [1]  # the oldest first
    assert ledger.take() == [3]
    assert len(ledger) == 0


def test_a_sparse_series_that_becomes_dense_is_folded_at_once() -> None:
    after = 0.05
    ledger = Ledger(head_points=100, fold_after_s=after)
    ledger.swept([], limit=10)
    ledger.note({1: 1, 2: 1, 3: 1})
    time.sleep(after * 1.2)
    assert ledger.take() == []  # all three sparse: they wait
    ledger.note({2: DENSE_POINTS - 2})  # still sparse
    ledger.note_one(3, time.monotonic())
    ledger.note({3: DENSE_POINTS - 2})  # dense, older than fold_after_s: due
    assert ledger.wait() == 0
    assert ledger.take() == [3]
    ledger.note_one(2, time.monotonic())  # dense too
    assert ledger.take() == [2]
    ledger.note({1: 99})  # due by count, sparse or not
    assert ledger.pressing()
    assert ledger.take() == [1]
    assert len(ledger) == 0


def test_the_ledger_sets_sparse_series_aside_in_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    """A ledger full of sparse series is set aside a few at a time (a step stays short),
    and a dense series behind them is still folded."""
    monkeypatch.setattr("tempodb.storage.sqlite.fold.SET_ASIDE", 2)
    after = 0.05
    ledger = Ledger(head_points=100, fold_after_s=after)
    ledger.swept([], limit=10)
    ledger.note(dict.fromkeys(range(5), 1))
    ledger.note({9: DENSE_POINTS})
    time.sleep(after * 1.2)
    assert ledger.wait() == 0
    assert ledger.take() == []  # 0 and 1 set aside
    assert ledger.wait() == 0
    assert ledger.take() == []  # 2 and 3
    assert ledger.take() == [9]  # 4 set aside, and the dense one behind it
    assert ledger.wait() > after


def test_the_ledger_counts_the_rows_a_sweep_found() -> None:
    """Series found by a sweep (written before a restart, or beyond the ledger) are dense or
    sparse by their head rows; the sparse ones hold their place in the ledger."""
    after = 0.05
    ledger = Ledger(head_points=100, fold_after_s=after, max_pending=3)
    ledger.swept([(1, 1), (2, DENSE_POINTS), (3, 2)], limit=10)
    time.sleep(after * 1.2)
    assert ledger.take() == [2]
    ledger.swept([(1, 1), (3, 2), (4, 1), (5, 1)], limit=10)  # room for 4 only
    assert len(ledger) == 3
    ledger.note({6: DENSE_POINTS})  # the ledger is full: left to a sweep
    assert len(ledger) == 3
    time.sleep(after * SPARSE_AFTER)
    assert ledger.take() == [1, 3, 4]


def test_small_heads_count_every_series_as_dense() -> None:
    """With ``head_points`` below ``DENSE_POINTS`` a series due by count is never sparse."""
    ledger = Ledger(head_points=3, fold_after_s=0.05)
    ledger.note({1: 2, 2: 3})
    assert ledger.take() == [2]
    time.sleep(0.06)
    assert ledger.take() == []  # 2 of 3: sparse
    ledger.note_one(1, time.monotonic())  # 3 of 3: due by count
    assert ledger.take() == [1]


def test_a_failed_fold_is_tried_again_after_fold_after_s() -> None:
    ledger = Ledger(head_points=100, fold_after_s=0.05)
    ledger.swept([], limit=10)
    ledger.again([7])  # sparse or not, as before
    time.sleep(0.06)
    assert ledger.take() == [7]


def test_sparse_series_fold_after_the_longer_age_in_a_store(tmp_path: Path) -> None:
    """In the store: a series of one point stays in the head at ``fold_after_s`` and is
    folded after ``SPARSE_AFTER * fold_after_s``; one of ``DENSE_POINTS`` is folded at
    ``fold_after_s``; reads answer the same throughout."""
    after = 0.2
    with SQLiteStore(tmp_path, fold_after_s=after) as store:
        db = open_db(store)
        time.sleep(0.1)  # the sweep of the empty head when the store opened
        store.write_points(db, batch("sparse", [1], [42.0]))
        dense = list(range(DENSE_POINTS))
        store.write_points(db, batch("dense", dense, [float(t) for t in dense]))
        ids = {}
        for key in ("sparse", "dense"):
            record = store.lookup_series(db, "key", key)
            assert record is not None
            ids[key] = record.id
        began = time.monotonic()
        deadline = began + 10
        while len(head_rows(store.path)) > 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert [row[1:3] for row in head_rows(store.path)] == [(1, 42.0)]  # the sparse one
        assert time.monotonic() - began < after * SPARSE_AFTER / 2
        time.sleep(after * 2)  # well past fold_after_s: still there
        assert [row[1:3] for row in head_rows(store.path)] == [(1, 42.0)]  # the sparse one
        assert store.read_points(db, ids["sparse"], -FAR, FAR).ts.tolist() == [1]
        assert store.read_points(db, ids["dense"], -FAR, FAR).ts.tolist() == dense
        deadline = began + after * SPARSE_AFTER + 10
        while head_rows(store.path) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert head_rows(store.path) == []
        assert time.monotonic() - began >= after * (SPARSE_AFTER - 1)
        assert store.read_points(db, ids["sparse"], -FAR, FAR).ts.tolist() == [1]
        assert store.read_points(db, ids["dense"], -FAR, FAR).ts.tolist() == dense


def test_series_beyond_the_ledger_are_folded_after_a_sweep(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Ledger.__init__, "__defaults__", (4,))
    with SQLiteStore(tmp_path, fold_after_s=0.05) as store:
        db = open_db(store)
        for i in range(12):
            store.write_points(db, batch(f"s{i}", [i], [i]))
        deadline = time.monotonic() + 20
        while head_rows(store.path) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert head_rows(store.path) == []
        assert sum(b[3] for b in blocks(store.path)) == 12
        # The folds commit without an fsync; the writes after them with one, as before.
        synchronous = "PRAGMA synchronous"
        assert store._writer.call(lambda conn: conn.execute(synchronous).fetchone()[0]) == 2
        for i in range(12):
            record = store.lookup_series(db, "key", f"s{i}")
            assert record is not None
            assert store.read_points(db, record.id, -FAR, FAR).ts.tolist() == [i]


def test_the_head_folds_by_count_and_by_age(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path, head_points=3, fold_after_s=0.05) as store:
        db = open_db(store)
        for i in range(3):
            store.write_points(db, batch("many", [i], [i]))
        store.write_points(db, batch("one", [1], [1]))
        deadline = time.monotonic() + 10
        while head_rows(store.path) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert head_rows(store.path) == []
        assert sum(b[3] for b in blocks(store.path)) == 4
    with SQLiteStore(tmp_path) as store:  # closed before its fold: a restart finds the row
        db = store.list_databases()[0].id
        store.write_points(db, batch("one", [2], [2]))
    assert len(head_rows(tmp_path / FILE_NAME)) == 1
    with SQLiteStore(tmp_path, fold_after_s=0.05) as store:
        deadline = time.monotonic() + 10
        while head_rows(store.path) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert head_rows(store.path) == []
        record = store.lookup_series(db, "key", "one")
        assert record is not None
        assert store.read_points(db, record.id, -FAR, FAR).ts.tolist() == [1, 2]


def test_bulk_creation_keeps_nul_characters(tmp_path: Path) -> None:
    """Texts with a NUL character (which the server refuses, but the store takes) are bound
    as values rather than read from one JSON array, and come back whole."""
    with SQLiteStore(tmp_path / "data") as store:
        db = store.create_database("d").key
        database = store.list_databases()[0]
        assert database.key == db
        created = store.create_series_many(
            database.id,
            [
                NewSeries("a", "n\x00ame", ("t\x00ag", "plain"), {"k\x00": "v\x00"}),
                NewSeries("b"),
            ],
        )
        a = store.lookup_series(database.id, "key", "a")
        assert a is not None
        assert a == created[0]
        assert a.tags == ("t\x00ag", "plain")
        assert a.attributes == {"k\x00": "v\x00"}
        assert store.find_series(database.id, SeriesFilter(tags=("t\x00ag",))) == [a]
        assert [r.key for r in store.find_series(database.id, SeriesFilter())] == ["a", "b"]


@pytest.mark.parametrize(
    ("page_cache_mb", "writer_kib", "reader_kib"),
    [(None, 32768, 2048), (4, 4096, 2048), (1, 1024, 1024)],
)
def test_page_caches_of_the_writer_and_the_readers(
    tmp_path: Path, page_cache_mb: float | None, writer_kib: int, reader_kib: int
) -> None:
    options = {} if page_cache_mb is None else {"page_cache_mb": page_cache_mb}
    with SQLiteStore(tmp_path, **options) as store:
        size = "PRAGMA cache_size"
        assert store._writer.call(lambda conn: conn.execute(size).fetchone()[0]) == -writer_kib
        assert store._reader().execute(size).fetchone()[0] == -reader_kib


def test_page_cache_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="page_cache_mb"):
        SQLiteStore(tmp_path, page_cache_mb=0)


def test_pieces_of_evenly_spaced_blocks_tell_their_step(tmp_path: Path) -> None:
    """``read_pieces_many`` gives a series' points in the pieces of its blocks (views, clipped
    to the range), each full block of evenly spaced points with its step, cached or not yet;
    a block of uneven points and the plain last block with none."""
    store = SQLiteStore(tmp_path, block_points=4)
    try:
        db = open_db(store)
        stamps = [*range(0, 400, 5), 400, 401, 403, 410, 420, 425]  # 20 even blocks, 2 others
        store.write_points(db, batch("k", stamps, 1))  # more than 64 points: into blocks
        record = store.lookup_series(db, "key", "k")
        assert record is not None
        for _ in range(2):  # decoded now, then from the cache
            pieces = store.read_pieces_many(db, [record.id], 3, 421)[0]
            assert [ts.tolist() for ts, _, _, _ in pieces] == [
                [5, 10, 15],
                *([t, t + 5, t + 10, t + 15] for t in range(20, 400, 20)),
                [400, 401, 403, 410],
                [420],
            ]
            assert [step for _, _, _, step in pieces] == [5] * 20 + [0, 0]
    finally:
        store.close()


def interleaved(refs: list[SeriesRef], rounds: int) -> WriteBatch:
    """Every ref's point at each of ``rounds`` times, time-major (as a multi write sends
    them), then every point again with new values (repeated timestamps: the last wins)."""
    n = len(refs)
    times = np.repeat(np.arange(rounds, dtype=np.int64) * 1000, n)
    index = np.tile(np.arange(n, dtype=np.int32), rounds)
    values = np.arange(n * rounds, dtype=np.float64)
    return WriteBatch(
        refs,
        np.concatenate((index, index)),
        np.concatenate((times, times)),
        np.concatenate((values, values + 0.5)),
        np.zeros(2 * n * rounds, np.bool_),
    )


def test_presort_groups_a_large_write_outside_the_writer(tmp_path: Path) -> None:
    from tempodb.storage.sqlite.points import presort

    refs = [SeriesRef("key", f"s{i}") for i in range(7)]
    mixed = interleaved(refs, 50)
    grouped = presort(mixed)
    assert grouped is not mixed
    assert grouped.ref_index.dtype == np.int32
    assert grouped.ref_index.tolist() == [i for i in range(7) for _ in range(50)]
    assert grouped.ts.tolist() == list(range(0, 50_000, 1000)) * 7
    assert grouped.values.tolist() == [r * 7 + i + 0.5 for i in range(7) for r in range(50)]
    assert presort(grouped) is grouped  # in order already
    with_id = [*refs[:-1], SeriesRef("id", "s0")]  # may name the series s0 names
    by_id = interleaved(with_id, 50)
    assert presort(by_id) is by_id
    twice = interleaved([*refs[:-1], refs[0]], 50)  # one key in two refs
    assert presort(twice) is twice
    with SQLiteStore(tmp_path) as store:
        db = open_db(store)
        store.write_points(db, mixed)
        for i, ref in enumerate(refs):
            record = store.lookup_series(db, "key", ref.value)
            assert record is not None
            found = store.read_points(db, record.id, 0, FAR)
            assert found.ts.tolist() == list(range(0, 50_000, 1000))
            assert found.values.tolist() == [r * 7 + i + 0.5 for r in range(50)]


def test_a_large_write_naming_a_series_by_id_and_key_keeps_the_last_value(
    tmp_path: Path,
) -> None:
    with SQLiteStore(tmp_path) as store:
        db = open_db(store)
        store.write_points(db, batch("a", [0], [0]))
        record = store.lookup_series(db, "key", "a")
        assert record is not None
        # At each time: by key, by id, by key again; the last given (by key) is what stays.
        refs = [SeriesRef("key", "a"), SeriesRef("id", record.id)]
        rounds = 100
        store.write_points(
            db,
            WriteBatch(
                refs,
                np.tile(np.array([0, 1, 0], np.int32), rounds),
                np.repeat(np.arange(rounds, dtype=np.int64), 3),
                np.arange(3 * rounds, dtype=np.float64),
                np.ones(3 * rounds, np.bool_),
            ),
        )
        found = store.read_points(db, record.id, 0, FAR)
        assert found.values.tolist() == [r * 3 + 2 for r in range(rounds)]


def test_a_small_call_waits_for_at_most_one_large_call(tmp_path: Path) -> None:
    """Two large calls and a small one queued behind the first: the small one runs (and is
    answered) right after the first large call, before the second; closing runs every
    queued call."""
    from tempodb.storage.sqlite.writer import Writer

    conn = sqlite3.connect(tmp_path / "w.sqlite3", isolation_level=None, check_same_thread=False)
    writer = Writer(conn, "test-writer", 16)
    ran: list[str] = []
    release = threading.Event()

    def call(name: str, wait: bool = False) -> Any:
        def run(_: sqlite3.Connection) -> str:
            if wait:
                release.wait(10)
            ran.append(name)
            return name

        return run

    first = writer.submit(call("large-1", wait=True), large=True)
    time.sleep(0.2)  # the writer holds large-1
    second = writer.submit(call("large-2"), large=True)
    small = writer.submit(call("small"))
    release.set()
    assert small.result(10) == "small"
    assert ran[:2] == ["large-1", "small"]  # small joined large-1's group, large-2 waited
    assert first.result(10) == "large-1"
    late = [writer.submit(call(f"late-{i}"), large=i % 2 == 0) for i in range(4)]
    writer.close()
    assert second.done()
    assert all(future.done() for future in late)
    assert sorted(ran) == sorted(["large-1", "small", "large-2", *(f"late-{i}" for i in range(4))])
