"""In-process TempoDB: ``tempodb.connect(path)``, the same Client API without a server.

Example::

    import tempodb
    from datetime import datetime

    with tempodb.connect("data") as client:      # or tempodb.Client(key, secret, host=...)
        client.write_key("boiler.1", [(datetime(2012, 1, 1), 12.5)])
        data = client.read_key("boiler.1", datetime(2012, 1, 1), datetime(2012, 1, 2))

How: every call is built by :mod:`tempodb.protocol` as for HTTP, and this transport hands the
request to the server's own application (``TempoDBApp.handle``: the route table, the handlers,
the error mapping and the encoding of every answer) in the calling thread, with no socket in
between.  So an answer is the server's answer by construction, byte for byte, errors, 207
multistatus and ``X-TempoDB-Error`` codes included.  What the transport leaves out is what
protects a server from its network clients: credentials (the connection has one database;
see below), admission and rate limits, body size limits and timeouts.

Only the JSON steps are skipped where they cost most, never the handling: ``write_dataframe``
hands each request's points over as arrays (``Request.columns``), which the write handlers take
in place of what their JSON parse gives (``server.wire.columns_points``/``columns_multi``;
anything but the plain shape is encoded and parsed as JSON), before the same validation,
retention, series limits and 207 answers; ``read_dataframe`` asks ``GET /data/`` for its answer
with the points as the arrays the server would render (``Request.parse_columns``).  Query
parameters reach the server parsed, as ``Query.parse`` would give them.

The data folder is the one ``tempodb serve --data DIR`` serves, unchanged: stop the one to open
it with the other.  One process writes to a folder at a time (``storage.sqlite.lock``): a
second writer is refused at once with :class:`~tempodb.storage.sqlite.lock.FolderLocked`,
naming the folder and the holder's process id; ``read_only=True`` reads beside a writer (a
server included) and refuses every change with 403 (:class:`~tempodb.AuthenticationError`).

The database: a folder holds one database per API key.  Without ``key``, ``connect`` uses the
folder's only database, or the one named ``default`` among several, and creates one named
``default`` in a folder that has none; ``key=`` picks another (``tempodb keys list --data
DIR`` lists them).

``":memory:"`` is a private temporary folder (in ``/dev/shm`` where there is one), removed on
``close()``: for tests.

The server is imported by :func:`connect` only, so ``import tempodb`` still needs no server.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from tempodb.client import Client
from tempodb.contract import __version__
from tempodb.protocol import API_VERSION, Params, Request, Response, TransportFailure
from tempodb.retry import RetryPolicy

if TYPE_CHECKING:
    from tempodb.async_client import AsyncClient
    from tempodb.server.app import TempoDBApp
    from tempodb.server.http import Query
    from tempodb.storage.base import Database, Store

__all__ = ["MEMORY", "Engine", "InProcessClient", "connect", "connect_async"]

#: The path that means a private temporary store, removed on close.
MEMORY: Final = ":memory:"
#: The name of the database ``connect`` creates in a folder that has none.
DEFAULT_DATABASE: Final = "default"
#: Methods a read-only connection sends; it refuses the others without asking the store.
READ_METHODS: Final = frozenset({"GET", "HEAD"})
READ_ONLY_CODE: Final = "read-only"


class Engine:
    """The server's application over the embedded store of one folder, in this process, and
    the database a connection works on.  Thread-safe, as the server is."""

    def __init__(
        self, path: str | os.PathLike[str], *, read_only: bool = False, key: str | None = None
    ) -> None:
        from tempodb.server.app import TempoDBApp
        from tempodb.server.http import Query
        from tempodb.storage.sqlite import SQLiteStore

        self.read_only = read_only
        self._temporary: Path | None = None
        self._closed = False
        self._close_lock = threading.Lock()
        if os.fspath(path) == MEMORY:
            if read_only:
                raise ValueError(f"a {MEMORY} store starts empty: it cannot be read-only")
            self._temporary = Path(tempfile.mkdtemp(prefix="tempodb-memory-", dir=_memory_dir()))
            folder = self._temporary
        else:
            folder = Path(path)
        self.folder = folder
        try:
            store = SQLiteStore(folder, lock=not read_only, read_only=read_only)
        except BaseException:
            self._remove_temporary()
            raise
        self.app: TempoDBApp = TempoDBApp(store)
        self._query = Query
        try:
            self.database = select_database(store, key, read_only, str(path))
        except BaseException:
            self.close()
            raise
        self.headers = {
            "user-agent": f"tempodb-python/{__version__} (in-process)",
            "content-type": "application/json",
        }
        self.refusal = (
            f"Forbidden: this connection to {path} is read-only "
            "(tempodb.connect(..., read_only=True)); nothing was written\n"
        ).encode()

    @property
    def closed(self) -> bool:
        return self._closed

    def handle(self, request: Request[Any]) -> Response | TransportFailure:
        """Run ``request`` through the server's application; its answer as HTTP gives it."""
        if self._closed:
            message = f"{request.method} {request.path} failed: the connection is closed"
            return TransportFailure(message, sent=False, retry=False)
        if self.read_only and request.method not in READ_METHODS:
            return Response(403, self.refusal, None, READ_ONLY_CODE)
        query = self.parsed_query(request.params)
        query_string = b"" if query is not None else request.target.partition("?")[2].encode()
        encoded = self.app.handle(
            request.method,
            f"/{API_VERSION}{request.path}".encode(),
            query_string,
            self.headers,
            request.body or b"",
            self.database,
            columns=request.columns if request.body is None else None,
            arrays=request.parse_columns is not None,
            query=query,
        )
        if encoded.columns is not None:
            return Response(encoded.status, b"", columns=encoded.columns)
        body = encoded.body
        if encoded.stream is not None:
            body = b"".join([body, *encoded.stream])
        retry_after = error_code = link = None
        for name, value in encoded.headers:
            if name == b"link":
                link = value.decode("latin-1")
            elif name == b"retry-after":
                retry_after = value.decode("latin-1")
            elif name == b"x-tempodb-error":
                error_code = value.decode("latin-1")
        return Response(encoded.status, body, retry_after, error_code, link)

    def parsed_query(self, params: Params) -> Query | None:
        """What the server reads of ``params`` sent as a query string (``Query.parse`` of
        their ``urlencode``: the same pairs but those with empty values) without the round
        trip; None when a pair is not plain ASCII text (the query string then decides)."""
        for name, value in params:
            if not (
                type(name) is str and type(value) is str and name.isascii() and value.isascii()
            ):
                return None
        return self._query([(name, value) for name, value in params if value != ""])

    def close(self) -> None:
        """Finish the queued writes, close the store (releasing the folder) and remove a
        ``:memory:`` folder; idempotent."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        self.app.close()
        self._remove_temporary()

    def _remove_temporary(self) -> None:
        if self._temporary is not None:
            shutil.rmtree(self._temporary, ignore_errors=True)


def select_database(store: Store, key: str | None, read_only: bool, where: str) -> Database:
    """The database ``key`` names; without one, the folder's only database (or the one named
    ``default``), created when the folder has none.  ValueError when there is no such choice."""
    databases = store.list_databases()
    if key is not None:
        found = next((db for db in databases if db.key == key), None)
        if found is None:
            raise ValueError(
                f"no database with key {key!r} in {where} "
                f"(`tempodb keys list --data {where}` lists them)"
            )
        if found.revoked:
            raise ValueError(f"the key {key!r} of {where} is revoked")
        return found
    live = [db for db in databases if not db.revoked]
    if not live:
        if read_only:
            raise ValueError(f"no database in {where} yet: connect once for writing to create one")
        created = store.create_database(DEFAULT_DATABASE)
        return next(db for db in store.list_databases() if db.key == created.key)
    if len(live) == 1:
        return live[0]
    named = [db for db in live if db.name == DEFAULT_DATABASE]
    if len(named) == 1:
        return named[0]
    keys = ", ".join(db.key for db in live[:5]) + (", ..." if len(live) > 5 else "")
    raise ValueError(
        f"{where} holds {len(live)} databases ({keys}): pass key=... to choose one "
        f"(`tempodb keys list --data {where}` lists them)"
    )


def _memory_dir() -> str | None:
    """``/dev/shm`` (memory) when this system has a writable one, else the temporary folder."""
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK) else None


class EngineBound:
    """What an in-process client (sync or async) holds beside a client's attributes."""

    _engine: Engine
    _finalizer: weakref.finalize[[], None]
    path: str
    folder: Path
    read_only: bool


def attach(client: Any, engine: Engine, path: str, retries: int | RetryPolicy) -> None:
    """Give an in-process client (sync or async) the attributes a client has, from ``engine``;
    the engine closes when the client is dropped (a client never closed still lets the folder
    go)."""
    client._engine = engine
    client.path = path
    client.folder = engine.folder
    client.read_only = engine.read_only
    client.key = engine.database.key
    client.secret = ""
    client.host = ""
    client.port = 0
    client.secure = False
    client.base_url = f"/{API_VERSION}"
    client.retry_policy = RetryPolicy.of(retries)
    client._finalizer = weakref.finalize(client, engine.close)


class InProcessClient(EngineBound, Client):
    """A :class:`~tempodb.Client` whose requests run in this process (:func:`connect`).

    Attributes:
        path: the data folder as given (or ``":memory:"``).
        folder: the data folder used.
        read_only: whether every change is refused.
        key: the key of the database the client works on.
    """

    def __init__(self, engine: Engine, path: str, retries: int | RetryPolicy = 3) -> None:
        # Client.__init__ would resolve credentials and open a connection pool: neither exists.
        attach(self, engine, path, retries)

    def __repr__(self) -> str:
        mode = ", read_only=True" if self.read_only else ""
        return f"tempodb.connect({self.path!r}{mode})"

    def close(self) -> None:
        """Finish the queued writes and close the store, releasing the data folder."""
        self._finalizer()

    def __enter__(self) -> InProcessClient:
        return self

    #: Write bodies go to the server as arrays (``Request.columns``), not JSON.
    _columnar = True

    def _transmit(self, request: Request[Any]) -> Response | TransportFailure:
        return self._engine.handle(request)


def connect(
    path: str | os.PathLike[str],
    *,
    read_only: bool = False,
    key: str | None = None,
    retries: int | RetryPolicy = 3,
) -> Client:
    """A :class:`~tempodb.Client` that works on the data folder ``path`` in this process.

    Every method answers exactly as over HTTP from ``tempodb serve --data path`` (the same
    request handling runs); it needs ``pip install 'tempodb-revived[embedded]'`` (or ``[server]``),
    which loads no HTTP server.

    Args:
        path: the data folder (created if missing, unless read-only), or ``":memory:"`` for a
            private temporary store removed on ``close()``.
        read_only: read beside another process that writes to the folder (a server, or
            another ``connect``); every change is refused with
            :class:`~tempodb.AuthenticationError` (403).
        key: which of the folder's databases (API keys) to work on; without one, the only
            one, else the one named ``default``, created when the folder has none.
        retries: as for :class:`~tempodb.Client` (the store answers 503 when its write queue
            is full).

    Raises:
        FolderLocked: another process writes to the folder (the message names it and its pid).
        StorageError: the folder cannot hold a store, or (read-only) holds none.
        ValueError: ``key`` names no database of the folder, or there are several and no key.

    Example::

        with tempodb.connect("data") as client:
            client.write_key("k", [DataPoint(datetime(2012, 1, 1), 1.5)])
    """
    engine = Engine(path, read_only=read_only, key=key)
    return InProcessClient(engine, os.fspath(path), retries)


def connect_async(
    path: str | os.PathLike[str],
    *,
    read_only: bool = False,
    key: str | None = None,
    retries: int | RetryPolicy = 3,
) -> AsyncClient:
    """The :class:`~tempodb.AsyncClient` twin of :func:`connect`: each call runs on a worker
    thread of the server's application, so the event loop never waits for the store.
    ``async with`` or ``await client.aclose()`` closes it (``close()`` too, blocking)."""
    from tempodb.inprocess_async import AsyncInProcessClient

    engine = Engine(path, read_only=read_only, key=key)
    return AsyncInProcessClient(engine, os.fspath(path), retries)
