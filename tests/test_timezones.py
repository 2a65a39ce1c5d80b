"""Days never depend on the host: every warehouse connection works in UTC; the daily rollback
cap (an operational limit) counts UTC days, and the figures people read (the status screen's
actions today) count the reporting time zone's days (UTC by default), though the host's zone is
America/Los_Angeles or Asia/Kolkata.

Each test sets the host's zone in this process (TZ and time.tzset), as a host not in UTC has it,
so they are not among the `dates` tests `make test` runs again under other zones.
"""

import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pytest

from dcicd_platform.assets.config_tables import write_config_tables
from dcicd_platform.automation import responders
from dcicd_platform.automation.actions_table import ACTIONS_DDL
from dcicd_platform.automation.guardrails import PastRollback, RollbackRequest, decide, utc_day
from dcicd_platform.automation.response_jobs import rollback
from dcicd_platform.config import Automation, parse_config
from dcicd_platform.resources import (
    SecretsResource,
    SettingsResource,
    publish_snapshot,
    read_only_connection,
    warehouse_resource,
)
from dcicd_platform.status import read_status
from ml.anomaly import ANOMALIES_DDL

ZONES = ["America/Los_Angeles", "Asia/Kolkata"]
CONFIG = """services:
  - name: checkout
    repositories: [acme/checkout]
automation:
  mode: shadow
  max_rollbacks_per_service_per_day: 1
"""


@pytest.fixture(params=ZONES)
def host_zone(request, monkeypatch):
    """The process runs in a zone that is not UTC, as on such a host; restored afterwards."""
    monkeypatch.setenv("TZ", request.param)
    time.tzset()
    yield ZoneInfo(request.param)
    monkeypatch.undo()
    time.tzset()


HOLD_THE_LOCK = (
    "import sys, duckdb; conn = duckdb.connect(sys.argv[1]); print('locked', flush=True);"
    " sys.stdin.read()"
)


def session_zone(conn) -> str:
    return conn.execute("SELECT current_setting('TimeZone')").fetchone()[0]


def test_every_warehouse_connection_works_in_utc_on_any_host(tmp_path, host_zone):
    warehouse = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as conn:  # by hand: the host's zone (what we guard)
        assert session_zone(conn) == host_zone.key
    # 01:30 UTC on 3 March is 2 March in Los Angeles; 20:00 UTC on 2 March is 3 March in Kolkata
    days = (
        "SELECT TIMESTAMPTZ '2026-03-03 01:30:00+00'::DATE,"
        " TIMESTAMPTZ '2026-03-02 20:00:00+00'::DATE"
    )
    utc_days = (date(2026, 3, 3), date(2026, 3, 2))
    with warehouse_resource(warehouse).get_connection() as conn:
        assert session_zone(conn) == "UTC"
        assert conn.execute(days).fetchone() == utc_days
        conn.execute("CREATE TABLE t AS SELECT TIMESTAMPTZ '2026-03-03 01:30:00+00' AS moment")
        (moment,) = conn.execute("SELECT moment FROM t").fetchone()
        assert moment.utcoffset() == timedelta(0)  # times come back in UTC too
        publish_snapshot(conn, warehouse)
    with read_only_connection(warehouse) as conn:
        assert conn.dcicd_source == "live"
        assert session_zone(conn) == "UTC"
        assert conn.execute(days).fetchone() == utc_days
    # While a writer (another process) holds the file, the reader answers from the snapshot:
    # in UTC as well.
    writer = subprocess.Popen(
        [sys.executable, "-c", HOLD_THE_LOCK, str(warehouse)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout.readline().strip() == "locked"
        with read_only_connection(warehouse, live_wait_s=0.2) as conn:
            assert conn.dcicd_source == "snapshot"
            assert session_zone(conn) == "UTC"
            assert conn.execute(days).fetchone() == utc_days
    finally:
        writer.communicate("", timeout=30)


@pytest.mark.parametrize("zone", ZONES)
def test_the_daily_cap_counts_utc_days_whatever_zone_a_time_is_in(zone):
    """The same moments, written in another zone: the cap still counts UTC days."""
    local = ZoneInfo(zone)
    rules = Automation(mode="shadow", max_rollbacks_per_service_per_day=1)

    def decided(earlier: datetime, now: datetime) -> str:
        history = [PastRollback("checkout", earlier.astimezone(local), "shadow")]
        request = RollbackRequest("a", "checkout", now - timedelta(minutes=5), now)
        return decide(request, history, rules).outcome

    # 2 March 23:50 UTC and 3 March 00:10 UTC: the same local day in both zones, not the same
    # UTC day: the second is not capped.
    assert (
        decided(datetime(2026, 3, 2, 23, 50, tzinfo=UTC), datetime(2026, 3, 3, 0, 10, tzinfo=UTC))
        == "shadow"
    )
    # 3 March 00:20 and 23:50 UTC: local days differ, the UTC day is the same: capped.
    assert (
        decided(datetime(2026, 3, 3, 0, 20, tzinfo=UTC), datetime(2026, 3, 3, 23, 50, tzinfo=UTC))
        == "suppressed"
    )
    assert utc_day(datetime(2026, 3, 2, 20, 0, tzinfo=UTC).astimezone(local)) == date(2026, 3, 2)
    assert utc_day(datetime(2026, 3, 3, 1, 30)) == date(2026, 3, 3)  # naive: taken as UTC


def warehouse_with_a_bad_deploy(path: Path, deployed_at: datetime, earlier: datetime) -> None:
    """A deployment of checkout to undo (its anomaly, the good one before it) and one
    rollback of checkout already decided at `earlier`."""
    with warehouse_resource(path).get_connection() as conn:
        conn.execute(ANOMALIES_DDL)
        conn.execute(ACTIONS_DDL)
        conn.execute(
            "CREATE SCHEMA marts; CREATE TABLE marts.production_deployments (deployment_key"
            " VARCHAR, service VARCHAR, repo VARCHAR, environment VARCHAR, sha VARCHAR,"
            " deployed_at TIMESTAMPTZ, is_failed BOOLEAN)"
        )
        conn.executemany(
            "INSERT INTO marts.production_deployments VALUES (?, 'checkout', 'acme/checkout',"
            " 'production', ?, ?, false)",
            [("d1", "a" * 40, deployed_at - timedelta(hours=3)), ("d2", "b" * 40, deployed_at)],
        )
        conn.execute(
            "INSERT INTO ml.anomalies (anomaly_key, kind, severity, entity_key, service,"
            " explanation) VALUES ('deployment_health:d2', 'deployment_health', 'critical', 'd2',"
            " 'checkout', 'error rate up')"
        )
        conn.execute(
            "INSERT INTO ops.actions (action_id, kind, anomaly_key, service, mode, decision,"
            " requested_at) VALUES ('rollback:earlier', 'rollback', 'earlier', 'checkout',"
            " 'shadow', 'shadow', ?)",
            [earlier],
        )


@pytest.mark.parametrize(
    ("earlier", "now", "expected"),
    [
        # the same local day in both zones, the UTC day before: not capped
        ("2026-03-02 23:50", "2026-03-03 00:10", "shadow"),
        # the same UTC day, the local day before in both zones: capped
        ("2026-03-03 00:20", "2026-03-03 23:50", "suppressed"),
    ],
)
def test_rollbacks_count_utc_days_on_a_host_not_in_utc(tmp_path, host_zone, earlier, now, expected):
    earlier_at = datetime.fromisoformat(earlier).replace(tzinfo=UTC)
    now_at = datetime.fromisoformat(now).replace(tzinfo=UTC)
    warehouse = tmp_path / "warehouse.duckdb"
    warehouse_with_a_bad_deploy(warehouse, now_at - timedelta(minutes=5), earlier_at)
    with warehouse_resource(warehouse).get_connection() as conn:
        outcome = responders.respond_rollback(
            conn, "deployment_health:d2", parse_config(CONFIG), now=now_at
        )
    assert outcome.decision == expected, outcome.reason


def discriminating(now: datetime, zone: ZoneInfo) -> tuple[datetime, bool]:
    """A moment of the last day that is on now's UTC day, or not, while the host's reckoning
    says otherwise: its day in the host's zone against now's there, or against now's UTC day
    (the two ways a host zone slips in). Preferably both; two minutes either side agreeing.
    Returns the moment and whether it is on now's UTC day."""

    def kind(t: datetime) -> tuple[bool, bool, bool]:
        local = t.astimezone(zone).date()
        return (
            utc_day(t) == utc_day(now),
            local == now.astimezone(zone).date(),
            local == utc_day(now),
        )

    best, score = None, 0
    for minutes in range(10, 24 * 60, 5):
        t = now - timedelta(minutes=minutes)
        utc, *host = kind(t)
        steady = kind(t - timedelta(minutes=2)) == kind(t + timedelta(minutes=2)) == kind(t)
        wrong = sum(utc != h for h in host)
        if steady and wrong > score:
            best, score = (t, utc), wrong
    assert best, "a zone not UTC always has such a moment in the last day"
    return best


def test_the_rollback_job_counts_the_utc_day_on_a_host_not_in_utc(tmp_path, host_zone):
    """The response job as the sensor launches it, at the real time: an earlier rollback
    chosen so that the UTC day and the host's reckoning disagree on whether it was today."""
    now = datetime.now(UTC)
    if any((t + timedelta(minutes=1)).date() != t.date() for t in (now, now.astimezone(host_zone))):
        time.sleep(61)  # a midnight is about to pass: decide after it
        now = datetime.now(UTC)
    earlier, today_in_utc = discriminating(now, host_zone)
    warehouse = tmp_path / "warehouse.duckdb"
    warehouse_with_a_bad_deploy(warehouse, now - timedelta(minutes=5), earlier)
    config = tmp_path / "dcicd.yaml"
    config.write_text(CONFIG)
    result = rollback.execute_in_process(
        run_config={
            "ops": {"roll_back_deployment": {"config": {"anomaly_key": "deployment_health:d2"}}}
        },
        resources={
            "warehouse": warehouse_resource(warehouse),
            "settings": SettingsResource(config_file=str(config)),
            "secrets": SecretsResource(),
        },
    )
    decision = result.output_for_node("roll_back_deployment")
    assert decision == ("suppressed" if today_in_utc else "shadow")
    with read_only_connection(warehouse) as conn:
        (reason,) = conn.execute(
            "SELECT reason FROM ops.actions WHERE action_id = 'rollback:deployment_health:d2'"
        ).fetchone()
    assert ("daily cap" in reason) == today_in_utc


def test_status_counts_the_actions_of_the_utc_day(tmp_path, host_zone):
    warehouse = tmp_path / "warehouse.duckdb"
    with warehouse_resource(warehouse).get_connection() as conn:
        conn.execute(ACTIONS_DDL)
        conn.executemany(
            "INSERT INTO ops.actions (action_id, kind, decision, requested_at)"
            " VALUES (?, 'alert', ?, ?)",
            [
                ("alert:1", "executed", datetime(2026, 3, 2, 23, 50, tzinfo=UTC)),
                ("alert:2", "shadow", datetime(2026, 3, 3, 0, 10, tzinfo=UTC)),
            ],
        )
    # 3 March 00:30 UTC, given in the host's zone (2 March in Los Angeles, 06:00 in Kolkata)
    now = datetime(2026, 3, 3, 0, 30, tzinfo=UTC).astimezone(host_zone)
    with read_only_connection(warehouse) as conn:
        assert read_status(conn, now).actions_today == {"shadow": 1}


def test_only_the_warehouse_resources_open_a_connection():
    """A connection opened any other way would work in the host's zone."""
    root = Path(__file__).parent.parent
    opened = {
        str(path.relative_to(root))
        for folder in ("dcicd_platform", "ml", "dbt_like_sql")
        for path in (root / folder).rglob("*.py")
        if "duckdb.connect(" in path.read_text()
    }
    # the gate's own (it answers in milliseconds, without importing Dagster) sets UTC too
    assert opened == {"dcicd_platform/resources.py", "dcicd_platform/duckdb_files.py"}


def test_status_counts_the_actions_of_the_reporting_day(tmp_path, host_zone):
    """Reported in Europe/Berlin: at 08:00 UTC on 3 March (09:00 in Berlin), an alert at 23:10
    UTC on 2 March (00:10 on 3 March in Berlin) is today's, one at 22:50 UTC (23:50 on 2 March
    in Berlin) is not; the UTC day would count neither, the host's day may count both."""
    warehouse = tmp_path / "warehouse.duckdb"
    with warehouse_resource(warehouse).get_connection() as conn:
        conn.execute(ACTIONS_DDL)
        write_config_tables(conn, parse_config("reporting:\n  time_zone: Europe/Berlin\n"))
        conn.executemany(
            "INSERT INTO ops.actions (action_id, kind, decision, requested_at)"
            " VALUES (?, 'alert', ?, ?)",
            [
                ("alert:1", "shadow", datetime(2026, 3, 2, 22, 50, tzinfo=UTC)),
                ("alert:2", "executed", datetime(2026, 3, 2, 23, 10, tzinfo=UTC)),
            ],
        )
    now = datetime(2026, 3, 3, 8, 0, tzinfo=UTC).astimezone(host_zone)
    with read_only_connection(warehouse) as conn:
        status = read_status(conn, now)
    assert (status.time_zone, status.actions_today) == ("Europe/Berlin", {"executed": 1})
