"""Start and stop a real ``tempodb serve`` process for the integration tests and the demo."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from tempodb import Client

SERVING = re.compile(r"serving (https?)://(\[[0-9a-fA-F:.]+\]|[^:/]+):(\d+)/")


def tempodb_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "tempodb.cli", *args]


def create_key(store_args: Sequence[str], *extra: str) -> tuple[str, str]:
    """Run ``tempodb keys create --json`` and return (key, secret)."""
    out = subprocess.run(
        tempodb_command("keys", "create", *store_args, "--json", *extra),
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    created = json.loads(out)
    return created["key"], created["secret"]


@dataclass
class ServerProcess:
    """A running server: its address and the process."""

    process: subprocess.Popen[str]
    scheme: str
    host: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    @staticmethod
    def start(
        store_args: Sequence[str],
        *extra: str,
        env: dict[str, str] | None = None,
        timeout: float = 30.0,
        log: Path | None = None,
    ) -> ServerProcess:
        """Start ``tempodb serve`` on a free port and wait until it answers.

        With ``log``, everything the server prints (stderr, and stdout after the banner, where
        uvicorn writes its access log) goes to that file.
        """
        stderr = open(log, "a") if log else None  # noqa: SIM115 - the child keeps it open
        process = subprocess.Popen(
            tempodb_command("serve", *store_args, "--port", "0", *extra),
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env={**os.environ, **(env or {})},
        )
        if stderr is not None:
            stderr.close()
        assert process.stdout is not None
        line = process.stdout.readline()
        if log is not None:
            threading.Thread(target=_drain, args=(process.stdout, log), daemon=True).start()
        found = SERVING.search(line)
        if not found:
            process.kill()
            raise RuntimeError(f"server did not start: {line!r}")
        host = found.group(2).strip("[]")
        server = ServerProcess(process, found.group(1), host, int(found.group(3)))
        server.wait_healthy(timeout)
        return server

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.scheme == "http":
                    with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as r:
                        if r.status == 200:
                            return
                else:
                    import socket

                    with socket.create_connection((self.host, self.port), timeout=2):
                        return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("server exited or never became healthy") from None
                time.sleep(0.05)

    def stop(self) -> int:
        """Stop the server gracefully (SIGTERM); its exit status."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout:
            self.process.stdout.close()
        return self.process.returncode


def _drain(stream: IO[str], log: Path) -> None:
    with open(log, "a") as out, contextlib.suppress(ValueError, OSError):  # closed by stop()
        for text in stream:
            out.write(text)
            out.flush()


def data_args(path: Path | str) -> list[str]:
    return ["--data", str(path)]


@dataclass
class Server:
    process: ServerProcess
    admin_key: str
    admin_secret: str

    @property
    def host(self) -> str:
        return self.process.host

    @property
    def port(self) -> int:
        return self.process.port

    @property
    def url(self) -> str:
        return self.process.url

    def new_database(self, name: str = "test") -> tuple[str, str]:
        """A fresh (key, secret) made with POST /v1/database/."""
        token = base64.b64encode(f"{self.admin_key}:{self.admin_secret}".encode()).decode()
        request = urllib.request.Request(
            f"{self.url}/v1/database/",
            data=json.dumps({"name": name}).encode(),
            headers={"Authorization": f"Basic {token}"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            created = json.load(response)
        return created["id"], created["password"]

    def client(self, key: str, secret: str) -> Client:
        return Client(key, secret, host=self.host, port=self.port, secure=False)
