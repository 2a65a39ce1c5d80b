"""build_duration: a successful run far slower than expected, or a job that became slower.

A run the duration model scored (the trained model, or the baseline when that serves) with an
interval is slow above its `slow_above_s`:
the one-sided conformal bound at `build_duration_level` (0.99) that ml/intervals.py sets when the
run is scored, above which about 1% of normal successful runs fall. So a workflow whose
duration swings widely is not flagged for a swing it always had, and a steady one is flagged
for a smaller step, where a fixed ratio treats both alike. A run without an interval (scored
before intervals existed, with too little calibration for the level, or never scored) keeps
the fixed rule: `build_duration_ratio` (1.5) times the model's prediction, else the workflow's
trailing median under the same trigger. Either way the anomaly is a warning when the run is
also at least the outlier ratio (2 x 1.5 - 1 = 2) times what was expected, else info.
A job is judged against its two weeks before (its last three runs' median too).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dbt_like_sql.catalog import column_exists, fetch_dicts, table_exists
from ml.anomaly.store import as_frame

if TYPE_CHECKING:
    import polars as pl

    from dcicd_platform.config import AnomalyThresholds

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
SELECT r.*, p.predicted_duration_s, p.slow_above_s, p.predictor,
    coalesce(p.predicted_duration_s, r.trailing_p50) AS expected_s
FROM runs r LEFT JOIN predicted p USING (run_key)
WHERE (p.predicted_duration_s IS NOT NULL OR r.history >= 5)
    AND CASE WHEN p.slow_above_s IS NOT NULL THEN r.duration_s > p.slow_above_s
        ELSE r.duration_s >= $ratio * coalesce(p.predicted_duration_s, r.trailing_p50) END
"""
PREDICTED_SQL = (
    "SELECT run_key, predicted_duration_s, slow_above_s, coalesce(predictor, 'lightgbm')"
    " AS predictor FROM ml.build_predictions WHERE model_name = 'build_duration'"
)
NOT_PREDICTED_SQL = (
    "SELECT NULL::VARCHAR AS run_key, NULL::DOUBLE AS predicted_duration_s,"
    " NULL::DOUBLE AS slow_above_s, NULL::VARCHAR AS predictor WHERE false"
)
BASIS = {
    "lightgbm": "the duration model predicted",
    "baseline": "the baseline serving (its workflow's trailing median) predicted",
}

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

# Every statement this detector may run (the lineage of ml/anomalies is read from these).
SQL = (BUILD_DURATION_SQL.format(predicted=PREDICTED_SQL), SLOW_JOBS_SQL)


def slow_jobs(conn, t: AnomalyThresholds) -> list[dict]:
    """A job that became slower than its runs of the two weeks before: what a run's total
    hides when jobs run in parallel (one slow job among several barely moves the run). One
    slow run alone is usually a busy runner; the median of the job's last three runs must
    have moved too, unless the run is twice as slow as the outlier ratio allows."""
    rows = []
    outlier = 2 * t.build_duration_ratio - 1
    params = {"shift": t.job_shift_ratio, "outlier": outlier}
    for r in fetch_dicts(conn, SLOW_JOBS_SQL, params):
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


def _predicted_sql(conn) -> str:
    """PREDICTED_SQL, with NULL (no bound) or 'lightgbm' for a column that a warehouse whose
    predictions were last stored before intervals, or before baselines served, lacks."""
    if not table_exists(conn, "ml.build_predictions"):
        return NOT_PREDICTED_SQL
    sql = PREDICTED_SQL
    if not column_exists(conn, "ml.build_predictions", "slow_above_s"):
        sql = sql.replace("slow_above_s,", "NULL::DOUBLE AS slow_above_s,")
    if not column_exists(conn, "ml.build_predictions", "predictor"):
        sql = sql.replace("coalesce(predictor, 'lightgbm')", "'lightgbm'")
    return sql


def build_duration(conn, t: AnomalyThresholds) -> pl.DataFrame:
    """Slow runs (above their interval's bound, else against the model's prediction or the
    trailing median) and slow jobs."""
    rows = []
    sql = BUILD_DURATION_SQL.format(predicted=_predicted_sql(conn))
    for r in fetch_dicts(conn, sql, {"ratio": t.build_duration_ratio}):
        ratio = r["duration_s"] / r["expected_s"]
        basis = (
            BASIS.get(r["predictor"], BASIS["lightgbm"])
            if r["predicted_duration_s"]
            else "its last runs' median was"
        )
        bound = (
            f", above the {r['slow_above_s'] / 60:.1f} min its interval allows"
            if r["slow_above_s"] is not None
            else ""
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
                f" ({r['expected_s'] / 60:.1f} min){bound}",
            }
        )
    return as_frame(rows + slow_jobs(conn, t))
