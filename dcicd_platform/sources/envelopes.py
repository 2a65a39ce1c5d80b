"""Imported objects as landing envelopes (CONTRACTS.md section 2), written as whole files.

An object's `delivery_id` is made from the source, the event type, the object's id and the
state it shows (`import:` prefix): importing it again while unchanged lands a duplicate the
loader counts and skips; a new state is a new delivery, which the models order like a webhook.
"""

from __future__ import annotations

import itertools
import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path

from dcicd_platform.files import replaced_whole


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


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "all"


class EnvelopeWriter:
    """Writes batches of envelopes under landing/import/<source>/<scope>/, one whole file each.

    A file appears only complete (renamed into place after an fsync), so the landing sensor
    never loads half of one and a killed import leaves nothing torn.
    """

    def __init__(self, landing: Path, source: str, scope: str) -> None:
        self.folder = landing / "import" / source / _slug(scope)
        self.files: list[Path] = []
        self.envelopes = 0
        self._stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        self._seq = itertools.count(1)

    def write(self, envelopes: list[dict]) -> Path | None:
        """Land one batch as one file (nothing for an empty batch); returns its path."""
        if not envelopes:
            return None
        self.folder.mkdir(parents=True, exist_ok=True)
        target = self.folder / f"{self._stamp}-{next(self._seq):06d}.ndjson"
        with replaced_whole(target) as partial, partial.open("w", encoding="utf-8") as out:
            for envelope in envelopes:
                out.write(json.dumps(envelope, separators=(",", ":")) + "\n")
            out.flush()
            os.fsync(out.fileno())
        self.files.append(target)
        self.envelopes += len(envelopes)
        return target
