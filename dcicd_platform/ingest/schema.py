"""The raw layer's tables and the SQL macros that read provider payloads.

Created idempotently by every writer before it writes, so a fresh home needs no set-up step.
The macros live in the warehouse itself, so an analyst's `dcicd query` can use them too.
"""

from __future__ import annotations

import duckdb

RAW_DDL = r"""
CREATE SCHEMA IF NOT EXISTS raw;
CREATE TABLE IF NOT EXISTS raw.events (
    delivery_id  VARCHAR NOT NULL,
    source       VARCHAR NOT NULL,
    event_type   VARCHAR NOT NULL,
    received_at  TIMESTAMPTZ NOT NULL,
    payload      JSON NOT NULL,
    landing_file VARCHAR NOT NULL,
    line_number  BIGINT NOT NULL,
    load_id      VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS raw.quarantine (
    landing_file VARCHAR NOT NULL,
    line_number  BIGINT NOT NULL,
    reason       VARCHAR NOT NULL,
    raw_line     VARCHAR NOT NULL,
    quarantined_at TIMESTAMPTZ NOT NULL,
    load_id      VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS raw.files (
    content_sha256 VARCHAR PRIMARY KEY,
    load_id        VARCHAR NOT NULL,
    landing_file   VARCHAR NOT NULL,
    size_bytes     BIGINT NOT NULL,
    mtime_ns       BIGINT NOT NULL,
    lines          BIGINT NOT NULL,
    loaded         BIGINT NOT NULL,
    duplicates     BIGINT NOT NULL,
    quarantined    BIGINT NOT NULL,
    loaded_at      TIMESTAMPTZ NOT NULL
);
"""

# Provider timestamps come as RFC 3339, '2016-08-12 15:23:28 UTC', '... +0200' or epoch seconds.
MACROS = r"""
CREATE OR REPLACE MACRO dcicd_ts(v) AS (
    CASE WHEN v IS NULL OR v = '' THEN NULL ELSE coalesce(
        try_cast(v AS TIMESTAMPTZ),
        try_cast(regexp_replace(v, '\s*([+-]\d\d):?(\d\d)$', '\1:\2') AS TIMESTAMPTZ),
        CASE WHEN regexp_full_match(v, '\d+(\.\d+)?') THEN to_timestamp(try_cast(v AS DOUBLE)) END)
    END
);
CREATE OR REPLACE MACRO dcicd_json_kind(j) AS (
    CASE
        WHEN j IS NULL THEN NULL
        WHEN starts_with(j, '"') THEN 'VARCHAR'
        WHEN starts_with(j, '{') THEN 'OBJECT'
        WHEN starts_with(j, '[') THEN 'ARRAY'
        WHEN j = 'null' THEN 'NULL'
        WHEN j IN ('true', 'false') THEN 'BOOLEAN'
        WHEN contains(j, '.') OR contains(j, 'e') OR contains(j, 'E') THEN 'DOUBLE'
        ELSE 'BIGINT'
    END
);
CREATE OR REPLACE MACRO dcicd_conclusion(v) AS (
    CASE
        WHEN v IS NULL THEN NULL
        WHEN lower(v) IN ('success', 'succeeded', 'passed', 'neutral') THEN 'success'
        WHEN lower(v) IN ('failure', 'failed', 'error', 'errored', 'startup_failure') THEN 'failure'
        WHEN lower(v) IN ('cancelled', 'canceled', 'canceling') THEN 'cancelled'
        WHEN lower(v) IN ('skipped') THEN 'skipped'
        WHEN lower(v) IN ('timed_out', 'timeout') THEN 'timed_out'
        ELSE 'other'
    END
);
CREATE OR REPLACE MACRO dcicd_is_production_env(env, configured) AS (
    CASE
        WHEN env IS NULL THEN false
        WHEN len(coalesce(configured, [])) > 0
            THEN list_contains(list_transform(configured, lambda x: lower(x)), lower(env))
        ELSE lower(env) IN ('production', 'prod')
            OR starts_with(lower(env), 'production-') OR starts_with(lower(env), 'prod-')
    END
);
"""


def prepare_session(conn: duckdb.DuckDBPyConnection) -> None:
    """Every connection works in UTC: days and weeks are UTC days and weeks (CONTRACTS.md §4),
    whatever the host's zone. The warehouse resources (resources.py) call it on every
    connection they open; `ensure_raw_schema` too, for a loader handed any connection."""
    conn.execute("SET TimeZone = 'UTC'")
    conn.execute("SET enable_progress_bar = false")  # the callers report progress themselves


def ensure_raw_schema(conn: duckdb.DuckDBPyConnection) -> None:
    """Create the raw tables and the payload macros when missing (a writer's first step)."""
    prepare_session(conn)
    conn.execute(RAW_DDL)
    conn.execute(MACROS)
