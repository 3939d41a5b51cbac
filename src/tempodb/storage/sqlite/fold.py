"""The fold of the SQLite store: when the writer thread moves series' head rows into blocks.

Which series to fold
    The writer counts, per series, the head points its writes added since it last folded the
    series (``Ledger``, in memory, at most ``LEDGER_SERIES`` series).  A series is due once
    its count reaches ``head_points``, or ``fold_after_s`` after its first counted write.
    The counts are hints, never needed for correctness: a write rolled back leaves its count
    (the fold then finds fewer rows, or none), and rows that no count covers (written before
    a restart or a crash, by another process on the same file, or while the ledger was full)
    are found by a sweep of the head table when the store opens and every
    ``4 * fold_after_s`` after that (``fold_after_s`` after a sweep that found more than the
    ledger had room for), and folded ``fold_after_s`` later.  A full ledger counts no new
    series: a million series written once each wait for the sweep, rather than make every
    write fold, and a series written often takes the first place a fold frees.

When
    In the writer thread: at the end of a group's transaction when series are due by count,
    and in a transaction of its own when the writer is idle once the oldest count is
    ``fold_after_s`` old.  One step folds at most ``FOLD_BATCH`` series
    (``points.PointWriter.fold``), fewer when they take long (``StepSize``: a write arriving
    meanwhile waits for the step, so a step aims at ``STEP_SECONDS``).  Their rows leave the
    head and join their blocks together, or not at all, so a crash in the middle loses
    nothing and shows nothing twice.  A fold that fails is logged and tried again
    ``fold_after_s`` later; nothing is lost meanwhile, since reads merge the head.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Final

#: Series folded together in one transaction, at most.
FOLD_BATCH: Final = 256
#: ... and at least, in a step of the writer's maintenance.
MIN_STEP: Final = 8
#: The time a step of the maintenance aims at (seconds): writes arriving meanwhile wait.
#: (A step commits without an fsync, so small steps cost little more than large ones.)
STEP_SECONDS: Final = 0.001
#: Series the ledger counts, at most (about 150 bytes each).
LEDGER_SERIES: Final = 100_000


class StepSize:
    """How many series the next fold step takes: as many as the last step's rate folds in
    ``STEP_SECONDS``, from ``MIN_STEP`` to ``FOLD_BATCH``.  (With a million series whose
    blocks are not cached, 256 of them took about 20 ms: a small write waited for that.)"""

    def __init__(self) -> None:
        self.series = FOLD_BATCH

    def measured(self, series: int, seconds: float) -> None:
        """A step folded ``series`` series in ``seconds``."""
        if series and seconds > 0:
            self.series = max(MIN_STEP, min(FOLD_BATCH, int(series / seconds * STEP_SECONDS)))


class Ledger:
    """What the head holds per series, as far as this writer knows, and which series are due
    for a fold.  Only the writer thread uses it."""

    def __init__(
        self, head_points: int, fold_after_s: float, max_pending: int = LEDGER_SERIES
    ) -> None:
        self.head_points, self.after, self.max_pending = head_points, fold_after_s, max_pending
        # sid -> [head points counted, monotonic time of the first]; oldest first.
        self._pending: OrderedDict[int, list[float]] = OrderedDict()
        self._due: dict[int, None] = {}
        self._next_sweep = 0.0  # at once, when the store opens

    def note(self, counts: Mapping[int, int]) -> None:
        """Count head points that a write added (or overwrote), per sid."""
        now = time.monotonic()
        pending = self._pending
        for sid, count in counts.items():
            entry = pending.get(sid)
            if entry is None:
                if len(pending) >= self.max_pending:
                    continue  # full: left to the sweep
                entry = pending[sid] = [0.0, now]
            entry[0] += count
            if entry[0] >= self.head_points:
                self._due[sid] = None

    def note_one(self, sid: int, now: float) -> None:
        """Count one head point of ``sid`` (the planned writes' hot path)."""
        entry = self._pending.get(sid)
        if entry is None:
            if len(self._pending) < self.max_pending:
                self._pending[sid] = [1.0, now]
        else:
            entry[0] += 1
            if entry[0] >= self.head_points:
                self._due[sid] = None

    def forget(self, sids: Iterable[int]) -> None:
        """These series have no head rows any more (folded otherwise, or deleted)."""
        for sid in sids:
            self._pending.pop(sid, None)
            self._due.pop(sid, None)

    def wait(self) -> float:
        """Seconds until a fold or a sweep is due (0: now)."""
        if self._due:
            return 0.0
        now = time.monotonic()
        until = self._next_sweep - now
        oldest = next(iter(self._pending.values()), None)
        if oldest is not None:
            until = min(until, oldest[1] + self.after - now)
        return max(until, 0.0)

    def pressing(self) -> bool:
        """Series are due by count: fold them before the next calls."""
        return bool(self._due)

    def sweep_due(self) -> bool:
        return time.monotonic() >= self._next_sweep

    def swept(self, found: Iterable[tuple[int, int]], limit: int) -> None:
        """Series found with head rows by a sweep of at most ``limit``: folded
        ``fold_after_s`` from now unless writes make them due sooner.  A sweep that found
        ``limit`` (the head may hold more) or more than the ledger has room for comes again
        ``fold_after_s`` from now, else ``4 * fold_after_s``."""
        now = time.monotonic()
        pending, found = self._pending, list(found)
        for sid, _ in found:
            if sid not in pending and len(pending) < self.max_pending:
                pending[sid] = [0.0, now]
        left = len(found) >= limit or any(sid not in pending for sid, _ in found)
        every = self.after if left else 4 * self.after
        self._next_sweep = now + every if math.isfinite(every) else math.inf

    def take(self, limit: int = FOLD_BATCH) -> list[int]:
        """Up to ``limit`` series due now (by count first, then the oldest), no longer
        counted."""
        now = time.monotonic()
        taken = list(self._due)[:limit]
        if len(taken) < limit:
            chosen = set(taken)
            for sid, (_, first) in self._pending.items():
                if len(taken) >= limit or first + self.after > now:
                    break
                if sid not in chosen:
                    taken.append(sid)
        self.forget(taken)
        return taken

    def again(self, sids: Iterable[int]) -> None:
        """A fold of these failed: try them again ``fold_after_s`` from now."""
        now = time.monotonic()
        for sid in sids:
            self._pending.setdefault(sid, [0.0, now])
