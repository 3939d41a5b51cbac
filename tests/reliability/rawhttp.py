"""Raw HTTP for the reliability tests: exact requests, exact answers, no client library."""

from __future__ import annotations

import base64
import http.client
import json
import ssl
from dataclasses import dataclass, field
from typing import Any


def basic(key: str, secret: str) -> str:
    """The ``Authorization`` header value for a key and secret."""
    return "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode()


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Raw:
    """Requests to one server, with one database's credentials (or none)."""

    host: str
    port: int
    credentials: tuple[str, str] | None = None
    context: ssl.SSLContext | None = None
    timeout: float = 30.0
    headers: dict[str, str] = field(default_factory=dict)

    def connection(self) -> http.client.HTTPConnection:
        if self.context is not None:
            return http.client.HTTPSConnection(
                self.host, self.port, timeout=self.timeout, context=self.context
            )
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | str | Any = None,
        headers: dict[str, str] | None = None,
        conn: http.client.HTTPConnection | None = None,
    ) -> Reply:
        """One request; ``body`` is sent as is when bytes or str, else as JSON."""
        if body is not None and not isinstance(body, bytes | str):
            body = json.dumps(body)
        sent = dict(self.headers)
        if self.credentials is not None:
            sent["Authorization"] = basic(*self.credentials)
        sent.update(headers or {})
        own = conn is None
        connection = conn or self.connection()
        try:
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            data = response.read()
            return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, data)
        finally:
            if own:
                connection.close()

    def as_(self, credentials: tuple[str, str] | None) -> Raw:
        """The same server with other credentials."""
        return Raw(self.host, self.port, credentials, self.context, self.timeout, self.headers)
