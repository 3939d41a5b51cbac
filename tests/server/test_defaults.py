"""Every documented default, as the code really has it: the options of ``tempodb serve`` parsed
with nothing given, the limits and options they make, the stores ``serve`` opens, and the
README's words for each (the other tests mostly pass explicit values, so a default raised a
thousandfold would go unnoticed)."""

from __future__ import annotations

import inspect
import re
import threading
from pathlib import Path
from typing import Any

from tempodb.cli import build_parser
from tempodb.cli.serve import limits_of
from tempodb.cli.stores import open_store
from tempodb.server.context import Options
from tempodb.server.limits import Limits
from tempodb.storage.base import Overloaded

README = (Path(__file__).parents[2] / "README.md").read_text()

DOCUMENTED = Limits(
    max_body=64 * 1024 * 1024,
    max_pending=256,
    max_connections=1000,
    max_header_bytes=64 * 1024,
    header_timeout=10.0,
    body_timeout=60.0,
    idle_timeout=75.0,
    max_gzip_ratio=100.0,
)

#: The rows of README's limits table (Security), by their first cells: their default.
TABLE = {
    "request body, after decompression": "64 MB",
    "gzip body expansion": "100 \N{MULTIPLICATION SIGN} its size (bodies up to 1 MiB always)",
    "authenticated requests in progress": "256",
    "requests a second per key": "none",
    "open connections": "1,000, and 16 more for `/healthz`",
    "header fields of a request": "64 KiB",
    "time from the first byte of a request (or the opening of its connection) to the end "
    "of its headers": "10 s",
    "time for the body to arrive": "60 s",
    "time between requests on a kept-alive connection": "75 s",
}


def serve_args(tmp_path: Path, *extra: str) -> Any:
    return build_parser().parse_args(["serve", "--data", str(tmp_path / "data"), *extra])


def test_readme_states_the_defaults_tested_here() -> None:
    rows = {
        cells[0]: cells[1]
        for line in README.splitlines()
        if line.startswith("| ")
        and len(cells := [c.strip() for c in line.strip("|").split("|")]) > 2
    }
    for limit, default in TABLE.items():
        assert rows.get(limit) == default, limit
    assert "at most `--queue N` requests (default 256)" in README
    assert "The SQLite writer's queue (1,024 calls) and the PostgreSQL\n  pool's wait (30 s)" in (
        README
    )
    assert "caps request bodies (64 MB, then 413)" in README
    assert re.search(r"by writes to new keys \(10,000; beyond, 400", README)


def test_serve_without_options_has_the_documented_limits(tmp_path: Path) -> None:
    args = serve_args(tmp_path)
    assert limits_of(args) == DOCUMENTED
    assert Limits() == DOCUMENTED  # the library's defaults are the command's
    assert (args.host, args.port) == ("127.0.0.1", 4242)
    assert args.max_series_per_request == 10_000 == Options().max_series_per_request
    assert args.rate_limit is None
    assert args.auth_cache == 0  # every request asks the store: revocation is immediate
    assert args.allow_origin == []


def test_serve_help_states_the_same_defaults() -> None:
    parser = build_parser()
    (serve,) = [
        choice
        for action in parser._subparsers._group_actions  # type: ignore[union-attr]
        for name, choice in action.choices.items()
        if name == "serve"
    ]
    help_of = {a.dest: a.help or "" for a in serve._actions}
    defaults = {a.dest: a.default for a in serve._actions}
    for dest, shown in (
        ("max_body_mb", "64"),
        ("queue", "256"),
        ("max_connections", "1000"),
        ("max_header_kb", "64"),
        ("header_timeout", "10"),
        ("body_timeout", "60"),
        ("idle_timeout", "75"),
        ("max_gzip_ratio", "100"),
        ("max_series_per_request", "10000"),
    ):
        assert f"(default {shown}" in help_of[dest], dest
        assert float(defaults[dest]) == float(shown), dest


def test_embedded_store_of_serve_queues_1024_writes(tmp_path: Path) -> None:
    """The writer's queue holds 1,024 calls (one of them in progress); one more is refused
    at once with Overloaded."""
    store = open_store(serve_args(tmp_path), lock=True)
    release = threading.Event()
    writer = store._writer  # type: ignore[attr-defined]
    try:
        first = writer.submit(lambda conn: release.wait(30))
        queued = [first]
        refused: Overloaded | None = None
        for _ in range(2000):
            try:
                queued.append(writer.submit(lambda conn: None))
            except Overloaded as exc:
                refused = exc
                break
        assert len(queued) == 1024
        assert refused is not None
        assert "1024 writes are waiting" in str(refused)
    finally:
        release.set()
        store.close()


def test_postgres_pool_waits_30_seconds() -> None:
    from tempodb.storage.postgres import PostgresStore

    parameters = inspect.signature(PostgresStore).parameters
    assert parameters["connect_timeout"].default == 30.0
    assert parameters["max_waiting"].default == 0  # waiting is bounded by time alone
