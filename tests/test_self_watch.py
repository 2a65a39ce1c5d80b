"""The platform watching itself, on real Dagster instances: failed runs and a full disk alert
(audited, under the automation's mode), and new health samples start the watch at once."""

import json
import time

import dagster as dg
import duckdb
import pytest

from dcicd_platform.automation.anomaly_sensor import anomaly_actions
from dcicd_platform.automation.landing_sensor import landing_sensor
from dcicd_platform.automation.self_watch import MONITORED, run_failures, warehouse_storage
from dcicd_platform.automation.watch_trigger import watch_on_new_events
from dcicd_platform.definitions import build_definitions
from dcicd_platform.home import Home
from dcicd_platform.resources import HomeResource, SettingsResource
from tests.helpers import fixture_envelope, write_envelopes
from tests.recording_server import RecordingServer


@pytest.fixture
def hook():
    server = RecordingServer()
    yield server
    server.close()


@pytest.fixture
def home(tmp_path, monkeypatch):
    home = Home(tmp_path / "home").prepare()
    monkeypatch.setenv("DCICD_HOME", str(home.root))
    monkeypatch.chdir(tmp_path)  # no ./dcicd.yaml: only the file each test writes
    for variable in ("DCICD_SLACK_WEBHOOK_URL", "DCICD_PAGERDUTY_ROUTING_KEY"):
        monkeypatch.delenv(variable, raising=False)
    return home


def write_config(path, mode: str, hook_url: str, extra: str = "") -> None:
    path.write_text(
        f"automation:\n  mode: {mode}\n  alerts:\n    webhook_url: {hook_url}/alerts\n{extra}"
    )


def actions(home: Home) -> list[tuple]:
    with duckdb.connect(str(home.warehouse), read_only=True) as conn:
        return conn.execute(
            "SELECT action_id, kind, anomaly_key, entity_key, decision FROM ops.actions"
            " ORDER BY requested_at"
        ).fetchall()


def test_a_failed_run_alerts_through_the_run_failure_sensor(home, tmp_path, hook):
    config = tmp_path / "dcicd.yaml"
    write_config(config, "live", hook.url)
    defs = build_definitions(home, str(config))
    with dg.instance_for_test() as instance:
        # A rollback of an anomaly the warehouse does not hold: the run fails.
        failed = defs.resolve_job_def("rollback").execute_in_process(
            run_config={"ops": {"roll_back_deployment": {"config": {"anomaly_key": "nope"}}}},
            instance=instance,
            raise_on_error=False,
        )
        assert not failed.success
        run = instance.get_run_by_id(failed.run_id)
        (event,) = instance.get_records_for_run(
            failed.run_id, of_type=dg.DagsterEventType.RUN_FAILURE
        ).records
        context = dg.build_run_status_sensor_context(
            sensor_name="run_failures",
            dagster_event=event.event_log_entry.dagster_event,
            dagster_instance=instance,
            dagster_run=run,
        ).for_run_failure()
        request = run_failures(context)
        assert request.run_key == f"run_failure:{failed.run_id}"
        alerted = defs.resolve_job_def("platform_alert").execute_in_process(
            run_config=request.run_config, instance=instance
        )
        assert alerted.output_for_node("send_platform_alert") == "executed"
    (sent,) = hook.requests
    assert sent["path"] == "/alerts"
    body = sent["body"]
    assert (body["event"], body["kind"], body["severity"]) == (
        "platform",
        "run_failure",
        "critical",
    )
    assert f"the rollback run {failed.run_id[:8]} failed" in body["explanation"]
    assert actions(home) == [
        (f"alert:run_failure:{failed.run_id}", "alert", None, failed.run_id, "executed")
    ]
    # Shadow mode: decided and audited, nothing sent.
    write_config(config, "shadow", hook.url)
    with dg.instance_for_test() as instance:
        again = defs.resolve_job_def("platform_alert").execute_in_process(
            run_config=request.run_config, instance=instance
        )
    assert again.output_for_node("send_platform_alert") == "shadow"
    assert len(hook.requests) == 1


def test_the_run_failure_sensor_watches_training_refresh_and_rollback(home):
    defs = build_definitions(home)
    sensor = defs.resolve_sensor_def("run_failures")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    watched = {job.name for job in MONITORED}
    assert {"refresh", "refresh_data", "watch", "retrain", "rollback", "model_rollback"} <= watched
    assert not watched & {"alert", "platform_alert"}  # a failing alert cannot alert


def test_a_full_disk_alerts_once_and_resolves(home, tmp_path, hook):
    config = tmp_path / "dcicd.yaml"
    write_config(config, "live", hook.url, "monitoring:\n  storage_alert_percent: 0.001\n")
    resources = {"home": HomeResource(root=str(home.root)), "settings": SettingsResource()}
    defs = build_definitions(home, str(config))
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance, resources=resources)
        (request,) = warehouse_storage(context)
        assert request.job_name == "platform_alert" and request.run_key == "storage:1"
        alerted = defs.resolve_job_def("platform_alert").execute_in_process(
            run_config=request.run_config, instance=instance
        )
        assert alerted.output_for_node("send_platform_alert") == "executed"
        # Still over the line: no second alert.
        still = dg.build_sensor_context(
            instance=instance, resources=resources, cursor=context.cursor
        )
        assert isinstance(warehouse_storage(still), dg.SkipReason)
        # Back under (a limit of 100%): resolved.
        write_config(config, "live", hook.url, "monitoring:\n  storage_alert_percent: 100\n")
        under = dg.build_sensor_context(instance=instance, resources=resources, cursor=still.cursor)
        (resolve,) = warehouse_storage(under)
        assert resolve.run_key == "resolve:storage:1"
        defs.resolve_job_def("platform_alert").execute_in_process(
            run_config=resolve.run_config, instance=instance
        )
    bodies = [r["body"] for r in hook.requests]
    assert [(b["kind"], b["resolved"]) for b in bodies] == [("storage", False), ("storage", True)]
    assert "% full (alert at 0.001%)" in bodies[0]["explanation"]
    assert [(a[0], a[4]) for a in actions(home)] == [
        ("alert:storage:1", "executed"),
        ("resolve_alert:storage:1", "executed"),
    ]


def test_landing_health_samples_starts_the_watch(home):
    defs = build_definitions(home)
    ingest = defs.resolve_job_def("ingest_landing_file")
    sample = {
        "delivery_id": "h1",
        "source": "metrics",
        "event_type": "health_sample",
        "received_at": "2026-12-01T10:00:00Z",
        "payload": {
            "service": "checkout",
            "environment": "production",
            "ts": "2026-12-01T10:00:00Z",
            "requests": 100,
            "errors": 1,
            "latency_p95_ms": 120.0,
        },
    }

    def land_and_load(instance, name: str, envelopes: list[dict], cursor):
        write_envelopes(home.landing / name, envelopes)
        sensed = dg.build_sensor_context(instance=instance, cursor=cursor)
        (request,) = landing_sensor(sensed)
        assert ingest.execute_in_process(run_config=request.run_config, instance=instance).success
        return sensed.cursor

    with dg.instance_for_test() as instance:
        # CI events alone: loaded, the watch waits for its schedule.
        landed = land_and_load(
            instance,
            "ci.ndjson",
            [fixture_envelope("github/workflow_run/completed.payload.json")],
            None,
        )
        context = dg.build_sensor_context(instance=instance)
        assert isinstance(watch_on_new_events(context), dg.SkipReason)
        # Health samples: the watch at once, ahead of queued ingestion.
        landed = land_and_load(instance, "health.ndjson", [sample], landed)
        context = dg.build_sensor_context(instance=instance, cursor=context.cursor)
        request = watch_on_new_events(context)
        assert isinstance(request, dg.RunRequest) and request.tags["dagster/priority"] == "5"
        assert request.tags["dcicd/watched_events"] == "1"
        # The watch job it asks for is the scheduled one.
        sensor = defs.resolve_sensor_def("watch_on_new_events")
        assert {t.job_name for t in sensor.targets} == {"watch"}
        # Nothing new since: no second run.
        after = dg.build_sensor_context(instance=instance, cursor=context.cursor)
        assert isinstance(watch_on_new_events(after), dg.SkipReason)
        # More samples while a watch run waits to start: that run will read them.
        instance.create_run_for_job(
            defs.resolve_job_def("watch"), status=dg.DagsterRunStatus.NOT_STARTED
        )
        land_and_load(instance, "health2.ndjson", [sample | {"delivery_id": "h2"}], landed)
        queued = dg.build_sensor_context(instance=instance, cursor=after.cursor)
        skipped = watch_on_new_events(queued)
        assert isinstance(skipped, dg.SkipReason) and "queued" in skipped.skip_message


def test_the_anomaly_sensor_reads_the_warehouse_when_anomalies_are_new(home):
    from ml.anomaly import ANOMALIES_DDL

    with duckdb.connect(str(home.warehouse)) as conn:
        conn.execute(ANOMALIES_DDL)
        conn.execute(
            "INSERT INTO ml.anomalies (anomaly_key, kind, severity, detected_at, service,"
            " explanation) VALUES ('deployment_health:1', 'deployment_health', 'critical',"
            " now(), 'checkout', 'x')"
        )
    resources = {"home": HomeResource(root=str(home.root)), "settings": SettingsResource()}
    with dg.instance_for_test() as instance:
        # Read a moment ago, nothing new since: the warehouse is not read.
        cursor = json.dumps({"seen": None, "read_at": time.time()})
        idle = dg.build_sensor_context(instance=instance, resources=resources, cursor=cursor)
        assert isinstance(anomaly_actions(idle), dg.SkipReason)
        # ml/anomalies materialized: read at once.
        instance.report_runless_asset_event(dg.AssetMaterialization(["ml", "anomalies"]))
        new = dg.build_sensor_context(instance=instance, resources=resources, cursor=cursor)
        (request,) = anomaly_actions(new)
        assert request.job_name == "rollback"
        seen = json.loads(new.cursor)["seen"]
        assert seen is not None
        # Read from the live warehouse: that materialization is not read again.
        again = dg.build_sensor_context(instance=instance, resources=resources, cursor=new.cursor)
        assert isinstance(anomaly_actions(again), dg.SkipReason)
        # A minute later the warehouse is read regardless.
        stale = json.dumps({"seen": seen, "read_at": time.time() - 61})
        later = dg.build_sensor_context(instance=instance, resources=resources, cursor=stale)
        assert len(anomaly_actions(later)) == 1


def test_the_five_minute_watch_stands_aside_while_a_watch_is_in_flight(home):
    from datetime import UTC, datetime, timedelta

    from dcicd_platform.automation.jobs import watch_schedule

    defs = build_definitions(home)

    def tick(instance, at: datetime):
        return watch_schedule(
            dg.build_schedule_context(instance=instance, scheduled_execution_time=at)
        )

    now = datetime.now(UTC)
    with dg.instance_for_test() as instance:
        assert isinstance(tick(instance, now), dg.RunRequest)
        run = instance.create_run_for_job(defs.resolve_job_def("watch"))  # not started yet
        busy = tick(instance, now)
        assert isinstance(busy, dg.SkipReason) and "queued or running" in busy.skip_message
        instance.report_run_canceled(run)
        # It ran (and ended) a moment ago: the next tick stands aside too...
        recent = tick(instance, now)
        assert isinstance(recent, dg.SkipReason) and "4 minutes" in recent.skip_message
        # ... but not five minutes later.
        assert isinstance(tick(instance, now + timedelta(minutes=5)), dg.RunRequest)
