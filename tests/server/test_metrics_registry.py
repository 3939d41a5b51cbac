"""The server's metrics (``prometheus_client``, a registry per app): the text format (checked
with Prometheus' own parser), histogram buckets, label escaping, and route labels that carry
no path data."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from tempodb.server.metrics import ROUTE_KEY, ServerMetrics
from tempodb.server.routes import route_label
from tempodb.storage.sqlite import SQLiteStore


def parse(text: bytes) -> dict[str, list[tuple[str, dict[str, str], float]]]:
    """Family name -> [(sample name, labels, value)], by the reference parser."""
    return {
        family.name: [(s.name, dict(s.labels), s.value) for s in family.samples]
        for family in text_string_to_metric_families(text.decode())
    }


class BrokenStore:
    """A store whose queue cannot be read (closed, say)."""

    def queue_depth(self) -> int:
        raise RuntimeError("closed")


@pytest.fixture
def metrics(tmp_path: Path) -> Iterator[ServerMetrics]:
    store = SQLiteStore(tmp_path)
    try:
        yield ServerMetrics(store)
    finally:
        store.close()


def scope(label: str, method: str = "GET") -> dict[str, Any]:
    return {"method": method, ROUTE_KEY: label}


def test_server_metrics_render_in_the_text_format(metrics: ServerMetrics) -> None:
    metrics.record(scope("/a"), 200, "", 0.05)
    metrics.record(scope("/a"), 201, "", 0.1)
    metrics.record(scope("/a"), 404, "not-found", 3.0)
    metrics.record(scope("/b", "BREW"), 500, "<b>bad</b>", 0.5)
    metrics.written("write", 7)
    metrics.read(3)
    response = metrics.response()
    assert response.content_type == b"text/plain; version=0.0.4; charset=utf-8"
    assert response.body.startswith(b"# HELP tempodb_http_requests_total ")
    families = parse(response.body)
    requests = {
        (labels["route"], labels["method"], labels["status"]): value
        for name, labels, value in families["tempodb_http_requests"]
        if name == "tempodb_http_requests_total"
    }
    assert requests == {("/a", "GET", "2xx"): 2, ("/a", "GET", "4xx"): 1, ("/b", "other", "5xx"): 1}
    buckets = {
        labels["le"]: value
        for name, labels, value in families["tempodb_http_request_duration_seconds"]
        if name.endswith("_bucket") and labels["route"] == "/a"
    }
    assert buckets["0.05"] == 1
    assert buckets["0.1"] == 2  # 0.1 is in its bucket
    assert buckets["10"] == 3
    assert buckets["+Inf"] == 3
    errors = {
        (labels["route"], labels["code"]): value
        for name, labels, value in families["tempodb_http_errors"]
        if name == "tempodb_http_errors_total"
    }
    assert errors == {("/a", "not-found"): 1, ("/b", "500"): 1}  # codes not ours: the status
    written = {
        labels["op"]: value
        for name, labels, value in families["tempodb_points_written"]
        if name == "tempodb_points_written_total"
    }
    assert written == {"write": 7, "increment": 0}
    assert ("tempodb_points_read_total", {}, 3.0) in families["tempodb_points_read"]
    assert families["tempodb_store_queue_depth"] == [("tempodb_store_queue_depth", {}, 0.0)]


def test_each_app_counts_apart(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path) as store:
        one, two = ServerMetrics(store), ServerMetrics(store)
        one.read(5)
        [read] = [
            v
            for n, _, v in parse(two.response().body)["tempodb_points_read"]
            if n.endswith("_total")
        ]
        assert read == 0


@given(st.text(max_size=20))
def test_any_label_value_survives_escaping(value: str) -> None:
    metrics = ServerMetrics(BrokenStore())  # type: ignore[arg-type]
    metrics.record(scope(value), 200, "", 0.01)
    [labels] = [
        labels
        for name, labels, _ in parse(metrics.response().body)["tempodb_http_requests"]
        if name == "tempodb_http_requests_total"
    ]
    assert labels["route"] == value


def test_a_failing_gauge_reads_nan() -> None:
    metrics = ServerMetrics(BrokenStore())  # type: ignore[arg-type]
    [(_, _, value)] = parse(metrics.response().body)["tempodb_store_queue_depth"]
    assert math.isnan(value)


def test_counters_are_exact_under_threads(metrics: ServerMetrics) -> None:
    def work() -> None:
        for _ in range(5000):
            metrics.written("write", 1)
            metrics.record(scope("/a"), 200, "", 0.001)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    families = parse(metrics.response().body)
    assert ("tempodb_points_written_total", {"op": "write"}, 20000.0) in families[
        "tempodb_points_written"
    ]
    counts = [
        v for n, _, v in families["tempodb_http_request_duration_seconds"] if n.endswith("_count")
    ]
    assert counts == [20000.0]


@pytest.mark.parametrize(
    ("path", "label"),
    [
        (b"/v1/series/key/secret-series-name/data/", "/v1/series/{field}/{value}/data"),
        (b"/v1/series/id/0123abcd", "/v1/series/{field}/{value}"),
        (b"/v1/series/", "/v1/series"),
        (b"/v1/data", "/v1/data"),
        (b"/v1/multi/increment/", "/v1/multi/increment"),
        (b"/v1/openapi.json", "/v1/openapi.json"),
        (b"/v1/nothing-here", "unmatched"),
        (b"/v1/series/name/x/data", "unmatched"),
        (b"/somebody-s-key", "unmatched"),
        (b"/healthz", "/healthz"),
        (b"/metrics", "/metrics"),
        (b"/ui", "/ui"),
        (b"/ui/vendor/uPlot.iife.min.js", "/ui"),
    ],
)
def test_route_labels_are_patterns(path: bytes, label: str) -> None:
    assert route_label(path) == label


def test_sqlite_queue_depth_counts_waiting_writes(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path)
    try:
        assert store.queue_depth() == 0
        busy, release = threading.Event(), threading.Event()

        def block(conn: object) -> None:
            busy.set()
            release.wait(10)

        writer = store._writer
        first = threading.Thread(target=writer.call, args=(block,))
        first.start()
        assert busy.wait(10)
        waiting = [threading.Thread(target=writer.call, args=(lambda c: None,)) for _ in range(3)]
        for thread in waiting:
            thread.start()
        for _ in range(1000):
            if store.queue_depth() == 3:
                break
            threading.Event().wait(0.005)
        assert store.queue_depth() == 3
        release.set()
        for thread in [first, *waiting]:
            thread.join(10)
        assert store.queue_depth() == 0
    finally:
        store.close()
