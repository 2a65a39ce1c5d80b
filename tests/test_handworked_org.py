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

import hashlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from dcicd_platform.config import PlatformConfig, Service
from dcicd_platform.demo import payloads as pl
from dcicd_platform.ingest.envelope import make_envelope, rfc3339
from tests.helpers import rows, warehouse_with

pytestmark = pytest.mark.dates  # UTC and Berlin days, weeks and months, events near midnight

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


def test_rework_of_the_first_weeks(warehouse):
    """Rework with the defaults (24 hours, `hotfix`), from the timeline above: I1 opened Tue
    03-03 11:30 and was resolved at 12:00; D3 (the rollback, 11:45) was deployed while it was
    open; D4 (Wed 10:00, 22.5 h after I1 opened) and D5 (10:30, 23 h) within 24 hours of its
    opening; I2 (Wed 15:00) and I3 (03-12 10:30) have no shop deployment after them. The api
    deployment (Tue 08:00) is before I1, and I1 is shop's. Every ref is main: no hotfix."""
    found = {
        r["deployment_key"]: (r["rework_reason"], r["rework_incident_key"])
        for r in rows(warehouse, "SELECT * FROM marts.deployment_rework WHERE is_rework")
    }
    assert found == {
        dkey(3): ("incident_open", "pagerduty:I1"),
        dkey(4): ("incident_window", "pagerduty:I1"),
        dkey(5): ("incident_window", "pagerduty:I1"),
    }
    days = metrics(warehouse, "shop", "day")
    assert (days["2026-03-03"]["rework_deployments"], days["2026-03-03"]["rework_rate"]) == (1, 0.5)
    assert (days["2026-03-04"]["rework_deployments"], days["2026-03-04"]["rework_rate"]) == (2, 1.0)
    assert (days["2026-03-02"]["rework_deployments"], days["2026-03-02"]["rework_rate"]) == (0, 0.0)
    # a period with no deployment: nothing to measure the rate on
    assert (days["2026-03-25"]["rework_deployments"], days["2026-03-25"]["rework_rate"]) == (
        0,
        None,
    )
    week = metrics(warehouse, "shop", "week")["2026-03-02"]
    assert (week["rework_deployments"], week["rework_rate"]) == (3, pytest.approx(3 / 5))
    summary = {
        (r["service"], r["window_days"]): r
        for r in rows(warehouse, "SELECT * FROM marts.dora_summary")
    }
    assert (summary[("shop", 30)]["rework_deployments"], summary[("shop", 30)]["rework_rate"]) == (
        3,
        0.5,
    )
    assert summary[("*", 30)]["rework_rate"] == pytest.approx(3 / 7)
    assert summary[("shop", 7)]["rework_rate"] is None  # no deployment in the last 7 days


# -- The reporting time zone, across both daylight-saving switches, and rework ----------------

BERLIN = "Europe/Berlin"
PAY = pl.github_repository("acme/pay")
LEDGER = pl.github_repository("acme/ledger")


def pay_sha(name: str) -> str:
    return (name * 20)[:40]


def build_berlin_org() -> list[dict]:
    """pay (acme/pay, PagerDuty PPAY) and ledger (acme/ledger), reported in Europe/Berlin.

    Berlin is on CET (UTC+1) until Sun 03-29 01:00 UTC, on CEST (UTC+2) until Sun 10-25 01:00
    UTC, then on CET again: Berlin's 03-29 is 23 hours long, its 10-25 25 hours. Times are UTC;
    Berlin's wall clock is in brackets. Every deployment is to production, of a sha of its own
    (no rollbacks), from main unless a ref is given.

      Sat 03-28 13:00  push P1 to main: b1 (committed 12:00)
      Sat 03-28 23:30  E1 b0 [Sun 03-29 00:30 CET]           no changes (b0 was never pushed)
      Sun 03-29 22:30  E2 b1 [Mon 03-30 00:30 CEST]          changes b1: lead 34.5 h = 124200 s
                       (elapsed time: Berlin's clocks say 13:00 to 00:30, 35.5 h)
      Tue 03-31 22:30  E3 b2 [Wed 04-01 00:30 CEST]          no changes
      Mon 10-12 08:00  E4 b3 [10:00]                         caused J1: failed
      Tue 10-13 09:00  J1 PagerDuty PPAY opened [11:00], resolved 10:00: restore 3600 s
      Tue 10-13 09:30  L1 ledger [11:30]                     J1 is pay's: not rework
      Tue 10-13 09:40  E5 b4 ref hotfix/card-timeout         J1 open: rework (incident_open),
                                                             recovers E4: 25 h 40 m = 92400 s
      Wed 10-14 08:00  E6 b5                                 23 h after J1 opened: rework
      Wed 10-14 10:00  E7 b6                                 25 h after: not rework
      Fri 10-16 12:00  E8 b7 ref Hotfix-4711                 no incident; the hotfix pattern
                                                             (any letter case): rework
      Sat 10-24 22:30  CI run 901 on b7 [Sun 10-25 00:30 CEST] to 22:40: job lint on
                       ubuntu-latest 22:30:10-22:40:00 (590 s: 10 billable minutes, $0.06)
      Sat 10-24 22:30  E9 b8 [Sun 10-25 00:30 CEST]
      Sun 10-25 22:30  E10 b9 [Sun 10-25 23:30 CET]          24 h after E9, the same Berlin day
      Sat 10-31 23:30  E11 ba [Sun 11-01 00:30 CET]          the latest event
    """
    org = Org()
    org.add(
        t(28, 13),
        "github",
        "push",
        pl.github_push(
            PAY,
            "main",
            "0" * 40,
            [pl.github_commit(pay_sha("b1"), "b1", "eva", t(28, 12))],
            t(28, 13),
            "eva",
        ),
    )

    def deploy(repo, number, name, at, ref="main"):
        created = at - timedelta(minutes=3)
        for status_id, state, when in (
            (number * 10, "in_progress", created),
            (number * 10 + 1, "success", at),
        ):
            payload = pl.github_deployment_status(
                repo, number, status_id, pay_sha(name), "production", state, created, when, "eva"
            )
            payload["deployment"]["ref"] = ref
            org.add(when, "github", "deployment_status", payload)

    deploy(PAY, 201, "b0", t(28, 23, 30))
    deploy(PAY, 202, "b1", t(29, 22, 30))
    deploy(PAY, 203, "b2", t(31, 22, 30))
    deploy(PAY, 204, "b3", t(12, 8, month=10))
    for kind, at in (
        ("incident.triggered", t(13, 9, month=10)),
        ("incident.resolved", t(13, 10, month=10)),
    ):
        org.add(
            at,
            "pagerduty",
            kind,
            pl.pagerduty_incident_event(
                f"J1-{kind}", kind, "J1", 1, "Card payments time out", "PPAY", "Pay", at
            ),
        )
    deploy(LEDGER, 301, "l1", t(13, 9, 30, month=10))
    deploy(PAY, 205, "b4", t(13, 9, 40, month=10), ref="hotfix/card-timeout")
    deploy(PAY, 206, "b5", t(14, 8, month=10))
    deploy(PAY, 207, "b6", t(14, 10, month=10))
    deploy(PAY, 208, "b7", t(16, 12, month=10), ref="Hotfix-4711")
    start, end = t(24, 22, 30, month=10), t(24, 22, 40, month=10)
    run = ("ci", ".github/workflows/ci.yml", "push", "main", pay_sha("b7"), "eva")
    org.add(
        end,
        "github",
        "workflow_run",
        pl.github_workflow_run(
            PAY, 901, 1, 901, *run, "completed", "success", start, start, end, "completed"
        ),
    )
    org.add(
        end,
        "github",
        "workflow_job",
        pl.github_workflow_job(
            PAY,
            9011,
            901,
            1,
            "ci",
            "lint",
            pay_sha("b7"),
            "main",
            ["ubuntu-latest"],
            "success",
            start,
            start + timedelta(seconds=10),
            end,
        ),
    )
    deploy(PAY, 209, "b8", t(24, 22, 30, month=10))
    deploy(PAY, 210, "b9", t(25, 22, 30, month=10))
    deploy(PAY, 211, "ba", t(31, 23, 30, month=10))
    return org.envelopes


def berlin_config(time_zone: str = BERLIN, **dora) -> PlatformConfig:
    return PlatformConfig.model_validate(
        {
            "services": [
                {"name": "pay", "repositories": ["acme/pay"], "pagerduty_services": ["PPAY"]},
                {"name": "ledger", "repositories": ["acme/ledger"]},
            ],
            "reporting": {"time_zone": time_zone},
            "dora": dora,
        }
    )


@pytest.fixture(scope="module")
def berlin(tmp_path_factory):
    conn, report = warehouse_with(
        tmp_path_factory.mktemp("berlin"), build_berlin_org(), berlin_config()
    )
    assert report.quarantined == 0
    return conn


@pytest.fixture(scope="module")
def berlin_in_utc(tmp_path_factory):
    """The same organisation reported in UTC (the default)."""
    conn, _ = warehouse_with(
        tmp_path_factory.mktemp("utc"), build_berlin_org(), berlin_config("UTC")
    )
    return conn


def counts(conn, service: str, grain: str) -> dict[str, tuple]:
    """period_start -> (deployments, rework_deployments, rework_rate)."""
    return {
        day: (r["deployments"], r["rework_deployments"], r["rework_rate"])
        for day, r in metrics(conn, service, grain).items()
    }


def test_days_weeks_and_months_are_berlin_ones_across_both_switches(berlin, berlin_in_utc):
    """Buckets of the timeline in build_berlin_org. Berlin's days: E1 on Sun 03-29, E2 on Mon
    03-30 (22:30 UTC is already Monday on summer time: a fixed +1 h would say Sunday), E3 on
    Wed 04-01 (April), E9 and E10 on Sun 10-25 (24 h apart: the 25-hour day; 22:30 UTC is still
    Sunday on winter time, a fixed +2 h would say Monday), E11 on Sun 11-01 (November).
    In UTC: 03-28, 03-29, 03-31, 10-24, 10-25, 10-31."""
    assert counts(berlin, "pay", "day") == {
        "2026-03-29": (1, 0, 0.0),
        "2026-03-30": (1, 0, 0.0),
        "2026-04-01": (1, 0, 0.0),
        "2026-10-12": (1, 0, 0.0),
        "2026-10-13": (1, 1, 1.0),
        "2026-10-14": (2, 1, 0.5),
        "2026-10-16": (1, 1, 1.0),
        "2026-10-25": (2, 0, 0.0),
        "2026-11-01": (1, 0, 0.0),
    }
    # ISO weeks start on Monday in Berlin: E1 (Sunday) ends the week of 03-23, E2 starts 03-30
    assert counts(berlin, "pay", "week") == {
        "2026-03-23": (1, 0, 0.0),
        "2026-03-30": (2, 0, 0.0),
        "2026-10-12": (5, 3, 0.6),
        "2026-10-19": (2, 0, 0.0),
        "2026-10-26": (1, 0, 0.0),
    }
    assert counts(berlin, "pay", "month") == {
        "2026-03-01": (2, 0, 0.0),
        "2026-04-01": (1, 0, 0.0),
        "2026-10-01": (7, 3, pytest.approx(3 / 7)),
        "2026-11-01": (1, 0, 0.0),
    }
    # The same events reported in UTC.
    assert set(metrics(berlin_in_utc, "pay", "day")) == {
        "2026-03-28",
        "2026-03-29",
        "2026-03-31",
        "2026-10-12",
        "2026-10-13",
        "2026-10-14",
        "2026-10-16",
        "2026-10-24",
        "2026-10-25",
        "2026-10-31",
    }
    assert counts(berlin_in_utc, "pay", "week")["2026-03-23"] == (2, 0, 0.0)
    assert counts(berlin_in_utc, "pay", "month") == {
        "2026-03-01": (3, 0, 0.0),
        "2026-10-01": (8, 3, 0.375),
    }
    # Lead time is elapsed seconds, whatever the clocks did: b1, committed Sat 12:00 UTC,
    # deployed by E2 Sun 22:30 UTC.
    day = metrics(berlin, "pay", "day")["2026-03-30"]
    assert (day["changes"], day["lead_time_median_s"]) == (1, 34.5 * 3600)
    # J1 and what it did: on Berlin's 10-13 (and UTC's); E4 failed, recovered by E5.
    assert figures(metrics(berlin, "pay", "day")["2026-10-13"])[5:7] == (1, 3600)
    assert figures(metrics(berlin, "pay", "day")["2026-10-12"]) == (
        1,
        0,
        None,
        1,
        1.0,
        0,
        None,
        92400,
    )
    assert counts(berlin, "*", "day")["2026-10-13"] == (2, 1, 0.5)  # L1 (ledger) is no rework


def test_trailing_windows_end_at_the_berlin_date_of_the_latest_event(berlin, berlin_in_utc):
    """The latest event, E11 (Sat 10-31 23:30 UTC), is on Sun 11-01 in Berlin: the windows
    end there. 7 days, 10-26..11-01: E11 only (one deploy day: 1 per week). 30 days,
    10-03..11-01: E4-E11, 8 deployments on 6 Berlin days (10-12, 13, 14, 16, 25, 11-01:
    6 x 7 / 30 = 1.4 per week), 3 of them rework (E5, E6, E8), E4 failed. In UTC the windows
    end on 10-31: 7 days, 10-25..10-31, hold E10 and E11 (2 days); 30 days hold the same 8
    deployments on 7 UTC days (E9 and E10 are on 10-24 and 10-25)."""
    summary = {
        (r["service"], r["window_days"]): r
        for r in rows(berlin, "SELECT * FROM marts.dora_summary")
    }
    assert {r["as_of"].isoformat() for r in summary.values()} == {"2026-11-01"}
    week, month = summary[("pay", 7)], summary[("pay", 30)]
    assert (week["deployments"], week["deploy_days_per_week"], week["rework_rate"]) == (1, 1.0, 0.0)
    assert (month["deployments"], month["deploy_days_per_week"]) == (8, pytest.approx(1.4))
    assert (month["rework_deployments"], month["rework_rate"]) == (3, 0.375)
    assert month["change_failure_rate"] == 1 / 8
    assert summary[("pay", 90)]["deployments"] == 8  # 08-04..11-01: no March deployment
    org = summary[("*", 30)]
    assert (org["deployments"], org["rework_deployments"], org["rework_rate"]) == (
        9,
        3,
        pytest.approx(1 / 3),
    )
    assert summary[("ledger", 30)]["rework_rate"] == 0.0
    utc = {
        (r["service"], r["window_days"]): r
        for r in rows(berlin_in_utc, "SELECT * FROM marts.dora_summary")
    }
    assert {r["as_of"].isoformat() for r in utc.values()} == {"2026-10-31"}
    assert (utc[("pay", 7)]["deployments"], utc[("pay", 7)]["deploy_days_per_week"]) == (2, 2.0)
    assert utc[("pay", 30)]["deploy_days_per_week"] == pytest.approx(7 * 7 / 30)


def test_rework_of_each_deployment(berlin):
    """Why each pay deployment of October is rework, or not (timeline in build_berlin_org)."""
    found = {
        r["deployment_key"]: (r["rework_reason"], r["rework_incident_key"], r["hotfix_branch"])
        for r in rows(berlin, "SELECT * FROM marts.deployment_rework")
        if r["deployed_at"] >= t(1, 0, month=10)
    }
    assert found == {
        dkey(204): (None, None, False),  # before J1: it caused it
        dkey(301): (None, None, False),  # ledger: J1 is not its incident
        dkey(205): ("incident_open", "pagerduty:J1", True),
        dkey(206): ("incident_window", "pagerduty:J1", False),
        dkey(207): (None, None, False),
        dkey(208): ("hotfix_branch", None, True),
        dkey(209): (None, None, False),
        dkey(210): (None, None, False),
        dkey(211): (None, None, False),
    }


def test_rework_settings_change_the_figures(tmp_path):
    """A 26-hour window takes E7 (25 h after J1 opened) in; no hotfix pattern leaves E8 out."""
    config = berlin_config(rework_window_hours=26, hotfix_pattern=None)
    conn, _ = warehouse_with(tmp_path, build_berlin_org(), config)
    found = {
        r["deployment_key"]: r["rework_reason"]
        for r in rows(conn, "SELECT * FROM marts.deployment_rework WHERE is_rework")
    }
    assert found == {
        dkey(205): "incident_open",
        dkey(206): "incident_window",
        dkey(207): "incident_window",
    }


def test_ci_days_are_berlin_ones(berlin, berlin_in_utc):
    """CI run 901 started Sat 10-24 22:30 UTC, Sun 10-25 00:30 in Berlin (summer time)."""
    for conn, day in ((berlin, "2026-10-25"), (berlin_in_utc, "2026-10-24")):
        ci = rows(conn, "SELECT day, runs FROM marts.ci_pipeline_daily WHERE repo = 'acme/pay'")
        assert [(r["day"].isoformat(), r["runs"]) for r in ci] == [(day, 1)]
        cost = rows(
            conn,
            "SELECT day, billable_minutes, cost_usd FROM marts.ci_cost_daily"
            " WHERE repo = 'acme/pay'",
        )
        assert [(r["day"].isoformat(), r["billable_minutes"], r["cost_usd"]) for r in cost] == [
            (day, 10, Decimal("0.06"))
        ]
        collected = rows(conn, "SELECT day, objects FROM ops.collection WHERE repo = 'acme/pay'")
        assert [(r["day"].isoformat(), r["objects"]) for r in collected] == [(day, 1)]


def test_a_new_zone_rebuilds_the_incremental_marts(tmp_path):
    """Built in UTC, then told Europe/Berlin: the by-key marts (days of CI runs and jobs) are
    rebuilt whole, not left with UTC days beside Berlin ones."""
    from dbt_like_sql import build_model, load_models
    from dcicd_platform.assets.config_tables import write_config_tables

    conn, _ = warehouse_with(tmp_path, build_berlin_org(), berlin_config("UTC"))
    write_config_tables(conn, berlin_config())
    for model in load_models():
        build_model(conn, model)
    for table in ("marts.ci_pipeline_daily", "marts.ci_cost_daily", "ops.collection"):
        days = conn.execute(f"SELECT list(DISTINCT day) FROM {table} WHERE repo = 'acme/pay'")
        assert [d.isoformat() for d in days.fetchone()[0]] == ["2026-10-25"], table
    assert rows(conn, "SELECT max(as_of) AS d FROM marts.dora_summary")[0]["d"].isoformat() == (
        "2026-11-01"
    )


def test_status_and_the_weekly_review_read_berlin_days(berlin):
    """`dcicd status` and the weekly review over build_berlin_org: the data is up to Sun 11-01
    (Berlin), the latest deployment E11 was at 00:30 there, and the organisation's rework rate
    over 30 days is 3 of 9. The review of the last complete week (Sun 11-01 completes 10-26)
    compares it with 10-19: its week-over-week rework rate, the week of 10-19 (E9, E10: 0 of
    2) against 10-12 (E4-E8 and L1: 3 of 6)."""
    from dcicd_platform.report.figures import gather, report_week
    from dcicd_platform.report.render import render_html, summary_markdown
    from dcicd_platform.status import read_status, render_status

    status = read_status(berlin, now=t(1, 8, month=11))
    assert (status.time_zone, status.as_of.isoformat()) == (BERLIN, "2026-11-01")
    assert status.rework_rate == pytest.approx(1 / 3)
    screen = render_status(status)
    assert "times in Europe/Berlin" in screen and "data up to" not in screen
    assert "rework 33%" in screen
    assert "2026-11-01 00:30  pay" in screen  # E11, Sat 23:30 UTC

    week = report_week(status.as_of)
    assert week.isoformat() == "2026-10-26"
    figures = gather(berlin, week - timedelta(days=7), status.as_of)
    assert figures.time_zone == BERLIN
    rework = next(r for r in figures.week_over_week if r["kpi"] == "rework_rate")
    assert (rework["this_week"], rework["last_week"], rework["better"]) == (0.0, 0.5, True)
    html = render_html(figures, "shadow", {"build_duration": 0.7, "build_outcome": 0.7})
    assert "Mon 19 Oct to Sun 25 Oct 2026 (Europe/Berlin)" in html
    assert "Rework rate" in html and "33.3%" in html  # the organisation's 30 days
    assert "Europe/Berlin" in summary_markdown(figures, Path("weekly.html"))


# -- Monorepos ----------------------------------------------------------------------------------


def build_monorepo_org() -> list[dict]:
    """Services that share a repository, each the commits that touched its paths.

    acme/mono (push deliveries): payments (services/payments/**, workflows payments-*) and
    search (services/search/**)
      Mon 03-02  push M1 09:00: m1 (08:00, services/payments/api.py),
                 m2 (08:30, services/search/index.py and services/payments/client.py: both),
                 m3 (08:45, docs/README.md: neither)
                 D11 production-payments m3 10:00: named after payments, its first:
                     m1 (2 h), m2 (1.5 h); m3 is a change of no one
      Tue 03-03  push M2 09:00: s1 (08:00, services/search/query.py)
                 D12 production s1 12:00, payload service search, its first: m1, m2, m3, s1
                     pushed; its own are m2 (27.5 h: counted again, search's first deployment
                     of it) and s1 (4 h)
                 I21 issue labelled Incident and Search 13:00-14:00: search's, caused by D12
      Wed 03-04  push M3 09:00: p2 (08:00, services/payments/api.py), d2 (08:10, docs/guide.md)
                 D13 production d2 11:00 names no service: deploys both, keyed @payments and
                     @search; payments (after m3): s1, p2, d2 pushed, its own p2 (3 h);
                     search (after s1): p2, d2, none its own: no changes; recovers D12 (23 h)
                 I22 issue labelled Incident only 15:00-15:30: the repository's (acme/mono),
                     no service's deployment caused it
      CI (ubuntu, $0.006/min): R1 payments-ci on m3 (10 min): payments by its workflow;
        R2 ci on m3 (5 min): the push M1 touched both: payments and search; R3 ci on s1
        (3 min): search; R4 ci on d2 (2 min): the push M3 touched payments only
    acme/lab (history import: commits with their files, no pushes): models (models/**) and
    app (app/**); known history begins with run R5 ci on L0, 03-01 09:00 (app by L0's files)
      L0 2025-01-01 app/old.py <- L1 03-02 08:00 models/train.py <- L2 09:00 app/main.py and
      models/serve.py <- L3 09:30 README.md
      E1 production L3 03-02 10:00, task deploy:models: models' first: L1 (2 h), L2 (1 h); L0
          was made before the known history
      E2 production L3 12:00 names no service: @models has no changes (L3 deployed before),
          @app is app's first: L2 (3 h); neither is a rollback

    Figures (a commit is a change of each service it touched; the organisation '*' counts it
    once, at its first production deployment of any service):
      day 03-02  payments 1 deployment, m1 7200, m2 5400: median 6300; models 2, L1 7200,
                 L2 3600: 5400; app 1, L2 10800; '*' 4 deployments, m1, m2, L1, L2: 4 changes,
                 median (5400 + 7200) / 2 = 6300
      day 03-03  search 1, m2 99000, s1 14400: 56700, failed 1 (rate 1.0), incident 3600,
                 recovery 82800; '*' 1, s1 only: 1 change, 14400
      day 03-04  payments 1, p2 10800; search 1, no changes (NULL lead time); acme/mono
                 incident 1800; '*' 2 deployments, 1 change 10800, 1 incident 1800
      week 03-02 payments 2, 3 changes, median 7200; search 2, 2 changes, 56700, rate 0.5;
                 '*' 7 deployments, 6 changes of the 8 service changes: 3600, 5400, 7200,
                 7200, 10800, 14400, median 7200, failed 1 (1/7), incidents 2 (restore 2700)
      CI cost: D11 R1 + R2 = $0.090; D12 R3 $0.018; D13@payments R4 $0.012; D13@search 0 (R4
        built payments only); E1, E2: no priced jobs, 0
    """
    org = Org()
    mono, lab = pl.github_repository("acme/mono"), pl.github_repository("acme/lab")

    def push(at, commits):
        body = [
            {**pl.github_commit(MONO_SHA[c], c, "ana", when), "modified": files}
            for c, when, files in commits
        ]
        org.add(at, "github", "push", pl.github_push(mono, "main", "0" * 40, body, at, "ana"))

    def deploy(repo, number, commit, environment, at, task="deploy", payload=None):
        for status_id, state in ((1, "in_progress"), (2, "success")):
            when = at - timedelta(minutes=3) if state == "in_progress" else at
            body = pl.github_deployment_status(
                repo, number, number * 10 + status_id, MONO_SHA[commit], environment, state,
                at, when, "ana",
            )  # fmt: skip
            body["deployment"] |= {"task": task, "payload": payload or {}}
            org.add(when, "github", "deployment_status", body)

    def issue(issue_id, labels, opened, closed):
        for state, at, action in (("open", opened, "opened"), ("closed", closed, "closed")):
            body = pl.github_issue(
                mono, issue_id, issue_id, "Down", "", labels, state, opened, None, at, action
            )
            body["issue"]["closed_at"] = rfc3339(closed) if state == "closed" else None
            org.add(at, "github", "issues", body)

    def run(repo, run_id, name, commit, start, minutes):
        end = start + timedelta(minutes=minutes)
        args = (repo, run_id, 1, run_id, name, f".github/workflows/{name}.yml", "push", "main")
        state = ("completed", "success", start, start, end, "completed")
        body = pl.github_workflow_run(*args, MONO_SHA[commit], "ana", *state)
        org.add(end, "github", "workflow_run", body)
        if repo is mono:
            org.add(
                end,
                "github",
                "workflow_job",
                pl.github_workflow_job(
                    repo, run_id * 10, run_id, 1, name, "build", MONO_SHA[commit], "main",
                    ["ubuntu-latest"], "success", start, start, end,
                ),
            )  # fmt: skip

    def imported(name, parents, at, files):
        when = rfc3339(at)
        person = {"name": "ana", "email": "ana@example.com", "date": when}
        commit = {
            "sha": MONO_SHA[name],
            "commit": {"author": person, "committer": person, "message": name},
            "parents": [{"sha": MONO_SHA[p]} for p in parents],
            "files": [{"filename": f, "status": "modified"} for f in files],
        }
        body = {"repository": lab, "branch": "main", "pull_request": None, "commit": commit}
        org.add(at, "github", "commit", body, f"import:github:commit:acme/lab@{name}:main")

    push(
        t(2, 9),
        [
            ("m1", t(2, 8), ["services/payments/api.py"]),
            ("m2", t(2, 8, 30), ["services/search/index.py", "services/payments/client.py"]),
            ("m3", t(2, 8, 45), ["docs/README.md"]),
        ],
    )
    run(mono, 1, "payments-ci", "m3", t(2, 9, 1), 10)
    run(mono, 2, "ci", "m3", t(2, 9, 1), 5)
    deploy(mono, 11, "m3", "production-payments", t(2, 10))
    push(t(3, 9), [("s1", t(3, 8), ["services/search/query.py"])])
    run(mono, 3, "ci", "s1", t(3, 9, 1), 3)
    deploy(mono, 12, "s1", "production", t(3, 12), payload={"service": "search"})
    issue(21, ["Incident", "Search"], t(3, 13), t(3, 14))
    push(
        t(4, 9),
        [("p2", t(4, 8), ["services/payments/api.py"]), ("d2", t(4, 8, 10), ["docs/guide.md"])],
    )
    run(mono, 4, "ci", "d2", t(4, 9, 1), 2)
    deploy(mono, 13, "d2", "production", t(4, 11))
    issue(22, ["Incident"], t(4, 15), t(4, 15, 30))

    imported("L0", [], datetime(2025, 1, 1, tzinfo=UTC), ["app/old.py"])
    imported("L1", ["L0"], t(2, 8), ["models/train.py"])
    imported("L2", ["L1"], t(2, 9), ["app/main.py", "models/serve.py"])
    imported("L3", ["L2"], t(2, 9, 30), ["README.md"])
    run(lab, 5, "ci", "L0", t(1, 9), 1)
    deploy(lab, 21, "L3", "production", t(2, 10), task="deploy:models")
    deploy(lab, 22, "L3", "production", t(2, 12))
    return org.envelopes


MONO_SHA = {
    name: hashlib.sha1(name.encode()).hexdigest()
    for name in ("m1", "m2", "m3", "s1", "p2", "d2", "L0", "L1", "L2", "L3")
}
MONOREPO_CONFIG = PlatformConfig(
    services=[
        Service(
            name="payments",
            repositories=["acme/mono"],
            paths=["services/payments/**"],
            workflows=["payments-*"],
        ),
        Service(name="search", repositories=["acme/mono"], paths=["services/search/**"]),
        Service(name="models", repositories=["acme/lab"], paths=["models/**"]),
        Service(name="app", repositories=["acme/lab"], paths=["app/**"]),
    ]
)


@pytest.fixture(scope="module")
def monorepo(tmp_path_factory):
    conn, report = warehouse_with(
        tmp_path_factory.mktemp("monorepo"), build_monorepo_org(), MONOREPO_CONFIG
    )
    assert report.quarantined == 0
    return conn


def test_monorepo_deployments_belong_to_the_services_they_name(monorepo):
    found = rows(
        monorepo,
        "SELECT deployment_key, service, is_rollback FROM marts.production_deployments"
        " ORDER BY deployed_at, deployment_key",
    )
    assert [(d["deployment_key"], d["service"]) for d in found] == [
        ("github:11", "payments"),  # production-payments: named after it
        ("github:21", "models"),  # task deploy:models
        ("github:22@app", "app"),  # names no service: each of the repository's
        ("github:22@models", "models"),
        ("github:12", "search"),  # payload service: search
        ("github:13@payments", "payments"),
        ("github:13@search", "search"),
    ]
    assert not any(d["is_rollback"] for d in found)


def test_monorepo_changes_are_the_commits_that_touched_the_service(monorepo):
    found = rows(
        monorepo,
        "SELECT deployment_key, service, sha, lead_time_s, organisation_first, found_by"
        " FROM marts.deployment_changes ORDER BY deployed_at, deployment_key, committed_at",
    )
    name = {v: k for k, v in MONO_SHA.items()}
    assert [
        (c["deployment_key"], name[c["sha"]], c["lead_time_s"], c["organisation_first"])
        for c in found
    ] == [
        ("github:11", "m1", 7200, True),
        ("github:11", "m2", 5400, True),
        ("github:21", "L1", 7200, True),
        ("github:21", "L2", 3600, True),
        ("github:22@app", "L2", 10800, False),  # models shipped it first
        ("github:12", "m2", 99000, False),  # payments shipped it first
        ("github:12", "s1", 14400, True),
        ("github:13@payments", "p2", 10800, True),
    ]
    # acme/mono has only pushes; acme/lab only the imported graph, walked once per service.
    assert {(c["deployment_key"].split("@")[0], c["found_by"]) for c in found} == {
        ("github:11", "pushes"),
        ("github:12", "pushes"),
        ("github:13", "pushes"),
        ("github:21", "commit_graph"),
        ("github:22", "commit_graph"),
    }


def test_monorepo_commit_files_and_services(monorepo):
    name = {v: k for k, v in MONO_SHA.items()}
    files = rows(monorepo, "SELECT repo, sha, path, change FROM core.commit_files")
    assert len(files) == 12 and {f["change"] for f in files} == {"modified"}
    assert {(f["repo"], name[f["sha"]], f["path"]) for f in files} >= {
        ("acme/mono", "m2", "services/search/index.py"),
        ("acme/lab", "L2", "app/main.py"),  # from the imported commit's files
    }
    found = rows(monorepo, "SELECT sha, service FROM core.commit_services")
    assert sorted((name[r["sha"]], r["service"]) for r in found) == [
        ("L0", "app"),
        ("L1", "models"),
        ("L2", "app"),
        ("L2", "models"),
        ("m1", "payments"),
        ("m2", "payments"),
        ("m2", "search"),
        ("p2", "payments"),
        ("s1", "search"),
    ]


def monorepo_figures(conn, service, grain, period):
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
    found = rows(
        conn,
        "SELECT * FROM marts.dora_metrics WHERE service = ? AND grain = ? AND period_start = ?",
        service,
        grain,
        period,
    )
    assert len(found) == 1, (service, grain, period)
    return tuple(found[0][k] for k in keys)


def test_monorepo_daily_metrics_per_service(monorepo):
    def day(service, date):
        return monorepo_figures(monorepo, service, "day", date)

    assert day("payments", "2026-03-02") == (1, 2, 6300, 0, 0.0, 0, None, None)
    assert day("models", "2026-03-02") == (2, 2, 5400, 0, 0.0, 0, None, None)
    assert day("app", "2026-03-02") == (1, 1, 10800, 0, 0.0, 0, None, None)
    assert day("search", "2026-03-03") == (1, 2, 56700, 1, 1.0, 1, 3600, 82800)
    assert day("payments", "2026-03-04") == (1, 1, 10800, 0, 0.0, 0, None, None)
    assert day("search", "2026-03-04") == (1, 0, None, 0, 0.0, 0, None, None)
    # An issue labelled with no service of its shared repository is the repository's.
    assert day("acme/mono", "2026-03-04") == (0, 0, None, 0, None, 1, 1800, None)


def test_monorepo_organisation_counts_a_commit_once(monorepo):
    def org(grain, date):
        return monorepo_figures(monorepo, "*", grain, date)

    assert org("day", "2026-03-02") == (4, 4, 6300, 0, 0.0, 0, None, None)
    assert org("day", "2026-03-03") == (1, 1, 14400, 1, 1.0, 1, 3600, 82800)
    assert org("day", "2026-03-04") == (2, 1, 10800, 0, 0.0, 1, 1800, None)
    assert org("week", "2026-03-02") == (7, 6, 7200, 1, pytest.approx(1 / 7), 2, 2700, 82800)
    week = {
        s: monorepo_figures(monorepo, s, "week", "2026-03-02")[:5]
        for s in ("payments", "search", "models", "app")
    }
    assert week == {
        "payments": (2, 3, 7200, 0, 0.0),
        "search": (2, 2, 56700, 1, 0.5),
        "models": (2, 2, 5400, 0, 0.0),
        "app": (1, 1, 10800, 0, 0.0),
    }
    assert sum(w[1] for w in week.values()) == 8  # m2 and L2 are changes of two services each
    summary = rows(
        monorepo,
        "SELECT service, deployments, lead_time_median_s FROM marts.dora_summary"
        " WHERE window_days = 30 AND service IN ('*', 'search')",
    )
    assert {r["service"]: (r["deployments"], r["lead_time_median_s"]) for r in summary} == {
        "*": (7, 7200),
        "search": (2, 56700),
    }


def test_monorepo_incidents_belong_to_the_service_their_label_names(monorepo):
    found = {
        r["incident_key"]: (r["service"], r["caused_by_deployment_key"])
        for r in rows(monorepo, "SELECT * FROM core.incidents")
    }
    assert found == {"github:21": ("search", "github:12"), "github:22": ("acme/mono", None)}


def test_monorepo_ci_runs_map_to_services_by_workflow_or_paths(monorepo):
    runs = {
        r["run_key"]: r["service"]
        for r in rows(monorepo, "SELECT run_key, service FROM core.pipeline_runs")
    }
    # One service a run: its workflow's, else the repository (several services, or none).
    assert runs == {
        "github:1:1": "payments",
        "github:2:1": "acme/mono",
        "github:3:1": "acme/mono",
        "github:4:1": "acme/mono",
        "github:5:1": "acme/lab",
    }
    found = rows(monorepo, "SELECT run_key, service, mapped_by FROM core.run_services ORDER BY ALL")
    assert [tuple(r.values()) for r in found] == [
        ("github:1:1", "payments", "workflow"),
        ("github:2:1", "payments", "paths"),  # push M1: m1, m2 touched payments
        ("github:2:1", "search", "paths"),  # and m2 search
        ("github:3:1", "search", "paths"),
        ("github:4:1", "payments", "paths"),  # push M3: p2 (d2 is docs)
        ("github:5:1", "app", "paths"),  # no push: L0's own (imported) files
    ]
    costs = {
        r["deployment_key"]: r["ci_cost_usd"]
        for r in rows(monorepo, "SELECT * FROM marts.deployment_cost")
    }
    assert costs == {
        "github:11": Decimal("0.090"),  # R1 (10 min) and R2 (5 min) on m3, both payments'
        "github:12": Decimal("0.018"),  # R3 on s1
        "github:13@payments": Decimal("0.012"),  # R4 on d2 built payments
        "github:13@search": 0,  # and not search
        "github:21": 0,
        "github:22@app": 0,
        "github:22@models": 0,
    }


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


def build_web_org(then=None) -> list[dict]:
    """web's deliveries; `then(org)` adds more after them (a test's own epilogue)."""
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
    if then is not None:
        then(org)
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


def test_a_hotfix_pull_request_makes_its_deployment_rework(tmp_path):
    """The hotfix pattern also matches a shipped pull request's head branch or title: with
    `feature/cache` PR 2 (head feature/cache) makes D2, which first shipped it, rework; with
    `change 3` (any letter case) PR 3's title "Change 3" makes D3 rework; with the default
    `hotfix` none of web's deployments is (every ref is main, no incident was open)."""
    from dcicd_platform.config import Dora

    def reasons(pattern: str, folder) -> dict:
        config = WEB_CONFIG.model_copy(update={"dora": Dora(hotfix_pattern=pattern)})
        folder.mkdir()
        conn, _ = warehouse_with(folder, build_web_org(), config)
        return {
            r["deployment_key"]: r["rework_reason"]
            for r in rows(conn, "SELECT * FROM marts.deployment_rework")
        }

    assert reasons("hotfix", tmp_path / "a") == dict.fromkeys(["github:1", "github:2", "github:3"])
    assert reasons("feature/cache", tmp_path / "b")["github:2"] == "hotfix_pull_request"
    by_title = reasons("change 3", tmp_path / "c")
    assert (by_title["github:2"], by_title["github:3"]) == (None, "hotfix_pull_request")


def test_a_revert_is_a_change_of_its_own_and_the_reverted_commits_count_once(tmp_path):
    """Fri 03-13: bo reverts PR 1 on revert-1-feature/login: r1 (09:00) pushed 09:05; PR 6
    opened 09:10, approved by ana 09:30, squash merged 10:00 as s6; D6 production s6 11:00.
    D6 ships what main received since D3: s4 (PR 4's squash: v1, Thu 07:00, 28 h) and s6 (PR
    6's squash: r1, 2 h). PR 1's commits w1-w3, which r1 undoes, were shipped by D1 and count
    there only. PR 6: coding 600, pickup 1200, review 1800, deploy 3600, cycle 7200."""

    def revert(org):
        org.push_to("revert-1-feature/login", t(13, 9, 5), [("r1", t(13, 9))], "bo")
        opened = t(13, 9, 10)
        pr6 = org.pull(6, "bo", "revert-1-feature/login", "r1", "opened", opened, opened)
        org.review(pr6, 601, "ana", "approved", t(13, 9, 30))
        org.push_to("main", t(13, 10), [("s6", t(13, 10))], "bo")
        org.pull(
            6, "bo", "revert-1-feature/login", "r1", "closed", opened, t(13, 10), t(13, 10),
            web_sha("s6"),
        )  # fmt: skip
        org.production(6, "s6", t(13, 11))

    conn, report = warehouse_with(tmp_path, build_web_org(revert), WEB_CONFIG)
    assert report.quarantined == 0
    changes = rows(
        conn,
        "SELECT deployment_key, sha, lead_time_s, via_sha FROM marts.deployment_changes"
        " ORDER BY deployment_key, sha",
    )
    shipped = {(r["deployment_key"], r["sha"]): (r["lead_time_s"], r["via_sha"]) for r in changes}
    assert {k: v for k, v in shipped.items() if k[0] == "github:6"} == {
        ("github:6", web_sha("v1")): (100800, web_sha("s4")),
        ("github:6", web_sha("r1")): (7200, web_sha("s6")),
    }
    for name in ("w1", "w2", "w3"):
        assert [k[0] for k in shipped if k[1] == web_sha(name)] == ["github:1"]
    (cycle,) = rows(
        conn,
        "SELECT deployment_key, coding_s, pickup_s, review_s, deploy_s, cycle_s"
        f" FROM marts.pull_request_cycle WHERE pr_key = '{pr_key(6)}'",
    )
    assert cycle == {
        "deployment_key": "github:6",
        "coding_s": 600,
        "pickup_s": 1200,
        "review_s": 1800,
        "deploy_s": 3600,
        "cycle_s": 7200,
    }
