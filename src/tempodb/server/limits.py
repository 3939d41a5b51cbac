"""Overload protection: bounded work in progress (503) and an optional per-key rate (429).

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

from tempodb.server.http import HTTPError

#: Seconds a client is asked to wait after a 503.
BUSY_RETRY_AFTER = 1


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
