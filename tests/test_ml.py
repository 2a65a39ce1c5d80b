"""Build predictors: no leakage, promotion gating, rollback, small data, scoring once per run.

Real DuckDB warehouses of the demo organisation, a real sqlite-backed MLflow registry and real
Dagster materializations.
"""

from datetime import UTC, datetime

import dagster as dg
import duckdb
import polars as pl
import pytest

from dcicd_platform.assets.ml_models import ml_table_assets, training_assets
from dcicd_platform.config import parse_config
from dcicd_platform.demo.generator import generate_organisation
from dcicd_platform.demo.organisation import demo_config_yaml
from dcicd_platform.ingest.loader import load_files
from dcicd_platform.resources import MlflowResource, SettingsResource, warehouse_resource
from dcicd_platform.status import read_status, render_status
from ml import registry
from ml.features import FEATURES, build_features, load_runs
from ml.train import InsufficientData, evaluate, train_duration, train_outcome
from tests.helpers import build_core, fixture_envelope, write_envelopes

END = datetime(2026, 6, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def demo_warehouse(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ml")
    files = generate_organisation(folder / "landing", seed=21, days=60, end=END)
    path = folder / "warehouse.duckdb"
    with duckdb.connect(str(path)) as conn:
        load_files(conn, files)
        build_core(conn, parse_config(demo_config_yaml()))
    return path


@pytest.fixture(scope="module")
def runs(demo_warehouse):
    with duckdb.connect(str(demo_warehouse), read_only=True) as conn:
        return load_runs(conn)


@pytest.fixture
def mlflow_client(tmp_path):
    return registry.client(f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "mlartifacts")


def rewrite_future(runs: pl.DataFrame, cut) -> pl.DataFrame:
    """The runs as they would be with every outcome known at or after cut turned around
    (conclusion flipped, duration tripled), and no run started after cut."""
    future = pl.col("finished_at") >= cut
    flipped = pl.when(pl.col("conclusion") == "success").then(pl.lit("failure"))
    return runs.filter(pl.col("started_at") <= cut).with_columns(
        conclusion=pl.when(future)
        .then(flipped.otherwise(pl.lit("success")))
        .otherwise(pl.col("conclusion")),
        duration_s=pl.when(future).then(pl.col("duration_s") * 3).otherwise(pl.col("duration_s")),
    )


@pytest.mark.parametrize("quantile", [0.3, 0.5, 0.7, 0.9])
def test_no_feature_uses_the_runs_outcome_or_anything_after_its_start(runs, quantile):
    """Rewrite the future, including the outcomes of the runs still going at the cut, and drop
    the runs started after it: the features of every run started before the cut do not move."""
    cut = runs["started_at"].sort()[int(runs.height * quantile)]
    rewritten = rewrite_future(runs, cut)
    in_flight = rewritten.filter(pl.col("finished_at") >= cut)["run_key"]
    assert in_flight.len() >= 1  # runs whose own outcome is rewritten
    before = build_features(runs).filter(pl.col("started_at") <= cut).sort("run_key")
    after = build_features(rewritten).sort("run_key")
    assert before.height == after.height
    assert before.select(FEATURES).equals(after.select(FEATURES))
    # ...while the targets of the runs in flight did change.
    moved = before.join(after, on="run_key").filter(pl.col("run_key").is_in(in_flight.implode()))
    assert (moved["duration_s"] != moved["duration_s_right"]).all()


def test_models_beat_their_baselines_on_the_most_recent_runs(runs):
    features = build_features(runs)
    duration, outcome = train_duration(features), train_outcome(features)
    assert duration.metrics["within_20pct"] > duration.baseline["within_20pct"]
    assert duration.metrics["mae_s"] < duration.baseline["mae_s"]
    # Outcomes in the demo are mostly chance (a real failure or a flake, drawn per job): the
    # outcome model is measured, and promoted only if it beats the baseline (gating, below).
    assert outcome.metrics["accuracy"] > 0.75
    assert 0 <= outcome.metrics["brier"] <= 0.25 and 0 <= outcome.metrics["roc_auc"] <= 1
    assert set(outcome.metrics) >= {"failure_precision", "failure_recall", "evaluated_runs"}
    # The evaluation slice is the most recent 20%, after every training run.
    assert duration.evaluation["started_at"].min().isoformat() >= duration.trained_through


def test_promotion_gating_and_rollback(runs, mlflow_client, capfd):
    features = build_features(runs)
    # v1: learnt blind to the hour and to the trigger's own history; still beats the baseline.
    blind = features.with_columns(hour=pl.lit(0, pl.Int32), trigger_duration_p50=pl.lit(None))
    capfd.readouterr()
    first = registry.log_and_register(mlflow_client, train_duration(blind))
    assert first.promoted and first.champion_version == first.version == "1"
    # Registering says nothing: no "Successfully registered", no "no artifacts at" warning.
    printed = capfd.readouterr()
    assert "registered" not in printed.err and "no artifacts" not in printed.err, printed.err
    assert mlflow_client.get_model_version("build_duration", "1").run_id == first.run_id
    # v2: sees everything: beats v1 on the same evaluation slice -> champion.
    newer = train_duration(features)
    second = registry.log_and_register(mlflow_client, newer)
    assert second.champion_metrics is not None  # v1 was measured on v2's evaluation slice
    assert second.promoted, second.reason
    assert registry.champion_version(mlflow_client, "build_duration") == "2"
    # v3: the same model again is no better than the champion: challenger only.
    third = registry.log_and_register(mlflow_client, newer)
    assert not third.promoted and "does not beat champion version 2" in third.reason
    assert (
        str(mlflow_client.get_model_version_by_alias("build_duration", "challenger").version) == "3"
    )
    assert registry.champion_version(mlflow_client, "build_duration") == "2"
    # Rollback: champion goes back to the version it replaced.
    assert registry.rollback_champion(mlflow_client, "build_duration", "live quality") == (
        "2",
        "1",
    )
    assert registry.champion_version(mlflow_client, "build_duration") == "1"
    assert mlflow_client.get_model_version("build_duration", "2").tags["rolled_back"]
    with pytest.raises(LookupError, match="replaced no earlier champion"):
        registry.rollback_champion(mlflow_client, "build_duration", "again")
    # The logged run carries params, metrics, the feature list and a model with a signature.
    run = mlflow_client.get_run(second.run_id)
    assert "eval_within_20pct" in run.data.metrics and "baseline_within_20pct" in run.data.metrics
    assert run.data.params["trained_through"] == newer.trained_through
    loaded = registry.load_version("build_duration", "2")
    assert evaluate("build_duration", loaded, newer.evaluation) == newer.metrics


def test_a_model_that_does_not_beat_the_baseline_is_never_champion(runs, mlflow_client):
    features = build_features(runs)
    model = train_outcome(features)
    # The same model graded against a baseline it cannot beat: perfect foresight.
    model.baseline = dict(model.metrics, brier=0.0)
    result = registry.log_and_register(mlflow_client, model)
    assert not result.promoted and result.reason == "does not beat the baseline"
    # There is still an answer: the baseline serves, as a version of its own.
    assert result.champion_version == result.baseline_version == "2"
    assert registry.champion_version(mlflow_client, "build_outcome") == "2"
    assert registry.predictor_kind(mlflow_client, "build_outcome", "1") == "lightgbm"
    assert registry.predictor_kind(mlflow_client, "build_outcome", "2") == "baseline"
    baseline = registry.load_version("build_outcome", "2")
    success = model.training["succeeded"].mean()
    assert baseline.fallback == pytest.approx(success)  # the training runs' success rate
    expected = (1 - model.evaluation["wf_failure_rate"]).fill_null(success).to_numpy()
    assert (baseline.predict(model.evaluation) == expected).all()


def test_too_little_history_skips_training_with_a_clear_message(tmp_path):
    conn = duckdb.connect(str(tmp_path / "w.duckdb"))
    load_files(
        conn,
        [
            write_envelopes(
                tmp_path / "a.ndjson",
                [fixture_envelope("github/workflow_run/completed.payload.json")],
            )
        ],
    )
    build_core(conn)
    features = build_features(load_runs(conn))
    conn.close()
    with pytest.raises(InsufficientData, match="1 finished runs; at least 300 are needed"):
        train_duration(features)
    # As an asset: the materialization succeeds and says why nothing was trained.
    result = dg.materialize(
        [*ml_table_assets, *training_assets],
        resources=_resources(tmp_path),
    )
    assert result.success
    for name in ("build_duration_model", "build_outcome_model"):
        (event,) = result.asset_materializations_for_node(f"ml__{name}")
        assert "at least 300 are needed" in event.metadata["skipped"].value


def _resources(folder, warehouse=None):
    return {
        "warehouse": warehouse_resource(warehouse or folder / "w.duckdb"),
        "mlflow": MlflowResource(
            tracking_uri=f"sqlite:///{folder / 'mlflow.db'}", artifacts=str(folder / "mlartifacts")
        ),
        "settings": SettingsResource(config_file=""),
    }


def test_runs_are_scored_once_by_the_champion_of_the_moment(demo_warehouse, tmp_path):
    import shutil

    warehouse = tmp_path / "w.duckdb"
    shutil.copy(demo_warehouse, warehouse)
    resources = _resources(tmp_path, warehouse)
    everything = [*ml_table_assets, *training_assets]
    first = dg.materialize(everything, resources=resources)  # no champion yet: nothing scored
    assert first.success
    (scored,) = first.asset_materializations_for_node("ml__build_predictions")
    assert scored.metadata["dagster/row_count"].value == 0
    (trained,) = first.asset_materializations_for_node("ml__build_duration_model")
    assert trained.metadata["promoted"].value is True
    run_id = trained.metadata["mlflow_run_id"].value
    # The UI links the run and the version in the MLflow UI, and shows figures to read.
    link = trained.metadata["mlflow_run"]
    assert isinstance(link, dg.UrlMetadataValue)
    assert link.value.startswith("http://127.0.0.1:5000/#/experiments/")
    assert link.value.endswith(f"/runs/{run_id}")
    version = trained.metadata["model_version"].value
    assert trained.metadata["mlflow_model_version"].value.endswith(
        f"/#/models/build_duration/versions/{version}"
    )
    exact = resources["mlflow"].client().get_run(run_id).data.metrics
    for key in ("eval_within_20pct", "eval_mae_s", "baseline_within_20pct"):
        assert trained.metadata[key].value == float(f"{exact[key]:.4g}"), key
    # Scoring now: every started run, once per model, by version 1.
    assert dg.materialize(ml_table_assets, resources=resources).success
    with duckdb.connect(str(warehouse)) as conn:
        counts = conn.execute(
            "SELECT model_name, model_version, count(*) FROM ml.build_predictions"
            " GROUP BY ALL ORDER BY 1"
        ).fetchall()
        started = conn.execute(
            "SELECT count(*) FROM core.pipeline_runs WHERE started_at IS NOT NULL"
        ).fetchone()[0]
        assert counts == [("build_duration", "1", started), ("build_outcome", "1", started)]
        kept = conn.execute("SELECT * FROM ml.build_predictions ORDER BY ALL").fetchall()
        # Every run was learnt by version 1 (or is in its evaluation slice, after its training
        # data ended): live quality counts only the latter.
        quality = conn.execute("SELECT model, runs FROM ml.model_quality ORDER BY 1").fetchall()
        trained_through = conn.execute(
            "SELECT max(trained_through) FROM ml.build_predictions"
        ).fetchone()[0]
        after = conn.execute(
            "SELECT count(*) FROM core.pipeline_runs WHERE started_at > ? AND status = "
            "'completed' AND conclusion IN ('success', 'failure', 'timed_out')",
            [trained_through],
        ).fetchone()[0]
        assert [r[1] for r in quality] == [after, after]
        # Both trained models beat their baselines: LightGBM serves, for that reason.
        serving = conn.execute(
            "SELECT model_name, version, predictor, reason FROM ml.serving WHERE serving ORDER BY 1"
        ).fetchall()
        assert serving == [
            ("build_duration", "1", "lightgbm", "first model that beats the baseline"),
            ("build_outcome", "1", "lightgbm", "first model that beats the baseline"),
        ]
        assert conn.execute(
            "SELECT DISTINCT predictor, serving, reason FROM ml.model_quality"
        ).fetchall() == [("lightgbm", True, "first model that beats the baseline")]
        screen = render_status(read_status(conn))
        assert "build_duration v1: LightGBM serving, first model that beats the baseline" in (
            screen
        )
    # Retraining and scoring again rewrites nothing.
    assert dg.materialize(everything, resources=resources).success
    with duckdb.connect(str(warehouse)) as conn:
        assert conn.execute("SELECT * FROM ml.build_predictions ORDER BY ALL").fetchall() == kept


def test_the_trailing_mode_is_the_duration_most_runs_are_within_20pct_of():
    import numpy as np

    from ml.features import densest_durations

    nan = float("nan")
    windows = np.array(
        [
            # fails in seconds twice, runs ~20 minutes three times: the median (1,150 s) is
            # within 20% of none of them; the mode covers the three long runs
            [8, 9, 1150, 1200, 1250],
            [100, nan, nan, nan, nan],  # a short history: its only duration
            [nan] * 5,  # no history: nothing to say
        ]
    )
    modes = densest_durations(windows)
    within = np.abs(modes[0] - windows[0]) <= 0.2 * windows[0]
    assert within.tolist() == [False, False, True, True, True]
    assert abs(modes[1] - 100) <= 20
    assert np.isnan(modes[2])


def test_duration_reference_and_correction_are_chosen_on_validation_and_restored(
    runs, mlflow_client
):
    model = train_duration(build_features(runs), 0.2, 300)
    assert model.params["reference"] in ("median", "mode")
    registration = registry.log_and_register(mlflow_client, model)
    loaded = registry.load_version("build_duration", registration.version)
    assert (loaded.reference, loaded.correction) == (
        model.predictor.reference,
        model.predictor.correction,
    )
    assert evaluate("build_duration", loaded, model.evaluation) == model.metrics
