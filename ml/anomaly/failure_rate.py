"""failure_rate: a workflow's real failures in an ISO week (of the reporting time zone) against
the four weeks before.

A one-sided two-proportion z-test; flakes (a failure its sha later passed) are told apart.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from dbt_like_sql.catalog import fetch_dicts
from ml.anomaly.store import as_frame

if TYPE_CHECKING:
    import polars as pl

    from dcicd_platform.config import AnomalyThresholds

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

# Every statement this detector runs (the lineage of ml/anomalies is read from these).
SQL = (FAILURE_RATE_SQL,)


def one_sided_proportion_p(x1: int, n1: int, x0: int, n0: int) -> float:
    """P-value that the first proportion is higher than the second (pooled z-test)."""
    pooled = (x1 + x0) / (n1 + n0)
    if pooled in (0.0, 1.0):
        return 1.0
    z = (x1 / n1 - x0 / n0) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n0))
    return 0.5 * math.erfc(z / math.sqrt(2))


def failure_rate(conn, t: AnomalyThresholds) -> pl.DataFrame:
    """Weeks whose real failure rate jumped: flakes are counted apart, not as failures."""
    rows = []
    for r in fetch_dicts(conn, FAILURE_RATE_SQL):
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
    return as_frame(rows)
