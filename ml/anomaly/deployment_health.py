"""deployment_health: a production deployment's health samples after it against those before.

Judged as automated canary analysis judges a canary (Kayenta): a Mann-Whitney U test per
metric, harm in one direction only (higher), an effect-size floor, a score = share of metrics
that pass, and pass / marginal / fail; an incident the deployment caused within the rollback
window fails it outright.
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

# Every statement this detector runs (the lineage of ml/anomalies is read from these).
SQL = (HEALTH_SQL,)


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
    rows = []
    for r in fetch_dicts(conn, HEALTH_SQL, {"window": window_minutes}):
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
    return as_frame(rows)
