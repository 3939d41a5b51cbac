"""The CLI's input and errors (issue 25): ``tempodb write`` and ``import`` are all-or-nothing,
CSV inputs as spreadsheets and ``cat`` make them, one-line errors rather than tracebacks, the
last representable instant in ``export``, ``read``'s summary with every digit, and key commands
that refuse a folder without a store."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import pytest
from test_cli_data import env_for, ok, tempodb

from serverproc import create_key, data_args
from tempodb import Client, DataPoint

UTC = datetime.UTC
T0 = datetime.datetime(2012, 1, 1, tzinfo=UTC)
DAY = (T0, T0 + datetime.timedelta(days=1))
LAST = datetime.datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)


def values(client: Client, key: str) -> list[Any]:
    return [p.value for p in client.read_key(key, *DAY).data or []]


def one_line_error(result: Any, status: int = 2) -> str:
    """The stderr of a command that failed as it should: its status and one line, no
    traceback (argparse puts the usage before its line)."""
    assert result.returncode == status, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    if lines[0].startswith("usage: "):
        assert status == 2
        assert lines[-1].startswith("tempodb "), result.stderr
        assert ": error: " in lines[-1], result.stderr
    else:
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("tempodb: ")
    return str(lines[-1])


# -- all or nothing ------------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["file", "stdin"])
def test_a_bad_line_writes_nothing_and_a_rerun_counts_once(
    server: Any, credentials: tuple[str, str], client: Client, tmp_path: Path, source: str
) -> None:
    env = env_for(server, credentials)
    good = "".join(f"2012-01-01T0{h}:00:00Z,{h + 1}\n" for h in range(3))
    bad = good + "2012-01-01T03:00:00Z,abc\n2012-01-01T04:00:00Z,5\n"
    path = tmp_path / "points.csv"

    def write(text: str) -> Any:
        if source == "file":
            path.write_text(text)
            return tempodb("write", "counts", str(path), "--increment", env=env)
        return tempodb("write", "counts", "--increment", env=env, stdin=text)

    line = one_line_error(write(bad))
    assert "line 4" in line
    assert "nothing was written" in line
    assert client.get_series(keys=["counts"]) == []
    # The file is fixed and the command run again: every point counts once.
    assert "wrote 5 points" in write(bad.replace("abc", "4")).stderr
    assert values(client, "counts") == [1, 2, 3, 4, 5]


def test_import_checks_every_line_first(
    server: Any, credentials: tuple[str, str], client: Client, tmp_path: Path
) -> None:
    env = env_for(server, credentials)
    lines = [
        '{"series": {"key": "meta", "name": "m", "tags": ["x"], "attributes": {}}}',
        '{"key": "meta", "t": "2012-01-01T00:00:00Z", "v": 1}',
        '{"key": "other", "t": "2012-01-01T00:00:00Z", "v": 2}',
        '{"key": "bad%key", "t": "2012-01-01T00:00:00Z", "v": 3}',
    ]
    line = one_line_error(tempodb("import", "-", env=env, stdin="\n".join(lines) + "\n"))
    assert "line 4" in line
    assert "Series key must match" in line
    assert client.get_series() == []
    for meta, message in (
        ("5", "series metadata must be a JSON object"),
        ('{"name": "no key"}', "series metadata needs a key"),
        ('{"key": "m", "tags": "x"}', "tags must be a list of non-empty strings"),
        ('{"key": "m", "attributes": {"a": 1}}', "attributes must be an object of strings"),
    ):
        text = lines[1] + '\n{"series": ' + meta + "}\n"
        line = one_line_error(tempodb("import", "-", env=env, stdin=text))
        assert f"line 2: {message}" in line
    csv_lines = "key,time,value\na,2012-01-01T00:00:00Z,1\nb,2012-01-01,1e999\n"
    (tmp_path / "in.csv").write_text(csv_lines)
    line = one_line_error(tempodb("import", str(tmp_path / "in.csv"), "--increment", env=env))
    assert "line 3" in line
    assert client.get_series() == []
    ok(tempodb("import", "-", env=env, stdin="\n".join(lines[:3]) + "\n"))
    assert [s.key for s in client.get_series()] == ["meta", "other"]
    assert values(client, "meta") == [1]


# -- CSV as people make it -----------------------------------------------------------------------


def test_csv_with_a_bom_other_header_names_and_repeated_headers(
    server: Any, credentials: tuple[str, str], client: Client, tmp_path: Path
) -> None:
    env = env_for(server, credentials)
    path = tmp_path / "sheet.csv"
    path.write_bytes(b"\xef\xbb\xbftimestamp,value\r\n2012-01-01T00:00:00Z,1.5\r\n")
    assert "wrote 1 points" in ok_stderr(tempodb("write", "sheet", str(path), env=env))
    assert values(client, "sheet") == [1.5]
    joined = "time,value\n2012-01-01T01:00:00Z,2\n\nTime,Value\n2012-01-01T02:00:00Z,3\n"
    assert "wrote 2 points" in ok_stderr(tempodb("write", "sheet", env=env, stdin=joined))
    assert values(client, "sheet") == [1.5, 2, 3]
    exported = (
        "key,time,value\nk,2012-01-01T00:00:00Z,1\nkey,time,value\nk,2012-01-01T01:00:00Z,2\n"
    )
    ok(tempodb("import", "-", env=env, stdin=exported))
    assert values(client, "k") == [1, 2]


def ok_stderr(result: Any) -> str:
    assert result.returncode == 0, result.stderr
    return str(result.stderr)


def test_numbers_with_underscores_are_refused(
    server: Any, credentials: tuple[str, str], client: Client
) -> None:
    env = env_for(server, credentials)
    for text in ("1_000", "1_000.5"):
        line = one_line_error(
            tempodb("write", "u", env=env, stdin=f"time,value\n2012-01-01T00:00:00Z,{text}\n")
        )
        assert f"line 2: not a number: '{text}'" in line
    assert client.get_series(keys=["u"]) == []


# -- one-line errors -----------------------------------------------------------------------------


def test_bad_input_gets_one_line_not_a_traceback(
    server: Any, credentials: tuple[str, str], client: Client, tmp_path: Path
) -> None:
    env = env_for(server, credentials)
    stdin = "2012-01-01T00:00:00Z,1\n"
    for size in ("0", "-1", "many"):
        line = one_line_error(tempodb("write", "k", "--batch-size", size, env=env, stdin=stdin))
        assert "--batch-size" in line
        one_line_error(tempodb("import", "-", "--batch-size", size, env=env, stdin=stdin))
    assert "Series key must match" in one_line_error(
        tempodb("series", "create", "bad%key", env=env)
    )
    assert "Series key must match" in one_line_error(tempodb("write", "bad%key", env=env))
    assert "must not be empty" in one_line_error(tempodb("write", "", env=env, stdin=stdin))
    missing = tmp_path / "no-such-dir" / "x.csv"
    line = one_line_error(tempodb("export", "-o", str(missing), env=env))
    assert f"cannot write {missing}: No such file or directory" in line
    assert "cannot write" in one_line_error(tempodb("export", "-o", str(tmp_path), env=env))
    assert client.get_series() == []


# -- the last instant ----------------------------------------------------------------------------


def test_export_includes_the_last_representable_instant(
    server: Any, credentials: tuple[str, str], client: Client, tmp_path: Path
) -> None:
    env = env_for(server, credentials)
    client.write_key("edge", [DataPoint(T0, 1), DataPoint(LAST, 2.5)])
    client.write_key("only-last", [DataPoint(LAST, 7)])
    out = tmp_path / "out.jsonl"
    result = tempodb("export", "--format", "jsonl", "-o", str(out), env=env)
    assert "exported 3 points" in ok_stderr(result)
    points = [json.loads(line) for line in out.read_text().splitlines()]
    assert [p for p in points if "series" not in p] == [
        {"key": "edge", "t": "2012-01-01T00:00:00.000Z", "v": 1},
        {"key": "edge", "t": "9999-12-31T23:59:59.999Z", "v": 2.5},
        {"key": "only-last", "t": "9999-12-31T23:59:59.999Z", "v": 7},
    ]
    csv_text = ok(tempodb("export", "--key", "only-last", env=env))
    assert csv_text == "key,time,value\nonly-last,9999-12-31T23:59:59.999Z,7\n"
    # Back in through import, into a fresh database, and read there.
    fresh = server.new_database()
    ok(tempodb("import", str(out), env=env_for(server, fresh)))
    with server.client(*fresh) as other:
        assert other.single_value_key("edge", LAST, "exact").data.value == 2.5
        assert values(other, "edge") == [1]


# -- read's summary ------------------------------------------------------------------------------


def test_read_table_shows_the_summary_with_every_digit(
    server: Any, credentials: tuple[str, str], client: Client
) -> None:
    env = env_for(server, credentials)
    client.write_key("big", [DataPoint(T0, 123_456_789), DataPoint(DAY[1], 0.1)])
    client.write_key("big", [DataPoint(T0 + datetime.timedelta(hours=1), 246_913_578.25)])
    start, end = "2012-01-01", "2012-01-02"
    table = ok(tempodb("read", "big", "--start", start, "--end", end, env=env))
    summary = table.strip().splitlines()[-1]
    assert "sum=370370367.25" in summary
    assert "count=2" in summary
    client.write_key("huge", [DataPoint(T0, 1e308), DataPoint(T0, 1e308)])
    client.write_key("huge", [DataPoint(T0 + datetime.timedelta(hours=1), 1.5e308)])
    table = ok(tempodb("read", "huge", "--start", start, "--end", end, env=env))
    assert "sum=null  mean=1.25e+308" in table


# -- key commands need a store -------------------------------------------------------------------


def test_key_commands_refuse_a_folder_without_a_store(tmp_path: Path) -> None:
    store = tmp_path / "tempo-data"
    key, _ = create_key(data_args(store))
    misspelt = tmp_path / "tempo-dta"
    for command in (["list"], ["revoke", key], ["delete", key]):
        line = one_line_error(tempodb("keys", *command, "--data", str(misspelt)), status=1)
        assert f"no tempodb data in {misspelt}" in line
        assert not misspelt.exists()
    misspelt.mkdir()
    line = one_line_error(tempodb("keys", "list", "--data", str(misspelt)), status=1)
    assert "no tempodb data" in line
    assert list(misspelt.iterdir()) == []
    line = one_line_error(tempodb("backup", "--data", str(misspelt), str(tmp_path / "b")), 1)
    assert "no tempodb data" in line
    assert key in ok(tempodb("keys", "list", "--data", str(store)))
    a_file = tmp_path / "a-file"
    a_file.write_text("not a store")
    line = one_line_error(tempodb("keys", "create", "--data", str(a_file)), status=1)
    assert "cannot open the store" in line
    line = one_line_error(tempodb("keys", "list", "--database-url", "not-a-url"), status=1)
    assert "cannot use --database-url" in line
    not_sqlite = tmp_path / "not-sqlite"
    not_sqlite.mkdir()
    (not_sqlite / "tempodb.sqlite3").write_text("garbage " * 1000)
    for command in (["keys", "list"], ["backup", str(tmp_path / "c")]):
        line = one_line_error(tempodb(*command, "--data", str(not_sqlite)), status=1)
        assert "cannot open the store" in line
