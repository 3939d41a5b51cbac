"""Failed logins are logged with their key, never their secret, and rate-limited per key
(issue 26), by the real server."""

from __future__ import annotations

from pathlib import Path

import pytest

from serverproc import ServerProcess, create_key, data_args
from tempodb import AuthenticationError, Client


def test_failed_logins_are_logged_once_a_minute_per_key_without_the_secret(
    tmp_path: Path,
) -> None:
    store = data_args(tmp_path / "data")
    key, secret = create_key(store)
    log = tmp_path / "server.log"
    server = ServerProcess.start(store, log=log)
    try:
        wrong = "0123456789abcdef0123456789abcdef"
        for who in [key] * 5 + ["no-such-key"]:
            client = Client(who, wrong, host=server.host, port=server.port, secure=False)
            with client, pytest.raises(AuthenticationError):
                client.get_series()
        with Client(key, secret, host=server.host, port=server.port, secure=False) as client:
            client.get_series()
    finally:
        server.stop()
    text = log.read_text()
    assert text.count(f"failed login for key {key!r}") == 1
    assert text.count("failed login for key 'no-such-key'") == 1
    assert wrong not in text
    assert secret not in text
