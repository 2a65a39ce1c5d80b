"""Anomaly detectors over the warehouse: what went wrong, how sure, and what to tell a human.

Each detector returns rows of `ml.anomalies` (CONTRACTS.md section 4): a stable key (the same
anomaly found again has the same key), kind, service, entity, observed and expected values, a
score, a severity and a one-line explanation.

- build_duration: a successful run far slower than expected: the duration model's prediction
  when the run was scored, else the workflow's trailing median under the same trigger; and a
  job that became slower than its two weeks before (its last three runs' median too).
- failure_rate: a workflow's real failures in an ISO week against the four weeks before, by a
  one-sided two-proportion z-test; flakes (a failure its sha later passed) are told apart.
- ci_cost: a repository's daily CI cost against the same weekday of the eight weeks before
  (median and MAD: a robust z-score), a workflow's cost per run against its four weeks before
  (same score), and a month whose run-rate forecast breaks a budget.
- deployment_health: the health samples after a production deployment against those before it,
  as automated canary analysis judges a canary (Kayenta): a Mann-Whitney U test per metric,
  harm in one direction only (higher), an effect-size floor, a score = share of metrics that
  pass, and pass / marginal / fail; an incident the deployment caused within the rollback
  window fails it outright.
- model_accuracy: a model version whose live quality is below its floor.
"""

from __future__ import annotations

import hashlib
import math
import statistics
from dataclasses import dataclass

import polars as pl

COLUMNS = [
    "anomaly_key",
    "kind",
    "service",
    "entity_key",
    "detected_at",
    "observed",
    "expected",
    "score",
    "severity",
    "explanation",
]
SEVERITIES = ("info", "warning", "critical")


@dataclass(frozen=True)
class Thresholds:
    build_duration_ratio: float = 1.5
    job_shift_ratio: float = 1.4
    failure_rate_p_value: float = 0.01
    cost_robust_z: float = 3.5
    cost_min_excess_usd: float = 1.0
    health_p_value: float = 0.05
    health_min_effect: float = 0.2
    health_window_minutes: int = 30


def anomaly_key(kind: str, entity_key: str) -> str:
    return f"{kind}:{hashlib.sha256(entity_key.encode()).hexdigest()[:16]}"


def _frame(rows: list[dict]) -> pl.DataFrame:
    schema = {
        "anomaly_key": pl.Utf8,
        "kind": pl.Utf8,
        "service": pl.Utf8,
        "entity_key": pl.Utf8,
        "detected_at": pl.Datetime("us", "UTC"),
        "observed": pl.Float64,
        "expected": pl.Float64,
        "score": pl.Float64,
        "severity": pl.Utf8,
        "explanation": pl.Utf8,
    }
    for row in rows:
        row["anomaly_key"] = anomaly_key(row["kind"], row["entity_key"])
    return pl.DataFrame(rows, schema=schema).select(COLUMNS)


def _rows(conn, sql: str, params: dict | None = None) -> list[dict]:
    result = conn.execute(sql, params or {})
    names = [d[0] for d in result.description]
    return [dict(zip(names, row, strict=True)) for row in result.fetchall()]


# --- build duration ----------------------------------------------------------------------------
BUILD_DURATION_SQL = """
WITH runs AS (
    SELECT run_key, service, repo, workflow, duration_s, finished_at,
        quantile_cont(duration_s, 0.5) OVER w AS trailing_p50, count(*) OVER w AS history
    FROM core.pipeline_runs
    WHERE status = 'completed' AND conclusion = 'success' AND duration_s > 0
    -- under the same trigger: a pull request may run fewer tests than a push
    WINDOW w AS (PARTITION BY repo, workflow, trigger_event ORDER BY started_at
        ROWS BETWEEN 20 PRECEDING AND 1 PRECEDING)
), predicted AS ({predicted})
SELECT r.*, p.predicted_duration_s,
    coalesce(p.predicted_duration_s, r.trailing_p50) AS expected_s
FROM runs r LEFT JOIN predicted p USING (run_key)
WHERE (p.predicted_duration_s IS NOT NULL OR r.history >= 5)
    AND r.duration_s >= $ratio * coalesce(p.predicted_duration_s, r.trailing_p50)
"""


def _table_exists(conn, schema: str, name: str) -> bool:
    return bool(
        conn.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE schema_name = ? AND table_name = ?",
            [schema, name],
        ).fetchall()[0][0]
    )


SLOW_JOBS_SQL = """
WITH jobs AS (
    SELECT j.job_key, j.run_key, j.repo, j.workflow, j.job_name, j.duration_s, j.finished_at,
        r.service,
        quantile_cont(j.duration_s, 0.5) OVER before AS baseline_p50,
        count(*) OVER before AS history,
        quantile_cont(j.duration_s, 0.5) OVER latest AS latest_p50
    FROM core.pipeline_jobs j JOIN core.pipeline_runs r USING (run_key)
    WHERE j.status = 'completed' AND j.conclusion = 'success' AND j.duration_s > 0
    -- the same job under the same trigger (a pull request may run fewer tests than a push);
    -- the baseline ends a day before the job, so a regression does not become its own normal
    WINDOW before AS (PARTITION BY j.repo, j.workflow, j.job_name, r.trigger_event
            ORDER BY j.started_at
            RANGE BETWEEN INTERVAL 15 DAY PRECEDING AND INTERVAL 1 DAY PRECEDING),
        latest AS (PARTITION BY j.repo, j.workflow, j.job_name, r.trigger_event
            ORDER BY j.started_at ROWS BETWEEN 2 PRECEDING AND CURRENT ROW)
)
SELECT * FROM jobs
WHERE history >= 5 AND (
    -- slower and not alone: the job's last three runs are slower too (a level shift)
    (duration_s >= $shift * baseline_p50 AND latest_p50 >= $shift * baseline_p50)
    -- or one run so slow it needs no company
    OR duration_s >= $outlier * baseline_p50)
"""


def slow_jobs(conn, t: Thresholds) -> list[dict]:
    """A job that became slower than its runs of the two weeks before: what a run's total
    hides when jobs run in parallel (one slow job among several barely moves the run). One
    slow run alone is usually a busy runner; the median of the job's last three runs must
    have moved too, unless the run is twice as slow as the outlier ratio allows."""
    rows = []
    outlier = 2 * t.build_duration_ratio - 1
    params = {"shift": t.job_shift_ratio, "outlier": outlier}
    for r in _rows(conn, SLOW_JOBS_SQL, params):
        ratio = r["duration_s"] / r["baseline_p50"]
        rows.append(
            {
                "kind": "build_duration",
                "service": r["service"],
                "entity_key": r["job_key"],
                "detected_at": r["finished_at"],
                "observed": r["duration_s"],
                "expected": r["baseline_p50"],
                "score": ratio,
                "severity": "warning",
                "explanation": f"{r['repo']} {r['workflow']} job {r['job_name']} took"
                f" {r['duration_s'] / 60:.1f} min, {ratio:.1f}x its median of the two weeks"
                f" before ({r['baseline_p50'] / 60:.1f} min); its last three runs' median is"
                f" {r['latest_p50'] / r['baseline_p50']:.1f}x (run {r['run_key']})",
            }
        )
    return rows


def build_duration(conn, t: Thresholds) -> pl.DataFrame:
    predicted = (
        "SELECT run_key, predicted_duration_s FROM ml.build_predictions"
        " WHERE model_name = 'build_duration'"
        if _table_exists(conn, "ml", "build_predictions")
        else "SELECT NULL::VARCHAR AS run_key, NULL::DOUBLE AS predicted_duration_s WHERE false"
    )
    rows = []
    sql = BUILD_DURATION_SQL.format(predicted=predicted)
    for r in _rows(conn, sql, {"ratio": t.build_duration_ratio}):
        ratio = r["duration_s"] / r["expected_s"]
        basis = (
            "the duration model predicted"
            if r["predicted_duration_s"]
            else "its last runs' median was"
        )
        rows.append(
            {
                "kind": "build_duration",
                "service": r["service"],
                "entity_key": r["run_key"],
                "detected_at": r["finished_at"],
                "observed": r["duration_s"],
                "expected": r["expected_s"],
                "score": ratio,
                "severity": "warning" if ratio >= 2 * t.build_duration_ratio - 1 else "info",
                "explanation": f"{r['repo']} {r['workflow']} run took"
                f" {r['duration_s'] / 60:.1f} min, {ratio:.1f}x what {basis}"
                f" ({r['expected_s'] / 60:.1f} min)",
            }
        )
    return _frame(rows + slow_jobs(conn, t))


# --- failure rate ------------------------------------------------------------------------------
FAILURE_RATE_SQL = """
WITH done AS (
    SELECT r.*, date_trunc('week', started_at)::DATE AS week,
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


def one_sided_proportion_p(x1: int, n1: int, x0: int, n0: int) -> float:
    """P-value that the first proportion is higher than the second (pooled z-test)."""
    pooled = (x1 + x0) / (n1 + n0)
    if pooled in (0.0, 1.0):
        return 1.0
    z = (x1 / n1 - x0 / n0) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n0))
    return 0.5 * math.erfc(z / math.sqrt(2))


def failure_rate(conn, t: Thresholds) -> pl.DataFrame:
    rows = []
    for r in _rows(conn, FAILURE_RATE_SQL):
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
    return _frame(rows)


# --- CI cost -----------------------------------------------------------------------------------
COST_SQL = """
WITH daily AS (
    SELECT repo, day, sum(cost_usd)::DOUBLE AS cost FROM marts.ci_cost_daily GROUP BY ALL
), services AS (
    SELECT service, unnest(repositories) AS repo FROM config.services
)
SELECT d.repo, coalesce(s.service, d.repo) AS service, d.day, d.cost,
    (SELECT list(b.cost) FROM daily b WHERE b.repo = d.repo AND b.day < d.day
        AND b.day >= d.day - INTERVAL 56 DAY AND dayofweek(b.day) = dayofweek(d.day))
        AS same_weekdays
FROM daily d LEFT JOIN services s USING (repo)
"""
# What a run costs, day by day: a workflow that became dearer per run (a job copied three
# times, a slower runner) is lost in a day's total, which the number of runs swings far more.
UNIT_COST_SQL = """
WITH daily AS (
    SELECT repo, workflow, started_at::DATE AS day, count(*) AS runs,
        sum(cost_usd)::DOUBLE AS cost
    FROM marts.ci_run_costs GROUP BY ALL
), services AS (
    SELECT service, unnest(repositories) AS repo FROM config.services
)
SELECT d.*, coalesce(s.service, d.repo) AS service, d.cost / d.runs AS per_run,
    list(d.cost / d.runs) OVER (PARTITION BY d.repo, d.workflow ORDER BY d.day
        RANGE BETWEEN INTERVAL 28 DAY PRECEDING AND INTERVAL 1 DAY PRECEDING) AS before
FROM daily d LEFT JOIN services s USING (repo)
"""


def robust_z(value: float, history: list[float]) -> tuple[float, float]:
    """(z, median): how far `value` is above `history`, in robust standard deviations."""
    median = statistics.median(history)
    mad = statistics.median([abs(x - median) for x in history])
    scale = max(1.4826 * mad, 0.1 * median, 0.01)  # a flat history is not infinitely sure
    return (value - median) / scale, median


BUDGET_SQL = """
WITH services AS (
    SELECT service, unnest(repositories) AS repo, monthly_ci_budget_usd FROM config.services
    WHERE monthly_ci_budget_usd IS NOT NULL
), month AS (SELECT date_trunc('month', max(day)) AS first, max(day) AS last
    FROM marts.ci_cost_daily)
SELECT s.service, any_value(s.monthly_ci_budget_usd) AS budget, sum(c.cost_usd)::DOUBLE AS spent,
    any_value(m.first) AS first, any_value(m.last) AS last
FROM marts.ci_cost_daily c JOIN services s USING (repo), month m
WHERE c.day >= m.first
GROUP BY s.service
"""


def _cost_anomaly(
    r: dict, entity_key: str, observed: float, expected: float, z: float, t: Thresholds, why: str
) -> dict:
    """One day's cost anomaly: critical past twice the robust z threshold."""
    return {
        "kind": "ci_cost",
        "service": r["service"],
        "entity_key": entity_key,
        "detected_at": _end_of(r["day"]),
        "observed": observed,
        "expected": expected,
        "score": z,
        "severity": "critical" if z > 2 * t.cost_robust_z else "warning",
        "explanation": why,
    }


def ci_cost(conn, t: Thresholds) -> pl.DataFrame:
    rows = []
    for r in _rows(conn, COST_SQL):
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
    for r in _rows(conn, UNIT_COST_SQL):
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
    for r in _rows(conn, BUDGET_SQL):
        import calendar

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
                "detected_at": _end_of(last),
                "observed": forecast,
                "expected": r["budget"],
                "score": forecast / r["budget"],
                "severity": "critical" if r["spent"] > r["budget"] else "warning",
                "explanation": f"{r['service']}: ${r['spent']:.0f} of CI by {last:%b %d} runs to"
                f" ${forecast:.0f} for {first:%B}, over its ${r['budget']:.0f} budget",
            }
        )
    return _frame(rows)


def _end_of(day):
    from datetime import UTC, datetime, time

    return datetime.combine(day, time(23, 59, 59), UTC)


# --- deployment health -------------------------------------------------------------------------
HEALTH_SQL = """
SELECT d.deployment_key, d.service, d.environment, d.sha, d.deployed_at,
    list(h.error_rate ORDER BY h.ts) FILTER (WHERE h.ts < d.deployed_at) AS rate_before,
    list(h.error_rate ORDER BY h.ts) FILTER (WHERE h.ts > d.deployed_at) AS rate_after,
    list(h.latency_p95_ms ORDER BY h.ts) FILTER (WHERE h.ts < d.deployed_at) AS latency_before,
    list(h.latency_p95_ms ORDER BY h.ts) FILTER (WHERE h.ts > d.deployed_at) AS latency_after,
    max(h.ts) AS last_sample,
    (SELECT count(*) FROM core.incidents i WHERE i.caused_by_deployment_key = d.deployment_key
        AND i.opened_at <= d.deployed_at + to_minutes($window::BIGINT)) AS incidents
FROM marts.production_deployments d
JOIN core.health_samples h ON h.service = d.service AND h.environment = d.environment
    AND h.ts >= d.deployed_at - to_minutes($window::BIGINT)
    AND h.ts <= d.deployed_at + to_minutes($window::BIGINT)
GROUP BY ALL
"""


def canary_verdict(before: list[float], after: list[float], t: Thresholds) -> tuple[str, float]:
    """One metric, Kayenta's way: ("pass" | "fail" | "nodata", p-value); harm is higher."""
    from scipy.stats import mannwhitneyu

    before = [x for x in before or [] if x is not None]
    after = [x for x in after or [] if x is not None]
    if len(before) < 3 or len(after) < 3:
        return "nodata", math.nan
    p = float(mannwhitneyu(after, before, alternative="greater").pvalue)
    base = statistics.median(before)
    effect = (
        (statistics.median(after) - base) / base
        if base > 0
        else (math.inf if statistics.median(after) > 0 else 0)
    )
    return ("fail" if p < t.health_p_value and effect >= t.health_min_effect else "pass"), p


def deployment_health(conn, t: Thresholds) -> pl.DataFrame:
    rows = []
    for r in _rows(conn, HEALTH_SQL, {"window": t.health_window_minutes}):
        verdicts = {
            "error rate": canary_verdict(r["rate_before"], r["rate_after"], t),
            "P95 latency": canary_verdict(r["latency_before"], r["latency_after"], t),
        }
        judged = {m: v for m, v in verdicts.items() if v[0] != "nodata"}
        if not judged and not r["incidents"]:
            continue
        passed = sum(v[0] == "pass" for v in judged.values())
        score = 100 * passed / len(judged) if judged else 0.0
        verdict = "pass" if score >= 75 else "marginal" if score >= 50 else "fail"
        if r["incidents"]:
            verdict = "fail"
        if verdict == "pass":
            continue
        failing = [m for m, v in judged.items() if v[0] == "fail"]
        before, after = (
            statistics.median(r["rate_before"] or [0]),
            statistics.median(r["rate_after"] or [0]),
        )
        reasons = ", ".join(failing) + (" up" if failing else "")
        if r["incidents"]:
            reasons += ("; " if reasons else "") + f"{r['incidents']} incident(s) opened"
        rows.append(
            {
                "kind": "deployment_health",
                "service": r["service"],
                "entity_key": r["deployment_key"],
                "detected_at": r["last_sample"],
                "observed": after,
                "expected": before,
                "score": score,
                "severity": "critical" if verdict == "fail" else "warning",
                "explanation": f"{r['service']} {r['environment']} deploy of {r['sha'][:8]} at"
                f" {r['deployed_at']:%Y-%m-%d %H:%M}: {verdict} (canary score {score:.0f});"
                f" {reasons}; error rate {before:.2%} -> {after:.2%}",
            }
        )
    return _frame(rows)


# --- model accuracy ----------------------------------------------------------------------------
def model_accuracy(conn, t: Thresholds) -> pl.DataFrame:
    if not _table_exists(conn, "ml", "model_quality"):
        return _frame([])
    rows = []
    for r in _rows(conn, "SELECT * FROM ml.model_quality WHERE below_floor AND runs >= 20"):
        measure = r["within_20pct"] if r["model"] == "build_duration" else r["accuracy"]
        name = "within 20%" if r["model"] == "build_duration" else "accuracy"
        rows.append(
            {
                "kind": "model_accuracy",
                "service": None,
                "entity_key": f"{r['model']}|{r['version']}",
                "detected_at": r["measured_at"],
                "observed": measure,
                "expected": r["floor"],
                "score": r["floor"] - measure,
                "severity": "critical",
                "explanation": f"{r['model']} version {r['version']}: {name} {measure:.0%} on"
                f" {r['runs']} live runs, under its {r['floor']:.0%} floor",
            }
        )
    return _frame(rows)


DETECTORS = {
    "build_duration": build_duration,
    "failure_rate": failure_rate,
    "ci_cost": ci_cost,
    "deployment_health": deployment_health,
    "model_accuracy": model_accuracy,
}


def detect_all(conn, t: Thresholds) -> pl.DataFrame:
    return pl.concat([detect(conn, t) for detect in DETECTORS.values()])


ANOMALIES_DDL = """
CREATE SCHEMA IF NOT EXISTS ml;
CREATE TABLE IF NOT EXISTS ml.anomalies (
    anomaly_key VARCHAR PRIMARY KEY, kind VARCHAR, service VARCHAR, entity_key VARCHAR,
    detected_at TIMESTAMPTZ, observed DOUBLE, expected DOUBLE, score DOUBLE, severity VARCHAR,
    explanation VARCHAR, first_seen_at TIMESTAMPTZ, last_seen_at TIMESTAMPTZ,
    cleared_at TIMESTAMPTZ, occurrence INTEGER DEFAULT 1);
-- a warehouse from before occurrence (1, then one more each time a cleared anomaly comes back)
ALTER TABLE ml.anomalies ADD COLUMN IF NOT EXISTS occurrence INTEGER DEFAULT 1;
"""


def store(conn, found: pl.DataFrame) -> dict[str, int]:
    """Upsert by key: a known anomaly is updated (first_seen_at kept), one no longer found is
    marked cleared, nothing is duplicated. A cleared anomaly found again is open again, as its
    next occurrence: the automation alerts (and resolves) each occurrence once."""
    conn.execute(ANOMALIES_DDL)
    conn.register("dcicd_found", found.to_arrow())
    try:
        new = conn.execute(
            "SELECT count(*) FROM dcicd_found WHERE anomaly_key NOT IN"
            " (SELECT anomaly_key FROM ml.anomalies)"
        ).fetchall()[0][0]
        conn.execute(
            """INSERT INTO ml.anomalies BY NAME
            SELECT *, now() AS first_seen_at, now() AS last_seen_at, NULL AS cleared_at
            FROM dcicd_found
            ON CONFLICT (anomaly_key) DO UPDATE SET observed = excluded.observed,
                expected = excluded.expected, score = excluded.score,
                severity = excluded.severity, explanation = excluded.explanation,
                detected_at = excluded.detected_at, last_seen_at = now(), cleared_at = NULL,
                occurrence = CASE WHEN cleared_at IS NULL THEN occurrence
                    ELSE occurrence + 1 END"""
        )
        cleared = conn.execute(
            """UPDATE ml.anomalies SET cleared_at = now()
            WHERE cleared_at IS NULL AND anomaly_key NOT IN (SELECT anomaly_key FROM dcicd_found)"""
        ).fetchall()[0][0]
    finally:
        conn.unregister("dcicd_found")
    return {"new": new, "found": found.height, "cleared": cleared}
