"""Promotion gate latency over HTTP: `POST /gate` on the demo organisation.

Generates the demo organisation (or takes a home that has one, --home), starts the receiver as
`dcicd serve` does with DCICD_GATE_TOKEN set, then asks the gate about the shas of the latest
production deployments and of recent CI runs: one client on a keep-alive connection (the way a
CI step asks), then 4 clients at once. Prints P50/P95/P99 of the answer's latency, and, for
comparison, the same verdicts read the way `dcicd gate` reads (a read-only connection opened
per question). Goal: P95 under 50 ms over HTTP.

    python benchmarks/gate.py [--home PATH] [--requests 1000]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.receiver_client import start_receiver  # noqa: E402

TOKEN = "bench-gate-token"


def demo_home(work: Path) -> Path:
    home = work / "home"
    env = os.environ | {"DCICD_HOME": str(home), "DCICD_CONFIG": str(work / "dcicd.yaml")}
    print("generating the demo organisation (a few minutes) ...", flush=True)
    subprocess.run(
        [sys.executable, "-m", "dcicd_platform.cli", "demo"],
        cwd=work,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return home


def questions(home: Path, n: int) -> list[dict]:
    """The latest production deployment of every service, and the shas of recent runs."""
    conn = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        rows = conn.execute(
            "SELECT service, sha, environment FROM core.deployments"
            " WHERE is_production AND status = 'success'"
            " QUALIFY row_number() OVER (PARTITION BY service ORDER BY deployed_at DESC) = 1"
        ).fetchall()
        rows += conn.execute(
            "SELECT service, sha, 'production' FROM core.pipeline_runs"
            " WHERE service IS NOT NULL ORDER BY started_at DESC LIMIT 200"
        ).fetchall()
    finally:
        conn.close()
    asked = [{"service": s, "sha": sha, "environment": e} for s, sha, e in rows]
    return [asked[i % len(asked)] for i in range(n)]


def ask_all(port: int, asked: list[dict]) -> list[float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    latencies = []
    try:
        for body in asked:
            started = time.perf_counter()
            conn.request("POST", "/gate", body=json.dumps(body), headers=headers)
            response = conn.getresponse()
            answer = json.loads(response.read())
            latencies.append(time.perf_counter() - started)
            assert response.status == 200 and answer["verdict"] in ("go", "no-go", "undecided")
    finally:
        conn.close()
    return latencies


def percentiles(latencies: list[float]) -> str:
    cuts = statistics.quantiles([x * 1000 for x in latencies], n=100)
    return f"P50 {cuts[49]:.1f} ms, P95 {cuts[94]:.1f} ms, P99 {cuts[98]:.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--home", type=Path, help="a DCICD_HOME holding the demo organisation")
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dcicd-gate-bench-") as tmp:
        home = args.home.absolute() if args.home else demo_home(Path(tmp))
        asked = questions(home, args.requests)
        receiver = start_receiver(home, secrets={"DCICD_GATE_TOKEN": TOKEN})
        try:
            ask_all(receiver.port, asked[:50])  # warm-up: the first copy, the first plans
            one = ask_all(receiver.port, asked)
            print(f"1 client, {len(one)} gates over HTTP: {percentiles(one)}")
            results: list[list[float]] = [[] for _ in range(4)]
            threads = [
                threading.Thread(
                    target=lambda i=i: results[i].extend(ask_all(receiver.port, asked[i::4]))
                )
                for i in range(4)
            ]
            t0 = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            together = [x for r in results for x in r]
            rate = len(together) / (time.perf_counter() - t0)
            print(f"4 clients, {len(together)} gates over HTTP: {percentiles(together)};"
                  f" {rate:.0f} gates/s")  # fmt: skip
        finally:
            receiver.stop()
        from dcicd_platform.config import load_config
        from dcicd_platform.gate.ask import read

        config = load_config(home.parent / "dcicd.yaml" if args.home is None else None)
        direct = []
        from datetime import UTC, datetime

        for body in asked[:200]:
            started = time.perf_counter()
            read(home / "warehouse.duckdb", body["service"], body["sha"], body["environment"],
                 datetime.now(UTC), config)  # fmt: skip
            direct.append(time.perf_counter() - started)
        print(f"for comparison, a read-only connection per gate (dcicd gate's way), 200 gates:"
              f" {percentiles(direct)}")  # fmt: skip
        from dcicd_platform.gate.cache import index_of

        loads = []
        for _ in range(10):
            started = time.perf_counter()
            index_of(home / "warehouse.duckdb")
            loads.append(time.perf_counter() - started)
        median, worst = statistics.median(loads) * 1000, max(loads) * 1000
        print(f"the receiver's index, read again after the warehouse changed (10 reads):"
              f" median {median:.0f} ms, worst {worst:.0f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
