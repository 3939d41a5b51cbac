"""Retention end to end: a real ``tempodb serve`` (both stores) with a fast retention pass,
the real client over HTTP, the ``tempodb keys`` commands.  Rollups over the expired range
answer what the raw points answered before they expired; old writes are refused."""

from __future__ import annotations

import base64
import datetime
import json
import math
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from serverproc import ServerProcess, create_key, data_args, tempodb_command
from tempodb import Client, DataPoint
from tempodb.errors import InvalidRequestError, TempoDBApiException

UTC = datetime.UTC
QUARTER = datetime.timedelta(minutes=15)


def floor_quarter(when: datetime.datetime) -> datetime.datetime:
    return when.replace(minute=when.minute // 15 * 15, second=0, microsecond=0)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_args(request: pytest.FixtureRequest, tmp_path: Any) -> list[str]:
    if request.param == "sqlite":
        return data_args(tmp_path / "data")
    cluster = request.getfixturevalue("pg_cluster")
    name = f"retention_{int(time.time() * 1000) % 10**9}"
    return ["--database-url", cluster.create_database(name)]


@pytest.fixture
def served(store_args: list[str]) -> Iterator[tuple[ServerProcess, list[str]]]:
    process = ServerProcess.start(store_args, "--retention-every", "0.2")
    try:
        yield process, store_args
    finally:
        assert process.stop() == 0


def keys(store_args: list[str], *args: str) -> str:
    return subprocess.run(
        tempodb_command("keys", *args, *store_args),
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def admin_request(
    url: str, admin: tuple[str, str], path: str, method: str = "GET", body: Any = None
) -> tuple[int, Any]:
    token = base64.b64encode(f"{admin[0]}:{admin[1]}".encode()).decode()
    request = urllib.request.Request(
        f"{url}/v1{path}",
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Basic {token}"},
        method=method,
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)
    return bool(a == b)


READS = [
    ("15min", "mean", ""),
    ("1hour", "sum", "America/Chicago"),
    ("1hour", "stddev", "Asia/Kolkata"),
    ("1day", "max", "America/Chicago"),
    ("1day", "count", "Asia/Kolkata"),
    ("3hour", "min", ""),
    ("1month", "ss", "America/Chicago"),
]


def test_retention_end_to_end(served: tuple[ServerProcess, list[str]]) -> None:
    process, store_args = served
    key, secret = create_key(store_args)
    admin = create_key(store_args, "--admin")
    client = Client(key, secret, host=process.host, port=process.port, secure=False)
    now = datetime.datetime.now(UTC)
    begin = floor_quarter(now - datetime.timedelta(days=3))
    points = []
    at = begin + datetime.timedelta(seconds=7)
    step = 0
    while at < now - datetime.timedelta(minutes=5):
        value: int | float = step % 17 if step % 3 else (step % 101) / 7
        points.append(DataPoint(at, value))
        at += datetime.timedelta(minutes=2, seconds=13)
        step += 1
    client.write_key("s", points)
    start, end = begin - QUARTER, floor_quarter(now) + QUARTER
    before = {}
    for interval, function, tz in READS:
        read = client.read_key("s", start, end, interval=interval, function=function, tz=tz)
        before[(interval, function, tz)] = read
    assert before[("1day", "count", "Asia/Kolkata")].summary.count == len(points)
    folds = ["first", "last", "range", "mean", "stddev"]

    def read_10() -> tuple[list[Any], list[Any], Any]:
        # The 1.0 reads, in pages of 7 buckets.
        segment = list(
            client.read_segment(
                "s", start, end, rollup_period="PT2H", rollup_fold="max", tz="Asia/Kolkata", limit=7
            )
        )
        rollups = list(client.read_rollups("s", start, end, period="P1D", folds=folds, limit=2))
        return segment, rollups, client.read_summary("s", start, end)

    segment_before, rollups_before, summary_before = read_10()

    # A retention of two days, set over HTTP by an administrator key; the server applies it.
    status, shown = admin_request(
        process.url, admin, f"/database/{key}/retention/", "PUT", {"retention": "2d"}
    )
    assert status == 200
    assert shown == {"key": key, "retention": "2d", "tier_retention": "none"}
    assert admin_request(process.url, (key, secret), f"/database/{key}/retention/")[0] == 403
    assert "retention=2d" in keys(store_args, "list")
    cutoff = now - datetime.timedelta(days=2)
    deadline = time.monotonic() + 30
    while True:
        raw = client.read_key("s", start, end, interval="raw")
        if raw.data and raw.data[0].ts >= floor_quarter(cutoff) - QUARTER:
            break
        assert time.monotonic() < deadline, "the retention pass did not run"
        time.sleep(0.2)
    # A raw read answers the kept points only.
    assert len(raw.data) < len(points) * 3 // 4
    assert [p.value for p in raw.data] == [p.value for p in points[-len(raw.data) :]]

    for (interval, function, tz), old in before.items():
        new = client.read_key("s", start, end, interval=interval, function=function, tz=tz)
        assert [p.ts for p in new.data] == [p.ts for p in old.data], (interval, tz)
        for a, b in zip(new.data, old.data, strict=True):
            assert type(a.value) is type(b.value), (interval, function, tz)
            assert same(a.value, b.value), (interval, function, tz, a, b)
        for name in ("sum", "mean", "max", "min", "stddev", "count"):
            assert same(getattr(new.summary, name), getattr(old.summary, name)), name
    segment_after, rollups_after, summary_after = read_10()
    assert [(p.ts, p.value) for p in segment_after] == [(p.ts, p.value) for p in segment_before]
    assert [p.ts for p in rollups_after] == [p.ts for p in rollups_before]
    for a, b in zip(rollups_after, rollups_before, strict=True):
        assert all(same(a.values[name], b.values[name]) for name in folds), (a, b)
    for name in ("count", "sum", "mean", "min", "max", "stddev"):
        assert same(getattr(summary_after, name), getattr(summary_before, name)), name
    with pytest.raises(InvalidRequestError, match="percentile"):
        list(
            client.read_segment("s", start, end, rollup_period="PT1H", rollup_fold="percentile,90")
        )
    # Which part came from the tier, and where raw data begins.
    answer = client.request(
        "/series/key/s/data/",
        params=[
            ("start", start.isoformat()),
            ("end", end.isoformat()),
            ("interval", "1hour"),
            ("function", "sum"),
        ],
    )
    until = datetime.datetime.fromisoformat(answer["tier"]["until"].replace("Z", "+00:00"))
    assert answer["tier"]["interval"] == "PT15M"
    assert until <= raw.data[0].ts
    assert answer["tier"]["points"] == len(points) - len([p for p in points if p.ts >= until])

    # What the tier cannot answer is a 400 naming what it offers.
    with pytest.raises(InvalidRequestError, match="15-minute tier") as refused:
        client.read_key("s", start, end, interval="5min", function="mean")
    assert "stddev" in str(refused.value)
    with pytest.raises(InvalidRequestError, match="15-minute marks"):
        client.read_key("s", begin + datetime.timedelta(minutes=1), end, interval="1hour")

    # Writes older than the retention are refused and nothing of them is stored.
    old_point = DataPoint(now - datetime.timedelta(days=2, hours=1), 1)
    with pytest.raises(TempoDBApiException, match=r"retention of this database \(2d\)") as exc:
        client.write_key("s", [old_point, DataPoint(now, 2)])
    assert exc.value.status == 422
    assert client.single_value_key("s", now, "exact").data is None
    answer_207 = client.write_multi(
        [
            {"key": "s", "t": old_point.ts.isoformat(), "v": 1},
            {"key": "s", "t": now.isoformat(), "v": 3},
        ]
    )
    assert answer_207 is not None
    entries = answer_207["error"]["multistatus"]
    assert entries[0]["status"] == "422"
    assert "2d" in entries[0]["messages"][0]
    assert entries[1]["status"] == "200"
    assert client.single_value_key("s", now, "exact").data.value == 3

    # A delete that would cut a tier bucket is refused; whole buckets go.
    with pytest.raises(InvalidRequestError, match="15-minute tier bucket"):
        client.delete_key("s", begin + datetime.timedelta(minutes=1), begin + QUARTER)
    client.delete_key("s", begin, begin + 4 * QUARTER)
    hourly = client.read_key("s", start, end, interval="1hour", function="count")
    old_hourly = before[("1hour", "sum", "America/Chicago")]
    assert hourly.data[0].ts > old_hourly.data[0].ts

    # The CLI changes it too; `none` keeps everything from now on.
    assert "retention none" in keys(store_args, "retention", key, "none")
    # A server reads the retentions again once a second (RetentionView): another process's
    # change counts from the next read.
    time.sleep(1.1)
    client.write_key("s", [old_point])


def test_keys_commands_set_and_show_retentions(tmp_path: Any) -> None:
    store_args = data_args(tmp_path / "data")
    key, _ = create_key(store_args, "--retention", "90d", "--tier-retention", "520w")
    listed = [json.loads(line) for line in keys(store_args, "list", "--json").splitlines()]
    assert listed == [
        {
            "key": key,
            "name": "",
            "admin": False,
            "revoked": False,
            "retention": "90d",
            "tier_retention": "520w",
        }
    ]
    assert "retention 36h, tier retention none" in keys(store_args, "retention", key, "36h")
    assert f"{key}  retention=36h" in keys(store_args, "list")
    bad = subprocess.run(
        tempodb_command("keys", "retention", key, "3 months", *store_args),
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2
    assert "30m, 12h, 90d or 52w, or none" in bad.stderr
    unknown = subprocess.run(
        tempodb_command("keys", "retention", "nokey", "1d", *store_args),
        capture_output=True,
        text=True,
    )
    assert unknown.returncode == 1
    assert "no such key" in unknown.stderr
