"""A fake GitHub REST API (paths as on api.github.com) over in-memory repositories.

Served: `GET /repos/{o}/{r}` and, as GitHub's own `Link` headers point to them,
`/repositories/{id}/...`; workflow runs (`actions/runs` with `created`, `status`, `event`,
`branch`, `head_sha` filters, newest first, the 1,000-result cap), one run, its attempts, its
jobs (`filter=latest|all`), one job; deployments and their statuses; commits (`sha`, `since`,
`until`, walking the parents) and one commit; pull requests (`state`, `sort`, `direction`), their
reviews and commits; issues (`labels`, `state`, `since`, `sort`, `direction`); `/rate_limit`.

Behaviour as GitHub documents it: `per_page` defaults to 30, at most 100; `Link` with prev, next,
last and first as absolute URLs on `/repositories/{id}/...`; a list of runs filtered by `actor`,
`branch`, `check_suite_id`, `created`, `event`, `head_sha` or `status` returns at most 1,000 runs
(`total_count` still counts them all; pages past the cap are empty and `last` stops at it; set
`runs_result_cap_unfiltered` to cap unfiltered lists too); `X-RateLimit-Limit/Remaining/Reset/
Used/Resource` on every answer; an exhausted budget answers 403 "API rate limit exceeded" with
Remaining 0 until the reset epoch; the secondary limit answers 403 with `Retry-After`.

`GitHubRepoData` holds one repository's objects, in the API's own shapes; tests fill and mutate
it between imports through its methods (`put_run`, `rerun`, `update_run`, `put_job`, ...).
"""

from __future__ import annotations

import copy
import re
import threading
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tests.fake_apis.server import Answer, FakeApi, Query, RequestRecord, link_header, page_of
from tests.fake_apis.times import epoch

API = "https://api.github.com"
RUN_FILTERS = ("actor", "branch", "check_suite_id", "created", "event", "head_sha", "status")
COMPLETED_CONCLUSIONS = {
    "success", "failure", "neutral", "cancelled", "skipped", "timed_out", "action_required",
    "stale", "startup_failure",
}  # fmt: skip


def repo_object(
    full_name: str, *, default_branch: str = "main", repo_id: int | None = None
) -> dict:
    """A minimal repository object as `GET /repos/{o}/{r}` shapes it, for data sets that carry
    none. Without `repo_id`, a stable id derived from the name."""
    owner, name = full_name.split("/", 1)
    return {
        "id": repo_id if repo_id is not None else zlib.crc32(full_name.encode()),
        "name": name,
        "full_name": full_name,
        "owner": {"login": owner},
        "private": False,
        "html_url": f"https://github.com/{full_name}",
        "default_branch": default_branch,
    }


def commit_object(
    full_name: str,
    sha: str,
    *,
    parents: list[str],
    date: str,
    message: str = "",
    author: str = "person",
) -> dict:
    """A commit as `GET /repos/{o}/{r}/commits` shapes it (sha, commit{author, committer,
    message}, parents[{sha}]), for tests that build a commit graph."""
    person = {"name": author, "email": "person@example.com", "date": date}
    return {
        "sha": sha,
        "commit": {"author": dict(person), "committer": dict(person), "message": message},
        "url": f"{API}/repos/{full_name}/commits/{sha}",
        "author": {"login": author},
        "committer": {"login": author},
        "parents": [{"sha": p, "url": f"{API}/repos/{full_name}/commits/{p}"} for p in parents],
    }


@dataclass
class GitHubRepoData:
    """One repository's objects. `runs[run_id][attempt]` is the run object of that attempt;
    `jobs[run_id][job_id]` a job (of any attempt, by its own `run_attempt`);
    `deployment_statuses[deployment_id]` oldest first; `branches[name]` the head sha;
    `pull_commits`/`pull_reviews` by pull number, in the API's order."""

    repo: dict
    runs: dict[int, dict[int, dict]] = field(default_factory=dict)
    jobs: dict[int, dict[int, dict]] = field(default_factory=dict)
    deployments: dict[int, dict] = field(default_factory=dict)
    deployment_statuses: dict[int, list[dict]] = field(default_factory=dict)
    commits: dict[str, dict] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    pulls: dict[int, dict] = field(default_factory=dict)
    pull_reviews: dict[int, list[dict]] = field(default_factory=dict)
    pull_commits: dict[int, list[dict]] = field(default_factory=dict)
    issues: dict[int, dict] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    @property
    def full_name(self) -> str:
        return self.repo["full_name"]

    # ---- runs and jobs ------------------------------------------------------------------------
    def put_run(self, run: dict) -> dict:
        """Add or replace the attempt `run["run_attempt"]` of run `run["id"]`."""
        with self.lock:
            self.runs.setdefault(int(run["id"]), {})[int(run.get("run_attempt") or 1)] = run
        return run

    def latest_attempt(self, run_id: int) -> dict | None:
        attempts = self.runs.get(run_id)
        return attempts[max(attempts)] if attempts else None

    def update_run(self, run_id: int, attempt: int | None = None, **fields: Any) -> dict:
        """Change fields of an attempt (the latest by default), e.g. `updated_at=...`."""
        with self.lock:
            attempts = self.runs[run_id]
            run = attempts[attempt if attempt is not None else max(attempts)]
            run.update(fields)
        return run

    def remove_run(self, run_id: int) -> None:
        """Forget a run and its jobs (a run deleted on GitHub)."""
        with self.lock:
            self.runs.pop(run_id, None)
            self.jobs.pop(run_id, None)

    def put_job(self, job: dict) -> dict:
        with self.lock:
            self.jobs.setdefault(int(job["run_id"]), {})[int(job["id"])] = job
        return job

    def update_job(self, job_id: int, **fields: Any) -> dict:
        with self.lock:
            job = self.job(job_id)
            if job is None:
                raise KeyError(job_id)
            job.update(fields)
        return job

    def job(self, job_id: int) -> dict | None:
        for jobs in self.jobs.values():
            if job_id in jobs:
                return jobs[job_id]
        return None

    def jobs_of(self, run_id: int, attempt: int | None = None) -> list[dict]:
        """The run's jobs, of one attempt or all, by attempt then id."""
        jobs = self.jobs.get(run_id, {}).values()
        chosen = [j for j in jobs if attempt is None or int(j.get("run_attempt") or 1) == attempt]
        return sorted(chosen, key=lambda j: (int(j.get("run_attempt") or 1), int(j["id"])))

    def rerun(
        self,
        run_id: int,
        *,
        started_at: str,
        completed_at: str | None = None,
        conclusion: str | None = "success",
    ) -> dict:
        """Re-run a run as GitHub's "Re-run all jobs" does: a new attempt n+1 (same id, number
        and created_at; `run_started_at` = started_at, `updated_at` = completed_at or started_at,
        `previous_attempt_url` to attempt n), the earlier attempts unchanged, and a copy of each
        job of attempt n with a new id, `run_attempt` n+1, started at started_at and, with
        completed_at, completed then with `conclusion` (else in progress). Returns the run."""
        with self.lock:
            previous = self.latest_attempt(run_id)
            if previous is None:
                raise KeyError(run_id)
            n = int(previous.get("run_attempt") or 1) + 1
            done = completed_at is not None
            run = copy.deepcopy(previous)
            run.update(
                run_attempt=n,
                run_started_at=started_at,
                updated_at=completed_at or started_at,
                status="completed" if done else "in_progress",
                conclusion=conclusion if done else None,
                previous_attempt_url=f"{API}/repos/{self.full_name}/actions/runs/{run_id}"
                f"/attempts/{n - 1}",
            )
            self.put_run(run)
            next_id = 1 + max((j for jobs in self.jobs.values() for j in jobs), default=0)
            for offset, job in enumerate(self.jobs_of(run_id, n - 1)):
                new = copy.deepcopy(job)
                new.update(
                    id=next_id + offset,
                    run_attempt=n,
                    status="completed" if done else "in_progress",
                    conclusion=conclusion if done else None,
                    started_at=started_at,
                    completed_at=completed_at,
                )
                self.put_job(new)
        return run

    # ---- deployments, commits, pulls, issues ------------------------------------------------
    def put_deployment(self, deployment: dict, statuses: list[dict] | None = None) -> dict:
        """Add a deployment; `statuses` oldest first (replace any it had)."""
        with self.lock:
            self.deployments[int(deployment["id"])] = deployment
            if statuses is not None:
                self.deployment_statuses[int(deployment["id"])] = list(statuses)
        return deployment

    def add_deployment_status(self, deployment_id: int, status: dict) -> dict:
        """A new status (the newest); the deployment's `updated_at` follows it, as on GitHub."""
        with self.lock:
            self.deployment_statuses.setdefault(deployment_id, []).append(status)
            self.deployments[deployment_id]["updated_at"] = status.get("updated_at")
        return status

    def put_commit(self, commit: dict, *, branch: str | None = None) -> dict:
        """Add a commit object; with `branch`, that branch now points at it."""
        with self.lock:
            self.commits[commit["sha"]] = commit
            if branch is not None:
                self.branches[branch] = commit["sha"]
        return commit

    def put_pull(
        self, pull: dict, *, reviews: list[dict] | None = None, commits: list[dict] | None = None
    ) -> dict:
        """Add a pull request; its reviews and commits in the API's order (commits also go
        into the repository's commits)."""
        with self.lock:
            number = int(pull["number"])
            self.pulls[number] = pull
            if reviews is not None:
                self.pull_reviews[number] = list(reviews)
            if commits is not None:
                self.pull_commits[number] = list(commits)
                for commit in commits:
                    self.commits.setdefault(commit["sha"], commit)
        return pull

    def put_issue(self, issue: dict) -> dict:
        with self.lock:
            self.issues[int(issue["number"])] = issue
        return issue


# ---- the `created` filter (GitHub's search syntax for dates) ----------------------------------
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class BadFilter(ValueError):
    pass


def _span(text: str) -> tuple[float, float]:
    """[start, end) of a date (the whole UTC day) or of a time (that second)."""
    text = text.strip()
    try:
        if _DATE.match(text):
            start = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC).timestamp()
            return start, start + 86400
        start = epoch(text)
    except ValueError as exc:
        raise BadFilter(text) from exc
    return start, start + 1


def created_window(expr: str) -> tuple[float | None, float | None]:
    """The [low, high) epoch window a `created` value selects: `A..B` (either may be `*`),
    `>=A`, `>A`, `<=B`, `<B` or `A`, each a date (YYYY-MM-DD, a whole UTC day) or a time
    (YYYY-MM-DDTHH:MM:SS with `Z` or an offset; none means UTC). BadFilter if unreadable."""
    expr = expr.strip()
    if ".." in expr:
        first, last = expr.split("..", 1)
        low = None if first.strip() == "*" else _span(first)[0]
        high = None if last.strip() == "*" else _span(last)[1]
        return low, high
    for prefix, pick in ((">=", (0, None)), ("<=", (None, 1)), (">", (1, None)), ("<", (None, 0))):
        if expr.startswith(prefix):
            span = _span(expr[len(prefix) :])
            low_i, high_i = pick
            return (
                None if low_i is None else span[low_i],
                None if high_i is None else span[high_i],
            )
    return _span(expr)


_RUN_FIELDS = {
    "event": lambda run: run.get("event"),
    "branch": lambda run: run.get("head_branch"),
    "head_sha": lambda run: run.get("head_sha"),
    "check_suite_id": lambda run: run.get("check_suite_id"),
    "actor": lambda run: (run.get("actor") or {}).get("login"),
}


class FakeGitHub(FakeApi):
    """The fake GitHub API. `add_repo()` / `repo(full_name)` give a repository's data;
    `runs_result_cap` (1000) is the cap of filtered run lists; `rate_limit_status` (403) the
    status of an exhausted budget (GitHub documents 403 or 429)."""

    provider = "github"
    default_rate_limit = 5000
    default_rate_window_s = 3600.0
    secondary_status = 403

    def __init__(self, *, token: str | None = None, latency_s: float = 0.0) -> None:
        super().__init__(token=token, latency_s=latency_s)
        self.repos: dict[str, GitHubRepoData] = {}
        self.runs_result_cap = 1000
        self.runs_result_cap_unfiltered = False
        self.rate_limit_status = 403

    # ---- data -----------------------------------------------------------------------------------
    def add_repo(
        self, full_name: str, repo: dict | None = None, *, default_branch: str = "main"
    ) -> GitHubRepoData:
        """The repository's data (created empty on first use, with `repo` as its object)."""
        key = full_name.lower()
        if key not in self.repos:
            data = GitHubRepoData(repo or repo_object(full_name, default_branch=default_branch))
            data.lock = self.lock
            self.repos[key] = data
        return self.repos[key]

    def repo(self, full_name: str) -> GitHubRepoData:
        return self.repos[full_name.lower()]

    # ---- provider conventions -------------------------------------------------------------------
    def rate_headers(self) -> dict[str, str]:
        remaining = max(self.rate_remaining or 0, 0)
        return {
            "X-RateLimit-Limit": str(self.rate_limit),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": str(self.rate_reset),
            "X-RateLimit-Used": str(self.rate_limit - remaining),
            "X-RateLimit-Resource": "core",
        }

    def unauthorized(self) -> Answer:
        return Answer(
            401,
            {
                "message": "Requires authentication",
                "documentation_url": "https://docs.github.com/rest",
                "status": "401",
            },
        )

    def rate_limited(self) -> Answer:
        return Answer(
            self.rate_limit_status,
            {
                "message": "API rate limit exceeded for user ID 1. If you reach out to GitHub "
                "Support for help, please include the request ID 0000:0000:0000000:0000000:"
                "00000000.",
                "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-"
                "rest-api",
                "status": str(self.rate_limit_status),
            },
        )

    def secondary_limited(self) -> Answer:
        return Answer(
            self.secondary_status,
            {
                "message": "You have exceeded a secondary rate limit. Please wait a few minutes "
                "before you try again. If you reach out to GitHub Support for help, please "
                "include the request ID 0000:0000:0000000:0000000:00000000.",
                "documentation_url": "https://docs.github.com/free-pro-team@latest/rest/overview/"
                "rate-limits-for-the-rest-api#about-secondary-rate-limits",
                "status": str(self.secondary_status),
            },
            {"Retry-After": str(self.secondary_retry_after_s)},
        )

    def not_found(self) -> Answer:
        return Answer(
            404,
            {
                "message": "Not Found",
                "documentation_url": "https://docs.github.com/rest",
                "status": "404",
            },
        )

    def _invalid(self, message: str) -> Answer:
        return Answer(
            422,
            {
                "message": message,
                "documentation_url": "https://docs.github.com/rest",
                "status": "422",
            },
        )

    # ---- routing --------------------------------------------------------------------------------
    def route(self, segments: list[str], query: Query, record: RequestRecord) -> Answer:
        if segments == ["rate_limit"]:  # GitHub: "does not count against your rate limit"
            remaining = max(self.rate_remaining or 0, 0)
            core = {
                "limit": self.rate_limit,
                "remaining": remaining,
                "reset": self.rate_reset,
                "used": self.rate_limit - remaining,
                "resource": "core",
            }
            return Answer(200, {"resources": {"core": core}, "rate": core}, free=True)
        data, rest = self._repo_of(segments)
        if data is None:
            return self.not_found()
        link_base = f"{self.origin}/repositories/{data.repo['id']}/" + "/".join(rest)
        link_base = link_base.rstrip("/")  # GitHub's links name the repository by id
        handler = _dispatch(rest)
        if handler is None:
            return self.not_found()
        name, args = handler
        return getattr(self, f"_get_{name}")(data, query, link_base, *args)

    def _repo_of(self, segments: list[str]) -> tuple[GitHubRepoData | None, list[str]]:
        if len(segments) >= 3 and segments[0] == "repos":
            return self.repos.get(f"{segments[1]}/{segments[2]}".lower()), segments[3:]
        if len(segments) >= 2 and segments[0] == "repositories" and segments[1].isdigit():
            for data in self.repos.values():
                if str(data.repo.get("id")) == segments[1]:
                    return data, segments[2:]
        return None, []

    def _listing(
        self,
        items: list,
        query: Query,
        link_base: str,
        *,
        key: str | None = None,
        total: int | None = None,
        cap: int | None = None,
        max_per_page: int = 100,
    ) -> Answer:
        page = page_of(items, query, default_per_page=30, max_per_page=max_per_page, cap=cap)
        headers = {}
        link = link_header(link_base, query, page, ("prev", "next", "last", "first"))
        if link:
            headers["Link"] = link
        body = page.items if key is None else {"total_count": total, key: page.items}
        return Answer(200, body, headers)

    def _get_repo(self, data: GitHubRepoData, query: Query, link_base: str) -> Answer:
        return Answer(200, data.repo)

    def _get_runs(self, data: GitHubRepoData, query: Query, link_base: str) -> Answer:
        low = high = None
        created = query.get("created")
        if created:
            try:
                low, high = created_window(created)
            except BadFilter:
                return self._invalid(f"Invalid value for 'created': {created}")
        status = query.get("status")
        wanted = {name: query.get(name) for name in _RUN_FIELDS if query.get(name)}
        runs = []
        for attempts in data.runs.values():
            run = attempts[max(attempts)] if len(attempts) > 1 else next(iter(attempts.values()))
            if low is not None or high is not None:
                at = epoch(run["created_at"])
                if (low is not None and at < low) or (high is not None and at >= high):
                    continue
            if status and status not in (run.get("status"), run.get("conclusion")):
                continue
            if wanted and any(str(_RUN_FIELDS[k](run)) != v for k, v in wanted.items()):
                continue
            runs.append(run)
        runs.sort(key=lambda r: (epoch(r["created_at"]), int(r["id"])), reverse=True)
        filtered = any(query.get(name) for name in RUN_FILTERS)
        cap = self.runs_result_cap if filtered or self.runs_result_cap_unfiltered else None
        return self._listing(runs, query, link_base, key="workflow_runs", total=len(runs), cap=cap)

    def _get_run(self, data: GitHubRepoData, query: Query, link_base: str, run_id: int) -> Answer:
        run = data.latest_attempt(run_id)
        return Answer(200, run) if run is not None else self.not_found()

    def _get_attempt(
        self, data: GitHubRepoData, query: Query, link_base: str, run_id: int, attempt: int
    ) -> Answer:
        run = data.runs.get(run_id, {}).get(attempt)
        return Answer(200, run) if run is not None else self.not_found()

    def _get_jobs(
        self, data: GitHubRepoData, query: Query, link_base: str, run_id: int, attempt: int | None
    ) -> Answer:
        known = data.runs.get(run_id)
        if not known and run_id not in data.jobs:
            return self.not_found()
        if attempt is not None:
            if known and attempt not in known:
                return self.not_found()
            jobs = data.jobs_of(run_id, attempt)
        else:
            which = query.get("filter", "latest")
            if which not in ("latest", "all"):
                return self._invalid(f"Invalid value for 'filter': {which}")
            if which == "all":
                jobs = data.jobs_of(run_id)
            else:
                latest = (
                    max(known)
                    if known
                    else max(int(j.get("run_attempt") or 1) for j in data.jobs[run_id].values())
                )
                jobs = data.jobs_of(run_id, latest)
        return self._listing(jobs, query, link_base, key="jobs", total=len(jobs))

    def _get_job(self, data: GitHubRepoData, query: Query, link_base: str, job_id: int) -> Answer:
        job = data.job(job_id)
        return Answer(200, job) if job is not None else self.not_found()

    def _get_deployments(self, data: GitHubRepoData, query: Query, link_base: str) -> Answer:
        chosen = [
            d
            for d in data.deployments.values()
            if all(
                not query.get(name) or str(d.get(name)) == query.get(name)
                for name in ("sha", "ref", "task", "environment")
            )
        ]
        chosen.sort(key=lambda d: int(d["id"]), reverse=True)
        return self._listing(chosen, query, link_base)

    def _get_deployment(
        self, data: GitHubRepoData, query: Query, link_base: str, deployment_id: int
    ) -> Answer:
        deployment = data.deployments.get(deployment_id)
        return Answer(200, deployment) if deployment is not None else self.not_found()

    def _get_statuses(
        self, data: GitHubRepoData, query: Query, link_base: str, deployment_id: int
    ) -> Answer:
        if deployment_id not in data.deployments:
            return self.not_found()
        statuses = list(reversed(data.deployment_statuses.get(deployment_id, [])))
        return self._listing(statuses, query, link_base)

    def _get_commits(self, data: GitHubRepoData, query: Query, link_base: str) -> Answer:
        if not data.commits:
            return Answer(
                409,
                {
                    "message": "Git Repository is empty.",
                    "documentation_url": "https://docs.github.com/rest",
                    "status": "409",
                },
            )
        ref = query.get("sha") or data.repo.get("default_branch") or "main"
        head = data.branches.get(ref, ref if ref in data.commits else None)
        if head is None:
            return self.not_found()
        since, until = query.get("since"), query.get("until")
        try:
            low = epoch(since) if since else None
            high = epoch(until) if until else None
        except ValueError:
            return self._invalid("Invalid value for 'since' or 'until'")
        reachable, stack = [], [head]
        seen: set[str] = set()
        while stack:
            sha = stack.pop()
            if sha in seen or sha not in data.commits:
                continue
            seen.add(sha)
            commit = data.commits[sha]
            reachable.append(commit)
            stack.extend(p["sha"] for p in commit.get("parents", []))
        chosen = []
        for commit in reachable:
            at = epoch(commit["commit"]["committer"]["date"])
            if (low is None or at >= low) and (high is None or at <= high):
                chosen.append({k: v for k, v in commit.items() if k not in ("files", "stats")})
        chosen.sort(key=lambda c: epoch(c["commit"]["committer"]["date"]), reverse=True)
        return self._listing(chosen, query, link_base)

    def _get_commit(self, data: GitHubRepoData, query: Query, link_base: str, ref: str) -> Answer:
        sha = data.branches.get(ref, ref)
        commit = data.commits.get(sha)
        if commit is None:
            return self._invalid(f"No commit found for SHA: {ref}")
        return Answer(200, commit)

    def _get_pulls(self, data: GitHubRepoData, query: Query, link_base: str) -> Answer:
        state = query.get("state", "open")
        sort = query.get("sort", "created")
        direction = query.get("direction") or ("desc" if sort == "created" else "asc")
        key = {"created": "created_at", "updated": "updated_at"}.get(sort, "created_at")
        base = query.get("base")
        chosen = [
            p
            for p in data.pulls.values()
            if (state == "all" or p.get("state") == state)
            and (not base or (p.get("base") or {}).get("ref") == base)
        ]
        chosen.sort(key=lambda p: (epoch(p[key]), int(p["number"])), reverse=direction == "desc")
        return self._listing(chosen, query, link_base)

    def _get_pull(self, data: GitHubRepoData, query: Query, link_base: str, number: int) -> Answer:
        pull = data.pulls.get(number)
        return Answer(200, pull) if pull is not None else self.not_found()

    def _get_reviews(
        self, data: GitHubRepoData, query: Query, link_base: str, number: int
    ) -> Answer:
        if number not in data.pulls:
            return self.not_found()
        return self._listing(data.pull_reviews.get(number, []), query, link_base)

    def _get_pull_commits(
        self, data: GitHubRepoData, query: Query, link_base: str, number: int
    ) -> Answer:
        if number not in data.pulls:
            return self.not_found()
        # GitHub: "a maximum of 250 commits" for a pull request.
        return self._listing(data.pull_commits.get(number, []), query, link_base, cap=250)

    def _get_issues(self, data: GitHubRepoData, query: Query, link_base: str) -> Answer:
        state = query.get("state", "open")
        labels = [name for name in (query.get("labels") or "").split(",") if name]
        since = query.get("since")
        try:
            low = epoch(since) if since else None
        except ValueError:
            return self._invalid(f"Invalid value for 'since': {since}")
        sort = query.get("sort", "created")
        direction = query.get("direction", "desc")
        key = {"created": "created_at", "updated": "updated_at"}.get(sort, "created_at")
        chosen = []
        for issue in data.issues.values():
            names = {label["name"] for label in issue.get("labels", [])}
            if state != "all" and issue.get("state") != state:
                continue
            if any(name not in names for name in labels):
                continue
            if low is not None and epoch(issue["updated_at"]) < low:
                continue
            chosen.append(issue)
        chosen.sort(key=lambda i: (epoch(i[key]), int(i["number"])), reverse=direction == "desc")
        return self._listing(chosen, query, link_base)

    def _get_issue(self, data: GitHubRepoData, query: Query, link_base: str, number: int) -> Answer:
        issue = data.issues.get(number)
        return Answer(200, issue) if issue is not None else self.not_found()


_ROUTES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(p), name)
    for p, name in (
        (r"^$", "repo"),
        (r"^actions/runs$", "runs"),
        (r"^actions/runs/(\d+)$", "run"),
        (r"^actions/runs/(\d+)/attempts/(\d+)$", "attempt"),
        (r"^actions/runs/(\d+)/jobs$", "jobs"),
        (r"^actions/runs/(\d+)/attempts/(\d+)/jobs$", "jobs"),
        (r"^actions/jobs/(\d+)$", "job"),
        (r"^deployments$", "deployments"),
        (r"^deployments/(\d+)$", "deployment"),
        (r"^deployments/(\d+)/statuses$", "statuses"),
        (r"^commits$", "commits"),
        (r"^commits/([^/]+)$", "commit"),
        (r"^pulls$", "pulls"),
        (r"^pulls/(\d+)$", "pull"),
        (r"^pulls/(\d+)/reviews$", "reviews"),
        (r"^pulls/(\d+)/commits$", "pull_commits"),
        (r"^issues$", "issues"),
        (r"^issues/(\d+)$", "issue"),
    )
]


def _dispatch(rest: list[str]) -> tuple[str, list] | None:
    path = "/".join(rest)
    for pattern, name in _ROUTES:
        match = pattern.match(path)
        if match:
            args: list = [int(g) if g.isdigit() and name != "commit" else g for g in match.groups()]
            if name == "jobs" and len(args) == 1:
                args.append(None)
            return name, args
    return None
