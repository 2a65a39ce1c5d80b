"""The GitHub history import against a fake GitHub API on 127.0.0.1 serving real history.

onnx/onnx's real runs and jobs (three days of `../shared/datasets/gha-onnx`) and DevLake's
recorded API answers, served with GitHub's pagination, 1,000-result cap (lowered here to 100 so
the days split into windows), ETags, rate limits and faults (tests/fake_provider_apis.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from dcicd_platform.home import Home
from dcicd_platform.sources import github
from dcicd_platform.sources.run import run_import
from tests import real_history
from tests.fake_provider_apis import commit_object, github_from_onnx
from tests.helpers import build_core, rows, write_envelopes

DAYS = ("2026-05-29", "2026-05-31")  # a quiet stretch: 174 runs, their jobs
SINCE = datetime(2026, 5, 29, tzinfo=UTC)
NOW = datetime(2026, 6, 1, tzinfo=UTC)  # runs of these days may still be re-run
REPO = real_history.REPO
TABLES = {
    "core.pipeline_runs": "run_key",
    "core.pipeline_jobs": "job_key",
    "marts.ci_pipeline_daily": "repo, workflow, day",
    "marts.ci_cost_daily": "repo, workflow, runner_label, day",
    "marts.ci_run_costs": "run_key",
}

pytestmark = pytest.mark.skipif(
    not real_history.DATASET.exists(), reason=f"the real history is not at {real_history.DATASET}"
)


def _two_days(gh) -> tuple[int, int]:
    """Keep only the runs created on DAYS (and their jobs); returns (runs, jobs) served."""
    data = gh.repo(REPO)
    outside = [r for r, a in data.runs.items() if not DAYS[0] <= a[1]["created_at"][:10] <= DAYS[1]]
    for run_id in outside:
        data.remove_run(run_id)
    # A default branch to list: one commit per head sha the runs name, in time order.
    parent: list[str] = []
    for created, sha in sorted(
        {(a[1]["created_at"], a[1]["head_sha"]) for a in data.runs.values()}
    ):
        if sha not in data.commits:
            data.put_commit(commit_object(REPO, sha, parents=parent, date=created), branch="main")
            parent = [sha]
    return len(data.runs), sum(len(j) for j in data.jobs.values())


@pytest.fixture()
def served():
    with github_from_onnx() as gh:
        gh.rate_limit = 1_000_000
        gh.runs_result_cap = 100
        counts = _two_days(gh)
        yield gh, counts


@pytest.fixture()
def small_cap(monkeypatch):
    monkeypatch.setattr(github, "RESULT_CAP", 100)


def _import(home: Home, gh, **kwargs):
    return run_import(
        home, "github", [REPO], since=SINCE, token="t", api_url=gh.url, now=NOW, **kwargs
    )


def _table(conn, table: str, order: str) -> list[tuple]:
    return conn.execute(f"SELECT * FROM {table} ORDER BY {order}").fetchall()


def _webhook_warehouse(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    """The same two days delivered by webhooks (tests/real_history.py's envelopes)."""
    from dcicd_platform.ingest.loader import load_file

    conn = duckdb.connect(str(tmp_path / "webhooks.duckdb"))
    load_file(conn, write_envelopes(tmp_path / "hooks.ndjson", real_history.envelopes(days=DAYS)))
    build_core(conn)
    return conn


def test_an_import_equals_the_served_history_and_the_tables_webhooks_give(
    served, small_cap, tmp_path
):
    gh, (runs, jobs) = served
    home = Home(tmp_path / "home")
    summary = _import(home, gh)
    assert summary.counts["workflow runs"] == runs
    assert summary.counts["jobs"] == jobs
    assert summary.quarantined == 0 and summary.duplicates == 0
    # The cap (100 here) split the two days' windows: no run was left beyond it.
    assert summary.counts["workflow runs"] > 100

    with duckdb.connect(str(home.warehouse)) as conn:
        build_core(conn)
        served_runs = conn.execute(
            "SELECT count(*), count(DISTINCT run_key) FROM core.pipeline_runs"
        ).fetchone()
        assert served_runs == (runs, runs)
        imported = {t: _table(conn, t, order) for t, order in TABLES.items()}
    hooks = _webhook_warehouse(tmp_path)
    for table, order in TABLES.items():
        assert imported[table] == _table(hooks, table, order), table
    # The platform's figures equal the ones computed from the CSVs with plain DuckDB.
    assert [r[1:9] for r in imported["marts.ci_pipeline_daily"]] == [
        tuple(r) for r in real_history.expected_daily(days=DAYS)
    ]


def test_webhook_and_import_copies_of_the_same_runs_count_once(served, small_cap, tmp_path):
    gh, (runs, jobs) = served
    home = Home(tmp_path / "home").prepare()
    hooks = write_envelopes(home.landing / "hooks.ndjson", real_history.envelopes(days=DAYS))
    from dcicd_platform.ingest.loader import load_file

    with duckdb.connect(str(home.warehouse)) as conn:
        load_file(conn, hooks, "hooks.ndjson")
    _import(home, gh)
    with duckdb.connect(str(home.warehouse)) as conn:
        copies = conn.execute(
            "SELECT count(*) FROM raw.events WHERE event_type IN ('workflow_run', 'workflow_job')"
        ).fetchone()[0]
        assert copies == 2 * (runs + jobs)
        build_core(conn)
        assert conn.execute("SELECT count(*) FROM core.pipeline_runs").fetchone()[0] == runs
        assert conn.execute("SELECT count(*) FROM core.pipeline_jobs").fetchone()[0] == jobs
        # Nothing was missing: every run came by webhook, the import filled no gap.
        filled = conn.execute("SELECT coalesce(sum(filled), 0) FROM ops.collection").fetchone()
        assert filled[0] == 0


def test_gaps_in_the_webhooks_are_found_and_filled(served, small_cap, tmp_path):
    gh, (runs, _) = served
    home = Home(tmp_path / "home")
    everything = real_history.envelopes(days=DAYS)
    run_ids = sorted({e["payload"]["workflow_run"]["id"] for e in everything
                      if e["event_type"] == "workflow_run"})  # fmt: skip
    lost = set(run_ids[::10])  # one run in ten was never delivered
    home.prepare()
    delivered = [
        e for e in everything
        if e["event_type"] != "workflow_run" or e["payload"]["workflow_run"]["id"] not in lost
    ]  # fmt: skip
    from dcicd_platform.ingest.loader import load_file

    with duckdb.connect(str(home.warehouse)) as conn:
        load_file(conn, write_envelopes(home.landing / "hooks.ndjson", delivered), "hooks.ndjson")
    _import(home, gh)
    with duckdb.connect(str(home.warehouse)) as conn:
        build_core(conn)
        delivered_n, known, filled = conn.execute(
            "SELECT sum(delivered), sum(known), sum(filled) FROM ops.collection"
            " WHERE source = 'github'"
        ).fetchone()
        assert (delivered_n, known, filled) == (runs - len(lost), runs, len(lost))
        gaps = conn.execute("SELECT count(*) FROM ops.collection_gaps").fetchone()[0]
        assert gaps == len(lost)
        assert conn.execute("SELECT count(*) FROM core.pipeline_runs").fetchone()[0] == runs


def test_a_second_import_asks_only_conditionally_and_adds_nothing(served, small_cap, tmp_path):
    gh, _ = served
    home = Home(tmp_path / "home")
    first = _import(home, gh)
    gh.clear_log()
    again = _import(home, gh)
    assert again.envelopes == 0 and again.loaded == 0
    assert gh.quota_used == 0, [(r.path, r.status) for r in gh.log if r.quota]
    assert gh.requests == gh.not_modified > 0
    # Each run's jobs were asked once, in the first import only.
    assert gh.count(path_contains="/jobs") == 0
    assert first.stats.requests > 10 * again.stats.requests


def test_a_rerun_is_imported_with_every_attempt_and_only_what_changed(served, small_cap, tmp_path):
    gh, (runs, jobs) = served
    home = Home(tmp_path / "home")
    _import(home, gh)
    data = gh.repo(REPO)
    run_id = next(iter(data.runs))
    earlier_jobs = len(data.jobs_of(run_id, 1))
    data.rerun(run_id, started_at="2026-05-31T23:00:00Z", completed_at="2026-05-31T23:10:00Z")
    gh.clear_log()
    again = _import(home, gh)
    assert again.counts["workflow runs"] >= 1
    assert gh.count(path_contains="/jobs") == 1  # the re-run's jobs, nobody else's
    assert gh.count(path_contains="/attempts/1") == 1
    with duckdb.connect(str(home.warehouse)) as conn:
        build_core(conn)
        attempts = conn.execute(
            "SELECT attempt, conclusion FROM core.pipeline_runs WHERE provider_run_id = ?"
            " ORDER BY attempt",
            [str(run_id)],
        ).fetchall()
        assert [a for a, _ in attempts] == [1, 2]
        assert attempts[1][1] == "success"
        total = conn.execute("SELECT count(*) FROM core.pipeline_jobs").fetchone()[0]
        assert total == jobs + earlier_jobs


def test_rate_limits_are_waited_out_never_past_the_reset(served, small_cap, tmp_path):
    gh, (runs, jobs) = served
    gh.set_rate_limit(60, reset_in_s=2)
    gh.secondary_limit_at = 5
    gh.secondary_retry_after_s = 1
    gh.fail_requests = {3, 40}
    home = Home(tmp_path / "home")
    summary = _import(home, gh)
    assert summary.counts["workflow runs"] == runs and summary.counts["jobs"] == jobs
    assert summary.stats.rate_limit_waits >= 2  # the primary budget ran out, the secondary once
    assert summary.stats.retries == 2  # the two 502s
    for began, waited, reset_at in summary.stats.waits:
        assert began + waited <= reset_at + 0.05  # never waits past the reset it waits for
        assert waited <= 3.0  # the window (2 s, its reset rounded up to a whole second)
    refused = [r for r in gh.log if r.status == 403]
    assert len(refused) == 1  # only the secondary limit: the spent budget was waited for


def test_an_import_killed_at_any_point_resumes_with_nothing_lost_or_twice(served, tmp_path):
    gh, (runs, jobs) = served
    gh.runs_result_cap = 1000  # GitHub's own: the command splits at it
    gh.latency_s = 0.01
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items()} | {
        "DCICD_HOME": str(home),
        "DCICD_GITHUB_TOKEN": "t",
    }
    command = [
        str(Path(sys.executable).parent / "dcicd"), "import", "github", REPO,
        "--since", DAYS[0], "--api-url", gh.url,
    ]  # fmt: skip
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    landed = home / "landing" / "import" / "github"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(landed.rglob("*.ndjson")):
        time.sleep(0.02)
    assert process.poll() is None, "the import ended before it could be killed mid-way"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    finished = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr
    assert "0 quarantined" in finished.stdout
    with duckdb.connect(str(home / "warehouse.duckdb")) as conn:
        build_core(conn)
        kinds = dict(
            conn.execute("SELECT event_type, count(*) FROM raw.events GROUP BY ALL").fetchall()
        )
        assert kinds["workflow_run"] == runs and kinds["workflow_job"] == jobs
        assert conn.execute("SELECT count(*) FROM core.pipeline_runs").fetchone()[0] == runs
        assert conn.execute("SELECT count(*) FROM core.pipeline_jobs").fetchone()[0] == jobs


def test_the_command_refuses_what_it_cannot_use(tmp_path):
    dcicd = str(Path(sys.executable).parent / "dcicd")
    env = {k: v for k, v in os.environ.items() if k != "DCICD_GITHUB_TOKEN"}
    env["DCICD_HOME"] = str(tmp_path)
    no_token = subprocess.run([dcicd, "import", "github", REPO], env=env, capture_output=True,
                              text=True)  # fmt: skip
    assert no_token.returncode == 2 and "DCICD_GITHUB_TOKEN" in no_token.stderr
    env["DCICD_GITHUB_TOKEN"] = "t"
    bad_since = subprocess.run([dcicd, "import", "github", REPO, "--since", "lately"], env=env,
                               capture_output=True, text=True)  # fmt: skip
    assert bad_since.returncode == 2 and "--since 'lately'" in bad_since.stderr
    future = subprocess.run([dcicd, "import", "github", REPO, "--since", "2999-01-01"], env=env,
                            capture_output=True, text=True)  # fmt: skip
    assert future.returncode == 2 and "is after now" in future.stderr
    bad_repo = subprocess.run([dcicd, "import", "github", "onnx"], env=env, capture_output=True,
                              text=True)  # fmt: skip
    assert bad_repo.returncode == 2 and "OWNER/REPO" in bad_repo.stderr


def test_recorded_github_answers_come_in_whole(tmp_path):
    """DevLake's recorded GitHub answers: runs with earlier attempts, pull requests with
    reviews and commits (panjf2000/ants), deployments with statuses (facebook/OpenBIC)."""
    from tests.fake_provider_apis import github_from_recorded

    with github_from_recorded() as gh:
        gh.rate_limit = 100_000
        served = {name: gh.repo(name) for name in ("panjf2000/ants", "facebook/OpenBIC")}
        home = Home(tmp_path / "home")
        run_import(
            home, "github", sorted(served), since=datetime(2015, 1, 1, tzinfo=UTC), token="t",
            api_url=gh.url, now=datetime(2026, 12, 1, tzinfo=UTC),
        )  # fmt: skip
    ants, openbic = served["panjf2000/ants"], served["facebook/OpenBIC"]
    with duckdb.connect(str(home.warehouse)) as conn:
        counts = dict(
            conn.execute("SELECT event_type, count(*) FROM raw.events GROUP BY ALL").fetchall()
        )
        assert counts["workflow_run"] == sum(len(a) for a in ants.runs.values())
        # The recording's jobs belong to runs it did not record: only listed runs' jobs come.
        listed_jobs = sum(len(ants.jobs.get(run_id, {})) for run_id in ants.runs)
        assert counts.get("workflow_job", 0) == listed_jobs
        assert counts["pull_request"] == len(ants.pulls)
        # The recording holds one review twice (the same id): one delivery.
        reviews = {r["id"] for rs in ants.pull_reviews.values() for r in rs}
        assert counts["pull_request_review"] == len(reviews)
        statuses = sum(len(s) for s in openbic.deployment_statuses.values())
        assert counts["deployment_status"] == statuses
        assert conn.execute("SELECT count(*) FROM raw.quarantine").fetchone()[0] == 0
        build_core(conn)
        runs = conn.execute("SELECT count(*) FROM core.pipeline_runs").fetchone()[0]
        assert runs == counts["workflow_run"]  # every attempt a row of its own
        deployments = conn.execute(
            "SELECT count(*) FROM core.deployments WHERE repo = 'facebook/OpenBIC'"
        ).fetchone()[0]
        assert deployments == len(openbic.deployments)


def test_gitlab_and_pagerduty_come_in_through_the_command(tmp_path, monkeypatch):
    """`dcicd import gitlab` (a self-managed GitLab named by its host) and `dcicd import
    pagerduty` against fakes serving DevLake's recorded answers."""
    from click.testing import CliRunner

    from dcicd_platform.cli import main
    from tests.fake_provider_apis import gitlab_from_recorded, pagerduty_from_recorded

    monkeypatch.setenv("DCICD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DCICD_GITLAB_TOKEN", "t")
    monkeypatch.setenv("DCICD_PAGERDUTY_API_TOKEN", "t")
    with gitlab_from_recorded() as gl:
        # Three recorded pipelines lack updated_at (DevLake's recording, not GitLab's API):
        # a listing filtered by updated_after never shows them.
        pipelines = sum(
            1
            for p in ("merico-dev/ee/vdev.co", "44")
            for pipeline in gl.project(p).pipelines.values()
            if pipeline.get("updated_at")
        )
        result = CliRunner().invoke(
            main,
            ["import", "gitlab", "merico-dev/ee/vdev.co", "44", "--since", "2015-01-01",
             "--api-url", gl.origin],
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"{pipelines} pipelines" in result.stdout and "0 quarantined" in result.stdout
    with pagerduty_from_recorded() as pd:
        pd.clock = datetime(2023, 1, 1, tzinfo=UTC)
        result = CliRunner().invoke(
            main, ["import", "pagerduty", "--since", "2022-10-01", "--api-url", pd.url]
        )
    assert result.exit_code == 0, result.output
    assert "3 incidents" in result.stdout
    with duckdb.connect(str(tmp_path / "home" / "warehouse.duckdb")) as conn:
        build_core(conn)
        runs = conn.execute(
            "SELECT count(*) FROM core.pipeline_runs WHERE source = 'gitlab'"
        ).fetchone()[0]
        assert runs == pipelines
        incidents = conn.execute(
            "SELECT count(*) FROM core.incidents WHERE source = 'pagerduty'"
        ).fetchone()[0]
        assert incidents == 3


def _deployments_and_pushes(gh) -> list[dict]:
    """Production deployments of every 4th head sha on main (the fake serves them), and the
    webhook deliveries of the same: each deployment's statuses, and one push per commit."""
    import copy
    import json

    from tests.helpers import FIXTURES

    example = json.loads((FIXTURES / "github/deployment_status/payload.json").read_text())
    data = gh.repo(REPO)
    repository = {"full_name": REPO, "default_branch": "main"}
    commits = sorted(data.commits.values(), key=lambda c: c["commit"]["committer"]["date"])
    hooks = []
    for n, commit in enumerate(commits):
        hooks.append({
            "delivery_id": f"push-{n}", "source": "github", "event_type": "push",
            "received_at": commit["commit"]["committer"]["date"],
            "payload": {
                "ref": "refs/heads/main", "after": commit["sha"], "forced": False,
                "repository": repository,
                "commits": [{"id": commit["sha"], "timestamp": commit["commit"]["author"]["date"],
                             "author": {"name": "person", "email": "person@example.com"}}],
            },
        })  # fmt: skip
    for n, commit in enumerate(commits[3::4]):
        at = commit["commit"]["committer"]["date"].replace("Z", "")
        deployed = f"{at[:14]}59:00Z"  # within the hour the commit was made
        deployment = copy.deepcopy(example["deployment"]) | {
            "id": 9000 + n, "sha": commit["sha"], "ref": "main", "environment": "production",
            "created_at": deployed, "updated_at": deployed,
        }  # fmt: skip
        status = copy.deepcopy(example["deployment_status"]) | {
            "id": 8000 + n, "state": "success", "environment": "production",
            "created_at": deployed, "updated_at": deployed,
        }  # fmt: skip
        data.put_deployment(deployment, [status])
        hooks.append({
            "delivery_id": f"deploy-{n}", "source": "github", "event_type": "deployment_status",
            "received_at": deployed,
            "payload": {"action": "created", "deployment": deployment,
                        "deployment_status": status, "repository": repository},
        })  # fmt: skip
    return hooks


# Which rule found a change, and when it was pushed: the import knows no push.
ONLY_PUSHES_SAY = ("found_by", "pushed_at")
DORA_TABLES = {
    "marts.production_deployments": "deployment_key",
    "marts.deployment_changes": "deployment_key, sha",
    "marts.dora_metrics": "ALL",
    "marts.deployment_cost": "deployment_key",
}


def test_dora_tables_from_an_import_equal_those_from_webhooks(served, small_cap, tmp_path):
    """Deployments with their commits, imported (the commit graph) or delivered by webhooks
    (pushes): the same DORA tables."""
    from dcicd_platform.ingest.loader import load_file

    gh, _ = served
    hooks = _deployments_and_pushes(gh)
    home = Home(tmp_path / "home")
    _import(home, gh)
    with duckdb.connect(str(tmp_path / "hooks.duckdb")) as conn:
        every = real_history.envelopes(days=DAYS) + hooks
        load_file(conn, write_envelopes(tmp_path / "hooks.ndjson", every))
        build_core(conn)
        delivered = {t: _without(conn, t, o, *ONLY_PUSHES_SAY) for t, o in DORA_TABLES.items()}
    with duckdb.connect(str(home.warehouse)) as conn:
        build_core(conn)
        imported = {t: _without(conn, t, o, *ONLY_PUSHES_SAY) for t, o in DORA_TABLES.items()}
        found_by = conn.execute(
            "SELECT found_by, count(*) FROM marts.deployment_changes GROUP BY ALL"
        ).fetchall()
        assert [f for f, _ in found_by] == ["commit_graph"], found_by
    assert imported["marts.deployment_changes"], "no changes: the test would prove nothing"
    for table in DORA_TABLES:
        assert imported[table] == delivered[table], table


def _without(conn, table: str, order: str, *columns: str) -> list[tuple]:
    present = [c for c in columns if c in _columns(conn, table)]
    skip = f" EXCLUDE ({', '.join(present)})" if present else ""
    return conn.execute(f"SELECT *{skip} FROM {table} ORDER BY {order}").fetchall()


def _columns(conn, table: str) -> set[str]:
    schema, name = table.split(".")
    return {
        r[0]
        for r in conn.execute(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = ? AND table_name = ?",
            [schema, name],
        ).fetchall()
    }


def test_the_hourly_job_imports_what_the_configuration_lists(
    served, small_cap, tmp_path, monkeypatch
):
    """The import/github asset, materialized by the history_import job through Dagster, with
    the repository and the API named in dcicd.yaml; its schedule skips when nothing is listed."""
    import dagster as dg

    from dcicd_platform.assets.history_import import hourly_history_import
    from dcicd_platform.definitions import build_definitions

    gh, (runs, jobs) = served
    home = Home(tmp_path / "home").prepare()
    config = tmp_path / "dcicd.yaml"
    config.write_text(
        f"history_import:\n  since: '{DAYS[0]}'\n"
        f"  github:\n    repositories: [{REPO}]\n    api_url: {gh.url}\n"
    )
    monkeypatch.setenv("DCICD_GITHUB_TOKEN", "t")
    defs = build_definitions(home, config_file=str(config))
    job = defs.resolve_job_def("history_import")
    result = job.execute_in_process(instance=dg.DagsterInstance.ephemeral())
    assert result.success
    found = result.asset_materializations_for_node("import__github")[0].metadata
    assert found["scopes"].value == REPO
    assert found["loaded"].value >= runs + jobs
    nothing = result.asset_materializations_for_node("import__gitlab")[0].metadata
    assert nothing["scopes"].value == "none configured"
    with duckdb.connect(str(home.warehouse), read_only=True) as conn:
        kinds = dict(
            conn.execute("SELECT event_type, count(*) FROM raw.events GROUP BY ALL").fetchall()
        )
    assert (kinds["workflow_run"], kinds["workflow_job"]) == (runs, jobs)

    (tmp_path / "empty.yaml").write_text("")
    monkeypatch.setenv("DCICD_CONFIG", str(tmp_path / "empty.yaml"))
    assert isinstance(hourly_history_import(dg.build_schedule_context()), dg.SkipReason)
    monkeypatch.setenv("DCICD_CONFIG", str(config))
    assert isinstance(hourly_history_import(dg.build_schedule_context()), dg.RunRequest)


def test_issues_labelled_incident_come_in_as_incidents(served, small_cap, tmp_path):
    import json

    from tests.helpers import FIXTURES

    gh, _ = served
    example = json.loads((FIXTURES / "github/issues/labeled.payload.json").read_text())["issue"]
    incident = example | {
        "number": 7, "id": 700, "state": "closed", "labels": [{"name": "incident"}],
        "created_at": "2026-05-30T10:00:00Z", "updated_at": "2026-05-30T12:00:00Z",
        "closed_at": "2026-05-30T12:00:00Z",
    }  # fmt: skip
    data = gh.repo(REPO)
    data.put_issue(incident)
    data.put_issue(example | {"number": 8, "id": 800, "labels": [{"name": "bug"}],
                              "updated_at": "2026-05-30T12:00:00Z"})  # fmt: skip
    home = Home(tmp_path / "home")
    summary = _import(home, gh)
    assert summary.counts["incident issues"] == 1
    with duckdb.connect(str(home.warehouse)) as conn:
        build_core(conn)
        found = conn.execute(
            "SELECT incident_key, opened_at, resolved_at FROM core.incidents"
        ).fetchall()
    assert [(k, o.isoformat(), r.isoformat()) for k, o, r in found] == [
        ("github:700", "2026-05-30T10:00:00+00:00", "2026-05-30T12:00:00+00:00")
    ]


def test_an_import_stopped_between_two_pages_of_a_window_resumes_whole(served, tmp_path):
    """Stopped after a window's first page (here by an answer it cannot go on from), the next
    import finds that page unchanged (304) and still reads the rest of the window."""
    gh, (runs, jobs) = served
    gh.runs_result_cap = 1000  # the 174 runs: one window of two pages
    home = Home(tmp_path / "home")
    gh.fail_status = 404
    # Request 1 asks for the repository, 2 the window's first page, 3-102 its runs' jobs,
    # 103 the second page: it fails, and the import stops there.
    gh.fail_requests = {103}
    stopped = _import(home, gh, flush_every_s=0)
    assert [scope for scope, _ in stopped.failures] == [REPO]
    assert stopped.counts["workflow runs"] == 100  # what it landed before it stopped is told
    with duckdb.connect(str(home.warehouse)) as conn:  # the first page's runs were loaded
        assert (
            conn.execute(
                "SELECT count(*) FROM raw.events WHERE event_type = 'workflow_run'"
            ).fetchone()[0]
            == 100
        )
    gh.fail_requests = set()
    resumed = _import(home, gh)
    assert not resumed.failures
    assert resumed.counts["workflow runs"] == runs - 100
    with duckdb.connect(str(home.warehouse)) as conn:
        kinds = dict(
            conn.execute("SELECT event_type, count(*) FROM raw.events GROUP BY ALL").fetchall()
        )
    assert (kinds["workflow_run"], kinds["workflow_job"]) == (runs, jobs)


def test_a_repository_the_token_cannot_read_stops_only_itself(served, small_cap, tmp_path):
    gh, (runs, _) = served
    home = Home(tmp_path / "home")
    summary = run_import(
        home, "github", ["nobody/nothing", REPO], since=SINCE, token="t", api_url=gh.url, now=NOW
    )
    assert [scope for scope, _ in summary.failures] == ["nobody/nothing"]
    assert "DCICD_GITHUB_TOKEN" in summary.failures[0][1]
    assert summary.counts["workflow runs"] == runs
    assert summary.lines()[-1].startswith("failed: nobody/nothing: not found")


def test_the_command_takes_what_the_configuration_lists(served, tmp_path, monkeypatch):
    """`dcicd import github` with nothing named imports history_import's repositories, from its
    API address and since its date (a YAML date, unquoted, as the example writes it)."""
    from click.testing import CliRunner

    from dcicd_platform.cli import main

    gh, (runs, _) = served
    gh.runs_result_cap = 1000
    config = tmp_path / "dcicd.yaml"
    config.write_text(
        f"history_import:\n  since: {DAYS[0]}\n"
        f"  github:\n    repositories: [{REPO}]\n    api_url: {gh.url}\n"
    )
    monkeypatch.setenv("DCICD_CONFIG", str(config))
    monkeypatch.setenv("DCICD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DCICD_GITHUB_TOKEN", "t")
    result = CliRunner().invoke(main, ["import", "github"])
    assert result.exit_code == 0, result.output
    assert f"{runs} workflow runs" in result.stdout
    assert "then: dcicd refresh" in result.stdout


def test_commits_of_a_repository_services_share_come_with_their_files(tmp_path):
    """A repository whose services name paths: each new commit is asked for its files (one
    request a commit; the listings omit them), which say whose changes it is."""
    from dcicd_platform.config import PlatformConfig, Service
    from tests.fake_provider_apis import FakeGitHub

    config = PlatformConfig(
        services=[
            Service(name="payments", repositories=["acme/mono"], paths=["services/payments/**"]),
            Service(name="search", repositories=["acme/mono"], paths=["services/search/**"]),
        ]
    )
    touched = {"p1": ["services/payments/api.py"], "b1": ["services/search/q.py", "docs/a.md"]}
    with FakeGitHub() as gh:
        data = gh.add_repo("acme/mono")
        parent: list[str] = []
        for n, (name, files) in enumerate(touched.items()):
            commit = commit_object(
                "acme/mono", name * 20, parents=parent, date=f"2026-05-3{n}T08:00:00Z"
            )
            commit["files"] = [{"filename": f, "status": "modified"} for f in files]
            data.put_commit(commit, branch="main")
            parent = [commit["sha"]]
        asked = {}
        for wanted in (set(), config.path_repositories()):
            home = Home(tmp_path / f"home{len(wanted)}")
            summary = run_import(
                home, "github", ["acme/mono"], since=SINCE, token="t", api_url=gh.url, now=NOW,
                commit_files=wanted,
            )  # fmt: skip
            assert summary.counts["commits"] == 2
            with duckdb.connect(str(home.warehouse)) as conn:
                build_core(conn, config)
                files = rows(conn, "SELECT sha, path FROM core.commit_files ORDER BY ALL")
                services = rows(conn, "SELECT sha, service FROM core.commit_services ORDER BY 1")
                asked[bool(wanted)] = (
                    summary.counts["commits asked for their files"],
                    [tuple(r.values()) for r in files],
                    [tuple(r.values()) for r in services],
                )
    assert asked[False] == (0, [], [])
    assert asked[True] == (
        2,
        [("b1" * 20, "docs/a.md"), ("b1" * 20, "services/search/q.py"),
         ("p1" * 20, "services/payments/api.py")],
        [("b1" * 20, "search"), ("p1" * 20, "payments")],
    )  # fmt: skip
