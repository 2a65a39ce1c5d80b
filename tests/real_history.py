"""onnx/onnx's real GitHub Actions history as webhook envelopes, and its CI figures from the CSVs.

The dataset (`../shared/datasets/gha-onnx`, beside the checkout; see its README for the source)
holds what GitHub's REST API said of 6,129 workflow runs and 28,420 of their jobs. It is read
where it lies and never copied into the project. `write_envelopes` writes each run and job as
the `workflow_run` / `workflow_job` delivery GitHub would have sent for its final state, so the
platform takes it through the same loader as any webhook. `expected_*` compute the figures the
platform must show straight from the CSV files with plain DuckDB, applying CONTRACTS.md's
definitions by hand (never through the platform's SQL models), so the two can disagree.

What the CSVs do not say, the envelopes leave out, with one exception: they name no runner.
A job that succeeded or failed ran on one; a cancelled job is taken to have run when it lasted
(completed after it started), since a job cancelled before a runner took it reports none.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import duckdb

DATASET = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "gha-onnx"
REPO = "onnx/onnx"


def _rows(path: Path) -> Iterator[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        yield from csv.DictReader(handle)


def _runs(dataset: Path) -> list[dict[str, str]]:
    return list(_rows(dataset / "build_durations.csv"))


def _jobs(dataset: Path) -> list[dict[str, str]]:
    return [row for path in sorted((dataset / "jobs").glob("*.csv")) for row in _rows(path)]


def _ran_on_a_runner(job: dict[str, str]) -> bool:
    if job["conclusion"] in ("success", "failure", "timed_out"):
        return True
    return job["conclusion"] == "cancelled" and job["completed_at"] > job["started_at"]


def run_envelope(run: dict[str, str]) -> dict:
    """The `workflow_run` delivery of a run's final state (CONTRACTS.md section 2)."""
    payload = {
        "action": "completed",
        "workflow_run": {
            "id": int(run["run_id"]),
            "name": run["workflow"],
            "event": run["event"],
            "status": run["status"],
            "conclusion": run["conclusion"] or None,
            "created_at": run["created_at"],
            "updated_at": run["updated_at"],
            "run_attempt": 1,
            "head_sha": run["head_sha"],
        },
        "repository": {"full_name": REPO, "default_branch": "main"},
    }
    return {
        "delivery_id": f"gha-onnx:run:{run['run_id']}",
        "source": "github",
        "event_type": "workflow_run",
        "received_at": run["updated_at"],
        "payload": payload,
    }


def job_envelope(job: dict[str, str]) -> dict:
    """The `workflow_job` delivery of a job's final state."""
    ran = _ran_on_a_runner(job)
    payload = {
        "action": "completed",
        "workflow_job": {
            "id": int(job["job_id"]),
            "run_id": int(job["run_id"]),
            "run_attempt": 1,
            "workflow_name": job["workflow"],
            "name": job["job_name"],
            "head_sha": job["head_sha"],
            "status": job["status"],
            "conclusion": job["conclusion"] or None,
            "started_at": job["started_at"],
            "completed_at": job["completed_at"] or None,
            "labels": [],
            "runner_id": 1 if ran else 0,
            "runner_name": "GitHub Actions" if ran else None,
        },
        "repository": {"full_name": REPO},
    }
    return {
        "delivery_id": f"gha-onnx:job:{job['job_id']}",
        "source": "github",
        "event_type": "workflow_job",
        "received_at": job["completed_at"] or job["started_at"],
        "payload": payload,
    }


def envelopes(dataset: Path = DATASET, days: tuple[str, str] | None = None) -> list[dict]:
    """Every run's and job's delivery; with days (first, last, 'YYYY-MM-DD'), only the runs
    created on those UTC days and their jobs."""
    runs = [r for r in _runs(dataset) if days is None or days[0] <= r["created_at"][:10] <= days[1]]
    kept = {r["run_id"] for r in runs}
    jobs = [j for j in _jobs(dataset) if j["run_id"] in kept]
    return [run_envelope(r) for r in runs] + [job_envelope(j) for j in jobs]


def write_envelopes(path: Path, items: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for item in items:
            handle.write(json.dumps(item, separators=(",", ":")) + "\n")
    return path


def _csv_views(conn: duckdb.DuckDBPyConnection, dataset: Path, days: tuple[str, str] | None):
    conn.execute("SET TimeZone = 'UTC'")
    window = "true" if days is None else f"created_at::DATE BETWEEN '{days[0]}' AND '{days[1]}'"
    runs = str(dataset / "build_durations.csv").replace("'", "''")
    jobs = str(dataset / "jobs" / "*.csv").replace("'", "''")
    conn.execute(
        f"CREATE OR REPLACE TEMP VIEW csv_runs AS SELECT * FROM read_csv('{runs}', header = true,"
        f" strict_mode = false, delim = ',', quote = '\"') WHERE {window}"
    )
    conn.execute(
        f"CREATE OR REPLACE TEMP VIEW csv_jobs AS SELECT * FROM read_csv('{jobs}', header = true,"
        " union_by_name = true) WHERE run_id IN (SELECT run_id FROM csv_runs)"
    )


def expected_daily(dataset: Path = DATASET, days: tuple[str, str] | None = None) -> list[tuple]:
    """Per workflow and UTC day of the run's creation: runs, succeeded, failed, success rate,
    duration P50 and P95 (seconds), as CONTRACTS.md section 5 defines them: success against
    success + failure + timed_out (GitHub's neutral a success, startup_failure a failure);
    durations of completed runs that ran (not skipped, not action_required or stale), never
    below 0. Sorted by workflow and day."""
    conn = duckdb.connect()
    _csv_views(conn, dataset, days)
    return conn.execute("""
        WITH runs AS (
            SELECT workflow, created_at::DATE AS day,
                CASE WHEN conclusion = 'neutral' THEN 'success'
                    WHEN conclusion = 'startup_failure' THEN 'failure'
                    ELSE conclusion END AS conclusion,
                greatest(0, epoch(updated_at) - epoch(created_at)) AS duration_s
            FROM csv_runs WHERE status = 'completed'
        )
        SELECT workflow, day, count(*) AS runs,
            count(*) FILTER (WHERE conclusion = 'success') AS succeeded,
            count(*) FILTER (WHERE conclusion IN ('failure', 'timed_out')) AS failed,
            succeeded / nullif(succeeded + failed, 0) AS success_rate,
            quantile_cont(duration_s, 0.5) FILTER (WHERE conclusion IN
                ('success', 'failure', 'timed_out', 'cancelled')) AS duration_p50_s,
            quantile_cont(duration_s, 0.95) FILTER (WHERE conclusion IN
                ('success', 'failure', 'timed_out', 'cancelled')) AS duration_p95_s
        FROM runs GROUP BY ALL ORDER BY workflow, day
    """).fetchall()


def expected_billable_minutes(
    dataset: Path = DATASET, days: tuple[str, str] | None = None
) -> dict[str, int]:
    """Each job's billable minutes by job key: its duration rounded up to a whole minute, at
    least 1 for a job that ran, 0 for one that never ran (GitHub's billing: "rounded up to the
    nearest whole minute"; skipped jobs are not billed)."""
    conn = duckdb.connect()
    _csv_views(conn, dataset, days)
    rows = conn.execute("""
        SELECT 'github:' || job_id,
            CASE WHEN conclusion IN ('success', 'failure', 'timed_out')
                    OR (conclusion = 'cancelled' AND completed_at > started_at)
                THEN greatest(1, ceil(greatest(0, epoch(completed_at) - epoch(started_at)) / 60))
                ELSE 0 END::BIGINT
        FROM csv_jobs
    """).fetchall()
    return dict(rows)
