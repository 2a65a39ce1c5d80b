"""Webhook payloads shaped like the providers' own (see tests/fixtures/ for the real examples).

Only the fields a reader of the real payload would look for are filled in, with the real names
and nesting; the URL-heavy rest of a real delivery is left out to keep the demo small.
"""

from __future__ import annotations

import zlib
from datetime import datetime
from typing import Any

from dcicd_platform.ingest.envelope import rfc3339


def github_repository(full_name: str, default_branch: str = "main") -> dict[str, Any]:
    owner, name = full_name.split("/")
    return {
        "id": zlib.crc32(full_name.encode()),
        "name": name,
        "full_name": full_name,
        "private": True,
        "owner": {"login": owner, "type": "Organization"},
        "html_url": f"https://github.com/{full_name}",
        "default_branch": default_branch,
        "visibility": "private",
    }


def github_workflow_run(
    repo: dict,
    run_id: int,
    attempt: int,
    run_number: int,
    workflow: str,
    path: str,
    event: str,
    branch: str,
    sha: str,
    actor: str,
    status: str,
    conclusion: str | None,
    created: datetime,
    started: datetime,
    updated: datetime,
    action: str,
) -> dict[str, Any]:
    return {
        "action": action,
        "workflow_run": {
            "id": run_id,
            "name": workflow,
            "path": path,
            "display_title": f"{workflow} on {branch}",
            "run_number": run_number,
            "run_attempt": attempt,
            "event": event,
            "status": status,
            "conclusion": conclusion,
            "head_branch": branch,
            "head_sha": sha,
            "workflow_id": zlib.crc32((repo["full_name"] + path).encode()),
            "created_at": rfc3339(created),
            "run_started_at": rfc3339(started),
            "updated_at": rfc3339(updated),
            "actor": {"login": actor, "type": "User"},
            "html_url": f"{repo['html_url']}/actions/runs/{run_id}",
        },
        "workflow": {"name": workflow, "path": path, "state": "active"},
        "repository": repo,
        "sender": {"login": actor, "type": "User"},
    }


def github_workflow_job(
    repo: dict,
    job_id: int,
    run_id: int,
    attempt: int,
    workflow: str,
    name: str,
    sha: str,
    branch: str,
    labels: list[str],
    conclusion: str,
    created: datetime,
    started: datetime,
    completed: datetime,
    steps: list[tuple[str, datetime, datetime]] | None = None,
) -> dict[str, Any]:
    """steps: (name, started, completed) of each step, as GitHub times them; default the two
    untimed steps the older payloads show."""
    self_hosted = "self-hosted" in labels
    shown = [
        {"name": "Set up job", "status": "completed", "conclusion": "success", "number": 1},
        {"name": name, "status": "completed", "conclusion": conclusion, "number": 2},
    ]
    if steps:
        shown = [
            {
                "name": step,
                "status": "completed",
                "conclusion": conclusion if number == len(steps) else "success",
                "number": number,
                "started_at": rfc3339(begun),
                "completed_at": rfc3339(ended),
            }
            for number, (step, begun, ended) in enumerate(steps, 1)
        ]
    return {
        "action": "completed",
        "workflow_job": {
            "id": job_id,
            "run_id": run_id,
            "run_attempt": attempt,
            "workflow_name": workflow,
            "name": name,
            "head_sha": sha,
            "head_branch": branch,
            "status": "completed",
            "conclusion": conclusion,
            "created_at": rfc3339(created),
            "started_at": rfc3339(started),
            "completed_at": rfc3339(completed),
            "labels": labels,
            "runner_name": f"{'runner' if self_hosted else 'GitHub Actions'} {job_id % 97}",
            "runner_group_name": "self-hosted" if self_hosted else "GitHub Actions",
            "steps": shown,
        },
        "repository": repo,
        "sender": {"login": "github-actions[bot]", "type": "Bot"},
    }


def github_push(
    repo: dict, branch: str, before: str, commits: list[dict], pushed: datetime, pusher: str
) -> dict[str, Any]:
    repo = {**repo, "pushed_at": int(pushed.timestamp())}
    return {
        "ref": f"refs/heads/{branch}",
        "before": before,
        "after": commits[-1]["id"],
        "created": False,
        "deleted": False,
        "forced": False,
        "commits": commits,
        "head_commit": commits[-1],
        "repository": repo,
        "pusher": {"name": pusher},
        "sender": {"login": pusher, "type": "User"},
    }


def github_commit(sha: str, message: str, author: str, at: datetime) -> dict[str, Any]:
    return {
        "id": sha,
        "tree_id": sha[::-1],
        "distinct": True,
        "message": message,
        "timestamp": rfc3339(at),
        "author": {"name": author, "email": f"{author}@example.com", "username": author},
        "committer": {"name": "GitHub", "email": "noreply@github.com"},
        "added": [],
        "removed": [],
        "modified": [f"src/{author}.py"],
    }


def github_deployment_status(
    repo: dict,
    deployment_id: int,
    status_id: int,
    sha: str,
    environment: str,
    state: str,
    created: datetime,
    at: datetime,
    creator: str,
) -> dict[str, Any]:
    return {
        "action": "created",
        "deployment_status": {
            "id": status_id,
            "state": state,
            "environment": environment,
            "description": f"Deployment {state}",
            "created_at": rfc3339(at),
            "updated_at": rfc3339(at),
            "creator": {"login": creator, "type": "User"},
        },
        "deployment": {
            "id": deployment_id,
            "sha": sha,
            "ref": "main",
            "task": "deploy",
            "environment": environment,
            "original_environment": environment,
            "production_environment": environment.startswith("prod"),
            "created_at": rfc3339(created),
            "updated_at": rfc3339(at),
            "creator": {"login": creator, "type": "User"},
        },
        "repository": repo,
        "sender": {"login": creator, "type": "User"},
    }


def github_issue(
    repo: dict,
    issue_id: int,
    number: int,
    title: str,
    body: str,
    labels: list[str],
    state: str,
    created: datetime,
    closed: datetime | None,
    updated: datetime,
    action: str,
) -> dict[str, Any]:
    return {
        "action": action,
        "issue": {
            "id": issue_id,
            "number": number,
            "title": title,
            "body": body,
            "state": state,
            "labels": [{"name": label, "color": "d73a4a"} for label in labels],
            "created_at": rfc3339(created),
            "updated_at": rfc3339(updated),
            "closed_at": rfc3339(closed) if closed else None,
            "user": {"login": "oncall-bot", "type": "Bot"},
        },
        "repository": repo,
        "sender": {"login": "oncall-bot", "type": "Bot"},
    }


def gitlab_project(path: str, default_branch: str = "main") -> dict[str, Any]:
    return {
        "id": zlib.crc32(path.encode()) % 10**6,
        "name": path.split("/")[-1],
        "path_with_namespace": path,
        "default_branch": default_branch,
        "web_url": f"https://gitlab.example.com/{path}",
    }


def _gitlab_time(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S UTC")


def gitlab_pipeline(
    project: dict,
    pipeline_id: int,
    ref: str,
    sha: str,
    status: str,
    created: datetime,
    finished: datetime | None,
    duration: float | None,
    queued: float,
    builds: list[dict],
    user: str,
) -> dict[str, Any]:
    return {
        "object_kind": "pipeline",
        "object_attributes": {
            "id": pipeline_id,
            "iid": pipeline_id % 10000,
            "ref": ref,
            "tag": False,
            "sha": sha,
            "source": "push",
            "status": status,
            "detailed_status": {"success": "passed"}.get(status, status),
            "stages": ["build", "test", "deploy"],
            "created_at": _gitlab_time(created),
            "finished_at": _gitlab_time(finished) if finished else None,
            "duration": duration,
            "queued_duration": queued,
        },
        "user": {"username": user, "name": user},
        "project": project,
        "commit": {"id": sha, "message": "Merge branch", "timestamp": rfc3339(created)},
        "builds": builds,
    }


def gitlab_build_entry(
    build_id: int,
    name: str,
    stage: str,
    status: str,
    created: datetime,
    started: datetime,
    finished: datetime,
    tags: list[str],
    shared: bool,
) -> dict[str, Any]:
    return {
        "id": build_id,
        "stage": stage,
        "name": name,
        "status": status,
        "created_at": _gitlab_time(created),
        "started_at": _gitlab_time(started),
        "finished_at": _gitlab_time(finished),
        "duration": (finished - started).total_seconds(),
        "queued_duration": (started - created).total_seconds(),
        "when": "on_success",
        "manual": False,
        "allow_failure": False,
        "runner": {
            "id": 1000 + len(tags),
            "description": "shared-runners-manager" if shared else "inventory-runner",
            "runner_type": "instance_type" if shared else "project_type",
            "is_shared": shared,
            "tags": tags,
        },
    }


def gitlab_push(
    project: dict, branch: str, before: str, commits: list[dict], user: str
) -> dict[str, Any]:
    return {
        "object_kind": "push",
        "event_name": "push",
        "before": before,
        "after": commits[-1]["id"],
        "ref": f"refs/heads/{branch}",
        "checkout_sha": commits[-1]["id"],
        "user_username": user,
        "project": project,
        "commits": commits,
        "total_commits_count": len(commits),
    }


def gitlab_deployment(
    project: dict,
    deployment_id: int,
    sha: str,
    environment: str,
    status: str,
    at: datetime,
    user: str,
) -> dict[str, Any]:
    return {
        "object_kind": "deployment",
        "status": status,
        "status_changed_at": at.strftime("%Y-%m-%d %H:%M:%S +0000"),
        "deployment_id": deployment_id,
        "deployable_id": deployment_id * 10,
        "environment": environment,
        "environment_tier": "production" if environment == "production" else "staging",
        "environment_slug": environment,
        "project": project,
        "short_sha": sha[:8],
        "user": {"username": user, "name": user},
        "commit_url": f"{project['web_url']}/-/commit/{sha}",
        "commit_title": "Deploy",
        "ref": "main",
    }


def pagerduty_incident_event(
    event_id: str,
    event_type: str,
    incident_id: str,
    number: int,
    title: str,
    service_id: str,
    service_name: str,
    at: datetime,
) -> dict[str, Any]:
    status = event_type.split(".", 1)[1]
    return {
        "event": {
            "id": event_id,
            "event_type": event_type,
            "resource_type": "incident",
            "occurred_at": at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "agent": {"id": "PAGENT1", "summary": "On-call engineer", "type": "user_reference"},
            "client": None,
            "data": {
                "id": incident_id,
                "type": "incident",
                "number": number,
                "status": status,
                "incident_key": f"{service_name}-{number}",
                "title": title,
                "urgency": "high",
                "service": {"id": service_id, "summary": service_name, "type": "service_reference"},
                "html_url": f"https://example.pagerduty.com/incidents/{incident_id}",
            },
        }
    }


def github_pull_request(
    repo: dict,
    number: int,
    title: str,
    author: str,
    head_branch: str,
    head_sha: str,
    base_branch: str,
    action: str,
    created: datetime,
    updated: datetime,
    closed: datetime | None = None,
    merged: datetime | None = None,
    merge_commit_sha: str | None = None,
    size: tuple[int, int, int] = (0, 0, 0),
) -> dict[str, Any]:
    """A `pull_request` delivery. merge_commit_sha is GitHub's test merge while the pull request
    is open, and the merge, squash or last rebased commit once merged; size is (additions,
    deletions, changed_files)."""
    additions, deletions, changed_files = size
    pr_id = zlib.crc32(f"{repo['full_name']}#{number}".encode())
    return {
        "action": action,
        "number": number,
        "pull_request": {
            "id": pr_id,
            "number": number,
            "html_url": f"{repo['html_url']}/pull/{number}",
            "state": "closed" if closed else "open",
            "title": title,
            "user": {"login": author, "type": "User"},
            "created_at": rfc3339(created),
            "updated_at": rfc3339(updated),
            "closed_at": rfc3339(closed) if closed else None,
            "merged_at": rfc3339(merged) if merged else None,
            "merge_commit_sha": merge_commit_sha,
            "draft": False,
            "head": {"ref": head_branch, "sha": head_sha, "repo": repo},
            "base": {"ref": base_branch, "repo": repo},
            "merged": merged is not None,
            "additions": additions,
            "deletions": deletions,
            "changed_files": changed_files,
        },
        "repository": repo,
        "sender": {"login": author, "type": "User"},
    }


def github_pull_request_review(
    pull_request: dict,
    review_id: int,
    reviewer: str,
    state: str,
    submitted: datetime,
    action: str = "submitted",
) -> dict[str, Any]:
    """A `pull_request_review` delivery about a pull request (a github_pull_request payload):
    state is `commented`, `approved`, `changes_requested`, or `dismissed` (action `dismissed`,
    the review keeping its submitted_at)."""
    pr = pull_request["pull_request"]
    repo = pull_request["repository"]
    return {
        "action": action,
        "review": {
            "id": review_id,
            "user": {"login": reviewer, "type": "User"},
            "body": None,
            "commit_id": pr["head"]["sha"],
            "submitted_at": rfc3339(submitted),
            "state": state,
            "html_url": f"{pr['html_url']}#pullrequestreview-{review_id}",
        },
        "pull_request": {
            k: pr[k]
            for k in ("id", "number", "html_url", "state", "title", "user", "created_at")
            + ("updated_at", "closed_at", "merged_at", "merge_commit_sha", "head", "base")
        },
        "repository": repo,
        "sender": {"login": reviewer, "type": "User"},
    }
