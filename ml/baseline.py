"""The baseline as a predictor of its own, so that a run always gets a prediction.

When no trained model beats the baseline, the baseline serves: it is registered as a version of
the same registered model (tag `predictor=baseline`) and scores runs as a LightGBM champion
would. Duration: the workflow's trailing median (`wf_duration_p50`, its last 20 completed runs),
or, for a workflow with no history yet, the median duration of the training runs. Outcome: the
workflow's trailing success rate (`1 - wf_failure_rate`), or the training runs' success rate.

It is stored as a small JSON artifact (`baseline/baseline.json`): figures, not a pickle.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import numpy as np
import polars as pl

from ml.features import WINDOW
from ml.train import DURATION, OUTCOME

KIND = "baseline"
ARTIFACT_DIR = "baseline"
ARTIFACT = f"{ARTIFACT_DIR}/baseline.json"
# Per model: what the baseline predicts, the feature it reads, and the target it learns its
# fallback from.
METHODS = {
    DURATION: ("trailing median", "wf_duration_p50", "duration_s"),
    OUTCOME: ("trailing success rate", "wf_failure_rate", "succeeded"),
}
# Fallbacks when the training runs are not known: one minute, and train.outcome_baseline's 0.9.
DEFAULT_FALLBACK = {DURATION: 60.0, OUTCOME: 0.9}


@dataclass
class TrainingSummary:
    """What a predictor learnt from: run, repository and workflow counts, and the first and
    last start time (RFC 3339) among those runs. None where it is not known."""

    runs: int | None = None
    repositories: int | None = None
    workflows: int | None = None
    first_start: str | None = None
    last_start: str | None = None

    @classmethod
    def of(cls, runs: pl.DataFrame | None) -> TrainingSummary:
        if runs is None or runs.height == 0:
            return cls()
        return cls(
            runs.height,
            runs["repo"].n_unique(),
            runs.select("repo", "workflow").n_unique(),
            runs["started_at"].min().isoformat(),
            runs["started_at"].max().isoformat(),
        )


@dataclass
class BaselinePredictor:
    """The baseline of one model (`build_duration` or `build_outcome`) as a predictor.

    fallback: seconds (duration) or a probability of success (outcome), for a run whose
    workflow has no completed run before it.
    """

    model_name: str
    fallback: float
    trained_on: TrainingSummary = field(default_factory=TrainingSummary)
    kind: str = KIND
    # Duration: the P10-P90 interval (ml/intervals.py), learnt beside the trained model and
    # logged with the baseline's version as with a trained one; not part of its JSON.
    interval: object = field(default=None, repr=False, compare=False)

    @property
    def method(self) -> str:
        return method_of(self.model_name)

    @property
    def feature(self) -> str:
        return METHODS[self.model_name][1]

    @classmethod
    def from_training(cls, model_name: str, training: pl.DataFrame | None) -> BaselinePredictor:
        """The baseline whose fallback is learnt from the training runs (None: a default)."""
        target = METHODS[model_name][2]
        values = None if training is None else training[target].drop_nulls()
        if values is None or values.len() == 0:
            return cls(model_name, DEFAULT_FALLBACK[model_name], TrainingSummary.of(training))
        fallback = values.median() if model_name == DURATION else values.cast(pl.Float64).mean()
        return cls(model_name, float(fallback), TrainingSummary.of(training))

    def predict(self, features: pl.DataFrame) -> np.ndarray:
        """Seconds (duration) or the probability of success (outcome), one per row."""
        column = features[self.feature].cast(pl.Float64)
        if self.model_name == OUTCOME:
            column = 1 - column
        return column.fill_null(self.fallback).to_numpy()

    def explain(self) -> list[str]:
        """How it predicts, in the words of its model card."""
        if self.model_name == DURATION:
            return [
                f"each run's duration is the median of its workflow's last {WINDOW} completed runs",
                f"a workflow with no completed run yet gets {self.fallback:,.0f} s, the median"
                " of the training runs",
            ]
        return [
            "each run's probability of success is its workflow's success rate over its last"
            f" {WINDOW} completed runs",
            f"a workflow with no completed run yet gets {self.fallback:.1%}, the success rate"
            " of the training runs",
        ]

    def same_kind(self, other: BaselinePredictor) -> bool:
        """The same model and method: one may stand for the other (its fallback may differ)."""
        return (self.kind, self.model_name, self.method) == (
            other.kind,
            other.model_name,
            other.method,
        )

    def to_json(self) -> str:
        figures = {
            "model_name": self.model_name,
            "fallback": self.fallback,
            "trained_on": asdict(self.trained_on),
            "kind": self.kind,
        }
        return json.dumps(figures | {"method": self.method}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> BaselinePredictor:
        found = json.loads(text)
        if found.get("kind") != KIND:
            raise ValueError(f"not a baseline predictor: kind {found.get('kind')!r}")
        return cls(
            found["model_name"],
            float(found["fallback"]),
            TrainingSummary(**found.get("trained_on") or {}),
        )


def method_of(model_name: str) -> str:
    """What the baseline of a model predicts by: 'trailing median' or 'trailing success rate'."""
    return METHODS[model_name][0]


def describe(model_name: str, predictor: str, method: str | None = None) -> str:
    """How a serving predictor is named to users: 'baseline (trailing median)' or 'LightGBM'."""
    if predictor == KIND:
        return f"baseline ({method or method_of(model_name)})"
    return "LightGBM" if predictor == "lightgbm" else predictor
