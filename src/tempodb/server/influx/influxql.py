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
    SELECT expr [AS alias] [, ...] | field_or_tag [AS alias] [, ...] FROM m
        [WHERE time bounds [AND tags]] [GROUP BY time(d[, offset]) [, tag ... | *]]
        [fill(null|none|previous|linear|N)] [ORDER BY time [ASC|DESC]] [LIMIT n] [OFFSET n]
        [SLIMIT n] [SOFFSET n] [tz('Zone/Name')]

An ``expr`` is an aggregate ``fn(field)`` (``fn`` one of ``mean``, ``sum``, ``count``,
``min``, ``max``, ``stddev``, ``spread``, ``first``, ``last``, ``median``, or
``percentile(field, N)``), or arithmetic (``+ - * /`` and ``%``, parentheses, unary minus)
on aggregates and numbers: ``mean("usage") * 100``, ``max(a) - min(a)``.  Intervals are 1s
or more; time bounds compare ``time`` with ``now()`` plus or minus durations, RFC 3339
strings (read in the ``tz()`` zone when they name none, as InfluxDB reads them) or integers
with a duration unit (or nanoseconds); tag conditions are ``tag = 'v'``, ``!=``, ``=~ /re/``
and ``!~ /re/`` joined by ``AND`` and ``OR`` (``AND`` binds tighter, parentheses group).
Time bounds must be AND-ed at the top level of ``WHERE``: under an ``OR`` they are refused
(InfluxDB 1.6 silently reads such an ``OR`` as ``AND``).  Anything else is refused with an
error that names it (``Unsupported``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from tempodb.zones import Zone, get_zone

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
AGGREGATES = (
    "mean",
    "sum",
    "count",
    "min",
    "max",
    "stddev",
    "spread",
    "first",
    "last",
    "median",
    "percentile",
)
#: The functions that pick one point (InfluxDB's selectors): alone in a statement without
#: ``GROUP BY time()``, the row takes the time of the point picked.
SELECTORS = ("min", "max", "first", "last", "percentile")
_INT64 = 2**63

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<duration>[0-9]+(?:ns|ms|u|µ|s|m|h|d|w)(?![A-Za-z0-9_]))
      | (?P<number>[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?)
      | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
      | "(?P<quoted>(?:[^"\\]|\\.)*)"
      | '(?P<string>(?:[^'\\]|\\.)*)'
      | (?P<op>=~|!~|!=|<>|<=|>=|::|[=<>(),;*+\-./%&|^])
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


# -- conditions ----------------------------------------------------------------------------------


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
class AllOf:
    """Conditions joined by ``AND`` (none: every series)."""

    parts: tuple[Condition, ...] = ()

    def matches(self, tags: dict[str, str]) -> bool:
        return all(part.matches(tags) for part in self.parts)


@dataclass(frozen=True)
class AnyOf:
    """Conditions joined by ``OR``."""

    parts: tuple[Condition, ...]

    def matches(self, tags: dict[str, str]) -> bool:
        return any(part.matches(tags) for part in self.parts)


Condition = TagCondition | AllOf | AnyOf
#: No condition: every series.
EVERYTHING = AllOf()


@dataclass(frozen=True)
class Instant:
    """A time in a condition: ``ns`` (a number, ``now()``), or an RFC 3339 ``text`` that is
    read once the statement's zone is known; plus ``delta`` ns (``now() - 1h``)."""

    ns: int | None
    text: str | None
    delta: int = 0

    def resolve(self, zone: Zone | None) -> int:
        base = self.ns if self.text is None else _rfc3339_ns(self.text, zone)
        assert base is not None
        return base + self.delta


@dataclass(frozen=True)
class TimeBound:
    """``time op instant``; only AND-ed at the top level of ``WHERE`` (``_split_time``)."""

    op: str
    at: Instant


# -- statements ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Show:
    what: str  # databases, retention policies, measurements, tag keys, tag values, ...
    measurement: str | None = None
    #: ``WITH MEASUREMENT`` (op, value) or ``WITH KEY`` (op, values) conditions.
    with_op: str | None = None
    with_values: tuple[str, ...] = ()
    where: Condition = EVERYTHING
    limit: int | None = None
    offset: int = 0


@dataclass(frozen=True)
class FieldRef:
    """A field (or tag) named in ``SELECT`` without a function: a raw value."""

    name: str


@dataclass(frozen=True)
class Aggregate:
    """``function(field)``, or ``percentile(field, arg)``."""

    function: str
    field: str
    arg: float | None = None


@dataclass(frozen=True)
class Number:
    value: int | float


@dataclass(frozen=True)
class Arithmetic:
    """``left op right``, ``op`` one of ``+ - * / %``."""

    op: str
    left: Expr
    right: Expr


Expr = FieldRef | Aggregate | Number | Arithmetic


def walk(expr: Expr) -> Iterator[Expr]:
    """The nodes of ``expr``, left to right (a node before its operands)."""
    yield expr
    if isinstance(expr, Arithmetic):
        yield from walk(expr.left)
        yield from walk(expr.right)


def expression_name(expr: Expr) -> str:
    """InfluxDB's column name of an expression without an alias: the field or function
    names in it joined by ``_`` (``max(a) - min(a)`` is ``max_min``)."""
    names = []
    for node in walk(expr):
        if isinstance(node, Aggregate):
            names.append(node.function)
        elif isinstance(node, FieldRef):
            names.append(node.name)
    return "_".join(names)


@dataclass(frozen=True)
class Column:
    """One selected column: an expression and its alias."""

    expr: Expr
    alias: str | None = None

    @property
    def aggregates(self) -> list[Aggregate]:
        return [node for node in walk(self.expr) if isinstance(node, Aggregate)]


@dataclass(frozen=True)
class Select:
    fields: tuple[Column, ...]
    measurement: str
    start_ns: int | None
    end_ns: int | None
    where: Condition
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
    #: ``tz('...')``: the zone of ``GROUP BY time()`` buckets and of the times written.
    zone: Zone | None = None

    @property
    def raw(self) -> bool:
        """Raw fields (and tags) rather than aggregates."""
        return all(isinstance(column.expr, FieldRef) for column in self.fields)

    @property
    def aggregates(self) -> tuple[Aggregate, ...]:
        """The distinct aggregates of the statement, in order of appearance."""
        found: dict[Aggregate, None] = {}
        for column in self.fields:
            found.update(dict.fromkeys(column.aggregates))
        return tuple(found)

    @property
    def selector(self) -> Aggregate | None:
        """The one selector of a statement whose rows take the time of the point it picks:
        without ``GROUP BY time()``, when it is the statement's only aggregate (as in
        InfluxDB: ``SELECT max(x)`` or ``SELECT max(x) * 2``, not ``max(x), min(x)``)."""
        aggregates = self.aggregates
        alone = self.interval_ns is None and len(aggregates) == 1
        return aggregates[0] if alone and aggregates[0].function in SELECTORS else None


Statement = Show | Select


def column_names(fields: tuple[Column, ...]) -> tuple[str, ...]:
    """The columns' names as InfluxDB gives them: aliases as written, then the other names
    made unique with ``_1``, ``_2``... (never taking an alias or a name already given)."""
    names: list[str | None] = [column.alias for column in fields]
    taken: dict[str, int] = {}
    for name in names:
        if name is not None:
            taken[name] = 1
    for at, column in enumerate(fields):
        if names[at] is not None:
            continue
        name = expression_name(column.expr)
        count = taken.get(name)
        if count is not None:
            while f"{name}_{count}" in taken:
                count += 1
            taken[name] = count + 1
            name = f"{name}_{count}"
        taken[name] = taken.get(name, 0) + 1
        names[at] = name
    return tuple(name or "" for name in names)


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
        if self.peek().kind == "op" and self.peek().text == "(":
            raise Unsupported("subqueries")
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
        where: Condition = EVERYTHING
        if self.keyword("WHERE"):
            where = self._where(allow_time=False)[0]
        limit, offset = None, 0
        if self.keyword("LIMIT"):
            limit = self.integer()
        if self.keyword("OFFSET"):
            offset = self.integer()
        what, measurement = show.what, show.measurement
        return Show(what, measurement, show.with_op, show.with_values, where, limit, offset)

    # -- SELECT ------------------------------------------------------------------------------

    def select(self) -> Select:
        fields = [self._column()]
        while self.op(","):
            fields.append(self._column())
        self.expect("FROM")
        measurement = self.qualified_name()
        if self.op(","):
            raise Unsupported("several measurements in FROM")
        bounds: list[TimeBound] = []
        where: Condition = EVERYTHING
        if self.keyword("WHERE"):
            where, bounds = self._where(allow_time=True)
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
        raw = all(isinstance(column.expr, FieldRef) for column in fields)
        for column in fields:
            nodes = list(walk(column.expr))
            if not any(isinstance(node, Aggregate | FieldRef) for node in nodes):
                raise QueryError("field must contain at least one variable")
            if not raw and any(isinstance(node, FieldRef) for node in nodes):
                if isinstance(column.expr, FieldRef):
                    raise Unsupported("mixing aggregates and raw fields")
                raise Unsupported("arithmetic on raw fields (only on aggregates)")
        if raw and interval is not None:
            raise QueryError("GROUP BY time() requires an aggregate function")
        fill: str | float = "null"
        if self.keyword("FILL"):
            fill = self._fill()
        if raw and fill in ("none", "linear"):
            raise QueryError(f"fill({fill}) must be used with a function")
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
        zone = self._tz() if self.keyword("TZ") else None
        start, end = _resolve(bounds, zone)
        if interval is not None and start is None:
            raise Unsupported("GROUP BY time() without a lower time bound (WHERE time > ...)")
        if interval is not None and end is None:
            end = self.now_ns
        return Select(
            tuple(fields),
            measurement,
            start,
            end,
            where,
            interval,
            offset or 0,
            tuple(group_tags),
            fill,
            limit,
            column_names(tuple(fields)),
            group_all,
            descending,
            row_offset,
            series_limit,
            series_offset,
            zone,
        )

    def _column(self) -> Column:
        """``expr [AS alias]``."""
        expr = self._sum()
        token = self.peek()
        if token.kind == "op" and token.text in ("&", "|", "^"):
            raise Unsupported(f"the operator {token.text} (only + - * / %)")
        alias = self.name() if self.keyword("AS") else None
        return Column(expr, alias)

    def _sum(self) -> Expr:
        left = self._product()
        while (op := self.op("+", "-")) is not None:
            left = Arithmetic(op, left, self._product())
        return left

    def _product(self) -> Expr:
        left = self._unary()
        while (op := self.op("*", "/", "%")) is not None:
            left = Arithmetic(op, left, self._unary())
        return left

    def _unary(self) -> Expr:
        if self.op("-"):
            if self.peek().kind == "number":
                number = self._number()
                return Number(-number.value)
            return Arithmetic("*", Number(-1), self._unary())
        return self._primary()

    def _number(self) -> Number:
        text = self.next().text
        if text.isdigit():
            if int(text) >= _INT64:
                raise QueryError(f"integer {text[:30]} out of range")
            return Number(int(text))
        value = float(text)
        if not math.isfinite(value):
            raise QueryError(f"number {text[:30]} out of range")
        return Number(value)

    def _primary(self) -> Expr:
        token = self.peek()
        if token.kind == "op" and token.text == "(":
            self.next()
            inner = self._sum()
            if not self.op(")"):
                raise QueryError(f"found {self.peek().text or 'EOF'}, expected )")
            return inner
        if token.kind == "number":
            return self._number()
        if token.kind == "op" and token.text == "*":
            raise Unsupported("SELECT * (name the fields)")
        if token.kind == "duration":
            raise Unsupported(f"durations in SELECT ({token.text})")
        if token.kind not in ("ident", "quoted"):
            raise QueryError(f"found {token.text or 'EOF'}, expected field or function")
        self.next()
        if token.kind == "ident" and self.peek().text == "(" and self.peek().kind == "op":
            return self._call(token.text)
        if self.op("::"):
            self.name()
        return FieldRef(token.text)

    def _call(self, written: str) -> Aggregate:
        """``fn(field)`` or ``percentile(field, N)``, after the function's name."""
        function = written.lower()
        if function not in AGGREGATES:
            raise Unsupported(f"the function {written}()")
        self.op("(")
        if self.peek().kind not in ("ident", "quoted"):
            raise Unsupported(f"{function}() of {self.peek().text or 'nothing'}")
        name = self.name()
        if self.op("::"):
            self.name()
        arg: float | None = None
        if function == "percentile":
            if not self.op(","):
                raise QueryError("invalid number of arguments for percentile, expected 2, got 1")
            negative = self.op("-") is not None
            if self.peek().kind != "number":
                raise QueryError("expected float argument in percentile()")
            arg = float(self._number().value)
            arg = -arg if negative else arg
        if not self.op(")"):
            if self.peek().text == ",":
                raise QueryError(f"invalid number of arguments for {function}, expected 1")
            raise Unsupported(f"{function}() with more than a field")
        return Aggregate(function, name, arg)

    def _tz(self) -> Zone:
        """``tz('Zone/Name')``: an IANA zone (or UTC), as InfluxDB's ``time.LoadLocation``
        takes them (no fixed offsets)."""
        if not self.op("("):
            raise QueryError("expected ( after tz")
        token = self.next()
        if token.kind != "string":
            raise QueryError(f"found {token.text or 'EOF'}, expected string")
        if not self.op(")"):
            raise QueryError("expected ) after the time zone")
        name = token.text
        try:
            if not name or name[0] in "+-" or name.upper() in ("Z", "LOCAL"):
                raise ValueError(name)
            return get_zone(name)
        except ValueError:
            raise QueryError(f"unable to find time zone {name[:80]}") from None

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
        options = ("null", "none", "previous", "linear")
        if token.kind == "ident" and token.text.lower() in options and not negative:
            value: str | float = token.text.lower()
        elif token.kind == "number":
            value = -float(token.text) if negative else float(token.text)
            if not math.isfinite(value):
                raise QueryError(f"fill value {token.text[:30]} out of range")
        else:
            raise QueryError(f"found {token.text or 'EOF'}, expected fill option")
        if not self.op(")"):
            raise QueryError("expected ) after the fill option")
        return value

    # -- WHERE -------------------------------------------------------------------------------

    def _where(self, *, allow_time: bool) -> tuple[Condition, list[TimeBound]]:
        """The condition of ``WHERE``, without its time bounds, and the time bounds (AND-ed at
        its top level, as InfluxDB reads them)."""
        return _split_time(self._or(allow_time))

    def _or(self, allow_time: bool) -> _Parsed:
        parts = [self._and(allow_time)]
        while self.keyword("OR"):
            parts.append(self._and(allow_time))
        return parts[0] if len(parts) == 1 else _AnyOfBounds(tuple(parts))

    def _and(self, allow_time: bool) -> _Parsed:
        parts = [self._atom(allow_time)]
        while self.keyword("AND"):
            parts.append(self._atom(allow_time))
        return parts[0] if len(parts) == 1 else _AllOfBounds(tuple(parts))

    def _atom(self, allow_time: bool) -> _Parsed:
        if self.op("("):
            inner = self._or(allow_time)
            if not self.op(")"):
                raise QueryError(f"found {self.peek().text or 'EOF'}, expected )")
            return inner
        if allow_time and self.keyword("TIME"):
            op = self.op("<", "<=", ">", ">=", "=")
            if op is None:
                raise QueryError("expected a comparison after time")
            return TimeBound(op, self._instant())
        key = self.name()
        if self.op("::") and self.name().lower() != "tag":  # a cast: "host"::tag
            raise Unsupported(f"conditions on fields ({key})")
        op = self.op("=", "!=", "<>", "=~", "!~")
        if op is None:
            raise Unsupported(f"the condition on {key} (only =, !=, =~ and !~ on tags)")
        value = self._operand(op)
        return TagCondition(key, "!=" if op == "<>" else op, value)

    def _instant(self) -> Instant:
        """``now() [+-] d``, an RFC 3339 string, or a number [with unit]."""
        negative = self.op("-") is not None
        token = self.next()
        if negative and token.kind not in ("number", "duration"):
            raise QueryError(f"found {token.text or 'EOF'}, expected a number")
        text = None
        at = 0
        if token.kind == "ident" and token.text.lower() == "now":
            if not (self.op("(") and self.op(")")):
                raise QueryError("expected now()")
            at = self.now_ns
        elif token.kind == "string":
            text = token.text
            _rfc3339_ns(text, None)  # checked now, read in the statement's zone later
        elif token.kind == "duration":
            digits = token.text.rstrip("nsmuµhdw")
            at = int(digits) * DURATION_UNITS[token.text[len(digits) :]]
            at = -at if negative else at
        elif token.kind == "number" and token.text.isdigit():
            at = -int(token.text) if negative else int(token.text)
        else:
            raise QueryError(f"found {token.text or 'EOF'}, expected a time")
        delta = 0
        while True:
            sign = self.op("+", "-")
            if sign is None:
                return Instant(None if text is not None else at, text, delta)
            step = self._duration()
            delta = delta + step if sign == "+" else delta - step


@dataclass(frozen=True)
class _AllOfBounds:
    """``AND`` while parsing: tag conditions and time bounds."""

    parts: tuple[_Parsed, ...]


@dataclass(frozen=True)
class _AnyOfBounds:
    """``OR`` while parsing."""

    parts: tuple[_Parsed, ...]


#: A parsed ``WHERE`` before its time bounds are taken out.
_Parsed = Condition | TimeBound | _AllOfBounds | _AnyOfBounds


def _split_time(tree: _Parsed) -> tuple[Condition, list[TimeBound]]:
    """The tag condition of a parsed ``WHERE`` and its time bounds: those AND-ed at its top
    level (through parentheses).  A time bound under an ``OR`` is refused: InfluxDB 1.6
    answers ``time > a OR host = 'x'`` as if it said ``AND`` (and ``time < a OR time > b``
    with nothing), which no reader of the query would expect."""
    if isinstance(tree, TimeBound):
        return EVERYTHING, [tree]
    if isinstance(tree, _AllOfBounds):
        parts: list[Condition] = []
        bounds: list[TimeBound] = []
        for part in tree.parts:
            condition, found = _split_time(part)
            bounds += found
            if condition != EVERYTHING:
                parts.append(condition)
        return (parts[0] if len(parts) == 1 else AllOf(tuple(parts))), bounds
    if isinstance(tree, _AnyOfBounds):
        return AnyOf(tuple(_tags_only(part) for part in tree.parts)), []
    assert isinstance(tree, TagCondition | AllOf | AnyOf)
    return tree, []


def _tags_only(tree: _Parsed) -> Condition:
    if isinstance(tree, TimeBound):
        raise Unsupported(
            "time conditions under OR (AND them with the rest at the top level of WHERE: "
            "InfluxDB 1.6 reads such an OR as AND)"
        )
    if isinstance(tree, _AllOfBounds):
        return AllOf(tuple(_tags_only(part) for part in tree.parts))
    if isinstance(tree, _AnyOfBounds):
        return AnyOf(tuple(_tags_only(part) for part in tree.parts))
    assert isinstance(tree, TagCondition | AllOf | AnyOf)
    return tree


def _resolve(bounds: list[TimeBound], zone: Zone | None) -> tuple[int | None, int | None]:
    """The time range (ns, both ends inclusive) of the bounds, each read in ``zone``."""
    start: int | None = None
    end: int | None = None
    for bound in bounds:
        at = bound.at.resolve(zone)
        low = {">": at + 1, ">=": at, "=": at}.get(bound.op)
        high = {"<": at - 1, "<=": at, "=": at}.get(bound.op)
        if low is not None:
            start = low if start is None else max(start, low)
        if high is not None:
            end = high if end is None else min(end, high)
    return start, end


_RFC3339 = re.compile(
    r"(\d{4}-\d\d-\d\d)(?:[T ](\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?)?(Z|[+-]\d\d:\d\d)?"
)


def _rfc3339_ns(text: str, zone: Zone | None) -> int:
    """Nanoseconds since the epoch of ``2006-01-02T15:04:05.999999999Z`` (or a date); one
    without ``Z`` or an offset is a wall-clock time in ``zone`` (UTC when None), placed as
    Go's ``time.Date`` places it (a time the clock skips takes the offset in effect after
    the change; a time shown twice is the first)."""
    found = _RFC3339.fullmatch(text)
    if found is None:
        raise QueryError(f"invalid time {text!r}: expected RFC 3339")
    day, clock, fraction, offset = found.groups()
    explicit = offset is not None
    try:
        moment = datetime.fromisoformat(f"{day}T{clock or '00:00:00'}{_offset(offset)}")
    except ValueError as exc:
        raise QueryError(f"invalid time {text!r}: {exc}") from None
    seconds = int(moment.timestamp())
    if zone is not None and not explicit:
        wall_ms = seconds * 1000
        try:
            shift = zone.offset_at(wall_ms)
            if zone.offset_at(wall_ms - shift) != shift:
                shift = zone.offset_at(wall_ms - shift)
        except (ValueError, OverflowError, IndexError):
            raise QueryError(f"invalid time {text!r}: out of range") from None
        seconds -= shift // 1000
    return seconds * 1_000_000_000 + int((fraction or "0").ljust(9, "0"))


def _offset(zone: str | None) -> str:
    return "+00:00" if zone in (None, "Z") else str(zone)


def parse_query(text: str, now_ns: int) -> list[Statement]:
    """The statements of ``q``; QueryError (or Unsupported) when it cannot be served."""
    return Parser(text, now_ns).statements()
