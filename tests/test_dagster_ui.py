"""What the Dagster UI shows, read from a real instance after real runs: which assets it calls
stale, the automation's audit on ops/actions, the landing sensor's runs, readable metadata."""

from datetime import UTC, datetime

import dagster as dg
import duckdb
import pytest
from dagster._core.asset_graph_view.asset_graph_view import AssetGraphView, TemporalContext
from dagster._core.definitions.data_version import (
    DEFAULT_DATA_VERSION,
    CachingStaleStatusResolver,
    StaleStatus,
)

from dcicd_platform.automation.actions_table import ACTIONS_DDL
from dcicd_platform.automation.landing_sensor import landing_sensor
from dcicd_platform.definitions import build_definitions
from dcicd_platform.home import Home
from dcicd_platform.ingest.loader import load_file
from dcicd_platform.ingest.schema import ensure_raw_schema
from tests.helpers import fixture_envelope, write_envelopes

ACTIONS = dg.AssetKey(["ops", "actions"])


@pytest.fixture
def home(tmp_path, monkeypatch) -> Home:
    home = Home(tmp_path / "home").prepare()
    monkeypatch.setenv("DCICD_HOME", str(home.root))
    monkeypatch.delenv("DCICD_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)  # no ./dcicd.yaml here: built-in defaults
    return home


def _resolver(instance, graph) -> CachingStaleStatusResolver:
    """What the UI asks when it shows an asset "Unsynced" (Dagster's stale status)."""
    now = TemporalContext(effective_dt=datetime.now(UTC), last_event_id=None)
    view = AssetGraphView(temporal_context=now, instance=instance, asset_graph=graph)
    return CachingStaleStatusResolver(instance, graph, view)


def _statuses(instance, defs, keys) -> dict[str, StaleStatus]:
    resolver = _resolver(instance, defs.resolve_asset_graph())
    return {k.to_user_string(): resolver.get_status(k) for k in keys}


def test_a_watch_that_finds_nothing_new_leaves_the_marts_in_sync(home):
    """The five-minute watch rebuilds the core tables under the marts: unchanged rows keep
    their data version, so only new rows make a mart read "Unsynced"."""
    write_envelopes(
        home.landing / "a.ndjson",
        [
            fixture_envelope("github/workflow_run/completed.payload.json"),
            fixture_envelope("github/deployment_status/payload.json"),
        ],
    )
    defs = build_definitions(home)
    graph = defs.resolve_asset_graph()
    marts = [k for k in graph.materializable_asset_keys if k.path[0] == "marts"]
    with dg.instance_for_test() as instance:
        assert defs.resolve_job_def("refresh_data").execute_in_process(instance=instance).success
        watch = defs.resolve_job_def("watch").execute_in_process(instance=instance)
        assert watch.success
        rebuilt = {event.asset_key for event in watch.get_asset_materialization_events()}
        assert dg.AssetKey(["core", "pipeline_runs"]) in rebuilt
        outside = [k for k in marts if k not in rebuilt]
        # marts the watch does not build, over core tables it rebuilt
        under_rebuilt = [k for k in outside if graph.get(k).parent_keys & rebuilt]
        assert under_rebuilt
        statuses = _statuses(instance, defs, marts)
        assert set(statuses.values()) == {StaleStatus.FRESH}, statuses

        # A new workflow run lands and the watch rebuilds core.pipeline_runs with it: the marts
        # over the runs are stale now, and say why; those over unchanged tables are not.
        new = write_envelopes(
            home.landing / "b.ndjson",
            [
                fixture_envelope(
                    "github/workflow_run/completed.with-pull-requests.payload.json", "run-2"
                )
            ],
        )
        ingest = defs.resolve_job_def("ingest_landing_file")
        config = {"ops": {"raw__events": {"config": {"files": [str(new)]}}}}
        assert ingest.execute_in_process(run_config=config, instance=instance).success
        assert defs.resolve_job_def("watch").execute_in_process(instance=instance).success
        statuses = _statuses(instance, defs, outside)
        stale = {k for k, s in statuses.items() if s == StaleStatus.STALE}
        assert stale, statuses
        resolver = _resolver(instance, graph)
        for key in stale:
            causes = resolver.get_stale_root_causes(dg.AssetKey.from_user_string(key))
            assert causes and all("data version" in c.reason for c in causes), (key, causes)
        assert stale != set(statuses), "every mart stale: unchanged tables count as changed"


def _decide(defs, instance, anomaly_key: str):
    """One alert decision through the alert job, as the anomaly sensor launches it."""
    job = defs.resolve_job_def("alert")
    config = {"ops": {"send_alert": {"config": {"anomaly_key": anomaly_key}}}}
    result = job.execute_in_process(run_config=config, instance=instance)
    assert result.success
    return instance.get_latest_materialization_event(ACTIONS).asset_materialization


def test_every_decision_materializes_the_audit_with_the_days_decisions(home):
    from ml.anomaly import ANOMALIES_DDL

    now = datetime.now(UTC)
    with duckdb.connect(str(home.warehouse)) as conn:
        conn.execute(ANOMALIES_DDL)
        for key, service in (("ci_cost:1", "checkout"), ("ci_cost:2", "search")):
            conn.execute(
                "INSERT INTO ml.anomalies (anomaly_key, kind, severity, detected_at, service,"
                " explanation) VALUES (?, 'ci_cost', 'warning', ?, ?, 'CI cost doubled')",
                [key, now, service],
            )
    defs = build_definitions(home)
    with dg.instance_for_test() as instance:
        assert instance.get_latest_materialization_event(ACTIONS) is None
        first = _decide(defs, instance, "ci_cost:1")
        second = _decide(defs, instance, "ci_cost:2")
        meta = second.metadata
        assert meta["dagster/row_count"].value == 2
        assert meta["decisions_today"].value == 2
        assert meta["today_shadow"].value == 2  # the default mode decides, and does nothing
        assert meta["decided"].value == "alert:ci_cost:2: shadow"
        table = meta["today"].value
        assert table.count("| alert |") == 2 and "checkout" in table and "search" in table
        # Shadow decisions change nothing the DORA marts read: the version stays.
        version = second.tags["dagster/data_version"]
        assert version == first.tags["dagster/data_version"]
        # ... the version of an audit never recorded: a mart built before the first decision
        # is not made stale by it
        assert version == DEFAULT_DATA_VERSION.value

        # An executed rollback is what the marts read: the audit's version moves with it.
        with duckdb.connect(str(home.warehouse)) as conn:
            conn.execute(ACTIONS_DDL)
            conn.execute(
                "INSERT INTO ops.actions (action_id, kind, decision, entity_key, requested_at)"
                " VALUES ('rollback:x', 'rollback', 'executed', 'github:deploy:1', now())"
            )
        third = _decide(defs, instance, "ci_cost:1")
        assert third.tags["dagster/data_version"] != version
        assert third.metadata["today_executed"].value == 1


def test_the_landing_sensor_starts_from_the_ingest_ledger(home):
    """Files `dcicd ingest` or the demo loaded start no run; a new file does."""
    loaded = write_envelopes(
        home.landing / "demo" / "a.ndjson", [fixture_envelope("gitlab/push.json")]
    )
    with duckdb.connect(str(home.warehouse)) as conn:
        ensure_raw_schema(conn)
        assert load_file(conn, loaded, "demo/a.ndjson").status == "loaded"
    # the same bytes under another name are the same file
    (home.landing / "copy.ndjson").write_bytes(loaded.read_bytes())
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance)
        assert isinstance(landing_sensor(context), dg.SkipReason)
        new = write_envelopes(home.landing / "b.ndjson", [fixture_envelope("gitlab/build.json")])
        later = dg.build_sensor_context(instance=instance, cursor=context.cursor)
        requests = landing_sensor(later)
        assert [r.run_config["ops"]["raw__events"]["config"]["files"] for r in requests] == [
            [str(new)]
        ]


def test_a_landing_file_that_cannot_be_read_fails_its_run(home):
    (home.landing / "fake.ndjson.gz").write_text("plain text, not gzip\n")
    defs = build_definitions(home)
    with dg.instance_for_test() as instance:
        (request,) = landing_sensor(dg.build_sensor_context(instance=instance))
        job = defs.resolve_job_def("ingest_landing_file")
        result = job.execute_in_process(
            run_config=request.run_config, instance=instance, raise_on_error=False
        )
        assert not result.success
        failure = result.failure_data_for_node("raw__events").error
        assert "fake.ndjson.gz" in failure.message and "gzip" in failure.message
        assert instance.get_latest_materialization_event(dg.AssetKey(["raw", "events"])) is None


def test_the_dora_table_keeps_each_figure_on_one_line():
    from dcicd_platform.dora_summary import NBSP, as_markdown, human_duration

    row = ("all services", "1.20", "4.0", human_duration(9360), "12%", "-", "-", "x", "high")
    line = as_markdown([row]).splitlines()[2]
    assert f"2{NBSP}h{NBSP}36{NBSP}m" in line and f"all{NBSP}services" in line
    assert " h " not in line  # no breakable space inside a cell


def test_make_dev_starts_the_ui_without_warnings(home, tmp_path):
    """`make dev`'s command (`dg dev`, not the superseded `dagster dev`) serves the UI and
    prints no warning: neither Dagster's SupersessionWarning nor its BetaWarning on owners."""
    import os
    import re
    import signal
    import socket
    import subprocess
    import sys
    import time
    from pathlib import Path

    root = Path(__file__).parent.parent
    (command,) = re.findall(
        r"^dev: install\n\t.*\$\(BIN\)/(dg dev .*)$", (root / "Makefile").read_text(), re.M
    )
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    env = {**os.environ, "DAGSTER_HOME": str(home.dagster_home), "PYTHONPATH": str(root)}
    dg_cli = Path(sys.executable).parent / "dg"
    log = tmp_path / "dev.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [str(dg_cli), *command.split()[1:], "--port", str(port)],
            cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 180
            while "Serving dagster-webserver" not in log.read_text():
                assert server.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(1)
            time.sleep(5)  # the daemon's first sensor ticks
        finally:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    printed = log.read_text()
    assert "Warning" not in printed, printed
