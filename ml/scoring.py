"""Scoring runs with the champion models, once each, and measuring the champions live.

A run is scored by each model once, by the champion of the moment it is first seen; that
prediction is kept, whatever models come later. Live quality counts only runs that started
after the scoring model's training data ended, so it never grades a model on runs it learnt.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import polars as pl

from dbt_like_sql.catalog import fetch_dicts
from ml.features import arrow_query
from ml.intervals import DEFAULT_LEVEL
from ml.serving import SERVING_DDL
from ml.train import DURATION, Predictor, predict_duration, predict_success

PREDICTIONS_DDL = """
CREATE SCHEMA IF NOT EXISTS ml;
CREATE TABLE IF NOT EXISTS ml.build_predictions (
    run_key VARCHAR, model_name VARCHAR, model_version VARCHAR,
    predicted_duration_s DOUBLE, predicted_success_proba DOUBLE, scored_at TIMESTAMPTZ,
    trained_through TIMESTAMPTZ, started_at TIMESTAMPTZ,
    PRIMARY KEY (run_key, model_name));
-- The duration's P10-P90 interval and the slow-build bound (ml/intervals.py); added after the
-- table's first release, so a warehouse created before gains them here.
ALTER TABLE ml.build_predictions ADD COLUMN IF NOT EXISTS predicted_duration_p10_s DOUBLE;
ALTER TABLE ml.build_predictions ADD COLUMN IF NOT EXISTS predicted_duration_p90_s DOUBLE;
ALTER TABLE ml.build_predictions ADD COLUMN IF NOT EXISTS slow_above_s DOUBLE;
-- which predictor made it, 'lightgbm' or 'baseline' (rows from before it was kept: LightGBM)
ALTER TABLE ml.build_predictions ADD COLUMN IF NOT EXISTS predictor VARCHAR;
"""


@dataclass
class Champion:
    name: str
    version: str
    predictor: Predictor
    trained_through: str


def unscored(conn, features: pl.DataFrame, model: str) -> pl.DataFrame:
    """The runs the model has not scored yet."""
    scored = arrow_query(
        conn, f"SELECT run_key FROM ml.build_predictions WHERE model_name = '{model}'"
    )
    return features.join(scored, on="run_key", how="anti")


def predictions(
    champion: Champion, runs: pl.DataFrame, level: float = DEFAULT_LEVEL
) -> pl.DataFrame:
    """One row per run: the champion's prediction (seconds, or the probability of success);
    for duration, its P10-P90 interval and the bound above which a successful run is slow at
    level (anomalies.build_duration_level), where the model has an interval (else null)."""
    duration = champion.name == DURATION
    predict = predict_duration if duration else predict_success
    values = pl.Series(predict(champion.predictor, runs) if runs.height else [], dtype=pl.Float64)
    missing = pl.Series([None] * runs.height, dtype=pl.Float64)
    p10 = p90 = slow = missing
    interval = getattr(champion.predictor, "interval", None) if duration else None
    if interval is not None and runs.height:
        p10, p90 = (pl.Series(bound, dtype=pl.Float64) for bound in interval.predict(runs))
        # NaN where the calibration is too small for the level: no bound, the ratio rule holds
        slow = pl.Series(interval.slow_above(runs, level), dtype=pl.Float64).fill_nan(None)
    return pl.DataFrame(
        {
            "run_key": runs["run_key"],
            "model_name": champion.name,
            "model_version": champion.version,
            "predicted_duration_s": values if duration else missing,
            "predicted_success_proba": missing if duration else values,
            "predicted_duration_p10_s": p10,
            "predicted_duration_p90_s": p90,
            "slow_above_s": slow,
            "scored_at": datetime.now(UTC),
            "trained_through": datetime.fromisoformat(champion.trained_through),
            "started_at": runs["started_at"],
            "predictor": getattr(champion.predictor, "kind", "lightgbm"),
        }
    )


def store(conn, rows: pl.DataFrame) -> int:
    """Insert predictions; a run already scored by the model keeps its first prediction."""
    if rows.height == 0:
        return 0
    conn.register("dcicd_new_predictions", rows.to_arrow())
    try:
        return conn.execute(
            "INSERT OR IGNORE INTO ml.build_predictions BY NAME SELECT * FROM dcicd_new_predictions"
        ).fetchall()[0][0]
    finally:
        conn.unregister("dcicd_new_predictions")


MODEL_QUALITY_SQL = """
CREATE OR REPLACE TABLE ml.model_quality AS
WITH outcomes AS (
    SELECT p.model_name AS model, p.model_version AS version,
        coalesce(p.predictor, 'lightgbm') AS predictor,
        coalesce(p.predicted_duration_s, p.predicted_success_proba) AS prediction, r.duration_s,
        (r.conclusion = 'success')::INT AS succeeded
    FROM ml.build_predictions p
    JOIN core.pipeline_runs r USING (run_key)
    WHERE r.status = 'completed' AND r.conclusion IN ('success', 'failure', 'timed_out')
        AND r.started_at > p.trained_through  -- runs the model never learnt from
), quality AS (
    SELECT model, version, count(*) AS runs,
        CASE WHEN model = 'build_duration' THEN
            avg((abs(prediction - duration_s) <= 0.2 * duration_s)::INT) END AS within_20pct,
        CASE WHEN model = 'build_duration' THEN avg(abs(prediction - duration_s)) END AS mae_s,
        CASE WHEN model = 'build_outcome' THEN
            avg(((prediction >= 0.5)::INT = succeeded)::INT) END AS accuracy,
        CASE WHEN model = 'build_outcome' THEN avg(power(prediction - succeeded, 2)) END AS brier,
        CASE model WHEN 'build_duration' THEN $duration_floor ELSE $outcome_floor END AS floor,
        coalesce(within_20pct, accuracy) < floor AS below_floor,
        now() AS measured_at,
        any_value(predictor) AS predictor
    FROM outcomes
    GROUP BY model, version
)
-- why the version serves (or served), from ml.serving
SELECT q.*, coalesce(s.serving, false) AS serving, s.reason
FROM quality q LEFT JOIN ml.serving s ON s.model_name = q.model AND s.version = q.version
ORDER BY q.model, q.version
"""


def refresh_model_quality(conn, duration_floor: float, outcome_floor: float) -> list[dict]:
    """Rebuild ml.model_quality; its rows as dicts (model, version, runs, within_20pct, mae_s,
    accuracy, brier, floor, below_floor, measured_at, predictor, serving, reason)."""
    conn.execute(PREDICTIONS_DDL)
    conn.execute(SERVING_DDL)
    conn.execute(
        MODEL_QUALITY_SQL, {"duration_floor": duration_floor, "outcome_floor": outcome_floor}
    )
    return fetch_dicts(conn, "SELECT * FROM ml.model_quality")
