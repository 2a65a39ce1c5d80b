"""What the automation can do outside the platform, each behind a small interface.

Rollbacks: a GitHub deployment of the last good sha (REST API, base URL configurable for GitHub
Enterprise), a `workflow_dispatch` of a rollback workflow, a generic webhook, or a command.
Alerts: a Slack incoming webhook, a generic webhook, PagerDuty Events API v2 (deduplicated by
the anomaly key, resolved when the anomaly clears). Self-healing: re-running a run's failed
jobs. Every request is retried with backoff on 5xx, timeouts and refused connections; tokens
are passed in, never logged.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import date, datetime


@dataclass(frozen=True)
class Sent:
    """The outcome of one request, for the audit: the last status (None: no answer) and tries."""

    ok: bool
    status: int | None
    attempts: int
    detail: str


def _iso(value: object) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def post_json(
    url: str,
    body: dict,
    headers: dict[str, str] | None = None,
    retries: int = 3,
    timeout_s: float = 10.0,
    backoff_s: float = 0.5,
) -> Sent:
    """POST a JSON body; retry 5xx, 429, timeouts and connection errors with backoff.
    Times (an anomaly's detected_at) go as ISO 8601 text."""
    data = json.dumps(body, default=_iso).encode()
    status, detail = None, ""
    for attempt in range(1, retries + 1):
        request = urllib.request.Request(
            url,
            data=data,
            method="POST",
            headers={"Content-Type": "application/json", **(headers or {})},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                return Sent(
                    True, response.status, attempt, response.read(512).decode(errors="replace")
                )
        except urllib.error.HTTPError as exc:
            status, detail = exc.code, exc.read(512).decode(errors="replace")
            if exc.code < 500 and exc.code != 429:
                return Sent(False, status, attempt, detail)
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            status, detail = None, str(getattr(exc, "reason", exc))
        if attempt < retries:
            time.sleep(backoff_s * 2 ** (attempt - 1))
    return Sent(False, status, retries, detail)


def _github_headers(token: str) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {token}",
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": "2022-11-28",
    }


@dataclass(frozen=True)
class RollbackTarget:
    service: str
    repo: str
    environment: str
    good_sha: str
    bad_sha: str
    anomaly_key: str


class GitHubDeploymentRollback:
    """A new deployment of the last good sha (POST /repos/{repo}/deployments)."""

    def __init__(self, api_url: str, token: str) -> None:
        self.api_url, self.token = api_url.rstrip("/"), token

    def rollback(self, target: RollbackTarget) -> Sent:
        return post_json(
            f"{self.api_url}/repos/{target.repo}/deployments",
            {
                "ref": target.good_sha,
                "environment": target.environment,
                "auto_merge": False,
                "required_contexts": [],
                "description": f"dcicd rollback from {target.bad_sha[:8]} ({target.anomaly_key})",
            },
            _github_headers(self.token),
        )


class GitHubWorkflowRollback:
    """A `workflow_dispatch` of the service's rollback workflow, with the sha as input."""

    def __init__(self, api_url: str, token: str, workflow: str, ref: str = "main") -> None:
        self.api_url, self.token, self.workflow, self.ref = (
            api_url.rstrip("/"),
            token,
            workflow,
            ref,
        )

    def rollback(self, target: RollbackTarget) -> Sent:
        return post_json(
            f"{self.api_url}/repos/{target.repo}/actions/workflows/{self.workflow}/dispatches",
            {
                "ref": self.ref,
                "inputs": {"sha": target.good_sha, "environment": target.environment},
            },
            _github_headers(self.token),
        )


class WebhookRollback:
    def __init__(self, url: str) -> None:
        self.url = url

    def rollback(self, target: RollbackTarget) -> Sent:
        return post_json(self.url, {"action": "rollback", **target.__dict__})


class CommandRollback:
    """A command template, e.g. `deploy.sh {service} {good_sha}`, run without a shell."""

    def __init__(self, template: str, timeout_s: float = 600) -> None:
        self.template, self.timeout_s = template, timeout_s

    def rollback(self, target: RollbackTarget) -> Sent:
        argv = [part.format(**target.__dict__) for part in shlex.split(self.template)]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=self.timeout_s)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return Sent(False, None, 1, str(exc))
        return Sent(done.returncode == 0, done.returncode, 1, (done.stdout + done.stderr)[-512:])


def slack_alert(webhook_url: str, text: str) -> Sent:
    return post_json(webhook_url, {"text": text})


def webhook_alert(url: str, anomaly: dict, event: str = "anomaly") -> Sent:
    """`event` says what the alert is about: `anomaly`, or `platform` (a failed run, a disk)."""
    return post_json(url, {"event": event, **anomaly})


PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
PD_SEVERITY = {"info": "info", "warning": "warning", "critical": "critical"}


def pagerduty_event(
    routing_key: str, anomaly: dict, resolve: bool = False, url: str = PAGERDUTY_EVENTS_URL
) -> Sent:
    """Trigger (or resolve) a PagerDuty alert deduplicated by the anomaly key."""
    body = {
        "routing_key": routing_key,
        "event_action": "resolve" if resolve else "trigger",
        "dedup_key": anomaly["anomaly_key"],
    }
    if not resolve:
        body["payload"] = {
            "summary": anomaly["explanation"][:1024],
            "source": anomaly.get("service") or "dcicd",
            "severity": PD_SEVERITY.get(anomaly["severity"], "warning"),
            "component": anomaly["kind"],
        }
    return post_json(url, body)


def rerun_failed_jobs(api_url: str, token: str, repo: str, run_id: str) -> Sent:
    """Re-run a GitHub Actions run's failed jobs (POST .../runs/{id}/rerun-failed-jobs)."""
    return post_json(
        f"{api_url.rstrip('/')}/repos/{repo}/actions/runs/{run_id}/rerun-failed-jobs",
        {},
        _github_headers(token),
    )
