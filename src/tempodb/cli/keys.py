"""``tempodb keys``: create, list, revoke and delete API keys (one database each).

``revoke`` stops a key at once (the running servers ask the store on every request) and keeps
its data, so that it can still be backed up; ``delete`` removes the key and all its data.
``retention`` sets how long a database keeps its raw points (``--retention`` at ``create``
too); running servers apply a change within a second (``tempodb.retention``).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from tempodb.cli.stores import add_store_arguments, open_store

# tempodb.retention and the storage layer (numpy) load when a keys command runs, not when the
# tempodb command starts (tests/client/test_client_unit.py).


def _duration(text: str) -> int | None:
    from tempodb.retention import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


_RETENTION_HELP = (
    "keep raw points this long (30m, 12h, 90d, 52w, or none): older ones are summarized "
    "into the 15-minute tier and dropped, older writes refused"
)
_TIER_HELP = "keep the 15-minute tier this long (default: none, forever)"


def register(commands: Any) -> None:
    keys = commands.add_parser("keys", help="manage API keys (one database per key)")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    create = key_commands.add_parser("create", help="create a database and print its key")
    add_store_arguments(create)
    create.add_argument("--name", default="", help="a name to remember the database by")
    create.add_argument("--json", action="store_true", help='print {"key": ..., "secret": ...}')
    create.add_argument(
        "--admin",
        action="store_true",
        help="the key may create further databases (POST /v1/database/)",
    )
    create.add_argument("--retention", type=_duration, default=None, help=_RETENTION_HELP)
    create.add_argument("--tier-retention", type=_duration, default=None, help=_TIER_HELP)
    retention = key_commands.add_parser(
        "retention", help="set how long a database keeps its points (none: forever)"
    )
    add_store_arguments(retention)
    retention.add_argument("key")
    retention.add_argument("duration", type=_duration, help=_RETENTION_HELP)
    retention.add_argument("--tier-retention", type=_duration, default=None, help=_TIER_HELP)
    listing = key_commands.add_parser("list", help="list the keys")
    add_store_arguments(listing)
    listing.add_argument("--json", action="store_true", help="print JSON lines")
    revoke = key_commands.add_parser(
        "revoke", help="stop a key at once, keeping its data (delete removes it)"
    )
    add_store_arguments(revoke)
    revoke.add_argument("key")
    delete = key_commands.add_parser("delete", help="delete a key with all its data")
    add_store_arguments(delete)
    delete.add_argument("key")
    keys.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tempodb.retention import format_duration
    from tempodb.storage.base import Retention

    store = open_store(args, existing=args.keys_command != "create")
    try:
        if args.keys_command == "create":
            credentials = store.create_database(args.name, admin=args.admin)
            if args.retention is not None or args.tier_retention is not None:
                store.set_retention(credentials.key, Retention(args.retention, args.tier_retention))
            if args.json:
                print(json.dumps({"key": credentials.key, "secret": credentials.secret}))
            else:
                print(f"key:    {credentials.key}\nsecret: {credentials.secret}")
                print(
                    "Keep the secret: it is stored only as a hash and cannot be shown again.",
                    file=sys.stderr,
                )
        elif args.keys_command == "list":
            known = store.retentions()
            for db in store.list_databases():
                own = known.get(db.id) or Retention()
                retention, tier_retention = (
                    format_duration(own.keep_ms),
                    format_duration(own.tier_keep_ms),
                )
                if args.json:
                    entry = {"key": db.key, "name": db.name, "admin": db.admin}
                    extra = {"retention": retention, "tier_retention": tier_retention}
                    print(json.dumps({**entry, "revoked": db.revoked, **extra}))
                else:
                    flags = ("admin  " if db.admin else "") + ("revoked  " if db.revoked else "")
                    if own.keep_ms is not None:
                        flags += f"retention={retention}  "
                    if own.tier_keep_ms is not None:
                        flags += f"tier-retention={tier_retention}  "
                    print(f"{db.key}  {flags}{db.name}")
        elif args.keys_command == "retention":
            wanted = Retention(args.duration, args.tier_retention)
            if not store.set_retention(args.key, wanted):
                print(f"tempodb: no such key: {args.key}", file=sys.stderr)
                return 1
            print(
                f"{args.key}: retention {format_duration(wanted.keep_ms)}, "
                f"tier retention {format_duration(wanted.tier_keep_ms)}"
            )
        elif args.keys_command == "revoke":
            if not store.revoke_database(args.key):
                print(f"tempodb: no such key: {args.key}", file=sys.stderr)
                return 1
            print(f"revoked {args.key}; its data is kept until `tempodb keys delete`")
        elif args.keys_command == "delete":
            if not store.delete_database(args.key):
                print(f"tempodb: no such key: {args.key}", file=sys.stderr)
                return 1
            print(f"deleted {args.key} and all its data")
    finally:
        store.close()
    return 0
