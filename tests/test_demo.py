"""The sample organisation: deterministic, realistic, and holding what later analyses need."""

from datetime import UTC, datetime

import duckdb

from dcicd_platform.config import parse_config
from dcicd_platform.demo.generator import generate_organisation
from dcicd_platform.demo.organisation import demo_config_yaml
from dcicd_platform.ingest.loader import load_files
from tests.helpers import build_core, rows

END = datetime(2026, 3, 1, tzinfo=UTC)


def test_same_seed_same_bytes(tmp_path):
    a = generate_organisation(tmp_path / "a", seed=3, days=10, end=END)
    b = generate_organisation(tmp_path / "b", seed=3, days=10, end=END)
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    c = generate_organisation(tmp_path / "c", seed=4, days=10, end=END)
    assert [p.read_bytes() for p in a] != [p.read_bytes() for p in c]


def test_demo_organisation_has_what_the_analyses_need(tmp_path):
    files = generate_organisation(tmp_path / "landing", seed=7, days=90, end=END)
    conn = duckdb.connect(str(tmp_path / "w.duckdb"))
    reports = load_files(conn, files)
    assert sum(r.quarantined for r in reports) == 0
    build_core(conn, parse_config(demo_config_yaml()))

    def scalar(sql):
        return conn.execute(sql).fetchone()[0]

    assert scalar("SELECT count(DISTINCT service) FROM core.pipeline_runs") == 8
    assert 2000 <= scalar("SELECT count(*) FROM core.pipeline_runs") <= 8000
    production = "FROM core.deployments WHERE is_production AND status = 'success'"
    assert 200 <= scalar(f"SELECT count(*) {production}") <= 1500
    assert scalar(f"SELECT count(*) {production} AND is_rollback") >= 5
    assert scalar("SELECT count(*) FROM core.deployments WHERE status = 'failure'") >= 3
    assert scalar("SELECT count(*) FROM core.deployments WHERE NOT is_production") >= 50  # staging
    assert scalar("SELECT count(*) FROM core.deployments WHERE environment LIKE 'workflow:%'") >= 5
    assert (
        scalar(
            "SELECT count(DISTINCT environment) FROM core.deployments"
            " WHERE environment LIKE 'prod-%'"
        )
        == 2
    )
    assert {r["source"] for r in rows(conn, "SELECT DISTINCT source FROM core.incidents")} == {
        "pagerduty",
        "github",
    }
    assert scalar("SELECT count(*) FROM core.incidents WHERE root_cause_sha IS NOT NULL") >= 1
    assert scalar("SELECT count(*) FROM core.pipeline_runs WHERE source = 'gitlab'") >= 100
    # Flaky jobs: failed, then passed on a re-run of the same sha.
    assert (
        scalar(
            "SELECT count(*) FROM core.pipeline_runs WHERE attempt = 2 AND conclusion = 'success'"
        )
        >= 10
    )
    # A slow regression: data-pipeline's build got much slower after day 60.
    before, after = conn.execute(
        "SELECT median(duration_s) FILTER (WHERE started_at < TIMESTAMPTZ '2026-01-31'),"
        " median(duration_s) FILTER (WHERE started_at >= TIMESTAMPTZ '2026-02-01')"
        " FROM core.pipeline_jobs WHERE repo = 'acme/data-pipeline' AND job_name = 'build'"
    ).fetchone()
    assert after > 1.4 * before
    # A cost spike: in its worst week, mobile-backend spends over twice a typical week's
    # macOS minutes.
    weekly = sorted(
        r["minutes"]
        for r in rows(
            conn,
            "SELECT sum(billable_minutes) AS minutes FROM core.pipeline_jobs"
            " WHERE runner_label = 'macos-14' GROUP BY date_trunc('week', started_at)",
        )
    )
    assert weekly[-1] > 2 * weekly[len(weekly) // 2]
    # Health samples around every production deployment.
    assert scalar("SELECT count(*) FROM raw.events WHERE source = 'metrics'") >= 10 * scalar(
        f"SELECT count(DISTINCT service) {production}"
    )
    # A commit made days before it was pushed.
    assert (
        scalar("SELECT count(*) FROM core.commits WHERE pushed_at - committed_at > INTERVAL 1 DAY")
        >= 10
    )
