"""The exceptions the client raises, shaped by what the caller can do about them.

::

    TempoDBApiException            every API failure: .status (HTTP status or None), .message
     +-- TempoDBConnectionError    the server could not be reached or the connection broke: retry
     +-- AuthenticationError       401/403 for the credentials: fix the key or secret
     +-- NotFoundError             the series, or the route, does not exist
     +-- InvalidRequestError       400/409/413/...: fix the request
     |    +-- ConflictError        409: a series with that key already exists
     +-- TooManyRequestsError      429: the server limits the request rate; retry later
     +-- ServerError               5xx: the server failed (503: it is overloaded); retry later
     +-- BatchWriteError           a batch writer could not write some points: .points has them

The client itself retries 429, 503 and connection failures (see :class:`tempodb.RetryPolicy`);
these exceptions reach the caller when the retries are used up or not allowed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: The header with a machine-readable error code (the body stays plain text for old
#: clients), and the code that tells an unknown series from bad credentials (both 403).
from tempodb.contract import ERROR_CODE_HEADER as ERROR_CODE_HEADER
from tempodb.contract import SERIES_NOT_FOUND as SERIES_NOT_FOUND


class TempoDBApiException(Exception):
    """An API call failed. ``status`` is the HTTP status (None without a response).

    ``retry_after`` is the delay in seconds the server asked for (``Retry-After``), if any.
    """

    def __init__(
        self, message: str, status: int | None = None, *, retry_after: float | None = None
    ) -> None:
        super().__init__(f"{status}: {message}" if status is not None else message)
        self.status = status
        self.message = message
        self.retry_after = retry_after


class TempoDBConnectionError(TempoDBApiException):
    """The request did not complete: the server is unreachable or the connection broke.

    ``sent`` is False when the request certainly never reached the server (the connection
    could not be made), True when it may have been applied (the connection broke or timed out
    after the request went out): an increment must then not be repeated blindly.
    """

    def __init__(self, message: str, *, sent: bool = True) -> None:
        super().__init__(message)
        self.sent = sent


class AuthenticationError(TempoDBApiException):
    """The API key or secret is missing or wrong."""


class NotFoundError(TempoDBApiException):
    """The series (or the route) does not exist."""


class InvalidRequestError(TempoDBApiException):
    """The server rejected the request as invalid; nothing was written."""


class ConflictError(InvalidRequestError):
    """A series with this key already exists."""


class TooManyRequestsError(TempoDBApiException):
    """429: the server limits the request rate; ``retry_after`` says when to come back."""


class ServerError(TempoDBApiException):
    """The server failed to handle a valid request (503: it is overloaded; retry later)."""


class BatchWriteError(TempoDBApiException):
    """A batch writer could not write every point; none of them is lost silently.

    Attributes:
        points: every point that was not written, in the order added, as
            ``{'t': ..., 'key' or 'id': ..., 'v': ...}`` dicts that ``write_multi`` (or
            ``increment_multi``) accepts as they are.
        rejected: the subset the server refused, each with the server's messages; sending
            them again will not help.
        uncertain: increments whose request broke after it was sent, so they may or may not
            have been applied; they are not in ``points`` (repeating them could count twice).
        error: the failure that stopped the writer (also the ``__cause__``), or None when the
            server only rejected some points.

    Example::

        try:
            with client.batch_writer() as writer:
                writer.add("sensor-1", datetime.datetime(2012, 1, 1), 1.5)
        except BatchWriteError as exc:
            save_for_later(exc.points)
    """

    def __init__(
        self,
        message: str,
        *,
        points: Sequence[dict[str, Any]],
        rejected: Sequence[tuple[dict[str, Any], list[str]]] = (),
        uncertain: Sequence[dict[str, Any]] = (),
        error: Exception | None = None,
    ) -> None:
        status = error.status if isinstance(error, TempoDBApiException) else None
        super().__init__(message, status)
        self.points = list(points)
        self.rejected = list(rejected)
        self.uncertain = list(uncertain)
        self.error = error


def error_for_response(
    status: int, message: str, code: str | None, *, retry_after: float | None = None
) -> TempoDBApiException:
    """The exception for an error response.

    v1 answers 403 both for bad credentials and for an unknown series; our server tells them
    apart with the ``X-TempoDB-Error`` header, other servers by the body alone.
    """
    error: TempoDBApiException
    if status == 403 and code == SERIES_NOT_FOUND:
        error = NotFoundError(message or "Series not found", status)
    elif status in (401, 403):
        error = AuthenticationError(message or "Invalid credentials", status)
    elif status == 404:
        error = NotFoundError(message or "Not found", status)
    elif status == 409:
        error = ConflictError(message, status)
    elif status == 429:
        error = TooManyRequestsError(message or "Too many requests", status)
    elif status >= 500:
        error = ServerError(message, status)
    elif status >= 400:
        error = InvalidRequestError(message, status)
    else:
        error = TempoDBApiException(message, status)
    error.retry_after = retry_after
    return error
