"""Real history as the ground truth: three days of onnx/onnx's GitHub Actions history, refreshed
through Dagster, give exactly the CI figures computed straight from the CSV files.

The whole history is `benchmarks/real_history.py`; see tests/real_history.py for the dataset.
"""

import statistics

import dagster as dg
import duckdb
import pytest

from dcicd_platform.definitions import build_definitions
from dcicd_platform.home import Home
from tests import real_history

pytestmark = pytest.mark.skipif(
    not real_history.DATASET.exists(), reason=f"the real history is not at {real_history.DATASET}"
)
DAYS = ("2026-05-19", "2026-05-21")  # 572 runs, 2,294 jobs


@pytest.fixture(scope="module")
def refreshed(tmp_path_factory):
    """A home holding the three days, after the hourly refresh (every asset but training)."""
    root = tmp_path_factory.mktemp("real")
    home = Home(root / "home").prepare()
    real_history.write_envelopes(home.landing / "onnx.ndjson", real_history.envelopes(days=DAYS))
    job = build_definitions(home).resolve_job_def("refresh_data")
    with dg.instance_for_test() as instance:
        result = job.execute_in_process(instance=instance, raise_on_error=False)
    return home, result


@pytest.fixture(scope="module")
def warehouse(refreshed):
    home, _ = refreshed
    with duckdb.connect(str(home.warehouse), read_only=True) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        yield conn


def test_the_refresh_runs_to_the_end(refreshed):
    _, result = refreshed
    assert result.success
    evaluations = result.get_asset_check_evaluations()
    failed = [
        f"{e.asset_key.to_user_string()}:{e.check_name}"
        for e in evaluations
        if not e.passed and not e.check_name.endswith("_fresh")
    ]
    assert failed == []
    # History from months ago is not fresh, and says so, as a warning that blocks nothing.
    stale = [e for e in evaluations if e.check_name == "github_fresh"]
    assert [(e.passed, e.severity) for e in stale] == [(False, dg.AssetCheckSeverity.WARN)]
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert {"marts/ci_pipeline_daily", "marts/ci_cost_daily", "marts/flaky_jobs"} <= materialized


def test_runs_success_rates_and_durations_per_workflow_and_day_agree(warehouse):
    platform = warehouse.execute(
        "SELECT workflow, day, runs, succeeded, failed, success_rate, duration_p50_s,"
        " duration_p95_s FROM marts.ci_pipeline_daily ORDER BY workflow, day"
    ).fetchall()
    expected = real_history.expected_daily(days=DAYS)
    assert len(expected) == 53
    assert platform == expected


def test_billable_minutes_per_job_agree(warehouse):
    platform = dict(
        warehouse.execute("SELECT job_key, billable_minutes FROM core.pipeline_jobs").fetchall()
    )
    expected = real_history.expected_billable_minutes(days=DAYS)
    assert len(expected) == 2294
    assert platform == expected
    priced = warehouse.execute("SELECT sum(billable_minutes) FROM marts.ci_cost_daily").fetchone()
    assert priced[0] == sum(expected.values())


def one(conn, sql: str, *params) -> dict:
    cursor = conn.execute(sql, list(params))
    names = [d[0] for d in cursor.description]
    return dict(zip(names, cursor.fetchone(), strict=True))


def test_a_skipped_job_that_finished_before_it_started(warehouse):
    # "Check for Publish preview build to pypi-weekly": started 22:42:01, completed 22:41:51.
    job = one(warehouse, "SELECT * FROM core.pipeline_jobs WHERE job_key = 'github:77069730963'")
    assert job["conclusion"] == "skipped" and job["finished_at"] < job["started_at"]
    assert (job["duration_s"], job["ran"], job["billable_minutes"]) == (0, False, 0)


def test_cancelled_jobs_bill_only_when_they_ran(warehouse):
    # Cancelled the moment it was created (04:38:36 to 04:38:36): no runner took it.
    never = one(warehouse, "SELECT * FROM core.pipeline_jobs WHERE job_key = 'github:76888275812'")
    assert (never["conclusion"], never["ran"], never["billable_minutes"]) == ("cancelled", False, 0)
    # Analyze (actions), cancelled after 63 s on a runner: billed 2 minutes.
    ran = one(warehouse, "SELECT * FROM core.pipeline_jobs WHERE job_key = 'github:76800700668'")
    assert (ran["conclusion"], ran["ran"], ran["duration_s"], ran["billable_minutes"]) == (
        "cancelled",
        True,
        63,
        2,
    )


def test_a_run_waiting_for_approval_is_no_failure_and_no_duration(warehouse):
    # "Check URLs" from a first-time contributor: action_required, 0 seconds.
    run = one(warehouse, "SELECT * FROM core.pipeline_runs WHERE run_key = 'github:26246492780:1'")
    assert (run["conclusion"], run["ran"], run["duration_s"]) == ("other", False, 0)
    day = one(
        warehouse,
        "SELECT * FROM marts.ci_pipeline_daily WHERE workflow = 'Check URLs'"
        " AND day = DATE '2026-05-21'",
    )
    assert day["failed"] + day["succeeded"] < day["runs"]
    durations = warehouse.execute(
        "SELECT duration_s FROM core.pipeline_runs WHERE workflow = 'Check URLs'"
        " AND started_at::DATE = DATE '2026-05-21' AND ran"
    ).fetchall()
    # The day's median is that of the runs that ran: the 0-second approval wait is left out.
    assert durations and day["duration_p50_s"] == statistics.median(d for (d,) in durations)
