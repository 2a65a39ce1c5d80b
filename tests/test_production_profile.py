"""The production profile (deploy/): a full refresh through a Dagster instance whose runs,
events and schedules live in PostgreSQL, with the MLflow registry in PostgreSQL too."""

import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.postgres_server import LocalPostgres, find_binaries

ROOT = Path(__file__).resolve().parent.parent
BINARIES = find_binaries()


@pytest.fixture(scope="module")
def postgres():
    if BINARIES is None:
        pytest.skip(
            "no PostgreSQL server can be started: initdb is not installed (make test installs"
            " Debian's postgresql package when run as root with apt)"
        )
    try:
        server = LocalPostgres(BINARIES)
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"no PostgreSQL server can be started here: {exc}")
    try:
        server.create_database("dagster")
        server.create_database("mlflow")
        yield server
    finally:
        server.close()


def test_the_profile_loads_as_a_dagster_instance(postgres, tmp_path, monkeypatch):
    import dagster as dg

    dagster_home = tmp_path / "dagster"
    dagster_home.mkdir()
    shutil.copy(ROOT / "deploy" / "dagster.yaml", dagster_home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    monkeypatch.setenv("DCICD_DAGSTER_POSTGRES_URL", postgres.url("dagster"))
    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 2
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1


def test_a_full_refresh_lands_runs_materializations_and_models_in_postgres(postgres, tmp_path):
    import dagster as dg

    from dcicd_platform.demo.generator import generate_organisation
    from dcicd_platform.demo.organisation import demo_config_yaml

    dagster_home = tmp_path / "dagster"
    dagster_home.mkdir()
    shutil.copy(ROOT / "deploy" / "dagster.yaml", dagster_home / "dagster.yaml")
    config = tmp_path / "dcicd.yaml"
    config.write_text(demo_config_yaml())
    env = os.environ | {
        "DCICD_HOME": str(tmp_path / "home"),
        "DCICD_CONFIG": str(config),
        "DAGSTER_HOME": str(dagster_home),
        "DCICD_DAGSTER_POSTGRES_URL": postgres.url("dagster"),
        "MLFLOW_TRACKING_URI": postgres.url("mlflow"),
    }
    files = generate_organisation(
        tmp_path / "exports", seed=3, days=30, end=datetime(2026, 6, 1, tzinfo=UTC)
    )
    for args in (["ingest", *map(str, files)], ["refresh"]):
        done = subprocess.run(
            [sys.executable, "-m", "dcicd_platform.cli", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert done.returncode == 0, done.stderr[-3000:]
    # Nothing of Dagster's went to files in the home: it is all in PostgreSQL.
    assert not (tmp_path / "home" / "dagster").exists()
    assert not list(dagster_home.glob("**/*.db"))
    (run_id, status, job), *_ = postgres.query(
        "dagster", "SELECT run_id, status, pipeline_name FROM runs ORDER BY create_timestamp"
    )
    assert (status, job) == ("SUCCESS", "refresh")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DAGSTER_HOME", str(dagster_home))
        patch.setenv("DCICD_DAGSTER_POSTGRES_URL", postgres.url("dagster"))
        with dg.DagsterInstance.get() as instance:
            event = instance.get_latest_materialization_event(
                dg.AssetKey(["marts", "dora_summary"])
            )
            assert event is not None and event.run_id == run_id
    # The MLflow registry and its runs are in the mlflow database.
    models = dict(postgres.query("mlflow", "SELECT name, 1 FROM registered_models"))
    assert {"build_duration", "build_outcome"} <= set(models)
    aliases = postgres.query("mlflow", "SELECT name, alias FROM registered_model_aliases")
    assert ("build_duration", "champion") in aliases
    assert postgres.query("mlflow", "SELECT count(*) FROM runs")[0][0] >= 2
