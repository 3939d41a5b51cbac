"""The user commands through the entry point (``python -m tempodb.cli``) against a real server:
series, write, read, and export/import round trips."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from serverproc import tempodb_command
from tempodb import Client, DataPoint
from tempodb.cli import data as cli_data
from tempodb.cli import main

UTC = datetime.UTC
T0 = datetime.datetime(2012, 1, 1, tzinfo=UTC)
DAY = (T0, T0 + datetime.timedelta(days=1))


def env_for(server: Any, credentials: tuple[str, str]) -> dict[str, str]:
    return {
        "TEMPODB_HOST": server.host,
        "TEMPODB_PORT": str(server.port),
        "TEMPODB_SECURE": "false",
        "TEMPODB_KEY": credentials[0],
        "TEMPODB_SECRET": credentials[1],
    }


def tempodb(
    *args: str, env: dict[str, str] | None = None, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TEMPODB_")}
    return subprocess.run(
        tempodb_command(*args),
        input=stdin,
        capture_output=True,
        text=True,
        env={**clean, **(env or {})},
        check=False,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_write_read_and_series(
    server: Any, credentials: tuple[str, str], client: Client, tmp_path: Path
) -> None:
    env = env_for(server, credentials)
    csv_points = "time,value\n2012-01-01T00:00:00Z,1\n2012-01-01T01:00:00.000+01:00,2.5\n"
    assert "wrote 2 points" in tempodb("write", "temp", env=env, stdin=csv_points).stderr
    lines = tmp_path / "counts.jsonl"
    lines.write_text('{"t": "2012-01-01T00:00:00Z", "v": 3}\n\n{"t": "2012-01-01", "v": 4}\n')
    ok(tempodb("write", "hits", str(lines), "--increment", env=env))
    assert [p.value for p in client.read_key("hits", *DAY).data] == [7]
    # 01:00+01:00 is the same instant as 00:00Z: the later line's value stays.
    assert client.read_key("temp", *DAY).data == [DataPoint(T0, 2.5)]

    created = json.loads(
        ok(tempodb("series", "create", "room.1", "--tag", "room", "--attr", "floor=1", env=env))
    )
    assert created["key"] == "room.1"
    assert created["attributes"] == {"floor": "1"}
    ok(
        tempodb(
            "series",
            "update",
            "--tag",
            "room",
            "--name",
            "Room one",
            "--add-tag",
            "warm",
            "--set-attr",
            "color=red",
            "--remove-attr",
            "floor",
            env=env,
        )
    )
    (series,) = client.get_series(keys=["room.1"])
    assert (series.name, series.tags, series.attributes) == (
        "Room one",
        ["room", "warm"],
        {"color": "red"},
    )
    table = ok(tempodb("series", "list", env=env)).splitlines()
    assert [row.split("\t")[0] for row in table] == ["hits", "room.1", "temp"]
    listed = ok(tempodb("series", "list", "--attr", "color=red", "--format", "json", env=env))
    assert [json.loads(line)["key"] for line in listed.splitlines()] == ["room.1"]
    refused = tempodb("series", "delete", env=env)
    assert refused.returncode == 2
    assert "--all" in refused.stderr
    before = [s.to_json() for s in client.get_series()]
    for change in (["--name", "renamed"], ["--add-tag", "everywhere"], ["--set-attr", "x=1"]):
        refused = tempodb("series", "update", *change, env=env)
        assert refused.returncode == 2, refused.stdout
        assert "--all" in refused.stderr
        assert refused.stdout == ""
    assert [s.to_json() for s in client.get_series()] == before
    assert "deleted 1 series" in ok(tempodb("series", "delete", "--key", "room.1", env=env))

    client.write_key("temp", [DataPoint(T0 + datetime.timedelta(hours=h), h) for h in range(6)])
    window = ("--start", "2012-01-01", "--end", "2012-01-02")
    table = ok(tempodb("read", "temp", *window, env=env)).splitlines()
    assert table[0].split() == ["time", "value"]
    assert table[1].split() == ["2012-01-01T00:00:00.000+00:00", "0"]
    assert "count=6" in table[-1]
    csv_out = ok(
        tempodb(
            "read",
            "temp",
            *window,
            "--format",
            "csv",
            "--tz",
            "America/Chicago",
            "--interval",
            "2hour",
            "--function",
            "sum",
            env=env,
        )
    )
    assert csv_out.splitlines() == [
        "time,value",
        "2011-12-31T18:00:00.000-06:00,1",
        "2011-12-31T20:00:00.000-06:00,5",
        "2011-12-31T22:00:00.000-06:00,9",
    ]
    as_json = json.loads(ok(tempodb("read", "temp", *window, "--format", "json", env=env)))
    assert as_json["series"]["key"] == "temp"
    assert len(as_json["data"]) == 6
    assert as_json["summary"]["count"] == 6


def test_connection_options_and_errors(server: Any, credentials: tuple[str, str]) -> None:
    options = [
        "--host",
        server.host,
        "--port",
        str(server.port),
        "--insecure",
        "--key",
        credentials[0],
        "--secret",
        credentials[1],
    ]
    ok(tempodb("write", "x", *options, stdin="2012-01-01T00:00:00Z,5\n"))
    read = ok(
        tempodb(
            "read", "x", "--start", "2012-01-01", "--end", "2012-01-02", "--format", "csv", *options
        )
    )
    assert read.splitlines()[1] == "2012-01-01T00:00:00.000+00:00,5"
    api_key = ["--api-key" if o == "--key" else o for o in options]
    assert "x" in ok(tempodb("series", "list", *api_key))

    missing = tempodb("series", "list")
    assert missing.returncode == 2
    assert "TEMPODB_KEY" in missing.stderr
    env = env_for(server, credentials)
    bad = tempodb("write", "x", env=env, stdin="2012-01-01T00:00:00Z,1\nnot-a-time,2\n")
    assert bad.returncode == 2
    assert "line 2" in bad.stderr
    wrong = tempodb("series", "list", env={**env, "TEMPODB_SECRET": "wrong"})
    assert wrong.returncode == 1
    assert "403" in wrong.stderr


def _fill(client: Client) -> None:
    client.create_series("empty", name="nothing yet", tags=["t"], attributes={"a": "b"})
    client.write_key(
        "ints", [DataPoint(T0 + datetime.timedelta(days=d * 40), d) for d in range(30)]
    )
    client.write_key("floats", [DataPoint(T0, 0.1), DataPoint(T0 + datetime.timedelta(1), -2.0)])
    index = pd.date_range("2012-01-01", periods=60_000, freq="s")  # the windows grow
    client.write_dataframe(pd.DataFrame({"dense": range(60_000)}, index=index))
    series = client.create_series("odd key/with:chars")
    series.tags = ["x"]
    client.update_series(series)
    client.write_key("odd key/with:chars", [DataPoint(T0, 1e300)])


def _data_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if '"series"' not in line]


def test_export_import_round_trip(
    server: Any, credentials: tuple[str, str], client: Client, tmp_path: Path
) -> None:
    _fill(client)
    env = env_for(server, credentials)
    jsonl, csv_file = tmp_path / "all.jsonl", tmp_path / "all.csv"
    exported = tempodb("export", "--format", "jsonl", "--output", str(jsonl), "--progress", env=env)
    assert "exported 60033 points" in ok(exported) + exported.stderr
    assert "100%" in exported.stderr
    ok(tempodb("export", "-o", str(csv_file), env=env))
    assert csv_file.read_text().splitlines()[:2] == [
        "key,time,value",
        "dense,2012-01-01T00:00:00.000Z,0",
    ]

    for source, fmt in ((jsonl, "jsonl"), (csv_file, "csv")):
        target = server.new_database()
        target_env = env_for(server, target)
        imported = tempodb("import", str(source), "--progress", env=target_env)
        assert "wrote 60033 points" in imported.stderr
        assert "100%" in imported.stderr
        again = ok(tempodb("export", "--format", fmt, env=target_env))
        assert _data_lines(again) == _data_lines(source.read_text())
        if fmt == "jsonl":  # metadata came along, under new ids
            metadata = [
                json.loads(line)["series"] for line in again.splitlines() if '"series"' in line
            ]
            original = [
                json.loads(line)["series"]
                for line in source.read_text().splitlines()
                if '"series"' in line
            ]
            strip = [{k: v for k, v in s.items() if k != "id"} for s in original]
            assert [{k: v for k, v in s.items() if k != "id"} for s in metadata] == strip
    # a range and a filter
    ranged = ok(
        tempodb("export", "--key", "ints", "--start", "2012-02-01", "--end", "2012-06-01", env=env)
    )
    assert ranged.splitlines()[1:] == [
        "ints,2012-02-10T00:00:00.000Z,1",
        "ints,2012-03-21T00:00:00.000Z,2",
        "ints,2012-04-30T00:00:00.000Z,3",
    ]


def test_export_windows_shrink_for_dense_data(
    server: Any,
    credentials: tuple[str, str],
    client: Client,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    index = pd.date_range("2012-01-01", periods=5000, freq="10ms")
    client.write_dataframe(pd.DataFrame({"fast": range(5000)}, index=index))
    for name, value in env_for(server, credentials).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(cli_data, "WINDOW_POINTS", 300)
    reads: list[int] = []
    original = Client.read_key

    def counting(self: Client, *args: Any, **kwargs: Any) -> Any:
        result = original(self, *args, **kwargs)
        if kwargs.get("interval") == "raw":  # the others are the rollups that count windows
            reads.append(len(result.data))
        return result

    monkeypatch.setattr(Client, "read_key", counting)
    assert main(["export", "--format", "jsonl"]) == 0
    values = [json.loads(line)["v"] for line in _data_lines(capsys.readouterr().out)]
    assert values == list(range(5000))
    assert max(reads) <= 300  # the windows shrank to the budget
    assert sum(reads) == 5000


def test_secret_from_a_file_keeps_it_out_of_the_process_list(
    server: Any, credentials: tuple[str, str], tmp_path: Path
) -> None:
    env = env_for(server, credentials)
    del env["TEMPODB_SECRET"]
    secret_file = tmp_path / "secret"
    secret_file.write_text(credentials[1] + "\n")
    assert ok(tempodb("series", "list", "--secret-file", str(secret_file), env=env)) is not None
    secret_file.write_text("wrong\n")
    refused = tempodb("series", "list", "--secret-file", str(secret_file), env=env)
    assert refused.returncode != 0
    both = tempodb("series", "list", "--secret", "x", "--secret-file", str(secret_file), env=env)
    assert both.returncode != 0
    assert "not both" in both.stderr
    missing = tempodb("series", "list", "--secret-file", str(tmp_path / "none"), env=env)
    assert missing.returncode != 0
    assert "cannot read --secret-file" in missing.stderr
