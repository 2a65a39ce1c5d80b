"""What an import already knows, per source, scope and endpoint: `ops.import_state`.

A row is written only after the landing files holding what it covers are on disk, so an
import killed at any point resumes from its last flush: what it asks again lands duplicates
(skipped by delivery_id), nothing is lost and nothing counts twice.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime

DDL = """
CREATE SCHEMA IF NOT EXISTS ops;
CREATE TABLE IF NOT EXISTS ops.import_state (
    source VARCHAR NOT NULL,
    scope VARCHAR NOT NULL,
    endpoint VARCHAR NOT NULL,
    watermark VARCHAR,
    etag VARCHAR,
    last_success_at TIMESTAMPTZ NOT NULL,
    objects BIGINT NOT NULL,
    PRIMARY KEY (source, scope, endpoint)
);
"""


@dataclass(frozen=True)
class EndpointState:
    """One endpoint's row: `watermark` what was last fully read, `etag` its last answer's."""

    watermark: str | None
    etag: str | None
    objects: int


class ImportState:
    """The rows of one source and scope, read once, written back by `flush`.

    `connect` opens the warehouse's writer (a context manager yielding a DuckDB connection).
    """

    def __init__(self, connect: Callable[[], AbstractContextManager], source: str, scope: str):
        self._connect = connect
        self.source = source
        self.scope = scope
        self._rows: dict[str, EndpointState] = {}
        self._dirty: dict[str, tuple[EndpointState, datetime]] = {}
        with connect() as conn:
            conn.execute(DDL)
            for endpoint, watermark, etag, objects in conn.execute(
                "SELECT endpoint, watermark, etag, objects FROM ops.import_state"
                " WHERE source = ? AND scope = ?",
                [source, scope],
            ).fetchall():
                self._rows[endpoint] = EndpointState(watermark, etag, objects)

    def get(self, endpoint: str) -> EndpointState | None:
        return self._rows.get(endpoint)

    def put(self, endpoint: str, watermark: str | None, etag: str | None, objects: int) -> None:
        """Remember an endpoint read whole (call after its envelopes are written)."""
        row = EndpointState(watermark, etag, objects)
        self._rows[endpoint] = row
        self._dirty[endpoint] = (row, datetime.now(UTC))

    @property
    def pending(self) -> int:
        return len(self._dirty)

    def flush(self) -> None:
        """Write the rows put since the last flush, in one transaction."""
        if not self._dirty:
            return
        rows = [
            (self.source, self.scope, e, r.watermark, r.etag, at, r.objects)
            for e, (r, at) in self._dirty.items()
        ]
        with self._connect() as conn:
            conn.execute(DDL)
            conn.execute("BEGIN")
            conn.executemany(
                "INSERT OR REPLACE INTO ops.import_state VALUES (?, ?, ?, ?, ?, ?, ?)", rows
            )
            conn.execute("COMMIT")
        self._dirty.clear()
