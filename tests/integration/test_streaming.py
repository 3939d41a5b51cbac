"""Raw reads of long ranges are streamed (chunked) and read back like any other response."""

from __future__ import annotations

import base64
import datetime
import gzip
import http.client
import json

import numpy as np
import pytest

from tempodb import Client, DataPoint
from tempodb.rollup import summarize

START = datetime.datetime(2012, 1, 1, tzinfo=datetime.UTC)
DAYS = 40


def _get(server: object, credentials: tuple[str, str], path: str, gz: bool) -> tuple[dict, bytes]:
    token = base64.b64encode(":".join(credentials).encode()).decode()
    conn = http.client.HTTPConnection(server.host, server.port, timeout=60)  # type: ignore[attr-defined]
    headers = {"Authorization": f"Basic {token}"}
    if gz:
        headers["Accept-Encoding"] = "gzip"
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    body = response.read()
    conn.close()
    assert response.status == 200
    return {k.lower(): v for k, v in response.getheaders()}, body


@pytest.mark.parametrize("gz", [False, True])
def test_a_long_raw_read_is_streamed(
    client: Client, server: object, credentials: tuple[str, str], gz: bool
) -> None:
    minutes = DAYS * 1440
    values = np.round(np.random.default_rng(3).normal(20, 5, minutes), 2).tolist()
    values[7] = 4  # an integer among floats
    for lo in range(0, minutes, 10_000):
        client.write_key(
            "long",
            [
                DataPoint(START + datetime.timedelta(minutes=i), values[i])
                for i in range(lo, min(minutes, lo + 10_000))
            ],
        )
    end = START + datetime.timedelta(days=DAYS + 1)
    query = f"start={START.isoformat()[:19]}Z&end={end.isoformat()[:19]}Z&interval=raw"
    headers, body = _get(server, credentials, f"/v1/series/key/long/data/?{query}", gz)
    assert "content-length" not in headers
    assert headers.get("transfer-encoding") == "chunked"
    if gz:
        assert headers.get("content-encoding") == "gzip"
        body = gzip.decompress(body)
    dataset = json.loads(body)
    assert list(dataset) == ["series", "start", "end", "data", "rollup", "summary"]
    assert len(dataset["data"]) == minutes
    assert [p["v"] for p in dataset["data"]] == values
    assert dataset["data"][0]["t"] == "2012-01-01T00:00:00.000Z"
    expected = summarize(np.array(values, float), np.array([type(v) is int for v in values]))
    assert dataset["summary"]["count"] == expected["count"]
    for name in ("sum", "mean", "max", "min", "stddev", "ss"):
        assert dataset["summary"][name] == pytest.approx(expected[name], rel=1e-9)
    # The client reads it like any other answer.
    read = client.read_key("long", START, end, interval="raw")
    assert len(read.data) == minutes


def test_a_short_raw_read_is_sent_whole(
    client: Client, server: object, credentials: tuple[str, str]
) -> None:
    client.write_key("short", [DataPoint(START, 1.5)])
    end = START + datetime.timedelta(days=DAYS + 1)
    query = f"start={START.isoformat()[:19]}Z&end={end.isoformat()[:19]}Z&interval=raw"
    headers, body = _get(server, credentials, f"/v1/series/key/short/data/?{query}", False)
    assert headers["content-length"] == str(len(body))
    assert json.loads(body)["data"] == [{"t": "2012-01-01T00:00:00.000Z", "v": 1.5}]
