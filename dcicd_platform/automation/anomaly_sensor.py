"""The sensor that turns anomalies into actions: rollback, alert or model rollback.

A critical deployment_health anomaly asks for a rollback, a critical model_accuracy anomaly
for a model rollback and an alert, any other anomaly at or above
`anomalies.min_severity_to_alert` for an alert (routed by its kind and severity); an
alert whose anomaly cleared, for its resolution; a failed GitHub run whose failed jobs are all
known flakes, for a re-run of those jobs (self-healing); the alert catalogue's conditions on
the platform as a whole (health score, false-positive rates: catalogue.py), for a platform
alert or its resolution. Only
anomalies detected within `automation.act_on_anomalies_within_hours` are acted on (older ones
are history), and the run key (job and the anomaly's occurrence) makes each act at most once:
an anomaly that cleared and came back is a new occurrence, alerted (and resolved) again. It
reads the warehouse read-only (the last published snapshot while a refresh writes).

It reacts to new anomalies: every 5 seconds it asks the Dagster instance (not the warehouse)
whether ml/anomalies was materialized since it last looked, and reads the warehouse when it
was; it reads it at least every minute regardless (approvals, clearings, flaky re-runs). A new
materialization read only from the snapshot (a writer held the warehouse) is read again at the
next tick, until the live warehouse answers: the snapshot may predate it.
"""

import json
import time
from datetime import UTC, datetime, timedelta

import dagster as dg

from dbt_like_sql.catalog import existing_tables
from dcicd_platform.automation.catalogue import catalogue_runs
from dcicd_platform.automation.responders import flaky_failures, occurrence_key
from dcicd_platform.automation.response_jobs import OP_OF, alert, model_rollback, rerun, rollback
from dcicd_platform.automation.self_watch import platform_alert
from dcicd_platform.automation.watch_trigger import new_materializations
from dcicd_platform.resources import HomeResource, SettingsResource, read_only_connection

SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}


# What runs first when many are asked for at once: a rollback is racing its window. The
# daemon's queue honours `dagster/priority` (higher first); `dcicd act` runs them in this order.
PRIORITY = {"rollback": 10, "model_rollback": 5, "alert": 0, "platform_alert": 0, "rerun": -5}


def _by_urgency(requests: list[dg.RunRequest]) -> list[dg.RunRequest]:
    prioritized = [
        r.with_replaced_attrs(tags={**r.tags, "dagster/priority": str(PRIORITY[r.job_name])})
        for r in requests
    ]
    return sorted(prioritized, key=lambda r: -PRIORITY[r.job_name])


def jobs_for(kind: str, severity: str, min_severity: str) -> list[str]:
    """What an anomaly asks for: a critical unhealthy deployment a rollback; a model under its
    floor a model rollback and (the alert catalogue) a critical alert; any other anomaly at or
    above min_severity an alert."""
    if kind == "deployment_health" and severity == "critical":
        return ["rollback"]
    if kind == "model_accuracy" and severity == "critical":
        return ["model_rollback", "alert"]
    if SEVERITY_RANK[severity] >= SEVERITY_RANK[min_severity]:
        return ["alert"]
    return []


def planned_runs(conn, min_severity: str, since: datetime) -> list[dg.RunRequest]:
    tables = existing_tables(conn)
    if "ml.anomalies" not in tables:
        return []
    rows = conn.execute(
        f"SELECT anomaly_key, kind, severity, service, {_occurrence(conn)} FROM ml.anomalies"
        " WHERE cleared_at IS NULL AND detected_at >= ? ORDER BY detected_at",
        [since],
    ).fetchall()
    requests = []
    for key, kind, severity, service, occurrence in rows:
        for job in jobs_for(kind, severity, min_severity):
            requests.append(
                dg.RunRequest(
                    run_key=f"{job}:{occurrence_key(key, occurrence)}",
                    job_name=job,
                    run_config={"ops": {OP_OF[job]: {"config": {"anomaly_key": key}}}},
                    tags={"dcicd/anomaly": key, "dcicd/service": service or ""},
                )
            )
    return _by_urgency(requests + _resolutions(conn, tables) + _reruns(conn, tables, since))


def _occurrence(conn) -> str:
    """The occurrence column, or 1 in a warehouse from before it (its anomalies' first)."""
    found = conn.execute(
        "SELECT count(*) FROM duckdb_columns() WHERE schema_name = 'ml'"
        " AND table_name = 'anomalies' AND column_name = 'occurrence'"
    ).fetchall()[0][0]
    return "occurrence" if found else "1"


def _reruns(conn, tables: set[str], since: datetime) -> list[dg.RunRequest]:
    """Failed GitHub runs whose failed jobs are all known flakes: re-run them, once."""
    if not {"core.pipeline_runs", "core.pipeline_jobs", "marts.flaky_jobs"} <= tables:
        return []
    return [
        dg.RunRequest(
            run_key=f"rerun:{run_key}",
            job_name="rerun",
            run_config={"ops": {"rerun_flaky_jobs": {"config": {"run_key": run_key}}}},
            tags={"dcicd/run": run_key, "dcicd/service": service or ""},
        )
        for run_key, service, *_ in flaky_failures(conn, since)
    ]


def _resolutions(conn, tables: set[str]) -> list[dg.RunRequest]:
    """Alerts that were sent for an occurrence of an anomaly that has since cleared: resolve
    that occurrence."""
    if "ops.actions" not in tables:
        return []
    sent = {
        action_id
        for (action_id,) in conn.execute(
            "SELECT action_id FROM ops.actions WHERE kind = 'alert' AND decision = 'executed'"
        ).fetchall()
    }
    rows = conn.execute(
        f"SELECT anomaly_key, {_occurrence(conn)} FROM ml.anomalies"
        " WHERE cleared_at IS NOT NULL AND anomaly_key IN"
        " (SELECT anomaly_key FROM ops.actions WHERE kind = 'alert' AND decision = 'executed')"
    ).fetchall()
    return [
        dg.RunRequest(
            run_key=f"resolve:{occurrence_key(key, occurrence)}",
            job_name="alert",
            run_config={"ops": {"send_alert": {"config": {"anomaly_key": key, "resolve": True}}}},
            tags={"dcicd/anomaly": key},
        )
        for key, occurrence in rows
        if f"alert:{occurrence_key(key, occurrence)}" in sent
    ]


ANOMALIES = dg.AssetKey(["ml", "anomalies"])
# Between two looks at the warehouse when no anomaly is new (approvals, clearings, re-runs).
FULL_PASS_SECONDS = 60


@dg.sensor(
    jobs=[rollback, alert, model_rollback, rerun, platform_alert],
    minimum_interval_seconds=5,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Acts on new anomalies within the guardrails (mode, window, cap, approval): "
    "as soon as ml/anomalies is materialized, and at least every minute.",
)
def anomaly_actions(
    context: dg.SensorEvaluationContext, home: HomeResource, settings: SettingsResource
):
    # The cursor: the newest ml/anomalies materialization read from the live warehouse, and
    # when the warehouse was last read.
    state = json.loads(context.cursor) if context.cursor else {}
    seen, last_pass = state.get("seen"), state.get("read_at", 0.0)
    latest = new_materializations(context.instance, ANOMALIES, seen, limit=1)
    if not latest and time.time() - last_pass < FULL_PASS_SECONDS:
        return dg.SkipReason("no new anomalies since the last look")
    config = settings.load()
    if config.automation.mode == "off":
        return dg.SkipReason("automation mode is off")
    warehouse = home.home.warehouse
    if not warehouse.exists():
        return dg.SkipReason(f"no warehouse at {warehouse} yet")
    since = datetime.now(UTC) - timedelta(hours=config.automation.act_on_anomalies_within_hours)
    with read_only_connection(warehouse) as conn:
        requests = planned_runs(conn, config.anomalies.min_severity_to_alert, since)
        requests = _by_urgency(requests + catalogue_runs(conn, config))
        live = conn.dcicd_source == "live"
    if latest and live:
        seen = latest[0].storage_id
    context.update_cursor(json.dumps({"seen": seen, "read_at": time.time()}))
    if not requests:
        return dg.SkipReason("no new anomaly to act on")
    return requests
