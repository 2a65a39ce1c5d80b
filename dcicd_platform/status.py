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

No single "data up to" date: the sources' lines say how fresh each is, from when its deliveries
were received, so a stray event dated in the future moves nothing. The windows the screen counts
(CI over 7 days, pull requests over 30) end on the day of the newest event the marts know, never
after today.

Days are the reporting time zone's (`reporting.time_zone`, as the marts count them): "actions
today", the windows' days and the deployments' times; the header names the zone. The
automation's daily rollback cap is an operational limit and counts UTC days (guardrails.py).

Anomalies are split by age: new, detected (their event's time) in the 24 hours before now, and
older ones still open, each shown with its age.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from dbt_like_sql.catalog import column_exists, existing_tables, fetch_dicts
from dcicd_platform.checks.freshness import NEWEST_SQL, SOURCES
from dcicd_platform.dora_summary import human_duration
from dcicd_platform.reading import (
    BY_SEVERITY,
    PR_PHASES,
    TIERS,
    dora_summary,
    kpi_scorecard,
    pull_request_cycle,
    reporting_zone,
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
    # (deployed_at, service, environment, short sha, is_rollback, is_failed, by dcicd)
    deployments: list[tuple] = field(default_factory=list)
    anomalies_open: dict[str, int] = field(default_factory=dict)  # by severity
    anomalies_new: dict[str, int] = field(default_factory=dict)  # of those, the last 24 h's
    oldest_open: datetime | None = None  # when the oldest open anomaly was detected
    # (severity, kind, explanation, detected_at): the new first, then the older; by severity
    worst_anomalies: list[tuple] = field(default_factory=list)
    now: datetime | None = None  # the moment the screen was read: ages are counted from it
    mode: str | None = None
    actions_today: dict[str, int] = field(default_factory=dict)  # by decision
    actions_today_by_kind: list[tuple] = field(default_factory=list)  # (kind, decision, n)
    rollbacks_today: list[dict] = field(default_factory=list)  # every rollback decision today
    # The organisation's CI over the 7 days to `through`: runs, success_rate, p50/p95_minutes,
    # queue_p50/p95_s, the P50/P95 targets (marts.kpi_scorecard) and the flakiest job.
    ci: dict | None = None
    pending_approval: int = 0
    # Per model: what serves it (ml.serving) and its live quality (ml.model_quality), as dicts.
    models: list[dict] = field(default_factory=list)
    costs: list[tuple] = field(default_factory=list)
    cost_month: date | None = None  # the first day of the month the costs are of
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
    status = Status(time_zone=reporting_zone(conn), now=now)
    status.sources = _sources(conn, tables, now, max_lag_minutes)
    zone = ZoneInfo(status.time_zone)
    today = now.astimezone(zone).date()
    if "marts.dora_summary" in tables:
        for row in dora_summary(conn, 30):
            if row["service"] == "*":
                # never after today: a future-dated event must not move the windows
                status.as_of = min(row["as_of"], today) if row["as_of"] else None
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
    if column_exists(conn, "core.pipeline_runs", "queue_s"):  # a warehouse built by this version
        status.ci = _ci(conn, tables, status.as_of or today, status.time_zone)
    if "marts.production_deployments" in tables:
        status.deployments = conn.execute(
            "SELECT deployed_at, service, environment, left(sha, 8), is_rollback, is_failed,"
            " rollback_action_id IS NOT NULL FROM marts.production_deployments"
            " ORDER BY deployed_at DESC LIMIT 5"
        ).fetchall()
    if "ml.anomalies" in tables:
        _anomalies(conn, status, now)
    if "config.automation" in tables:
        status.mode = conn.execute("SELECT mode FROM config.automation").fetchall()[0][0]
    if "ops.actions" in tables:
        midnight = datetime.combine(today, time(0), zone)  # today in the reporting zone
        status.actions_today = dict(
            conn.execute(
                "SELECT decision, count(*) FROM ops.actions WHERE requested_at >= ?"
                " GROUP BY 1 ORDER BY 2 DESC",
                [midnight],
            ).fetchall()
        )
        status.actions_today_by_kind = conn.execute(
            "SELECT kind, decision, count(*) FROM ops.actions WHERE requested_at >= ?"
            " GROUP BY kind, decision ORDER BY kind <> 'rollback', 3 DESC, 1, 2",
            [midnight],
        ).fetchall()
        status.rollbacks_today = fetch_dicts(
            conn,
            "SELECT service, decision, target, reason, requested_at FROM ops.actions"
            " WHERE kind = 'rollback' AND requested_at >= ? ORDER BY requested_at DESC",
            [midnight],
        )
        status.pending_approval = conn.execute(
            "SELECT count(*) FROM ops.actions WHERE decision = 'pending_approval'"
        ).fetchall()[0][0]
    status.models = _models(conn, tables)
    _read_autonomy(conn, status, tables, now, config)
    if "marts.ci_cost_daily" in tables and "config.services" in tables:
        rows = conn.execute(COSTS_SQL, [today]).fetchall()
        status.costs = [row[:4] for row in rows]
        status.cost_month = rows[0][4] if rows else None
    return status


# Every configured service's CI cost in the month of the newest cost day (never after today),
# its budget, and the month's end at the pace so far; a service that spent nothing shows $0.
COSTS_SQL = """
WITH month AS (
    SELECT date_trunc('month', least(max(day), $1::DATE))::DATE AS first,
        least(max(day), $1::DATE) AS last
    FROM marts.ci_cost_daily
), spent AS (
    SELECT s.service, any_value(s.monthly_ci_budget_usd) AS budget,
        coalesce(sum(c.cost_usd), 0)::DOUBLE AS spent
    FROM config.services s CROSS JOIN unnest(s.repositories) AS r(repo)
    CROSS JOIN month m
    LEFT JOIN marts.ci_cost_daily c ON c.repo = r.repo AND c.day BETWEEN m.first AND m.last
    GROUP BY s.service
)
SELECT service, spent, budget, spent / day(m.last) * day(last_day(m.last)) AS forecast,
    m.first AS month
FROM spent, month m ORDER BY budget IS NULL, spent DESC, service
"""

CI_SQL = """
SELECT count(*) AS runs,
    count(*) FILTER (WHERE conclusion = 'success') / nullif(count(*) FILTER
        (WHERE conclusion IN ('success', 'failure', 'timed_out')), 0) AS success_rate,
    quantile_cont(duration_s, 0.5) FILTER (WHERE ran) / 60 AS p50_minutes,
    quantile_cont(duration_s, 0.95) FILTER (WHERE ran) / 60 AS p95_minutes,
    quantile_cont(queue_s, 0.5) AS queue_p50_s, quantile_cont(queue_s, 0.95) AS queue_p95_s
FROM core.pipeline_runs
WHERE status = 'completed' AND timezone($zone, started_at)::DATE BETWEEN $first AND $last
"""


def _ci(conn, tables: set[str], through: date, zone: str) -> dict | None:
    """The organisation's CI health over the 7 days to `through` (days of the reporting zone,
    as dcicd_local_day counts them; the runs as ci_weekly counts them), with the
    organisation's duration targets and the flakiest job."""
    found = fetch_dicts(
        conn, CI_SQL, {"zone": zone, "first": through - timedelta(days=6), "last": through}
    )
    if not found or not found[0]["runs"]:
        return None
    ci = found[0] | {"through": through, "flakiest": None}
    if "marts.kpi_scorecard" in tables:
        targets = {r["kpi"]: r["target"] for r in kpi_scorecard(conn) if r["scope"] == "*"}
        ci["p50_target"] = targets.get("ci_duration_p50_minutes")
        ci["p95_target"] = targets.get("ci_duration_p95_minutes")
    if "marts.flaky_jobs" in tables:
        flaky = fetch_dicts(
            conn,
            "SELECT repo, job_name, executions, flakes, flake_rate FROM marts.flaky_jobs"
            " WHERE flakes > 0 ORDER BY flake_rate DESC, flakes DESC LIMIT 1",
        )
        ci["flakiest"] = flaky[0] if flaky else None
    return ci


def _anomalies(conn, status: Status, now: datetime) -> None:
    """Open anomalies (not cleared, not acknowledged) by severity, those of the last 24 hours
    apart (a future-dated one is new), the oldest's date, and the three most in need of a
    look: new before old, then critical, warning, info, the latest first."""
    from dcicd_platform.reading import unacknowledged_condition

    since = now - timedelta(hours=24)
    open_ = f"cleared_at IS NULL AND {unacknowledged_condition(conn)}"
    for severity, new, n in conn.execute(
        f"SELECT severity, detected_at >= ?, count(*) FROM ml.anomalies WHERE {open_} GROUP BY ALL",
        [since],
    ).fetchall():
        status.anomalies_open[severity] = status.anomalies_open.get(severity, 0) + n
        if new:
            status.anomalies_new[severity] = n
    status.oldest_open = conn.execute(
        f"SELECT min(detected_at) FROM ml.anomalies WHERE {open_}"
    ).fetchone()[0]
    status.worst_anomalies = conn.execute(
        "SELECT severity, kind, explanation, detected_at FROM ml.anomalies"
        f" WHERE {open_} ORDER BY detected_at < ?, {BY_SEVERITY}, detected_at DESC"
        " LIMIT 3",
        [since],
    ).fetchall()


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
        lines += scorecard_lines(status.autonomy, style)
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


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _severities(counts: dict[str, int]) -> str:
    return ", ".join(f"{counts.get(s, 0)} {s}" for s in ("critical", "warning", "info"))


def _actions_lines(status: Status, style) -> list[str]:
    """The mode, today's decisions by action, then each rollback decided today with its
    target: a rollback, even one held back, is what an operator must not miss."""
    acted = " · ".join(
        f"{kind} {n} {decision}" for kind, decision, n in status.actions_today_by_kind
    )
    if not acted:  # a warehouse read before the kinds were: the decisions alone
        acted = ", ".join(f"{n} {d}" for d, n in status.actions_today.items())
    lines = [
        style(f"Automation: mode {status.mode or '-'}", bold=True)
        + f"   actions today: {acted or 'none'}   pending approval: {status.pending_approval}"
    ]
    for r in status.rollbacks_today[:2]:
        decision = style(r["decision"], fg="red" if r["decision"] == "executed" else "yellow")
        reason = r["reason"] or ""
        why = f", {reason if len(reason) <= 90 else reason[:89] + '…'}" if reason else ""
        lines.append(f"  rollback {r['target'] or r['service'] or '-'}: {decision}{why}")
    if len(status.rollbacks_today) > 2:
        lines.append(f"  and {len(status.rollbacks_today) - 2} more rollback decisions today")
    return lines


def _wait(seconds: float) -> str:
    """A queueing time: '4 s' under a minute, else as human_duration says it."""
    return f"{seconds:.0f} s" if seconds < 60 else human_duration(seconds)


def _minutes(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} min"


def _ci_lines(status: Status, style) -> list[str]:
    """The organisation's CI over 7 days: success, duration against its targets, queueing,
    and the flakiest job."""
    ci = status.ci
    if not ci:
        return [style("CI", bold=True), "  no completed run yet"]
    success = "-" if ci["success_rate"] is None else f"{ci['success_rate']:.1%}"
    durations = []
    for q in ("p50", "p95"):
        shown, target = _minutes(ci[f"{q}_minutes"]), ci.get(f"{q}_target")
        if target is not None and ci[f"{q}_minutes"] is not None:
            over = ci[f"{q}_minutes"] > target
            shown = style(shown, fg="red" if over else "green") + f" (target {target:g})"
        durations.append(f"{q.upper()} {shown}")
    queue = ", ".join(
        f"{q.upper()} {_wait(ci[f'queue_{q}_s'])}"
        for q in ("p50", "p95")
        if ci[f"queue_{q}_s"] is not None
    )
    lines = [
        style(f"CI, the 7 days to {ci['through']}", bold=True)
        + f"   {ci['runs']:,} runs, {success} succeeded",
        f"  duration {', '.join(durations)} · queued {queue or '-'}",
    ]
    if f := ci.get("flakiest"):
        lines.append(
            f"  flakiest job: {f['repo']} / {f['job_name']}, {f['flake_rate']:.1%}"
            f" ({f['flakes']} of {f['executions']} failed then passed)"
        )
    return lines


def _anomaly_lines(status: Status, style) -> list[str]:
    """Open anomalies, the last 24 hours' apart from the older ones, each shown with its age."""
    counts, new = status.anomalies_open, status.anomalies_new
    older = {s: counts.get(s, 0) - new.get(s, 0) for s in counts}
    now = status.now or datetime.now(UTC)
    oldest = (
        f", the oldest {_ago((now - status.oldest_open).total_seconds() / 60)} old"
        if status.oldest_open and sum(older.values())
        else ""
    )
    lines = [
        style(f"Anomalies open: {sum(counts.values())}", bold=True)
        + f"   new in the last 24 h: {sum(new.values())} ({_severities(new)})"
        + (
            f"   {status.anomalies_acknowledged} acknowledged"
            if status.anomalies_acknowledged
            else ""
        ),
        f"  older, still open: {sum(older.values())} ({_severities(older)}){oldest}",
    ]
    for severity, kind, explanation, detected_at in status.worst_anomalies:
        age = _ago(max((now - detected_at).total_seconds() / 60, 0)) + " ago"
        text = explanation if len(explanation) <= 80 else explanation[:79] + "…"
        label = style(f"{severity:8s}", fg="red" if severity == "critical" else "yellow")
        lines.append(f"  {label} {age:>10s}  {kind}: {text}")
    return lines


def _cost_lines(status: Status, style) -> list[str]:
    """Every service's CI cost in the month of the newest cost day, two to a line; a budgeted
    one with where it heads."""
    cells = []
    for service, spent, budget, forecast in status.costs:
        if budget:
            heading = f"${forecast:,.0f}"
            plain = f"${spent:,.0f} of ${budget:,.0f}, heading for "
            styled = plain + style(heading, fg="red" if forecast > budget else "green")
            plain += heading
        else:
            plain = styled = f"${spent:,.0f} (no budget)"
        cells.append((f"{service:16s} {plain}", f"{service:16s} {styled}"))
    width = max((len(plain) for plain, _ in cells), default=0) + 3
    lines = []
    for i in range(0, len(cells), 2):
        pair = cells[i : i + 2]
        line = "  " + pair[0][1]
        if len(pair) == 2:
            line += " " * (width - len(pair[0][0])) + pair[1][1]
        lines.append(line)
    return lines or ["  no cost yet"]


def render_status(status: Status, style=lambda text, **_: text) -> str:
    """The screen as text; `style` (click.style) colours it on a terminal."""
    lines = []
    colour = {"healthy": "green", "watch": "yellow", "at risk": "red"}.get(status.verdict)
    health = "-" if status.health is None else f"{status.health}/100"
    lines.append(
        style(f"Health {health} ({status.verdict})", fg=colour, bold=True)
        + f"   times in {status.time_zone}"
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
    lines += _actions_lines(status, style)
    lines += _autonomy_lines(status, style)
    lines.append("")
    lines.append(style("Recent production deployments", bold=True))
    zone = ZoneInfo(status.time_zone)
    for at, service, environment, sha, is_rollback, failed, by_us in status.deployments:
        state = _deployment_state(is_rollback, failed, by_us)
        mark = style(state, fg="red" if state in ("failed", "rolled back by dcicd") else None)
        lines.append(
            f"  {at.astimezone(zone):%Y-%m-%d %H:%M}  {service:16s} {environment or '-':11s}"
            f" {sha}  {mark}"
        )
    if not status.deployments:
        lines.append("  none yet")
    lines.append("")
    lines += _ci_lines(status, style)
    lines.append("")
    lines += _pull_request_lines(status, style)
    lines.append("")
    lines += _anomaly_lines(status, style)
    lines.append("")
    lines.append(style("Build predictors (serving, and live on unseen runs)", bold=True))
    for m in status.models:
        lines += _model_lines(m, style)
    if not status.models:
        lines.append("  no champion yet: nothing predicted (training registers one)")
    lines.append("")
    month = f"{status.cost_month:%B %Y}" if status.cost_month else "this month"
    lines.append(style(f"CI cost, {month}", bold=True))
    lines += _cost_lines(status, style)
    return "\n".join(lines)


def _model_lines(m: dict, style) -> list[str]:
    """'build_duration v3: baseline (trailing median) serving, the trained model (v4) does not
    beat the baseline: ... · within 20% 71.0% on 300 runs (floor 70%) ok', on one line."""
    what = f"baseline ({m['method']})" if m["predictor"] == "baseline" else "LightGBM"
    head = f"  {m['model']} v{m['version']}: {what} serving"
    if m["predictor"] == "baseline":
        head = style(head, fg="yellow")
    lines = [head + (f", {m['reason']}" if m["reason"] else "")]
    if m["value"] is None:
        lines[0] += " · no live measure yet"
    else:
        name = "within 20%" if m["model"] == "build_duration" else "accuracy"
        flag = style("under floor", fg="red") if m["below_floor"] else "ok"
        lines[0] += (
            f" · {name} {100 * m['value']:.1f}% on {m['runs']} runs"
            f" (floor {100 * m['floor']:.0f}%) {flag}"
        )
    return lines
