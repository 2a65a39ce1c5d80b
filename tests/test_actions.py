"""Actions against a real local HTTP server that records requests: 5xx, slow and refused too."""

import sys

import pytest

from dcicd_platform.automation import actions
from tests.receiver_client import free_port
from tests.recording_server import RecordingServer

TARGET = actions.RollbackTarget(
    "checkout", "acme/checkout", "production", "a" * 40, "b" * 40, "deployment_health:1"
)
ANOMALY = {
    "anomaly_key": "deployment_health:1",
    "kind": "deployment_health",
    "service": "checkout",
    "severity": "critical",
    "explanation": "checkout production deploy of bbbbbbbb: fail (canary score 0)",
}


@pytest.fixture
def server():
    recording = RecordingServer()
    yield recording
    recording.close()


def test_github_deployment_rollback_sends_the_good_sha_with_the_token(server):
    sent = actions.GitHubDeploymentRollback(server.url, "secret-token").rollback(TARGET)
    assert sent.ok and sent.status == 201 and sent.attempts == 1
    (request,) = server.requests
    assert request["path"] == "/repos/acme/checkout/deployments"
    assert request["body"]["ref"] == "a" * 40 and request["body"]["environment"] == "production"
    assert request["headers"]["Authorization"] == "Bearer secret-token"
    assert "secret-token" not in sent.detail


def test_workflow_dispatch_and_webhook_rollbacks(server):
    assert actions.GitHubWorkflowRollback(server.url, "t", "rollback.yml").rollback(TARGET).ok
    assert actions.WebhookRollback(server.url + "/hook").rollback(TARGET).ok
    dispatch, hook = server.requests
    assert dispatch["path"] == "/repos/acme/checkout/actions/workflows/rollback.yml/dispatches"
    assert dispatch["body"]["inputs"]["sha"] == "a" * 40
    assert hook["body"]["action"] == "rollback" and hook["body"]["good_sha"] == "a" * 40


def test_command_rollback_runs_the_template_without_a_shell(tmp_path):
    out = tmp_path / "out.txt"
    template = f"{sys.executable} -c \"import sys; open(sys.argv[1], 'w').write(sys.argv[2])\""
    sent = actions.CommandRollback(f"{template} {out} {{good_sha}}").rollback(TARGET)
    assert sent.ok and out.read_text() == "a" * 40


def test_5xx_is_retried_with_backoff_then_succeeds():
    server = RecordingServer([(502, 0.0), (503, 0.0), (201, 0.0)])
    try:
        sent = actions.post_json(server.url, {"x": 1}, backoff_s=0.01)
        assert sent.ok and sent.attempts == 3 and len(server.requests) == 3
    finally:
        server.close()


def test_4xx_is_not_retried():
    server = RecordingServer([(422, 0.0)])
    try:
        sent = actions.post_json(server.url, {"x": 1}, backoff_s=0.01)
        assert not sent.ok and sent.status == 422 and len(server.requests) == 1
    finally:
        server.close()


def test_a_slow_answer_times_out_and_is_retried():
    server = RecordingServer([(201, 1.0), (201, 0.0)])
    try:
        sent = actions.post_json(server.url, {"x": 1}, timeout_s=0.3, backoff_s=0.01)
        assert sent.ok and sent.attempts == 2
    finally:
        server.close()


def test_a_refused_connection_fails_after_its_retries():
    sent = actions.post_json(f"http://127.0.0.1:{free_port()}", {"x": 1}, retries=2, backoff_s=0.01)
    assert not sent.ok and sent.status is None and sent.attempts == 2


def test_alerts_slack_webhook_and_pagerduty_trigger_then_resolve(server):
    assert actions.slack_alert(server.url + "/slack", ANOMALY["explanation"]).ok
    assert actions.webhook_alert(server.url + "/hook", ANOMALY).ok
    assert actions.pagerduty_event("routing", ANOMALY, url=server.url + "/pd").ok
    assert actions.pagerduty_event("routing", ANOMALY, resolve=True, url=server.url + "/pd").ok
    slack, hook, trigger, resolve = server.requests
    assert slack["body"] == {"text": ANOMALY["explanation"]}
    assert hook["body"]["anomaly_key"] == "deployment_health:1"
    assert trigger["body"]["event_action"] == "trigger"
    assert trigger["body"]["dedup_key"] == resolve["body"]["dedup_key"] == "deployment_health:1"
    assert trigger["body"]["payload"]["severity"] == "critical"
    assert resolve["body"]["event_action"] == "resolve" and "payload" not in resolve["body"]


def test_rerun_failed_jobs(server):
    assert actions.rerun_failed_jobs(server.url, "t", "acme/checkout", "42").ok
    assert server.requests[0]["path"] == "/repos/acme/checkout/actions/runs/42/rerun-failed-jobs"
