"""The scheduled jobs at scale: `hourly_refresh` and `watch` end to end, as the daemon runs them.

Builds the organisation of benchmarks/refresh.py (200 services over a year, straight into
raw.events: at --scale 1, 2,000,000 CI runs, 10,000,000 jobs, 12 million events) and a second
one a quarter its size. Then runs, each in its own process, the job the `hourly_refresh`
schedule launches (`refresh_data`) and the one `watch_every_5_minutes` launches (`watch`),
resolved from `build_definitions` and executed in process against a Dagster instance in the
home, checks, snapshot, detectors and scoring included:
  - full: both jobs over the whole history;
  - after one more hour of events: `watch`, then `hourly_refresh`;
  - after one more day of events: `hourly_refresh`, then `watch`.
Prints each run's seconds and peak memory, its slowest steps (Dagster's step start and success
events), and the goals as ratios: `watch` after one more hour at most 30 s and flat with the
history (a quarter of the organisation and all of it within 20%); `hourly_refresh` after one
more day at most 0.1 of its full run; the full rebuild at most 10x one scan of raw.events; the
peak memory of every run under `warehouse.memory_limit`.

    python benchmarks/jobs.py [--scale 0.05] [--memory-limit 4GB] [--workdir DIR]

The default scale, 0.05 (100,000 runs, 600,000 events), takes a few minutes on 2 cores;
--scale 1 is the 12-million-event organisation.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from ingest import timed  # noqa: E402
from refresh import DAYS, SCAN  # noqa: E402

FULL_RUNS = 2_000_000  # --scale 1: the 12-million-event organisation of benchmarks/refresh.py

# Appends `runs` runs (and their jobs, pushes, deployments, incidents) spread over `seconds`
# seconds from `offset` seconds after the organisation's start, numbered from `first`.
GENERATE = """
import sys, duckdb
sys.path.insert(0, sys.argv[1])
from refresh import RUNS, EVENTS, SERVICES, JOBS_PER_RUN
from dcicd_platform.ingest.schema import ensure_raw_schema
database, first, runs, offset, seconds, load = sys.argv[2:8]
conn = duckdb.connect(database, config={"checkpoint_threshold": "1MB"})
ensure_raw_schema(conn)
conn.execute(RUNS.format(services=SERVICES, start="2025-11-01", day_offset=offset,
    days=f"({seconds} / 86400)", first=first, runs=runs))
for statement in EVENTS.format(jobs=JOBS_PER_RUN, load=load).split(";"):
    if statement.strip():
        conn.execute(statement)
print(conn.execute("SELECT count(*) FROM raw.events").fetchone()[0])
"""

# Runs one job as the daemon would (the same definitions, the home's Dagster instance) and
# prints, as JSON, whether it succeeded and each step's seconds from Dagster's event log.
RUN_JOB = """
import json, sys, time
from pathlib import Path
import dagster as dg
from dcicd_platform.home import Home
from dcicd_platform.in_process import QUIET
home = Home(Path(sys.argv[1])).activate()
from dcicd_platform.definitions import build_definitions
job = build_definitions(home, sys.argv[3]).resolve_job_def(sys.argv[2])
with dg.DagsterInstance.get() as instance:
    started = time.perf_counter()
    result = job.execute_in_process(instance=instance, raise_on_error=False, run_config=QUIET)
    seconds = time.perf_counter() - started
    steps = {s.step_key: s.end_time - s.start_time
             for s in instance.get_run_step_stats(result.run_id)
             if s.start_time is not None and s.end_time is not None}
    failed = [e.step_key for e in result.all_events if e.is_step_failure]
print(json.dumps({"success": result.success, "seconds": seconds, "steps": steps,
                  "failed": failed}))
"""

JOBS = {"hourly_refresh": "refresh_data", "watch": "watch"}


class Organisation:
    """A home with its warehouse, grown by generated events, and its jobs' measurements."""

    def __init__(self, root: Path, runs: int, config: Path) -> None:
        self.root, self.runs, self.config = root, runs, config
        self.next_run = 0
        self.end = 0  # seconds of history after 2025-11-01
        root.mkdir(parents=True)

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse.duckdb"

    def append(self, runs: int, seconds: int, load: str) -> tuple[float, int]:
        """Add `runs` runs over the next `seconds` seconds of history; (seconds, events)."""
        here = str(Path(__file__).parent)
        taken, _, out = timed(
            [
                sys.executable,
                "-c",
                GENERATE,
                here,
                str(self.warehouse),
                str(self.next_run),
                str(runs),
            ]
            + [str(self.end), str(seconds), load]
        )
        self.next_run += runs
        self.end += seconds
        return taken, int(out)

    def scan(self) -> tuple[float, float]:
        seconds, peak, _ = timed([sys.executable, "-c", SCAN, str(self.warehouse)])
        return seconds, peak

    def run(self, schedule: str) -> dict:
        """One run of the job the schedule launches: seconds, peak MB, steps' seconds."""
        wall, peak, out = timed(
            [sys.executable, "-c", RUN_JOB, str(self.root), JOBS[schedule], str(self.config)],
            env={**os.environ, "DCICD_HOME": str(self.root), "DAGSTER_HOME": ""},
        )
        result = json.loads(out.splitlines()[-1])
        if not result["success"]:
            raise SystemExit(f"{schedule} failed in {', '.join(result['failed'])}")
        return {**result, "wall": wall, "peak": peak}


def show(label: str, run: dict, slowest: int = 4) -> None:
    """The run's seconds, peak memory, steps (count, their sum) and slowest steps."""
    steps = sorted(run["steps"].items(), key=lambda kv: -kv[1])[:slowest]
    print(
        f"  {label:34s} {run['seconds']:7.1f} s  peak {run['peak']:6,.0f} MB  "
        f"{len(run['steps'])} steps, {sum(run['steps'].values()):.1f} s in them: "
        + ", ".join(f"{k} {v:.1f}" for k, v in steps)
    )
    times = sorted(run["steps"].values())
    if times:
        snapshot = run["steps"].get("warehouse__snapshot")
        print(
            f"  {'':34s} median step {times[len(times) // 2]:.2f} s, job outside its steps"
            f" {run['seconds'] - sum(times):.1f} s"
            + ("" if snapshot is None else f", warehouse/snapshot {snapshot:.1f} s")
        )
    print("    steps " + json.dumps({k: round(v, 2) for k, v in sorted(run["steps"].items())}))


def verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def size_mb(limit: str) -> float:
    """A DuckDB size (4GB, 1536MB, 8GiB) in MB of 2**20 bytes."""
    units = {"B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12}
    units |= {"KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}
    text = limit.strip().upper()
    number = text.rstrip("KMGTIB")
    return float(number) * units[text[len(number) :].strip()] / 2**20


def measure(org: Organisation, quarter: bool) -> dict[str, dict]:
    """The organisation's history, then the jobs full, after one more hour and one more day."""
    days = DAYS // 4 if quarter else DAYS
    taken, events = org.append(org.runs, days * 86400, "history")
    print(f"{org.root.name}: {org.runs:,} runs, {events:,} events over {days} days ({taken:.0f} s)")
    scan_s, scan_mb = org.scan()
    runs: dict[str, dict] = {"scan": {"seconds": scan_s, "peak": scan_mb, "steps": {}}}
    print(f"  {'one scan of raw.events':34s} {scan_s:7.1f} s  peak {scan_mb:6,.0f} MB")
    for name, schedule in (("refresh full", "hourly_refresh"), ("watch full", "watch")):
        runs[name] = org.run(schedule)
        show(name, runs[name])
    per_day = org.runs // days
    org.append(max(per_day // 24, 1), 3600, "one-more-hour")
    runs["watch +1 hour"] = org.run("watch")
    show("watch after one more hour", runs["watch +1 hour"])
    if quarter:
        return runs
    runs["refresh +1 hour"] = org.run("hourly_refresh")
    show("hourly_refresh after one more hour", runs["refresh +1 hour"])
    org.append(per_day, 86400, "one-more-day")
    runs["refresh +1 day"] = org.run("hourly_refresh")
    show("hourly_refresh after one more day", runs["refresh +1 day"])
    runs["watch +1 day"] = org.run("watch")
    show("watch after one more day", runs["watch +1 day"])
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.05, help="1: 12 million events")
    parser.add_argument("--memory-limit", default="4GB", help="warehouse.memory_limit")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dcicd-jobs-", dir=args.workdir))
    config = work / "dcicd.yaml"
    config.write_text(f"warehouse:\n  memory_limit: {args.memory_limit}\n")
    runs = int(FULL_RUNS * args.scale)
    try:
        quarter = measure(Organisation(work / "quarter", runs // 4, config), quarter=True)
        whole = measure(Organisation(work / "whole", runs, config), quarter=False)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    hour_q, hour_w = quarter["watch +1 hour"]["seconds"], whole["watch +1 hour"]["seconds"]
    flat = hour_w / hour_q
    day_ratio = whole["refresh +1 day"]["seconds"] / whole["refresh full"]["seconds"]
    rebuild = whole["refresh full"]["seconds"] / whole["scan"]["seconds"]
    limit_mb = size_mb(args.memory_limit)
    peak = max(r["peak"] for org in (quarter, whole) for r in org.values())
    print(f"\ngoals (scale {args.scale}, warehouse.memory_limit {args.memory_limit}):")
    print(f"  watch after one more hour:  {hour_w:6.1f} s (<= 30 s)  {verdict(hour_w <= 30)}")
    print(
        f"  watch, whole / quarter history: {flat:5.2f} (within 0.8-1.2)  "
        f"{verdict(0.8 <= flat <= 1.2)}"
    )
    print(
        f"  hourly_refresh after one more day / full: {day_ratio:5.2f} (<= 0.1)  "
        f"{verdict(day_ratio <= 0.1)}"
    )
    print(f"  full rebuild / one scan: {rebuild:6.1f}x (<= 10x)  {verdict(rebuild <= 10)}")
    print(
        f"  peak memory of any run: {peak:,.0f} MB (limit {limit_mb:,.0f} MB for DuckDB; the "
        f"process adds Python and Dagster)  {verdict(peak <= limit_mb)}"
    )


if __name__ == "__main__":
    main()
