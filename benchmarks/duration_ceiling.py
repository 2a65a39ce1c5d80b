"""How far the history allows a duration predictor to go, judged by the share within 20%.

Two figures beside the model and its baseline, on the same evaluation slice (the last 20% of
finished runs by start time):

- `trailing_mode`: for each run, the duration that the most of its workflow's last 20 finished
  runs under the same trigger (finished before it started) lie within 20% of. The measure
  rewards the most common duration, not the median; this is the best of the simple estimators
  tried on both data sets.
- `oracle_constant`: the best single duration per workflow and trigger, chosen on the
  evaluation slice itself, knowing every answer. No predictor that gives one figure per
  workflow and trigger can pass it; a model must find what else moves durations.

A duration d is within 20% of a prediction p when |p - d| <= 0.2 d, so p covers the durations
in [p / 1.2, p / 0.8]: the densest window of log-width log(1.2) + log(1.25) in log space.
"""

from __future__ import annotations

import bisect
from collections import defaultdict

import numpy as np
import polars as pl

WINDOW = 20
FINISHED = ("success", "failure", "timed_out")


def densest_duration(durations: np.ndarray) -> float:
    """The prediction that the most durations lie within 20% of (seconds; durations > 0): the
    same rule as the trailing mode the predictors use (`ml.features.densest_durations`)."""
    from ml.features import densest_durations

    return float(densest_durations(np.asarray(durations, dtype=float)[None, :])[0])


def _within(predicted: float, actual: float) -> bool:
    return abs(predicted - actual) <= 0.2 * actual


def ceilings(runs: pl.DataFrame, evaluation_share: float = 0.2) -> dict[str, float]:
    """Shares within 20% on the evaluation slice: `trailing_mode` and `oracle_constant`."""
    finished = runs.filter(
        (pl.col("status") == "completed")
        & pl.col("conclusion").is_in(FINISHED)
        & pl.col("finished_at").is_not_null()
        & pl.col("duration_s").is_not_null()
    ).sort("started_at")
    keys = ["repo", "workflow", "trigger_event"]
    history: dict[tuple, tuple[list, list]] = defaultdict(lambda: ([], []))
    for *key, finished_at, duration in (
        finished.sort("finished_at").select(*keys, "finished_at", "duration_s").iter_rows()
    ):
        history[tuple(key)][0].append(finished_at)
        history[tuple(key)][1].append(duration)
    evaluation = finished[int(finished.height * (1 - evaluation_share)) :]
    hits = 0
    for *key, started_at, duration in evaluation.select(
        *keys, "started_at", "duration_s"
    ).iter_rows():
        times, durations = history.get(tuple(key), ([], []))
        before = bisect.bisect_left(times, started_at)
        past = np.array(durations[max(0, before - WINDOW) : before], dtype=float)
        hits += bool(len(past)) and _within(densest_duration(past), duration)
    oracle = 0
    for _, group in evaluation.group_by(keys):
        actual = group["duration_s"].to_numpy().astype(float)
        best = densest_duration(actual)
        oracle += sum(_within(best, a) for a in actual)
    return {
        "trailing_mode": hits / max(evaluation.height, 1),
        "oracle_constant": oracle / max(evaluation.height, 1),
    }
