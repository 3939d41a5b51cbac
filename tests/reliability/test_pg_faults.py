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
