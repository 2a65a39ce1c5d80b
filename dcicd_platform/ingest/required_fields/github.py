"""GitHub webhooks: the fields the core models read, per X-GitHub-Event."""

from dcicd_platform.ingest.requirements import optional, required

SOURCE = "github"

REPOSITORY = required("repository.full_name")

EVENTS = {
    "workflow_run": (
        *REPOSITORY,
        *required("workflow_run.id", kind="integer"),
        *required("workflow_run.head_sha", "workflow_run.status"),
        *required("workflow_run.created_at", kind="timestamp"),
        # run_number only labels a run for people: a run exported without it is still whole.
        *optional("workflow_run.run_attempt", "workflow_run.run_number", kind="integer"),
        *optional("workflow_run.conclusion", "workflow_run.head_branch", "workflow_run.name"),
        *optional("workflow_run.run_started_at", "workflow_run.updated_at", kind="timestamp"),
    ),
    "workflow_job": (
        *REPOSITORY,
        *required("workflow_job.id", "workflow_job.run_id", kind="integer"),
        *required("workflow_job.name", "workflow_job.status"),
        *optional("workflow_job.run_attempt", kind="integer"),
        *optional("workflow_job.conclusion", "workflow_job.workflow_name", "workflow_job.head_sha"),
        *optional("workflow_job.labels", kind="array"),
        *optional(
            "workflow_job.created_at",
            "workflow_job.started_at",
            "workflow_job.completed_at",
            kind="timestamp",
        ),
    ),
    "push": (
        *REPOSITORY,
        *required("ref", "after"),
        *required("commits", kind="array"),
        *optional("repository.pushed_at", kind="timestamp"),
    ),
    "deployment_status": (
        *REPOSITORY,
        *required("deployment.id", "deployment_status.id", kind="integer"),
        *required("deployment.sha", "deployment.environment", "deployment_status.state"),
        *required("deployment_status.created_at", kind="timestamp"),
    ),
    "deployment": (
        *REPOSITORY,
        *required("deployment.id", kind="integer"),
        *required("deployment.sha", "deployment.environment"),
        *required("deployment.created_at", kind="timestamp"),
    ),
    # A commit of the history import (dcicd import): the API commit object with its parents.
    "commit": (
        *REPOSITORY,
        *required("commit.sha"),
        *required("commit.parents", kind="array"),
        *required("commit.commit.author.date", kind="timestamp"),
        *optional("commit.commit.committer.date", kind="timestamp"),
    ),
    "pull_request": (
        *REPOSITORY,
        *required("pull_request.number", kind="integer"),
        *required("pull_request.created_at", kind="timestamp"),
        *optional(
            "pull_request.updated_at",
            "pull_request.closed_at",
            "pull_request.merged_at",
            kind="timestamp",
        ),
        *optional("pull_request.head.ref", "pull_request.head.sha", "pull_request.base.ref"),
        *optional("pull_request.merge_commit_sha", "pull_request.state"),
    ),
    "pull_request_review": (
        *REPOSITORY,
        *required("pull_request.number", "review.id", kind="integer"),
        *optional("review.state"),
        *optional("review.submitted_at", kind="timestamp"),
    ),
    "issues": (
        *REPOSITORY,
        *required("issue.id", "issue.number", kind="integer"),
        *required("issue.state"),
        *required("issue.created_at", kind="timestamp"),
        *optional("issue.closed_at", "issue.updated_at", kind="timestamp"),
        *optional("issue.labels", kind="array"),
        *optional("issue.body", "issue.title"),
    ),
}
