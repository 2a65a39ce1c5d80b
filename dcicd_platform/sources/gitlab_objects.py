"""GitLab REST API (v4) objects as the webhook payloads GitLab sends for them.

GitLab's API and its webhooks describe the same pipeline, job, deployment and merge request in
different words: the job hook says `build_status` where the API says `status`, the deployment
hook flattens `environment` to its name and names its sha by `commit_url`, the pipeline hook
nests its attributes under `object_attributes` and reports a merge request pipeline's `ref` as
the source branch where the API says `refs/merge-requests/<iid>/head`. Each function here maps
one kind field by field, following GitLab's own hook builders (`Gitlab::DataBuilder::Pipeline`,
`::Build`, `::Deployment`, `Gitlab::HookData::MergeRequestBuilder`, `Project#hook_attrs`), so
that the core models read an imported object exactly as they read its webhook.

What the API does not tell is left out rather than guessed (a pipeline's CI variables, whether
a job was manual, its environment keyword). Two fields are filled from a neighbour, on purpose:
- a job's `runner.tags` are the job's own `tag_list` (the tags it asked a runner for; the hook
  carries the runner's tags, which the job API does not show);
- a deployment's `status_changed_at` is its `finished_at` once finished, else its `updated_at`
  (the hook carries the time of the change it reports).
Times stay as the API gives them (ISO 8601 with milliseconds, UTC): GitLab's own job hooks use
that format too, and the models read every format GitLab sends.

Each function returns one envelope (`import_envelope`): `received_at` is the time of the state
the object shows, and the delivery id is the object's id and that state, so importing an
unchanged object again is a duplicate. A missing field a model needs is a ValueError naming it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from dcicd_platform.sources.envelopes import import_envelope

SOURCE = "gitlab"

# Project#hook_attrs reports the visibility as Gitlab::VisibilityLevel's number.
VISIBILITY_LEVEL = {"private": 0, "internal": 10, "public": 20}
# MergeRequest.available_states, as the hook's state_id.
MERGE_REQUEST_STATE_ID = {"opened": 1, "closed": 2, "merged": 3, "locked": 4}
# The hook's action for the event that left a merge request in its state.
MERGE_REQUEST_ACTION = {"merged": "merge", "closed": "close"}
FINISHED_DEPLOYMENT = ("success", "failed", "canceled")
_MERGE_REQUEST_REF = re.compile(r"^refs/merge-requests/(\d+)/(?:head|merge|train)$")


def _need(obj: dict | None, kind: str, fields: Iterable[str]) -> dict:
    if not isinstance(obj, dict):
        raise ValueError(f"a GitLab {kind} must be a JSON object, got {type(obj).__name__}")
    missing = [name for name in fields if obj.get(name) in (None, "")]
    if missing:
        raise ValueError(
            f"GitLab {kind} {obj.get('id', '?')} lacks {', '.join(missing)}, which the "
            "platform reads"
        )
    return obj


def _first(obj: dict, *names: str) -> Any:
    """The first of the fields that is set: the time of the state an object shows."""
    return next((obj[name] for name in names if obj.get(name)), None)


def _user(user: dict | None) -> dict | None:
    """User#hook_attrs from an API user (the hook's email is the public one, if any)."""
    if not user:
        return None
    return {
        "id": user.get("id"),
        "name": user.get("name"),
        "username": user.get("username"),
        "avatar_url": user.get("avatar_url"),
        "email": user.get("public_email") or None,
    }


def project_attrs(project: dict) -> dict:
    """Project#hook_attrs (the `project` of every hook) from an API project.

    `project` is GET /projects/:id; it must hold id, path_with_namespace and web_url (the
    models key everything by the path, and a deployment's sha is read from a URL under web_url).
    """
    _need(project, "project", ("id", "path_with_namespace", "web_url"))
    namespace = project.get("namespace")
    return {
        "id": project["id"],
        "name": project.get("name"),
        "description": project.get("description"),
        "web_url": project["web_url"],
        "avatar_url": project.get("avatar_url"),
        "git_ssh_url": project.get("ssh_url_to_repo"),
        "git_http_url": project.get("http_url_to_repo"),
        "namespace": namespace.get("name") if isinstance(namespace, dict) else namespace,
        "visibility_level": VISIBILITY_LEVEL.get(project.get("visibility")),
        "path_with_namespace": project["path_with_namespace"],
        "default_branch": project.get("default_branch"),
        "ci_config_path": project.get("ci_config_path"),
    }


def _repository(project: dict) -> dict:
    """The job hook's `repository`: the project by its older names; homepage is web_url."""
    return {
        "name": project.get("name"),
        "url": project.get("ssh_url_to_repo"),
        "description": project.get("description"),
        "homepage": project["web_url"],
        "git_http_url": project.get("http_url_to_repo"),
        "git_ssh_url": project.get("ssh_url_to_repo"),
        "visibility_level": VISIBILITY_LEVEL.get(project.get("visibility")),
    }


def _runner(job: dict) -> dict | None:
    runner = job.get("runner")
    if not runner:
        return None
    active = runner.get("active")
    if active is None and runner.get("paused") is not None:
        active = not runner["paused"]
    return {
        "id": runner.get("id"),
        "description": runner.get("description"),
        "runner_type": runner.get("runner_type"),
        "active": active,
        "is_shared": runner.get("is_shared"),
        "tags": job.get("tag_list"),
    }


def _commit_attrs(commit: dict | None) -> dict | None:
    """Commit#hook_attrs (a pipeline hook's `commit`) from an API commit."""
    if not commit:
        return None
    return {
        "id": commit.get("id"),
        "message": commit.get("message"),
        "title": commit.get("title"),
        "timestamp": commit.get("committed_date"),
        "url": commit.get("web_url"),
        "author": {"name": commit.get("author_name"), "email": commit.get("author_email")},
    }


def merge_request_iid(ref: str | None) -> int | None:
    """The merge request a pipeline ran for, from its API ref `refs/merge-requests/<iid>/head`
    (None for a branch or tag pipeline): the lister looks the merge request up by it."""
    found = _MERGE_REQUEST_REF.match(ref or "")
    return int(found.group(1)) if found else None


def latest_jobs(jobs: Iterable[dict]) -> list[dict]:
    """A pipeline's latest job of each name (a retried job is replaced by its retry), by id:
    the jobs a pipeline hook lists (`pipeline.latest_builds`)."""
    latest: dict[str, dict] = {}
    for job in sorted(jobs, key=lambda j: j["id"]):
        latest[job["name"]] = job
    return sorted(latest.values(), key=lambda j: j["id"])


def _build_attrs(job: dict) -> dict:
    """One entry of a pipeline hook's `builds` from an API job."""
    artifacts = job.get("artifacts_file") or {}
    return {
        "id": job["id"],
        "stage": job.get("stage"),
        "name": job["name"],
        "status": job["status"],
        "created_at": job.get("created_at"),
        "started_at": job.get("started_at"),
        "finished_at": job.get("finished_at"),
        "duration": job.get("duration"),
        "queued_duration": job.get("queued_duration"),
        "failure_reason": job.get("failure_reason") if job["status"] == "failed" else None,
        "allow_failure": job.get("allow_failure"),
        "user": _user(job.get("user")),
        "runner": _runner(job),
        "artifacts_file": {"filename": artifacts.get("filename"), "size": artifacts.get("size")},
    }


def _merge_request_brief(merge_request: dict) -> dict:
    """A pipeline hook's `merge_request` from an API merge request."""
    return {
        "id": merge_request.get("id"),
        "iid": merge_request.get("iid"),
        "title": merge_request.get("title"),
        "source_branch": merge_request.get("source_branch"),
        "source_project_id": merge_request.get("source_project_id"),
        "target_branch": merge_request.get("target_branch"),
        "target_project_id": merge_request.get("target_project_id"),
        "state": merge_request.get("state"),
        "merge_status": merge_request.get("merge_status"),
        "detailed_merge_status": merge_request.get("detailed_merge_status"),
        "url": merge_request.get("web_url"),
    }


def pipeline_envelope(
    project: dict,
    pipeline: dict,
    jobs: list[dict] | None = None,
    merge_request: dict | None = None,
) -> dict:
    """A pipeline hook (`object_kind: pipeline`) from an API pipeline.

    `pipeline` is GET /projects/:id/pipelines/:pipeline_id (a list item lacks finished_at,
    duration and queued_duration, which the run's times and duration come from); `jobs` its
    jobs (GET .../pipelines/:id/jobs, retried ones may be included: the hook lists the latest of
    each name); `merge_request` the API merge request of a merge request pipeline, whose source
    branch the hook reports as the pipeline's ref. Delivery: `{id}:{updated_at}`.
    """
    project_hook = project_attrs(project)
    _need(pipeline, "pipeline", ("id", "sha", "ref", "status", "created_at"))
    latest = latest_jobs(jobs) if jobs is not None else None
    detailed = pipeline.get("detailed_status")
    attributes = {
        "id": pipeline["id"],
        "iid": pipeline.get("iid"),
        "name": pipeline.get("name"),
        # Ci::Pipeline#source_ref: a merge request pipeline's source branch, else its ref.
        "ref": merge_request["source_branch"] if merge_request else pipeline["ref"],
        "tag": pipeline.get("tag"),
        "sha": pipeline["sha"],
        "before_sha": pipeline.get("before_sha"),
        "source": pipeline.get("source"),
        "status": pipeline["status"],
        "detailed_status": detailed.get("label") if isinstance(detailed, dict) else detailed,
        "created_at": pipeline["created_at"],
        "finished_at": pipeline.get("finished_at"),
        "duration": pipeline.get("duration"),
        "queued_duration": pipeline.get("queued_duration"),
        "url": pipeline.get("web_url"),
    }
    payload: dict[str, Any] = {
        "object_kind": "pipeline",
        "object_attributes": attributes,
        "merge_request": _merge_request_brief(merge_request) if merge_request else None,
        "user": _user(pipeline.get("user")),
        "project": project_hook,
    }
    if latest is not None:
        # Stages in the order their jobs were created (the order of the CI configuration).
        attributes["stages"] = list(dict.fromkeys(j["stage"] for j in latest if j.get("stage")))
        payload["commit"] = _commit_attrs(
            next((j["commit"] for j in latest if j.get("commit")), None)
        )
        payload["builds"] = [
            _build_attrs(_need(j, "job", ("id", "name", "status"))) for j in latest
        ]
    updated_at = pipeline.get("updated_at")
    state = updated_at or f"{pipeline['status']}:{pipeline['created_at']}"
    received_at = _first(pipeline, "updated_at", "finished_at", "started_at", "created_at")
    return import_envelope(SOURCE, "pipeline", str(pipeline["id"]), state, received_at, payload)


def job_envelope(project: dict, job: dict) -> dict:
    """A job hook (`object_kind: build`) from an API job (GET /projects/:id/jobs/:job_id, or an
    item of a pipeline's job list). Delivery: `{id}:{status}:{finished_at}`; received at its
    finish, else its start, else its creation."""
    project_hook = project_attrs(project)
    _need(job, "job", ("id", "name", "status", "pipeline"))
    pipeline = _need(job["pipeline"], "job's pipeline", ("id",))
    commit = job.get("commit") or {}
    sha = commit.get("id") or pipeline.get("sha")
    if not sha:
        raise ValueError(f"GitLab job {job['id']} names no commit sha, which the platform reads")
    payload = {
        "object_kind": "build",
        "ref": job.get("ref"),
        "tag": job.get("tag"),
        "sha": sha,
        "build_id": job["id"],
        "build_name": job["name"],
        "build_stage": job.get("stage"),
        "build_status": job["status"],
        "build_created_at": job.get("created_at"),
        "build_started_at": job.get("started_at"),
        "build_finished_at": job.get("finished_at"),
        "build_duration": job.get("duration"),
        "build_queued_duration": job.get("queued_duration"),
        "build_allow_failure": job.get("allow_failure"),
        "build_failure_reason": job.get("failure_reason"),
        "pipeline_id": pipeline["id"],
        "runner": _runner(job),
        "project_id": project["id"],
        "project_name": project.get("name_with_namespace") or project.get("name"),
        "user": _user(job.get("user")),
        # The hook's `commit` is the pipeline (its id is the pipeline's) with its head commit.
        "commit": {
            "id": pipeline["id"],
            "sha": sha,
            "message": commit.get("message"),
            "author_name": commit.get("author_name"),
            "author_email": commit.get("author_email"),
            "status": pipeline.get("status"),
        },
        "repository": _repository(project),
        "project": project_hook,
    }
    finished_at = job.get("finished_at")
    state = f"{job['status']}:{finished_at or ''}"
    received_at = _first(job, "finished_at", "started_at", "created_at")
    return import_envelope(SOURCE, "build", str(job["id"]), state, received_at, payload)


def deployment_envelope(project: dict, deployment: dict) -> dict:
    """A deployment hook (`object_kind: deployment`) from an API deployment (GET
    /projects/:id/deployments). Its sha reaches the models through `commit_url`, as in the hook.
    Delivery: `{id}:{updated_at}`."""
    project_hook = project_attrs(project)
    _need(deployment, "deployment", ("id", "status", "sha", "environment", "created_at"))
    environment = deployment["environment"]
    if isinstance(environment, str):
        environment = {"name": environment}
    _need(environment, "deployment's environment", ("name",))
    deployable = deployment.get("deployable") or {}
    user = deployment.get("user") or {}
    sha = deployment["sha"]
    finished = (
        deployment.get("finished_at") if deployment["status"] in FINISHED_DEPLOYMENT else None
    )
    status_changed_at = finished or _first(deployment, "updated_at", "created_at")
    payload = {
        "object_kind": "deployment",
        "status": deployment["status"],
        "status_changed_at": status_changed_at,
        "deployment_id": deployment["id"],
        "deployable_id": deployable.get("id"),
        "deployable_url": deployable.get("web_url"),
        "environment": environment["name"],
        "environment_tier": environment.get("tier"),
        "environment_slug": environment.get("slug"),
        "environment_external_url": environment.get("external_url"),
        "project": project_hook,
        "short_sha": sha[:8],  # Commit.truncate_sha
        "user": _user(user),
        "user_url": user.get("web_url"),
        "commit_url": f"{project['web_url'].rstrip('/')}/-/commit/{sha}",
        "commit_title": (deployable.get("commit") or {}).get("title"),
        "ref": deployment.get("ref"),
    }
    state = deployment.get("updated_at") or f"{deployment['status']}:{status_changed_at}"
    received_at = _first(deployment, "updated_at") or status_changed_at
    return import_envelope(SOURCE, "deployment", str(deployment["id"]), state, received_at, payload)


def _label(label: Any) -> dict:
    # The API lists label names (or objects with with_labels_details); the hook, objects.
    return dict(label) if isinstance(label, dict) else {"title": label}


def _ids(people: list[dict] | None) -> list:
    return [p.get("id") for p in people or []]


def merge_request_envelope(project: dict, merge_request: dict) -> dict:
    """A merge request hook (`object_kind: merge_request`) from an API merge request (GET
    /projects/:id/merge_requests), with the action that left it in its state (`merge`,
    `close`, else `open`). Beside the hook's fields, `merged_at` and `closed_at` are kept from
    the API: the hook tells them by the time of its `merge` or `close` delivery, which a later
    import of the same merge request no longer shows. Delivery: `{id}:{updated_at}`."""
    project_hook = project_attrs(project)
    mr = _need(
        merge_request,
        "merge request",
        ("id", "iid", "state", "created_at", "source_branch", "target_branch"),
    )
    time_stats = mr.get("time_stats") or {}
    labels = [_label(label) for label in mr.get("labels") or []]
    same_project = mr.get("source_project_id") in (None, project["id"])
    sha = mr.get("sha")
    web_url = project["web_url"].rstrip("/")
    actor = {"merged": mr.get("merged_by") or mr.get("merge_user"), "closed": mr.get("closed_by")}
    attributes = {
        "id": mr["id"],
        "iid": mr["iid"],
        "target_branch": mr["target_branch"],
        "source_branch": mr["source_branch"],
        "source_project_id": mr.get("source_project_id"),
        "author_id": (mr.get("author") or {}).get("id"),
        "assignee_ids": _ids(mr.get("assignees")),
        "assignee_id": (mr.get("assignee") or {}).get("id"),
        "reviewer_ids": _ids(mr.get("reviewers")),
        "title": mr.get("title"),
        "created_at": mr["created_at"],
        "updated_at": mr.get("updated_at"),
        "milestone_id": (mr.get("milestone") or {}).get("id"),
        "state_id": MERGE_REQUEST_STATE_ID.get(mr["state"]),
        "state": mr["state"],
        "blocking_discussions_resolved": mr.get("blocking_discussions_resolved"),
        "work_in_progress": mr.get("work_in_progress"),
        "draft": mr.get("draft"),
        "merge_status": mr.get("merge_status"),
        "detailed_merge_status": mr.get("detailed_merge_status"),
        "target_project_id": mr.get("target_project_id"),
        "description": mr.get("description"),
        "merge_commit_sha": mr.get("merge_commit_sha"),
        "merge_user_id": (mr.get("merge_user") or mr.get("merged_by") or {}).get("id"),
        "merge_when_pipeline_succeeds": mr.get("merge_when_pipeline_succeeds"),
        "head_pipeline_id": (mr.get("head_pipeline") or {}).get("id"),
        "time_estimate": time_stats.get("time_estimate"),
        "total_time_spent": time_stats.get("total_time_spent"),
        "human_time_estimate": time_stats.get("human_time_estimate"),
        "human_total_time_spent": time_stats.get("human_total_time_spent"),
        "url": mr.get("web_url"),
        "source": project_hook if same_project else None,
        "target": project_hook,
        "last_commit": {"id": sha, "url": f"{web_url}/-/commit/{sha}"} if sha else None,
        "labels": labels,
        "action": MERGE_REQUEST_ACTION.get(mr["state"], "open"),
        # From the API only (see the docstring).
        "merged_at": mr.get("merged_at"),
        "closed_at": mr.get("closed_at"),
    }
    payload = {
        "object_kind": "merge_request",
        "event_type": "merge_request",
        "user": _user(actor.get(mr["state"]) or mr.get("author")),
        "project": project_hook,
        "object_attributes": attributes,
        "labels": labels,
        "changes": {},
        "repository": {
            "name": project.get("name"),
            "url": project.get("ssh_url_to_repo"),
            "description": project.get("description"),
            "homepage": project["web_url"],
        },
        "assignees": [_user(a) for a in mr.get("assignees") or []],
        "reviewers": [_user(r) for r in mr.get("reviewers") or []],
    }
    state = mr.get("updated_at") or f"{mr['state']}:{mr['created_at']}"
    received_at = _first(mr, "updated_at", "merged_at", "closed_at", "created_at")
    return import_envelope(SOURCE, "merge_request", str(mr["id"]), state, received_at, payload)


def commit_envelope(
    project: dict,
    commit: dict,
    *,
    branch: str | None = None,
    merge_request_iid: int | None = None,
) -> dict:
    """A commit of the history import (no webhook carries one alone): the API commit as it is,
    with the branch whose history listed it (the default branch) or the merge request whose
    commits it is; exactly one of the two. Received at its committer date.
    Delivery: `{path}@{sha}:{branch}`, or `:!{iid}` for a merge request's commit."""
    _need(project, "project", ("id", "path_with_namespace"))
    _need(commit, "commit", ("id", "committed_date"))
    if (branch is None) == (merge_request_iid is None):
        raise ValueError("a GitLab commit is imported from one branch or one merge request")
    payload = {
        "project": {
            "id": project["id"],
            "path_with_namespace": project["path_with_namespace"],
            "default_branch": project.get("default_branch"),
        },
        "branch": branch,
        "merge_request": merge_request_iid,
        "commit": commit,
    }
    object_id = f"{project['path_with_namespace']}@{commit['id']}"
    state = branch if branch is not None else f"!{merge_request_iid}"
    return import_envelope(SOURCE, "commit", object_id, state, commit["committed_date"], payload)
