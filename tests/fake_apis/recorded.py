"""The fakes filled with recorded real answers: `tests/fixtures/api-devlake-e2e` (Apache
DevLake's end-to-end data, see its SOURCES.md). Each CSV row's `data` is one object exactly as
the API returned it and is served unchanged; the loaders add only what GitHub or GitLab would
also hold and the recording left out, each addition said where it is made:

- GitHub (panjf2000/ants): runs, jobs, pull requests with their reviews and commits. A run
  recorded at attempt n > 1 gets its earlier attempts, since GitHub keeps every attempt (built
  from the recorded one: completed, conclusion "failure", ended when the next one started). The
  recorded jobs belong to runs the recording does not hold; they are served under their run ids.
  Where a pull request was recorded twice the later row wins.
- GitHub (facebook/OpenBIC): deployments, recorded through GraphQL, turned into the REST shapes
  (`id` = databaseId, state lower-cased; each status's id is decoded from its GraphQL node id
  when that is known (the latest), else made up below it). Its default branch is taken as main.
- GitLab project 12345678 (merico-dev/ee/vdev.co): pipelines (a listed one without a recorded
  detail gets the detailed fields as None), deployments, merge requests and their commits.
  Project 44 (merico/pip_test): the jobs; a pipeline a job names that the recording lacks is
  added from the job's own `pipeline` object, and so are the deployments' `deployable` jobs.
- PagerDuty: the three incidents; their recorded `log_entries` are served at
  `/incidents/{id}/log_entries` instead of inside the incident.
"""

from __future__ import annotations

import base64
import copy
import csv
import json
from collections.abc import Iterator
from pathlib import Path

from tests.fake_apis.github import API, FakeGitHub, repo_object
from tests.fake_apis.gitlab import FakeGitLab, pipeline_detail
from tests.fake_apis.pagerduty import FakePagerDuty

RECORDED = Path(__file__).resolve().parents[1] / "fixtures" / "api-devlake-e2e"


def recorded_rows(path: Path) -> Iterator[tuple[dict, dict]]:
    """(object, row) for each row of a recorded CSV; `row` keeps url, params and input."""
    csv.field_size_limit(1 << 30)
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            yield json.loads(row["data"]), row


def _input(row: dict) -> dict:
    return json.loads(row.get("input") or "null") or {}


# ---- GitHub --------------------------------------------------------------------------------------
def _earlier_attempts(run: dict) -> list[dict]:
    """The attempts before the recorded one: each completed with a failure, the last ending
    when the recorded attempt started (GitHub keeps them; the recording has only the latest)."""
    attempts = []
    for n in range(1, int(run["run_attempt"])):
        earlier = copy.deepcopy(run)
        earlier.update(
            run_attempt=n,
            status="completed",
            conclusion="failure",
            run_started_at=run["created_at"] if n == 1 else run["run_started_at"],
            updated_at=run["run_started_at"],
            previous_attempt_url=(
                None
                if n == 1
                else f"{API}/repos/{run['repository']['full_name']}/actions/runs/"
                f"{run['id']}/attempts/{n - 1}"
            ),
        )
        attempts.append(earlier)
    return attempts


def _node_database_id(node_id: str | None) -> int | None:
    """The database id inside a GraphQL node id: the new format (`DES_` + base64url msgpack
    [0, repository id, id]) or the old one (base64 of "016:DeploymentStatus123")."""
    if not node_id:
        return None
    try:
        if "_" in node_id:
            raw = base64.urlsafe_b64decode(node_id.split("_", 1)[1] + "==")
            return _last_msgpack_int(raw)
        text = base64.b64decode(node_id + "==").decode()
        digits = text[len(text.rstrip("0123456789")) :]
        return int(digits) if digits else None
    except ValueError:
        return None


def _last_msgpack_int(raw: bytes) -> int | None:
    """The last integer of a msgpack array of unsigned integers."""
    sizes = {0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8}
    i, value = 1, None  # raw[0] is the fixarray marker
    while i < len(raw):
        marker = raw[i]
        if marker < 0x80:
            value, i = marker, i + 1
        elif marker in sizes:
            size = sizes[marker]
            value, i = int.from_bytes(raw[i + 1 : i + 1 + size], "big"), i + 1 + size
        else:
            return None
    return value


def _rest_deployment(node: dict) -> tuple[str, dict, list[dict]]:
    """(full_name, deployment, statuses oldest first) from a GraphQL deployment node."""
    full_name = node["Repository"]["Url"].removeprefix("https://github.com/")
    deployment_id = int(node["DatabaseId"])
    base = f"{API}/repos/{full_name}/deployments/{deployment_id}"
    deployment = {
        "url": base,
        "id": deployment_id,
        "node_id": node["Id"],
        "sha": node["CommitOid"],
        "ref": (node.get("Ref") or {}).get("Name") or node["CommitOid"],
        "task": node.get("Task") or "deploy",
        "payload": json.loads(node["Payload"]) if node.get("Payload") else {},
        "original_environment": node["Environment"],
        "environment": node["Environment"],
        "description": node.get("Description") or None,
        "creator": None,
        "created_at": node["CreatedAt"],
        "updated_at": node["UpdatedAt"],
        "statuses_url": f"{base}/statuses",
        "repository_url": f"{API}/repos/{full_name}",
    }
    latest = node.get("LatestStatus") or {}
    recorded = (node.get("Statuses") or {}).get("nodes") or (
        [{"state": latest["State"], "updatedAt": latest["updatedAt"]}] if latest else []
    )
    newest_id = _node_database_id(latest.get("Id")) or deployment_id * 10
    statuses = []
    for age, status in enumerate(recorded):  # GraphQL lists them newest first
        at = status["updatedAt"]
        statuses.append(
            {
                "url": f"{base}/statuses/{newest_id - age}",
                "id": newest_id - age,
                "node_id": latest.get("Id") if age == 0 else None,
                "state": status["state"].lower(),
                "creator": None,
                "description": "",
                "environment": node["Environment"],
                "target_url": "",
                "log_url": "",
                "environment_url": "",
                "created_at": at,
                "updated_at": at,
                "deployment_url": base,
                "repository_url": f"{API}/repos/{full_name}",
            }
        )
    return full_name, deployment, list(reversed(statuses))


def github_from_recorded(
    fixtures: Path = RECORDED, *, into: FakeGitHub | None = None
) -> FakeGitHub:
    """A FakeGitHub (not started; or `into`, filled) holding panjf2000/ants's recorded runs,
    jobs, pull requests, reviews and commits, and facebook/OpenBIC's deployments."""
    gh = into or FakeGitHub()
    folder = fixtures / "github"
    pulls = [
        (pull, row) for pull, row in recorded_rows(folder / "_raw_github_api_pull_requests.csv")
    ]
    first = pulls[0][0]["base"]["repo"]
    ants = gh.add_repo(first["full_name"], first)
    for pull, _ in pulls:
        ants.put_pull(pull, reviews=[], commits=[])
    for commit, row in recorded_rows(folder / "_raw_github_api_pull_request_commits.csv"):
        number = int(_input(row)["Number"])
        ants.pull_commits.setdefault(number, []).append(commit)
        ants.commits.setdefault(commit["sha"], commit)
    for review, row in recorded_rows(folder / "_raw_github_api_pull_request_reviews.csv"):
        ants.pull_reviews.setdefault(int(_input(row)["Number"]), []).append(review)
    for run, _ in recorded_rows(folder / "_raw_github_api_runs.csv"):
        data = gh.add_repo(run["repository"]["full_name"], None)
        for earlier in _earlier_attempts(run):
            data.put_run(earlier)
        data.put_run(run)
    for job, row in recorded_rows(folder / "_raw_github_api_jobs.csv"):
        gh.add_repo(json.loads(row["params"])["Name"]).put_job(job)
    graphql = fixtures / "github_graphql" / "_raw_github_graphql_deployment.csv"
    for node, _ in recorded_rows(graphql):
        full_name, deployment, statuses = _rest_deployment(node)
        data = gh.add_repo(full_name, repo_object(full_name, default_branch="main"))
        data.put_deployment(deployment, statuses)
    return gh


# ---- GitLab --------------------------------------------------------------------------------------
def gitlab_from_recorded(
    fixtures: Path = RECORDED, *, into: FakeGitLab | None = None
) -> FakeGitLab:
    """A FakeGitLab (not started; or `into`, filled) holding project 12345678's recorded
    pipelines, deployments, merge requests and their commits, and project 44's jobs."""
    gl = into or FakeGitLab()
    folder = fixtures / "gitlab"
    main = gl.add_project(12345678, "merico-dev/ee/vdev.co", default_branch="master")
    for pipeline, _ in recorded_rows(folder / "_raw_gitlab_api_pipeline.csv"):
        main.put_pipeline(pipeline)
    for pipeline, _ in recorded_rows(folder / "_raw_gitlab_api_pipeline_details.csv"):
        main.put_pipeline(pipeline)
    for deployment, _ in recorded_rows(folder / "_raw_gitlab_api_deployments.csv"):
        main.put_deployment(deployment)
        if deployment.get("deployable"):
            _put_job_and_pipeline(main, deployment["deployable"])
    for merge_request, _ in recorded_rows(folder / "_raw_gitlab_api_merge_requests.csv"):
        main.put_merge_request(merge_request, commits=[])
    for commit, row in recorded_rows(folder / "_raw_gitlab_api_merge_request_commits.csv"):
        iid = int(_input(row)["Iid"])
        main.merge_request_commits.setdefault(iid, []).append(commit)
        main.commits.setdefault(commit["id"], commit)
    jobs = gl.add_project(44, "merico/pip_test", default_branch="master")
    for job, _ in recorded_rows(folder / "_raw_gitlab_api_job.csv"):
        _put_job_and_pipeline(jobs, job)
    return gl


def _put_job_and_pipeline(project, job: dict) -> None:
    """The job, its commit and, when the project lacks it, the pipeline the job names."""
    project.put_job(job)
    if job.get("commit"):
        project.commits.setdefault(job["commit"]["id"], job["commit"])
    pipeline = job.get("pipeline")
    if pipeline and int(pipeline["id"]) not in project.pipelines:
        listed = {"project_id": project.project["id"], "iid": None, "source": None, **pipeline}
        project.pipelines[int(pipeline["id"])] = pipeline_detail(listed)


# ---- PagerDuty -----------------------------------------------------------------------------------
def pagerduty_from_recorded(
    fixtures: Path = RECORDED, *, into: FakePagerDuty | None = None
) -> FakePagerDuty:
    """A FakePagerDuty (not started; or `into`, filled) holding the recorded incidents and
    their log entries (newest first, as recorded)."""
    pd = into or FakePagerDuty()
    for incident, _ in recorded_rows(fixtures / "pagerduty" / "_raw_pagerduty_incidents.csv"):
        entries = incident.pop("log_entries", None)
        pd.put_incident(incident, entries)
    return pd
