"""``tempodb backup``: a consistent copy taken while the server runs and clients write, then
restored (served) and checked: every write acknowledged before the backup began is in it with
its exact value, every request in it is whole, and the keys (a revoked one too) come along."""

from __future__ import annotations

import datetime
import shutil
import sqlite3
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from rawhttp import Raw

from serverproc import ServerProcess, create_key, data_args, tempodb_command
from tempodb.storage.base import SeriesFilter
from tempodb.storage.sqlite import FILE_NAME, SQLiteStore

T0 = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
WRITERS = 4


def tempodb(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(tempodb_command(*args), capture_output=True, text=True, check=False)


def stamp(n: int) -> str:
    return (T0 + datetime.timedelta(seconds=n)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


@dataclass
class Written:
    """One request: two points (one in each of two series) with the same value."""

    n: int
    keys: tuple[str, str]
    acknowledged_at: float


def read_all(raw: Raw) -> dict[tuple[str, str], int]:
    found: dict[tuple[str, str], int] = {}
    for series in raw.request("GET", "/v1/series/").json():
        path = f"/v1/series/key/{series['key']}/data/"
        reply = raw.request("GET", f"{path}?start=2019-01-01&end=2030-01-01&interval=raw")
        assert reply.status == 200
        for point in reply.json()["data"]:
            found[(series["key"], point["t"])] = point["v"]
    return found


def test_backup_while_writing_then_restore(tmp_path: Path) -> None:
    data, out = tmp_path / "data", tmp_path / "backup"
    store = data_args(data)
    credentials = create_key(store)
    revoked = create_key(store)
    server = ServerProcess.start(store)
    raw = Raw(server.host, server.port, credentials)
    gone = raw.as_(revoked)
    assert gone.request("POST", "/v1/series/key/old/data/", [{"t": stamp(0), "v": 1}]).status == 200
    assert tempodb("keys", "revoke", revoked[0], *store).returncode == 0
    written: list[Written] = []
    stop = threading.Event()

    def writer(index: int) -> None:
        conn = raw.connection()
        n = index
        while not stop.is_set():
            keys = (f"w{index}-a", f"w{index}-b")
            body = [{"t": stamp(n), "key": key, "v": n} for key in keys]
            assert raw.request("POST", "/v1/multi/", body, conn=conn).status == 200
            written.append(Written(n, keys, time.monotonic()))
            n += WRITERS

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(WRITERS)]
    try:
        for thread in threads:
            thread.start()
        time.sleep(0.5)
        began = time.monotonic()
        backup = tempodb("backup", "--data", str(data), str(out))
        time.sleep(0.2)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        server.stop()
    assert backup.returncode == 0, backup.stderr
    assert "backed up" in backup.stdout
    assert not list(out.glob("*.partial"))
    with sqlite3.connect(out / FILE_NAME) as copy:
        assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)

    restored = ServerProcess.start(data_args(out))
    try:
        found = read_all(Raw(restored.host, restored.port, credentials))
        assert (
            Raw(restored.host, restored.port, revoked).request("GET", "/v1/series/").status == 403
        )
    finally:
        restored.stop()
    before = [w for w in written if w.acknowledged_at < began]
    assert len(before) > 10
    for w in before:
        for key in w.keys:
            assert found.get((key, stamp(w.n))) == w.n, f"request {w.n} missing from the backup"
    by_n = {w.n: w for w in written}
    for (key, t), value in found.items():
        assert value in by_n, f"{key} {t} = {value} was never written"
        assert all((other, t) in found for other in by_n[value].keys), "half a request"
    assert len(found) < 2 * len(written)  # the writes after the backup are not in it
    # The revoked key's data is kept in the backup.
    with SQLiteStore(out) as copy_store:
        (database,) = [d for d in copy_store.list_databases() if d.key == revoked[0]]
        assert database.revoked
        assert [s.key for s in copy_store.find_series(database.id, SeriesFilter())] == ["old"]
    print(f"\nbackup: {len(found) // 2} requests in the copy, {len(before)} acknowledged before it")


def test_backup_refuses_to_overwrite_or_copy_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    create_key(data_args(data))
    assert tempodb("backup", "--data", str(data), str(tmp_path / "one")).returncode == 0
    again = tempodb("backup", "--data", str(data), str(tmp_path / "one"))
    assert again.returncode == 1
    assert "exists already" in again.stderr
    missing = tempodb("backup", "--data", str(tmp_path / "nothing"), str(tmp_path / "two"))
    assert missing.returncode == 1
    assert "no tempodb data" in missing.stderr
    assert not (tmp_path / "nothing").exists()


def test_backup_of_a_store_with_every_kind_of_content_then_restore(tmp_path: Path) -> None:
    """Issue 25: a store with tags, attributes, integers, floats, increments and a deleted
    range is backed up by ``tempodb backup`` (on this platform's SQLite, whose integrity check
    failed every store with a tag) and the copy, served, answers exactly as the original."""
    data, out = tmp_path / "data", tmp_path / "backup"
    store = data_args(data)
    credentials = create_key(store)
    server = ServerProcess.start(store)
    try:
        raw = Raw(server.host, server.port, credentials)
        created = [
            {"key": "room.1", "name": "Room one", "tags": ["t", "温度"], "attributes": {"a": "1"}},
            {"key": "room.2", "tags": ["t"], "attributes": {"a": "2", "floor": "3"}},
            {"key": "plain"},
        ]
        for series in created:
            assert raw.request("POST", "/v1/series/", series).status == 200
        points = [{"t": stamp(n), "v": v} for n, v in enumerate([1, 2.5, -3, 2**53, 1e300, 0.1])]
        for key in ("room.1", "room.2", "plain"):
            reply = raw.request("POST", f"/v1/series/key/{key}/data/", points)
            assert reply.status == 200, reply.text
        increment = [{"t": stamp(0), "v": 41}, {"t": stamp(100), "v": 0.5}]
        assert raw.request("POST", "/v1/series/key/room.1/increment/", increment).status == 200
        deleted = raw.request(
            "DELETE", f"/v1/series/key/room.2/data/?start={stamp(1)}&end={stamp(3)}"
        )
        assert deleted.status == 200, deleted.text
        before = read_all(raw)
        series_before = raw.request("GET", "/v1/series/").json()
        tagged_before = raw.request("GET", "/v1/series/?tag=t&attr[a]=2").json()
        backup = tempodb("backup", "--data", str(data), str(out))
    finally:
        server.stop()
    assert backup.returncode == 0, backup.stderr
    assert "backed up" in backup.stdout
    assert before[("room.1", stamp(0))] == 42
    assert before[("room.1", stamp(3))] == 2**53
    assert ("room.2", stamp(1)) not in before
    assert ("room.2", stamp(3)) in before
    for path in (data / FILE_NAME, out / FILE_NAME):
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)], path

    restored = ServerProcess.start(data_args(out))
    try:
        raw = Raw(restored.host, restored.port, credentials)
        assert read_all(raw) == before
        assert raw.request("GET", "/v1/series/").json() == series_before
        assert raw.request("GET", "/v1/series/?tag=t&attr[a]=2").json() == tagged_before
        assert [s["key"] for s in tagged_before] == ["room.2"]
        # The restored store takes writes, and tags still filter.
        assert raw.request("POST", "/v1/series/key/room.2/data/", points[:1]).status == 200
        [plain] = [s for s in series_before if s["key"] == "plain"]
        updated = {**plain, "tags": ["t", "new"]}
        assert raw.request("PUT", f"/v1/series/id/{plain['id']}/", updated).status == 200
        assert len(raw.request("GET", "/v1/series/?tag=t").json()) == 3
    finally:
        restored.stop()
    assert tempodb("backup", "--data", str(out), str(tmp_path / "again")).returncode == 0


def _store_with_points(data: Path, series: int = 40) -> None:
    """A store with enough series and blocks to fill many pages."""
    import numpy as np

    from tempodb.storage.base import SeriesRef, WriteBatch

    with SQLiteStore(data) as store:
        db = store.create_database("pages").key
        (database,) = [d for d in store.list_databases() if d.key == db]
        refs = [SeriesRef("key", f"s{i}") for i in range(series)]
        count = 500
        store.write_points(
            database.id,
            WriteBatch(
                refs,
                np.repeat(np.arange(series, dtype=np.int32), count),
                np.tile(np.arange(count, dtype=np.int64) * 1000, series),
                np.arange(series * count, dtype=np.float64),
                np.zeros(series * count, np.bool_),
            ),
        )


def test_backup_refuses_a_copy_that_fails_its_check(tmp_path: Path) -> None:
    """A page of the source damaged where SQLite can still open the file: the copy fails
    ``quick_check``, the command says so, and no backup is left behind."""
    data = tmp_path / "data"
    _store_with_points(data)
    path = data / FILE_NAME
    with sqlite3.connect(path) as conn:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert pages > 10
    damaged = bytearray(path.read_bytes())
    last = (pages - 1) * page_size  # a b-tree page of the points, not the schema's page 1
    damaged[last : last + 8] = b"\xff" * 8  # its page type and cell count: nonsense
    path.write_bytes(bytes(damaged))
    out = tmp_path / "copy"
    done = tempodb("backup", "--data", str(data), str(out))
    assert done.returncode == 1, done.stdout
    assert "failed its check" in done.stderr
    assert not (out / FILE_NAME).exists()
    assert list(out.iterdir()) == []  # not even the partial copy


def test_backup_flushes_the_copy_before_renaming_it(tmp_path: Path) -> None:
    """Watched with strace: the copy is fsync'ed under its temporary name before the rename
    that makes it the backup, then the folder holding it."""
    strace = shutil.which("strace")
    assert strace, "strace is needed: scripts/ensure-strace.sh (make test runs it)"
    data = tmp_path / "data"
    create_key(data_args(data))
    out = tmp_path / "copy"
    trace = tmp_path / "trace"
    done = subprocess.run(
        [
            strace,
            "-f",
            "-qq",
            "-o",
            str(trace),
            "-e",
            "trace=openat,fsync,fdatasync,rename",
            *tempodb_command("backup", "--data", str(data), str(out)),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    calls = [line.split(None, 1)[1] for line in trace.read_text().splitlines() if " " in line]
    partial = str(out / FILE_NAME) + ".partial"
    opened = {
        int(call.rsplit("= ", 1)[1]): i
        for i, call in enumerate(calls)
        if call.startswith("openat(") and f'"{partial}"' in call and "= -1" not in call
    }
    (renamed,) = [i for i, call in enumerate(calls) if call.startswith(f'rename("{partial}"')]
    synced = [
        i
        for i, call in enumerate(calls)
        if call.startswith(("fsync(", "fdatasync("))
        and any(
            call.startswith((f"fsync({fd})", f"fdatasync({fd})")) and at < i
            for fd, at in opened.items()
        )
    ]
    assert any(i < renamed for i in synced), "the copy was not flushed before the rename"
    folder = [
        int(call.rsplit("= ", 1)[1])
        for call in calls[renamed:]
        if call.startswith("openat(") and f'"{out}"' in call and "= -1" not in call
    ]
    assert any(call.startswith(f"fsync({fd})") for fd in folder for call in calls[renamed:]), (
        "the folder was not flushed after the rename"
    )
