"""``POST /api/v1/read``: Prometheus' remote_read, answered with samples.

The body is a snappy block of a protobuf ``ReadRequest`` (``messages``): queries, each a
time range ``[start_timestamp_ms, end_timestamp_ms]`` (both ends included) and label
matchers.  The answer is a snappy block of a ``ReadResponse``: per query, in order, a
``QueryResult`` with every series of the caller's database (the API key's, never another)
that the matchers select and that has samples in the range, its labels (its attributes,
sorted by name) and its samples.  Prometheus may list ``STREAMED_XOR_CHUNKS`` among the
response types it accepts; tempodb answers ``SAMPLES``, which every Prometheus reads.

Matchers, as Prometheus applies them: ``=`` and ``!=`` compare a label's value, ``=~`` and
``!~`` match a regular expression against the whole value (anchored at both ends); a series
without the label has the empty value there, so ``job=""`` selects the series without a
``job`` label.  The store narrows the series by their attributes where a matcher allows it
(``=`` with a value, ``=~`` with an alternation of literals such as ``a|b``); every matcher is
then checked on each series.  Regular expressions are Python's (``re``), which agree with
Prometheus' RE2 on the syntax used in practice; one Python cannot compile is a ``400``.

Errors: ``400`` for a body that is no snappy ``ReadRequest``, a bad matcher, or an answer
past ``MAX_SAMPLES`` samples (narrow the query); ``413`` past the body limit.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from tempodb.server.context import Context
from tempodb.server.http import HTTPError, Request, Response
from tempodb.server.prometheus import messages
from tempodb.server.prometheus.write import read_message
from tempodb.storage.base import SeriesFilter, SeriesRecord

#: The most samples one answer holds (Prometheus' own default limit is 5e7; ours keeps the
#: answer, built in memory, to a few hundred MB).
MAX_SAMPLES = 5_000_000
#: The most matchers of one query.
MAX_MATCHERS = 64
PROTOBUF_TYPE = b"application/x-protobuf"
#: Characters that make a regular expression more than a literal.
_META = frozenset(".^$*+?()[]{}|\\")


@dataclass(frozen=True)
class Matcher:
    """One label matcher: ``test`` says whether a label value (``""`` when absent) matches."""

    name: str
    kind: int
    value: str
    test: Callable[[str], bool]

    def matches(self, labels: Mapping[str, str]) -> bool:
        return self.test(labels.get(self.name, ""))

    def literals(self) -> tuple[str, ...] | None:
        """The non-empty values this matcher accepts, when it accepts only a few listed ones
        (``=`` with a value, ``=~`` with ``a|b|c``); None otherwise."""
        if self.kind == messages.EQ:
            return (self.value,) if self.value else None
        if self.kind == messages.RE and not any(c in _META for c in self.value.replace("|", "")):
            options = tuple(self.value.split("|"))
            return options if all(options) else None
        return None


def matcher(kind: int, name: str, value: str) -> Matcher:
    """A matcher of Prometheus' ``LabelMatcher``; 400 for an unknown type or a bad regex."""
    if kind == messages.EQ:
        return Matcher(name, kind, value, value.__eq__)
    if kind == messages.NEQ:
        return Matcher(name, kind, value, value.__ne__)
    if kind in (messages.RE, messages.NRE):
        try:
            pattern = re.compile(f"(?:{value})")
        except re.error as exc:
            raise HTTPError(400, f"Invalid regular expression {value[:200]!r}: {exc}") from None
        if kind == messages.RE:
            return Matcher(name, kind, value, lambda text: pattern.fullmatch(text) is not None)
        return Matcher(name, kind, value, lambda text: pattern.fullmatch(text) is None)
    raise HTTPError(400, f"Unknown label matcher type {kind}")


def series_filter(matchers: Iterable[Matcher]) -> SeriesFilter:
    """The attribute filter that narrows the series to those the matchers may select."""
    attributes: dict[str, tuple[str, ...]] = {}
    for m in matchers:
        literals = m.literals()
        if literals is not None and (m.name not in attributes or m.kind == messages.EQ):
            attributes[m.name] = literals
    return SeriesFilter(attributes=attributes)


def select(ctx: Context, matchers: list[Matcher]) -> list[SeriesRecord]:
    """The caller's series that every matcher selects, ordered by key."""
    found = ctx.store.find_series(ctx.db.id, series_filter(matchers))
    return [s for s in found if all(m.matches(s.attributes) for m in matchers)]


def read(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """``POST /api/v1/read``: a remote_read ``ReadRequest``, answered with samples."""
    read_request = read_message(request, messages.ReadRequest)
    response = messages.ReadResponse()
    total = 0
    for query in read_request.queries:  # type: ignore[attr-defined]
        if len(query.matchers) > MAX_MATCHERS:
            raise HTTPError(400, f"A query with more than {MAX_MATCHERS} matchers")
        matchers = [matcher(m.type, m.name, m.value) for m in query.matchers]
        start, end = query.start_timestamp_ms, query.end_timestamp_ms
        result = response.results.add()
        if end < start:
            continue
        for series in select(ctx, matchers):
            points = ctx.store.read_points(ctx.db.id, series.id, start, end + 1)
            if not len(points):
                continue
            total += len(points)
            if total > MAX_SAMPLES:
                raise HTTPError(
                    400,
                    f"The answer would hold more than {MAX_SAMPLES} samples: "
                    "query a shorter range or fewer series",
                )
            if ctx.metrics is not None:
                ctx.metrics.read(len(points))
            out = result.timeseries.add()
            for name, value in sorted(series.attributes.items()):
                if value:
                    out.labels.add(name=name, value=value)
            out.MergeFromString(messages.encode_samples(points.ts, points.values))
    body = messages.compress(response.SerializeToString())
    return Response(200, body, PROTOBUF_TYPE, {"Content-Encoding": "snappy"})
