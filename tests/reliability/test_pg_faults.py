"""PostgreSQL going away under load (issue 20): a cluster of the test's own, stopped in
``immediate`` mode (as a crash) while clients write, then started again.

While it is down every request is answered within a bounded time with ``503`` and
``Retry-After`` (never a hang); the server recovers by itself within seconds of the database
coming back; no acknowledged point is lost.  A request whose COMMIT was cut off is the one
answer that cannot be a 503 (it may have been applied): ``500 outcome-unknown``, and it is
applied wholly or not at all.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import pytest
from rawhttp import Raw

from pg import Cluster
from serverproc import ServerProcess, create_key

pytestmark = pytest.mark.postgres

WRITERS = 3
POINTS = 5  # per request, so that "wholly or not at all" can be seen
#: The longest any answer may take (the store waits 5 s for the database, then says 503).
BOUND_S = 12.0
T0 = 1_325_376_000  # 2012-01-01, in seconds


@dataclass
class Writer:
    raw: Raw
    number: int
    acknowledged: list[int] = field(default_factory=list)  # the first value of each request
    unknown: list[int] = field(default_factory=list)
    answers: list[tuple[float, float, int, str]] = field(default_factory=list)

    def run(self, stop: threading.Event) -> None:
        conn = self.raw.connection()
        request = 0
        while not stop.is_set():
            first = request * POINTS
            body = [{"t": _iso(T0 + first + i), "v": first + i} for i in range(POINTS)]
            sent = time.monotonic()
            try:
                reply = self.raw.request(
                    "POST", f"/v1/series/key/w{self.number}/data/", body, conn=conn
                )
            except OSError:  # no answer: it may have been applied; sent again on a new one
                self.unknown.append(first)
                conn = self.raw.connection()
                continue
            took = time.monotonic() - sent
            code = reply.headers.get("x-tempodb-error", "")
            self.answers.append((sent, took, reply.status, code))
            if reply.status == 200:
                self.acknowledged.append(first)
            elif code == "outcome-unknown":
                self.unknown.append(first)
            if reply.status == 503:
                assert reply.headers.get("retry-after"), reply.text
                time.sleep(0.05)
            request += 1


def _iso(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def test_postgres_killed_and_restarted_under_load() -> None:
    cluster = Cluster.start(fsync=True)
    try:
        store = ["--database-url", cluster.create_database("faults")]
        credentials = create_key(store)
        server = ServerProcess.start(store)
        try:
            writers = [
                Writer(Raw(server.host, server.port, credentials, timeout=30), n)
                for n in range(WRITERS)
            ]
            stop = threading.Event()
            threads = [threading.Thread(target=w.run, args=(stop,)) for w in writers]
            for thread in threads:
                thread.start()
            time.sleep(1.5)
            killed = time.monotonic()
            cluster.kill()
            time.sleep(12.0)
            restarted = time.monotonic()
            cluster.restart()
            deadline = restarted + 20
            while time.monotonic() < deadline:
                time.sleep(0.2)
                if any(
                    s > restarted and status == 200
                    for w in writers
                    for s, _, status, _ in w.answers
                ):
                    break
            recovered = time.monotonic()
            time.sleep(1.0)
            stop.set()
            for thread in threads:
                thread.join(60)
            answers = [a for w in writers for a in w.answers]
            statuses = {status for _, _, status, _ in answers}
            # Sent and answered while the database was down (a request waits up to 5 s for
            # it); those in flight when it died may be cut-off commits.
            down = [a for a in answers if a[0] > killed + 0.5 and a[0] + a[1] < restarted]
            cut_off = [a for a in answers if a[3] == "outcome-unknown"]
            assert all(killed - 1 < a[0] < killed + 0.5 for a in cut_off), cut_off
            # Bounded answers, only 200 and 503, but for cut-off commits.
            assert max(took for _, took, _, _ in answers) < BOUND_S
            assert statuses <= {200, 503, 500}, statuses
            others = [a for a in answers if a[2] == 500 and a[3] != "outcome-unknown"]
            assert not others, others
            assert sum(len(w.unknown) for w in writers) <= 2 * WRITERS  # only those in flight
            assert down, "no request while the database was down"
            assert {status for _, _, status, _ in down} == {503}, down[:5]
            # Back by itself, within seconds.
            assert recovered - restarted < 20, "the server did not recover"
            assert any(a[0] > restarted and a[2] == 200 for a in answers)
            # Nothing acknowledged lost; a cut-off commit is whole or absent.
            raw = Raw(server.host, server.port, credentials)
            for writer in writers:
                read = raw.request(
                    "GET",
                    f"/v1/series/key/w{writer.number}/data/?start=2012-01-01&end=2013-01-01"
                    "&interval=raw",
                )
                assert read.status == 200, read.text
                stored = {int(p["v"]) for p in read.json()["data"]}
                for first in writer.acknowledged:
                    assert set(range(first, first + POINTS)) <= stored, first
                for first in writer.unknown:
                    part = stored & set(range(first, first + POINTS))
                    assert part in (set(), set(range(first, first + POINTS))), part
                written = writer.acknowledged + writer.unknown
                expected = {v for first in written for v in range(first, first + POINTS)}
                assert stored <= expected  # nothing nobody wrote
            print(
                f"\n{len(answers)} answers; while down {len(down)} x 503; "
                f"recovered {recovered - restarted:.1f} s after the restart; "
                f"{sum(len(w.unknown) for w in writers)} cut-off commits"
            )
        finally:
            server.stop()
    finally:
        cluster.stop()


#: Series each multi increment of the termination test adds to (one point each).
SPREAD = 8


def test_backends_terminated_mid_transaction_never_half_apply(pg_cluster: Cluster) -> None:
    """``pg_terminate_backend`` on the server's connections, again and again, while clients
    send multi increments over ``SPREAD`` series: each request is retried (by the store before
    its COMMIT, by the client with its Idempotency-Key after) or refused, and applied wholly
    or not at all; every acknowledged one exactly once."""
    from tempodb import Client, RetryPolicy, TempoDBApiException, TempoDBConnectionError

    name = "terminated"
    store = ["--database-url", pg_cluster.create_database(name)]
    key, secret = create_key(store)
    server = ServerProcess.start(store)
    stop = threading.Event()
    acknowledged: list[int] = []
    failed: list[int] = []
    terminated = [0]
    stamps = iter(range(1_000_000))
    lock = threading.Lock()

    def write() -> None:
        policy = RetryPolicy(retries=8, backoff=0.02, max_backoff=0.2)
        with Client(key, secret, server.host, server.port, secure=False, retries=policy) as c:
            while not stop.is_set():
                with lock:
                    stamp = next(stamps)
                t = _iso(T0 + stamp)
                try:
                    c.increment_multi([{"t": t, "key": f"s{n}", "v": 1} for n in range(SPREAD)])
                except (TempoDBApiException, TempoDBConnectionError):
                    failed.append(stamp)
                else:
                    acknowledged.append(stamp)

    def terminate() -> None:
        import psycopg

        with psycopg.connect(pg_cluster.url(), autocommit=True) as admin:
            while not stop.is_set():
                rows = admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()",
                    (name,),
                ).fetchall()
                terminated[0] += len(rows)
                time.sleep(0.15)

    try:
        threads = [threading.Thread(target=write) for _ in range(4)]
        threads.append(threading.Thread(target=terminate))
        for thread in threads:
            thread.start()
        time.sleep(8)
        stop.set()
        for thread in threads:
            thread.join(60)
        assert terminated[0] >= 20, terminated
        assert len(acknowledged) >= 20, (len(acknowledged), len(failed))
        with Client(key, secret, server.host, server.port, secure=False) as client:
            start, end = _iso(T0), _iso(T0 + 1_000_000)
            counts: dict[str, dict[str, float]] = {}
            for n in range(SPREAD):
                data = client.read_key(f"s{n}", start, end, interval="raw").data
                counts[f"s{n}"] = {p.ts.strftime("%Y-%m-%dT%H:%M:%SZ"): p.value for p in data}
        for stamp in acknowledged:
            t = _iso(T0 + stamp)
            assert all(counts[s].get(t) == 1 for s in counts), (stamp, t)
        for stamp in failed:  # refused in the end: wholly applied or not at all
            t = _iso(T0 + stamp)
            assert {counts[s].get(t) for s in counts} in ({None}, {1}), (stamp, t)
        applied = {t for series in counts.values() for t in series}
        assert applied <= {_iso(T0 + s) for s in acknowledged + failed}
        print(
            f"\n{terminated[0]} backends terminated; {len(acknowledged)} increments "
            f"acknowledged, {len(failed)} refused"
        )
    finally:
        stop.set()
        server.stop()
