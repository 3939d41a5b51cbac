"""Tests of the server's vectorised timestamp parser against the scalar one and a reference."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tempodb.server.timestamps import InvalidTimestamp, parse_timestamps_ms
from tempodb.timeutil import MAX_MS, MIN_MS, parse_timestamp_ms
from tempodb.zones import excerpt

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_MS = timedelta(milliseconds=1)
JAN1 = 1_325_376_000_000  # 2012-01-01T00:00:00Z

# The spec §3.1 grammar, written independently of the modules under test.
GRAMMAR = re.compile(
    r"""
    [0-9]{4}-[0-9]{2}-[0-9]{2}
    (?:
        [T\ ] [0-9]{2}:[0-9]{2}
        (?: :[0-9]{2} (?: \.[0-9]{1,9} )? )?
        (?: Z | [+-][0-9]{2} (?: :?(?P<mm>[0-9]{2}) )? )?
    )?
    """,
    re.VERBOSE | re.ASCII,
)


def reference_ms(text: str) -> int | None:
    """Epoch ms by the grammar above and ``datetime.fromisoformat``; None when invalid."""
    match = GRAMMAR.fullmatch(text)
    if match is None or int(match["mm"] or 0) > 59:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace(" ", "T", 1))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    ms = (parsed - EPOCH) // ONE_MS
    return ms if MIN_MS <= ms <= MAX_MS else None


def scalar_batch(texts: Sequence[object]) -> list[int] | int:
    """What the batch parser must give: the values, or the index of the first bad item."""
    values = []
    for index, text in enumerate(texts):
        try:
            values.append(parse_timestamp_ms(text))  # type: ignore[arg-type]
        except ValueError:
            return index
    return values


def vector_batch(texts: Sequence[object]) -> list[int] | int:
    """The batch parser's answer in the shape of ``scalar_batch``."""
    try:
        result = parse_timestamps_ms(texts)
    except InvalidTimestamp as error:
        caught = error
    else:
        assert result.dtype == np.int64
        assert result.shape == (len(texts),)
        return [int(v) for v in result]
    assert str(caught) == f"Invalid timestamp: {texts[caught.index]}"
    assert caught.text is texts[caught.index]
    return caught.index


def reference_batch(texts: Sequence[str]) -> list[int] | int:
    values = []
    for index, text in enumerate(texts):
        value = reference_ms(text)
        if value is None:
            return index
        values.append(value)
    return values


SPELLINGS = ["", "Z", "hh", "hhmm", "hh:mm"]


@st.composite
def shapes(draw: st.DrawFn) -> tuple[str, str, int, str]:
    """A shape of the grammar: (separator, time part kind, fraction digits, offset spelling)."""
    kind = draw(st.sampled_from(["date", "minutes", "seconds", "seconds", "seconds"]))
    fraction = draw(st.sampled_from([0, 3, 3, 6, 1, 2, 4, 5, 7, 8, 9])) if kind == "seconds" else 0
    spelling = draw(st.sampled_from(SPELLINGS)) if kind != "date" else ""
    return draw(st.sampled_from("TT ")), kind, fraction, spelling


@st.composite
def texts_in(draw: st.DrawFn, shape: tuple[str, str, int, str]) -> str:
    """A valid-grammar text of the given shape (its instant may be out of range)."""
    separator, kind, fraction, spelling = shape
    moment = draw(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)))
    text = f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
    if kind == "date":
        return text
    text += f"{separator}{moment.hour:02d}:{moment.minute:02d}"
    if kind == "seconds":
        text += f":{moment.second:02d}"
        if fraction:
            text += "." + draw(st.text("0123456789", min_size=fraction, max_size=fraction))
    if spelling == "Z":
        text += "Z"
    elif spelling:
        text += draw(st.sampled_from("+-")) + f"{draw(st.integers(0, 23)):02d}"
        if spelling != "hh":
            text += (":" if spelling == "hh:mm" else "") + f"{draw(st.integers(0, 59)):02d}"
    return text


any_text = shapes().flatmap(texts_in)


@st.composite
def mutants(draw: st.DrawFn) -> str:
    """A valid text with a few characters replaced, inserted or deleted."""
    text = draw(any_text)
    for _ in range(draw(st.integers(1, 2))):
        pos = draw(st.integers(0, len(text)))
        new = draw(st.text(st.sampled_from("0123456789-:.TZ +,x9\n\u00e9"), max_size=2))
        text = text[:pos] + new + text[pos + draw(st.integers(0, 2)) :]
    return text


@st.composite
def same_length_mutants(draw: st.DrawFn, text: str) -> str:
    """The text with one character substituted (the length is kept: the uniform fast path)."""
    pos = draw(st.integers(0, len(text) - 1))
    return text[:pos] + draw(st.sampled_from("0123456789-:.TZ +,\n")) + text[pos + 1 :]


# --- examples ----------------------------------------------------------------------------


SPEC_EXAMPLES = {
    "2012-03-27T00:00:00": 1_332_806_400_000,
    "2012-03-27T01:02:03.000004": 1_332_806_400_000 + 3_723_000,
    "2012-01-01T00:00:00+00:00": JAN1,
    "2012-01-01T00:00:00-06:00": JAN1 + 21_600_000,
    "2012-01-01": JAN1,
    "2012-01-08T00:21:54.000+0000": JAN1 + 7 * 86_400_000 + 1_314_000,
    "2012-01-01T00:00:00.000Z": JAN1,
    "2012-01-01T00:00:00Z": JAN1,
    "2012-01-01T00:00:00.000+0000": JAN1,
    "2012-06-23T00:00:00.000-05:00": 1_340_427_600_000,
    "2012-01-01T00:00:00.000-0600": JAN1 + 21_600_000,
    "2012-01-01T00:00:00.000+0100": JAN1 - 3_600_000,
}


def test_spec_examples() -> None:
    texts = list(SPEC_EXAMPLES)
    assert parse_timestamps_ms(texts).tolist() == list(SPEC_EXAMPLES.values())
    for text, expected in SPEC_EXAMPLES.items():
        assert parse_timestamps_ms([text] * 3).tolist() == [expected] * 3


def test_empty_batch() -> None:
    result = parse_timestamps_ms([])
    assert result.dtype == np.int64
    assert result.shape == (0,)


def test_tuples_and_single_items() -> None:
    assert parse_timestamps_ms(("1970-01-01T00:00:00.001Z",)).tolist() == [1]


def test_uniform_batch_of_the_common_shape() -> None:
    start = datetime(2012, 1, 1)
    moments = [start + timedelta(minutes=i, milliseconds=7 * i) for i in range(10_000)]
    texts = [m.isoformat(timespec="milliseconds") + "+0000" for m in moments]
    expected = [(m.replace(tzinfo=UTC) - EPOCH) // ONE_MS for m in moments]
    assert parse_timestamps_ms(texts).tolist() == expected


@pytest.mark.parametrize(
    ("texts", "index"),
    [
        (["2012-02-30"], 0),
        (["2012-01-01", "2011-02-29T00:00:00Z"], 1),
        (["2012-01-01T00:00:00Z", "2012-01-01T24:00:00Z", "bad"], 1),
        (["2012-01-01T00:00:00.000+0000"] * 5 + ["2012-01-01T00:00:00.000+0060"], 5),
        (["2012-01-01T00:00:00.000+0000"] * 5 + ["2012-01-01T00:00:00.000,0000"], 5),
        (["2012-01-01T00:00:00.1234567890"], 0),
        (["2012-01-01T00:00:00Z", ""], 1),
        (["2012-01-01T00:00:00Z", "2012-01-01T00:00:00Z\n"], 1),
        (["2012-01-01T00:00:00Z", "2012-01-01T00:00:00Z\n2012-01-01T00:00:00Z"], 1),
        (["2012-01-01T00:00:00Z", "\uff12\uff10\uff11\uff12-01-01T00:00:00Z"], 1),
        (["2012-01-01T00:00:00Z", "2012-01-01T00:00:00é"], 1),
        (["x" * 100_000, "2012-02-30"], 0),
        (["0001-01-01T00:00:00+00:01"], 0),
        (["9999-12-31T23:59:59.999-00:01"], 0),
        (["1900-02-29"], 0),
    ],
)
def test_first_bad_item_is_reported(texts: list[str], index: int) -> None:
    with pytest.raises(InvalidTimestamp) as caught:
        parse_timestamps_ms(texts)
    assert caught.value.index == index
    assert caught.value.text == texts[index]
    assert str(caught.value) == f"Invalid timestamp: {excerpt(texts[index])}"  # cut if long
    assert isinstance(caught.value, ValueError)
    assert scalar_batch(texts) == index


FIELD_ERRORS = [  # (a bad text, a good text of the same shape)
    ("2012-13-01T00:00:00.000Z", "2012-12-31T23:59:59.999Z"),
    ("2012-00-01T00:00:00.000Z", "2012-01-01T00:00:00.000Z"),
    ("2012-01-00T00:00:00.000Z", "2012-01-01T00:00:00.000Z"),
    ("2012-01-32T00:00:00.000Z", "2012-01-31T00:00:00.000Z"),
    ("2012-04-31T00:00:00.000Z", "2012-04-30T00:00:00.000Z"),
    ("2011-02-29T00:00:00.000Z", "2012-02-29T00:00:00.000Z"),
    ("2100-02-29T00:00:00.000Z", "2000-02-29T00:00:00.000Z"),
    ("0000-01-01T00:00:00.000Z", "0001-01-01T00:00:00.000Z"),
    ("2012-01-01T24:00:00.000Z", "2012-01-01T23:00:00.000Z"),
    ("2012-01-01T23:60:00.000Z", "2012-01-01T23:59:00.000Z"),
    ("2012-01-01T23:59:60.000Z", "2012-01-01T23:59:59.000Z"),
    ("2012-01-01T00:00:00.000+2400", "2012-01-01T00:00:00.000+2359"),
    ("2012-01-01T00:00:00.000+0060", "2012-01-01T00:00:00.000-0059"),
    ("2012-01-01T00:00:00.000+24:00", "2012-01-01T00:00:00.000-23:00"),
    ("2012-01-01T00:00:00.000+00:60", "2012-01-01T00:00:00.000+00:59"),
    ("2012-01-01T00:00:00.000*0000", "2012-01-01T00:00:00.000+0000"),
    ("2012-01-01X00:00:00.000Z", "2012-01-01 00:00:00.000Z"),
    ("2012-01-01T00:00:00+24", "2012-01-01T00:00:00-23"),
    ("2012-01-01T00:60", "2012-01-01T00:59"),
    ("2012-02-30", "2012-02-29"),
    ("0001-01-01T00:00:00.000+00:01", "0001-01-01T00:00:00.000-00:01"),
    ("9999-12-31T23:59:59.999-00:01", "9999-12-31T23:59:59.999+00:01"),
]


@pytest.mark.parametrize(("bad", "good"), FIELD_ERRORS)
def test_out_of_range_fields_in_uniform_batches(bad: str, good: str) -> None:
    assert len(bad) == len(good)
    assert reference_ms(bad) is None
    expected = reference_ms(good)
    assert expected is not None
    assert parse_timestamps_ms([good] * 4).tolist() == [expected] * 4
    for texts, index in (([bad] * 4, 0), ([good] * 3 + [bad] + [good] * 4, 3)):
        with pytest.raises(InvalidTimestamp) as caught:
            parse_timestamps_ms(texts)
        assert caught.value.index == index


def test_embedded_newlines_cannot_fake_a_uniform_batch() -> None:
    # The joined text has the length and the newline positions of three 20-character items.
    good = "2012-01-01T00:00:00Z"
    texts = [good, good[:-1] + "\n", good]
    assert sum(map(len, texts)) == 3 * len(good)
    with pytest.raises(InvalidTimestamp) as caught:
        parse_timestamps_ms(texts)
    assert caught.value.index == 1


@pytest.mark.parametrize(
    ("texts", "index"),
    [
        ([None], 0),
        (["2012-01-01", 5], 1),
        (["2012-01-01", b"2012-01-01"], 1),
        (["2012-01-01", "2012-13-01", None], 1),
        (["2012-01-01", 1.5, "2012-13-01"], 1),
    ],
)
def test_non_strings_are_invalid(texts: list[object], index: int) -> None:
    with pytest.raises(InvalidTimestamp) as caught:
        parse_timestamps_ms(texts)
    assert caught.value.index == index
    assert caught.value.text is texts[index]


# --- properties --------------------------------------------------------------------------


@settings(max_examples=300)
@given(st.lists(any_text, min_size=1, max_size=30))
def test_mixed_batches_match_scalar_and_reference(texts: list[str]) -> None:
    expected = reference_batch(texts)
    assert scalar_batch(texts) == expected
    assert vector_batch(texts) == expected


@settings(max_examples=200)
@given(shapes().flatmap(lambda shape: st.lists(texts_in(shape), min_size=1, max_size=40)))
def test_uniform_batches_match_scalar_and_reference(texts: list[str]) -> None:
    expected = reference_batch(texts)
    assert scalar_batch(texts) == expected
    assert vector_batch(texts) == expected


@settings(max_examples=300)
@given(any_text.flatmap(lambda text: st.tuples(st.just(text), same_length_mutants(text))))
def test_same_length_mutants(case: tuple[str, str]) -> None:
    text, mutant = case
    for batch in ([mutant], [mutant] * 7, [text] * 5 + [mutant] + [text] * 2):
        expected = reference_batch(batch)
        assert scalar_batch(batch) == expected
        assert vector_batch(batch) == expected


@settings(max_examples=300)
@given(st.lists(st.one_of(any_text, mutants()), min_size=1, max_size=20))
def test_batches_with_mutants(texts: list[str]) -> None:
    expected = reference_batch(texts)
    assert scalar_batch(texts) == expected
    assert vector_batch(texts) == expected


@given(
    st.lists(
        st.one_of(any_text, st.text(max_size=30), st.none(), st.integers(), st.binary(max_size=5)),
        min_size=1,
        max_size=10,
    )
)
def test_arbitrary_items(texts: list[object]) -> None:
    assert vector_batch(texts) == scalar_batch(texts)


@given(st.integers(MIN_MS, MAX_MS), st.sampled_from(["Z", "+0000", "+00:00", "", "-00:00"]))
def test_rendered_instants_round_trip(ms: int, suffix: str) -> None:
    moment = EPOCH + ms * ONE_MS
    text = moment.replace(tzinfo=None).isoformat(timespec="milliseconds") + suffix
    assert parse_timestamps_ms([text, text]).tolist() == [ms, ms]
