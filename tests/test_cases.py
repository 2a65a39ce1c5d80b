"""Cases rebuilt from public bug reports (tests/fixtures/cases/), and the kind of fault each shows.

Each case's input is loaded into a real DuckDB warehouse and its README's right figures asserted.
Then each kind of fault is worked by hand beyond the one input:

- a delivery about another object (a PagerDuty note, a responder) is no incident and changes
  nothing about its incident; state comes from lifecycle events (reopen, resolve again);
- an issue's labels in its latest state decide whether it is an incident (GitHub and GitLab);
- a forced push discards the commits pushed since the previous production deployment that it does
  not list: they are changes of no deployment (unless a later push brings them back).
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from dcicd_platform.config import PlatformConfig, Service, load_config
from dcicd_platform.demo import payloads as pl
from dcicd_platform.ingest.envelope import make_envelope
from dcicd_platform.ingest.loader import load_file, load_files
from tests.helpers import FIXTURES, build_core, fixture_envelope, rows, warehouse_with

CASES = FIXTURES / "cases"


def t(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def case_warehouse(tmp_path: Path, name: str) -> duckdb.DuckDBPyConnection:
    """The case's deliveries loaded and every model built, with its configuration if any."""
    folder = CASES / name
    config_file = folder / "dcicd.yaml"
    config = load_config(config_file) if config_file.exists() else PlatformConfig()
    conn = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    for path in sorted(folder.glob("input*.ndjson")):
        report = load_file(conn, path)
        assert report.quarantined == 0 and report.loaded > 0, report
        build_core(conn, config)
    return conn


def folder(tmp_path: Path, name: str) -> Path:
    """A fresh folder, for a test that builds more than one warehouse."""
    (tmp_path / name).mkdir()
    return tmp_path / name


def day_figures(conn, day: str, service: str = "*") -> dict:
    found = rows(
        conn,
        "SELECT * FROM marts.dora_metrics WHERE grain = 'day' AND service = ?"
        " AND period_start = ?::DATE",
        service,
        day,
    )
    assert len(found) == 1, found
    return found[0]


# -- the cases ------------------------------------------------------------------------------------


def test_case_pd_note_added(tmp_path):
    conn = case_warehouse(tmp_path, "pd-note-added")
    assert rows(
        conn,
        "SELECT incident_key, service, opened_at, resolved_at, caused_by_deployment_key"
        " FROM core.incidents",
    ) == [
        {
            "incident_key": "pagerduty:PINC001",
            "service": "checkout",
            "opened_at": t(2, 13),
            "resolved_at": t(2, 13, 45),
            "caused_by_deployment_key": "github:5001",
        }
    ]
    day = day_figures(conn, "2026-11-02")
    assert (day["incidents"], day["restore_median_s"], day["failed_deployments"]) == (1, 2700, 1)


def test_case_gh_incident_label_removed(tmp_path):
    conn = case_warehouse(tmp_path, "gh-incident-label-removed")
    assert rows(conn, "SELECT * FROM core.incidents") == []
    assert rows(
        conn, "SELECT deployment_key, is_failed, incidents_caused FROM marts.production_deployments"
    ) == [{"deployment_key": "github:5101", "is_failed": False, "incidents_caused": 0}]
    day = day_figures(conn, "2026-11-03")
    assert (day["incidents"], day["failed_deployments"], day["change_failure_rate"]) == (0, 0, 0.0)


def test_case_force_push_dropped_commits(tmp_path):
    conn = case_warehouse(tmp_path, "force-push-dropped-commits")
    changes = rows(
        conn,
        "SELECT left(sha, 2) AS sha, lead_time_s FROM marts.deployment_changes"
        " WHERE deployment_key = 'github:6002' ORDER BY sha",
    )
    assert changes == [{"sha": "e1", "lead_time_s": 4800}, {"sha": "e2", "lead_time_s": 4200}]
    deployment = rows(
        conn,
        "SELECT changes, lead_time_median_s FROM marts.production_deployments"
        " WHERE deployment_key = 'github:6002'",
    )
    assert deployment == [{"changes": 2, "lead_time_median_s": 4500}]
    # B1 and B2 are in no deployment's changes; A stays the first deployment's.
    assert rows(
        conn,
        "SELECT left(sha, 2) AS sha, deployment_key FROM marts.deployment_changes"
        " WHERE left(sha, 2) NOT IN ('e1', 'e2')",
    ) == [{"sha": "aa", "deployment_key": "github:6001"}]


# -- PagerDuty: lifecycle events decide, deliveries about other objects change nothing -----------

SHOP = pl.github_repository("acme/shop")
CONFIG = PlatformConfig(
    services=[Service(name="shop", repositories=["acme/shop"], pagerduty_services=["PSHOP"])]
)


def pd(kind: str, incident: str, at: datetime) -> dict:
    event = pl.pagerduty_incident_event(
        f"{incident}-{kind}-{at:%H%M}", kind, incident, 1, "Errors", "PSHOP", "Shop", at
    )
    return make_envelope(event["event"]["id"], "pagerduty", kind, event, at)


def pd_about(kind: str, data_type: str, incident: str, object_id: str, at: datetime) -> dict:
    """A v3 event whose data is another object (a note, a responder) naming its incident."""
    event = pd(kind, incident, at)
    event["payload"]["event"]["data"] = {
        "id": object_id,
        "type": data_type,
        "content": "Postmortem: a bad cache setting.",
        "incident": {"id": incident, "summary": "Errors", "type": "incident_reference"},
    }
    return event


def incidents(conn) -> list[dict]:
    return rows(
        conn,
        "SELECT incident_key, service, opened_at, resolved_at FROM core.incidents"
        " ORDER BY incident_key",
    )


def test_a_reopened_pagerduty_incident_is_not_resolved(tmp_path):
    conn, report = warehouse_with(
        tmp_path,
        [
            pd("incident.triggered", "P1", t(4, 10)),
            pd("incident.acknowledged", "P1", t(4, 10, 5)),
            pd("incident.resolved", "P1", t(4, 10, 30)),
            pd("incident.reopened", "P1", t(4, 11)),
            # A note on the open incident: not a lifecycle event, it resolves nothing.
            pd_about("incident.annotated", "incident_note", "P1", "N1", t(4, 11, 10)),
        ],
        CONFIG,
    )
    assert report.quarantined == 0
    assert incidents(conn) == [
        {
            "incident_key": "pagerduty:P1",
            "service": "shop",
            "opened_at": t(4, 10),
            "resolved_at": None,
        }
    ]


def test_reopened_then_resolved_again_takes_the_later_resolution(tmp_path):
    envelopes = [
        pd("incident.triggered", "P1", t(4, 10)),
        pd("incident.resolved", "P1", t(4, 10, 30)),
        pd("incident.reopened", "P1", t(4, 11)),
        pd("incident.resolved", "P1", t(4, 12)),
        # After the resolution: annotations of several kinds change nothing.
        pd("incident.priority_updated", "P1", t(4, 13)),
        pd_about("incident.annotated", "incident_note", "P1", "N1", t(4, 13, 30)),
        pd_about("incident.responder.added", "incident_responder", "P1", "R1", t(4, 13, 40)),
    ]
    conn, report = warehouse_with(tmp_path, envelopes, CONFIG)
    assert report.quarantined == 0
    assert incidents(conn) == [
        {
            "incident_key": "pagerduty:P1",
            "service": "shop",
            "opened_at": t(4, 10),
            "resolved_at": t(4, 12),
        }
    ]
    day = day_figures(conn, "2026-11-04", "shop")
    assert (day["incidents"], day["restore_median_s"]) == (1, 7200)


def test_a_note_alone_makes_no_incident(tmp_path):
    conn, report = warehouse_with(
        tmp_path, [pd_about("incident.annotated", "incident_note", "P9", "N9", t(4, 9))], CONFIG
    )
    assert report.quarantined == 0
    assert incidents(conn) == []


def test_a_note_naming_no_incident_is_quarantined(tmp_path):
    note = pd_about("incident.annotated", "incident_note", "P9", "N9", t(4, 9))
    del note["payload"]["event"]["data"]["incident"]
    conn, report = warehouse_with(tmp_path, [note], CONFIG)
    assert report.quarantined == 1
    reason = rows(conn, "SELECT reason FROM raw.quarantine")[0]["reason"]
    assert reason == "pagerduty/incident.annotated payload lacks event.data.incident.id"


# -- issues: the latest state's labels decide; reopen and close again --------------------------


def gh_issue(action: str, labels: list[str], state: str, at: datetime, closed=None) -> dict:
    payload = pl.github_issue(
        SHOP,
        501,
        5,
        "Checkout slow",
        "Customers report slowness.",
        labels,
        state,
        t(4, 10),
        closed,
        at,
        action,
    )
    return make_envelope(f"issue-{action}-{at:%H%M}", "github", "issues", payload, at)


def test_github_issue_reopened_then_closed_again(tmp_path):
    opened = gh_issue("opened", ["Incident"], "open", t(4, 10))
    closed = gh_issue("closed", ["Incident"], "closed", t(4, 11), t(4, 11))
    reopened = gh_issue("reopened", ["Incident"], "open", t(4, 12))
    conn, _ = warehouse_with(folder(tmp_path, "a"), [opened, closed, reopened], CONFIG)
    assert [(i["opened_at"], i["resolved_at"]) for i in incidents(conn)] == [(t(4, 10), None)]
    closed_again = gh_issue("closed", ["Incident"], "closed", t(4, 13), t(4, 13))
    assigned = gh_issue("assigned", ["Incident"], "closed", t(4, 14), t(4, 13))
    conn, _ = warehouse_with(
        folder(tmp_path, "b"), [opened, closed, reopened, closed_again, assigned], CONFIG
    )
    assert [(i["opened_at"], i["resolved_at"]) for i in incidents(conn)] == [(t(4, 10), t(4, 13))]


def test_github_issue_labels_of_the_latest_state_decide(tmp_path):
    opened = gh_issue("opened", ["bug"], "open", t(4, 10))
    labelled = gh_issue("labeled", ["bug", "incident"], "open", t(4, 10, 15))
    unlabelled = gh_issue("unlabeled", ["bug"], "open", t(4, 10, 30))
    conn, _ = warehouse_with(folder(tmp_path, "a"), [opened, labelled], CONFIG)
    # Labelled after it was opened: an incident since its creation.
    assert [(i["incident_key"], i["opened_at"]) for i in incidents(conn)] == [
        ("github:501", t(4, 10))
    ]
    conn, _ = warehouse_with(folder(tmp_path, "b"), [opened, labelled, unlabelled], CONFIG)
    assert incidents(conn) == []
    relabelled = gh_issue("labeled", ["bug", "incident"], "open", t(4, 11))
    conn, _ = warehouse_with(
        folder(tmp_path, "c"), [unlabelled, relabelled, opened, labelled], CONFIG
    )
    assert len(incidents(conn)) == 1


def gl_issue(action: str, labels: list[str], state: str, at: datetime, closed=None) -> dict:
    envelope = fixture_envelope("gitlab/issue.json", f"gl-{action}-{at:%H%M}")
    payload = copy.deepcopy(envelope["payload"])
    stamp = at.isoformat().replace("+00:00", "Z")
    payload["object_attributes"].update(
        action=action,
        state=state,
        updated_at=stamp,
        closed_at=closed.isoformat().replace("+00:00", "Z") if closed else None,
        created_at="2026-11-04T10:00:00Z",
    )
    payload["labels"] = [{"id": 1, "title": label} for label in labels]
    payload["changes"] = (
        {"labels": {"previous": [], "current": payload["labels"]}} if action == "update" else {}
    )
    envelope["payload"] = payload
    envelope["received_at"] = stamp
    return envelope


def test_gitlab_issue_reopened_then_closed_again(tmp_path):
    opened = gl_issue("open", ["INCIDENT"], "opened", t(4, 10))
    closed = gl_issue("close", ["INCIDENT"], "closed", t(4, 11), t(4, 11))
    reopened = gl_issue("reopen", ["INCIDENT"], "opened", t(4, 12))
    conn, _ = warehouse_with(folder(tmp_path, "a"), [opened, closed, reopened])
    assert [(i["incident_key"], i["resolved_at"]) for i in incidents(conn)] == [
        ("gitlab:301", None)
    ]
    closed_again = gl_issue("close", ["INCIDENT"], "closed", t(4, 13), t(4, 13))
    conn, _ = warehouse_with(folder(tmp_path, "b"), [opened, closed, reopened, closed_again])
    assert [(i["opened_at"], i["resolved_at"]) for i in incidents(conn)] == [(t(4, 10), t(4, 13))]


def test_gitlab_issue_whose_incident_label_was_removed(tmp_path):
    opened = gl_issue("open", ["incident"], "opened", t(4, 10))
    unlabelled = gl_issue("update", ["bug"], "opened", t(4, 10, 20))
    closed = gl_issue("close", ["bug"], "closed", t(4, 11), t(4, 11))
    conn, _ = warehouse_with(tmp_path, [opened, unlabelled, closed])
    assert incidents(conn) == []


# -- forced pushes: discarded commits are changes of no deployment -------------------------------

SHA = {name: name * 20 for name in ("a1", "b1", "b2", "c1", "e1", "e2")}


class Branch:
    """Deliveries on acme/shop's main branch, in order."""

    def __init__(self):
        self.envelopes: list[dict] = []
        self.head = "0" * 40

    def push(self, at: datetime, commits: list[tuple[str, datetime]], forced=False, head=None):
        body = [pl.github_commit(SHA[c], c, "ana", when) for c, when in commits]
        payload = pl.github_push(SHOP, "main", self.head, body or [{"id": ""}], at, "ana")
        payload.update(forced=forced, commits=body, head_commit=body[-1] if body else None)
        payload["after"] = self.head = SHA[head] if head else body[-1]["id"]
        self.envelopes.append(make_envelope(f"push-{at:%d%H%M}", "github", "push", payload, at))

    def deploy(self, number: int, commit: str, at: datetime):
        payload = pl.github_deployment_status(
            SHOP, number, number * 10, SHA[commit], "production", "success", at, at, "ana"
        )
        self.envelopes.append(
            make_envelope(f"deploy-{number}", "github", "deployment_status", payload, at)
        )


def changes_by_deployment(conn) -> dict[str, list[tuple[str, float]]]:
    found: dict[str, list[tuple[str, float]]] = {}
    for r in rows(
        conn,
        "SELECT deployment_key, left(sha, 2) AS sha, lead_time_s FROM marts.deployment_changes"
        " ORDER BY deployment_key, sha",
    ):
        found.setdefault(r["deployment_key"], []).append((r["sha"], r["lead_time_s"]))
    return found


def test_a_forced_push_resetting_the_branch_discards_what_came_since_the_deployment(tmp_path):
    main = Branch()
    main.push(t(5, 9), [("a1", t(5, 8))])
    main.deploy(1, "a1", t(5, 9, 30))
    main.push(t(5, 10), [("b1", t(5, 9, 45))])
    main.push(t(5, 11), [], forced=True, head="a1")  # reset to a1: lists nothing
    main.push(t(5, 12), [("c1", t(5, 11, 30))])
    main.deploy(2, "c1", t(5, 13))
    conn, _ = warehouse_with(tmp_path, main.envelopes, CONFIG)
    assert changes_by_deployment(conn) == {
        "github:1": [("a1", 5400)],  # deployed before the forced push: not discarded
        "github:2": [("c1", 5400)],  # b1 is a change of no deployment
    }


def test_a_forced_push_keeps_the_commits_it_lists(tmp_path):
    main = Branch()
    main.push(t(5, 10), [("b1", t(5, 9)), ("b2", t(5, 9, 30))])
    main.push(t(5, 11), [("b1", t(5, 9)), ("e2", t(5, 10, 30))], forced=True)
    main.deploy(1, "e2", t(5, 12))
    conn, _ = warehouse_with(tmp_path, main.envelopes, CONFIG)
    assert changes_by_deployment(conn) == {"github:1": [("b1", 10800), ("e2", 5400)]}
    deployment = rows(conn, "SELECT changes, lead_time_median_s FROM marts.production_deployments")
    assert deployment == [{"changes": 2, "lead_time_median_s": 8100}]


def test_commits_a_forced_push_brings_back_are_changes_again(tmp_path):
    main = Branch()
    main.push(t(5, 9), [("a1", t(5, 8))])
    main.deploy(1, "a1", t(5, 9, 30))
    main.push(t(5, 10), [("b1", t(5, 9, 40)), ("b2", t(5, 9, 50))])
    main.push(t(5, 11), [("e1", t(5, 10, 50))], forced=True)
    main.deploy(2, "e1", t(5, 11, 30))
    # Undone: the branch is forced back to b2, listing b1 and b2 again.
    main.push(t(5, 12), [("b1", t(5, 9, 40)), ("b2", t(5, 9, 50))], forced=True)
    main.deploy(3, "b2", t(5, 13))
    conn, _ = warehouse_with(tmp_path, main.envelopes, CONFIG)
    assert changes_by_deployment(conn) == {
        "github:1": [("a1", 5400)],
        "github:2": [("e1", 2400)],  # b1, b2 were discarded before this deployment
        "github:3": [("b1", 12000), ("b2", 11400)],
    }


def test_a_refresh_after_the_forced_push_equals_a_full_rebuild(tmp_path):
    lines = (CASES / "force-push-dropped-commits" / "input.ndjson").read_bytes().splitlines(True)
    before, after = folder(tmp_path, "landing") / "1.ndjson", tmp_path / "landing" / "2.ndjson"
    before.write_bytes(b"".join(lines[:3]))  # a1, its deployment, b1 and b2
    after.write_bytes(b"".join(lines[3:]))  # the forced push and the next deployment
    stepwise = duckdb.connect(str(tmp_path / "stepwise.duckdb"))
    load_files(stepwise, [before])
    build_core(stepwise)
    # Before the forced push, b1 and b2 are on their way to production.
    assert [
        r["sha"][:2] for r in rows(stepwise, "SELECT sha FROM core.commits ORDER BY push_seq")
    ] == ["aa", "b1", "b2"]
    load_files(stepwise, [after])
    build_core(stepwise)
    full = duckdb.connect(str(tmp_path / "full.duckdb"))
    load_files(full, [before, after])
    build_core(full)
    for table in (
        "core.commits",
        "marts.deployment_changes",
        "marts.production_deployments",
        "marts.dora_metrics",
    ):
        query = f"SELECT * FROM {table} ORDER BY ALL"
        assert rows(stepwise, query) == rows(full, query), table
    assert changes_by_deployment(stepwise)["github:6002"] == [("e1", 4800), ("e2", 4200)]
