"""From a bad deployment's health samples landing in landing/ to the rollback request, with a
real `dagster-daemon` and a real code location (workspace.yaml), on a warehouse holding the
sample organisation's 90 days.

Setup (not timed): the organisation ending three hours ago, ingested and refreshed once,
automation `live` with a webhook rollback backend (and the GitHub API of re-runs) pointed at a
local recording server. Then `dagster-daemon run -w workspace.yaml` starts with the platform's
schedules and sensors as shipped, and is left to settle (its first ticks load what landing/
already holds and act on the organisation's anomalies).

Each trial, on its own service: a file with a good deployment two hours ago and a bad one 21
minutes ago (health samples every five minutes, the last a minute ago) is moved into landing/
right after a tick of the landing sensor, its worst moment: the file waits a whole interval to
be seen. The clock stops when the recording server has that deployment's rollback request. The
path: the landing sensor asks for an ingestion run; its raw/events materialization, carrying
health samples, makes `watch_on_new_events` ask for a watch run; its ml/anomalies
materialization makes `anomaly_actions` read the warehouse and ask for the rollback. Each run
is queued, dequeued by the daemon and launched in its own process.

Printed per trial: the latency and where it went (each sensor's wait, each run's queue and
launch, each run's work), from the runs' records in the Dagster instance; then the worst
observed, and a bound: every stage's worst observed time plus every wait at its longest (each
sensor's interval plus the daemon's 5-second loop, and the queue's 2-second dequeue).

    python benchmarks/time_to_rollback.py [--trials 5] [--keep]
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from dcicd_platform.demo.deployment_scenario import deployment_with_health  # noqa: E402
from dcicd_platform.demo.generator import generate_organisation  # noqa: E402
from dcicd_platform.demo.organisation import demo_config_yaml  # noqa: E402
from dcicd_platform.home import Home  # noqa: E402
from tests.helpers import write_envelopes  # noqa: E402
from tests.recording_server import RecordingServer  # noqa: E402

# Services without approval (not `critical`), one per trial: each trial's rollback is its own.
SERVICES = ["notifications", "search-service", "data-pipeline", "inventory", "mobile-backend"]
# The waits at their longest: each sensor's interval plus the daemon's loop (it evaluates
# sensors every 5 seconds at most), and the run queue's dequeue interval (dcicd's dagster.yaml:
# 2 seconds), per run.
LOOP_S, DEQUEUE_S = 5, 2
SENSOR_INTERVAL_S = {"landing_files": 10, "watch_on_new_events": 5, "anomaly_actions": 5}
ACTIVE = ("QUEUED", "NOT_STARTED", "STARTING", "STARTED")


def dcicd(env: dict, *args: str) -> float:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "dcicd_platform.cli", *args], env=env, capture_output=True, text=True
    )
    if done.returncode:
        sys.exit(f"dcicd {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return time.monotonic() - started


def sensor_ticks(instance, name: str) -> float:
    """The time of the sensor's last completed tick (0: none yet)."""
    for state in instance.all_instigator_state():
        if state.name == name and state.instigator_data is not None:
            return state.instigator_data.last_tick_timestamp or 0.0
    return 0.0


def active_runs(instance) -> list:
    import dagster as dg

    statuses = [dg.DagsterRunStatus[s] for s in ACTIVE]
    return instance.get_run_records(dg.RunsFilter(statuses=statuses))


def settle(instance, quiet_s: float = 15, timeout_s: float = 900) -> float:
    """Wait until no run is queued or running for quiet_s seconds; returns the time waited."""
    started = time.monotonic()
    quiet_since = None
    while time.monotonic() - started < timeout_s:
        if active_runs(instance):
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= quiet_s:
            return time.monotonic() - started
        time.sleep(1)
    sys.exit("the daemon did not settle: runs still active")


def runs_since(instance, after: float) -> list:
    import dagster as dg

    created = datetime.fromtimestamp(after, UTC)
    records = instance.get_run_records(dg.RunsFilter(created_after=created))
    return sorted(records, key=lambda r: r.create_timestamp.timestamp())


def first(records, job: str, after: float, tag: tuple[str, str] | None = None):
    """The first run of `job` created after `after` (and carrying the tag)."""
    for record in records:
        run = record.dagster_run
        if run.job_name != job or record.create_timestamp.timestamp() < after:
            continue
        if tag and run.tags.get(tag[0]) != tag[1]:
            continue
        return record
    return None


def materialized_at(instance, run_id: str, key: list[str]) -> float | None:
    """When the run materialized the asset (the moment the sensors can see it)."""
    import dagster as dg

    for record in instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
    ).records:
        event = record.event_log_entry.dagster_event
        if event.asset_key == dg.AssetKey(key):
            return record.event_log_entry.timestamp
    return None


def stages(instance, records, landed_at: float, requested_at: float, landing_name: str) -> dict:
    """Where the time went, in seconds, from the file landing to the rollback request; each
    stage starts where the one before ends: the landing sensor's wait; the ingestion run queued
    and launched, then loading until raw/events is materialized; the watch trigger's wait; the
    watch run queued and launched, then working until ml/anomalies is materialized (the watch
    whose anomalies the rollback acted on: a scheduled one may have been running already); the
    anomaly sensor's wait; the rollback run queued and launched, then until its request."""
    ingest = first(records, "ingest_landing_file", landed_at, ("dcicd/landing_file", landing_name))
    loaded = ingest and materialized_at(instance, ingest.dagster_run.run_id, ["raw", "events"])
    if not loaded:
        return {}
    rollback = first(records, "rollback", loaded)
    if rollback is None or rollback.start_time is None:
        return {}
    asked = rollback.create_timestamp.timestamp()
    found = [
        (at, record)
        for record in records
        if record.dagster_run.job_name == "watch"
        and (at := materialized_at(instance, record.dagster_run.run_id, ["ml", "anomalies"]))
        and loaded < at < asked
    ]
    if not found:
        return {}
    judged, watch = max(found, key=lambda pair: pair[0])
    created = [r.create_timestamp.timestamp() for r in (ingest, watch, rollback)]
    return {
        "landing sensor wait": created[0] - landed_at,
        "ingest: queue + launch": ingest.start_time - created[0],
        "ingest: until loaded": loaded - ingest.start_time,
        "watch trigger wait": created[1] - loaded,
        "watch: queue + launch": watch.start_time - created[1],
        "watch: until anomalies": judged - watch.start_time,
        "anomaly sensor wait": asked - judged,
        "rollback: queue + launch": rollback.start_time - asked,
        "rollback: until the request": requested_at - rollback.start_time,
        "watch started by": watch.dagster_run.tags.get("dagster/sensor_name")
        or watch.dagster_run.tags.get("dagster/schedule_name", "?"),
    }


def trial_events(service: str, n: int, now: datetime) -> tuple[list[dict], str]:
    """The same samples every trial (one seed), so each trial's deployment is judged alike."""
    rng = random.Random(11)
    repo = f"acme/{service}"
    bad = f"{n + 1:x}" * 40
    events = deployment_with_health(
        repo, service, "a" * 40, now - timedelta(hours=2), 9_000_001 + 2 * n, False, rng, now
    )
    events += deployment_with_health(
        repo, service, bad[:40], now - timedelta(minutes=21), 9_000_002 + 2 * n, True, rng, now
    )
    return events, bad[:40]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the home (and daemon log)")
    args = parser.parse_args()
    hook = RecordingServer()
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(tempfile.mkdtemp(prefix="ttr-")) if args.keep else Path(scratch)
        print(f"work in {work}")
        config = work / "dcicd.yaml"
        config.write_text(
            demo_config_yaml().replace("mode: shadow", "mode: live")
            + f"  rollback:\n    kind: webhook\n    webhook_url: {hook.url}/rollback\n"
            + f"    github_api_url: {hook.url}/github\n"
        )
        home = Home(work / "home")
        env = os.environ | {
            "DCICD_HOME": str(home.root),
            "DCICD_CONFIG": str(config),
            "DAGSTER_HOME": str(home.dagster_home),
            "PYTHONPATH": str(ROOT),
        }
        for secret in ("DCICD_SLACK_WEBHOOK_URL", "DCICD_PAGERDUTY_ROUTING_KEY"):
            env.pop(secret, None)
        home.prepare()
        end = datetime.now(UTC) - timedelta(hours=3)
        files = generate_organisation(work / "exports", seed=7, days=90, end=end)
        print(f"setup: the sample organisation, 90 days to {end:%Y-%m-%d %H:%M}")
        print(f"  ingest {dcicd(env, 'ingest', *map(str, files)):.1f} s,", end=" ", flush=True)
        print(f"refresh {dcicd(env, 'refresh'):.1f} s", flush=True)

        os.environ["DAGSTER_HOME"] = str(home.dagster_home)
        import dagster as dg

        log = (work / "daemon.log").open("w")
        daemon = subprocess.Popen(
            [str(Path(sys.executable).parent / "dagster-daemon"), "run", "-w", "workspace.yaml"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        results = []
        # Stopped (Ctrl-C, kill): the daemon and its runs stop too.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit("stopped"))
        try:
            with dg.DagsterInstance.get() as instance:
                while not sensor_ticks(instance, "landing_files"):
                    if daemon.poll() is not None:
                        sys.exit(f"dagster-daemon exited: see {work / 'daemon.log'}")
                    time.sleep(1)
                waited = settle(instance)
                print(f"  the daemon settled {waited:.0f} s after its first landing tick")
                for n, service in enumerate(SERVICES[: args.trials]):
                    results.append(one_trial(instance, home, hook, work, service, n))
                    settle(instance, quiet_s=10)
        finally:
            os.killpg(daemon.pid, signal.SIGTERM)
            try:
                daemon.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(daemon.pid, signal.SIGKILL)
            log.close()
    hook.close()
    report(results)


def one_trial(instance, home: Home, hook, work: Path, service: str, n: int) -> dict:
    events, bad = trial_events(service, n, datetime.now(UTC))
    staged = write_envelopes(work / "staging" / f"trial-{n}-{service}.ndjson", events)
    # Land right after a landing sensor tick: the file waits a whole interval to be seen.
    last = sensor_ticks(instance, "landing_files")
    while sensor_ticks(instance, "landing_files") == last:
        time.sleep(0.05)
    target = home.landing / staged.name
    landed_wall, landed = time.time(), time.monotonic()
    os.replace(staged, target)
    deadline = landed + 600
    request = None
    while request is None and time.monotonic() < deadline:
        found = [
            r for r in hook.requests if r["path"] == "/rollback" and r["body"].get("bad_sha") == bad
        ]
        request = found[0] if found else None
        time.sleep(0.1)
    if request is None:
        diagnose(instance, home, service, landed_wall)
        sys.exit(f"trial {n + 1} ({service}): no rollback request within 10 minutes")
    latency = request["at"] - landed
    time.sleep(2)  # the rollback run's end is recorded
    records = runs_since(instance, landed_wall - 1)
    parts = stages(instance, records, landed_wall, landed_wall + latency, target.name)
    requested_wall = landed_wall + latency
    watches = [
        r
        for r in runs_since(instance, landed_wall - 600)
        if r.dagster_run.job_name == "watch"
        and r.start_time is not None
        and r.start_time < requested_wall
        and (r.end_time is None or r.end_time > landed_wall)
    ]
    others = sorted(
        {r.dagster_run.job_name for r in records}
        - {"ingest_landing_file", "watch", "rollback", "alert"}
    )
    print(f"trial {n + 1} ({service}): samples landed -> rollback request {latency:.1f} s")
    return {
        "service": service,
        "latency": latency,
        "stages": parts,
        "others": others,
        "watches": len(watches),
    }


def diagnose(instance, home: Home, service: str, since: float) -> None:
    """What happened instead: the runs since the file landed, the service's anomalies and the
    automation's decisions about it."""
    import duckdb

    for record in runs_since(instance, since - 1):
        run = record.dagster_run
        print(f"  run {run.job_name} {run.status.value} {run.run_id[:8]} {dict(run.tags)}")
    with duckdb.connect(str(home.warehouse), read_only=True) as conn:
        for row in conn.execute(
            "SELECT anomaly_key, kind, severity, detected_at, cleared_at, explanation"
            " FROM ml.anomalies WHERE service = ? ORDER BY detected_at DESC LIMIT 5",
            [service],
        ).fetchall():
            print("  anomaly", row)
        for row in conn.execute(
            "SELECT action_id, decision, reason FROM ops.actions WHERE service = ?"
            " ORDER BY requested_at DESC LIMIT 5",
            [service],
        ).fetchall():
            print("  action", row)


def report(results: list[dict]) -> None:
    print()
    names = [k for k in results[0]["stages"] if k != "watch started by"]
    print(f"{'stage (s)':32s}" + "".join(f"{r['service'][:14]:>16s}" for r in results))
    for name in names:
        print(
            f"{name:32s}" + "".join(f"{r['stages'].get(name, float('nan')):16.1f}" for r in results)
        )
    print(f"{'total':32s}" + "".join(f"{r['latency']:16.1f}" for r in results))
    by = {"watch_on_new_events": "new samples", "watch_every_5_minutes": "schedule"}
    print(
        f"{'watch started by':32s}"
        + "".join(f"{by.get(r['stages'].get('watch started by'), '?'):>16s}" for r in results)
    )
    print(f"{'watch runs meanwhile':32s}" + "".join(f"{r['watches']:16d}" for r in results))
    print(
        f"{'other runs meanwhile':32s}"
        + "".join(f"{','.join(r['others']) or '-':>16s}" for r in results)
    )
    worst = max(r["latency"] for r in results)
    alone = [r for r in results if r["watches"] == 1] or results

    def worst_of(name: str) -> float:
        return max(r["stages"].get(name, 0) for r in alone)

    work = sum(worst_of(n) for n in names if "wait" not in n and "queue" not in n)
    launch = sum(worst_of(n) for n in names if "queue" in n)
    waits = sum(i + LOOP_S for i in SENSOR_INTERVAL_S.values())
    bound = work + launch + waits + 3 * DEQUEUE_S
    watch = worst_of("watch: until anomalies")
    print()
    print(f"worst observed over {len(results)} trials: {worst:.1f} s ({worst / 60:.2f} min)")
    print(
        f"bound: the runs' worst work {work:.1f} s + their worst queue and launch {launch:.1f} s"
        f" (trials whose watch ran alone) + every sensor wait at its longest {waits} s + a whole"
        f" dequeue interval per run {3 * DEQUEUE_S} s = {bound:.1f} s ({bound / 60:.2f} min);"
        f" with a scheduled watch started just before the samples were loaded (the two share"
        f" the warehouse's one writer slot) one watch more, {watch:.1f} s:"
        f" {bound + watch:.1f} s ({(bound + watch) / 60:.2f} min); goal under 2 min"
    )


if __name__ == "__main__":
    main()
