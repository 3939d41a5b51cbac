"""The part of InfluxQL that ``/query`` serves: statements read into plain objects.

Served (keywords in any case, names bare or in double quotes, several statements separated by
``;``)::

    SHOW DATABASES
    SHOW RETENTION POLICIES [ON db]
    SHOW MEASUREMENTS [ON db] [WITH MEASUREMENT =~ /re/ | = name] [WHERE tags] [LIMIT n] [OFFSET n]
    SHOW TAG KEYS [ON db] [FROM m] [WHERE tags] [LIMIT n] [OFFSET n]
    SHOW TAG VALUES [ON db] [FROM m] WITH KEY (= k | != k | =~ /re/ | !~ /re/ | IN (k, ...))
        [WHERE tags] [LIMIT n] [OFFSET n]
    SHOW FIELD KEYS [ON db] [FROM m]
    SHOW SERIES [ON db] [FROM m] [WHERE tags] [LIMIT n] [OFFSET n]
    SELECT fn("field") [AS alias] [, ...] | field_or_tag [AS alias] [, ...] FROM m
        [WHERE time bounds [AND tags]] [GROUP BY time(d[, offset]) [, tag ... | *]]
        [fill(null|none|previous|N)] [ORDER BY time [ASC|DESC]] [LIMIT n] [OFFSET n]
        [SLIMIT n] [SOFFSET n]

``fn`` is one of ``mean``, ``sum``, ``count``, ``min``, ``max``, ``stddev``, ``spread``,
``first``, ``last``; intervals are 1s or more;
time bounds compare ``time`` with ``now()`` plus or minus durations, RFC 3339 strings or
integers with a duration unit (or nanoseconds); tag conditions are ``tag = 'v'``, ``!=``,
``=~ /re/`` and ``!~ /re/`` joined by ``AND``.  Anything else is refused with an error that
names it (``Unsupported``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

#: Nanoseconds per InfluxQL duration unit.
DURATION_UNITS = {
    "ns": 1,
    "u": 1_000,
    "µ": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
    "d": 86_400_000_000_000,
    "w": 604_800_000_000_000,
}
AGGREGATES = ("mean", "sum", "count", "min", "max", "stddev", "spread", "first", "last")

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<duration>[0-9]+(?:ns|ms|u|µ|s|m|h|d|w)(?![A-Za-z0-9_]))
      | (?P<number>[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?)
      | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
      | "(?P<quoted>(?:[^"\\]|\\.)*)"
      | '(?P<string>(?:[^'\\]|\\.)*)'
      | (?P<op>=~|!~|!=|<>|<=|>=|::|[=<>(),;*+\-./])
    )""",
    re.VERBOSE | re.DOTALL,
)


class QueryError(ValueError):
    """The query cannot be read (InfluxDB: ``error parsing query: ...``)."""


class Unsupported(QueryError):
    """The query asks for something that this server does not do (yet)."""

    def __init__(self, what: str) -> None:
        super().__init__(f"not supported: {what}")


@dataclass(frozen=True)
class Token:
    kind: str  # duration, number, ident, quoted, string, regex, op, end
    text: str


@dataclass(frozen=True)
class TagCondition:
    """``key op value``: ``op`` one of ``=``, ``!=``, ``=~``, ``!~`` (a regex for the last)."""

    key: str
    op: str
    value: str

    def matches(self, tags: dict[str, str]) -> bool:
        have = tags.get(self.key, "")
        if self.op == "=":
            return have == self.value
        if self.op == "!=":
            return have != self.value
        found = re.search(self.value, have) is not None
        return found if self.op == "=~" else not found


@dataclass(frozen=True)
class Show:
    what: str  # databases, retention policies, measurements, tag keys, tag values, ...
    measurement: str | None = None
    #: ``WITH MEASUREMENT`` (op, value) or ``WITH KEY`` (op, values) conditions.
    with_op: str | None = None
    with_values: tuple[str, ...] = ()
    where: tuple[TagCondition, ...] = ()
    limit: int | None = None
    offset: int = 0


@dataclass(frozen=True)
class Call:
    function: str
    field: str
    alias: str | None


@dataclass(frozen=True)
class Select:
    calls: tuple[Call, ...]
    measurement: str
    start_ns: int | None
    end_ns: int | None
    where: tuple[TagCondition, ...]
    interval_ns: int | None
    offset_ns: int
    group_tags: tuple[str, ...]
    fill: str | float
    limit: int | None = None
    columns: tuple[str, ...] = field(default=())
    #: ``GROUP BY *``: by every tag key.
    group_all: bool = False
    #: ``ORDER BY time DESC``.
    descending: bool = False
    #: ``OFFSET`` (rows), ``SLIMIT`` and ``SOFFSET`` (series).
    row_offset: int = 0
    series_limit: int | None = None
    series_offset: int = 0


Statement = Show | Select


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    at = 0
    previous: Token | None = None
    while at < len(text):
        if text[at:].strip() == "":
            break
        stripped = len(text) - len(text[at:].lstrip())
        after = "" if previous is None else previous.text.upper()
        if text[stripped] == "/" and after in ("", "=~", "!~", "FROM"):
            end = stripped + 1
            while end < len(text) and text[end] != "/":
                end += 2 if text[end] == "\\" else 1
            if end >= len(text):
                raise QueryError("unterminated regex")
            previous = Token("regex", text[stripped + 1 : end].replace("\\/", "/"))
            tokens.append(previous)
            at = end + 1
            continue
        found = _TOKEN.match(text, at)
        if found is None or found.end() == at:
            raise QueryError(f"found {text[stripped : stripped + 10]!r}, expected a statement")
        kind = found.lastgroup or "op"
        value = found.group(kind)
        if kind in ("quoted", "string"):
            value = re.sub(r"\\(.)", r"\1", value)
        previous = Token(kind, value)
        tokens.append(previous)
        at = found.end()
    tokens.append(Token("end", ""))
    return tokens


class Parser:
    def __init__(self, text: str, now_ns: int) -> None:
        self.tokens = tokenize(text)
        self.at = 0
        self.now_ns = now_ns

    # -- tokens ------------------------------------------------------------------------------

    def peek(self) -> Token:
        return self.tokens[self.at]

    def next(self) -> Token:
        token = self.tokens[self.at]
        self.at += 1
        return token

    def keyword(self, *words: str) -> bool:
        """Consume the keywords if they come next."""
        for offset, word in enumerate(words):
            token = self.tokens[min(self.at + offset, len(self.tokens) - 1)]
            if token.kind != "ident" or token.text.upper() != word:
                return False
        self.at += len(words)
        return True

    def expect(self, *words: str) -> None:
        if not self.keyword(*words):
            raise QueryError(f"found {self.peek().text or 'EOF'}, expected {' '.join(words)}")

    def op(self, *ops: str) -> str | None:
        token = self.peek()
        if token.kind == "op" and token.text in ops:
            self.at += 1
            return token.text
        return None

    def name(self) -> str:
        token = self.next()
        if token.kind in ("ident", "quoted"):
            return token.text
        raise QueryError(f"found {token.text or 'EOF'}, expected identifier")

    def qualified_name(self) -> str:
        """A measurement name, ``db.rp.m`` or ``db..m`` (the db and rp are accepted as given)."""
        if self.peek().kind == "regex":
            raise Unsupported("a regex in FROM")
        parts = [self.name()]
        while self.op("."):
            if self.op("."):
                parts.append("")
            parts.append(self.name())
        return parts[-1]

    def integer(self) -> int:
        token = self.next()
        if token.kind != "number" or not token.text.isdigit():
            raise QueryError(f"found {token.text or 'EOF'}, expected integer")
        return int(token.text)

    # -- statements --------------------------------------------------------------------------

    def statements(self) -> list[Statement]:
        out: list[Statement] = []
        while True:
            while self.op(";"):
                pass
            if self.peek().kind == "end":
                break
            out.append(self.statement())
            if self.peek().kind != "end" and not self.op(";"):
                raise QueryError(f"found {self.peek().text}, expected ;")
        if not out:
            raise QueryError("found EOF, expected SELECT, SHOW")
        return out

    def statement(self) -> Statement:
        if self.keyword("SHOW"):
            return self.show()
        if self.keyword("SELECT"):
            return self.select()
        token = self.peek()
        word = token.text.upper()
        if word in ("CREATE", "DROP", "DELETE", "ALTER", "GRANT", "REVOKE", "KILL", "EXPLAIN"):
            raise Unsupported(f"{word} statements")
        raise QueryError(f"found {token.text or 'EOF'}, expected SELECT, SHOW")

    def on(self) -> None:
        if self.keyword("ON"):
            self.name()  # the API key chooses the database

    def show(self) -> Show:
        if self.keyword("DATABASES"):
            return Show("databases")
        if self.keyword("RETENTION", "POLICIES"):
            self.on()
            return Show("retention policies")
        if self.keyword("MEASUREMENTS"):
            self.on()
            with_op: str | None = None
            values: tuple[str, ...] = ()
            if self.keyword("WITH", "MEASUREMENT"):
                with_op = self.op("=", "=~", "!=", "!~")
                if with_op is None:
                    raise QueryError("expected =, =~, != or !~ after WITH MEASUREMENT")
                values = (self._operand(with_op),)
            return self._show_tail(Show("measurements", None, with_op, values))
        if self.keyword("TAG", "KEYS"):
            self.on()
            return self._show_tail(Show("tag keys", self._from()))
        if self.keyword("TAG", "VALUES"):
            self.on()
            measurement = self._from()
            self.expect("WITH", "KEY")
            if self.keyword("IN"):
                if not self.op("("):
                    raise QueryError("expected ( after IN")
                keys = [self.name()]
                while self.op(","):
                    keys.append(self.name())
                if not self.op(")"):
                    raise QueryError("expected ) after the keys")
                return self._show_tail(Show("tag values", measurement, "IN", tuple(keys)))
            op = self.op("=", "!=", "=~", "!~", "<>")
            if op is None:
                raise QueryError("expected =, !=, =~, !~ or IN after WITH KEY")
            value = self._operand(op)
            return self._show_tail(
                Show("tag values", measurement, "!=" if op == "<>" else op, (value,))
            )
        if self.keyword("FIELD", "KEYS"):
            self.on()
            return self._show_tail(Show("field keys", self._from()))
        if self.keyword("SERIES"):
            self.on()
            return self._show_tail(Show("series", self._from()))
        raise Unsupported(f"SHOW {self.peek().text}")

    def _from(self) -> str | None:
        return self.qualified_name() if self.keyword("FROM") else None

    def _show_tail(self, show: Show) -> Show:
        where: tuple[TagCondition, ...] = ()
        if self.keyword("WHERE"):
            where = self._tag_conditions(allow_time=False)[0]
        limit, offset = None, 0
        if self.keyword("LIMIT"):
            limit = self.integer()
        if self.keyword("OFFSET"):
            offset = self.integer()
        what, measurement = show.what, show.measurement
        return Show(what, measurement, show.with_op, show.with_values, where, limit, offset)

    # -- SELECT ------------------------------------------------------------------------------

    def select(self) -> Select:
        calls = [self._call()]
        while self.op(","):
            calls.append(self._call())
        self.expect("FROM")
        measurement = self.qualified_name()
        if self.op(","):
            raise Unsupported("several measurements in FROM")
        start = end = None
        where: tuple[TagCondition, ...] = ()
        if self.keyword("WHERE"):
            where, start, end = self._tag_conditions(allow_time=True)
        interval = offset = None
        group_tags: list[str] = []
        group_all = False
        grouped = self.keyword("GROUP", "BY")
        while grouped:
            if self.keyword("TIME"):
                if interval is not None:
                    raise QueryError("GROUP BY time() given twice")
                interval, offset = self._group_time()
            elif self.op("*"):
                group_all = True
            else:
                group_tags.append(self.name())
            grouped = self.op(",") is not None
        raw = all(call.function == "" for call in calls)
        if not raw and any(call.function == "" for call in calls):
            raise Unsupported("mixing aggregates and raw fields")
        if raw and interval is not None:
            raise QueryError("GROUP BY time() requires an aggregate function")
        fill: str | float = "null"
        if self.keyword("FILL"):
            fill = self._fill()
        descending = False
        if self.keyword("ORDER", "BY"):
            self.expect("TIME")
            descending = self.keyword("DESC")
            if not descending:
                self.keyword("ASC")
        limit = self.integer() if self.keyword("LIMIT") else None
        row_offset = self.integer() if self.keyword("OFFSET") else 0
        series_limit = self.integer() if self.keyword("SLIMIT") else None
        series_offset = self.integer() if self.keyword("SOFFSET") else 0
        if self.keyword("TZ"):
            raise Unsupported("tz()")
        if interval is not None and start is None:
            raise Unsupported("GROUP BY time() without a lower time bound (WHERE time > ...)")
        if interval is not None and end is None:
            end = self.now_ns
        names: list[str] = []
        for call in calls:
            name = call.alias or call.function or call.field
            taken = names.count(name) if call.alias is None else 0
            names.append(f"{name}_{taken}" if taken else name)
        return Select(
            tuple(calls),
            measurement,
            start,
            end,
            where,
            interval,
            offset or 0,
            tuple(group_tags),
            fill,
            limit,
            tuple(names),
            group_all,
            descending,
            row_offset,
            series_limit,
            series_offset,
        )

    def _call(self) -> Call:
        """``fn(field) [AS alias]``, or a raw field (or tag) ``name[::type] [AS alias]``."""
        token = self.peek()
        if token.kind == "op" and token.text == "*":
            raise Unsupported("SELECT * (name the fields)")
        if token.kind not in ("ident", "quoted"):
            raise QueryError(f"found {token.text or 'EOF'}, expected field or function")
        self.next()
        if token.kind == "ident" and self.peek().text == "(" and self.peek().kind == "op":
            function = token.text.lower()
            if function not in AGGREGATES:
                raise Unsupported(f"the function {token.text}()")
            self.op("(")
            if self.peek().kind not in ("ident", "quoted"):
                raise Unsupported(f"{function}() of {self.peek().text or 'nothing'}")
            name = self.name()
            if not self.op(")"):
                raise Unsupported(f"{function}() with more than a field")
        else:
            function, name = "", token.text
            if self.op("::"):
                self.name()
        alias = self.name() if self.keyword("AS") else None
        if self.peek().kind == "op" and self.peek().text in "+-*/":
            raise Unsupported("arithmetic on selected values")
        return Call(function, name, alias)

    def _operand(self, op: str) -> str:
        """What a name is compared with: a regex (checked) after ``=~`` and ``!~``, else a
        string, a name or a number."""
        token = self.next()
        if op in ("=~", "!~"):
            if token.kind != "regex":
                raise QueryError(f"found {token.text or 'EOF'}, expected regex")
            try:
                re.compile(token.text)
            except re.error as exc:
                raise QueryError(f"invalid regex /{token.text}/: {exc}") from None
        elif token.kind not in ("string", "ident", "quoted", "number"):
            raise QueryError(f"found {token.text or 'EOF'}, expected a string")
        return token.text

    def _group_time(self) -> tuple[int, int]:
        if not self.op("("):
            raise QueryError("expected ( after time")
        interval = self._duration()
        offset = 0
        if self.op(","):
            negative = self.op("-") is not None
            offset = -self._duration() if negative else self._duration()
        if not self.op(")"):
            raise QueryError("expected ) after the time interval")
        if interval <= 0:
            raise QueryError("the GROUP BY time interval must be positive")
        return interval, offset % interval

    def _duration(self) -> int:
        token = self.next()
        if token.kind != "duration":
            raise QueryError(f"found {token.text or 'EOF'}, expected duration")
        digits = token.text.rstrip("nsmuµhdw")
        return int(digits) * DURATION_UNITS[token.text[len(digits) :]]

    def _fill(self) -> str | float:
        if not self.op("("):
            raise QueryError("expected ( after fill")
        negative = self.op("-") is not None
        token = self.next()
        if token.kind == "ident" and token.text.lower() in ("null", "none") and not negative:
            value: str | float = token.text.lower()
        elif token.kind == "ident" and token.text.lower() == "previous" and not negative:
            value = "previous"
        elif token.kind == "ident" and token.text.lower() == "linear":
            raise Unsupported(f"fill({token.text})")
        elif token.kind == "number":
            value = -float(token.text) if negative else float(token.text)
        else:
            raise QueryError(f"found {token.text or 'EOF'}, expected fill option")
        if not self.op(")"):
            raise QueryError("expected ) after the fill option")
        return value

    def _tag_conditions(
        self, *, allow_time: bool
    ) -> tuple[tuple[TagCondition, ...], int | None, int | None]:
        """``cond AND cond ...`` (parentheses group, as Grafana writes them): the tag
        conditions, and the time bounds (ns, inclusive)."""
        conditions: list[TagCondition] = []
        start: int | None = None
        end: int | None = None
        while True:
            low: int | None
            high: int | None
            if self.op("("):
                inner, low, high = self._tag_conditions(allow_time=allow_time)
                if not self.op(")"):
                    raise QueryError(f"found {self.peek().text or 'EOF'}, expected )")
                conditions += inner
            elif allow_time and self.keyword("TIME"):
                op = self.op("<", "<=", ">", ">=", "=")
                if op is None:
                    raise QueryError("expected a comparison after time")
                at = self._instant()
                low = {">": at + 1, ">=": at, "=": at}.get(op)
                high = {"<": at - 1, "<=": at, "=": at}.get(op)
            else:
                key = self.name()
                if self.op("::") and self.name().lower() != "tag":  # a cast: "host"::tag
                    raise Unsupported(f"conditions on fields ({key})")
                op = self.op("=", "!=", "<>", "=~", "!~")
                if op is None:
                    raise Unsupported(f"the condition on {key} (only =, !=, =~ and !~ on tags)")
                value = self._operand(op)
                conditions.append(TagCondition(key, "!=" if op == "<>" else op, value))
                low = high = None
            if low is not None:
                start = low if start is None else max(start, low)
            if high is not None:
                end = high if end is None else min(end, high)
            if self.keyword("OR"):
                raise Unsupported("OR in WHERE")
            if not self.keyword("AND"):
                break
        return tuple(conditions), start, end

    def _instant(self) -> int:
        """An instant in ns: ``now() [+-] d``, an RFC 3339 string, or a number [with unit]."""
        negative = self.op("-") is not None
        token = self.next()
        if negative and token.kind not in ("number", "duration"):
            raise QueryError(f"found {token.text or 'EOF'}, expected a number")
        if token.kind == "ident" and token.text.lower() == "now":
            if not (self.op("(") and self.op(")")):
                raise QueryError("expected now()")
            at = self.now_ns
        elif token.kind == "string":
            at = _rfc3339_ns(token.text)
        elif token.kind == "duration":
            digits = token.text.rstrip("nsmuµhdw")
            at = int(digits) * DURATION_UNITS[token.text[len(digits) :]]
            at = -at if negative else at
        elif token.kind == "number" and token.text.isdigit():
            at = -int(token.text) if negative else int(token.text)
        else:
            raise QueryError(f"found {token.text or 'EOF'}, expected a time")
        while True:
            sign = self.op("+", "-")
            if sign is None:
                return at
            step = self._duration()
            at = at + step if sign == "+" else at - step


def _rfc3339_ns(text: str) -> int:
    """Nanoseconds since the epoch of ``2006-01-02T15:04:05.999999999Z`` (or a date)."""
    found = re.fullmatch(
        r"(\d{4}-\d\d-\d\d)(?:[T ](\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?)?(Z|[+-]\d\d:\d\d)?", text
    )
    if found is None:
        raise QueryError(f"invalid time {text!r}: expected RFC 3339")
    day, clock, fraction, zone = found.groups()
    try:
        moment = datetime.fromisoformat(f"{day}T{clock or '00:00:00'}{_zone(zone)}")
    except ValueError as exc:
        raise QueryError(f"invalid time {text!r}: {exc}") from None
    seconds = int(moment.timestamp())
    return seconds * 1_000_000_000 + int((fraction or "0").ljust(9, "0"))


def _zone(zone: str | None) -> str:
    return "+00:00" if zone in (None, "Z") else str(zone)


def parse_query(text: str, now_ns: int) -> list[Statement]:
    """The statements of ``q``; QueryError (or Unsupported) when it cannot be served."""
    return Parser(text, now_ns).statements()
