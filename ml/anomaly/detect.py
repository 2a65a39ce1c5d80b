"""Every detector over the warehouse at once, and every statement they run."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ml.anomaly import (
    build_duration,
    ci_cost,
    collection,
    deployment_health,
    failure_rate,
    model_accuracy,
)

if TYPE_CHECKING:
    import polars as pl

    from dcicd_platform.config import AnomalyThresholds

DETECTORS = (build_duration, failure_rate, ci_cost, deployment_health, model_accuracy, collection)
# What the detectors read, for the lineage of ml/anomalies (parsed, never listed by hand).
SQL = tuple(sql for detector in DETECTORS for sql in detector.SQL)


def detect_all(conn, t: AnomalyThresholds, rollback_window_minutes: int) -> pl.DataFrame:
    """Every kind's anomalies; a deployment is judged on the health samples of the rollback
    window either side of it (what the automation may still roll back)."""
    import polars as pl

    return pl.concat(
        [
            build_duration.build_duration(conn, t),
            failure_rate.failure_rate(conn, t),
            ci_cost.ci_cost(conn, t),
            deployment_health.deployment_health(conn, t, rollback_window_minutes),
            model_accuracy.model_accuracy(conn, t),
            collection.collection(conn, t),
        ]
    )
