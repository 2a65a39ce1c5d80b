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
    csv_text = dcicd(home, "query", sql, "--format", "csv").stdout
    assert "\r" not in csv_text  # bare newlines: $(... | tail -1) gives the value alone
    csv_out = csv_text.splitlines()
    assert csv_out == ["source,event_type", "github,workflow_job", "github,workflow_run"]
    json_out = json.loads(dcicd(home, "query", sql, "--format", "json").stdout)
    assert json_out == [
        {"source": "github", "event_type": "workflow_job"},
        {"source": "github", "event_type": "workflow_run"},
    ]
    ndjson = dcicd(home, "query", sql, "--format", "ndjson").stdout.splitlines()
    assert [json.loads(line) for line in ndjson] == json_out
    # No rows: an empty array, and no line at all as NDJSON.
    none = "SELECT source FROM raw.events WHERE false"
    assert json.loads(dcicd(home, "query", none, "--format", "json").stdout) == []
    assert dcicd(home, "query", none, "--format", "ndjson").stdout == ""


def test_query_table_rounds_what_csv_and_json_keep_exact(loaded, home):
    sql = "SELECT 478.84863686561584::DOUBLE AS cost, 0.7590529247910863::DOUBLE AS share, 3 AS n"
    table = dcicd(home, "query", sql).stdout.splitlines()
    assert table[2].split() == ["478.85", "0.759", "3"]
    assert dcicd(home, "query", sql, "--format", "csv").stdout.splitlines()[1] == (
        "478.84863686561584,0.7590529247910863,3"
    )
    exact = json.loads(dcicd(home, "query", sql, "--format", "json").stdout)
    assert exact == [{"cost": 478.84863686561584, "share": 0.7590529247910863, "n": 3}]


def test_ingest_says_why_lines_were_quarantined_and_warns_of_a_file_of_none(home, tmp_path):
    """A file none of whose lines is an envelope (a CSV given by mistake) loads nothing: the
    lines go to quarantine (nothing lost), the reasons are printed with a warning; a folder
    without envelope files is an error."""
    exports = tmp_path / "exports"
    exports.mkdir()
    wrong = exports / "runs.ndjson"
    wrong.write_text("id,duration\n1,20\n")
    result = dcicd(home, "ingest", str(wrong))
    assert result.returncode == 0
    assert f"warning: nothing of {wrong} loaded: all 2 lines quarantined" in result.stderr
    assert "  quarantined: 2 lines: " in result.stdout
    kept = dcicd(home, "query", "SELECT count(*) AS n FROM raw.quarantine", "--format", "csv")
    assert kept.stdout.splitlines() == ["n", "2"]
    empty = tmp_path / "empty"
    empty.mkdir()
    nothing = dcicd(home, "ingest", str(empty))
    assert nothing.returncode == 1 and "error: no envelope files" in nothing.stderr


def test_ingest_names_each_file_as_the_user_gave_it(home, tmp_path):
    one = write_envelopes(
        tmp_path / "exports" / "one.ndjson", [fixture_envelope("gitlab/push.json")]
    )
    result = dcicd(home, "ingest", str(one))
    assert result.returncode == 0, result.stderr
    assert f"{one}: 1 line, 1 loaded, 0 duplicates, 0 quarantined" in result.stdout
    assert "1 file, 1 line: 1 loaded, 0 duplicates, 0 quarantined" in result.stdout
    bad = tmp_path / "exports" / "bad.ndjson.gz"
    bad.write_text("plain text\n")
    failed = dcicd(home, "ingest", str(bad))
    assert failed.returncode == 1
    assert f"error: could not read {bad}: not a gzip file" in failed.stderr
    assert "imported" not in failed.stderr + failed.stdout  # not the copy in landing/


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
        "EXPORT DATABASE '{tmp}/export'",
        "CHECKPOINT",
        "VACUUM",
        "LOAD httpfs",
    ],
)
def test_query_refuses_writes(loaded, home, sql, tmp_path):
    sql = sql.format(tmp=tmp_path)
    result = dcicd(home, "query", sql)
    assert result.returncode != 0
    assert "refused" in result.stderr or "read-only" in result.stderr.lower()
    assert "a INSERT" not in result.stderr and "COLUMN" not in result.stderr
    assert "Falling back" not in result.stderr  # the SQL parser's notice is not shown
    assert not (tmp_path / "export").exists()
    count = dcicd(home, "query", "SELECT count(*) AS n FROM raw.events", "--format", "csv")
    assert count.stdout.splitlines() == ["n", "2"]


def test_query_reads_what_it_promises_and_says_what_it_cannot(loaded, home):
    empty = dcicd(home, "query", "  ")
    assert empty.returncode != 0 and "nothing to run" in empty.stderr
    assert "Traceback" not in empty.stderr
    summary = dcicd(home, "query", "SUMMARIZE raw.events")
    assert summary.returncode == 0, summary.stderr
    odd = "SELECT 'nan'::DOUBLE AS x, 'inf'::DOUBLE AS y, 123.456789::DECIMAL(9, 6) AS d"
    assert json.loads(dcicd(home, "query", odd, "--format", "json").stdout) == [
        {"x": None, "y": None, "d": "123.456789"}
    ]
    assert dcicd(home, "query", odd).stdout.splitlines()[2].split() == ["nan", "inf", "123.46"]


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

    graph = build_definitions(Home(home)).resolve_asset_graph()
    # Every asset but the history import (only its own job calls the providers' APIs).
    assets = [k for k in graph.materializable_asset_keys if k.path[0] != "import"]
    assert f"refresh: {len(assets)} assets materialized" in result.stdout
    jobs = dcicd(
        home, "query", "SELECT job_name, conclusion FROM core.pipeline_jobs", "--format", "csv"
    )
    assert jobs.stdout.splitlines() == ["job_name,conclusion", "linters,failure"]
    assert (home / "dagster" / "dagster.yaml").exists()  # the instance lives in the home


# Arguments each command needs to get as far as reading the configuration.
ARGUMENTS = {
    "ack": ["deployment_health:0123456789abcdef", "--false-alarm"],
    "act": [],
    "approve": ["deployment_health:0123456789abcdef"],
    "demo": [],
    "gate": ["payments-api", "--sha", "abc123"],
    "import": ["github", "acme/payments-api"],
    "ingest": ["exports"],
    "query": ["SELECT 1"],
    "recommend": [],
    "refresh": [],
    "serve": [],
    "status": [],
    "switch": ["rollbacks", "off"],
}
BAD_FILES = {
    "unknown key": ("automation:\n  moed: live\n", "automation.moed: unknown key"),
    "bad value": ("automation:\n  mode: yolo\n", "automation.mode: Input should be"),
}


def test_every_command_is_checked_for_a_bad_configuration():
    from dcicd_platform.cli import main

    assert set(ARGUMENTS) == set(main.commands)


@pytest.mark.parametrize("problem", sorted(BAD_FILES))
@pytest.mark.parametrize("command", sorted(ARGUMENTS))
def test_every_command_refuses_a_bad_configuration(command, problem, tmp_path, monkeypatch):
    """./dcicd.yaml with a wrong key or value: one line naming it, exit 2, nothing done."""
    from click.testing import CliRunner

    from dcicd_platform.cli import main

    text, named = BAD_FILES[problem]
    (tmp_path / "dcicd.yaml").write_text(text)
    (tmp_path / "exports").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DCICD_HOME", str(tmp_path / "home"))
    result = CliRunner().invoke(main, [command, *ARGUMENTS[command]])
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr.splitlines() == [result.stderr.strip()]  # one line
    assert result.stderr.startswith("error: dcicd.yaml has invalid configuration: ")
    assert named in result.stderr
    assert not (tmp_path / "home").exists()  # refused before anything was made


def test_a_bad_file_named_by_dcicd_config_is_refused_too(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from dcicd_platform.cli import main

    config = tmp_path / "elsewhere.yaml"
    config.write_text("services:\n  - name: a\n    criticality: vital\n")
    monkeypatch.setenv("DCICD_CONFIG", str(config))
    result = CliRunner().invoke(main, ["status"])
    assert result.exit_code == 2
    assert "services.0.criticality" in result.stderr and "elsewhere.yaml" in result.stderr
    assert CliRunner().invoke(main, ["status", "--help"]).exit_code == 0  # help still answers


def test_approving_an_unknown_anomaly_starts_no_run(tmp_path, monkeypatch):
    import dagster as dg
    import duckdb
    from click.testing import CliRunner

    from dcicd_platform.cli import main
    from dcicd_platform.home import Home
    from ml.anomaly import ANOMALIES_DDL

    monkeypatch.setenv("DCICD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    home = Home.from_env().prepare()
    assert "no warehouse" in CliRunner().invoke(main, ["approve", "x"]).stderr
    with duckdb.connect(str(home.warehouse)) as conn:
        conn.execute(ANOMALIES_DDL)
        conn.execute(
            "INSERT INTO ml.anomalies (anomaly_key, kind, severity)"
            " VALUES ('deployment_health:1', 'deployment_health', 'critical')"
        )
    result = CliRunner().invoke(main, ["approve", "deployment_health:typo"])
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "Error: no anomaly deployment_health:typo in ml.anomalies: nothing to approve"
    )
    with dg.DagsterInstance.from_config(str(home.dagster_home)) as instance:
        assert instance.get_runs() == []
