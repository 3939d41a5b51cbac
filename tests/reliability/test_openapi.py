"""The OpenAPI document of the v1 API: it names every route and method of the server's route
table, the server serves it without credentials, and the running server conforms to it under
schemathesis' generated requests, valid and invalid: no answer >= 500, every status, content
type and JSON body as documented.

The run is short in ``make test``; ``pytest --api-fuzz-examples N`` (or
``TEMPODB_API_FUZZ_EXAMPLES=N``) asks for N examples per operation and mode for a long one.
"""

from __future__ import annotations

import collections
import datetime
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from rawhttp import Raw, basic
from schemathesis import GenerationMode
from schemathesis.checks import CheckFunction

from tempodb.server import openapi
from tempodb.server.routes import ROUTES

#: Examples per operation and generation mode in the short run of ``make test``.
SHORT_RUN = 20


def test_document_names_every_route_and_method() -> None:
    document = openapi.document()
    expected = {
        (openapi.path_of(pattern), method.lower())
        for pattern, methods in ROUTES
        for method in methods
    }
    expected.add(("/v1/openapi.json", "get"))
    documented = {(path, method) for path, item in document["paths"].items() for method in item}
    assert documented == expected
    for pattern, methods in ROUTES:
        for method in methods:
            operation = document["paths"][openapi.path_of(pattern)][method.lower()]
            assert operation["summary"]
            assert "200" in operation["responses"]
            assert {"400", "401", "403"} <= set(operation["responses"])


def test_a_route_without_documentation_fails() -> None:
    missing = (("series", "{field}", "{value}", "data"), "POST")
    kept = openapi.OPERATIONS.pop(missing)
    openapi.document.cache_clear()
    try:
        with pytest.raises(KeyError):
            openapi.document()
    finally:
        openapi.OPERATIONS[missing] = kept
        openapi.document.cache_clear()


def test_served_without_credentials(server: Any) -> None:
    reply = Raw(server.host, server.port).request("GET", "/v1/openapi.json")
    assert reply.status == 200
    assert reply.headers["content-type"].startswith("application/json")
    assert reply.json() == openapi.document()


def _checks() -> list[CheckFunction]:
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    return [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ]


def test_schemathesis_finds_no_server_error(server: Any, pytestconfig: pytest.Config) -> None:
    examples: int = pytestconfig.getoption("--api-fuzz-examples") or SHORT_RUN
    credentials = server.new_database("schemathesis")
    raw = Raw(server.host, server.port, credentials)
    start = datetime.datetime(2012, 1, 1, tzinfo=datetime.UTC)
    points = [{"t": (start + datetime.timedelta(hours=i)).isoformat(), "v": i} for i in range(48)]
    for key in ("k", "a", "0"):
        assert raw.request("POST", f"/v1/series/key/{key}/data/", points).status == 200
    schema = schemathesis.openapi.from_url(f"{server.url}/v1/openapi.json")
    headers = {"Authorization": basic(*credentials)}
    checks = _checks()
    statuses: collections.Counter[int] = collections.Counter()
    cases = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(
                max_examples=examples,
                deadline=None,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case: schemathesis.Case) -> None:
                nonlocal cases
                response = case.call(base_url=server.url, headers=headers, timeout=30)
                cases += 1
                statuses[response.status_code] += 1
                assert response.status_code < 500, (case.as_curl_command(), response.text)
                case.validate_response(response, checks=checks, headers=headers)

            run()
    print(f"\nschemathesis: {cases} requests, statuses {dict(sorted(statuses.items()))}")
    assert not any(status >= 500 for status in statuses)
    assert statuses[200] > 0
