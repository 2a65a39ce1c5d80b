"""PagerDuty REST API incidents, with their log entries, as the V3 webhook events PagerDuty
sends about them.

A V3 webhook event tells one change of an incident (`incident.triggered`, `.acknowledged`,
`.resolved`, ...) at `occurred_at`, carrying the incident as it then was in `data`. The REST API
gives the incident as it is now and its log: one log entry per thing that happened. Each log
entry that set the incident's status becomes the event PagerDuty would have sent for it:

| log entry | event | status after it |
| --- | --- | --- |
| `trigger_log_entry` (the first) | `incident.triggered` | triggered |
| `acknowledge_log_entry` | `incident.acknowledged` | acknowledged |
| `unacknowledge_log_entry` (acknowledgement timed out) | `incident.unacknowledged` | triggered |
| `escalate_log_entry` | `incident.escalated` | triggered |
| `delegate_log_entry` | `incident.delegated` | triggered |
| `resolve_log_entry` | `incident.resolved` | resolved |

An entry that takes a resolved incident back to an open status is `incident.reopened`. Later
trigger entries of an open incident (another alert grouped into it) change nothing and are no
event; nor are notifications, assignments, notes and the like. PagerDuty counts escalations and
delegations as status changes (they clear an acknowledgement; `last_status_change_at` follows
them), so the replay ends on the incident's own `status` at its `last_status_change_at`.

`occurred_at` is the entry's `created_at`, `event.id` the entry's id, `agent` its agent; `data`
is the incident in the V3 shape with the status it had after the entry, its other fields as the
API shows them now (an import knows no earlier title or urgency). Envelopes: delivery
`import:pagerduty:<event type>:<incident id>:<log entry id>`, received at `occurred_at`.
"""

from __future__ import annotations

from datetime import datetime

from dcicd_platform.sources.envelopes import import_envelope

SOURCE = "pagerduty"

# log entry type -> (event type, status after it)
STATUS_ENTRIES = {
    "trigger_log_entry": ("incident.triggered", "triggered"),
    "acknowledge_log_entry": ("incident.acknowledged", "acknowledged"),
    "unacknowledge_log_entry": ("incident.unacknowledged", "triggered"),
    "escalate_log_entry": ("incident.escalated", "triggered"),
    "delegate_log_entry": ("incident.delegated", "triggered"),
    "resolve_log_entry": ("incident.resolved", "resolved"),
}
# Entries at the same instant happen in this order (a trigger first, a resolution last).
_ORDER = {"trigger_log_entry": 0, "resolve_log_entry": 2}


def _time(text: str, what: str) -> datetime:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        raise ValueError(f"PagerDuty {what} has no readable time: {text!r}") from None


def incident_data(incident: dict, status: str) -> dict:
    """The incident as a V3 webhook event's `data` carries it, with the given status.

    `incident` is a REST incident (GET /incidents); assignees are its current assignments
    while open (a resolved incident has none)."""
    assignees = [a["assignee"] for a in incident.get("assignments") or [] if a.get("assignee")]
    data = {
        "id": incident["id"],
        "type": "incident",
        "self": incident.get("self"),
        "html_url": incident.get("html_url"),
        "number": incident.get("incident_number"),
        "status": status,
        "incident_key": incident.get("incident_key"),
        "created_at": incident.get("created_at"),
        "title": incident.get("title"),
        "service": incident.get("service"),
        "assignees": [] if status == "resolved" else assignees,
        "escalation_policy": incident.get("escalation_policy"),
        "teams": incident.get("teams") or [],
        "priority": incident.get("priority"),
        "urgency": incident.get("urgency"),
        "conference_bridge": incident.get("conference_bridge"),
        "resolve_reason": incident.get("resolve_reason"),
    }
    if incident.get("incident_type") is not None:
        data["incident_type"] = incident["incident_type"]
    return data


def status_entries(log_entries: list[dict]) -> list[tuple[dict, str, str]]:
    """The log entries that set the incident's status, oldest first, each with the event type
    it stands for and the status after it (see the module's table)."""
    ordered = sorted(
        (e for e in log_entries if e.get("type") in STATUS_ENTRIES),
        key=lambda e: (
            _time(e.get("created_at"), f"log entry {e.get('id')}"),
            _ORDER.get(e["type"], 1),
        ),
    )
    changes: list[tuple[dict, str, str]] = []
    status: str | None = None
    for entry in ordered:
        event_type, after = STATUS_ENTRIES[entry["type"]]
        if entry["type"] == "trigger_log_entry" and status not in (None, "resolved"):
            continue  # another alert grouped into an open incident
        if status == "resolved" and after != "resolved":
            event_type = "incident.reopened"
        changes.append((entry, event_type, after))
        status = after
    return changes


def incident_envelopes(incident: dict, log_entries: list[dict]) -> list[dict]:
    """The V3 events of one REST incident, one per log entry that set its status, as
    envelopes (oldest first). `log_entries` are GET /incidents/{id}/log_entries, in any order.
    Raises ValueError for an incident without an id or an entry without a readable time."""
    if not isinstance(incident, dict) or not incident.get("id"):
        raise ValueError("a PagerDuty incident must be an object with an id")
    envelopes = []
    for entry, event_type, status in status_entries(log_entries):
        if not entry.get("id"):
            raise ValueError(f"a log entry of PagerDuty incident {incident['id']} has no id")
        payload = {
            "event": {
                "id": entry["id"],
                "event_type": event_type,
                "resource_type": "incident",
                "occurred_at": entry["created_at"],
                "agent": entry.get("agent"),
                "client": None,
                "data": incident_data(incident, status),
            }
        }
        envelopes.append(
            import_envelope(
                SOURCE, event_type, incident["id"], entry["id"], entry["created_at"], payload
            )
        )
    return envelopes
