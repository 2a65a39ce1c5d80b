"""deployment_health: a production deployment's health samples after it against those before.

Judged as automated canary analysis judges a canary (Kayenta): a Mann-Whitney U test per
metric, harm in one direction only (higher), an effect-size floor, a score = share of metrics
that pass, and pass / marginal / fail; an incident the deployment caused within the rollback
window fails it outright.

HEALTH_SQL judges every production deployment; the watch judges again only a deployment whose
inputs changed: its row or its incidents (a digest per deployment), or the health samples of a
day its window touches (a digest per service, environment and UTC day, ml.anomaly_inputs), so
the samples are aggregated, not joined, and the statistics run for those alone.
"""

from __future__ import annotations

import math
import statistics
from typing import TYPE_CHECKING

from dbt_like_sql.catalog import fetch_dicts
from ml.anomaly.store import as_frame

if TYPE_CHECKING:
    import polars as pl

    from dcicd_platform.config import AnomalyThresholds
    from ml.anomaly.changes import Judged

HEALTH_SQL = """
SELECT d.deployment_key, d.service, d.environment, d.sha, d.deployed_at,
    list(h.error_rate ORDER BY h.ts) FILTER (WHERE h.ts < d.deployed_at) AS rate_before,
    list(h.error_rate ORDER BY h.ts) FILTER (WHERE h.ts > d.deployed_at) AS rate_after,
    list(h.latency_p95_ms ORDER BY h.ts) FILTER (WHERE h.ts < d.deployed_at) AS latency_before,
    list(h.latency_p95_ms ORDER BY h.ts) FILTER (WHERE h.ts > d.deployed_at) AS latency_after,
    max(h.ts) AS last_sample,
    (SELECT count(*) FROM core.incidents i WHERE i.caused_by_deployment_key = d.deployment_key
        AND i.opened_at <= d.deployed_at + to_minutes($window::BIGINT)) AS incidents
FROM marts.production_deployments d
JOIN core.health_samples h ON h.service = d.service AND h.environment = d.environment
    AND h.ts >= d.deployed_at - to_minutes($window::BIGINT)
    AND h.ts <= d.deployed_at + to_minutes($window::BIGINT)
GROUP BY ALL
"""

# HEALTH_SQL over the deployments listed in dcicd_judged_deployments.
CHANGED_HEALTH_SQL = HEALTH_SQL.replace(
    "FROM marts.production_deployments d",
    "FROM marts.production_deployments d SEMI JOIN dcicd_judged_deployments j USING"
    " (deployment_key)",
)
# What a verdict depends on, as digests: each deployment's row and incidents, and each
# service's health samples per environment and UTC day.
INPUTS_SQL = """
CREATE OR REPLACE TEMP TABLE dcicd_health_inputs AS
SELECT 'deployment_health:deployment' AS kind, d.deployment_key AS entity_key,
    hash(d.service, d.environment, d.sha, d.deployed_at, (
        SELECT count(*) FROM core.incidents i WHERE i.caused_by_deployment_key = d.deployment_key
            AND i.opened_at <= d.deployed_at + to_minutes($window::BIGINT)))::HUGEINT AS digest
FROM marts.production_deployments d
UNION ALL
SELECT 'deployment_health:samples', concat_ws(chr(31), service, environment, ts::DATE),
    sum(hash(delivery_id, ts, error_rate, latency_p95_ms))::HUGEINT
FROM core.health_samples
WHERE service IS NOT NULL AND environment IS NOT NULL AND ts IS NOT NULL
GROUP BY service, environment, ts::DATE
"""
# The inputs that differ from those last judged (new, changed or gone).
CHANGED_INPUTS_SQL = """
CREATE OR REPLACE TEMP TABLE dcicd_changed_inputs AS
SELECT coalesce(n.kind, o.kind) AS kind, coalesce(n.entity_key, o.entity_key) AS entity_key,
    n.digest
FROM dcicd_health_inputs n
FULL JOIN (SELECT * FROM ml.anomaly_inputs WHERE kind LIKE 'deployment_health:%') o
    USING (kind, entity_key)
WHERE n.digest IS DISTINCT FROM o.digest
"""
JUDGED_SQL = """
CREATE OR REPLACE TEMP TABLE dcicd_judged_deployments AS
SELECT entity_key AS deployment_key FROM dcicd_changed_inputs
WHERE kind = 'deployment_health:deployment'
UNION
SELECT d.deployment_key FROM marts.production_deployments d
JOIN (SELECT string_split(entity_key, chr(31)) AS part FROM dcicd_changed_inputs
    WHERE kind = 'deployment_health:samples') c
    ON c.part[1] = d.service AND c.part[2] = d.environment
    AND c.part[3]::DATE BETWEEN (d.deployed_at - to_minutes($window::BIGINT))::DATE
        AND (d.deployed_at + to_minutes($window::BIGINT))::DATE
"""
# Remember the inputs judged (in the same transaction as the anomalies they gave).
REMEMBER_SQL = """
DELETE FROM ml.anomaly_inputs WHERE kind LIKE 'deployment_health:%'
    AND (kind, entity_key) IN (SELECT (kind, entity_key) FROM dcicd_changed_inputs);
INSERT INTO ml.anomaly_inputs
SELECT kind, entity_key, digest FROM dcicd_changed_inputs WHERE digest IS NOT NULL;
"""

# Every statement this detector runs (the lineage of ml/anomalies is read from these).
SQL = (HEALTH_SQL, CHANGED_HEALTH_SQL)


def canary_verdict(
    before: list[float], after: list[float], t: AnomalyThresholds
) -> tuple[str, float]:
    """One metric, Kayenta's way: ("pass" | "fail" | "nodata", p-value); harm is higher."""
    from scipy.stats import mannwhitneyu

    before = [x for x in before or [] if x is not None]
    after = [x for x in after or [] if x is not None]
    if len(before) < 3 or len(after) < 3:
        return "nodata", math.nan
    p = float(mannwhitneyu(after, before, alternative="greater").pvalue)
    base = statistics.median(before)
    effect = (
        (statistics.median(after) - base) / base
        if base > 0
        else (math.inf if statistics.median(after) > 0 else 0)
    )
    return ("fail" if p < t.health_p_value and effect >= t.health_min_effect else "pass"), p


def deployment_health(conn, t: AnomalyThresholds, window_minutes: int) -> pl.DataFrame:
    """Deployments that are not a pass, judged on the samples `window_minutes` either side
    (the automation's rollback window: what it may still roll back)."""
    return as_frame(_verdicts(fetch_dicts(conn, HEALTH_SQL, {"window": window_minutes}), t))


def changed(
    conn, t: AnomalyThresholds, window_minutes: int, whole: bool
) -> tuple[pl.DataFrame, Judged]:
    """The deployments whose inputs changed since they were last judged (all when whole), and
    which anomaly keys that covers; `remember` stores what they were judged on."""
    params = {"window": window_minutes}
    conn.execute(INPUTS_SQL, params)
    if whole:
        conn.execute("DELETE FROM ml.anomaly_inputs WHERE kind LIKE 'deployment_health:%'")
    conn.execute(CHANGED_INPUTS_SQL)
    if whole:
        return deployment_health(conn, t, window_minutes), None
    conn.execute(JUDGED_SQL, params)
    found = as_frame(_verdicts(fetch_dicts(conn, CHANGED_HEALTH_SQL, params), t))
    judged = {
        k for (k,) in conn.execute("SELECT deployment_key FROM dcicd_judged_deployments").fetchall()
    }
    judged |= {
        k
        for (k,) in conn.execute(
            "SELECT entity_key FROM dcicd_changed_inputs WHERE digest IS NULL"
            " AND kind = 'deployment_health:deployment'"
        ).fetchall()
    }
    return found, judged.__contains__


def remember(conn) -> None:
    """Store the inputs `changed` judged, once its anomalies are stored."""
    conn.execute(REMEMBER_SQL)


def _verdicts(found: list[dict], t: AnomalyThresholds) -> list[dict]:
    rows = []
    for r in found:
        verdicts = {
            "error rate": canary_verdict(r["rate_before"], r["rate_after"], t),
            "P95 latency": canary_verdict(r["latency_before"], r["latency_after"], t),
        }
        judged = {m: v for m, v in verdicts.items() if v[0] != "nodata"}
        if not judged and not r["incidents"]:
            continue
        passed = sum(v[0] == "pass" for v in judged.values())
        score = 100 * passed / len(judged) if judged else 0.0
        verdict = "pass" if score >= 75 else "marginal" if score >= 50 else "fail"
        if r["incidents"]:
            verdict = "fail"
        if verdict == "pass":
            continue
        failing = [m for m, v in judged.items() if v[0] == "fail"]
        before, after = (
            statistics.median(r["rate_before"] or [0]),
            statistics.median(r["rate_after"] or [0]),
        )
        reasons = ", ".join(failing) + (" up" if failing else "")
        if r["incidents"]:
            reasons += ("; " if reasons else "") + f"{r['incidents']} incident(s) opened"
        rows.append(
            {
                "kind": "deployment_health",
                "service": r["service"],
                "entity_key": r["deployment_key"],
                "detected_at": r["last_sample"],
                "observed": after,
                "expected": before,
                "score": score,
                "severity": "critical" if verdict == "fail" else "warning",
                "explanation": f"{r['service']} {r['environment']} deploy of {r['sha'][:8]} at"
                f" {r['deployed_at']:%Y-%m-%d %H:%M}: {verdict} (canary score {score:.0f});"
                f" {reasons}; error rate {before:.2%} -> {after:.2%}",
            }
        )
    return rows
