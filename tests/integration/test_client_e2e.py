"""The client against a real server: errors, time zones, round trips, TLS."""

from __future__ import annotations

import datetime
import threading
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tempodb import (
    AuthenticationError,
    Client,
    ConflictError,
    DataPoint,
    InvalidRequestError,
    NotFoundError,
    TempoDBConnectionError,
)

#: Every test with the ``client`` fixture runs over HTTP and in-process (tests/conftest.py).
BOTH_TRANSPORTS = True
UTC = datetime.UTC
DAY = (datetime.datetime(2012, 1, 1), datetime.datetime(2012, 1, 2))


def test_errors_carry_status_and_message(server: Any, client: Client) -> None:
    with pytest.raises(NotFoundError) as not_found:
        client.read_key("missing", *DAY)
    assert not_found.value.status == 403
    assert "missing" in not_found.value.message

    client.create_series("taken")
    with pytest.raises(ConflictError) as conflict:
        client.create_series("taken")
    assert conflict.value.status == 409

    with pytest.raises(InvalidRequestError, match="Invalid interval"):
        client.read_key("taken", *DAY, interval="7fortnight")

    with pytest.raises(InvalidRequestError, match="allow_truncation"):
        client.delete_series()

    with pytest.raises(AuthenticationError) as forbidden:
        server.client("nobody", "nothing").get_series()
    assert forbidden.value.status == 403


def test_unreachable_server_is_a_connection_error() -> None:
    client = Client("k", "s", "127.0.0.1", 9, secure=False, timeout=2)
    with pytest.raises(TempoDBConnectionError):
        client.get_series()


def test_read_in_a_time_zone(client: Client) -> None:
    chicago = ZoneInfo("America/Chicago")
    client.write_key(
        "k",
        [DataPoint(datetime.datetime(2012, 3, 11, h, tzinfo=chicago), h) for h in (0, 1, 3, 4, 5)],
    )
    start = datetime.datetime(2012, 3, 11, tzinfo=chicago)
    data = client.read_key("k", start, start + datetime.timedelta(hours=6), tz="America/Chicago")
    assert data.start == start
    assert data.start.utcoffset() == datetime.timedelta(hours=-6)
    # the clocks jump from 02:00 CST to 03:00 CDT
    offsets = [p.ts.utcoffset() for p in data.data]
    assert offsets[0] == datetime.timedelta(hours=-6)
    assert offsets[-1] == datetime.timedelta(hours=-5)
    daily = client.read_key(
        "k",
        start,
        start + datetime.timedelta(days=1),
        interval="1day",
        function="count",
        tz="America/Chicago",
    )
    assert [(p.ts, p.value) for p in daily.data] == [(start, 5)]


def test_read_in_local_mean_time_and_at_the_ends_of_the_range(client: Client) -> None:
    """Before standard time a zone's offset has seconds (Chicago: -05:50:36): the client still
    reads every timestamp, each the instant written, in whole-minute offsets; so do the
    ends of years 1-9999 in a zone that would take them past it."""
    utc = datetime.UTC
    old = [datetime.datetime(1850, 5, 1, h, 0, 7, tzinfo=utc) for h in range(3)]
    client.write_key("lmt", [DataPoint(t, i) for i, t in enumerate(old)])
    data = client.read_key(
        "lmt", old[0], old[-1] + datetime.timedelta(hours=1), tz="America/Chicago"
    )
    assert [p.ts for p in data.data] == old
    assert {p.ts.utcoffset() for p in data.data} == {-datetime.timedelta(hours=5, minutes=50)}
    daily = client.read_key(
        "lmt",
        old[0],
        old[-1] + datetime.timedelta(hours=1),
        interval="1day",
        function="count",
        tz="America/Chicago",
    )
    assert [p.value for p in daily.data] == [3]
    end = datetime.datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=utc)
    late = end - datetime.timedelta(seconds=1)
    client.write_key("end", [DataPoint(late, 1)])
    (point,) = client.read_key("end", late, end, tz="+14:00").data
    assert point.ts == late


def test_delete_series_everything_with_truncation(client: Client) -> None:
    for key in ("a", "b", "c"):
        client.create_series(key)
    assert client.delete_series(keys=["a"]).deleted == 1
    assert client.delete_series(allow_truncation=True).deleted == 2
    assert client.get_series() == []


def test_single_values(client: Client) -> None:
    client.write_key("a", [DataPoint(datetime.datetime(2012, 1, 1, 0, 10), 1)])
    client.write_key("b", [DataPoint(datetime.datetime(2012, 1, 1, 0, 20), 2.5)])
    ts = datetime.datetime(2012, 1, 1, 0, 15)
    assert client.single_value_key("a", ts).data is None
    before = client.single_value_key("a", ts, "before")
    assert before.data == DataPoint(datetime.datetime(2012, 1, 1, 0, 10, tzinfo=UTC), 1)
    found = client.single_value(ts, direction="after")
    assert [(s.series.key, s.data.value if s.data else None) for s in found] == [
        ("a", None),
        ("b", 2.5),
    ]


def test_create_series_with_metadata(client: Client) -> None:
    series = client.create_series("m", name="Meter", tags=["x", "y"], attributes={"unit": "kWh"})
    assert (series.name, series.tags, series.attributes) == ("Meter", ["x", "y"], {"unit": "kWh"})
    assert client.get_series(attributes={"unit": "kWh"}) == [series]


def test_concurrent_increments_through_the_pool(client: Client) -> None:
    ts = datetime.datetime(2012, 1, 1)

    def worker() -> None:
        for _ in range(25):
            client.increment_key("counter", [DataPoint(ts, 1)])

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert client.read_key("counter", *DAY).data[0].value == 200


KEY_CHARS = st.sampled_from("abcXYZ0189.:;-_/\\ ")
keys = st.text(KEY_CHARS, min_size=1, max_size=40)
values = st.one_of(
    st.integers(-(2**53), 2**53),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
)
instants = st.datetimes(
    min_value=datetime.datetime(1900, 1, 1),
    max_value=datetime.datetime(2100, 1, 1),
    timezones=st.sampled_from([UTC, ZoneInfo("America/Chicago"), ZoneInfo("Asia/Kolkata"), None]),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(key=keys, points=st.lists(st.tuples(instants, values), min_size=1, max_size=20))
def test_round_trip_of_keys_timestamps_and_values(
    client: Client, key: str, points: list[tuple[datetime.datetime, Any]]
) -> None:
    client.delete_series(allow_truncation=True)
    client.write_key(key, [DataPoint(ts, v) for ts, v in points])

    def to_ms(ts: datetime.datetime) -> datetime.datetime:
        aware = ts if ts.tzinfo else ts.replace(tzinfo=UTC)
        aware = aware.astimezone(UTC)
        return aware.replace(microsecond=aware.microsecond // 1000 * 1000)

    expected = dict(sorted({to_ms(ts): v for ts, v in points}.items()))
    got = client.read_key(
        key, datetime.datetime(1899, 1, 1), datetime.datetime(2101, 1, 1), interval="raw"
    )
    assert [p.ts for p in got.data] == list(expected)
    for point, value in zip(got.data, expected.values(), strict=True):
        assert point.value == value
        assert type(point.value) is type(value)
    assert [s.key for s in client.get_series(keys=[key])] == [key]


def test_numpy_and_decimal_values_take_one_rule_on_every_write_path(client: Client) -> None:
    """numpy scalars, Decimal and Fraction values are written by write_*, the multi and bulk
    writes and the batch writer alike (issue 25, item 9): whole numbers as integers."""
    import decimal
    import fractions

    import numpy as np

    t0 = datetime.datetime(2012, 1, 1, tzinfo=UTC)
    values = [np.int64(7), np.float32(0.5), decimal.Decimal("2.25"), decimal.Decimal("9"),
              fractions.Fraction(3, 4), np.bool_(True)]  # fmt: skip
    expected = [7, 0.5, 2.25, 9, 0.75, 1]
    stamps = [t0 + datetime.timedelta(minutes=i) for i in range(len(values))]
    client.write_key("by-key", [DataPoint(t, v) for t, v in zip(stamps, values, strict=True)])
    client.write_multi(
        [{"t": t, "key": "by-multi", "v": v} for t, v in zip(stamps, values, strict=True)]
    )
    for t, v in zip(stamps, values, strict=True):
        client.write_bulk(t, [{"key": "by-bulk", "v": v}])
    with client.batch_writer() as writer:
        for t, v in zip(stamps, values, strict=True):
            writer.add("by-batch", t, v)
    for key in ("by-key", "by-multi", "by-bulk", "by-batch"):
        got = [p.value for p in client.read_key(key, *DAY).data]
        assert got == expected, key
        assert [type(v) for v in got] == [type(v) for v in expected], key
