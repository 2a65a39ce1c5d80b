"""The configuration as tables, so SQL models can join services, settings and rates."""

from collections import Counter

import dagster as dg

from dcicd_platform.assets.versions import table_version
from dcicd_platform.config import PlatformConfig
from dcicd_platform.resources import DUCKDB_POOL, SettingsResource, WarehouseResource

TABLES_DDL = """
CREATE SCHEMA IF NOT EXISTS config;
CREATE OR REPLACE TABLE config.services (
    service VARCHAR PRIMARY KEY, team VARCHAR, criticality VARCHAR,
    repositories VARCHAR[], production_environments VARCHAR[], deployment_workflows VARCHAR[],
    pagerduty_services VARCHAR[], ci_budget_usd_per_deployment DOUBLE,
    monthly_ci_budget_usd DOUBLE
);
-- Which service a repository's events belong to: the one place the mapping is unnested. A
-- repository several services share (split by their paths) is not here: see service_paths.
CREATE OR REPLACE TABLE config.service_repositories (
    service VARCHAR NOT NULL, repo VARCHAR PRIMARY KEY
);
-- Each configured service and repository with the service's paths there (empty: the whole
-- repository) and CI workflow patterns; position orders the services as configured.
CREATE OR REPLACE TABLE config.service_paths (
    service VARCHAR NOT NULL, repo VARCHAR NOT NULL, position INTEGER NOT NULL,
    paths VARCHAR[] NOT NULL, workflows VARCHAR[] NOT NULL, shared BOOLEAN NOT NULL,
    PRIMARY KEY (service, repo)
);
CREATE OR REPLACE TABLE config.runner_rates (
    priority INTEGER PRIMARY KEY, pattern VARCHAR NOT NULL, usd_per_minute DOUBLE NOT NULL
);
CREATE OR REPLACE TABLE config.settings (
    attribution_window_days INTEGER NOT NULL,
    default_usd_per_minute DOUBLE NOT NULL,
    kpi_lead_time_hours DOUBLE NOT NULL,
    kpi_deployments_per_day DOUBLE NOT NULL,
    kpi_change_failure_rate DOUBLE NOT NULL,
    kpi_time_to_restore_minutes DOUBLE NOT NULL,
    kpi_ci_duration_p50_minutes DOUBLE NOT NULL,
    kpi_ci_duration_p95_minutes DOUBLE NOT NULL,
    kpi_cost_per_deployment_tolerance DOUBLE NOT NULL
);
-- The reporting calendar: the zone whose days, ISO weeks and months the marts count in
-- (macros/reporting_calendar.sql); one row.
CREATE OR REPLACE TABLE config.reporting (time_zone VARCHAR NOT NULL);
-- What makes a production deployment rework (marts.deployment_rework); one row.
CREATE OR REPLACE TABLE config.dora (rework_window_hours DOUBLE NOT NULL, hotfix_pattern VARCHAR);
-- The thresholds of the advice (marts.recommendation_history); one row, a column per key of
-- `recommendations` in the configuration.
CREATE OR REPLACE TABLE config.recommendations (
    window_days INTEGER NOT NULL, history_weeks INTEGER NOT NULL,
    min_saving_minutes_per_month DOUBLE NOT NULL, min_saving_usd_per_month DOUBLE NOT NULL,
    min_executions INTEGER NOT NULL, flaky_min_flakes INTEGER NOT NULL,
    job_timeout_minutes DOUBLE NOT NULL, timeout_ratio DOUBLE NOT NULL,
    timeout_headroom DOUBLE NOT NULL, cache_min_step_seconds DOUBLE NOT NULL,
    cache_max_variation DOUBLE NOT NULL, cache_step_pattern VARCHAR NOT NULL,
    cache_restore_seconds DOUBLE NOT NULL,
    queue_target_seconds DOUBLE NOT NULL, schedule_queue_ratio DOUBLE NOT NULL,
    hibernate_after_days INTEGER NOT NULL, environment_usd_per_hour DOUBLE NOT NULL
);
-- Read by `dcicd status`, never by a SQL model: switching the mode rebuilds nothing.
CREATE OR REPLACE TABLE config.automation (
    mode VARCHAR NOT NULL, max_rollbacks_per_service_per_day INTEGER NOT NULL,
    rollback_window_minutes INTEGER NOT NULL
);
"""


def write_config_tables(conn, config: PlatformConfig) -> dict[str, int]:
    """Replace the config.* tables with the configuration; returns each table's row count."""
    services = [
        (
            s.name,
            s.team,
            s.criticality,
            s.repositories,
            s.production_environments,
            s.deployment_workflows,
            s.pagerduty_services,
            s.ci_budget_usd_per_deployment,
            s.monthly_ci_budget_usd,
        )
        for s in config.services
    ]
    paths = [
        (s.name, repo, position, s.paths, s.workflows)
        for position, s in enumerate(config.services)
        for repo in s.repositories
    ]
    sharers = Counter(repo for _, repo, *_ in paths)
    rates = [(i, r.pattern, r.usd_per_minute) for i, r in enumerate(config.ci_cost.runner_rates)]
    k = config.kpi_targets
    settings = (
        config.attribution_window_days,
        config.ci_cost.default_usd_per_minute,
        k.lead_time_hours,
        k.deployments_per_day,
        k.change_failure_rate,
        k.time_to_restore_minutes,
        k.ci_duration_p50_minutes,
        k.ci_duration_p95_minutes,
        k.cost_per_deployment_tolerance,
    )
    conn.execute("BEGIN TRANSACTION")
    try:
        conn.execute(TABLES_DDL)
        if services:
            conn.executemany(
                "INSERT INTO config.services VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", services
            )
        if paths:
            conn.executemany(
                "INSERT INTO config.service_paths VALUES (?, ?, ?, ?, ?, ?)",
                [(*row, sharers[row[1]] > 1) for row in paths],
            )
        conn.execute(
            "INSERT INTO config.service_repositories"
            " SELECT service, repo FROM config.service_paths WHERE NOT shared"
        )
        if rates:
            conn.executemany("INSERT INTO config.runner_rates VALUES (?, ?, ?)", rates)
        conn.execute("INSERT INTO config.settings VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", settings)
        conn.execute("INSERT INTO config.reporting VALUES (?)", [config.reporting.time_zone])
        conn.execute(
            "INSERT INTO config.dora VALUES (?, ?)",
            [config.dora.rework_window_hours, config.dora.hotfix_pattern],
        )
        advice = config.recommendations.model_dump()
        conn.execute(
            f"INSERT INTO config.recommendations ({', '.join(advice)})"
            f" VALUES ({', '.join('?' for _ in advice)})",
            list(advice.values()),
        )
        a = config.automation
        conn.execute(
            "INSERT INTO config.automation VALUES (?, ?, ?)",
            [a.mode, a.max_rollbacks_per_service_per_day, a.rollback_window_minutes],
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return {
        "services": len(services),
        "service_repositories": sum(1 for n in sharers.values() if n == 1),
        "service_paths": len(paths),
        "runner_rates": len(rates),
        "settings": 1,
        "automation": 1,
        "reporting": 1,
        "dora": 1,
        "recommendations": 1,
    }


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            ["config", name],
            description=description,
            group_name="config",
            kinds={"duckdb"},
            owners=["team:platform"],
        )
        for name, description in (
            ("services", "Configured services: repositories, environments, budgets."),
            (
                "service_repositories",
                "Each configured repository of one service, and the service it belongs to.",
            ),
            (
                "service_paths",
                "Each configured service and repository, with the service's paths there and "
                "its CI workflow patterns (repositories services share are split by paths).",
            ),
            ("runner_rates", "Per-minute CI prices by runner label pattern, first match wins."),
            ("settings", "Attribution window, default rate and KPI targets."),
            ("automation", "The automation's mode and guardrails (read by `dcicd status`)."),
            ("reporting", "The reporting time zone: the days, weeks and months of the marts."),
            ("dora", "What makes a production deployment rework: window and hotfix pattern."),
            ("recommendations", "The advice's thresholds: evidence window, minimum savings."),
        )
    ],
    pool=DUCKDB_POOL,
)
def config_tables(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, settings: SettingsResource
):
    """The platform configuration, as tables the SQL models read."""
    with warehouse.get_connection() as conn:
        counts = write_config_tables(conn, settings.load())
        versions = {name: table_version(conn, f"config.{name}") for name in counts}
    context.log.info(f"{counts['services']} configured services")
    for name, count in counts.items():
        yield dg.MaterializeResult(
            asset_key=["config", name],
            metadata={"dagster/row_count": count},
            data_version=versions[name],
        )
