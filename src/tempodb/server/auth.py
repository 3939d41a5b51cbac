"""HTTP Basic authentication against the store (on the InfluxDB routes also ``u``/``p`` query
parameters and ``Authorization: Token KEY:SECRET``, ``credentials``), with a cache of good
credentials, and the refusal of cross-site browser writes (``check_provenance``).

The cache keeps a SHA-256 of ``key:secret``, never the secret itself.  Where the store has a
stamp of its keys (``Store.keys_stamp``: the embedded store's ``keys.stamp``, replaced by any
process that revokes or deletes a key), the cache lasts as long as the stamp stays the same,
so a revoked key stops working with the next request at the price of one ``stat``.  Where it
has none, every request asks the store, unless ``ttl`` > 0 (``tempodb serve --auth-cache``):
entries are then forgotten after ``ttl`` seconds and a revoked key works on for up to that
time.  The store compares secrets in constant time (``storage.base.verify_secret``); neither
the secret nor the header ever appears in a message or a log.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import threading
import time
from collections.abc import Hashable, Mapping
from urllib.parse import parse_qsl

from tempodb.server.http import HTTPError
from tempodb.storage.base import Database, Store

CHALLENGE = {"WWW-Authenticate": 'Basic realm="TempoDB"'}
#: Seconds between two log lines about failed logins with the same key.
FAILURE_LOG_EVERY = 60.0
log = logging.getLogger("tempodb.auth")

#: Methods that change something: a browser must not be made to send them from another site.
STATE_CHANGING = frozenset({"POST", "PUT", "DELETE", "PATCH"})
#: The body types a browser sends cross-site without asking first (an HTML form, or a fetch
#: without a preflight).  The original clients send JSON under some of them (Java 0.7:
#: text/plain; Bash's curl -d: x-www-form-urlencoded), so they are refused from browsers only.
FORM_TYPES = frozenset({"text/plain", "multipart/form-data", "application/x-www-form-urlencoded"})


class Authenticator:
    def __init__(self, store: Store, ttl: float = 0.0, max_entries: int = 10_000) -> None:
        self.store = store
        self.ttl = ttl
        self.max_entries = max_entries
        self._cache: dict[bytes, tuple[Database, float]] = {}
        self._stamp: Hashable | None = None
        self._failures: dict[str, tuple[float, int]] = {}  # key -> (last logged, not logged)
        self._lock = threading.Lock()

    def authenticate(
        self, header: str | None, query_string: bytes = b"", *, influx: bool = False
    ) -> Database:
        """The database of the request's credentials; 401 without any, 403 when wrong.
        ``influx``: also from ``u``/``p`` or a ``Token`` header (``credentials``)."""
        key, secret = credentials(header, query_string, influx=influx)
        stamp = self.store.keys_stamp()
        if stamp is None and self.ttl <= 0:
            return self._lookup(key, secret)
        token = hashlib.sha256(f"{key}:{secret}".encode()).digest()
        now = time.monotonic()
        with self._lock:
            if stamp != self._stamp:  # a key was revoked or deleted: forget them all
                self._cache.clear()
                self._stamp = stamp
            cached = self._cache.get(token)
        if cached is not None and (stamp is not None or cached[1] > now):
            return cached[0]
        database = self._lookup(key, secret)
        with self._lock:
            if stamp != self._stamp:  # changed during the lookup, which may be stale
                return database
            if len(self._cache) >= self.max_entries:
                self._cache = {t: e for t, e in self._cache.items() if e[1] > now}
                if len(self._cache) >= self.max_entries:
                    self._cache.clear()
            self._cache[token] = (database, now + self.ttl)
        return database

    def _lookup(self, key: str, secret: str) -> Database:
        database = self.store.authenticate(key, secret)
        if database is None:
            self._failed(key)
            raise HTTPError(403, "Forbidden: invalid API key or secret", "forbidden")
        return database

    def _failed(self, key: str) -> None:
        """Log a failed login with its key (cut to 64 characters), never its secret: at most
        one line a minute per key, saying how many failed meanwhile, so that a stranger
        guessing cannot flood the log."""
        now = time.monotonic()
        with self._lock:
            last, missed = self._failures.get(key, (-FAILURE_LOG_EVERY, 0))
            if now - last < FAILURE_LOG_EVERY:
                self._failures[key] = (last, missed + 1)
                return
            if len(self._failures) >= self.max_entries:
                self._failures.clear()
            self._failures[key] = (now, 0)
        more = f" (and {missed} more since the last line)" if missed else ""
        log.warning("failed login for key %r: wrong secret, unknown or revoked key%s",
                    key[:64], more)  # fmt: skip


def credentials(
    header: str | None, query_string: bytes = b"", *, influx: bool = False
) -> tuple[str, str]:
    """``(key, secret)`` of a request; 401 without any.

    HTTP Basic everywhere.  On the InfluxDB routes (``influx``) also, as InfluxDB reads them:
    the ``u`` and ``p`` query parameters first (InfluxDB 1.x), then ``Authorization: Token
    KEY:SECRET`` (how InfluxDB 1.8 reads a 2.x client's token), then Basic.
    """
    if influx:
        if b"u=" in query_string:
            pairs = parse_qsl(query_string.decode("utf-8", "replace"))
            user = [v for k, v in pairs if k == "u"]
            if user and user[-1]:
                password = [v for k, v in pairs if k == "p"]
                return user[-1], password[-1] if password else ""
        scheme, _, token = (header or "").strip().partition(" ")
        if scheme.lower() == "token":
            key, sep, secret = token.strip().partition(":")
            if not sep:
                raise HTTPError(
                    401,
                    "Malformed Token credentials: send Authorization: Token KEY:SECRET",
                    "unauthenticated",
                    CHALLENGE,
                )
            return key, secret
        if not header:
            raise HTTPError(
                401,
                "Authentication required: your API key and secret as the u and p parameters, "
                "Authorization: Token KEY:SECRET, or HTTP Basic",
                "unauthenticated",
                CHALLENGE,
            )
    return parse_basic(header)


def parse_basic(header: str | None) -> tuple[str, str]:
    """``(key, secret)`` from an ``Authorization: Basic ...`` header; 401 if there is none."""
    if not header:
        raise HTTPError(
            401,
            "Authentication required: HTTP Basic with your API key and secret",
            "unauthenticated",
            CHALLENGE,
        )
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        raise HTTPError(
            401, "Only HTTP Basic authentication is supported", "unauthenticated", CHALLENGE
        )
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise HTTPError(401, "Malformed Basic credentials", "unauthenticated", CHALLENGE) from None
    key, sep, secret = decoded.partition(":")
    if not sep:
        raise HTTPError(401, "Malformed Basic credentials", "unauthenticated", CHALLENGE)
    return key, secret


def check_provenance(method: str, headers: Mapping[str, str], allowed: frozenset[str]) -> None:
    """Refuse a state-changing request that a browser sends on behalf of another site.

    A hostile page can make a browser POST a form (``enctype="text/plain"`` makes its body
    JSON enough) with the credentials the browser cached after a 401 prompt.  Browsers say
    where such a request comes from: ``Origin`` (every current browser, on every cross-origin
    POST) and ``Sec-Fetch-Site``.  So: 403 when ``Origin`` names another host than the
    request's ``Host`` (and is not in ``allowed``, the origins ``tempodb serve --allow-origin``
    lists; ``*`` allows all), or when ``Sec-Fetch-Site`` says ``cross-site``/``same-site``; and
    415 for a form body type from a browser (a ``Mozilla/`` user agent, or fetch metadata),
    for the browsers old enough to send no ``Origin``.  Clients that are no browser send
    neither, and keep working whatever their Content-Type (spec §2.3).
    """
    if method not in STATE_CHANGING or "*" in allowed:
        return
    origin = headers.get("origin")
    site = headers.get("sec-fetch-site", "").strip().lower()
    if origin is not None:
        if origin not in allowed and _host_of(origin) != headers.get("host", "").lower():
            raise _cross_site(origin)
    elif site in ("cross-site", "same-site"):
        raise _cross_site("another site")
    media = headers.get("content-type", "").partition(";")[0].strip().lower()
    browser = headers.get("user-agent", "").startswith("Mozilla/") or bool(site)
    if media in FORM_TYPES and browser:
        raise HTTPError(
            415,
            f"Content-Type {media} refused from a browser: send the body as application/json",
            "unsupported-media-type",
        )


def _host_of(origin: str) -> str | None:
    """``host[:port]`` of an ``Origin`` value (None for ``null`` or a malformed one)."""
    scheme, sep, rest = origin.strip().lower().partition("://")
    if not sep or not scheme or not rest or "/" in rest:
        return None
    return rest


def _cross_site(origin: str) -> HTTPError:
    return HTTPError(
        403,
        f"Forbidden: a browser request from {origin[:100]} may not change data here "
        "(tempodb serve --allow-origin allows an origin)",
        "cross-site",
    )
