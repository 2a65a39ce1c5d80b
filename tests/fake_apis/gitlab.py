"""A fake GitLab REST API (`/api/v4`) over in-memory projects.

Served, with a project named by id or URL-encoded path (`group%2Fproject`): the project;
pipelines (`updated_after`, `updated_before`, `status`, `ref`, `sha`, `source`, `order_by`,
`sort`), one pipeline (the detailed object) and its jobs (`include_retried`, `scope[]`); the
project's jobs (`scope[]`); deployments (`updated_after`/`updated_before`, which GitLab since
16.0 refuses with 400 unless `order_by=updated_at`; `environment`, `status`, `order_by`, `sort`);
merge requests (`state`, `updated_after`, `updated_before`, `created_after`, `created_before`,
`target_branch`, `order_by`, `sort`), one merge request and its commits; repository commits
(`ref_name`, `since`, `until`, walking `parent_ids`) and one commit.

Pagination as GitLab documents it: `per_page` 20 by default, at most 100; `Link` (prev, next,
first, last), `X-Page`, `X-Per-Page`, `X-Next-Page` and `X-Prev-Page` (empty when none),
`X-Total` and `X-Total-Pages` (left out, with rel="last", past 10,000 results). Rate limit:
`RateLimit-Limit/Observed/Remaining/Reset/ResetTime` on every answer, 429 "Retry later" with
`Retry-After` when exhausted. Tokens in `PRIVATE-TOKEN` or `Authorization: Bearer`.

A job is retried when a later job (higher id) of the same name exists in its pipeline, as GitLab
decides; `include_retried=true` lists those too.
"""

from __future__ import annotations

import copy
import threading
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any

from tests.fake_apis.server import (
    Answer,
    FakeApi,
    Query,
    RequestRecord,
    link_header,
    page_of,
)
from tests.fake_apis.times import epoch, epoch_or_none

PIPELINE_LIST_FIELDS = (
    "id", "iid", "project_id", "sha", "ref", "status", "source", "created_at", "updated_at",
    "web_url",
)  # fmt: skip
PIPELINE_DETAIL_FIELDS = (
    "before_sha", "tag", "yaml_errors", "user", "started_at", "finished_at", "committed_at",
    "duration", "queued_duration", "coverage", "detailed_status", "name",
)  # fmt: skip


def project_object(
    project_id: int, path_with_namespace: str, *, default_branch: str = "main"
) -> dict:
    """A minimal project object as `GET /projects/:id` shapes it."""
    return {
        "id": project_id,
        "name": path_with_namespace.rsplit("/", 1)[-1],
        "path": path_with_namespace.rsplit("/", 1)[-1],
        "path_with_namespace": path_with_namespace,
        "default_branch": default_branch,
        "web_url": f"https://gitlab.example.com/{path_with_namespace}",
    }


def pipeline_detail(pipeline: dict) -> dict:
    """A pipeline as `GET /pipelines/:id` shapes it, from a listed one: the fields the list
    lacks are None (a recording that holds only the list entry tells nothing more)."""
    detail = dict(pipeline)
    for name in PIPELINE_DETAIL_FIELDS:
        detail.setdefault(name, None)
    return detail


@dataclass
class GitLabProjectData:
    """One project's objects in the API's shapes: `pipelines` (detailed objects) and `jobs` by
    id, `deployments` by id, `merge_requests` and `merge_request_commits` by iid, `commits` by
    sha, `branches[name]` the head sha."""

    project: dict
    pipelines: dict[int, dict] = field(default_factory=dict)
    jobs: dict[int, dict] = field(default_factory=dict)
    deployments: dict[int, dict] = field(default_factory=dict)
    merge_requests: dict[int, dict] = field(default_factory=dict)
    merge_request_commits: dict[int, list[dict]] = field(default_factory=dict)
    commits: dict[str, dict] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    def put_pipeline(self, pipeline: dict) -> dict:
        """Add or replace a pipeline (a detailed object; a listed one is completed with None)."""
        with self.lock:
            self.pipelines[int(pipeline["id"])] = pipeline_detail(pipeline)
        return self.pipelines[int(pipeline["id"])]

    def update_pipeline(self, pipeline_id: int, **fields: Any) -> dict:
        with self.lock:
            self.pipelines[pipeline_id].update(fields)
        return self.pipelines[pipeline_id]

    def put_job(self, job: dict) -> dict:
        with self.lock:
            self.jobs[int(job["id"])] = job
        return job

    def retry_job(self, job_id: int, **fields: Any) -> dict:
        """GitLab's "Retry": a copy of the job with a new id (the old one is now retried),
        changed by `fields` (e.g. status, started_at, finished_at)."""
        with self.lock:
            new = copy.deepcopy(self.jobs[job_id])
            new["id"] = 1 + max(self.jobs)
            new.update(fields)
            self.jobs[new["id"]] = new
        return new

    def put_deployment(self, deployment: dict) -> dict:
        with self.lock:
            self.deployments[int(deployment["id"])] = deployment
        return deployment

    def put_merge_request(self, merge_request: dict, commits: list[dict] | None = None) -> dict:
        with self.lock:
            iid = int(merge_request["iid"])
            self.merge_requests[iid] = merge_request
            if commits is not None:
                self.merge_request_commits[iid] = list(commits)
                for commit in commits:
                    self.commits.setdefault(commit["id"], commit)
        return merge_request

    def put_commit(self, commit: dict, *, branch: str | None = None) -> dict:
        with self.lock:
            self.commits[commit["id"]] = commit
            if branch is not None:
                self.branches[branch] = commit["id"]
        return commit

    def retried_job_ids(self) -> set[int]:
        latest: dict[tuple[int | None, str], int] = {}
        for job in self.jobs.values():
            key = ((job.get("pipeline") or {}).get("id"), job.get("name"))
            latest[key] = max(latest.get(key, 0), int(job["id"]))
        return {
            int(j["id"])
            for j in self.jobs.values()
            if int(j["id"]) != latest[((j.get("pipeline") or {}).get("id"), j.get("name"))]
        }


def _sort_key(value: Any) -> tuple:
    """Sorts None first, then numbers or ISO times as such, then strings."""
    if value is None:
        return (0, 0.0, "")
    if isinstance(value, int | float):
        return (1, float(value), "")
    try:
        return (1, epoch(value), "")
    except (TypeError, ValueError):
        return (2, 0.0, str(value))


class FakeGitLab(FakeApi):
    """The fake GitLab API; `url` ends in `/api/v4`, `origin` is the host alone.
    `add_project()` / `project(id or path)` give a project's data."""

    provider = "gitlab"
    base_path = "/api/v4"
    default_rate_limit = 2000
    default_rate_window_s = 60.0
    secondary_status = 429

    def __init__(self, *, token: str | None = None, latency_s: float = 0.0) -> None:
        super().__init__(token=token, latency_s=latency_s)
        self.projects: dict[int, GitLabProjectData] = {}

    def add_project(
        self,
        project_id: int,
        path_with_namespace: str,
        project: dict | None = None,
        *,
        default_branch: str = "main",
    ) -> GitLabProjectData:
        """The project's data (created empty on first use, with `project` as its object)."""
        if project_id not in self.projects:
            data = GitLabProjectData(
                project
                or project_object(project_id, path_with_namespace, default_branch=default_branch)
            )
            data.lock = self.lock
            self.projects[project_id] = data
        return self.projects[project_id]

    def project(self, id_or_path: int | str) -> GitLabProjectData:
        found = self._project_of(str(id_or_path))
        if found is None:
            raise KeyError(id_or_path)
        return found

    def _project_of(self, ref: str) -> GitLabProjectData | None:
        if ref.isdigit():
            return self.projects.get(int(ref))
        for data in self.projects.values():
            if data.project.get("path_with_namespace", "").lower() == ref.lower():
                return data
        return None

    # ---- provider conventions -------------------------------------------------------------------
    def authorized(self, headers: dict[str, str]) -> bool:
        credential = headers.get("private-token", "").strip()
        if not credential:
            bearer = headers.get("authorization", "").strip()
            credential = bearer.split()[-1] if bearer.lower().startswith("bearer ") else ""
        return bool(credential) and (self.token is None or credential == self.token)

    def unauthorized(self) -> Answer:
        return Answer(401, {"message": "401 Unauthorized"})

    def not_found(self, what: str = "Not found") -> Answer:
        return Answer(404, {"message": f"404 {what}"})

    def rate_headers(self) -> dict[str, str]:
        remaining = max(self.rate_remaining or 0, 0)
        return {
            "RateLimit-Limit": str(self.rate_limit),
            "RateLimit-Observed": str(self.rate_limit - remaining),
            "RateLimit-Remaining": str(remaining),
            "RateLimit-Reset": str(self.rate_reset),
            "RateLimit-ResetTime": formatdate(self.rate_reset or 0, usegmt=True),
        }

    def rate_limited(self) -> Answer:
        wait = max(0, int((self.rate_reset or 0) - time.time()) + 1)
        return Answer(429, text="Retry later\n", headers={"Retry-After": str(wait)})

    def secondary_limited(self) -> Answer:
        return Answer(
            429, text="Retry later\n", headers={"Retry-After": str(self.secondary_retry_after_s)}
        )

    # ---- routing --------------------------------------------------------------------------------
    def route(self, segments: list[str], query: Query, record: RequestRecord) -> Answer:
        if len(segments) < 2 or segments[0] != "projects":
            return self.not_found()
        data = self._project_of(segments[1])
        if data is None:
            return self.not_found("Project Not Found")
        rest = segments[2:]
        base = self.origin + record.path  # GitLab's links repeat the path as requested
        match rest:
            case []:
                return Answer(200, data.project)
            case ["pipelines"]:
                return self._pipelines(data, query, base)
            case ["pipelines", pid] if pid.isdigit():
                found = data.pipelines.get(int(pid))
                return Answer(200, found) if found else self.not_found()
            case ["pipelines", pid, "jobs"] if pid.isdigit():
                return self._pipeline_jobs(data, int(pid), query, base)
            case ["jobs"]:
                return self._jobs(data, list(data.jobs.values()), query, base)
            case ["jobs", job_id] if job_id.isdigit():
                found = data.jobs.get(int(job_id))
                return Answer(200, found) if found else self.not_found()
            case ["deployments"]:
                return self._deployments(data, query, base)
            case ["deployments", dep_id] if dep_id.isdigit():
                found = data.deployments.get(int(dep_id))
                return Answer(200, found) if found else self.not_found()
            case ["merge_requests"]:
                return self._merge_requests(data, query, base)
            case ["merge_requests", iid] if iid.isdigit():
                found = data.merge_requests.get(int(iid))
                return Answer(200, found) if found else self.not_found()
            case ["merge_requests", iid, "commits"] if iid.isdigit():
                if int(iid) not in data.merge_requests:
                    return self.not_found()
                return self._listing(data.merge_request_commits.get(int(iid), []), query, base)
            case ["repository", "commits"]:
                return self._commits(data, query, base)
            case ["repository", "commits", sha]:
                found = data.commits.get(data.branches.get(sha, sha))
                return Answer(200, found) if found else self.not_found("Commit Not Found")
        return self.not_found()

    def _listing(self, items: list, query: Query, base: str) -> Answer:
        page = page_of(items, query, default_per_page=20, max_per_page=100)
        counted = len(items) <= 10_000
        rels = ("prev", "next", "first", "last") if counted else ("prev", "next", "first")
        headers = {
            "X-Page": str(page.page),
            "X-Per-Page": str(page.per_page),
            "X-Next-Page": str(page.page + 1) if page.page < page.last else "",
            "X-Prev-Page": str(page.page - 1) if page.page > 1 else "",
        }
        if counted:
            headers["X-Total"] = str(len(items))
            headers["X-Total-Pages"] = str(page.last)
        link = link_header(base, query, page, rels)
        if link:
            headers["Link"] = link
        return Answer(200, page.items, headers)

    @staticmethod
    def _window(query: Query, name: str) -> tuple[float | None, float | None]:
        return (
            epoch_or_none(query.get(f"{name}_after")),
            epoch_or_none(query.get(f"{name}_before")),
        )

    @staticmethod
    def _ordered(items: list[dict], query: Query, *, default_by: str, default_sort: str) -> list:
        by = query.get("order_by", default_by)
        descending = query.get("sort", default_sort) == "desc"
        return sorted(
            items, key=lambda o: (_sort_key(o.get(by)), int(o.get("id") or 0)), reverse=descending
        )

    def _pipelines(self, data: GitLabProjectData, query: Query, base: str) -> Answer:
        try:
            after, before = self._window(query, "updated")
        except ValueError:
            return Answer(400, {"error": "updated_after, updated_before are invalid"})
        chosen = []
        for pipeline in data.pipelines.values():
            updated = epoch_or_none(pipeline.get("updated_at"))
            if after is not None and (updated is None or updated <= after):
                continue
            if before is not None and (updated is None or updated >= before):
                continue
            if any(
                query.get(name) and str(pipeline.get(name)) != query.get(name)
                for name in ("status", "ref", "sha", "source")
            ):
                continue
            chosen.append({k: pipeline.get(k) for k in PIPELINE_LIST_FIELDS})
        ordered = self._ordered(chosen, query, default_by="id", default_sort="desc")
        return self._listing(ordered, query, base)

    def _jobs(self, data: GitLabProjectData, jobs: list[dict], query: Query, base: str) -> Answer:
        scope = set(query.all("scope[]") + query.all("scope"))
        chosen = [j for j in jobs if not scope or j.get("status") in scope]
        chosen.sort(key=lambda j: int(j["id"]), reverse=True)
        return self._listing(chosen, query, base)

    def _pipeline_jobs(
        self, data: GitLabProjectData, pipeline_id: int, query: Query, base: str
    ) -> Answer:
        jobs = [j for j in data.jobs.values() if (j.get("pipeline") or {}).get("id") == pipeline_id]
        if pipeline_id not in data.pipelines and not jobs:
            return self.not_found()
        if query.get("include_retried", "false").lower() != "true":
            retried = data.retried_job_ids()
            jobs = [j for j in jobs if int(j["id"]) not in retried]
        return self._jobs(data, jobs, query, base)

    def _deployments(self, data: GitLabProjectData, query: Query, base: str) -> Answer:
        try:
            after, before = self._window(query, "updated")
        except ValueError:
            return Answer(400, {"error": "updated_after, updated_before are invalid"})
        if (after is not None or before is not None) and query.get("order_by") != "updated_at":
            return Answer(400, {"message": "400 Bad request - `updated_at` filter requires "
                                "`updated_at` sort"})  # fmt: skip
        chosen = []
        for deployment in data.deployments.values():
            updated = epoch_or_none(deployment.get("updated_at"))
            if after is not None and (updated is None or updated <= after):
                continue
            if before is not None and (updated is None or updated >= before):
                continue
            environment = (deployment.get("environment") or {}).get("name")
            if query.get("environment") and environment != query.get("environment"):
                continue
            if query.get("status") and deployment.get("status") != query.get("status"):
                continue
            chosen.append(deployment)
        ordered = self._ordered(chosen, query, default_by="id", default_sort="asc")
        return self._listing(ordered, query, base)

    def _merge_requests(self, data: GitLabProjectData, query: Query, base: str) -> Answer:
        state = query.get("state", "all")
        try:
            updated = self._window(query, "updated")
            created = self._window(query, "created")
        except ValueError:
            return Answer(400, {"error": "a date parameter is invalid"})
        chosen = []
        for mr in data.merge_requests.values():
            if state != "all" and mr.get("state") != state:
                continue
            if query.get("target_branch") and mr.get("target_branch") != query.get("target_branch"):
                continue
            # GitLab: "updated on or after" / "on or before" (both ends included).
            if not _within(mr.get("updated_at"), *updated) or not _within(
                mr.get("created_at"), *created
            ):
                continue
            chosen.append(mr)
        ordered = self._ordered(chosen, query, default_by="created_at", default_sort="desc")
        return self._listing(ordered, query, base)

    def _commits(self, data: GitLabProjectData, query: Query, base: str) -> Answer:
        if query.get("all", "false").lower() == "true":
            reachable = list(data.commits.values())
        else:
            ref = query.get("ref_name") or data.project.get("default_branch") or "main"
            head = data.branches.get(ref, ref if ref in data.commits else None)
            if head is None:
                if not data.commits:
                    return self._listing([], query, base)
                return self.not_found("Reference Not Found")
            reachable, stack, seen = [], [head], set()
            while stack:
                sha = stack.pop()
                if sha in seen or sha not in data.commits:
                    continue
                seen.add(sha)
                reachable.append(data.commits[sha])
                stack.extend(data.commits[sha].get("parent_ids") or [])
        try:
            low, high = epoch_or_none(query.get("since")), epoch_or_none(query.get("until"))
        except ValueError:
            return Answer(400, {"error": "since, until are invalid"})
        chosen = [c for c in reachable if _within(c.get("committed_date"), low, high)]
        chosen.sort(key=lambda c: epoch(c["committed_date"]), reverse=True)
        return self._listing(chosen, query, base)


def _within(value: str | None, low: float | None, high: float | None) -> bool:
    if low is None and high is None:
        return True
    if not value:
        return False
    at = epoch(value)
    return (low is None or at >= low) and (high is None or at <= high)
