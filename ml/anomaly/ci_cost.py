"""ci_cost: a repository's daily CI cost, a workflow's cost per run, and a month's budget.

A day (of the reporting time zone, as marts.ci_cost_daily counts them) is judged against the
same weekday of the eight weeks before (median and MAD: a robust z-score), a workflow's cost
per run against its four weeks before (same score), and a month by whether its run-rate
forecast breaks the service's budget.

COST_SQL and UNIT_COST_SQL judge every day of all history; DAILY_CHANGED_SQL and
UNIT_CHANGED_SQL the same days of the repositories (and workflows) whose costs changed, from
the earliest changed day on, reading only the eight weeks (four for a run's cost) before it.
The month's budget is always judged whole: it reads one month.
"""

from __future__ import annotations

import calendar
import statistics
from typing import TYPE_CHECKING

from dbt_like_sql.catalog import fetch_dicts
from ml.anomaly.store import as_frame

if TYPE_CHECKING:
    import polars as pl

    from dcicd_platform.config import AnomalyThresholds
    from ml.anomaly.changes import Judged

COST_SQL = """
WITH daily AS (
    SELECT repo, day, sum(cost_usd)::DOUBLE AS cost FROM marts.ci_cost_daily GROUP BY ALL
)
SELECT d.repo, coalesce(s.service, d.repo) AS service, d.day, d.cost,
    dcicd_day_start(d.day + 1, (SELECT time_zone FROM config.reporting)) - INTERVAL 1 SECOND
        AS day_end,
    (SELECT list(b.cost) FROM daily b WHERE b.repo = d.repo AND b.day < d.day
        AND b.day >= d.day - INTERVAL 56 DAY AND dayofweek(b.day) = dayofweek(d.day))
        AS same_weekdays
FROM daily d LEFT JOIN config.service_repositories s USING (repo)
"""
# What a run costs, day by day: a workflow that became dearer per run (a job copied three
# times, a slower runner) is lost in a day's total, which the number of runs swings far more.
UNIT_COST_SQL = """
WITH daily AS (
    SELECT repo, workflow, dcicd_local_day(started_at, (SELECT time_zone FROM config.reporting))
            AS day,
        count(*) AS runs,
        sum(cost_usd)::DOUBLE AS cost
    FROM marts.ci_run_costs GROUP BY ALL
)
SELECT d.*, coalesce(s.service, d.repo) AS service, d.cost / d.runs AS per_run,
    dcicd_day_start(d.day + 1, (SELECT time_zone FROM config.reporting)) - INTERVAL 1 SECOND
        AS day_end,
    list(d.cost / d.runs) OVER (PARTITION BY d.repo, d.workflow ORDER BY d.day
        RANGE BETWEEN INTERVAL 28 DAY PRECEDING AND INTERVAL 1 DAY PRECEDING) AS before
FROM daily d LEFT JOIN config.service_repositories s USING (repo)
"""
BUDGET_SQL = """
WITH services AS (
    -- A service of a repository services share is judged on the repository's whole spend.
    SELECT r.service, r.repo, s.monthly_ci_budget_usd
    FROM config.service_paths r JOIN config.services s USING (service)
    WHERE s.monthly_ci_budget_usd IS NOT NULL
), month AS (SELECT date_trunc('month', max(day)) AS first, max(day) AS last
    FROM marts.ci_cost_daily)
SELECT s.service, any_value(s.monthly_ci_budget_usd) AS budget, sum(c.cost_usd)::DOUBLE AS spent,
    any_value(m.first) AS first, any_value(m.last) AS last,
    dcicd_day_start(any_value(m.last) + 1, (SELECT time_zone FROM config.reporting))
        - INTERVAL 1 SECOND AS last_end
FROM marts.ci_cost_daily c JOIN services s USING (repo), month m
WHERE c.day >= m.first
GROUP BY s.service
"""

# The days to judge again come from dcicd_touched_days (repo, day: of marts.ci_cost_daily) and
# dcicd_touched_run_days (repo, workflow, day: of marts.ci_run_costs).
DAILY_CHANGED_SQL = """
WITH touched AS (
    SELECT repo, min(day) AS since FROM dcicd_touched_days WHERE repo IS NOT NULL GROUP BY repo
), daily AS (
    SELECT c.repo, c.day, sum(c.cost_usd)::DOUBLE AS cost, any_value(t.since) AS since
    FROM marts.ci_cost_daily c JOIN touched t USING (repo)
    WHERE c.day >= t.since - INTERVAL 56 DAY
    GROUP BY c.repo, c.day
), windowed AS (
    SELECT d.*, list(d.cost) OVER (PARTITION BY d.repo, dayofweek(d.day) ORDER BY d.day
            RANGE BETWEEN INTERVAL 56 DAY PRECEDING AND INTERVAL 1 DAY PRECEDING)
        AS same_weekdays
    FROM daily d
)
SELECT d.repo, coalesce(s.service, d.repo) AS service, d.day, d.cost,
    dcicd_day_start(d.day + 1, (SELECT time_zone FROM config.reporting)) - INTERVAL 1 SECOND
        AS day_end,
    d.same_weekdays
FROM windowed d LEFT JOIN config.service_repositories s USING (repo)
WHERE d.day >= d.since
"""
UNIT_CHANGED_SQL = """
WITH touched AS (
    SELECT repo, workflow, min(day) AS since FROM dcicd_touched_run_days
    WHERE repo IS NOT NULL AND workflow IS NOT NULL GROUP BY repo, workflow
), daily AS (
    SELECT c.repo, c.workflow,
        dcicd_local_day(c.started_at, (SELECT time_zone FROM config.reporting)) AS day,
        any_value(t.since) AS since, count(*) AS runs, sum(c.cost_usd)::DOUBLE AS cost
    FROM marts.ci_run_costs c JOIN touched t USING (repo, workflow)
    WHERE c.started_at >= dcicd_day_start(t.since - INTERVAL 28 DAY,
        (SELECT time_zone FROM config.reporting))
    GROUP BY ALL
), windowed AS (
    SELECT d.* EXCLUDE (since), d.since, coalesce(s.service, d.repo) AS service,
        d.cost / d.runs AS per_run,
        dcicd_day_start(d.day + 1, (SELECT time_zone FROM config.reporting)) - INTERVAL 1 SECOND
            AS day_end,
        list(d.cost / d.runs) OVER (PARTITION BY d.repo, d.workflow ORDER BY d.day
            RANGE BETWEEN INTERVAL 28 DAY PRECEDING AND INTERVAL 1 DAY PRECEDING) AS before
    FROM daily d LEFT JOIN config.service_repositories s USING (repo)
)
SELECT * EXCLUDE (since) FROM windowed WHERE day >= since
"""

# Every statement this detector runs (the lineage of ml/anomalies is read from these).
SQL = (COST_SQL, UNIT_COST_SQL, BUDGET_SQL, DAILY_CHANGED_SQL, UNIT_CHANGED_SQL)


def robust_z(value: float, history: list[float]) -> tuple[float, float]:
    """(z, median): how far `value` is above `history`, in robust standard deviations."""
    median = statistics.median(history)
    mad = statistics.median([abs(x - median) for x in history])
    scale = max(1.4826 * mad, 0.1 * median, 0.01)  # a flat history is not infinitely sure
    return (value - median) / scale, median


def _cost_anomaly(
    r: dict,
    entity_key: str,
    observed: float,
    expected: float,
    z: float,
    t: AnomalyThresholds,
    why: str,
) -> dict:
    """One day's cost anomaly: critical past twice the robust z threshold."""
    return {
        "kind": "ci_cost",
        "service": r["service"],
        "entity_key": entity_key,
        "detected_at": r["day_end"],  # the last second of the day, in the reporting zone
        "observed": observed,
        "expected": expected,
        "score": z,
        "severity": "critical" if z > 2 * t.cost_robust_z else "warning",
        "explanation": why,
    }


def ci_cost(conn, t: AnomalyThresholds) -> pl.DataFrame:
    """Dear days, dearer runs and broken budgets, each by enough money to be worth a look."""
    return as_frame(
        _dear_days(fetch_dicts(conn, COST_SQL), t)
        + _dearer_runs(fetch_dicts(conn, UNIT_COST_SQL), t)
        + _budgets(conn)
    )


def changed(
    conn, t: AnomalyThresholds, job_costs: str, runs: str, run_job_costs: str
) -> tuple[pl.DataFrame, Judged]:
    """Days judged again where costs changed: job_costs (a SELECT of old and new rows of
    marts.ci_job_costs, as far as marts.ci_cost_daily has taken them in), runs and
    run_job_costs (of core.pipeline_runs and marts.ci_job_costs, as far as marts.ci_run_costs
    has); budgets whole. Returns the anomalies and which keys that covers."""
    zone = "(SELECT time_zone FROM config.reporting)"
    conn.execute(
        "CREATE OR REPLACE TEMP TABLE dcicd_touched_days AS"
        f" SELECT DISTINCT repo, day FROM ({job_costs})"
    )
    conn.execute(
        "CREATE OR REPLACE TEMP TABLE dcicd_touched_run_days AS"
        f" SELECT DISTINCT repo, workflow, dcicd_local_day(started_at, {zone}) AS day FROM ("
        f" SELECT repo, workflow, started_at FROM ({runs})"
        " UNION ALL SELECT repo, workflow, started_at FROM core.pipeline_runs"
        f" WHERE run_key IN (SELECT run_key FROM ({run_job_costs})))"
    )
    days = dict(
        conn.execute(
            "SELECT repo, min(day) FROM dcicd_touched_days WHERE repo IS NOT NULL GROUP BY 1"
        ).fetchall()
    )
    run_days = {
        (repo, workflow): day
        for repo, workflow, day in conn.execute(
            "SELECT repo, workflow, min(day) FROM dcicd_touched_run_days"
            " WHERE repo IS NOT NULL AND workflow IS NOT NULL GROUP BY 1, 2"
        ).fetchall()
    }
    rows = _dear_days(fetch_dicts(conn, DAILY_CHANGED_SQL), t) if days else []
    rows += _dearer_runs(fetch_dicts(conn, UNIT_CHANGED_SQL), t) if run_days else []
    rows += _budgets(conn)

    def judged(entity_key: str) -> bool:
        parts = entity_key.split("|", 3)
        if len(parts) > 1 and parts[1] == "budget":
            return True
        if len(parts) == 2:
            since = days.get(parts[0])
        elif len(parts) == 4 and parts[2] == "per_run":
            since = run_days.get((parts[0], parts[3]))
        else:
            return False
        return since is not None and parts[1] >= str(since)

    return as_frame(rows), judged


def _dear_days(found: list[dict], t: AnomalyThresholds) -> list[dict]:
    rows = []
    for r in found:
        history = r["same_weekdays"] or []
        if len(history) < 4:
            continue
        z, median = robust_z(r["cost"], history)
        if z <= t.cost_robust_z or r["cost"] - median < t.cost_min_excess_usd:
            continue  # far off, and by enough money to be worth a person's time
        rows.append(
            _cost_anomaly(
                r,
                f"{r['repo']}|{r['day']}",
                r["cost"],
                median,
                z,
                t,
                f"{r['repo']} spent ${r['cost']:.2f} on CI on {r['day']:%a %Y-%m-%d}, against"
                f" ${median:.2f} on the same weekday before (robust z {z:.1f})",
            )
        )
    return rows


def _dearer_runs(found: list[dict], t: AnomalyThresholds) -> list[dict]:
    rows = []
    for r in found:
        history = r["before"] or []
        if len(history) < 7:
            continue
        z, median = robust_z(r["per_run"], history)
        excess = r["cost"] - median * r["runs"]
        if z <= t.cost_robust_z or excess < t.cost_min_excess_usd:
            continue
        rows.append(
            _cost_anomaly(
                r,
                f"{r['repo']}|{r['day']}|per_run|{r['workflow']}",
                r["per_run"],
                median,
                z,
                t,
                f"{r['repo']} {r['workflow']}: a run cost ${r['per_run']:.2f} on"
                f" {r['day']:%a %Y-%m-%d}, against ${median:.2f} over the 4 weeks before"
                f" (robust z {z:.1f}; ${excess:.2f} more over {r['runs']} runs)",
            )
        )
    return rows


def _budgets(conn) -> list[dict]:
    rows = []
    for r in fetch_dicts(conn, BUDGET_SQL):
        first, last = r["first"], r["last"]
        days = calendar.monthrange(first.year, first.month)[1]
        forecast = r["spent"] / last.day * days
        if forecast <= r["budget"]:
            continue
        rows.append(
            {
                "kind": "ci_cost",
                "service": r["service"],
                "entity_key": f"{r['service']}|budget|{first:%Y-%m}",
                "detected_at": r["last_end"],
                "observed": forecast,
                "expected": r["budget"],
                "score": forecast / r["budget"],
                "severity": "critical" if r["spent"] > r["budget"] else "warning",
                "explanation": f"{r['service']}: ${r['spent']:.0f} of CI by {last:%b %d} runs to"
                f" ${forecast:.0f} for {first:%B}, over its ${r['budget']:.0f} budget",
            }
        )
    return rows
