"""Writes with an idempotency key (issue 20): applied at most once per key and database, on
every backend; the key is kept in the write's own transaction, with the write's result."""

from __future__ import annotations

import dataclasses
import time

import pytest
from test_contract import TINY_BLOCKS_TOO, batch, by_id, key, read_all, series_id

from tempodb.storage.base import (
    AlreadyApplied,
    Database,
    Idempotency,
    IdempotencyKeyReused,
    KeyConflict,
    Store,
    ValueOutOfRange,
    WriteBatch,
)

DAY_MS = 86_400_000


def keyed(
    write: WriteBatch, name: str, fingerprint: bytes = b"f1", ttl_ms: int = DAY_MS
) -> WriteBatch:
    return dataclasses.replace(write, idempotency=Idempotency(name, fingerprint, ttl_ms))


@TINY_BLOCKS_TOO
@pytest.mark.parametrize("size", [1, 300], ids=["small", "large"])
def test_an_increment_with_a_key_counts_once(store: Store, db: Database, size: int) -> None:
    increment = keyed(batch(key("k"), list(range(size)), [1] * size), "retry-me")
    assert store.write_points(db.id, increment, increment=True) == ()
    for _ in range(3):
        with pytest.raises(AlreadyApplied) as replay:
            store.write_points(db.id, increment, increment=True)
        assert replay.value.skipped == ()
    rows = read_all(store, db, series_id(store, db, "k"))
    assert rows == [(t, 1, int) for t in range(size)]
    # Another key is another request: it counts.
    store.write_points(db.id, keyed(increment, "another"), increment=True)
    assert read_all(store, db, series_id(store, db, "k"))[0] == (0, 2, int)


def test_the_same_key_with_another_request_is_refused_and_writes_nothing(
    store: Store, db: Database
) -> None:
    store.write_points(db.id, keyed(batch(key("k"), [1], [5]), "key"), increment=True)
    other = keyed(batch(key("k"), [1], [100]), "key", fingerprint=b"f2")
    with pytest.raises(IdempotencyKeyReused, match="different request"):
        store.write_points(db.id, other, increment=True)
    assert read_all(store, db, series_id(store, db, "k")) == [(1, 5, int)]


def test_keys_are_per_database(store: Store, db: Database) -> None:
    second = store.authenticate(*_credentials(store))
    assert second is not None
    write = keyed(batch(key("k"), [1], [1]), "shared")
    store.write_points(db.id, write, increment=True)
    store.write_points(second.id, write, increment=True)  # not a replay: another database
    assert read_all(store, second, series_id(store, second, "k")) == [(1, 1, int)]


def _credentials(store: Store) -> tuple[str, str]:
    created = store.create_database("second")
    return created.key, created.secret


def test_a_replay_answers_the_first_result_with_its_skipped_refs(
    store: Store, db: Database
) -> None:
    store.create_series(db.id, "taken")
    taken = series_id(store, db, "taken")
    # An unknown id that is another series' key: skipped, and the replay says so again.
    refs = [key("a"), by_id("taken")] if taken != "taken" else [key("a"), key("b")]
    write = batch(refs, [1, 1], [1, 1], ref_index=[0, 1])
    write = keyed(dataclasses.replace(write, skip_conflicts=True), "multi")
    first = store.write_points(db.id, write)
    with pytest.raises(AlreadyApplied) as replay:
        store.write_points(db.id, write)
    assert replay.value.skipped == first


def test_a_refused_write_keeps_no_key(store: Store, db: Database) -> None:
    store.create_series(db.id, "taken")
    taken_id = series_id(store, db, "taken")
    store.create_series(db.id, "other")
    conflict = keyed(batch(by_id("taken"), [1], [1]), "k1")
    if taken_id != "taken":
        with pytest.raises(KeyConflict):
            store.write_points(db.id, conflict)
    store.write_points(db.id, batch(key("big"), [1], [2**53]))
    too_big = keyed(batch(key("big"), [1], [1]), "k2")
    with pytest.raises(ValueOutOfRange):
        store.write_points(db.id, too_big, increment=True)
    # Nothing was applied, so the same keys work once the requests can succeed.
    store.write_points(db.id, keyed(batch(key("big"), [2], [1]), "k2"), increment=True)
    assert read_all(store, db, series_id(store, db, "big")) == [(1, 2**53, int), (2, 1, int)]


def test_a_key_past_its_time_to_live_counts_as_new(store: Store, db: Database) -> None:
    write = keyed(batch(key("k"), [1], [1]), "short", ttl_ms=50)
    store.write_points(db.id, write, increment=True)
    with pytest.raises(AlreadyApplied):
        store.write_points(db.id, write, increment=True)
    time.sleep(0.1)
    store.write_points(db.id, write, increment=True)
    assert read_all(store, db, series_id(store, db, "k")) == [(1, 2, int)]


def test_deleting_a_database_forgets_its_keys(store: Store) -> None:
    created = store.create_database("gone")
    database = store.authenticate(created.key, created.secret)
    assert database is not None
    store.write_points(database.id, keyed(batch(key("k"), [1], [1]), "k"), increment=True)
    assert store.delete_database(created.key)
    assert _keys_held(store) == 0


def _keys_held(store: Store) -> int:
    """The rows of the idempotency table, read the backend's own way."""
    from tempodb.storage.postgres import PostgresStore
    from tempodb.storage.sqlite import SQLiteStore

    if isinstance(store, SQLiteStore):
        with store._snapshot() as conn:
            return int(conn.execute("SELECT count(*) FROM idempotency").fetchone()[0])
    assert isinstance(store, PostgresStore)
    return int(
        store._read(lambda conn: conn.execute("SELECT count(*) FROM idempotency").fetchone())[0]
    )
