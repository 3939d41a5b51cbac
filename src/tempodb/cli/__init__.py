"""The ``tempodb`` command: a thin layer over the library.

::

    tempodb serve --data DIR [--host 127.0.0.1] [--port 4242] [--tls-cert F --tls-key F]
    tempodb keys create --data DIR [--name NAME] [--json] [--admin]
    tempodb keys list --data DIR [--json]
    tempodb keys revoke KEY --data DIR
    tempodb keys delete KEY --data DIR
    tempodb backup --data DIR OUT
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

from tempodb.cli import backup, data, keys, serve

COMMAND_MODULES = (serve, keys, backup, data)


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
    result: int = args.run(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
