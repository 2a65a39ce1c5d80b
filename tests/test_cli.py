"""The `dcicd` command as a user runs it: ingest, query, refresh."""

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import fixture_envelope, write_envelopes

DCICD = str(Path(sys.executable).parent / "dcicd")


def dcicd(home: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "DCICD_HOME": str(home)}
    env.pop("DAGSTER_HOME", None)
    env.pop("DCICD_CONFIG", None)
    return subprocess.run(
        [DCICD, *args], capture_output=True, text=True, env=env, cwd=cwd or home.parent, timeout=300
    )


@pytest.fixture
def home(tmp_path):
    return tmp_path / "home"


@pytest.fixture
def loaded(home, tmp_path):
    exports = tmp_path / "exports"
    write_envelopes(
        exports / "a.ndjson",
        [
            fixture_envelope("github/workflow_run/completed.payload.json"),
            fixture_envelope(
                "github/workflow_job/completed.failure.with-organization.payload.json"
            ),
        ],
    )
    with gzip.open(exports / "b.ndjson.gz", "wb") as handle:
        handle.write(b'{"broken\n')
    result = dcicd(home, "ingest", str(exports))
    assert result.returncode == 0, result.stderr
    return result


def test_ingest_lands_loads_and_counts(loaded, home):
    out = loaded.stdout
    assert "2 files, 3 lines: 2 loaded, 0 duplicates, 1 quarantined" in out
    assert "raw.quarantine" in out  # says where the rejected line is
    landed = sorted(p.name for p in (home / "landing" / "imported").iterdir())
    assert landed == ["a.ndjson", "b.ndjson.gz"]


def test_ingest_again_loads_nothing_twice(loaded, home, tmp_path):
    again = dcicd(home, "ingest", str(tmp_path / "exports"))
    assert again.returncode == 0
    assert "already loaded" in again.stdout
    assert "0 loaded" in again.stdout


def test_ingest_exits_non_zero_when_a_file_cannot_be_read(home, tmp_path):
    write_envelopes(tmp_path / "ok.ndjson", [fixture_envelope("gitlab/push.json")])
    (tmp_path / "fake.ndjson.gz").write_text("plain text\n")
    result = dcicd(
        home,
        "ingest",
        str(tmp_path / "ok.ndjson"),
        str(tmp_path / "fake.ndjson.gz"),
        str(tmp_path / "nope.ndjson"),
    )
    assert result.returncode == 1
    assert (
        "could not read" in result.stderr
        and "fake.ndjson.gz" in result.stderr
        and "nope.ndjson" in result.stderr
    )
    assert "1 loaded" in result.stdout


def test_query_formats(loaded, home):
    sql = "SELECT source, event_type FROM raw.events ORDER BY event_type"
    table = dcicd(home, "query", sql)
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines()[0].split() == ["source", "event_type"]
    assert "workflow_run" in table.stdout
    csv_out = dcicd(home, "query", sql, "--format", "csv").stdout.splitlines()
    assert csv_out == ["source,event_type", "github,workflow_job", "github,workflow_run"]
    json_out = [
        json.loads(line)
        for line in dcicd(home, "query", sql, "--format", "json").stdout.splitlines()
    ]
    assert json_out[1] == {"source": "github", "event_type": "workflow_run"}


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM raw.events",
        "INSERT INTO raw.files SELECT * FROM raw.files",
        "DROP TABLE raw.events",
        "CREATE TABLE x AS SELECT 1",
        "SELECT 1; DROP TABLE raw.events",
        "COPY raw.events TO '/tmp/x.csv'",
        "UPDATE raw.events SET source = 'x'",
    ],
)
def test_query_refuses_writes(loaded, home, sql):
    result = dcicd(home, "query", sql)
    assert result.returncode != 0
    assert "refused" in result.stderr or "read-only" in result.stderr.lower()
    count = dcicd(home, "query", "SELECT count(*) AS n FROM raw.events", "--format", "csv")
    assert count.stdout.splitlines() == ["n", "2"]


def test_query_without_a_warehouse_says_what_to_do(home):
    result = dcicd(home, "query", "SELECT 1")
    assert result.returncode != 0 and "dcicd ingest" in result.stderr


def test_query_errors_are_clear(loaded, home):
    result = dcicd(home, "query", "SELECT * FROM core.nope")
    assert result.returncode != 0 and "nope" in result.stderr and "Traceback" not in result.stderr


def test_refresh_builds_core_tables(loaded, home):
    result = dcicd(home, "refresh")
    assert result.returncode == 0, result.stderr
    from dcicd_platform.definitions import build_definitions
    from dcicd_platform.home import Home

    assets = build_definitions(Home(home)).resolve_asset_graph().materializable_asset_keys
    assert f"refresh: {len(assets)} assets materialized" in result.stdout
    jobs = dcicd(
        home, "query", "SELECT job_name, conclusion FROM core.pipeline_jobs", "--format", "csv"
    )
    assert jobs.stdout.splitlines() == ["job_name,conclusion", "linters,failure"]
    assert (home / "dagster" / "dagster.yaml").exists()  # the instance lives in the home
