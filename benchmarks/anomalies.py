"""The detectors and the rollback decision against the labelled scenario set.

The set (`benchmarks/scenarios/anomaly_scenarios.csv`, see `benchmarks/scenarios.py`) labels
every production deployment, repository day and successful run of the sample organisation as
`injected` or `clean`. This rebuilds the organisation in a fresh warehouse, checks it still
yields exactly that set, runs every detector, and reports per kind the catch rate (injected
cases found) and the false positive rate (clean cases flagged); then the rollback decision:
for each deployment, would the automation ask to roll it back (a critical deployment_health
anomaly, judged on the samples of the 30 minutes before and after it). The rollout strategy's
targets: catch > 70% with false positives < 15% per kind; rollback decisions > 90% right with
false rollbacks < 5%.

    python benchmarks/anomalies.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from scenarios import DAYS, SCENARIOS, SEED, build_organisation, label_cases, read_scenarios  # noqa: E402

from dcicd_platform.config import AnomalyThresholds  # noqa: E402
from ml.anomaly import detect_all  # noqa: E402

MEANING = {
    "deployment_health": "(a deployment: critical or warning)",
    "ci_cost": "(a repository's day: the day, or a workflow's cost per run that day)",
    "build_duration": "(a successful run: the run, or one of its jobs)",
}


def rate(part: int, whole: int) -> str:
    return f"{part / whole:.1%} ({part}/{whole})" if whole else "-"


def flagged_cases(found, run_of_job: dict[str, str]) -> dict[str, set[str]]:
    """The scenario cases each kind's anomalies point at."""
    kind = found["kind"]
    health = set(found.filter(kind == "deployment_health")["entity_key"])
    cost = {
        "|".join(k.split("|")[:2])
        for k in found.filter(kind == "ci_cost")["entity_key"]
        if "|budget|" not in k
    }
    slow = {run_of_job.get(k, k) for k in found.filter(kind == "build_duration")["entity_key"]}
    return {"deployment_health": health, "ci_cost": cost, "build_duration": slow}


def main() -> None:
    cases = read_scenarios()
    with tempfile.TemporaryDirectory() as work:
        conn, simulation = build_organisation(Path(work))
        rebuilt = label_cases(conn, simulation)
        if [(c["kind"], c["entity_key"], c["label"]) for c in rebuilt] != [
            (c["kind"], c["entity_key"], c["label"]) for c in cases
        ]:
            sys.exit(
                f"{SCENARIOS} no longer matches the sample organisation (the generator changed):"
                " rewrite it with `python benchmarks/scenarios.py --write` and review the diff"
            )
        found = detect_all(conn, AnomalyThresholds(), rollback_window_minutes=30)
        run_of_job = dict(
            conn.execute("SELECT job_key, run_key FROM core.pipeline_jobs").fetchall()
        )
        conn.close()
    print(
        f"labelled scenario set: {len(cases)} cases from {SCENARIOS.name}"
        f" (sample organisation seed {SEED}, {DAYS} days)"
    )
    flagged = flagged_cases(found, run_of_job)
    for kind, meaning in MEANING.items():
        mine = [c for c in cases if c["kind"] == kind]
        injected = [c["entity_key"] for c in mine if c["label"] == "injected"]
        clean = [c["entity_key"] for c in mine if c["label"] == "clean"]
        caught = sum(k in flagged[kind] for k in injected)
        false = sum(k in flagged[kind] for k in clean)
        print(
            f"{kind:18s} catch {rate(caught, len(injected)):>16}   false positives"
            f" {rate(false, len(clean)):>16}  {meaning}"
        )

    # The rollback decision: asked (critical) for the bad ones, not for the clean ones.
    health = found.filter(found["kind"] == "deployment_health")
    critical = set(health.filter(health["severity"] == "critical")["entity_key"])
    deployments = [c for c in cases if c["kind"] == "deployment_health"]
    bad = [c for c in deployments if c["label"] == "injected"]
    right = sum((c["entity_key"] in critical) == (c["label"] == "injected") for c in deployments)
    wrong = sum(c["entity_key"] in critical for c in deployments if c["label"] == "clean")
    print(
        f"rollback decision  right {rate(right, len(deployments)):>16}   false rollbacks"
        f" {rate(wrong, len(deployments) - len(bad)):>16}"
    )


if __name__ == "__main__":
    main()
