"""onnx/onnx's real Actions history (`../shared/datasets/gha-onnx`, read where it lies) as the
GitHub API's run and job objects, for volume: 6,129 runs and 28,420 jobs.

The objects agree with `tests/real_history.py`'s webhook envelopes field for field: the same
ids, names, events, statuses, conclusions (an empty one is null), times, head_sha, run_attempt 1,
labels [] and the runner rule `_ran_on_a_runner` (runner_id 1 and runner_name "GitHub Actions"
for a job that ran, else 0 and null). `run_started_at` is created_at (attempt 1 starts when it is
created, which is also how the platform reads a run without it). What the CSVs do not say is
null, not made up: head_branch, path, run_number, actor; so an import of these objects and the
webhook envelopes describe the runs identically. `workflow_id` is a stable number derived from
the workflow's name.
"""

from __future__ import annotations

import zlib
from pathlib import Path

from tests.fake_apis.github import FakeGitHub, repo_object
from tests.real_history import DATASET, REPO, _ran_on_a_runner, _rows


def onnx_run(row: dict[str, str], repository: dict) -> dict:
    """The API object of a run from a `build_durations.csv` row."""
    return {
        "id": int(row["run_id"]),
        "name": row["workflow"],
        "head_branch": None,
        "head_sha": row["head_sha"],
        "path": None,
        "run_number": None,
        "event": row["event"],
        "status": row["status"],
        "conclusion": row["conclusion"] or None,
        "workflow_id": zlib.crc32(row["workflow"].encode()),
        "pull_requests": [],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "actor": None,
        "run_attempt": 1,
        "run_started_at": row["created_at"],
        "previous_attempt_url": None,
        "repository": repository,
    }


def onnx_job(row: dict[str, str]) -> dict:
    """The API object of a job from a `jobs/*.csv` row."""
    ran = _ran_on_a_runner(row)
    return {
        "id": int(row["job_id"]),
        "run_id": int(row["run_id"]),
        "run_attempt": 1,
        "workflow_name": row["workflow"],
        "name": row["job_name"],
        "head_sha": row["head_sha"],
        "status": row["status"],
        "conclusion": row["conclusion"] or None,
        "started_at": row["started_at"],
        "completed_at": row["completed_at"] or None,
        "labels": [],
        "runner_id": 1 if ran else 0,
        "runner_name": "GitHub Actions" if ran else None,
    }


def github_from_onnx(
    dataset: Path = DATASET, repo: str = REPO, *, into: FakeGitHub | None = None
) -> FakeGitHub:
    """A FakeGitHub (not started; or `into`, filled) whose repository `repo` (default branch
    main) holds every run and job of the dataset as attempt 1."""
    gh = into or FakeGitHub()
    data = gh.add_repo(repo, repo_object(repo, default_branch="main"))
    repository = {k: data.repo[k] for k in ("id", "name", "full_name", "owner", "html_url")}
    runs = data.runs
    for row in _rows(dataset / "build_durations.csv"):
        runs[int(row["run_id"])] = {1: onnx_run(row, repository)}
    jobs = data.jobs
    for path in sorted((dataset / "jobs").glob("*.csv")):
        for row in _rows(path):
            job = onnx_job(row)
            jobs.setdefault(job["run_id"], {})[job["id"]] = job
    return gh
