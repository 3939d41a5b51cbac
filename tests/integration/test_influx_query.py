"""``/query`` against a real server process, compared with a real InfluxDB 1.6 on the same
data: the SHOW statements Grafana's InfluxDB data source sends first, and simple
``SELECT fn("f") ... GROUP BY time(...)`` queries (numbers to 1e-9, same series, tags, columns
and times)."""

from __future__ import annotations

import json
import math
import urllib.parse
from typing import Any

import pytest
from test_influx_write import Wire, reference  # noqa: F401 - the InfluxDB 1.6 fixture

#: 2023-11-14T22:00:00Z, a whole hour, in ms.
T0 = 1_699_999_200_000
CORPUS = "\n".join(
    [
        *(
            f"cpu,host=web-{h},region={'eu' if h < 2 else 'us'} "
            f"usage={(h * 7 + i * 3) % 17 + 0.25},procs={i % 5 + h}i {T0 + i * 20_000 + h * 1000}"
            for h in range(3)
            for i in range(540)  # three hours of a point every 20 s
        ),
        *(f"mem,host=web-{h % 2} used={h * 1.5} {T0 + h * 600_000}" for h in range(18)),
        r"we\ ird\,name,tag\ key=va\=lue f=1 " + str(T0),
        "temp,city=köln,floor=2 c=21.5 " + str(T0 + 5),
    ]
)
END = f"{T0 + 3 * 3_600_000}ms"


@pytest.fixture(scope="module")
def servers(reference: Wire, server: Any) -> tuple[Wire, Wire]:  # noqa: F811
    """Both servers with the corpus, each in a database of its own."""
    create = urllib.parse.urlencode({"q": "CREATE DATABASE grafana"})
    assert reference.request("POST", "/query?" + create).status == 200
    ours = Wire(server.url, server.new_database("grafana"))
    for wire, path in (
        (reference, "/write?db=grafana&precision=ms"),
        (ours, "/write?precision=ms"),
    ):
        answer = wire.request("POST", path, CORPUS)
        assert answer.status == 204, answer.body
    return reference, ours


def ask(wire: Wire, q: str, **params: str) -> tuple[int, Any]:
    query = urllib.parse.urlencode({"db": "grafana", "q": q, **params})
    answer = wire.request("GET", "/query?" + query)
    return answer.status, json.loads(answer.body)


def same(theirs: Any, ours: Any) -> bool:
    """Equal JSON, numbers to 1e-9 (relative)."""
    if isinstance(theirs, dict) and isinstance(ours, dict):
        return theirs.keys() == ours.keys() and all(same(theirs[k], ours[k]) for k in theirs)
    if isinstance(theirs, list) and isinstance(ours, list):
        return len(theirs) == len(ours) and all(
            same(a, b) for a, b in zip(theirs, ours, strict=True)
        )
    if isinstance(theirs, bool) or isinstance(ours, bool):
        return theirs == ours
    if isinstance(theirs, int | float) and isinstance(ours, int | float):
        return math.isclose(theirs, ours, rel_tol=1e-9, abs_tol=1e-9)
    return bool(theirs == ours)


QUERIES = [
    "SHOW MEASUREMENTS",
    "SHOW MEASUREMENTS LIMIT 2",
    "SHOW MEASUREMENTS LIMIT 2 OFFSET 1",
    "SHOW MEASUREMENTS WITH MEASUREMENT =~ /^c/",
    'SHOW MEASUREMENTS WITH MEASUREMENT = "mem"',
    "SHOW MEASUREMENTS WHERE host = 'web-2'",
    "SHOW TAG KEYS",
    'SHOW TAG KEYS FROM "cpu"',
    'SHOW TAG KEYS ON "grafana" FROM "temp"',
    'SHOW TAG VALUES WITH KEY = "host"',
    'SHOW TAG VALUES FROM "cpu" WITH KEY = "host"',
    'SHOW TAG VALUES FROM "cpu" WITH KEY IN ("host", "region")',
    'SHOW TAG VALUES FROM "cpu" WITH KEY =~ /reg/',
    'SHOW TAG VALUES FROM "cpu" WITH KEY = "host" WHERE region = \'eu\'',
    'SHOW TAG VALUES FROM "cpu" WITH KEY = "host" WHERE region =~ /u/ LIMIT 1',
    'SHOW TAG VALUES WITH KEY != "host"',
    'SHOW FIELD KEYS FROM "mem"',
    "SHOW SERIES",
    "SHOW SERIES FROM \"cpu\" WHERE host = 'web-1'",
    "SHOW RETENTION POLICIES ON grafana",
    *(
        f'SELECT {fn}("usage") FROM "cpu" WHERE time >= {T0}ms AND time < {END} GROUP BY time(10m)'
        for fn in ("mean", "sum", "count", "min", "max", "stddev", "spread", "first", "last")
    ),
    f'SELECT mean("usage"), count("usage") FROM "cpu" WHERE time >= {T0 + 7_000}ms '
    f"AND time < {T0 + 900_000}ms GROUP BY time(10s), host",
    f'SELECT min("procs") FROM "cpu" WHERE time >= {T0}ms AND time <= {END} GROUP BY time(90s)',
    f'SELECT max("usage") FROM "cpu" WHERE time >= {T0}ms AND time <= {END} GROUP BY time(7m)',
    # What Grafana's query editor writes ($timeFilter in ms, tags in parentheses).
    f'SELECT mean("usage") FROM "cpu" WHERE ("host"::tag = \'web-1\') AND time >= {T0}ms and '
    f"time <= {END} GROUP BY time(5m) fill(null)",
    f'SELECT max("usage") FROM "autogen"."cpu" WHERE ("region" = \'eu\' AND "host" =~ /0$/) AND '
    f'time >= {T0}ms and time <= {END} GROUP BY time(1m), "host" fill(none)',
    f'SELECT spread("procs"), first("procs"), last("procs"), stddev("procs") FROM "cpu" '
    f"WHERE time >= {T0}ms AND time < {END} GROUP BY time(20m), host",
    f'SELECT stddev("used"), first(used), last(used) FROM "mem" WHERE time >= {T0}ms '
    f"AND time < {END} GROUP BY time(10m)",
    f'SELECT mean("used") FROM "mem" WHERE time >= {T0 - 3_600_000}ms AND time < {END} '
    "GROUP BY time(15m) fill(previous)",
    f'SELECT last("usage") FROM "cpu" WHERE time >= {T0}ms AND time < {END} '
    "GROUP BY time(30m), * ORDER BY time DESC LIMIT 3 OFFSET 1",
    f'SELECT max("usage") FROM "cpu" WHERE time >= {T0}ms AND time < {END} '
    "GROUP BY time(1h), host SLIMIT 2 SOFFSET 1",
    f'SELECT count("used") FROM "mem" WHERE time >= {T0}ms AND time < {END} '
    "GROUP BY time(1h), * ORDER BY time ASC",
    f'SELECT first("usage") FROM "cpu" WHERE time >= {T0}ms AND time < {END} '
    "GROUP BY time(1h), host ORDER BY time DESC SLIMIT 2",
    # Aggregates over the whole range, and raw fields.
    f'SELECT mean("usage") FROM "cpu" WHERE time >= {T0}ms AND time < {END}',
    f"SELECT max(usage), count(usage) FROM cpu WHERE time >= {T0}ms AND time < {END} GROUP BY host",
    "SELECT count(used), sum(used) FROM mem",
    f'SELECT "used" FROM "mem" WHERE time >= {T0}ms AND time < {END}',
    f"SELECT usage, procs, host FROM cpu WHERE time >= {T0}ms AND time < {T0 + 120_000}ms",
    f"SELECT usage FROM cpu WHERE time >= {T0}ms GROUP BY host LIMIT 3",
    f'SELECT "usage"::field AS u FROM cpu WHERE time >= {T0}ms GROUP BY * LIMIT 2 SLIMIT 2',
    "SELECT used FROM mem ORDER BY time DESC LIMIT 4",
    'SELECT "f" FROM "we ird,name"',
    "SELECT used FROM mem WHERE host = 'web-1' LIMIT 3 OFFSET 2",
    f'SELECT mean("procs"), sum("procs"), max("procs") FROM "cpu" WHERE time >= {T0}ms '
    f"AND time < {END} GROUP BY time(30m)",
    f'SELECT mean("usage") AS "u" FROM "grafana"."autogen"."cpu" WHERE time > {T0}ms '
    f'AND time <= {END} GROUP BY time(1h), "host"',
    f"SELECT count(usage) FROM cpu WHERE host = 'web-0' AND time >= {T0}ms AND time < {END} "
    "GROUP BY time(15m) fill(none)",
    f"SELECT max(usage) FROM cpu WHERE host =~ /web-[01]/ AND region != 'us' AND "
    f"time >= {T0}ms AND time < {END} GROUP BY time(20m, 5m), region",
    f'SELECT mean("used") FROM "mem" WHERE time >= {T0 - 3_600_000}ms AND time < {END} '
    "GROUP BY time(15m) fill(null)",
    f'SELECT mean("used") FROM "mem" WHERE time >= {T0 - 3_600_000}ms AND time < {END} '
    "GROUP BY time(15m) fill(0)",
    f'SELECT mean("used") FROM "mem" WHERE time >= {T0 - 3_600_000}ms AND time < {END} '
    "GROUP BY time(15m) fill(none)",
    'SELECT sum("used") FROM "mem" WHERE time >= \'2023-11-14T22:00:00Z\' AND '
    "time < '2023-11-15T00:30:00Z' GROUP BY time(30m), host fill(-1)",
    f'SELECT mean("used") FROM "mem" WHERE time >= {T0}ms AND time < {END} '
    "GROUP BY time(1h) LIMIT 2",
    f'SELECT mean("c") FROM "temp" WHERE time >= {T0}ms AND time < {END} GROUP BY time(1h), city',
    f'SELECT mean("f") FROM "we ird,name" WHERE time >= {T0}ms AND time < {END} '
    'GROUP BY time(1h), "tag key"',
    f'SELECT mean("nothing") FROM "cpu" WHERE time >= {T0}ms AND time < {END} GROUP BY time(1h)',
    f'SELECT mean("usage") FROM "nothing" WHERE time >= {T0}ms AND time < {END} GROUP BY time(1h)',
    f"SHOW MEASUREMENTS; SELECT max(used) FROM mem WHERE time >= {T0}ms AND time < {END} "
    "GROUP BY time(1h); SHOW TAG KEYS FROM mem",
]


@pytest.mark.parametrize("q", QUERIES)
@pytest.mark.parametrize("epoch", [None, "ms", "s"])
def test_same_answers_as_influxdb(servers: tuple[Wire, Wire], q: str, epoch: str | None) -> None:
    theirs_wire, ours_wire = servers
    params = {} if epoch is None else {"epoch": epoch}
    theirs = ask(theirs_wire, q, **params)
    ours = ask(ours_wire, q, **params)
    assert theirs[0] == ours[0] == 200
    assert same(theirs[1], ours[1]), (theirs[1], ours[1])
    assert "error" not in json.dumps(theirs[1])
    if "nothing" not in q:  # the comparison is of answers with data in them
        assert all("series" in result for result in theirs[1]["results"])


def test_show_databases_names_the_database_asked_for(servers: tuple[Wire, Wire]) -> None:
    _, ours = servers
    status, body = ask(ours, "SHOW DATABASES")
    assert status == 200
    assert body["results"][0]["series"][0]["values"] == [["grafana"]]


def test_query_by_post_form_and_credentials(servers: tuple[Wire, Wire], server: Any) -> None:
    _, ours = servers
    assert ours.credentials is not None
    key, secret = ours.credentials
    form = urllib.parse.urlencode({"q": "SHOW MEASUREMENTS", "db": "grafana"})
    answer = ours.request(
        "POST", "/query", form, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert answer.status == 200
    assert json.loads(answer.body)["results"][0]["series"][0]["values"][0] == ["cpu"]
    anonymous = Wire(server.url)
    query = urllib.parse.urlencode({"q": "SHOW MEASUREMENTS", "u": key, "p": secret})
    assert anonymous.request("GET", "/query?" + query).status == 200
    assert anonymous.request("GET", "/query?q=SHOW+MEASUREMENTS").status == 401


RECENT = "SELECT mean(usage) FROM cpu WHERE time > now() - 1h"


@pytest.mark.parametrize(
    ("q", "named"),
    [
        ("", "q"),
        ("SHOW NOTHING", "not supported"),
        ("DROP MEASUREMENT cpu", "not supported"),
        ("SELECT * FROM cpu", "not supported"),
        ("SELECT median(usage) FROM cpu WHERE time > now() - 1h GROUP BY time(1m)", "median"),
        ("SELECT mean(usage) FROM cpu GROUP BY time(1m)", "lower time bound"),
        (f"{RECENT} GROUP BY time(100ms)", "under 1s"),
        (
            f"{RECENT} GROUP BY time(1m) fill(linear)",
            "fill",
        ),
        (
            "SELECT mean(usage) FROM cpu WHERE time > now() - 1h OR host = 'a' GROUP BY time(1m)",
            "OR",
        ),
        (
            f"{RECENT} GROUP BY time(1m) tz('Europe/Paris')",
            "tz",
        ),
        (f"{RECENT} AND usage::field > 1 GROUP BY time(1m)", "fields"),
        (f"{RECENT} AND (host = 'a' GROUP BY time(1m)", "expected )"),
        (
            "SELECT mean(usage) FROM cpu WHERE time > now() - 99999999999999999999d "
            "GROUP BY time(1s)",
            "too many buckets",
        ),
        ("SHOW TAG VALUES WITH KEY =~ /(/", "regex"),
        ("SELECT mean(usage FROM cpu", "not supported"),
        ("SELECT mean(usage) FROM cpu WHERE time > 'yesterday' GROUP BY time(1m)", "RFC 3339"),
    ],
)
def test_what_is_not_served_is_a_400_naming_it(
    servers: tuple[Wire, Wire], q: str, named: str
) -> None:
    _, ours = servers
    status, body = ask(ours, q)
    assert status == 400
    assert named in body["error"]


def test_the_influxdb_client_queries(servers: tuple[Wire, Wire], server: Any) -> None:
    """The official 1.x client reads the answers as it reads InfluxDB's."""
    import influxdb

    _, ours = servers
    assert ours.credentials is not None
    key, secret = ours.credentials
    client = influxdb.InfluxDBClient(
        server.host, server.port, username=key, password=secret, database="grafana"
    )
    measurements = [m["name"] for m in client.get_list_measurements()]
    assert measurements == ["cpu", "mem", "temp", "we ird,name"]
    result = client.query(
        f'SELECT sum("used") FROM "mem" WHERE time >= {T0}ms AND time < {END} '
        "GROUP BY time(1h), host",
        epoch="ms",
    )
    web0 = list(result.get_points(tags={"host": "web-0"}))
    assert [p["time"] for p in web0] == [T0, T0 + 3_600_000, T0 + 7_200_000]
    # mem used = h * 1.5 at T0 + h * 10 min, host web-(h % 2): hours 0-2 of web-0 hold h = 0,
    # 2, 4 / 6, 8, 10 / 12, 14, 16.
    assert [p["sum"] for p in web0] == [9.0, 36.0, 63.0]
