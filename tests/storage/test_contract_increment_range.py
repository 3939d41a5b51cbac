"""Increments that would leave the storable values (issue 25): a result that is not finite,
or an integer beyond 2**53, raises ValueOutOfRange and changes nothing, on every backend and
on every write path (one point, a small batch, a batch of many points, repeated timestamps)."""

from __future__ import annotations

import numpy as np
import pytest
from test_contract import FAR, TINY_BLOCKS_TOO, batch, key, read_all, series_id

from tempodb.storage.base import MAX_EXACT_INT, Database, Store, ValueOutOfRange


def snapshot(store: Store, db: Database, *keys: str) -> dict[str, object]:
    return {k: read_all(store, db, series_id(store, db, k)) for k in keys}


@TINY_BLOCKS_TOO
@pytest.mark.parametrize(
    ("old", "inc"),
    [
        (1e308, 1e308),
        (-1.5e308, -0.5e308),
        (MAX_EXACT_INT - 1, 2),
        (-MAX_EXACT_INT, -1),
    ],
    ids=["float-overflow", "negative-overflow", "int-beyond-2**53", "negative-int"],
)
@pytest.mark.parametrize("size", [1, 3, 200], ids=["one", "small", "large"])
def test_an_increment_out_of_range_is_refused_and_changes_nothing(
    store: Store, db: Database, old: float, inc: float, size: int
) -> None:
    is_int = isinstance(old, int)
    ts = np.arange(size, dtype=np.int64) * 1000
    store.write_points(db.id, batch(key("k"), ts, old, is_int=is_int))
    store.write_points(db.id, batch(key("other"), [5], [1], is_int=True))
    before = snapshot(store, db, "k", "other")
    # Every point of the increment is fine but the last one of "k"; "other" comes first.
    refs = [key("other"), key("k")]
    values = [1] + [0] * (size - 1) + [inc]
    request = batch(
        refs,
        [5, *ts.tolist()],
        values,
        is_int=[True] + [is_int] * size,
        ref_index=[0] + [1] * size,
    )
    at = f"{np.datetime64((size - 1) * 1000, 'ms')}Z"
    with pytest.raises(ValueOutOfRange, match=f"Increment out of range at {at}: "):
        store.write_points(db.id, request, increment=True)
    assert snapshot(store, db, "k", "other") == before
    # The store goes on working, and increments within range still add up.
    store.write_points(db.id, batch(key("other"), [5], [1], is_int=True), increment=True)
    assert read_all(store, db, series_id(store, db, "other")) == [(5, 2, int)]


@pytest.mark.parametrize(
    ("values", "is_int"),
    [([1e308, 1e308], False), ([2**52, 2**52, 1], True), ([-(2**53), -1], True)],
    ids=["float", "int", "negative-int"],
)
def test_repeated_timestamps_of_one_increment_are_checked_too(
    store: Store, db: Database, values: list[float], is_int: bool
) -> None:
    """One increment that adds to a new timestamp several times (summed before anything is
    stored) is refused when the sum is out of range, with the rest of its points."""
    store.write_points(db.id, batch(key("k"), [1], [1], is_int=True))
    request = batch(
        key("k"), [1] + [9] * len(values), [1, *values], [True] + [is_int] * len(values)
    )
    with pytest.raises(ValueOutOfRange):
        store.write_points(db.id, request, increment=True)
    assert read_all(store, db, series_id(store, db, "k")) == [(1, 1, int)]


def test_increments_up_to_the_limits_are_stored(store: Store, db: Database) -> None:
    first = batch(key("k"), [1, 2, 3], [MAX_EXACT_INT - 1, 1e308, -5], [True, False, True])
    store.write_points(db.id, first)
    increments = batch(
        key("k"), [1, 2, 3, 3], [1, 7e307, -(2**52), -(2**52) + 5], [True, False, True, True]
    )
    store.write_points(db.id, increments, increment=True)
    stored = read_all(store, db, series_id(store, db, "k"))
    assert stored == [(1, MAX_EXACT_INT, int), (2, 1.7e308, float), (3, -MAX_EXACT_INT, int)]
    assert store.read_points(db.id, series_id(store, db, "k"), -FAR, FAR).values.max() < np.inf
