"""Always an answer: when no trained model beats its baseline, the baseline serves as a version
of its own, and every surface says which predictor serves and why; each version has a card.

Real DuckDB warehouses of the demo organisation, a real sqlite-backed MLflow registry and real
Dagster materializations.
"""

from datetime import UTC, datetime

import dagster as dg
import duckdb
import mlflow
import polars as pl
import pytest

from dcicd_platform.assets.ml_models import ml_table_assets, training_assets
from dcicd_platform.config import AnomalyThresholds, parse_config
from dcicd_platform.demo.generator import generate_organisation
from dcicd_platform.demo.organisation import demo_config_yaml
from dcicd_platform.ingest.loader import load_files
from dcicd_platform.report.figures import gather, report_week
from dcicd_platform.report.render import render_html, summary_markdown
from dcicd_platform.resources import MlflowResource, SettingsResource, warehouse_resource
from dcicd_platform.status import read_status, render_status
from ml import registry
from ml.anomaly.build_duration import build_duration
from ml.anomaly.model_accuracy import model_accuracy
from ml.baseline import BaselinePredictor
from ml.features import build_features, load_runs
from ml.scoring import PREDICTIONS_DDL, refresh_model_quality
from ml.train import evaluate, train_duration
from tests.helpers import build_core

END = datetime(2026, 6, 1, tzinfo=UTC)
# Every run of a workflow takes its workflow's time and ends as its workflow always does: the
# trailing median and success rate are exact, so no trained model can beat them.
PREDICTABLE_SQL = """
UPDATE core.pipeline_runs r SET duration_s = w.duration_s, conclusion = w.conclusion
FROM (
    SELECT repo, workflow, 60.0 * (1 + rank) AS duration_s,
        CASE WHEN rank % 3 = 0 THEN 'failure' ELSE 'success' END AS conclusion
    FROM (SELECT repo, workflow, dense_rank() OVER (ORDER BY repo, workflow) AS rank
        FROM (SELECT DISTINCT repo, workflow FROM core.pipeline_runs))
) w
WHERE r.repo = w.repo AND r.workflow = w.workflow AND r.status = 'completed'
    AND r.conclusion IN ('success', 'failure', 'timed_out')
"""


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("serving")
    files = generate_organisation(folder / "landing", seed=21, days=40, end=END)
    path = folder / "warehouse.duckdb"
    with duckdb.connect(str(path)) as conn:
        load_files(conn, files)
        build_core(conn, parse_config(demo_config_yaml()))
        runs = load_runs(conn)
    return path, runs


def _resources(folder, warehouse):
    return {
        "warehouse": warehouse_resource(warehouse),
        "mlflow": MlflowResource(
            tracking_uri=f"sqlite:///{folder / 'mlflow.db'}", artifacts=str(folder / "mlartifacts")
        ),
        "settings": SettingsResource(config_file=""),
    }


def _versions(client, name: str) -> dict[str, str]:
    """version -> predictor tag, for every registered version of the model."""
    found = client.search_model_versions(f"name = '{name}'")
    return {str(v.version): v.tags.get("predictor") for v in found}


def test_the_baseline_serves_when_no_trained_model_beats_it(demo, tmp_path):
    import shutil

    warehouse = tmp_path / "w.duckdb"
    shutil.copy(demo[0], warehouse)
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute(PREDICTABLE_SQL)
        outcomes = dict(
            conn.execute(
                "SELECT DISTINCT workflow || '|' || repo, conclusion = 'success'"
                " FROM core.pipeline_runs WHERE conclusion IN ('success', 'failure')"
            ).fetchall()
        )
    assert set(outcomes.values()) == {True, False}  # both outcomes to learn
    resources = _resources(tmp_path, warehouse)
    client = registry.client(f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "mlartifacts")

    trained = dg.materialize(training_assets, resources=resources)
    assert trained.success
    for name in ("build_duration", "build_outcome"):
        (event,) = trained.asset_materializations_for_node(f"ml__{name}_model")
        meta = {k: v.value for k, v in event.metadata.items()}
        assert meta["promoted"] is False and meta["promotion"] == "does not beat the baseline"
        assert meta["serving_predictor"] == "baseline"
        assert meta["serving_reason"].startswith("the trained model (v1) does not beat")
        # v1 the trained model, v2 the baseline serving in its place.
        assert _versions(client, name) == {"1": "lightgbm", "2": "baseline"}
        assert registry.champion_version(client, name) == "2"
        assert str(client.get_model_version_by_alias(name, "baseline").version) == "2"
        assert isinstance(registry.load_version(name, "2"), BaselinePredictor)

    # Scoring: a prediction for every started run, by the baseline.
    scored = dg.materialize(ml_table_assets, resources=resources)
    assert scored.success
    (event,) = scored.asset_materializations_for_node("ml__build_predictions")
    assert event.metadata["build_duration_predictor"].value == "baseline (trailing median)"
    assert "does not beat the baseline" in event.metadata["build_duration_serving"].value
    (quality_event,) = scored.asset_materializations_for_node("ml__model_quality")
    assert "v2 baseline" in quality_event.metadata["serving"].value
    fallback = registry.load_version("build_duration", "2").fallback
    with duckdb.connect(str(warehouse)) as conn:
        started = conn.execute(
            "SELECT count(*) FROM core.pipeline_runs WHERE started_at IS NOT NULL"
        ).fetchone()[0]
        counts = conn.execute(
            "SELECT model_name, model_version, predictor, count(*) FROM ml.build_predictions"
            " GROUP BY ALL ORDER BY 1"
        ).fetchall()
        assert counts == [
            ("build_duration", "2", "baseline", started),
            ("build_outcome", "2", "baseline", started),
        ]
        # The baseline's duration predictions carry the interval learnt beside the trained model.
        assert (
            conn.execute(
                "SELECT count(*) FROM ml.build_predictions WHERE model_name = 'build_duration'"
                " AND predicted_duration_p10_s <= predicted_duration_p90_s"
            ).fetchone()[0]
            == started
        )
        # A workflow's runs after its first completed one are predicted exactly; before, the
        # training runs' median (one of the workflows' durations).
        duration = conn.execute(
            """SELECT p.predicted_duration_s, r.duration_s, r.started_at > (
                    SELECT min(finished_at) FROM core.pipeline_runs e
                    WHERE e.repo = r.repo AND e.workflow = r.workflow
                        AND e.conclusion IN ('success', 'failure')) AS has_history
            FROM ml.build_predictions p JOIN core.pipeline_runs r USING (run_key)
            WHERE p.model_name = 'build_duration' AND r.conclusion IN ('success', 'failure')"""
        ).fetchall()
        assert all(p == d for p, d, history in duration if history)
        assert {p for p, _, history in duration if not history} == {fallback}
        assert fallback in {d for _, d, _ in duration}
        outcome = conn.execute(
            """SELECT p.predicted_success_proba, r.workflow || '|' || r.repo
            FROM ml.build_predictions p JOIN core.pipeline_runs r USING (run_key)
            WHERE p.model_name = 'build_outcome' AND p.predicted_success_proba IN (0, 1)"""
        ).fetchall()
        assert len(outcome) > started / 2
        assert all(bool(p) == outcomes[w] for p, w in outcome)
        serving = conn.execute(
            "SELECT model_name, version, predictor, method, reason, serving FROM ml.serving"
            " ORDER BY 1"
        ).fetchall()
        assert [r[:4] for r in serving] == [
            ("build_duration", "2", "baseline", "trailing median"),
            ("build_outcome", "2", "baseline", "trailing success rate"),
        ]
        assert all(r[5] and "(v1) does not beat the baseline" in r[4] for r in serving)
        quality = conn.execute(
            "SELECT model, version, predictor, serving, reason, within_20pct, accuracy, runs"
            " FROM ml.model_quality ORDER BY 1"
        ).fetchall()
        assert [q[:4] for q in quality] == [
            ("build_duration", "2", "baseline", True),
            ("build_outcome", "2", "baseline", True),
        ]
        assert all("does not beat the baseline" in q[4] and q[7] > 0 for q in quality)
        assert quality[0][5] == 1.0  # exact on runs it never learnt from
        screen = render_status(read_status(conn))
        # A floor even an exact baseline misses: the anomaly says the baseline is under it.
        refresh_model_quality(conn, 1.000001, 1.000001)
        (under,) = model_accuracy(conn, AnomalyThresholds()).filter(
            pl.col("entity_key") == "build_duration|2"
        )["explanation"]
        assert under.startswith("build_duration version 2 (the baseline): within 20% 100%")
    assert (
        "build_duration v2: baseline (trailing median) serving, the trained model (v1) does not"
        " beat the baseline" in screen
    )
    assert "build_outcome v2: baseline (trailing success rate) serving" in screen

    # Training again: another trained version, the same baseline version keeps serving.
    again = dg.materialize(training_assets, resources=resources)
    assert again.success
    for name in ("build_duration", "build_outcome"):
        assert _versions(client, name) == {"1": "lightgbm", "2": "baseline", "3": "lightgbm"}
        assert registry.champion_version(client, name) == "2"
        reason = client.get_model_version(name, "2").tags["serving_reason"]
        assert reason.startswith("the trained model (v3) does not beat the baseline")
        assert "trained model (v3)" in client.get_model_version(name, "2").description
    # The next scoring says why the baseline still serves; it predicted every run already.
    assert dg.materialize(ml_table_assets, resources=resources).success
    with duckdb.connect(str(warehouse)) as conn:
        assert conn.execute("SELECT count(*) FROM ml.build_predictions").fetchone()[0] == (
            2 * started
        )
        reasons = conn.execute("SELECT reason FROM ml.serving WHERE serving").fetchall()
        assert len(reasons) == 2
        assert all(r.startswith("the trained model (v3) does not beat the") for (r,) in reasons)

    # The slow-run detector judges against the baseline's predictions.
    with duckdb.connect(str(warehouse)) as conn:
        run_key, predicted = conn.execute(
            """SELECT run_key, predicted_duration_s FROM ml.build_predictions
            JOIN core.pipeline_runs r USING (run_key)
            WHERE model_name = 'build_duration' AND r.conclusion = 'success'
                AND predicted_duration_s = r.duration_s
            ORDER BY r.started_at DESC LIMIT 1"""
        ).fetchone()
        conn.execute(
            "UPDATE core.pipeline_runs SET duration_s = 4 * duration_s WHERE run_key = ?",
            [run_key],
        )
        found = build_duration(conn, AnomalyThresholds())
        (slow,) = found.filter(pl.col("entity_key") == run_key).to_dicts()
        assert slow["expected"] == predicted and slow["observed"] == 4 * predicted
        assert (
            "the baseline serving (its workflow's trailing median) predicted"
            in (slow["explanation"])
        )

        # The weekly review names the predictor that serves and why.
        (last,) = conn.execute("SELECT max(started_at)::DATE FROM core.pipeline_runs").fetchone()
        figures = gather(conn, report_week(last), last)
    assert {r["predictor"] for r in figures.model_weekly} == {"baseline"}
    html = render_html(figures, "shadow", {"build_duration": 0.7, "build_outcome": 0.75})
    assert "build_duration: baseline (trailing median) serving (version 2, since" in html
    assert "(v3) does not beat the baseline" in html
    assert "baseline serving" in html  # the chart's legend
    summary = summary_markdown(figures, tmp_path / "r.html")
    assert "build_outcome: baseline (trailing success rate) serving" in summary


@pytest.fixture
def mlflow_client(tmp_path):
    return registry.client(f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "mlartifacts")


def test_a_trained_model_that_beats_the_serving_baseline_takes_over(demo, mlflow_client):
    """Baseline first (durations equal to the trailing median), re-used on a second training,
    then a model trained on the real durations beats it; rollback goes back to the baseline."""
    features = build_features(demo[1])
    exact = features.filter(pl.col("wf_duration_p50").is_not_null()).with_columns(
        duration_s=pl.col("wf_duration_p50")
    )
    first = registry.log_and_register(mlflow_client, train_duration(exact))
    assert not first.promoted and first.baseline_version == first.champion_version == "2"
    assert first.serving_predictor == "baseline"
    second = train_duration(exact)
    again = registry.log_and_register(mlflow_client, second)
    assert again.baseline_version == "2" and again.version == "3"  # re-used, not registered
    # What the trained model was compared with: the serving baseline on the new slice.
    assert again.champion_metrics == evaluate(
        "build_duration", registry.load_version("build_duration", "2"), second.evaluation
    )

    real = train_duration(features)
    serving_baseline = evaluate(
        "build_duration", registry.load_version("build_duration", "2"), real.evaluation
    )
    assert real.metrics["within_20pct"] > serving_baseline["within_20pct"]
    won = registry.log_and_register(mlflow_client, real)
    assert won.promoted and won.reason == "beats the baseline, which served as version 2"
    assert won.champion_metrics == serving_baseline  # measured on this slice, not its own
    assert (won.champion_version, won.serving_predictor) == ("4", "lightgbm")
    served = registry.serving(mlflow_client, "build_duration")
    assert (served.version, served.predictor, served.reason) == ("4", "lightgbm", won.reason)

    # The card: what it learnt from, both scores on the same slice, the decision.
    card = mlflow_client.get_model_version("build_duration", "4").description
    training = real.training
    assert f"{training.height:,} finished runs" in card
    assert f"of {training.select('repo', 'workflow').n_unique()} workflows" in card
    assert f"On the {real.evaluation.height:,} most recent finished runs" in card
    assert f"{100 * real.metrics['within_20pct']:.1f}%" in card
    assert f"{100 * real.baseline['within_20pct']:.1f}%" in card
    assert f"{100 * serving_baseline['within_20pct']:.1f}%" in card
    assert "Promoted to champion: beats the baseline, which served as version 2." in card
    assert "`trigger_duration_p50`" in card
    assert mlflow.artifacts.load_text(f"runs:/{won.run_id}/model_card.md") == card
    baseline_card = mlflow_client.get_model_version("build_duration", "2").description
    assert "# build_duration version 2: baseline (trailing median)" in baseline_card
    assert "Serves as champion: the trained model (v3) does not beat" in baseline_card
    assert "`wf_duration_p50`" in baseline_card

    # Rollback: from the trained model back to the baseline it replaced.
    assert registry.rollback_champion(mlflow_client, "build_duration", "live quality") == (
        "4",
        "2",
    )
    served = registry.serving(mlflow_client, "build_duration")
    assert (served.version, served.predictor) == ("2", "baseline")
    assert served.reason == "rolled back from v4: live quality"


def test_a_champion_that_no_longer_beats_the_baseline_hands_over_to_it(demo, mlflow_client):
    features = build_features(demo[1])
    first = registry.log_and_register(mlflow_client, train_duration(features))
    assert first.promoted and first.serving_predictor == "lightgbm"
    # The next training's slice, graded against a baseline neither model can beat.
    model = train_duration(features)
    model.baseline = dict(model.metrics, within_20pct=1.0)
    result = registry.log_and_register(mlflow_client, model)
    assert not result.promoted and result.reason == "does not beat the baseline"
    assert (result.champion_version, result.baseline_version) == ("3", "3")
    assert result.serving_reason == (
        "neither the trained model (v2) nor champion v1 beats the baseline"
    )
    tags = mlflow_client.get_model_version("build_duration", "3").tags
    assert tags["predictor"] == "baseline" and tags["previous_champion"] == "1"
    # The baseline's figures in its card are its own on this slice, not the grading dict's.
    own = evaluate("build_duration", registry.load_version("build_duration", "3"), model.evaluation)
    card = mlflow_client.get_model_version("build_duration", "3").description
    assert f"| {100 * own['within_20pct']:.1f}% |" in card
    assert registry.rollback_champion(mlflow_client, "build_duration", "why") == ("3", "1")


def test_a_warehouse_scored_before_the_predictor_was_kept_reads_as_lightgbm(tmp_path):
    """ml.build_predictions as older versions wrote it: widened in place, its rows LightGBM's;
    `dcicd status` shows its latest version until ml.serving is written."""
    with duckdb.connect(str(tmp_path / "old.duckdb")) as conn:
        conn.execute(
            "CREATE SCHEMA core; CREATE TABLE core.pipeline_runs (run_key VARCHAR,"
            " status VARCHAR, conclusion VARCHAR, duration_s DOUBLE, started_at TIMESTAMPTZ)"
        )
        conn.execute(
            "INSERT INTO core.pipeline_runs VALUES ('r1', 'completed', 'success', 100,"
            " '2026-05-02'), ('r2', 'completed', 'success', 200, '2026-05-03')"
        )
        conn.execute(
            "CREATE SCHEMA ml; CREATE TABLE ml.build_predictions (run_key VARCHAR,"
            " model_name VARCHAR, model_version VARCHAR, predicted_duration_s DOUBLE,"
            " predicted_success_proba DOUBLE, scored_at TIMESTAMPTZ, trained_through"
            " TIMESTAMPTZ, started_at TIMESTAMPTZ, PRIMARY KEY (run_key, model_name))"
        )
        conn.execute(
            "INSERT INTO ml.build_predictions VALUES ('r1', 'build_duration', '7', 110, NULL,"
            " now(), '2026-05-01', '2026-05-02'), ('r2', 'build_duration', '7', 100, NULL,"
            " now(), '2026-05-01', '2026-05-03')"
        )
        assert [m["predictor"] for m in read_status(conn).models] == []
        (row,) = refresh_model_quality(conn, 0.7, 0.7)
        assert (row["version"], row["predictor"], row["serving"], row["reason"]) == (
            "7",
            "lightgbm",
            False,
            None,
        )
        assert row["within_20pct"] == 0.5 and row["runs"] == 2
        conn.execute(PREDICTIONS_DDL)  # idempotent: the column is there once
        (model,) = read_status(conn).models
        assert (model["version"], model["predictor"], model["value"]) == ("7", "lightgbm", 0.5)
        assert "build_duration v7: LightGBM serving" in render_status(read_status(conn))
