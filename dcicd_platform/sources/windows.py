"""Time windows for listings GitHub filters by `created` and caps at 1,000 results.

Windows are calendar months (UTC), the first one starting at the import's first day; one that
holds 1,000 runs or more is split into days, a day into hours, an hour into halves. Aligned
windows keep their names from one import to the next, so their pages' ETags are asked again
(a `304` costs nothing) and a window wholly older than the re-run horizon is never asked again.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def iso(moment: datetime) -> str:
    """RFC 3339 in UTC with a Z, to the second: how GitHub's filters and our keys spell it."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def month_windows(since: datetime, now: datetime) -> list[tuple[datetime, datetime]]:
    """[start, end) months from since's day to the month holding now, oldest first."""
    start = since.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    windows = []
    while start <= now:
        month = start.replace(day=1)
        end = (month + timedelta(days=32)).replace(day=1)
        windows.append((start, end))
        start = end
    return windows


def split(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """Smaller aligned windows covering [start, end): days, then hours, then halves."""
    span = end - start
    step = (
        timedelta(days=1)
        if span > timedelta(days=1)
        else timedelta(hours=1)
        if span > timedelta(hours=1)
        else span / 2
    )
    if step < timedelta(seconds=2):
        return [(start, end)]  # cannot split further: read what the cap allows
    parts, at = [], start
    while at < end:
        parts.append((at, min(at + step, end)))
        at += step
    return parts


def created_filter(start: datetime, end: datetime) -> str:
    """GitHub's `created` qualifier for [start, end): both ends inclusive, so end less 1 s."""
    return f"{iso(start)}..{iso(end - timedelta(seconds=1))}"
