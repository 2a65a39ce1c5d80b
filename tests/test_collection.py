"""Collection accuracy: what webhooks delivered against what the history import found
(ops.collection, ops.collection_gaps), the `collection` anomaly, and the freshness checks."""

import copy
from datetime import UTC, datetime, timedelta

import dagster as dg
import duckdb
import pytest

from dbt_like_sql import build_model, load_models
from dbt_like_sql.session import prepare_session
from dcicd_platform.assets.config_tables import write_config_tables
from dcicd_platform.config import AnomalyThresholds, PlatformConfig
from dcicd_platform.definitions import build_definitions
from dcicd_platform.home import Home
from dcicd_platform.ingest.envelope import make_envelope, rfc3339
from dcicd_platform.ingest.loader import load_file
from ml.anomaly import detect_all
from ml.anomaly.collection import collection
from tests.helpers import build_core, fixture_envelope, rows, write_envelopes

DAY1 = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
RUN = fixture_envelope("github/workflow_run/completed.payload.json")["payload"]


def run(run_id: int, created: datetime, via: str = "webhook", attempt: int = 1, **run) -> dict:
    """A workflow_run delivery of one run attempt: by a webhook, or written by the import."""
    payload = copy.deepcopy(RUN)
    started = run.pop("started", created)
    payload["workflow_run"] |= {
        "id": run_id,
        "run_attempt": attempt,
        "created_at": rfc3339(created),
        "run_started_at": rfc3339(started),
        "updated_at": rfc3339(started + timedelta(minutes=3)),
        **run,
    }
    if via == "import":
        updated = payload["workflow_run"]["updated_at"]
        delivery = f"import:github:workflow_run:{run_id}/{attempt}:{updated}"
    else:
        delivery = f"hook-{run_id}-{attempt}-{payload['workflow_run']['status']}"
    return make_envelope(
        delivery, "github", "workflow_run", payload, started + timedelta(minutes=3, seconds=2)
    )


def build_ops(conn) -> None:
    """The ops models alone (what the collection figures need), in dependency order."""
    prepare_session(conn)
    write_config_tables(conn, PlatformConfig())
    for model in load_models():
        if model.schema == "ops":
            build_model(conn, model)


def warehouse(tmp_path, envelopes: list[dict], name: str = "in.ndjson"):
    conn = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    load_file(conn, write_envelopes(tmp_path / "landing" / name, envelopes))
    build_ops(conn)
    return conn


def test_collection_counts_each_object_once_by_how_it_came(tmp_path):
    day2 = DAY1 + timedelta(days=1)
    pipeline = fixture_envelope("gitlab/pipeline.json")
    pipeline["delivery_id"] = "import:gitlab:pipeline:31:2016-08-12T15:23:28Z"
    incident_hook = fixture_envelope("pagerduty/triggered_v3.json", "pd-hook-1")
    incident_import = copy.deepcopy(incident_hook)
    incident_import["delivery_id"] = "import:pagerduty:incident.triggered:PFQZPSY:R1"
    # The API's incident carries its creation time; the webhook only its event's.
    incident_import["payload"]["event"]["data"]["created_at"] = "2021-06-04T13:35:20Z"
    other_incident = copy.deepcopy(incident_import)
    other_incident["delivery_id"] = "import:pagerduty:incident.triggered:PNEVER1:R2"
    other_incident["payload"]["event"]["data"]["id"] = "PNEVER1"
    envelopes = [
        run(1, DAY1, status="in_progress", conclusion=None),  # two webhook deliveries
        run(1, DAY1),
        run(2, DAY1),  # webhook and import: counted once
        run(2, DAY1, via="import"),
        run(3, DAY1, via="import"),  # only the import: a gap
        # A re-run's second attempt is an object of its own, created when it started (day 2).
        run(1, DAY1, via="import", attempt=2, started=day2),
        run(4, day2),
        run(5, day2 + timedelta(hours=13, minutes=59), via="import"),
        pipeline,
        incident_hook,
        incident_import,
        other_incident,
    ]
    conn = warehouse(tmp_path, envelopes)
    found = rows(
        conn,
        "SELECT source, repo, day::VARCHAR AS day, objects, delivered, known, filled,"
        " round(collected_share, 4) AS share FROM ops.collection ORDER BY source, repo, day",
    )
    repo = "octo-org/octo-repo"
    assert [tuple(r.values()) for r in found] == [
        ("github", repo, "2026-05-04", 3, 2, 2, 1, 0.6667),
        ("github", repo, "2026-05-05", 3, 1, 2, 2, 0.3333),
        ("gitlab", "gitlab-org/gitlab-test", "2016-08-12", 1, 0, 1, 1, 0.0),
        ("pagerduty", "PA2P440", "2021-06-04", 2, 1, 2, 1, 0.5),
    ]
    gaps = rows(
        conn, "SELECT object_key, day::VARCHAR AS day, url FROM ops.collection_gaps ORDER BY 1"
    )
    assert [(g["object_key"], g["day"]) for g in gaps] == [
        ("github:1:2", "2026-05-05"),
        ("github:3:1", "2026-05-04"),
        ("github:5:1", "2026-05-05"),
        ("gitlab:31:1", "2016-08-12"),
        ("pagerduty:PNEVER1", "2021-06-04"),
    ]
    assert gaps[0]["url"].startswith("https://github.com/octo-org/octo-repo/actions/runs/")
    incident = rows(
        conn,
        "SELECT created_at, delivered, known FROM ops.collection_objects"
        " WHERE object_key = 'pagerduty:PFQZPSY'",
    )
    assert incident == [
        {
            "created_at": datetime(2021, 6, 4, 13, 35, 20, tzinfo=UTC),
            "delivered": True,
            "known": True,
        }
    ]

    # A webhook that arrives late (a redelivery) takes its run off the gap list: the tables
    # refresh from the new load alone and say what a full build would.
    load_file(conn, write_envelopes(tmp_path / "landing" / "late.ndjson", [run(3, DAY1)]))
    build_ops(conn)
    assert rows(
        conn,
        "SELECT objects, delivered, known, filled FROM ops.collection"
        " WHERE source = 'github' AND day = DATE '2026-05-04'",
    ) == [{"objects": 3, "delivered": 3, "known": 2, "filled": 0}]
    assert "github:3:1" not in {
        r["object_key"] for r in rows(conn, "SELECT object_key FROM ops.collection_gaps")
    }


def runs_with_gaps(missed: int) -> list[dict]:
    """100 runs the webhooks delivered over five days, `missed` more only the import found,
    and 50 imported from before the webhooks were set up (history, not gaps)."""
    start = DAY1 + timedelta(days=30)
    delivered = [run(100 + i, start + timedelta(hours=i)) for i in range(100)]
    also_imported = [run(100 + i, start + timedelta(hours=i), via="import") for i in range(100)]
    gaps = [run(900 + i, start + timedelta(hours=10 * i + 5), via="import") for i in range(missed)]
    history = [run(500 + i, DAY1 + timedelta(hours=i), via="import") for i in range(50)]
    return delivered + also_imported + gaps + history


def share_anomalies(conn) -> list[dict]:
    found = collection(conn, AnomalyThresholds())
    return [r for r in found.to_dicts() if r["entity_key"].endswith("|share")]


@pytest.mark.parametrize("missed", [0, 1])
def test_no_collection_anomaly_at_99_percent_or_more(tmp_path, missed):
    conn = warehouse(tmp_path, runs_with_gaps(missed))
    assert share_anomalies(conn) == []


def test_a_collection_failure_is_raised_under_99_percent(tmp_path):
    conn = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    load_file(conn, write_envelopes(tmp_path / "landing" / "in.ndjson", runs_with_gaps(2)))
    build_core(conn)  # every model: the detectors all run, as the ml/anomalies asset runs them
    found = detect_all(conn, AnomalyThresholds(), rollback_window_minutes=30).to_dicts()
    share = [r for r in found if r["kind"] == "collection"]
    assert len(share) == 1, share
    anomaly = share[0]
    assert anomaly["entity_key"] == "github|octo-org/octo-repo|share"
    assert anomaly["service"] == "octo-org/octo-repo"
    assert anomaly["severity"] == "warning"
    assert anomaly["observed"] == pytest.approx(100 / 102)
    assert "delivered 100 of the 102 workflow runs" in anomaly["explanation"]
    assert "filled 2 (ops.collection_gaps)" in anomaly["explanation"]
    # Against 99.9%, 2% missed is twenty times the allowance: critical.
    stricter = AnomalyThresholds(collection_min_share=0.999)
    assert share_anomalies(conn) and collection(conn, stricter)["severity"].to_list() == [
        "critical"
    ]


def receiver_file(tmp_path, name: str, delays: list[timedelta], first_id: int = 0):
    """Deliveries received `delay` before now, in a file named as the receiver names its own."""
    now = datetime.now(UTC)
    envelopes = []
    for i, delay in enumerate(delays, start=first_id):
        envelope = run(2000 + i, now - delay - timedelta(minutes=5))
        envelope["received_at"] = rfc3339(now - delay)
        envelopes.append(envelope)
    return write_envelopes(tmp_path / "landing" / name, envelopes)


def latency_anomalies(conn) -> list[dict]:
    found = collection(conn, AnomalyThresholds()).to_dicts()
    return [r for r in found if r["entity_key"].endswith("|latency")]


def test_webhooks_loaded_more_than_5_minutes_after_they_arrive_are_raised(tmp_path):
    conn = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    # An export of old deliveries is not the receiver's: its load delay is not processing delay.
    old = [run(3000 + i, DAY1 + timedelta(minutes=i)) for i in range(20)]
    load_file(conn, write_envelopes(tmp_path / "landing" / "export.ndjson", old))
    on_time = [timedelta(seconds=30 + i) for i in range(20)]
    load_file(conn, receiver_file(tmp_path, "receiver-20260504T100000Z-1-1.ndjson", on_time))
    build_ops(conn)
    assert latency_anomalies(conn) == []

    late = [timedelta(minutes=12, seconds=i) for i in range(20)]
    path = receiver_file(tmp_path, "receiver-20260504T101500Z-1-2.ndjson", late, first_id=100)
    load_file(conn, path, path.name)
    build_ops(conn)
    [anomaly] = latency_anomalies(conn)
    assert anomaly["entity_key"] == "github|latency"
    assert anomaly["severity"] == "warning"
    assert 12 <= anomaly["observed"] < 13  # minutes: the P95 of the last hour's 40 deliveries
    assert "github webhooks are loaded 12." in anomaly["explanation"]
    assert "20 over 5 min" in anomaly["explanation"]


def test_a_source_that_used_to_deliver_and_went_quiet_is_raised(tmp_path):
    def health(i: int) -> dict:
        at = DAY1 + timedelta(minutes=10 * i)
        sample = {
            "service": "api",
            "environment": "production",
            "ts": rfc3339(at),
            "requests": 100,
            "errors": 0,
            "latency_p95_ms": 80.0,
        }
        return make_envelope(f"health-{i}", "metrics", "health_sample", sample, at)

    # GitHub delivers every 10 minutes for two days; the health samples go on 12 hours more.
    github = [run(4000 + i, DAY1 + timedelta(minutes=10 * i)) for i in range(288)]
    conn = warehouse(tmp_path, github + [health(i) for i in range(288 + 72)])
    found = collection(conn, AnomalyThresholds()).to_dicts()
    assert [(r["entity_key"], r["severity"]) for r in found] == [("github|quiet", "critical")]
    assert "github webhooks went quiet" in found[0]["explanation"]
    assert found[0]["observed"] == pytest.approx(12, abs=0.1)  # hours
    # Silent for less than collection_quiet_hours: not yet.
    assert collection(conn, AnomalyThresholds(collection_quiet_hours=13)).is_empty()


def freshness(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def test_freshness_checks_judge_each_source_that_delivered(tmp_path, monkeypatch):
    home = Home(tmp_path / "home").prepare()
    monkeypatch.setenv("DCICD_HOME", str(home.root))
    now = datetime.now(UTC)
    fresh = run(1, now - timedelta(minutes=10))
    fresh["received_at"] = rfc3339(now - timedelta(minutes=5))
    stale = fixture_envelope(
        "gitlab/pipeline.json", "gl-1", received_at=rfc3339(now - timedelta(hours=3))
    )
    write_envelopes(home.landing / "a.ndjson", [fresh, stale])
    config = tmp_path / "dcicd.yaml"
    config.write_text("")
    job = build_definitions(home, str(config)).resolve_job_def("ingest_landing_file")
    with dg.instance_for_test() as instance:
        result = job.execute_in_process(instance=instance)
        assert result.success
        # gitlab's newest delivery is 3 hours old (60 minutes allowed); pagerduty and metrics
        # never delivered: not judged.
        assert freshness(result) == {
            "github_fresh": True,
            "gitlab_fresh": False,
            "pagerduty_fresh": True,
            "metrics_fresh": True,
        }
        gitlab = next(
            e for e in result.get_asset_check_evaluations() if e.check_name == "gitlab_fresh"
        )
        assert gitlab.metadata["max_lag_minutes"].value == 60
        assert 179 < gitlab.metadata["lag_minutes"].value < 185

        # Four hours allowed: fresh enough.
        config.write_text("freshness:\n  max_lag_minutes:\n    gitlab: 240\n")
        again = job.execute_in_process(instance=instance)
        assert freshness(again)["gitlab_fresh"] is True
