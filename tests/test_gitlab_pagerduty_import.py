"""GitLab and PagerDuty API objects, mapped to their webhook shapes, load as the webhooks do.

The API objects are real recorded answers (tests/fixtures/api-devlake-e2e, see its SOURCES.md).
Every expected figure is computed here from the recorded objects themselves, by the contract's
rules (CONTRACTS.md sections 4 and 5), never read back from the mapping.
"""

from __future__ import annotations

import copy
import csv
import json
import math
import re
from datetime import UTC, datetime, timedelta

import pytest

from dcicd_platform.ingest.loader import load_file
from dcicd_platform.sources import gitlab_objects, pagerduty_objects
from tests.helpers import FIXTURES, fixture_envelope, rows, warehouse_with, write_envelopes

API = FIXTURES / "api-devlake-e2e"
FINISHED = {
    "success": "success",
    "failed": "failure",
    "canceled": "cancelled",
    "skipped": "skipped",
}
DEPLOYMENT_STATUS = {"failed": "failure", "canceled": "cancelled"}
DEFAULT_BRANCH = "master"  # the recorded projects' default branch (their pipelines run on it)


def api(relative: str) -> list[tuple[dict, dict]]:
    """The recorded objects of one CSV, each with its row (url, params, input)."""
    csv.field_size_limit(1 << 30)
    with (API / relative).open(newline="", encoding="utf-8") as f:
        return [(json.loads(row["data"]), row) for row in csv.DictReader(f)]


def objects(relative: str) -> list[dict]:
    return [data for data, _ in api(relative)]


def ts(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def project_at(web_url: str, project_id: int = 1) -> dict:
    """The API project an object belongs to, from the object's own web_url (the recorded
    answers name their project by URL; its id was anonymised by the recorder)."""
    base = web_url.split("/-/")[0]
    path = re.sub(r"^https?://[^/]+/", "", base)
    return {
        "id": project_id,
        "name": path.rsplit("/", 1)[-1],
        "name_with_namespace": path.replace("/", " / "),
        "path_with_namespace": path,
        "web_url": base,
        "default_branch": DEFAULT_BRANCH,
        "visibility": "public",
    }


def path_of(web_url: str) -> str:
    return project_at(web_url)["path_with_namespace"]


def pipelines() -> list[dict]:
    return objects("gitlab/_raw_gitlab_api_pipeline.csv") + objects(
        "gitlab/_raw_gitlab_api_pipeline_details.csv"
    )


def deployments() -> list[tuple[dict, dict]]:
    """Each deployment with its project (the one its deployable job ran in)."""
    project = project_at("https://gitlab.com/merico-dev/ee/vdev.co", 12345678)
    return [(d, project) for d in objects("gitlab/_raw_gitlab_api_deployments.csv")]


def incidents() -> list[dict]:
    return objects("pagerduty/_raw_pagerduty_incidents.csv")


def all_envelopes() -> list[dict]:
    envelopes = [gitlab_objects.pipeline_envelope(project_at(p["web_url"]), p) for p in pipelines()]
    envelopes += [
        gitlab_objects.job_envelope(project_at(j["web_url"]), j)
        for j in objects("gitlab/_raw_gitlab_api_job.csv")
    ]
    envelopes += [gitlab_objects.deployment_envelope(p, d) for d, p in deployments()]
    merge_requests = objects("gitlab/_raw_gitlab_api_merge_requests.csv")
    envelopes += [
        gitlab_objects.merge_request_envelope(project_at(m["web_url"]), m) for m in merge_requests
    ]
    for commit, row in api("gitlab/_raw_gitlab_api_merge_request_commits.csv"):
        envelopes.append(
            gitlab_objects.commit_envelope(
                project_at(commit["web_url"]),
                commit,
                merge_request_iid=json.loads(row["input"])["Iid"],
            )
        )
    for incident in incidents():
        envelopes += pagerduty_objects.incident_envelopes(incident, incident["log_entries"])
    return envelopes


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    """One warehouse holding the whole recorded history, mapped and loaded by the loader."""
    envelopes = all_envelopes()
    conn, report = warehouse_with(tmp_path_factory.mktemp("import"), envelopes)
    yield conn, report, envelopes
    conn.close()


def test_every_mapped_object_loads(imported):
    conn, report, envelopes = imported
    assert report.quarantined == 0, rows(conn, "SELECT reason FROM raw.quarantine")
    assert report.loaded == len(envelopes) and report.duplicates == 0
    counts = dict(
        conn.execute(
            "SELECT source || '/' || event_type, count(*) FROM raw.events GROUP BY 1"
        ).fetchall()
    )
    assert counts["gitlab/pipeline"] == 45 and counts["gitlab/build"] == 75
    assert counts["gitlab/deployment"] == 8 and counts["gitlab/merge_request"] == 18
    assert counts["gitlab/commit"] == 37


@pytest.mark.dates
def test_pipeline_runs_are_the_api_pipelines(imported):
    conn = imported[0]
    got = {r["run_key"]: r for r in rows(conn, "SELECT * FROM core.pipeline_runs")}
    assert set(got) == {f"gitlab:{p['id']}:1" for p in pipelines()}
    for p in pipelines():
        run = got[f"gitlab:{p['id']}:1"]
        done = p["status"] in FINISHED
        created = ts(p["created_at"])
        expected = {
            "source": "gitlab",
            "repo": path_of(p["web_url"]),
            "branch": p["ref"],
            "sha": p["sha"],
            "status": "completed" if done else p["status"],
            "conclusion": FINISHED.get(p["status"]),
            "queued_at": created,
            # GitLab's queued_duration: seconds from creation until a runner started it.
            "started_at": created + timedelta(seconds=p.get("queued_duration") or 0),
            "finished_at": ts(p.get("finished_at")) if done else None,
            "duration_s": p.get("duration"),  # GitLab's own running time, when it says
            "attempt": 1,
            "trigger_event": p["source"],
            "actor": (p.get("user") or {}).get("username"),
            "default_branch": DEFAULT_BRANCH,
        }
        assert {k: run[k] for k in expected} == expected, p["id"]
        if p.get("started_at"):  # the API's own start, which queued_duration rounds to seconds
            assert abs(run["started_at"] - ts(p["started_at"])) < timedelta(seconds=1)
    # The recorded details hold 16 finished pipelines, each with its duration.
    assert sum(1 for r in got.values() if r["duration_s"] is not None) == 16


@pytest.mark.dates
def test_pipeline_jobs_are_the_api_jobs(imported):
    conn = imported[0]
    jobs = objects("gitlab/_raw_gitlab_api_job.csv")
    got = {r["job_key"]: r for r in rows(conn, "SELECT * FROM core.pipeline_jobs")}
    assert set(got) == {f"gitlab:{j['id']}" for j in jobs}
    for j in jobs:
        done = j["status"] in FINISHED
        created, started, finished = ts(j["created_at"]), ts(j["started_at"]), ts(j["finished_at"])
        if done and finished is None and started and j["duration"] is not None:
            finished = started + timedelta(seconds=j["duration"])
        duration = j["duration"]
        if duration is None and done and started and finished:
            duration = max(0.0, (finished - started).total_seconds())
        # A job ran when a runner started it and it was not skipped (CONTRACTS.md section 5).
        ran = done and started is not None and j["status"] != "skipped"
        runner = j["runner"]
        expected = {
            "run_key": f"gitlab:{j['pipeline']['id']}:1",
            "repo": path_of(j["web_url"]),
            "job_name": j["name"],
            "stage": j["stage"],
            "sha": j["commit"]["id"],
            "status": "completed" if done else j["status"],
            "conclusion": FINISHED.get(j["status"]),
            "queued_at": created,
            "started_at": started,
            "finished_at": finished if done else None,
            "duration_s": duration,
            "queue_s": (started - created).total_seconds() if started else None,
            "runner_name": runner["description"] if runner else None,
            "self_hosted": bool(runner) and not runner["is_shared"],
            "ran": ran,
            "billable_minutes": max(1, math.ceil(duration / 60)) if ran and duration else 0,
        }
        row = got[f"gitlab:{j['id']}"]
        actual = {k: row[k] for k in expected}
        assert actual.pop("queue_s") == pytest.approx(expected.pop("queue_s")), j["id"]
        assert actual.pop("duration_s") == pytest.approx(expected.pop("duration_s")), j["id"]
        assert actual == expected, j["id"]


def test_deployments_are_the_api_deployments(imported):
    conn = imported[0]
    got = {r["deployment_key"]: r for r in rows(conn, "SELECT * FROM core.deployments")}
    assert len(got) == len(deployments())
    for d, project in deployments():
        env = d["environment"]["name"].lower()
        expected = {
            "source": "gitlab",
            "repo": project["path_with_namespace"],
            "environment": d["environment"]["name"],
            "sha": d["sha"],  # the full sha, as the hook's commit_url carries it
            "ref": d["ref"],
            "status": DEPLOYMENT_STATUS.get(d["status"], d["status"]),
            # Reached success at its last update; nothing else is a deployment for DORA.
            "deployed_at": ts(d["updated_at"]) if d["status"] == "success" else None,
            "is_production": env in ("production", "prod")
            or env.startswith(("production-", "prod-")),
            "is_rollback": False,
        }
        row = got[f"gitlab:{project['path_with_namespace']}:{d['id']}"]
        assert {k: row[k] for k in expected} == expected, d["id"]
    production = [r for r in got.values() if r["is_production"]]
    assert {r["status"] for r in production} == {"cancelled", "created", "blocked"}
    assert all(r["deployed_at"] is None for r in production)


def test_incidents_are_the_api_incidents(imported):
    conn, _, envelopes = imported
    got = {r["incident_key"]: r for r in rows(conn, "SELECT * FROM core.incidents")}
    assert set(got) == {f"pagerduty:{i['id']}" for i in incidents()}
    for incident in incidents():
        entries = {e["id"]: e for e in incident["log_entries"]}
        trigger = entries[incident["first_trigger_log_entry"]["id"]]
        resolved = incident["status"] == "resolved"
        expected = {
            "source": "pagerduty",
            "service": incident["service"]["summary"],
            "title": incident["title"],
            "opened_at": ts(trigger["created_at"]),
            "resolved_at": ts(incident["last_status_change_at"]) if resolved else None,
        }
        row = got[f"pagerduty:{incident['id']}"]
        assert {k: row[k] for k in expected} == expected, incident["id"]
        assert row["opened_at"] == ts(incident["created_at"])
        # The replayed log ends where PagerDuty says the incident is.
        events = [
            e["payload"]["event"]
            for e in envelopes
            if e["source"] == "pagerduty" and e["payload"]["event"]["data"]["id"] == incident["id"]
        ]
        assert ts(events[-1]["occurred_at"]) == ts(incident["last_status_change_at"])
        assert events[-1]["data"]["status"] == incident["status"]
        assert events[0]["event_type"] == "incident.triggered"


def test_only_status_changes_become_events():
    incident = next(i for i in incidents() if i["id"] == "Q3YON8WNWTZMRQ")
    events = pagerduty_objects.incident_envelopes(incident, incident["log_entries"])
    kinds = [e["event_type"] for e in events]
    # 31 log entries: 1 trigger, 3 acknowledgements, 8 escalations, 2 delegations; the 17
    # notifications and assignments change no status.
    assert kinds.count("incident.triggered") == 1
    assert kinds.count("incident.acknowledged") == 3
    assert kinds.count("incident.escalated") == 8 and kinds.count("incident.delegated") == 2
    assert len(events) == 14
    times = [ts(e["payload"]["event"]["occurred_at"]) for e in events]
    assert times == sorted(times)


def test_a_reopened_incident_is_open_again(tmp_path):
    incident = next(i for i in incidents() if i["id"] == "Q1OHFWFP3GPXOG")
    later = copy.deepcopy(
        next(e for e in incident["log_entries"] if e["type"] == "acknowledge_log_entry")
    )
    later.update(id="RLATERACK", created_at="2022-11-03T07:30:00.000000Z")
    events = pagerduty_objects.incident_envelopes(incident, [*incident["log_entries"], later])
    assert [e["event_type"] for e in events][-2:] == ["incident.resolved", "incident.reopened"]
    assert events[-1]["payload"]["event"]["data"]["status"] == "acknowledged"
    conn, _ = warehouse_with(tmp_path, events)
    assert rows(conn, "SELECT resolved_at FROM core.incidents") == [{"resolved_at": None}]


def test_the_same_state_is_the_same_delivery(imported, tmp_path):
    conn, _, envelopes = imported
    again = all_envelopes()
    assert [e["delivery_id"] for e in again] == [e["delivery_id"] for e in envelopes]
    assert len({e["delivery_id"] for e in envelopes}) == len(envelopes)
    assert all(e["delivery_id"].startswith("import:") for e in envelopes)
    # Landing the same import again (in another file: other batches, another order) adds nothing.
    report = load_file(conn, write_envelopes(tmp_path / "again.ndjson", again[::-1]))
    assert (report.loaded, report.duplicates) == (0, len(again))
    # A new state is a new delivery.
    pipeline = dict(pipelines()[-1], status="success", updated_at="2023-11-22T00:00:00.000Z")
    project = project_at(pipeline["web_url"])
    first = gitlab_objects.pipeline_envelope(project, pipelines()[-1])
    assert (
        gitlab_objects.pipeline_envelope(project, pipeline)["delivery_id"] != first["delivery_id"]
    )
    assert first["delivery_id"] == (
        f"import:gitlab:pipeline:{pipeline['id']}:{pipelines()[-1]['updated_at']}"
    )
    job = objects("gitlab/_raw_gitlab_api_job.csv")[0]
    assert gitlab_objects.job_envelope(project_at(job["web_url"]), job)["delivery_id"] == (
        f"import:gitlab:build:{job['id']}:{job['status']}:{job['finished_at']}"
    )


def test_merge_requests_and_commits_keep_what_the_api_says(imported):
    _, _, envelopes = imported
    by_id = {
        e["payload"]["object_attributes"]["id"]: e["payload"]
        for e in envelopes
        if e["event_type"] == "merge_request"
    }
    for mr in objects("gitlab/_raw_gitlab_api_merge_requests.csv"):
        attributes = by_id[mr["id"]]["object_attributes"]
        assert attributes["iid"] == mr["iid"] and attributes["state"] == mr["state"]
        assert attributes["action"] == {"merged": "merge", "closed": "close"}.get(
            mr["state"], "open"
        )
        assert (attributes["merged_at"], attributes["closed_at"]) == (
            mr["merged_at"],
            mr["closed_at"],
        )
        assert attributes["merge_commit_sha"] == mr["merge_commit_sha"]
        assert [label["title"] for label in attributes["labels"]] == mr["labels"]
        assert by_id[mr["id"]]["project"]["path_with_namespace"] == path_of(mr["web_url"])
    commits = [e for e in envelopes if e["event_type"] == "commit"]
    recorded = api("gitlab/_raw_gitlab_api_merge_request_commits.csv")
    assert [(e["payload"]["commit"], e["payload"]["merge_request"]) for e in commits] == [
        (commit, json.loads(row["input"])["Iid"]) for commit, row in recorded
    ]
    assert {e["payload"]["branch"] for e in commits} == {None}
    first = commits[0]
    assert first["delivery_id"] == (
        f"import:gitlab:commit:gitlab-data/snowflake_spend@{first['payload']['commit']['id']}:!1"
    )
    assert first["received_at"] == first["payload"]["commit"]["committed_date"]


def test_a_merge_request_pipeline_reports_its_source_branch():
    pipeline = objects("gitlab/_raw_gitlab_api_pipeline_details.csv")[0]
    assert gitlab_objects.merge_request_iid(pipeline["ref"]) == 5394
    assert gitlab_objects.merge_request_iid("main") is None
    merge_request = {"id": 1, "iid": 5394, "source_branch": "fix-login", "target_branch": "main"}
    envelope = gitlab_objects.pipeline_envelope(
        project_at(pipeline["web_url"]), pipeline, merge_request=merge_request
    )
    assert envelope["payload"]["object_attributes"]["ref"] == "fix-login"
    assert envelope["payload"]["merge_request"]["iid"] == 5394


def test_an_object_without_what_the_models_read_is_refused():
    pipeline = dict(objects("gitlab/_raw_gitlab_api_pipeline.csv")[1], sha=None)
    with pytest.raises(ValueError, match="lacks sha"):
        gitlab_objects.pipeline_envelope(project_at(pipeline["web_url"]), pipeline)
    with pytest.raises(ValueError, match="path_with_namespace"):
        gitlab_objects.job_envelope({"id": 1, "web_url": "https://x"}, {"id": 2})
    with pytest.raises(ValueError, match="one branch or one merge request"):
        gitlab_objects.commit_envelope(
            project_at("https://gitlab.com/a/b"), {"id": "abc", "committed_date": "2024-01-01Z"}
        )


# -- an imported object and its webhook, for the same state, make the same row -----------------
#
# Each published webhook fixture below is paired with the API object GitLab or PagerDuty would
# return for the same state, written here by the REST API's names and time format.


def api_time(hook_time: str) -> str:
    """A hook time ('2016-08-12 15:23:28 UTC', '... +0200', ISO 8601) as the API writes it."""
    for layout in ("%Y-%m-%d %H:%M:%S UTC", "%Y-%m-%d %H:%M:%S %z"):
        try:
            moment = datetime.strptime(hook_time, layout)
            break
        except ValueError:
            continue
    else:
        moment = datetime.fromisoformat(hook_time.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def hook(relative: str) -> dict:
    return json.loads((FIXTURES / relative).read_text())


def hook_project_as_api(payload: dict) -> dict:
    p = payload["project"]
    return {
        "id": p["id"],
        "name": p["name"],
        "name_with_namespace": f"{p['namespace']} / {p['name']}",
        "path_with_namespace": p["path_with_namespace"],
        "web_url": p["web_url"],
        "default_branch": p["default_branch"],
        "visibility": "public",
    }


def pipeline_as_api() -> tuple[dict, dict, list[dict]]:
    """gitlab/pipeline.json's project, pipeline (GET .../pipelines/31) and jobs."""
    payload = hook("gitlab/pipeline.json")
    a = payload["object_attributes"]
    web_url = payload["project"]["web_url"]
    created = ts(api_time(a["created_at"]))
    user = {k: payload["user"][k] for k in ("id", "username", "name", "avatar_url")}
    pipeline = {
        "id": a["id"],
        "iid": a["iid"],
        "project_id": payload["project"]["id"],
        "sha": a["sha"],
        "ref": a["ref"],
        "status": a["status"],
        "source": a["source"],
        "created_at": api_time(a["created_at"]),
        "updated_at": api_time(a["finished_at"]),
        "web_url": f"{web_url}/-/pipelines/{a['id']}",
        "before_sha": a["before_sha"],
        "tag": a["tag"],
        "user": user,
        "started_at": api_time(str(created + timedelta(seconds=a["queued_duration"]))),
        "finished_at": api_time(a["finished_at"]),
        "duration": a["duration"],
        "queued_duration": a["queued_duration"],
        "detailed_status": {"label": a["detailed_status"], "group": a["status"]},
    }
    jobs = []
    for b in payload["builds"]:
        runner = b["runner"]
        jobs.append(
            {
                "id": b["id"],
                "status": b["status"],
                "stage": b["stage"],
                "name": b["name"],
                "ref": a["ref"],
                "tag": a["tag"],
                "allow_failure": b["allow_failure"],
                "created_at": api_time(b["created_at"]),
                "started_at": b["started_at"] and api_time(b["started_at"]),
                "finished_at": b["finished_at"] and api_time(b["finished_at"]),
                "duration": b["duration"],
                "queued_duration": b["queued_duration"],
                "user": user,
                "commit": {"id": a["sha"], "message": payload["commit"]["message"]},
                "pipeline": {"id": a["id"], "sha": a["sha"], "ref": a["ref"], "status": "success"},
                "web_url": f"{web_url}/-/jobs/{b['id']}",
                "runner": runner
                and {k: runner[k] for k in ("id", "description", "active", "is_shared")},
                "tag_list": (runner or {}).get("tags") or [],
            }
        )
    return hook_project_as_api(payload), pipeline, jobs


def job_as_api() -> tuple[dict, dict]:
    """gitlab/job.json's project and job (GET /projects/31537070/jobs/3580121225)."""
    payload = hook("gitlab/job.json")
    project = {
        "id": payload["project_id"],
        "name": payload["repository"]["name"],
        "name_with_namespace": payload["project_name"],
        "path_with_namespace": "jsmithy2/release-tools-fake",
        "web_url": payload["repository"]["homepage"],
        "default_branch": "main",
    }
    runner = payload["runner"]
    job = {
        "id": payload["build_id"],
        "status": payload["build_status"],
        "stage": payload["build_stage"],
        "name": payload["build_name"],
        "ref": payload["ref"],
        "tag": payload["tag"],
        "allow_failure": payload["build_allow_failure"],
        "created_at": api_time(payload["build_created_at"]),
        "started_at": api_time(payload["build_started_at"]),
        "finished_at": api_time(payload["build_finished_at"]),
        "duration": payload["build_duration"],
        "queued_duration": payload["build_queued_duration"],
        "user": {k: payload["user"][k] for k in ("id", "name", "username", "avatar_url")},
        "commit": {"id": payload["sha"], "message": payload["commit"]["message"]},
        "pipeline": {"id": payload["pipeline_id"], "sha": payload["sha"], "status": "running"},
        "web_url": f"{payload['repository']['homepage']}/-/jobs/{payload['build_id']}",
        "runner": {k: runner[k] for k in ("id", "description", "runner_type", "is_shared")},
        "tag_list": ["linux", "docker"],
    }
    return project, job


def deployment_as_api() -> tuple[dict, dict]:
    """gitlab/deployment.json's project and deployment (GET /projects/30/deployments)."""
    payload = hook("gitlab/deployment.json")
    sha = payload["commit_url"].rsplit("/", 1)[-1]
    deployment = {
        "id": payload["deployment_id"],
        "iid": 1,
        "ref": payload["ref"],
        "sha": sha,
        "status": payload["status"],
        "created_at": api_time(payload["status_changed_at"]),
        "updated_at": api_time(payload["status_changed_at"]),
        "user": {**payload["user"], "web_url": payload["user_url"]},
        "environment": {
            "id": 1,
            "name": payload["environment"],
            "slug": payload["environment_slug"],
            "external_url": payload["environment_external_url"],
        },
        "deployable": {
            "id": payload["deployable_id"],
            "web_url": payload["deployable_url"],
            "commit": {"id": sha, "title": payload["commit_title"]},
        },
    }
    return hook_project_as_api(payload), deployment


INCIDENT_HOOKS = [
    f"pagerduty/incident.{k}.aldaviva.json" for k in ("triggered", "acknowledged", "resolved")
]


def incident_as_api() -> tuple[dict, list[dict]]:
    """The aldaviva incident (GET /incidents/Q2CKYRLH85UNN4) and its log entries, newest first.
    PagerDuty's REST log keeps whole seconds where its webhooks give milliseconds."""
    events = [hook(name)["event"] for name in INCIDENT_HOOKS]
    data = events[-1]["data"]

    def entry(kind: str, event: dict) -> dict:
        return {
            "id": f"R{kind.upper()}",
            "type": f"{kind}_log_entry",
            "created_at": event["occurred_at"][:19] + ".000000Z",
            "agent": event["agent"],
            "incident": {"id": data["id"], "type": "incident_reference"},
        }

    kinds = ("trigger", "acknowledge", "resolve")
    log = [entry(kind, event) for kind, event in zip(kinds, events, strict=True)]
    log.append(dict(entry("notify", events[0]), id="RNOTIFY"))  # changes no status
    incident = {
        "id": data["id"],
        "type": "incident",
        "incident_number": data["number"],
        "title": data["title"],
        "created_at": data["created_at"],
        "status": "resolved",
        "incident_key": data["incident_key"],
        "service": data["service"],
        "assignments": [],
        "last_status_change_at": log[2]["created_at"],
        "escalation_policy": data["escalation_policy"],
        "teams": [],
        "urgency": data["urgency"],
        "self": data["self"],
        "html_url": data["html_url"],
    }
    return incident, log[::-1]


@pytest.fixture(scope="module")
def side_by_side(tmp_path_factory) -> dict:
    """Three warehouses: the webhook fixtures alone, their API twins imported alone, and both."""
    webhook = [
        fixture_envelope(name)
        for name in ("gitlab/pipeline.json", "gitlab/job.json", "gitlab/deployment.json")
    ] + [fixture_envelope(name) for name in INCIDENT_HOOKS]
    project, pipeline, jobs = pipeline_as_api()
    imported = [gitlab_objects.pipeline_envelope(project, pipeline, jobs)]
    imported += [gitlab_objects.job_envelope(project, job) for job in jobs]
    imported.append(gitlab_objects.job_envelope(*job_as_api()))
    imported.append(gitlab_objects.deployment_envelope(*deployment_as_api()))
    imported += pagerduty_objects.incident_envelopes(*incident_as_api())
    found = {}
    for name, envelopes in (("hook", webhook), ("import", imported), ("both", webhook + imported)):
        folder = tmp_path_factory.mktemp(name)
        found[name], report = warehouse_with(folder, envelopes)
        assert report.quarantined == 0
    yield found
    for conn in found.values():
        conn.close()


def same_rows(side_by_side: dict, sql: str, at_seconds: bool = False) -> list[dict]:
    """The rows the webhooks make, checked equal to the import's, and to both's (counted once).
    Receipt times differ by nature; `at_seconds` compares times to the second."""

    def comparable(conn) -> list[dict]:
        found = []
        for row in rows(conn, sql):
            row.pop("last_received_at", None)
            if at_seconds:
                row = {
                    k: v.replace(microsecond=0) if isinstance(v, datetime) else v
                    for k, v in row.items()
                }
            found.append(row)
        return found

    expected = comparable(side_by_side["hook"])
    assert expected, "the webhooks made no row"
    assert comparable(side_by_side["import"]) == expected
    assert comparable(side_by_side["both"]) == expected
    return expected


@pytest.mark.dates
def test_a_pipeline_imported_makes_the_rows_its_webhook_makes(side_by_side):
    run = same_rows(side_by_side, "SELECT * FROM core.pipeline_runs")
    assert len(run) == 1 and run[0]["duration_s"] == 63 and run[0]["conclusion"] == "success"
    jobs = same_rows(
        side_by_side, "SELECT * FROM core.pipeline_jobs WHERE run_key = 'gitlab:31:1' ORDER BY 1"
    )
    assert len(jobs) == 5
    assert {j["runner_label"] for j in jobs} == {"docker,gce", "gitlab-shared", None}


@pytest.mark.dates
def test_a_job_imported_makes_the_row_its_webhook_makes(side_by_side):
    job = same_rows(
        side_by_side, "SELECT * FROM core.pipeline_jobs WHERE job_key = 'gitlab:3580121225'"
    )
    assert job[0]["runner_label"] == "linux,docker"
    assert job[0]["duration_s"] == pytest.approx(49.503592)


@pytest.mark.dates
def test_a_deployment_imported_makes_the_row_its_webhook_makes(side_by_side):
    payload = hook("gitlab/deployment.json")
    project, deployment = deployment_as_api()
    mapped = gitlab_objects.deployment_envelope(project, deployment)["payload"]
    # Field by field the hook's own, but for its time, which the API writes its own way.
    assert {k: mapped[k] for k in payload if k not in ("user", "project")} == {
        k: v for k, v in payload.items() if k not in ("user", "project")
    } | {"status_changed_at": deployment["updated_at"]}
    found = same_rows(side_by_side, "SELECT * FROM core.deployments")
    assert found[0]["deployed_at"] == ts("2021-04-28T19:50:00Z")
    assert found[0]["sha"] == deployment["sha"]


def test_an_incident_imported_makes_the_row_its_webhooks_make(side_by_side):
    incident, log = incident_as_api()
    events = pagerduty_objects.incident_envelopes(incident, log)
    hooks = [hook(name)["event"] for name in INCIDENT_HOOKS]
    assert [e["event_type"] for e in events] == [h["event_type"] for h in hooks]
    assert [e["payload"]["event"]["data"]["status"] for e in events] == [
        h["data"]["status"] for h in hooks
    ]
    found = same_rows(side_by_side, "SELECT * FROM core.incidents", at_seconds=True)
    assert found[0]["resolved_at"] == ts("2025-04-07T03:49:36Z")
    assert found[0]["service"] == "Webhook Tester"
