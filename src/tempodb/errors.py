"""The exceptions the client raises, shaped by what the caller can do about them.

::

    TempoDBApiException            every API failure: .status (HTTP status or None), .message
     +-- TempoDBConnectionError    the server could not be reached or the connection broke: retry
     +-- AuthenticationError       401/403 for the credentials: fix the key or secret
     +-- NotFoundError             the series, or the route, does not exist
     +-- InvalidRequestError       400/409/413/...: fix the request
     |    +-- ConflictError        409: a series with that key already exists
     +-- ServerError               5xx: the server failed; retry later
"""

from __future__ import annotations

#: Response header with a machine-readable error code; the body stays plain text for old clients.
ERROR_CODE_HEADER = "X-TempoDB-Error"
SERIES_NOT_FOUND = "series-not-found"


class TempoDBApiException(Exception):
    """An API call failed. ``status`` is the HTTP status (None without a response)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(f"{status}: {message}" if status is not None else message)
        self.status = status
        self.message = message


class TempoDBConnectionError(TempoDBApiException):
    """The request did not complete: the server is unreachable or the connection broke."""


class AuthenticationError(TempoDBApiException):
    """The API key or secret is missing or wrong."""


class NotFoundError(TempoDBApiException):
    """The series (or the route) does not exist."""


class InvalidRequestError(TempoDBApiException):
    """The server rejected the request as invalid; nothing was written."""


class ConflictError(InvalidRequestError):
    """A series with this key already exists."""


class ServerError(TempoDBApiException):
    """The server failed to handle a valid request."""


def error_for_response(status: int, message: str, code: str | None) -> TempoDBApiException:
    """The exception for an error response.

    v1 answers 403 both for bad credentials and for an unknown series; our server tells them
    apart with the ``X-TempoDB-Error`` header, other servers by the body alone.
    """
    if status == 403 and code == SERIES_NOT_FOUND:
        return NotFoundError(message or "Series not found", status)
    if status in (401, 403):
        return AuthenticationError(message or "Invalid credentials", status)
    if status == 404:
        return NotFoundError(message or "Not found", status)
    if status == 409:
        return ConflictError(message, status)
    if status >= 500:
        return ServerError(message, status)
    if status >= 400:
        return InvalidRequestError(message, status)
    return TempoDBApiException(message, status)
