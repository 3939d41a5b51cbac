"""Processes the benchmark starts: waiting for a port, memory figures, folder sizes."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    """Wait until ``url`` answers (any status below 500)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status < 500:
                    return
        except urllib.error.HTTPError as error:
            if error.code < 500:
                return
        except OSError:
            pass
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with status {process.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")
        time.sleep(0.05)


def stop(process: subprocess.Popen[bytes] | None, timeout: float = 60.0) -> None:
    """SIGTERM, then SIGKILL if it does not exit in time."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _status_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def peak_rss_mb(pid: int) -> float:
    """The largest resident set of the process since it started (or since ``reset_peak``)."""
    return _status_kib(pid, "VmHWM") / 1024


def rss_mb(pid: int) -> float:
    """The resident set of the process now."""
    return _status_kib(pid, "VmRSS") / 1024


def reset_peak(pid: int) -> None:
    """Start measuring the peak resident set afresh (Linux: ``clear_refs`` 5)."""
    with contextlib.suppress(OSError), open(f"/proc/{pid}/clear_refs", "w") as refs:
        refs.write("5")


def folder_bytes(folder: Path) -> int:
    """Bytes of the files under ``folder`` (apparent sizes)."""
    total = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def settle(measure: Callable[[], int], quiet: float = 3.0, timeout: float = 120.0) -> int:
    """Poll ``measure()`` until it has not changed for ``quiet`` seconds; the last value."""
    deadline = time.monotonic() + timeout
    last, since = measure(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.5)
        value = measure()
        if value != last:
            last, since = value, time.monotonic()
        elif time.monotonic() - since >= quiet:
            break
    return last
