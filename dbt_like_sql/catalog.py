"""What a DuckDB database holds, and query results as records: the small reads every layer
(the models, the platform's screens, the detectors) makes, written once."""

from __future__ import annotations


def existing_tables(conn) -> set[str]:
    """'schema.table' for every table the database holds: readers that show what exists
    (before the first refresh some do not)."""
    return {
        f"{schema}.{table}"
        for schema, table in conn.execute(
            "SELECT schema_name, table_name FROM duckdb_tables()"
        ).fetchall()
    }


def table_exists(conn, table: str) -> bool:
    """Whether 'schema.table' exists: what a reader checks before reading a table that only a
    later step creates."""
    schema, _, name = table.partition(".")
    return bool(
        conn.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE schema_name = ? AND table_name = ?",
            [schema, name],
        ).fetchone()[0]
    )


def column_exists(conn, table: str, column: str) -> bool:
    """Whether 'schema.table' has the column: for a reader of a table that a newer version
    widened (`ALTER TABLE ... ADD COLUMN IF NOT EXISTS`) on a warehouse it has not widened yet."""
    schema, _, name = table.partition(".")
    return bool(
        conn.execute(
            "SELECT count(*) FROM duckdb_columns() WHERE schema_name = ? AND table_name = ?"
            " AND column_name = ?",
            [schema, name, column],
        ).fetchone()[0]
    )


def fetch_dicts(conn, sql: str, params: list | dict | None = None) -> list[dict]:
    """The query's rows as dicts keyed by column name, for code that reads fields by name."""
    result = conn.execute(sql, params if params is not None else [])
    names = [d[0] for d in result.description]
    return [dict(zip(names, row, strict=True)) for row in result.fetchall()]
