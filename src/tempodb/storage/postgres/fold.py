"""The fold on PostgreSQL: a thread of the store moves series' head rows into their blocks.

Which series to fold
    Each store counts, per series, the head points its own writes added since it last folded
    the series (in memory, at most ``max_pending`` series: beyond that the oldest are folded
    early).  A series is folded once its count reaches ``head_points``, or ``fold_after_s``
    after its first counted write.  Points that no live store counts (written by a server that
    stopped or crashed, or by another server) are found by a sweep of the head table when the
    store starts and every ``4 * fold_after_s`` after that: they are folded ``fold_after_s``
    later.  Several servers may fold the same series: the fold transaction skips a series that
    another transaction holds (``FOR UPDATE SKIP LOCKED``), so it never waits on writers, and
    each head row is taken (deleted) by exactly one fold.

What a fold does
    ``FoldFn(db, sids)`` runs one transaction (see the package docstring) and returns the sids
    it skipped; they are tried again a moment later.  A fold that fails is logged and tried
    again after ``fold_after_s``; nothing is lost meanwhile, since reads merge the head.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Final

__all__ = ["FoldFn", "Folder", "SweepFn"]

#: Fold these series of one database in one transaction; the sids skipped (locked elsewhere).
FoldFn = Callable[[int, Sequence[int]], Sequence[int]]
#: Up to ``limit`` (db, sid) pairs that have head rows.
SweepFn = Callable[[int], Sequence[tuple[int, int]]]

#: Series folded together in one transaction.
FOLD_BATCH: Final = 64

_log = logging.getLogger(__name__)


class Folder:
    """The fold thread of one store: ``note`` what writes added, ``close`` to stop."""

    def __init__(
        self,
        fold: FoldFn,
        sweep: SweepFn,
        *,
        head_points: int,
        fold_after_s: float,
        max_pending: int = 100_000,
    ) -> None:
        self._fold, self._sweep = fold, sweep
        self._head_points, self._after, self._max = head_points, fold_after_s, max_pending
        self._sweep_every = 4 * fold_after_s
        self._retry_in = min(fold_after_s, 0.05)
        # (db, sid) -> [points counted, monotonic time of the first]; oldest first.
        self._pending: OrderedDict[tuple[int, int], list[float]] = OrderedDict()
        self._due: set[tuple[int, int]] = set()
        self._cond = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="tempodb-fold", daemon=True)
        self._thread.start()

    def note(self, db: int, counts: Mapping[int, int]) -> None:
        """Count the head points that a committed write added, per sid."""
        if not counts:
            return
        now = time.monotonic()
        wake = False
        with self._cond:
            for sid, count in counts.items():
                key = (db, sid)
                entry = self._pending.get(key)
                if entry is None:
                    entry = self._pending[key] = [0.0, now]
                entry[0] += count
                if entry[0] >= self._head_points and key not in self._due:
                    self._due.add(key)
                    wake = True
            wake = wake or len(self._pending) > self._max
            if wake:
                self._cond.notify()

    def close(self, timeout: float = 30.0) -> None:
        """Stop the thread (a fold in progress finishes first)."""
        with self._cond:
            self._stopped = True
            self._cond.notify()
        self._thread.join(timeout)

    def _take_due(self, now: float) -> list[tuple[int, int]]:
        with self._cond:
            due = list(self._due)
            self._due.clear()
            for key, (_, first) in self._pending.items():
                if first + self._after > now and len(self._pending) - len(due) <= self._max:
                    break
                due.append(key)
            taken = list(dict.fromkeys(due))
            for key in taken:
                self._pending.pop(key, None)
            return taken

    def _wait_time(self, now: float, next_sweep: float) -> float:
        with self._cond:
            oldest = next(iter(self._pending.values()), None)
        until = next_sweep - now
        if oldest is not None:
            until = min(until, oldest[1] + self._after - now)
        return max(until, 0.0)

    def _run(self) -> None:
        next_sweep = time.monotonic()
        while True:
            with self._cond:
                if self._stopped:
                    return
            now = time.monotonic()
            if now >= next_sweep:
                next_sweep = now + self._sweep_every
                self._sweep_now(now)
            due = self._take_due(now)
            if due:
                self._fold_all(due)
                continue
            with self._cond:
                if not self._stopped and not self._due:
                    self._cond.wait(self._wait_time(now, next_sweep))

    def _sweep_now(self, now: float) -> None:
        try:
            found = self._sweep(self._max)
        except Exception:
            if not self._stopped:
                _log.exception("tempodb: listing the write head failed")
            return
        with self._cond:
            for key in found:
                if key not in self._pending:
                    self._pending[key] = [0.0, now]

    def _fold_all(self, due: list[tuple[int, int]]) -> None:
        by_db: dict[int, list[int]] = {}
        for db, sid in due:
            by_db.setdefault(db, []).append(sid)
        for db, sids in by_db.items():
            sids.sort()
            for lo in range(0, len(sids), FOLD_BATCH):
                part = sids[lo : lo + FOLD_BATCH]
                with self._cond:
                    if self._stopped:
                        return
                try:
                    skipped = list(self._fold(db, part))
                    retry_at = time.monotonic() + self._retry_in
                except Exception:
                    if self._stopped:
                        return
                    _log.exception("tempodb: folding the write head failed; trying again later")
                    skipped, retry_at = part, time.monotonic() + self._after
                self._again(db, skipped, retry_at)

    def _again(self, db: int, sids: Sequence[int], at: float) -> None:
        """Fold these again at ``at`` (or sooner, if writes make them due)."""
        with self._cond:
            for sid in sids:
                entry = self._pending.setdefault((db, sid), [0.0, at - self._after])
                entry[1] = min(entry[1], at - self._after)
                self._pending.move_to_end((db, sid), last=False)  # among the oldest
