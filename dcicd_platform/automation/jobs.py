"""The jobs users and schedules launch."""

from datetime import timedelta

import dagster as dg

TRAINING = dg.AssetSelection.assets(
    dg.AssetKey(["ml", "build_duration_model"]), dg.AssetKey(["ml", "build_outcome_model"])
)
SCORING = dg.AssetSelection.assets(dg.AssetKey(["ml", "build_predictions"]))
REPORT = dg.AssetSelection.assets(dg.AssetKey(["reports", "weekly_review"]))
# The history import calls the providers' APIs: only its own job runs it.
IMPORTS = dg.AssetSelection.groups("import")

refresh_job = dg.define_asset_job(
    "refresh",
    selection=dg.AssetSelection.all() - IMPORTS,
    description="Materialize the whole asset graph once: ingestion, core tables, marts, "
    "scoring, training and the weekly report (what `dcicd refresh` runs).",
)

refresh_data_job = dg.define_asset_job(
    "refresh_data",
    selection=dg.AssetSelection.all() - TRAINING - REPORT - IMPORTS,
    description="Everything but model training and the weekly report: new runs are scored by "
    "the current champions.",
)

retrain_job = dg.define_asset_job(
    "retrain",
    selection=SCORING | TRAINING,
    description="Score what is new with the current champions, then train challengers.",
)

score_job = dg.define_asset_job(
    "score",
    selection=SCORING
    | dg.AssetSelection.assets(
        dg.AssetKey(["ml", "model_quality"]),
        dg.AssetKey(["ml", "anomalies"]),
        dg.AssetKey(["warehouse", "snapshot"]),
    ),
    description="Score the runs no champion has scored yet, measure the champions live, and "
    "look for anomalies again.",
)

ANOMALIES = dg.AssetSelection.assets(dg.AssetKey(["ml", "anomalies"]))
RAW = dg.AssetSelection.assets(dg.AssetKey(["raw", "events"]))

# One watch run at a time (a tag limit in dcicd's dagster.yaml): two would take turns at the
# warehouse's one writer slot, step by step, and both finish late.
SERIAL_TAG = "dcicd/serial"

watch_job = dg.define_asset_job(
    "watch",
    tags={SERIAL_TAG: "watch"},
    # the config tables are written together: the watch writes them all
    selection=(ANOMALIES.upstream() - RAW - TRAINING).required_multi_asset_neighbors(),
    description="The tables anomalies are found in, and the anomalies: run every few minutes so "
    "a bad deployment is judged while it can still be rolled back (raw.events is loaded by the "
    "landing sensor as files arrive).",
)

RECENT_WATCH = timedelta(minutes=4)
IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


@dg.schedule(
    name="watch_every_5_minutes",
    job=watch_job,
    cron_schedule="*/5 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Look for anomalies every 5 minutes, the safety net of the watch that new "
    "health samples and deployments start (watch_on_new_events); skipped while a watch run is "
    "queued or running, or one started in the last 4 minutes: it would only delay the next "
    "watch that new samples start.",
)
def watch_schedule(context: dg.ScheduleEvaluationContext):
    watches = dg.RunsFilter(job_name=watch_job.name, statuses=IN_FLIGHT)
    if context.instance.get_runs_count(watches):
        return dg.SkipReason("a watch run is already queued or running")
    since = context.scheduled_execution_time - RECENT_WATCH
    recent = dg.RunsFilter(job_name=watch_job.name, created_after=since)
    if context.instance.get_runs_count(recent):
        return dg.SkipReason("a watch ran in the last 4 minutes (started by new samples)")
    return dg.RunRequest()


retrain_schedule = dg.ScheduleDefinition(
    name="daily_retrain",
    job=retrain_job,
    cron_schedule="30 3 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Retrain the build predictors daily; each is promoted only if it is better.",
)

ingest_job = dg.define_asset_job(
    "ingest_landing_file",
    selection=dg.AssetSelection.assets(dg.AssetKey(["raw", "events"])),
    description="Load landing files into raw.events (the landing sensor launches one per file).",
)

refresh_schedule = dg.ScheduleDefinition(
    name="hourly_refresh",
    job=refresh_data_job,
    cron_schedule="0 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Refresh every table hourly and score new runs (training is daily).",
)


report_job = dg.define_asset_job(
    "weekly_report",
    selection=REPORT,
    description="Write the weekly review report of the last complete ISO week (or of the "
    "`week` given in the launchpad config).",
)


def report_schedule(time_zone: str = "UTC") -> dg.ScheduleDefinition:
    """Monday 06:00 in the reporting time zone: the week the report covers (that zone's) has
    just ended there, whichever side of UTC it lies."""
    return dg.ScheduleDefinition(
        name="weekly_review",
        job=report_job,
        cron_schedule="0 6 * * 1",
        execution_timezone=time_zone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Monday 06:00 {time_zone}: the report of the week that just ended.",
    )
