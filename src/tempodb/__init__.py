"""TempoDB: a Python 3 client for the TempoDB v1 time-series API.

>>> from tempodb import Client, DataPoint
"""

from tempodb.client import Client, __version__
from tempodb.errors import (
    AuthenticationError,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    ServerError,
    TempoDBApiException,
    TempoDBConnectionError,
)
from tempodb.objects import DataPoint, DataSet, DeleteSummary, Series, SingleValueSet, Summary

__all__ = [
    "AuthenticationError",
    "Client",
    "ConflictError",
    "DataPoint",
    "DataSet",
    "DeleteSummary",
    "InvalidRequestError",
    "NotFoundError",
    "Series",
    "ServerError",
    "SingleValueSet",
    "Summary",
    "TempoDBApiException",
    "TempoDBConnectionError",
    "__version__",
]
