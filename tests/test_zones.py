"""Tests of tempodb.zones against the standard library's zoneinfo."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tempodb.timeutil import parse_timestamp_ms
from tempodb.zones import (
    MAX_MS,
    MIN_MS,
    MS_PER_DAY,
    OffsetTable,
    Zone,
    excerpt,
    get_zone,
    sparse_runs,
    year_of_ms,
    year_start_ms,
)

ZONES = [
    "America/Chicago",
    "Europe/London",
    "Australia/Lord_Howe",
    "America/Sao_Paulo",
    "Pacific/Apia",
    "Asia/Kolkata",
    "America/St_Johns",
    "Europe/Amsterdam",
    "Africa/Casablanca",
    "Asia/Kathmandu",
    "Pacific/Chatham",
    "America/Sitka",
]

# Instants whose local time is representable by datetime in every zone (years 2..9998).
SAFE_LO = year_start_ms(2)
SAFE_HI = year_start_ms(9999) - 1
MODERN_LO = year_start_ms(1850)
MODERN_HI = year_start_ms(2045)


def reference_render(ts_ms: int, name: str) -> str:
    """The expected rendering: isoformat with milliseconds, Z for a zero offset, and an offset
    of whole minutes (seconds dropped toward zero, local mean time's -05:50:36 shown as -05:50
    with the time of that offset: the same instant)."""
    tz = UTC if name == "UTC" else ZoneInfo(name)
    seconds, millis = divmod(ts_ms, 1000)
    offset = datetime.fromtimestamp(seconds, tz).utcoffset()
    assert offset is not None
    whole = timedelta(minutes=int(offset / timedelta(minutes=1)))  # toward zero
    local = datetime.fromtimestamp(seconds, timezone(whole)).replace(microsecond=millis * 1000)
    text = local.isoformat(timespec="milliseconds")
    if whole == timedelta(0):
        return text[: text.index(".") + 4] + "Z"
    return text


def reference_offset_ms(ts_ms: int, name: str) -> int:
    """The UTC offset zoneinfo reports for an instant, in ms."""
    offset = datetime.fromtimestamp(ts_ms // 1000, ZoneInfo(name)).utcoffset()
    assert offset is not None
    return offset // timedelta(milliseconds=1)


instants = st.one_of(
    st.integers(MODERN_LO, MODERN_HI),
    st.integers(SAFE_LO, SAFE_HI),
)


# ---------------------------------------------------------------- parsing


@pytest.mark.parametrize("name", [None, ""])
def test_missing_zone_is_utc(name: str | None) -> None:
    zone = get_zone(name)
    assert zone.name == "UTC"
    assert zone.fixed_offset_ms == 0


@pytest.mark.parametrize("name", ["UTC", "GMT", "Z", "utc", "gmt", "z"])
def test_utc_aliases(name: str) -> None:
    zone = get_zone(name)
    assert zone.name == name
    assert zone.fixed_offset_ms == 0
    assert zone.format_one(1_362_117_600_000) == "2013-03-01T06:00:00.000Z"


@pytest.mark.parametrize(
    ("name", "offset_ms"),
    [
        ("+05:30", 19_800_000),
        ("-05:30", -19_800_000),
        ("+0545", 20_700_000),
        ("-0330", -12_600_000),
        ("+05", 18_000_000),
        ("-07", -25_200_000),
        ("+00:00", 0),
        ("-00:00", 0),
        ("+23:59", (23 * 60 + 59) * 60_000),
    ],
)
def test_fixed_offsets(name: str, offset_ms: int) -> None:
    zone = get_zone(name)
    assert zone.name == name
    assert zone.fixed_offset_ms == offset_ms
    assert zone.offset_at(0) == offset_ms
    assert zone.offsets_ms(np.array([MIN_MS, 0, MAX_MS])).tolist() == [offset_ms] * 3


def test_fixed_offset_rendering() -> None:
    ts = 1_362_117_600_000  # 2013-03-01T06:00:00Z
    assert get_zone("+05:45").format_one(ts) == "2013-03-01T11:45:00.000+05:45"
    assert get_zone("-0330").format_one(ts) == "2013-03-01T02:30:00.000-03:30"
    assert get_zone("+05").format_one(ts) == "2013-03-01T11:00:00.000+05:00"
    assert get_zone("+00:00").format_one(ts) == "2013-03-01T06:00:00.000Z"


@pytest.mark.parametrize(
    "name",
    [
        "Mars/Olympus_Mons",
        "America",
        "america/chicago_x",
        "+24:00",
        "+05:60",
        "+5",
        "+5:30",
        "05:30",
        "+05:30:00",
        "UTC+5",
        "../../etc/passwd",
        "/etc/localtime",
        "America/../Europe/London",
        "Europe/London\x00",
        " UTC",
    ],
)
def test_invalid_zones(name: str) -> None:
    with pytest.raises(ValueError, match=r"^Invalid time zone: "):
        get_zone(name)


def test_zones_are_cached() -> None:
    assert get_zone("America/Chicago") is get_zone("America/Chicago")
    assert get_zone("UTC") is get_zone("UTC")


def test_zone_needs_one_source() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        Zone("x")


def test_year_helpers() -> None:
    assert year_start_ms(1970) == 0
    assert year_start_ms(1) == MIN_MS
    assert year_start_ms(10000) == MAX_MS + 1
    assert year_of_ms(MIN_MS) == 1
    assert year_of_ms(MAX_MS) == 9999
    assert year_of_ms(MIN_MS - 10**12) == 1
    assert year_of_ms(-1) == 1969


# ---------------------------------------------------------------- offsets


@settings(max_examples=150, deadline=None)
@given(name=st.sampled_from(ZONES), ts=st.lists(instants, min_size=1, max_size=12))
def test_offsets_match_zoneinfo(name: str, ts: list[int]) -> None:
    zone = get_zone(name)
    got = zone.offsets_ms(np.array(ts, dtype=np.int64)).tolist()
    assert got == [reference_offset_ms(t, name) for t in ts]
    assert [zone.offset_at(t) for t in ts] == got
    assert zone.local_ms(ts).tolist() == [t + o for t, o in zip(ts, got, strict=True)]


@pytest.mark.parametrize(
    ("name", "transition_ms", "before", "after"),
    [
        # 2013-03-10T08:00:00Z Chicago springs forward, 2013-11-03T07:00:00Z falls back.
        ("America/Chicago", 1_362_902_400_000, -6 * 3_600_000, -5 * 3_600_000),
        ("America/Chicago", 1_383_462_000_000, -5 * 3_600_000, -6 * 3_600_000),
        # 2013-10-05T15:30:00Z Lord Howe moves from +10:30 to +11:00.
        ("Australia/Lord_Howe", 1_380_987_000_000, 37_800_000, 39_600_000),
        # 2011-12-30T10:00:00Z Apia jumps from -10:00 to +14:00.
        ("Pacific/Apia", 1_325_239_200_000, -36_000_000, 50_400_000),
        # 1883-11-18T18:00:00Z Chicago leaves local mean time (-5:50:36) for CST.
        ("America/Chicago", -2_717_647_200_000, -21_036_000, -21_600_000),
    ],
)
def test_transition_to_the_millisecond(
    name: str, transition_ms: int, before: int, after: int
) -> None:
    zone = get_zone(name)
    got = zone.offsets_ms(np.array([transition_ms - 1, transition_ms, transition_ms + 1]))
    assert got.tolist() == [before, after, after]


#: Zones whose rules repeat every year, fixed ones, and the oddest (Morocco's listed Ramadan
#: changes up to 2087, Lord Howe's half-hour DST, the southern hemisphere, a date-line jump).
CYCLE_ZONES = [
    "America/Chicago",
    "Europe/London",
    "Africa/Casablanca",
    "Australia/Lord_Howe",
    "America/Santiago",
    "Pacific/Apia",
    "Asia/Kolkata",
    "America/Godthab",
]


@pytest.mark.parametrize("name", CYCLE_ZONES)
@pytest.mark.parametrize("year", [1, 2, 1066, 1799, 2500, 2501, 3000, 4321, 9998, 9999])
def test_years_outside_tz_data_match_probing(name: str, year: int) -> None:
    """The years derived rather than probed (before 1800: one offset; from 2500: the 400-year
    cycle of the rules) are what probing them finds."""
    zone = Zone(name, zoneinfo=ZoneInfo(name))
    assert zone._year(year) == zone._probe_year(year)


def test_offsets_of_empty_input() -> None:
    assert get_zone("America/Chicago").offsets_ms(np.zeros(0, np.int64)).size == 0


def test_table_covers_range_and_is_cached() -> None:
    zone = get_zone("America/Chicago")
    table = zone.table(year_start_ms(2012), year_start_ms(2014) - 1)
    assert table is zone.table(year_start_ms(2012) + 5, year_start_ms(2013))
    assert table.valid_from == year_start_ms(2012)
    assert table.valid_until == year_start_ms(2014)
    assert table.transitions.size == 4
    assert not table.fixed
    assert get_zone("UTC").table(MIN_MS, MAX_MS).fixed


def test_first_instant_of_skipped_and_repeated_walls() -> None:
    get_zone.cache_clear()  # a table built here, not one cached by earlier tests
    zone = get_zone("America/Chicago")
    table = zone.table(year_start_ms(2013), year_start_ms(2013))
    hour = 3_600_000
    spring = 1_362_902_400_000  # 02:00 CST -> 03:00 CDT
    fall = 1_383_462_000_000  # 02:00 CDT -> 01:00 CST
    walls = np.array(
        [
            spring - 6 * hour - hour,  # 01:00, shown once
            spring - 6 * hour,  # 02:00, skipped: first instant at or after is the jump
            spring - 6 * hour + hour // 2,  # 02:30, skipped
            fall - 5 * hour - hour,  # 01:00 on the fall-back day, shown twice: the first one
        ]
    )
    instants, shown = table.first_instant(walls)
    assert instants.tolist() == [spring - hour, spring, spring, fall - hour]
    assert shown.tolist() == [walls[0], walls[0] + 2 * hour, walls[0] + 2 * hour, walls[3]]


# ---------------------------------------------------------------- rendering


@settings(max_examples=150, deadline=None)
@given(name=st.sampled_from([*ZONES, "UTC"]), ts=st.lists(instants, min_size=1, max_size=12))
def test_rendering_matches_isoformat(name: str, ts: list[int]) -> None:
    zone = get_zone(name)
    assert zone.format(np.array(ts, dtype=np.int64)) == [reference_render(t, name) for t in ts]


@settings(max_examples=40, deadline=None)
@given(
    name=st.sampled_from(ZONES),
    first=st.integers(year_start_ms(1990), year_start_ms(2030)),
    steps=st.lists(st.integers(1, 4 * 3_600_000), min_size=1, max_size=300),
)
def test_rendering_dense_runs(name: str, first: int, steps: list[int]) -> None:
    ts = np.cumsum(np.array([first, *steps], dtype=np.int64))
    zone = get_zone(name)
    assert zone.format(ts) == [reference_render(t, name) for t in ts.tolist()]


@pytest.mark.parametrize(
    ("name", "ts", "text"),
    [
        ("UTC", 1_362_117_600_000, "2013-03-01T06:00:00.000Z"),
        ("America/Chicago", 1_362_117_600_000, "2013-03-01T00:00:00.000-06:00"),
        ("America/Chicago", 1_372_680_000_123, "2013-07-01T07:00:00.123-05:00"),
        ("Asia/Kolkata", 0, "1970-01-01T05:30:00.000+05:30"),
        ("Europe/London", 1_372_680_000_000, "2013-07-01T13:00:00.000+01:00"),
        ("Europe/London", 1_356_998_400_000, "2013-01-01T00:00:00.000Z"),
        ("America/St_Johns", 1_356_998_400_000, "2012-12-31T20:30:00.000-03:30"),
        ("America/Chicago", -2_840_140_800_000, "1879-12-31T18:10:00.000-05:50"),
        ("UTC", MIN_MS, "0001-01-01T00:00:00.000Z"),
        ("UTC", MAX_MS, "9999-12-31T23:59:59.999Z"),
        ("America/Chicago", MAX_MS, "9999-12-31T17:59:59.999-06:00"),
        ("Asia/Kolkata", -1, "1970-01-01T05:29:59.999+05:30"),
    ],
)
def test_rendering_examples(name: str, ts: int, text: str) -> None:
    assert get_zone(name).format_one(ts) == text


def test_rendering_at_the_ends_of_the_range() -> None:
    """Where the zone's date would fall before year 1 or after 9999, the instant is in UTC."""
    assert get_zone("America/Chicago").format_one(MIN_MS) == "0001-01-01T00:00:00.000Z"
    assert get_zone("Asia/Tokyo").format_one(MAX_MS) == "9999-12-31T23:59:59.999Z"
    assert get_zone("+14:00").format_one(MAX_MS) == "9999-12-31T23:59:59.999Z"
    assert get_zone("+14:00").format_one(MAX_MS - 14 * 3_600_000) == (
        "9999-12-31T23:59:59.999+14:00"
    )


def test_rendering_mixed_offset_widths() -> None:
    zone = get_zone("Europe/London")
    ts = [1_356_998_400_000, 1_372_680_000_000]  # GMT (Z) then BST (+01:00)
    assert zone.format(ts) == ["2013-01-01T00:00:00.000Z", "2013-07-01T13:00:00.000+01:00"]


def test_rendering_sparse_and_unsorted() -> None:
    zone = get_zone("America/Chicago")
    ts = [year_start_ms(2500), year_start_ms(1900), year_start_ms(2013), year_start_ms(3000)]
    assert zone.format(ts) == [reference_render(t, "America/Chicago") for t in ts]


def test_rendering_empty() -> None:
    assert get_zone("America/Chicago").format(np.zeros(0, np.int64)) == []


@settings(max_examples=400, deadline=None)
@given(
    name=st.sampled_from(
        [
            "UTC",
            "America/Chicago",
            "Australia/Lord_Howe",
            "Asia/Kolkata",
            "Africa/Monrovia",
            "Pacific/Apia",
            "America/St_Johns",
            "+05:45",
            "-03:30",
        ]
    ),
    instants=st.lists(st.integers(MIN_MS, MAX_MS), min_size=1, max_size=16),
)
def test_few_instants_render_as_many_do(name: str, instants: list[int]) -> None:
    """A few instants are rendered one by one in Python: the same texts as the array path."""
    zone = get_zone(name)
    for ms in instants:
        expected = zone._format_run(np.array([ms], np.int64), zone.table(ms, ms))[0]
        few = zone._format_few([ms])
        assert few is None or few == [expected]
        assert zone.format_one(ms) == expected
    assert zone.format(np.array(sorted(instants), np.int64)) == [
        zone.format_one(ms) for ms in sorted(instants)
    ]


def test_a_huge_zone_name_is_not_echoed_whole() -> None:
    with pytest.raises(ValueError, match=r"^Invalid time zone: Europe/xxx") as raised:
        get_zone("Europe/" + "x" * 5000)
    assert len(str(raised.value)) < 200
    assert "(5,007 characters)" in str(raised.value)


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(ZONES), ts=st.integers(MIN_MS, MAX_MS))
def test_every_rendered_time_is_the_instant_in_hh_mm(name: str, ts: int) -> None:
    """Whatever the zone and the year, a rendered time ends in Z or ±HH:MM (local mean time's
    second offsets included) and reads back as the same instant; at the ends of years 1-9999,
    where the zone's date would leave them, in UTC."""
    zone = get_zone(name)
    texts = {zone.format_one(ts), *zone.format(np.array([ts, ts], dtype=np.int64))}
    (text,) = texts
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d\d:\d\d)", text), text
    assert parse_timestamp_ms(text) == ts


def test_local_mean_time_is_shown_in_whole_minutes() -> None:
    chicago = get_zone("America/Chicago")
    lmt = parse_timestamp_ms("1850-05-01T00:00:00Z")  # Chicago's LMT is -05:50:36
    assert chicago.format_one(lmt) == "1850-04-30T18:10:00.000-05:50"


# ---------------------------------------------------------------- what mutmut's survivors showed


@pytest.mark.parametrize(
    ("name", "offset_ms"),
    [
        ("+05:30", 19_800_000),
        ("-0530", -19_800_000),
        ("+23:59", 86_340_000),
        ("-23", -82_800_000),
        ("+00:59", 3_540_000),
        ("+22:00", 79_200_000),
    ],
)
def test_fixed_offsets_parsed_afresh(name: str, offset_ms: int) -> None:
    """get_zone caches its zones: clear it so that the parsing itself is what answers."""
    get_zone.cache_clear()
    zone = get_zone(name)
    assert zone.fixed_offset_ms == offset_ms
    assert zone.offsets_ms([0]).tolist() == [offset_ms]
    assert zone.name == name


@pytest.mark.parametrize("name", ["+24:00", "-00:60", "+2400", "+24"])
def test_fixed_offsets_out_of_range_are_refused_afresh(name: str) -> None:
    get_zone.cache_clear()
    with pytest.raises(ValueError, match=re.escape(f"Invalid time zone: {name}")):
        get_zone(name)


def test_excerpt_cuts_after_80_characters() -> None:
    assert excerpt("x" * 80) == "x" * 80
    assert excerpt("x" * 81) == "x" * 80 + "... (81 characters)"
    assert excerpt("x" * 5, limit=4) == "xxxx... (5 characters)"
    assert excerpt("x" * 4, limit=4) == "xxxx"
    get_zone.cache_clear()
    with pytest.raises(ValueError, match=r"^Invalid time zone: Europe/x{73}$"):
        get_zone("Europe/" + "x" * 73)


@pytest.mark.parametrize("name", ["America/Chicago", "+05:30", "UTC"])
def test_offsets_and_local_times_are_int64_of_the_input_shape(name: str) -> None:
    zone = get_zone(name)
    grid = np.array([[0, 1_362_902_400_000], [1_383_462_000_000, -1]], dtype=np.int64)
    offsets = zone.offsets_ms(grid)
    assert offsets.dtype == np.int64
    assert offsets.shape == (2, 2)
    assert offsets.tolist() == [[zone.offset_at(int(t)) for t in row] for row in grid.tolist()]
    inputs: list[npt.ArrayLike] = [
        [],
        np.zeros(0, np.int64),
        np.array([0.0, 1e12]),
        np.array([0], np.int32),
    ]
    for given_ts in inputs:
        assert zone.offsets_ms(given_ts).dtype == np.int64
        assert zone.local_ms(given_ts).dtype == np.int64
    unsorted = np.array([1_383_462_000_000, 0, 1_362_902_400_000, 0], dtype=np.int64)
    assert zone.offsets_ms(unsorted).dtype == np.int64
    table = zone.table(0, 0)
    assert table.offsets_at(np.array([0, 1, 2], np.int64)).tolist() == [zone.offset_at(0)] * 3


def test_the_ends_of_the_range_render_in_the_zone_up_to_the_last_instant() -> None:
    """Local times exactly at year 1's first or year 9999's last millisecond stay in the zone;
    only those beyond are shown in UTC."""
    hour = 3_600_000
    assert get_zone("-01:00").format([MIN_MS, MIN_MS + hour]) == [
        "0001-01-01T00:00:00.000Z",
        "0001-01-01T00:00:00.000-01:00",
    ]
    assert get_zone("+01:00").format([MAX_MS - hour, MAX_MS]) == [
        "9999-12-31T23:59:59.999+01:00",
        "9999-12-31T23:59:59.999Z",
    ]
    many = [MIN_MS + hour + i for i in range(20)]  # past the one-by-one path
    assert get_zone("-01:00").format([MIN_MS, *many]) == [
        "0001-01-01T00:00:00.000Z",
        *(f"0001-01-01T00:00:00.{i:03d}-01:00" for i in range(20)),
    ]


#: Zones whose offsets all render with one width (London's Z and +01:00 do not).
ASCII_ZONES = [
    "UTC",
    "America/Chicago",
    "Asia/Kolkata",
    "Australia/Lord_Howe",
    "Pacific/Apia",
    "America/St_Johns",
    "Asia/Kathmandu",
]


@settings(max_examples=100, deadline=None)
@given(
    name=st.sampled_from(ASCII_ZONES),
    first=st.integers(year_start_ms(1900), year_start_ms(2100)),
    steps=st.lists(st.integers(0, 3 * MS_PER_DAY), min_size=0, max_size=60),
)
def test_format_ascii_is_zoneinfos_rendering(name: str, first: int, steps: list[int]) -> None:
    ts = np.cumsum(np.array([first, *steps], dtype=np.int64))
    matrix = get_zone(name).format_ascii(ts)
    assert matrix is not None
    assert matrix.dtype == np.uint8
    assert [bytes(row).decode("ascii") for row in matrix] == [
        reference_render(t, name) for t in ts.tolist()
    ]


def test_format_ascii_declines_what_it_cannot_render_in_one_width() -> None:
    chicago = get_zone("America/Chicago")
    jan = year_start_ms(2013)
    assert chicago.format_ascii(np.array([jan, jan + 1], np.int64)) is not None
    assert chicago.format_ascii(np.zeros(0, np.int64)) is None
    assert chicago.format_ascii(np.array([[jan, jan + 1]], np.int64)) is None
    assert chicago.format_ascii(np.array([jan + 1, jan], np.int64)) is None  # not ascending
    london = get_zone("Europe/London")  # Z in winter, +01:00 in summer
    assert london.format_ascii(np.array([jan, jan + 1], np.int64)) is None
    # More than 400 days apart: not one table (a fixed zone needs none).
    far = np.array([jan, jan + 401 * MS_PER_DAY], np.int64)
    assert chicago.format_ascii(far) is None
    near = np.array([jan, jan + 400 * MS_PER_DAY], np.int64)
    assert chicago.format_ascii(near) is None  # 400 days for 2 instants: too sparse
    dense = np.arange(jan, jan + 400 * MS_PER_DAY + 1, MS_PER_DAY // 2, dtype=np.int64)
    matrix = chicago.format_ascii(dense)
    assert matrix is not None
    assert [bytes(row).decode() for row in matrix] == chicago.format(dense)
    # Up to 4 days an instant plus 64 apart (a fixed zone, which has no 400-day bound).
    fixed = get_zone("+05:45")
    three = np.array([jan, jan + 1, jan + (4 * 3 + 64) * MS_PER_DAY], np.int64)
    four = np.array([jan, jan + 1, jan + (4 * 3 + 65) * MS_PER_DAY], np.int64)
    assert fixed.format_ascii(four) is None
    matrix = fixed.format_ascii(three)
    assert matrix is not None
    assert [bytes(row).decode() for row in matrix] == fixed.format(three)
    # Local times outside years 1..9999.
    assert get_zone("-01:00").format_ascii(np.array([MIN_MS, MIN_MS + 1], np.int64)) is None
    assert get_zone("+01:00").format_ascii(np.array([MAX_MS - 1, MAX_MS], np.int64)) is None
    assert get_zone("UTC").format_ascii(np.array([MIN_MS, MAX_MS], np.int64)) is None
    last = np.array([MAX_MS - 1, MAX_MS], np.int64)
    matrix = get_zone("UTC").format_ascii(last)
    assert matrix is not None
    assert [bytes(row).decode() for row in matrix] == get_zone("UTC").format(last)
    edges = np.array([MIN_MS, MIN_MS + 1], np.int64)
    matrix = get_zone("UTC").format_ascii(edges)
    assert matrix is not None
    assert [bytes(row).decode() for row in matrix] == [
        "0001-01-01T00:00:00.000Z",
        "0001-01-01T00:00:00.001Z",
    ]


def test_zones_built_afresh() -> None:
    """Zone's own construction (get_zone's cache cleared): its name, its tables, and a fixed
    zone's single table, exact for every instant."""
    get_zone.cache_clear()
    chicago = get_zone("America/Chicago")
    assert chicago.name == "America/Chicago"
    assert chicago.fixed_offset_ms is None
    assert chicago.offsets_ms([1_362_902_400_000]).tolist() == [-5 * 3_600_000]
    assert chicago.format_one(0) == "1969-12-31T18:00:00.000-06:00"
    years = chicago.table(year_start_ms(2012), year_start_ms(2014) - 1)
    assert (years.valid_from, years.valid_until) == (year_start_ms(2012), year_start_ms(2014))
    assert years.transitions.size == 4
    assert years is chicago.table(year_start_ms(2012) + 5, year_start_ms(2013))  # cached
    first_years = chicago.table(MIN_MS, year_start_ms(2) + 1)
    assert first_years.valid_from < MIN_MS  # nothing precedes year 1: exact from -infinity
    assert first_years.valid_until == year_start_ms(3)
    last_years = chicago.table(year_start_ms(9998), MAX_MS)
    assert last_years.valid_from == year_start_ms(9998)
    assert last_years.valid_until > MAX_MS + 1  # nothing follows year 9999: exact to +infinity
    fixed = get_zone("+05:30")
    table = fixed.table(0, 0)
    assert table.fixed
    assert table.valid_from < MIN_MS
    assert table.valid_until > MAX_MS
    assert table is fixed.table(MIN_MS, MAX_MS)
    assert get_zone("utc").name == "utc"
    assert get_zone("").name == "UTC"
    with pytest.raises(ValueError, match=r"^a zone needs exactly one of offset_ms and zoneinfo$"):
        Zone("x")
    with pytest.raises(ValueError, match=r"^a zone needs exactly one"):
        Zone("x", offset_ms=0, zoneinfo=ZoneInfo("UTC"))


def test_many_unsorted_instants_render_in_their_own_years() -> None:
    """More than the one-by-one path takes, unsorted, the first and last close together and a
    summer of another decade between them: each is rendered with its own offset."""
    chicago = get_zone("America/Chicago")
    jan = year_start_ms(2013)
    july_1990 = parse_timestamp_ms("1990-07-01T12:00:00Z")
    ts = [jan + i for i in range(10)] + [july_1990] + [jan + 100 + i for i in range(10)]
    assert chicago.format(ts) == [reference_render(t, "America/Chicago") for t in ts]
    assert chicago.format(ts)[10] == "1990-07-01T07:00:00.000-05:00"
    assert chicago.offsets_ms(ts).tolist() == [
        reference_offset_ms(t, "America/Chicago") for t in ts
    ]


def test_sparse_runs_split_where_instants_are_more_than_400_days_apart() -> None:
    gap = 400 * MS_PER_DAY
    assert sparse_runs(np.zeros(0, np.int64)) == []
    assert sparse_runs(np.array([0, gap], np.int64)) == [(0, 2)]
    assert sparse_runs(np.array([0, gap + 1], np.int64)) == [(0, 1), (1, 2)]
    before_1970 = np.array([-3 * gap - 1, -2 * gap, -2 * gap + 1, -1], np.int64)
    assert sparse_runs(before_1970) == [(0, 1), (1, 3), (3, 4)]
    assert sparse_runs(np.array([5, 5, 6], np.int64)) == [(0, 3)]
    assert sparse_runs(np.array([0, gap, 3 * gap], np.int64)) == [(0, 2), (2, 3)]


@pytest.mark.parametrize(
    ("name", "transition_ms", "after", "text"),
    [
        ("America/Chicago", 1_362_902_400_000, -5 * 3_600_000, "2013-03-10T03:00:00.000-05:00"),
        ("America/Chicago", 1_383_462_000_000, -6 * 3_600_000, "2013-11-03T01:00:00.000-06:00"),
        ("Pacific/Apia", 1_325_239_200_000, 50_400_000, "2011-12-31T00:00:00.000+14:00"),
    ],
)
def test_one_instant_at_a_transition_takes_the_new_offset(
    name: str, transition_ms: int, after: int, text: str
) -> None:
    zone = get_zone(name)
    assert zone.offset_at(transition_ms) == after
    assert zone.offset_at(transition_ms - 1) != after
    assert zone.format_one(transition_ms) == text
    assert zone.format([transition_ms]) == [text]


def test_shown_offsets_drop_the_seconds_toward_zero() -> None:
    chicago = get_zone("America/Chicago")
    lmt = parse_timestamp_ms("1850-05-01T00:00:00Z")  # -05:50:36
    summer = parse_timestamp_ms("2013-07-01T00:00:00Z")  # -05:00
    shown = chicago.shown_offsets_ms([lmt, summer])
    assert shown.tolist() == [-(5 * 60 + 50) * 60_000, -5 * 3_600_000]
    assert shown.dtype == np.int64
    amsterdam = get_zone("Europe/Amsterdam")  # +00:19:32 in 1900
    assert amsterdam.offsets_ms([parse_timestamp_ms("1900-01-01T00:00:00Z")]).tolist() == [
        1_172_000
    ]
    assert amsterdam.shown_offsets_ms([parse_timestamp_ms("1900-01-01T00:00:00Z")]).tolist() == [
        19 * 60_000
    ]


def test_offset_tables_check_their_lengths_and_are_read_only() -> None:
    with pytest.raises(
        ValueError, match=r"^an offset table needs one more offset than transitions$"
    ):
        OffsetTable([1], [0], 0, 1)
    get_zone.cache_clear()
    table = get_zone("America/Chicago").table(year_start_ms(2013), year_start_ms(2013))
    for array in (table.transitions, table.offsets, table.shown, table.starts, table.ends):
        with pytest.raises(ValueError, match="read-only"):
            array[0] = 1


@pytest.mark.parametrize(
    ("name", "transition_ms"),
    [
        ("Europe/Lisbon", -1_830_384_000_000),  # 1911-01-01T00:00:00Z, a UTC year's first instant
        ("America/Caracas", -157_750_200_000),  # 1965-01-01, in a UTC year's first two days
        ("America/Sao_Paulo", -1_767_214_412_000),  # 1914-01-01, likewise
        ("Asia/Kolkata", -2_019_705_670_000),  # 1905-12-31, in a UTC year's last six hours
        ("Africa/Casablanca", 504_918_000_000),  # 1985-12-31, likewise
    ],
)
def test_transitions_at_the_edges_of_utc_years(name: str, transition_ms: int) -> None:
    """A zone built here (nothing cached) finds the changes its probing of a year could miss."""
    zone = Zone(name, zoneinfo=ZoneInfo(name))
    ts = [transition_ms - 1000, transition_ms - 1, transition_ms, transition_ms + 1]
    expected = [reference_offset_ms(t, name) for t in ts]
    assert expected[1] != expected[2]
    assert zone.offsets_ms(ts).tolist() == expected
    fresh = Zone(name, zoneinfo=ZoneInfo(name))
    assert [fresh.offset_at(t) for t in ts] == expected
