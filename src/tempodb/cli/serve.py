"""``tempodb serve``: run the v1 API in the foreground.

Safe defaults: it binds 127.0.0.1 unless ``--host`` says otherwise; with ``--tls-cert`` it speaks
TLS 1.2 or 1.3 only, with forward-secret AEAD ciphers (``tls_context``); credentials are not
cached, so that a revoked key stops working with the next request (``--auth-cache`` trades that
for one database round trip less per request on PostgreSQL).  The limits a connection and a
request must stay within (``server.limits.Limits``: sizes, deadlines, open connections) each
have an option, and the connections are served by ``server.connection.GuardedProtocol``,
which enforces them.  Every mistake in the options, the data folder, the TLS files or the
address is a one-line message and exit status 2 (1 when the address cannot be had), before
anything is served.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import ipaddress
import math
import signal
import socket
import ssl
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from tempodb.cli.stores import add_store_arguments, describe_store, open_store
from tempodb.protocol import url_host

if sys.platform != "win32":
    import resource

if TYPE_CHECKING:
    from tempodb.server.limits import Limits

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
        help="most series one request may create: a POST /v1/series/ with a JSON array, or a "
        "write to new keys (default 10000; beyond, 400 and nothing is written)",
    )
    serve.add_argument(
        "--idempotency-hours",
        type=float,
        default=24.0,
        metavar="HOURS",
        help="how long the store keeps a write's Idempotency-Key, so that a retry with it is "
        "answered without writing again (default 24)",
    )
    serve.add_argument(
        "--max-body-mb",
        type=float,
        default=64.0,
        metavar="MB",
        help="largest request body accepted (after decompression), in MB (default 64)",
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
        "--page-cache-mb",
        type=float,
        metavar="MB",
        help="SQLite's page cache of the writer, embedded store only (default 32; each "
        "reader thread gets at most 2)",
    )
    serve.add_argument(
        "--block-points",
        type=int,
        metavar="N",
        help="the most points a block holds (default 4096); small blocks fold all the time, "
        "which the crash tests use",
    )
    serve.add_argument(
        "--head-points",
        type=int,
        metavar="N",
        help="fold a series' fresh points from the write head into its blocks once the head "
        "holds N of them (default 32 embedded, 1024 on PostgreSQL)",
    )
    serve.add_argument(
        "--fold-after",
        type=float,
        metavar="SECONDS",
        help="... or SECONDS after the first of them (default 30; on the embedded store a "
        "series with fewer than 8 of them waits ten times as long)",
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
        "--max-connections",
        type=int,
        default=1000,
        metavar="N",
        help="most open connections; past it the one idle the longest is closed, and 16 more "
        "are kept for /healthz (default 1000)",
    )
    serve.add_argument(
        "--max-header-kb",
        type=float,
        default=64.0,
        metavar="KB",
        help="largest request header fields, in KiB; more get 431 (default 64)",
    )
    serve.add_argument(
        "--header-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="time for a request's headers to arrive; a slower client gets 408 (default 10)",
    )
    serve.add_argument(
        "--body-timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="time for a request's body to arrive; a slower client gets 408 (default 60)",
    )
    serve.add_argument(
        "--idle-timeout",
        type=float,
        default=75.0,
        metavar="SECONDS",
        help="how long a connection may stay open between requests (default 75)",
    )
    serve.add_argument(
        "--max-gzip-ratio",
        type=float,
        default=100.0,
        metavar="N",
        help="how many times its size a gzip body may expand; more get 413 (default 100)",
    )
    serve.add_argument(
        "--rate-limit",
        type=float,
        metavar="N",
        help="requests a second allowed per API key (bursts of N); more get 429 (default: none)",
    )
    serve.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="let browser pages of ORIGIN (e.g. https://dash.example.com; * for any) change "
        "data; others are refused (repeatable; default: none)",
    )
    serve.add_argument(
        "--auth-cache",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="cache good credentials this long: a revoked key then works on for up to that "
        "long (default 0: ask the store on every request)",
    )
    serve.add_argument(
        "--retention-every",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="run the retention pass this often: expired points are summarized into the "
        "15-minute tier and dropped (default 60; see tempodb keys retention)",
    )
    serve.set_defaults(run=run)


def limits_of(args: argparse.Namespace) -> Limits:
    """The server's limits from the options; ValueError naming the bad one."""
    from tempodb.server.limits import Limits

    def whole(value: float, unit: int, option: str) -> int:
        if not (math.isfinite(value) and value > 0 and value * unit >= 1):
            raise ValueError(f"{option} must be more than 0, not {value:g}")
        return int(value * unit)

    for option in ("header_timeout", "body_timeout", "idle_timeout"):
        value = getattr(args, option)
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"--{option.replace('_', '-')} must be more than 0, not {value:g}")
    if not (math.isfinite(args.max_gzip_ratio) and args.max_gzip_ratio >= 1):
        raise ValueError(f"--max-gzip-ratio must be 1 or more, not {args.max_gzip_ratio:g}")
    if args.queue < 1:
        raise ValueError(f"--queue must be 1 or more, not {args.queue}")
    if args.max_connections < 1:
        raise ValueError(f"--max-connections must be 1 or more, not {args.max_connections}")
    return Limits(
        max_body=whole(args.max_body_mb, 1024 * 1024, "--max-body-mb"),
        max_pending=args.queue,
        max_connections=args.max_connections,
        max_header_bytes=whole(args.max_header_kb, 1024, "--max-header-kb"),
        header_timeout=args.header_timeout,
        body_timeout=args.body_timeout,
        idle_timeout=args.idle_timeout,
        max_gzip_ratio=args.max_gzip_ratio,
    )


def check_options(args: argparse.Namespace) -> str | None:
    """What is wrong with the options that need no store or socket, or None."""
    if bool(args.tls_cert) != bool(args.tls_key):
        return "--tls-cert and --tls-key go together"
    if not 0 <= args.port <= 65535:
        return f"--port must be between 0 and 65535, not {args.port}"
    if not (math.isfinite(args.read_cache_mb) and args.read_cache_mb >= 0):
        return "--read-cache-mb must be 0 or more"
    if args.page_cache_mb is not None and not 0 < args.page_cache_mb < 1e6:
        return "--page-cache-mb must be more than 0"
    if not (math.isfinite(args.retention_every) and 0 < args.retention_every <= 3600):
        return "--retention-every must be more than 0 and at most 3600 seconds"
    if args.rate_limit is not None and not (math.isfinite(args.rate_limit) and args.rate_limit > 0):
        return "--rate-limit must be positive"
    if not (math.isfinite(args.auth_cache) and args.auth_cache >= 0):
        return "--auth-cache must be 0 or more seconds"
    if args.max_series_per_request < 1:
        return "--max-series-per-request must be at least 1"
    if not (math.isfinite(args.idempotency_hours) and args.idempotency_hours > 0):
        return "--idempotency-hours must be positive"
    return None


#: File descriptors kept for the store, logs and the like, beside one per connection.
SPARE_FILES = 128


def fit_open_files(connections: int) -> int:
    """Raise the soft limit on open files to what ``connections`` need (up to the hard
    limit); the number of connections that fit (``connections`` when they all do)."""
    if sys.platform == "win32":
        return connections
    from tempodb.server.limits import HEALTH_RESERVE

    needed = connections + HEALTH_RESERVE + SPARE_FILES
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return connections
    return max(1, soft - HEALTH_RESERVE - SPARE_FILES)


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (127.0.0.0/8, ::1, localhost)."""
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def fail(message: str, status: int = 2) -> int:
    print(f"tempodb: {message}", file=sys.stderr)
    return status


def run(args: argparse.Namespace) -> int:
    import dataclasses

    import uvicorn

    from tempodb.server.app import TempoDBApp
    from tempodb.server.connection import protocol_class
    from tempodb.server.context import Options
    from tempodb.storage.base import StorageError

    problem = check_options(args)
    if problem is not None:
        return fail(problem)
    try:
        limits = limits_of(args)
    except ValueError as exc:
        return fail(str(exc))
    fitting = fit_open_files(limits.max_connections)
    if fitting < limits.max_connections:
        print(
            f"tempodb: the open-file limit allows {fitting} connections, not "
            f"{limits.max_connections} (raise it with ulimit -n)",
            file=sys.stderr,
        )
        limits = dataclasses.replace(limits, max_connections=fitting)
    tls = None
    if args.tls_cert:
        try:
            tls = tls_context(args.tls_cert, args.tls_key)
        except (OSError, ssl.SSLError) as exc:
            if isinstance(exc, ssl.SSLError):
                reason = f"not a PEM certificate and its private key ({exc.reason or exc})"
            else:
                reason = _reason(exc)
            return fail(f"cannot use --tls-cert {args.tls_cert} --tls-key {args.tls_key}: {reason}")

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
            if tls is not None:
                self.ssl = tls

    tune_allocator()
    try:
        store = open_store(args, lock=True)
    except (StorageError, OSError) as exc:
        return fail(f"cannot open the store ({describe_store(args)}): {_reason(exc)}")
    try:
        sock = listen(args.host, args.port)
    except OSError as exc:
        store.close()
        return fail(f"cannot listen on {args.host} port {args.port}: {_reason(exc)}", 1)
    app = TempoDBApp(
        store,
        options=Options(
            auto_tag=args.auto_tag,
            max_series_per_request=args.max_series_per_request,
            idempotency_ttl_ms=max(1, round(args.idempotency_hours * 3_600_000)),
            allowed_origins=frozenset(o.strip().rstrip("/") for o in args.allow_origin),
        ),
        limits=limits,
        rate_limit=args.rate_limit,
        auth_ttl=args.auth_cache,
        retention_every=args.retention_every,
    )
    port = sock.getsockname()[1]
    try:
        import uvloop  # noqa: F401

        loop = "uvloop"
    except ImportError:
        loop = "asyncio"
    config = HardenedConfig(
        app,
        loop=loop,
        http=protocol_class(limits),
        lifespan="on",
        access_log=args.access_log,
        log_level="info",
        server_header=False,
        ssl_certfile=args.tls_cert,
        ssl_keyfile=args.tls_key,
        timeout_graceful_shutdown=10,
    )
    scheme = "https" if args.tls_cert else "http"
    if scheme == "http" and not is_loopback(args.host):
        print(
            f"tempodb: warning: serving {args.host} without TLS: keys and secrets cross the "
            "network in clear; put a reverse proxy with TLS in front (README, Security) or "
            "give --tls-cert and --tls-key",
            file=sys.stderr,
            flush=True,
        )
    where = f"{scheme}://{url_host(args.host)}:{port}/v1/"
    print(f"tempodb: serving {where} ({describe_store(args)})", flush=True)
    GracefulServer(config).run(sockets=[sock])
    return 0


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (OSError when it cannot be)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _reason(exc: BaseException) -> str:
    """An exception as a short sentence (the OS's words for an OSError)."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)
