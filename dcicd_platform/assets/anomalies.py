"""ml/anomalies: every detector of ml/anomaly.py over the warehouse, upserted by stable key."""

import dagster as dg

from dcicd_platform.resources import DUCKDB_POOL, SettingsResource, WarehouseResource

READS = [
    ["core", "pipeline_runs"],
    ["core", "pipeline_jobs"],
    ["core", "health_samples"],
    ["core", "incidents"],
    ["config", "services"],
    ["marts", "production_deployments"],
    ["marts", "ci_cost_daily"],
    ["marts", "ci_run_costs"],
    ["ml", "build_predictions"],
    ["ml", "model_quality"],
]


@dg.asset(
    key=["ml", "anomalies"],
    deps=[dg.AssetKey(k) for k in READS],
    group_name="ml",
    kinds={"duckdb", "python"},
    pool=DUCKDB_POOL,
    owners=["team:platform"],
    description="Slow builds, failure-rate jumps, CI cost spikes and budget overruns, unhealthy "
    "deployments (canary analysis of health samples) and models under their quality floor: "
    "one row per anomaly, with a stable key, severity and a one-line explanation.",
)
def anomalies(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, settings: SettingsResource
) -> dg.MaterializeResult:
    from ml.anomaly import Thresholds, detect_all, store

    config = settings.load()
    a = config.anomalies
    thresholds = Thresholds(
        build_duration_ratio=a.build_duration_ratio,
        job_shift_ratio=a.job_shift_ratio,
        failure_rate_p_value=a.failure_rate_p_value,
        cost_robust_z=a.cost_robust_z,
        cost_min_excess_usd=a.cost_min_excess_usd,
        health_p_value=a.health_p_value,
        health_min_effect=a.health_min_effect,
        health_window_minutes=config.automation.rollback_window_minutes,
    )
    with warehouse.get_connection() as conn:
        counts = store(conn, detect_all(conn, thresholds))
        by_kind = conn.execute(
            "SELECT kind, severity, count(*) FROM ml.anomalies WHERE cleared_at IS NULL"
            " GROUP BY ALL ORDER BY kind, severity"
        ).fetchall()
        latest = conn.execute(
            "SELECT kind, severity, explanation FROM ml.anomalies WHERE cleared_at IS NULL"
            " AND severity = 'critical' ORDER BY detected_at DESC LIMIT 10"
        ).fetchall()
    context.log.info(
        f"anomalies: {counts['new']} new, {counts['found']} open, {counts['cleared']} cleared"
    )
    table = ["| kind | severity | open |", "|---|---|---|"]
    table += [f"| {k} | {s} | {n} |" for k, s, n in by_kind]
    recent = "\n".join(f"- **{k}**: {e}" for k, _, e in latest) or "none"
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": counts["found"],
            "new": counts["new"],
            "cleared": counts["cleared"],
            "open_by_kind": dg.MetadataValue.md("\n".join(table)),
            "latest_critical": dg.MetadataValue.md(recent),
        }
    )
