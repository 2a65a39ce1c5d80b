"""The code location: it loads, its graph is what we say it is, and its assets and sensor run."""

import json
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from dcicd_platform.assets.config_tables import config_tables
from dcicd_platform.assets.raw_events import raw_events
from dcicd_platform.assets.sql_models import sql_model_assets
from dcicd_platform.automation.landing_sensor import landing_sensor
from dcicd_platform.definitions import build_definitions
from dcicd_platform.home import Home
from dcicd_platform.resources import HomeResource, SettingsResource, warehouse_resource
from tests.helpers import fixture_envelope, write_envelopes

ROOT = Path(__file__).parent.parent

EXPECTED_GRAPH = {
    "raw/events": set(),
    # The history import lands and loads into raw.events itself; only its own job runs it.
    "import/github": set(),
    "import/gitlab": set(),
    "import/pagerduty": set(),
    "ops/actions": set(),  # written by the response jobs, read by the DORA marts
    "config/services": set(),
    "config/service_repositories": set(),
    "config/service_paths": set(),
    "config/runner_rates": set(),
    "config/settings": set(),
    "config/automation": set(),
    "config/reporting": set(),
    "config/dora": set(),
    "config/recommendations": set(),
    "core/pipeline_runs": {"raw/events", "config/service_repositories", "config/service_paths"},
    "core/pipeline_job_states": {"raw/events"},
    "core/pipeline_jobs": {"core/pipeline_job_states", "core/pipeline_runs"},
    "core/commits": {"raw/events"},
    "core/commit_graph": {"raw/events"},
    "core/commit_files": {"raw/events"},
    "core/commit_services": {"core/commit_files", "config/service_paths"},
    "core/run_services": {
        "core/pipeline_runs",
        "core/commits",
        "core/commit_services",
        "config/service_paths",
    },
    "core/health_samples": {"raw/events"},
    "core/deployments": {
        "raw/events",
        "config/services",
        "config/service_paths",
        "core/pipeline_runs",
    },
    "core/incidents": {
        "raw/events",
        "config/services",
        "config/service_repositories",
        "config/service_paths",
        "config/settings",
        "core/deployments",
        "marts/deployment_changes",
    },
    "core/pull_requests": {"raw/events", "core/commits"},
    "marts/deployment_changes": {
        "core/deployments",
        "core/commits",
        "core/commit_graph",
        "core/commit_services",
        "core/pipeline_runs",
        "config/service_paths",
        "core/pull_requests",
    },
    "marts/pull_request_cycle": {
        "core/pull_requests",
        "marts/deployment_changes",
        "config/service_repositories",
    },
    "marts/pull_request_cycle_summary": {"marts/pull_request_cycle", "config/reporting"},
    "marts/production_deployments": {
        "config/reporting",
        "core/deployments",
        "core/incidents",
        "marts/deployment_changes",
        "ops/actions",
    },
    "marts/deployment_rework": {
        "config/dora",
        "core/deployments",
        "core/incidents",
        "core/pull_requests",
        "marts/production_deployments",
        "marts/pull_request_cycle",
    },
    "marts/dora_metrics": {
        "config/reporting",
        "marts/production_deployments",
        "marts/deployment_rework",
        "marts/deployment_changes",
        "core/incidents",
    },
    "marts/ci_cost_daily": {"marts/ci_job_costs"},
    "marts/ci_job_costs": {
        "config/reporting",
        "config/runner_rates",
        "config/settings",
        "core/pipeline_jobs",
    },
    "marts/ci_pipeline_daily": {"config/reporting", "core/pipeline_jobs", "core/pipeline_runs"},
    "marts/ci_run_costs": {"core/pipeline_runs", "marts/ci_job_costs"},
    "marts/deployment_cost": {
        "marts/ci_run_costs",
        "marts/deployment_changes",
        "marts/production_deployments",
        "core/run_services",
        "config/service_paths",
    },
    "marts/job_outcomes_by_sha": {"core/pipeline_jobs"},
    "marts/flaky_jobs": {"marts/job_outcomes_by_sha"},
    "marts/kpi_scorecard": {
        "config/reporting",
        "config/services",
        "config/settings",
        "core/pipeline_runs",
        "marts/deployment_cost",
        "marts/dora_summary",
    },
    "marts/dora_summary": {
        "raw/events",
        "config/reporting",
        "config/services",
        "core/incidents",
        "marts/production_deployments",
        "marts/deployment_rework",
        "marts/deployment_changes",
    },
    "core/job_steps": {"raw/events"},
    "marts/recommendation_history": {
        "raw/events",
        "config/recommendations",
        "config/reporting",
        "config/settings",
        "core/deployments",
        "core/job_steps",
        "core/pipeline_jobs",
        "core/pipeline_runs",
        "marts/ci_job_costs",
    },
    "marts/recommendations": {"raw/events", "config/reporting", "marts/recommendation_history"},
    "ops/collection_arrivals": {"raw/events"},
    "ops/collection_objects": {"config/reporting", "ops/collection_arrivals"},
    "ops/collection": {"ops/collection_objects"},
    "ops/collection_gaps": {"ops/collection_objects"},
}


ML_GRAPH = {
    "ml/build_predictions": {"core/pipeline_runs", "core/pipeline_jobs"},
    "ml/model_quality": {"ml/build_predictions"},
    "ml/anomalies": {
        "config/reporting",
        "core/pipeline_runs",
        "core/pipeline_jobs",
        "core/health_samples",
        "core/incidents",
        "config/services",
        "config/service_repositories",
        "config/service_paths",
        "marts/production_deployments",
        "marts/ci_cost_daily",
        "marts/ci_run_costs",
        "ml/build_predictions",
        "ml/model_quality",
        "ops/collection_objects",
        "raw/events",  # and its ledger raw.files: when each webhook was loaded
    },
    # Training comes after scoring: a run is scored by a model that has not learnt from it.
    "ml/build_duration_model": {"ml/build_predictions"},
    "ml/build_outcome_model": {"ml/build_predictions"},
    "reports/weekly_review": {
        "marts/dora_metrics",
        "marts/dora_summary",
        "marts/production_deployments",
        "marts/kpi_scorecard",
        "marts/flaky_jobs",
        "marts/ci_cost_daily",
        "marts/recommendations",
        "core/pipeline_runs",
        "config/services",
        "config/reporting",
        "ml/build_predictions",
        "ml/anomalies",
        "ops/actions",
    },
}


def test_asset_graph_is_pinned(tmp_path):
    graph = build_definitions(Home(tmp_path)).resolve_asset_graph()
    found = {
        key.to_user_string(): {p.to_user_string() for p in graph.get(key).parent_keys}
        for key in graph.get_all_asset_keys()
    }
    snapshot = found.pop("warehouse/snapshot")
    assert found == EXPECTED_GRAPH | ML_GRAPH
    # the audit is written by jobs, not built; the import lands files and loads raw.events
    tables = set(EXPECTED_GRAPH) - {
        "ops/actions",
        "import/github",
        "import/gitlab",
        "import/pagerduty",
    }
    tables |= {"ml/build_predictions", "ml/model_quality", "ml/anomalies"}
    assert snapshot == tables  # published after every table


def test_every_writing_asset_is_in_the_duckdb_pool(tmp_path):
    defs = build_definitions(Home(tmp_path))
    for assets_def in defs.resolve_asset_graph().assets_defs:
        if not assets_def.is_executable:
            continue  # a source (ops/actions) shown in the lineage: nothing runs
        for spec in assets_def.specs:
            assert assets_def.node_def.pool == "duckdb", spec.key


def test_dagster_validates_the_workspace(tmp_path):
    empty_config = tmp_path / "dcicd.yaml"
    empty_config.write_text("")
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "dagster"),
            "definitions",
            "validate",
            "-w",
            "workspace.yaml",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        # cwd is the checkout (whose ./dcicd.yaml the demo writes): name an empty one instead.
        env={
            "DCICD_HOME": str(tmp_path),
            "DCICD_CONFIG": str(empty_config),
            "PATH": "/usr/bin:/bin",
            "DAGSTER_HOME": str(tmp_path),
        },
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Validation successful" in result.stdout + result.stderr


def test_importing_definitions_loads_no_heavy_library():
    code = (
        "import sys, dcicd_platform.definitions\n"
        "heavy = ('mlflow', 'lightgbm', 'sklearn', 'great_expectations')\n"
        "print([m for m in heavy if m in sys.modules])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


@pytest.fixture
def resources(tmp_path):
    home = Home(tmp_path / "home").prepare()
    return home, {
        "warehouse": warehouse_resource(home.warehouse),
        "home": HomeResource(root=str(home.root)),
        "settings": SettingsResource(config_file=""),
    }


def test_materialize_raw_and_core(resources, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no ./dcicd.yaml here: built-in defaults
    home, resource_defs = resources
    write_envelopes(
        home.landing / "a.ndjson",
        [
            fixture_envelope("github/workflow_run/completed.payload.json"),
            fixture_envelope("github/deployment_status/payload.json"),
            fixture_envelope("pagerduty/incident.triggered.aldaviva.json"),
        ],
    )
    (home.landing / "b.ndjson").write_text("not json\n")
    assets = [raw_events, config_tables, *sql_model_assets()]
    result = dg.materialize(assets, resources=resource_defs)
    assert result.success
    raw = result.asset_materializations_for_node("raw__events")[0].metadata
    assert (raw["files"].value, raw["loaded"].value, raw["quarantined"].value) == (2, 3, 1)
    runs = result.asset_materializations_for_node("core__pipeline_runs")[0].metadata
    assert runs["dagster/row_count"].value == 1
    # Materializing again loads nothing twice.
    again = dg.materialize(assets, resources=resource_defs)
    assert again.asset_materializations_for_node("raw__events")[0].metadata["files"].value == 0
    import duckdb

    with duckdb.connect(str(home.warehouse), read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM raw.events").fetchone()[0] == 3
        assert conn.execute("SELECT count(*) FROM core.deployments").fetchone()[0] == 1


def test_landing_sensor_requests_one_run_per_new_file(tmp_path, monkeypatch):
    home = Home(tmp_path / "home").prepare()
    monkeypatch.setenv("DCICD_HOME", str(home.root))
    first = write_envelopes(
        home.landing / "2026" / "a.ndjson", [fixture_envelope("gitlab/push.json")]
    )
    (home.landing / ".b.ndjson.partial").write_text("being written")
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance)
        requests = landing_sensor(context)
        assert len(requests) == 1
        from dcicd_platform.ingest.loader import content_hash

        assert requests[0].run_key == content_hash(first)
        assert requests[0].run_config["ops"]["raw__events"]["config"]["files"] == [str(first)]
        cursor = context.cursor
        assert json.loads(cursor) == {"2026/a.ndjson": json.loads(cursor)["2026/a.ndjson"]}
        # Nothing new: no run.
        again = landing_sensor(dg.build_sensor_context(instance=instance, cursor=cursor))
        assert isinstance(again, dg.SkipReason)
        # A second file: one more run, for it alone.
        second = write_envelopes(home.landing / "c.ndjson.gz", [])
        third = landing_sensor(dg.build_sensor_context(instance=instance, cursor=cursor))
        assert [r.run_config["ops"]["raw__events"]["config"]["files"] for r in third] == [
            [str(second)]
        ]


def test_sensor_run_loads_its_file(tmp_path, monkeypatch):
    home = Home(tmp_path / "home").prepare()
    monkeypatch.setenv("DCICD_HOME", str(home.root))
    monkeypatch.chdir(tmp_path)
    path = write_envelopes(home.landing / "a.ndjson", [fixture_envelope("gitlab/push.json")])
    defs = build_definitions(home)
    with dg.instance_for_test() as instance:
        request = landing_sensor(dg.build_sensor_context(instance=instance))[0]
        job = defs.resolve_job_def("ingest_landing_file")
        result = job.execute_in_process(run_config=request.run_config, instance=instance)
        assert result.success
        metadata = result.asset_materializations_for_node("raw__events")[0].metadata
        assert metadata["loaded"].value == 1
        assert metadata["files"].value == 1
        assert str(path.name) in metadata["report"].value


def test_hourly_refresh_scores_and_daily_retrain_trains(tmp_path):
    defs = build_definitions(Home(tmp_path))

    def selected(job_name: str) -> set[str]:
        job = defs.resolve_job_def(job_name)
        return {k.to_user_string() for k in job.asset_layer.selected_asset_keys}

    hourly = defs.resolve_schedule_def("hourly_refresh")
    daily = defs.resolve_schedule_def("daily_retrain")
    assert (hourly.cron_schedule, daily.cron_schedule) == ("0 * * * *", "30 3 * * *")
    training = {"ml/build_duration_model", "ml/build_outcome_model"}
    assert "ml/build_predictions" in selected(hourly.job_name)
    assert not training & selected(hourly.job_name)
    assert selected(daily.job_name) == training | {"ml/build_predictions"}


def test_anomalies_are_watched_every_five_minutes(tmp_path):
    defs = build_definitions(Home(tmp_path))
    watch = defs.resolve_schedule_def("watch_every_5_minutes")
    assert watch.cron_schedule == "*/5 * * * *"
    job = defs.resolve_job_def(watch.job_name)
    selected = {k.to_user_string() for k in job.asset_layer.selected_asset_keys}
    assert {"ml/anomalies", "core/health_samples", "marts/production_deployments"} <= selected
    assert not selected & {"raw/events", "ml/build_duration_model", "ml/build_outcome_model"}
    sensor = defs.resolve_sensor_def("anomaly_actions")  # it acts on what watch finds
    # and on the alert catalogue's conditions (platform_alert: health score, false positives)
    assert {t.job_name for t in sensor.targets} == {
        "rollback",
        "alert",
        "model_rollback",
        "rerun",
        "platform_alert",
    }


def test_the_weekly_review_is_written_on_mondays_and_not_hourly(tmp_path):
    defs = build_definitions(Home(tmp_path))
    weekly = defs.resolve_schedule_def("weekly_review")
    assert (weekly.cron_schedule, weekly.execution_timezone) == ("0 6 * * 1", "UTC")
    job = defs.resolve_job_def(weekly.job_name)
    assert {k.to_user_string() for k in job.asset_layer.selected_asset_keys} == {
        "reports/weekly_review"
    }
    hourly = defs.resolve_job_def(defs.resolve_schedule_def("hourly_refresh").job_name)
    assert "reports/weekly_review" not in {
        k.to_user_string() for k in hourly.asset_layer.selected_asset_keys
    }


def test_loading_the_definitions_warns_of_nothing_a_user_could_act_on(tmp_path):
    """Dagster's BetaWarning about sensors' `owners` (which Dagster passes itself) stays out."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        defs = build_definitions(Home(tmp_path / "home"))
        defs.resolve_sensor_def("anomaly_actions")
        defs.resolve_job_def("refresh")
