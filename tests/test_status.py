"""`dcicd status`: the health score's definition, and the screen over a real warehouse."""

import os
import subprocess
import sys

from dcicd_platform.status import Status, render_status
from tests.test_report import report  # noqa: F401 (the module fixture: a home with a warehouse)


def test_the_health_score_is_half_dora_tiers_half_kpis_met():
    status = Status(
        tiers={"frequency": "elite", "lead time": "high", "failure": "low", "restore": None},
        kpi_met=3,
        kpi_measured=4,
    )
    assert status.dora_score == (100 + 75 + 25) / 3  # a metric without data is left out
    assert status.kpi_score == 75
    assert status.health == round((200 / 3 + 75) / 2) == 71
    assert status.verdict == "watch"
    assert Status(tiers={"frequency": "elite"}, kpi_met=9, kpi_measured=10).verdict == "healthy"
    assert Status().health is None and Status().verdict == "no data"
    assert "Health - (no data)" in render_status(Status())


def dcicd_status(home) -> subprocess.CompletedProcess:
    env = os.environ | {"DCICD_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "dcicd_platform.cli", "status"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_status_reads_the_warehouse_onto_one_screen(report):  # noqa: F811
    home, _ = report
    done = dcicd_status(home)
    assert done.returncode == 0, done.stderr
    screen = done.stdout
    assert screen.startswith("Health ") and "/100 (" in screen.splitlines()[0]
    for part in (
        "DORA ",
        "KPIs ",
        "Sources (newest delivery): github ",
        "Automation: mode shadow",
        "actions today:",
        "Recent production deployments",
        "Pull-request cycle, merged in the last 30 days",
        "  medians: cycle ",
        "Anomalies open:",
        "Build predictors",
        "CI cost this month",
        "mobile-backend",  # the service with a budget
    ):
        assert part in screen, part
    assert len(screen.splitlines()) <= 40  # one screen


def test_status_without_a_warehouse_says_what_to_do(tmp_path):
    done = dcicd_status(tmp_path / "empty")
    assert done.returncode != 0
    assert "dcicd ingest" in done.stderr and "Traceback" not in done.stderr


def test_the_demo_prints_the_pull_request_cycle_per_service(report, capsys):  # noqa: F811
    from dcicd_platform.home import Home
    from dcicd_platform.screens import print_pull_request_cycle

    home, _ = report
    print_pull_request_cycle(Home(home))
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("Pull-request cycle, merged in the 30 days to 2026-06-0")
    assert lines[1].split() == ["service", "merged", "deployed", "cycle"] + [
        "coding",
        "pickup",
        "review",
        "deploy",
    ]
    services = [line.split()[0] for line in lines[3:]]
    assert "checkout-web" in services and lines[-1].startswith("all services")


def test_each_source_shows_how_fresh_it_is(tmp_path):
    """The newest delivery of each source against its allowed lag, from a real warehouse."""
    from datetime import UTC, datetime, timedelta

    import duckdb

    from dcicd_platform.ingest.schema import ensure_raw_schema
    from dcicd_platform.status import read_status

    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    conn = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    ensure_raw_schema(conn)
    for delivery, source, ago in [
        ("a", "github", timedelta(minutes=50)),
        ("b", "github", timedelta(minutes=3)),  # the newest counts
        ("c", "metrics", timedelta(minutes=40)),  # more than 15 minutes: stale
        ("d", "pagerduty", timedelta(days=3)),  # a week allowed
    ]:
        conn.execute(
            "INSERT INTO raw.events VALUES (?, ?, 'x', ?, '{}', 'f', 1, 'l')",
            [delivery, source, now - ago],
        )
    status = read_status(conn, now, {"github": 60, "gitlab": 60, "pagerduty": 10080, "metrics": 15})
    assert [
        (s, round(lag) if lag is not None else None, limit) for s, _, lag, limit in status.sources
    ] == [
        ("github", 3, 60),
        ("gitlab", None, 60),
        ("pagerduty", 3 * 1440, 10080),
        ("metrics", 40, 15),
    ]
    (line,) = [x for x in render_status(status).splitlines() if x.startswith("Sources")]
    assert "github 3 min ago" in line and "gitlab -" in line and "pagerduty 3.0 d ago" in line
    assert "metrics stale 40 min (max 15 min)" in line
