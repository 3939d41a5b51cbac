"""The 1.0 reads (segment, rollups, summary, find, aggregate, multi, paged listing, single
without ts, DELETE one series) against the real server over HTTP, on SQLite and PostgreSQL,
through the real clients and raw HTTP for the headers."""

from __future__ import annotations

import asyncio
import base64
import datetime
import gzip
import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tempodb import AsyncClient, Client, DataPoint, InvalidRequestError, NotFoundError

UTC = datetime.UTC
NY = ZoneInfo("America/New_York")
TZ_NAME = "America/New_York"
# Two days around the New York fall-back change of 2014-11-02, one point every 7 minutes
# (some values floats, one gap of two hours).
START = datetime.datetime(2014, 11, 1, tzinfo=NY)
END = datetime.datetime(2014, 11, 3, tzinfo=NY)
MINUTES = [m for m in range(0, 49 * 60, 7) if not 600 <= m < 720]
SETTINGS = settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _value(m: int) -> int | float:
    return m % 13 if m % 3 else (m % 17) / 4


def _points(offset: int = 0) -> list[DataPoint]:
    return [
        DataPoint(
            START.astimezone(UTC) + datetime.timedelta(minutes=m + offset), _value(m + offset)
        )
        for m in MINUTES
    ]


@pytest.fixture
def loaded(client: Client) -> Client:
    client.write_key("a", _points())
    client.write_key("b", _points(3)[::2])
    client.write_key("c d", _points(1)[:40])
    for key, tag in (("a", "x"), ("b", "x"), ("c d", "y")):
        series = client.get_series(keys=[key])[0]
        series.tags = [tag]
        client.update_series(series)
    return client


def _http(
    server: Any,
    credentials: tuple[str, str],
    target: str,
    method: str = "GET",
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    token = base64.b64encode("{}:{}".format(*credentials).encode()).decode()
    request = urllib.request.Request(
        f"{server.url}{target}",
        headers={"Authorization": f"Basic {token}", **(headers or {})},
        method=method,
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            headers = {k.lower(): v for k, v in response.headers.items()}
            return response.status, headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()


def _range(**extra: str) -> str:
    return urlencode(
        {"start": START.isoformat(), "end": END.isoformat(), "tz": "America/New_York", **extra}
    )


# -- paging ----------------------------------------------------------------------------------


SHAPES: list[dict[str, str]] = [
    {},
    {"rollup_period": "PT1H", "rollup_fold": "sum"},
    {"rollup_period": "P1D", "rollup_fold": "percentile,75"},
    {"rollup_period": "PT20M", "rollup_fold": "last"},
    {"interpolation_period": "PT5M", "interpolation_function": "linear"},
    {
        "interpolation_period": "PT10M",
        "interpolation_function": "zoh",
        "rollup_period": "PT1H",
        "rollup_fold": "max",
    },
]


@SETTINGS
@given(limit=st.integers(1, 400), shape=st.sampled_from(SHAPES))
def test_segment_pages_equal_the_unpaged_answer(
    loaded: Client, limit: int, shape: dict[str, str]
) -> None:
    whole = list(loaded.read_segment("a", START, END, tz="America/New_York", limit=None, **shape))
    assert whole
    paged = list(loaded.read_segment("a", START, END, tz="America/New_York", limit=limit, **shape))
    assert [(p.ts, p.value) for p in paged] == [(p.ts, p.value) for p in whole]
    assert all(
        p.ts.utcoffset() in (datetime.timedelta(hours=-4), datetime.timedelta(hours=-5))
        for p in paged
    )


@SETTINGS
@given(limit=st.integers(1, 60), shape=st.sampled_from(SHAPES[:4]))
def test_aggregate_multi_find_rollups_pages_equal_the_unpaged_answer(
    loaded: Client, limit: int, shape: dict[str, str]
) -> None:
    tz = "America/New_York"

    def agg(lim: int | None) -> list[tuple[datetime.datetime, Any]]:
        found = loaded.aggregate(START, END, fold="mean", tags=["x"], tz=tz, limit=lim, **shape)
        return [(p.ts, p.value) for p in found]

    def multi(lim: int | None) -> list[tuple[datetime.datetime, Any]]:
        return [(p.ts, p.values) for p in loaded.read_multi(START, END, tz=tz, limit=lim, **shape)]

    def find(lim: int | None) -> list[Any]:
        found = loaded.find("a", START, END, function="max", period="PT3H", tz=tz, limit=lim)
        return [(f.start, f.end, f.point) for f in found]

    def rollups(lim: int | None) -> list[Any]:
        folds = ["min", "avg", "count"]
        found = loaded.read_rollups("a", START, END, period="PT2H", folds=folds, tz=tz, limit=lim)
        return [(p.ts, p.values) for p in found]

    for read in (agg, multi, find, rollups):
        assert read(limit) == read(None)


def test_listing_pages(client: Client) -> None:
    keys = [f"s{i:03d}" for i in range(23)]
    client.create_many_series(keys)
    for limit in (1, 5, 22, 23, 24):
        assert [s.key for s in client.iter_series(limit=limit)] == keys
    assert [s.key for s in client.iter_series(limit=2, keys=keys[3:8])] == keys[3:8]


def test_link_header_and_cursor_errors(
    server: Any, credentials: tuple[str, str], loaded: Client
) -> None:
    status, headers, body = _http(
        server, credentials, f"/v1/series/key/a/segment?{_range(limit='3')}"
    )
    assert status == 200
    assert len(json.loads(body)["data"]) == 3
    link = headers["link"]
    assert link.startswith("</v1/series/key/a/segment?")
    assert link.endswith('>; rel="next"')
    target = link[1 : link.index(">")]
    assert "cursor=" in target
    assert "limit=3" in target
    status, headers, body = _http(server, credentials, target)
    assert status == 200
    assert len(json.loads(body)["data"]) == 3
    # The last page has no Link.
    status, headers, body = _http(server, credentials, f"/v1/series/key/a/segment?{_range()}")
    assert status == 200
    assert "link" not in headers
    # A bad token, a token of another query, a bad limit: 400 with a message.
    cursor = target.split("cursor=")[1]
    for bad, message in (
        (_range(limit="3", cursor="nonsense"), b"Invalid cursor"),
        (_range(limit="3", cursor=cursor, **{"rollup.period": "PT1H"}), b"another query"),
        (_range(limit="0"), b"Invalid limit"),
        (_range(limit="x"), b"Invalid limit"),
        (_range(limit="\u00b2"), b"Invalid limit"),
    ):
        status, _, body = _http(server, credentials, f"/v1/series/key/a/segment?{bad}")
        assert status == 400, body
        assert message in body, body


# -- the same numbers as 0.5 -----------------------------------------------------------------


@pytest.mark.parametrize("function", ["sum", "mean", "min", "max", "count", "stddev", "ss"])
@pytest.mark.parametrize("interval", ["PT1H", "1day", "PT20M"])
def test_segment_rollups_equal_the_05_reads(loaded: Client, function: str, interval: str) -> None:
    old = loaded.read_key(
        "a", START, END, interval=interval, function=function, tz="America/New_York"
    )
    new = loaded.read_segment(
        "a", START, END, rollup_period=interval, rollup_fold=function, tz="America/New_York"
    )
    assert [(p.ts, p.value) for p in new] == [(p.ts, p.value) for p in old.data]


def test_raw_segment_equals_the_05_read_and_by_id_and_slashes(
    server: Any, credentials: tuple[str, str], loaded: Client
) -> None:
    old = loaded.read_key("a", START, END, interval="raw")
    series_id = old.series.id
    assert list(loaded.read_segment(series_id, START, END, by_id=True)) == old.data
    bodies = set()
    for path in (
        "/v1/series/key/a/segment",
        "/v1/series/key/a/segment/",
        "/v1/series/key/a/data/segment",
        f"/v1/series/id/{series_id}/data/segment/",
    ):
        status, _, body = _http(server, credentials, f"{path}?{_range()}")
        assert status == 200
        bodies.add(body)
    assert len(bodies) == 1
    answer = json.loads(bodies.pop())
    assert answer["series"]["key"] == "a"
    assert answer["rollup"] is None
    assert answer["tz"] == "America/New_York"
    assert answer["data"][0]["t"] == "2014-11-01T00:00:00.000-04:00"


# -- each route ------------------------------------------------------------------------------


def test_summary(loaded: Client) -> None:
    summary = loaded.read_summary("a", START, END)
    values = [_value(m) for m in MINUTES]
    assert summary.count == len(values)
    assert summary.sum == pytest.approx(sum(values))
    assert summary.mean == pytest.approx(np.mean(values))
    assert (summary.min, summary.max) == (min(values), max(values))
    assert summary.stddev == pytest.approx(np.std(values, ddof=1))
    empty = loaded.read_summary("a", END, END + datetime.timedelta(days=1))
    assert empty.to_json() == {
        "count": 0,
        "sum": 0,
        "mean": None,
        "min": None,
        "max": None,
        "stddev": None,
    }


def test_find_picks_the_earliest_maximum_with_interval_bounds(loaded: Client) -> None:
    found = list(loaded.find("a", START, END, function="max", period="PT6H", tz="America/New_York"))
    points = _points()
    for item in found:
        inside = [p for p in points if item.start <= p.ts < item.end]
        best = max(p.value for p in inside)
        assert item.point == next(p for p in inside if p.value == best)
    # Six-hour intervals of the local clock; the day of the change has a 25-hour last day.
    assert found[0].start == START
    assert found[0].end == START + datetime.timedelta(hours=6)
    assert {f.start.hour for f in found} <= {0, 6, 12, 18}


def test_aggregate_folds_across_series(loaded: Client) -> None:
    a = loaded.read_key("a", START, END, interval="raw").data
    b = loaded.read_key("b", START, END, interval="raw").data
    by_time: dict[datetime.datetime, list[float]] = {}
    for p in a + b:
        by_time.setdefault(p.ts, []).append(p.value)
    summed = list(loaded.aggregate(START, END, fold="sum", tags=["x"]))
    assert [(p.ts, p.value) for p in summed] == [
        (t, pytest.approx(sum(v))) for t, v in sorted(by_time.items())
    ]
    counted = list(
        loaded.aggregate(
            START, END, fold="count", keys=["a", "b"], rollup_period="P1D", rollup_fold="sum"
        )
    )
    assert sum(p.value for p in counted) == len(a) + len(b)


def test_multi_side_by_side(loaded: Client) -> None:
    rows = list(loaded.read_multi(START, END, keys=["a", "c d"]))
    a = loaded.read_key("a", START, END, interval="raw").data
    c = loaded.read_key("c d", START, END, interval="raw").data
    assert {p.ts for p in a} | {p.ts for p in c} == {r.ts for r in rows}
    for row in rows:
        assert set(row.values) <= {"a", "c d"}
    first_c = next(r for r in rows if "c d" in r.values)
    assert first_c.values == {"c d": c[0].value}


def test_single_without_ts_and_delete_one_series(
    server: Any, credentials: tuple[str, str], client: Client
) -> None:
    now = datetime.datetime.now(UTC).replace(microsecond=0)
    client.write_key("k", [DataPoint(now - datetime.timedelta(minutes=1), 5)])
    status, _, body = _http(server, credentials, "/v1/series/key/k/single?direction=before")
    assert status == 200
    assert json.loads(body)["data"]["v"] == 5
    status, _, body = _http(server, credentials, "/v1/single/?direction=before&key=k")
    assert status == 200
    assert json.loads(body)[0]["data"]["v"] == 5
    status, _, _ = _http(server, credentials, "/v1/series/key/k", "DELETE")
    assert status == 200
    assert client.get_series() == []
    status, _, body = _http(server, credentials, "/v1/series/key/k/", "DELETE")
    assert status == 403
    assert b"Series not found" in body


def test_bad_parameters_are_400_and_unknown_series_403(loaded: Client) -> None:
    with pytest.raises(NotFoundError):
        loaded.read_segment("nope", START, END)
    for kwargs, message in (
        ({"rollup_period": "PT1H", "rollup_fold": "median"}, "Invalid rollup.fold"),
        ({"rollup_period": "7fortnights", "rollup_fold": "sum"}, "Invalid rollup.period"),
        ({"rollup_fold": "sum"}, "needs rollup.period"),
        ({"interpolation_period": "PT1M", "interpolation_function": "cubic"}, "zoh or linear"),
    ):
        with pytest.raises(InvalidRequestError, match=message):
            loaded.read_segment("a", START, END, **kwargs)
    with pytest.raises(InvalidRequestError, match=r"predicate\.function"):
        loaded.find("a", START, END, function="median", period="P1D")
    with pytest.raises(InvalidRequestError, match=r"aggregation\.fold"):
        loaded.aggregate(START, END, fold="nope")
    with pytest.raises(InvalidRequestError, match="start must not be after end"):
        loaded.read_segment("a", END, START)


def test_tenant_isolation(server: Any, loaded: Client) -> None:
    with server.client(*server.new_database()) as other:
        other.write_key("mine", _points()[:5])
        with pytest.raises(NotFoundError):
            other.read_segment("a", START, END)
        with pytest.raises(NotFoundError):
            other.read_summary("a", START, END)
        assert next(p.values for p in other.read_multi(START, END)) == {"mine": _value(0)}
        assert len(list(other.aggregate(START, END, fold="count"))) == 5
        assert [s.key for s in other.iter_series(limit=1)] == ["mine"]


# -- the async client ------------------------------------------------------------------------


def test_async_client_reads_the_same(
    server: Any, credentials: tuple[str, str], loaded: Client
) -> None:
    async def main() -> list[Any]:
        async with AsyncClient(*credentials, host=server.host, port=server.port, secure=False) as c:
            with pytest.raises(NotFoundError):
                [p async for p in c.read_segment("missing", START, END)]
            points = [
                p
                async for p in c.read_segment(
                    "a", START, END, limit=7, rollup_period="PT1H", rollup_fold="max"
                )
            ]
            found = [
                f async for f in c.find("a", START, END, function="min", period="P1D", limit=1)
            ]
            rows = [r async for r in c.read_multi(START, END, limit=5)]
            summary = await c.read_summary("a", START, END)
            return [points, found, rows, summary]

    points, found, rows, summary = asyncio.run(main())
    assert points == list(
        loaded.read_segment("a", START, END, rollup_period="PT1H", rollup_fold="max")
    )
    assert found == list(loaded.find("a", START, END, function="min", period="P1D"))
    assert rows == list(loaded.read_multi(START, END))
    assert summary == loaded.read_summary("a", START, END)


def test_key_with_a_space_in_the_link(
    server: Any, credentials: tuple[str, str], loaded: Client
) -> None:
    target = f"/v1/series/key/{quote('c d')}/segment?{_range(limit='10')}"
    status, headers, _ = _http(server, credentials, target)
    assert status == 200
    assert headers["link"].startswith("</v1/series/key/c%20d/segment?")
    assert len(list(loaded.read_segment("c d", START, END, limit=10))) == 40


@pytest.mark.parametrize("limit", [None, 1, 4])
def test_sparse_interpolation_holds_values_across_gaps(client: Client, limit: int | None) -> None:
    """Monthly zoh and linear grids over two years with three points: values only from the
    first point to the last, held (or interpolated) across the long gaps between them."""
    paris = ZoneInfo("Europe/Paris")
    points = [
        DataPoint(datetime.datetime(2012, 2, 15, tzinfo=paris), 1),
        DataPoint(datetime.datetime(2013, 6, 1, tzinfo=paris), 2),
        DataPoint(datetime.datetime(2013, 11, 20, tzinfo=paris), 4),
    ]
    client.write_key("sparse", points)
    start, end = (
        datetime.datetime(2011, 1, 1, tzinfo=paris),
        datetime.datetime(2015, 1, 1, tzinfo=paris),
    )
    grid = [
        datetime.datetime(2012 + (m // 12), m % 12 + 1, 1, tzinfo=paris) for m in range(2, 23)
    ]  # 2012-03-01 .. 2013-11-01
    for function in ("zoh", "linear"):
        got = list(
            client.read_segment(
                "sparse",
                start,
                end,
                interpolation_period="P1M",
                interpolation_function=function,
                tz="Europe/Paris",
                limit=limit,
            )
        )
        assert [p.ts for p in got] == grid
        for point in got:
            before = max((p for p in points if p.ts <= point.ts), key=lambda p: p.ts)
            after = min((p for p in points if p.ts > point.ts), key=lambda p: p.ts, default=None)
            want: float = before.value
            if function == "linear" and after is not None and before.ts != point.ts:
                t, t0, t1 = (x.astimezone(UTC) for x in (point.ts, before.ts, after.ts))
                share = (t - t0) / (t1 - t0)  # in real time, not the wall clock's
                want = before.value + (after.value - before.value) * share
            assert point.value == pytest.approx(want), point


def test_listing_cursor_of_a_read_is_refused(
    server: Any, credentials: tuple[str, str], loaded: Client
) -> None:
    status, headers, _ = _http(server, credentials, f"/v1/series/key/a/segment?{_range(limit='3')}")
    cursor = headers["link"].split("cursor=")[1].split(">")[0]
    status, _, body = _http(server, credentials, f"/v1/series/?limit=2&cursor={cursor}")
    assert status == 400, body


def test_read_multi_dataframe(loaded: Client) -> None:
    frame = loaded.read_multi_dataframe(
        START, END, keys=["a", "c d"], rollup_period="PT1H", rollup_fold="count", tz=TZ_NAME
    )
    assert list(frame.columns) == ["a", "c d"]
    assert str(frame.index.tz) == TZ_NAME
    rows = list(
        loaded.read_multi(
            START, END, keys=["a", "c d"], rollup_period="PT1H", rollup_fold="count", tz=TZ_NAME
        )
    )
    assert len(frame) == len(rows)
    assert frame["a"].sum() == sum(r.values.get("a", 0) for r in rows)
    assert frame["c d"].isna().sum() == sum("c d" not in r.values for r in rows)


AGG_FOLDS = ["sum", "mult", "min", "max", "mean", "count", "range", "first", "last", "ss"]
AGG_FOLDS += ["stddev", "percentile,25", "percentile,100"]


def _fold_reference(values: list[float], fold: str) -> float:
    array = np.array(values, np.float64)
    if fold.startswith("percentile,"):
        return float(np.percentile(array, float(fold.split(",")[1])))
    mean = float(array.mean())
    ss = float(((array - mean) ** 2).sum())
    return {
        "sum": float(array.sum()),
        "mult": float(np.prod(array)),
        "min": float(array.min()),
        "max": float(array.max()),
        "mean": mean,
        "count": float(array.size),
        "range": float(array.max() - array.min()),
        "first": values[0],
        "last": values[-1],
        "ss": ss,
        "stddev": (ss / max(array.size - 1, 1)) ** 0.5,
    }[fold]


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=st.lists(
        st.dictionaries(st.integers(0, 30 * 60 // 5), st.integers(-9, 9), min_size=1, max_size=30),
        min_size=1,
        max_size=3,
    ),
    across=st.sampled_from(AGG_FOLDS),
    fold=st.sampled_from(AGG_FOLDS),
    period=st.sampled_from(["PT2H", "PT5H", "P1D"]),
)
def test_aggregate_then_rollup_matches_a_reference(
    client: Client, data: list[dict[int, int]], across: str, fold: str, period: str
) -> None:
    """Random series around the 2014-03-09 New York change: folded across series at each
    timestamp, then into wall-clock buckets (labels by the tested ``bucket_labels``), against
    the same computed in Python."""
    from tempodb.rollup import bucket_labels, parse_interval
    from tempodb.zones import get_zone

    base = datetime.datetime(2014, 3, 8, 12, tzinfo=UTC)
    start, end = base, base + datetime.timedelta(days=2)
    prefix = f"r{abs(hash((tuple(map(tuple, (sorted(d.items()) for d in data))), across))) % 10**9}"
    keys = [f"{prefix}-{i}" for i in range(len(data))]
    for key, points in zip(keys, data, strict=True):
        client.write_key(
            key, [DataPoint(base + datetime.timedelta(minutes=5 * m), v) for m, v in points.items()]
        )
    got = list(
        client.aggregate(
            start, end, fold=across, keys=keys, rollup_period=period, rollup_fold=fold, tz=TZ_NAME
        )
    )
    base_ms = int(base.timestamp() * 1000)
    by_time: dict[int, list[float]] = {}
    for points in data:  # keys sort in series order, as the server folds them
        for m in sorted(points):
            by_time.setdefault(base_ms + m * 300_000, []).append(float(points[m]))
    times = sorted(by_time)
    across_values = [_fold_reference(by_time[t], across) for t in times]
    interval = parse_interval(period)
    assert interval is not None
    labels = bucket_labels(
        np.array(times, np.int64), interval=interval, zone=get_zone(TZ_NAME), start_ms=base_ms
    ).tolist()
    buckets: dict[int, list[float]] = {}
    for label, value in zip(labels, across_values, strict=True):
        buckets.setdefault(label, []).append(value)
    want = [(label, _fold_reference(values, fold)) for label, values in sorted(buckets.items())]
    assert [int(p.ts.timestamp() * 1000) for p in got] == [label for label, _ in want]
    for point, (_, value) in zip(got, want, strict=True):
        assert point.value == pytest.approx(value, rel=1e-9, abs=1e-9)


def test_gzip_deflate_clients_get_gzip(
    server: Any, credentials: tuple[str, str], loaded: Client
) -> None:
    """1.0 clients send ``Accept-Encoding: gzip, deflate`` and no Content-Type."""
    target = f"/v1/series/key/a/segment?{_range(limit='300')}"
    status, headers, body = _http(
        server, credentials, target, headers={"Accept-Encoding": "gzip, deflate"}
    )
    assert status == 200
    assert headers["content-encoding"] == "gzip"
    assert "link" in headers
    plain = _http(server, credentials, target)[2]
    assert json.loads(gzip.decompress(body)) == json.loads(plain)
