"""Bad input: every malformed request gets a 4xx with a readable plain-text message, and the
database is exactly as it was before (nothing written, updated or deleted).

Oversized bodies (413), gzip bombs and slow endless bodies run against a server with a small
body limit, and the server's peak memory is checked: bodies are never buffered past the limit.
"""

from __future__ import annotations

import datetime
import gzip
import select
import socket
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from rawhttp import Raw, Reply, basic

from serverproc import ServerProcess, create_key, data_args

SERIES = "/v1/series/key/k/data/"
READ = "start=2012-01-01&end=2012-01-02"
GOOD_POINT = {"t": "2012-01-01T00:00:00Z", "v": 1}


@dataclass(frozen=True)
class Case:
    method: str
    path: str
    body: bytes | str | None = None
    status: int = 400
    headers: tuple[tuple[str, str], ...] = ()


def points(value: str, t: str = '"2012-01-01T00:30:00Z"') -> str:
    """A write body whose point has the raw JSON ``value``."""
    return f'[{{"t": "2012-01-01T00:00:00Z", "v": 5}}, {{"t": {t}, "v": {value}}}]'


def stamped(t: str) -> str:
    return points("1", t)


CASES: dict[str, Case] = {
    # invalid JSON
    "truncated-json": Case("POST", SERIES, '[{"t": "2012-01-01", "v": 1}'),
    "not-json": Case("POST", SERIES, "not json"),
    "trailing-garbage": Case("POST", SERIES, '[{"t": "2012-01-01", "v": 1}] x'),
    "invalid-utf8": Case("POST", SERIES, b'[{"t": "2012-01-01", "v": 1, "x": "\xff"}]'),
    "single-quotes": Case("POST", SERIES, "[{'t': '2012-01-01', 'v': 1}]"),
    "bulk-not-json": Case("POST", "/v1/data/", "{"),
    "multi-not-json": Case("POST", "/v1/multi/", "[{]"),
    "create-not-json": Case("POST", "/v1/series/", "{key: k2}"),
    "update-not-json": Case("PUT", "/v1/series/key/k/", '{"name": '),
    # wrong types
    "object-not-array": Case("POST", SERIES, '{"t": "2012-01-01", "v": 1}'),
    "numbers-not-points": Case("POST", SERIES, "[1, 2]"),
    "numeric-t": Case("POST", SERIES, stamped("1325376000")),
    "array-v": Case("POST", SERIES, points("[1]")),
    "object-v": Case("POST", SERIES, points('{"a": 1}')),
    "null-v": Case("POST", SERIES, points("null")),
    "word-v": Case("POST", SERIES, points('"twelve"')),
    "missing-v": Case("POST", SERIES, '[{"t": "2012-01-01T00:00:00Z"}]'),
    "bulk-data-object": Case("POST", "/v1/data/", '{"t": "2012-01-01", "data": {"key": "a"}}'),
    "bulk-numeric-key": Case("POST", "/v1/data/", '{"t": "2012-01-01", "data": [{"key": 5}]}'),
    "bulk-no-series": Case("POST", "/v1/increment/", '{"t": "2012-01-01", "data": [{"v": 1}]}'),
    "multi-object": Case("POST", "/v1/multi/", '{"key": "a", "v": 1}'),
    "create-array": Case("POST", "/v1/series/", '["k2"]', 207),  # bulk: a key is no object
    "create-array-bad-key": Case("POST", "/v1/series/", '[{"key": "a\\tb"}, {"tags": "t"}]', 207),
    "create-array-over-limit": Case("POST", "/v1/series/", "[" + ",".join(["{}"] * 10_001) + "]"),
    "create-numeric-key": Case("POST", "/v1/series/", '{"key": 5}'),
    "create-tags-string": Case("POST", "/v1/series/", '{"key": "k2", "tags": "t"}'),
    "create-attributes-list": Case("POST", "/v1/series/", '{"key": "k2", "attributes": [1]}'),
    "create-name-number": Case("POST", "/v1/series/", '{"key": "k2", "name": 5}'),
    "update-tags-numbers": Case("PUT", "/v1/series/key/k/", '{"tags": [1, 2]}'),
    "update-attribute-object": Case("PUT", "/v1/series/key/k/", '{"attributes": {"a": {}}}'),
    "update-name-nul": Case("PUT", "/v1/series/key/k/", '{"name": "a\\u0000b"}'),
    "database-name-list": Case("POST", "/v1/database/", '{"name": []}', 403),
    # NaN and infinities, as JSON literals and as numeric strings
    "nan": Case("POST", SERIES, points("NaN")),
    "infinity": Case("POST", SERIES, points("Infinity")),
    "minus-infinity": Case("POST", SERIES, points("-Infinity")),
    "nan-string": Case("POST", SERIES, points('"NaN"')),
    "inf-string": Case("POST", SERIES, points('"inf"')),
    "infinity-string": Case("POST", "/v1/multi/", '[{"key": "k", "v": "-Infinity"}]', 207),
    # out-of-range numbers
    "overflowing-float": Case("POST", SERIES, points("1e400")),
    "overflowing-float-string": Case("POST", SERIES, points('"1e999"')),
    "int-past-2-53": Case("POST", SERIES, points("9007199254740993")),
    "negative-int-past-2-53": Case("POST", SERIES, points("-9007199254740993")),
    "huge-int": Case("POST", "/v1/data/", '{"data": [{"key": "k", "v": ' + "9" * 400 + "}]}"),
    # out-of-range and impossible timestamps
    "year-10000": Case("POST", SERIES, stamped('"10000-01-01T00:00:00Z"')),
    "year-0": Case("POST", SERIES, stamped('"0000-01-01T00:00:00Z"')),
    "before-year-1": Case("POST", SERIES, stamped('"0001-01-01T00:00:00+14:00"')),
    "after-year-9999": Case("POST", SERIES, stamped('"9999-12-31T23:59:59-14:00"')),
    "month-13": Case("POST", SERIES, stamped('"2012-13-01T00:00:00Z"')),
    "february-30": Case("POST", SERIES, stamped('"2012-02-30"')),
    "hour-25": Case("POST", SERIES, stamped('"2012-01-01T25:00:00Z"')),
    "offset-25h": Case("POST", SERIES, stamped('"2012-01-01T00:00:00+25:00"')),
    "bulk-bad-t": Case("POST", "/v1/data/", '{"t": "yesterday", "data": [{"key": "k", "v": 1}]}'),
    "read-year-99999": Case("GET", f"{SERIES}?start=99999-01-01&end=2012-01-02"),
    "single-bad-ts": Case("GET", "/v1/series/key/k/single/?ts=2012-02-30"),
    # missing or inverted ranges
    "read-no-start": Case("GET", f"{SERIES}?end=2012-01-02"),
    "read-no-end": Case("GET", f"{SERIES}?start=2012-01-01"),
    "read-inverted": Case("GET", f"{SERIES}?start=2012-01-02&end=2012-01-01"),
    "read-many-no-range": Case("GET", "/v1/data/?key=k"),
    "delete-no-end": Case("DELETE", f"{SERIES}?start=2012-01-01"),
    "delete-no-range": Case("DELETE", SERIES),
    "delete-inverted": Case("DELETE", f"{SERIES}?start=2012-01-02&end=2012-01-01"),
    "delete-series-no-filter": Case("DELETE", "/v1/series/"),
    "delete-series-truncation-no": Case("DELETE", "/v1/series/?allow_truncation=false"),
    # unknown interval, function, time zone, direction
    "interval-fortnight": Case("GET", f"{SERIES}?{READ}&interval=7fortnight"),
    "interval-zero": Case("GET", f"{SERIES}?{READ}&interval=0min"),
    "interval-huge": Case("GET", f"{SERIES}?{READ}&interval=99999999999999999999year"),
    "function-median": Case("GET", f"{SERIES}?{READ}&interval=1hour&function=median"),
    "tz-mars": Case("GET", f"{SERIES}?{READ}&tz=Mars/Base"),
    "tz-offset-25h": Case("GET", f"{SERIES}?{READ}&tz=%2B25:00"),
    "tz-path-traversal": Case("GET", f"{SERIES}?{READ}&tz=../../etc/passwd"),
    "direction-sideways": Case("GET", "/v1/series/key/k/single/?ts=2012-01-01&direction=up"),
    # invalid keys
    "key-newline": Case("POST", "/v1/series/", '{"key": "a\\nb"}'),
    "key-cyrillic": Case("POST", "/v1/series/", '{"key": "\\u043a\\u043b\\u044e\\u0447"}'),
    "key-too-long": Case("POST", "/v1/series/", '{"key": "' + "x" * 256 + '"}'),
    "key-dollar": Case("POST", "/v1/series/", '{"key": "a$b"}'),
    "path-key-dollar": Case("POST", "/v1/series/key/a%24b/data/", points("1")),
    "path-key-nul": Case("POST", "/v1/series/key/a%00b/data/", points("1")),
    "path-id-quote": Case("POST", "/v1/series/id/a%22b/increment/", points("1")),
    "bulk-key-nul": Case("POST", "/v1/data/", '{"data": [{"key": "a\\u0000b", "v": 1}]}'),
    "multi-key-tab": Case("POST", "/v1/multi/", '[{"key": "a\\tb", "v": 1}]', 207),
    # deep nesting
    "nesting-2000": Case("POST", SERIES, "[" * 2000 + "]" * 2000),
    "nesting-200k": Case("POST", "/v1/multi/", "[" * 200_000 + "]" * 200_000),
    "nested-value": Case("POST", SERIES, points("[" * 500 + "]" * 500)),
    "nested-attributes": Case(
        "POST", "/v1/series/", '{"key": "k2", "attributes": {"a": ' + "[" * 900 + "]" * 900 + "}}"
    ),
    # bad percent-encoding (paths and queries)
    "path-percent-zz": Case("POST", "/v1/series/key/%zz/data/", points("1")),
    "path-percent-ff": Case("POST", "/v1/series/key/%ff%fe/data/", points("1")),
    "path-lone-percent": Case("POST", "/v1/series/key/a%/increment/", points("1")),
    "read-percent-zz": Case("GET", "/v1/series/key/%zz/data/?" + READ, status=403),
    "query-percent-zz": Case("GET", f"{SERIES}?start=%zz&end=2012-01-02"),
    "query-percent-ff": Case("GET", f"{SERIES}?start=2012-01-01&end=%ff%fe"),
    "query-lone-percent": Case("GET", f"{SERIES}?{READ}&tz=%"),
    # methods, routes and encodings
    "unknown-route": Case("POST", "/v1/serie/", points("1"), 404),
    "wrong-method": Case("PATCH", "/v1/series/key/k/", '{"name": "x"}', 405),
    "brotli-body": Case("POST", SERIES, points("1"), 415, (("Content-Encoding", "br"),)),
    "gzip-not-gzip": Case("POST", SERIES, points("1"), 400, (("Content-Encoding", "gzip"),)),
    "gzip-truncated": Case(
        "POST",
        SERIES,
        gzip.compress(points("1").encode())[:-6],
        400,
        (("Content-Encoding", "gzip"),),
    ),
    "gzip-of-bad-json": Case(
        "POST", SERIES, gzip.compress(points("NaN").encode()), 400, (("Content-Encoding", "gzip"),)
    ),
}


def snapshot(raw: Raw) -> Any:
    """Everything the database holds: series metadata and every point."""
    listed = raw.request("GET", "/v1/series/")
    assert listed.status == 200
    state = []
    for series in listed.json():
        path = f"/v1/series/id/{series['id']}/data/"
        reply = raw.request("GET", f"{path}?start=0001-01-01&end=9999-12-31&interval=raw")
        assert reply.status == 200
        state.append((series, reply.json()["data"]))
    return state


def assert_readable(reply: Reply) -> None:
    """A plain-text message a person can read, with an error code."""
    assert reply.headers["content-type"].startswith("text/plain"), reply.headers
    assert reply.headers.get("x-tempodb-error")
    text = reply.body.decode("utf-8")
    assert 0 < len(text.strip()) <= 400, text
    assert text.strip().isprintable(), text
    assert "Traceback" not in text


#: Integer literals past 2**53 in magnitude, short and long (issue 20: every length, one rule).
BIG_INTEGERS = {
    "2^53+1": str(2**53 + 1),
    "2^63": str(2**63),
    "2^64+1": str(2**64 + 1),
    "30-digits": "123456789012345678901234567890",
    "40-digits": "1" + "0" * 39,
    "400-digits": "7" * 400,
    "5000-digits": "3" * 5000,  # past the 4,300 digits Python turns into an int
}
OUT_OF_RANGE = "Integer value out of range (at most 2^53 in magnitude)"


def _big_integer_cases() -> dict[str, Case]:
    """Each big integer, positive and negative, on every write route, in the layout the fast
    parsers take and in one they leave to the general path (spaces, keys reordered)."""
    cases = {}
    for name, digits in BIG_INTEGERS.items():
        for sign in ("", "-"):
            v = sign + digits
            label = f"{sign or '+'}{name}"
            usual = f'[{{"t":"2012-01-01T00:30:00Z","v":{v}}}]'
            unusual = f'[ {{ "v" : {v} , "t" : "2012-01-01T00:30:00Z" }} ]'
            multi = f'[{{"t":"2012-01-01T00:30:00Z","key":"k","v":{v}}}]'
            multi_unusual = f'[ {{"v": {v}, "key": "k", "t": "2012-01-01T00:30:00Z"}} ]'
            cases |= {
                f"int-{label}-series": Case("POST", SERIES, usual),
                f"int-{label}-series-unusual": Case("POST", SERIES, unusual),
                f"int-{label}-increment": Case("POST", "/v1/series/key/k/increment/", usual),
                f"int-{label}-bulk": Case(
                    "POST", "/v1/data/", f'{{"t":"2012-01-01","data":[{{"key":"k","v":{v}}}]}}'
                ),
                f"int-{label}-multi": Case("POST", "/v1/multi/", multi, 207),
                f"int-{label}-multi-unusual": Case("POST", "/v1/multi/", multi_unusual, 207),
                f"int-{label}-multi-increment": Case("POST", "/v1/multi/increment/", multi, 207),
            }
    return cases


CASES |= _big_integer_cases()


@pytest.fixture(scope="module")
def victim(server: Any) -> tuple[Raw, Any]:
    """A database holding series ``k`` (tags, attributes, a day of points) and its state."""
    raw = Raw(server.host, server.port, server.new_database("bad-input"))
    created = raw.request(
        "POST", "/v1/series/", {"key": "k", "name": "n", "tags": ["t"], "attributes": {"a": "1"}}
    )
    assert created.status == 200
    start = datetime.datetime(2012, 1, 1, tzinfo=datetime.UTC)
    data = [{"t": (start + datetime.timedelta(minutes=i)).isoformat(), "v": i} for i in range(1440)]
    assert raw.request("POST", SERIES, data).status == 200
    return raw, snapshot(raw)


@pytest.mark.parametrize("name", sorted(CASES))
def test_malformed_request_is_refused_and_writes_nothing(
    victim: tuple[Raw, Any], name: str
) -> None:
    raw, before = victim
    case = CASES[name]
    reply = raw.request(case.method, case.path, case.body, dict(case.headers))
    assert reply.status == case.status, (name, reply.status, reply.text)
    if case.status == 207:  # a multi write (or bulk creation) whose every element is invalid
        statuses = {entry["status"] for entry in reply.json()["multistatus"]}
        assert statuses == {"422"}, reply.text
    else:
        assert_readable(reply)
    if name.startswith("int-"):  # one rule, one message, whatever the length and the route
        assert OUT_OF_RANGE in reply.text, (name, reply.text)
    assert snapshot(raw) == before, f"{name} changed the database"


# -- bodies past the limit ---------------------------------------------------------------------

LIMIT_MB = 0.0625  # 64 KiB
LIMIT = int(LIMIT_MB * 1024 * 1024)


@pytest.fixture(scope="module")
def small_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Raw]]:
    store = data_args(tmp_path_factory.mktemp("small") / "data")
    credentials = create_key(store)
    process = ServerProcess.start(store, "--max-body-mb", str(LIMIT_MB))
    yield process, Raw(process.host, process.port, credentials)
    assert process.stop() == 0


def peak_memory(process: ServerProcess) -> int:
    """The server's peak resident memory (VmHWM), in bytes."""
    for line in Path(f"/proc/{process.process.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def stream(process: ServerProcess, raw: Raw, chunks: Iterator[bytes], *headers: str) -> Reply:
    """POST a chunked body, chunk by chunk, until the server answers; assert it answered
    before the body ended (so it did not wait for, or keep, the rest)."""
    assert raw.credentials is not None
    sock = socket.create_connection((process.host, process.port), timeout=30)
    head = [
        f"POST {SERIES} HTTP/1.1",
        f"Host: {process.host}",
        f"Authorization: {basic(*raw.credentials)}",
        "Transfer-Encoding: chunked",
        *headers,
    ]
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
    answered = False
    for chunk in chunks:
        sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        if select.select([sock], [], [], 0.02)[0]:
            answered = True
            break
    assert answered, "the server waited for the whole body"
    received = b""
    while b"\r\n\r\n" not in received:
        received += sock.recv(65536)
    sock.close()
    status_line, _, rest = received.partition(b"\r\n")
    head_text, _, body = rest.partition(b"\r\n\r\n")
    fields = dict(line.split(": ", 1) for line in head_text.decode().split("\r\n"))
    return Reply(int(status_line.split()[1]), {k.lower(): v for k, v in fields.items()}, body)


def test_declared_oversized_body_gets_413(small_server: tuple[ServerProcess, Raw]) -> None:
    _, raw = small_server
    body = "[" + ",".join([f'{{"t": "2012-01-01", "v": {i}}}' for i in range(5000)]) + "]"
    assert len(body) > LIMIT
    reply = raw.request("POST", SERIES, body)
    assert reply.status == 413
    assert_readable(reply)
    assert str(LIMIT) in reply.text
    assert raw.request("GET", "/v1/series/").json() == []


def test_endless_body_is_refused_without_buffering(
    small_server: tuple[ServerProcess, Raw],
) -> None:
    process, raw = small_server
    before = peak_memory(process)
    reply = stream(process, raw, (b"[" + b" " * 65535 for _ in range(3200)))  # up to 200 MiB
    assert reply.status == 413
    assert peak_memory(process) - before < 16 * 1024 * 1024
    assert raw.request("GET", "/v1/series/").json() == []


def test_gzip_bomb_is_refused_without_inflating_it(
    small_server: tuple[ServerProcess, Raw],
) -> None:
    process, raw = small_server
    before = peak_memory(process)
    squeeze = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    megabyte = b"[" + b" " * (1024 * 1024 - 1)
    bomb = b"".join(squeeze.compress(megabyte) for _ in range(48)) + squeeze.flush()
    assert len(bomb) < LIMIT  # 48 MiB of JSON in less than the body limit
    reply = raw.request("POST", SERIES, bomb, {"Content-Encoding": "gzip"})
    assert reply.status == 413
    assert_readable(reply)
    assert peak_memory(process) - before < 16 * 1024 * 1024
    # The same bomb streamed in small pieces is refused as early.
    pieces = (bomb[i : i + 1024] for i in range(0, len(bomb), 1024))
    assert stream(process, raw, pieces, "Content-Encoding: gzip").status == 413
    assert raw.request("GET", "/v1/series/").json() == []


def test_gzip_body_within_the_limit_is_accepted(small_server: tuple[ServerProcess, Raw]) -> None:
    _, raw = small_server
    body = gzip.compress(points("2").encode())
    reply = raw.request("POST", "/v1/series/key/zipped/data/", body, {"Content-Encoding": "gzip"})
    assert reply.status == 200, reply.text
    read = raw.request("GET", f"/v1/series/key/zipped/data/?{READ}&interval=raw")
    assert [p["v"] for p in read.json()["data"]] == [5, 2]
    assert raw.request("DELETE", "/v1/series/?key=zipped").json() == {"deleted": 1}


def test_a_body_cut_short_is_never_run(small_server: tuple[ServerProcess, Raw]) -> None:
    """A client that goes away before the end of its body (here: a complete JSON document, but
    shorter than its Content-Length) has nothing written."""
    process, raw = small_server
    assert raw.credentials is not None
    body = b'[{"t": "2012-01-01T00:00:00Z", "v": 1}]'
    for key in ("cut-0", "cut-1", "cut-2"):
        sock = socket.create_connection((process.host, process.port), timeout=10)
        head = (
            f"POST /v1/series/key/{key}/data/ HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: {basic(*raw.credentials)}\r\nContent-Length: {len(body) + 10}\r\n\r\n"
        )
        sock.sendall(head.encode() + body)
        time.sleep(0.1)
        sock.close()
    time.sleep(0.3)
    assert raw.request("GET", "/v1/series/").json() == []


def test_integers_up_to_2_53_are_stored_exactly_on_every_route(server: Any) -> None:
    """The other side of the rule: ±2**53 is taken by every write route, exactly."""
    raw = Raw(server.host, server.port, server.new_database("exact-integers"))
    edge = 2**53
    bodies = [
        ("/v1/series/key/single/data/", f'[{{"t":"2012-01-01T00:00:00Z","v":{edge}}}]'),
        ("/v1/series/key/single/data/", f'[ {{"v": -{edge}, "t": "2012-01-01T00:00:01Z"}} ]'),
        ("/v1/data/", f'{{"t":"2012-01-01T00:00:02Z","data":[{{"key":"single","v":{edge}}}]}}'),
        ("/v1/multi/", f'[{{"t":"2012-01-01T00:00:03Z","key":"single","v":-{edge}}}]'),
    ]
    for path, body in bodies:
        reply = raw.request("POST", path, body)
        assert reply.status == 200, (path, reply.text)
    read = raw.request("GET", f"/v1/series/key/single/data/?{READ}")
    assert [p["v"] for p in read.json()["data"]] == [edge, -edge, edge, -edge]
