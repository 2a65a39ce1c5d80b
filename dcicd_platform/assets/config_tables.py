"""The configuration as tables, so SQL models can join services, environments and rates."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from dcicd_platform.config import PlatformConfig
from dcicd_platform.resources import DUCKDB_POOL, SettingsResource

SERVICES_DDL = """
CREATE SCHEMA IF NOT EXISTS config;
CREATE OR REPLACE TABLE config.services (
    service VARCHAR PRIMARY KEY, team VARCHAR, criticality VARCHAR,
    repositories VARCHAR[], production_environments VARCHAR[], deployment_workflows VARCHAR[],
    pagerduty_services VARCHAR[], ci_budget_usd_per_deployment DOUBLE,
    monthly_ci_budget_usd DOUBLE
);
"""


def write_services_table(conn, config: PlatformConfig) -> int:
    """Replace config.services with the configured services; returns how many there are."""
    rows = [
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
    conn.execute("BEGIN TRANSACTION")
    try:
        conn.execute(SERVICES_DDL)
        if rows:
            conn.executemany("INSERT INTO config.services VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return len(rows)


@dg.asset(
    key=["config", "services"],
    group_name="config",
    kinds={"duckdb"},
    pool=DUCKDB_POOL,
    owners=["team:platform"],
)
def config_services(
    context: dg.AssetExecutionContext, warehouse: DuckDBResource, settings: SettingsResource
) -> dg.MaterializeResult:
    """Services from the configuration: their repositories, environments and budgets."""
    with warehouse.get_connection() as conn:
        count = write_services_table(conn, settings.load())
    context.log.info(f"{count} configured services")
    return dg.MaterializeResult(metadata={"dagster/row_count": count})
