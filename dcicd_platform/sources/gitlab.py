"""GitLab's REST API (v4) into envelopes: pipelines with their jobs (retried ones included),
deployments, merge requests with their commits, and the default branch's commits.

Every listing is asked from its watermark (`ops.import_state`): pipelines, deployments and
merge requests by `updated_after` in update order, commits by `since`; a pipeline's details
and jobs, and a merge request's commits, only when the object changed since the last import.
The mapping to GitLab's webhook shapes is `gitlab_objects`. GitLab answers lists with `Link`
headers, which the client follows; the base URL includes `/api/v4` (self-managed GitLab:
`https://HOST/api/v4`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import quote

from dcicd_platform.sources import gitlab_objects as objects
from dcicd_platform.sources.http import ApiError
from dcicd_platform.sources.scope_import import ScopeImport
from dcicd_platform.sources.windows import iso

SOURCE = "gitlab"
PER_PAGE = 100
# Resume a listing a little before its watermark: GitLab compares `updated_after` strictly,
# and objects updated in the same instant may straddle two pages. What is read twice is a
# duplicate; nothing is skipped.
OVERLAP = timedelta(seconds=1)


def token_headers(token: str) -> dict[str, str]:
    """GitLab's REST authentication (GitLab Docs, "REST API authentication")."""
    return {"PRIVATE-TOKEN": token}


def _before(watermark: str) -> str:
    moment = datetime.fromisoformat(watermark.replace("Z", "+00:00"))
    return iso(moment - OVERLAP)


@dataclass
class ProjectImport(ScopeImport):
    """One project's import (`group/project`, subgroups included)."""

    _merge_requests: dict[int, dict | None] = field(default_factory=dict)

    def run(self) -> Counter:
        project = self.client.get(self._path("")).data
        self._merge_requests_and_commits(project)
        self._pipelines(project)
        self._deployments(project)
        if project.get("default_branch"):
            self._branch_commits(project, project["default_branch"])
        return self.counts

    # -- helpers -----------------------------------------------------------------------------

    def _path(self, tail: str) -> str:
        return f"/projects/{quote(self.scope, safe='')}{tail}"

    def _all(self, tail: str, params: dict | None = None) -> list[dict]:
        found: list[dict] = []
        for page in self.client.pages(self._path(tail), {"per_page": PER_PAGE, **(params or {})}):
            found += page.data
        return found

    def _updated(self, key: str, tail: str, land_one: Callable[[dict, list], list[dict]]):
        """Read a listing in update order from its watermark, page by page, landing each page
        with the watermark it reached (a listing killed midway resumes from its last page)."""
        known = self.state.get(key)
        watermark = known.watermark if known and known.watermark else iso(self.since)
        seen = known.objects if known else 0
        params = {
            "updated_after": _before(watermark),
            "order_by": "updated_at",
            "sort": "asc",
            "per_page": PER_PAGE,
        }
        for page in self.client.pages(self._path(tail), params):
            envelopes: list[dict] = []
            puts: list[tuple] = []
            for item in page.data:
                envelopes += land_one(item, puts)
                if item.get("updated_at"):
                    watermark = max(watermark, iso_of(item["updated_at"]))
            seen += len(page.data)
            self._land(envelopes, [*puts, (key, watermark, None, seen)])

    # -- merge requests ----------------------------------------------------------------------

    def _merge_requests_and_commits(self, project: dict) -> None:
        def one(mr: dict, puts: list) -> list[dict]:
            self._merge_requests[mr["iid"]] = mr
            key = f"merge request {mr['iid']}"
            known = self.state.get(key)
            if known and known.watermark == mr.get("updated_at"):
                return []
            commits = self._all(f"/merge_requests/{mr['iid']}/commits")
            self.counts["merge requests"] += 1
            self.counts["merge request commits"] += len(commits)
            puts.append((key, mr.get("updated_at"), None, len(commits)))
            return [objects.merge_request_envelope(project, mr)] + [
                objects.commit_envelope(project, c, merge_request_iid=mr["iid"]) for c in commits
            ]

        self._updated("merge requests", "/merge_requests", one)

    def _merge_request(self, iid: int | None) -> dict | None:
        """The merge request a merge request pipeline ran for (None when GitLab has none)."""
        if iid is None:
            return None
        if iid not in self._merge_requests:
            try:
                self._merge_requests[iid] = self.client.get(
                    self._path(f"/merge_requests/{iid}")
                ).data
            except ApiError as exc:
                if exc.status != 404:
                    raise
                self._merge_requests[iid] = None
        return self._merge_requests[iid]

    # -- pipelines and jobs ------------------------------------------------------------------

    def _pipelines(self, project: dict) -> None:
        def one(item: dict, puts: list) -> list[dict]:
            key = f"pipeline {item['id']}"
            known = self.state.get(key)
            if known and item.get("updated_at") and known.watermark == item["updated_at"]:
                self.counts["pipelines unchanged"] += 1
                return []
            # The list item lacks finished_at, duration and queued_duration: ask for the whole.
            pipeline = self.client.get(self._path(f"/pipelines/{item['id']}")).data
            jobs = self._all(f"/pipelines/{item['id']}/jobs", {"include_retried": "true"})
            merge_request = self._merge_request(objects.merge_request_iid(pipeline.get("ref")))
            self.counts["pipelines"] += 1
            self.counts["jobs"] += len(jobs)
            puts.append(
                (key, pipeline.get("updated_at") or item.get("updated_at"), None, len(jobs))
            )
            return [objects.pipeline_envelope(project, pipeline, jobs, merge_request)] + [
                objects.job_envelope(project, job) for job in jobs
            ]

        self._updated("pipelines", "/pipelines", one)

    # -- deployments -------------------------------------------------------------------------

    def _deployments(self, project: dict) -> None:
        def one(deployment: dict, puts: list) -> list[dict]:
            self.counts["deployments"] += 1
            return [objects.deployment_envelope(project, deployment)]

        self._updated("deployments", "/deployments", one)

    # -- commits -----------------------------------------------------------------------------

    def _branch_commits(self, project: dict, branch: str) -> None:
        key = f"commits of {branch}"
        known = self.state.get(key)
        since = known.watermark if known and known.watermark else iso(self.since)
        found = known.objects if known else 0
        params = {"ref_name": branch, "since": since, "per_page": PER_PAGE}
        newest = since
        try:
            for page in self.client.pages(self._path("/repository/commits"), params):
                commits = page.data
                self.counts["commits"] += len(commits)
                found += len(commits)
                newest = max([newest, *(iso_of(c["committed_date"]) for c in commits)])
                self._land(
                    [objects.commit_envelope(project, c, branch=branch) for c in commits], []
                )
        except ApiError as exc:
            if exc.status != 404:
                raise
            # An empty repository, or a default branch GitLab no longer has: no history.
            self.counts["listings unavailable"] += 1
            return
        # Commits land newest first: the watermark moves only once the whole listing is read.
        self._land([], [(key, newest, None, found)])


def iso_of(text: str) -> str:
    """An API time (any offset) in the watermark's spelling (UTC, to the second)."""
    return iso(datetime.fromisoformat(text.replace("Z", "+00:00")))


import_project = ProjectImport.import_scope
