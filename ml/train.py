"""Training the build-duration regressor and build-outcome classifier, against baselines to beat.

The split is by time: the most recent share of finished runs (by start) is the evaluation
slice; the model learns from the runs before it, with the last tenth of those held back for
early stopping. Baselines, from the same features: the workflow's trailing median duration,
and its trailing success rate.

Duration is learnt as the log of the ratio to a reference, the trailing median or the trailing
mode of the same workflow under the same trigger (features.densest_durations), with an L1 loss,
early-stopped on the share of runs within 20%: the measure it is judged by. Which reference, and
whether the learnt correction is applied at all, is chosen on the early-stopping slice. On
onnx/onnx's history learning the ratio beat learning log seconds by 8 points within 20%, and the
trailing mode beats the median by 5 points (benchmarks/predictors.py).
Outcome is a binary model of success; the threshold below which a run is called a failure is
chosen on the early-stopping slice (the best F1 on failures), never on the evaluation slice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from ml.features import CATEGORICAL, FEATURES

if TYPE_CHECKING:
    from ml.intervals import IntervalModel

DURATION = "build_duration"
OUTCOME = "build_outcome"
PARAMS = {
    # Small trees, learnt slowly: a team's history is thousands of runs, not millions.
    "learning_rate": 0.03,
    "num_leaves": 7,
    "min_data_in_leaf": 40,
    "feature_fraction": 0.9,
    "bagging_fraction": 0.9,
    "bagging_freq": 1,
    "seed": 7,
    "verbose": -1,
    "num_threads": 2,
    "deterministic": True,  # the same data gives the same model, run after run
    "force_row_wise": True,
}
MAX_ROUNDS = 2000
EARLY_STOPPING = 50


class InsufficientData(Exception):
    """Too little history to train on; the message says how much there is and how much is needed."""


@dataclass
class TrainedModel:
    name: str
    predictor: Predictor
    metrics: dict[str, float]
    baseline: dict[str, float]
    params: dict
    features: list[str]
    trained_through: str  # the latest start time among the training runs (RFC 3339)
    evaluation: pl.DataFrame = field(repr=False)  # the evaluation slice, for comparing models
    # The runs it learnt from: the baseline's fallback and the model card (ml/model_card.py).
    training: pl.DataFrame | None = field(default=None, repr=False)


@dataclass
class Predictor:
    """A LightGBM booster with the category vocabulary it was trained with.

    Categorical columns enter the booster as codes 0..n-1 in the order of the vocabulary (a
    value unseen in training is missing): small codes keep LightGBM's category bins small, and
    the logged model takes plain numbers, so it serves without pandas categories.
    """

    booster: object  # lightgbm.Booster
    categories: dict[str, list[str]]
    # Duration: seconds to use as the reference where a run's workflow has no history yet.
    fallback_s: float | None = None
    # Duration: which trailing figure the model scales ("median" or "mode"), and whether the
    # booster's correction is applied (False when it did not help on the validation slice).
    reference: str = "median"
    correction: bool = True
    # Duration: the P10-P90 interval and slow-build bound (ml/intervals.py), where there is one.
    interval: IntervalModel | None = None

    @classmethod
    def vocabulary(cls, features: pl.DataFrame) -> dict[str, list[str]]:
        return {c: sorted(features[c].drop_nulls().unique().to_list()) for c in CATEGORICAL}

    def frame(self, features: pl.DataFrame):
        """The input as a named pandas frame (what the logged model's signature describes)."""
        return encode(features, self.categories)

    def raw(self, features: pl.DataFrame) -> np.ndarray:
        # A plain matrix skips pandas; one thread for a handful of rows skips waking a pool.
        threads = 1 if features.height < 1000 else PARAMS["num_threads"]
        return self.booster.predict(self.matrix(features), num_threads=threads)

    def matrix(self, features: pl.DataFrame) -> np.ndarray:
        if not hasattr(self, "_codes"):
            self._codes = {c: {v: i for i, v in enumerate(vs)} for c, vs in self.categories.items()}
        columns = []
        for c in FEATURES:
            if c in self._codes:
                codes = self._codes[c]
                columns.append([codes.get(v, np.nan) for v in features[c].to_list()])
            else:
                columns.append(features[c].cast(pl.Float64).to_numpy())
        return np.array(columns, dtype=np.float64).T


def encode(features: pl.DataFrame, categories: dict[str, list[str]]):
    """The model's input as a pandas frame of numbers (categories as vocabulary codes)."""
    codes = [
        pl.col(c).replace_strict(
            {v: i for i, v in enumerate(categories[c])}, default=None, return_dtype=pl.Float64
        )
        for c in CATEGORICAL
    ]
    return (
        features.select(FEATURES)
        .with_columns(codes)
        .cast({c: pl.Float64 for c in FEATURES if c not in CATEGORICAL})
        .to_pandas()
    )


def split(features: pl.DataFrame, target: str, evaluation_share: float, min_runs: int):
    labelled = features.filter(pl.col(target).is_not_null()).sort("started_at", "run_key")
    if labelled.height < min_runs:
        raise InsufficientData(
            f"{labelled.height} finished runs; at least {min_runs} are needed to train"
            " (models.min_training_runs)"
        )
    cut = int(labelled.height * (1 - evaluation_share))
    return labelled[:cut], labelled[cut:]


def duration_metrics(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    ratio = np.abs(predicted - actual) / np.maximum(actual, 1e-9)
    return {
        "within_20pct": float(np.mean(ratio <= 0.2)),
        "mae_s": float(np.mean(np.abs(predicted - actual))),
        "evaluated_runs": float(len(actual)),
    }


def outcome_metrics(
    actual: np.ndarray, probability: np.ndarray, threshold: float = 0.5
) -> dict[str, float]:
    """Accuracy at 0.5 (as ml.model_quality measures it live), AUC, Brier score, and failure
    precision and recall with a run called a failure when its probability of success is below
    threshold."""
    from sklearn.metrics import brier_score_loss, precision_score, recall_score, roc_auc_score

    predicted = (probability >= threshold).astype(int)
    failures_actual, failures_predicted = 1 - actual, 1 - predicted
    both = len(np.unique(actual)) == 2
    return {
        "accuracy": float(np.mean((probability >= 0.5).astype(int) == actual)),
        "roc_auc": float(roc_auc_score(actual, probability)) if both else math.nan,
        "brier": float(brier_score_loss(actual, probability)),
        "failure_precision": float(
            precision_score(failures_actual, failures_predicted, zero_division=0)
        ),
        "failure_recall": float(recall_score(failures_actual, failures_predicted, zero_division=0)),
        "threshold": float(threshold),
        "evaluated_runs": float(len(actual)),
    }


def duration_baseline(evaluation: pl.DataFrame) -> np.ndarray:
    """The workflow's trailing median duration (the overall median where it has no history)."""
    fallback = evaluation["duration_s"].median()
    return evaluation["wf_duration_p50"].fill_null(fallback).to_numpy()


def outcome_baseline(evaluation: pl.DataFrame) -> np.ndarray:
    """The workflow's trailing success rate as the probability of success."""
    return (1 - evaluation["wf_failure_rate"]).fill_null(0.9).to_numpy()


REFERENCES = {"median": "trigger_duration_p50", "mode": "trigger_duration_mode"}


def duration_reference(
    features: pl.DataFrame, fallback_s: float | None, reference: str = "median"
) -> np.ndarray:
    """Seconds the duration model scales: the trailing median (or mode: features.
    densest_durations) of the workflow under the same trigger, else its trailing median, else
    the workflow's, else fallback_s (the training runs' median); at least 1 s."""
    first = features[REFERENCES[reference]]
    trailing = first.fill_null(features["trigger_duration_p50"]).fill_null(
        features["wf_duration_p50"]
    )
    return np.maximum(trailing.fill_null(fallback_s or 1.0).to_numpy(), 1.0)


def predict_duration(predictor: Predictor, features: pl.DataFrame) -> np.ndarray:
    """Seconds: the reference times the learnt ratio (times 1 when the correction is off)."""
    if getattr(predictor, "kind", None) == "baseline":  # ml/baseline.py: it predicts by itself
        return predictor.predict(features)
    seconds = duration_reference(features, predictor.fallback_s, predictor.reference)
    if not predictor.correction:
        return seconds
    return seconds * np.exp(predictor.raw(features))


def predict_success(predictor: Predictor, features: pl.DataFrame) -> np.ndarray:
    if getattr(predictor, "kind", None) == "baseline":  # ml/baseline.py: it predicts by itself
        return predictor.predict(features)
    return predictor.raw(features)


def _within_20pct(predicted: np.ndarray, data) -> tuple[str, float, bool]:
    """Early-stopping measure for log ratios: the share of runs predicted within 20%."""
    ratio = np.exp(data.get_label() - predicted)
    return "within_20pct", float(np.mean(np.abs(ratio - 1) <= 0.2)), True


def _failure_threshold(probability: np.ndarray, succeeded: np.ndarray) -> float:
    """The probability of success below which calling a failure gives the best F1 on failures."""
    best, chosen = -1.0, 0.5
    failed = succeeded == 0
    for threshold in np.round(np.arange(0.3, 0.96, 0.01), 2):
        called = probability < threshold
        caught = float(np.sum(called & failed))
        f1 = 2 * caught / max(float(np.sum(called) + np.sum(failed)), 1.0)
        if f1 > best:
            best, chosen = f1, float(threshold)
    return chosen


def _fit(train: pl.DataFrame, label: np.ndarray, objective: dict, feval=None):
    import lightgbm as lgb

    cut = max(1, int(train.height * 0.9))
    fit, stop = train[:cut], train[cut:]
    params = PARAMS | objective
    categories = Predictor.vocabulary(fit)
    data = lgb.Dataset(encode(fit, categories), label[:cut], categorical_feature=CATEGORICAL)
    valid = lgb.Dataset(encode(stop, categories), label[cut:], reference=data)
    booster = lgb.train(
        params,
        data,
        num_boost_round=MAX_ROUNDS,
        valid_sets=[valid],
        feval=feval,
        callbacks=[lgb.early_stopping(EARLY_STOPPING, verbose=False)],
    )
    return Predictor(booster, categories), params | {"best_iteration": booster.best_iteration}


def train_duration(
    features: pl.DataFrame, evaluation_share: float = 0.2, min_runs: int = 300
) -> TrainedModel:
    """Learn the log ratio of a run's duration to a trailing reference; choose on the
    validation slice (the last tenth of the training runs, never the evaluation slice) which
    reference, and whether the booster's correction helps at all.

    On onnx/onnx's history the booster's correction does not carry from the training months to
    the validation weeks and the trailing mode alone serves best; on the sample organisation
    the booster learns the busy hours and the pull requests' shorter tests
    (benchmarks/predictors.py).
    """
    train, evaluation = split(features, "duration_s", evaluation_share, min_runs)
    fallback = float(train["duration_s"].median())
    validation = train[max(1, int(train.height * 0.9)) :]
    candidates = []
    for reference in REFERENCES:
        label = np.log(np.maximum(train["duration_s"].to_numpy(), 1.0))
        label -= np.log(duration_reference(train, fallback, reference))
        predictor, params = _fit(
            train,
            label,
            # Start from the reference itself, not the median ratio: a heavy tail of re-runs
            # would otherwise shift every prediction off the most common duration.
            {"objective": "regression_l1", "metric": "None", "boost_from_average": False},
            feval=_within_20pct,
        )
        predictor.fallback_s, predictor.reference = fallback, reference
        for correction in (True, False):
            predictor = replace(predictor, correction=correction)
            score = duration_metrics(
                validation["duration_s"].to_numpy(), predict_duration(predictor, validation)
            )["within_20pct"]
            candidates.append((score, correction, reference, predictor, params))
    # The best on validation; on a tie the plainer (no correction, then the median).
    score, correction, reference, predictor, params = max(
        candidates, key=lambda c: (c[0], not c[1], c[2] == "median")
    )
    params |= {
        "target": f"log ratio to the trailing {reference}",
        "reference": reference,
        "correction": correction,
        "validation_within_20pct": score,
        "fallback_s": fallback,
    }
    from ml.intervals import fit_interval  # it builds on this module

    predictor.interval = fit_interval(train, fallback)
    actual = evaluation["duration_s"].to_numpy()
    return TrainedModel(
        DURATION,
        predictor,
        evaluate(DURATION, predictor, evaluation),
        duration_metrics(actual, duration_baseline(evaluation)),
        params,
        FEATURES,
        train["started_at"].max().isoformat(),
        evaluation,
        training=train,
    )


def train_outcome(
    features: pl.DataFrame, evaluation_share: float = 0.2, min_runs: int = 300
) -> TrainedModel:
    train, evaluation = split(features, "succeeded", evaluation_share, min_runs)
    label = train["succeeded"].to_numpy().astype(float)
    if len(np.unique(label)) < 2:
        raise InsufficientData("every training run has the same outcome: nothing to learn")
    predictor, params = _fit(train, label, {"objective": "binary", "metric": "binary_logloss"})
    stop = train[max(1, int(train.height * 0.9)) :]
    threshold = _failure_threshold(predictor.raw(stop), stop["succeeded"].to_numpy())
    params |= {"failure_threshold": threshold}
    actual = evaluation["succeeded"].to_numpy().astype(int)
    return TrainedModel(
        OUTCOME,
        predictor,
        outcome_metrics(actual, predict_success(predictor, evaluation), threshold),
        outcome_metrics(actual, outcome_baseline(evaluation)),
        params,
        FEATURES,
        train["started_at"].max().isoformat(),
        evaluation,
        training=train,
    )


# Which figure decides "better", and in which direction, per model.
PRIMARY = {DURATION: ("within_20pct", max), OUTCOME: ("brier", min)}


def beats(name: str, candidate: dict[str, float], other: dict[str, float]) -> bool:
    metric, better = PRIMARY[name]
    a, b = candidate[metric], other[metric]
    return a != b and better(a, b) == a


def evaluate(name: str, predictor: Predictor, evaluation: pl.DataFrame) -> dict[str, float]:
    """A model's figures on an evaluation slice (used to compare a champion with a challenger)."""
    if name == DURATION:
        metrics = duration_metrics(
            evaluation["duration_s"].to_numpy(), predict_duration(predictor, evaluation)
        )
        if predictor.interval is not None:
            from ml.intervals import interval_metrics

            metrics |= interval_metrics(predictor.interval, evaluation)
        return metrics
    return outcome_metrics(
        evaluation["succeeded"].to_numpy().astype(int), predict_success(predictor, evaluation)
    )
