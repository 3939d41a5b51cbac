"""P1: Prometheus' remote storage protocols, as Prometheus uses them.

Writes: remote_write 1.0 requests as Prometheus builds them (``WriteRequest``s of 500
samples, snappy-compressed, ``Content-Encoding: snappy``), one sample per series per request,
over ``series`` series (labels as node_exporter's: ``__name__``, ``instance``, ``job``,
``mode``) and ``rounds`` scrapes 15 s apart.  The first round creates the series
(``P1_remote_write_new_series_samples_per_s``), the others add samples to them
(``P1_remote_write_samples_per_s``); the same bodies go to tempodb and to VictoriaMetrics
(which accepts ``/api/v1/write``), over two connections as in W1 (Prometheus sends from
several shards at once).

Reads: one day of 100 series at a 15 s interval (``read_series`` x 5,760 samples) written
by remote_write, then the remote_read of that day (``ReadRequest`` with one query,
``__name__="p1_read"``, answered with samples): the median time of the whole answer
(``P1_remote_read_1_day_100_series_ms``).  The reference is a Prometheus 2.42 with the same
samples in its local storage (backfilled with ``promtool tsdb create-blocks-from
openmetrics``) answering the same request on its own ``/api/v1/read``.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from httpc import Connection, Request
from procs import free_port, stop, wait_http

from tempodb.server.prometheus import messages

#: A scrape every 15 s; 500 samples per request (Prometheus 2.42's max_samples_per_send).
STEP_MS = 15_000
PER_REQUEST = 500
#: 2024-01-01T00:00:00Z: the write rounds start here, the read day the day after.
WRITE_BASE_MS = 1_704_067_200_000
READ_BASE_MS = WRITE_BASE_MS + 86_400_000
READ_METRIC = "p1_read"
HEADERS = (("Content-Encoding", "snappy"), ("X-Prometheus-Remote-Write-Version", "0.1.0"))
READ_HEADERS = (("Content-Encoding", "snappy"), ("X-Prometheus-Remote-Read-Version", "0.1.0"))


@dataclass(frozen=True)
class P1Sizes:
    series: int
    rounds: int
    read_series: int
    read_samples: int
    reads: int


FULL = P1Sizes(series=10_000, rounds=10, read_series=100, read_samples=5_760, reads=7)
QUICK = P1Sizes(series=1_000, rounds=3, read_series=10, read_samples=480, reads=3)


def _labels(i: int) -> list[tuple[str, str]]:
    return [
        ("__name__", f"node_metric_{i % 40}"),
        ("instance", f"host-{i // 40}:9100"),
        ("job", "node"),
        ("mode", ("user", "system", "idle")[i % 3]),
    ]


def _encode(samples: Sequence[tuple[list[tuple[str, str]], int, float]]) -> bytes:
    """One snappy ``WriteRequest`` of (labels, ts, value) samples, a series per sample run."""
    request = messages.WriteRequest()
    previous = None
    out = None
    for labels, ts, value in samples:
        if labels is not previous or out is None:
            out = request.timeseries.add()
            for name, text in labels:
                out.labels.add(name=name, value=text)
            previous = labels
        out.samples.add(value=value, timestamp=ts)
    return messages.compress(request.SerializeToString())


def write_request(body: bytes) -> Request:
    return Request("POST", "/api/v1/write", body, "application/x-protobuf", HEADERS)


def write_rounds(sizes: P1Sizes) -> list[list[bytes]]:
    """Per round, the bodies of its requests (``PER_REQUEST`` series each)."""
    labels = [_labels(i) for i in range(sizes.series)]
    rounds = []
    for r in range(sizes.rounds):
        ts = WRITE_BASE_MS + r * STEP_MS
        bodies = []
        for lo in range(0, sizes.series, PER_REQUEST):
            hi = min(lo + PER_REQUEST, sizes.series)
            bodies.append(_encode([(labels[i], ts, float(i * 7 + r)) for i in range(lo, hi)]))
        rounds.append(bodies)
    return rounds


def read_day(sizes: P1Sizes) -> tuple[list[bytes], list[tuple[int, list[tuple[int, float]]]]]:
    """The read data set: the remote_write bodies (Prometheus catching up: each request the
    next ``PER_REQUEST`` samples in time order, every series at each time) and the samples."""
    labels = [[("__name__", READ_METRIC), ("series", str(i))] for i in range(sizes.read_series)]
    flat = [
        (labels[i], READ_BASE_MS + k * STEP_MS, float((i * 31 + k) % 1000) / 8)
        for k in range(sizes.read_samples)
        for i in range(sizes.read_series)
    ]
    bodies = [_encode(flat[lo : lo + PER_REQUEST]) for lo in range(0, len(flat), PER_REQUEST)]
    samples = [
        (i, [(READ_BASE_MS + k * STEP_MS, float((i * 31 + k) % 1000) / 8)
             for k in range(sizes.read_samples)])
        for i in range(sizes.read_series)
    ]  # fmt: skip
    return bodies, samples


def read_request(sizes: P1Sizes) -> Request:
    request = messages.ReadRequest()
    query = request.queries.add(
        start_timestamp_ms=READ_BASE_MS,
        end_timestamp_ms=READ_BASE_MS + sizes.read_samples * STEP_MS,
    )
    query.matchers.add(type=messages.EQ, name="__name__", value=READ_METRIC)
    body = messages.compress(request.SerializeToString())
    return Request("POST", "/api/v1/read", body, "application/x-protobuf", READ_HEADERS)


def timed_read(conn: Connection, request: Request, rounds: int) -> tuple[float, int]:
    """The median milliseconds of ``rounds`` remote reads (after one untimed), and the
    samples of the answer."""
    wire = conn.encode(request)
    _, body = conn.send(wire)
    response = messages.ReadResponse.FromString(messages.decompress(body, 1 << 31))
    samples = sum(len(ts.samples) for ts in response.results[0].timeseries)
    times = []
    for _ in range(rounds):
        began = time.perf_counter()
        conn.send(wire)
        times.append((time.perf_counter() - began) * 1000)
    return round(statistics.median(times), 3), samples


def prometheus_reference(
    sizes: P1Sizes, root: Path, binary: str, say: Callable[[str], None]
) -> dict[str, object]:
    """The read on a Prometheus whose local storage holds the read day (backfilled)."""
    promtool = str(Path(binary).with_name("promtool"))
    root.mkdir(parents=True, exist_ok=True)
    _, samples = read_day(sizes)
    text = root / "day.om"
    with text.open("w") as out:
        out.write(f"# TYPE {READ_METRIC} gauge\n")
        for i, points in samples:
            for ts, value in points:
                out.write(f'{READ_METRIC}{{series="{i}"}} {value!r} {ts / 1000:.3f}\n')
        out.write("# EOF\n")
    data = root / "data"
    subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", str(text), str(data)],
        check=True,
        capture_output=True,
    )
    port = free_port()
    config = root / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 1m\n")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={data}",
            "--storage.tsdb.retention.time=100y",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/-/ready", process)
        conn = Connection("127.0.0.1", port)
        ms, count = timed_read(conn, read_request(sizes), sizes.reads)
        conn.close()
        expected = sizes.read_series * sizes.read_samples
        if count != expected:
            raise RuntimeError(f"Prometheus answered {count} samples, not {expected}")
        say(f"  prometheus P1_remote_read_1_day_100_series_ms = {ms}")
        return {"P1_remote_read_1_day_100_series_ms": ms}
    finally:
        stop(process)
        shutil.rmtree(root, ignore_errors=True)
