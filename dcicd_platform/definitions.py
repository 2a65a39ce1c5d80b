"""The one code location: assembles what the rooms define and applies global settings once."""

from __future__ import annotations

import warnings
from pathlib import Path

import dagster as dg

from dcicd_platform.assets.anomalies import anomalies
from dcicd_platform.assets.config_tables import config_tables
from dcicd_platform.assets.history_import import (
    history_import_job,
    hourly_history_import,
    import_assets,
)
from dcicd_platform.assets.ml_models import ml_table_assets, training_assets
from dcicd_platform.assets.raw_events import raw_events
from dcicd_platform.assets.report import weekly_review
from dcicd_platform.assets.snapshot import snapshot_asset
from dcicd_platform.assets.sources import ops_actions
from dcicd_platform.assets.sql_models import sql_model_assets
from dcicd_platform.automation.anomaly_sensor import anomaly_actions
from dcicd_platform.automation.jobs import (
    ingest_job,
    refresh_data_job,
    refresh_job,
    refresh_schedule,
    report_job,
    report_schedule,
    retrain_job,
    retrain_schedule,
    score_job,
    watch_job,
    watch_schedule,
)
from dcicd_platform.automation.landing_sensor import landing_sensor
from dcicd_platform.automation.response_jobs import RESPONSE_JOBS
from dcicd_platform.automation.self_watch import (
    SELF_WATCH_JOBS,
    SELF_WATCH_SENSORS,
    retention_schedule,
)
from dcicd_platform.automation.watch_trigger import watch_on_new_events
from dcicd_platform.checks.asset_checks import quality_checks
from dcicd_platform.checks.freshness import raw_events_freshness
from dcicd_platform.config import ConfigError, load_config
from dcicd_platform.home import Home
from dcicd_platform.resources import (
    HomeResource,
    MlflowResource,
    SettingsResource,
    configured_memory_limit,
    secrets_from_env,
    warehouse_resource,
)


def _reporting_zone(config_file: str) -> str:
    """The reporting time zone the weekly review's schedule keeps; a configuration that cannot
    be read gives UTC here (every run then stops on the configuration's own error)."""
    try:
        return load_config(Path(config_file) if config_file else None).reporting.time_zone
    except ConfigError:
        return "UTC"


def build_definitions(home: Home | None = None, config_file: str = "") -> dg.Definitions:
    """The platform's definitions over a home (default: DCICD_HOME)."""
    home = home or Home.from_env()
    tables = [raw_events, config_tables, *sql_model_assets(), *ml_table_assets, anomalies]
    published = [key for assets_def in tables for key in assets_def.keys]
    defs = dg.Definitions(
        assets=[
            *tables,
            *training_assets,
            snapshot_asset(published),
            ops_actions,
            weekly_review,
            *import_assets,
        ],
        asset_checks=[*quality_checks(), raw_events_freshness],
        jobs=[
            refresh_job,
            refresh_data_job,
            retrain_job,
            score_job,
            watch_job,
            ingest_job,
            report_job,
            history_import_job,
            *RESPONSE_JOBS,
            *SELF_WATCH_JOBS,
        ],
        schedules=[
            refresh_schedule,
            retrain_schedule,
            watch_schedule,
            report_schedule(_reporting_zone(config_file)),
            hourly_history_import,
            retention_schedule,
        ],
        sensors=[landing_sensor, watch_on_new_events, anomaly_actions, *SELF_WATCH_SENSORS],
        # Every step writes the one DuckDB file, one at a time (the duckdb pool): a process per
        # step would only add start-up time.
        executor=dg.in_process_executor,
        resources={
            "warehouse": warehouse_resource(home.warehouse, configured_memory_limit(config_file)),
            "home": HomeResource(root=str(home.root)),
            "settings": SettingsResource(config_file=config_file),
            "secrets": secrets_from_env(),
            "mlflow": MlflowResource(
                tracking_uri=home.mlflow_tracking_uri, artifacts=str(home.mlflow_artifacts)
            ),
        },
    )
    # Binding the resources to the sensors' jobs, Dagster copies each sensor with `owners=[]`
    # and warns that this parameter (which no sensor here sets) is in beta: nothing for a user to
    # act on, printed at every load. The repository is built once here, that warning ignored.
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore",
            message=r"Parameter `owners` of initializer `SensorDefinition\.__init__`",
            category=dg.BetaWarning,
        )
        defs.get_repository_def()
    return defs


defs = build_definitions()
