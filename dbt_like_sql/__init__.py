"""SQL models: each `<schema>/<table>.sql` file is one SELECT that becomes the table schema.table.

Dependencies are the tables a statement reads, parsed with sqlglot (never listed by hand), so
the lineage users see is the SQL's own. Nothing here knows about Dagster.

A model may start with header comments carrying settings, e.g. `-- description: ...`. A model
over raw.events whose rows are the latest state of something may say

    -- materialization: incremental
    -- unique_key: run_key
    -- latest_by: (status = 'completed') DESC, last_received_at DESC

and is then refreshed from the loads of raw.events it has not seen yet: their rows are merged
by key into the table, the better by `latest_by` winning, exactly as a full rebuild would pick.
A changed model, or a change in the config tables it reads, rebuilds it whole.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from graphlib import TopologicalSorter
from pathlib import Path

import sqlglot
from sqlglot import exp

MODELS_ROOT = Path(__file__).parent
SCHEMAS = ("core", "marts")
_SETTING = re.compile(r"^--\s*([a-z_]+):\s*(.*)$")


@dataclass(frozen=True)
class SqlModel:
    """One model: the table it builds, its SELECT, and the tables that SELECT reads."""

    schema: str
    name: str
    sql: str
    path: Path
    settings: dict[str, str] = field(default_factory=dict)
    reads: tuple[tuple[str, str], ...] = ()

    @property
    def table(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def description(self) -> str:
        return self.settings.get("description", f"The {self.table} table.")


def _settings(sql: str) -> dict[str, str]:
    settings = {}
    for line in sql.splitlines():
        line = line.strip()
        if not line.startswith("--"):
            break
        match = _SETTING.match(line)
        if match:
            settings[match.group(1)] = match.group(2).strip()
    return settings


def tables_read(sql: str) -> tuple[tuple[str, str], ...]:
    """Schema-qualified tables a statement reads (CTE names and table functions excluded)."""
    tree = sqlglot.parse_one(sql, read="duckdb")
    # CTEs and table functions have no schema; every stored table is read as schema.table.
    return tuple(sorted({(t.db, t.name) for t in tree.find_all(exp.Table) if t.db}))


def load_model(path: Path) -> SqlModel:
    sql = path.read_text(encoding="utf-8")
    try:
        reads = tables_read(sql)
    except sqlglot.errors.ParseError as exc:
        raise ValueError(f"{path}: the SQL model does not parse: {exc}") from exc
    return SqlModel(path.parent.name, path.stem, sql, path, _settings(sql), reads)


def load_models(root: Path = MODELS_ROOT) -> list[SqlModel]:
    """Every model under root, in an order where each comes after the models it reads."""
    models = {
        m.table: m
        for schema in SCHEMAS
        for m in map(load_model, sorted((root / schema).glob("*.sql")))
    }
    graph = {
        table: {f"{s}.{n}" for s, n in m.reads if f"{s}.{n}" in models}
        for table, m in models.items()
    }
    return [models[table] for table in TopologicalSorter(graph).static_order()]


def build_model(conn, model: SqlModel) -> int:
    """Refresh the model's table atomically (whole, or incrementally); returns the row count."""
    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {model.schema}")
    if model.settings.get("materialization") == "incremental":
        _build_incremental(conn, model)
    else:
        _in_transaction(conn, [f"CREATE OR REPLACE TABLE {model.table} AS\n{model.sql}"])
    return conn.execute(f"SELECT count(*) FROM {model.table}").fetchone()[0]


def _in_transaction(conn, statements: list[str], params: dict | None = None) -> None:
    conn.execute("BEGIN TRANSACTION")
    try:
        for statement in statements:
            conn.execute(
                statement, {k: v for k, v in (params or {}).items() if f"${k}" in statement}
            )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


_ALL_LOADS = (
    "CREATE OR REPLACE TEMP TABLE dcicd_new_loads AS SELECT DISTINCT load_id FROM raw.events"
)
_STATE_DDL = """
CREATE SCHEMA IF NOT EXISTS meta;
CREATE TABLE IF NOT EXISTS meta.model_versions (model VARCHAR PRIMARY KEY, version VARCHAR);
CREATE TABLE IF NOT EXISTS meta.model_loads (model VARCHAR, load_id VARCHAR);
"""


def _version(conn, model: SqlModel) -> str:
    """The model's SQL and the content of the config tables it reads: a change rebuilds it."""
    parts = [model.sql]
    for schema, name in model.reads:
        if schema == "config":
            parts.append(
                conn.execute(
                    "SELECT md5(coalesce(string_agg(CAST(t AS VARCHAR), '|'"
                    f" ORDER BY CAST(t AS VARCHAR)), '')) FROM {schema}.{name} t"
                ).fetchone()[0]
            )
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def only_new_events(sql: str) -> str:
    """The model's SELECT over the loads of raw.events listed in the temp table dcicd_new_loads."""
    new_events = sqlglot.parse_one(
        "(SELECT * FROM raw.events WHERE load_id IN (SELECT load_id FROM dcicd_new_loads))"
        " AS events",
        read="duckdb",
    )

    def swap(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Table) and (node.db, node.name) == ("raw", "events"):
            return new_events.copy()
        return node

    return sqlglot.parse_one(sql, read="duckdb").transform(swap).sql(dialect="duckdb")


def _build_incremental(conn, model: SqlModel) -> None:
    table, key, order = model.table, model.settings["unique_key"], model.settings["latest_by"]
    conn.execute(_STATE_DDL)
    version = _version(conn, model)
    known = conn.execute(
        "SELECT version FROM meta.model_versions WHERE model = ?", [table]
    ).fetchone()
    exists = conn.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE schema_name = ? AND table_name = ?",
        [model.schema, model.name],
    ).fetchone()[0]
    params = {"model": table, "version": version}
    record = [
        "INSERT INTO meta.model_loads SELECT $model, load_id FROM dcicd_new_loads",
        "INSERT OR REPLACE INTO meta.model_versions VALUES ($model, $version)",
    ]
    if not exists or known is None or known[0] != version:
        _in_transaction(
            conn,
            [
                f"CREATE OR REPLACE TABLE {table} AS\n{model.sql}",
                "DELETE FROM meta.model_loads WHERE model = $model",
                _ALL_LOADS,
                *record,
            ],
            params,
        )
        return
    _in_transaction(
        conn,
        [
            _ALL_LOADS + " EXCEPT SELECT load_id FROM meta.model_loads WHERE model = $model",
            f"CREATE OR REPLACE TEMP TABLE dcicd_delta AS\n{only_new_events(model.sql)}",
            f"""CREATE OR REPLACE TEMP TABLE dcicd_merged AS
            SELECT * FROM (
                SELECT * FROM {table} WHERE {key} IN (SELECT {key} FROM dcicd_delta)
                UNION ALL BY NAME SELECT * FROM dcicd_delta)
            QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY {order}) = 1""",
            f"DELETE FROM {table} WHERE {key} IN (SELECT {key} FROM dcicd_delta)",
            f"INSERT INTO {table} BY NAME SELECT * FROM dcicd_merged",
            *record,
        ],
        params,
    )
