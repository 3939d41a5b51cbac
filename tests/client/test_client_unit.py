"""The client on its own: URLs, query encoding, key checks, wire objects, error mapping."""

from __future__ import annotations

import datetime
import inspect
import subprocess
import sys
import types

import pytest

import tempodb
from tempodb import (
    AuthenticationError,
    Client,
    ConflictError,
    DataPoint,
    DataSet,
    DeleteSummary,
    InvalidRequestError,
    NotFoundError,
    Series,
    ServerError,
    SingleValueSet,
    Summary,
    TempoDBApiException,
    TempoDBConnectionError,
)
from tempodb.errors import SERIES_NOT_FOUND, error_for_response
from tempodb.protocol import filter_params, point_json, segment

UTC = datetime.UTC


@pytest.mark.parametrize(
    ("host", "port", "secure", "url"),
    [
        ("example.com", 80, False, "http://example.com/v1"),
        ("example.com", 88, False, "http://example.com:88/v1"),
        ("example.com", 443, False, "http://example.com:443/v1"),
        ("example.com", 443, True, "https://example.com/v1"),
        ("example.com", 88, True, "https://example.com:88/v1"),
        ("example.com", 80, True, "https://example.com:80/v1"),
    ],
)
def test_port_appears_only_when_not_the_default(
    host: str, port: int, secure: bool, url: str
) -> None:
    assert Client("k", "s", host, port, secure).base_url == url


def test_defaults_of_the_original_client(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TEMPODB_HOST", "TEMPODB_PORT", "TEMPODB_SECURE"):
        monkeypatch.delenv(name, raising=False)
    client = Client("key", "secret")
    assert client.base_url == "https://api.tempo-db.com/v1"
    assert (client.host, client.port, client.secure) == ("api.tempo-db.com", 443, True)


def test_no_credentials_go_to_the_defunct_service_unless_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without a host or TEMPODB_HOST, every call fails before anything is sent (issue 26)."""
    monkeypatch.delenv("TEMPODB_HOST", raising=False)
    sent: list[object] = []
    client = Client("key", "secret")
    monkeypatch.setattr(client._pool, "request", lambda *a, **k: sent.append(a))
    with pytest.raises(TempoDBConnectionError, match="TEMPODB_HOST"):
        client.get_series()
    assert sent == []
    named = Client("key", "secret", host="api.tempo-db.com")
    assert not named._placeholder
    monkeypatch.setenv("TEMPODB_HOST", "example.invalid")
    assert not Client("key", "secret")._placeholder


def test_public_names() -> None:
    public = {
        name
        for name, value in vars(tempodb).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    lazy = set(tempodb._LAZY)  # imported on first use (optional dependencies)
    assert set(tempodb.__all__) - {"__version__"} == public | lazy
    assert set(tempodb.__all__) <= set(dir(tempodb))
    for name in tempodb.__all__:
        assert hasattr(tempodb, name)


def test_the_client_never_loads_the_server() -> None:
    code = (
        "import sys, tempodb, tempodb.client, tempodb.cli\n"
        "bad = [m for m in sys.modules if m.startswith(('tempodb.server', 'tempodb.storage',"
        " 'numpy', 'uvicorn', 'pandas', 'httpx', 'tempodb.frames', 'tempodb.async_client'))]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_keys_are_checked_before_sending() -> None:
    client = Client("k", "s", "127.0.0.1", 9)  # nothing listens there: must fail before I/O
    with pytest.raises(ValueError, match="regex"):
        client.create_series("key.b%^.test")
    with pytest.raises(ValueError, match="regex"):
        client.write_key("k\u00e9y", [])
    with pytest.raises(ValueError, match="regex"):
        client.increment_key("a|b", [])
    with pytest.raises(ValueError, match="regex"):
        client.write_key("trailing-newline\n", [])


def test_query_encoding() -> None:
    params = filter_params(["a", "b"], "single-key", ["t1", "t2"], {"attr 1": "v 1"})
    assert params == [
        ("id", "a"),
        ("id", "b"),
        ("key", "single-key"),
        ("tag", "t1"),
        ("tag", "t2"),
        ("attr[attr 1]", "v 1"),
    ]
    assert filter_params(None, [], None, {}) == []


def test_path_segments_encode_everything_but_unreserved() -> None:
    assert segment("ke:y/1") == "ke%3Ay%2F1"
    assert segment("a b\\c;d.e-f_g") == "a%20b%5Cc%3Bd.e-f_g"
    assert (segment("."), segment("..")) == ("%2E", "%2E%2E")


def test_points_may_be_datapoints_dicts_or_pairs() -> None:
    ts = datetime.datetime(2012, 1, 1, 1, 2, 3, 456789)
    expected = {"t": "2012-01-01T01:02:03.456Z", "v": 1.5}
    assert point_json(DataPoint(ts, 1.5)) == expected
    assert point_json({"t": ts, "v": 1.5}) == expected
    assert point_json((ts, 1.5)) == expected
    assert point_json({"t": "2012-01-01T01:02:03.456Z", "v": 1.5}) == expected


def test_series_from_and_to_json() -> None:
    series = Series.from_json({"id": "abc", "key": "k", "name": None, "tags": None})
    assert (series.name, series.tags, series.attributes) == ("", [], {})
    assert list(series.to_json()) == ["id", "key", "name", "tags", "attributes"]
    one, two = Series("i", "k"), Series("i", "k")
    one.tags.append("x")
    assert two.tags == []  # no shared mutable default
    assert Series("i", "k", "n", {"a": "b"}, ["t"]) == Series("i", "k", "n", {"a": "b"}, ["t"])


def test_dataset_is_time_zone_aware() -> None:
    dataset = DataSet.from_json(
        {
            "series": {"id": "i", "key": "k", "name": "", "tags": [], "attributes": {}},
            "start": "2013-03-01T00:00:00.000-06:00",
            "end": "2013-03-02T00:00:00.000-0600",
            "data": [
                {"t": "2013-03-01T06:00:00.000Z", "v": 1},
                {"t": "2013-03-01T07:00:00.000", "v": 2.5},
            ],
            "rollup": None,
            "summary": {"count": 2, "sum": 3.5},
        }
    )
    assert dataset.start == datetime.datetime(2013, 3, 1, 6, tzinfo=UTC)
    assert dataset.start.utcoffset() == datetime.timedelta(hours=-6)
    assert dataset.end.utcoffset() == datetime.timedelta(hours=-6)
    assert all(p.ts.tzinfo is not None for p in dataset.data)
    assert dataset.data[1] == DataPoint(datetime.datetime(2013, 3, 1, 7, tzinfo=UTC), 2.5)
    assert dataset.summary == Summary(count=2, sum=3.5)
    assert dataset.summary is not None
    assert dataset.summary.count == 2


def test_empty_summary_and_missing_fields() -> None:
    summary = Summary.from_json({})
    with pytest.raises(AttributeError, match="mean"):
        _ = summary.mean


def test_single_value_set_and_delete_summary() -> None:
    empty = SingleValueSet.from_json({"series": {"id": "i", "key": "k"}, "data": None})
    assert empty.data is None
    full = SingleValueSet.from_json(
        {"series": {"id": "i", "key": "k"}, "data": {"t": "2012-01-01T00:00:00Z", "v": 3}}
    )
    assert full.data == DataPoint(datetime.datetime(2012, 1, 1, tzinfo=UTC), 3)
    assert DeleteSummary.from_json({"deleted": 2}).deleted == 2


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [
        (401, None, AuthenticationError),
        (403, None, AuthenticationError),
        (403, SERIES_NOT_FOUND, NotFoundError),
        (404, None, NotFoundError),
        (400, None, InvalidRequestError),
        (413, None, InvalidRequestError),
        (409, None, ConflictError),
        (500, None, ServerError),
        (503, None, ServerError),
    ],
)
def test_error_mapping(status: int, code: str | None, kind: type[Exception]) -> None:
    error = error_for_response(status, "the message", code)
    assert isinstance(error, kind)
    assert isinstance(error, TempoDBApiException)
    assert error.status == status
    assert error.message == "the message"


def test_the_signature_shows_the_documented_defaults() -> None:
    parameters = inspect.signature(Client).parameters
    assert list(parameters)[:7] == [
        "key",
        "secret",
        "host",
        "port",
        "secure",
        "pool_connections",
        "pool_maxsize",
    ]
    assert parameters["host"].default == "api.tempo-db.com"
    assert parameters["port"].default == 443
    assert parameters["secure"].default == True  # noqa: E712 - the documented value
    assert repr(parameters["secure"].default) == "True"
    assert (parameters["pool_connections"].default, parameters["pool_maxsize"].default) == (10, 10)


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEMPODB_KEY", "env-key")
    monkeypatch.setenv("TEMPODB_SECRET", "env-secret")
    monkeypatch.setenv("TEMPODB_HOST", "tempo.example")
    monkeypatch.setenv("TEMPODB_PORT", "4242")
    monkeypatch.setenv("TEMPODB_SECURE", "false")
    client = Client()
    assert (client.key, client.secret) == ("env-key", "env-secret")
    assert client.base_url == "http://tempo.example:4242/v1"
    # arguments win over the environment
    client = Client("k", "s", "other.example", 443, True)
    assert (client.key, client.base_url) == ("k", "https://other.example/v1")
    monkeypatch.setenv("TEMPODB_SECURE", "maybe")
    with pytest.raises(ValueError, match="TEMPODB_SECURE"):
        Client()
    monkeypatch.setenv("TEMPODB_SECURE", "1")
    monkeypatch.setenv("TEMPODB_PORT", "http")
    with pytest.raises(ValueError, match="TEMPODB_PORT"):
        Client()


def test_a_missing_key_or_secret_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEMPODB_KEY", raising=False)
    monkeypatch.delenv("TEMPODB_SECRET", raising=False)
    with pytest.raises(ValueError, match=r"key \(or \$TEMPODB_KEY\) and secret"):
        Client()
    with pytest.raises(ValueError, match=r"no API secret \(or \$TEMPODB_SECRET\)"):
        Client("key")
    monkeypatch.setenv("TEMPODB_SECRET", "s")
    assert Client("key").secret == "s"


def test_async_client_is_exported_lazily() -> None:
    code = (
        "import sys, tempodb\n"
        "assert 'httpx' not in sys.modules\n"
        "from tempodb import AsyncClient\n"
        "assert 'httpx' in sys.modules and AsyncClient.__name__ == 'AsyncClient'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_extras_are_named() -> None:
    code = (
        "import sys\n"
        "sys.modules['pandas'] = None\n"
        "sys.modules['httpx'] = None\n"
        "import tempodb\n"
        "for name, extra in (('tempodb.frames', 'tempodb-revived[pandas]'),"
        " ('tempodb.async_client', 'tempodb-revived[async]')):\n"
        "    try:\n"
        "        __import__(name)\n"
        "    except ImportError as exc:\n"
        "        assert extra in str(exc), exc\n"
        "    else:\n"
        "        raise AssertionError(name)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_an_ipv6_host_is_bracketed_in_urls() -> None:
    assert Client("k", "s", host="::1", port=4242, secure=False).base_url == "http://[::1]:4242/v1"
    assert Client("k", "s", host="[::1]", port=443).base_url == "https://[::1]/v1"
    assert Client("k", "s", host="localhost", port=80, secure=False).base_url == (
        "http://localhost/v1"
    )


def test_distribution_is_not_pypis_old_tempodb() -> None:
    """Installed as ``tempodb-revived``, above PyPI's ``tempodb`` 1.0.1 (the 2014 client), so
    that ``pip install -U`` never swaps one for the other; the import name stays ``tempodb``."""
    from importlib import metadata

    version = metadata.version("tempodb-revived")
    assert tempodb.__version__ == version
    assert tuple(int(part) for part in version.split(".")[:3]) > (1, 0, 1)
    assert metadata.distribution("tempodb-revived").read_text("top_level.txt") in (
        None,
        "tempodb\n",
    )
