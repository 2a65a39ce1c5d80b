"""What the weekly review shows, read from the warehouse: plain rows, no presentation.

The report covers one ISO week (Monday to Sunday in the reporting time zone, as the marts count
days) and the twelve before it for trends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from dbt_like_sql.catalog import column_exists, existing_tables, fetch_dicts
from dcicd_platform.reading import (
    BY_SEVERITY,
    TIERS,
    ci_weekly,
    dora_summary,
    kpi_scorecard,
    pull_request_cycle,
    reporting_zone,
)

TREND_WEEKS = 12


def report_week(as_of: date) -> date:
    """The Monday of the last complete ISO week on or before as_of (a Sunday completes one)."""
    monday = as_of - timedelta(days=as_of.weekday())
    return monday if as_of.weekday() == 6 else monday - timedelta(days=7)


def parse_iso_week(text: str) -> date:
    """'2026-W46' -> the Monday of that ISO week."""
    year, _, week = text.upper().partition("-W")
    try:
        return date.fromisocalendar(int(year), int(week), 1)
    except ValueError as exc:
        raise ValueError(f"not an ISO week: {text!r} (expected e.g. 2026-W46)") from exc


def iso_week(monday: date) -> str:
    year, week, _ = monday.isocalendar()
    return f"{year}-W{week:02d}"


@dataclass
class WeeklyFigures:
    week_start: date
    as_of: date | None
    time_zone: str = "UTC"  # the reporting time zone: of every day, week and time shown
    dora_weekly: list[dict] = field(default_factory=list)
    ci_weekly: list[dict] = field(default_factory=list)
    flaky: list[dict] = field(default_factory=list)
    cost_by_repo: list[dict] = field(default_factory=list)
    budgets: list[dict] = field(default_factory=list)
    anomalies: list[dict] = field(default_factory=list)
    actions: list[dict] = field(default_factory=list)
    model_weekly: list[dict] = field(default_factory=list)
    serving: list[dict] = field(default_factory=list)  # what serves each model now, and why
    scorecard: list[dict] = field(default_factory=list)
    week_over_week: list[dict] = field(default_factory=list)
    dora_tiers: list[dict] = field(default_factory=list)
    pr_cycle: list[dict] = field(default_factory=list)  # the week's merged pull requests
    # Per source (CONTRACTS.md section 2): its newest delivery (received_at), None if never.
    sources: list[dict] = field(default_factory=list)
    autonomy: list[dict] = field(default_factory=list)  # the scorecard's rows, 30 days to Sunday
    advice: dict | None = None  # report/advice_section.py: open and done recommendations

    @property
    def week(self) -> str:
        return iso_week(self.week_start)

    @property
    def week_end(self) -> date:
        return self.week_start + timedelta(days=6)


def as_of_date(conn, today: date | None = None) -> date | None:
    """The date of the latest event the marts know, never after today in the reporting time
    zone (a stray event dated in the future must not make the review jump to a week to come);
    None before the first refresh."""
    if "marts.dora_summary" not in existing_tables(conn):
        return None
    rows = conn.execute("SELECT max(as_of) FROM marts.dora_summary").fetchall()
    found = rows[0][0] if rows else None
    if found is None:
        return None
    if today is None:
        from datetime import UTC, datetime
        from zoneinfo import ZoneInfo

        today = datetime.now(UTC).astimezone(ZoneInfo(reporting_zone(conn))).date()
    return min(found, today)


# The KPIs of the scorecard over one week, the same definitions as marts.kpi_scorecard (the CI
# durations are the CI trend's, `reading.ci_weekly`).
WEEK_KPIS_SQL = """
WITH weeks AS (
    SELECT unnest([$this, $last]) AS week_start
), dora AS (
    SELECT period_start AS week_start, deployments / 7 AS deployments_per_day,
        lead_time_median_s / 3600 AS lead_time_hours, change_failure_rate,
        restore_median_s / 60 AS time_to_restore_minutes, rework_rate
    FROM marts.dora_metrics WHERE service = '*' AND grain = 'week'
), cost AS (
    -- days of the reporting zone already: their week is that zone's too
    SELECT date_trunc('week', day)::DATE AS week_start, sum(cost_usd)::DOUBLE AS ci_cost_usd
    FROM marts.ci_cost_daily WHERE day BETWEEN $last AND $this + 6 GROUP BY 1
)
SELECT w.week_start, d.* EXCLUDE (week_start), k.ci_cost_usd
FROM weeks w
LEFT JOIN dora d USING (week_start)
LEFT JOIN cost k USING (week_start)
"""
KPI_LABELS = {
    "deployments_per_day": ("Deployments per day", "at_least"),
    "lead_time_hours": ("Lead time, median (h)", "below"),
    "change_failure_rate": ("Change failure rate", "below"),
    "time_to_restore_minutes": ("Time to restore, median (min)", "below"),
    "rework_rate": ("Rework rate", "below"),
    "ci_duration_p50_minutes": ("CI duration P50 (min)", "at_most"),
    "ci_duration_p95_minutes": ("CI duration P95 (min)", "at_most"),
    "ci_cost_usd": ("CI cost (USD)", "at_most"),
}


def week_over_week(conn, week_start: date) -> list[dict]:
    """Each KPI this week and the week before, the change, and whether it moved the right way."""
    last = week_start - timedelta(days=7)
    ci = {r["week_start"]: r for r in ci_weekly(conn, last, week_start + timedelta(days=6))}
    rows = {}
    for r in fetch_dicts(conn, WEEK_KPIS_SQL, {"this": week_start, "last": last}):
        durations = ci.get(r["week_start"]) or {}
        r["ci_duration_p50_minutes"] = durations.get("p50_minutes")
        r["ci_duration_p95_minutes"] = durations.get("p95_minutes")
        rows[r["week_start"]] = r
    targets = {r["kpi"]: r["target"] for r in kpi_scorecard(conn) if r["scope"] == "*"}
    out = []
    for kpi, (label, goal) in KPI_LABELS.items():
        now = (rows.get(week_start) or {}).get(kpi)
        before = (rows.get(last) or {}).get(kpi)
        change = None if now is None or before is None else now - before
        better = None
        if change:
            better = change > 0 if goal == "at_least" else change < 0
        out.append(
            {
                "kpi": kpi,
                "label": label,
                "this_week": now,
                "last_week": before,
                "change": change,
                "better": better,
                "target": targets.get(kpi),
            }
        )
    return out


MODEL_WEEKLY_SQL = """
SELECT p.model_name AS model, {predictor} AS predictor,
    dcicd_period_start('week', r.started_at, $zone) AS week_start, count(*) AS runs,
    CASE WHEN p.model_name = 'build_duration' THEN avg((abs(p.predicted_duration_s
        - r.duration_s) <= 0.2 * r.duration_s)::INT)
    ELSE avg(((p.predicted_success_proba >= 0.5)::INT
        = (r.conclusion = 'success')::INT)::INT) END AS quality
FROM ml.build_predictions p JOIN core.pipeline_runs r USING (run_key)
WHERE r.status = 'completed' AND r.conclusion IN ('success', 'failure', 'timed_out')
    AND r.started_at > p.trained_through
    AND dcicd_local_day(r.started_at, $zone) BETWEEN $first AND $last
GROUP BY 1, 2, 3
ORDER BY model, predictor, week_start
"""


def model_weekly(conn, first: date, end: date, zone: str = "UTC") -> list[dict]:
    """Live quality per model, predictor ('lightgbm' or 'baseline') and week (in the reporting
    time zone), on runs the predicting version never learnt from (predictions from before the
    predictor was kept are LightGBM's)."""
    known = column_exists(conn, "ml.build_predictions", "predictor")
    predictor = "coalesce(p.predictor, 'lightgbm')" if known else "'lightgbm'"
    sql = MODEL_WEEKLY_SQL.format(predictor=predictor)
    return fetch_dicts(conn, sql, {"zone": zone, "first": first, "last": end})


# The decisions on the week's events: one on an anomaly detected in the week (its event's time,
# in the reporting zone), or on a run that ended in it (a re-run), is the week's even when the
# automation decided later; any other decision belongs to the week it was requested in.
# Rollbacks first, then alerts, then the rest; the latest first within each.
WEEK_ACTIONS_SQL = """
WITH decided AS (
    SELECT a.kind, a.service, a.mode, a.decision, a.reason, a.target, a.requested_at,
        coalesce({detected}, {ran}) AS detected_at, {explanation} AS explanation
    FROM ops.actions a {joins}
)
SELECT * FROM decided
WHERE dcicd_local_day(coalesce(detected_at, requested_at), $zone) BETWEEN $first AND $last
ORDER BY CASE kind WHEN 'rollback' THEN 0 WHEN 'alert' THEN 1 ELSE 2 END, kind,
    coalesce(detected_at, requested_at) DESC, requested_at DESC
"""


def week_actions(conn, first: date, last: date, zone: str, tables: set[str]) -> list[dict]:
    """The automation's decisions on the week first..last (days of the reporting zone), each
    with the time of what it answered (detected_at: the anomaly's, or the re-run run's end;
    None when neither is known) and the anomaly's explanation."""
    anomalies, runs = "ml.anomalies" in tables, "core.pipeline_runs" in tables
    joins = []
    if anomalies:
        joins.append("LEFT JOIN ml.anomalies n ON n.anomaly_key = a.anomaly_key")
    if runs:
        joins.append(
            "LEFT JOIN core.pipeline_runs r ON a.kind = 'rerun' AND r.run_key = a.entity_key"
        )
    sql = WEEK_ACTIONS_SQL.format(
        detected="n.detected_at" if anomalies else "NULL::TIMESTAMPTZ",
        ran="coalesce(r.finished_at, r.started_at)" if runs else "NULL::TIMESTAMPTZ",
        explanation="n.explanation" if anomalies else "NULL::VARCHAR",
        joins=" ".join(joins),
    )
    return fetch_dicts(conn, sql, {"zone": zone, "first": first, "last": last})


def gather(conn, week_start: date, as_of: date | None) -> WeeklyFigures:
    """Every figure of the report for the ISO week starting week_start."""
    first = week_start - timedelta(weeks=TREND_WEEKS - 1)
    end = week_start + timedelta(days=6)
    zone = reporting_zone(conn)
    figures = WeeklyFigures(week_start, as_of, zone)
    tables = existing_tables(conn)
    figures.dora_weekly = fetch_dicts(
        conn,
        """WITH days AS (
            SELECT coalesce(service, '*') AS service,
                date_trunc('week', deployed_on)::DATE AS week_start,
                count(DISTINCT deployed_on) AS deploy_days
            FROM marts.production_deployments
            GROUP BY GROUPING SETS ((service, week_start), (week_start))
        )
        SELECT m.service, m.period_start AS week_start, m.deployments, d.deploy_days,
            m.lead_time_median_s, m.change_failure_rate, m.restore_median_s, m.rework_rate
        FROM marts.dora_metrics m
        LEFT JOIN days d ON d.service = m.service AND d.week_start = m.period_start
        WHERE m.grain = 'week' AND m.period_start BETWEEN ? AND ?
        ORDER BY m.service, m.period_start""",
        [first, week_start],
    )
    figures.ci_weekly = ci_weekly(conn, first, end)
    figures.flaky = fetch_dicts(
        conn,
        "SELECT repo, workflow, job_name, executions, flakes, flake_rate, last_flake_at"
        " FROM marts.flaky_jobs WHERE flakes > 0 ORDER BY flake_rate DESC, flakes DESC LIMIT 10",
    )
    month_start = end.replace(day=1)
    figures.cost_by_repo = fetch_dicts(
        conn,
        "SELECT repo, runner_label, sum(cost_usd)::DOUBLE AS cost_usd,"
        " sum(cost_usd) FILTER (WHERE day >= ?)::DOUBLE AS week_cost_usd"
        " FROM marts.ci_cost_daily WHERE day BETWEEN ? AND ? GROUP BY ALL ORDER BY repo, 3 DESC",
        [week_start, month_start, end],
    )
    figures.budgets = fetch_dicts(
        conn,
        "SELECT s.service, r.repo, s.monthly_ci_budget_usd AS budget_usd FROM config.services s,"
        " unnest(s.repositories) AS r(repo) WHERE s.monthly_ci_budget_usd IS NOT NULL",
    )
    if "ml.anomalies" in tables:
        figures.anomalies = fetch_dicts(
            conn,
            "SELECT kind, severity, service, explanation, detected_at, cleared_at"
            " FROM ml.anomalies WHERE dcicd_local_day(detected_at, ?) BETWEEN ? AND ?"
            f" ORDER BY {BY_SEVERITY}, detected_at DESC",
            [zone, week_start, end],
        )
    if "ops.actions" in tables:
        figures.actions = week_actions(conn, week_start, end, zone, tables)
    if "raw.events" in tables:
        from dcicd_platform.checks.freshness import NEWEST_SQL, SOURCES

        newest = dict(conn.execute(NEWEST_SQL).fetchall())
        figures.sources = [{"source": s, "newest": newest.get(s)} for s in SOURCES]
    if "ml.build_predictions" in tables:
        figures.model_weekly = model_weekly(conn, first, end, zone)
    if "ml.serving" in tables:
        figures.serving = fetch_dicts(
            conn,
            "SELECT model_name AS model, version, predictor, method, reason, since"
            " FROM ml.serving WHERE serving ORDER BY model_name",
        )
    if "marts.pull_request_cycle" in tables:
        figures.pr_cycle = pull_request_cycle(conn, week_start, end)
    if "marts.recommendations" in tables:
        from dcicd_platform.report import advice_section

        figures.advice = advice_section.gather(conn)
    figures.scorecard = kpi_scorecard(conn)
    figures.autonomy = _autonomy(conn, end, zone)
    figures.week_over_week = week_over_week(conn, week_start)
    figures.dora_tiers = [
        {
            "service": r["service"],
            "tiers": [r[t] or "-" for t in (*TIERS, "overall_tier")],
            "rework_rate": r.get("rework_rate"),
        }
        for r in dora_summary(conn, 30)
    ]
    return figures


def _autonomy(conn, end: date, zone: str) -> list[dict]:
    """The autonomy scorecard of the 30 days up to the end of the week (midnight after its
    Sunday in the reporting time zone), as rows."""
    from datetime import datetime, time
    from zoneinfo import ZoneInfo

    from dcicd_platform.automation.scorecard import read_scorecard, scorecard_rows

    until = datetime.combine(end + timedelta(days=1), time(0), ZoneInfo(zone))
    return scorecard_rows(read_scorecard(conn, until))
