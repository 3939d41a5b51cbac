"""The ``tempodb`` command: a thin layer over the library.

::

    tempodb serve --data DIR [--host 127.0.0.1] [--port 4242] [--tls-cert F --tls-key F]
    tempodb keys create --data DIR [--name NAME] [--json] [--admin]
    tempodb keys list --data DIR [--json]
    tempodb keys delete KEY --data DIR

Every command takes ``--database-url postgresql://USER@HOST:PORT/DB`` instead of ``--data``
to use PostgreSQL (``pip install 'tempodb[postgres]'``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import re
import signal
import socket
import sys
import urllib.parse
from collections.abc import Iterator, Sequence

from tempodb.storage.base import StorageError, Store


def add_store_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--data", metavar="DIR", help="data folder of the embedded store")
    group.add_argument(
        "--database-url",
        metavar="URL",
        help="PostgreSQL database, e.g. postgresql://USER@HOST:PORT/DB (a password may come "
        "from PGPASSWORD or ~/.pgpass); several servers may share it",
    )


def open_store(args: argparse.Namespace) -> Store:
    if args.database_url is not None:
        try:
            from tempodb.storage.postgres import PostgresStore
        except ImportError as exc:
            raise SystemExit(
                f"tempodb: --database-url needs the PostgreSQL driver ({exc}): "
                "pip install 'tempodb[postgres]'"
            ) from None
        try:
            return PostgresStore(args.database_url)
        except StorageError as exc:
            raise SystemExit(f"tempodb: {exc}") from None
    from tempodb.storage.sqlite import SQLiteStore

    return SQLiteStore(args.data)


def describe_store(args: argparse.Namespace) -> str:
    """The store for humans: the data folder, or the database URL without its password."""
    if args.database_url is None:
        return f"data: {args.data}"
    url = args.database_url
    parts = urllib.parse.urlsplit(url)
    if parts.scheme and parts.password is not None:
        user, _, host = parts.netloc.rpartition("@")
        url = parts._replace(netloc=f"{user.partition(':')[0]}:***@{host}").geturl()
    url = re.sub(r"(password\s*=\s*)('[^']*'|[^&\s]*)", r"\1***", url, flags=re.IGNORECASE)
    return f"database: {url}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tempodb", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the v1 API server in the foreground")
    add_store_arguments(serve)
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=4242, help="port (default 4242; 0 = any)")
    serve.add_argument("--tls-cert", metavar="FILE", help="serve HTTPS with this certificate")
    serve.add_argument("--tls-key", metavar="FILE", help="private key of --tls-cert")
    serve.add_argument(
        "--auto-tag",
        action="store_true",
        help="tag new series with the dotted components of their key",
    )
    serve.add_argument(
        "--max-body-mb",
        type=float,
        default=64.0,
        help="largest request body accepted, in MB (default 64)",
    )
    serve.add_argument("--access-log", action="store_true", help="log every request")

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
    delete = key_commands.add_parser("delete", help="delete a key with all its data")
    add_store_arguments(delete)
    delete.add_argument("key")
    return parser


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    class GracefulServer(uvicorn.Server):
        """Stops cleanly on SIGINT/SIGTERM and exits 0 (uvicorn re-raises the signal)."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, self.handle_exit)
            yield

    from tempodb.server.app import TempoDBApp
    from tempodb.server.context import Options

    if bool(args.tls_cert) != bool(args.tls_key):
        print("tempodb: --tls-cert and --tls-key go together", file=sys.stderr)
        return 2
    store = open_store(args)
    app = TempoDBApp(
        store,
        options=Options(auto_tag=args.auto_tag),
        max_body=int(args.max_body_mb * 1024 * 1024),
    )
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.set_inheritable(True)
    port = sock.getsockname()[1]
    try:
        import uvloop  # noqa: F401

        loop = "uvloop"
    except ImportError:
        loop = "asyncio"
    config = uvicorn.Config(
        app,
        loop=loop,
        http="httptools",
        lifespan="on",
        access_log=args.access_log,
        log_level="info",
        server_header=False,
        ssl_certfile=args.tls_cert,
        ssl_keyfile=args.tls_key,
        timeout_keep_alive=75,
        timeout_graceful_shutdown=10,
    )
    scheme = "https" if args.tls_cert else "http"
    print(
        f"tempodb: serving {scheme}://{args.host}:{port}/v1/ ({describe_store(args)})", flush=True
    )
    GracefulServer(config).run(sockets=[sock])
    return 0


def keys(args: argparse.Namespace) -> int:
    store = open_store(args)
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
                    print(json.dumps({"key": db.key, "name": db.name, "admin": db.admin}))
                else:
                    print(f"{db.key}  {'admin  ' if db.admin else ''}{db.name}")
        elif args.keys_command == "delete":
            if not store.delete_database(args.key):
                print(f"tempodb: no such key: {args.key}", file=sys.stderr)
                return 1
            print(f"deleted {args.key} and all its data")
    finally:
        store.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.command == "serve":
        return serve(args)
    return keys(args)


if __name__ == "__main__":
    sys.exit(main())
