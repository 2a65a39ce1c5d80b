"""The weekly review report: the asset writes one self-contained file per ISO week, with its
summary in the asset's metadata; headless Chromium renders it without a console error."""

import html as html_text
import re
import shutil
import subprocess
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from dcicd_platform.assets.anomalies import anomalies
from dcicd_platform.assets.report import weekly_review
from dcicd_platform.automation import responders
from dcicd_platform.config import parse_config
from dcicd_platform.demo.generator import generate_organisation
from dcicd_platform.demo.organisation import demo_config_yaml
from dcicd_platform.ingest.loader import load_files
from dcicd_platform.report.figures import parse_iso_week, report_week
from dcicd_platform.resources import HomeResource, SettingsResource, warehouse_resource
from tests.helpers import build_core

END = datetime(2026, 6, 3, 12, tzinfo=UTC)  # a Wednesday: the last complete week is W22
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.dates
def test_the_report_week_is_the_last_complete_iso_week():
    assert report_week(date(2026, 6, 3)) == date(2026, 5, 25)  # Wednesday: the week before
    assert report_week(date(2026, 5, 31)) == date(2026, 5, 25)  # Sunday completes its week
    assert report_week(date(2026, 6, 1)) == date(2026, 5, 25)  # Monday: the week just ended
    assert parse_iso_week("2026-W22") == date(2026, 5, 25)
    with pytest.raises(ValueError, match="ISO week"):
        parse_iso_week("last week")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    home = tmp_path_factory.mktemp("report_home")
    files = generate_organisation(home / "landing" / "demo", seed=9, days=60, end=END)
    config = home / "dcicd.yaml"
    config.write_text(demo_config_yaml())
    warehouse = home / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as conn:
        load_files(conn, files)
        build_core(conn, parse_config(demo_config_yaml()))
    resources = {
        "warehouse": warehouse_resource(warehouse),
        "home": HomeResource(root=str(home)),
        "settings": SettingsResource(config_file=str(config)),
    }
    assert dg.materialize([anomalies], resources=resources).success
    with duckdb.connect(str(warehouse)) as conn:  # decisions of the shadow mode to report
        platform = parse_config(demo_config_yaml())
        (key,) = conn.execute(  # the latest anomaly: after the reported week
            "SELECT anomaly_key FROM ml.anomalies ORDER BY detected_at DESC LIMIT 1"
        ).fetchone()
        responders.respond_alert(conn, key, platform)
        in_week = "detected_at BETWEEN '2026-05-25' AND '2026-05-31 23:59:59'"
        for (key,) in conn.execute(  # the week's alerts, and its bad deployment's rollback
            f"SELECT anomaly_key FROM ml.anomalies WHERE {in_week} AND kind <> 'deployment_health'"
            " ORDER BY detected_at LIMIT 3"
        ).fetchall():
            responders.respond_alert(conn, key, platform)
        (key,) = conn.execute(
            f"SELECT anomaly_key FROM ml.anomalies WHERE {in_week}"
            " AND kind = 'deployment_health' AND severity = 'critical'"
            " ORDER BY detected_at LIMIT 1"
        ).fetchone()
        responders.respond_rollback(conn, key, platform)
    result = dg.materialize([weekly_review], resources=resources)
    assert result.success
    (event,) = result.asset_materializations_for_node("reports__weekly_review")
    return home, event.metadata


def test_the_dora_chart_draws_the_bands_the_summary_tiers_by():
    """Each band the chart draws holds values the DORA summary's macro puts in that tier."""
    from dbt_like_sql.session import create_macros
    from dcicd_platform.report.charts import DORA_PANELS, dora_bands

    conn = duckdb.connect()
    create_macros(conn)
    drawn = []
    for _, metric, _, scale, log, (floor, ceiling) in DORA_PANELS:
        bands = dora_bands(metric, scale, floor, ceiling)
        assert [b[1] for b in bands[1:]] == [b[2] for b in bands[:-1]]  # no gap, no overlap
        assert (bands[0][1], bands[-1][2]) == (floor, ceiling)
        for tier, low, high in bands:
            middle = (low * high) ** 0.5 if log else (low + high) / 2
            found = conn.execute("SELECT dcicd_dora_tier(?, ?)", [metric, middle / scale])
            assert found.fetchone()[0] == tier, (metric, middle, tier)
            drawn.append(tier)
    assert sorted(set(drawn)) == ["elite", "high", "low", "medium"] and len(drawn) == 16


def test_the_report_is_one_self_contained_file_with_charts(report):
    home, metadata = report
    path = home / "reports" / "weekly-2026-W22.html"
    assert Path(metadata["path"].value) == path
    html = path.read_text()
    assert "<script" not in html.lower()  # no script at all, inline or not
    # Nothing fetched: every src and href is a fragment or inline data.
    assert [
        url
        for url in re.findall(r'(?:src|href)="([^"]*)"', html)
        if not url.startswith(("#", "data:"))
    ] == []
    assert "@import" not in html and "url(" not in html.replace("url(#", "")
    # DORA, pull-request cycle, CI duration, flaky jobs, cost, anomalies (+ models)
    assert html.count("<svg") >= 6
    for heading in (
        "KPI scorecard",
        "DORA",
        "Pull-request cycle",
        "CI duration",
        "Flakiest jobs",
        "CI cost",
        "Advice that pays for itself",
        "Anomalies found and actions taken",
        "Model quality",
    ):
        assert heading in html
    assert "shadow" in html  # the automation's decision, taken in shadow mode


def test_the_advice_section_shows_the_open_recommendations_with_their_savings(report):
    """The section lists marts.recommendations' open ones, top first, each saving as the
    table has it, and their total."""
    from html import escape

    home, _ = report
    html = (home / "reports" / "weekly-2026-W22.html").read_text()
    section = html[html.index('<h2 id="advice">') :]
    section = section[: section.index("<h2", 10)]
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        found = conn.execute(
            "SELECT entity, saving_minutes_per_month, saving_usd_per_month"
            " FROM marts.recommendations WHERE status = 'open' ORDER BY rank"
        ).fetchall()
    assert found, "the sample organisation has flaky jobs and slow workflows to advise on"
    assert f"<strong>{len(found)} open</strong>" in section
    total = sum(m for _, m, _ in found)
    assert f"saving {total:,.0f} min and ${sum(u for _, _, u in found):,.2f} a month" in section
    entity, top_minutes, top_usd = found[0]
    first_row = section[section.index("<tr><td>1</td>") :].split("</tr>")[0]
    assert escape(entity) in first_row
    assert f"{top_minutes:,.0f} min" in first_row and f"${top_usd:,.2f}" in first_row


def test_the_summary_is_in_the_assets_metadata(report):
    _, metadata = report
    summary = metadata["summary"].value
    assert summary.startswith("**Weekly review 2026-W22**")
    assert "| Deployments per day |" in summary and "| CI cost (USD) |" in summary
    # Numbers the UI plots across materializations, week after week.
    assert metadata["deployments_per_day"].value > 0
    assert 0 <= metadata["change_failure_rate"].value <= 1
    assert metadata["ci_duration_p95_minutes"].value >= metadata["ci_duration_p50_minutes"].value


def test_a_given_week_is_rendered_on_request(report, tmp_path):
    home, _ = report
    resources = {
        "warehouse": warehouse_resource(home / "warehouse.duckdb"),
        "home": HomeResource(root=str(home)),
        "settings": SettingsResource(config_file=str(home / "dcicd.yaml")),
    }
    result = dg.materialize(
        [weekly_review],
        resources=resources,
        run_config={"ops": {"reports__weekly_review": {"config": {"week": "2026-W20"}}}},
    )
    assert result.success
    assert (home / "reports" / "weekly-2026-W20.html").exists()


@pytest.mark.skipif(
    CHROMIUM is None,
    reason="Debian's chromium is not installed (make test installs it when run as root with apt)",
)
def test_headless_chromium_renders_it_without_console_errors(report, tmp_path):
    from PIL import Image

    home, _ = report
    shot = tmp_path / "report.png"
    done = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1200,4000",
            f"--screenshot={shot}",
            (home / "reports" / "weekly-2026-W22.html").as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shot.exists(), done.stderr[-2000:]
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    assert console == []
    image = Image.open(shot).convert("RGB")
    colours = image.resize((300, 1000)).getcolors(maxcolors=300 * 1000)  # (count, colour)
    background = max(colours)[0]
    drawn = 1 - background / (300 * 1000)
    assert drawn > 0.2  # text, tables and charts, not a blank page
    assert len(colours) > 200  # the charts' colours, not one flat colour


def test_before_any_data_the_report_is_skipped_and_the_run_succeeds(tmp_path):
    config = tmp_path / "dcicd.yaml"
    config.write_text(demo_config_yaml())
    duckdb.connect(str(tmp_path / "warehouse.duckdb")).close()
    result = dg.materialize(
        [weekly_review],
        resources={
            "warehouse": warehouse_resource(tmp_path / "warehouse.duckdb"),
            "home": HomeResource(root=str(tmp_path)),
            "settings": SettingsResource(config_file=str(config)),
        },
    )
    assert result.success
    assert result.asset_materializations_for_node("reports__weekly_review") == []
    assert not (tmp_path / "reports").exists() or not list((tmp_path / "reports").iterdir())


def test_the_cycle_chart_stacks_each_services_median_phases():
    """One bar per service with merged pull requests and one for all, each phase a segment;
    a service whose bars run past three days is drawn in days."""
    from datetime import date

    from dcicd_platform.report.charts import pull_request_cycle
    from dcicd_platform.report.figures import WeeklyFigures

    def row(service, n, hours):
        coding, pickup, review, deploy = (h * 3600 if h is not None else None for h in hours)
        return {
            "service": service,
            "pull_requests": n,
            "deployed_pull_requests": n,
            "coding_median_s": coding,
            "pickup_median_s": pickup,
            "review_median_s": review,
            "deploy_median_s": deploy,
            "cycle_median_s": sum(h or 0 for h in hours) * 3600,
        }

    figures = WeeklyFigures(date(2026, 5, 25), date(2026, 6, 3))
    figures.pr_cycle = [row("api", 3, (1, 2, 3, 4)), row("*", 5, (1, None, 3, 4))]
    hours = pull_request_cycle(figures)  # matplotlib keeps each text as a comment
    assert hours.startswith("<svg") and "<!-- hours: the median of each phase" in hours
    assert "<!-- api (3) -->" in hours and "<!-- all services (5) -->" in hours
    for phase in ("coding", "pickup", "review", "deploy", "median cycle"):
        assert f"<!-- {phase} -->" in hours
    figures.pr_cycle = [row("api", 3, (30, 20, 20, 10))]  # 80 hours: past three days
    assert "<!-- days: the median of each phase" in pull_request_cycle(figures)
    figures.pr_cycle = []
    assert "No pull request was merged" in pull_request_cycle(figures)


def _decision_rows(html: str) -> list[list[str]]:
    """The cells of the decisions table, row by row, tags stripped."""
    table = html[html.index('<table class="decisions">') :]
    table = table[: table.index("</table>")]
    return [
        [
            html_text.unescape(re.sub(r"<[^>]+>", "", cell))
            for cell in re.findall(r"<td[^>]*>(.*?)</td>", row)
        ]
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S)[1:]
    ]


def test_the_decisions_are_the_weeks_rollbacks_first_each_with_its_target(report):
    """The rollback decided on the week's bad deployment leads, with where it rolls back to;
    the alerts on the week's anomalies follow, dated when their anomaly was; the alert on an
    anomaly after the week is not the week's, though every decision was taken later."""
    home, _ = report
    html = (home / "reports" / "weekly-2026-W22.html").read_text()
    rows = _decision_rows(html)
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        decided = conn.execute("SELECT kind, count(*) FROM ops.actions GROUP BY 1").fetchall()
    assert dict(decided)["rollback"] == 1 and dict(decided)["alert"] >= 2
    kinds = [r[1] for r in rows]
    assert kinds[0] == "rollback" and set(kinds[1:]) == {"alert"}
    assert len(rows) == sum(n for _, n in decided) - 1  # all but the alert after the week
    when, _, service, target, decision, why, _ = rows[0]
    assert service and " production -> " in target and decision and why
    for row in rows:
        assert row[0].split()[2] == "May" and 25 <= int(row[0].split()[1]) <= 31, row
        assert row[3] not in ("", "-")  # each names what it is about


def test_missed_kpis_read_as_names_with_their_figures(report):
    home, _ = report
    html = (home / "reports" / "weekly-2026-W22.html").read_text()
    table = html[html.index('<table class="missed-kpis">') :]
    table = table[: table.index("</table>")]
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        missed = conn.execute(
            "SELECT DISTINCT kpi FROM marts.kpi_scorecard WHERE status = 'missed'"
        ).fetchall()
    assert missed
    from dcicd_platform.report.render import kpi_name

    for (kpi,) in missed:
        assert kpi not in html  # never the raw key
        assert f"<td>{kpi_name(kpi)}</td>" in table
    assert "(*)" not in html and "_minutes" not in html


def test_a_change_that_rounds_to_nothing_is_neutral_and_the_cost_row_shows_the_budget():
    from dcicd_platform.report.figures import WeeklyFigures
    from dcicd_platform.report.render import week_over_week_rows

    def row(kpi, this, last, better, target=None):
        return {
            "kpi": kpi,
            "label": kpi,
            "this_week": this,
            "last_week": last,
            "change": this - last,
            "better": better,
            "target": target,
        }

    figures = WeeklyFigures(date(2026, 5, 25), date(2026, 6, 3))
    figures.week_over_week = [
        row("lead_time_hours", 3.31, 3.29, False, 24.0),  # +0.02 h: shown +0.0
        row("lead_time_hours", 3.0, 3.3, True, 24.0),
        row("change_failure_rate", 0.1002, 0.1, False, 0.1),
        row("ci_cost_usd", 66.12, 48.69, False),
    ]
    figures.budgets = [{"service": "mobile", "repo": "acme/mobile", "budget_usd": 400.0}]
    nothing, less, rate, cost = week_over_week_rows(figures)
    assert (nothing["change"], nothing["css"]) == ("no change", "")
    assert (less["change"], less["css"]) == ("-0.3", "better")
    assert (rate["change"], rate["css"]) == ("no change", "")
    assert (cost["change"], cost["css"], cost["target"]) == (
        "+17.43",
        "worse",
        "$400 a month (mobile)",
    )
    figures.budgets = []
    assert week_over_week_rows(figures)[3]["target"] == "no budget set"


def test_the_dora_chart_highlights_the_organisation_on_duration_axes():
    """Services are faint behind the organisation's line, the week's worst service named;
    durations read in minutes, hours and days, never in powers of ten."""
    from datetime import timedelta

    from dcicd_platform.report.charts import dora_trend, duration_label, duration_ticks
    from dcicd_platform.report.figures import WeeklyFigures

    week = date(2026, 5, 25)
    figures = WeeklyFigures(week, date(2026, 6, 3))
    for service, lead_hours, restore_minutes in (("api", 2, 20), ("web", 30, 200), ("*", 5, 40)):
        for back in range(3):
            figures.dora_weekly.append(
                {
                    "service": service,
                    "week_start": week - timedelta(weeks=back),
                    "deployments": 5,
                    "deploy_days": 3 if service == "web" else 5,
                    "lead_time_median_s": lead_hours * 3600 * (1 + back / 10),
                    "change_failure_rate": 0.2 if service == "api" else 0.05,
                    "restore_median_s": restore_minutes * 60,
                    "rework_rate": None,
                }
            )
    svg = dora_trend(figures)  # matplotlib keeps each text as a comment
    assert "mathdefault" not in svg and "10^" not in svg
    for tick in ("<!-- 4 h -->", "<!-- 1 d -->", "<!-- 15 min -->", "<!-- 1 h -->"):
        assert tick in svg, tick
    for label in ("the organisation", "each service", "the worst service in the reported week"):
        assert f"<!-- {label} -->" in svg
    # web is worst on deploy days, lead time and restore; api on change failure
    assert svg.count("<!-- web -->") == 3 and svg.count("<!-- api -->") == 1
    assert [duration_label(h) for h in (0.25, 4, 24, 72, 168, 720)] == [
        "15 min",
        "4 h",
        "1 d",
        "3 d",
        "1 w",
        "30 d",
    ]
    assert duration_ticks(0.5, 50) == [1, 4, 24]
