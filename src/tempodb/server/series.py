"""Series metadata endpoints (spec E1-E5, E1B) and database creation (E17)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final, cast

from tempodb.contract import KEY_RE, MAX_KEY_LENGTH
from tempodb.server.context import Context, auto_tags, parse_filter
from tempodb.server.http import (
    JSON_TYPE,
    HTTPError,
    Request,
    Response,
    bad_request,
    empty_response,
    json_response,
)
from tempodb.server.paging import decode_cursor, next_link, parse_limit
from tempodb.server.wire import (
    check_key,
    conflict_message,
    not_found,
    parse_attributes,
    parse_name,
    parse_tags,
    render_series,
    series_json,
)
from tempodb.storage.base import (
    KeyConflict,
    NewSeries,
    SeriesFilter,
    SeriesRecord,
    new_series_item,
)


def _body_object(request: Request) -> dict[str, Any]:
    body = request.json()
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise bad_request("Request body must be a JSON object")
    return body


def conflict(key: str) -> HTTPError:
    return HTTPError(409, conflict_message(key), "conflict")


def too_many_series(count: int, limit: int) -> HTTPError:
    return HTTPError(
        400,
        f"Too many series in one request: {count} (at most {limit} per request; "
        "send them in several requests)",
        "too-many-series",
    )


def new_series(ctx: Context, item: Any) -> NewSeries:
    """A series object of a create request, validated: 400 (an HTTPError) says why not."""
    if not isinstance(item, dict):
        raise bad_request("A series must be a JSON object")
    key = item.get("key")
    key = None if key in (None, "") else check_key(key)
    tags = parse_tags(item.get("tags"))
    if key is not None and ctx.options.auto_tag:
        tags = auto_tags(key) + tags
    return NewSeries(
        key,
        name=parse_name(item.get("name")),
        tags=tuple(tags),
        attributes=parse_attributes(item.get("attributes")),
    )


def create_series(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """E1 ``POST /series/``: ``{"key": K}`` or ``{}``, optionally name, tags, attributes;
    a JSON array of such objects creates them all (E1B, :func:`create_many`)."""
    body = request.json()
    if isinstance(body, list):
        return create_many(ctx, body)
    if body is not None and not isinstance(body, dict):
        raise bad_request("Request body must be a JSON object, or an array of them")
    item = new_series(ctx, body or {})
    try:
        series = ctx.store.create_series(ctx.db.id, item.key, item.name, item.tags, item.attributes)
    except KeyConflict as exc:
        raise conflict(exc.key) from None
    return json_response(series_json(series))


def create_many(ctx: Context, body: list[Any]) -> Response:
    """E1B: every valid item created in one storage call; 200 with the created series when
    all were, else 207 with one multistatus entry per item (200, 409 or 422).  More items
    than ``Options.max_series_per_request``: 400, nothing created."""
    limit = ctx.options.max_series_per_request
    if len(body) > limit:
        raise too_many_series(len(body), limit)
    plain = _plain_items(ctx, body)
    if plain is not None:  # every item valid: the common case, without an entry per item
        results = ctx.store.create_series_many(ctx.db.id, plain) if plain else []
        if KeyConflict not in set(map(type, results)):
            return Response(200, render_series(cast("list[SeriesRecord]", results)), JSON_TYPE)
        return _multistatus([], list(range(len(plain))), plain, results)
    entries: list[dict[str, Any]] = []
    valid: list[NewSeries] = []
    slots: list[int] = []  # the entry of each valid item
    for item in body:
        try:
            valid.append(new_series(ctx, item))
        except HTTPError as error:
            entries.append({"status": "422", "messages": [error.message]})
            continue
        slots.append(len(entries))
        entries.append({})
    results = ctx.store.create_series_many(ctx.db.id, valid) if valid else []
    return _multistatus(entries, slots, valid, results)


def _multistatus(
    entries: list[dict[str, Any]],
    slots: list[int],
    valid: list[NewSeries],
    results: list[SeriesRecord | KeyConflict],
) -> Response:
    """The answer of ``create_many`` once the store answered for the valid items (``slots``:
    the entry of each; ``entries`` holds those of the invalid ones, the others are filled in
    here, or made when ``entries`` is empty)."""
    if not entries:
        entries = [{} for _ in slots]
    earlier: set[str] = set()
    for slot, item, result in zip(slots, valid, results, strict=True):
        if isinstance(result, KeyConflict):
            message = conflict(result.key).message
            if result.key in earlier:
                message += " (an earlier series of this request has the same key)"
            entries[slot] = {"status": "409", "messages": [message]}
        else:
            entries[slot] = {"status": "200", "messages": [], "series": series_json(result)}
        if item.key is not None:
            earlier.add(item.key)
    if all(entry["status"] == "200" for entry in entries):
        return json_response([entry["series"] for entry in entries])
    return json_response({"multistatus": entries}, status=207)


def _plain_items(ctx: Context, body: list[Any]) -> list[NewSeries] | None:
    """The items as ``new_series`` makes them, when every one is valid and of the common
    shape (an object of a valid key, tags and a name, without attributes), in one pass and
    one check of all the tags together; None otherwise (``create_many`` then takes them one
    by one, and says which are invalid and why)."""
    auto = ctx.options.auto_tag
    key_ok = KEY_RE.fullmatch
    items: list[NewSeries] = []
    every_tag: list[Any] = []
    for item in body:
        if type(item) is not dict or item.get("attributes") is not None:
            return None
        key = item.get("key")
        if key is None or key == "":
            key = None
        elif type(key) is not str or len(key) > MAX_KEY_LENGTH or not key_ok(key):
            return None
        name = item.get("name")
        if name is None:
            name = ""
        elif type(name) is not str or "\x00" in name:
            return None
        tags = item.get("tags")
        if tags is None:
            tags = ()
        elif type(tags) is not list:
            return None
        else:
            every_tag += tags
            tags = tuple(tags)
        if auto and key is not None:
            tags = (*auto_tags(key), *tags)
        items.append(new_series_item(key, name, tags, {}))
    if every_tag and not (
        all(type(tag) is str for tag in every_tag)
        and all(every_tag)
        and "\x00" not in "".join(every_tag)
    ):
        return None
    return items


#: Series fetched and rendered at a time by a listing (``list_series``).
LIST_PAGE: Final = 5_000


def list_series(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """E2 ``GET /series/``: the series matching the filters, by key.  A long list is
    streamed page by page, so that memory does not grow with the series listed.  With
    ``limit`` (1.0), one page of that many and a ``Link`` to the next (:func:`list_page`)."""
    flt = parse_filter(request.query)
    limit = parse_limit(request)
    if limit is not None:
        return list_page(ctx, request, flt, limit)
    page = ctx.store.find_series_page(ctx.db.id, flt, limit=LIST_PAGE)
    if len(page) < LIST_PAGE:
        return Response(200, render_series(page), JSON_TYPE)
    return Response(200, b"[", JSON_TYPE, stream=_listing(ctx, flt, page))


def _listing(ctx: Context, flt: SeriesFilter, page: list[SeriesRecord]) -> Iterator[bytes]:
    """The rest of a streamed listing after its ``[``: each page's series, then ``]``."""
    separator = b""
    while page:
        yield separator + render_series(page)[1:-1]
        separator = b","
        if len(page) < LIST_PAGE:
            break
        page = ctx.store.find_series_page(ctx.db.id, flt, after=page[-1].key, limit=LIST_PAGE)
    yield b"]"


def list_page(ctx: Context, request: Request, flt: SeriesFilter, limit: int) -> Response:
    """A page of the listing: the series after the cursor's key, ``Link`` while more remain."""
    after = decode_cursor(request)
    if after is not None and not isinstance(after, str):
        raise bad_request("Invalid cursor: not one of a series listing")
    fetch = min(limit, LIST_PAGE) + 1
    found = ctx.store.find_series_page(ctx.db.id, flt, after=after, limit=fetch)
    if len(found) < fetch:  # the rest fits in this page
        return Response(200, render_series(found), JSON_TYPE)
    if limit < LIST_PAGE:
        headers = next_link(request, found[limit - 1].key)
        return Response(200, render_series(found[:limit]), JSON_TYPE, headers)
    return _big_page(ctx, request, flt, after, limit)


def _big_page(
    ctx: Context, request: Request, flt: SeriesFilter, after: str | None, limit: int
) -> Response:
    """A page longer than ``LIST_PAGE``: its last key found first (keys only), then streamed."""
    last, remaining, cursor = None, limit, after
    while remaining:
        found = ctx.store.find_series_page(
            ctx.db.id, flt, after=cursor, limit=min(remaining, LIST_PAGE)
        )
        if not found:
            break
        remaining -= len(found)
        cursor = last = found[-1].key
    more = last is not None and bool(
        ctx.store.find_series_page(ctx.db.id, flt, after=last, limit=1)
    )
    headers = next_link(request, last) if more and last is not None else {}
    return Response(200, b"[", JSON_TYPE, headers, stream=_bounded(ctx, flt, after, last))


def _bounded(
    ctx: Context, flt: SeriesFilter, after: str | None, last: str | None
) -> Iterator[bytes]:
    """The series after ``after`` up to ``last`` (inclusive), then ``]``."""
    separator = b""
    while last is not None:
        page = ctx.store.find_series_page(ctx.db.id, flt, after=after, limit=LIST_PAGE)
        page = [s for s in page if s.key <= last]
        if not page:
            break
        yield separator + render_series(page)[1:-1]
        separator = b","
        after = page[-1].key
        if after == last:
            break
    yield b"]"


def delete_one(ctx: Context, request: Request, params: dict[str, str]) -> Response:
    """``DELETE /series/{id|key}/{v}/`` (1.0): that one series and its points."""
    series = ctx.series(params["field"], params["value"])
    ctx.store.delete_series(ctx.db.id, SeriesFilter(ids=(series.id,)))
    return empty_response()


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
