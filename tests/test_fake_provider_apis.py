"""The fake provider APIs behave as the providers document: pagination and its links, GitHub's
1,000-result cap and `created` filters, run attempts and jobs of every attempt, ETags and free
304s, rate-limit exhaustion and refill, the secondary limit, injected 502s, GitLab's paging
headers and retried jobs, PagerDuty's offset paging, and the onnx history as API objects that
agree with its webhook envelopes. The client is httpx, as the importers' is."""

from __future__ import annotations

import copy
import json
import time
from collections import Counter
from datetime import UTC, datetime

import httpx
import pytest

from tests import real_history
from tests.fake_provider_apis import (
    FakeGitHub,
    FakeGitLab,
    FakePagerDuty,
    commit_object,
    github_from_onnx,
    github_from_recorded,
    gitlab_from_recorded,
    onnx_job,
    onnx_run,
    pagerduty_from_recorded,
)
from tests.helpers import FIXTURES

GITHUB = {"Authorization": "Bearer test-token", "Accept": "application/vnd.github+json"}
GITLAB = {"PRIVATE-TOKEN": "test-token"}
PAGERDUTY = {"Authorization": "Token token=test-token"}
ONNX = "/repos/onnx/onnx"
needs_onnx = pytest.mark.skipif(
    not real_history.DATASET.exists(), reason=f"the real history is not at {real_history.DATASET}"
)


@pytest.fixture(scope="module")
def onnx_rows() -> tuple[list[dict], list[dict]]:
    runs = list(real_history._rows(real_history.DATASET / "build_durations.csv"))
    jobs = [
        row
        for path in sorted((real_history.DATASET / "jobs").glob("*.csv"))
        for row in real_history._rows(path)
    ]
    return runs, jobs


@pytest.fixture(scope="module")
def onnx_api():
    """The onnx history served (read-only tests share it: none of them mutates it)."""
    with github_from_onnx() as gh:
        yield gh


@pytest.fixture(scope="module")
def client():
    """One client per provider for the module (a client's set-up costs a tenth of a second)."""
    with httpx.Client(headers=GITHUB, timeout=10) as http:
        yield http


@pytest.fixture(scope="module")
def gl_client():
    with httpx.Client(headers=GITLAB, timeout=10) as http:
        yield http


@pytest.fixture(scope="module")
def pd_client():
    with httpx.Client(headers=PAGERDUTY, timeout=10) as http:
        yield http


@pytest.fixture(scope="module")
def bare():
    with httpx.Client(timeout=10) as http:
        yield http


def links(response: httpx.Response) -> dict[str, str]:
    return {link["rel"]: link["url"] for link in response.links.values()}


def walk(client: httpx.Client, url: str, params: dict | None = None, key: str | None = None):
    """Every item of a listing by following rel="next"; the responses too."""
    items, responses = [], []
    response = client.get(url, params=params)
    while True:
        assert response.status_code == 200, response.text
        responses.append(response)
        body = response.json()
        items.extend(body[key] if key else body)
        if "next" not in response.links:
            return items, responses
        response = client.get(response.links["next"]["url"])


# ---- GitHub: pagination, cap, filters -----------------------------------------------------------
@needs_onnx
def test_the_onnx_loader_serves_every_run_and_job_as_the_webhook_envelopes_say(onnx_api, onnx_rows):
    data = onnx_api.repo("onnx/onnx")
    assert len(data.runs) == 6129
    assert sum(len(jobs) for jobs in data.jobs.values()) == 28420
    runs, jobs = onnx_rows
    for row in runs:
        expected = real_history.run_envelope(row)["payload"]["workflow_run"]
        served = data.runs[int(row["run_id"])][1]
        assert {k: served[k] for k in expected} == expected
        assert served["repository"]["full_name"] == "onnx/onnx"
    for row in jobs:
        expected = real_history.job_envelope(row)["payload"]["workflow_job"]
        assert data.jobs[int(row["run_id"])][int(row["job_id"])] == expected


@needs_onnx
def test_runs_come_newest_first_in_pages_whose_links_keep_the_query(onnx_api, client):
    url = f"{onnx_api.url}{ONNX}/actions/runs"
    first = client.get(url, params={"per_page": 100, "created": "2026-05-20"})
    total = first.json()["total_count"]
    assert 100 < total < 1000
    repo_id = onnx_api.repo("onnx/onnx").repo["id"]
    base = f"{onnx_api.url}/repositories/{repo_id}/actions/runs?per_page=100&created=2026-05-20"
    last_page = -(-total // 100)
    assert first.headers["Link"] == (
        f'<{base}&page=2>; rel="next", <{base}&page={last_page}>; rel="last"'
    )
    second = client.get(links(first)["next"])
    assert links(second) == {
        "prev": f"{base}&page=1",
        "next": f"{base}&page=3",
        "last": f"{base}&page={last_page}",
        "first": f"{base}&page=1",
    }
    runs, responses = walk(client, url, {"per_page": 100, "created": "2026-05-20"}, "workflow_runs")
    assert len(runs) == len({r["id"] for r in runs}) == total
    assert set(links(responses[-1])) == {"prev", "first"}
    keys = [(r["created_at"], r["id"]) for r in runs]
    assert keys == sorted(keys, reverse=True)
    assert all(r["created_at"].startswith("2026-05-20") for r in runs)
    default = client.get(url, params={"created": "2026-05-20"}).json()["workflow_runs"]
    assert len(default) == 30
    assert len(client.get(url, params={"per_page": 500}).json()["workflow_runs"]) == 100


@needs_onnx
def test_a_filtered_run_list_never_returns_more_than_1000_runs(onnx_api, client):
    url = f"{onnx_api.url}{ONNX}/actions/runs"
    window = {"per_page": 100, "created": "2026-05-10..2026-05-20"}
    runs, responses = walk(client, url, window, "workflow_runs")
    total = responses[0].json()["total_count"]
    assert total > 1000 and len(runs) == 1000 and len(responses) == 10
    assert all(r.json()["total_count"] == total for r in responses)
    past = client.get(url, params={**window, "page": 11}).json()
    assert past == {"total_count": total, "workflow_runs": []}
    # Unfiltered, GitHub documents no cap: the last page holds the last runs.
    first = client.get(url, params={"per_page": 100})
    assert links(first)["last"].endswith("page=62")
    assert len(client.get(links(first)["last"]).json()["workflow_runs"]) == 29


@needs_onnx
@pytest.mark.parametrize(
    ("created", "keep"),
    [
        ("2026-05-20", lambda c: c[:10] == "2026-05-20"),
        (">=2026-05-30", lambda c: c[:10] >= "2026-05-30"),
        (">2026-05-30", lambda c: c[:10] > "2026-05-30"),
        ("<2026-05-10", lambda c: c[:10] < "2026-05-10"),
        ("<=2026-05-10", lambda c: c[:10] <= "2026-05-10"),
        ("2026-05-12..2026-05-13", lambda c: "2026-05-12" <= c[:10] <= "2026-05-13"),
        ("2026-05-30..*", lambda c: c[:10] >= "2026-05-30"),
        (
            "2026-05-20T06:00:00Z..2026-05-20T12:00:00Z",
            lambda c: "2026-05-20T06:00:00Z" <= c <= "2026-05-20T12:00:00Z",
        ),
        (">=2026-05-20T08:00:00+02:00", lambda c: c >= "2026-05-20T06:00:00Z"),
        ("<2026-05-20T06:00:00Z", lambda c: c < "2026-05-20T06:00:00Z"),
    ],
)
def test_created_filters_select_as_github_search_does(onnx_api, client, onnx_rows, created, keep):
    runs, _ = onnx_rows
    expected = sum(keep(r["created_at"]) for r in runs)
    answer = client.get(f"{onnx_api.url}{ONNX}/actions/runs", params={"created": created})
    assert answer.json()["total_count"] == expected > 0


@needs_onnx
def test_a_created_filter_github_cannot_read_is_refused(onnx_api, client):
    answer = client.get(f"{onnx_api.url}{ONNX}/actions/runs", params={"created": ">=last week"})
    assert answer.status_code == 422


# ---- GitHub: attempts and jobs ------------------------------------------------------------------
def test_recorded_runs_keep_every_attempt(client):
    with github_from_recorded() as gh:
        runs = f"{gh.url}/repos/panjf2000/ants/actions/runs"
        listed = client.get(runs, params={"per_page": 100}).json()
        assert listed["total_count"] == 35
        rerun = next(r for r in listed["workflow_runs"] if r["run_attempt"] == 2)
        second = client.get(f"{runs}/{rerun['id']}/attempts/2").json()
        assert second == rerun  # the recorded object, unchanged
        first = client.get(f"{runs}/{rerun['id']}/attempts/1").json()
        assert first["run_attempt"] == 1 and first["updated_at"] == rerun["run_started_at"]
        assert client.get(f"{runs}/{rerun['id']}/attempts/3").status_code == 404
        jobs = client.get(f"{runs}/577324554/jobs", params={"per_page": 100}).json()
        assert jobs["total_count"] == len(jobs["jobs"]) > 0
        assert client.get(f"{runs}/1/jobs").status_code == 404


@needs_onnx
def test_a_rerun_makes_attempt_2_with_new_jobs_and_filter_all_lists_both(client, onnx_rows):
    runs_rows, jobs_rows = onnx_rows
    per_run = Counter(row["run_id"] for row in jobs_rows)
    chosen = next(row for row in runs_rows if per_run[row["run_id"]] >= 3)
    with FakeGitHub() as gh:
        data = gh.add_repo("onnx/onnx")
        run_id = int(chosen["run_id"])
        data.put_run(onnx_run(chosen, {"full_name": "onnx/onnx"}))
        for row in jobs_rows:
            if row["run_id"] == chosen["run_id"]:
                data.put_job(onnx_job(row))
        before = copy.deepcopy(data.runs[run_id][1])
        first_jobs = {j["id"] for j in data.jobs_of(run_id, 1)}
        data.rerun(run_id, started_at="2026-06-01T10:00:00Z", completed_at="2026-06-01T10:30:00Z")
        runs = f"{gh.url}{ONNX}/actions/runs"
        listed = client.get(runs, params={"created": before["created_at"], "per_page": 100})
        shown = [r for r in listed.json()["workflow_runs"] if r["id"] == run_id]
        assert [r["run_attempt"] for r in shown] == [2]
        assert shown[0]["updated_at"] == "2026-06-01T10:30:00Z"
        assert client.get(f"{runs}/{run_id}/attempts/1").json() == before
        every = client.get(f"{runs}/{run_id}/jobs", params={"filter": "all", "per_page": 100})
        latest = client.get(f"{runs}/{run_id}/jobs", params={"per_page": 100}).json()
        attempts = Counter(j["run_attempt"] for j in every.json()["jobs"])
        assert attempts == {1: len(first_jobs), 2: len(first_jobs)}
        assert {j["run_attempt"] for j in latest["jobs"]} == {2}
        assert not first_jobs & {j["id"] for j in latest["jobs"]}
        of_first = client.get(f"{runs}/{run_id}/attempts/1/jobs", params={"per_page": 100})
        assert {j["id"] for j in of_first.json()["jobs"]} == first_jobs


def test_jobs_page_by_30_by_default(client):
    with FakeGitHub() as gh:
        data = gh.add_repo("acme/app")
        data.put_run(
            {"id": 7, "run_attempt": 1, "created_at": "2026-05-01T00:00:00Z", "status": "queued"}
        )
        for n in range(45):
            data.put_job({"id": 100 + n, "run_id": 7, "run_attempt": 1, "name": f"j{n}"})
        url = f"{gh.url}/repos/acme/app/actions/runs/7/jobs"
        jobs, responses = walk(client, url, None, "jobs")
        assert [len(r.json()["jobs"]) for r in responses] == [30, 15]
        assert [j["id"] for j in jobs] == list(range(100, 145))


# ---- GitHub: deployments, commits, pulls, issues ------------------------------------------------
def test_recorded_deployments_pulls_reviews_and_commits_are_served(client):
    with github_from_recorded() as gh:
        deployments = client.get(f"{gh.url}/repos/facebook/OpenBIC/deployments").json()
        assert len(deployments) == 7
        assert [d["created_at"] for d in deployments] == sorted(
            (d["created_at"] for d in deployments), reverse=True
        )
        statuses = client.get(
            f"{gh.url}/repos/facebook/OpenBIC/deployments/3881429895/statuses"
        ).json()
        assert [s["state"] for s in statuses] == ["success", "in_progress", "queued"]
        assert statuses[0]["id"] == 11056898719  # decoded from the GraphQL node id
        ants = f"{gh.url}/repos/panjf2000/ants"
        pulls, _ = walk(client, f"{ants}/pulls", {"state": "all", "per_page": 20})
        assert len(pulls) == 49  # 50 rows, one pull recorded twice
        updated = client.get(f"{ants}/pulls", params={"state": "all", "sort": "updated"}).json()
        stamps = [p["updated_at"] for p in updated]
        assert stamps == sorted(stamps)  # sort=updated defaults to ascending
        assert {p["state"] for p in client.get(f"{ants}/pulls").json()} == {"open"}
        reviews = client.get(f"{ants}/pulls/41/reviews").json()
        assert reviews and all(r["pull_request_url"].endswith("/pulls/41") for r in reviews)
        commits = client.get(f"{ants}/pulls/23/commits").json()
        assert commits[0]["sha"] == "5bbc9e170bbee27c37bcc30da3da75b4531d1edb"
        sha = commits[0]["sha"]
        assert client.get(f"{ants}/commits/{sha}").json() == commits[0]


def test_commits_walk_the_parents_from_a_branch_or_sha(client):
    with FakeGitHub() as gh:
        data = gh.add_repo("acme/app")
        url = f"{gh.url}/repos/acme/app/commits"
        assert client.get(url).status_code == 409  # GitHub: "Git Repository is empty."

        def add(sha, parents, day, branch=None):
            date = f"2026-05-{day:02d}T12:00:00Z"
            data.put_commit(
                commit_object("acme/app", sha, parents=parents, date=date), branch=branch
            )

        add("a", [], 1)
        add("b", ["a"], 2)
        add("f", ["a"], 3)  # a feature branch
        add("m", ["b", "f"], 4, branch="main")
        add("x", ["m"], 5, branch="other")
        assert [c["sha"] for c in client.get(url).json()] == ["m", "f", "b", "a"]
        assert [c["sha"] for c in client.get(url, params={"sha": "f"}).json()] == ["f", "a"]
        since = client.get(url, params={"sha": "other", "since": "2026-05-03T00:00:00Z"})
        assert [c["sha"] for c in since.json()] == ["x", "m", "f"]
        until = client.get(url, params={"until": "2026-05-02T12:00:00Z"})
        assert [c["sha"] for c in until.json()] == ["b", "a"]
        assert [p["sha"] for p in client.get(f"{url}/m").json()["parents"]] == ["b", "f"]
        assert client.get(url, params={"sha": "nope"}).status_code == 404


def test_issues_filter_by_label_state_and_since(client):
    example = json.loads((FIXTURES / "github/issues/labeled.payload.json").read_text())["issue"]
    with FakeGitHub() as gh:
        data = gh.add_repo("acme/app")
        incident = {"name": "incident", "color": "d73a4a"}
        for number, labels, state, updated in (
            (1, [incident], "closed", "2026-05-01T00:00:00Z"),
            (2, [incident], "open", "2026-05-03T00:00:00Z"),
            (3, example["labels"], "closed", "2026-05-04T00:00:00Z"),
        ):
            data.put_issue({**example, "number": number, "id": number, "labels": labels,
                            "state": state, "updated_at": updated})  # fmt: skip
        url = f"{gh.url}/repos/acme/app/issues"
        every = {"labels": "incident", "state": "all"}
        assert [i["number"] for i in client.get(url, params=every).json()] == [2, 1]
        assert [i["number"] for i in client.get(url, params={"labels": "incident"}).json()] == [2]
        since = client.get(url, params={**every, "since": "2026-05-02T00:00:00Z"}).json()
        assert [i["number"] for i in since] == [2]


# ---- ETags, quota, faults ------------------------------------------------------------------------
def test_a_matching_if_none_match_gets_a_304_that_costs_no_quota(client):
    with github_from_recorded() as gh:
        url = f"{gh.url}/repos/panjf2000/ants/actions/runs"
        first = client.get(url)
        etag = first.headers["ETag"]
        assert etag.startswith('W/"') and first.headers["X-RateLimit-Remaining"] == "4999"
        again = client.get(url, headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b""
        assert again.headers["ETag"] == etag and again.headers["X-RateLimit-Remaining"] == "4999"
        assert (gh.requests, gh.quota_used, gh.not_modified) == (2, 1, 1)
        assert [r.quota for r in gh.log] == [True, False]
        assert gh.log[1].headers["if-none-match"] == etag
        run_id = first.json()["workflow_runs"][0]["id"]
        gh.repo("panjf2000/ants").update_run(run_id, updated_at="2026-01-01T00:00:00Z")
        changed = client.get(url, headers={"If-None-Match": etag})
        assert changed.status_code == 200 and changed.headers["ETag"] != etag
        assert gh.quota_used == 2


def test_the_primary_budget_runs_out_then_refills_after_the_reset(client):
    with github_from_recorded() as gh:
        gh.set_rate_limit(3, reset_in_s=1)
        url = f"{gh.url}/repos/panjf2000/ants"
        answers = [client.get(url) for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 403]
        assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["2", "1", "0", "0"]
        refused = answers[-1]
        assert refused.json()["message"].startswith("API rate limit exceeded")
        assert refused.headers["X-RateLimit-Used"] == "3"
        assert refused.headers["X-RateLimit-Resource"] == "core"
        reset = int(refused.headers["X-RateLimit-Reset"])
        assert reset - time.time() <= 2
        assert (
            client.get(url, headers={"If-None-Match": answers[0].headers["ETag"]}).status_code
            == 403
        )
        time.sleep(max(0.0, reset - time.time()) + 0.05)
        after = client.get(url)
        assert after.status_code == 200 and after.headers["X-RateLimit-Remaining"] == "2"
        assert int(after.headers["X-RateLimit-Reset"]) > reset
        assert gh.quota_used == 4


def test_the_secondary_limit_answers_once_with_retry_after(client):
    with github_from_recorded() as gh:
        gh.secondary_limit_at = 2
        gh.secondary_retry_after_s = 7
        url = f"{gh.url}/repos/panjf2000/ants"
        answers = [client.get(url) for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 403, 200]
        assert answers[1].headers["Retry-After"] == "7"
        assert "secondary rate limit" in answers[1].json()["message"]
        assert gh.quota_used == 2


def test_injected_502s_hit_the_requests_asked_for_and_cost_nothing(client):
    with github_from_recorded() as gh:
        gh.fail_requests = {2}
        gh.fail_every = 5
        url = f"{gh.url}/repos/panjf2000/ants"
        statuses = [client.get(url).status_code for _ in range(10)]
        assert statuses == [200, 502, 200, 200, 502, 200, 200, 200, 200, 502]
        assert gh.quota_used == 7 and gh.count(status=502) == 3


def test_requests_without_a_token_get_401_and_latency_is_applied(bare):
    with github_from_recorded() as gh:
        assert bare.get(f"{gh.url}/repos/panjf2000/ants").status_code == 401
        gh.token = "right"
        wrong = bare.get(f"{gh.url}/repos/panjf2000/ants", headers={"Authorization": "token x"})
        assert wrong.status_code == 401
        gh.latency_s = 0.05
        started = time.monotonic()
        right = bare.get(f"{gh.url}/repos/panjf2000/ants", headers={"Authorization": "token right"})
        assert right.status_code == 200 and time.monotonic() - started >= 0.05
        assert gh.quota_used == 1
    with gitlab_from_recorded() as gl:
        assert bare.get(f"{gl.url}/projects/44").status_code == 401
        bearer = bare.get(f"{gl.url}/projects/44", headers={"Authorization": "Bearer t"})
        assert bearer.status_code == 200
    with pagerduty_from_recorded() as pd:
        assert bare.get(f"{pd.url}/incidents", headers={"Authorization": "t"}).status_code == 401


# ---- GitLab ------------------------------------------------------------------------------------
def test_gitlab_pages_with_its_headers_and_links(gl_client):
    with gitlab_from_recorded() as gl:
        url = f"{gl.url}/projects/merico-dev%2Fee%2Fvdev.co/pipelines"
        first = gl_client.get(url, params={"per_page": 10, "order_by": "id", "sort": "asc"})
        total = int(first.headers["X-Total"])
        pages = -(-total // 10)
        assert first.headers["X-Page"] == "1" and first.headers["X-Per-Page"] == "10"
        assert first.headers["X-Next-Page"] == "2" and first.headers["X-Prev-Page"] == ""
        assert first.headers["X-Total-Pages"] == str(pages)
        base = f"{gl.url}/projects/merico-dev%2Fee%2Fvdev.co/pipelines"
        query = "per_page=10&order_by=id&sort=asc"
        assert links(first) == {
            "next": f"{base}?{query}&page=2",
            "last": f"{base}?{query}&page={pages}",
        }
        pipelines, responses = walk(
            gl_client, url, {"per_page": 10, "order_by": "id", "sort": "asc"}
        )
        assert len(pipelines) == total and responses[-1].headers["X-Next-Page"] == ""
        ids = [p["id"] for p in pipelines]
        assert ids == sorted(ids)
        assert set(pipelines[0]) == {
            "id", "iid", "project_id", "sha", "ref", "status", "source", "created_at",
            "updated_at", "web_url",
        }  # fmt: skip
        assert first.headers["RateLimit-Limit"] == "2000"
        assert first.headers["RateLimit-Remaining"] == "1999"
        detail = gl_client.get(f"{gl.url}/projects/12345678/pipelines/1078343570").json()
        assert detail["duration"] == 1512


def test_gitlab_filters_retried_jobs_and_deployments_as_gitlab_does(gl_client):
    with gitlab_from_recorded() as gl:
        jobs = f"{gl.url}/projects/merico%2Fpip_test/pipelines/16/jobs"
        latest = gl_client.get(jobs).json()
        every = gl_client.get(jobs, params={"include_retried": "true"}).json()
        assert len(latest) == 1 and len(every) == 10
        assert latest[0]["id"] == max(j["id"] for j in every)
        assert len(gl_client.get(f"{gl.url}/projects/44/pipelines").json()) > 0
        deployments = f"{gl.url}/projects/12345678/deployments"
        after = {"updated_after": "2019-03-13T14:15:00Z"}
        assert gl_client.get(deployments, params=after).status_code == 400
        ordered = gl_client.get(deployments, params={**after, "order_by": "updated_at"}).json()
        assert ordered and all(d["updated_at"] > "2019-03-13T14:15:00Z" for d in ordered)
        assert len(gl_client.get(deployments).json()) == 8
        mrs = gl_client.get(f"{gl.url}/projects/12345678/merge_requests", params={"per_page": 100})
        assert len(mrs.json()) == 18
        commits = gl_client.get(f"{gl.url}/projects/12345678/merge_requests/1/commits").json()
        assert commits[0]["id"] == "ad25fcda15e310a7eb34b3e38ff9b962b54f0e03"
        merged = gl_client.get(
            f"{gl.url}/projects/12345678/merge_requests",
            params={"state": "merged", "updated_after": "2019-06-28T14:32:05.270Z"},
        ).json()
        assert merged and all(m["state"] == "merged" for m in merged)


def test_gitlab_leaves_the_totals_out_past_10000_results(gl_client):
    with FakeGitLab() as gl:
        project = gl.add_project(5, "acme/big")
        for n in range(1, 10_002):
            project.jobs[n] = {"id": n, "name": "test", "status": "success", "pipeline": {"id": 1}}
        answer = gl_client.get(f"{gl.url}/projects/5/jobs", params={"per_page": 100})
        assert "X-Total" not in answer.headers and "X-Total-Pages" not in answer.headers
        assert set(links(answer)) == {"next"} and answer.headers["X-Next-Page"] == "2"
        assert [j["id"] for j in answer.json()][:2] == [10_001, 10_000]  # newest first


def test_gitlab_answers_429_with_retry_after_when_the_budget_is_spent(gl_client):
    with gitlab_from_recorded() as gl:
        gl.secondary_limit_at = 1
        assert gl_client.get(f"{gl.url}/projects/44").headers["Retry-After"] == "1"
        gl.set_rate_limit(1, reset_in_s=30)
        assert gl_client.get(f"{gl.url}/projects/44").status_code == 200
        refused = gl_client.get(f"{gl.url}/projects/44")
        assert refused.status_code == 429 and refused.text == "Retry later\n"
        assert refused.headers["RateLimit-Remaining"] == "0"
        assert 0 < int(refused.headers["Retry-After"]) <= 31
        assert int(refused.headers["RateLimit-Reset"]) > time.time()


# ---- PagerDuty ---------------------------------------------------------------------------------
def test_pagerduty_pages_incidents_and_log_entries_by_offset(pd_client):
    with pagerduty_from_recorded() as pd:
        window = {"since": "2022-11-01T00:00:00Z", "until": "2022-12-01T00:00:00Z"}
        seen, offset = [], 0
        while True:
            page = pd_client.get(
                f"{pd.url}/incidents", params={**window, "limit": 2, "offset": offset}
            )
            body = page.json()
            assert (body["limit"], body["offset"], body["total"]) == (2, offset, None)
            seen += [i["id"] for i in body["incidents"]]
            if not body["more"]:
                break
            offset += body["limit"]
        assert seen == ["Q3YON8WNWTZMRQ", "Q3CZAU7Q4008QD", "Q1OHFWFP3GPXOG"]
        counted = pd_client.get(f"{pd.url}/incidents", params={**window, "total": "true"}).json()
        assert counted["total"] == 3 and counted["more"] is False
        assert pd_client.get(f"{pd.url}/incidents").json()["incidents"] == []  # the last 30 days
        pd.clock = lambda: datetime(2022, 11, 20, tzinfo=UTC).timestamp()
        assert len(pd_client.get(f"{pd.url}/incidents").json()["incidents"]) == 3
        too_wide = {"since": "2022-01-01T00:00:00Z", "until": "2022-12-01T00:00:00Z"}
        assert pd_client.get(f"{pd.url}/incidents", params=too_wide).status_code == 400
        resolved = pd_client.get(
            f"{pd.url}/incidents", params={**window, "statuses[]": "resolved"}
        ).json()
        assert [i["id"] for i in resolved["incidents"]] == ["Q1OHFWFP3GPXOG"]
        url = f"{pd.url}/incidents/Q3YON8WNWTZMRQ/log_entries"
        entries = []
        for offset in range(0, 100, 25):
            body = pd_client.get(url, params={"offset": offset}).json()
            entries += body["log_entries"]
            if not body["more"]:
                break
        assert len(entries) == 31 and entries[-1]["type"] == "trigger_log_entry"
        first = pd_client.get(url)
        again = pd_client.get(url, headers={"If-None-Match": first.headers["ETag"]})
        assert again.status_code == 304 and not pd.log[-1].quota
        assert pd_client.get(f"{pd.url}/incidents/Q1OHFWFP3GPXOG").json()["incident"]["status"] == (
            "resolved"
        )


def test_pagerduty_builds_log_entries_for_an_incident_without_them(pd_client):
    with FakePagerDuty() as pd:
        pd.put_incident(
            {
                "id": "PX1",
                "type": "incident",
                "incident_number": 9,
                "status": "resolved",
                "created_at": "2026-05-01T10:00:00Z",
                "last_status_change_at": "2026-05-01T11:00:00Z",
                "acknowledgements": [{"at": "2026-05-01T10:05:00Z"}],
                "service": {"id": "PSVC", "type": "service_reference"},
            }
        )
        entries = pd_client.get(f"{pd.url}/incidents/PX1/log_entries").json()["log_entries"]
        assert [(e["type"], e["created_at"]) for e in entries] == [
            ("resolve_log_entry", "2026-05-01T11:00:00Z"),
            ("acknowledge_log_entry", "2026-05-01T10:05:00Z"),
            ("trigger_log_entry", "2026-05-01T10:00:00Z"),
        ]
        pd.set_rate_limit(1, reset_in_s=20)
        assert pd_client.get(f"{pd.url}/incidents/PX1").headers["ratelimit-remaining"] == "0"
        refused = pd_client.get(f"{pd.url}/incidents/PX1/log_entries")
        assert refused.status_code == 429 and refused.json()["error"]["code"] == 2020
        assert 0 < int(refused.headers["ratelimit-reset"]) <= 21
