"""Tenant isolation, generated from the server's route table: every route and method of
``ROUTES`` has probes here (a new route without any fails ``test_every_route_is_probed``).

Each probe addresses another database's series: its id and key in the path, in filters and in
request bodies, its tags and attributes in filters.  It is sent

* with a third database's valid key: the answer, and what the request did to the caller's own
  database, must be exactly what the same request gets with an id, key, tag and attribute that
  exist nowhere (a foreign series looks like a missing one);
* without credentials (401), with the victim's key and a wrong secret, with another key and the
  victim's secret, and with malformed credentials (403 or 401);

and after every probe the victim database must be exactly as it was: nothing read, listed,
written, updated or deleted.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from rawhttp import Raw, Reply, basic

from tempodb.server.routes import ROUTES

RANGE = "start=2012-01-01&end=2012-01-03"
T = "2012-01-01T12:00:00.000Z"


@dataclass(frozen=True)
class Ident:
    """What a probe addresses: a series id and key, a tag and an attribute (name, value)."""

    id: str
    key: str
    tag: str
    attr: tuple[str, str]


@dataclass(frozen=True)
class Probe:
    method: str
    path: str
    body: Any = None


Route = tuple[tuple[str, ...], str]
ProbeMaker = Callable[[Ident], list[Probe]]


def by_path(method: str, suffix: str, query: str = "", body: Any = None) -> ProbeMaker:
    """The series addressed in the path, by id and by key."""

    def make(x: Ident) -> list[Probe]:
        return [
            Probe(method, f"/v1/series/{field}/{value}/{suffix}{query}", body)
            for field, value in (("id", x.id), ("key", x.key))
        ]

    return make


def by_filter(method: str, path: str, extra: str = "") -> ProbeMaker:
    """The series addressed by each kind of filter."""

    def make(x: Ident) -> list[Probe]:
        filters = [f"id={x.id}", f"key={x.key}", f"tag={x.tag}", f"attr[{x.attr[0]}]={x.attr[1]}"]
        return [Probe(method, f"{path}?{flt}{extra}") for flt in filters]

    return make


def in_bodies(method: str, path: str, body: Callable[[Ident], Any]) -> ProbeMaker:
    return lambda x: [Probe(method, path, body(x))]


def combine(*makers: ProbeMaker) -> ProbeMaker:
    return lambda x: [probe for make in makers for probe in make(x)]


POINTS = [{"t": T, "v": 666}]

#: Every route and method of ROUTES, with the probes that address another database's series.
PROBES: dict[Route, ProbeMaker] = {
    (("series",), "GET"): by_filter("GET", "/v1/series/"),
    (("series",), "POST"): in_bodies(
        "POST", "/v1/series/", lambda x: {"key": x.key, "id": x.id, "tags": [x.tag]}
    ),
    (("series",), "DELETE"): by_filter("DELETE", "/v1/series/"),
    (("series", "{field}", "{value}"), "GET"): by_path("GET", ""),
    (("series", "{field}", "{value}"), "PUT"): combine(
        by_path("PUT", "", body={"name": "taken", "tags": ["x"], "attributes": {"a": "b"}}),
        # the caller's own series, with the foreign id and key in the body
        in_bodies("PUT", "/v1/series/key/own/", lambda x: {"id": x.id, "key": x.key, "name": "n"}),
    ),
    (("series", "{field}", "{value}", "data"), "GET"): by_path("GET", "data/", f"?{RANGE}"),
    (("series", "{field}", "{value}", "data"), "POST"): by_path("POST", "data/", body=POINTS),
    (("series", "{field}", "{value}", "data"), "DELETE"): by_path("DELETE", "data/", f"?{RANGE}"),
    (("series", "{field}", "{value}", "increment"), "POST"): by_path(
        "POST", "increment/", body=POINTS
    ),
    (("series", "{field}", "{value}", "single"), "GET"): by_path(
        "GET", "single/", f"?ts={T}&direction=nearest"
    ),
    (("data",), "GET"): by_filter("GET", "/v1/data/", f"&{RANGE}"),
    (("data",), "POST"): in_bodies(
        "POST",
        "/v1/data/",
        lambda x: {"t": T, "data": [{"id": x.id, "v": 1}, {"key": x.key, "v": 2}]},
    ),
    (("increment",), "POST"): in_bodies(
        "POST",
        "/v1/increment/",
        lambda x: {"t": T, "data": [{"id": x.id, "v": 1}, {"key": x.key, "v": 2}]},
    ),
    (("multi",), "POST"): in_bodies(
        "POST",
        "/v1/multi/",
        lambda x: [{"t": T, "id": x.id, "v": 1}, {"t": T, "key": x.key, "v": 2}, {"v": 3}],
    ),
    (("multi", "increment"), "POST"): in_bodies(
        "POST",
        "/v1/multi/increment/",
        lambda x: [{"t": T, "id": x.id, "v": 1}, {"t": T, "key": x.key, "v": 2}],
    ),
    (("single",), "GET"): by_filter("GET", "/v1/single/", f"&ts={T}&direction=nearest"),
    (("database",), "POST"): in_bodies("POST", "/v1/database/", lambda x: {"name": x.key}),
}

# The 1.0 reads (issue 16).
PROBES.update(
    {
        (("series", "{field}", "{value}"), "DELETE"): by_path("DELETE", ""),
        (("series", "{field}", "{value}", "segment"), "GET"): by_path(
            "GET", "segment/", f"?{RANGE}&limit=1"
        ),
        (("series", "{field}", "{value}", "data", "segment"), "GET"): by_path(
            "GET", "data/segment/", f"?{RANGE}&rollup.fold=sum&rollup.period=PT1H"
        ),
        (("series", "{field}", "{value}", "data", "rollups", "segment"), "GET"): by_path(
            "GET", "data/rollups/segment/", f"?{RANGE}&rollup.fold=max&rollup.period=P1D"
        ),
        (("series", "{field}", "{value}", "summary"), "GET"): by_path(
            "GET", "summary/", f"?{RANGE}"
        ),
        (("series", "{field}", "{value}", "find"), "GET"): by_path(
            "GET", "find/", f"?{RANGE}&predicate.function=max&predicate.period=P1D"
        ),
        (("segment",), "GET"): by_filter("GET", "/v1/segment/", f"&{RANGE}&aggregation.fold=sum"),
        (("data", "segment"), "GET"): by_filter(
            "GET", "/v1/data/segment/", f"&{RANGE}&aggregation.fold=count"
        ),
        (("multi",), "GET"): by_filter("GET", "/v1/multi/", f"&{RANGE}&limit=1"),
    }
)

# Retention (issue 24): administrator routes addressed by a database's key; a tenant's key
# reads and changes no database's retention, its own or another's.
PROBES.update(
    {
        (("database", "{value}", "retention"), "GET"): lambda x: [
            Probe("GET", f"/v1/database/{x.key}/retention/")
        ],
        (("database", "{value}", "retention"), "PUT"): lambda x: [
            Probe("PUT", f"/v1/database/{x.key}/retention/", {"retention": "1d"})
        ],
    }
)

ROUTE_IDS = [(pattern, method) for pattern, methods in ROUTES for method in methods]


def test_every_route_is_probed() -> None:
    assert set(ROUTE_IDS) == set(PROBES)


def missing_ident() -> Ident:
    """Identifiers that exist in no database (the key sorts after ``own`` as the victim's does,
    so that listings come in the same order)."""
    token = secrets.token_hex(16)
    return Ident(token, f"x-missing-{token[:8]}", f"tag-{token[:8]}", ("va", f"v-{token[:8]}"))


def normalize(value: Any, ident: Ident) -> Any:
    """A JSON answer (or a database snapshot) with the probe's identifiers and the random ids
    of series that requests created replaced by placeholders."""
    names = {ident.id: "<ID>", ident.key: "<KEY>", ident.tag: "<TAG>", ident.attr[1]: "<ATTR>"}
    if isinstance(value, dict):
        out = {k: normalize(v, ident) for k, v in value.items()}
        if "id" in value and "key" in value and value["id"] not in names:
            out["id"] = "<generated>"
        return out
    if isinstance(value, list):
        return [normalize(v, ident) for v in value]
    if isinstance(value, str):
        for name, placeholder in names.items():
            value = value.replace(name, placeholder)
    return value


def answer(reply: Reply, ident: Ident) -> tuple[int, Any]:
    content = reply.json() if reply.body and reply.status in (200, 207) else reply.text
    return reply.status, normalize(content, ident)


def snapshot(raw: Raw) -> Any:
    """Everything a database holds: series metadata and all points."""
    listed = raw.request("GET", "/v1/series/")
    assert listed.status == 200, listed.text
    state = []
    for series in listed.json():
        path = f"/v1/series/id/{series['id']}/data/"
        reply = raw.request("GET", f"{path}?start=2000-01-01&end=2100-01-01&interval=raw")
        assert reply.status == 200, reply.text
        state.append([series, reply.json()["data"]])
    return state


@dataclass
class Tenants:
    server: Any
    victim: Raw
    victim_ident: Ident
    before: Any

    def fresh(self) -> Raw:
        """A new database owning one series (``own``), as the attacker."""
        raw = self.victim.as_(self.server.new_database("attacker"))
        assert raw.request("POST", "/v1/series/", {"key": "own", "tags": ["t"]}).status == 200
        return raw


@pytest.fixture(scope="module")
def tenants(server: Any) -> Tenants:
    victim = Raw(server.host, server.port, server.new_database("victim"))
    created = victim.request(
        "POST",
        "/v1/series/",
        {"key": "victim-series", "name": "secret", "tags": ["vtag"], "attributes": {"va": "vv"}},
    )
    assert created.status == 200
    series = created.json()
    points = [{"t": f"2012-01-01T{h:02d}:00:00Z", "v": h} for h in range(24)]
    assert victim.request("POST", "/v1/series/key/victim-series/data/", points).status == 200
    ident = Ident(series["id"], series["key"], "vtag", ("va", "vv"))
    return Tenants(server, victim, ident, snapshot(victim))


def bad_credentials(tenants: Tenants) -> list[tuple[str, dict[str, str], int]]:
    """(what, headers, expected status) for requests that must not authenticate."""
    victim_key, victim_secret = tenants.victim.credentials or ("", "")
    other_key, other_secret = tenants.server.new_database("other")
    garbage = base64.b64encode(b"no colon here").decode()
    return [
        ("no key", {}, 401),
        ("wrong secret", {"Authorization": basic(victim_key, secrets.token_hex(16))}, 403),
        ("victim secret, other key", {"Authorization": basic(other_key, victim_secret)}, 403),
        ("other secret, victim key", {"Authorization": basic(victim_key, other_secret)}, 403),
        ("empty secret", {"Authorization": basic(victim_key, "")}, 403),
        ("key only", {"Authorization": f"Basic {garbage}"}, 401),
        ("bearer", {"Authorization": f"Bearer {victim_secret}"}, 401),
        ("not base64", {"Authorization": "Basic ***"}, 401),
    ]


@pytest.mark.parametrize("route", ROUTE_IDS, ids=["/".join(p) + f" {m}" for p, m in ROUTE_IDS])
def test_foreign_series_look_missing_and_stay_untouched(tenants: Tenants, route: Route) -> None:
    make = PROBES[route]
    foreign = tenants.victim_ident
    cases = 0
    refused = bad_credentials(tenants)
    for index, probe in enumerate(make(foreign)):
        missing = missing_ident()
        missing_probe = make(missing)[index]
        attacker, control = tenants.fresh(), tenants.fresh()
        got = attacker.request(probe.method, probe.path, probe.body)
        expected = control.request(missing_probe.method, missing_probe.path, missing_probe.body)
        assert got.status < 500, got.text
        assert answer(got, foreign) == answer(expected, missing), probe
        assert normalize(snapshot(attacker), foreign) == normalize(snapshot(control), missing)
        assert snapshot(tenants.victim) == tenants.before, f"{probe} changed the victim"
        cases += 1
        for what, headers, status in refused:
            anonymous = tenants.victim.as_(None)
            reply = anonymous.request(probe.method, probe.path, probe.body, headers)
            assert reply.status == status, (what, probe, reply.text)
            assert foreign.key not in reply.text
            assert foreign.id not in reply.text
            if status == 401:
                assert reply.headers["www-authenticate"].startswith("Basic")
            assert snapshot(tenants.victim) == tenants.before, f"{what} {probe} changed it"
            cases += 1
    assert cases > 0
