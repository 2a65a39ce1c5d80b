"""CI cases rebuilt from public bug reports of tools like ours (tests/fixtures/cases/), each
with the figures its README shows to be right."""

from pathlib import Path

import duckdb

from dcicd_platform.ingest.loader import load_files
from tests.helpers import build_core, rows

CASES = Path(__file__).parent / "fixtures" / "cases"


def refreshed(tmp_path: Path, *inputs: list[str]) -> duckdb.DuckDBPyConnection:
    """A warehouse where each group of input files was loaded, then refreshed, in turn."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    conn = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    for group in inputs:
        load_files(conn, group)
        build_core(conn)
    return conn


def test_a_skipped_job_is_not_billed(tmp_path):
    case = CASES / "gh-skipped-job-billed"
    conn = refreshed(tmp_path, [case / "input.ndjson"])
    jobs = rows(
        conn, "SELECT job_name, ran, billable_minutes FROM core.pipeline_jobs ORDER BY job_name"
    )
    assert jobs == [
        {"job_name": "build", "ran": True, "billable_minutes": 3},
        {"job_name": "deploy-preview", "ran": False, "billable_minutes": 0},
    ]
    cost = rows(conn, "SELECT runner_label, billable_minutes, cost_usd FROM marts.ci_cost_daily")
    assert [(c["runner_label"], c["billable_minutes"], float(c["cost_usd"])) for c in cost] == [
        ("ubuntu-latest", 3, 0.018)
    ]


def _gitlab_figures(conn) -> tuple[list, list, list]:
    jobs = conn.execute(
        "SELECT job_key, workflow FROM core.pipeline_jobs ORDER BY job_key"
    ).fetchall()
    flaky = conn.execute(
        "SELECT workflow, job_name, executions, failures, flakes FROM marts.flaky_jobs"
    ).fetchall()
    cost = conn.execute(
        "SELECT workflow, runner_label, billable_minutes FROM marts.ci_cost_daily"
    ).fetchall()
    return jobs, flaky, cost


def test_gitlab_jobs_refreshed_before_their_pipeline_take_its_workflow(tmp_path):
    case = CASES / "gl-job-before-pipeline"
    first, second = case / "input.ndjson", case / "input.2.ndjson"
    stepwise = (
        refreshed(tmp_path / "a", [first], [second]) if (tmp_path / "a").mkdir() is None else None
    )
    at_once = (
        refreshed(tmp_path / "b", [first, second]) if (tmp_path / "b").mkdir() is None else None
    )
    jobs, flaky, cost = _gitlab_figures(stepwise)
    assert jobs == [("gitlab:8201", ".gitlab-ci.yml"), ("gitlab:8202", ".gitlab-ci.yml")]
    assert [f[2:] for f in flaky] == [(2, 1, 1)]
    assert cost == [(".gitlab-ci.yml", "gitlab-shared", 11)]
    assert _gitlab_figures(at_once) == (jobs, flaky, cost)
