"""Refresh speed: rebuilding core and marts over a large organisation, against one plain scan.

Generates, straight into raw.events (DuckDB builds the payloads, in the shapes the providers
send), an organisation of 200 services over a year: 2,000,000 CI runs with 10,000,000 jobs,
50,000 production deployments with their pushes, and 2,000 incidents. Then times, each in its
own process:
  - the baseline: SELECT count(*), sum(length(payload)) FROM raw.events;
  - a full refresh: the config tables and every core and mart model, in dependency order;
  - the same refresh after one more day of events is appended.
Prints seconds, the ratio to the scan, and each one's peak memory.

    python benchmarks/refresh.py [--runs 2000000] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from ingest import timed  # noqa: E402

SERVICES = 200
DAYS = 365
JOBS_PER_RUN = 5

# One row per CI run; everything else hangs off it. $runs runs over $days days from $start.
RUNS = """
CREATE OR REPLACE TEMP TABLE runs AS
SELECT i AS run_id, i % {services} AS svc,
    'org/svc-' || lpad((i % {services})::VARCHAR, 3, '0') AS repo,
    md5(i::VARCHAR) || lpad(i::VARCHAR, 8, '0') AS sha,
    TIMESTAMPTZ '{start}' + to_seconds(({day_offset} + (i * 7919) % ({days} * 86400))::BIGINT)
        AS created,
    CASE WHEN hash(i) % 10 = 0 THEN 'failure' ELSE 'success' END AS conclusion
FROM range({first}, {first} + {runs}) t(i)
"""

EVENTS = """
INSERT INTO raw.events
SELECT 'run-' || run_id, 'github', 'workflow_run', created + INTERVAL 20 MINUTE,
    json_object('action', 'completed', 'workflow_run', json_object(
        'id', run_id, 'run_number', run_id, 'run_attempt', 1, 'name', 'ci',
        'path', '.github/workflows/ci.yml', 'event', 'push', 'status', 'completed',
        'conclusion', conclusion, 'head_branch', 'main', 'head_sha', sha,
        'created_at', strftime(created, '%Y-%m-%dT%H:%M:%SZ'),
        'run_started_at', strftime(created + INTERVAL 10 SECOND, '%Y-%m-%dT%H:%M:%SZ'),
        'updated_at', strftime(created + INTERVAL 20 MINUTE, '%Y-%m-%dT%H:%M:%SZ')),
        'repository', json_object('full_name', repo, 'default_branch', 'main')),
    'generated', run_id, '{load}'
FROM runs;
INSERT INTO raw.events
SELECT 'job-' || (run_id * {jobs} + j), 'github', 'workflow_job', created + INTERVAL 15 MINUTE,
    json_object('action', 'completed', 'workflow_job', json_object(
        'id', run_id * {jobs} + j, 'run_id', run_id, 'run_attempt', 1,
        'name', 'job-' || j, 'workflow_name', 'ci', 'head_sha', sha, 'head_branch', 'main',
        'status', 'completed',
        'conclusion', CASE WHEN conclusion = 'failure' AND j = 0 THEN 'failure' ELSE 'success' END,
        'created_at', strftime(created, '%Y-%m-%dT%H:%M:%SZ'),
        'started_at', strftime(created + to_seconds(10 + j), '%Y-%m-%dT%H:%M:%SZ'),
        'completed_at', strftime(created + to_seconds(60 * (3 + j + run_id % 7)),
            '%Y-%m-%dT%H:%M:%SZ'),
        'labels', [CASE WHEN j = 4 THEN 'macos-14' ELSE 'ubuntu-latest' END]),
        'repository', json_object('full_name', repo)),
    'generated', run_id, '{load}'
FROM runs, range({jobs}) t(j);
-- Every 36th green run (50,000 of 2,000,000) is deployed to production, after a push of its
-- commit and two more.
CREATE OR REPLACE TEMP TABLE deployed AS
SELECT * FROM runs WHERE conclusion = 'success' AND run_id % 36 = 0;
INSERT INTO raw.events
SELECT 'push-' || run_id, 'github', 'push', created,
    json_object('ref', 'refs/heads/main', 'after', sha, 'before', '0',
        'repository', json_object('full_name', repo, 'pushed_at', epoch(created)::BIGINT),
        'commits', [
            json_object('id', md5('a' || run_id), 'timestamp',
                strftime(created - INTERVAL 3 HOUR, '%Y-%m-%dT%H:%M:%SZ')),
            json_object('id', md5('b' || run_id), 'timestamp',
                strftime(created - INTERVAL 1 HOUR, '%Y-%m-%dT%H:%M:%SZ')),
            json_object('id', sha, 'timestamp',
                strftime(created - INTERVAL 5 MINUTE, '%Y-%m-%dT%H:%M:%SZ'))]),
    'generated', run_id, '{load}'
FROM deployed;
INSERT INTO raw.events
SELECT 'deploy-' || run_id, 'github', 'deployment_status', created + INTERVAL 40 MINUTE,
    json_object('action', 'created',
        'deployment', json_object('id', run_id, 'sha', sha, 'ref', 'main',
            'environment', 'production',
            'created_at', strftime(created + INTERVAL 30 MINUTE, '%Y-%m-%dT%H:%M:%SZ')),
        'deployment_status', json_object('id', run_id, 'state', 'success',
            'created_at', strftime(created + INTERVAL 40 MINUTE, '%Y-%m-%dT%H:%M:%SZ')),
        'repository', json_object('full_name', repo)),
    'generated', run_id, '{load}'
FROM deployed;
-- One deployment in 25 opens an incident half an hour later, resolved 90 minutes after.
INSERT INTO raw.events
SELECT 'incident-' || run_id || '-' || kind, 'pagerduty', 'incident.' || kind,
    created + INTERVAL 70 MINUTE + CASE kind WHEN 'resolved' THEN INTERVAL 90 MINUTE ELSE
        INTERVAL 0 MINUTE END,
    json_object('event', json_object('id', run_id || kind, 'event_type', 'incident.' || kind,
        'occurred_at', strftime(created + INTERVAL 70 MINUTE + CASE kind WHEN 'resolved'
            THEN INTERVAL 90 MINUTE ELSE INTERVAL 0 MINUTE END, '%Y-%m-%dT%H:%M:%SZ'),
        'data', json_object('id', 'P' || run_id, 'title', 'Errors up',
            'service', json_object('id', 'S' || svc, 'summary', repo)))),
    'generated', run_id, '{load}'
FROM deployed, (VALUES ('triggered'), ('resolved')) k(kind)
WHERE run_id % 900 = 0;
"""

GENERATE = """
import sys, duckdb
from dcicd_platform.ingest.schema import ensure_raw_schema
sys.path.insert(0, sys.argv[6])
from refresh import RUNS, EVENTS, SERVICES, DAYS, JOBS_PER_RUN
conn = duckdb.connect(sys.argv[1], config={"checkpoint_threshold": "1MB"})
ensure_raw_schema(conn)
first, runs, day_offset, days = (int(a) for a in sys.argv[2:6])
conn.execute(RUNS.format(services=SERVICES, start="2025-11-01", day_offset=day_offset,
    days=days, first=first, runs=runs))
for statement in EVENTS.format(jobs=JOBS_PER_RUN, load=sys.argv[7]).split(";"):
    if statement.strip():
        conn.execute(statement)
counts = conn.execute(
    "SELECT count(*), count(*) FILTER (WHERE event_type = 'deployment_status'),"
    " count(*) FILTER (WHERE event_type = 'incident.triggered') FROM raw.events"
).fetchone()
print(*counts)
"""

REFRESH = """
import sys, time, duckdb
from dbt_like_sql import build_model, load_models
from dcicd_platform.assets.config_tables import write_config_tables
from dcicd_platform.config import PlatformConfig
from dcicd_platform.ingest.schema import ensure_raw_schema
conn = duckdb.connect(sys.argv[1], config={"checkpoint_threshold": "1MB"})
ensure_raw_schema(conn)
write_config_tables(conn, PlatformConfig())
for model in load_models():
    started = time.perf_counter()
    build_model(conn, model)
    print(model.table, round(time.perf_counter() - started, 2))
print(conn.execute("SELECT count(*) FROM core.pipeline_jobs").fetchone()[0])
"""

SCAN = """
import sys, duckdb
conn = duckdb.connect(sys.argv[1], read_only=True)
print(conn.execute("SELECT count(*), sum(length(payload)) FROM raw.events").fetchone()[0])
"""


def steps(output: str) -> tuple[dict[str, float], int]:
    """The refresh's per-model seconds and its final job count."""
    lines = output.splitlines()
    return {t: float(s) for t, s in (line.split() for line in lines[:-1])}, int(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2_000_000)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dcicd-refresh-", dir=args.workdir))
    database = str(work / "warehouse.duckdb")
    here = str(Path(__file__).parent)
    try:
        print(f"generating {args.runs:,} runs, {args.runs * JOBS_PER_RUN:,} jobs over {DAYS} days")
        seconds, _, out = timed(
            [
                sys.executable,
                "-c",
                GENERATE,
                database,
                "0",
                str(args.runs),
                "0",
                str(DAYS),
                here,
                "history",
            ]
        )
        events, deployments, incidents = map(int, out.split())
        print(
            f"  {events:,} events in raw.events: {deployments:,} production deployments,"
            f" {incidents:,} incidents ({seconds:.0f} s)"
        )
        scan_s, scan_mb, _ = timed([sys.executable, "-c", SCAN, database])
        full_s, full_mb, out = timed([sys.executable, "-c", REFRESH, database])
        full_steps, jobs = steps(out)
        day_runs = args.runs // DAYS
        _, _, out = timed(
            [
                sys.executable,
                "-c",
                GENERATE,
                database,
                str(args.runs),
                str(day_runs),
                str(DAYS * 86400),
                "1",
                here,
                "one-more-day",
            ]
        )
        print(f"  appended one day: {day_runs:,} runs; {int(out.split()[0]):,} events in all")
        day_s, day_mb, out = timed([sys.executable, "-c", REFRESH, database])
        day_steps, _ = steps(out)
        print()
        print(f"plain scan of raw.events:        {scan_s:7.1f} s  peak {scan_mb:,.0f} MB")
        print(
            f"full refresh of core and marts:  {full_s:7.1f} s  peak {full_mb:,.0f} MB"
            f"  ({full_s / scan_s:.1f}x the scan; {int(jobs):,} jobs)"
        )
        print(
            f"refresh after one more day:      {day_s:7.1f} s  peak {day_mb:,.0f} MB"
            f"  ({day_s / full_s:.2f} of the full refresh)"
        )
        print("\nslowest models (full refresh / after one more day):")
        for table, seconds in sorted(day_steps.items(), key=lambda kv: -kv[1])[:8]:
            print(f"  {table:32s} {full_steps[table]:6.1f} s  {seconds:6.1f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
