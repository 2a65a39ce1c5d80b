"""The payload fields each source's events must carry, per event type (one module a source).

Each module names its `SOURCE` and, per event type (`EVENTS`, and for PagerDuty
`EVENT_PREFIXES`), the JSON paths the core models read and their types; validation turns them
into the reason a payload is quarantined.
"""

from dcicd_platform.ingest.required_fields import github, gitlab, metrics, pagerduty

BY_SOURCE = (github, gitlab, pagerduty, metrics)
