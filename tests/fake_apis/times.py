"""Timestamps as the providers write them (ISO 8601 with `Z`, an offset or fractions), as epoch
seconds for filters and sorting."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache


@cache
def epoch(value: str) -> float:
    """Epoch seconds of an ISO 8601 time; one without an offset is taken as UTC. A space where
    a `+` was (an unencoded `+` in a query string) is read as the `+`."""
    text = value.strip().replace(" ", "+")
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def epoch_or_none(value: str | None) -> float | None:
    return None if not value else epoch(value)
