"""A hand-worked warehouse for the promotion gate: one service, its commits, a deployment, runs.

The baseline passes every rule. Service `payments` (repository acme/payments) has commits c1..c5
pushed to main in that order; c2 is in production since 2026-11-29 10:00 (its change set: c1,
c2); c4 is the candidate: pushed after c2, so it would bring c3 and c4 (2 commits). Two
workflows ran on c4, both green, with a predicted failure risk of 10% and 5%. The change
failure rate KPI is 5% against a 10% target. No anomaly, no rollback. NOW is when the gate is
asked. Each test adds its own problem with a few SQL statements.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
SERVICE, REPO, CANDIDATE, IN_PRODUCTION = "payments", "acme/payments", "c4", "c2"

BASELINE = """
CREATE SCHEMA core; CREATE SCHEMA marts; CREATE SCHEMA ml; CREATE SCHEMA ops;
CREATE TABLE core.pipeline_runs (run_key VARCHAR, repo VARCHAR, service VARCHAR,
    workflow VARCHAR, branch VARCHAR, sha VARCHAR, status VARCHAR, conclusion VARCHAR,
    attempt INTEGER, started_at TIMESTAMPTZ);
INSERT INTO core.pipeline_runs VALUES
    ('r1', 'acme/payments', 'payments', 'ci', 'main', 'c4', 'completed', 'success', 1,
        '2026-11-30 10:00+00'),
    ('r2', 'acme/payments', 'payments', 'lint', 'main', 'c4', 'completed', 'success', 1,
        '2026-11-30 10:00+00'),
    ('r0', 'acme/payments', 'payments', 'ci', 'main', 'c2', 'completed', 'success', 1,
        '2026-11-29 09:00+00');
CREATE TABLE ml.build_predictions (run_key VARCHAR, model_name VARCHAR, model_version VARCHAR,
    predicted_success_proba DOUBLE);
INSERT INTO ml.build_predictions VALUES ('r1', 'build_outcome', '1', 0.90),
    ('r2', 'build_outcome', '1', 0.95), ('r1', 'build_duration', '1', NULL);
CREATE TABLE core.deployments (deployment_key VARCHAR, service VARCHAR, repo VARCHAR,
    environment VARCHAR, sha VARCHAR, status VARCHAR, deployed_at TIMESTAMPTZ,
    is_production BOOLEAN);
INSERT INTO core.deployments VALUES
    ('d1', 'payments', 'acme/payments', 'production', 'c2', 'success', '2026-11-29 10:00+00', true);
CREATE TABLE core.commits (repo VARCHAR, branch VARCHAR, sha VARCHAR, push_seq BIGINT,
    pushed_at TIMESTAMPTZ);
INSERT INTO core.commits VALUES
    ('acme/payments', 'main', 'c1', 1, '2026-11-28 09:00+00'),
    ('acme/payments', 'main', 'c2', 2, '2026-11-28 10:00+00'),
    ('acme/payments', 'main', 'c3', 3, '2026-11-29 11:00+00'),
    ('acme/payments', 'main', 'c4', 4, '2026-11-30 09:00+00'),
    ('acme/payments', 'main', 'c5', 5, '2026-11-30 11:00+00');
CREATE TABLE marts.deployment_changes (deployment_key VARCHAR, service VARCHAR, sha VARCHAR);
INSERT INTO marts.deployment_changes VALUES ('d1', 'payments', 'c1'), ('d1', 'payments', 'c2');
CREATE TABLE marts.kpi_scorecard (kpi VARCHAR, scope VARCHAR, target DOUBLE, actual DOUBLE,
    goal VARCHAR, status VARCHAR);
INSERT INTO marts.kpi_scorecard VALUES
    ('change_failure_rate', 'payments', 0.10, 0.05, 'below', 'met'),
    ('change_failure_rate', '*', 0.10, 0.30, 'below', 'missed'),
    ('lead_time_hours', 'payments', 24, 80, 'below', 'missed');
CREATE TABLE ml.anomalies (anomaly_key VARCHAR, kind VARCHAR, service VARCHAR,
    entity_key VARCHAR, detected_at TIMESTAMPTZ, observed DOUBLE, expected DOUBLE,
    score DOUBLE, severity VARCHAR, explanation VARCHAR, cleared_at TIMESTAMPTZ);
CREATE TABLE ops.actions (action_id VARCHAR, kind VARCHAR, anomaly_key VARCHAR,
    service VARCHAR, mode VARCHAR, decision VARCHAR, reason VARCHAR, target VARCHAR,
    requested_at TIMESTAMPTZ, finished_at TIMESTAMPTZ, entity_key VARCHAR);
"""

# One problem per rule, each alone enough for a no-go.
PROBLEMS = {
    "open_anomaly": "INSERT INTO ml.anomalies VALUES ('a1', 'deployment_health', 'payments',"
    " 'd1', '2026-11-30 11:00+00', 0.05, 0.01, 9, 'critical', 'error rate 1% -> 5%', NULL)",
    "recent_rollback": "INSERT INTO ops.actions VALUES ('rollback:a0', 'rollback', 'a0',"
    " 'payments', 'live', 'executed', 'within every guardrail', 'c1',"
    " '2026-11-30 02:00+00', '2026-11-30 02:01+00', 'd0')",
    "change_failure_rate": "UPDATE marts.kpi_scorecard SET actual = 0.25, status = 'missed'"
    " WHERE kpi = 'change_failure_rate' AND scope = 'payments'",
    "workflows": "INSERT INTO core.pipeline_runs VALUES ('r1b', 'acme/payments', 'payments',"
    " 'ci', 'main', 'c4', 'completed', 'failure', 2, '2026-11-30 10:30+00')",
    "failure_risk": "UPDATE ml.build_predictions SET predicted_success_proba = 0.30"
    " WHERE run_key = 'r2' AND model_name = 'build_outcome'",
    "change_size": "INSERT INTO core.commits SELECT 'acme/payments', 'main', 'x' || i, 3,"
    " '2026-11-29 12:00+00' FROM range(60) t(i)",
}


def make_home(root: Path, *statements: str, baseline: bool = True) -> Path:
    """A DCICD_HOME whose warehouse is the baseline plus the statements given."""
    root.mkdir(parents=True, exist_ok=True)
    conn = duckdb.connect(str(root / "warehouse.duckdb"))
    try:
        if baseline:
            conn.execute(BASELINE)
        for statement in statements:
            conn.execute(statement)
    finally:
        conn.close()
    return root
