"""The raw layer's tables, created idempotently by every writer before it writes, so a fresh
home needs no set-up step (the session and the payload macros: dbt_like_sql/session.py)."""

from __future__ import annotations

import duckdb

from dbt_like_sql.session import prepare_session

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


def ensure_raw_schema(conn: duckdb.DuckDBPyConnection) -> None:
    """Set the session up and create the raw tables when missing (a writer's first step)."""
    prepare_session(conn)
    conn.execute(RAW_DDL)
