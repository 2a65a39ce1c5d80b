"""Runs of the asset graph and of the automation in this process, recorded in the Dagster
instance as the daemon's would be: what `dcicd refresh`, `act`, `approve` and `demo` start.

Dagster and the definitions are imported by the functions, so importing this module is cheap.
"""

from __future__ import annotations

from dataclasses import dataclass

from dcicd_platform.home import Home

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}

# What each step of a refresh belongs to, by its asset key's first part (or whole key).
STAGE_OF = {
    "raw": "ingest",
    "config": "marts",
    "core": "marts",
    "marts": "marts",
    "ops": "marts",
    "ml__build_predictions": "scoring",
    "ml__build_duration_model": "training",
    "ml__build_outcome_model": "training",
    "ml__model_quality": "anomalies",
    "ml__anomalies": "anomalies",
    "reports": "report",
    "warehouse": "publish",
}


class RunFailed(RuntimeError):
    """A run started here failed; the message names what failed and where its log is."""


@dataclass
class Refreshed:
    """What one refresh did: its run, how many assets it materialized, seconds per stage."""

    run_id: str
    materialized: int
    stages: dict[str, float]


def stage_seconds(instance, run_id: str) -> dict[str, float]:
    """Seconds per stage of a run, from Dagster's own step timings."""
    stages: dict[str, float] = {}
    for step in instance.get_run_step_stats(run_id):
        if step.start_time is None or step.end_time is None:
            continue
        key = step.step_key
        stage = STAGE_OF.get(key) or STAGE_OF.get(key.split("__")[0], "checks")
        stages[stage] = stages.get(stage, 0.0) + step.end_time - step.start_time
    return stages


def run_refresh(home: Home, job_name: str = "refresh") -> Refreshed:
    """Materialize the whole graph (or a job's part) once, in this process, recorded in the
    Dagster instance; raises RunFailed naming the failed steps."""
    import dagster as dg

    from dcicd_platform.definitions import build_definitions

    defs = build_definitions(home)
    job = defs.resolve_job_def(job_name)
    with dg.DagsterInstance.get() as instance:
        result = job.execute_in_process(
            instance=instance,
            raise_on_error=False,
            run_config=QUIET,
        )
        stages = stage_seconds(instance, result.run_id)
    if not result.success:
        failed = [e.step_key for e in result.all_events if e.is_step_failure]
        raise RunFailed(
            f"refresh failed in {', '.join(failed) or 'the run'}; see `dagster dev` for the run log"
        )
    return Refreshed(result.run_id, len(result.get_asset_materialization_events()), stages)


def run_automation(home: Home) -> list[tuple[str, str, str]]:
    """Evaluate the anomaly sensor once and run what it asks for, in this process, recorded in
    the Dagster instance (what the daemon does as anomalies are found): (job, anomaly,
    decision)."""
    import dagster as dg

    from dcicd_platform.definitions import build_definitions
    from dcicd_platform.resources import HomeResource, SettingsResource

    defs = build_definitions(home)
    sensor = defs.resolve_sensor_def("anomaly_actions")
    done = []
    with dg.DagsterInstance.get() as instance:
        context = dg.build_sensor_context(
            instance=instance,
            resources={"home": HomeResource(root=str(home.root)), "settings": SettingsResource()},
        )
        result = sensor.evaluate_tick(context)
        for request in result.run_requests or []:
            already = instance.get_runs(
                filters=dg.RunsFilter(tags={"dagster/run_key": request.run_key}), limit=1
            )
            if already:
                continue
            job = defs.resolve_job_def(request.job_name)
            run = job.execute_in_process(
                run_config={**request.run_config, **QUIET},
                instance=instance,
                tags={**request.tags, "dagster/run_key": request.run_key},
                raise_on_error=False,
            )
            decision = run.output_for_node(list(job.graph.node_dict)[0]) if run.success else "error"
            subject = request.tags.get("dcicd/anomaly") or request.tags.get("dcicd/alert", "")
            done.append((request.job_name, subject, decision))
    return done


def approve(home: Home, anomaly_key: str) -> str:
    """Run the approved rollback of an anomaly's deployment in this process (tagged approved by
    the CLI); returns the rollback's decision, raises RunFailed if the run failed."""
    import dagster as dg

    from dcicd_platform.automation.interventions import operator
    from dcicd_platform.definitions import build_definitions

    job = build_definitions(home).resolve_job_def("rollback")
    config = {"anomaly_key": anomaly_key, "approved": True, "approved_by": operator()}
    with dg.DagsterInstance.get() as instance:
        run = job.execute_in_process(
            run_config={"ops": {"roll_back_deployment": {"config": config}}, **QUIET},
            instance=instance,
            tags={"dcicd/anomaly": anomaly_key, "dcicd/approved": "cli"},
            raise_on_error=False,
        )
    if not run.success:
        raise RunFailed(f"the rollback of {anomaly_key} failed; see `dagster dev` for the run log")
    return run.output_for_node("roll_back_deployment")
