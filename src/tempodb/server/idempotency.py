"""The ``Idempotency-Key`` request header of the write and increment routes.

As draft-ietf-httpapi-idempotency-key-header and Stripe's API have it: a client sends a
fresh key with a write and the same key with each retry of it.  The store keeps the key
with a digest of the request and the write's result, in the transaction that applies the
write (``storage/idempotency.py``), for ``Options.idempotency_ttl_ms`` (24 hours by
default), per database.  Then:

* a retry with the same key and the same request (method, path, query and body) gets the
  first answer again, with ``Idempotent-Replayed: true``, and changes nothing;
* the same key with a different request gets ``422``;
* a retry while the first request is still being applied gets ``409`` (on PostgreSQL, from
  any server of the database).

The key is a structured-field string (``"..."``, as the draft writes it) or a bare token (as
Stripe's clients send it): 1 to 255 printable ASCII characters.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

from tempodb.server.http import HTTPError, Request, bad_request
from tempodb.storage.base import Idempotency

HEADER: Final = "idempotency-key"
#: Set on an answer given again to a retry.
REPLAYED_HEADER: Final = "Idempotent-Replayed"
MAX_KEY_LENGTH: Final = 255


def request_key(request: Request, ttl_ms: int) -> Idempotency | None:
    """The request's idempotency key with its fingerprint; None without the header; 400
    when the header is not a valid key."""
    value = request.headers.get(HEADER)
    if value is None:
        return None
    key = parse_key(value)
    digest = hashlib.sha256()
    for part in (request.method, "/".join(request.segments)):
        digest.update(part.encode("utf-8", "surrogatepass") + b"\0")
    for name, item in sorted(request.query.pairs):
        digest.update(f"{name}={item}".encode("utf-8", "surrogatepass") + b"\0")
    digest.update(request.full_body())
    return Idempotency(key, digest.digest(), ttl_ms)


def parse_key(value: str) -> str:
    """The key of an ``Idempotency-Key`` header value (a quoted string or a bare token)."""
    text = value.strip()
    if text.startswith('"'):
        key = _unquote(text)
    else:
        key = text if all("!" <= char <= "~" for char in text) else None
    if not key or len(key) > MAX_KEY_LENGTH or not all(" " <= char <= "~" for char in key):
        raise bad_request(
            f"Invalid Idempotency-Key header: {value[:40]!r}: a key is 1 to {MAX_KEY_LENGTH} "
            'printable ASCII characters, sent as a quoted string ("...") or a bare token'
        )
    return key


def _unquote(text: str) -> str | None:
    """A structured-field string's content, or None when ``text`` is not one."""
    if len(text) < 2 or not text.endswith('"'):
        return None
    chars: list[str] = []
    inner = iter(text[1:-1])
    for char in inner:
        if char == "\\":
            char = next(inner, "")
            if char not in ('"', "\\"):
                return None
        elif char == '"':
            return None
        chars.append(char)
    return "".join(chars)


class KeysInFlight:
    """The (database, key) pairs of the keyed writes this server is applying right now."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: set[tuple[int, str]] = set()

    @contextmanager
    def hold(self, db: int, key: str) -> Iterator[None]:
        """Hold the key for the duration; 409 when this server holds it already."""
        with self._lock:
            if (db, key) in self._held:
                raise in_use(key)
            self._held.add((db, key))
        try:
            yield
        finally:
            with self._lock:
                self._held.discard((db, key))


def in_use(key: str) -> HTTPError:
    return HTTPError(
        409,
        f"A request with the Idempotency-Key {key!r} is still being applied: retry once it "
        "has been answered",
        "idempotency-key-in-use",
    )


def reused(key: str) -> HTTPError:
    return HTTPError(
        422,
        f"The Idempotency-Key {key!r} was already used with a different request: send a new "
        "key with each new request, and the same key only with its retries",
        "idempotency-key-reused",
    )
