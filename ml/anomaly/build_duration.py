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

BUILD_DURATION_SQL and SLOW_JOBS_SQL judge all history; RUNS_CHANGED_SQL and JOBS_CHANGED_SQL
the same runs and jobs of the workflows (and jobs) whose rows changed, from the earliest
changed one on (a run is judged against the 20 before it, a job against its two weeks before
and its two runs before), reading only those windows before it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from dbt_like_sql.catalog import column_exists, fetch_dicts, table_exists
from ml.anomaly.store import as_frame

if TYPE_CHECKING:
    import polars as pl

    from dcicd_platform.config import AnomalyThresholds
    from ml.anomaly.changes import Judged

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


# The runs and jobs to judge again: per partition (a workflow under a trigger; a job of a
# workflow), the earliest start a change touched (unknown: the whole partition), from
# dcicd_touched_runs / dcicd_touched_jobs. $lower is the earliest of those less the window a
# rule looks back over: a plain bound read before any join.
def _sparse_sql(
    kind: str, keys: tuple[str, ...], enough: int, days: int, older: str, alias: str
) -> tuple[str, str]:
    """The two statements that reach further back where a partition of `dcicd_{kind}_rows`
    has fewer than `enough` rows before its first judged one: those partitions
    (`dcicd_sparse_{kind}s`), then each one's last `enough` rows before the `days`-day window,
    appended to the rows. `older` reads a partition's rows (as `alias`) joined to its part
    (as `p`)."""
    columns = ", ".join(keys)
    same = " AND ".join(f"o.{k} IS NOT DISTINCT FROM b.{k}" for k in keys)
    parts = f"""
CREATE OR REPLACE TEMP TABLE dcicd_sparse_{kind}s AS
SELECT {columns}, any_value(since) AS since
FROM dcicd_{kind}_rows GROUP BY ALL
HAVING count(*) FILTER (WHERE started_at < since) < {enough}
"""
    rows = f"""
INSERT INTO dcicd_{kind}_rows
SELECT * FROM (
    WITH older AS ({older}
        AND {alias}.started_at < p.since - INTERVAL {days} DAY
    ), bounds AS (
        SELECT {columns}, list_min(max(started_at, {enough})) AS lookback
        FROM older GROUP BY ALL
    )
    SELECT o.* FROM older o JOIN bounds b ON {same}
    WHERE o.started_at >= b.lookback
)
"""
    return parts, rows


_SAME = "{a}.repo IS NOT DISTINCT FROM {b}.repo AND {a}.workflow IS NOT DISTINCT FROM {b}.workflow"
RUN_PARTS = """
CREATE OR REPLACE TEMP TABLE dcicd_run_parts AS
SELECT repo, workflow, trigger_event,
    min(coalesce(started_at, '-infinity'::TIMESTAMPTZ)) AS since
FROM dcicd_touched_runs GROUP BY ALL
"""
_RUN_ROWS = """
SELECT r.run_key, r.service, r.repo, r.workflow, r.trigger_event, r.duration_s,
    r.finished_at, r.started_at, p.since
FROM core.pipeline_runs r JOIN {parts} p ON {same}
    AND r.trigger_event IS NOT DISTINCT FROM p.trigger_event
WHERE r.status = 'completed' AND r.conclusion = 'success' AND r.duration_s > 0
"""
_SAME_R = _SAME.format(a="r", b="p")
# The successful runs of the week before the first judged one, and any whose start is unknown.
RUN_ROWS = (
    "CREATE OR REPLACE TEMP TABLE dcicd_run_rows AS"
    + _RUN_ROWS.format(parts="dcicd_run_parts", same=_SAME_R)
    + " AND ((r.started_at >= p.since - INTERVAL 7 DAY AND r.started_at >= $lower)"
    " OR r.started_at IS NULL)"
)
# A run is judged against the 20 before it: further back than that week where the workflow
# ran less often, for those.
SPARSE_RUN_PARTS, SPARSE_RUN_ROWS = _sparse_sql(
    "run",
    ("repo", "workflow", "trigger_event"),
    enough=20,
    days=7,
    older=_RUN_ROWS.format(parts="dcicd_sparse_runs", same=_SAME_R),
    alias="r",
)
RUNS_CHANGED_SQL = """
WITH runs AS (
    SELECT r.*,
        quantile_cont(r.duration_s, 0.5) OVER w AS trailing_p50, count(*) OVER w AS history
    FROM dcicd_run_rows r
    WINDOW w AS (PARTITION BY r.repo, r.workflow, r.trigger_event ORDER BY r.started_at
        ROWS BETWEEN 20 PRECEDING AND 1 PRECEDING)
), predicted AS ({predicted})
SELECT r.* EXCLUDE (since), p.predicted_duration_s, p.slow_above_s, p.predictor,
    coalesce(p.predicted_duration_s, r.trailing_p50) AS expected_s
FROM runs r LEFT JOIN predicted p USING (run_key)
WHERE (r.started_at >= r.since OR r.started_at IS NULL)
    AND (p.predicted_duration_s IS NOT NULL OR r.history >= 5)
    AND CASE WHEN p.slow_above_s IS NOT NULL THEN r.duration_s > p.slow_above_s
        ELSE r.duration_s >= $ratio * coalesce(p.predicted_duration_s, r.trailing_p50) END
"""
# Every run of the touched partitions from the earliest touched on, and each touched run: the
# anomalies these judged again (one no longer found is cleared).
RUNS_JUDGED_SQL = f"""
SELECT r.run_key FROM core.pipeline_runs r JOIN dcicd_run_parts p ON {_SAME_R}
    AND r.trigger_event IS NOT DISTINCT FROM p.trigger_event
WHERE (r.started_at >= p.since AND r.started_at >= $lower) OR r.started_at IS NULL
UNION SELECT run_key FROM dcicd_touched_runs
"""

JOB_PARTS = """
CREATE OR REPLACE TEMP TABLE dcicd_job_parts AS
SELECT repo, workflow, job_name, min(coalesce(started_at, '-infinity'::TIMESTAMPTZ)) AS since
FROM dcicd_touched_jobs GROUP BY ALL
"""
_JOB_ROWS = """
SELECT j.job_key, j.run_key, j.repo, j.workflow, j.job_name, j.duration_s, j.finished_at,
    j.started_at, r.service, r.trigger_event, p.since
FROM core.pipeline_jobs j JOIN core.pipeline_runs r USING (run_key)
JOIN {parts} p ON {same} AND j.job_name IS NOT DISTINCT FROM p.job_name{trigger}
WHERE j.status = 'completed' AND j.conclusion = 'success' AND j.duration_s > 0
"""
_SAME_J = _SAME.format(a="j", b="p")
# The jobs of the two weeks before the first judged one (a job's baseline), and any job
# whose start is unknown.
JOB_ROWS = (
    "CREATE OR REPLACE TEMP TABLE dcicd_job_rows AS"
    + _JOB_ROWS.format(parts="dcicd_job_parts", same=_SAME_J, trigger="")
    + " AND ((j.started_at >= p.since - INTERVAL 15 DAY AND j.started_at >= $lower)"
    " OR j.started_at IS NULL)"
)
# A job's last three runs reach further back where the job ran fewer than twice in those two
# weeks: the two runs before, for those.
SPARSE_JOB_PARTS, SPARSE_JOB_ROWS = _sparse_sql(
    "job",
    ("repo", "workflow", "job_name", "trigger_event"),
    enough=2,
    days=15,
    older=_JOB_ROWS.format(
        parts="dcicd_sparse_jobs",
        same=_SAME_J,
        trigger=" AND r.trigger_event IS NOT DISTINCT FROM p.trigger_event",
    ),
    alias="j",
)
JOBS_CHANGED_SQL = """
WITH jobs AS (
    SELECT j.*,
        quantile_cont(j.duration_s, 0.5) OVER before AS baseline_p50,
        count(*) OVER before AS history,
        quantile_cont(j.duration_s, 0.5) OVER latest AS latest_p50
    FROM dcicd_job_rows j
    WINDOW before AS (PARTITION BY j.repo, j.workflow, j.job_name, j.trigger_event
            ORDER BY j.started_at
            RANGE BETWEEN INTERVAL 15 DAY PRECEDING AND INTERVAL 1 DAY PRECEDING),
        latest AS (PARTITION BY j.repo, j.workflow, j.job_name, j.trigger_event
            ORDER BY j.started_at ROWS BETWEEN 2 PRECEDING AND CURRENT ROW)
)
SELECT * EXCLUDE (since) FROM jobs
WHERE (started_at >= since OR started_at IS NULL) AND history >= 5 AND (
    (duration_s >= $shift * baseline_p50 AND latest_p50 >= $shift * baseline_p50)
    OR duration_s >= $outlier * baseline_p50)
"""
JOBS_JUDGED_SQL = f"""
SELECT j.job_key FROM core.pipeline_jobs j JOIN dcicd_job_parts p ON {_SAME_J}
    AND j.job_name IS NOT DISTINCT FROM p.job_name
WHERE (j.started_at >= p.since AND j.started_at >= $lower) OR j.started_at IS NULL
UNION SELECT job_key FROM dcicd_touched_jobs
"""

# Every statement this detector may run (the lineage of ml/anomalies is read from these).
SQL = (
    BUILD_DURATION_SQL.format(predicted=PREDICTED_SQL),
    SLOW_JOBS_SQL,
    RUN_ROWS,
    SPARSE_RUN_ROWS,
    RUNS_CHANGED_SQL.format(predicted=PREDICTED_SQL),
    RUNS_JUDGED_SQL,
    JOB_ROWS,
    SPARSE_JOB_ROWS,
    JOBS_CHANGED_SQL,
    JOBS_JUDGED_SQL,
)


def slow_jobs(conn, t: AnomalyThresholds) -> list[dict]:
    """A job that became slower than its runs of the two weeks before: what a run's total
    hides when jobs run in parallel (one slow job among several barely moves the run). One
    slow run alone is usually a busy runner; the median of the job's last three runs must
    have moved too, unless the run is twice as slow as the outlier ratio allows."""
    return _slow_jobs(fetch_dicts(conn, SLOW_JOBS_SQL, _job_params(t)))


def _job_params(t: AnomalyThresholds) -> dict:
    return {"shift": t.job_shift_ratio, "outlier": 2 * t.build_duration_ratio - 1}


def _slow_jobs(found: list[dict]) -> list[dict]:
    rows = []
    for r in found:
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


def _predicted_sql(conn, use_predictions: bool = True) -> str:
    """PREDICTED_SQL, with NULL (no bound) or 'lightgbm' for a column that a warehouse whose
    predictions were last stored before intervals, or before baselines served, lacks; no
    prediction at all when predictions are not live (switched to shadow or off): every run is
    judged against its workflow's trailing median, as before any model."""
    if not use_predictions or not table_exists(conn, "ml.build_predictions"):
        return NOT_PREDICTED_SQL
    sql = PREDICTED_SQL
    if not column_exists(conn, "ml.build_predictions", "slow_above_s"):
        sql = sql.replace("slow_above_s,", "NULL::DOUBLE AS slow_above_s,")
    if not column_exists(conn, "ml.build_predictions", "predictor"):
        sql = sql.replace("coalesce(predictor, 'lightgbm')", "'lightgbm'")
    return sql


def build_duration(conn, t: AnomalyThresholds, use_predictions: bool = True) -> pl.DataFrame:
    """Slow runs (above their interval's bound, else against the model's prediction or the
    trailing median) and slow jobs."""
    sql = BUILD_DURATION_SQL.format(predicted=_predicted_sql(conn, use_predictions))
    runs = fetch_dicts(conn, sql, {"ratio": t.build_duration_ratio})
    return as_frame(_slow_runs(runs, t) + slow_jobs(conn, t))


def changed(
    conn,
    t: AnomalyThresholds,
    runs: str,
    jobs: str,
    predictions_since,
    use_predictions: bool = True,
) -> tuple[pl.DataFrame, Judged]:
    """Runs and jobs judged again where rows changed: runs (a SELECT of old and new rows of
    core.pipeline_runs), jobs (the same of core.pipeline_jobs), and the runs scored after
    predictions_since (None: none before); and which anomaly keys that covers."""
    scored = ""
    if table_exists(conn, "ml.build_predictions"):
        scored = (
            " UNION ALL SELECT run_key, repo, workflow, trigger_event, started_at"
            " FROM core.pipeline_runs WHERE run_key IN (SELECT run_key FROM ml.build_predictions"
            " WHERE model_name = 'build_duration' AND scored_at > $since)"
        )
    conn.execute(
        "CREATE OR REPLACE TEMP TABLE dcicd_touched_runs AS"
        f" SELECT run_key, repo, workflow, trigger_event, started_at FROM ({runs}){scored}",
        {"since": predictions_since or datetime.min.replace(tzinfo=UTC)} if scored else {},
    )
    conn.execute(
        "CREATE OR REPLACE TEMP TABLE dcicd_touched_jobs AS"
        f" SELECT job_key, repo, workflow, job_name, started_at FROM ({jobs})"
    )
    conn.execute(RUN_PARTS)
    conn.execute(JOB_PARTS)
    # the earliest start read (a start unknown: from 1900 on, the rows read whole)
    runs_from, jobs_from = (
        {
            "lower": conn.execute(
                f"SELECT greatest(min(since), TIMESTAMPTZ '1900-01-01') - INTERVAL {days} DAY"
                f" FROM {parts}"
            ).fetchall()[0][0]
        }
        for parts, days in (("dcicd_run_parts", 7), ("dcicd_job_parts", 15))
    )
    conn.execute(RUN_ROWS, runs_from)
    conn.execute(SPARSE_RUN_PARTS)
    conn.execute(SPARSE_RUN_ROWS)
    sql = RUNS_CHANGED_SQL.format(predicted=_predicted_sql(conn, use_predictions))
    found = _slow_runs(fetch_dicts(conn, sql, {"ratio": t.build_duration_ratio}), t)
    conn.execute(JOB_ROWS, jobs_from)
    conn.execute(SPARSE_JOB_PARTS)
    conn.execute(SPARSE_JOB_ROWS)
    found += _slow_jobs(fetch_dicts(conn, JOBS_CHANGED_SQL, _job_params(t)))
    judged = {k for (k,) in conn.execute(RUNS_JUDGED_SQL, runs_from).fetchall()}
    judged |= {k for (k,) in conn.execute(JOBS_JUDGED_SQL, jobs_from).fetchall()}
    return as_frame(found), judged.__contains__


def _slow_runs(found: list[dict], t: AnomalyThresholds) -> list[dict]:
    rows = []
    for r in found:
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
    return rows
