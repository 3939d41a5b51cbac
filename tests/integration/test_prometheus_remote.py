"""tempodb as Prometheus' long-term storage, checked with the real Prometheus 2.42.

One Prometheus (``source``) scrapes our server's ``/metrics`` and itself every second and
remote_writes everything to our server; a second one (``reader``), with no scrape jobs and no
data of its own, reads through remote_read.  Over a range both have fully, every PromQL query
of ``QUERIES`` answers exactly the same on both (the same series, times and values, compared
as Prometheus prints them), and so does a raw read of every sample.  The one difference is
documented: a NaN sample is not stored (docs/prometheus.md), so raw samples are compared
without the NaNs that ``source`` holds, and the queries avoid series that hold NaNs.

The second test kills our server (SIGKILL) in the middle of the stream and starts it again
on the same data and port: Prometheus retries, and every sample it counts as sent is stored.
The tests fail (never skip) when Prometheus cannot be installed (tests/promproc.py).
"""

from __future__ import annotations

import base64
import math
import signal
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from promproc import Prometheus, free_port
from serverproc import ServerProcess, create_key, data_args
from tempodb.server.prometheus import messages

#: The queries compared; each must have results on the range (checked).
QUERIES = [
    "rate(prometheus_http_requests_total[5s])",
    "increase(tempodb_http_requests_total[10s])",
    'sum by (job) (rate(scrape_samples_scraped{job=~".+"}[5s]))',
    "sum by (route) (increase(tempodb_http_request_duration_seconds_count[10s]))",
    "histogram_quantile(0.9, sum by (le) (rate(tempodb_http_request_duration_seconds_bucket[9s])))",
    "histogram_quantile(0.5, rate(prometheus_http_request_duration_seconds_bucket[10s]))",
    "avg_over_time(go_goroutines[5s])",
    "max_over_time(scrape_duration_seconds[4s])",
    'up{job="tempodb"}',
    '{__name__="up", job!="nothing"}',
    '{__name__=~"tempodb_http_requests_total|up", job=~"tempo.*"}',
    '{__name__=~"tempodb_uptime_seconds|go_goroutines", job!~"prom.*"}',
    '{__name__="up", no_such_label=""}',
    'tempodb_points_written_total{op!=""}',
    'count by (__name__) ({job="tempodb"})',
]

SOURCE_CONFIG = """
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: tempodb
    static_configs: [{targets: ["127.0.0.1:%(tempodb_port)d"]}]
  - job_name: prometheus
    static_configs: [{targets: ["127.0.0.1:{port}"]}]
remote_write:
  - url: http://127.0.0.1:%(tempodb_port)d/api/v1/write
    basic_auth: {username: "%(key)s", password: "%(secret)s"}
    queue_config:
      batch_send_deadline: 1s
      min_shards: 1
      max_shards: 1
      min_backoff: 50ms
      max_backoff: 1s
"""

READER_CONFIG = """
global:
  scrape_interval: 1s
remote_read:
  - url: http://127.0.0.1:%(tempodb_port)d/api/v1/read
    basic_auth: {username: "%(key)s", password: "%(secret)s"}
    read_recent: true
"""

SENT = "prometheus_remote_storage_queue_highest_sent_timestamp_seconds"


def settings(server: ServerProcess, key: str, secret: str) -> dict[str, Any]:
    return {"tempodb_port": server.port, "key": key, "secret": secret}


def wait_sent(source: Prometheus, until: float, timeout: float = 30.0) -> None:
    """Wait until ``source`` has sent every sample up to ``until`` (epoch seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        sent = source.scalar(f"max({SENT})")
        if sent is not None and sent >= until:
            return
        assert time.monotonic() < deadline, f"Prometheus sent up to {sent}, not {until}"
        time.sleep(0.5)


def canonical(data: dict[str, Any]) -> list[tuple[tuple[tuple[str, str], ...], Any]]:
    """A query's results, sorted by series, as comparable values."""
    rows = []
    for item in data["result"]:
        labels = tuple(sorted(item["metric"].items()))
        rows.append((labels, item.get("values", item.get("value"))))
    return sorted(rows, key=lambda row: row[0])


def has_nan(data: dict[str, Any]) -> bool:
    for item in data["result"]:
        values = item.get("values") or [item.get("value")]
        if any(v is not None and v[1] == "NaN" for v in values):
            return True
    return False


def raw_samples(prometheus: Prometheus, selector: str, end: int, span: int) -> dict[Any, Any]:
    """Every raw sample of ``selector`` in ``(end - span, end]``, NaNs left out:
    ``{labels: [(epoch ms, value), ...]}`` (Prometheus prints the shortest decimal that reads
    back as the same float64, so ``float`` gives the stored value exactly)."""
    data = prometheus.query(f"{selector}[{span}s]", end)
    assert data["resultType"] == "matrix"
    out: dict[Any, Any] = {}
    for item in data["result"]:
        points = [(round(t * 1000), float(v)) for t, v in item["values"] if v != "NaN"]
        if points:
            out[tuple(sorted(item["metric"].items()))] = points
    return out


@dataclass
class Stream:
    server: ServerProcess
    key: str
    secret: str
    source: Prometheus
    started: float


@pytest.fixture
def stream(tmp_path: Path) -> Iterator[Stream]:
    """Our server, and a Prometheus scraping it and itself and remote-writing to it."""
    store = data_args(tmp_path / "tempodb")
    key, secret = create_key(store)
    server = ServerProcess.start(store, "--port", str(free_port()), log=tmp_path / "tempodb.log")
    started = time.time()
    source = Prometheus.start(tmp_path / "source", SOURCE_CONFIG % settings(server, key, secret))
    running = Stream(server, key, secret, source, started)
    try:
        yield running
    finally:
        source.stop()
        running.server.stop()  # the server of the end: a test may have restarted it


def test_reader_answers_as_the_source(stream: Stream, tmp_path: Path) -> None:
    source = stream.source
    reader = Prometheus.start(
        tmp_path / "reader", READER_CONFIG % settings(stream.server, stream.key, stream.secret)
    )
    try:
        start = math.ceil(stream.started) + 8
        time.sleep(max(0.0, start + 16 - time.time()))
        end = math.floor(time.time()) - 2
        wait_sent(source, end + 3)
        for promql in QUERIES:
            expected = source.query_range(promql, start, end, 1)
            assert expected["result"], f"no data for {promql}: the comparison proves nothing"
            assert not has_nan(expected) or "histogram_quantile" in promql, promql
            got = reader.query_range(promql, start, end, 1)
            assert canonical(got) == canonical(expected), promql
            at = end - 1
            assert canonical(reader.query(promql, at)) == canonical(source.query(promql, at))
        # Every raw sample of the range, of every series (NaNs aside: not stored).
        span = end - start
        expected_raw = raw_samples(source, '{__name__=~".+"}', end, span)
        got_raw = raw_samples(reader, '{__name__=~".+"}', end, span)
        assert len(expected_raw) > 100
        assert got_raw.keys() == expected_raw.keys()
        for labels, points in expected_raw.items():
            assert got_raw[labels] == points, labels
        # The reader really read through remote_read (it scrapes nothing of its own).
        assert reader.scalar('count({job="tempodb"})', end) == source.scalar(
            'count({job="tempodb"})', end
        )
    finally:
        reader.stop()


def test_remote_write_survives_a_killed_server(stream: Stream, tmp_path: Path) -> None:
    """SIGKILL our server mid-stream, start it again on the same data and port: every
    sample Prometheus sent (retrying while the server was down) is stored."""
    source, server = stream.source, stream.server
    time.sleep(max(0.0, stream.started + 7 - time.time()))
    server.process.send_signal(signal.SIGKILL)
    server.process.wait()
    killed = time.time()
    time.sleep(4)
    restarted = ServerProcess.start(
        data_args(tmp_path / "tempodb"),
        "--port",
        str(server.port),
        log=tmp_path / "tempodb.log",
    )
    stream.server = restarted
    back = time.time()
    time.sleep(6)
    end = math.floor(time.time()) - 2
    wait_sent(source, end + 3)
    span = end - math.floor(stream.started)
    expected = raw_samples(source, '{__name__=~".+"}', end, span)
    stored = read_back(restarted, stream.key, stream.secret, end - span, end)
    # The source's samples (NaNs aside) and ours are the same, sample for sample.
    missing = {}
    for labels, points in expected.items():
        have = set(stored.get(labels, []))
        lost = [p for p in points if p not in have]
        if lost:
            missing[labels] = lost
    assert not missing, f"{len(missing)} series miss samples: {list(missing.items())[:3]}"
    extra = {labels for labels in stored if labels not in expected}
    assert not extra, f"series stored that Prometheus does not have: {sorted(extra)[:3]}"
    assert stored == expected  # nothing more either
    # Prometheus' own samples taken while our server was down were sent after it came back.
    down = [
        t
        for labels, points in expected.items()
        if ("job", "prometheus") in labels
        for t, _ in points
        if killed + 0.5 < t / 1000 < back - 0.5
    ]
    assert down, "no sample was taken while the server was down"


def read_back(server: ServerProcess, key: str, secret: str, start: int, end: int) -> dict[Any, Any]:
    """Every sample our server holds in ``(start, end]`` (epoch s), read with remote_read,
    in the shape of ``raw_samples``."""
    request = messages.ReadRequest()
    query = request.queries.add(start_timestamp_ms=start * 1000 + 1, end_timestamp_ms=end * 1000)
    query.matchers.add(type=messages.RE, name="__name__", value=".+")
    token = base64.b64encode(f"{key}:{secret}".encode()).decode()
    sent = urllib.request.Request(
        f"{server.url}/api/v1/read",
        data=messages.compress(request.SerializeToString()),
        headers={
            "Authorization": f"Basic {token}",
            "Content-Encoding": "snappy",
            "Content-Type": "application/x-protobuf",
            "X-Prometheus-Remote-Read-Version": "0.1.0",
        },
        method="POST",
    )
    with urllib.request.urlopen(sent, timeout=60) as answer:
        body = answer.read()
    response = messages.ReadResponse.FromString(messages.decompress(body, 1 << 30))
    out: dict[Any, Any] = {}
    for series in response.results[0].timeseries:
        labels = tuple(sorted((label.name, label.value) for label in series.labels))
        out[labels] = [(s.timestamp, s.value) for s in series.samples]
    return out
