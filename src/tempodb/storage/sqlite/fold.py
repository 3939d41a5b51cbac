"""The fold of the SQLite store: when the writer thread moves series' head rows into blocks.

Which series to fold
    The writer counts, per series, the head points its writes added since it last folded the
    series (``Ledger``, in memory, at most ``LEDGER_SERIES`` series).  A series is due once
    its count reaches ``head_points``, or ``fold_after_s`` after its first counted write
    once it counts ``DENSE_POINTS`` (or ``head_points``, when fewer); a sparse series, fewer
    counted, waits ``SPARSE_AFTER`` times as long (or for its count): a million series
    written a point or two each stay in the head for minutes rather than make the writer
    fold two-point series all the time (issue 15), while a series written every second or so
    leaves the head as soon as before.
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
#: A series counting fewer head points than this (and than ``head_points``) is sparse ...
DENSE_POINTS: Final = 8
#: ... and folded by age only this many times ``fold_after_s`` after its first counted write.
#: (Its place in the ledger is held meanwhile: a full ledger of sparse series folds about
#: ``LEDGER_SERIES`` of them per ``SPARSE_AFTER * fold_after_s``, 100,000 per 5 minutes by
#: default, and leaves the rest to later sweeps.)
SPARSE_AFTER: Final = 10
#: Sparse series a step moves aside to wait, at most (a step aims at ``STEP_SECONDS``: a
#: ledger full of sparse series is moved aside in steps, not in one of tens of ms).
SET_ASIDE: Final = 4096


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
        self.dense = min(DENSE_POINTS, head_points)
        self.sparse_after = SPARSE_AFTER * fold_after_s
        # sid -> [head points counted, monotonic time of the first]; oldest first.
        self._pending: OrderedDict[int, list[float]] = OrderedDict()
        # The same for sparse series found older than fold_after_s (``take``): they wait for
        # sparse_after, or to count dense (then back to the front of _pending); oldest first.
        self._sparse: OrderedDict[int, list[float]] = OrderedDict()
        self._due: dict[int, None] = {}
        self._next_sweep = 0.0  # at once, when the store opens

    def __len__(self) -> int:
        """Series counted."""
        return len(self._pending) + len(self._sparse)

    def _count(self, sid: int, count: float, now: float) -> None:
        entry = self._pending.get(sid)
        if entry is None:
            entry = self._sparse.get(sid)
            if entry is None:
                if len(self._pending) + len(self._sparse) >= self.max_pending:
                    return  # full: left to the sweep
                entry = self._pending[sid] = [0.0, now]
            elif entry[0] + count >= self.dense:  # dense now, and older than fold_after_s
                del self._sparse[sid]
                self._pending[sid] = entry
                self._pending.move_to_end(sid, last=False)
        entry[0] += count
        if entry[0] >= self.head_points:
            self._due[sid] = None

    def note(self, counts: Mapping[int, int]) -> None:
        """Count head points that a write added (or overwrote), per sid."""
        now = time.monotonic()
        for sid, count in counts.items():
            self._count(sid, count, now)

    def note_one(self, sid: int, now: float) -> None:
        """Count one head point of ``sid`` (the planned writes' hot path)."""
        entry = self._pending.get(sid)
        if entry is None:
            self._count(sid, 1, now)
        else:
            entry[0] += 1
            if entry[0] >= self.head_points:
                self._due[sid] = None

    def forget(self, sids: Iterable[int]) -> None:
        """These series have no head rows any more (folded otherwise, or deleted)."""
        for sid in sids:
            self._pending.pop(sid, None)
            self._sparse.pop(sid, None)
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
        oldest = next(iter(self._sparse.values()), None)
        if oldest is not None:
            until = min(until, oldest[1] + self.sparse_after - now)
        return max(until, 0.0)

    def pressing(self) -> bool:
        """Series are due by count: fold them before the next calls."""
        return bool(self._due)

    def sweep_due(self) -> bool:
        return time.monotonic() >= self._next_sweep

    def swept(self, found: Iterable[tuple[int, int]], limit: int) -> None:
        """Series found with head rows by a sweep of at most ``limit``, with how many: folded
        ``fold_after_s`` from now (sparse ones later) unless writes make them due sooner.  A
        sweep that found ``limit`` (the head may hold more) or more than the ledger has room
        for comes again ``fold_after_s`` from now, else ``4 * fold_after_s``."""
        now = time.monotonic()
        pending, sparse, found = self._pending, self._sparse, list(found)
        for sid, count in found:
            if sid not in pending and sid not in sparse and len(self) < self.max_pending:
                pending[sid] = [float(count), now]
        left = len(found) >= limit or any(
            sid not in pending and sid not in sparse for sid, _ in found
        )
        every = self.after if left else 4 * self.after
        self._next_sweep = now + every if math.isfinite(every) else math.inf

    def take(self, limit: int = FOLD_BATCH) -> list[int]:
        """Up to ``limit`` series due now (by count first, then by age, the oldest first:
        sparse ones that waited ``SPARSE_AFTER * fold_after_s``, then the others), no longer
        counted."""
        now = time.monotonic()
        taken = list(self._due)[:limit]
        chosen = set(taken)
        for sid, (_, first) in self._sparse.items():
            if len(taken) >= limit or first + self.sparse_after > now:
                break
            if sid not in chosen:
                taken.append(sid)
                chosen.add(sid)
        if len(taken) < limit:
            waiting: list[int] = []  # sparse, older than fold_after_s: on to _sparse
            for sid, (count, first) in self._pending.items():
                if len(taken) >= limit or len(waiting) >= SET_ASIDE or first + self.after > now:
                    break
                if sid in chosen:
                    continue
                if count >= self.dense or first + self.sparse_after <= now:
                    taken.append(sid)
                else:
                    waiting.append(sid)
            for sid in waiting:
                self._sparse[sid] = self._pending.pop(sid)
        self.forget(taken)
        return taken

    def again(self, sids: Iterable[int]) -> None:
        """A fold of these failed: try them again ``fold_after_s`` from now."""
        now = time.monotonic()
        for sid in sids:
            if sid not in self._sparse:
                self._pending.setdefault(sid, [float(self.dense), now])
