"""Change sets from the commit graph: the cost of walking a large history.

A repository of about 20,000 commits (a mainline where every tenth commit merges a feature
branch of three commits, and every thousandth a long-lived branch of 50 commits forked 2,000
commits earlier), imported as `commit` envelopes, with 500 production deployments of mainline
commits. Two shapes:
  - spread: the deployments spread over the whole history (each walk covers ~40 commits);
  - late: all 500 in the newest 2,000 commits, so the first one walks the 18,000 below it.
Times, in this process, the build of `core.commit_graph` (from raw.events) and of
`marts.deployment_changes` (the walk), and checks the change sets add up: every commit of the
graph that is not a merge and was made since the known history began counts once.

    python benchmarks/commit_graph.py [--commits 20000] [--deployments 500]
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent))

import duckdb  # noqa: E402

from dbt_like_sql import build_model, load_models  # noqa: E402
from dbt_like_sql.session import prepare_session  # noqa: E402
from dcicd_platform.assets.config_tables import write_config_tables  # noqa: E402
from dcicd_platform.config import PlatformConfig, Service  # noqa: E402
from dcicd_platform.demo import payloads as pl  # noqa: E402
from dcicd_platform.ingest.envelope import envelope_line, make_envelope, rfc3339  # noqa: E402
from dcicd_platform.ingest.loader import load_files  # noqa: E402

REPO = pl.github_repository("bench/big")
START = datetime(2026, 1, 1, tzinfo=UTC)
MODELS = (
    "core.pipeline_runs",
    "core.deployments",
    "core.commits",
    "core.commit_graph",
    "core.commit_files",
    "core.commit_services",
    "core.pull_requests",
)


def sha(name: str) -> str:
    return hashlib.sha1(name.encode()).hexdigest()


def history(commits: int) -> tuple[list[tuple[str, list[str], datetime]], list[str]]:
    """(name, parents, time) of every commit, and the mainline's names, oldest first."""
    nodes: list[tuple[str, list[str], datetime]] = []
    mainline: list[str] = []
    minute = 0

    def add(name: str, parents: list[str]) -> str:
        nonlocal minute
        minute += 5
        nodes.append((name, parents, START + timedelta(minutes=minute)))
        return name

    while len(nodes) < commits:
        i = len(mainline)
        head = mainline[-1] if mainline else None
        if head and i % 1000 == 999 and len(mainline) > 2000:
            tip = mainline[-2000]  # a long-lived branch forked 2,000 mainline commits back
            for k in range(50):
                tip = add(f"long{i}-{k}", [tip])
            mainline.append(add(f"merge{i}", [head, tip]))
        elif head and i % 10 == 9:
            tip = head
            for k in range(3):
                tip = add(f"feature{i}-{k}", [tip])
            mainline.append(add(f"merge{i}", [head, tip]))
        else:
            mainline.append(add(f"main{i}", [head] if head else []))
    return nodes, mainline


def envelopes(nodes, mainline, deployments: int, late: bool) -> list[dict]:
    out = []
    for name, parents, at in nodes:
        payload = {
            "repository": REPO,
            "branch": "main",
            "pull_request": None,
            "commit": {
                "sha": sha(name),
                "commit": {"author": {"date": rfc3339(at)}, "committer": {"date": rfc3339(at)}},
                "parents": [{"sha": sha(p)} for p in parents],
            },
        }
        out.append(make_envelope(f"import:{name}", "github", "commit", payload, at))
    span = 2000 if late else len(mainline)
    times = dict((name, at) for name, _, at in nodes)
    for n in range(deployments):
        name = mainline[len(mainline) - span + (n + 1) * span // deployments - 1]
        at = times[name] + timedelta(minutes=2)
        status = pl.github_deployment_status(
            REPO, n + 1, n + 1, sha(name), "production", "success", at, at, "bench"
        )
        out.append(make_envelope(f"deploy-{n}", "github", "deployment_status", status, at))
    # The known history begins with the oldest commit (as an import of the whole window would).
    run = pl.github_workflow_run(
        REPO, 1, 1, 1, "ci", "ci.yml", "push", "main", sha(mainline[0]), "bench",
        "completed", "success", START, START, START, "completed",
    )  # fmt: skip
    out.append(make_envelope("run-1", "github", "workflow_run", run, START))
    return out


def measure(folder: Path, commits: int, deployments: int, late: bool) -> dict:
    nodes, mainline = history(commits)
    path = folder / f"{'late' if late else 'spread'}.ndjson"
    path.write_bytes(
        b"".join(envelope_line(e) for e in envelopes(nodes, mainline, deployments, late))
    )
    conn = duckdb.connect(str(folder / f"{path.stem}.duckdb"))
    load_files(conn, [path])
    prepare_session(conn)
    write_config_tables(
        conn, PlatformConfig(services=[Service(name="big", repositories=["bench/big"])])
    )
    models = {m.table: m for m in load_models()}
    timings = {}
    for table in (*MODELS, "marts.deployment_changes"):
        started = time.perf_counter()
        build_model(conn, models[table])
        timings[table] = time.perf_counter() - started
    counted = conn.execute("SELECT count(*) FROM marts.deployment_changes").fetchone()[0]
    expected = sum(1 for _, parents, _ in nodes if len(parents) < 2)
    deployed = conn.execute(
        "SELECT count(DISTINCT deployment_key) FROM marts.deployment_changes"
    ).fetchone()[0]
    return {
        "commits": len(nodes),
        "timings": timings,
        "counted": counted,
        "non_merges": expected,
        "deployments_with_changes": deployed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--commits", type=int, default=20000)
    parser.add_argument("--deployments", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        for late in (False, True):
            result = measure(Path(folder), args.commits, args.deployments, late)
            if result["counted"] != result["non_merges"]:
                raise SystemExit(f"the change sets do not add up: {result}")
            t = result["timings"]
            print(
                f"{'late' if late else 'spread'}: {result['commits']} commits,"
                f" {args.deployments} deployments;"
                f" core.commit_graph {t['core.commit_graph']:.2f} s,"
                f" marts.deployment_changes {t['marts.deployment_changes']:.2f} s;"
                f" changes {result['counted']} (non-merge commits"
                f" {result['non_merges']}),"
                f" deployments with changes {result['deployments_with_changes']}"
            )


if __name__ == "__main__":
    main()
