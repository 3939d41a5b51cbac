"""Increments that would leave the storable values, and summaries near the float64 limit
(issue 25, item 3), through a real server on each backend and the real client."""

from __future__ import annotations

import base64
import datetime
import http.client
import json
from typing import Any

import pytest

from tempodb import Client, DataPoint
from tempodb.errors import InvalidRequestError

UTC = datetime.UTC
T0 = datetime.datetime(2012, 1, 1, tzinfo=UTC)
T1 = T0 + datetime.timedelta(hours=1)
DAY = (T0, T0 + datetime.timedelta(days=1))


def raw_post(server: Any, credentials: tuple[str, str], path: str, body: Any) -> Any:
    """One POST without the client: the status, the error header and the body."""
    auth = base64.b64encode(f"{credentials[0]}:{credentials[1]}".encode()).decode()
    conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
    try:
        conn.request("POST", path, json.dumps(body), {"Authorization": f"Basic {auth}"})
        reply = conn.getresponse()
        return reply.status, reply.getheader("X-TempoDB-Error"), reply.read().decode()
    finally:
        conn.close()


def values(client: Client, key: str) -> list[Any]:
    return [p.value for p in client.read_key(key, *DAY).data or []]


def test_an_increment_to_infinity_is_refused_and_changes_nothing(
    server: Any, credentials: tuple[str, str], client: Client
) -> None:
    client.increment_key("big", [DataPoint(T0, 1e308)])
    with pytest.raises(InvalidRequestError) as refused:
        client.increment_key("big", [DataPoint(T0, 1e308)])
    assert refused.value.status == 400
    assert "Increment out of range at 2012-01-01T00:00:00.000Z" in refused.value.message
    assert "not a finite number" in refused.value.message
    assert values(client, "big") == [1e308]
    status, code, text = raw_post(
        server, credentials, "/v1/series/key/big/increment/", [{"t": T0.isoformat(), "v": 1e308}]
    )
    assert (status, code) == (400, "invalid-request")
    assert "nothing was written" in text
    # One series of a multi increment out of range: the whole request is refused.
    client.write_key("small", [DataPoint(T0, 1)])
    with pytest.raises(InvalidRequestError, match="Increment out of range"):
        client.increment_multi(
            [{"t": T0, "key": "small", "v": 1}, {"t": T0, "key": "big", "v": 9e307}]
        )
    assert values(client, "small") == [1]
    assert values(client, "big") == [1e308]
    # The same via the bulk route, and a sum beyond the float range in one request.
    with pytest.raises(InvalidRequestError, match="Increment out of range"):
        client.increment_bulk(T1, [{"key": "small", "v": 1}, {"key": "big", "v": 1e308}] * 2)
    assert values(client, "small") == [1]


def test_an_integer_increment_beyond_2_53_is_refused(client: Client) -> None:
    client.increment_key("n", [DataPoint(T0, 2**53 - 1)])
    client.increment_key("n", [DataPoint(T0, 1)])
    assert values(client, "n") == [2**53]
    with pytest.raises(InvalidRequestError, match="integer sum 9007199254740993 is beyond"):
        client.increment_key("n", [DataPoint(T0, 1)])
    [value] = values(client, "n")
    assert (value, type(value)) == (2**53, int)
    client.increment_key("n", [DataPoint(T0, -(2**53))])
    assert values(client, "n") == [0]


def test_summary_and_rollup_near_the_float_limit_agree(client: Client) -> None:
    """The mean of finite values is finite in the summary and the rollup alike; a sum beyond
    the float64 range is null in both, and the per-bucket sums that fit are given."""
    points = [DataPoint(T0, 1e308), DataPoint(T1, 1.5e308)]
    client.write_key("huge", points)
    whole = client.read_key("huge", *DAY)
    assert whole.summary is not None
    assert whole.summary.mean == 1.25e308
    assert whole.summary.sum is None
    assert (whole.summary.max, whole.summary.min, whole.summary.count) == (1.5e308, 1e308, 2)
    daily = client.read_key("huge", *DAY, interval="1day", function="mean")
    assert [p.value for p in daily.data or []] == [1.25e308]
    assert daily.summary is not None
    assert daily.summary.mean == 1.25e308
    daily_sum = client.read_key("huge", *DAY, interval="1day", function="sum")
    assert [p.value for p in daily_sum.data or []] == [None]
    hourly = client.read_key("huge", *DAY, interval="1hour", function="sum")
    assert [p.value for p in hourly.data or []] == [1e308, 1.5e308]
