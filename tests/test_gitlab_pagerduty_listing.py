"""The GitLab and PagerDuty listings against real HTTP servers on 127.0.0.1 serving recorded API
answers (tests/fixtures/api-devlake-e2e): a full import lands every object once, a second one
asks only the listings and lands nothing new, a changed object is asked for again alone.

The fakes answer as the providers document: GitLab filters `updated_after` / `since`, sorts by
`updated_at` and pages with `Link` headers (at most 30 objects a page here, so paging shows);
PagerDuty filters incidents by creation within `since`/`until` and pages by `offset`/`limit`
with `more` (at most 5 a page here).
"""

from __future__ import annotations

import copy
import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

import duckdb
import pytest

from dcicd_platform.ingest.loader import discover, load_files
from dcicd_platform.sources import gitlab, pagerduty
from dcicd_platform.sources.envelopes import EnvelopeWriter
from dcicd_platform.sources.http import ApiClient, ApiError
from dcicd_platform.sources.state import ImportState
from tests.helpers import build_core, rows
from tests.test_gitlab_pagerduty_import import api, objects

GITLAB_PAGE_MAX = 30
PAGERDUTY_PAGE_MAX = 5
PROJECT = "merico/pip_test"


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class FakeApi:
    """A real HTTP server; `route(path, query)` returns (status, body, headers)."""

    def __init__(self, route) -> None:
        self.requests: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                parts = urlsplit(self.path)
                fake.requests.append(parts.path)
                query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                status, body, headers = route(parts.path, query, fake.url)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def asked(self, fragment: str) -> int:
        return sum(fragment in path for path in self.requests)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# -- a fake GitLab -----------------------------------------------------------------------------


class GitLabData:
    """One project's recorded objects: its jobs, their pipelines (as GitLab embeds them in a
    job), deployments, merge requests with their commits, and the default branch's commits."""

    def __init__(self) -> None:
        self.project = {
            "id": 44,
            "name": "pip_test",
            "name_with_namespace": "merico / pip_test",
            "path_with_namespace": PROJECT,
            "web_url": f"https://gitlab.nddtf.com/{PROJECT}",
            "default_branch": "master",
            "visibility": "private",
        }
        self.jobs = objects("gitlab/_raw_gitlab_api_job.csv")
        self.pipelines = {j["pipeline"]["id"]: dict(j["pipeline"]) for j in self.jobs}
        self.deployments = objects("gitlab/_raw_gitlab_api_deployments.csv")
        self.merge_requests = objects("gitlab/_raw_gitlab_api_merge_requests.csv")
        self.mr_commits: dict[int, list[dict]] = {}
        for commit, row in api("gitlab/_raw_gitlab_api_merge_request_commits.csv"):
            self.mr_commits.setdefault(json.loads(row["input"])["Iid"], []).append(commit)
        self.branch_commits = sorted(
            (c for c, _ in api("gitlab/_raw_gitlab_api_merge_request_commits.csv")),
            key=lambda c: c["committed_date"],
            reverse=True,  # GitLab lists a branch's commits newest first
        )

    def route(self, path: str, query: dict, base: str):
        prefix = "/api/v4/projects/"
        if not path.startswith(prefix):
            return 404, {"message": "404 Not Found"}, {}
        project, _, tail = path[len(prefix) :].partition("/")
        if unquote(project) != PROJECT:
            return 404, {"message": "404 Project Not Found"}, {}
        parts = tail.split("/") if tail else []
        if not parts:
            return 200, self.project, {}
        if parts == ["pipelines"]:
            items = [{k: p.get(k) for k in p} for p in self.pipelines.values()]
            return self.listing(path, query, base, self.updated(items, query))
        if parts[0] == "pipelines" and len(parts) == 2:
            return 200, self.pipelines[int(parts[1])], {}
        if parts[0] == "pipelines" and parts[2:] == ["jobs"]:
            found = [j for j in self.jobs if j["pipeline"]["id"] == int(parts[1])]
            return self.listing(path, query, base, sorted(found, key=lambda j: -j["id"]))
        if parts == ["deployments"]:
            return self.listing(path, query, base, self.updated(self.deployments, query))
        if parts == ["merge_requests"]:
            return self.listing(path, query, base, self.updated(self.merge_requests, query))
        if parts[0] == "merge_requests" and parts[2:] == ["commits"]:
            return self.listing(path, query, base, self.mr_commits.get(int(parts[1]), []))
        if parts == ["repository", "commits"]:
            since = ts(query["since"])
            found = [c for c in self.branch_commits if ts(c["committed_date"]) >= since]
            return self.listing(path, query, base, found)
        return 404, {"message": "404 Not Found"}, {}

    @staticmethod
    def updated(items: list[dict], query: dict) -> list[dict]:
        after = ts(query["updated_after"])
        assert query.get("order_by") == "updated_at" and query.get("sort") == "asc"

        def at(item: dict) -> datetime:
            return ts(item.get("updated_at") or item["created_at"])

        return sorted((i for i in items if at(i) > after), key=lambda i: (at(i), i["id"]))

    @staticmethod
    def listing(path: str, query: dict, base: str, items: list):
        size = min(int(query.get("per_page", 20)), GITLAB_PAGE_MAX)
        page = int(query.get("page", 1))
        headers = {}
        if page * size < len(items):
            following = urlencode({**query, "page": page + 1})
            headers["Link"] = f'<{base}{path}?{following}>; rel="next"'
        return 200, items[(page - 1) * size : page * size], headers


# -- a fake PagerDuty --------------------------------------------------------------------------


class PagerDutyData:
    def __init__(self) -> None:
        self.incidents = {}
        self.log_entries = {}
        for incident in objects("pagerduty/_raw_pagerduty_incidents.csv"):
            self.log_entries[incident["id"]] = incident.pop("log_entries")
            self.incidents[incident["id"]] = incident

    def route(self, path: str, query: dict, base: str):
        limit = min(int(query.get("limit", 25)), PAGERDUTY_PAGE_MAX)
        offset = int(query.get("offset", 0))
        if path == "/incidents":
            since, until = ts(query["since"]), ts(query["until"])
            found = sorted(
                (i for i in self.incidents.values() if since <= ts(i["created_at"]) < until),
                key=lambda i: i["created_at"],
            )
            if "service_ids[]" in query:
                found = [i for i in found if i["service"]["id"] == query["service_ids[]"]]
            body = {
                "incidents": found[offset : offset + limit],
                "limit": limit,
                "offset": offset,
                "more": offset + limit < len(found),
                "total": len(found) if query.get("total") == "true" else None,
            }
            return 200, body, {}
        if path.startswith("/incidents/") and path.endswith("/log_entries"):
            entries = self.log_entries[path.split("/")[2]]
            page = entries[offset : offset + limit]
            return 200, {"log_entries": page, "more": offset + limit < len(entries)}, {}
        return 404, {"error": {"message": "Not Found"}}, {}


# -- the imports -------------------------------------------------------------------------------


def run_import(module, fake: FakeApi, api_url: str, scope: str, home: Path, since, now) -> dict:
    """One import into home's landing folder and warehouse; returns the loader's counts."""
    home.mkdir(parents=True, exist_ok=True)
    db = home / "warehouse.duckdb"
    state = ImportState(lambda: duckdb.connect(str(db)), module.SOURCE, scope)
    writer = EnvelopeWriter(home / "landing", module.SOURCE, scope)
    importer = gitlab.import_project if module is gitlab else pagerduty.import_service
    with ApiClient(api_url, module.token_headers("secret")) as client:
        counts = importer(client, scope, since, now, writer, state, state.flush)
    state.flush()
    with duckdb.connect(str(db)) as conn:  # every file landed, as `dcicd import` loads them
        reports = load_files(conn, discover([home / "landing"]))
    return {
        "counts": counts,
        "loaded": sum(r.loaded for r in reports),
        "duplicates": sum(r.duplicates for r in reports),
        "quarantined": sum(r.quarantined for r in reports),
    }


@pytest.fixture
def gitlab_api():
    data = GitLabData()
    fake = FakeApi(data.route)
    yield data, fake
    fake.close()


SINCE = datetime(2019, 1, 1, tzinfo=UTC)
NOW = datetime(2022, 9, 1, tzinfo=UTC)


def test_a_gitlab_project_imported_whole_then_only_what_changed(gitlab_api, tmp_path):
    data, fake = gitlab_api
    url = f"{fake.url}/api/v4"
    first = run_import(gitlab, fake, url, PROJECT, tmp_path, SINCE, NOW)
    assert first["quarantined"] == 0 and first["duplicates"] == 0
    listed_commits = sum(len(data.mr_commits.get(m["iid"], [])) for m in data.merge_requests)
    assert first["counts"]["pipelines"] == len(data.pipelines) == 58
    assert first["counts"]["jobs"] == len(data.jobs) == 75
    assert first["counts"]["deployments"] == len(data.deployments)
    assert first["counts"]["merge requests"] == len(data.merge_requests)
    assert first["counts"]["merge request commits"] == listed_commits
    assert first["counts"]["commits"] == len(data.branch_commits)
    assert first["loaded"] == expected_envelopes(data)
    assert fake.asked("/pipelines/") == 2 * len(data.pipelines)  # details and jobs, once each

    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as conn:
        build_core(conn)
        runs = rows(conn, "SELECT run_key, conclusion FROM core.pipeline_runs")
        jobs = rows(conn, "SELECT job_key, workflow FROM core.pipeline_jobs")
    assert {r["run_key"] for r in runs} == {f"gitlab:{i}:1" for i in data.pipelines}
    assert {j["job_key"] for j in jobs} == {f"gitlab:{j['id']}" for j in data.jobs}
    assert {j["workflow"] for j in jobs} == {".gitlab-ci.yml"}  # every job found its run

    # Nothing changed: the listings are asked again, nothing else, and nothing is new.
    fake.requests.clear()
    second = run_import(gitlab, fake, url, PROJECT, tmp_path, SINCE, NOW)
    assert second["loaded"] == 0
    assert fake.asked("/pipelines/") == 0 and fake.asked("/merge_requests/") == 0
    assert fake.asked("/repository/commits") == 1

    # One pipeline finishes later: it alone is asked for again, and lands its new state.
    changed = data.pipelines[73]
    changed.update(status="success", updated_at="2022-08-26T10:00:00.000Z")
    fake.requests.clear()
    third = run_import(gitlab, fake, url, PROJECT, tmp_path, SINCE, NOW)
    assert fake.asked("/pipelines/") == 2 and fake.asked("/pipelines/73") == 2
    assert third["loaded"] == 1  # the pipeline's new state; its job did not change
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as conn:
        build_core(conn)
        assert rows(
            conn, "SELECT conclusion FROM core.pipeline_runs WHERE run_key = 'gitlab:73:1'"
        ) == [{"conclusion": "success"}]


def expected_envelopes(data: GitLabData) -> int:
    """One envelope per pipeline, job, deployment, merge request and listed commit."""
    return (
        len(data.pipelines)
        + len(data.jobs)
        + len(data.deployments)
        + len(data.merge_requests)
        + sum(len(data.mr_commits.get(m["iid"], [])) for m in data.merge_requests)
        + len(data.branch_commits)
    )


def test_a_gitlab_import_stopped_midway_resumes_without_loss(gitlab_api, tmp_path):
    data, fake = gitlab_api
    route = data.route

    def revoked_on_page_two(path, query, base):  # the token is revoked midway
        if path.endswith("/pipelines") and query.get("page") == "2":
            return 401, {"message": "401 Unauthorized"}, {}
        return route(path, query, base)

    stopping = FakeApi(revoked_on_page_two)
    try:
        with pytest.raises(ApiError):
            run_import(gitlab, stopping, f"{stopping.url}/api/v4", PROJECT, tmp_path, SINCE, NOW)
    finally:
        stopping.close()
    asked_before = {p for p in stopping.requests if "/pipelines/" in p}
    assert len(asked_before) == 2 * GITLAB_PAGE_MAX, "the first page of pipelines was read"
    assert list((tmp_path / "landing").rglob("*.ndjson")), "what was read is on disk"
    run_import(gitlab, fake, f"{fake.url}/api/v4", PROJECT, tmp_path, SINCE, NOW)
    # The resumed import asks only for the pipelines the first one did not land...
    asked_after = {p for p in fake.requests if "/pipelines/" in p}
    assert not asked_before & asked_after
    assert len(asked_before | asked_after) == 2 * len(data.pipelines)
    # ... and the files of both load into every object, each once.
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as conn:
        found = conn.execute("SELECT count(*), count(DISTINCT delivery_id) FROM raw.events")
        assert found.fetchone() == (expected_envelopes(data),) * 2


def test_pagerduty_incidents_imported_then_only_what_changed(tmp_path):
    data = PagerDutyData()
    fake = FakeApi(data.route)
    since, now = datetime(2022, 10, 1, tzinfo=UTC), datetime(2022, 11, 10, tzinfo=UTC)
    try:
        first = run_import(pagerduty, fake, fake.url, "PIKL83L", tmp_path, since, now)
        assert first["counts"]["incidents"] == 3 and first["quarantined"] == 0
        assert fake.asked("/log_entries") > 3  # paged, five entries at a time
        with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as conn:
            build_core(conn)
            found = rows(conn, "SELECT incident_key, resolved_at FROM core.incidents ORDER BY 1")
        assert found == [
            {"incident_key": "pagerduty:Q1OHFWFP3GPXOG", "resolved_at": ts("2022-11-03T06:51:44Z")},
            {"incident_key": "pagerduty:Q3CZAU7Q4008QD", "resolved_at": None},
            {"incident_key": "pagerduty:Q3YON8WNWTZMRQ", "resolved_at": None},
        ]

        fake.requests.clear()
        second = run_import(pagerduty, fake, fake.url, "PIKL83L", tmp_path, since, now)
        assert second["loaded"] == 0 and fake.asked("/log_entries") == 0

        # Q3CZAU7Q4008QD is resolved: its log alone is asked again.
        incident = data.incidents["Q3CZAU7Q4008QD"]
        resolve = copy.deepcopy(data.log_entries["Q3CZAU7Q4008QD"][0])
        resolve.update(id="RRESOLVED", type="resolve_log_entry", created_at="2022-11-03T08:00:00Z")
        data.log_entries["Q3CZAU7Q4008QD"].insert(0, resolve)
        incident.update(status="resolved", last_status_change_at="2022-11-03T08:00:00Z")
        fake.requests.clear()
        third = run_import(pagerduty, fake, fake.url, "PIKL83L", tmp_path, since, now)
        assert {p for p in fake.requests if "log_entries" in p} == {
            "/incidents/Q3CZAU7Q4008QD/log_entries"
        }
        assert third["loaded"] == 1  # the resolution
        with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as conn:
            build_core(conn)
            assert rows(
                conn,
                "SELECT resolved_at FROM core.incidents"
                " WHERE incident_key = 'pagerduty:Q3CZAU7Q4008QD'",
            ) == [{"resolved_at": ts("2022-11-03T08:00:00Z")}]
        # Another service has none of them.
        other = run_import(pagerduty, fake, fake.url, "POTHER", tmp_path / "x", since, now)
        assert other["counts"]["incidents"] == 0
    finally:
        fake.close()
