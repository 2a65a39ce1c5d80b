"""A real `dcicd serve` process on 127.0.0.1 and a keep-alive client for it (tests, benchmark)."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

SECRETS = {
    "DCICD_GITHUB_WEBHOOK_SECRET": "gh-test-secret",
    "DCICD_GITLAB_WEBHOOK_TOKEN": "gl-test-token",
    "DCICD_PAGERDUTY_WEBHOOK_SECRET": "pd-test-secret",
    "DCICD_HEALTH_TOKEN": "health-test-token",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Receiver:
    """A `dcicd serve` process; `stop()` asks it to finish gracefully, `kill()` does not."""

    home: Path
    port: int
    process: subprocess.Popen
    log_path: Path

    @property
    def landing(self) -> Path:
        return self.home / "landing"

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def stop(self, timeout: float = 30) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def log(self) -> str:
        return self.log_path.read_text()


def start_receiver(
    home: Path, *args: str, secrets: dict[str, str] | None = None, port: int | None = None
) -> Receiver:
    port = port or free_port()
    env = {k: v for k, v in os.environ.items() if k not in SECRETS}
    env |= {"DCICD_HOME": str(home)} | (SECRETS if secrets is None else secrets)
    home.mkdir(parents=True, exist_ok=True)
    log_path = home / f"receiver-{port}.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "dcicd_platform.cli", "serve", "--port", str(port), *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log_path.open("ab"),
    )
    receiver = Receiver(home, port, process, log_path)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the receiver exited: {receiver.log()}")
        try:
            conn = receiver.connection()
            conn.request("GET", "/healthz")
            conn.getresponse().read()
            conn.close()
            return receiver
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("the receiver did not start within 30 s")


def github_request(
    body: bytes,
    event: str,
    secret: str = SECRETS["DCICD_GITHUB_WEBHOOK_SECRET"],
    delivery: str | None = None,
) -> tuple[str, bytes, dict[str, str]]:
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-Hub-Signature-256": signature,
    }
    return "/webhooks/github", body, headers


def send(conn: http.client.HTTPConnection, request: tuple[str, bytes, dict]) -> tuple[int, dict]:
    path, body, headers = request
    conn.request("POST", path, body=body, headers=headers)
    response = conn.getresponse()
    data = response.read()
    try:
        return response.status, json.loads(data)
    except json.JSONDecodeError:
        return response.status, {}


@dataclass
class LoadResult:
    accepted: list[str] = field(default_factory=list)
    latencies_s: list[float] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0


def run_load(
    port: int, bodies: list[bytes], clients: int, per_client: int, stop_after: float | None = None
) -> LoadResult:
    """clients threads, each sending per_client signed GitHub deliveries on one keep-alive
    connection; records the delivery id of every 202. A failed connection ends that client."""
    result = LoadResult()
    lock = threading.Lock()
    started = time.perf_counter()

    def client(n: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        accepted, latencies = [], []
        try:
            for i in range(per_client):
                if stop_after is not None and time.perf_counter() - started > stop_after:
                    break
                delivery = f"load-{n}-{i}-{uuid.uuid4().hex[:8]}"
                request = github_request(bodies[i % len(bodies)], "workflow_job", delivery=delivery)
                t = time.perf_counter()
                status, answer = send(conn, request)
                latencies.append(time.perf_counter() - t)
                if status == 202:
                    assert answer["accepted"] == delivery
                    accepted.append(delivery)
        except (OSError, http.client.HTTPException):
            with lock:
                result.errors += 1
        finally:
            conn.close()
            with lock:
                result.accepted += accepted
                result.latencies_s += latencies

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result.seconds = time.perf_counter() - started
    return result


def landed_lines(landing: Path, include_parts: bool = False) -> list[bytes]:
    pattern = "*.ndjson*" if include_parts else "*.ndjson"
    lines = []
    for path in sorted(landing.glob(pattern)):
        lines += path.read_bytes().splitlines(keepends=True)
    return lines
