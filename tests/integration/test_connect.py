"""``tempodb.connect``: the Client API in-process (issue 19).

Every example of the original documentation runs again here through ``connect(":memory:")``
(the seed tests, imported with in-process fixtures); a real server process on a copy of the
same data gives the same answers, byte for byte; and the one-writer lock, read-only mode and
the round trip with ``tempodb serve`` are checked with real processes.
"""

from __future__ import annotations

import datetime
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# The documentation's examples, collected again in this module with the fixtures below.
from test_seed_examples import (  # noqa: F401
    test_create_series,
    test_delete_id,
    test_delete_key,
    test_delete_series,
    test_get_series,
    test_increment_bulk,
    test_increment_id,
    test_increment_key,
    test_increment_multi,
    test_increment_multi_partial_failure_returns_multistatus,
    test_read_id_daily_min,
    test_read_key_daily_min,
    test_read_multi_series_hourly_max,
    test_update_series,
    test_write_bulk,
    test_write_id,
    test_write_key,
    test_write_multi,
    test_write_multi_partial_failure_returns_multistatus,
)

import tempodb
from serverproc import ServerProcess, create_key, data_args, tempodb_command
from tempodb import (
    AuthenticationError,
    BatchWriteError,
    Client,
    ConflictError,
    DataPoint,
    InvalidRequestError,
    NotFoundError,
    TempoDBConnectionError,
)
from tempodb.protocol import Request, Response
from tempodb.storage.sqlite.lock import FolderLocked

UTC = datetime.UTC
DAY = (datetime.datetime(2012, 1, 1), datetime.datetime(2012, 1, 2))


@pytest.fixture
def client() -> Iterator[Client]:
    """An in-process client on a fresh private store (the seed tests' ``client``)."""
    with tempodb.connect(":memory:") as c:
        yield c


@pytest.fixture
def run(client: Client) -> Any:
    """Run a documentation example with its ``Client(...)`` replaced by the test's client."""

    def run_example(code: str) -> dict[str, Any]:
        code = code.replace('Client("api-key", "api-secret")', "__connected__")
        namespace: dict[str, Any] = {"__connected__": client}
        exec(compile(code, "<seed example>", "exec"), namespace)
        return namespace

    return run_example


# -- the same answers as the server ---------------------------------------------------------


def _answer(client: Client, method: str, path: str, params: Any = (), body: Any = None) -> Any:
    """What the transport got back, unparsed: status, body and the headers the client reads."""
    raw = None if body is None else json.dumps(body).encode()
    request: Request[Any] = Request(method, path, lambda s, b: (s, b), list(params), raw)
    response = client._transmit(request)
    assert isinstance(response, Response)
    return response


def _fill(client: Client) -> None:
    """Series with tags and attributes, and points over two months."""
    for number in range(3):
        client.create_series(
            f"boiler.{number}",
            name=f"Boiler {number}",
            tags=["boiler", f"floor-{number % 2}"],
            attributes={"site": "north" if number else "south"},
        )
        start = datetime.datetime(2012, 1, 1, tzinfo=UTC)
        points = [
            DataPoint(start + datetime.timedelta(minutes=37 * i), (i * (number + 1)) % 97 / 4)
            for i in range(2000)
        ]
        points.append(DataPoint(start - datetime.timedelta(days=1), 7))  # an integer
        client.write_key(f"boiler.{number}", points)


EXCHANGES: list[tuple[str, str, list[tuple[str, str]], Any]] = [
    ("GET", "/series/", [], None),
    ("GET", "/series/", [("tag", "floor-1"), ("attr[site]", "north")], None),
    ("GET", "/series/key/boiler.1/", [], None),
    ("GET", "/series/key/boiler.1/data/", [("start", "2012-01-01"), ("end", "2012-01-03")], None),
    (
        "GET",
        "/data/",
        [("start", "2011-12-31"), ("end", "2012-02-15"), ("tag", "boiler"), ("interval", "1day")],
        None,
    ),
    (
        "GET",
        "/series/key/boiler.2/data/",
        [
            ("start", "2012-01-01"),
            ("end", "2012-03-01"),
            ("interval", "1hour"),
            ("function", "stddev"),
            ("tz", "America/Chicago"),
        ],
        None,
    ),
    ("GET", "/single/", [("ts", "2012-01-05T10:00:00Z"), ("direction", "nearest")], None),
    ("GET", "/series/key/boiler.0/single/", [("ts", "2011-12-31T00:00:00.000Z")], None),
    # errors: their status, message and X-TempoDB-Error code
    ("GET", "/series/key/missing/data/", [("start", "2012-01-01"), ("end", "2012-01-02")], None),
    (
        "GET",
        "/series/key/boiler.0/data/",
        [("start", "2012-01-01"), ("end", "2012-01-02"), ("interval", "1fortnight")],
        None,
    ),
    ("GET", "/data/", [("start", "2012-01-02"), ("end", "2012-01-01")], None),
    ("GET", "/no/such/route/", [], None),
    ("PATCH", "/series/", [], None),
    ("POST", "/series/", [], {"key": "boiler.0"}),
    ("POST", "/series/key/boiler.0/data/", [], [{"t": "2012-01-01T00:00:00Z", "v": "x"}]),
    # a 207, then writes, deletes and what they leave
    (
        "POST",
        "/multi/",
        [],
        [
            {"t": "2012-03-01T00:00:00Z", "key": "boiler.1", "v": 1.25},
            {"t": "2012-03-01T00:00:00Z", "v": 2},
            {"t": "2012-03-01T00:00:00Z", "key": "boiler.2"},
        ],
    ),
    ("POST", "/series/key/boiler.0/increment/", [], [{"t": "2011-12-31T00:00:00Z", "v": 5}]),
    (
        "DELETE",
        "/series/key/boiler.2/data/",
        [("start", "2012-01-10"), ("end", "2012-02-01")],
        None,
    ),
    (
        "GET",
        "/data/",
        [
            ("start", "2011-12-31"),
            ("end", "2012-03-02"),
            ("interval", "1week"),
            ("function", "sum"),
        ],
        None,
    ),
    ("DELETE", "/series/", [("key", "boiler.1")], None),
    ("GET", "/series/", [], None),
]


def test_answers_equal_the_servers_on_the_same_data(tmp_path: Path) -> None:
    embedded, served = tmp_path / "embedded", tmp_path / "served"
    key, secret = create_key(data_args(embedded))
    with tempodb.connect(embedded) as client:
        assert client.key == key  # the folder's only database
        _fill(client)
    shutil.copytree(embedded, served)
    server = ServerProcess.start(data_args(served))
    try:
        with (
            tempodb.connect(embedded) as inprocess,
            Client(key, secret, host=server.host, port=server.port, secure=False) as http,
        ):
            for method, path, params, body in EXCHANGES:
                here = _answer(inprocess, method, path, params, body)
                there = _answer(http, method, path, params, body)
                assert here == there, (method, path, params)
            statuses = [_answer(inprocess, *exchange).status for exchange in EXCHANGES]
            assert {200, 207, 400, 403, 404, 405, 409} <= set(statuses)
    finally:
        assert server.stop() == 0


# -- the client API in-process ---------------------------------------------------------------


def test_exceptions_are_the_clients(client: Client) -> None:
    client.create_series("a")
    with pytest.raises(ConflictError):
        client.create_series("a")
    with pytest.raises(NotFoundError, match="Series not found"):
        client.read_key("nope", *DAY)
    with pytest.raises(InvalidRequestError) as bad:
        client.read_key("a", *DAY, interval="1fortnight")
    assert bad.value.status == 400
    with pytest.raises(ValueError, match="regex"):
        client.write_key("a|b", [])


def test_dataframes_round_trip(client: Client) -> None:
    pd = pytest.importorskip("pandas")
    index = pd.date_range("2012-01-01", periods=500, freq="min", tz="Europe/Paris")
    df = pd.DataFrame({"x": range(500), "y": [i / 8 for i in range(500)]}, index=index)
    client.write_dataframe(df, chunk_size=128)
    back = client.read_dataframe(
        index[0], index[-1] + pd.Timedelta("1min"), interval="raw", tz="Europe/Paris"
    )
    assert (back.index == index).all()
    assert back["x"].tolist() == list(range(500))
    assert back["y"].tolist() == [i / 8 for i in range(500)]
    assert str(back["x"].dtype) == "int64"


def test_batch_writer(client: Client) -> None:
    with client.batch_writer(batch_size=50, flush_interval=0.05) as writer:
        for i in range(120):
            writer.add(f"s{i % 3}", DAY[0] + datetime.timedelta(minutes=i), i)
    assert [len(client.read_key(f"s{k}", *DAY).data) for k in range(3)] == [40, 40, 40]
    writer = client.batch_writer(increment=True, flush_interval=0.05)
    writer.add("ok", DAY[0], 1)
    client.create_series("taken")
    writer.add_id("taken", DAY[0], 1)  # another series' key: refused by the server's handler
    with pytest.raises(BatchWriteError) as failure:
        writer.close()
    assert failure.value.points == [{"t": DAY[0], "id": "taken", "v": 1}]
    assert client.read_key("ok", *DAY).data[0].value == 1


def test_memory_stores_are_private_and_removed_on_close() -> None:
    first, second = tempodb.connect(":memory:"), tempodb.connect(":memory:")
    first.write_key("a", [DataPoint(DAY[0], 1)])
    assert second.get_series() == []
    folder = first.folder
    assert folder.is_dir()
    first.close()
    second.close()
    assert not folder.exists()
    with pytest.raises(TempoDBConnectionError, match="closed"):
        first.get_series()
    with pytest.raises(ValueError, match="read-only"):
        tempodb.connect(":memory:", read_only=True)


def test_the_database_of_a_folder(tmp_path: Path) -> None:
    with tempodb.connect(tmp_path) as client:  # an empty folder gets a "default" database
        client.write_key("mine", [DataPoint(DAY[0], 1)])
        default = client.key
    other, _ = create_key(data_args(tmp_path), "--name", "other")
    with tempodb.connect(tmp_path) as client:  # two now: the one named "default"
        assert client.key == default
        assert [s.key for s in client.get_series()] == ["mine"]
    with tempodb.connect(tmp_path, key=other) as client:
        assert client.get_series() == []
    with pytest.raises(ValueError, match="no database with key"):
        tempodb.connect(tmp_path, key="nope")
    subprocess.run(tempodb_command("keys", "revoke", other, "--data", str(tmp_path)), check=True)
    with pytest.raises(ValueError, match="revoked"):
        tempodb.connect(tmp_path, key=other)
    third, _ = create_key(data_args(tmp_path), "--name", "third")
    subprocess.run(tempodb_command("keys", "delete", default, "--data", str(tmp_path)), check=True)
    with tempodb.connect(tmp_path) as client:  # the only live one
        assert client.key == third
    create_key(data_args(tmp_path), "--name", "fourth")
    with pytest.raises(ValueError, match="pass key="):
        tempodb.connect(tmp_path)  # two live databases, none named "default"


# -- one writer per folder, read-only beside it, and the round trip with `tempodb serve` -----

HOLDER = """
import datetime, sys, tempodb
client = tempodb.connect(sys.argv[1])
client.write_key("held", [(datetime.datetime(2012, 1, 1), 7)])
print("ready", flush=True)
sys.stdin.readline()
client.close()
"""


def test_a_second_writer_is_refused_with_the_holders_pid(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "ready\n"
        with pytest.raises(FolderLocked) as refused:
            tempodb.connect(tmp_path)
        assert refused.value.pid == holder.pid
        assert str(tmp_path) in str(refused.value)
        assert f"process {holder.pid}" in str(refused.value)
        served = subprocess.run(
            tempodb_command("serve", "--data", str(tmp_path), "--port", "0"),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert served.returncode != 0
        assert f"process {holder.pid}" in served.stderr
        assert str(tmp_path) in served.stderr
        with tempodb.connect(tmp_path, read_only=True) as reader:  # reads beside the writer
            assert reader.read_key("held", *DAY).data[0].value == 7
            with pytest.raises(AuthenticationError, match="read-only") as denied:
                reader.write_key("held", [DataPoint(DAY[0], 8)])
            assert denied.value.status == 403
            assert reader.read_key("held", *DAY).data[0].value == 7
    finally:
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.close()
        assert holder.wait(timeout=30) == 0
        assert holder.stdout is not None
        holder.stdout.close()
    with tempodb.connect(tmp_path) as client:  # free again once the holder is gone
        client.write_key("held", [DataPoint(DAY[0], 9)])


def test_a_running_server_holds_the_folder_and_keys_still_work(tmp_path: Path) -> None:
    key, secret = create_key(data_args(tmp_path))
    server = ServerProcess.start(data_args(tmp_path))
    try:
        with pytest.raises(FolderLocked) as refused:
            tempodb.connect(tmp_path)
        assert refused.value.pid == server.process.pid
        with Client(key, secret, host=server.host, port=server.port, secure=False) as http:
            http.write_key("over-http", [DataPoint(DAY[0], 1.5)])
            # the short key commands open the store without the lock, beside the server
            second, second_secret = create_key(data_args(tmp_path))
            listed = subprocess.run(
                tempodb_command("keys", "list", "--data", str(tmp_path)),
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            assert key in listed
            assert second in listed
            with Client(
                second, second_secret, host=server.host, port=server.port, secure=False
            ) as other:
                assert other.get_series() == []
            with tempodb.connect(tmp_path, read_only=True, key=key) as reader:
                assert reader.read_key("over-http", *DAY).data[0].value == 1.5
                http.write_key("over-http", [DataPoint(DAY[0], 2.5)])  # the same block again
                assert reader.read_key("over-http", *DAY).data[0].value == 2.5
                http.delete_series(keys=["over-http"])
                assert reader.get_series() == []
    finally:
        assert server.stop() == 0


def test_round_trip_between_connect_and_serve(tmp_path: Path) -> None:
    key, secret = create_key(data_args(tmp_path))
    with tempodb.connect(tmp_path) as client:
        client.write_key("written-in-process", [DataPoint(DAY[0], 1)])
    server = ServerProcess.start(data_args(tmp_path))
    try:
        with Client(key, secret, host=server.host, port=server.port, secure=False) as http:
            assert http.read_key("written-in-process", *DAY).data[0].value == 1
            http.write_key("written-over-http", [DataPoint(DAY[0], 2)])
    finally:
        assert server.stop() == 0
    with tempodb.connect(tmp_path) as client:
        assert client.read_key("written-over-http", *DAY).data[0].value == 2
        assert [s.key for s in client.get_series()] == ["written-in-process", "written-over-http"]


def test_connect_loads_no_http_server() -> None:
    """What ``tempodb-revived[embedded]`` installs is enough: no uvicorn, httptools, uvloop or
    httpx."""
    code = (
        "import sys, datetime, tempodb\n"
        "with tempodb.connect(':memory:') as c:\n"
        "    c.write_key('a', [(datetime.datetime(2012, 1, 1), 1)])\n"
        "    assert c.read_key('a', datetime.date(2012, 1, 1), datetime.date(2012, 1, 2)).data\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in"
        " ('uvicorn', 'httptools', 'uvloop', 'httpx', 'h11')]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_read_only_needs_an_existing_store(tmp_path: Path) -> None:
    from tempodb.storage.base import StorageError

    with pytest.raises(StorageError, match="no tempodb data"):
        tempodb.connect(tmp_path / "missing", read_only=True)
    assert not (tmp_path / "missing").exists()


# -- the CLI's data commands in-process (--data DIR) ------------------------------------------


def _cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        tempodb_command(*args), input=stdin, capture_output=True, text=True, timeout=120
    )


def test_cli_data_commands_work_in_process(tmp_path: Path) -> None:
    folder = str(tmp_path / "data")
    csv = "time,value\n2012-01-01T00:00:00Z,1.5\n2012-01-01T01:00:00Z,2\n"
    written = _cli("write", "temp.1", "--data", folder, stdin=csv)
    assert written.returncode == 0, written.stderr
    read = _cli("read", "temp.1", "--start", "2012-01-01", "--end", "2012-01-02")
    assert read.returncode != 0  # no server named, none running: --data is what made it work
    read = _cli("read", "temp.1", "--start", "2012-01-01", "--end", "2012-01-02", "--data", folder)
    assert read.returncode == 0, read.stderr
    assert "count=2" in read.stdout
    exported = _cli("export", "--start", "2012-01-01", "--end", "2012-01-02", "--data", folder)
    assert exported.stdout.splitlines()[1:] == [
        "temp.1,2012-01-01T00:00:00.000Z,1.5",
        "temp.1,2012-01-01T01:00:00.000Z,2",
    ]
    key, secret = create_key(data_args(folder))
    with tempodb.connect(folder) as client:  # "default" among the two databases
        assert [s.key for s in client.get_series()] == ["temp.1"]
    server = ServerProcess.start(data_args(folder))
    try:
        listed = _cli("series", "list", "--data", folder)  # read-only beside the server
        assert listed.returncode == 0, listed.stderr
        assert listed.stdout.startswith("temp.1")
        refused = _cli("write", "temp.1", "--data", folder, stdin=csv)
        assert refused.returncode == 2
        assert f"process {server.process.pid}" in refused.stderr
        with Client(key, secret, host=server.host, port=server.port, secure=False) as http:
            assert http.get_series() == []  # the key's own database, not the default one
    finally:
        assert server.stop() == 0
