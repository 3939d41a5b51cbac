"""The one route table: every route is matched on the raw path once, labelled by its
pattern, and the OpenAPI document describes exactly the routes marked documented."""

from __future__ import annotations

import pytest

from tempodb.server import openapi
from tempodb.server.http import HTTPError
from tempodb.server.routes import TABLE, UNMATCHED, check_method, label, resolve


def test_the_openapi_document_names_exactly_the_documented_routes() -> None:
    expected = set()
    for route in TABLE:
        if not route.documented:
            continue
        methods = ["GET"] if route.public else list(route.methods)
        expected |= {(route.path, method.lower()) for method in methods}
    document = openapi.document()
    documented = {(path, method) for path, item in document["paths"].items() for method in item}
    assert documented == expected


def test_the_undocumented_routes_are_the_dialects_and_the_public_resources() -> None:
    hidden = {route.label for route in TABLE if not route.documented}
    assert hidden == {"/write", "/api/v2/write", "/query", "/ping", "/healthz", "/metrics", "/ui"}


def test_patterns_are_unique_and_labels_are_patterns() -> None:
    labels = [route.label for route in TABLE]
    assert len(labels) == len(set(labels))
    for route in TABLE:
        assert bool(route.methods) != route.public
        concrete = "/".join(
            {"{field}": "key", "{value}": "a%2Fb"}.get(part, part) for part in route.pattern
        )
        for path in (f"/{concrete}", f"/{concrete}/"):
            found = resolve(path.encode())
            assert found is not None, path
            assert found.route is route, path
            assert label(found) == route.label


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", b"/v1/nothing", 404),
        ("PATCH", b"/v1/series/key/a/data", 405),
        ("POST", b"/metrics", 404),
        ("POST", b"/healthz", 404),
        ("GET", b"/write", 405),
    ],
)
def test_404_and_405(method: str, path: bytes, status: int) -> None:
    with pytest.raises(HTTPError) as refused:
        check_method(resolve(path), method, path)
    assert refused.value.status == status
    if status == 405:
        assert refused.value.headers["Allow"]


def test_unmatched_label() -> None:
    assert label(resolve(b"/v1/series/name/x/data")) == UNMATCHED
    assert label(resolve(b"/%68ealthz")) == UNMATCHED  # public paths are compared as sent
