"""A plain DuckDB connection to the warehouse file (or its snapshot) in UTC, for the paths that
must answer in milliseconds and so cannot import Dagster: the promotion gate. Every other
connection comes from dcicd_platform.resources, which also prepares the session's macros."""

from __future__ import annotations

from pathlib import Path

import duckdb


def connect(
    path: Path, *, read_only: bool = False, config: dict[str, str | int] | None = None
) -> duckdb.DuckDBPyConnection:
    """A connection to the DuckDB file at path whose session time zone is UTC, as every
    warehouse connection's is (a timestamp read or cast in the host's zone would move days).
    Raises duckdb.IOException when a writer holds the file (read_only too)."""
    conn = duckdb.connect(str(path), read_only=read_only, config=config or {})
    try:
        conn.execute("SET TimeZone = 'UTC'")
    except BaseException:
        conn.close()
        raise
    return conn
