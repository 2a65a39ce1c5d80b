"""A fake PagerDuty REST API (paths as on api.pagerduty.com): `GET /incidents`,
`GET /incidents/{id}` and `GET /incidents/{id}/log_entries`.

As PagerDuty documents it: classic offset pagination (`limit` 25 by default, at most 100,
`offset`, `total=true` to get a count, else `total` is null; answers `{incidents, limit, offset,
more, total}`); `since`/`until` select incidents by creation time, at most 6 months apart (a
wider range gets 400 here, which a client keeping to the documented limit never sees); with
neither, the last 30 days (`clock()` is "now"); `date_range=all` lifts the window;
`service_ids[]`, `statuses[]`, `urgencies[]`, `incident_key`, `sort_by` (`created_at:asc`...).
Tokens as `Authorization: Token token=...` (or an OAuth `Bearer`). Rate limit: 429
`{"error": {"message": "Rate Limit Exceeded", "code": 2020}}` with `ratelimit-reset` (seconds
left), and `ratelimit-limit/remaining/reset` on every answer.

Log entries are kept per incident in the API's order (newest first). An incident stored without
them gets plausible ones built from its own fields (`synthesized_log_entries`): the recordings
carry real ones, a test's own incident may not.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from typing import Any

from tests.fake_apis.server import Answer, FakeApi, Query, RequestRecord
from tests.fake_apis.times import epoch

API = "https://api.pagerduty.com"
SIX_MONTHS_S = 184 * 86400


def _entry_id(incident_id: str, kind: str) -> str:
    digest = hashlib.sha256(f"{incident_id}:{kind}".encode()).hexdigest().upper()
    return "R" + digest[:25]


def synthesized_log_entries(incident: dict) -> list[dict]:
    """Plausible log entries (newest first) for an incident that comes without its own:
    a `trigger_log_entry` at created_at; an `acknowledge_log_entry` at each acknowledgement's
    `at` (or at last_status_change_at when acknowledged without one); a `resolve_log_entry` at
    last_status_change_at when resolved. Made up from the incident's fields, with stable ids."""
    reference = {
        "id": incident["id"],
        "type": "incident_reference",
        "summary": incident.get("summary"),
        "self": f"{API}/incidents/{incident['id']}",
        "html_url": incident.get("html_url"),
    }
    service = incident.get("service")

    def entry(kind: str, at: str, summary: str, n: int = 0) -> dict:
        entry_id = _entry_id(incident["id"], f"{kind}:{n}")
        return {
            "id": entry_id,
            "type": kind,
            "summary": summary,
            "self": f"{API}/log_entries/{entry_id}",
            "html_url": None,
            "created_at": at,
            "agent": service,
            "channel": {"type": "auto"},
            "incident": reference,
            "service": service,
            "teams": [],
        }

    entries = [entry("trigger_log_entry", incident["created_at"], "Triggered through the API.")]
    acknowledgements = incident.get("acknowledgements") or []
    for n, ack in enumerate(acknowledgements):
        entries.append(entry("acknowledge_log_entry", ack["at"], "Acknowledged.", n))
    status, changed = incident.get("status"), incident.get("last_status_change_at")
    if status == "acknowledged" and not acknowledgements and changed:
        entries.append(entry("acknowledge_log_entry", changed, "Acknowledged."))
    if status == "resolved" and changed:
        entries.append(entry("resolve_log_entry", changed, "Resolved."))
    entries.sort(key=lambda e: epoch(e["created_at"]), reverse=True)
    return entries


class FakePagerDuty(FakeApi):
    """The fake PagerDuty API. `incidents[id]` are incident objects; `log_entries[id]` theirs,
    newest first; `clock` is what "now" means for the default 30-day window."""

    provider = "pagerduty"
    default_rate_limit = 960
    default_rate_window_s = 60.0
    secondary_status = 429

    def __init__(self, *, token: str | None = None, latency_s: float = 0.0) -> None:
        super().__init__(token=token, latency_s=latency_s)
        self.incidents: dict[str, dict] = {}
        self.log_entries: dict[str, list[dict]] = {}
        self.clock: Callable[[], float] = time.time

    # ---- data -----------------------------------------------------------------------------------
    def put_incident(self, incident: dict, log_entries: list[dict] | None = None) -> dict:
        """Add or replace an incident; its log entries newest first (synthesized when None)."""
        with self.lock:
            self.incidents[incident["id"]] = incident
            self.log_entries[incident["id"]] = (
                list(log_entries) if log_entries is not None else synthesized_log_entries(incident)
            )
        return incident

    def update_incident(self, incident_id: str, **fields: Any) -> dict:
        with self.lock:
            self.incidents[incident_id].update(fields)
        return self.incidents[incident_id]

    def add_log_entry(self, incident_id: str, entry: dict) -> dict:
        """A new log entry, the newest of its incident."""
        with self.lock:
            self.log_entries.setdefault(incident_id, []).insert(0, entry)
        return entry

    # ---- provider conventions -------------------------------------------------------------------
    def authorized(self, headers: dict[str, str]) -> bool:
        value = headers.get("authorization", "").strip()
        if value.startswith("Token token="):
            credential = value.removeprefix("Token token=")
        elif value.lower().startswith("bearer "):
            credential = value.split()[-1]
        else:
            return False
        return bool(credential) and (self.token is None or credential == self.token)

    def unauthorized(self) -> Answer:
        return Answer(401, {"error": {"message": "Authentication failed", "code": 2006}})

    def not_found(self) -> Answer:
        return Answer(404, {"error": {"message": "Not Found", "code": 2100}})

    def _seconds_left(self) -> int:
        return max(0, math.ceil((self.rate_reset or 0) - time.time()))

    def rate_headers(self) -> dict[str, str]:
        return {
            "ratelimit-limit": str(self.rate_limit),
            "ratelimit-remaining": str(max(self.rate_remaining or 0, 0)),
            "ratelimit-reset": str(self._seconds_left()),
        }

    def rate_limited(self) -> Answer:
        return Answer(429, {"error": {"message": "Rate Limit Exceeded", "code": 2020}})

    def secondary_limited(self) -> Answer:
        return Answer(
            429,
            {"error": {"message": "Rate Limit Exceeded", "code": 2020}},
            {"Retry-After": str(self.secondary_retry_after_s)},
        )

    def _invalid(self, *errors: str) -> Answer:
        return Answer(
            400, {"error": {"message": "Invalid Input Provided", "code": 2001, "errors": errors}}
        )

    # ---- routing --------------------------------------------------------------------------------
    def route(self, segments: list[str], query: Query, record: RequestRecord) -> Answer:
        match segments:
            case ["incidents"]:
                return self._incidents(query)
            case ["incidents", incident_id]:
                found = self.incidents.get(incident_id)
                return Answer(200, {"incident": found}) if found else self.not_found()
            case ["incidents", incident_id, "log_entries"]:
                if incident_id not in self.incidents:
                    return self.not_found()
                return self._log_entries(incident_id, query)
        return self.not_found()

    def _paged(self, key: str, items: list[dict], query: Query) -> Answer:
        try:
            limit = min(max(int(query.get("limit") or 25), 1), 100)
            offset = max(int(query.get("offset") or 0), 0)
        except ValueError:
            return self._invalid("limit and offset must be integers")
        chunk = items[offset : offset + limit]
        total = len(items) if (query.get("total") or "").lower() == "true" else None
        body = {
            key: chunk,
            "limit": limit,
            "offset": offset,
            "more": offset + len(chunk) < len(items),
            "total": total,
        }
        return Answer(200, body)

    def _incidents(self, query: Query) -> Answer:
        try:
            since = epoch(query.get("since")) if query.get("since") else None
            until = epoch(query.get("until")) if query.get("until") else None
        except ValueError:
            return self._invalid("since and until must be ISO 8601 times")
        if query.get("date_range") != "all":
            until = until if until is not None else self.clock()
            since = since if since is not None else until - 30 * 86400
            if until - since > SIX_MONTHS_S:
                return self._invalid("Date range may not exceed 6 months")
        services = set(query.all("service_ids[]"))
        statuses = set(query.all("statuses[]"))
        urgencies = set(query.all("urgencies[]"))
        key = query.get("incident_key")
        chosen = []
        for incident in self.incidents.values():
            created = epoch(incident["created_at"])
            if (since is not None and created < since) or (until is not None and created >= until):
                continue
            if services and (incident.get("service") or {}).get("id") not in services:
                continue
            if statuses and incident.get("status") not in statuses:
                continue
            if urgencies and incident.get("urgency") not in urgencies:
                continue
            if key and incident.get("incident_key") != key:
                continue
            chosen.append(incident)
        field, _, direction = (query.get("sort_by") or "created_at:asc").partition(":")
        if field not in ("incident_number", "created_at", "resolved_at", "urgency"):
            return self._invalid(f"sort_by {field} is not supported")

        def order(incident: dict) -> tuple:
            value = incident.get(field)
            if field in ("created_at", "resolved_at"):
                return (epoch(value) if value else 0.0, incident.get("incident_number") or 0)
            return (str(value) if field == "urgency" else value or 0, 0)

        chosen.sort(key=order, reverse=direction == "desc")
        return self._paged("incidents", chosen, query)

    def _log_entries(self, incident_id: str, query: Query) -> Answer:
        try:
            since = epoch(query.get("since")) if query.get("since") else None
            until = epoch(query.get("until")) if query.get("until") else None
        except ValueError:
            return self._invalid("since and until must be ISO 8601 times")
        entries = [
            e
            for e in self.log_entries.get(incident_id, [])
            if (since is None or epoch(e["created_at"]) >= since)
            and (until is None or epoch(e["created_at"]) < until)
        ]
        return self._paged("log_entries", entries, query)
