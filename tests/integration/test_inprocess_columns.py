"""``tempodb.connect`` hands ``write_dataframe``'s points and ``read_dataframe``'s answer over
as arrays, not JSON: the same frames, stored values and errors as over HTTP, side by side."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import pytest

import tempodb
from serverproc import Server
from tempodb import BatchWriteError, Client, TempoDBApiException, frames
from tempodb.frames import SMALL_SERIES
from tempodb.inprocess import InProcessClient
from tempodb.protocol import Response
from tempodb.server import points
from tempodb.storage.base import Retention

START, END = datetime.datetime(2012, 1, 1), datetime.datetime(2012, 1, 4)
T = TypeVar("T")


@dataclasses.dataclass
class Pair:
    """One client over HTTP (the session's server), one in-process, each on an empty
    database; ``admin`` is the server's administrator client."""

    http: Client
    local: InProcessClient
    admin: Client
    http_key: str

    def both(self, call: Callable[[Client], T]) -> tuple[T, T]:
        return call(self.http), call(self.local)


def _no_json(*args: object) -> object:
    raise AssertionError("an in-process write_dataframe went through JSON")


@pytest.fixture
def pair(
    server: Server, credentials: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Pair]:
    # In this process, every write must take its points as arrays (the server is another one).
    monkeypatch.setattr(points, "parse_points_body", _no_json)
    monkeypatch.setattr(points, "parse_multi_body", _no_json)
    with (
        server.client(*credentials) as http,
        tempodb.connect(tmp_path / "local") as local,
        server.client(server.admin_key, server.admin_secret) as admin,
    ):
        assert isinstance(local, InProcessClient)
        yield Pair(http, local, admin, credentials[0])


def _same_frames(left: pd.DataFrame, right: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(left, right, check_exact=True, check_freq=False)
    assert list(left.dtypes) == list(right.dtypes)
    for name in left.columns:  # the sign of zeros too
        assert (
            np.signbit(left[name].to_numpy(np.float64)).tolist()
            == np.signbit(right[name].to_numpy(np.float64)).tolist()
        )


def _json_read(client: Client, *args: Any, **kwargs: Any) -> pd.DataFrame:
    """``read_dataframe`` with the answer as JSON, even in-process."""
    request = frames.read_request(*args, **kwargs)
    return client._call(dataclasses.replace(request, parse_columns=None))


def _reads(pair: Pair, frame_keys: list[str]) -> None:
    """Every read of the stored points gives the same on both sides, and in-process the
    arrays give what the JSON gives."""
    for tz in ("", "Europe/Paris", "-03:30"):
        for interval, function in (("raw", ""), ("1hour", "mean"), ("1day", "max")):
            args = (START, END, interval, function, None, None, None, None, tz)
            http, local = pair.both(lambda c, a=args: c.read_dataframe(*a))  # type: ignore[misc]
            _same_frames(http, local)
            _same_frames(local, _json_read(pair.local, *args))
            answer = pair.local._engine.handle(frames.read_request(*args))
            assert isinstance(answer, Response)
            assert answer.columns is not None  # the arrays, not JSON
    for key in frame_keys:  # the stored values, integers and floats, through DataPoints
        http_set, local_set = pair.both(lambda c, k=key: c.read_key(k, START, END, "raw"))
        assert http_set.data == local_set.data
        assert [type(p.value) for p in http_set.data] == [type(p.value) for p in local_set.data]
        assert http_set.summary == local_set.summary


def _frame(tz: str | None) -> pd.DataFrame:
    n = 3000
    index = pd.date_range("2012-01-01 22:00", periods=n, freq="37s", tz=tz)
    rng = np.random.default_rng(19)
    floats = rng.normal(size=n) * 1e3
    floats[::7] = np.nan
    floats[:8] = [-0.0, 1e16, 5e-324, 1e300, 2.0**53, 0.1, -1.5e-7, 3.0]
    ints = rng.integers(-(2**53), 2**53, size=n)
    ints[:2] = [2**53, -(2**53)]
    nullable = pd.array(rng.integers(-5, 5, size=n), dtype="Int64")
    nullable[::3] = pd.NA
    few = np.full(n, np.nan)
    few[::150] = np.arange(20) * 0.25  # 20 points: sent with /multi/
    return pd.DataFrame(
        {
            "f": floats,
            "i": ints,
            "n": nullable,
            "b": rng.integers(0, 2, size=n).astype(bool),
            "few": few,
            "u": rng.integers(0, 2**40, size=n).astype(np.uint64),
        },
        index=index,
    )


@pytest.mark.parametrize("tz", [None, "UTC", "Asia/Kolkata", "America/Chicago"])
def test_wide_frames_round_trip_the_same(pair: Pair, tz: str | None) -> None:
    df = _frame(tz)
    pair.both(lambda c: c.write_dataframe(df, chunk_size=1100))
    _reads(pair, list(df.columns))


def test_long_frames_and_increments_the_same(pair: Pair) -> None:
    rows = []
    for series in range(40):  # small series share /multi/ requests
        for minute in range(series + 1):
            value = series if series % 2 else series + 0.5
            rows.append((f"small.{series}", START + datetime.timedelta(minutes=minute), value))
    big = SMALL_SERIES + 300
    rows += [("big", START + datetime.timedelta(seconds=s), s * 0.5) for s in range(big)]
    df = pd.DataFrame(rows, columns=["key", "time", "value"]).sample(frac=1.0, random_state=3)
    pair.both(lambda c: c.write_dataframe(df, chunk_size=700))
    counts = pd.DataFrame(
        {"key": ["n.1", "n.2", "n.1"], "time": [START, START, START], "value": [1, 2, 3]}
    )
    for _ in range(2):
        pair.both(lambda c: c.write_dataframe(counts, increment=True))
    _reads(pair, ["big", "small.0", "small.7", "small.39", "n.1", "n.2"])


def _error(call: Callable[[], object]) -> Exception:
    try:
        call()
    except Exception as exc:  # the exception itself is what is compared
        return exc
    raise AssertionError("no error")


def _same_error(pair: Pair, call: Callable[[Client], object]) -> Exception:
    http, local = (_error(lambda c=c: call(c)) for c in (pair.http, pair.local))  # type: ignore[misc]
    assert type(http) is type(local)
    assert _text(http) == _text(local)
    if isinstance(http, TempoDBApiException):
        assert isinstance(local, TempoDBApiException)
        assert (http.status, _text(http.message)) == (local.status, _text(local.message))
    if isinstance(http, BatchWriteError):
        assert isinstance(local, BatchWriteError)
        assert http.points == local.points
        assert [(p, _text(m)) for p, m in http.rejected] == [
            (p, _text(m)) for p, m in local.rejected
        ]
    return http


def _text(error: object) -> str:
    """The message without the instant it names (the oldest point a retention takes now)."""
    return re.sub(r"\d{4}-\d\d-\d\dT[\d:.]+Z", "<now>", str(error))


def test_writes_older_than_the_retention_fail_the_same(pair: Pair) -> None:
    answer = pair.admin.request(
        f"/database/{pair.http_key}/retention/", "PUT", body={"retention": "2d"}
    )
    assert answer["retention"] == "2d"
    engine = pair.local._engine
    assert engine.app.store.set_retention(pair.local.key, Retention(2 * 86_400_000))
    engine.app.retention.forget()
    time.sleep(1.2)  # the server applies a retention within a second

    index = pd.date_range("2012-01-01", periods=SMALL_SERIES + 10, freq="s")
    old = pd.DataFrame({"old": np.arange(len(index), dtype=float)}, index=index)
    refused = _same_error(pair, lambda c: c.write_dataframe(old))  # one request: 422
    assert isinstance(refused, TempoDBApiException)
    assert refused.status == 422

    now = pd.Timestamp.now(tz="UTC").floor("s")
    mixed = pd.DataFrame(
        {
            "key": ["s.1", "s.2", "s.1"],
            "time": [now, now - pd.Timedelta("30D"), now - pd.Timedelta("1s")],
            "value": [1, 2, 3],
        }
    )
    rejected = _same_error(pair, lambda c: c.write_dataframe(mixed))  # /multi/: 207
    assert isinstance(rejected, BatchWriteError)
    assert [p["key"] for p in rejected.points] == ["s.2"]
    http, local = pair.both(
        lambda c: c.read_dataframe(now - pd.Timedelta("1D"), now + pd.Timedelta("1s"), "raw")
    )
    _same_frames(http, local)
    assert local["s.1"].tolist() == [3, 1]


def test_too_many_new_series_fail_the_same(pair: Pair) -> None:
    keys = [f"many.{n}" for n in range(10_001)]  # one more than a request may create
    df = pd.DataFrame({"key": keys, "time": [START] * len(keys), "value": 1.5})
    refused = _same_error(pair, lambda c: c.write_dataframe(df, chunk_size=20_000))
    assert isinstance(refused, TempoDBApiException)
    assert refused.status == 400
    assert "Too many new series" in str(refused)
    assert pair.both(lambda c: c.get_series()) == ([], [])  # nothing was created


def test_invalid_keys_fail_the_same(pair: Pair) -> None:
    df = pd.DataFrame({"a|b": [1.0]}, index=pd.DatetimeIndex(["2012-01-01"]))
    error = _same_error(pair, lambda c: c.write_dataframe(df))
    assert isinstance(error, ValueError)
    bad = pd.DataFrame({"a": [np.inf]}, index=pd.DatetimeIndex(["2012-01-01"]))
    assert isinstance(_same_error(pair, lambda c: c.write_dataframe(bad)), ValueError)
    assert pair.both(lambda c: c.get_series()) == ([], [])  # nothing was sent


def test_refused_reads_fail_the_same(pair: Pair) -> None:
    """A read that asks for arrays in-process gets the server's error, not arrays."""
    error = _same_error(pair, lambda c: c.read_dataframe(START, END, interval="7fortnights"))
    assert isinstance(error, TempoDBApiException)
    assert error.status == 400
    error = _same_error(pair, lambda c: c.read_dataframe(END, START))
    assert isinstance(error, TempoDBApiException)


def test_the_async_twin_hands_arrays_over_too(pair: Pair, tmp_path: Path) -> None:
    """``connect_async``: the same frames as the synchronous client, the points as arrays."""
    df = _frame("Europe/Paris")
    pair.local.write_dataframe(df, chunk_size=1100)
    expected = pair.local.read_dataframe(START, END, "raw", tz="America/Chicago")

    async def main() -> pd.DataFrame:
        async with tempodb.connect_async(tmp_path / "async") as client:
            await client.write_dataframe(df, chunk_size=1100)
            return await client.read_dataframe(START, END, "raw", tz="America/Chicago")

    _same_frames(asyncio.run(main()), expected)
