"""The npm ``influx`` client (node-influx 5.12.0, unchanged) writing through ``/write`` and
querying through ``/query``: the same script runs against a real InfluxDB 1.6 and against our
server, and every step answers the same (the queries use tz(), fill(linear), percentile,
median, OR and arithmetic).

npm installs the package into ``.cache/node-influx-client`` (git-ignored) the first time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from npm_packages import install
from test_influx_query import same
from test_influx_write import Wire, reference  # noqa: F401 - the InfluxDB 1.6 fixture

PACKAGE = "influx@5.12.0"
SCRIPT = Path(__file__).with_name("node_influx_client.js")


def install_client() -> Path:
    return install("node-influx-client", PACKAGE, "influx/package.json")


def drive(url: str, credentials: tuple[str, str] | None = None) -> dict[str, Any]:
    env = {**os.environ, "NODE_CLIENT_DIR": str(install_client()), "INFLUX_URL": url}
    if credentials is not None:
        env["INFLUX_USER"], env["INFLUX_PASSWORD"] = credentials
    result = subprocess.run(
        ["node", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=120, check=True
    )
    steps = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return {step.pop("step"): step for step in steps}


@pytest.fixture(scope="module")
def runs(reference: Wire, server: Any) -> tuple[dict[str, Any], dict[str, Any]]:  # noqa: F811
    create = urllib.parse.urlencode({"q": "CREATE DATABASE telegraf"})
    assert reference.request("POST", "/query?" + create).status == 200
    return drive(reference.url), drive(server.url, server.new_database("telegraf"))


STEPS = [
    "write",
    "measurements",
    "series",
    "daily_chicago",
    "hourly_or",
    "groups",
    "raw",
    "two_statements",
]


@pytest.mark.parametrize("step", STEPS)
def test_the_client_gets_what_influxdb_gives_it(
    runs: tuple[dict[str, Any], dict[str, Any]], step: str
) -> None:
    theirs, ours = runs
    assert "error" not in theirs[step], theirs[step]
    assert same(theirs[step], ours[step]), (theirs[step], ours[step])


def test_what_the_queries_found(runs: tuple[dict[str, Any], dict[str, Any]]) -> None:
    _, ours = runs
    assert ours["write"]["result"] == 3 * 96 * 2 - 100
    assert ours["measurements"]["result"] == ["cpu"]
    daily = ours["daily_chicago"]["result"]
    # Chicago's days: 2024-11-01 from 19:00 CDT, 11-02, the 25-hour 11-03, 11-04 (CST).
    assert sorted({row["time"] for row in daily}) == [
        1_730_437_200_000,
        1_730_523_600_000,
        1_730_610_000_000,
        1_730_700_000_000,
    ]
    web1 = [row for row in daily if row["host"] == "web-1"]
    assert [row["count"] for row in web1] == [20, 96, 100, 72]  # 5, 24, 25 and 18 hours
    web2 = [row for row in daily if row["host"] == "web-2"]
    assert web2[2]["count"] == (96 + 72) // 2  # no point that day: count is filled linearly too
    assert web2[2]["pct"] == pytest.approx((web2[1]["pct"] + web2[3]["pct"]) / 2)


def test_a_bad_line_is_refused_as_influxdb_refuses_it(
    runs: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    theirs, ours = runs
    assert "unable to parse" in theirs["write_bad_line"]["error"]
    assert "unable to parse" in ours["write_bad_line"]["error"]
