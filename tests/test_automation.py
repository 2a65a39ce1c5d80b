"""Automation: envelope files -> dcicd refresh -> the sensor -> a recorded rollback request.

A real warehouse, a real Dagster instance (build_sensor_context), a real local HTTP server
standing in for the rollback webhook, and the CLI in its own processes.
"""

import os
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from dcicd_platform.automation import responders
from dcicd_platform.automation.actions import WebhookRollback
from dcicd_platform.automation.actions_table import ACTIONS_DDL
from dcicd_platform.automation.anomaly_sensor import anomaly_actions
from dcicd_platform.config import parse_config
from dcicd_platform.demo.deployment_scenario import deployment_with_health
from dcicd_platform.resources import HomeResource, SettingsResource
from tests.helpers import write_envelopes
from tests.recording_server import RecordingServer

REPO = "acme/checkout"


def deploy_events(
    sha: str, deployed: datetime, deployment_id: int, bad: bool, rng, until: datetime
) -> list[dict]:
    """A production deployment of sha and the health samples around it, up to until."""
    return deployment_with_health(REPO, "checkout", sha, deployed, deployment_id, bad, rng, until)


def config_yaml(mode: str, hook: str, critical: bool = False) -> str:
    return f"""services:
  - name: checkout
    repositories: [{REPO}]
    criticality: {"critical" if critical else "medium"}
automation:
  mode: {mode}
  rollback:
    kind: webhook
    webhook_url: {hook}
"""


def dcicd(home: Path, config: Path, *args: str) -> subprocess.CompletedProcess:
    env = os.environ | {"DCICD_HOME": str(home), "DCICD_CONFIG": str(config)}
    env.pop("DAGSTER_HOME", None)
    return subprocess.run(
        [sys.executable, "-m", "dcicd_platform.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture
def hook():
    server = RecordingServer()
    yield server
    server.close()


def landed_bad_deploy(tmp_path: Path, now: datetime) -> Path:
    """A good deployment two hours ago and a bad one 21 minutes ago (its health samples every
    5 minutes, the last a minute ago), as envelope files."""
    rng = random.Random(4)
    events = deploy_events("a" * 40, now - timedelta(hours=2), 1, False, rng, now)
    events += deploy_events("b" * 40, now - timedelta(minutes=21), 2, True, rng, now)
    return write_envelopes(tmp_path / "exports" / "events.ndjson", events)


def test_end_to_end_a_bad_deploy_is_rolled_back_in_live_mode(tmp_path, hook):
    now = datetime.now(UTC)
    files = landed_bad_deploy(tmp_path, now)
    home, config = tmp_path / "home", tmp_path / "dcicd.yaml"
    config.write_text(config_yaml("live", hook.url + "/rollback"))
    assert dcicd(home, config, "ingest", str(files)).returncode == 0
    refreshed = dcicd(home, config, "refresh")
    assert refreshed.returncode == 0, refreshed.stderr
    acted = dcicd(home, config, "act")
    assert acted.returncode == 0, acted.stderr
    assert "rollback" in acted.stdout and "executed" in acted.stdout
    (request,) = [r for r in hook.requests if r["path"] == "/rollback"]
    assert request["body"]["good_sha"] == "a" * 40 and request["body"]["bad_sha"] == "b" * 40
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        decision, requested_at = conn.execute(
            "SELECT decision, requested_at FROM ops.actions WHERE kind = 'rollback'"
        ).fetchone()
    assert decision == "executed"
    # From the bad deployment's last health sample landing to the rollback request.
    assert requested_at - now < timedelta(minutes=5)
    # Acting again does nothing more: the run key makes each anomaly act once.
    assert "0 action(s)" in dcicd(home, config, "act").stdout
    assert len([r for r in hook.requests if r["path"] == "/rollback"]) == 1
    # DORA counts the rolled back deployment as failed, though the webhook backend's target
    # never reported a deployment back.
    failed = (
        "SELECT sha, is_failed, rollback_action_id IS NOT NULL FROM marts.production_deployments"
        " ORDER BY deployed_at"
    )
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        assert conn.execute(failed).fetchall() == [
            ("a" * 40, False, False),
            ("b" * 40, False, False),
        ]
    assert dcicd(home, config, "refresh").returncode == 0
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        assert conn.execute(failed).fetchall() == [("a" * 40, False, False), ("b" * 40, True, True)]
        (failures,) = conn.execute(
            "SELECT failed_deployments FROM marts.dora_metrics WHERE service = 'checkout'"
            " AND grain = 'month' ORDER BY period_start DESC LIMIT 1"
        ).fetchone()
    assert failures >= 1


def test_shadow_mode_never_sends_a_request_and_critical_services_wait(tmp_path, hook):
    now = datetime.now(UTC)
    files = landed_bad_deploy(tmp_path, now)
    home, config = tmp_path / "home", tmp_path / "dcicd.yaml"
    config.write_text(config_yaml("shadow", hook.url + "/rollback"))
    assert dcicd(home, config, "ingest", str(files)).returncode == 0
    assert dcicd(home, config, "refresh").returncode == 0
    acted = dcicd(home, config, "act")
    assert "shadow" in acted.stdout
    assert hook.requests == []  # shadow: decided and audited, nothing sent
    # Live, but the service is critical: the rollback waits for a human.
    warehouse = home / "warehouse.duckdb"
    settings = parse_config(config_yaml("live", hook.url + "/rollback", critical=True))
    with duckdb.connect(str(warehouse)) as conn:
        (key,) = conn.execute(
            "SELECT anomaly_key FROM ml.anomalies WHERE kind = 'deployment_health'"
        ).fetchone()
        backend = WebhookRollback(hook.url + "/rollback")
        waiting = responders.respond_rollback(conn, key, settings, backend=backend)
        assert waiting.decision == "pending_approval" and hook.requests == []
        approved = responders.respond_rollback(conn, key, settings, approved=True, backend=backend)
        assert approved.decision == "executed" and len(hook.requests) == 1
        assert conn.execute("SELECT count(*) FROM ops.actions").fetchone()[0] >= 1


def test_failed_rollbacks_trip_the_breaker_and_page(tmp_path):
    failing = RecordingServer([(500, 0.0)])
    now = datetime.now(UTC)
    files = landed_bad_deploy(tmp_path, now)
    home, config = tmp_path / "home", tmp_path / "dcicd.yaml"
    config.write_text(config_yaml("live", failing.url))
    try:
        assert dcicd(home, config, "ingest", str(files)).returncode == 0
        assert dcicd(home, config, "refresh").returncode == 0
        settings = parse_config(config_yaml("live", failing.url))
        with duckdb.connect(str(home / "warehouse.duckdb")) as conn:
            (key,) = conn.execute(
                "SELECT anomaly_key FROM ml.anomalies WHERE kind = 'deployment_health'"
            ).fetchone()
            backend = WebhookRollback(failing.url)
            conn.execute(ACTIONS_DDL)
            decisions = []
            for n in range(4):  # the same anomaly, acted on again by hand each time
                conn.execute(
                    "UPDATE ml.anomalies SET anomaly_key = ? WHERE anomaly_key = ?",
                    [f"{key}-{n}", key if n == 0 else f"{key}-{n - 1}"],
                )
                outcome = responders.respond_rollback(conn, f"{key}-{n}", settings, backend=backend)
                decisions.append(outcome.decision)
            page = conn.execute(
                "SELECT page FROM ops.actions ORDER BY requested_at DESC LIMIT 1"
            ).fetchone()[0]
    finally:
        failing.close()
    # Three failed rollbacks (each retried on the 500s), then the breaker: suppressed, paging.
    assert decisions == ["failed", "failed", "failed", "suppressed"]
    assert page is True


def test_the_sensor_requests_one_run_per_new_anomaly(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    warehouse = home / "warehouse.duckdb"
    now = datetime.now(UTC)
    from ml.anomaly import ANOMALIES_DDL

    with duckdb.connect(str(warehouse)) as conn:
        conn.execute(ANOMALIES_DDL)
        rows = [
            ("deployment_health:1", "deployment_health", "critical", now),
            ("deployment_health:2", "deployment_health", "warning", now),
            ("ci_cost:1", "ci_cost", "info", now),
            ("model_accuracy:1", "model_accuracy", "critical", now),
            ("failure_rate:old", "failure_rate", "critical", now - timedelta(days=3)),
        ]
        for key, kind, severity, at in rows:
            conn.execute(
                "INSERT INTO ml.anomalies (anomaly_key, kind, severity, detected_at, service,"
                " explanation) VALUES (?, ?, ?, ?, 'checkout', 'x')",
                [key, kind, severity, at],
            )
        # An alert was sent for an anomaly that has since cleared: it gets resolved.
        conn.execute(
            "INSERT INTO ml.anomalies (anomaly_key, kind, severity, detected_at, cleared_at)"
            " VALUES ('ci_cost:gone', 'ci_cost', 'warning', ?, ?)",
            [now - timedelta(days=2), now],
        )
        conn.execute(ACTIONS_DDL)
        conn.execute(
            "INSERT INTO ops.actions (action_id, kind, anomaly_key, decision)"
            " VALUES ('alert:ci_cost:gone', 'alert', 'ci_cost:gone', 'executed')"
        )
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(
            instance=instance,
            resources={"home": HomeResource(root=str(home)), "settings": SettingsResource()},
        )
        requests = anomaly_actions(context)
    found = {(r.job_name, r.run_key) for r in requests}
    assert found == {
        ("rollback", "rollback:deployment_health:1"),
        ("alert", "alert:deployment_health:2"),  # a warning alerts (min severity: warning)
        ("model_rollback", "model_rollback:model_accuracy:1"),
        ("alert", "alert:model_accuracy:1"),  # the alert catalogue: a model under 70% pages
        ("alert", "resolve:ci_cost:gone"),
    }  # the info and the 3-day-old anomalies ask for nothing
    # The most urgent first, and so tagged for the daemon's queue: a rollback races its window.
    assert [r.job_name for r in requests][:2] == ["rollback", "model_rollback"]
    assert [r.tags["dagster/priority"] for r in requests][:2] == ["10", "5"]


def test_live_alerts_go_to_slack_and_pagerduty_and_resolve(tmp_path, hook, monkeypatch):
    """Through the alert job with the definitions' own secrets resource: the Slack URL and the
    PagerDuty key come from the environment by Dagster EnvVar, and never reach the run's log."""
    from dcicd_platform.automation.response_jobs import alert
    from dcicd_platform.definitions import build_definitions
    from dcicd_platform.home import Home
    from ml.anomaly import ANOMALIES_DDL

    slack = hook.url + "/slack/T000/B000/s3cr3t-path"
    monkeypatch.setenv("DCICD_SLACK_WEBHOOK_URL", slack)
    monkeypatch.setenv("DCICD_PAGERDUTY_ROUTING_KEY", "routing-key-s3cr3t")
    monkeypatch.delenv("DCICD_GITHUB_TOKEN", raising=False)  # unset: allowed, not used
    config = tmp_path / "dcicd.yaml"
    home = Home(tmp_path / "home")
    defs = build_definitions(home, config_file=str(config))
    assert isinstance(defs.resources["secrets"].slack_webhook_url, dg.EnvVar)
    home.warehouse.parent.mkdir(parents=True)
    with duckdb.connect(str(home.warehouse)) as conn:
        conn.execute(ANOMALIES_DDL)
        conn.execute(
            "INSERT INTO ml.anomalies (anomaly_key, kind, severity, service, explanation)"
            " VALUES ('failure_rate:1', 'failure_rate', 'critical', 'checkout', 'CI fails 4x')"
        )

    def run(mode: str, resolve: bool = False) -> str:
        config.write_text(
            f"automation:\n  mode: {mode}\n  alerts:\n    pagerduty_events_url: {hook.url}/pd\n"
        )
        with dg.DagsterInstance.ephemeral() as instance:
            result = defs.resolve_job_def("alert").execute_in_process(
                run_config={
                    "ops": {
                        "send_alert": {
                            "config": {"anomaly_key": "failure_rate:1", "resolve": resolve}
                        }
                    }
                },
                instance=instance,
            )
            logged = " ".join(
                str(e.message) + str(e.dagster_event) for e in instance.all_logs(result.run_id)
            )
        assert "s3cr3t" not in logged
        return result.output_for_node("send_alert")

    assert alert.name == "alert"
    assert run("live") == "executed"
    assert run("live", resolve=True) == "executed"
    assert run("shadow") == "shadow"
    paths = [r["path"] for r in hook.requests]
    assert paths == ["/slack/T000/B000/s3cr3t-path", "/pd"] * 2  # shadow sent nothing
    assert hook.requests[1]["body"]["routing_key"] == "routing-key-s3cr3t"
    assert hook.requests[1]["body"]["event_action"] == "trigger"
    assert hook.requests[3]["body"]["event_action"] == "resolve"
    assert hook.requests[2]["body"]["text"].startswith("Cleared: ")


def test_secrets_are_dagster_env_vars_and_optional(monkeypatch):
    from dcicd_platform.resources import SECRET_VARIABLES, secrets_from_env

    for variable in SECRET_VARIABLES.values():
        monkeypatch.delenv(variable, raising=False)
    assert secrets_from_env().github_token is None  # unset: the resource still loads
    monkeypatch.setenv("DCICD_GITHUB_TOKEN", "ghp_s3cr3t")
    bound = secrets_from_env()
    assert isinstance(bound.github_token, dg.EnvVar)
    assert bound.github_token.env_var_name == "DCICD_GITHUB_TOKEN"
    assert bound.slack_webhook_url is None


def test_self_healing_reruns_a_run_that_failed_only_in_known_flakes(tmp_path, hook):
    from dcicd_platform.demo.generator import generate_organisation
    from dcicd_platform.demo.organisation import demo_config_yaml
    from dcicd_platform.ingest.loader import load_files
    from tests.helpers import build_core

    files = generate_organisation(tmp_path / "landing", seed=5, days=45)
    live = parse_config(
        demo_config_yaml().replace("automation:\n  mode: shadow", "automation:\n  mode: live")
    )
    with duckdb.connect(str(tmp_path / "w.duckdb")) as conn:
        load_files(conn, files)
        build_core(conn, live)
        flaky = responders.flaky_failures(conn, datetime(1970, 1, 1, tzinfo=UTC))
        assert flaky, "the demo organisation has flaky runs"
        run_key, _, repo, run_id, jobs = flaky[-1]
        shadow = parse_config(demo_config_yaml())
        assert responders.respond_rerun(conn, run_key, shadow).decision == "shadow"
        assert hook.requests == []
        outcome = responders.respond_rerun(conn, run_key, live, api_url=hook.url)
        assert outcome.decision == "executed", outcome.reason
        # A re-run answers no anomaly: its audit row names the run as its entity.
        assert conn.execute(
            "SELECT anomaly_key, entity_key, decision FROM ops.actions WHERE action_id = ?",
            [f"rerun:{run_key}"],
        ).fetchall() == [(None, run_key, "executed")]
        # The sensor asks for it by the run key, which the rerun job's config takes as such.
        from dcicd_platform.automation.anomaly_sensor import planned_runs
        from dcicd_platform.definitions import defs
        from ml.anomaly import ANOMALIES_DDL

        conn.execute(ANOMALIES_DDL)  # the sensor plans nothing before the anomalies table
        since = datetime(1970, 1, 1, tzinfo=UTC)
        asked = {r.run_key: r.run_config for r in planned_runs(conn, "critical", since)}
        config = asked[f"rerun:{run_key}"]
        assert config == {"ops": {"rerun_flaky_jobs": {"config": {"run_key": run_key}}}}
        dg.validate_run_config(defs.resolve_job_def("rerun"), config)
        # A run that did not fail only in flakes is not re-run.
        (green,) = conn.execute(
            "SELECT run_key FROM core.pipeline_runs WHERE conclusion = 'success' LIMIT 1"
        ).fetchone()
        assert responders.respond_rerun(conn, green, live, api_url=hook.url).decision == (
            "suppressed"
        )
    (request,) = hook.requests
    assert request["path"] == f"/repos/{repo}/actions/runs/{run_id}/rerun-failed-jobs"


def test_model_rollback_moves_the_champion_back_through_the_job(tmp_path):
    """A model_accuracy anomaly, the model_rollback job in live mode, a real sqlite registry."""
    from dcicd_platform.automation.response_jobs import model_rollback
    from dcicd_platform.resources import MlflowResource, warehouse_resource
    from ml.anomaly import ANOMALIES_DDL
    from ml.registry import CHAMPION, champion_version

    mlflow = MlflowResource(
        tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", artifacts=str(tmp_path / "art")
    )
    client = mlflow.client()
    client.create_registered_model("build_duration")
    for _ in range(2):
        client.create_model_version("build_duration", source=(tmp_path / "m").as_uri())
    client.set_model_version_tag("build_duration", "2", "previous_champion", "1")
    client.set_registered_model_alias("build_duration", CHAMPION, "2")
    warehouse = tmp_path / "w.duckdb"
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute(ANOMALIES_DDL)
        conn.execute(
            "INSERT INTO ml.anomalies (anomaly_key, kind, severity, entity_key, explanation)"
            " VALUES ('model_accuracy:1', 'model_accuracy', 'critical', 'build_duration|2',"
            " 'build_duration version 2: within 20% 55% on 80 live runs, under its 70% floor')"
        )
    config = tmp_path / "dcicd.yaml"
    config.write_text("automation:\n  mode: live\n")
    result = model_rollback.execute_in_process(
        run_config={"ops": {"roll_back_model": {"config": {"anomaly_key": "model_accuracy:1"}}}},
        resources={
            "warehouse": warehouse_resource(warehouse),
            "settings": SettingsResource(config_file=str(config)),
            "mlflow": mlflow,
        },
    )
    assert result.output_for_node("roll_back_model") == "executed"
    assert champion_version(client, "build_duration") == "1"
    with duckdb.connect(str(warehouse)) as conn:
        (reason,) = conn.execute("SELECT reason FROM ops.actions").fetchone()
    assert reason == "champion moved from version 2 to 1"


def test_an_anomaly_that_comes_back_is_alerted_and_resolved_again(tmp_path, hook, monkeypatch):
    """The sensor's pass (`dcicd act`) against a persistent Dagster instance, live alerts to a
    webhook, and the anomalies stored as the ml/anomalies asset stores them."""
    from dcicd_platform.home import Home
    from dcicd_platform.in_process import run_automation
    from ml.anomaly import anomaly_key, as_frame, store

    config = tmp_path / "dcicd.yaml"
    config.write_text(f"automation:\n  mode: live\n  alerts:\n    webhook_url: {hook.url}/hook\n")
    monkeypatch.setenv("DCICD_CONFIG", str(config))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    home = Home(tmp_path / "home").activate()
    key = anomaly_key("ci_cost", "acme/checkout|2026-11-30")
    found = {
        "kind": "ci_cost",
        "service": "checkout",
        "entity_key": "acme/checkout|2026-11-30",
        "detected_at": datetime.now(UTC),
        "observed": 40.0,
        "expected": 10.0,
        "score": 6.0,
        "severity": "warning",
        "explanation": "CI cost up 4x",
    }

    def refresh(*anomalies: dict) -> None:
        """What the detectors found this time, stored by the asset's own upsert."""
        with duckdb.connect(str(home.warehouse)) as conn:
            store(conn, as_frame([dict(a) for a in anomalies]))

    def act() -> list[tuple[str, str, str]]:
        return run_automation(home)

    refresh(found)
    assert act() == [("alert", key, "executed")]
    assert act() == []  # the same occurrence: nothing more
    refresh()  # cleared
    assert act() == [("alert", key, "executed")]  # its resolution
    assert act() == []
    refresh(found)  # back again: a second occurrence
    assert act() == [("alert", key, "executed")]
    assert act() == []
    refresh()
    assert act() == [("alert", key, "executed")]
    assert act() == []

    assert [r["body"]["resolved"] for r in hook.requests] == [False, True, False, True]
    with duckdb.connect(str(home.warehouse), read_only=True) as conn:
        audited = conn.execute(
            "SELECT action_id, decision FROM ops.actions ORDER BY requested_at"
        ).fetchall()
        assert conn.execute("SELECT occurrence FROM ml.anomalies").fetchall() == [(2,)]
    assert audited == [
        (f"alert:{key}", "executed"),
        (f"resolve_alert:{key}", "executed"),
        (f"alert:{key}#2", "executed"),
        (f"resolve_alert:{key}#2", "executed"),
    ]
    with dg.DagsterInstance.get() as instance:
        run_keys = [r.tags.get("dagster/run_key") for r in instance.get_runs()]
    assert sorted(run_keys) == sorted(
        [f"alert:{key}", f"resolve:{key}", f"alert:{key}#2", f"resolve:{key}#2"]
    )
