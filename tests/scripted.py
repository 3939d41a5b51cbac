"""A tiny HTTP server on a real socket that answers as a test scripts it, and counts.

Only for what the real server cannot be made to do: answers it never gives (a 500 or 502 on
demand, ``Retry-After`` values other than its own), an answer delayed past the client's
timeout, a request count per attempt, and a server slow at a chosen pace (the batch writer's
backpressure).  Whatever ``tempodb serve`` can produce (503 with ``--queue``, 429 with
``--rate-limit``, a connection dropped by SIGKILL) is tested against it instead
(tests/integration/test_retry_server.py, tests/integration/test_batch_writer.py)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Answer:
    """One scripted answer: a status with headers and body, or ``drop`` (read the request,
    then close the connection without a word), after ``delay`` seconds."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False
    delay: float = 0.0


@dataclass
class Script:
    answers: list[Answer] = field(default_factory=list)
    #: (method, path, body) of every request received, in order.
    requests: list[tuple[str, str, bytes]] = field(default_factory=list)
    #: The Idempotency-Key header of each of those requests (None when absent).
    keys: list[str | None] = field(default_factory=list)
    #: The default answer once the script is used up.
    otherwise: Answer = field(default_factory=Answer)
    #: Points in the JSON array bodies received so far (for the batch writer tests).
    points: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    script: Script

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        script = self.server.script  # type: ignore[attr-defined]
        with script.lock:
            script.requests.append((self.command, self.path, body))
            script.keys.append(self.headers.get("Idempotency-Key"))
            answer = script.answers.pop(0) if script.answers else script.otherwise
        if answer.delay:
            time.sleep(answer.delay)
        if body.startswith(b"["):
            with script.lock:
                script.points += len(json.loads(body))
        if answer.drop:
            self.close_connection = True
            return
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        self.wfile.write(answer.body)

    do_GET = do_POST = do_PUT = do_DELETE = _handle

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def scripted(*answers: Answer, port: int = 0, otherwise: Answer | None = None) -> Iterator[Any]:
    """A running scripted server; yields it (``.script``, ``.server_address``)."""
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.script = Script(list(answers), otherwise=otherwise or Answer())  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
