"""Receiver throughput: signed, durable (fsync'd) webhook deliveries per second, and latency.

Starts the receiver as `dcicd serve` does, then drives it from client processes holding 32
keep-alive connections in all, each sending signed 5 KB GitHub `workflow_job` deliveries for a
fixed time. Runs twice: durable (every answer after the fsync covering its line), and the same
app answering without writing anything, the floor set by the HTTP stack. Prints accepted
requests/s, P50/P99 latency and the ratio of the two. Clients and server share the machine.

    python benchmarks/receiver.py [--seconds 10] [--clients 32] [--client-processes 2]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.receiver_client import SECRETS, free_port, run_load  # noqa: E402

SERVER = """
import sys
from pathlib import Path
from dcicd_platform.receiver.server import serve
serve(Path(sys.argv[1]), port=int(sys.argv[2]), durable=sys.argv[3] == "durable")
"""


def payload_5kb() -> bytes:
    """A real workflow_job delivery (compact JSON) trimmed of its API URLs, padded to 5 KB."""
    fixture = ROOT / "tests/fixtures/github/workflow_job/queued.payload.json"
    payload = json.loads(fixture.read_bytes())
    compact = {"separators": (",", ":")}
    for part in ("repository", "sender"):
        for key in [k for k in payload.get(part, {}) if k.endswith("_url")]:
            if len(json.dumps(payload, **compact)) <= 5 * 1024:
                break
            del payload[part][key]
    steps = payload["workflow_job"].setdefault("steps", [])
    while len(json.dumps(payload, **compact)) < 5 * 1024 - 150:
        n = len(steps) + 1
        steps.append({"name": f"Run step {n}", "status": "queued", "number": n})
    return json.dumps(payload, **compact).encode()


def _client(args: tuple[int, bytes, int, float]) -> tuple[int, list[float], int]:
    port, body, clients, seconds = args
    result = run_load(port, [body], clients=clients, per_client=10**9, stop_after=seconds)
    answered = len(result.latencies_s)
    return len(result.accepted), result.latencies_s, result.errors + answered - len(result.accepted)


def measure(mode: str, seconds: float, clients: int, processes: int) -> dict:
    body = payload_5kb()
    with tempfile.TemporaryDirectory(prefix="dcicd-receiver-") as work:
        landing = Path(work) / "landing"
        port = free_port()
        env = os.environ | SECRETS
        with (Path(work) / "access.log").open("wb") as access_log:
            server = subprocess.Popen(
                [sys.executable, "-c", SERVER, str(landing), str(port), mode],
                env=env,
                stderr=access_log,
            )
        try:
            _wait_ready(port)
            _client((port, body, 4, 1.0))  # warm up
            per = [clients // processes + (i < clients % processes) for i in range(processes)]
            with multiprocessing.Pool(processes) as pool:
                started = time.perf_counter()
                results = pool.map(_client, [(port, body, n, seconds) for n in per])
                elapsed = time.perf_counter() - started
        finally:
            server.terminate()
            server.wait(30)
        accepted = sum(r[0] for r in results)
        latencies = sorted(x for r in results for x in r[1])
        written = (
            sum(p.stat().st_size for p in landing.glob("*.ndjson")) if mode == "durable" else 0
        )
    return {
        "mode": mode,
        "accepted": accepted,
        "per_second": accepted / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
        "errors": sum(r[2] for r in results),
        "bytes": written,
        "body_bytes": len(body),
    }


def _wait_ready(port: int) -> None:
    import http.client

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/healthz")
            conn.getresponse().read()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("the receiver did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--client-processes", type=int, default=2)
    args = parser.parse_args()
    rows = [
        measure(m, args.seconds, args.clients, args.client_processes) for m in ("floor", "durable")
    ]
    floor, durable = rows
    print(
        f"{args.clients} clients in {args.client_processes} processes, {args.seconds:.0f} s each,"
        f" {durable['body_bytes']:,}-byte signed bodies, on {os.cpu_count()} cores"
    )
    for row in rows:
        label = (
            "answer without writing (floor)"
            if row["mode"] == "floor"
            else "signed + fsync'd (durable)"
        )
        print(
            f"  {label:32s} {row['per_second']:8,.0f} req/s  P50 {row['p50_ms']:5.1f} ms"
            f"  P99 {row['p99_ms']:5.1f} ms  errors {row['errors']}"
        )
    print(
        f"  durable / floor: {durable['per_second'] / floor['per_second']:.2f};"
        f" landed {durable['bytes'] / 1e6:,.1f} MB for {durable['accepted']:,} deliveries"
    )
    print(
        "  goal: >= 1,000 durable req/s, P99 < 50 ms:",
        "met" if durable["per_second"] >= 1000 and durable["p99_ms"] < 50 else "NOT met",
    )


if __name__ == "__main__":
    main()
