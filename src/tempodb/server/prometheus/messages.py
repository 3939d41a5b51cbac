"""The protobuf messages of Prometheus' remote_write 1.0 and remote_read, and their snappy
framing.

The message classes are built here, at import, from a ``FileDescriptorProto`` that this module
writes field by field from the protocol's field numbers (``prompb``'s ``types.proto`` and
``remote.proto`` as Prometheus documents them); no ``.proto`` file and no generated code is
involved.  Only the fields tempodb reads or answers are declared; the others (exemplars,
metadata, hints, chunks) are skipped by the parser as unknown fields, as protobuf allows.
``TimeSeries.histograms`` (native histograms, field 4) is declared as opaque ``bytes``:
a length-delimited field reads the same either way, and the write path only counts them (it
stores float samples only).

Wire shapes::

    WriteRequest  { repeated TimeSeries timeseries = 1; }
    TimeSeries    { repeated Label labels = 1; repeated Sample samples = 2;
                    repeated bytes histograms = 4; }
    Label         { string name = 1; string value = 2; }
    Sample        { double value = 1; int64 timestamp = 2; }   // timestamp: epoch ms
    ReadRequest   { repeated Query queries = 1; repeated ResponseType accepted_response_types = 2; }
    Query         { int64 start_timestamp_ms = 1; int64 end_timestamp_ms = 2;
                    repeated LabelMatcher matchers = 3; }
    LabelMatcher  { Type type = 1; string name = 2; string value = 3; }  // EQ, NEQ, RE, NRE
    ReadResponse  { repeated QueryResult results = 1; }
    QueryResult   { repeated TimeSeries timeseries = 1; }

``WriteRequestView`` reads a ``WriteRequest`` with each ``Label`` left as its encoded bytes
(same field numbers, ``bytes`` instead of the message), for the write path's cache.

``encode_samples`` writes the ``samples`` of a ``TimeSeries`` for many samples at once with
numpy (a read answer is mostly samples, and building one message object per sample costs
ten times more); the result is parsed by the message classes like any other bytes
(``TimeSeries.MergeFromString``), and a test checks it against them.

Bodies, both ways, are the snappy *block* format (not the framed stream format):
``decompress`` checks the length the block declares against a limit before inflating it.
"""

from __future__ import annotations

from typing import Any

import cramjam
import numpy as np
import numpy.typing as npt
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError

__all__ = [
    "EQ",
    "NEQ",
    "NRE",
    "RE",
    "SAMPLES",
    "STREAMED_XOR_CHUNKS",
    "DecodeError",
    "Label",
    "LabelMatcher",
    "Query",
    "QueryResult",
    "ReadRequest",
    "ReadResponse",
    "Sample",
    "SnappyError",
    "SnappyTooLarge",
    "TimeSeries",
    "WriteRequest",
    "WriteRequestView",
    "compress",
    "decompress",
    "encode_samples",
]

PACKAGE = "tempodb.prometheus"
_F = descriptor_pb2.FieldDescriptorProto

#: LabelMatcher.Type
EQ, NEQ, RE, NRE = 0, 1, 2, 3
#: ReadRequest.ResponseType
SAMPLES, STREAMED_XOR_CHUNKS = 0, 1


def _field(number: int, name: str, kind: int, *, repeated: bool = False, of: str = "") -> Any:
    field = _F(name=name, number=number, type=kind)
    field.label = _F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL
    if of:
        field.type_name = f".{PACKAGE}.{of}"
    return field


def _file() -> descriptor_pb2.FileDescriptorProto:
    """The descriptor of the messages, from the protocol's field numbers."""
    proto = descriptor_pb2.FileDescriptorProto(
        name="tempodb/prometheus_remote.proto", package=PACKAGE, syntax="proto3"
    )
    msg, enum = _F.TYPE_MESSAGE, _F.TYPE_ENUM
    shapes: dict[str, list[Any]] = {
        "Sample": [_field(1, "value", _F.TYPE_DOUBLE), _field(2, "timestamp", _F.TYPE_INT64)],
        "Label": [_field(1, "name", _F.TYPE_STRING), _field(2, "value", _F.TYPE_STRING)],
        "TimeSeries": [
            _field(1, "labels", msg, repeated=True, of="Label"),
            _field(2, "samples", msg, repeated=True, of="Sample"),
            _field(4, "histograms", _F.TYPE_BYTES, repeated=True),
        ],
        "WriteRequest": [_field(1, "timeseries", msg, repeated=True, of="TimeSeries")],
        "LabelMatcher": [
            _field(1, "type", enum, of="LabelMatcher.Type"),
            _field(2, "name", _F.TYPE_STRING),
            _field(3, "value", _F.TYPE_STRING),
        ],
        "Query": [
            _field(1, "start_timestamp_ms", _F.TYPE_INT64),
            _field(2, "end_timestamp_ms", _F.TYPE_INT64),
            _field(3, "matchers", msg, repeated=True, of="LabelMatcher"),
        ],
        "ReadRequest": [
            _field(1, "queries", msg, repeated=True, of="Query"),
            _field(
                2, "accepted_response_types", enum, repeated=True, of="ReadRequest.ResponseType"
            ),
        ],
        "QueryResult": [_field(1, "timeseries", msg, repeated=True, of="TimeSeries")],
        "ReadResponse": [_field(1, "results", msg, repeated=True, of="QueryResult")],
        # The same wire shape as TimeSeries and WriteRequest, with each label left as its
        # encoded bytes: the write path maps a label set once and recognises it afterwards by
        # those bytes, without building a Python string per label (``Label.FromString``
        # reads them on a miss).
        "TimeSeriesView": [
            _field(1, "labels", _F.TYPE_BYTES, repeated=True),
            _field(2, "samples", msg, repeated=True, of="Sample"),
            _field(4, "histograms", _F.TYPE_BYTES, repeated=True),
        ],
        "WriteRequestView": [_field(1, "timeseries", msg, repeated=True, of="TimeSeriesView")],
    }
    enums = {
        "LabelMatcher": ("Type", ["EQ", "NEQ", "RE", "NRE"]),
        "ReadRequest": ("ResponseType", ["SAMPLES", "STREAMED_XOR_CHUNKS"]),
    }
    for name, fields in shapes.items():
        message = proto.message_type.add(name=name)
        message.field.extend(fields)
        if name in enums:
            enum_name, values = enums[name]
            nested = message.enum_type.add(name=enum_name)
            for number, value in enumerate(values):
                nested.value.add(name=value, number=number)
    return proto


def _classes() -> dict[str, Any]:
    pool = descriptor_pool.DescriptorPool()
    pool.Add(_file())
    names = ["Sample", "Label", "TimeSeries", "WriteRequest", "LabelMatcher", "Query"]
    names += ["ReadRequest", "QueryResult", "ReadResponse", "TimeSeriesView", "WriteRequestView"]
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{PACKAGE}.{name}"))
        for name in names
    }


_CLASSES = _classes()
Sample: Any = _CLASSES["Sample"]
Label: Any = _CLASSES["Label"]
TimeSeries: Any = _CLASSES["TimeSeries"]
WriteRequest: Any = _CLASSES["WriteRequest"]
LabelMatcher: Any = _CLASSES["LabelMatcher"]
Query: Any = _CLASSES["Query"]
ReadRequest: Any = _CLASSES["ReadRequest"]
QueryResult: Any = _CLASSES["QueryResult"]
ReadResponse: Any = _CLASSES["ReadResponse"]
TimeSeriesView: Any = _CLASSES["TimeSeriesView"]
WriteRequestView: Any = _CLASSES["WriteRequestView"]


class SnappyError(ValueError):
    """A body that is not snappy's block format, or that would inflate past the limit."""


class SnappyTooLarge(SnappyError):
    """A snappy block that declares more bytes than the limit."""


def declared_length(block: bytes) -> int:
    """The uncompressed length a snappy block declares (its leading varint)."""
    length = shift = 0
    for at in range(min(len(block), 5)):
        byte = block[at]
        length |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return length
        shift += 7
    raise SnappyError("not a snappy block: its length header is malformed")


def decompress(block: bytes, limit: int) -> bytes:
    """The bytes of a snappy block, refused (``SnappyError``) when it declares more than
    ``limit`` bytes or is malformed."""
    length = declared_length(block)
    if length > limit:
        raise SnappyTooLarge(f"the snappy block declares {length} bytes, more than {limit}")
    try:
        return bytes(cramjam.snappy.decompress_raw(block))
    except Exception as exc:  # cramjam raises its own DecompressionError
        raise SnappyError(f"not a valid snappy block: {exc}") from None


def compress(data: bytes) -> bytes:
    """``data`` as one snappy block."""
    return bytes(cramjam.snappy.compress_raw(data))


#: TimeSeries.samples (field 2, length-delimited), Sample.value (field 1, 64-bit) and
#: Sample.timestamp (field 2, varint): the tags as they are written.
_SAMPLES_TAG, _VALUE_TAG, _TIMESTAMP_TAG = 0x12, 0x09, 0x10


def encode_samples(ts: npt.NDArray[np.int64], values: npt.NDArray[np.float64]) -> bytes:
    """The ``samples`` field of a ``TimeSeries``, one ``Sample`` per (timestamp, value):
    ``0x12 len 0x09 <value, 8 bytes little-endian> 0x10 <timestamp, varint>`` each (a
    negative timestamp is the 10-byte varint of its two's complement, as protobuf writes an
    int64)."""
    count = len(ts)
    if count == 0:
        return b""
    unsigned = np.ascontiguousarray(ts, np.int64).view(np.uint64)
    width = np.ones(count, np.int64)  # varint bytes of each timestamp
    for shift in range(7, 64, 7):
        width += (unsigned >> np.uint64(shift)) != 0
    size = 12 + width  # tag, length, value tag, 8 value bytes, timestamp tag, varint
    starts = np.zeros(count, np.int64)
    np.cumsum(size[:-1], out=starts[1:])
    out = np.zeros(int(starts[-1] + size[-1]), np.uint8)
    out[starts] = _SAMPLES_TAG
    out[starts + 1] = size - 2
    out[starts + 2] = _VALUE_TAG
    raw = np.ascontiguousarray(values, "<f8").view(np.uint8).reshape(count, 8)
    out[(starts + 3)[:, None] + np.arange(8)] = raw
    out[starts + 11] = _TIMESTAMP_TAG
    for byte in range(10):
        present = width > byte
        if not present.any():
            break
        part = (unsigned[present] >> np.uint64(7 * byte)) & np.uint64(0x7F)
        more = (width[present] > byte + 1).astype(np.uint64) << np.uint64(7)
        out[starts[present] + 12 + byte] = (part | more).astype(np.uint8)
    return out.tobytes()
