"""Choosing the store from the command line: ``--data DIR`` or ``--database-url URL``.

The URL may hold a password; to keep it out of the process list (``/proc/*/cmdline``) it may
also come from a file (``--database-url-file``) or ``$TEMPODB_DATABASE_URL``, or the password
alone from ``PGPASSWORD`` or ``~/.pgpass``.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the storage modules need the server extra: load them only when used
    from tempodb.storage.base import Store


#: The database URL when neither --data nor --database-url(-file) is given.
ENV_DATABASE_URL = "TEMPODB_DATABASE_URL"


def add_store_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--data", metavar="DIR", help="data folder of the embedded store")
    group.add_argument(
        "--database-url",
        metavar="URL",
        help="PostgreSQL database, e.g. postgresql://USER@HOST:PORT/DB (a password may come "
        f"from PGPASSWORD or ~/.pgpass); several servers may share it (${ENV_DATABASE_URL})",
    )
    group.add_argument(
        "--database-url-file",
        metavar="FILE",
        help="read the database URL from this file's first line (kept out of the process list)",
    )


def choose_store(args: argparse.Namespace) -> None:
    """Settle ``args.data`` / ``args.database_url`` from the options, the URL file or
    ``$TEMPODB_DATABASE_URL``; exits with a message when none names a store."""
    if getattr(args, "database_url_file", None) is not None:
        try:
            lines = Path(args.database_url_file).read_text().splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise SystemExit(f"tempodb: cannot read --database-url-file: {exc}") from None
        if not lines or not lines[0].strip():
            raise SystemExit(f"tempodb: {args.database_url_file} holds no database URL")
        args.database_url, args.database_url_file = lines[0].strip(), None
    if args.data is None and args.database_url is None:
        args.database_url = os.environ.get(ENV_DATABASE_URL) or None
        if args.database_url is None:
            print(
                "tempodb: give the store: --data DIR, or --database-url URL (or "
                f"--database-url-file FILE, or ${ENV_DATABASE_URL})",
                file=sys.stderr,
            )
            raise SystemExit(2)  # a usage error, as argparse's


def open_store(args: argparse.Namespace, *, existing: bool = False, lock: bool = False) -> Store:
    """The store the options name; exits with a message when it cannot be opened.

    ``existing``: a data folder must already hold a store (commands that only read or change
    keys must not create an empty store in a misspelt folder).  ``lock``: take the data
    folder's writer lock (``tempodb serve``; the short key commands go without it, so that they
    work beside a running server).
    """
    from tempodb.storage.base import StorageError

    choose_store(args)
    if args.database_url is not None:
        try:
            import psycopg

            from tempodb.storage.postgres import PostgresStore
        except ImportError as exc:
            raise SystemExit(
                f"tempodb: --database-url needs the PostgreSQL driver ({exc}): "
                "pip install 'tempodb-revived[postgres]'"
            ) from None
        head: dict[str, Any] = {}
        if getattr(args, "block_points", None) is not None:
            head["block_points"] = args.block_points
        if getattr(args, "head_points", None) is not None:
            head["head_points"] = args.head_points
        if getattr(args, "fold_after", None) is not None:
            head["fold_after_s"] = args.fold_after
        try:
            return PostgresStore(args.database_url, **head)
        except (StorageError, ValueError) as exc:
            raise SystemExit(f"tempodb: {exc}") from None
        except psycopg.Error as exc:  # e.g. a malformed URL
            raise SystemExit(f"tempodb: cannot use --database-url: {exc}".strip()) from None
    import sqlite3

    from tempodb.storage.sqlite import DEFAULT_READ_CACHE_MB, FILE_NAME, SQLiteStore

    path = Path(args.data) / FILE_NAME
    if existing and not path.is_file():
        raise SystemExit(
            f"tempodb: no tempodb data in {args.data} ({path} is missing): check --data "
            "(`tempodb keys create --data DIR` starts a new store)"
        )
    blocks: dict[str, Any] = {}
    if getattr(args, "block_points", None) is not None:
        blocks["block_points"] = args.block_points
    if getattr(args, "head_points", None) is not None:
        blocks["head_points"] = args.head_points
    if getattr(args, "fold_after", None) is not None:
        blocks["fold_after_s"] = args.fold_after
    if getattr(args, "page_cache_mb", None) is not None:
        blocks["page_cache_mb"] = args.page_cache_mb
    try:
        return SQLiteStore(
            args.data,
            read_cache_mb=getattr(args, "read_cache_mb", DEFAULT_READ_CACHE_MB),
            lock=lock,
            **blocks,
        )
    except (StorageError, OSError, ValueError, sqlite3.Error) as exc:
        raise SystemExit(f"tempodb: cannot open the store in {args.data}: {exc}") from None


def describe_store(args: argparse.Namespace) -> str:
    """The store for humans: the data folder, or the database URL without its password."""
    choose_store(args)
    if args.database_url is None:
        return f"data: {args.data}"
    url = args.database_url
    parts = urllib.parse.urlsplit(url)
    if parts.scheme and parts.password is not None:
        user, _, host = parts.netloc.rpartition("@")
        url = parts._replace(netloc=f"{user.partition(':')[0]}:***@{host}").geturl()
    url = re.sub(r"(password\s*=\s*)('[^']*'|[^&\s]*)", r"\1***", url, flags=re.IGNORECASE)
    return f"database: {url}"
