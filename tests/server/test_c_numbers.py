"""The C body scanner's numbers against correctly rounded conversion: Python's ``float(text)``
rounds every decimal correctly, so each value must be its exact double, bit for bit.  Decimals
of 16 and 17 significant digits are where a fast path that multiplies by a power of ten rounds
twice and gets the last bit wrong."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tempodb import _speedups


@st.composite
def long_decimals(draw: st.DrawFn) -> str:
    """``[-]D.DDD...[e±X]`` or ``[-]DDD.DDD``: 16 or 17 significant digits, a point always
    (a whole number without one is parsed as an exact integer elsewhere)."""
    digits = draw(st.sampled_from([16, 17]))
    mantissa = str(draw(st.integers(10 ** (digits - 1), 10**digits - 1)))
    point = draw(st.integers(1, digits - 1))
    sign = draw(st.sampled_from(["", "-"]))
    exponent = draw(st.one_of(st.just(""), st.integers(-300, 290).map(lambda e: f"e{e}")))
    return f"{sign}{mantissa[:point]}.{mantissa[point:]}{exponent}"


def bits(values: list[float]) -> list[int]:
    return np.array(values, np.float64).view(np.uint64).tolist()


@settings(max_examples=500, deadline=None)
@given(st.lists(long_decimals(), min_size=1, max_size=8))
def test_c_scanner_rounds_16_and_17_digit_decimals_correctly(texts: list[str]) -> None:
    body = ",".join(
        f'{{"t":"2012-01-01T00:00:{i:02d}.000Z","v":{text}}}' for i, text in enumerate(texts)
    )
    scanned = _speedups.parse_points(f"[{body}]".encode())
    assert scanned is not None  # plain numbers: the scanner takes them itself
    _, values, is_int = scanned
    parsed = np.frombuffer(values, np.float64).tolist()
    assert bits(parsed) == bits([float(text) for text in texts]), texts
    assert not np.frombuffer(is_int, np.bool_).any()


def test_known_hard_cases() -> None:
    """Decimals whose nearest double a one-multiplication fast path misses."""
    texts = [
        "9007199254740993.0",  # 2^53 + 1: halfway, to even
        "0.1000000000000000055511151231257827",
        "8.988465674311579e307",
        "1.7976931348623157e308",
        "7.2057594037927933e16",
        "1.0000000000000002",
        "3.0000000000000004",
        "123456789012345.67",
        "0.30000000000000004",
    ]
    body = ",".join(
        f'{{"t":"2012-01-01T00:00:{i:02d}.000Z","v":{text}}}' for i, text in enumerate(texts)
    )
    scanned = _speedups.parse_points(f"[{body}]".encode())
    assert scanned is not None
    parsed = np.frombuffer(scanned[1], np.float64).tolist()
    assert bits(parsed) == bits([float(text) for text in texts])


def test_subnormals_are_right_or_left_to_the_general_path() -> None:
    for text in ("2.2250738585072011e-308", "4.9406564584124654e-324", "1e-310"):
        scanned = _speedups.parse_points(b'[{"t":"2012-01-01","v":%s}]' % text.encode())
        if scanned is not None:
            assert bits(np.frombuffer(scanned[1], np.float64).tolist()) == bits([float(text)])
