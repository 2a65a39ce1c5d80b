"""The gate's rules as one pure decision: facts in, a verdict with every reason out (no I/O).

Each rule answers `pass`, `fail`, `no_data` (nothing to judge it on: it does not block) or
`not_applied` (left out of `gate.rules`). In `enforce` mode any `fail` is a no-go; `shadow`
always answers go and keeps what enforce would have said; `off` answers go without reading.
The verdict is `undecided` when the warehouse cannot be read or knows nothing of the service
and the sha (a gate must not wave through what it has never seen, nor stop it blindly).
"""

from __future__ import annotations

import fnmatch
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

from dcicd_platform.config import GATE_RULES, Gate

SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}
GREEN = ("success", "skipped")  # a skipped workflow blocks nothing (as GitHub's checks treat it)


@dataclass(frozen=True)
class Anomaly:
    anomaly_key: str
    kind: str
    severity: str
    detected_at: datetime
    explanation: str


@dataclass(frozen=True)
class Rollback:
    action_id: str
    at: datetime
    target: str


@dataclass(frozen=True)
class Run:
    """The latest attempt of one workflow on the sha; failure_risk from ml.build_predictions
    (1 - predicted success probability), None when the run was not scored."""

    workflow: str
    status: str
    conclusion: str | None
    failure_risk: float | None = None


@dataclass(frozen=True)
class Facts:
    """What the warehouse knows that the rules read. `unknown` says why there is nothing to
    judge (a service or sha it has never seen); `unreadable` why it could not be read at all."""

    service: str
    sha: str
    environment: str
    now: datetime
    unknown: str | None = None  # why the warehouse knows nothing to judge on
    unreadable: str | None = None
    anomalies: list[Anomaly] = field(default_factory=list)
    rollbacks: list[Rollback] = field(default_factory=list)
    change_failure_rate: tuple[float | None, float | None, str] | None = (
        None  # target, actual, status
    )
    runs: list[Run] = field(default_factory=list)
    changes: int | None = None
    changes_basis: str = ""
    source: str = "live"  # or "snapshot": the last published copy, while a refresh writes


@dataclass(frozen=True)
class Reason:
    rule: str
    status: str  # pass | fail | no_data | not_applied
    detail: str


@dataclass(frozen=True)
class Verdict:
    service: str
    sha: str
    environment: str
    mode: str
    verdict: str  # go | no-go | undecided: the answer given
    enforced: str  # what enforce mode says (the same as verdict in enforce)
    reasons: list[Reason]
    asked_at: datetime
    why_undecided: str | None = None
    source: str = "live"
    gate_id: str = ""  # its row in ops.gates

    @property
    def exit_code(self) -> int:
        return {"go": 0, "no-go": 1}.get(self.verdict, 2)

    def as_dict(self) -> dict:
        out = asdict(self)
        out["asked_at"] = self.asked_at.isoformat()
        return out


def _open_anomaly(facts: Facts, gate: Gate) -> Reason:
    least = SEVERITY_RANK[gate.anomaly_severity]
    blocking = [
        a
        for a in facts.anomalies
        if a.kind in gate.anomaly_kinds and SEVERITY_RANK.get(a.severity, 0) >= least
    ]
    if not blocking:
        return Reason(
            "open_anomaly",
            "pass",
            f"no open {gate.anomaly_severity}+ anomaly ({', '.join(gate.anomaly_kinds)}) from"
            f" the last {gate.anomaly_window_hours:g} h or on the deployment in production",
        )
    listed = "; ".join(
        f"{a.severity} {a.kind} {a.anomaly_key} since {a.detected_at:%Y-%m-%d %H:%M}Z:"
        f" {a.explanation}"
        for a in blocking
    )
    return Reason("open_anomaly", "fail", f"{len(blocking)} open: {listed}")


def _recent_rollback(facts: Facts, gate: Gate) -> Reason:
    since = facts.now - timedelta(hours=gate.cooldown_hours)
    recent = [r for r in facts.rollbacks if r.at >= since]
    if not recent:
        return Reason(
            "recent_rollback",
            "pass",
            f"no rollback by the automation in the last {gate.cooldown_hours:g} h",
        )
    last = max(recent, key=lambda r: r.at)
    until = last.at + timedelta(hours=gate.cooldown_hours)
    return Reason(
        "recent_rollback",
        "fail",
        f"the automation rolled {facts.service} back at {last.at:%Y-%m-%d %H:%M}Z"
        f" ({last.action_id}); cooling down until {until:%Y-%m-%d %H:%M}Z"
        f" ({gate.cooldown_hours:g} h)",
    )


def _change_failure_rate(facts: Facts, gate: Gate) -> Reason:
    if facts.change_failure_rate is None:
        return Reason("change_failure_rate", "no_data", "not in the KPI scorecard")
    target, actual, status = facts.change_failure_rate
    if status == "no_data" or actual is None:
        return Reason("change_failure_rate", "no_data", "no deployments in the scorecard's window")
    said = f"{actual:.1%} over the last 30 days (target below {target:.1%})"
    return Reason("change_failure_rate", "fail" if status == "missed" else "pass", said)


def _workflows(facts: Facts, gate: Gate) -> Reason:
    runs = facts.runs
    if gate.required_workflows:
        missing = [
            p
            for p in gate.required_workflows
            if not any(fnmatch.fnmatchcase(r.workflow, p) for r in runs)
        ]
        runs = [
            r
            for r in runs
            if any(fnmatch.fnmatchcase(r.workflow, p) for p in gate.required_workflows)
        ]
    else:
        missing = []
        if not runs:
            return Reason("workflows", "no_data", f"no workflow ran on {facts.sha[:12]}")
    not_green = [r for r in runs if r.status != "completed" or r.conclusion not in GREEN]
    problems = [f"{p}: no run on this sha" for p in missing] + [
        f"{r.workflow}: {r.conclusion if r.status == 'completed' else r.status}" for r in not_green
    ]
    if problems:
        return Reason("workflows", "fail", "not green: " + "; ".join(problems))
    names = ", ".join(sorted(r.workflow for r in runs))
    return Reason("workflows", "pass", f"{len(runs)} green: {names}")


def _failure_risk(facts: Facts, gate: Gate) -> Reason:
    scored = [r for r in facts.runs if r.failure_risk is not None]
    if not scored:
        return Reason("failure_risk", "no_data", "no scored run on this sha")
    worst = max(scored, key=lambda r: r.failure_risk)
    said = (
        f"highest predicted failure risk {worst.failure_risk:.0%} ({worst.workflow});"
        f" threshold {gate.max_failure_risk:.0%}"
    )
    return Reason(
        "failure_risk", "fail" if worst.failure_risk > gate.max_failure_risk else "pass", said
    )


def _change_size(facts: Facts, gate: Gate) -> Reason:
    if facts.changes is None:
        return Reason("change_size", "no_data", "the change set is not known")
    noun = "commit" if facts.changes == 1 else "commits"
    said = f"{facts.changes} {noun} {facts.changes_basis} (at most {gate.max_changes})"
    return Reason("change_size", "fail" if facts.changes > gate.max_changes else "pass", said)


RULES = {
    "open_anomaly": _open_anomaly,
    "recent_rollback": _recent_rollback,
    "change_failure_rate": _change_failure_rate,
    "workflows": _workflows,
    "failure_risk": _failure_risk,
    "change_size": _change_size,
}
assert tuple(RULES) == GATE_RULES


def decide(facts: Facts, gate: Gate) -> Verdict:
    """The verdict on facts under the gate's configuration, with a reason per rule."""

    def verdict(enforced: str, reasons: list[Reason], why: str | None = None) -> Verdict:
        answer = enforced if gate.mode == "enforce" else "go"
        return Verdict(
            facts.service,
            facts.sha,
            facts.environment,
            gate.mode,
            answer,
            enforced,
            reasons,
            facts.now,
            why,
            facts.source,
        )

    if gate.mode == "off":
        return verdict("go", [Reason("mode", "not_applied", "gate mode is off: no rule is read")])
    if facts.unreadable or facts.unknown:
        return verdict("undecided", [], facts.unreadable or facts.unknown)
    reasons = [
        RULES[name](facts, gate)
        if name in gate.rules
        else Reason(name, "not_applied", "not in gate.rules")
        for name in GATE_RULES
    ]
    return verdict("no-go" if any(r.status == "fail" for r in reasons) else "go", reasons)
