"""Every published example payload normalizes to what a person reading it would expect."""

import json
from datetime import UTC, datetime

import pytest

from dcicd_platform.config import PlatformConfig, Service
from tests.helpers import FIXTURES, fixture_envelope, rows, warehouse_with


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def one(conn, sql, *params) -> dict:
    found = rows(conn, sql, *params)
    assert len(found) == 1, found
    return found[0]


def test_every_fixture_loads_without_quarantine(tmp_path):
    envelopes = [
        fixture_envelope(str(p.relative_to(FIXTURES))) for p in sorted(FIXTURES.glob("**/*.json"))
    ]
    conn, report = warehouse_with(tmp_path, envelopes)
    assert report.quarantined == 0, rows(conn, "SELECT reason, raw_line FROM raw.quarantine")
    assert report.loaded == len(envelopes)


# -- GitHub workflow runs ---------------------------------------------------------------------


@pytest.mark.dates  # provider times, in every format, to UTC
def test_github_workflow_run_completed(tmp_path):
    conn, _ = warehouse_with(
        tmp_path,
        [
            fixture_envelope("github/workflow_run/requested.payload.json"),
            fixture_envelope("github/workflow_run/completed.payload.json"),
        ],
    )
    run = one(conn, "SELECT * FROM core.pipeline_runs")
    assert run["run_key"] == "github:289782451:1"
    assert run["repo"] == "octo-org/octo-repo"
    assert run["service"] == "octo-org/octo-repo"  # built-in default: the repository
    assert run["workflow"] == "test"  # the run's name is empty: the workflow's name
    assert run["workflow_path"] == ".github/workflows/test.yml"
    assert run["branch"] == "master" and run["on_default_branch"]
    assert run["sha"] == "3484a3fb816e0859fd6e1cea078d76385ff50625"
    assert run["status"] == "completed" and run["conclusion"] == "success"
    assert run["queued_at"] == ts("2020-10-05T16:33:24Z")
    assert run["started_at"] == ts("2020-10-05T16:33:49Z")
    assert run["finished_at"] == ts("2020-10-05T16:33:49Z")
    assert run["duration_s"] == 0 and run["queue_s"] == 25
    assert run["attempt"] == 1 and run["trigger_event"] == "repository_dispatch"


def test_github_workflow_run_in_flight_has_no_conclusion(tmp_path):
    conn, _ = warehouse_with(
        tmp_path, [fixture_envelope("github/workflow_run/requested.payload.json")]
    )
    run = one(conn, "SELECT * FROM core.pipeline_runs")
    assert run["status"] == "queued"
    assert run["conclusion"] is None and run["finished_at"] is None and run["duration_s"] is None


def test_action_required_conclusion_is_other(tmp_path):
    conn, _ = warehouse_with(
        tmp_path, [fixture_envelope("github/workflow_run/requested.with-conclusion.payload.json")]
    )
    assert one(conn, "SELECT conclusion FROM core.pipeline_runs")["conclusion"] == "other"


def test_rerun_attempts_are_their_own_rows(tmp_path):
    first = fixture_envelope("github/workflow_run/completed.payload.json", "a1")
    second = json.loads(
        json.dumps(fixture_envelope("github/workflow_run/completed.payload.json", "a2"))
    )
    second["payload"]["workflow_run"].update(
        run_attempt=2,
        conclusion="failure",
        run_started_at="2020-10-05T16:40:00Z",
        updated_at="2020-10-05T16:45:30Z",
    )
    conn, _ = warehouse_with(tmp_path, [first, second])
    found = rows(
        conn, "SELECT run_key, attempt, conclusion, duration_s FROM core.pipeline_runs ORDER BY 1"
    )
    assert found == [
        {"run_key": "github:289782451:1", "attempt": 1, "conclusion": "success", "duration_s": 0},
        {"run_key": "github:289782451:2", "attempt": 2, "conclusion": "failure", "duration_s": 330},
    ]


# -- GitHub workflow jobs ---------------------------------------------------------------------


@pytest.mark.dates
def test_github_workflow_job_completed_failure(tmp_path):
    conn, _ = warehouse_with(
        tmp_path,
        [fixture_envelope("github/workflow_job/completed.failure.with-organization.payload.json")],
    )
    job = one(conn, "SELECT * FROM core.pipeline_jobs")
    assert job["job_key"] == "github:289782451"
    assert job["run_key"] == "github:2202229078:1"
    assert job["repo"] == "Codertocat/Hello-World"
    assert job["workflow"] == "CodeQL" and job["job_name"] == "linters"
    assert job["runner_label"] == "ubuntu-latest" and not job["self_hosted"]
    assert job["conclusion"] == "failure"
    assert job["queued_at"] == ts("2021-08-05T10:33:58Z")
    assert job["started_at"] == ts("2021-08-05T10:34:58Z")
    assert job["finished_at"] == ts("2021-08-05T10:38:16Z")
    assert job["queue_s"] == 60 and job["duration_s"] == 198
    assert job["billable_minutes"] == 4  # 3 min 18 s, rounded up


def test_github_job_waiting_on_self_hosted_runner(tmp_path):
    conn, _ = warehouse_with(
        tmp_path, [fixture_envelope("github/workflow_job/waiting.payload.json")]
    )
    job = one(conn, "SELECT * FROM core.pipeline_jobs")
    assert job["runner_label"] == "self-hosted,k8s" and job["self_hosted"]
    assert job["status"] == "waiting" and job["conclusion"] is None
    assert job["started_at"] is None and job["billable_minutes"] == 0


def test_github_job_progress_keeps_the_latest_state(tmp_path):
    conn, _ = warehouse_with(
        tmp_path,
        [
            fixture_envelope(
                "github/workflow_job/completed.success.with-organization.payload.json"
            ),
            fixture_envelope("github/workflow_job/queued.payload.json"),
            fixture_envelope("github/workflow_job/in_progress.payload.json"),
        ],
    )
    job = one(conn, "SELECT status, conclusion, duration_s FROM core.pipeline_jobs")
    assert job == {"status": "completed", "conclusion": "success", "duration_s": 198}


def test_older_workflow_job_without_run_attempt(tmp_path):
    conn, _ = warehouse_with(
        tmp_path, [fixture_envelope("github_older/philips-labs__github_workflowjob_event.json")]
    )
    job = one(conn, "SELECT * FROM core.pipeline_jobs")
    assert job["job_key"] == "github:3169272040"
    assert job["run_key"] == "github:1068820843:1"  # no run_attempt: the first attempt
    assert job["repo"] == "philips-labs/terraform-aws-github-runner"
    assert job["job_name"] == "build" and job["status"] == "queued"
    assert job["queued_at"] == ts("2021-07-27T07:33:38Z")
    assert job["runner_label"] == "self-hosted" and job["self_hosted"]


# -- pushes and commits -----------------------------------------------------------------------


@pytest.mark.dates
def test_github_push_commits(tmp_path):
    conn, _ = warehouse_with(
        tmp_path,
        [
            fixture_envelope("github/push/with-new-branch.payload.json"),
            fixture_envelope("github/push/payload.json"),  # a tag deleted: no commits
        ],
    )
    commit = one(conn, "SELECT * FROM core.commits")
    assert commit["repo"] == "Codertocat/Hello-World" and commit["branch"] == "master"
    assert commit["sha"] == "6113728f27ae82c7b1a177c8d03f9e96e0adf246"
    assert commit["committed_at"] == ts("2019-05-15T15:19:25Z")
    assert commit["pushed_at"] == ts("2019-05-15T15:20:57Z")  # repository.pushed_at, epoch


@pytest.mark.dates
def test_gitlab_push_commits_in_push_order(tmp_path):
    conn, _ = warehouse_with(tmp_path, [fixture_envelope("gitlab/push.json")])
    found = rows(
        conn, "SELECT repo, branch, sha, committed_at, position FROM core.commits ORDER BY position"
    )
    assert [(c["repo"], c["branch"], c["position"]) for c in found] == [
        ("mike/diaspora", "master", 1),
        ("mike/diaspora", "master", 2),
    ]
    assert found[0]["sha"] == "b6568db1bc1dcd7f8b4d5a946b0b91f9dacd7327"
    assert found[0]["committed_at"] == ts("2011-12-12T12:27:31Z")  # +02:00 offset
    assert found[1]["committed_at"] == ts("2012-01-03T21:36:29Z")


# -- deployments ------------------------------------------------------------------------------


def test_github_production_deployment_status(tmp_path):
    conn, _ = warehouse_with(tmp_path, [fixture_envelope("github/deployment_status/payload.json")])
    d = one(conn, "SELECT * FROM core.deployments")
    assert d["deployment_key"] == "github:145988746"
    assert d["service"] == "Codertocat/Hello-World" and d["environment"] == "production"
    assert d["sha"] == "f95f852bd8fca8fcc58a9a2d6c842781e32a215e"
    assert d["status"] == "success" and d["deployed_at"] == ts("2019-05-15T15:20:55Z")
    assert d["is_production"] and not d["is_rollback"]


def test_github_pages_deployment_in_progress_is_not_production(tmp_path):
    conn, _ = warehouse_with(
        tmp_path, [fixture_envelope("github/deployment_status/gh-pages.payload.json")]
    )
    d = one(conn, "SELECT * FROM core.deployments")
    assert d["environment"] == "github-pages" and d["status"] == "in_progress"
    assert d["deployed_at"] is None and not d["is_production"]


@pytest.mark.parametrize(
    "fixture",
    [
        "gitlab/deployment.json",
        "gitlab/go-playground-deployment.json",
        "gitlab/gitlab-docs-deployment.json",
    ],
)
def test_gitlab_deployment(tmp_path, fixture):
    conn, _ = warehouse_with(tmp_path, [fixture_envelope(fixture)])
    d = one(conn, "SELECT * FROM core.deployments")
    assert d["deployment_key"] == "gitlab:root/test-deployment-webhooks:15"
    assert d["sha"] == "279484c09fbe69ededfced8c1bb6e6d24616b468"  # the full sha, from commit_url
    assert d["environment"] == "staging" and not d["is_production"]
    assert d["status"] == "success" and d["deployed_at"] == ts("2021-04-28T19:50:00Z")


def test_configured_production_environments_and_services(tmp_path):
    envelope = fixture_envelope("gitlab/deployment.json")
    config = PlatformConfig(
        services=[
            Service(
                name="webhooks",
                repositories=["root/test-deployment-webhooks"],
                production_environments=["Staging"],
            )
        ]
    )
    conn, _ = warehouse_with(tmp_path, [envelope], config)
    d = one(conn, "SELECT service, is_production FROM core.deployments")
    assert d == {"service": "webhooks", "is_production": True}


# -- GitLab pipelines and jobs ----------------------------------------------------------------


@pytest.mark.dates
@pytest.mark.parametrize("fixture", ["gitlab/pipeline.json", "gitlab/go-playground-pipeline.json"])
def test_gitlab_pipeline(tmp_path, fixture):
    conn, _ = warehouse_with(tmp_path, [fixture_envelope(fixture)])
    run = one(conn, "SELECT * FROM core.pipeline_runs")
    assert run["run_key"] == "gitlab:31:1" and run["repo"] == "gitlab-org/gitlab-test"
    assert run["branch"] == "master" and run["conclusion"] == "success"
    assert run["queued_at"] == ts("2016-08-12T15:23:28Z")
    assert run["finished_at"] == ts("2016-08-12T15:26:29Z")
    assert run["duration_s"] == 63  # GitLab's own running time
    jobs = {j["job_name"]: j for j in rows(conn, "SELECT * FROM core.pipeline_jobs")}
    assert set(jobs) == {"production", "test-image", "test-build", "build-image", "staging"}
    assert (
        jobs["production"]["conclusion"] == "skipped"
        and jobs["production"]["billable_minutes"] == 0
    )
    assert jobs["staging"]["status"] == "created" and jobs["staging"]["conclusion"] is None
    assert jobs["test-build"]["conclusion"] == "success"
    assert jobs["test-build"]["started_at"] == ts("2016-08-12T15:26:12Z")
    assert jobs["test-build"]["finished_at"] == ts("2016-08-12T15:26:29Z")
    assert jobs["test-build"]["billable_minutes"] == 1
    assert all(
        j["run_key"] == "gitlab:31:1" and j["repo"] == "gitlab-org/gitlab-test"
        for j in jobs.values()
    )


@pytest.mark.dates
def test_gitlab_job_event(tmp_path):
    conn, _ = warehouse_with(tmp_path, [fixture_envelope("gitlab/job.json")])
    job = one(conn, "SELECT * FROM core.pipeline_jobs")
    assert job["job_key"] == "gitlab:3580121225" and job["run_key"] == "gitlab:743121198:1"
    assert job["repo"] == "jsmithy2/release-tools-fake"  # from the project's homepage
    assert job["job_name"] == "auto_deploy:start" and job["stage"] == "coordinated:tag"
    assert job["conclusion"] == "success"
    assert job["queued_at"] == ts("2023-01-10T13:50:02Z")
    assert job["started_at"] == ts("2023-01-10T13:50:05Z")
    assert job["duration_s"] == pytest.approx(49.503592)
    assert job["runner_label"] == "linux,docker" and job["billable_minutes"] == 1


@pytest.mark.parametrize("fixture", ["gitlab/build.json", "gitlab/go-playground-job.json"])
def test_gitlab_job_just_created(tmp_path, fixture):
    conn, _ = warehouse_with(tmp_path, [fixture_envelope(fixture)])
    job = one(conn, "SELECT * FROM core.pipeline_jobs")
    assert job["job_key"] == "gitlab:1977" and job["repo"] == "gitlab-org/gitlab-test"
    assert job["status"] == "created" and job["conclusion"] is None


# -- incidents --------------------------------------------------------------------------------


@pytest.mark.dates
def test_pagerduty_incident_lifecycle(tmp_path):
    names = ["triggered", "acknowledged", "resolved"]
    envelopes = [fixture_envelope(f"pagerduty/incident.{n}.aldaviva.json") for n in names]
    conn, _ = warehouse_with(tmp_path, envelopes)
    incident = one(conn, "SELECT * FROM core.incidents")
    assert incident["incident_key"] == "pagerduty:Q2CKYRLH85UNN4"
    assert incident["service"] == "Webhook Tester"
    assert incident["opened_at"] == ts("2025-04-07T03:47:13.414Z")
    assert incident["resolved_at"] == ts("2025-04-07T03:49:36.358Z")


def test_pagerduty_v3_examples(tmp_path):
    conn, _ = warehouse_with(
        tmp_path,
        [
            fixture_envelope("pagerduty/triggered_v3.json"),
            fixture_envelope("pagerduty/resolved_v3.json"),
        ],
    )
    found = {r["incident_key"]: r for r in rows(conn, "SELECT * FROM core.incidents")}
    opened = found["pagerduty:PFQZPSY"]
    assert opened["opened_at"] == ts("2021-06-04T13:35:29.781Z") and opened["resolved_at"] is None
    assert opened["service"] == "pig208"
    only_resolved = found["pagerduty:PCPZE64"]  # its trigger was never seen: opening unknown
    assert only_resolved["opened_at"] is None
    assert only_resolved["resolved_at"] == ts("2021-06-04T13:16:53.816Z")


def test_pagerduty_service_maps_to_configured_service(tmp_path):
    config = PlatformConfig(services=[Service(name="tester", pagerduty_services=["PNE3JZM"])])
    conn, _ = warehouse_with(
        tmp_path, [fixture_envelope("pagerduty/incident.triggered.aldaviva.json")], config
    )
    assert one(conn, "SELECT service FROM core.incidents")["service"] == "tester"


def test_issues_without_incident_label_are_not_incidents(tmp_path):
    envelopes = [
        fixture_envelope("github/issues/opened.payload.json", "o"),
        fixture_envelope("github/issues/labeled.payload.json", "l"),
        fixture_envelope("gitlab/issue.json"),
    ]
    conn, _ = warehouse_with(tmp_path, envelopes)
    assert rows(conn, "SELECT * FROM core.incidents") == []


def test_github_issue_labelled_incident_in_any_case(tmp_path):
    opened = fixture_envelope("github/issues/labeled.payload.json", "l")
    opened["payload"]["issue"]["labels"].append({"name": "InCiDeNt"})
    closed = json.loads(json.dumps(opened))
    closed["delivery_id"] = "c"
    closed["payload"]["issue"].update(
        state="closed", closed_at="2019-05-15T17:00:00Z", updated_at="2019-05-15T17:00:00Z"
    )
    conn, _ = warehouse_with(tmp_path, [opened, closed])
    incident = one(conn, "SELECT * FROM core.incidents")
    assert incident["incident_key"] == "github:444500041"
    assert incident["service"] == "Codertocat/Hello-World"
    assert incident["opened_at"] == ts("2019-05-15T15:20:18Z")
    assert incident["resolved_at"] == ts("2019-05-15T17:00:00Z")


def test_github_issue_naming_a_root_cause_is_an_incident(tmp_path):
    envelope = fixture_envelope("github/issues/opened.payload.json")
    envelope["payload"]["issue"]["body"] = "Checkout broke.\n\nRoot cause: 6113728F27AE82C7"
    conn, _ = warehouse_with(tmp_path, [envelope])
    incident = one(conn, "SELECT root_cause_sha, resolved_at FROM core.incidents")
    assert incident == {"root_cause_sha": "6113728f27ae82c7", "resolved_at": None}


def test_reopened_issue_is_not_resolved(tmp_path):
    envelope = fixture_envelope("github/issues/reopened.payload.json")
    envelope["payload"]["issue"]["labels"].append({"name": "incident"})
    conn, _ = warehouse_with(tmp_path, [envelope])
    incident = one(conn, "SELECT opened_at, resolved_at FROM core.incidents")
    assert incident == {"opened_at": ts("2021-07-05T18:05:24Z"), "resolved_at": None}


def test_gitlab_issue_labelled_incident(tmp_path):
    envelope = fixture_envelope("gitlab/issue.json")
    envelope["payload"]["labels"].append({"title": "INCIDENT"})
    conn, _ = warehouse_with(tmp_path, [envelope])
    incident = one(conn, "SELECT * FROM core.incidents")
    assert (
        incident["incident_key"] == "gitlab:301" and incident["service"] == "gitlabhq/gitlab-test"
    )
    assert incident["opened_at"] == ts("2013-12-03T17:15:43Z") and incident["resolved_at"] is None


# -- pull requests ----------------------------------------------------------------------------


@pytest.mark.dates
def test_github_pull_request_and_its_reviews(tmp_path):
    other = fixture_envelope("github/pull_request_review/submitted.payload.json", "r2")
    other["payload"]["review"].update(
        id=1, state="approved", submitted_at="2019-05-15T15:20:50Z", user={"login": "octocat"}
    )
    conn, report = warehouse_with(
        tmp_path,
        [
            fixture_envelope("github/pull_request/opened.payload.json"),
            fixture_envelope("github/pull_request/synchronize.payload.json"),
            fixture_envelope("github/pull_request/closed.payload.json"),
            # the author's own review (a comment), and its dismissal: no review
            fixture_envelope("github/pull_request_review/submitted.payload.json"),
            fixture_envelope("github/pull_request_review/dismissed.payload.json"),
            other,
        ],
    )
    assert report.quarantined == 0
    pr = one(conn, "SELECT * FROM core.pull_requests")
    assert pr["pr_key"] == "github:Codertocat/Hello-World#2"
    assert (pr["author"], pr["base_branch"], pr["default_branch"]) == (
        "Codertocat",
        "master",
        "master",
    )
    assert (pr["head_branch"], pr["head_sha"]) == (
        "changes",
        "ec26c3e57ca3a959ca5aad62de7213c562f8c821",
    )
    assert pr["state"] == "closed" and pr["merged_at"] is None
    assert (pr["opened_at"], pr["closed_at"]) == (
        ts("2019-05-15T15:20:33Z"),
        ts("2019-05-15T15:21:18Z"),
    )
    assert pr["merge_commit_sha"] is None  # closed without merging: a test merge only
    assert (pr["additions"], pr["deletions"], pr["changed_files"]) == (1, 1, 1)
    assert pr["first_review_at"] == ts("2019-05-15T15:20:50Z")  # octocat's, not the author's
    assert pr["approved_at"] == ts("2019-05-15T15:20:50Z")
    assert one(conn, "SELECT count(*) AS n FROM marts.pull_request_cycle")["n"] == 0


@pytest.mark.dates
def test_gitlab_merge_request_merged_and_approved(tmp_path):
    opened = fixture_envelope("gitlab/merge_request.json", "mr-open")
    approved = fixture_envelope("gitlab/merge_request.json", "mr-approved")
    approved["received_at"] = "2013-12-04T09:00:00Z"
    approved["payload"]["user"] = {"id": 2, "username": "reviewer"}
    approved["payload"]["object_attributes"].update(action="approved")
    merged = fixture_envelope("gitlab/merge_request.json", "mr-merged")
    merged["received_at"] = "2013-12-04T10:00:05Z"
    merged["payload"]["user"] = {"id": 51, "username": "author"}
    merged["payload"]["object_attributes"].update(
        action="merge",
        state="merged",
        updated_at="2013-12-04 10:00:00 UTC",
        merge_commit_sha="AB" * 20,
    )
    conn, report = warehouse_with(tmp_path, [opened, approved, merged])
    assert report.quarantined == 0
    mr = one(conn, "SELECT * FROM core.pull_requests")
    assert mr["pr_key"] == "gitlab:gitlabhq/gitlab-test!1"
    assert (mr["source"], mr["number"], mr["author"]) == ("gitlab", 1, "author")
    assert (mr["base_branch"], mr["head_branch"]) == ("master", "ms-viewport")
    assert mr["head_sha"] == "da1560886d4f094c3e6c9ef40349f7d38b5d27d7"
    assert (mr["state"], mr["merged_at"]) == ("merged", ts("2013-12-04T10:00:00Z"))
    assert mr["merge_commit_sha"] == "ab" * 20
    assert mr["opened_at"] == ts("2013-12-03T17:23:34Z")
    assert mr["first_review_at"] == mr["approved_at"] == ts("2013-12-04T09:00:00Z")
    cycle = one(conn, "SELECT * FROM marts.pull_request_cycle")
    assert cycle["pickup_s"] == (ts("2013-12-04T09:00:00Z") - mr["opened_at"]).total_seconds()
    assert cycle["review_s"] == 3600 and cycle["deploy_s"] is None  # nothing deployed it
    assert cycle["coding_s"] is None  # no commit of it is known
