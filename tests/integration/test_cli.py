"""The tempodb command: keys, serve's defaults and options, secrets at rest."""

from __future__ import annotations

import datetime
import json
import os
import secrets
import subprocess
from pathlib import Path
from typing import Any

import pytest

from serverproc import ServerProcess, create_key, data_args, tempodb_command
from tempodb import AuthenticationError, Client, DataPoint


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(tempodb_command(*args), capture_output=True, text=True, check=False)


def test_keys_create_list_delete(tmp_path: Path) -> None:
    store = data_args(tmp_path / "data")
    created = run("keys", "create", *store, "--name", "first", "--json")
    assert created.returncode == 0, created.stderr
    credentials = json.loads(created.stdout)
    assert set(credentials) == {"key", "secret"}
    assert len(credentials["key"]) == len(credentials["secret"]) == 32

    plain = run("keys", "create", *store, "--name", "second")
    assert plain.returncode == 0
    assert "secret:" in plain.stdout

    listed = [
        json.loads(line) for line in run("keys", "list", *store, "--json").stdout.splitlines()
    ]
    assert {entry["name"] for entry in listed} == {"first", "second"}
    assert all("secret" not in entry for entry in listed)

    assert run("keys", "delete", credentials["key"], *store).returncode == 0
    assert run("keys", "delete", credentials["key"], *store).returncode == 1
    assert len(run("keys", "list", *store).stdout.splitlines()) == 1


def test_secrets_are_not_stored_in_clear(tmp_path: Path) -> None:
    store = data_args(tmp_path / "data")
    _, secret = create_key(store)
    for path in (tmp_path / "data").iterdir():
        content = path.read_bytes()
        assert secret.encode() not in content
        assert secret.encode("utf-16-le") not in content


def test_serve_binds_loopback_by_default_and_auto_tags(tmp_path: Path) -> None:
    store = data_args(tmp_path / "data")
    key, secret = create_key(store)
    server = ServerProcess.start(store, "--auto-tag")
    try:
        assert server.host == "127.0.0.1"
        with Client(key, secret, server.host, server.port, secure=False) as client:
            assert client.create_series("therm1.temp.3").tags == ["therm1", "temp"]
            client.write_key("boiler.3.temp", [DataPoint(datetime.datetime(2012, 1, 1), 1)])
            (series,) = client.get_series(keys=["boiler.3.temp"])
            assert series.tags == ["boiler", "3"]
    finally:
        assert server.stop() == 0


def test_deleted_key_stops_working(tmp_path: Path) -> None:
    store = data_args(tmp_path / "data")
    key, secret = create_key(store)
    server = ServerProcess.start(store)
    try:
        with Client(key, secret, server.host, server.port, secure=False) as client:
            client.create_series("x")
            assert run("keys", "delete", key, *store).returncode == 0
            deadline = datetime.datetime.now() + datetime.timedelta(seconds=5)
            while True:
                try:
                    client.get_series()
                except AuthenticationError:
                    break
                assert datetime.datetime.now() < deadline, "deleted key still works"
    finally:
        server.stop()


def test_bad_arguments() -> None:
    assert run("serve").returncode == 2  # a store is required
    result = run("serve", "--data", "/tmp/x", "--tls-cert", "c.pem")
    assert result.returncode == 2
    assert "--tls-key" in result.stderr


@pytest.mark.parametrize("size_mb", ["0.001"])
def test_body_size_limit(tmp_path: Path, size_mb: str) -> None:
    store = data_args(tmp_path / "data")
    key, secret = create_key(store)
    server = ServerProcess.start(store, "--max-body-mb", size_mb)
    try:
        with Client(key, secret, server.host, server.port, secure=False) as client:
            points = [DataPoint(datetime.datetime(2012, 1, 1, 0, i), i) for i in range(60)]
            with pytest.raises(Exception, match="413") as error:
                client.write_key("big", points)
            assert getattr(error.value, "status", None) == 413
            assert client.get_series() == []
    finally:
        server.stop()


def test_serving_on_ipv6_loopback(tmp_path: Path) -> None:
    """``serve --host ::1`` prints a URL that works, and the client takes an IPv6 host
    (issue 25, item 16)."""
    store = data_args(tmp_path / "data")
    key, secret = create_key(store)
    server = ServerProcess.start(store, "--host", "::1")
    try:
        assert server.url.startswith("http://[::1]:")
        with Client(key, secret, host="::1", port=server.port, secure=False) as client:
            client.create_series("over-ipv6")
            assert [s.key for s in client.get_series()] == ["over-ipv6"]
    finally:
        server.stop()


@pytest.mark.postgres
def test_database_url_from_the_environment_or_a_file(pg_cluster: Any, tmp_path: Path) -> None:
    """The URL (with its password) need not be on the command line, where every local user
    reads it in the process list: ``$TEMPODB_DATABASE_URL`` or ``--database-url-file``."""
    url = pg_cluster.create_database(f"cli_url_{secrets.token_hex(4)}")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TEMPODB_")}
    created = subprocess.run(
        tempodb_command("keys", "create", "--json"),
        capture_output=True,
        text=True,
        env={**clean, "TEMPODB_DATABASE_URL": url},
        check=False,
    )
    assert created.returncode == 0, created.stderr
    key = json.loads(created.stdout)["key"]
    url_file = tmp_path / "database-url"
    url_file.write_text(url + "\n")
    listed = run("keys", "list", "--database-url-file", str(url_file), "--json")
    assert listed.returncode == 0, listed.stderr
    assert key in listed.stdout
    nothing = subprocess.run(
        tempodb_command("keys", "list"), capture_output=True, text=True, env=clean, check=False
    )
    assert nothing.returncode == 2
    assert "--data DIR, or --database-url URL" in nothing.stderr
    url_file.write_text("")
    empty = run("keys", "list", "--database-url-file", str(url_file))
    assert empty.returncode != 0
    assert "holds no database URL" in empty.stderr
