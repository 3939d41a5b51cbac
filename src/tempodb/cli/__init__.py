"""The ``tempodb`` command: a thin layer over the library.

::

    tempodb serve --data DIR [--host 127.0.0.1] [--port 4242] [--tls-cert F --tls-key F]
    tempodb keys create --data DIR [--name NAME] [--json] [--admin]
    tempodb keys list --data DIR [--json]
    tempodb keys revoke KEY --data DIR
    tempodb keys delete KEY --data DIR
    tempodb backup --data DIR OUT
    tempodb citus setup --database-url URL   (prepare a Citus cluster: schema, distribution)
    tempodb series list|create|update|delete [--key K] [--tag T] [--attr NAME=VALUE] ...
    tempodb write KEY [FILE]    tempodb read KEY    tempodb import FILE    tempodb export

Every command that takes ``--data`` takes ``--database-url postgresql://USER@HOST:PORT/DB``
instead to use PostgreSQL (``pip install 'tempodb-revived[postgres]'``); the user commands (series,
write, read, import, export) talk to a server over the API.  Each group of commands lives in its
own module with a ``register(subparsers)`` function.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from tempodb.cli import backup, citus, data, keys, serve

COMMAND_MODULES = (serve, keys, backup, citus, data)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tempodb", description="The TempoDB v1 server and its administration."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for module in COMMAND_MODULES:
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        result: int = args.run(args)
    except Exception as exc:
        message = _store_failure(exc)
        if message is None:
            raise
        print(f"tempodb: {message}", file=sys.stderr)
        return 1
    return result


def _store_failure(exc: Exception) -> str | None:
    """The one-line message of a failure of the store (never a traceback), or None for a bug.
    Only modules already loaded are looked at: the client-only install has no store."""
    base = sys.modules.get("tempodb.storage.base")
    psycopg = sys.modules.get("psycopg")
    storage_error = getattr(base, "StorageError", None)
    pg_error = getattr(psycopg, "Error", None)
    if (storage_error is None or not isinstance(exc, storage_error)) and (
        pg_error is None or not isinstance(exc, pg_error)
    ):
        return None
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


if __name__ == "__main__":
    sys.exit(main())
