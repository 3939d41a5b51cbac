"""``tempodb series create`` with several keys or ``--from-file``: many series at a time.

::

    tempodb series create KEY KEY ... [--name N] [--tag T] [--attr NAME=VALUE]
    tempodb series create --from-file FILE [--format csv|jsonl] [--chunk-size 10000]

The file (``-`` for stdin) holds one series a line, in one of two formats (the default is
guessed from the first line, JSON lines when it starts with ``{``):

* JSON lines, a series object a line: ``{"key": "room.1", "name": "Room 1", "tags": ["room"],
  "attributes": {"floor": "1"}}``; every field is optional (no key: a generated one) and
  others, such as the ``id`` that ``tempodb series list --format json`` prints, are ignored;
* CSV ``key,tags,attributes`` with the tags and the attributes separated by ``;``:
  ``room.1,room;heated,floor=1;wing=east``.  A first line whose first cell is ``key`` is a
  header; the last two columns may be left out; an empty key gets a generated one.

``--name``, ``--tag`` and ``--attr`` apply to every series: tags are added to a line's own,
attributes are defaults a line's own override, and the name is used where a line has none.

The whole input is read and checked first, so that a malformed line stops the command before
anything is created; then the series go to the server ``--chunk-size`` at a time (one
``create_many_series`` request each).  The command prints one summary line, lists the refused
series on stderr and exits with status 1 when the server refused any (a key that exists, an
invalid series), 2 for bad input.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections.abc import Iterator
from typing import Any

from tempodb import protocol
from tempodb.client import Client

#: Series sent in one request by default (the server's default limit).
CHUNK_SIZE = 10_000
#: Refused series listed on stderr at most.
SHOWN = 10


def register(create: argparse.ArgumentParser) -> None:
    """The options of the bulk form, on the ``series create`` parser."""
    create.add_argument(
        "--from-file",
        metavar="FILE",
        help="create the series of FILE too: JSON lines or CSV key,tags,attributes (- for stdin)",
    )
    create.add_argument("--format", choices=("csv", "jsonl"), help="of FILE (default: guessed)")
    create.add_argument(
        "--chunk-size",
        type=int,
        default=CHUNK_SIZE,
        metavar="N",
        help=f"series per request (default {CHUNK_SIZE})",
    )


def is_bulk(args: argparse.Namespace) -> bool:
    """Whether the command asks for more than the one series of the single form."""
    return len(args.key) > 1 or args.from_file is not None


def run(client: Client, args: argparse.Namespace) -> int:
    """Create the series of the arguments and of the file; print the summary."""
    from tempodb.cli.data import UsageError, _attributes, _open_input, _sniff

    if args.chunk_size < 1:
        raise UsageError("--chunk-size must be at least 1")
    defaults = _attributes(args.attr)
    items: list[tuple[str, dict[str, Any]]] = [
        (f"argument {key!r}", _item({"key": key}, args.name, args.tag, defaults))
        for key in args.key
    ]
    if args.from_file is not None:
        stream, _ = _open_input(args.from_file)
        try:
            fmt, lines = _sniff(stream, args.format)
            for number, row in _rows(fmt, lines, UsageError):
                items.append((f"line {number}", _item(row, args.name, args.tag, defaults)))
        finally:
            if stream is not sys.stdin.buffer:
                stream.close()
    for where, item in items:  # keys the client would refuse to send
        key = item.get("key")
        try:
            protocol.check_key(key if isinstance(key, str) and key else None)
        except ValueError as exc:
            raise UsageError(f"{where}: {exc}") from None
    created = 0
    refused: list[tuple[str, int, str]] = []
    for start in range(0, len(items), args.chunk_size):
        chunk = items[start : start + args.chunk_size]
        try:
            result = client.create_many_series([item for _, item in chunk])
        except Exception:
            if created or refused:
                print(f"tempodb: created {created} series before this error", file=sys.stderr)
            raise
        created += len(result)
        for error in result.errors:
            refused.append((chunk[error.index][0], error.status, "; ".join(error.messages)))
    print(_summary(created, refused))
    for where, status, message in refused[:SHOWN]:
        print(f"  {where}: {status} {message}", file=sys.stderr)
    if len(refused) > SHOWN:
        print(f"  ... and {len(refused) - SHOWN} more", file=sys.stderr)
    return 1 if refused else 0


def _summary(created: int, refused: list[tuple[str, int, str]]) -> str:
    if not refused:
        return f"created {created} series"
    exist = sum(1 for _, status, _ in refused if status == 409)
    reasons = [f"{exist} exist already"] if exist else []
    if len(refused) > exist:
        reasons.append(f"{len(refused) - exist} invalid")
    return f"created {created} series, refused {len(refused)} ({', '.join(reasons)})"


def _item(
    row: dict[str, Any], name: str | None, tags: list[str], attributes: dict[str, str]
) -> dict[str, Any]:
    """A line's series with the command line's name, tags and attributes applied."""
    item = dict(row)
    if name is not None and "name" not in item:
        item["name"] = name
    if tags:
        own = item.get("tags") or []
        item["tags"] = [*own, *(t for t in tags if t not in own)] if isinstance(own, list) else own
    if attributes:
        own_attributes = item.get("attributes") or {}
        if isinstance(own_attributes, dict):
            item["attributes"] = {**attributes, **own_attributes}
    return item


def _rows(
    fmt: str, lines: Iterator[tuple[int, bytes]], fail: type[Exception]
) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, series object)`` for each line; ``fail`` names a malformed one."""
    for number, raw in lines:
        text = raw.decode("utf-8", "replace")
        try:
            if fmt == "jsonl":
                record = json.loads(text)
                if not isinstance(record, dict):
                    raise ValueError("expected a JSON object")
                row = {k: record[k] for k in ("key", "name", "tags", "attributes") if k in record}
            else:
                fields = next(csv.reader(io.StringIO(text)))
                if number == 1 and fields and fields[0].strip() == "key":
                    continue  # the header
                row = _csv_row(fields)
        except (ValueError, StopIteration) as exc:
            raise fail(f"line {number}: {exc}: {text.strip()[:80]}") from None
        yield number, row


def _csv_row(fields: list[str]) -> dict[str, Any]:
    if not fields or len(fields) > 3:
        raise ValueError("expected key,tags,attributes")
    row: dict[str, Any] = {}
    if fields[0]:
        row["key"] = fields[0]
    if len(fields) > 1 and fields[1].strip():
        row["tags"] = [tag.strip() for tag in fields[1].split(";") if tag.strip()]
    if len(fields) > 2 and fields[2].strip():
        attributes = {}
        for pair in fields[2].split(";"):
            name, sep, value = pair.partition("=")
            if not pair.strip():
                continue
            if not sep or not name.strip():
                raise ValueError(f"expected NAME=VALUE attributes, not {pair!r}")
            attributes[name.strip()] = value.strip()
        row["attributes"] = attributes
    return row
