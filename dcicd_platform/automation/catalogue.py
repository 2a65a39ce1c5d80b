"""The rollout strategy's alert catalogue: the conditions on the platform as a whole that
alert, beside the anomalies (each of which alerts by its own kind and severity).

- `rollback_failed` (critical): an autonomous rollback whose request failed, or that the
  breaker stopped (responders.py; a failed rollback run alerts through run_failures too).
- `model_accuracy` (critical): a model version under its live quality floor (models.*_floor,
  70%), an anomaly; the champion rolls back as well.
- `health_score` (critical): the health score of `dcicd status` under
  `monitoring.health_score_alert_below` (80).
- `model_accuracy` (warning): a model version between its floor and
  `anomalies.model_quality_warning_below` (80%), an anomaly.
- `false_positive_rate` (warning): a detector kind's live false-positive rate over
  `monitoring.false_positive_rate_alert_above` (15%).
- `ci_cost` (warning): a cost anomaly, routed as a warning whatever its severity
  (`automation.alerts.kind_routes`).

The two conditions judged here (health score, false-positive rate) are evaluated by the
anomaly_actions sensor at every look at the warehouse: a condition that starts to hold asks for
one `platform_alert` run (key `<condition>:<n>`, the n-th time it holds), and one that stops
holding resolves it. Their state is ops.actions itself (the alerts and resolutions recorded), so
it survives restarts and `dcicd act` sees what the daemon did.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from dbt_like_sql.catalog import table_exists
from dcicd_platform.config import PlatformConfig


@dataclass(frozen=True)
class Condition:
    """A catalogue condition, whether it holds now: `name` is the alert's kind plus its subject
    (`health_score`, `false_positive_rate:ci_cost`)."""

    name: str
    kind: str
    severity: str
    holds: bool
    explanation: str


def health_score(conn) -> int | None:
    """The health score of `dcicd status` (status.py's definition), None without data."""
    from dcicd_platform.reading import TIERS, dora_summary, kpi_scorecard
    from dcicd_platform.status import Status

    status = Status()
    if table_exists(conn, "marts.dora_summary"):
        for row in dora_summary(conn, 30):
            if row["service"] == "*":
                status.tiers = {t: row[t] for t in TIERS}
    if table_exists(conn, "marts.kpi_scorecard"):
        measured = [
            r["status"] for r in kpi_scorecard(conn) if r["status"] not in (None, "no_data")
        ]
        status.kpi_met, status.kpi_measured = measured.count("met"), len(measured)
    return status.health


FALSE_POSITIVE_SQL = """
SELECT a.kind, count(*) AS raised,
    count(*) FILTER (WHERE a.anomaly_key IN (SELECT anomaly_key FROM ops.interventions
        WHERE kind = 'ack' AND false_alarm)) AS false_alarms
FROM ml.anomalies a
WHERE coalesce(a.last_seen_at, a.detected_at) >= $since
GROUP BY a.kind ORDER BY a.kind
"""


def false_positive_rates(conn, since: datetime) -> dict[str, tuple[int, int]]:
    """Per detector kind: (anomalies seen since `since`, how many an operator marked a false
    alarm, on the anomaly or on the rollback it led to). The live false-positive rate is the
    second over the first: the share of what the detector raised that a person judged wrong
    (unreviewed anomalies count as right, so it is a floor of the true rate)."""
    if not table_exists(conn, "ml.anomalies"):
        return {}
    if not table_exists(conn, "ops.interventions"):
        rows = conn.execute(
            "SELECT kind, count(*) FROM ml.anomalies"
            " WHERE coalesce(last_seen_at, detected_at) >= ? GROUP BY kind",
            [since],
        ).fetchall()
        return {kind: (n, 0) for kind, n in rows}
    rows = conn.execute(FALSE_POSITIVE_SQL, {"since": since}).fetchall()
    return {kind: (raised, false) for kind, raised, false in rows}


def conditions(conn, config: PlatformConfig, now: datetime | None = None) -> list[Condition]:
    """The catalogue conditions judged from the warehouse, each with whether it holds."""
    now = now or datetime.now(UTC)
    watch = config.monitoring
    found = []
    score = health_score(conn)
    if score is not None:
        below = watch.health_score_alert_below
        found.append(
            Condition(
                "health_score",
                "health_score",
                "critical",
                score < below,
                f"dcicd: the health score is {score}/100, under {below:g}"
                if score < below
                else f"dcicd: the health score is back to {score}/100",
            )
        )
    since = now - timedelta(days=watch.scorecard_days)
    limit = watch.false_positive_rate_alert_above
    for kind, (raised, false) in false_positive_rates(conn, since).items():
        rate = false / raised if raised else 0.0
        holds = raised >= watch.false_positive_min_anomalies and rate > limit
        found.append(
            Condition(
                f"false_positive_rate:{kind}",
                "false_positive_rate",
                "warning",
                holds,
                f"dcicd: {rate:.0%} of the {kind} anomalies of the last {watch.scorecard_days}"
                f" days were false alarms ({false} of {raised}; alert over {limit:.0%})",
            )
        )
    return found


def _alerted(conn, name: str) -> tuple[int, bool]:
    """How many times the condition alerted (ops.actions), and whether the last is unresolved."""
    if not table_exists(conn, "ops.actions"):
        return 0, False
    rows = conn.execute(
        "SELECT action_id FROM ops.actions WHERE kind IN ('alert', 'resolve_alert')"
        " AND (starts_with(action_id, $alert) OR starts_with(action_id, $resolve))",
        {"alert": f"alert:{name}:", "resolve": f"resolve_alert:{name}:"},
    ).fetchall()
    alerts = {int(a.rsplit(":", 1)[1]) for (a,) in rows if a.startswith("alert:")}
    resolved = {int(a.rsplit(":", 1)[1]) for (a,) in rows if a.startswith("resolve_alert:")}
    last = max(alerts, default=0)
    return last, last > 0 and last not in resolved


def catalogue_runs(conn, config: PlatformConfig, now: datetime | None = None) -> list:
    """The platform_alert runs the conditions ask for: a condition that holds and has no open
    alert, its next alert; an open alert whose condition no longer holds, its resolution."""
    import dagster as dg

    requests = []
    for c in conditions(conn, config, now):
        count, open_ = _alerted(conn, c.name)
        if c.holds and not open_:
            key, resolve = f"{c.name}:{count + 1}", False
        elif open_ and not c.holds:
            key, resolve = f"{c.name}:{count}", True
        else:
            continue
        requests.append(
            dg.RunRequest(
                run_key=("resolve:" if resolve else "") + key,
                job_name="platform_alert",
                run_config={
                    "ops": {
                        "send_platform_alert": {
                            "config": {
                                "key": key,
                                "kind": c.kind,
                                "severity": c.severity,
                                "explanation": c.explanation,
                                "entity_key": c.name,
                                "resolve": resolve,
                            }
                        }
                    }
                },
                tags={"dcicd/alert": c.name},
            )
        )
    return requests
