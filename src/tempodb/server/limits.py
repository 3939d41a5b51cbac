"""Overload protection: bounded work in progress (503), an optional per-key rate (429), and
the limits a request and a connection must stay within (``Limits``).

``Limits`` gathers what ``tempodb serve`` lets an operator set (README "Security"): the body size,
the requests in progress, the open connections, the header size, the deadlines for the headers
and the body, the idle keep-alive time and how far a gzip body may expand.  They are checked
where they are created, with messages that name the bad value.

``Admission`` bounds what the server holds at once: the requests in progress (reading their
body, waiting for a worker thread, running) and the request-body bytes they keep in memory.
A request beyond either bound is answered ``503`` with ``Retry-After`` at once, before its body
is read, so memory stays bounded however many clients push at the same time.  It is used from
the event loop only, so it needs no lock.

``RateLimiter`` is a token bucket per API key (``tempodb serve --rate-limit N``): on average N
requests a second, in bursts of up to N (at least 1); past that ``429`` with ``Retry-After``.
It counts authenticated requests only, so that nobody can spend another key's budget with a
wrong secret.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

from tempodb.server.http import HTTPError

#: Seconds a client is asked to wait after a 503.
BUSY_RETRY_AFTER = 1

#: The request target (path and query) may be this long at most: the URL parser's bound
#: (uvicorn's ``httptools.parse_url`` keeps offsets in 16 bits).  Longer ones get 414.
MAX_TARGET_BYTES = 65_535
#: Connections over ``max_connections`` kept open for ``/healthz`` alone (others get 503).
HEALTH_RESERVE = 16
#: A gzip body may always decompress to this much, whatever its ratio.
GZIP_RATIO_FLOOR = 1 << 20


@dataclass(frozen=True)
class Limits:
    """What one request and one connection may use, and how long they may take.

    The defaults suit a server that faces untrusted clients; README "Security" explains each,
    and ``tempodb serve`` has an option for each.
    """

    #: Largest request body, after decompression (413 beyond it).
    max_body: int = 64 * 1024 * 1024
    #: Authenticated requests in progress at once (503 beyond it).
    max_pending: int = 256
    #: Open connections; ``HEALTH_RESERVE`` more are kept for ``/healthz``.  Past the limit
    #: the connection idle the longest is closed, or the new one when none is idle.
    max_connections: int = 1000
    #: Bytes of header fields in one request (431 beyond it).
    max_header_bytes: int = 64 * 1024
    #: Seconds from the first byte of a request (or the opening of the connection) to the end
    #: of its headers (408 beyond it).
    header_timeout: float = 10.0
    #: Seconds for a whole request body to arrive once it is read (408 beyond it).
    body_timeout: float = 60.0
    #: Seconds a connection may stay open between requests.
    idle_timeout: float = 75.0
    #: How many times its own size a gzip body may expand (413 beyond it; bodies decompressing
    #: to 1 MiB or less are always accepted).
    max_gzip_ratio: float = 100.0

    def __post_init__(self) -> None:
        for name in ("max_body", "max_pending", "max_connections", "max_header_bytes"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive whole number, not {value!r}")
        for name in ("header_timeout", "body_timeout", "idle_timeout"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and 0 < value < math.inf):
                raise ValueError(f"{name} must be a positive number of seconds, not {value!r}")
        if not (isinstance(self.max_gzip_ratio, int | float) and self.max_gzip_ratio >= 1):
            raise ValueError(f"max_gzip_ratio must be 1 or more, not {self.max_gzip_ratio!r}")


def overloaded(reason: str) -> HTTPError:
    """503 with ``Retry-After``: nothing was done, the same request may be sent again."""
    return HTTPError(
        503,
        f"Server busy ({reason}): nothing was done, retry after {BUSY_RETRY_AFTER} s",
        "overloaded",
        {"Retry-After": str(BUSY_RETRY_AFTER)},
    )


class Ticket:
    """One admitted request and the body bytes it holds; ``close`` gives them back."""

    __slots__ = ("_admission", "_closed", "held")

    def __init__(self, admission: Admission) -> None:
        self._admission = admission
        self._closed = False
        self.held = 0

    def hold(self, size: int) -> None:
        """Account for ``size`` more body bytes; 503 when the server holds too many."""
        admission = self._admission
        if admission.held + size > admission.max_bytes:
            raise overloaded("too much request data in memory")
        admission.held += size
        self.held += size

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._admission.requests -= 1
            self._admission.held -= self.held


class Admission:
    """At most ``max_requests`` requests in progress, holding ``max_bytes`` of bodies."""

    def __init__(self, max_requests: int, max_bytes: int) -> None:
        if max_requests < 1 or max_bytes < 1:
            raise ValueError(
                f"max_requests and max_bytes must be positive, not {max_requests}, {max_bytes}"
            )
        self.max_requests = max_requests
        self.max_bytes = max_bytes
        self.requests = 0
        self.held = 0

    def admit(self) -> Ticket:
        """A ticket for one more request; 503 when ``max_requests`` are in progress."""
        if self.requests >= self.max_requests:
            raise overloaded(f"{self.max_requests} requests in progress")
        self.requests += 1
        return Ticket(self)


class RateLimiter:
    """A token bucket per key: ``rate`` requests a second, bursts of ``max(rate, 1)``."""

    def __init__(self, rate: float, *, max_keys: int = 100_000) -> None:
        if not rate > 0:
            raise ValueError(f"the rate limit must be positive, not {rate!r}")
        self.rate = rate
        self.burst = max(rate, 1.0)
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, when)
        self._lock = threading.Lock()

    def check(self, key: str) -> None:
        """Take a token for ``key``; 429 with ``Retry-After`` when there is none."""
        now = time.monotonic()
        with self._lock:
            tokens, when = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - when) * self.rate)
            if tokens >= 1.0:
                if len(self._buckets) >= self.max_keys and key not in self._buckets:
                    self._forget_full(now)
                self._buckets[key] = (tokens - 1.0, now)
                return
            self._buckets[key] = (tokens, now)
        wait = max(1, math.ceil((1.0 - tokens) / self.rate))
        raise HTTPError(
            429,
            f"Too many requests: this key may make {self.rate:g} a second; retry after {wait} s",
            "rate-limited",
            {"Retry-After": str(wait)},
        )

    def _forget_full(self, now: float) -> None:
        """Drop the buckets that have refilled (they hold no information)."""
        self._buckets = {
            key: (tokens, when)
            for key, (tokens, when) in self._buckets.items()
            if tokens + (now - when) * self.rate < self.burst
        }
