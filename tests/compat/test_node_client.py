"""The original TempoDB Node.js client (npm ``tempodb@0.3.2``, unchanged) against our server.

npm installs the package into ``.cache/node-v1-client`` (git-ignored) the first time; the
client always speaks HTTPS, so the server runs with a certificate from a test CA that Node is
told to trust (``NODE_EXTRA_CA_CERTS``).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import trustme
from npm_packages import install

from serverproc import ServerProcess, create_key, data_args

PACKAGE = "tempodb@0.3.2"


def install_client() -> Path:
    return install("node-v1-client", PACKAGE, "tempodb/tempodb.js")


@pytest.fixture(scope="module")
def node_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    client_dir = install_client()
    folder = tmp_path_factory.mktemp("node")
    ca = trustme.CA()
    leaf = ca.issue_cert("localhost")
    cert, key, ca_file = folder / "cert.pem", folder / "key.pem", folder / "ca.pem"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(ca_file))
    store = data_args(folder / "data")
    api_key, secret = create_key(store)
    server = ServerProcess.start(store, "--tls-cert", str(cert), "--tls-key", str(key))
    try:
        result = subprocess.run(
            ["node", str(Path(__file__).with_name("node_v1_client.js"))],
            env={
                **os.environ,
                "NODE_CLIENT_DIR": str(client_dir),
                "NODE_EXTRA_CA_CERTS": str(ca_file),
                "TEMPODB_PORT": str(server.port),
                "TEMPODB_KEY": api_key,
                "TEMPODB_SECRET": secret,
            },
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
    finally:
        assert server.stop() == 0
    steps = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return {step["step"]: step for step in steps}


def test_every_step_ran(node_run: dict[str, Any]) -> None:
    assert len(node_run) == 16


def test_series_creation(node_run: dict[str, Any]) -> None:
    created = node_run["create"]
    assert created["response"] == 200
    assert created["body"]["key"] == "boiler.3.temp"
    assert node_run["create_duplicate"]["response"] == 409
    assert "boiler.3.temp" in node_run["create_duplicate"]["body"]
    anonymous = node_run["create_without_key"]["body"]
    assert anonymous["key"] == anonymous["id"]


def test_writes_and_reads(node_run: dict[str, Any]) -> None:
    assert node_run["write_key"] == {"step": "write_key", "response": 200, "body": ""}
    raw = node_run["read_key_raw"]["body"]
    assert len(raw["data"]) == 1440
    assert raw["data"][61] == {"t": "2012-01-01T01:01:00.000Z", "v": 1}
    assert raw["summary"]["count"] == 1440
    hourly = node_run["read_key_hourly_max_chicago"]["body"]
    assert hourly["rollup"] == {"interval": "PT1H", "function": "max", "tz": "America/Chicago"}
    assert hourly["data"][0] == {"t": "2011-12-31T18:00:00.000-06:00", "v": 59}
    assert len(hourly["data"]) == 24


def test_increments_and_bulk(node_run: dict[str, Any]) -> None:
    assert node_run["increment_key"]["response"] == 200
    assert node_run["write_bulk"]["response"] == 200
    assert node_run["increment_bulk"]["response"] == 200
    datasets = node_run["read_multi"]["body"]
    assert [(d["series"]["key"], [p["v"] for p in d["data"]]) for d in datasets] == [
        ("bulk-a", [1.5]),
        ("bulk-b", [8]),
    ]


def test_metadata_and_filters(node_run: dict[str, Any]) -> None:
    assert [s["key"] for s in node_run["get_series_by_key"]["body"]] == ["boiler.3.temp"]
    updated = node_run["update_series"]["body"]
    assert (updated["name"], updated["tags"], updated["attributes"]) == (
        "Boiler 3",
        ["heating"],
        {"room": "basement"},
    )
    assert [s["key"] for s in node_run["get_series_by_tag_and_attr"]["body"]] == ["boiler.3.temp"]


def test_delete_and_missing_series(node_run: dict[str, Any]) -> None:
    assert node_run["delete_key"]["response"] == 200
    left = node_run["read_after_delete"]["body"]["data"]
    assert len(left) == 720
    assert left[0]["t"] == "2012-01-01T12:00:00.000Z"
    assert node_run["read_missing"]["response"] == 403
