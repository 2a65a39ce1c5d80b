"""P10-P90 intervals for build durations, and the bound above which a run is slow.

Conformalized quantile regression (CQR; Romano, Patterson and Candes, NeurIPS 2019). Two
LightGBM quantile models (alpha 0.1 and 0.9) learn the point model's label: the log of a run's
duration over its reference (`ml.train.duration_reference`). They learn from the training runs
but the last tenth (early-stopped on the last tenth of what they learn from); that last tenth,
the slice `ml.train` holds back for early stopping and earlier than every run of the evaluation
slice, calibrates them. A calibration run's score is how far its label falls outside the two
models' [lo, hi] (negative inside): max(lo - y, y - hi). The interval is [lo - q, hi + q] with q
the ceil((n + 1) * 0.8)-th smallest of the n scores: a new run exchangeable with the calibration
runs falls inside with probability at least 0.8, however wrong the quantile models are (q is
negative when they are too wide). Where the two models cross for a run they are swapped first
(rearrangement). In log ratio, a bound is seconds as reference x exp(bound).

The slow-build bound is the same construction, one-sided, at a level (the configuration's
`anomalies.build_duration_level`, 0.99): hi + the ceil((n + 1) * level)-th smallest of y - hi
over the successful calibration runs. A successful run exchangeable with them is above it with
probability at most 1 - level: the detector's false-alarm rate, by construction. Successful
runs only, because the detector judges only those and a failed run stops early. The sorted
scores are kept, so the level is chosen when a run is scored, not when the model is trained;
with too few successful calibration runs for the level (fewer than 1 / (1 - level) - 1) there is
no bound, and the detector keeps its fixed ratio.

What is logged (`artifacts`, restored by `from_artifacts`): each booster as LightGBM's model
text, and the vocabulary, reference fallback, offset and scores as JSON; nothing is pickled.
Everything takes a features frame (`ml.features.build_features`) and needs no point model, so
any point predictor can be served with it.

Why not mapie: `mapie.regression.ConformalizedQuantileRegressor` (1.6.0) with prefit
`LGBMRegressor`s computes the same two-sided interval (tests/test_ml_intervals.py checks that
it does), but it needs a third, median model nothing here uses, keeps its offsets in a fitted
object that could only be served by pickling, has no one-sided bound for the slow-build alarm,
and when quantile predictions cross (common with two independent boosters) it calls
`logging.basicConfig(level=INFO)`, which leaves the root logger of the process (Dagster's code
server) printing every library's INFO lines. The conformal step itself is a sort and an index.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from ml.features import CATEGORICAL
from ml.train import EARLY_STOPPING, MAX_ROUNDS, PARAMS, Predictor, duration_reference, encode

ALPHAS = (0.1, 0.9)  # the quantiles the two models learn: P10 and P90
COVERAGE = ALPHAS[1] - ALPHAS[0]  # what the conformalized interval covers: 0.8
DEFAULT_LEVEL = 0.99  # the slow-build bound's level (anomalies.build_duration_level's default)
HOLD_OUT = 0.1  # the last tenth of the training runs calibrates (ml.train's early-stopping slice)
ARTIFACTS = ("lower.txt", "upper.txt", "interval.json")


def conformal_quantile(scores: np.ndarray, level: float) -> float:
    """The ceil((n + 1) * level)-th smallest score: a new exchangeable score is at most this
    with probability at least level. Infinite when n is too small for the level."""
    k = math.ceil((len(scores) + 1) * level)
    return float(np.sort(scores)[k - 1]) if k <= len(scores) else math.inf


def enough(runs: int, level: float) -> bool:
    """Whether runs calibration scores give a finite bound at level."""
    return math.ceil((runs + 1) * level) <= runs


def log_label(runs: pl.DataFrame, fallback_s: float | None) -> np.ndarray:
    """The point model's label: log(duration / reference), durations under 1 s as 1 s."""
    duration = np.maximum(runs["duration_s"].to_numpy().astype(float), 1.0)
    return np.log(duration) - np.log(duration_reference(runs, fallback_s))


@dataclass
class IntervalModel:
    """Two quantile boosters (log ratio; the same vocabulary) and their calibration."""

    lower: Predictor
    upper: Predictor
    fallback_s: float | None  # the reference where a workflow has no history (ml.train)
    offset: float  # q, in log ratio: the P10 is lo - q, the P90 hi + q
    slow_scores: list[float] = field(repr=False)  # sorted y - hi of successful calibration runs
    calibration_runs: int = 0

    def log_bounds(self, features: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """The two models' raw quantiles (log ratio), swapped where they cross."""
        lo, hi = self.lower.raw(features), self.upper.raw(features)
        return np.minimum(lo, hi), np.maximum(lo, hi)

    def predict(self, features: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Seconds: each run's conformalized P10 and P90."""
        reference = duration_reference(features, self.fallback_s)
        lo, hi = self.log_bounds(features)
        return reference * np.exp(lo - self.offset), reference * np.exp(hi + self.offset)

    def slow_offset(self, level: float) -> float:
        """The one-sided conformal offset over hi at level (infinite if the calibration's
        successful runs are too few for it)."""
        return conformal_quantile(np.asarray(self.slow_scores), level)

    def slow_above(self, features: pl.DataFrame, level: float = DEFAULT_LEVEL) -> np.ndarray:
        """Seconds above which a successful run is slow at level; NaN where there is no bound."""
        offset = self.slow_offset(level)
        if math.isinf(offset):
            return np.full(features.height, np.nan)
        _, hi = self.log_bounds(features)
        return duration_reference(features, self.fallback_s) * np.exp(hi + offset)

    def artifacts(self) -> dict[str, str]:
        """Text files that restore the model (`from_artifacts`): no pickles."""
        lower, upper, calibration_file = ARTIFACTS
        calibration = {
            "alphas": list(ALPHAS),
            "coverage": COVERAGE,
            "categories": self.lower.categories,
            "fallback_s": self.fallback_s,
            "offset": self.offset,
            "slow_scores": self.slow_scores,
            "calibration_runs": self.calibration_runs,
        }
        return {
            lower: self.lower.booster.model_to_string(),
            upper: self.upper.booster.model_to_string(),
            calibration_file: json.dumps(calibration, indent=1),
        }

    @classmethod
    def from_artifacts(cls, texts: dict[str, str]) -> IntervalModel:
        import lightgbm as lgb

        lower, upper, calibration = ARTIFACTS
        saved = json.loads(texts[calibration])
        categories = saved["categories"]
        return cls(
            Predictor(lgb.Booster(model_str=texts[lower]), categories),
            Predictor(lgb.Booster(model_str=texts[upper]), categories),
            saved["fallback_s"],
            saved["offset"],
            saved["slow_scores"],
            saved["calibration_runs"],
        )


def calibration_cut(runs: int) -> int:
    """Where the calibration slice starts among the training runs (sorted by start)."""
    return max(1, int(runs * (1 - HOLD_OUT)))


def _quantile_booster(runs: pl.DataFrame, label: np.ndarray, alpha: float, categories) -> object:
    """A LightGBM quantile model, early-stopped on the last tenth of the runs it is given."""
    import lightgbm as lgb

    cut = calibration_cut(runs.height)
    params = PARAMS | {"objective": "quantile", "alpha": alpha, "metric": "quantile"}
    data = lgb.Dataset(encode(runs[:cut], categories), label[:cut], categorical_feature=CATEGORICAL)
    stop = lgb.Dataset(encode(runs[cut:], categories), label[cut:], reference=data)
    return lgb.train(
        params,
        data,
        num_boost_round=MAX_ROUNDS,
        valid_sets=[stop],
        callbacks=[lgb.early_stopping(EARLY_STOPPING, verbose=False)],
    )


def fit_interval(train: pl.DataFrame, fallback_s: float | None) -> IntervalModel | None:
    """CQR on the training runs (sorted by start, every one with a duration): the quantile
    models learn from all but the last tenth, which calibrates them. None when that tenth is
    too small for an 80% interval (fewer than 4 runs)."""
    # Runs that started in the same second in one order, whatever order they came in: the same
    # runs give the same interval.
    train = train.sort("started_at", "run_key")
    cut = calibration_cut(train.height)
    learn, calibration = train[:cut], train[cut:]
    if not enough(calibration.height, COVERAGE) or learn.height < 2:
        return None
    categories = Predictor.vocabulary(learn)
    label = log_label(learn, fallback_s)
    lower, upper = (
        Predictor(_quantile_booster(learn, label, alpha, categories), categories)
        for alpha in ALPHAS
    )
    model = IntervalModel(lower, upper, fallback_s, 0.0, [], calibration.height)
    y = log_label(calibration, fallback_s)
    lo, hi = model.log_bounds(calibration)
    model.offset = conformal_quantile(np.maximum(lo - y, y - hi), COVERAGE)
    succeeded = (calibration["succeeded"] == 1).to_numpy()
    model.slow_scores = sorted(float(s) for s in (y - hi)[succeeded])
    return model


def interval_metrics(
    model: IntervalModel, evaluation: pl.DataFrame, level: float = DEFAULT_LEVEL
) -> dict[str, float]:
    """On an evaluation slice: the share of durations inside [P10, P90] (goal 0.8), the median
    P90 / P10 ratio, and the share of its successful runs above the slow-build bound at level
    (what the detector would flag; about 1 - level when the calibration holds)."""
    actual = evaluation["duration_s"].to_numpy().astype(float)
    p10, p90 = model.predict(evaluation)
    succeeded = (evaluation["succeeded"] == 1).to_numpy()
    slow = model.slow_above(evaluation, level)[succeeded]
    bounded = succeeded.any() and not np.isnan(slow).any()
    return {
        "interval_coverage": float(np.mean((actual >= p10) & (actual <= p90))),
        "interval_width": float(np.median(p90 / p10)),
        # NaN (not logged) where there is no bound: the detector keeps its ratio then
        "slow_flag_share": float(np.mean(actual[succeeded] > slow)) if bounded else math.nan,
    }
