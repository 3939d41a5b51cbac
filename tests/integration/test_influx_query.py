"""``/query`` against a real server process, compared with a real InfluxDB 1.6 on the same
data: the SHOW statements Grafana's InfluxDB data source sends first, and simple
``SELECT fn("f") ... GROUP BY time(...)`` queries (numbers to 1e-9, same series, tags, columns
and times)."""

from __future__ import annotations

import json
import math
import urllib.parse
from datetime import datetime
from typing import Any

import pytest
from test_influx_write import Wire, reference  # noqa: F401 - the InfluxDB 1.6 fixture

#: 2023-11-14T22:00:00Z, a whole hour, in ms.
T0 = 1_699_999_200_000
#: Days (from midnight UTC) around four changes of DST: America/Chicago on 2024-03-10 and
#: 2024-11-03, Europe/Paris on 2024-03-31 and 2024-10-27.
DST_DAYS = [("2024-03-09", 3), ("2024-03-30", 2), ("2024-10-26", 2), ("2024-11-02", 3)]
#: Chicago's 25-hour 2024-11-03, in UTC ms: site b has no point in it.
CHICAGO_NOV_3 = (1_730_610_000_000, 1_730_700_000_000)


def power_lines() -> list[str]:
    """``power,site=a|b kw=<float>,n=<int>i``, a point every 15 minutes over the DST days
    (site b 7 s later), with gaps: site a skips an hour every 9 hours, site b the whole of
    Chicago's 2024-11-03."""
    lines = []
    for day, days in DST_DAYS:
        midnight = int(datetime.fromisoformat(f"{day}T00:00:00+00:00").timestamp()) * 1000
        for i in range(days * 96):
            for site, shift in (("a", 0), ("b", 7_000)):
                ts = midnight + i * 900_000 + shift
                if site == "a" and (i // 4) % 9 == 4:
                    continue
                if site == "b" and CHICAGO_NOV_3[0] <= ts < CHICAGO_NOV_3[1]:
                    continue
                kw = (i * 37) % 101 / 4 + (100 if site == "b" else 0)
                n = (i * 7) % 13 + (20 if site == "b" else 0)
                lines.append(f"power,site={site} kw={kw},n={n}i {ts}")
    return lines


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
        *power_lines(),
    ]
)
END = f"{T0 + 3 * 3_600_000}ms"


def span(start: str, days: int = 0, hours: int = 0) -> str:
    """Grafana's ``$timeFilter`` from ``start`` (an ISO date or date and hour, UTC) over the
    days and hours given: ``time >= ...ms and time <= ...ms``."""
    iso = start if "T" in start else start + "T00"
    first = int(datetime.fromisoformat(f"{iso}:00:00+00:00").timestamp()) * 1000
    last = first + (days * 24 + hours) * 3_600_000 - 1
    return f"time >= {first}ms and time <= {last}ms"


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
    # tz(): the rollup engine's buckets in the zone, calendar days across DST changes.
    f"SELECT count(kw), mean(kw) FROM power WHERE {span('2024-03-09', 3)} "
    "GROUP BY time(1d) tz('America/Chicago')",
    f'SELECT mean("kw") FROM "power" WHERE {span("2024-03-09", 3)} '
    "GROUP BY time(1d), \"site\" fill(null) tz('America/Chicago')",
    f"SELECT sum(n), max(kw) FROM power WHERE {span('2024-11-02', 3)} "
    "GROUP BY time(1d), site fill(none) tz('America/Chicago')",
    f"SELECT mean(kw) FROM power WHERE {span('2024-11-02', 3)} "
    "GROUP BY time(1d), site fill(previous) tz('America/Chicago')",
    f"SELECT mean(kw), count(n) FROM power WHERE {span('2024-11-02', 3)} "
    "GROUP BY time(1d), site fill(0) tz('America/Chicago')",
    f"SELECT count(kw) FROM power WHERE {span('2024-03-10T04', hours=8)} "
    "GROUP BY time(1h), site tz('America/Chicago')",
    f"SELECT count(kw), min(n) FROM power WHERE {span('2024-11-03T03', hours=9)} "
    "GROUP BY time(1h) tz('America/Chicago')",
    f"SELECT count(kw), spread(kw) FROM power WHERE {span('2024-03-30', 2)} "
    "GROUP BY time(1d) tz('Europe/Paris')",
    f"SELECT count(kw), last(kw) FROM power WHERE {span('2024-10-26', 2)} "
    "GROUP BY time(1d), site tz('Europe/Paris')",
    f"SELECT count(kw) FROM power WHERE {span('2024-03-31', hours=4)} "
    "GROUP BY time(1h) tz('Europe/Paris')",
    f"SELECT count(kw) FROM power WHERE {span('2024-10-27', hours=4)} "
    "GROUP BY time(15m) fill(none) tz('Europe/Paris')",
    # Times without an offset are the zone's wall clock, as InfluxDB reads them.
    "SELECT mean(kw) FROM power WHERE time >= '2024-03-30 00:00:00' AND time < '2024-04-01' "
    "GROUP BY time(12h) tz('Europe/Paris')",
    "SELECT count(kw) FROM power WHERE time >= '2024-10-20T00:00:00Z' AND "
    "time < '2024-11-09T00:00:00Z' GROUP BY time(7d) tz('Europe/Paris')",
    "SELECT count(kw) FROM power WHERE time >= '2024-10-24T00:00:00Z' AND "
    "time < '2024-11-08T00:00:00Z' GROUP BY time(2d), site tz('America/Chicago')",
    f"SELECT count(kw) FROM power WHERE {span('2024-10-26', 3)} "
    "GROUP BY time(1d, 6h) tz('Europe/Paris')",
    "SELECT count(kw) FROM power WHERE time >= '2024-11-01T00:00:00Z' AND "
    "time < '2024-11-06T00:00:00Z' GROUP BY time(1d, 6h), site tz('America/Chicago')",
    f"SELECT count(kw) FROM power WHERE {span('2024-03-09', 3)} GROUP BY time(1d) tz('UTC')",
    f"SELECT count(kw) FROM power WHERE {span('2024-10-26', 3)} "
    "GROUP BY time(1d) tz('Europe/London')",
    "SELECT kw, n FROM power WHERE site = 'b' AND time >= '2024-03-31T00:00:00Z' LIMIT 3 "
    "tz('Europe/Paris')",
    f"SELECT max(kw) FROM power WHERE {span('2024-10-26', 3)} GROUP BY site tz('Europe/Paris')",
    f"SELECT mean(kw) FROM power WHERE {span('2024-10-26', 3)} tz('Asia/Kolkata')",
    f"SELECT count(kw) FROM power WHERE {span('2024-03-10T04', hours=4)} "
    "GROUP BY time(30s) fill(none) tz('Asia/Kolkata')",
    # median and percentile (nearest rank: null, or no row, when the rank is outside).
    f"SELECT median(usage), percentile(usage, 50), percentile(usage, 90), percentile(procs, 90), "
    f"median(procs) FROM cpu WHERE time >= {T0}ms AND time < {END} GROUP BY time(1h)",
    "SELECT percentile(usage, 0), percentile(usage, 100), percentile(usage, 0.1), "
    f"percentile(usage, 99.99), percentile(usage, 101) FROM cpu WHERE time >= {T0}ms "
    f"AND time < {END} GROUP BY time(1h)",
    f"SELECT median(used), percentile(used, 50), percentile(used, 10) FROM mem "
    f"WHERE time >= {T0}ms AND time < {END} GROUP BY time(1h), host",
    "SELECT percentile(used, 20), percentile(used, 25), percentile(used, 30) FROM mem "
    f"WHERE time >= {T0}ms AND time < {END} GROUP BY time(1h)",
    f"SELECT percentile(used, 5), mean(used) FROM mem WHERE time >= {T0}ms AND time < {END} "
    "GROUP BY time(1h) fill(none)",
    f"SELECT percentile(used, 5), mean(used) FROM mem WHERE time >= {T0}ms AND time < {END} "
    "GROUP BY time(1h) fill(-1)",
    "SELECT percentile(used, 90) FROM mem",
    f"SELECT percentile(used, 50.5) FROM mem WHERE time >= {T0}ms GROUP BY host",
    "SELECT median(used) FROM mem",
    "SELECT percentile(used, 50), percentile(used, 90) FROM mem",
    f'SELECT median("kw"), percentile("kw", 95), percentile("n", 99) FROM "power" '
    f"WHERE {span('2024-03-09', 3)} GROUP BY time(6h), \"site\" tz('America/Chicago')",
    # A selector alone takes the time of its point.
    f"SELECT max(usage) FROM cpu WHERE time >= {T0}ms",
    f"SELECT first(usage) FROM cpu WHERE time >= {T0}ms GROUP BY host",
    "SELECT max(used), max(used) * 2 FROM mem",
    f"SELECT min(used) FROM mem WHERE time >= {T0}ms AND time < {END} tz('Europe/Paris')",
    # fill(linear), previous and numbers (count too), in both orders.
    f"SELECT mean(used) FROM mem WHERE time >= {T0 - 3_600_000}ms AND time < {END} "
    "GROUP BY time(7m) fill(linear)",
    f"SELECT mean(used), count(used), sum(used) FROM mem WHERE time >= {T0 - 3_600_000}ms "
    f"AND time < {END} GROUP BY time(7m), host fill(linear) LIMIT 12",
    f"SELECT sum(used) FROM mem WHERE time >= {T0 - 3_600_000}ms AND time < {END} "
    "GROUP BY time(25m), host fill(linear) ORDER BY time DESC",
    f"SELECT max(procs) FROM cpu WHERE host = 'web-0' AND time >= {T0}ms AND "
    f"time < {T0 + 800_000}ms GROUP BY time(7s) fill(linear) LIMIT 10",
    f"SELECT count(used), mean(used) FROM mem WHERE host = 'web-0' AND "
    f"time >= {T0 - 3_600_000}ms AND time < {T0 + 1_800_000}ms GROUP BY time(7m) fill(previous)",
    f"SELECT count(used), mean(used) FROM mem WHERE host = 'web-0' AND "
    f"time >= {T0 - 3_600_000}ms AND time < {T0 + 1_800_000}ms GROUP BY time(7m) fill(previous) "
    "ORDER BY time DESC",
    f"SELECT count(used), mean(used) FROM mem WHERE host = 'web-0' AND "
    f"time >= {T0 - 3_600_000}ms AND time < {T0 + 1_800_000}ms GROUP BY time(7m) fill(7)",
    f'SELECT mean("kw"), max("n") FROM "power" WHERE {span("2024-03-30", 2)} '
    'GROUP BY time(1h), "site" fill(linear)',
    f"SELECT max(n) FROM power WHERE site = 'a' AND {span('2024-03-30', 2)} "
    "GROUP BY time(20m) fill(linear) ORDER BY time DESC LIMIT 40",
    f"SELECT mean(kw) FROM power WHERE {span('2024-11-02', 3)} "
    "GROUP BY time(1d), site fill(linear) tz('America/Chicago')",
    f"SELECT mean(kw) FROM power WHERE site = 'a' AND {span('2024-11-03T03', hours=17)} "
    "GROUP BY time(30m) fill(linear) tz('America/Chicago')",
    f"SELECT stddev(used), count(used) FROM mem WHERE host = 'web-0' AND time >= {T0}ms AND "
    f"time < {T0 + 3_800_000}ms GROUP BY time(10m) fill(none)",
    f"SELECT stddev(used) FROM mem WHERE host = 'web-0' AND time >= {T0}ms AND "
    f"time < {T0 + 3_800_000}ms GROUP BY time(10m) fill(3)",
    # OR between tag conditions (AND binds tighter), time bounds AND-ed at the top level.
    f"SELECT max(usage) FROM cpu WHERE (\"host\" = 'web-0' OR \"host\" = 'web-2') AND "
    f'time >= {T0}ms and time <= {END} GROUP BY time(1h), "host"',
    "SELECT max(usage) FROM cpu WHERE host = 'web-0' OR host = 'web-2' AND region = 'eu' "
    "GROUP BY host",
    "SELECT max(usage) FROM cpu WHERE (host = 'web-0' OR (region = 'us' AND host =~ /2/)) "
    f"AND time >= {T0}ms GROUP BY host",
    "SELECT max(usage) FROM cpu WHERE host = 'web-0' OR region = 'eu' AND host != 'web-0' "
    "GROUP BY host",
    f"SELECT mean(usage) FROM cpu WHERE time >= {T0}ms AND time < {END} AND "
    "(region = 'us' OR host = 'web-0') GROUP BY time(30m), region",
    "SHOW TAG VALUES WITH KEY = \"host\" WHERE region = 'us' OR host = 'web-0'",
    "SHOW SERIES WHERE region = 'us' OR host = 'web-0'",
    "SHOW MEASUREMENTS WHERE site = 'b' OR city = 'köln'",
    # Arithmetic on aggregates: + - * / %, literals and other aggregates, nulls propagated.
    'SELECT mean("usage") * 100 AS "pct", max(usage) - min(usage), mean(usage) / 1024, '
    "sum(procs) * 2, sum(procs) / 2, count(usage) + 1, 10 - mean(usage), "
    f"mean(usage) + max(usage) * 2 FROM cpu WHERE time >= {T0}ms AND time < {END} "
    "GROUP BY time(1h)",
    "SELECT (mean(usage) + max(usage)) * 2, -mean(usage), mean(usage) * -1, max(procs) % 3, "
    "max(procs) / 0, mean(usage) / 0, sum(procs) - sum(procs) FROM cpu "
    f"WHERE time >= {T0}ms AND time < {END} GROUP BY time(1h)",
    "SELECT mean(used) * 2, count(used) + 1, mean(used) + count(used) FROM mem "
    f"WHERE host = 'web-0' AND time >= {T0 - 3_600_000}ms AND time < {T0 + 1_800_000}ms "
    "GROUP BY time(7m)",
    "SELECT mean(used) * 2, count(used) + 1 FROM mem WHERE host = 'web-0' AND "
    f"time >= {T0 - 3_600_000}ms AND time < {T0 + 1_800_000}ms GROUP BY time(7m) fill(5)",
    "SELECT mean(used) * 2, count(used) + 1 FROM mem WHERE host = 'web-0' AND "
    f"time >= {T0 - 3_600_000}ms AND time < {T0 + 1_800_000}ms GROUP BY time(7m) fill(none)",
    "SELECT max(used) * 2, min(used) FROM mem",
    "SELECT max(used) - min(used) FROM mem",
    "SELECT sum(procs) / 7, max(procs) % 4, sum(procs) * 1.5, mean(usage) % 3, "
    "max(procs) - 10, 7 / max(procs), max(procs) * max(procs), mean(usage) * mean(procs), "
    f"max(usage) / max(procs) FROM cpu WHERE time >= {T0}ms AND time < {END} GROUP BY time(1h)",
    "SELECT max(procs) % 0, mean(usage) % 0, (0 - max(procs)) % 4, (0 - mean(usage)) % 3, "
    f"max(procs) % -4, -max(procs), 0 / max(procs) FROM cpu WHERE time >= {T0}ms "
    f"AND time < {END} GROUP BY time(1h)",
    "SELECT mean(usage) * 2 + 1, 2 * (1 + mean(usage)), mean(usage) / 4 / 2, "
    f"mean(usage) - 1 - 1, 1 - 1 - mean(usage) FROM cpu WHERE time >= {T0}ms AND "
    f"time < {END} GROUP BY time(1h)",
    "SELECT median(used) * 2, percentile(used, 50) + 1 FROM mem",
    "SELECT stddev(used) + 1, spread(used) * 2, first(used) - last(used) FROM mem",
    f'SELECT mean("kw") * 1000 AS "watts", max("n") - min("n") AS "range" FROM "power" '
    f'WHERE {span("2024-11-02", 3)} GROUP BY time(1d), "site" fill(linear) '
    "tz('America/Chicago')",
    # Column names: aliases first, then the others made unique.
    "SELECT max(used) AS a, min(used) AS a FROM mem",
    "SELECT mean(used) AS max, max(used) FROM mem",
    "SELECT max(used), mean(used) AS max FROM mem",
    "SELECT max(used), max(used) AS max_1, max(used) FROM mem",
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


def test_time_conditions_under_or_are_refused_where_influxdb_reads_them_as_and(
    servers: tuple[Wire, Wire],
) -> None:
    """InfluxDB 1.6 takes every time comparison of WHERE as a bound of the whole query, and
    then reads ``time >= t OR host = 'web-2'`` as ``time >= t AND host = 'web-2'`` (web-0 and
    web-1 have points after t, yet are left out).  That is not what the query says, so we
    answer 400 (docs/influx.md, "Differences")."""
    theirs, ours = servers
    after = T0 + 10_000_000
    q = f"SELECT max(usage) FROM cpu WHERE time >= {after}ms OR host = 'web-2' GROUP BY host"
    status, body = ask(theirs, q, epoch="ms")
    assert status == 200
    [series] = body["results"][0]["series"]
    assert series["tags"] == {"host": "web-2"}
    assert series["values"][0][0] >= after  # the time condition AND-ed
    status, body = ask(ours, q)
    assert status == 400
    assert "time conditions under OR" in body["error"]
    # Both answer nothing for two time ranges OR-ed (InfluxDB: the empty intersection).
    q = f"SELECT max(usage) FROM cpu WHERE time < {T0 + 60_000}ms OR time > {after}ms"
    assert ask(theirs, q) == (200, {"results": [{"statement_id": 0}]})
    assert ask(ours, q)[0] == 400


def test_percentile_alone_takes_the_earliest_of_equal_values(servers: tuple[Wire, Wire]) -> None:
    """``percentile()`` alone without ``GROUP BY time()`` gives the time of its point; among
    points of equal value InfluxDB 1.6 gives one of them (its sort is not stable), we the
    earliest."""
    theirs, ours = servers
    q = "SELECT percentile(usage, 50) FROM cpu WHERE host = 'web-0'"
    [[their_time, their_value]] = ask(theirs, q, epoch="ms")[1]["results"][0]["series"][0]["values"]
    [[our_time, our_value]] = ask(ours, q, epoch="ms")[1]["results"][0]["series"][0]["values"]
    assert their_value == our_value == 8.25
    equal = f"SELECT usage FROM cpu WHERE host = 'web-0' AND time >= {T0}ms"
    times = [
        t
        for t, v in ask(theirs, equal, epoch="ms")[1]["results"][0]["series"][0]["values"]
        if v == 8.25
    ]
    assert their_time in times
    assert our_time == times[0]


def test_intervals_of_seconds_across_an_offset_change_are_refused(
    servers: tuple[Wire, Wire],
) -> None:
    """``tz()`` with an interval that is not whole minutes, over a change of the zone's
    offset: InfluxDB 1.6 answers (buckets shifted by the offset at each point), we answer 400
    (the rollup engine's intervals are whole minutes); without a change in the range such
    intervals are served (in the comparison above, ``time(30s)`` in Asia/Kolkata)."""
    theirs, ours = servers
    q = (
        f"SELECT count(kw) FROM power WHERE {span('2024-03-10T07', hours=2)} "
        "GROUP BY time(7s) fill(none) tz('America/Chicago')"
    )
    assert ask(theirs, q)[0] == 200
    status, body = ask(ours, q)
    assert status == 400
    assert "not a whole number of minutes" in body["error"]


def test_tz_buckets_follow_the_wall_clock_where_influxdb_adds_buckets(
    servers: tuple[Wire, Wire],
) -> None:
    """Across a DST change, an interval longer than the hour the clock moves and not whole
    days (2h here) can give other buckets than InfluxDB 1.6's.  InfluxDB opens a bucket
    at the change in spring (03:00 CDT, off the 2-hour grid, so that 00:00 CST holds 2 hours
    and 03:00 CDT one) and lists an empty bucket at 01:00 CST in autumn (whose points it
    counted in 00:00 CDT); ours open where the zone's clock shows a multiple of 2 hours,
    as every rollup of the engine does (00:00 CST holds the 3 hours up to 04:00 CDT).  The
    same points are counted either way."""
    theirs, ours = servers
    tail = "GROUP BY time(2h) tz('America/Chicago')"
    spring = f"SELECT count(kw) FROM power WHERE site = 'b' AND {span('2024-03-10T04', hours=8)} "
    autumn = f"SELECT count(kw) FROM power WHERE site = 'a' AND {span('2024-11-03T03', hours=9)} "
    answers = {}
    for name, q in (("spring", spring + tail), ("autumn", autumn + tail)):
        for side, wire in (("theirs", theirs), ("ours", ours)):
            status, body = ask(wire, q)
            assert status == 200
            answers[name, side] = body["results"][0]["series"][0]["values"]
    assert [t for t, _ in answers["spring", "theirs"]] == [
        "2024-03-09T22:00:00-06:00",
        "2024-03-10T00:00:00-06:00",
        "2024-03-10T03:00:00-05:00",
        "2024-03-10T04:00:00-05:00",
        "2024-03-10T06:00:00-05:00",
    ]
    assert answers["spring", "ours"] == [
        ["2024-03-09T22:00:00-06:00", 8],
        ["2024-03-10T00:00:00-06:00", 12],
        ["2024-03-10T04:00:00-05:00", 8],
        ["2024-03-10T06:00:00-05:00", 4],
    ]
    assert ["2024-11-03T01:00:00-06:00", 0] in answers["autumn", "theirs"]
    assert [t for t, _ in answers["autumn", "ours"]] == [
        "2024-11-02T22:00:00-05:00",
        "2024-11-03T00:00:00-05:00",
        "2024-11-03T02:00:00-06:00",
        "2024-11-03T04:00:00-06:00",
    ]
    for name in ("spring", "autumn"):
        assert sum(n for _, n in answers[name, "theirs"]) == sum(
            n for _, n in answers[name, "ours"]
        )


@pytest.mark.parametrize(
    ("q", "named"),
    [
        ("", "q"),
        ("SHOW NOTHING", "not supported"),
        ("DROP MEASUREMENT cpu", "not supported"),
        ("SELECT * FROM cpu", "not supported"),
        ("SELECT mode(usage) FROM cpu WHERE time > now() - 1h GROUP BY time(1m)", "mode()"),
        ("SELECT mean(usage) FROM cpu GROUP BY time(1m)", "lower time bound"),
        (f"{RECENT} GROUP BY time(100ms)", "under 1s"),
        ("SELECT usage FROM cpu fill(linear)", "fill(linear) must be used with a function"),
        (f"{RECENT} OR host = 'a' GROUP BY time(1m)", "time conditions under OR"),
        (
            "SELECT mean(usage) FROM cpu WHERE (time > now() - 1h AND host = 'a') OR host = 'b' "
            "GROUP BY time(1m)",
            "time conditions under OR",
        ),
        (f"{RECENT} GROUP BY time(1m) tz('Nowhere/Else')", "unable to find time zone"),
        (f"{RECENT} GROUP BY time(1m) tz('+01:00')", "unable to find time zone"),
        (f"{RECENT} GROUP BY time(1m) tz('Europe/Paris') LIMIT 1", "expected ;"),
        (
            "SELECT count(kw) FROM power WHERE time >= '2024-03-10T00:00:00Z' AND "
            "time < '2024-03-11T00:00:00Z' GROUP BY time(7s) tz('America/Chicago')",
            "not a whole number of minutes",
        ),
        ("SELECT usage * 2 FROM cpu", "arithmetic on raw fields"),
        ("SELECT max(usage), usage FROM cpu", "mixing aggregates and raw fields"),
        ("SELECT max(procs) & 1 FROM cpu", "the operator &"),
        ("SELECT 1 + 2 FROM cpu", "at least one variable"),
        ("SELECT mean(usage) * 1h FROM cpu", "durations"),
        ("SELECT percentile(usage) FROM cpu", "expected 2"),
        ("SELECT percentile(usage, 'a') FROM cpu", "float argument"),
        ("SELECT mean(usage, 2) FROM cpu", "invalid number of arguments"),
        ("SELECT max(m) FROM (SELECT mean(usage) AS m FROM cpu)", "subqueries"),
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
    assert measurements == ["cpu", "mem", "power", "temp", "we ird,name"]
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
