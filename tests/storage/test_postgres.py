"""What is particular to the PostgreSQL backend: schema and migrations, keys fit for Citus,
sessions, races between servers, block layout and size, the write head and its fold."""

from __future__ import annotations

import dataclasses
import itertools
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import psycopg
import pytest

from pg import Cluster
from serverproc import tempodb_command
from tempodb.storage.base import (
    MAX_EXACT_INT,
    AlreadyApplied,
    Idempotency,
    KeyConflict,
    NewSeries,
    SchemaTooNew,
    SeriesFilter,
    SeriesRef,
    StorageError,
    ValueOutOfRange,
    WriteBatch,
)
from tempodb.storage.postgres import BLOCK_POINTS, SCHEMA_VERSION, PostgresStore
from tempodb.storage.postgres.schema import MIGRATIONS

pytestmark = pytest.mark.postgres

FAR = 2**63 - 1
TABLES = ("databases", "series", "series_tag", "series_attr", "block", "head")
_numbers = itertools.count()


@pytest.fixture
def url(pg_cluster: Cluster) -> str:
    """A fresh, empty database of the throwaway cluster."""
    return pg_cluster.create_database(f"pgtest{next(_numbers)}")


@pytest.fixture
def store(url: str) -> Iterator[PostgresStore]:
    with PostgresStore(url) as instance:
        yield instance


def sql(url: str, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Run one statement behind the store's back; its rows."""
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(statement.encode(), params)
        return cur.fetchall() if cur.description else []


def batch(
    refs: Sequence[SeriesRef],
    ts: Any,
    values: Any,
    ref_index: Any = None,
    *,
    skip_conflicts: bool = False,
) -> WriteBatch:
    """Points of ``refs``; whole values are integers."""
    ts_arr = np.asarray(ts, np.int64).reshape(-1)
    values_arr = np.broadcast_to(np.asarray(values, np.float64), ts_arr.shape).copy()
    index = np.zeros(ts_arr.shape[0], np.int32) if ref_index is None else ref_index
    with np.errstate(invalid="ignore"):
        is_int = (np.abs(values_arr) <= MAX_EXACT_INT) & (values_arr == np.floor(values_arr))
    return WriteBatch(
        list(refs), np.asarray(index, np.int32), ts_arr, values_arr, is_int, skip_conflicts
    )


def open_db(store: PostgresStore) -> int:
    credentials = store.create_database("t")
    database = store.authenticate(credentials.key, credentials.secret)
    assert database is not None
    return database.id


def run_threads(targets: Sequence[Callable[[], None]]) -> None:
    errors: list[BaseException] = []

    def wrap(target: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                target()
            except BaseException as exc:  # re-raised in the test thread
                errors.append(exc)

        return run

    threads = [threading.Thread(target=wrap(t)) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


# -- schema and migrations -----------------------------------------------------------------------


def test_creates_the_schema_and_records_its_version(url: str) -> None:
    PostgresStore(url).close()
    assert sql(url, "SELECT max(version), count(*) FROM tempodb_schema") == [(SCHEMA_VERSION,) * 2]
    found = sql(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    assert {*TABLES, "tempodb_schema"} <= {row[0] for row in found}
    PostgresStore(url).close()  # opening again changes nothing
    assert sql(url, "SELECT max(version), count(*) FROM tempodb_schema") == [(SCHEMA_VERSION,) * 2]


def test_servers_starting_together_migrate_once(url: str) -> None:
    stores: list[PostgresStore] = []
    run_threads([lambda: stores.append(PostgresStore(url, min_size=0))] * 6)
    for store in stores:
        store.close()
    assert sql(url, "SELECT max(version), count(*) FROM tempodb_schema") == [(SCHEMA_VERSION,) * 2]


def test_refuses_a_newer_schema(url: str) -> None:
    PostgresStore(url).close()
    sql(url, "INSERT INTO tempodb_schema (version) VALUES (%s)", (SCHEMA_VERSION + 1,))
    with pytest.raises(SchemaTooNew, match=f"schema version {SCHEMA_VERSION + 1}"):
        PostgresStore(url)
    done = subprocess.run(
        tempodb_command("keys", "list", "--database-url", url), capture_output=True, text=True
    )
    assert done.returncode != 0
    assert "upgrade tempodb" in done.stderr
    assert "Traceback" not in done.stderr


def test_an_unreachable_database_is_a_storage_error() -> None:
    with pytest.raises(StorageError, match="cannot connect"):
        PostgresStore("postgresql://nobody@127.0.0.1:1/none", connect_timeout=2)


def test_every_key_holds_the_database_and_the_series(store: PostgresStore, url: str) -> None:
    """What Citus needs to distribute by database (metadata) and by series (points)."""
    keys = sql(
        url,
        "SELECT c.conrelid::regclass::text, c.contype, array_agg(a.attname::text) "
        "FROM pg_constraint c JOIN pg_attribute a "
        "ON a.attrelid = c.conrelid AND a.attnum = ANY(c.conkey) "
        "WHERE c.contype IN ('p', 'u') AND c.conrelid::regclass::text = ANY(%s) "
        "GROUP BY c.oid, c.conrelid, c.contype",
        (list(TABLES),),
    )
    assert {table for table, _, _ in keys} == set(TABLES)
    for table, _, columns in keys:
        if table == "databases":
            continue
        assert "db" in columns, (table, columns)
        if table != "series":
            assert "sid" in columns, (table, columns)
    series_keys = sorted(sorted(cols) for table, _, cols in keys if table == "series")
    assert series_keys == [["db", "id"], ["db", "key"], ["db", "sid"]]


# -- sessions and connections --------------------------------------------------------------------


def test_sessions_commit_synchronously(url: str) -> None:
    database = url.rsplit("/", 1)[1]
    sql(url, f'ALTER DATABASE "{database}" SET synchronous_commit = off')
    with PostgresStore(url) as store:
        row = store._read(lambda conn: conn.execute("SHOW synchronous_commit").fetchone())
        assert row == ("on",)


def test_connections_killed_by_the_server_are_replaced(store: PostgresStore, url: str) -> None:
    db = open_db(store)
    store.write_points(db, batch([SeriesRef("key", "k")], [1, 2], [1, 2]))
    sid = store.find_series(db, SeriesFilter())[0].id
    killed = sql(
        url,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = current_database() AND application_name = 'tempodb'",
    )
    assert killed
    assert store.read_points(db, sid, -FAR, FAR).ts.tolist() == [1, 2]
    sql(
        url,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = current_database() AND application_name = 'tempodb'",
    )
    store.write_points(db, batch([SeriesRef("key", "k")], [3], [3]))
    assert store.read_points(db, sid, -FAR, FAR).ts.tolist() == [1, 2, 3]


def test_a_closed_store_refuses_work(url: str) -> None:
    store = PostgresStore(url)
    db = open_db(store)
    store.close()
    store.close()  # idempotent
    with pytest.raises(StorageError, match="closed"):
        store.write_points(db, batch([SeriesRef("key", "k")], [1], [1]))
    with pytest.raises(StorageError, match="closed"):
        store.list_databases()


def test_validates_its_configuration(url: str) -> None:
    with pytest.raises(ValueError, match="block_points"):
        PostgresStore(url, block_points=0)
    with pytest.raises(ValueError, match="min_size"):
        PostgresStore(url, min_size=5, max_size=2)
    with pytest.raises(ValueError, match="head_points"):
        PostgresStore(url, head_points=0)
    with pytest.raises(ValueError, match="fold_after_s"):
        PostgresStore(url, fold_after_s=0)
    with pytest.raises(ValueError, match="direct_points"):
        PostgresStore(url, direct_points=0)


def test_secrets_are_stored_only_hashed(store: PostgresStore, url: str) -> None:
    credentials = store.create_database("t")
    [(key, stored)] = sql(url, "SELECT key, secret_hash FROM databases")
    assert key == credentials.key
    assert credentials.secret not in stored


# -- servers side by side ------------------------------------------------------------------------


def test_two_stores_creating_the_same_series_at_once(url: str) -> None:
    """Two stores stand for two servers: writes that create the same series race."""
    with PostgresStore(url) as one, PostgresStore(url) as two:
        db = open_db(one)
        keys = [f"k{i}" for i in range(5)]
        threads, rounds = 8, 6

        def worker(n: int) -> Callable[[], None]:
            def run() -> None:
                store = (one, two)[n % 2]
                order = keys[n % 5 :] + keys[: n % 5]  # a different order in every thread
                refs = [SeriesRef("key", k) for k in order] + [SeriesRef("id", "by-id")]
                for _ in range(rounds):
                    store.write_points(
                        db,
                        batch(refs, [10] * len(refs), 1, range(len(refs))),
                        increment=True,
                    )

            return run

        run_threads([worker(n) for n in range(threads)])
        found = one.find_series(db, SeriesFilter())
        assert sorted(r.key for r in found) == sorted([*keys, "by-id"])
        for record in found:
            points = two.read_points(db, record.id, -FAR, FAR)
            assert points.ts.tolist() == [10]
            assert points.values.tolist() == [threads * rounds]


def test_an_id_taken_as_a_key_is_a_conflict(store: PostgresStore) -> None:
    db = open_db(store)
    store.create_series(db, "x")
    with pytest.raises(KeyConflict):
        store.write_points(db, batch([SeriesRef("id", "x")], [1], [1]))
    assert [r.key for r in store.find_series(db, SeriesFilter())] == ["x"]


# -- block layout and size -----------------------------------------------------------------------


def block_sizes(url: str) -> list[int]:
    return [row[0] for row in sql(url, "SELECT n FROM block ORDER BY sid, first")]


def check_layout(url: str, cap: int) -> None:
    """The block invariants of tempodb.storage.blocks."""
    rows = sql(url, "SELECT sid, first, last, n FROM block ORDER BY sid, first")
    for (sid, first, last, n), nxt in zip(rows, [*rows[1:], None], strict=True):
        assert 1 <= n <= cap
        assert (n == 1) == (first == last)
        assert first <= last
        if nxt is not None and nxt[0] == sid:
            assert last < nxt[1], "blocks of a series overlap"


def test_appends_fill_blocks_and_inserts_split_them(url: str) -> None:
    with PostgresStore(url, block_points=100, direct_points=1) as store:
        db = open_db(store)
        k = [SeriesRef("key", "k")]
        for i in range(0, 1050, 35):
            store.write_points(db, batch(k, np.arange(i, i + 35) * 10, 1.0))
        assert block_sizes(url) == [100] * 10 + [50]
        store.write_points(db, batch(k, [1015], [2.0]))  # inside the second block
        assert block_sizes(url) == [100, 50, 51] + [100] * 8 + [50]
        rnd = np.random.default_rng(5)
        for t in rnd.integers(-100, 10_600, 300).tolist():
            store.write_points(db, batch(k, [t], [1.0]), increment=bool(t % 2))
        check_layout(url, 100)
        assert min(block_sizes(url)[:-1]) >= 40
        sid = store.find_series(db, SeriesFilter())[0].id
        assert store.delete_points(db, sid, 1500, 8500) > 0
        check_layout(url, 100)


def test_minute_data_costs_about_thirteen_bytes_a_point(store: PostgresStore, url: str) -> None:
    db = open_db(store)
    ts = 1_325_376_000_000 + 60_000 * np.arange(100_000, dtype=np.int64)
    values = np.random.default_rng(0).normal(size=ts.shape[0])
    for i in range(0, 100_000, 10_000):
        store.write_points(
            db, batch([SeriesRef("key", "k")], ts[i : i + 10_000], values[i : i + 10_000] + 0.5)
        )
    sql(url, "VACUUM block")
    [(size,)] = sql(url, "SELECT pg_total_relation_size('block')")
    assert size / 100_000 < 14
    assert max(block_sizes(url)) == BLOCK_POINTS


def test_nul_characters_match_nothing_and_are_refused(store: PostgresStore) -> None:
    """PostgreSQL text cannot hold NUL: no stored value has one, so nothing matches it."""
    db = open_db(store)
    record = store.create_series(db, "k", tags=["t"], attributes={"a": "1"})
    assert store.lookup_series(db, "key", "k\0") is None
    assert store.lookup_series(db, "id", "\0") is None
    assert store.read_points(db, "\0", -FAR, FAR).ts.tolist() == []
    assert store.single_value(db, "\0", 0, "nearest") is None
    assert store.delete_points(db, "\0", -FAR, FAR) == 0
    assert store.update_series(db, "\0", name="x") is None
    assert store.find_series(db, SeriesFilter(keys=("k", "\0"))) == [record]
    assert store.find_series(db, SeriesFilter(ids=("\0",))) == []
    assert store.find_series(db, SeriesFilter(tags=("t", "\0"))) == []
    assert store.find_series(db, SeriesFilter(attributes={"a": ("1", "\0")})) == [record]
    assert store.find_series(db, SeriesFilter(attributes={"\0": ("1",)})) == []
    assert store.authenticate("\0", "x") is None
    assert store.delete_database("\0") is False
    with pytest.raises(ValueError, match="NUL"):
        store.create_series(db, "other", name="a\0b")
    with pytest.raises(ValueError, match="NUL"):
        store.update_series(db, record.id, attributes={"a": "\0"})
    assert store.find_series(db, SeriesFilter()) == [record]


# -- the write head and the fold -----------------------------------------------------------------


def head_rows(url: str) -> int:
    return int(sql(url, "SELECT count(*) FROM head")[0][0])


def block_points(url: str) -> int:
    return int(sql(url, "SELECT coalesce(sum(n), 0) FROM block")[0][0])


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def read_all(store: PostgresStore, db: int, key: str) -> list[tuple[int, float, bool]]:
    record = store.lookup_series(db, "key", key)
    assert record is not None
    points = store.read_points(db, record.id, -FAR, FAR)
    return list(
        zip(points.ts.tolist(), points.values.tolist(), points.is_int.tolist(), strict=True)
    )


def test_small_writes_go_to_the_head_and_fold_when_it_holds_enough(url: str) -> None:
    with PostgresStore(url, head_points=5, fold_after_s=600) as store:
        db = open_db(store)
        k = [SeriesRef("key", "k")]
        for t in range(4):
            store.write_points(db, batch(k, [t * 10], [t]))
        assert (head_rows(url), block_points(url)) == (4, 0)
        assert [p[:2] for p in read_all(store, db, "k")] == [(0, 0), (10, 1), (20, 2), (30, 3)]
        sid = store.lookup_series(db, "key", "k")
        assert sid is not None
        assert store.single_value(db, sid.id, 25, "nearest") == (20, 2)
        store.write_points(db, batch(k, [40], [4]))
        wait_for(lambda: head_rows(url) == 0, "the fold")
        assert block_points(url) == 5
        assert [p[:2] for p in read_all(store, db, "k")] == [(t * 10, t) for t in range(5)]


def test_head_rows_fold_once_old_enough(url: str) -> None:
    with PostgresStore(url, head_points=1000, fold_after_s=0.2) as store:
        db = open_db(store)
        store.write_points(db, batch([SeriesRef("key", "k")], [1], [1]))
        assert head_rows(url) == 1
        wait_for(lambda: head_rows(url) == 0, "the fold by age")
        assert read_all(store, db, "k") == [(1, 1.0, True)]


def test_a_store_folds_what_a_stopped_server_left_in_the_head(url: str) -> None:
    with PostgresStore(url, head_points=1000, fold_after_s=600) as first:
        db = open_db(first)
        refs = [SeriesRef("key", f"k{i}") for i in range(3)]
        first.write_points(db, batch(refs, [5, 5, 5], [1, 2, 3], [0, 1, 2]))
    assert head_rows(url) == 3
    with PostgresStore(url, head_points=1000, fold_after_s=0.1) as second:
        wait_for(lambda: head_rows(url) == 0, "the sweep and fold")
        assert [read_all(second, db, f"k{i}") for i in range(3)] == [
            [(5, float(i + 1), True)] for i in range(3)
        ]


def test_large_parts_skip_the_head(url: str) -> None:
    with PostgresStore(url, head_points=1000, fold_after_s=600, direct_points=10) as store:
        db = open_db(store)
        k = [SeriesRef("key", "k")]
        store.write_points(db, batch(k, range(3), 1))  # small: the head
        store.write_points(db, batch(k, range(100, 120), 2))  # large: head folded, then blocks
        assert (head_rows(url), block_points(url)) == (0, 23)
        store.write_points(db, batch([SeriesRef("key", "new")], range(50), 3))  # a new series
        assert (head_rows(url), block_points(url)) == (0, 73)
        assert [p[:2] for p in read_all(store, db, "k")] == [(t, 1) for t in range(3)] + [
            (t, 2) for t in range(100, 120)
        ]


def test_increments_and_overwrites_across_head_and_blocks(url: str) -> None:
    with PostgresStore(url, head_points=1000, fold_after_s=600, direct_points=5) as store:
        db = open_db(store)
        k = [SeriesRef("key", "k")]
        store.write_points(db, batch(k, [10, 20, 30, 40, 50], [1, 2, 3.5, 4, 5]))  # blocks
        assert block_points(url) == 5
        # Single points go to the head: onto block points, into a gap, past the end.
        store.write_points(db, batch(k, [20], [10]), increment=True)
        store.write_points(db, batch(k, [30], [1]), increment=True)
        store.write_points(db, batch(k, [25], [7]), increment=True)
        store.write_points(db, batch(k, [60], [6]), increment=True)
        store.write_points(db, batch(k, [40], [0.5]))  # an overwrite of a block point
        store.write_points(db, batch(k, [20], [100]), increment=True)  # the head row again
        expected = [
            (10, 1.0, True),
            (20, 112.0, True),
            (25, 7.0, True),
            (30, 4.5, False),
            (40, 0.5, False),
            (50, 5.0, True),
            (60, 6.0, True),
        ]
        assert head_rows(url) == 5
        assert read_all(store, db, "k") == expected
        sid = store.lookup_series(db, "key", "k")
        assert sid is not None
        assert store.single_value(db, sid.id, 20, "exact") == (20, 112)
        assert store.single_value(db, sid.id, 41, "before") == (40, 0.5)
        # A large increment folds the head first, then adds to the blocks.
        store.write_points(db, batch(k, [10, 20, 25, 30, 40, 50], 1), increment=True)
        assert head_rows(url) == 0
        assert read_all(store, db, "k") == [
            (t, v + 1, i) if t <= 50 else (t, v, i) for t, v, i in expected
        ]
        assert store.delete_points(db, sid.id, 20, 31) == 3
        store.write_points(db, batch(k, [20], [5]), increment=True)  # deleted: starts from 0
        assert [p[:2] for p in read_all(store, db, "k")][:3] == [(10, 2), (20, 5), (40, 1.5)]


@pytest.mark.parametrize("direct", [1000, 1], ids=["head", "blocks"])
def test_increments_out_of_range_write_nothing(url: str, direct: int) -> None:
    with PostgresStore(url, head_points=1000, fold_after_s=600, direct_points=direct) as store:
        db = open_db(store)
        refs = [SeriesRef("key", "a"), SeriesRef("key", "b")]
        store.write_points(db, batch(refs, [1, 1], [MAX_EXACT_INT, 1.5e308], [0, 1]))
        before = [read_all(store, db, "a"), read_all(store, db, "b")]
        with pytest.raises(ValueOutOfRange, match="integer sum"):
            store.write_points(db, batch(refs, [1, 2], [1, 1], [0, 1]), increment=True)
        with pytest.raises(ValueOutOfRange, match="not a finite"):
            store.write_points(db, batch(refs, [2, 1], [1, 1.5e308], [0, 1]), increment=True)
        with pytest.raises(ValueOutOfRange, match="integer sum"):  # within one batch
            store.write_points(db, batch(refs[:1], [7, 7], [MAX_EXACT_INT, 1]), increment=True)
        assert [read_all(store, db, "a"), read_all(store, db, "b")] == before
        store.write_points(db, batch(refs, [1, 1], [-1, -1.5e308], [0, 1]), increment=True)
        assert read_all(store, db, "a") == [(1, MAX_EXACT_INT - 1, True)]
        assert read_all(store, db, "b") == [(1, 0.0, False)]


def test_folds_while_writing_lose_and_double_nothing(url: str) -> None:
    with PostgresStore(url, head_points=3, fold_after_s=0.01, block_points=16) as store:
        db = open_db(store)
        refs = [SeriesRef("key", f"k{i}") for i in range(4)]
        rounds, threads = 60, 4

        def worker(n: int) -> Callable[[], None]:
            def run() -> None:
                for r in range(rounds):
                    t = 1000 + r * threads + n  # every thread its own timestamps
                    store.write_points(db, batch(refs[:2], [t, t], [t, -t], [0, 1]))
                    counters = batch(refs[2:], [0, 0], 1, [0, 1])  # and shared counters
                    store.write_points(db, counters, increment=True)

            return run

        run_threads([worker(n) for n in range(threads)])
        wait_for(lambda: head_rows(url) == 0, "the last folds")
        check_layout(url, 16)
        for i, sign in enumerate((1, -1)):
            got = read_all(store, db, f"k{i}")
            assert got == [(t, float(sign * t), True) for t in range(1000, 1000 + rounds * threads)]
        for i in (2, 3):
            assert read_all(store, db, f"k{i}") == [(0, float(rounds * threads), True)]


def test_two_stores_folding_the_same_series_at_once(url: str) -> None:
    """Two servers with tiny heads increment the same points: every fold takes its rows once."""
    with (
        PostgresStore(url, head_points=2, fold_after_s=0.005, block_points=8) as one,
        PostgresStore(url, head_points=2, fold_after_s=0.005, block_points=8) as two,
    ):
        db = open_db(one)
        refs = [SeriesRef("key", f"k{i}") for i in range(3)]
        rounds, threads = 40, 6

        def worker(n: int) -> Callable[[], None]:
            def run() -> None:
                store = (one, two)[n % 2]
                for r in range(rounds):
                    ts = [r % 10, 100 + r, 200]
                    store.write_points(db, batch(refs, ts, 1, [0, 1, 2]), increment=True)

            return run

        run_threads([worker(n) for n in range(threads)])
        wait_for(lambda: head_rows(url) == 0, "the last folds")
        check_layout(url, 8)
        assert read_all(one, db, "k0") == [(t, rounds * threads / 10, True) for t in range(10)]
        assert read_all(two, db, "k1") == [(100 + r, float(threads), True) for r in range(rounds)]
        assert read_all(one, db, "k2") == [(200, float(rounds * threads), True)]


def test_reads_never_see_half_a_fold(url: str) -> None:
    with PostgresStore(url, head_points=2, fold_after_s=0.005, block_points=4) as store:
        db = open_db(store)
        k = [SeriesRef("key", "k")]
        store.write_points(db, batch(k, [0], [0]))
        sid = store.lookup_series(db, "key", "k")
        assert sid is not None
        done = threading.Event()
        seen: list[int] = []

        def writer() -> None:
            for t in range(1, 150):
                store.write_points(db, batch(k, [t], [t]))
            done.set()

        def reader() -> None:
            while not done.is_set():
                got = store.read_points(db, sid.id, -FAR, FAR).ts.tolist()
                assert got == list(range(len(got))), "a read saw a gap or a doubled point"
                seen.append(len(got))

        run_threads([writer, reader])
        assert seen
        assert store.read_points(db, sid.id, -FAR, FAR).ts.tolist() == list(range(150))


# -- many series, conflicts ----------------------------------------------------------------------


def test_create_series_many(store: PostgresStore) -> None:
    db = open_db(store)
    store.create_series(db, "taken")
    out = store.create_series_many(
        db,
        [
            NewSeries("a", name="A", tags=("x", "y", "x"), attributes={"r": "1", "s": "2"}),
            NewSeries("taken"),
            NewSeries(None, tags=("x",)),
            NewSeries("a", name="again"),
            NewSeries("b", attributes={"r": "2"}),
        ],
    )
    a, taken, no_key, again, b = out
    assert not isinstance(a, KeyConflict)
    assert a.tags == ("x", "y")
    assert a.name == "A"
    assert isinstance(taken, KeyConflict)
    assert taken.key == "taken"
    assert isinstance(again, KeyConflict)
    assert again.key == "a"
    assert not isinstance(no_key, KeyConflict)
    assert no_key.key == no_key.id
    assert not isinstance(b, KeyConflict)
    assert store.lookup_series(db, "key", "a") == a
    assert [r.key for r in store.find_series(db, SeriesFilter(tags=("x",)))] == sorted(
        ["a", no_key.key]
    )
    assert [r.key for r in store.find_series(db, SeriesFilter(attributes={"r": ("2",)}))] == ["b"]
    assert store.create_series_many(db, []) == []


def test_skip_conflicts_writes_the_rest(store: PostgresStore) -> None:
    db = open_db(store)
    store.create_series(db, "x")  # an id "x" would need the key "x": a conflict
    refs = [SeriesRef("key", "a"), SeriesRef("id", "x"), SeriesRef("key", "b")]
    with pytest.raises(KeyConflict):
        store.write_points(db, batch(refs, [1, 1, 1], [1, 2, 3], [0, 1, 2]))
    assert [r.key for r in store.find_series(db, SeriesFilter())] == ["x"]
    skipped = store.write_points(
        db, batch(refs, [1, 1, 1], [1, 2, 3], [0, 1, 2], skip_conflicts=True)
    )
    assert skipped == (1,)
    assert [r.key for r in store.find_series(db, SeriesFilter())] == ["a", "b", "x"]
    assert read_all(store, db, "a") == [(1, 1.0, True)]
    assert read_all(store, db, "b") == [(1, 3.0, True)]
    assert read_all(store, db, "x") == []


def test_an_id_and_a_key_of_one_series_in_one_write(store: PostgresStore) -> None:
    db = open_db(store)
    record = store.create_series(db, "k")
    refs = [SeriesRef("key", "k"), SeriesRef("id", record.id)]
    store.write_points(db, batch(refs, [1, 1, 2], [1, 2, 3], [0, 1, 1]))
    assert read_all(store, db, "k") == [(1, 2.0, True), (2, 3.0, True)]


def test_migrates_a_version_2_database(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE tempodb_schema (version integer PRIMARY KEY, "
            "applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for number, statements in enumerate(MIGRATIONS[:2], start=1):
            for statement in statements:
                conn.execute(statement.encode())
            conn.execute("INSERT INTO tempodb_schema (version) VALUES (%s)", (number,))
    with PostgresStore(url) as old:  # writes blocks only when the head table exists: migrated
        assert sql(url, "SELECT max(version) FROM tempodb_schema") == [(SCHEMA_VERSION,)]
        db = open_db(old)
        old.write_points(db, batch([SeriesRef("key", "k")], [1, 2], [1, 2]))
        assert read_all(old, db, "k") == [(1, 1.0, True), (2, 2.0, True)]
        # Version 4: the idempotency keys of writes.
        keyed = dataclasses.replace(
            batch([SeriesRef("key", "k")], [3], [1]), idempotency=Idempotency("k", b"f", 60_000)
        )
        old.write_points(db, keyed, increment=True)
        with pytest.raises(AlreadyApplied):
            old.write_points(db, keyed, increment=True)
    # 5: retention and the tier (tests/storage/test_retention*.py); 6: Citus' series locks.
    assert SCHEMA_VERSION == 6
