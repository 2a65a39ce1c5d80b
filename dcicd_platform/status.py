"""`dcicd status`: the operations view on one terminal screen, from the warehouse alone.

Health score (0-100) = the mean of two halves:
- DORA: the organisation's four tiers over the last 30 days (`marts.dora_summary`), elite 100,
  high 75, medium 50, low 25; a metric without data is left out.
- KPIs: the share of `marts.kpi_scorecard` rows (organisation, services, repositories) that
  meet their target, among those with data.
85 and above reads "healthy", 65 and above "watch", below "at risk".

Below it: the median pull-request cycle and its phases over the pull requests merged in the
30 days up to the data's date (`marts.pull_request_cycle`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from dbt_like_sql.catalog import existing_tables
from dcicd_platform.dora_summary import human_duration
from dcicd_platform.reading import (
    PR_PHASES,
    TIERS,
    dora_summary,
    kpi_scorecard,
    open_anomaly_counts,
    pull_request_cycle,
    worst_open_anomalies,
)

TIER_POINTS = {"elite": 100, "high": 75, "medium": 50, "low": 25}


@dataclass
class Status:
    as_of: object = None
    tiers: dict[str, str | None] = field(default_factory=dict)
    kpi_met: int = 0
    kpi_measured: int = 0
    deployments: list[tuple] = field(default_factory=list)
    anomalies_open: dict[str, int] = field(default_factory=dict)
    worst_anomalies: list[tuple] = field(default_factory=list)
    mode: str | None = None
    actions_today: dict[str, int] = field(default_factory=dict)
    pending_approval: int = 0
    models: list[tuple] = field(default_factory=list)
    costs: list[tuple] = field(default_factory=list)
    pull_requests: dict | None = None  # the organisation's cycle over 30 days (reading.py)

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


def read_status(conn, now: datetime | None = None) -> Status:
    """Everything the screen shows, each part only if its table exists yet."""
    now = now or datetime.now(UTC)
    tables = existing_tables(conn)
    status = Status()
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
                [now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)],
            ).fetchall()
        )
        status.pending_approval = conn.execute(
            "SELECT count(*) FROM ops.actions WHERE decision = 'pending_approval'"
        ).fetchall()[0][0]
    if "ml.model_quality" in tables:
        status.models = conn.execute(
            "SELECT model, version, runs, coalesce(within_20pct, accuracy), floor, below_floor"
            " FROM ml.model_quality QUALIFY version = max(version) OVER (PARTITION BY model)"
            " ORDER BY model"
        ).fetchall()
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
        + f"   data up to {status.as_of or '-'}"
    )
    tiers = " · ".join(f"{k} {v or '-'}" for k, v in status.tiers.items())
    dora = "-" if status.dora_score is None else f"{status.dora_score:.0f}"
    kpi = "-" if status.kpi_score is None else f"{status.kpi_score:.0f}"
    lines.append(f"  DORA {dora} ({tiers or 'no data'})")
    lines.append(f"  KPIs {kpi} ({status.kpi_met} of {status.kpi_measured} met, 30 days)")
    lines.append("")
    acted = ", ".join(f"{n} {d}" for d, n in status.actions_today.items()) or "none"
    mode = status.mode or "-"
    lines.append(
        style(f"Automation: mode {mode}", bold=True)
        + f"   actions today: {acted}   pending approval: {status.pending_approval}"
    )
    lines.append("")
    lines.append(style("Recent production deployments", bold=True))
    for at, service, sha, is_rollback, failed, by_us in status.deployments:
        state = _deployment_state(is_rollback, failed, by_us)
        mark = style(state, fg="red" if state in ("failed", "rolled back by dcicd") else None)
        lines.append(f"  {at:%Y-%m-%d %H:%M}  {service:18s} {sha}  {mark}")
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
    )
    for severity, kind, explanation in status.worst_anomalies:
        text = explanation if len(explanation) <= 96 else explanation[:95] + "…"
        lines.append(
            f"  {style(severity, fg='red' if severity == 'critical' else 'yellow')} {kind}: {text}"
        )
    lines.append("")
    lines.append(style("Build predictors (live, unseen runs)", bold=True))
    for model, version, runs, value, floor, below in status.models:
        shown = "-" if value is None else f"{100 * value:.1f}%"
        what = "within 20%" if model == "build_duration" else "accuracy"
        flag = style("under floor", fg="red") if below else "ok"
        lines.append(
            f"  {model} v{version}: {what} {shown} on {runs} runs (floor {100 * floor:.0f}%) {flag}"
        )
    if not status.models:
        lines.append("  no live measure yet")
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
