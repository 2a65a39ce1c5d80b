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


# --- The rules run as SQL in the warehouse: the same verdicts as Great Expectations gave,
# --- and, on the keys a refresh touched, the same catches.


def rules_of_table(table: str):
    from dcicd_platform.checks.expectations import RULES

    return [r for r in RULES if r.table == table]


def run_envelope(run_id: int, updated_at: str) -> dict:
    """The completed-run fixture as run run_id, finished at updated_at (its start: 16:33:49)."""
    envelope = json.loads(
        json.dumps(fixture_envelope("github/workflow_run/completed.payload.json"))
    )
    envelope["delivery_id"] = f"run-{run_id}-{updated_at}"
    envelope["payload"]["workflow_run"]["id"] = run_id
    envelope["payload"]["workflow_run"]["updated_at"] = updated_at
    return envelope


def refresh_warehouse(conn, tmp_path, envelopes: list[dict], name: str) -> None:
    from dcicd_platform.ingest.loader import load_files
    from tests.helpers import build_core

    load_files(conn, [write_envelopes(tmp_path / f"{name}.ndjson", envelopes)])
    build_core(conn)


def check(conn, table: str) -> dict[str, dg.AssetCheckResult]:
    from dcicd_platform.checks.asset_checks import validate
    from dcicd_platform.config import PlatformConfig

    return {r.check_name: r for r in validate(conn, rules_of_table(table), PlatformConfig())}


def listed(conn, rule: str) -> set[str]:
    return {
        key
        for (key,) in conn.execute(
            "SELECT row_key->>'run_key' FROM quality.row_issues WHERE rule = ?", [rule]
        ).fetchall()
    }


def test_a_bad_row_a_later_refresh_brings_is_caught_and_listed_with_those_before(tmp_path):
    """Each check lists what breaks the rule now: a row still bad stays listed, a row fixed
    by a later event leaves the list, a new bad row joins it."""
    conn = duckdb.connect(str(tmp_path / "w.duckdb"))
    rule = "finished_at_after_started_at"
    refresh_warehouse(
        conn,
        tmp_path,
        [run_envelope(1, "2020-10-05T16:40:00Z"), run_envelope(2, "2020-10-05T16:00:00Z")],
        "first",
    )
    first = check(conn, "core.pipeline_runs")[rule]
    assert not first.passed and first.metadata["offending_rows"].value == 1
    assert listed(conn, rule) == {"github:2:1"}
    checked_at = conn.execute("SELECT checked_at FROM quality.row_issues").fetchone()[0]

    refresh_warehouse(conn, tmp_path, [run_envelope(3, "2020-10-05T15:00:00Z")], "second")
    second = check(conn, "core.pipeline_runs")[rule]
    assert second.metadata["offending_rows"].value == 2
    assert second.metadata["rows_checked"].value == 3
    assert listed(conn, rule) == {"github:2:1", "github:3:1"}
    values = conn.execute(
        "SELECT (row_values->>'finished_at')::DOUBLE < (row_values->>'started_at')::DOUBLE,"
        " checked_at > ? FROM quality.row_issues WHERE row_key->>'run_key' = 'github:3:1'",
        [checked_at],
    ).fetchall()
    assert values == [(True, True)]
    # Each listed row was checked again now, as every check of the rule lists it afresh.
    assert conn.execute(
        "SELECT min(checked_at) > ? FROM quality.row_issues", [checked_at]
    ).fetchone()[0]

    # A later event finishes run 2 after its start: it no longer breaks the rule.
    refresh_warehouse(conn, tmp_path, [run_envelope(2, "2020-10-05T16:50:00Z")], "third")
    third = check(conn, "core.pipeline_runs")[rule]
    assert third.metadata["offending_rows"].value == 1
    assert listed(conn, rule) == {"github:3:1"}
    assert conn.execute("SELECT count(*) FROM quality.row_issues").fetchone()[0] == 1


def test_a_key_a_refresh_writes_twice_is_caught_reading_only_the_touched_keys(
    tmp_path, monkeypatch
):
    """A build that loses its delete (the old row of a run stays beside the new one) is caught
    by the uniqueness rule reading only the keys the refresh touched."""
    from dbt_like_sql import incremental

    conn = duckdb.connect(str(tmp_path / "w.duckdb"))
    refresh_warehouse(
        conn,
        tmp_path,
        [run_envelope(n, "2020-10-05T16:40:00Z") for n in range(1, 6)]
        + [fixture_envelope("github/workflow_run/requested.payload.json")],
        "first",
    )
    first = check(conn, "core.pipeline_runs")["run_key_unique"]
    assert first.passed and first.metadata["read"].value == "every key"
    again = check(conn, "core.pipeline_runs")["run_key_unique"]
    assert again.passed and again.metadata["read"].value == "the keys the refresh touched"

    original = incremental.in_transaction

    def losing_the_delete(conn, statements, params=None):
        kept = [
            s
            for s in statements
            if not (isinstance(s, str) and s.startswith("DELETE FROM core.pipeline_runs"))
        ]
        return original(conn, kept, params)

    with monkeypatch.context() as patched:
        patched.setattr(incremental, "in_transaction", losing_the_delete)
        refresh_warehouse(
            conn, tmp_path, [fixture_envelope("github/workflow_run/completed.payload.json")], "b"
        )
    held_twice = conn.execute(
        "SELECT run_key FROM core.pipeline_runs GROUP BY 1 HAVING count(*) > 1"
    ).fetchall()
    assert len(held_twice) == 1
    caught = check(conn, "core.pipeline_runs")["run_key_unique"]
    assert not caught.passed and caught.severity == dg.AssetCheckSeverity.ERROR
    assert caught.metadata["read"].value == "the keys the refresh touched"
    assert caught.metadata["offending_rows"].value == 2
    assert caught.metadata["sample"].value == [held_twice[0][0]]
    # Failed once, the rule reads every key until it holds again.
    still = check(conn, "core.pipeline_runs")["run_key_unique"]
    assert not still.passed and still.metadata["read"].value == "every key"


def test_a_key_written_outside_the_builds_is_caught_by_the_daily_whole_check(tmp_path):
    from dcicd_platform.checks.asset_checks import WHOLE_CHECK_EVERY

    conn = duckdb.connect(str(tmp_path / "w.duckdb"))
    refresh_warehouse(conn, tmp_path, [run_envelope(1, "2020-10-05T16:40:00Z")], "first")
    assert check(conn, "core.pipeline_runs")["run_key_unique"].passed
    conn.execute("INSERT INTO core.pipeline_runs SELECT * FROM core.pipeline_runs")
    touched = check(conn, "core.pipeline_runs")["run_key_unique"]
    assert touched.passed  # no build touched the key: only a whole read can see it
    conn.execute(
        "UPDATE quality.rule_results SET whole_checked_at = whole_checked_at - ?",
        [WHOLE_CHECK_EVERY],
    )
    whole = check(conn, "core.pipeline_runs")["run_key_unique"]
    assert not whole.passed and whole.metadata["read"].value == "every key"


EDGE_ROWS = """
CREATE TABLE core.edge AS
SELECT i AS id, 'k' || (i % 97) AS dup, CASE WHEN i % 13 = 0 THEN NULL ELSE 'v' || i END AS maybe,
    CASE WHEN i % 31 = 0 THEN NULL WHEN i % 17 = 0 THEN -1.5 ELSE i / 7.0 END AS amount,
    CASE WHEN i % 19 = 0 THEN 1.5 WHEN i % 23 = 0 THEN 0.0 ELSE 1.0 / (i + 1) END AS share,
    TIMESTAMPTZ '2026-01-01' + to_minutes(i) AS began,
    CASE WHEN i % 29 = 0 THEN NULL WHEN i % 11 = 0 THEN TIMESTAMPTZ '2026-01-01'
        ELSE TIMESTAMPTZ '2026-01-01' + to_minutes(2 * i) END AS ended,
    i % 3 = 0 AS ran,
    CASE WHEN i % 37 = 0 THEN 'neutral' WHEN i % 41 = 0 THEN NULL ELSE 'success' END
        AS conclusion,
    CASE WHEN i % 43 = 0 THEN NULL ELSE i % 5 END AS a, CASE WHEN i % 47 = 0 THEN NULL
        ELSE i % 7 END AS b
FROM range(1, 301) t(i)
"""


@pytest.mark.parametrize("mostly", [0.8, 0.9, 0.95, 0.99])
def test_each_rule_judges_as_great_expectations_does(tmp_path, mostly):
    """Every kind of rule, as SQL, on rows with nulls, duplicates and values at the bounds:
    the offending count, the verdict at several tolerances and the rows it lists are those
    Great Expectations gives on the same rows pulled into pandas."""
    import great_expectations as gx

    from dcicd_platform.checks import expectations as ex
    from dcicd_platform.checks.asset_checks import validate
    from dcicd_platform.config import PlatformConfig, Quality

    conn = duckdb.connect(str(tmp_path / "w.duckdb"))
    conn.execute("CREATE SCHEMA core")
    conn.execute(EDGE_ROWS)
    keys = ("id",)
    rules = [
        ex.unique("core.edge", "dup"),
        ex.unique("core.edge", "maybe"),
        ex.unique("core.edge", ["a", "b"]),
        ex.unique("core.edge", "id"),
        ex.not_null("core.edge", "maybe"),
        ex.non_negative("core.edge", "amount", keys),
        ex.within_0_1("core.edge", "share", keys),
        ex.ordered("core.edge", {"before": "began", "after": "ended", "where": "ran"}, keys),
        ex.ordered("core.edge", {"before": "began", "after": "ended", "name": "all"}, keys),
        ex.present("core.edge", {"column": "maybe", "where": "ran", "name": "p"}, keys),
        ex.conclusion_allowed("core.edge", None, keys),
    ]
    config = PlatformConfig(quality=Quality(mostly=mostly))
    ours = {r.check_name: r for r in validate(conn, rules, config)}
    context = gx.get_context(mode="ephemeral")
    batches = (
        context.data_sources.add_pandas("edge")
        .add_dataframe_asset(name="rows")
        .add_batch_definition_whole_dataframe("all")
    )
    verdicts = set()
    for rule in rules:
        kwargs = dict(rule.kwargs)
        result_format: dict = {"result_format": "SUMMARY"}
        if not rule.blocking:
            kwargs["mostly"] = mostly
            result_format = {
                "result_format": "COMPLETE",
                "unexpected_index_column_names": list(rule.keys),
                "return_unexpected_index_query": False,
            }
        frame = conn.execute(rule.sql).df()
        theirs = batches.get_batch(batch_parameters={"dataframe": frame}).validate(
            getattr(gx.expectations, rule.expectation)(**kwargs), result_format=result_format
        )
        mine = ours[rule.name]
        assert mine.passed == theirs.success, rule.name
        assert mine.metadata["offending_rows"].value == theirs.result["unexpected_count"], rule.name
        verdicts.add(mine.passed)
        if not rule.blocking:
            assert mine.metadata["rows_checked"].value == len(frame)
            expected = {r["id"] for r in theirs.result["unexpected_index_list"]}
            got = {
                json.loads(k)["id"]
                for (k,) in conn.execute(
                    "SELECT row_key FROM quality.row_issues WHERE rule = ?", [rule.name]
                ).fetchall()
            }
            assert got == expected, rule.name
    assert verdicts == {True, False}  # the rows break some rules and keep others
