"""The watch, started by what it judges: health samples and deployments, as they are loaded.

A bad deployment must be rolled back within minutes, and the `watch_every_5_minutes` schedule
alone lets up to five pass before its samples are judged. This sensor reads the raw/events
materializations since its last tick (each landing file the landing sensor loads is one): when
any loaded a health sample or a deployment (their `watched_events` metadata), it asks for one
`watch` run, unless a watch run is still queued (that one will read them: it has not started).
The schedule stays, as the safety net for everything else the watch judges.
"""

from __future__ import annotations

import dagster as dg

from dcicd_platform.automation.jobs import watch_job

RAW_EVENTS = dg.AssetKey(["raw", "events"])
WAITING = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED]
# Ahead of ingestion runs waiting in the queue, behind the rollbacks the watch may ask for.
WATCH_PRIORITY = "5"


def new_materializations(
    instance: dg.DagsterInstance, asset_key: dg.AssetKey, after: int | None, limit: int = 100
) -> list[dg.EventLogRecord]:
    """The asset's materializations stored after the storage id `after` (all: None), newest
    first, at most `limit` of them."""
    return list(
        instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=asset_key, after_storage_id=after), limit=limit
        ).records
    )


def _watched(record: dg.EventLogRecord) -> int:
    materialization = record.asset_materialization
    value = materialization.metadata.get("watched_events") if materialization else None
    return int(value.value) if value is not None else 0


@dg.sensor(
    name="watch_on_new_events",
    job=watch_job,
    minimum_interval_seconds=5,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Starts the watch as soon as health samples or deployments are loaded "
    "(raw/events materializations), rather than at the next five-minute tick.",
)
def watch_on_new_events(context: dg.SensorEvaluationContext):
    after = int(context.cursor) if context.cursor else None
    records = new_materializations(context.instance, RAW_EVENTS, after)
    if not records:
        return dg.SkipReason("raw/events has not been materialized since the last tick")
    newest = max(r.storage_id for r in records)
    context.update_cursor(str(newest))
    watched = sum(_watched(r) for r in records)
    if not watched:
        return dg.SkipReason(f"{len(records)} new loads, none with health samples or deployments")
    waiting = context.instance.get_runs_count(
        dg.RunsFilter(job_name=watch_job.name, statuses=WAITING)
    )
    if waiting:
        return dg.SkipReason(f"{watched} events to judge: the queued watch run will read them")
    return dg.RunRequest(
        run_key=f"watch:{newest}",
        tags={"dagster/priority": WATCH_PRIORITY, "dcicd/watched_events": str(watched)},
    )
