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
"""

from datetime import UTC, datetime, timedelta

import pytest

from dcicd_platform.config import PlatformConfig, Service
from dcicd_platform.demo import payloads as pl
from dcicd_platform.ingest.envelope import make_envelope
from tests.helpers import rows, warehouse_with

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
    return org.envelopes


CONFIG = PlatformConfig(
    services=[
        Service(name="shop", repositories=["acme/shop"], pagerduty_services=["PSHOP"]),
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
    # The same CASE the model uses, read from the model itself.
    import duckdb

    from dbt_like_sql import MODELS_ROOT

    sql = (MODELS_ROOT / "marts" / "dora_summary.sql").read_text()
    case = sql[
        sql.index("CASE WHEN deploy_days_per_week") : sql.index("AS deployment_frequency_tier")
    ]
    query = f"SELECT {case} FROM (SELECT {days_per_week}::DOUBLE AS deploy_days_per_week)"
    assert duckdb.connect().execute(query).fetchone()[0] == tier
