"""The block codec: every encoding round-trips bit for bit, and blocks in the first formats
(fmt codes 0 and 1, no longer written) still decode."""

from __future__ import annotations

import struct

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tempodb.storage import blocks
from tempodb.storage.blocks import _MAX_MANTISSA, _scaled, decode, encode

values = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(-(2**53), 2**53).map(float),
    st.decimals(-(10**6), 10**6, places=2, allow_nan=False, allow_infinity=False).map(float),
)


edge_values = st.one_of(
    values,
    st.sampled_from([0.0, -0.0, float("nan"), float("inf"), -float("inf"), 2.0**53, 0.1, 1e300]),
    st.integers(-(2**53) - 2, 2**53 + 2).map(float),
)


@settings(max_examples=500, deadline=None)
@given(st.lists(edge_values, min_size=1, max_size=40), st.integers(0, 9))
def test_decimal_mantissas_in_c_are_the_reference_ones(vals: list[float], digits: int) -> None:
    assert blocks._speedups is not None, "the C extension is not built: run make install"
    ours = _scaled(np.array(vals, np.float64), digits)
    theirs = reference_mantissas(vals, 10.0**digits)
    assert (ours is None) == (theirs is None)
    if ours is not None and theirs is not None:
        assert ours.tolist() == theirs


def reference_mantissas(vals: list[float], scale: float) -> list[int] | None:
    """The integers m with ``v == m / scale`` bit for bit (so -0.0 is not decimal), each
    the value times the scale rounded half to even, below the cap; None if one has none."""
    found = []
    for value in vals:
        scaled = value * scale
        if not abs(scaled) < _MAX_MANTISSA:  # NaN and infinities too
            return None
        mantissa = round(scaled)
        if not abs(mantissa) < _MAX_MANTISSA:
            return None
        if struct.pack("<d", mantissa / scale) != struct.pack("<d", value):
            return None
        found.append(mantissa)
    return found


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.integers(-(2**62), 2**62), min_size=1, max_size=200, unique=True),
    st.data(),
)
def test_blocks_round_trip(instants: list[int], data: st.DataObject) -> None:
    ts = np.array(sorted(instants), np.int64)
    vals = np.array(data.draw(st.lists(values, min_size=len(ts), max_size=len(ts))), np.float64)
    flags = np.array(data.draw(st.lists(st.booleans(), min_size=len(ts), max_size=len(ts))))
    block = encode(ts, vals, flags)
    points = decode(block.first, block.n, block.fmt, block.ts, block.vals, block.mask)
    assert points.ts.tolist() == ts.tolist()
    assert points.values.view(np.int64).tolist() == vals.view(np.int64).tolist()
    assert points.is_int.tolist() == flags.tolist()


@settings(max_examples=200, deadline=None)
@given(
    first=st.integers(-(2**40), 2**40),
    step=st.integers(1, 2**20),
    n=st.integers(1, 50),
    moved=st.integers(0, 3),
    compress=st.booleans(),
)
def test_a_decoded_block_tells_the_step_of_evenly_spaced_timestamps(
    first: int, step: int, n: int, moved: int, compress: bool
) -> None:
    """``decode`` gives the step of a block stored as evenly spaced (two points or more),
    and 0 for any other: the timestamps are then ``first + step * i``, exactly."""
    ts = first + step * np.arange(n, dtype=np.int64)
    ts[-1] += moved
    block = encode(ts, np.zeros(n), np.zeros(n, np.bool_), compress=compress)
    points = decode(block.first, block.n, block.fmt, block.ts, block.vals, block.mask)
    assert points.ts.tolist() == ts.tolist()
    even = compress and n > 1 and (moved == 0 or n == 2)
    assert points.step == (int(ts[1] - ts[0]) if even else 0)
    if points.step:
        assert points.ts.tolist() == [first + points.step * i for i in range(n)]


def test_minute_data_round_trips_compactly() -> None:
    ts = 1_325_376_000_000 + 60_000 * np.arange(4096, dtype=np.int64)
    vals = np.round(20 + np.cumsum(np.random.default_rng(1).normal(0, 0.05, 4096)), 2)
    block = encode(ts, vals, np.zeros(4096, np.bool_))
    assert len(block.ts) == 8
    assert len(block.vals) < 4096
    points = decode(block.first, block.n, block.fmt, block.ts, block.vals, block.mask)
    assert points.ts.tolist() == ts.tolist()
    assert points.values.tolist() == vals.tolist()


def test_first_formats_still_decode() -> None:
    ts = np.array([10, 70, 130], np.int64)
    offsets = ts - 10
    # uint32 offsets and int32 values, all integers
    points = decode(
        10,
        3,
        0x01 | 0x04 | 0x10,
        offsets.astype("<u4").tobytes(),
        np.array([1, -2, 3], "<i4").tobytes(),
        None,
    )
    assert points.ts.tolist() == ts.tolist()
    assert points.values.tolist() == [1.0, -2.0, 3.0]
    assert points.is_int.tolist() == [True, True, True]
    # int64 offsets and float64 values with mixed flags
    points = decode(
        10,
        3,
        0x20,
        offsets.astype("<i8").tobytes(),
        np.array([1.5, 2.0, 3.25], "<f8").tobytes(),
        np.packbits([False, True, False], bitorder="little").tobytes(),
    )
    assert points.ts.tolist() == ts.tolist()
    assert points.values.tolist() == [1.5, 2.0, 3.25]
    assert points.is_int.tolist() == [False, True, False]
