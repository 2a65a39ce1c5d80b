"""`dcicd status`: the operations view on one terminal screen, from the warehouse alone.

Health score (0-100) = the mean of two halves:
- DORA: the organisation's four tiers over the last 30 days (`marts.dora_summary`), elite 100,
  high 75, medium 50, low 25; a metric without data is left out.
- KPIs: the share of `marts.kpi_scorecard` rows (organisation, services, repositories) that
  meet their target, among those with data.
85 and above reads "healthy", 65 and above "watch", below "at risk".

Sources: each source's newest delivery in raw.events (webhook or import) and how long ago it
was received, against `freshness.max_lag_minutes` (the freshness checks' rule, measured now):
`stale` past it, `-` for a source that never delivered.

Days are the reporting time zone's (`reporting.time_zone`, as the marts count them): the date the
data is up to, "actions today" and the deployments' times; the header names the zone. The
automation's daily rollback cap is an operational limit and counts UTC days (guardrails.py).

Below it: the median pull-request cycle and its phases over the pull requests merged in the
30 days up to the data's date (`marts.pull_request_cycle`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from dbt_like_sql.catalog import existing_tables, fetch_dicts
from dcicd_platform.checks.freshness import NEWEST_SQL, SOURCES
from dcicd_platform.dora_summary import human_duration
from dcicd_platform.reading import (
    PR_PHASES,
    TIERS,
    dora_summary,
    kpi_scorecard,
    open_anomaly_counts,
    pull_request_cycle,
    reporting_zone,
    worst_open_anomalies,
)

TIER_POINTS = {"elite": 100, "high": 75, "medium": 50, "low": 25}


@dataclass
class Status:
    as_of: object = None
    time_zone: str = "UTC"
    tiers: dict[str, str | None] = field(default_factory=dict)
    rework_rate: float | None = None
    kpi_met: int = 0
    kpi_measured: int = 0
    deployments: list[tuple] = field(default_factory=list)
    anomalies_open: dict[str, int] = field(default_factory=dict)
    worst_anomalies: list[tuple] = field(default_factory=list)
    mode: str | None = None
    actions_today: dict[str, int] = field(default_factory=dict)
    pending_approval: int = 0
    # Per model: what serves it (ml.serving) and its live quality (ml.model_quality), as dicts.
    models: list[dict] = field(default_factory=list)
    costs: list[tuple] = field(default_factory=list)
    pull_requests: dict | None = None  # the organisation's cycle over 30 days (reading.py)
    # Per source: (source, newest received_at or None, minutes since, minutes allowed).
    sources: list[tuple] = field(default_factory=list)
    # The automation's switches and autonomy scorecard (automation/scorecard.py).
    switches: dict = field(default_factory=dict)
    autonomy: object = None
    anomalies_acknowledged: int = 0

    @property
    def dora_score(self) -> float | None:
        points = [TIER_POINTS[t] for t in self.tiers.values() if t in TIER_POINTS]
        return sum(points) / len(points) if points else None

    @property
    def kpi_score(self) -> float | None:
        return 100 * self.kpi_met / self.kpi_measured if self.kpi_measured else None

    @property
    def health(self) -> int | None:
        parts = [p for p in (self.dora_score, self.kpi_score) if p is not None]
        return round(sum(parts) / len(parts)) if parts else None

    @property
    def verdict(self) -> str:
        if self.health is None:
            return "no data"
        return "healthy" if self.health >= 85 else "watch" if self.health >= 65 else "at risk"


def read_status(
    conn,
    now: datetime | None = None,
    max_lag_minutes: dict[str, int] | None = None,
    config=None,
) -> Status:
    """Everything the screen shows, each part only if its table exists yet; max_lag_minutes:
    the minutes each source may lag (freshness.max_lag_minutes; default: the built-in);
    config: the platform configuration the switches are read against (default: built-in)."""
    now = now or datetime.now(UTC)
    tables = existing_tables(conn)
    status = Status(time_zone=reporting_zone(conn))
    status.sources = _sources(conn, tables, now, max_lag_minutes)
    zone = ZoneInfo(status.time_zone)
    if "marts.dora_summary" in tables:
        for row in dora_summary(conn, 30):
            if row["service"] == "*":
                status.as_of = row["as_of"]
                status.tiers = dict(
                    zip(
                        ("frequency", "lead time", "failure", "restore"),
                        [row[t] for t in TIERS],
                        strict=True,
                    )
                )
                status.rework_rate = row.get("rework_rate")
    if "marts.pull_request_cycle" in tables and status.as_of is not None:
        window = pull_request_cycle(conn, status.as_of - timedelta(days=29), status.as_of)
        status.pull_requests = next((r for r in window if r["service"] == "*"), None)
    if "marts.kpi_scorecard" in tables:
        measured = [
            r["status"] for r in kpi_scorecard(conn) if r["status"] not in (None, "no_data")
        ]
        status.kpi_met, status.kpi_measured = measured.count("met"), len(measured)
    if "marts.production_deployments" in tables:
        status.deployments = conn.execute(
            "SELECT deployed_at, service, left(sha, 8), is_rollback, is_failed,"
            " rollback_action_id IS NOT NULL FROM marts.production_deployments"
            " ORDER BY deployed_at DESC LIMIT 5"
        ).fetchall()
    if "ml.anomalies" in tables:
        for (_kind, severity), n in open_anomaly_counts(conn).items():
            status.anomalies_open[severity] = status.anomalies_open.get(severity, 0) + n
        status.worst_anomalies = worst_open_anomalies(conn, 3)
    if "config.automation" in tables:
        status.mode = conn.execute("SELECT mode FROM config.automation").fetchall()[0][0]
    if "ops.actions" in tables:
        status.actions_today = dict(
            conn.execute(
                "SELECT decision, count(*) FROM ops.actions WHERE requested_at >= ?"
                " GROUP BY 1 ORDER BY 2 DESC",
                # since the start of today in the reporting zone
                [datetime.combine(now.astimezone(zone).date(), time(0), zone)],
            ).fetchall()
        )
        status.pending_approval = conn.execute(
            "SELECT count(*) FROM ops.actions WHERE decision = 'pending_approval'"
        ).fetchall()[0][0]
    status.models = _models(conn, tables)
    _read_autonomy(conn, status, tables, now, config)
    if "marts.ci_cost_daily" in tables and "config.services" in tables:
        status.costs = conn.execute(
            """WITH month AS (SELECT date_trunc('month', max(day))::DATE AS first,
                    max(day) AS last FROM marts.ci_cost_daily),
                spent AS (SELECT s.service, any_value(s.monthly_ci_budget_usd) AS budget,
                    sum(c.cost_usd)::DOUBLE AS spent
                FROM config.services s, unnest(s.repositories) AS r(repo), month m,
                    marts.ci_cost_daily c
                WHERE c.repo = r.repo AND c.day >= m.first GROUP BY s.service)
            SELECT service, spent, budget,
                spent / day(m.last) * day(last_day(m.last)) AS forecast
            FROM spent, month m ORDER BY budget IS NULL, spent DESC"""
        ).fetchall()
    return status


def _read_autonomy(conn, status: Status, tables: set[str], now: datetime, config) -> None:
    """The switches, the autonomy scorecard, and how many open anomalies were acknowledged."""
    from dcicd_platform.automation.interventions import switches
    from dcicd_platform.automation.scorecard import read_scorecard
    from dcicd_platform.config import PlatformConfig
    from dcicd_platform.reading import acknowledged_open_anomalies

    config = config or PlatformConfig()
    status.switches = switches(conn, config)
    status.autonomy = read_scorecard(conn, now, config.monitoring.scorecard_days)
    if "ml.anomalies" in tables:
        status.anomalies_acknowledged = acknowledged_open_anomalies(conn)


def _autonomy_lines(status: Status, style) -> list[str]:
    from dcicd_platform.automation.scorecard import scorecard_lines, switch_line

    lines = [switch_line(status.switches, style)] if status.switches else []
    if status.autonomy is not None:
        lines += ["", *scorecard_lines(status.autonomy, style)]
    return lines


def _sources(
    conn, tables: set[str], now: datetime, max_lag_minutes: dict[str, int] | None
) -> list[tuple]:
    """Each source's newest delivery and its lag in minutes, against what it may lag."""
    if max_lag_minutes is None:
        from dcicd_platform.config import MaxLag

        max_lag_minutes = MaxLag().model_dump()
    newest = dict(conn.execute(NEWEST_SQL).fetchall()) if "raw.events" in tables else {}
    return [
        (
            source,
            newest.get(source),
            None if newest.get(source) is None else (now - newest[source]).total_seconds() / 60,
            max_lag_minutes[source],
        )
        for source in SOURCES
    ]


def _ago(minutes: float) -> str:
    """A lag as people say it: 45 min, 5.2 h, 3.0 d."""
    if minutes < 120:
        return f"{max(minutes, 0):.0f} min"
    return f"{minutes / 60:.1f} h" if minutes < 48 * 60 else f"{minutes / 1440:.1f} d"


def _sources_line(status: Status, style) -> str:
    parts = []
    for source, newest, lag, limit in status.sources:
        if newest is None:
            parts.append(f"{source} -")
        elif lag > limit:
            parts.append(f"{source} {style(f'stale {_ago(lag)}', fg='red')} (max {_ago(limit)})")
        else:
            parts.append(f"{source} {_ago(lag)} ago")
    return style("Sources", bold=True) + " (newest delivery): " + " · ".join(parts)


SERVING_SQL = """
SELECT s.model_name AS model, s.version, s.predictor, s.method, s.reason, s.since,
    {quality}
FROM ml.serving s {join}
WHERE s.serving
ORDER BY s.model_name
"""
QUALITY_COLUMNS = "q.runs, coalesce(q.within_20pct, q.accuracy) AS value, q.floor, q.below_floor"
NO_QUALITY = "NULL AS runs, NULL AS value, NULL AS floor, NULL AS below_floor"
# A warehouse scored before ml.serving was written: the latest version measured, as LightGBM.
LEGACY_SQL = """
SELECT model, version, 'lightgbm' AS predictor, NULL AS method, NULL AS reason, NULL AS since,
    runs, coalesce(within_20pct, accuracy) AS value, floor, below_floor
FROM ml.model_quality QUALIFY version = max(version) OVER (PARTITION BY model)
ORDER BY model
"""


def _models(conn, tables: set[str]) -> list[dict]:
    """What serves each build predictor and how it does live on runs it never learnt from."""
    measured = "ml.model_quality" in tables
    if "ml.serving" in tables:
        join = (
            "LEFT JOIN ml.model_quality q ON q.model = s.model_name AND q.version = s.version"
            if measured
            else ""
        )
        sql = SERVING_SQL.format(quality=QUALITY_COLUMNS if measured else NO_QUALITY, join=join)
        if found := fetch_dicts(conn, sql):
            return found
    return fetch_dicts(conn, LEGACY_SQL) if measured else []


def _deployment_state(is_rollback: bool, failed: bool, by_automation: bool) -> str:
    if by_automation:
        return "rolled back by dcicd"
    if is_rollback:
        return "rollback"
    return "failed" if failed else "ok"


def _pull_request_lines(status: Status, style) -> list[str]:
    prs = status.pull_requests
    title = style("Pull-request cycle, merged in the last 30 days", bold=True)
    if not prs:
        return [title, "  no pull request merged"]
    medians = " · ".join(
        f"{p} {human_duration(prs[f'{p}_median_s'])}" for p in ("cycle", *PR_PHASES)
    )
    return [
        title + f"   {prs['pull_requests']} merged, {prs['deployed_pull_requests']} deployed",
        f"  medians: {medians}",
    ]


def render_status(status: Status, style=lambda text, **_: text) -> str:
    """The screen as text; `style` (click.style) colours it on a terminal."""
    lines = []
    colour = {"healthy": "green", "watch": "yellow", "at risk": "red"}.get(status.verdict)
    health = "-" if status.health is None else f"{status.health}/100"
    lines.append(
        style(f"Health {health} ({status.verdict})", fg=colour, bold=True)
        + f"   data up to {status.as_of or '-'}   ({status.time_zone} time)"
    )
    tiers = " · ".join(f"{k} {v or '-'}" for k, v in status.tiers.items())
    if status.tiers:
        rework = "-" if status.rework_rate is None else f"{status.rework_rate:.0%}"
        tiers += f" · rework {rework}"
    dora = "-" if status.dora_score is None else f"{status.dora_score:.0f}"
    kpi = "-" if status.kpi_score is None else f"{status.kpi_score:.0f}"
    lines.append(f"  DORA {dora} ({tiers or 'no data'})")
    lines.append(f"  KPIs {kpi} ({status.kpi_met} of {status.kpi_measured} met, 30 days)")
    if status.sources:
        lines.append(_sources_line(status, style))
    lines.append("")
    acted = ", ".join(f"{n} {d}" for d, n in status.actions_today.items()) or "none"
    mode = status.mode or "-"
    lines.append(
        style(f"Automation: mode {mode}", bold=True)
        + f"   actions today: {acted}   pending approval: {status.pending_approval}"
    )
    lines += _autonomy_lines(status, style)
    lines.append("")
    lines.append(style("Recent production deployments", bold=True))
    zone = ZoneInfo(status.time_zone)
    for at, service, sha, is_rollback, failed, by_us in status.deployments:
        state = _deployment_state(is_rollback, failed, by_us)
        mark = style(state, fg="red" if state in ("failed", "rolled back by dcicd") else None)
        lines.append(f"  {at.astimezone(zone):%Y-%m-%d %H:%M}  {service:18s} {sha}  {mark}")
    if not status.deployments:
        lines.append("  none yet")
    lines.append("")
    lines += _pull_request_lines(status, style)
    lines.append("")
    counts = status.anomalies_open
    lines.append(
        style(f"Anomalies open: {sum(counts.values())}", bold=True)
        + f"   ({counts.get('critical', 0)} critical, {counts.get('warning', 0)} warning,"
        f" {counts.get('info', 0)} info)"
        + (
            f"   {status.anomalies_acknowledged} acknowledged"
            if status.anomalies_acknowledged
            else ""
        )
    )
    for severity, kind, explanation in status.worst_anomalies:
        text = explanation if len(explanation) <= 96 else explanation[:95] + "…"
        lines.append(
            f"  {style(severity, fg='red' if severity == 'critical' else 'yellow')} {kind}: {text}"
        )
    lines.append("")
    lines.append(style("Build predictors (serving, and live on unseen runs)", bold=True))
    for m in status.models:
        lines += _model_lines(m, style)
    if not status.models:
        lines.append("  no champion yet: nothing predicted (training registers one)")
    lines.append("")
    lines.append(style("CI cost this month", bold=True))
    for service, spent, budget, forecast in status.costs[:6]:
        if budget:
            over = forecast > budget
            lines.append(
                f"  {service:18s} ${spent:,.0f} of ${budget:,.0f}, heading for"
                f" {style(f'${forecast:,.0f}', fg='red' if over else 'green')}"
            )
        else:
            lines.append(f"  {service:18s} ${spent:,.0f} (no budget)")
    if not status.costs:
        lines.append("  no cost yet")
    return "\n".join(lines)


def _model_lines(m: dict, style) -> list[str]:
    """'build_duration v3: baseline (trailing median) serving, the trained model (v4) does not
    beat the baseline: ...' then its live quality."""
    what = f"baseline ({m['method']})" if m["predictor"] == "baseline" else "LightGBM"
    head = f"  {m['model']} v{m['version']}: {what} serving"
    if m["predictor"] == "baseline":
        head = style(head, fg="yellow")
    lines = [head + (f", {m['reason']}" if m["reason"] else "")]
    if m["value"] is None:
        lines.append("    no live measure yet")
    else:
        name = "within 20%" if m["model"] == "build_duration" else "accuracy"
        flag = style("under floor", fg="red") if m["below_floor"] else "ok"
        lines.append(
            f"    {name} {100 * m['value']:.1f}% on {m['runs']} runs"
            f" (floor {100 * m['floor']:.0f}%) {flag}"
        )
    return lines
