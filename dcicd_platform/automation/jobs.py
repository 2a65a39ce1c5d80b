"""The jobs users and schedules launch."""

import dagster as dg

refresh_job = dg.define_asset_job(
    "refresh",
    selection=dg.AssetSelection.all(),
    description="Materialize the whole asset graph once: ingestion, core tables and marts.",
)

ingest_job = dg.define_asset_job(
    "ingest_landing_file",
    selection=dg.AssetSelection.assets(dg.AssetKey(["raw", "events"])),
    description="Load landing files into raw.events (the landing sensor launches one per file).",
)

refresh_schedule = dg.ScheduleDefinition(
    name="hourly_refresh",
    job=refresh_job,
    cron_schedule="0 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Refresh everything hourly, as the dashboards expect.",
)
