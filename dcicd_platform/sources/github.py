"""GitHub's REST API into envelopes: workflow runs (every attempt) and their jobs, deployments
and their statuses, the default branch's commits and each deployed sha's ancestors, pull
requests with their reviews and commits, and issues labelled `incident`.

Each listing is asked only for what may have changed: run windows older than the re-run
horizon once, newer pages conditionally (ETag), a run's jobs only when the run changed,
pull requests, issues and commits from the last watermark (`ops.import_state`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from dcicd_platform.sources.envelopes import import_envelope
from dcicd_platform.sources.http import ApiClient, ApiError, pages_needed
from dcicd_platform.sources.scope_import import ScopeImport
from dcicd_platform.sources.windows import created_filter, iso, month_windows, split

SOURCE = "github"
PER_PAGE = 100
RESULT_CAP = 1000  # GitHub returns at most 1,000 results of a filtered listing
# GitHub lets a run be re-run up to 30 days after it ran (GitHub Docs, "Re-running workflows
# and jobs"); a window of runs created before this horizon no longer changes.
RERUN_HORIZON = timedelta(days=35)
QUEUED = {"queued", "requested", "waiting", "pending"}
MOVE_AFTER_PAGES = 10  # a `since` listing longer than this moves its `since` forward


def token_headers(token: str) -> dict[str, str]:
    """GitHub's REST headers (GitHub Docs, "Getting started with the REST API")."""
    return {
        "Authorization": f"Bearer {token}",
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": "2022-11-28",
    }


def run_envelope(run: dict, repository: dict) -> dict:
    """A workflow run attempt as the `workflow_run` webhook carries it."""
    status = run.get("status")
    action = (
        "completed"
        if status == "completed"
        else "requested"
        if status in QUEUED
        else ("in_progress")
    )
    payload = {
        "action": action,
        "workflow_run": run,
        "repository": {**(run.get("repository") or {}), **repository},
        "workflow": {"name": run.get("name"), "path": run.get("path")},
    }
    attempt = run.get("run_attempt") or 1
    return import_envelope(
        SOURCE, "workflow_run", f"{run['id']}/{attempt}", run["updated_at"],
        run["updated_at"], payload,
    )  # fmt: skip


def job_envelope(job: dict, repository: dict) -> dict:
    """A job as the `workflow_job` webhook carries it; its state is its status and end."""
    status = job.get("status")
    action = (
        "completed" if status == "completed" else "queued" if status in QUEUED else ("in_progress")
    )
    at = job.get("completed_at") or job.get("started_at") or job.get("created_at")
    return import_envelope(
        SOURCE, "workflow_job", str(job["id"]), f"{status}:{job.get('completed_at')}", at,
        {"action": action, "workflow_job": job, "repository": repository},
    )  # fmt: skip


def deployment_status_envelope(deployment: dict, status: dict, repository: dict) -> dict:
    payload = {
        "action": "created",
        "deployment": deployment,
        "deployment_status": status,
        "repository": repository,
    }
    at = status.get("updated_at") or status["created_at"]
    return import_envelope(SOURCE, "deployment_status", str(status["id"]), at, at, payload)


def commit_envelope(
    commit: dict, repository: dict, branch: str | None, pull_request: int | None
) -> dict:
    """A commit with its parents (the `commit` event type exists only for imports)."""
    where = branch if branch is not None else f"pull/{pull_request}"
    payload = {
        "repository": repository,
        "branch": branch,
        "pull_request": pull_request,
        "commit": commit,
    }
    at = ((commit.get("commit") or {}).get("committer") or {}).get("date")
    return import_envelope(
        SOURCE, "commit", f"{repository['full_name']}@{commit['sha']}", where, at, payload
    )


def pull_request_envelope(pull: dict, repository: dict) -> dict:
    payload = {
        "action": "closed" if pull.get("state") == "closed" else "opened",
        "number": pull["number"],
        "pull_request": pull,
        "repository": repository,
    }
    return import_envelope(
        SOURCE, "pull_request", str(pull["id"]), pull["updated_at"], pull["updated_at"], payload
    )


def review_envelope(review: dict, pull: dict, repository: dict) -> dict:
    payload = {
        "action": "submitted",
        "review": review,
        "pull_request": {k: pull.get(k) for k in ("id", "number", "user", "head", "base")},
        "repository": repository,
    }
    at = review.get("submitted_at") or pull["updated_at"]
    return import_envelope(SOURCE, "pull_request_review", str(review["id"]), at, at, payload)


def issue_envelope(issue: dict, repository: dict) -> dict:
    payload = {
        "action": "closed" if issue.get("state") == "closed" else "opened",
        "issue": issue,
        "repository": repository,
    }
    return import_envelope(
        SOURCE, "issues", str(issue["id"]), issue["updated_at"], issue["updated_at"], payload
    )


@dataclass
class RepositoryImport(ScopeImport):
    """One repository's import (`owner/name`)."""

    # Ask each new commit's files (one request a commit): a repository whose services name
    # paths needs them to tell whose changes its commits are; the listings omit them.
    commit_files: bool = False
    _deployed: list[str] = field(default_factory=list)
    _commits: set[str] = field(default_factory=set)

    def run(self) -> Counter:
        repository = self._repository()
        self._runs(repository)
        self._deployments(repository)
        self._commits_of(repository, repository["default_branch"])
        self._deployed_ancestors(repository)
        self._pull_requests(repository)
        self._incident_issues(repository)
        return self.counts

    # -- helpers -----------------------------------------------------------------------------

    def _path(self, tail: str) -> str:
        return f"/repos/{self.scope}{tail}"

    def _all(self, tail: str, params: dict | None = None, key: str | None = None) -> list:
        """Every object of a listing (list answers, or `key` inside object answers)."""
        found = []
        for page in self.client.pages(self._path(tail), {"per_page": PER_PAGE, **(params or {})}):
            found += page.data[key] if key else page.data
        return found

    def _repository(self) -> dict:
        import json

        known = self.state.get("repository")
        page = self.client.get(self._path(""), etag=known and known.etag)
        if page.status == 304:
            return json.loads(known.watermark)
        data = page.data
        repository = {
            "id": data.get("id"),
            "full_name": data.get("full_name") or self.scope,
            "name": data.get("name"),
            "default_branch": data.get("default_branch") or "main",
            "html_url": data.get("html_url"),
        }
        self._land([], [("repository", json.dumps(repository), page.etag, 1)])
        return repository

    # -- workflow runs -----------------------------------------------------------------------

    def _runs(self, repository: dict) -> None:
        for start, end in month_windows(self.since, self.now):
            self._runs_window(repository, max(start, self.since), end)

    def _runs_window(self, repository: dict, start: datetime, end: datetime) -> None:
        key = f"runs created {created_filter(start, end)}"
        known = self.state.get(key)
        settled = end <= self.now - RERUN_HORIZON
        if known and settled and known.watermark in ("complete", "split"):
            if known.watermark == "split":
                for part in split(start, end):
                    self._runs_window(repository, *part)
            else:
                self.counts["run windows complete before"] += 1
            return
        params = {"created": created_filter(start, end), "per_page": PER_PAGE}
        first = self._runs_page(key, params, 1)
        # The window's size is on its first page; unchanged (304), it is what that page said
        # when it was read, which its state row keeps (a window read only in part included).
        total = (
            first.data["total_count"]
            if first.status == 200
            else self.state.get(f"{key} page 1").objects
        )
        if total >= RESULT_CAP and end - start > timedelta(seconds=2):
            self._land(
                [], [(key, "split", None, total), (f"{key} page 1", None, first.etag, total)]
            )
            for part in split(start, end):
                self._runs_window(repository, *part)
            return
        self._land_runs(repository, key, 1, first)
        for number in range(2, pages_needed(min(total, RESULT_CAP), PER_PAGE) + 1):
            self._land_runs(repository, key, number, self._runs_page(key, params, number))
        self._land([], [(key, "complete", None, total)])

    def _runs_page(self, key: str, params: dict, number: int):
        known = self.state.get(f"{key} page {number}")
        return self.client.get(
            self._path("/actions/runs"), {**params, "page": number}, etag=known and known.etag
        )

    def _land_runs(self, repository: dict, key: str, number: int, page) -> None:
        if page.status == 304:
            self.counts["pages not modified"] += 1
            return
        envelopes, puts = [], []
        runs = page.data["workflow_runs"]
        for run in runs:
            envelopes += self._run_and_jobs(run, repository, puts)
        # The first page's row keeps the window's size, the others their own.
        size = page.data["total_count"] if number == 1 else len(runs)
        puts.append((f"{key} page {number}", None, page.etag, size))
        self._land(envelopes, puts)

    def _run_and_jobs(self, run: dict, repository: dict, puts: list) -> list[dict]:
        run_id, attempt = run["id"], run.get("run_attempt") or 1
        envelopes = [run_envelope(run, repository)]
        self.counts["workflow runs"] += 1
        attempts_key = f"attempts of run {run_id}"
        known = self.state.get(attempts_key)
        if attempt > 1 and (known is None or known.watermark != str(attempt)):
            for number in range(1, attempt):
                try:
                    earlier = self.client.get(
                        self._path(f"/actions/runs/{run_id}/attempts/{number}")
                    )
                except ApiError as exc:
                    if exc.status != 404:
                        raise
                    continue  # an attempt GitHub no longer keeps
                envelopes.append(run_envelope(earlier.data, repository))
                self.counts["earlier attempts"] += 1
            puts.append((attempts_key, str(attempt), None, attempt - 1))
        jobs_key = f"jobs of run {run_id}"
        stamp = f"{attempt}:{run['updated_at']}"
        known = self.state.get(jobs_key)
        if known is None or known.watermark != stamp:
            jobs = self._all(f"/actions/runs/{run_id}/jobs", {"filter": "all"}, key="jobs")
            envelopes += [job_envelope(job, repository) for job in jobs]
            self.counts["jobs"] += len(jobs)
            puts.append((jobs_key, stamp, None, len(jobs)))
        return envelopes

    # -- deployments -------------------------------------------------------------------------

    def _deployments(self, repository: dict) -> None:
        number = 1
        while True:
            key = f"deployments page {number}"
            known = self.state.get(key)
            page = self.client.get(
                self._path("/deployments"),
                {"per_page": PER_PAGE, "page": number},
                etag=known and known.etag,
            )
            if page.status == 304:
                self.counts["pages not modified"] += 1
                size = known.objects
            else:
                deployments = page.data
                size = len(deployments)
                envelopes, puts = [], [(key, None, page.etag, size)]
                for deployment in deployments:
                    if deployment["created_at"] < iso(self.since):
                        continue
                    envelopes += self._statuses(deployment, repository, puts)
                self._land(envelopes, puts)
                if deployments and deployments[-1]["created_at"] < iso(self.since):
                    return
            if size < PER_PAGE:
                return
            number += 1

    def _statuses(self, deployment: dict, repository: dict, puts: list) -> list[dict]:
        self._deployed.append(deployment["sha"])
        self.counts["deployments"] += 1
        key = f"statuses of deployment {deployment['id']}"
        known = self.state.get(key)
        if known and known.watermark == deployment["updated_at"]:
            return []
        statuses = self._all(f"/deployments/{deployment['id']}/statuses")
        puts.append((key, deployment["updated_at"], None, len(statuses)))
        self.counts["deployment statuses"] += len(statuses)
        return [deployment_status_envelope(deployment, s, repository) for s in statuses]

    # -- commits -----------------------------------------------------------------------------

    def _since_listing(self, key: str, tail: str, params: dict, land_page) -> None:
        """A listing filtered by `since`, asked again with the same `since` and its ETag (a
        `304` when nothing is new); `since` moves on only when the listing grew past
        MOVE_AFTER_PAGES, with one request for the new URL's ETag."""
        known = self.state.get(key)
        asked = known.watermark if known and known.watermark else iso(self.since)
        etag, pages, newest = None, 0, asked
        base = {**params, "per_page": PER_PAGE}
        for page in self._pages(tail, {**base, "since": asked}, known and known.etag):
            if page.status == 304:
                self.counts["pages not modified"] += 1
                return
            pages += 1
            etag = etag or page.etag
            newest = max(newest, land_page(page.data) or newest)
        if pages > MOVE_AFTER_PAGES:
            asked, etag = newest, self.client.get(self._path(tail), {**base, "since": newest}).etag
        self._land([], [(key, asked, etag, pages)])

    def _with_files(self, commits: list[dict]) -> list[dict]:
        """The commits as `GET /commits/{sha}` gives them (with `files`), when they are asked."""
        if not self.commit_files:
            return commits
        self.counts["commits asked for their files"] += len(commits)
        return [self.client.get(self._path(f"/commits/{c['sha']}")).data for c in commits]

    def _commits_of(self, repository: dict, branch: str) -> None:
        def land(commits: list[dict]) -> str | None:
            commits = self._with_files(commits)
            self._land([commit_envelope(c, repository, branch, None) for c in commits], [])
            self._commits.update(c["sha"] for c in commits)
            self.counts["commits"] += len(commits)
            return max((c["commit"]["committer"]["date"] for c in commits), default=None)

        self._since_listing(f"commits of {branch}", "/commits", {"sha": branch}, land)

    def _pages(self, tail: str, params: dict, etag: str | None = None):
        """Pages of a listing; none for an empty repository (409), a ref GitHub no longer has
        (404: a deployed sha of a deleted branch) or a feature turned off (410: issues)."""
        try:
            yield from self.client.pages(self._path(tail), params, etag)
        except ApiError as exc:
            if exc.status not in (404, 409, 410):
                raise
            self.counts[f"{tail.strip('/')} listing unavailable (HTTP {exc.status})"] += 1

    def _deployed_ancestors(self, repository: dict) -> None:
        """Each deployed sha's history, for a sha not on the default branch's listing."""
        for sha in dict.fromkeys(self._deployed):
            key = f"ancestors of {sha}"
            if sha in self._commits or self.state.get(key):
                continue
            walked = 0
            for page in self._pages(
                "/commits", {"sha": sha, "since": iso(self.since), "per_page": PER_PAGE}
            ):
                fresh = [c for c in page.data if c["sha"] not in self._commits]
                self._commits.update(c["sha"] for c in page.data)
                walked += len(fresh)
                fresh = self._with_files(fresh)
                self._land([commit_envelope(c, repository, None, None) for c in fresh], [])
                if not fresh:
                    break  # the rest is history already known
            self.counts["commits"] += walked
            self._land([], [(key, sha, None, walked)])

    # -- pull requests and incidents ---------------------------------------------------------

    def _pull_requests(self, repository: dict) -> None:
        key = "pull requests"
        known = self.state.get(key)
        floor = max(iso(self.since), (known.watermark if known and known.watermark else ""))
        newest, first_etag = floor, None
        number = 1
        while True:
            page_key = f"pull requests page {number}"
            etag = self.state.get(page_key)
            page = self.client.get(
                self._path("/pulls"),
                {"state": "all", "sort": "updated", "direction": "desc", "per_page": PER_PAGE,
                 "page": number},
                etag=etag.etag if etag and number == 1 else None,
            )  # fmt: skip
            if page.status == 304:
                self.counts["pages not modified"] += 1
                return  # sorted by update: an unchanged first page means nothing is new
            envelopes, fresh = [], [p for p in page.data if p["updated_at"] > floor]
            for pull in fresh:
                envelopes.append(pull_request_envelope(pull, repository))
                reviews = self._all(f"/pulls/{pull['number']}/reviews")
                envelopes += [review_envelope(r, pull, repository) for r in reviews]
                commits = self._all(f"/pulls/{pull['number']}/commits")
                envelopes += [commit_envelope(c, repository, None, pull["number"]) for c in commits]
                self.counts["pull requests"] += 1
                self.counts["reviews"] += len(reviews)
                newest = max(newest, pull["updated_at"])
            if number == 1:
                first_etag = page.etag
            self._land(envelopes, [])
            if len(fresh) < len(page.data) or len(page.data) < PER_PAGE:
                break
            number += 1
        # Only now is the first page's ETag worth keeping: asked again unchanged, it says the
        # whole pass is still current (an interrupted pass leaves none, and is asked again).
        self._land(
            [],
            [
                (key, newest, None, self.counts["pull requests"]),
                ("pull requests page 1", None, first_etag, 0),
            ],
        )

    def _incident_issues(self, repository: dict) -> None:
        def land(items: list[dict]) -> str | None:
            issues = [i for i in items if "pull_request" not in i]
            self._land([issue_envelope(i, repository) for i in issues], [])
            self.counts["incident issues"] += len(issues)
            return max((i["updated_at"] for i in issues), default=None)

        params = {"labels": "incident", "state": "all", "sort": "updated", "direction": "desc"}
        self._since_listing("incident issues", "/issues", params, land)


import_repository = RepositoryImport.import_scope


def organisation_repositories(client: ApiClient, org: str) -> list[str]:
    """Every repository of an organisation (`owner/name`), archived ones left out."""
    found = []
    for page in client.pages(f"/orgs/{org}/repos", {"per_page": PER_PAGE, "type": "all"}):
        found += [r["full_name"] for r in page.data if not r.get("archived")]
    return found
