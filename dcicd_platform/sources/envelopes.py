"""Imported objects as landing envelopes (CONTRACTS.md section 2).

An object's `delivery_id` is made from the source, the event type, the object's id and the
state it shows (`import:` prefix): importing it again while unchanged lands a duplicate the
loader counts and skips; a new state is a new delivery, which the models order like a webhook.
"""

from __future__ import annotations


def import_envelope(
    source: str, event_type: str, object_id: str, state: str, received_at: str, payload: dict
) -> dict:
    """One envelope: received_at is the time of the state the object shows (its updated_at)."""
    return {
        "delivery_id": f"import:{source}:{event_type}:{object_id}:{state}",
        "source": source,
        "event_type": event_type,
        "received_at": received_at,
        "payload": payload,
    }
