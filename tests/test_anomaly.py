"""Anomaly detectors: the statistics, each kind on the demo organisation, stable keys."""

from datetime import UTC, datetime

import dagster as dg
import duckdb
import pytest

from dcicd_platform.assets.anomalies import anomalies
from dcicd_platform.config import AnomalyThresholds, parse_config
from dcicd_platform.demo.generator import generate_organisation
from dcicd_platform.demo.organisation import demo_config_yaml
from dcicd_platform.ingest.loader import load_files
from dcicd_platform.resources import SettingsResource, warehouse_resource
from ml.anomaly import canary_verdict, detect_all, one_sided_proportion_p
from tests.helpers import build_core

END = datetime(2026, 6, 1, tzinfo=UTC)


def test_canary_verdict_judges_harm_in_one_direction_with_an_effect_floor():
    t = AnomalyThresholds()
    before = [0.010, 0.011, 0.009, 0.010, 0.012, 0.010]
    assert canary_verdict(before, [0.05, 0.06, 0.055, 0.07, 0.05, 0.06], t)[0] == "fail"
    assert canary_verdict(before, [0.010, 0.011, 0.009, 0.012, 0.010, 0.011], t)[0] == "pass"
    # Better after the deploy is not harm.
    assert canary_verdict(before, [0.001, 0.002, 0.001, 0.002, 0.001, 0.002], t)[0] == "pass"
    # Significant but tiny (5% worse, under the 20% floor): pass.
    slightly = [x * 1.05 + 0.0001 for x in before]
    assert canary_verdict(before, slightly, t)[0] == "pass"
    assert canary_verdict(before, [0.05, 0.06], t)[0] == "nodata"


def test_two_proportion_test():
    assert one_sided_proportion_p(10, 20, 2, 100) < 1e-5
    assert one_sided_proportion_p(2, 100, 10, 20) > 0.99  # lower is not a jump
    assert 0.4 < one_sided_proportion_p(5, 100, 5, 100) < 0.6


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("anomalies")
    files = generate_organisation(folder / "landing", seed=9, days=75, end=END)
    path = folder / "warehouse.duckdb"
    config = folder / "dcicd.yaml"
    config.write_text(demo_config_yaml())
    with duckdb.connect(str(path)) as conn:
        load_files(conn, files)
        build_core(conn, parse_config(demo_config_yaml()))
    return path, config


def test_the_demo_organisations_bad_deploys_are_found(demo):
    path, _ = demo
    with duckdb.connect(str(path)) as conn:
        found = detect_all(conn, AnomalyThresholds(), rollback_window_minutes=30)
        # The generator titles each bad deploy's incident "Error rate up after deploying <sha>".
        deployments = conn.execute("SELECT count(*) FROM marts.production_deployments").fetchall()[
            0
        ][0]
        bad = {
            key
            for (key,) in conn.execute(
                "SELECT DISTINCT d.deployment_key FROM marts.production_deployments d"
                " JOIN core.incidents i ON i.service = d.service"
                " AND i.title LIKE '%' || left(d.sha, 8) WHERE NOT d.is_rollback"
            ).fetchall()
        }
    health = found.filter(found["kind"] == "deployment_health")
    critical = set(health.filter(health["severity"] == "critical")["entity_key"])
    assert len(bad) >= 5
    assert len(bad & critical) / len(bad) > 0.7
    # False positive rate: good deployments judged critical, among all good ones.
    assert len(critical - bad) / (deployments - len(bad)) < 0.15
    assert {"build_duration", "ci_cost", "deployment_health"} <= set(found["kind"])
    # Every run came by webhook, no source fell silent, no file came from the receiver.
    assert "collection" not in set(found["kind"])
    assert found["anomaly_key"].is_unique().all()
    assert found["severity"].is_in(["info", "warning", "critical"]).all()
    assert found["explanation"].str.len_chars().min() > 20


def test_the_asset_is_idempotent_and_clears_what_is_gone(demo, tmp_path):
    import shutil

    path, config = demo
    warehouse = tmp_path / "w.duckdb"
    shutil.copy(path, warehouse)
    resources = {
        "warehouse": warehouse_resource(warehouse),
        "settings": SettingsResource(config_file=str(config)),
    }
    # No model has scored anything yet (no ml tables): slow runs are judged by their history.
    first = dg.materialize([anomalies], resources=resources)
    assert first.success
    with duckdb.connect(str(warehouse)) as conn:
        rows = conn.execute("SELECT anomaly_key, first_seen_at FROM ml.anomalies").fetchall()
    assert len(rows) > 10
    again = dg.materialize([anomalies], resources=resources)
    (event,) = again.asset_materializations_for_node("ml__anomalies")
    assert event.metadata["new"].value == 0
    with duckdb.connect(str(warehouse)) as conn:
        assert (
            conn.execute("SELECT anomaly_key, first_seen_at FROM ml.anomalies").fetchall() == rows
        )  # the same keys, first seen when first seen
        # Health samples withdrawn: their deployment anomalies clear, they are not deleted.
        conn.execute("DELETE FROM core.health_samples")
    dg.materialize([anomalies], resources=resources)
    with duckdb.connect(str(warehouse)) as conn:
        open_health, cleared = conn.execute(
            "SELECT count(*) FILTER (WHERE cleared_at IS NULL), count(*) FILTER (WHERE cleared_at"
            " IS NOT NULL) FROM ml.anomalies WHERE kind = 'deployment_health'"
        ).fetchone()
    # Deployments with an incident in the window stay failed; the rest cleared.
    assert cleared > 0 and open_health < cleared


def test_the_cost_spike_and_the_slow_regression_are_found(demo):
    """The generator copies a job three times, 1.5x slower (a dearer run, not more runs) and
    makes another job 1.7x slower for good; both must be told from the day-to-day swing."""
    from datetime import timedelta

    from dcicd_platform.demo.organisation import SERVICES

    path, _ = demo
    start = (END - timedelta(days=75)).date()
    spiking = next(p for p in SERVICES if p.cost_spike_days)
    regressed = next(p for p in SERVICES if p.regression_from_day is not None)
    first, last = spiking.cost_spike_days
    spike_days = {str(start + timedelta(days=n)) for n in range(first, last + 1)}
    with duckdb.connect(str(path)) as conn:
        found = detect_all(conn, AnomalyThresholds(), rollback_window_minutes=30)
        began = start + timedelta(days=regressed.regression_from_day)
        week = conn.execute(
            "SELECT j.job_key, j.job_name = ?, j.started_at FROM core.pipeline_jobs j"
            " WHERE j.repo = ? AND j.conclusion = 'success' AND j.started_at::DATE >= ?"
            " AND j.started_at::DATE < ? ORDER BY j.started_at",
            [regressed.regression_job, regressed.repo, began, began + timedelta(days=7)],
        ).fetchall()
        repo_days = conn.execute(
            "SELECT count(DISTINCT (repo, day)) FROM marts.ci_cost_daily"
        ).fetchall()[0][0]
    cost_days = {
        tuple(k.split("|")[:2])
        for k in found.filter(found["kind"] == "ci_cost")["entity_key"]
        if "|budget|" not in k
    }
    caught = {d for r, d in cost_days if r == spiking.repo} & spike_days
    assert len(caught) / len(spike_days) > 0.7
    assert len(cost_days - {(spiking.repo, d) for d in spike_days}) / repo_days < 0.15

    slow = set(found.filter(found["kind"] == "build_duration")["entity_key"])
    regressed_jobs = [(key, at) for key, is_regressed, at in week if is_regressed]
    others = [key for key, is_regressed, _ in week if not is_regressed]
    assert len(regressed_jobs) >= 5
    flagged = [at for key, at in regressed_jobs if key in slow]
    # Found within two days, and most of the week (the first runs of a level shift are judged
    # alone; the benchmark measures the share on the 90-day organisation).
    assert flagged and flagged[0].date() <= began + timedelta(days=2)
    assert len(flagged) / len(regressed_jobs) > 0.4
    assert not any(k in slow for k in others)  # the job that did not change is left alone


COLUMNS = (
    "anomaly_key, kind, entity_key, detected_at, observed, expected, score, severity, explanation"
)


def open_anomalies(conn) -> list[tuple]:
    return conn.execute(
        f"SELECT {COLUMNS} FROM ml.anomalies WHERE cleared_at IS NULL ORDER BY anomaly_key"
    ).fetchall()


def judged_whole(conn, t: AnomalyThresholds, window: int = 30) -> list[tuple]:
    found = detect_all(conn, t, window)
    return sorted(tuple(r) for r in found.select(COLUMNS.split(", ")).iter_rows())


@pytest.mark.parametrize("zone", ["UTC", "Pacific/Auckland"])
def test_judging_what_changed_finds_what_judging_all_history_finds(tmp_path, monkeypatch, zone):
    """The sample organisation arrives in slices (the last one hour; health samples and
    incidents of ten days held back and delivered late; predictions scored after their runs):
    after each, the anomalies the watch keeps, judging only what changed, are exactly those
    judging all history finds (values, explanations and keys), and re-running changes nothing.
    Days and weeks are the reporting zone's: UTC, and one thirteen hours ahead of it."""
    from datetime import timedelta

    from dcicd_platform.demo.generator import _envelopes, generate_events
    from ml.anomaly import build_duration, ci_cost, deployment_health, failure_rate
    from ml.anomaly.detect import detect_and_store
    from ml.scoring import PREDICTIONS_DDL

    config = parse_config(demo_config_yaml() + f"\nreporting:\n  time_zone: {zone}\n")
    # A looser failure-rate test, so that weeks of every workflow are flagged and cleared.
    t = config.anomalies.model_copy(update={"failure_rate_p_value": 0.4})
    window = config.automation.rollback_window_minutes
    events = generate_events(seed=9, days=75, end=END)
    start = END - timedelta(days=75)
    first, second = start + timedelta(days=40), start + timedelta(days=60)
    last_hour = max(e.at for e in events) - timedelta(hours=1)
    late = [
        e
        for e in events
        if second - timedelta(days=10) <= e.at < second and e.source in ("metrics", "pagerduty")
    ]
    held = {id(e) for e in late}
    slices = [
        [e for e in events if e.at < first],
        [e for e in events if first <= e.at < second and id(e) not in held],
        late + [e for e in events if second <= e.at < last_hour],
        [e for e in events if e.at >= last_hour],
    ]
    assert all(slices) and sum(map(len, slices)) == len(events)
    conn = duckdb.connect(str(tmp_path / "w.duckdb"))

    def whole_judgement_fails(*_args, **_kwargs):
        raise AssertionError("judged all history where only what changed was to be judged")

    news = []
    for step, part in enumerate(slices):
        landing = tmp_path / f"slice-{step}.ndjson"
        landing.write_bytes(b"".join(_envelopes(sorted(part, key=lambda e: e.at))))
        load_files(conn, [landing])
        build_core(conn, config)
        with monkeypatch.context() as patched:
            if step:
                for module, name in [
                    (build_duration, "build_duration"),
                    (failure_rate, "failure_rate"),
                    (ci_cost, "ci_cost"),
                    (deployment_health, "deployment_health"),
                ]:
                    patched.setattr(module, name, whole_judgement_fails)
            counts, _ = detect_and_store(conn, t, window)
        news.append(counts["new"])
        assert open_anomalies(conn) == judged_whole(conn, t, window), f"slice {step}"
        if step == 2:
            # The duration model scores the newest runs: a bound below some of them.
            conn.execute(PREDICTIONS_DDL)
            conn.execute(
                "INSERT INTO ml.build_predictions (run_key, model_name, model_version,"
                " predicted_duration_s, slow_above_s, scored_at, predictor)"
                " SELECT run_key, 'build_duration', '1', duration_s * (0.5 + (hash(run_key) % 2)),"
                " CASE WHEN hash(run_key) % 3 = 0 THEN duration_s * 0.9 END, now(), 'lightgbm'"
                " FROM core.pipeline_runs WHERE status = 'completed' AND started_at >= ?",
                [second],
            )
            with monkeypatch.context() as patched:
                patched.setattr(build_duration, "build_duration", whole_judgement_fails)
                counts, _ = detect_and_store(conn, t, window)
            assert counts["new"] > 0  # runs now judged against their predictions
            assert open_anomalies(conn) == judged_whole(conn, t, window), "predictions"
    assert all(news[:3]) and {r[1] for r in open_anomalies(conn)} >= {
        "build_duration",
        "ci_cost",
        "deployment_health",
        "failure_rate",
    }
    # Re-run with nothing new: no anomaly new, none cleared, each first seen when first seen.
    before = conn.execute("SELECT anomaly_key, first_seen_at FROM ml.anomalies").fetchall()
    counts, _ = detect_and_store(conn, t, window)
    assert counts["new"] == 0 and counts["cleared"] == 0
    assert conn.execute("SELECT anomaly_key, first_seen_at FROM ml.anomalies").fetchall() == before


def test_a_changed_threshold_judges_all_history_again(demo, tmp_path):
    import shutil

    from ml.anomaly.detect import detect_and_store

    path, _ = demo
    warehouse = tmp_path / "w.duckdb"
    shutil.copy(path, warehouse)
    with duckdb.connect(str(warehouse)) as conn:
        detect_and_store(conn, AnomalyThresholds(), 30)
        stricter = AnomalyThresholds(build_duration_ratio=1.2)
        counts, _ = detect_and_store(conn, stricter, 30)
        assert counts["new"] > 0
        assert open_anomalies(conn) == judged_whole(conn, stricter)


def test_predictions_not_live_judge_slow_builds_as_before_any_model(demo, tmp_path):
    """`dcicd switch predictions shadow`: runs are still scored, but the slow-build judgement
    ignores their bounds (trailing medians, as before any model) until they are live again."""
    import shutil

    from ml.anomaly.detect import detect_and_store
    from ml.scoring import PREDICTIONS_DDL

    path, _ = demo
    warehouse = tmp_path / "w.duckdb"
    shutil.copy(path, warehouse)
    slow_runs = (
        "SELECT entity_key FROM ml.anomalies WHERE kind = 'build_duration'"
        " AND cleared_at IS NULL AND entity_key IN (SELECT run_key FROM ml.build_predictions)"
    )
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute(PREDICTIONS_DDL)
        # 20 successful runs, each over the bound its prediction set
        conn.execute(
            "INSERT INTO ml.build_predictions (run_key, model_name, model_version,"
            " predicted_duration_s, slow_above_s, scored_at, predictor)"
            " SELECT run_key, 'build_duration', '1', duration_s / 2, duration_s / 1.5, now(),"
            " 'lightgbm' FROM core.pipeline_runs WHERE status = 'completed'"
            " AND conclusion = 'success' ORDER BY run_key LIMIT 20"
        )
        detect_and_store(conn, AnomalyThresholds(), 30, use_predictions=False)
        ignored = {k for (k,) in conn.execute(slow_runs).fetchall()}
        detect_and_store(conn, AnomalyThresholds(), 30, use_predictions=True)
        used = {k for (k,) in conn.execute(slow_runs).fetchall()}
        assert len(used) == 20 and len(ignored) < 20
        detect_and_store(conn, AnomalyThresholds(), 30, use_predictions=False)  # shadow again
        assert {k for (k,) in conn.execute(slow_runs).fetchall()} == ignored
