"""Requests, responses and HTTP errors, as plain objects the handlers work with."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import orjson

from tempodb.contract import ERROR_CODE_HEADER

JSON_TYPE = b"application/json; charset=utf-8"
TEXT_TYPE = b"text/plain; charset=utf-8"
#: Bodies up to this size get their trailing commas forgiven (the embedded C client's).
REPAIR_LIMIT = 256 * 1024


class HTTPError(Exception):
    """An error answered to the client: a status, a plain-text message and an error code
    (sent in ``X-TempoDB-Error`` so that clients need not parse the text)."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str = "invalid-request",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = dict(headers or {})


def bad_request(message: str) -> HTTPError:
    return HTTPError(400, message)


@dataclass
class Query:
    """Query parameters: repeated names kept in order; empty values count as absent."""

    pairs: list[tuple[str, str]]

    @staticmethod
    def parse(raw: bytes) -> Query:
        text = raw.decode("utf-8", "replace")
        return Query([(k, v) for k, v in parse_qsl(text, keep_blank_values=True) if v != ""])

    def get(self, name: str) -> str | None:
        """The last non-empty value of ``name``."""
        value = None
        for key, item in self.pairs:
            if key == name:
                value = item
        return value

    def require(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise bad_request(f"Missing required parameter: {name}")
        return value

    def get_all(self, name: str) -> list[str]:
        return [item for key, item in self.pairs if key == name]


@dataclass
class Request:
    """What a handler sees of a request: the path after ``/v1`` split into decoded
    segments, the query, the body and the authenticated database (set by the app)."""

    method: str
    segments: list[str]
    query: Query
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    #: The body as arrays (``wire.PointColumns``), handed over by a transport in the
    #: server's process instead of JSON; ``body`` is then empty until ``full_body()``.
    columns: Any = None
    #: Answer with arrays where the handler can (``Response.columns``): a transport in the
    #: server's process asked for them instead of JSON.
    arrays: bool = False

    def full_body(self) -> bytes:
        """The body as sent: a columnar request's (``columns``) encoded on first use."""
        if self.columns is not None and not self.body:
            self.body = self.columns.encode()
        return self.body

    def json(self) -> Any:
        """The body as JSON, whatever the Content-Type (some clients send text/plain).

        Integers come out exact whatever their length (``loads_exact``), so that the checks
        of values can refuse those beyond 2**53 instead of storing a rounded float."""
        body = self.full_body().strip()
        if not body:
            return None
        try:
            return loads_exact(body)
        except ValueError:  # orjson.JSONDecodeError is one
            pass
        # The embedded C client leaves a trailing comma inside arrays: `[{...},{...},]`.
        repaired = _drop_trailing_commas(body) if len(body) <= REPAIR_LIMIT else None
        if repaired is not None:
            try:
                return loads_exact(repaired)
            except ValueError:
                pass
        raise bad_request("Malformed JSON in request body")


#: A run of 20 digits: an integer literal there may be beyond 64 bits, which orjson reads as
#: a float (rounded: 123456789012345678901234567890 would become 1.2345678901234568e+29).
_LONG_DIGITS = re.compile(rb"[0-9]{20}")


def loads_exact(body: bytes) -> Any:
    """JSON with every integer exact: orjson, and when the body holds a run of 20 digits
    (rare: a long text, or an integer beyond 64 bits, which orjson rounds to a float or
    refuses past the float range) the standard library, whose integers are Python's.  Either
    way NaN, Infinity and lone surrogates are refused: ValueError for invalid JSON."""
    if _LONG_DIGITS.search(body) is None:
        return orjson.loads(body)
    parsed = json.loads(body, parse_constant=_not_json, parse_int=_integer)
    json.dumps(parsed, ensure_ascii=False).encode()  # a lone surrogate: UnicodeEncodeError
    return parsed


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class _HugeInteger(int):
    """An integer literal too long for ``int`` (Python converts at most 4,300 digits): a
    value past every limit, which prints as the literal."""

    text: str

    def __str__(self) -> str:
        return self.text


def _integer(text: str) -> int:
    if len(text) < 4000:
        return int(text)
    huge = _HugeInteger(-(2**64) if text.startswith("-") else 2**64)
    huge.text = text
    return huge


def _drop_trailing_commas(body: bytes) -> bytes | None:
    """``body`` without commas that directly precede ``]`` or ``}`` (outside strings)."""
    out = bytearray()
    in_string = escaped = changed = False
    pending_comma = -1
    for byte in body:
        if in_string:
            out.append(byte)
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
            continue
        if byte in b" \t\r\n":
            out.append(byte)
            continue
        if byte in b"]}" and pending_comma >= 0:
            del out[pending_comma]
            changed = True
        pending_comma = -1
        if byte == 0x2C:
            pending_comma = len(out)
        elif byte == 0x22:
            in_string = True
        out.append(byte)
    return bytes(out) if changed else None


@dataclass
class Response:
    """An answer.  ``stream``, when set, yields the body after ``body`` piece by piece (the
    app sends a big one with chunked transfer encoding, a small one whole)."""

    status: int = 200
    body: bytes = b""
    content_type: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    stream: Iterator[bytes] | None = None
    #: Instead of ``body``, for a request that asked for arrays (``Request.arrays``): the
    #: JSON answer as Python objects, with ``wire.PointArrays`` where the points would be.
    columns: Any = None


def json_response(payload: Any, status: int = 200) -> Response:
    return Response(status, orjson.dumps(payload), JSON_TYPE)


def data_response(payload: Any, arrays: bool) -> Response:
    """``json_response``, or with ``arrays`` the payload itself (``Response.columns``)."""
    return Response(200, b"", JSON_TYPE, columns=payload) if arrays else json_response(payload)


def empty_response() -> Response:
    return Response(200, b"")


def error_response(error: HTTPError) -> Response:
    headers = {ERROR_CODE_HEADER: error.code, **error.headers}
    return Response(error.status, error.message.encode() + b"\n", TEXT_TYPE, headers)


def accepts_gzip(header: str) -> bool:
    """Whether an ``Accept-Encoding`` header takes gzip (named, and not with ``q=0``)."""
    for part in header.split(","):
        name, _, params = part.strip().partition(";")
        if name.strip().lower() == "gzip":
            return params.replace(" ", "").lower() not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False
