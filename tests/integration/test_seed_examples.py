"""Every code example of the original client documentation, run as written against a real
server (only host, port and secure are added to the Client call), with its outcome checked."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from tempodb import Client, DataPoint, DataSet, DeleteSummary, Series

UTC = datetime.UTC


@pytest.fixture
def run(server: Any, credentials: tuple[str, str]) -> Any:
    """Execute a documentation example; its namespace is returned for the checks."""
    key, secret = credentials

    def run_example(code: str) -> dict[str, Any]:
        code = code.replace(
            'Client("api-key", "api-secret")',
            f'Client("{key}", "{secret}", host="{server.host}", port={server.port}, secure=False)',
        )
        namespace: dict[str, Any] = {}
        exec(compile(code, "<seed example>", "exec"), namespace)
        return namespace

    return run_example


def test_create_series(run: Any, client: Client) -> None:
    ns = run(
        """
from tempodb import Client
client = Client("api-key", "api-secret")
series1 = client.create_series('my-custom-key')
series2 = client.create_series()
"""
    )
    assert ns["series1"].key == "my-custom-key"
    assert len(ns["series1"].id) == 32
    assert ns["series2"].key == ns["series2"].id
    assert {s.key for s in client.get_series()} == {"my-custom-key", ns["series2"].key}


def test_get_series(run: Any, client: Client) -> None:
    for key, tags, attrs in [
        ("a", ["tag1", "tag2"], {"attr1": "value1"}),
        ("b", ["tag1"], {"attr1": "value1"}),
        ("c", ["tag1", "tag2", "tag3"], {"attr1": "value1", "attr2": "x"}),
        ("d", ["tag1", "tag2"], {"attr1": "other"}),
    ]:
        series = client.create_series(key)
        series.tags, series.attributes = tags, attrs
        client.update_series(series)
    ns = run(
        """
from tempodb import Client
client = Client("api-key", "api-secret")
tags = ["tag1", "tag2"]
attributes = {
"attr1": "value1"
}
series_list = client.get_series(tags=tags, attributes=attributes)
"""
    )
    assert [s.key for s in ns["series_list"]] == ["a", "c"]
    assert all(isinstance(s, Series) for s in ns["series_list"])


def test_update_series(run: Any, client: Client) -> None:
    created = client.create_series("test1")
    created.tags = ["old"]
    client.update_series(created)
    run(
        """
from tempodb import Client
client = Client("api-key", "api-secret")
keys = ["test1"]
series_list = client.get_series(keys=keys)
if series_list:
    series = series_list[0]
    series.tags = ["tag3"]
    client.update_series(series)
"""
    )
    (series,) = client.get_series(keys=["test1"])
    assert series.tags == ["tag3"]
    assert series.id == created.id


def test_delete_series(run: Any, client: Client) -> None:
    for key, tags in [("x", ["tag1", "tag2"]), ("y", ["tag1"]), ("z", ["tag1", "tag2"])]:
        series = client.create_series(key)
        series.tags, series.attributes = tags, {"attr1": "value1"}
        client.update_series(series)
    ns = run(
        """
from tempodb import Client
client = Client("api-key", "api-secret")
tags = ["tag1", "tag2"]
attributes = {
"attr1": "value1"
}
summary = client.delete_series(tags=tags, attributes=attributes)
"""
    )
    assert isinstance(ns["summary"], DeleteSummary)
    assert ns["summary"].deleted == 2
    assert [s.key for s in client.get_series()] == ["y"]


def _minutes(day: datetime.datetime, count: int, value: Any) -> list[DataPoint]:
    return [DataPoint(day + datetime.timedelta(minutes=i), value(i)) for i in range(count)]


def test_read_multi_series_hourly_max(run: Any, client: Client) -> None:
    client.write_key("my-custom-key", _minutes(datetime.datetime(2012, 1, 1), 1440, lambda i: i))
    client.write_key("other", _minutes(datetime.datetime(2012, 1, 1), 10, lambda i: 1))
    ns = run(
        """
import datetime
from tempodb import Client
client = Client("api-key", "api-secret")
start = datetime.datetime(2012, 1, 1)
end = datetime.datetime(2012, 1, 2)
keys = ["my-custom-key",]
data = client.read(start, end, keys=keys, interval="1hour", function="max")
"""
    )
    (dataset,) = ns["data"]
    assert isinstance(dataset, DataSet)
    assert dataset.series.key == "my-custom-key"
    assert len(dataset.data) == 24
    assert dataset.data[0] == DataPoint(datetime.datetime(2012, 1, 1, tzinfo=UTC), 59)
    assert dataset.data[23].value == 1439
    assert dataset.start == datetime.datetime(2012, 1, 1, tzinfo=UTC)
    assert dataset.summary is not None
    assert dataset.summary.count == 1440


def test_read_id_daily_min(run: Any, client: Client) -> None:
    points = [
        DataPoint(datetime.datetime(2012, 1, 1 + d, h), 100 - d * 3 - h)
        for d in range(31)
        for h in (0, 12)
    ]
    client.write_id("38268c3b231f1266a392931e15e99231", points)
    ns = run(
        """
import datetime
from tempodb import Client
client = Client("api-key", "api-secret")
start = datetime.datetime(2012, 1, 1)
end = datetime.datetime(2012, 2, 1)
data = client.read_id("38268c3b231f1266a392931e15e99231", start, end, interval="1day", function="min")
"""
    )
    data = ns["data"]
    assert data.series.id == "38268c3b231f1266a392931e15e99231"
    assert [p.value for p in data.data] == [100 - d * 3 - 12 for d in range(31)]
    assert data.data[5].ts == datetime.datetime(2012, 1, 6, tzinfo=UTC)


def test_read_key_daily_min(run: Any, client: Client) -> None:
    client.write_key(
        "my-custom-key",
        [
            DataPoint(datetime.datetime(2012, 1, 3, 5), 7.5),
            DataPoint(datetime.datetime(2012, 1, 3, 6), 2.5),
        ],
    )
    ns = run(
        """
import datetime
from tempodb import Client
client = Client("api-key", "api-secret")
start = datetime.datetime(2012, 1, 1)
end = datetime.datetime(2012, 2, 1)
data = client.read_key("my-custom-key", start, end, interval="1day", function="min")
"""
    )
    assert ns["data"].data == [DataPoint(datetime.datetime(2012, 1, 3, tzinfo=UTC), 2.5)]


WRITE_POINTS = [
    DataPoint(datetime.datetime(2012, 1, 1, 1, 0, 0, tzinfo=UTC), 12.34),
    DataPoint(datetime.datetime(2012, 1, 1, 1, 1, 0, tzinfo=UTC), 1.874),
    DataPoint(datetime.datetime(2012, 1, 1, 1, 2, 0, tzinfo=UTC), 21.52),
]
DAY = (datetime.datetime(2012, 1, 1), datetime.datetime(2012, 1, 2))


def test_write_id(run: Any, client: Client) -> None:
    client.create_series("first")
    run(
        """
from datetime import datetime
from tempodb import Client, DataPoint
client = Client("api-key", "api-secret")
data = [
DataPoint(datetime(2012, 1, 1, 1, 0, 0), 12.34),
DataPoint(datetime(2012, 1, 1, 1, 1, 0), 1.874),
DataPoint(datetime(2012, 1, 1, 1, 2, 0), 21.52),
]
client.write_id("38268c3b231f1266a392931e15e99231", data)
"""
    )
    assert client.read_id("38268c3b231f1266a392931e15e99231", *DAY).data == WRITE_POINTS


def test_write_key(run: Any, client: Client) -> None:
    run(
        """
from datetime import datetime
from tempodb import Client, DataPoint
client = Client("api-key", "api-secret")
data = [
DataPoint(datetime(2012, 1, 1, 1, 0, 0), 12.34),
DataPoint(datetime(2012, 1, 1, 1, 1, 0), 1.874),
DataPoint(datetime(2012, 1, 1, 1, 2, 0), 21.52),
]
client.write_key("my-custom-key", data)
"""
    )
    dataset = client.read_key("my-custom-key", *DAY)
    assert dataset.data == WRITE_POINTS
    assert dataset.summary is not None
    assert dataset.summary.count == 3
    assert dataset.summary.sum == pytest.approx(35.734)


BULK_IDS = ["01868c1a2aaf416ea6cd8edd65e7a4b8", "38268c3b231f1266a392931e15e99231"]


def _value_at(client: Client, field: str, name: str, ts: datetime.datetime) -> Any:
    read = client.read_id if field == "id" else client.read_key
    data = read(name, ts, ts + datetime.timedelta(minutes=1)).data
    assert len(data) == 1, data
    return data[0].value


def test_write_bulk(run: Any, client: Client) -> None:
    run(
        """
import datetime
from tempodb import Client
client = Client("api-key", "api-secret")
ts = datetime.datetime(2012, 1, 8, 1, 21)
data = [
{ 'id': '01868c1a2aaf416ea6cd8edd65e7a4b8', 'v': 4.164 },
{ 'id': '38268c3b231f1266a392931e15e99231', 'v': 73.13 },
{ 'key': 'your-custom-key', 'v': 55.423 },
{ 'key': 'foo', 'v': 324.991 },
]
client.write_bulk(ts, data)
"""
    )
    ts = datetime.datetime(2012, 1, 8, 1, 21)
    assert _value_at(client, "id", BULK_IDS[0], ts) == 4.164
    assert _value_at(client, "id", BULK_IDS[1], ts) == 73.13
    assert _value_at(client, "key", "your-custom-key", ts) == 55.423
    assert _value_at(client, "key", "foo", ts) == 324.991


MULTI_EXAMPLE = """
import datetime
from tempodb import Client
client = Client("api-key", "api-secret")
data = [
{ 't': datetime.datetime(2013, 8, 21), 'id': '01868c1a2aaf416ea6cd8edd65e7a4b8', 'v': %s },
{ 't': datetime.datetime(2013, 8, 22), 'id': '38268c3b231f1266a392931e15e99231', 'v': %s },
{ 't': datetime.datetime(2013, 8, 23), 'key': 'your-custom-key', 'v': %s },
{ 't': datetime.datetime(2013, 8, 24), 'key': 'foo', 'v': %s },
]
result = client.%s(data)
"""


def _check_multi(client: Client, values: list[Any]) -> None:
    assert _value_at(client, "id", BULK_IDS[0], datetime.datetime(2013, 8, 21)) == values[0]
    assert _value_at(client, "id", BULK_IDS[1], datetime.datetime(2013, 8, 22)) == values[1]
    assert _value_at(client, "key", "your-custom-key", datetime.datetime(2013, 8, 23)) == values[2]
    assert _value_at(client, "key", "foo", datetime.datetime(2013, 8, 24)) == values[3]


def test_write_multi(run: Any, client: Client) -> None:
    ns = run(MULTI_EXAMPLE % (4.164, 73.13, 55.423, 324.991, "write_multi"))
    assert not ns["result"]
    _check_multi(client, [4.164, 73.13, 55.423, 324.991])


MULTISTATUS = {
    "error": {
        "multistatus": [
            {"status": "422", "messages": ["Must provide a series ID or key"]},
            {"status": "200", "messages": []},
            {
                "status": "422",
                "messages": ["Must provide a numeric value", "Must provide a series ID or key"],
            },
        ]
    }
}


def test_write_multi_partial_failure_returns_multistatus(client: Client) -> None:
    data: list[dict[str, Any]] = [
        {"t": datetime.datetime(2013, 8, 21), "v": 4.164},
        {"t": datetime.datetime(2013, 8, 22), "id": "38268c3b231f1266a392931e15e99231", "v": 134.3},
        {},
    ]
    assert client.write_multi(data) == MULTISTATUS
    # the valid element was written
    assert _value_at(client, "id", BULK_IDS[1], datetime.datetime(2013, 8, 22)) == 134.3


def test_increment_multi_partial_failure_returns_multistatus(client: Client) -> None:
    data: list[dict[str, Any]] = [
        {"t": datetime.datetime(2013, 8, 21), "v": 4},
        {"t": datetime.datetime(2013, 8, 22), "id": "38268c3b231f1266a392931e15e99231"},
        {},
    ]
    result = client.increment_multi(data)
    assert result is not None
    statuses = [entry["status"] for entry in result["error"]["multistatus"]]
    assert statuses == ["422", "422", "422"]
    assert result["error"]["multistatus"][1]["messages"] == ["Must provide a numeric value"]


def test_increment_id(run: Any, client: Client) -> None:
    code = """
from datetime import datetime
from tempodb import Client, DataPoint
client = Client("api-key", "api-secret")
data = [
DataPoint(datetime(2012, 1, 1, 1, 0, 0), 1),
DataPoint(datetime(2012, 1, 1, 1, 1, 0), 2),
DataPoint(datetime(2012, 1, 1, 1, 2, 0), 1),
]
client.increment_id("38268c3b231f1266a392931e15e99231", data)
"""
    run(code)
    run(code)
    values = [p.value for p in client.read_id(BULK_IDS[1], *DAY).data]
    assert values == [2, 4, 2]
    assert all(isinstance(v, int) for v in values)


def test_increment_key(run: Any, client: Client) -> None:
    code = """
from datetime import datetime
from tempodb import Client, DataPoint
client = Client("api-key", "api-secret")
data = [
DataPoint(datetime(2012, 1, 1, 1, 0, 0), 12.34),
DataPoint(datetime(2012, 1, 1, 1, 1, 0), 1.874),
DataPoint(datetime(2012, 1, 1, 1, 2, 0), 21.52),
]
client.increment_key("my-custom-key", data)
"""
    run(code)
    run(code)
    values = [p.value for p in client.read_key("my-custom-key", *DAY).data]
    assert values == pytest.approx([24.68, 3.748, 43.04])


def test_increment_bulk(run: Any, client: Client) -> None:
    code = """
import datetime
from tempodb import Client
client = Client("api-key", "api-secret")
ts = datetime.datetime(2012, 1, 8, 1, 21)
data = [
{ 'id': '01868c1a2aaf416ea6cd8edd65e7a4b8', 'v': 4 },
{ 'id': '38268c3b231f1266a392931e15e99231', 'v': 2 },
{ 'key': 'your-custom-key', 'v': 1 },
{ 'key': 'foo', 'v': 1 },
]
client.increment_bulk(ts, data)
"""
    run(code)
    run(code)
    ts = datetime.datetime(2012, 1, 8, 1, 21)
    assert _value_at(client, "id", BULK_IDS[0], ts) == 8
    assert _value_at(client, "id", BULK_IDS[1], ts) == 4
    assert _value_at(client, "key", "your-custom-key", ts) == 2
    assert _value_at(client, "key", "foo", ts) == 2


def test_increment_multi(run: Any, client: Client) -> None:
    run(MULTI_EXAMPLE % (46, 7, 55, 1, "increment_multi"))
    ns = run(MULTI_EXAMPLE % (46, 7, 55, 1, "increment_multi"))
    assert not ns["result"]
    _check_multi(client, [92, 14, 110, 2])


DELETE_EXAMPLE = """
import datetime
from tempodb import Client
client = Client("api-key", "api-secret")
start = datetime.datetime(2012, 1, 1)
end = datetime.datetime(2012, 2, 1)
response = client.%s
"""


def _month_and_after(day_count: int = 33) -> list[DataPoint]:
    return [
        DataPoint(datetime.datetime(2011, 12, 31) + datetime.timedelta(days=d), d)
        for d in range(day_count)
    ]


def test_delete_id(run: Any, client: Client) -> None:
    client.write_id(BULK_IDS[1], _month_and_after())
    run(DELETE_EXAMPLE % 'delete_id("38268c3b231f1266a392931e15e99231", start, end)')
    left = client.read_id(
        BULK_IDS[1], datetime.datetime(2011, 1, 1), datetime.datetime(2013, 1, 1), interval="raw"
    )
    assert [p.ts.date() for p in left.data] == [
        datetime.date(2011, 12, 31),
        datetime.date(2012, 2, 1),
    ]


def test_delete_key(run: Any, client: Client) -> None:
    client.write_key("my-custom-key", _month_and_after())
    ns = run(DELETE_EXAMPLE % 'delete_key("my-custom-key", start, end)')
    assert not ns["response"]
    left = client.read_key(
        "my-custom-key",
        datetime.datetime(2011, 1, 1),
        datetime.datetime(2013, 1, 1),
        interval="raw",
    )
    assert len(left.data) == 2
