"""Real history end to end: all of onnx/onnx's GitHub Actions history through `dcicd`.

Writes the 6,129 runs and 28,420 jobs of `../shared/datasets/gha-onnx` as `workflow_run` /
`workflow_job` envelopes (tests/real_history.py says how), then, each in its own process as a
user runs them: `dcicd ingest`, `dcicd refresh` (every asset: checks, marts, training, scoring,
anomalies, report). Prints each step's time and peak memory, whether the platform's figures
agree exactly with the ones computed from the CSVs with plain DuckDB (runs, success rate,
duration P50/P95 per workflow and day; billable minutes per job), and the rows the checks set
aside, per rule and why. The baseline: one plain DuckDB scan of the CSV files.

    python benchmarks/real_history.py [--workdir DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
import duckdb  # noqa: E402
from ingest import timed  # noqa: E402

from tests import real_history  # noqa: E402

DCICD = str(Path(sys.executable).parent / "dcicd")


def csv_scan_seconds() -> float:
    started = time.perf_counter()
    real_history.expected_daily()
    real_history.expected_billable_minutes()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, help="keep the home here (default: a temp dir)")
    args = parser.parse_args()
    if not real_history.DATASET.exists():
        raise SystemExit(f"the real history is not at {real_history.DATASET}")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="dcicd-real-"))
    home = workdir / "home"
    shutil.rmtree(home, ignore_errors=True)
    mine = ("DAGSTER_HOME", "DCICD_CONFIG", "MLFLOW_TRACKING_URI")
    env = {k: v for k, v in os.environ.items() if k not in mine} | {"DCICD_HOME": str(home)}

    started = time.perf_counter()
    items = real_history.envelopes()
    exports = real_history.write_envelopes(workdir / "exports" / "onnx.ndjson", items)
    print(f"{len(items):,} envelopes written in {time.perf_counter() - started:.1f} s")
    baseline = csv_scan_seconds()
    print(f"baseline: the figures computed from the CSVs with plain DuckDB: {baseline:.2f} s")

    steps = [("dcicd ingest", ["ingest", str(exports)]), ("dcicd refresh", ["refresh"])]
    for name, command in steps:
        seconds, peak, output = timed([DCICD, *command], env=env)
        print(
            f"{name}: {seconds:.1f} s ({seconds / baseline:.1f}x the baseline), peak {peak:,.0f} MB"
        )
        print("  " + output.strip().replace("\n", "\n  "))

    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        daily = conn.execute(
            "SELECT workflow, day, runs, succeeded, failed, success_rate, duration_p50_s,"
            " duration_p95_s FROM marts.ci_pipeline_daily ORDER BY workflow, day"
        ).fetchall()
        minutes = dict(
            conn.execute("SELECT job_key, billable_minutes FROM core.pipeline_jobs").fetchall()
        )
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM core.pipeline_runs),"
            " (SELECT count(*) FROM core.pipeline_jobs),"
            " (SELECT count(*) FILTER (WHERE NOT ran) FROM core.pipeline_jobs),"
            " (SELECT count(*) FILTER (WHERE NOT ran) FROM core.pipeline_runs),"
            " (SELECT count(*) FROM raw.quarantine)"
        ).fetchone()
        issues = conn.execute(
            "SELECT table_name, rule, description, count(*) FROM quality.row_issues"
            " GROUP BY ALL ORDER BY 4 DESC"
        ).fetchall()
    expected_daily = real_history.expected_daily()
    expected_minutes = real_history.expected_billable_minutes()
    print(
        f"runs {counts[0]:,} ({counts[3]:,} that did not run: skipped or waiting for approval),"
        f" jobs {counts[1]:,} ({counts[2]:,} that never ran), quarantined lines {counts[4]:,}"
    )
    print(
        f"per workflow and day ({len(expected_daily)} rows): runs, success rate, P50/P95"
        f" {'agree exactly' if daily == expected_daily else 'DISAGREE'}"
    )
    print(
        f"billable minutes per job ({len(expected_minutes):,} jobs,"
        f" {sum(expected_minutes.values()):,} minutes)"
        f" {'agree exactly' if minutes == expected_minutes else 'DISAGREE'}"
    )
    print("rows the checks set aside (quality.row_issues):" + ("" if issues else " none"))
    for table, rule, description, count in issues:
        print(f"  {table} {rule} ({description}): {count:,}")
    if daily != expected_daily or minutes != expected_minutes:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
