"""Timestamps on the wire: formatting, parsing and epoch-millisecond conversion.

The client imports this module, so it uses the standard library only.

Rules (spec §3.1, §3.2, §8):

* The stored resolution is 1 ms; finer fractions are floored.
* A naive ``datetime`` (or a timestamp text without an offset) means UTC; a ``datetime.date``
  means midnight UTC of that day.
* The client sends ``YYYY-MM-DDTHH:MM:SS.mmmZ``; it reads ``Z``, ``±HH:MM``, ``±HHMM``, ``±HH``
  or no offset and always returns aware datetimes that keep the offset of the text.
* The server accepts the grammar of spec §3.1::

      date      = YYYY "-" MM "-" DD
      time      = hh ":" mm [ ":" ss [ "." 1*9DIGIT ] ]
      offset    = "Z" / ("+" / "-") hh [ [":"] mm ]
      timestamp = date [ ("T" / " ") time [ offset ] ]

  with every field range-checked (years 0001-9999, real calendar days, hh <= 23, mm/ss <= 59,
  offset hh <= 23) and the resulting instant inside 0001-01-01 .. 9999-12-31 UTC, so that every
  accepted value can be rendered again.  ``T`` and ``Z`` are upper case only.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone

__all__ = [
    "MAX_MS",
    "MIN_MS",
    "datetime_to_ms",
    "from_wire",
    "ms_to_datetime",
    "parse_timestamp_ms",
    "to_wire",
]

_UTC = UTC
_EPOCH = datetime(1970, 1, 1, tzinfo=_UTC)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_MS_PER_DAY = 86_400_000

#: Epoch ms of 0001-01-01T00:00:00.000Z, the earliest instant accepted or rendered.
MIN_MS = (1 - _EPOCH_ORDINAL) * _MS_PER_DAY
#: Epoch ms of 9999-12-31T23:59:59.999Z, the latest instant accepted or rendered.
MAX_MS = (date(9999, 12, 31).toordinal() + 1 - _EPOCH_ORDINAL) * _MS_PER_DAY - 1

# The grammar of spec §3.1; fractions of any length are allowed by the client-side variant.
_GRAMMAR = (
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})"
    r"(?:[T ]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]{%s}))?)?"
    r"(?:(Z)|([+-])([0-9]{2})(?::?([0-9]{2}))?)?)?"
)
_SERVER_RE = re.compile(_GRAMMAR % "1,9")
_CLIENT_RE = re.compile(_GRAMMAR % "1,")
_fromisoformat = datetime.fromisoformat
_datetime_isoformat = datetime.isoformat
_date_isoformat = date.isoformat


def to_wire(value: datetime | date | str) -> str:
    """Format a timestamp for a request: ``YYYY-MM-DDTHH:MM:SS.mmmZ`` in UTC.

    Aware datetimes are converted to UTC, naive ones are taken as UTC, a ``date`` is midnight
    UTC, and a ``str`` is passed through unchanged (as the 0.5 client did).  Microseconds are
    floored to milliseconds.  Raises ``TypeError`` for other types and ``ValueError`` when the
    UTC instant falls outside years 1-9999.

    >>> to_wire(datetime(2012, 1, 1, 6, tzinfo=timezone(timedelta(hours=6))))
    '2012-01-01T00:00:00.000Z'
    """
    if isinstance(value, datetime):
        if value.tzinfo is None:  # the base class's C formatter, the fastest
            return _datetime_isoformat(value, "T", "milliseconds") + "Z"
        offset = value.utcoffset()
        if offset:
            try:  # naive first: a pandas Timestamp keeps its zone's wall clock when shifted
                value = value.replace(tzinfo=None) - offset
            except OverflowError:
                raise ValueError(f"{value!r} is outside years 1-9999 in UTC") from None
        return "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ" % (  # noqa: UP031 (faster than f-strings)
            value.year,
            value.month,
            value.day,
            value.hour,
            value.minute,
            value.second,
            value.microsecond // 1000,
        )
    if isinstance(value, date):
        return _date_isoformat(value) + "T00:00:00.000Z"
    if isinstance(value, str):
        return value
    raise TypeError(
        f"a timestamp must be a datetime.datetime, datetime.date or str, not "
        f"{type(value).__name__}: {value!r}"
    )


def from_wire(text: str) -> datetime:
    """Parse a timestamp from a response into an aware ``datetime``.

    Accepts the §3.1 grammar with fractions of any length (floored to microseconds).  The
    offset of the text is kept (``datetime.timezone.utc`` when it is zero); no offset means
    UTC.  Raises ``ValueError`` naming the text when it is not a timestamp.

    >>> from_wire("2012-01-01T00:00:00.000-06:00").isoformat()
    '2012-01-01T00:00:00-06:00'
    """
    if not isinstance(text, str):
        raise TypeError(f"a timestamp text must be a str, not {type(text).__name__}")
    # Fast path: YYYY-MM-DDTHH:MM:SS.mmm followed by Z, ±HHMM or ±HH:MM.  fromisoformat checks
    # the digits of the rest but is lax about offsets ("-06,0" passes, minutes may exceed 59).
    size = len(text)
    if text[4:20:3] == "--T::." and (
        (size == 24 and text[23] == "Z")
        or (size == 28 and text[23] in "+-" and text[24:].isdigit() and text[26] < "6")
        or (
            size == 29
            and text[23] in "+-"
            and text[26] == ":"
            and (text[24:26] + text[27:]).isdigit()
            and text[27] < "6"
        )
    ):
        try:
            return _fromisoformat(text)
        except ValueError:
            pass
    match = _CLIENT_RE.fullmatch(text)
    if match is None:
        raise ValueError(f"Invalid timestamp: {text}")
    year, month, day, hour, minute, second, fraction, _zulu, sign, off_h, off_m = match.groups()
    tz = _UTC
    if sign is not None:
        hours, minutes = int(off_h), int(off_m or 0)
        if hours > 23 or minutes > 59:
            raise ValueError(f"Invalid timestamp: {text}")
        if hours or minutes:
            delta = timedelta(hours=hours, minutes=minutes)
            tz = timezone(-delta if sign == "-" else delta)
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        return datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            micro,
            tzinfo=tz,
        )
    except ValueError:
        raise ValueError(f"Invalid timestamp: {text}") from None


def parse_timestamp_ms(text: str) -> int:
    """Parse a request timestamp (spec §3.1 grammar) into epoch milliseconds.

    Naive means UTC, date-only means midnight, fractions are floored to ms.  Raises
    ``ValueError("Invalid timestamp: <text>")`` for anything else, including non-``str`` input,
    out-of-range fields and instants outside years 1-9999 UTC.

    >>> parse_timestamp_ms("2012-01-01T00:00:00.000+0100")
    1325372400000
    """
    match = _SERVER_RE.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"Invalid timestamp: {text}")
    year, month, day, hour, minute, second, fraction, _zulu, sign, off_h, off_m = match.groups()
    try:
        days = date(int(year), int(month), int(day)).toordinal() - _EPOCH_ORDINAL
    except ValueError:
        raise ValueError(f"Invalid timestamp: {text}") from None
    ms = days * _MS_PER_DAY
    if hour is not None:
        h, m, s = int(hour), int(minute), int(second or 0)
        if h > 23 or m > 59 or s > 59:
            raise ValueError(f"Invalid timestamp: {text}")
        ms += h * 3_600_000 + m * 60_000 + s * 1000
        if fraction is not None:
            ms += int(fraction[:3].ljust(3, "0"))
        if sign is not None:
            oh, om = int(off_h), int(off_m or 0)
            if oh > 23 or om > 59:
                raise ValueError(f"Invalid timestamp: {text}")
            offset = oh * 3_600_000 + om * 60_000
            ms += offset if sign == "-" else -offset
    if not MIN_MS <= ms <= MAX_MS:
        raise ValueError(f"Invalid timestamp: {text}")
    return ms


def ms_to_datetime(ms: int) -> datetime:
    """Convert epoch milliseconds to an aware UTC ``datetime``.

    >>> ms_to_datetime(0).isoformat()
    '1970-01-01T00:00:00+00:00'
    """
    return _EPOCH + timedelta(milliseconds=int(ms))


def datetime_to_ms(value: datetime | date) -> int:
    """Convert a ``datetime`` or ``date`` to epoch milliseconds (the rules of ``to_wire``).

    Aware datetimes count from their UTC instant, naive ones are UTC, a ``date`` is midnight
    UTC; microseconds are floored.  Raises ``TypeError`` for other types.

    >>> datetime_to_ms(date(1970, 1, 2))
    86400000
    """
    if isinstance(value, datetime):
        micros = (
            (value.toordinal() - _EPOCH_ORDINAL) * 86_400
            + value.hour * 3600
            + value.minute * 60
            + value.second
        ) * 1_000_000 + value.microsecond
        offset = value.utcoffset()
        if offset:
            micros -= (offset.days * 86_400 + offset.seconds) * 1_000_000 + offset.microseconds
        return micros // 1000
    if isinstance(value, date):
        return (value.toordinal() - _EPOCH_ORDINAL) * _MS_PER_DAY
    raise TypeError(
        f"a timestamp must be a datetime.datetime or datetime.date, not "
        f"{type(value).__name__}: {value!r}"
    )
