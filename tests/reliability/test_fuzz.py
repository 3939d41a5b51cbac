"""No request, however malformed, gets a 5xx: random paths, queries and bodies against a
real server."""

from __future__ import annotations

import base64
import datetime
import http.client
import json
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tempodb import DataPoint

SEGMENTS = st.sampled_from(
    [
        "series",
        "id",
        "key",
        "data",
        "increment",
        "single",
        "multi",
        "database",
        "x",
        "",
        "%2F",
        "a%20b",
        "..",
        "%",
        "%zz",
        "k+e+y",
        "ключ",
        "v1",
    ]
)
PARAM_NAMES = st.sampled_from(
    [
        "start",
        "end",
        "ts",
        "interval",
        "function",
        "tz",
        "direction",
        "id",
        "key",
        "tag",
        "attr[a]",
        "attr%5Bb%5D",
        "attr[]",
        "allow_truncation",
        "x",
    ]
)
PARAM_VALUES = st.one_of(
    st.sampled_from(
        [
            "2012-01-01",
            "2012-01-01T00:00:00Z",
            "2012-02-30",
            "1hour",
            "raw",
            "0min",
            "99999999999year",
            "P1Y2M",
            "PT0S",
            "max",
            "ss",
            "America/Chicago",
            "Mars/Base",
            "+25:00",
            "true",
            "nearest",
            "",
            "%",
            "\x00",
        ]
    ),
    st.text(max_size=12),
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(
            st.sampled_from(["t", "v", "id", "key", "data", "name", "tags", "attributes", "x"]),
            children,
            max_size=5,
        )
    ),
    max_leaves=20,
)
BODIES = st.one_of(
    st.none(),
    JSON.map(lambda value: json.dumps(value).encode()),
    st.binary(max_size=64),
    st.just(b'[{"t":"2012-01-01","v":1},]'),
)


@pytest.fixture(scope="module")
def fuzz_credentials(server: Any) -> tuple[str, str]:
    """A database with a series ``k`` holding a day of points, so that reads get far."""
    credentials = server.new_database("fuzz")
    with server.client(*credentials) as client:
        start = datetime.datetime(2012, 1, 1)
        client.write_key(
            "k", [DataPoint(start + datetime.timedelta(minutes=i), i) for i in range(1440)]
        )
    return credentials


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]),
    segments=st.lists(SEGMENTS, min_size=0, max_size=5),
    params=st.lists(st.tuples(PARAM_NAMES, PARAM_VALUES), max_size=6),
    body=BODIES,
)
def test_no_server_errors(
    server: Any,
    fuzz_credentials: tuple[str, str],
    method: str,
    segments: list[str],
    params: list[tuple[str, str]],
    body: bytes | None,
) -> None:
    path = "/v1/" + "/".join(quote(segment, safe="%+") for segment in segments)
    query = "&".join(f"{name}={quote(value, safe='')}" for name, value in params)
    token = base64.b64encode(":".join(fuzz_credentials).encode()).decode()
    conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
    conn.request(method, f"{path}?{query}", body=body, headers={"Authorization": f"Basic {token}"})
    response = conn.getresponse()
    text = response.read()
    conn.close()
    assert response.status < 500, (method, path, query, body, text)
    if response.status >= 400:
        assert response.getheader("Content-Type", "").startswith("text/plain")
        assert text.strip()
