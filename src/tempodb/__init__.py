"""TempoDB: a Python 3 client for the TempoDB v1 time-series API.

>>> from tempodb import Client, DataPoint

Every public name is imported on first use (``_LAZY``), so that ``import tempodb`` loads only
``tempodb.contract``: the server and the storage layer, which are modules of this package too,
never load the client (and its HTTP library) by being imported.  ``AsyncClient`` needs httpx
(``tempodb-revived[async]``).  ``tempodb.connect(path)`` gives a Client that runs in this
process on a data folder, without a server (it needs ``tempodb-revived[embedded]``).
"""

import typing as _typing

from tempodb.contract import __version__

if _typing.TYPE_CHECKING:
    from tempodb.async_client import AsyncClient
    from tempodb.batch import AsyncBatchWriter, BatchWriter
    from tempodb.client import Client
    from tempodb.errors import (
        AuthenticationError,
        BatchWriteError,
        ConflictError,
        InvalidRequestError,
        NotFoundError,
        ServerError,
        TempoDBApiException,
        TempoDBConnectionError,
        TooManyRequestsError,
    )
    from tempodb.inprocess import connect, connect_async
    from tempodb.objects import (
        CreatedSeries,
        DataPoint,
        DataSet,
        DeleteSummary,
        Found,
        MultiPoint,
        RefusedSeries,
        Series,
        SingleValueSet,
        Summary,
    )
    from tempodb.retry import RetryPolicy

__all__ = [
    "AsyncBatchWriter",
    "AsyncClient",
    "AuthenticationError",
    "BatchWriteError",
    "BatchWriter",
    "Client",
    "ConflictError",
    "CreatedSeries",
    "DataPoint",
    "DataSet",
    "DeleteSummary",
    "Found",
    "InvalidRequestError",
    "MultiPoint",
    "NotFoundError",
    "RefusedSeries",
    "RetryPolicy",
    "Series",
    "ServerError",
    "SingleValueSet",
    "Summary",
    "TempoDBApiException",
    "TempoDBConnectionError",
    "TooManyRequestsError",
    "__version__",
    "connect",
    "connect_async",
]

#: Every public name, by the module it is imported from on first use.
_LAZY = {
    **dict.fromkeys(["AsyncBatchWriter", "BatchWriter"], "tempodb.batch"),
    "AsyncClient": "tempodb.async_client",
    "Client": "tempodb.client",
    **dict.fromkeys(
        [
            "AuthenticationError",
            "BatchWriteError",
            "ConflictError",
            "InvalidRequestError",
            "NotFoundError",
            "ServerError",
            "TempoDBApiException",
            "TempoDBConnectionError",
            "TooManyRequestsError",
        ],
        "tempodb.errors",
    ),
    **dict.fromkeys(["connect", "connect_async"], "tempodb.inprocess"),
    **dict.fromkeys(
        [
            "CreatedSeries",
            "DataPoint",
            "DataSet",
            "DeleteSummary",
            "Found",
            "MultiPoint",
            "RefusedSeries",
            "Series",
            "SingleValueSet",
            "Summary",
        ],
        "tempodb.objects",
    ),
    "RetryPolicy": "tempodb.retry",
}


def __getattr__(name: str) -> _typing.Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tempodb' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
