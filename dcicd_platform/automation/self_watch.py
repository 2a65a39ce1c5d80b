"""The platform watching itself: failed runs and a filling disk alert, old raw payloads go.

- `run_failures` (a run-failure sensor) asks for a `platform_alert` run for every failed run
  of the jobs that keep the platform's data and models up to date or act on them: refreshes,
  the watch, ingestion, the history import, training, scoring, the weekly report, rollbacks
  and re-runs. The alert jobs themselves are left out: a failing alert cannot alert.
- `warehouse_storage` asks for one when the disk holding the warehouse is at least
  `monitoring.storage_alert_percent` full, once per time it crosses the line, and resolves it
  when the disk falls back under.
- `platform_alert` sends through the anomalies' channels (Slack, PagerDuty, the alert webhook),
  audited in ops.actions like every alert and only sent in `live` mode (responders.py). It does
  not depend on the tables it may be alerting about: a platform that cannot refresh still pages.
- `raw_retention` (daily) drops the payloads older than `raw.retention_days`
  (dbt_like_sql/retention.py); with none set, it keeps everything.
"""

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg

from dcicd_platform.assets.history_import import history_import_job
from dcicd_platform.automation import jobs, responders
from dcicd_platform.automation.response_jobs import (
    _secrets,
    model_rollback,
    rerun,
    response_op,
    rollback,
)
from dcicd_platform.resources import (
    DUCKDB_POOL,
    HomeResource,
    SettingsResource,
    WarehouseResource,
)


class PlatformAlertConfig(dg.Config):
    """One alert about the platform: `key` dedupes it (PagerDuty) and names its audit row."""

    key: str
    kind: str  # run_failure | storage
    severity: str = "warning"
    explanation: str
    entity_key: str = ""  # the failed run's id, or the warehouse's path
    resolve: bool = False


send_platform_alert = response_op(
    "send_platform_alert",
    lambda conn, config, r: responders.respond_platform_alert(
        conn,
        config.key,
        config.kind,
        config.severity,
        config.explanation,
        r.settings.load(),
        entity_key=config.entity_key or None,
        secrets=_secrets(r.secrets),
        resolve=config.resolve,
    ),
    frozenset({"secrets"}),
    PlatformAlertConfig,
)


@dg.job(description="Alert on the platform itself: a failed run, a disk filling up.")
def platform_alert():
    send_platform_alert()


MONITORED = [
    jobs.refresh_job,
    jobs.refresh_data_job,
    jobs.watch_job,
    jobs.score_job,
    jobs.retrain_job,
    jobs.ingest_job,
    jobs.report_job,
    history_import_job,
    rollback,
    model_rollback,
    rerun,
]
CRITICAL_WHEN_FAILED = {"rollback", "model_rollback"}  # a rollback that did not happen


def run_failure_request(run: dg.DagsterRun, message: str) -> dg.RunRequest:
    """The platform_alert run for one failed run (run key: the failed run's id, so it alerts
    once whatever the sensor's ticks)."""
    first_line = (message or "").strip().splitlines()[0] if message else "no message"
    explanation = f"dcicd: the {run.job_name} run {run.run_id[:8]} failed: {first_line}"
    return dg.RunRequest(
        run_key=f"run_failure:{run.run_id}",
        run_config={
            "ops": {
                "send_platform_alert": {
                    "config": {
                        "key": f"run_failure:{run.run_id}",
                        "kind": "run_failure",
                        "severity": "critical"
                        if run.job_name in CRITICAL_WHEN_FAILED
                        else "warning",
                        "explanation": explanation,
                        "entity_key": run.run_id,
                    }
                }
            }
        },
        tags={"dcicd/failed_run": run.run_id, "dcicd/failed_job": run.job_name},
    )


@dg.run_failure_sensor(
    name="run_failures",
    monitored_jobs=MONITORED,
    request_job=platform_alert,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Alerts on every failed refresh, watch, ingestion, import, training, scoring, "
    "report, rollback or re-run (the platform_alert job; sent in live mode).",
)
def run_failures(context: dg.RunFailureSensorContext):
    return run_failure_request(context.dagster_run, context.failure_event.message or "")


def disk_use_percent(path: Path) -> tuple[float, int]:
    """How full the disk holding path is, as `df` counts it (used / (used + available to
    users)), in percent; and the bytes available."""
    usage = shutil.disk_usage(path)
    return 100 * usage.used / (usage.used + usage.free), usage.free


def _storage_request(key: str, explanation: str, where: str, resolve: bool) -> dg.RunRequest:
    return dg.RunRequest(
        run_key=("resolve:" if resolve else "") + key,
        job_name="platform_alert",
        run_config={
            "ops": {
                "send_platform_alert": {
                    "config": {
                        "key": key,
                        "kind": "storage",
                        "severity": "critical",
                        "explanation": explanation,
                        "entity_key": where,
                        "resolve": resolve,
                    }
                }
            }
        },
    )


@dg.sensor(
    name="warehouse_storage",
    jobs=[platform_alert],
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Alerts when the disk holding the warehouse is at least "
    "monitoring.storage_alert_percent full (once per crossing; resolved when it falls back).",
)
def warehouse_storage(
    context: dg.SensorEvaluationContext, home: HomeResource, settings: SettingsResource
):
    # The cursor: how many times the disk crossed the line, and whether it is over it now.
    state = json.loads(context.cursor) if context.cursor else {"crossings": 0, "over": False}
    limit = settings.load().monitoring.storage_alert_percent
    warehouse = home.home.warehouse
    where = warehouse if warehouse.exists() else home.home.root
    if not where.exists():
        return dg.SkipReason(f"no home at {where} yet")
    used, free = disk_use_percent(where)
    key = f"storage:{state['crossings']}"
    if used >= limit and not state["over"]:
        state = {"crossings": state["crossings"] + 1, "over": True}
        key = f"storage:{state['crossings']}"
        size = warehouse.stat().st_size if warehouse.exists() else 0
        explanation = (
            f"dcicd: the disk holding the warehouse ({warehouse}) is {used:.1f}% full (alert at"
            f" {limit:g}%): {free / 1e9:.1f} GB left, the warehouse takes {size / 1e9:.2f} GB"
        )
        context.update_cursor(json.dumps(state))
        return [_storage_request(key, explanation, str(warehouse), resolve=False)]
    if used < limit and state["over"]:
        context.update_cursor(json.dumps({**state, "over": False}))
        explanation = f"dcicd: the warehouse's disk is back to {used:.1f}% (under {limit:g}%)"
        return [_storage_request(key, explanation, str(warehouse), resolve=True)]
    return dg.SkipReason(f"the warehouse's disk is {used:.1f}% full (alert at {limit:g}%)")


@dg.op(pool=DUCKDB_POOL)
def drop_old_payloads(
    context: dg.OpExecutionContext, warehouse: WarehouseResource, settings: SettingsResource
) -> int:
    """Drop the raw payloads older than raw.retention_days; returns how many were dropped."""
    from dbt_like_sql.retention import drop_payloads

    days = settings.load().raw.retention_days
    if days is None:
        context.log.info("raw.retention_days is not set: every payload is kept")
        return 0
    before = datetime.now(UTC) - timedelta(days=days)
    with warehouse.get_connection() as conn:
        dropped = drop_payloads(conn, before)
    context.log.info(
        f"{dropped.total} payloads received before {before:%Y-%m-%d %H:%M} UTC dropped"
        + (f" ({dropped.reason})" if dropped.reason else "")
    )
    context.add_output_metadata(
        {
            "before": before.isoformat(),
            "dropped": dropped.total,
            "by_event_type": dropped.payloads,
            "prunable_event_types": ", ".join(dropped.event_types),
            "keys_kept_per_table": dropped.keys,
        }
    )
    return dropped.total


@dg.job(description="Drop raw payloads older than raw.retention_days; derived rows stay.")
def raw_retention():
    drop_old_payloads()


retention_schedule = dg.ScheduleDefinition(
    name="daily_raw_retention",
    job=raw_retention,
    cron_schedule="15 4 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Daily: drop the raw payloads older than raw.retention_days (none when unset).",
)

SELF_WATCH_JOBS = [platform_alert, raw_retention]
SELF_WATCH_SENSORS = [run_failures, warehouse_storage]
