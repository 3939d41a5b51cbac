"""tempodb.server.auth without a server: credentials from the headers and query string, the
cache of good credentials, the rate-limited log of failed logins, and the refusal of
cross-site browser writes."""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Hashable
from functools import partial
from typing import cast

import pytest

from tempodb.server import auth
from tempodb.server.auth import Authenticator, check_provenance, credentials, parse_basic
from tempodb.server.http import HTTPError
from tempodb.storage.base import Database, Store

BASIC_ONLY = "Authentication required: HTTP Basic with your API key and secret"
INFLUX_NONE = (
    "Authentication required: your API key and secret as the u and p parameters, "
    "Authorization: Token KEY:SECRET, or HTTP Basic"
)
MALFORMED_BASIC = "Malformed Basic credentials"


def basic(text: str | bytes) -> str:
    raw = text.encode() if isinstance(text, str) else text
    return "Basic " + base64.b64encode(raw).decode()


def refused(call: Callable[[], object]) -> HTTPError:
    with pytest.raises(HTTPError) as caught:
        call()
    return caught.value


def assert_401(error: HTTPError, message: str) -> None:
    assert error.status == 401
    assert error.message == message
    assert error.code == "unauthenticated"
    assert error.headers == {"WWW-Authenticate": 'Basic realm="TempoDB"'}


# -- parse_basic -------------------------------------------------------------------------------


def test_basic_credentials() -> None:
    assert parse_basic(basic("key:secret")) == ("key", "secret")
    assert parse_basic("  basic " + basic("key:secret")[6:] + "  ") == ("key", "secret")
    assert parse_basic("BASIC   " + basic("k:s")[6:]) == ("k", "s")
    # The secret is everything after the first colon; either may be empty.
    assert parse_basic(basic("key:se:cret")) == ("key", "se:cret")
    assert parse_basic(basic(":")) == ("", "")


@pytest.mark.parametrize("header", [None, ""])
def test_basic_without_a_header_is_401_with_a_challenge(header: str | None) -> None:
    assert_401(refused(lambda: parse_basic(header)), BASIC_ONLY)


def test_other_schemes_are_401() -> None:
    error = refused(lambda: parse_basic("Bearer abc"))
    assert_401(error, "Only HTTP Basic authentication is supported")


@pytest.mark.parametrize(
    "header",
    [
        "Basic a2V5OnNlY3JldA==!",  # not the base64 alphabet
        "Basic a2V5OnNlY3JldA",  # bad padding
        basic(b"key:\xffsecret"),  # not UTF-8
        basic("keysecret"),  # no colon
    ],
)
def test_malformed_basic_is_401(header: str) -> None:
    assert_401(refused(lambda: parse_basic(header)), MALFORMED_BASIC)


# -- credentials -------------------------------------------------------------------------------


def test_credentials_outside_influx_routes_are_basic_only() -> None:
    assert credentials(basic("k:s"), b"u=user&p=pass") == ("k", "s")
    assert_401(refused(lambda: credentials(None, b"u=user&p=pass")), BASIC_ONLY)
    error = refused(lambda: credentials("Token k:s"))
    assert_401(error, "Only HTTP Basic authentication is supported")


def test_influx_query_parameters_come_first() -> None:
    assert credentials(basic("k:s"), b"u=user&p=pass", influx=True) == ("user", "pass")
    assert credentials("Token k:s", b"db=x&u=user&p=pass", influx=True) == ("user", "pass")
    # The last of repeated parameters; no p is an empty secret.
    assert credentials(None, b"u=a&p=1&u=b&p=2", influx=True) == ("b", "2")
    assert credentials(None, b"u=user", influx=True) == ("user", "")
    # Bytes that are not UTF-8 are replaced, not an error.
    assert credentials(None, b"u=k\xff&p=s", influx=True) == ("k\ufffd", "s")


def test_influx_empty_user_falls_back_to_the_header() -> None:
    assert credentials(basic("k:s"), b"u=&p=pass", influx=True) == ("k", "s")
    assert credentials("Token k:s", b"u=", influx=True) == ("k", "s")
    assert_401(refused(lambda: credentials(None, b"u=&p=x", influx=True)), INFLUX_NONE)


def test_influx_token() -> None:
    assert credentials("Token key:secret", influx=True) == ("key", "secret")
    assert credentials("  token   key:se:cret  ", influx=True) == ("key", "se:cret")
    assert credentials("TOKEN k:", influx=True) == ("k", "")
    assert credentials(basic("k:s"), influx=True) == ("k", "s")
    error = refused(lambda: credentials("Token keysecret", influx=True))
    assert_401(error, "Malformed Token credentials: send Authorization: Token KEY:SECRET")


@pytest.mark.parametrize("header", [None, ""])
def test_influx_without_credentials_is_401_naming_every_way(header: str | None) -> None:
    assert_401(refused(lambda: credentials(header, b"db=x", influx=True)), INFLUX_NONE)


def test_influx_other_schemes_are_401() -> None:
    error = refused(lambda: credentials("Bearer abc", influx=True))
    assert_401(error, "Only HTTP Basic authentication is supported")


# -- Authenticator ---------------------------------------------------------------------------


class FakeStore:
    """The two methods the authenticator asks a store: good credentials in ``keys``."""

    def __init__(self, stamp: Hashable | None = None) -> None:
        self.keys: dict[str, tuple[str, Database]] = {}
        self.stamp = stamp
        self.asked: list[str] = []
        self.during_lookup: Callable[[], None] | None = None

    def add(self, key: str, secret: str = "secret") -> Database:
        database = Database(len(self.keys) + 1, key, key)
        self.keys[key] = (secret, database)
        return database

    def authenticate(self, key: str, secret: str) -> Database | None:
        self.asked.append(key)
        if self.during_lookup is not None:
            action, self.during_lookup = self.during_lookup, None
            action()
        known = self.keys.get(key)
        return known[1] if known is not None and known[0] == secret else None

    def keys_stamp(self) -> Hashable | None:
        return self.stamp


class Clock:
    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock(1000.0)
    monkeypatch.setattr(auth.time, "monotonic", fake)
    return fake


def authenticator(store: FakeStore, ttl: float = 0.0, max_entries: int = 10_000) -> Authenticator:
    return Authenticator(cast(Store, store), ttl, max_entries)


def test_without_stamp_or_ttl_every_request_asks_the_store(clock: Clock) -> None:
    store = FakeStore()
    database = store.add("k")
    guard = Authenticator(cast(Store, store))  # the default: no ttl
    for _ in range(3):
        assert guard.authenticate(basic("k:secret")) is database
    assert store.asked == ["k", "k", "k"]
    del store.keys["k"]  # revoked
    assert refused(lambda: guard.authenticate(basic("k:secret"))).status == 403


def test_wrong_credentials_are_403() -> None:
    store = FakeStore(stamp=1)
    store.add("k")
    guard = authenticator(store, ttl=60)
    for header in (basic("k:wrong"), basic("other:secret")):
        error = refused(partial(guard.authenticate, header))
        assert (error.status, error.code) == (403, "forbidden")
        assert error.message == "Forbidden: invalid API key or secret"
    assert refused(lambda: guard.authenticate(None)).status == 401


def test_influx_credentials_reach_the_store() -> None:
    store = FakeStore()
    database = store.add("k")
    guard = authenticator(store)
    assert guard.authenticate(None, b"u=k&p=secret", influx=True) is database
    assert guard.authenticate("Token k:secret", influx=True) is database
    assert refused(lambda: guard.authenticate(None, b"u=k&p=secret")).status == 401


def test_with_a_stamp_good_credentials_are_kept_until_it_changes(clock: Clock) -> None:
    store = FakeStore(stamp=1)
    database = store.add("k")
    guard = authenticator(store)  # no ttl: the stamp alone decides
    assert guard.authenticate(basic("k:secret")) is database
    clock.now += 10**6
    assert guard.authenticate(basic("k:secret")) is database
    assert store.asked == ["k"]
    # The same key with another secret is not the cached credentials.
    assert refused(lambda: guard.authenticate(basic("k:other"))).status == 403
    assert store.asked == ["k", "k"]
    del store.keys["k"]  # revoked: the stamp changes, the cache is forgotten
    store.stamp = 2
    assert refused(lambda: guard.authenticate(basic("k:secret"))).status == 403


def test_a_stamp_changed_during_the_lookup_keeps_its_answer_out_of_the_cache() -> None:
    store = FakeStore(stamp=1)
    database = store.add("k")
    store.add("other")
    guard = authenticator(store)

    def revoke_meanwhile() -> None:  # another request sees the new stamp first
        store.stamp = 2
        guard.authenticate(basic("other:secret"))

    store.during_lookup = revoke_meanwhile
    assert guard.authenticate(basic("k:secret")) is database
    assert guard.authenticate(basic("k:secret")) is database
    assert store.asked == ["k", "other", "k"]


def test_with_a_ttl_and_no_stamp_good_credentials_expire(clock: Clock) -> None:
    store = FakeStore()
    database = store.add("k")
    guard = authenticator(store, ttl=30)
    assert guard.authenticate(basic("k:secret")) is database
    clock.now += 29.9
    assert guard.authenticate(basic("k:secret")) is database
    assert store.asked == ["k"]
    clock.now += 0.1  # exactly 30 s later: expired
    assert guard.authenticate(basic("k:secret")) is database
    assert store.asked == ["k", "k"]
    del store.keys["k"]
    clock.now += 10
    assert guard.authenticate(basic("k:secret")) is database  # revoked, still cached
    clock.now += 20
    assert refused(lambda: guard.authenticate(basic("k:secret"))).status == 403


def test_a_ttl_under_a_second_caches_too(clock: Clock) -> None:
    store = FakeStore()
    store.add("k")
    guard = authenticator(store, ttl=0.5)
    guard.authenticate(basic("k:secret"))
    clock.now += 0.4
    guard.authenticate(basic("k:secret"))
    assert store.asked == ["k"]


def test_a_full_cache_drops_expired_entries_first(clock: Clock) -> None:
    store = FakeStore()
    for key in "abc":
        store.add(key)
    guard = authenticator(store, ttl=10, max_entries=2)
    guard.authenticate(basic("a:secret"))  # expires at 1010
    clock.now += 5
    guard.authenticate(basic("b:secret"))  # expires at 1015
    clock.now += 5  # a expires now: room for c without dropping b
    guard.authenticate(basic("c:secret"))
    store.asked.clear()
    clock.now += 1
    guard.authenticate(basic("b:secret"))
    guard.authenticate(basic("c:secret"))
    assert store.asked == []


def test_a_full_cache_of_live_entries_starts_over(clock: Clock) -> None:
    store = FakeStore()
    store.add("a")
    store.add("b")
    guard = authenticator(store, ttl=100, max_entries=1)
    guard.authenticate(basic("a:secret"))
    clock.now += 1
    guard.authenticate(basic("b:secret"))  # full of a, which lives on: cleared
    clock.now += 1
    guard.authenticate(basic("b:secret"))
    guard.authenticate(basic("a:secret"))
    assert store.asked == ["a", "b", "a"]


# -- the log of failed logins ------------------------------------------------------------------


def failed_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    lines = [r.getMessage() for r in caplog.records if r.name == "tempodb.auth"]
    assert all(r.levelno == logging.WARNING for r in caplog.records)
    caplog.clear()
    return lines


def test_failed_logins_are_logged_once_a_minute_per_key(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="tempodb.auth")
    store = FakeStore()
    store.add("k")
    guard = authenticator(store)

    def fail(key: str = "k", times: int = 1) -> None:
        for _ in range(times):
            refused(lambda: guard.authenticate(basic(f"{key}:wrong-secret")))

    line = "failed login for key 'k': wrong secret, unknown or revoked key"
    fail()
    assert failed_lines(caplog) == [line]
    clock.now += 30
    fail(times=3)
    fail("stranger")
    assert failed_lines(caplog) == [line.replace("'k'", "'stranger'")]
    clock.now += 29.9
    fail()
    assert failed_lines(caplog) == []
    clock.now += 0.1  # a minute after the last line
    fail()
    assert failed_lines(caplog) == [line + " (and 4 more since the last line)"]
    clock.now += 60
    fail()
    assert failed_lines(caplog) == [line]
    assert "wrong-secret" not in caplog.text


def test_the_first_failure_is_logged_whatever_the_clock(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="tempodb.auth")
    clock.now = 0.0  # monotonic may start at 0
    guard = authenticator(FakeStore())
    refused(lambda: guard.authenticate(basic("k:s")))
    assert failed_lines(caplog) == [
        "failed login for key 'k': wrong secret, unknown or revoked key"
    ]


def test_failed_login_lines_cut_long_keys(clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="tempodb.auth")
    guard = authenticator(FakeStore())
    key = "k" * 64 + "TAIL"
    refused(partial(guard.authenticate, basic(f"{key}:s")))
    assert failed_lines(caplog) == [
        f"failed login for key {'k' * 64!r}: wrong secret, unknown or revoked key"
    ]


def test_the_failure_record_is_bounded(clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="tempodb.auth")
    guard = authenticator(FakeStore(), max_entries=1)
    for key in ("a", "b", "a"):  # b's failure finds the record full and starts it over
        refused(partial(guard.authenticate, basic(f"{key}:s")))
    assert len(failed_lines(caplog)) == 3


# -- check_provenance ------------------------------------------------------------------------

NONE: frozenset[str] = frozenset()
BROWSER = "Mozilla/5.0 (X11; Linux x86_64)"


def cross_site(call: Callable[[], object], origin: str) -> None:
    error = refused(call)
    assert (error.status, error.code) == (403, "cross-site")
    assert error.message == (
        f"Forbidden: a browser request from {origin} may not change data here "
        "(tempodb serve --allow-origin allows an origin)"
    )


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_state_changing_methods_are_checked(method: str) -> None:
    headers = {"host": "db.example:4242", "origin": "https://evil.example"}
    cross_site(lambda: check_provenance(method, headers, NONE), "https://evil.example")


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS"])
def test_reading_methods_are_not(method: str) -> None:
    headers = {
        "host": "db.example",
        "origin": "https://evil.example",
        "sec-fetch-site": "cross-site",
    }
    check_provenance(method, headers, NONE)


def test_same_origin_and_allowed_origins_pass() -> None:
    check_provenance("POST", {"host": "db.example:4242", "origin": "http://db.example:4242"}, NONE)
    check_provenance("POST", {"host": "DB.Example:4242", "origin": "HTTP://db.EXAMPLE:4242"}, NONE)
    allowed = frozenset({"https://app.example"})
    check_provenance("POST", {"host": "db.example", "origin": "https://app.example"}, allowed)
    cross_site(
        lambda: check_provenance(
            "POST", {"host": "db.example", "origin": "https://app2.example"}, allowed
        ),
        "https://app2.example",
    )
    anything = frozenset({"*"})
    check_provenance(
        "POST", {"host": "db.example", "origin": "null", "sec-fetch-site": "cross-site"}, anything
    )


MALFORMED_ORIGINS = [
    "null",
    "db.example",
    "://db.example",
    "http://",
    "http://db.example/path",
    "http://evil.example://db.example",
]


@pytest.mark.parametrize("origin", MALFORMED_ORIGINS)
def test_malformed_origins_are_another_site(origin: str) -> None:
    headers = {"host": "db.example", "origin": origin}
    cross_site(lambda: check_provenance("POST", headers, NONE), origin)


@pytest.mark.parametrize("origin", ["http://db.example", *MALFORMED_ORIGINS])
def test_without_a_host_every_origin_is_another_site(origin: str) -> None:
    cross_site(lambda: check_provenance("POST", {"origin": origin}, NONE), origin)


def test_an_origin_with_a_path_is_malformed_whatever_the_host() -> None:
    headers = {"host": "db.example/path", "origin": "http://db.example/path"}
    cross_site(lambda: check_provenance("POST", headers, NONE), "http://db.example/path")


def test_long_origins_are_cut_in_the_message() -> None:
    origin = "https://" + "e" * 200 + ".example"
    headers = {"host": "db.example", "origin": origin}
    cross_site(lambda: check_provenance("POST", headers, NONE), origin[:100])


@pytest.mark.parametrize("site", ["cross-site", "same-site", " Cross-Site "])
def test_fetch_metadata_from_another_site_is_refused(site: str) -> None:
    headers = {"host": "db.example", "sec-fetch-site": site}
    cross_site(lambda: check_provenance("POST", headers, NONE), "another site")


@pytest.mark.parametrize("site", ["same-origin", "none"])
def test_fetch_metadata_from_the_same_origin_passes(site: str) -> None:
    headers = {"host": "db.example", "sec-fetch-site": site, "content-type": "application/json"}
    check_provenance("POST", headers, NONE)


@pytest.mark.parametrize(
    "media", ["text/plain", "multipart/form-data", "application/x-www-form-urlencoded"]
)
@pytest.mark.parametrize(
    "browser",
    [{"user-agent": BROWSER}, {"sec-fetch-site": "same-origin"}, {"sec-fetch-site": "none"}],
)
def test_form_bodies_from_browsers_are_415(media: str, browser: dict[str, str]) -> None:
    for content_type in (media, f"{media.upper()} ; charset=utf-8"):
        headers = {"host": "db.example", "content-type": content_type, **browser}
        error = refused(partial(check_provenance, "POST", headers, NONE))
        assert (error.status, error.code) == (415, "unsupported-media-type")
        assert error.message == (
            f"Content-Type {media} refused from a browser: send the body as application/json"
        )


@pytest.mark.parametrize(
    "media", ["text/plain", "multipart/form-data", "application/x-www-form-urlencoded"]
)
def test_form_bodies_from_other_clients_pass(media: str) -> None:
    check_provenance("POST", {"host": "db.example", "content-type": media}, NONE)
    headers = {"host": "db.example", "content-type": media, "user-agent": "curl/8.5.0"}
    check_provenance("POST", headers, NONE)


def test_json_and_no_body_type_from_browsers_pass() -> None:
    for extra in ({"content-type": "application/json"}, {}):
        check_provenance("POST", {"host": "db.example", "user-agent": BROWSER, **extra}, NONE)
