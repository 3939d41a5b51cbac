"""pandas in and out, against the real server: values, types and time zones point by point."""

from __future__ import annotations

import datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from tempodb import Client, DataPoint, NotFoundError
from tempodb.frames import SMALL_SERIES, format_times, parse_times_ms

#: Every test with the ``client`` fixture runs over HTTP and in-process (tests/conftest.py).
BOTH_TRANSPORTS = True
UTC = datetime.UTC
START, END = datetime.datetime(2012, 1, 1), datetime.datetime(2012, 1, 3)


def _raw(client: Client, tz: str = "", **filters: Any) -> pd.DataFrame:
    return client.read_dataframe(START, END, interval="raw", tz=tz, **filters)


def test_wide_round_trip_keeps_ints_and_floats(client: Client) -> None:
    index = pd.date_range("2012-01-01", periods=1500, freq="min")  # naive: UTC
    rng = np.random.default_rng(7)
    floats = rng.normal(size=1500) * 1e6
    floats[:4] = [0.1, -0.0, 1e-300, 2.0**52 + 0.5]
    ints = rng.integers(-(2**53), 2**53, size=1500)
    df = pd.DataFrame({"f": floats, "i": ints}, index=index)
    client.write_dataframe(df)

    back = _raw(client)
    assert list(back.columns) == ["f", "i"]
    assert str(back.index.tz) == "UTC"
    assert (back.index == index.tz_localize("UTC")).all()
    assert back["f"].dtype == np.float64
    assert back["i"].dtype == np.int64
    assert back["f"].tolist() == floats.tolist()  # exact, value by value
    assert back["i"].tolist() == ints.tolist()
    # the same points through the DataPoint API
    data = client.read_key("i", START, END, interval="raw").data
    assert data[3] == DataPoint(index[3].to_pydatetime().replace(tzinfo=UTC), int(ints[3]))
    assert isinstance(data[3].value, int)


def test_time_zones_and_dst(client: Client) -> None:
    chicago = ZoneInfo("America/Chicago")
    index = pd.date_range("2012-03-10 22:00", periods=12, freq="h", tz="America/Chicago")
    df = pd.DataFrame({"t": np.arange(12.0)}, index=index)  # crosses 2012-03-11 02:00 CST->CDT
    client.write_dataframe(df)

    back = client.read_dataframe(
        index[0], index[-1] + pd.Timedelta("1h"), interval="raw", tz="America/Chicago"
    )
    assert str(back.index.tz) == "America/Chicago"
    assert (back.index == index).all()
    assert [ts.utcoffset() for ts in back.index[:5]] == [datetime.timedelta(hours=-6)] * 4 + [
        datetime.timedelta(hours=-5)
    ]
    assert back["t"].tolist() == list(range(12))
    series = client.read_key("t", index[0], index[-1], interval="raw", tz="America/Chicago")
    as_series = series.to_series()
    assert as_series.name == "t"
    assert str(as_series.index.tz) == "America/Chicago"
    assert (as_series.index == index[:-1]).all()
    assert as_series.index[0].to_pydatetime() == datetime.datetime(2012, 3, 10, 22, tzinfo=chicago)
    frame = series.to_dataframe()
    assert list(frame.columns) == ["t"]
    assert frame["t"].dtype == np.float64
    # a fixed offset
    fixed = client.read_dataframe(index[0], index[2], interval="raw", tz="+05:30")
    assert fixed.index[0].utcoffset() == datetime.timedelta(hours=5, minutes=30)
    assert fixed.index[0] == index[0]


def test_gaps_rollups_and_int_columns(client: Client) -> None:
    index = pd.date_range("2012-01-01", periods=4, freq="h", tz="UTC")
    df = pd.DataFrame({"a": [1.0, np.nan, 3.0, np.nan], "b": [1, 2, 3, 4]}, index=index)
    client.write_dataframe(df)
    back = _raw(client)
    assert back["a"].isna().tolist() == [False, True, False, True]  # NaN cells were not written
    assert len(client.read_key("a", START, END).data) == 2
    assert back["b"].dtype == np.int64
    hourly = client.read_dataframe(START, END, interval="2hour", function="sum", keys=["b"])
    assert hourly["b"].tolist() == [3, 7]
    empty = client.read_dataframe(START, END, keys=["nothing-matches"])
    assert empty.empty
    assert str(empty.index.tz) == "UTC"
    only_a = _raw(client, keys=["a"])
    assert list(only_a.columns) == ["a"]
    assert len(only_a) == 2


def test_long_format_many_series(client: Client) -> None:
    rows = []
    for series in range(30):  # small series share /multi/ requests
        for minute in range(series + 1):
            rows.append((f"small.{series}", START + datetime.timedelta(minutes=minute), series))
    big = SMALL_SERIES + 500  # a series of its own request(s)
    rows += [("big", START + datetime.timedelta(seconds=s), s * 0.5) for s in range(big)]
    df = pd.DataFrame(rows, columns=["key", "time", "value"]).sample(frac=1.0, random_state=3)
    client.write_dataframe(df, chunk_size=600)

    back = _raw(client)
    assert len(back.columns) == 31
    assert back["big"].dropna().tolist() == [s * 0.5 for s in range(big)]
    for series in (0, 17, 29):
        column = back[f"small.{series}"].dropna()
        assert column.tolist() == [series] * (series + 1)
    # and back to the long format it came from
    long = back.reset_index().melt(id_vars="time", var_name="key").dropna()
    assert len(long) == len(df)


def test_increment(client: Client) -> None:
    df = pd.DataFrame({"n": [1, 2]}, index=pd.date_range("2012-01-01", periods=2, freq="D"))
    client.write_dataframe(df, increment=True)
    client.write_dataframe(df, increment=True)
    assert _raw(client)["n"].tolist() == [2, 4]


def test_a_key_the_server_would_refuse_is_refused_before_anything_is_sent(client: Client) -> None:
    too_long = "k" * 300  # the client knows the server's rule (tempodb.contract)
    df = pd.DataFrame(
        {
            "key": ["fine", too_long, "fine"],
            "time": ["2012-01-01T00:00:00Z", "2012-01-01T00:00:00Z", "2012-01-01T00:01:00Z"],
            "value": [1.5, 2.5, 3.5],
        }
    )
    with pytest.raises(ValueError, match="Series key must match"):
        client.write_dataframe(df)
    with pytest.raises(NotFoundError):  # nothing was written
        client.read_key("fine", START, END)


@pytest.mark.parametrize(
    ("df", "error", "match"),
    [
        (pd.DataFrame({"a": [1.0]}), TypeError, "DatetimeIndex"),
        (pd.DataFrame({"a": [np.inf]}, index=pd.DatetimeIndex(["2012-01-01"])), ValueError, "inf"),
        (pd.DataFrame({"a": [2**60]}, index=pd.DatetimeIndex(["2012-01-01"])), ValueError, "2"),
        (pd.DataFrame({"a|b": [1]}, index=pd.DatetimeIndex(["2012-01-01"])), ValueError, "regex"),
        (pd.DataFrame({"a": ["x"]}, index=pd.DatetimeIndex(["2012-01-01"])), TypeError, "numb"),
        (pd.DataFrame({"a": [1]}, index=pd.DatetimeIndex([pd.NaT])), ValueError, "NaT"),
    ],
)
def test_bad_frames_are_refused_before_sending(df: pd.DataFrame, error: type, match: str) -> None:
    client = Client("k", "s", "127.0.0.1", 9, secure=False, retries=0)  # nothing listens
    with pytest.raises(error, match=match):
        client.write_dataframe(df)


def test_vectorised_timestamps_match_the_scalar_code() -> None:
    ms = np.array([-62135596800000, -1, 0, 951782400000, 1330473600000, 253402300799999], np.int64)
    texts = [bytes(row).decode() + "Z" for row in format_times(ms)]
    assert texts[0] == "0001-01-01T00:00:00.000Z"
    assert texts[1] == "1969-12-31T23:59:59.999Z"
    assert texts[3] == "2000-02-29T00:00:00.000Z"
    assert texts[-1] == "9999-12-31T23:59:59.999Z"
    assert parse_times_ms(texts).tolist() == ms.tolist()
    shifted = ["2012-01-01T00:00:00.000-06:00", "2012-01-01T05:30:00.000+05:30"]
    assert parse_times_ms(shifted).tolist() == [1325397600000, 1325376000000]
    # other shapes take the per-item path
    assert parse_times_ms(["2012-01-01T00:00:00Z", "2012-01-01"]).tolist() == [1325376000000] * 2


def test_pandas_timestamps_as_arguments() -> None:
    from tempodb.timeutil import to_wire

    chicago = pd.Timestamp("2012-03-10 22:00", tz="America/Chicago")
    assert to_wire(chicago) == "2012-03-11T04:00:00.000Z"
    assert to_wire(pd.Timestamp("2012-03-10 22:00")) == "2012-03-10T22:00:00.000Z"
