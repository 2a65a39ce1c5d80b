"""The responders: answer one anomaly (or one flaky run), deciding within the guardrails,
acting (or not), and auditing in ops.actions.

Every decision is recorded, taken or not: `executed`, `failed`, `shadow` (decided, nothing
sent), `pending_approval` or `suppressed`, with the reason, the mode, the target, the status of
the request and the times. An action's id is its kind and the anomaly's occurrence (a
re-run's: its kind and the run), so acting twice on the same occurrence updates one row (an
approval turns `pending_approval` into what happened next), and an anomaly that cleared and
came back gets rows of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from dbt_like_sql.catalog import fetch_dicts
from dcicd_platform.automation import actions
from dcicd_platform.automation.actions_table import ensure_actions_table
from dcicd_platform.automation.guardrails import PastRollback, RollbackRequest, decide
from dcicd_platform.automation.interventions import effective_mode, record
from dcicd_platform.config import PlatformConfig


@dataclass
class Outcome:
    action_id: str
    decision: str
    reason: str


def occurrence_key(anomaly_key: str, occurrence: int | None) -> str:
    """One occurrence of an anomaly: its key the first time, `key#n` when it came back after
    clearing. Run keys and action ids carry it, so a recurrence is acted on (and audited) anew
    while the same occurrence is acted on once."""
    return anomaly_key if (occurrence or 1) <= 1 else f"{anomaly_key}#{occurrence}"


def _acted_on(subject: dict) -> str:
    """What an action is keyed by: the anomaly's occurrence, for a re-run the run, for an
    alert about the platform itself its own key (`run_failure:<run id>`, `storage#<n>`)."""
    if "action_key" in subject:
        return subject["action_key"]
    if "run_key" in subject:
        return subject["run_key"]
    return occurrence_key(subject["anomaly_key"], subject.get("occurrence"))


def _record(
    conn,
    kind: str,
    subject: dict,
    mode: str,
    decision: str,
    reason: str,
    requested_at: datetime,
    target: str = "",
    sent: actions.Sent | None = None,
    page: bool = False,
) -> Outcome:
    """Audit one decision about `subject` (an ml.anomalies row, or a re-run's run) in
    ops.actions; a re-run has no anomaly: its run is the row's entity_key."""
    action_id = f"{kind}:{_acted_on(subject)}"
    conn.execute(
        "INSERT OR REPLACE INTO ops.actions (action_id, kind, anomaly_key, service, mode,"
        " decision, reason, target, request_status, attempts, page, requested_at, finished_at,"
        " entity_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            action_id,
            kind,
            subject.get("anomaly_key"),
            subject.get("service"),
            mode,
            decision,
            reason,
            target,
            sent.status if sent else None,
            sent.attempts if sent else 0,
            page,
            requested_at,
            datetime.now(UTC),
            subject.get("entity_key"),
        ],
    )
    return Outcome(action_id, decision, reason)


def _unless_live(
    conn, kind: str, subject: dict, mode: str, what: str, now: datetime, target: str = ""
) -> Outcome | None:
    """Off: suppressed; shadow: decided, not done; both audited. Live: None (go on)."""
    if mode == "live":
        return None
    decision = "suppressed" if mode == "off" else "shadow"
    return _record(conn, kind, subject, mode, decision, f"mode {mode}: {what}", now, target)


def _begin(
    conn, config: PlatformConfig, now: datetime | None, capability: str
) -> tuple[datetime, str]:
    """Every responder's start: the audit table exists; the decision's time and the mode of
    its capability at this moment (its switch, the configuration, automation.mode's ceiling:
    interventions.py), read at every decision so a switch needs no restart."""
    ensure_actions_table(conn)
    return now or datetime.now(UTC), effective_mode(conn, config, capability)


def load_anomaly(conn, anomaly_key: str) -> dict:
    row = fetch_dicts(conn, "SELECT * FROM ml.anomalies WHERE anomaly_key = ?", [anomaly_key])
    if not row:
        raise LookupError(f"no anomaly {anomaly_key} in ml.anomalies")
    return row[0]


def rollback_history(conn) -> list[PastRollback]:
    rows = conn.execute(
        "SELECT service, requested_at, decision FROM ops.actions WHERE kind = 'rollback'"
        " ORDER BY requested_at"
    ).fetchall()
    as_outcome = {"executed": "execute", "failed": "execute"}
    return [
        PastRollback(
            service,
            at,
            as_outcome.get(decision, decision),
            {"executed": True, "failed": False}.get(decision),
        )
        for service, at, decision in rows
    ]


def rollback_target(conn, anomaly: dict) -> tuple[actions.RollbackTarget | None, datetime | None]:
    """The deployment to undo and the last good sha before it in the same environment."""
    row = conn.execute(
        """SELECT d.service, d.repo, d.environment, d.sha, d.deployed_at,
            (SELECT p.sha FROM marts.production_deployments p
             WHERE p.service = d.service AND p.environment = d.environment
                AND p.deployed_at < d.deployed_at AND NOT p.is_failed
             ORDER BY p.deployed_at DESC LIMIT 1) AS good_sha
        FROM marts.production_deployments d WHERE d.deployment_key = ?""",
        [anomaly["entity_key"]],
    ).fetchall()
    if not row:
        return None, None
    service, repo, environment, sha, deployed_at, good = row[0]
    if good is None:
        return None, deployed_at
    return actions.RollbackTarget(
        service, repo, environment, good, sha, anomaly["anomaly_key"]
    ), deployed_at


@dataclass(frozen=True)
class Secrets:
    """The credentials an action may need (from the secrets resource: Dagster EnvVars)."""

    github_token: str = ""
    slack_webhook_url: str = ""
    pagerduty_routing_key: str = ""


def rollback_backend(config: PlatformConfig, secrets: Secrets = Secrets()):
    backend = config.automation.rollback
    token = secrets.github_token
    if backend.kind == "github_deployment":
        return actions.GitHubDeploymentRollback(backend.github_api_url, token)
    if backend.kind == "github_workflow":
        return actions.GitHubWorkflowRollback(backend.github_api_url, token, backend.workflow)
    if backend.kind == "webhook":
        return actions.WebhookRollback(backend.webhook_url)
    return actions.CommandRollback(backend.command)


def respond_rollback(
    conn,
    anomaly_key: str,
    config: PlatformConfig,
    *,
    approved: bool = False,
    secrets: Secrets = Secrets(),
    now: datetime | None = None,
    backend=None,
    approved_by: str | None = None,
) -> Outcome:
    """Roll back the deployment a critical deployment_health anomaly names, if the guardrails
    allow; record the decision either way (an approval as an intervention too, with who gave
    it). A failed request, or a decision stopped by the breaker, raises the critical
    `rollback_failed` alert."""
    now, mode = _begin(conn, config, now, "rollbacks")
    anomaly = load_anomaly(conn, anomaly_key)
    target, deployed_at = rollback_target(conn, anomaly)
    if target is None:
        return _record(
            conn,
            "rollback",
            anomaly,
            mode,
            "suppressed",
            "no earlier healthy deployment to roll back to",
            now,
        )
    critical = any(
        s.name == target.service and s.criticality == "critical" for s in config.services
    )
    request = RollbackRequest(anomaly_key, target.service, deployed_at, now, critical, approved)
    rules = config.automation.model_copy(update={"mode": mode})
    decision = decide(request, rollback_history(conn), rules)
    where = f"{target.repo} {target.environment} -> {target.good_sha[:8]}"
    if approved and decision.outcome in ("execute", "shadow"):
        record(
            conn,
            "approve",
            done_by=approved_by or "unknown",
            now=now,
            anomaly_key=anomaly_key,
            occurrence=anomaly.get("occurrence") or 1,
            action_id=f"rollback:{_acted_on(anomaly)}",
        )
    if decision.outcome != "execute":
        names = {"shadow": "shadow", "pending_approval": "pending_approval"}
        done = _record(
            conn,
            "rollback",
            anomaly,
            mode,
            names.get(decision.outcome, "suppressed"),
            decision.reason,
            now,
            where,
            page=decision.page,
        )
        if decision.page:  # the breaker is open: autonomous rollbacks stopped, a person must know
            _rollback_failed_alert(conn, anomaly, decision.reason, config, secrets, now)
        return done
    sent = (backend or rollback_backend(config, secrets)).rollback(target)
    done = _record(
        conn,
        "rollback",
        anomaly,
        mode,
        "executed" if sent.ok else "failed",
        decision.reason if sent.ok else f"the rollback request failed: {sent.detail}",
        now,
        where,
        sent,
    )
    if not sent.ok:
        _rollback_failed_alert(conn, anomaly, done.reason, config, secrets, now, where)
    return done


def _rollback_failed_alert(
    conn,
    anomaly: dict,
    why: str,
    config: PlatformConfig,
    secrets: Secrets,
    now: datetime,
    where: str = "",
) -> Outcome:
    """The catalogue's critical alert for an autonomous rollback that did not happen (its
    request failed, or the breaker stopped it), keyed by the anomaly's occurrence."""
    occurrence = _acted_on(anomaly)
    service = anomaly.get("service") or "a service"
    explanation = (
        f"dcicd: the autonomous rollback of {service} ({where or 'no target'}) did not happen:"
        f" {why} (anomaly {occurrence})"
    )
    return respond_platform_alert(
        conn,
        f"rollback_failed:{occurrence}",
        "rollback_failed",
        "critical",
        explanation,
        config,
        entity_key=anomaly.get("entity_key"),
        secrets=secrets,
        now=now,
    )


def respond_alert(
    conn,
    anomaly_key: str,
    config: PlatformConfig,
    *,
    secrets: Secrets = Secrets(),
    now: datetime | None = None,
    resolve: bool = False,
) -> Outcome:
    """Send an anomaly (or its clearing) to the channels its kind and severity route to, when
    alerts are live."""
    now, mode = _begin(conn, config, now, "alerts")
    anomaly = load_anomaly(conn, anomaly_key)
    kind = "resolve_alert" if resolve else "alert"
    return _alert(conn, kind, anomaly, anomaly, mode, config, secrets, now, resolve)


def respond_platform_alert(
    conn,
    key: str,
    kind: str,
    severity: str,
    explanation: str,
    config: PlatformConfig,
    *,
    entity_key: str | None = None,
    secrets: Secrets = Secrets(),
    now: datetime | None = None,
    resolve: bool = False,
) -> Outcome:
    """Alert on the platform itself (a failed run, a full disk) through the anomalies' channels:
    PagerDuty deduplicates by `key`, the webhook gets `event: platform`. Audited like any alert
    (action id `alert:<key>`, no anomaly; entity_key names the run or the disk) and under the
    same switch: only `live` sends."""
    now, mode = _begin(conn, config, now, "alerts")
    subject = {"action_key": key, "entity_key": entity_key}
    message = {
        "anomaly_key": key,
        "kind": kind,
        "severity": severity,
        "service": None,
        "explanation": explanation,
        "detected_at": now,
    }
    action = "resolve_alert" if resolve else "alert"
    return _alert(conn, action, subject, message, mode, config, secrets, now, resolve, "platform")


def _route(conn, subject: dict, message: dict, config: PlatformConfig, resolve: bool):
    """The channels of an alert: by its kind and severity; for a resolution, those its alert
    was sent to (the severity may have changed since)."""
    if resolve:
        sent = conn.execute(
            "SELECT target FROM ops.actions WHERE action_id = ? AND decision = 'executed'",
            [f"alert:{_acted_on(subject)}"],
        ).fetchall()
        if sent and sent[0][0]:
            return [c.strip() for c in sent[0][0].split(",") if c.strip()]
    return config.automation.alerts.route(message["kind"], message["severity"])


def _alert(
    conn,
    kind: str,
    subject: dict,
    message: dict,
    mode: str,
    config: PlatformConfig,
    secrets: Secrets,
    now: datetime,
    resolve: bool,
    event: str = "anomaly",
) -> Outcome:
    """Send `message` (an ml.anomalies row, or one shaped like it) to the channels its route
    names (automation.alerts.routes by severity, kind_routes per kind) among those configured;
    a resolution goes where its alert went. Record the decision about `subject` in
    ops.actions (the channels in `target`)."""
    route = _route(conn, subject, message, config, resolve)
    where = ", ".join(route) or "none"
    if waiting := _unless_live(conn, kind, subject, mode, f"nothing sent (route: {where})", now):
        return waiting
    if not route:
        why = f"{message['severity']} {message['kind']}: routed to the status view and the report"
        return _record(conn, kind, subject, mode, "suppressed", why, now)
    senders: dict[str, Callable[[], actions.Sent]] = {}
    if url := secrets.slack_webhook_url:
        text = ("Cleared: " if resolve else "") + message["explanation"]
        senders["slack"] = lambda: actions.slack_alert(url, text)
    if key := secrets.pagerduty_routing_key:
        pd_url = config.automation.alerts.pagerduty_events_url
        senders["pagerduty"] = lambda: actions.pagerduty_event(key, message, resolve, pd_url)
    if hook := config.automation.alerts.webhook_url:
        body = message | {"resolved": resolve}
        senders["webhook"] = lambda: actions.webhook_alert(hook, body, event)
    channels = [(name, send) for name, send in senders.items() if name in route]
    if not channels:
        why = f"no channel of its route ({where}) is configured"
        return _record(conn, kind, subject, mode, "suppressed", why, now)
    results = [(name, send()) for name, send in channels]
    failed = [name for name, sent in results if not sent.ok]
    return _record(
        conn,
        kind,
        subject,
        mode,
        "failed" if failed else "executed",
        f"failed: {', '.join(failed)}" if failed else "sent",
        now,
        ", ".join(name for name, _ in results),
        results[-1][1],
    )


def respond_model_rollback(
    conn,
    anomaly_key: str,
    config: PlatformConfig,
    rollback_champion: Callable[[str, str], tuple[str, str]],
    *,
    now: datetime | None = None,
) -> Outcome:
    """Move a model's champion alias back when its live quality is under the floor
    (rollback_champion: MlflowResource.rollback_champion, (model, reason) -> (from, to))."""
    now, mode = _begin(conn, config, now, "model_rollbacks")
    anomaly = load_anomaly(conn, anomaly_key)
    model, version = anomaly["entity_key"].split("|")
    kept = f"{model} champion left at version {version}"
    if waiting := _unless_live(conn, "model_rollback", anomaly, mode, kept, now, model):
        return waiting
    try:
        moved_from, moved_to = rollback_champion(model, anomaly["explanation"])
    except LookupError as exc:
        return _record(conn, "model_rollback", anomaly, mode, "suppressed", str(exc), now, model)
    moved = f"champion moved from version {moved_from} to {moved_to}"
    return _record(conn, "model_rollback", anomaly, mode, "executed", moved, now, model)


FLAKY_FAILURE_SQL = """
SELECT r.run_key, r.service, r.repo, r.provider_run_id, string_agg(j.job_name, ', ') AS jobs
FROM core.pipeline_runs r
JOIN core.pipeline_jobs j USING (run_key)
LEFT JOIN marts.flaky_jobs f
    ON f.repo = j.repo AND f.workflow = j.workflow AND f.job_name = j.job_name
WHERE r.source = 'github' AND r.status = 'completed' AND r.conclusion = 'failure'
    AND r.attempt = 1 AND r.finished_at >= $since AND j.conclusion = 'failure'
    AND ($run_key IS NULL OR r.run_key = $run_key)
GROUP BY r.run_key, r.service, r.repo, r.provider_run_id
-- every failed job is a known flake: it failed and then passed on the same sha before
HAVING bool_and(coalesce(f.flakes, 0) >= 2 AND f.flake_rate >= 0.02)
"""


def flaky_failures(conn, since: datetime, run_key: str | None = None) -> list[tuple]:
    """GitHub runs (or the one run) that failed only in jobs known to flake:
    (run_key, service, repo, id, jobs)."""
    return conn.execute(FLAKY_FAILURE_SQL, {"since": since, "run_key": run_key}).fetchall()


def respond_rerun(
    conn,
    run_key: str,
    config: PlatformConfig,
    *,
    secrets: Secrets = Secrets(),
    now: datetime | None = None,
    api_url: str | None = None,
) -> Outcome:
    """Self-healing: re-run a run's failed jobs once when every one of them is a known flake."""
    now, mode = _begin(conn, config, now, "reruns")
    rows = flaky_failures(conn, datetime(1970, 1, 1, tzinfo=UTC), run_key)
    # No anomaly: the action is keyed by the run, which is also the row's entity.
    service = rows[0][1] if rows else None
    subject = {"run_key": run_key, "entity_key": run_key, "service": service}
    if not rows:
        return _record(
            conn,
            "rerun",
            subject,
            mode,
            "suppressed",
            "not a run whose failed jobs are all known flakes",
            now,
        )
    _, _, repo, provider_run_id, jobs = rows[0]
    target = f"{repo} run {provider_run_id}: {jobs}"
    if waiting := _unless_live(conn, "rerun", subject, mode, "not re-run", now, target):
        return waiting
    api = api_url or config.automation.rollback.github_api_url
    sent = actions.rerun_failed_jobs(api, secrets.github_token, repo, provider_run_id)
    return _record(
        conn,
        "rerun",
        subject,
        mode,
        "executed" if sent.ok else "failed",
        f"known flakes re-run: {jobs}" if sent.ok else f"re-run failed: {sent.detail}",
        now,
        target,
        sent,
    )
