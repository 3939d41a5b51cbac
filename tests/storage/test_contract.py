"""The storage contract (``tempodb.storage.base.Store``), run against every backend.

Everything here goes through the ``Store`` API only, so that a new backend passes or fails the
same suite.  Series lists of 4,096+ points cross block boundaries in the block-based backends.
"""

from __future__ import annotations

import dataclasses
import math
import random
import re
import string
import threading
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    rule,
    run_state_machine_as_test,
)

from tempodb.storage.base import (
    MAX_EXACT_INT,
    Database,
    Direction,
    KeyConflict,
    NewSeries,
    Points,
    SeriesFilter,
    SeriesRecord,
    SeriesRef,
    Store,
    TooManyNewSeries,
    ValueOutOfRange,
    WriteBatch,
)

FAR = 2**62
HEX32 = re.compile(r"^[0-9a-f]{32}$")
Row = tuple[int, Any, type]
DIRECTIONS: tuple[Direction, ...] = ("exact", "before", "after", "nearest")

#: Run a test with the backend's default blocks, then with blocks of 4 points (a hint to the
#: backend factories in conftest.py), so that every edge case falls on block boundaries too.
TINY_BLOCKS_TOO = pytest.mark.parametrize(
    "store", [None, 4], indirect=True, ids=["default-blocks", "tiny-blocks"]
)


# -- helpers -------------------------------------------------------------------------------


def key(k: str) -> SeriesRef:
    return SeriesRef("key", k)


def by_id(i: str) -> SeriesRef:
    return SeriesRef("id", i)


def batch(
    refs: SeriesRef | Sequence[SeriesRef],
    ts: Any,
    values: Any,
    is_int: Any = None,
    ref_index: Any = None,
) -> WriteBatch:
    """A WriteBatch from plain sequences; ``is_int`` defaults to "the value is a whole number"."""
    ref_list = [refs] if isinstance(refs, SeriesRef) else list(refs)
    ts_arr = np.asarray(ts, np.int64).reshape(-1)
    values_arr = np.broadcast_to(np.asarray(values, np.float64), ts_arr.shape).copy()
    if is_int is None:
        flags = values_arr == np.trunc(values_arr)
    else:
        flags = np.broadcast_to(np.asarray(is_int, np.bool_), ts_arr.shape).copy()
    if ref_index is None:
        index = np.zeros(ts_arr.shape[0], np.int32)
    else:
        index = np.asarray(ref_index, np.int32).reshape(-1)
    return WriteBatch(ref_list, index, ts_arr, values_arr, flags)


def rows(points: Points) -> list[Row]:
    """Points as (ts, value, type) so that int/float typing is compared too."""
    out = []
    for i in range(len(points)):
        value = points.value_at(i)
        out.append((int(points.ts[i]), value, type(value)))
    return out


def read_all(store: Store, db: Database, series_id: str) -> list[Row]:
    return rows(store.read_points(db.id, series_id, -FAR, FAR))


def series_id(store: Store, db: Database, k: str) -> str:
    record = store.lookup_series(db.id, "key", k)
    assert record is not None, k
    return record.id


def check_points(points: Points) -> None:
    assert points.ts.dtype == np.int64
    assert points.values.dtype == np.float64
    assert points.is_int.dtype == np.bool_
    assert points.ts.shape == points.values.shape == points.is_int.shape
    assert bool(np.all(np.diff(points.ts) > 0)), "ascending and unique"


class Model:
    """A dict reference: ts -> (value, is_int) per series key."""

    def __init__(self) -> None:
        self.series: dict[str, dict[int, tuple[float, bool]]] = {}

    def apply(self, k: str, points: Sequence[tuple[int, float, bool]], increment: bool) -> None:
        data = self.series.setdefault(k, {})
        for ts, value, is_int in points:
            if increment:
                old, old_int = data.get(ts, (0.0, True))
                total = old + value
                data[ts] = (total, old_int and is_int and abs(total) <= MAX_EXACT_INT)
            else:
                data[ts] = (value, is_int)

    def delete(self, k: str, start: int, end: int) -> int:
        data = self.series.get(k, {})
        doomed = [t for t in data if start <= t < end]
        for t in doomed:
            del data[t]
        return len(doomed)

    def rows(self, k: str, start: int = -FAR, end: int = FAR) -> list[Row]:
        out: list[Row] = []
        for ts in sorted(self.series.get(k, {})):
            if start <= ts < end:
                value, is_int = self.series[k][ts]
                v: int | float = int(value) if is_int else value
                out.append((ts, v, type(v)))
        return out

    def single(self, k: str, ts: int, direction: Direction) -> tuple[int, int | float] | None:
        data = self.series.get(k, {})
        before = max((t for t in data if t <= ts), default=None)
        after = min((t for t in data if t >= ts), default=None)
        if direction == "exact":
            chosen = ts if ts in data else None
        elif direction == "before":
            chosen = before
        elif direction == "after":
            chosen = after
        elif before is None or after is None:
            chosen = before if after is None else after
        else:
            chosen = before if ts - before <= after - ts else after
        if chosen is None:
            return None
        value, is_int = data[chosen]
        return chosen, int(value) if is_int else value


# -- databases and keys --------------------------------------------------------------------------


def test_create_database_issues_hex_credentials(store: Store) -> None:
    first = store.create_database("one")
    second = store.create_database("two")
    for credentials in (first, second):
        assert HEX32.match(credentials.key)
        assert HEX32.match(credentials.secret)
    assert first.key != second.key
    assert first.secret != second.secret


def test_authenticate(store: Store) -> None:
    credentials = store.create_database("mine", admin=True)
    database = store.authenticate(credentials.key, credentials.secret)
    assert database is not None
    assert (database.key, database.name, database.admin) == (credentials.key, "mine", True)
    assert store.authenticate(credentials.key, credentials.secret.upper()) is None
    assert store.authenticate(credentials.key, "") is None
    assert store.authenticate(credentials.key, credentials.secret + "0") is None
    assert store.authenticate("0" * 32, credentials.secret) is None
    assert store.authenticate("", "") is None


def test_list_databases_ordered_by_key(store: Store) -> None:
    made = [store.create_database(f"db{i}", admin=i == 0) for i in range(4)]
    listed = store.list_databases()
    assert [d.key for d in listed] == sorted(c.key for c in made)
    by_key = {d.key: d for d in listed}
    assert by_key[made[0].key].admin
    assert by_key[made[2].key].name == "db2"
    assert len({d.id for d in listed}) == 4


def test_delete_database(store: Store) -> None:
    doomed = store.create_database("doomed")
    kept = store.create_database("kept")
    db_doomed = store.authenticate(doomed.key, doomed.secret)
    db_kept = store.authenticate(kept.key, kept.secret)
    assert db_doomed is not None
    assert db_kept is not None
    for database in (db_doomed, db_kept):
        store.write_points(database.id, batch(key("k"), [1, 2, 3], [1, 2, 3]))
    doomed_id = series_id(store, db_doomed, "k")

    assert store.delete_database(doomed.key) is True
    assert store.delete_database(doomed.key) is False
    assert store.delete_database("nope") is False
    assert store.authenticate(doomed.key, doomed.secret) is None
    assert [d.key for d in store.list_databases()] == [kept.key]
    assert store.lookup_series(db_doomed.id, "id", doomed_id) is None
    assert store.find_series(db_doomed.id, SeriesFilter()) == []
    assert read_all(store, db_kept, series_id(store, db_kept, "k")) == [
        (1, 1, int),
        (2, 2, int),
        (3, 3, int),
    ]
    # A new database never sees what was deleted.
    fresh = store.create_database("fresh")
    db_fresh = store.authenticate(fresh.key, fresh.secret)
    assert db_fresh is not None
    assert store.find_series(db_fresh.id, SeriesFilter()) == []


def test_revoke_database_keeps_the_data(store: Store) -> None:
    revoked = store.create_database("revoked")
    kept = store.create_database("kept")
    database = store.authenticate(revoked.key, revoked.secret)
    assert database is not None
    store.write_points(database.id, batch(key("k"), [1, 2], [1, 2]))

    assert store.revoke_database(revoked.key) is True
    assert store.authenticate(revoked.key, revoked.secret) is None
    assert store.revoke_database(revoked.key) is True  # already revoked: still revoked
    assert store.revoke_database("nope") is False
    assert store.authenticate(kept.key, kept.secret) is not None
    listed = {d.key: d.revoked for d in store.list_databases()}
    assert listed == {revoked.key: True, kept.key: False}
    assert read_all(store, database, series_id(store, database, "k")) == [(1, 1, int), (2, 2, int)]
    assert store.delete_database(revoked.key) is True
    assert [d.key for d in store.list_databases()] == [kept.key]


def test_databases_are_isolated(store: Store) -> None:
    creds = [store.create_database(n) for n in ("a", "b")]
    dbs = [store.authenticate(c.key, c.secret) for c in creds]
    assert dbs[0] is not None
    assert dbs[1] is not None
    one, two = dbs[0], dbs[1]
    s1 = store.create_series(one.id, "shared", tags=["t"], attributes={"a": "1"})
    s2 = store.create_series(two.id, "shared")  # the same key is free in another database
    assert s1.id != s2.id
    assert store.lookup_series(two.id, "id", s1.id) is None
    assert store.find_series(two.id, SeriesFilter(ids=(s1.id,))) == []
    assert store.find_series(two.id, SeriesFilter(tags=("t",))) == []
    assert store.find_series(two.id, SeriesFilter(attributes={"a": ("1",)})) == []
    assert store.update_series(two.id, s1.id, name="x") is None

    store.write_points(one.id, batch(key("shared"), [10, 20], [1.5, 2.5]))
    store.write_points(two.id, batch(key("shared"), [10], [7]))
    assert read_all(store, one, s1.id) == [(10, 1.5, float), (20, 2.5, float)]
    assert read_all(store, two, s2.id) == [(10, 7, int)]
    assert store.read_points(two.id, s1.id, -FAR, FAR).ts.shape == (0,)
    assert store.single_value(two.id, s1.id, 10, "exact") is None
    assert store.delete_points(two.id, s1.id, -FAR, FAR) == 0
    # Writing by the other database's id creates a separate series here.
    store.write_points(two.id, batch(by_id(s1.id), [30], [3]))
    created = store.lookup_series(two.id, "id", s1.id)
    assert created is not None
    assert created.key == s1.id
    assert read_all(store, one, s1.id) == [(10, 1.5, float), (20, 2.5, float)]

    assert store.delete_series(two.id, None) == 2
    assert store.find_series(one.id, SeriesFilter()) == [s1]
    assert read_all(store, one, s1.id) == [(10, 1.5, float), (20, 2.5, float)]


# -- series metadata -----------------------------------------------------------------------------


def test_create_series(store: Store, db: Database) -> None:
    record = store.create_series(
        db.id, "house.temp", "Temperature", ["b", "a", "b", "c", "a"], {"room": "kitchen"}
    )
    assert HEX32.match(record.id)
    assert record == SeriesRecord(
        record.id, "house.temp", "Temperature", ("b", "a", "c"), {"room": "kitchen"}
    )
    assert store.lookup_series(db.id, "id", record.id) == record
    assert store.lookup_series(db.id, "key", "house.temp") == record


def test_create_series_without_key_uses_the_id(store: Store, db: Database) -> None:
    record = store.create_series(db.id, None)
    assert HEX32.match(record.id)
    assert record == SeriesRecord(record.id, record.id, "", (), {})
    assert store.lookup_series(db.id, "key", record.id) == record


def test_create_series_key_conflict(store: Store, db: Database) -> None:
    store.create_series(db.id, "k", name="first")
    with pytest.raises(KeyConflict) as info:
        store.create_series(db.id, "k", name="second")
    assert info.value.key == "k"
    [only] = store.find_series(db.id, SeriesFilter())
    assert only.name == "first"


def test_lookup_unknown(store: Store, db: Database) -> None:
    store.create_series(db.id, "k")
    assert store.lookup_series(db.id, "key", "K") is None
    assert store.lookup_series(db.id, "id", "k") is None
    assert store.lookup_series(db.id, "id", "0" * 32) is None


def test_metadata_round_trips_unusual_text(store: Store, db: Database) -> None:
    record = store.create_series(
        db.id,
        "a:b;c-d_e/f\\g h.i",
        'quote " and \u00e9\u4e2d',
        ["", " spaced ", "\u00fc", "1"],
        {"": "", "n\u00e4me": "v\u00e4lue", "json": '{"x": [1]}', "1": "2"},
    )
    assert store.lookup_series(db.id, "id", record.id) == record
    assert store.find_series(
        db.id, SeriesFilter(tags=("\u00fc", ""), attributes={"1": ("2",)})
    ) == [record]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({}, ("n", ("t1", "t2"), {"a": "1", "b": "2"})),
        ({"name": ""}, ("", ("t1", "t2"), {"a": "1", "b": "2"})),
        ({"name": "new"}, ("new", ("t1", "t2"), {"a": "1", "b": "2"})),
        ({"tags": ["x", "t1", "x"]}, ("n", ("x", "t1"), {"a": "1", "b": "2"})),
        ({"tags": []}, ("n", (), {"a": "1", "b": "2"})),
        ({"attributes": {"c": "3"}}, ("n", ("t1", "t2"), {"c": "3"})),
        ({"attributes": {}}, ("n", ("t1", "t2"), {})),
        (
            {"name": "all", "tags": ["z"], "attributes": {"a": "9"}},
            ("all", ("z",), {"a": "9"}),
        ),
    ],
)
def test_update_series_replaces_only_given_fields(
    store: Store, db: Database, change: dict[str, Any], expected: tuple[Any, ...]
) -> None:
    record = store.create_series(db.id, "k", "n", ["t1", "t2"], {"a": "1", "b": "2"})
    updated = store.update_series(db.id, record.id, **change)
    want = SeriesRecord(record.id, "k", *expected)
    assert updated == want
    assert store.lookup_series(db.id, "id", record.id) == want
    # The filters follow the new metadata.
    flt = SeriesFilter(tags=want.tags, attributes={n: (v,) for n, v in want.attributes.items()})
    assert store.find_series(db.id, flt) == [want]
    if "tags" in change and "t2" not in want.tags:
        assert store.find_series(db.id, SeriesFilter(tags=("t2",))) == []
    if "attributes" in change and "a" not in want.attributes:
        assert store.find_series(db.id, SeriesFilter(attributes={"a": ("1",)})) == []


def test_update_unknown_series(store: Store, db: Database) -> None:
    assert store.update_series(db.id, "0" * 32, name="x") is None


def test_find_series_ordered_by_key_bytes(store: Store, db: Database) -> None:
    keys = ["b", "B", "a", "aa", "a.b", "_x", "Z9", "0", "\u00e9", "z", "a b", "A"]
    for k in keys:
        store.create_series(db.id, k)
    found = [r.key for r in store.find_series(db.id, SeriesFilter())]
    assert found == sorted(keys, key=lambda k: k.encode())


def test_existing_keys(store: Store, db: Database) -> None:
    credentials = store.create_database("other")
    other_db = store.authenticate(credentials.key, credentials.secret)
    assert other_db is not None
    store.create_series(db.id, "a")
    store.create_series(db.id, "b;x:\\7b")
    store.create_series(other_db.id, "c")
    assert store.existing_keys(db.id, []) == set()
    assert store.existing_keys(db.id, ["a", "b;x:\\7b", "c", "zz"]) == {"a", "b;x:\\7b"}
    assert store.existing_keys(other_db.id, ["a", "c"]) == {"c"}


def test_find_series_examples(store: Store, db: Database) -> None:
    a = store.create_series(db.id, "a", tags=["red", "big"], attributes={"host": "h1", "dc": "e"})
    b = store.create_series(db.id, "b", tags=["red"], attributes={"host": "h2", "dc": "e"})
    c = store.create_series(db.id, "c", tags=["big"], attributes={"host": "h1"})
    d = store.create_series(db.id, "d")

    def find(**kwargs: Any) -> list[str]:
        return [r.key for r in store.find_series(db.id, SeriesFilter(**kwargs))]

    assert find() == ["a", "b", "c", "d"]
    assert find(ids=(b.id, d.id)) == ["b", "d"]
    assert find(keys=("c", "a", "zz")) == ["a", "c"]
    assert find(ids=(a.id,), keys=("b",)) == ["a", "b"]
    assert find(ids=(a.id,), keys=("a",)) == ["a"]
    assert find(tags=("red",)) == ["a", "b"]
    assert find(tags=("red", "big")) == ["a"]
    assert find(tags=("red", "nope")) == []
    assert find(attributes={"host": ("h1",)}) == ["a", "c"]
    assert find(attributes={"host": ("h1", "h2")}) == ["a", "b", "c"]
    assert find(attributes={"host": ("h1",), "dc": ("e",)}) == ["a"]
    assert find(attributes={"host": ()}) == []
    assert find(attributes={"dc": ("e",)}, tags=("big",)) == ["a"]
    assert find(keys=("b", "c"), tags=("red",)) == ["b"]
    assert find(ids=(c.id, d.id), attributes={"host": ("h1",)}) == ["c"]
    assert find(ids=("unknown",)) == []
    assert find(keys=("A",)) == []  # case-sensitive


SERIES_KEYS = ["alpha", "Beta", "gamma.1", "gamma.2", "delta", "eps", "zeta", "eta", "theta"]
TAG_POOL = ["red", "green", "blue", "x"]
ATTR_POOL = {"host": ["h1", "h2", "h3"], "dc": ["east", "west"], "rack": ["1", "2"]}


def test_find_and_delete_series_match_the_reference(store: Store, db: Database) -> None:
    rnd = random.Random(7)
    records = []
    for k in SERIES_KEYS:
        tags = rnd.sample(TAG_POOL, rnd.randint(0, 3))
        attrs = {n: rnd.choice(v) for n, v in ATTR_POOL.items() if rnd.random() < 0.7}
        records.append(store.create_series(db.id, k, tags=tags, attributes=attrs))
    ordered = sorted(records, key=lambda r: r.key.encode())
    ids = [r.id for r in records]

    filters = st.builds(
        SeriesFilter,
        ids=st.lists(st.sampled_from([*ids, "missing"]), max_size=3).map(tuple),
        keys=st.lists(st.sampled_from([*SERIES_KEYS, "missing"]), max_size=3).map(tuple),
        tags=st.lists(st.sampled_from(TAG_POOL), max_size=3).map(tuple),
        attributes=st.dictionaries(
            st.sampled_from(sorted(ATTR_POOL)),
            st.lists(st.sampled_from(["h1", "h2", "h3", "east", "west", "1", "2"]), max_size=3).map(
                tuple
            ),
            max_size=2,
        ),
    )

    @settings(max_examples=200, deadline=None, database=None)
    @given(flt=filters)
    def check(flt: SeriesFilter) -> None:
        assert store.find_series(db.id, flt) == [r for r in ordered if flt.matches(r)]

    check()

    doomed = SeriesFilter(tags=("red",), attributes={"dc": ("east", "west")})
    expected = [r for r in ordered if not doomed.matches(r)]
    assert store.delete_series(db.id, doomed) == len(ordered) - len(expected)
    assert store.find_series(db.id, SeriesFilter()) == expected


def test_delete_series(store: Store, db: Database) -> None:
    for k in ("a", "b", "c"):
        store.write_points(db.id, batch(key(k), [1, 2], [1, 2]))
    old_a = series_id(store, db, "a")
    assert store.delete_series(db.id, SeriesFilter(keys=("a", "nope"))) == 1
    assert store.lookup_series(db.id, "id", old_a) is None
    assert store.lookup_series(db.id, "key", "a") is None
    assert store.read_points(db.id, old_a, -FAR, FAR).ts.shape == (0,)
    # The key is free again and the new series starts empty.
    fresh = store.create_series(db.id, "a")
    assert fresh.id != old_a
    assert read_all(store, db, fresh.id) == []
    assert store.delete_series(db.id, SeriesFilter(keys=("nope",))) == 0
    assert store.delete_series(db.id, None) == 3
    assert store.find_series(db.id, SeriesFilter()) == []
    assert store.delete_series(db.id, None) == 0
    store.write_points(db.id, batch(key("b"), [5], [5]))
    assert read_all(store, db, series_id(store, db, "b")) == [(5, 5, int)]


# -- writes and increments -----------------------------------------------------------------------


def test_write_read_preserves_int_and_float(store: Store, db: Database) -> None:
    store.write_points(
        db.id,
        batch(key("k"), [3, 1, 2, 4], [3.0, 1, 2.5, -(2**53)], is_int=[False, True, False, True]),
    )
    sid = series_id(store, db, "k")
    points = store.read_points(db.id, sid, -FAR, FAR)
    check_points(points)
    assert rows(points) == [(1, 1, int), (2, 2.5, float), (3, 3.0, float), (4, -(2**53), int)]


def test_write_by_unknown_key_creates_series(store: Store, db: Database) -> None:
    store.write_points(db.id, batch(key("new.key"), [1], [1]))
    record = store.lookup_series(db.id, "key", "new.key")
    assert record is not None
    assert HEX32.match(record.id)
    assert record == SeriesRecord(record.id, "new.key", "", (), {})


def test_write_by_unknown_id_creates_series_with_that_key(store: Store, db: Database) -> None:
    store.write_points(db.id, batch(by_id("non-existent"), [1], [1]), increment=True)
    record = store.lookup_series(db.id, "id", "non-existent")
    assert record == SeriesRecord("non-existent", "non-existent", "", (), {})
    assert read_all(store, db, "non-existent") == [(1, 1, int)]


def test_write_by_existing_id_and_key(store: Store, db: Database) -> None:
    record = store.create_series(db.id, "k", "named", ["t"])
    store.write_points(
        db.id,
        batch([by_id(record.id), key("k")], [1, 2, 1], [10, 20, 11], ref_index=[0, 1, 1]),
    )
    assert read_all(store, db, record.id) == [(1, 11, int), (2, 20, int)]
    assert store.find_series(db.id, SeriesFilter()) == [record]


def test_batch_with_key_conflict_writes_nothing(store: Store, db: Database) -> None:
    store.write_points(db.id, batch(key("taken"), [1], [1]))
    before = store.find_series(db.id, SeriesFilter())
    bad = batch(
        [key("other"), key("taken"), by_id("taken")],
        [5, 6, 7, 8],
        [5, 6, 7, 8],
        ref_index=[0, 1, 2, 0],
    )
    for increment in (False, True):
        with pytest.raises(KeyConflict):
            store.write_points(db.id, bad, increment=increment)
        assert store.find_series(db.id, SeriesFilter()) == before
        assert read_all(store, db, before[0].id) == [(1, 1, int)]
    # The store still works afterwards.
    store.write_points(db.id, batch(key("taken"), [2], [2]))
    assert read_all(store, db, before[0].id) == [(1, 1, int), (2, 2, int)]


@pytest.mark.parametrize("size", [1, 200])  # the per-point path and the grouped path
def test_a_write_creating_too_many_series_writes_nothing(
    store: Store, db: Database, size: int
) -> None:
    """``max_new_series`` bounds the series a write creates (existing ones do not count):
    beyond it TooManyNewSeries, and neither series nor points are written."""
    store.write_points(db.id, batch(key("old"), [1], [1]))
    before = store.find_series(db.id, SeriesFilter())
    refs = [key("old"), key("new.1"), key("new.2"), by_id("new.3")]
    points = len(refs) * size
    over = dataclasses.replace(
        batch(refs, range(points), 1, ref_index=[i % len(refs) for i in range(points)]),
        max_new_series=2,
    )
    for increment in (False, True):
        with pytest.raises(TooManyNewSeries) as raised:
            store.write_points(db.id, over, increment=increment)
        assert (raised.value.count, raised.value.limit) == (3, 2)
        assert store.find_series(db.id, SeriesFilter()) == before
        assert read_all(store, db, before[0].id) == [(1, 1, int)]
    store.write_points(db.id, dataclasses.replace(over, max_new_series=3))
    assert len(store.find_series(db.id, SeriesFilter())) == 4


@pytest.mark.parametrize("increment", [False, True])
def test_skip_conflicts_writes_the_other_refs(store: Store, db: Database, increment: bool) -> None:
    """With ``skip_conflicts``, a ref that cannot be created is left out and named; the
    rest of the batch is written, small and large alike."""
    taken = store.create_series(db.id, "room.1")
    for size in (4, 200):  # the per-point path and the grouped path
        refs = [key(f"good{size}"), by_id("room.1"), key(f"new{size}"), by_id(f"fresh{size}")]
        index = np.arange(size) % 4
        ts = np.arange(size) // 4 + 1
        written = WriteBatch(
            refs, index.astype(np.int32), ts.astype(np.int64), np.full(size, 7.0),
            np.ones(size, np.bool_), skip_conflicts=True,
        )  # fmt: skip
        assert store.write_points(db.id, written, increment=increment) == (1,)
        count = len(range(0, size, 4))
        for k in (f"good{size}", f"new{size}", f"fresh{size}"):
            assert read_all(store, db, series_id(store, db, k)) == [
                (t, 7, int) for t in range(1, count + 1)
            ]
        assert store.lookup_series(db.id, "id", "room.1") is None
        assert read_all(store, db, taken.id) == []


def test_skip_conflicts_of_an_id_a_key_in_the_same_batch_took(store: Store, db: Database) -> None:
    refs = [key("dup"), by_id("dup")]
    written = WriteBatch(
        refs, np.array([0, 1], np.int32), np.array([1, 1], np.int64), np.ones(2),
        np.ones(2, np.bool_), skip_conflicts=True,
    )  # fmt: skip
    assert store.write_points(db.id, written) == (1,)
    assert read_all(store, db, series_id(store, db, "dup")) == [(1, 1, int)]
    with pytest.raises(KeyConflict):
        store.write_points(db.id, batch([key("dup2"), by_id("dup2")], [1, 1], [1, 1], None, [0, 1]))
    assert store.lookup_series(db.id, "key", "dup2") is None


@pytest.mark.parametrize(
    ("first", "second"),
    [(1e308, 1e308), (-1e308, -1.5e308), (2**53, 1), (-(2**53), -1)],
    ids=["float-overflow", "negative-overflow", "int-beyond-2**53", "negative-int"],
)
@pytest.mark.parametrize("where", ["stored", "same-batch", "many-series"])
def test_increments_beyond_what_a_write_stores_change_nothing(
    store: Store, db: Database, first: float, second: float, where: str
) -> None:
    """An increment whose result a write could not store (not finite, an integer beyond
    2**53) raises ValueOutOfRange and changes nothing."""
    is_int = all(isinstance(v, int) for v in (first, second))
    store.write_points(db.id, batch(key("k"), [5], [first], [is_int]))
    before = read_all(store, db, series_id(store, db, "k"))
    if where == "stored":
        bad = batch(key("k"), [5], [second], [is_int])
    elif where == "same-batch":
        bad = batch(key("k"), [6, 6], [first, second], [is_int, is_int])
    else:
        refs = [key(f"other{i}") for i in range(100)] + [key("k")]
        bad = batch(
            refs, [*range(100), 5], [*([1.0] * 100), second], [True] * 100 + [is_int],
            ref_index=list(range(101)),
        )  # fmt: skip
    with pytest.raises(ValueOutOfRange):
        store.write_points(db.id, bad, increment=True)
    assert read_all(store, db, series_id(store, db, "k")) == before
    assert store.lookup_series(db.id, "key", "other0") is None


def test_create_series_many(store: Store, db: Database) -> None:
    store.create_series(db.id, "exists")
    created = store.create_series_many(
        db.id,
        [
            NewSeries("a", "A", ("t1", "t2", "t1"), {"room": "1"}),
            NewSeries("exists"),
            NewSeries(None, tags=("t1",)),
            NewSeries("a"),
            NewSeries("b", attributes={"room": "2"}),
        ],
    )
    a, conflict, anonymous, again, b = created
    assert isinstance(a, SeriesRecord)
    assert isinstance(anonymous, SeriesRecord)
    assert isinstance(b, SeriesRecord)
    assert a == SeriesRecord(a.id, "a", "A", ("t1", "t2"), {"room": "1"})
    assert HEX32.match(a.id)
    assert HEX32.match(anonymous.id)
    assert a.id != anonymous.id
    assert anonymous.key == anonymous.id
    assert isinstance(conflict, KeyConflict)
    assert conflict.key == "exists"
    assert isinstance(again, KeyConflict)
    assert again.key == "a"
    for record in (a, anonymous, b):
        assert store.lookup_series(db.id, "id", record.id) == record
    assert store.find_series(db.id, SeriesFilter(tags=("t1",))) == sorted(
        [a, anonymous], key=lambda r: r.key.encode()
    )
    assert store.find_series(db.id, SeriesFilter(attributes={"room": ("2",)})) == [b]
    store.write_points(db.id, batch(key("b"), [1], [1]))
    assert read_all(store, db, b.id) == [(1, 1, int)]
    assert store.create_series_many(db.id, []) == []


def test_find_series_page_walks_every_series_once(store: Store, db: Database) -> None:
    keys = ["b", "a", "é", "a.1", "Z", "zz", "a b", "~"]
    store.create_series_many(
        db.id, [NewSeries(k, tags=("odd",) * (i % 2)) for i, k in enumerate(keys)]
    )
    for flt in (SeriesFilter(), SeriesFilter(tags=("odd",))):
        everything = store.find_series(db.id, flt)
        for limit in (1, 3, 100):
            walked: list[SeriesRecord] = []
            page = store.find_series_page(db.id, flt, limit=limit)
            while page:
                assert len(page) <= limit
                walked += page
                page = store.find_series_page(db.id, flt, after=page[-1].key, limit=limit)
            assert walked == everything
    assert store.find_series_page(db.id, SeriesFilter(), after=max(keys), limit=5) == []


def test_a_page_asked_again_sees_every_change(store: Store, db: Database) -> None:
    """A listing asked again and again (as dashboards do) follows every change at once."""
    flt = SeriesFilter(tags=("t",))

    def keys() -> list[str]:
        store.find_series_page(db.id, flt, limit=50)  # asked twice: a store may keep it
        return [r.key for r in store.find_series_page(db.id, flt, limit=50)]

    assert keys() == []
    a = store.create_series(db.id, "a", tags=["t"])
    assert keys() == ["a"]
    store.create_series_many(db.id, [NewSeries("b", tags=("t",)), NewSeries("c")])
    assert keys() == ["a", "b"]
    c = store.lookup_series(db.id, "key", "c")
    assert c is not None
    store.update_series(db.id, c.id, tags=["t"])
    assert keys() == ["a", "b", "c"]
    store.update_series(db.id, a.id, tags=[])
    assert keys() == ["b", "c"]
    store.delete_series(db.id, SeriesFilter(keys=("b",)))
    assert keys() == ["c"]
    everything = SeriesFilter()
    store.find_series_page(db.id, everything, limit=50)
    store.write_points(db.id, batch(key("made-by-a-write"), [1], [1]))
    assert [r.key for r in store.find_series_page(db.id, everything, limit=50)] == [
        "a",
        "c",
        "made-by-a-write",
    ]


def test_create_series_many_at_scale(store: Store, db: Database) -> None:
    items = [NewSeries(f"s{i}", tags=(f"rack-{i % 10}",)) for i in range(3000)]
    created = store.create_series_many(db.id, items)
    assert all(isinstance(c, SeriesRecord) for c in created)
    assert len({c.id for c in created if isinstance(c, SeriesRecord)}) == 3000
    assert len(store.find_series(db.id, SeriesFilter(tags=("rack-3",)))) == 300


@TINY_BLOCKS_TOO
def test_overwrite_is_last_writer_wins(store: Store, db: Database) -> None:
    store.write_points(db.id, batch(key("k"), [1, 2, 3], [1, 2, 3]))
    store.write_points(db.id, batch(key("k"), [2, 3, 4], [2.5, 30, 4.0], is_int=[0, 1, 0]))
    store.write_points(db.id, batch(key("k"), [1], [9]))
    sid = series_id(store, db, "k")
    assert read_all(store, db, sid) == [(1, 9, int), (2, 2.5, float), (3, 30, int), (4, 4.0, float)]


@TINY_BLOCKS_TOO
def test_duplicates_in_one_batch(store: Store, db: Database) -> None:
    store.write_points(
        db.id, batch(key("w"), [5, 1, 5, 5, 1], [1, 2, 3.5, 4, 5], is_int=[1, 1, 0, 1, 1])
    )
    assert read_all(store, db, series_id(store, db, "w")) == [(1, 5, int), (5, 4, int)]
    store.write_points(db.id, batch(key("i"), [5, 1, 5, 5], [1, 2, 3, 4]), increment=True)
    assert read_all(store, db, series_id(store, db, "i")) == [(1, 2, int), (5, 8, int)]
    store.write_points(db.id, batch(key("i"), [5, 5], [0.5, 1]), increment=True)
    assert read_all(store, db, series_id(store, db, "i")) == [(1, 2, int), (5, 9.5, float)]


@pytest.mark.parametrize(
    ("old", "inc", "expected"),
    [
        (None, 5, (5, int)),
        (None, 2.5, (2.5, float)),
        (None, -3, (-3, int)),
        (10, 5, (15, int)),
        (10, -15, (-5, int)),
        (10, 0.5, (10.5, float)),
        (1.5, 2, (3.5, float)),
        (1.5, 1.5, (3.0, float)),
        (2.0, 2, (4.0, float)),
        (2, 2.0, (4.0, float)),
        (2**53 - 1, 1, (2**53, int)),
        (2**53, 2.5, (float(2**53 + 2), float)),  # a float sum may go beyond 2**53
    ],
)
def test_increment(
    store: Store, db: Database, old: float | None, inc: float, expected: tuple[float, type]
) -> None:
    if old is not None:
        store.write_points(db.id, batch(key("k"), [7], [old], is_int=isinstance(old, int)))
    store.write_points(
        db.id, batch(key("k"), [7], [inc], is_int=isinstance(inc, int)), increment=True
    )
    [(ts, value, kind)] = read_all(store, db, series_id(store, db, "k"))
    assert (ts, value, kind) == (7, *expected)


def test_multi_series_batch(store: Store, db: Database) -> None:
    refs = [key("a"), key("b"), key("a"), key("c")]
    store.write_points(
        db.id, batch(refs, [1, 1, 2, 3, 2], [10, 20, 30, 40, 50], ref_index=[0, 1, 2, 3, 1])
    )
    assert read_all(store, db, series_id(store, db, "a")) == [(1, 10, int), (2, 30, int)]
    assert read_all(store, db, series_id(store, db, "b")) == [(1, 20, int), (2, 50, int)]
    assert read_all(store, db, series_id(store, db, "c")) == [(3, 40, int)]


@TINY_BLOCKS_TOO
def test_batch_spanning_many_blocks(store: Store, db: Database) -> None:
    n = 25_000
    ts = 1_325_376_000_000 + 60_000 * np.arange(n, dtype=np.int64)
    values = np.linspace(-1000, 1000, n)
    store.write_points(db.id, batch(key("big"), ts, values, is_int=False))
    sid = series_id(store, db, "big")
    points = store.read_points(db.id, sid, -FAR, FAR)
    check_points(points)
    assert np.array_equal(points.ts, ts)
    assert np.array_equal(points.values, values)
    assert not points.is_int.any()
    for lo, hi in [(0, 1), (4095, 4097), (4096, 8192), (100, 24_999), (12_345, 25_000)]:
        part = store.read_points(db.id, sid, int(ts[lo]), int(ts[hi - 1]) + 1)
        assert np.array_equal(part.ts, ts[lo:hi])
        assert np.array_equal(part.values, values[lo:hi])
    # A second pass that overwrites every other point, and increments the rest.
    store.write_points(db.id, batch(key("big"), ts[::2], 1, is_int=True))
    store.write_points(db.id, batch(key("big"), ts[1::2], 1, is_int=True), increment=True)
    points = store.read_points(db.id, sid, -FAR, FAR)
    expected = values + 1
    expected[::2] = 1
    assert np.array_equal(points.ts, ts)
    assert np.array_equal(points.values, expected)
    assert np.array_equal(points.is_int, np.arange(n) % 2 == 0)


@TINY_BLOCKS_TOO
def test_out_of_order_points_and_points_before_the_first_block(store: Store, db: Database) -> None:
    rnd = np.random.default_rng(1)
    model = Model()
    ts = 1_000_000 + rnd.permutation(9_000).astype(np.int64) * 10
    values = rnd.integers(-100, 100, size=9_000).astype(np.float64)
    chunks: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]] = [
        (ts, values),  # shuffled, many blocks
        (np.array([999_999, 5, 999_990, -7]), np.array([1.0, 2, 3, 4])),  # before the first
        (np.arange(-20_000, -10_000, 2), np.ones(5_000)),  # a whole run before the first
        (np.array([1_000_005, 1_045_678, 1_089_995]), np.array([0.25, 0.5, 0.75])),  # between
        (np.array([2**40, 2**41]), np.array([1.0, 2.0])),  # far after the last (wide block)
    ]
    for chunk_ts, chunk_values in chunks:
        is_int = chunk_values == np.trunc(chunk_values)
        store.write_points(db.id, batch(key("k"), chunk_ts, chunk_values, is_int))
        model.apply(
            "k",
            list(zip(chunk_ts.tolist(), chunk_values.tolist(), is_int.tolist(), strict=True)),
            False,
        )
    assert read_all(store, db, series_id(store, db, "k")) == model.rows("k")


@TINY_BLOCKS_TOO
def test_random_single_point_writes_into_full_blocks(store: Store, db: Database) -> None:
    model = Model()
    ts = np.arange(0, 3 * 8192, 2, dtype=np.int64)
    store.write_points(db.id, batch(key("k"), ts, ts))
    model.apply("k", [(t, float(t), True) for t in ts.tolist()], False)
    rnd = random.Random(3)
    for i in range(150):
        t = rnd.randrange(-100, 3 * 8192 + 100)
        value: float = rnd.randrange(-50, 50) if i % 3 else rnd.randrange(-50, 50) / 4
        is_int = isinstance(value, int)
        increment = i % 2 == 1
        store.write_points(db.id, batch(key("k"), [t], [value], is_int), increment=increment)
        model.apply("k", [(t, float(value), is_int)], increment)
    sid = series_id(store, db, "k")
    assert read_all(store, db, sid) == model.rows("k")
    for lo in range(-50, 3 * 8192, 4001):
        assert rows(store.read_points(db.id, sid, lo, lo + 3000)) == model.rows("k", lo, lo + 3000)


@TINY_BLOCKS_TOO
def test_read_many_reads_each_series_as_read_points(store: Store, db: Database) -> None:
    """``read_points_many``, ``read_pieces_many`` (joined) and ``estimate_points`` (an upper
    bound, when told) against ``read_points`` of each series: blocks, head rows after them
    (small writes), rewrites, an empty series, an unknown id and a repeated one."""
    rnd = random.Random(16)
    for name in ("a", "b", "c"):
        ts = sorted(rnd.sample(range(400), 60))
        store.write_points(db.id, batch(key(name), ts, [rnd.randrange(-9, 9) / 2 for _ in ts]))
        for t in rnd.sample(range(380, 460), 5):  # single points: the head where there is one
            store.write_points(db.id, batch(key(name), [t], [rnd.randrange(-9, 9)]))
    store.write_points(db.id, batch(key("a"), [5, 7], [1.5, 2]))  # rewrites inside a block
    evenly = list(range(0, 400, 5))  # evenly spaced: blocks that say their step
    store.write_points(db.id, batch(key("d"), evenly, [t % 7 for t in evenly]))
    store.create_series(db.id, "empty")
    ids = [series_id(store, db, k) for k in ("a", "b", "c", "d", "empty")]
    ids += ["0" * 32, ids[1]]
    bounds = [(-FAR, FAR), (0, 0), (10, 5)]
    for _ in range(25):
        lo, hi = sorted(rnd.sample(range(-20, 480), 2))
        bounds.append((lo, hi))
    for lo, hi in bounds:
        each = [rows(store.read_points(db.id, i, lo, hi)) for i in ids]
        many = store.read_points_many(db.id, ids, lo, hi)
        for points in many:
            check_points(points)
        assert [rows(points) for points in many] == each
        pieces = store.read_pieces_many(db.id, ids, lo, hi)
        joined = [
            [row for piece in series for row in rows(Points(*piece[:3]))] for series in pieces
        ]
        assert joined == each
        for ts, _, _, step in (piece for series in pieces for piece in series):
            if step:  # the step a piece tells is that of its timestamps
                assert ts.tolist() == (int(ts[0]) + step * np.arange(ts.shape[0])).tolist()
        estimate = store.estimate_points(db.id, ids, lo, hi)
        assert estimate is None or estimate >= sum(len(found) for found in each[:-1])
    assert store.read_points_many(db.id, [], 0, 100) == []


def test_read_range_is_half_open(store: Store, db: Database) -> None:
    store.write_points(db.id, batch(key("k"), [10, 20, 30], [1, 2, 3]))
    sid = series_id(store, db, "k")

    def read(start: int, end: int) -> list[int]:
        points = store.read_points(db.id, sid, start, end)
        check_points(points)
        return [int(t) for t in points.ts]

    assert read(10, 30) == [10, 20]
    assert read(10, 31) == [10, 20, 30]
    assert read(11, 30) == [20]
    assert read(20, 20) == []
    assert read(30, 10) == []
    assert read(31, 100) == []
    assert read(-FAR, 10) == []
    assert read(-FAR, FAR) == [10, 20, 30]


def test_empty_batch_changes_nothing(store: Store, db: Database) -> None:
    store.write_points(db.id, batch(key("k"), [], []))
    store.write_points(db.id, batch(key("k"), [], []), increment=True)
    assert store.lookup_series(db.id, "key", "k") is None


# -- range delete --------------------------------------------------------------------------------


@TINY_BLOCKS_TOO
def test_delete_points_half_open(store: Store, db: Database) -> None:
    store.write_points(db.id, batch(key("k"), [10, 20, 30, 40], [1, 2, 3, 4]))
    sid = series_id(store, db, "k")
    assert store.delete_points(db.id, sid, 20, 20) == 0
    assert store.delete_points(db.id, sid, 30, 20) == 0
    assert store.delete_points(db.id, sid, 20, 40) == 2
    assert store.read_points(db.id, sid, -FAR, FAR).ts.tolist() == [10, 40]
    assert store.delete_points(db.id, sid, 20, 40) == 0
    assert store.delete_points(db.id, sid, 40, 41) == 1
    assert store.delete_points(db.id, sid, -FAR, FAR) == 1
    assert read_all(store, db, sid) == []
    assert store.lookup_series(db.id, "id", sid) is not None  # the series stays
    store.write_points(db.id, batch(key("k"), [5], [5]))
    assert read_all(store, db, sid) == [(5, 5, int)]


@TINY_BLOCKS_TOO
def test_delete_points_every_range_of_a_small_series(store: Store, db: Database) -> None:
    ts = list(range(0, 24, 2))
    sid = store.create_series(db.id, "k").id
    for start in range(-1, 25):
        for end in range(start + 1, 26, 3 if start % 2 else 1):
            store.write_points(db.id, batch(key("k"), ts, ts))
            expected = [t for t in ts if not start <= t < end]
            assert store.delete_points(db.id, sid, start, end) == len(ts) - len(expected)
            assert store.read_points(db.id, sid, -FAR, FAR).ts.tolist() == expected


@TINY_BLOCKS_TOO
def test_delete_points_across_block_boundaries(store: Store, db: Database) -> None:
    model = Model()
    ts = np.arange(30_000, dtype=np.int64) * 3
    store.write_points(db.id, batch(key("k"), ts, ts % 7))
    model.apply("k", [(t, float(t % 7), True) for t in ts.tolist()], False)
    sid = series_id(store, db, "k")
    for start, end in [(15_000, 45_000), (12_288, 12_289), (0, 10), (89_990, 90_100), (-5, 3)]:
        assert store.delete_points(db.id, sid, start, end) == model.delete("k", start, end)
        assert read_all(store, db, sid) == model.rows("k")
    # Write into the hole and around its edges again.
    refill = np.arange(14_000, 46_000, 5, dtype=np.int64)
    store.write_points(db.id, batch(key("k"), refill, 1), increment=True)
    model.apply("k", [(t, 1.0, True) for t in refill.tolist()], True)
    assert read_all(store, db, sid) == model.rows("k")


# -- single value --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ts", "exact", "before", "after", "nearest"),
    [
        (5, None, None, 10, 10),
        (10, 10, 10, 10, 10),
        (14, None, 10, 20, 10),
        (15, None, 10, 20, 10),  # a tie goes to the earlier point
        (16, None, 10, 20, 20),
        (20, 20, 20, 20, 20),
        (30, None, 20, 40, 20),  # tie again
        (31, None, 20, 40, 40),
        (40, 40, 40, 40, 40),
        (41, None, 40, None, 40),
    ],
)
@TINY_BLOCKS_TOO
def test_single_value(
    store: Store,
    db: Database,
    ts: int,
    exact: int | None,
    before: int | None,
    after: int | None,
    nearest: int | None,
) -> None:
    values: dict[int, int | float] = {10: 1, 20: 2.5, 40: -4}
    store.write_points(
        db.id, batch(key("k"), list(values), list(values.values()), is_int=[1, 0, 1])
    )
    sid = series_id(store, db, "k")
    for direction, at in zip(DIRECTIONS, (exact, before, after, nearest), strict=True):
        got = store.single_value(db.id, sid, ts, direction)
        want = None if at is None else (at, values[at])
        assert got == want, direction
        if got is not None:
            assert type(got[1]) is type(values[got[0]])


@TINY_BLOCKS_TOO
def test_single_value_on_an_empty_series(store: Store, db: Database) -> None:
    record = store.create_series(db.id, "empty")
    store.write_points(db.id, batch(key("other"), [1, 2], [1, 2]))
    for direction in DIRECTIONS:
        assert store.single_value(db.id, record.id, 1, direction) is None
    store.write_points(db.id, batch(key("empty"), [100], [1]))
    store.delete_points(db.id, record.id, 0, 1000)
    for direction in DIRECTIONS:
        assert store.single_value(db.id, record.id, 100, direction) is None


@TINY_BLOCKS_TOO
def test_single_value_across_blocks(store: Store, db: Database) -> None:
    model = Model()
    ts = np.arange(0, 20_000 * 10, 10, dtype=np.int64)
    ts = np.delete(ts, np.arange(4000, 4200))  # a gap of 2,000 ms
    store.write_points(db.id, batch(key("k"), ts, ts // 10))
    model.apply("k", [(t, float(t // 10), True) for t in ts.tolist()], False)
    sid = series_id(store, db, "k")
    probes = [-1, 0, 5, 39_990, 39_995, 40_000, 41_000, 41_995, 42_000, 40_990, 40_995]
    probes += [int(t) + d for t in ts[4090:4100] for d in (-6, -5, 0, 4)]
    probes += [int(ts[-1]) + d for d in (-5, 0, 1, 10**9)]
    for probe in probes:
        for direction in DIRECTIONS:
            expected = model.single("k", probe, direction)
            got = store.single_value(db.id, sid, probe, direction)
            assert got == expected, (probe, direction)


# -- concurrency ---------------------------------------------------------------------------------


def run_threads(targets: Sequence[Callable[[], None]]) -> None:
    errors: list[BaseException] = []

    def wrap(target: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                target()
            except BaseException as exc:  # collected and re-raised in the test thread
                errors.append(exc)

        return run

    threads = [threading.Thread(target=wrap(t)) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


@TINY_BLOCKS_TOO
def test_concurrent_increments_are_exact(store: Store, db: Database) -> None:
    threads, rounds = 8, 25
    ts = np.arange(0, 5000, 250, dtype=np.int64)

    def worker() -> None:
        for _ in range(rounds):
            refs = [key("a"), key("b")]
            store.write_points(
                db.id,
                batch(refs, np.concatenate([ts, ts]), 1, True, [0] * len(ts) + [1] * len(ts)),
                increment=True,
            )

    run_threads([worker] * threads)
    for k in ("a", "b"):
        points = store.read_points(db.id, series_id(store, db, k), -FAR, FAR)
        assert points.ts.tolist() == ts.tolist()
        assert points.values.tolist() == [threads * rounds] * len(ts)
        assert points.is_int.all()


@TINY_BLOCKS_TOO
def test_readers_see_whole_batches_during_writes(store: Store, db: Database) -> None:
    per_batch, batches = 500, 40
    done = threading.Event()
    store.write_points(db.id, batch(key("k"), [0], [0]))
    sid = series_id(store, db, "k")

    def writer() -> None:
        try:
            for i in range(batches):
                ts = 1 + i * per_batch + np.arange(per_batch, dtype=np.int64)
                store.write_points(db.id, batch(key("k"), ts[::-1], ts[::-1]))
        finally:
            done.set()

    def reader() -> None:
        seen = 0
        while not done.is_set() or seen < 1 + per_batch * batches:
            points = store.read_points(db.id, sid, -FAR, FAR)
            check_points(points)
            assert (len(points) - 1) % per_batch == 0, len(points)
            assert len(points) >= seen
            assert np.array_equal(points.values, points.ts.astype(np.float64))
            seen = len(points)
            last = store.single_value(db.id, sid, FAR, "before")
            assert last is not None
            assert last[0] >= seen - 1

    run_threads([writer, reader, reader])


# -- against a model -----------------------------------------------------------------------------

KEYS = st.sampled_from(["a", "b", "c"])
SMALL_TS = st.integers(0, 20_000)
VALUES = st.one_of(
    st.integers(-1000, 1000).map(lambda v: (float(v), True)),
    st.integers(-4000, 4000).map(lambda v: (v / 4, False)),
)


class StoreMachine(RuleBasedStateMachine):
    """Random writes, increments, deletes and reads, checked against ``Model``."""

    #: The store under test, set on a subclass by the test.
    target: ClassVar[Store]

    def __init__(self) -> None:
        super().__init__()
        self.store = self.target
        self.model = Model()
        self.db = 0

    @initialize(seed=st.integers(0, 2**32 - 1))
    def fresh_database(self, seed: int) -> None:
        """A new database whose series start with some points (dense, medium, sparse)."""
        credentials = self.store.create_database("machine")
        database = self.store.authenticate(credentials.key, credentials.secret)
        assert database is not None
        self.db = database.id
        rnd = np.random.default_rng(seed)
        for k, count in (("a", 6000), ("b", 600), ("c", 60)):
            ts = np.sort(rnd.choice(20_000, size=int(rnd.integers(1, count)), replace=False))
            values = rnd.integers(-100, 100, ts.shape[0]) / rnd.choice([1, 4])
            is_int = values == np.trunc(values)
            self.store.write_points(self.db, batch(key(k), ts, values, is_int))
            self.model.apply(
                k, list(zip(ts.tolist(), values.tolist(), is_int.tolist(), strict=True)), False
            )

    def _id(self, k: str) -> str | None:
        record = self.store.lookup_series(self.db, "key", k)
        assert (record is not None) == (k in self.model.series)
        return None if record is None else record.id

    @rule(
        k=KEYS,
        points=st.lists(st.tuples(SMALL_TS, VALUES), max_size=20),
        increment=st.booleans(),
    )
    def write(self, k: str, points: list[tuple[int, tuple[float, bool]]], increment: bool) -> None:
        flat = [(t, v, i) for t, (v, i) in points]
        self.store.write_points(
            self.db,
            batch(key(k), [p[0] for p in flat], [p[1] for p in flat], [p[2] for p in flat]),
            increment=increment,
        )
        if flat:
            self.model.apply(k, flat, increment)

    @rule(
        k=KEYS,
        start=SMALL_TS,
        count=st.integers(1, 5000),
        step=st.integers(1, 3),
        seed=st.integers(0, 2**32 - 1),
        increment=st.booleans(),
    )
    def bulk(self, k: str, start: int, count: int, step: int, seed: int, increment: bool) -> None:
        rnd = np.random.default_rng(seed)
        ts = start + step * rnd.permutation(count).astype(np.int64)
        values = rnd.integers(-8, 8, count) / (1 if seed % 2 else 4)
        is_int = values == np.trunc(values) if seed % 2 else np.zeros(count, np.bool_)
        self.store.write_points(self.db, batch(key(k), ts, values, is_int), increment=increment)
        self.model.apply(
            k, list(zip(ts.tolist(), values.tolist(), is_int.tolist(), strict=True)), increment
        )

    @rule(
        k=KEYS,
        gaps=st.lists(st.integers(1, 40), min_size=1, max_size=3),
        values=st.lists(VALUES, min_size=3, max_size=3),
        increment=st.booleans(),
        queued=st.booleans(),
    )
    def append(
        self,
        k: str,
        gaps: list[int],
        values: list[tuple[float, bool]],
        increment: bool,
        queued: bool,
    ) -> None:
        """A few points after the last one (or on it): the small-append paths."""
        ts = max(self.model.series.get(k, {}), default=0) - 1
        flat = []
        for gap, (value, is_int) in zip(gaps, values, strict=False):
            ts += gap
            flat.append((ts, value, is_int))
        written = batch(key(k), [p[0] for p in flat], [p[1] for p in flat], [p[2] for p in flat])
        if queued:
            self.store.submit_write(self.db, written, increment=increment).result()
        else:
            self.store.write_points(self.db, written, increment=increment)
        self.model.apply(k, flat, increment)

    @rule(
        parts=st.lists(
            st.tuples(
                st.sampled_from(["a", "b", "c", "d", "e"]),
                st.lists(st.tuples(SMALL_TS, VALUES), min_size=1, max_size=40),
            ),
            min_size=1,
            max_size=6,
        ),
        increment=st.booleans(),
        interleave=st.booleans(),
        after_last=st.booleans(),
    )
    def many(
        self,
        parts: list[tuple[str, list[tuple[int, tuple[float, bool]]]]],
        increment: bool,
        interleave: bool,
        after_last: bool,
    ) -> None:
        """One batch for several series (new ones too), grouped or interleaved, after the
        last points (the appends of many series) or anywhere."""
        refs = sorted({k for k, _ in parts})
        flat: list[tuple[int, int, float, bool]] = []  # (ref index, ts, value, is_int)
        for k, points in parts:
            base = max(self.model.series.get(k, {}), default=0) + 1 if after_last else 0
            flat += [(refs.index(k), base + t, v, i) for t, (v, i) in points]
        if interleave:
            flat = flat[1::2] + flat[::2]
        else:
            flat.sort(key=lambda p: (p[0], p[1]))
        written = batch(
            [key(k) for k in refs],
            [p[1] for p in flat],
            [p[2] for p in flat],
            [p[3] for p in flat],
            ref_index=[p[0] for p in flat],
        )
        assert self.store.write_points(self.db, written, increment=increment) == ()
        for index, k in enumerate(refs):
            self.model.apply(k, [(t, v, i) for r, t, v, i in flat if r == index], increment)

    @rule(k=KEYS, start=SMALL_TS, length=st.integers(0, 12_000))
    def delete_range(self, k: str, start: int, length: int) -> None:
        sid = self._id(k)
        if sid is not None:
            deleted = self.store.delete_points(self.db, sid, start, start + length)
            assert deleted == self.model.delete(k, start, start + length)

    @rule(k=KEYS)
    def delete_series(self, k: str) -> None:
        deleted = self.store.delete_series(self.db, SeriesFilter(keys=(k,)))
        assert deleted == (1 if k in self.model.series else 0)
        self.model.series.pop(k, None)

    @rule(k=KEYS, start=SMALL_TS, length=st.integers(0, 25_000))
    def read(self, k: str, start: int, length: int) -> None:
        sid = self._id(k)
        if sid is not None:
            points = self.store.read_points(self.db, sid, start, start + length)
            check_points(points)
            assert rows(points) == self.model.rows(k, start, start + length)

    @rule(k=KEYS, probes=st.lists(st.integers(-10, 30_000), min_size=1, max_size=8))
    def single(self, k: str, probes: list[int]) -> None:
        sid = self._id(k)
        if sid is not None:
            for ts in probes:
                for direction in DIRECTIONS:
                    got = self.store.single_value(self.db, sid, ts, direction)
                    assert got == self.model.single(k, ts, direction), (ts, direction)

    def teardown(self) -> None:
        for k in list(self.model.series):
            sid = self._id(k)
            assert sid is not None
            assert read_all(self.store, Database(self.db, "", ""), sid) == self.model.rows(k)


@TINY_BLOCKS_TOO
def test_store_matches_a_dict_model(store: Store, backend: str) -> None:
    class Machine(StoreMachine):
        target = store

    run_state_machine_as_test(
        Machine,
        settings=settings(
            # Citus: what differs there is the SQL and where the locks are, not the logic; every
            # step is a distributed transaction, ten times slower (CI's time budget).
            max_examples=8 if backend == "citus" else 40,
            stateful_step_count=25,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )


@TINY_BLOCKS_TOO
def test_queued_writes_apply_in_order(store: Store, db: Database) -> None:
    """Writes queued together (``submit_write``; one transaction in a store with a writer
    queue) mix small appends, increments of the last point, writes into the middle, new
    series and a failing batch, and end as if they had run one after the other."""
    rnd = random.Random(11)
    model = Model()
    store.write_points(db.id, batch(key("taken"), [1], [1]))
    model.apply("taken", [(1, 1.0, True)], False)
    for _ in range(25):
        pending: list[tuple[Any, bool]] = []
        for _ in range(12):
            k = rnd.choice(["a", "b", "c", f"new{rnd.randrange(40)}"])
            last = max(model.series.get(k, {}), default=0)
            shape = rnd.randrange(5)
            if shape == 0:  # a write into the middle (or a first write)
                ts = [rnd.randrange(0, last + 2) for _ in range(rnd.randrange(1, 100))]
            elif shape == 1:  # the last point again
                ts = [last]
            else:  # an append
                ts = [last + 1 + i * rnd.randrange(1, 5) for i in range(rnd.randrange(1, 4))]
            values = [float(rnd.randrange(-9, 9)) / rnd.choice([1, 1, 1, 2]) for _ in ts]
            flags = [v == int(v) for v in values]
            increment = rnd.random() < 0.3
            if rnd.random() < 0.05:  # fails whole: the id is taken as a key
                bad = batch([key(k), by_id("taken")], [last + 1, 2], [1, 1], ref_index=[0, 1])
                pending.append((store.submit_write(db.id, bad), False))
                continue
            if increment and len(set(ts)) < len(ts):
                ts = sorted(set(ts))
                values, flags = values[: len(ts)], flags[: len(ts)]
            future = store.submit_write(
                db.id, batch(key(k), ts, values, flags), increment=increment
            )
            pending.append((future, True))
            point_list = list(zip(ts, values, flags, strict=True))
            if not increment:  # the last value given for a timestamp wins
                point_list = list({p[0]: p for p in point_list}.values())
            model.apply(k, point_list, increment)
        for future, ok in pending:
            if ok:
                future.result()
            else:
                with pytest.raises(KeyConflict):
                    future.result()
    for k in model.series:
        assert read_all(store, db, series_id(store, db, k)) == model.rows(k), k


def test_keys_round_trip(store: Store, db: Database) -> None:
    alphabet = string.ascii_letters + string.digits + ".:;-_/\\ "

    @settings(max_examples=60, deadline=None, database=None)
    @given(k=st.text(alphabet, min_size=1, max_size=40))
    def check(k: str) -> None:
        existing = store.lookup_series(db.id, "key", k)
        record = existing or store.create_series(db.id, k)
        assert record.key == k
        assert store.lookup_series(db.id, "key", k) == record
        assert store.find_series(db.id, SeriesFilter(keys=(k,))) == [record]

    check()


@TINY_BLOCKS_TOO
@pytest.mark.parametrize("size", [1, 3, 50], ids=["one", "small", "large"])
def test_negative_zero_keeps_its_sign(store: Store, db: Database, size: int) -> None:
    """-0.0 is a float of its own (a write path that stores whole floats as integers, such as
    a REAL column in SQLite, turns it into 0.0)."""
    ts = list(range(size))
    store.write_points(db.id, batch(key("z"), ts, [-0.0] * size, is_int=[False] * size))
    points = store.read_points(db.id, series_id(store, db, "z"), -FAR, FAR)
    assert [math.copysign(1, v) for v in points.values.tolist()] == [-1.0] * size
    assert store.single_value(db.id, series_id(store, db, "z"), 0, "exact") == (0, -0.0)
    found = store.single_value(db.id, series_id(store, db, "z"), 0, "exact")
    assert found is not None
    assert math.copysign(1, found[1]) == -1.0


def test_create_series_many_among_existing_keys(store: Store, db: Database) -> None:
    """Many series at once, some keys taken by series stored before: those items conflict,
    the others are created with their tags and attributes, whatever their characters."""
    store.create_series_many(db.id, [NewSeries(f"k{i}") for i in range(0, 600, 7)])
    odd = 'quote " backslash \\ é 日本 \t'
    items = [
        NewSeries(f"k{i}", f"n{i}", (f"t{i % 3}", odd, "all"), {"a": odd, "i": str(i)})
        for i in range(600)
    ]
    created = store.create_series_many(db.id, items)
    for i, result in enumerate(created):
        if i % 7 == 0:
            assert isinstance(result, KeyConflict)
            assert result.key == f"k{i}"
        else:
            assert isinstance(result, SeriesRecord)
            assert result == SeriesRecord(
                result.id, f"k{i}", f"n{i}", (f"t{i % 3}", odd, "all"), {"a": odd, "i": str(i)}
            )
            assert store.lookup_series(db.id, "key", f"k{i}") == result
    made = [r for r in created if isinstance(r, SeriesRecord)]
    assert store.find_series(db.id, SeriesFilter(tags=("all", odd))) == sorted(
        made, key=lambda r: r.key.encode()
    )
    assert [r.key for r in store.find_series(db.id, SeriesFilter(tags=("t1", "all")))] == sorted(
        (r.key for r in made if r.tags[0] == "t1"), key=str.encode
    )
    assert [r.key for r in store.find_series(db.id, SeriesFilter(attributes={"a": (odd,)}))] == (
        sorted((r.key for r in made), key=str.encode)
    )
    assert store.find_series(db.id, SeriesFilter(tags=("t1", "none"))) == []
