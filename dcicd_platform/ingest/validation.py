"""The SQL that splits a batch of lines into envelopes and quarantined lines, with reasons.

Validation runs inside DuckDB, vectorized: Python never parses a payload. Each line is parsed
once for its envelope and each payload once for its required fields (`required_fields/`),
which become one CASE per event type naming the first unmet requirement.
"""

from __future__ import annotations

from collections.abc import Iterable

from dcicd_platform.ingest.envelope import SOURCES
from dcicd_platform.ingest.required_fields import BY_SOURCE
from dcicd_platform.ingest.requirements import JSON_TYPES, Field


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _in_list(values: Iterable[str]) -> str:
    return "(" + ", ".join(_quote(v) for v in values) + ")"


def _kind_label(field: Field) -> str:
    article = "an" if field.kind[0] in "aeiou" else "a"
    return f"{article} {field.kind}"


def _all_fields() -> list[tuple[str, str, tuple[Field, ...]]]:
    """(SQL condition selecting an event type, its label, its fields) for every event type."""
    out = []
    for module in BY_SOURCE:
        source = f"source = {_quote(module.SOURCE)}"
        for event_type, fields in module.EVENTS.items():
            condition = f"{source} AND event_type = {_quote(event_type)}"
            out.append((condition, f"{module.SOURCE}/{event_type}", fields))
        for prefix, fields in getattr(module, "EVENT_PREFIXES", {}).items():
            condition = f"{source} AND starts_with(event_type, {_quote(prefix)})"
            out.append((condition, f"{module.SOURCE}/{prefix}*", fields))
    return out


ENVELOPE_PATHS = ["$." + name for name in ("delivery_id", "source", "event_type", "received_at")]
ENVELOPE_PATHS.append("$.payload")


def _paths() -> list[str]:
    """Every JSON path read from a line: the envelope's, then each payload field's, once."""
    paths = list(ENVELOPE_PATHS)
    for _, _, fields in _all_fields():
        for field in fields:
            path = "$.payload." + field.path
            if path not in paths:
                paths.append(path)
    return paths


def _checks(fields: tuple[Field, ...], label: str, position: dict[str, int]) -> str:
    """A CASE naming the first unmet requirement of one event type's payload."""
    whens = []
    for field in fields:
        i = position["$.payload." + field.path]
        kind = f"k[{i}]"
        missing = f"{kind} = 'NULL'"
        if not field.optional:
            whens.append(f"WHEN {missing} THEN {_quote(f'{label} payload lacks {field.path}')}")
        allowed = _in_list(JSON_TYPES[field.kind])
        whens.append(
            f"WHEN {kind} NOT IN {allowed} AND NOT {missing} "
            f"THEN {_quote(f'{label} payload field {field.path} is not {_kind_label(field)}')}"
        )
        if field.kind == "timestamp":
            whens.append(
                f"WHEN {kind} = 'VARCHAR' AND dcicd_ts(json_extract_string(v[{i}], '$')) IS NULL "
                f"THEN {_quote(f'{label} payload field {field.path} is not a readable time')}"
            )
    return f"CASE {' '.join(whens)} END"


def _envelope_checks() -> str:
    whens = []
    for i, name in enumerate(("delivery_id", "source", "event_type", "received_at", "payload"), 1):
        whens.append(f"WHEN k[{i}] = 'NULL' THEN 'missing field {name} (absent or null)'")
    for i, name in enumerate(("delivery_id", "source", "event_type", "received_at"), 1):
        whens.append(f"WHEN k[{i}] <> 'VARCHAR' THEN '{name} is not a string'")
    whens.append("WHEN k[5] <> 'OBJECT' THEN 'payload is not a JSON object'")
    return " ".join(whens)


def validation_sql(batch: str) -> str:
    """SELECT over `batch(line_number, line, pre_reason)` with each line's envelope or reason.

    Each line is parsed once: one json_extract reads the envelope and every payload path any
    event type needs. Lines keep their line ending; it is trimmed from what lands in quarantine.
    """
    paths = _paths()
    position = {path: i for i, path in enumerate(paths, start=1)}
    reasons = " ".join(
        f"WHEN {condition} THEN {_checks(fields, label, position)}"
        for condition, label, fields in _all_fields()
    )
    path_list = "[" + ", ".join(_quote(p) for p in paths) + "]"
    return f"""
WITH parsed AS (
    SELECT line_number, line, pre_reason,
        CASE WHEN pre_reason IS NULL THEN try(json_extract(line, {path_list})) END AS v
    FROM {batch}
), kinds AS (
    SELECT *, list_transform(v, lambda j: coalesce(dcicd_json_kind(j), 'NULL')) AS k FROM parsed
), enveloped AS (
    SELECT line_number, line, v, k, v[5] AS payload,
        json_extract_string(v[1], '$') AS delivery_id,
        json_extract_string(v[2], '$') AS source,
        json_extract_string(v[3], '$') AS event_type,
        dcicd_ts(json_extract_string(v[4], '$')) AS received_at,
        CASE
            WHEN pre_reason IS NOT NULL THEN pre_reason
            WHEN v IS NULL AND trim(line, e' \\t\\r\\n') = '' THEN 'empty line'
            WHEN v IS NULL THEN 'not valid JSON'
            WHEN NOT starts_with(ltrim(line, e' \\t'), '{{') THEN 'not a JSON object'
            {_envelope_checks()}
            WHEN trim(delivery_id) = '' THEN 'delivery_id is empty'
            WHEN source NOT IN {_in_list(SOURCES)}
                THEN 'unknown source ' || source || '; expected one of {", ".join(SOURCES)}'
            WHEN trim(event_type) = '' THEN 'event_type is empty'
            WHEN received_at IS NULL THEN 'received_at is not an RFC 3339 time'
        END AS envelope_problem
    FROM kinds
)
SELECT line_number, delivery_id, source, event_type, received_at, payload,
    coalesce(envelope_problem, CASE {reasons} END) AS reason,
    CASE WHEN reason IS NOT NULL THEN rtrim(line, e'\\r\\n') END AS raw_line
FROM enveloped
"""
