"""Private files (issue 26): whatever the umask, the embedded store's folder, database, WAL
and backups are readable by their owner only, and a folder others may write to is refused."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tempodb.storage.base import StorageError
from tempodb.storage.sqlite import FILE_NAME, SQLiteStore

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def loose_umask() -> Iterator[None]:
    """The usual 022 umask, under which files come out 0644 unless the store says otherwise."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def test_a_new_store_is_private(tmp_path: Path, loose_umask: None) -> None:
    folder = tmp_path / "data"
    with SQLiteStore(folder) as store:
        credentials = store.create_database("x")
        assert store.authenticate(credentials.key, credentials.secret) is not None
        assert mode(folder) == 0o700
        for name in (FILE_NAME, f"{FILE_NAME}-wal", f"{FILE_NAME}-shm"):
            assert mode(folder / name) == 0o600, name
        store.backup(tmp_path / "copy" / FILE_NAME)
    assert mode(tmp_path / "copy" / FILE_NAME) == 0o600


def test_an_older_store_is_made_private(tmp_path: Path, loose_umask: None) -> None:
    folder = tmp_path / "data"
    SQLiteStore(folder).close()
    (folder / FILE_NAME).chmod(0o644)
    with SQLiteStore(folder):
        assert mode(folder / FILE_NAME) == 0o600


@pytest.mark.parametrize("loose", [0o777, 0o775, 0o1777])
def test_a_folder_others_may_write_is_refused(tmp_path: Path, loose: int) -> None:
    folder = tmp_path / "shared"
    folder.mkdir()
    folder.chmod(loose)
    with pytest.raises(StorageError, match="may be written by other users"):
        SQLiteStore(folder)
    assert not (folder / FILE_NAME).exists()
