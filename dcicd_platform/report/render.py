"""The weekly review as one self-contained HTML file, and its summary as markdown."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from dcicd_platform.report import charts
from dcicd_platform.report.figures import WeeklyFigures

TEMPLATES = Path(__file__).parent / "templates"
PERCENT = {"change_failure_rate", "rework_rate"}


def _value(kpi: str, value: float | None) -> str:
    if value is None:
        return "-"
    if kpi in PERCENT:
        return f"{100 * value:.1f}%"
    if kpi == "ci_cost_usd":
        return f"${value:,.2f}"
    return f"{value:,.1f}"


def _change(kpi: str, row: dict) -> str:
    if row["change"] is None:
        return "-"
    if kpi in PERCENT:
        return f"{100 * row['change']:+.1f} pts"
    if kpi == "ci_cost_usd":
        return f"{row['change']:+,.2f}"
    return f"{row['change']:+,.1f}"


def _css(row: dict) -> str:
    return {True: "better", False: "worse"}.get(row["better"], "")


def week_over_week_rows(figures: WeeklyFigures) -> list[dict]:
    return [
        {
            "label": r["label"],
            "this_week": _value(r["kpi"], r["this_week"]),
            "last_week": _value(r["kpi"], r["last_week"]),
            "change": _change(r["kpi"], r),
            "css": _css(r),
            "target": _value(r["kpi"], r["target"]),
        }
        for r in figures.week_over_week
    ]


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
                "change": f"{shown['change']} on last week" if raw["change"] is not None else "",
                "css": shown["css"],
            }
        )
    missed = [f"{r['kpi']} ({r['scope']})" for r in figures.scorecard if r["status"] == "missed"][
        :12
    ]
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
            a | {"when": a["requested_at"].astimezone(zone) if a["requested_at"] else None}
            for a in figures.actions
        ],
        written=datetime.now(UTC).astimezone(zone).strftime("%Y-%m-%d %H:%M")
        + f" {figures.time_zone}",
    )


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
