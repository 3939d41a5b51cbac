"""Series metadata endpoints (spec E1-E5) and database creation (E17)."""

from __future__ import annotations

from typing import Any

from tempodb.server.context import Context, auto_tags, parse_filter
from tempodb.server.http import (
    HTTPError,
    Request,
    Response,
    bad_request,
    json_response,
)
from tempodb.server.wire import (
    check_key,
    not_found,
    parse_attributes,
    parse_name,
    parse_tags,
    series_json,
)
from tempodb.storage.base import KeyConflict


def _body_object(request: Request) -> dict[str, Any]:
    body = request.json()
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise bad_request("Request body must be a JSON object")
    return body


def conflict(key: str) -> HTTPError:
    return HTTPError(
        409, f"Unique constraint violated: a series with key {key} already exists", "conflict"
    )


def create_series(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """E1 ``POST /series/``: ``{"key": K}`` or ``{}``, optionally name, tags, attributes."""
    body = _body_object(request)
    key = body.get("key")
    key = None if key in (None, "") else check_key(key)
    tags = parse_tags(body.get("tags"))
    if key is not None and ctx.options.auto_tag:
        tags = auto_tags(key) + tags
    try:
        series = ctx.store.create_series(
            ctx.db.id,
            key,
            name=parse_name(body.get("name")),
            tags=tags,
            attributes=parse_attributes(body.get("attributes")),
        )
    except KeyConflict as exc:
        raise conflict(exc.key) from None
    return json_response(series_json(series))


def list_series(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """E2 ``GET /series/``: the series matching the filters, by key."""
    found = ctx.store.find_series(ctx.db.id, parse_filter(request.query))
    return json_response([series_json(s) for s in found])


def delete_series(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """E3 ``DELETE /series/``: filters, or ``allow_truncation=true`` to delete every series."""
    flt = parse_filter(request.query)
    if flt.is_empty():
        truncate = (request.query.get("allow_truncation") or "").lower() == "true"
        if not truncate:
            raise bad_request("Must specify at least one filter or allow_truncation=true")
        return json_response({"deleted": ctx.store.delete_series(ctx.db.id, None)})
    return json_response({"deleted": ctx.store.delete_series(ctx.db.id, flt)})


def get_series(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """E5 ``GET /series/{id|key}/{v}/``."""
    return json_response(series_json(ctx.series(params["field"], params["value"])))


def update_series(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """E4 ``PUT /series/{id|key}/{v}/``: replace name, tags and attributes that are given.

    The id comes from the path and the key cannot change; a different key in the body is
    ignored, so that read-modify-write clients keep working.
    """
    series = ctx.series(params["field"], params["value"])
    body = _body_object(request)
    updated = ctx.store.update_series(
        ctx.db.id,
        series.id,
        name=parse_name(body["name"]) if "name" in body else None,
        tags=parse_tags(body["tags"]) if "tags" in body else None,
        attributes=parse_attributes(body["attributes"]) if "attributes" in body else None,
    )
    if updated is None:  # deleted in the meantime
        raise not_found("id", series.id)
    return json_response(series_json(updated))


def create_database(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """E17 ``POST /database/``: an administrator key creates a database."""
    if not ctx.db.admin:
        raise HTTPError(403, "Only an administrator key may create databases", "forbidden")
    name = parse_name(_body_object(request).get("name"))
    credentials = ctx.store.create_database(name)
    return json_response({"id": credentials.key, "password": credentials.secret})
