"""HTTP Basic authentication against the store, with an optional short-lived cache.

Without a cache (``ttl`` 0, what ``tempodb serve`` does) every request asks the store, so a key
revoked or deleted by another process stops working with the next request.  With ``ttl`` > 0
the cache keeps a SHA-256 of ``key:secret``, never the secret itself, and forgets every entry
after ``ttl`` seconds: a revoked key then works on for up to that time.  The store compares
secrets in constant time (``storage.base.verify_secret``); neither the secret nor the header
ever appears in a message or a log.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import threading
import time

from tempodb.server.http import HTTPError
from tempodb.storage.base import Database, Store

CHALLENGE = {"WWW-Authenticate": 'Basic realm="TempoDB"'}


class Authenticator:
    def __init__(self, store: Store, ttl: float = 0.0, max_entries: int = 10_000) -> None:
        self.store = store
        self.ttl = ttl
        self.max_entries = max_entries
        self._cache: dict[bytes, tuple[Database, float]] = {}
        self._lock = threading.Lock()

    def authenticate(self, header: str | None) -> Database:
        """The database of the request's credentials; 401 without any, 403 when wrong."""
        key, secret = parse_basic(header)
        if self.ttl <= 0:
            return self._lookup(key, secret)
        token = hashlib.sha256(f"{key}:{secret}".encode()).digest()
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(token)
        if cached is not None and cached[1] > now:
            return cached[0]
        database = self._lookup(key, secret)
        with self._lock:
            if len(self._cache) >= self.max_entries:
                self._cache = {t: e for t, e in self._cache.items() if e[1] > now}
                if len(self._cache) >= self.max_entries:
                    self._cache.clear()
            self._cache[token] = (database, now + self.ttl)
        return database

    def _lookup(self, key: str, secret: str) -> Database:
        database = self.store.authenticate(key, secret)
        if database is None:
            raise HTTPError(403, "Forbidden: invalid API key or secret", "forbidden")
        return database


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
