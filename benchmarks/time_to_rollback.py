"""From a bad deployment's health samples landing to the rollback request, on a warehouse
holding the sample organisation's 90 days.

Setup (not timed): the organisation ending now, loaded and refreshed once, automation `live`
with a webhook rollback backend pointed at a local recording server. Timed, each step as a
user or the daemon runs it (a fresh `dcicd` process each): `dcicd ingest` of a file with a
good deployment two hours ago and a bad one 21 minutes ago (its health samples up to a minute
ago); `dcicd refresh --job watch` (what the `watch_every_5_minutes` schedule runs); `dcicd act`
(one evaluation of the `anomaly_actions` sensor and the jobs it asks for, the rollback first).
The clock stops when the recording server has the request. In operation the daemon adds its
waits: the landing sensor's 30 s, up to 5 minutes for the watch schedule, the anomaly sensor's
60 s.

    python benchmarks/time_to_rollback.py
"""

from __future__ import annotations

import os
import random
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
from tests.helpers import write_envelopes  # noqa: E402
from tests.recording_server import RecordingServer  # noqa: E402

SERVICE, REPO = "notifications", "acme/notifications"  # a service without approval


def dcicd(env: dict, *args: str) -> float:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "dcicd_platform.cli", *args],
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode:
        sys.exit(f"dcicd {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return time.monotonic() - started


def main() -> None:
    hook = RecordingServer()
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        config = work / "dcicd.yaml"
        config.write_text(
            demo_config_yaml().replace("mode: shadow", "mode: live")
            + f"  rollback:\n    kind: webhook\n    webhook_url: {hook.url}/rollback\n"
        )
        env = os.environ | {"DCICD_HOME": str(work / "home"), "DCICD_CONFIG": str(config)}
        env.pop("DAGSTER_HOME", None)
        now = datetime.now(UTC)
        files = generate_organisation(
            work / "exports", seed=7, days=90, end=now - timedelta(hours=3)
        )
        print(
            f"setup: the sample organisation, 90 days to {now - timedelta(hours=3):%Y-%m-%d %H:%M}"
        )
        print(f"  ingest {dcicd(env, 'ingest', *map(str, files)):.1f} s,", end=" ", flush=True)
        print(f"refresh {dcicd(env, 'refresh'):.1f} s", flush=True)

        rng = random.Random(11)
        now = datetime.now(UTC)
        events = deployment_with_health(
            REPO, SERVICE, "a" * 40, now - timedelta(hours=2), 9_000_001, False, rng, now
        )
        events += deployment_with_health(
            REPO, SERVICE, "b" * 40, now - timedelta(minutes=21), 9_000_002, True, rng, now
        )
        landed = write_envelopes(work / "new" / "deploys.ndjson", events)
        started = time.monotonic()
        steps = [
            ("dcicd ingest", dcicd(env, "ingest", str(landed))),
            ("dcicd refresh --job watch", dcicd(env, "refresh", "--job", "watch")),
            ("dcicd act", dcicd(env, "act")),
        ]
        total = time.monotonic() - started
    hook.close()
    rollbacks = [r for r in hook.requests if r["path"] == "/rollback"]
    if len(rollbacks) != 1 or rollbacks[0]["body"].get("bad_sha") != "b" * 40:
        sys.exit(f"expected one rollback request of the bad sha, got {hook.requests}")
    for name, seconds in steps:
        print(f"{name:28s} {seconds:6.1f} s")
    requested = rollbacks[0]["at"] - started  # the rollback goes first; other actions follow
    worst = requested + 30 + 300 + 60
    print(
        f"samples landed -> rollback request: {requested:.1f} s of work ({total:.1f} s with every"
        f" other action of that sensor tick); with the daemon's waits (30 s + 5 min + 60 s) at"
        f" worst {worst / 60:.1f} min, inside the 30-minute window (ratio to the window:"
        f" {worst / 1800:.2f})"
    )


if __name__ == "__main__":
    main()
