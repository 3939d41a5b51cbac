"""The user commands: series metadata, writing, reading, import and export over the API.

::

    tempodb series list   [--key K] [--id I] [--tag T] [--attr NAME=VALUE] [--format table|json]
    tempodb series create [KEY ...] [--name N] [--tag T] [--attr NAME=VALUE] [--from-file F]
    tempodb series update (filters | --all) [--name N] [--add-tag T] [--remove-tag T]
                          [--set-attr NAME=VALUE] [--remove-attr NAME]
    tempodb series delete (filters | --all)
    tempodb write KEY [FILE] [--increment]        time,value CSV or {"t":..,"v":..} JSON lines
    tempodb import FILE [--increment]             key,time,value CSV or JSON lines (from export)
    tempodb export [filters] [--start T] [--end T] [--format csv|jsonl] [--output FILE]
    tempodb read KEY [--start T] [--end T] [--interval I] [--function F] [--tz Z]
                     [--format table|csv|json]

Every command connects with ``--host``, ``--port``, ``--secure``/``--insecure``, ``--secret`` and
the API key (``--key``, or ``--api-key`` where ``--key`` filters series), each falling back to
``TEMPODB_HOST``, ``TEMPODB_PORT``, ``TEMPODB_SECURE``, ``TEMPODB_KEY`` and ``TEMPODB_SECRET``
(``--secret-file`` reads the secret from a file, out of the process list); or works in-process
on a data folder with ``--data DIR`` (``tempodb.connect``; the API key, if given, picks one of
its databases).  The commands that only read open the folder read-only, so
they work beside a server that writes to it; the others are refused while one runs.

Writes and imports are all or nothing as far as the input goes: every line is checked before
the first point is sent (a bad line is named and nothing is written, so running the command
again after fixing it never counts a point twice), then the input is read again and streamed
through a batch writer (stdin is kept in a temporary file for that).  Exports read one series
at a time in windows of at most 100,000 points (counted before they are read): neither holds
the data set in memory.  CSV input may start with a UTF-8 byte order mark; a header line
(time column named ``time``, ``t``, ``timestamp`` or ``ts``) is skipped wherever it comes.
An export in JSON lines starts each series with its metadata (``{"series": {...}}``), which
import applies.
"""

from __future__ import annotations

import argparse
import codecs
import contextlib
import csv
import datetime
import io
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from tempodb import protocol
from tempodb.batch import WriteBuffer
from tempodb.cli import series_create
from tempodb.client import Client
from tempodb.errors import BatchWriteError, ConflictError, TempoDBApiException
from tempodb.objects import Series
from tempodb.timeutil import MAX_MS, MIN_MS, from_wire, ms_to_datetime, to_wire

#: Points an export reads at once at most (the windows adapt to the data's density).
WINDOW_POINTS = 100_000
FIRST = ms_to_datetime(MIN_MS)
LAST = ms_to_datetime(MAX_MS)


class UsageError(Exception):
    """Bad input on the command line or in a file: exit status 2."""


# -- parsers ---------------------------------------------------------------------------------


def register(commands: Any) -> None:
    series = commands.add_parser("series", help="list, create, update or delete series")
    series_commands = series.add_subparsers(dest="series_command", required=True)
    listing = series_commands.add_parser("list", help="list the series matching the filters")
    _filters(listing)
    listing.add_argument("--format", choices=("table", "json"), default="table")
    create = series_commands.add_parser("create", help="create a series, or many (bulk)")
    create.add_argument("key", nargs="*", help="their keys (default: one, generated)")
    create.add_argument("--name", help="a display name")
    create.add_argument("--tag", action="append", default=[], help="a tag (repeatable)")
    create.add_argument("--attr", action="append", default=[], metavar="NAME=VALUE")
    series_create.register(create)
    update = series_commands.add_parser("update", help="change the matching series")
    _filters(update, everything="update every series")
    update.add_argument("--name", help="set the display name")
    update.add_argument("--add-tag", action="append", default=[], metavar="TAG")
    update.add_argument("--remove-tag", action="append", default=[], metavar="TAG")
    update.add_argument("--set-attr", action="append", default=[], metavar="NAME=VALUE")
    update.add_argument("--remove-attr", action="append", default=[], metavar="NAME")
    delete = series_commands.add_parser("delete", help="delete the matching series and data")
    _filters(delete, everything="delete every series")
    for parser in (listing, update, delete):
        _connection(parser, key_option=False)
    _connection(create, key_option=False)
    series.set_defaults(run=run_series)

    write = commands.add_parser("write", help="write points to one series")
    write.add_argument("series_key", metavar="KEY", help="the series key")
    write.add_argument("file", nargs="?", default="-", help="CSV or JSON lines (default: stdin)")
    _write_options(write)
    write.set_defaults(run=run_write)

    imports = commands.add_parser("import", help="import points (and metadata) of many series")
    imports.add_argument("file", help="CSV key,time,value or JSON lines; - for stdin")
    _write_options(imports)
    imports.set_defaults(run=run_import)

    export = commands.add_parser("export", help="export the raw points of many series")
    _filters(export)
    export.add_argument("--start", type=_timestamp, help="from (default: the first point)")
    export.add_argument("--end", type=_timestamp, help="until, exclusive (default: the last)")
    export.add_argument("--format", choices=("csv", "jsonl"), default="csv")
    export.add_argument("--output", "-o", default="-", help="file (default: stdout)")
    _progress(export)
    _connection(export, key_option=False)
    export.set_defaults(run=run_export)

    read = commands.add_parser("read", help="read one series, raw or rolled up")
    read.add_argument("series_key", metavar="KEY", help="the series key")
    read.add_argument("--start", type=_timestamp, help="from (default: a day before --end)")
    read.add_argument("--end", type=_timestamp, help="until, exclusive (default: now)")
    read.add_argument("--interval", default="", help="rollup interval: raw, 1hour, 1day, ...")
    read.add_argument("--function", default="", help="rollup function: mean, sum, max, ...")
    read.add_argument("--tz", default="", help="time zone of the output (default UTC)")
    read.add_argument("--format", choices=("table", "csv", "json"), default="table")
    _connection(read)
    read.set_defaults(run=run_read)


def _connection(parser: argparse.ArgumentParser, key_option: bool = True) -> None:
    group = parser.add_argument_group("connection (default: the TEMPODB_* variables)")
    group.add_argument("--host", help="server host ($TEMPODB_HOST, else 127.0.0.1)")
    group.add_argument("--port", type=int, help="server port ($TEMPODB_PORT, else 4242)")
    secure = group.add_mutually_exclusive_group()
    secure.add_argument("--secure", dest="secure", action="store_true", default=None)
    secure.add_argument(
        "--insecure", dest="secure", action="store_false", help="plain http ($TEMPODB_SECURE)"
    )
    names = ["--api-key", "--key"] if key_option else ["--api-key"]
    group.add_argument(*names, dest="api_key", help="API key ($TEMPODB_KEY)")
    group.add_argument("--secret", help="API secret ($TEMPODB_SECRET)")
    group.add_argument(
        "--secret-file",
        metavar="FILE",
        help="read the API secret from this file's first line (kept out of the process list)",
    )
    group.add_argument(
        "--data",
        metavar="DIR",
        help="work in-process on this data folder instead of a server "
        "(needs tempodb-revived[embedded])",
    )


def _filters(parser: argparse.ArgumentParser, everything: str | None = None) -> None:
    group = parser.add_argument_group("filters (keys and ids: any of; tags and attrs: all of)")
    group.add_argument("--key", dest="keys", action="append", default=[], help="a series key")
    group.add_argument("--id", dest="ids", action="append", default=[], help="a series id")
    group.add_argument("--tag", dest="tags", action="append", default=[], help="a tag")
    group.add_argument("--attr", dest="attrs", action="append", default=[], metavar="NAME=VALUE")
    if everything:
        group.add_argument("--all", action="store_true", help=f"no filter: {everything}")


def _write_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=("csv", "jsonl"), help="default: from the content")
    parser.add_argument("--increment", action="store_true", help="add to the stored values")
    parser.add_argument(
        "--batch-size", type=_positive, default=5_000, help="points per request (at least 1)"
    )
    _progress(parser)
    _connection(parser)


def _progress(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show progress on stderr (default: when stderr is a terminal)",
    )


def _positive(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {number}")
    return number


def _timestamp(text: str) -> datetime.datetime:
    try:
        return from_wire(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a timestamp: {text!r}") from None


# -- running ---------------------------------------------------------------------------------

#: Where the commands look without --host or $TEMPODB_HOST: ``tempodb serve``'s defaults.
LOCAL_HOST, LOCAL_PORT = "127.0.0.1", 4242


def _first_line(path: str, option: str) -> str:
    """The first line of a file that holds a secret; UsageError when there is none."""
    try:
        lines = Path(path).read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {option}: {exc}") from None
    if not lines or not lines[0].strip():
        raise UsageError(f"{option}: {path} is empty")
    return lines[0].strip()


def _client(args: argparse.Namespace, *, read_only: bool = False) -> Client:
    """A client in-process on ``--data DIR``, else of the server the options and variables
    name, else of ``tempodb serve`` on this machine with its defaults (never of the defunct
    hosted service)."""
    if args.data is not None:
        return _connect(args.data, args.api_key, read_only)
    secret = args.secret
    if args.secret_file is not None:
        if secret is not None:
            raise UsageError("give --secret or --secret-file, not both")
        secret = _first_line(args.secret_file, "--secret-file")
    host, port, secure = args.host, args.port, args.secure
    if host is None and not os.environ.get(protocol.ENV_HOST):
        host = LOCAL_HOST
        port = port if port is not None else LOCAL_PORT
        secure = secure if secure is not None else False
    try:
        return Client(args.api_key, secret, host, port, secure)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _connect(folder: str, key: str | None, read_only: bool) -> Client:
    try:
        from tempodb.inprocess import connect
        from tempodb.storage.base import StorageError
    except ImportError as exc:
        message = f"--data needs the server ({exc}): pip install 'tempodb-revived[embedded]'"
        raise UsageError(message) from None
    try:
        return connect(folder, read_only=read_only, key=key)
    except (StorageError, OSError, ValueError) as exc:
        raise UsageError(f"cannot open {folder}: {exc}") from None


def _guarded(run: Any) -> Any:
    """Turn API errors and bad input into a message on stderr and an exit status."""

    def guarded(args: argparse.Namespace) -> int:
        try:
            result: int = run(args)
            return result
        except (UsageError, ValueError) as exc:  # ValueError: the client refused the input
            print(f"tempodb: {exc}", file=sys.stderr)
            return 2
        except BatchWriteError as exc:
            print(f"tempodb: {exc}", file=sys.stderr)
            for point in exc.points[:10]:
                print(f"  not written: {_json_line(point)}", file=sys.stderr)
            return 1
        except TempoDBApiException as exc:
            print(f"tempodb: {exc}", file=sys.stderr)
            return 1
        except BrokenPipeError:  # the reader went away (| head)
            with contextlib.suppress(OSError):
                sys.stdout = open(os.devnull, "w")  # noqa: SIM115
            return 1

    return guarded


def _attributes(pairs: Sequence[str]) -> dict[str, str]:
    result = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise UsageError(f"expected NAME=VALUE, not {pair!r}")
        result[name] = value
    return result


def _matching(client: Client, args: argparse.Namespace) -> list[Series]:
    return client.get_series(args.ids, args.keys, args.tags, _attributes(args.attrs))


def _has_filter(args: argparse.Namespace) -> bool:
    return bool(args.ids or args.keys or args.tags or args.attrs)


@_guarded
def run_series(args: argparse.Namespace) -> int:
    with _client(args, read_only=args.series_command == "list") as client:
        if args.series_command == "list":
            for series in _matching(client, args):
                if args.format == "json":
                    print(_json_line(series.to_json()))
                else:
                    print(_series_row(series))
        elif args.series_command == "create" and series_create.is_bulk(args):
            return series_create.run(client, args)
        elif args.series_command == "create":
            created = client.create_series(
                args.key[0] if args.key else None,
                name=args.name,
                tags=args.tag,
                attributes=_attributes(args.attr),
            )
            print(_json_line(created.to_json()))
        elif args.series_command == "update":
            if not _has_filter(args) and not args.all:
                raise UsageError("give a filter (--key, --id, --tag, --attr) or --all")
            set_attrs = _attributes(args.set_attr)
            for series in _matching(client, args):
                if args.name is not None:
                    series.name = args.name
                series.tags = [t for t in series.tags if t not in args.remove_tag]
                series.tags += [t for t in args.add_tag if t not in series.tags]
                for name in args.remove_attr:
                    series.attributes.pop(name, None)
                series.attributes.update(set_attrs)
                print(_json_line(client.update_series(series).to_json()))
        elif args.series_command == "delete":
            if not _has_filter(args) and not args.all:
                raise UsageError("give a filter (--key, --id, --tag, --attr) or --all")
            summary = client.delete_series(
                args.ids, args.keys, args.tags, _attributes(args.attrs), allow_truncation=args.all
            )
            print(f"deleted {summary.deleted} series")
    return 0


def _series_row(series: Series) -> str:
    attrs = " ".join(f"{k}={v}" for k, v in series.attributes.items())
    tags = ",".join(series.tags)
    return "\t".join((series.key, series.id, series.name, tags, attrs)).rstrip()


# -- writing and importing -------------------------------------------------------------------


class Progress:
    """A one-line progress bar on stderr, redrawn at most five times a second."""

    def __init__(self, enabled: bool | None, total: int | None, unit: str) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.total = total
        self.unit = unit
        self.count = 0
        self.done = 0
        self._started = time.monotonic()
        self._drawn = 0.0

    def update(self, count: int, done: int | None = None) -> None:
        self.count = count
        if done is not None:
            self.done = done
        now = time.monotonic()
        if self.enabled and now - self._drawn >= 0.2:
            self._drawn = now
            self._draw(now)

    def _draw(self, now: float, end: str = "") -> None:
        elapsed = now - self._started
        text = f"{self.count:,} {self.unit}  {elapsed:.1f}s"
        if self.total:
            share = min(1.0, self.done / self.total)
            bar = "#" * int(share * 30)
            text = f"[{bar:<30}] {share:4.0%}  {text}"
        sys.stderr.write(f"\r{text}{end}")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            if self.total:
                self.done = self.total
            self._draw(time.monotonic(), end="\n")


def _open_input(name: str) -> tuple[IO[bytes], int | None]:
    if name == "-":
        return sys.stdin.buffer, None
    try:
        return open(name, "rb"), os.path.getsize(name)
    except OSError as exc:
        raise UsageError(f"cannot read {name}: {exc.strerror}") from None


def _lines(stream: Iterable[bytes]) -> Iterator[tuple[int, bytes]]:
    for number, line in enumerate(stream, 1):
        if number == 1 and line.startswith(codecs.BOM_UTF8):  # as spreadsheets save UTF-8
            line = line[len(codecs.BOM_UTF8) :]
        if line.strip():
            yield number, line


def _sniff(stream: Iterable[bytes], fmt: str | None) -> tuple[str, Iterator[tuple[int, bytes]]]:
    """The format (given, or guessed from the first non-blank line) and the lines."""
    lines = _lines(stream)
    first = next(lines, None)
    if first is None:
        return fmt or "csv", iter(())
    guess = "jsonl" if first[1].lstrip().startswith(b"{") else "csv"

    def chained() -> Iterator[tuple[int, bytes]]:
        yield first
        yield from lines

    return fmt or guess, chained()


#: What a CSV header may call the time column (compared without case).
_TIME_NAMES = frozenset(("time", "t", "timestamp", "ts"))


def _is_header(fields: Sequence[str], with_key: bool) -> bool:
    """Whether a CSV record names the columns (``key,time,value`` or ``time,value``, the
    time column named as in ``_TIME_NAMES``): skipped wherever it comes (files joined with
    ``cat`` repeat it), since no data line has such a time."""
    time_at = 1 if with_key else 0
    return len(fields) > time_at and fields[time_at].strip().lower() in _TIME_NAMES


def _number(text: str) -> int | float:
    """A value as written: an integer or a float (Python's ``1_000`` is not a number here)."""
    text = text.strip()
    if "_" in text:
        raise ValueError(f"not a number: {text!r}")
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"not a number: {text!r}") from None


def _points(
    fmt: str, lines: Iterator[tuple[int, bytes]], with_key: bool
) -> Iterator[tuple[int, int, Any]]:
    """``(line number, bytes read so far, item)`` for each record of the input: an item is
    ``(key, ts, value)`` (key None without ``with_key``) or a Series from a metadata line."""
    done = 0
    for number, raw in lines:
        done += len(raw)
        text = raw.decode("utf-8", "replace")
        try:
            if fmt == "jsonl":
                record = json.loads(text)
                if not isinstance(record, dict):
                    raise ValueError("expected a JSON object")
                if "series" in record:
                    yield number, done, _metadata(record["series"])
                    continue
                key = record.get("key") if with_key else None
                stamp = record.get("t", record.get("time"))
                value = record.get("v", record.get("value"))
                if not isinstance(value, (int, float)) or isinstance(value, bool):
                    raise ValueError(f"not a number: {value!r}")
            else:
                fields = next(csv.reader(io.StringIO(text)))
                if _is_header(fields, with_key):
                    continue
                if len(fields) != (3 if with_key else 2):
                    shape = "key,time,value" if with_key else "time,value"
                    raise ValueError(f"expected {shape}")
                key = fields[0] if with_key else None
                stamp, value = fields[-2], _number(fields[-1])
            if with_key and not isinstance(key, str):
                raise ValueError("no series key")
            if not isinstance(stamp, str):
                raise ValueError("no timestamp")
            ts = to_wire(from_wire(stamp.strip()))
        except (ValueError, TypeError, StopIteration) as exc:
            raise UsageError(f"line {number}: {exc}: {text.strip()[:80]}") from None
        yield number, done, (key, ts, value)


def _checked_input(args: argparse.Namespace, with_key: bool) -> tuple[IO[bytes], int | None]:
    """The input, read once through to check every line before anything is written (so a
    bad line writes nothing, and running the command again never counts a point twice), and
    rewound for the writing pass: a file as it is, stdin kept in a temporary file."""
    stream, size = _open_input(args.file)
    copy: IO[bytes] | None = None
    if stream is sys.stdin.buffer:
        copy = tempfile.TemporaryFile()  # noqa: SIM115 - returned to the caller
    checker = WriteBuffer(increment=False, batch_size=1, flush_interval=1.0, max_buffer=1)
    try:
        fmt, lines = _sniff(_copied(stream, copy), args.format)
        for number, _, item in _points(fmt, lines, with_key):
            if not isinstance(item, Series):
                key, ts, value = item
                try:
                    checker.entry("key", args.series_key if not with_key else key, ts, value)
                except (ValueError, TypeError) as exc:
                    raise UsageError(f"line {number}: {exc}") from None
    except UsageError as exc:
        (copy or stream).close()
        raise UsageError(f"{exc} (nothing was written)") from None
    if copy is not None:
        size = copy.tell()
        stream = copy
    stream.seek(0)
    return stream, size


def _copied(stream: IO[bytes], copy: IO[bytes] | None) -> Iterator[bytes]:
    """The lines of ``stream``, each also written to ``copy`` when there is one."""
    for line in stream:
        if copy is not None:
            copy.write(line)
        yield line


def _metadata(meta: Any) -> Series:
    """The series of an export's metadata line, checked as the API would check it."""
    if not isinstance(meta, dict):
        raise ValueError("series metadata must be a JSON object")
    key, name = meta.get("key"), meta.get("name") or ""
    tags, attributes = meta.get("tags") or [], meta.get("attributes") or {}
    if not isinstance(key, str) or not key:
        raise ValueError("series metadata needs a key")
    protocol.check_key(key)
    if not isinstance(name, str):
        raise ValueError("a series name must be a string")
    if not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags):
        raise ValueError("tags must be a list of non-empty strings")
    if not isinstance(attributes, dict) or not all(isinstance(v, str) for v in attributes.values()):
        raise ValueError("attributes must be an object of strings")
    return Series.from_json(meta)


def _write_stream(args: argparse.Namespace, with_key: bool) -> int:
    stream, size = _checked_input(args, with_key)
    progress = Progress(args.progress, size, "points")
    count = 0
    try:
        with _client(args) as client:
            fmt, lines = _sniff(stream, args.format)
            with client.batch_writer(increment=args.increment, batch_size=args.batch_size) as w:
                for _, done, item in _points(fmt, lines, with_key):
                    if isinstance(item, Series):
                        _apply_metadata(client, item)
                        continue
                    key, ts, value = item
                    w.add(key if with_key else args.series_key, ts, value)
                    count += 1
                    if count % 1000 == 0:
                        progress.update(count, done)
    finally:
        stream.close()
    progress.update(count)
    progress.close()
    print(f"wrote {count} points", file=sys.stderr)
    return 0


def _apply_metadata(client: Client, series: Series) -> None:
    """Create the series of an export's metadata line, or update the one with its key."""
    try:
        client.create_series(
            series.key, name=series.name, tags=series.tags, attributes=series.attributes
        )
    except ConflictError:
        (existing,) = client.get_series(keys=[series.key])
        existing.name, existing.tags = series.name, series.tags
        existing.attributes = series.attributes
        client.update_series(existing)


@_guarded
def run_write(args: argparse.Namespace) -> int:
    if not args.series_key:
        raise UsageError("the series key must not be empty")
    try:
        protocol.check_key(args.series_key)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return _write_stream(args, with_key=False)


@_guarded
def run_import(args: argparse.Namespace) -> int:
    return _write_stream(args, with_key=True)


# -- exporting and reading -------------------------------------------------------------------


def _json_line(obj: Any) -> str:
    return json.dumps(obj, default=_json_default, separators=(",", ":"))


def _json_default(obj: Any) -> Any:
    if isinstance(obj, datetime.date):
        return to_wire(obj)
    raise TypeError(f"cannot encode {obj!r}")


def _value_text(value: int | float | None) -> str:
    """Ints as ints, floats in their shortest round-trip form (every digit), ``null`` for a
    figure the server could not represent (a sum beyond the float64 range)."""
    return "null" if value is None else repr(value)


def _count(client: Client, key: str, start: datetime.datetime, end: datetime.datetime) -> int:
    """How many raw points ``[start, end)`` holds (the summary of a coarse rollup)."""
    summary = client.read_key(key, start, end, interval="1year", function="count").summary
    return int(getattr(summary, "count", 0)) if summary is not None else 0


def _windows(
    client: Client, key: str, start: datetime.datetime | None, end: datetime.datetime | None
) -> Iterator[list[tuple[str, int | float]]]:
    """The raw points of a series in time order, a window at a time.  Each window is counted
    first and halved until it holds at most WINDOW_POINTS points; sparse stretches make the
    windows grow, and empty ones are skipped with a single-value lookup.

    A point at the last instant there is (9999-12-31T23:59:59.999Z), which no range read can
    include (``end`` is exclusive and cannot be later), comes last from its single-value
    lookup when no ``end`` is given."""
    first = client.single_value_key(key, start or FIRST, "after").data
    if first is None:
        return
    begin = max(first.ts, start) if start else first.ts
    final = None
    if end is None:
        last = client.single_value_key(key, LAST, "before").data
        assert last is not None
        if last.ts >= LAST:
            final, end = last, LAST
        else:
            end = last.ts + datetime.timedelta(milliseconds=1)
    yield from _ranges(client, key, begin, end)
    if final is not None:
        yield [(to_wire(final.ts), final.value)]


def _ranges(
    client: Client, key: str, begin: datetime.datetime, end: datetime.datetime
) -> Iterator[list[tuple[str, int | float]]]:
    """The windows of ``_windows`` between ``begin`` and ``end`` (exclusive)."""
    span = datetime.timedelta(minutes=1)
    smallest, largest = datetime.timedelta(milliseconds=1), datetime.timedelta(days=3650)
    while begin < end:
        stop = end if end - begin <= span else begin + span
        count = _count(client, key, begin, stop)
        if count > WINDOW_POINTS and stop - begin > smallest:
            span = max(smallest, (stop - begin) // 2)
            continue
        if count:
            data = client.read_key(key, begin, stop, interval="raw").data
            yield [(to_wire(p.ts), p.value) for p in data]
        if count < WINDOW_POINTS // 4 and span < largest:
            span *= 2
        begin = stop
        if not count and begin < end:
            following = client.single_value_key(key, begin, "after").data
            if following is None:
                return
            begin = following.ts


@_guarded
def run_export(args: argparse.Namespace) -> int:
    try:
        output: IO[str] = (
            sys.stdout if args.output == "-" else open(args.output, "w", newline="")  # noqa: SIM115
        )
    except OSError as exc:
        raise UsageError(f"cannot write {args.output}: {exc.strerror}") from None
    count = 0
    try:
        with _client(args, read_only=True) as client:
            series_list = _matching(client, args)
            progress = Progress(args.progress, len(series_list), "points")
            writer = csv.writer(output, lineterminator="\n") if args.format == "csv" else None
            if writer is not None:
                writer.writerow(("key", "time", "value"))
            for done, series in enumerate(series_list):
                if writer is None:
                    output.write(_json_line({"series": series.to_json()}) + "\n")
                for window in _windows(client, series.key, args.start, args.end):
                    if writer is not None:
                        writer.writerows((series.key, t, _value_text(v)) for t, v in window)
                    else:
                        output.writelines(
                            _json_line({"key": series.key, "t": t, "v": v}) + "\n"
                            for t, v in window
                        )
                    count += len(window)
                    progress.update(count, done)
                progress.update(count, done + 1)
            progress.close()
    finally:
        if output is not sys.stdout:
            output.close()
        else:
            output.flush()
    print(f"exported {count} points", file=sys.stderr)
    return 0


@_guarded
def run_read(args: argparse.Namespace) -> int:
    end = args.end or datetime.datetime.now(datetime.UTC)
    start = args.start or end - datetime.timedelta(days=1)
    with _client(args, read_only=True) as client:
        dataset = client.read_key(
            args.series_key, start, end, args.interval, args.function, args.tz
        )
    rows = [(p.ts.isoformat(timespec="milliseconds"), p.value) for p in dataset.data]
    if args.format == "json":
        print(
            _json_line(
                {
                    "series": dataset.series.to_json(),
                    "start": dataset.start.isoformat(timespec="milliseconds"),
                    "end": dataset.end.isoformat(timespec="milliseconds"),
                    "data": [{"t": t, "v": v} for t, v in rows],
                    "summary": dataset.summary.to_json() if dataset.summary else {},
                }
            )
        )
    elif args.format == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(("time", "value"))
        writer.writerows((t, _value_text(v)) for t, v in rows)
    else:
        width = max([len("time"), *(len(t) for t, _ in rows)])
        print(f"{'time':<{width}}  value")
        for t, v in rows:
            print(f"{t:<{width}}  {_value_text(v)}")
        summary = dataset.summary.to_json() if dataset.summary else {}
        if summary:
            print("\n" + "  ".join(f"{k}={_value_text(v)}" for k, v in summary.items()))
    return 0
