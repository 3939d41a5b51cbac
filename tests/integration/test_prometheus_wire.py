"""``/api/v1/write`` and ``/api/v1/read`` against the real server process, on the embedded
store and on PostgreSQL (the session ``server`` fixture runs both): requests as Prometheus
sends them, exact answers, and what is stored read back through remote_read and through the
v1 API with the real client.  The comparison with a real Prometheus is
test_prometheus_remote.py."""

from __future__ import annotations

import base64
import math
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import urllib3

from serverproc import ServerProcess, create_key, data_args
from tempodb import Client
from tempodb.server.prometheus import messages
from tempodb.server.prometheus.labels import normalize, series_key

T0 = 1_700_000_000_000
STALE_NAN = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]
HEADERS = {
    "Content-Encoding": "snappy",
    "Content-Type": "application/x-protobuf",
    "User-Agent": "Prometheus/2.42.0",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
}
Series = tuple[dict[str, str], list[tuple[int, float]]]
#: Labels as a dict, or as pairs (which may name a label twice).
Labels = dict[str, str] | list[tuple[str, str]]


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


class Remote:
    """Remote write and read requests to one server with one key."""

    def __init__(self, server: Any, credentials: tuple[str, str] | None) -> None:
        self.url = server.url
        self.credentials = credentials
        self.pool = urllib3.PoolManager()

    def post(self, path: str, body: bytes, **headers: str) -> Answer:
        sent = {**HEADERS, **headers}
        if self.credentials is not None:
            token = base64.b64encode(":".join(self.credentials).encode()).decode()
            sent["Authorization"] = f"Basic {token}"
        answer = self.pool.request("POST", self.url + path, body=body, headers=sent)
        headers = {name.lower(): value for name, value in answer.headers.items()}
        return Answer(answer.status, headers, answer.data)

    def write(self, series: Sequence[tuple[Labels, list[tuple[int, float]]]]) -> Answer:
        request = messages.WriteRequest()
        for labels, samples in series:
            out = request.timeseries.add()
            for name, value in labels.items() if isinstance(labels, dict) else labels:
                out.labels.add(name=name, value=value)
            for ts, value in samples:
                out.samples.add(value=value, timestamp=ts)
        return self.post("/api/v1/write", messages.compress(request.SerializeToString()))

    def read(
        self, *matchers: tuple[int, str, str], start: int = T0 - 10**9, end: int = T0 + 10**9
    ) -> list[Series]:
        request = messages.ReadRequest()
        query = request.queries.add(start_timestamp_ms=start, end_timestamp_ms=end)
        for kind, name, value in matchers:
            query.matchers.add(type=kind, name=name, value=value)
        request.accepted_response_types.extend([messages.STREAMED_XOR_CHUNKS, messages.SAMPLES])
        answer = self.post(
            "/api/v1/read",
            messages.compress(request.SerializeToString()),
            **{"X-Prometheus-Remote-Read-Version": "0.1.0"},
        )
        assert answer.status == 200, answer
        assert answer.headers["content-type"] == "application/x-protobuf"
        assert answer.headers["content-encoding"] == "snappy"
        response = messages.ReadResponse.FromString(messages.decompress(answer.body, 1 << 30))
        assert len(response.results) == 1
        return [
            (
                {label.name: label.value for label in series.labels},
                [(s.timestamp, s.value) for s in series.samples],
            )
            for series in response.results[0].timeseries
        ]


@pytest.fixture
def remote(server: Any, credentials: tuple[str, str]) -> Remote:
    return Remote(server, credentials)


def _sorted(series: list[Series]) -> list[Series]:
    return sorted(series, key=lambda item: sorted(item[0].items()))


def test_write_then_read_back(remote: Remote, client: Client) -> None:
    written: list[Series] = [
        ({"__name__": "http_requests_total", "job": "api", "code": "200"},
         [(T0, 1.0), (T0 + 15_000, 2.5), (T0 + 30_000, 1e-300)]),
        ({"__name__": "http_requests_total", "job": "api", "code": "500"}, [(T0, -0.0)]),
        ({"__name__": "temperature", "room": "a;b {c}é"}, [(T0 - 86_400_000, 21.25)]),
    ]  # fmt: skip
    answer = remote.write(written)
    assert (answer.status, answer.body) == (204, b"")
    got = remote.read((messages.RE, "__name__", ".+"))
    assert _sorted(got) == _sorted(written)
    (negative_zero,) = [points[0][1] for labels, points in got if labels.get("code") == "500"]
    assert math.copysign(1, negative_zero) == -1  # float64 bits kept, sign of zero included
    # The v1 API sees the same series, with the labels as attributes.
    found = client.get_series(attributes={"__name__": "http_requests_total", "code": "200"})
    assert [s.key for s in found] == ["http_requests_total;code:200;job:api"]
    assert found[0].attributes == {"__name__": "http_requests_total", "job": "api", "code": "200"}
    key = series_key(normalize(list(written[2][0].items())))
    data = client.read_key(
        key, datetime(2023, 1, 1, tzinfo=UTC), datetime(2024, 1, 1, tzinfo=UTC), interval="raw"
    )
    assert [(p.ts.timestamp() * 1000, p.value) for p in data.data] == [(T0 - 86_400_000, 21.25)]


def test_matchers(remote: Remote) -> None:
    series: list[Series] = [
        ({"__name__": "m", "job": "a", "env": "prod"}, [(T0, 1.0)]),
        ({"__name__": "m", "job": "b"}, [(T0, 2.0)]),
        ({"__name__": "m", "job": "ab", "env": ""}, [(T0, 3.0)]),  # env="" is no label
        ({"__name__": "n", "job": "a"}, [(T0, 4.0)]),
    ]
    assert remote.write(series).status == 204

    def values(*matchers: tuple[int, str, str]) -> list[float]:
        return sorted(s[1][0][1] for s in remote.read(*matchers))

    eq, neq, re_, nre = messages.EQ, messages.NEQ, messages.RE, messages.NRE
    assert values((eq, "__name__", "m")) == [1, 2, 3]
    assert values((eq, "__name__", "m"), (eq, "env", "")) == [2, 3]
    assert values((eq, "__name__", "m"), (neq, "env", "")) == [1]
    assert values((eq, "__name__", "m"), (neq, "job", "a")) == [2, 3]
    assert values((re_, "job", "a|b")) == [1, 2, 4]
    assert values((re_, "job", "a.*")) == [1, 3, 4]
    assert values((re_, "job", "b")) == [2]  # anchored: "ab" does not match
    assert values((nre, "job", "a.*"), (re_, "__name__", ".+")) == [2]
    assert values((re_, "env", "prod|"), (eq, "__name__", "m")) == [1, 2, 3]
    assert values((eq, "__name__", "nothing")) == []
    # The time range includes both ends.
    assert values((eq, "__name__", "n")) == [4]
    assert remote.read((eq, "__name__", "n"), start=T0, end=T0)[0][1] == [(T0, 4.0)]
    assert remote.read((eq, "__name__", "n"), start=T0 + 1, end=T0 + 5) == []
    bad = messages.ReadRequest()
    bad.queries.add(start_timestamp_ms=0, end_timestamp_ms=1).matchers.add(
        type=re_, name="job", value="("
    )
    answer = remote.post("/api/v1/read", messages.compress(bad.SerializeToString()))
    assert answer.status == 400
    assert b"regular expression" in answer.body


def test_nan_and_staleness_markers_are_dropped(remote: Remote) -> None:
    answer = remote.write(
        [({"__name__": "g"}, [(T0, 1.0), (T0 + 1000, STALE_NAN), (T0 + 2000, math.nan)])]
    )
    assert answer.status == 204
    assert answer.headers["x-tempodb-dropped-nan"] == "2"
    assert remote.read((messages.EQ, "__name__", "g")) == [({"__name__": "g"}, [(T0, 1.0)])]


def test_partly_refused_request_keeps_the_valid_samples(remote: Remote) -> None:
    answer = remote.write(
        [
            ({"__name__": "ok", "a": "1"}, [(T0, 1.0), (T0 + 1, 2.0)]),
            ([("__name__", "ok"), ("a", "2"), ("a", "3")], [(T0, 1.0)]),
            ({"__name__": "ok", "": "x"}, [(T0, 1.0), (T0 + 1, 1.0)]),
            ({"__name__": "ok", "a": "2"}, [(T0, 3.0), (2**62, 4.0)]),
            ({"__name__": "ok.utf8-é", "a:b": "c"}, [(T0, 5.0)]),  # Prometheus 3's names
        ]
    )
    assert answer.status == 400
    text = answer.body.decode()
    assert text.startswith("4 samples refused, 4 stored:"), text
    assert "the label 'a' is given twice (1)" in text
    assert "a label without a name (2)" in text
    assert "years 1-9999 (1)" in text
    got = remote.read((messages.RE, "__name__", "ok.*"))
    assert _sorted(got) == [
        ({"__name__": "ok", "a": "1"}, [(T0, 1.0), (T0 + 1, 2.0)]),
        ({"__name__": "ok", "a": "2"}, [(T0, 3.0)]),
        ({"__name__": "ok.utf8-é", "a:b": "c"}, [(T0, 5.0)]),
    ]


def test_requests_that_can_never_succeed(remote: Remote) -> None:
    request = messages.WriteRequest()
    request.timeseries.add().labels.add(name="__name__", value="x")
    body = request.SerializeToString()
    for sent in (body, b"not snappy at all", messages.compress(b"\xff\xff\xff")):
        answer = remote.post("/api/v1/write", sent)
        assert answer.status == 400, sent
        assert b"snappy" in answer.body or b"not a valid WriteRequest" in answer.body
    # A snappy block that says it inflates to 1 GiB is refused before inflating anything.
    bomb = messages.compress(b"\0" * 1000)
    bomb = bytes([0x80, 0x80, 0x80, 0x80, 0x04]) + bomb[2:]
    assert messages.declared_length(bomb) == 1 << 30
    answer = remote.post("/api/v1/write", bomb)
    assert answer.status == 413
    assert b"more than" in answer.body
    answer = remote.post(
        "/api/v1/write",
        messages.compress(body),
        **{"Content-Type": "application/x-protobuf;proto=io.prometheus.write.v2.Request"},
    )
    assert answer.status == 415
    assert remote.read((messages.RE, "__name__", ".*")) == []


def test_credentials_and_tenants(server: Any, remote: Remote) -> None:
    assert remote.write([({"__name__": "mine"}, [(T0, 1.0)])]).status == 204
    anonymous = Remote(server, None).write([({"__name__": "x"}, [(T0, 1.0)])])
    assert anonymous.status == 401
    assert "www-authenticate" in anonymous.headers
    assert remote.credentials is not None
    wrong = Remote(server, (remote.credentials[0], "wrong")).write([({"__name__": "x"}, [])])
    assert wrong.status == 403
    other = Remote(server, server.new_database("other"))
    assert other.read((messages.RE, "__name__", ".*")) == []
    assert remote.read((messages.RE, "__name__", ".*")) == [({"__name__": "mine"}, [(T0, 1.0)])]


def test_many_series_in_one_request(remote: Remote) -> None:
    series: list[Series] = [
        ({"__name__": "cpu", "host": f"h{i}", "core": str(i % 8)}, [(T0 + i, float(i))])
        for i in range(3000)
    ]
    assert remote.write(series).status == 204
    # Again: existing series, new samples, and a retried request changes nothing.
    again = [(labels, [(T0 + 60_000, 1.0)]) for labels, _ in series]
    assert remote.write(again).status == 204
    assert remote.write(again).status == 204
    got = remote.read((messages.EQ, "__name__", "cpu"), (messages.RE, "core", "3|5"))
    assert len(got) == 750
    assert all(len(points) == 2 and points[1] == (T0 + 60_000, 1.0) for _, points in got)


def test_rate_limit_is_a_503_prometheus_retries(tmp_path: Path) -> None:
    """Prometheus 2.x drops a request answered 429 (unless retry_on_http_429), so on these
    routes the key's rate limit answers 503 with the same Retry-After: it sends it again."""
    store = data_args(tmp_path)
    credentials = create_key(store)
    process = ServerProcess.start(store, "--rate-limit", "1")
    try:
        remote = Remote(process, credentials)
        assert remote.write([({"__name__": "a"}, [(T0, 1.0)])]).status == 204
        answer = remote.write([({"__name__": "b"}, [(T0, 2.0)])])
        assert answer.status == 503
        assert answer.headers["retry-after"] == "1"
        assert answer.headers["x-tempodb-error"] == "rate-limited"
        assert b"retry after 1 s" in answer.body
        time.sleep(1.2)
        # Nothing of the refused request was stored.
        assert remote.read((messages.RE, "__name__", ".+")) == [({"__name__": "a"}, [(T0, 1.0)])]
    finally:
        process.stop()
