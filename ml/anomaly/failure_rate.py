"""failure_rate: a workflow's real failures in an ISO week (of the reporting time zone) against
the four weeks before.

A one-sided two-proportion z-test; flakes (a failure its sha later passed) are told apart.

FAILURE_RATE_SQL judges every week of all history; CHANGED_SQL the same weeks of the workflows
whose runs changed (dcicd_touched_runs: their old and new rows), from the earliest week a
change can move (its own week, and the weeks of earlier runs of its sha, now flakes or not) on,
reading only the four weeks before that.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING

from dbt_like_sql.catalog import fetch_dicts
from ml.anomaly.store import as_frame

if TYPE_CHECKING:
    import polars as pl

    from dcicd_platform.config import AnomalyThresholds
    from ml.anomaly.changes import Judged

FAILURE_RATE_SQL = """
WITH done AS (
    SELECT r.*,
        dcicd_period_start('week', started_at, (SELECT time_zone FROM config.reporting)) AS week,
        conclusion <> 'success' AS failed,
        conclusion <> 'success' AND EXISTS (
            SELECT 1 FROM core.pipeline_runs later
            WHERE later.repo = r.repo AND later.workflow = r.workflow AND later.sha = r.sha
                AND later.conclusion = 'success' AND later.started_at > r.started_at
        ) AS flake
    FROM core.pipeline_runs r
    WHERE status = 'completed' AND conclusion IN ('success', 'failure', 'timed_out')
), weekly AS (
    SELECT any_value(service) AS service, repo, workflow, week, count(*) AS runs,
        count(*) FILTER (WHERE failed AND NOT flake) AS real_failures,
        count(*) FILTER (WHERE flake) AS flakes, max(finished_at) AS last_finished
    FROM done GROUP BY repo, workflow, week
)
SELECT w.*, sum(b.runs) AS base_runs, sum(b.real_failures) AS base_failures
FROM weekly w
JOIN weekly b ON b.repo = w.repo AND b.workflow = w.workflow
    AND b.week >= w.week - INTERVAL 28 DAY AND b.week < w.week
GROUP BY ALL
"""

_PAIRS = """
WITH touched AS (
    SELECT DISTINCT repo, workflow, sha, started_at FROM dcicd_touched_runs
    WHERE repo IS NOT NULL AND workflow IS NOT NULL
), earliest AS (
    -- a run's own week, and the weeks of the earlier runs of its sha (a flake or no more)
    SELECT repo, workflow, min(started_at) AS since FROM (
        SELECT repo, workflow, started_at FROM touched
        UNION ALL
        SELECT r.repo, r.workflow, r.started_at FROM core.pipeline_runs r
        SEMI JOIN touched t ON t.repo = r.repo AND t.workflow = r.workflow AND t.sha = r.sha
    ) GROUP BY repo, workflow HAVING min(started_at) IS NOT NULL
), pairs AS (
    SELECT repo, workflow,
        dcicd_period_start('week', since, (SELECT time_zone FROM config.reporting)) AS first_week
    FROM earliest
)"""
# The first week judged again per workflow.
CHANGED_WEEKS_SQL = _PAIRS + "\nSELECT * FROM pairs"
CHANGED_SQL = (
    _PAIRS
    + """, window_runs AS (
    -- every run of those workflows from the four weeks before the first week judged
    SELECT r.*, p.first_week
    FROM core.pipeline_runs r JOIN pairs p USING (repo, workflow)
    WHERE r.started_at >= dcicd_day_start(p.first_week - INTERVAL 28 DAY,
        (SELECT time_zone FROM config.reporting)) AND r.started_at >= $lower
), done AS (
    SELECT r.*,
        dcicd_period_start('week', started_at, (SELECT time_zone FROM config.reporting)) AS week,
        conclusion <> 'success' AS failed,
        conclusion <> 'success' AND sha IS NOT NULL AND coalesce(
            max(started_at) FILTER (WHERE conclusion = 'success')
                OVER (PARTITION BY repo, workflow, sha) > started_at, false) AS flake
    FROM window_runs r
), weekly AS (
    SELECT any_value(service) AS service, repo, workflow, week, any_value(first_week) AS first_week,
        count(*) AS runs,
        count(*) FILTER (WHERE failed AND NOT flake) AS real_failures,
        count(*) FILTER (WHERE flake) AS flakes, max(finished_at) AS last_finished
    FROM done WHERE status = 'completed' AND conclusion IN ('success', 'failure', 'timed_out')
    GROUP BY repo, workflow, week
)
SELECT w.* EXCLUDE (first_week), sum(b.runs) AS base_runs, sum(b.real_failures) AS base_failures
FROM weekly w
JOIN weekly b ON b.repo = w.repo AND b.workflow = w.workflow
    AND b.week >= w.week - INTERVAL 28 DAY AND b.week < w.week
WHERE w.week >= w.first_week
GROUP BY ALL
"""
)

# Every statement this detector runs (the lineage of ml/anomalies is read from these).
SQL = (FAILURE_RATE_SQL, CHANGED_SQL)


def one_sided_proportion_p(x1: int, n1: int, x0: int, n0: int) -> float:
    """P-value that the first proportion is higher than the second (pooled z-test)."""
    pooled = (x1 + x0) / (n1 + n0)
    if pooled in (0.0, 1.0):
        return 1.0
    z = (x1 / n1 - x0 / n0) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n0))
    return 0.5 * math.erfc(z / math.sqrt(2))


def failure_rate(conn, t: AnomalyThresholds) -> pl.DataFrame:
    """Weeks whose real failure rate jumped: flakes are counted apart, not as failures."""
    return as_frame(_anomalies(fetch_dicts(conn, FAILURE_RATE_SQL), t))


def _label(week) -> str:
    iso = week.isocalendar()
    return f"{iso.year}-W{iso.week:02d}"


def changed(conn, t: AnomalyThresholds, runs: str) -> tuple[pl.DataFrame, Judged]:
    """The weeks the changed runs (a SELECT of old and new rows of core.pipeline_runs) can
    move, judged again; and which anomaly keys that covers (a workflow's weeks from the first)."""
    conn.execute(f"CREATE OR REPLACE TEMP TABLE dcicd_touched_runs AS {runs}")
    first = {
        (r["repo"], r["workflow"]): r["first_week"] for r in fetch_dicts(conn, CHANGED_WEEKS_SQL)
    }
    found = as_frame([])
    if first:
        # a plain bound before the join: a day more than four weeks before the first week
        lower = datetime.combine(min(first.values()), time(), UTC) - timedelta(days=29)
        found = as_frame(_anomalies(fetch_dicts(conn, CHANGED_SQL, {"lower": lower}), t))
    labels = {pair: _label(week) for pair, week in first.items()}

    def judged(entity_key: str) -> bool:
        pair, _, week = entity_key.rpartition("|")
        repo, _, workflow = pair.partition("|")
        since = labels.get((repo, workflow))
        return since is not None and _week_order(week) >= _week_order(since)

    return found, judged


def _week_order(label: str) -> tuple[int, int]:
    year, _, week = label.partition("-W")
    return int(year), int(week)


def _anomalies(found: list[dict], t: AnomalyThresholds) -> list[dict]:
    rows = []
    for r in found:
        if r["runs"] < 5 or r["base_runs"] < 10:
            continue
        rate, base = r["real_failures"] / r["runs"], r["base_failures"] / r["base_runs"]
        p = one_sided_proportion_p(
            r["real_failures"], r["runs"], r["base_failures"], r["base_runs"]
        )
        if p >= t.failure_rate_p_value:
            continue
        iso = r["week"].isocalendar()
        flakes = f"; {r['flakes']} more failed and passed on re-run (flakes)" if r["flakes"] else ""
        rows.append(
            {
                "kind": "failure_rate",
                "service": r["service"],
                "entity_key": f"{r['repo']}|{r['workflow']}|{iso.year}-W{iso.week:02d}",
                "detected_at": r["last_finished"],
                "observed": rate,
                "expected": base,
                "score": -math.log10(max(p, 1e-300)),
                "severity": "critical" if rate >= 0.5 else "warning",
                "explanation": f"{r['repo']} {r['workflow']}: {r['real_failures']} of {r['runs']}"
                f" runs failed in {iso.year}-W{iso.week:02d} ({rate:.0%}), against {base:.0%} over"
                f" the 4 weeks before (p={p:.2g}){flakes}",
            }
        )
    return rows
