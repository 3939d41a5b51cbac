"""The results table: every figure per system, ratios, and the targets of issues 4, 15
and 18."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: Every figure, in table order; every system gets every key (None: not measured).
KEYS = [
    "W1_points_per_s",
    "W1_python_client_points_per_s",
    "W1_peak_rss_mb",
    "W2_overwrite_points_per_s",
    "W2_increment_points_per_s",
    "W3_raw_10_days_ms",
    "W4_hourly_mean_ms",
    "W4_daily_min_chicago_ms",
    "W4_daily_max_chicago_ms",
    "W4_daily_mean_chicago_ms",
    "W4_daily_stddev_chicago_ms",
    "W4_summary_ms",
    "W5_daily_mean_all_series_ms",
    "W6_delete_10_days_ms",
    "W7_bytes_per_point",
    "W8_requests_per_s",
    "W8_floor_requests_per_s",
    "S1_ingest_1k_series_points_per_s",
    "S1_ingest_100k_series_points_per_s",
    "S2_auto_1_month_ms",
    "S2_auto_1_year_ms",
    "S2_auto_10_years_ms",
    "S2_raw_10_years_ms",
    "S2_raw_10_years_rss_growth_mb",
    "S3_create_series_one_per_request_per_s",
    "S3_create_series_bulk_per_s",
    "S3_series_by_tag_ms",
    "S4_small_write_p50_1k_series_ms",
    "S4_raw_read_p50_1k_series_ms",
    "S4_series_by_tag_p50_1k_series_ms",
    "S4_rss_1k_series_mb",
    "S4_create_series_points_per_s",
    "S4_second_round_points_per_s",
    "S4_small_write_p50_1m_series_ms",
    "S4_raw_read_p50_1m_series_ms",
    "S4_series_by_tag_p50_1m_series_ms",
    "S4_rss_1m_series_mb",
    "S4_peak_rss_mb",
    "P1_remote_write_new_series_samples_per_s",
    "P1_remote_write_samples_per_s",
    "P1_remote_read_1_day_100_series_ms",
    "R1_pass_s",
    "R1_pass_points_per_s",
    "R1_daily_rollup_years",
    "R1_daily_rollup_raw_ms",
    "R1_daily_rollup_tier_ms",
    "R1_steady_size_half_mb",
    "R1_steady_size_end_mb",
    "R1_steady_growth_second_half_pct",
    "V1_segment_raw_10_days_ms",
    "V1_segment_raw_10_days_ratio",
    "V1_segment_hourly_mean_ms",
    "V1_segment_hourly_mean_ratio",
    "V1_segment_daily_max_chicago_ms",
    "V1_segment_daily_max_chicago_ratio",
    "V1_aggregate_daily_mean_all_series_ms",
    "V1_aggregate_daily_mean_all_series_ratio",
    "V2_paged_10_years_ms",
    "V2_paged_10_years_rss_growth_mb",
    "V2_paged_10_years_ratio",
]

PEERS = ("influxdb", "victoriametrics", "prometheus")
OURS = "tempodb"
OURS_PG = "tempodb-postgres"


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return "n/s" if value == "not supported" else value
    if isinstance(value, float) and value < 100:
        return f"{value:.2f}"
    return f"{value:,.0f}" if isinstance(value, int | float) else str(value)


def _ratio(ours: object, other: object) -> str:
    if isinstance(ours, int | float) and isinstance(other, int | float) and other:
        return f"{ours / other:.2f}"
    return "-"


def targets(
    systems: dict[str, dict[str, Any]], workloads: Sequence[str] | None = None
) -> list[tuple[str, bool | None, str]]:
    """Each target: its text, whether it holds (None: a figure is missing), the figures.
    Only the targets of ``workloads`` (the first two letters of their figures' names), if
    given."""
    ours = systems.get(OURS, {})
    ours_pg = systems.get(OURS_PG, {})
    peers = [systems[p] for p in PEERS if p in systems]
    vm = systems.get("victoriametrics", {})
    influx = systems.get("influxdb", {})
    found: list[tuple[str, bool | None, str]] = []

    def number(figures: dict[str, Any], key: str) -> float | None:
        value = figures.get(key)
        return float(value) if isinstance(value, int | float) else None

    def times(figures: dict[str, Any], key: str, factor: float) -> float | None:
        value = number(figures, key)
        return None if value is None else factor * value

    def check(text: str, value: float | None, bound: float | None, higher: bool) -> None:
        if workloads is not None and text[:2] not in workloads:
            return
        if value is None or bound is None:
            found.append((text, None, "missing"))
            return
        holds = value >= bound if higher else value <= bound
        found.append((text, holds, f"{value:,.3g} vs {bound:,.3g}"))

    check(
        "W1 ingest >= VictoriaMetrics",
        number(ours, "W1_points_per_s"),
        number(vm, "W1_points_per_s"),
        True,
    )
    check("W8 small writes >= 2,000 req/s", number(ours, "W8_requests_per_s"), 2000.0, True)
    for key in (
        "W3_raw_10_days_ms",
        "W4_hourly_mean_ms",
        "W4_daily_min_chicago_ms",
        "W4_daily_max_chicago_ms",
        "W4_daily_mean_chicago_ms",
        "W4_daily_stddev_chicago_ms",
        "W4_summary_ms",
        "W5_daily_mean_all_series_ms",
    ):
        fastest = [t for t in (number(p, key) for p in peers) if t is not None]
        check(
            f"{key} <= half the faster peer",
            number(ours, key),
            min(fastest) / 2 if fastest else None,
            False,
        )
    check(
        "W7 bytes/pt <= 1.5x VictoriaMetrics",
        number(ours, "W7_bytes_per_point"),
        times(vm, "W7_bytes_per_point", 1.5),
        False,
    )
    check("W1 peak RSS < 500 MB", number(ours, "W1_peak_rss_mb"), 500.0, False)
    # Issue 15: many series, small writes, series metadata.
    s1 = "S1_ingest_100k_series_points_per_s"
    check("S1 100k series >= VictoriaMetrics", number(ours, s1), number(vm, s1), True)
    check(
        "S1 100k series on PostgreSQL >= 0.5x VictoriaMetrics",
        number(ours_pg, s1),
        times(vm, s1, 0.5),
        True,
    )
    w8 = "W8_requests_per_s"
    check("W8 small writes >= InfluxDB", number(ours, w8), number(influx, w8), True)
    check(
        "W8 small writes on PostgreSQL >= 0.5x InfluxDB",
        number(ours_pg, w8),
        times(influx, w8, 0.5),
        True,
    )
    s3 = "S3_create_series_bulk_per_s"
    check("S3 bulk creation >= 0.5x VictoriaMetrics", number(ours, s3), times(vm, s3, 0.5), True)
    s3 = "S3_series_by_tag_ms"
    check("S3 series by tag <= VictoriaMetrics", number(ours, s3), number(vm, s3), False)
    for what, factor in (("small_write", 1.5), ("raw_read", 1.5), ("series_by_tag", 2.0)):
        at_1k = f"S4_{what}_p50_1k_series_ms"
        check(
            f"S4 {what} p50 at 1M series <= {factor}x at 1k",
            number(ours, f"S4_{what}_p50_1m_series_ms"),
            times(ours, at_1k, factor),
            False,
        )
    check("S4 peak RSS at 1M series < 1 GiB", number(ours, "S4_peak_rss_mb"), 1024.0, False)
    # Issue 18: Prometheus' remote storage.
    p1 = "P1_remote_write_samples_per_s"
    check("P1 remote_write >= 0.5x VictoriaMetrics", number(ours, p1), times(vm, p1, 0.5), True)
    # Issue 16: the 1.0 reads against the same reads through the 0.5 routes.
    for name in ("segment_raw_10_days", "segment_hourly_mean", "segment_daily_max_chicago"):
        check(f"V1 {name} <= 1.1x the 0.5 read", number(ours, f"V1_{name}_ratio"), 1.1, False)
    aggregate = "V1_aggregate_daily_mean_all_series_ratio"
    check("V1 aggregate of every series <= 1.2x W5", number(ours, aggregate), 1.2, False)
    growth = "V2_paged_10_years_rss_growth_mb"
    check("V2 paged 10-year read grows RSS < 50 MB", number(ours, growth), 50.0, False)
    return found


def print_table(document: dict[str, Any]) -> None:
    """The figures of the workloads run (``document["workloads"]``, all if absent), the
    ratios to the peers and the numpy floor, and the targets."""
    systems: dict[str, dict[str, Any]] = document["systems"]
    workloads: list[str] | None = document.get("workloads")
    keys = [k for k in KEYS if workloads is None or k[:2] in workloads]
    names = list(systems)
    columns = [*names, *(f"{OURS}/{p}" for p in PEERS if p in systems)]
    if "numpy_floor" in systems:
        columns.append(f"{OURS}/floor")
    width = max(len(k) for k in KEYS)
    print()
    print(f"{'figure':<{width}} " + " ".join(f"{c:>16}" for c in columns))
    ours = systems.get(OURS, {})
    for key in keys:
        row = [_cell(systems[name].get(key)) for name in names]
        row += [_ratio(ours.get(key), systems[p].get(key)) for p in PEERS if p in systems]
        if "numpy_floor" in systems:
            row.append(_ratio(ours.get(key), systems["numpy_floor"].get(key)))
        print(f"{key:<{width}} " + " ".join(f"{c:>16}" for c in row))
    print()
    for text, holds, detail in targets(systems, workloads):
        mark = {True: "holds", False: "MISSED", None: "n/a"}[holds]
        print(f"  target {text:<58} {mark:>7}  ({detail})")
    for name, reason in document.get("skipped", {}).items():
        print(f"  skipped {name}: {reason}")
    machine = document.get("machine", {})
    print(
        f"\nmachine: {machine.get('cpu')}, {machine.get('cores')} cores, "
        f"{machine.get('memory_gib')} GiB, {machine.get('os')}; mode {document.get('mode')}"
    )
