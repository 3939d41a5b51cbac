"""``tempodb serve`` with a bad option, folder, TLS file or address: one line on stderr, a
non-zero exit, never a traceback, and nothing announced as served (issue 25 item 7)."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from serverproc import tempodb_command


def serve(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        tempodb_command("serve", *args), capture_output=True, text=True, timeout=60
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode != 0
    assert "serving" not in result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("tempodb: "), lines
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0], lines[0]


@pytest.mark.parametrize(
    ("options", "words"),
    [
        (["--port", "99999"], ["--port", "99999"]),
        (["--port", "-1"], ["--port"]),
        (["--max-body-mb", "0"], ["--max-body-mb"]),
        (["--max-body-mb", "nan"], ["--max-body-mb"]),
        (["--queue", "0"], ["--queue"]),
        (["--max-connections", "0"], ["--max-connections"]),
        (["--max-header-kb", "-1"], ["--max-header-kb"]),
        (["--header-timeout", "0"], ["--header-timeout"]),
        (["--body-timeout", "inf"], ["--body-timeout"]),
        (["--idle-timeout", "-5"], ["--idle-timeout"]),
        (["--max-gzip-ratio", "0.5"], ["--max-gzip-ratio"]),
        (["--rate-limit", "0"], ["--rate-limit"]),
        (["--tls-cert", "cert.pem"], ["--tls-key"]),
    ],
)
def test_bad_options(tmp_path: Path, options: list[str], words: list[str]) -> None:
    assert_one_line_error(serve("--data", str(tmp_path / "data"), *options), *words)


def test_data_naming_a_file(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert_one_line_error(serve("--data", str(afile), "--port", "0"), "not a folder")


def test_missing_and_unreadable_tls_files(tmp_path: Path) -> None:
    data = ["--data", str(tmp_path / "data"), "--port", "0"]
    missing = serve(*data, "--tls-cert", str(tmp_path / "no.pem"), "--tls-key", "no.key")
    assert_one_line_error(missing, "No such file")
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    assert_one_line_error(
        serve(*data, "--tls-cert", str(junk), "--tls-key", str(junk)), "PEM certificate"
    )


def test_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = serve("--data", str(tmp_path / "data"), "--port", str(port))
    assert_one_line_error(result, str(port), "in use")


def test_unknown_host(tmp_path: Path) -> None:
    result = serve("--data", str(tmp_path / "data"), "--host", "no-such-host.invalid")
    assert_one_line_error(result, "no-such-host.invalid")


def test_which_hosts_count_as_loopback() -> None:
    """``tempodb serve`` warns when it serves plain http on any other host (issue 26)."""
    from tempodb.cli.serve import is_loopback

    for host in ("127.0.0.1", "127.3.2.1", "::1", "[::1]", "localhost"):
        assert is_loopback(host), host
    for host in ("0.0.0.0", "::", "10.0.0.5", "example.org", "192.168.1.1"):
        assert not is_loopback(host), host
