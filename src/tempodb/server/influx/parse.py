"""InfluxDB line protocol: the grammar InfluxDB 1.x reads, into plain points.

One point a line::

    measurement[,tag_key=tag_value...] field_key=field_value[,field_key=field_value...] [timestamp]

* Lines end at ``\\n`` (outside a quoted string field value); blank lines and lines whose first
  character past leading spaces and tabs is ``#`` (comments) are skipped.  ``\\r`` is no line
  end: a line ending ``\\r\\n`` is refused, as InfluxDB refuses it.
* A backslash escapes the next character from its role as a delimiter.  Once a name is split
  off, its escapes are removed: ``\\,`` and ``\\ `` and ``\\=`` in measurements, tag keys and
  tag values, and also ``\\"`` in field keys; any other backslash stays as it is (so ``\\\\``
  is two backslashes, as InfluxDB 1.x keeps it).
* Tags (sorted by key, none repeated) need a key and a value.  Fields need at least one:
  floats (``1``, ``-1.5``, ``.5``, ``1e-3``; no ``NaN`` or ``inf``), integers ``12i``,
  unsigned ``12u`` (InfluxDB 1.6 refuses those; 1.8 and 2.x take them), booleans (``t``,
  ``T``, ``true``, ``True``, ``TRUE`` and the same for false), and strings in double quotes
  (``\\"`` and ``\\\\`` escaped).
* The timestamp is an integer in the request's precision (nanoseconds by default), within
  InfluxDB's range once in nanoseconds; without one, the point takes the request's time.

``parse_lines`` never raises on bad input: it returns the points it could read and, per line
it could not, InfluxDB's ``unable to parse '<line>': <reason>``.  What is done with each value
(strings and large integers are refused) is the writer's business (``write``).
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass

#: Nanoseconds per unit of each ``precision`` value that ``/write`` (1.x) and
#: ``/api/v2/write`` accept.
PRECISIONS: dict[str, int] = {
    "n": 1,
    "ns": 1,
    "u": 1_000,
    "us": 1_000,
    "µ": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
#: InfluxDB's time range, in nanoseconds since the epoch.
MIN_NS = -9_223_372_036_854_775_806
MAX_NS = 9_223_372_036_854_775_806

_FLOAT = re.compile(r"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_INT = re.compile(r"-?[0-9]+i")
_UINT = re.compile(r"[0-9]+u")
_TIME = re.compile(r"-?[0-9]+")
_TRUE = frozenset({"t", "T", "true", "True", "TRUE"})
_FALSE = frozenset({"f", "F", "false", "False", "FALSE"})
#: The characters a backslash escapes, per kind of name.
_NAME_ESCAPES = (",", " ", "=")
_FIELD_KEY_ESCAPES = (",", " ", "=", '"')


class Str(str):
    """A string field value (a ``str`` subclass, so that it is told apart from names)."""

    __slots__ = ()


#: A field value as read: float, int (``i`` and ``u``), bool or a string.
FieldValue = float | int | bool | Str


@dataclass(slots=True)
class Point:
    """One parsed line: names unescaped, tags sorted by key, ``time_ns`` None when absent."""

    line: str
    measurement: str
    tags: tuple[tuple[str, str], ...]
    fields: tuple[tuple[str, FieldValue], ...]
    time_ns: int | None


@dataclass(frozen=True)
class Parsed:
    points: list[Point]
    #: ``unable to parse '<line>': <reason>``, one per line refused by the grammar.
    errors: list[str]


class LineError(ValueError):
    """Why a line is no valid line protocol (InfluxDB's wording where it has one)."""


def parse_lines(text: str, precision: str = "n", *, check_utf8: bool = False) -> Parsed:
    """The points of a line-protocol body and the errors of the lines that are not.

    ``check_utf8``: ``text`` was decoded with ``surrogateescape``; lines with bytes that are
    no UTF-8 are refused."""
    factor = PRECISIONS[precision]
    points: list[Point] = []
    errors: list[str] = []
    keys: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {}
    for line in split_lines(text):
        start = 0
        while start < len(line) and line[start] in " \t\x00":
            start += 1
        if start == len(line) or line[start] == "#":
            continue
        line = line[start:]
        if check_utf8:
            try:
                line.encode("utf-8")
            except UnicodeEncodeError:
                shown = line.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
                errors.append(f"unable to parse '{shown}': invalid UTF-8")
                continue
        try:
            points.append(parse_line(line, factor, keys))
        except LineError as exc:
            errors.append(f"unable to parse '{line}': {exc}")
    return Parsed(points, errors)


def split_lines(text: str) -> list[str]:
    """The body's lines: split at ``\\n``, except inside a quoted field value or right after
    a backslash (InfluxDB's scanner)."""
    if '"' not in text and "\\" not in text:
        return text.split("\n")
    lines: list[str] = []
    start = i = 0
    n = len(text)
    fields = quoted = False
    equals = commas = 0
    while i < n:
        c = text[i]
        if c == "\\" and i + 2 < n:
            i += 2
            continue
        if c == " ":
            fields = True
        if fields:
            if not quoted and c == "=":
                equals += 1
                i += 1
                continue
            if not quoted and c == ",":
                commas += 1
                i += 1
                continue
            if c == '"' and equals > commas:
                quoted = not quoted
                i += 1
                continue
        if c == "\n" and not quoted:
            lines.append(text[start:i])
            start = i + 1
            fields = quoted = False
            equals = commas = 0
        i += 1
    lines.append(text[start:])
    return lines


def parse_line(
    line: str,
    factor: int = 1,
    keys: dict[str, tuple[str, tuple[tuple[str, str], ...]]] | None = None,
) -> Point:
    """One line (without its newline, leading blanks removed); LineError when invalid.
    ``keys`` remembers the measurement and tags of each key section already read."""
    if "\\" in line or '"' in line:
        key, fields_text, time_text = _sections(line)
    else:
        key, _, rest = line.partition(" ")
        rest = rest.lstrip(" ")
        fields_text, _, time_text = rest.partition(" ")
    if "\x00" in line:
        raise LineError("NUL characters are not allowed")
    known = None if keys is None else keys.get(key)
    if known is None:
        known = parse_key(key)
        if keys is not None:
            keys[key] = known
    measurement, tags = known
    fields = _parse_fields(fields_text)
    time_text = time_text.strip(" ")
    time_ns = None if not time_text else _parse_time(time_text, factor)
    return Point(line, measurement, tags, fields, time_ns)


def _sections(line: str) -> tuple[str, str, str]:
    """Key, fields and timestamp text of a line with escapes or quotes."""
    n = len(line)
    i = _scan_to(line, 0, " ")
    key = line[:i]
    while i < n and line[i] == " ":
        i += 1
    end = _field_cuts(line, i, [])
    return key, line[i:end], line[end:]


def _field_cuts(text: str, i: int, cuts: list[int]) -> int:
    """Where the fields that start at ``i`` end (an unquoted, unescaped space, or the end),
    appending the position of each comma between two fields to ``cuts``.  A double quote
    opens or closes a string only in a value (after the field key's ``=``), as InfluxDB
    reads it."""
    n = len(text)
    quoted = in_value = False
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if quoted:
            if c == '"':
                quoted = False
        elif c == "=":
            in_value = True
        elif c == '"' and in_value:
            quoted = True
        elif c == ",":
            cuts.append(i)
            in_value = False
        elif c == " ":
            return i
        i += 1
    if quoted:
        raise LineError("unbalanced quotes")
    return n


def _scan_to(text: str, i: int, stops: str) -> int:
    """The index of the first unescaped character of ``stops`` at or after ``i``."""
    n = len(text)
    if len(stops) == 1 and "\\" not in text:
        at = text.find(stops, i)
        return n if at < 0 else at
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c in stops:
            return i
        i += 1
    return n


def _split_tags(text: str) -> list[str]:
    """The key section split at unescaped commas."""
    if "\\" not in text:
        return text.split(",")
    parts: list[str] = []
    start = i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == ",":
            parts.append(text[start:i])
            start = i + 1
        i += 1
    parts.append(text[start:])
    return parts


def _split_fields(text: str) -> list[str]:
    """The fields section split between fields (not at commas in strings)."""
    if "\\" not in text and '"' not in text:
        return text.split(",")
    cuts: list[int] = []
    _field_cuts(text, 0, cuts)
    bounds = [-1, *cuts, len(text)]
    return [text[lo + 1 : hi] for lo, hi in itertools.pairwise(bounds)]


def _unescape(text: str, escapes: tuple[str, ...] = _NAME_ESCAPES) -> str:
    if "\\" not in text:
        return text
    for c in escapes:
        text = text.replace("\\" + c, c)
    return text


def parse_key(key: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """The measurement and the tags (sorted by key) of a line's key section; LineError."""
    parts = _split_tags(key)
    measurement = _unescape(parts[0])
    if not measurement:
        raise LineError("missing measurement")
    if len(parts) == 1:
        return measurement, ()
    tags: dict[str, str] = {}
    for part in parts[1:]:
        at = _scan_to(part, 0, "=")
        if at == 0:
            raise LineError("missing tag key")
        if at >= len(part):
            raise LineError("missing tag value" if part else "missing tag key")
        name, value = _unescape(part[:at]), _unescape(part[at + 1 :])
        if not value:
            raise LineError("missing tag value")
        if name in tags:
            raise LineError("duplicate tags")
        tags[name] = value
    return measurement, tuple(sorted(tags.items()))


def _parse_fields(text: str) -> tuple[tuple[str, FieldValue], ...]:
    if not text:
        raise LineError("missing fields")
    fields: list[tuple[str, FieldValue]] = []
    if "\\" not in text and '"' not in text:  # the common case: nothing escaped or quoted
        for part in text.split(","):
            name, sep, raw = part.partition("=")
            if not (name and raw):
                raise LineError(
                    "invalid field format"
                    if not sep
                    else "missing field key"
                    if not name
                    else "missing field value"
                )
            fields.append((name, _parse_value(raw)))
        return tuple(fields)
    for part in _split_fields(text):
        at = _scan_to(part, 0, "=")
        if at >= len(part):
            raise LineError("invalid field format")
        if at == 0:
            raise LineError("missing field key")
        if at == len(part) - 1:
            raise LineError("missing field value")
        fields.append((_unescape(part[:at], _FIELD_KEY_ESCAPES), _parse_value(part[at + 1 :])))
    return tuple(fields)


def _parse_value(text: str) -> FieldValue:
    first = text[0]
    if first == '"':
        if len(text) < 2 or text[-1] != '"':
            raise LineError("invalid field format")
        return Str(text[1:-1].replace('\\"', '"').replace("\\\\", "\\"))
    if first in "-.0123456789":
        last = text[-1]
        if last in "0123456789" and "_" not in text:
            try:
                number = float(text)
            except ValueError:
                raise LineError("invalid number") from None
            if not math.isfinite(number):
                raise LineError("invalid float")
            return number
        if last == "i":
            if not _INT.fullmatch(text):
                raise LineError("invalid number")
            value = int(text[:-1])
            if not -(2**63) <= value < 2**63:
                raise LineError(f"unable to parse integer {text[:-1]}: value out of range")
            return value
        if last == "u":
            if not _UINT.fullmatch(text):
                raise LineError("invalid number")
            value = int(text[:-1])
            if value >= 2**64:
                raise LineError(f"unable to parse unsigned {text[:-1]}: value out of range")
            return value
        if not _FLOAT.fullmatch(text):
            raise LineError("invalid number")
        number = float(text)
        if not math.isfinite(number):
            raise LineError("invalid float")
        return number
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise LineError("invalid boolean")


def _parse_time(text: str, factor: int) -> int:
    if not _TIME.fullmatch(text):
        if " " in text:
            raise LineError("point is invalid")
        raise LineError("bad timestamp")
    value = int(text)
    if not -(2**63) <= value < 2**63:
        raise LineError(f"bad timestamp: {text} is out of the 64-bit range")
    ns = value * factor
    if not MIN_NS <= ns <= MAX_NS:
        raise LineError(f"time outside range {MIN_NS} - {MAX_NS}")
    return ns
