"""From Prometheus' label sets to our series: one series per label set.

``series_key`` is the one mapping; it is deterministic (the same labels give the same key on
every request and every server), injective (distinct label sets never share a key) and
readable where the characters allow::

    http_requests_total{code="200",job="api",path="/v1/x"}
        -> key  "http_requests_total;code:200;job:api;path:/v1/x"
           attributes {"__name__": "http_requests_total", "code": "200", "job": "api",
                       "path": "/v1/x"}

The key is the escaped metric name (the value of ``__name__``; empty when there is none),
then ``;name:value`` per other label in order of the label names.  A series key holds
letters, digits, space and ``. : ; - _ / \\`` (``contract.KEY_PATTERN``), so every other
character, ``;`` and ``\\`` everywhere, and ``:`` in a label name, is written as ``\\`` and two
lowercase hex digits per UTF-8 byte: ``{`` is ``\\7b``, ``é`` is ``\\c3\\a9``.  So the first
``;`` ends the metric name, and the first ``:`` of a part ends its label name.  A key longer
than 255 characters (the longest series key) keeps its first 213 characters (never half an
escape) and ends with ``\\h`` and 40 hex digits of the SHA-256 of the whole key: ``\\h``
never occurs otherwise, so such keys stay distinct from the others, and from each other as
far as SHA-256 does.

The attributes are the labels themselves, ``__name__`` included, so every v1 route works on
Prometheus data: ``attr[__name__]=up&attr[job]=node`` finds the series of one job.

A label with an empty value is no label (Prometheus' own rule), so it is dropped before the
mapping.  Names are taken as they come, in any UTF-8 (Prometheus 3 may send metric and
label names outside the classic ``[a-zA-Z_:][a-zA-Z0-9_:]*``; the escaping keeps them
apart).  A label set is refused (``label_error``) when it is empty, names a label twice, has
an empty label name, or a name or value longer than 1024 UTF-8 bytes (attributes are
indexed, and PostgreSQL's index entries are bounded).
"""

from __future__ import annotations

from collections.abc import Sequence

from tempodb.contract import MAX_KEY_LENGTH
from tempodb.server.wire import escape_key_part, fit_key

#: The label that holds the metric name.
NAME_LABEL = "__name__"

#: The longest series key (``contract.MAX_KEY_LENGTH``); longer ones are cut and hashed
#: (``wire.fit_key``).
MAX_KEY = MAX_KEY_LENGTH
#: The longest label name or value, in UTF-8 bytes.
MAX_LABEL = 1024

_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 -_/.:")
_NAME_SAFE = _SAFE - {":"}

Labels = Sequence[tuple[str, str]]


def _escape(text: str, safe: frozenset[str] = _SAFE) -> str:
    return escape_key_part(text, safe)


def normalize(labels: Labels) -> list[tuple[str, str]]:
    """The labels with a value, sorted by name."""
    return sorted(pair for pair in labels if pair[1] != "")


def label_error(labels: Labels) -> str | None:
    """Why a label set (``normalize``d) cannot be a series, or None."""
    if not labels:
        return "a series without labels"
    previous = None
    for name, value in labels:
        if name == previous:
            return f"the label {name[:100]!r} is given twice"
        previous = name
        if not name:
            return "a label without a name"
        for text in (name, value):
            if len(text) > MAX_LABEL // 4 and len(text.encode("utf-8", "surrogatepass")) > (
                MAX_LABEL
            ):
                return f"the label {name[:100]!r} is longer than {MAX_LABEL} bytes"
    return None


def series_key(labels: Labels) -> str:
    """The key of the series of a label set (``normalize``d: valued, sorted by name)."""
    metric = ""
    parts: list[str] = []
    for name, value in labels:
        if name == NAME_LABEL:
            metric = _escape(value)
        else:
            parts += (";", _escape(name, _NAME_SAFE), ":", _escape(value))
    key = metric + "".join(parts)
    return fit_key(key)
