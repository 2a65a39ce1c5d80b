"""Great Expectations checks run as blocking asset checks: a bad core table stops the marts."""

import json

import dagster as dg
import duckdb
import pytest

from dcicd_platform.definitions import build_definitions
from dcicd_platform.home import Home
from tests.helpers import fixture_envelope, write_envelopes


def refresh(tmp_path, monkeypatch, envelopes):
    monkeypatch.chdir(tmp_path)
    home = Home(tmp_path / "home").prepare()
    write_envelopes(home.landing / "events.ndjson", envelopes)
    job = build_definitions(home).resolve_job_def("refresh")
    with dg.instance_for_test() as instance:
        return job.execute_in_process(instance=instance, raise_on_error=False)


def evaluations(result) -> dict[str, dg.AssetCheckEvaluation]:
    return {
        f"{e.asset_key.to_user_string()}:{e.check_name}": e
        for e in result.get_asset_check_evaluations()
    }


def test_checks_pass_on_clean_data(tmp_path, monkeypatch, capfd):
    result = refresh(
        tmp_path,
        monkeypatch,
        [
            fixture_envelope("github/workflow_run/completed.payload.json"),
            fixture_envelope(
                "github/workflow_job/completed.failure.with-organization.payload.json"
            ),
            fixture_envelope("github/deployment_status/payload.json"),
        ],
    )
    assert result.success
    found = evaluations(result)
    assert "core/pipeline_runs:finished_at_after_started_at" in found
    assert "core/deployments:production_deployments_have_deployed_at" in found
    assert "marts/dora_metrics:change_failure_rate_within_0_1" in found
    assert all(e.passed for e in found.values()), [k for k, e in found.items() if not e.passed]
    assert "Calculating Metrics" not in capfd.readouterr().err  # no progress bar per check


def test_a_row_that_breaks_a_row_rule_is_listed_and_blocks_nothing(tmp_path, monkeypatch):
    broken = json.loads(json.dumps(fixture_envelope("github/workflow_run/completed.payload.json")))
    broken["payload"]["workflow_run"]["updated_at"] = "2020-10-05T16:00:00Z"  # before its start
    result = refresh(tmp_path, monkeypatch, [broken])
    assert result.success
    check = evaluations(result)["core/pipeline_runs:finished_at_after_started_at"]
    assert not check.passed  # 1 of 1 rows: below the 99% the rule asks for
    assert check.severity == dg.AssetCheckSeverity.WARN
    assert check.metadata["offending_rows"].value == 1
    assert check.metadata["mostly"].value == 0.99
    run_key = "github:" + str(broken["payload"]["workflow_run"]["id"]) + ":1"
    assert check.metadata["sample"].value[0]["run_key"] == run_key
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert {"core/pipeline_runs", "marts/ci_pipeline_daily", "marts/dora_metrics"} <= materialized
    with duckdb.connect(str(tmp_path / "home" / "warehouse.duckdb"), read_only=True) as conn:
        listed = conn.execute(
            "SELECT row_key->>'run_key', rule, (row_values->>'finished_at')::DOUBLE"
            " < (row_values->>'started_at')::DOUBLE FROM quality.row_issues"
        ).fetchall()
        # The duration figure stays right: never below 0.
        duration = conn.execute("SELECT duration_s FROM core.pipeline_runs").fetchone()[0]
    assert listed == [(run_key, "finished_at_after_started_at", True)]
    assert duration == 0


def test_the_tolerance_is_configurable(tmp_path, monkeypatch):
    broken = json.loads(json.dumps(fixture_envelope("github/workflow_run/completed.payload.json")))
    broken["payload"]["workflow_run"]["updated_at"] = "2020-10-05T16:00:00Z"
    (tmp_path / "dcicd.yaml").write_text(
        "quality:\n  rules:\n    core.pipeline_runs.finished_at_after_started_at: 0\n"
    )
    monkeypatch.setenv("DCICD_CONFIG", str(tmp_path / "dcicd.yaml"))
    result = refresh(tmp_path, monkeypatch, [broken])
    check = evaluations(result)["core/pipeline_runs:finished_at_after_started_at"]
    assert check.passed and check.metadata["offending_rows"].value == 1


def test_a_table_that_lost_its_rows_blocks_the_marts(tmp_path, monkeypatch):
    envelopes = [fixture_envelope("github/workflow_run/completed.payload.json")]
    assert refresh(tmp_path, monkeypatch, envelopes).success
    with duckdb.connect(str(tmp_path / "home" / "warehouse.duckdb")) as conn:
        conn.execute("DELETE FROM core.pipeline_runs")  # a build that lost every row
    job = build_definitions(Home(tmp_path / "home")).resolve_job_def("refresh")
    with dg.instance_for_test() as instance:
        result = job.execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    check = evaluations(result)["core/pipeline_runs:not_emptied"]
    assert not check.passed and check.metadata["rows_at_last_check"].value == 1
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert "core/pipeline_runs" in materialized
    assert not any(key.startswith("marts/ci_") for key in materialized)


def test_a_models_rules_file_is_read_strictly(tmp_path):
    from dcicd_platform.checks.expectations import rules_of

    path = tmp_path / "runs.yaml"
    path.write_text("key: [run_key]\nrules:\n  - unique: run_key\n  - non_negative: duration_s\n")
    rules = rules_of("core.pipeline_runs", path)
    assert [(r.name, r.blocking, r.keys) for r in rules] == [
        ("run_key_unique", True, ()),
        ("duration_s_non_negative", False, ("run_key",)),
    ]
    path.write_text("rules:\n  - non_negative: duration_s\n")
    with pytest.raises(ValueError, match="needs the table's 'key' columns"):
        rules_of("core.pipeline_runs", path)
    path.write_text("key: [run_key]\nrules:\n  - positive: duration_s\n")
    with pytest.raises(ValueError, match="unknown rule kind 'positive'"):
        rules_of("core.pipeline_runs", path)
