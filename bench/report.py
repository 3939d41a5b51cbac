"""The results table: every figure per system, ratios, and the targets of issues 4, 15,
16, 17 and 18."""

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
    "L1_points_per_s",
    "Q1_group_by_1h_all_series_ms",
    "Q1_group_by_1h_by_series_ms",
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
    # Issue 17: line protocol and InfluxQL against the peers.
    l1 = "L1_points_per_s"
    check("L1 line-protocol ingest >= VictoriaMetrics", number(ours, l1), number(vm, l1), True)
    check("L1 line-protocol ingest >= 2x InfluxDB", number(ours, l1), times(influx, l1, 2.0), True)
    for name in ("all_series", "by_series"):
        q1 = f"Q1_group_by_1h_{name}_ms"
        check(f"Q1 GROUP BY time(1h) {name} <= 0.5x InfluxDB", number(ours, q1),
              times(influx, q1, 0.5), False)  # fmt: skip
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


#: What each figure measures, as the README's tables say it.
LABELS: dict[str, str] = {
    "W1_points_per_s": "W1 ingest, 10k points per request (points/s)",
    "W1_python_client_points_per_s": "W1 through the Python client from DataPoints (points/s)",
    "W1_peak_rss_mb": "W1 server peak RSS (MB)",
    "W2_overwrite_points_per_s": "W2 overwrite existing points (points/s)",
    "W2_increment_points_per_s": "W2 increment existing points (points/s)",
    "W3_raw_10_days_ms": "W3 raw read, 10 days of one series (ms)",
    "W4_hourly_mean_ms": "W4 hourly mean, one series, 100k points (ms)",
    "W4_daily_min_chicago_ms": "W4 daily min, America/Chicago (ms)",
    "W4_daily_max_chicago_ms": "W4 daily max, America/Chicago (ms)",
    "W4_daily_mean_chicago_ms": "W4 daily mean, America/Chicago (ms)",
    "W4_daily_stddev_chicago_ms": "W4 daily stddev, America/Chicago (ms)",
    "W4_summary_ms": "W4 summary (ms)",
    "W5_daily_mean_all_series_ms": "W5 daily mean in America/Chicago, 100 series (ms)",
    "W6_delete_10_days_ms": "W6 delete 10 days of one series (ms)",
    "W7_bytes_per_point": "W7 bytes on disk per point",
    "W8_requests_per_s": "W8 8 clients, 10 series x 1 point per request (requests/s)",
    "W8_floor_requests_per_s": "W8's floor: the cheapest authenticated request (requests/s)",
    "S1_ingest_1k_series_points_per_s": "S1 ingest into 1k series (points/s)",
    "S1_ingest_100k_series_points_per_s": "S1 ingest into 100k series (points/s)",
    "S2_auto_1_month_ms": "S2 automatic rollup, 1 month of minute data (ms)",
    "S2_auto_1_year_ms": "S2 automatic rollup, 1 year (ms)",
    "S2_auto_10_years_ms": "S2 automatic rollup, 10 years (ms)",
    "S2_raw_10_years_ms": "S2 raw read of 10 years (5.26M points) (ms)",
    "S2_raw_10_years_rss_growth_mb": "S2 server memory growth during that read (MB)",
    "S3_create_series_one_per_request_per_s": "S3 create series, one per request (per s)",
    "S3_create_series_bulk_per_s": "S3 create series, 10,000 per request (per s)",
    "S3_series_by_tag_ms": "S3 series by tag among 100k (ms)",
    "S4_small_write_p50_1k_series_ms": "S4 small write p50 at 1k series (ms)",
    "S4_raw_read_p50_1k_series_ms": "S4 one-series raw read p50 at 1k series (ms)",
    "S4_series_by_tag_p50_1k_series_ms": "S4 tag lookup of 1,000 series p50 at 1k series (ms)",
    "S4_rss_1k_series_mb": "S4 server RSS at 1k series (MB)",
    "S4_create_series_points_per_s": "S4 multi writes creating series (points/s)",
    "S4_second_round_points_per_s": "S4 second round of points to them (points/s)",
    "S4_small_write_p50_1m_series_ms": "S4 small write p50 at 1M series (ms)",
    "S4_raw_read_p50_1m_series_ms": "S4 one-series raw read p50 at 1M series (ms)",
    "S4_series_by_tag_p50_1m_series_ms": "S4 tag lookup of 1,000 series p50 at 1M series (ms)",
    "S4_rss_1m_series_mb": "S4 server RSS at 1M series (MB)",
    "S4_peak_rss_mb": "S4 server peak RSS (MB)",
    "P1_remote_write_new_series_samples_per_s": "P1 remote_write, new series (samples/s)",
    "P1_remote_write_samples_per_s": "P1 remote_write (samples/s)",
    "P1_remote_read_1_day_100_series_ms": "P1 remote_read, 1 day of 100 series (ms)",
    "R1_pass_s": "R1 retention pass over 100 series x 1 year of minutes (s)",
    "R1_pass_points_per_s": "R1 that pass (points dropped per s)",
    "R1_daily_rollup_years": "R1 years of the daily rollup below",
    "R1_daily_rollup_raw_ms": "R1 daily mean in America/Chicago from raw points (ms)",
    "R1_daily_rollup_tier_ms": "R1 the same from the 15-minute tier (ms)",
    "R1_steady_size_half_mb": "R1 size under steady writes, half way (MiB)",
    "R1_steady_size_end_mb": "R1 size under steady writes, at the end (MiB)",
    "R1_steady_growth_second_half_pct": "R1 growth over the second half (%)",
    "V1_segment_raw_10_days_ms": "V1 1.0 segment, raw 10 days (ms)",
    "V1_segment_raw_10_days_ratio": "V1 that / the 0.5 read",
    "V1_segment_hourly_mean_ms": "V1 1.0 segment, hourly mean (ms)",
    "V1_segment_hourly_mean_ratio": "V1 that / the 0.5 read",
    "V1_segment_daily_max_chicago_ms": "V1 1.0 segment, daily max in Chicago (ms)",
    "V1_segment_daily_max_chicago_ratio": "V1 that / the 0.5 read",
    "V1_aggregate_daily_mean_all_series_ms": "V1 aggregate of 100 series, daily mean (ms)",
    "V1_aggregate_daily_mean_all_series_ratio": "V1 that / W5",
    "V2_paged_10_years_ms": "V2 paged raw read of 10 years (ms)",
    "V2_paged_10_years_rss_growth_mb": "V2 server memory growth during it (MB)",
    "V2_paged_10_years_ratio": "V2 that / the unpaged read",
    "L1_points_per_s": "L1 W1's data through line protocol, 10k lines per request (points/s)",
    "Q1_group_by_1h_all_series_ms": "Q1 InfluxQL GROUP BY time(1h), 10 days of 100 series (ms)",
    "Q1_group_by_1h_by_series_ms": 'Q1 the same GROUP BY time(1h), "s": a line per series (ms)',
}

#: The README's column of each system.
HEADINGS = {
    OURS: "tempodb",
    OURS_PG: "tempodb on PostgreSQL",
    "tempodb-citus": "tempodb on Citus",
    "influxdb": "InfluxDB",
    "victoriametrics": "VictoriaMetrics",
    "prometheus": "Prometheus",
    "numpy_floor": "numpy floor",
}


def markdown(document: dict[str, Any], prefixes: Sequence[str] = ()) -> str:
    """The figures as a Markdown table (the README's), the rows whose figure starts with one
    of ``prefixes`` (all without), a column per system that has at least one of them."""
    systems: dict[str, dict[str, Any]] = document["systems"]
    keys = [k for k in KEYS if not prefixes or k.startswith(tuple(prefixes))]
    names = [n for n in systems if any(systems[n].get(k) is not None for k in keys)]
    lines = [
        "| figure | " + " | ".join(HEADINGS.get(n, n) for n in names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for key in keys:
        cells = [systems[n].get(key) for n in names]
        if all(cell is None for cell in cells):
            continue
        shown = ["" if cell is None else _cell(cell) for cell in cells]
        lines.append(f"| {LABELS.get(key, key)} | " + " | ".join(shown) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    import argparse
    import json

    parser = argparse.ArgumentParser(description="print a results file of bench.py")
    parser.add_argument("results", help="a JSON file bench.py wrote (bench/results/latest.json)")
    parser.add_argument("--markdown", action="store_true", help="as the README's Markdown table")
    parser.add_argument("--only", default="", help="the figures of these prefixes: W1,S3,...")
    args = parser.parse_args()
    with open(args.results) as file:
        results = json.load(file)
    if args.markdown:
        print(markdown(results, [p for p in args.only.split(",") if p]))
    else:
        print_table(results)
