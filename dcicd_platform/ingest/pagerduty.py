"""PagerDuty v3 webhooks: the fields the core models read, for every incident.* event."""

from dcicd_platform.ingest.requirements import optional, required

SOURCE = "pagerduty"

INCIDENT = (
    *required("event.id", "event.event_type", "event.data.id"),
    *required("event.occurred_at", kind="timestamp"),
    *optional("event.data.created_at", kind="timestamp"),
    *optional("event.data.service", kind="object"),
    *optional("event.data.title", "event.data.status", "event.data.urgency"),
)

# PagerDuty names incident events incident.triggered, incident.resolved, ...: all share a shape.
EVENT_PREFIXES = {"incident.": INCIDENT}
EVENTS: dict = {}
