"""AsyncClient against the real server: the operations of the original documentation's
examples, errors, 207 handling, DataFrames and the async batch writer."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Awaitable, Callable
from typing import Any

import pandas as pd
import pytest

from tempodb import (
    AsyncClient,
    BatchWriteError,
    DataPoint,
    DataSet,
    DeleteSummary,
    NotFoundError,
    Series,
)

UTC = datetime.UTC
DAY = (datetime.datetime(2012, 1, 1), datetime.datetime(2012, 1, 2))
IDS = ["01868c1a2aaf416ea6cd8edd65e7a4b8", "38268c3b231f1266a392931e15e99231"]
POINTS = [
    DataPoint(datetime.datetime(2012, 1, 1, 1, 0, 0), 12.34),
    DataPoint(datetime.datetime(2012, 1, 1, 1, 1, 0), 1.874),
    DataPoint(datetime.datetime(2012, 1, 1, 1, 2, 0), 21.52),
]


@pytest.fixture
def run(server: Any, credentials: tuple[str, str]) -> Callable[..., Any]:
    """Run ``body(client)`` with an AsyncClient on the test's fresh database."""

    def run_body(body: Callable[[AsyncClient], Awaitable[Any]]) -> Any:
        async def main() -> Any:
            async with AsyncClient(
                *credentials, host=server.host, port=server.port, secure=False
            ) as client:
                return await body(client)

        return asyncio.run(main())

    return run_body


def test_series_examples(run: Callable[..., Any]) -> None:
    async def body(client: AsyncClient) -> None:
        series1 = await client.create_series("my-custom-key")
        series2 = await client.create_series()
        assert series1.key == "my-custom-key"
        assert len(series1.id) == 32
        assert series2.key == series2.id
        for key, tags in [("a", ["tag1", "tag2"]), ("b", ["tag1"])]:
            created = await client.create_series(key)
            created.tags, created.attributes = tags, {"attr1": "value1"}
            await client.update_series(created)
        found = await client.get_series(tags=["tag1", "tag2"], attributes={"attr1": "value1"})
        assert [s.key for s in found] == ["a"]
        assert isinstance(found[0], Series)
        (series,) = await client.get_series(keys=["b"])
        series.tags = ["tag3"]
        assert (await client.update_series(series)).tags == ["tag3"]
        summary = await client.delete_series(tags=["tag3"])
        assert isinstance(summary, DeleteSummary)
        assert summary.deleted == 1

    run(body)


def test_write_read_increment_delete_examples(run: Callable[..., Any]) -> None:
    async def body(client: AsyncClient) -> None:
        await client.write_id(IDS[1], POINTS)
        await client.write_key("my-custom-key", POINTS)
        data = await client.read_key("my-custom-key", *DAY)
        assert isinstance(data, DataSet)
        assert data.data[0] == DataPoint(datetime.datetime(2012, 1, 1, 1, tzinfo=UTC), 12.34)
        await client.increment_id(IDS[1], POINTS)
        await client.increment_key("my-custom-key", POINTS)
        doubled = await client.read_id(IDS[1], *DAY)
        assert [p.value for p in doubled.data] == pytest.approx([24.68, 3.748, 43.04])
        hourly = await client.read(*DAY, keys=["my-custom-key"], interval="1hour", function="max")
        assert [p.value for p in hourly[0].data] == [43.04]
        single = await client.single_value_key("my-custom-key", DAY[0], "after")
        assert single.data is not None
        assert single.data.value == 24.68
        assert len(await client.single_value(DAY[0], "after")) == 2
        await client.delete_id(IDS[1], *DAY)
        await client.delete_key("my-custom-key", *DAY)
        assert (await client.read_key("my-custom-key", *DAY)).data == []

    run(body)


def test_bulk_and_multi_examples(run: Callable[..., Any]) -> None:
    ts = datetime.datetime(2012, 1, 8, 1, 21)
    bulk = [{"id": IDS[0], "v": 4}, {"id": IDS[1], "v": 2}, {"key": "foo", "v": 1}]
    multi = [
        {"t": datetime.datetime(2013, 8, 21), "id": IDS[0], "v": 46},
        {"t": datetime.datetime(2013, 8, 24), "key": "foo", "v": 1},
    ]

    async def body(client: AsyncClient) -> None:
        await client.write_bulk(ts, bulk)
        await client.increment_bulk(ts, bulk)
        assert await client.write_multi(multi) is None
        assert await client.increment_multi(multi) is None
        at = await client.read_key("foo", ts, ts + datetime.timedelta(minutes=1))
        assert [p.value for p in at.data] == [2]
        day = datetime.datetime(2013, 8, 21)
        multi_read = await client.read_id(IDS[0], day, day + datetime.timedelta(days=1))
        assert [p.value for p in multi_read.data] == [92]
        partial = await client.write_multi(
            [
                {"t": datetime.datetime(2013, 8, 21), "v": 4.164},
                {"t": day, "id": IDS[1], "v": 3},
                {},
            ]
        )
        assert partial == {
            "error": {
                "multistatus": [
                    {"status": "422", "messages": ["Must provide a series ID or key"]},
                    {"status": "200", "messages": []},
                    {
                        "status": "422",
                        "messages": [
                            "Must provide a numeric value",
                            "Must provide a series ID or key",
                        ],
                    },
                ]
            }
        }
        with pytest.raises(NotFoundError):
            await client.read_key("missing", *DAY)
        with pytest.raises(ValueError, match="regex"):
            await client.write_key("a|b", POINTS)

    run(body)


def test_dataframes(run: Callable[..., Any]) -> None:
    index = pd.date_range("2012-01-01", periods=100, freq="min", tz="Europe/Paris")
    df = pd.DataFrame({"x": range(100), "y": [i / 4 for i in range(100)]}, index=index)

    async def body(client: AsyncClient) -> pd.DataFrame:
        await client.write_dataframe(df)
        return await client.read_dataframe(
            index[0], index[-1] + pd.Timedelta("1min"), interval="raw", tz="Europe/Paris"
        )

    back = run(body)
    assert (back.index == index).all()
    assert back["x"].tolist() == list(range(100))
    assert back["y"].tolist() == [i / 4 for i in range(100)]


def test_batch_writer(run: Callable[..., Any]) -> None:
    async def body(client: AsyncClient) -> tuple[list[Any], BatchWriteError]:
        async with client.batch_writer(batch_size=50, flush_interval=0.05) as writer:
            for i in range(120):
                await writer.add(f"s{i % 3}", DAY[0] + datetime.timedelta(minutes=i), i)
            await writer.add_id(IDS[0], DAY[0], 1.5)
        data = [await client.read_key(f"s{k}", *DAY) for k in range(3)]
        counter = client.batch_writer(increment=True, flush_interval=0.05)
        await counter.add("ok", DAY[0], 1)
        await client.create_series("taken")
        await counter.add_id("taken", DAY[0], 1)  # another series' key: refused by the server
        with pytest.raises(BatchWriteError) as failure:
            await counter.close()
        return data, failure.value

    data, error = run(body)
    assert [len(d.data) for d in data] == [40, 40, 40]
    assert data[1].data[0].value == 1
    assert error.points == [{"t": DAY[0], "id": "taken", "v": 1}]
    assert error.rejected
    assert error.error is None
