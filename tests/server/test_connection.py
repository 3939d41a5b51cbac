"""``connection.HeldHead``: a response's head goes out with the first piece of its body."""

from __future__ import annotations

from typing import Any

from tempodb.server.connection import HeldHead


class Recorded:
    """A transport that records what is written to it."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> Any:
        return ("127.0.0.1", 1) if name == "peername" else None


HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"


def test_the_head_goes_with_the_first_piece_of_the_body() -> None:
    transport = Recorded()
    held = HeldHead(transport)  # type: ignore[arg-type]
    held.write(HEAD)
    assert transport.writes == []
    held.write(b"[]")
    assert transport.writes == [HEAD + b"[]"]
    held.write(b"more")  # later pieces go as they come
    assert transport.writes == [HEAD + b"[]", b"more"]
    assert held.get_extra_info("peername") == ("127.0.0.1", 1)


def test_an_interim_answer_goes_at_once_and_a_head_alone_when_flushed_or_closed() -> None:
    transport = Recorded()
    held = HeldHead(transport)  # type: ignore[arg-type]
    held.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # the client waits for it to send the body
    assert transport.writes == [b"HTTP/1.1 100 Continue\r\n\r\n"]
    held.write(HEAD)
    held.flush()  # a HEAD request, a 204: no body follows
    assert transport.writes[1:] == [HEAD]
    held.flush()
    assert len(transport.writes) == 2

    transport = Recorded()
    held = HeldHead(transport)  # type: ignore[arg-type]
    held.write(HEAD)
    held.close()  # a connection closed after the head: the head is not lost
    assert transport.writes == [HEAD]
    assert transport.closed
