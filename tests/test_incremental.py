"""Incremental models: refreshing after new loads gives exactly what a full rebuild gives."""

from datetime import UTC, datetime

import duckdb
import pytest

from dbt_like_sql import load_models
from dcicd_platform.assets.config_tables import write_config_tables
from dcicd_platform.config import PlatformConfig, Service, parse_config
from dcicd_platform.demo.generator import generate_organisation
from dcicd_platform.demo.organisation import demo_config_yaml
from dcicd_platform.ingest.loader import load_files
from tests.helpers import build_core

MODELS = load_models()
INCREMENTAL = [m.table for m in MODELS if m.settings.get("materialization") == "incremental"]
BY_KEY = [m.table for m in MODELS if m.settings.get("materialization") == "by_key"]
END = datetime(2026, 4, 1, tzinfo=UTC)


def same_rows(a: duckdb.DuckDBPyConnection, b_path: str, table: str) -> bool:
    a.execute(f"ATTACH '{b_path}' AS other (READ_ONLY)")
    try:
        missing = a.execute(
            f"SELECT count(*) FROM (FROM {table} EXCEPT ALL FROM other.{table})"
        ).fetchone()[0]
        extra = a.execute(
            f"SELECT count(*) FROM (FROM other.{table} EXCEPT ALL FROM {table})"
        ).fetchone()[0]
        return missing == 0 and extra == 0
    finally:
        a.execute("DETACH other")


def test_the_heavy_core_models_are_incremental():
    assert sorted(INCREMENTAL) == [
        "core.commit_graph",
        "core.health_samples",
        "core.job_steps",
        "core.pipeline_job_states",
        "core.pipeline_runs",
        "ops.collection_arrivals",
    ]


def test_the_marts_over_jobs_recompute_by_key():
    assert sorted(BY_KEY) == [
        "core.pipeline_jobs",
        "marts.ci_cost_daily",
        "marts.ci_job_costs",
        "marts.ci_pipeline_daily",
        "marts.ci_run_costs",
        "marts.job_outcomes_by_sha",
        "ops.collection",
        "ops.collection_gaps",
        "ops.collection_objects",
    ]


def by_window(files: list) -> list[list]:
    """The generated files grouped by their 30-day window: the n-th file of every source."""
    sources: dict[str, list] = {}
    for path in sorted(files):
        sources.setdefault(path.name.split("-")[0], []).append(path)
    windows = max(len(v) for v in sources.values())
    return [[v[i] for v in sources.values() if i < len(v)] for i in range(windows)]


def build_only(conn, tables: set[str], config: PlatformConfig) -> None:
    """Build some models, as a refresh whose other steps were blocked would."""
    from dbt_like_sql import build_model
    from dbt_like_sql.session import prepare_session

    prepare_session(conn)
    write_config_tables(conn, config)
    for model in MODELS:
        if model.table in tables:
            build_model(conn, model)


def test_every_model_refreshed_step_by_step_equals_a_full_rebuild(tmp_path):
    """Three loads, the marts skipped after the second (a blocked run): nothing is lost."""
    files = generate_organisation(tmp_path / "landing", seed=5, days=80, end=END)
    config = parse_config(demo_config_yaml())
    windows = by_window(files)
    assert len(windows) >= 3
    stepwise = duckdb.connect(str(tmp_path / "stepwise.duckdb"))
    core = {t for t in (m.table for m in MODELS) if t.startswith("core.")}
    for step, window in enumerate(windows):
        load_files(stepwise, window)
        if step == 1:
            build_only(stepwise, core, config)
        else:
            build_core(stepwise, config)
    full_path = str(tmp_path / "full.duckdb")
    with duckdb.connect(full_path) as full:
        load_files(full, files)
        build_core(full, config)
    for model in MODELS:
        assert same_rows(stepwise, full_path, model.table), model.table
    # Once every reader has caught up, the change logs are emptied.
    kept = stepwise.execute(
        "SELECT table_name, estimated_size FROM duckdb_tables() WHERE schema_name = 'changes'"
    ).fetchall()
    for name, _ in kept:
        assert stepwise.execute(f"SELECT count(*) FROM changes.{name}").fetchone()[0] == 0, name


def test_a_by_key_mart_recomputes_only_the_keys_new_data_touches(tmp_path):
    files = generate_organisation(tmp_path / "landing", seed=3, days=45, end=END)
    config = parse_config(demo_config_yaml())
    windows = by_window(files)
    conn = duckdb.connect(str(tmp_path / "w.duckdb"))
    load_files(conn, windows[0])
    build_core(conn, config)
    first_day = conn.execute("SELECT min(day) FROM marts.ci_pipeline_daily").fetchone()[0]
    conn.execute("UPDATE marts.ci_pipeline_daily SET runs = -1 WHERE day = ?", [first_day])
    last_day = conn.execute("SELECT max(day) FROM marts.ci_pipeline_daily").fetchone()[0]
    load_files(conn, windows[1])
    build_core(conn, config)
    untouched = conn.execute(
        "SELECT DISTINCT runs FROM marts.ci_pipeline_daily WHERE day = ?", [first_day]
    ).fetchall()
    assert untouched == [(-1,)]  # a full rebuild would have recounted it
    assert (
        conn.execute(
            "SELECT count(*) FROM marts.ci_pipeline_daily WHERE day > ?", [last_day]
        ).fetchone()[0]
        > 0
    )


def test_a_by_key_model_must_map_every_table_it_reads(tmp_path):
    from dbt_like_sql import load_models as load

    (tmp_path / "core").mkdir()
    (tmp_path / "marts").mkdir()
    (tmp_path / "marts" / "bad.sql").write_text(
        "-- materialization: by_key\n-- unique_key: repo\n-- key core.pipeline_runs: repo\n"
        "SELECT r.repo FROM core.pipeline_runs r JOIN core.pipeline_jobs j USING (run_key)\n"
    )
    with pytest.raises(ValueError, match="reads core.pipeline_jobs but has no '-- key"):
        load(tmp_path)


def test_incremental_refresh_equals_a_full_rebuild(tmp_path):
    files = generate_organisation(tmp_path / "landing", seed=11, days=45, end=END)
    config = parse_config(demo_config_yaml())
    by_period = sorted(files, key=lambda p: p.name.split("-")[1])  # source-YYYYMMDD-seed
    first, later = by_period[: len(files) // 2], by_period[len(files) // 2 :]
    stepwise = duckdb.connect(str(tmp_path / "stepwise.duckdb"))
    load_files(stepwise, first)
    build_core(stepwise, config)
    before = stepwise.execute("SELECT count(*) FROM core.pipeline_jobs").fetchone()[0]
    # A marker on the earliest job: a full rebuild would erase it, an incremental one keeps it.
    marked, original = stepwise.execute(
        "SELECT job_key, runner_name FROM core.pipeline_jobs ORDER BY started_at LIMIT 1"
    ).fetchone()
    stepwise.execute(
        "UPDATE core.pipeline_jobs SET runner_name = 'marker' WHERE job_key = ?", [marked]
    )
    load_files(stepwise, later)
    build_core(stepwise, config)  # incremental: only the later loads are read
    assert stepwise.execute("SELECT count(*) FROM core.pipeline_jobs").fetchone()[0] > before
    kept = stepwise.execute(
        "SELECT runner_name FROM core.pipeline_jobs WHERE job_key = ?", [marked]
    ).fetchone()[0]
    assert kept == "marker"
    stepwise.execute(
        "UPDATE core.pipeline_jobs SET runner_name = ? WHERE job_key = ?",
        [original, marked],
    )
    full_path = str(tmp_path / "full.duckdb")
    with duckdb.connect(full_path) as full:
        load_files(full, files)
        build_core(full, config)
    for table in ["core.pipeline_runs", "core.pipeline_jobs", "marts.dora_metrics"]:
        assert same_rows(stepwise, full_path, table), table


def test_late_events_update_earlier_rows(tmp_path):
    from tests.helpers import fixture_envelope, write_envelopes

    conn = duckdb.connect(str(tmp_path / "w.duckdb"))
    queued = write_envelopes(
        tmp_path / "a.ndjson", [fixture_envelope("github/workflow_run/requested.payload.json")]
    )
    done = write_envelopes(
        tmp_path / "b.ndjson", [fixture_envelope("github/workflow_run/completed.payload.json")]
    )
    load_files(conn, [queued])
    build_core(conn)
    assert conn.execute("SELECT status FROM core.pipeline_runs").fetchall() == [("queued",)]
    load_files(conn, [done])
    build_core(conn)
    assert conn.execute("SELECT status, conclusion FROM core.pipeline_runs").fetchall() == [
        ("completed", "success")
    ]
    # A stale delivery arriving after the completion does not undo it.
    stale = fixture_envelope("github/workflow_run/requested.payload.json", "stale")
    load_files(conn, [write_envelopes(tmp_path / "c.ndjson", [stale])])
    build_core(conn)
    assert conn.execute("SELECT status FROM core.pipeline_runs").fetchall() == [("completed",)]


@pytest.mark.parametrize("table", INCREMENTAL)
def test_a_configuration_change_rebuilds_whole(tmp_path, table):
    from tests.helpers import fixture_envelope, write_envelopes

    conn = duckdb.connect(str(tmp_path / "w.duckdb"))
    path = write_envelopes(
        tmp_path / "a.ndjson",
        [
            fixture_envelope("github/workflow_run/completed.payload.json"),
            fixture_envelope(
                "github/workflow_job/completed.failure.with-organization.payload.json"
            ),
        ],
    )
    load_files(conn, [path])
    build_core(conn)
    renamed = PlatformConfig(services=[Service(name="octo", repositories=["octo-org/octo-repo"])])
    write_config_tables(conn, renamed)
    build_core(conn, renamed)  # no new load, but the services changed
    services = conn.execute("SELECT service FROM core.pipeline_runs").fetchall()
    assert services == [("octo",)]


def test_a_one_column_key_recomputes_the_same_with_and_without_null_keys(tmp_path):
    """A one-column key is matched as itself unless a touched key is NULL (then NULL-safely):
    either way the rows equal a whole rebuild, and untouched keys are not recomputed."""
    from dbt_like_sql import changelog, load_model
    from dbt_like_sql.incremental import by_key

    (tmp_path / "marts").mkdir()
    path = tmp_path / "marts" / "totals.sql"
    path.write_text(
        "-- materialization: by_key\n-- unique_key: k\n-- key core.items: k\n"
        "SELECT k, sum(v) AS total, count(*) AS n FROM core.items GROUP BY k\n"
    )
    model = load_model(path)
    conn = duckdb.connect(str(tmp_path / "w.duckdb"))
    for schema in ("core", "marts"):
        conn.execute(f"CREATE SCHEMA {schema}")
    conn.execute(
        "CREATE TABLE core.items AS SELECT * FROM (VALUES ('a', 1), ('a', 2), ('b', 5),"
        " (NULL, 7), ('c', 1)) t(k, v)"
    )
    changelog.ensure_meta(conn)
    changelog.start_build(conn, "core.items", full=True)
    by_key(conn, model)  # whole: no cursor yet
    conn.execute("UPDATE marts.totals SET n = -1 WHERE k = 'c'")  # a key no change touches

    def change(old: str, statement: str, new: str) -> None:
        seq = changelog.start_build(conn, "core.items", full=False)
        changelog.record(conn, "core.items", seq, f"SELECT * FROM core.items WHERE {old}")
        conn.execute(statement)
        changelog.record(conn, "core.items", seq, f"SELECT * FROM core.items WHERE {new}")
        by_key(conn, model)
        whole = conn.execute(f"SELECT k, total, n FROM ({model.sql}) ORDER BY ALL").fetchall()
        kept = conn.execute(
            "SELECT k, total, n FROM marts.totals WHERE k IS DISTINCT FROM 'c' ORDER BY ALL"
        ).fetchall()
        assert kept == [row for row in whole if row[0] != "c"]
        assert conn.execute("SELECT n FROM marts.totals WHERE k = 'c'").fetchall() == [(-1,)]

    # Non-NULL keys only: matched as the column itself; a new key 'd' appears.
    change("k = 'a'", "INSERT INTO core.items VALUES ('a', 10), ('d', 4)", "k IN ('a', 'd')")
    # A NULL key touched: matched NULL-safely, its total recomputed.
    change("k IS NULL", "INSERT INTO core.items VALUES (NULL, 3)", "k IS NULL")
    assert conn.execute("SELECT total, n FROM marts.totals WHERE k IS NULL").fetchall() == [(10, 2)]
