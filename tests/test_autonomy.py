"""Autonomy: alerts routed by severity, the rollout strategy's alert catalogue, switches per
capability, acknowledgements and the autonomy scorecard.

Real DuckDB warehouses with hand-made rows, a real HTTP server on 127.0.0.1 standing in for
Slack, PagerDuty, the alert webhook and the rollback webhook, real Dagster instances for the
sensor and the platform_alert job, and the CLI in its own processes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from dcicd_platform.automation import responders
from dcicd_platform.automation.anomaly_sensor import anomaly_actions, jobs_for
from dcicd_platform.automation.catalogue import catalogue_runs, conditions, health_score
from dcicd_platform.automation.interventions import (
    acknowledge,
    effective_mode,
    record,
    set_switch,
    switches,
)
from dcicd_platform.automation.responders import Secrets
from dcicd_platform.automation.scorecard import read_scorecard
from dcicd_platform.config import AnomalyThresholds, parse_config
from dcicd_platform.definitions import build_definitions
from dcicd_platform.home import Home
from dcicd_platform.resources import HomeResource, SettingsResource
from dcicd_platform.status import read_status, render_status
from ml.anomaly import ANOMALIES_DDL
from tests.recording_server import RecordingServer

NOW = datetime.now(UTC)


@pytest.fixture
def hook():
    server = RecordingServer()
    yield server
    server.close()


@pytest.fixture
def conn(tmp_path):
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as connection:
        connection.execute(ANOMALIES_DDL)
        yield connection


def config_text(hook: RecordingServer, mode: str = "live", extra: str = "") -> str:
    return (
        f"services:\n  - name: checkout\n    repositories: [acme/checkout]\n"
        f"automation:\n  mode: {mode}\n"
        f"  rollback:\n    kind: webhook\n    webhook_url: {hook.url}/rollback\n"
        f"  alerts:\n    webhook_url: {hook.url}/hook\n    pagerduty_events_url: {hook.url}/pd\n"
        + extra
    )


def secrets(hook: RecordingServer) -> Secrets:
    return Secrets(slack_webhook_url=f"{hook.url}/slack", pagerduty_routing_key="routing-key")


def add_anomaly(
    conn,
    key: str,
    kind: str,
    severity: str,
    *,
    seen: datetime = NOW,
    occurrence: int = 1,
    entity: str | None = None,
    explanation: str = "something went wrong",
) -> None:
    conn.execute(
        "INSERT INTO ml.anomalies (anomaly_key, kind, service, entity_key, detected_at,"
        " severity, explanation, first_seen_at, last_seen_at, occurrence)"
        " VALUES (?, ?, 'checkout', ?, ?, ?, ?, ?, ?, ?)",
        [key, kind, entity or key, seen, severity, explanation, seen, seen, occurrence],
    )


def paths(hook: RecordingServer) -> list[str]:
    return [r["path"] for r in hook.requests]


# ---------------------------------------------------------------- routing


@pytest.mark.parametrize(
    ("kind", "severity", "expected"),
    [
        ("failure_rate", "critical", ["/slack", "/pd", "/hook"]),  # pages and posts
        ("failure_rate", "warning", ["/slack", "/hook"]),  # a warning never pages
        ("build_duration", "info", []),  # the status view and the report only
        ("ci_cost", "critical", ["/slack", "/hook"]),  # a cost anomaly is a warning
    ],
)
def test_each_severity_goes_to_its_channels(conn, hook, kind, severity, expected):
    config = parse_config(config_text(hook))
    add_anomaly(conn, "a:1", kind, severity)
    outcome = responders.respond_alert(conn, "a:1", config, secrets=secrets(hook))
    assert paths(hook) == expected
    assert outcome.decision == ("executed" if expected else "suppressed")
    (target, reason) = conn.execute(
        "SELECT target, reason FROM ops.actions WHERE action_id = 'alert:a:1'"
    ).fetchone()
    if expected:
        assert target == ", ".join(
            {"/slack": "slack", "/pd": "pagerduty", "/hook": "webhook"}[p] for p in expected
        )
    else:
        assert reason == f"info {kind}: routed to the status view and the report"


def test_routes_are_configurable_per_severity_and_per_kind(conn, hook):
    extra = (
        "    routes:\n      info: [slack]\n"
        "    kind_routes:\n      failure_rate:\n        warning: [pagerduty]\n"
    )
    config = parse_config(config_text(hook, extra=extra))
    add_anomaly(conn, "fr:1", "failure_rate", "warning")
    add_anomaly(conn, "bd:1", "build_duration", "info")
    add_anomaly(conn, "cc:1", "ci_cost", "critical")
    responders.respond_alert(conn, "fr:1", config, secrets=secrets(hook))
    assert paths(hook) == ["/pd"]  # this kind's warnings page, and only page
    responders.respond_alert(conn, "bd:1", config, secrets=secrets(hook))
    assert paths(hook)[1:] == ["/slack"]  # info posted now
    # kind_routes given replace the default one: a critical cost anomaly pages again
    responders.respond_alert(conn, "cc:1", config, secrets=secrets(hook))
    assert paths(hook)[2:] == ["/slack", "/pd", "/hook"]


def test_a_resolution_goes_where_its_alert_went(conn, hook):
    config = parse_config(config_text(hook))
    add_anomaly(conn, "fr:1", "failure_rate", "warning")
    responders.respond_alert(conn, "fr:1", config, secrets=secrets(hook))
    # its severity rose before it cleared: the resolution still goes to Slack and the webhook
    conn.execute("UPDATE ml.anomalies SET severity = 'critical', cleared_at = now()")
    responders.respond_alert(conn, "fr:1", config, secrets=secrets(hook), resolve=True)
    assert paths(hook) == ["/slack", "/hook", "/slack", "/hook"]
    assert hook.requests[3]["body"]["resolved"] is True


# ---------------------------------------------------------------- the catalogue


def model_quality(conn, rows: list[tuple[str, int, float]]) -> None:
    """ml.model_quality by hand: (model, version, live quality), floor 70%, 50 runs each."""
    conn.execute(
        "CREATE OR REPLACE TABLE ml.model_quality (model VARCHAR, version INTEGER, runs INTEGER,"
        " within_20pct DOUBLE, accuracy DOUBLE, floor DOUBLE, below_floor BOOLEAN,"
        " measured_at TIMESTAMPTZ, predictor VARCHAR)"
    )
    for model, version, value in rows:
        duration = model == "build_duration"
        conn.execute(
            "INSERT INTO ml.model_quality VALUES (?, ?, 50, ?, ?, 0.7, ?, now(), 'lightgbm')",
            [model, version, value if duration else None, None if duration else value, value < 0.7],
        )


def test_a_model_under_70_percent_is_critical_between_70_and_80_a_warning(conn):
    from ml.anomaly.model_accuracy import model_accuracy

    model_quality(conn, [("build_duration", 1, 0.65), ("build_outcome", 2, 0.75)])
    found = {
        r["entity_key"]: (r["severity"], r["expected"])
        for r in model_accuracy(conn, AnomalyThresholds()).to_dicts()
    }
    assert found == {"build_duration|1": ("critical", 0.7), "build_outcome|2": ("warning", 0.8)}
    # what each asks for: the critical one rolls the model back and pages, the warning posts
    assert jobs_for("model_accuracy", "critical", "warning") == ["model_rollback", "alert"]
    assert jobs_for("model_accuracy", "warning", "warning") == ["alert"]
    # healthy models raise nothing
    model_quality(conn, [("build_duration", 1, 0.81), ("build_outcome", 2, 0.95)])
    assert model_accuracy(conn, AnomalyThresholds()).height == 0


def dora_and_kpis(conn, tiers: list[str], kpis_met: int, kpis: int = 4) -> None:
    """marts.dora_summary's organisation row and marts.kpi_scorecard, by hand."""
    conn.execute("CREATE SCHEMA IF NOT EXISTS marts")
    conn.execute(
        "CREATE OR REPLACE TABLE marts.dora_summary (service VARCHAR, window_days INTEGER,"
        " as_of DATE, deployment_frequency_tier VARCHAR, lead_time_tier VARCHAR,"
        " change_failure_tier VARCHAR, restore_tier VARCHAR, overall_tier VARCHAR,"
        " rework_rate DOUBLE)"
    )
    conn.execute(
        "INSERT INTO marts.dora_summary VALUES ('*', 30, current_date, ?, ?, ?, ?, ?, 0.1)",
        [*tiers, min(tiers)],
    )
    conn.execute(
        "CREATE OR REPLACE TABLE marts.kpi_scorecard (kpi VARCHAR, scope VARCHAR,"
        " target DOUBLE, actual DOUBLE, goal VARCHAR, status VARCHAR)"
    )
    for i in range(kpis):
        conn.execute(
            "INSERT INTO marts.kpi_scorecard VALUES (?, '*', 1, 1, 'max', ?)",
            [f"kpi_{i}", "met" if i < kpis_met else "missed"],
        )


def test_a_health_score_under_80_alerts_once_and_resolves(tmp_path, hook, monkeypatch):
    home = Home(tmp_path / "home").prepare()
    config_file = tmp_path / "dcicd.yaml"
    config_file.write_text(config_text(hook))
    monkeypatch.setenv("DCICD_CONFIG", str(config_file))
    monkeypatch.setenv("DCICD_SLACK_WEBHOOK_URL", f"{hook.url}/slack")
    monkeypatch.setenv("DCICD_PAGERDUTY_ROUTING_KEY", "routing-key")
    config = parse_config(config_text(hook))
    with duckdb.connect(str(home.warehouse)) as conn:
        # elite 100, high 75, high 75, medium 50: DORA 75; KPIs 3 of 4 met: 75; health 75
        dora_and_kpis(conn, ["elite", "high", "high", "medium"], kpis_met=3)
        assert health_score(conn) == 75 == read_status(conn).health
    defs = build_definitions(home, str(config_file))
    resources = {"home": HomeResource(root=str(home.root)), "settings": SettingsResource()}
    with dg.instance_for_test() as instance:
        (request,) = anomaly_actions(
            dg.build_sensor_context(instance=instance, resources=resources)
        )
        assert (request.job_name, request.run_key) == ("platform_alert", "health_score:1")
        done = defs.resolve_job_def("platform_alert").execute_in_process(
            run_config=request.run_config, instance=instance
        )
        assert done.output_for_node("send_platform_alert") == "executed"
    assert paths(hook) == ["/slack", "/pd", "/hook"]  # critical: PagerDuty and Slack
    assert hook.requests[1]["body"]["payload"]["severity"] == "critical"
    assert "health score is 75/100, under 80" in hook.requests[0]["body"]["text"]
    with duckdb.connect(str(home.warehouse)) as conn:
        assert catalogue_runs(conn, config) == []  # still under: no second alert
        dora_and_kpis(conn, ["elite", "high", "high", "medium"], kpis_met=4)  # (75 + 100) / 2
        (resolve,) = catalogue_runs(conn, config)
        assert resolve.run_key == "resolve:health_score:1"
        cfg = resolve.run_config["ops"]["send_platform_alert"]["config"]
        responders.respond_platform_alert(
            conn,
            cfg["key"],
            cfg["kind"],
            cfg["severity"],
            cfg["explanation"],
            config,
            secrets=secrets(hook),
            resolve=True,
        )
        assert hook.requests[4]["body"]["event_action"] == "resolve"
        # healthy: nothing asked; under again: the second time it holds
        assert catalogue_runs(conn, config) == []
        dora_and_kpis(conn, ["high", "high", "high", "high"], kpis_met=2)  # (75 + 50) / 2
        (again,) = catalogue_runs(conn, config)
        assert again.run_key == "health_score:2"


def test_a_false_positive_rate_over_15_percent_is_a_warning(conn, hook):
    config = parse_config(config_text(hook))
    for i in range(10):
        add_anomaly(conn, f"ci_cost:{i}", "ci_cost", "warning")
    add_anomaly(conn, "failure_rate:old", "failure_rate", "warning", seen=NOW - timedelta(days=40))

    def rate_condition():
        return [c for c in conditions(conn, config) if c.kind == "false_positive_rate"]

    acknowledge(conn, "ci_cost:0", false_alarm=True, done_by="alice")
    (one,) = rate_condition()
    assert not one.holds  # 1 of 10: 10%
    acknowledge(conn, "ci_cost:1", false_alarm=False, done_by="alice")  # right, just seen
    acknowledge(conn, "ci_cost:2", false_alarm=True, done_by="bob")
    (two,) = rate_condition()
    assert two.holds and two.name == "false_positive_rate:ci_cost"  # 2 of 10: 20%
    assert "20% of the ci_cost anomalies of the last 30 days" in two.explanation
    (request,) = catalogue_runs(conn, config)
    cfg = request.run_config["ops"]["send_platform_alert"]["config"]
    assert (request.run_key, cfg["severity"]) == ("false_positive_rate:ci_cost:1", "warning")
    responders.respond_platform_alert(
        conn,
        cfg["key"],
        cfg["kind"],
        cfg["severity"],
        cfg["explanation"],
        config,
        secrets=secrets(hook),
    )
    assert paths(hook) == ["/slack", "/hook"]  # a warning: Slack, never PagerDuty


def test_too_few_anomalies_judge_no_false_positive_rate(conn, hook):
    config = parse_config(config_text(hook))
    for i in range(5):
        add_anomaly(conn, f"ci_cost:{i}", "ci_cost", "warning")
    for i in range(3):
        acknowledge(conn, f"ci_cost:{i}", false_alarm=True, done_by="alice")
    (rate,) = [c for c in conditions(conn, config) if c.kind == "false_positive_rate"]
    assert not rate.holds  # 60%, but on 5 anomalies (at least 10 are judged)


def deployments(conn, rows: list[tuple[str, str, datetime]]) -> None:
    """marts.production_deployments by hand: (deployment key, sha, deployed_at)."""
    conn.execute("CREATE SCHEMA IF NOT EXISTS marts")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS marts.production_deployments (deployment_key VARCHAR,"
        " service VARCHAR, repo VARCHAR, environment VARCHAR, sha VARCHAR,"
        " deployed_at TIMESTAMPTZ, is_failed BOOLEAN, is_rollback BOOLEAN,"
        " rollback_action_id VARCHAR)"
    )
    for key, sha, at in rows:
        conn.execute(
            "INSERT INTO marts.production_deployments VALUES"
            " (?, 'checkout', 'acme/checkout', 'production', ?, ?, false, false, NULL)",
            [key, sha, at],
        )


def bad_deployment(conn) -> str:
    """A good deployment an hour ago, a bad one 5 minutes ago and its critical anomaly."""
    deployments(
        conn,
        [("d1", "a" * 40, NOW - timedelta(hours=1)), ("d2", "b" * 40, NOW - timedelta(minutes=5))],
    )
    add_anomaly(conn, "deployment_health:d2", "deployment_health", "critical", entity="d2")
    return "deployment_health:d2"


def test_a_failed_autonomous_rollback_pages(conn):
    # the rollback webhook answers 500 three times (every try), then the alerts go through
    server = RecordingServer([(500, 0.0)] * 3 + [(202, 0.0)])
    try:
        config = parse_config(config_text(server))
        key = bad_deployment(conn)
        outcome = responders.respond_rollback(conn, key, config, secrets=secrets(server))
        assert outcome.decision == "failed"
        assert paths(server) == ["/rollback"] * 3 + ["/slack", "/pd", "/hook"]
        page = server.requests[4]["body"]
        assert page["dedup_key"] == f"rollback_failed:{key}"
        assert page["payload"]["severity"] == "critical"
        assert "did not happen: the rollback request failed" in page["payload"]["summary"]
        assert conn.execute(
            "SELECT kind, decision, entity_key FROM ops.actions"
            f" WHERE action_id = 'alert:rollback_failed:{key}'"
        ).fetchall() == [("alert", "executed", "d2")]
    finally:
        server.close()


def test_a_successful_rollback_raises_no_catalogue_alert(conn, hook):
    config = parse_config(config_text(hook))
    key = bad_deployment(conn)
    assert responders.respond_rollback(conn, key, config, secrets=secrets(hook)).decision == (
        "executed"
    )
    assert paths(hook) == ["/rollback"]


# ---------------------------------------------------------------- switches


def test_switching_one_capability_changes_the_next_decision_without_a_restart(conn, hook):
    config = parse_config(config_text(hook))  # read once, as a running daemon holds it
    key = bad_deployment(conn)
    set_switch(conn, "rollbacks", "off", done_by="alice", note="deployer is flaky today")
    off = responders.respond_rollback(conn, key, config, secrets=secrets(hook))
    assert (off.decision, paths(hook)) == ("suppressed", [])
    # the rest stays live: alerts still go out
    add_anomaly(conn, "fr:1", "failure_rate", "warning")
    assert responders.respond_alert(conn, "fr:1", config, secrets=secrets(hook)).decision == (
        "executed"
    )
    assert paths(hook) == ["/slack", "/hook"]
    set_switch(conn, "rollbacks", "shadow", done_by="alice")
    shadow = responders.respond_rollback(conn, key, config, secrets=secrets(hook))
    assert shadow.decision == "shadow" and len(hook.requests) == 2
    set_switch(conn, "rollbacks", "live", done_by="alice")
    live = responders.respond_rollback(conn, key, config, secrets=secrets(hook))
    assert live.decision == "executed" and paths(hook)[-1] == "/rollback"
    modes = conn.execute(
        "SELECT mode, done_by, note FROM ops.interventions WHERE kind = 'switch'"
        " ORDER BY intervention_id"
    ).fetchall()
    assert modes == [
        ("off", "alice", "deployer is flaky today"),
        ("shadow", "alice", None),
        ("live", "alice", None),
    ]
    # switched alerts off: the next alert is suppressed, recorded with the mode it met
    set_switch(conn, "alerts", "off", done_by="bob")
    add_anomaly(conn, "fr:2", "failure_rate", "critical")
    responders.respond_alert(conn, "fr:2", config, secrets=secrets(hook))
    assert conn.execute(
        "SELECT mode, decision FROM ops.actions WHERE action_id = 'alert:fr:2'"
    ).fetchall() == [("off", "suppressed")]
    assert len(hook.requests) == 3


def test_the_automation_mode_is_the_ceiling_and_config_the_default(conn, hook):
    extra = "  capabilities:\n    reruns: off\n"
    shadow = parse_config(config_text(hook, mode="shadow", extra=extra))
    set_switch(conn, "alerts", "live", done_by="alice")
    now = switches(conn, shadow)
    assert (now["alerts"].mode, now["alerts"].capped_by_mode) == ("shadow", True)
    assert now["reruns"].mode == "off" and now["reruns"].switched is None
    assert now["predictions"].mode == "live"  # inside the platform: not capped
    set_switch(conn, "reruns", "shadow", done_by="alice")
    assert effective_mode(conn, shadow, "reruns") == "shadow"  # a switch beats the config
    set_switch(conn, "reruns", None, done_by="alice")  # back to the configuration
    assert effective_mode(conn, shadow, "reruns") == "off"
    off = parse_config(config_text(hook, mode="off"))
    assert {s.mode for c, s in switches(conn, off).items() if c != "predictions"} == {"off"}
    set_switch(conn, "predictions", "shadow", done_by="alice")
    assert effective_mode(conn, off, "predictions") == "shadow"
    with pytest.raises(ValueError, match="unknown capability"):
        set_switch(conn, "deploys", "off", done_by="alice")


def test_predictions_switched_off_score_nothing(tmp_path, monkeypatch):
    from dcicd_platform.assets.ml_models import build_predictions
    from dcicd_platform.resources import MlflowResource, warehouse_resource

    monkeypatch.delenv("DCICD_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    warehouse = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as conn:
        set_switch(conn, "predictions", "off", done_by="alice")
    result = dg.materialize(
        [build_predictions],
        resources={
            "warehouse": warehouse_resource(warehouse),
            "mlflow": MlflowResource(
                tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", artifacts=str(tmp_path / "a")
            ),
            "settings": SettingsResource(),
        },
    )
    (materialization,) = result.get_asset_materialization_events()
    metadata = materialization.materialization.metadata
    assert metadata["note"].value == "predictions switched off"
    with duckdb.connect(str(warehouse)) as conn:
        assert "ml.build_predictions" not in {
            f"{s}.{t}"
            for s, t in conn.execute(
                "SELECT schema_name, table_name FROM duckdb_tables()"
            ).fetchall()
        }


# ---------------------------------------------------------------- acknowledgements, scorecard


def pipeline_runs(conn, rows: list[tuple[int, int, str, str]]) -> None:
    """core.pipeline_runs by hand: (GitHub run id, attempt, status, conclusion)."""
    conn.execute("CREATE SCHEMA IF NOT EXISTS core")
    conn.execute(
        "CREATE TABLE core.pipeline_runs (run_key VARCHAR, source VARCHAR, repo VARCHAR,"
        " provider_run_id VARCHAR, attempt INTEGER, status VARCHAR, conclusion VARCHAR)"
    )
    for run_id, attempt, status, conclusion in rows:
        conn.execute(
            "INSERT INTO core.pipeline_runs VALUES (?, 'github', 'acme/checkout', ?, ?, ?, ?)",
            [f"github:{run_id}:{attempt}", str(run_id), attempt, status, conclusion],
        )


def action(conn, action_id: str, kind: str, decision: str, at: datetime, entity=None) -> None:
    anomaly = action_id.split(":", 1)[1].split("#")[0] if kind == "rollback" else None
    conn.execute(
        "INSERT INTO ops.actions (action_id, kind, anomaly_key, service, mode, decision,"
        " requested_at, entity_key) VALUES (?, ?, ?, 'checkout', 'live', ?, ?, ?)",
        [action_id, kind, anomaly, decision, at, entity],
    )


def hand_worked(conn) -> None:
    """The scorecard's case, every figure worked out in the test below."""
    from dcicd_platform.automation.actions_table import ensure_actions_table

    conn.execute(ANOMALIES_DDL)
    ensure_actions_table(conn)
    day = timedelta(days=1)
    for key in "abd":
        add_anomaly(conn, f"deployment_health:{key}", "deployment_health", "critical")
    add_anomaly(conn, "deployment_health:c", "deployment_health", "critical", occurrence=2)
    add_anomaly(conn, "ci_cost:e", "ci_cost", "warning", seen=NOW - 2 * day)
    add_anomaly(conn, "failure_rate:f", "failure_rate", "warning", seen=NOW - 40 * day)
    action(conn, "rollback:deployment_health:a", "rollback", "executed", NOW - day)
    action(conn, "rollback:deployment_health:b", "rollback", "shadow", NOW - day)
    action(conn, "rollback:deployment_health:c#2", "rollback", "failed", NOW - day)
    action(conn, "rollback:deployment_health:d", "rollback", "suppressed", NOW - day)
    action(conn, "rollback:deployment_health:old", "rollback", "executed", NOW - 40 * day)
    for run_id, decision in ((1, "executed"), (2, "executed"), (3, "executed"), (4, "shadow")):
        action(conn, f"rerun:github:{run_id}:1", "rerun", decision, NOW - day, f"github:{run_id}:1")
    pipeline_runs(
        conn,
        [
            (1, 1, "completed", "failure"),
            (1, 2, "completed", "success"),  # healed
            (2, 1, "completed", "failure"),
            (2, 2, "completed", "failure"),  # not healed
            (3, 1, "completed", "failure"),
            (3, 2, "in_progress", None),  # not ended yet: not judged
            (4, 1, "completed", "failure"),
            (4, 2, "completed", "success"),  # a shadow decision: nothing was re-run
        ],
    )
    deployments(conn, [(f"d{i}", f"{i:040d}", NOW - i * day) for i in range(1, 21)])
    deployments(conn, [(f"old{i}", f"{i:040x}", NOW - (31 + i) * day) for i in range(3)])
    # the operators
    acknowledge(conn, "rollback:deployment_health:a", false_alarm=True, done_by="alice")
    acknowledge(conn, "ci_cost:e", note="known: the load test", done_by="bob")
    record(
        conn,
        "approve",
        done_by="carol",
        anomaly_key="deployment_health:c",
        occurrence=2,
        action_id="rollback:deployment_health:c#2",
    )
    set_switch(conn, "reruns", "off", done_by="alice")
    acknowledge(
        conn, "failure_rate:f", false_alarm=True, done_by="bob", now=NOW - 40 * day
    )  # outside the window


def test_acknowledgements_are_audited_and_counted_in_the_scorecard(conn):
    hand_worked(conn)
    card = read_scorecard(conn, datetime.now(UTC), 30)
    # self-healing: re-runs 1, 2, 3 executed; 1 and 2 ended, 1 passed: 1 of 2
    assert (card.reruns_executed, card.reruns_ended, card.reruns_passed) == (3, 2, 1)
    assert card.self_healing == 0.5 and card.meets("self_healing") is False
    # interventions in 30 days: 1 approval, 1 switch, 1 false alarm (bob's ack is no
    # intervention, alice's of 40 days ago is out of the window): 3 a month
    assert (card.approvals, card.switches, card.false_alarms) == (1, 1, 1)
    assert card.interventions_per_month == 3 and card.meets("interventions_per_month") is False
    # rollbacks of the window: executed, shadow, failed decided (suppressed is no decision to
    # roll back); a's marked a false alarm: 2 of 3 right, 1 false of 20 deployments
    assert card.rollbacks == {"executed": 1, "shadow": 1, "failed": 1, "suppressed": 1}
    assert card.false_rollbacks == 1
    assert card.rollback_accuracy == pytest.approx(2 / 3)
    assert card.false_rollback_rate == 1 / 20 and card.meets("false_rollback_rate") is False
    # anomalies seen in 30 days: a, b, c, d, e; a (its rollback), c (approved) and e
    # (acknowledged) had a person: b and d did not
    assert (card.anomalies_seen, card.anomalies_hands_off) == (5, 2)
    # the weekly review's rows: the 30 days to the end of this week
    from dcicd_platform.report.figures import _autonomy

    monday = (NOW - timedelta(days=NOW.weekday())).date()
    rows = {r["figure"]: r for r in _autonomy(conn, monday + timedelta(days=6), "UTC")}
    assert rows["self-healing success rate"]["value"] == "50% (1 of 2 re-runs passed)"
    assert rows["rollback decision accuracy"] == {
        "figure": "rollback decision accuracy",
        "value": "67%",
        "target": "> 90%",
        "met": False,
    }
    assert rows["anomalies handled without a person"]["value"] == "40% (2 of 5)"
    # audited: who, when, why
    assert conn.execute(
        "SELECT anomaly_key, occurrence, action_id, false_alarm, note, done_by"
        " FROM ops.interventions WHERE kind = 'ack' ORDER BY intervention_id"
    ).fetchall() == [
        ("deployment_health:a", 1, "rollback:deployment_health:a", True, None, "alice"),
        ("ci_cost:e", 1, None, False, "known: the load test", "bob"),
        ("failure_rate:f", 1, None, True, None, "bob"),
    ]


def test_acknowledged_anomalies_leave_the_open_ones_until_they_come_back(conn):
    hand_worked(conn)
    status = read_status(conn, datetime.now(UTC))
    # six open; e and f acknowledged (a's acknowledgement is of its rollback, not of it)
    assert sum(status.anomalies_open.values()) == 4 and status.anomalies_acknowledged == 2
    assert status.anomalies_open == {"critical": 4}
    screen = render_status(status)
    (line,) = [x for x in screen.splitlines() if x.startswith("Anomalies open: ")]
    assert line.startswith("Anomalies open: 4   ") and line.endswith("   2 acknowledged")
    assert "(4 critical, 0 warning, 0 info)" in screen
    assert "self-healing 50%: 1 of 2 re-runs passed (3 re-run) (target > 85%)" in screen
    assert "manual interventions 3.0 a month: 1 approval, 1 switch, 1 false alarm" in screen
    # a's rollback marked a false alarm: in the rollbacks line too
    assert "rollbacks: 1 executed, 1 failed, 1 shadow, 1 suppressed; 1 false alarm" in screen
    assert "rollback decisions right 67% (target > 90%)" in screen
    assert "false rollbacks 5% of 20 deployments (target < 5%)" in screen
    assert "anomalies handled without a person 40% (2 of 5)" in screen
    assert "reruns off (switched by alice" in screen
    # f comes back (its next occurrence): open again, the acknowledgement was of the first
    conn.execute("UPDATE ml.anomalies SET occurrence = 2 WHERE anomaly_key = 'failure_rate:f'")
    again = read_status(conn, datetime.now(UTC))
    assert again.anomalies_open == {"critical": 4, "warning": 1}
    # acknowledging anything else is refused
    with pytest.raises(LookupError):
        acknowledge(conn, "nope", done_by="alice")
    with pytest.raises(ValueError, match="only a rollback"):
        acknowledge(conn, "rerun:github:1:1", done_by="alice")


def dcicd(home: Path, config: Path, *args: str) -> subprocess.CompletedProcess:
    env = os.environ | {
        "DCICD_HOME": str(home),
        "DCICD_CONFIG": str(config),
        "DCICD_OPERATOR": "dana",
    }
    env.pop("DAGSTER_HOME", None)
    return subprocess.run(
        [sys.executable, "-m", "dcicd_platform.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_ack_and_switch_from_the_command_line(tmp_path, hook):
    home = Home(tmp_path / "home").prepare()
    config = tmp_path / "dcicd.yaml"
    config.write_text(config_text(hook))
    with duckdb.connect(str(home.warehouse)) as conn:
        hand_worked(conn)
    acked = dcicd(home.root, config, "ack", "deployment_health:b", "--false-alarm", "--note", "x")
    assert acked.returncode == 0, acked.stderr
    assert "acknowledged deployment_health:b (occurrence 1) as a false alarm by dana" in (
        acked.stdout
    )
    assert dcicd(home.root, config, "ack", "nope").returncode == 1
    again = dcicd(home.root, config, "ack", "deployment_health:b", "--false-alarm")
    assert again.returncode == 1 and "already acknowledged as a false alarm by dana" in again.stderr
    empty = dcicd(home.root, config, "ack", "")
    assert empty.returncode == 1 and "anomaly key" in empty.stderr
    same = dcicd(home.root, config, "switch", "reruns", "off")  # hand_worked switched it off
    assert same.returncode == 0 and "reruns: no change" in same.stdout
    switched = dcicd(home.root, config, "switch", "model_rollbacks", "shadow")
    assert switched.returncode == 0, switched.stderr
    assert "model_rollbacks: shadow, switched by dana" in switched.stdout
    shown = dcicd(home.root, config, "status")
    assert shown.returncode == 0, shown.stderr
    assert "model_rollbacks shadow (switched by dana" in shown.stdout
    assert "Anomalies open: 3" in shown.stdout and "3 acknowledged" in shown.stdout
    with duckdb.connect(str(home.warehouse), read_only=True) as conn:
        assert conn.execute(
            "SELECT kind, done_by, false_alarm FROM ops.interventions"
            " WHERE done_by = 'dana' ORDER BY intervention_id"
        ).fetchall() == [("ack", "dana", True), ("switch", "dana", False)]


# ---------------------------------------------------------------- the scorecard's faults


def test_the_weekly_review_counts_decisions_by_the_time_of_what_they_answered(conn):
    """The automation decided today on events of a past week (as the demo does): the week's
    review and the status over 30 days both count them, as the decisions table places them."""
    from dcicd_platform.automation.actions_table import ensure_actions_table
    from dcicd_platform.report.figures import _autonomy

    ensure_actions_table(conn)
    event = NOW - timedelta(days=10)
    add_anomaly(conn, "deployment_health:x", "deployment_health", "critical", seen=event)
    add_anomaly(conn, "ci_cost:old", "ci_cost", "warning", seen=NOW - timedelta(days=40))
    # today's refresh saw both again: last_seen_at is today, the event's time is not
    conn.execute("UPDATE ml.anomalies SET last_seen_at = ?", [NOW])
    action(conn, "rollback:deployment_health:x", "rollback", "suppressed", NOW)
    conn.execute("CREATE SCHEMA core")
    conn.execute(
        "CREATE TABLE core.pipeline_runs (run_key VARCHAR, source VARCHAR, repo VARCHAR,"
        " provider_run_id VARCHAR, attempt INTEGER, status VARCHAR, conclusion VARCHAR,"
        " started_at TIMESTAMPTZ, finished_at TIMESTAMPTZ)"
    )
    for run_id, second in ((1, "success"), (2, "success"), (3, "failure")):
        conn.execute(
            "INSERT INTO core.pipeline_runs VALUES (?, 'github', 'a/b', ?, 1, 'completed',"
            " 'failure', ?, ?), (?, 'github', 'a/b', ?, 2, 'completed', ?, ?, ?)",
            [f"github:{run_id}:1", str(run_id), event, event]
            + [f"github:{run_id}:2", str(run_id), second, NOW, NOW],
        )
        action(conn, f"rerun:github:{run_id}:1", "rerun", "executed", NOW, f"github:{run_id}:1")
    # the week of the event: its review ends before the decisions were requested
    week_end = event.date() + timedelta(days=6 - event.weekday())
    rows = {r["figure"]: r for r in _autonomy(conn, week_end, "UTC")}
    assert rows["self-healing success rate"]["value"] == "67% (2 of 3 re-runs passed)"
    assert rows["rollbacks"]["value"] == "1 suppressed; 0 false alarms"
    assert rows["anomalies handled without a person"]["value"] == "100% (1 of 1)"
    card = read_scorecard(conn, datetime.now(UTC), 30)
    assert (card.reruns_executed, card.reruns_passed, card.rollbacks) == (3, 2, {"suppressed": 1})
    assert (card.anomalies_seen, card.anomalies_hands_off) == (1, 1)  # not the 40-day-old one
    # a window that ends the day before the events counts none of them, but the 40-day-old
    early = read_scorecard(conn, event - timedelta(days=1), 30)
    assert (early.reruns_executed, early.rollbacks, early.anomalies_seen) == (0, {}, 1)


def test_a_suppressed_rollback_marked_a_false_alarm_is_in_the_rollbacks_line(conn):
    from dcicd_platform.automation.actions_table import ensure_actions_table
    from dcicd_platform.automation.scorecard import scorecard_lines

    ensure_actions_table(conn)
    add_anomaly(conn, "deployment_health:x", "deployment_health", "critical")
    add_anomaly(conn, "deployment_health:y", "deployment_health", "critical")
    action(conn, "rollback:deployment_health:x", "rollback", "suppressed", NOW)
    action(conn, "rollback:deployment_health:y", "rollback", "shadow", NOW)
    before = "\n".join(scorecard_lines(read_scorecard(conn, datetime.now(UTC))))
    assert "rollbacks: 1 shadow, 1 suppressed; 0 false alarms" in before
    acknowledge(conn, "rollback:deployment_health:x", false_alarm=True, done_by="alice")
    card = read_scorecard(conn, datetime.now(UTC))
    # counted in the line; a suppressed rollback is no decision to roll back: accuracy 1 of 1
    assert (card.rollback_false_alarms, card.false_rollbacks) == (1, 0)
    assert card.rollback_accuracy == 1.0
    acknowledge(conn, "rollback:deployment_health:y", false_alarm=True, done_by="alice")
    card = read_scorecard(conn, datetime.now(UTC))
    assert (card.rollback_false_alarms, card.false_rollbacks, card.rollback_accuracy) == (2, 1, 0)
    lines = "\n".join(scorecard_lines(card))
    assert "rollbacks: 1 shadow, 1 suppressed; 2 false alarms" in lines
    assert "0 approvals, 0 switches, 2 false alarms" in lines


def test_acknowledging_twice_is_refused_unless_it_marks_a_false_alarm(conn):
    from dcicd_platform.automation.actions_table import ensure_actions_table
    from dcicd_platform.automation.interventions import AlreadyAcknowledged

    ensure_actions_table(conn)
    add_anomaly(conn, "ci_cost:e", "ci_cost", "warning")
    acknowledge(conn, "ci_cost:e", done_by="bob", now=datetime(2026, 3, 2, 9, 30, tzinfo=UTC))
    with pytest.raises(
        AlreadyAcknowledged, match="already acknowledged by bob at 2026-03-02 09:30"
    ):
        acknowledge(conn, "ci_cost:e", done_by="alice")
    upgraded = acknowledge(conn, "ci_cost:e", false_alarm=True, done_by="alice")
    assert upgraded.false_alarm
    with pytest.raises(AlreadyAcknowledged, match="as a false alarm by alice"):
        acknowledge(conn, "ci_cost:e", false_alarm=True, done_by="bob")
    with pytest.raises(AlreadyAcknowledged):
        acknowledge(conn, "ci_cost:e", done_by="bob")
    # one plain and one false alarm: one false alarm, one intervention
    card = read_scorecard(conn, datetime.now(UTC))
    assert (card.false_alarms, card.interventions) == (1, 1)
    # a rollback marked twice: once
    add_anomaly(conn, "deployment_health:x", "deployment_health", "critical")
    action(conn, "rollback:deployment_health:x", "rollback", "shadow", NOW)
    acknowledge(conn, "rollback:deployment_health:x", false_alarm=True, done_by="alice")
    with pytest.raises(AlreadyAcknowledged, match="by alice"):
        acknowledge(conn, "rollback:deployment_health:x", false_alarm=True, done_by="bob")
    card = read_scorecard(conn, datetime.now(UTC))
    assert (card.false_alarms, card.rollback_false_alarms, card.false_rollbacks) == (2, 1, 1)
    # the anomaly itself is another act: acknowledged once
    acknowledge(conn, "deployment_health:x", done_by="bob")
    # its next occurrence is open again
    conn.execute("UPDATE ml.anomalies SET occurrence = 2 WHERE anomaly_key = 'ci_cost:e'")
    assert acknowledge(conn, "ci_cost:e", done_by="bob").occurrence == 2
    # a cleared anomaly, an empty key
    cleared = datetime(2026, 3, 3, 8, 0, tzinfo=UTC)
    conn.execute(
        "UPDATE ml.anomalies SET cleared_at = ? WHERE anomaly_key = 'ci_cost:e'", [cleared]
    )
    with pytest.raises(ValueError, match="not open: cleared at 2026-03-03 08:00"):
        acknowledge(conn, "ci_cost:e", false_alarm=True, done_by="bob")
    with pytest.raises(ValueError, match="anomaly key"):
        acknowledge(conn, " ", done_by="bob")
    assert (
        conn.execute("SELECT count(*) FROM ops.interventions WHERE kind = 'ack'").fetchone()[0] == 5
    )


def test_a_switch_that_changes_nothing_is_no_intervention(conn):
    from dcicd_platform.automation.scorecard import scorecard_lines

    config = parse_config("automation:\n  mode: shadow\n  capabilities:\n    reruns: off\n")
    assert set_switch(conn, "rollbacks", None, done_by="alice", config=config) is None
    assert set_switch(conn, "reruns", "off", done_by="alice", config=config) is None
    assert set_switch(conn, "reruns", "shadow", done_by="alice", config=config) is not None
    assert set_switch(conn, "reruns", "shadow", done_by="alice", config=config) is None
    assert set_switch(conn, "reruns", None, done_by="alice", config=config) is not None
    assert set_switch(conn, "reruns", None, done_by="alice", config=config) is None
    # alerts are configured live: switching them live changes nothing (the ceiling holds them)
    assert set_switch(conn, "alerts", "live", done_by="alice", config=config) is None
    card = read_scorecard(conn, datetime.now(UTC))
    assert (card.switches, card.interventions) == (2, 2)
    lines = "\n".join(scorecard_lines(card))
    assert "self-healing -: no re-run yet" in lines
    assert "0 approvals, 2 switches, 0 false alarms" in lines
