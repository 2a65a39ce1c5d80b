"""Where a full build of `core.pipeline_jobs` spends its time: EXPLAIN ANALYZE of its two models.

Generates the organisation of benchmarks/refresh.py at --scale (1: 12 million events), builds
the models `core.pipeline_jobs` reads, then profiles the full build of
`core.pipeline_job_states` (every job event's payload parsed, the latest per job) and of
`core.pipeline_jobs` (joined to its run), printing each one's seconds and its costliest
operators (DuckDB's EXPLAIN ANALYZE, operator timings).

    python benchmarks/profile_pipeline_jobs.py [--scale 0.1] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from jobs import FULL_RUNS, GENERATE  # noqa: E402
from refresh import DAYS  # noqa: E402

PROFILE = """
import sys, time, duckdb
from dbt_like_sql import build_model, load_models
from dbt_like_sql.incremental import latest_rows
from dbt_like_sql.session import prepare_session
from dcicd_platform.assets.config_tables import write_config_tables
from dcicd_platform.config import PlatformConfig
conn = duckdb.connect(sys.argv[1], config={"memory_limit": "4GB"})
prepare_session(conn)
write_config_tables(conn, PlatformConfig())
models = {m.table: m for m in load_models()}
for table in ("core.pipeline_runs",):
    started = time.perf_counter()
    build_model(conn, models[table])
    print(f"built {table} in {time.perf_counter() - started:.1f} s")
conn.execute("CREATE SCHEMA IF NOT EXISTS core")
states = models["core.pipeline_job_states"]
conn.execute("PRAGMA enable_profiling = 'json'")
conn.execute("PRAGMA profiling_output = '" + sys.argv[2] + "/states.json'")
started = time.perf_counter()
conn.execute("CREATE OR REPLACE TABLE core.pipeline_job_states AS " + latest_rows(states))
print(f"core.pipeline_job_states whole: {time.perf_counter() - started:.1f} s")
conn.execute("PRAGMA profiling_output = '" + sys.argv[2] + "/jobs.json'")
started = time.perf_counter()
conn.execute("CREATE OR REPLACE TABLE core.pipeline_jobs AS " + models["core.pipeline_jobs"].sql)
print(f"core.pipeline_jobs whole (over the states): {time.perf_counter() - started:.1f} s")
"""


def operators(profile: Path, top: int = 6) -> list[tuple[float, str, int]]:
    """The costliest operators of a JSON profile: (seconds, name, rows)."""
    import json

    found: list[tuple[float, str, int]] = []

    def walk(node: dict) -> None:
        name = node.get("name") or node.get("operator_name") or ""
        seconds = float(node.get("timing", node.get("operator_timing", 0.0)))
        extra = node.get("extra_info") or {}
        detail = next(
            (extra[k] for k in ("Join Type", "Aggregates", "Function", "Table") if k in extra),
            " | ".join(str(e) for e in extra.get("Projections", []) if "(" in str(e)),
        )
        label = re.sub(r"\s+", " ", f"{name.strip()} {detail}").strip()[:110]
        rows = node.get("intermediate_rows", node.get("operator_cardinality", 0))
        found.append((seconds, label, int(rows)))
        for child in node.get("children", []) + node.get("operator", []):
            walk(child)

    walk(json.loads(profile.read_text()))
    return sorted(found, reverse=True)[:top]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.1)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dcicd-profile-", dir=args.workdir))
    database = str(work / "warehouse.duckdb")
    here = str(Path(__file__).parent)
    runs = int(FULL_RUNS * args.scale)
    try:
        run = [sys.executable, "-c", GENERATE, here, database, "0", str(runs), "0"]
        events = subprocess.run(
            [*run, str(DAYS * 86400), "history"], capture_output=True, text=True, check=True
        ).stdout.split()[-1]
        print(f"{runs:,} runs, {int(events):,} events")
        out = subprocess.run(
            [sys.executable, "-c", PROFILE, database, str(work)],
            capture_output=True,
            text=True,
            check=True,
        )
        print(out.stdout, end="")
        for name in ("states", "jobs"):
            print(f"costliest operators of {name}:")
            for seconds, label, rows in operators(work / f"{name}.json"):
                print(f"  {seconds:6.2f} s  {rows:>12,} rows  {label}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
