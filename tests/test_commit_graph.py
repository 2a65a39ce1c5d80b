"""Change sets from the commit graph (the history import's `commit` envelopes), worked by hand.

With the graph, a deployment's changes are the commits reachable from its sha and from no
earlier production deployment's (git log --no-merges previous..this); without it, the push rule.

acme/shop (GitHub, history imported: commits, one CI run, deployments; no push deliveries)
  known history begins with CI run R 03-01 09:00; R0 (2025-06-01) <- R1 (2025-09-01) are older
  A    <- R1     authored 03-02 08:00
  D1 production A 03-02 10:00, the service's first: A (2 h); R0, R1 were made before the
       known history began, so they count nowhere
  C1   <- A      03-03 09:00 on main
  F1   <- A      pull request 7: authored 03-02 16:00, rebased (committed) 03-03 08:00
  F2   <- F1     03-03 10:00
  M1   <- C1, F2 03-03 11:00, merging pull request 7
  D2 production M1 03-03 12:00: C1 (3 h), F1 (20 h, its author date), F2 (2 h); M1 is a merge
  L1   <- A      03-02 09:00, on a branch that waits; L2 <- L1 03-02 12:00
  C2   <- M1     03-10 08:00;  D3 production C2 03-10 09:00: C2 (1 h)
  M2   <- C2, L2 03-20 10:00;  D4 production M2 03-20 11:00: L1 (18 d 2 h), L2 (17 d 23 h)
  C3   <- M2     03-21 09:00;  D5 production C3 03-21 10:00: C3 (1 h)
  D6 production M2 03-21 11:00: a rollback, no changes (D5 failed)
  C4   <- C3     03-22 09:00;  D7 production C4 03-22 10:00: after M2 come C3, C4; C3 counted in
       D5: C4 (1 h)
acme/web (GitHub, push deliveries and the import)
  push 04-01 09:00: W1 (08:30) <- W0 (2025); D1 production W1 09:30: W1 (1 h; made before the
       first push, but pushed)
  push 10:00: B1 (09:40) <- W1, B2 (09:50)
  forced push 11:00 of B1' (10:40) <- W1, B2' (10:50): its delivery was lost
  D2 production B2' 12:00: B1' (80 min), B2' (70 min); B1, B2 are on no deployed history
  push 13:00: W2 (12:30) <- B2';  D3 production W2 13:30: W2 (1 h)
  Without the graph: D2's sha was never pushed (no changes), and D3 counts B1, B2 and W2.
acme/api (GitLab, push deliveries and the import)
  push 04-02 09:00: G0 (08:00); E1 production G0 10:00: G0 (2 h)
  push 04-03 12:00 of H1..H25 (H_i at 10:00 + i min, each on the one before, H1 on G0): GitLab
       lists the latest 20 (H6..H25), total_commits_count 25
  E2 production H25 13:00: the graph gives all 25, lead 3 h - i min; the pushes, 20
"""

from __future__ import annotations

import hashlib
import json
import random
from datetime import UTC, datetime, timedelta

import duckdb
import pytest

from dbt_like_sql import build_model, load_models
from dbt_like_sql.session import prepare_session
from dcicd_platform.assets.config_tables import write_config_tables
from dcicd_platform.config import PlatformConfig, Service
from dcicd_platform.demo import payloads as pl
from dcicd_platform.ingest.envelope import make_envelope, rfc3339
from dcicd_platform.ingest.loader import load_file, load_files
from tests.helpers import rows, warehouse_with, write_envelopes
from tests.test_incremental import same_rows

SHOP = pl.github_repository("acme/shop")
WEB = pl.github_repository("acme/web")
API = pl.gitlab_project("acme/api")
CONFIG = PlatformConfig(
    services=[
        Service(name="shop", repositories=["acme/shop"]),
        Service(name="web", repositories=["acme/web"]),
        Service(name="api", repositories=["acme/api"]),
    ]
)
HOUR, DAY = 3600, 86400


def sha(name: str) -> str:
    return hashlib.sha1(name.encode()).hexdigest()


def t(month: int, day: int, hour: int, minute: int = 0, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def github_commit(repo, name, parents, authored, committed=None, branch="main", pr=None):
    """A `commit` envelope as the GitHub importer writes it (the API commit object)."""
    committed = committed or authored
    payload = {
        "repository": repo,
        "branch": branch,
        "pull_request": pr,
        "commit": {
            "sha": sha(name),
            "commit": {
                "author": {"name": "ana", "email": "ana@example.com", "date": rfc3339(authored)},
                "committer": {
                    "name": "ana",
                    "email": "ana@example.com",
                    "date": rfc3339(committed),
                },
                "message": name,
            },
            "parents": [{"sha": sha(p)} for p in parents],
        },
    }
    state = branch if pr is None else pr
    delivery = f"import:github:commit:{repo['full_name']}@{sha(name)}:{state}"
    return make_envelope(delivery, "github", "commit", payload, committed)


def gitlab_commit(name, parents, at, branch="main"):
    """A `commit` envelope as the GitLab importer writes it (the API commit object)."""
    when = at.strftime("%Y-%m-%dT%H:%M:%S.000+00:00")
    payload = {
        "project": {k: API[k] for k in ("id", "path_with_namespace", "default_branch")},
        "branch": branch,
        "merge_request": None,
        "commit": {
            "id": sha(name),
            "short_id": sha(name)[:8],
            "title": name,
            "parent_ids": [sha(p) for p in parents],
            "authored_date": when,
            "committed_date": when,
        },
    }
    delivery = f"import:gitlab:commit:acme/api@{sha(name)}:{branch}"
    return make_envelope(delivery, "gitlab", "commit", payload, at)


def github_deploy(repo, number, name, at, environment="production"):
    payload = pl.github_deployment_status(
        repo, number, number * 10, sha(name), environment, "success", at - timedelta(minutes=3),
        at, "ana",
    )  # fmt: skip
    return make_envelope(
        f"deploy-{repo['name']}-{number}", "github", "deployment_status", payload, at
    )


def github_push(repo, at, commits, forced=False, delivery=None):
    body = [pl.github_commit(sha(name), name, "ana", when) for name, when in commits]
    payload = pl.github_push(repo, "main", "0" * 40, body, at, "ana")
    payload["forced"] = forced
    return make_envelope(
        delivery or f"push-{repo['name']}-{at:%d%H%M}", "github", "push", payload, at
    )


def shop() -> list[dict]:
    run = pl.github_workflow_run(
        SHOP, 1, 1, 1, "ci", ".github/workflows/ci.yml", "push", "main", sha("R1"), "ana",
        "completed", "success", t(3, 1, 9), t(3, 1, 9, 1), t(3, 1, 9, 10), "completed",
    )  # fmt: skip
    envelopes = [make_envelope("run-1", "github", "workflow_run", run, t(3, 1, 9, 10))]
    graph = [
        ("R0", [], t(6, 1, 10, year=2025), None),
        ("R1", ["R0"], t(9, 1, 10, year=2025), None),
        ("A", ["R1"], t(3, 2, 8), None),
        ("C1", ["A"], t(3, 3, 9), None),
        ("F1", ["A"], t(3, 2, 16), t(3, 3, 8)),
        ("F2", ["F1"], t(3, 3, 10), None),
        ("M1", ["C1", "F2"], t(3, 3, 11), None),
        ("L1", ["A"], t(3, 2, 9), None),
        ("L2", ["L1"], t(3, 2, 12), None),
        ("C2", ["M1"], t(3, 10, 8), None),
        ("M2", ["C2", "L2"], t(3, 20, 10), None),
        ("C3", ["M2"], t(3, 21, 9), None),
        ("C4", ["C3"], t(3, 22, 9), None),
    ]
    for name, parents, authored, committed in graph:
        envelopes.append(github_commit(SHOP, name, parents, authored, committed))
    # The pull request's own commits, listed again by the pull request: the same commits.
    envelopes += [
        github_commit(SHOP, "F1", ["A"], t(3, 2, 16), t(3, 3, 8), branch=None, pr=7),
        github_commit(SHOP, "F2", ["F1"], t(3, 3, 10), branch=None, pr=7),
    ]
    deployments = [
        (1, "A", t(3, 2, 10)),
        (2, "M1", t(3, 3, 12)),
        (3, "C2", t(3, 10, 9)),
        (4, "M2", t(3, 20, 11)),
        (5, "C3", t(3, 21, 10)),
        (6, "M2", t(3, 21, 11)),
        (7, "C4", t(3, 22, 10)),
    ]
    envelopes += [github_deploy(SHOP, n, name, at) for n, name, at in deployments]
    return envelopes


def web(with_graph: bool = True) -> list[dict]:
    envelopes = [
        github_push(WEB, t(4, 1, 9), [("W1", t(4, 1, 8, 30))]),
        github_push(WEB, t(4, 1, 10), [("B1", t(4, 1, 9, 40)), ("B2", t(4, 1, 9, 50))]),
        # The forced push of B1', B2' at 11:00 was never delivered.
        github_push(WEB, t(4, 1, 13), [("W2", t(4, 1, 12, 30))]),
        github_deploy(WEB, 101, "W1", t(4, 1, 9, 30)),
        github_deploy(WEB, 102, "B2'", t(4, 1, 12)),
        github_deploy(WEB, 103, "W2", t(4, 1, 13, 30)),
    ]
    if with_graph:
        graph = [
            ("W0", [], t(5, 1, 8, year=2025), "main", None),
            ("W1", ["W0"], t(4, 1, 8, 30), "main", None),
            ("B1'", ["W1"], t(4, 1, 10, 40), "main", None),
            ("B2'", ["B1'"], t(4, 1, 10, 50), "main", None),
            ("W2", ["B2'"], t(4, 1, 12, 30), "main", None),
            # The rewritten commits, still listed by the pull request they came from.
            ("B1", ["W1"], t(4, 1, 9, 40), None, 9),
            ("B2", ["B1"], t(4, 1, 9, 50), None, 9),
        ]
        envelopes += [
            github_commit(WEB, name, parents, at, branch=branch, pr=pr)
            for name, parents, at, branch, pr in graph
        ]
    return envelopes


def h_time(i: int) -> datetime:
    return t(4, 3, 10, i)


def api() -> list[dict]:
    push_g0 = pl.gitlab_push(API, "main", "0" * 40, [gitlab_push_commit("G0", t(4, 2, 8))], "ana")
    listed = [gitlab_push_commit(f"H{i}", h_time(i)) for i in range(6, 26)]
    push_h = pl.gitlab_push(API, "main", sha("G0"), listed, "ana")
    push_h["total_commits_count"] = 25  # GitLab lists the latest 20 commits of a push
    envelopes = [
        make_envelope("push-api-1", "gitlab", "push", push_g0, t(4, 2, 9)),
        make_envelope("push-api-2", "gitlab", "push", push_h, t(4, 3, 12)),
        make_envelope(
            "deploy-api-1", "gitlab", "deployment",
            pl.gitlab_deployment(API, 1, sha("G0"), "production", "success", t(4, 2, 10), "ana"),
            t(4, 2, 10),
        ),
        make_envelope(
            "deploy-api-2", "gitlab", "deployment",
            pl.gitlab_deployment(API, 2, sha("H25"), "production", "success", t(4, 3, 13), "ana"),
            t(4, 3, 13),
        ),
        gitlab_commit("G0", [], t(4, 2, 8)),
    ]  # fmt: skip
    envelopes += [
        gitlab_commit(f"H{i}", ["G0" if i == 1 else f"H{i - 1}"], h_time(i)) for i in range(1, 26)
    ]
    return envelopes


def gitlab_push_commit(name: str, at: datetime) -> dict:
    return {
        "id": sha(name),
        "message": name,
        "title": name,
        "timestamp": rfc3339(at),
        "author": {"name": "ana", "email": "ana@example.com"},
    }


def organisation() -> list[dict]:
    return shop() + web() + api()


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    conn, report = warehouse_with(tmp_path_factory.mktemp("graph"), organisation(), CONFIG)
    assert report.quarantined == 0 and report.duplicates == 0
    return conn


def changes(conn, service: str) -> list[tuple]:
    """(deployment number, commit name, lead time, rule) in deployment order."""
    names = {sha(n): n for n in NAMES}
    found = rows(
        conn,
        "SELECT deployment_key, sha, lead_time_s, found_by FROM marts.deployment_changes"
        " WHERE service = ? ORDER BY deployed_at, committed_at, sha",
        service,
    )
    return [
        (c["deployment_key"].rsplit(":", 1)[1], names[c["sha"]], c["lead_time_s"], c["found_by"])
        for c in found
    ]


NAMES = [
    *["R0", "R1", "A", "C1", "F1", "F2", "M1", "L1", "L2", "C2", "M2", "C3", "C4"],
    *["W0", "W1", "B1", "B2", "B1'", "B2'", "W2", "G0"],
    *(f"H{i}" for i in range(1, 26)),
]


def test_the_graph_holds_each_commit_once_with_its_parents(warehouse):
    graph = rows(
        warehouse,
        "SELECT sha, parent_shas, committed_at, committer_date FROM core.commit_graph"
        " WHERE repo = 'acme/shop'",
    )
    by_sha = {g["sha"]: g for g in graph}
    assert len(graph) == 13  # F1 and F2 came twice: from main and from the pull request
    assert by_sha[sha("M1")]["parent_shas"] == [sha("C1"), sha("F2")]
    assert by_sha[sha("R0")]["parent_shas"] == []
    # committed_at is the author date (the push rule's clock too), the committer date beside it
    assert by_sha[sha("F1")]["committed_at"] == t(3, 2, 16)
    assert by_sha[sha("F1")]["committer_date"] == t(3, 3, 8)
    gitlab = rows(warehouse, "SELECT count(*) AS n FROM core.commit_graph WHERE repo = 'acme/api'")
    assert gitlab == [{"n": 26}]


def test_branch_merge_old_branch_and_rollback(warehouse):
    assert changes(warehouse, "shop") == [
        ("1", "A", 2 * HOUR, "commit_graph"),
        ("2", "F1", 20 * HOUR, "commit_graph"),
        ("2", "C1", 3 * HOUR, "commit_graph"),
        ("2", "F2", 2 * HOUR, "commit_graph"),
        ("3", "C2", HOUR, "commit_graph"),
        ("4", "L1", 18 * DAY + 2 * HOUR, "commit_graph"),
        ("4", "L2", 17 * DAY + 23 * HOUR, "commit_graph"),
        ("5", "C3", HOUR, "commit_graph"),
        ("7", "C4", HOUR, "commit_graph"),
    ]
    deployments = {
        d["deployment_key"]: d
        for d in rows(warehouse, "SELECT * FROM marts.production_deployments")
    }
    assert deployments["github:6"]["is_rollback"] and deployments["github:6"]["changes"] == 0
    assert deployments["github:5"]["is_failed"]
    assert deployments["github:2"]["changes"] == 3
    assert deployments["github:2"]["lead_time_median_s"] == 3 * HOUR
    assert (
        deployments["github:4"]["lead_time_median_s"]
        == (18 * DAY + 2 * HOUR + 17 * DAY + 23 * HOUR) / 2
    )


def test_forced_push_whose_delivery_was_lost_the_graph_wins(warehouse, tmp_path):
    assert changes(warehouse, "web") == [
        ("101", "W1", HOUR, "commit_graph"),
        ("102", "B1'", 80 * 60, "commit_graph"),
        ("102", "B2'", 70 * 60, "commit_graph"),
        ("103", "W2", HOUR, "commit_graph"),
    ]
    # The same deliveries without the graph: the push rule cannot see the forced push.
    conn = change_warehouse(tmp_path, web(with_graph=False))
    assert changes(conn, "web") == [
        ("101", "W1", HOUR, "pushes"),
        ("103", "B1", 3 * HOUR + 50 * 60, "pushes"),
        ("103", "B2", 3 * HOUR + 40 * 60, "pushes"),
        ("103", "W2", HOUR, "pushes"),
    ]


def test_a_push_that_listed_20_of_25_commits(warehouse, tmp_path):
    expected = [("1", "G0", 2 * HOUR, "commit_graph")]
    expected += [("2", f"H{i}", 3 * HOUR - 60 * i, "commit_graph") for i in range(1, 26)]
    assert changes(warehouse, "api") == expected
    deployment = rows(
        warehouse,
        "SELECT changes, lead_time_median_s FROM marts.production_deployments"
        " WHERE deployment_key = 'gitlab:acme/api:2'",
    )
    assert deployment == [{"changes": 25, "lead_time_median_s": 3 * HOUR - 60 * 13}]
    # Without the graph, the push rule sees the 20 the push listed.
    conn = change_warehouse(tmp_path, [e for e in api() if e["event_type"] != "commit"])
    assert [c[1] for c in changes(conn, "api")] == ["G0", *(f"H{i}" for i in range(6, 26))]


def test_a_commit_without_parents_is_quarantined(tmp_path):
    envelope = github_commit(SHOP, "A", ["R1"], t(3, 2, 8))
    del envelope["payload"]["commit"]["parents"]
    conn = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    report = load_file(conn, write_envelopes(tmp_path / "in.ndjson", [envelope]))
    assert report.quarantined == 1
    reason = conn.execute("SELECT reason FROM raw.quarantine").fetchone()[0]
    assert "commit.parents" in reason


# The models a change set depends on, and it: the rest of the graph never reads a commit.
CHANGE_MODELS = {
    "core.pipeline_runs",
    "core.deployments",
    "core.commits",
    "core.commit_graph",
    "core.commit_files",
    "core.commit_services",
    "core.pull_requests",
    "marts.deployment_changes",
}


def build_change_models(conn) -> None:
    prepare_session(conn)
    write_config_tables(conn, CONFIG)
    for model in load_models():
        if model.table in CHANGE_MODELS:
            build_model(conn, model)


def change_warehouse(tmp_path, envelopes: list[dict]) -> duckdb.DuckDBPyConnection:
    conn = duckdb.connect(str(tmp_path / "contrast.duckdb"))
    load_files(conn, [write_envelopes(tmp_path / "contrast.ndjson", envelopes)])
    build_change_models(conn)
    return conn


@pytest.mark.parametrize("seed", [1, 2])
def test_shuffled_loads_give_the_tables_of_one_build(tmp_path, seed):
    full = tmp_path / "full.duckdb"
    with duckdb.connect(str(full)) as conn:
        load_files(conn, [write_envelopes(tmp_path / "all.ndjson", organisation())])
        build_change_models(conn)
    lines = [json.dumps(e) for e in organisation()]
    rng = random.Random(seed)
    rng.shuffle(lines)
    cuts = sorted(rng.sample(range(1, len(lines)), 2))
    parts = [lines[a:b] for a, b in zip([0, *cuts], [*cuts, len(lines)], strict=True)]
    conn = duckdb.connect(str(tmp_path / "stepwise.duckdb"))
    for number, part in enumerate(parts):
        path = tmp_path / f"load-{number}.ndjson"
        path.write_text("\n".join(part) + "\n")
        load_files(conn, [path])
        build_change_models(conn)
    assert [table for table in sorted(CHANGE_MODELS) if not same_rows(conn, str(full), table)] == []
    assert conn.execute("SELECT count(*) FROM marts.deployment_changes").fetchone()[0] == 39
