"""Deployment health samples (CONTRACTS.md §2): the whole payload is required."""

from dcicd_platform.ingest.requirements import required

SOURCE = "metrics"

EVENTS = {
    "health_sample": (
        *required("service", "environment"),
        *required("ts", kind="timestamp"),
        *required("requests", "errors", kind="integer"),
        *required("latency_p95_ms", kind="number"),
    ),
}
