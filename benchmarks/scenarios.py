"""The labelled scenario set for the anomaly detectors and the rollback decision.

Built from the sample organisation (seed 7, 90 days to 2026-11-01), whose generator records
what it injected: each production deployment and whether it made it bad (errors and latency
up, an incident); a slow regression (one job 1.7x slower from day 60); a cost spike (one job
run three times, 1.5x longer, days 40-47). Every case is labelled `injected` or `clean`
(`excluded` where neither holds: the cost spike's runs are also slower, so they are neither a
clean run nor the regression). The set lives in `benchmarks/scenarios/anomaly_scenarios.csv`;
`benchmarks/anomalies.py` rebuilds the organisation, checks it still yields exactly this set,
and scores the detectors on it.

    python benchmarks/scenarios.py --write    # after a change to the generator
"""

from __future__ import annotations

import csv
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from dbt_like_sql import build_model, load_models  # noqa: E402
from dbt_like_sql.session import prepare_session  # noqa: E402
from dcicd_platform.assets.config_tables import write_config_tables  # noqa: E402
from dcicd_platform.config import parse_config  # noqa: E402
from dcicd_platform.demo.generator import Simulation, _envelopes  # noqa: E402
from dcicd_platform.demo.organisation import SERVICES, demo_config_yaml  # noqa: E402
from dcicd_platform.ingest.loader import load_files  # noqa: E402

SEED, DAYS, END = 7, 90, datetime(2026, 11, 1, tzinfo=UTC)
SCENARIOS = Path(__file__).parent / "scenarios" / "anomaly_scenarios.csv"
FIELDS = ["kind", "entity_key", "service", "at", "label", "what"]


def build_organisation(folder: Path) -> tuple[duckdb.DuckDBPyConnection, Simulation]:
    """The sample organisation in a fresh warehouse, every SQL model built."""
    simulation = Simulation(SEED, DAYS, END)
    events = simulation.run()
    landing = folder / "events.ndjson"
    landing.write_bytes(b"".join(_envelopes(events)))
    conn = duckdb.connect(str(folder / "warehouse.duckdb"))
    load_files(conn, [landing])
    prepare_session(conn)
    write_config_tables(conn, parse_config(demo_config_yaml()))
    for model in load_models():
        build_model(conn, model)
    return conn, simulation


def label_cases(conn: duckdb.DuckDBPyConnection, simulation: Simulation) -> list[dict]:
    """Every case the detectors are judged on, with what the generator injected."""
    cases = []
    keys = dict(
        conn.execute(
            "SELECT service || '|' || sha || '|' || strftime(deployed_at, '%Y-%m-%dT%H:%M'),"
            " deployment_key FROM marts.production_deployments"
        ).fetchall()
    )
    for d in simulation.deployments:
        key = keys.get(f"{d['service']}|{d['sha']}|{d['deployed_at']:%Y-%m-%dT%H:%M}")
        if key is not None:  # a deployment the warehouse knows as a production one
            cases.append(
                {
                    "kind": "deployment_health",
                    "entity_key": key,
                    "service": d["service"],
                    "at": f"{d['deployed_at']:%Y-%m-%dT%H:%M}",
                    "label": "injected" if d["bad"] else "clean",
                    "what": f"deployment of {d['sha'][:8]}"
                    + (" that degrades health and opens an incident" if d["bad"] else ""),
                }
            )
    spike, regression = {}, {}
    for profile in SERVICES:
        if profile.cost_spike_days:
            first, last = profile.cost_spike_days
            spike[profile.repo] = {
                (simulation.start + timedelta(days=n)).date() for n in range(first, last + 1)
            }
        if profile.regression_from_day is not None:
            began = simulation.start + timedelta(days=profile.regression_from_day)
            regression[profile.repo] = (began, began + timedelta(days=7))
    for repo, service, day in conn.execute(
        "SELECT c.repo, any_value(r.service), c.day FROM marts.ci_cost_daily c"
        " LEFT JOIN core.pipeline_runs r USING (repo) GROUP BY c.repo, c.day ORDER BY ALL"
    ).fetchall():
        injected = day in spike.get(repo, set())
        cases.append(
            {
                "kind": "ci_cost",
                "entity_key": f"{repo}|{day}",
                "service": service,
                "at": str(day),
                "label": "injected" if injected else "clean",
                "what": f"{repo}'s CI day" + (" with a job copied three times" if injected else ""),
            }
        )
    for run_key, repo, service, started in conn.execute(
        "SELECT run_key, repo, service, started_at FROM core.pipeline_runs"
        " WHERE status = 'completed' AND conclusion = 'success' ORDER BY started_at, run_key"
    ).fetchall():
        window = regression.get(repo)
        if window and window[0] <= started < window[1]:
            label, what = "injected", "a run in the slow regression's first week"
        elif started.date() in spike.get(repo, set()):
            label, what = "excluded", "a run of the cost spike (its copied job is slower too)"
        else:
            label, what = "clean", "a successful run"
        cases.append(
            {
                "kind": "build_duration",
                "entity_key": run_key,
                "service": service,
                "at": f"{started:%Y-%m-%dT%H:%M}",
                "label": label,
                "what": what,
            }
        )
    return cases


def read_scenarios(path: Path = SCENARIOS) -> list[dict]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(line for line in handle if not line.startswith("#")))


def write_scenarios(cases: list[dict], path: Path = SCENARIOS) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        handle.write(
            f"# dcicd anomaly scenario set: sample organisation seed {SEED}, {DAYS} days to"
            f" {END.date()}; written by benchmarks/scenarios.py\n"
        )
        writer = csv.DictWriter(handle, FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(cases)


if __name__ == "__main__":
    import tempfile

    if "--write" not in sys.argv:
        sys.exit(__doc__)
    with tempfile.TemporaryDirectory() as work:
        conn, simulation = build_organisation(Path(work))
        cases = label_cases(conn, simulation)
        conn.close()
    write_scenarios(cases)
    counts: dict[tuple[str, str], int] = {}
    for c in cases:
        counts[c["kind"], c["label"]] = counts.get((c["kind"], c["label"]), 0) + 1
    print(f"wrote {len(cases)} cases to {SCENARIOS}: {counts}")
