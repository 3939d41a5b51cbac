"""``tempodb citus setup``: prepare a Citus cluster for tempodb, from its coordinator.

It creates or migrates the schema on the coordinator and distributes every table
(``tempodb.storage.postgres.citus``: the points by series, so that one large database spreads
over every worker).  Running it again changes nothing.  Run it before starting the servers
(and restart running servers after it: a store learns at start whether the tables are
distributed).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from tempodb.cli.stores import ENV_DATABASE_URL, choose_store


def register(commands: Any) -> None:
    group = commands.add_parser("citus", help="run tempodb on a Citus cluster")
    sub = group.add_subparsers(dest="citus_command", required=True)
    setup = sub.add_parser(
        "setup",
        help="create or migrate the schema on the coordinator and distribute every table "
        "(idempotent)",
    )
    setup.add_argument(
        "--database-url",
        metavar="URL",
        help="the database on the Citus coordinator, e.g. postgresql://USER@HOST:PORT/DB "
        f"(${ENV_DATABASE_URL})",
    )
    setup.add_argument(
        "--database-url-file", metavar="FILE", help="read the database URL from this file"
    )
    group.set_defaults(run=run, data=None)


def run(args: argparse.Namespace) -> int:
    choose_store(args)
    try:
        import psycopg

        from tempodb.storage.base import StorageError
        from tempodb.storage.postgres.citus import CitusError, setup
    except ImportError as exc:
        raise SystemExit(
            f"tempodb: Citus needs the PostgreSQL driver ({exc}): "
            "pip install 'tempodb-revived[postgres]'"
        ) from None
    try:
        lines = setup(args.database_url)
    except (CitusError, StorageError) as exc:
        print(f"tempodb citus setup: {exc}", file=sys.stderr)
        return 1
    except psycopg.Error as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"tempodb citus setup: {message}", file=sys.stderr)
        return 1
    for line in lines:
        print(line)
    return 0
