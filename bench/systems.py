"""The systems under test, each started as its own process on loopback with a temporary folder.

Every system turns the same workload into its own HTTP requests.  Writes are encoded before
timing; reads are zero-argument callables that do everything a user needs to get the answer
(for VictoriaMetrics' DST-correct daily figures that includes merging hourly rollups into
local days, see ``VictoriaMetrics.daily``).  A workload a system cannot do returns None.

Set-up (see ``/work/shared/notes/measured-facts.md``): InfluxDB 1.6 with HTTP on 127.0.0.1, the
``ifql`` service off, ``precision=ms``, ``fill(none)``, an explicit upper time bound and
``tz('America/Chicago')``; its size is taken once its cache has been snapshotted.
VictoriaMetrics with ``-retentionPeriod=100y``, ``-search.disableCache``,
``-search.latencyOffset=0s``, a raised ``-search.maxPointsPerTimeseries`` and ``nocache=1``.

Many series (S3, S4): tempodb creates tagged series with ``POST /v1/series/`` (one object, or
an array of up to ``BULK`` for the bulk route) and others by their first point (the multi write
``POST /v1/multi/``); the peers declare a series by its first point, tags included (line
protocol: S4's series are ``m,g=<group>,s=<key>``), ``BULK`` lines per request.  W8's floor is
the cheapest request each answers: tempodb an empty multi write (authenticated), the peers'
unauthenticated ``/ping`` (InfluxDB) and ``/health`` (VictoriaMetrics).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import urllib.parse
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import orjson
from dataset import (
    DAY_MS,
    MEASUREMENT,
    Series,
    iso_texts,
    line_protocol,
    tempodb_points_body,
)
from httpc import Connection, Request, basic_auth
from procs import folder_bytes, free_port, settle, stop, wait_http

ROOT = Path(__file__).resolve().parent.parent
HOUR_MS = 3_600_000
#: Series per bulk creation request (the route's limit) and per S3 request of the peers.
BULK = 10_000
Read = Callable[[], object]


class Unavailable(RuntimeError):
    """The system cannot run on this machine (the message says why)."""


def iso(ms: int) -> str:
    return iso_texts(np.array([ms], np.int64))[0]


class System(ABC):
    """One system: a process, a connection to it, and its spelling of every workload."""

    name: str
    pid: int = 0

    def __init__(self) -> None:
        self.host, self.port, self.auth = "127.0.0.1", 0, ""
        self._conn: Connection | None = None

    @abstractmethod
    def start(self, root: Path) -> None:
        """Start the process with its data under ``root`` (a fresh folder)."""

    @abstractmethod
    def stop(self) -> None:
        """Stop everything this system started."""

    @abstractmethod
    def disk_bytes(self) -> int:
        """Bytes on disk of the stored data, once the system has settled."""

    def fresh(self) -> System:
        """Another instance of the same system, with a store of its own."""
        return type(self)()

    def connection(self) -> Connection:
        return Connection(self.host, self.port, self.auth)

    @property
    def conn(self) -> Connection:
        if self._conn is None:
            self._conn = self.connection()
        return self._conn

    def get(self, path: str, params: Sequence[tuple[str, str]]) -> bytes:
        query = urllib.parse.urlencode(list(params))
        return self.conn.request(Request("GET", f"{path}?{query}"))[1]

    # -- writes: encoded requests ------------------------------------------------------------

    @abstractmethod
    def write(self, series: Series, lo: int, hi: int) -> Request:
        """Points ``lo:hi`` of one series."""

    @abstractmethod
    def write_many(self, parts: Sequence[Series]) -> Request:
        """All the points of several series in one request."""

    def overwrite(self, series: Series, lo: int, hi: int) -> Request | None:
        return self.write(series, lo, hi)

    def increment(self, series: Series, lo: int, hi: int) -> Request | None:
        return None

    @abstractmethod
    def small_write(self, client: int, i: int, ts: int) -> Request:
        """W8: 10 series x 1 point at ``ts``."""

    @abstractmethod
    def tagged_series(self, keys: Sequence[str], tags: Sequence[str], ts: int) -> list[Request]:
        """Requests creating series with one tag each (``rack=...``), 10,000 per request."""

    @abstractmethod
    def tagged_series_one(self, key: str, tag: str, ts: int) -> Request:
        """A request creating one series with one tag (``rack=...``)."""

    @abstractmethod
    def floor_request(self) -> Request:
        """The cheapest request the system answers (authenticated, where it authenticates)."""

    # -- S4: series ``keys`` in groups (a group: a tag, or "" for none) ----------------------

    @abstractmethod
    def group_series(self, keys: Sequence[str], group: str) -> list[Request]:
        """Requests declaring series of a group before their first points (none where a
        series is declared by its first point)."""

    @abstractmethod
    def points_many(
        self, keys: Sequence[str], groups: Sequence[str], ts: int, values: Sequence[float]
    ) -> Request:
        """One point per series at ``ts``: the system's multi-series write."""

    def small_write_to(
        self, keys: Sequence[str], groups: Sequence[str], ts: int, values: Sequence[float]
    ) -> Request:
        """A W8-style write (a few series, one point each at ``ts``)."""
        return self.points_many(keys, groups, ts, values)

    # -- L1, Q1: InfluxDB's line protocol and InfluxQL -----------------------------------------

    def line_write(self, series: Series, lo: int, hi: int) -> Request:
        """L1: points ``lo:hi`` of one series as line protocol on ``POST /write``."""
        return self.write(series, lo, hi)

    def influxql(self, text: str) -> Read | None:
        """Q1: an InfluxQL statement as Grafana sends it (``GET /query``, ``epoch=ms``), or
        None where InfluxQL is not served."""
        return None

    # -- reads: callables ----------------------------------------------------------------------

    @abstractmethod
    def raw(self, key: str, start: int, end: int) -> Read: ...

    @abstractmethod
    def hourly_mean(self, key: str, start: int, end: int) -> Read: ...

    @abstractmethod
    def daily(self, key: str, start: int, end: int, function: str) -> Read:
        """Daily ``function`` (min, max, mean, stddev) in America/Chicago."""

    @abstractmethod
    def daily_mean_utc(self, key: str, start: int, end: int) -> Read: ...

    @abstractmethod
    def summary(self, key: str, start: int, end: int) -> Read: ...

    @abstractmethod
    def multi_daily_mean(self, keys: Sequence[str], start: int, end: int) -> Read:
        """Daily mean in America/Chicago of every series in ``keys``."""

    def delete(self, key: str, start: int, end: int) -> Read | None:
        return None

    @abstractmethod
    def series_by_tag(self, tag: str) -> Read: ...

    @abstractmethod
    def series_in_group(self, group: str) -> Read:
        """The series of an S4 group (a tag lookup)."""


# -- tempodb -------------------------------------------------------------------------------------


class TempoDB(System):
    """``tempodb serve`` on the embedded store, or on PostgreSQL with ``database_url``."""

    def __init__(self, name: str = "tempodb", database_url: Callable[[], str] | None = None):
        super().__init__()
        self.name = name
        self._database_url = database_url
        self._store_args: list[str] = []
        self._data: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._key = self._secret = ""

    @property
    def database_url(self) -> Callable[[], str] | None:
        """What makes a new PostgreSQL database (None: the embedded store)."""
        return self._database_url

    def fresh(self) -> TempoDB:
        """Another instance with its own store (a new PostgreSQL database)."""
        return TempoDB(self.name, self._database_url)

    @property
    def client_key(self) -> str:
        return self._key

    @property
    def client_secret(self) -> str:
        return self._secret

    def _command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "tempodb.cli", *args]

    def start(self, root: Path) -> None:
        if not self._store_args:
            if self._database_url is None:
                self._data = root / "data"
                self._store_args = ["--data", str(self._data)]
            else:
                self._store_args = ["--database-url", self._database_url()]
            created = subprocess.run(
                self._command("keys", "create", *self._store_args, "--json"),
                check=True,
                capture_output=True,
            ).stdout
            keys = orjson.loads(created)
            self._key, self._secret = keys["key"], keys["secret"]
            self.auth = basic_auth(self._key, self._secret)
        self.port = free_port()
        self._process = subprocess.Popen(
            self._command("serve", *self._store_args, "--port", str(self.port)),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.pid = self._process.pid
        self._conn = None
        wait_http(f"http://127.0.0.1:{self.port}/healthz", self._process)

    def stop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        stop(self._process)

    def disk_bytes(self) -> int:
        """The data folder after a clean stop (the WAL checkpointed); PostgreSQL: the size of
        the database."""
        if self._data is None:
            return self._pg_size()
        self.stop()
        size = folder_bytes(self._data)
        self.start(self._data.parent)
        return size

    def _pg_size(self) -> int:
        import psycopg

        assert self._database_url is not None
        url = self._store_args[1]
        with psycopg.connect(url) as conn:
            conn.execute("CHECKPOINT")
            row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
        return int(row[0]) if row else 0

    def _params(self, start: int, end: int, **more: str) -> list[tuple[str, str]]:
        return [("start", iso(start)), ("end", iso(end)), *more.items()]

    def write(self, series: Series, lo: int, hi: int) -> Request:
        return Request(
            "POST", f"/v1/series/key/{series.key}/data/", tempodb_points_body(series, lo, hi)
        )

    def increment(self, series: Series, lo: int, hi: int) -> Request:
        return Request(
            "POST", f"/v1/series/key/{series.key}/increment/", tempodb_points_body(series, lo, hi)
        )

    def write_many(self, parts: Sequence[Series]) -> Request:
        chunks = []
        for series in parts:
            times = iso_texts(series.ts)
            values = series.values.tolist()
            if series.integer:
                values = [int(v) for v in values]
            chunks += [
                {"t": t, "key": series.key, "v": v} for t, v in zip(times, values, strict=True)
            ]
        return Request("POST", "/v1/multi/", orjson.dumps(chunks))

    def small_write(self, client: int, i: int, ts: int) -> Request:
        data = [{"key": f"small-{client}-{j}", "v": i} for j in range(10)]
        return Request("POST", "/v1/data/", orjson.dumps({"t": iso(ts), "data": data}))

    def tagged_series(self, keys: Sequence[str], tags: Sequence[str], ts: int) -> list[Request]:
        """Bulk creation: ``POST /v1/series/`` with an array of series objects."""
        return [
            _bulk_series(keys[lo : lo + BULK], [[tag] for tag in tags[lo : lo + BULK]])
            for lo in range(0, len(keys), BULK)
        ]

    def tagged_series_one(self, key: str, tag: str, ts: int) -> Request:
        return Request("POST", "/v1/series/", orjson.dumps({"key": key, "tags": [tag]}))

    def floor_request(self) -> Request:
        """An empty multi write: routed, authenticated, parsed and answered like a small write
        (on the embedded store without leaving the event loop), with nothing to store.  It is
        the cheapest authenticated request: a series lookup (``GET /v1/series/key/K/``) also
        hands the request to a worker thread and back, and answers about half as many."""
        return Request("POST", "/v1/multi/", b"[]")

    def group_series(self, keys: Sequence[str], group: str) -> list[Request]:
        """Series of a group are created with their tag, one per request (set-up, not timed:
        S4 does not depend on the bulk route); the others by their first point."""
        if not group:
            return []
        return [self.tagged_series_one(key, group, 0) for key in keys]

    def points_many(
        self, keys: Sequence[str], groups: Sequence[str], ts: int, values: Sequence[float]
    ) -> Request:
        stamp = iso(ts)
        body = [{"key": k, "t": stamp, "v": v} for k, v in zip(keys, values, strict=True)]
        return Request("POST", "/v1/multi/", orjson.dumps(body))

    def small_write_to(
        self, keys: Sequence[str], groups: Sequence[str], ts: int, values: Sequence[float]
    ) -> Request:
        data = [{"key": k, "v": v} for k, v in zip(keys, values, strict=True)]
        return Request("POST", "/v1/data/", orjson.dumps({"t": iso(ts), "data": data}))

    def _read(self, path: str, params: list[tuple[str, str]]) -> Read:
        return lambda: self.get(path, params)

    def raw(self, key: str, start: int, end: int) -> Read:
        return self._read(f"/v1/series/key/{key}/data/", self._params(start, end, interval="raw"))

    def hourly_mean(self, key: str, start: int, end: int) -> Read:
        params = self._params(start, end, interval="1hour", function="mean")
        return self._read(f"/v1/series/key/{key}/data/", params)

    def daily(self, key: str, start: int, end: int, function: str) -> Read:
        params = self._params(start, end, interval="1day", function=function, tz="America/Chicago")
        return self._read(f"/v1/series/key/{key}/data/", params)

    def daily_mean_utc(self, key: str, start: int, end: int) -> Read:
        params = self._params(start, end, interval="1day", function="mean")
        return self._read(f"/v1/series/key/{key}/data/", params)

    def auto(self, key: str, start: int, end: int) -> Read:
        """The automatic rollup of the range (no interval given)."""
        return self._read(f"/v1/series/key/{key}/data/", self._params(start, end))

    def summary(self, key: str, start: int, end: int) -> Read:
        # The summary comes with every read: ask for the fewest buckets.
        params = self._params(start, end, interval="1year", function="mean")
        return self._read(f"/v1/series/key/{key}/data/", params)

    def multi_daily_mean(self, keys: Sequence[str], start: int, end: int) -> Read:
        params = self._params(start, end, interval="1day", function="mean", tz="America/Chicago")
        return self._read("/v1/data/", [*params, *(("key", k) for k in keys)])

    def delete(self, key: str, start: int, end: int) -> Read:
        query = urllib.parse.urlencode(self._params(start, end))
        request = Request("DELETE", f"/v1/series/key/{key}/data/?{query}")
        return lambda: self.conn.request(request)

    def series_by_tag(self, tag: str) -> Read:
        return self._read("/v1/series/", [("tag", tag)])

    def series_in_group(self, group: str) -> Read:
        return self._read("/v1/series/", [("tag", group)])

    def line_write(self, series: Series, lo: int, hi: int) -> Request:
        """``POST /write`` as InfluxDB's clients send it (``db`` is accepted and ignored)."""
        return Request("POST", "/write?db=bench&precision=ms", line_protocol(series, lo, hi),
                       "text/plain")  # fmt: skip

    def influxql(self, text: str) -> Read:
        path = "/query?" + _q(text, db="bench", epoch="ms")
        request = Request("GET", path)
        return lambda: self.conn.request(request)[1]

    # -- the 1.0 reads (issue 16) ------------------------------------------------------------

    def segment(self, key: str, start: int, end: int, **more: str) -> Read:
        """``GET /v1/series/key/{key}/segment/`` (``rollup_period`` for ``rollup.period``)."""
        params = self._params(start, end, **{k.replace("_", "."): v for k, v in more.items()})
        return self._read(f"/v1/series/key/{key}/segment/", params)

    def aggregate_daily_mean(self, keys: Sequence[str], start: int, end: int) -> Read:
        """The mean of the series at each timestamp, then daily in America/Chicago."""
        params = self._params(start, end, tz="America/Chicago")
        params += [("aggregation.fold", "mean"), ("rollup.period", "P1D"), ("rollup.fold", "mean")]
        return self._read("/v1/segment/", [*params, *(("key", k) for k in keys)])

    def paged(self, key: str, start: int, end: int, limit: int) -> Callable[[], int]:
        """A raw segment read followed page by page (``Link: rel=next``); the pages read."""
        first = f"/v1/series/key/{key}/segment/?" + urllib.parse.urlencode(
            [*self._params(start, end), ("limit", str(limit))]
        )

        def read() -> int:
            target: str | None = first
            pages = 0
            while target is not None:
                self.conn.request(Request("GET", target))
                pages += 1
                link = self.conn.headers.get("link")
                target = None if link is None else link[link.index("<") + 1 : link.index(">")]
            return pages

        return read


def _bulk_series(keys: Sequence[str], tags: Sequence[Sequence[str]]) -> Request:
    """``POST /v1/series/`` with ``[{"key": ..., "tags": [...]}, ...]``: answered 200 with
    the created series (207 with a multistatus when some fail, which the benchmark refuses)."""
    body = [{"key": k, "tags": list(t)} for k, t in zip(keys, tags, strict=True)]
    return Request("POST", "/v1/series/", orjson.dumps(body))


def _lines(keys: Sequence[str], groups: Sequence[str], ts: int, values: Sequence[float]) -> bytes:
    """Line protocol for the peers' S4 series: measurement ``m``, tags ``g`` (the group, if
    any) and ``s`` (the key), field ``v``."""
    return "".join(
        f"{MEASUREMENT},{'g=' + g + ',' if g else ''}s={k} v={float(v)!r} {ts}\n"
        for k, g, v in zip(keys, groups, values, strict=True)
    ).encode()


# -- InfluxDB ------------------------------------------------------------------------------------

_INFLUX_CONFIG = """\
reporting-disabled = true
bind-address = "127.0.0.1:{rpc}"
[meta]
  dir = "{root}/meta"
[data]
  dir = "{root}/data"
  wal-dir = "{root}/wal"
  query-log-enabled = false
  cache-snapshot-write-cold-duration = "5s"
  max-series-per-database = 0
  max-values-per-tag = 0
[coordinator]
  log-queries-after = "0s"
[retention]
  enabled = false
[monitor]
  store-enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:{port}"
  log-enabled = false
  max-body-size = 0
[ifql]
  enabled = false
[continuous_queries]
  enabled = false
[subscriber]
  enabled = false
[logging]
  level = "error"
"""


def _need(binary: str, package: str) -> str:
    path = shutil.which(binary)
    if path is None:
        raise Unavailable(
            f"{binary} not found: install Debian's {package} (scripts/ensure-peers.sh)"
        )
    return path


class InfluxDB(System):
    name = "influxdb"
    db = "bench"

    def __init__(self) -> None:
        super().__init__()
        self._process: subprocess.Popen[bytes] | None = None
        self._root: Path | None = None

    def start(self, root: Path) -> None:
        binary = _need("influxd", "influxdb")
        self._root = root
        root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        config = root / "influxdb.conf"
        config.write_text(_INFLUX_CONFIG.format(root=root, port=self.port, rpc=free_port()))
        self._process = subprocess.Popen(
            [binary, "-config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.pid = self._process.pid
        wait_http(f"http://127.0.0.1:{self.port}/ping", self._process)
        for db in (self.db, "scale"):
            self.conn.request(Request("POST", "/query?" + _q(f"CREATE DATABASE {db}")))

    def stop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        stop(self._process)

    def disk_bytes(self) -> int:
        """Once the cache has been snapshotted into TSM files (the WAL emptied)."""
        assert self._root is not None
        root = self._root
        wal = root / "wal"
        deadline = time.monotonic() + 120
        while folder_bytes(wal) > 1 << 20 and time.monotonic() < deadline:
            time.sleep(1)
        return settle(lambda: folder_bytes(root / "data") + folder_bytes(wal))

    def _write(self, body: bytes, db: str | None = None) -> Request:
        return Request("POST", f"/write?db={db or self.db}&precision=ms", body, "text/plain")

    def write(self, series: Series, lo: int, hi: int) -> Request:
        return self._write(line_protocol(series, lo, hi))

    def write_many(self, parts: Sequence[Series]) -> Request:
        return self._write(b"".join(line_protocol(s, 0, len(s)) for s in parts), "scale")

    def small_write(self, client: int, i: int, ts: int) -> Request:
        lines = "".join(f"small,s=small-{client}-{j} v={i} {ts}\n" for j in range(10))
        return self._write(lines.encode())

    def tagged_series(self, keys: Sequence[str], tags: Sequence[str], ts: int) -> list[Request]:
        return [self._write(body, "scale") for body in _tagged_lines(keys, tags, ts)]

    def tagged_series_one(self, key: str, tag: str, ts: int) -> Request:
        return self._write(f"tagged,s={key},rack={tag} v=1 {ts}\n".encode(), "scale")

    def floor_request(self) -> Request:
        return Request("GET", "/ping")

    def group_series(self, keys: Sequence[str], group: str) -> list[Request]:
        return []  # a series is declared by its first point, with its tags

    def points_many(
        self, keys: Sequence[str], groups: Sequence[str], ts: int, values: Sequence[float]
    ) -> Request:
        return self._write(_lines(keys, groups, ts, values))

    def query(self, text: str, db: str | None = None, **more: str) -> Read:
        path = "/query?" + _q(text, db=db or self.db, epoch="ms", **more)
        request = Request("GET", path)
        return lambda: self.conn.request(request)

    def influxql(self, text: str) -> Read:
        path = "/query?" + _q(text, db=self.db, epoch="ms")
        request = Request("GET", path)
        return lambda: self.conn.request(request)[1]

    @staticmethod
    def _where(key: str, start: int, end: int) -> str:
        return f"s='{key}' AND time >= {start}ms AND time < {end}ms"

    def raw(self, key: str, start: int, end: int) -> Read:
        return self.query(
            f"SELECT v FROM {MEASUREMENT} WHERE {self._where(key, start, end)}",
            chunked="true",
            chunk_size="10000",
        )

    def hourly_mean(self, key: str, start: int, end: int) -> Read:
        return self.query(
            f"SELECT mean(v) FROM {MEASUREMENT} WHERE {self._where(key, start, end)} "
            "GROUP BY time(1h) fill(none)"
        )

    def daily(self, key: str, start: int, end: int, function: str) -> Read:
        return self.query(
            f"SELECT {function}(v) FROM {MEASUREMENT} WHERE {self._where(key, start, end)} "
            "GROUP BY time(1d) fill(none) tz('America/Chicago')"
        )

    def daily_mean_utc(self, key: str, start: int, end: int) -> Read:
        return self.query(
            f"SELECT mean(v) FROM {MEASUREMENT} WHERE {self._where(key, start, end)} "
            "GROUP BY time(1d) fill(none)"
        )

    def summary(self, key: str, start: int, end: int) -> Read:
        return self.query(
            "SELECT count(v), sum(v), mean(v), max(v), min(v), stddev(v) "
            f"FROM {MEASUREMENT} WHERE {self._where(key, start, end)}"
        )

    def multi_daily_mean(self, keys: Sequence[str], start: int, end: int) -> Read:
        return self.query(
            f"SELECT mean(v) FROM {MEASUREMENT} WHERE time >= {start}ms AND time < {end}ms "
            "GROUP BY time(1d), s fill(none) tz('America/Chicago')"
        )

    def delete(self, key: str, start: int, end: int) -> Read:
        path = "/query?" + _q(
            f"DELETE FROM {MEASUREMENT} WHERE {self._where(key, start, end)}", db=self.db
        )
        request = Request("POST", path)
        return lambda: self.conn.request(request)

    def series_by_tag(self, tag: str) -> Read:
        return self.query(f"SHOW SERIES FROM tagged WHERE rack='{tag}'", db="scale")

    def series_in_group(self, group: str) -> Read:
        return self.query(f"SHOW SERIES FROM {MEASUREMENT} WHERE g='{group}'")


def _tagged_lines(keys: Sequence[str], tags: Sequence[str], ts: int) -> list[bytes]:
    """S3's series for the peers: one point each, ``BULK`` series per request."""
    return [
        "".join(
            f"tagged,s={k},rack={t} v=1 {ts}\n"
            for k, t in zip(keys[lo : lo + BULK], tags[lo : lo + BULK], strict=True)
        ).encode()
        for lo in range(0, len(keys), BULK)
    ]


def _q(text: str, **params: str) -> str:
    return urllib.parse.urlencode({"q": text, **params})


# -- VictoriaMetrics -----------------------------------------------------------------------------


class VictoriaMetrics(System):
    name = "victoriametrics"
    metric = f"{MEASUREMENT}_v"

    def __init__(self) -> None:
        super().__init__()
        self._process: subprocess.Popen[bytes] | None = None
        self._root: Path | None = None

    def start(self, root: Path) -> None:
        binary = _need("victoria-metrics", "victoria-metrics")
        self._root = root
        root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self._process = subprocess.Popen(
            [
                binary,
                f"-storageDataPath={root}",
                "-retentionPeriod=100y",
                f"-httpListenAddr=127.0.0.1:{self.port}",
                "-search.disableCache",
                "-search.latencyOffset=0s",
                "-search.maxPointsPerTimeseries=100000000",
                "-search.maxUniqueTimeseries=10000000",
                "-search.maxSamplesPerQuery=10000000000",
                "-search.maxSeries=10000000",
                "-search.maxExportDuration=10000h",
                "-loggerLevel=ERROR",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.pid = self._process.pid
        self._conn = None
        wait_http(f"http://127.0.0.1:{self.port}/health", self._process)

    def stop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        stop(self._process)

    def disk_bytes(self) -> int:
        """After a clean stop (which flushes everything in memory to parts)."""
        assert self._root is not None
        root = self._root
        self.conn.request(Request("GET", "/internal/force_flush"))
        settle(lambda: folder_bytes(root))
        self.stop()
        size = folder_bytes(root)
        self.start(root)
        return size

    def flush(self) -> None:
        """Make what was written searchable (VictoriaMetrics buffers writes for a second)."""
        self.conn.request(Request("GET", "/internal/force_flush"))

    def _write(self, body: bytes) -> Request:
        return Request("POST", "/write?precision=ms", body, "text/plain")

    def write(self, series: Series, lo: int, hi: int) -> Request:
        return self._write(line_protocol(series, lo, hi))

    def overwrite(self, series: Series, lo: int, hi: int) -> Request | None:
        return None  # a rewritten timestamp is stored as a second sample

    def write_many(self, parts: Sequence[Series]) -> Request:
        return self._write(b"".join(line_protocol(s, 0, len(s)) for s in parts))

    def small_write(self, client: int, i: int, ts: int) -> Request:
        lines = "".join(f"small,s=small-{client}-{j} v={i} {ts}\n" for j in range(10))
        return self._write(lines.encode())

    def tagged_series(self, keys: Sequence[str], tags: Sequence[str], ts: int) -> list[Request]:
        return [self._write(body) for body in _tagged_lines(keys, tags, ts)]

    def tagged_series_one(self, key: str, tag: str, ts: int) -> Request:
        return self._write(f"tagged,s={key},rack={tag} v=1 {ts}\n".encode())

    def floor_request(self) -> Request:
        return Request("GET", "/health")

    def group_series(self, keys: Sequence[str], group: str) -> list[Request]:
        return []  # a series is declared by its first point, with its labels

    def points_many(
        self, keys: Sequence[str], groups: Sequence[str], ts: int, values: Sequence[float]
    ) -> Request:
        return self._write(_lines(keys, groups, ts, values))

    def _range(self, query: str, start: int, end: int, step: int) -> Read:
        """A range query whose windows are ``[t, t + step)`` for t = start, start + step, ...
        (VictoriaMetrics evaluates ``(t' - step, t']``, so t' = t + step - 1 ms)."""
        params = [
            ("query", query),
            ("start", f"{(start + step - 1) / 1000:.3f}"),
            ("end", f"{(end - 1) / 1000:.3f}"),
            ("step", f"{step // 1000}s"),
            ("nocache", "1"),
        ]
        return lambda: orjson.loads(self.get("/api/v1/query_range", params))

    def _select(self, key: str) -> str:
        return f'{self.metric}{{s="{key}"}}'

    def raw(self, key: str, start: int, end: int) -> Read:
        params = [
            ("match[]", self._select(key)),
            ("start", f"{start / 1000:.3f}"),
            ("end", f"{(end - 1) / 1000:.3f}"),
        ]
        return lambda: self.get("/api/v1/export", params)

    def hourly_mean(self, key: str, start: int, end: int) -> Read:
        return self._range(f"avg_over_time({self._select(key)}[1h])", start, end, HOUR_MS)

    def daily_mean_utc(self, key: str, start: int, end: int) -> Read:
        return self._range(f"avg_over_time({self._select(key)}[1d])", start, end, DAY_MS)

    def _hourly(self, selector: str, parts: Sequence[str], start: int, end: int) -> Read:
        union = ",".join(
            f'label_set({part}_over_time({selector}[1h]),"f","{part}")' for part in parts
        )
        return self._range(f"union({union})", start, end, HOUR_MS)

    def daily(self, key: str, start: int, end: int, function: str) -> Read:
        """The DST-correct route: hourly rollups merged into local days (America/Chicago's
        offsets are whole hours, so no hour straddles two local days)."""
        parts = {
            "min": ["min"],
            "max": ["max"],
            "mean": ["sum", "count"],
            "stddev": ["sum", "sum2", "count"],
        }[function]
        hourly = self._hourly(self._select(key), parts, start, end)
        return lambda: _merge_days(hourly(), function)

    def summary(self, key: str, start: int, end: int) -> Read:
        window = f"{end - start}ms"
        parts = ["count", "sum", "avg", "max", "min", "stddev"]
        union = ",".join(
            f'label_set({p}_over_time({self._select(key)}[{window}]),"f","{p}")' for p in parts
        )
        params = [("query", f"union({union})"), ("time", f"{(end - 1) / 1000:.3f}")]
        return lambda: orjson.loads(self.get("/api/v1/query", [*params, ("nocache", "1")]))

    def multi_daily_mean(self, keys: Sequence[str], start: int, end: int) -> Read:
        selector = f'{self.metric}{{s=~"{"|".join(keys)}"}}'
        hourly = self._hourly(selector, ["sum", "count"], start, end)
        return lambda: _merge_days(hourly(), "mean")

    def series_by_tag(self, tag: str) -> Read:
        params = [
            ("match[]", f'tagged_v{{rack="{tag}"}}'),
            ("start", "2000-01-01T00:00:00Z"),
            ("end", "2030-01-01T00:00:00Z"),
        ]
        return lambda: self.get("/api/v1/series", params)

    def series_in_group(self, group: str) -> Read:
        params = [
            ("match[]", f'{self.metric}{{g="{group}"}}'),
            ("start", "2000-01-01T00:00:00Z"),
            ("end", "2030-01-01T00:00:00Z"),
        ]
        return lambda: self.get("/api/v1/series", params)


def _merge_days(answer: object, function: str) -> dict[str, tuple[object, object]]:
    """Merge VictoriaMetrics' hourly rollups (per series, per part) into America/Chicago days."""
    from tempodb.zones import get_zone

    chicago = get_zone("America/Chicago")
    by_series: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    for result in answer["data"]["result"]:  # type: ignore[index]
        pairs = result["values"]
        stamps = np.array([p[0] for p in pairs], np.float64)
        values = np.array([p[1] for p in pairs], np.float64)
        hour = np.round(stamps * 1000).astype(np.int64) + 1 - HOUR_MS
        metric = result["metric"]
        by_series.setdefault(metric.get("s", ""), {})[metric["f"]] = (hour, values)
    out: dict[str, tuple[object, object]] = {}
    for series, parts in by_series.items():
        hours = next(iter(parts.values()))[0]
        local_day = (hours + chicago.offsets_ms(hours)) // DAY_MS
        starts = np.flatnonzero(np.diff(local_day, prepend=local_day[:1] - 1))
        if function in ("min", "max"):
            ufunc = np.minimum if function == "min" else np.maximum
            values = ufunc.reduceat(parts[function][1], starts)
        else:
            sums = np.add.reduceat(parts["sum"][1], starts)
            counts = np.add.reduceat(parts["count"][1], starts)
            if function == "mean":
                values = sums / counts
            else:
                sum2 = np.add.reduceat(parts["sum2"][1], starts)
                values = np.sqrt(
                    np.maximum(sum2 - sums * sums / counts, 0) / np.maximum(counts - 1, 1)
                )
        out[series] = (local_day[starts], values)
    return out
