"""Retention of raw payloads: the payloads of old deliveries dropped, every derived row kept.

A delivery's payload is dropped (set to NULL; its row in raw.events, with its id and times,
stays, so a late duplicate is still recognised) when all of these hold:
- it was received before the cutoff;
- its event type is read only by latest-state models (`materialization: incremental`): such a
  model keeps one row per key, merged from the events' own rows, so a row it holds never needs
  its events again. An event type a table rebuilt whole reads (deployments, incidents, pushes)
  keeps its payloads: that table is recomputed from them at every refresh;
- every latest-state model has merged the delivery's load (`meta.model_loads`): its rows exist.

The keys of the rows those payloads made, in each latest-state model, are recorded in
`meta.pruned_keys`. A full rebuild of such a model (its SQL or the configuration it reads
changed) then recomputes every other key from the payloads still held and keeps the rows of
recorded keys as they were last built (columns the model no longer has are left out, new ones
are NULL): with an unchanged model the rebuild gives exactly the rows it had, and a second
refresh changes nothing. What a changed model would compute differently is not recomputed for
those rows: their payloads are gone. A latest-state table dropped by hand loses them for good.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from dbt_like_sql import SqlModel, load_models
from dbt_like_sql.catalog import table_exists
from dbt_like_sql.incremental import in_transaction, key_text, replace_tables

RAW = ("raw", "events")
_EQUALS = re.compile(r"event_type\s*=\s*'([^']+)'", re.IGNORECASE)
_IN = re.compile(r"event_type\s+IN\s*\(([^)]*)\)", re.IGNORECASE)
_STARTS = re.compile(r"starts_with\(\s*event_type\s*,\s*'([^']+)'\s*\)", re.IGNORECASE)
PRUNED_DDL = """
CREATE SCHEMA IF NOT EXISTS meta;
CREATE TABLE IF NOT EXISTS meta.pruned_keys (model VARCHAR NOT NULL, key VARCHAR NOT NULL);
"""


def is_latest_state(model: SqlModel) -> bool:
    return model.settings.get("materialization") == "incremental" and RAW in model.reads


def _event_types(sql: str) -> tuple[set[str], set[str]]:
    """The event types a statement names (exact), and the prefixes it matches (starts_with)."""
    exact = set(_EQUALS.findall(sql))
    for listed in _IN.findall(sql):
        exact |= set(re.findall(r"'([^']+)'", listed))
    return exact, set(_STARTS.findall(sql))


def prunable_event_types(models: list[SqlModel]) -> list[str]:
    """The event types whose payloads only latest-state models read.

    A model rebuilt whole that reads payloads of types its SQL does not name (no
    `event_type = '...'` filter) makes every type unprunable; one that reads raw.events without
    its payloads (the newest received_at) is no reader of payloads."""
    candidates: set[str] = set()
    for model in models:
        if is_latest_state(model):
            candidates |= _event_types(model.sql)[0]
    for model in models:
        if RAW not in model.reads or is_latest_state(model) or "payload" not in model.sql:
            continue
        exact, prefixes = _event_types(model.sql)
        if not exact and not prefixes:
            return []
        candidates = {
            t for t in candidates if t not in exact and not any(t.startswith(p) for p in prefixes)
        }
    return sorted(candidates)


@dataclass
class Dropped:
    """What one pass dropped: payloads per event type, and keys recorded per model."""

    before: datetime
    event_types: list[str] = field(default_factory=list)
    payloads: dict[str, int] = field(default_factory=dict)
    keys: dict[str, int] = field(default_factory=dict)
    reason: str = ""

    @property
    def total(self) -> int:
        return sum(self.payloads.values())


def drop_payloads(conn, before: datetime, models: list[SqlModel] | None = None) -> Dropped:
    """Drop the payloads received before `before` that no table needs again (see the module's
    docstring), recording the keys of the rows they made; one transaction. Idempotent: a
    payload already dropped is not touched again."""
    models = load_models() if models is None else models
    latest = [m for m in models if is_latest_state(m)]
    dropped = Dropped(before, prunable_event_types(models))
    if not dropped.event_types:
        dropped.reason = "every event type is read by a table rebuilt whole"
        return dropped
    if not table_exists(conn, "raw.events") or not table_exists(conn, "meta.model_loads"):
        dropped.reason = "nothing built yet"
        return dropped
    built = [m for m in latest if table_exists(conn, m.table)]
    if len(built) < len(latest):
        dropped.reason = "a latest-state table is not built yet: refresh first"
        return dropped
    merged = " INTERSECT ".join(
        f"SELECT load_id FROM meta.model_loads WHERE model = '{m.table}'" for m in latest
    )
    types = ", ".join(f"'{t}'" for t in dropped.event_types)
    condition = (
        f"payload IS NOT NULL AND received_at < '{before.isoformat()}'::TIMESTAMPTZ"
        f" AND event_type IN ({types}) AND load_id IN ({merged})"
    )
    expiring = f"SELECT * FROM raw.events WHERE {condition}"
    dropped.payloads = dict(
        conn.execute(
            f"SELECT event_type, count(*) FROM ({expiring}) GROUP BY 1 ORDER BY 1"
        ).fetchall()
    )
    if not dropped.payloads:
        dropped.reason = "no payload old enough"
        return dropped
    statements: list = [
        PRUNED_DDL,
        # Raw tables made before retention existed say NOT NULL.
        "ALTER TABLE raw.events ALTER COLUMN payload DROP NOT NULL",
    ]
    for model in latest:
        made = replace_tables(model.sql, {RAW: expiring})
        statements.append(
            f"""INSERT INTO meta.pruned_keys
            SELECT DISTINCT '{model.table}', {key_text(model)} FROM ({made})
            EXCEPT SELECT model, key FROM meta.pruned_keys WHERE model = '{model.table}'"""
        )
    statements.append(f"UPDATE raw.events SET payload = NULL WHERE {condition}")
    in_transaction(conn, statements)
    for model in latest:
        (dropped.keys[model.table],) = conn.execute(
            "SELECT count(*) FROM meta.pruned_keys WHERE model = ?", [model.table]
        ).fetchone()
    return dropped
