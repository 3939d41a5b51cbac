"""The embedded store on a full disk (issue 20): the data folder lives on a small tmpfs that
the test mounts (the tests run as root, as in CI).  Writes that do not fit get ``507`` saying
the disk is full, nothing acknowledged is lost, reads keep working, and once space is freed
writes work again without a restart; ``PRAGMA integrity_check`` is ``ok`` afterwards."""

from __future__ import annotations

import datetime
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from rawhttp import Raw

from serverproc import ServerProcess, create_key, data_args
from tempodb.storage.sqlite import FILE_NAME

SIZE_MB = 6
BATCH = 500
T0 = 1_325_376_000_000  # 2012-01-01


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.fail("the disk-full test mounts a tmpfs: run the tests as root (CI does)")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SIZE_MB}m,mode=0700", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs for the disk-full test: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _points(batch: int) -> list[dict[str, object]]:
    base = T0 + batch * BATCH * 1000
    return [{"t": _iso(base + i * 1000), "v": batch * BATCH + i + 0.5} for i in range(BATCH)]


def _iso(ms: int) -> str:
    moment = datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_a_full_disk_refuses_writes_and_loses_nothing(small_disk: Path) -> None:
    ballast = small_disk / "ballast"
    ballast.write_bytes(os.urandom(1024 * 1024))  # freed later, to make room again
    store = data_args(small_disk / "data")
    credentials = create_key(store)
    server = ServerProcess.start(store)
    try:
        raw = Raw(server.host, server.port, credentials)
        acknowledged: list[float] = []
        refused = None
        for batch in range(2000):
            points = _points(batch)
            # Each batch to its own series too: new rows, new pages, until nothing fits.
            reply = raw.request("POST", "/v1/series/key/s/data/", points)
            other = raw.request("POST", f"/v1/series/key/s{batch}/data/", points[:50])
            if reply.status == 200:
                acknowledged.extend(p["v"] for p in points)  # type: ignore[misc]
            if reply.status != 200 or other.status != 200:
                refused = reply if reply.status != 200 else other
                break
        assert refused is not None, "the disk never filled"
        assert refused.status == 507, refused.text
        assert "disk is full" in refused.text
        assert refused.headers.get("retry-after")
        assert acknowledged, "nothing fitted at all"

        # Reads keep working, and every acknowledged point is there.
        def stored() -> list[float]:
            read = raw.request(
                "GET", "/v1/series/key/s/data/?start=2012-01-01&end=2013-01-01&interval=raw"
            )
            assert read.status == 200, read.text
            return [p["v"] for p in read.json()["data"]]

        assert stored() == acknowledged  # the refused request wrote nothing
        assert raw.request("GET", "/v1/series/?key=s").status == 200

        # Room again: the same server writes again, without a restart.
        ballast.unlink()
        points = _points(10_000)
        reply = raw.request("POST", "/v1/series/key/s/data/", points)
        assert reply.status == 200, reply.text
        assert stored()[-BATCH:] == [p["v"] for p in points]
    finally:
        assert server.stop() == 0
    with sqlite3.connect(small_disk / "data" / FILE_NAME) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
