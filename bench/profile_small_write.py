"""Where the time of a small write goes: the server in this process under cProfile, W8's load.

Starts the server in this process (the app and uvicorn as ``tempodb serve`` sets them up, on
the embedded store in a temporary folder, or on a throwaway PostgreSQL cluster with
``--postgres``), profiles every one of its threads (the event loop, the store's writer, the
worker threads) with one ``cProfile.Profile`` each, and sends it W8's load from another
process: ``--clients`` connections, each sending 10 series x 1 point per request
(``POST /v1/data/``) and waiting for the answer, for ``--seconds``.  Then it prints, per
thread, the functions with the most cumulative time per request, and over all threads the
functions with the most time of their own.

The profiler slows every Python call down (by about half on small functions), so the rates
printed are lower than ``bench.py``'s W8 and the shares are what matters: how much of a
request is HTTP (uvicorn, httptools), routing and authentication, parsing, the store's queue,
SQL and the commit.

    python bench/profile_small_write.py [--seconds 10] [--clients 8] [--top 25] [--postgres]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT / "src"), str(ROOT / "tests")]

from dataset import DAY_MS, START_MS  # noqa: E402
from httpc import Connection, basic_auth, requests_per_second  # noqa: E402

#: A function in pstats: (file, line, name).
Func = tuple[str, int, str]


# -- the client (a process of its own, so that it does not share the server's interpreter) ----


def client(host: str, port: int, auth: str, clients: int, seconds: float) -> None:
    """W8's load for ``seconds`` (the first requests create the series); prints the requests
    answered and the seconds as JSON."""
    from systems import TempoDB

    maker = TempoDB()
    conn = Connection(host, port, auth)
    base = START_MS + 400 * DAY_MS
    wires = [
        [conn.encode(maker.small_write(c, i, base + i * 1000)) for i in range(20_000)]
        for c in range(clients)
    ]
    began = time.perf_counter()
    rate = requests_per_second(host, port, wires, seconds)
    elapsed = time.perf_counter() - began
    print(json.dumps({"requests": round(rate * elapsed), "seconds": elapsed}), flush=True)


# -- per-thread profiles ---------------------------------------------------------------------


class ThreadProfiles:
    """One profiler per thread started after :meth:`install` (``threading.setprofile``),
    plus the calling thread's within :meth:`profiling`."""

    def __init__(self) -> None:
        self.profiles: list[tuple[str, cProfile.Profile]] = []
        self._lock = threading.Lock()

    def install(self) -> None:
        threading.setprofile(self._hook)

    def _hook(self, frame: Any, event: str, arg: Any) -> None:
        # The first call in a new thread: replace this hook by a profiler of the thread's own.
        sys.setprofile(None)
        profile = cProfile.Profile()
        with self._lock:
            self.profiles.append((threading.current_thread().name, profile))
        profile.enable()

    @contextmanager
    def profiling(self) -> Iterator[None]:
        profile = cProfile.Profile()
        with self._lock:
            self.profiles.append((threading.current_thread().name, profile))
        profile.enable()
        try:
            yield
        finally:
            profile.disable()
            threading.setprofile(None)

    def by_group(self) -> dict[str, pstats.Stats]:
        """The stats merged per group of threads (worker threads numbered alike together)."""
        groups: dict[str, list[cProfile.Profile]] = {}
        for name, profile in self.profiles:
            group = name.rstrip("0123456789").rstrip("_-") or name
            groups.setdefault(group, []).append(profile)
        stats = {}
        for group, profiles in groups.items():
            merged = None
            for profile in profiles:
                profile.create_stats()
                if not profile.stats:
                    continue
                if merged is None:
                    merged = pstats.Stats(profile)
                else:
                    merged.add(profile)
            if merged is not None:
                stats[group] = merged
        return stats


def short(func: Func) -> str:
    path, line, name = func
    if path == "~":
        return name  # a built-in
    for marker in ("site-packages/", "/src/", "/lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{path}:{line}({name})"


#: Built-ins whose time is a thread waiting: for work (a worker or the writer on its queue, the
#: plain asyncio loop on epoll, the connection pool's threads), or on a lock held by another
#: thread.  Waiting for PostgreSQL's answers is not among them (psycopg's ``wait``).
IDLE = frozenset(
    {
        "<method 'get' of '_queue.SimpleQueue' objects>",
        "<method 'poll' of 'select.epoll' objects>",
        "<method 'acquire' of '_thread.lock' objects>",
    }
)


def is_loop(func: Func) -> bool:
    """The function that runs the event loop: its own time is the loop's C code (uvloop:
    socket I/O, httptools' parsing, the scheduling) and its waiting."""
    return func[0].endswith("asyncio/runners.py") and func[2] == "run"


def split(stats: pstats.Stats) -> tuple[float, float, float]:
    """A thread group's seconds: in all (its root's cumulative time), waiting for work, and
    in the event loop's own code."""
    entries: dict[Func, Any] = stats.stats  # type: ignore[attr-defined]
    wall = max(entry[3] for entry in entries.values())
    idle = sum(entry[2] for func, entry in entries.items() if func[2] in IDLE)
    loop = sum(entry[2] for func, entry in entries.items() if is_loop(func))
    return wall, idle, loop


def print_thread(
    group: str, stats: pstats.Stats, requests: int, top: int, total_busy: float
) -> None:
    """One group of threads: where its time went per request, and its ``top`` functions by
    cumulative time among those below its waiting (the thread's own loop is left out);
    nothing for a group other than the event loop's with under 2 % of ``total_busy`` (idle
    workers, the shutdown)."""
    entries: dict[Func, Any] = stats.stats  # type: ignore[attr-defined]
    wall, idle, loop = split(stats)
    busy = wall - idle - loop
    if group != "MainThread" and busy < 0.02 * total_busy:
        return
    us = 1e6 / requests
    print(
        f"\nthread {group}: {wall * us:,.0f} us per request: {busy * us:,.0f} in Python calls "
        f"(and the C functions they call), {loop * us:,.0f} in the event loop's own C code "
        f"(socket I/O, HTTP parsing, waiting), {idle * us:,.0f} waiting on queues and locks"
    )
    rows = sorted(
        (
            item
            for item in entries.items()
            if item[0][2] not in IDLE and item[1][3] <= busy * 1.001 + 1e-9
        ),
        key=lambda item: item[1][3],
        reverse=True,
    )[:top]
    print_rows(rows, requests)


def print_rows(rows: list[tuple[Func, Any]], requests: int) -> None:
    print(f"  {'cum us/req':>10} {'own us/req':>10} {'calls/req':>9}  function")
    for func, (_cc, calls, own, cumulative, _callers) in rows:
        print(
            f"  {cumulative / requests * 1e6:>10.1f} {own / requests * 1e6:>10.1f} "
            f"{calls / requests:>9.2f}  {short(func)}"
        )


# -- the server ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--postgres", action="store_true", help="a throwaway PostgreSQL store")
    parser.add_argument(
        "--client", nargs=3, metavar=("PORT", "KEY", "SECRET"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.client:
        port, key, secret = args.client
        client("127.0.0.1", int(port), basic_auth(key, secret), args.clients, args.seconds)
        return 0

    import uvicorn

    from tempodb.cli.serve import tune_allocator
    from tempodb.server.app import TempoDBApp
    from tempodb.storage.base import Store

    tune_allocator()
    profiles = ThreadProfiles()
    cleanups: list[Callable[[], None]] = []
    with tempfile.TemporaryDirectory(prefix="tempodb-profile-") as folder:
        profiles.install()  # before the store starts its writer thread
        store: Store
        if args.postgres:
            from pg import Cluster
            from tempodb.storage.postgres import PostgresStore

            cluster = Cluster.start(fsync=True)
            cleanups.append(cluster.stop)
            store = PostgresStore(cluster.create_database("profile"))
        else:
            from tempodb.storage.sqlite import SQLiteStore

            store = SQLiteStore(Path(folder) / "data")
        try:
            credentials = store.create_database("profile")
            app = TempoDBApp(store)
            port = free_port()
            try:
                import uvloop  # noqa: F401

                loop = "uvloop"
            except ImportError:
                loop = "asyncio"
            config = uvicorn.Config(
                app,
                host="127.0.0.1",
                port=port,
                loop=loop,
                http="httptools",
                lifespan="on",
                log_level="warning",
                server_header=False,
            )
            server = uvicorn.Server(config)
            outcome: dict[str, Any] = {}

            def drive() -> None:
                """Started before the profiling: the load, then the server's stop."""
                try:
                    wait_ready(port)
                    done = subprocess.run(
                        [
                            sys.executable,
                            __file__,
                            "--clients",
                            str(args.clients),
                            "--seconds",
                            str(args.seconds),
                            "--client",
                            str(port),
                            credentials.key,
                            credentials.secret,
                        ],
                        capture_output=True,
                        text=True,
                        check=False,
                    )
                    if done.returncode != 0:
                        outcome["error"] = done.stderr[-2000:]
                    else:
                        outcome.update(json.loads(done.stdout.strip().splitlines()[-1]))
                finally:
                    server.should_exit = True

            threading.setprofile(None)
            driver = threading.Thread(target=drive, name="driver", daemon=True)
            driver.start()
            profiles.install()
            with profiles.profiling():
                server.run()
            driver.join()
        finally:
            for cleanup in cleanups:
                cleanup()
    if "error" in outcome:
        print(outcome["error"], file=sys.stderr)
        return 1
    requests = int(outcome["requests"])
    store_name = "PostgreSQL" if args.postgres else "the embedded store (SQLite)"
    print(
        f"{requests:,} small writes (10 series x 1 point) from {args.clients} clients in "
        f"{outcome['seconds']:.1f} s on {store_name}: {requests / outcome['seconds']:,.0f} "
        "requests/s under the profiler; times below are per request, over the whole run"
    )
    groups = profiles.by_group()
    total = sum(wall - idle - loop for wall, idle, loop in map(split, groups.values()))
    for group, stats in groups.items():
        print_thread(group, stats, requests, args.top, total)
    merged = pstats.Stats()
    for stats in groups.values():
        merged.add(stats)
    entries = merged.stats  # type: ignore[attr-defined]
    rows = sorted(
        (item for item in entries.items() if item[0][2] not in IDLE and not is_loop(item[0])),
        key=lambda item: item[1][2],
        reverse=True,
    )[: args.top]
    print(
        f"\nall threads: {total / requests * 1e6:,.0f} us of Python calls per request; by own time"
    )
    print_rows(rows, requests)
    return 0


if __name__ == "__main__":
    sys.exit(main())
