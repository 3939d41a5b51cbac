"""The Prometheus dialect's pieces on their own: the messages and their snappy framing, the
mapping of label sets to series keys, and the label matchers of remote_read."""

from __future__ import annotations

import math
import re
import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tempodb.server.http import HTTPError
from tempodb.server.prometheus import messages
from tempodb.server.prometheus.labels import (
    MAX_KEY,
    label_error,
    normalize,
    series_key,
)
from tempodb.server.prometheus.read import matcher, series_filter
from tempodb.server.prometheus.write import plan_write
from tempodb.server.wire import key_error

STALE_NAN = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]


# -- messages and snappy ---------------------------------------------------------------------


def test_write_request_bytes_are_the_protocols() -> None:
    """Field numbers and wire types as remote_write 1.0 defines them, byte for byte."""
    request = messages.WriteRequest()
    series = request.timeseries.add()
    series.labels.add(name="__name__", value="up")
    series.samples.add(value=1.0, timestamp=1_700_000_000_000)
    expected = (
        b"\x0a\x22"  # WriteRequest.timeseries (1, length-delimited), 34 bytes
        b"\x0a\x0e"  # TimeSeries.labels (1), 14 bytes
        b"\x0a\x08__name__\x12\x02up"  # Label.name (1), Label.value (2)
        b"\x12\x10"  # TimeSeries.samples (2), 16 bytes
        b"\x09"
        + struct.pack("<d", 1.0)  # Sample.value (1, 64-bit)
        + b"\x10\x80\xd0\x95\xff\xbc\x31"  # Sample.timestamp (2, varint)
    )
    assert request.SerializeToString() == expected


def test_read_request_round_trip() -> None:
    request = messages.ReadRequest()
    query = request.queries.add(start_timestamp_ms=-5, end_timestamp_ms=10)
    query.matchers.add(type=messages.NRE, name="job", value="a.*")
    request.accepted_response_types.extend([messages.STREAMED_XOR_CHUNKS, messages.SAMPLES])
    data = request.SerializeToString()
    # Query.matchers is field 3 of Query; LabelMatcher.type is field 1, an enum varint.
    assert b"\x1a\x0c\x08\x03\x12\x03job\x1a\x03a.*" in data
    back = messages.ReadRequest.FromString(data)
    assert back == request
    assert list(back.accepted_response_types) == [1, 0]


def test_view_reads_labels_as_their_bytes() -> None:
    request = messages.WriteRequest()
    series = request.timeseries.add()
    series.labels.add(name="job", value="x")
    series.samples.add(value=2.5, timestamp=7)
    view = messages.WriteRequestView.FromString(request.SerializeToString())
    (label,) = view.timeseries[0].labels
    assert messages.Label.FromString(label) == series.labels[0]
    assert view.timeseries[0].samples[0].value == 2.5


samples = st.lists(
    st.tuples(
        st.integers(-(2**63), 2**63 - 1),
        st.floats(allow_nan=False) | st.sampled_from([0.0, -0.0, math.inf, 5e-324]),
    ),
    max_size=50,
)


@given(samples)
def test_encoded_samples_read_back(points: list[tuple[int, float]]) -> None:
    ts = np.array([t for t, _ in points], np.int64)
    values = np.array([v for _, v in points], np.float64)
    series = messages.TimeSeries()
    series.MergeFromString(messages.encode_samples(ts, values))
    got = [(s.timestamp, s.value) for s in series.samples]
    assert got == points
    assert [math.copysign(1, v) for _, v in got] == [math.copysign(1, v) for _, v in points]


@given(samples)
def test_encoded_samples_are_the_librarys_bytes(points: list[tuple[int, float]]) -> None:
    """Byte for byte, where protobuf writes both fields (it leaves out a zero, proto3's
    default; both forms read the same)."""
    points = [(t, v) for t, v in points if t != 0 and v != 0]
    expected = messages.TimeSeries()
    for t, v in points:
        expected.samples.add(value=v, timestamp=t)
    ts = np.array([t for t, _ in points], np.int64)
    values = np.array([v for _, v in points], np.float64)
    assert messages.encode_samples(ts, values) == expected.SerializeToString()


@given(st.binary(max_size=5000))
def test_snappy_round_trip(data: bytes) -> None:
    block = messages.compress(data)
    assert messages.declared_length(block) == len(data)
    assert messages.decompress(block, len(data)) == data


def test_snappy_refuses_bombs_and_garbage() -> None:
    block = messages.compress(b"\0" * 1_000_000)
    assert len(block) < 50_000
    with pytest.raises(messages.SnappyTooLarge, match="more than"):
        messages.decompress(block, 999_999)
    with pytest.raises(messages.SnappyError):
        messages.decompress(b"\xff\xff\xff\xff\xff\xff", 100)
    with pytest.raises(messages.SnappyError):
        messages.decompress(b"\x10garbage", 100)


# -- label sets to keys ----------------------------------------------------------------------

label_names = st.text(min_size=1, max_size=10).filter(lambda name: name != "__name__")
label_values = st.text(min_size=1, max_size=40)
label_sets = st.dictionaries(label_names, label_values, min_size=1, max_size=5)
metric_names = st.text(min_size=1, max_size=14)


def _labels(name: str | None, others: dict[str, str]) -> list[tuple[str, str]]:
    pairs = list(others.items())
    if name is not None:
        pairs.append(("__name__", name))
    return normalize(pairs)


@given(st.none() | metric_names, label_sets, st.none() | metric_names, label_sets)
def test_distinct_label_sets_have_distinct_keys(
    name_a: str | None, a: dict[str, str], name_b: str | None, b: dict[str, str]
) -> None:
    first, second = _labels(name_a, a), _labels(name_b, b)
    assert label_error(first) is None
    assert label_error(second) is None
    key_a, key_b = series_key(first), series_key(second)
    assert key_error(key_a) is None
    assert key_error(key_b) is None
    assert (key_a == key_b) == (first == second)


@given(metric_names, label_sets)
def test_keys_are_deterministic_and_valid(name: str, labels: dict[str, str]) -> None:
    pairs = _labels(name, labels)
    reordered = normalize(list(reversed(pairs)))
    assert series_key(pairs) == series_key(reordered)
    assert len(series_key(pairs)) <= MAX_KEY


def test_keys_are_readable() -> None:
    labels = normalize([("job", "api"), ("__name__", "http_requests_total"), ("code", "200")])
    assert series_key(labels) == "http_requests_total;code:200;job:api"
    assert series_key(normalize([("__name__", "up"), ("path", "/a;b{c}")])) == (
        "up;path:/a\\3bb\\7bc\\7d"
    )


def test_long_keys_end_in_a_hash() -> None:
    a = series_key(normalize([("__name__", "m"), ("v", "x" * 300 + "a")]))
    b = series_key(normalize([("__name__", "m"), ("v", "x" * 300 + "b")]))
    assert a != b
    assert len(a) == len(b) == MAX_KEY
    assert "\\h" in a
    assert key_error(a) is None


def test_refused_label_sets() -> None:
    assert label_error([]) == "a series without labels"
    assert "twice" in (label_error([("a", "1"), ("a", "2")]) or "")
    assert label_error([("", "x")]) == "a label without a name"
    assert "longer" in (label_error([("a", "é" * 600)]) or "")
    assert normalize([("b", ""), ("a", "1")]) == [("a", "1")]
    # Names beyond the classic grammar (Prometheus 3's UTF-8 names) are taken, and kept apart.
    assert label_error([("__name__", "my.metric-é"), ("a:b", "1")]) is None
    assert series_key(normalize([("__name__", "m"), ("a:b", "c")])) == "m;a\\3ab:c"
    assert series_key(normalize([("__name__", "m"), ("a", "b:c")])) == "m;a:b:c"


def test_plan_drops_nan_and_refuses_bad_samples() -> None:
    request = messages.WriteRequest()
    good = request.timeseries.add()
    good.labels.add(name="__name__", value="m")
    good.samples.add(value=1.5, timestamp=1000)
    good.samples.add(value=STALE_NAN, timestamp=2000)
    good.samples.add(value=math.nan, timestamp=3000)
    good.samples.add(value=2.0, timestamp=2**62)  # beyond the year 9999
    bad = request.timeseries.add()
    bad.labels.add(name="__name__", value="m")
    bad.labels.add(name="__name__", value="n")
    bad.samples.add(value=1.0, timestamp=1000)
    plan = plan_write(messages.WriteRequestView.FromString(request.SerializeToString()))
    assert plan.nan == 2
    assert plan.refused == 2
    assert list(plan.batch.ts) == [1000]
    assert list(plan.batch.values) == [1.5]
    assert np.isnan(STALE_NAN)


# -- matchers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "value", "present", "absent"),
    [
        (messages.EQ, "a", {"a"}, {"", "b"}),
        (messages.EQ, "", {""}, {"a"}),  # ="" selects the series without the label
        (messages.NEQ, "a", {"", "b"}, {"a"}),
        (messages.NEQ, "", {"a"}, {""}),
        (messages.RE, "a.*", {"a", "abc"}, {"", "ba"}),  # anchored at both ends
        (messages.RE, "a|b", {"a", "b"}, {"ab", ""}),
        (messages.RE, ".*", {"", "x"}, set()),
        (messages.RE, "", {""}, {"x"}),
        (messages.NRE, "a.*", {"", "ba"}, {"a", "abc"}),
        (messages.NRE, ".+", {""}, {"x"}),
        (messages.RE, "x\n?", {"x", "x\n"}, {"x\n\n"}),
    ],
)
def test_matchers(kind: int, value: str, present: set[str], absent: set[str]) -> None:
    m = matcher(kind, "job", value)
    for text in present:
        assert m.matches({"job": text} if text else {}), text
    for text in absent:
        assert not m.matches({"job": text} if text else {}), text


def test_bad_matchers_are_400() -> None:
    with pytest.raises(HTTPError) as caught:
        matcher(messages.RE, "a", "(")
    assert caught.value.status == 400
    with pytest.raises(HTTPError):
        matcher(7, "a", "x")


def test_matchers_narrow_by_attributes_where_they_can() -> None:
    flt = series_filter(
        [
            matcher(messages.EQ, "__name__", "up"),
            matcher(messages.RE, "job", "a|b-c"),
            matcher(messages.RE, "x", "a.*"),
            matcher(messages.RE, "y", "a|"),
            matcher(messages.EQ, "z", ""),
            matcher(messages.NEQ, "w", "q"),
        ]
    )
    assert dict(flt.attributes) == {"__name__": ("up",), "job": ("a", "b-c")}
    assert re.fullmatch("(?:a|)", "") is not None  # why "a|" cannot narrow
