"""GET /metrics on a real server: counters move by exactly what real traffic did, the text
parses as Prometheus' format, and nothing in it names a tenant."""

from __future__ import annotations

import datetime
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from serverproc import ServerProcess, create_key, data_args
from tempodb import AuthenticationError, Client, DataPoint, InvalidRequestError

UTC = datetime.UTC
START = datetime.datetime(2012, 1, 1, tzinfo=UTC)
SERIES_KEY = "tenant-secret-series.temperature"
DATA_ROUTE = "/v1/series/{field}/{value}/data"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str) -> tuple[str, Samples]:
    """The raw text and every sample, by (name, labels)."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        text = response.read().decode()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return text, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture(scope="module")
def metrics_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str]]:
    store = data_args(tmp_path_factory.mktemp("metrics-data"))
    key, secret = create_key(store, "--name", "tenant-database-name")
    server = ServerProcess.start(store)
    yield server.url, key, secret
    assert server.stop() == 0


def test_metrics_count_real_traffic(metrics_server: tuple[str, str, str]) -> None:
    url, key, secret = metrics_server
    host, port = url.removeprefix("http://").split(":")
    _, before = scrape(url)

    with Client(key, secret, host=host, port=int(port), secure=False) as client:
        series = client.create_series(SERIES_KEY)
        series.tags = ["tenant-tag"]
        series.attributes = {"tenant-attr": "tenant-value"}
        client.update_series(series)
        points = [DataPoint(START + datetime.timedelta(minutes=i), i) for i in range(100)]
        client.write_key(SERIES_KEY, points)
        client.increment_key(SERIES_KEY, points[:10])
        end = START + datetime.timedelta(hours=2)
        assert len(client.read_key(SERIES_KEY, START, end, interval="raw").data) == 100
        assert len(client.read(START, end, keys=[SERIES_KEY], interval="1hour")) == 1
        assert client.single_value_key(SERIES_KEY, START).data is not None
        with pytest.raises(InvalidRequestError):
            client.read_key(SERIES_KEY, START, end, interval="7fortnight")
    with (
        pytest.raises(AuthenticationError),
        Client(key, "wrong-" + secret, host=host, port=int(port), secure=False) as intruder,
    ):
        intruder.get_series()
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(f"{url}/v1/{SERIES_KEY}/nowhere", timeout=10)
    assert missing.value.code == 404

    text, after = scrape(url)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    requests = "tempodb_http_requests_total"
    assert delta(requests, route=DATA_ROUTE, method="POST", status="2xx") == 1
    assert delta(requests, route=DATA_ROUTE, method="GET", status="2xx") == 1
    assert delta(requests, route=DATA_ROUTE, method="GET", status="4xx") == 1
    increment = "/v1/series/{field}/{value}/increment"
    assert delta(requests, route=increment, method="POST", status="2xx") == 1
    assert delta(requests, route="/v1/data", method="GET", status="2xx") == 1
    assert delta(requests, route="/v1/series", method="POST", status="2xx") == 1
    assert delta(requests, route="/v1/series", method="GET", status="4xx") == 1
    assert delta(requests, route="unmatched", method="GET", status="4xx") == 1
    assert delta(requests, route="/metrics", method="GET", status="2xx") == 1
    latency = "tempodb_http_request_duration_seconds_count"
    assert delta(latency, route=DATA_ROUTE, method="GET") == 2
    assert delta(latency, route=DATA_ROUTE, method="POST") == 1
    assert delta("tempodb_http_errors_total", route="/v1/series", code="forbidden") == 1
    assert delta("tempodb_http_errors_total", route=DATA_ROUTE, code="invalid-request") == 1
    assert delta("tempodb_http_errors_total", route="unmatched", code="not-found") == 1
    assert delta("tempodb_points_written_total", op="write") == 100
    assert delta("tempodb_points_written_total", op="increment") == 10
    # raw read 100 + rollup read 100 + one single value
    assert delta("tempodb_points_read_total") == 201
    assert value(after, "tempodb_store_queue_depth") == 0
    assert value(after, "tempodb_http_requests_in_progress") >= 1  # this scrape
    assert value(after, "tempodb_uptime_seconds") > 0

    # No tenant data: no key, secret, series key, tag, attribute or database name.
    for secret_text in (key, secret, "tenant", "temperature", "nowhere", "fortnight"):
        assert secret_text not in text


def test_metrics_need_no_credentials_and_only_get(metrics_server: tuple[str, str, str]) -> None:
    url, _, _ = metrics_server
    request = urllib.request.Request(f"{url}/metrics", data=b"", method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 404
    text, _ = scrape(url)
    assert text.startswith("# HELP tempodb_http_requests_total ")
