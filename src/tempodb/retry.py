"""When the client tries a request again, and how long it waits first.

Retried: 429 and 503 answers (the server refused the request before doing anything) and
connection failures.  A request that may have been applied (a timeout, a connection broken
mid-request, a 500 ``outcome-unknown``) is repeated only when that is safe: a write of
timestamped points, or a request that carries an ``Idempotency-Key`` (increments and points
stamped by the server: the client gives each call a fresh key and keeps it across the
retries, and the server applies it once).  Anything else is retried only when it certainly
never reached the server.  Other 4xx and 5xx answers are never retried.

The wait doubles on each attempt (``backoff``, ``2 * backoff``, ... up to ``max_backoff``) and is
jittered, so that many clients do not come back at the same instant; a ``Retry-After`` header
sets the wait instead (plus a little jitter), up to ``max_retry_after`` seconds.
"""

from __future__ import annotations

import email.utils
import random
import time
from dataclasses import dataclass

__all__ = ["RETRY_STATUSES", "RetryPolicy", "parse_retry_after"]

#: Answers that mean "not done, come back later".
RETRY_STATUSES = frozenset({429, 503})


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a request is tried again.

    Args:
        retries: how many times a request is repeated after the first try (0: never).
        backoff: the wait before the first retry, in seconds; it doubles each time.
        max_backoff: the longest wait between two tries, in seconds.
        max_retry_after: the longest ``Retry-After`` honoured; a longer one ends the retries
            and the exception carries ``retry_after``.

    >>> Client(key, secret, retries=RetryPolicy(retries=5, backoff=1.0))
    """

    retries: int = 3
    backoff: float = 0.25
    max_backoff: float = 8.0
    max_retry_after: float = 60.0

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise ValueError(f"retries must be 0 or more, not {self.retries}")
        if self.backoff < 0 or self.max_backoff < 0 or self.max_retry_after < 0:
            raise ValueError(f"waits must not be negative: {self!r}")

    @staticmethod
    def of(retries: int | RetryPolicy) -> RetryPolicy:
        """A policy from a number of retries (or the policy itself)."""
        if isinstance(retries, RetryPolicy):
            return retries
        if isinstance(retries, bool) or not isinstance(retries, int):
            raise TypeError(f"retries must be an int or a RetryPolicy, not {retries!r}")
        return RetryPolicy(retries=retries)

    def wait(self, attempt: int, retry_after: float | None = None) -> float | None:
        """Seconds to wait before retry number ``attempt`` (1 for the first), or None when the
        retries are used up or the server asked for a longer pause than ``max_retry_after``."""
        if attempt > self.retries:
            return None
        ceiling = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
        if retry_after is not None:
            if retry_after > self.max_retry_after:
                return None
            return float(retry_after + random.uniform(0, min(ceiling, 1.0)))
        return float(ceiling / 2 + random.uniform(0, ceiling / 2))


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header: delay-seconds or an HTTP date; None when absent
    or unreadable.

    >>> parse_retry_after("2")
    2.0
    """
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
