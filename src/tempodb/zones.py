"""Vectorised time-zone machinery: UTC offsets, wall clocks and timestamp rendering.

A :class:`Zone` answers, for arrays of UTC instants (int64 epoch milliseconds), which UTC offset
is in effect, what the wall clock shows, and how the instants render as API timestamps
(``YYYY-MM-DDTHH:MM:SS.mmmZ`` at offset zero, else ``...mmm+HH:MM``; ``+HH:MM:SS`` only for
offsets with seconds, such as historical local mean time).

How offsets are found. :mod:`zoneinfo` does not expose its transitions, so an IANA zone is probed:
for each UTC calendar year the offset is sampled every 6 hours and every change between two
samples is bisected to the exact second (transitions in tz data are whole seconds, so an instant
in milliseconds takes the offset of its whole second); several changes between two samples are
found one after the other. Two transitions closer than 6 hours that cancel out would go unnoticed;
none of the 599 zones of tzdata 2026f has such a pair (checked against the TZif files). Only the
years of tz data's own changes are probed (1800-2499, see ``_QUIET_UNTIL`` and ``_RULES_FROM``):
earlier years have one offset, later ones repeat the 400-year cycle. The result
of a year is cached on the zone, so a year costs about 1 ms once and nothing afterwards. An
:class:`OffsetTable` stitches the years of a range into sorted numpy arrays of transition instants
and offsets; a lookup is one ``np.searchsorted``. Tables are cached per (first year, last year).
UTC and fixed offsets have one segment and never probe. Arrays whose instants are more than 400
days apart are handled in runs (:func:`sparse_runs`), so sparse data only probes its own years.

Rendering is vectorised without datetime objects: the date part comes from a table of the days in
range, the time of day from two fixed tables (``HH:MM:`` per minute, ``SS.mmm`` per millisecond of
the minute) and the offset from a per-segment table; the pieces are gathered into one fixed-width
UCS-4 array whose ``tolist()`` yields the strings.

Supported instants: UTC years 1 to 9999. In years 1 and 9999 the first and last two days are not
probed (the zone's local time can fall outside the range of :class:`datetime.datetime` there); no
zone has a transition in them.
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime, timedelta
from functools import cache, lru_cache
from itertools import pairwise
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

__all__ = [
    "MAX_MS",
    "MIN_MS",
    "MS_PER_DAY",
    "OffsetTable",
    "Zone",
    "get_zone",
    "sparse_runs",
    "year_of_ms",
    "year_start_ms",
]

I64 = npt.NDArray[np.int64]

MS_PER_DAY = 86_400_000
MIN_MS = -62_135_596_800_000
"""0001-01-01T00:00:00.000Z"""
MAX_MS = 253_402_300_799_999
"""9999-12-31T23:59:59.999Z"""

_NEG_INF = -(2**62)
_POS_INF = 2**62
_EPOCH = datetime(1970, 1, 1)
_SECOND = timedelta(seconds=1)
_PROBE = 6 * 3600
_EDGE = 2 * 86_400
_TABLE_CACHE_SIZE = 256
_MIN_DAY = MIN_MS // MS_PER_DAY
_MAX_DAY = MAX_MS // MS_PER_DAY
_SPARSE_GAP = 400 * MS_PER_DAY
#: No zone of tz data changes its offset before this year (the earliest change, the end of
#: local mean time somewhere, is in the 1840s): earlier years take the offset of their start.
_QUIET_UNTIL = 1800
#: From this year on every zone follows the rule of its TZif footer (tz data lists explicit
#: changes up to 2087, Morocco's), and a rule gives the same transitions in the same places
#: of the Gregorian calendar every 400 years (146,097 days, a whole number of weeks): years
#: from ``_RULES_FROM + 400`` on are the year 400 earlier, shifted.  Both assumptions are
#: checked against probing by tests/test_zones.py.
_RULES_FROM = 2100
_CYCLE_YEARS = 400
_CYCLE_MS = 146_097 * MS_PER_DAY
_FIXED_RE = re.compile(r"([+-])([0-9]{2})(?::?([0-9]{2}))?")
#: Up to this many instants are rendered one by one in Python (:meth:`Zone._format_few`).
_FEW = 16
_EPOCH_DATE = date(1970, 1, 1)
#: Local times that ``date`` renders as :meth:`Zone.format` does (years 1..9999).
_FEW_MIN = MIN_MS
_FEW_MAX = MAX_MS


def year_start_ms(year: int) -> int:
    """Epoch milliseconds of 1 January ``year`` 00:00 UTC (``year`` in 1..10000)."""
    if year > 9999:
        return MAX_MS + 1
    return (datetime(year, 1, 1) - _EPOCH) // _SECOND * 1000


def year_of_ms(ts_ms: int) -> int:
    """The UTC calendar year of an instant, clamped to 1..9999."""
    ts_ms = min(max(ts_ms, MIN_MS), MAX_MS)
    return (_EPOCH + timedelta(milliseconds=ts_ms)).year


def sparse_runs(ts: I64) -> list[tuple[int, int]]:
    """Split ascending instants into index ranges ``[lo, hi)`` wherever two consecutive instants
    are more than a year apart, so that sparse data never needs offsets for the empty years."""
    if ts.size == 0:
        return []
    if int(ts[-1]) - int(ts[0]) <= _SPARSE_GAP:
        return [(0, int(ts.size))]
    edges = [0, *(np.flatnonzero(np.diff(ts) > _SPARSE_GAP) + 1).tolist(), int(ts.size)]
    return list(pairwise(edges))


def _is_sorted(ts: I64) -> bool:
    """True when ``ts`` is ascending (ties allowed)."""
    return ts.size < 2 or bool(np.all(ts[1:] >= ts[:-1]))


def shown_offset_ms(offset_ms: int) -> int:
    """The offset a rendered time carries: whole minutes, the seconds dropped (toward zero).

    Local mean time, which IANA zones use before standard time, has offsets such as
    -05:50:36; the wire format's timestamps end in ``±HH:MM``, so such an instant is shown as
    its time at -05:50 (``18:10:00.000-05:50`` for 18:09:24 local mean time): the same
    instant, 36 seconds off the wall clock of the day.  Buckets still follow the true clock."""
    return offset_ms - int(math.fmod(offset_ms, 60_000))


def _offset_suffix(offset_ms: int) -> str:
    """Render a shown offset (whole minutes) as ``Z`` or ``+HH:MM``."""
    if offset_ms == 0:
        return "Z"
    sign = "+" if offset_ms > 0 else "-"
    hours, minutes = divmod(abs(offset_ms) // 60_000, 60)
    return f"{sign}{hours:02d}:{minutes:02d}"


def _text_rows(strings: npt.ArrayLike, width: int) -> npt.NDArray[np.void]:
    """Strings as NUL-padded UCS-4 items of ``width`` characters, viewed as opaque bytes so that
    ``take`` gathers whole items (much faster than gathering rows of code points)."""
    return np.asarray(strings, dtype=f"<U{width}").view(np.dtype((np.void, 4 * width)))


def _void_rows(texts: npt.NDArray[np.bytes_]) -> npt.NDArray[np.void]:
    """Fixed-width byte strings as opaque items (``take`` copies them whole)."""
    return texts.view(np.dtype((np.void, texts.dtype.itemsize)))


@cache
def _ascii_time_tables() -> tuple[npt.NDArray[np.void], npt.NDArray[np.void]]:
    """The tables of :func:`_time_tables` with one byte per character."""
    hm = [f"{m // 60:02d}:{m % 60:02d}:" for m in range(1440)]
    sms = [f"{m // 1000:02d}.{m % 1000:03d}" for m in range(60_000)]
    return _void_rows(np.array(hm, dtype="S6")), _void_rows(np.array(sms, dtype="S6"))


@cache
def _time_tables() -> tuple[npt.NDArray[np.void], npt.NDArray[np.void]]:
    """Code-point tables ``HH:MM:`` per minute of the day and ``SS.mmm`` per ms of the minute."""
    hm = [f"{m // 60:02d}:{m % 60:02d}:" for m in range(1440)]
    sms = [f"{m // 1000:02d}.{m % 1000:03d}" for m in range(60_000)]
    return _text_rows(hm, 6), _text_rows(sms, 6)


class OffsetTable:
    """The UTC-offset segments of one zone over a range of instants.

    Segment ``j`` covers instants ``[starts[j], ends[j])`` and has offset ``offsets[j]``; the
    first segment starts at -infinity and the last ends at +infinity. The table is exact for
    instants in ``[valid_from, valid_until)``; outside, the first/last offset is extrapolated.
    """

    __slots__ = (
        "_suffixes",
        "ends",
        "offsets",
        "reach",
        "shown",
        "starts",
        "transitions",
        "valid_from",
        "valid_until",
    )

    def __init__(
        self, transitions: list[int], offsets: list[int], valid_from: int, valid_until: int
    ) -> None:
        if len(offsets) != len(transitions) + 1:
            raise ValueError("an offset table needs one more offset than transitions")
        self.transitions: I64 = np.array(transitions, dtype=np.int64)
        self.offsets: I64 = np.array(offsets, dtype=np.int64)
        #: The offsets as rendered (``shown_offset_ms``).
        self.shown: I64 = np.array([shown_offset_ms(o) for o in offsets], dtype=np.int64)
        self.starts: I64 = np.array([_NEG_INF, *transitions], dtype=np.int64)
        self.ends: I64 = np.array([*transitions, _POS_INF], dtype=np.int64)
        self.reach: I64 = np.maximum.accumulate(self.ends + self.offsets)
        self.valid_from = valid_from
        self.valid_until = valid_until
        self._suffixes: tuple[npt.NDArray[np.void], int] | None = None
        for array in (
            self.transitions,
            self.offsets,
            self.shown,
            self.starts,
            self.ends,
            self.reach,
        ):
            array.flags.writeable = False

    @property
    def fixed(self) -> bool:
        """True when the table has a single offset."""
        return self.transitions.size == 0

    def segment_of(self, ts_ms: I64) -> npt.NDArray[np.intp]:
        """Index of the segment holding each instant."""
        if self.fixed:
            return np.zeros(np.shape(ts_ms), dtype=np.intp)
        return np.searchsorted(self.transitions, ts_ms, side="right")

    def offsets_at(self, ts_ms: I64) -> I64:
        """The offset (ms) in effect at each instant."""
        if self.fixed:
            return np.full(np.shape(ts_ms), self.offsets[0], dtype=np.int64)
        return self.offsets[self.segment_of(ts_ms)]

    def offset_at(self, ts_ms: int) -> int:
        """The offset (ms) in effect at one instant."""
        index = int(np.searchsorted(self.transitions, ts_ms, side="right"))
        return int(self.offsets[index])

    def first_instant(self, wall_ms: I64) -> tuple[I64, I64]:
        """For each wall-clock value W, the first instant whose wall clock shows W or later.

        Returns the instants and the wall clock at them (which exceeds W when W is skipped).
        """
        seg = np.searchsorted(self.reach, wall_ms, side="right")
        offsets = self.offsets[seg]
        instants = np.maximum(self.starts[seg], wall_ms - offsets)
        return instants, instants + offsets

    def suffixes(self) -> tuple[npt.NDArray[np.void], int]:
        """The rendered offset of every segment (as text rows) and the widest one's length."""
        if self._suffixes is None:
            texts = [_offset_suffix(int(o)) for o in self.shown.tolist()]
            width = max(len(t) for t in texts)
            self._suffixes = (_text_rows(texts, width), width)
        return self._suffixes


class Zone:
    """A time zone: an IANA zone, UTC, or a fixed UTC offset.

    ``name`` is the text to echo back (``rollup.tz``).
    """

    __slots__ = ("_fixed_table", "_tables", "_years", "_zoneinfo", "name")

    def __init__(
        self, name: str, *, offset_ms: int | None = None, zoneinfo: ZoneInfo | None = None
    ) -> None:
        if (offset_ms is None) == (zoneinfo is None):
            raise ValueError("a zone needs exactly one of offset_ms and zoneinfo")
        self.name = name
        self._zoneinfo = zoneinfo
        self._fixed_table = (
            None if offset_ms is None else OffsetTable([], [offset_ms], _NEG_INF, _POS_INF)
        )
        self._years: dict[int, tuple[int, list[tuple[int, int]]]] = {}
        self._tables: dict[tuple[int, int], OffsetTable] = {}

    def __repr__(self) -> str:
        return f"Zone({self.name!r})"

    @property
    def fixed_offset_ms(self) -> int | None:
        """The constant offset of UTC and fixed-offset zones, else None."""
        return None if self._fixed_table is None else int(self._fixed_table.offsets[0])

    def table(self, lo_ms: int, hi_ms: int) -> OffsetTable:
        """An offset table exact at least for instants in ``[lo_ms, hi_ms]``."""
        if self._fixed_table is not None:
            return self._fixed_table
        first, last = year_of_ms(min(lo_ms, hi_ms)), year_of_ms(max(lo_ms, hi_ms))
        table = self._tables.get((first, last))
        if table is None:
            table = self._build_table(first, last)
            if len(self._tables) >= _TABLE_CACHE_SIZE:
                self._tables.clear()
            self._tables[first, last] = table
        return table

    def offset_at(self, ts_ms: int) -> int:
        """The UTC offset (ms) in effect at one instant."""
        return self.table(ts_ms, ts_ms).offset_at(ts_ms)

    def offsets_ms(self, ts_ms: npt.ArrayLike) -> I64:
        """The UTC offset (ms) in effect at each instant (int64 epoch ms)."""
        ts = np.asarray(ts_ms, dtype=np.int64)
        flat = ts.ravel()
        if flat.size == 0:
            return np.zeros(ts.shape, dtype=np.int64)
        if self._fixed_table is not None:
            return np.full(ts.shape, self._fixed_table.offsets[0], dtype=np.int64)
        order = None if _is_sorted(flat) else np.argsort(flat, kind="stable")
        ordered = flat if order is None else flat[order]
        out = np.empty(flat.size, dtype=np.int64)
        for lo, hi in sparse_runs(ordered):
            run = ordered[lo:hi]
            out[lo:hi] = self.table(int(run[0]), int(run[-1])).offsets_at(run)
        if order is not None:
            unsorted = np.empty_like(out)
            unsorted[order] = out
            out = unsorted
        return out.reshape(ts.shape)

    def shown_offsets_ms(self, ts_ms: npt.ArrayLike) -> I64:
        """The offset (ms) each instant is rendered with (``shown_offset_ms``)."""
        offsets = self.offsets_ms(ts_ms)
        return offsets - np.fmod(offsets, 60_000)

    def local_ms(self, ts_ms: npt.ArrayLike) -> I64:
        """The wall clock at each instant, as epoch ms of the naive local time."""
        ts = np.asarray(ts_ms, dtype=np.int64)
        return ts + self.offsets_ms(ts)

    def format(self, ts_ms: npt.ArrayLike) -> list[str]:
        """Render instants as ``YYYY-MM-DDTHH:MM:SS.mmm`` plus ``Z`` or the offset in this zone."""
        flat = np.asarray(ts_ms, dtype=np.int64).ravel()
        if flat.size == 0:
            return []
        if flat.size <= _FEW:
            few = self._format_few(flat.tolist())
            if few is not None:
                return few
        if self._fixed_table is not None:
            return self._format_run(flat, self._fixed_table)
        order = None if _is_sorted(flat) else np.argsort(flat, kind="stable")
        ordered = flat if order is None else flat[order]
        runs = sparse_runs(ordered)
        if len(runs) == 1:
            texts = self._format_run(ordered, self.table(int(ordered[0]), int(ordered[-1])))
        else:
            texts = []
            for lo, hi in runs:
                run = ordered[lo:hi]
                texts.extend(self._format_run(run, self.table(int(run[0]), int(run[-1]))))
        if order is None:
            return texts
        result: list[str] = [""] * flat.size
        for position, text in zip(order.tolist(), texts, strict=True):
            result[position] = text
        return result

    def _format_run(self, ts: I64, table: OffsetTable) -> list[str]:
        """Render instants that ``table`` covers."""
        seg = table.segment_of(ts)
        local = ts + table.shown[seg]
        suffixes, suffix_width = table.suffixes()
        days = local // MS_PER_DAY
        first_day, last_day = int(days.min()), int(days.max())
        if first_day < _MIN_DAY or last_day > _MAX_DAY:
            return self._format_wide(ts, local, seg, table)
        if last_day - first_day <= 4 * ts.size + 64:
            day_index = days - first_day
            day_list = np.arange(first_day, last_day + 1)
        else:
            day_list, day_index = np.unique(days, return_inverse=True)
        dates = np.char.add(np.datetime_as_string(day_list.astype("datetime64[D]")), "T")
        of_day = local - days * MS_PER_DAY
        hm_table, sms_table = _time_tables()
        width = 23 + suffix_width
        row = np.dtype(
            [("date", "V44"), ("hm", "V24"), ("sms", "V24"), ("offset", f"V{4 * suffix_width}")]
        )
        out = np.empty(ts.size, dtype=row)
        out["date"] = _text_rows(dates, 11).take(day_index)
        out["hm"] = hm_table.take(of_day // 60_000)
        out["sms"] = sms_table.take(of_day % 60_000)
        out["offset"] = suffixes.take(seg)
        result: list[str] = out.view(f"<U{width}").tolist()
        return result

    def format_ascii(self, ts_ms: npt.ArrayLike) -> npt.NDArray[np.uint8] | None:
        """The texts of :meth:`format` as an ``(items, width)`` matrix of ASCII bytes, for
        ascending instants whose texts all have one width (the zone's offsets render alike)
        within years 1..9999 and about a year of each other; None otherwise."""
        ts = np.asarray(ts_ms, dtype=np.int64)
        if ts.ndim != 1 or ts.size == 0 or not _is_sorted(ts):
            return None
        if self._fixed_table is not None:
            table = self._fixed_table
        elif int(ts[-1]) - int(ts[0]) <= _SPARSE_GAP:
            table = self.table(int(ts[0]), int(ts[-1]))
        else:
            return None
        texts = {_offset_suffix(int(o)) for o in table.shown.tolist()}
        if len({len(t) for t in texts}) != 1:
            return None
        seg = table.segment_of(ts)
        offsets = table.shown[seg]
        local = ts + offsets
        days = local // MS_PER_DAY
        first_day, last_day = int(days[0]), int(days[-1])
        if first_day < _MIN_DAY or last_day > _MAX_DAY or last_day - first_day > 4 * ts.size + 64:
            return None
        dates = np.char.add(
            np.datetime_as_string(np.arange(first_day, last_day + 1).astype("datetime64[D]")), "T"
        )
        suffix = np.array([_offset_suffix(int(o)) for o in table.shown.tolist()], dtype="S")
        width = suffix.dtype.itemsize
        hm_table, sms_table = _ascii_time_tables()
        of_day = local - days * MS_PER_DAY
        row = np.dtype([("date", "V11"), ("hm", "V6"), ("sms", "V6"), ("offset", f"V{width}")])
        out = np.empty(ts.size, dtype=row)
        out["date"] = _void_rows(dates.astype("S11")).take(days - first_day)
        out["hm"] = hm_table.take(of_day // 60_000)
        out["sms"] = sms_table.take(of_day % 60_000)
        out["offset"] = _void_rows(suffix).take(seg)
        matrix: npt.NDArray[np.uint8] = out.view(np.uint8).reshape(ts.size, 23 + width)
        return matrix

    def format_one(self, ts_ms: int) -> str:
        """Render one instant (see :meth:`format`)."""
        few = self._format_few([ts_ms])
        if few is not None:
            return few[0]
        return self.format(np.array([ts_ms], dtype=np.int64))[0]

    def _format_few(self, instants: list[int]) -> list[str] | None:
        """:meth:`format` for a few instants, one by one without numpy's per-call costs;
        None when one is outside years 1..9999 in this zone (the caller then takes the
        general path)."""
        texts = []
        for ms in instants:
            offset = shown_offset_ms(self.offset_at(ms))
            local = ms + offset
            if not _FEW_MIN <= local <= _FEW_MAX:
                return None
            days, of_day = divmod(local, MS_PER_DAY)
            hours, of_hour = divmod(of_day, 3_600_000)
            minutes, of_minute = divmod(of_hour, 60_000)
            seconds, millis = divmod(of_minute, 1000)
            texts.append(
                f"{_EPOCH_DATE + timedelta(days=days)}T{hours:02d}:{minutes:02d}:"
                f"{seconds:02d}.{millis:03d}{_offset_suffix(offset)}"
            )
        return texts

    @staticmethod
    def _format_wide(
        ts: I64, local: I64, seg: npt.NDArray[np.intp], table: OffsetTable
    ) -> list[str]:
        """Slow path for local times outside years 1..9999 (at the very ends of the range):
        such an instant is rendered in UTC (``Z``), where every stored instant has a
        four-digit year; the others in the zone."""
        inside = (local >= _FEW_MIN) & (local <= _FEW_MAX)
        shown = np.where(inside, local, ts)
        texts = np.datetime_as_string(shown.astype("datetime64[ms]"), unit="ms").tolist()
        suffixes = [_offset_suffix(int(o)) for o in table.shown.tolist()]
        return [
            text + (suffixes[s] if ok else "Z")
            for text, s, ok in zip(texts, seg.tolist(), inside.tolist(), strict=True)
        ]

    def _build_table(self, first: int, last: int) -> OffsetTable:
        """Stitch the cached transitions of years ``first..last`` into one table."""
        offsets = [self._year(first)[0]]
        transitions: list[int] = []
        for year in range(first, last + 1):
            for instant, offset in self._year(year)[1]:
                transitions.append(instant)
                offsets.append(offset)
        valid_from = _NEG_INF if first == 1 else year_start_ms(first)
        valid_until = _POS_INF if last == 9999 else year_start_ms(last + 1)
        return OffsetTable(transitions, offsets, valid_from, valid_until)

    def _year(self, year: int) -> tuple[int, list[tuple[int, int]]]:
        """Offset (ms) at the start of a UTC year and the transitions (instant ms, new offset ms)
        in ``(start of year, start of next year]``: probed for the years of tz data, derived
        for the others (see ``_QUIET_UNTIL`` and ``_RULES_FROM``)."""
        cached = self._years.get(year)
        if cached is None:
            if year < _QUIET_UNTIL:
                start = year_start_ms(year) // 1000 + (_EDGE if year == 1 else 0)
                cached = (self._offset_ms(start), [])
            elif year >= _RULES_FROM + _CYCLE_YEARS:
                start, earlier = self._year(year - _CYCLE_YEARS)
                shifted = [(t + _CYCLE_MS, offset) for t, offset in earlier]
                cached = (start, [(t, offset) for t, offset in shifted if t <= MAX_MS])
            else:
                cached = self._probe_year(year)
            self._years[year] = cached
        return cached

    def _offset_ms(self, second: int) -> int:
        """The offset (ms) at an instant (UTC epoch seconds)."""
        assert self._zoneinfo is not None
        base = _EPOCH.replace(tzinfo=self._zoneinfo)
        delta = self._zoneinfo.fromutc(base + timedelta(seconds=second)).utcoffset()
        assert delta is not None
        return delta // _SECOND * 1000

    def _probe_year(self, year: int) -> tuple[int, list[tuple[int, int]]]:
        """``_year`` by probing the year every 6 hours and bisecting each change."""
        assert self._zoneinfo is not None
        zone = self._zoneinfo
        base = _EPOCH.replace(tzinfo=zone)

        def offset(second: int) -> timedelta:
            delta = zone.fromutc(base + timedelta(seconds=second)).utcoffset()
            assert delta is not None
            return delta

        lo = year_start_ms(year) // 1000 + (_EDGE if year == 1 else 0)
        hi = year_start_ms(year + 1) // 1000 - (_EDGE if year == 9999 else 0)
        probes = list(range(lo, hi, _PROBE))
        probes.append(hi)
        found = [offset(p) for p in probes]
        transitions: list[tuple[int, int]] = []
        for i in range(len(probes) - 1):
            if found[i] == found[i + 1]:
                continue
            left, left_offset = probes[i], found[i]
            while left_offset != found[i + 1]:
                low, high = left, probes[i + 1]
                while high - low > 1:
                    middle = (low + high) // 2
                    if offset(middle) == left_offset:
                        low = middle
                    else:
                        high = middle
                left, left_offset = high, offset(high)
                transitions.append((high * 1000, left_offset // _SECOND * 1000))
        return (found[0] // _SECOND * 1000, transitions)


def _fixed_offset_ms(text: str) -> int | None:
    """Parse ``+HH:MM``, ``-HH:MM``, ``+HHMM``, ``+HH``; None when ``text`` is not of that form."""
    match = _FIXED_RE.fullmatch(text)
    if match is None:
        return None
    sign, hours, minutes = match.group(1), int(match.group(2)), int(match.group(3) or 0)
    if hours > 23 or minutes > 59:
        return None
    total = (hours * 60 + minutes) * 60_000
    return -total if sign == "-" else total


def excerpt(text: str, limit: int = 80) -> str:
    """``text`` as an error message repeats it: cut after ``limit`` characters, saying how
    long it was, so that a huge parameter is not echoed back whole."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text):,} characters)"


@lru_cache(maxsize=512)
def get_zone(name: str | None) -> Zone:
    """The zone for a ``tz`` parameter: None or "" mean UTC.

    Accepts IANA names (``America/Chicago``), ``UTC``/``GMT``/``Z`` (any case) and fixed offsets
    ``+HH:MM``, ``-HH:MM``, ``+HHMM``, ``+HH``. The zone echoes ``name`` as given.

    Raises:
        ValueError: ``Invalid time zone: <name>`` for anything else.
    """
    if not name:
        return Zone("UTC", offset_ms=0)
    if name.upper() in {"UTC", "GMT", "Z"}:
        return Zone(name, offset_ms=0)
    fixed = _fixed_offset_ms(name)
    if fixed is not None:
        return Zone(name, offset_ms=fixed)
    if name[0] in "+-":
        raise ValueError(f"Invalid time zone: {excerpt(name)}")
    try:
        zoneinfo = ZoneInfo(name)
    except Exception as exc:  # ZoneInfoNotFoundError, ValueError, OSError, ...
        raise ValueError(f"Invalid time zone: {excerpt(name)}") from exc
    return Zone(name, zoneinfo=zoneinfo)
