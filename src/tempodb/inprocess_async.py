"""The asyncio twin of :class:`tempodb.inprocess.InProcessClient` (``tempodb.connect_async``).

Apart from :mod:`tempodb.inprocess` because :class:`~tempodb.AsyncClient` needs httpx, which
``import tempodb`` must not load.
"""

from __future__ import annotations

import asyncio
from typing import Any

from tempodb.async_client import AsyncClient
from tempodb.inprocess import Engine, EngineBound, attach
from tempodb.protocol import Request, Response, TransportFailure
from tempodb.retry import RetryPolicy

__all__ = ["AsyncInProcessClient"]


class AsyncInProcessClient(EngineBound, AsyncClient):
    """An :class:`~tempodb.AsyncClient` whose requests run in this process, each on a worker
    thread of the server's application (:func:`tempodb.connect_async`).

    Attributes: ``path``, ``folder``, ``read_only`` and ``key``, as
    :class:`~tempodb.inprocess.InProcessClient`'s.
    """

    def __init__(self, engine: Engine, path: str, retries: int | RetryPolicy = 3) -> None:
        # AsyncClient.__init__ would resolve credentials and open an httpx pool: neither exists.
        attach(self, engine, path, retries)

    def __repr__(self) -> str:
        mode = ", read_only=True" if self.read_only else ""
        return f"tempodb.connect_async({self.path!r}{mode})"

    async def aclose(self) -> None:
        """Finish the queued writes and close the store, releasing the data folder."""
        await asyncio.get_running_loop().run_in_executor(None, self._finalizer)

    def close(self) -> None:
        """Like :meth:`aclose`, blocking."""
        self._finalizer()

    async def __aenter__(self) -> AsyncInProcessClient:
        return self

    #: Write bodies go to the server as arrays (``Request.columns``), not JSON.
    _columnar = True

    async def _send(self, request: Request[Any]) -> Response | TransportFailure:
        if self._engine.closed:  # its worker threads are gone: the engine answers at once
            return self._engine.handle(request)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._engine.app.executor, self._engine.handle, request)
