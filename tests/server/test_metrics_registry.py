"""The metrics registry: the text format (checked with Prometheus' own parser), histogram
buckets, label escaping, and route labels that carry no path data."""

from __future__ import annotations

import math
import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from tempodb.server.metrics import Counter, Gauge, Histogram, Registry
from tempodb.server.routes import route_label
from tempodb.storage.sqlite import SQLiteStore


def parse(text: bytes) -> dict[str, list[tuple[str, dict[str, str], float]]]:
    """Family name -> [(sample name, labels, value)], by the reference parser."""
    return {
        family.name: [(s.name, dict(s.labels), s.value) for s in family.samples]
        for family in text_string_to_metric_families(text.decode())
    }


def test_counter_gauge_histogram_render_in_the_text_format() -> None:
    registry = Registry()
    requests = Counter("demo_requests_total", "Requests.\nTwo lines \\ here.", ("route",))
    depth = Gauge("demo_depth", "Depth.", lambda: 3)
    latency = Histogram("demo_seconds", "Latency.", ("route",), buckets=(0.1, 1.0))
    for metric in (requests, depth, latency):
        registry.register(metric)
    requests.inc("/a")
    requests.inc("/a", amount=2)
    requests.inc("/b")
    for value in (0.05, 0.1, 0.5, 3.0):
        latency.observe(value, "/a")
    families = parse(registry.render())
    assert families["demo_requests"] == [
        ("demo_requests_total", {"route": "/a"}, 3.0),
        ("demo_requests_total", {"route": "/b"}, 1.0),
    ]
    assert families["demo_depth"] == [("demo_depth", {}, 3.0)]
    assert families["demo_seconds"] == [
        ("demo_seconds_bucket", {"route": "/a", "le": "0.1"}, 2.0),  # 0.1 is in its bucket
        ("demo_seconds_bucket", {"route": "/a", "le": "1"}, 3.0),
        ("demo_seconds_bucket", {"route": "/a", "le": "+Inf"}, 4.0),
        ("demo_seconds_sum", {"route": "/a"}, pytest.approx(3.65)),
        ("demo_seconds_count", {"route": "/a"}, 4.0),
    ]
    assert latency.count("/a") == 4


@given(st.text(max_size=20))
def test_any_label_value_survives_escaping(value: str) -> None:
    registry = Registry()
    counter = Counter("demo_total", "Demo.", ("label",))
    registry.register(counter)
    counter.inc(value)
    [(_, labels, count)] = parse(registry.render())["demo"]
    assert labels == {"label": value}
    assert count == 1


def test_misuse_is_refused() -> None:
    counter = Counter("demo_total", "Demo.", ("a",))
    with pytest.raises(ValueError, match="takes labels"):
        counter.inc()
    with pytest.raises(ValueError, match="cannot go down"):
        counter.inc("x", amount=-1)
    with pytest.raises(ValueError, match="ascending"):
        Histogram("demo_seconds", "Demo.", buckets=(1, 0.5))
    registry = Registry()
    registry.register(counter)
    with pytest.raises(ValueError, match="already registered"):
        registry.register(Counter("demo_total", "Again."))


def test_a_failing_gauge_reads_nan() -> None:
    def broken() -> float:
        raise RuntimeError("closed")

    registry = Registry()
    registry.register(Gauge("demo_depth", "Depth.", broken))
    [(_, _, value)] = parse(registry.render())["demo_depth"]
    assert math.isnan(value)


def test_counters_are_exact_under_threads() -> None:
    counter = Counter("demo_total", "Demo.", ("op",))
    histogram = Histogram("demo_seconds", "Demo.")

    def work() -> None:
        for _ in range(5000):
            counter.inc("x")
            histogram.observe(0.001)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert counter.value("x") == 20000
    assert histogram.count() == 20000


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
