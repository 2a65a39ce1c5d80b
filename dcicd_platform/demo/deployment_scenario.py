"""One production deployment and the health samples around it, as envelopes: what a test or
a benchmark lands to watch the automation judge (and roll back) a deployment now."""

import random
from datetime import datetime, timedelta

from dcicd_platform.demo import payloads as pl
from dcicd_platform.ingest.envelope import make_envelope, rfc3339


def deployment_with_health(
    repo: str,
    service: str,
    sha: str,
    deployed: datetime,
    deployment_id: int,
    bad: bool,
    rng: random.Random,
    until: datetime,
) -> list[dict]:
    """A GitHub production deployment of sha and a health sample every 5 minutes from 30
    minutes before it to 30 after (up to `until`); a bad one raises errors 6-10x and P95
    latency 1.5-2x after it."""
    status = pl.github_deployment_status(
        pl.github_repository(repo),
        deployment_id,
        deployment_id,
        sha,
        "production",
        "success",
        deployed - timedelta(minutes=3),
        deployed,
        "ana",
    )
    events = [make_envelope(f"d{deployment_id}", "github", "deployment_status", status, deployed)]
    for step in range(-6, 7):
        ts = deployed + timedelta(minutes=5 * step, seconds=1)
        if ts > until:
            break
        worse = bad and step > 0
        requests = rng.randint(2000, 6000)
        rate = 0.005 * (rng.uniform(6, 10) if worse else rng.uniform(0.8, 1.2))
        sample = {
            "service": service,
            "environment": "production",
            "ts": rfc3339(ts),
            "requests": requests,
            "errors": int(requests * rate),
            "latency_p95_ms": 200 * (rng.uniform(1.5, 2) if worse else rng.uniform(0.9, 1.1)),
        }
        events.append(
            make_envelope(f"h{deployment_id}-{step}", "metrics", "health_sample", sample, ts)
        )
    return events
