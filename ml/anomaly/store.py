"""What every detector shares: the ml.anomalies columns, stable keys, and the upsert."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import polars as pl

    from ml.anomaly.changes import Judged

COLUMNS = [
    "anomaly_key",
    "kind",
    "service",
    "entity_key",
    "detected_at",
    "observed",
    "expected",
    "score",
    "severity",
    "explanation",
]
SEVERITIES = ("info", "warning", "critical")


def anomaly_key(kind: str, entity_key: str) -> str:
    """The same anomaly found again has the same key: kind and a hash of what it is about."""
    return f"{kind}:{hashlib.sha256(entity_key.encode()).hexdigest()[:16]}"


def as_frame(rows: list[dict]) -> pl.DataFrame:
    """A detector's rows as a frame of COLUMNS, each keyed by its kind and entity."""
    import polars as pl

    schema = {
        "anomaly_key": pl.Utf8,
        "kind": pl.Utf8,
        "service": pl.Utf8,
        "entity_key": pl.Utf8,
        "detected_at": pl.Datetime("us", "UTC"),
        "observed": pl.Float64,
        "expected": pl.Float64,
        "score": pl.Float64,
        "severity": pl.Utf8,
        "explanation": pl.Utf8,
    }
    for row in rows:
        row["anomaly_key"] = anomaly_key(row["kind"], row["entity_key"])
    return pl.DataFrame(rows, schema=schema).select(COLUMNS)


ANOMALIES_DDL = """
CREATE SCHEMA IF NOT EXISTS ml;
CREATE TABLE IF NOT EXISTS ml.anomalies (
    anomaly_key VARCHAR PRIMARY KEY, kind VARCHAR, service VARCHAR, entity_key VARCHAR,
    detected_at TIMESTAMPTZ, observed DOUBLE, expected DOUBLE, score DOUBLE, severity VARCHAR,
    explanation VARCHAR, first_seen_at TIMESTAMPTZ, last_seen_at TIMESTAMPTZ,
    cleared_at TIMESTAMPTZ, occurrence INTEGER DEFAULT 1);
-- a warehouse from before occurrence (1, then one more each time a cleared anomaly comes back)
ALTER TABLE ml.anomalies ADD COLUMN IF NOT EXISTS occurrence INTEGER DEFAULT 1;
"""


def store(conn, found: pl.DataFrame, judged: dict[str, Judged] | None = None) -> dict[str, int]:
    """Upsert by key: a known anomaly is updated (first_seen_at kept), one no longer found is
    marked cleared, nothing is duplicated. A cleared anomaly found again is open again, as its
    next occurrence: the automation alerts (and resolves) each occurrence once.

    judged says what was judged when the detectors judged only what changed: per kind, which
    entity keys (None: all of the kind); an open anomaly outside it stands as it was (its rows
    did not change), and only one judged and not found again is cleared. None: everything was
    judged. Returns how many are new, open, and were cleared.
    """
    conn.execute(ANOMALIES_DDL)
    conn.register("dcicd_found", found.to_arrow())
    try:
        new = conn.execute(
            "SELECT count(*) FROM dcicd_found WHERE anomaly_key NOT IN"
            " (SELECT anomaly_key FROM ml.anomalies)"
        ).fetchall()[0][0]
        conn.execute(
            """INSERT INTO ml.anomalies BY NAME
            SELECT *, now() AS first_seen_at, now() AS last_seen_at, NULL AS cleared_at
            FROM dcicd_found
            ON CONFLICT (anomaly_key) DO UPDATE SET observed = excluded.observed,
                expected = excluded.expected, score = excluded.score,
                severity = excluded.severity, explanation = excluded.explanation,
                detected_at = excluded.detected_at, last_seen_at = now(), cleared_at = NULL,
                occurrence = CASE WHEN cleared_at IS NULL THEN occurrence
                    ELSE occurrence + 1 END"""
        )
        not_found = """cleared_at IS NULL
            AND anomaly_key NOT IN (SELECT anomaly_key FROM dcicd_found)"""
        if judged is None:
            cleared = conn.execute(
                f"UPDATE ml.anomalies SET cleared_at = now() WHERE {not_found}"
            ).fetchall()[0][0]
        else:
            gone = [
                key
                for key, kind, entity in conn.execute(
                    f"SELECT anomaly_key, kind, entity_key FROM ml.anomalies WHERE {not_found}"
                ).fetchall()
                if kind in judged and (judged[kind] is None or judged[kind](entity))
            ]
            cleared = conn.execute(
                "UPDATE ml.anomalies SET cleared_at = now()"
                " WHERE anomaly_key IN (SELECT unnest($gone::VARCHAR[]))",
                {"gone": gone},
            ).fetchall()[0][0]
            # Those not judged again still hold: seen now, as a whole judgment would see them.
            conn.execute("UPDATE ml.anomalies SET last_seen_at = now() WHERE cleared_at IS NULL")
        open_ = conn.execute(
            "SELECT count(*) FROM ml.anomalies WHERE cleared_at IS NULL"
        ).fetchall()[0][0]
    finally:
        conn.unregister("dcicd_found")
    return {"new": new, "found": open_, "cleared": cleared}
