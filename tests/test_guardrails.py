"""Guardrails: no sequence of rollback requests breaks the cap, the window, approval or breaker."""

import random
from datetime import UTC, datetime, timedelta

import pytest

from dcicd_platform.automation.guardrails import (
    PastRollback,
    RollbackRequest,
    breaker_open,
    decide,
)
from dcicd_platform.config import Automation

pytestmark = pytest.mark.dates  # the daily cap counts UTC days

START = datetime(2026, 3, 2, tzinfo=UTC)


def simulate(rules: Automation, seed: int, steps: int = 300) -> list:
    """Random requests in time order (services, ages, criticality, approvals, and whether an
    executed rollback worked), each decided on the history so far."""
    rng = random.Random(seed)
    history, log = [], []
    now = START
    for i in range(steps):
        now += timedelta(minutes=rng.choice([1, 5, 30, 120, 600]))
        request = RollbackRequest(
            anomaly_key=f"a{i}",
            service=rng.choice(["checkout", "payments", "search"]),
            deployed_at=now - timedelta(minutes=rng.uniform(-5, 90)),
            requested_at=now,
            critical_service=rng.random() < 0.3,
            approved=rng.random() < 0.5,
        )
        decision = decide(request, history, rules)
        succeeded = rng.random() < 0.6 if decision.outcome == "execute" else None
        history.append(PastRollback(request.service, now, decision.outcome, succeeded))
        log.append((request, decision, list(history[:-1])))
    return log


@pytest.mark.parametrize("seed", range(40))
@pytest.mark.parametrize("mode", ["live", "shadow", "off"])
def test_no_sequence_breaks_a_guardrail(seed, mode):
    rules = Automation(
        mode=mode, max_rollbacks_per_service_per_day=2, breaker_consecutive_failures=2
    )
    log = simulate(rules, seed)
    acted = {}
    for request, decision, before in log:
        if decision.outcome in ("execute", "shadow"):
            key = (request.service, request.requested_at.date())
            acted[key] = acted.get(key, 0) + 1
            assert acted[key] <= 2  # the daily cap
            age = request.requested_at - request.deployed_at
            assert timedelta(0) <= age <= timedelta(minutes=30)  # the window
            assert not (request.critical_service and not request.approved)  # approval
            assert not breaker_open(before, 2)  # the breaker
        if decision.outcome == "execute":
            assert mode == "live"
        if mode == "off":
            assert decision.outcome == "suppressed"
        if mode == "shadow":
            assert decision.outcome != "execute"  # shadow never executes


def test_each_rule_says_why():
    rules = Automation(mode="live")
    base = RollbackRequest("a", "checkout", START, START + timedelta(minutes=10))
    assert decide(base, [], rules).outcome == "execute"
    late = RollbackRequest("a", "checkout", START, START + timedelta(minutes=45))
    assert "outside the rollback window" in decide(late, [], rules).reason
    critical = RollbackRequest("a", "checkout", START, START + timedelta(minutes=5), True)
    assert decide(critical, [], rules).outcome == "pending_approval"
    approved = RollbackRequest("a", "checkout", START, START + timedelta(minutes=5), True, True)
    assert decide(approved, [], rules).outcome == "execute"
    three = [PastRollback("checkout", START, "execute", True)] * 3
    assert "daily cap" in decide(base, three, rules).reason
    failed = [PastRollback("search", START, "execute", False)] * 3
    tripped = decide(base, failed, rules)
    assert tripped.outcome == "suppressed" and tripped.page and "breaker" in tripped.reason
    healed = [*failed, PastRollback("search", START, "execute", True)]
    assert decide(base, healed, rules).outcome == "execute"  # a success closes the breaker
    assert decide(base, [], Automation(mode="shadow")).outcome == "shadow"
    assert decide(base, [], Automation(mode="off")).outcome == "suppressed"
