"""HTTP Basic authentication against the store, with a short-lived cache.

The cache keeps a SHA-256 of ``key:secret``, never the secret itself, and forgets every entry
after ``ttl`` seconds, so that a deleted key stops working on every server within that time.
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
    def __init__(self, store: Store, ttl: float = 2.0, max_entries: int = 10_000) -> None:
        self.store = store
        self.ttl = ttl
        self.max_entries = max_entries
        self._cache: dict[bytes, tuple[Database, float]] = {}
        self._lock = threading.Lock()

    def authenticate(self, header: str | None) -> Database:
        """The database of the request's credentials; 401 without any, 403 when wrong."""
        key, secret = parse_basic(header)
        token = hashlib.sha256(f"{key}:{secret}".encode()).digest()
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(token)
        if cached is not None and cached[1] > now:
            return cached[0]
        database = self.store.authenticate(key, secret)
        if database is None:
            raise HTTPError(403, "Forbidden: invalid API key or secret", "forbidden")
        with self._lock:
            if len(self._cache) >= self.max_entries:
                self._cache = {t: e for t, e in self._cache.items() if e[1] > now}
                if len(self._cache) >= self.max_entries:
                    self._cache.clear()
            self._cache[token] = (database, now + self.ttl)
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
