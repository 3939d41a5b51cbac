"""Fixtures shared by the integration tests: one real server process per session, and a
fresh database (API key) per test, created through the admin endpoint."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

import tempodb
from pg import CITUS_MISSING, CitusCluster, Cluster, citus_installed
from serverproc import Server, ServerProcess, create_key, data_args
from tempodb import Client

# Property tests check results, not speed: no per-example deadline, which a busy 2-core
# machine (or CI's) would miss now and then.
settings.register_profile("tempodb", deadline=None)
settings.load_profile("tempodb")


#: The ``client`` fixture's transports, for modules that set ``BOTH_TRANSPORTS = True``.
TRANSPORTS = ["http", "in-process"]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if getattr(metafunc.module, "BOTH_TRANSPORTS", False) and "transport" in metafunc.fixturenames:
        metafunc.parametrize("transport", TRANSPORTS, indirect=True)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tempodb", "tempodb reliability tests")
    group.addoption(
        "--cycles",
        type=int,
        default=20,
        help="SIGKILL/restart cycles of the crash test (tests/reliability/test_crash.py)",
    )
    group.addoption(
        "--all-zones",
        action="store_true",
        help="check every IANA zone's transitions (tests/test_zone_transitions.py; a few "
        "minutes), not only those closest together",
    )
    group.addoption(
        "--api-fuzz-examples",
        type=int,
        default=int(os.environ.get("TEMPODB_API_FUZZ_EXAMPLES", "0")) or None,
        help="schemathesis examples per API operation (default: a short run; also "
        "TEMPODB_API_FUZZ_EXAMPLES)",
    )


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """The throwaway PostgreSQL cluster of this test session (see tests/pg.py)."""
    cluster = Cluster.start()
    yield cluster
    cluster.stop()


#: Whether Citus tests were left out for lack of Citus (then said once at the end).
_citus_skipped: list[bool] = []


@pytest.fixture(scope="session")
def citus_cluster() -> Iterator[CitusCluster]:
    """A throwaway Citus cluster (a coordinator and two workers on loopback) for the session.
    Without Citus the tests marked ``citus`` are left out at collection (see below), so a test
    that gets here without Citus fails: under ``CI=true``, or because it lacks the mark."""
    if not citus_installed():
        if os.environ.get("CI") == "true":
            pytest.fail(CITUS_MISSING + " (CI=true: Citus must be installed, see .ci/run)")
        pytest.fail(CITUS_MISSING + " (a test that needs Citus must carry the citus mark)")
    cluster = CitusCluster.start()
    yield cluster
    cluster.stop()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave out what need not run: the in-process client beside PostgreSQL's server (it does
    not use the session's server: it runs once, beside the embedded server's parameter), and
    without Citus (and not under ``CI=true``) the Citus tests, saying so in one line at the
    end of the run (rather than a line per skipped test)."""
    kept, left_out = [], []
    skip_citus = not citus_installed() and os.environ.get("CI") != "true"
    for item in items:
        params = getattr(item, "callspec", None)
        chosen = params.params if params is not None else {}
        twice = chosen.get("transport") == "in-process" and chosen.get("server") not in (
            None,
            "sqlite",
        )
        citus = skip_citus and item.get_closest_marker("citus") is not None
        (left_out if twice or citus else kept).append(item)
        if citus:
            _citus_skipped.append(True)
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = kept


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _citus_skipped:
        terminalreporter.write_line(f"make test: {CITUS_MISSING}")


@pytest.fixture(scope="session")
def pg_server_url(pg_cluster: Cluster) -> str:
    """An empty database of the cluster for the session's server on PostgreSQL."""
    return pg_cluster.create_database("server")


@pytest.fixture(
    scope="session",
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A ``tempodb serve`` process on each backend: the embedded store, then PostgreSQL."""
    if request.param == "sqlite":
        store = data_args(tmp_path_factory.mktemp("server-data"))
    else:
        store = ["--database-url", request.getfixturevalue("pg_server_url")]
    admin_key, admin_secret = create_key(store, "--admin", "--name", "admin")
    process = ServerProcess.start(store)
    yield Server(process, admin_key, admin_secret)
    assert process.stop() == 0


@pytest.fixture
def credentials(server: Server) -> tuple[str, str]:
    return server.new_database()


@pytest.fixture
def transport(request: pytest.FixtureRequest) -> str:
    """How the ``client`` fixture reaches the store: ``http`` (the session's server), or
    ``in-process`` (``tempodb.connect``) as well in modules that set ``BOTH_TRANSPORTS``."""
    return str(getattr(request, "param", "http"))


@pytest.fixture
def client(
    server: Server, credentials: tuple[str, str], transport: str, tmp_path: Path
) -> Iterator[Client]:
    """A client on a fresh, empty database: of the session server, or in-process on a data
    folder of the test's own."""
    if transport == "in-process":
        with tempodb.connect(tmp_path / "in-process") as in_process:
            yield in_process
        return
    with server.client(*credentials) as c:
        yield c
