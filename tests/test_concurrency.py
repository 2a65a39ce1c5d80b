"""Readers never fail on the writer's lock: they answer from the snapshot, or wait briefly."""

import os
import subprocess
import sys
import time

import duckdb

from dcicd_platform.demo.generator import generate_organisation
from dcicd_platform.resources import publish_snapshot, snapshot_path
from tests.helpers import fixture_envelope, warehouse_with
from tests.test_cli import DCICD, dcicd

HOLD_THE_LOCK = """
import sys, time, duckdb
conn = duckdb.connect(sys.argv[1])
conn.execute("CREATE OR REPLACE TABLE raw.writer_was_here AS SELECT 1 AS x")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.close()
"""


def make_warehouse(home, with_snapshot: bool) -> None:
    home.mkdir(parents=True)
    conn, _ = warehouse_with(home, [fixture_envelope("github/workflow_run/completed.payload.json")])
    if with_snapshot:
        publish_snapshot(conn, home / "warehouse.duckdb")
    conn.close()


def hold_lock(home, seconds: float) -> subprocess.Popen:
    writer = subprocess.Popen(
        [sys.executable, "-c", HOLD_THE_LOCK, str(home / "warehouse.duckdb"), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert writer.stdout.readline().strip() == "locked"
    return writer


def test_query_during_a_write_answers_from_the_snapshot(tmp_path):
    home = tmp_path / "home"
    make_warehouse(home, with_snapshot=True)
    writer = hold_lock(home, 20)
    try:
        result = dcicd(
            home, "query", "SELECT count(*) AS n FROM core.pipeline_runs", "--format", "csv"
        )
        assert writer.poll() is None, "the writer still held the warehouse during the query"
    finally:
        writer.kill()
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["n", "1"]
    assert "snapshot" in result.stderr


def test_query_without_a_snapshot_waits_for_the_writer(tmp_path):
    home = tmp_path / "home"
    make_warehouse(home, with_snapshot=False)
    writer = hold_lock(home, 3)
    result = dcicd(
        home, "query", "SELECT count(*) AS n FROM raw.writer_was_here", "--format", "csv"
    )
    writer.wait()
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["n", "1"]  # it waited, and saw the write


def test_queries_during_a_real_refresh_all_succeed(tmp_path):
    home = tmp_path / "home"
    exports = tmp_path / "exports"
    generate_organisation(exports, seed=1, days=10)
    assert dcicd(home, "ingest", str(exports)).returncode == 0
    # The hourly job's refresh (everything but training and the report) writes every table
    # and publishes the snapshot, as the full one does.
    assert dcicd(home, "refresh", "--job", "refresh_data").returncode == 0
    assert snapshot_path(home / "warehouse.duckdb").exists()
    refresh = subprocess.Popen(
        [DCICD, "refresh", "--job", "refresh_data"],
        env={**os.environ, "DCICD_HOME": str(home)},
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    answers = []
    while refresh.poll() is None and len(answers) < 50:
        result = dcicd(home, "query", "SELECT count(*) FROM core.pipeline_runs", "--format", "csv")
        answers.append((result.returncode, result.stderr))
        time.sleep(0.2)
    out, err = refresh.communicate(timeout=300)
    assert refresh.returncode == 0, err
    assert answers, "the refresh ended before any query ran"
    assert all(code == 0 for code, _ in answers), answers
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM core.pipeline_runs").fetchone()[0] > 0
