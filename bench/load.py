"""Load test: many concurrent clients, mixed writes and reads, for a fixed time.

Starts ``tempodb serve`` on a fresh data folder (or PostgreSQL with ``--database-url``, or
uses a running server with ``--url``, ``--key`` and ``--secret``), then runs ``--clients``
clients (raw HTTP/1.1 keep-alive connections, spread over several processes so that the
clients do not share one interpreter lock) for ``--duration`` seconds.  Each client draws
requests from a fixed mix:

==========  =====  ===============================================================
kind        share  request
==========  =====  ===============================================================
write        40 %  10 points to one of the client's 4 series (POST .../data/)
increment    10 %  +1 at a shared timestamp of a counter (POST .../increment/)
multi        10 %  one point to each of 4 series (POST /multi/)
read raw     25 %  the last 100 points of a series (GET .../data/?interval=raw)
rollup       10 %  hourly means of a day (GET .../data/?interval=1hour)
list          5 %  two of the client's series (GET /series/?key=...&key=...)
==========  =====  ===============================================================

It prints the throughput, the latency percentiles (overall and per kind) and the errors
(any answer other than 200, any connection failure); the exit status is 1 when there are
errors.  A final check reads the counter back: it must equal the acknowledged increments.

``--soak`` is the long mode (``make bench`` runs it for 10 minutes after 3 minutes of
warm-up): the server's resident memory is sampled every few seconds, and the run fails
(exit status 1) when it grows by more than ``--max-growth`` (10 %) after the warm-up.  The
embedded server runs with a 16 MB read cache and a 4 MB SQLite page cache then, full before
the warm-up ends (the defaults, 256 and 32 MB, would still be filling, by design, after ten
minutes of this load).

    python bench/load.py [--clients 32] [--duration 60] [--processes 4]
    python bench/load.py --soak [--warmup 60] [--duration 600]
"""

from __future__ import annotations

import argparse
import base64
import datetime
import http.client
import json
import multiprocessing
import random
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from serverproc import ServerProcess, create_key, data_args  # noqa: E402

T0 = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
MIX = [
    ("write", 40),
    ("increment", 10),
    ("multi", 10),
    ("read raw", 25),
    ("rollup", 10),
    ("list", 5),
]


def stamp(seconds: int) -> str:
    return (T0 + datetime.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


@dataclass
class Target:
    host: str
    port: int
    key: str
    secret: str


@dataclass
class Tally:
    """What one process saw: latencies by kind (seconds), errors and increments."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    increments: int = 0


class LoadClient:
    """One client: a keep-alive connection and its own series."""

    def __init__(self, target: Target, number: int, seed: int) -> None:
        self.target = target
        self.number = number
        self.random = random.Random(seed)
        self.clock = 0  # seconds after T0 of this client's next write
        token = base64.b64encode(f"{target.key}:{target.secret}".encode()).decode()
        self.headers = {"Authorization": f"Basic {token}", "Content-Type": "application/json"}
        self.conn = http.client.HTTPConnection(target.host, target.port, timeout=30)

    def prepare(self) -> None:
        """Create the client's series before the clock starts."""
        for index in range(4):
            body = json.dumps([{"t": stamp(0), "v": 0}]).encode()
            self.send("POST", f"/v1/series/key/load-{self.number}-{index}/data/", body)

    def series(self) -> str:
        return f"load-{self.number}-{self.random.randrange(4)}"

    def request(self, kind: str) -> tuple[str, str, bytes | None]:
        """(method, path, body) of one request of ``kind``."""
        if kind == "write":
            first = self.clock
            self.clock += 10
            body = [{"t": stamp(first + i), "v": self.random.random()} for i in range(10)]
            return "POST", f"/v1/series/key/{self.series()}/data/", json.dumps(body).encode()
        if kind == "increment":
            body = [{"t": stamp(0), "v": 1}]
            return "POST", "/v1/series/key/load-counter/increment/", json.dumps(body).encode()
        if kind == "multi":
            self.clock += 1
            body = [
                {"t": stamp(self.clock), "key": f"load-{self.number}-{i}", "v": i} for i in range(4)
            ]
            return "POST", "/v1/multi/", json.dumps(body).encode()
        if kind == "read raw":
            start, end = stamp(max(0, self.clock - 100)), stamp(self.clock + 1)
            query = f"start={start}&end={end}&interval=raw"
            return "GET", f"/v1/series/key/load-{self.number}-0/data/?{query}", None
        if kind == "rollup":
            query = f"start={stamp(0)}&end={stamp(86_400)}&interval=1hour&function=mean"
            return "GET", f"/v1/series/key/load-{self.number}-1/data/?{query}", None
        return "GET", f"/v1/series/?key=load-{self.number}-0&key=load-{self.number}-1", None

    def send(self, method: str, path: str, body: bytes | None) -> int:
        try:
            self.conn.request(method, path, body=body, headers=self.headers)
            response = self.conn.getresponse()
            response.read()
            return response.status
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = http.client.HTTPConnection(self.target.host, self.target.port, timeout=30)
            raise


def run_process(target: Target, numbers: list[int], until: float, seed: int) -> Tally:
    """Run the clients ``numbers`` on threads of this process until ``until`` (wall clock)."""
    import threading

    tally = Tally()
    lock = threading.Lock()
    kinds = [kind for kind, _ in MIX]
    weights = [weight for _, weight in MIX]

    def client(number: int) -> None:
        me = LoadClient(target, number, seed + number)
        local: dict[str, list[float]] = {kind: [] for kind in kinds}
        errors: list[str] = []
        increments = 0
        me.prepare()
        while time.time() < until:
            kind = me.random.choices(kinds, weights)[0]
            method, path, body = me.request(kind)
            began = time.perf_counter()
            try:
                status = me.send(method, path, body)
            except (OSError, http.client.HTTPException) as exc:
                errors.append(f"{kind}: {exc!r}")
                continue
            local[kind].append(time.perf_counter() - began)
            if status != 200:
                errors.append(f"{kind}: HTTP {status}")
            elif kind == "increment":
                increments += 1
        with lock:
            for kind, values in local.items():
                tally.latencies.setdefault(kind, []).extend(values)
            tally.errors += errors
            tally.increments += increments

    threads = [threading.Thread(target=client, args=(n,)) for n in numbers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return tally


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000


def counter_value(target: Target) -> int:
    """The load counter's value (0 before the first increment made it)."""
    client = LoadClient(target, 0, 0)
    query = f"start={stamp(0)}&end={stamp(1)}&interval=raw"
    client.conn.request("GET", f"/v1/series/key/load-counter/data/?{query}", headers=client.headers)
    response = client.conn.getresponse()
    body = response.read()
    client.conn.close()
    if response.status == 403:  # no such series yet
        return 0
    data = json.loads(body)["data"]
    return int(data[0]["v"]) if data else 0


#: The embedded server's SQLite page cache in a soak (MB): the writer's 32 MB default fills
#: for as long as the file grows (measured: +2.5 MB a minute after 3 minutes of this load).
SOAK_PAGE_CACHE_MB = 4
#: The embedded server's read cache in a soak (MB).
SOAK_READ_CACHE_MB = 16


def rss_bytes(pid: int) -> int:
    """The resident memory of process ``pid`` (Linux ``/proc``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


class MemorySampler:
    """Samples a process's resident memory every ``every`` seconds on a thread of its own."""

    def __init__(self, pid: int, every: float = 5.0) -> None:
        import threading

        self.pid = pid
        self.every = every
        self.samples: list[tuple[float, int]] = []  # (monotonic seconds, bytes)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            self.samples.append((time.monotonic(), rss_bytes(self.pid)))
            if self._stop.wait(self.every):
                return

    def figures(self, started: float, warmup: float) -> dict[str, Any]:
        """The memory after the warm-up: at its end, at most, and the growth from there."""
        after = [rss for at, rss in self.samples if at >= started + warmup]
        if len(after) < 2:
            raise RuntimeError("too few memory samples after the warm-up: run longer")
        baseline = after[0]
        minutes = [rss for at, rss in self.samples[:: max(1, round(60 / self.every))]]
        return {
            "rss_each_minute_mb": [round(rss / 2**20, 1) for rss in minutes],
            "warmup_s": warmup,
            "samples": len(after),
            "rss_after_warmup_mb": baseline / 2**20,
            "rss_max_mb": max(after) / 2**20,
            "rss_end_mb": after[-1] / 2**20,
            "growth": max(after) / baseline - 1,
        }


def run(target: Target, clients: int, duration: float, processes: int) -> dict[str, Any]:
    """Run the load and return its figures."""
    before = counter_value(target)
    until = time.time() + 2.0 + duration  # 2 s to start the processes and create the series
    groups = [list(range(p, clients, processes)) for p in range(processes)]
    context = multiprocessing.get_context("spawn")
    with context.Pool(processes) as pool:
        results = [
            pool.apply_async(run_process, (target, group, until, 1000 * index))
            for index, group in enumerate(groups)
        ]
        tallies = [result.get(timeout=duration + 120) for result in results]
    latencies: dict[str, list[float]] = {}
    errors: list[str] = []
    increments = 0
    for tally in tallies:
        for kind, values in tally.latencies.items():
            latencies.setdefault(kind, []).extend(values)
        errors += tally.errors
        increments += tally.increments
    every = [value for values in latencies.values() for value in values]
    counted = counter_value(target) - before
    if counted != increments:
        errors.append(f"counter: {counted} increments stored, {increments} acknowledged")
    return {
        "clients": clients,
        "duration_s": duration,
        "requests": len(every),
        "throughput_per_s": len(every) / duration,
        "p50_ms": percentile(every, 0.50),
        "p99_ms": percentile(every, 0.99),
        "max_ms": max(every) * 1000,
        "errors": len(errors),
        "error_samples": errors[:5],
        "by_kind": {
            kind: {
                "requests": len(values),
                "p50_ms": percentile(values, 0.50),
                "p99_ms": percentile(values, 0.99),
            }
            for kind, values in latencies.items()
            if values
        },
    }


def report(figures: dict[str, Any], store: str) -> None:
    print(f"load: {figures['clients']} clients for {figures['duration_s']:g} s on {store}")
    print(
        f"  {figures['requests']} requests, {figures['throughput_per_s']:.0f}/s; latency "
        f"p50 {figures['p50_ms']:.1f} ms, p99 {figures['p99_ms']:.1f} ms, "
        f"max {figures['max_ms']:.0f} ms; errors {figures['errors']}"
    )
    for kind, row in figures["by_kind"].items():
        print(
            f"  {kind:10} {row['requests']:8} requests  p50 {row['p50_ms']:6.1f} ms  "
            f"p99 {row['p99_ms']:6.1f} ms"
        )
    for sample in figures["error_samples"]:
        print(f"  error: {sample}")
    memory = figures.get("memory")
    if memory:
        print(
            f"  server memory after {memory['warmup_s']:g} s of warm-up "
            f"{memory['rss_after_warmup_mb']:.1f} MB, max {memory['rss_max_mb']:.1f} MB, "
            f"at the end {memory['rss_end_mb']:.1f} MB: growth {100 * memory['growth']:+.1f} % "
            f"({memory['samples']} samples)"
        )
        print(f"  each minute (MB): {memory['rss_each_minute_mb']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds (default 60)")
    parser.add_argument("--processes", type=int, default=4, help="client processes")
    parser.add_argument("--database-url", help="run the server on this PostgreSQL database")
    parser.add_argument("--url", help="use the server at http://HOST:PORT instead")
    parser.add_argument("--key")
    parser.add_argument("--secret")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument(
        "--soak",
        action="store_true",
        help="sample the server's memory; fail when it grows after the warm-up",
    )
    parser.add_argument(
        "--warmup", type=float, default=60.0, help="seconds before --soak's baseline (60)"
    )
    parser.add_argument(
        "--max-growth", type=float, default=0.10, help="--soak's limit (default 0.10: 10 %%)"
    )
    args = parser.parse_args()
    if args.soak and args.url:
        parser.error("--soak samples the memory of a server it starts: drop --url")
    if args.soak:
        args.duration += args.warmup
    if args.url:
        if not (args.key and args.secret):
            parser.error("--url needs --key and --secret")
        host, _, port = args.url.split("://")[-1].rstrip("/").partition(":")
        figures = run(
            Target(host, int(port or 80), args.key, args.secret),
            args.clients,
            args.duration,
            args.processes,
        )
        store = args.url
    else:
        with tempfile.TemporaryDirectory(prefix="tempodb-load-") as folder:
            if args.database_url:
                store_args, store = ["--database-url", args.database_url], "PostgreSQL"
            else:
                store_args, store = data_args(Path(folder) / "data"), "SQLite"
            key, secret = create_key(store_args)
            extra = ["--queue", str(max(256, 4 * args.clients))]
            if args.soak and not args.database_url:
                # The decoded-block cache (256 MB by default) fills for many minutes under this
                # load; a small one is full before the warm-up ends, so what grows after is not
                # a cache filling up to its bound.
                extra += ["--read-cache-mb", str(SOAK_READ_CACHE_MB)]
                extra += ["--page-cache-mb", str(SOAK_PAGE_CACHE_MB)]
            server = ServerProcess.start(store_args, *extra)
            try:
                target = Target(server.host, server.port, key, secret)
                with MemorySampler(server.process.pid) as memory:
                    started = time.monotonic() + 2.0  # run() starts the clock 2 s later
                    figures = run(target, args.clients, args.duration, args.processes)
                if args.soak:
                    figures["memory"] = memory.figures(started, args.warmup)
            finally:
                server.stop()
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        report(figures, store)
    grew = args.soak and figures["memory"]["growth"] > args.max_growth
    if grew:
        print(f"load: the server's memory grew by more than {100 * args.max_growth:g} %")
    return 1 if figures["errors"] or grew else 0


if __name__ == "__main__":
    sys.exit(main())
