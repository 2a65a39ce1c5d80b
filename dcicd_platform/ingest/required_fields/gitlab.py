"""GitLab webhooks: the fields the core models read, per object_kind."""

from dcicd_platform.ingest.requirements import optional, required

SOURCE = "gitlab"

PROJECT = required("project.path_with_namespace")

EVENTS = {
    "pipeline": (
        *PROJECT,
        *required("object_attributes.id", kind="integer"),
        *required("object_attributes.status", "object_attributes.sha", "object_attributes.ref"),
        *required("object_attributes.created_at", kind="timestamp"),
        *optional("object_attributes.finished_at", kind="timestamp"),
        *optional("object_attributes.duration", "object_attributes.queued_duration", kind="number"),
        *optional("builds", kind="array"),
    ),
    "build": (
        *required("build_id", "pipeline_id", kind="integer"),
        *required("build_name", "build_status", "sha"),
        *optional("build_created_at", "build_started_at", "build_finished_at", kind="timestamp"),
        *optional("build_duration", "build_queued_duration", kind="number"),
        *optional("repository.homepage", "project_name", "build_stage", "ref"),
    ),
    "deployment": (
        *PROJECT,
        *required("deployment_id", kind="integer"),
        *required("status", "environment"),
        *required("status_changed_at", kind="timestamp"),
        *optional("short_sha", "commit_url", "ref"),
    ),
    "push": (
        *PROJECT,
        *required("ref", "after"),
        *required("commits", kind="array"),
    ),
    # A commit of the history import (dcicd import): the API commit object with its parents.
    "commit": (
        *PROJECT,
        *required("commit.id"),
        *required("commit.parent_ids", kind="array"),
        *required("commit.authored_date", kind="timestamp"),
        *optional("commit.committed_date", kind="timestamp"),
    ),
    "merge_request": (
        *PROJECT,
        *required("object_attributes.iid", kind="integer"),
        *required("object_attributes.created_at", kind="timestamp"),
        *optional("object_attributes.updated_at", kind="timestamp"),
        *optional(
            "object_attributes.state",
            "object_attributes.action",
            "object_attributes.source_branch",
            "object_attributes.target_branch",
            "object_attributes.merge_commit_sha",
        ),
    ),
    "issue": (
        *PROJECT,
        *required("object_attributes.id", "object_attributes.iid", kind="integer"),
        *required("object_attributes.created_at", kind="timestamp"),
        *optional("object_attributes.closed_at", kind="timestamp"),
        *optional("object_attributes.state", "object_attributes.description"),
        *optional("labels", kind="array"),
    ),
}
