"""Data versions: what the Dagster UI's "Unsynced" is judged by.

Every table asset reports a data version that is a fingerprint of its rows, so a table rebuilt
to the same rows keeps its version and the tables built from it stay in sync. The five-minute
watch rebuilds the core tables under the marts: only when that brought new rows does a mart
read "Unsynced", and then it is (the hourly refresh, or a materialization from the UI, brings
it up to date).
"""

from __future__ import annotations

import dagster as dg
import duckdb


def table_version(
    conn: duckdb.DuckDBPyConnection, table: str, exclude: tuple[str, ...] = ()
) -> dg.DataVersion:
    """The rows of `table` (schema.name, or a parenthesized SELECT) as a data version: their
    count and the sum of their hashes, so row order does not count and any changed value does.
    One scan of the table. `exclude`: bookkeeping columns no reader uses, stamped at every
    build (when a row was last seen), which would make each build a new version."""
    rows = f"(SELECT * EXCLUDE ({', '.join(exclude)}) FROM {table})" if exclude else table
    count, total = conn.execute(
        f"SELECT count(*), coalesce(sum(hash(t)), 0) FROM {rows} AS t"
    ).fetchone()
    return dg.DataVersion(f"{count}-{int(total):x}")


def ledger_version(conn: duckdb.DuckDBPyConnection) -> dg.DataVersion:
    """raw.events as a data version: the ingest ledger's files (each loaded once, never
    changed), not the events themselves, which would cost a scan of the largest table."""
    return table_version(conn, "raw.files")
