"""Every detector over the warehouse at once, and every statement they run.

`detect_all` judges all history (the definition of each kind); `detect_and_store`, what the
ml/anomalies asset runs every few minutes, judges what changed since its last run (changes.py)
and upserts the anomalies, in one transaction, with what it has seen.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ml.anomaly import (
    build_duration,
    ci_cost,
    collection,
    deployment_health,
    failure_rate,
    model_accuracy,
)
from ml.anomaly.changes import commit, since_last_run
from ml.anomaly.store import store

if TYPE_CHECKING:
    import polars as pl

    from dcicd_platform.config import AnomalyThresholds
    from ml.anomaly.changes import Judged

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


def detect_changed(
    conn, t: AnomalyThresholds, rollback_window_minutes: int, use_predictions: bool = True
) -> tuple[pl.DataFrame, dict[str, Judged] | None, dict[str, float], object]:
    """(anomalies, what was judged per kind (None: everything), seconds per kind, the changes
    to commit once stored): each kind judged where its rows changed since the last run, or
    whole where that cannot be known. use_predictions: False while predictions are switched
    to shadow or off (slow builds judged as before any model; a switch judges all again)."""
    import polars as pl

    settings = t.model_dump() | {"window": rollback_window_minutes}
    if not use_predictions:
        settings["predictions"] = "not used"
    changes = since_last_run(conn, settings)
    frames, judged, seconds = [], {}, {}

    def run(kind: str, detect) -> None:
        started = time.perf_counter()
        frame, judged[kind] = detect()
        frames.append(frame)
        seconds[kind] = time.perf_counter() - started

    runs_jobs = changes.of("runs", "jobs")
    run(
        "build_duration",
        lambda: (
            (build_duration.build_duration(conn, t, use_predictions), None)
            if runs_jobs is None
            else build_duration.changed(
                conn, t, *runs_jobs, changes.predictions_since, use_predictions
            )
        ),
    )
    runs = changes.of("runs")
    run(
        "failure_rate",
        lambda: (
            (failure_rate.failure_rate(conn, t), None)
            if runs is None
            else failure_rate.changed(conn, t, *runs)
        ),
    )
    costs = changes.of("daily_costs", "run_costs_runs", "run_costs_jobs")
    run(
        "ci_cost",
        lambda: (
            (ci_cost.ci_cost(conn, t), None) if costs is None else ci_cost.changed(conn, t, *costs)
        ),
    )
    run(
        "deployment_health",
        lambda: deployment_health.changed(conn, t, rollback_window_minutes, changes.whole),
    )
    run("model_accuracy", lambda: (model_accuracy.model_accuracy(conn, t), None))
    run("collection", lambda: (collection.windowed(conn, t), None))
    return pl.concat(frames), (None if changes.whole else judged), seconds, changes


def detect_and_store(
    conn, t: AnomalyThresholds, rollback_window_minutes: int, use_predictions: bool = True
) -> tuple[dict[str, int], dict[str, float]]:
    """Judge what changed, upsert the anomalies and remember what was seen, all or nothing:
    (counts new / found / cleared, seconds per kind and for the upsert)."""
    conn.execute("BEGIN TRANSACTION")
    try:
        found, judged, seconds, changes = detect_changed(
            conn, t, rollback_window_minutes, use_predictions
        )
        started = time.perf_counter()
        counts = store(conn, found, judged)
        deployment_health.remember(conn)
        commit(conn, changes)
        seconds["store"] = time.perf_counter() - started
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return counts, seconds
