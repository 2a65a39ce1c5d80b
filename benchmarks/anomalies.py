"""The detectors and the rollback decision against what the sample organisation injected.

The labelled scenario set is the sample organisation itself (seed 7, 90 days): the generator
records every production deployment it makes and whether it made it bad (health degrades, an
incident opens), and its profiles say where the slow regression and the cost spike are. This
loads it into a fresh warehouse, runs every detector, and reports per kind the catch rate
(injected problems found) and the false positive rate (clean cases flagged); then the rollback
decision: for each deployment, would the automation ask to roll it back (a critical
deployment_health anomaly, judged on the samples of the 30 minutes before and after it). The
rollout strategy's targets: catch > 70% with false positives < 15% per kind; rollback decisions
> 90% right with false rollbacks < 5%.

    python benchmarks/anomalies.py
"""

from __future__ import annotations

import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from dbt_like_sql import build_model, load_models  # noqa: E402
from dcicd_platform.assets.config_tables import write_config_tables  # noqa: E402
from dcicd_platform.config import parse_config  # noqa: E402
from dcicd_platform.demo.generator import Simulation, _envelopes  # noqa: E402
from dcicd_platform.demo.organisation import SERVICES, demo_config_yaml  # noqa: E402
from dcicd_platform.ingest.loader import load_files  # noqa: E402
from dcicd_platform.ingest.schema import prepare_session  # noqa: E402
from ml.anomaly import Thresholds, detect_all  # noqa: E402

END = datetime(2026, 11, 1, tzinfo=UTC)


def rate(part: int, whole: int) -> str:
    return f"{part / whole:.1%} ({part}/{whole})" if whole else "-"


def main() -> None:
    simulation = Simulation(7, 90, END)
    events = simulation.run()
    with tempfile.TemporaryDirectory() as work:
        landing = Path(work) / "events.ndjson"
        landing.write_bytes(b"".join(_envelopes(events)))
        conn = duckdb.connect(str(Path(work) / "w.duckdb"))
        load_files(conn, [landing])
        prepare_session(conn)
        config = parse_config(demo_config_yaml())
        write_config_tables(conn, config)
        for model in load_models():
            build_model(conn, model)
        found = detect_all(conn, Thresholds())
        keys = dict(
            conn.execute(
                "SELECT service || '|' || sha || '|' || strftime(deployed_at, '%Y-%m-%dT%H:%M'),"
                " deployment_key FROM marts.production_deployments"
            ).fetchall()
        )
        daily = conn.execute("SELECT repo, day FROM marts.ci_cost_daily GROUP BY ALL").fetchall()
        runs = conn.execute(
            "SELECT run_key, repo, started_at FROM core.pipeline_runs"
            " WHERE status = 'completed' AND conclusion = 'success'"
        ).fetchall()
        run_of_job = dict(
            conn.execute("SELECT job_key, run_key FROM core.pipeline_jobs").fetchall()
        )
    print("labelled scenario set: the sample organisation, seed 7, 90 days to", END.date())

    # deployment_health: every deployment with health samples, bad or clean.
    critical = set(
        found.filter((found["kind"] == "deployment_health") & (found["severity"] == "critical"))[
            "entity_key"
        ]
    )
    flagged = set(found.filter(found["kind"] == "deployment_health")["entity_key"])
    bad_found = clean_flagged = bad = clean = 0
    for d in simulation.deployments:
        key = keys.get(f"{d['service']}|{d['sha']}|{d['deployed_at']:%Y-%m-%dT%H:%M}")
        if key is None:
            continue
        if d["bad"]:
            bad += 1
            bad_found += key in flagged
        else:
            clean += 1
            clean_flagged += key in flagged
    print(
        f"deployment_health  catch {rate(bad_found, bad):>16}   false positives"
        f" {rate(clean_flagged, clean)}"
    )

    # ci_cost: the injected spike days of the repository that has one, against every other day.
    spike = {}
    for profile in SERVICES:
        if profile.cost_spike_days:
            first, last = profile.cost_spike_days
            spike[profile.repo] = {
                (simulation.start + timedelta(days=n)).date() for n in range(first, last + 1)
            }
    cost = found.filter(found["kind"] == "ci_cost")
    cost_days = {tuple(k.split("|")[:2]) for k in cost["entity_key"] if "|budget|" not in k}
    in_spike = {(r, d) for r, d in daily if d in spike.get(r, set())}
    hits = sum((r, str(d)) in cost_days for r, d in in_spike)
    false = sum((r, str(d)) in cost_days for r, d in daily if (r, d) not in in_spike)
    print(
        f"ci_cost            catch {rate(hits, len(in_spike)):>16}   false positives"
        f" {rate(false, len(daily) - len(in_spike))}"
    )

    # build_duration: the regression's first week of runs, against every other successful run.
    regressed = {}
    for profile in SERVICES:
        if profile.regression_from_day is not None:
            began = simulation.start + timedelta(days=profile.regression_from_day)
            regressed[profile.repo] = (began, began + timedelta(days=7))
    slow = {
        run_of_job.get(k, k) for k in found.filter(found["kind"] == "build_duration")["entity_key"]
    }  # a run counts as flagged when it, or one of its jobs, is
    window = [
        k
        for k, repo, at in runs
        if repo in regressed and regressed[repo][0] <= at < regressed[repo][1]
    ]
    others = [k for k, repo, at in runs if k not in set(window)]
    print(
        f"build_duration     catch {rate(sum(k in slow for k in window), len(window)):>16}"
        f"   false positives {rate(sum(k in slow for k in others), len(others))}"
        "  (catch: runs of the regression's first week)"
    )

    # The rollback decision: asked (critical) for the bad ones, not for the clean ones.
    right = wrong_rollbacks = total = 0
    for d in simulation.deployments:
        key = keys.get(f"{d['service']}|{d['sha']}|{d['deployed_at']:%Y-%m-%dT%H:%M}")
        if key is None:
            continue
        total += 1
        asked = key in critical
        right += asked == d["bad"]
        wrong_rollbacks += asked and not d["bad"]
    print(
        f"rollback decision  right {rate(right, total):>16}   false rollbacks"
        f" {rate(wrong_rollbacks, total - bad)}"
    )


if __name__ == "__main__":
    main()
