"""DORA metrics of a small organisation worked out by hand (the timeline is in each comment).

shop (acme/shop): production is `production` and the regional `prod-eu`; staging is not.
  Mon 03-02  push P1 09:00: c1 (committed Fri 02-27 10:00), c2 (08:30)
             staging deploy of c2 09:30 (not production)
             D1 production c2 10:00 (a second success status at 10:05 changes nothing;
                its delivery also arrives twice)               changes c1 (3 d), c2 (1.5 h)
  Tue 03-03  push P2 09:00: c3 (08:00)
             D2 production c3 11:00                            changes c3 (3 h)
             I1 PagerDuty 11:30-12:00: no root cause, so D2 (latest before, within 7 days)
             D3 production c2 11:45: a rollback (c2 shipped before c3); no changes; D2 failed
  Wed 03-04  push P3 09:00: c4 (08:00)
             D4 production c4 10:00: after c2 (D3) come c3, c4; c3 counted in D2: changes c4 (2 h)
             D5 prod-eu c4 10:30: the newest sha again, not a rollback, no changes
             D6 production c4 12:00 failed: not a deployment
             I2 GitHub issue "Root cause: <c3>" 15:00-17:00: shipped first by D2
  Thu 03-12  push P4 09:00: c5 (08:00); D7 production c5 10:00  changes c5 (2 h)
             I3 PagerDuty opened 10:30, never resolved: D7, which nothing followed
  Wed 03-25  I4 PagerDuty 10:00-10:30: 13 days after D7, outside the window: no cause
api (acme/api), on Tue 03-03: push 07:00 of a1 (06:00), deployed 08:00  changes a1 (2 h)

CI of shop, workflow ci (GitHub-hosted prices: ubuntu $0.006/min, macOS $0.062/min):
  R1 c2 Mon 09:01-09:11 success: lint 90 s (2 min), tests 580 s (10 min); queued 10 s, 20 s
  R2 c3 Tue 09:01-09:21 failure: tests failed 1195 s (20 min, queued 5 s),
        build on macos-14 300 s (5 min, queued 60 s)
  R2 attempt 2, 09:30-09:40 success: tests 590 s (10 min, queued 10 s): tests was a flake
  R3 c4 Wed 09:00-09:05 success: build on a self-hosted runner 270 s (5 min, free)

Pull requests: two more organisations further down, each with its timeline worked out above
its builder: web (webhooks only: review rounds, an approval by the author only, a squash merge,
a rebase merge, a merge commit, one never deployed) and lib (the history import: a squash and
a rebase merge through the commit graph).
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from dcicd_platform.config import PlatformConfig, Service
from dcicd_platform.demo import payloads as pl
from dcicd_platform.ingest.envelope import make_envelope
from tests.helpers import rows, warehouse_with

pytestmark = pytest.mark.dates  # UTC days, weeks and months, with events near midnight

SHA = {name: f"{i:02d}" + name * 19 for i, name in enumerate(["c1", "c2", "c3", "c4", "c5", "a1"])}
SHOP = pl.github_repository("acme/shop")
API = pl.github_repository("acme/api")


def t(day: int, hour: int, minute: int = 0, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


class Org:
    def __init__(self):
        self.envelopes = []
        self.ids = 0

    def add(self, at, source, event_type, payload, delivery_id=None):
        self.ids += 1
        self.envelopes.append(
            make_envelope(delivery_id or f"d{self.ids}", source, event_type, payload, at)
        )

    def push(self, repo, at, commits):
        body = [pl.github_commit(SHA[c], c, "ana", when) for c, when in commits]
        self.add(at, "github", "push", pl.github_push(repo, "main", "0" * 40, body, at, "ana"))

    def deploy(self, repo, number, commit, environment, at, state="success", extra_success=None):
        self.add(
            at - timedelta(minutes=3),
            "github",
            "deployment_status",
            pl.github_deployment_status(
                repo,
                number,
                number * 10,
                SHA[commit],
                environment,
                "in_progress",
                at,
                at - timedelta(minutes=3),
                "ana",
            ),
        )
        self.add(
            at,
            "github",
            "deployment_status",
            pl.github_deployment_status(
                repo, number, number * 10 + 1, SHA[commit], environment, state, at, at, "ana"
            ),
            f"s{number}",
        )
        if extra_success:
            self.add(
                extra_success,
                "github",
                "deployment_status",
                pl.github_deployment_status(
                    repo,
                    number,
                    number * 10 + 2,
                    SHA[commit],
                    environment,
                    "success",
                    at,
                    extra_success,
                    "ana",
                ),
            )

    def pagerduty(self, incident, opened, resolved=None):
        for kind, at in (("incident.triggered", opened), ("incident.resolved", resolved)):
            if at:
                self.add(
                    at,
                    "pagerduty",
                    kind,
                    pl.pagerduty_incident_event(
                        f"{incident}-{kind}", kind, incident, 1, "Errors", "PSHOP", "Shop", at
                    ),
                )


def ci_run(org, run_id, attempt, commit, start, end, conclusion, jobs):
    args = (
        SHOP,
        run_id,
        attempt,
        run_id,
        "ci",
        ".github/workflows/ci.yml",
        "push",
        "main",
        SHA[commit],
        "ana",
    )
    org.add(
        end,
        "github",
        "workflow_run",
        pl.github_workflow_run(*args, "completed", conclusion, start, start, end, "completed"),
    )
    for job_id, name, labels, queued, started, finished, result in jobs:
        org.add(
            finished,
            "github",
            "workflow_job",
            pl.github_workflow_job(
                SHOP,
                job_id,
                run_id,
                attempt,
                "ci",
                name,
                SHA[commit],
                "main",
                labels,
                result,
                queued,
                started,
                finished,
            ),
        )


def s(day, hour, minute, second=0):
    return t(day, hour, minute) + timedelta(seconds=second)


def build_ci(org) -> None:
    ubuntu, mac, own = ["ubuntu-latest"], ["macos-14"], ["self-hosted", "linux"]
    ci_run(
        org,
        1,
        1,
        "c2",
        s(2, 9, 1),
        s(2, 9, 11),
        "success",
        [
            (11, "lint", ubuntu, s(2, 9, 1), s(2, 9, 1, 10), s(2, 9, 2, 40), "success"),
            (12, "tests", ubuntu, s(2, 9, 1), s(2, 9, 1, 20), s(2, 9, 11), "success"),
        ],
    )
    ci_run(
        org,
        2,
        1,
        "c3",
        s(3, 9, 1),
        s(3, 9, 21),
        "failure",
        [
            (21, "tests", ubuntu, s(3, 9, 1), s(3, 9, 1, 5), s(3, 9, 21), "failure"),
            (22, "build", mac, s(3, 9, 1), s(3, 9, 2), s(3, 9, 7), "success"),
        ],
    )
    ci_run(
        org,
        2,
        2,
        "c3",
        s(3, 9, 30),
        s(3, 9, 40),
        "success",
        [(23, "tests", ubuntu, s(3, 9, 30), s(3, 9, 30, 10), s(3, 9, 40), "success")],
    )
    ci_run(
        org,
        3,
        1,
        "c4",
        s(4, 9, 0),
        s(4, 9, 5),
        "success",
        [(31, "build", own, s(4, 9, 0), s(4, 9, 0, 30), s(4, 9, 5), "success")],
    )


def build_org() -> list[dict]:
    org = Org()
    org.push(SHOP, t(2, 9), [("c1", t(27, 10, month=2)), ("c2", t(2, 8, 30))])
    org.deploy(SHOP, 100, "c2", "staging", t(2, 9, 30))
    org.deploy(SHOP, 1, "c2", "production", t(2, 10), extra_success=t(2, 10, 5))
    org.envelopes.append(dict(org.envelopes[-2]))  # the same delivery, received twice
    org.push(SHOP, t(3, 9), [("c3", t(3, 8))])
    org.deploy(SHOP, 2, "c3", "production", t(3, 11))
    org.pagerduty("I1", t(3, 11, 30), t(3, 12))
    org.deploy(SHOP, 3, "c2", "production", t(3, 11, 45))
    org.push(SHOP, t(4, 9), [("c4", t(4, 8))])
    org.deploy(SHOP, 4, "c4", "production", t(4, 10))
    org.deploy(SHOP, 5, "c4", "prod-eu", t(4, 10, 30))
    org.deploy(SHOP, 6, "c4", "production", t(4, 12), state="failure")
    body = f"Checkout broke.\n\nRoot cause: {SHA['c3'][:10]}"
    for state, at, closed in (("open", t(4, 15), None), ("closed", t(4, 17), t(4, 17))):
        org.add(
            at,
            "github",
            "issues",
            pl.github_issue(
                SHOP, 77, 7, "Checkout down", body, ["Incident"], state, t(4, 15), closed, at, state
            ),
        )
    org.push(SHOP, t(12, 9), [("c5", t(12, 8))])
    org.deploy(SHOP, 7, "c5", "production", t(12, 10))
    org.pagerduty("I3", t(12, 10, 30))
    org.pagerduty("I4", t(25, 10), t(25, 10, 30))
    org.push(API, t(3, 7), [("a1", t(3, 6))])
    org.deploy(API, 8, "a1", "production", t(3, 8))
    build_ci(org)
    return org.envelopes


CONFIG = PlatformConfig(
    services=[
        Service(
            name="shop",
            repositories=["acme/shop"],
            pagerduty_services=["PSHOP"],
            ci_budget_usd_per_deployment=0.105,
        ),
        Service(name="api", repositories=["acme/api"]),
    ]
)


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    conn, report = warehouse_with(tmp_path_factory.mktemp("dora"), build_org(), CONFIG)
    assert report.duplicates == 1 and report.quarantined == 0
    return conn


def dkey(n: int) -> str:
    return f"github:{n}"


def test_production_deployments_and_rollbacks(warehouse):
    found = rows(warehouse, "SELECT * FROM marts.production_deployments ORDER BY deployed_at")
    assert [d["deployment_key"] for d in found] == [dkey(n) for n in (1, 8, 2, 3, 4, 5, 7)]
    by_key = {d["deployment_key"]: d for d in found}
    assert by_key[dkey(1)]["deployed_at"] == t(2, 10)  # the first success status
    assert [k for k, d in by_key.items() if d["is_rollback"]] == [dkey(3)]
    assert [k for k, d in by_key.items() if d["is_failed"]] == [dkey(2), dkey(7)]
    assert by_key[dkey(2)]["rolled_back_by"] == dkey(3)
    assert by_key[dkey(2)]["recovery_s"] == 2700 and by_key[dkey(7)]["recovery_s"] is None


def test_change_sets_and_lead_times(warehouse):
    found = rows(
        warehouse,
        "SELECT deployment_key, sha, lead_time_s FROM marts.deployment_changes"
        " ORDER BY deployed_at, sha",
    )
    assert [(c["deployment_key"], c["sha"], c["lead_time_s"]) for c in found] == [
        (dkey(1), SHA["c1"], 3 * 86400),
        (dkey(1), SHA["c2"], 5400),
        (dkey(8), SHA["a1"], 7200),
        (dkey(2), SHA["c3"], 10800),
        (dkey(4), SHA["c4"], 7200),
        (dkey(7), SHA["c5"], 7200),
    ]


def test_incident_attribution(warehouse):
    found = {
        r["incident_key"]: r["caused_by_deployment_key"]
        for r in rows(warehouse, "SELECT * FROM core.incidents")
    }
    assert found == {
        "pagerduty:I1": dkey(2),
        "github:77": dkey(2),  # named root cause c3, first shipped by D2
        "pagerduty:I3": dkey(7),
        "pagerduty:I4": None,  # 13 days after the latest deployment: outside the window
    }


def metrics(conn, service, grain):
    return {
        r["period_start"].isoformat(): r
        for r in rows(
            conn, "SELECT * FROM marts.dora_metrics WHERE service = ? AND grain = ?", service, grain
        )
    }


def figures(row):
    keys = (
        "deployments",
        "changes",
        "lead_time_median_s",
        "failed_deployments",
        "change_failure_rate",
        "incidents",
        "restore_median_s",
        "recovery_median_s",
    )
    return tuple(row[k] for k in keys)


def test_daily_metrics(warehouse):
    days = metrics(warehouse, "shop", "day")
    assert set(days) == {"2026-03-02", "2026-03-03", "2026-03-04", "2026-03-12", "2026-03-25"}
    assert figures(days["2026-03-02"]) == (1, 2, (3 * 86400 + 5400) / 2, 0, 0.0, 0, None, None)
    assert figures(days["2026-03-03"]) == (2, 1, 10800, 1, 0.5, 1, 1800, 2700)
    assert figures(days["2026-03-04"]) == (2, 1, 7200, 0, 0.0, 1, 7200, None)
    assert figures(days["2026-03-12"]) == (1, 1, 7200, 1, 1.0, 1, None, None)
    assert figures(days["2026-03-25"]) == (0, 0, None, 0, None, 1, 1800, None)


def test_weekly_and_monthly_metrics(warehouse):
    weeks = metrics(warehouse, "shop", "week")
    assert set(weeks) == {"2026-03-02", "2026-03-09", "2026-03-23"}  # ISO weeks start on Monday
    assert figures(weeks["2026-03-02"]) == (5, 4, 9000, 1, 0.2, 2, 4500, 2700)
    assert figures(weeks["2026-03-09"]) == (1, 1, 7200, 1, 1.0, 1, None, None)
    month = metrics(warehouse, "shop", "month")["2026-03-01"]
    assert figures(month) == (6, 5, 7200, 2, pytest.approx(2 / 6), 4, 1800, 2700)


def test_organisation_metrics(warehouse):
    day = metrics(warehouse, "*", "day")["2026-03-03"]
    assert figures(day) == (3, 2, 9000, 1, pytest.approx(1 / 3), 1, 1800, 2700)
    api = metrics(warehouse, "api", "day")
    assert set(api) == {"2026-03-03"} and figures(api["2026-03-03"])[:3] == (1, 1, 7200)


def test_trailing_summary_and_tiers(warehouse):
    summary = {
        (r["service"], r["window_days"]): r
        for r in rows(warehouse, "SELECT * FROM marts.dora_summary")
    }
    last_week = summary[("shop", 7)]
    assert last_week["as_of"].isoformat() == "2026-03-25"  # the latest event's UTC date
    assert (last_week["deployments"], last_week["deployment_frequency_tier"]) == (0, "low")
    assert last_week["lead_time_tier"] is None and last_week["change_failure_tier"] is None
    assert (last_week["restore_median_s"], last_week["restore_tier"]) == (1800, "elite")
    assert last_week["overall_tier"] == "low"
    month = summary[("shop", 30)]
    assert month["deployments"] == 6 and month["deployments_per_day"] == pytest.approx(0.2)
    assert month["deploy_days_per_week"] == pytest.approx(4 * 7 / 30)
    assert month["deployment_frequency_tier"] == "medium"
    assert (month["lead_time_median_s"], month["lead_time_tier"]) == (7200, "elite")
    assert (
        month["change_failure_rate"] == pytest.approx(2 / 6)
        and month["change_failure_tier"] == "low"
    )
    assert (month["restore_median_s"], month["restore_tier"]) == (1800, "elite")
    assert month["overall_tier"] == "low"
    org = summary[("*", 30)]
    assert (org["deployments"], org["lead_time_median_s"]) == (7, 7200)
    assert org["change_failure_rate"] == pytest.approx(2 / 7)
    api = summary[("api", 30)]
    assert api["change_failure_rate"] == 0 and api["change_failure_tier"] == "elite"
    assert api["restore_tier"] is None and api["overall_tier"] == "medium"


@pytest.mark.parametrize(
    ("days_per_week", "tier"),
    [(5, "elite"), (4.99, "high"), (1, "high"), (7 / 30, "medium"), (0.2, "low")],
)
def test_deployment_frequency_bands(days_per_week, tier):
    # The bands the model tiers by, from their one definition (the macros every build creates).
    import duckdb

    from dbt_like_sql import MODELS_ROOT
    from dbt_like_sql.session import create_macros

    sql = (MODELS_ROOT / "marts" / "dora_summary.sql").read_text()
    assert "dcicd_dora_tier('deploy_days_per_week', deploy_days_per_week)" in sql
    conn = duckdb.connect()
    create_macros(conn)
    query = "SELECT dcicd_dora_tier('deploy_days_per_week', ?::DOUBLE)"
    assert conn.execute(query, [days_per_week]).fetchone()[0] == tier


# -- CI ---------------------------------------------------------------------------------------


def test_ci_cost_daily(warehouse):
    found = {
        (r["runner_label"], r["day"].isoformat()): (r["jobs"], r["billable_minutes"], r["cost_usd"])
        for r in rows(warehouse, "SELECT * FROM marts.ci_cost_daily WHERE repo = 'acme/shop'")
    }
    assert found == {
        # Exact decimals: 12 minutes at $0.006 is $0.072, not 0.07200000000000001.
        ("ubuntu-latest", "2026-03-02"): (2, 12, Decimal("0.072")),
        ("ubuntu-latest", "2026-03-03"): (2, 30, Decimal("0.180")),
        ("macos-14", "2026-03-03"): (1, 5, Decimal("0.310")),
        ("self-hosted,linux", "2026-03-04"): (1, 5, 0),
    }


def test_ci_pipeline_daily(warehouse):
    found = {
        r["day"].isoformat(): r
        for r in rows(warehouse, "SELECT * FROM marts.ci_pipeline_daily WHERE repo = 'acme/shop'")
    }
    keys = (
        "runs",
        "succeeded",
        "failed",
        "success_rate",
        "duration_p50_s",
        "duration_p95_s",
        "queue_p50_s",
    )
    assert tuple(found["2026-03-02"][k] for k in keys) == (1, 1, 0, 1.0, 600, 600, 15)
    assert tuple(found["2026-03-03"][k] for k in keys) == (
        2,
        1,
        1,
        0.5,
        900,
        pytest.approx(600 + 0.95 * 600),
        10,
    )
    assert found["2026-03-04"]["queue_p50_s"] == 30


def test_flaky_jobs(warehouse):
    found = {
        r["job_name"]: (r["executions"], r["failures"], r["flakes"], r["flake_rate"])
        for r in rows(warehouse, "SELECT * FROM marts.flaky_jobs WHERE repo = 'acme/shop'")
    }
    assert found["tests"] == (3, 1, 1, pytest.approx(1 / 3))
    assert found["lint"] == (1, 0, 0, 0)


def test_deployment_cost(warehouse):
    found = {
        r["deployment_key"]: r["ci_cost_usd"]
        for r in rows(warehouse, "SELECT * FROM marts.deployment_cost")
    }
    r1, r2 = Decimal("0.072"), Decimal("0.180") + Decimal("0.310")
    assert found == {
        dkey(1): r1,  # changes c1, c2: R1 ran on c2
        dkey(2): r2,  # c3: both attempts of R2
        dkey(3): r1,  # the rollback's own sha, c2
        dkey(4): 0,  # c4 ran on a self-hosted runner
        dkey(5): 0,
        dkey(7): 0,
        dkey(8): 0,
    }


def test_kpi_scorecard(warehouse):
    found = {
        (r["kpi"], r["scope"]): (r["actual"], r["status"])
        for r in rows(warehouse, "SELECT * FROM marts.kpi_scorecard")
    }
    assert found[("lead_time_hours", "shop")] == (2.0, "met")
    assert found[("deployments_per_day", "shop")] == (pytest.approx(0.2), "missed")
    assert found[("change_failure_rate", "shop")] == (pytest.approx(1 / 3), "missed")
    assert found[("time_to_restore_minutes", "shop")] == (30, "missed")  # not below 30
    assert found[("time_to_restore_minutes", "api")] == (None, "no_data")
    assert found[("ci_duration_p50_minutes", "acme/shop")] == (10, "met")
    assert found[("ci_duration_p95_minutes", "acme/shop")] == (
        pytest.approx((600 + 0.85 * 600) / 60),
        "met",
    )
    cost = (2 * 12 * 0.006 + 30 * 0.006 + 5 * 0.062) / 6
    assert found[("cost_per_deployment_usd", "shop")] == (pytest.approx(cost), "met")
    assert ("cost_per_deployment_usd", "api") not in found  # no budget, no row


# -- Pull requests ----------------------------------------------------------------------------
# web (acme/web, service web), every delivery a webhook; times UTC, March 2026.
#
# PR 1, ana, feature/login: two review rounds, then a squash merge.
#   Mon 03-09  w1 (08:00) and w2 (09:00) pushed to feature/login 09:05; opened 09:30
#              ana comments on her own pull request 10:00 (not a review: the author's)
#              bo requests changes 11:00 (the first review); w3 (12:00) pushed 12:05
#              bo approves 13:00; merged 14:00 as the squash commit s1, pushed to main 14:00
#              D1 production s1 15:00: its changes are w1 (7 h), w2 (6 h), w3 (3 h), via s1
#   coding 09:30-08:00 = 5400, pickup 11:00-09:30 = 5400, review 14:00-11:00 = 10800,
#   deploy 15:00-14:00 = 3600, cycle 15:00-08:00 = 25200
# PR 2, bo, feature/cache: approved by its author only, then a rebase merge.
#   Tue 03-10  x1 (09:00) and x2 (10:00) pushed to feature/cache 10:10; opened 10:15
#              bo approves his own 10:30: no review, no approval
#              merged 11:00 by rebase: the copies x1' (author time 09:00) and x2' (10:00)
#              pushed to main 11:00; merge_commit_sha x2'
#              D2 production x2' 12:00: x1 (3 h) via x1', x2 (2 h) via x2'
#   coding 10:15-09:00 = 4500, pickup and review NULL, deploy 3600, cycle 12:00-09:00 = 10800
# PR 3, chen, feature/search: a merge commit.
#   Wed 03-11  y1 (08:00) pushed to feature/search 08:05; opened 08:10
#              ana approves 09:10 (the first review), her approval dismissed 09:20;
#              bo approves 09:40 (the approval that stands)
#              z1 (09:30), no pull request, pushed to main 09:35
#              merged 10:00 with the merge commit m3: the main push lists y1 and m3
#              D3 production m3 11:30: z1 (2 h) and y1 (3.5 h), found on main; m3 is none
#   coding 600, pickup 09:10-08:10 = 3600, review 10:00-09:10 = 3000, deploy 5400, cycle 12600
#              an incident issue "Root cause: <x1'>" opened 12:00, closed 13:00: the rebased
#              copy stands for x1, shipped by D2 (the window would blame D3, the latest)
# PR 4, ana, feature/docs: squash merged, never deployed.
#   Thu 03-12  v1 (07:00) pushed 07:05; opened 07:30; chen comments 08:00, approves 08:30;
#              merged 09:00 as s4 (pushed to main 09:00)
#   coding 1800, pickup 1800, review 3600, deploy and cycle NULL
# PR 5, chen, feature/spike: opened Thu 10:00, closed unmerged 11:00; its head never pushed.
#
# Per merge day, one pull request each (median = P75 = its figure). The week of 03-09: 4
# merged, 3 deployed; coding [600, 1800, 4500, 5400]: median 3150, P75 4500 + 0.25 x 900 =
# 4725; pickup [1800, 3600, 5400]: 3600 and 4500; review [3000, 3600, 10800]: 3600 and 7200;
# deploy [3600, 3600, 5400]: 3600 and 4500; cycle [10800, 12600, 25200]: 12600 and 18900.
# DORA of web per day: Mon 1 deployment, 3 changes, median 21600; Tue 1, 2, 9000, failed (the
# incident), recovered by D3 after 23.5 h = 84600; Wed 1, 2, (12600 + 7200) / 2 = 9900, the
# incident restored in 3600.

WEB = pl.github_repository("acme/web")
WEB_COMMITS = ("w1", "w2", "w3", "s1", "x1", "x2", "x1'", "x2'", "y1", "z1", "m3", "v1", "s4")


def web_sha(name: str) -> str:
    import hashlib

    return hashlib.sha1(name.encode()).hexdigest()


class WebOrg(Org):
    def push_to(self, branch, at, commits, author="ana"):
        body = [pl.github_commit(web_sha(c), c, author, when) for c, when in commits]
        self.add(at, "github", "push", pl.github_push(WEB, branch, "0" * 40, body, at, author))

    def pull(self, number, author, branch, head, action, opened, at, merged=None, merge_sha=None):
        closed = at if action == "closed" else None
        payload = pl.github_pull_request(
            WEB, number, f"Change {number}", author, branch, web_sha(head), "main", action,
            opened, at, closed, merged, merge_sha, (10 * number, number, number),
        )  # fmt: skip
        self.add(at, "github", "pull_request", payload)
        return payload

    def review(self, pull, review_id, reviewer, state, at, action="submitted", received=None):
        payload = pl.github_pull_request_review(pull, review_id, reviewer, state, at, action)
        self.add(received or at, "github", "pull_request_review", payload)

    def production(self, number, commit, at):
        self.add(
            at,
            "github",
            "deployment_status",
            pl.github_deployment_status(
                WEB, number, number * 10, web_sha(commit), "production", "success", at, at, "ana"
            ),
        )


def build_web_org() -> list[dict]:
    org = WebOrg()
    # PR 1: review rounds, squash merge.
    org.push_to("feature/login", t(9, 9, 5), [("w1", t(9, 8)), ("w2", t(9, 9))])
    opened = t(9, 9, 30)
    pr1 = org.pull(1, "ana", "feature/login", "w2", "opened", opened, opened)
    org.review(pr1, 101, "ana", "commented", t(9, 10))
    org.review(pr1, 102, "bo", "changes_requested", t(9, 11))
    org.push_to("feature/login", t(9, 12, 5), [("w3", t(9, 12))])
    pr1 = org.pull(1, "ana", "feature/login", "w3", "synchronize", opened, t(9, 12, 5))
    org.review(pr1, 103, "bo", "approved", t(9, 13))
    org.push_to("main", t(9, 14), [("s1", t(9, 14))])
    org.pull(1, "ana", "feature/login", "w3", "closed", opened, t(9, 14), t(9, 14), web_sha("s1"))
    org.production(1, "s1", t(9, 15))
    # PR 2: its author's approval only, rebase merge.
    org.push_to("feature/cache", t(10, 10, 10), [("x1", t(10, 9)), ("x2", t(10, 10))], "bo")
    opened = t(10, 10, 15)
    pr2 = org.pull(2, "bo", "feature/cache", "x2", "opened", opened, opened)
    org.review(pr2, 201, "bo", "approved", t(10, 10, 30))
    org.push_to("main", t(10, 11), [("x1'", t(10, 9)), ("x2'", t(10, 10))], "bo")
    org.pull(2, "bo", "feature/cache", "x2", "closed", opened, t(10, 11), t(10, 11), web_sha("x2'"))
    org.production(2, "x2'", t(10, 12))
    # PR 3: a dismissed approval, a merge commit; a commit pushed to main without a PR.
    org.push_to("feature/search", t(11, 8, 5), [("y1", t(11, 8))], "chen")
    opened = t(11, 8, 10)
    pr3 = org.pull(3, "chen", "feature/search", "y1", "opened", opened, opened)
    org.review(pr3, 301, "ana", "approved", t(11, 9, 10))
    org.review(pr3, 301, "ana", "dismissed", t(11, 9, 10), "dismissed", received=t(11, 9, 20))
    org.review(pr3, 302, "bo", "approved", t(11, 9, 40))
    org.push_to("main", t(11, 9, 35), [("z1", t(11, 9, 30))])
    org.push_to("main", t(11, 10), [("y1", t(11, 8)), ("m3", t(11, 10))], "chen")
    org.pull(
        3, "chen", "feature/search", "y1", "closed", opened, t(11, 10), t(11, 10), web_sha("m3")
    )
    org.production(3, "m3", t(11, 11, 30))
    copy = web_sha("x1'")
    body = f"Search broke.\n\nRoot cause: {copy[:10]}"
    for state, at, closed in (("open", t(11, 12), None), ("closed", t(11, 13), t(11, 13))):
        org.add(
            at,
            "github",
            "issues",
            pl.github_issue(
                WEB, 88, 8, "Search down", body, ["incident"], state, t(11, 12), closed, at, state
            ),
        )
    # PR 4: merged, never deployed. PR 5: closed unmerged (its merge sha is a test merge).
    org.push_to("feature/docs", t(12, 7, 5), [("v1", t(12, 7))])
    opened = t(12, 7, 30)
    pr4 = org.pull(4, "ana", "feature/docs", "v1", "opened", opened, opened)
    org.review(pr4, 401, "chen", "commented", t(12, 8))
    org.review(pr4, 402, "chen", "approved", t(12, 8, 30))
    org.push_to("main", t(12, 9), [("s4", t(12, 9))])
    org.pull(4, "ana", "feature/docs", "v1", "closed", opened, t(12, 9), t(12, 9), web_sha("s4"))
    org.pull(5, "chen", "feature/spike", "q5", "opened", t(12, 10), t(12, 10), None, web_sha("t5"))
    org.pull(5, "chen", "feature/spike", "q5", "closed", t(12, 10), t(12, 11), None, web_sha("t5"))
    return org.envelopes


WEB_CONFIG = PlatformConfig(services=[Service(name="web", repositories=["acme/web"])])


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    conn, report = warehouse_with(tmp_path_factory.mktemp("web"), build_web_org(), WEB_CONFIG)
    assert report.quarantined == 0 and report.duplicates == 0
    return conn


def pr_key(number: int) -> str:
    return f"github:acme/web#{number}"


def test_pull_requests_in_their_latest_state(web):
    found = {r["pr_key"]: r for r in rows(web, "SELECT * FROM core.pull_requests")}
    assert sorted(found) == [pr_key(n) for n in (1, 2, 3, 4, 5)]
    one = found[pr_key(1)]
    assert (one["author"], one["base_branch"], one["head_branch"]) == (
        "ana",
        "main",
        "feature/login",
    )
    assert one["head_sha"] == web_sha("w3") and one["state"] == "merged"
    assert [c["sha"] for c in one["own_commits"]] == [web_sha(c) for c in ("w1", "w2", "w3")]
    assert one["own_commits_from"] == "pushes"
    assert (one["opened_at"], one["first_commit_at"]) == (t(9, 9, 30), t(9, 8))
    assert (one["first_review_at"], one["approved_at"]) == (t(9, 11), t(9, 13))
    assert (one["merged_at"], one["closed_at"]) == (t(9, 14), t(9, 14))
    assert one["merge_commit_sha"] == web_sha("s1")
    assert (one["additions"], one["deletions"], one["changed_files"]) == (10, 1, 1)
    two = found[pr_key(2)]
    assert (two["first_review_at"], two["approved_at"]) == (None, None)  # bo's own approval
    assert two["merge_commit_sha"] == web_sha("x2'")
    three = found[pr_key(3)]
    assert (three["first_review_at"], three["approved_at"]) == (t(11, 9, 10), t(11, 9, 40))
    assert [c["sha"] for c in three["own_commits"]] == [web_sha("y1")]  # not m3: main's
    five = found[pr_key(5)]
    assert (five["state"], five["merged_at"], five["closed_at"]) == ("closed", None, t(12, 11))
    assert five["merge_commit_sha"] is None  # a closed pull request's test merge is no merge
    assert five["own_commits"] == [] and five["first_commit_at"] is None


def test_squash_and_rebase_merges_stand_for_the_pull_requests_commits(web):
    found = [
        (r["deployment_key"], r["sha"], r["lead_time_s"], r["via_pr_key"], r["via_sha"])
        for r in rows(
            web,
            "SELECT * FROM marts.deployment_changes ORDER BY deployed_at, committed_at, sha",
        )
    ]
    w = web_sha
    assert found == [
        (dkey(1), w("w1"), 7 * 3600, pr_key(1), w("s1")),
        (dkey(1), w("w2"), 6 * 3600, pr_key(1), w("s1")),
        (dkey(1), w("w3"), 3 * 3600, pr_key(1), w("s1")),
        (dkey(2), w("x1"), 3 * 3600, pr_key(2), w("x1'")),
        (dkey(2), w("x2"), 2 * 3600, pr_key(2), w("x2'")),
        (dkey(3), w("y1"), 3.5 * 3600, None, None),  # on main itself: the merge brought it
        (dkey(3), w("z1"), 2 * 3600, None, None),
    ]
    incident = rows(web, "SELECT caused_by_deployment_key FROM core.incidents")
    assert incident == [{"caused_by_deployment_key": dkey(2)}]  # the copy x1' names x1
    days = metrics(web, "web", "day")
    assert figures(days["2026-03-09"]) == (1, 3, 21600, 0, 0.0, 0, None, None)
    assert figures(days["2026-03-10"]) == (1, 2, 9000, 1, 1.0, 0, None, 84600)
    assert figures(days["2026-03-11"]) == (1, 2, 9900, 0, 0.0, 1, 3600, None)


def test_pull_request_cycle_phases(web):
    phases = ("coding_s", "pickup_s", "review_s", "deploy_s", "cycle_s")
    found = {
        r["pr_key"]: (r["service"], r["deployment_key"], *(r[p] for p in phases))
        for r in rows(web, "SELECT * FROM marts.pull_request_cycle")
    }
    assert found == {
        pr_key(1): ("web", dkey(1), 5400, 5400, 10800, 3600, 25200),
        pr_key(2): ("web", dkey(2), 4500, None, None, 3600, 10800),
        pr_key(3): ("web", dkey(3), 600, 3600, 3000, 5400, 12600),
        pr_key(4): ("web", None, 1800, 1800, 3600, None, None),  # not deployed yet
    }


def test_pull_request_cycle_summary(web):
    def summary(service, grain):
        return {
            r["period_start"].isoformat(): r
            for r in rows(
                web,
                "SELECT * FROM marts.pull_request_cycle_summary WHERE service = ? AND grain = ?",
                service,
                grain,
            )
        }

    def medians(row):
        return tuple(
            (row[f"{p}_median_s"], row[f"{p}_p75_s"])
            for p in ("coding", "pickup", "review", "deploy", "cycle")
        )

    days = summary("web", "day")
    assert set(days) == {"2026-03-09", "2026-03-10", "2026-03-11", "2026-03-12"}
    assert (days["2026-03-10"]["pull_requests"], days["2026-03-10"]["deployed_pull_requests"]) == (
        1,
        1,
    )
    assert medians(days["2026-03-10"]) == (
        (4500, 4500),
        (None, None),
        (None, None),
        (3600, 3600),
        (10800, 10800),
    )
    assert medians(days["2026-03-12"])[3:] == ((None, None), (None, None))
    week = summary("web", "week")["2026-03-09"]
    assert (week["pull_requests"], week["deployed_pull_requests"]) == (4, 3)
    assert medians(week) == (
        (3150, 4725),
        (3600, 4500),
        (3600, 7200),
        (3600, 4500),
        (12600, 18900),
    )
    assert medians(summary("*", "month")["2026-03-01"]) == medians(week)


# lib (acme/lib, service lib), from the history import only: the commit graph and the commits
# the API lists for each pull request. Mon 03-16:
#   B0 (08:00) on main, D10 production B0 08:30 (the first: B0 predates the history, no change)
#   PR 7: p1 (09:00) <- p2 (10:00) from B0; opened 10:30; dev2 APPROVED 11:00; squash merged
#         12:00 as S7 (parent B0); D11 production S7 12:30: p1 (12600) and p2 (9000) via S7
#         coding 5400, pickup 1800, review 3600, deploy 1800, cycle 12:30-09:00 = 12600
#   PR 8: r1 (13:00) <- r2 (14:00) from B0; opened 14:30, never reviewed; rebase merged 15:00:
#         r1' (author 13:00) <- r2' (14:00) on S7, committed 15:00; merge_commit_sha r2'
#         D12 production r2' 16:00: r1 (10800) via r1', r2 (7200) via r2'
#         coding 5400, pickup and review NULL, deploy 3600, cycle 16:00-13:00 = 10800


def build_imported_lib() -> list[dict]:
    from dcicd_platform.ingest.envelope import rfc3339
    from dcicd_platform.sources import github as gh

    repo = pl.github_repository("acme/lib")

    def commit(name, parents, authored, committed=None, branch="main", pull=None):
        obj = {
            "sha": web_sha(name),
            "parents": [{"sha": web_sha(p)} for p in parents],
            "commit": {
                "author": {"date": rfc3339(authored)},
                "committer": {"date": rfc3339(committed or authored)},
            },
        }
        return gh.commit_envelope(obj, repo, branch if pull is None else None, pull)

    def pull(number, author, head, opened, merged, merge_sha):
        return {
            "id": 7000 + number,
            "number": number,
            "state": "closed",
            "user": {"login": author},
            "created_at": rfc3339(opened),
            "updated_at": rfc3339(merged),
            "closed_at": rfc3339(merged),
            "merged_at": rfc3339(merged),
            "merge_commit_sha": web_sha(merge_sha),
            "head": {"ref": f"feature/{number}", "sha": web_sha(head), "repo": repo},
            "base": {"ref": "main", "repo": repo},
        }

    def deployed(number, sha, at):
        deployment = {
            "id": number,
            "sha": web_sha(sha),
            "ref": "main",
            "environment": "production",
            "created_at": rfc3339(at),
        }
        status = {"id": number * 10, "state": "success", "created_at": rfc3339(at)}
        return gh.deployment_status_envelope(deployment, status, repo)

    pr7 = pull(7, "dev1", "p2", t(16, 10, 30), t(16, 12), "S7")
    pr8 = pull(8, "dev1", "r2", t(16, 14, 30), t(16, 15), "r2'")
    review = {
        "id": 7001,
        "user": {"login": "dev2"},
        "state": "APPROVED",
        "submitted_at": rfc3339(t(16, 11)),
    }
    return [
        commit("B0", [], t(16, 8)),
        deployed(10, "B0", t(16, 8, 30)),
        commit("p1", ["B0"], t(16, 9), pull=7),
        commit("p2", ["p1"], t(16, 10), pull=7),
        gh.pull_request_envelope(pr7, repo),
        gh.review_envelope(review, pr7, repo),
        commit("S7", ["B0"], t(16, 12)),
        deployed(11, "S7", t(16, 12, 30)),
        commit("r1", ["B0"], t(16, 13), pull=8),
        commit("r2", ["r1"], t(16, 14), pull=8),
        gh.pull_request_envelope(pr8, repo),
        commit("r1'", ["S7"], t(16, 13), t(16, 15)),
        commit("r2'", ["r1'"], t(16, 14), t(16, 15)),
        deployed(12, "r2'", t(16, 16)),
    ]


def test_imported_squash_and_rebase_merges_through_the_commit_graph(tmp_path):
    config = PlatformConfig(services=[Service(name="lib", repositories=["acme/lib"])])
    conn, report = warehouse_with(tmp_path, build_imported_lib(), config)
    assert report.quarantined == 0
    changes = [
        (r["deployment_key"], r["sha"], r["lead_time_s"], r["via_sha"], r["found_by"])
        for r in rows(conn, "SELECT * FROM marts.deployment_changes ORDER BY deployed_at, sha")
    ]
    w = web_sha
    assert sorted(changes) == sorted(
        [
            (dkey(11), w("p1"), 12600, w("S7"), "commit_graph"),
            (dkey(11), w("p2"), 9000, w("S7"), "commit_graph"),
            (dkey(12), w("r1"), 10800, w("r1'"), "commit_graph"),
            (dkey(12), w("r2"), 7200, w("r2'"), "commit_graph"),
        ]
    )
    pulls = {r["number"]: r for r in rows(conn, "SELECT * FROM core.pull_requests")}
    assert pulls[7]["own_commits_from"] == "api" and pulls[7]["first_commit_at"] == t(16, 9)
    phases = ("coding_s", "pickup_s", "review_s", "deploy_s", "cycle_s")
    cycles = {
        r["number"]: (r["deployment_key"], *(r[p] for p in phases))
        for r in rows(conn, "SELECT * FROM marts.pull_request_cycle")
    }
    assert cycles == {
        7: (dkey(11), 5400, 1800, 3600, 1800, 12600),
        8: (dkey(12), 5400, None, None, 3600, 10800),
    }


def test_status_shows_the_median_cycle_and_its_phases(web):
    from dcicd_platform.status import read_status, render_status

    status = read_status(web)
    assert status.as_of.isoformat() == "2026-03-12"  # the 30 days hold every merge
    prs = status.pull_requests
    assert (prs["pull_requests"], prs["deployed_pull_requests"]) == (4, 3)
    assert (prs["cycle_median_s"], prs["coding_median_s"]) == (12600, 3150)
    assert (prs["pickup_median_s"], prs["review_median_s"], prs["deploy_median_s"]) == (
        3600,
        3600,
        3600,
    )
    screen = render_status(status)
    assert "Pull-request cycle, merged in the last 30 days   4 merged, 3 deployed" in screen
    assert (
        "  medians: cycle 3 h 30 m · coding 52 min · pickup 1 h 00 m · review 1 h 00 m"
        " · deploy 1 h 00 m" in screen
    )
