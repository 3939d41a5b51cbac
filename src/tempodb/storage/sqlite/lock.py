"""One long-lived writer per data folder: an advisory lock on ``<data_dir>/tempodb.lock``.

SQLite itself serialises transactions, but a writing ``SQLiteStore`` keeps state between them
(the writer's cache of series and last blocks), so two of them on one folder would each trust
a cache that the other makes stale.  ``tempodb serve`` and ``tempodb.connect`` therefore take
this lock when they open a folder for writing; a second one is refused at once with
:class:`FolderLocked`, which names the folder and the process that holds it.

Who takes it: the long-lived writers only.  The short CLI commands (``tempodb keys ...``,
``tempodb backup``) open the store without it, so that keys can be created and revoked while a
server runs (the server asks the store on every request); they change only the key table, in
one SQLite transaction each.  Read-only stores (``tempodb.connect(path, read_only=True)``)
never take it and read beside a writer.

The lock is ``flock`` on an open file: the kernel releases it when the holder closes it or
dies, so a crashed writer never leaves a stale lock behind; the holder's process id is written
into the file for the message only.  POSIX only (``fcntl``).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Final

from tempodb.storage.base import StorageError

#: The lock file inside the data folder.
LOCK_NAME: Final = "tempodb.lock"


class FolderLocked(StorageError):
    """Another writer (a ``tempodb serve`` or a ``tempodb.connect``) has the data folder."""

    def __init__(self, folder: Path, pid: int | None) -> None:
        holder = f"process {pid}" if pid is not None else "another process"
        super().__init__(
            f"the data folder {str(folder)!r} is in use by another writer ({holder}): one "
            "process writes to a folder at a time; stop it, send your requests to it, or open "
            "the folder read-only (tempodb.connect(path, read_only=True))"
        )
        self.folder = folder
        self.pid = pid


class FolderLock:
    """The held lock of one data folder; :meth:`release` (or process exit) lets it go."""

    def __init__(self, folder: Path, fd: int) -> None:
        self.folder = folder
        self._fd: int | None = fd

    def release(self) -> None:
        """Let the folder go (closing the file releases the ``flock``); idempotent."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


def lock_folder(folder: Path) -> FolderLock:
    """Take the writer's lock of ``folder`` at once, or raise :class:`FolderLocked`."""
    import fcntl

    path = folder / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = _holder(fd)
        os.close(fd)
        raise FolderLocked(folder, pid) from None
    except BaseException:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return FolderLock(folder, fd)


def _holder(fd: int) -> int | None:
    """The process id the holder wrote, if it did yet."""
    with contextlib.suppress(OSError, ValueError):
        return int(os.pread(fd, 32, 0).decode("ascii").strip())
    return None
