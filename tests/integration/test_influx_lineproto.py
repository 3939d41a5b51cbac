"""The line-protocol grammar and the name mapping: hypothesis round trips of escaping (in the
parser, and through a real server process read back over v1), and the key's properties."""

from __future__ import annotations

import base64
import math
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import urllib3
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from serverproc import ServerProcess, create_key, data_args
from tempodb import Client
from tempodb.server.influx.names import MAX_KEY, series_attributes, series_key
from tempodb.server.influx.parse import Str, parse_line, parse_lines
from tempodb.server.wire import key_error

# Names without backslashes and line ends (InfluxDB 1.x cannot carry those through escaping:
# a backslash before a delimiter is read as an escape), but with every delimiter.
_CHARS = st.characters(
    blacklist_categories=("Cs",), blacklist_characters="\\\n\r\x00", max_codepoint=0x2FF
)
NAMES = st.text(_CHARS, min_size=1, max_size=12)
#: A measurement may not start with blanks (skipped) or ``#`` (a comment).
MEASUREMENTS = NAMES.filter(lambda m: m[0] not in " \t#")
VALUES = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(-(2**63), 2**63 - 1),
    st.booleans(),
    st.text(_CHARS, max_size=12).map(Str),
)


def escape(text: str, special: str) -> str:
    for c in special:
        text = text.replace(c, "\\" + c)
    return text


def render_value(value: Any) -> str:
    if isinstance(value, Str):
        return '"' + value.replace('"', '\\"') + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    return repr(value)


def render(
    measurement: str, tags: dict[str, str], fields: dict[str, Any], stamp: int | None
) -> str:
    """A line as the official clients write it."""
    head = escape(measurement, ", ")
    head += "".join(f",{escape(k, ', =')}={escape(v, ', =')}" for k, v in tags.items())
    body = ",".join(f"{escape(k, ', =')}={render_value(v)}" for k, v in fields.items())
    return f"{head} {body}" + ("" if stamp is None else f" {stamp}")


@given(
    measurement=MEASUREMENTS,
    tags=st.dictionaries(NAMES, NAMES, max_size=4),
    fields=st.dictionaries(NAMES, VALUES, min_size=1, max_size=4),
    stamp=st.none() | st.integers(-(2**62), 2**62),
)
@settings(max_examples=400)
def test_escaping_round_trips_through_the_parser(
    measurement: str, tags: dict[str, str], fields: dict[str, Any], stamp: int | None
) -> None:
    line = render(measurement, tags, fields, stamp)
    point = parse_line(line)
    assert point.measurement == measurement
    assert point.tags == tuple(sorted(tags.items()))
    assert len(point.fields) == len(fields)
    for (name, value), (want_name, want) in zip(point.fields, fields.items(), strict=True):
        assert name == want_name
        assert type(value) is type(want)
        assert value == want or (isinstance(want, float) and math.isclose(value, want))
    assert point.time_ns == stamp


@given(
    lines=st.lists(
        st.tuples(
            MEASUREMENTS,
            st.dictionaries(NAMES, NAMES, max_size=2),
            st.dictionaries(NAMES, VALUES, min_size=1, max_size=3),
        ),
        max_size=6,
    )
)
def test_a_body_of_lines_with_strings_splits_where_the_lines_end(
    lines: list[tuple[str, dict[str, str], dict[str, Any]]],
) -> None:
    body = "\n".join(render(m, t, f, None) for m, t, f in lines)
    parsed = parse_lines(body)
    assert parsed.errors == []
    assert [(p.measurement, dict(p.tags)) for p in parsed.points] == [(m, t) for m, t, _ in lines]


def test_grammar_examples() -> None:
    point = parse_line(r'm\ 1\,x,t\ k=a\=b\,c f\"k=1i,s="a\"b\\c",u=7u,b=T 12')
    assert point.measurement == "m 1,x"
    assert point.tags == (("t k", "a=b,c"),)
    assert point.fields == (('f"k', 1), ("s", 'a"b\\c'), ("u", 7), ("b", True))
    assert point.time_ns == 12
    # A backslash before anything else is kept (InfluxDB 1.x keeps ``\\`` as two).
    assert parse_line(r"a\b,t=c\\d v=1").tags == (("t", r"c\\d"),)
    assert parse_line(r"a\b v=1").measurement == r"a\b"
    # Precisions, in nanoseconds.
    assert parse_lines("m v=1 3", "s").points[0].time_ns == 3_000_000_000
    assert parse_lines("m v=1 3", "h").points[0].time_ns == 3 * 3_600_000_000_000
    parsed = parse_lines("m v=1\n#c\n\n  m v=2\nm\n")
    assert len(parsed.points) == 2
    assert parsed.errors == ["unable to parse 'm': missing fields"]
    assert parse_lines(b"m v=1\nm\xff v=2".decode("utf-8", "surrogateescape"), check_utf8=True)


KEY_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40)
TRIPLES = st.tuples(
    KEY_TEXT,
    st.dictionaries(KEY_TEXT, KEY_TEXT, max_size=8).map(lambda d: tuple(sorted(d.items()))),
    KEY_TEXT,
)


@given(first=TRIPLES, second=TRIPLES)
@settings(max_examples=400)
def test_series_keys_are_valid_and_distinct(
    first: tuple[str, tuple[tuple[str, str], ...], str],
    second: tuple[str, tuple[tuple[str, str], ...], str],
) -> None:
    one, other = series_key(*first), series_key(*second)
    assert key_error(one) is None
    assert len(one) <= MAX_KEY
    assert one == series_key(*first)  # deterministic
    assert (one == other) == (first == second)


def test_key_examples() -> None:
    assert series_key("cpu", (("host", "a.b:c"),), "usage") == "cpu.usage;host:a.b:c"
    assert series_key("a.b", (("k:1", "v;2"),), "f.g") == r"a\2eb.f.g;k\3a1:v\3b2"
    assert series_key("é", (), "x\\y") == r"\c3\a9.x\5cy"
    # Moved parts never collide: ("a.b", "c") and ("a", "b.c").
    assert series_key("a.b", (), "c") != series_key("a", (), "b.c")
    long_key = series_key("m" * 300, (), "f")
    assert len(long_key) == MAX_KEY
    assert long_key.startswith("m" * 200)
    assert "\\h" in long_key
    assert series_key("m" * 300, (), "g") != long_key
    assert series_attributes("cpu", (("host", "a"),), "v") == {
        "host": "a",
        "_measurement": "cpu",
        "_field": "v",
    }


# -- through a real server -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str, str]]:
    store = data_args(Path(tmp_path_factory.mktemp("influx-roundtrip")))
    key, secret = create_key(store)
    process = ServerProcess.start(store)
    yield process, key, secret
    assert process.stop() == 0


FIELD_VALUES = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.integers(-(2**53), 2**53),
    st.booleans(),
)


@given(
    measurement=MEASUREMENTS,
    tags=st.dictionaries(
        NAMES.filter(lambda k: k not in ("time", "_field", "_measurement")), NAMES, max_size=3
    ),
    field=NAMES.filter(lambda k: k != "time"),
    value=FIELD_VALUES,
)
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_names_and_values_round_trip_through_the_server(
    served: tuple[ServerProcess, str, str],
    measurement: str,
    tags: dict[str, str],
    field: str,
    value: float | int | bool,
) -> None:
    process, key, secret = served
    line = render(measurement, tags, {field: value}, 1_700_000_000_000)
    token = base64.b64encode(f"{key}:{secret}".encode()).decode()
    answer = urllib3.request(
        "POST",
        f"{process.url}/write?precision=ms",
        body=line.encode(),
        headers={"Authorization": f"Basic {token}"},
        retries=False,
    )
    assert answer.status == 204, answer.data
    sorted_tags = tuple(sorted(tags.items()))
    with Client(key, secret, host=process.host, port=process.port, secure=False) as client:
        [series] = client.get_series(keys=[series_key(measurement, sorted_tags, field)])
        assert series.attributes == {**tags, "_measurement": measurement, "_field": field}
        start = datetime(2023, 1, 1, tzinfo=UTC)
        [point] = client.read_key(
            series.key, start, datetime(2024, 1, 1, tzinfo=UTC), interval="raw"
        ).data
        assert point.value == (int(value) if isinstance(value, bool) else value)
        assert type(point.value) is (float if isinstance(value, float) else int)


#: Pieces of line protocol and InfluxQL, to be put together at random.
LP_PIECES = st.sampled_from(
    ["m", ",", "=", " ", "\\", '"', "\n", "1", "-", ".", "i", "u", "t", "e", "#", "x", "\t", "é"]
)
QL_PIECES = st.sampled_from(
    [
        "SELECT",
        "SHOW",
        "mean(",
        "x",
        ")",
        "FROM",
        "m",
        "WHERE",
        "time",
        ">",
        "now()",
        "-",
        "1h",
        "GROUP BY",
        "time(",
        "1m",
        ",",
        "fill(",
        "none",
        "TAG",
        "VALUES",
        "WITH KEY",
        "=~",
        "/",
        "'a'",
        '"b"',
        "AND",
        "(",
        "LIMIT",
        "9" * 30,
        ";",
        "::",
        "tag",
        "MEASUREMENTS",
        "\\",
        "OR",
        "median(",
        "percentile(",
        "50",
        "*",
        "+",
        "%",
        "&",
        "linear",
        "tz(",
        "'Europe/Paris'",
        "'2024-03-31 02:30:00'",
        "1d",
    ]
)


@given(body=st.lists(LP_PIECES, max_size=40).map("".join), q=st.lists(QL_PIECES, max_size=25))
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_no_body_and_no_query_is_a_server_error(
    served: tuple[ServerProcess, str, str], body: str, q: list[str]
) -> None:
    process, key, secret = served
    token = base64.b64encode(f"{key}:{secret}".encode()).decode()
    headers = {"Authorization": f"Basic {token}"}
    written = urllib3.request(
        "POST", f"{process.url}/write", body=body.encode(), headers=headers, retries=False
    )
    assert written.status in (204, 400), (body, written.data)
    fields = {"q": " ".join(q)}
    asked = urllib3.request("GET", f"{process.url}/query", fields=fields, headers=headers)
    assert asked.status in (200, 400), (fields, asked.data)
