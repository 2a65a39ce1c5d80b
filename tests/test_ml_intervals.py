"""Duration intervals: coverage on data of known noise, no leakage from the evaluation slice,
the same interval as mapie's CQR, stored with the prediction and restored from a real MLflow
sqlite registry, and the slow-build detector judging runs by it in a real DuckDB warehouse."""

import logging
import math
import shutil
from datetime import UTC, datetime, timedelta

import duckdb
import numpy as np
import polars as pl
import pytest

from dcicd_platform.config import AnomalyThresholds, parse_config
from dcicd_platform.demo.generator import generate_organisation
from dcicd_platform.demo.organisation import demo_config_yaml
from dcicd_platform.ingest.loader import load_files
from ml import registry
from ml.anomaly.build_duration import build_duration
from ml.features import CATEGORICAL, NUMERIC, arrow_query, build_features, load_runs
from ml.intervals import (
    ALPHAS,
    calibration_cut,
    conformal_quantile,
    fit_interval,
    log_label,
)
from ml.scoring import PREDICTIONS_DDL, Champion, predictions, store
from ml.train import evaluate, predict_duration, train_duration
from tests.helpers import build_core

END = datetime(2026, 6, 1, tzinfo=UTC)
# workflow: (median seconds, spread of log duration): a steady build, a usual one, a noisy one
WORKFLOWS = {"lint": (120.0, 0.05), "build": (600.0, 0.2), "e2e": (300.0, 0.5)}


def synthetic_runs(n: int = 4000, seed: int = 3) -> pl.DataFrame:
    """Features of n runs, ten minutes apart, whose duration is the workflow's median times a
    log-normal noise of the workflow's spread: the true P10-P90 covers 80% of each workflow."""
    rng = np.random.default_rng(seed)
    names = rng.choice(list(WORKFLOWS), n)
    median = np.array([WORKFLOWS[w][0] for w in names])
    spread = np.array([WORKFLOWS[w][1] for w in names])
    frame = pl.DataFrame(
        {
            "run_key": [f"github:acme/app:{i}:1" for i in range(n)],
            "started_at": [END - timedelta(minutes=10 * (n - i)) for i in range(n)],
            "repo": "acme/app",
            "workflow": names,
            "trigger_event": "push",
            "source": "github",
            "runner_labels": "ubuntu-latest",
            **{c: np.zeros(n) for c in NUMERIC},
            "duration_s": median * np.exp(rng.normal(0.0, spread)),
            "succeeded": (rng.random(n) < 0.9).astype(np.int8),
        }
    )
    # What the features know before the run: its workflow's trailing median.
    return frame.with_columns(
        wf_duration_p50=pl.Series(median), trigger_duration_p50=pl.Series(median)
    ).select("run_key", "started_at", *CATEGORICAL, *NUMERIC, "duration_s", "succeeded")


@pytest.fixture(scope="module")
def synthetic():
    features = synthetic_runs()
    return features, train_duration(features)


def test_the_interval_covers_80_percent_of_runs_it_never_saw(synthetic):
    features, model = synthetic
    interval = model.predictor.interval
    assert interval is not None
    coverage = model.metrics["interval_coverage"]
    assert 0.72 <= coverage <= 0.88, coverage
    # Measured, not assumed: the same figure from the predicted bounds of the evaluation slice.
    p10, p90 = interval.predict(model.evaluation)
    actual = model.evaluation["duration_s"].to_numpy()
    assert coverage == np.mean((actual >= p10) & (actual <= p90))
    # The quantile models learnt each workflow's spread: each interval's median P90 / P10 is
    # near the true exp(2 * 1.2816 * spread), the noisy workflow's widest.
    widths = {}
    for workflow, (_, spread) in WORKFLOWS.items():
        runs = model.evaluation.filter(pl.col("workflow") == workflow)
        low, high = interval.predict(runs)
        widths[workflow] = float(np.median(high / low))
        assert 0.8 < math.log(widths[workflow]) / (2 * 1.2816 * spread) < 1.25, widths
    assert widths["lint"] < widths["build"] < widths["e2e"]
    # The slow-build bound flags about 1% of normal successful runs; the fixed 1.5x ratio flags
    # the noisy workflow's ordinary swings.
    evaluation = model.evaluation.filter(pl.col("succeeded") == 1)
    fixed = np.mean(
        evaluation["duration_s"].to_numpy() >= 1.5 * predict_duration(model.predictor, evaluation)
    )
    assert model.metrics["slow_flag_share"] <= 0.03 < fixed


def test_the_calibration_runs_come_before_the_evaluation_slice_and_learn_nothing(synthetic):
    """Rewriting the evaluation slice's durations changes nothing in the interval; rewriting
    the calibration slice's (the training runs' last tenth) moves its offset and bound but not
    the quantile models, which never saw those runs."""
    features, model = synthetic
    interval = model.predictor.interval
    evaluated = model.evaluation["run_key"].implode()
    slower = pl.when(pl.col("run_key").is_in(evaluated)).then(pl.col("duration_s") * 10)
    again = train_duration(features.with_columns(duration_s=slower.otherwise("duration_s")))
    assert again.predictor.interval.offset == interval.offset
    assert again.predictor.interval.slow_scores == interval.slow_scores
    assert np.array_equal(
        again.predictor.interval.slow_above(model.evaluation), interval.slow_above(model.evaluation)
    )
    # The calibration slice: the last tenth of the training runs, every one before evaluation.
    training = features.sort("started_at").filter(~pl.col("run_key").is_in(evaluated))
    calibration = training[calibration_cut(training.height) :]
    assert calibration.height == interval.calibration_runs
    assert calibration["started_at"].max() < model.evaluation["started_at"].min()
    calibrated = calibration["run_key"].implode()
    slower = pl.when(pl.col("run_key").is_in(calibrated)).then(pl.col("duration_s") * 3)
    moved = fit_interval(training.with_columns(duration_s=slower.otherwise("duration_s")), None)
    kept = fit_interval(training, None)
    assert moved.offset > kept.offset
    for side in ("lower", "upper"):
        assert np.array_equal(
            getattr(moved, side).raw(model.evaluation), getattr(kept, side).raw(model.evaluation)
        )


class _Bound:
    """One side of the interval as mapie's prefit estimator: predicts the log ratio."""

    def __init__(self, interval, features: pl.DataFrame, side: int):
        self.interval, self.features, self.side = interval, features, side
        self.n_features_in_ = 1

    def fit(self, X, y):
        return self

    def predict(self, X):
        rows = self.features[np.asarray(X, dtype=int).ravel()]
        lo, hi = self.interval.log_bounds(rows)
        return (lo, hi, (lo + hi) / 2)[self.side]


def test_the_same_interval_as_mapies_conformalized_quantile_regression(synthetic):
    from mapie.regression import ConformalizedQuantileRegressor

    features, model = synthetic
    interval = model.predictor.interval
    training = features.sort("started_at", "run_key")[: -model.evaluation.height]
    calibration = training[calibration_cut(training.height) :]
    both = pl.concat([calibration, model.evaluation])
    rows = np.arange(both.height).reshape(-1, 1)
    estimators = [_Bound(interval, both, side) for side in range(3)]
    cqr = ConformalizedQuantileRegressor(
        estimators, confidence_level=ALPHAS[1] - ALPHAS[0], prefit=True
    )
    root = (logging.root.level, list(logging.root.handlers))
    try:  # mapie configures the root logger when bounds cross; put it back as it was
        cqr.conformalize(rows[: calibration.height], log_label(calibration, interval.fallback_s))
        _, bounds = cqr.predict_interval(rows[calibration.height :], symmetric_correction=True)
    finally:
        logging.root.setLevel(root[0])
        logging.root.handlers[:] = root[1]
    lo, hi = interval.log_bounds(model.evaluation)
    assert np.allclose(bounds[:, 0, 0], lo - interval.offset)
    assert np.allclose(bounds[:, 1, 0], hi + interval.offset)


def test_conformal_quantile_needs_enough_scores_for_its_level():
    scores = np.arange(1.0, 100.0)  # 99 scores
    assert conformal_quantile(scores, 0.8) == 80.0  # ceil(100 * 0.8) = 80th smallest
    assert conformal_quantile(scores, 0.99) == 99.0
    assert conformal_quantile(scores, 0.995) == math.inf
    assert conformal_quantile(np.array([]), 0.8) == math.inf


def test_too_few_calibration_runs_give_no_interval():
    features = synthetic_runs(n=40).sort("started_at")
    # 36 runs learn, 4 calibrate: the 4th smallest of 4 scores covers ceil(5 * 0.8) = 4 of 5.
    assert fit_interval(features[:40], None) is not None
    assert fit_interval(features[:30], None) is None  # 27 learn, 3 calibrate: too few


@pytest.fixture(scope="module")
def demo_warehouse(tmp_path_factory):
    folder = tmp_path_factory.mktemp("intervals")
    files = generate_organisation(folder / "landing", seed=5, days=45, end=END)
    path = folder / "warehouse.duckdb"
    with duckdb.connect(str(path)) as conn:
        load_files(conn, files)
        build_core(conn, parse_config(demo_config_yaml()))
    return path


@pytest.fixture
def warehouse(demo_warehouse, tmp_path):
    path = tmp_path / "warehouse.duckdb"
    shutil.copy(demo_warehouse, path)
    return path


OLD_DDL = """
CREATE SCHEMA IF NOT EXISTS ml;
CREATE TABLE ml.build_predictions (
    run_key VARCHAR, model_name VARCHAR, model_version VARCHAR,
    predicted_duration_s DOUBLE, predicted_success_proba DOUBLE, scored_at TIMESTAMPTZ,
    trained_through TIMESTAMPTZ, started_at TIMESTAMPTZ,
    PRIMARY KEY (run_key, model_name));
INSERT INTO ml.build_predictions VALUES ('old-run', 'build_duration', '0', 60, NULL, now(),
    now(), now());
"""


def test_the_interval_is_logged_restored_and_stored_with_the_prediction(warehouse, tmp_path):
    client = registry.client(f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "mlartifacts")
    with duckdb.connect(str(warehouse)) as conn:
        features = build_features(load_runs(conn))
    model = train_duration(features)
    assert model.predictor.interval is not None
    registration = registry.log_and_register(client, model)
    run = client.get_run(registration.run_id)
    assert {"eval_interval_coverage", "eval_interval_width"} <= set(run.data.metrics)
    assert sorted(a.path for a in client.list_artifacts(registration.run_id, "interval")) == [
        "interval/interval.json",
        "interval/lower.txt",
        "interval/upper.txt",
    ]
    loaded = registry.load_version("build_duration", registration.version)
    assert loaded.interval is not None and loaded.interval.offset == model.predictor.interval.offset
    assert evaluate("build_duration", loaded, model.evaluation) == model.metrics
    for restored, trained in zip(
        loaded.interval.predict(features), model.predictor.interval.predict(features), strict=True
    ):
        assert np.array_equal(restored, trained)
    # Stored with the prediction, in a warehouse whose table predates intervals.
    champion = Champion("build_duration", registration.version, loaded, model.trained_through)
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute(OLD_DDL)
        conn.execute(PREDICTIONS_DDL)
        assert store(conn, predictions(champion, features)) == features.height
        stored = arrow_query(
            conn,
            "SELECT run_key, predicted_duration_s, predicted_duration_p10_s,"
            " predicted_duration_p90_s, slow_above_s FROM ml.build_predictions",
        )
    old = stored.filter(pl.col("run_key") == "old-run")
    assert old["predicted_duration_p10_s"].is_null().all() and old["slow_above_s"].is_null().all()
    new = features.select("run_key").join(stored, on="run_key", maintain_order="left")
    p10, p90 = loaded.interval.predict(features)
    assert np.allclose(new["predicted_duration_p10_s"].to_numpy(), p10)
    assert np.allclose(new["predicted_duration_p90_s"].to_numpy(), p90)
    assert np.allclose(new["slow_above_s"].to_numpy(), loaded.interval.slow_above(features))
    assert (new["predicted_duration_p10_s"] < new["predicted_duration_p90_s"]).all()
    assert (new["predicted_duration_p90_s"] < new["slow_above_s"]).all()
    # A level the calibration is too small for: no bound, stored as NULL (the ratio rule holds).
    unbounded = predictions(champion, features.head(3), level=0.9999)
    assert unbounded["slow_above_s"].is_null().all()
    assert unbounded["predicted_duration_p90_s"].is_not_null().all()


def _slow_runs(conn) -> dict[str, str]:
    found = build_duration(conn, AnomalyThresholds())
    return dict(zip(found["entity_key"], found["severity"], strict=True))


def test_the_detector_flags_a_run_above_its_interval_and_not_one_inside(warehouse):
    with duckdb.connect(str(warehouse)) as conn:
        features = build_features(load_runs(conn))
        model = train_duration(features)
        champion = Champion("build_duration", "1", model.predictor, model.trained_through)
        conn.execute(PREDICTIONS_DDL)
        store(conn, predictions(champion, features))
        scored = arrow_query(
            conn,
            "SELECT p.run_key, p.predicted_duration_s, p.slow_above_s, r.duration_s"
            " FROM ml.build_predictions p JOIN core.pipeline_runs r USING (run_key)"
            " WHERE r.conclusion = 'success' AND r.duration_s > 0 ORDER BY p.run_key",
        )
        # Every successful scored run is judged by its own bound, not by 1.5x its prediction.
        above = set(scored.filter(pl.col("duration_s") > pl.col("slow_above_s"))["run_key"])
        flagged = set(_slow_runs(conn)) & set(scored["run_key"])
        assert flagged == above
        # Three runs made slow: 1.6x the prediction, inside the bound (the fixed ratio would
        # have flagged it); above the bound at 1.6x (info); above it at 2.5x (a warning).
        inside, info, warning = scored.filter(pl.col("duration_s") <= pl.col("slow_above_s"))[
            ["run_key", "predicted_duration_s"]
        ].rows()[:3]
        bounds = [(inside, 1.6, 1.1), (info, 1.6, 0.9), (warning, 2.5, 0.9)]
        for (run_key, predicted), times, bound in bounds:
            conn.execute(
                "UPDATE core.pipeline_runs SET duration_s = ? WHERE run_key = ?",
                [predicted * times, run_key],
            )
            conn.execute(
                "UPDATE ml.build_predictions SET slow_above_s = ? WHERE run_key = ?",
                [predicted * times * bound, run_key],
            )
        slow = _slow_runs(conn)
        assert inside[0] not in slow
        assert slow[info[0]] == "info" and slow[warning[0]] == "warning"
        # Without an interval (predictions stored before intervals): the fixed ratio rule.
        conn.execute("UPDATE ml.build_predictions SET slow_above_s = NULL")
        slow = _slow_runs(conn)
        assert slow[inside[0]] == "info" and slow[warning[0]] == "warning"
        conn.execute("ALTER TABLE ml.build_predictions DROP COLUMN slow_above_s")
        assert _slow_runs(conn) == slow
