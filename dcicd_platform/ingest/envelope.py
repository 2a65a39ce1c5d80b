"""The landing envelope of CONTRACTS.md §2: one JSON object per line around a provider payload."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

SOURCES = ("github", "gitlab", "pagerduty", "metrics")
FIELDS = ("delivery_id", "source", "event_type", "received_at", "payload")


def rfc3339(moment: datetime) -> str:
    """A UTC time as RFC 3339 with a Z, the envelope's time format."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def make_envelope(
    delivery_id: str,
    source: str,
    event_type: str,
    payload: dict[str, Any],
    received_at: datetime | None = None,
) -> dict[str, Any]:
    """An envelope for a delivery; refuses what ingestion would quarantine."""
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; expected one of {', '.join(SOURCES)}")
    if not delivery_id or not event_type:
        raise ValueError("an envelope needs a delivery_id and an event_type")
    return {
        "delivery_id": delivery_id,
        "source": source,
        "event_type": event_type,
        "received_at": rfc3339(received_at or datetime.now(UTC)),
        "payload": payload,
    }


def envelope_line(envelope: dict[str, Any]) -> bytes:
    """One NDJSON line (with its newline) for an envelope."""
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
