"""Tests of tempodb.timeutil: wire formatting, parsing and epoch-ms conversion."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tempodb.timeutil import (
    MAX_MS,
    MIN_MS,
    datetime_to_ms,
    from_wire,
    ms_to_datetime,
    parse_timestamp_ms,
    to_wire,
)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_MS = timedelta(milliseconds=1)
CHICAGO = ZoneInfo("America/Chicago")

# The spec §3.1 grammar, written independently of the module under test.
REFERENCE_GRAMMAR = re.compile(
    r"""
    [0-9]{4}-[0-9]{2}-[0-9]{2}
    (?:
        [T\ ] [0-9]{2}:[0-9]{2}
        (?: :[0-9]{2} (?: \.[0-9]{1,9} )? )?
        (?: Z | [+-][0-9]{2} (?: :?(?P<mm>[0-9]{2}) )? )?
    )?
    """,
    re.VERBOSE | re.ASCII,
)


def reference_ms(text: str) -> int | None:
    """Epoch ms by the grammar above and ``datetime.fromisoformat``; None when invalid."""
    match = REFERENCE_GRAMMAR.fullmatch(text)
    if match is None or int(match["mm"] or 0) > 59:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace(" ", "T", 1))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    ms = (parsed - EPOCH) // ONE_MS
    lowest = (datetime(1, 1, 1, tzinfo=UTC) - EPOCH) // ONE_MS
    highest = (datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC) - EPOCH) // ONE_MS
    return ms if lowest <= ms <= highest else None


def floor_ms(value: datetime) -> datetime:
    """The UTC instant of the value floored to milliseconds, naive taken as UTC."""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return EPOCH + (aware - EPOCH) // ONE_MS * ONE_MS


fixed_zones = st.builds(
    timezone,
    st.timedeltas(min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23)),
)
zones = st.one_of(st.none(), st.just(UTC), fixed_zones, st.just(CHICAGO))
datetimes = st.datetimes(timezones=zones)
in_range = datetimes.filter(lambda d: d.utcoffset() is None or _utc_representable(d))


def _utc_representable(value: datetime) -> bool:
    try:
        value.astimezone(UTC)
    except OverflowError:
        return False
    return True


@st.composite
def timestamp_texts(draw: st.DrawFn) -> tuple[str, int | None]:
    """A text in one of the grammar's spellings, with its expected epoch ms (None: out of range)."""
    moment = draw(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)))
    text = f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
    kind = draw(st.sampled_from(["date", "minutes", "seconds", "fraction"]))
    local = datetime(moment.year, moment.month, moment.day)
    offset = timedelta(0)
    if kind != "date":
        text += draw(st.sampled_from("T ")) + f"{moment.hour:02d}:{moment.minute:02d}"
        local = local.replace(hour=moment.hour, minute=moment.minute)
        if kind in ("seconds", "fraction"):
            text += f":{moment.second:02d}"
            local = local.replace(second=moment.second)
        if kind == "fraction":
            digits = draw(st.text("0123456789", min_size=1, max_size=9))
            text += "." + digits
            local += timedelta(milliseconds=int(digits[:3].ljust(3, "0")))
        spelling = draw(st.sampled_from(["", "Z", "hh", "hhmm", "hh:mm"]))
        if spelling == "Z":
            text += "Z"
        elif spelling:
            sign = draw(st.sampled_from("+-"))
            hours = draw(st.integers(0, 23))
            minutes = 0 if spelling == "hh" else draw(st.integers(0, 59))
            text += f"{sign}{hours:02d}"
            if spelling != "hh":
                text += (":" if spelling == "hh:mm" else "") + f"{minutes:02d}"
            offset = timedelta(hours=hours, minutes=minutes) * (1 if sign == "+" else -1)
    ms = (local - datetime(1970, 1, 1) - offset) // ONE_MS
    return text, ms if MIN_MS <= ms <= MAX_MS else None


# --- to_wire -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (datetime(2012, 1, 1), "2012-01-01T00:00:00.000Z"),
        (datetime(2012, 3, 27, 1, 2, 3, 4), "2012-03-27T01:02:03.000Z"),
        (datetime(2012, 3, 27, 1, 2, 3, 999999), "2012-03-27T01:02:03.999Z"),
        (datetime(2012, 1, 1, tzinfo=UTC), "2012-01-01T00:00:00.000Z"),
        (datetime(2012, 1, 1, tzinfo=timezone(timedelta(hours=-6))), "2012-01-01T06:00:00.000Z"),
        (datetime(2012, 1, 1, 5, 30, tzinfo=timezone(timedelta(hours=5, minutes=30))),
         "2012-01-01T00:00:00.000Z"),
        (datetime(2012, 7, 1, tzinfo=CHICAGO), "2012-07-01T05:00:00.000Z"),
        (datetime(2012, 1, 1, tzinfo=CHICAGO), "2012-01-01T06:00:00.000Z"),
        (date(2012, 1, 8), "2012-01-08T00:00:00.000Z"),
        (datetime(1, 1, 1), "0001-01-01T00:00:00.000Z"),
        (datetime(999, 1, 1), "0999-01-01T00:00:00.000Z"),
        ("2012-01-01T00:00:00+00:00", "2012-01-01T00:00:00+00:00"),
    ],
)  # fmt: skip
def test_to_wire_examples(value: datetime | date | str, expected: str) -> None:
    assert to_wire(value) == expected


@pytest.mark.parametrize("value", [None, 1325376000, 1.5, b"2012-01-01", [2012, 1, 1]])
def test_to_wire_rejects_other_types(value: object) -> None:
    with pytest.raises(TypeError, match="datetime"):
        to_wire(value)  # type: ignore[arg-type]


def test_to_wire_rejects_instants_outside_utc_years() -> None:
    with pytest.raises(ValueError, match="outside years"):
        to_wire(datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1))))


@given(in_range)
@example(datetime(2012, 11, 4, 1, 30, fold=1, tzinfo=CHICAGO))
def test_to_wire_round_trips_through_the_server_parser(value: datetime) -> None:
    text = to_wire(value)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", text)
    assert parse_timestamp_ms(text) == datetime_to_ms(value)
    assert from_wire(text) == floor_ms(value)
    assert from_wire(text).tzinfo is UTC


@given(st.dates())
def test_dates_mean_midnight_utc(value: date) -> None:
    midnight = datetime(value.year, value.month, value.day, tzinfo=UTC)
    assert to_wire(value) == to_wire(midnight)
    assert datetime_to_ms(value) == datetime_to_ms(midnight) == (midnight - EPOCH) // ONE_MS


# --- datetime_to_ms / ms_to_datetime -----------------------------------------------------


@given(datetimes)
def test_datetime_to_ms_counts_from_the_utc_instant(value: datetime) -> None:
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    assert datetime_to_ms(value) == (aware - EPOCH) // ONE_MS


@given(st.integers(MIN_MS, MAX_MS))
def test_ms_round_trips(ms: int) -> None:
    value = ms_to_datetime(ms)
    assert value.tzinfo is UTC
    assert datetime_to_ms(value) == ms
    assert parse_timestamp_ms(to_wire(value)) == ms


def test_ms_bounds() -> None:
    assert ms_to_datetime(MIN_MS) == datetime(1, 1, 1, tzinfo=UTC)
    assert ms_to_datetime(MAX_MS) == datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)
    assert ms_to_datetime(0) == EPOCH
    assert ms_to_datetime(-1) == datetime(1969, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)


def test_datetime_to_ms_rejects_other_types() -> None:
    with pytest.raises(TypeError):
        datetime_to_ms("2012-01-01")  # type: ignore[arg-type]


def test_negative_instants_floor() -> None:
    assert datetime_to_ms(datetime(1969, 12, 31, 23, 59, 59, 999999)) == -1
    assert parse_timestamp_ms("1969-12-31T23:59:59.9999") == -1


# --- from_wire ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected", "offset"),
    [
        ("2012-01-01T00:00:00.000Z", datetime(2012, 1, 1), timedelta(0)),
        ("2012-01-01T00:00:00.000+0000", datetime(2012, 1, 1), timedelta(0)),
        ("2012-01-01T00:00:00.000+00:00", datetime(2012, 1, 1), timedelta(0)),
        ("2012-01-01T00:00:00.000-00:00", datetime(2012, 1, 1), timedelta(0)),
        ("2012-01-01T00:00:00.000", datetime(2012, 1, 1), timedelta(0)),
        ("2012-01-01", datetime(2012, 1, 1), timedelta(0)),
        ("2012-01-01T00:00:00.000-06:00", datetime(2012, 1, 1), timedelta(hours=-6)),
        ("2012-01-01T00:00:00.000-0600", datetime(2012, 1, 1), timedelta(hours=-6)),
        ("2012-01-01T00:00:00-06", datetime(2012, 1, 1), timedelta(hours=-6)),
        ("2012-06-23T00:00:00.000+05:30", datetime(2012, 6, 23), timedelta(hours=5.5)),
        ("2012-03-27T01:02:03.000004", datetime(2012, 3, 27, 1, 2, 3, 4), timedelta(0)),
        ("2012-03-27 01:02:03.123456789012Z", datetime(2012, 3, 27, 1, 2, 3, 123456),
         timedelta(0)),
        ("2012-03-27T01:02", datetime(2012, 3, 27, 1, 2), timedelta(0)),
    ],
)  # fmt: skip
def test_from_wire_examples(text: str, expected: datetime, offset: timedelta) -> None:
    parsed = from_wire(text)
    assert parsed.utcoffset() == offset
    assert parsed.replace(tzinfo=None) == expected
    if not offset:
        assert parsed.tzinfo is UTC


def test_from_wire_keeps_the_zone_of_the_text() -> None:
    parsed = from_wire("2012-01-01T00:00:00.000-06:00")
    assert parsed.isoformat() == "2012-01-01T00:00:00-06:00"
    assert parsed == datetime(2012, 1, 1, tzinfo=CHICAGO)


BAD_TEXTS = [
    "",
    "garbage",
    "2012",
    "2012-01",
    "2012-1-01",
    "20120101",
    "2012-01-01T",
    "2012-01-01T00",
    "2012-01-01T0:00",
    "2012-01-01t00:00:00",
    "2012-01-01T00:00:00z",
    "2012-01-01_00:00:00",
    "2012/01/01",
    "2012-01-01T00:00:00.",
    "2012-01-01T00:00:00,000Z",
    "2012-01-01T00:00.000",
    "2012-01-01T00:00:00.000 +0000",
    "2012-01-01T00:00:00.000+0",
    "2012-01-01T00:00:00.000+000",
    "2012-01-01T00:00:00.000+00:0",
    "2012-01-01T00:00:00.000+00000",
    "2012-01-01T00:00:00.000+24:00",
    "2012-01-01T00:00:00.000+05:60",
    "2012-01-01T00:00:00.000+0560",
    "2012-01-01T00:00:00.000ZZ",
    "2012-01-01T00:00:00.000Z ",
    " 2012-01-01T00:00:00.000Z",
    "2012-01-01T00:00:00.000Z\n",
    "2012-01-01Z",
    "2012-01-01+00:00",
    "2012-13-01T00:00:00Z",
    "2012-00-01T00:00:00Z",
    "2012-01-00T00:00:00Z",
    "2012-01-32T00:00:00Z",
    "2012-04-31T00:00:00Z",
    "2011-02-29T00:00:00Z",
    "1900-02-29",
    "2012-02-30",
    "0000-01-01",
    "2012-01-01T24:00:00Z",
    "2012-01-01T23:60:00Z",
    "2012-01-01T23:59:60Z",
    "\uff12\uff10\uff11\uff12-01-01",
    "2012-01-01T00:00:00.000\u221206:00",
]


@pytest.mark.parametrize("text", BAD_TEXTS)
def test_from_wire_rejects_garbage(text: str) -> None:
    with pytest.raises(ValueError, match=re.escape(f"Invalid timestamp: {text}")):
        from_wire(text)


def test_from_wire_rejects_non_strings() -> None:
    with pytest.raises(TypeError):
        from_wire(None)  # type: ignore[arg-type]


@given(timestamp_texts())
def test_from_wire_agrees_with_the_server_parser(case: tuple[str, int | None]) -> None:
    text, expected = case
    if expected is None:  # the instant is outside years 1-9999 in UTC
        return
    parsed = from_wire(text)
    assert datetime_to_ms(parsed) == expected
    match = re.search(r"([+-])(\d\d):?(\d\d)?$", text[10:])
    if match:
        sign = 1 if match[1] == "+" else -1
        minutes = int(match[2]) * 60 + int(match[3] or 0)
        assert parsed.utcoffset() == sign * timedelta(minutes=minutes)
    else:
        assert parsed.tzinfo is UTC


SUBSTITUTES = [chr(c) for c in range(32, 127)] + ["\n", "\u00b2", "\u0660", "\uff10", "\u2212"]


@pytest.mark.parametrize(
    "template",
    [
        "2012-01-01T00:00:00.000Z",
        "2012-01-01T00:00:00.000-0600",
        "2012-01-01T00:00:00.000+05:30",
        "2012-12-31T23:59:59.999+23:59",
    ],
)
def test_from_wire_fast_path_never_accepts_more(template: str) -> None:
    """Every one-character substitution of the fast shapes parses like the reference."""
    for pos in range(len(template)):
        for char in SUBSTITUTES:
            text = template[:pos] + char + template[pos + 1 :]
            expected = reference_ms(text)
            if expected is None:
                with pytest.raises(ValueError, match="Invalid timestamp"):
                    from_wire(text)
            else:
                assert datetime_to_ms(from_wire(text)) == expected, text


# --- parse_timestamp_ms ------------------------------------------------------------------

JAN1 = 1_325_376_000_000  # 2012-01-01T00:00:00Z


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2012-01-01T00:00:00", JAN1),
        ("2012-01-01T00:00:00.000Z", JAN1),
        ("2012-01-01T00:00:00Z", JAN1),
        ("2012-01-01T00:00:00.000+0000", JAN1),
        ("2012-01-01T00:00:00+00:00", JAN1),
        ("2012-01-01T00:00:00-00:00", JAN1),
        ("2012-01-01", JAN1),
        ("2012-01-01 00:00", JAN1),
        ("2012-01-01T00:00Z", JAN1),
        ("2012-01-01T00:00:00.000-06:00", JAN1 + 6 * 3_600_000),
        ("2012-01-01T00:00:00.000-0600", JAN1 + 6 * 3_600_000),
        ("2012-01-01T00:00:00.000+0100", JAN1 - 3_600_000),
        ("2012-01-01T00:00:00+01", JAN1 - 3_600_000),
        ("2012-01-01T05:30:00+05:30", JAN1),
        ("2012-01-01T00:00:00.000004", JAN1),
        ("2012-01-01T00:00:00.1", JAN1 + 100),
        ("2012-01-01T00:00:00.12", JAN1 + 120),
        ("2012-01-01T00:00:00.999999999", JAN1 + 999),
        ("2012-01-08T00:21:54.000+0000", JAN1 + 7 * 86_400_000 + 21 * 60_000 + 54_000),
        ("2012-02-29", JAN1 + 59 * 86_400_000),
        ("2000-02-29", 951_782_400_000),
        ("1970-01-01T00:00:00Z", 0),
        ("1969-12-31T23:59:59.999Z", -1),
        ("0001-01-01T00:00:00Z", MIN_MS),
        ("0001-01-01T00:00:00-00:01", MIN_MS + 60_000),
        ("9999-12-31T23:59:59.999Z", MAX_MS),
        ("9999-12-31T23:59:59.999+01:00", MAX_MS - 3_600_000),
    ],
)
def test_parse_timestamp_ms_examples(text: str, expected: int) -> None:
    assert parse_timestamp_ms(text) == expected
    assert reference_ms(text) == expected


SERVER_BAD_TEXTS = [
    *BAD_TEXTS,
    "2012-01-01T00:00:00.1234567890",
    "2012-01-01T00:00:00.1234567890Z",
    "0001-01-01T00:00:00+00:01",
    "9999-12-31T23:59:59.999-00:01",
    "10000-01-01",
]


@pytest.mark.parametrize("text", SERVER_BAD_TEXTS)
def test_parse_timestamp_ms_rejects(text: str) -> None:
    assert reference_ms(text) is None
    with pytest.raises(ValueError, match=re.escape(f"Invalid timestamp: {text}")):
        parse_timestamp_ms(text)


@pytest.mark.parametrize("value", [None, 1325376000000, b"2012-01-01"])
def test_parse_timestamp_ms_rejects_non_strings(value: object) -> None:
    with pytest.raises(ValueError, match="Invalid timestamp"):
        parse_timestamp_ms(value)  # type: ignore[arg-type]


@settings(max_examples=300)
@given(timestamp_texts())
def test_parse_timestamp_ms_matches_the_reference(case: tuple[str, int | None]) -> None:
    text, expected = case
    assert reference_ms(text) == expected
    if expected is None:
        with pytest.raises(ValueError, match="Invalid timestamp"):
            parse_timestamp_ms(text)
    else:
        assert parse_timestamp_ms(text) == expected


@given(timestamp_texts(), st.data())
def test_parse_timestamp_ms_on_mutated_texts(
    case: tuple[str, int | None], data: st.DataObject
) -> None:
    text = case[0]
    pos = data.draw(st.integers(0, len(text)))
    replacement = data.draw(st.text(st.sampled_from("0123456789-:.TZ +,x9"), max_size=2))
    cut = data.draw(st.integers(0, 2))
    text = text[:pos] + replacement + text[pos + cut :]
    expected = reference_ms(text)
    if expected is None:
        with pytest.raises(ValueError, match="Invalid timestamp"):
            parse_timestamp_ms(text)
    else:
        assert parse_timestamp_ms(text) == expected


@given(st.text(max_size=40))
def test_parse_timestamp_ms_on_arbitrary_text(text: str) -> None:
    expected = reference_ms(text)
    if expected is None:
        with pytest.raises(ValueError, match="Invalid timestamp"):
            parse_timestamp_ms(text)
    else:
        assert parse_timestamp_ms(text) == expected


# --- what mutmut's survivors showed the tests above left open --------------------------


@pytest.mark.parametrize(
    ("text", "micro"),
    [
        ("2012-01-01T00:00:00.0001", 100),  # 24 characters, the length of the "...Z" shape
        ("2012-01-01T00:00:00.00000000", 0),  # 28, the length of the "...+HHMM" shape
        ("2012-01-01T00:00:00.000000000", 0),  # 29, the length of the "...+HH:MM" shape
    ],
)
def test_from_wire_without_an_offset_is_utc_at_every_fast_length(text: str, micro: int) -> None:
    """fromisoformat would answer a naive datetime for these: only the general path is right."""
    parsed = from_wire(text)
    assert parsed.tzinfo is UTC
    assert parsed == datetime(2012, 1, 1, 0, 0, 0, micro, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "offset"),
    [
        ("2012-01-01T00:00:00.000Z", timedelta(0)),
        ("2012-01-01T00:00:00.000-0600", timedelta(hours=-6)),
        ("2012-01-01T00:00:00.000+0530", timedelta(hours=5, minutes=30)),
        ("2012-01-01T00:00:00.000+05:30", timedelta(hours=5, minutes=30)),
        ("2012-01-01T00:00:00.000-06:00", timedelta(hours=-6)),
        ("2012-01-01T00:00:00.000-00:00", timedelta(0)),
    ],
)
def test_from_wire_takes_the_fast_path_for_the_shapes_responses_use(
    text: str, offset: timedelta, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Responses carry these three shapes: they are parsed by ``datetime.fromisoformat``.

    Leaving them to the regular expression answers the same but is several times slower on
    every point a client reads; the module's own name for fromisoformat is watched.
    """
    import tempodb.timeutil as timeutil

    calls: list[str] = []

    def spy(value: str) -> datetime:
        calls.append(value)
        return datetime.fromisoformat(value)

    monkeypatch.setattr(timeutil, "_fromisoformat", spy)
    parsed = from_wire(text)
    assert calls == [text]
    assert parsed == datetime(2012, 1, 1, tzinfo=timezone(offset))
    assert parsed.utcoffset() == offset


def test_the_type_errors_name_the_type_given() -> None:
    with pytest.raises(TypeError, match=r"^a timestamp text must be a str, not int$"):
        from_wire(1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"datetime.datetime, datetime.date or str, not int: 7$"):
        to_wire(7)  # type: ignore[arg-type]
    with pytest.raises(
        TypeError,
        match=r"^a timestamp must be a datetime.datetime or datetime.date, not str: '2012'$",
    ):
        datetime_to_ms("2012")  # type: ignore[arg-type]


def test_offset_minutes_up_to_59_are_accepted() -> None:
    assert parse_timestamp_ms("2012-01-01T00:00:00+00:59") == JAN1 - 59 * 60_000
    assert parse_timestamp_ms("2012-01-01T00:00:00-0059") == JAN1 + 59 * 60_000
    assert parse_timestamp_ms("2012-01-01T23:59:59.999+23:59") == reference_ms(
        "2012-01-01T23:59:59.999+23:59"
    )
    assert from_wire("2012-01-01T00:00:00+00:59").utcoffset() == timedelta(minutes=59)
