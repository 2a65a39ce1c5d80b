"""The automation's audit, `ops.actions`: made by whoever writes or reads it first.

The DORA marts read it too (a rollback the automation executed marks its deployment failed),
so its DDL is a source of the SQL models (`dbt_like_sql/sources/ops.actions.sql`), made
before the first model reads it and before the first action is recorded.
"""

import duckdb

from dbt_like_sql import source_ddl

ACTIONS_DDL = source_ddl("ops", "actions")


def ensure_actions_table(conn: duckdb.DuckDBPyConnection) -> None:
    """Make `ops.actions` if it is not there yet, so a decision can always be recorded."""
    conn.execute(ACTIONS_DDL)
