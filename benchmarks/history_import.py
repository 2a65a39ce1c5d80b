"""The history import against a fake GitHub API serving all of onnx/onnx's real history.

6,129 runs and 28,420 jobs (`../shared/datasets/gha-onnx`, as tests/fake_apis/onnx.py serves
them) plus a default branch of one commit per head sha, from a fake GitHub on 127.0.0.1 with a
per-request latency (default 50 ms, as a far API answers) and GitHub's default budget of 5,000
requests an hour lifted to 100,000 (a GitHub App installation on Enterprise Cloud may have
15,000 an hour: GitHub Docs, "Rate limits for the REST API"; with 5,000 the import would wait
an hour at 5,000 requests, as it should). Prints the requests made against the minimum needed
(one page of 100 per 100 runs, one jobs request per run, one per other listing), the wall
time, and a re-sync of the unchanged history: its requests and the quota they used (the goal:
0). Goals: requests within 1.1x of the minimum; re-sync free.

    python benchmarks/history_import.py [--latency-ms 50]
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dcicd_platform.home import Home  # noqa: E402
from dcicd_platform.sources.run import run_import  # noqa: E402
from tests import real_history  # noqa: E402
from tests.fake_provider_apis import commit_object, github_from_onnx  # noqa: E402

REPO = real_history.REPO
SINCE = datetime(2026, 4, 24, tzinfo=UTC)
NOW = datetime(2026, 6, 1, tzinfo=UTC)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=float, default=50.0)
    args = parser.parse_args()
    if not real_history.DATASET.exists():
        raise SystemExit(f"the real history is not at {real_history.DATASET}")
    home = Home(Path(tempfile.mkdtemp(prefix="dcicd-import-")) / "home")
    with github_from_onnx() as gh:
        gh.rate_limit = 100_000
        data = gh.repo(REPO)
        parent: list[str] = []
        heads = sorted({(a[1]["created_at"], a[1]["head_sha"]) for a in data.runs.values()})
        for created, sha in heads:
            if sha not in data.commits:
                data.put_commit(
                    commit_object(REPO, sha, parents=parent, date=created), branch="main"
                )
                parent = [sha]
        runs = len(data.runs)
        jobs_pages = sum(
            max(1, math.ceil(len(j) / 100)) for j in (data.jobs.get(r, {}) for r in data.runs)
        )
        commits = len(data.commits)
        # repository, run pages, jobs pages, deployments, commit pages, pull requests, issues
        minimum = 1 + math.ceil(runs / 100) + jobs_pages + 1 + math.ceil(commits / 100) + 1 + 1
        gh.latency_s = args.latency_ms / 1000
        print(f"served: {runs:,} runs, {sum(len(j) for j in data.jobs.values()):,} jobs,"
              f" {commits:,} commits; latency {args.latency_ms:.0f} ms a request")  # fmt: skip

        started = time.perf_counter()
        full = run_import(home, "github", [REPO], since=SINCE, token="t", api_url=gh.url, now=NOW)
        wall = time.perf_counter() - started
        print(f"full import: {full.stats.requests:,} requests for a minimum of {minimum:,}"
              f" ({full.stats.requests / minimum:.3f}x; goal <= 1.1x), {wall:.1f} s wall,"
              f" {full.envelopes:,} envelopes, {full.loaded:,} loaded")  # fmt: skip
        gh.clear_log()
        started = time.perf_counter()
        again = run_import(home, "github", [REPO], since=SINCE, token="t", api_url=gh.url, now=NOW)
        wall = time.perf_counter() - started
        print(f"re-sync of the unchanged history: {again.stats.requests:,} requests"
              f" ({gh.not_modified:,} answered 304), quota used {gh.quota_used} (goal 0),"
              f" {again.envelopes} envelopes, {wall:.1f} s wall")  # fmt: skip


if __name__ == "__main__":
    main()
