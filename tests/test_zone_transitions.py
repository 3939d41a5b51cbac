"""zones.py finds every UTC-offset change that tzdata lists, to the second.

``zones.Zone`` finds a year's transitions by probing every few hours and bisecting, which
assumes that two changes are never closer than the probe step.  Here the transitions are read
from the TZif files themselves (the ones ``zoneinfo`` loads) and the offset one second before
and at each is compared with ``zoneinfo``'s.  By default the zones whose transitions come
closest together, and a few usual ones, are checked; ``--all-zones`` checks every zone.
"""

from __future__ import annotations

import struct
import zoneinfo
from datetime import UTC, datetime, timedelta
from functools import cache
from importlib import resources
from itertools import pairwise
from pathlib import Path

import pytest

from tempodb.zones import MAX_MS, MIN_MS, get_zone

USUAL = ["America/Chicago", "Europe/London", "Australia/Lord_Howe", "Africa/Casablanca"]
#: Zones checked by default: the usual ones and this many with the closest transitions.
CLOSEST = 24


def _tzif(name: str) -> bytes:
    """The TZif file ``zoneinfo`` reads for ``name`` (TZPATH first, then tzdata)."""
    for folder in zoneinfo.TZPATH:
        path = Path(folder, name)
        if path.is_file():
            return path.read_bytes()
    return resources.files("tzdata.zoneinfo").joinpath(*name.split("/")).read_bytes()


@cache
def transitions(name: str) -> tuple[int, ...]:
    """The transition instants (epoch seconds) of the TZif file's 64-bit block."""
    data = _tzif(name)
    assert data[:4] == b"TZif", name
    counts = struct.unpack(">6l", data[20:44])
    isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt = counts
    if data[4] == 0:  # version 1: 32-bit times only
        return struct.unpack(f">{timecnt}l", data[44 : 44 + 4 * timecnt])
    skip = timecnt * 5 + typecnt * 6 + charcnt + leapcnt * 8 + isstdcnt + isutcnt
    second = 44 + skip
    assert data[second : second + 4] == b"TZif", name
    timecnt = struct.unpack(">6l", data[second + 20 : second + 44])[3]
    start = second + 44
    return struct.unpack(f">{timecnt}q", data[start : start + 8 * timecnt])


def _closest_gap(name: str) -> int:
    found = transitions(name)
    return min((b - a for a, b in pairwise(found)), default=2**62)


def zones_to_check(all_zones: bool) -> list[str]:
    names = sorted(zoneinfo.available_timezones())
    if all_zones:
        return names
    closest = sorted(names, key=_closest_gap)[:CLOSEST]
    return sorted({*USUAL, *closest})


def _offset_ms(name: str, second: int) -> int:
    offset = datetime.fromtimestamp(second, zoneinfo.ZoneInfo(name)).utcoffset()
    assert offset is not None
    return offset // timedelta(milliseconds=1)


def test_every_listed_transition_is_found(pytestconfig: pytest.Config) -> None:
    checked = 0
    for name in zones_to_check(pytestconfig.getoption("--all-zones")):
        zone = get_zone(name)
        for second in transitions(name):
            if not MIN_MS < second * 1000 <= MAX_MS or second > 2**31:
                continue
            for at in (second - 1, second):
                assert zone.offset_at(at * 1000) == _offset_ms(name, at), (
                    f"{name} at {datetime.fromtimestamp(at, UTC).isoformat()}"
                )
            checked += 1
    assert checked > 1000  # the files were read
