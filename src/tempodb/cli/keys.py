"""``tempodb keys``: create, list, revoke and delete API keys (one database each).

``revoke`` stops a key at once (the running servers ask the store on every request) and keeps
its data, so that it can still be backed up; ``delete`` removes the key and all its data.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from tempodb.cli.stores import add_store_arguments, open_store


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
    store = open_store(args, existing=args.keys_command != "create")
    try:
        if args.keys_command == "create":
            credentials = store.create_database(args.name, admin=args.admin)
            if args.json:
                print(json.dumps({"key": credentials.key, "secret": credentials.secret}))
            else:
                print(f"key:    {credentials.key}\nsecret: {credentials.secret}")
                print(
                    "Keep the secret: it is stored only as a hash and cannot be shown again.",
                    file=sys.stderr,
                )
        elif args.keys_command == "list":
            for db in store.list_databases():
                if args.json:
                    entry = {"key": db.key, "name": db.name, "admin": db.admin}
                    print(json.dumps({**entry, "revoked": db.revoked}))
                else:
                    flags = ("admin  " if db.admin else "") + ("revoked  " if db.revoked else "")
                    print(f"{db.key}  {flags}{db.name}")
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
