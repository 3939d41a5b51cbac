"""TempoDB: a Python 3 client for the TempoDB v1 time-series API.

>>> from tempodb import Client, DataPoint

``AsyncClient`` is imported on first use, since it needs httpx (``tempodb-revived[async]``).
``tempodb.connect(path)`` gives a Client that runs in this process on a data folder, without a
server (it needs ``tempodb-revived[embedded]``).
"""

import typing as _typing

from tempodb.batch import AsyncBatchWriter, BatchWriter
from tempodb.client import Client, __version__
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

if _typing.TYPE_CHECKING:
    from tempodb.async_client import AsyncClient

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

#: Public names imported on first use, because they need an optional dependency.
_LAZY = {"AsyncClient": "tempodb.async_client"}


def __getattr__(name: str) -> _typing.Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tempodb' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
