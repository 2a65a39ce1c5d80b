"""`dcicd status`: the health score's definition, and the screen over a real warehouse."""

import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta

import duckdb

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
        "   new in the last 24 h: ",
        "  older, still open: ",
        "CI, the 7 days to 2026-06-02   ",
        " succeeded",
        "  duration P50 ",
        " · queued P50 ",
        "  flakiest job: ",
        "Build predictors",
        "CI cost, ",
        "mobile-backend",  # the service with a budget
    ):
        assert part in screen, part
    assert "data up to" not in screen  # each source's freshness instead
    lines = screen.splitlines()
    assert len(lines) <= 42  # one screen
    # Today's rollback decision, with its target, however the guardrails decided.
    assert "actions today: rollback 1 " in screen
    (rollback,) = [line for line in lines if line.startswith("  rollback ")]
    assert " production -> " in rollback
    # Each deployment with its environment.
    deployed = lines[lines.index("Recent production deployments") + 1 :][:5]
    assert all(line.split()[3] in ("production", "prod-eu", "prod-us") for line in deployed)
    # Every configured service's CI cost, none left out.
    # the month the costs are of, named (the demo's data ends in the month it was made)
    (title,) = [x for x in lines if x.startswith("CI cost, ")]
    assert title[len("CI cost, ") :].split()[1].isdigit()
    costs = "\n".join(lines[lines.index(title) + 1 :])
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        services = [s for (s,) in conn.execute("SELECT service FROM config.services").fetchall()]
    assert len(services) == 8 and all(f"{s} " in costs for s in services)


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


def test_open_anomalies_are_split_new_from_older_each_with_its_age(tmp_path):
    """New: detected in the 24 hours before now, a future-dated one too; older: the rest still
    open; a cleared one is neither. The new come first in the list, then by severity."""
    from dcicd_platform.status import read_status

    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    conn = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    from ml.anomaly.store import ANOMALIES_DDL

    conn.execute(ANOMALIES_DDL)
    for key, severity, ago, cleared in [
        ("old", "critical", timedelta(days=12), None),
        ("older", "warning", timedelta(days=30), None),
        ("recent", "warning", timedelta(hours=2), None),
        ("stray", "info", -timedelta(days=3), None),  # dated in the future
        ("gone", "critical", timedelta(hours=1), now),
    ]:
        conn.execute(
            "INSERT INTO ml.anomalies (anomaly_key, kind, severity, explanation, detected_at,"
            " cleared_at) VALUES (?, 'deployment_health', ?, ?, ?, ?)",
            [key, severity, f"the {key} one", now - ago, cleared],
        )
    status = read_status(conn, now)
    assert status.anomalies_open == {"critical": 1, "warning": 2, "info": 1}
    assert status.anomalies_new == {"warning": 1, "info": 1}
    assert [a[2] for a in status.worst_anomalies] == [
        "the recent one",
        "the stray one",
        "the old one",
    ]
    lines = render_status(status).splitlines()
    start = next(i for i, x in enumerate(lines) if x.startswith("Anomalies open: 4"))
    assert lines[start].endswith("new in the last 24 h: 2 (0 critical, 1 warning, 1 info)")
    assert (
        lines[start + 1]
        == "  older, still open: 2 (1 critical, 1 warning, 0 info), the oldest 30.0 d old"
    )
    assert lines[start + 2].split()[:4] == ["warning", "2.0", "h", "ago"]
    assert lines[start + 3].split()[:4] == ["info", "0", "min", "ago"]
    assert lines[start + 4].split()[:4] == ["critical", "12.0", "d", "ago"]


def test_a_future_dated_event_moves_no_window_past_today(report):  # noqa: F811
    """The marts' newest event day is 2 June; read on 1 June, the windows end on 1 June,
    and the weekly review's date does not run ahead either."""
    from dcicd_platform.report.figures import as_of_date
    from dcicd_platform.resources import read_only_connection
    from dcicd_platform.status import read_status

    home, _ = report
    with read_only_connection(home / "warehouse.duckdb") as conn:
        newest = conn.execute("SELECT max(as_of) FROM marts.dora_summary").fetchone()[0]
        status = read_status(conn, datetime(2026, 6, 1, 12, tzinfo=UTC))
        assert as_of_date(conn, date(2026, 6, 1)) == date(2026, 6, 1)
        assert as_of_date(conn, date(2026, 7, 1)) == newest
    assert newest > date(2026, 6, 1)
    assert status.as_of == date(2026, 6, 1) and status.ci["through"] == date(2026, 6, 1)
    assert "CI, the 7 days to 2026-06-01" in render_status(status)
