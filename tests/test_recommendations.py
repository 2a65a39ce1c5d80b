"""Advice that pays for itself: each kind of recommendation on a small organisation whose right
answer, and saving, is worked out by hand in its comment; none on a healthy organisation; one
the data shows done, with the saving measured.

Every organisation is one repository's webhooks, loaded and built as every hand-worked test's
(tests/helpers.py). The defaults: evidence over the 30 days to as_of (the date of the latest
event), so a monthly figure is the window's own total (x 30/30); a recommendation needs 10
minutes or $1 a month; GitHub-hosted prices ubuntu $0.006/min, macOS $0.062/min, self-hosted
free; the KPI target of a workflow's P95 is 20 minutes.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from dcicd_platform.config import PlatformConfig, Recommendations
from dcicd_platform.demo import payloads as pl
from dcicd_platform.ingest.envelope import make_envelope
from tests.helpers import rows, warehouse_with

pytestmark = pytest.mark.dates

REPO = pl.github_repository("acme/app")
UBUNTU, MAC, OWN = ["ubuntu-latest"], ["macos-14"], ["self-hosted", "linux"]


def at(day: int, hour: int, minute: int = 0, second: int = 0, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, minute, second, tzinfo=UTC)


class Org:
    """Envelopes of one repository: CI runs with their jobs (and the jobs' steps), deployments."""

    def __init__(self):
        self.envelopes: list[dict] = []
        self.ids = 0

    def next_id(self) -> int:
        self.ids += 1
        return self.ids

    def add(self, when, event_type, payload):
        self.envelopes.append(
            make_envelope(f"d{self.next_id()}", "github", event_type, payload, when)
        )

    def run(self, workflow, sha, jobs, attempt=1, run_id=None, event="push", created=None):
        """jobs: (name, labels, queued, started, finished, conclusion[, steps]); steps are
        (name, seconds) run back to back from the job's start."""
        run_id = run_id or self.next_id()
        started = min(j[3] for j in jobs)
        finished = max(j[4] for j in jobs)
        conclusion = "success" if all(j[5] == "success" for j in jobs) else jobs[0][5]
        if any(j[5] not in ("success",) for j in jobs):
            conclusion = next(j[5] for j in jobs if j[5] != "success")
        self.add(
            finished,
            "workflow_run",
            pl.github_workflow_run(
                REPO,
                run_id,
                attempt,
                run_id,
                workflow,
                f".github/workflows/{workflow}.yml",
                event,
                "main",
                sha,
                "ana",
                "completed",
                conclusion,
                created or started,
                started,
                finished,
                "completed",
            ),  # fmt: skip
        )
        for name, labels, queued, job_started, job_finished, result, *steps in jobs:
            job_id = self.next_id()
            payload = pl.github_workflow_job(
                REPO, job_id, run_id, attempt, workflow, name, sha, "main", labels, result,
                queued, job_started, job_finished,
            )  # fmt: skip
            if steps:
                payload["workflow_job"]["steps"] = timed_steps(job_started, steps[0])
            self.add(job_finished, "workflow_job", payload)
        return run_id

    def deploy(self, number, environment, when, state="success"):
        self.add(
            when,
            "deployment_status",
            pl.github_deployment_status(
                REPO, number, number * 10, "d" * 40, environment, state, when, when, "ana"
            ),
        )


def timed_steps(start: datetime, steps: list[tuple[str, float]]) -> list[dict]:
    out, moment = [], start
    for number, (name, seconds) in enumerate(steps, 1):
        end = moment + timedelta(seconds=seconds)
        out.append(
            {
                "name": name,
                "status": "completed",
                "conclusion": "success",
                "number": number,
                "started_at": moment.isoformat().replace("+00:00", "Z"),
                "completed_at": end.isoformat().replace("+00:00", "Z"),
            }
        )
        moment = end
    return out


def sha(n: int) -> str:
    return f"{n:040x}"


def job(name, labels, start, run_s, queue_s=10, result="success", steps=None):
    """A job queued queue_s before `start`, running run_s seconds."""
    row = (
        name,
        labels,
        start - timedelta(seconds=queue_s),
        start,
        start + timedelta(seconds=run_s),
        result,
    )
    return (*row, steps) if steps else row


def advice(tmp_path, org: Org, config: PlatformConfig | None = None):
    conn, report = warehouse_with(tmp_path, org.envelopes, config)
    assert report.quarantined == 0
    found = rows(conn, "SELECT * FROM marts.recommendations ORDER BY rank")
    return conn, found


def only(found: list[dict]) -> dict:
    assert len(found) == 1, [(r["kind"], r["entity"]) for r in found]
    return found[0]


def flaky_org() -> Org:
    """e2e on ubuntu, workflow ci: commits 1-3 (Mon 03-02 to Wed 03-04) each fail once after
    450 s (7.5 min, billed 8 min) and pass on the re-run (300 s); commits 4-5 pass at once."""
    org = Org()
    for n, day in enumerate([2, 3, 4], 1):
        run_id = org.run("ci", sha(n), [job("e2e", UBUNTU, at(day, 9), 450, result="failure")])
        org.run("ci", sha(n), [job("e2e", UBUNTU, at(day, 10), 300)], attempt=2, run_id=run_id)
    for n, day in ((4, 5), (5, 6)):
        org.run("ci", sha(n), [job("e2e", UBUNTU, at(day, 9), 300)])
    return org


def test_a_flaky_job(tmp_path):
    # 3 flakes (>= 2) in the 30 days to 03-06: 3 x 8 billed minutes = 24 min a month,
    # 24 x $0.006 = $0.144 -> $0.14; listed on its minutes (24 >= 10).
    _, found = advice(tmp_path, flaky_org())
    r = only(found)
    assert (r["kind"], r["entity"], r["status"]) == ("flaky_job", "acme/app / ci / e2e", "open")
    assert (r["saving_minutes_per_month"], r["saving_usd_per_month"]) == (24.0, 0.14)
    assert r["evidence"].startswith("3 of its 8 executions in 30 days failed")
    assert "24 failed minutes" in r["evidence"]
    # as_of is 03-06, the only checkpoint (a week earlier is before the first event)
    assert r["first_seen_at"] == at(6, 9, 5)  # the latest event: the last run's end
    assert r["done_at"] is None and r["measured_saving_minutes_per_month"] is None


def test_a_fixed_flaky_job_is_done_with_its_saving_measured(tmp_path):
    # The same organisation, then e2e passes every day from 03-07 to 04-15 (as_of).
    # Checkpoints a week apart from 04-15 back to 03-04 (first event 03-02):
    #   03-04 .. 03-25: windows hold the 3 flakes -> 24 min, $0.14 (the peak, first listed 03-04)
    #   04-01 (window 03-03 .. 04-01): 2 flakes -> 16 min, listed
    #   04-08, 04-15: none.
    # Done a week after the last listing: 04-09 00:00 UTC; measured 24 - 0 = 24 min, $0.14.
    org = flaky_org()
    day = at(7, 9)
    n = 10
    while day <= at(15, 9, month=4):
        org.run("ci", sha(n), [job("e2e", UBUNTU, day, 300)])
        day += timedelta(days=1)
        n += 1
    conn, found = advice(tmp_path, org)
    r = only(found)
    assert (r["kind"], r["status"]) == ("flaky_job", "done")
    assert r["first_seen_at"] == at(5, 0)  # the end of the 03-04 checkpoint's day
    assert r["done_at"] == at(9, 0, month=4)
    assert (r["saving_minutes_per_month"], r["saving_usd_per_month"]) == (24.0, 0.14)
    assert r["measured_saving_minutes_per_month"] == 24.0
    assert r["measured_saving_usd_per_month"] == 0.14
    listed = rows(
        conn,
        "SELECT checkpoint, saving_minutes_per_month AS m FROM marts.recommendation_history"
        " WHERE listed ORDER BY checkpoint",
    )
    assert [(x["checkpoint"].isoformat(), x["m"]) for x in listed] == [
        ("2026-03-04", 24.0),
        ("2026-03-11", 24.0),
        ("2026-03-18", 24.0),
        ("2026-03-25", 24.0),
        ("2026-04-01", 16.0),
    ]
    # built again from the same data: the same table
    again = rows(conn, "SELECT * FROM marts.recommendations ORDER BY rank")
    assert again == found


def test_a_timeout_far_above_the_p99(tmp_path):
    # build: 10 successful runs of 300 s (P99 5 min) and one hung until GitHub's default
    # 360-minute timeout (billed 360). 360 >= 3 x 5: far above. Proposed: ceil(5 x 2) = 10 min.
    # Beyond it: 360 - 10 = 350 min a month, 350 x $0.006 = $2.10.
    org = Org()
    for n in range(1, 11):
        org.run("ci", sha(n), [job("build", UBUNTU, at(n, 9), 300)])
    org.run("ci", sha(11), [job("build", UBUNTU, at(11, 9), 360 * 60, result="timed_out")])
    _, found = advice(tmp_path, org)
    r = only(found)
    assert (r["kind"], r["entity"]) == ("timeout", "acme/app / ci / build")
    assert r["action"] == "set timeout-minutes: 10 (twice its P99; now 360)"
    assert (r["saving_minutes_per_month"], r["saving_usd_per_month"]) == (350.0, 2.1)
    assert "1 runs went past 10 min (1 timed out)" in r["evidence"]


def test_a_step_every_run_rebuilds(tmp_path):
    # build: 6 successful runs; "Install dependencies" takes 230, 235, 240, 240, 245, 250 s
    # (median 240 >= 120 s, spread 6.5 s = 2.7% of the mean <= 15%), in every run.
    # Cached, each costs a 30 s restore: (1440 - 6 x 30) s = 1260 s = 21 min a month,
    # 21 x $0.006 = $0.126 -> $0.13. "Test" (60 s) is under 120 s: not listed.
    org = Org()
    for n, seconds in enumerate([230, 235, 240, 240, 245, 250], 1):
        steps = [("Set up job", 5), ("Install dependencies", seconds), ("Test", 60)]
        org.run("ci", sha(n), [job("build", UBUNTU, at(n, 9), 5 + seconds + 60, steps=steps)])
    _, found = advice(tmp_path, org)
    r = only(found)
    assert (r["kind"], r["entity"]) == (
        "cache_step",
        "acme/app / ci / build / Install dependencies",
    )
    assert (r["saving_minutes_per_month"], r["saving_usd_per_month"]) == (21.0, 0.13)
    assert r["evidence"].startswith("every one of 6 successful runs spent 240 s on it")


def test_a_dearer_runner_that_is_not_faster(tmp_path):
    # test: 5 runs on macos-14 of 300 s (billed 5 min, $0.062) and 5 on ubuntu-latest of 290 s
    # ($0.006): the dearer label is not faster (300 >= 290). Moved: 25 billed minutes x
    # ($0.062 - $0.006) = $1.40 a month, no minute saved.
    org = Org()
    for n in range(1, 6):
        org.run("ci", sha(n), [job("test", MAC, at(n, 9), 300)])
        org.run("ci", sha(10 + n), [job("test", UBUNTU, at(n, 11), 290)])
    _, found = advice(tmp_path, org)
    r = only(found)
    assert (r["kind"], r["entity"]) == ("right_size_runner", "acme/app / ci / test")
    assert r["action"] == "run it on ubuntu-latest instead of macos-14"
    assert (r["saving_minutes_per_month"], r["saving_usd_per_month"]) == (0.0, 1.4)


def test_a_saturated_runner_label(tmp_path):
    # 6 jobs on self-hosted,linux, each queued 600 s and running 120 s: 60 min waiting against
    # 12 min running. Beyond a 60 s wait: 6 x 540 s = 54 min a month; self-hosted: $0.
    org = Org()
    for n in range(1, 7):
        org.run("ci", sha(n), [job("test", OWN, at(n, 9), 120, queue_s=600)])
    _, found = advice(tmp_path, org)
    r = only(found)
    assert (r["kind"], r["entity"]) == ("right_size_runner", "self-hosted,linux")
    assert (r["saving_minutes_per_month"], r["saving_usd_per_month"]) == (54.0, 0.0)
    assert r["service"] == "*"


def test_the_job_that_sets_a_slow_workflows_critical_path(tmp_path):
    # release, 4 runs: build 0-10 min, then test 10-35 and lint 10-15 side by side: 35 min,
    # a P95 of 35 > 20. Critical path: test (finished last), waiting for build; its longest
    # job is test (25 min). Split in two halves: 12.5 min, longer than lint's 5 min beside it,
    # so each run saves 25 - 12.5 = 12.5 min: 4 x 12.5 = 50 wall-clock minutes a month, $0.
    org = Org()
    for n in range(1, 5):
        start = at(n, 9)
        ten = start + timedelta(minutes=10)
        org.run(
            "release",
            sha(n),
            [
                job("build", UBUNTU, start, 600),
                job("test", UBUNTU, ten, 1500, queue_s=0),
                job("lint", UBUNTU, ten, 300, queue_s=0),
            ],
        )
    _, found = advice(tmp_path, org)
    r = only(found)
    assert (r["kind"], r["entity"]) == ("critical_path", "acme/app / release")
    assert r["action"] == "split or parallelise test, the longest job on the critical path"
    assert (r["saving_minutes_per_month"], r["saving_usd_per_month"]) == (50.0, 0.0)
    assert r["evidence"].startswith("P95 of successful runs 35.0 min against a 20 min target")


def test_a_scheduled_workflow_run_when_queues_are_longest(tmp_path):
    # nightly (schedule) at 09:00 UTC on self-hosted,linux, 5 runs: its job waits 1200 s, runs
    # 900 s. ci (push) at 03:00 UTC on the same label, 5 runs: waits 30 s, runs 900 s.
    # Median waits per hour: 09h 1200 s, 03h 30 s. At 03:00 the nightly job would wait 30 s:
    # 5 x (1200 - 30) s = 5850 s = 97.5 min a month (6000 >= 2 x 150); runners free: $0.
    # The label is not saturated: 6150 s waiting against 9000 s running.
    org = Org()
    for n in range(1, 6):
        nine = at(n, 9, 20)
        org.run(
            "nightly",
            sha(n),
            [job("report", OWN, nine, 900, queue_s=1200)],
            event="schedule",
            created=at(n, 9),
        )
        org.run("ci", sha(10 + n), [job("test", OWN, at(n, 3, 10), 900, queue_s=30)])
    _, found = advice(tmp_path, org)
    r = only(found)
    assert (r["kind"], r["entity"]) == ("schedule", "acme/app / nightly")
    assert r["action"] == "schedule it at 03:00 UTC instead of 09:00 UTC"
    assert (r["saving_minutes_per_month"], r["saving_usd_per_month"]) == (97.5, 0.0)


def test_an_environment_with_no_deployment_for_hibernate_after_days(tmp_path):
    # staging deployed 03-02; preview 03-15; qa 03-01, then taken down (inactive) 03-03;
    # production every day to 03-20 (as_of). staging: idle 18 days >= 14: hibernate it.
    # preview: 5 days. qa: already down. A month idle is 30 x 24 x 60 = 43,200 minutes; at the
    # configured $0.05 an hour, 720 h x $0.05 = $36.00.
    org = Org()
    org.deploy(1, "staging", at(2, 10))
    org.deploy(2, "preview", at(15, 10))
    org.deploy(3, "qa", at(1, 10))
    org.deploy(3, "qa", at(3, 10), state="inactive")
    for day in range(1, 21):
        org.deploy(100 + day, "production", at(day, 12))
    config = PlatformConfig(recommendations=Recommendations(environment_usd_per_hour=0.05))
    conn, found = advice(tmp_path, org, config)
    r = only(found)
    assert (r["kind"], r["entity"]) == ("hibernate", "acme/app / staging")
    assert (r["saving_minutes_per_month"], r["saving_usd_per_month"]) == (43200.0, 36.0)
    assert r["evidence"].startswith("no deployment for 18 days (the last on 2026-03-02")
    # the week before (03-13) staging was idle 11 days: not yet
    (before,) = rows(
        conn,
        "SELECT listed, withdrawn FROM marts.recommendation_history"
        " WHERE checkpoint = DATE '2026-03-13' AND kind = 'hibernate'"
        " AND entity = 'acme/app / staging'",
    )
    assert before == {"listed": False, "withdrawn": True}


def test_nothing_to_recommend_on_a_healthy_organisation(tmp_path):
    # ci on ubuntu, 20 runs over 20 days: lint 60 s and test 240 s side by side, queued 10 s,
    # short steps, all green; staging and production deployed every day.
    org = Org()
    for n in range(1, 21):
        steps = [("Set up job", 3), ("Run tests", 200), ("Upload", 37)]
        org.run(
            "ci",
            sha(n),
            [
                job("lint", UBUNTU, at(n, 9), 60, steps=[("Set up job", 3), ("Lint", 57)]),
                job("test", UBUNTU, at(n, 9), 240, steps=steps),
            ],
        )
        org.deploy(200 + n, "staging", at(n, 11))
        org.deploy(300 + n, "production", at(n, 12))
    _, found = advice(tmp_path, org)
    assert found == []


def test_dcicd_recommend_in_text_csv_and_json(tmp_path, monkeypatch):
    from dcicd_platform.cli import main

    home = tmp_path / "home"
    home.mkdir()
    conn, _ = warehouse_with(home, flaky_org().envelopes)
    conn.close()
    monkeypatch.setenv("DCICD_HOME", str(home))
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    text = runner.invoke(main, ["recommend"])
    assert text.exit_code == 0, text.output
    assert "1 open, saving 24 min and $0.14 a month; 0 done" in text.output
    assert "[flaky_job] acme/app / ci / e2e: quarantine or fix the flaky job" in text.output
    # --status lists one kind; the headline still counts every recommendation
    only_done = runner.invoke(main, ["recommend", "--status", "done"])
    assert "1 open, saving 24 min and $0.14 a month; 0 done" in only_done.output
    assert "none done" in only_done.output and "nothing to recommend" not in only_done.output
    as_json = runner.invoke(main, ["recommend", "--format", "json"])
    (record,) = json.loads(as_json.output)
    assert (record["kind"], record["saving_minutes_per_month"]) == ("flaky_job", 24.0)
    as_ndjson = runner.invoke(main, ["recommend", "--format", "ndjson"])
    (line,) = as_ndjson.output.strip().splitlines()
    assert json.loads(line) == record
    none = runner.invoke(main, ["recommend", "--format", "json", "--status", "done"])
    assert json.loads(none.output) == []
    as_csv = runner.invoke(main, ["recommend", "--format", "csv", "--status", "done"])
    assert as_csv.output.strip().splitlines() == [as_csv.output.strip().splitlines()[0]]
    assert as_csv.output.startswith("rank,status,kind,")


def test_an_idle_environment_deployed_again_is_withdrawn_not_done(tmp_path):
    # staging deployed 03-02, idle until 03-25, when it is deployed again; production every
    # day to 03-27 (as_of). Checkpoints 03-27, 03-20, 03-13, 03-06: at 03-20 staging had been
    # idle 18 days (listed); at 03-27 it is in use (2 days): withdrawn, so not listed at all.
    org = Org()
    org.deploy(1, "staging", at(2, 10))
    org.deploy(2, "staging", at(25, 10))
    for day in range(1, 28):
        org.deploy(100 + day, "production", at(day, 12))
    conn, found = advice(tmp_path, org)
    assert found == []
    history = rows(
        conn,
        "SELECT checkpoint, listed, withdrawn FROM marts.recommendation_history"
        " WHERE kind = 'hibernate' ORDER BY checkpoint",
    )
    assert [(h["checkpoint"].isoformat(), h["listed"], h["withdrawn"]) for h in history] == [
        ("2026-03-06", False, True),
        ("2026-03-13", False, True),
        ("2026-03-20", True, False),
        ("2026-03-27", False, True),
    ]
