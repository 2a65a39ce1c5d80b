"""reports/weekly_review: the weekly review report, written to $DCICD_HOME/reports/."""

import dagster as dg

from dcicd_platform.files import replaced_whole
from dcicd_platform.resources import DUCKDB_POOL, HomeResource, SettingsResource, WarehouseResource

READS = [
    ["marts", "dora_metrics"],
    ["marts", "dora_summary"],
    ["marts", "production_deployments"],
    ["marts", "kpi_scorecard"],
    ["marts", "flaky_jobs"],
    ["marts", "ci_cost_daily"],
    ["marts", "recommendations"],
    ["core", "pipeline_runs"],
    ["config", "services"],
    ["config", "reporting"],
    ["ml", "build_predictions"],
    ["ml", "anomalies"],
    ["ops", "actions"],
]


class ReportConfig(dg.Config):
    week: str = ""  # an ISO week such as 2026-W46; empty: the last complete week of the data


@dg.asset(
    key=["reports", "weekly_review"],
    deps=[dg.AssetKey(k) for k in READS],
    group_name="reports",
    kinds={"html"},
    pool=DUCKDB_POOL,
    owners=["team:platform"],
    output_required=False,  # no data yet: nothing to report, and the run still succeeds
)
def weekly_review(
    context: dg.AssetExecutionContext,
    config: ReportConfig,
    warehouse: WarehouseResource,
    home: HomeResource,
    settings: SettingsResource,
):
    """The weekly review a platform team reads and sends on: DORA per service over the tier
    bands, CI duration, the flakiest jobs, CI cost against budgets, anomalies and what the
    automation decided, model quality, and the KPIs against last week. One self-contained
    HTML file (inline CSS and SVG: it opens offline) per ISO week."""
    from dcicd_platform.report.figures import as_of_date, gather, parse_iso_week, report_week
    from dcicd_platform.report.render import render_html, summary_markdown

    platform = settings.load()
    with warehouse.get_connection() as conn:
        as_of = as_of_date(conn)
        if config.week:
            week_start = parse_iso_week(config.week)
        elif as_of is None:
            context.log.warning("no events in the warehouse yet: no weekly review to write")
            return
        else:
            week_start = report_week(as_of)
        figures = gather(conn, week_start, as_of)
    floors = {
        "build_duration": platform.models.duration_within_20pct_floor,
        "build_outcome": platform.models.outcome_accuracy_floor,
    }
    html = render_html(figures, platform.automation.mode, floors)
    folder = home.home.reports
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"weekly-{figures.week}.html"
    with replaced_whole(path) as partial:  # a reader never opens half a report
        partial.write_text(html, encoding="utf-8")
    context.log.info(f"wrote {path} ({len(html) / 1024:.0f} KiB)")
    numbers = {
        r["kpi"]: dg.MetadataValue.float(float(r["this_week"]))
        for r in figures.week_over_week
        if r["this_week"] is not None
    }
    yield dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(path)),
            "week": figures.week,
            "summary": dg.MetadataValue.md(summary_markdown(figures, path)),
            "anomalies": len(figures.anomalies),
            **numbers,  # plotted across materializations by the UI: the trend, week by week
        }
    )
