"""Secrets: made with ``secrets``, stored only as salted hashes, compared in constant time, never
logged or echoed; ``tempodb keys list`` and ``revoke``; a revoked key stops working at once."""

from __future__ import annotations

import base64
import hmac
import json
import re
import secrets
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from rawhttp import Raw

from serverproc import ServerProcess, create_key, data_args, tempodb_command
from tempodb.storage import base
from tempodb.storage.base import Store
from tempodb.storage.sqlite import SQLiteStore

HEX32 = re.compile(r"[0-9a-f]{32}")


def tempodb(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(tempodb_command(*args), capture_output=True, text=True, check=False)


def test_credentials_come_from_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    drawn: list[int] = []
    real = secrets.token_hex

    def spy(nbytes: int) -> str:
        drawn.append(nbytes)
        return real(nbytes)

    monkeypatch.setattr(base.secrets, "token_hex", spy)
    credentials = base.new_credentials()
    assert drawn == [16, 16]  # 128 random bits for the key and for the secret
    assert HEX32.fullmatch(credentials.key)
    assert HEX32.fullmatch(credentials.secret)
    assert credentials.key != credentials.secret


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_secrets_are_compared_in_constant_time(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, request: pytest.FixtureRequest, kind: str
) -> None:
    """On both stores: a wrong secret and an unknown key each cost one salted-hash comparison,
    the unknown key against a dummy hash, so that timing does not tell which keys exist."""
    compared: list[tuple[str, str]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(base.hmac, "compare_digest", spy)
    if kind == "sqlite":
        opened: Store = SQLiteStore(tmp_path)
    else:
        from tempodb.storage.postgres import PostgresStore

        cluster = request.getfixturevalue("pg_cluster")
        opened = PostgresStore(cluster.create_database(f"ct_{secrets.token_hex(4)}"), min_size=0)
    with opened as store:
        credentials = store.create_database()
        assert store.authenticate(credentials.key, credentials.secret) is not None
        assert store.authenticate(credentials.key, credentials.secret[:-1] + "x") is None
        assert store.authenticate(secrets.token_hex(16), credentials.secret) is None
    # Every answer compared one salted hash in constant time, an unknown key a dummy one.
    assert len(compared) == 3
    assert all(credentials.secret not in a + b for a, b in compared)


@dataclass
class Backend:
    store: list[str]
    #: Where the backend keeps its data: every file under them is searched.
    folders: list[Path]
    cluster: Any = None


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite":
        return Backend(data_args(tmp_path / "data"), [tmp_path / "data"])
    cluster = request.getfixturevalue("pg_cluster")
    url = cluster.create_database(f"secrets_{secrets.token_hex(4)}")
    return Backend(["--database-url", url], [cluster.data_dir], cluster)


def spellings(key: str, secret: str) -> list[bytes]:
    """The ways a secret could sit in a file: as text, upper-case, UTF-16, and inside the
    Authorization header it travels in."""
    header = base64.b64encode(f"{key}:{secret}".encode())
    return [
        secret.encode(),
        secret.upper().encode(),
        secret.encode("utf-16-le"),
        header,
        header.decode().encode("utf-16-le"),
    ]


def test_secrets_never_reach_disk_logs_or_answers(backend: Backend, tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    created = [create_key(backend.store, "--admin"), create_key(backend.store)]
    server = ServerProcess.start(backend.store, "--access-log", log=log)
    try:
        admin = Raw(server.host, server.port, created[0])
        for name in ("http-1", "http-2"):
            reply = admin.request("POST", "/v1/database/", {"name": name})
            assert reply.status == 200
            created.append((reply.json()["id"], reply.json()["password"]))
        secrets_made = [secret for _, secret in created]
        for index, (key, secret) in enumerate(created):
            raw = admin.as_((key, secret))
            written = raw.request("POST", "/v1/series/key/k/data/", [{"t": "2012-01-01", "v": 1}])
            assert written.status == 200
            assert raw.request("GET", "/v1/series/").status == 200
            other = secrets_made[(index + 1) % len(secrets_made)]
            tries = [
                raw.as_((key, other)).request("GET", "/v1/series/"),
                raw.as_((key, secret + "x")).request("GET", "/v1/series/"),
                raw.as_((f"{key}:{secret}", secret)).request("GET", "/v1/series/"),
                raw.as_(None).request(
                    "GET", "/v1/series/", headers={"Authorization": f"Bearer {secret}"}
                ),
                raw.as_(None).request(
                    "GET", "/v1/series/", headers={"Authorization": f"Basic {secret}"}
                ),
            ]
            for reply in tries:
                assert reply.status in (401, 403), reply.text
                for made in secrets_made:
                    assert made not in reply.text, "an answer echoed a secret"
        revoked_key = created[1][0]
        assert tempodb("keys", "revoke", revoked_key, *backend.store).returncode == 0
        assert admin.as_(created[1]).request("GET", "/v1/series/").status == 403
        listed = tempodb("keys", "list", *backend.store, "--json")
        assert listed.returncode == 0
        entries = [json.loads(line) for line in listed.stdout.splitlines()]
        assert {e["key"]: e["revoked"] for e in entries if e["key"] == revoked_key} == {
            revoked_key: True
        }
        for made in secrets_made:
            assert made not in listed.stdout
        running = files_under(backend.folders)  # with the write-ahead logs still there
    finally:
        assert server.stop() == 0
    logged = log.read_bytes()
    assert b'"GET /v1/series/ HTTP/1.1" 200' in logged  # the access log was written
    places = {"server log": logged, **files_under(backend.folders)}
    if backend.cluster is not None:
        places["postgres log"] = backend.cluster.log().encode()
    for where, content in [*running.items(), *places.items()]:
        for key, secret in created:
            for spelled in spellings(key, secret):
                assert spelled not in content, f"the secret of {key} is in {where}"


def files_under(folders: list[Path]) -> dict[str, bytes]:
    found = {str(p): p.read_bytes() for f in folders for p in f.rglob("*") if p.is_file()}
    assert found
    return found


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_args(request: pytest.FixtureRequest, tmp_path: Path) -> list[str]:
    if request.param == "sqlite":
        return data_args(tmp_path / "data")
    cluster = request.getfixturevalue("pg_cluster")
    return ["--database-url", cluster.create_database(f"revoke_{secrets.token_hex(4)}")]


def test_revoked_key_stops_working_at_once(store_args: list[str]) -> None:
    """Requests run back to back while another process revokes the key: none that starts
    after ``tempodb keys revoke`` has returned is accepted, and the data is kept."""
    key, secret = create_key(store_args)
    kept = create_key(store_args)
    server = ServerProcess.start(store_args)
    try:
        raw = Raw(server.host, server.port, (key, secret))
        written = raw.request("POST", "/v1/series/key/k/data/", [{"t": "2012-01-01", "v": 7}])
        assert written.status == 200
        outcomes: list[tuple[float, float, int]] = []  # (sent, answered, status)
        stop = threading.Event()

        def hammer() -> None:
            conn = raw.connection()
            while not stop.is_set():
                sent = time.monotonic()
                status = raw.request("GET", "/v1/series/key/k/", conn=conn).status
                outcomes.append((sent, time.monotonic(), status))

        thread = threading.Thread(target=hammer)
        thread.start()
        time.sleep(0.3)
        revoked = tempodb("keys", "revoke", key, *store_args)
        returned = time.monotonic()
        time.sleep(0.3)
        stop.set()
        thread.join()
        assert revoked.returncode == 0, revoked.stderr
        after = [(sent, answered, status) for sent, answered, status in outcomes if sent > returned]
        assert after, "no request after the revocation"
        assert {status for _, _, status in after} == {403}
        assert any(status == 200 for _, _, status in outcomes)  # it worked before
        first_refusal = min(answered for _, answered, status in outcomes if status == 403)
        print(
            f"\nrevocation: first refusal {1000 * (first_refusal - returned):+.1f} ms after "
            f"`keys revoke` returned; {len(after)} later requests, all refused"
        )
        assert Raw(server.host, server.port, kept).request("GET", "/v1/series/").status == 200
    finally:
        server.stop()
    # The data stays until the key is deleted.
    store = open_store(store_args)
    try:
        (database,) = [d for d in store.list_databases() if d.key == key]
        assert database.revoked
        series = store.lookup_series(database.id, "key", "k")
        assert series is not None
        assert store.read_points(database.id, series.id, 0, 2**62).values.tolist() == [7.0]
    finally:
        store.close()


def open_store(store_args: list[str]) -> Store:
    if store_args[0] == "--data":
        return SQLiteStore(store_args[1])
    from tempodb.storage.postgres import PostgresStore

    return PostgresStore(store_args[1], min_size=0)


@pytest.mark.postgres
def test_auth_cache_trades_revocation_delay(pg_cluster: Any) -> None:
    """On PostgreSQL (no stamp of its keys), with ``--auth-cache`` a revoked key works on
    until its cache entry expires."""
    store = ["--database-url", pg_cluster.create_database(f"ttl_{secrets.token_hex(4)}")]
    key, secret = create_key(store)
    server = ServerProcess.start(store, "--auth-cache", "4")
    try:
        raw = Raw(server.host, server.port, (key, secret))
        cached = time.monotonic()
        assert raw.request("GET", "/v1/series/").status == 200  # cached now, for 4 s
        assert tempodb("keys", "revoke", key, *store).returncode == 0
        assert raw.request("GET", "/v1/series/").status == 200
        assert time.monotonic() - cached < 4
        time.sleep(max(0.0, cached + 4.2 - time.monotonic()))
        assert raw.request("GET", "/v1/series/").status == 403
    finally:
        server.stop()


def test_embedded_store_revokes_at_once_despite_auth_cache(tmp_path: Path) -> None:
    """The embedded store's ``keys.stamp`` ends cached credentials with the revocation or
    deletion of any key, whatever ``--auth-cache`` says; other keys keep working."""
    store = data_args(tmp_path / "data")
    revoked, deleted, kept = create_key(store), create_key(store), create_key(store)
    server = ServerProcess.start(store, "--auth-cache", "600")
    try:
        for credentials in (revoked, deleted, kept):
            assert (
                Raw(server.host, server.port, credentials).request("GET", "/v1/series/").status
                == 200
            )
        assert tempodb("keys", "revoke", revoked[0], *store).returncode == 0
        assert Raw(server.host, server.port, revoked).request("GET", "/v1/series/").status == 403
        assert tempodb("keys", "delete", deleted[0], *store).returncode == 0
        assert Raw(server.host, server.port, deleted).request("GET", "/v1/series/").status == 403
        assert Raw(server.host, server.port, kept).request("GET", "/v1/series/").status == 200
    finally:
        server.stop()
