"""SQL models: each `<schema>/<table>.sql` file is one SELECT that becomes the table schema.table.

Dependencies are the tables a statement reads, parsed with sqlglot (never listed by hand), so
the lineage users see is the SQL's own. Nothing here knows about Dagster.

A model may start with header comments carrying settings, e.g. `-- description: ...`.
"""

from __future__ import annotations

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
    """Replace the model's table with its SELECT, atomically; returns the row count."""
    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {model.schema}")
    conn.execute("BEGIN TRANSACTION")
    try:
        conn.execute(f"CREATE OR REPLACE TABLE {model.table} AS\n{model.sql}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return conn.execute(f"SELECT count(*) FROM {model.table}").fetchone()[0]
