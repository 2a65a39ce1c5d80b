"""The guardrails every autonomous rollback passes, as one pure decision (no I/O).

Defaults from the rollout strategy (config `automation:`): at most 3 rollbacks per service per
UTC day; only within 30 minutes of the deployment; a service marked critical waits for a human
approval; after 3 consecutive failed rollbacks the autonomous mode disables itself (the breaker)
and pages; and a global mode: `off` (nothing), `shadow` (decide and audit, execute nothing,
the default) or `live`. A decision is made from the history of earlier decisions, so the same
rules hold whatever order anomalies arrive in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from dcicd_platform.config import Automation

Outcome = Literal["execute", "shadow", "pending_approval", "suppressed"]


@dataclass(frozen=True)
class RollbackRequest:
    anomaly_key: str
    service: str
    deployed_at: datetime
    requested_at: datetime
    critical_service: bool = False
    approved: bool = False


@dataclass(frozen=True)
class PastRollback:
    """An earlier decision: what it was, and for an executed one, whether it worked."""

    service: str
    decided_at: datetime
    outcome: Outcome
    succeeded: bool | None = None  # None while unknown, or when nothing was executed


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    reason: str
    page: bool = False  # the breaker is open: a human must know


def utc_day(moment: datetime) -> date:
    """The UTC day of a moment, whatever zone it is expressed in (a naive one is taken as UTC):
    the daily cap is an operational limit, so it counts UTC days on any host and whatever the
    reporting time zone (a figure people read counts that zone's days; a limit must not move,
    or let 25 hours through on a daylight-saving night, when someone changes how reports read)."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).date()


def breaker_open(history: list[PastRollback], limit: int) -> bool:
    """The last `limit` executed rollbacks all failed (a success closes it again)."""
    executed = [h for h in history if h.outcome == "execute" and h.succeeded is not None]
    recent = executed[-limit:]
    return len(recent) == limit and not any(h.succeeded for h in recent)


def decide(request: RollbackRequest, history: list[PastRollback], rules: Automation) -> Decision:
    """Whether a rollback runs, runs in shadow, waits for approval, or is suppressed, and why."""
    if rules.mode == "off":
        return Decision("suppressed", "automation mode is off")
    if breaker_open(history, rules.breaker_consecutive_failures):
        return Decision(
            "suppressed",
            f"the breaker is open: the last {rules.breaker_consecutive_failures} rollbacks"
            " failed, so autonomous rollbacks are disabled until one is done by hand",
            page=True,
        )
    age = request.requested_at - request.deployed_at
    if age > timedelta(minutes=rules.rollback_window_minutes) or age < timedelta(0):
        return Decision(
            "suppressed",
            f"outside the rollback window: the deployment is {age.total_seconds() / 60:.0f} min"
            f" old (window {rules.rollback_window_minutes} min)",
        )
    day = utc_day(request.requested_at)
    today = [
        h
        for h in history
        if h.service == request.service
        and utc_day(h.decided_at) == day
        and h.outcome in ("execute", "shadow")
    ]
    if len(today) >= rules.max_rollbacks_per_service_per_day:
        return Decision(
            "suppressed",
            f"daily cap: {len(today)} rollbacks of {request.service} today"
            f" (at most {rules.max_rollbacks_per_service_per_day})",
        )
    if request.critical_service and rules.critical_services_need_approval and not request.approved:
        return Decision("pending_approval", f"{request.service} is critical: a human approves")
    if rules.mode == "shadow":
        return Decision("shadow", "shadow mode: decided and audited, not executed")
    return Decision("execute", "within every guardrail")
