"""The weekly review as one self-contained HTML file, and its summary as markdown."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from dcicd_platform.report import charts
from dcicd_platform.report.figures import WeeklyFigures

TEMPLATES = Path(__file__).parent / "templates"
PERCENT = {"change_failure_rate", "rework_rate"}
DOLLARS = {"ci_cost_usd", "cost_per_deployment_usd"}
# What the scorecard's KPI keys (marts.kpi_scorecard) read as, and the unit after a number.
KPI_NAMES = {
    "deployments_per_day": ("Deployments per day", ""),
    "lead_time_hours": ("Lead time, median", " h"),
    "change_failure_rate": ("Change failure rate", ""),
    "time_to_restore_minutes": ("Time to restore, median", " min"),
    "rework_rate": ("Rework rate", ""),
    "ci_duration_p50_minutes": ("CI duration P50", " min"),
    "ci_duration_p95_minutes": ("CI duration P95", " min"),
    "ci_cost_usd": ("CI cost", ""),
    "cost_per_deployment_usd": ("CI cost per deployment", ""),
}


def _value(kpi: str, value: float | None) -> str:
    if value is None:
        return "-"
    if kpi in PERCENT:
        return f"{100 * value:.1f}%"
    if kpi in DOLLARS:
        return f"${value:,.2f}"
    return f"{value:,.1f}"


def _change(kpi: str, row: dict) -> str:
    """The change as shown; one that rounds to nothing reads "no change", without a sign."""
    if row["change"] is None:
        return "-"
    if kpi in PERCENT:
        shown = f"{100 * row['change']:+.1f} pts"
    elif kpi in DOLLARS:
        shown = f"{row['change']:+,.2f}"
    else:
        shown = f"{row['change']:+,.1f}"
    return "no change" if _is_zero(shown) else shown


def _is_zero(shown: str) -> bool:
    return not any(c in "123456789" for c in shown)


def _css(kpi: str, row: dict) -> str:
    """Green or red for a change the reader can see; neutral for one that rounds to zero."""
    if row["change"] is None or _change(kpi, row) == "no change":
        return ""
    return {True: "better", False: "worse"}.get(row["better"], "")


def cost_budget(figures: WeeklyFigures) -> str:
    """The CI cost row's target: the monthly budgets the configuration sets
    (services.*.monthly_ci_budget_usd), the services named when few."""
    budgets: dict[str, float] = {}
    for b in figures.budgets:
        budgets[b["service"]] = b["budget_usd"]
    if not budgets:
        return "no budget set"
    names = ", ".join(sorted(budgets)) if len(budgets) <= 2 else f"{len(budgets)} services"
    return f"${sum(budgets.values()):,.0f} a month ({names})"


def week_over_week_rows(figures: WeeklyFigures) -> list[dict]:
    rows = []
    for r in figures.week_over_week:
        target = _value(r["kpi"], r["target"])
        if r["kpi"] == "ci_cost_usd" and r["target"] is None:
            target = cost_budget(figures)
        rows.append(
            {
                "label": r["label"],
                "this_week": _value(r["kpi"], r["this_week"]),
                "last_week": _value(r["kpi"], r["last_week"]),
                "change": _change(r["kpi"], r),
                "css": _css(r["kpi"], r),
                "target": target,
            }
        )
    return rows


def kpi_name(kpi: str) -> str:
    """A scorecard key as people read it: 'ci_duration_p95_minutes' -> 'CI duration P95'."""
    return KPI_NAMES.get(kpi, (kpi.replace("_", " ").capitalize(), ""))[0]


def _measure(kpi: str, value: float | None) -> str:
    """A scorecard figure with its unit: '30.8 min', '11.4%', '$0.33'."""
    shown = _value(kpi, value)
    return shown if value is None else shown + KPI_NAMES.get(kpi, ("", ""))[1]


def missed_kpis(figures: WeeklyFigures) -> list[dict]:
    """The 30-day scorecard's missed KPIs, one row per KPI in the scorecard's order: its
    target and who missed it with what, the organisation first."""
    by_kpi: dict[str, list[dict]] = {}
    for r in figures.scorecard:
        if r["status"] == "missed":
            by_kpi.setdefault(r["kpi"], []).append(r)
    rows = []
    for kpi, missed in by_kpi.items():
        missed.sort(key=lambda r: (r["scope"] != "*", r["scope"]))
        rows.append(
            {
                "name": kpi_name(kpi),
                "target": ("at least " if missed[0]["goal"] == "at_least" else "")
                + _measure(kpi, missed[0]["target"]),
                "by": [
                    (
                        "the organisation" if r["scope"] == "*" else r["scope"],
                        _measure(kpi, r["actual"]),
                    )
                    for r in missed
                ],
            }
        )
    rows.sort(key=lambda r: r["by"][0][0] != "the organisation")  # the organisation's first
    return rows


def scorecard_counts(figures: WeeklyFigures) -> dict[str, int]:
    counts = {"met": 0, "missed": 0, "no_data": 0}
    for row in figures.scorecard:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    return counts


def serving_lines(figures: WeeklyFigures) -> list[str]:
    """'build_duration: baseline (trailing median) serving (version 3, since 2026-05-30): the
    trained model (v4) does not beat the baseline: the trailing median serves'."""
    lines = []
    for s in figures.serving:
        what = f"baseline ({s['method']})" if s["predictor"] == "baseline" else "LightGBM"
        since = f", since {s['since']:%Y-%m-%d}" if s["since"] else ""
        reason = f": {s['reason']}" if s["reason"] else ""
        lines.append(f"{s['model']}: {what} serving (version {s['version']}{since}){reason}")
    return lines


def render_html(figures: WeeklyFigures, mode: str, floors: dict[str, float]) -> str:
    """The report page: inline CSS and SVG only, so it opens offline and can be mailed on.
    Times are shown in the reporting time zone, as its days and weeks are counted."""
    zone = ZoneInfo(figures.time_zone)
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    targets = {r["kpi"]: r["target"] for r in figures.week_over_week}
    rendered = {
        "dora": charts.dora_trend(figures),
        "pull_requests": charts.pull_request_cycle(figures),
        "ci": charts.ci_duration_trend(
            figures, targets.get("ci_duration_p50_minutes"), targets.get("ci_duration_p95_minutes")
        ),
        "flaky": charts.flakiest_jobs(figures),
        "cost": charts.ci_cost(figures),
        "anomalies": charts.anomalies_by_kind(figures),
        "models": charts.model_quality(figures, floors),
    }
    from dcicd_platform.report import advice_section

    rendered["advice"] = advice_section.render(figures.advice)
    wow = week_over_week_rows(figures)
    by_kpi = {r["kpi"]: (r, row) for r, row in zip(figures.week_over_week, wow, strict=True)}
    tiles = []
    for kpi in (
        "deployments_per_day",
        "change_failure_rate",
        "ci_duration_p95_minutes",
        "ci_cost_usd",
    ):
        raw, shown = by_kpi[kpi]
        tiles.append(
            {
                "label": raw["label"],
                "value": shown["this_week"],
                "change": _tile_change(shown["change"]) if raw["change"] is not None else "",
                "css": shown["css"],
            }
        )
    missed = missed_kpis(figures)
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"])
    )
    return environment.get_template("weekly.html.j2").render(
        f=figures,
        charts=rendered,
        tiles=tiles,
        wow=wow,
        scorecard_counts=scorecard_counts(figures),
        missed=missed,
        dora=[
            d | {"rework": _value("rework_rate", d.get("rework_rate"))} for d in figures.dora_tiers
        ],
        serving=serving_lines(figures),
        mode=mode,
        actions=[
            a
            | {
                "when": _local(a["detected_at"] or a["requested_at"], zone),
                "decided": _local(a["requested_at"], zone),
            }
            for a in figures.actions
        ],
        sources=[s | {"newest": _local(s["newest"], zone)} for s in figures.sources if s["newest"]],
        written=datetime.now(UTC).astimezone(zone).strftime("%Y-%m-%d %H:%M")
        + f" {figures.time_zone}",
    )


def _tile_change(change: str) -> str:
    return "no change from last week" if change == "no change" else f"{change} on last week"


def _local(moment: datetime | None, zone: ZoneInfo) -> datetime | None:
    return moment.astimezone(zone) if moment else None


def summary_markdown(figures: WeeklyFigures, path: Path) -> str:
    """What the Dagster UI shows on the asset: the week against the one before."""
    lines = [
        f"**Weekly review {figures.week}** ({figures.week_start} to {figures.week_end},"
        f" {figures.time_zone}): `{path}`",
        "",
        "| KPI | this week | last week | change | target |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for r in week_over_week_rows(figures):
        mark = {"better": " ✓", "worse": " ✗"}.get(r["css"], "")
        lines.append(
            f"| {r['label']} | {r['this_week']} | {r['last_week']} | {r['change']}{mark} |"
            f" {r['target']} |"
        )
    counts = scorecard_counts(figures)
    critical = sum(a["severity"] == "critical" for a in figures.anomalies)
    lines += [
        "",
        f"Scorecard (30 days): {counts['met']} met, {counts['missed']} missed. "
        f"Anomalies this week: {len(figures.anomalies)} ({critical} critical). "
        f"Flakiest job: "
        + (
            f"{figures.flaky[0]['repo']} / {figures.flaky[0]['job_name']}"
            f" ({100 * figures.flaky[0]['flake_rate']:.1f}%)"
            if figures.flaky
            else "none"
        )
        + ".",
    ]
    serving = serving_lines(figures)
    if serving:
        lines += ["", "Build predictors: " + "; ".join(serving) + "."]
    return "\n".join(lines)
