"""Bulk series creation (``POST /v1/series/`` with a JSON array) against a real server process:
on the wire, through both clients and through ``tempodb series create``.

Every test checks what the store holds afterwards by listing series over the API, so that a
series reported as created is really there with its tags and attributes, and a refused
request really created nothing.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3

from serverproc import ServerProcess, create_key, data_args, tempodb_command
from tempodb import (
    AsyncClient,
    Client,
    ConflictError,
    CreatedSeries,
    InvalidRequestError,
    RefusedSeries,
    Series,
)

#: The request limit of the second server of this module (``--max-series-per-request``).
LIMIT = 20


class Wire:
    """Raw requests with one database's credentials: exact statuses, headers and bodies."""

    def __init__(self, url: str, credentials: tuple[str, str]) -> None:
        self.url = url
        self.headers = urllib3.make_headers(basic_auth=":".join(credentials))
        self.pool = urllib3.PoolManager()

    def post_series(self, body: Any) -> urllib3.BaseHTTPResponse:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        return self.pool.request(
            "POST", f"{self.url}/v1/series/", body=data, headers=self.headers, retries=False
        )


@pytest.fixture
def wire(server: Any, credentials: tuple[str, str]) -> Wire:
    return Wire(server.url, credentials)


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Any]]:
    """A server with ``--auto-tag --max-series-per-request 20`` and its data directory."""
    store = data_args(tmp_path_factory.mktemp("bulk-limited"))
    admin = create_key(store, "--admin")
    process = ServerProcess.start(store, "--auto-tag", "--max-series-per-request", str(LIMIT))
    yield process, admin
    assert process.stop() == 0


@pytest.fixture
def limited_client(limited: tuple[ServerProcess, Any]) -> Iterator[Client]:
    process, admin = limited
    key, secret = _new_database(process, admin)
    with Client(key, secret, host=process.host, port=process.port, secure=False) as client:
        yield client


def _new_database(process: ServerProcess, admin: tuple[str, str]) -> tuple[str, str]:
    reply = urllib3.PoolManager().request(
        "POST",
        f"{process.url}/v1/database/",
        body=b'{"name": "bulk"}',
        headers=urllib3.make_headers(basic_auth=":".join(admin)),
    )
    assert reply.status == 200, reply.data
    created = reply.json()
    return created["id"], created["password"]


def _keys(series: list[Series]) -> list[str]:
    return [s.key for s in series]


# -- all created -------------------------------------------------------------------------------


def test_all_created_in_order_with_their_metadata(client: Client) -> None:
    given: list[Any] = [
        "boiler.1",
        {"key": "boiler.2", "name": "Boiler 2", "tags": ["boiler", "gas"], "attributes": {"f": 2}},
        Series("ignored-id", "boiler.3", "Boiler 3", {"floor": "3"}, ["boiler"]),
        None,  # a generated key
        {},  # another one
    ]
    created = client.create_many_series(given)

    assert isinstance(created, CreatedSeries)
    assert created.errors == []
    assert created.multistatus is None
    assert _keys(created)[:3] == ["boiler.1", "boiler.2", "boiler.3"]
    assert len(created) == 5
    assert created[1].name == "Boiler 2"
    assert created[1].tags == ["boiler", "gas"]
    assert created[1].attributes == {"f": "2"}  # scalars become strings, as in the single form
    assert created[2].id != "ignored-id"
    assert len(created[2].id) == 32
    for generated in created[3:]:
        assert generated.key == generated.id
    assert len({s.id for s in created}) == 5

    # The store holds them, and the tag and attribute indexes find them.
    assert _keys(client.get_series(tags=["boiler"])) == ["boiler.2", "boiler.3"]
    assert _keys(client.get_series(tags=["boiler", "gas"])) == ["boiler.2"]
    assert _keys(client.get_series(attributes={"floor": "3"})) == ["boiler.3"]
    stored = {s.key: s for s in client.get_series()}
    assert len(stored) == 5
    for series in created:
        assert stored[series.key] == series


def test_the_wire_answer_of_an_array(wire: Wire, client: Client) -> None:
    reply = wire.post_series([{"key": "a", "tags": ["t"]}, {"key": "b", "attributes": {"x": "y"}}])
    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("application/json")
    body = reply.json()
    assert isinstance(body, list)
    assert [s["key"] for s in body] == ["a", "b"]
    assert body == [s.to_json() for s in client.get_series()]


def test_an_empty_array_creates_nothing(wire: Wire, client: Client) -> None:
    reply = wire.post_series([])
    assert (reply.status, reply.json()) == (200, [])
    assert client.create_many_series([]) == []
    assert client.get_series() == []


def test_an_object_body_keeps_the_single_form(wire: Wire, client: Client) -> None:
    reply = wire.post_series({"key": "one", "tags": ["t"]})
    assert reply.status == 200
    assert reply.json()["key"] == "one"  # one Series object, not an array
    assert client.create_series().key  # {} still makes a generated key
    with pytest.raises(ConflictError):
        client.create_series("one")
    reply = wire.post_series(7)
    assert reply.status == 400
    assert b"JSON object" in reply.data


def test_series_of_one_key_are_not_seen_by_another(server: Any, client: Client) -> None:
    client.create_many_series(["private.1", {"key": "private.2", "tags": ["p"]}])
    with server.client(*server.new_database("other")) as other:
        assert other.get_series() == []
        assert other.get_series(tags=["p"]) == []
        created = other.create_many_series(["private.1"])  # the same key in its own database
        assert _keys(created) == ["private.1"]
    assert len(client.get_series()) == 2


# -- refused items -----------------------------------------------------------------------------


def test_duplicates_inside_the_request(client: Client) -> None:
    created = client.create_many_series(
        [
            {"key": "dup", "attributes": {"which": "first"}},
            "other",
            {"key": "dup", "attributes": {"which": "second"}},
        ]
    )
    assert _keys(created) == ["dup", "other"]
    assert created.errors == [
        RefusedSeries(
            2,
            "dup",
            409,
            [
                "Unique constraint violated: a series with key dup already exists "
                "(an earlier series of this request has the same key)"
            ],
        )
    ]
    assert created.multistatus is not None
    statuses = [entry["status"] for entry in created.multistatus["multistatus"]]
    assert statuses == ["200", "200", "409"]
    (stored,) = client.get_series(keys=["dup"])
    assert stored.attributes == {"which": "first"}


def test_keys_that_exist_are_refused_and_left_alone(client: Client, wire: Wire) -> None:
    client.create_series("old", attributes={"version": "1"})
    reply = wire.post_series([{"key": "old", "attributes": {"version": "2"}}, {"key": "new"}])
    assert reply.status == 207
    entries = reply.json()["multistatus"]
    assert entries[0] == {
        "status": "409",
        "messages": ["Unique constraint violated: a series with key old already exists"],
    }
    assert entries[1]["status"] == "200"
    assert entries[1]["messages"] == []
    assert entries[1]["series"]["key"] == "new"
    (old,) = client.get_series(keys=["old"])
    assert old.attributes == {"version": "1"}
    assert _keys(client.get_series()) == ["new", "old"]


INVALID: list[Any] = [
    "not an object",
    {"key": "bad%key"},
    {"key": "k" * 256},
    {"key": "t1", "tags": "not-a-list"},
    {"key": "t2", "tags": [""]},
    {"key": "t3", "tags": ["nul\x00"]},
    {"key": "a1", "attributes": ["x"]},
    {"key": "a2", "attributes": {"": "x"}},
    {"key": "n1", "name": 5},
]


def test_invalid_items_get_422_with_the_single_forms_message(wire: Wire, client: Client) -> None:
    body = [{"key": "good.1"}, *INVALID, {"key": "good.2", "tags": ["ok"]}]
    reply = wire.post_series(body)
    assert reply.status == 207
    entries = reply.json()["multistatus"]
    assert len(entries) == len(body)
    assert [e["status"] for e in entries] == ["200", *["422"] * len(INVALID), "200"]
    for item, entry in zip(INVALID, entries[1:-1], strict=True):
        assert len(entry["messages"]) == 1
        assert entry["messages"][0]
        assert "series" not in entry
        if isinstance(item, dict):  # the single form refuses it with the same words
            single = wire.post_series(item)
            assert single.status == 400
            assert single.data.decode().strip() == entry["messages"][0]
    assert entries[0]["messages"] == []
    assert entries[1]["messages"] == ["A series must be a JSON object"]
    assert _keys(client.get_series()) == ["good.1", "good.2"]  # only the valid ones


def test_the_client_reports_invalid_items_per_position(client: Client) -> None:
    created = client.create_many_series(["fine", {"key": "t", "tags": "x"}, {"name": []}])
    assert _keys(created) == ["fine"]
    assert [(e.index, e.key, e.status) for e in created.errors] == [(1, "t", 422), (2, None, 422)]
    assert created.errors[0].messages == ["tags must be a list of non-empty strings"]
    assert created.errors[1].messages == ["name must be a string"]


def test_the_client_refuses_bad_keys_before_sending(client: Client) -> None:
    with pytest.raises(ValueError, match=r"series 1 \('bad%'\)"):
        client.create_many_series(["ok", "bad%"])
    with pytest.raises(TypeError, match="series 0"):
        client.create_many_series([42])  # type: ignore[list-item]
    assert client.get_series() == []


# -- server options ----------------------------------------------------------------------------


def test_more_than_the_limit_is_refused_whole(
    limited: tuple[ServerProcess, Any], limited_client: Client
) -> None:
    process, _ = limited
    wire = Wire(process.url, (limited_client.key, limited_client.secret))
    reply = wire.post_series([{"key": f"s{i}"} for i in range(LIMIT + 1)])
    assert reply.status == 400
    assert reply.headers["X-TempoDB-Error"] == "too-many-series"
    assert reply.data.decode().strip() == (
        f"Too many series in one request: {LIMIT + 1} (at most {LIMIT} per request; "
        "send them in several requests)"
    )
    with pytest.raises(InvalidRequestError, match=f"at most {LIMIT} per request"):
        limited_client.create_many_series([f"s{i}" for i in range(LIMIT + 1)])
    assert limited_client.get_series() == []  # nothing created, not even the first LIMIT
    created = limited_client.create_many_series([f"s{i}" for i in range(LIMIT)])
    assert len(created) == LIMIT
    assert len(limited_client.get_series()) == LIMIT


def test_default_limit_is_ten_thousand(wire: Wire, client: Client) -> None:
    reply = wire.post_series([{}] * 10_001)
    assert reply.status == 400
    assert b"at most 10000 per request" in reply.data
    assert client.get_series() == []


def test_auto_tag_tags_each_key(limited_client: Client) -> None:
    created = limited_client.create_many_series(
        ["plant.boiler.3.temp", {"key": "plant.pump", "tags": ["own"]}, "flat", None]
    )
    assert [s.tags for s in created[:3]] == [["plant", "boiler", "3"], ["plant", "own"], []]
    assert created[3].tags == []  # a generated key has no dots to tag with
    single = limited_client.create_series("plant.boiler.4.temp")
    assert single.tags == ["plant", "boiler", "4"]  # the same rule as the single form
    found = limited_client.get_series(tags=["plant", "boiler"])
    assert _keys(found) == ["plant.boiler.3.temp", "plant.boiler.4.temp"]


def test_serve_refuses_a_limit_below_one(tmp_path: Path) -> None:
    result = subprocess.run(
        tempodb_command("serve", *data_args(tmp_path), "--max-series-per-request", "0"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "--max-series-per-request must be at least 1" in result.stderr


# -- the async client --------------------------------------------------------------------------


def test_async_client(server: Any, credentials: tuple[str, str], client: Client) -> None:
    client.create_series("exists")

    async def main() -> tuple[CreatedSeries, CreatedSeries, list[Series]]:
        async with AsyncClient(
            *credentials, host=server.host, port=server.port, secure=False
        ) as aclient:
            first = await aclient.create_many_series(
                [{"key": "room.1", "tags": ["room"], "attributes": {"floor": "1"}}, "room.2"]
            )
            second = await aclient.create_many_series(
                ["exists", {"key": "room.3", "tags": ["room"]}, {"tags": 3}]
            )
            return first, second, await aclient.get_series(tags=["room"])

    first, second, by_tag = asyncio.run(main())
    assert _keys(first) == ["room.1", "room.2"]
    assert first.errors == []
    assert first[0].attributes == {"floor": "1"}
    assert _keys(second) == ["room.3"]
    assert [(e.index, e.key, e.status) for e in second.errors] == [
        (0, "exists", 409),
        (2, None, 422),
    ]
    assert _keys(by_tag) == ["room.1", "room.3"]


# -- the command line --------------------------------------------------------------------------


def _tempodb(server: Any, credentials: tuple[str, str], *args: str, stdin: str = "") -> Any:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TEMPODB_")}
    env = {
        **clean,
        "TEMPODB_HOST": server.host,
        "TEMPODB_PORT": str(server.port),
        "TEMPODB_SECURE": "false",
        "TEMPODB_KEY": credentials[0],
        "TEMPODB_SECRET": credentials[1],
    }
    return subprocess.run(
        tempodb_command(*args),
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )


def test_cli_several_keys(server: Any, credentials: tuple[str, str], client: Client) -> None:
    result = _tempodb(
        server, credentials, "series", "create", "k.1", "k.2", "k.3", "--tag", "k", "--attr", "a=1"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "created 3 series\n"
    stored = client.get_series(tags=["k"])
    assert _keys(stored) == ["k.1", "k.2", "k.3"]
    assert all(s.attributes == {"a": "1"} for s in stored)

    # One key keeps the single form: the created series as JSON.
    result = _tempodb(server, credentials, "series", "create", "k.4")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["key"] == "k.4"


def test_cli_from_files_in_chunks(
    server: Any, credentials: tuple[str, str], client: Client, tmp_path: Path
) -> None:
    lines = tmp_path / "series.jsonl"
    lines.write_text(
        '{"key": "j.1", "name": "J one", "tags": ["j"], "attributes": {"floor": "1"}}\n'
        "\n"
        '{"key": "j.2", "id": "ignored", "tags": ["j", "two"]}\n'
        '{"tags": ["j"]}\n'
    )
    result = _tempodb(
        server,
        credentials,
        "series",
        "create",
        "--from-file",
        str(lines),
        "--chunk-size",
        "2",
        "--tag",
        "imported",
        "--attr",
        "floor=0",
        "--attr",
        "site=paris",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "created 3 series\n"
    stored = client.get_series(tags=["j", "imported"])
    assert len(stored) == 3
    by_key = {s.key: s for s in stored}
    assert by_key["j.1"].name == "J one"
    assert by_key["j.1"].attributes == {"floor": "1", "site": "paris"}  # a line's own win
    assert by_key["j.2"].tags == ["j", "two", "imported"]
    assert by_key["j.2"].attributes == {"floor": "0", "site": "paris"}
    generated = next(s for s in stored if s.key not in ("j.1", "j.2"))
    assert generated.key == generated.id

    csv_text = "key,tags,attributes\nc.1,c;heated,floor=1;wing=east\nc.2\nc.3,c,\n"
    result = _tempodb(server, credentials, "series", "create", "--from-file", "-", stdin=csv_text)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "created 3 series\n"
    by_key = {s.key: s for s in client.get_series(tags=["c"])}
    assert sorted(by_key) == ["c.1", "c.3"]
    assert by_key["c.1"].tags == ["c", "heated"]
    assert by_key["c.1"].attributes == {"floor": "1", "wing": "east"}
    (plain,) = client.get_series(keys=["c.2"])
    assert (plain.tags, plain.attributes) == ([], {})


def test_cli_reports_refused_series(
    server: Any, credentials: tuple[str, str], client: Client, tmp_path: Path
) -> None:
    client.create_series("r.exists")
    lines = tmp_path / "refused.jsonl"
    lines.write_text('{"key": "r.new"}\n{"key": "r.exists"}\n{"key": "r.bad", "tags": "x"}\n')
    result = _tempodb(server, credentials, "series", "create", "r.arg", "--from-file", str(lines))
    assert result.returncode == 1
    assert result.stdout == "created 2 series, refused 2 (1 exist already, 1 invalid)\n"
    assert "line 2: 409 Unique constraint violated" in result.stderr
    assert "line 3: 422 tags must be a list of non-empty strings" in result.stderr
    assert _keys(client.get_series()) == ["r.arg", "r.exists", "r.new"]


def test_cli_malformed_input_creates_nothing(
    server: Any, credentials: tuple[str, str], client: Client
) -> None:
    for stdin, why in [
        ('{"key": "m.1"}\nnot json\n', "line 2"),
        ("m.1,,floor\n", "line 1: expected NAME=VALUE"),
        ("m.1,a,b=1,extra\n", "line 1: expected key,tags,attributes"),
        ('{"key": "m.1"}\n{"key": "bad%"}\n', "line 2: Series key must match"),
    ]:
        result = _tempodb(server, credentials, "series", "create", "--from-file", "-", stdin=stdin)
        assert result.returncode == 2, (stdin, result.stderr)
        assert why in result.stderr
    assert client.get_series() == []


def test_cli_chunks_within_the_servers_limit(
    limited: tuple[ServerProcess, Any], limited_client: Client
) -> None:
    process, _ = limited
    keys = [f"c{i}" for i in range(2 * LIMIT + 5)]

    def create(chunk_size: int) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            tempodb_command(
                "series",
                "create",
                *keys,
                "--chunk-size",
                str(chunk_size),
                "--host",
                process.host,
                "--port",
                str(process.port),
                "--insecure",
                "--api-key",
                limited_client.key,
                "--secret",
                limited_client.secret,
            ),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    refused = create(LIMIT + 1)  # more than the server takes: its 400, nothing created
    assert refused.returncode == 1
    assert f"at most {LIMIT} per request" in refused.stderr
    assert limited_client.get_series() == []
    done = create(LIMIT)  # three requests
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"created {len(keys)} series\n"
    assert sorted(_keys(limited_client.get_series())) == sorted(keys)


# -- long listings -----------------------------------------------------------------------------


def test_a_long_listing_streams_every_series_once(wire: Wire, client: Client) -> None:
    """More series than a listing fetches at once (``LIST_PAGE``) come back streamed, every
    one once and by key, filtered or not."""
    from tempodb.server.series import LIST_PAGE

    count = LIST_PAGE * 2 + 7
    items = [{"key": f"long-{i:06d}", "tags": ["even"] if i % 2 == 0 else []} for i in range(count)]
    for at in range(0, count, 10_000):
        assert wire.post_series(items[at : at + 10_000]).status == 200
    reply = wire.pool.request("GET", f"{wire.url}/v1/series/", headers=wire.headers, retries=False)
    assert reply.status == 200
    assert [s["key"] for s in reply.json()] == [item["key"] for item in items]
    even = client.get_series(tags=["even"])
    assert _keys(even) == [item["key"] for item in items[::2]]


@pytest.fixture(scope="module", params=["auto-tag", "plain"])
def bounded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServerProcess, tuple[str, str]]]:
    """A server with ``--max-series-per-request 20``, with and without ``--auto-tag`` (whose
    writes create their series first, one by one)."""
    store = data_args(tmp_path_factory.mktemp(f"bounded-{request.param}"))
    extra = ["--auto-tag"] if request.param == "auto-tag" else []
    credentials = create_key(store)
    process = ServerProcess.start(store, *extra, "--max-series-per-request", str(LIMIT))
    yield process, credentials
    assert process.stop() == 0


def test_writes_create_at_most_the_series_one_request_may(
    bounded: tuple[ServerProcess, tuple[str, str]],
) -> None:
    """Writes to new keys count against ``--max-series-per-request`` as bulk creation does:
    one creating more is refused whole (400, nothing written); existing series are free."""
    process, (key, secret) = bounded
    with Client(key, secret, host=process.host, port=process.port, secure=False) as client:
        existing = [f"old.{i}" for i in range(LIMIT)]
        client.write_multi([{"t": "2012-01-01", "key": k, "v": 1} for k in existing])
        fresh = [f"new.{i}" for i in range(LIMIT + 1)]
        for write in (
            lambda: client.write_multi([{"t": "2012-01-02", "key": k, "v": 2} for k in fresh]),
            lambda: client.write_bulk("2012-01-02", [{"key": k, "v": 2} for k in fresh]),
        ):
            with pytest.raises(InvalidRequestError, match="Too many new series") as raised:
                write()
            assert raised.value.status == 400
            assert sorted(_keys(client.get_series())) == sorted(existing)
        # As many new ones as allowed, beside any number of existing ones: written.
        mixed = existing + fresh[:LIMIT]
        assert client.write_multi([{"t": "2012-01-03", "key": k, "v": 3} for k in mixed]) is None
        assert len(client.get_series()) == 2 * LIMIT
