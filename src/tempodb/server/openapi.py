"""The OpenAPI 3.1 document, built from the one route table (``routes.TABLE``): the v1 API,
Prometheus' remote storage routes (``PROMETHEUS_PATHS``: protobuf bodies in snappy, described
in docs/prometheus.md) and the document itself; the routes marked ``documented=False`` (the
InfluxDB dialect, ``/healthz``, ``/metrics``, ``/ui/``) are left out.

Every documented route and method must have an entry here (``OPERATIONS`` for v1,
``PROMETHEUS_PATHS``, ``PUBLIC_PATHS``): ``document()`` raises ``KeyError`` for one that has
none, so a new route cannot go undocumented.  The server
serves the document without credentials at ``GET /v1/openapi.json``.

What the document states, as the server does it (``docs/tempodb-v1-api.md``): errors are plain
text with the status of §6 and an ``X-TempoDB-Error`` code; an unknown series is ``403`` (not
404); partly invalid multi writes, and bulk series creations (``POST /v1/series/`` with an array)
that refuse some series, answer ``207`` with a multistatus; values may be JSON numbers,
booleans (1/0) or strings that spell a finite number.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import orjson

from tempodb.contract import (
    DIRECTIONS,
    ERROR_CODE_HEADER,
    KEY_PATTERN,
    MAX_KEY_LENGTH,
    __version__,
)
from tempodb.server.routes import API_PREFIX, TABLE

JSONObject = dict[str, Any]

#: Series keys and ids in paths and bodies (``contract.KEY_PATTERN``).
KEY_SCHEMA: JSONObject = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_KEY_LENGTH,
    "pattern": f"^{KEY_PATTERN}$",
}
TIMESTAMP: JSONObject = {
    "type": "string",
    "description": "ISO 8601, e.g. 2012-01-01T00:00:00.000+0000; no offset means UTC",
    "examples": ["2012-01-01T00:00:00Z"],
}
VALUE: JSONObject = {
    "description": "a number (integers up to 2^53 in magnitude), a boolean (1/0) or a string "
    "that spells a finite number",
    "oneOf": [{"type": "number"}, {"type": "boolean"}, {"type": "string"}],
}
#: A number read back; null where a sum overflows float64 (beyond about 1.8e308).
NUMBER: JSONObject = {"type": ["number", "null"]}


def _multistatus(**more: JSONObject) -> JSONObject:
    """A 207 body: an entry per element of the request (its status and messages, and ``more``)."""
    entry = {
        "type": "object",
        "required": ["status", "messages"],
        "properties": {
            "status": {"type": "string", "enum": ["200", "409", "422"]},
            "messages": {"type": "array", "items": {"type": "string"}},
            **more,
        },
    }
    return {
        "type": "object",
        "required": ["multistatus"],
        "properties": {"multistatus": {"type": "array", "items": entry}},
    }


SCHEMAS: JSONObject = {
    "Series": {
        "type": "object",
        "required": ["id", "key", "name", "tags", "attributes"],
        "properties": {
            "id": {"type": "string"},
            "key": {"type": "string"},
            "name": {"type": "string"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "attributes": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    },
    "DataPoint": {
        "type": "object",
        "required": ["t", "v"],
        "properties": {"t": {"type": "string"}, "v": NUMBER},
    },
    "Summary": {
        "type": "object",
        "description": "over the raw points of the range; {} when there are none",
        "properties": dict.fromkeys(("sum", "mean", "max", "min", "stddev", "ss", "count"), NUMBER),
    },
    "DataSet": {
        "type": "object",
        "required": ["series", "start", "end", "data", "rollup", "summary"],
        "properties": {
            "series": {"$ref": "#/components/schemas/Series"},
            "start": {"type": "string"},
            "end": {"type": "string"},
            "data": {"type": "array", "items": {"$ref": "#/components/schemas/DataPoint"}},
            "rollup": {
                "oneOf": [
                    {"type": "null"},
                    {
                        "type": "object",
                        "required": ["interval", "function", "tz"],
                        "properties": {
                            "interval": {"type": "string"},
                            "function": {"type": "string"},
                            "tz": {"type": "string"},
                        },
                    },
                ]
            },
            "summary": {"$ref": "#/components/schemas/Summary"},
            "tier": {
                "description": "Present when part of the range was answered from the "
                "15-minute tier: raw data begins at until (docs/tempodb-v1-api.md 5.11)",
                "type": "object",
                "required": ["interval", "until", "points"],
                "properties": {
                    "interval": {"type": "string"},
                    "until": {"type": "string"},
                    "points": {"type": "integer"},
                },
            },
        },
    },
    "SingleValue": {
        "type": "object",
        "required": ["series", "data"],
        "properties": {
            "series": {"$ref": "#/components/schemas/Series"},
            "data": {"oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/DataPoint"}]},
        },
    },
    "DeleteSummary": {
        "type": "object",
        "required": ["deleted"],
        "properties": {"deleted": {"type": "integer", "minimum": 0}},
    },
    "Multistatus": _multistatus(),
    "SeriesMultistatus": {
        **_multistatus(series={"$ref": "#/components/schemas/Series"}),
        "description": "one entry per series of the request, in order: 200 created (with the "
        "series), 409 its key exists (or an earlier series of the request has it), 422 invalid",
    },
    "NewDatabase": {
        "type": "object",
        "required": ["id", "password"],
        "properties": {"id": {"type": "string"}, "password": {"type": "string"}},
    },
    "SeriesIn": {
        "type": "object",
        "properties": {
            "key": KEY_SCHEMA,
            "name": {"type": "string"},
            "tags": {"type": "array", "items": {"type": "string", "minLength": 1}},
            "attributes": {
                "type": "object",
                "additionalProperties": {"type": ["string", "number", "boolean"]},
            },
        },
    },
    "PointIn": {
        "type": "object",
        "required": ["v"],
        "properties": {"t": TIMESTAMP, "v": VALUE},
    },
    "BulkIn": {
        "type": "object",
        "required": ["data"],
        "properties": {
            "t": TIMESTAMP,
            "data": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["v"],
                    "properties": {"id": KEY_SCHEMA, "key": KEY_SCHEMA, "v": VALUE},
                },
            },
        },
    },
    "MultiIn": {
        "type": "object",
        "properties": {"t": TIMESTAMP, "id": KEY_SCHEMA, "key": KEY_SCHEMA, "v": VALUE},
    },
    "DatabaseIn": {"type": "object", "properties": {"name": {"type": "string"}}},
    "RetentionIn": {
        "type": "object",
        "properties": {
            "retention": {"type": ["string", "null"]},
            "tier_retention": {"type": ["string", "null"]},
        },
    },
    "Retention": {
        "type": "object",
        "required": ["key", "retention", "tier_retention"],
        "properties": {
            "key": {"type": "string"},
            "retention": {"type": "string"},
            "tier_retention": {"type": "string"},
        },
    },
}


def _ref(name: str) -> JSONObject:
    return {"$ref": f"#/components/schemas/{name}"}


def _query(name: str, schema: JSONObject, description: str, required: bool = False) -> JSONObject:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": schema,
    }


_STRING: JSONObject = {"type": "string"}
_STRINGS: JSONObject = {"type": "array", "items": {"type": "string"}}
PARAMETERS: dict[str, JSONObject] = {
    "field": {
        "name": "field",
        "in": "path",
        "required": True,
        "description": "address the series by its id or by its key",
        "schema": {"type": "string", "enum": ["id", "key"]},
    },
    "value": {
        "name": "value",
        "in": "path",
        "required": True,
        "description": "the id or key, percent-encoded (%2F for a slash)",
        "schema": KEY_SCHEMA,
    },
    "start": _query("start", TIMESTAMP, "start of the range (inclusive)", True),
    "end": _query("end", TIMESTAMP, "end of the range (exclusive)", True),
    "interval": _query("interval", _STRING, "rollup interval: 1hour, PT6H, raw, ..."),
    "function": _query("function", _STRING, "rollup function: mean, sum, max, min, count, ..."),
    "tz": _query("tz", _STRING, "time zone of buckets and timestamps: UTC, America/Chicago"),
    "ts": _query("ts", TIMESTAMP, "the timestamp to look at (default: now)"),
    "direction": _query(
        "direction",
        {"type": "string", "enum": list(DIRECTIONS)},
        "which point to take around ts",
    ),
    "id": _query("id", _STRINGS, "series ids (any of)"),
    "key": _query("key", _STRINGS, "series keys (any of)"),
    "tag": _query("tag", _STRINGS, "tags (all of)"),
    "attr": {
        "name": "attr",
        "in": "query",
        "style": "deepObject",
        "explode": True,
        "description": "attr[NAME]=VALUE: attributes (all of)",
        "schema": {"type": "object", "additionalProperties": {"type": "string"}},
    },
    "allow_truncation": _query(
        "allow_truncation",
        {"type": "string", "enum": ["true", "false"]},
        "true: delete every series when no filter is given",
    ),
    "idempotency_key": {
        "name": "Idempotency-Key",
        "in": "header",
        "required": False,
        "description": 'a fresh key per request, the same with its retries ("..." or a bare '
        "token, 1-255 printable ASCII characters): the write is applied at most once per key "
        "and database; a retry gets the first answer again, with Idempotent-Replayed: true",
        "schema": {"type": "string", "minLength": 1, "maxLength": 257},
    },
}
FILTERS = ("id", "key", "tag", "attr")

_ERROR_TEXT: JSONObject = {"text/plain": {"schema": {"type": "string", "minLength": 1}}}
_ERROR_HEADERS: JSONObject = {
    ERROR_CODE_HEADER: {"description": "the error code", "schema": {"type": "string"}}
}
_RETRY_HEADERS: JSONObject = {
    **_ERROR_HEADERS,
    "Retry-After": {"description": "seconds to wait", "schema": {"type": "string"}},
}
ERRORS: dict[str, str] = {
    "400": "invalid request (nothing was written)",
    "401": "no credentials",
    "403": "wrong credentials, or the series does not exist",
    "404": "unknown route",
    "409": "a series with this key exists already, or a request with the same "
    "Idempotency-Key is being applied",
    "422": "the Idempotency-Key was used with another request (nothing was written)",
    "413": "request body too large",
    "415": "unsupported Content-Encoding",
    "429": "rate limit of this key reached",
    "503": "server busy (nothing was done)",
}
#: Errors of every route: the others are added where they can happen.
COMMON_ERRORS = ("400", "401", "403", "404", "429", "503")
BODY_ERRORS = ("413", "415")


@dataclass(frozen=True)
class Operation:
    summary: str
    parameters: tuple[str, ...] = ()
    body: JSONObject | None = None
    response: JSONObject | None = None  # the 200 JSON body; None: an empty 200
    extra: tuple[str, ...] = ()  # statuses beyond COMMON_ERRORS (and BODY_ERRORS with a body)
    multistatus: str = "Multistatus"  # the schema of a 207 body
    partly: str = "some elements were invalid; the valid ones were written"  # what 207 means


def _array(schema: JSONObject) -> JSONObject:
    return {"type": "array", "items": schema}


_READ = ("start", "end", "interval", "function", "tz")
_KEYED = ("idempotency_key",)
_SINGLE = ("ts", "direction", "tz")
_ONE = ("field", "value")

#: (route pattern, method) -> what it does.
OPERATIONS: dict[tuple[tuple[str, ...], str], Operation] = {
    (("series",), "GET"): Operation("List series", FILTERS, None, _array(_ref("Series"))),
    (("series",), "POST"): Operation(
        "Create a series, or several with an array (at most 10,000 by default; 400 beyond, "
        "nothing created)",
        (),
        {"oneOf": [_ref("SeriesIn"), _array(_ref("SeriesIn"))]},
        {"oneOf": [_ref("Series"), _array(_ref("Series"))]},
        ("207", "409"),
        multistatus="SeriesMultistatus",
        partly="some series were refused (409, 422); the others were created",
    ),
    (("series",), "DELETE"): Operation(
        "Delete series", (*FILTERS, "allow_truncation"), None, _ref("DeleteSummary")
    ),
    (("series", "{field}", "{value}"), "GET"): Operation(
        "Get a series", _ONE, None, _ref("Series")
    ),
    (("series", "{field}", "{value}"), "PUT"): Operation(
        "Update a series (name, tags, attributes)", _ONE, _ref("SeriesIn"), _ref("Series")
    ),
    (("series", "{field}", "{value}", "data"), "GET"): Operation(
        "Read a series", (*_ONE, *_READ), None, _ref("DataSet")
    ),
    (("series", "{field}", "{value}", "data"), "POST"): Operation(
        "Write points to a series (created when missing)",
        (*_ONE, "idempotency_key"),
        _array(_ref("PointIn")),
        None,
        ("409", "422"),
    ),
    (("series", "{field}", "{value}", "data"), "DELETE"): Operation(
        "Delete the points of [start, end)", (*_ONE, "start", "end")
    ),
    (("series", "{field}", "{value}", "increment"), "POST"): Operation(
        "Add to the points of a series",
        (*_ONE, "idempotency_key"),
        _array(_ref("PointIn")),
        None,
        ("409", "422"),
    ),
    (("series", "{field}", "{value}", "single"), "GET"): Operation(
        "One value of a series", (*_ONE, *_SINGLE), None, _ref("SingleValue")
    ),
    (("data",), "GET"): Operation(
        "Read the matching series", (*_READ, *FILTERS), None, _array(_ref("DataSet"))
    ),
    (("data",), "POST"): Operation(
        "Write one timestamp to several series", _KEYED, _ref("BulkIn"), None, ("409", "422")
    ),
    (("increment",), "POST"): Operation(
        "Add at one timestamp to several series", _KEYED, _ref("BulkIn"), None, ("409", "422")
    ),
    (("multi",), "POST"): Operation(
        "Write points to several series",
        _KEYED,
        _array(_ref("MultiIn")),
        None,
        ("207", "409", "422"),
    ),
    (("multi", "increment"), "POST"): Operation(
        "Add to points of several series",
        _KEYED,
        _array(_ref("MultiIn")),
        None,
        ("207", "409", "422"),
    ),
    (("single",), "GET"): Operation(
        "One value of each matching series", (*_SINGLE, *FILTERS), None, _array(_ref("SingleValue"))
    ),
    (("database",), "POST"): Operation(
        "Create a database (administrator keys only)",
        (),
        _ref("DatabaseIn"),
        _ref("NewDatabase"),
    ),
    (("database", "{value}", "retention"), "GET"): Operation(
        "A database's retention, by its key (administrator keys only)",
        ("value",),
        None,
        _ref("Retention"),
    ),
    (("database", "{value}", "retention"), "PUT"): Operation(
        "Set a database's retention, by its key (administrator keys only)",
        ("value",),
        _ref("RetentionIn"),
        _ref("Retention"),
    ),
}


# -- the 1.0 reads (issue 16; docs/tempodb-1.0-api.md) ---------------------------------------

_NULL_OR_OBJECT: JSONObject = {"type": ["object", "null"]}
_BY_NAME: JSONObject = {"type": "object", "additionalProperties": NUMBER}
_SHAPE = {"rollup": _NULL_OR_OBJECT, "interpolation": _NULL_OR_OBJECT, "tz": _STRING}
SCHEMAS.update(
    {
        "Segment": {
            "type": "object",
            "required": ["series", "rollup", "interpolation", "tz", "data"],
            "properties": {"series": _ref("Series"), **_SHAPE, "data": _array(_ref("DataPoint"))},
        },
        "RollupsSegment": {
            "type": "object",
            "required": ["series", "rollup", "tz", "data"],
            "properties": {
                "series": _ref("Series"),
                "rollup": {"type": "object"},
                "tz": _STRING,
                "data": _array({"type": "object", "properties": {"t": _STRING, "v": _BY_NAME}}),
            },
        },
        "SeriesSummary": {
            "type": "object",
            "required": ["series", "summary", "tz", "start", "end"],
            "properties": {
                "series": _ref("Series"),
                "summary": {
                    "type": "object",
                    "required": ["count", "sum", "mean", "min", "max", "stddev"],
                    "properties": dict.fromkeys(
                        ("count", "sum", "mean", "min", "max", "stddev"), NUMBER
                    ),
                },
                "tz": _STRING,
                "start": _STRING,
                "end": _STRING,
            },
        },
        "FindSegment": {
            "type": "object",
            "required": ["series", "predicate", "tz", "data"],
            "properties": {
                "series": _ref("Series"),
                "predicate": {"type": "object"},
                "tz": _STRING,
                "data": _array(
                    {
                        "type": "object",
                        "required": ["interval", "found"],
                        "properties": {
                            "interval": {
                                "type": "object",
                                "properties": {"start": _STRING, "end": _STRING},
                            },
                            "found": _ref("DataPoint"),
                        },
                    }
                ),
            },
        },
        "AggregateSegment": {
            "type": "object",
            "required": ["aggregation", "rollup", "interpolation", "tz", "data"],
            "properties": {
                "aggregation": {"type": "object"},
                **_SHAPE,
                "data": _array(_ref("DataPoint")),
            },
        },
        "MultiSegment": {
            "type": "object",
            "required": ["series", "rollup", "interpolation", "tz", "data"],
            "properties": {
                "series": _array(_ref("Series")),
                **_SHAPE,
                "data": _array({"type": "object", "properties": {"t": _STRING, "v": _BY_NAME}}),
            },
        },
    }
)
_FOLD = "sum, mult, min, max, mean (avg), count, stddev, ss, range, first, last, percentile,N"
_PERIOD = "ISO 8601 period (PT5M, PT1H, P1D, P1M) or 5min, 1hour, 1day"
PARAMETERS.update(
    {
        "limit": _query(
            "limit", {"type": "integer", "minimum": 1}, "page size (Link: rel=next follows)"
        ),
        "cursor": _query("cursor", _STRING, "the continuation token of a Link rel=next"),
        "rollup.fold": _query("rollup.fold", _STRING, f"rollup fold: {_FOLD}"),
        "rollup.folds": _query("rollup.fold", _STRINGS, f"rollup folds: {_FOLD}", True),
        "rollup.period": _query("rollup.period", _STRING, f"rollup period: {_PERIOD}"),
        "rollup.period!": _query("rollup.period", _STRING, f"rollup period: {_PERIOD}", True),
        "interpolation.function": _query(
            "interpolation.function",
            {"type": "string", "enum": ["zoh", "linear"]},
            "resample onto a grid first (with interpolation.period)",
        ),
        "interpolation.period": _query("interpolation.period", _STRING, f"grid: {_PERIOD}"),
        "predicate.function": _query(
            "predicate.function",
            {"type": "string", "enum": ["max", "min", "first", "last"]},
            "the point to find in each interval",
            True,
        ),
        "predicate.period": _query("predicate.period", _STRING, f"interval: {_PERIOD}", True),
        "aggregation.fold": _query(
            "aggregation.fold", _STRING, f"fold across series: {_FOLD}", True
        ),
    }
)
_PAGE = ("start", "end", "tz", "limit", "cursor")
_SHAPED = (*_PAGE, "rollup.fold", "rollup.period", "interpolation.function", "interpolation.period")
_SEGMENT = Operation("Read a segment of a series (paged)", (*_ONE, *_SHAPED), None, _ref("Segment"))
_AGGREGATE = Operation(
    "Fold the matching series into one (paged)",
    (*_SHAPED, "aggregation.fold", *FILTERS),
    None,
    _ref("AggregateSegment"),
)
OPERATIONS.update(
    {
        (("series",), "GET"): Operation(
            "List series (paged with limit)",
            (*FILTERS, "limit", "cursor"),
            None,
            _array(_ref("Series")),
        ),
        (("series", "{field}", "{value}"), "DELETE"): Operation("Delete one series", _ONE),
        (("series", "{field}", "{value}", "segment"), "GET"): _SEGMENT,
        (("series", "{field}", "{value}", "data", "segment"), "GET"): _SEGMENT,
        (("series", "{field}", "{value}", "data", "rollups", "segment"), "GET"): Operation(
            "Several rollup folds per bucket (paged)",
            (*_ONE, *_PAGE, "rollup.folds", "rollup.period!"),
            None,
            _ref("RollupsSegment"),
        ),
        (("series", "{field}", "{value}", "summary"), "GET"): Operation(
            "Summary of a range", (*_ONE, "start", "end", "tz"), None, _ref("SeriesSummary")
        ),
        (("series", "{field}", "{value}", "find"), "GET"): Operation(
            "The point a function picks in each interval (paged)",
            (*_ONE, *_PAGE, "predicate.function", "predicate.period"),
            None,
            _ref("FindSegment"),
        ),
        (("segment",), "GET"): _AGGREGATE,
        (("data", "segment"), "GET"): _AGGREGATE,
        (("multi",), "GET"): Operation(
            "The matching series side by side (paged)",
            (*_SHAPED, *FILTERS),
            None,
            _ref("MultiSegment"),
        ),
    }
)


def path_of(pattern: tuple[str, ...]) -> str:
    """``("series", "{field}", "{value}")`` -> ``/v1/series/{field}/{value}/``."""
    return f"/{API_PREFIX}/{'/'.join(pattern)}/"


def _responses(operation: Operation) -> JSONObject:
    responses: JSONObject = {}
    if operation.response is None:
        responses["200"] = {"description": "done (empty body)"}
    else:
        responses["200"] = {
            "description": "OK",
            "content": {"application/json": {"schema": operation.response}},
        }
    statuses = [*COMMON_ERRORS, *operation.extra]
    if operation.body is not None:
        statuses += BODY_ERRORS
    for status in sorted(set(statuses)):
        if status == "207":
            responses[status] = {
                "description": operation.partly,
                "content": {"application/json": {"schema": _ref(operation.multistatus)}},
            }
            continue
        retry = status in ("429", "503")
        responses[status] = {
            "description": ERRORS[status],
            "headers": _RETRY_HEADERS if retry else _ERROR_HEADERS,
            "content": _ERROR_TEXT,
        }
    return responses


def _operation(pattern: tuple[str, ...], method: str, operation: Operation) -> JSONObject:
    result: JSONObject = {
        "operationId": f"{method.lower()}_{'_'.join(p.strip('{}') for p in pattern)}",
        "summary": operation.summary,
        "parameters": [PARAMETERS[name] for name in operation.parameters],
        "responses": _responses(operation),
    }
    if operation.body is not None:
        result["requestBody"] = {
            "required": False,
            "content": {"application/json": {"schema": operation.body}},
        }
    return result


_PROTOBUF: JSONObject = {
    "application/x-protobuf": {
        "schema": {"type": "string", "format": "binary"},
    }
}
_SNAPPY_HEADER: JSONObject = {
    "name": "Content-Encoding",
    "in": "header",
    "required": False,
    "description": "snappy (as Prometheus sends it): the body is one snappy block either way",
    "schema": {"type": "string", "enum": ["snappy"]},
}


def _prometheus_errors(*statuses: str) -> JSONObject:
    return {
        status: {
            "description": PROMETHEUS_ERRORS[status],
            "headers": _RETRY_HEADERS if status in ("429", "503") else _ERROR_HEADERS,
            "content": _ERROR_TEXT,
        }
        for status in statuses
    }


PROMETHEUS_ERRORS: dict[str, str] = {
    **ERRORS,
    "400": "not a snappy-compressed protobuf request, or a bad matcher (nothing was done); "
    "for a write also: some series or samples refused, the others stored (the message counts "
    "them)",
    "415": "remote write 2.0, or an unsupported Content-Encoding",
    "503": "server busy, the store failed or the key's rate limit reached (nothing was "
    "acknowledged): send it again",
}

#: The Prometheus routes' operations, by path and method (docs/prometheus.md).
PROMETHEUS_PATHS: JSONObject = {
    "/api/v1/write": {
        "post": {
            "operationId": "prometheus_remote_write",
            "summary": "Prometheus remote_write 1.0: a snappy-compressed protobuf WriteRequest "
            "(NaN samples and staleness markers are dropped, counted in X-TempoDB-Dropped-NaN)",
            "parameters": [_SNAPPY_HEADER],
            "requestBody": {"required": True, "content": _PROTOBUF},
            "responses": {
                "204": {"description": "every sample stored (NaNs dropped)"},
                **_prometheus_errors("400", "401", "403", "404", "413", "415", "503"),
            },
        }
    },
    "/api/v1/read": {
        "post": {
            "operationId": "prometheus_remote_read",
            "summary": "Prometheus remote_read: a snappy-compressed protobuf ReadRequest, "
            "answered with a snappy-compressed ReadResponse of samples",
            "parameters": [_SNAPPY_HEADER],
            "requestBody": {"required": True, "content": _PROTOBUF},
            "responses": {
                "200": {
                    "description": "the ReadResponse (Content-Encoding: snappy)",
                    "content": _PROTOBUF,
                },
                **_prometheus_errors("400", "401", "403", "404", "413", "415", "503"),
            },
        }
    },
}


#: The public resources the document describes, by path.
PUBLIC_PATHS: JSONObject = {
    f"/{API_PREFIX}/openapi.json": {
        "get": {
            "operationId": "get_openapi",
            "summary": "This document",
            "security": [],
            "responses": {
                "200": {"description": "OK", "content": {"application/json": {"schema": {}}}}
            },
        }
    }
}


@cache
def document() -> JSONObject:
    """The OpenAPI document; KeyError names a documented route of ``routes.TABLE`` that has
    no description here."""
    paths: JSONObject = {}
    for route in TABLE:
        if not route.documented:
            continue
        if route.public:
            paths[route.path] = PUBLIC_PATHS[route.path]
        elif route.dialect == "prometheus":
            documented = PROMETHEUS_PATHS[route.path]
            paths[route.path] = {m.lower(): documented[m.lower()] for m in route.methods}
        else:
            pattern = route.pattern[1:]
            item = paths.setdefault(path_of(pattern), {})
            for method in route.methods:
                item[method.lower()] = _operation(pattern, method, OPERATIONS[(pattern, method)])
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "TempoDB v1",
            "version": __version__,
            "description": "The TempoDB v1 time-series API (docs/tempodb-v1-api.md).",
        },
        "servers": [{"url": "/"}],
        "security": [{"basic": []}],
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "basic": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "the API key as user name, its secret as password",
                }
            },
        },
    }


@cache
def document_bytes() -> bytes:
    return orjson.dumps(document())
