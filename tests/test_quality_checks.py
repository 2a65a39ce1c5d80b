"""Great Expectations checks run as blocking asset checks: a bad core table stops the marts."""

import json

import dagster as dg

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


def test_a_failing_core_check_blocks_the_marts(tmp_path, monkeypatch):
    broken = json.loads(json.dumps(fixture_envelope("github/workflow_run/completed.payload.json")))
    broken["payload"]["workflow_run"]["updated_at"] = "2020-10-05T16:00:00Z"  # before its start
    result = refresh(tmp_path, monkeypatch, [broken])
    assert not result.success
    check = evaluations(result)["core/pipeline_runs:finished_at_after_started_at"]
    assert not check.passed
    assert check.metadata["offending_rows"].value == 1
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert "core/pipeline_runs" in materialized
    assert not any(key.startswith("marts/") for key in materialized)
