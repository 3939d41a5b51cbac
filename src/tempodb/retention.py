"""Retention: durations as people write them, the server's view of every database's retention,
and the background pass that enforces it.

A database's retention (``Store.set_retention``; ``tempodb keys create --retention 90d``,
``tempodb keys retention KEY 90d``) bounds how long its raw points are kept; before they go,
their 15-minute summaries are written to the tier (``tempodb.tier``), which is kept for the
tier retention (default: forever).  The server reads the retentions again at most
``RetentionView.ttl`` seconds after it last did, so a change needs no restart, and runs
``Store.expire`` every ``every`` seconds (``tempodb serve --retention-every``, 60 unless
set) on a thread of its own (:class:`Enforcer`).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from typing import Final

from tempodb.storage.base import Expired, Retention, Store

__all__ = ["Enforcer", "RetentionView", "format_duration", "now_ms", "parse_duration"]

log = logging.getLogger("tempodb.retention")

_UNITS: Final = {"m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 7 * 86_400_000}
_DURATION = re.compile(r"([0-9]{1,9})([mhdw])")
#: Retentions beyond about 10,000 years are refused (and int64 milliseconds stay exact).
_MAX_MS: Final = 10_000 * 365 * 86_400_000


def parse_duration(text: str) -> int | None:
    """``90d``, ``12h``, ``30m``, ``2w`` as milliseconds; ``none`` as None (keep forever).

    Raises:
        ValueError: naming the text and the accepted forms.
    """
    lowered = text.strip().lower()
    if lowered == "none":
        return None
    match = _DURATION.fullmatch(lowered)
    if match is None or int(match.group(1)) == 0:
        raise ValueError(
            f"Invalid retention: {text!r} (a whole number of minutes, hours, days or weeks "
            "such as 30m, 12h, 90d or 52w, or none)"
        )
    ms = int(match.group(1)) * _UNITS[match.group(2)]
    if ms > _MAX_MS:
        raise ValueError(f"Invalid retention: {text!r} is longer than 10,000 years")
    return ms


def format_duration(ms: int | None) -> str:
    """The shortest of ``parse_duration``'s forms for ``ms`` (``none`` for None)."""
    if ms is None:
        return "none"
    for unit in ("w", "d", "h"):
        if ms % _UNITS[unit] == 0:
            return f"{ms // _UNITS[unit]}{unit}"
    return f"{ms // _UNITS['m']}m"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class RetentionView:
    """Every database's retention as a server sees it: read from the store again once
    ``ttl`` seconds have passed (one query a second at most, whatever the request rate)."""

    def __init__(self, store: Store, ttl: float = 1.0) -> None:
        self.store = store
        self.ttl = ttl
        self._lock = threading.Lock()
        self._known: dict[int, Retention] = {}
        self._read_at = -float("inf")

    def of(self, db: int) -> Retention | None:
        """The retention of database ``db`` (None: it keeps everything)."""
        now = time.monotonic()
        if now - self._read_at >= self.ttl:
            with self._lock:
                if now - self._read_at >= self.ttl:
                    self._known = self.store.retentions()
                    self._read_at = time.monotonic()
        return self._known.get(db)

    def forget(self) -> None:
        """Read the retentions again at the next question (after a change by this server)."""
        self._read_at = -float("inf")


class Enforcer:
    """A thread that runs ``store.expire`` every ``every`` seconds (the first pass at once)
    until :meth:`close`; a failing pass is logged and the next one tried as planned."""

    def __init__(self, store: Store, every: float) -> None:
        if not 0 < every <= 3600:
            raise ValueError(f"the retention period must be 0 to 3600 seconds, not {every!r}")
        self.store = store
        self.every = every
        self.passes = 0
        self.last: Expired | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tempodb-retention", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                self.last = self.store.expire(now_ms())
                if self.last.points or self.last.tier_dropped:
                    log.info(
                        "retention: %d points of %d series moved to the tier, "
                        "%d tier buckets dropped",
                        self.last.points,
                        self.last.series,
                        self.last.tier_dropped,
                    )
            except Exception:
                if self._stop.is_set():
                    return
                log.exception("the retention pass failed (the next one runs as planned)")
            self.passes += 1
            self._stop.wait(max(0.0, self.every - (time.monotonic() - began)))

    def close(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
