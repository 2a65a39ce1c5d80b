"""The data-quality checks and the anomaly detectors: whole history each time, or what changed.

Generates, straight into raw.events as benchmarks/refresh.py does (DuckDB builds the payloads),
an organisation of 200 services over a year: --runs CI runs (250,000 by default: 1.6 million
events) with five jobs each, every 36th green run deployed to production with twelve health
samples around it (one deployment in 900 degrades them), and the incidents of refresh.py. It
builds every SQL model, then in two copies of the warehouse times, each in its own process:
  - old: the checks as Great Expectations ran them (whole columns pulled into pandas: the code
    this replaced, kept below as `GX_CHECKS`) and every detector over all history (`detect_all`);
  - new: the checks as the asset runs them now (SQL in the warehouse; the uniqueness rules over
    the keys the refresh touched) and the detectors as the asset runs them (changes since their
    last run: `detect_and_store`);
first on the whole organisation (the new detectors' first run judges everything), then after
one more hour of events is loaded and the models refreshed. Each side runs --repeats times on a
fresh copy and the fastest is kept (the machine may be shared); scipy is imported before the
detectors are timed, on both sides (a run that scored or trained has it already). Prints each
step's seconds, the ratio new/old and the processes' peak memory, and whether old and new hold
the same open anomalies.

    python benchmarks/checks_and_detectors.py [--runs 250000] [--repeats 2] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from ingest import timed  # noqa: E402
from refresh import REFRESH  # noqa: E402

SERVICES = 200
DAYS = 365
JOBS_PER_RUN = 5

# refresh.py's runs, spread over `span` seconds from `offset` seconds after the start, in time
# order (as deliveries arrive: raw.events is appended as they come).
RUNS = """
CREATE OR REPLACE TEMP TABLE runs AS
SELECT i AS run_id, i % {services} AS svc,
    'org/svc-' || lpad((i % {services})::VARCHAR, 3, '0') AS repo,
    md5(i::VARCHAR) || lpad(i::VARCHAR, 8, '0') AS sha,
    TIMESTAMPTZ '2025-11-01' + to_seconds(({offset} + (i * 7919) % {span})::BIGINT) AS created,
    CASE WHEN hash(i) % 10 = 0 THEN 'failure' ELSE 'success' END AS conclusion
FROM range({first}, {first} + {runs}) t(i)
ORDER BY created
"""
# Twelve samples, five minutes apart, either side of each production deployment (deployed 40
# minutes after its run was created); one deployment in 900 has errors and latency up after it.
HEALTH = """
INSERT INTO raw.events
SELECT 'health-' || run_id || '-' || k, 'metrics', 'health_sample',
    created + INTERVAL 41 MINUTE + to_minutes(5 * k),
    json_object('service', repo, 'environment', 'production',
        'ts', strftime(created + INTERVAL 40 MINUTE + to_minutes(5 * k), '%Y-%m-%dT%H:%M:%SZ'),
        'requests', 1000,
        'errors', CASE WHEN k > 0 AND run_id % 900 = 0 THEN 60 ELSE 5 END + hash(run_id, k) % 5,
        'latency_p95_ms', CASE WHEN k > 0 AND run_id % 900 = 0 THEN 400 ELSE 200 END
            + hash(run_id, k) % 40),
    'generated', run_id, '{load}'
FROM deployed, range(-6, 7) t(k) WHERE k <> 0
"""

GENERATE = """
import sys, duckdb
from dcicd_platform.ingest.schema import ensure_raw_schema
sys.path.insert(0, sys.argv[1])
from checks_and_detectors import RUNS, HEALTH, SERVICES, JOBS_PER_RUN
from refresh import EVENTS
database, first, runs, offset, span, load = sys.argv[2:8]
conn = duckdb.connect(database, config={"checkpoint_threshold": "1MB"})
ensure_raw_schema(conn)
conn.execute(RUNS.format(services=SERVICES, first=first, runs=runs, offset=offset, span=span))
for statement in (EVENTS.format(jobs=JOBS_PER_RUN, load=load) + ";" + HEALTH.format(load=load)
        ).split(";"):
    if statement.strip():
        conn.execute(statement)
print(conn.execute("SELECT count(*) FROM raw.events").fetchone()[0])
"""

# The checks as they ran before: each rule's rows pulled into pandas and judged by Great
# Expectations (rules' row issues replaced whole), as dcicd_platform/checks/asset_checks.py did.
GX_CHECKS = """
import json, sys, time, duckdb
from dbt_like_sql.session import prepare_session
from dcicd_platform.checks.asset_checks import QUALITY_DDL
from dcicd_platform.checks.expectations import RULES
from dcicd_platform.config import PlatformConfig
started = time.perf_counter()
import great_expectations as gx  # imported by the first check of each run
conn = duckdb.connect(sys.argv[1])
prepare_session(conn)
conn.execute(QUALITY_DDL)
config = PlatformConfig()
context = gx.get_context(mode="ephemeral")
context.variables.progress_bars = {"globally": False}
batches = (context.data_sources.add_pandas("warehouse").add_dataframe_asset(name="rows")
    .add_batch_definition_whole_dataframe("all"))
def jsonable(v):
    return v.item() if hasattr(v, "item") else str(v) if v is not None else None
for rule in RULES:
    frame = conn.execute(rule.sql).df()
    kwargs, result_format = dict(rule.kwargs), {"result_format": "SUMMARY"}
    if rule.kind == "not_emptied":
        kwargs["min_value"] = 1
    elif not rule.blocking:
        kwargs["mostly"] = config.quality.mostly_for(rule.qualified_name)
        result_format = {"result_format": "COMPLETE",
            "unexpected_index_column_names": list(rule.keys),
            "return_unexpected_index_query": False}
    outcome = batches.get_batch(batch_parameters={"dataframe": frame}).validate(
        getattr(gx.expectations, rule.expectation)(**kwargs), result_format=result_format)
    if rule.kind == "not_emptied":
        conn.execute(f"SELECT count(*) FROM {rule.table}").fetchone()
    elif not rule.blocking:
        offending = (outcome.result or {}).get("unexpected_index_list") or []
        conn.execute("DELETE FROM quality.row_issues WHERE table_name = ? AND rule = ?",
            [rule.table, rule.name])
        if offending:
            conn.executemany("INSERT INTO quality.row_issues VALUES (?, ?, ?, ?, ?, now())", [
                (rule.table, rule.name, rule.description,
                 json.dumps({k: jsonable(r.get(k)) for k in rule.keys}),
                 json.dumps({k: jsonable(v) for k, v in r.items() if k not in rule.keys}))
                for r in offending])
print(round(time.perf_counter() - started, 3))
"""

NEW_CHECKS = """
import sys, time, duckdb
from collections import defaultdict
from dbt_like_sql.session import prepare_session
from dcicd_platform.checks.asset_checks import validate
from dcicd_platform.checks.expectations import RULES
from dcicd_platform.config import PlatformConfig
started = time.perf_counter()
conn = duckdb.connect(sys.argv[1])
prepare_session(conn)
by_table = defaultdict(list)
for rule in RULES:
    by_table[rule.table].append(rule)
for rules in by_table.values():
    validate(conn, rules, PlatformConfig())
print(round(time.perf_counter() - started, 3))
"""

# Each detector timed alone (seconds per kind), then the whole step with its upsert.
OLD_DETECTORS = """
import sys, time, duckdb
from dbt_like_sql.session import prepare_session
from dcicd_platform.config import PlatformConfig
from ml.anomaly import build_duration, ci_cost, collection, deployment_health, failure_rate
from ml.anomaly import model_accuracy, store
import polars as pl
import scipy.stats  # imported by any run that scored or trained; not timed on either side
conn = duckdb.connect(sys.argv[1])
prepare_session(conn)
t = PlatformConfig().anomalies
runs = {
    "build_duration": lambda: build_duration.build_duration(conn, t),
    "failure_rate": lambda: failure_rate.failure_rate(conn, t),
    "ci_cost": lambda: ci_cost.ci_cost(conn, t),
    "deployment_health": lambda: deployment_health.deployment_health(conn, t, 30),
    "model_accuracy": lambda: model_accuracy.model_accuracy(conn, t),
    "collection": lambda: collection.collection(conn, t),
}
started, frames = time.perf_counter(), []
for kind, run in runs.items():
    began = time.perf_counter()
    frames.append(run())
    print(kind, round(time.perf_counter() - began, 3))
store(conn, pl.concat(frames))
print("all", round(time.perf_counter() - started, 3))
"""

NEW_DETECTORS = """
import sys, time, duckdb
from dbt_like_sql.session import prepare_session
from dcicd_platform.config import PlatformConfig
from ml.anomaly.detect import detect_and_store
import polars, scipy.stats  # imported by any run that scored or trained; not timed on either side
conn = duckdb.connect(sys.argv[1])
prepare_session(conn)
started = time.perf_counter()
counts, seconds = detect_and_store(conn, PlatformConfig().anomalies, 30)
for kind, s in seconds.items():
    print(kind, round(s, 3))
print("all", round(time.perf_counter() - started, 3))
"""

SAME = """
import sys, duckdb
old, new = (duckdb.connect(p, read_only=True) for p in sys.argv[1:3])
query = ("SELECT anomaly_key, kind, entity_key, detected_at, observed, expected, score, severity,"
    " explanation FROM ml.anomalies WHERE cleared_at IS NULL ORDER BY anomaly_key")
a, b = old.execute(query).fetchall(), new.execute(query).fetchall()
print(len(a), len(b), a == b)
"""


def seconds_by_step(output: str) -> dict[str, float]:
    return {name: float(s) for name, s in (line.split() for line in output.splitlines())}


def measure(side: str, database: str, scratch: Path) -> tuple[dict[str, float], float, float]:
    """The checks then the detectors of one side (old or new) on a copy of database, as a run
    does them: (seconds per step, peak MB of the checks, of the detectors). The copy is left at
    scratch, holding what the run wrote (the new detectors' cursors, the anomalies)."""
    shutil.copy(database, scratch)
    checks, detectors = (GX_CHECKS, OLD_DETECTORS) if side == "old" else (NEW_CHECKS, NEW_DETECTORS)
    _, checks_mb, out = timed([sys.executable, "-c", checks, str(scratch)])
    _, detectors_mb, found = timed([sys.executable, "-c", detectors, str(scratch)])
    return {"checks": float(out)} | seconds_by_step(found), checks_mb, detectors_mb


def best(side: str, database: str, work: Path, repeats: int) -> tuple[dict, float, float, str]:
    """measure() repeated on fresh copies: each step's fastest time, the highest peaks, and the
    last copy (the database the next phase starts from)."""
    times: dict[str, float] = {}
    peaks = [0.0, 0.0]
    for n in range(repeats):
        scratch = work / f"{side}-{n}.duckdb"
        seconds, checks_mb, detectors_mb = measure(side, database, scratch)
        times = {k: min(v, times.get(k, v)) for k, v in seconds.items()}
        peaks = [max(peaks[0], checks_mb), max(peaks[1], detectors_mb)]
        if n < repeats - 1:
            scratch.unlink()
    shutil.move(scratch, database)
    return times, peaks[0], peaks[1], database


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=250_000)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--repeats", type=int, default=2, help="best of (each on a fresh copy)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dcicd-checks-", dir=args.workdir))
    here = str(Path(__file__).parent)
    old, new = str(work / "old.duckdb"), str(work / "new.duckdb")
    hour_runs = max(1, args.runs // (DAYS * 24))
    try:
        print(f"generating {args.runs:,} runs, {args.runs * JOBS_PER_RUN:,} jobs over {DAYS} days")
        gen = [sys.executable, "-c", GENERATE, here]
        seconds, _, out = timed([*gen, old, "0", str(args.runs), "0", str(DAYS * 86400), "a"])
        print(f"  {int(out):,} events in raw.events ({seconds:.0f} s)")
        seconds, _, _ = timed([sys.executable, "-c", REFRESH, old])
        print(f"  every model built ({seconds:.0f} s)")
        shutil.copy(old, new)
        figures: dict[str, dict[str, tuple[float, float]]] = {}
        for phase in ("full", "one more hour"):
            if phase != "full":
                for database in (old, new):
                    timed(
                        [
                            *gen,
                            database,
                            str(args.runs),
                            str(hour_runs),
                            str(DAYS * 86400),
                            "3600",
                            "b",
                        ]
                    )
                    seconds, _, _ = timed([sys.executable, "-c", REFRESH, database])
                print(
                    f"  appended one hour: {hour_runs:,} runs; models refreshed ({seconds:.0f} s)"
                )
            a, old_checks_mb, old_mb, _ = best("old", old, work, args.repeats)
            b, new_checks_mb, new_mb, _ = best("new", new, work, args.repeats)
            steps = {"checks": (a["checks"], b["checks"], old_checks_mb, new_checks_mb)}
            for kind in a:
                if kind not in ("checks", "all"):
                    steps[f"  {kind}"] = (a[kind], b.get(kind, 0.0), None, None)
            steps["  upsert (store)"] = (None, b["store"], None, None)
            steps["detectors, all"] = (a["all"], b["all"], old_mb, new_mb)
            figures[phase] = steps
            _, _, same = timed([sys.executable, "-c", SAME, old, new])
            count_old, count_new, equal = same.split()
            print(f"  open anomalies, old {count_old}, new {count_new}; the same: {equal}")
        for phase, steps in figures.items():
            print(f"\n{phase:28s}    old s     new s   new/old   peak MB old / new")
            for step, (a_s, b_s, a_mb, b_mb) in steps.items():
                ratio = f"{b_s / a_s:7.3f}" if a_s else "      -"
                before = f"{a_s:8.2f}" if a_s is not None else "       -"
                peak = f"  {a_mb:,.0f} / {b_mb:,.0f}" if a_mb is not None else ""
                print(f"  {step:26s} {before}  {b_s:8.2f}  {ratio}{peak}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
