"""Start and stop a real Prometheus (Debian's 2.42, unpacked by scripts/ensure-prometheus.sh)
for the tests and the benchmark, and query it through its HTTP API.

``prometheus_binary`` looks in ``$PROMETHEUS_BIN``, the folder ensure-prometheus.sh unpacks
into, then the PATH; when none is found it runs ensure-prometheus.sh once, and raises if
Prometheus is still missing: a test that needs it fails, never skips.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ENSURE = ROOT / "scripts" / "ensure-prometheus.sh"


def _unpacked() -> Path:
    base = os.environ.get("TEMPODB_PROMETHEUS_DIR")
    if base:
        return Path(base) / "usr" / "bin" / "prometheus"
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "tempodb" / "prometheus" / "usr" / "bin" / "prometheus"


def prometheus_binary() -> str:
    """The Prometheus binary; installs it (ensure-prometheus.sh) when missing."""
    for attempt in range(2):
        candidates = [os.environ.get("PROMETHEUS_BIN"), str(_unpacked())]
        candidates.append(shutil.which("prometheus"))
        for candidate in candidates:
            if candidate and os.access(candidate, os.X_OK):
                return candidate
        if attempt == 0:
            subprocess.run(["bash", str(ENSURE)], check=False, timeout=600)
    raise RuntimeError(
        "Prometheus is not installed and scripts/ensure-prometheus.sh could not install it"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Prometheus:
    """A running Prometheus on loopback with its own data folder."""

    process: subprocess.Popen[bytes]
    port: int
    folder: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @staticmethod
    def start(folder: Path, config: str, *, timeout: float = 60.0) -> Prometheus:
        """Start Prometheus with ``config`` (YAML; ``{port}`` is replaced by its own port)
        and wait until it is ready."""
        folder.mkdir(parents=True, exist_ok=True)
        port = free_port()
        (folder / "prometheus.yml").write_text(config.replace("{port}", str(port)))
        log = open(folder / "prometheus.log", "wb")  # noqa: SIM115 - the child keeps it open
        process = subprocess.Popen(
            [
                prometheus_binary(),
                f"--config.file={folder / 'prometheus.yml'}",
                f"--storage.tsdb.path={folder / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=info",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        prometheus = Prometheus(process, port, folder)
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{prometheus.url}/-/ready", timeout=2) as answer:
                    if answer.status == 200:
                        return prometheus
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                prometheus.stop()
                raise RuntimeError(f"Prometheus did not start: {prometheus.log()[-3000:]}")
            time.sleep(0.1)

    def log(self) -> str:
        return (self.folder / "prometheus.log").read_text(errors="replace")

    def api(self, path: str, **params: str | float) -> Any:
        """The ``data`` of a successful answer of the HTTP API (``/api/v1/...``)."""
        query = urllib.parse.urlencode({k: str(v) for k, v in params.items()})
        url = f"{self.url}/api/v1/{path}?{query}"
        try:
            with urllib.request.urlopen(url, timeout=60) as answer:
                payload = json.load(answer)
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"{url}: {exc.code} {exc.read()[:2000]!r}") from None
        assert payload["status"] == "success", payload
        return payload["data"]

    def query(self, promql: str, at: float) -> Any:
        return self.api("query", query=promql, time=at)

    def query_range(self, promql: str, start: float, end: float, step: float) -> Any:
        return self.api("query_range", query=promql, start=start, end=end, step=step)

    def scalar(self, promql: str, at: float | None = None) -> float | None:
        """The value of a query with one result (None when it has none)."""
        data = self.query(promql, time.time() if at is None else at)
        if not data["result"]:
            return None
        return float(data["result"][0]["value"][1])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
