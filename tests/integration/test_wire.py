"""Wire conformance: the spec's encodings, tolerances and status codes, spoken in raw HTTP as
the various original clients spoke it."""

from __future__ import annotations

import base64
import gzip
import http.client
import json
import socket
from dataclasses import dataclass
from typing import Any

import pytest


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()

    def json(self) -> Any:
        return json.loads(self.body)


class Raw:
    """Raw HTTP against the test server, with the credentials of a fresh database."""

    def __init__(self, host: str, port: int, key: str, secret: str) -> None:
        self.host, self.port = host, port
        self.auth = "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode()

    def __call__(
        self,
        method: str,
        path: str,
        body: bytes | str | Any = None,
        headers: dict[str, str] | None = None,
        auth: str | None = "default",
    ) -> Reply:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        all_headers = dict(headers or {})
        if auth == "default":
            all_headers["Authorization"] = self.auth
        elif auth is not None:
            all_headers["Authorization"] = auth
        if body is not None and not isinstance(body, bytes | str):
            body = json.dumps(body)
        conn.request(method, path, body=body, headers=all_headers)
        response = conn.getresponse()
        reply = Reply(
            response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        )
        conn.close()
        return reply


@pytest.fixture
def raw(server: Any, credentials: tuple[str, str]) -> Raw:
    return Raw(server.host, server.port, *credentials)


POINTS = [
    {"t": "2013-03-01T06:00:00.000Z", "v": 61.5},
    {"t": "2013-03-01T06:20:00.000Z", "v": 64},
    {"t": "2013-03-01T07:10:00.000Z", "v": 59.25},
]


def test_worked_example_of_the_spec(raw: Raw) -> None:
    created = raw("POST", "/v1/series/", {"key": "boiler.3.temp"})
    assert created.status == 200
    assert created.headers["content-type"].startswith("application/json")
    series = created.json()
    assert list(series) == ["id", "key", "name", "tags", "attributes"]
    assert series["key"] == "boiler.3.temp"
    assert series["tags"] == []
    assert len(series["id"]) == 32

    written = raw("POST", "/v1/series/key/boiler.3.temp/data/", POINTS)
    assert (written.status, written.body) == (200, b"")

    read = raw(
        "GET",
        "/v1/series/key/boiler.3.temp/data/?start=2013-03-01T06%3A00%3A00.000Z"
        "&end=2013-03-01T08%3A00%3A00.000Z&interval=1hour&function=max"
        "&tz=America%2FChicago",
    )
    assert read.status == 200
    assert read.json() == {
        "series": series,
        "start": "2013-03-01T00:00:00.000-06:00",
        "end": "2013-03-01T02:00:00.000-06:00",
        "data": [
            {"t": "2013-03-01T00:00:00.000-06:00", "v": 64},
            {"t": "2013-03-01T01:00:00.000-06:00", "v": 59.25},
        ],
        "rollup": {"interval": "PT1H", "function": "max", "tz": "America/Chicago"},
        "summary": {
            "sum": 184.75,
            "mean": 61.583333333333336,
            "max": 64,
            "min": 59.25,
            "stddev": 2.376096238230542,
            "ss": 11.291666666666666,
            "count": 3,
        },
    }
    assert list(read.json()) == ["series", "start", "end", "data", "rollup", "summary"]
    assert b'"v":64}' in read.body  # an integer stays an integer


def test_multi_write_with_a_bad_element(raw: Raw) -> None:
    reply = raw(
        "POST",
        "/v1/multi/",
        [
            {"t": "2013-03-01T06:00:00.000Z", "key": "a", "v": 1},
            {"t": "2013-03-01T06:00:00.000Z", "v": 2},
        ],
    )
    assert reply.status == 207
    assert reply.json() == {
        "multistatus": [
            {"status": "200", "messages": []},
            {"status": "422", "messages": ["Must provide a series ID or key"]},
        ]
    }
    read = raw("GET", "/v1/series/key/a/data?start=2013-03-01&end=2013-03-02")
    assert [p["v"] for p in read.json()["data"]] == [1]


@pytest.mark.parametrize("route", ["/v1/multi/", "/v1/multi/increment/"])
@pytest.mark.parametrize("size", [2, 200], ids=["small", "large"])
def test_multi_write_by_an_id_that_is_another_series_key(raw: Raw, route: str, size: int) -> None:
    """An unknown id cannot become a series whose key is taken: that element answers 409 in
    the 207, and the others are written (issue 25, item 2)."""
    raw("POST", "/v1/series/", {"key": "room.1"})
    body = [
        {"t": "2012-01-01", "key": "good1", "v": 7},
        {"t": "2012-01-01", "id": "room.1", "v": 7},
    ]
    body += [{"t": f"2012-01-02T00:00:{i % 60:02d}.{i // 60:03d}Z", "key": f"more{i}", "v": i}
             for i in range(size - 2)]  # fmt: skip
    reply = raw("POST", route, body)
    assert reply.status == 207
    statuses = [entry["status"] for entry in reply.json()["multistatus"]]
    assert statuses == ["200", "409"] + ["200"] * (size - 2)
    assert reply.json()["multistatus"][1]["messages"] == [
        "Unique constraint violated: a series with key room.1 already exists"
    ]
    read = raw("GET", "/v1/series/key/good1/data?start=2012-01-01&end=2012-01-02")
    assert [p["v"] for p in read.json()["data"]] == [7]
    assert raw("GET", "/v1/series/id/room.1/").status == 403  # not found, as the spec has it
    room = raw("GET", "/v1/series/key/room.1/data?start=2012-01-01&end=2012-01-02")
    assert room.json()["data"] == []


@pytest.mark.parametrize("route", ["/v1/multi/", "/v1/multi/increment/"])
def test_multi_elements_naming_series_by_objects_or_lists(raw: Raw, route: str) -> None:
    """An id or key that is an object or a list is that element's 422, twice alike; the
    others are written (it was a 500: such values cannot key a dict)."""
    t = "2012-01-01T00:00:00Z"
    body = [
        {"t": t, "id": {}, "v": 1},
        {"t": t, "key": ["a"], "v": 1},
        {"t": t, "id": {}, "v": 1},
        {"t": t, "key": "fine", "v": 1},
    ]
    reply = raw("POST", route, body)
    assert reply.status == 207
    entries = reply.json()["multistatus"]
    assert [e["status"] for e in entries] == ["422", "422", "422", "200"]
    assert entries[0] == entries[2]
    read = raw("GET", "/v1/series/key/fine/data?start=2012-01-01&end=2012-01-02")
    assert [p["v"] for p in read.json()["data"]] == [1]


def test_delete_series_needs_a_filter_or_truncation(raw: Raw) -> None:
    for key, tag in [("k1", "old"), ("k2", "old"), ("k3", "new")]:
        raw("POST", "/v1/series/", {"key": key, "tags": [tag]})
    assert raw("DELETE", "/v1/series/?tag=old&allow_truncation=false").json() == {"deleted": 2}
    refused = raw("DELETE", "/v1/series/?allow_truncation=false")
    assert refused.status == 400
    assert refused.headers["content-type"].startswith("text/plain")
    assert "allow_truncation" in refused.text
    assert raw("GET", "/v1/series/").json()[0]["key"] == "k3"
    assert raw("DELETE", "/v1/series?allow_truncation=true").json() == {"deleted": 1}
    assert raw("GET", "/v1/series").json() == []


@pytest.mark.parametrize(
    "path",
    [
        "/v1/series/key/{k}/data/",
        "/v1/series/key/{k}/data",
        "/v1/series/id/{i}/data/",
        "/v1/series/id/{i}/data",
    ],
)
def test_both_path_forms_and_both_address_kinds(raw: Raw, path: str) -> None:
    series = raw("POST", "/v1/series", {"key": "s"}).json()
    url = path.format(k="s", i=series["id"])
    assert raw("POST", url, [{"t": "2012-01-01T00:00:00Z", "v": 1}]).status == 200
    data = raw("GET", url + "?start=2012-01-01&end=2012-01-02").json()["data"]
    assert data == [{"t": "2012-01-01T00:00:00.000Z", "v": 1}]


@pytest.mark.parametrize(
    ("key", "encoded"),
    [
        ("ke:y/1", "ke%3Ay%2F1"),
        ("a b", "a%20b"),
        ("a b", "a+b"),
        ("x;y\\z", "x%3By%5Cz"),
        ("dots.and-dash_", "dots.and-dash_"),
    ],
)
def test_encoded_keys_in_the_path(raw: Raw, key: str, encoded: str) -> None:
    assert (
        raw(
            "POST", f"/v1/series/key/{encoded}/data/", [{"t": "2012-01-01T00:00:00", "v": 2.5}]
        ).status
        == 200
    )
    (series,) = raw("GET", "/v1/series/").json()
    assert series["key"] == key
    got = raw("GET", f"/v1/series/key/{encoded}/").json()
    assert got == series


def test_empty_parameters_count_as_absent(raw: Raw) -> None:
    raw("POST", "/v1/series/key/k/data/", [{"t": "2012-01-01T00:00:00Z", "v": 1}])
    reply = raw(
        "GET",
        "/v1/series/key/k/data/?end=2012-01-02T00:00:00.000Z&function=&interval="
        "&start=2012-01-01T00:00:00.000Z&tz=&hello=true",
    )
    assert reply.status == 200
    assert reply.json()["rollup"] is None
    assert reply.json()["data"] == [{"t": "2012-01-01T00:00:00.000Z", "v": 1}]


def test_attribute_filters_in_every_spelling(raw: Raw) -> None:
    raw("POST", "/v1/series/", {"key": "a", "attributes": {"room": "1 2", "n": 27}})
    raw("POST", "/v1/series/", {"key": "b", "attributes": {"room": "3"}})
    for query in ["attr%5Broom%5D=1+2", "attr[room]=1%202", "attr%5Broom%5D=1%202"]:
        found = raw("GET", f"/v1/series/?{query}").json()
        assert [s["key"] for s in found] == ["a"], query
    assert raw("GET", "/v1/series/key/a/").json()["attributes"] == {"room": "1 2", "n": "27"}


def test_status_codes(raw: Raw, server: Any) -> None:
    missing = raw("GET", "/v1/series/", auth=None)
    assert missing.status == 401
    assert missing.headers["www-authenticate"] == 'Basic realm="TempoDB"'
    wrong = raw("GET", "/v1/series/", auth="Basic " + base64.b64encode(b"nokey:nosecret").decode())
    assert wrong.status == 403
    key = raw.auth  # right key, wrong secret
    user = base64.b64decode(key.split()[1]).decode().split(":")[0]
    wrong_secret = "Basic " + base64.b64encode(f"{user}:bad".encode()).decode()
    assert raw("GET", "/v1/series/", auth=wrong_secret).status == 403

    assert raw("POST", "/v1/series/", {"key": "dup"}).status == 200
    conflict = raw("POST", "/v1/series/", {"key": "dup"})
    assert conflict.status == 409
    assert "dup" in conflict.text

    # A write by an unknown id creates a series whose key is that id: taken here (small
    # writes run on the server's event loop, large ones on a worker thread: both say 409).
    for body in (
        [{"t": "2012-01-01T00:00:00Z", "v": 1}],
        [{"t": f"2012-01-01T{i // 60:02d}:{i % 60:02d}:00Z", "v": i} for i in range(1000)],
    ):
        taken = raw("POST", "/v1/series/id/dup/data/", body)
        assert taken.status == 409, taken.text
        assert taken.headers["x-tempodb-error"] == "conflict"
    bulk = {"t": "2012-01-01T00:00:00Z", "data": [{"key": "fresh", "v": 1}, {"id": "dup", "v": 2}]}
    assert raw("POST", "/v1/data/", bulk).status == 409
    assert raw("GET", "/v1/series/key/fresh/").status == 403  # nothing of it was written

    assert raw("POST", "/v1/series/", {"key": "bad%^key"}).status == 400
    assert raw("GET", "/v1/series/key/nothing/data/?start=2012-01-01&end=2012-01-02").status == 403
    assert raw("GET", "/v1/series/key/nothing/").status == 403
    assert raw("PUT", "/v1/series/id/nothing/", {"tags": []}).status == 403
    assert (
        raw("DELETE", "/v1/series/key/nothing/data/?start=2012-01-01&end=2012-01-02").status == 403
    )
    assert raw("GET", "/v1/nowhere/").status == 404
    assert raw("PATCH", "/v1/series/").status == 405
    assert raw("POST", "/v1/database/", {"name": "x"}).status == 403  # not an administrator


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/series/key/k/data/", b"{not json"),
        ("POST", "/v1/series/key/k/data/", {"t": "2012-01-01", "v": 1}),
        ("POST", "/v1/series/key/k/data/", [{"t": "2012-13-01", "v": 1}]),
        ("POST", "/v1/series/key/k/data/", [{"t": "2012-01-01", "v": "abc"}]),
        ("POST", "/v1/series/key/k/data/", [{"t": "2012-01-01", "v": None}]),
        ("POST", "/v1/series/key/k/data/", [{"t": "2012-01-01", "v": 2**60}]),
        ("POST", "/v1/series/key/k/data/", [{"t": "2012-01-01", "v": [1]}]),
        ("POST", "/v1/series/key/k/data/", [{"t": 5, "v": 1}]),
        ("POST", "/v1/series/key/k/data/", ["x"]),
        ("POST", "/v1/series/key/bad%25key/data/", [{"t": "2012-01-01", "v": 1}]),
        ("POST", "/v1/series/id/bad%25id/increment/", [{"t": "2012-01-01", "v": 1}]),
        ("POST", "/v1/data/", {"t": "2012-01-01", "data": [{"key": "k", "v": 1}, {"v": 2}]}),
        ("POST", "/v1/data/", [1, 2]),
        ("POST", "/v1/increment/", {"t": "nope", "data": [{"key": "k", "v": 1}]}),
        ("POST", "/v1/multi/", {"t": "2012-01-01"}),
        ("GET", "/v1/series/key/k/data/?start=2012-01-01", None),
        ("GET", "/v1/series/key/k/data/?start=2012-01-02&end=2012-01-01", None),
        ("GET", "/v1/data/?start=2012-01-01&end=2012-01-02&interval=7fortnight", None),
        ("GET", "/v1/data/?start=2012-01-01&end=2012-01-02&function=median", None),
        ("GET", "/v1/data/?start=2012-01-01&end=2012-01-02&tz=Mars/Base", None),
        ("GET", "/v1/data/?start=yesterday&end=2012-01-02", None),
        ("GET", "/v1/single/?ts=2012-01-01&direction=sideways", None),
        ("GET", "/v1/single/?ts=yesterday", None),  # no ts is now (1.0): tested elsewhere
        ("PUT", "/v1/series/key/k/", {"tags": "notalist"}),
        ("PUT", "/v1/series/key/k/", [1]),
        ("PUT", "/v1/series/key/k/", {"name": "nul\u0000name"}),
        ("PUT", "/v1/series/key/k/", {"tags": ["a\u0000"]}),
        ("PUT", "/v1/series/key/k/", {"attributes": {"a": "b\u0000"}}),
        ("POST", "/v1/series/", {"key": "other", "attributes": {"a\u0000": "b"}}),
    ],
)
def test_bad_input_is_400_and_writes_nothing(raw: Raw, method: str, path: str, body: Any) -> None:
    raw("POST", "/v1/series/", {"key": "k"})
    reply = raw(method, path, body)
    assert reply.status == 400, reply.text
    assert reply.headers["content-type"].startswith("text/plain")
    assert reply.text.strip()
    assert [s["key"] for s in raw("GET", "/v1/series/").json()] == ["k"]
    data = raw("GET", "/v1/series/key/k/data/?start=2000-01-01&end=2030-01-01&interval=raw")
    assert data.json()["data"] == []


def test_bad_element_in_a_big_write_writes_nothing(raw: Raw) -> None:
    points: list[dict[str, Any]] = [
        {"t": f"2012-01-01T00:{m:02d}:00.000Z", "v": m} for m in range(60)
    ]
    points[42]["v"] = "forty-two"
    reply = raw("POST", "/v1/series/key/k/data/", points)
    assert reply.status == 400
    assert "42" in reply.text
    assert raw("GET", "/v1/series/").json() == []


def test_json_bodies_with_any_content_type_and_a_trailing_comma(raw: Raw) -> None:
    body = (
        b'[{"t":"2012-01-01T00:00:00.000+0000","v":1},{"t":"2012-01-01T00:01:00.000+0000","v":2},]'
    )
    for content_type in ("text/plain; charset=ISO-8859-1", "application/x-www-form-urlencoded"):
        reply = raw("POST", "/v1/series/key/k/data/", body, {"Content-Type": content_type})
        assert reply.status == 200, reply.text
    bulk = b'{"data":[{"key":"k","v":10.000000},]}'  # the embedded C client: no t, trailing comma
    assert raw("POST", "/v1/increment", bulk).status == 200


def test_missing_timestamp_means_now(raw: Raw) -> None:
    assert raw("POST", "/v1/series/key/k/data/", [{"v": 10}, {"t": None, "v": 11}]).status == 200
    reply = raw("GET", "/v1/single/?ts=2100-01-01&direction=before&key=k").json()
    assert reply[0]["data"]["v"] in (10, 11)
    assert reply[0]["data"]["t"] > "2026-"


def test_timestamp_spellings(raw: Raw) -> None:
    spellings = [
        "2012-01-01T00:00:00",
        "2012-01-01T00:00:00.000Z",
        "2012-01-01T00:00:00.000+0000",
        "2012-01-01T00:00:00+00:00",
        "2011-12-31T18:00:00.000-06:00",
        "2012-01-01",
        "2012-01-01 00:00:00",
        "2012-01-01T00:00:00.000000Z",
        "2011-12-31T19:00-05",
    ]
    for i, spelling in enumerate(spellings):
        assert (
            raw("POST", "/v1/series/key/k/increment/", [{"t": spelling, "v": 1}]).status == 200
        ), i
    data = raw("GET", "/v1/series/key/k/data/?start=2012-01-01&end=2012-01-01T00:00:00.001Z")
    assert data.json()["data"] == [{"t": "2012-01-01T00:00:00.000Z", "v": len(spellings)}]


def test_unencoded_plus_offset_in_the_query(raw: Raw) -> None:
    raw("POST", "/v1/series/key/k/data/", [{"t": "2012-01-01T05:00:00Z", "v": 1}])
    reply = raw(
        "GET",
        "/v1/series/key/k/data/?start=2012-01-01T00:00:00.000+0000&end=2012-01-01T07:00:00+01:00",
    )
    assert reply.status == 200, reply.text
    assert [p["v"] for p in reply.json()["data"]] == [1]


def test_gzip_only_when_asked(raw: Raw) -> None:
    points = [{"t": f"2012-01-01T00:{m:02d}:00Z", "v": m} for m in range(60)]
    raw("POST", "/v1/series/key/k/data/", points)
    url = "/v1/series/key/k/data/?start=2012-01-01&end=2012-01-02"
    zipped = raw("GET", url, headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert len(json.loads(gzip.decompress(zipped.body))["data"]) == 60
    plain = raw("GET", url)
    assert "content-encoding" not in plain.headers
    assert len(plain.json()["data"]) == 60


def test_http_1_0_request_like_the_embedded_c_client(raw: Raw, server: Any) -> None:
    body = b'[{"v":10.000000}]'
    request = (
        b"POST /v1/series/key/c-device/data HTTP/1.0\r\nHost: api.tempo-db.com\r\n"
        b"Authorization: " + raw.auth.encode() + b"\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.")
    assert answer.split(b"\r\n")[0].endswith(b"200 OK")


def test_healthz_needs_no_credentials(raw: Raw) -> None:
    assert raw("GET", "/healthz", auth=None).status == 200


def test_one_key_never_sees_another_keys_data(raw: Raw, server: Any) -> None:
    raw("POST", "/v1/series/key/private/data/", [{"t": "2012-01-01", "v": 1}])
    own = raw("GET", "/v1/series/").json()
    other = Raw(server.host, server.port, *server.new_database())
    assert other("GET", "/v1/series/").json() == []
    assert other("GET", "/v1/series/key/private/").status == 403
    assert (
        other("GET", f"/v1/series/id/{own[0]['id']}/data/?start=2012-01-01&end=2012-01-02").status
        == 403
    )
    assert other("GET", "/v1/data/?start=2012-01-01&end=2012-01-02").json() == []
    other("POST", "/v1/series/key/private/data/", [{"t": "2012-01-01", "v": 99}])
    mine = raw("GET", "/v1/series/key/private/data/?start=2012-01-01&end=2012-01-02").json()
    assert mine["data"][0]["v"] == 1


def test_single_value_directions(raw: Raw) -> None:
    raw(
        "POST",
        "/v1/series/key/k/data/",
        [{"t": "2012-01-01T00:00:00Z", "v": 1}, {"t": "2012-01-01T00:10:00Z", "v": 2}],
    )
    base = "/v1/series/key/k/single/?ts=2012-01-01T00:05:00Z"
    assert raw("GET", base).json()["data"] is None
    assert raw("GET", base + "&direction=before").json()["data"]["v"] == 1
    assert raw("GET", base + "&direction=after").json()["data"]["v"] == 2
    assert raw("GET", base + "&direction=nearest").json()["data"]["v"] == 1  # tie: earlier
    exact = raw("GET", "/v1/series/key/k/single/?ts=2012-01-01T00:10:00Z").json()
    assert exact["data"] == {"t": "2012-01-01T00:10:00.000Z", "v": 2}
    assert list(exact) == ["series", "data"]


def test_unknown_id_write_creates_the_series(raw: Raw) -> None:
    reply = raw("POST", "/v1/data/", {"t": "2012-01-01", "data": [{"id": "non-existent", "v": 1}]})
    assert reply.status == 200
    series = raw("GET", "/v1/series/id/non-existent/").json()
    assert series["key"] == "non-existent"


def test_update_series_keeps_id_and_key(raw: Raw) -> None:
    created = raw("POST", "/v1/series/", {"key": "k"}).json()
    body = {
        **created,
        "key": "changed",
        "name": "my series",
        "tags": ["a", "a", "b"],
        "attributes": {"x": "1"},
    }
    updated = raw("PUT", f"/v1/series/id/{created['id']}/", body).json()
    assert updated == {
        "id": created["id"],
        "key": "k",
        "name": "my series",
        "tags": ["a", "b"],
        "attributes": {"x": "1"},
    }
    by_key = raw("PUT", "/v1/series/key/k", {"name": "renamed"}).json()
    assert by_key["name"] == "renamed"
    assert by_key["tags"] == ["a", "b"]


def test_delete_with_start_equal_to_end_deletes_the_one_point_there(raw: Raw) -> None:
    """Spec §4.14: ``[start, end)``, and ``start == end`` deletes the single point at that
    instant (in whatever spelling of it), nothing beside it."""
    path = "/v1/series/key/one/data/"
    assert raw("POST", path, POINTS).status == 200
    equal = "?start=2013-03-01T06%3A20%3A00.000Z&end=2013-03-01T00%3A20%3A00-06%3A00"
    deleted = raw("DELETE", path + equal)
    assert (deleted.status, deleted.body) == (200, b"")
    left = raw("GET", path + "?start=2013-03-01&end=2013-03-02&interval=raw").json()["data"]
    assert [p["v"] for p in left] == [61.5, 59.25]
    # Where there is no point, nothing happens; an end before the start is refused.
    assert raw("DELETE", path + "?start=2013-03-01T06:21:00Z&end=2013-03-01T06:21:00Z").status == (
        200
    )
    backwards = raw("DELETE", path + "?start=2013-03-01T07:00:00Z&end=2013-03-01T06:00:00Z")
    assert backwards.status == 400
    again = raw("GET", path + "?start=2013-03-01&end=2013-03-02&interval=raw").json()["data"]
    assert [p["v"] for p in again] == [61.5, 59.25]
