"""From InfluxDB's names to our series: one series per (measurement, tag set, field).

``series_key`` is the one mapping; it is deterministic (the same names give the same key on
every request and every server), injective (different names never share a key) and readable
where the characters allow::

    cpu,host=web-1,region=eu-west usage_idle=98.5
        -> key  "cpu.usage_idle;host:web-1;region:eu-west"
           attributes {"_measurement": "cpu", "_field": "usage_idle",
                       "host": "web-1", "region": "eu-west"}

The key is the escaped measurement, ``.``, the escaped field key, then ``;tag_key:tag_value``
per tag in order of the tag keys.  A series key holds letters, digits, space and
``. : ; - _ / \\`` (``contract.KEY_PATTERN``), so every other character, and each character that
would end its part (``.`` in the measurement, ``:`` in a tag key, ``;`` and ``\\``
everywhere), is written as ``\\`` and two lowercase hex digits per UTF-8 byte: ``é`` is
``\\c3\\a9``, ``.`` in a measurement ``\\2e``.  A key longer than 255 characters (the longest
series key) keeps its first 213 characters (never half an escape) and ends with ``\\h`` and 40
hex digits of the SHA-256 of the whole key: ``\\h`` never occurs otherwise, so such keys stay
distinct from the others, and from each other as far as SHA-256 does.

The attributes hold the names themselves: the tags under their own keys, the measurement under
``_measurement`` and the field key under ``_field`` (InfluxDB 2's names for them).  So every
v1 route works on line-protocol data: ``attr[_measurement]=cpu&attr[host]=web-1`` finds the
series of one host.  Tag keys ``_measurement`` and ``_field`` are refused (``reserved_tag``),
as is ``time`` (as InfluxDB refuses it, for tag keys and field keys alike).
"""

from __future__ import annotations

from collections.abc import Mapping

from tempodb.contract import MAX_KEY_LENGTH
from tempodb.server.wire import escape_key_part, fit_key

#: The attributes that hold the measurement and the field key.
MEASUREMENT_ATTR = "_measurement"
FIELD_ATTR = "_field"
#: Tag keys a line may not use (and field keys: ``time`` only).
RESERVED_TAG_KEYS = frozenset({MEASUREMENT_ATTR, FIELD_ATTR, "time"})
RESERVED_FIELD_KEYS = frozenset({"time"})

#: The longest series key (``contract.MAX_KEY_LENGTH``); longer ones are cut and hashed
#: (``wire.fit_key``).
MAX_KEY = MAX_KEY_LENGTH

_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 -_/")
_MEASUREMENT_SAFE = _PLAIN | {":"}
_FIELD_SAFE = _PLAIN | {".", ":"}
_TAG_KEY_SAFE = _PLAIN | {"."}
_TAG_VALUE_SAFE = _PLAIN | {".", ":"}


def _escape(text: str, safe: frozenset[str]) -> str:
    return escape_key_part(text, safe)


def series_key(measurement: str, tags: tuple[tuple[str, str], ...], field: str) -> str:
    """The key of the series of ``field`` of ``measurement`` with ``tags`` (sorted by key)."""
    parts = [_escape(measurement, _MEASUREMENT_SAFE), ".", _escape(field, _FIELD_SAFE)]
    for name, value in tags:
        parts += (";", _escape(name, _TAG_KEY_SAFE), ":", _escape(value, _TAG_VALUE_SAFE))
    key = "".join(parts)
    return fit_key(key)


def series_attributes(
    measurement: str, tags: tuple[tuple[str, str], ...], field: str
) -> Mapping[str, str]:
    """The attributes of that series: its tags, ``_measurement`` and ``_field``."""
    return {**dict(tags), MEASUREMENT_ATTR: measurement, FIELD_ATTR: field}
