"""ml/anomalies: every detector of ml/anomaly/ over the warehouse, upserted by stable key."""

import dagster as dg

from dbt_like_sql import tables_read
from dcicd_platform.assets.versions import table_version
from dcicd_platform.resources import DUCKDB_POOL, SettingsResource, WarehouseResource
from ml.anomaly import SQL as DETECTOR_SQL
from ml.anomaly.detect import detect_and_store

# Tables written by an asset of another name: raw.files is the ledger the raw/events asset
# keeps of the files it loaded (the collection detector reads when each was loaded).
WRITTEN_BY = {("raw", "files"): ("raw", "events")}
# The tables the detectors' SQL reads, parsed as the SQL models' are (never listed by hand).
READS = sorted({WRITTEN_BY.get(table, table) for sql in DETECTOR_SQL for table in tables_read(sql)})


@dg.asset(
    key=["ml", "anomalies"],
    deps=[dg.AssetKey(k) for k in READS],
    group_name="ml",
    kinds={"duckdb", "python"},
    pool=DUCKDB_POOL,
    owners=["team:platform"],
    description="Slow builds, failure-rate jumps, CI cost spikes and budget overruns, unhealthy "
    "deployments (canary analysis of health samples), models under their quality floor and "
    "webhooks that miss runs, fall behind or go quiet: "
    "one row per anomaly, with a stable key, severity and a one-line explanation.",
)
def anomalies(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, settings: SettingsResource
) -> dg.MaterializeResult:
    from dcicd_platform.automation.interventions import effective_mode

    config = settings.load()
    with warehouse.get_connection() as conn:
        # predictions feed the slow-build judgement only while they are live (`dcicd switch`)
        use_predictions = effective_mode(conn, config, "predictions") == "live"
        # what changed since the last run, judged again; the rest stands
        counts, _ = detect_and_store(
            conn, config.anomalies, config.automation.rollback_window_minutes, use_predictions
        )
        by_kind = conn.execute(
            "SELECT kind, severity, count(*) FROM ml.anomalies WHERE cleared_at IS NULL"
            " GROUP BY ALL ORDER BY kind, severity"
        ).fetchall()
        latest = conn.execute(
            "SELECT kind, severity, explanation FROM ml.anomalies WHERE cleared_at IS NULL"
            " AND severity = 'critical' ORDER BY detected_at DESC LIMIT 10"
        ).fetchall()
        # last_seen_at moves at every look, and no reader uses it
        version = table_version(conn, "ml.anomalies", exclude=("last_seen_at",))
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
        },
        data_version=version,
    )
