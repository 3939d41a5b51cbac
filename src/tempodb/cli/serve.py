"""``tempodb serve``: run the v1 API in the foreground.

Safe defaults: it binds 127.0.0.1 unless ``--host`` says otherwise; with ``--tls-cert`` it speaks
TLS 1.2 or 1.3 only, with forward-secret AEAD ciphers (``tls_context``); credentials are not
cached, so that a revoked key stops working with the next request (``--auth-cache`` trades that
for one database round trip less per request on PostgreSQL).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import signal
import socket
import ssl
import sys
from collections.abc import Iterator
from typing import Any

from tempodb.cli.stores import add_store_arguments, describe_store, open_store

#: TLS 1.2 cipher suites allowed (TLS 1.3 suites are all AEAD and always allowed).
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20:!aNULL:!MD5:!DSS"


def tls_context(certfile: str, keyfile: str) -> ssl.SSLContext:
    """The server's TLS context: TLS 1.2 at least, forward-secret AEAD ciphers."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(TLS12_CIPHERS)
    context.load_cert_chain(certfile, keyfile)
    return context


#: glibc ``mallopt`` parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8


def tune_allocator() -> bool:
    """Keep freed memory for reuse instead of handing it back to the kernel at once.

    A read allocates arrays of about 1 MB per 100,000 points, and glibc's malloc serves those
    with fresh ``mmap`` pages and unmaps them when freed (or trims them off the heap), so the
    next read faults every page in again: measured on a 2-core VM, 770 page faults and about
    half the time of reading 100,000 points.  Blocks up to 16 MiB now come from the heap,
    and up to 64 MiB of free heap is kept (in at most two arenas), so the server's resident
    memory stays at about its peak instead of shrinking after each big request.  False (and
    nothing changed) where the C library is not glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return all(
        mallopt(param, value) == 1
        for param, value in (
            (_M_ARENA_MAX, 2),
            (_M_MMAP_THRESHOLD, 16 << 20),
            (_M_TRIM_THRESHOLD, 64 << 20),
        )
    )


def register(commands: Any) -> None:
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
        "--max-series-per-request",
        type=int,
        default=10_000,
        metavar="N",
        help="most series one POST /v1/series/ with a JSON array creates (default 10000)",
    )
    serve.add_argument(
        "--max-body-mb",
        type=float,
        default=64.0,
        help="largest request body accepted, in MB (default 64)",
    )
    serve.add_argument(
        "--read-cache-mb",
        type=float,
        default=256.0,
        metavar="MB",
        help="memory for blocks kept decoded for later reads, embedded store only "
        "(default 256; 0: none)",
    )
    serve.add_argument(
        "--head-points",
        type=int,
        metavar="N",
        help="PostgreSQL only: fold a series' fresh points from the write head into its blocks "
        "once the head holds N of them (default 1024)",
    )
    serve.add_argument(
        "--fold-after",
        type=float,
        metavar="SECONDS",
        help="PostgreSQL only: ... or SECONDS after the first of them (default 30)",
    )
    serve.add_argument("--access-log", action="store_true", help="log every request")
    serve.add_argument(
        "--queue",
        type=int,
        default=256,
        metavar="N",
        help="most requests in progress at once; more get 503 with Retry-After (default 256)",
    )
    serve.add_argument(
        "--rate-limit",
        type=float,
        metavar="N",
        help="requests a second allowed per API key (bursts of N); more get 429 (default: none)",
    )
    serve.add_argument(
        "--auth-cache",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="cache good credentials this long: a revoked key then works on for up to that "
        "long (default 0: ask the store on every request)",
    )
    serve.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    class GracefulServer(uvicorn.Server):
        """Stops cleanly on SIGINT/SIGTERM and exits 0 (uvicorn re-raises the signal)."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, self.handle_exit)
            yield

    class HardenedConfig(uvicorn.Config):
        """uvicorn's configuration with our TLS context."""

        def load(self) -> None:
            super().load()
            if args.tls_cert:
                self.ssl = tls_context(args.tls_cert, args.tls_key)

    from tempodb.server.app import TempoDBApp
    from tempodb.server.context import Options

    if bool(args.tls_cert) != bool(args.tls_key):
        print("tempodb: --tls-cert and --tls-key go together", file=sys.stderr)
        return 2
    if args.read_cache_mb < 0:
        print("tempodb: --read-cache-mb must be 0 or more", file=sys.stderr)
        return 2
    if args.queue < 1 or (args.rate_limit is not None and not args.rate_limit > 0):
        print("tempodb: --queue and --rate-limit must be positive", file=sys.stderr)
        return 2
    if args.max_series_per_request < 1:
        print("tempodb: --max-series-per-request must be at least 1", file=sys.stderr)
        return 2
    tune_allocator()
    store = open_store(args)
    app = TempoDBApp(
        store,
        options=Options(auto_tag=args.auto_tag, max_series_per_request=args.max_series_per_request),
        max_body=int(args.max_body_mb * 1024 * 1024),
        max_pending=args.queue,
        rate_limit=args.rate_limit,
        auth_ttl=args.auth_cache,
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
    config = HardenedConfig(
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
