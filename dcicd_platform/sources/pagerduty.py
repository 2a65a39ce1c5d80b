"""PagerDuty's REST API into envelopes: incidents, and each one's log entries as the V3 webhook
events of its status changes (`pagerduty_objects`).

PagerDuty lists incidents by creation time within a `since`/`until` range of at most six
months, with `offset`/`limit` pages (its "classic pagination": a `more` flag, offsets capped at
10,000). The import reads calendar-month windows (UTC); a window is read again while it holds
an incident not yet resolved or is younger than the reopening horizon, else never again. An
incident's log entries are asked only when its status or last status change moved since the
last import (`ops.import_state`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from dcicd_platform.sources.pagerduty_objects import incident_envelopes
from dcicd_platform.sources.scope_import import ScopeImport
from dcicd_platform.sources.windows import iso, month_windows, split

SOURCE = "pagerduty"
LIMIT = 100
OFFSET_CAP = 10_000  # PagerDuty's classic pagination stops at offset + limit = 10,000
# A resolved incident can still be reopened for a while; a window younger than this is read
# again even when everything in it was resolved.
REOPEN_HORIZON = timedelta(days=35)
ALL_SERVICES = "*"


def token_headers(token: str) -> dict[str, str]:
    """PagerDuty's REST API v2 headers (PagerDuty Developer Docs, "Authentication")."""
    return {
        "Authorization": f"Token token={token}",
        "Accept": "application/vnd.pagerduty+json;version=2",
    }


@dataclass
class ServiceImport(ScopeImport):
    """The incidents of one service (its id), or of every service (`*`)."""

    def run(self) -> Counter:
        for start, end in month_windows(self.since, self.now):
            self._window(start, end)
        return self.counts

    def _params(self, start: datetime, end: datetime) -> dict:
        params: dict = {
            "since": iso(start),
            "until": iso(end),
            "time_zone": "UTC",
            "sort_by": "created_at:asc",
            "limit": LIMIT,
        }
        if self.scope != ALL_SERVICES:
            params["service_ids[]"] = self.scope
        return params

    def _window(self, start: datetime, end: datetime) -> None:
        key = f"incidents created {iso(start)}..{iso(end)}"
        known = self.state.get(key)
        settled = end <= self.now - REOPEN_HORIZON
        if known and settled and known.watermark in ("resolved", "split"):
            if known.watermark == "split":
                for part in split(start, end):
                    self._window(*part)
            else:
                self.counts["incident windows settled"] += 1
            return
        first = self.client.get("/incidents", {**self._params(start, end), "total": "true"})
        total = first.data.get("total") or 0
        if total > OFFSET_CAP and end - start > timedelta(seconds=2):
            self._land([], [(key, "split", None, total)])
            for part in split(start, end):
                self._window(*part)
            return
        open_ones = 0
        for page in self._pages(start, end, first):
            envelopes: list[dict] = []
            puts: list[tuple] = []
            for incident in page:
                open_ones += incident.get("status") != "resolved"
                envelopes += self._incident(incident, puts)
            self._land(envelopes, puts)
        self._land([], [(key, "open" if open_ones else "resolved", None, total)])

    def _pages(self, start: datetime, end: datetime, first) -> Iterator[list[dict]]:
        page, offset = first, 0
        while True:
            incidents = page.data.get("incidents") or []
            yield incidents
            offset += len(incidents)
            if not page.data.get("more") or not incidents or offset + LIMIT > OFFSET_CAP:
                return
            page = self.client.get("/incidents", {**self._params(start, end), "offset": offset})

    def _incident(self, incident: dict, puts: list) -> list[dict]:
        key = f"incident {incident['id']}"
        stamp = f"{incident.get('status')}@{incident.get('last_status_change_at')}"
        known = self.state.get(key)
        self.counts["incidents"] += 1
        if known and known.watermark == stamp:
            return []
        entries = self._log_entries(incident["id"])
        envelopes = incident_envelopes(incident, entries)
        self.counts["log entries"] += len(entries)
        self.counts["incident events"] += len(envelopes)
        puts.append((key, stamp, None, len(entries)))
        return envelopes

    def _log_entries(self, incident_id: str) -> list[dict]:
        found: list[dict] = []
        offset = 0
        while True:
            page = self.client.get(
                f"/incidents/{incident_id}/log_entries",
                {"limit": LIMIT, "offset": offset, "time_zone": "UTC", "is_overview": "false"},
            )
            entries = page.data.get("log_entries") or []
            found += entries
            offset += len(entries)
            if not page.data.get("more") or not entries or offset + LIMIT > OFFSET_CAP:
                return found


import_service = ServiceImport.import_scope
