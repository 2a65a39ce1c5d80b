"""Retention of raw payloads: old payloads dropped, every derived row kept, through full rebuilds
and further refreshes."""

from datetime import UTC, datetime, timedelta

import dagster as dg
import duckdb
import pytest

from dbt_like_sql import load_models
from dbt_like_sql.retention import drop_payloads, prunable_event_types
from dcicd_platform.config import parse_config
from dcicd_platform.demo.generator import generate_organisation
from dcicd_platform.demo.organisation import demo_config_yaml
from dcicd_platform.home import Home
from dcicd_platform.ingest.loader import load_files
from tests.helpers import build_core

END = datetime(2026, 4, 1, tzinfo=UTC)
MODELS = load_models()
TABLES = [m.table for m in MODELS]


def snapshot(conn) -> dict[str, list]:
    """Every model's rows, sorted (a table's rows in a canonical order)."""
    return {t: sorted(map(repr, conn.execute(f"FROM {t}").fetchall())) for t in TABLES}


@pytest.fixture(scope="module")
def organisation(tmp_path_factory):
    folder = tmp_path_factory.mktemp("org")
    files = generate_organisation(folder / "exports", seed=3, days=40, end=END)
    config = parse_config(demo_config_yaml())
    return files, config


def test_only_types_that_latest_state_tables_alone_read_are_prunable():
    types = prunable_event_types(MODELS)
    # CI runs and jobs and health samples: merged into latest-state tables alone.
    assert {"workflow_run", "workflow_job", "health_sample", "pipeline", "build"} <= set(types)
    # Rebuilt whole from their payloads at every refresh: kept.
    assert not {"deployment_status", "deployment", "push", "issues"} & set(types)
    assert not any(t.startswith("incident.") for t in types)
    assert "commit" not in types  # core.commit_files (rebuilt whole) reads GitHub commits


def test_retention_drops_old_payloads_and_keeps_every_derived_row(tmp_path, organisation):
    files, config = organisation
    conn = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    load_files(conn, files)
    build_core(conn, config)
    before = snapshot(conn)
    assert len(before["core.pipeline_runs"]) > 100 and len(before["core.health_samples"]) > 100

    cutoff = END - timedelta(days=10)
    dropped = drop_payloads(conn, cutoff)
    assert dropped.total > 0 and {"workflow_run", "workflow_job"} <= set(dropped.payloads)
    (nulls, old_kept, kept_types) = conn.execute(
        "SELECT count(*) FILTER (WHERE payload IS NULL),"
        " count(*) FILTER (WHERE payload IS NOT NULL AND received_at < ?"
        "   AND event_type IN ('workflow_run', 'workflow_job', 'health_sample')),"
        " count(*) FILTER (WHERE payload IS NOT NULL AND received_at < ?"
        "   AND event_type IN ('deployment_status', 'push'))"
        " FROM raw.events",
        [cutoff, cutoff],
    ).fetchone()
    assert nulls == dropped.total and old_kept == 0 and kept_types > 0
    # A second pass finds nothing more to drop.
    assert drop_payloads(conn, cutoff).total == 0

    # A refresh with nothing new changes nothing.
    build_core(conn, config)
    assert snapshot(conn) == before
    # A full rebuild of every model (as after a change of their SQL) keeps every row: the
    # rows whose payloads are gone as last built, the rest recomputed.
    conn.execute("DELETE FROM meta.model_versions")
    build_core(conn, config)
    assert snapshot(conn) == before
    # And the refresh after it is idempotent too.
    build_core(conn, config)
    assert snapshot(conn) == before


def test_a_changed_model_recomputes_what_it_can_and_keeps_the_rest(tmp_path, organisation):
    """The rebuild after a change: rows of dropped payloads keep their values (a new column is
    NULL for them), every other row is computed by the changed SQL."""
    from dataclasses import replace

    from dbt_like_sql import build_model

    files, config = organisation
    conn = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    load_files(conn, files)
    build_core(conn, config)
    cutoff = END - timedelta(days=10)
    drop_payloads(conn, cutoff)
    (model,) = [m for m in MODELS if m.table == "core.health_samples"]
    changed = replace(
        model,
        sql=model.sql.replace(
            "SELECT delivery_id, p.service", "SELECT 1 AS marker, delivery_id, p.service"
        ),
    )
    assert changed.sql != model.sql
    build_model(conn, changed)
    by_age = conn.execute(
        "SELECT r.received_at < ? AS old, count(*), count(h.marker)"
        " FROM core.health_samples h JOIN raw.events r USING (delivery_id) GROUP BY 1 ORDER BY 1",
        [cutoff],
    ).fetchall()
    (_, new_rows, new_marked), (_, old_rows, old_marked) = by_age
    assert new_rows == new_marked > 0  # recomputed by the changed SQL
    assert old_rows > 0 and old_marked == 0  # kept as last built
    (total,) = conn.execute(
        "SELECT count(*) FROM raw.events WHERE event_type = 'health_sample'"
    ).fetchone()
    assert new_rows + old_rows == total  # no sample lost


def test_the_retention_job_follows_the_configuration(tmp_path, organisation, monkeypatch):
    """Through Dagster: kept forever by default; with raw.retention_days, dropped."""
    from dcicd_platform.definitions import build_definitions

    files, _ = organisation
    home = Home(tmp_path / "home").prepare()
    monkeypatch.chdir(tmp_path)
    config_file = tmp_path / "dcicd.yaml"
    config_file.write_text(demo_config_yaml())
    conn = duckdb.connect(str(home.warehouse))
    load_files(conn, files)
    build_core(conn, parse_config(config_file.read_text()))
    conn.close()
    defs = build_definitions(home, str(config_file))
    job = defs.resolve_job_def("raw_retention")
    with dg.instance_for_test() as instance:
        kept = job.execute_in_process(instance=instance)
        assert kept.success
        assert kept.output_for_node("drop_old_payloads") == 0
        # Counted from now: a cutoff before the organisation's 40 days drops nothing.
        days = (datetime.now(UTC) - END).days + 45
        config_file.write_text(demo_config_yaml() + f"raw:\n  retention_days: {days}\n")
        dropped = job.execute_in_process(instance=instance)
        assert dropped.success and dropped.output_for_node("drop_old_payloads") == 0
        config_file.write_text(demo_config_yaml() + "raw:\n  retention_days: 1\n")
        dropped = job.execute_in_process(instance=instance)
        assert dropped.success and dropped.output_for_node("drop_old_payloads") > 0
    with duckdb.connect(str(home.warehouse), read_only=True) as conn:
        (nulls,) = conn.execute("SELECT count(*) FROM raw.events WHERE payload IS NULL").fetchone()
    assert nulls == dropped.output_for_node("drop_old_payloads")
    schedule = defs.resolve_schedule_def("daily_raw_retention")
    assert schedule.job_name == "raw_retention"
