"""InfluxDB line-protocol writes against a real server process: the official Python clients
(``influxdb`` for ``/write``, ``influxdb-client`` for ``/api/v2/write``), raw requests for the
exact answers, and the same bodies sent to a real InfluxDB 1.6 (``influxd``, started here on
loopback as the benchmark starts it) giving the same answers.

Every write is checked by reading the series back through the v1 API (the real tempodb
client), so a point reported stored is really there with its value, type and attributes, and
a refused line really stored nothing.
"""

from __future__ import annotations

import base64
import gzip
import json
import shutil
import socket
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import influxdb
import influxdb_client
import pytest
import urllib3
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.rest import ApiException

from tempodb import Client
from tempodb.server.influx.names import series_key

START = datetime(1960, 1, 1, tzinfo=UTC)
END = datetime(2100, 1, 1, tzinfo=UTC)
T0_MS = 1_700_000_000_123  # 2023-11-14T22:13:20.123Z


@dataclass
class Answer:
    status: int
    body: bytes
    headers: dict[str, str]

    @property
    def error(self) -> str | None:
        if not self.body.strip():
            return None
        return str(json.loads(self.body).get("error"))


class Wire:
    """Raw requests to one server: exact statuses, headers and bodies."""

    def __init__(self, url: str, credentials: tuple[str, str] | None = None) -> None:
        self.url = url
        self.credentials = credentials
        self.pool = urllib3.PoolManager()

    def request(
        self,
        method: str,
        path: str,
        body: bytes | str = b"",
        *,
        headers: dict[str, str] | None = None,
        basic: bool = True,
        gzipped: bool = False,
    ) -> Answer:
        data = body.encode() if isinstance(body, str) else body
        sent = dict(headers or {})
        if basic and self.credentials is not None:
            token = base64.b64encode(":".join(self.credentials).encode()).decode()
            sent["Authorization"] = f"Basic {token}"
        if gzipped:
            data = gzip.compress(data)
            sent["Content-Encoding"] = "gzip"
        response = self.pool.request(
            method, self.url + path, body=data or None, headers=sent, retries=False
        )
        return Answer(
            response.status, response.data, {k.lower(): v for k, v in response.headers.items()}
        )

    def write(self, body: bytes | str, query: str = "", **kwargs: Any) -> Answer:
        return self.request("POST", f"/write?db=mydb{query}", body, **kwargs)


@pytest.fixture
def wire(server: Any, credentials: tuple[str, str]) -> Wire:
    return Wire(server.url, credentials)


def points_of(client: Client, key: str) -> list[tuple[int, Any]]:
    """(epoch ms, value) of every point of the series ``key``, values as the wire gives them."""
    data = client.read_key(key, START, END, interval="raw").data
    return [(round(p.ts.timestamp() * 1000), p.value) for p in data]


def ms(dt: datetime) -> int:
    return round(dt.timestamp() * 1000)


# -- /ping ---------------------------------------------------------------------------------------


def test_ping_answers_as_influxdb_without_credentials(server: Any) -> None:
    wire = Wire(server.url)
    for method in ("GET", "HEAD"):
        answer = wire.request(method, "/ping")
        assert answer.status == 204
        assert answer.body == b""
        assert answer.headers["x-influxdb-version"].startswith("1.")
    verbose = wire.request("GET", "/ping?verbose=true")
    assert verbose.status == 200
    assert json.loads(verbose.body)["version"].startswith("1.")
    # The official 1.x client reads the version from the header.
    assert influxdb.InfluxDBClient(server.host, server.port).ping().startswith("1.")


# -- the official clients ------------------------------------------------------------------------


def test_influxdb_client_writes_points_read_back_through_v1(
    server: Any, credentials: tuple[str, str], client: Client
) -> None:
    key, secret = credentials
    influx = influxdb.InfluxDBClient(
        server.host, server.port, username=key, password=secret, database="telegraf"
    )
    body = [
        {
            "measurement": "cpu",
            "tags": {"host": "web-1", "region": "eu west"},
            "time": T0_MS,
            "fields": {"usage_idle": 98.5, "procs": 12, "healthy": True},
        },
        {
            "measurement": "cpu",
            "tags": {"host": "web-1", "region": "eu west"},
            "time": T0_MS + 1000,
            "fields": {"usage_idle": 97.25, "procs": 13, "healthy": False},
        },
    ]
    assert influx.write_points(body, time_precision="ms", retention_policy="autogen")
    base = (("host", "web-1"), ("region", "eu west"))
    idle = series_key("cpu", base, "usage_idle")
    assert idle == "cpu.usage_idle;host:web-1;region:eu west"
    assert points_of(client, idle) == [(T0_MS, 98.5), (T0_MS + 1000, 97.25)]
    procs = points_of(client, series_key("cpu", base, "procs"))
    assert procs == [(T0_MS, 12), (T0_MS + 1000, 13)]
    assert all(type(v) is int for _, v in procs)
    assert points_of(client, series_key("cpu", base, "healthy")) == [
        (T0_MS, 1),
        (T0_MS + 1000, 0),
    ]
    [series] = client.get_series(keys=[idle])
    assert series.attributes == {
        "_measurement": "cpu",
        "_field": "usage_idle",
        "host": "web-1",
        "region": "eu west",
    }
    # Every v1 filter works on the mapping: the three fields of that host.
    found = client.get_series(attributes={"_measurement": "cpu", "host": "web-1"})
    assert sorted(s.attributes["_field"] for s in found) == ["healthy", "procs", "usage_idle"]


def test_influxdb_client_line_protocol_gzip_and_errors(
    server: Any, credentials: tuple[str, str], client: Client
) -> None:
    key, secret = credentials
    influx = influxdb.InfluxDBClient(
        server.host, server.port, username=key, password=secret, database="db", gzip=True
    )
    lines = [f"disk,path=/var used={i}i {T0_MS + i}" for i in range(500)]
    assert influx.write(lines, params={"db": "db", "precision": "ms"}, protocol="line")
    stored = points_of(client, "disk.used;path:/var")
    assert stored == [(T0_MS + i, i) for i in range(500)]
    with pytest.raises(influxdb.exceptions.InfluxDBClientError) as refused:
        influx.write(["disk used=1", "not line protocol"], params={"db": "db"}, protocol="line")
    assert refused.value.code == 400
    assert "not line protocol" in str(refused.value.content)
    assert "partial write" in str(refused.value.content)
    # The valid line was stored (InfluxDB's partial write), at the server's time.
    assert len(points_of(client, "disk.used")) == 1
    wrong = influxdb.InfluxDBClient(server.host, server.port, username=key, password="x" * 32)
    with pytest.raises(influxdb.exceptions.InfluxDBClientError) as denied:
        wrong.write(["disk used=1"], params={"db": "db"}, protocol="line")
    assert denied.value.code == 401


@pytest.mark.parametrize("gzip_on", [False, True])
def test_influxdb_client_v2_writes_every_precision(
    server: Any, credentials: tuple[str, str], client: Client, gzip_on: bool
) -> None:
    key, secret = credentials
    with influxdb_client.InfluxDBClient(
        url=server.url, token=f"{key}:{secret}", org="my-org", enable_gzip=gzip_on
    ) as influx:
        api = influx.write_api(write_options=SYNCHRONOUS)
        t0_ns = T0_MS * 1_000_000 + 456_789  # sub-ms: rounded down to the millisecond
        for precision, scale in (("ns", 1), ("us", 1_000), ("ms", 1_000_000), ("s", 10**9)):
            stamp = t0_ns // scale
            point = (
                influxdb_client.Point("mem")
                .tag("host", "db-2")
                .field(f"used_{precision}", 1.5)
                .time(stamp, write_precision=precision)
            )
            api.write(bucket="telegraf/autogen", record=point, write_precision=precision)
            expected = (stamp * scale) // 1_000_000
            stored = points_of(client, f"mem.used_{precision};host:db-2")
            assert stored == [(expected, 1.5)], precision
        api.write(bucket="b", record="mem,host=db-2 free=3u,on=t " + str(t0_ns))
        assert points_of(client, "mem.free;host:db-2") == [(T0_MS, 3)]
        with pytest.raises(ApiException) as refused:
            api.write(bucket="b", record='mem,host=db-2 name="a string"')
        assert refused.value.status == 400
        assert "string" in refused.value.body
    with influxdb_client.InfluxDBClient(url=server.url, token=f"{key}:nope", org="o") as wrong:
        with pytest.raises(ApiException) as denied:
            wrong.write_api(write_options=SYNCHRONOUS).write(bucket="b", record="mem x=1")
        assert denied.value.status == 401


# -- credentials ---------------------------------------------------------------------------------


def test_credentials_as_influxdb_takes_them(server: Any, credentials: tuple[str, str]) -> None:
    key, secret = credentials
    wire = Wire(server.url)
    query = "&" + urllib.parse.urlencode({"u": key, "p": secret})
    assert wire.write("auth,via=query v=1", query).status == 204
    token = {"Authorization": f"Token {key}:{secret}"}
    assert wire.request("POST", "/api/v2/write?bucket=b", "auth v=2", headers=token).status == 204
    assert wire.request("POST", "/write", "auth v=3", headers=token).status == 204
    missing = wire.write("auth v=1")
    assert missing.status == 401
    assert missing.error
    assert wire.write("auth v=1", f"&u={key}&p=wrong").status == 401
    malformed = wire.request("POST", "/write", "auth v=1", headers={"Authorization": "Token x"})
    assert malformed.status == 401
    # u/p are InfluxDB's: the v1 routes keep to HTTP Basic.
    v1 = wire.request("GET", f"/v1/series/?u={key}&p={secret}")
    assert v1.status == 401


def test_one_key_never_sees_anothers_points(server: Any) -> None:
    first, second = server.new_database("a"), server.new_database("b")
    assert Wire(server.url, first).write("secret,who=a v=1 1").status == 204
    assert Wire(server.url, second).write("secret,who=b v=2 1").status == 204
    with server.client(*second) as other:
        assert [s.attributes["who"] for s in other.get_series()] == ["b"]


# -- answers -------------------------------------------------------------------------------------


def test_success_is_204_with_influxdb_headers(wire: Wire) -> None:
    answer = wire.write("ok v=1")
    assert answer.status == 204
    assert answer.body == b""
    assert answer.headers["x-influxdb-version"]
    v2 = wire.request("POST", "/api/v2/write?org=o&bucket=b&precision=s", "ok v=1 1")
    assert v2.status == 204


def test_partial_write_stores_the_valid_lines_and_names_the_others(
    wire: Wire, client: Client
) -> None:
    body = "\n".join(
        [
            "# a comment, then a blank line",
            "",
            f"part,k=a v=1 {T0_MS}",
            "part,k=a v=",  # grammar: refused
            f'part,k=a v=2,s="text" {T0_MS + 1}',  # a string field: refused whole
            f"part,k=a v={2**53 + 1}i {T0_MS + 2}",  # beyond 2**53: refused
            f"part,k=a v={2**53}i {T0_MS + 3}",  # 2**53 itself: stored
            f"part,k=a v=4 {T0_MS + 4}",
            f"part,k={'x' * 1025} v=5 {T0_MS + 5}",  # a tag value past 1024 bytes: refused
        ]
    )
    answer = wire.write(body, "&precision=ms")
    assert answer.status == 400
    assert answer.headers["content-type"].startswith("application/json")
    error = answer.error
    assert error is not None
    assert error.startswith("partial write: ")
    assert error.endswith(" dropped=3")
    assert "longer than 1024 bytes" in error
    assert "unable to parse 'part,k=a v='" in error
    assert "is a string" in error
    assert "9007199254740993" in error
    assert "partial write" in answer.headers["x-influxdb-error"]
    assert answer.headers["x-tempodb-error"]
    assert points_of(client, "part.v;k:a") == [(T0_MS, 1), (T0_MS + 3, 2**53), (T0_MS + 4, 4)]


def test_nothing_readable_is_400_and_stores_nothing(wire: Wire, client: Client) -> None:
    answer = wire.write("bad\nworse line\n")
    assert answer.status == 400
    assert answer.error == (
        "unable to parse 'bad': missing fields\nunable to parse 'worse line': invalid field format"
    )
    assert client.get_series() == []
    refused = wire.write('only s="strings"')
    assert refused.status == 400
    assert refused.error is not None
    assert refused.error.endswith("dropped=1")
    assert client.get_series() == []


def test_bad_parameters_and_bodies(server: Any, wire: Wire) -> None:
    bad = wire.write("x v=1", "&precision=fortnight")
    assert bad.status == 400
    assert "precision" in (bad.error or "")
    assert wire.request("GET", "/write?db=x").status == 405
    assert wire.request("POST", "/api/v2/write", b"x v=1", gzipped=False).status == 204
    garbage = wire.request(
        "POST", "/write", b"x v=1", headers={"Content-Encoding": "gzip"}, basic=True
    )
    assert garbage.status == 400
    assert garbage.error


def test_body_limit_is_413(tmp_path: Path) -> None:
    from serverproc import ServerProcess, create_key, data_args

    store = data_args(tmp_path)
    key = create_key(store)
    process = ServerProcess.start(store, "--max-body-mb", "1")
    try:
        answer = Wire(process.url, key).write(b"big v=1\n" * 200_000)
        assert answer.status == 413
        assert answer.error
    finally:
        assert process.stop() == 0


# -- the grammar on the wire ---------------------------------------------------------------------


def test_escaped_names_and_every_value_type(wire: Wire, client: Client) -> None:
    body = (
        "\n".join(
            [
                r"we\ ird\,m,tag\ key=va\=l\,ue,é=ü fi\=eld\ 1=1.5e3,"
                r'b1=t,b2=FALSE,n=-7i,u=18u,f=-.5,q="quoted, \"x\" =y" 1000',
                r"m.dot;semi,k:colon=a;b f.x=2 1000",
                r"back\\slash,t=c:\\dir f=3 1000",
            ]
        )
        + "\n"
    )
    answer = wire.write(body, "&precision=ms")
    # The quoted string field refuses the first line whole.
    assert answer.status == 400
    assert answer.error is not None
    assert answer.error.endswith("dropped=1")
    answer = wire.write(body.replace(r',q="quoted, \"x\" =y"', ""), "&precision=ms")
    assert answer.status == 204
    tags = (("tag key", "va=l,ue"), ("é", "ü"))
    expected = {"fi=eld 1": 1500.0, "b1": 1, "b2": 0, "n": -7, "u": 18, "f": -0.5}
    for field, value in expected.items():
        key = series_key("we ird,m", tags, field)
        assert points_of(client, key) == [(1000, value)], field
        [series] = client.get_series(keys=[key])
        assert series.attributes == {
            "_measurement": "we ird,m",
            "_field": field,
            "tag key": "va=l,ue",
            "é": "ü",
        }
    dotted = series_key("m.dot;semi", (("k:colon", "a;b"),), "f.x")
    assert dotted == r"m\2edot\3bsemi.f.x;k\3acolon:a\3bb"
    assert points_of(client, dotted) == [(1000, 2.0)]
    # A backslash escapes nothing else: kept as it is, as InfluxDB 1.x keeps it.
    [series] = client.get_series(attributes={"_measurement": r"back\\slash"})
    assert series.attributes["t"] == r"c:\\dir"


def test_timestamps_precisions_and_server_time(wire: Wire, client: Client) -> None:
    cases = {"n": 10**6, "u": 10**3, "ms": 1, "s": 10**-3, "m": 1 / 60_000, "h": 1 / 3_600_000}
    t_ms = 1_699_999_200_000  # a whole hour
    for precision, per_ms in cases.items():
        stamp = round(t_ms * per_ms)
        assert (
            wire.write(f"prec,p={precision} v=1 {stamp}", f"&precision={precision}").status == 204
        )
        assert points_of(client, f"prec.v;p:{precision}") == [(t_ms, 1.0)]
    # Finer than a millisecond: rounded down (also before 1970); the last value of a ms wins.
    body = "sub v=1 1999999\nsub v=2 1000001\nsub v=3 -1\n"
    assert wire.write(body).status == 204
    assert points_of(client, "sub.v") == [(-1, 3.0), (1, 2.0)]
    before = time.time_ns() // 1_000_000
    assert wire.write("now v=1\nnow w=2").status == 204
    after = time.time_ns() // 1_000_000
    [(t1, _)] = points_of(client, "now.v")
    [(t2, _)] = points_of(client, "now.w")
    assert before <= t1 == t2 <= after
    out = wire.write("far v=1 9223372036854775807")
    assert out.status == 400
    assert "time outside range" in (out.error or "")


# -- against the real InfluxDB 1.6 ---------------------------------------------------------------

_INFLUX_CONFIG = """\
reporting-disabled = true
bind-address = "127.0.0.1:{rpc}"
[meta]
  dir = "{root}/meta"
[data]
  dir = "{root}/data"
  wal-dir = "{root}/wal"
  query-log-enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:{port}"
  log-enabled = false
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
[logging]
  level = "error"
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _influxd() -> str | None:
    """The ``influxd`` binary, installed with scripts/ensure-peers.sh when missing."""
    if shutil.which("influxd") is None:
        root = Path(__file__).resolve().parents[2]
        subprocess.run(["bash", "scripts/ensure-peers.sh"], cwd=root, capture_output=True)
    return shutil.which("influxd")


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Wire]:
    """A real InfluxDB 1.6 on loopback, with a database ``mydb``."""
    binary = _influxd()
    if binary is None:
        pytest.fail(
            "influxd could not be installed (scripts/ensure-peers.sh failed): the "
            "comparison with the real InfluxDB 1.6 needs it"
        )
    root = tmp_path_factory.mktemp("influxdb")
    port = _free_port()
    config = root / "influxdb.conf"
    config.write_text(_INFLUX_CONFIG.format(root=root, port=port, rpc=_free_port()))
    process = subprocess.Popen(
        [binary, "-config", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wire = Wire(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if wire.request("GET", "/ping").status == 204:
                    break
            except urllib3.exceptions.HTTPError:
                pass
            assert process.poll() is None, "influxd exited"
            assert time.monotonic() < deadline, "influxd did not answer /ping"
            time.sleep(0.1)
        created = wire.request(
            "POST", "/query?" + urllib.parse.urlencode({"q": "CREATE DATABASE mydb"})
        )
        assert created.status == 200
        yield wire
    finally:
        process.terminate()
        process.wait(timeout=30)


#: (name, body, query, gzipped): the same request to both servers.  Every measurement is new
#: to InfluxDB, so that its per-shard field types never come into play.
CORPUS: list[tuple[str, str, str, bool]] = [
    ("simple", "c1,host=a v=1 1000000000", "", False),
    ("many", "\n".join(f"c2,host=h{i} v={i},w={i}i {i}000000000" for i in range(50)), "", False),
    ("gzip", "c3,host=a v=1 1000000000\nc3,host=b v=2 1000000000", "", True),
    ("comments", "# hello\n\n   \n\t\nc4 v=1\n# bye", "", False),
    ("empty", "", "", False),
    ("leading spaces", "   c5 v=1", "", False),
    ("spaces between", "c6   v=1    5", "", False),
    ("no timestamp", "c7 v=1", "", False),
    ("negative time", "c8 v=1 -5", "", False),
    ("booleans", "c9 a=t,b=T,c=true,d=True,e=TRUE,f=f,g=F,h=false,i=False,j=FALSE", "", False),
    ("integers", "c10 a=1i,b=-9007199254740992i,c=0i", "", False),
    ("floats", "c11 a=1.,b=-0,c=1e5,d=1E-5,e=.5,f=-.5,g=1.5e+3", "", False),
    ("escapes", r"c\ 12\,x,t\ k=v\=a\,b\ c f\ k\=x=1", "", False),
    ("unicode", "c13,städte=köln wärme=1.5", "", False),
    ("duplicate fields", "c14 v=1,v=2", "", False),
    ("unsorted tags", "c15,b=2,a=1 v=1", "", False),
    ("precision s", "c16 v=1 1700000000", "&precision=s", False),
    ("precision ms", "c17 v=1 1700000000000", "&precision=ms", False),
    ("precision u", "c18 v=1 1700000000000000", "&precision=u", False),
    ("precision n", "c19 v=1 1700000000000000000", "&precision=n", False),
    ("precision m", "c20 v=1 28333333", "&precision=m", False),
    ("precision h", "c21 v=1 472222", "&precision=h", False),
    ("missing fields", "c22", "", False),
    ("missing value", "c23 v=", "", False),
    ("missing tag value", "c24,t= v=1", "", False),
    ("missing tag key", "c25,=a v=1", "", False),
    ("trailing comma tag", "c26,t=a, v=1", "", False),
    ("missing measurement", ",t=a v=1", "", False),
    ("duplicate tags", "c28,a=1,a=2 v=1", "", False),
    ("bad number", "c29 v=1..2", "", False),
    ("hex", "c30 v=0x10", "", False),
    ("nan", "c31 v=NaN", "", False),
    ("inf", "c32 v=inf", "", False),
    ("huge float", "c33 v=1e400", "", False),
    ("bad boolean", "c34 v=tRUE", "", False),
    ("plus sign", "c35 v=+1", "", False),
    ("float with i", "c36 v=1.5i", "", False),
    ("int64 overflow", "c37 v=9223372036854775808i", "", False),
    ("bad timestamp", "c38 v=1 1.5", "", False),
    ("junk after time", "c39 v=1 1 x", "", False),
    ("time out of range", "c40 v=1 9223372036854775807", "", False),
    ("seconds out of range", "c41 v=1 9999999999999", "&precision=s", False),
    ("crlf", "c42 v=1\r\nc42 v=2\r\n", "", False),
    ("tab separator", "c43\tv=1", "", False),
    ("unbalanced quotes", 'c44 v="open', "", False),
    ("time field", "c45 time=1", "", False),
    ("time tag", "c46,time=1 v=1", "", False),
    ("partial", "c47 v=1\nnot valid\nc47 v=2 5", "", False),
    ("partial gzip", "c48 v=1\nc48 v=\nc48 w=1", "", True),
    ("all bad", "bad one\nbad two", "", False),
    ("escaped newline", "c50,t=a\\\nb v=1", "", False),
]

#: Where we answer differently from InfluxDB 1.6, on purpose (docs/influx.md says why).
DIFFERENT: dict[str, tuple[str, str, str, bool, tuple[int, bool]]] = {
    # name: (body, query, why, gzipped, (InfluxDB's status, its error present))
    "unsigned": (
        "d1 v=18u",
        "",
        "1.6 refuses u; 1.8 and 2.x store it, as we do",
        False,
        (400, True),
    ),
    "string": (
        'd2 s="x\ny"',
        "",
        "strings are refused: we store numbers only",
        False,
        (204, False),
    ),
    "beyond 2**53": (
        "d3 v=9007199254740993i",
        "",
        "integers beyond 2**53 refused",
        False,
        (204, False),
    ),
    "unknown precision": (
        "d4 v=1",
        "&precision=x",
        "1.6 takes it as ns silently",
        False,
        (204, False),
    ),
    "no db": ("d5 v=1", "NODB", "the API key chooses the database", False, (400, True)),
    "unknown rp": ("d6 v=1", "&rp=none", "rp is accepted as given", False, (500, True)),
}


def _send(wire: Wire, body: str, query: str, gzipped: bool) -> Answer:
    path = "/write" if query == "NODB" else "/write?db=mydb" + query
    return wire.request("POST", path, body, gzipped=gzipped)


def _shape(answer: Answer) -> tuple[int, bool, bool]:
    """What is compared: the status, whether there is an error, whether it is partial."""
    error = answer.error
    return answer.status, error is not None, bool(error and error.startswith("partial write"))


def test_same_answers_as_influxdb(reference: Wire, wire: Wire) -> None:
    mismatches = []
    for name, body, query, gzipped in CORPUS:
        theirs = _send(reference, body, query, gzipped)
        ours = _send(wire, body, query, gzipped)
        if _shape(theirs) != _shape(ours):
            mismatches.append((name, theirs, ours))
    assert not mismatches, mismatches


def test_stored_values_match_influxdb(reference: Wire, wire: Wire, client: Client) -> None:
    """The points InfluxDB stores from the corpus are the points we store."""
    body = "\n".join(
        [
            "v1,host=a v=1.5,n=3i,b=t 1000000000",
            "v1,host=a v=2.5,n=4i,b=f 2000000000",
            r"v1,host=b\ c v=-1e-3 3000000000",
            "v1,host=a v= 4000000000",
            "v1,host=a v=7 5000000000",
        ]
    )
    for server in (reference, wire):
        assert _shape(_send(server, body, "", False)) == (400, True, True)
    query = urllib.parse.urlencode(
        {"db": "mydb", "q": 'SELECT "v", "n", "b" FROM "v1" GROUP BY *', "epoch": "ms"}
    )
    result = json.loads(reference.request("GET", "/query?" + query).body)
    for series in result["results"][0]["series"]:
        tags = tuple(sorted(series["tags"].items()))
        for column, name in enumerate(series["columns"][1:], start=1):
            expected = [
                (row[0], int(row[column]) if isinstance(row[column], bool) else row[column])
                for row in series["values"]
                if row[column] is not None
            ]
            key = series_key("v1", tags, name)
            if not expected:  # InfluxDB has no such field there: nor have we a series
                assert client.get_series(keys=[key]) == []
                continue
            assert points_of(client, key) == expected, (tags, name)


def test_deliberate_differences_from_influxdb(reference: Wire, wire: Wire) -> None:
    """Each difference is what docs/influx.md describes; InfluxDB's side is checked too, so
    that the list stays true."""
    ours_expected = {
        "unsigned": (204, False),
        "string": (400, True),
        "beyond 2**53": (400, True),
        "unknown precision": (400, True),
        "no db": (204, False),
        "unknown rp": (204, False),
    }
    for name, (body, query, _why, gzipped, theirs_expected) in DIFFERENT.items():
        theirs = _send(reference, body, query, gzipped)
        ours = _send(wire, body, query, gzipped)
        assert _shape(theirs)[:2] == theirs_expected, (name, theirs)
        assert _shape(ours)[:2] == ours_expected[name], (name, ours)


def test_metrics_count_the_influx_routes(server: Any, wire: Wire) -> None:
    assert wire.write("metered v=1").status == 204
    assert wire.request("GET", "/ping").status == 204
    metrics = Wire(server.url).request("GET", "/metrics").body.decode()
    assert 'route="/write",method="POST",status="2xx"' in metrics
    assert 'route="/ping",method="GET"' in metrics


def test_concurrent_writers_create_each_series_once_with_its_attributes(
    wire: Wire, client: Client
) -> None:
    """Writers racing to create the same new series all succeed (a KeyConflict from the
    store means another one created it), and every point lands."""
    from concurrent.futures import ThreadPoolExecutor

    def write(worker: int) -> int:
        lines = "\n".join(f"race,rack=r{i % 4} w{worker}=1,v={worker} {worker}" for i in range(8))
        return Wire(wire.url, wire.credentials).write(lines, "&precision=ms").status

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(write, range(16))) == [204] * 16
    for rack in range(4):
        key = f"race.v;rack:r{rack}"
        [series] = client.get_series(keys=[key])
        assert series.attributes == {"_measurement": "race", "_field": "v", "rack": f"r{rack}"}
        assert points_of(client, key) == [(worker, float(worker)) for worker in range(16)]
    assert len(client.get_series(attributes={"_measurement": "race"})) == 4 + 16 * 4
