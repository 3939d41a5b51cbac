"""Interpolation: a series resampled onto a grid of instants (the 1.0 ``interpolation.*``).

The grid is the bucket boundaries of a period (:func:`tempodb.rollup.boundaries`), so it
follows the wall clock of the zone exactly as rollup buckets do.  A grid time before the
first point or after the last one has no value (it is left out).

* ``zoh`` (zero-order hold): the value of the last point at or before the grid time; it
  keeps the point's integer-ness.
* ``linear``: between the point at or before the grid time and the next one,
  ``v0 + (v1 - v0) * (g - t0) / (t1 - t0)``; a grid time on a point takes its value
  (an integer stays one there; elsewhere the result is a float).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from tempodb.zones import excerpt

__all__ = ["INTERPOLATIONS", "interpolate", "parse_interpolation"]

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
Bool = npt.NDArray[np.bool_]

INTERPOLATIONS = ("zoh", "linear")


def parse_interpolation(text: str) -> str:
    """An ``interpolation.function``, lower-cased.

    Raises:
        ValueError: ``Invalid interpolation function: <text> (zoh or linear)``.
    """
    lowered = text.strip().lower()
    if lowered not in INTERPOLATIONS:
        raise ValueError(f"Invalid interpolation function: {excerpt(text)} (zoh or linear)")
    return lowered


def interpolate(ts: I64, vals: F64, ints: Bool, grid: I64, function: str) -> tuple[I64, F64, Bool]:
    """The values of the points (``ts`` ascending) at the ``grid`` instants (ascending)
    from the first point to the last; returns the grid instants kept, values, integer-ness."""
    if ts.size == 0 or grid.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float64), np.zeros(0, np.bool_)
    lo, hi = np.searchsorted(grid, [ts[0], ts[-1]], side="left")
    if hi < grid.size and grid[hi] == ts[-1]:
        hi += 1
    kept = grid[lo:hi]
    before = np.searchsorted(ts, kept, side="right") - 1
    if function == "zoh":
        return kept, vals[before], ints[before]
    after = np.minimum(before + 1, ts.size - 1)
    t0, t1 = ts[before], ts[after]
    v0, v1 = vals[before], vals[after]
    on_point = t0 == kept
    span = np.where(t1 > t0, t1 - t0, 1).astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        values = np.where(on_point, v0, v0 + (v1 - v0) * ((kept - t0) / span))
    return kept, values, on_point & ints[before]
