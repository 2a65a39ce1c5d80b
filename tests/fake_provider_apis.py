"""Fake GitHub, GitLab and PagerDuty APIs for the import tests and the import benchmark: real
HTTP servers on 127.0.0.1 serving recorded real answers (`tests/fixtures/api-devlake-e2e`) and,
for volume, onnx/onnx's real Actions history, with the providers' pagination, filters, rate
limits, ETags and faults. The parts live in `tests/fake_apis/`; this module is what tests import.

    with github_from_onnx() as gh:                 # or FakeGitHub(); gh.add_repo("o/r")
        gh.set_rate_limit(100, reset_in_s=2)       # faults: attributes, read per request
        client.get(f"{gh.url}/repos/onnx/onnx/actions/runs", params={"created": "2026-05-10"})
        gh.repo("onnx/onnx").rerun(run_id, started_at=..., completed_at=...)
        assert gh.quota_used == ... and gh.not_modified == ...
"""

from tests.fake_apis.github import (
    FakeGitHub,
    GitHubRepoData,
    commit_object,
    created_window,
    repo_object,
)
from tests.fake_apis.gitlab import FakeGitLab, GitLabProjectData, pipeline_detail, project_object
from tests.fake_apis.onnx import github_from_onnx, onnx_job, onnx_run
from tests.fake_apis.pagerduty import FakePagerDuty, synthesized_log_entries
from tests.fake_apis.recorded import (
    RECORDED,
    github_from_recorded,
    gitlab_from_recorded,
    pagerduty_from_recorded,
    recorded_rows,
)
from tests.fake_apis.server import Answer, FakeApi, RequestRecord, etag_matches, weak_etag

__all__ = [
    "RECORDED",
    "Answer",
    "FakeApi",
    "FakeGitHub",
    "FakeGitLab",
    "FakePagerDuty",
    "GitHubRepoData",
    "GitLabProjectData",
    "RequestRecord",
    "commit_object",
    "created_window",
    "etag_matches",
    "github_from_onnx",
    "github_from_recorded",
    "gitlab_from_recorded",
    "onnx_job",
    "onnx_run",
    "pagerduty_from_recorded",
    "pipeline_detail",
    "project_object",
    "recorded_rows",
    "repo_object",
    "synthesized_log_entries",
    "weak_etag",
]
