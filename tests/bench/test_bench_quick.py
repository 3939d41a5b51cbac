"""`bench/bench.py --quick` runs end to end and writes the results with every key.

Timings are not asserted (they depend on the machine and on whatever else runs); peers that
are not installed are skipped by the benchmark with a printed reason.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

from report import KEYS, LABELS  # noqa: E402


def test_quick_bench_writes_every_key(tmp_path: Path) -> None:
    output = tmp_path / "latest.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench.py"), "--quick", "--output", str(output)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    document = json.loads(output.read_text())
    assert {"machine", "systems", "mode"} <= set(document)
    assert document["mode"] == "quick"
    systems = document["systems"]
    assert {"tempodb", "numpy_floor"} <= set(systems)
    for name in ("influxdb", "victoriametrics", "tempodb-postgres"):
        assert name in systems or name in document["skipped"], name
        if name in document["skipped"]:
            assert document["skipped"][name] in done.stdout or name in done.stdout
    for figures in systems.values():
        assert set(figures) == set(KEYS)
    ours = systems["tempodb"]
    for key in (
        "W1_points_per_s",
        "W3_raw_10_days_ms",
        "W7_bytes_per_point",
        "W8_requests_per_s",
        "L1_points_per_s",
        "Q1_group_by_1h_all_series_ms",
        "Q1_group_by_1h_by_series_ms",
    ):
        assert isinstance(ours[key], int | float), key
        assert ours[key] > 0, key
    for peer in ("influxdb", "victoriametrics"):
        if peer in systems:
            assert isinstance(systems[peer]["W1_points_per_s"], int | float)
            assert isinstance(systems[peer]["L1_points_per_s"], int | float)
    if "influxdb" in systems:
        assert isinstance(systems["influxdb"]["Q1_group_by_1h_by_series_ms"], int | float)
    assert "target" in done.stdout
    # The README's table: one row per figure measured, a column per system.
    table = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "report.py"), "--markdown", str(output)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.splitlines()
    assert table[0].startswith("| figure | tempodb |")
    w1 = next(line for line in table if line.startswith(f"| {LABELS['W1_points_per_s']} |"))
    assert f"{ours['W1_points_per_s']:,}" in w1
    assert set(LABELS) == set(KEYS)
