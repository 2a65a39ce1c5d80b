"""PagerDuty v3 webhooks: the fields the core models read, per incident.* event.

Most events carry the incident itself as `event.data` (`data.type = "incident"`); some carry
another object about it (a note, a responder request, a status update) that names its incident
in `data.incident`. core.incidents keys each event by the incident it is about, so each shape
must hold the id that event is placed by.
"""

from dcicd_platform.ingest.requirements import optional, required

SOURCE = "pagerduty"

_EVENT = (
    *required("event.id", "event.event_type"),
    *required("event.occurred_at", kind="timestamp"),
    *optional("event.data.type"),
)

INCIDENT = (
    *_EVENT,
    *required("event.data.id"),
    *optional("event.data.created_at", kind="timestamp"),
    *optional("event.data.service", kind="object"),
    *optional("event.data.title", "event.data.status", "event.data.urgency"),
)

# The data is another object about an incident: it is placed by data.incident.id.
ABOUT_INCIDENT = (*_EVENT, *required("event.data.incident.id"))

# Any other incident.* event PagerDuty adds: core.incidents reads it by data.type, and an event
# naming no incident is ignored there, not quarantined.
OTHER = (*_EVENT, *optional("event.data.id", "event.data.incident.id"))

EVENTS: dict = {
    **{
        f"incident.{name}": INCIDENT
        for name in (
            "triggered",
            "acknowledged",
            "unacknowledged",
            "resolved",
            "reopened",
            "escalated",
            "reassigned",
            "delegated",
            "priority_updated",
        )
    },
    **{
        f"incident.{name}": ABOUT_INCIDENT
        for name in ("annotated", "responder.added", "responder.replied", "status_update_published")
    },
}
EVENT_PREFIXES = {"incident.": OTHER}
