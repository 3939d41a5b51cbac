"""``tempodb backup``: a consistent copy of the embedded store, taken while the server runs.

The copy is made with SQLite's online backup API (never a file copy, which could catch the
database halfway through a write): one snapshot of every committed write, checked, flushed to
disk and then renamed into place.  ``OUT`` becomes a data folder of its own; to restore, run
``tempodb serve --data OUT`` (or put ``OUT/tempodb.sqlite3`` in place of the lost one while no
server runs).  On PostgreSQL use the database's own tools (``pg_dump``, base backups).
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from pathlib import Path
from typing import Any


def register(commands: Any) -> None:
    backup = commands.add_parser(
        "backup", help="copy the embedded store consistently (safe while the server runs)"
    )
    backup.add_argument("--data", metavar="DIR", required=True, help="the data folder to copy")
    backup.add_argument(
        "out", metavar="OUT", help="a folder for the copy (a data folder of its own)"
    )
    backup.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tempodb.storage.base import StorageError
    from tempodb.storage.sqlite import FILE_NAME, SQLiteStore

    source = Path(args.data) / FILE_NAME
    if not source.is_file():
        print(f"tempodb: no tempodb data in {args.data} ({source} is missing)", file=sys.stderr)
        return 1
    target = Path(args.out) / FILE_NAME
    if target.exists():
        print(f"tempodb: {target} exists already: back up into a new folder", file=sys.stderr)
        return 1
    try:
        store = SQLiteStore(args.data)
    except (StorageError, sqlite3.Error) as exc:
        print(f"tempodb: cannot open the store in {args.data}: {exc}", file=sys.stderr)
        return 1
    try:
        store.backup(target)
    except StorageError as exc:
        print(f"tempodb: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()
    print(f"backed up {source} to {target} ({target.stat().st_size} bytes)")
    return 0
